//! Registry searches: by business number (own system only), by unified number (persons linked
//! to the caller only), by the basic four facts through a blind index that does not leak, and
//! by individual number for staff — answers never carry an individual number.
//!
//! The facts index lives in `Tree::BlindIndex` under the prefix `f:` so it cannot collide with
//! the individual-number entries (32 bytes, no prefix): `f:` ‖ HMAC(kind ‖ normalised text ‖
//! birth date) ‖ unified number → empty, one entry per (person, name) and (person, kana). The
//! HMAC is keyed with the blind-index key, so the stored keys reveal neither name nor date.

use base64::Engine;
use renkei_crypto::at_rest::{decrypt_at_rest, encrypt_at_rest};
use renkei_ids::{BusinessNumber, IndividualNumber, SystemId, UnifiedAddressNumber};
use serde::{Deserialize, Serialize};

use super::{b64, BasicFacts, CodeStatus, PersonRecord, PersonState, Registry, RegistryError};
use renkei_store::{key2, prefix_end, Batch, Tree};

/// Key prefix of the basic-facts index inside `Tree::BlindIndex`.
pub const FACTS_PREFIX: &[u8] = b"f:";
/// Key prefix in `Tree::Meta` of merge redirects (`merged unified` → surviving unified).
pub const MERGED_PREFIX: &str = "registry.merged.";
/// Most candidates one facts search decrypts: a (kana, birth date) pair shared by more people
/// than this is not a useful match and would make one request decrypt a crowd.
pub const DEFAULT_MAX_FACT_CANDIDATES: usize = 200;

/// Normalises text for exact matching: removes half- and full-width spaces at both ends and
/// folds any inner run of spaces to one half-width space. No NFKC (it rewrites ① and ㈱).
pub fn normalise(s: &str) -> String {
    s.split([' ', '\u{3000}'])
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Names and kana match without any spaces (a family/given separator is often missing).
fn squeeze(s: &str) -> String {
    s.chars()
        .filter(|c| *c != ' ' && *c != '\u{3000}')
        .collect()
}

/// What a search answers for one person. No individual number, no basic facts.
#[derive(Debug, Clone, Serialize)]
pub struct PersonView {
    pub unified_address_number: UnifiedAddressNumber,
    /// The caller's own business number for the person, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_number: Option<BusinessNumber>,
    pub status: PersonState,
    pub code: CodeView,
    /// The number asked for when it was merged into this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_from: Option<UnifiedAddressNumber>,
}

/// Code (符号) acquisition status as shown.
#[derive(Debug, Clone, Serialize)]
pub struct CodeView {
    pub status: CodeStatus,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A search by the basic four facts. `kana` or `name`, and `birth_date`, are required.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FactsQuery {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub kana: Option<String>,
    pub birth_date: String,
    #[serde(default)]
    pub sex: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
}

fn corrupt(e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Corrupt(e.to_string())
}

impl Registry {
    /// The HMAC part of a facts-index key for `kind` (`k` kana, `n` name).
    fn facts_hmac(&self, kind: &str, text: &str, birth_date: &str) -> [u8; 32] {
        let plain =
            zeroize::Zeroizing::new(format!("{kind}\u{1f}{}\u{1f}{birth_date}", squeeze(text)));
        self.keys.keyring().blind_index().index(plain.as_bytes())
    }

    /// The facts-index keys of a person.
    pub fn facts_index_keys(&self, u: &UnifiedAddressNumber, f: &BasicFacts) -> Vec<Vec<u8>> {
        [("k", &f.kana), ("n", &f.name)]
            .into_iter()
            .filter(|(_, t)| !squeeze(t).is_empty())
            .map(|(kind, t)| {
                let mut k = FACTS_PREFIX.to_vec();
                k.extend_from_slice(&self.facts_hmac(kind, t, &f.birth_date));
                k.extend_from_slice(u.to_string().as_bytes());
                k
            })
            .collect()
    }

    /// Adds a person's facts-index entries to `b`.
    pub fn stage_facts_index(&self, b: &mut Batch, u: &UnifiedAddressNumber, f: &BasicFacts) {
        for k in self.facts_index_keys(u, f) {
            b.put(Tree::BlindIndex, k, Vec::new());
        }
    }

    /// Decrypts a person's basic facts.
    pub fn basic_facts(&self, p: &PersonRecord) -> Result<BasicFacts, RegistryError> {
        let blob = b64().decode(&p.basic_sealed).map_err(corrupt)?;
        let loc = format!("persons/{}/basic", p.unified);
        let plain = zeroize::Zeroizing::new(
            decrypt_at_rest(&self.keys.keyring(), &loc, &blob)
                .map_err(|e| RegistryError::Crypto(e.to_string()))?,
        );
        serde_json::from_slice(&plain).map_err(corrupt)
    }

    /// Seals basic facts for person `u` (base64 of the at-rest envelope).
    pub fn seal_facts(
        &self,
        u: &UnifiedAddressNumber,
        f: &BasicFacts,
    ) -> Result<String, RegistryError> {
        let json = zeroize::Zeroizing::new(serde_json::to_vec(f).map_err(corrupt)?);
        let enc = encrypt_at_rest(&self.keys.keyring(), &format!("persons/{u}/basic"), &json)
            .map_err(|e| RegistryError::Crypto(e.to_string()))?;
        Ok(b64().encode(enc))
    }

    /// The blind-index key of an individual number (the existing, unprefixed entries).
    pub fn individual_number_index(&self, n: &IndividualNumber) -> Vec<u8> {
        self.blind_index(n)
    }

    /// Where a merged number now points (itself when never merged).
    pub fn follow_merge(
        &self,
        u: &UnifiedAddressNumber,
    ) -> Result<UnifiedAddressNumber, RegistryError> {
        let mut cur = *u;
        // Merges form a chain at most as long as the number of merges; a bound guards a cycle.
        for _ in 0..16 {
            match self
                .store
                .get(Tree::Meta, format!("{MERGED_PREFIX}{cur}").as_bytes())?
            {
                Some(v) => {
                    cur = UnifiedAddressNumber::parse(&String::from_utf8_lossy(&v))
                        .map_err(corrupt)?
                }
                None => return Ok(cur),
            }
        }
        Err(RegistryError::Corrupt("merge chain too long".into()))
    }

    /// The person a unified number resolves to (following merges), as shown to `system`
    /// (`None`: staff, sees every person). A system sees only persons linked to it.
    pub fn view(
        &self,
        asked: &UnifiedAddressNumber,
        system: Option<&SystemId>,
    ) -> Result<Option<PersonView>, RegistryError> {
        let u = self.follow_merge(asked)?;
        let Some(p) = self.person(&u)? else {
            return Ok(None);
        };
        let business_number = match system {
            Some(s) => match self.business_number(&u, s)? {
                Some(bn) => Some(bn),
                None => return Ok(None),
            },
            None => None,
        };
        Ok(Some(PersonView {
            unified_address_number: u,
            business_number,
            status: p.state,
            code: CodeView {
                status: p.code_status,
                attempts: p.code_attempts,
                reason: p.code_reason,
            },
            merged_from: (u != *asked).then_some(*asked),
        }))
    }

    /// The person `system` links with its number `bn`.
    pub fn view_by_business_number(
        &self,
        system: &SystemId,
        bn: &BusinessNumber,
    ) -> Result<Option<PersonView>, RegistryError> {
        match self.resolve(system, bn)? {
            Some(u) => {
                let u = self.follow_merge(&u)?;
                let mut v = self.view(&u, None)?;
                if let Some(v) = v.as_mut() {
                    v.business_number = Some(bn.clone());
                }
                Ok(v)
            }
            None => Ok(None),
        }
    }

    /// The unified number of an individual number (following merges).
    pub fn find_by_individual_number(
        &self,
        n: &IndividualNumber,
    ) -> Result<Option<UnifiedAddressNumber>, RegistryError> {
        match self.store.get(Tree::BlindIndex, &self.blind_index(n))? {
            Some(v) => {
                let u =
                    UnifiedAddressNumber::parse(&String::from_utf8_lossy(&v)).map_err(corrupt)?;
                self.follow_merge(&u).map(Some)
            }
            None => Ok(None),
        }
    }

    /// Persons whose basic facts match `q` exactly after normalisation.
    pub fn find_by_facts(
        &self,
        q: &FactsQuery,
    ) -> Result<Vec<UnifiedAddressNumber>, RegistryError> {
        let (kind, text) = match (&q.kana, &q.name) {
            (Some(k), _) if !squeeze(k).is_empty() => ("k", k.as_str()),
            (_, Some(n)) if !squeeze(n).is_empty() => ("n", n.as_str()),
            _ => return Ok(Vec::new()),
        };
        let mut prefix = FACTS_PREFIX.to_vec();
        prefix.extend_from_slice(&self.facts_hmac(kind, text, &q.birth_date));
        let hits = self.store.range(
            Tree::BlindIndex,
            &prefix,
            &prefix_end(&prefix),
            DEFAULT_MAX_FACT_CANDIDATES,
        )?;
        let mut out = Vec::new();
        for (k, _) in hits {
            let Some(tail) = k.get(prefix.len()..) else {
                continue;
            };
            let u = UnifiedAddressNumber::parse(&String::from_utf8_lossy(tail)).map_err(corrupt)?;
            let Some(p) = self.person(&u)? else {
                continue;
            };
            let f = self.basic_facts(&p)?;
            let eq = |a: &Option<String>, b: &str, squeezed: bool| match a {
                None => true,
                Some(a) if squeezed => squeeze(a) == squeeze(b),
                Some(a) => normalise(a) == normalise(b),
            };
            if f.birth_date == q.birth_date
                && eq(&q.kana, &f.kana, true)
                && eq(&q.name, &f.name, true)
                && eq(&q.sex, &f.sex, false)
                && eq(&q.address, &f.address, false)
                && !out.contains(&u)
            {
                out.push(u);
            }
        }
        Ok(out)
    }

    /// Every (system, business number) linked to `u`.
    pub fn links_of(
        &self,
        u: &UnifiedAddressNumber,
    ) -> Result<Vec<(SystemId, BusinessNumber)>, RegistryError> {
        let prefix = key2(&u.to_string(), "");
        let mut out = Vec::new();
        for (k, v) in self
            .store
            .scan_prefix(Tree::ReverseLinks, &prefix, usize::MAX)?
        {
            let sys = String::from_utf8_lossy(&k[prefix.len()..]).to_string();
            let sys = SystemId::parse(&sys).map_err(corrupt)?;
            let bn = BusinessNumber::parse(&String::from_utf8_lossy(&v)).map_err(corrupt)?;
            out.push((sys, bn));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::{normalise, squeeze};

    #[test]
    fn normalise_folds_spaces_only() {
        assert_eq!(normalise("　札幌市  中央区　"), "札幌市 中央区");
        assert_eq!(normalise("①丁目"), "①丁目");
        assert_eq!(squeeze("ヤマダ　タロウ"), "ヤマダタロウ");
    }
}

//! The auditor's public keys by signing-key version ([`KeySet`]), so a log signed across a key
//! rotation verifies, and the one-file PEM form `renkei audit public-keys` prints.

use std::collections::BTreeMap;
use std::fmt;

use crate::checkpoint::{parse_public_key, public_key_pem};
use crate::RecordsError;

/// The comment line that names the version of the PEM block after it, up to the number.
pub const KEY_VERSION_LINE: &str = "# signing key version ";

const PEM_BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
const PEM_END: &str = "-----END PUBLIC KEY-----";

/// Public keys (SEC1 uncompressed P-256) by signing-key version.
///
/// Either one key for every version ([`KeySet::single`], what a plain PEM file gives) or one
/// key per version ([`KeySet::from_pems`], [`KeySet::parse`] of a multi-version file). A
/// checkpoint whose `key_version` the set does not hold does not verify.
#[derive(Clone, PartialEq, Eq)]
pub struct KeySet {
    keys: Keys,
}

#[derive(Clone, PartialEq, Eq)]
enum Keys {
    /// One key, used for every version.
    Single(Vec<u8>),
    /// Exactly these versions (never empty).
    Versions(BTreeMap<u32, Vec<u8>>),
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.keys {
            Keys::Single(_) => f.write_str("KeySet(single key for every version)"),
            Keys::Versions(m) => write!(f, "KeySet(versions {:?})", m.keys().collect::<Vec<_>>()),
        }
    }
}

impl KeySet {
    /// One key for every version: SEC1 uncompressed bytes, SPKI DER or one SPKI PEM.
    pub fn single(key: &[u8]) -> Result<KeySet, RecordsError> {
        Ok(KeySet {
            keys: Keys::Single(parse_public_key(key)?),
        })
    }

    /// One key per version, each in any form [`KeySet::single`] takes. The same version twice
    /// with different keys, or no key at all, is refused.
    pub fn from_pems<I, K>(keys: I) -> Result<KeySet, RecordsError>
    where
        I: IntoIterator<Item = (u32, K)>,
        K: AsRef<[u8]>,
    {
        let mut map = BTreeMap::new();
        for (version, key) in keys {
            let sec1 = parse_public_key(key.as_ref())
                .map_err(|e| RecordsError::BadKey(format!("key version {version}: {e}")))?;
            insert(&mut map, version, sec1)?;
        }
        if map.is_empty() {
            return Err(RecordsError::BadKey("the key set is empty".into()));
        }
        Ok(KeySet {
            keys: Keys::Versions(map),
        })
    }

    /// Reads a key file: SEC1 bytes, SPKI DER or a single PEM give a single key; a file of
    /// `PUBLIC KEY` blocks each preceded by a line `# signing key version N` (what
    /// `renkei audit public-keys` prints and [`KeySet::to_pem_file`] writes) gives one key per
    /// version. Blank lines and other `#` comment lines are ignored; any other text outside a
    /// block, a version line without a block, or a mix of versioned and unversioned blocks is
    /// refused.
    pub fn parse(bytes: &[u8]) -> Result<KeySet, RecordsError> {
        let sec1 = bytes.len() == 65 && bytes[0] == 0x04;
        let der = bytes.len() == 91 && bytes.starts_with(&[0x30, 0x59]);
        if sec1 || der {
            return KeySet::single(bytes);
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|_| RecordsError::BadKey("key file is neither binary nor UTF-8".into()))?;
        let mut versioned: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
        let mut unversioned: Vec<Vec<u8>> = vec![];
        let mut pending: Option<(u32, usize)> = None;
        let mut block: Option<String> = None;
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = raw.trim();
            if let Some(body) = block.as_mut() {
                if line == PEM_END {
                    body.push_str(PEM_END);
                    body.push('\n');
                    let sec1 = parse_public_key(body.as_bytes())
                        .map_err(|e| RecordsError::BadKey(format!("block ending line {n}: {e}")))?;
                    block = None;
                    match pending.take() {
                        Some((v, _)) => insert(&mut versioned, v, sec1)?,
                        None => unversioned.push(sec1),
                    }
                } else if line.starts_with("-----") {
                    return Err(RecordsError::BadKey(format!(
                        "line {n}: unexpected PEM boundary inside a block"
                    )));
                } else {
                    body.push_str(line);
                    body.push('\n');
                }
                continue;
            }
            if line.is_empty() {
                continue;
            }
            if line == PEM_BEGIN {
                block = Some(format!("{PEM_BEGIN}\n"));
            } else if line.starts_with("-----") {
                return Err(RecordsError::BadKey(format!(
                    "line {n}: only PUBLIC KEY blocks are allowed"
                )));
            } else if let Some(rest) = line.strip_prefix('#') {
                let rest = rest.trim();
                if let Some(num) = rest.strip_prefix(KEY_VERSION_LINE[2..].trim_end()) {
                    let v: u32 = num.trim().parse().map_err(|_| {
                        RecordsError::BadKey(format!("line {n}: bad key version number"))
                    })?;
                    if let Some((old, at)) = pending {
                        return Err(RecordsError::BadKey(format!(
                            "line {at}: key version {old} has no PUBLIC KEY block"
                        )));
                    }
                    pending = Some((v, n));
                }
                // Other comments are the auditor's notes.
            } else {
                return Err(RecordsError::BadKey(format!(
                    "line {n}: text outside a PUBLIC KEY block"
                )));
            }
        }
        if block.is_some() {
            return Err(RecordsError::BadKey("unterminated PEM block".into()));
        }
        if let Some((v, at)) = pending {
            return Err(RecordsError::BadKey(format!(
                "line {at}: key version {v} has no PUBLIC KEY block"
            )));
        }
        match (versioned.is_empty(), unversioned.len()) {
            (true, 0) => Err(RecordsError::BadKey("no PUBLIC KEY block".into())),
            (true, 1) => Ok(KeySet {
                keys: Keys::Single(unversioned.remove(0)),
            }),
            (false, 0) => Ok(KeySet {
                keys: Keys::Versions(versioned),
            }),
            _ => Err(RecordsError::BadKey(format!(
                "every key block needs a line \"{}N\" before it",
                KEY_VERSION_LINE
            ))),
        }
    }

    /// The key that verifies checkpoints of `version` (the single key, for a single set).
    pub fn get(&self, version: u32) -> Option<&[u8]> {
        match &self.keys {
            Keys::Single(k) => Some(k),
            Keys::Versions(m) => m.get(&version).map(Vec::as_slice),
        }
    }

    /// The versions held, ascending; `None` for a single key that applies to every version.
    pub fn versions(&self) -> Option<Vec<u32>> {
        match &self.keys {
            Keys::Single(_) => None,
            Keys::Versions(m) => Some(m.keys().copied().collect()),
        }
    }

    /// The one-file form: for each version, ascending, `# signing key version N`, the SPKI
    /// PEM and a blank line (exactly what `renkei audit public-keys` prints); a single key is
    /// its plain PEM. [`KeySet::parse`] reads it back.
    pub fn to_pem_file(&self) -> String {
        // The keys were checked on the way in, so encoding cannot fail.
        let pem = |k: &[u8]| public_key_pem(k).unwrap_or_default();
        match &self.keys {
            Keys::Single(k) => pem(k),
            Keys::Versions(m) => m
                .iter()
                .map(|(v, k)| format!("{KEY_VERSION_LINE}{v}\n{}\n", pem(k)))
                .collect(),
        }
    }

    /// A short description for error messages: `versions 1, 2` or `a single key`.
    pub(crate) fn describe(&self) -> String {
        match self.versions() {
            None => "a single key".into(),
            Some(v) => {
                let list: Vec<String> = v.iter().map(u32::to_string).collect();
                format!("versions {}", list.join(", "))
            }
        }
    }
}

fn insert(
    map: &mut BTreeMap<u32, Vec<u8>>,
    version: u32,
    sec1: Vec<u8>,
) -> Result<(), RecordsError> {
    match map.get(&version) {
        Some(old) if *old != sec1 => Err(RecordsError::BadKey(format!(
            "key version {version} is given twice with different keys"
        ))),
        Some(_) => Ok(()),
        None => {
            map.insert(version, sec1);
            Ok(())
        }
    }
}

/// What an exporter writes to a bundle's informational `public-keys.pem`: one PEM (`&str`,
/// `&String`, the old form), a multi-version key file, a [`KeySet`], or a list or map of
/// (version, PEM or SEC1) such as the gateway's `/v1/audit/public-keys` answer.
pub trait BundleKeys {
    /// The key set to describe in the bundle.
    fn key_set(&self) -> Result<KeySet, RecordsError>;
}

impl BundleKeys for KeySet {
    fn key_set(&self) -> Result<KeySet, RecordsError> {
        Ok(self.clone())
    }
}

impl BundleKeys for str {
    fn key_set(&self) -> Result<KeySet, RecordsError> {
        KeySet::parse(self.as_bytes())
    }
}

impl BundleKeys for String {
    fn key_set(&self) -> Result<KeySet, RecordsError> {
        KeySet::parse(self.as_bytes())
    }
}

impl<K: AsRef<[u8]>> BundleKeys for [(u32, K)] {
    fn key_set(&self) -> Result<KeySet, RecordsError> {
        KeySet::from_pems(self.iter().map(|(v, k)| (*v, k.as_ref())))
    }
}

impl<K: AsRef<[u8]>> BundleKeys for Vec<(u32, K)> {
    fn key_set(&self) -> Result<KeySet, RecordsError> {
        self.as_slice().key_set()
    }
}

impl<K: AsRef<[u8]>> BundleKeys for BTreeMap<u32, K> {
    fn key_set(&self) -> Result<KeySet, RecordsError> {
        KeySet::from_pems(self.iter().map(|(v, k)| (*v, k.as_ref())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::EphemeralSigner;

    #[test]
    fn the_multi_version_file_round_trips_and_matches_the_cli_format() {
        let a = EphemeralSigner::generate().unwrap();
        let b = EphemeralSigner::generate().unwrap();
        let pa = public_key_pem(a.public_key()).unwrap();
        let pb = public_key_pem(b.public_key()).unwrap();
        let set = KeySet::from_pems([(2, pb.as_bytes()), (1, a.public_key())]).unwrap();
        // What `renkei audit public-keys` prints: println!("# signing key version {v}\n{pem}").
        let cli = format!("# signing key version 1\n{pa}\n# signing key version 2\n{pb}\n");
        assert_eq!(set.to_pem_file(), cli);
        let back = KeySet::parse(cli.as_bytes()).unwrap();
        assert_eq!(back, set);
        assert_eq!(back.versions(), Some(vec![1, 2]));
        assert_eq!(back.get(1), Some(a.public_key()));
        assert_eq!(back.get(2), Some(b.public_key()));
        assert_eq!(back.get(3), None);
        // CRLF, indentation, notes and a different order read the same.
        let messy = format!(
            "# keys from the city, 2026-11-26\r\n\r\n  # signing key version 2\r\n{}\r\n#signing key version 1\n{pa}",
            pb.trim_end().replace('\n', "\r\n")
        );
        assert_eq!(KeySet::parse(messy.as_bytes()).unwrap(), set);
        assert_eq!(format!("{set:?}"), "KeySet(versions [1, 2])");
    }

    #[test]
    fn a_plain_key_is_single_and_bad_files_are_refused_with_a_reason() {
        let a = EphemeralSigner::generate().unwrap();
        let b = EphemeralSigner::generate().unwrap();
        let pa = public_key_pem(a.public_key()).unwrap();
        let pb = public_key_pem(b.public_key()).unwrap();
        for input in [pa.as_bytes(), a.public_key()] {
            let s = KeySet::parse(input).unwrap();
            assert_eq!(s.versions(), None);
            assert_eq!(s.get(7), Some(a.public_key()));
            assert_eq!(s.to_pem_file(), pa);
        }
        let bad = |text: String, why: &str| {
            let e = KeySet::parse(text.as_bytes()).unwrap_err();
            assert_eq!(e.code(), "records_bad_key");
            assert!(e.to_string().contains(why), "{e} should say {why}");
        };
        bad(format!("{pa}{pb}"), "needs a line");
        bad(format!("# signing key version 1\n{pa}{pb}"), "needs a line");
        bad(
            format!("# signing key version 1\n# signing key version 2\n{pa}"),
            "key version 1 has no",
        );
        bad(
            format!("{pa}# signing key version 3\n"),
            "key version 3 has no",
        );
        bad(format!("# signing key version x\n{pa}"), "bad key version");
        bad(
            format!("# signing key version 1\n{pa}# signing key version 1\n{pb}"),
            "twice",
        );
        bad(format!("hello\n{pa}"), "line 1: text outside");
        bad(pa.replace("-----END PUBLIC KEY-----\n", ""), "unterminated");
        bad(pa.replace("PUBLIC KEY", "CERTIFICATE"), "only PUBLIC KEY");
        bad(String::new(), "");
        bad("# nothing here\n".into(), "no PUBLIC KEY");
        let mut broken = pa.clone().into_bytes();
        broken[40] = b'!';
        bad(String::from_utf8(broken).unwrap(), "bad base64");
        assert!(KeySet::from_pems(Vec::<(u32, Vec<u8>)>::new()).is_err());
        // The same key twice under one version is harmless.
        let twice = format!("# signing key version 1\n{pa}# signing key version 1\n{pa}");
        assert_eq!(
            KeySet::parse(twice.as_bytes()).unwrap().versions(),
            Some(vec![1])
        );
    }
}

//! The platform's master information (マスター情報): agencies, procedures, items, the national
//! permission table and the platform's public keys. It comes signed from the platform; the
//! gateway verifies it against keys it already trusts, refuses a stale or badly signed copy,
//! caches the last good one, and takes the platform's keys from it (so a rotation on the
//! national side reaches the city without a manual step).
//!
//! Each verified document REPLACES the set of platform keys the gateway trusts: a key version
//! it no longer lists stays trusted only for the overlap (`platform.master_key_overlap_secs`,
//! for messages still in flight), then is dropped. A document that gives an already known
//! version a different key is refused whole (`master_key_changed`), the old set kept.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use renkei_ids::AgencyCode;
use std::path::PathBuf;

use renkei_platform::{from_xml, KeyUse, Message, MASTER_PATH};
use serde::Serialize;
use tokio::sync::watch;

use crate::keyring::{KeyState, PeerKeys, SIGNATURE_HEADER};
use crate::platform::Uplink;
use crate::util::{now_ms, parse_rfc3339_ms, rfc3339_jst};

/// Why a master information copy was refused.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    #[error("master information signature: {0}")]
    Signature(String),
    #[error("master information is malformed: {0}")]
    Malformed(String),
    #[error("master information was not issued by the platform")]
    WrongSender,
    #[error("master information is stale (valid until {0})")]
    Stale(String),
    #[error("master information could not be fetched: {0}")]
    Fetch(String),
    #[error("master information could not be saved: {0}")]
    Persist(String),
    #[error(
        "master information gives the platform's {key_use} key version {version} a different key"
    )]
    KeyChanged { key_use: &'static str, version: u32 },
    #[error("master information lists no signing key of the platform")]
    NoSigningKey,
}

impl MasterError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            MasterError::Signature(_) => "master_signature",
            MasterError::Malformed(_) => "master_malformed",
            MasterError::WrongSender => "master_wrong_sender",
            MasterError::Stale(_) => "master_stale",
            MasterError::Fetch(_) => "master_unavailable",
            MasterError::Persist(_) => "master_not_saved",
            MasterError::KeyChanged { .. } => "master_key_changed",
            MasterError::NoSigningKey => "master_no_signing_key",
        }
    }
}

/// What the gateway keeps of the current master information.
#[derive(Debug, Clone, Serialize, Default)]
pub struct MasterStatus {
    pub valid_until: Option<String>,
    pub fetched_at: Option<String>,
    pub agencies: usize,
    pub permissions: usize,
    pub platform_key_versions: Vec<String>,
    /// Versions the last document dropped, still trusted until the overlap ends.
    pub platform_keys_dropping: Vec<String>,
    pub last_error: Option<String>,
}

/// Shared master status.
pub type SharedMaster = Arc<RwLock<MasterStatus>>;

/// Verifies a master information document; returns the message and the platform keys it
/// lists (only those: [`KeyHistory::apply`] turns them into the trusted set).
pub fn check(
    body: &[u8],
    signature: Option<&str>,
    keys: &KeyState,
    platform: &AgencyCode,
    now: u64,
) -> Result<(Message, PeerKeys), MasterError> {
    let (signer, _) = keys
        .verify(signature, body)
        .map_err(|e| MasterError::Signature(e.to_string()))?;
    if signer != platform.as_str() {
        return Err(MasterError::WrongSender);
    }
    let msg = from_xml(body).map_err(|e| MasterError::Malformed(e.to_string()))?;
    let Message::MasterInfo {
        header,
        valid_until,
        keys: published,
        ..
    } = &msg
    else {
        return Err(MasterError::Malformed(format!("got {}", msg.type_name())));
    };
    if &header.sender != platform {
        return Err(MasterError::WrongSender);
    }
    match parse_rfc3339_ms(valid_until) {
        Some(t) if t > now => {}
        _ => return Err(MasterError::Stale(valid_until.clone())),
    }
    let mut peer = PeerKeys {
        agency: platform.clone(),
        signing: BTreeMap::new(),
        sealing: BTreeMap::new(),
    };
    for k in published.iter().filter(|k| &k.agency == platform) {
        match k.key_use {
            KeyUse::Signing => {
                let key = renkei_crypto::VerifyingKey::from_sec1(&k.public_key)
                    .map_err(|e| MasterError::Malformed(e.to_string()))?;
                peer.signing.insert(k.version, key);
            }
            KeyUse::Sealing => {
                let key = renkei_crypto::SealingPublicKey::from_bytes(&k.public_key)
                    .map_err(|e| MasterError::Malformed(e.to_string()))?;
                peer.sealing.insert(k.version, key);
            }
        }
    }
    if peer.signing.is_empty() {
        return Err(MasterError::NoSigningKey);
    }
    Ok((msg, peer))
}

/// One platform key: its use, version and public bytes.
type KeyId = (&'static str, u32);

fn key_entries(p: &PeerKeys) -> BTreeMap<KeyId, Vec<u8>> {
    p.signing
        .iter()
        .map(|(v, k)| (("signing", *v), k.to_sec1()))
        .chain(
            p.sealing
                .iter()
                .map(|(v, k)| (("sealing", *v), k.to_bytes())),
        )
        .collect()
}

/// What the gateway remembers of the platform's keys across documents: every key ever
/// trusted for each version (a version never changes key), and when each dropped version
/// stops being trusted.
#[derive(Debug, Default)]
pub struct KeyHistory {
    seen: BTreeMap<KeyId, Vec<u8>>,
    dropping: BTreeMap<KeyId, u64>,
}

impl KeyHistory {
    /// The trusted set after a verified document listing `published`, given the set trusted
    /// now: exactly the published keys, plus dropped ones whose overlap has not ended (the
    /// overlap starts when a document first leaves a version out). Refuses — changing
    /// nothing — a document that gives a known version a different key.
    pub fn apply(
        &mut self,
        current: &PeerKeys,
        published: &PeerKeys,
        now_ms: u64,
        overlap: Duration,
    ) -> Result<PeerKeys, MasterError> {
        let have = key_entries(current);
        let listed = key_entries(published);
        for (id, key) in &listed {
            if let Some(known) = self.seen.get(id).or(have.get(id)) {
                if known != key {
                    return Err(MasterError::KeyChanged {
                        key_use: id.0,
                        version: id.1,
                    });
                }
            }
        }
        let mut next = published.clone();
        for (id, key) in have {
            self.seen.entry(id).or_insert(key);
            if listed.contains_key(&id) {
                continue;
            }
            let until = *self
                .dropping
                .entry(id)
                .or_insert(now_ms.saturating_add(overlap.as_millis() as u64));
            if until > now_ms {
                if id.0 == "signing" {
                    if let Some(k) = current.signing.get(&id.1) {
                        next.signing.insert(id.1, k.clone());
                    }
                } else if let Some(k) = current.sealing.get(&id.1) {
                    next.sealing.insert(id.1, k.clone());
                }
            } else {
                self.dropping.remove(&id);
            }
        }
        for (id, key) in listed {
            self.dropping.remove(&id);
            self.seen.insert(id, key);
        }
        Ok(next)
    }

    /// `current` without the dropped versions whose overlap has ended (`None`: none has).
    pub fn prune(&mut self, current: &PeerKeys, now_ms: u64) -> Option<PeerKeys> {
        let ended: Vec<KeyId> = self
            .dropping
            .iter()
            .filter(|(_, until)| **until <= now_ms)
            .map(|(id, _)| *id)
            .collect();
        if ended.is_empty() {
            return None;
        }
        let mut next = current.clone();
        for id in ended {
            self.dropping.remove(&id);
            if id.0 == "signing" {
                next.signing.remove(&id.1);
            } else {
                next.sealing.remove(&id.1);
            }
        }
        Some(next)
    }

    /// When the next dropped version's overlap ends.
    pub fn next_deadline(&self) -> Option<u64> {
        self.dropping.values().min().copied()
    }

    /// The versions still in their overlap, as `signing v2`.
    pub fn dropping(&self) -> Vec<String> {
        self.dropping
            .keys()
            .map(|(u, v)| format!("{u} v{v}"))
            .collect()
    }
}

/// Where master information comes from and where the gateway keeps what it learned.
pub struct MasterSource {
    pub uplink: Uplink,
    pub keyring: Arc<KeyState>,
    /// The platform's base URL.
    pub platform_url: String,
    pub platform: AgencyCode,
    /// The platform's public keys file (rewritten when the platform's keys change).
    pub peer_keys_file: PathBuf,
    /// The last verified document, kept for operators (`<data_dir>/master.xml`).
    pub document_file: PathBuf,
    pub status: SharedMaster,
    /// How often to fetch (`platform.master_refresh_secs`).
    pub refresh_every: Duration,
    /// How long a dropped key stays trusted (`platform.master_key_overlap_secs`).
    pub overlap: Duration,
    pub history: Mutex<KeyHistory>,
}

impl MasterSource {
    fn history(&self) -> std::sync::MutexGuard<'_, KeyHistory> {
        match self.history.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn status(&self) -> std::sync::RwLockWriteGuard<'_, MasterStatus> {
        match self.status.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Saves and installs a new trusted set (saved first, so a restart trusts what this
    /// process trusted); returns its versions for the status.
    fn install(&self, peer: PeerKeys) -> Result<Vec<String>, MasterError> {
        peer.save(&self.peer_keys_file)
            .map_err(|e| MasterError::Persist(e.to_string()))?;
        let versions = peer
            .signing
            .keys()
            .map(|v| format!("signing v{v}"))
            .chain(peer.sealing.keys().map(|v| format!("sealing v{v}")))
            .collect();
        self.keyring.set_peer(peer);
        Ok(versions)
    }

    /// Drops the platform keys whose overlap has ended.
    fn prune(&self) -> Result<(), MasterError> {
        let Some(current) = self.keyring.peer(self.platform.as_str()) else {
            return Ok(());
        };
        let mut history = self.history();
        if let Some(next) = history.prune(&current, now_ms()) {
            let versions = self.install(next)?;
            tracing::info!(
                message = "Platform keys dropped by the master information are no longer trusted."
            );
            let mut s = self.status();
            s.platform_key_versions = versions;
            s.platform_keys_dropping = history.dropping();
        }
        Ok(())
    }
}

/// Fetches, verifies and applies the master information once. The platform's keys are saved
/// before they are used, so a restart trusts what this process trusted.
pub async fn refresh(src: &MasterSource) -> Result<(), MasterError> {
    let url = format!("{}{}", src.platform_url.trim_end_matches('/'), MASTER_PATH);
    let resp = src
        .uplink
        .get(&url)
        .await
        .map_err(|e| MasterError::Fetch(e.to_string()))?;
    if resp.status.as_u16() != 200 {
        return Err(MasterError::Fetch(format!(
            "platform answered {}",
            resp.status
        )));
    }
    let sig = resp
        .headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    let (msg, published) = check(&resp.body, sig, &src.keyring, &src.platform, now_ms())?;
    let current = src
        .keyring
        .peer(src.platform.as_str())
        .ok_or(MasterError::WrongSender)?;
    let mut history = src.history();
    let peer = history.apply(&current, &published, now_ms(), src.overlap)?;
    let versions = src.install(peer)?;
    let dropping = history.dropping();
    drop(history);
    crate::fsutil::write_public(&src.document_file, &resp.body)
        .map_err(|e| MasterError::Persist(e.to_string()))?;
    if let Message::MasterInfo {
        valid_until,
        agencies,
        permissions,
        ..
    } = msg
    {
        *src.status() = MasterStatus {
            valid_until: Some(valid_until),
            fetched_at: Some(rfc3339_jst(now_ms())),
            agencies: agencies.len(),
            permissions: permissions.len(),
            platform_key_versions: versions,
            platform_keys_dropping: dropping,
            last_error: None,
        };
    }
    Ok(())
}

/// Refreshes the master information now and then every `refresh_every`, and drops the keys
/// whose overlap ended as soon as it ends.
pub async fn refresher(src: MasterSource, mut shutdown: watch::Receiver<bool>) {
    loop {
        if let Err(e) = refresh(&src).await {
            tracing::warn!(message = "Master information not refreshed; keeping the last good copy.", code = e.code(), error = %e);
            src.status().last_error = Some(e.code().to_string());
        }
        if let Err(e) = src.prune() {
            tracing::warn!(message = "Dropped platform keys could not be saved.", code = e.code(), error = %e);
            src.status().last_error = Some(e.code().to_string());
        }
        let now = now_ms();
        let wait = src
            .history()
            .next_deadline()
            .map(|d| Duration::from_millis(d.saturating_sub(now)))
            .map_or(src.refresh_every, |d| d.min(src.refresh_every));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use renkei_crypto::keyring::{Keyring, MasterKey};
    use renkei_platform::{to_xml, Header, PublishedKey};

    fn side(dir: &std::path::Path, agency: &str) -> KeyState {
        let master = MasterKey::generate_file(&dir.join("master.key")).unwrap();
        Keyring::generate()
            .unwrap()
            .save(&dir.join("keys"), &master)
            .unwrap();
        KeyState::load(
            AgencyCode::parse(agency).unwrap(),
            &dir.join("keys"),
            &dir.join("master.key"),
        )
        .unwrap()
    }

    fn master_doc(platform: &KeyState, valid_until_ms: u64, extra_key: Option<Vec<u8>>) -> Vec<u8> {
        let mut keys = Vec::new();
        if let Some(k) = extra_key {
            keys.push(PublishedKey {
                agency: platform.agency.clone(),
                key_use: KeyUse::Signing,
                version: 7,
                public_key: k,
                not_after: None,
            });
        }
        to_xml(&Message::MasterInfo {
            header: Header {
                message_id: "M1".into(),
                sender: platform.agency.clone(),
                recipient: AgencyCode::parse("0110020000000001").unwrap(),
                created_at: rfc3339_jst(now_ms()),
                in_reply_to: None,
            },
            valid_until: rfc3339_jst(valid_until_ms),
            agencies: vec![],
            procedures: vec![],
            items: vec![],
            permissions: vec![],
            keys,
        })
        .into_bytes()
    }

    #[test]
    fn master_information_is_verified_fresh_and_brings_new_keys() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("g")).unwrap();
        std::fs::create_dir_all(tmp.path().join("p")).unwrap();
        std::fs::create_dir_all(tmp.path().join("x")).unwrap();
        let gateway = side(&tmp.path().join("g"), "0110020000000001");
        let platform = side(&tmp.path().join("p"), "9900000000000001");
        let stranger = side(&tmp.path().join("x"), "9900000000000001");
        gateway.set_peer(platform.own_public());
        let pa = platform.agency.clone();
        let now = now_ms();
        let new_key = stranger.keyring().verifying_key(1).unwrap().to_sec1();

        // Good: signed by the known platform key, fresh; it lists only version 7, which
        // replaces the trusted set — version 1 stays for the overlap only.
        let doc = master_doc(&platform, now + 60_000, Some(new_key.clone()));
        let sig = platform.sign(&doc).unwrap();
        let (_, published) = check(&doc, Some(&sig), &gateway, &pa, now).unwrap();
        assert_eq!(
            published.signing.get(&7).map(|k| k.to_sec1()),
            Some(new_key)
        );
        let current = gateway.peer(pa.as_str()).unwrap();
        let overlap = Duration::from_secs(60);
        let mut history = KeyHistory::default();
        let trusted = history.apply(&current, &published, now, overlap).unwrap();
        assert!(trusted.signing.contains_key(&7));
        assert!(
            trusted.signing.contains_key(&1),
            "dropped, but in its overlap"
        );
        assert_eq!(history.dropping(), ["sealing v1", "signing v1"]);
        assert_eq!(history.next_deadline(), Some(now + 60_000));
        // A second copy within the overlap does not restart it.
        let again = history
            .apply(&trusted, &published, now + 30_000, overlap)
            .unwrap();
        assert!(again.signing.contains_key(&1));
        assert!(history.prune(&again, now + 59_999).is_none());
        let after = history.prune(&again, now + 60_000).unwrap();
        assert_eq!(after.signing.keys().copied().collect::<Vec<_>>(), [7]);
        assert!(after.sealing.is_empty());
        // Version 7 re-published with another key: refused, nothing changes.
        let other = gateway.keyring().verifying_key(1).unwrap().to_sec1();
        let doc = master_doc(&platform, now + 60_000, Some(other));
        let sig = platform.sign(&doc).unwrap();
        let (_, changed) = check(&doc, Some(&sig), &gateway, &pa, now).unwrap();
        let e = history
            .apply(&after, &changed, now + 61_000, overlap)
            .unwrap_err();
        assert_eq!(e.code(), "master_key_changed");
        assert!(history.dropping().is_empty());
        // Even a version dropped long ago keeps its key for ever.
        let mut only_v1 = published.clone();
        only_v1.signing = current.signing.clone();
        let back = history
            .apply(&after, &only_v1, now + 62_000, overlap)
            .unwrap();
        assert!(back.signing.contains_key(&1));
        let mut v1_changed = only_v1.clone();
        v1_changed
            .signing
            .insert(1, stranger.keyring().verifying_key(1).unwrap());
        assert_eq!(
            history
                .apply(&back, &v1_changed, now + 63_000, overlap)
                .unwrap_err()
                .code(),
            "master_key_changed"
        );
        // A document listing no signing key of the platform is refused.
        let doc = master_doc(&platform, now + 60_000, None);
        let sig = platform.sign(&doc).unwrap();
        assert_eq!(
            check(&doc, Some(&sig), &gateway, &pa, now)
                .unwrap_err()
                .code(),
            "master_no_signing_key"
        );

        // Stale.
        let doc = master_doc(&platform, now - 1, None);
        let sig = platform.sign(&doc).unwrap();
        assert_eq!(
            check(&doc, Some(&sig), &gateway, &pa, now)
                .unwrap_err()
                .code(),
            "master_stale"
        );

        // Signed by a key the gateway does not trust (same agency code, other key).
        let doc = master_doc(&platform, now + 60_000, None);
        let sig = stranger.sign(&doc).unwrap();
        assert_eq!(
            check(&doc, Some(&sig), &gateway, &pa, now)
                .unwrap_err()
                .code(),
            "master_signature"
        );

        // Altered after signing.
        let sig = platform.sign(&doc).unwrap();
        let mut altered = doc.clone();
        let pos = altered.len() - 20;
        altered[pos] ^= 1;
        assert_eq!(
            check(&altered, Some(&sig), &gateway, &pa, now)
                .unwrap_err()
                .code(),
            "master_signature"
        );
        // Unsigned.
        assert_eq!(
            check(&doc, None, &gateway, &pa, now).unwrap_err().code(),
            "master_signature"
        );
    }
}

//! The platform's master information (マスター情報): agencies, procedures, items, the national
//! permission table and the platform's public keys. It comes signed from the platform; the
//! gateway verifies it against keys it already trusts, refuses a stale or badly signed copy,
//! caches the last good one, and takes the platform's new keys from it (so a rotation on the
//! national side reaches the city without a manual step).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use renkei_ids::AgencyCode;
use std::path::PathBuf;

use renkei_platform::{from_xml, KeyUse, Message, MASTER_PATH};
use serde::Serialize;
use tokio::sync::watch;

use crate::keyring::{KeyState, PeerKeys, SIGNATURE_HEADER};
use crate::platform::Uplink;
use crate::util::{now_ms, parse_rfc3339_ms, rfc3339_jst};

/// How often the gateway refreshes it.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(3600);

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
    pub last_error: Option<String>,
}

/// Shared master status.
pub type SharedMaster = Arc<RwLock<MasterStatus>>;

/// Verifies a master information document; returns the message and the platform's keys.
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
    let mut peer = keys
        .peer(platform.as_str())
        .map(|p| (*p).clone())
        .ok_or(MasterError::WrongSender)?;
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
    Ok((msg, peer))
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
    let (msg, peer) = check(&resp.body, sig, &src.keyring, &src.platform, now_ms())?;
    peer.save(&src.peer_keys_file)
        .map_err(|e| MasterError::Persist(e.to_string()))?;
    crate::fsutil::write_public(&src.document_file, &resp.body)
        .map_err(|e| MasterError::Persist(e.to_string()))?;
    let versions = peer
        .signing
        .keys()
        .map(|v| format!("signing v{v}"))
        .chain(peer.sealing.keys().map(|v| format!("sealing v{v}")))
        .collect();
    src.keyring.set_peer(peer);
    if let Message::MasterInfo {
        valid_until,
        agencies,
        permissions,
        ..
    } = msg
    {
        let mut s = match src.status.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *s = MasterStatus {
            valid_until: Some(valid_until),
            fetched_at: Some(rfc3339_jst(now_ms())),
            agencies: agencies.len(),
            permissions: permissions.len(),
            platform_key_versions: versions,
            last_error: None,
        };
    }
    Ok(())
}

/// Refreshes the master information now and then every [`DEFAULT_REFRESH`].
pub async fn refresher(src: MasterSource, mut shutdown: watch::Receiver<bool>) {
    loop {
        if let Err(e) = refresh(&src).await {
            tracing::warn!(message = "Master information not refreshed; keeping the last good copy.", code = e.code(), error = %e);
            let mut s = match src.status.write() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            s.last_error = Some(e.code().to_string());
        }
        tokio::select! {
            _ = tokio::time::sleep(DEFAULT_REFRESH) => {}
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

        // Good: signed by the known platform key, fresh; the new key version is taken.
        let doc = master_doc(&platform, now + 60_000, Some(new_key.clone()));
        let sig = platform.sign(&doc).unwrap();
        let (_, peer) = check(&doc, Some(&sig), &gateway, &pa, now).unwrap();
        assert_eq!(peer.signing.get(&7).map(|k| k.to_sec1()), Some(new_key));
        assert!(peer.signing.contains_key(&1), "old versions are kept");

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

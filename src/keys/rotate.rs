//! Key rotation while serving, in the order that never breaks an exchange: a new signing key
//! is published to the platform (signed by the old one) before it signs; a new sealing key
//! can open before it is published; at-rest and blind-index keys switch at once (data follows
//! through [`reencrypt`](super::reencrypt)).

use renkei_crypto::keyring::KeyPurpose;
use renkei_platform::{KeyUse, Message, PublishedKey};

use super::{Error, Keys};
use crate::util::new_id;

/// Rotates one purpose's key while serving; returns the new version.
pub(super) async fn rotate(keys: &Keys, purpose: KeyPurpose) -> Result<u32, Error> {
    let mut next = keys.keyring.prepare()?;
    let version = next.rotate(purpose)?;
    match purpose {
        KeyPurpose::Signing => {
            // Publish first, signed with the current key the platform already trusts; only
            // then sign with the new one.
            let public = next
                .verifying_key(version)
                .ok_or(Error::Missing("new signing key"))?
                .to_sec1();
            publish(keys, KeyUse::Signing, version, public).await?;
            keys.keyring.install(next)?;
        }
        KeyPurpose::Sealing => {
            // Able to open the new version before anyone can seal to it.
            let public = next
                .opening_version(version)
                .ok_or(Error::Missing("new sealing key"))?
                .public_key()
                .to_bytes();
            keys.keyring.install(next)?;
            publish(keys, KeyUse::Sealing, version, public).await?;
        }
        _ => keys.keyring.install(next)?,
    }
    Ok(version)
}

async fn publish(
    keys: &Keys,
    key_use: KeyUse,
    version: u32,
    public_key: Vec<u8>,
) -> Result<(), Error> {
    let msg = Message::KeyPublication {
        header: keys.uplink.header(new_id("KP")),
        key: PublishedKey {
            agency: keys.agency.clone(),
            key_use,
            version,
            public_key,
            not_after: None,
        },
    };
    match keys.uplink.exchange(&msg).await {
        Ok(Message::KeyPublicationAck { version: v, .. }) if v == version => Ok(()),
        Ok(other) => Err(Error::Publication(format!(
            "the platform answered {} to the key publication",
            other.type_name()
        ))),
        Err(e) => Err(Error::Publication(format!(
            "publishing the key to the platform failed: {e}"
        ))),
    }
}

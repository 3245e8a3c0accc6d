//! The one reader and writer of the copy trees: `copies` (version id → the version, sealed
//! at rest and bound to its location `copies/<id>`) and `copy_index`
//! (`system \0 business number \0 item \0 version` → id, in version order, and the bulk
//! import's replay markers `\0 x: ‖ HMAC(what a line says)` → id, which no system's prefix can
//! reach). Writes are staged into a caller's batch, so a version, its schedule entry, its
//! linkage record and its marker change together.

use std::sync::Arc;

use renkei_crypto::at_rest::{decrypt_at_rest, encrypt_at_rest, AT_REST_MAGIC};
use renkei_ids::{BusinessNumber, ItemCode, SystemId};
use renkei_store::{prefix_end, Batch, Store, Tree};

use super::model::CopyVersion;
use crate::error::{Bug, Error};
use crate::keyring::KeyState;

/// Access to the copy trees.
#[derive(Clone)]
pub struct CopyRepo {
    store: Arc<dyn Store>,
    keys: Arc<KeyState>,
}

impl std::fmt::Debug for CopyRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyRepo").finish_non_exhaustive()
    }
}

fn location(id: &str) -> String {
    format!("copies/{id}")
}

/// The at-rest location a copy version's value is bound to, from its key in `Tree::Copies`.
pub fn copy_location(key: &[u8]) -> String {
    location(&String::from_utf8_lossy(key))
}

/// The index prefix of one person's copies of one item, for one system.
fn index_prefix(system: &SystemId, bn: &BusinessNumber, item: &ItemCode) -> Vec<u8> {
    let mut k = Vec::new();
    for part in [system.as_str(), bn.as_str(), item.as_str()] {
        k.extend_from_slice(part.as_bytes());
        k.push(0);
    }
    k
}

fn index_key(c: &CopyVersion) -> Vec<u8> {
    let mut k = index_prefix(&c.system, &c.business_number, &c.item);
    k.extend_from_slice(format!("{:010}", c.version).as_bytes());
    k
}

/// Prefix of the bulk import's replay markers in `Tree::CopyIndex`: a leading zero byte, so no
/// system's index prefix (which starts with its name) covers them.
const MARKER_PREFIX: &[u8] = b"\0x:";

impl CopyRepo {
    /// The replay marker of a registration from a file: keyed with the blind-index key over
    /// everything the line says (system, person, item, dataset, period, 不開示, the converted
    /// fields), so it reveals nothing of the line and the same line maps to the same marker.
    pub fn import_marker(&self, c: &CopyVersion) -> Vec<u8> {
        let mut plain = zeroize::Zeroizing::new(Vec::new());
        let nd = if c.non_disclosure { "1" } else { "0" };
        let to = c.effective_to.as_deref().unwrap_or_default();
        let head = [
            c.system.as_str(),
            c.business_number.as_str(),
            c.item.as_str(),
            c.dataset.as_str(),
            c.effective_from.as_str(),
            to,
            nd,
        ];
        let fields = c.fields.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]);
        for part in head.into_iter().chain(fields) {
            plain.extend_from_slice(part.as_bytes());
            plain.push(0x1f);
        }
        let mut k = MARKER_PREFIX.to_vec();
        k.extend_from_slice(&self.keys.keyring().blind_index().index(&plain));
        k
    }

    /// The version a replay marker points at, if that line was registered before.
    pub fn marked(&self, marker: &[u8]) -> Result<Option<CopyVersion>, Error> {
        match self.store.get(Tree::CopyIndex, marker)? {
            Some(id) => self.get(&String::from_utf8_lossy(&id)),
            None => Ok(None),
        }
    }

    /// Stages a replay marker pointing at version `id` (it must not exist yet).
    pub fn stage_marker(&self, b: &mut Batch, marker: &[u8], id: &str) {
        b.require_absent(Tree::CopyIndex, marker.to_vec());
        b.put(Tree::CopyIndex, marker.to_vec(), id.as_bytes().to_vec());
    }

    /// The repository over `store`, values sealed with `keys`' at-rest key.
    pub fn new(store: Arc<dyn Store>, keys: Arc<KeyState>) -> Self {
        Self { store, keys }
    }

    /// Reads a version by id.
    pub fn get(&self, id: &str) -> Result<Option<CopyVersion>, Error> {
        match self.store.get(Tree::Copies, id.as_bytes())? {
            Some(v) => Ok(Some(self.open(id, &v)?)),
            None => Ok(None),
        }
    }

    fn open(&self, id: &str, value: &[u8]) -> Result<CopyVersion, Error> {
        if !value.starts_with(AT_REST_MAGIC) {
            return Err(Error::internal(
                "reading a copy",
                Bug("stored copy is not sealed"),
            ));
        }
        let plain = zeroize::Zeroizing::new(
            decrypt_at_rest(&self.keys.keyring(), &location(id), value)
                .map_err(|e| Error::internal("reading a copy", e))?,
        );
        Ok(serde_json::from_slice(&plain)?)
    }

    /// Every version of a person's copy of an item, oldest first.
    pub fn versions(
        &self,
        system: &SystemId,
        bn: &BusinessNumber,
        item: &ItemCode,
    ) -> Result<Vec<CopyVersion>, Error> {
        let prefix = index_prefix(system, bn, item);
        let rows = self
            .store
            .range(Tree::CopyIndex, &prefix, &prefix_end(&prefix), usize::MAX)?;
        let mut out = Vec::with_capacity(rows.len());
        for (_, id) in rows {
            let id = String::from_utf8_lossy(&id).into_owned();
            if let Some(c) = self.get(&id)? {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// Stages the write of a version's current state.
    pub fn stage_put(&self, b: &mut Batch, c: &CopyVersion) -> Result<(), Error> {
        let plain = zeroize::Zeroizing::new(serde_json::to_vec(c)?);
        let sealed = encrypt_at_rest(&self.keys.keyring(), &location(&c.id), &plain)
            .map_err(|e| Error::internal("sealing a copy", e))?;
        b.put(Tree::Copies, c.id.as_bytes().to_vec(), sealed);
        Ok(())
    }

    /// Stages a new version: its index entry must not exist yet (a concurrent registration
    /// of the same version number makes the batch fail with a conflict).
    pub fn stage_new(&self, b: &mut Batch, c: &CopyVersion) -> Result<(), Error> {
        let k = index_key(c);
        b.require_absent(Tree::CopyIndex, k.clone());
        b.put(Tree::CopyIndex, k, c.id.as_bytes().to_vec());
        self.stage_put(b, c)
    }
}

//! What operators see: counts of what the gateway holds, how the store commits, and the state
//! of the platform's master information.

use renkei_store::{CommitStats, Store, StoreError, Tree};
use serde::Serialize;

use crate::keys::master::{MasterStatus, SharedMaster};

/// `GET /v1/ops/stats`.
#[derive(Debug, Serialize)]
pub struct OpsStats {
    pub inquiries: usize,
    pub persons: usize,
    pub scheduled_jobs: usize,
    pub awaiting_code: usize,
    pub records: usize,
    pub commits: CommitStats,
    pub master_info: MasterStatus,
}

/// Counts now.
pub fn stats(store: &dyn Store, master: &SharedMaster) -> Result<OpsStats, StoreError> {
    Ok(OpsStats {
        inquiries: store.len(Tree::Inquiries)?,
        persons: store.len(Tree::Persons)?,
        scheduled_jobs: store.len(Tree::Due)?,
        awaiting_code: store.len(Tree::AwaitingCode)?,
        records: store.len(Tree::Records)?,
        commits: store.stats(),
        master_info: match master.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        },
    })
}

//! A copy version (副本の版) as stored, its transfer status and the business system's view.

use renkei_ids::{BusinessNumber, ItemCode, SystemId, UnifiedAddressNumber};
use serde::{Deserialize, Serialize};

/// Where a copy version's transfer to the platform is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferStatus {
    /// Durable here, waiting for (or retrying) the transfer.
    Queued,
    /// The platform acknowledged it.
    Transferred,
    /// The platform refused it; `error` says why.
    Failed,
}

impl TransferStatus {
    /// The status as written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            TransferStatus::Queued => "queued",
            TransferStatus::Transferred => "transferred",
            TransferStatus::Failed => "failed",
        }
    }
}

/// Why a transfer failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferError {
    /// Stable code, e.g. `platform_rejected`.
    pub code: String,
    pub message: String,
    /// The platform's own code and text, verbatim, when it gave them.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub platform_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub platform_message: Option<String>,
}

/// One version of a person's copy of one item, as stored (sealed at rest).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CopyVersion {
    /// The version's id (`CP…`), also the transfer's message id.
    pub id: String,
    pub system: SystemId,
    pub business_number: BusinessNumber,
    pub unified: UnifiedAddressNumber,
    pub item: ItemCode,
    /// データセット番号.
    pub dataset: String,
    /// 版番号, from 1.
    pub version: u32,
    pub effective_from: String,
    #[serde(default)]
    pub effective_to: Option<String>,
    /// 不開示: the platform must not disclose this copy's data.
    #[serde(default)]
    pub non_disclosure: bool,
    /// A withdrawal (削除): the copy is no longer held.
    #[serde(default)]
    pub withdrawn: bool,
    /// The converted fields (platform names and values); empty for a withdrawal.
    #[serde(default)]
    pub fields: Vec<(String, String)>,
    pub status: TransferStatus,
    #[serde(default)]
    pub error: Option<TransferError>,
    #[serde(default)]
    pub attempts: u32,
    pub accepted_ms: u64,
    #[serde(default)]
    pub transferred_ms: Option<u64>,
    /// The due-tree key scheduling this version's transfer (removed when it is final).
    #[serde(default)]
    pub due_key: Option<Vec<u8>>,
}

/// A copy version as its business system sees it (no data: the system has its own).
#[derive(Debug, Serialize)]
pub struct CopyView<'a> {
    pub id: &'a str,
    pub version: u32,
    pub status: TransferStatus,
    pub item_code: &'a ItemCode,
    pub dataset: &'a str,
    pub effective_from: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective_to: Option<&'a str>,
    pub non_disclosure: bool,
    pub withdrawn: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a TransferError>,
    pub accepted_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transferred_at: Option<String>,
}

impl CopyVersion {
    /// The business system's view.
    pub fn view(&self) -> CopyView<'_> {
        use crate::util::rfc3339_jst;
        CopyView {
            id: &self.id,
            version: self.version,
            status: self.status,
            item_code: &self.item,
            dataset: &self.dataset,
            effective_from: &self.effective_from,
            effective_to: self.effective_to.as_deref(),
            non_disclosure: self.non_disclosure,
            withdrawn: self.withdrawn,
            error: self.error.as_ref(),
            accepted_at: rfc3339_jst(self.accepted_ms),
            transferred_at: self.transferred_ms.map(rfc3339_jst),
        }
    }

    /// True when `other` says the same as this version (a repeated registration).
    pub fn same_content(&self, other: &CopyVersion) -> bool {
        self.dataset == other.dataset
            && self.effective_from == other.effective_from
            && self.effective_to == other.effective_to
            && self.non_disclosure == other.non_disclosure
            && self.withdrawn == other.withdrawn
            && self.fields == other.fields
    }
}

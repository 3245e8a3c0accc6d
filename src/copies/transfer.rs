//! Transferring one copy version to the platform (情報転送): what the dispatcher runs when a
//! version's schedule entry is due. The data is sealed to the platform, the message signed;
//! the message id is the version's id, so a resend after a crash is recognised there and takes
//! effect once. Each outcome is one atomic batch: the version's new state, its schedule entry
//! moved or removed, and its linkage record.

use std::sync::Arc;

use renkei_ids::{AgencyCode, ItemCode};
use renkei_platform::{Message, PlatformFault, ResultItem, ResultPayload, SealedData};
use renkei_records::RecordResult;
use renkei_store::{Batch, Store};

use super::model::{CopyVersion, TransferError, TransferStatus};
use super::record::copy_record;
use super::repo::CopyRepo;
use crate::error::Error;
use crate::keyring::KeyError;
use crate::platform::policy::LOCAL_FAILURE_ATTEMPT;
use crate::platform::{Policy, Uplink, UplinkError};
use crate::schedule::{self, Job};
use crate::util::{now_ms, rfc3339_jst};

/// Everything transferring a copy needs.
pub struct Transfer {
    pub store: Arc<dyn Store>,
    pub repo: CopyRepo,
    pub uplink: Uplink,
    pub policy: Arc<Policy>,
    /// This city's agency code, named in every record.
    pub agency: AgencyCode,
}

fn rejected(fault: PlatformFault) -> TransferError {
    TransferError {
        code: "platform_rejected".into(),
        message: "the platform refused the copy".into(),
        platform_code: Some(fault.code),
        platform_message: Some(fault.message),
    }
}

/// One item's fields as a [`ResultPayload`], sealed to the platform for a message of type
/// `message_type` whose id is `message_id` (a copy transfer, a manual provision answer).
pub(super) fn seal_item(
    uplink: &Uplink,
    message_type: &str,
    message_id: &str,
    item: &ItemCode,
    fields: &[(String, String)],
) -> Result<SealedData, KeyError> {
    let payload = ResultPayload {
        items: vec![ResultItem {
            item: item.clone(),
            fields: fields.to_vec(),
        }],
    };
    let xml = zeroize::Zeroizing::new(payload.to_xml());
    uplink.keys.seal_to(
        uplink.platform.as_str(),
        message_type,
        message_id,
        xml.as_bytes(),
    )
}

impl Transfer {
    /// Runs the copy job whose schedule entry is `key`.
    pub async fn run(&self, key: &[u8], id: &str) -> Result<(), Error> {
        let copy = match self.repo.get(id)? {
            Some(c) if c.status == TransferStatus::Queued && c.due_key.as_deref() == Some(key) => c,
            _ => {
                let mut b = Batch::new();
                schedule::stage_done(&mut b, key);
                self.store.commit(b).await?;
                return Ok(());
            }
        };
        let now = now_ms();
        let wait = self.policy.until_open_ms(now);
        if wait > 0 {
            return self.reschedule(copy, now + wait, false).await;
        }
        let sealed = if copy.withdrawn {
            None
        } else {
            match seal_item(
                &self.uplink,
                "CopyTransfer",
                &copy.id,
                &copy.item,
                &copy.fields,
            ) {
                Ok(s) => Some(s),
                Err(error) => {
                    tracing::error!(message = "Cannot seal to the platform.", %error, copy_id = %copy.id);
                    let at = now_ms() + self.policy.backoff_ms(LOCAL_FAILURE_ATTEMPT);
                    return self.reschedule(copy, at, true).await;
                }
            }
        };
        let msg = Message::CopyTransfer {
            header: self.uplink.header(copy.id.clone()),
            record_id: copy.id.clone(),
            unified: copy.unified,
            item: copy.item.clone(),
            dataset: copy.dataset.clone(),
            version: copy.version,
            first: copy.version == 1,
            effective_from: copy.effective_from.clone(),
            effective_to: copy.effective_to.clone(),
            non_disclosure: copy.non_disclosure,
            sealed,
        };
        let answer = self.policy.exchange(&self.uplink, &msg).await;
        match answer {
            Ok(Message::CopyTransferAck {
                record_id, fault, ..
            }) if record_id == copy.id => match fault {
                None => self.finish(copy, None).await,
                Some(f) => self.finish(copy, Some(rejected(f))).await,
            },
            Ok(other) => {
                tracing::warn!(message = "Unexpected answer; sending again later.", answer = other.type_name(), copy_id = %copy.id);
                let at = now_ms() + self.policy.backoff_ms(copy.attempts);
                self.reschedule(copy, at, true).await
            }
            Err(UplinkError::Fault(f)) => self.finish(copy, Some(rejected(f))).await,
            Err(e) => {
                let at = self.policy.retry_at(&e, copy.attempts);
                tracing::info!(message = "Platform not reachable; will retry.", reason = e.code(), copy_id = %copy.id);
                self.reschedule(copy, at, true).await
            }
        }
    }

    async fn reschedule(&self, mut copy: CopyVersion, at: u64, attempt: bool) -> Result<(), Error> {
        let mut b = Batch::new();
        let due = schedule::stage_move(&mut b, copy.due_key.take(), at, Job::Copy(copy.id.clone()));
        copy.due_key = Some(due);
        if attempt {
            copy.attempts = copy.attempts.saturating_add(1);
        }
        self.repo.stage_put(&mut b, &copy)?;
        self.store.commit(b).await?;
        Ok(())
    }

    async fn finish(
        &self,
        mut copy: CopyVersion,
        error: Option<TransferError>,
    ) -> Result<(), Error> {
        let now = now_ms();
        let mut b = Batch::new();
        if let Some(old) = copy.due_key.take() {
            schedule::stage_done(&mut b, &old);
        }
        let what = if copy.withdrawn {
            "copy_withdrawal"
        } else {
            "copy"
        };
        let (result, reason) = match &error {
            None => {
                copy.status = TransferStatus::Transferred;
                copy.transferred_ms = Some(now);
                (
                    RecordResult::Done,
                    format!("{what} v{} transferred", copy.version),
                )
            }
            Some(e) => {
                copy.status = TransferStatus::Failed;
                let pc = e.platform_code.as_deref().unwrap_or("-");
                (
                    RecordResult::Refused,
                    format!("{what} v{} refused ({pc})", copy.version),
                )
            }
        };
        copy.error = error;
        let mut r = copy_record(&copy, result, &self.agency);
        r.inquirer = Some(self.uplink.platform.clone());
        r.provided_at = Some(rfc3339_jst(now));
        r.reason = Some(reason);
        crate::records::append(&mut b, &r);
        self.repo.stage_put(&mut b, &copy)?;
        self.store.commit(b).await?;
        tracing::info!(message = "Copy transfer finished.", copy_id = %copy.id, status = copy.status.as_str());
        Ok(())
    }
}

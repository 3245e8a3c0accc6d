//! Delivering one inquiry: the work the dispatcher hands over when an inquiry's schedule
//! entry is due — send it (sealed, signed), fetch its result, or fail it at its deadline —
//! and the waking of inquiries that waited for a person's code.
//!
//! Each outcome is one atomic batch: the inquiry's new state, its schedule entry moved or
//! removed, and its linkage record. Delivery is at-least-once toward the platform (a crash
//! between the platform's receipt and our write of it sends again); the message id is the
//! inquiry id and the platform dedupes by it, so the effect is exactly once.

use std::sync::Arc;

use renkei_ids::{AgencyCode, InquiryId, UnifiedAddressNumber};
use renkei_platform::{
    faults, Condition, Message, ReceiptOutcome, ResultPayload, ResultStatus, TargetPayload,
};
use renkei_records::{Record, RecordResult};
use renkei_store::{Batch, Store};

use super::model::{Conditions, Inquiry, InquiryError, InquiryResult, ResultItem, Status};
use super::record::{final_result, inquiry_record};
use super::repo::InquiryRepo;
use crate::error::Error;
use crate::platform::policy::LOCAL_FAILURE_ATTEMPT;
use crate::platform::{Policy, Uplink, UplinkError};
use crate::registry::{CodeStatus, Registry};
use crate::schedule::{self, Job};
use crate::util::{new_id, now_ms, rfc3339_jst};

/// An inquiry waiting for a code is re-checked this often even without a wake-up (a missed
/// wake-up costs at most this long).
pub const AWAIT_CODE_RECHECK_MS: u64 = 30_000;

/// Everything delivering an inquiry needs, and nothing more.
pub struct Delivery {
    pub store: Arc<dyn Store>,
    pub repo: InquiryRepo,
    pub registry: Arc<Registry>,
    pub uplink: Uplink,
    pub policy: Arc<Policy>,
    /// This city's agency code, named in every record.
    pub agency: AgencyCode,
    /// How often a sent inquiry's result is fetched.
    pub poll_interval_ms: u64,
}

fn failure(code: &str, message: &str) -> InquiryError {
    InquiryError {
        code: code.into(),
        message: message.into(),
        platform_code: None,
        platform_message: None,
    }
}

fn rejected(fault: renkei_platform::PlatformFault) -> InquiryError {
    InquiryError {
        code: match fault.code.as_str() {
            faults::NOT_PERMITTED => "platform_not_permitted".into(),
            faults::DUPLICATE_RECORD => "platform_duplicate_record".into(),
            _ => "platform_rejected".into(),
        },
        message: "the platform refused the inquiry".into(),
        platform_code: Some(fault.code),
        platform_message: Some(fault.message),
    }
}

impl Delivery {
    /// Runs the inquiry job whose schedule entry is `key`.
    pub async fn run(&self, key: &[u8], id: &InquiryId) -> Result<(), Error> {
        let inquiry = match self.repo.get(id)? {
            Some(i) if !i.status.is_final() && i.due_key.as_deref() == Some(key) => i,
            _ => {
                // Gone, finished, or a stale entry: the inquiry moved on.
                let mut b = Batch::new();
                schedule::stage_done(&mut b, key);
                self.store.commit(b).await?;
                return Ok(());
            }
        };
        let now = now_ms();
        if now >= inquiry.deadline_ms {
            let e = failure(
                "deadline_passed",
                "the platform did not answer before the inquiry's deadline",
            );
            return self.fail(inquiry, e).await;
        }
        let wait = self.policy.until_open_ms(now);
        if wait > 0 {
            return self.reschedule(inquiry, now + wait, false, None).await;
        }
        match inquiry.status {
            Status::Queued | Status::AwaitingCode => self.submit(inquiry).await,
            Status::Sent => self.fetch_result(inquiry).await,
            Status::Answered | Status::Failed => Ok(()),
        }
    }

    fn record(&self, inquiry: &Inquiry, result: RecordResult, reason: &str) -> Record {
        let mut r = inquiry_record(inquiry, result);
        r.inquirer = Some(self.agency.clone());
        r.reason = Some(reason.into());
        r
    }

    async fn submit(&self, mut inquiry: Inquiry) -> Result<(), Error> {
        let Some(person) = self.registry.person(&inquiry.unified)? else {
            let e = failure(
                "person_not_found",
                "the person behind this business number is gone",
            );
            return self.fail(inquiry, e).await;
        };
        if person.code_status != CodeStatus::Acquired {
            return self.await_code(inquiry).await;
        }
        let uplink = &self.uplink;
        let target = TargetPayload {
            unified: inquiry.unified,
        }
        .to_xml();
        let sealed = match uplink.keys.seal_to(
            uplink.platform.as_str(),
            "InquiryRequest",
            inquiry.id.as_str(),
            target.as_bytes(),
        ) {
            Ok(s) => s,
            Err(error) => {
                tracing::error!(message = "Cannot seal to the platform.", %error, inquiry_id = %inquiry.id);
                let at = now_ms() + self.policy.backoff_ms(LOCAL_FAILURE_ATTEMPT);
                return self.reschedule(inquiry, at, true, None).await;
            }
        };
        let condition = match &inquiry.conditions {
            Conditions::FiscalYear { fiscal_year } => Condition::FiscalYear(*fiscal_year),
            Conditions::Period { from, to } => Condition::Period {
                from: from.clone(),
                to: to.clone(),
            },
        };
        let msg = Message::InquiryRequest {
            header: uplink.header(inquiry.id.to_string()),
            record_id: inquiry.id.to_string(),
            affair: inquiry.affair.clone(),
            procedure: inquiry.procedure.clone(),
            item: inquiry.item.clone(),
            inquirer: uplink.keys.agency.clone(),
            provider: None,
            non_disclosure: inquiry.non_disclosure,
            condition,
            sealed,
        };
        let answer = self.policy.exchange(uplink, &msg).await;
        match answer {
            Ok(Message::InquiryReceipt { outcome, .. }) => match outcome {
                ReceiptOutcome::Accepted { serial } => {
                    let now = now_ms();
                    inquiry.status = Status::Sent;
                    inquiry.serial = Some(serial);
                    inquiry.sent_ms = Some(now);
                    inquiry.attempts = 0;
                    tracing::info!(message = "Inquiry sent.", inquiry_id = %inquiry.id);
                    let r = self.record(&inquiry, RecordResult::Accepted, "sent");
                    self.reschedule(inquiry, now + self.poll_interval_ms, false, Some(r))
                        .await
                }
                ReceiptOutcome::Rejected { fault } => {
                    if fault.code == faults::CODE_NOT_ACQUIRED {
                        return self.await_code(inquiry).await;
                    }
                    self.fail(inquiry, rejected(fault)).await
                }
            },
            Ok(other) => self.untrusted(inquiry, other.type_name()).await,
            Err(UplinkError::Fault(fault)) => self.fail(inquiry, rejected(fault)).await,
            Err(e) => self.retry_later(inquiry, e).await,
        }
    }

    /// An answer of the wrong type or for another inquiry: not believed; fetched again later.
    async fn untrusted(&self, inquiry: Inquiry, what: &str) -> Result<(), Error> {
        tracing::warn!(message = "Unexpected answer; asking again later.", answer = what, inquiry_id = %inquiry.id);
        let at = now_ms() + self.policy.backoff_ms(inquiry.attempts);
        self.reschedule(inquiry, at, true, None).await
    }

    async fn fetch_result(&self, mut inquiry: Inquiry) -> Result<(), Error> {
        let Some(serial) = inquiry.serial.clone() else {
            inquiry.status = Status::Queued;
            return self.reschedule(inquiry, now_ms(), false, None).await;
        };
        let uplink = &self.uplink;
        let msg = Message::ResultRequest {
            header: uplink.header(new_id("RQ")),
            serial: serial.clone(),
        };
        let answer = self.policy.exchange(uplink, &msg).await;
        let (status, provider, sealed, fault, message_id) = match answer {
            Ok(Message::InquiryResult {
                status,
                provider,
                sealed,
                fault,
                header,
                serial: answered,
                record_id,
            }) => {
                // The answer must be about this inquiry: its serial and its record id.
                if answered != serial || record_id != inquiry.id.as_str() {
                    return self
                        .untrusted(inquiry, "InquiryResult for another inquiry")
                        .await;
                }
                (status, provider, sealed, fault, header.message_id)
            }
            Ok(other) => return self.untrusted(inquiry, other.type_name()).await,
            Err(UplinkError::Fault(fault)) => return self.fail(inquiry, rejected(fault)).await,
            Err(e) => return self.retry_later(inquiry, e).await,
        };
        let (detail_status, item_status) = match status {
            ResultStatus::Pending => {
                let at = now_ms() + self.poll_interval_ms;
                return self.reschedule(inquiry, at, false, None).await;
            }
            ResultStatus::Finished {
                detail_status,
                item_status,
            } => (detail_status, item_status),
        };
        if let Some(fault) = fault {
            return self.fail(inquiry, rejected(fault)).await;
        }
        let mut items = Vec::new();
        if let Some(sealed) = sealed {
            let payload = uplink
                .keys
                .open("InquiryResult", &message_id, &sealed)
                .map_err(|e| e.to_string())
                .and_then(|b| ResultPayload::from_xml(&b).map_err(|e| e.to_string()));
            match payload {
                Ok(p) => {
                    if p.items.iter().any(|it| it.item != inquiry.item) {
                        return self
                            .untrusted(inquiry, "items other than the one asked")
                            .await;
                    }
                    items.extend(p.items.into_iter().map(|it| ResultItem {
                        item: it.item,
                        fields: it.fields,
                    }));
                }
                Err(error) => {
                    tracing::warn!(message = "Result could not be opened; will fetch again.", %error, inquiry_id = %inquiry.id);
                    let at = now_ms() + self.policy.backoff_ms(inquiry.attempts);
                    return self.reschedule(inquiry, at, true, None).await;
                }
            }
        }
        inquiry.status = Status::Answered;
        inquiry.finished_ms = Some(now_ms());
        inquiry.result = Some(InquiryResult {
            provider_agency: provider.map(|p| p.to_string()),
            detail_status,
            item_status,
            items,
        });
        tracing::info!(message = "Inquiry answered.", inquiry_id = %inquiry.id);
        self.finish(inquiry).await
    }

    async fn retry_later(&self, inquiry: Inquiry, e: UplinkError) -> Result<(), Error> {
        let at = self.policy.retry_at(&e, inquiry.attempts);
        tracing::info!(message = "Platform not reachable; will retry.", reason = e.code(), inquiry_id = %inquiry.id, retry_in_ms = at.saturating_sub(now_ms()));
        self.reschedule(inquiry, at, true, None).await
    }

    async fn await_code(&self, mut inquiry: Inquiry) -> Result<(), Error> {
        let mut b = Batch::new();
        let at = now_ms() + AWAIT_CODE_RECHECK_MS;
        let due = schedule::stage_move(
            &mut b,
            inquiry.due_key.take(),
            at,
            Job::Inquiry(inquiry.id.clone()),
        );
        self.repo
            .stage_awaiting(&mut b, &inquiry.unified, &inquiry.id);
        inquiry.due_key = Some(due);
        let changed = inquiry.status != Status::AwaitingCode;
        inquiry.status = Status::AwaitingCode;
        if changed {
            let r = self.record(&inquiry, RecordResult::Accepted, "awaiting_code");
            crate::records::append(&mut b, &r);
        }
        self.repo.stage_put(&mut b, &inquiry)?;
        self.store.commit(b).await?;
        // The code may have been acquired between our read of the person and the commit
        // above, after the acquisition's wake-up scan: check once more.
        let acquired = matches!(
            self.registry.person(&inquiry.unified),
            Ok(Some(p)) if p.code_status == CodeStatus::Acquired
        );
        if acquired {
            self.wake_waiting(&inquiry.unified).await?;
        }
        Ok(())
    }

    async fn reschedule(
        &self,
        mut inquiry: Inquiry,
        at: u64,
        count_attempt: bool,
        record: Option<Record>,
    ) -> Result<(), Error> {
        let mut b = Batch::new();
        if let Some(r) = &record {
            crate::records::append(&mut b, r);
        }
        let due = schedule::stage_move(
            &mut b,
            inquiry.due_key.take(),
            at,
            Job::Inquiry(inquiry.id.clone()),
        );
        inquiry.due_key = Some(due);
        if count_attempt {
            inquiry.attempts = inquiry.attempts.saturating_add(1);
        }
        self.repo.stage_put(&mut b, &inquiry)?;
        self.store.commit(b).await?;
        Ok(())
    }

    async fn fail(&self, mut inquiry: Inquiry, error: InquiryError) -> Result<(), Error> {
        tracing::info!(message = "Inquiry failed.", inquiry_id = %inquiry.id, reason = %error.code);
        inquiry.status = Status::Failed;
        inquiry.finished_ms = Some(now_ms());
        inquiry.error = Some(error);
        self.finish(inquiry).await
    }

    async fn finish(&self, mut inquiry: Inquiry) -> Result<(), Error> {
        let mut b = Batch::new();
        let mut r = inquiry_record(&inquiry, final_result(&inquiry));
        r.inquirer = Some(self.agency.clone());
        r.provided_at = inquiry.finished_ms.map(rfc3339_jst);
        r.provider = inquiry
            .result
            .as_ref()
            .and_then(|x| x.provider_agency.as_deref())
            .and_then(|a| AgencyCode::parse(a).ok());
        r.reason = inquiry.error.as_ref().map(|e| match &e.platform_code {
            Some(pc) => format!("{} ({pc})", e.code),
            None => e.code.clone(),
        });
        crate::records::append(&mut b, &r);
        if let Some(old) = inquiry.due_key.take() {
            schedule::stage_done(&mut b, &old);
        }
        self.repo
            .stage_not_awaiting(&mut b, &inquiry.unified, &inquiry.id);
        self.repo.stage_put(&mut b, &inquiry)?;
        self.store.commit(b).await?;
        crate::metrics::global().inquiry_finished(inquiry.status.as_str());
        Ok(())
    }

    /// Moves every inquiry waiting for `u`'s code back to the front of the schedule; returns
    /// whether any was moved.
    pub async fn wake_waiting(&self, u: &UnifiedAddressNumber) -> Result<bool, Error> {
        let mut b = Batch::new();
        let now = now_ms();
        for (key, id) in self.repo.awaiting(u)? {
            self.repo.stage_awaiting_done(&mut b, key);
            let Some(id) = id else { continue };
            let Some(mut inq) = self.repo.get(&id)? else {
                continue;
            };
            if inq.status.is_final() {
                continue;
            }
            let due = schedule::stage_move(&mut b, inq.due_key.take(), now, Job::Inquiry(id));
            inq.due_key = Some(due);
            inq.status = Status::Queued;
            self.repo.stage_put(&mut b, &inq)?;
        }
        if b.is_empty() {
            return Ok(false);
        }
        self.store.commit(b).await?;
        Ok(true)
    }
}

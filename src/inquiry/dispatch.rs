//! The dispatcher: takes due work from the durable schedule and moves it toward the
//! platform — code acquisitions and inquiries — with a concurrency cap, exponential backoff
//! with jitter, the platform's operating window and each inquiry's deadline.
//!
//! It is at-least-once: a crash between the platform's receipt and our write of it means the
//! message is sent again after restart. The message id is the inquiry id, and the platform
//! dedupes by it, so the effect is exactly once.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use renkei_ids::{Fugo, UnifiedAddressNumber};
use renkei_platform::{
    CodeOutcome, Condition, IdentityPayload, Message, ReceiptOutcome, ResultPayload, ResultStatus,
    TargetPayload,
};
use tokio::sync::{watch, Semaphore};

use super::{inquiry_job, Conditions, Inquiry, InquiryError, InquiryResult, ResultItem, Status};
use crate::config::parse_hours;
use crate::gateway::Gateway;
use crate::records;
use crate::registry::{code_job, due_key, CodeStatus};
use crate::uplink::UplinkError;
use crate::util::{ms_until_open, new_id, now_ms, rfc3339_jst};
use renkei_records::{Record, RecordKind, RecordResult};
use renkei_store::{key2, prefix_end, Batch, StoreError, Tree};

/// Due entries read per scan of the schedule.
const SCAN_BATCH: usize = 512;
/// Longest idle wait between scans (also bounds how late a timer-less wake can be).
const IDLE_WAIT: Duration = Duration::from_millis(1_000);
/// An inquiry waiting for a code is re-checked this often even without a wake-up.
const AWAIT_CODE_RECHECK_MS: u64 = 30_000;
/// Platform fault code meaning "code (符号) not yet acquired for this unified number".
pub const FAULT_CODE_NOT_ACQUIRED: &str = "E1001";

/// The dispatcher.
pub struct Dispatcher {
    gw: Arc<Gateway>,
    in_flight: Mutex<HashSet<Vec<u8>>>,
    permits: Arc<Semaphore>,
    /// No new platform work starts before this time (ms): the platform is closed or failing.
    /// One shared pause instead of every queued inquiry probing a closed platform on its own.
    paused_until: AtomicU64,
    /// Consecutive transient failures toward the platform (resets on any answer).
    failures: AtomicU32,
}

impl Dispatcher {
    /// A dispatcher for the gateway.
    pub fn new(gw: Arc<Gateway>) -> Arc<Self> {
        let permits = Arc::new(Semaphore::new(gw.config.platform.max_in_flight));
        Arc::new(Self {
            gw,
            in_flight: Mutex::new(HashSet::new()),
            permits,
            paused_until: AtomicU64::new(0),
            failures: AtomicU32::new(0),
        })
    }

    fn claim(&self, key: &[u8]) -> bool {
        match self.in_flight.lock() {
            Ok(mut g) => g.insert(key.to_vec()),
            Err(p) => p.into_inner().insert(key.to_vec()),
        }
    }

    fn release(&self, key: &[u8]) {
        match self.in_flight.lock() {
            Ok(mut g) => g.remove(key),
            Err(p) => p.into_inner().remove(key),
        };
    }

    /// Runs until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        // Where the next scan starts: each round walks the due part of the schedule once
        // instead of re-reading the (in-flight) head of it after every finished job.
        let mut cursor: Vec<u8> = Vec::new();
        loop {
            if *shutdown.borrow() {
                break;
            }
            let now = now_ms();
            let closed_for = self.window_wait(now);
            if closed_for > 0 {
                // Outside the platform's operating hours: nothing is touched until it opens.
                self.paused_until
                    .fetch_max(now + closed_for, Ordering::Relaxed);
                continue;
            }
            let due =
                match self
                    .gw
                    .store
                    .range(Tree::Due, &cursor, &(now + 1).to_be_bytes(), SCAN_BATCH)
                {
                    Ok(d) => d,
                    Err(error) => {
                        tracing::error!(message = "Cannot read the schedule.", %error);
                        Vec::new()
                    }
                };
            let round_done = due.len() < SCAN_BATCH;
            if !due.is_empty() {
                // A durability barrier: the store shows a commit group to readers a moment
                // before its fsync ends, so what we just scanned may not be on disk yet. An
                // empty commit returns only after every earlier group is durable, so nothing
                // reaches the platform that a crash could still take back.
                if let Err(error) = self.gw.store.commit(Batch::new()).await {
                    tracing::error!(message = "Durability barrier failed.", %error);
                    tokio::select! {
                        _ = tokio::time::sleep(IDLE_WAIT) => {}
                        _ = shutdown.changed() => break,
                    }
                    continue;
                }
            }
            let mut started = 0usize;
            for (key, _) in due {
                if self.paused_until.load(Ordering::Relaxed) > now_ms() {
                    // The platform is closed or failing: leave the rest where it is.
                    break;
                }
                cursor.clone_from(&key);
                cursor.push(0);
                if !self.claim(&key) {
                    continue;
                }
                let permit = tokio::select! {
                    p = self.permits.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => return,
                    },
                    _ = shutdown.changed() => return,
                };
                started += 1;
                let me = self.clone();
                tokio::spawn(async move {
                    me.run_job(&key).await;
                    me.release(&key);
                    drop(permit);
                });
            }
            if round_done {
                cursor.clear();
            }
            if started > 0 || !round_done {
                continue;
            }
            let wait = match self.gw.store.range(Tree::Due, &[], &[], 1) {
                Ok(first) => first
                    .first()
                    .and_then(|(k, _)| k.get(..8))
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_be_bytes)
                    .map(|t| Duration::from_millis(t.saturating_sub(now_ms()).max(5)))
                    .unwrap_or(IDLE_WAIT)
                    .min(IDLE_WAIT),
                Err(_) => IDLE_WAIT,
            };
            tokio::select! {
                _ = self.gw.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => break,
            }
        }
    }

    async fn run_job(&self, key: &[u8]) {
        let job = String::from_utf8_lossy(&key[8.min(key.len())..]).to_string();
        let outcome = if let Some(id) = job.strip_prefix("i:") {
            self.inquiry_job(key, id).await
        } else if let Some(u) = job.strip_prefix("c:") {
            self.code_job(key, u).await
        } else {
            tracing::warn!(message = "Unknown job in schedule; removing.", job = %job);
            let mut b = Batch::new();
            b.delete(Tree::Due, key.to_vec());
            self.gw.store.commit(b).await.map(|_| ())
        };
        if let Err(error) = outcome {
            tracing::error!(message = "Job failed to save; it stays scheduled.", job = %job, %error);
        }
    }

    fn backoff_ms(&self, attempts: u32) -> u64 {
        let p = &self.gw.config.platform;
        let exp = p
            .backoff_base_ms
            .saturating_mul(1u64 << attempts.min(20))
            .min(p.backoff_max_ms);
        // Full jitter over the upper half: spreads retries of many inquiries apart.
        exp / 2 + fastrand::u64(0..=exp / 2)
    }

    fn window_wait(&self, now: u64) -> u64 {
        parse_hours(&self.gw.config.platform.operating_hours)
            .map(|w| ms_until_open(now, w))
            .unwrap_or(0)
    }

    // ---------------------------------------------------------------- inquiries

    async fn inquiry_job(&self, key: &[u8], id: &str) -> Result<(), StoreError> {
        let inquiry = match self.gw.inquiry(id) {
            Ok(Some(i)) => i,
            Ok(None) => {
                let mut b = Batch::new();
                b.delete(Tree::Due, key.to_vec());
                return self.gw.store.commit(b).await.map(|_| ());
            }
            Err(e) => return Err(StoreError::Io(e.to_string())),
        };
        if inquiry.status.is_final() || inquiry.due_key.as_deref() != Some(key) {
            // A stale schedule entry: the inquiry moved on.
            let mut b = Batch::new();
            b.delete(Tree::Due, key.to_vec());
            return self.gw.store.commit(b).await.map(|_| ());
        }
        let now = now_ms();
        if now >= inquiry.deadline_ms {
            return self
                .fail(
                    inquiry,
                    InquiryError {
                        code: "deadline_passed".into(),
                        message: "the platform did not answer before the inquiry's deadline".into(),
                        platform_code: None,
                        platform_message: None,
                    },
                )
                .await;
        }
        let wait = self.window_wait(now);
        if wait > 0 {
            return self.reschedule(inquiry, now + wait, false).await;
        }
        match inquiry.status {
            Status::Queued | Status::AwaitingCode => self.submit(inquiry).await,
            Status::Sent => self.fetch_result(inquiry).await,
            Status::Answered | Status::Failed => Ok(()),
        }
    }

    async fn submit(&self, mut inquiry: Inquiry) -> Result<(), StoreError> {
        let person = match self.gw.registry.person(&inquiry.unified) {
            Ok(Some(p)) => p,
            Ok(None) => {
                return self
                    .fail(
                        inquiry,
                        InquiryError {
                            code: "person_not_found".into(),
                            message: "the person behind this business number is gone".into(),
                            platform_code: None,
                            platform_message: None,
                        },
                    )
                    .await
            }
            Err(e) => return Err(StoreError::Io(e.to_string())),
        };
        if person.code_status != CodeStatus::Acquired {
            return self.await_code(inquiry).await;
        }
        let uplink = &self.gw.uplink;
        let target = TargetPayload {
            unified: inquiry.unified,
        }
        .to_xml();
        let sealed = match uplink.keys.seal_to(
            uplink.platform.as_str(),
            "InquiryRequest",
            &inquiry.id,
            target.as_bytes(),
        ) {
            Ok(s) => s,
            Err(error) => {
                tracing::error!(message = "Cannot seal to the platform.", %error, inquiry_id = %inquiry.id);
                let at = now_ms() + self.backoff_ms(inquiry.attempts);
                return self.reschedule(inquiry, at, true).await;
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
            header: uplink.header(inquiry.id.clone()),
            record_id: inquiry.id.clone(),
            affair: inquiry.affair.clone(),
            procedure: inquiry.procedure.clone(),
            item: inquiry.item.clone(),
            inquirer: uplink.keys.agency.clone(),
            provider: None,
            non_disclosure: inquiry.non_disclosure,
            condition,
            sealed,
        };
        let answer = uplink.exchange(&msg).await;
        if matches!(answer, Ok(_) | Err(UplinkError::Fault(_))) {
            self.platform_ok();
        }
        match answer {
            Ok(Message::InquiryReceipt { outcome, .. }) => match outcome {
                ReceiptOutcome::Accepted { serial } => {
                    let now = now_ms();
                    inquiry.status = Status::Sent;
                    inquiry.serial = Some(serial);
                    inquiry.sent_ms = Some(now);
                    inquiry.attempts = 0;
                    tracing::info!(message = "Inquiry sent.", inquiry_id = %inquiry.id);
                    let at = now + self.gw.config.platform.poll_interval_ms;
                    let mut r = inquiry_record(&inquiry, RecordResult::Accepted);
                    r.inquirer = Some(self.gw.config.agency_code.clone());
                    r.reason = Some("sent".into());
                    self.reschedule_with(inquiry, at, false, Some(r)).await
                }
                ReceiptOutcome::Rejected { fault } => {
                    if fault.code == FAULT_CODE_NOT_ACQUIRED {
                        return self.await_code(inquiry).await;
                    }
                    self.fail(inquiry, rejected(fault)).await
                }
            },
            Ok(other) => {
                tracing::warn!(message = "Unexpected answer type.", answer = other.type_name(), inquiry_id = %inquiry.id);
                let at = now_ms() + self.backoff_ms(inquiry.attempts);
                self.reschedule(inquiry, at, true).await
            }
            Err(UplinkError::Fault(fault)) => self.fail(inquiry, rejected(fault)).await,
            Err(e) => self.retry_later(inquiry, e).await,
        }
    }

    async fn fetch_result(&self, mut inquiry: Inquiry) -> Result<(), StoreError> {
        let Some(serial) = inquiry.serial.clone() else {
            inquiry.status = Status::Queued;
            return self.reschedule(inquiry, now_ms(), false).await;
        };
        let uplink = &self.gw.uplink;
        let msg = Message::ResultRequest {
            header: uplink.header(new_id("RQ")),
            serial,
        };
        let answer = uplink.exchange(&msg).await;
        if matches!(answer, Ok(_) | Err(UplinkError::Fault(_))) {
            self.platform_ok();
        }
        match answer {
            Ok(Message::InquiryResult {
                status,
                provider,
                sealed,
                fault,
                header,
                ..
            }) => match status {
                ResultStatus::Pending => {
                    let at = now_ms() + self.gw.config.platform.poll_interval_ms;
                    self.reschedule(inquiry, at, false).await
                }
                ResultStatus::Finished {
                    detail_status,
                    item_status,
                } => {
                    if let Some(fault) = fault {
                        return self.fail(inquiry, rejected(fault)).await;
                    }
                    let mut items = Vec::new();
                    if let Some(sealed) = sealed {
                        let opened = uplink
                            .keys
                            .open("InquiryResult", &header.message_id, &sealed);
                        let payload = opened
                            .map_err(|e| e.to_string())
                            .and_then(|b| ResultPayload::from_xml(&b).map_err(|e| e.to_string()));
                        match payload {
                            Ok(p) => {
                                for it in p.items {
                                    items.push(ResultItem {
                                        item_code: it.item,
                                        fields: it.fields,
                                    });
                                }
                            }
                            Err(error) => {
                                tracing::warn!(message = "Result could not be opened; will fetch again.", %error, inquiry_id = %inquiry.id);
                                let at = now_ms() + self.backoff_ms(inquiry.attempts);
                                return self.reschedule(inquiry, at, true).await;
                            }
                        }
                    }
                    let now = now_ms();
                    inquiry.status = Status::Answered;
                    inquiry.finished_ms = Some(now);
                    inquiry.result = Some(InquiryResult {
                        provider_agency: provider.map(|p| p.to_string()),
                        detail_status,
                        item_status,
                        items,
                    });
                    tracing::info!(message = "Inquiry answered.", inquiry_id = %inquiry.id);
                    self.finish(inquiry).await
                }
            },
            Ok(other) => {
                tracing::warn!(message = "Unexpected answer type.", answer = other.type_name(), inquiry_id = %inquiry.id);
                let at = now_ms() + self.backoff_ms(inquiry.attempts);
                self.reschedule(inquiry, at, true).await
            }
            Err(UplinkError::Fault(fault)) => self.fail(inquiry, rejected(fault)).await,
            Err(e) => self.retry_later(inquiry, e).await,
        }
    }

    /// Pauses all platform work after a closed or failing answer.
    fn pause_for(&self, e: &UplinkError) -> u64 {
        let now = now_ms();
        let until = match e {
            UplinkError::Closed { retry_after_ms } => {
                now + retry_after_ms.unwrap_or_else(|| self.gw.config.platform.backoff_base_ms)
            }
            _ => {
                let n = self.failures.fetch_add(1, Ordering::Relaxed);
                now + self.backoff_ms(n)
            }
        };
        self.paused_until.fetch_max(until, Ordering::Relaxed);
        until
    }

    /// Notes that the platform answered (the pause, if any, is over).
    fn platform_ok(&self) {
        self.failures.store(0, Ordering::Relaxed);
    }

    async fn retry_later(&self, inquiry: Inquiry, e: UplinkError) -> Result<(), StoreError> {
        let now = now_ms();
        let resume = self.pause_for(&e);
        let at = match &e {
            UplinkError::Closed { .. } => resume,
            _ => resume.max(now + self.backoff_ms(inquiry.attempts)),
        };
        tracing::info!(message = "Platform not reachable; will retry.", reason = e.code(), inquiry_id = %inquiry.id, retry_in_ms = at - now);
        self.reschedule(inquiry, at, true).await
    }

    async fn await_code(&self, mut inquiry: Inquiry) -> Result<(), StoreError> {
        let mut b = Batch::new();
        if let Some(old) = inquiry.due_key.take() {
            b.delete(Tree::Due, old);
        }
        let at = now_ms() + AWAIT_CODE_RECHECK_MS;
        let due = due_key(at, &inquiry_job(&inquiry.id));
        b.put(Tree::Due, due.clone(), Vec::new());
        b.put(
            Tree::AwaitingCode,
            key2(&inquiry.unified.to_string(), &inquiry.id),
            Vec::new(),
        );
        inquiry.due_key = Some(due);
        let changed = inquiry.status != Status::AwaitingCode;
        inquiry.status = Status::AwaitingCode;
        if changed {
            let mut r = inquiry_record(&inquiry, RecordResult::Accepted);
            r.inquirer = Some(self.gw.config.agency_code.clone());
            r.reason = Some("awaiting_code".into());
            records::append(&mut b, &r);
        }
        put_inquiry(&mut b, &inquiry)?;
        self.gw.store.commit(b).await?;
        // The code may have been acquired between our read of the person and the commit
        // above, after the acquisition's wake-up scan: check once more.
        let acquired = matches!(
            self.gw.registry.person(&inquiry.unified),
            Ok(Some(p)) if p.code_status == CodeStatus::Acquired
        );
        if acquired {
            let mut again = Batch::new();
            self.wake_waiting(&mut again, &inquiry.unified)?;
            if !again.is_empty() {
                self.gw.store.commit(again).await?;
            }
        }
        Ok(())
    }

    async fn reschedule(&self, inquiry: Inquiry, at: u64, count: bool) -> Result<(), StoreError> {
        self.reschedule_with(inquiry, at, count, None).await
    }

    async fn reschedule_with(
        &self,
        mut inquiry: Inquiry,
        at: u64,
        count: bool,
        record: Option<Record>,
    ) -> Result<(), StoreError> {
        let mut b = Batch::new();
        if let Some(r) = &record {
            records::append(&mut b, r);
        }
        if let Some(old) = inquiry.due_key.take() {
            b.delete(Tree::Due, old);
        }
        let due = due_key(at, &inquiry_job(&inquiry.id));
        b.put(Tree::Due, due.clone(), Vec::new());
        inquiry.due_key = Some(due);
        if count {
            inquiry.attempts = inquiry.attempts.saturating_add(1);
        }
        put_inquiry(&mut b, &inquiry)?;
        self.gw.store.commit(b).await.map(|_| ())
    }

    async fn fail(&self, mut inquiry: Inquiry, error: InquiryError) -> Result<(), StoreError> {
        tracing::info!(message = "Inquiry failed.", inquiry_id = %inquiry.id, reason = %error.code);
        inquiry.status = Status::Failed;
        inquiry.finished_ms = Some(now_ms());
        inquiry.error = Some(error);
        self.finish(inquiry).await
    }

    async fn finish(&self, mut inquiry: Inquiry) -> Result<(), StoreError> {
        let mut b = Batch::new();
        let result = match (&inquiry.result, &inquiry.error) {
            (Some(r), _) if r.item_status == crate::sim::data::ITEM_NOT_HELD => {
                RecordResult::NotHeld
            }
            (Some(_), _) => RecordResult::Answered,
            (None, Some(e)) if e.code.starts_with("platform_") => RecordResult::Refused,
            _ => RecordResult::Failed,
        };
        let mut r = inquiry_record(&inquiry, result);
        r.inquirer = Some(self.gw.config.agency_code.clone());
        r.provided_at = inquiry.finished_ms.map(rfc3339_jst);
        r.provider = inquiry
            .result
            .as_ref()
            .and_then(|x| x.provider_agency.as_deref())
            .and_then(|a| renkei_ids::AgencyCode::parse(a).ok());
        r.reason = inquiry.error.as_ref().map(|e| match &e.platform_code {
            Some(pc) => format!("{} ({pc})", e.code),
            None => e.code.clone(),
        });
        records::append(&mut b, &r);
        if let Some(old) = inquiry.due_key.take() {
            b.delete(Tree::Due, old);
        }
        b.delete(
            Tree::AwaitingCode,
            key2(&inquiry.unified.to_string(), &inquiry.id),
        );
        put_inquiry(&mut b, &inquiry)?;
        self.gw.store.commit(b).await.map(|_| ())
    }

    // ---------------------------------------------------------------- codes

    async fn code_job(&self, key: &[u8], unified: &str) -> Result<(), StoreError> {
        let done = |key: &[u8]| {
            let mut b = Batch::new();
            b.delete(Tree::Due, key.to_vec());
            b
        };
        let Ok(u) = UnifiedAddressNumber::parse(unified) else {
            return self.gw.store.commit(done(key)).await.map(|_| ());
        };
        let person = match self.gw.registry.person(&u) {
            Ok(Some(p)) => p,
            Ok(None) => return self.gw.store.commit(done(key)).await.map(|_| ()),
            Err(e) => return Err(StoreError::Io(e.to_string())),
        };
        if person.code_status == CodeStatus::Acquired {
            return self.gw.store.commit(done(key)).await.map(|_| ());
        }
        let now = now_ms();
        let wait = self.window_wait(now);
        if wait > 0 {
            return self.move_job(key, now + wait, &code_job(&u)).await;
        }
        let uplink = &self.gw.uplink;
        let message_id = format!("CA{u}N{}", person.code_attempts);
        let identity = match self.gw.registry.individual_number(&person) {
            Ok(n) => IdentityPayload {
                individual_number: n,
            }
            .to_xml(),
            Err(error) => {
                tracing::error!(message = "Cannot read the individual number for code acquisition.", %error);
                return self
                    .move_job(key, now + self.backoff_ms(8), &code_job(&u))
                    .await;
            }
        };
        let sealed = match uplink.keys.seal_to(
            uplink.platform.as_str(),
            "CodeAcquisitionRequest",
            &message_id,
            identity.as_bytes(),
        ) {
            Ok(s) => s,
            Err(error) => {
                tracing::error!(message = "Cannot seal to the platform.", %error);
                return self
                    .move_job(key, now + self.backoff_ms(8), &code_job(&u))
                    .await;
            }
        };
        drop(identity);
        let msg = Message::CodeAcquisitionRequest {
            header: uplink.header(message_id),
            unified: u,
            sealed,
        };
        let attempts = person.code_attempts;
        let (status, fugo, reason): (CodeStatus, Option<Fugo>, Option<String>) =
            match uplink.exchange(&msg).await {
                Ok(Message::CodeAcquisitionResponse { outcome, .. }) => match outcome {
                    CodeOutcome::Acquired { fugo } => (CodeStatus::Acquired, Some(fugo), None),
                    CodeOutcome::Failed { fault } => (
                        CodeStatus::Failed,
                        None,
                        Some(format!("{}: {}", fault.code, fault.message)),
                    ),
                },
                Ok(other) => (
                    CodeStatus::Pending,
                    None,
                    Some(format!("unexpected answer {}", other.type_name())),
                ),
                Err(UplinkError::Fault(fault)) => (
                    CodeStatus::Failed,
                    None,
                    Some(format!("{}: {}", fault.code, fault.message)),
                ),
                Err(e) => {
                    let resume = self.pause_for(&e);
                    let at = resume.max(now_ms() + self.backoff_ms(attempts));
                    return self.move_job(key, at, &code_job(&u)).await;
                }
            };
        let mut b = Batch::new();
        b.delete(Tree::Due, key.to_vec());
        let acquired = status == CodeStatus::Acquired;
        let mut r = records::base(
            RecordKind::CodeAcquisition,
            if acquired {
                RecordResult::Done
            } else {
                RecordResult::Failed
            },
        );
        r.person = Some(u);
        r.inquirer = Some(self.gw.config.agency_code.clone());
        r.reason = reason
            .as_ref()
            .map(|_| "platform refused the code acquisition".to_string());
        records::append(&mut b, &r);
        if !acquired {
            // Failed acquisitions are retried automatically, further and further apart.
            b.put(
                Tree::Due,
                due_key(now_ms() + self.backoff_ms(attempts + 4), &code_job(&u)),
                Vec::new(),
            );
        }
        self.gw
            .registry
            .stage_code_outcome(&mut b, person, status, fugo, reason)
            .map_err(|e| StoreError::Io(e.to_string()))?;
        self.gw.store.commit(b).await?;
        if acquired {
            tracing::info!(message = "Code acquired.");
            // Wake waiting inquiries only after the acquisition is stored: an inquiry that
            // starts waiting after this scan re-reads the person and sees the code (see
            // `await_code`), so no inquiry can miss its wake-up.
            let mut wake = Batch::new();
            self.wake_waiting(&mut wake, &u)?;
            if !wake.is_empty() {
                self.gw.store.commit(wake).await?;
                self.gw.wake.notify_one();
            }
        }
        Ok(())
    }

    /// Moves every inquiry waiting for `u`'s code back to the front of the schedule.
    fn wake_waiting(&self, b: &mut Batch, u: &UnifiedAddressNumber) -> Result<(), StoreError> {
        let prefix = key2(&u.to_string(), "");
        let waiting = self.gw.store.range(
            Tree::AwaitingCode,
            &prefix,
            &prefix_end(&prefix),
            usize::MAX,
        )?;
        let now = now_ms();
        for (k, _) in waiting {
            b.delete(Tree::AwaitingCode, k.clone());
            let id = String::from_utf8_lossy(&k[prefix.len()..]).to_string();
            if let Ok(Some(mut inq)) = self.gw.inquiry(&id) {
                if inq.status.is_final() {
                    continue;
                }
                if let Some(old) = inq.due_key.take() {
                    b.delete(Tree::Due, old);
                }
                let due = due_key(now, &inquiry_job(&id));
                b.put(Tree::Due, due.clone(), Vec::new());
                inq.due_key = Some(due);
                inq.status = Status::Queued;
                put_inquiry(b, &inq)?;
            }
        }
        Ok(())
    }

    async fn move_job(&self, key: &[u8], at: u64, job: &str) -> Result<(), StoreError> {
        let mut b = Batch::new();
        b.delete(Tree::Due, key.to_vec());
        b.put(Tree::Due, due_key(at, job), Vec::new());
        self.gw.store.commit(b).await.map(|_| ())
    }
}

/// The linkage record of an inquiry's current state.
pub fn inquiry_record(inquiry: &Inquiry, result: RecordResult) -> Record {
    let mut r = records::base(RecordKind::Inquiry, result);
    r.procedure = Some(inquiry.procedure.clone());
    r.item = Some(inquiry.item.clone());
    r.person = Some(inquiry.unified);
    r.business_system = Some(inquiry.system.clone());
    r.requested_at = rfc3339_jst(inquiry.accepted_ms);
    r.serial = inquiry.serial.clone();
    r.reference = Some(inquiry.id.clone());
    r.non_disclosure = inquiry.non_disclosure;
    r
}

fn put_inquiry(b: &mut Batch, inquiry: &Inquiry) -> Result<(), StoreError> {
    let v = serde_json::to_vec(inquiry).map_err(|e| StoreError::Io(e.to_string()))?;
    b.put(Tree::Inquiries, inquiry.id.as_bytes().to_vec(), v);
    Ok(())
}

fn rejected(fault: renkei_platform::PlatformFault) -> InquiryError {
    InquiryError {
        code: match fault.code.as_str() {
            "E1002" => "platform_not_permitted".into(),
            "E1003" => "platform_duplicate_record".into(),
            _ => "platform_rejected".into(),
        },
        message: "the platform refused the inquiry".into(),
        platform_code: Some(fault.code),
        platform_message: Some(fault.message),
    }
}

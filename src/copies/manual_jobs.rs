//! What the dispatcher runs for manual provision (手動提供): the scheduled fetch of the
//! requests the platform handed to this city (`ManualRequestFetch` → `ManualRequestList`,
//! one job at a time, by the dispatch-lease holder, inside operating hours), each request
//! stored sealed and mapped to the business system holding the person; and each request's
//! own job — its deadline while pending (then `timed_out`), or the send of its answer
//! (`ManualAnswer`, the request id as message id, sealed and signed; at-least-once, closed
//! hours and failures absorbed). Every outcome is one atomic batch with its record.

use std::sync::Arc;

use renkei_ids::{AgencyCode, BusinessNumber, SystemId};
use renkei_platform::{faults, ManualDecision, ManualRequest, Message, PlatformFault};
use renkei_records::RecordResult;
use renkei_store::{Batch, Store, StoreError, Tree};

use super::manual::{
    manual_record, may_answer_manually, Decision, Delivery, ManualRepo, ProvisionRequest,
    RequestStatus, Stored, StoredAnswer,
};
use super::transfer::seal_item;
use crate::config::Role;
use crate::error::Error;
use crate::platform::policy::LOCAL_FAILURE_ATTEMPT;
use crate::platform::{Policy, Uplink, UplinkError};
use crate::registry::Registry;
use crate::schedule::{self, Job};
use crate::settings::Live;
use crate::util::{new_id, now_ms, parse_rfc3339_ms};

/// The fetch job's current schedule key, in `Tree::ProvisionLog`.
const DUE_KEY: &[u8] = b"manual_due";

/// Everything the manual provision jobs need.
pub struct ManualJobs {
    pub store: Arc<dyn Store>,
    pub repo: ManualRepo,
    pub registry: Arc<Registry>,
    /// The clients and the permission table in force (who may answer what).
    pub settings: Live,
    pub uplink: Uplink,
    pub policy: Arc<Policy>,
    /// This city's agency code, named in every record.
    pub agency: AgencyCode,
    /// How often the pending requests are fetched.
    pub interval_ms: u64,
}

/// Schedules the fetch job if it is not scheduled yet (at start-up).
pub async fn ensure_scheduled(store: &dyn Store) -> Result<(), Error> {
    super::provisions::ensure_singleton(store, DUE_KEY, Job::ManualFetch).await
}

impl ManualJobs {
    /// Runs the fetch job whose schedule entry is `key`.
    pub async fn fetch(&self, key: &[u8]) -> Result<(), Error> {
        if self.store.get(Tree::ProvisionLog, DUE_KEY)?.as_deref() != Some(key) {
            let mut b = Batch::new();
            schedule::stage_done(&mut b, key);
            self.store.commit(b).await?;
            return Ok(());
        }
        let now = now_ms();
        let wait = self.policy.until_open_ms(now);
        if wait > 0 {
            return self.reschedule_fetch(key, now + wait).await;
        }
        let msg = Message::ManualRequestFetch {
            header: self.uplink.header(new_id("MR")),
        };
        let answer = self.policy.exchange(&self.uplink, &msg).await;
        let next = now_ms() + self.interval_ms;
        match answer {
            Ok(Message::ManualRequestList { requests, .. }) => {
                let mut taken = 0usize;
                for r in requests {
                    if self.take(r).await? {
                        taken += 1;
                    }
                }
                if taken > 0 {
                    tracing::info!(
                        message = "Manual provision requests received.",
                        count = taken
                    );
                }
                self.reschedule_fetch(key, next).await
            }
            Ok(other) => {
                tracing::warn!(
                    message = "Unexpected answer to a manual request fetch.",
                    answer = other.type_name()
                );
                self.reschedule_fetch(key, next).await
            }
            Err(e) => {
                tracing::info!(
                    message = "Manual provision requests not fetched; will retry.",
                    reason = e.code()
                );
                let at = self.policy.retry_at(&e, 0).max(next.min(now_ms() + 1000));
                self.reschedule_fetch(key, at).await
            }
        }
    }

    async fn reschedule_fetch(&self, key: &[u8], at: u64) -> Result<(), Error> {
        let mut b = Batch::new();
        b.require_equal(Tree::ProvisionLog, DUE_KEY.to_vec(), key.to_vec());
        let new = schedule::stage_move(&mut b, Some(key.to_vec()), at, Job::ManualFetch);
        b.put(Tree::ProvisionLog, DUE_KEY.to_vec(), new);
        self.store.commit(b).await?;
        Ok(())
    }

    /// The business system that answers `r`: the first system linked to the person (after
    /// any merge of the number) whose affairs have the manual provision row for the
    /// request's (procedure, item).
    fn holder(&self, r: &ManualRequest) -> Result<Option<(SystemId, BusinessNumber)>, Error> {
        let settings = self.settings.current();
        let person = self.registry.follow_merge(&r.unified)?;
        for (system, bn) in self.registry.links_of(&person)? {
            let answers = settings
                .config
                .client(system.as_str())
                .filter(|c| c.role == Role::Business)
                .is_some_and(|c| may_answer_manually(&settings.table, c, &r.procedure, &r.item));
            if answers {
                return Ok(Some((system, bn)));
            }
        }
        Ok(None)
    }

    /// Stores a fetched request (once: a request seen before is left alone); true if new.
    async fn take(&self, m: ManualRequest) -> Result<bool, Error> {
        if self.repo.get(&m.request_id)?.is_some() {
            return Ok(false);
        }
        let holder = self.holder(&m)?;
        let now = now_ms();
        // An unreadable deadline counts as passed: fail closed.
        let deadline_ms = parse_rfc3339_ms(&m.deadline).unwrap_or(now);
        let (system, business_number) = match holder {
            Some((s, bn)) => (Some(s), Some(bn)),
            None => (None, None),
        };
        let mut r = ProvisionRequest {
            id: m.request_id,
            system,
            business_number,
            unified: m.unified,
            procedure: m.procedure,
            item: m.item,
            as_of: m.as_of,
            inquirer: m.inquirer,
            deadline: m.deadline,
            deadline_ms,
            received_ms: now,
            status: RequestStatus::Pending,
            answer: None,
            attempts: 0,
            due_key: None,
        };
        let mut b = Batch::new();
        if r.system.is_none() {
            // Nobody here holds the person: answered "not held" at once, and recorded.
            r.status = RequestStatus::Answered;
            r.answer = Some(StoredAnswer {
                decision: Decision::NotHeld,
                fields: Vec::new(),
                reason: None,
                automatic: true,
                answered_ms: now,
                delivery: Delivery::Queued,
                error: None,
            });
            r.due_key = Some(schedule::stage_new(&mut b, now, Job::Manual(r.id.clone())));
            let rec = manual_record(
                &r,
                RecordResult::NotHeld,
                "manual provision: not held (no business system holds the person)".into(),
                &self.agency,
            );
            crate::records::append(&mut b, &rec);
        } else if now >= deadline_ms {
            // Heard of only after its deadline.
            r.status = RequestStatus::TimedOut;
            let rec = manual_record(
                &r,
                RecordResult::Failed,
                "manual provision: timed out before it was received".into(),
                &self.agency,
            );
            crate::records::append(&mut b, &rec);
        } else {
            r.due_key = Some(schedule::stage_new(
                &mut b,
                deadline_ms,
                Job::Manual(r.id.clone()),
            ));
        }
        self.repo.stage_put(&mut b, &r, None)?;
        match self.store.commit(b).await {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Runs a request's job whose schedule entry is `key`.
    pub async fn run(&self, key: &[u8], id: &str) -> Result<(), Error> {
        let stored = match self.repo.get(id)? {
            Some(s) if s.request.due_key.as_deref() == Some(key) => s,
            _ => {
                let mut b = Batch::new();
                schedule::stage_done(&mut b, key);
                self.store.commit(b).await?;
                return Ok(());
            }
        };
        let now = now_ms();
        match (&stored.request.status, &stored.request.answer) {
            (RequestStatus::Pending, _) if now >= stored.request.deadline_ms => {
                self.time_out(
                    stored,
                    "manual provision: timed out (no answer before the deadline)",
                )
                .await
            }
            (RequestStatus::Pending, _) => {
                let at = stored.request.deadline_ms;
                self.reschedule(stored, at, false).await
            }
            (
                RequestStatus::Answered,
                Some(StoredAnswer {
                    delivery: Delivery::Queued,
                    ..
                }),
            ) => self.send(stored).await,
            _ => self.settle(stored, None, None).await,
        }
    }

    async fn send(&self, stored: Stored) -> Result<(), Error> {
        let now = now_ms();
        let wait = self.policy.until_open_ms(now);
        if wait > 0 {
            return self.reschedule(stored, now + wait, false).await;
        }
        let r = &stored.request;
        let Some(answer) = &r.answer else {
            return self.settle(stored, None, None).await;
        };
        let decision = match answer.decision {
            Decision::Provide => {
                match seal_item(&self.uplink, "ManualAnswer", &r.id, &r.item, &answer.fields) {
                    Ok(s) => ManualDecision::Provide(s),
                    Err(error) => {
                        tracing::error!(message = "Cannot seal to the platform.", %error, request_id = %r.id);
                        let at = now_ms() + self.policy.backoff_ms(LOCAL_FAILURE_ATTEMPT);
                        return self.reschedule(stored, at, true).await;
                    }
                }
            }
            Decision::NotHeld => ManualDecision::NotHeld,
            Decision::Refuse => ManualDecision::Refuse {
                reason: answer.reason.clone().unwrap_or_default(),
            },
        };
        let msg = Message::ManualAnswer {
            header: self.uplink.header(r.id.clone()),
            request_id: r.id.clone(),
            decision,
        };
        let reply = self.policy.exchange(&self.uplink, &msg).await;
        match reply {
            Ok(Message::ManualAnswerAck {
                request_id, fault, ..
            }) if request_id == r.id => match fault {
                None => self.settle(stored, Some(Delivery::Delivered), None).await,
                Some(f) => self.refused(stored, f).await,
            },
            Ok(other) => {
                tracing::warn!(message = "Unexpected answer; sending again later.", answer = other.type_name(), request_id = %r.id);
                let at = now_ms() + self.policy.backoff_ms(r.attempts);
                self.reschedule(stored, at, true).await
            }
            Err(UplinkError::Fault(f)) => self.refused(stored, f).await,
            Err(e) => {
                let at = self.policy.retry_at(&e, r.attempts);
                tracing::info!(message = "Platform not reachable; will retry.", reason = e.code(), request_id = %r.id);
                self.reschedule(stored, at, true).await
            }
        }
    }

    /// The platform refused the answer: past its deadline the request is timed out;
    /// otherwise the delivery failed. Either way recorded.
    async fn refused(&self, stored: Stored, f: PlatformFault) -> Result<(), Error> {
        if f.code == faults::MANUAL_TIMED_OUT {
            return self
                .time_out(
                    stored,
                    "manual provision: timed out (the platform refused the late answer)",
                )
                .await;
        }
        let Stored { raw, mut request } = stored;
        let mut b = Batch::new();
        if let Some(old) = request.due_key.take() {
            schedule::stage_done(&mut b, &old);
        }
        if let Some(a) = request.answer.as_mut() {
            a.delivery = Delivery::Failed;
            a.error = Some(f.code.clone());
        }
        let rec = manual_record(
            &request,
            RecordResult::Failed,
            format!(
                "manual provision: answer refused by the platform ({})",
                f.code
            ),
            &self.agency,
        );
        crate::records::append(&mut b, &rec);
        self.repo.stage_put(&mut b, &request, Some(&raw))?;
        self.commit(b).await?;
        tracing::warn!(message = "Platform refused a manual provision answer.", request_id = %request.id, code = %f.code);
        Ok(())
    }

    async fn time_out(&self, stored: Stored, reason: &str) -> Result<(), Error> {
        let Stored { raw, mut request } = stored;
        let mut b = Batch::new();
        if let Some(old) = request.due_key.take() {
            schedule::stage_done(&mut b, &old);
        }
        request.status = RequestStatus::TimedOut;
        if let Some(a) = request.answer.as_mut() {
            a.delivery = Delivery::Failed;
            a.error = Some(faults::MANUAL_TIMED_OUT.into());
        }
        let rec = manual_record(&request, RecordResult::Failed, reason.into(), &self.agency);
        crate::records::append(&mut b, &rec);
        self.repo.stage_put(&mut b, &request, Some(&raw))?;
        self.commit(b).await?;
        tracing::info!(message = "Manual provision request timed out.", request_id = %request.id);
        Ok(())
    }

    /// Ends a request's job, with its answer's new delivery state if given.
    async fn settle(
        &self,
        stored: Stored,
        delivery: Option<Delivery>,
        error: Option<String>,
    ) -> Result<(), Error> {
        let Stored { raw, mut request } = stored;
        let mut b = Batch::new();
        if let Some(old) = request.due_key.take() {
            schedule::stage_done(&mut b, &old);
        }
        if let (Some(d), Some(a)) = (delivery, request.answer.as_mut()) {
            a.delivery = d;
            a.error = error;
        }
        self.repo.stage_put(&mut b, &request, Some(&raw))?;
        self.commit(b).await?;
        if delivery == Some(Delivery::Delivered) {
            tracing::info!(message = "Manual provision answer delivered.", request_id = %request.id);
        }
        Ok(())
    }

    async fn reschedule(&self, stored: Stored, at: u64, attempt: bool) -> Result<(), Error> {
        let Stored { raw, mut request } = stored;
        let mut b = Batch::new();
        let due = schedule::stage_move(
            &mut b,
            request.due_key.take(),
            at,
            Job::Manual(request.id.clone()),
        );
        request.due_key = Some(due);
        if attempt {
            request.attempts = request.attempts.saturating_add(1);
        }
        self.repo.stage_put(&mut b, &request, Some(&raw))?;
        self.commit(b).await
    }

    /// Commits a job's batch; a conflict (an answer arrived meanwhile) leaves the job to run
    /// again from the new state.
    async fn commit(&self, b: Batch) -> Result<(), Error> {
        match self.store.commit(b).await {
            Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

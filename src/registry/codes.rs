//! Acquiring a person's code (符号) from the platform: the job the dispatcher runs when a
//! person's `c:` schedule entry is due. The only message that carries an individual number,
//! sealed to the platform. A refused acquisition is retried automatically, further apart.

use std::sync::Arc;

use renkei_ids::{AgencyCode, Fugo, UnifiedAddressNumber};
use renkei_platform::{CodeOutcome, IdentityPayload, Message};
use renkei_records::{RecordKind, RecordResult};
use renkei_store::{Batch, Store};

use super::{CodeStatus, Registry};
use crate::error::Error;
use crate::platform::policy::{LOCAL_FAILURE_ATTEMPT, REFUSED_CODE_EXTRA_ATTEMPTS};
use crate::platform::{Policy, Uplink, UplinkError};
use crate::schedule::{self, Job};
use crate::util::now_ms;

/// What a code job ended in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeJobOutcome {
    /// The code is (now) acquired: inquiries waiting for it can go.
    Acquired,
    /// Not yet; the job is scheduled again.
    NotYet,
}

/// Everything acquiring a code needs.
pub struct CodeAcquisition {
    pub store: Arc<dyn Store>,
    pub registry: Arc<Registry>,
    pub uplink: Uplink,
    pub policy: Arc<Policy>,
    /// This city's agency code, named in every record.
    pub agency: AgencyCode,
}

impl CodeAcquisition {
    async fn move_job(&self, key: &[u8], at: u64, u: UnifiedAddressNumber) -> Result<(), Error> {
        let mut b = Batch::new();
        schedule::stage_move(&mut b, Some(key.to_vec()), at, Job::Code(u));
        self.store.commit(b).await?;
        Ok(())
    }

    /// Runs the code job whose schedule entry is `key`.
    pub async fn run(&self, key: &[u8], u: UnifiedAddressNumber) -> Result<CodeJobOutcome, Error> {
        let done = |key: &[u8]| {
            let mut b = Batch::new();
            schedule::stage_done(&mut b, key);
            b
        };
        let Some(person) = self.registry.person(&u)? else {
            self.store.commit(done(key)).await?;
            return Ok(CodeJobOutcome::NotYet);
        };
        if person.code_status == CodeStatus::Acquired {
            self.store.commit(done(key)).await?;
            return Ok(CodeJobOutcome::Acquired);
        }
        let now = now_ms();
        let wait = self.policy.until_open_ms(now);
        if wait > 0 {
            self.move_job(key, now + wait, u).await?;
            return Ok(CodeJobOutcome::NotYet);
        }
        let local_retry = now + self.policy.backoff_ms(LOCAL_FAILURE_ATTEMPT);
        let uplink = &self.uplink;
        let message_id = format!("CA{u}N{}", person.code_attempts);
        let identity = match self.registry.individual_number(&person) {
            Ok(n) => IdentityPayload {
                individual_number: n,
            }
            .to_xml(),
            Err(error) => {
                tracing::error!(message = "Cannot read the individual number for code acquisition.", %error, person = %u);
                self.move_job(key, local_retry, u).await?;
                return Ok(CodeJobOutcome::NotYet);
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
                tracing::error!(message = "Cannot seal to the platform.", %error, person = %u);
                self.move_job(key, local_retry, u).await?;
                return Ok(CodeJobOutcome::NotYet);
            }
        };
        drop(identity);
        let msg = Message::CodeAcquisitionRequest {
            header: uplink.header(message_id),
            unified: u,
            sealed,
        };
        let attempts = person.code_attempts;
        let refused = |code: &str| Some(format!("platform refused ({code})"));
        let (status, fugo, reason): (CodeStatus, Option<Fugo>, Option<String>) =
            match uplink.exchange(&msg).await {
                Ok(Message::CodeAcquisitionResponse { outcome, .. }) => {
                    self.policy.platform_answered();
                    match outcome {
                        CodeOutcome::Acquired { fugo } => (CodeStatus::Acquired, Some(fugo), None),
                        CodeOutcome::Failed { fault } => {
                            (CodeStatus::Failed, None, refused(&fault.code))
                        }
                    }
                }
                Ok(other) => (
                    CodeStatus::Pending,
                    None,
                    Some(format!("unexpected answer {}", other.type_name())),
                ),
                Err(UplinkError::Fault(fault)) => {
                    self.policy.platform_answered();
                    (CodeStatus::Failed, None, refused(&fault.code))
                }
                Err(e) => {
                    let at = self.policy.retry_at(&e, attempts);
                    self.move_job(key, at, u).await?;
                    return Ok(CodeJobOutcome::NotYet);
                }
            };
        let mut b = Batch::new();
        schedule::stage_done(&mut b, key);
        let acquired = status == CodeStatus::Acquired;
        let mut r = crate::records::base(
            RecordKind::CodeAcquisition,
            if acquired {
                RecordResult::Done
            } else {
                RecordResult::Failed
            },
        );
        r.person = Some(u);
        r.inquirer = Some(self.agency.clone());
        r.reason = reason
            .as_ref()
            .map(|_| "platform refused the code acquisition".to_string());
        crate::records::append(&mut b, &r);
        if !acquired {
            // Failed acquisitions are retried automatically, further and further apart.
            let at = now_ms()
                + self
                    .policy
                    .backoff_ms(attempts + REFUSED_CODE_EXTRA_ATTEMPTS);
            schedule::stage_new(&mut b, at, Job::Code(u));
        }
        self.registry
            .stage_code_outcome(&mut b, person, status, fugo, reason)?;
        self.store.commit(b).await?;
        if acquired {
            tracing::info!(message = "Code acquired.", person = %u);
            return Ok(CodeJobOutcome::Acquired);
        }
        Ok(CodeJobOutcome::NotYet)
    }
}

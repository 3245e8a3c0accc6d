//! The dispatcher: walks the durable schedule and hands each due job to the capability that
//! owns it — an inquiry to [`inquiry::deliver`](crate::inquiry::deliver), a code
//! acquisition to [`registry::codes`](crate::registry::codes), a copy transfer, the
//! provision-log fetch or a manual provision job to [`copies`](crate::copies) — with a
//! concurrency cap and
//! one shared pause while the platform is closed or failing ([`Policy`]).
//!
//! It holds no queue of its own: the backlog is the `due` tree on disk, so memory does not
//! grow with it, and a restart simply continues.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use renkei_store::{Batch, Store};
use tokio::sync::{watch, Semaphore};

use crate::copies::manual_jobs::ManualJobs;
use crate::copies::provisions::ProvisionFetch;
use crate::copies::transfer::Transfer;
use crate::error::Error;
use crate::inquiry::deliver::Delivery;
use crate::platform::Policy;
use crate::registry::codes::{CodeAcquisition, CodeJobOutcome};
use crate::schedule::{self, Due, Job, Wake};
use crate::util::now_ms;

/// Due entries read per scan of the schedule.
const SCAN_BATCH: usize = 512;
/// Longest idle wait between scans (also bounds how late a missed wake-up can be).
const IDLE_WAIT: Duration = Duration::from_millis(1_000);
/// Shortest wait before a scan for an entry due "now": avoids a hot loop on an entry that
/// is due but claimed by a job still running.
const MIN_WAIT: Duration = Duration::from_millis(5);

/// The provision jobs: copy transfers, the provision-log fetch and manual provision.
pub struct Provision {
    pub transfer: Transfer,
    pub fetch: ProvisionFetch,
    pub manual: ManualJobs,
}

/// The dispatcher.
pub struct Dispatcher {
    store: Arc<dyn Store>,
    policy: Arc<Policy>,
    wake: Wake,
    inquiries: Delivery,
    codes: CodeAcquisition,
    copies: Provision,
    in_flight: Mutex<HashSet<Vec<u8>>>,
    permits: Arc<Semaphore>,
}

impl Dispatcher {
    /// A dispatcher running at most `max_in_flight` jobs at once.
    pub fn new(
        store: Arc<dyn Store>,
        policy: Arc<Policy>,
        wake: Wake,
        inquiries: Delivery,
        codes: CodeAcquisition,
        copies: Provision,
        max_in_flight: usize,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            policy,
            wake,
            inquiries,
            codes,
            copies,
            in_flight: Mutex::new(HashSet::new()),
            permits: Arc::new(Semaphore::new(max_in_flight)),
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
            let closed_for = self.policy.until_open_ms(now);
            if closed_for > 0 {
                // Outside the platform's operating hours: nothing is touched until it opens.
                // Sleep until then (the wait is awaited, so a closed night costs no CPU).
                self.policy.pause_until(now + closed_for);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(closed_for)) => {}
                    _ = shutdown.changed() => break,
                }
                continue;
            }
            let due = match schedule::due_before(self.store.as_ref(), &cursor, now + 1, SCAN_BATCH)
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
                if let Err(error) = self.store.commit(Batch::new()).await {
                    tracing::error!(message = "Durability barrier failed.", %error);
                    tokio::select! {
                        _ = tokio::time::sleep(IDLE_WAIT) => {}
                        _ = shutdown.changed() => break,
                    }
                    continue;
                }
            }
            let mut started = 0usize;
            for key in due {
                if self.policy.paused(now_ms()) {
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
            let paused_for = self.policy.paused_until().saturating_sub(now_ms());
            let wait = match schedule::next_due_ms(self.store.as_ref()) {
                Ok(Some(t)) => Duration::from_millis(t.saturating_sub(now_ms())),
                Ok(None) | Err(_) => IDLE_WAIT,
            }
            .max(Duration::from_millis(paused_for))
            .clamp(MIN_WAIT, IDLE_WAIT);
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => break,
            }
        }
    }

    async fn run_job(&self, key: &[u8]) {
        let outcome = match Due::from_key(key) {
            Ok(Due {
                job: Job::Inquiry(id),
                ..
            }) => self.inquiries.run(key, &id).await,
            Ok(Due {
                job: Job::Code(u), ..
            }) => self.code_job(key, u).await,
            Ok(Due {
                job: Job::Copy(id), ..
            }) => self.copies.transfer.run(key, &id).await,
            Ok(Due {
                job: Job::ProvisionLog,
                ..
            }) => self.copies.fetch.run(key).await,
            Ok(Due {
                job: Job::ManualFetch,
                ..
            }) => self.copies.manual.fetch(key).await,
            Ok(Due {
                job: Job::Manual(id),
                ..
            }) => self.copies.manual.run(key, &id).await,
            Err(bad) => {
                tracing::warn!(message = "Unreadable entry in the schedule; removing it.", error = %bad);
                let mut b = Batch::new();
                schedule::stage_done(&mut b, key);
                self.store.commit(b).await.map(|_| ()).map_err(Error::from)
            }
        };
        if let Err(error) = outcome {
            tracing::error!(message = "Job failed to save; it stays scheduled.", %error);
        }
    }

    async fn code_job(&self, key: &[u8], u: renkei_ids::UnifiedAddressNumber) -> Result<(), Error> {
        if self.codes.run(key, u).await? == CodeJobOutcome::Acquired {
            // Wake waiting inquiries only after the acquisition is stored: an inquiry that
            // starts waiting after this scan re-reads the person and sees the code (see
            // `Delivery::await_code`), so no inquiry can miss its wake-up.
            if self.inquiries.wake_waiting(&u).await? {
                self.wake.notify();
            }
        }
        Ok(())
    }
}

//! The dispatch lease: with two gateways on one PostgreSQL database, only the one holding
//! the lease runs the singleton work (the dispatcher, checkpoints, re-encryption, retention).
//!
//! The lease is one row in the store's meta tree, `{holder, until_ms}`, taken and renewed
//! with guarded batches (the row must be absent, or still hold exactly what was read), so
//! two gateways can never both win the same round. The holder renews every third of the
//! lease's length and considers itself the holder only until two thirds of it have passed
//! since its last successful renewal; a peer takes over only once `until_ms` has passed. The
//! third in between absorbs clock differences between the machines (keep them on NTP) and a
//! slow commit. A killed holder is replaced within the lease's length plus one retry.

use std::time::Duration;

use renkei_store::{Batch, Store, StoreError, Tree};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::util::now_ms;

/// The lease's key in the meta tree.
const LEASE_KEY: &[u8] = b"dispatch_lease";

/// The stored lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LeaseRow {
    holder: String,
    until_ms: u64,
}

/// Who may run the singleton work in this process.
#[derive(Clone)]
pub struct Leadership {
    held: watch::Receiver<bool>,
}

impl Leadership {
    /// Always the holder: one gateway alone on its store (sled cannot be shared).
    pub fn sole() -> Self {
        let (tx, held) = watch::channel(true);
        // Keep the sender alive so that `changed()` waits instead of failing.
        std::mem::forget(tx);
        Self { held }
    }

    /// Whether this gateway holds the lease now.
    pub fn is_held(&self) -> bool {
        *self.held.borrow()
    }

    /// A receiver that changes when the lease is won or lost.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.held.clone()
    }
}

/// Contends for the lease on `store` as `holder` until `shutdown`, publishing whether it is
/// held. Returns the [`Leadership`] at once and the task to spawn.
pub fn contend(
    store: std::sync::Arc<dyn Store>,
    holder: String,
    length: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> (Leadership, impl std::future::Future<Output = ()>) {
    let (tx, held) = watch::channel(false);
    let task = async move {
        let every = length / 3;
        let keep = length.mul_f64(2.0 / 3.0);
        let mut renewed_at: Option<u64> = None;
        loop {
            let now = now_ms();
            match try_take(store.as_ref(), &holder, now, length).await {
                Ok(true) => renewed_at = Some(now),
                Ok(false) => renewed_at = None,
                Err(error) => {
                    tracing::warn!(message = "Cannot renew the dispatch lease.", %error);
                }
            }
            let holds = renewed_at.is_some_and(|t| now_ms().saturating_sub(t) < keep_ms(keep));
            if *tx.borrow() != holds {
                tracing::info!(
                    message = if holds {
                        "This gateway now dispatches (lease taken)."
                    } else {
                        "This gateway stopped dispatching (lease lost)."
                    },
                    holder = %holder
                );
                let _ = tx.send(holds);
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => break,
            }
        }
        // Let a peer take over at once after a clean stop.
        if tx.borrow().to_owned() {
            let _ = release(store.as_ref(), &holder).await;
        }
        let _ = tx.send(false);
    };
    (Leadership { held }, task)
}

fn keep_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The stored bytes (for the guard) and the row they hold (`None`: unreadable).
type Stored = (Vec<u8>, Option<LeaseRow>);

fn read(store: &dyn Store) -> Result<Option<Stored>, StoreError> {
    Ok(store.get(Tree::Meta, LEASE_KEY)?.map(|raw| {
        let row = serde_json::from_slice(&raw).ok();
        (raw, row)
    }))
}

/// One round: takes or renews the lease when it is free, expired or ours.
async fn try_take(
    store: &dyn Store,
    holder: &str,
    now: u64,
    length: Duration,
) -> Result<bool, StoreError> {
    let mut b = Batch::new();
    match read(store)? {
        None => b.require_absent(Tree::Meta, LEASE_KEY),
        Some((raw, row)) => {
            let ours_or_free = match &row {
                Some(r) => r.holder == holder || r.until_ms < now,
                // Unreadable: treat as expired, replace it under the guard.
                None => true,
            };
            if !ours_or_free {
                return Ok(false);
            }
            b.require_equal(Tree::Meta, LEASE_KEY, raw);
        }
    }
    let row = LeaseRow {
        holder: holder.to_string(),
        until_ms: now.saturating_add(keep_ms(length)),
    };
    let value = serde_json::to_vec(&row).map_err(|e| StoreError::Io(e.to_string()))?;
    b.put(Tree::Meta, LEASE_KEY, value);
    match store.commit(b).await {
        Ok(_) => Ok(true),
        // Another gateway changed the row between our read and our commit: it won.
        Err(StoreError::Conflict { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

async fn release(store: &dyn Store, holder: &str) -> Result<(), StoreError> {
    if let Some((raw, Some(row))) = read(store)? {
        if row.holder == holder {
            let mut b = Batch::new();
            b.require_equal(Tree::Meta, LEASE_KEY, raw);
            b.delete(Tree::Meta, LEASE_KEY);
            store.commit(b).await?;
        }
    }
    Ok(())
}

/// The lease's deadline (RFC 3339) when some gateway holds it now, for refusing work that
/// needs every gateway stopped (`renkei store copy`).
pub fn live_holder(store: &dyn Store) -> Result<Option<String>, StoreError> {
    Ok(match read(store)? {
        Some((_, Some(row))) if row.until_ms >= now_ms() => {
            Some(crate::util::rfc3339_jst(row.until_ms))
        }
        _ => None,
    })
}

/// Runs the work `start` makes while `leadership` is held: started when the lease is won,
/// told to stop (its own shutdown signal) when the lease is lost or `shutdown` comes.
pub async fn while_held<F, Fut>(
    leadership: Leadership,
    mut shutdown: watch::Receiver<bool>,
    start: F,
) where
    F: Fn(watch::Receiver<bool>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut held = leadership.watch();
    loop {
        if *shutdown.borrow() {
            return;
        }
        if !*held.borrow_and_update() {
            tokio::select! {
                r = held.changed() => if r.is_err() { return },
                _ = shutdown.changed() => return,
            }
            continue;
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(start(stop_rx));
        loop {
            tokio::select! {
                r = held.changed() => {
                    if r.is_err() || !*held.borrow_and_update() { break; }
                }
                _ = shutdown.changed() => break,
            }
        }
        let _ = stop_tx.send(true);
        let _ = task.await;
    }
}

//! The alive notification (稼動状態の通知): on a schedule, inside the platform's operating
//! hours only, the gateway tells the platform it is operating in a signed
//! `AliveNotification`; the platform answers `AliveAck`. Nothing is stored: a missed
//! notification is simply sent again at the next interval.

use std::sync::Arc;
use std::time::Duration;

use renkei_platform::Message;
use tokio::sync::watch;

use super::{Policy, Uplink};
use crate::util::{new_id, now_ms};

/// Sends an alive notification now and every `every` until `stop` turns true; skipped while
/// the platform is closed (its operating hours) or paused after a failure.
pub async fn notifier(
    uplink: Uplink,
    policy: Arc<Policy>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        let now = now_ms();
        if policy.until_open_ms(now) == 0 && !policy.paused(now) {
            notify_once(&uplink, &policy).await;
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => {}
        }
    }
}

async fn notify_once(uplink: &Uplink, policy: &Policy) {
    let msg = Message::AliveNotification {
        header: uplink.header(new_id("AL")),
    };
    match uplink.exchange(&msg).await {
        Ok(Message::AliveAck { .. }) => {
            policy.platform_answered();
            tracing::debug!(message = "Alive notification acknowledged.");
        }
        Ok(other) => tracing::warn!(
            message = "Unexpected answer to an alive notification.",
            answer = other.type_name()
        ),
        Err(e) => tracing::info!(
            message = "Alive notification not acknowledged; sent again at the next interval.",
            reason = e.code()
        ),
    }
}

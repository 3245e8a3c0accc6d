//! How the gateway treats a platform that is closed, slow or failing: exponential backoff with
//! jitter per job, one shared pause for all platform work (instead of every queued job probing
//! a closed platform on its own), and the platform's operating window.
//!
//! Every number here is a named constant or comes from `[platform]` in `renkei.toml`.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::config::{parse_hours, PlatformConfig};
use renkei_platform::Message;

use crate::platform::{Uplink, UplinkError};
use crate::util::{ms_until_open, now_ms};

/// Backoff doubles per attempt up to this exponent (2^20 × base is far past any maximum).
const MAX_BACKOFF_EXPONENT: u32 = 20;
/// A job that failed for a local reason (a key could not seal, a stored value could not be
/// read) retries at this attempt's backoff: long enough not to spin on a broken key file,
/// short enough to recover soon after an operator fixes it (with the defaults: ~25–51 s).
pub const LOCAL_FAILURE_ATTEMPT: u32 = 8;
/// A code acquisition the platform refused is retried automatically, but further apart than
/// a transient failure: its backoff starts this many attempts later.
pub const REFUSED_CODE_EXTRA_ATTEMPTS: u32 = 4;

/// Retry and pause policy toward the platform, shared by every job kind.
#[derive(Debug)]
pub struct Policy {
    backoff_base_ms: u64,
    backoff_max_ms: u64,
    /// `[open, close)` minutes of the JST day; `None` is always open.
    window: Option<(u32, u32)>,
    /// No new platform work starts before this time (ms): the platform is closed or failing.
    paused_until: AtomicU64,
    /// Consecutive transient failures toward the platform (reset on any answer).
    failures: AtomicU32,
}

impl Policy {
    /// The policy of `[platform]`.
    pub fn new(p: &PlatformConfig) -> Self {
        Self {
            backoff_base_ms: p.backoff_base_ms,
            backoff_max_ms: p.backoff_max_ms,
            window: parse_hours(&p.operating_hours).filter(|w| *w != (0, 24 * 60)),
            paused_until: AtomicU64::new(0),
            failures: AtomicU32::new(0),
        }
    }

    /// The delay before attempt `attempts + 1`: exponential, capped, with full jitter over
    /// the upper half so that retries of many jobs spread apart.
    pub fn backoff_ms(&self, attempts: u32) -> u64 {
        let exp = self
            .backoff_base_ms
            .saturating_mul(1u64 << attempts.min(MAX_BACKOFF_EXPONENT))
            .min(self.backoff_max_ms);
        exp / 2 + fastrand::u64(0..=exp / 2)
    }

    /// Milliseconds until the operating window opens; 0 when it is open at `now`.
    pub fn until_open_ms(&self, now: u64) -> u64 {
        self.window.map(|w| ms_until_open(now, w)).unwrap_or(0)
    }

    /// True while all platform work is paused.
    pub fn paused(&self, now: u64) -> bool {
        self.paused_until.load(Ordering::Relaxed) > now
    }

    /// When the current pause ends (0 when there is none).
    pub fn paused_until(&self) -> u64 {
        self.paused_until.load(Ordering::Relaxed)
    }

    /// Pauses all platform work until at least `until`.
    pub fn pause_until(&self, until: u64) {
        self.paused_until.fetch_max(until, Ordering::Relaxed);
    }

    /// Pauses all platform work after a closed or failing answer; returns when it resumes.
    pub fn pause_for(&self, e: &UplinkError) -> u64 {
        let now = now_ms();
        let until = match e {
            UplinkError::Closed { retry_after_ms } => {
                now + retry_after_ms.unwrap_or(self.backoff_base_ms)
            }
            _ => {
                let n = self.failures.fetch_add(1, Ordering::Relaxed);
                now + self.backoff_ms(n)
            }
        };
        self.pause_until(until);
        until
    }

    /// When a job that hit `e` should run again: when the pause ends (closed), or after its
    /// own backoff if that is later (failing).
    pub fn retry_at(&self, e: &UplinkError, attempts: u32) -> u64 {
        let resume = self.pause_for(e);
        match e {
            UplinkError::Closed { .. } => resume,
            _ => resume.max(now_ms() + self.backoff_ms(attempts)),
        }
    }

    /// Notes that the platform answered: the failure streak is over.
    pub fn platform_answered(&self) {
        self.failures.store(0, Ordering::Relaxed);
    }

    /// One exchange with the platform, noting an answer (any message, or a fault the platform
    /// sent) as the end of the failure streak; a transport failure is left to the caller.
    pub async fn exchange(&self, uplink: &Uplink, msg: &Message) -> Result<Message, UplinkError> {
        let answer = uplink.exchange(msg).await;
        if matches!(answer, Ok(_) | Err(UplinkError::Fault(_))) {
            self.platform_answered();
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hours: &str) -> Policy {
        Policy {
            backoff_base_ms: 200,
            backoff_max_ms: 30_000,
            window: parse_hours(hours).filter(|w| *w != (0, 24 * 60)),
            paused_until: AtomicU64::new(0),
            failures: AtomicU32::new(0),
        }
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered_within_the_upper_half() {
        let p = policy("00:00-24:00");
        for attempts in 0..30 {
            let exp = (200u64 << attempts.min(20)).min(30_000);
            let d = p.backoff_ms(attempts);
            assert!(d >= exp / 2 && d <= exp, "attempt {attempts}: {d}");
        }
    }

    #[test]
    fn pauses_only_grow_and_closed_uses_retry_after() {
        let p = policy("00:00-24:00");
        let at = p.retry_at(
            &UplinkError::Closed {
                retry_after_ms: Some(60_000),
            },
            0,
        );
        assert!(at >= now_ms() + 59_000);
        assert!(p.paused(now_ms()));
        p.pause_until(1);
        assert_eq!(p.paused_until(), at, "a pause never shrinks");
        assert_eq!(p.until_open_ms(now_ms()), 0, "always open");
    }
}

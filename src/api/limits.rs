//! Per-client fair share, as a tower layer right after [`super::auth::authenticate`]: each
//! configured client has a token bucket (rate per second and burst) and a cap on its
//! requests in flight, so one runaway business system cannot starve the others. Beyond
//! either, the answer is 429 (`rate_limited` or `too_many_in_flight`) with `Retry-After`,
//! and the handler is not called.
//!
//! Clients are a fixed configured set, so the limiters are one map keyed by the configured
//! names, built at start: memory does not grow with what callers send. The bucket is
//! written here rather than taken from a rate-limiting crate: it is a dozen lines over a
//! mutex, keyed limiters bring a concurrent map and a clock library for a set that never
//! changes, and the concurrency cap (which those crates do not have) wants the same map.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::auth::Caller;
use super::error::ApiError;
use crate::config::{EffectiveLimits, GatewayConfig};

/// How long a caller refused for too many requests in flight is told to wait: requests
/// finish in milliseconds, so the shortest `Retry-After` there is.
const IN_FLIGHT_RETRY: Duration = Duration::from_secs(1);
/// A refusal is answered after this pause (or the wait until the next token, if shorter):
/// a runaway client that ignores `Retry-After` and asks again at once would otherwise have
/// the gateway spend its cores on thousands of refusals a second (measured: ~9,000/s from
/// 16 connections), taking them from its neighbours. Held, each of its connections asks
/// at most a few times a second; the pause holds no in-flight slot, only the connection.
const REFUSAL_HOLD: Duration = Duration::from_millis(200);

/// A token bucket: holds up to `burst` tokens, refilled at `rate` per second; a request
/// takes one.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    burst: f64,
    /// Tokens left and when they were counted.
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    fn new(rate: u32, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate: f64::from(rate.max(1)),
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Takes a token, or says how long until one is there.
    fn take(&self, now: Instant) -> Result<(), Duration> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, then) = *s;
        let elapsed = now.saturating_duration_since(then).as_secs_f64();
        let tokens = (tokens + elapsed * self.rate).min(self.burst);
        if tokens >= 1.0 {
            *s = (tokens - 1.0, now);
            Ok(())
        } else {
            *s = (tokens, now);
            Err(Duration::from_secs_f64((1.0 - tokens) / self.rate))
        }
    }
}

/// One client's limiters.
#[derive(Debug)]
struct ClientLimiter {
    bucket: Bucket,
    in_flight: Arc<Semaphore>,
}

impl ClientLimiter {
    fn new(l: EffectiveLimits) -> Self {
        Self {
            bucket: Bucket::new(l.rate_per_sec, l.burst),
            in_flight: Arc::new(Semaphore::new(l.max_in_flight.max(1))),
        }
    }
}

/// The limiters of every configured client.
#[derive(Debug, Clone)]
pub struct Limiters {
    by_client: Arc<HashMap<String, ClientLimiter>>,
    /// Shared by clients added by a configuration reload (limits are read at start): the
    /// `[limits]` defaults, so a new client is never unlimited before the next restart.
    added: Arc<ClientLimiter>,
}

impl Limiters {
    /// One limiter per configured client, with its limits from the config.
    pub fn new(config: &GatewayConfig) -> Self {
        let by_client = config
            .clients
            .iter()
            .map(|c| {
                (
                    c.name.as_str().to_string(),
                    ClientLimiter::new(config.limits.for_client(c)),
                )
            })
            .collect();
        let defaults = EffectiveLimits {
            rate_per_sec: config.limits.rate_per_sec,
            burst: config.limits.burst,
            max_in_flight: config.limits.max_in_flight,
        };
        Self {
            by_client: Arc::new(by_client),
            added: Arc::new(ClientLimiter::new(defaults)),
        }
    }
}

/// Layer: lets the caller's request through if its client has a token and a free slot.
pub async fn fair_share(State(limits): State<Limiters>, req: Request, next: Next) -> Response {
    // `authenticate` runs first and answers a request without a configured caller itself.
    let Some(limiter) = req.extensions().get::<Caller>().map(|c| {
        limits
            .by_client
            .get(c.client.name.as_str())
            .unwrap_or(limits.added.as_ref())
    }) else {
        return next.run(req).await;
    };
    let Ok(slot) = limiter.in_flight.clone().try_acquire_owned() else {
        return refuse(
            "too_many_in_flight",
            "this client has too many requests in progress; retry after the time given",
            IN_FLIGHT_RETRY,
        )
        .await;
    };
    if let Err(wait) = limiter.bucket.take(Instant::now()) {
        drop(slot);
        return refuse(
            "rate_limited",
            "this client is sending requests faster than its configured rate; retry after the time given",
            wait,
        )
        .await;
    }
    let answer = next.run(req).await;
    drop(slot);
    answer
}

/// A 429 answered after [`REFUSAL_HOLD`] (or `wait`, if shorter).
async fn refuse(code: &'static str, message: &'static str, wait: Duration) -> Response {
    tokio::time::sleep(wait.min(REFUSAL_HOLD)).await;
    ApiError::too_many(code, message, wait).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_refills_at_rate() {
        let b = Bucket::new(10, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(b.take(t0).is_ok());
        }
        let wait = b.take(t0).unwrap_err();
        assert!(wait <= Duration::from_millis(100) && wait > Duration::ZERO);
        // A tenth of a second later one token is back, and only one.
        let t1 = t0 + Duration::from_millis(100);
        assert!(b.take(t1).is_ok());
        assert!(b.take(t1).is_err());
        // Never more than the burst, however long the pause.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(b.take(t2).is_ok());
        }
        assert!(b.take(t2).is_err());
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        let e = ApiError::too_many("rate_limited", "x", Duration::from_millis(1));
        assert_eq!(e.retry_after_secs, Some(1));
        let e = ApiError::too_many("rate_limited", "x", Duration::from_millis(2001));
        assert_eq!(e.retry_after_secs, Some(3));
    }
}

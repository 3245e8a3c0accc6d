//! The process's metrics registry (Prometheus, names prefixed `renkei_`), low in the layers so
//! that every capability can count without reaching up: [`global`] is the one instance, the
//! ops listener encodes it ([`Metrics::encode`]). Labels hold fixed vocabularies only (route
//! templates, outcome codes, purposes, client names) — never a value taken from a request.
//! Beside the registry, a small per-minute ring of the inquiry flow ([`Throughput`]) gives
//! the operator's console the last hour without a metrics server.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

/// A label naming one fixed-vocabulary value (`status`, `outcome`, `purpose`, …).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

/// The outcome of a platform exchange.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

/// One request to the API: its route template (never the raw path), method and status class.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
    pub method: String,
    pub status: u16,
}

/// A key purpose.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PurposeLabel {
    pub purpose: String,
}

/// A certificate: whose it is.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CertLabel {
    pub certificate: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// How many minutes the throughput ring keeps (the operator's chart shows the last hour).
pub const THROUGHPUT_MINUTES: usize = 60;

/// One minute of the inquiry flow: how many inquiries were accepted, and how many finished
/// answered or failed, in the minute starting at `minute` (Unix seconds, a multiple of 60).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct MinuteCounts {
    pub minute: u64,
    pub accepted: u64,
    pub answered: u64,
    pub failed: u64,
}

/// What the ring counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Accepted,
    Answered,
    Failed,
}

/// The last [`THROUGHPUT_MINUTES`] minutes of the inquiry flow, one slot per minute reused
/// as the clock passes it (a slot whose minute is not the one asked for counts zero). Counts
/// since the process started, like the counters: memory only, a fixed 60 slots.
#[derive(Debug)]
pub struct Throughput {
    slots: Mutex<[MinuteCounts; THROUGHPUT_MINUTES]>,
}

impl Default for Throughput {
    fn default() -> Self {
        Throughput {
            slots: Mutex::new([MinuteCounts::default(); THROUGHPUT_MINUTES]),
        }
    }
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Throughput {
    fn slots(&self) -> std::sync::MutexGuard<'_, [MinuteCounts; THROUGHPUT_MINUTES]> {
        // A panic elsewhere while holding the lock leaves whole counts: keep using them.
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one `flow` event now.
    pub fn count(&self, flow: Flow) {
        self.count_at(flow, unix_secs());
    }

    /// Counts one `flow` event at `now` (Unix seconds).
    pub fn count_at(&self, flow: Flow, now: u64) {
        let minute = now / 60;
        let mut slots = self.slots();
        let slot = &mut slots[(minute % THROUGHPUT_MINUTES as u64) as usize];
        if slot.minute != minute * 60 {
            *slot = MinuteCounts {
                minute: minute * 60,
                ..MinuteCounts::default()
            };
        }
        match flow {
            Flow::Accepted => slot.accepted += 1,
            Flow::Answered => slot.answered += 1,
            Flow::Failed => slot.failed += 1,
        }
    }

    /// The last hour, oldest minute first, the current minute last: always
    /// [`THROUGHPUT_MINUTES`] entries (minutes without events count zero).
    pub fn last_hour(&self) -> Vec<MinuteCounts> {
        self.last_hour_at(unix_secs())
    }

    /// [`Throughput::last_hour`] as of `now` (Unix seconds).
    pub fn last_hour_at(&self, now: u64) -> Vec<MinuteCounts> {
        let current = now / 60;
        let slots = self.slots();
        (0..THROUGHPUT_MINUTES as u64)
            .rev()
            .map(|back| {
                let minute = current.saturating_sub(back);
                let slot = slots[(minute % THROUGHPUT_MINUTES as u64) as usize];
                if slot.minute == minute * 60 {
                    slot
                } else {
                    MinuteCounts {
                        minute: minute * 60,
                        ..MinuteCounts::default()
                    }
                }
            })
            .collect()
    }
}

/// The accepted-inquiries counter, which also feeds the throughput ring (`inc` and `get`
/// as on a plain counter, so the places that count need not know of the ring).
#[derive(Debug, Default)]
pub struct AcceptedCounter {
    counter: Counter,
    ring: Arc<Throughput>,
}

impl AcceptedCounter {
    /// Counts one accepted inquiry.
    pub fn inc(&self) {
        self.counter.inc();
        self.ring.count(Flow::Accepted);
    }

    /// Inquiries accepted since start.
    pub fn get(&self) -> u64 {
        self.counter.get()
    }
}
type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric the gateway exports.
pub struct Metrics {
    registry: Registry,
    /// Inquiries accepted (202) since start (also counted in [`Metrics::throughput`]).
    pub inquiries_accepted: AcceptedCounter,
    /// The inquiry flow per minute over the last hour.
    pub throughput: Arc<Throughput>,
    /// Inquiries that reached a final status since start, by that status.
    pub inquiries_finished: Family<StatusLabel, Counter>,
    /// Inquiries held now, by status (set when scraped).
    pub inquiries: Family<StatusLabel, Gauge>,
    /// Platform exchanges since start, by outcome.
    pub platform_requests: Family<OutcomeLabel, Counter>,
    /// API request latency by route template, method and status.
    pub request_seconds: HistogramFamily<RouteLabels>,
    /// Batches per commit group.
    pub commit_group_batches: Histogram,
    /// Time to write and `fsync` one commit group.
    pub commit_sync_seconds: Histogram,
    /// Commit groups that failed.
    pub commit_failures: Counter,
    /// Linkage records written since start.
    pub records_written: Counter,
    /// Seconds since the last signed checkpoint (set when scraped; -1 when there is none).
    pub checkpoint_age_seconds: FloatGauge,
    /// The active key version of each purpose (set when scraped).
    pub key_version: Family<PurposeLabel, Gauge>,
    /// When each certificate the gateway holds or was shown expires (Unix seconds).
    pub certificate_expiry: Family<CertLabel, Gauge>,
}

fn latency_buckets() -> Histogram {
    // 0.5 ms … about 16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("renkei");
        let throughput = Arc::new(Throughput::default());
        let m = Metrics {
            inquiries_accepted: AcceptedCounter {
                counter: Counter::default(),
                ring: throughput.clone(),
            },
            throughput,
            inquiries_finished: Family::default(),
            inquiries: Family::default(),
            platform_requests: Family::default(),
            request_seconds: Family::new_with_constructor(latency_buckets),
            commit_group_batches: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            commit_sync_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            commit_failures: Counter::default(),
            records_written: Counter::default(),
            checkpoint_age_seconds: FloatGauge::default(),
            key_version: Family::default(),
            certificate_expiry: Family::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "inquiries_accepted",
            "Inquiries accepted since start",
            m.inquiries_accepted.counter.clone(),
        );
        r.register(
            "inquiries_finished",
            "Inquiries that reached a final status since start",
            m.inquiries_finished.clone(),
        );
        r.register(
            "inquiries",
            "Inquiries held, by status",
            m.inquiries.clone(),
        );
        r.register(
            "platform_requests",
            "Platform exchanges since start, by outcome",
            m.platform_requests.clone(),
        );
        r.register_with_unit(
            "http_request_duration",
            "API request latency by route template",
            Unit::Seconds,
            m.request_seconds.clone(),
        );
        r.register(
            "store_commit_group_batches",
            "Batches per commit group",
            m.commit_group_batches.clone(),
        );
        r.register_with_unit(
            "store_commit_sync",
            "Time to write and fsync one commit group",
            Unit::Seconds,
            m.commit_sync_seconds.clone(),
        );
        r.register(
            "store_commit_failures",
            "Commit groups whose write or sync failed",
            m.commit_failures.clone(),
        );
        r.register(
            "records_written",
            "Linkage records written since start",
            m.records_written.clone(),
        );
        r.register_with_unit(
            "checkpoint_age",
            "Seconds since the last signed checkpoint (-1: none yet)",
            Unit::Seconds,
            m.checkpoint_age_seconds.clone(),
        );
        r.register(
            "key_version",
            "Active key version per purpose",
            m.key_version.clone(),
        );
        r.register(
            "certificate_expiry_timestamp",
            "When a certificate expires, Unix seconds",
            m.certificate_expiry.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The registry in the Prometheus/OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Counts one platform exchange by its outcome code.
    pub fn platform_request(&self, outcome: &'static str) {
        self.platform_requests
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    /// Records one API request.
    pub fn request(&self, route: &str, method: &str, status: u16, took: Duration) {
        self.request_seconds
            .get_or_create(&RouteLabels {
                route: route.to_string(),
                method: method.to_string(),
                status,
            })
            .observe(took.as_secs_f64());
    }

    /// Records one commit group.
    pub fn commit_group(&self, batches: usize, records: usize, took: Duration, ok: bool) {
        self.commit_group_batches.observe(batches as f64);
        self.commit_sync_seconds.observe(took.as_secs_f64());
        if ok {
            self.records_written.inc_by(records as u64);
        } else {
            self.commit_failures.inc();
        }
    }

    /// Counts an inquiry reaching `status` (`answered` or `failed`), in the counters and the
    /// throughput ring.
    pub fn inquiry_finished(&self, status: &str) {
        match status {
            "answered" => self.throughput.count(Flow::Answered),
            "failed" => self.throughput.count(Flow::Failed),
            _ => {}
        }
        self.inquiries_finished
            .get_or_create(&StatusLabel {
                status: status.to_string(),
            })
            .inc();
    }

    /// Sets when a certificate expires.
    pub fn certificate_expires(&self, certificate: &str, unix_secs: i64) {
        self.certificate_expiry
            .get_or_create(&CertLabel {
                certificate: certificate.to_string(),
            })
            .set(unix_secs);
    }
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(Metrics::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_prefixed_and_counters_move() {
        let m = Metrics::new();
        m.inquiries_accepted.inc();
        m.platform_request("ok");
        m.request("/v1/inquiries/{id}", "GET", 200, Duration::from_millis(3));
        let text = m.encode();
        assert!(text.contains("renkei_inquiries_accepted_total 1"), "{text}");
        assert!(
            text.contains("renkei_platform_requests_total{outcome=\"ok\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "renkei_http_request_duration_seconds_count{route=\"/v1/inquiries/{id}\""
            ),
            "{text}"
        );
        m.inquiry_finished("answered");
        let hour = m.throughput.last_hour();
        assert_eq!(hour.len(), THROUGHPUT_MINUTES);
        let last = hour.last().expect("the current minute");
        assert_eq!((last.accepted, last.answered, last.failed), (1, 1, 0));
    }

    #[test]
    fn the_throughput_ring_keeps_one_hour_by_minute() {
        let ring = Throughput::default();
        let t0 = 1_800_000_000; // a minute's start (a multiple of 60)
        ring.count_at(Flow::Accepted, t0);
        ring.count_at(Flow::Accepted, t0 + 59);
        ring.count_at(Flow::Failed, t0 + 60);
        let hour = ring.last_hour_at(t0 + 61);
        assert_eq!(hour.len(), THROUGHPUT_MINUTES);
        assert_eq!(
            hour[58],
            MinuteCounts {
                minute: t0,
                accepted: 2,
                answered: 0,
                failed: 0
            }
        );
        assert_eq!(hour[59].minute, t0 + 60);
        assert_eq!(hour[59].failed, 1);
        assert!(hour.windows(2).all(|w| w[1].minute == w[0].minute + 60));
        // An hour later the old minute's slot is reused, its counts gone.
        ring.count_at(Flow::Answered, t0 + 3600);
        let later = ring.last_hour_at(t0 + 3600);
        assert_eq!(
            later[59],
            MinuteCounts {
                minute: t0 + 3600,
                accepted: 0,
                answered: 1,
                failed: 0
            }
        );
        assert!(later.iter().all(|m| m.accepted == 0 && m.failed <= 1));
        assert_eq!(later.iter().map(|m| m.failed).sum::<u64>(), 1);
        // Long idle: every minute counts zero.
        assert!(ring.last_hour_at(t0 + 10 * 3600).iter().all(|m| *m
            == MinuteCounts {
                minute: m.minute,
                ..MinuteCounts::default()
            }));
    }
}

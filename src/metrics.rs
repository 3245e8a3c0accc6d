//! The process's metrics registry (Prometheus, names prefixed `renkei_`), low in the layers so
//! that every capability can count without reaching up: [`global`] is the one instance, the
//! ops listener encodes it ([`Metrics::encode`]). Labels hold fixed vocabularies only (route
//! templates, outcome codes, purposes, client names) — never a value taken from a request.

use std::sync::atomic::AtomicU64;
use std::sync::OnceLock;
use std::time::Duration;

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
type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric the gateway exports.
pub struct Metrics {
    registry: Registry,
    /// Inquiries accepted (202) since start.
    pub inquiries_accepted: Counter,
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
        let m = Metrics {
            inquiries_accepted: Counter::default(),
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
            m.inquiries_accepted.clone(),
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

    /// Counts an inquiry reaching `status` (`answered` or `failed`).
    pub fn inquiry_finished(&self, status: &str) {
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
    }
}

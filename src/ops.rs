//! What operators see: counts of what the gateway holds, how the store commits, the state
//! of the platform's master information; the readiness checks behind `/readyz`; and the
//! values the metrics read when scraped (inquiries by status, checkpoint age, key versions).

use std::path::Path;
use std::time::Duration;

use renkei_crypto::keyring::{KeyPurpose, KeyState as Lifecycle};
use renkei_store::{CommitStats, Store, StoreError, Tree};
use serde::Serialize;

use crate::inquiry::repo::InquiryRepo;
use crate::keyring::KeyState;
use crate::keys::master::{MasterStatus, SharedMaster};
use crate::metrics::{PurposeLabel, StatusLabel};
use crate::platform::Policy;
use crate::util::{now_ms, parse_rfc3339_ms};

/// Readiness warns this many days before a certificate it can read expires.
pub const CERT_EXPIRY_WARNING_DAYS: i64 = 30;

/// How long the readiness probe waits for a TCP connection to the platform.
pub const DEFAULT_PLATFORM_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Queue depth, the part `/v1/ops/stats` and `/v1/ops/queue` share (one reading, one place):
/// inquiries held in each status (every status listed, from the status index), jobs
/// scheduled and persons awaiting a code.
#[derive(Debug, Clone, Serialize)]
pub struct QueueDepth {
    pub inquiries_by_status: std::collections::BTreeMap<&'static str, u64>,
    pub scheduled_jobs: usize,
    pub awaiting_code: usize,
}

/// Reads the [`QueueDepth`] (counts only).
pub fn queue_depth(store: &dyn Store) -> Result<QueueDepth, StoreError> {
    Ok(QueueDepth {
        inquiries_by_status: crate::inquiry::repo::count_by_status(store)?
            .into_iter()
            .map(|(s, n)| (s.as_str(), n))
            .collect(),
        scheduled_jobs: store.len(Tree::Due)?,
        awaiting_code: store.len(Tree::AwaitingCode)?,
    })
}

/// `GET /v1/ops/stats`: the [`QueueDepth`] fields at the top level, with the totals held.
#[derive(Debug, Serialize)]
pub struct OpsStats {
    pub inquiries: usize,
    #[serde(flatten)]
    pub queue: QueueDepth,
    pub persons: usize,
    pub records: usize,
    pub commits: CommitStats,
    pub master_info: MasterStatus,
}

fn master_now(master: &SharedMaster) -> MasterStatus {
    match master.read() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    }
}

/// Counts now.
pub fn stats(store: &dyn Store, master: &SharedMaster) -> Result<OpsStats, StoreError> {
    let queue = queue_depth(store)?;
    Ok(OpsStats {
        inquiries: queue.inquiries_by_status.values().sum::<u64>() as usize,
        queue,
        persons: store.len(Tree::Persons)?,
        records: store.len(Tree::Records)?,
        commits: store.stats(),
        master_info: master_now(master),
    })
}

/// One readiness check: its name, whether it passes, and a fixed-text reason.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: &'static str,
}

/// What the readiness checks look at.
#[derive(Clone)]
pub struct Readiness {
    pub store: std::sync::Arc<dyn Store>,
    pub keyring: std::sync::Arc<KeyState>,
    pub master: SharedMaster,
    pub policy: std::sync::Arc<Policy>,
    /// The platform's base URL (`https://host:port`).
    pub platform_url: String,
    /// Which store backend the gateway runs on.
    pub backend: crate::config::StoreBackend,
    /// Whether this gateway runs the dispatcher (always, alone on sled; under the lease on
    /// PostgreSQL).
    pub leadership: crate::lease::Leadership,
    /// The gateway's own certificates, by name (`server`, `platform-client`).
    pub own_certificates: Vec<(&'static str, std::path::PathBuf)>,
    /// Where client certificates issued by `renkei clients add` / `renkei init` lie
    /// (`clients/NAME/cert.pem` beside `renkei.toml`), when known.
    pub clients_dir: Option<std::path::PathBuf>,
    /// The settings in force (which clients are configured now).
    pub settings: crate::settings::Live,
}

/// Where the state is and who dispatches, for `/readyz`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoreInfo {
    pub backend: crate::config::StoreBackend,
    /// The database server written to, with `(primary)` or `(standby)`; absent for sled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Whether this gateway holds the dispatch lease.
    pub dispatching: bool,
}

/// A readiness warning: something to act on soon that does not make the gateway unready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// `certificate_expiry`.
    pub check: &'static str,
    /// The configured client whose certificate it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// One of the gateway's own certificates (`server`, `platform-client`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<&'static str>,
    /// Whole days until it expires (0 or less: expired).
    pub days_left: i64,
}

/// Days left before `pem_file`'s certificate expires, when fewer than
/// [`CERT_EXPIRY_WARNING_DAYS`].
fn expiring(pem_file: &Path, now_secs: i64) -> Option<i64> {
    let left = certificate_expiry(pem_file)? - now_secs;
    let days = left.div_euclid(86_400);
    (days < CERT_EXPIRY_WARNING_DAYS).then_some(days)
}

/// `host:port` of an `https://` URL.
fn authority(url: &str) -> &str {
    let rest = url.strip_prefix("https://").unwrap_or(url);
    rest.split('/').next().unwrap_or(rest)
}

impl Readiness {
    /// Certificates expiring within [`CERT_EXPIRY_WARNING_DAYS`]: the gateway's own and each
    /// configured client's whose certificate file it can read.
    pub fn warnings(&self) -> Vec<Warning> {
        let now = (now_ms() / 1000) as i64;
        let mut out: Vec<Warning> = self
            .own_certificates
            .iter()
            .filter_map(|(name, file)| {
                expiring(file, now).map(|days_left| Warning {
                    check: "certificate_expiry",
                    client: None,
                    certificate: Some(name),
                    days_left,
                })
            })
            .collect();
        if let Some(dir) = &self.clients_dir {
            for c in &self.settings.current().config.clients {
                let file = dir.join(c.name.as_str()).join("cert.pem");
                if let Some(days_left) = expiring(&file, now) {
                    out.push(Warning {
                        check: "certificate_expiry",
                        client: Some(c.name.to_string()),
                        certificate: None,
                        days_left,
                    });
                }
            }
        }
        out
    }

    /// Runs every check: store writable, keys loaded, master information fresh, platform
    /// reachable (or inside its closed hours, when nothing is sent anyway).
    pub async fn checks(&self) -> Vec<Check> {
        self.checks_and_store().await.0
    }

    /// [`Readiness::checks`] and where the store is.
    pub async fn checks_and_store(&self) -> (Vec<Check>, StoreInfo) {
        let node = match self.backend {
            crate::config::StoreBackend::Sled => None,
            crate::config::StoreBackend::Postgres => self.store.node(),
        };
        let reachable = self.backend == crate::config::StoreBackend::Sled || node.is_some();
        let info = StoreInfo {
            backend: self.backend,
            node,
            dispatching: self.leadership.is_held(),
        };
        let store = match (self.store.health().is_ok(), reachable) {
            (true, true) => Check {
                name: "store",
                ok: true,
                detail: "takes writes",
            },
            (true, false) => Check {
                name: "store",
                ok: false,
                detail: "the database cannot be reached",
            },
            (false, _) => Check {
                name: "store",
                ok: false,
                detail: "a write or sync failed; restart the gateway",
            },
        };
        let ring = self.keyring.keyring();
        let active = |p: KeyPurpose| {
            ring.list()
                .iter()
                .any(|k| k.purpose == p && k.state == Lifecycle::Active)
        };
        let keys_ok = active(KeyPurpose::Signing) && active(KeyPurpose::Sealing);
        let keys = Check {
            name: "keys",
            ok: keys_ok,
            detail: if keys_ok {
                "signing and sealing keys active"
            } else {
                "no active signing or sealing key"
            },
        };
        let master = master_now(&self.master);
        let fresh = master
            .valid_until
            .as_deref()
            .and_then(parse_rfc3339_ms)
            .is_some_and(|t| t > now_ms());
        let master = Check {
            name: "master_info",
            ok: fresh,
            detail: match (fresh, master.valid_until.is_some()) {
                (true, _) => "valid",
                (false, true) => "stale",
                (false, false) => "not fetched yet",
            },
        };
        let platform = if self.policy.until_open_ms(now_ms()) > 0 {
            Check {
                name: "platform",
                ok: true,
                detail: "outside the platform's operating hours",
            }
        } else {
            let connect = tokio::net::TcpStream::connect(authority(&self.platform_url));
            match tokio::time::timeout(DEFAULT_PLATFORM_PROBE_TIMEOUT, connect).await {
                Ok(Ok(_)) => Check {
                    name: "platform",
                    ok: true,
                    detail: "reachable",
                },
                _ => Check {
                    name: "platform",
                    ok: false,
                    detail: "not reachable",
                },
            }
        };
        (vec![store, keys, master, platform], info)
    }
}

fn purpose_name(p: KeyPurpose) -> &'static str {
    match p {
        KeyPurpose::Signing => "signing",
        KeyPurpose::Sealing => "sealing",
        KeyPurpose::AtRest => "at-rest",
        KeyPurpose::BlindIndex => "blind-index",
        KeyPurpose::Checkpoint => "checkpoint",
    }
}

/// Sets the metrics read at scrape time: inquiries by status, the last checkpoint's age and
/// the active key version of each purpose.
pub fn refresh_metrics(store: &std::sync::Arc<dyn Store>, keyring: &std::sync::Arc<KeyState>) {
    let m = crate::metrics::global();
    match InquiryRepo::new(store.clone(), keyring.clone()).count_by_status() {
        Ok(counts) => {
            for (status, n) in counts {
                m.inquiries
                    .get_or_create(&StatusLabel {
                        status: status.as_str().to_string(),
                    })
                    .set(n as i64);
            }
        }
        Err(error) => tracing::warn!(message = "Inquiries could not be counted.", %error),
    }
    let last = store
        .range_rev(Tree::Checkpoints, &[], &[], 1)
        .ok()
        .and_then(|e| e.into_iter().next())
        .and_then(|(_, v)| String::from_utf8(v).ok())
        .and_then(|line| renkei_records::Checkpoint::from_json_line(&line).ok())
        .and_then(|cp| parse_rfc3339_ms(&cp.created_at));
    m.checkpoint_age_seconds.set(match last {
        Some(t) => now_ms().saturating_sub(t) as f64 / 1000.0,
        None => -1.0,
    });
    for k in keyring.keyring().list() {
        if k.state == Lifecycle::Active {
            m.key_version
                .get_or_create(&PurposeLabel {
                    purpose: purpose_name(k.purpose).to_string(),
                })
                .set(i64::from(k.version));
        }
    }
}

/// The expiry (Unix seconds) of the first certificate in a PEM file.
pub fn certificate_expiry(pem_file: &Path) -> Option<i64> {
    let pem = std::fs::read(pem_file).ok()?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).ok()?;
    let cert = pem.parse_x509().ok()?;
    Some(cert.validity().not_after.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_of_a_url() {
        assert_eq!(authority("https://127.0.0.1:9443"), "127.0.0.1:9443");
        assert_eq!(authority("https://nps.example:443/base"), "nps.example:443");
    }
}

/// One cell of the business statistics (業務統計): how many inquiries of one business system,
/// procedure and item ended with one result on one day (JST, by the request's time). Counts
/// only, never persons.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct StatRow {
    /// `YYYY-MM-DD`, JST.
    pub date: String,
    pub business_system: String,
    pub procedure: String,
    pub item: String,
    /// `answered`, `not_held`, `refused` or `failed`.
    pub result: String,
    pub count: u64,
}

/// The JST date (`YYYY-MM-DD`) of an RFC 3339 time.
fn jst_date(rfc3339: &str) -> Option<String> {
    let ms = parse_rfc3339_ms(rfc3339)?;
    Some(crate::util::rfc3339_jst(ms).get(..10)?.to_string())
}

/// Finished inquiries per day × business system × procedure × item × result, for the days
/// `from..=to` (`YYYY-MM-DD`, JST), read from the linkage records (each inquiry's final
/// record; the `accepted` record of a submission is not counted).
pub fn business_stats(
    store: &dyn Store,
    from: &str,
    to: &str,
) -> Result<Vec<StatRow>, crate::records::Error> {
    use renkei_records::{RecordKind, RecordResult};
    let mut cells: std::collections::BTreeMap<(String, String, String, String, String), u64> =
        Default::default();
    for entry in crate::records::log::entries(store, 0) {
        let Some(r) = crate::records::log::decode(&entry?) else {
            continue;
        };
        if r.kind != RecordKind::Inquiry || r.result == RecordResult::Accepted {
            continue;
        }
        let Some(date) = jst_date(&r.requested_at) else {
            continue;
        };
        if date.as_str() < from || date.as_str() > to {
            continue;
        }
        let result = serde_json::to_value(r.result)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let key = (
            date,
            r.business_system.map(|s| s.to_string()).unwrap_or_default(),
            r.procedure.map(|p| p.to_string()).unwrap_or_default(),
            r.item.map(|i| i.to_string()).unwrap_or_default(),
            result,
        );
        *cells.entry(key).or_default() += 1;
    }
    Ok(cells
        .into_iter()
        .map(
            |((date, business_system, procedure, item, result), count)| StatRow {
                date,
                business_system,
                procedure,
                item,
                result,
                count,
            },
        )
        .collect())
}

/// One batch as operators see it: its counts and state, never its lines.
#[derive(Debug, Clone, Serialize)]
pub struct BatchRow {
    pub id: String,
    pub business_system: String,
    pub status: crate::batch::BatchState,
    pub received_at: String,
    pub lines: u64,
    pub accepted: u64,
    pub rejected: u64,
    /// The inquiries' progress: queued, sent, answered, failed, done.
    pub progress: crate::batch::Progress,
}

/// Every batch, newest first, with its current progress.
pub async fn batches(
    inquiries: &crate::inquiry::Inquiries,
) -> Result<Vec<BatchRow>, crate::error::Error> {
    let store = inquiries.store();
    let mut rows = Vec::new();
    let mut start: Vec<u8> = Vec::new();
    // Keys are `<id>`, `<id>#progress` and `<id>/<line>`: read one metadata entry, then
    // jump past that batch's keys.
    while let Some((key, value)) = store
        .range(Tree::Batches, &start, &[], 1)?
        .into_iter()
        .next()
    {
        start = renkei_store::prefix_end(&[key.as_slice(), b"/"].concat());
        if key.iter().any(|b| *b == b'#' || *b == b'/') {
            continue;
        }
        let meta: crate::batch::BatchMeta =
            serde_json::from_slice(&value).map_err(crate::batch::internal)?;
        let progress = crate::batch::progress::progress(inquiries, &meta).await?;
        rows.push(BatchRow {
            id: meta.id.clone(),
            business_system: meta.system.to_string(),
            status: meta.state,
            received_at: crate::util::rfc3339_jst(meta.received_ms),
            lines: meta.total_lines,
            accepted: meta.accepted,
            rejected: meta.rejected_count,
            progress,
        });
    }
    rows.sort_by(|a, b| b.received_at.cmp(&a.received_at));
    Ok(rows)
}

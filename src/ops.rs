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

/// `GET /v1/ops/stats`.
#[derive(Debug, Serialize)]
pub struct OpsStats {
    pub inquiries: usize,
    pub persons: usize,
    pub scheduled_jobs: usize,
    pub awaiting_code: usize,
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
    Ok(OpsStats {
        inquiries: store.len(Tree::Inquiries)?,
        persons: store.len(Tree::Persons)?,
        scheduled_jobs: store.len(Tree::Due)?,
        awaiting_code: store.len(Tree::AwaitingCode)?,
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
    /// The gateway's own certificates, by name (`server`, `platform-client`).
    pub own_certificates: Vec<(&'static str, std::path::PathBuf)>,
    /// Where client certificates issued by `renkei clients add` / `renkei init` lie
    /// (`clients/NAME/cert.pem` beside `renkei.toml`), when known.
    pub clients_dir: Option<std::path::PathBuf>,
    /// The settings in force (which clients are configured now).
    pub settings: crate::settings::Live,
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
        let store = match self.store.health().is_ok() {
            true => Check {
                name: "store",
                ok: true,
                detail: "takes writes",
            },
            false => Check {
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
        vec![store, keys, master, platform]
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

//! Connections to PostgreSQL: parsing the libpq-style url, connecting (password never logged),
//! describing the targets for logs, and the reconnect backoff shared by the writer and readers.

use std::str::FromStr;
use std::time::{Duration, Instant};

use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, NoTls};

use super::{PgError, PgOptions};

/// Name the server shows in `pg_stat_activity` when the url sets none: an operator looking
/// at a busy primary can tell the gateway's sessions apart.
const DEFAULT_APPLICATION_NAME: &str = "renkei";
/// libpq's port when the url names none (only used to describe the targets).
const DEFAULT_PG_PORT: u16 = 5432;
/// The driver's own keepalive idle time (2 h), i.e. "the url did not set one".
const DRIVER_KEEPALIVES_IDLE: Duration = Duration::from_secs(2 * 60 * 60);
/// Keepalive probes after this much silence: a primary whose machine died (no RST) while a
/// COMMIT waited for its answer is noticed in seconds, not after the kernel's 15 minutes.
const DEFAULT_KEEPALIVES_IDLE: Duration = Duration::from_secs(5);
/// Between keepalive probes.
const DEFAULT_KEEPALIVES_INTERVAL: Duration = Duration::from_secs(2);
/// Unanswered probes before the connection is declared dead (5 + 3 × 2 = 11 s).
const DEFAULT_KEEPALIVES_RETRIES: u32 = 3;
/// Sent data unacknowledged this long kills the connection (Linux `TCP_USER_TIMEOUT`);
/// above the keepalive budget so that it does not cut a healthy slow link first.
const DEFAULT_TCP_USER_TIMEOUT: Duration = Duration::from_secs(15);

/// Parses `url` (`postgresql://…` or `key=value …`, several hosts and
/// `target_session_attrs=read-write` included) and fills in defaults it does not set.
pub(crate) fn parse(url: &str, options: &PgOptions) -> Result<Config, PgError> {
    // The parser's messages can quote a character of the input; the input may hold a
    // password, so only a fixed message leaves this function.
    let mut config = Config::from_str(url).map_err(|_| PgError::Url)?;
    if let (None, Some(p)) = (config.get_password(), &options.password) {
        config.password(p.as_bytes());
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(options.connect_timeout);
    }
    if config.get_application_name().is_none() {
        config.application_name(DEFAULT_APPLICATION_NAME);
    }
    if config.get_keepalives() && config.get_keepalives_idle() == DRIVER_KEEPALIVES_IDLE {
        config.keepalives_idle(DEFAULT_KEEPALIVES_IDLE);
        if config.get_keepalives_interval().is_none() {
            config.keepalives_interval(DEFAULT_KEEPALIVES_INTERVAL);
        }
        if config.get_keepalives_retries().is_none() {
            config.keepalives_retries(DEFAULT_KEEPALIVES_RETRIES);
        }
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(DEFAULT_TCP_USER_TIMEOUT);
    }
    Ok(config)
}

/// `user@host:port,host:port/dbname`, for logs and errors (never the password).
pub(crate) fn describe(config: &Config) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let port = ports
                .get(i)
                .or_else(|| ports.first())
                .copied()
                .unwrap_or(DEFAULT_PG_PORT);
            match h {
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect();
    format!(
        "{}@{}/{}",
        config.get_user().unwrap_or("-"),
        hosts.join(","),
        config.get_dbname().unwrap_or("-")
    )
}

/// The whole error chain of a driver error, with the SQLSTATE when the server sent one.
/// (The driver's own `Display` says only "db error".)
pub(crate) fn describe_error(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
    }
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Connects once and spawns the connection's I/O task on the current runtime.
pub(crate) async fn connect(
    config: &Config,
    targets: &str,
    role: &'static str,
) -> Result<Client, PgError> {
    let (client, connection) = config.connect(NoTls).await.map_err(|e| PgError::Connect {
        targets: targets.to_string(),
        detail: describe_error(&e),
    })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(
                message = "PostgreSQL connection ended.",
                role,
                error = %describe_error(&e)
            );
        }
    });
    Ok(client)
}

/// When a broken connection may next be retried: doubles from `min` up to `max` after each
/// failure, back to `min` after a success.
#[derive(Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    delay: Duration,
    next: Option<Instant>,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            delay: min,
            next: None,
        }
    }

    /// `Err(wait)` while the previous failure is too recent to try again.
    pub(crate) fn ready(&self) -> Result<(), Duration> {
        match self.next {
            Some(t) => {
                let now = Instant::now();
                if now < t {
                    Err(t - now)
                } else {
                    Ok(())
                }
            }
            None => Ok(()),
        }
    }

    pub(crate) fn failed(&mut self) -> Duration {
        let wait = self.delay;
        self.next = Some(Instant::now() + wait);
        self.delay = (self.delay * 2).min(self.max);
        wait
    }

    pub(crate) fn succeeded(&mut self) {
        self.delay = self.min;
        self.next = None;
    }
}

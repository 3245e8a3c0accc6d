//! Typed configuration of the gateway (`renkei.toml`) and the simulator (`sim.toml`),
//! validated as a whole when loaded, with every problem reported at once.
//!
//! Relative paths in a config file are resolved against the folder holding that file, so a
//! deployment folder made by `renkei init` can be moved as one piece.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use renkei_ids::{AffairCode, AgencyCode, ItemCode, ProcedureCode, SystemId};
use serde::{Deserialize, Serialize};

/// Gateway listen address when none is given: the city's intranet port for HTTPS.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
/// Simulator listen address when none is given.
pub const DEFAULT_SIM_LISTEN: &str = "127.0.0.1:9443";
/// Most platform requests in flight at once: the platform is shared by every city, so the
/// gateway keeps its own load bounded.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;
/// Per-request timeout toward the platform.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 10_000;
/// An inquiry not answered within a day is failed: business systems batch by the day.
pub const DEFAULT_INQUIRY_DEADLINE_SECS: u64 = 86_400;
/// First retry delay after a transient failure.
pub const DEFAULT_BACKOFF_BASE_MS: u64 = 200;
/// Longest retry delay: long enough not to hammer a failing platform, short enough to
/// notice recovery within half a minute.
pub const DEFAULT_BACKOFF_MAX_MS: u64 = 30_000;
/// How often a submitted inquiry's result is fetched.
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 200;
/// How often the provision log is fetched from the platform when none is configured.
pub const DEFAULT_PROVISION_FETCH_MS: u64 = 30_000;
/// How often the alive notification is sent: every five minutes tells the platform's
/// operators within minutes that a city's server stopped, at one small message each time.
pub const DEFAULT_ALIVE_INTERVAL_SECS: u64 = 300;
/// Three days to answer a manual provision request: long enough for a person to look the
/// answer up across a weekend, short enough that the inquirer is not left
/// waiting indefinitely (the simulator's stand-in for the platform's own rule).
pub const DEFAULT_MANUAL_DEADLINE_SECS: u64 = 3 * 24 * 3600;
/// How often the gateway fetches the platform's master information.
pub const DEFAULT_MASTER_REFRESH_SECS: u64 = 3600;
/// How long a platform key that the master information no longer lists stays trusted, for
/// answers still in flight (the platform replays a stored answer for up to 20 minutes).
pub const DEFAULT_MASTER_KEY_OVERLAP_SECS: u64 = 3600;
/// Largest request body the business API takes (a single inquiry or person is well under).
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest batch file accepted in one upload (300,000 lines of the 290-byte layout ≈ 88 MB).
pub const DEFAULT_MAX_BATCH_BYTES: usize = 128 * 1024 * 1024;
/// Requests per second one client may make, on average: a city's business system sends a
/// few inquiries a second at its busiest (batches go through uploads, not one request a
/// line), so 1,000 leaves a wide margin while keeping a runaway client to a fraction of what
/// the two cores serve (about 10,000 cheap requests a second), the rest for its neighbours.
pub const DEFAULT_CLIENT_RATE_PER_SEC: u32 = 1_000;
/// Requests one client may make at once above its rate after a quiet spell (the bucket's
/// size): two seconds' worth, so a system catching up after a pause is not refused at once.
pub const DEFAULT_CLIENT_BURST: u32 = 2_000;
/// Requests of one client being handled at once: each holds a task and a store slot, and
/// 256 is more than a business system's connection pool, but a small share of the
/// connection cap, so one client cannot hold every worker.
pub const DEFAULT_CLIENT_MAX_IN_FLIGHT: usize = 256;
/// Batch uploads of one business system being received and accepted at once: a spooled
/// upload costs disk and a background task, and two let a system send its day's file while
/// an earlier one is still being accepted.
pub const DEFAULT_MAX_BATCHES_PER_SYSTEM: usize = 2;

/// Why a config was refused: every problem found, each naming its field.
#[derive(Debug, thiserror::Error)]
#[error("invalid config {path}:\n  - {}", problems.join("\n  - "))]
pub struct ConfigError {
    pub path: String,
    pub problems: Vec<String>,
}

/// What a client certificate's holder may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// A business system: submits inquiries and links persons in its own numbers.
    Business,
    /// A security officer: manages keys.
    Security,
    /// An auditor: reads and exports linkage records.
    Auditor,
    /// An operator: health, statistics, batch status.
    Operator,
    /// An administrator: staff users, client certificates, configuration reload.
    Admin,
    /// The resident-record feed (住民基本台帳): the only client that imports persons and
    /// changes them (move-out, death, fact changes), in its own numbers.
    ResidentFeed,
}

/// One permitted (procedure, item) pair, set by law for a business system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Permission {
    /// 事務手続コード, e.g. `JT01010000000214`.
    pub procedure: ProcedureCode,
    /// 特定個人情報名コード, e.g. `TM00000000000002`.
    pub item: ItemCode,
    /// The item is provided by a person at the city holding the person (手動提供), not from
    /// copies: the platform hands such a request to the city and waits for its answer until
    /// the deadline. Example: `manual = true`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub manual: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A known client (the CN of its certificate) and what it may do.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Certificate common name, e.g. `kodomo-iryo`.
    pub name: SystemId,
    /// What it may do.
    pub role: Role,
    /// For business systems: the affairs (事務コード) it works under, e.g.
    /// `affairs = ["JM01000000121000"]`. What it may inquire is the permission table's rows
    /// for these affairs (`schemas/permissions/`), not a list kept here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub affairs: Vec<AffairCode>,
    /// The earlier single affair, `affair_code = "JM…"`: read as `affairs = ["JM…"]`.
    #[serde(default, skip_serializing)]
    pub affair_code: Option<AffairCode>,
    /// The earlier per-client list of (procedure, item) pairs: refused when present, with a
    /// pointer to the permission table that replaced it.
    #[serde(default, skip_serializing)]
    pub permissions: Option<serde::de::IgnoredAny>,
    /// The earlier per-client list of items whose copies (副本) it could register: refused
    /// when present, with a pointer to the permission table's `provision` rows that replaced
    /// it.
    #[serde(default, skip_serializing)]
    pub provides: Option<serde::de::IgnoredAny>,
    /// This client's own request limits, where they differ from `[limits]`, e.g.
    /// `limits = { rate_per_sec = 50, max_in_flight = 8 }`.
    #[serde(default, skip_serializing_if = "ClientLimits::is_empty")]
    pub limits: ClientLimits,
    /// Optional: the SHA-256 of the one certificate this client may present, as
    /// `sha256:<64 hex digits>` (e.g. from `openssl x509 -noout -fingerprint -sha256`, colons
    /// allowed); any other certificate under this name is refused at the handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
}

impl ClientConfig {
    /// The pin as lower-case hex without colons, if it is well formed.
    pub fn pin_hex(&self) -> Option<String> {
        let hex: String = self
            .pin
            .as_deref()?
            .strip_prefix("sha256:")?
            .chars()
            .filter(|c| *c != ':')
            .collect::<String>()
            .to_ascii_lowercase();
        (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())).then_some(hex)
    }
}

/// Request limits of one client; a field left out takes the `[limits]` value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientLimits {
    /// Requests per second, on average.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_sec: Option<u32>,
    /// Requests at once above the rate (the token bucket's size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// Requests being handled at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<usize>,
}

impl ClientLimits {
    /// True when nothing is overridden.
    pub fn is_empty(&self) -> bool {
        *self == ClientLimits::default()
    }
}

/// Per-client fair share (`[limits]`): the defaults every client gets unless its
/// `[[clients]]` entry says otherwise. Answers beyond a limit are 429 with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Requests per second per client, on average.
    #[serde(default = "d_rate")]
    pub rate_per_sec: u32,
    /// Requests at once above the rate, per client.
    #[serde(default = "d_burst")]
    pub burst: u32,
    /// Requests of one client being handled at once.
    #[serde(default = "d_client_in_flight")]
    pub max_in_flight: usize,
    /// Batch uploads of one business system being received or accepted at once.
    #[serde(default = "d_batches")]
    pub max_batches_per_system: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            rate_per_sec: DEFAULT_CLIENT_RATE_PER_SEC,
            burst: DEFAULT_CLIENT_BURST,
            max_in_flight: DEFAULT_CLIENT_MAX_IN_FLIGHT,
            max_batches_per_system: DEFAULT_MAX_BATCHES_PER_SYSTEM,
        }
    }
}

/// The limits one client gets: its overrides over the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EffectiveLimits {
    pub rate_per_sec: u32,
    pub burst: u32,
    pub max_in_flight: usize,
}

impl LimitsConfig {
    /// `client`'s limits.
    pub fn for_client(&self, client: &ClientConfig) -> EffectiveLimits {
        EffectiveLimits {
            rate_per_sec: client.limits.rate_per_sec.unwrap_or(self.rate_per_sec),
            burst: client.limits.burst.unwrap_or(self.burst),
            max_in_flight: client.limits.max_in_flight.unwrap_or(self.max_in_flight),
        }
    }
}

/// TLS material of one side.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// CA that issued the client certificates this server accepts (`ca.pem`), and, on the
    /// gateway, its own server certificate.
    pub ca: PathBuf,
    /// This server's certificate chain (PEM).
    pub cert: PathBuf,
    /// This server's private key (PEM, 0600).
    pub key: PathBuf,
    /// Certificate revocation lists (PEM or DER files, each signed by `ca`), checked at every
    /// handshake and reloaded within a second or two when a file changes — no restart. A
    /// file that cannot be used on reload is logged once and the lists in use stay. With
    /// lists configured, a certificate whose issuer has no list is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crl: Vec<PathBuf>,
}

/// Where one side's message keys live.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// Keyring folder (sealed private keys, 0600 files).
    pub dir: PathBuf,
    /// 32-byte master key file (0600) that seals the keyring.
    pub master_key_file: PathBuf,
    /// Two-person rule: a rotation or retirement asked by one security officer happens only
    /// when a second, different security officer approves it.
    #[serde(default)]
    pub two_person_rule: bool,
}

/// How the gateway reaches the platform.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformConfig {
    /// Base URL, e.g. `https://127.0.0.1:9443`.
    pub url: String,
    /// The platform's agency code (messages are addressed to it).
    pub agency_code: AgencyCode,
    /// The CA that issued the platform's server certificate (PEM): the only trust anchor for
    /// the platform, never the clients' CA (`tls.ca`), so that no certificate the city issues
    /// — not even the gateway's own — passes for the platform.
    pub ca: PathBuf,
    /// Client certificate the gateway presents to the platform.
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
    /// The platform's published public keys (JSON, refreshed from master information).
    pub peer_keys: PathBuf,
    /// When the platform takes requests, local time JST, e.g. `08:00-21:00`.
    #[serde(default = "always_open")]
    pub operating_hours: String,
    /// Most platform requests in flight at once (the platform is shared by every city).
    #[serde(default = "d_max_in_flight")]
    pub max_in_flight: usize,
    /// Per-request timeout toward the platform, in milliseconds.
    #[serde(default = "d_request_timeout")]
    pub request_timeout_ms: u64,
    /// Seconds after which an inquiry not yet answered is failed.
    #[serde(default = "d_deadline")]
    pub inquiry_deadline_secs: u64,
    /// First retry delay after a transient failure, in milliseconds (doubling up to
    /// `backoff_max_ms`).
    #[serde(default = "d_backoff_base")]
    pub backoff_base_ms: u64,
    /// Longest retry delay, in milliseconds.
    #[serde(default = "d_backoff_max")]
    pub backoff_max_ms: u64,
    /// How often a submitted inquiry's result is fetched, in milliseconds.
    #[serde(default = "d_poll")]
    pub poll_interval_ms: u64,
    /// How often to fetch the master information.
    #[serde(default = "d_master_refresh")]
    pub master_refresh_secs: u64,
    /// How long a key the master information dropped stays trusted.
    #[serde(default = "d_master_overlap")]
    pub master_key_overlap_secs: u64,
    /// How often the provisions the platform made from this city's copies are fetched, and
    /// the manual provision requests (手動提供) it handed to the city, in milliseconds.
    /// Example: `30000`.
    #[serde(default = "d_provision_fetch")]
    pub provision_fetch_ms: u64,
    /// How often the gateway sends the platform its alive notification (稼動状態の通知), in
    /// seconds; none are sent outside `operating_hours`, and 0 sends none. Example: `300`.
    #[serde(default = "d_alive_interval")]
    pub alive_interval_secs: u64,
}

fn d_manual_deadline() -> u64 {
    DEFAULT_MANUAL_DEADLINE_SECS
}

fn d_alive_interval() -> u64 {
    DEFAULT_ALIVE_INTERVAL_SECS
}

fn d_provision_fetch() -> u64 {
    DEFAULT_PROVISION_FETCH_MS
}

fn d_master_refresh() -> u64 {
    DEFAULT_MASTER_REFRESH_SECS
}
fn d_master_overlap() -> u64 {
    DEFAULT_MASTER_KEY_OVERLAP_SECS
}

fn always_open() -> String {
    "00:00-24:00".into()
}
fn d_max_in_flight() -> usize {
    DEFAULT_MAX_IN_FLIGHT
}
fn d_request_timeout() -> u64 {
    DEFAULT_REQUEST_TIMEOUT_MS
}
fn d_deadline() -> u64 {
    DEFAULT_INQUIRY_DEADLINE_SECS
}
fn d_backoff_base() -> u64 {
    DEFAULT_BACKOFF_BASE_MS
}
fn d_backoff_max() -> u64 {
    DEFAULT_BACKOFF_MAX_MS
}
fn d_poll() -> u64 {
    DEFAULT_POLL_INTERVAL_MS
}
fn d_max_body() -> usize {
    DEFAULT_MAX_BODY_BYTES
}
fn d_max_batch() -> usize {
    DEFAULT_MAX_BATCH_BYTES
}
fn d_rate() -> u32 {
    DEFAULT_CLIENT_RATE_PER_SEC
}
fn d_burst() -> u32 {
    DEFAULT_CLIENT_BURST
}
fn d_client_in_flight() -> usize {
    DEFAULT_CLIENT_MAX_IN_FLIGHT
}
fn d_batches() -> usize {
    DEFAULT_MAX_BATCHES_PER_SYSTEM
}

/// Connection limits of the API listener (`[server]`); every field has a default.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Most connections at once; default the lower of 4,096 and the descriptor limit minus a
    /// reserve of 256 (half the limit when that is smaller). Example: `max_connections = 2000`.
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// Seconds a TLS handshake may take (default 10).
    #[serde(default)]
    pub handshake_timeout_secs: Option<u64>,
    /// Seconds a request's headers may take to arrive, and an idle connection may stay open
    /// (default 10).
    #[serde(default)]
    pub header_read_timeout_secs: Option<u64>,
}

/// The operations listener (`[ops]`): `GET /healthz`, `/readyz` and `/metrics` over plain
/// HTTP, for the host's probes and Prometheus. It carries no personal data and no client
/// certificate is asked, so it listens on loopback unless `allow_remote` says otherwise.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsConfig {
    /// Address, e.g. `127.0.0.1:9090` (port 0 picks one and writes it to
    /// `<data_dir>/ops.addr`).
    #[serde(default = "d_ops_listen")]
    pub listen: SocketAddr,
    /// Allow a non-loopback `listen` (put a firewall in front of it).
    #[serde(default)]
    pub allow_remote: bool,
}

/// Loopback port 9090, Prometheus exporters' customary range.
fn d_ops_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9090))
}

impl Default for OpsConfig {
    fn default() -> Self {
        Self {
            listen: d_ops_listen(),
            allow_remote: false,
        }
    }
}

/// Which store keeps the gateway's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum StoreBackend {
    /// The embedded store (sled) under `<data_dir>/store`: one machine.
    #[default]
    Sled,
    /// A PostgreSQL cluster (a primary with a synchronous standby): two machines.
    Postgres,
}

/// `[store]`: where the gateway keeps its state.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sled` (default) or `postgres`.
    #[serde(default)]
    pub backend: StoreBackend,
    /// For `postgres`: the database in libpq form, e.g.
    /// `postgresql://renkei@db1:5432,db2:5432/renkei?target_session_attrs=read-write` (several
    /// hosts and `target_session_attrs=read-write` let the gateway find the primary after a
    /// failover). Leave the password out: see `password_file` and `password_env`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// For `postgres`: a file (readable by the service user only) whose first line is the
    /// database password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// For `postgres`: the environment variable that holds the database password (e.g. set
    /// by systemd's `LoadCredential` wrapper or the service manager).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// For `postgres`: `on` (default: a commit is acknowledged once the primary and the
    /// synchronous standby have it on disk) or `remote-apply` (also applied on the standby).
    #[serde(default)]
    pub synchronous_commit: renkei_store::postgres::SynchronousCommit,
    /// For `postgres`, with two gateways on one database: how long the dispatching gateway's
    /// lease lasts without renewal before the other takes dispatching over (seconds).
    #[serde(default = "d_lease_secs")]
    pub dispatch_lease_secs: u64,
}

fn d_lease_secs() -> u64 {
    6
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Sled,
            url: None,
            password_file: None,
            password_env: None,
            synchronous_commit: Default::default(),
            dispatch_lease_secs: d_lease_secs(),
        }
    }
}

/// A session unused this long ends: 15 minutes, the resident-record standard's screen lock.
pub const DEFAULT_STAFF_IDLE_SECS: u64 = 15 * 60;
/// A session ends this long after sign-in whatever its use: one working day.
pub const DEFAULT_STAFF_ABSOLUTE_SECS: u64 = 8 * 3600;
/// Failed sign-ins in a row that lock a staff user.
pub const DEFAULT_STAFF_MAX_FAILURES: u32 = 5;
/// How long a locked staff user stays locked.
pub const DEFAULT_STAFF_LOCKOUT_SECS: u64 = 15 * 60;

/// Staff sign-in (`[staff]`): staff clients (security, auditor, operator, admin) sign in
/// with a password and a TOTP code (`POST /v1/session`) and send the session's token with
/// every request; these settings bound the session and the guessing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffConfig {
    /// A session not used for this many seconds ends (default 900, 15 minutes).
    #[serde(default = "d_staff_idle")]
    pub idle_timeout_secs: u64,
    /// A session ends this many seconds after sign-in, used or not (default 28800, 8 hours).
    #[serde(default = "d_staff_absolute")]
    pub absolute_timeout_secs: u64,
    /// Failed sign-ins in a row that lock the user (default 5).
    #[serde(default = "d_staff_failures")]
    pub max_failures: u32,
    /// How long a locked user stays locked, in seconds (default 900, 15 minutes); while
    /// locked even the right password and code answer 423 `account_locked`.
    #[serde(default = "d_staff_lockout")]
    pub lockout_secs: u64,
}

fn d_staff_idle() -> u64 {
    DEFAULT_STAFF_IDLE_SECS
}
fn d_staff_absolute() -> u64 {
    DEFAULT_STAFF_ABSOLUTE_SECS
}
fn d_staff_failures() -> u32 {
    DEFAULT_STAFF_MAX_FAILURES
}
fn d_staff_lockout() -> u64 {
    DEFAULT_STAFF_LOCKOUT_SECS
}

impl Default for StaffConfig {
    fn default() -> Self {
        Self {
            idle_timeout_secs: DEFAULT_STAFF_IDLE_SECS,
            absolute_timeout_secs: DEFAULT_STAFF_ABSOLUTE_SECS,
            max_failures: DEFAULT_STAFF_MAX_FAILURES,
            lockout_secs: DEFAULT_STAFF_LOCKOUT_SECS,
        }
    }
}

impl Role {
    /// True for the staff roles, whose people sign in (`POST /v1/session`) on top of their
    /// certificate.
    pub fn is_staff(self) -> bool {
        matches!(
            self,
            Role::Security | Role::Auditor | Role::Operator | Role::Admin
        )
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// `key=value` lines (colour codes only on a terminal).
    #[default]
    Text,
    /// One JSON object a line.
    Json,
}

/// `renkei.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Address of the HTTPS API, e.g. `127.0.0.1:8443` (port 0 picks a free port and writes
    /// it to `<data_dir>/gateway.addr`).
    pub listen: SocketAddr,
    /// The store and run files.
    pub data_dir: PathBuf,
    /// This city's agency code (機関コード).
    pub agency_code: AgencyCode,
    /// Log format.
    #[serde(default)]
    pub log_format: LogFormat,
    /// Store durability (`fsync` unless benchmarking).
    #[serde(default)]
    pub durability: renkei_store::sled_store::Durability,
    /// A folder of layouts, code tables and the era table to use instead of the built-in
    /// copies (e.g. a copy of the repository's `schemas/` an operator edits). Checked as a
    /// whole at start-up.
    #[serde(default)]
    pub schemas_dir: Option<PathBuf>,
    /// Largest request body the API takes, in bytes (batch uploads excepted).
    #[serde(default = "d_max_body")]
    pub max_body_bytes: usize,
    /// Largest batch file accepted in one upload, in bytes.
    #[serde(default = "d_max_batch")]
    pub max_batch_bytes: usize,
    /// Connection limits of the API listener.
    #[serde(default)]
    pub server: ServerConfig,
    /// Per-client request limits (defaults; a client entry may override them).
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The operations listener (probes, metrics).
    #[serde(default)]
    pub ops: OpsConfig,
    /// The store: embedded sled (default) or PostgreSQL.
    #[serde(default)]
    pub store: StoreConfig,
    /// Staff sign-in: session timeouts and lockout.
    #[serde(default)]
    pub staff: StaffConfig,
    /// The API's TLS: the city CA and the gateway's server certificate.
    pub tls: TlsConfig,
    /// The message keys and the master key that seals them.
    pub keys: KeysConfig,
    /// How the gateway reaches the platform.
    pub platform: PlatformConfig,
    /// Every client allowed to connect.
    pub clients: Vec<ClientConfig>,
}

/// One agency the simulator knows, and where its public keys are.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimPeer {
    pub agency_code: AgencyCode,
    /// The CN of the client certificate it connects with.
    pub client_name: SystemId,
    /// Its published public keys (JSON).
    pub keys: PathBuf,
}

/// How the simulator behaves; changeable at run time through its admin endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum SimMode {
    /// Serves normally (within operating hours).
    #[default]
    Open,
    /// Answers 503 業務時間外 to every request.
    Closed,
    /// Serves, after `slow_ms` extra delay.
    Slow,
    /// Answers 500 to every request.
    Failing,
    /// Closes connections without answering.
    Dropping,
}

/// `sim.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// The platform's own agency code.
    pub agency_code: AgencyCode,
    /// Agency codes of providers whose data the simulator answers for.
    pub provider_agency_code: AgencyCode,
    #[serde(default)]
    pub log_format: LogFormat,
    pub tls: TlsConfig,
    pub keys: KeysConfig,
    pub peers: Vec<SimPeer>,
    /// Client CN allowed to use `/admin`.
    pub admin_client: SystemId,
    #[serde(default = "always_open")]
    pub operating_hours: String,
    #[serde(default)]
    pub mode: SimMode,
    /// Extra delay in `slow` mode.
    #[serde(default)]
    pub slow_ms: u64,
    /// How long after submission an inquiry's result is ready.
    #[serde(default)]
    pub result_delay_ms: u64,
    /// (procedure, item) pairs the national permission table allows.
    pub permissions: Vec<Permission>,
    /// How long a city has to answer a manual provision request (a `manual = true`
    /// permission) before the simulator answers the inquirer with a timeout, in seconds.
    /// Example: `259200` (three days).
    #[serde(default = "d_manual_deadline")]
    pub manual_deadline_secs: u64,
    /// Seeded provider data (JSON, keyed by the simulator's own person index).
    pub provider_data: PathBuf,
}

/// Parses `HH:MM-HH:MM` into minutes of the day `[open, close)`.
pub fn parse_hours(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once('-')?;
    let m = |t: &str| -> Option<u32> {
        let (h, mi) = t.trim().split_once(':')?;
        let (h, mi): (u32, u32) = (h.parse().ok()?, mi.parse().ok()?);
        (h <= 24 && mi < 60 && h * 60 + mi <= 24 * 60).then_some(h * 60 + mi)
    };
    let (open, close) = (m(a)?, m(b)?);
    (open < close).then_some((open, close))
}

fn resolve(base: &Path, p: &mut PathBuf) {
    if p.is_relative() {
        *p = base.join(&*p);
    }
}

fn read(path: &Path) -> Result<(String, PathBuf), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: path.display().to_string(),
        problems: vec![format!("cannot read: {e}")],
    })?;
    let base = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    Ok((text, base))
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError {
        path: path.display().to_string(),
        problems: vec![e.to_string()],
    })
}

impl GatewayConfig {
    /// Reads, resolves paths and validates.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let (text, base) = read(path)?;
        let mut c: GatewayConfig = parse(path, &text)?;
        if let Some(d) = c.schemas_dir.as_mut() {
            resolve(&base, d);
        }
        for p in [
            &mut c.data_dir,
            &mut c.tls.ca,
            &mut c.tls.cert,
            &mut c.tls.key,
            &mut c.keys.dir,
            &mut c.keys.master_key_file,
            &mut c.platform.ca,
            &mut c.platform.client_cert,
            &mut c.platform.client_key,
            &mut c.platform.peer_keys,
        ] {
            resolve(&base, p);
        }
        for p in &mut c.tls.crl {
            resolve(&base, p);
        }
        if let Some(p) = c.store.password_file.as_mut() {
            resolve(&base, p);
        }
        let mut problems = Vec::new();
        // (A url beside sled is allowed: `renkei store copy` reads it.)
        if c.store.backend == StoreBackend::Postgres && c.store.url.is_none() {
            problems.push("store.url: required when store.backend = \"postgres\"".into());
        }
        if c.store.password_file.is_some() && c.store.password_env.is_some() {
            problems.push(
                "store.password_file: give either password_file or password_env, not both".into(),
            );
        }
        if c.store.dispatch_lease_secs < 2 {
            problems.push("store.dispatch_lease_secs: must be at least 2".into());
        }
        if parse_hours(&c.platform.operating_hours).is_none() {
            problems.push("platform.operating_hours: expected HH:MM-HH:MM".to_string());
        }
        if c.platform.max_in_flight == 0 {
            problems.push("platform.max_in_flight: must be at least 1".into());
        }
        if c.platform.backoff_base_ms == 0 || c.platform.backoff_base_ms > c.platform.backoff_max_ms
        {
            problems.push("platform.backoff_base_ms: must be >0 and <= backoff_max_ms".into());
        }
        let st = &c.staff;
        if st.idle_timeout_secs == 0 || st.idle_timeout_secs > st.absolute_timeout_secs {
            problems.push(
                "staff.idle_timeout_secs: must be at least 1 and at most absolute_timeout_secs"
                    .into(),
            );
        }
        if st.max_failures == 0 || st.lockout_secs == 0 {
            problems.push("staff.max_failures, staff.lockout_secs: must be at least 1".into());
        }
        if c.limits.max_batches_per_system == 0 {
            problems.push("limits.max_batches_per_system: must be at least 1".into());
        }
        if !c.ops.listen.ip().is_loopback() && !c.ops.allow_remote {
            problems.push(
                "ops.listen: not a loopback address; set ops.allow_remote = true to serve probes and metrics beyond this host".into(),
            );
        }
        if !c.platform.url.starts_with("https://") {
            problems.push("platform.url: must be an https:// URL".into());
        }
        let mut seen = std::collections::HashSet::new();
        for cl in &mut c.clients {
            if let Some(a) = cl.affair_code.take() {
                if !cl.affairs.contains(&a) {
                    cl.affairs.insert(0, a);
                }
            }
        }
        for (i, cl) in c.clients.iter().enumerate() {
            if !seen.insert(cl.name.clone()) {
                problems.push(format!("clients[{i}].name: duplicate {}", cl.name));
            }
            let l = c.limits.for_client(cl);
            if l.rate_per_sec == 0 || l.burst == 0 || l.max_in_flight == 0 {
                problems.push(format!(
                    "clients[{i}].limits: rate_per_sec, burst and max_in_flight must be at least 1"
                ));
            }
            if cl.pin.is_some() && cl.pin_hex().is_none() {
                problems.push(format!(
                    "clients[{i}].pin: expected sha256: and 64 hex digits"
                ));
            }
            if cl.permissions.is_some() {
                problems.push(format!(
                    "clients[{i}].permissions: no longer read; the permission table by law is schemas/permissions/, and a client names its affairs: affairs = [\"JM…\"]"
                ));
            }
            if cl.provides.is_some() {
                problems.push(format!(
                    "clients[{i}].provides: no longer read; what an affair may provide is the permission table's direction = \"provision\" rows (schemas/permissions/), for the affairs the client names: affairs = [\"JM…\"]"
                ));
            }
            if cl.role == Role::Business && cl.affairs.is_empty() {
                problems.push(format!(
                    "clients[{i}].affairs: a business system names at least one affair (事務コード)"
                ));
            }
            if cl.role != Role::Business && !cl.affairs.is_empty() {
                problems.push(format!(
                    "clients[{i}].affairs: only a business system has affairs"
                ));
            }
        }
        for (name, p) in [
            ("tls.ca", &c.tls.ca),
            ("tls.cert", &c.tls.cert),
            ("tls.key", &c.tls.key),
            ("platform.ca", &c.platform.ca),
            ("platform.client_cert", &c.platform.client_cert),
            ("platform.client_key", &c.platform.client_key),
            ("keys.master_key_file", &c.keys.master_key_file),
        ] {
            if !p.exists() {
                problems.push(format!("{name}: file {} does not exist", p.display()));
            }
        }
        if problems.is_empty() {
            Ok(c)
        } else {
            Err(ConfigError {
                path: path.display().to_string(),
                problems,
            })
        }
    }

    /// The client entry for a certificate name.
    pub fn client(&self, name: &str) -> Option<&ClientConfig> {
        self.clients.iter().find(|c| c.name.as_str() == name)
    }
}

impl SimConfig {
    /// Reads, resolves paths and validates.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let (text, base) = read(path)?;
        let mut c: SimConfig = parse(path, &text)?;
        for p in [
            &mut c.data_dir,
            &mut c.tls.ca,
            &mut c.tls.cert,
            &mut c.tls.key,
            &mut c.keys.dir,
            &mut c.keys.master_key_file,
            &mut c.provider_data,
        ] {
            resolve(&base, p);
        }
        for peer in &mut c.peers {
            resolve(&base, &mut peer.keys);
        }
        let mut problems = Vec::new();
        if parse_hours(&c.operating_hours).is_none() {
            problems.push("operating_hours: expected HH:MM-HH:MM".to_string());
        }
        if c.peers.is_empty() {
            problems.push("peers: at least one agency is needed".into());
        }
        if problems.is_empty() {
            Ok(c)
        } else {
            Err(ConfigError {
                path: path.display().to_string(),
                problems,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operating_hours_parse() {
        assert_eq!(parse_hours("08:00-21:00"), Some((480, 1260)));
        assert_eq!(parse_hours("00:00-24:00"), Some((0, 1440)));
        assert_eq!(parse_hours("21:00-08:00"), None);
        assert_eq!(parse_hours("8-9"), None);
        assert_eq!(parse_hours("25:00-26:00"), None);
    }
}

//! `renkei bench`: what this machine gives, measured against what it could give. It makes a
//! fresh deployment (`renkei init`), runs the platform simulator and the gateway as their own
//! processes (`renkei sim`, `renkei serve`, so the gateway's memory and CPU are its own, read
//! from `/proc`), drives them from this process over real mutual TLS, and measures the limits
//! that bound each figure in the same run. One table (or one JSON object with `--json`): each
//! figure, its target, and its ratio to the limit.
//!
//! The phases, in order:
//! 1. limits: raw ring P-256 signatures/s, `fdatasync`/s in the data folder, sled batch
//!    commits/s through `renkei_store` directly, an HTTPS no-op handler's requests/s on the same
//!    TLS set-up (rustls + hyper, in process) — measured before the gateway starts;
//! 2. closed-loop accepts: N mTLS clients, each sending its next inquiry when the last one is
//!    answered (the platform closed, so the gateway only accepts);
//! 3. open-loop accepts: a fixed offered rate over C connections, each request's latency taken
//!    from its *scheduled* send time, so a slow answer cannot hide the requests queued behind it
//!    (no coordinated omission);
//! 4. end to end: the platform opens and the whole backlog drains (sign, seal, receipt, result
//!    fetch, open, verify, record);
//! 5. the gateway idle with nothing queued: its CPU; then disk per answered inquiry (and the
//!    live bytes of each store tree, read after the gateway stops) and peak memory;
//! 6. bulk (not in `--quick`): on the gateway restarted, a 300,000-line municipal batch file
//!    from upload to every line accepted (the platform closed), then a 300,000-resident import.
//!
//! Targets live here and in the output only, never in a timed test.

mod bulk;
mod disk;
mod limits;
mod load;
mod procs;
mod report;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use renkei_store::sled_store::Durability;

use self::report::{Better, Figure, Report};

/// Clients (each its own TLS connection) of the closed-loop accept phase: the target load.
pub const DEFAULT_CLIENTS: usize = 1000;
/// How long each load phase runs (seconds).
pub const DEFAULT_SECONDS: u64 = 10;
/// The open-loop phase's offered rate (requests/s): the target load for latency.
pub const DEFAULT_OPEN_RATE: u32 = 8000;
/// The open-loop phase's connections: the rate spread over as many clients as the target.
pub const DEFAULT_OPEN_CONNECTIONS: usize = 1000;

/// The open loop keeps up when it answers this share of the offered rate (the last
/// requests' answers may still be on their way when the phase's clock stops).
const OPEN_LOOP_KEEP_UP: f64 = 0.99;

/// `--quick`: few enough clients and seconds to finish within 90 s on two shared cores.
const QUICK_CLIENTS: usize = 100;
const QUICK_SECONDS: u64 = 3;
const QUICK_OPEN_RATE: u32 = 1000;
const QUICK_OPEN_CONNECTIONS: usize = 100;
/// `--quick` stops the closed loop at this many accepts, so the drain that follows stays short.
const QUICK_MAX_ACCEPTS: u64 = 12_000;
/// Lines of the bulk phase's batch file and rows of its resident import: the sizes.
pub const DEFAULT_BULK_LINES: usize = 300_000;
pub const DEFAULT_BULK_ROWS: u64 = 300_000;
/// The targets for them: every line accepted, and the import answered, within (s).
const BATCH_TARGET_SECS: f64 = 20.0;
const IMPORT_TARGET_SECS: f64 = 15.0;
/// How long each limit is measured (seconds), full and quick.
const LIMIT_SECONDS: f64 = 3.0;
const QUICK_LIMIT_SECONDS: f64 = 1.0;
/// How long the idle gateway's CPU is watched (seconds), full and quick.
const IDLE_SECONDS: u64 = 10;
const QUICK_IDLE_SECONDS: u64 = 3;
/// The longest the drain may take before the rate is taken from what was answered by then.
const DRAIN_LIMIT: Duration = Duration::from_secs(600);
const QUICK_DRAIN_LIMIT: Duration = Duration::from_secs(40);

/// Options of `renkei bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Concurrent mutual-TLS clients of the closed-loop accept phase.
    #[arg(long)]
    pub clients: Option<usize>,
    /// Seconds per load phase.
    #[arg(long)]
    pub seconds: Option<u64>,
    /// Offered rate (requests/s) of the open-loop phase.
    #[arg(long)]
    pub open_rate: Option<u32>,
    /// Connections of the open-loop phase.
    #[arg(long)]
    pub open_connections: Option<usize>,
    /// Run the end-to-end phase (1) or not (0).
    #[arg(long, default_value_t = 1)]
    pub e2e: usize,
    /// Run the bulk phases (1: a batch file and a resident import) or not (0); default: 1,
    /// or 0 with `--quick`.
    #[arg(long)]
    pub bulk: Option<usize>,
    /// Lines of the bulk phase's batch file.
    #[arg(long, default_value_t = DEFAULT_BULK_LINES)]
    pub bulk_lines: usize,
    /// Residents of the bulk phase's import.
    #[arg(long, default_value_t = DEFAULT_BULK_ROWS)]
    pub bulk_rows: u64,
    /// A short run (about a minute): fewer clients, shorter phases, no bulk phases.
    #[arg(long)]
    pub quick: bool,
    /// Print the figures as one JSON object on stdout (progress goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Deployment folder to create (default: a fresh one under the system temp dir, kept).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Store durability for the run: fsync (default, the real thing) or flush-only.
    #[arg(long, default_value = "fsync")]
    pub durability: String,
    /// Run on this PostgreSQL database (a libpq url; migrated first) instead of sled, to
    /// compare the two stores on the same machine.
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("--{field}: {detail}")]
    Argument {
        field: &'static str,
        detail: &'static str,
    },
    #[error("making the deployment: {0}")]
    Init(String),
    #[error("making the deployment: {0}")]
    Deployment(#[from] crate::dev::init::InitError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("the deployment's configuration: {0}")]
    Toml(String),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Store(#[from] renkei_store::StoreError),
    #[error("migrating the PostgreSQL database: {0}")]
    Migrate(String),
    #[error("{what} did not start: {detail}")]
    NotStarted { what: &'static str, detail: String },
    #[error("{what} answered {status}")]
    Refused { what: &'static str, status: u16 },
    #[error("a load task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("ring refused the {0} of the signature limit")]
    Crypto(&'static str),
    #[error("encoding the report: {0}")]
    Json(#[from] serde_json::Error),
}

impl BenchError {
    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
        let what = what.into();
        move |source| BenchError::Io { what, source }
    }
}

/// The options with `--quick` and the defaults applied.
#[derive(Debug, Clone)]
struct Plan {
    clients: usize,
    seconds: u64,
    open_rate: u32,
    open_connections: usize,
    max_accepts: Option<u64>,
    rounds: usize,
    limit_seconds: f64,
    idle_seconds: u64,
    drain_limit: Duration,
    durability: Durability,
    bulk: bool,
}

impl Plan {
    fn from(args: &BenchArgs) -> Result<Plan, BenchError> {
        let q = args.quick;
        let durability = match args.durability.as_str() {
            "fsync" => Durability::Fsync,
            "flush-only" => Durability::FlushOnly,
            _ => {
                return Err(BenchError::Argument {
                    field: "durability",
                    detail: "say fsync or flush-only",
                })
            }
        };
        let plan = Plan {
            clients: args
                .clients
                .unwrap_or(if q { QUICK_CLIENTS } else { DEFAULT_CLIENTS }),
            seconds: args
                .seconds
                .unwrap_or(if q { QUICK_SECONDS } else { DEFAULT_SECONDS }),
            open_rate: args.open_rate.unwrap_or(if q {
                QUICK_OPEN_RATE
            } else {
                DEFAULT_OPEN_RATE
            }),
            open_connections: args.open_connections.unwrap_or(if q {
                QUICK_OPEN_CONNECTIONS
            } else {
                DEFAULT_OPEN_CONNECTIONS
            }),
            max_accepts: q.then_some(QUICK_MAX_ACCEPTS),
            rounds: if q { 1 } else { 3 },
            limit_seconds: if q {
                QUICK_LIMIT_SECONDS
            } else {
                LIMIT_SECONDS
            },
            idle_seconds: if q { QUICK_IDLE_SECONDS } else { IDLE_SECONDS },
            drain_limit: if q { QUICK_DRAIN_LIMIT } else { DRAIN_LIMIT },
            durability,
            bulk: args.bulk.map_or(!q, |b| b != 0),
        };
        if plan.clients == 0 || plan.open_connections == 0 {
            return Err(BenchError::Argument {
                field: "clients",
                detail: "at least one client",
            });
        }
        if plan.bulk && (args.bulk_lines == 0 || args.bulk_rows == 0) {
            return Err(BenchError::Argument {
                field: "bulk-lines",
                detail: "at least one line and one resident",
            });
        }
        if plan.seconds == 0 || plan.open_rate == 0 {
            return Err(BenchError::Argument {
                field: "seconds",
                detail: "at least one second and one request a second",
            });
        }
        Ok(plan)
    }
}

/// Progress lines: to stderr with `--json` (stdout is the JSON), else to stdout.
fn say(json: bool, line: &str) {
    if json {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

/// The batch file, then the import, on the running gateway at `base`.
async fn run_bulk(
    d: &procs::Deployment,
    base: &str,
    args: &BenchArgs,
    json: bool,
) -> Result<(bulk::Bulk, bulk::Bulk), BenchError> {
    say(
        json,
        &format!("bulk: a {}-line batch file …", args.bulk_lines),
    );
    let batch = bulk::batch(d, base, args.bulk_lines).await?;
    say(
        json,
        &format!(
            "batch: {} lines accepted in {:.1} s: {:.0}/s",
            batch.lines,
            batch.secs,
            batch.rate()
        ),
    );
    say(
        json,
        &format!("bulk: a {}-resident import …", args.bulk_rows),
    );
    let import = bulk::import(d, base, args.bulk_rows).await?;
    say(
        json,
        &format!(
            "import: {} residents in {:.1} s: {:.0}/s",
            import.lines,
            import.secs,
            import.rate()
        ),
    );
    Ok((batch, import))
}

/// Runs the benchmark and prints the report.
pub async fn run(args: BenchArgs) -> Result<(), BenchError> {
    let plan = Plan::from(&args)?;
    let started = Instant::now();
    let json = args.json;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(crate::util::new_id("renkei-bench-")));
    let store_name = if args.postgres.is_some() {
        "PostgreSQL"
    } else {
        "sled"
    };
    say(
        json,
        &format!(
            "renkei bench — {} clients, {} s per phase, open loop {}/s over {} connections, store {store_name}, durability {}",
            plan.clients, plan.seconds, plan.open_rate, plan.open_connections, args.durability
        ),
    );
    say(json, &format!("deployment: {}", dir.display()));
    let deployment = procs::prepare(&dir, &plan, args.postgres.as_deref())?;

    // 1. The limits, before anything else runs.
    say(json, "measuring the limits …");
    let limits = limits::measure(&deployment, &plan).await?;

    // 2–3. Accepts, the platform closed.
    let mut sim = procs::Proc::start_sim(&deployment).await?;
    let mut gateway = procs::Proc::start_gateway(&deployment).await?;
    let ops = procs::Ops::new(&deployment)?;
    let base = format!("https://{}", gateway.addr);
    let clients = load::Clients::new(&deployment);
    load::link_samples(&clients, &base).await?;
    sim.admin_mode(&deployment, crate::config::SimMode::Closed)
        .await?;

    let mut rounds = Vec::new();
    let cpu_before = procs::cpu_seconds(gateway.pid);
    let accept_started = Instant::now();
    for round in 0..plan.rounds {
        let r = load::closed_loop(&clients, &base, &plan, round).await?;
        say(
            json,
            &format!(
                "closed loop {}: {:.0} accepts/s ({} in {:.1} s, {} errors), p50 {:.1} ms, p99 {:.1} ms",
                round + 1,
                r.rate,
                r.accepted,
                r.secs,
                r.errors,
                r.latency.p50_ms,
                r.latency.p99_ms
            ),
        );
        rounds.push(r);
    }
    let accept_cpu = procs::cpu_seconds(gateway.pid)
        .zip(cpu_before)
        .map(|(a, b)| {
            (a - b)
                / accept_started
                    .elapsed()
                    .as_secs_f64()
                    .max(f64::MIN_POSITIVE)
        });
    rounds.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    let closed = rounds.swap_remove(rounds.len() / 2);
    let open = load::open_loop(&clients, &base, &plan).await?;
    say(
        json,
        &format!(
            "open loop: {}/s offered, {:.0}/s answered, p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, {} errors",
            plan.open_rate,
            open.rate,
            open.latency.p50_ms,
            open.latency.p99_ms,
            open.latency.p999_ms,
            open.errors
        ),
    );
    let record_cost = limits::record_cost_secs();

    // 4. End to end.
    let mut e2e = None;
    if args.e2e != 0 {
        say(json, "draining the backlog through the platform …");
        sim.admin_mode(&deployment, crate::config::SimMode::Open)
            .await?;
        let d = load::drain(&ops, plan.drain_limit).await?;
        say(
            json,
            &format!(
                "end to end: {} answered in {:.1} s: {:.0}/s{}",
                d.answered,
                d.secs,
                d.rate,
                if d.complete { "" } else { " (stopped early)" }
            ),
        );
        e2e = Some(d);
    }

    // 5. Idle, then what the run left behind.
    say(json, "watching the idle gateway …");
    let idle = procs::idle_cpu(gateway.pid, Duration::from_secs(plan.idle_seconds)).await;
    let memory = procs::memory(gateway.pid);
    let answered = ops.counts().await?.answered;
    let disk = procs::bytes_under(&deployment.data_dir);
    let gateway_pid = gateway.pid;
    let sim_pid = sim.pid;
    gateway.stop().await;
    sim.stop().await;
    let store_trees = if args.postgres.is_none() {
        disk::live_by_tree(&deployment.data_dir.join("store"))?
    } else {
        Vec::new()
    };

    // 6. Bulk, on the gateway restarted (the platform closed: only acceptance is timed).
    let mut bulk = None;
    if plan.bulk {
        let sim = procs::Proc::start_sim(&deployment).await?;
        sim.admin_mode(&deployment, crate::config::SimMode::Closed)
            .await?;
        let gw = procs::Proc::start_gateway(&deployment).await?;
        let base = format!("https://{}", gw.addr);
        let ran = run_bulk(&deployment, &base, &args, json).await;
        for mut p in [gw, sim] {
            p.stop().await;
        }
        bulk = Some(ran?);
    }

    let mut figures = vec![
        Figure::new(
            "accept_closed_per_sec",
            format!(
                "durable accepts, closed loop, {} mTLS clients, with records",
                plan.clients
            ),
            closed.rate,
            "/s",
            Some(15_000.0),
            Better::Higher,
        )
        .bounded_by(limits.accept_bound()),
        Figure::new(
            "accept_closed_p50_ms",
            "accept latency p50 at that load".into(),
            closed.latency.p50_ms,
            "ms",
            None,
            Better::Lower,
        ),
        Figure::new(
            "accept_closed_p99_ms",
            "accept latency p99 at that load".into(),
            closed.latency.p99_ms,
            "ms",
            None,
            Better::Lower,
        ),
        Figure::new(
            "accept_open_per_sec",
            format!(
                "open loop: answered of {}/s offered over {} connections",
                plan.open_rate, plan.open_connections
            ),
            open.rate,
            "/s",
            Some(f64::from(plan.open_rate) * OPEN_LOOP_KEEP_UP),
            Better::Higher,
        )
        .bounded_by(limits.accept_bound()),
        Figure::new(
            "accept_open_p50_ms",
            "open-loop accept latency p50 (from the scheduled send)".into(),
            open.latency.p50_ms,
            "ms",
            None,
            Better::Lower,
        )
        .bounded_by(limits.sync_bound()),
        Figure::new(
            "accept_open_p99_ms",
            "open-loop accept latency p99".into(),
            open.latency.p99_ms,
            "ms",
            Some(50.0),
            Better::Lower,
        )
        .bounded_by(limits.sync_bound()),
        Figure::new(
            "accept_open_p999_ms",
            "open-loop accept latency p99.9".into(),
            open.latency.p999_ms,
            "ms",
            Some(200.0),
            Better::Lower,
        )
        .bounded_by(limits.sync_bound()),
        Figure::new(
            "records_cost_percent",
            "records' CPU at the closed-loop accept rate, % of all cores".into(),
            record_cost * closed.rate / limits::cores() as f64 * 100.0,
            "%",
            Some(5.0),
            Better::Lower,
        ),
    ];
    if let Some(d) = &e2e {
        figures.push(
            Figure::new(
                "e2e_per_sec",
                "end to end (sign, seal, receipt, result fetch, open, verify, record)".into(),
                d.rate,
                "/s",
                Some(3_000.0),
                Better::Higher,
            )
            .bounded_by(limits.sign_bound()),
        );
    }
    figures.push(Figure::new(
        "gateway_peak_mib",
        "peak memory of the gateway process (VmHWM)".into(),
        memory.peak_mib,
        "MiB",
        Some(300.0),
        Better::Lower,
    ));
    if answered > 0 {
        figures.push(Figure::new(
            "disk_bytes_per_answered",
            "disk per answered inquiry, records included (data folder / answered)".into(),
            disk as f64 / answered as f64,
            "B",
            Some(1_500.0),
            Better::Lower,
        ));
    }
    if let Some((batch, import)) = &bulk {
        figures.push(Figure::new(
            "batch_accepted_secs",
            format!(
                "{}-line batch file, upload to all accepted ({:.0} lines/s)",
                batch.lines,
                batch.rate()
            ),
            batch.secs,
            "s",
            Some(BATCH_TARGET_SECS),
            Better::Lower,
        ));
        figures.push(Figure::new(
            "import_secs",
            format!(
                "{}-resident import, upload to answer ({:.0} rows/s)",
                import.lines,
                import.rate()
            ),
            import.secs,
            "s",
            Some(IMPORT_TARGET_SECS),
            Better::Lower,
        ));
    }
    figures.push(Figure::new(
        "idle_cpu_percent",
        "CPU of the idle gateway (nothing queued), % of one core".into(),
        idle * 100.0,
        "%",
        Some(1.0),
        Better::Lower,
    ));
    let report = Report {
        quick: args.quick,
        store: store_name,
        durability: args.durability.clone(),
        cores: limits::cores(),
        bench_pid: std::process::id(),
        gateway: report::ProcessReport {
            pid: gateway_pid,
            peak_rss_mib: memory.peak_mib,
            rss_mib: memory.rss_mib,
            accept_cpu_cores: accept_cpu,
        },
        sim_pid,
        accepted: closed.accepted,
        answered,
        disk_bytes: disk,
        store_trees,
        limits,
        figures,
        seconds: started.elapsed().as_secs_f64(),
        deployment: dir.display().to_string(),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        report.print_table();
    }
    Ok(())
}

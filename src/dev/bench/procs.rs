//! The bench's processes: a fresh deployment made by `renkei init` and set up for a
//! benchmark, the simulator and the gateway spawned from this same binary (`renkei sim`,
//! `renkei serve`), their readiness, and what `/proc` says about them (CPU, memory), plus the
//! two plain channels the bench watches them by: the gateway's operations listener (metrics)
//! and the simulator's admin endpoint (its mode).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{BenchError, Plan};
use crate::config::{ClientLimits, GatewayConfig, SimConfig, SimMode, StoreBackend};
use crate::dev::init::{self, InitOptions};
use crate::tls::HttpsClient;

/// How long a process may take to write its address file and serve.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a process may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// How often a starting process's address file is looked for.
const START_POLL: Duration = Duration::from_millis(50);
/// The unit of `utime`/`stime` in `/proc/PID/stat`: USER_HZ, fixed at 100 in Linux's ABI.
const USER_HZ: f64 = 100.0;
/// How long the gateway is left to settle before its idle CPU is watched.
const IDLE_SETTLE: Duration = Duration::from_secs(1);
/// How long the bench's HTTPS requests may take (generous: the machine is loaded).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The platform's poll interval for results during the bench (the default is for production).
const BENCH_POLL_INTERVAL_MS: u64 = 20;

/// The deployment the bench runs on: where its files are.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub dir: PathBuf,
    /// The gateway's data folder (its store, when on sled).
    pub data_dir: PathBuf,
    pub gateway_config: PathBuf,
    pub sim_config: PathBuf,
    pub logs: PathBuf,
}

impl Deployment {
    /// The client certificate folder of `name`.
    pub fn client(&self, name: &str) -> PathBuf {
        self.dir.join("clients").join(name)
    }
}

fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, BenchError> {
    let text = std::fs::read_to_string(path)
        .map_err(BenchError::io(format!("reading {}", path.display())))?;
    toml::from_str(&text).map_err(|e| BenchError::Toml(e.to_string()))
}

fn write_toml<T: serde::Serialize>(path: &Path, v: &T) -> Result<(), BenchError> {
    let text = toml::to_string_pretty(v).map_err(|e| BenchError::Toml(e.to_string()))?;
    std::fs::write(path, text).map_err(BenchError::io(format!("writing {}", path.display())))
}

/// Makes the deployment and sets it up for the bench: results ready at once, a short poll
/// interval, the plan's durability, the store (`postgres`, migrated, when given), and the
/// subsidy system's client let past `[limits]` — the bench measures what the gateway can take,
/// not one client's fair share.
pub fn prepare(dir: &Path, plan: &Plan, postgres: Option<&str>) -> Result<Deployment, BenchError> {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    init::init(
        &InitOptions {
            dir: dir.to_path_buf(),
            listen: any,
            sim_listen: any,
        },
        &crate::dev::demo::seeds(),
    )?;
    let d = Deployment {
        dir: dir.to_path_buf(),
        data_dir: dir.join("gateway/data"),
        gateway_config: dir.join("renkei.toml"),
        sim_config: dir.join("sim.toml"),
        logs: dir.join("logs"),
    };
    std::fs::create_dir_all(&d.logs).map_err(BenchError::io("making the logs folder"))?;

    let mut sim: SimConfig = read_toml(&d.sim_config)?;
    sim.result_delay_ms = 0;
    write_toml(&d.sim_config, &sim)?;

    let mut gw: GatewayConfig = read_toml(&d.gateway_config)?;
    gw.platform.poll_interval_ms = BENCH_POLL_INTERVAL_MS;
    gw.durability = plan.durability;
    let clients = plan.clients.max(plan.open_connections);
    if let Some(c) = gw
        .clients
        .iter_mut()
        .find(|c| c.name.as_str() == init::CLIENT_SUBSIDY)
    {
        c.limits = ClientLimits {
            rate_per_sec: Some(u32::MAX / 2),
            burst: Some(u32::MAX / 2),
            max_in_flight: Some(clients * 2),
        };
    }
    if let Some(url) = postgres {
        gw.store.backend = StoreBackend::Postgres;
        gw.store.url = Some(url.to_string());
    }
    write_toml(&d.gateway_config, &gw)?;
    if postgres.is_some() {
        let loaded = GatewayConfig::load(&d.gateway_config)?;
        crate::app::store::migrate(&loaded).map_err(|e| BenchError::Migrate(e.to_string()))?;
    }
    Ok(d)
}

/// Points the gateway's configuration at the simulator.
fn set_platform_url(d: &Deployment, addr: SocketAddr) -> Result<(), BenchError> {
    let mut gw: GatewayConfig = read_toml(&d.gateway_config)?;
    gw.platform.url = format!("https://{addr}");
    write_toml(&d.gateway_config, &gw)
}

/// A child process of the bench (killed if the bench ends first).
pub struct Proc {
    child: Option<Child>,
    pub pid: u32,
    /// Where it serves HTTPS.
    pub addr: SocketAddr,
    what: &'static str,
}

impl Proc {
    fn spawn(
        d: &Deployment,
        what: &'static str,
        args: &[&str],
        config: &Path,
        addr_file: &Path,
    ) -> Result<(Child, SocketAddr), BenchError> {
        let exe = std::env::current_exe().map_err(BenchError::io("finding this binary"))?;
        let _ = std::fs::remove_file(addr_file);
        let log = |ext: &str| {
            std::fs::File::create(d.logs.join(format!("{what}.{ext}")))
                .map_err(BenchError::io(format!("making {what}'s log")))
        };
        let mut child = Command::new(exe)
            .args(args)
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log("stdout")?))
            .stderr(Stdio::from(log("stderr")?))
            .spawn()
            .map_err(BenchError::io(format!("starting {what}")))?;
        let started = Instant::now();
        loop {
            if let Some(a) = std::fs::read_to_string(addr_file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                return Ok((child, a));
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(BenchError::NotStarted {
                    what,
                    detail: format!(
                        "exited with {status}; see {}",
                        d.logs.join(format!("{what}.stderr")).display()
                    ),
                });
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                return Err(BenchError::NotStarted {
                    what,
                    detail: "no address file in time".into(),
                });
            }
            std::thread::sleep(START_POLL);
        }
    }

    /// Starts `renkei sim` and points the gateway's configuration at it.
    pub async fn start_sim(d: &Deployment) -> Result<Proc, BenchError> {
        let (child, addr) = Self::spawn(
            d,
            "sim",
            &["sim"],
            &d.sim_config,
            &d.dir.join("sim/data/sim.addr"),
        )?;
        let p = Proc {
            pid: child.id(),
            child: Some(child),
            addr,
            what: "sim",
        };
        set_platform_url(d, addr)?;
        let admin = sim_admin(d)?;
        let url = format!("https://{addr}/admin/stats");
        wait_serving("sim", || async {
            admin
                .send(hyper::Method::GET, &url, &[], Bytes::new())
                .await
                .is_ok_and(|r| r.status == 200)
        })
        .await?;
        Ok(p)
    }

    /// Starts `renkei serve` and waits until its operations listener answers.
    pub async fn start_gateway(d: &Deployment) -> Result<Proc, BenchError> {
        let (child, addr) = Self::spawn(
            d,
            "gateway",
            &["serve"],
            &d.gateway_config,
            &d.data_dir.join("gateway.addr"),
        )?;
        let p = Proc {
            pid: child.id(),
            child: Some(child),
            addr,
            what: "gateway",
        };
        let ops = Ops::new(d)?;
        wait_serving("gateway", || async { ops.get("/healthz").await.is_ok() }).await?;
        Ok(p)
    }

    /// Sets the simulator's mode through its admin endpoint.
    pub async fn admin_mode(&self, d: &Deployment, mode: SimMode) -> Result<(), BenchError> {
        let body = serde_json::json!({ "mode": mode, "slow_ms": 0 });
        let r = sim_admin(d)?
            .send(
                hyper::Method::POST,
                &format!("https://{}/admin/mode", self.addr),
                &[("content-type", "application/json")],
                Bytes::from(body.to_string()),
            )
            .await?;
        if r.status != 200 {
            return Err(BenchError::Refused {
                what: "the simulator's /admin/mode",
                status: r.status.as_u16(),
            });
        }
        Ok(())
    }

    /// SIGTERM, then SIGKILL if it has not stopped in time.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = i32::try_from(self.pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let started = Instant::now();
        while started.elapsed() < STOP_TIMEOUT {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            tokio::time::sleep(START_POLL).await;
        }
        tracing::warn!(
            message = "Bench process did not stop; killing it.",
            what = self.what
        );
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

async fn wait_serving<F, Fut>(what: &'static str, mut ready: F) -> Result<(), BenchError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !ready().await {
        if started.elapsed() > START_TIMEOUT {
            return Err(BenchError::NotStarted {
                what,
                detail: "not serving in time".into(),
            });
        }
        tokio::time::sleep(START_POLL).await;
    }
    Ok(())
}

fn sim_admin(d: &Deployment) -> Result<HttpsClient, BenchError> {
    let c = d.client(init::CLIENT_SIM_ADMIN);
    Ok(HttpsClient::new(
        &d.dir.join("platform-ca.pem"),
        &c.join("cert.pem"),
        &c.join("key.pem"),
        REQUEST_TIMEOUT,
    )?)
}

/// Inquiries by status as the gateway's metrics say.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub pending: u64,
    pub answered: u64,
    pub failed: u64,
}

/// The gateway's operations listener (plain HTTP on loopback).
pub struct Ops {
    addr: SocketAddr,
}

impl Ops {
    /// From the address the gateway wrote to `ops.addr`.
    pub fn new(d: &Deployment) -> Result<Ops, BenchError> {
        let file = d.data_dir.join("ops.addr");
        let text = std::fs::read_to_string(&file)
            .map_err(BenchError::io(format!("reading {}", file.display())))?;
        let addr = text.trim().parse().map_err(|_| BenchError::NotStarted {
            what: "gateway",
            detail: "ops.addr holds no address".into(),
        })?;
        Ok(Ops { addr })
    }

    /// `GET path` over HTTP/1.0 (one request per connection); the body of a 200.
    async fn get(&self, path: &str) -> Result<String, BenchError> {
        let what = |s: &str| format!("{s} the operations listener");
        let mut tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(BenchError::io(what("connecting to")))?;
        tcp.write_all(format!("GET {path} HTTP/1.0\r\nhost: localhost\r\n\r\n").as_bytes())
            .await
            .map_err(BenchError::io(what("writing to")))?;
        let mut buf = Vec::new();
        tcp.read_to_end(&mut buf)
            .await
            .map_err(BenchError::io(what("reading from")))?;
        let text = String::from_utf8_lossy(&buf);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        if status != 200 {
            return Err(BenchError::Refused {
                what: "the operations listener",
                status,
            });
        }
        Ok(body.to_string())
    }

    /// Inquiries held now, by status (`renkei_inquiries{status}`).
    pub async fn counts(&self) -> Result<Counts, BenchError> {
        let text = self.get("/metrics").await?;
        let mut c = Counts::default();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("renkei_inquiries{status=\"") else {
                continue;
            };
            let Some((status, value)) = rest.split_once("\"}") else {
                continue;
            };
            let n = value.trim().parse::<f64>().unwrap_or(0.0).max(0.0) as u64;
            match status {
                "answered" => c.answered = n,
                "failed" => c.failed = n,
                _ => c.pending += n,
            }
        }
        Ok(c)
    }
}

/// CPU seconds (user + system) the process has used, from `/proc/PID/stat`.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields are counted after its closing parenthesis,
    // where field 3 (state) comes first; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace().skip(11);
    let utime: f64 = f.next()?.parse().ok()?;
    let stime: f64 = f.next()?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// The share of one core the process used over `window`, after a short settle.
pub async fn idle_cpu(pid: u32, window: Duration) -> f64 {
    tokio::time::sleep(IDLE_SETTLE).await;
    let before = cpu_seconds(pid);
    let started = Instant::now();
    tokio::time::sleep(window).await;
    match (cpu_seconds(pid), before) {
        (Some(a), Some(b)) => (a - b).max(0.0) / started.elapsed().as_secs_f64(),
        _ => f64::NAN,
    }
}

/// A process's memory, from `/proc/PID/status`.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// VmHWM: the peak resident set.
    pub peak_mib: f64,
    /// VmRSS: the resident set now.
    pub rss_mib: f64,
}

/// VmHWM and VmRSS of `pid` (NaN when unreadable).
pub fn memory(pid: u32) -> Memory {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    Memory {
        peak_mib: field("VmHWM:"),
        rss_mib: field("VmRSS:"),
    }
}

/// Bytes on disk (allocated blocks) of every file under `dir`.
pub fn bytes_under(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&p) else {
            continue;
        };
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.blocks() * 512,
                Err(_) => {}
            }
        }
    }
    total
}

//! Test harness: a throwaway PostgreSQL server (initdb into a temp folder, started on a free
//! loopback port with its unix socket in that folder, stopped on drop even after a panic),
//! and a synchronous-standby variant (pg_basebackup -R, promote, SIGKILL the primary).
//!
//! Binaries: `$RENKEI_PG_BINDIR`, `pg_config --bindir`, `/usr/lib/postgresql/*/bin`,
//! `/usr/local/bin`; on Debian they come from the `postgresql` package. initdb refuses to run
//! as root, so as root the server runs as `nobody` (via `runuser`), its folder chowned to it.

#![allow(dead_code)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Superuser created by initdb (trust authentication on loopback only).
pub const USER: &str = "renkei";
/// Unprivileged account the server runs as when the tests run as root.
const RUN_AS: &str = "nobody";
/// Longest a server may take to start, stop or promote (pg_ctl -t).
const PG_CTL_TIMEOUT_SECS: &str = "60";

pub struct PgServer {
    dir: tempfile::TempDir,
    pub data: PathBuf,
    pub port: u16,
    bindir: PathBuf,
    owner: Option<(u32, u32)>,
    running: bool,
}

/// Where the server binaries are, if anywhere.
pub fn bindir() -> Option<PathBuf> {
    let has_all = |d: &Path| {
        ["initdb", "pg_ctl", "postgres", "pg_basebackup", "psql"]
            .iter()
            .all(|b| d.join(b).exists())
    };
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(d) = std::env::var("RENKEI_PG_BINDIR") {
        candidates.push(d.into());
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        if out.status.success() {
            candidates.push(String::from_utf8_lossy(&out.stdout).trim().into());
        }
    }
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = entries.flatten().map(|e| e.path().join("bin")).collect();
        versions.sort();
        versions.reverse();
        candidates.extend(versions);
    }
    candidates.push("/usr/local/bin".into());
    candidates.push("/usr/local/pgsql/bin".into());
    candidates.into_iter().find(|d| has_all(d))
}

/// Starts a server, or `None` (with a message) when PostgreSQL is not installed.
pub fn start() -> Option<PgServer> {
    let Some(bindir) = bindir() else {
        eprintln!(
            "SKIPPED: PostgreSQL server binaries not found (apt-get install postgresql, or set RENKEI_PG_BINDIR)"
        );
        return None;
    };
    let mut s = PgServer::new(bindir);
    s.initdb();
    s.start_server();
    Some(s)
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

fn id_of(flag: &str) -> u32 {
    let out = Command::new("id").args([flag, RUN_AS]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn check(what: &str, out: Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `f` until it is true or `limit` passes; true if it became true.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl PgServer {
    fn new(bindir: PathBuf) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("renkei-pg-")
            .tempdir()
            .unwrap();
        let owner = is_root().then(|| (id_of("-u"), id_of("-g")));
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let data = dir.path().join("data");
        Self {
            dir,
            data,
            port: free_port(),
            bindir,
            owner,
            running: false,
        }
    }

    /// A command run as the server's owner.
    fn cmd(&self, bin: &str) -> Command {
        let prog = self.bindir.join(bin);
        match self.owner {
            Some(_) => {
                let mut c = Command::new("runuser");
                c.args(["-u", RUN_AS, "--"]).arg(prog);
                c
            }
            None => Command::new(prog),
        }
    }

    fn initdb(&self) {
        let out = self
            .cmd("initdb")
            .arg("-D")
            .arg(&self.data)
            .args([
                "-U",
                USER,
                "-A",
                "trust",
                "--no-locale",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .output()
            .unwrap();
        check("initdb", out);
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("server-{}.log", self.port))
    }

    /// pg_ctl start on `self.port` (a new free port if that one was taken meanwhile).
    pub fn start_server(&mut self) {
        for attempt in 0..5 {
            let opts = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=40",
                self.port,
                self.dir.path().display()
            );
            let out = self
                .cmd("pg_ctl")
                .arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(self.log_path())
                .args(["-w", "-t", PG_CTL_TIMEOUT_SECS, "-o", &opts, "start"])
                .output()
                .unwrap();
            if out.status.success() {
                self.running = true;
                return;
            }
            let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
            if attempt == 4 || !log.contains("could not bind") {
                panic!(
                    "pg_ctl start failed: {}\n{}\n{log}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            self.port = free_port();
        }
    }

    /// A clean shutdown (`pg_ctl stop -m fast`).
    pub fn stop(&mut self) {
        let out = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-w", "-t", PG_CTL_TIMEOUT_SECS, "-m", "fast", "stop"])
            .output()
            .unwrap();
        check("pg_ctl stop", out);
        self.running = false;
    }

    fn postmaster_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.data.join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// SIGKILLs the postmaster (a machine dying, as far as the clients can tell) and waits
    /// until it and its backends are gone.
    pub fn kill(&mut self) {
        let pid = self.postmaster_pid().expect("postmaster.pid");
        let out = Command::new("kill")
            .args(["-9", &pid.to_string()])
            .output()
            .unwrap();
        check("kill -9", out);
        let gone = wait_until(Duration::from_secs(30), || {
            !Path::new(&format!("/proc/{pid}")).exists()
                && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err()
        });
        assert!(gone, "postmaster {pid} still there after SIGKILL");
        self.running = false;
    }

    /// `pg_ctl promote` (standby → primary), waiting until it accepts writes.
    pub fn promote(&self) {
        let out = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-w", "-t", PG_CTL_TIMEOUT_SECS, "promote"])
            .output()
            .unwrap();
        check("pg_ctl promote", out);
    }

    /// libpq key=value url for database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("host=127.0.0.1 port={} user={USER} dbname={db}", self.port)
    }

    /// Runs SQL through psql (as the invoking user, over TCP) and returns its unaligned output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bindir.join("psql"))
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                USER,
                "-d",
                db,
                "-c",
                sql,
            ])
            .output()
            .unwrap();
        check("psql", out).trim().to_string()
    }

    pub fn create_db(&self, name: &str) {
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
    }

    /// A streaming standby of this server (pg_basebackup -R), made synchronous: after this
    /// returns, every COMMIT on this server waits for the standby's flush.
    pub fn start_sync_standby(&self) -> PgServer {
        let mut standby = PgServer::new(self.bindir.clone());
        let out = self
            .cmd("pg_basebackup")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER])
            .arg("-D")
            .arg(&standby.data)
            .args(["-R", "-X", "stream", "-c", "fast", "--no-sync"])
            .output()
            .unwrap();
        check("pg_basebackup", out);
        standby.start_server();
        // Set after the base backup, so the standby (once promoted) does not itself wait for
        // a standby that does not exist.
        self.psql(
            "postgres",
            "ALTER SYSTEM SET synchronous_standby_names = '*'",
        );
        self.psql("postgres", "SELECT pg_reload_conf()");
        let sync = wait_until(Duration::from_secs(30), || {
            self.psql(
                "postgres",
                "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'",
            ) == "1"
        });
        assert!(sync, "standby never became synchronous");
        standby
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if !self.running {
            return;
        }
        let stopped = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-w", "-t", PG_CTL_TIMEOUT_SECS, "-m", "immediate", "stop"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !stopped {
            if let Some(pid) = self.postmaster_pid() {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).output();
            }
        }
    }
}

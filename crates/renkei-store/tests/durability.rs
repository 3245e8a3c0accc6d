//! Durability tests with real files and real processes: an outside judge of every write and
//! sync (strace) for power cuts, SIGKILL crash recovery, and a write that fails on a file-size
//! limit (fail closed, nothing unacknowledged shown or kept).
//!
//! The test binary runs itself as the child: [`child_process`] does nothing unless
//! `RENKEI_STORE_CHILD` names a mode, and each test starts it with one.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::task::{Context, Poll, Waker};

use renkei_store::sled_store::{Durability, SledStore};
use renkei_store::{Batch, Health, Store, StoreError, Tree};

/// Selects the child's mode.
const CHILD_ENV: &str = "RENKEI_STORE_CHILD";
/// The child's working folder (the store is `store/` inside it).
const DIR_ENV: &str = "RENKEI_STORE_CHILD_DIR";
/// The child's file-size limit in bytes (`fsize-*` modes).
const FSIZE_ENV: &str = "RENKEI_STORE_FSIZE";
/// Values over sled's blob threshold (131,052 bytes with 512 KiB segments): a blob each.
const BIG: usize = 300_000;
/// Values well under the threshold that still fill a page over it when a few share a leaf.
const MEDIUM: usize = 40_000;
/// Ordinary values.
const SMALL: usize = 200;

fn store_dir(dir: &Path) -> PathBuf {
    dir.join("store")
}

/// A value that can be checked from its key alone.
fn value(key: &str, len: usize) -> Vec<u8> {
    key.bytes().cycle().take(len.max(1)).collect()
}

fn child(mode: &str, dir: &Path) -> Command {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([
        "child_process",
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, mode)
    .env(DIR_ENV, dir);
    cmd
}

/// Polls a commit once so that it is queued (the channel has room), without waiting for it.
fn enqueue(mut f: renkei_store::CommitFuture) -> renkei_store::CommitFuture {
    let mut cx = Context::from_waker(Waker::noop());
    let _ = f.as_mut().poll(&mut cx);
    f
}

/// The child's entry point; a no-op in the ordinary test run.
#[test]
fn child_process() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = PathBuf::from(std::env::var(DIR_ENV).unwrap());
    // The harness has printed `test child_process ... ` without a newline: start a fresh line
    // so that every line the parent reads begins with the child's own marker.
    println!();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    match mode.as_str() {
        // Unconstrained: tokio's cooperative budget would make a ready future look pending to
        // the one-off polls of `enqueue` and the barrier check.
        "trace" => rt.block_on(tokio::task::unconstrained(trace_child(&dir))),
        "crash" => rt.block_on(crash_child(&dir)),
        "verify" => verify_child(&dir),
        "fsize-log" => rt.block_on(fsize_child(&dir, SMALL * 10)),
        "fsize-blob" => rt.block_on(fsize_child(&dir, BIG)),
        "exact" => exact_child(&dir),
        other => panic!("unknown child mode {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Power cut: every file written and every directory entry made is synced before each ack.

/// Commits rounds of concurrent batches (small, medium and big values), writing an ack line to
/// `acks` after each; some rounds end with a barrier over commits that were queued, not awaited.
async fn trace_child(dir: &Path) {
    let store = SledStore::open(&store_dir(dir), Durability::Fsync).unwrap();
    let mut acks = std::fs::File::create(dir.join("acks")).unwrap();
    for round in 0..8u32 {
        let mut futures = Vec::new();
        for i in 0..64u32 {
            let mut b = Batch::new();
            let key = format!("s/{round:03}/{i:03}");
            b.put(Tree::Inquiries, key.clone(), value(&key, SMALL));
            futures.push(store.commit(b));
        }
        for i in 0..4u32 {
            let mut b = Batch::new();
            let key = format!("m/{round:03}/{i:03}");
            b.put(Tree::Batches, key.clone(), value(&key, MEDIUM));
            futures.push(store.commit(b));
        }
        let mut b = Batch::new();
        let key = format!("b/{round:03}");
        b.put(Tree::Batches, key.clone(), value(&key, BIG));
        futures.push(store.commit(b));
        if round % 2 == 1 {
            // Queue everything, then wait for a barrier only: it must cover all of them.
            let queued: Vec<_> = futures.into_iter().map(enqueue).collect();
            store.commit(Batch::new()).await.unwrap();
            // Every commit queued before the barrier is answered by now (so, by the judge,
            // durable before the ack below).
            let mut cx = Context::from_waker(Waker::noop());
            for mut f in queued {
                assert!(
                    matches!(f.as_mut().poll(&mut cx), Poll::Ready(Ok(_))),
                    "the barrier resolved before a commit queued ahead of it"
                );
            }
            acks.write_all(format!("ACK barrier {round}\n").as_bytes())
                .unwrap();
        } else {
            for r in futures_join(futures).await {
                r.unwrap();
            }
            acks.write_all(format!("ACK round {round}\n").as_bytes())
                .unwrap();
        }
    }
}

async fn futures_join(
    futures: Vec<renkei_store::CommitFuture>,
) -> Vec<Result<renkei_store::CommitReceipt, StoreError>> {
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// What the judge knows about one path: a counter bumped at every write event, and the counter
/// value the last completed sync covered.
#[derive(Default, Debug)]
struct FileState {
    events: u64,
    synced: u64,
}

/// Reads an strace `-f -y` log in order and, at each ack, lists paths under `root` that were
/// written (or directories that got an entry) after their last completed sync began.
struct Judge {
    root: String,
    acks_path: String,
    files: HashMap<String, FileState>,
    /// pid → (syscall, path, counter at sync start) for calls strace shows as unfinished.
    pending: HashMap<String, (String, String, u64)>,
    acks: Vec<(String, Vec<String>)>,
    blob_writes: usize,
}

/// The `<path>` strace `-y` prints after the first fd argument, e.g. `write(5</a/b>, …`.
fn fd_path(args: &str) -> Option<String> {
    let start = args.find('<')? + 1;
    let end = start + args[start..].find('>')?;
    Some(args[start..end].to_string())
}

/// The quoted strings in a call's arguments (paths of openat, rename, mkdir).
fn quoted(args: &str) -> Vec<String> {
    args.split('"')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_string())
        .collect()
}

fn parent(path: &str) -> String {
    Path::new(path)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl Judge {
    fn new(root: &Path, acks: &Path) -> Self {
        Self {
            root: root.to_string_lossy().into_owned(),
            acks_path: acks.to_string_lossy().into_owned(),
            files: HashMap::new(),
            pending: HashMap::new(),
            acks: Vec::new(),
            blob_writes: 0,
        }
    }

    fn ours(&self, path: &str) -> bool {
        path == self.root || path.starts_with(&format!("{}/", self.root))
    }

    fn touch(&mut self, path: &str) {
        if self.ours(path) {
            if path.contains("/blobs/") {
                self.blob_writes += 1;
            }
            self.files.entry(path.to_string()).or_default().events += 1;
        }
    }

    fn sync_started(&self, path: &str) -> u64 {
        self.files.get(path).map(|f| f.events).unwrap_or(0)
    }

    fn sync_done(&mut self, path: &str, covered: u64) {
        if let Some(f) = self.files.get_mut(path) {
            f.synced = f.synced.max(covered);
        }
    }

    fn dirty(&self) -> Vec<String> {
        let mut d: Vec<String> = self
            .files
            .iter()
            .filter(|(_, f)| f.events > f.synced)
            .map(|(p, _)| p.clone())
            .collect();
        d.sort();
        d
    }

    fn line(&mut self, line: &str) {
        // `PID name(args…) = result`, or `PID <... name resumed>…) = result`.
        let Some((pid, rest)) = line.split_once(' ') else {
            return;
        };
        let rest = rest.trim_start();
        if let Some(resumed) = rest.strip_prefix("<... ") {
            let Some((name, tail)) = resumed.split_once(" resumed>") else {
                return;
            };
            let Some((pname, path, covered)) = self.pending.remove(pid) else {
                return;
            };
            debug_assert_eq!(pname, name);
            self.finish(name, &path, covered, tail);
            return;
        }
        let Some((name, args)) = rest.split_once('(') else {
            return;
        };
        let unfinished = args.ends_with("<unfinished ...>");
        match name {
            "write" | "pwrite64" | "writev" | "pwritev" | "pwritev2" | "ftruncate"
            | "fallocate" => {
                let Some(path) = fd_path(args) else { return };
                if path == self.acks_path {
                    let dirty = self.dirty();
                    let text = quoted(args).first().cloned().unwrap_or_default();
                    self.acks.push((text, dirty));
                    return;
                }
                self.touch(&path);
                if unfinished {
                    self.pending.insert(pid.to_string(), (name.into(), path, 0));
                }
            }
            "fsync" | "fdatasync" => {
                let Some(path) = fd_path(args) else { return };
                let covered = self.sync_started(&path);
                if unfinished {
                    self.pending
                        .insert(pid.to_string(), (name.into(), path, covered));
                } else {
                    self.finish(name, &path, covered, args);
                }
            }
            "openat" | "open" | "creat" => {
                if !args.contains("O_CREAT") && name != "creat" {
                    return;
                }
                if let Some(path) = quoted(args).first() {
                    let path = if path.starts_with('/') {
                        path.clone()
                    } else {
                        // Relative to the cwd strace printed for AT_FDCWD.
                        format!("{}/{}", fd_path(args).unwrap_or_default(), path)
                    };
                    self.touch(&parent(&path));
                }
            }
            "rename" | "renameat" | "renameat2" | "mkdir" | "mkdirat" => {
                for path in quoted(args) {
                    self.touch(&parent(&path));
                }
            }
            _ => {}
        }
    }

    fn finish(&mut self, name: &str, path: &str, covered: u64, tail: &str) {
        let ok = tail.trim_end().ends_with("= 0");
        match name {
            "fsync" | "fdatasync" if ok => self.sync_done(path, covered),
            "write" | "pwrite64" | "writev" | "pwritev" | "pwritev2" | "ftruncate"
            | "fallocate" => self.touch(path),
            _ => {}
        }
    }
}

#[test]
fn every_written_file_and_new_entry_is_synced_before_each_ack() {
    let strace = Command::new("strace").arg("-V").output();
    assert!(
        strace.map(|o| o.status.success()).unwrap_or(false),
        "this test needs strace (apt-get install strace)"
    );
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace");
    let exe = std::env::current_exe().unwrap();
    let status = Command::new("strace")
        .args(["-f", "-y", "-qq", "-s", "64", "-o"])
        .arg(&trace)
        .args([
            "-e",
            "trace=openat,open,creat,write,pwrite64,writev,pwritev,pwritev2,ftruncate,\
             fallocate,fsync,fdatasync,sync_file_range,rename,renameat,renameat2,mkdir,mkdirat",
        ])
        .arg(exe)
        .args([
            "child_process",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "trace")
        .env(DIR_ENV, dir.path())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "traced child failed: {status}");
    let mut judge = Judge::new(&store_dir(dir.path()), &dir.path().join("acks"));
    let text = std::fs::read_to_string(&trace).unwrap();
    for line in text.lines() {
        judge.line(line);
    }
    assert_eq!(judge.acks.len(), 8, "one ack per round: {:?}", judge.acks);
    assert!(
        judge.blob_writes > 0,
        "the workload must make sled write blob files, or this test proves nothing"
    );
    for (ack, dirty) in &judge.acks {
        assert!(
            dirty.is_empty(),
            "at {ack:?} these were written or got entries but were not synced: {dirty:?}"
        );
    }
    // The judge also sees what the writer did: the files it found unsynced are all covered.
    let blobs = std::fs::read_dir(store_dir(dir.path()).join("blobs"))
        .unwrap()
        .count();
    assert!(blobs > 0, "blobs remain on disk");
}

// ---------------------------------------------------------------------------------------------
// Crash: SIGKILL at random moments; every acknowledged key survives and the store opens.

/// Commits forever, eight batches at a time, printing `ACK <key> <len>` for each acknowledged one.
async fn crash_child(dir: &Path) {
    let round = std::env::var("RENKEI_STORE_ROUND").unwrap();
    let store = SledStore::open(&store_dir(dir), Durability::Fsync).unwrap();
    let mut i = 0u64;
    loop {
        let mut pending = Vec::new();
        for _ in 0..8 {
            let key = format!("c/{round}/{i:08}");
            let len = match i % 10 {
                0 => BIG,
                1..=3 => MEDIUM,
                _ => SMALL,
            };
            let mut b = Batch::new();
            b.put(Tree::Batches, key.clone(), value(&key, len));
            pending.push((key, len, store.commit(b)));
            i += 1;
        }
        let mut out = std::io::stdout().lock();
        for (key, len, f) in pending {
            f.await.unwrap();
            writeln!(out, "ACK {key} {len}").unwrap();
        }
        out.flush().unwrap();
    }
}

/// Checks that every key listed in `expected` holds its value.
fn verify_child(dir: &Path) {
    let store = SledStore::open(&store_dir(dir), Durability::Fsync).unwrap();
    let list = std::fs::read_to_string(dir.join("expected")).unwrap();
    let mut n = 0;
    for line in list.lines() {
        let (key, len) = line.split_once(' ').unwrap();
        let got = store.get(Tree::Batches, key.as_bytes()).unwrap();
        assert_eq!(
            got.as_deref(),
            Some(value(key, len.parse().unwrap()).as_slice()),
            "acknowledged key {key} lost or changed"
        );
        n += 1;
    }
    println!("VERIFIED {n}");
}

/// A pseudo-random number from the standard library's per-process random hasher keys.
fn random_below(n: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(n);
    h.finish() % n
}

#[test]
fn acknowledged_keys_survive_sigkill_at_random_moments() {
    let dir = tempfile::tempdir().unwrap();
    let mut expected = Vec::new();
    for round in 0..5 {
        let kill_after = 5 + random_below(60) as usize;
        let mut writer = child("crash", dir.path())
            .env("RENKEI_STORE_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = writer.stdout.take().unwrap();
        let mut acked = 0;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("ACK ") {
                expected.push(rest.to_string());
                acked += 1;
                if acked >= kill_after {
                    break;
                }
            }
        }
        writer.kill().unwrap();
        writer.wait().unwrap();
        assert!(
            acked >= kill_after,
            "round {round}: the writer stopped early"
        );
        std::fs::write(dir.path().join("expected"), expected.join("\n")).unwrap();
        let out = child("verify", dir.path()).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains(&format!("VERIFIED {}", expected.len())),
            "round {round}: the store did not open or lost acknowledged keys: {}\n{}",
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// A write fails (file-size limit): fail closed, reads show acknowledged data only, and a restart
// shows exactly the acknowledged keys.

/// Sets `RLIMIT_FSIZE` and ignores `SIGXFSZ` so that a write past it fails with `EFBIG`.
fn limit_file_size(bytes: u64) {
    let lim = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: bytes,
    };
    // SAFETY (libc, unavoidable: std has no rlimit or signal API): plain syscalls on this
    // process, with a valid pointer to a local.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
}

/// Commits `f/<i>` (values of `len` bytes) and overwrites `counter` in each batch until a commit
/// fails, then checks the fail-closed behaviour; prints `ACKED <i>` lines and `CHECKS-OK`.
async fn fsize_child(dir: &Path, len: usize) {
    let limit: u64 = std::env::var(FSIZE_ENV).unwrap().parse().unwrap();
    limit_file_size(limit);
    let store = SledStore::open(&store_dir(dir), Durability::Fsync).unwrap();
    let mut out = std::io::stdout().lock();
    // A few small ones first, so that there is acknowledged data to read back.
    let mut acked: Vec<u32> = Vec::new();
    let mut failed_at = None;
    let mut first_error = String::new();
    for i in 0..10_000u32 {
        let key = format!("f/{i:06}");
        let mut b = Batch::new();
        let len = if i < 3 { SMALL } else { len };
        b.put(Tree::Inquiries, key.clone(), value(&key, len));
        b.put(Tree::Meta, b"counter".to_vec(), i.to_string());
        if i > 0 {
            // Deletes an acknowledged key too: a failed group must not hide it.
            b.delete(Tree::Due, format!("d/{:06}", i - 1));
        }
        b.put(Tree::Due, format!("d/{i:06}"), Vec::new());
        match store.commit(b).await {
            Ok(_) => {
                acked.push(i);
                writeln!(out, "ACKED {i}").unwrap();
                out.flush().unwrap();
            }
            Err(e) => {
                assert_ne!(
                    e.code(),
                    "store_failed",
                    "the first failure is the real one"
                );
                failed_at = Some(i);
                first_error = e.to_string();
                break;
            }
        }
    }
    let failed = failed_at.expect("the file-size limit was never hit");
    assert!(!acked.is_empty(), "no commit succeeded under the limit");
    let last = *acked.last().unwrap();
    // Every later write, and a barrier, is refused with the fail-closed error.
    let mut b = Batch::new();
    b.put(Tree::Inquiries, b"later".to_vec(), b"x".to_vec());
    let e = store.commit(b).await.unwrap_err();
    assert_eq!(e.code(), "store_failed");
    assert_eq!(
        store.commit(Batch::new()).await.unwrap_err().code(),
        "store_failed"
    );
    assert!(matches!(store.health(), Health::Failed { .. }));
    // Reads show the acknowledged state: not the failed group's values. sled may refuse a
    // read too once its files cannot grow (it pages through the same files: "File too large");
    // a refused read is failing closed, but every read that answers must show exactly the
    // acknowledged state.
    let failed_key = format!("f/{failed:06}");
    let mut answered = 0;
    if let Ok(v) = store.get(Tree::Inquiries, failed_key.as_bytes()) {
        answered += 1;
        assert!(v.is_none(), "the failed commit's {failed_key} is visible");
    }
    if let Ok(v) = store.get(Tree::Meta, b"counter") {
        answered += 1;
        assert_eq!(v, Some(last.to_string().into_bytes()));
    }
    let due_want = vec![(format!("d/{last:06}").into_bytes(), Vec::new())];
    if let Ok(due) = store.range(Tree::Due, &[], &[], 100) {
        answered += 1;
        assert_eq!(due, due_want);
    }
    if let Ok(n) = store.len(Tree::Due) {
        answered += 1;
        assert_eq!(n, 1);
    }
    if let Ok(rev) = store.range_rev(Tree::Due, &[], &[], 100) {
        answered += 1;
        assert_eq!(rev, due_want);
    }
    if let Ok(found) = store.scan_prefix(Tree::Due, b"d/", 100) {
        answered += 1;
        assert_eq!(found, due_want);
    }
    let want: Vec<Vec<u8>> = acked
        .iter()
        .map(|i| format!("f/{i:06}").into_bytes())
        .collect();
    if let Ok(all) = store.range(Tree::Inquiries, &[], &[], usize::MAX) {
        answered += 1;
        let keys: Vec<Vec<u8>> = all.into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, want, "reads show exactly the acknowledged keys");
    }
    if let Ok(n) = store.len(Tree::Inquiries) {
        answered += 1;
        assert_eq!(n, acked.len());
    }
    for i in &acked {
        let key = format!("f/{i:06}");
        let len = if *i < 3 { SMALL } else { len };
        if let Ok(v) = store.get(Tree::Inquiries, key.as_bytes()) {
            answered += 1;
            assert!(
                v == Some(value(&key, len)),
                "acknowledged {key} reads back wrong"
            );
        }
    }
    writeln!(out, "READS-ANSWERED {answered}").unwrap();
    writeln!(out, "FAILED-AT {failed}: {first_error}").unwrap();
    writeln!(out, "CHECKS-OK").unwrap();
    out.flush().unwrap();
    // Leave without waiting for a writer that sled may have left stuck.
    std::process::exit(0);
}

/// After a restart without the limit: exactly the keys in `expected` (one index a line).
fn exact_child(dir: &Path) {
    let store = SledStore::open(&store_dir(dir), Durability::Fsync).unwrap();
    let list = std::fs::read_to_string(dir.join("expected")).unwrap();
    let len: usize = std::env::var("RENKEI_STORE_LEN").unwrap().parse().unwrap();
    let want: BTreeMap<Vec<u8>, Vec<u8>> = list
        .lines()
        .map(|i| {
            let i: u32 = i.parse().unwrap();
            let key = format!("f/{i:06}");
            let v = value(&key, if i < 3 { SMALL } else { len });
            (key.into_bytes(), v)
        })
        .collect();
    let got: BTreeMap<Vec<u8>, Vec<u8>> = store
        .range(Tree::Inquiries, &[], &[], usize::MAX)
        .unwrap()
        .into_iter()
        .collect();
    let extra: Vec<String> = got
        .keys()
        .filter(|k| !want.contains_key(*k))
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    let lost: Vec<String> = want
        .keys()
        .filter(|k| !got.contains_key(*k))
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert!(
        extra.is_empty() && lost.is_empty(),
        "after restart: {} keys, {} acknowledged; unacknowledged shown: {extra:?}; lost: {lost:?}",
        got.len(),
        want.len()
    );
    assert!(got == want, "values differ from the acknowledged ones");
    let last = list.lines().last().unwrap();
    assert_eq!(
        store.get(Tree::Meta, b"counter").unwrap(),
        Some(last.as_bytes().to_vec())
    );
    let due = store.range(Tree::Due, &[], &[], 100).unwrap();
    let last: u32 = last.parse().unwrap();
    assert_eq!(due, vec![(format!("d/{last:06}").into_bytes(), Vec::new())]);
    assert!(store.health().is_ok());
    // The restarted store takes writes again.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut b = Batch::new();
    b.put(Tree::Inquiries, b"after-restart".to_vec(), b"1".to_vec());
    rt.block_on(store.commit(b)).unwrap();
    println!("EXACT-OK {}", want.len());
}

fn fsize_case(mode: &str, limit: u64, len: usize) {
    let dir = tempfile::tempdir().unwrap();
    let out = child(mode, dir.path())
        .env(FSIZE_ENV, limit.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("CHECKS-OK"),
        "{mode}: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let acked: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ACKED "))
        .collect();
    std::fs::write(dir.path().join("expected"), acked.join("\n")).unwrap();
    let out = child("exact", dir.path())
        .env("RENKEI_STORE_LEN", len.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(&format!("EXACT-OK {}", acked.len())),
        "{mode}: after restart the store does not hold exactly the acknowledged keys: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_failed_log_write_fails_closed_and_keeps_only_acknowledged_data() {
    // Small values: the log file `db` reaches the limit.
    fsize_case("fsize-log", 3 * 1024 * 1024, SMALL * 10);
}

#[test]
fn a_failed_blob_write_fails_closed_and_keeps_only_acknowledged_data() {
    // Values over the blob threshold: a blob file reaches the limit first.
    fsize_case("fsize-blob", 200_000, BIG);
}

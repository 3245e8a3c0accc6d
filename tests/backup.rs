//! Backup and restore against the real binary: `renkei backup` under a steady load of
//! inquiries, `renkei restore` into a new folder, the restored gateway started in place of the
//! lost one — every inquiry acknowledged before the backup began is there and answered, and
//! its linkage records verify; a changed, missing or extra file makes restore refuse, naming
//! the file and writing nothing.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{local_tax, wait_until, Api, Deployment, POLL, START_TIMEOUT};
use renkei::dev::demo::SAMPLES;
use renkei::dev::init::CLIENT_SUBSIDY;

/// Concurrent submitters of the steady load.
const SUBMITTERS: usize = 4;
/// Pause between one submitter's inquiries.
const PACE: Duration = Duration::from_millis(40);
/// Inquiries acknowledged before the backup starts.
const BEFORE_BACKUP: usize = 30;
/// How long each restored inquiry has to be answered (a loaded CI machine).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(90);

/// Submits local-tax inquiries until `stop`, retrying a key on 429/503 or a broken
/// connection; pushes the id of every 202.
async fn submitter(task: usize, api: Api, stop: Arc<AtomicBool>, ids: Arc<Mutex<Vec<String>>>) {
    let mut n = 0usize;
    while !stop.load(Ordering::SeqCst) {
        let key = format!("backup-{task}-{n}");
        let body = local_tax(SAMPLES[(task + n) % SAMPLES.len()].business_number);
        loop {
            match api.try_submit(&key, &body).await {
                Ok(r) if r.status == 202 => {
                    let id = r.body["id"].as_str().expect("id").to_string();
                    ids.lock().expect("lock").push(id);
                    break;
                }
                Ok(r) if r.status == 429 || r.status >= 500 => tokio::time::sleep(POLL).await,
                Ok(r) => panic!("key {key}: unexpected {} {}", r.status, r.body),
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
        n += 1;
        tokio::time::sleep(PACE).await;
    }
}

fn run(args: &[&str]) -> std::process::Output {
    std::process::Command::new(common::BIN)
        .args(args)
        .output()
        .expect("run renkei")
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Relative paths with their permission bits.
type Modes = Vec<(String, u32)>;

/// Every file under `dir`, relative, with its mode; and every folder's mode.
fn tree(dir: &Path) -> (Modes, Modes) {
    fn walk(root: &Path, p: &Path, files: &mut Modes, dirs: &mut Modes) {
        for e in std::fs::read_dir(p).expect("read dir").flatten() {
            let path = e.path();
            let meta = std::fs::metadata(&path).expect("metadata");
            let rel = path
                .strip_prefix(root)
                .expect("under root")
                .display()
                .to_string();
            let mode = meta.permissions().mode() & 0o777;
            if meta.is_dir() {
                dirs.push((rel, mode));
                walk(root, &path, files, dirs);
            } else {
                files.push((rel, mode));
            }
        }
    }
    let (mut files, mut dirs) = (Vec::new(), Vec::new());
    walk(dir, dir, &mut files, &mut dirs);
    files.sort();
    (files, dirs)
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir").flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).expect("copy");
        }
    }
}

/// Restore of `backup` into a new folder is refused naming `names`; nothing is written.
fn assert_refused(backup: &Path, scratch: &Path, keys: &Path, names: &[&str]) {
    let target = scratch.join("target");
    let out = run(&[
        "restore",
        "--from",
        path_str(backup),
        "--dir",
        path_str(&target),
        "--public-key",
        path_str(keys),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "restore should fail: {stderr}");
    for n in names {
        assert!(stderr.contains(n), "the refusal names {n}: {stderr}");
    }
    assert!(!target.exists(), "nothing written for a refused backup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_under_load_restores_every_acknowledged_inquiry() {
    let mut d = Deployment::new();
    d.fast_backoff();
    d.start().await;
    d.link_samples().await;
    d.wait_codes(3).await;

    // A steady load while the backup is taken.
    let stop = Arc::new(AtomicBool::new(false));
    let ids: Arc<Mutex<Vec<String>>> = Arc::default();
    let tasks: Vec<_> = (0..SUBMITTERS)
        .map(|t| {
            tokio::spawn(submitter(
                t,
                d.client(CLIENT_SUBSIDY),
                stop.clone(),
                ids.clone(),
            ))
        })
        .collect();
    let count = || ids.lock().expect("lock").len();
    wait_until(START_TIMEOUT * 3, "the load is acknowledged", || async {
        count() >= BEFORE_BACKUP
    })
    .await;
    let before: Vec<String> = ids.lock().expect("lock").clone();

    let backup = d.tmp.path().join("backup");
    let gw = format!("https://{}", d.gw_addr.expect("gateway"));
    let dir = d.dir.display().to_string();
    let backup_arg = backup.display().to_string();
    let out = tokio::task::spawn_blocking(move || {
        run(&[
            "backup",
            "--to",
            &backup_arg,
            "--dir",
            &dir,
            "--gateway",
            &gw,
        ])
    })
    .await
    .expect("join");
    assert!(
        out.status.success(),
        "renkei backup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The gateway kept serving: more inquiries are acknowledged after the backup.
    let after_backup = count();
    wait_until(
        START_TIMEOUT * 3,
        "the load goes on after the backup",
        || async { count() > after_backup + SUBMITTERS },
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.expect("submitter");
    }

    // The backup: private files, the gateway's own files only.
    let (files, dirs) = tree(&backup);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    for (name, mode) in &files {
        assert_eq!(*mode, 0o600, "{name} is 0600");
    }
    for (name, mode) in &dirs {
        assert_eq!(*mode, 0o700, "{name} is 0700");
    }
    for needed in [
        "manifest.json",
        "manifest.sig",
        "store.dump",
        "renkei.toml",
        "ca.pem",
        "crl.pem",
        "gateway/server-key.pem",
        "gateway/platform-client-key.pem",
        "gateway/peers/platform.json",
    ] {
        assert!(
            names.contains(&needed),
            "{needed} is in the backup: {names:?}"
        );
    }
    assert!(
        names.iter().any(|n| n.starts_with("gateway/keys/")),
        "the sealed keyring is in the backup: {names:?}"
    );
    for (name, _) in &files {
        let refused = name.ends_with("master.key")
            || name.ends_with("ca-key.pem")
            || (name.starts_with("clients/") && !name.ends_with("/cert.pem"))
            || name.starts_with("sim")
            || name.starts_with("staff/");
        assert!(!refused, "{name} must not be in a backup of the gateway");
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backup.join("manifest.json")).expect("manifest"))
            .expect("manifest JSON");
    assert_eq!(
        manifest["files"].as_array().map(Vec::len),
        Some(files.len() - 2)
    );
    assert_eq!(manifest["left_out"][0], "gateway/master.key");

    // The auditor's copy of the checkpoint keys, kept apart from the backup.
    let keys = d.auditor_key_file();

    // Tampered backups are refused, naming the file, writing nothing.
    let scratch = d.tmp.path().join("scratch");
    let changed = scratch.join("changed");
    copy_tree(&backup, &changed);
    let toml = std::fs::read_to_string(changed.join("renkei.toml")).expect("toml");
    std::fs::write(changed.join("renkei.toml"), toml + "\n# changed\n").expect("tamper");
    assert_refused(&changed, &scratch, &keys, &["renkei.toml", "changed"]);
    let missing = scratch.join("missing");
    copy_tree(&backup, &missing);
    std::fs::remove_file(missing.join("gateway/peers/platform.json")).expect("remove");
    assert_refused(
        &missing,
        &scratch,
        &keys,
        &["gateway/peers/platform.json", "missing"],
    );
    let extra = scratch.join("extra");
    copy_tree(&backup, &extra);
    std::fs::write(extra.join("gateway/extra.pem"), "x").expect("extra file");
    assert_refused(
        &extra,
        &scratch,
        &keys,
        &["gateway/extra.pem", "not in the manifest"],
    );
    let dump = scratch.join("dump");
    copy_tree(&backup, &dump);
    let mut bytes = std::fs::read(dump.join("store.dump")).expect("dump");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(dump.join("store.dump"), bytes).expect("tamper dump");
    assert_refused(&dump, &scratch, &keys, &["store.dump"]);

    // The machine is lost: restore into a new folder.
    d.kill_gateway();
    let restored: PathBuf = d.tmp.path().join("restored");
    let out = run(&[
        "restore",
        "--from",
        path_str(&backup),
        "--dir",
        path_str(&restored),
        "--public-key",
        path_str(&keys),
    ]);
    assert!(
        out.status.success(),
        "renkei restore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("signed by one of the keys you trust"));
    let (files, dirs) = tree(&restored);
    for (name, mode) in &files {
        assert_eq!(*mode, 0o600, "restored {name} is 0600");
    }
    for (name, mode) in &dirs {
        assert_eq!(*mode, 0o700, "restored {name} is 0700");
    }
    assert!(
        restored.join("gateway/data/store").is_dir(),
        "the store is rebuilt"
    );

    // What the operator brings: the master key from its offline copy; the clients keep their
    // own keys (and the staff their sessions, which the store holds).
    std::fs::copy(
        d.dir.join("gateway/master.key"),
        restored.join("gateway/master.key"),
    )
    .expect("master key");
    copy_tree(&d.dir.join("clients"), &restored.join("clients"));
    std::fs::create_dir_all(restored.join("logs")).expect("logs");
    d.dir = restored;
    d.start_gateway().await;

    let api = d.client(CLIENT_SUBSIDY);
    for id in &before {
        let v = api.wait_final(id, ANSWER_TIMEOUT).await;
        assert_eq!(v["status"], "answered", "inquiry {id} after restore: {v}");
    }
    let v = d.client("auditor").get("/v1/audit/verify").await;
    assert_eq!(v.status, 200, "live verification: {}", v.body);
    assert_eq!(
        v.body["ok"], true,
        "the restored records verify: {}",
        v.body
    );
    // Each of them has its inquiry records in the restored log (every page, newest first).
    let auditor = d.client("auditor");
    let mut recorded = std::collections::HashSet::new();
    let mut before_seq: Option<u64> = None;
    loop {
        let q = before_seq
            .map(|b| format!("&before={b}"))
            .unwrap_or_default();
        let page = auditor
            .get(&format!("/v1/audit/records?kind=inquiry&limit=1000{q}"))
            .await;
        assert_eq!(page.status, 200, "records: {}", page.body);
        for r in page.body["records"].as_array().cloned().unwrap_or_default() {
            if let Some(id) = r["reference"].as_str() {
                recorded.insert(id.to_string());
            }
        }
        match page.body["next_before"].as_u64() {
            Some(n) if before_seq != Some(n) => before_seq = Some(n),
            _ => break,
        }
    }
    for id in &before {
        assert!(
            recorded.contains(id),
            "inquiry {id} has its linkage records after restore"
        );
    }
}

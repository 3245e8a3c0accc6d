//! `renkei bench --quick --json` against the release binary: the report has every figure,
//! each finite and positive, each ratio consistent with its figure and the limit it names, and
//! the gateway really ran as a process of its own. Judges the report's shape and arithmetic
//! only: no timing threshold (the targets live in the bench's output).

use std::process::{Command, Stdio};

use serde_json::Value;

/// The release binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_renkei");

/// Every figure a quick run with the end-to-end and bulk phases reports.
const FIGURES: [&str; 14] = [
    "accept_closed_per_sec",
    "accept_closed_p50_ms",
    "accept_closed_p99_ms",
    "accept_open_per_sec",
    "accept_open_p50_ms",
    "accept_open_p99_ms",
    "accept_open_p999_ms",
    "records_cost_percent",
    "e2e_per_sec",
    "gateway_peak_mib",
    "disk_bytes_per_answered",
    "idle_cpu_percent",
    "batch_accepted_secs",
    "import_secs",
];

/// The bulk phases' sizes here: small, so the run stays short (the bench's default is 300,000).
const BULK_LINES: &str = "2000";
const BULK_ROWS: &str = "2000";

/// Every limit, measured in the same run.
const LIMITS: [&str; 5] = [
    "ring_p256_signatures_per_sec",
    "fdatasync_per_sec",
    "fdatasync_ms",
    "sled_batch_writes_per_sec",
    "https_noop_requests_per_sec",
];

fn num(v: &Value, what: &str) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn quick_bench_reports_every_figure_against_its_limit() {
    let tmp = tempfile::Builder::new()
        .prefix("renkei-bench-test-")
        .tempdir()
        .expect("tempdir");
    let dir = tmp.path().join("deploy");
    let child = Command::new(BIN)
        .args(["bench", "--quick", "--json", "--bulk", "1"])
        .args([
            "--bulk-lines",
            BULK_LINES,
            "--bulk-rows",
            BULK_ROWS,
            "--dir",
        ])
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run renkei bench");
    let bench_pid = child.id();
    let out = child.wait_with_output().expect("wait for renkei bench");
    assert!(
        out.status.success(),
        "renkei bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");

    // The gateway (and the simulator) ran as processes of their own, and /proc was read.
    assert_eq!(num(&report["bench_pid"], "bench_pid") as u32, bench_pid);
    let gw = num(&report["gateway"]["pid"], "gateway.pid") as u32;
    let sim = num(&report["sim_pid"], "sim_pid") as u32;
    assert!(
        gw > 0 && gw != bench_pid,
        "gateway pid {gw}, bench {bench_pid}"
    );
    assert!(sim > 0 && sim != bench_pid && sim != gw, "sim pid {sim}");
    for m in ["peak_rss_mib", "rss_mib"] {
        let v = num(&report["gateway"][m], m);
        assert!(v.is_finite() && v > 0.0, "gateway.{m} = {v}");
    }
    assert!(report["quick"].as_bool().expect("quick"));
    assert!(num(&report["accepted"], "accepted") > 0.0);
    assert!(num(&report["answered"], "answered") > 0.0);

    // The live bytes per store tree add up to at most what the data folder holds, and the
    // inquiries tree holds every answered inquiry.
    let trees = report["store_trees"].as_array().expect("store_trees");
    let tree = |name: &str| trees.iter().find(|t| t["tree"] == name);
    let live: f64 = trees
        .iter()
        .map(|t| num(&t["key_bytes"], "key_bytes") + num(&t["value_bytes"], "value_bytes"))
        .sum();
    assert!(
        live > 0.0 && live <= num(&report["disk_bytes"], "disk_bytes"),
        "live {live}"
    );
    let inquiries = tree("inquiries").expect("the inquiries tree");
    assert!(
        num(&inquiries["entries"], "entries") >= num(&report["answered"], "answered"),
        "{inquiries}"
    );
    assert!(tree("records").is_some(), "the records tree");

    let limits = &report["limits"];
    for l in LIMITS {
        let v = num(&limits[l], l);
        assert!(v.is_finite() && v > 0.0, "limit {l} = {v}");
    }
    assert!(close(
        num(&limits["fdatasync_ms"], "fdatasync_ms"),
        1000.0 / num(&limits["fdatasync_per_sec"], "fdatasync_per_sec")
    ));

    let figures = report["figures"].as_array().expect("figures");
    let names: Vec<&str> = figures
        .iter()
        .map(|f| f["name"].as_str().expect("name"))
        .collect();
    for want in FIGURES {
        assert!(names.contains(&want), "figure {want} missing: {names:?}");
    }
    for f in figures {
        let name = f["name"].as_str().expect("name");
        let value = num(&f["value"], name);
        // An idle gateway may use no measurable CPU at all: zero is an honest reading there.
        if name == "idle_cpu_percent" {
            assert!(value.is_finite() && value >= 0.0, "{name} = {value}");
        } else {
            assert!(value.is_finite() && value > 0.0, "{name} = {value}");
        }
        let better = f["better"].as_str().expect("better");
        if let Some(target) = f["target"].as_f64() {
            let met = f["met"].as_bool().expect("met beside a target");
            let should = if better == "higher" {
                value >= target
            } else {
                value <= target
            };
            assert_eq!(met, should, "{name}: met says {met}");
        }
        if let Some(limit) = f["limit"].as_str() {
            let limit_value = num(&f["limit_value"], "limit_value");
            assert!(
                close(limit_value, num(&limits[limit], limit)),
                "{name}: limit_value {limit_value} is not limits.{limit}"
            );
            let ratio = num(&f["ratio"], "ratio");
            let expected = if better == "higher" {
                value / limit_value
            } else {
                limit_value / value
            };
            assert!(
                close(ratio, expected),
                "{name}: ratio {ratio}, expected {expected}"
            );
        }
    }
    // The accept rates are bounded by the lower of the store's commits and the TLS no-op.
    let accept = figures
        .iter()
        .find(|f| f["name"] == "accept_closed_per_sec")
        .expect("accept figure");
    let bound = num(&accept["limit_value"], "limit_value");
    let lower = num(&limits["sled_batch_writes_per_sec"], "sled")
        .min(num(&limits["https_noop_requests_per_sec"], "https"));
    assert!(
        close(bound, lower),
        "accept bound {bound}, lower limit {lower}"
    );
}

//! The gateway idles while the platform's operating window is closed: with an inquiry
//! queued, the dispatcher waits for the window instead of spinning (under 5 % of a core over
//! 3 s) and sends nothing to the platform.

mod common;

use std::time::{Duration, Instant};

use common::{local_tax, wait_until, Deployment};
use renkei::config::parse_hours;
use renkei::dev::demo::SAMPLES;
use renkei::dev::init::CLIENT_SUBSIDY;
use renkei::util::{jst_minute_of_day, ms_until_open, now_ms};

/// How long the CPU time is sampled.
const SAMPLE: Duration = Duration::from_secs(3);
/// Most of one core the idle gateway may use (the target is 1 %; the rest is noise).
const MAX_SHARE: f64 = 0.05;

/// A one-minute operating window twelve hours from now (JST): closed for the whole test.
fn window_closed_now() -> String {
    let open = (jst_minute_of_day(now_ms()) + 12 * 60) % (24 * 60);
    let close = open + 1;
    format!(
        "{:02}:{:02}-{:02}:{:02}",
        open / 60,
        open % 60,
        close / 60,
        close % 60
    )
}

/// Clock ticks per second of /proc times (`getconf CLK_TCK`).
fn clock_ticks() -> f64 {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .expect("run getconf CLK_TCK");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("CLK_TCK is a number")
}

/// utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/<pid>/stat).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    // The command name is in parentheses and may hold spaces: count fields after it.
    let rest = stat.rsplit_once(") ").expect("stat has (comm)").1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| -> u64 { f[i].parse().expect("a tick count") };
    // `rest` starts at field 3 (state): utime is field 14, stime field 15.
    n(11) + n(12)
}

fn stat(v: &serde_json::Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("sim stats lack {k}: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_window_costs_no_cpu_and_sends_nothing() {
    let window = window_closed_now();
    let hours = parse_hours(&window).expect("a valid window");
    assert!(ms_until_open(now_ms(), hours) > 0, "{window} is open now");

    let mut d = Deployment::new();
    d.set_gateway("operating_hours", &format!("\"{window}\""));
    d.start().await;
    d.link_samples().await;
    let before = d.sim_stats().await;
    let api = d.client(CLIENT_SUBSIDY);
    let id = api
        .submit_ok("idle-1", &local_tax(SAMPLES[0].business_number))
        .await;
    wait_until(Duration::from_secs(10), "the inquiry is queued", || async {
        api.status_of(&id).await == "queued"
    })
    .await;

    let pid = d.gateway_pid().expect("gateway running");
    let ticks = clock_ticks();
    let (t0, c0) = (Instant::now(), cpu_ticks(pid));
    // A measurement interval, not a wait for a condition.
    tokio::time::sleep(SAMPLE).await;
    let (elapsed, used) = (t0.elapsed(), cpu_ticks(pid) - c0);
    let share = used as f64 / ticks / elapsed.as_secs_f64();
    eprintln!(
        "idle gateway with the window closed ({window}): {used} ticks in {elapsed:?} = {:.2} % of a core",
        share * 100.0
    );
    assert!(
        share < MAX_SHARE,
        "the gateway used {:.1} % of a core while the platform was closed ({used} ticks in {elapsed:?})",
        share * 100.0
    );

    // Nothing was sent: still queued, and the platform saw no message (nor a refusal).
    assert_eq!(api.status_of(&id).await, "queued");
    let after = d.sim_stats().await;
    for k in [
        "messages_received",
        "refused_closed",
        "inquiries_accepted",
        "code_acquisitions",
    ] {
        assert_eq!(stat(&after, k), stat(&before, k), "{k} grew: {after}");
    }
    assert!(after["effects"].get(id.as_str()).is_none(), "{after}");
}

//! `renkei demo --exit-after-flow`: the one-command walk-through completes and shows each
//! sample inquiry answered and the not-permitted item refused.

mod common;

use std::process::Command;

#[test]
fn demo_runs_the_sample_flow_and_exits() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("demo");
    let out = Command::new(common::BIN)
        .args(["demo", "--dir"])
        .arg(&dir)
        .arg("--exit-after-flow")
        .output()
        .expect("run renkei demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "demo failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let answered = stdout
        .lines()
        .filter(|l| l.trim_end().ends_with(": answered"))
        .count();
    assert_eq!(answered, 3, "three inquiries answered:\n{stdout}");
    assert!(stdout.contains("HTTP 403 not_permitted"), "{stdout}");
    assert!(stdout.contains("市町村民税所得割額=123400"), "{stdout}");
    assert!(!stdout.contains("did not complete"), "{stdout}");
    // The demo's own number never appears in what it prints.
    for i in 0..renkei::dev::demo::SAMPLES.len() {
        let n = common::sample_digits(i);
        assert!(
            !stdout.contains(&n) && !stderr.contains(&n),
            "sample {i} printed"
        );
    }
    // Running it again over its own folder works (it replaces it).
    let again = Command::new(common::BIN)
        .args(["demo", "--dir"])
        .arg(&dir)
        .arg("--exit-after-flow")
        .output()
        .expect("run renkei demo again");
    assert!(again.status.success(), "second demo run failed");
}

//! Message-path measurement: a quick sanity run, and the full 2 KiB run (ignored; run with --ignored).

use std::time::Duration;

use renkei_crypto::bench_message_path;

#[test]
fn bench_report_is_consistent() {
    let r = bench_message_path(256, Duration::from_millis(80));
    assert_eq!(r.failure, None);
    assert!(r.raw_signs_per_s > 0.0 && r.raw_verifies_per_s > 0.0);
    assert!(r.sign_seal_per_s > 0.0 && r.open_verify_per_s > 0.0);
    assert!(r.seal_only_per_s > 0.0 && r.open_only_per_s > 0.0);
    // Sending does strictly more than one raw signature of work per message.
    assert!(r.sign_seal_ratio() < 1.0, "{r}");
    let table = r.to_string();
    assert!(table.contains("payload 256 bytes"));
    assert!(table.contains("seal + sign (send)"));
}

/// `cargo test --release -p renkei-crypto --test bench -- --ignored --nocapture`
#[test]
#[ignore = "measurement, ~12 s; run by hand"]
fn bench_2kib_message_path() {
    let r = bench_message_path(2048, Duration::from_secs(12));
    println!("{r}");
    assert_eq!(r.failure, None);
}

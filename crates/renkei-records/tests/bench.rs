//! The verification measurement: a small run always (it must verify), and the one-million
//! record run on demand: `cargo test --release -p renkei-records --test bench -- --ignored --nocapture`.

use renkei_records::bench::bench_verify;

#[test]
fn bench_verify_builds_and_verifies_a_bundle() {
    let b = bench_verify(25_000).unwrap();
    assert_eq!(b.n, 25_000);
    assert_eq!(b.checkpoints, 3);
    assert!(b.records_per_sec > 0.0 && b.bundle_bytes > 25_000 * 100);
}

#[test]
#[ignore = "takes about a minute and ~500 MB of disk; run on demand for the report"]
fn bench_verify_one_million() {
    let b = bench_verify(1_000_000).unwrap();
    println!(
        "n={} checkpoints={} bundle_bytes={} build={:.2}s export={:.2}s verify={:.2}s => {:.0} records/s",
        b.n, b.checkpoints, b.bundle_bytes, b.build_secs, b.export_secs, b.verify_secs, b.records_per_sec
    );
}

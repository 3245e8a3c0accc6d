//! Runs the inquiry-batch conversion benchmark once: `cargo run --release -p renkei-convert --example bench_convert [records]`.

/// Records per run when none are given: enough for a stable rate, about a second of work.
const DEFAULT_RECORDS: usize = 200_000;

fn main() {
    let n = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_RECORDS);
    match renkei_convert::bench::bench_convert(n) {
        Ok(b) => println!(
            "records={} bytes={} write={:.0}/s read+typed={:.0}/s errors={}",
            b.records, b.bytes, b.write_per_sec, b.read_per_sec, b.errors
        ),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}

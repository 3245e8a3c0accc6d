//! Verification benchmark: builds an n-record log (a checkpoint every
//! `DEFAULT_BENCH_CHECKPOINT_EVERY` records and at the end), exports it to a temporary
//! directory and times `verify_bundle`. Run: `cargo bench -p renkei-records`
//! (n defaults to `DEFAULT_BENCH_RECORDS`; pass another as the first argument after `--`).

use std::time::Instant;

use renkei_records::{
    canonical_bytes, export_bundle, public_key_pem, verify_bundle, ChainState, Checkpoint,
    StoredEntry,
};

#[path = "../tests/common/mod.rs"]
mod common;

use common::{synthetic_record, EphemeralSigner};

/// Records in the default run: one million, about a year of a mid-sized city's linkage log.
const DEFAULT_BENCH_RECORDS: u64 = 1_000_000;

/// A checkpoint every this many records: about what a busy day's per-minute checkpoints
/// give, and enough to exercise checkpoint checks in the replay.
const DEFAULT_BENCH_CHECKPOINT_EVERY: u64 = 10_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench`; the first numeric argument, if any, is n.
    let n = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<u64>().ok())
        .unwrap_or(DEFAULT_BENCH_RECORDS);
    let signer = EphemeralSigner::generate()?;
    let pem = public_key_pem(signer.public_key())?;

    let start = Instant::now();
    let mut state = ChainState::new();
    let mut checkpoints = vec![];
    for i in 0..n {
        state.append(&canonical_bytes(&synthetic_record(i)));
        if (i + 1).is_multiple_of(DEFAULT_BENCH_CHECKPOINT_EVERY) || i + 1 == n {
            checkpoints.push(Checkpoint::sign(&state, "2026-11-26T23:59:59Z", &signer)?);
        }
    }
    let build_secs = start.elapsed().as_secs_f64();

    let dir = tempfile::tempdir()?;
    let start = Instant::now();
    // Records are made on the fly twice (once to sign, once to export) so memory stays flat.
    let mut replay = ChainState::new();
    let entries = (0..n)
        .map(move |i| -> StoredEntry { replay.append(&canonical_bytes(&synthetic_record(i))) });
    export_bundle(dir.path(), entries, &checkpoints, &pem)?;
    let export_secs = start.elapsed().as_secs_f64();
    let size = |f: &str| {
        std::fs::metadata(dir.path().join(f))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    let bundle_bytes = size("records.jsonl") + size("entries.jsonl");

    let start = Instant::now();
    let report = verify_bundle(dir.path(), pem.as_bytes())?;
    let verify_secs = start.elapsed().as_secs_f64();
    if report.records != n {
        return Err(format!("verified {} records, expected {n}", report.records).into());
    }
    println!(
        "n={n} checkpoints={} bundle_bytes={bundle_bytes} build={build_secs:.2}s \
         export={export_secs:.2}s verify={verify_secs:.2}s => {:.0} records/s",
        checkpoints.len(),
        n as f64 / verify_secs.max(f64::MIN_POSITIVE)
    );
    Ok(())
}

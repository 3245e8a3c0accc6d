//! `renkei bench`: throughput and latency harness (being built).

/// Options of `renkei bench`.
#[derive(clap::Args)]
pub struct BenchArgs {}

/// Runs the benchmark.
pub async fn run(_args: BenchArgs) -> Result<(), String> {
    Ok(())
}

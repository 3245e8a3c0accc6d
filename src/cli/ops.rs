//! `renkei ops …`: operators' commands — business statistics (業務統計) for a date range as
//! CSV or JSON, and the status of batches. Counts only: no person appears in either.

use clap::{Subcommand, ValueEnum};
use hyper::Method;

use super::staff_client::{query, Conn};

/// The client certificate used when `--as` is not given.
const DEFAULT_AS: &str = "operator";

/// Output formats of `ops stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatsOutput {
    Csv,
    Json,
}

/// Output formats of `ops batches`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BatchesOutput {
    Table,
    Json,
}

#[derive(Subcommand)]
pub enum OpsAction {
    /// Finished inquiries per day × business system × procedure × item × result.
    Stats {
        #[command(flatten)]
        conn: Conn,
        /// First day, YYYY-MM-DD (JST).
        #[arg(long)]
        from: String,
        /// Last day, YYYY-MM-DD (JST), inclusive.
        #[arg(long)]
        to: String,
        #[arg(long, value_enum, default_value = "csv")]
        output: StatsOutput,
    },
    /// Every batch: state, lines, accepted, rejected and the inquiries' progress.
    Batches {
        #[command(flatten)]
        conn: Conn,
        #[arg(long, value_enum, default_value = "table")]
        output: BatchesOutput,
    },
}

/// The CSV header of `ops stats`.
pub const STATS_CSV_HEADER: &str = "date,business_system,procedure,item,result,count";

/// Runs one `ops` command.
pub async fn run(action: OpsAction) -> Result<(), String> {
    match action {
        OpsAction::Stats {
            conn,
            from,
            to,
            output,
        } => {
            let c = conn.client(Some(DEFAULT_AS))?;
            let q = query(&[("from", Some(&from)), ("to", Some(&to))]);
            let v = c
                .json(Method::GET, &format!("/v1/ops/business-stats{q}"), None)
                .await?;
            match output {
                StatsOutput::Json => println!("{}", pretty(&v)),
                StatsOutput::Csv => {
                    println!("{STATS_CSV_HEADER}");
                    for r in v["rows"].as_array().cloned().unwrap_or_default() {
                        // Every field is a code, a date or a name of [a-z0-9-]: no quoting.
                        println!(
                            "{},{},{},{},{},{}",
                            text(&r["date"]),
                            text(&r["business_system"]),
                            text(&r["procedure"]),
                            text(&r["item"]),
                            text(&r["result"]),
                            r["count"].as_u64().unwrap_or(0)
                        );
                    }
                }
            }
            Ok(())
        }
        OpsAction::Batches { conn, output } => {
            let c = conn.client(Some(DEFAULT_AS))?;
            let v = c.json(Method::GET, "/v1/ops/batches", None).await?;
            match output {
                BatchesOutput::Json => println!("{}", pretty(&v)),
                BatchesOutput::Table => {
                    println!(
                        "{:<28}  {:<16} {:<11} {:<29} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}  done",
                        "id",
                        "system",
                        "status",
                        "received",
                        "lines",
                        "accepted",
                        "rejected",
                        "queued",
                        "answered",
                        "failed"
                    );
                    for b in v.as_array().cloned().unwrap_or_default() {
                        let p = &b["progress"];
                        let n = |x: &serde_json::Value| x.as_u64().unwrap_or(0);
                        println!(
                            "{:<28}  {:<16} {:<11} {:<29} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}  {}",
                            text(&b["id"]),
                            text(&b["business_system"]),
                            text(&b["status"]),
                            text(&b["received_at"]),
                            n(&b["lines"]),
                            n(&b["accepted"]),
                            n(&b["rejected"]),
                            n(&p["queued"]) + n(&p["sent"]),
                            n(&p["answered"]),
                            n(&p["failed"]),
                            if p["done"].as_bool() == Some(true) {
                                "yes"
                            } else {
                                "no"
                            }
                        );
                    }
                }
            }
            Ok(())
        }
    }
}

fn text(v: &serde_json::Value) -> &str {
    v.as_str().unwrap_or("")
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

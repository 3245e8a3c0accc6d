//! `renkei inquiries …` (a business system's client of the running gateway: submit a batch
//! file, follow it, fetch its results) and `renkei schemas check` (local, no gateway).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Method;

use super::outcome::{CmdResult, Outcome};
use super::output::{col, print_listing, rows_of, Column, OutputArg};
use super::staff_client::{query, refusal, Conn, StaffClient};
use super::values::StatusArg;

/// How often `submit --wait` asks for progress: often enough to feel live, rare enough that
/// the gateway's recount of a large batch stays a small share of its work.
pub const DEFAULT_WAIT_POLL: Duration = Duration::from_millis(1000);
/// How long `submit --wait` waits for a batch to finish before giving up (the inquiries go
/// on; `renkei inquiries status` follows them). A day, like an inquiry's own deadline.
pub const DEFAULT_WAIT_SECS: u64 = 86_400;

/// The business system a batch command acts as when `--as` is not given.
const DEFAULT_AS: &str = crate::dev::init::CLIENT_SUBSIDY;

/// Subcommands of `renkei inquiries`.
#[derive(clap::Subcommand)]
pub enum InquiriesAction {
    /// Upload an inquiry batch file (inquiry-batch layout, Shift_JIS, CRLF); prints the batch id.
    Submit {
        /// The batch file.
        file: PathBuf,
        /// Wait until every line is answered or failed, then write the results file.
        #[arg(long)]
        wait: bool,
        /// Where to write the results (with --wait); default FILE.results.csv.
        #[arg(long)]
        results: Option<PathBuf>,
        /// Give up waiting after this many seconds.
        #[arg(long, default_value_t = DEFAULT_WAIT_SECS)]
        timeout: u64,
        #[command(flatten)]
        conn: Conn,
    },
    /// Progress of a batch: lines accepted and rejected, inquiries queued, sent, answered, failed.
    Status {
        batch_id: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// The business system's own inquiries, newest first (one page, or --all).
    List {
        /// Only inquiries in this status.
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
        /// Only inquiries accepted at or after this time (RFC 3339 or YYYY-MM-DD, JST).
        #[arg(long)]
        since: Option<String>,
        /// Inquiries per page (1 to 1000; the gateway's default is 100).
        #[arg(long)]
        limit: Option<u32>,
        /// Start at this page (the `next_cursor` of a previous one).
        #[arg(long)]
        cursor: Option<String>,
        /// Follow the cursors to the last page and list everything.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        output: OutputArg,
        #[command(flatten)]
        conn: Conn,
    },
    /// Download a batch's results file (inquiry-result layout, CP932).
    Results {
        batch_id: String,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        conn: Conn,
    },
}

/// The columns of `inquiries list` as a table or CSV (JSON shows each inquiry whole).
const INQUIRY_COLUMNS: &[Column] = &[
    col("id"),
    col("status"),
    col("business_number"),
    col("procedure"),
    col("item"),
    Column {
        header: "accepted_at",
        path: "/timestamps/accepted_at",
    },
    Column {
        header: "finished_at",
        path: "/timestamps/finished_at",
    },
];

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

async fn get_json(c: &StaffClient, path: &str) -> Result<serde_json::Value, String> {
    c.json(Method::GET, path, None).await
}

fn progress_line(v: &serde_json::Value) -> String {
    format!(
        "{} {}: lines {} accepted {} rejected {} | queued {} sent {} answered {} failed {}{}",
        v["id"].as_str().unwrap_or("?"),
        v["status"].as_str().unwrap_or("?"),
        v["total_lines"],
        v["accepted"],
        v["rejected_count"],
        v["queued"],
        v["sent"],
        v["answered"],
        v["failed"],
        if v["done"].as_bool() == Some(true) {
            " — done"
        } else {
            ""
        }
    )
}

fn print_rejections(v: &serde_json::Value) {
    let list = v["rejected"].as_array().cloned().unwrap_or_default();
    for r in &list {
        eprintln!(
            "  line {}: {} {}: {}",
            r["line"],
            r["field"].as_str().unwrap_or("-"),
            r["code"].as_str().unwrap_or("?"),
            r["message"].as_str().unwrap_or("")
        );
    }
    let count = v["rejected_count"].as_u64().unwrap_or(0);
    if count > list.len() as u64 {
        eprintln!("  … and {} more rejected lines", count - list.len() as u64);
    }
}

async fn fetch_results(c: &StaffClient, batch_id: &str, out: &Path) -> Result<usize, String> {
    let (status, body) = c
        .call(
            Method::GET,
            &format!("/v1/batches/{batch_id}/results"),
            &[],
            Bytes::new(),
        )
        .await?;
    if status != 200 {
        return Err(refusal(status, &body));
    }
    std::fs::write(out, &body).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(body.windows(2).filter(|w| w == b"\r\n").count())
}

/// Runs a `renkei inquiries` subcommand.
pub async fn run(action: InquiriesAction) -> CmdResult {
    match action {
        InquiriesAction::Submit {
            file,
            wait,
            results,
            timeout,
            conn,
        } => {
            let c = conn.client(Some(DEFAULT_AS))?;
            let size = std::fs::metadata(&file)
                .map_err(|e| format!("{}: {e}", file.display()))?
                .len();
            let started = Instant::now();
            let v = c.upload_file("/v1/inquiries:batch", &file).await?;
            let id = v["id"].as_str().ok_or("no batch id in the answer")?;
            eprintln!(
                "Uploaded {} ({size} bytes): batch {id}{}",
                file.display(),
                if v["new"].as_bool() == Some(false) {
                    " (this file was uploaded before: nothing new is created)"
                } else {
                    ""
                }
            );
            println!("{id}");
            if !wait {
                return Ok(Outcome::Done);
            }
            let path = format!("/v1/batches/{id}");
            let mut last = String::new();
            let mut accepted_reported = false;
            let bar = super::progress::items(0);
            let final_view = loop {
                let v = get_json(&c, &path).await?;
                let line = progress_line(&v);
                if bar.is_hidden() {
                    if line != last {
                        eprintln!("{line}");
                    }
                } else {
                    follow(&bar, &v);
                }
                last = line;
                if !accepted_reported && v["status"] == "accepted" {
                    accepted_reported = true;
                    bar.suspend(|| {
                        eprintln!(
                            "All {} lines read in {:.1} s.",
                            v["total_lines"],
                            started.elapsed().as_secs_f64()
                        )
                    });
                }
                if v["status"] == "interrupted" {
                    bar.abandon();
                    return Err(format!(
                        "batch {id} was interrupted; submit the same file again to resume"
                    )
                    .into());
                }
                if v["done"].as_bool() == Some(true) {
                    bar.finish_and_clear();
                    if !bar.is_hidden() {
                        eprintln!("{last}");
                    }
                    break v;
                }
                if started.elapsed() > Duration::from_secs(timeout) {
                    bar.abandon();
                    return Err(format!(
                        "batch {id} not finished after {timeout} s; follow it with `renkei inquiries status {id}`"
                    )
                    .into());
                }
                tokio::time::sleep(DEFAULT_WAIT_POLL).await;
            };
            if final_view["rejected_count"].as_u64().unwrap_or(0) > 0 {
                eprintln!("Rejected lines:");
                print_rejections(&final_view);
            }
            let out = results.unwrap_or_else(|| {
                let mut s = file.clone().into_os_string();
                s.push(".results.csv");
                PathBuf::from(s)
            });
            let n = fetch_results(&c, id, &out).await?;
            eprintln!("Wrote {n} result lines to {}.", out.display());
            let rejected = final_view["rejected_count"].as_u64().unwrap_or(0);
            let failed = final_view["failed"].as_u64().unwrap_or(0);
            if failed > 0 {
                eprintln!("{failed} inquiries failed (see the results file).");
            }
            Ok(Outcome::rejecting(rejected + failed))
        }
        InquiriesAction::Status { batch_id, conn } => {
            let c = conn.client(Some(DEFAULT_AS))?;
            let v = get_json(&c, &format!("/v1/batches/{batch_id}")).await?;
            eprintln!("{}", progress_line(&v));
            println!("{}", serde_json::to_string_pretty(&v).map_err(err)?);
            Ok(Outcome::Done)
        }
        InquiriesAction::List {
            status,
            since,
            limit,
            cursor,
            all,
            output,
            conn,
        } => {
            let c = conn.client(Some(DEFAULT_AS))?;
            let status = status.map(StatusArg::api_name);
            let limit = limit.map(|l| l.to_string());
            let mut cursor = cursor;
            let mut rows = Vec::new();
            let answer = loop {
                let q = query(&[
                    ("status", status.as_deref()),
                    ("since", since.as_deref()),
                    ("limit", limit.as_deref()),
                    ("cursor", cursor.as_deref()),
                ]);
                let page = get_json(&c, &format!("/v1/inquiries{q}")).await?;
                rows.extend(rows_of(&page, Some("inquiries")));
                let next = page["next_cursor"].as_str().map(str::to_string);
                match next {
                    Some(n) if all && cursor.as_deref() != Some(n.as_str()) => cursor = Some(n),
                    _ if all => break serde_json::json!({ "inquiries": rows }),
                    _ => break page,
                }
            };
            print_listing(output.format(), &answer, &rows, INQUIRY_COLUMNS)?;
            Ok(Outcome::Done)
        }
        InquiriesAction::Results {
            batch_id,
            out,
            conn,
        } => {
            let c = conn.client(Some(DEFAULT_AS))?;
            let n = fetch_results(&c, &batch_id, &out).await?;
            eprintln!("Wrote {n} result lines to {}.", out.display());
            Ok(Outcome::Done)
        }
    }
}

/// Moves the bar to the gateway's own counts: lines read while it accepts, then inquiries
/// answered or failed out of those accepted.
fn follow(bar: &indicatif::ProgressBar, v: &serde_json::Value) {
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    if v["status"] == "accepting" {
        bar.set_length(n("total_lines").max(n("accepted") + n("rejected_count")));
        bar.set_position(n("accepted") + n("rejected_count"));
        bar.set_message(format!("lines read ({} rejected)", n("rejected_count")));
    } else {
        bar.set_length(n("accepted"));
        bar.set_position(n("answered") + n("failed"));
        bar.set_message(format!(
            "inquiries done ({} failed, {} sent, {} queued)",
            n("failed"),
            n("sent"),
            n("queued")
        ));
    }
}

/// Subcommands of `renkei schemas`.
#[derive(clap::Subcommand)]
pub enum SchemasAction {
    /// Validate every layout, code table, the era table and the permission table
    /// (`permissions/`); lists every problem.
    Check {
        /// The schemas folder.
        #[arg(long, visible_alias = "schemas", default_value = "schemas")]
        dir: PathBuf,
    },
}

/// Runs a `renkei schemas` subcommand.
pub fn run_schemas(action: SchemasAction) -> Result<(), String> {
    match action {
        SchemasAction::Check { dir } => {
            if !dir.is_dir() {
                return Err(format!("{}: not a folder", dir.display()));
            }
            let problems = crate::schemas::check_dir(&dir);
            for p in &problems {
                println!("{p}");
            }
            if problems.is_empty() {
                println!("{}: all schemas valid", dir.display());
                Ok(())
            } else {
                Err(format!(
                    "{} problem{} in {}",
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" },
                    dir.display()
                ))
            }
        }
    }
}

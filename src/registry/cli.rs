//! `renkei persons …`: the resident-record import (the file is streamed to the running
//! gateway, with a progress line on a terminal), searches and merges. Each is an HTTPS client
//! of the gateway authenticated with a client certificate, like `renkei keys`.
//!
//! The individual number is never taken as a command-line argument (it would show in the
//! process list and shell history): `by-individual-number` reads it from standard input.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, SizeHint};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

/// Bytes read from the file per upload piece.
pub const DEFAULT_UPLOAD_PIECE: usize = 256 * 1024;
/// A 300,000-line import takes seconds, a city-wide file on a slow disk may take minutes.
pub const DEFAULT_IMPORT_TIMEOUT: Duration = Duration::from_secs(3600);
/// How often the progress line is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// How a command reaches the gateway.
#[derive(clap::Args, Clone)]
pub struct Conn {
    /// Deployment folder (CA, clients/NAME/ certificates, gateway address).
    #[arg(long, env = "RENKEI_DIR", default_value = ".")]
    dir: PathBuf,
    /// Gateway URL, if not the one recorded in the deployment folder.
    #[arg(long)]
    gateway: Option<String>,
}

/// Subcommands of `renkei persons`.
#[derive(clap::Subcommand)]
pub enum PersonsAction {
    /// Import a resident-record feed file (change records applied in order; replay-safe).
    Import {
        /// The file (fixed-width Shift_JIS or CSV, as the layout says).
        file: PathBuf,
        /// Layout name, e.g. resident-fixed or resident-csv.
        #[arg(long)]
        layout: String,
        /// The business system feeding its own numbers (its client certificate under clients/).
        #[arg(long = "system", alias = "as")]
        system: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Look a person up by the caller's business number or by unified address number.
    Lookup {
        #[arg(long)]
        business_number: Option<String>,
        #[arg(long)]
        unified: Option<String>,
        /// Client certificate to act as (a business system, or security-officer).
        #[arg(long = "as")]
        as_name: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Find persons by the basic four facts (kana or name, and birth date; sex and address
    /// narrow the match).
    Match {
        #[arg(long)]
        kana: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        birth_date: String,
        #[arg(long)]
        sex: Option<String>,
        #[arg(long)]
        address: Option<String>,
        #[arg(long = "as")]
        as_name: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Security officers: the unified number of an individual number read from standard input.
    ByIndividualNumber {
        #[arg(long = "as", default_value = "security-officer")]
        as_name: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Security officers: merge two unified numbers found to be one person.
    Merge {
        #[arg(long)]
        from: String,
        #[arg(long)]
        into: String,
        #[arg(long = "as", default_value = "security-officer")]
        as_name: String,
        #[command(flatten)]
        conn: Conn,
    },
}

fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs a `renkei persons` subcommand.
pub async fn run(action: PersonsAction) -> Result<(), String> {
    use hyper::Method;
    let staff = |conn: &Conn, name: &str| {
        crate::staff::StaffClient::new(&conn.dir, name, conn.gateway.as_deref())
    };
    match action {
        PersonsAction::Import {
            file,
            layout,
            system,
            conn,
        } => {
            let v = import(&conn, &system, &file, &layout).await?;
            print_json(&v);
            if v["rejected_count"].as_u64().unwrap_or(0) > 0 {
                eprintln!(
                    "{} line(s) refused; fix them and import the file again (applied lines are skipped).",
                    v["rejected_count"]
                );
            }
            Ok(())
        }
        PersonsAction::Lookup {
            business_number,
            unified,
            as_name,
            conn,
        } => {
            let c = staff(&conn, &as_name)?;
            let q = match (business_number, unified) {
                (Some(b), None) => format!("business_number={}", enc(&b)),
                (None, Some(u)) => format!("unified={}", enc(&u)),
                _ => return Err("give exactly one of --business-number or --unified".into()),
            };
            print_json(
                &c.json(Method::GET, &format!("/v1/persons:lookup?{q}"), None)
                    .await?,
            );
            Ok(())
        }
        PersonsAction::Match {
            kana,
            name,
            birth_date,
            sex,
            address,
            as_name,
            conn,
        } => {
            let c = staff(&conn, &as_name)?;
            let body = serde_json::json!({
                "kana": kana, "name": name, "birth_date": birth_date, "sex": sex, "address": address,
            });
            print_json(
                &c.json(Method::POST, "/v1/persons:match", Some(body))
                    .await?,
            );
            Ok(())
        }
        PersonsAction::ByIndividualNumber { as_name, conn } => {
            let c = staff(&conn, &as_name)?;
            let mut line = zeroize::Zeroizing::new(String::new());
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| format!("standard input: {e}"))?;
            let n = renkei_ids::IndividualNumber::parse(line.trim())
                .map_err(|e| format!("standard input: {}", e.code()))?;
            let body = zeroize::Zeroizing::new(format!(
                "{{\"individual_number\":\"{}\"}}",
                zeroize::Zeroizing::new(n.expose_digits()).as_str()
            ));
            let (status, out) = c
                .call(
                    Method::POST,
                    "/v1/persons:by-individual-number",
                    &[("content-type", "application/json")],
                    Bytes::from(body.as_bytes().to_vec()),
                )
                .await?;
            let v: serde_json::Value =
                serde_json::from_slice(&out).unwrap_or(serde_json::Value::Null);
            if status != 200 {
                return Err(format!(
                    "gateway answered {status}: {} {}",
                    v["code"].as_str().unwrap_or(""),
                    v["message"].as_str().unwrap_or("")
                ));
            }
            print_json(&v);
            Ok(())
        }
        PersonsAction::Merge {
            from,
            into,
            as_name,
            conn,
        } => {
            let c = staff(&conn, &as_name)?;
            let body = serde_json::json!({"from": from, "into": into});
            print_json(
                &c.json(Method::POST, "/v1/persons:merge", Some(body))
                    .await?,
            );
            Ok(())
        }
    }
}

/// A request body fed from a channel of file pieces.
struct FileBody {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
    len: u64,
}

impl hyper::body::Body for FileBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data)))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

fn gateway_base(conn: &Conn) -> Result<String, String> {
    match &conn.gateway {
        Some(g) => Ok(g.trim_end_matches('/').to_string()),
        None => {
            let f = conn.dir.join("gateway/data/gateway.addr");
            let addr = std::fs::read_to_string(&f).map_err(|e| {
                format!(
                    "cannot find the running gateway ({}: {e}); start `renkei serve` or pass --gateway",
                    f.display()
                )
            })?;
            Ok(format!("https://{}", addr.trim()))
        }
    }
}

/// Streams `file` to `POST /v1/persons:import` as client `system`; returns the summary.
async fn import(
    conn: &Conn,
    system: &str,
    file: &Path,
    layout: &str,
) -> Result<serde_json::Value, String> {
    let cdir = conn.dir.join("clients").join(system);
    let cfg = crate::tls::client_config(
        &conn.dir.join("ca.pem"),
        &cdir.join("cert.pem"),
        &cdir.join("key.pem"),
    )
    .map_err(|e| e.to_string())?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(cfg)
        .https_only()
        .enable_http1()
        .build();
    let client: hyper_util::client::legacy::Client<_, FileBody> =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .build::<hyper_rustls::HttpsConnector<HttpConnector>, FileBody>(connector);
    let mut f = tokio::fs::File::open(file)
        .await
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let len = f
        .metadata()
        .await
        .map_err(|e| format!("{}: {e}", file.display()))?
        .len();
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(4);
    let show = std::io::stderr().is_terminal();
    let reader = tokio::spawn(async move {
        let mut sent = 0u64;
        let mut last = Instant::now();
        let started = Instant::now();
        loop {
            let mut buf = vec![0u8; DEFAULT_UPLOAD_PIECE];
            match f.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    sent += n as u64;
                    if tx.send(Ok(Bytes::from(buf))).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    break;
                }
            }
            if show && last.elapsed() >= PROGRESS_EVERY {
                last = Instant::now();
                progress(sent, len, started.elapsed());
            }
        }
        if show {
            progress(sent, len, started.elapsed());
            eprintln!("\nsent; waiting for the gateway to finish applying…");
        }
    });
    let url = format!(
        "{}/v1/persons:import?layout={}",
        gateway_base(conn)?,
        enc(layout)
    );
    let req = hyper::Request::builder()
        .method(hyper::Method::POST)
        .uri(url)
        .header("content-type", "application/octet-stream")
        .header("content-length", len)
        .body(FileBody { rx, len })
        .map_err(|e| e.to_string())?;
    let fut = async {
        let resp = client.request(req).await.map_err(|e| format!("{e:?}"))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok::<_, String>((status, body))
    };
    let (status, body) = tokio::time::timeout(DEFAULT_IMPORT_TIMEOUT, fut)
        .await
        .map_err(|_| "the gateway did not answer in time".to_string())??;
    let _ = reader.await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    if (200..300).contains(&status) {
        Ok(v)
    } else {
        Err(format!(
            "gateway answered {status}: {} {}",
            v["code"].as_str().unwrap_or(""),
            v["message"].as_str().unwrap_or("")
        ))
    }
}

fn progress(sent: u64, total: u64, elapsed: Duration) {
    let pct = (sent * 100).checked_div(total).unwrap_or(100);
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let rate = mib(sent) / elapsed.as_secs_f64().max(0.001);
    eprint!(
        "\r[{:<30}] {:>3}%  {:.1}/{:.1} MiB  {:.1} MiB/s ",
        "#".repeat((pct as usize * 30 / 100).min(30)),
        pct,
        mib(sent),
        mib(total),
        rate
    );
}

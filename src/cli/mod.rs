//! The command line: `renkei init | serve | sim | demo | …`: every subcommand's arguments
//! and output. The gateway's work is in the library; staff commands are HTTPS clients of the
//! running gateway through one [`staff_client::StaffClient`].

pub mod audit;
pub mod clients;
pub mod inquiries;
pub mod persons;
pub mod staff_client;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{GatewayConfig, SimConfig};

#[derive(Parser)]
#[command(
    name = "renkei",
    version,
    about = "A municipality's gateway to the My Number information-linkage platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make a ready deployment folder: configs, development CA and certificates, keys.
    Init {
        /// The folder to make.
        #[arg(long)]
        dir: PathBuf,
        /// Gateway listen address.
        #[arg(long, default_value = crate::config::DEFAULT_LISTEN)]
        listen: SocketAddr,
        /// Simulator listen address.
        #[arg(long, default_value = crate::config::DEFAULT_SIM_LISTEN)]
        sim_listen: SocketAddr,
    },
    /// Run the gateway.
    Serve {
        #[arg(long)]
        config: PathBuf,
    },
    /// Run the national platform simulator.
    Sim {
        #[arg(long)]
        config: PathBuf,
        /// Write every message received, as received, into this folder.
        #[arg(long)]
        capture: Option<PathBuf>,
    },
    /// Start simulator and gateway on loopback and walk through a sample flow.
    Demo {
        #[arg(long, default_value = crate::dev::demo::DEFAULT_DEMO_DIR)]
        dir: PathBuf,
        /// Exit after the sample flow instead of serving until Ctrl-C.
        #[arg(long)]
        exit_after_flow: bool,
    },
    /// Security officers: list, rotate and retire keys.
    Keys {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Bulk person feeds (resident records) and registry searches.
    Persons {
        #[command(subcommand)]
        action: crate::cli::persons::PersonsAction,
    },
    /// Business systems: submit inquiry batch files and fetch their results.
    Inquiries {
        #[command(subcommand)]
        action: crate::cli::inquiries::InquiriesAction,
    },
    /// Check the layouts, code tables and era table under schemas/.
    Schemas {
        #[command(subcommand)]
        action: crate::cli::inquiries::SchemasAction,
    },
    /// Measure throughput and latency on this machine.
    Bench(crate::dev::bench::BenchArgs),
    /// Auditors: query, export and verify linkage records.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Client certificates: add (issue or sign a request), revoke, list.
    Clients {
        #[command(subcommand)]
        action: crate::cli::clients::ClientsAction,
    },
}

use staff_client::{query, Conn, StaffClient};

#[derive(Subcommand)]
enum KeysAction {
    /// Every key by purpose, version, state, creation time and what it protects.
    List,
    /// Re-encryption progress after an at-rest rotation.
    Status,
    /// Make a new version active now (signing, sealing, at-rest, checkpoint).
    Rotate { purpose: String },
    /// Destroy an old version (refused while something depends on it).
    Retire { purpose: String, version: u32 },
    /// Pending rotations and retirements (two-person rule).
    Requests,
    /// Approve another officer's pending request (two-person rule).
    Approve { request_id: String },
}

#[derive(Subcommand)]
enum AuditAction {
    /// Find records (newest first).
    Query {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        person: Option<String>,
        #[arg(long)]
        business_number: Option<String>,
        #[arg(long)]
        system: Option<String>,
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        procedure: Option<String>,
        #[arg(long)]
        item: Option<String>,
        #[arg(long)]
        result: Option<String>,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        limit: Option<usize>,
        /// CSV instead of JSON.
        #[arg(long)]
        csv: bool,
    },
    /// Write a verifiable bundle of records into a folder.
    Export {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        /// One person's records only (unified address number), with inclusion proofs.
        #[arg(long)]
        person: Option<String>,
        /// Folder to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify a bundle offline with the gateway's public key, or the live store (--live).
    Verify {
        /// The bundle folder (offline check).
        bundle: Option<PathBuf>,
        /// The gateway's checkpoint public keys (PEM, as `renkei audit public-keys` prints them),
        /// obtained out of band.
        #[arg(long)]
        public_key: Option<PathBuf>,
        /// Check the whole stored log in place, through the gateway.
        #[arg(long)]
        live: bool,
        /// A checkpoint saved earlier (`renkei audit checkpoint`): prove through the gateway
        /// that the log only grew since (RFC 9162 consistency proof), with --public-key.
        #[arg(long, conflicts_with_all = ["bundle", "live"])]
        since: Option<PathBuf>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Save today's signed checkpoint (C2SP signed note) for a later `verify --since`.
    Checkpoint {
        /// File to write.
        #[arg(long)]
        out: PathBuf,
        /// Check it first with these checkpoint public keys (PEM).
        #[arg(long)]
        public_key: Option<PathBuf>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Print the gateway's checkpoint public keys (PEM) by version, retired ones included.
    PublicKeys {
        #[command(flatten)]
        conn: Conn,
    },
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// Entry point.
pub fn main() -> ExitCode {
    // Everything renkei writes — the store, keys, logs, exports — is for the service user
    // only: files 0600, folders 0700, whatever umask the shell had.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    crate::tls::install_default_provider();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Init {
            dir,
            listen,
            sim_listen,
        } => crate::dev::init::init(
            &crate::dev::init::InitOptions {
                dir: dir.clone(),
                listen,
                sim_listen,
            },
            &crate::dev::demo::seeds(),
        )
        .map(|_| {
            println!("Made a deployment in {}.", dir.display());
            println!("  renkei sim   --config {}/sim.toml", dir.display());
            println!("  renkei serve --config {}/renkei.toml", dir.display());
        }),
        Command::Serve { config } => runtime().and_then(|rt| {
            rt.block_on(async {
                let cfg = GatewayConfig::load(&config).map_err(|e| e.to_string())?;
                crate::app::logging::init(cfg.log_format, None);
                let gw = crate::app::build(cfg).map_err(|e| e.to_string())?;
                let running = crate::app::start(&gw).await.map_err(|e| e.to_string())?;
                crate::app::wait_for_signal().await;
                tracing::info!(message = "Shutting down.");
                running.stop().await;
                Ok(())
            })
        }),
        Command::Sim { config, capture } => runtime().and_then(|rt| {
            rt.block_on(async {
                let cfg = SimConfig::load(&config).map_err(|e| e.to_string())?;
                crate::app::logging::init(cfg.log_format, None);
                let (running, _) = crate::app::start_sim(cfg, capture)
                    .await
                    .map_err(|e| e.to_string())?;
                crate::app::wait_for_signal().await;
                running.stop().await;
                Ok(())
            })
        }),
        Command::Demo {
            dir,
            exit_after_flow,
        } => runtime().and_then(|rt| {
            rt.block_on(crate::dev::demo::run(crate::dev::demo::DemoOptions {
                dir,
                exit_after_flow,
            }))
        }),
        Command::Keys { conn, action } => {
            runtime().and_then(|rt| rt.block_on(keys_cmd(conn, action)))
        }
        Command::Audit { action } => runtime().and_then(|rt| rt.block_on(audit_cmd(action))),
        Command::Persons { action } => {
            runtime().and_then(|rt| rt.block_on(crate::cli::persons::run(action)))
        }
        Command::Inquiries { action } => {
            runtime().and_then(|rt| rt.block_on(crate::cli::inquiries::run(action)))
        }
        Command::Schemas { action } => crate::cli::inquiries::run_schemas(action),
        Command::Clients { action } => crate::cli::clients::run(action),
        Command::Bench(args) => runtime().and_then(|rt| rt.block_on(crate::dev::bench::run(args))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("renkei: {e}");
            ExitCode::FAILURE
        }
    }
}

fn staff(conn: &Conn, default_name: &str) -> Result<StaffClient, String> {
    conn.client(Some(default_name))
}

fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

async fn keys_cmd(conn: Conn, action: KeysAction) -> Result<(), String> {
    let c = staff(&conn, "security-officer")?;
    use hyper::Method;
    let v = match action {
        KeysAction::List => {
            let v = c.json(Method::GET, "/v1/keys", None).await?;
            println!(
                "{:<12} {:>7}  {:<12} {:<30} {:<17} protects",
                "purpose", "version", "state", "created", "fingerprint"
            );
            for k in v.as_array().cloned().unwrap_or_default() {
                println!(
                    "{:<12} {:>7}  {:<12} {:<30} {:<17} {}",
                    k["purpose"].as_str().unwrap_or(""),
                    k["version"],
                    k["status"].as_str().unwrap_or(""),
                    k["created_at"].as_str().unwrap_or(""),
                    k["fingerprint"].as_str().unwrap_or("-"),
                    k["protects"]
                        .as_u64()
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| "-".into())
                );
            }
            return Ok(());
        }
        KeysAction::Status => c.json(Method::GET, "/v1/keys/status", None).await?,
        KeysAction::Rotate { purpose } => {
            c.json(Method::POST, &format!("/v1/keys/{purpose}/rotate"), None)
                .await?
        }
        KeysAction::Requests => c.json(Method::GET, "/v1/keys/requests", None).await?,
        KeysAction::Approve { request_id } => {
            c.json(
                Method::POST,
                &format!("/v1/keys/requests/{request_id}/approve"),
                None,
            )
            .await?
        }
        KeysAction::Retire { purpose, version } => {
            c.json(
                Method::POST,
                &format!("/v1/keys/{purpose}/{version}/retire"),
                None,
            )
            .await?
        }
    };
    print_json(&v);
    Ok(())
}

async fn audit_cmd(action: AuditAction) -> Result<(), String> {
    use hyper::Method;
    match action {
        AuditAction::Query {
            conn,
            person,
            business_number,
            system,
            kind,
            procedure,
            item,
            result,
            from,
            to,
            limit,
            csv,
        } => {
            let c = staff(&conn, "auditor")?;
            let limit = limit.map(|l| l.to_string());
            let q = query(&[
                ("person", person.as_deref()),
                ("business_number", business_number.as_deref()),
                ("system", system.as_deref()),
                ("kind", kind.as_deref()),
                ("procedure", procedure.as_deref()),
                ("item", item.as_deref()),
                ("result", result.as_deref()),
                ("from", from.as_deref()),
                ("to", to.as_deref()),
                ("limit", limit.as_deref()),
                ("format", csv.then_some("csv")),
            ]);
            let (status, body) = c
                .call(
                    Method::GET,
                    &format!("/v1/audit/records{q}"),
                    &[],
                    bytes::Bytes::new(),
                )
                .await?;
            if status != 200 {
                return Err(format!(
                    "gateway answered {status}: {}",
                    String::from_utf8_lossy(&body)
                ));
            }
            if csv {
                print!("{}", String::from_utf8_lossy(&body));
            } else {
                let v: serde_json::Value =
                    serde_json::from_slice(&body).map_err(|e| e.to_string())?;
                print_json(&v);
            }
            Ok(())
        }
        AuditAction::Export {
            conn,
            from,
            to,
            person,
            out,
        } => {
            let c = staff(&conn, "auditor")?;
            let v = c
                .json(
                    Method::POST,
                    "/v1/audit/export",
                    Some(serde_json::json!({"from": from, "to": to, "person": person})),
                )
                .await?;
            std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
            let files = v["files"].as_object().cloned().unwrap_or_default();
            for (name, text) in &files {
                if name.contains('/') || name.starts_with('.') {
                    return Err(format!("refusing a bundle file name {name:?}"));
                }
                std::fs::write(out.join(name), text.as_str().unwrap_or_default())
                    .map_err(|e| format!("{}: {e}", out.display()))?;
            }
            println!(
                "Wrote {} records in {} files to {}.",
                v["records"],
                files.len(),
                out.display()
            );
            println!(
                "Verify offline: renkei audit verify {} --public-key KEY.pem",
                out.display()
            );
            Ok(())
        }
        AuditAction::Verify {
            bundle,
            public_key,
            live,
            since,
            conn,
        } => {
            if let Some(since) = since {
                let key_path = public_key
                    .ok_or("give --public-key (your copy of the gateway's checkpoint keys, PEM)")?;
                return audit::verify_since(&staff(&conn, "auditor")?, &since, &key_path).await;
            }
            if live {
                let c = staff(&conn, "auditor")?;
                let v = c.json(Method::GET, "/v1/audit/verify", None).await?;
                print_json(&v);
                return if v["ok"].as_bool() == Some(true) {
                    Ok(())
                } else {
                    Err("the stored log did not verify".into())
                };
            }
            let bundle = bundle.ok_or("give the bundle folder, or --live")?;
            let key_path = public_key
                .ok_or("give --public-key (the gateway's checkpoint public keys, PEM)")?;
            let key =
                std::fs::read(&key_path).map_err(|e| format!("{}: {e}", key_path.display()))?;
            match renkei_records::verify_bundle(&bundle, &key) {
                Ok(r) => {
                    println!(
                        "OK: {} records ({} swept), seq {}..{}, {} checkpoints verified, chain head {}",
                        r.records, r.swept, r.first_seq, r.end_seq, r.checkpoints_verified, r.chain_head
                    );
                    Ok(())
                }
                Err(e) => Err(format!("bundle does NOT verify: {e}")),
            }
        }
        AuditAction::Checkpoint {
            out,
            public_key,
            conn,
        } => audit::save_checkpoint(&staff(&conn, "auditor")?, &out, public_key.as_deref()).await,
        AuditAction::PublicKeys { conn } => {
            let c = staff(&conn, "auditor")?;
            let v = c.json(Method::GET, "/v1/audit/public-keys", None).await?;
            for (ver, pem) in v.as_object().cloned().unwrap_or_default() {
                println!(
                    "# signing key version {ver}\n{}",
                    pem.as_str().unwrap_or("")
                );
            }
            Ok(())
        }
    }
}

//! The command line: `renkei init | serve | sim | demo | …`: every subcommand's arguments
//! and output. The gateway's work is in the library; staff commands are HTTPS clients of the
//! running gateway through one [`staff_client::StaffClient`].

pub mod audit;
pub mod backup;
pub mod clients;
pub mod copies;
pub mod inquiries;
pub mod ops;
pub mod outcome;
pub mod output;
pub mod persons;
pub mod progress;
pub mod session;
pub mod staff_client;
pub mod store;
pub mod values;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::config::{GatewayConfig, SimConfig};
use outcome::{CliError, CmdResult, Outcome};
use output::{col, print_listing, rows_of, Column, OutputArg};
use values::{KindArg, PurposeArg, ResultArg};

#[derive(Parser)]
#[command(
    name = "renkei",
    version,
    about = "A municipality's gateway to the My Number information-linkage platform",
    after_help = outcome::EXIT_CODES_HELP
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
    /// Business systems that provide information: register copies (副本) from a file.
    Copies {
        #[command(subcommand)]
        action: crate::cli::copies::CopiesAction,
    },
    /// Business systems: submit inquiry batch files and fetch their results.
    Inquiries {
        #[command(subcommand)]
        action: crate::cli::inquiries::InquiriesAction,
    },
    /// Check the layouts, code tables, era table and permission table under schemas/.
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
    /// The store: PostgreSQL schema migrations, copying between sled and PostgreSQL.
    Store {
        #[command(subcommand)]
        action: crate::cli::store::StoreAction,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write man pages (renkei.1, renkei-audit-query.1, …) into a folder.
    Man {
        /// The folder to write (made if missing).
        #[arg(long)]
        out: PathBuf,
    },
    /// Operators: business statistics and batch status.
    Ops {
        #[command(subcommand)]
        action: crate::cli::ops::OpsAction,
    },
    /// Administrators: apply a changed renkei.toml and permission table without a restart.
    Config {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Signs a staff client in: asks the password and TOTP code (two lines on standard input
    /// when it is not a terminal) and keeps the session in clients/NAME/session.
    Login {
        #[command(flatten)]
        conn: Conn,
        /// The staff user, when not the certificate's name (several staff may share one).
        #[arg(long)]
        user: Option<String>,
    },
    /// Ends a staff client's session and forgets its token.
    Logout {
        #[command(flatten)]
        conn: Conn,
    },
    /// Staff users (admin): add, list, disable, enable, reset; passwd for your own password.
    Users {
        #[command(subcommand)]
        action: crate::cli::session::UsersAction,
    },
    /// Administrators: a consistent copy of the running gateway (store and files, not the
    /// master key) into a new folder, with a manifest signed by the gateway.
    Backup(crate::cli::backup::BackupArgs),
    /// Check a backup folder against its signed manifest and restore it into an empty folder
    /// (offline; nothing is written if any file is changed, missing or extra).
    Restore(crate::cli::backup::RestoreArgs),
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Re-read renkei.toml and the permission table and put them in force, all or nothing
    /// (as SIGHUP does); on any problem nothing changes and every problem is printed.
    Reload,
}

use staff_client::{query, Conn, StaffClient};

#[derive(Subcommand)]
enum KeysAction {
    /// Every key by purpose, version, state, creation time and what it protects.
    List {
        #[command(flatten)]
        output: OutputArg,
    },
    /// Re-encryption progress after an at-rest rotation.
    Status {
        /// Follow the re-encryption until nothing is left (a progress bar on a terminal).
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Make a new version active now.
    Rotate { purpose: PurposeArg },
    /// Destroy an old version (refused while something depends on it).
    Retire { purpose: PurposeArg, version: u32 },
    /// Pending rotations and retirements (two-person rule).
    Requests {
        #[command(flatten)]
        output: OutputArg,
    },
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
        #[arg(long, value_enum)]
        kind: Option<KindArg>,
        #[arg(long)]
        procedure: Option<String>,
        #[arg(long)]
        item: Option<String>,
        #[arg(long, value_enum)]
        result: Option<ResultArg>,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        /// Records per page (the gateway gives at most 1000).
        #[arg(long)]
        limit: Option<usize>,
        /// Start after this cursor: the `next_before` of a previous page (older records).
        #[arg(long)]
        cursor: Option<u64>,
        /// Follow the cursor page after page to the oldest record.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        output: OutputArg,
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
        /// Folder to write: a new or empty one (a folder with files in it is refused).
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
    let cli = match outcome::parse_or_exit::<Cli>() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let done = |r: Result<(), String>| r.map(|()| Outcome::Done).map_err(CliError::from);
    let result: CmdResult = match cli.command {
        Command::Init {
            dir,
            listen,
            sim_listen,
        } => done(
            crate::dev::init::init(
                &crate::dev::init::InitOptions {
                    dir: dir.clone(),
                    listen,
                    sim_listen,
                },
                &crate::dev::demo::seeds(),
            )
            .map_err(|e| e.to_string())
            .map(|_| {
                println!("Made a deployment in {}.", dir.display());
                println!("  renkei sim   --config {}/sim.toml", dir.display());
                println!("  renkei serve --config {}/renkei.toml", dir.display());
                println!("Staff users (scan each URI into an authenticator app, once):");
                crate::cli::session::print_first_logins(&dir);
            }),
        ),
        Command::Serve { config } => done(runtime().and_then(|rt| {
            rt.block_on(async {
                let cfg = GatewayConfig::load(&config).map_err(|e| e.to_string())?;
                crate::app::logging::init(cfg.log_format, None);
                let mut gw = crate::app::build(cfg).map_err(|e| e.to_string())?;
                gw.config_path = Some(config.clone());
                let running = crate::app::start(&gw).await.map_err(|e| e.to_string())?;
                crate::app::wait_for_signal().await;
                tracing::info!(message = "Shutting down.");
                running.stop().await;
                Ok(())
            })
        })),
        Command::Sim { config, capture } => done(runtime().and_then(|rt| {
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
        })),
        Command::Demo {
            dir,
            exit_after_flow,
        } => done(runtime().and_then(|rt| {
            rt.block_on(crate::dev::demo::run(crate::dev::demo::DemoOptions {
                dir,
                exit_after_flow,
            }))
            .map_err(|e| e.to_string())
        })),
        Command::Keys { conn, action } => in_runtime(|rt| rt.block_on(keys_cmd(conn, action))),
        Command::Audit { action } => in_runtime(|rt| rt.block_on(audit_cmd(action))),
        Command::Persons { action } => {
            in_runtime(|rt| rt.block_on(crate::cli::persons::run(action)))
        }
        Command::Inquiries { action } => {
            in_runtime(|rt| rt.block_on(crate::cli::inquiries::run(action)))
        }
        Command::Copies { action } => in_runtime(|rt| rt.block_on(crate::cli::copies::run(action))),
        Command::Schemas { action } => done(crate::cli::inquiries::run_schemas(action)),
        Command::Clients { action } => crate::cli::clients::run(action),
        Command::Store { action } => done(crate::cli::store::run(action)),
        Command::Bench(args) => done(runtime().and_then(|rt| {
            rt.block_on(crate::dev::bench::run(args))
                .map_err(|e| e.to_string())
        })),
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "renkei", &mut std::io::stdout());
            Ok(Outcome::Done)
        }
        Command::Man { out } => done(write_man_pages(&out)),
        Command::Ops { action } => {
            done(runtime().and_then(|rt| rt.block_on(crate::cli::ops::run(action))))
        }
        Command::Config { conn, action } => {
            done(runtime().and_then(|rt| rt.block_on(config_cmd(conn, action))))
        }
        Command::Login { conn, user } => {
            done(runtime().and_then(|rt| rt.block_on(crate::cli::session::login(conn, user))))
        }
        Command::Logout { conn } => {
            done(runtime().and_then(|rt| rt.block_on(crate::cli::session::logout(conn))))
        }
        Command::Users { action } => {
            done(runtime().and_then(|rt| rt.block_on(crate::cli::session::users(action))))
        }
        Command::Backup(args) => {
            done(runtime().and_then(|rt| rt.block_on(crate::cli::backup::backup(args))))
        }
        Command::Restore(args) => done(crate::cli::backup::restore(args)),
    };
    match result {
        Ok(outcome) => outcome.exit_code(),
        Err(e) => {
            eprintln!("renkei: {}", e.message());
            e.outcome().exit_code()
        }
    }
}

fn in_runtime(f: impl FnOnce(tokio::runtime::Runtime) -> CmdResult) -> CmdResult {
    f(runtime()?)
}

/// `renkei man --out DIR`: one page per command and subcommand, from the CLI definition.
fn write_man_pages(out: &std::path::Path) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot make {}: {e}", out.display()))?;
    let cmd = Cli::command();
    clap_mangen::generate_to(cmd, out)
        .map_err(|e| format!("cannot write man pages into {}: {e}", out.display()))?;
    let pages = std::fs::read_dir(out).map(|d| d.count()).unwrap_or(0);
    eprintln!("Wrote {pages} man pages to {}.", out.display());
    Ok(())
}

async fn config_cmd(conn: Conn, action: ConfigAction) -> Result<(), String> {
    match action {
        ConfigAction::Reload => {
            let c = staff(&conn, crate::dev::init::CLIENT_ADMIN)?;
            let (status, body) = c
                .call(
                    hyper::Method::POST,
                    "/v1/admin/config/reload",
                    &[],
                    bytes::Bytes::new(),
                )
                .await?;
            let v: serde_json::Value =
                serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            match status {
                200 => {
                    print_json(&v["reloaded"]);
                    Ok(())
                }
                422 => {
                    let problems = v["problems"].as_array().cloned().unwrap_or_default();
                    for p in &problems {
                        println!("{}", p.as_str().unwrap_or_default());
                    }
                    Err(format!(
                        "configuration not reloaded ({} problem{}); the one in force stays",
                        problems.len(),
                        if problems.len() == 1 { "" } else { "s" }
                    ))
                }
                _ => Err(format!(
                    "configuration not reloaded: HTTP {status} {}",
                    v["code"].as_str().unwrap_or_default()
                )),
            }
        }
    }
}

fn staff(conn: &Conn, default_name: &str) -> Result<StaffClient, String> {
    conn.client(Some(default_name))
}

fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Columns of `keys list`.
const KEY_COLUMNS: &[Column] = &[
    col("purpose"),
    col("version"),
    col("status"),
    col("created_at"),
    col("fingerprint"),
    col("protects"),
];

/// Columns of the audit records listing (the gateway's own CSV header, in its order).
const RECORD_COLUMNS: &[Column] = &[
    col("seq"),
    col("kind"),
    col("requested_at"),
    col("provided_at"),
    col("inquirer"),
    col("provider"),
    col("procedure"),
    col("item"),
    col("person"),
    col("business_system"),
    col("serial"),
    col("result"),
    col("reason"),
    col("non_disclosure"),
    Column {
        header: "staff_actor",
        path: "/staff/actor",
    },
    Column {
        header: "staff_action",
        path: "/staff/action",
    },
    Column {
        header: "staff_terminal",
        path: "/staff/terminal",
    },
    col("reference"),
];

/// The columns of the audit table for reading (CSV has all of [`RECORD_COLUMNS`]).
const RECORD_TABLE_COLUMNS: &[Column] = &[
    col("seq"),
    col("kind"),
    col("requested_at"),
    col("business_system"),
    col("procedure"),
    col("item"),
    col("person"),
    col("result"),
    col("reason"),
];

/// How often `keys status --wait` asks for the re-encryption progress.
const REENCRYPT_POLL: std::time::Duration = std::time::Duration::from_millis(500);

async fn follow_reencryption(c: &StaffClient) -> Result<serde_json::Value, String> {
    use hyper::Method;
    let mut v = c.json(Method::GET, "/v1/keys/status", None).await?;
    let total = v["remaining"].as_u64().unwrap_or(0);
    let bar = progress::items(total);
    bar.set_message("values re-encrypted");
    let mut last = None;
    while let Some(left) = v["remaining"].as_u64().filter(|n| *n > 0) {
        if bar.is_hidden() && last != Some(left) {
            eprintln!("{left} values still to re-encrypt");
        }
        last = Some(left);
        bar.set_length(total.max(left));
        bar.set_position(total.max(left) - left);
        tokio::time::sleep(REENCRYPT_POLL).await;
        v = c.json(Method::GET, "/v1/keys/status", None).await?;
    }
    bar.finish_and_clear();
    eprintln!("Every stored value is under the active at-rest key.");
    Ok(v)
}

async fn keys_cmd(conn: Conn, action: KeysAction) -> CmdResult {
    let c = staff(&conn, "security-officer")?;
    use hyper::Method;
    let v = match action {
        KeysAction::List { output } => {
            let v = c.json(Method::GET, "/v1/keys", None).await?;
            print_listing(output.format(), &v, &rows_of(&v, None), KEY_COLUMNS)?;
            return Ok(Outcome::Done);
        }
        KeysAction::Status { wait, output } => {
            let v = if wait {
                follow_reencryption(&c).await?
            } else {
                c.json(Method::GET, "/v1/keys/status", None).await?
            };
            print_listing(output.format(), &v, &rows_of(&v, None), &[])?;
            return Ok(Outcome::Done);
        }
        KeysAction::Requests { output } => {
            let v = c.json(Method::GET, "/v1/keys/requests", None).await?;
            print_listing(output.format(), &v, &rows_of(&v, None), &[])?;
            return Ok(Outcome::Done);
        }
        KeysAction::Rotate { purpose } => {
            c.json(
                Method::POST,
                &format!("/v1/keys/{}/rotate", purpose.api_name()),
                None,
            )
            .await?
        }
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
                &format!("/v1/keys/{}/{version}/retire", purpose.api_name()),
                None,
            )
            .await?
        }
    };
    print_json(&v);
    Ok(Outcome::Done)
}

/// The cursor of the next (older) page of records, if there is one.
fn next_cursor(page: &serde_json::Value) -> Option<u64> {
    page["next_before"]
        .as_u64()
        .or_else(|| page["next_cursor"].as_u64())
}

/// `true` when `dir` exists and holds anything.
fn not_empty(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
}

async fn audit_cmd(action: AuditAction) -> CmdResult {
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
            cursor,
            all,
            output,
        } => {
            let c = staff(&conn, "auditor")?;
            let limit = limit.map(|l| l.to_string());
            let (kind, result) = (kind.map(KindArg::api_name), result.map(ResultArg::api_name));
            let mut before = cursor;
            let mut rows = Vec::new();
            let answer = loop {
                let before_s = before.map(|b| b.to_string());
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
                    ("before", before_s.as_deref()),
                ]);
                let page = c
                    .json(Method::GET, &format!("/v1/audit/records{q}"), None)
                    .await?;
                rows.extend(rows_of(&page, Some("records")));
                match next_cursor(&page) {
                    Some(next) if all && before != Some(next) => before = Some(next),
                    _ if all => break serde_json::json!({ "records": rows }),
                    _ => break page,
                }
            };
            let columns = if output.format() == output::Output::Table {
                RECORD_TABLE_COLUMNS
            } else {
                RECORD_COLUMNS
            };
            print_listing(output.format(), &answer, &rows, columns)?;
            Ok(Outcome::Done)
        }
        AuditAction::Export {
            conn,
            from,
            to,
            person,
            out,
        } => {
            // Refused before anything is asked, and no --force: a bundle is verified as a
            // folder, and one mixed with an older bundle's files would mislead (or fail) its
            // verification; removing someone's folder is theirs to decide.
            if not_empty(&out) {
                return Err(format!(
                    "{} is not empty: export into a new or empty folder",
                    out.display()
                )
                .into());
            }
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
                    return Err(
                        "the gateway sent a bundle file name that is not a plain file name".into(),
                    );
                }
                std::fs::write(out.join(name), text.as_str().unwrap_or_default())
                    .map_err(|e| format!("{}: {e}", out.display()))?;
            }
            println!(
                "Wrote {} records in {} files to {}.",
                v["records"].as_u64().unwrap_or(0),
                files.len(),
                out.display()
            );
            println!(
                "Verify offline: renkei audit verify {} --public-key KEY.pem",
                out.display()
            );
            Ok(Outcome::Done)
        }
        AuditAction::Verify {
            bundle,
            public_key,
            live,
            since,
            conn,
        } => {
            if let Some(since) = since {
                let key_path = public_key.ok_or(CliError::usage(
                    "give --public-key (your copy of the gateway's checkpoint keys, PEM)",
                ))?;
                audit::verify_since(&staff(&conn, "auditor")?, &since, &key_path).await?;
                return Ok(Outcome::Done);
            }
            if live {
                let c = staff(&conn, "auditor")?;
                let v = c.json(Method::GET, "/v1/audit/verify", None).await?;
                print_json(&v);
                return if v["ok"].as_bool() == Some(true) {
                    Ok(Outcome::Done)
                } else {
                    Err("the stored log did not verify".into())
                };
            }
            let bundle = bundle.ok_or(CliError::usage("give the bundle folder, or --live"))?;
            let key_path = public_key.ok_or(CliError::usage(
                "give --public-key (the gateway's checkpoint public keys, PEM)",
            ))?;
            let key =
                std::fs::read(&key_path).map_err(|e| format!("{}: {e}", key_path.display()))?;
            match renkei_records::verify_bundle(&bundle, &key) {
                Ok(r) => {
                    println!(
                        "OK: {} records ({} swept), seq {}..{}, {} checkpoints verified, chain head {}",
                        r.records, r.swept, r.first_seq, r.end_seq, r.checkpoints_verified, r.chain_head
                    );
                    Ok(Outcome::Done)
                }
                Err(e) => Err(format!("bundle does NOT verify: {e}").into()),
            }
        }
        AuditAction::Checkpoint {
            out,
            public_key,
            conn,
        } => {
            audit::save_checkpoint(&staff(&conn, "auditor")?, &out, public_key.as_deref()).await?;
            Ok(Outcome::Done)
        }
        AuditAction::PublicKeys { conn } => {
            let c = staff(&conn, "auditor")?;
            let v = c.json(Method::GET, "/v1/audit/public-keys", None).await?;
            for (ver, pem) in v.as_object().cloned().unwrap_or_default() {
                println!(
                    "# signing key version {ver}\n{}",
                    pem.as_str().unwrap_or("")
                );
            }
            Ok(Outcome::Done)
        }
    }
}

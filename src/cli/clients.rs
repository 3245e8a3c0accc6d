//! `renkei clients add | revoke | list`: client certificates of a deployment folder made by
//! `renkei init` — issued by its CA (or signed from a request made on the business system's
//! own machine), listed in `renkei.toml`, and revoked through the CRL the gateway reloads.
//!
//! These commands work on the folder's files (the CA key is there in a development
//! deployment), not through the running gateway. A revocation takes effect in the running
//! gateway within seconds; a newly added client is served after a restart (the client list
//! is read at start; there is no configuration reload yet).

use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::outcome::{CmdResult, Outcome};
use super::output::{col, print_listing, Column, OutputArg};
use super::values::RoleArg;
use crate::config::{GatewayConfig, Role};
use crate::keys::pki::{certificate_facts, revoked_serials, DevCa, CRL_FILE};

#[derive(Subcommand)]
pub enum ClientsAction {
    /// Issue a client certificate into D/clients/NAME/ and list the client in renkei.toml.
    Add {
        /// The client's name: its certificate's common name, e.g. `kaigo`.
        name: String,
        /// What the client may do.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// The 事務コード a business system's inquiries are made under (JM…).
        #[arg(long)]
        affair: Option<String>,
        /// Sign this certificate request (PEM, e.g. from `openssl req`) instead of making a
        /// key here: the key stays on the business system's machine.
        #[arg(long)]
        csr: Option<PathBuf>,
        /// The deployment folder.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Put a client's certificate on the deployment's CRL (D/crl.pem); the running gateway
    /// refuses it within seconds.
    Revoke {
        name: String,
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Every configured client with its role and certificate expiry.
    List {
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        #[command(flatten)]
        output: OutputArg,
    },
}

fn cert_path(dir: &Path, name: &str) -> PathBuf {
    dir.join("clients").join(name).join("cert.pem")
}

fn role_name(role: Role) -> String {
    serde_json::to_value(role)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Runs one `renkei clients` command.
pub fn run(action: ClientsAction) -> CmdResult {
    let done = match action {
        ClientsAction::Add {
            name,
            role,
            affair,
            csr,
            dir,
        } => add(&dir, &name, role.into(), affair.as_deref(), csr.as_deref()),
        ClientsAction::Revoke { name, dir } => revoke(&dir, &name),
        ClientsAction::List { dir, output } => list(&dir, output),
    };
    done?;
    Ok(Outcome::Done)
}

fn add(
    dir: &Path,
    name: &str,
    role: Role,
    affair: Option<&str>,
    csr: Option<&Path>,
) -> Result<(), String> {
    renkei_ids::SystemId::parse(name)
        .map_err(|_| "the client name must be lower-case letters, digits and '-'".to_string())?;
    let config = dir.join("renkei.toml");
    let text =
        std::fs::read_to_string(&config).map_err(|e| format!("{}: {e}", config.display()))?;
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| format!("{}: {e}", config.display()))?;
    let clients = doc
        .get_mut("clients")
        .and_then(|c| c.as_array_of_tables_mut())
        .ok_or("renkei.toml has no [[clients]]")?;
    if clients
        .iter()
        .any(|t| t.get("name").and_then(|n| n.as_str()) == Some(name))
    {
        return Err(format!("renkei.toml already lists a client {name}"));
    }
    let cdir = dir.join("clients").join(name);
    if cdir.join("cert.pem").exists() {
        return Err(format!("{} already holds a certificate", cdir.display()));
    }
    let mut entry = toml_edit::Table::new();
    entry.insert("name", toml_edit::value(name));
    entry.insert("role", toml_edit::value(role_name(role)));
    if let Some(a) = affair {
        let mut affairs = toml_edit::Array::new();
        affairs.push(a);
        entry.insert("affairs", toml_edit::value(affairs));
    }
    clients.push(entry);
    // The new config must load as a whole before anything is issued or replaced.
    let staged = dir.join(".renkei.toml.new");
    crate::fsutil::write_public(&staged, doc.to_string().as_bytes())
        .map_err(|e| format!("{}: {e}", staged.display()))?;
    if let Err(e) = GatewayConfig::load(&staged) {
        let _ = std::fs::remove_file(&staged);
        return Err(e.to_string());
    }
    let ca = DevCa::load(dir).map_err(|e| e.to_string())?;
    let issued = match csr {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("{}: {e}", path.display()))
            .and_then(|pem| {
                ca.sign_request(&cdir, &pem, name)
                    .map_err(|e| e.to_string())
            }),
        None => ca
            .issue_client(&cdir, name, "cert.pem", "key.pem")
            .map_err(|e| e.to_string()),
    };
    if let Err(e) = issued {
        let _ = std::fs::remove_file(&staged);
        return Err(e);
    }
    std::fs::rename(&staged, &config).map_err(|e| format!("{}: {e}", config.display()))?;
    println!(
        "Issued {} and listed {name} ({}) in {}.",
        cdir.join("cert.pem").display(),
        role_name(role),
        config.display()
    );
    println!("Restart the gateway to serve it (the client list is read at start).");
    Ok(())
}

fn revoke(dir: &Path, name: &str) -> Result<(), String> {
    let (serial, _) = certificate_facts(&cert_path(dir, name)).map_err(|e| e.to_string())?;
    let crl = dir.join(CRL_FILE);
    DevCa::load(dir)
        .and_then(|ca| ca.revoke(&crl, &[serial]))
        .map_err(|e| e.to_string())?;
    println!(
        "Revoked {name}'s certificate on {}; a gateway with it in tls.crl refuses it within seconds.",
        crl.display()
    );
    Ok(())
}

/// Columns of `clients list`.
const CLIENT_COLUMNS: &[Column] = &[col("name"), col("role"), col("expires"), col("state")];

fn list(dir: &Path, output: OutputArg) -> Result<(), String> {
    let config = GatewayConfig::load(&dir.join("renkei.toml")).map_err(|e| e.to_string())?;
    let revoked = revoked_serials(&dir.join(CRL_FILE)).map_err(|e| e.to_string())?;
    let now = time::OffsetDateTime::now_utc();
    let rows: Vec<serde_json::Value> = config
        .clients
        .iter()
        .map(|c| {
            let (expires, state) = match certificate_facts(&cert_path(dir, c.name.as_str())) {
                Ok((serial, not_after)) => (
                    Some(not_after.date().to_string()),
                    if revoked.contains(&serial) {
                        "revoked"
                    } else if not_after < now {
                        "expired"
                    } else {
                        "valid"
                    },
                ),
                Err(_) => (None, "no certificate in this folder"),
            };
            serde_json::json!({
                "name": c.name.as_str(),
                "role": role_name(c.role),
                "expires": expires,
                "state": state,
            })
        })
        .collect();
    print_listing(
        output.format(),
        &serde_json::Value::Array(rows.clone()),
        &rows,
        CLIENT_COLUMNS,
    )
}

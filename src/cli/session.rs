//! `renkei login | logout | users …`: staff sign-in from the command line. `login` asks the
//! password and the TOTP code on a terminal (or reads them as two lines from standard input
//! when it is not one) and keeps the token in `clients/NAME/session` (0600), which every
//! staff command then sends; `users` is the admin's staff-user management.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use clap::Subcommand;
use hyper::Method;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::staff_client::{session_file, Conn};
use crate::dev::init::first_login_file;

/// `renkei users …` (admin, except `passwd`).
#[derive(Subcommand)]
pub enum UsersAction {
    /// Adds a staff user bound to a configured staff client certificate; prints the
    /// first-login secrets once and writes them to `staff/NAME/first-login.json` (0600).
    Add {
        #[command(flatten)]
        conn: Conn,
        /// The new user's name.
        user: String,
        /// The client certificate the user signs in with (default: the user's name).
        #[arg(long)]
        certificate: Option<String>,
    },
    /// Lists staff users (name, certificate, disabled, locked).
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// Disables a user: their sessions end at once.
    Disable {
        #[command(flatten)]
        conn: Conn,
        user: String,
    },
    /// Enables a disabled user (and clears a lockout).
    Enable {
        #[command(flatten)]
        conn: Conn,
        user: String,
    },
    /// Issues new first-login secrets for a user (their sessions end).
    Reset {
        #[command(flatten)]
        conn: Conn,
        user: String,
    },
    /// Changes your own password (asks the current one, a TOTP code and the new one).
    Passwd {
        #[command(flatten)]
        conn: Conn,
    },
}

/// Reads secrets: prompted without echo on a terminal, else one line each from stdin.
fn read_secrets(prompts: &[&str]) -> Result<Vec<Zeroizing<String>>, String> {
    if std::io::stdin().is_terminal() {
        prompts
            .iter()
            .map(|p| {
                rpassword::prompt_password(format!("{p}: "))
                    .map(Zeroizing::new)
                    .map_err(|e| format!("cannot read from the terminal: {e}"))
            })
            .collect()
    } else {
        let stdin = std::io::stdin();
        let mut lines = stdin.lock();
        prompts
            .iter()
            .map(|p| {
                let mut line = Zeroizing::new(String::new());
                match lines.read_line(&mut line) {
                    Ok(0) | Err(_) => Err(format!("expected the {} on standard input", p)),
                    Ok(_) => Ok(Zeroizing::new(
                        line.trim_end_matches(['\r', '\n']).to_string(),
                    )),
                }
            })
            .collect()
    }
}

fn name_of(conn: &Conn) -> Result<&str, String> {
    conn.as_name
        .as_deref()
        .ok_or_else(|| "say who signs in: --as NAME".to_string())
}

/// `renkei login --as NAME [--user USER]`.
pub async fn login(conn: Conn, user: Option<String>) -> Result<(), String> {
    let name = name_of(&conn)?.to_string();
    let user = user.unwrap_or_else(|| name.clone());
    let secrets = read_secrets(&["password", "TOTP code"])?;
    let c = conn.client(None)?;
    let body = json!({"user": user, "password": secrets[0].as_str(), "totp": secrets[1].as_str()});
    let v = c.json(Method::POST, "/v1/session", Some(body)).await?;
    let token = Zeroizing::new(v["token"].as_str().unwrap_or_default().to_string());
    if token.is_empty() {
        return Err("the gateway's answer had no token".into());
    }
    let file = session_file(&conn.dir, &name);
    crate::fsutil::write_private(&file, token.as_bytes())
        .map_err(|e| format!("{}: {e}", file.display()))?;
    println!(
        "Signed in as {user}; the session ends at {} if unused.",
        v["expires_at"].as_str().unwrap_or("-")
    );
    Ok(())
}

/// `renkei logout --as NAME`: ends the session on the gateway and forgets the token.
pub async fn logout(conn: Conn) -> Result<(), String> {
    let name = name_of(&conn)?.to_string();
    let file = session_file(&conn.dir, &name);
    if !file.exists() {
        println!("Not signed in as {name}.");
        return Ok(());
    }
    let c = conn.client(None)?;
    let ended = c
        .call(Method::DELETE, "/v1/session", &[], bytes::Bytes::new())
        .await;
    let _ = std::fs::remove_file(&file);
    match ended {
        Ok((204, _)) => println!("Signed out {name}."),
        // An expired session is over already; the token is forgotten either way.
        _ => println!("Signed out {name} (the session had already ended)."),
    }
    Ok(())
}

/// Writes and prints a user's first-login secrets.
fn hand_out(dir: &Path, v: &Value) -> Result<(), String> {
    let user = v["user"].as_str().unwrap_or_default();
    let secret = v["totp_secret"].as_str().unwrap_or_default();
    if !crate::staff::valid_user_name(user) {
        return Err("the gateway's answer named no valid user".into());
    }
    let file = first_login_file(dir, user);
    if let Some(p) = file.parent() {
        std::fs::create_dir_all(p).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    let text = Zeroizing::new(serde_json::to_vec_pretty(v).map_err(|e| e.to_string())?);
    crate::fsutil::write_private(&file, &text).map_err(|e| format!("{}: {e}", file.display()))?;
    println!(
        "First-login secrets for {user} written to {}.",
        file.display()
    );
    println!("  {}", otpauth_uri(user, secret));
    Ok(())
}

/// The `otpauth://` URI an authenticator app scans.
pub fn otpauth_uri(user: &str, secret: &str) -> String {
    format!("otpauth://totp/renkei:{user}?secret={secret}&issuer=renkei")
}

/// Prints each staff user's `otpauth://` URI from the first-login files `renkei init` wrote.
pub fn print_first_logins(dir: &Path) {
    for (name, _) in crate::dev::init::STAFF_CLIENTS {
        let file = first_login_file(dir, name);
        let Ok(text) = std::fs::read(&file).map(Zeroizing::new) else {
            continue;
        };
        let v: Value = serde_json::from_slice(&text).unwrap_or(Value::Null);
        println!(
            "  {name}: {} (password in {})",
            otpauth_uri(name, v["totp_secret"].as_str().unwrap_or_default()),
            file.display()
        );
    }
}

/// `renkei users …`.
pub async fn users(action: UsersAction) -> Result<(), String> {
    match action {
        UsersAction::Add {
            conn,
            user,
            certificate,
        } => {
            let c = conn.client(Some(crate::dev::init::CLIENT_ADMIN))?;
            let v = c
                .json(
                    Method::POST,
                    "/v1/staff/users",
                    Some(json!({"user": user, "certificate": certificate})),
                )
                .await?;
            hand_out(&conn.dir, &v)
        }
        UsersAction::List { conn } => {
            let c = conn.client(Some(crate::dev::init::CLIENT_ADMIN))?;
            let v = c.json(Method::GET, "/v1/staff/users", None).await?;
            println!(
                "{:<24} {:<24} {:<9} {:<7} created",
                "user", "certificate", "disabled", "locked"
            );
            for u in v["users"].as_array().cloned().unwrap_or_default() {
                println!(
                    "{:<24} {:<24} {:<9} {:<7} {}",
                    u["user"].as_str().unwrap_or(""),
                    u["certificate"].as_str().unwrap_or(""),
                    u["disabled"],
                    u["locked"],
                    u["created_at"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
        UsersAction::Disable { conn, user } => {
            change(&conn, &user, "disable").await?;
            println!("Disabled {user}; their sessions have ended.");
            Ok(())
        }
        UsersAction::Enable { conn, user } => {
            change(&conn, &user, "enable").await?;
            println!("Enabled {user}.");
            Ok(())
        }
        UsersAction::Reset { conn, user } => {
            let c = conn.client(Some(crate::dev::init::CLIENT_ADMIN))?;
            let v = c
                .json(Method::POST, &user_path(&user, "reset")?, None)
                .await?;
            hand_out(&conn.dir, &v)
        }
        UsersAction::Passwd { conn } => {
            let name = name_of(&conn)?.to_string();
            let s = read_secrets(&["current password", "TOTP code", "new password"])?;
            let c = conn.client(None)?;
            c.json(
                Method::POST,
                "/v1/session/password",
                Some(json!({
                    "current_password": s[0].as_str(),
                    "totp": s[1].as_str(),
                    "new_password": s[2].as_str(),
                })),
            )
            .await?;
            println!("Changed the password of {name}.");
            let _ = std::io::stdout().flush();
            Ok(())
        }
    }
}

fn user_path(user: &str, what: &str) -> Result<String, String> {
    if !crate::staff::valid_user_name(user) {
        return Err("user: 1 to 64 of a-z, 0-9, '.', '_', '-'".into());
    }
    Ok(format!("/v1/staff/users/{user}/{what}"))
}

async fn change(conn: &Conn, user: &str, what: &str) -> Result<(), String> {
    let c = conn.client(Some(crate::dev::init::CLIENT_ADMIN))?;
    let (status, body) = c
        .call(
            Method::POST,
            &user_path(user, what)?,
            &[],
            bytes::Bytes::new(),
        )
        .await?;
    if status != 204 {
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        return Err(format!(
            "gateway answered {status}: {} {}",
            v["code"].as_str().unwrap_or(""),
            v["detail"].as_str().unwrap_or("")
        ));
    }
    Ok(())
}

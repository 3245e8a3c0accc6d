//! `renkei persons …`: the resident-record import (the file is streamed to the running
//! gateway, with a progress line on a terminal), searches and merges. Each is an HTTPS client
//! of the gateway authenticated with a client certificate, like `renkei keys`.
//!
//! The individual number is never taken as a command-line argument (it would show in the
//! process list and shell history): `by-individual-number` reads it from standard input.

use std::path::PathBuf;

use bytes::Bytes;

use super::outcome::{CliError, CmdResult, Outcome};
use super::output::{col, print_listing, rows_of, Column, OutputArg};
use super::staff_client::{query, refusal, Conn};

/// Columns of a person search (what the gateway shows of a person).
const PERSON_COLUMNS: &[Column] = &[
    col("unified_address_number"),
    col("business_number"),
    col("status"),
    Column {
        header: "code_status",
        path: "/code/status",
    },
    Column {
        header: "code_attempts",
        path: "/code/attempts",
    },
    col("merged_from"),
];

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
        /// The client feeding the file (its certificate under clients/; default: the
        /// resident-record feed `jukiban`, the only client allowed to import); same as --as.
        #[arg(long = "system")]
        system: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Look a person up by the caller's business number or by unified address number.
    Lookup {
        #[arg(long)]
        business_number: Option<String>,
        #[arg(long)]
        unified: Option<String>,
        #[command(flatten)]
        output: OutputArg,
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
        #[command(flatten)]
        output: OutputArg,
        #[command(flatten)]
        conn: Conn,
    },
    /// Security officers: the unified number of an individual number read from standard input.
    ByIndividualNumber {
        #[command(flatten)]
        conn: Conn,
    },
    /// Security officers: merge two unified numbers found to be one person.
    Merge {
        #[arg(long)]
        from: String,
        #[arg(long)]
        into: String,
        #[command(flatten)]
        conn: Conn,
    },
}

fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Runs a `renkei persons` subcommand.
pub async fn run(action: PersonsAction) -> CmdResult {
    use hyper::Method;
    match action {
        PersonsAction::Import {
            file,
            layout,
            system,
            conn,
        } => {
            let name = system
                .as_deref()
                .or(conn.as_name.as_deref())
                .unwrap_or(crate::dev::init::CLIENT_FEED);
            let c = conn.client(Some(name))?;
            let path = format!("/v1/persons:import{}", query(&[("layout", Some(&layout))]));
            let v = c.upload_file(&path, &file).await?;
            print_json(&v);
            let rejected = v["rejected_count"].as_u64().unwrap_or(0);
            if rejected > 0 {
                eprintln!(
                    "{rejected} line(s) refused; fix them and import the file again (applied lines are skipped)."
                );
            }
            Ok(Outcome::rejecting(rejected))
        }
        PersonsAction::Lookup {
            business_number,
            unified,
            output,
            conn,
        } => {
            let c = conn.client(None)?;
            let q = match (business_number, unified) {
                (Some(b), None) => query(&[("business_number", Some(&b))]),
                (None, Some(u)) => query(&[("unified", Some(&u))]),
                _ => {
                    return Err(CliError::usage(
                        "give exactly one of --business-number or --unified",
                    ))
                }
            };
            let v = c
                .json(Method::GET, &format!("/v1/persons:lookup{q}"), None)
                .await?;
            print_listing(output.format(), &v, &rows_of(&v, None), PERSON_COLUMNS)?;
            Ok(Outcome::Done)
        }
        PersonsAction::Match {
            kana,
            name,
            birth_date,
            sex,
            address,
            output,
            conn,
        } => {
            let c = conn.client(None)?;
            let body = serde_json::json!({
                "kana": kana, "name": name, "birth_date": birth_date, "sex": sex, "address": address,
            });
            let v = c
                .json(Method::POST, "/v1/persons:match", Some(body))
                .await?;
            print_listing(
                output.format(),
                &v,
                &rows_of(&v, Some("persons")),
                PERSON_COLUMNS,
            )?;
            Ok(Outcome::Done)
        }
        PersonsAction::ByIndividualNumber { conn } => {
            let c = conn.client(Some("security-officer"))?;
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
                return Err(refusal(status, &out).into());
            }
            print_json(&v);
            Ok(Outcome::Done)
        }
        PersonsAction::Merge { from, into, conn } => {
            let c = conn.client(Some("security-officer"))?;
            let body = serde_json::json!({"from": from, "into": into});
            print_json(
                &c.json(Method::POST, "/v1/persons:merge", Some(body))
                    .await?,
            );
            Ok(Outcome::Done)
        }
    }
}

//! `renkei copies …`: bulk registration of copies (副本) from a file, streamed to the running
//! gateway (`POST /v1/copies:import`) as the business system named by `--as`, with the
//! summary on stdout and each refused line on stderr (exit 3 when there are any).

use std::path::PathBuf;

use super::outcome::{CmdResult, Outcome};
use super::staff_client::{query, Conn};

/// The file formats `copies import` takes (checked before anything is sent).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// CSV, UTF-8, a header line of the field names.
    Csv,
    /// Fixed-width Shift_JIS (CP932), CRLF.
    Fixed,
}

impl FormatArg {
    fn as_str(self) -> &'static str {
        match self {
            FormatArg::Csv => "csv",
            FormatArg::Fixed => "fixed",
        }
    }
}

/// Subcommands of `renkei copies`.
#[derive(clap::Subcommand)]
pub enum CopiesAction {
    /// Register copies of one item from a file, one version a line (per line: good lines are
    /// registered, bad ones listed; replaying the file makes nothing new).
    Import {
        /// The file: business_number, dataset, effective_from, effective_to, non_disclosure,
        /// then the item's fields (schemas/copies/ITEM.toml), in that order.
        file: PathBuf,
        /// The item (特定個人情報名コード) whose copies the file holds, e.g. TM00000000000002.
        #[arg(long)]
        item: String,
        /// csv (UTF-8, header line) or fixed (fixed-width Shift_JIS).
        #[arg(long, value_enum, default_value_t = FormatArg::Csv)]
        format: FormatArg,
        #[command(flatten)]
        conn: Conn,
    },
}

/// Runs a `renkei copies` subcommand.
pub async fn run(action: CopiesAction) -> CmdResult {
    match action {
        CopiesAction::Import {
            file,
            item,
            format,
            conn,
        } => {
            let c = conn.client(None)?;
            let path = format!(
                "/v1/copies:import{}",
                query(&[
                    ("item_code", Some(&item)),
                    ("format", Some(format.as_str()))
                ])
            );
            let v = c.upload_file(&path, &file).await?;
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            for r in v["rejected"].as_array().into_iter().flatten() {
                eprintln!(
                    "line {}: {}: {}",
                    r["line"],
                    r["field"].as_str().unwrap_or("-"),
                    r["code"].as_str().unwrap_or_default()
                );
            }
            let rejected = v["rejected_count"].as_u64().unwrap_or(0);
            if rejected > 0 {
                eprintln!(
                    "{rejected} line(s) refused; fix them and import the file again (registered lines are skipped)."
                );
            }
            Ok(Outcome::rejecting(rejected))
        }
    }
}

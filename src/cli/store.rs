//! `renkei store migrate|copy|status`: the PostgreSQL schema, and moving a deployment's whole
//! state between the embedded store and PostgreSQL.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};

use crate::config::{GatewayConfig, StoreBackend};

/// A store backend named on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BackendArg {
    /// The embedded store under `<data_dir>/store`.
    Sled,
    /// The PostgreSQL database of `[store] url`.
    Postgres,
}

impl From<BackendArg> for StoreBackend {
    fn from(b: BackendArg) -> Self {
        match b {
            BackendArg::Sled => StoreBackend::Sled,
            BackendArg::Postgres => StoreBackend::Postgres,
        }
    }
}

#[derive(Subcommand)]
pub enum StoreAction {
    /// Apply the embedded schema migrations to the PostgreSQL database of `[store] url`
    /// (safe to run again; refuses a database newer than this build).
    Migrate {
        #[arg(long)]
        config: PathBuf,
    },
    /// Copy every tree from one backend to the other (the target must be empty; stop every
    /// gateway first), then verify the linkage records' chain on the target. Both locations
    /// come from the configuration: `<data_dir>/store` for sled, `[store] url` for PostgreSQL.
    Copy {
        #[arg(long)]
        config: PathBuf,
        #[arg(long, value_enum)]
        from: BackendArg,
        #[arg(long, value_enum)]
        to: BackendArg,
    },
}

/// Runs a `renkei store` command.
pub fn run(action: StoreAction) -> Result<(), String> {
    match action {
        StoreAction::Migrate { config } => {
            let cfg = GatewayConfig::load(&config).map_err(|e| e.to_string())?;
            let m = crate::app::store::migrate(&cfg).map_err(|e| e.to_string())?;
            if m.from == m.to {
                println!("The database schema is already at version {}.", m.to);
            } else {
                println!(
                    "The database schema is now at version {} (was {}).",
                    m.to, m.from
                );
            }
            Ok(())
        }
        StoreAction::Copy { config, from, to } => {
            let (from, to): (StoreBackend, StoreBackend) = (from.into(), to.into());
            if from == to {
                return Err("--from and --to name the same store".into());
            }
            let cfg = GatewayConfig::load(&config).map_err(|e| e.to_string())?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the runtime: {e}"))?;
            let copied = rt
                .block_on(crate::app::store::copy(&cfg, from, to))
                .map_err(|e| e.to_string())?;
            for (tree, n) in &copied.trees {
                println!("{tree:>16}  {n} entries");
            }
            println!(
                "Copied; {} linkage records verify on the target.",
                copied.records_verified
            );
            Ok(())
        }
    }
}

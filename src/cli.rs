//! The command line: `renkei init | serve | sim | demo | …`. Each subcommand is a thin shell
//! over library functions.

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
        #[arg(long, default_value = crate::demo::DEFAULT_DEMO_DIR)]
        dir: PathBuf,
        /// Exit after the sample flow instead of serving until Ctrl-C.
        #[arg(long)]
        exit_after_flow: bool,
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
    crate::tls::install_default_provider();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Init {
            dir,
            listen,
            sim_listen,
        } => crate::init::init(
            &crate::init::InitOptions {
                dir: dir.clone(),
                listen,
                sim_listen,
            },
            &crate::demo::seeds(),
        )
        .map(|_| {
            println!("Made a deployment in {}.", dir.display());
            println!("  renkei sim   --config {}/sim.toml", dir.display());
            println!("  renkei serve --config {}/renkei.toml", dir.display());
        }),
        Command::Serve { config } => runtime().and_then(|rt| {
            rt.block_on(async {
                let cfg = GatewayConfig::load(&config).map_err(|e| e.to_string())?;
                crate::logging::init(cfg.log_format, None);
                let gw = crate::run::build_gateway(cfg)?;
                let running = crate::run::start_gateway(gw).await?;
                crate::run::wait_for_signal().await;
                tracing::info!(message = "Shutting down.");
                running.stop().await;
                Ok(())
            })
        }),
        Command::Sim { config, capture } => runtime().and_then(|rt| {
            rt.block_on(async {
                let cfg = SimConfig::load(&config).map_err(|e| e.to_string())?;
                crate::logging::init(cfg.log_format, None);
                let (running, _) = crate::run::start_sim(cfg, capture).await?;
                crate::run::wait_for_signal().await;
                running.stop().await;
                Ok(())
            })
        }),
        Command::Demo {
            dir,
            exit_after_flow,
        } => runtime().and_then(|rt| {
            rt.block_on(crate::demo::run(crate::demo::DemoOptions {
                dir,
                exit_after_flow,
            }))
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("renkei: {e}");
            ExitCode::FAILURE
        }
    }
}

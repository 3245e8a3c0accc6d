//! `renkei persons …`: bulk feeds and searches from the command line (being built).

/// Subcommands of `renkei persons`.
#[derive(clap::Subcommand)]
pub enum PersonsAction {
    /// Placeholder until the import lands.
    Info,
}

/// Runs a `renkei persons` subcommand.
pub async fn run(action: PersonsAction) -> Result<(), String> {
    match action {
        PersonsAction::Info => Ok(()),
    }
}

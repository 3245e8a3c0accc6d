//! `renkei inquiries …` and `renkei schemas …` (being built).

/// Subcommands of `renkei inquiries`.
#[derive(clap::Subcommand)]
pub enum InquiriesAction {
    /// Placeholder until batch submission lands.
    Info,
}

/// Runs a `renkei inquiries` subcommand.
pub async fn run(action: InquiriesAction) -> Result<(), String> {
    match action {
        InquiriesAction::Info => Ok(()),
    }
}

/// Subcommands of `renkei schemas`.
#[derive(clap::Subcommand)]
pub enum SchemasAction {
    /// Placeholder until the schema check lands.
    Info,
}

/// Runs a `renkei schemas` subcommand.
pub fn run_schemas(action: SchemasAction) -> Result<(), String> {
    match action {
        SchemasAction::Info => Ok(()),
    }
}

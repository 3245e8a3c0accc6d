//! Log set-up: key/value lines (text or JSON) with tracing. Log events carry internal ids
//! only (inquiry ids, job names); personal identifiers are masked newtypes and never logged.
//! A privacy review reads the `tracing::` calls under src/ — there are few on purpose.

use std::path::Path;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The default filter: renkei at info, dependencies at warn.
pub const DEFAULT_FILTER: &str = "warn,renkei=info";

/// Installs the global subscriber writing to stderr, or to `file` when given.
pub fn init(format: LogFormat, file: Option<&Path>) {
    let filter =
        EnvFilter::try_from_env("RENKEI_LOG").unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let writer: Option<std::fs::File> = file.and_then(|p| {
        if let Some(parent) = p.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    });
    let result = match (format, writer) {
        (LogFormat::Json, Some(f)) => builder
            .json()
            .with_writer(std::sync::Mutex::new(f))
            .try_init(),
        (LogFormat::Json, None) => builder.json().with_writer(std::io::stderr).try_init(),
        (LogFormat::Text, Some(f)) => builder
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(f))
            .try_init(),
        (LogFormat::Text, None) => builder.with_writer(std::io::stderr).try_init(),
    };
    // A second init (tests, demo) keeps the first subscriber.
    let _ = result;
}

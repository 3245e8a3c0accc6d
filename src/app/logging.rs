//! Log set-up: key/value lines (text or JSON) with tracing. Log events carry internal ids
//! only (inquiry ids, job names, request ids); personal identifiers are masked newtypes and
//! never logged. A privacy review reads the `tracing::` calls under src/ — there are few on
//! purpose.
//!
//! The filter is `RENKEI_LOG` when set, else `RUST_LOG`, else [`DEFAULT_FILTER`] (the usual
//! `EnvFilter` syntax, e.g. `RENKEI_LOG=debug` or `RUST_LOG=warn,renkei=info`). Text lines
//! carry colour codes only when stderr is a terminal. `RENKEI_LOG_FORMAT=json` (or `text`)
//! overrides the config's `log_format`, e.g. for JSON lines to the journal under systemd.

use std::io::IsTerminal;
use std::path::Path;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The default filter: renkei at info, dependencies at warn.
pub const DEFAULT_FILTER: &str = "warn,renkei=info";

/// The project's own filter variable; it wins over `RUST_LOG`.
pub const LOG_ENV: &str = "RENKEI_LOG";

/// The variable that overrides the config's `log_format` (`json` or `text`).
pub const LOG_FORMAT_ENV: &str = "RENKEI_LOG_FORMAT";

/// The format in force: `RENKEI_LOG_FORMAT` when it names one, else `configured`.
pub fn format(configured: LogFormat) -> LogFormat {
    match std::env::var(LOG_FORMAT_ENV).as_deref() {
        Ok("json") => LogFormat::Json,
        Ok("text") => LogFormat::Text,
        _ => configured,
    }
}

/// The filter: `RENKEI_LOG`, else `RUST_LOG`, else [`DEFAULT_FILTER`].
pub fn filter() -> EnvFilter {
    EnvFilter::try_from_env(LOG_ENV)
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER))
}

/// Installs the global subscriber writing to stderr, or to `file` when given.
pub fn init(configured: LogFormat, file: Option<&Path>) {
    let format = format(configured);
    let filter = filter();
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
        (LogFormat::Text, None) => builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .try_init(),
    };
    // A second init (tests, demo) keeps the first subscriber.
    let _ = result;
}

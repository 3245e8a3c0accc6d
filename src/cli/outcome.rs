//! How a `renkei` command ends, for scripts: the typed [`Outcome`] behind the documented exit
//! codes (0 done, 1 failed, 2 usage, 3 done with rejected lines), the [`CliError`] commands
//! return, and clap's own usage errors printed without echoing a value that could be an
//! individual number.

use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// The exit codes, as `renkei --help` and the README list them.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  done
  1  failed (nothing, or not everything, could be done; the reason is on stderr)
  2  usage: an unknown command or option, a missing or invalid value
  3  done with rejected lines: an import or batch finished, but some of its lines
     (or inquiries) were refused or failed; they are listed on stderr";

/// How a command ended; its exit code is the discriminant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Outcome {
    /// Everything asked was done.
    Done = 0,
    /// The command could not do what was asked.
    Failed = 1,
    /// The command line was wrong (clap's errors and the commands' own argument checks).
    Usage = 2,
    /// The work was done, but part of it was refused: rejected lines, failed inquiries.
    DoneWithRejections = 3,
}

impl Outcome {
    /// Done, or done with rejections when `rejected` is more than zero.
    pub fn rejecting(rejected: u64) -> Outcome {
        if rejected > 0 {
            Outcome::DoneWithRejections
        } else {
            Outcome::Done
        }
    }

    /// The process exit code.
    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(self as u8)
    }
}

/// Why a command did not finish: a wrong command line, or a failure (one sentence each).
#[derive(Debug, PartialEq, Eq)]
pub enum CliError {
    /// Exit code 2.
    Usage(String),
    /// Exit code 1.
    Failed(String),
}

impl CliError {
    /// A usage error (exit code 2).
    pub fn usage(msg: impl Into<String>) -> CliError {
        CliError::Usage(msg.into())
    }

    /// The outcome this error ends the command with.
    pub fn outcome(&self) -> Outcome {
        match self {
            CliError::Usage(_) => Outcome::Usage,
            CliError::Failed(_) => Outcome::Failed,
        }
    }

    /// The sentence printed on stderr, with any run of 12 or more digits redacted.
    pub fn message(&self) -> String {
        match self {
            CliError::Usage(m) | CliError::Failed(m) => redact_digits(m),
        }
    }
}

impl From<String> for CliError {
    fn from(s: String) -> Self {
        CliError::Failed(s)
    }
}

impl From<&str> for CliError {
    fn from(s: &str) -> Self {
        CliError::Failed(s.to_string())
    }
}

/// What a command returns.
pub type CmdResult = Result<Outcome, CliError>;

/// Shown instead of a value the command line must not repeat.
pub const REDACTED: &str = "…";

/// The shortest run of digits taken for a possible individual number (12 digits) or longer
/// personal number, and never printed.
pub const MIN_REDACTED_DIGITS: usize = 12;

/// `text` with every run of [`MIN_REDACTED_DIGITS`] or more ASCII digits replaced by
/// [`REDACTED`].
pub fn redact_digits(text: &str) -> String {
    crate::util::scrub_runs(text, MIN_REDACTED_DIGITS)
}

fn context_str(e: &clap::Error, kind: ContextKind) -> Option<String> {
    match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    }
}

/// Values of a clap error that are the user's input and are shown only redacted: a
/// positional argument's value, an unknown subcommand, an unexpected argument that is not an
/// option name.
fn echoed_inputs(e: &clap::Error) -> Vec<String> {
    let arg = context_str(e, ContextKind::InvalidArg);
    let mut inputs = Vec::new();
    match e.kind() {
        // `<NAME>` or `[NAME]` is a positional argument: its value is not shown at all.
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
            if arg.as_deref().is_some_and(|a| a.starts_with(['<', '['])) =>
        {
            inputs.extend(context_str(e, ContextKind::InvalidValue))
        }
        ErrorKind::InvalidSubcommand => {
            inputs.extend(context_str(e, ContextKind::InvalidSubcommand))
        }
        ErrorKind::UnknownArgument => inputs.extend(arg.filter(|a| !a.starts_with('-'))),
        _ => {}
    }
    inputs.retain(|v| !v.is_empty());
    inputs
}

/// clap's message for `e`, with the user's positional values left out and every long run of
/// digits redacted.
pub fn redacted_clap_message(e: &clap::Error) -> String {
    let mut text = e.render().to_string();
    for v in echoed_inputs(e) {
        for (l, r) in [("'", "'"), ("'-- ", "'"), ("\"", "\"")] {
            text = text.replace(&format!("{l}{v}{r}"), &format!("{l}{REDACTED}{r}"));
        }
    }
    redact_digits(&text)
}

/// Parses the command line; on a usage error prints clap's message (redacted) and gives the
/// exit code 2; `--help` and `--version` print and give 0.
pub fn parse_or_exit<P: clap::Parser>() -> Result<P, ExitCode> {
    parse_from(std::env::args_os()).map_err(|(text, outcome)| {
        if outcome == Outcome::Done {
            print!("{text}");
        } else {
            eprint!("{text}");
        }
        outcome.exit_code()
    })
}

/// [`parse_or_exit`] without the printing: the text to print and the outcome.
pub fn parse_from<P, I, T>(args: I) -> Result<P, (String, Outcome)>
where
    P: clap::Parser,
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    P::try_parse_from(args).map_err(|e| match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            if e.exit_code() == 0 =>
        {
            (e.render().to_string(), Outcome::Done)
        }
        _ => (redacted_clap_message(&e), Outcome::Usage),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_digit_runs_are_redacted_and_short_ones_kept() {
        assert_eq!(redact_digits("a 123456789012 b"), "a … b");
        assert_eq!(redact_digits("1234567890123456"), "…");
        assert_eq!(
            redact_digits("version 12, 11 digits 12345678901"),
            "version 12, 11 digits 12345678901"
        );
        assert_eq!(redact_digits("x=123456789012,y"), "x=…,y");
    }

    #[test]
    fn exit_codes_are_the_documented_ones() {
        assert_eq!(Outcome::Done as u8, 0);
        assert_eq!(Outcome::Failed as u8, 1);
        assert_eq!(Outcome::Usage as u8, 2);
        assert_eq!(Outcome::DoneWithRejections as u8, 3);
        assert_eq!(Outcome::rejecting(0), Outcome::Done);
        assert_eq!(Outcome::rejecting(2), Outcome::DoneWithRejections);
    }

    #[derive(clap::Parser, Debug)]
    struct T {
        #[arg(long)]
        name: Option<String>,
        #[arg(long, value_parser = ["inquiry", "provision"])]
        kind: Option<String>,
        count: Option<u32>,
    }

    fn refused(args: &[&str]) -> String {
        match parse_from::<T, _, _>(std::iter::once("t").chain(args.iter().copied())) {
            Ok(t) => panic!("parsed: {t:?}"),
            Err((text, outcome)) => {
                assert_eq!(outcome, Outcome::Usage, "{text}");
                text
            }
        }
    }

    #[test]
    fn clap_errors_never_echo_a_positional_value_or_a_long_number() {
        for args in [
            &["123456789012", "x"][..],
            &["12345678901234567890"][..],
            &["--name", "a", "b", "123456789012"][..],
            &["--kind", "123456789012"][..],
            &["--nam=123456789012"][..],
            &["nonumber"][..],
        ] {
            let text = refused(args);
            assert!(!text.contains("123456789012"), "{text}");
            assert!(!text.contains("nonumber"), "{text}");
        }
        // An option's mistyped value is shown (it is not a number), with the valid ones.
        let text = refused(&["--kind", "inquiries"]);
        assert!(
            text.contains("inquiries") && text.contains("inquiry"),
            "{text}"
        );
        // A mistyped option name is shown.
        assert!(refused(&["--nmae", "x"]).contains("--nmae"));
    }
}

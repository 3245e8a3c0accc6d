//! The one error vocabulary the gateway's capabilities answer with: a refusal the caller can
//! act on (with a stable code and the field it concerns), "not found", a store failure, or an
//! internal failure whose cause is kept for the log and never shown to the caller.
//!
//! Capabilities keep their own small error types (`RegistryError`, `KeyError`, `UplinkError`,
//! …) for their own failures and convert into [`Error`] where a request is answered; the
//! one place that turns an [`Error`] into HTTP is `api::error`.

use std::borrow::Cow;

use renkei_store::StoreError;

/// A cause kept for the log: a typed error of a lower layer, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a request ended in when it did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is not acceptable as sent (422): the caller can correct it.
    #[error("{message}")]
    Invalid {
        code: &'static str,
        field: Option<Cow<'static, str>>,
        message: Cow<'static, str>,
    },
    /// Nothing with this id exists for this caller (404). Another system's item is also
    /// "not found", so that ids cannot be probed.
    #[error("not found")]
    NotFound,
    /// The caller may not do this (403).
    #[error("{message}")]
    Forbidden {
        code: &'static str,
        /// The field the refusal concerns, when there is one (e.g. `item_code`).
        field: Option<Cow<'static, str>>,
        message: Cow<'static, str>,
    },
    /// The request conflicts with the state it would change (409).
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: Cow<'static, str>,
    },
    /// The store refused or failed: nothing was kept (503).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Something that should not happen: the caller gets a plain 500, the log gets `source`.
    #[error("{context}: {source}")]
    Internal {
        context: &'static str,
        source: BoxError,
    },
}

impl Error {
    /// A refusal of one field's value.
    pub fn invalid(
        code: &'static str,
        field: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Error::Invalid {
            code,
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// A refusal by role or permission.
    pub fn forbidden(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Error::Forbidden {
            code,
            field: None,
            message: message.into(),
        }
    }

    /// A refusal by permission that names the field it concerns.
    pub fn forbidden_field(
        code: &'static str,
        field: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Error::Forbidden {
            code,
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// A conflict with the current state.
    pub fn conflict(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Error::Conflict {
            code,
            message: message.into(),
        }
    }

    /// An internal failure with its cause.
    pub fn internal(context: &'static str, source: impl Into<BoxError>) -> Self {
        Error::Internal {
            context,
            source: source.into(),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::internal("encoding a stored value", e)
    }
}

/// An internal failure described by a fixed text (no input is ever interpolated into it).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Bug(pub &'static str);

/// Validates a date `YYYY-MM-DD`.
pub fn check_date(field: &'static str, s: &str) -> Result<(), Error> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &fmt).map(|_| ()).map_err(|_| {
        Error::invalid(
            "invalid_date",
            field,
            format!("{field}: expected a date YYYY-MM-DD"),
        )
    })
}

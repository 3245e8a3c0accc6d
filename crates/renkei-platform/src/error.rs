//! The single error type of the codec: a stable machine code, the element path, a message.

use std::fmt;

/// Why a document was refused (or, from [`crate::Message::validate`], why a message would not
/// make a valid document).
///
/// `code` is stable and meant for machines; `path` names the element (`InquiryRequest/ItemCode`)
/// or attribute (`InquiryRequest/SealedData/@enc`) at fault, empty when the document as a whole
/// is at fault. `message` is for people. Neither ever quotes a value from the document, so an
/// error can be logged even when the document held an individual number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} at '{path}': {message}")]
pub struct XmlError {
    /// Stable machine code, one of the `XmlError::…` constants' codes below.
    pub code: &'static str,
    /// Element path, `/`-separated from the root; `@name` for an attribute.
    pub path: String,
    /// Human-readable reason; never contains a value taken from the document.
    pub message: String,
}

impl XmlError {
    /// Not well-formed XML, not UTF-8, or a structural problem outside any known element.
    pub const MALFORMED: &'static str = "xml_malformed";
    /// A `<!DOCTYPE …>` (and with it any entity declaration) was present.
    pub const DTD_FORBIDDEN: &'static str = "xml_dtd_forbidden";
    /// A reference to an entity other than the five predefined ones.
    pub const ENTITY_FORBIDDEN: &'static str = "xml_entity_forbidden";
    /// A processing instruction other than the XML declaration.
    pub const PI_FORBIDDEN: &'static str = "xml_pi_forbidden";
    /// The document is larger than [`crate::MAX_MESSAGE_BYTES`].
    pub const TOO_LARGE: &'static str = "xml_too_large";
    /// Elements nest deeper than [`crate::MAX_DEPTH`].
    pub const TOO_DEEP: &'static str = "xml_too_deep";
    /// The root or an element is not in the expected namespace, or uses a prefix.
    pub const WRONG_NAMESPACE: &'static str = "xml_wrong_namespace";
    /// An element that the schema does not allow at that place.
    pub const UNKNOWN_ELEMENT: &'static str = "xml_unknown_element";
    /// An attribute that the schema does not allow on that element.
    pub const UNKNOWN_ATTRIBUTE: &'static str = "xml_unknown_attribute";
    /// A required element is absent.
    pub const MISSING_ELEMENT: &'static str = "xml_missing_element";
    /// A required attribute is absent.
    pub const MISSING_ATTRIBUTE: &'static str = "xml_missing_attribute";
    /// Text where only child elements are allowed.
    pub const UNEXPECTED_TEXT: &'static str = "xml_unexpected_text";
    /// A value that does not have the required form.
    pub const INVALID_VALUE: &'static str = "xml_invalid_value";

    pub(crate) fn new(
        code: &'static str,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            code,
            path: path.into(),
            message: message.into(),
        }
    }

    /// The stable machine code (same as the `code` field).
    pub fn code(&self) -> &'static str {
        self.code
    }
}

/// An element path built on the stack while decoding; rendered to text only on error.
#[derive(Clone, Copy)]
pub(crate) struct Path<'p> {
    parent: Option<&'p Path<'p>>,
    name: &'p str,
}

impl<'p> Path<'p> {
    /// The path of a root element.
    pub(crate) fn root(name: &'p str) -> Self {
        Self { parent: None, name }
    }

    /// The path of a child element (or `@attribute`).
    pub(crate) fn child(&'p self, name: &'p str) -> Path<'p> {
        Path {
            parent: Some(self),
            name,
        }
    }

    /// An error at this path.
    pub(crate) fn err(&self, code: &'static str, message: impl Into<String>) -> XmlError {
        XmlError::new(code, self.to_string(), message)
    }

    /// An `xml_invalid_value` error at this path.
    pub(crate) fn invalid(&self, message: impl Into<String>) -> XmlError {
        self.err(XmlError::INVALID_VALUE, message)
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(parent) = self.parent {
            write!(f, "{parent}/")?;
        }
        f.write_str(self.name)
    }
}

//! renkei-platform: the national platform protocol's messages and their strict XML codec.
//!
//! Shared by the gateway (which sends requests and reads answers) and the platform simulator
//! (which does the reverse), so both sides speak exactly the same documents. The XSDs in
//! `schemas/platform/` and the vectors in `conformance/platform/` pin the format from outside,
//! so a mistake made the same way on both sides is still caught.
//!
//! # What it does
//! - [`Message`]: every protocol message as a typed value; codes and numbers are
//!   `renkei-ids` newtypes, so a parsed message holds only valid identifiers.
//! - [`to_xml`]: deterministic UTF-8 XML (declaration, [`NAMESPACE`] on the root, two-space
//!   indentation), the exact bytes the conformance vectors hold.
//! - [`from_xml`]: a hardened parser for documents from the network.
//! - [`IdentityPayload`], [`TargetPayload`], [`ResultPayload`]: the plaintexts sealed inside
//!   [`SealedData`], in [`PAYLOAD_NAMESPACE`].
//!
//! # What it deliberately does not do
//! - No signing, sealing or transport: `renkei-crypto` seals payloads and signs the bytes
//!   [`to_xml`] returns; the gateway sends them.
//! - No DTD, no entity declarations, no external references, no processing instructions,
//!   no namespace prefixes, no other encodings than UTF-8: documents using them are refused,
//!   not tolerated. Rationale: each is an attack surface (entity expansion, external
//!   fetches) or an ambiguity, and the protocol needs none of them.
//! - No schema engine at run time: the decoder enforces the same rules as the XSDs in code;
//!   tests check every written document against the XSDs with `xmllint`.
//!
//! # Privacy
//! An [`XmlError`] never quotes a value from the document, only the element path and the
//! reason, so errors can be logged; in particular an [`IdentityPayload`]'s individual number
//! never reaches an error, and its XML form is returned in a zeroizing buffer.
//!
//! # Limits (rationale)
//! [`MAX_MESSAGE_BYTES`] (1 MiB) is far above any message the protocol sends (the largest,
//! master information, is tens of KiB) and bounds memory per request; [`MAX_DEPTH`] (16) is
//! four times the deepest element the schema has.
#![forbid(unsafe_code)]

mod check;
mod decode;
mod error;
mod model;
mod read;
mod vocabulary;
mod write;

pub use check::{
    MAX_FAULT_CODE_LEN, MAX_FAULT_MESSAGE_CHARS, MAX_FIELD_VALUE_CHARS, MAX_ID_LEN, MAX_NAME_CHARS,
};
pub use decode::from_xml;
pub use error::XmlError;
pub use model::{
    CodeOutcome, Condition, Header, IdentityPayload, KeyUse, ManualDecision, ManualRequest,
    Message, PlatformFault, ProvisionEntry, PublishedKey, ReceiptOutcome, ResultItem,
    ResultPayload, ResultStatus, SealedData, TargetPayload,
};
pub use vocabulary::{faults, item_status, MASTER_PATH, MESSAGES_PATH};
pub use write::to_xml;

/// Namespace of every protocol message.
pub const NAMESPACE: &str = "urn:renkei:platform:v1";
/// Namespace of the sealed payloads.
pub const PAYLOAD_NAMESPACE: &str = "urn:renkei:platform:payload:v1";
/// Largest document [`from_xml`] and the payload parsers accept, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;
/// Deepest element nesting accepted (the root is depth 1).
pub const MAX_DEPTH: usize = 16;

impl IdentityPayload {
    /// The payload as XML, in a buffer zeroized on drop.
    pub fn to_xml(&self) -> zeroize::Zeroizing<String> {
        write::identity_to_xml(self)
    }

    /// Parses the payload; errors never contain the number.
    pub fn from_xml(bytes: &[u8]) -> Result<Self, XmlError> {
        decode::identity_from_xml(bytes)
    }
}

impl TargetPayload {
    /// The payload as XML.
    pub fn to_xml(&self) -> String {
        write::target_to_xml(self)
    }

    /// Parses the payload.
    pub fn from_xml(bytes: &[u8]) -> Result<Self, XmlError> {
        decode::target_from_xml(bytes)
    }
}

impl ResultPayload {
    /// The payload as XML; call [`ResultPayload::validate`] first for data from outside.
    pub fn to_xml(&self) -> String {
        write::result_to_xml(self)
    }

    /// Parses the payload.
    pub fn from_xml(bytes: &[u8]) -> Result<Self, XmlError> {
        decode::result_from_xml(bytes)
    }
}

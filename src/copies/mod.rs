//! Information provision (情報提供): the copies (副本) business systems keep at the platform's
//! provision database, one file per step:
//!
//! - [`layout`] — each item's copy layout (`schemas/copies/`): keys, checks, code conversion;
//! - [`model`] — a copy version as stored, its transfer status and the business system's view;
//! - [`accept`] — ownership and provision rights ([`may_provide`]), the next version, and the
//!   one atomic batch that makes a version durable before `202`;
//! - [`import`] — bulk registration from a CSV or fixed-width Shift_JIS file, line by line,
//!   each line as a single registration, replay-safe;
//! - [`repo`] — the only reader and writer of the copy trees (values sealed at rest);
//! - [`transfer`] — what the dispatcher runs when a version is due: send it (sealed, signed,
//!   the version's id as message id), record the outcome;
//! - [`provisions`] — the provisions the platform made from the copies, fetched back and
//!   recorded;
//! - [`manual`] — manual provision (手動提供): the requests a person answers, as the holding
//!   business system sees and answers them, and their repository;
//! - [`manual_jobs`] — fetching those requests, their deadlines and sending their answers;
//! - [`record`] — the linkage record of a copy version.
//!
//! States of a version: `queued` → `transferred`, or `failed` with the platform's reason. A
//! withdrawal is a version too. The individual number never travels; the unified address
//! number does.

pub mod accept;
pub mod import;
pub mod layout;
pub mod manual;
pub mod manual_jobs;
pub mod model;
pub mod provisions;
pub mod record;
pub mod repo;
pub mod transfer;

pub use accept::{may_provide, Copies, CopyAccepted, CopyRequest};
pub use model::{CopyVersion, TransferStatus};

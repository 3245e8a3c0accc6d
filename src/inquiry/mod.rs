//! Information inquiries (情報照会), the gateway's main job, one file per step:
//!
//! - [`model`] — the inquiry as stored, its states and the business system's view;
//! - [`accept`] — validation, the permission table, idempotency and the one atomic batch
//!   that makes an inquiry durable before `202`;
//! - [`repo`] — the only reader and writer of the inquiry trees;
//! - [`codec`] — the compact, versioned bytes of an inquiry and an idempotency entry on disk
//!   (JSON values of earlier builds still read);
//! - [`deliver`] — what the dispatcher runs when an inquiry is due: send, fetch the result,
//!   fail at the deadline, wait for a code;
//! - [`record`] — the linkage record of each state.
//!
//! States: `queued` → (`awaiting_code` ↔) → `sent` → `answered`, or `failed` from any of them.
//! Every change of state is one atomic store batch: the inquiry, its schedule entry and its
//! linkage record change together or not at all.

pub mod accept;
pub mod codec;
pub mod deliver;
pub mod model;
pub mod record;
pub mod repo;

pub use accept::{Accepted, Inquiries, InquiryRequest};
pub use model::{
    Conditions, Inquiry, InquiryError, InquiryResult, InquiryView, ResultItem, Status,
};

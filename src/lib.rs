//! renkei (連携): a municipality's gateway between its business systems and the national My
//! Number information-linkage platform (中間サーバー・プラットフォーム).
//!
//! The pipeline of an inquiry, module by module:
//!
//! 1. **receive** — [`api`] over mutual TLS ([`tls`]); the client certificate names the
//!    business system ([`config`] says what it may do);
//! 2. **validate** — typed bodies with validated identifiers (`renkei_ids`); the individual
//!    number is a masked type that cannot be logged;
//! 3. **persist** — [`gateway`] writes the inquiry, its schedule entry and its idempotency key
//!    in one batch through the group-commit writer of `renkei_store`; `202` only once durable;
//! 4. **resolve** — [`registry`] maps the business number to the unified address number and
//!    knows whether the person's code (符号) is acquired;
//! 5. **convert** — to the platform's XML (`renkei_platform`), codes and dates
//!    (`renkei_convert`);
//! 6. **sign/seal** — [`keys`] signs every message and seals personal data to the recipient
//!    (`renkei_crypto`);
//! 7. **deliver** — [`inquiry::dispatch`] sends through [`uplink`] with backoff, a concurrency
//!    cap, the operating window and deadlines, then fetches the result;
//! 8. **record** — linkage records (`renkei_records`) in the same atomic batch as each change.
//!
//! What renkei deliberately does not do: it never sends an individual number anywhere but
//! sealed inside a code acquisition; it never stores one in plaintext; it never logs one.
//! [`sim`] is the national side for tests and the demo: a separate peer with its own keys.
#![forbid(unsafe_code)]

pub mod api;
pub mod batch;
pub mod bench;
pub mod cli;
pub mod config;
pub mod demo;
pub mod fsutil;
pub mod gateway;
pub mod init;
pub mod inquiry;
pub mod keys;
pub mod logging;
pub mod master;
pub mod pki;
pub mod records;
pub mod registry;
pub mod rekey;
pub mod run;
pub mod schemas;
pub mod sim;
pub mod staff;
pub mod tls;
pub mod uplink;
pub mod util;

//! renkei (連携): a municipality's gateway between its business systems and the national My
//! Number information-linkage platform (中間サーバー・プラットフォーム).
//!
//! The pipeline of an inquiry, module by module (see `docs/architecture.md` for the map):
//!
//! 1. **receive** — [`api`] over mutual TLS ([`tls`]); the client certificate names the
//!    business system ([`config`] says what it may do);
//! 2. **validate** — typed bodies with validated identifiers (`renkei_ids`); the individual
//!    number is a masked type that cannot be logged;
//! 3. **persist** — [`inquiry::accept`] writes the inquiry, its [`schedule`] entry, its
//!    idempotency key and its linkage record ([`records`]) in one batch through the
//!    group-commit writer of `renkei_store`; `202` only once durable;
//! 4. **resolve** — [`registry`] maps the business number to the unified address number and
//!    knows whether the person's code (符号) is acquired ([`registry::codes`] acquires it);
//! 5. **dispatch** — [`dispatch`] walks the durable schedule and hands each due job to
//!    [`inquiry::deliver`] or [`registry::codes`];
//! 6. **convert, sign/seal, deliver** — to the platform's XML (`renkei_platform`), signed and
//!    sealed with this side's [`keyring`], sent by the [`platform`] client with its retry
//!    [`platform::policy`];
//! 7. **record** — linkage records (`renkei_records`) in the same atomic batch as each change.
//!
//! Information provision runs beside it: [`copies`] registers copies (副本) and transfers
//! them through the same schedule and dispatcher.
//!
//! Around it: [`keys`] (rotation, two-person rule, master information), [`batch`] (municipal
//! batch files), [`ops`] (what operators see), [`app`] (start-up wiring), [`cli`] and [`dev`]
//! (the command line, and `init`/`demo`/`bench`), and [`sim`] — the national side for tests
//! and the demo: a separate peer with its own keys, which shares only `renkei_platform`, TLS
//! and the keyring type with the gateway.
//!
//! Dependencies point one way (`tests/architecture.rs` keeps it so):
//! `cli → dev → app → api → {batch, ops, keys, dispatch} → inquiry → registry →
//! {records, schedule, platform} → {keyring, tls, schemas} → {config, error, util}`.
//!
//! What renkei deliberately does not do: it never sends an individual number anywhere but
//! sealed inside a code acquisition; it never stores one in plaintext; it never logs one.
#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod backup;
pub mod batch;
pub mod cli;
pub mod config;
pub mod copies;
pub mod dev;
pub mod dispatch;
pub mod error;
pub mod fsutil;
pub mod inquiry;
pub mod keyring;
pub mod keys;
pub mod lease;
pub mod metrics;
pub mod ops;
pub mod platform;
pub mod records;
pub mod registry;
pub mod schedule;
pub mod schemas;
pub mod settings;
pub mod sim;
pub mod staff;
pub mod tls;
pub mod util;

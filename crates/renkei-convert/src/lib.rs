//! Format and code conversion (フォーマット・コード変換) between municipal business-system files
//! and the canonical values renkei sends toward the platform.
//!
//! Business systems keep their own formats and codes; this crate turns their files into
//! [`layout::Record`]s of canonical values and back, driven entirely by data under `schemas/`:
//!
//! - [`charset`]: strict Shift_JIS / CP932 / UTF-8 codecs that *report* unmappable, 外字 and
//!   ambiguous (WAVE DASH) characters instead of replacing them; the JIS X 0213 repertoire check;
//! - [`width`]: explicit width/kana tables (half-width kana, full-width digits, hiragana). NFKC
//!   is deliberately not used: it rewrites ① to 1 and ㈱ to (株);
//! - [`era`]: 和暦 ↔ 西暦 from `schemas/eras.toml`, with 不詳 as [`era::PartialDate`];
//! - [`codes`]: code tables with dated versions from `schemas/codes/*.toml`;
//! - [`layout`]: layouts (`schemas/layouts/*.toml`) — framing (CSV per RFC 4180, fixed-width)
//!   separate from format (field kinds) — with a streaming [`layout::LayoutReader`] and a
//!   [`layout::LayoutWriter`];
//! - [`inquiry`]: the municipal inquiry batch line as a typed [`inquiry::BatchInquiryLine`];
//! - [`check`]: [`check::check_schemas`] for `renkei schemas check`;
//! - [`bench`]: [`bench::bench_convert`], the throughput measurement.
//!
//! What it does not do: guess. A character that does not map, a date outside its era, a code
//! missing from its table are errors naming the line, field and code point. Errors and `Debug`
//! never carry a `secret` field's value (the individual number); such values are zeroized when
//! a record is dropped.
#![forbid(unsafe_code)]

pub mod bench;
pub mod charset;
pub mod check;
pub mod codes;
pub mod era;
pub mod inquiry;
pub mod layout;
pub mod width;

pub use charset::{check_jisx0213, CharIssue};
pub use check::{check_schemas, SchemaProblem};
pub use inquiry::{parse_batch_line, BatchInquiryLine};
pub use layout::{Layout, LayoutReader, LayoutWriter, LineError, Record};

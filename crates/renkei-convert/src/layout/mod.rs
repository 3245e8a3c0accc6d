//! Layouts as data: framing (CSV or fixed-width lines) separate from format (field kinds, codes).
//!
//! - [`config`] — the `schemas/layouts/*.toml` model and its validation into a [`Layout`];
//! - [`record`] — [`Record`], an ordered map field name → canonical value;
//! - [`field`] — per-kind conversion between file text and canonical values;
//! - [`reader`] — [`LayoutReader`], a streaming line reader over any `BufRead`;
//! - [`writer`] — [`LayoutWriter`].
//!
//! Canonical values: digits and codes in ASCII (full-width digits folded), text with half-width
//! katakana widened, kana in full-width katakana, dates as ISO `YYYY-MM-DD` (or `YYYY-MM` /
//! `YYYY` when 不詳), code fields as the platform code, absent optional fields as `""`.

pub mod config;
pub mod field;
pub mod reader;
pub mod record;
pub mod writer;

pub use config::{Align, Field, FieldKind, Framing, Layout, LayoutError, LineEnding};
pub use reader::{LayoutReader, LineError};
pub use record::Record;
pub use writer::LayoutWriter;

#[cfg(test)]
mod tests;

//! [`Record`]: an ordered map of field name → canonical value; secret values are masked and zeroized.

use std::fmt;
use std::sync::Arc;

use renkei_ids::{IdError, IndividualNumber};
use zeroize::Zeroize;

use super::config::Layout;

/// One line's fields, in layout order, as canonical strings (`""` = absent).
///
/// `Debug` prints secret fields as `***`, and their values are zeroized on drop.
#[derive(Clone)]
pub struct Record {
    names: Arc<[String]>,
    secret: Arc<[bool]>,
    values: Vec<String>,
    line: u64,
}

impl Record {
    /// An empty record (all values `""`) for `layout`.
    pub fn new(layout: &Layout) -> Self {
        Self {
            names: layout.names.clone(),
            secret: layout.secret.clone(),
            values: vec![String::new(); layout.names.len()],
            line: 0,
        }
    }

    pub(crate) fn from_values(layout: &Layout, values: Vec<String>, line: u64) -> Self {
        Self {
            names: layout.names.clone(),
            secret: layout.secret.clone(),
            values,
            line,
        }
    }

    /// The 1-based line the record was read from (0 when built in memory). Not part of equality.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// The value of `name` (`None` if the layout has no such field).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| self.values[i].as_str())
    }

    /// The value of `name`, `None` if absent or empty.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// Sets `name`; returns false if the layout has no such field.
    pub fn set(&mut self, name: &str, value: impl Into<String>) -> bool {
        match self.names.iter().position(|n| n == name) {
            Some(i) => {
                self.values[i].zeroize();
                self.values[i] = value.into();
                true
            }
            None => false,
        }
    }

    /// The value at position `i`.
    pub fn value(&self, i: usize) -> Option<&str> {
        self.values.get(i).map(String::as_str)
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the layout has no fields.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// (name, value) pairs in layout order. Secret values are included: callers decide.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.names
            .iter()
            .map(String::as_str)
            .zip(self.values.iter().map(String::as_str))
    }

    /// Whether field `name` is secret.
    pub fn is_secret(&self, name: &str) -> bool {
        self.names
            .iter()
            .position(|n| n == name)
            .is_some_and(|i| self.secret[i])
    }

    /// The individual number in field `name` as a masked [`IndividualNumber`] (`Ok(None)` if empty).
    pub fn individual_number(&self, name: &str) -> Result<Option<IndividualNumber>, IdError> {
        match self.non_empty(name) {
            Some(v) => IndividualNumber::parse(v).map(Some),
            None => Ok(None),
        }
    }
}

impl PartialEq for Record {
    fn eq(&self, other: &Self) -> bool {
        self.names == other.names && self.values == other.values
    }
}

impl Eq for Record {}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (i, (n, v)) in self.names.iter().zip(&self.values).enumerate() {
            if self.secret[i] && !v.is_empty() {
                m.entry(n, &"***");
            } else {
                m.entry(n, v);
            }
        }
        m.finish()
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        for (i, v) in self.values.iter_mut().enumerate() {
            if self.secret.get(i).copied().unwrap_or(true) {
                v.zeroize();
            }
        }
    }
}

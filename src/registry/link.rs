//! Linking a business system's own number for a person (`PUT /v1/persons/{business_number}`):
//! the request, its validation, and the wake-up of the dispatcher when a new person's code
//! acquisition was scheduled.

use renkei_ids::{BusinessNumber, IndividualNumber, SystemId};
use serde::Deserialize;

use super::{BasicFacts, Linked, Registry};
use crate::error::{check_date, Error};

/// Longest name and kana accepted (characters).
pub const MAX_NAME_CHARS: usize = 100;
/// Longest address accepted (characters).
pub const MAX_ADDRESS_CHARS: usize = 200;

/// `PUT /v1/persons/{business_number}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    pub individual_number: IndividualNumber,
    pub name: String,
    pub kana: String,
    pub birth_date: String,
    pub sex: String,
    pub address: String,
}

fn check_text(field: &'static str, v: &str, max: usize) -> Result<(), Error> {
    if v.trim().is_empty() || v.chars().count() > max {
        return Err(Error::invalid(
            "invalid_text",
            field,
            format!("{field}: 1 to {max} characters"),
        ));
    }
    Ok(())
}

impl LinkRequest {
    /// Checks every field; the individual number was checked when it was parsed.
    pub fn validate(&self) -> Result<(), Error> {
        check_text("name", &self.name, MAX_NAME_CHARS)?;
        check_text("kana", &self.kana, MAX_NAME_CHARS)?;
        check_text("address", &self.address, MAX_ADDRESS_CHARS)?;
        let katakana =
            |c: char| ('\u{30A0}'..='\u{30FF}').contains(&c) || c == '\u{3000}' || c == ' ';
        if !self.kana.chars().all(katakana) {
            return Err(Error::invalid(
                "invalid_kana",
                "kana",
                "kana: full-width katakana only",
            ));
        }
        check_date("birth_date", &self.birth_date)?;
        if !matches!(self.sex.as_str(), "1" | "2" | "9") {
            return Err(Error::invalid(
                "invalid_code",
                "sex",
                "sex: 1 (男), 2 (女) or 9 (不明)",
            ));
        }
        Ok(())
    }
}

impl Registry {
    /// Links `system`'s number `bn` for the person the request describes.
    pub async fn link_person(
        &self,
        system: &SystemId,
        bn: &BusinessNumber,
        req: LinkRequest,
    ) -> Result<Linked, Error> {
        req.validate()?;
        let facts = BasicFacts {
            name: req.name,
            kana: req.kana,
            birth_date: req.birth_date,
            sex: req.sex,
            address: req.address,
        };
        let linked = self
            .link(system, bn, &req.individual_number, &facts)
            .await?;
        if linked.created {
            self.wake.notify();
        }
        Ok(linked)
    }
}

//! The simulator's provision database (情報提供データベース): the copies (副本) cities transfer,
//! by city, person (unified address number) and item, every version kept; and the answers
//! it gives other agencies from them — the version in force on the asked date, "not held",
//! a refusal by the national permission table, or "withheld" under 不開示 — each reported back
//! to the city that holds the copy through its provision log.

use std::collections::HashMap;

use renkei_ids::{AgencyCode, ItemCode, ProcedureCode, UnifiedAddressNumber};
use renkei_platform::{faults, item_status, PlatformFault, ProvisionEntry};
use serde::{Deserialize, Serialize};

/// One copy version as the platform keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimCopy {
    pub record_id: String,
    pub dataset: String,
    pub version: u32,
    pub effective_from: String,
    pub effective_to: Option<String>,
    pub non_disclosure: bool,
    pub withdrawn: bool,
    pub fields: Vec<(String, String)>,
}

/// `POST /admin/provision-inquiries` body: another agency's inquiry, answered from copies.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisionInquiryRequest {
    pub unified_address_number: UnifiedAddressNumber,
    pub procedure_code: ProcedureCode,
    pub item_code: ItemCode,
    /// The date the answer must be in force on, `YYYY-MM-DD` (today in JST if absent).
    #[serde(default)]
    pub as_of: Option<String>,
    /// The agency asking (the simulator's provider agency if absent).
    #[serde(default)]
    pub inquirer: Option<AgencyCode>,
}

/// One answered field.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerField {
    pub name: String,
    pub value: String,
}

/// What the platform answered.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    pub item_code: ItemCode,
    pub as_of: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// 不開示: the copy is held but its data is not disclosed.
    pub withheld: bool,
    pub fields: Vec<AnswerField>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A provision inquiry and where it stands.
#[derive(Debug, Clone, Serialize)]
pub struct ProvisionInquiry {
    pub id: String,
    /// `pending`, `answered`, `not_held`, `refused` or `timed_out`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<Answer>,
}

type CopyKey = (String, UnifiedAddressNumber, ItemCode);

/// The provision database.
#[derive(Debug, Default)]
pub struct ProvisionDb {
    copies: HashMap<CopyKey, Vec<SimCopy>>,
    by_record: HashMap<String, CopyKey>,
    log: Vec<(String, ProvisionEntry)>,
    inquiries: HashMap<String, ProvisionInquiry>,
}

/// What the simulator knows about a provision inquiry besides its body.
#[derive(Debug)]
pub struct AskContext {
    /// The new inquiry's id.
    pub id: String,
    /// Whether the national permission table allows the (procedure, item).
    pub permitted: bool,
    /// The agency asking.
    pub inquirer: AgencyCode,
    /// Today in JST, `YYYY-MM-DD` (the date asked when the body names none).
    pub today: String,
    /// Now, RFC 3339.
    pub now: String,
    /// The city the provision is reported to when no copy is held anywhere.
    pub default_city: Option<String>,
}

/// What registering a copy version did.
#[derive(Debug, PartialEq, Eq)]
pub enum Registered {
    /// A new version took effect.
    New,
    /// The same version was registered before (a resend): no effect.
    Again,
}

impl ProvisionDb {
    /// Registers one version from `agency`; a resend of the same record is recognised.
    pub fn register(
        &mut self,
        agency: &str,
        unified: UnifiedAddressNumber,
        item: ItemCode,
        copy: SimCopy,
    ) -> Result<Registered, PlatformFault> {
        let key = (agency.to_string(), unified, item);
        let conflict = || PlatformFault {
            code: faults::COPY_CONFLICT.into(),
            message: "副本の版番号またはレコード識別番号が重複しています。".into(),
        };
        if let Some(k) = self.by_record.get(&copy.record_id) {
            let same = *k == key
                && self
                    .copies
                    .get(k)
                    .and_then(|v| v.iter().find(|c| c.record_id == copy.record_id))
                    == Some(&copy);
            return if same {
                Ok(Registered::Again)
            } else {
                Err(conflict())
            };
        }
        let versions = self.copies.entry(key.clone()).or_default();
        if versions.iter().any(|c| c.version == copy.version) {
            return Err(conflict());
        }
        self.by_record.insert(copy.record_id.clone(), key);
        versions.push(copy);
        versions.sort_by_key(|c| c.version);
        Ok(Registered::New)
    }

    /// Every version held for a person's item at `agency` (for the tests' view).
    pub fn versions(&self) -> Vec<(String, String, String, u32, bool)> {
        let mut out: Vec<_> = self
            .copies
            .iter()
            .flat_map(|((a, u, i), v)| {
                v.iter().map(move |c| {
                    (
                        a.clone(),
                        u.to_string(),
                        i.to_string(),
                        c.version,
                        c.withdrawn,
                    )
                })
            })
            .collect();
        out.sort();
        out
    }

    /// Answers a provision inquiry at once (copies are answered automatically) and logs the
    /// provision for the city holding the copy. `permitted` is the national table's say.
    pub fn ask(&mut self, req: &ProvisionInquiryRequest, ctx: AskContext) -> ProvisionInquiry {
        let AskContext {
            id,
            permitted,
            inquirer,
            today,
            now,
            default_city,
        } = ctx;
        let as_of = req.as_of.clone().unwrap_or(today);
        let mut answer = Answer {
            item_code: req.item_code.clone(),
            as_of: as_of.clone(),
            version: None,
            dataset: None,
            withheld: false,
            fields: Vec::new(),
            reason: None,
        };
        if !permitted {
            answer.reason = Some("national permission table does not allow this".into());
            let q = ProvisionInquiry {
                id: id.clone(),
                status: "refused",
                answer: Some(answer),
            };
            self.inquiries.insert(id, q.clone());
            return q;
        }
        let held = self
            .copies
            .iter()
            .find(|((_, u, i), _)| *u == req.unified_address_number && *i == req.item_code)
            .map(|((a, _, _), v)| (a.clone(), v.clone()));
        let city = held.as_ref().map(|(a, _)| a.clone()).or(default_city);
        let chosen = held.as_ref().and_then(|(_, versions)| {
            let latest = versions.last()?;
            if latest.withdrawn {
                return None;
            }
            versions
                .iter()
                .filter(|c| {
                    !c.withdrawn
                        && c.effective_from.as_str() <= as_of.as_str()
                        && c.effective_to
                            .as_deref()
                            .is_none_or(|t| as_of.as_str() <= t)
                })
                .max_by_key(|c| c.version)
                .cloned()
        });
        let (status, item) = match &chosen {
            None => ("not_held", item_status::NOT_HELD),
            Some(c) => {
                answer.version = Some(c.version);
                answer.dataset = Some(c.dataset.clone());
                if c.non_disclosure {
                    answer.withheld = true;
                    answer.reason = Some("不開示".into());
                    ("answered", item_status::WITHHELD)
                } else {
                    answer.fields = c
                        .fields
                        .iter()
                        .map(|(n, v)| AnswerField {
                            name: n.clone(),
                            value: v.clone(),
                        })
                        .collect();
                    ("answered", item_status::PROVIDED)
                }
            }
        };
        if let Some(city) = city {
            let seq = self.log.len() as u64 + 1;
            self.log.push((
                city,
                ProvisionEntry {
                    seq,
                    unified: req.unified_address_number,
                    item: req.item_code.clone(),
                    procedure: req.procedure_code.clone(),
                    inquirer,
                    provided_at: now,
                    item_status: item.into(),
                    version: answer.version,
                },
            ));
        }
        let q = ProvisionInquiry {
            id: id.clone(),
            status,
            answer: Some(answer),
        };
        self.inquiries.insert(id, q.clone());
        q
    }

    /// A provision inquiry by id.
    pub fn inquiry(&self, id: &str) -> Option<ProvisionInquiry> {
        self.inquiries.get(id).cloned()
    }

    /// `agency`'s provision-log entries after `after`, at most `limit`.
    pub fn log_after(&self, agency: &str, after: u64, limit: usize) -> Vec<ProvisionEntry> {
        self.log
            .iter()
            .filter(|(a, e)| a == agency && e.seq > after)
            .take(limit)
            .map(|(_, e)| e.clone())
            .collect()
    }
}

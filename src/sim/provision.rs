//! The simulator's provision database (情報提供データベース): the copies (副本) cities transfer,
//! by city, person (unified address number) and item, every version kept; and the answers
//! it gives other agencies from them — the version in force on the asked date, "not held",
//! a refusal by the national permission table, or "withheld" under 不開示 — each reported back
//! to the city that holds the copy through its provision log.
//!
//! Items the national table marks manual (手動提供) are not answered from copies: the inquiry
//! becomes a request handed to the city (`pending`, fetched with `ManualRequestFetch`), with a
//! deadline; the city's `ManualAnswer` makes it `answered`, `not_held` or `refused`, and past
//! the deadline it is `timed_out` and a late answer is refused.

use std::collections::HashMap;

use renkei_ids::{AgencyCode, ItemCode, ProcedureCode, UnifiedAddressNumber};
use renkei_platform::{faults, item_status, ManualRequest, PlatformFault, ProvisionEntry};
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
    /// For a manual item: the city's time to answer, in milliseconds, instead of the
    /// simulator's `manual_deadline_secs` (tests play a deadline passing with it).
    #[serde(default)]
    pub deadline_ms: Option<u64>,
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

impl Answer {
    /// An answer for `item` on `as_of` with nothing in it yet.
    fn empty(item: &ItemCode, as_of: &str) -> Self {
        Answer {
            item_code: item.clone(),
            as_of: as_of.to_string(),
            version: None,
            dataset: None,
            withheld: false,
            fields: Vec::new(),
            reason: None,
        }
    }
}

/// A provision inquiry and where it stands.
#[derive(Debug, Clone, Serialize)]
pub struct ProvisionInquiry {
    pub id: String,
    /// `pending`, `answered`, `not_held`, `refused` or `timed_out`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<Answer>,
    /// For a manual item: when the city's answer is due (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
}

/// A manual provision request handed to a city, and where it stands.
#[derive(Debug, Clone)]
struct ManualEntry {
    city: String,
    request: ManualRequest,
    deadline_ms: u64,
    /// A timed-out request is listed to its city once more, so the city sees the timeout
    /// even when it first hears of the request after the deadline.
    timeout_listed: bool,
    /// The answer taken, to recognise a resend of it.
    decided: Option<ManualAnswerKind>,
}

/// What a city answered to a manual provision request (the data already opened).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManualAnswerKind {
    /// Provided: the fields (platform names and values).
    Provide(Vec<(String, String)>),
    /// The city holds nothing for the person.
    NotHeld,
    /// Refused with a reason code.
    Refuse(String),
}

type CopyKey = (String, UnifiedAddressNumber, ItemCode);

/// The provision database.
#[derive(Debug, Default)]
pub struct ProvisionDb {
    copies: HashMap<CopyKey, Vec<SimCopy>>,
    by_record: HashMap<String, CopyKey>,
    log: Vec<(String, ProvisionEntry)>,
    inquiries: HashMap<String, ProvisionInquiry>,
    manual: HashMap<String, ManualEntry>,
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
    /// The national table marks the (procedure, item) manual: when the city's answer is
    /// due (ms since the epoch, and as RFC 3339).
    pub manual_deadline: Option<(u64, String)>,
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
            manual_deadline,
        } = ctx;
        let as_of = req.as_of.clone().unwrap_or(today);
        let mut answer = Answer::empty(&req.item_code, &as_of);
        if !permitted {
            answer.reason = Some("national permission table does not allow this".into());
            let q = ProvisionInquiry {
                id: id.clone(),
                status: "refused",
                answer: Some(answer),
                deadline: None,
            };
            self.inquiries.insert(id, q.clone());
            return q;
        }
        if let Some((deadline_ms, deadline)) = manual_deadline {
            let held_by = self
                .copies
                .keys()
                .find(|(_, u, i)| *u == req.unified_address_number && *i == req.item_code)
                .map(|(a, _, _)| a.clone());
            if let Some(city) = held_by.or(default_city.clone()) {
                return self.hand_to_city(req, &id, city, inquirer, as_of, deadline_ms, deadline);
            }
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
            deadline: None,
        };
        self.inquiries.insert(id, q.clone());
        q
    }

    /// Makes a manual item's inquiry a request for `city` to answer by the deadline.
    #[allow(clippy::too_many_arguments)] // one call site; the parts of one request
    fn hand_to_city(
        &mut self,
        req: &ProvisionInquiryRequest,
        id: &str,
        city: String,
        inquirer: AgencyCode,
        as_of: String,
        deadline_ms: u64,
        deadline: String,
    ) -> ProvisionInquiry {
        let entry = ManualEntry {
            city,
            request: ManualRequest {
                request_id: id.to_string(),
                unified: req.unified_address_number,
                procedure: req.procedure_code.clone(),
                item: req.item_code.clone(),
                as_of,
                inquirer,
                deadline: deadline.clone(),
            },
            deadline_ms,
            timeout_listed: false,
            decided: None,
        };
        self.manual.insert(id.to_string(), entry);
        let q = ProvisionInquiry {
            id: id.to_string(),
            status: "pending",
            answer: None,
            deadline: Some(deadline),
        };
        self.inquiries.insert(id.to_string(), q.clone());
        q
    }

    /// Marks every pending manual request past its deadline `timed_out`.
    fn expire(&mut self, now_ms: u64) {
        for (id, e) in &self.manual {
            if e.decided.is_none() && now_ms >= e.deadline_ms {
                if let Some(q) = self.inquiries.get_mut(id) {
                    if q.status == "pending" {
                        q.status = "timed_out";
                        q.answer = Some(Answer {
                            reason: Some("the city did not answer before the deadline".into()),
                            ..Answer::empty(&e.request.item, &e.request.as_of)
                        });
                    }
                }
            }
        }
    }

    /// The manual requests `city` must answer (oldest first, at most `limit`), and those that
    /// timed out since it last asked.
    pub fn manual_pending(&mut self, city: &str, now_ms: u64, limit: usize) -> Vec<ManualRequest> {
        self.expire(now_ms);
        let mut out: Vec<&mut ManualEntry> = self
            .manual
            .values_mut()
            .filter(|e| {
                e.city == city
                    && e.decided.is_none()
                    && (now_ms < e.deadline_ms || !e.timeout_listed)
            })
            .collect();
        out.sort_by(|a, b| a.request.request_id.cmp(&b.request.request_id));
        out.into_iter()
            .take(limit)
            .map(|e| {
                if now_ms >= e.deadline_ms {
                    e.timeout_listed = true;
                }
                e.request.clone()
            })
            .collect()
    }

    /// The item a manual request of `city` asks for, if there is such a request.
    pub fn manual_item(&self, city: &str, request_id: &str) -> Option<ItemCode> {
        self.manual
            .get(request_id)
            .filter(|e| e.city == city)
            .map(|e| e.request.item.clone())
    }

    /// Takes `city`'s answer to a manual request: refused when there is no such request for
    /// it, past the deadline, or when it was answered differently before (the same answer
    /// again is a resend and takes effect once).
    pub fn manual_answer(
        &mut self,
        city: &str,
        request_id: &str,
        answer: ManualAnswerKind,
        now_ms: u64,
    ) -> Result<(), PlatformFault> {
        self.expire(now_ms);
        let Some(e) = self.manual.get_mut(request_id).filter(|e| e.city == city) else {
            return Err(PlatformFault {
                code: faults::MANUAL_UNKNOWN.into(),
                message: "手動提供の依頼が見つかりません。".into(),
            });
        };
        match &e.decided {
            Some(d) if *d == answer => return Ok(()),
            Some(_) => {
                return Err(PlatformFault {
                    code: faults::MANUAL_ANSWERED.into(),
                    message: "この依頼には回答済みです。".into(),
                })
            }
            None => {}
        }
        if now_ms >= e.deadline_ms {
            return Err(PlatformFault {
                code: faults::MANUAL_TIMED_OUT.into(),
                message: "回答期限を過ぎています。".into(),
            });
        }
        let mut a = Answer::empty(&e.request.item, &e.request.as_of);
        let status = match &answer {
            ManualAnswerKind::Provide(fields) => {
                a.fields = fields
                    .iter()
                    .map(|(n, v)| AnswerField {
                        name: n.clone(),
                        value: v.clone(),
                    })
                    .collect();
                "answered"
            }
            ManualAnswerKind::NotHeld => "not_held",
            ManualAnswerKind::Refuse(reason) => {
                a.reason = Some(reason.clone());
                "refused"
            }
        };
        e.decided = Some(answer);
        if let Some(q) = self.inquiries.get_mut(request_id) {
            q.status = status;
            q.answer = Some(a);
        }
        Ok(())
    }

    /// A provision inquiry by id (a manual one past its deadline reads `timed_out`).
    pub fn inquiry(&mut self, id: &str, now_ms: u64) -> Option<ProvisionInquiry> {
        self.expire(now_ms);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(id: &str, deadline_ms: u64) -> AskContext {
        AskContext {
            id: id.into(),
            permitted: true,
            inquirer: AgencyCode::parse("0110020000000099").unwrap(),
            today: "2026-06-01".into(),
            now: "2026-06-01T09:00:00+09:00".into(),
            default_city: Some("0110020000000001".into()),
            manual_deadline: Some((deadline_ms, "2026-06-04T09:00:00+09:00".into())),
        }
    }

    fn req() -> ProvisionInquiryRequest {
        serde_json::from_value(serde_json::json!({
            "unified_address_number": UnifiedAddressNumber::from_serial(7).unwrap().to_string(),
            "procedure_code": "JT01010000000215",
            "item_code": "TM00000000000002",
        }))
        .unwrap()
    }

    #[test]
    fn manual_requests_wait_for_the_city_then_answer_or_time_out() {
        let city = "0110020000000001";
        let mut db = ProvisionDb::default();
        let q = db.ask(&req(), ctx("PQ1", 1_000));
        assert_eq!(q.status, "pending");
        assert!(db.ask(&req(), ctx("PQ2", 1_000)).answer.is_none());
        // Listed to the holding city only, oldest first.
        let listed = db.manual_pending(city, 10, 10);
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].request_id, "PQ1");
        assert!(db.manual_pending("0110020000000002", 10, 10).is_empty());
        // Another city cannot answer; the holder can, once in effect.
        assert!(db
            .manual_answer("0110020000000002", "PQ1", ManualAnswerKind::NotHeld, 10)
            .is_err());
        let fields = vec![("課税年度".to_string(), "2026".to_string())];
        let provide = ManualAnswerKind::Provide(fields);
        db.manual_answer(city, "PQ1", provide.clone(), 10).unwrap();
        db.manual_answer(city, "PQ1", provide, 10).unwrap();
        let e = db
            .manual_answer(city, "PQ1", ManualAnswerKind::NotHeld, 10)
            .unwrap_err();
        assert_eq!(e.code, faults::MANUAL_ANSWERED);
        let q = db.inquiry("PQ1", 10).unwrap();
        assert_eq!(q.status, "answered");
        assert_eq!(q.answer.unwrap().fields[0].value, "2026");
        // Past the deadline: timed out, listed once more, a late answer refused.
        assert_eq!(db.inquiry("PQ2", 1_000).unwrap().status, "timed_out");
        let late = db.manual_pending(city, 1_000, 10);
        assert_eq!(late.len(), 1);
        assert!(db.manual_pending(city, 1_001, 10).is_empty());
        let e = db
            .manual_answer(city, "PQ2", ManualAnswerKind::Refuse("x".into()), 1_001)
            .unwrap_err();
        assert_eq!(e.code, faults::MANUAL_TIMED_OUT);
        assert_eq!(db.inquiry("PQ2", 1_001).unwrap().status, "timed_out");
    }
}

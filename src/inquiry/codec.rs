//! The bytes an inquiry and an idempotency entry are stored as (inside the at-rest seal, for
//! the inquiry): a version byte, then a compact binary encoding (postcard) of a mirror of the
//! model with no optional fields left out, so the encoding is positional and stable.
//!
//! Values written by earlier builds are JSON, which always starts with `{`; they read back
//! unchanged ([`decode_inquiry`], [`decode_idempotency`]) and are rewritten in the new
//! encoding the next time the inquiry changes. A new layout gets a new version byte; the old
//! ones stay readable.

use renkei_ids::{
    AffairCode, BusinessNumber, InquiryId, ItemCode, ProcedureCode, ProcessingSerial, SystemId,
    UnifiedAddressNumber,
};
use serde::{Deserialize, Serialize};

use super::model::{Conditions, Inquiry, InquiryError, InquiryResult, ResultItem, Status};
use super::repo::IdemEntry;

/// Version byte of an inquiry value: postcard of [`StoredInquiry`].
const INQUIRY_V1: u8 = 1;
/// Version byte of an idempotency value: the request's SHA-256 (32 bytes), then the id.
const IDEM_V1: u8 = 1;
/// The first byte of every value written as JSON by earlier builds.
const JSON_OBJECT: u8 = b'{';

/// Why stored bytes did not decode.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("JSON value: {0}")]
    Json(#[from] serde_json::Error),
    #[error("binary value: {0}")]
    Binary(#[from] postcard::Error),
    #[error("unknown value version {0}")]
    Version(u8),
    #[error("malformed value: {0}")]
    Malformed(&'static str),
}

#[derive(Serialize, Deserialize)]
enum StoredConditions {
    FiscalYear(u16),
    Period(String, String),
}

#[derive(Serialize, Deserialize)]
struct StoredError {
    code: String,
    message: String,
    platform_code: Option<String>,
    platform_message: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct StoredResult {
    provider_agency: Option<String>,
    detail_status: String,
    item_status: String,
    items: Vec<(ItemCode, Vec<(String, String)>)>,
}

/// [`Inquiry`] field for field, in a form a positional encoding can carry.
#[derive(Serialize, Deserialize)]
struct StoredInquiry {
    id: InquiryId,
    system: SystemId,
    business_number: BusinessNumber,
    unified: UnifiedAddressNumber,
    affair: AffairCode,
    procedure: ProcedureCode,
    item: ItemCode,
    conditions: StoredConditions,
    non_disclosure: bool,
    status: u8,
    serial: Option<ProcessingSerial>,
    attempts: u32,
    result: Option<StoredResult>,
    error: Option<StoredError>,
    batch: Option<String>,
    accepted_ms: u64,
    sent_ms: Option<u64>,
    finished_ms: Option<u64>,
    deadline_ms: u64,
    due_key: Option<Vec<u8>>,
}

fn status_code(s: Status) -> u8 {
    match s {
        Status::Queued => 0,
        Status::AwaitingCode => 1,
        Status::Sent => 2,
        Status::Answered => 3,
        Status::Failed => 4,
    }
}

fn status_from(code: u8) -> Result<Status, CodecError> {
    Status::ALL
        .get(usize::from(code))
        .copied()
        .ok_or(CodecError::Malformed("status"))
}

/// The stored bytes of an inquiry (to be sealed at rest by the caller).
pub fn encode_inquiry(i: &Inquiry) -> Result<Vec<u8>, CodecError> {
    let stored = StoredInquiry {
        id: i.id.clone(),
        system: i.system.clone(),
        business_number: i.business_number.clone(),
        unified: i.unified,
        affair: i.affair.clone(),
        procedure: i.procedure.clone(),
        item: i.item.clone(),
        conditions: match &i.conditions {
            Conditions::FiscalYear { fiscal_year } => StoredConditions::FiscalYear(*fiscal_year),
            Conditions::Period { from, to } => StoredConditions::Period(from.clone(), to.clone()),
        },
        non_disclosure: i.non_disclosure,
        status: status_code(i.status),
        serial: i.serial.clone(),
        attempts: i.attempts,
        result: i.result.as_ref().map(|r| StoredResult {
            provider_agency: r.provider_agency.clone(),
            detail_status: r.detail_status.clone(),
            item_status: r.item_status.clone(),
            items: r
                .items
                .iter()
                .map(|it| (it.item.clone(), it.fields.clone()))
                .collect(),
        }),
        error: i.error.as_ref().map(|e| StoredError {
            code: e.code.clone(),
            message: e.message.clone(),
            platform_code: e.platform_code.clone(),
            platform_message: e.platform_message.clone(),
        }),
        batch: i.batch.clone(),
        accepted_ms: i.accepted_ms,
        sent_ms: i.sent_ms,
        finished_ms: i.finished_ms,
        deadline_ms: i.deadline_ms,
        due_key: i.due_key.clone(),
    };
    let mut out = vec![INQUIRY_V1];
    postcard::to_io(&stored, &mut out)?;
    Ok(out)
}

/// An inquiry from its stored bytes: the binary encoding, or JSON written by earlier builds.
pub fn decode_inquiry(bytes: &[u8]) -> Result<Inquiry, CodecError> {
    match bytes.first() {
        Some(&JSON_OBJECT) => Ok(serde_json::from_slice(bytes)?),
        Some(&INQUIRY_V1) => {
            let s: StoredInquiry = postcard::from_bytes(&bytes[1..])?;
            Ok(Inquiry {
                id: s.id,
                system: s.system,
                business_number: s.business_number,
                unified: s.unified,
                affair: s.affair,
                procedure: s.procedure,
                item: s.item,
                conditions: match s.conditions {
                    StoredConditions::FiscalYear(fiscal_year) => {
                        Conditions::FiscalYear { fiscal_year }
                    }
                    StoredConditions::Period(from, to) => Conditions::Period { from, to },
                },
                non_disclosure: s.non_disclosure,
                status: status_from(s.status)?,
                serial: s.serial,
                attempts: s.attempts,
                result: s.result.map(|r| InquiryResult {
                    provider_agency: r.provider_agency,
                    detail_status: r.detail_status,
                    item_status: r.item_status,
                    items: r
                        .items
                        .into_iter()
                        .map(|(item, fields)| ResultItem { item, fields })
                        .collect(),
                }),
                error: s.error.map(|e| InquiryError {
                    code: e.code,
                    message: e.message,
                    platform_code: e.platform_code,
                    platform_message: e.platform_message,
                }),
                batch: s.batch,
                accepted_ms: s.accepted_ms,
                sent_ms: s.sent_ms,
                finished_ms: s.finished_ms,
                deadline_ms: s.deadline_ms,
                due_key: s.due_key,
            })
        }
        Some(&v) => Err(CodecError::Version(v)),
        None => Err(CodecError::Malformed("empty")),
    }
}

/// The stored bytes of an idempotency entry: version, the raw request hash, the id.
pub fn encode_idempotency(e: &IdemEntry) -> Result<Vec<u8>, CodecError> {
    let hash = hex::decode(&e.request_sha256)
        .ok()
        .filter(|h| h.len() == 32)
        .ok_or(CodecError::Malformed("request hash"))?;
    let mut out = Vec::with_capacity(1 + 32 + e.id.as_str().len());
    out.push(IDEM_V1);
    out.extend_from_slice(&hash);
    out.extend_from_slice(e.id.as_str().as_bytes());
    Ok(out)
}

/// An idempotency entry from its stored bytes (binary, or JSON written by earlier builds).
pub fn decode_idempotency(bytes: &[u8]) -> Result<IdemEntry, CodecError> {
    match bytes.first() {
        Some(&JSON_OBJECT) => Ok(serde_json::from_slice(bytes)?),
        Some(&IDEM_V1) if bytes.len() > 33 => {
            let id = std::str::from_utf8(&bytes[33..])
                .ok()
                .and_then(|s| InquiryId::parse(s).ok())
                .ok_or(CodecError::Malformed("inquiry id"))?;
            Ok(IdemEntry {
                id,
                request_sha256: hex::encode(&bytes[1..33]),
            })
        }
        Some(&v) => Err(CodecError::Version(v)),
        None => Err(CodecError::Malformed("empty")),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use renkei_crypto::at_rest::encrypt_at_rest;
    use renkei_crypto::keyring::{Keyring, MasterKey};
    use renkei_ids::AgencyCode;
    use renkei_store::sled_store::{Durability, SledStore};
    use renkei_store::{Batch, Store, Tree};

    use super::*;
    use crate::inquiry::repo::{inquiry_location, InquiryRepo};
    use crate::keyring::KeyState;

    /// An answered inquiry as an earlier build stored it: JSON (with the old `item_code`
    /// spelling in its result and a due key as a number array).
    fn old_json(id: &InquiryId) -> String {
        let u = UnifiedAddressNumber::from_serial(42).unwrap();
        format!(
            r#"{{"id":"{id}","system":"kodomo-iryo","business_number":"B000123","unified":"{u}",
"affair":"JM01010000000001","procedure":"JT01010000000214","item":"TM00000000000002",
"conditions":{{"fiscal_year":2026}},"non_disclosure":false,"status":"answered",
"serial":"S0001","attempts":1,"result":{{"provider_agency":"1300000000000001",
"detail_status":"09","item_status":"01","items":[{{"item_code":"TM00000000000002",
"fields":[["課税所得額","1234000"],["年度","2026"]]}}]}},"error":null,"batch":null,
"accepted_ms":1800000000000,"sent_ms":1800000000100,"finished_ms":1800000000200,
"deadline_ms":1800086400000,"due_key":[0,1,2,105]}}"#
        )
    }

    fn id() -> InquiryId {
        InquiryId::from_time_and_random(1_800_000_000_000, [7; 10])
    }

    fn same(a: &Inquiry, b: &Inquiry) {
        assert_eq!(
            serde_json::to_value(a).unwrap(),
            serde_json::to_value(b).unwrap()
        );
    }

    #[test]
    fn binary_round_trips_and_is_smaller_than_json() {
        let mut i: Inquiry = serde_json::from_str(&old_json(&id())).unwrap();
        let json = serde_json::to_vec(&i).unwrap();
        let bin = encode_inquiry(&i).unwrap();
        assert_eq!(bin[0], INQUIRY_V1);
        same(&decode_inquiry(&bin).unwrap(), &i);
        assert!(
            bin.len() * 2 < json.len(),
            "{} vs {}",
            bin.len(),
            json.len()
        );
        // Every shape of the optional parts survives.
        i.conditions = Conditions::Period {
            from: "2026-04-01".into(),
            to: "2027-03-31".into(),
        };
        i.status = Status::Failed;
        i.result = None;
        i.error = Some(InquiryError {
            code: "platform_rejected".into(),
            message: "the platform refused the inquiry".into(),
            platform_code: None,
            platform_message: Some("拒否".into()),
        });
        i.due_key = None;
        i.batch = Some("BA1".into());
        same(&decode_inquiry(&encode_inquiry(&i).unwrap()).unwrap(), &i);
        assert!(decode_inquiry(&[9, 1, 2]).is_err());
        assert!(decode_inquiry(&[]).is_err());
        assert!(decode_inquiry(&bin[..bin.len() / 2]).is_err());
    }

    #[test]
    fn idempotency_entries_round_trip_and_old_json_reads() {
        let e = IdemEntry {
            id: id(),
            request_sha256: crate::util::sha256_hex(b"request"),
        };
        let bin = encode_idempotency(&e).unwrap();
        assert_eq!(bin.len(), 1 + 32 + 28);
        let back = decode_idempotency(&bin).unwrap();
        assert_eq!(
            (back.id, back.request_sha256),
            (e.id.clone(), e.request_sha256.clone())
        );
        let old = serde_json::to_vec(&e).unwrap();
        let back = decode_idempotency(&old).unwrap();
        assert_eq!((back.id, back.request_sha256), (e.id, e.request_sha256));
        assert!(decode_idempotency(&bin[..20]).is_err());
    }

    /// A store written by an earlier build (sealed JSON inquiry, JSON idempotency entry) keeps
    /// working: both read back through the repository, and the next write is binary.
    #[tokio::test]
    async fn an_old_store_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let master = MasterKey::generate_file(&dir.path().join("master.key")).unwrap();
        Keyring::generate()
            .unwrap()
            .save(&dir.path().join("keys"), &master)
            .unwrap();
        let keys = Arc::new(
            KeyState::load(
                AgencyCode::parse("0110020000000001").unwrap(),
                &dir.path().join("keys"),
                &dir.path().join("master.key"),
            )
            .unwrap(),
        );
        let store: Arc<dyn Store> =
            SledStore::open(&dir.path().join("store"), Durability::FlushOnly).unwrap();
        let id = id();
        let key = id.as_str().as_bytes().to_vec();
        let json = old_json(&id);
        let sealed =
            encrypt_at_rest(&keys.keyring(), &inquiry_location(&key), json.as_bytes()).unwrap();
        let system = SystemId::parse("kodomo-iryo").unwrap();
        let idem = IdemEntry {
            id: id.clone(),
            request_sha256: crate::util::sha256_hex(b"request"),
        };
        let mut b = Batch::new();
        b.put(Tree::Inquiries, key.clone(), sealed);
        b.put(
            Tree::Idempotency,
            renkei_store::key2(system.as_str(), "k-1"),
            serde_json::to_vec(&idem).unwrap(),
        );
        store.commit(b).await.unwrap();

        let repo = InquiryRepo::new(store.clone(), keys.clone());
        let got = repo.get(&id).unwrap().expect("the old inquiry");
        same(&got, &serde_json::from_str(&json).unwrap());
        assert_eq!(got.result.as_ref().unwrap().items[0].fields[0].1, "1234000");
        let e = repo
            .idempotency(&system, "k-1")
            .unwrap()
            .expect("old entry");
        assert_eq!(e.id, id);
        assert_eq!(e.request_sha256, idem.request_sha256);

        // Rewritten, it is stored compact (still sealed) and reads back the same.
        let mut b = Batch::new();
        repo.stage_put(&mut b, &got).unwrap();
        store.commit(b).await.unwrap();
        let raw = store.get(Tree::Inquiries, &key).unwrap().unwrap();
        assert!(raw.starts_with(renkei_crypto::at_rest::AT_REST_MAGIC));
        let plain =
            renkei_crypto::at_rest::decrypt_at_rest(&keys.keyring(), &inquiry_location(&key), &raw)
                .unwrap();
        assert_eq!(plain[0], INQUIRY_V1);
        assert!(raw.len() < json.len());
        same(&repo.get(&id).unwrap().unwrap(), &got);
    }
}

//! Walks `conformance/platform/`: each `NAME.json` (a JSON mirror of a message or payload,
//! described in that folder's README) is built into a value, written with `to_xml` and
//! compared byte for byte with `NAME.xml`; `NAME.xml` is parsed back to the same value and
//! validated with xmllint against the XSDs. Each `invalid/NAME.xml` must be refused with the
//! code and path given in `invalid/expected.json`.
//!
//! `RENKEI_BLESS_CONFORMANCE=1` writes the `.xml` files from the current writer instead of
//! comparing (for adding vectors; review the diff by hand).

mod common;

use std::path::{Path, PathBuf};

use renkei_ids::{
    AffairCode, AgencyCode, Fugo, IndividualNumber, ItemCode, ProcedureCode, ProcessingSerial,
    UnifiedAddressNumber,
};
use renkei_platform::*;
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/platform")
}

fn s<'v>(v: &'v Value, k: &str) -> &'v str {
    v.get(k)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("field {k} missing or not a string"))
}

fn opt_s(v: &Value, k: &str) -> Option<String> {
    match v.get(k) {
        None | Some(Value::Null) => None,
        Some(x) => Some(
            x.as_str()
                .unwrap_or_else(|| panic!("{k} not a string"))
                .to_owned(),
        ),
    }
}

fn u(v: &Value, k: &str) -> u64 {
    v.get(k)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("field {k} missing or not a number"))
}

fn agency(v: &Value, k: &str) -> AgencyCode {
    AgencyCode::parse(s(v, k)).unwrap()
}

fn bytes(v: &Value, k: &str) -> Vec<u8> {
    hex::decode(s(v, k)).unwrap()
}

fn pairs(v: &Value, k: &str) -> Vec<(String, String)> {
    v[k].as_array()
        .unwrap_or_else(|| panic!("{k} not an array"))
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_owned(),
                p[1].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn header(v: &Value) -> Header {
    let h = &v["header"];
    Header {
        message_id: s(h, "message_id").into(),
        sender: agency(h, "sender"),
        recipient: agency(h, "recipient"),
        created_at: s(h, "created_at").into(),
        in_reply_to: opt_s(h, "in_reply_to"),
    }
}

fn sealed(v: &Value) -> SealedData {
    SealedData {
        key_version: u32::try_from(u(v, "key_version")).unwrap(),
        enc: bytes(v, "enc_hex"),
        ciphertext: bytes(v, "ciphertext_hex"),
    }
}

fn fault(v: &Value) -> PlatformFault {
    PlatformFault {
        code: s(v, "code").into(),
        message: s(v, "message").into(),
    }
}

fn key_use(v: &Value) -> KeyUse {
    match s(v, "key_use") {
        "signing" => KeyUse::Signing,
        "sealing" => KeyUse::Sealing,
        other => panic!("bad key_use {other}"),
    }
}

fn key(v: &Value) -> PublishedKey {
    PublishedKey {
        agency: agency(v, "agency"),
        key_use: key_use(v),
        version: u32::try_from(u(v, "version")).unwrap(),
        public_key: bytes(v, "public_key_hex"),
        not_after: opt_s(v, "not_after"),
    }
}

fn message(v: &Value) -> Message {
    let header = header(v);
    match s(v, "type") {
        "CodeAcquisitionRequest" => Message::CodeAcquisitionRequest {
            header,
            unified: UnifiedAddressNumber::parse(s(v, "unified")).unwrap(),
            sealed: sealed(&v["sealed"]),
        },
        "CodeAcquisitionResponse" => Message::CodeAcquisitionResponse {
            header,
            unified: UnifiedAddressNumber::parse(s(v, "unified")).unwrap(),
            outcome: match v["outcome"].get("fugo") {
                Some(f) => CodeOutcome::Acquired {
                    fugo: Fugo::parse(f.as_str().unwrap()).unwrap(),
                },
                None => CodeOutcome::Failed {
                    fault: fault(&v["outcome"]["fault"]),
                },
            },
        },
        "InquiryRequest" => Message::InquiryRequest {
            header,
            record_id: s(v, "record_id").into(),
            affair: AffairCode::parse(s(v, "affair")).unwrap(),
            procedure: ProcedureCode::parse(s(v, "procedure")).unwrap(),
            item: ItemCode::parse(s(v, "item")).unwrap(),
            inquirer: agency(v, "inquirer"),
            provider: opt_s(v, "provider").map(|p| AgencyCode::parse(&p).unwrap()),
            non_disclosure: v["non_disclosure"].as_bool().unwrap(),
            condition: match v["condition"].get("fiscal_year") {
                Some(y) => Condition::FiscalYear(u16::try_from(y.as_u64().unwrap()).unwrap()),
                None => {
                    let p = &v["condition"]["period"];
                    Condition::Period {
                        from: s(p, "from").into(),
                        to: s(p, "to").into(),
                    }
                }
            },
            sealed: sealed(&v["sealed"]),
        },
        "InquiryReceipt" => Message::InquiryReceipt {
            header,
            record_id: s(v, "record_id").into(),
            outcome: match v["outcome"].get("serial") {
                Some(x) => ReceiptOutcome::Accepted {
                    serial: ProcessingSerial::parse(x.as_str().unwrap()).unwrap(),
                },
                None => ReceiptOutcome::Rejected {
                    fault: fault(&v["outcome"]["fault"]),
                },
            },
        },
        "ResultRequest" => Message::ResultRequest {
            header,
            serial: ProcessingSerial::parse(s(v, "serial")).unwrap(),
        },
        "InquiryResult" => Message::InquiryResult {
            header,
            serial: ProcessingSerial::parse(s(v, "serial")).unwrap(),
            record_id: s(v, "record_id").into(),
            status: match &v["status"] {
                Value::String(p) if p == "pending" => ResultStatus::Pending,
                st => ResultStatus::Finished {
                    detail_status: s(st, "detail_status").into(),
                    item_status: s(st, "item_status").into(),
                },
            },
            provider: opt_s(v, "provider").map(|p| AgencyCode::parse(&p).unwrap()),
            sealed: (!v["sealed"].is_null()).then(|| sealed(&v["sealed"])),
            fault: (!v["fault"].is_null()).then(|| fault(&v["fault"])),
        },
        "KeyPublication" => Message::KeyPublication {
            header,
            key: key(&v["key"]),
        },
        "KeyPublicationAck" => Message::KeyPublicationAck {
            header,
            agency: agency(v, "agency"),
            key_use: key_use(v),
            version: u32::try_from(u(v, "version")).unwrap(),
        },
        "MasterInfo" => Message::MasterInfo {
            header,
            valid_until: s(v, "valid_until").into(),
            agencies: pairs(v, "agencies")
                .into_iter()
                .map(|(c, n)| (AgencyCode::parse(&c).unwrap(), n))
                .collect(),
            procedures: pairs(v, "procedures")
                .into_iter()
                .map(|(c, n)| (ProcedureCode::parse(&c).unwrap(), n))
                .collect(),
            items: pairs(v, "items")
                .into_iter()
                .map(|(c, n)| (ItemCode::parse(&c).unwrap(), n))
                .collect(),
            permissions: pairs(v, "permissions")
                .into_iter()
                .map(|(p, i)| {
                    (
                        ProcedureCode::parse(&p).unwrap(),
                        ItemCode::parse(&i).unwrap(),
                    )
                })
                .collect(),
            keys: v["keys"].as_array().unwrap().iter().map(key).collect(),
        },
        "CopyTransfer" => Message::CopyTransfer {
            header,
            record_id: s(v, "record_id").into(),
            unified: UnifiedAddressNumber::parse(s(v, "unified")).unwrap(),
            item: ItemCode::parse(s(v, "item")).unwrap(),
            dataset: s(v, "dataset").into(),
            version: u32::try_from(u(v, "version")).unwrap(),
            first: v["first"].as_bool().unwrap(),
            effective_from: s(v, "effective_from").into(),
            effective_to: opt_s(v, "effective_to"),
            non_disclosure: v["non_disclosure"].as_bool().unwrap(),
            sealed: match v.get("sealed") {
                None | Some(Value::Null) => None,
                Some(x) => Some(sealed(x)),
            },
        },
        "CopyTransferAck" => Message::CopyTransferAck {
            header,
            record_id: s(v, "record_id").into(),
            fault: match v.get("fault") {
                None | Some(Value::Null) => None,
                Some(f) => Some(fault(f)),
            },
        },
        "ProvisionLogRequest" => Message::ProvisionLogRequest {
            header,
            after: u(v, "after"),
        },
        "ManualRequestFetch" => Message::ManualRequestFetch { header },
        "ManualRequestList" => Message::ManualRequestList {
            header,
            requests: v["requests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| ManualRequest {
                    request_id: s(r, "request_id").into(),
                    unified: UnifiedAddressNumber::parse(s(r, "unified")).unwrap(),
                    procedure: ProcedureCode::parse(s(r, "procedure")).unwrap(),
                    item: ItemCode::parse(s(r, "item")).unwrap(),
                    as_of: s(r, "as_of").into(),
                    inquirer: agency(r, "inquirer"),
                    deadline: s(r, "deadline").into(),
                })
                .collect(),
        },
        "ManualAnswer" => Message::ManualAnswer {
            header,
            request_id: s(v, "request_id").into(),
            decision: match s(v, "decision") {
                "provide" => ManualDecision::Provide(sealed(&v["sealed"])),
                "not_held" => ManualDecision::NotHeld,
                "refuse" => ManualDecision::Refuse {
                    reason: s(v, "reason").into(),
                },
                other => panic!("bad decision {other}"),
            },
        },
        "ManualAnswerAck" => Message::ManualAnswerAck {
            header,
            request_id: s(v, "request_id").into(),
            fault: match v.get("fault") {
                None | Some(Value::Null) => None,
                Some(f) => Some(fault(f)),
            },
        },
        "AliveNotification" => Message::AliveNotification { header },
        "AliveAck" => Message::AliveAck { header },
        "ProvisionLog" => Message::ProvisionLog {
            header,
            entries: v["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| ProvisionEntry {
                    seq: u(e, "seq"),
                    unified: UnifiedAddressNumber::parse(s(e, "unified")).unwrap(),
                    item: ItemCode::parse(s(e, "item")).unwrap(),
                    procedure: ProcedureCode::parse(s(e, "procedure")).unwrap(),
                    inquirer: agency(e, "inquirer"),
                    provided_at: s(e, "provided_at").into(),
                    item_status: s(e, "item_status").into(),
                    version: e
                        .get("version")
                        .and_then(Value::as_u64)
                        .map(|x| u32::try_from(x).unwrap()),
                })
                .collect(),
        },
        "Fault" => Message::Fault {
            header,
            fault: fault(&v["fault"]),
        },
        other => panic!("unknown message type {other}"),
    }
}

/// The first differing line, for a readable failure; `show` = false hides the content.
fn first_difference(expected: &[u8], actual: &[u8], show: bool) -> String {
    let e = String::from_utf8_lossy(expected);
    let a = String::from_utf8_lossy(actual);
    for (n, (le, la)) in e.lines().zip(a.lines()).enumerate() {
        if le != la {
            return if show {
                format!("line {}:\n  expected: {le}\n  actual:   {la}", n + 1)
            } else {
                format!("line {} differs (content withheld)", n + 1)
            };
        }
    }
    format!(
        "lengths differ: expected {} bytes, actual {}",
        expected.len(),
        actual.len()
    )
}

struct Vector {
    name: String,
    json: Value,
    xml_path: PathBuf,
}

fn vectors() -> Vec<Vector> {
    let mut out: Vec<Vector> = std::fs::read_dir(dir())
        .expect("conformance/platform exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| Vector {
            name: p.file_stem().unwrap().to_string_lossy().into_owned(),
            json: serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap(),
            xml_path: p.with_extension("xml"),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[test]
fn conformance_vectors_match_byte_for_byte_parse_back_and_validate() {
    let bless = std::env::var_os("RENKEI_BLESS_CONFORMANCE").is_some();
    let vectors = vectors();
    let mut messages = Vec::new();
    let mut payloads = Vec::new();
    let mut private_payloads = Vec::new();
    let mut types_seen = std::collections::BTreeSet::new();
    for v in &vectors {
        let ty = s(&v.json, "type");
        types_seen.insert(ty.to_owned());
        // (written bytes, whether they may be shown, parse-back check)
        let (written, show): (Vec<u8>, bool) = match ty {
            "IdentityPayload" => {
                let p = IdentityPayload {
                    individual_number: IndividualNumber::parse(s(&v.json, "individual_number"))
                        .unwrap(),
                };
                let xml = p.to_xml().as_bytes().to_vec();
                let on_disk = std::fs::read(&v.xml_path).unwrap_or_default();
                if !bless {
                    assert!(
                        IdentityPayload::from_xml(&on_disk).ok() == Some(p),
                        "{}: parse-back differs",
                        v.name
                    );
                }
                (xml, false)
            }
            "TargetPayload" => {
                let p = TargetPayload {
                    unified: UnifiedAddressNumber::parse(s(&v.json, "unified")).unwrap(),
                };
                let on_disk = std::fs::read(&v.xml_path).unwrap_or_default();
                if !bless {
                    assert_eq!(
                        TargetPayload::from_xml(&on_disk).as_ref(),
                        Ok(&p),
                        "{}",
                        v.name
                    );
                }
                (p.to_xml().into_bytes(), true)
            }
            "ResultPayload" => {
                let items = v.json["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| ResultItem {
                        item: ItemCode::parse(s(i, "item")).unwrap(),
                        fields: pairs(i, "fields"),
                    })
                    .collect();
                let p = ResultPayload { items };
                p.validate().unwrap();
                let on_disk = std::fs::read(&v.xml_path).unwrap_or_default();
                if !bless {
                    assert_eq!(
                        ResultPayload::from_xml(&on_disk).as_ref(),
                        Ok(&p),
                        "{}",
                        v.name
                    );
                }
                (p.to_xml().into_bytes(), true)
            }
            _ => {
                let m = message(&v.json);
                assert_eq!(m.type_name(), ty);
                m.validate().unwrap_or_else(|e| panic!("{}: {e}", v.name));
                let on_disk = std::fs::read(&v.xml_path).unwrap_or_default();
                if !bless {
                    assert_eq!(
                        from_xml(&on_disk).as_ref(),
                        Ok(&m),
                        "{}: parse-back differs",
                        v.name
                    );
                }
                (to_xml(&m).into_bytes(), true)
            }
        };
        if bless {
            std::fs::write(&v.xml_path, &written).unwrap();
        }
        let on_disk =
            std::fs::read(&v.xml_path).unwrap_or_else(|e| panic!("{}: {e}", v.xml_path.display()));
        assert!(
            on_disk == written,
            "{}: to_xml differs from the vector: {}",
            v.name,
            first_difference(&on_disk, &written, show)
        );
        let entry = (v.name.clone(), on_disk);
        match ty {
            "IdentityPayload" => private_payloads.push(entry),
            "TargetPayload" | "ResultPayload" => payloads.push(entry),
            _ => messages.push(entry),
        }
    }
    for name in
        Message::TYPE_NAMES
            .iter()
            .chain(&["IdentityPayload", "TargetPayload", "ResultPayload"])
    {
        assert!(
            types_seen.contains(*name),
            "no conformance vector for {name}"
        );
    }
    common::xmllint_validate("messages.xsd", &messages, true);
    common::xmllint_validate("payloads.xsd", &payloads, true);
    common::xmllint_validate("payloads.xsd", &private_payloads, false);
}

#[test]
fn invalid_vectors_are_refused_with_their_code_and_path() {
    let inv = dir().join("invalid");
    let expected: Value =
        serde_json::from_slice(&std::fs::read(inv.join("expected.json")).unwrap()).unwrap();
    let expected = expected.as_object().unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&inv)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        expected.len(),
        "every invalid vector has an expectation and back"
    );
    for f in files {
        let name = f.file_stem().unwrap().to_string_lossy().into_owned();
        let want = expected
            .get(&name)
            .unwrap_or_else(|| panic!("{name}: no expectation"));
        let doc = std::fs::read(&f).unwrap();
        let e = match s(want, "parser") {
            "message" => from_xml(&doc).map(|_| ()).unwrap_err(),
            "identity" => IdentityPayload::from_xml(&doc).map(|_| ()).unwrap_err(),
            "result" => ResultPayload::from_xml(&doc).map(|_| ()).unwrap_err(),
            other => panic!("{name}: unknown parser {other}"),
        };
        assert_eq!(
            (e.code, e.path.as_str()),
            (s(want, "code"), s(want, "path")),
            "{name}: {e}"
        );
    }
}

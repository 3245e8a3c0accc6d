//! Shared fixtures for the integration tests: one or more sample messages per type.
#![allow(dead_code)]

use renkei_ids::{
    AffairCode, AgencyCode, Fugo, IndividualNumber, ItemCode, ProcedureCode, ProcessingSerial,
    UnifiedAddressNumber,
};
use renkei_platform::*;

pub const CITY: &str = "0112345678900000";
pub const PLATFORM: &str = "9900000000000001";

pub fn agency(s: &str) -> AgencyCode {
    AgencyCode::parse(s).unwrap()
}

pub fn unified() -> UnifiedAddressNumber {
    UnifiedAddressNumber::from_serial(12_345_678_901_234).unwrap()
}

pub fn header(id: &str, reply: Option<&str>) -> Header {
    Header {
        message_id: id.into(),
        sender: agency(CITY),
        recipient: agency(PLATFORM),
        created_at: "2026-11-26T21:00:00.123+09:00".into(),
        in_reply_to: reply.map(Into::into),
    }
}

pub fn sealed() -> SealedData {
    SealedData {
        key_version: 3,
        enc: (0u8..65).collect(),
        ciphertext: b"ciphertext with tag....".to_vec(),
    }
}

pub fn fault_not_acquired() -> PlatformFault {
    PlatformFault {
        code: "E1001".into(),
        message: "符号が未取得です。（団体内統合宛名番号：１２３４５６７８９０１２３４５）".into(),
    }
}

pub fn key(version: u32, not_after: Option<&str>) -> PublishedKey {
    PublishedKey {
        agency: agency(CITY),
        key_use: if version.is_multiple_of(2) {
            KeyUse::Signing
        } else {
            KeyUse::Sealing
        },
        version,
        public_key: [4u8].iter().copied().chain(1u8..=64).collect(),
        not_after: not_after.map(Into::into),
    }
}

pub fn inquiry(condition: Condition, provider: bool) -> Message {
    Message::InquiryRequest {
        header: header("m-0003", None),
        record_id: "R-20261126-0001".into(),
        affair: AffairCode::parse("JM01000000121000").unwrap(),
        procedure: ProcedureCode::parse("JT01010000000214").unwrap(),
        item: ItemCode::parse("TM00000000000002").unwrap(),
        inquirer: agency(CITY),
        provider: provider.then(|| agency("0113456789000000")),
        non_disclosure: !provider,
        condition,
        sealed: sealed(),
    }
}

/// Every message type, with optional parts both present and absent.
pub fn samples() -> Vec<Message> {
    vec![
        Message::CodeAcquisitionRequest {
            header: header("m-0001", None),
            unified: unified(),
            sealed: sealed(),
        },
        Message::CodeAcquisitionResponse {
            header: header("m-0002", Some("m-0001")),
            unified: unified(),
            outcome: CodeOutcome::Acquired {
                fugo: Fugo::parse("FUGO-abc_123").unwrap(),
            },
        },
        Message::CodeAcquisitionResponse {
            header: header("m-0002b", Some("m-0001")),
            unified: unified(),
            outcome: CodeOutcome::Failed {
                fault: fault_not_acquired(),
            },
        },
        inquiry(Condition::FiscalYear(2026), true),
        inquiry(
            Condition::Period {
                from: "2026-04-01".into(),
                to: "2027-03-31".into(),
            },
            false,
        ),
        Message::InquiryReceipt {
            header: header("m-0004", Some("m-0003")),
            record_id: "R-20261126-0001".into(),
            outcome: ReceiptOutcome::Accepted {
                serial: ProcessingSerial::parse("S000000000123").unwrap(),
            },
        },
        Message::InquiryReceipt {
            header: header("m-0004b", Some("m-0003")),
            record_id: "R-20261126-0001".into(),
            outcome: ReceiptOutcome::Rejected {
                fault: PlatformFault {
                    code: "E2003".into(),
                    message: "レコード識別番号が重複しています。".into(),
                },
            },
        },
        Message::ResultRequest {
            header: header("m-0005", None),
            serial: ProcessingSerial::parse("S000000000123").unwrap(),
        },
        Message::InquiryResult {
            header: header("m-0006", Some("m-0005")),
            serial: ProcessingSerial::parse("S000000000123").unwrap(),
            record_id: "R-20261126-0001".into(),
            status: ResultStatus::Pending,
            provider: None,
            sealed: None,
            fault: None,
        },
        Message::InquiryResult {
            header: header("m-0006b", Some("m-0005")),
            serial: ProcessingSerial::parse("S000000000123").unwrap(),
            record_id: "R-20261126-0001".into(),
            status: ResultStatus::Finished {
                detail_status: "09".into(),
                item_status: "01".into(),
            },
            provider: Some(agency("0113456789000000")),
            sealed: Some(sealed()),
            fault: Some(PlatformFault {
                code: "I0000".into(),
                message: "正常終了 <注記> & \"引用\" 'a'\r\n次行".into(),
            }),
        },
        Message::KeyPublication {
            header: header("m-0007", None),
            key: key(2, Some("2027-11-26T00:00:00Z")),
        },
        Message::KeyPublicationAck {
            header: header("m-0008", Some("m-0007")),
            agency: agency(CITY),
            key_use: KeyUse::Signing,
            version: 2,
        },
        Message::MasterInfo {
            header: header("m-0009", None),
            valid_until: "2026-12-31T23:59:59+09:00".into(),
            agencies: vec![
                (agency(CITY), "札幌市".into()),
                (agency(PLATFORM), "中間サーバー・プラットフォーム".into()),
            ],
            procedures: vec![(
                ProcedureCode::parse("JT01010000000214").unwrap(),
                "子ども医療費助成 & 所得審査".into(),
            )],
            items: vec![
                (
                    ItemCode::parse("TM00000000000002").unwrap(),
                    "地方税関係情報".into(),
                ),
                (
                    ItemCode::parse("TM00000000000089").unwrap(),
                    "公金受取口座情報".into(),
                ),
            ],
            permissions: vec![(
                ProcedureCode::parse("JT01010000000214").unwrap(),
                ItemCode::parse("TM00000000000002").unwrap(),
            )],
            keys: vec![key(1, None), key(2, Some("2027-11-26T00:00:00+09:00"))],
        },
        Message::MasterInfo {
            header: header("m-0009b", None),
            valid_until: "2026-12-31T23:59:59Z".into(),
            agencies: vec![],
            procedures: vec![],
            items: vec![],
            permissions: vec![],
            keys: vec![],
        },
        Message::CopyTransfer {
            header: header("m-0011", None),
            record_id: "CP-0001".into(),
            unified: unified(),
            item: ItemCode::parse("TM00000000000002").unwrap(),
            dataset: "D001".into(),
            version: 2,
            first: false,
            effective_from: "2026-04-01".into(),
            effective_to: Some("2027-03-31".into()),
            non_disclosure: false,
            sealed: Some(sealed()),
        },
        Message::CopyTransfer {
            header: header("m-0012", None),
            record_id: "CP-0002".into(),
            unified: unified(),
            item: ItemCode::parse("TM00000000000002").unwrap(),
            dataset: "D001".into(),
            version: 3,
            first: false,
            effective_from: "2026-12-01".into(),
            effective_to: None,
            non_disclosure: true,
            sealed: None,
        },
        Message::CopyTransferAck {
            header: header("m-0013", Some("m-0011")),
            record_id: "CP-0001".into(),
            fault: None,
        },
        Message::CopyTransferAck {
            header: header("m-0014", Some("m-0012")),
            record_id: "CP-0002".into(),
            fault: Some(fault_not_acquired()),
        },
        Message::ProvisionLogRequest {
            header: header("m-0015", None),
            after: 0,
        },
        Message::AliveNotification {
            header: header("m-0017", None),
        },
        Message::AliveAck {
            header: header("m-0018", Some("m-0017")),
        },
        Message::ProvisionLog {
            header: header("m-0016", Some("m-0015")),
            entries: vec![ProvisionEntry {
                seq: 1,
                unified: unified(),
                item: ItemCode::parse("TM00000000000002").unwrap(),
                procedure: ProcedureCode::parse("JT01010000000214").unwrap(),
                inquirer: agency(PLATFORM),
                provided_at: "2026-11-26T21:00:00.123+09:00".into(),
                item_status: "01".into(),
                version: Some(2),
            }],
        },
        Message::ProvisionLog {
            header: header("m-0017", Some("m-0015")),
            entries: vec![],
        },
        Message::ManualRequestFetch {
            header: header("m-0019", None),
        },
        Message::ManualRequestList {
            header: header("m-0020", Some("m-0019")),
            requests: vec![ManualRequest {
                request_id: "PQ-0001".into(),
                unified: unified(),
                procedure: ProcedureCode::parse("JT01010000000215").unwrap(),
                item: ItemCode::parse("TM00000000000002").unwrap(),
                as_of: "2026-06-01".into(),
                inquirer: agency(PLATFORM),
                deadline: "2026-11-29T21:00:00+09:00".into(),
            }],
        },
        Message::ManualRequestList {
            header: header("m-0021", Some("m-0019")),
            requests: vec![],
        },
        Message::ManualAnswer {
            header: header("PQ-0001", None),
            request_id: "PQ-0001".into(),
            decision: ManualDecision::Provide(sealed()),
        },
        Message::ManualAnswer {
            header: header("PQ-0002", None),
            request_id: "PQ-0002".into(),
            decision: ManualDecision::NotHeld,
        },
        Message::ManualAnswer {
            header: header("PQ-0003", None),
            request_id: "PQ-0003".into(),
            decision: ManualDecision::Refuse {
                reason: "not-permitted-by-ordinance".into(),
            },
        },
        Message::ManualAnswerAck {
            header: header("m-0022", Some("PQ-0001")),
            request_id: "PQ-0001".into(),
            fault: None,
        },
        Message::ManualAnswerAck {
            header: header("m-0023", Some("PQ-0003")),
            request_id: "PQ-0003".into(),
            fault: Some(PlatformFault {
                code: "E1008".into(),
                message: "回答期限を過ぎています。".into(),
            }),
        },
        Message::Fault {
            header: header("m-0010", Some("m-0003")),
            fault: PlatformFault {
                code: "E9999".into(),
                message: "照会は許可されていません。".into(),
            },
        },
    ]
}

pub fn identity() -> IdentityPayload {
    IdentityPayload {
        individual_number: IndividualNumber::parse("123456789018").unwrap(),
    }
}

pub fn target() -> TargetPayload {
    TargetPayload { unified: unified() }
}

pub fn result_payload() -> ResultPayload {
    ResultPayload {
        items: vec![
            ResultItem {
                item: ItemCode::parse("TM00000000000002").unwrap(),
                fields: vec![
                    ("市町村民税均等割額".into(), "3500".into()),
                    ("市町村民税所得割額".into(), "123000".into()),
                    ("備考".into(), "".into()),
                    ("注記 \"a\" & <b>".into(), "改行\nあり & <タグ>".into()),
                ],
            },
            ResultItem {
                item: ItemCode::parse("TM00000000000089").unwrap(),
                fields: vec![],
            },
        ],
    }
}

/// `schemas/platform/<name>` in the repository.
pub fn schema(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../schemas/platform")
        .join(name)
}

/// Validates each document against `schema` with one `xmllint` run; panics with xmllint's
/// report on any failure and with a clear message when xmllint is not installed.
/// `show` = false keeps the documents (which may hold an individual number) out of the report.
pub fn xmllint_validate(schema_name: &str, docs: &[(String, Vec<u8>)], show: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (name, doc) in docs {
        let p = dir.path().join(format!("{name}.xml"));
        std::fs::write(&p, doc).unwrap();
        paths.push(p);
    }
    let out = match std::process::Command::new("xmllint")
        .arg("--noout")
        .arg("--nonet")
        .arg("--schema")
        .arg(schema(schema_name))
        .args(&paths)
        .output()
    {
        Ok(o) => o,
        Err(e) => panic!(
            "xmllint is required for this test and could not be run ({e}); \
             install it with `apt-get install -y libxml2-utils`"
        ),
    };
    let report = String::from_utf8_lossy(&out.stderr);
    let validated = report.lines().filter(|l| l.ends_with(" validates")).count();
    if !out.status.success() || validated != docs.len() {
        if show {
            panic!("xmllint refused documents against {schema_name}:\n{report}");
        }
        panic!(
            "xmllint refused {} of {} documents against {schema_name} (report withheld: may hold personal data)",
            docs.len() - validated,
            docs.len()
        );
    }
}

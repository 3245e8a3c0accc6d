//! The platform protocol's messages and sealed payloads as plain Rust values.

use renkei_ids::{
    AffairCode, AgencyCode, Fugo, IndividualNumber, ItemCode, ProcedureCode, ProcessingSerial,
    UnifiedAddressNumber,
};

use crate::check;
use crate::error::{Path, XmlError};

/// The envelope every message carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Unique id of this message, 1 to 64 of `[A-Za-z0-9-]`; the platform dedupes by it.
    pub message_id: String,
    /// Agency sending the message.
    pub sender: AgencyCode,
    /// Agency the message is for.
    pub recipient: AgencyCode,
    /// When the message was made: RFC 3339 with seconds and offset,
    /// e.g. `2026-11-26T21:00:00.123+09:00`.
    pub created_at: String,
    /// The `message_id` this message answers, if it is an answer.
    pub in_reply_to: Option<String>,
}

/// A payload sealed to the recipient (HPKE): key version, encapsulated key and ciphertext.
/// XML: `<SealedData keyVersion="1" enc="BASE64">BASE64</SealedData>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedData {
    /// Version of the recipient's sealing key used (1 or more).
    pub key_version: u32,
    /// The HPKE encapsulated key (non-empty).
    pub enc: Vec<u8>,
    /// The ciphertext with its tag (non-empty).
    pub ciphertext: Vec<u8>,
}

/// An error as the platform reports it; renkei keeps the original Japanese text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformFault {
    /// The platform's code, 1 to 16 ASCII letters or digits, e.g. `E1001`.
    pub code: String,
    /// The platform's message text verbatim, 1 to 1024 characters, e.g.
    /// `符号が未取得です。（団体内統合宛名番号：１２３…）`.
    pub message: String,
}

/// 照会条件: what period the inquiry is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// 照会年度: a fiscal year, 1000 to 9999.
    FiscalYear(u16),
    /// 照会開始日付 / 照会終了日付: `YYYY-MM-DD`, `from` not after `to`.
    Period {
        /// First day.
        from: String,
        /// Last day.
        to: String,
    },
}

/// How a code acquisition ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeOutcome {
    /// The platform issued (or already held) the person's 符号.
    Acquired {
        /// The 符号.
        fugo: Fugo,
    },
    /// The platform refused.
    Failed {
        /// Why.
        fault: PlatformFault,
    },
}

/// Whether the platform accepted an inquiry for processing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptOutcome {
    /// Accepted; the result is fetched later by this serial.
    Accepted {
        /// 処理通番.
        serial: ProcessingSerial,
    },
    /// Refused (duplicate record id, not permitted, …).
    Rejected {
        /// Why.
        fault: PlatformFault,
    },
}

/// Where an inquiry stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultStatus {
    /// Still being processed; ask again later.
    Pending,
    /// Finished, normally or not.
    Finished {
        /// 照会ステータス（明細単位）, two digits; `"09"` = finished normally.
        detail_status: String,
        /// 照会ステータス（特定個人情報名単位）, two digits; `"01"` provided, `"02"` not held, ….
        item_status: String,
    },
}

/// What a published public key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyUse {
    /// Verifying the agency's message signatures (ECDSA P-256).
    Signing,
    /// Sealing payloads to the agency (HPKE, P-256).
    Sealing,
}

impl KeyUse {
    /// The XML text: `signing` or `sealing`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyUse::Signing => "signing",
            KeyUse::Sealing => "sealing",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "signing" => Some(KeyUse::Signing),
            "sealing" => Some(KeyUse::Sealing),
            _ => None,
        }
    }
}

/// An agency's public key as published through the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedKey {
    /// Whose key.
    pub agency: AgencyCode,
    /// What for.
    pub key_use: KeyUse,
    /// Key version, 1 or more.
    pub version: u32,
    /// The public key, SEC1 encoded (non-empty).
    pub public_key: Vec<u8>,
    /// End of validity, RFC 3339 with offset, if any.
    pub not_after: Option<String>,
}

/// One platform protocol message. The variant name is the XML root element name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// 符号取得要求: ask the platform for a person's 符号.
    CodeAcquisitionRequest {
        /// Envelope.
        header: Header,
        /// The person, by unified address number.
        unified: UnifiedAddressNumber,
        /// A sealed [`IdentityPayload`].
        sealed: SealedData,
    },
    /// The answer to a code acquisition.
    CodeAcquisitionResponse {
        /// Envelope.
        header: Header,
        /// The person.
        unified: UnifiedAddressNumber,
        /// 符号 or fault.
        outcome: CodeOutcome,
    },
    /// 情報照会要求.
    InquiryRequest {
        /// Envelope.
        header: Header,
        /// レコード識別番号, 1 to 64 of `[A-Za-z0-9-]`, unique per inquiry.
        record_id: String,
        /// 事務コード.
        affair: AffairCode,
        /// 事務手続コード.
        procedure: ProcedureCode,
        /// 特定個人情報名コード.
        item: ItemCode,
        /// 情報照会者機関コード.
        inquirer: AgencyCode,
        /// 情報提供者機関コード, when the inquirer names one.
        provider: Option<AgencyCode>,
        /// 照会側不開示: hide this inquiry from the person's view.
        non_disclosure: bool,
        /// 照会条件.
        condition: Condition,
        /// A sealed [`TargetPayload`].
        sealed: SealedData,
    },
    /// The platform's receipt of an inquiry.
    InquiryReceipt {
        /// Envelope.
        header: Header,
        /// The inquiry's record id.
        record_id: String,
        /// Accepted with a serial, or rejected.
        outcome: ReceiptOutcome,
    },
    /// Ask for the result of an accepted inquiry.
    ResultRequest {
        /// Envelope.
        header: Header,
        /// The serial from the receipt.
        serial: ProcessingSerial,
    },
    /// The result (or the pending state) of an inquiry.
    InquiryResult {
        /// Envelope.
        header: Header,
        /// 処理通番.
        serial: ProcessingSerial,
        /// The inquiry's record id.
        record_id: String,
        /// Pending or finished with statuses.
        status: ResultStatus,
        /// The agency that answered.
        provider: Option<AgencyCode>,
        /// A sealed [`ResultPayload`], when data was provided.
        sealed: Option<SealedData>,
        /// The platform's message for the detail, when there is one.
        fault: Option<PlatformFault>,
    },
    /// Publish a public key of the sender.
    KeyPublication {
        /// Envelope.
        header: Header,
        /// The key.
        key: PublishedKey,
    },
    /// The platform's acknowledgement of a key publication.
    KeyPublicationAck {
        /// Envelope.
        header: Header,
        /// Whose key.
        agency: AgencyCode,
        /// What for.
        key_use: KeyUse,
        /// Which version.
        version: u32,
    },
    /// Master information: agencies, procedures, items, the permission table, public keys.
    MasterInfo {
        /// Envelope.
        header: Header,
        /// Until when this information is valid, RFC 3339 with offset.
        valid_until: String,
        /// Agencies and their names.
        agencies: Vec<(AgencyCode, String)>,
        /// Procedures and their names.
        procedures: Vec<(ProcedureCode, String)>,
        /// Items and their names.
        items: Vec<(ItemCode, String)>,
        /// Which item may be inquired under which procedure.
        permissions: Vec<(ProcedureCode, ItemCode)>,
        /// Published public keys.
        keys: Vec<PublishedKey>,
    },
    /// 副本登録 (情報転送): one version of a copy (副本) for the provision database. The
    /// message id is the version's id, so a resend is recognised; the person is named by the
    /// unified address number, never the individual number.
    CopyTransfer {
        /// Envelope.
        header: Header,
        /// The copy version's id (1 to 64 of `[A-Za-z0-9-]`).
        record_id: String,
        /// The person.
        unified: UnifiedAddressNumber,
        /// 特定個人情報名コード.
        item: ItemCode,
        /// データセット番号 (1 to 64 of `[A-Za-z0-9-]`).
        dataset: String,
        /// 版番号, 1 or more.
        version: u32,
        /// 初回提供区分: the first version of this copy.
        first: bool,
        /// First day the version is in force, `YYYY-MM-DD`.
        effective_from: String,
        /// Last day, if it ends.
        effective_to: Option<String>,
        /// 不開示: the copy must not be disclosed.
        non_disclosure: bool,
        /// The sealed data (a [`ResultPayload`] with the one item), or `None` for a withdrawal.
        sealed: Option<SealedData>,
    },
    /// The platform's answer to a copy transfer.
    CopyTransferAck {
        /// Envelope.
        header: Header,
        /// The copy version's id.
        record_id: String,
        /// `None` when registered (or already registered); the refusal otherwise.
        fault: Option<PlatformFault>,
    },
    /// Ask for the provisions the platform made from this city's copies after `after`.
    ProvisionLogRequest {
        /// Envelope.
        header: Header,
        /// The last sequence number already fetched (0 for all).
        after: u64,
    },
    /// The provisions the platform made from this city's copies.
    ProvisionLog {
        /// Envelope.
        header: Header,
        /// The entries, in sequence order.
        entries: Vec<ProvisionEntry>,
    },
    /// 稼動状態の通知: the sender tells the platform it is operating (sent on a schedule
    /// inside the platform's operating hours). The header says who and when.
    AliveNotification {
        /// Envelope.
        header: Header,
    },
    /// The platform's acknowledgement of an alive notification.
    AliveAck {
        /// Envelope (`in_reply_to` names the notification).
        header: Header,
    },
    /// 手動提供: ask for the provision requests the platform handed to this city because a
    /// person answers them (items the national table marks manual), still pending.
    ManualRequestFetch {
        /// Envelope.
        header: Header,
    },
    /// The pending manual provision requests for this city.
    ManualRequestList {
        /// Envelope (`in_reply_to` names the fetch).
        header: Header,
        /// The requests, oldest first.
        requests: Vec<ManualRequest>,
    },
    /// The city's answer to one manual provision request. The message id is the request id,
    /// so a resend is recognised; the data is sealed to the platform as copies are.
    ManualAnswer {
        /// Envelope.
        header: Header,
        /// The request answered (1 to 64 of `[A-Za-z0-9-]`).
        request_id: String,
        /// Provide (sealed data), not held, or refuse with a reason code.
        decision: ManualDecision,
    },
    /// The platform's answer to a manual provision answer.
    ManualAnswerAck {
        /// Envelope.
        header: Header,
        /// The request answered.
        request_id: String,
        /// `None` when accepted (or accepted before); the refusal otherwise, e.g. past the
        /// request's deadline ([`crate::faults::MANUAL_TIMED_OUT`]).
        fault: Option<PlatformFault>,
    },
    /// A fault answering a message as a whole.
    Fault {
        /// Envelope.
        header: Header,
        /// The fault.
        fault: PlatformFault,
    },
}

impl Message {
    /// Every root element name, in declaration order.
    pub const TYPE_NAMES: [&'static str; 20] = [
        "CodeAcquisitionRequest",
        "CodeAcquisitionResponse",
        "InquiryRequest",
        "InquiryReceipt",
        "ResultRequest",
        "InquiryResult",
        "KeyPublication",
        "KeyPublicationAck",
        "MasterInfo",
        "CopyTransfer",
        "CopyTransferAck",
        "ProvisionLogRequest",
        "ProvisionLog",
        "AliveNotification",
        "AliveAck",
        "ManualRequestFetch",
        "ManualRequestList",
        "ManualAnswer",
        "ManualAnswerAck",
        "Fault",
    ];

    /// The envelope.
    pub fn header(&self) -> &Header {
        match self {
            Message::CodeAcquisitionRequest { header, .. }
            | Message::CodeAcquisitionResponse { header, .. }
            | Message::InquiryRequest { header, .. }
            | Message::InquiryReceipt { header, .. }
            | Message::ResultRequest { header, .. }
            | Message::InquiryResult { header, .. }
            | Message::KeyPublication { header, .. }
            | Message::KeyPublicationAck { header, .. }
            | Message::MasterInfo { header, .. }
            | Message::CopyTransfer { header, .. }
            | Message::CopyTransferAck { header, .. }
            | Message::ProvisionLogRequest { header, .. }
            | Message::ProvisionLog { header, .. }
            | Message::AliveNotification { header }
            | Message::AliveAck { header }
            | Message::ManualRequestFetch { header }
            | Message::ManualRequestList { header, .. }
            | Message::ManualAnswer { header, .. }
            | Message::ManualAnswerAck { header, .. }
            | Message::Fault { header, .. } => header,
        }
    }

    /// The root element name, e.g. `"InquiryRequest"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Message::CodeAcquisitionRequest { .. } => "CodeAcquisitionRequest",
            Message::CodeAcquisitionResponse { .. } => "CodeAcquisitionResponse",
            Message::InquiryRequest { .. } => "InquiryRequest",
            Message::InquiryReceipt { .. } => "InquiryReceipt",
            Message::ResultRequest { .. } => "ResultRequest",
            Message::InquiryResult { .. } => "InquiryResult",
            Message::KeyPublication { .. } => "KeyPublication",
            Message::KeyPublicationAck { .. } => "KeyPublicationAck",
            Message::MasterInfo { .. } => "MasterInfo",
            Message::CopyTransfer { .. } => "CopyTransfer",
            Message::CopyTransferAck { .. } => "CopyTransferAck",
            Message::ProvisionLogRequest { .. } => "ProvisionLogRequest",
            Message::ProvisionLog { .. } => "ProvisionLog",
            Message::AliveNotification { .. } => "AliveNotification",
            Message::AliveAck { .. } => "AliveAck",
            Message::ManualRequestFetch { .. } => "ManualRequestFetch",
            Message::ManualRequestList { .. } => "ManualRequestList",
            Message::ManualAnswer { .. } => "ManualAnswer",
            Message::ManualAnswerAck { .. } => "ManualAnswerAck",
            Message::Fault { .. } => "Fault",
        }
    }

    /// Checks every plain-text field (ids, timestamps, dates, statuses, text lengths, byte
    /// fields) against the rules [`crate::from_xml`] applies, naming the element path of the
    /// first violation. The typed fields (codes, numbers) are valid by construction.
    ///
    /// [`crate::to_xml`] writes whatever it is given; call this first when the message was
    /// built from outside input, so that what is sent is what the schema and peer accept.
    pub fn validate(&self) -> Result<(), XmlError> {
        let root = Path::root(self.type_name());
        let p = &root;
        validate_header(&p.child("Header"), self.header())?;
        match self {
            Message::CodeAcquisitionRequest { sealed, .. } => {
                validate_sealed(&p.child("SealedData"), sealed)
            }
            Message::CodeAcquisitionResponse { outcome, .. } => match outcome {
                CodeOutcome::Acquired { .. } => Ok(()),
                CodeOutcome::Failed { fault } => validate_fault(&p.child("Fault"), fault),
            },
            Message::InquiryRequest {
                record_id,
                condition,
                sealed,
                ..
            } => {
                ok(&p.child("RecordId"), check::id_token(record_id))?;
                let cp = p.child("Condition");
                match condition {
                    Condition::FiscalYear(y) => {
                        ok(&cp.child("FiscalYear"), check::fiscal_year_value(*y))?
                    }
                    Condition::Period { from, to } => {
                        let pp = cp.child("Period");
                        ok(&pp.child("From"), check::date(from))?;
                        ok(&pp.child("To"), check::date(to))?;
                        if from > to {
                            return Err(pp.child("To").invalid("period ends before it starts"));
                        }
                    }
                }
                validate_sealed(&p.child("SealedData"), sealed)
            }
            Message::InquiryReceipt {
                record_id, outcome, ..
            } => {
                ok(&p.child("RecordId"), check::id_token(record_id))?;
                match outcome {
                    ReceiptOutcome::Accepted { .. } => Ok(()),
                    ReceiptOutcome::Rejected { fault } => validate_fault(&p.child("Fault"), fault),
                }
            }
            Message::ResultRequest { .. } => Ok(()),
            Message::InquiryResult {
                record_id,
                status,
                sealed,
                fault,
                ..
            } => {
                ok(&p.child("RecordId"), check::id_token(record_id))?;
                if let ResultStatus::Finished {
                    detail_status,
                    item_status,
                } = status
                {
                    let fp = p.child("Finished");
                    ok(&fp.child("DetailStatus"), check::status2(detail_status))?;
                    ok(&fp.child("ItemStatus"), check::status2(item_status))?;
                }
                if let Some(s) = sealed {
                    validate_sealed(&p.child("SealedData"), s)?;
                }
                if let Some(f) = fault {
                    validate_fault(&p.child("Fault"), f)?;
                }
                Ok(())
            }
            Message::KeyPublication { key, .. } => validate_key(&p.child("Key"), key),
            Message::KeyPublicationAck { version, .. } => {
                ok(&p.child("Version"), nonzero(*version))
            }
            Message::MasterInfo {
                valid_until,
                agencies,
                procedures,
                items,
                keys,
                ..
            } => {
                ok(&p.child("ValidUntil"), check::timestamp(valid_until))?;
                let name = |s: &str| check::text(s, 1, check::MAX_NAME_CHARS);
                let ap = p.child("Agencies");
                for (_, n) in agencies {
                    ok(&ap.child("Agency"), name(n))?;
                }
                let pp = p.child("Procedures");
                for (_, n) in procedures {
                    ok(&pp.child("Procedure"), name(n))?;
                }
                let ip = p.child("Items");
                for (_, n) in items {
                    ok(&ip.child("Item"), name(n))?;
                }
                let kp = p.child("Keys");
                for k in keys {
                    validate_key(&kp.child("Key"), k)?;
                }
                Ok(())
            }
            Message::CopyTransfer {
                record_id,
                dataset,
                version,
                effective_from,
                effective_to,
                sealed,
                ..
            } => {
                ok(&p.child("RecordId"), check::id_token(record_id))?;
                ok(&p.child("Dataset"), check::id_token(dataset))?;
                ok(&p.child("Version"), nonzero(*version))?;
                ok(&p.child("EffectiveFrom"), check::date(effective_from))?;
                if let Some(to) = effective_to {
                    ok(&p.child("EffectiveTo"), check::date(to))?;
                    if to < effective_from {
                        return Err(p
                            .child("EffectiveTo")
                            .invalid("period ends before it starts"));
                    }
                }
                if let Some(s) = sealed {
                    validate_sealed(&p.child("SealedData"), s)?;
                }
                Ok(())
            }
            Message::CopyTransferAck {
                record_id, fault, ..
            } => {
                ok(&p.child("RecordId"), check::id_token(record_id))?;
                if let Some(f) = fault {
                    validate_fault(&p.child("Fault"), f)?;
                }
                Ok(())
            }
            Message::ProvisionLogRequest { .. }
            | Message::AliveNotification { .. }
            | Message::AliveAck { .. }
            | Message::ManualRequestFetch { .. } => Ok(()),
            Message::ManualRequestList { requests, .. } => {
                let lp = p.child("Requests");
                let rp = lp.child("Request");
                for r in requests {
                    ok(&rp.child("RequestId"), check::id_token(&r.request_id))?;
                    ok(&rp.child("AsOf"), check::date(&r.as_of))?;
                    ok(&rp.child("Deadline"), check::timestamp(&r.deadline))?;
                }
                Ok(())
            }
            Message::ManualAnswer {
                request_id,
                decision,
                ..
            } => {
                ok(&p.child("RequestId"), check::id_token(request_id))?;
                match decision {
                    ManualDecision::Provide(s) => validate_sealed(&p.child("SealedData"), s),
                    ManualDecision::NotHeld => Ok(()),
                    ManualDecision::Refuse { reason } => {
                        let rp = p.child("Refused");
                        ok(&rp.child("ReasonCode"), check::id_token(reason))
                    }
                }
            }
            Message::ManualAnswerAck {
                request_id, fault, ..
            } => {
                ok(&p.child("RequestId"), check::id_token(request_id))?;
                if let Some(f) = fault {
                    validate_fault(&p.child("Fault"), f)?;
                }
                Ok(())
            }
            Message::ProvisionLog { entries, .. } => {
                let lp = p.child("Entries");
                let ep = lp.child("Entry");
                for e in entries {
                    ok(&ep.child("Seq"), nonzero_u64(e.seq))?;
                    ok(&ep.child("ProvidedAt"), check::timestamp(&e.provided_at))?;
                    ok(&ep.child("ItemStatus"), check::status2(&e.item_status))?;
                    if let Some(v) = e.version {
                        ok(&ep.child("Version"), nonzero(v))?;
                    }
                }
                Ok(())
            }
            Message::Fault { fault, .. } => {
                ok(&p.child("Code"), check::fault_code(&fault.code))?;
                ok(&p.child("Message"), fault_message(&fault.message))
            }
        }
    }
}

pub(crate) fn ok(path: &Path<'_>, r: Result<(), &'static str>) -> Result<(), XmlError> {
    r.map_err(|reason| path.invalid(reason))
}

pub(crate) fn nonzero(v: u32) -> Result<(), &'static str> {
    if v == 0 {
        Err("expected a positive integer")
    } else {
        Ok(())
    }
}

pub(crate) fn nonzero_u64(v: u64) -> Result<(), &'static str> {
    if v == 0 {
        Err("expected a positive integer")
    } else {
        Ok(())
    }
}

pub(crate) fn fault_message(s: &str) -> Result<(), &'static str> {
    check::text(s, 1, check::MAX_FAULT_MESSAGE_CHARS)
}

fn validate_header(p: &Path<'_>, h: &Header) -> Result<(), XmlError> {
    ok(&p.child("MessageId"), check::id_token(&h.message_id))?;
    ok(&p.child("CreatedAt"), check::timestamp(&h.created_at))?;
    if let Some(r) = &h.in_reply_to {
        ok(&p.child("InReplyTo"), check::id_token(r))?;
    }
    Ok(())
}

fn validate_sealed(p: &Path<'_>, s: &SealedData) -> Result<(), XmlError> {
    ok(&p.child("@keyVersion"), nonzero(s.key_version))?;
    if s.enc.is_empty() {
        return Err(p.child("@enc").invalid("is empty"));
    }
    if s.ciphertext.is_empty() {
        return Err(p.invalid("is empty"));
    }
    Ok(())
}

fn validate_fault(p: &Path<'_>, f: &PlatformFault) -> Result<(), XmlError> {
    ok(&p.child("Code"), check::fault_code(&f.code))?;
    ok(&p.child("Message"), fault_message(&f.message))
}

fn validate_key(p: &Path<'_>, k: &PublishedKey) -> Result<(), XmlError> {
    ok(&p.child("Version"), nonzero(k.version))?;
    if k.public_key.is_empty() {
        return Err(p.child("PublicKey").invalid("is empty"));
    }
    if let Some(t) = &k.not_after {
        ok(&p.child("NotAfter"), check::timestamp(t))?;
    }
    Ok(())
}

/// One provision the platform made from a city's copy (情報提供), as it reports them back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionEntry {
    /// Sequence number, 1 or more, increasing.
    pub seq: u64,
    /// Whom it was about.
    pub unified: UnifiedAddressNumber,
    /// 特定個人情報名コード.
    pub item: ItemCode,
    /// 事務手続コード the inquirer asked under.
    pub procedure: ProcedureCode,
    /// 情報照会者機関コード: who received it.
    pub inquirer: AgencyCode,
    /// When it was answered, RFC 3339 with offset.
    pub provided_at: String,
    /// 照会ステータス（特定個人情報名単位）: `01` provided, `03` not held, `05` withheld (不開示).
    pub item_status: String,
    /// The copy version answered from, if any.
    pub version: Option<u32>,
}

/// One manual provision request (手動提供の依頼): another agency asked for an item the
/// national table marks manual, and a person at the city holding the person answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManualRequest {
    /// The platform's id of the request (1 to 64 of `[A-Za-z0-9-]`).
    pub request_id: String,
    /// Whom it is about (never the individual number).
    pub unified: UnifiedAddressNumber,
    /// 事務手続コード the inquirer asks under.
    pub procedure: ProcedureCode,
    /// 特定個人情報名コード.
    pub item: ItemCode,
    /// The date the answer must be in force on, `YYYY-MM-DD`.
    pub as_of: String,
    /// 情報照会者機関コード: who asks.
    pub inquirer: AgencyCode,
    /// The answer must reach the platform before this time (RFC 3339 with offset); later,
    /// the platform answers the inquirer with a timeout and refuses the city's answer.
    pub deadline: String,
}

/// What the city answers to a manual provision request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManualDecision {
    /// Provided: the data (a [`ResultPayload`] with the one item), sealed to the platform.
    Provide(SealedData),
    /// The city holds nothing for this person and item.
    NotHeld,
    /// Refused, with a reason code (1 to 64 of `[A-Za-z0-9-]`: a code, never free text, so
    /// that no personal data can travel in it).
    Refuse {
        /// The reason code.
        reason: String,
    },
}

/// The plaintext sealed inside a [`Message::CodeAcquisitionRequest`]: the individual number.
/// Its `Debug` is masked (through [`IndividualNumber`]) and its XML form is zeroized on drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityPayload {
    /// The person's 個人番号.
    pub individual_number: IndividualNumber,
}

/// The plaintext sealed inside a [`Message::InquiryRequest`]: whom the inquiry is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetPayload {
    /// The person, by unified address number.
    pub unified: UnifiedAddressNumber,
}

/// One item's data in a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultItem {
    /// 特定個人情報名コード.
    pub item: ItemCode,
    /// (field name, value) pairs in order, e.g. (`市町村民税所得割額`, `123000`).
    /// Names are 1 to 256 characters, values 0 to 8192.
    pub fields: Vec<(String, String)>,
}

/// The plaintext sealed inside a finished [`Message::InquiryResult`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultPayload {
    /// The items provided.
    pub items: Vec<ResultItem>,
}

impl ResultPayload {
    /// Checks field names and values against the rules [`ResultPayload::from_xml`] applies.
    pub fn validate(&self) -> Result<(), XmlError> {
        let root = Path::root("ResultPayload");
        let ip = root.child("Item");
        let fp = ip.child("Field");
        for item in &self.items {
            for (name, value) in &item.fields {
                ok(
                    &fp.child("@name"),
                    check::text(name, 1, check::MAX_NAME_CHARS),
                )?;
                ok(&fp, check::text(value, 0, check::MAX_FIELD_VALUE_CHARS))?;
            }
        }
        Ok(())
    }
}

//! The writer: messages and payloads to deterministic, indented UTF-8 XML.
//!
//! Output is written straight into one pre-sized `String` (no intermediate event objects):
//! a declaration line, the root with its namespace, two-space indentation, leaf values inline,
//! childless containers as `<X/>`, and a final newline. Text escapes `&`, `<`, `>` and CR
//! (as `&#13;`, so a carriage return survives a conforming parser's line-end normalisation);
//! attribute values also escape `"`, TAB and LF.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use zeroize::Zeroizing;

use crate::model::{
    CodeOutcome, Condition, Header, IdentityPayload, ManualDecision, Message, PlatformFault,
    PublishedKey, ReceiptOutcome, ResultPayload, ResultStatus, SealedData, TargetPayload,
};
use crate::{NAMESPACE, PAYLOAD_NAMESPACE};

const DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// Capacity to start a message buffer with: a header and a few fields fit without growing.
const DEFAULT_MESSAGE_CAPACITY: usize = 1024;

pub(crate) struct XmlWriter {
    out: String,
    depth: usize,
}

impl XmlWriter {
    fn new(capacity: usize) -> Self {
        let mut out = String::with_capacity(capacity);
        out.push_str(DECLARATION);
        Self { out, depth: 0 }
    }

    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
    }

    fn root(&mut self, name: &str, ns: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(" xmlns=\"");
        self.out.push_str(ns);
        self.out.push_str("\">\n");
        self.depth = 1;
    }

    /// `<name>` on its own line; children follow.
    fn open(&mut self, name: &str) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(">\n");
        self.depth += 1;
    }

    /// `<name a="v" …>` on its own line; children follow.
    fn open_attrs(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.indent();
        self.start_tag(name, attrs);
        self.out.push_str(">\n");
        self.depth += 1;
    }

    fn close(&mut self, name: &str) {
        self.depth -= 1;
        self.indent();
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    fn start_tag(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.out.push('<');
        self.out.push_str(name);
        for (k, v) in attrs {
            self.out.push(' ');
            self.out.push_str(k);
            self.out.push_str("=\"");
            escape_into(&mut self.out, v, true);
            self.out.push('"');
        }
    }

    /// `<name a="v"/>`.
    fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.indent();
        self.start_tag(name, attrs);
        self.out.push_str("/>\n");
    }

    /// `<name a="v">text</name>`.
    fn leaf_attrs(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) {
        self.indent();
        self.start_tag(name, attrs);
        self.out.push('>');
        escape_into(&mut self.out, text, false);
        self.end_inline(name);
    }

    fn leaf(&mut self, name: &str, text: &str) {
        self.leaf_attrs(name, &[], text);
    }

    fn end_inline(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    fn leaf_u32(&mut self, name: &str, v: u32) {
        let mut buf = itoa_buf();
        self.leaf(name, fmt_u32(&mut buf, v));
    }

    fn leaf_b64(&mut self, name: &str, bytes: &[u8]) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        B64.encode_string(bytes, &mut self.out);
        self.end_inline(name);
    }

    fn finish(mut self, name: &str) -> String {
        self.depth = 0;
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
        self.out
    }

    fn header(&mut self, h: &Header) {
        self.open("Header");
        self.leaf("MessageId", &h.message_id);
        self.leaf("Sender", h.sender.as_str());
        self.leaf("Recipient", h.recipient.as_str());
        self.leaf("CreatedAt", &h.created_at);
        if let Some(r) = &h.in_reply_to {
            self.leaf("InReplyTo", r);
        }
        self.close("Header");
    }

    fn sealed(&mut self, s: &SealedData) {
        let mut vbuf = itoa_buf();
        let version = fmt_u32(&mut vbuf, s.key_version);
        let enc = B64.encode(&s.enc);
        self.indent();
        self.start_tag("SealedData", &[("keyVersion", version), ("enc", &enc)]);
        self.out.push('>');
        B64.encode_string(&s.ciphertext, &mut self.out);
        self.end_inline("SealedData");
    }

    fn fault(&mut self, f: &PlatformFault) {
        self.open("Fault");
        self.fault_fields(f);
        self.close("Fault");
    }

    fn fault_fields(&mut self, f: &PlatformFault) {
        self.leaf("Code", &f.code);
        self.leaf("Message", &f.message);
    }

    fn key(&mut self, k: &PublishedKey) {
        self.open("Key");
        self.leaf("Agency", k.agency.as_str());
        self.leaf("KeyUse", k.key_use.as_str());
        self.leaf_u32("Version", k.version);
        self.leaf_b64("PublicKey", &k.public_key);
        if let Some(t) = &k.not_after {
            self.leaf("NotAfter", t);
        }
        self.close("Key");
    }

    /// A list container: `<Name>` with children, or `<Name/>` when there are none.
    fn list<T>(&mut self, name: &str, items: &[T], mut each: impl FnMut(&mut Self, &T)) {
        if items.is_empty() {
            self.empty(name, &[]);
            return;
        }
        self.open(name);
        for item in items {
            each(self, item);
        }
        self.close(name);
    }
}

type ItoaBuf = [u8; 10];

fn itoa_buf() -> ItoaBuf {
    [0u8; 10]
}

/// Formats a `u32` in decimal into `buf` without allocating.
fn fmt_u32(buf: &mut ItoaBuf, mut v: u32) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    std::str::from_utf8(&buf[i..]).unwrap_or("0")
}

/// Appends `s` escaped for element text (`attr == false`) or a double-quoted attribute value.
pub(crate) fn escape_into(out: &mut String, s: &str, attr: bool) {
    let bytes = s.as_bytes();
    let mut last = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let rep = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'\r' => "&#13;",
            b'"' if attr => "&quot;",
            b'\n' if attr => "&#10;",
            b'\t' if attr => "&#9;",
            _ => continue,
        };
        // Every byte matched above is ASCII, so `i` is a char boundary.
        out.push_str(&s[last..i]);
        out.push_str(rep);
        last = i + 1;
    }
    out.push_str(&s[last..]);
}

fn capacity_for(msg: &Message) -> usize {
    let sealed_len = |s: &SealedData| (s.enc.len() + s.ciphertext.len()) * 4 / 3 + 64;
    DEFAULT_MESSAGE_CAPACITY
        + match msg {
            Message::CodeAcquisitionRequest { sealed, .. }
            | Message::InquiryRequest { sealed, .. } => sealed_len(sealed),
            Message::InquiryResult {
                sealed: Some(s), ..
            }
            | Message::CopyTransfer {
                sealed: Some(s), ..
            }
            | Message::ManualAnswer {
                decision: ManualDecision::Provide(s),
                ..
            } => sealed_len(s),
            Message::ManualRequestList { requests, .. } => requests.len() * 512,
            Message::ProvisionLog { entries, .. } => entries.len() * 512,
            Message::MasterInfo {
                agencies,
                procedures,
                items,
                permissions,
                keys,
                ..
            } => {
                (agencies.len() + procedures.len() + items.len()) * 96
                    + permissions.len() * 96
                    + keys.len() * 320
            }
            _ => 0,
        }
}

/// Writes a message as a UTF-8 XML document: deterministic (same message, same bytes), with
/// an XML declaration and [`NAMESPACE`] on the root. It writes the fields as given; call
/// [`Message::validate`] first for a message built from outside input.
pub fn to_xml(msg: &Message) -> String {
    let name = msg.type_name();
    let mut w = XmlWriter::new(capacity_for(msg));
    w.root(name, NAMESPACE);
    w.header(msg.header());
    match msg {
        Message::CodeAcquisitionRequest {
            unified, sealed, ..
        } => {
            w.leaf("UnifiedAddressNumber", &unified.to_string());
            w.sealed(sealed);
        }
        Message::CodeAcquisitionResponse {
            unified, outcome, ..
        } => {
            w.leaf("UnifiedAddressNumber", &unified.to_string());
            match outcome {
                CodeOutcome::Acquired { fugo } => w.leaf("Fugo", fugo.as_str()),
                CodeOutcome::Failed { fault } => w.fault(fault),
            }
        }
        Message::InquiryRequest {
            record_id,
            affair,
            procedure,
            item,
            inquirer,
            provider,
            non_disclosure,
            condition,
            sealed,
            ..
        } => {
            w.leaf("RecordId", record_id);
            w.leaf("AffairCode", affair.as_str());
            w.leaf("ProcedureCode", procedure.as_str());
            w.leaf("ItemCode", item.as_str());
            w.leaf("Inquirer", inquirer.as_str());
            if let Some(p) = provider {
                w.leaf("Provider", p.as_str());
            }
            w.leaf(
                "NonDisclosure",
                if *non_disclosure { "true" } else { "false" },
            );
            w.open("Condition");
            match condition {
                Condition::FiscalYear(y) => {
                    let mut buf = itoa_buf();
                    w.leaf("FiscalYear", fmt_u32(&mut buf, u32::from(*y)));
                }
                Condition::Period { from, to } => {
                    w.open("Period");
                    w.leaf("From", from);
                    w.leaf("To", to);
                    w.close("Period");
                }
            }
            w.close("Condition");
            w.sealed(sealed);
        }
        Message::InquiryReceipt {
            record_id, outcome, ..
        } => {
            w.leaf("RecordId", record_id);
            match outcome {
                ReceiptOutcome::Accepted { serial } => w.leaf("ProcessingSerial", serial.as_str()),
                ReceiptOutcome::Rejected { fault } => w.fault(fault),
            }
        }
        Message::ResultRequest { serial, .. } => w.leaf("ProcessingSerial", serial.as_str()),
        Message::InquiryResult {
            serial,
            record_id,
            status,
            provider,
            sealed,
            fault,
            ..
        } => {
            w.leaf("ProcessingSerial", serial.as_str());
            w.leaf("RecordId", record_id);
            match status {
                ResultStatus::Pending => w.empty("Pending", &[]),
                ResultStatus::Finished {
                    detail_status,
                    item_status,
                } => {
                    w.open("Finished");
                    w.leaf("DetailStatus", detail_status);
                    w.leaf("ItemStatus", item_status);
                    w.close("Finished");
                }
            }
            if let Some(p) = provider {
                w.leaf("Provider", p.as_str());
            }
            if let Some(s) = sealed {
                w.sealed(s);
            }
            if let Some(f) = fault {
                w.fault(f);
            }
        }
        Message::KeyPublication { key, .. } => w.key(key),
        Message::KeyPublicationAck {
            agency,
            key_use,
            version,
            ..
        } => {
            w.leaf("Agency", agency.as_str());
            w.leaf("KeyUse", key_use.as_str());
            w.leaf_u32("Version", *version);
        }
        Message::MasterInfo {
            valid_until,
            agencies,
            procedures,
            items,
            permissions,
            keys,
            ..
        } => {
            w.leaf("ValidUntil", valid_until);
            w.list("Agencies", agencies, |w, (code, name)| {
                w.leaf_attrs("Agency", &[("code", code.as_str())], name)
            });
            w.list("Procedures", procedures, |w, (code, name)| {
                w.leaf_attrs("Procedure", &[("code", code.as_str())], name)
            });
            w.list("Items", items, |w, (code, name)| {
                w.leaf_attrs("Item", &[("code", code.as_str())], name)
            });
            w.list("Permissions", permissions, |w, (procedure, item)| {
                w.empty(
                    "Permission",
                    &[("procedure", procedure.as_str()), ("item", item.as_str())],
                )
            });
            w.list("Keys", keys, |w, k| w.key(k));
        }
        Message::CopyTransfer {
            record_id,
            unified,
            item,
            dataset,
            version,
            first,
            effective_from,
            effective_to,
            non_disclosure,
            sealed,
            ..
        } => {
            w.leaf("RecordId", record_id);
            w.leaf("UnifiedAddressNumber", &unified.to_string());
            w.leaf("ItemCode", item.as_str());
            w.leaf("Dataset", dataset);
            w.leaf_u32("Version", *version);
            w.leaf("FirstProvision", bool_text(*first));
            w.leaf("EffectiveFrom", effective_from);
            if let Some(to) = effective_to {
                w.leaf("EffectiveTo", to);
            }
            w.leaf("NonDisclosure", bool_text(*non_disclosure));
            match sealed {
                Some(s) => w.sealed(s),
                None => w.empty("Withdrawn", &[]),
            }
        }
        Message::CopyTransferAck {
            record_id, fault, ..
        } => {
            w.leaf("RecordId", record_id);
            match fault {
                None => w.empty("Registered", &[]),
                Some(f) => w.fault(f),
            }
        }
        Message::ProvisionLogRequest { after, .. } => w.leaf("After", &after.to_string()),
        Message::ProvisionLog { entries, .. } => {
            w.list("Entries", entries, |w, e| {
                w.open("Entry");
                w.leaf("Seq", &e.seq.to_string());
                w.leaf("UnifiedAddressNumber", &e.unified.to_string());
                w.leaf("ItemCode", e.item.as_str());
                w.leaf("ProcedureCode", e.procedure.as_str());
                w.leaf("Inquirer", e.inquirer.as_str());
                w.leaf("ProvidedAt", &e.provided_at);
                w.leaf("ItemStatus", &e.item_status);
                if let Some(v) = e.version {
                    w.leaf_u32("Version", v);
                }
                w.close("Entry");
            });
        }
        Message::AliveNotification { .. }
        | Message::AliveAck { .. }
        | Message::ManualRequestFetch { .. } => {}
        Message::ManualRequestList { requests, .. } => {
            w.list("Requests", requests, |w, r| {
                w.open("Request");
                w.leaf("RequestId", &r.request_id);
                w.leaf("UnifiedAddressNumber", &r.unified.to_string());
                w.leaf("ProcedureCode", r.procedure.as_str());
                w.leaf("ItemCode", r.item.as_str());
                w.leaf("AsOf", &r.as_of);
                w.leaf("Inquirer", r.inquirer.as_str());
                w.leaf("Deadline", &r.deadline);
                w.close("Request");
            });
        }
        Message::ManualAnswer {
            request_id,
            decision,
            ..
        } => {
            w.leaf("RequestId", request_id);
            match decision {
                ManualDecision::Provide(s) => w.sealed(s),
                ManualDecision::NotHeld => w.empty("NotHeld", &[]),
                ManualDecision::Refuse { reason } => {
                    w.open("Refused");
                    w.leaf("ReasonCode", reason);
                    w.close("Refused");
                }
            }
        }
        Message::ManualAnswerAck {
            request_id, fault, ..
        } => {
            w.leaf("RequestId", request_id);
            match fault {
                None => w.empty("Accepted", &[]),
                Some(f) => w.fault(f),
            }
        }
        Message::Fault { fault, .. } => w.fault_fields(fault),
    }
    w.finish(name)
}

fn bool_text(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

const IDENTITY_OPEN: &str =
    "<IdentityPayload xmlns=\"urn:renkei:platform:payload:v1\">\n  <IndividualNumber>";
const IDENTITY_CLOSE: &str = "</IndividualNumber>\n</IdentityPayload>\n";

pub(crate) fn identity_to_xml(p: &IdentityPayload) -> Zeroizing<String> {
    // Sized exactly, so the buffer never reallocates and leaves no unzeroized copy behind.
    let digits = Zeroizing::new(p.individual_number.expose_digits());
    let mut out = Zeroizing::new(String::with_capacity(
        DECLARATION.len() + IDENTITY_OPEN.len() + digits.len() + IDENTITY_CLOSE.len(),
    ));
    out.push_str(DECLARATION);
    out.push_str(IDENTITY_OPEN);
    out.push_str(&digits);
    out.push_str(IDENTITY_CLOSE);
    out
}

pub(crate) fn target_to_xml(p: &TargetPayload) -> String {
    let mut w = XmlWriter::new(256);
    w.root("TargetPayload", PAYLOAD_NAMESPACE);
    w.leaf("UnifiedAddressNumber", &p.unified.to_string());
    w.finish("TargetPayload")
}

pub(crate) fn result_to_xml(p: &ResultPayload) -> String {
    let fields: usize = p.items.iter().map(|i| i.fields.len()).sum();
    let mut w = XmlWriter::new(256 + p.items.len() * 64 + fields * 128);
    w.root("ResultPayload", PAYLOAD_NAMESPACE);
    for item in &p.items {
        if item.fields.is_empty() {
            w.empty("Item", &[("code", item.item.as_str())]);
            continue;
        }
        w.open_attrs("Item", &[("code", item.item.as_str())]);
        for (name, value) in &item.fields {
            w.leaf_attrs("Field", &[("name", name)], value);
        }
        w.close("Item");
    }
    w.finish("ResultPayload")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_text_and_attributes() {
        let mut s = String::new();
        escape_into(&mut s, "a&b<c>d\"e'f\r\n\tg符号", false);
        assert_eq!(s, "a&amp;b&lt;c&gt;d\"e'f&#13;\n\tg符号");
        s.clear();
        escape_into(&mut s, "a&b<c>d\"e'f\r\n\tg符号", true);
        assert_eq!(s, "a&amp;b&lt;c&gt;d&quot;e'f&#13;&#10;&#9;g符号");
    }

    #[test]
    fn formats_u32() {
        for v in [0u32, 1, 9, 10, 2026, u32::MAX] {
            let mut b = itoa_buf();
            assert_eq!(fmt_u32(&mut b, v), v.to_string());
        }
    }
}

//! The decoder: element tree to typed messages and payloads, in schema order, every value
//! validated through the `renkei-ids` newtypes or the shape checks, every error with its path.

use std::borrow::Cow;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use renkei_ids::{
    AffairCode, AgencyCode, Fugo, IdError, IndividualNumber, ItemCode, ProcedureCode,
    ProcessingSerial, UnifiedAddressNumber,
};
use zeroize::Zeroize;

use crate::check;
use crate::error::{Path, XmlError};
use crate::model::{
    fault_message, ok, CodeOutcome, Condition, Header, IdentityPayload, KeyUse, ManualDecision,
    ManualRequest, Message, PlatformFault, ProvisionEntry, PublishedKey, ReceiptOutcome,
    ResultItem, ResultPayload, ResultStatus, SealedData, TargetPayload,
};
use crate::read::{is_blank, parse_document, Node};
use crate::{NAMESPACE, PAYLOAD_NAMESPACE};

/// Walks an element's children in schema order.
struct Kids<'n, 'a, 'p> {
    node: &'n Node<'a>,
    path: &'p Path<'p>,
    next: usize,
}

impl<'n, 'a, 'p> Kids<'n, 'a, 'p> {
    /// The children of `node`, which must have no attributes.
    fn of(node: &'n Node<'a>, path: &'p Path<'p>) -> Result<Self, XmlError> {
        no_attrs(node, path)?;
        Self::with_attrs(node, path)
    }

    /// The children of `node`, whose attributes the caller checks. Element-only content:
    /// text other than whitespace is refused.
    fn with_attrs(node: &'n Node<'a>, path: &'p Path<'p>) -> Result<Self, XmlError> {
        if !is_blank(&node.text) {
            return Err(path.err(
                XmlError::UNEXPECTED_TEXT,
                "text where only child elements are allowed",
            ));
        }
        Ok(Self {
            node,
            path,
            next: 0,
        })
    }

    fn peek(&self) -> Option<&'n Node<'a>> {
        self.node.children.get(self.next)
    }

    fn optional(&mut self, name: &str) -> Option<&'n Node<'a>> {
        let n = self.peek().filter(|n| n.name == name)?;
        self.next += 1;
        Some(n)
    }

    fn expect(&mut self, name: &'static str) -> Result<&'n Node<'a>, XmlError> {
        self.optional(name).ok_or_else(|| self.missing(name))
    }

    fn missing(&self, name: &str) -> XmlError {
        let found = match self.peek() {
            Some(other) => format!("required element is missing (found {} instead)", other.name),
            None => "required element is missing".to_owned(),
        };
        self.path.child(name).err(XmlError::MISSING_ELEMENT, found)
    }

    /// A required leaf's text.
    fn text(&mut self, name: &'static str) -> Result<&'n str, XmlError> {
        let n = self.expect(name)?;
        leaf_text(n, &self.path.child(name))
    }

    /// An optional leaf's text.
    fn opt_text(&mut self, name: &'static str) -> Result<Option<&'n str>, XmlError> {
        match self.optional(name) {
            Some(n) => leaf_text(n, &self.path.child(name)).map(Some),
            None => Ok(None),
        }
    }

    /// A required leaf parsed by a `renkei-ids` constructor.
    fn id<T>(
        &mut self,
        name: &'static str,
        parse: fn(&str) -> Result<T, IdError>,
    ) -> Result<T, XmlError> {
        let t = self.text(name)?;
        id_value(&self.path.child(name), t, parse)
    }

    /// A required leaf checked by a shape check.
    fn checked(
        &mut self,
        name: &'static str,
        check: fn(&str) -> Result<(), &'static str>,
    ) -> Result<String, XmlError> {
        let t = self.text(name)?;
        ok(&self.path.child(name), check(t))?;
        Ok(t.to_owned())
    }

    /// No children may remain.
    fn end(self) -> Result<(), XmlError> {
        match self.peek() {
            Some(extra) => Err(self
                .path
                .child(extra.name)
                .err(XmlError::UNKNOWN_ELEMENT, "element not allowed here")),
            None => Ok(()),
        }
    }
}

fn no_attrs(node: &Node<'_>, path: &Path<'_>) -> Result<(), XmlError> {
    attrs_only(node, path, &[])
}

fn attrs_only(node: &Node<'_>, path: &Path<'_>, allowed: &[&str]) -> Result<(), XmlError> {
    match node.attrs.iter().find(|(k, _)| !allowed.contains(k)) {
        Some((k, _)) => Err(XmlError::new(
            XmlError::UNKNOWN_ATTRIBUTE,
            format!("{path}/@{k}"),
            "attribute not allowed here",
        )),
        None => Ok(()),
    }
}

fn attr<'n>(node: &'n Node<'_>, path: &Path<'_>, name: &'static str) -> Result<&'n str, XmlError> {
    node.attrs
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.as_ref())
        .ok_or_else(|| {
            XmlError::new(
                XmlError::MISSING_ATTRIBUTE,
                format!("{path}/@{name}"),
                "required attribute is missing",
            )
        })
}

/// Text of an element that must have neither attributes nor children.
fn leaf_text<'n>(node: &'n Node<'_>, path: &Path<'_>) -> Result<&'n str, XmlError> {
    no_attrs(node, path)?;
    leaf_text_with_attrs(node, path)
}

fn leaf_text_with_attrs<'n>(node: &'n Node<'_>, path: &Path<'_>) -> Result<&'n str, XmlError> {
    if let Some(c) = node.children.first() {
        return Err(path
            .child(c.name)
            .err(XmlError::UNKNOWN_ELEMENT, "element not allowed here"));
    }
    Ok(&node.text)
}

fn empty_element(node: &Node<'_>, path: &Path<'_>) -> Result<(), XmlError> {
    if !leaf_text(node, path)?.is_empty() {
        return Err(path.err(XmlError::UNEXPECTED_TEXT, "element must be empty"));
    }
    Ok(())
}

fn id_value<T>(
    path: &Path<'_>,
    text: &str,
    parse: fn(&str) -> Result<T, IdError>,
) -> Result<T, XmlError> {
    // IdError's message names the kind and the expected form, never the value.
    parse(text).map_err(|e| path.invalid(e.to_string()))
}

fn b64(path: &Path<'_>, text: &str) -> Result<Vec<u8>, XmlError> {
    if text.is_empty() {
        return Err(path.invalid("is empty"));
    }
    B64.decode(text)
        .map_err(|_| path.invalid("expected canonical base64 with padding"))
}

fn version(path: &Path<'_>, text: &str) -> Result<u32, XmlError> {
    check::positive_u32(text).map_err(|r| path.invalid(r))
}

fn boolean(path: &Path<'_>, text: &str) -> Result<bool, XmlError> {
    match text {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(path.invalid("expected true or false")),
    }
}

fn header(kids: &mut Kids<'_, '_, '_>) -> Result<Header, XmlError> {
    let node = kids.expect("Header")?;
    let p = kids.path.child("Header");
    let mut k = Kids::of(node, &p)?;
    let h = Header {
        message_id: k.checked("MessageId", check::id_token)?,
        sender: k.id("Sender", AgencyCode::parse)?,
        recipient: k.id("Recipient", AgencyCode::parse)?,
        created_at: k.checked("CreatedAt", check::timestamp)?,
        in_reply_to: match k.opt_text("InReplyTo")? {
            Some(t) => {
                ok(&p.child("InReplyTo"), check::id_token(t))?;
                Some(t.to_owned())
            }
            None => None,
        },
    };
    k.end()?;
    Ok(h)
}

fn sealed(node: &Node<'_>, p: &Path<'_>) -> Result<SealedData, XmlError> {
    attrs_only(node, p, &["keyVersion", "enc"])?;
    let key_version = version(&p.child("@keyVersion"), attr(node, p, "keyVersion")?)?;
    let enc = b64(&p.child("@enc"), attr(node, p, "enc")?)?;
    let ciphertext = b64(p, leaf_text_with_attrs(node, p)?)?;
    Ok(SealedData {
        key_version,
        enc,
        ciphertext,
    })
}

fn fault_fields(k: &mut Kids<'_, '_, '_>) -> Result<PlatformFault, XmlError> {
    Ok(PlatformFault {
        code: k.checked("Code", check::fault_code)?,
        message: k.checked("Message", fault_message)?,
    })
}

fn fault(node: &Node<'_>, p: &Path<'_>) -> Result<PlatformFault, XmlError> {
    let mut k = Kids::of(node, p)?;
    let f = fault_fields(&mut k)?;
    k.end()?;
    Ok(f)
}

fn key_use(p: &Path<'_>, t: &str) -> Result<KeyUse, XmlError> {
    KeyUse::parse(t).ok_or_else(|| p.invalid("expected signing or sealing"))
}

fn published_key(node: &Node<'_>, p: &Path<'_>) -> Result<PublishedKey, XmlError> {
    let mut k = Kids::of(node, p)?;
    let key = PublishedKey {
        agency: k.id("Agency", AgencyCode::parse)?,
        key_use: key_use(&p.child("KeyUse"), k.text("KeyUse")?)?,
        version: version(&p.child("Version"), k.text("Version")?)?,
        public_key: b64(&p.child("PublicKey"), k.text("PublicKey")?)?,
        not_after: match k.opt_text("NotAfter")? {
            Some(t) => {
                ok(&p.child("NotAfter"), check::timestamp(t))?;
                Some(t.to_owned())
            }
            None => None,
        },
    };
    k.end()?;
    Ok(key)
}

/// Reads a `(code, name)` list such as `<Agencies><Agency code="…">name</Agency>…</Agencies>`.
fn named_list<T>(
    k: &mut Kids<'_, '_, '_>,
    list: &'static str,
    each: &'static str,
    parse: fn(&str) -> Result<T, IdError>,
) -> Result<Vec<(T, String)>, XmlError> {
    let node = k.expect(list)?;
    let lp = k.path.child(list);
    let mut kids = Kids::of(node, &lp)?;
    let ep = lp.child(each);
    let mut out = Vec::with_capacity(node.children.len());
    while let Some(n) = kids.optional(each) {
        attrs_only(n, &ep, &["code"])?;
        let code = id_value(&ep.child("@code"), attr(n, &ep, "code")?, parse)?;
        let name = leaf_text_with_attrs(n, &ep)?;
        ok(&ep, check::text(name, 1, check::MAX_NAME_CHARS))?;
        out.push((code, name.to_owned()));
    }
    kids.end()?;
    Ok(out)
}

fn message(root: &Node<'_>) -> Result<Message, XmlError> {
    let name = Message::TYPE_NAMES
        .iter()
        .find(|n| **n == root.name)
        .ok_or_else(|| {
            XmlError::new(
                XmlError::UNKNOWN_ELEMENT,
                root.name,
                "not a platform message",
            )
        })?;
    let p = Path::root(name);
    let mut k = Kids::of(root, &p)?;
    let header = header(&mut k)?;
    let msg = match *name {
        "CodeAcquisitionRequest" => Message::CodeAcquisitionRequest {
            header,
            unified: k.id("UnifiedAddressNumber", UnifiedAddressNumber::parse)?,
            sealed: sealed(k.expect("SealedData")?, &p.child("SealedData"))?,
        },
        "CodeAcquisitionResponse" => {
            let unified = k.id("UnifiedAddressNumber", UnifiedAddressNumber::parse)?;
            let outcome = if let Some(n) = k.optional("Fugo") {
                let fp = p.child("Fugo");
                CodeOutcome::Acquired {
                    fugo: id_value(&fp, leaf_text(n, &fp)?, Fugo::parse)?,
                }
            } else if let Some(n) = k.optional("Fault") {
                CodeOutcome::Failed {
                    fault: fault(n, &p.child("Fault"))?,
                }
            } else {
                return Err(k.missing("Fugo"));
            };
            Message::CodeAcquisitionResponse {
                header,
                unified,
                outcome,
            }
        }
        "InquiryRequest" => {
            let record_id = k.checked("RecordId", check::id_token)?;
            let affair = k.id("AffairCode", AffairCode::parse)?;
            let procedure = k.id("ProcedureCode", ProcedureCode::parse)?;
            let item = k.id("ItemCode", ItemCode::parse)?;
            let inquirer = k.id("Inquirer", AgencyCode::parse)?;
            let provider = match k.opt_text("Provider")? {
                Some(t) => Some(id_value(&p.child("Provider"), t, AgencyCode::parse)?),
                None => None,
            };
            let non_disclosure = match k.text("NonDisclosure")? {
                "true" => true,
                "false" => false,
                _ => return Err(p.child("NonDisclosure").invalid("expected true or false")),
            };
            let cp = p.child("Condition");
            let cond_node = k.expect("Condition")?;
            let mut ck = Kids::of(cond_node, &cp)?;
            let condition = if let Some(t) = ck.opt_text("FiscalYear")? {
                Condition::FiscalYear(
                    check::fiscal_year(t).map_err(|r| cp.child("FiscalYear").invalid(r))?,
                )
            } else if let Some(n) = ck.optional("Period") {
                let pp = cp.child("Period");
                let mut pk = Kids::of(n, &pp)?;
                let from = pk.checked("From", check::date)?;
                let to = pk.checked("To", check::date)?;
                pk.end()?;
                if from > to {
                    return Err(pp.child("To").invalid("period ends before it starts"));
                }
                Condition::Period { from, to }
            } else {
                return Err(ck.missing("FiscalYear"));
            };
            ck.end()?;
            let sealed = sealed(k.expect("SealedData")?, &p.child("SealedData"))?;
            Message::InquiryRequest {
                header,
                record_id,
                affair,
                procedure,
                item,
                inquirer,
                provider,
                non_disclosure,
                condition,
                sealed,
            }
        }
        "InquiryReceipt" => {
            let record_id = k.checked("RecordId", check::id_token)?;
            let outcome = if let Some(t) = k.opt_text("ProcessingSerial")? {
                ReceiptOutcome::Accepted {
                    serial: id_value(&p.child("ProcessingSerial"), t, ProcessingSerial::parse)?,
                }
            } else if let Some(n) = k.optional("Fault") {
                ReceiptOutcome::Rejected {
                    fault: fault(n, &p.child("Fault"))?,
                }
            } else {
                return Err(k.missing("ProcessingSerial"));
            };
            Message::InquiryReceipt {
                header,
                record_id,
                outcome,
            }
        }
        "ResultRequest" => Message::ResultRequest {
            header,
            serial: k.id("ProcessingSerial", ProcessingSerial::parse)?,
        },
        "InquiryResult" => {
            let serial = k.id("ProcessingSerial", ProcessingSerial::parse)?;
            let record_id = k.checked("RecordId", check::id_token)?;
            let status = if let Some(n) = k.optional("Pending") {
                empty_element(n, &p.child("Pending"))?;
                ResultStatus::Pending
            } else if let Some(n) = k.optional("Finished") {
                let fp = p.child("Finished");
                let mut fk = Kids::of(n, &fp)?;
                let detail_status = fk.checked("DetailStatus", check::status2)?;
                let item_status = fk.checked("ItemStatus", check::status2)?;
                fk.end()?;
                ResultStatus::Finished {
                    detail_status,
                    item_status,
                }
            } else {
                return Err(k.missing("Pending"));
            };
            let provider = match k.opt_text("Provider")? {
                Some(t) => Some(id_value(&p.child("Provider"), t, AgencyCode::parse)?),
                None => None,
            };
            let sealed = match k.optional("SealedData") {
                Some(n) => Some(sealed(n, &p.child("SealedData"))?),
                None => None,
            };
            let fault = match k.optional("Fault") {
                Some(n) => Some(fault(n, &p.child("Fault"))?),
                None => None,
            };
            Message::InquiryResult {
                header,
                serial,
                record_id,
                status,
                provider,
                sealed,
                fault,
            }
        }
        "KeyPublication" => Message::KeyPublication {
            header,
            key: published_key(k.expect("Key")?, &p.child("Key"))?,
        },
        "KeyPublicationAck" => {
            let agency = k.id("Agency", AgencyCode::parse)?;
            let key_use = key_use(&p.child("KeyUse"), k.text("KeyUse")?)?;
            let version = version(&p.child("Version"), k.text("Version")?)?;
            Message::KeyPublicationAck {
                header,
                agency,
                key_use,
                version,
            }
        }
        "MasterInfo" => {
            let valid_until = k.checked("ValidUntil", check::timestamp)?;
            let agencies = named_list(&mut k, "Agencies", "Agency", AgencyCode::parse)?;
            let procedures = named_list(&mut k, "Procedures", "Procedure", ProcedureCode::parse)?;
            let items = named_list(&mut k, "Items", "Item", ItemCode::parse)?;
            let pl = k.expect("Permissions")?;
            let plp = p.child("Permissions");
            let mut plk = Kids::of(pl, &plp)?;
            let pp = plp.child("Permission");
            let mut permissions = Vec::with_capacity(pl.children.len());
            while let Some(n) = plk.optional("Permission") {
                attrs_only(n, &pp, &["procedure", "item"])?;
                let procedure = id_value(
                    &pp.child("@procedure"),
                    attr(n, &pp, "procedure")?,
                    ProcedureCode::parse,
                )?;
                let item = id_value(&pp.child("@item"), attr(n, &pp, "item")?, ItemCode::parse)?;
                if !leaf_text_with_attrs(n, &pp)?.is_empty() {
                    return Err(pp.err(XmlError::UNEXPECTED_TEXT, "element must be empty"));
                }
                permissions.push((procedure, item));
            }
            plk.end()?;
            let kl = k.expect("Keys")?;
            let klp = p.child("Keys");
            let mut klk = Kids::of(kl, &klp)?;
            let kp = klp.child("Key");
            let mut keys = Vec::with_capacity(kl.children.len());
            while let Some(n) = klk.optional("Key") {
                keys.push(published_key(n, &kp)?);
            }
            klk.end()?;
            Message::MasterInfo {
                header,
                valid_until,
                agencies,
                procedures,
                items,
                permissions,
                keys,
            }
        }
        "CopyTransfer" => {
            let record_id = k.checked("RecordId", check::id_token)?;
            let unified = k.id("UnifiedAddressNumber", UnifiedAddressNumber::parse)?;
            let item = k.id("ItemCode", ItemCode::parse)?;
            let dataset = k.checked("Dataset", check::id_token)?;
            let version = version(&p.child("Version"), k.text("Version")?)?;
            let first = boolean(&p.child("FirstProvision"), k.text("FirstProvision")?)?;
            let effective_from = k.checked("EffectiveFrom", check::date)?;
            let effective_to = match k.opt_text("EffectiveTo")? {
                Some(t) => {
                    ok(&p.child("EffectiveTo"), check::date(t))?;
                    if t < effective_from.as_str() {
                        return Err(p
                            .child("EffectiveTo")
                            .invalid("period ends before it starts"));
                    }
                    Some(t.to_owned())
                }
                None => None,
            };
            let non_disclosure = boolean(&p.child("NonDisclosure"), k.text("NonDisclosure")?)?;
            let sealed = if let Some(n) = k.optional("Withdrawn") {
                empty_element(n, &p.child("Withdrawn"))?;
                None
            } else {
                Some(sealed(k.expect("SealedData")?, &p.child("SealedData"))?)
            };
            Message::CopyTransfer {
                header,
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
            }
        }
        "CopyTransferAck" => {
            let record_id = k.checked("RecordId", check::id_token)?;
            let fault = if let Some(n) = k.optional("Registered") {
                empty_element(n, &p.child("Registered"))?;
                None
            } else if let Some(n) = k.optional("Fault") {
                Some(fault(n, &p.child("Fault"))?)
            } else {
                return Err(k.missing("Registered"));
            };
            Message::CopyTransferAck {
                header,
                record_id,
                fault,
            }
        }
        "ProvisionLogRequest" => {
            let after =
                check::canonical_u64(k.text("After")?).map_err(|r| p.child("After").invalid(r))?;
            Message::ProvisionLogRequest { header, after }
        }
        "ProvisionLog" => {
            let lp = p.child("Entries");
            let list = k.expect("Entries")?;
            let mut lk = Kids::of(list, &lp)?;
            let ep = lp.child("Entry");
            let mut entries = Vec::with_capacity(list.children.len());
            while let Some(n) = lk.optional("Entry") {
                let mut ek = Kids::of(n, &ep)?;
                let seq = check::canonical_u64(ek.text("Seq")?)
                    .and_then(|v| {
                        if v == 0 {
                            Err("expected a positive integer")
                        } else {
                            Ok(v)
                        }
                    })
                    .map_err(|r| ep.child("Seq").invalid(r))?;
                let entry = ProvisionEntry {
                    seq,
                    unified: ek.id("UnifiedAddressNumber", UnifiedAddressNumber::parse)?,
                    item: ek.id("ItemCode", ItemCode::parse)?,
                    procedure: ek.id("ProcedureCode", ProcedureCode::parse)?,
                    inquirer: ek.id("Inquirer", AgencyCode::parse)?,
                    provided_at: ek.checked("ProvidedAt", check::timestamp)?,
                    item_status: ek.checked("ItemStatus", check::status2)?,
                    version: match ek.opt_text("Version")? {
                        Some(t) => Some(version(&ep.child("Version"), t)?),
                        None => None,
                    },
                };
                ek.end()?;
                entries.push(entry);
            }
            lk.end()?;
            Message::ProvisionLog { header, entries }
        }
        "AliveNotification" => Message::AliveNotification { header },
        "AliveAck" => Message::AliveAck { header },
        "ManualRequestFetch" => Message::ManualRequestFetch { header },
        "ManualRequestList" => {
            let lp = p.child("Requests");
            let list = k.expect("Requests")?;
            let mut lk = Kids::of(list, &lp)?;
            let rp = lp.child("Request");
            let mut requests = Vec::with_capacity(list.children.len());
            while let Some(n) = lk.optional("Request") {
                let mut rk = Kids::of(n, &rp)?;
                let r = ManualRequest {
                    request_id: rk.checked("RequestId", check::id_token)?,
                    unified: rk.id("UnifiedAddressNumber", UnifiedAddressNumber::parse)?,
                    procedure: rk.id("ProcedureCode", ProcedureCode::parse)?,
                    item: rk.id("ItemCode", ItemCode::parse)?,
                    as_of: rk.checked("AsOf", check::date)?,
                    inquirer: rk.id("Inquirer", AgencyCode::parse)?,
                    deadline: rk.checked("Deadline", check::timestamp)?,
                };
                rk.end()?;
                requests.push(r);
            }
            lk.end()?;
            Message::ManualRequestList { header, requests }
        }
        "ManualAnswer" => {
            let request_id = k.checked("RequestId", check::id_token)?;
            let decision = if let Some(n) = k.optional("SealedData") {
                ManualDecision::Provide(sealed(n, &p.child("SealedData"))?)
            } else if let Some(n) = k.optional("NotHeld") {
                empty_element(n, &p.child("NotHeld"))?;
                ManualDecision::NotHeld
            } else if let Some(n) = k.optional("Refused") {
                let rp = p.child("Refused");
                let mut rk = Kids::of(n, &rp)?;
                let reason = rk.checked("ReasonCode", check::id_token)?;
                rk.end()?;
                ManualDecision::Refuse { reason }
            } else {
                return Err(k.missing("SealedData"));
            };
            Message::ManualAnswer {
                header,
                request_id,
                decision,
            }
        }
        "ManualAnswerAck" => {
            let request_id = k.checked("RequestId", check::id_token)?;
            let fault = if let Some(n) = k.optional("Accepted") {
                empty_element(n, &p.child("Accepted"))?;
                None
            } else if let Some(n) = k.optional("Fault") {
                Some(fault(n, &p.child("Fault"))?)
            } else {
                return Err(k.missing("Accepted"));
            };
            Message::ManualAnswerAck {
                header,
                request_id,
                fault,
            }
        }
        _ => Message::Fault {
            header,
            fault: fault_fields(&mut k)?,
        },
    };
    k.end()?;
    Ok(msg)
}

/// Parses and validates a platform message. Refuses DTDs, entity declarations, processing
/// instructions, unknown elements and attributes, other namespaces, documents over
/// [`crate::MAX_MESSAGE_BYTES`] or deeper than [`crate::MAX_DEPTH`], and any invalid value,
/// naming the element path.
pub fn from_xml(bytes: &[u8]) -> Result<Message, XmlError> {
    let root = parse_document(bytes, NAMESPACE)?;
    message(&root)
}

fn payload_root(root: &Node<'_>, name: &'static str) -> Result<(), XmlError> {
    if root.name != name {
        return Err(XmlError::new(
            XmlError::UNKNOWN_ELEMENT,
            root.name,
            format!("expected {name}"),
        ));
    }
    Ok(())
}

pub(crate) fn identity_from_xml(bytes: &[u8]) -> Result<IdentityPayload, XmlError> {
    let mut root = parse_document(bytes, PAYLOAD_NAMESPACE).map_err(scrub_digits)?;
    let result = (|| {
        payload_root(&root, "IdentityPayload")?;
        let p = Path::root("IdentityPayload");
        let mut k = Kids::of(&root, &p)?;
        // IndividualNumber::parse's errors say "check digit does not match" or the expected
        // form: never the digits.
        let individual_number = k.id("IndividualNumber", IndividualNumber::parse)?;
        k.end()?;
        Ok(IdentityPayload { individual_number })
    })();
    // A copy made while unescaping holds the digits: wipe it.
    wipe(&mut root);
    result.map_err(scrub_digits)
}

/// Masks every run of four or more ASCII digits in an error's path and message, so that
/// nothing resembling an individual number, wherever a sender put it, reaches a log.
fn scrub_digits(mut e: XmlError) -> XmlError {
    fn scrub(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = String::with_capacity(s.len());
        let mut i = 0;
        while i < b.len() {
            let run = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
            if run >= 4 {
                out.extend(std::iter::repeat_n('*', run));
                i += run;
            } else {
                let next = s[i..].chars().next().map_or(1, char::len_utf8);
                out.push_str(&s[i..i + next.max(run)]);
                i += next.max(run);
            }
        }
        out
    }
    e.path = scrub(&e.path);
    e.message = scrub(&e.message);
    e
}

fn wipe(node: &mut Node<'_>) {
    if let Cow::Owned(s) = &mut node.text {
        s.zeroize();
    }
    for c in &mut node.children {
        wipe(c);
    }
}

pub(crate) fn target_from_xml(bytes: &[u8]) -> Result<TargetPayload, XmlError> {
    let root = parse_document(bytes, PAYLOAD_NAMESPACE)?;
    payload_root(&root, "TargetPayload")?;
    let p = Path::root("TargetPayload");
    let mut k = Kids::of(&root, &p)?;
    let unified = k.id("UnifiedAddressNumber", UnifiedAddressNumber::parse)?;
    k.end()?;
    Ok(TargetPayload { unified })
}

pub(crate) fn result_from_xml(bytes: &[u8]) -> Result<ResultPayload, XmlError> {
    let root = parse_document(bytes, PAYLOAD_NAMESPACE)?;
    payload_root(&root, "ResultPayload")?;
    let p = Path::root("ResultPayload");
    let mut k = Kids::of(&root, &p)?;
    let ip = p.child("Item");
    let fp = ip.child("Field");
    let mut items = Vec::with_capacity(root.children.len());
    while let Some(n) = k.optional("Item") {
        attrs_only(n, &ip, &["code"])?;
        let item = id_value(&ip.child("@code"), attr(n, &ip, "code")?, ItemCode::parse)?;
        let mut ik = Kids::with_attrs(n, &ip)?;
        let mut fields = Vec::with_capacity(n.children.len());
        while let Some(f) = ik.optional("Field") {
            attrs_only(f, &fp, &["name"])?;
            let name = attr(f, &fp, "name")?;
            ok(
                &fp.child("@name"),
                check::text(name, 1, check::MAX_NAME_CHARS),
            )?;
            let value = leaf_text_with_attrs(f, &fp)?;
            ok(&fp, check::text(value, 0, check::MAX_FIELD_VALUE_CHARS))?;
            fields.push((name.to_owned(), value.to_owned()));
        }
        ik.end()?;
        items.push(ResultItem { item, fields });
    }
    k.end()?;
    Ok(ResultPayload { items })
}

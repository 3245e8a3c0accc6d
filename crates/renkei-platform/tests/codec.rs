//! Golden strings, round trips, and refusals of the message and payload codec.

mod common;

use common::*;
use renkei_platform::*;

/// The expected document: declaration, root with namespace, the sample header, then `body`
/// (already indented by two spaces).
fn golden(root: &str, id: &str, reply: Option<&str>, body: &str) -> String {
    let reply = reply
        .map(|r| format!("    <InReplyTo>{r}</InReplyTo>\n"))
        .unwrap_or_default();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root} xmlns=\"urn:renkei:platform:v1\">\n  <Header>\n    \
         <MessageId>{id}</MessageId>\n    <Sender>0112345678900000</Sender>\n    <Recipient>9900000000000001</Recipient>\n    \
         <CreatedAt>2026-11-26T21:00:00.123+09:00</CreatedAt>\n{reply}  </Header>\n{body}</{root}>\n"
    )
}

const SEALED: &str = "  <SealedData keyVersion=\"3\" enc=\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0A=\">Y2lwaGVydGV4dCB3aXRoIHRhZy4uLi4=</SealedData>\n";
const PUBKEY: &str =
    "BAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0A=";

fn expected_goldens() -> Vec<String> {
    let unified = "  <UnifiedAddressNumber>123456789012340</UnifiedAddressNumber>\n";
    let inquiry_common = "  <RecordId>R-20261126-0001</RecordId>\n  <AffairCode>JM01000000121000</AffairCode>\n  \
        <ProcedureCode>JT01010000000214</ProcedureCode>\n  <ItemCode>TM00000000000002</ItemCode>\n  \
        <Inquirer>0112345678900000</Inquirer>\n";
    vec![
        golden("CodeAcquisitionRequest", "m-0001", None, &format!("{unified}{SEALED}")),
        golden(
            "CodeAcquisitionResponse",
            "m-0002",
            Some("m-0001"),
            &format!("{unified}  <Fugo>FUGO-abc_123</Fugo>\n"),
        ),
        golden(
            "CodeAcquisitionResponse",
            "m-0002b",
            Some("m-0001"),
            &format!(
                "{unified}  <Fault>\n    <Code>E1001</Code>\n    \
                 <Message>符号が未取得です。（団体内統合宛名番号：１２３４５６７８９０１２３４５）</Message>\n  </Fault>\n"
            ),
        ),
        golden(
            "InquiryRequest",
            "m-0003",
            None,
            &format!(
                "{inquiry_common}  <Provider>0113456789000000</Provider>\n  <NonDisclosure>false</NonDisclosure>\n  \
                 <Condition>\n    <FiscalYear>2026</FiscalYear>\n  </Condition>\n{SEALED}"
            ),
        ),
        golden(
            "InquiryRequest",
            "m-0003",
            None,
            &format!(
                "{inquiry_common}  <NonDisclosure>true</NonDisclosure>\n  <Condition>\n    <Period>\n      \
                 <From>2026-04-01</From>\n      <To>2027-03-31</To>\n    </Period>\n  </Condition>\n{SEALED}"
            ),
        ),
        golden(
            "InquiryReceipt",
            "m-0004",
            Some("m-0003"),
            "  <RecordId>R-20261126-0001</RecordId>\n  <ProcessingSerial>S000000000123</ProcessingSerial>\n",
        ),
        golden(
            "InquiryReceipt",
            "m-0004b",
            Some("m-0003"),
            "  <RecordId>R-20261126-0001</RecordId>\n  <Fault>\n    <Code>E2003</Code>\n    \
             <Message>レコード識別番号が重複しています。</Message>\n  </Fault>\n",
        ),
        golden(
            "ResultRequest",
            "m-0005",
            None,
            "  <ProcessingSerial>S000000000123</ProcessingSerial>\n",
        ),
        golden(
            "InquiryResult",
            "m-0006",
            Some("m-0005"),
            "  <ProcessingSerial>S000000000123</ProcessingSerial>\n  <RecordId>R-20261126-0001</RecordId>\n  <Pending/>\n",
        ),
        golden(
            "InquiryResult",
            "m-0006b",
            Some("m-0005"),
            &format!(
                "  <ProcessingSerial>S000000000123</ProcessingSerial>\n  <RecordId>R-20261126-0001</RecordId>\n  \
                 <Finished>\n    <DetailStatus>09</DetailStatus>\n    <ItemStatus>01</ItemStatus>\n  </Finished>\n  \
                 <Provider>0113456789000000</Provider>\n{SEALED}  <Fault>\n    <Code>I0000</Code>\n    \
                 <Message>正常終了 &lt;注記&gt; &amp; \"引用\" 'a'&#13;\n次行</Message>\n  </Fault>\n"
            ),
        ),
        golden(
            "KeyPublication",
            "m-0007",
            None,
            &format!(
                "  <Key>\n    <Agency>0112345678900000</Agency>\n    <KeyUse>signing</KeyUse>\n    \
                 <Version>2</Version>\n    <PublicKey>{PUBKEY}</PublicKey>\n    \
                 <NotAfter>2027-11-26T00:00:00Z</NotAfter>\n  </Key>\n"
            ),
        ),
        golden(
            "KeyPublicationAck",
            "m-0008",
            Some("m-0007"),
            "  <Agency>0112345678900000</Agency>\n  <KeyUse>signing</KeyUse>\n  <Version>2</Version>\n",
        ),
        golden(
            "MasterInfo",
            "m-0009",
            None,
            &format!(
                "  <ValidUntil>2026-12-31T23:59:59+09:00</ValidUntil>\n  <Agencies>\n    \
                 <Agency code=\"0112345678900000\">札幌市</Agency>\n    \
                 <Agency code=\"9900000000000001\">中間サーバー・プラットフォーム</Agency>\n  </Agencies>\n  \
                 <Procedures>\n    <Procedure code=\"JT01010000000214\">子ども医療費助成 &amp; 所得審査</Procedure>\n  \
                 </Procedures>\n  <Items>\n    <Item code=\"TM00000000000002\">地方税関係情報</Item>\n    \
                 <Item code=\"TM00000000000089\">公金受取口座情報</Item>\n  </Items>\n  <Permissions>\n    \
                 <Permission procedure=\"JT01010000000214\" item=\"TM00000000000002\"/>\n  </Permissions>\n  \
                 <Keys>\n    <Key>\n      <Agency>0112345678900000</Agency>\n      <KeyUse>sealing</KeyUse>\n      \
                 <Version>1</Version>\n      <PublicKey>{PUBKEY}</PublicKey>\n    </Key>\n    <Key>\n      \
                 <Agency>0112345678900000</Agency>\n      <KeyUse>signing</KeyUse>\n      <Version>2</Version>\n      \
                 <PublicKey>{PUBKEY}</PublicKey>\n      <NotAfter>2027-11-26T00:00:00+09:00</NotAfter>\n    </Key>\n  \
                 </Keys>\n"
            ),
        ),
        golden(
            "MasterInfo",
            "m-0009b",
            None,
            "  <ValidUntil>2026-12-31T23:59:59Z</ValidUntil>\n  <Agencies/>\n  <Procedures/>\n  <Items/>\n  \
             <Permissions/>\n  <Keys/>\n",
        ),
        golden(
            "CopyTransfer",
            "m-0011",
            None,
            &format!(
                "  <RecordId>CP-0001</RecordId>\n{unified}  <ItemCode>TM00000000000002</ItemCode>\n  \
                 <Dataset>D001</Dataset>\n  <Version>2</Version>\n  <FirstProvision>false</FirstProvision>\n  \
                 <EffectiveFrom>2026-04-01</EffectiveFrom>\n  <EffectiveTo>2027-03-31</EffectiveTo>\n  \
                 <NonDisclosure>false</NonDisclosure>\n{SEALED}"
            ),
        ),
        golden(
            "CopyTransfer",
            "m-0012",
            None,
            &format!(
                "  <RecordId>CP-0002</RecordId>\n{unified}  <ItemCode>TM00000000000002</ItemCode>\n  \
                 <Dataset>D001</Dataset>\n  <Version>3</Version>\n  <FirstProvision>false</FirstProvision>\n  \
                 <EffectiveFrom>2026-12-01</EffectiveFrom>\n  <NonDisclosure>true</NonDisclosure>\n  <Withdrawn/>\n"
            ),
        ),
        golden(
            "CopyTransferAck",
            "m-0013",
            Some("m-0011"),
            "  <RecordId>CP-0001</RecordId>\n  <Registered/>\n",
        ),
        golden(
            "CopyTransferAck",
            "m-0014",
            Some("m-0012"),
            "  <RecordId>CP-0002</RecordId>\n  <Fault>\n    <Code>E1001</Code>\n    \
             <Message>符号が未取得です。（団体内統合宛名番号：１２３４５６７８９０１２３４５）</Message>\n  </Fault>\n",
        ),
        golden("ProvisionLogRequest", "m-0015", None, "  <After>0</After>\n"),
        golden("AliveNotification", "m-0017", None, ""),
        golden("AliveAck", "m-0018", Some("m-0017"), ""),
        golden(
            "ProvisionLog",
            "m-0016",
            Some("m-0015"),
                "  <Entries>\n    <Entry>\n      <Seq>1</Seq>\n      <UnifiedAddressNumber>123456789012340</UnifiedAddressNumber>\n      <ItemCode>TM00000000000002</ItemCode>\n      \
                 <ProcedureCode>JT01010000000214</ProcedureCode>\n      <Inquirer>9900000000000001</Inquirer>\n      \
                 <ProvidedAt>2026-11-26T21:00:00.123+09:00</ProvidedAt>\n      <ItemStatus>01</ItemStatus>\n      \
                 <Version>2</Version>\n    </Entry>\n  </Entries>\n"
        ),
        golden("ProvisionLog", "m-0017", Some("m-0015"), "  <Entries/>\n"),
        golden("ManualRequestFetch", "m-0019", None, ""),
        golden(
            "ManualRequestList",
            "m-0020",
            Some("m-0019"),
            "  <Requests>\n    <Request>\n      <RequestId>PQ-0001</RequestId>\n      \
                 <UnifiedAddressNumber>123456789012340</UnifiedAddressNumber>\n      \
                 <ProcedureCode>JT01010000000215</ProcedureCode>\n      <ItemCode>TM00000000000002</ItemCode>\n      \
                 <AsOf>2026-06-01</AsOf>\n      <Inquirer>9900000000000001</Inquirer>\n      \
                 <Deadline>2026-11-29T21:00:00+09:00</Deadline>\n    </Request>\n  </Requests>\n",
        ),
        golden("ManualRequestList", "m-0021", Some("m-0019"), "  <Requests/>\n"),
        golden(
            "ManualAnswer",
            "PQ-0001",
            None,
            &format!("  <RequestId>PQ-0001</RequestId>\n{SEALED}"),
        ),
        golden(
            "ManualAnswer",
            "PQ-0002",
            None,
            "  <RequestId>PQ-0002</RequestId>\n  <NotHeld/>\n",
        ),
        golden(
            "ManualAnswer",
            "PQ-0003",
            None,
            "  <RequestId>PQ-0003</RequestId>\n  <Refused>\n    \
             <ReasonCode>not-permitted-by-ordinance</ReasonCode>\n  </Refused>\n",
        ),
        golden(
            "ManualAnswerAck",
            "m-0022",
            Some("PQ-0001"),
            "  <RequestId>PQ-0001</RequestId>\n  <Accepted/>\n",
        ),
        golden(
            "ManualAnswerAck",
            "m-0023",
            Some("PQ-0003"),
            "  <RequestId>PQ-0003</RequestId>\n  <Fault>\n    <Code>E1008</Code>\n    \
             <Message>回答期限を過ぎています。</Message>\n  </Fault>\n",
        ),
        golden(
            "Fault",
            "m-0010",
            Some("m-0003"),
            "  <Code>E9999</Code>\n  <Message>照会は許可されていません。</Message>\n",
        ),
    ]
}

#[test]
fn unified_fixture_is_the_number_the_goldens_show() {
    assert_eq!(unified().to_string(), "123456789012340");
}

#[test]
fn every_message_type_matches_its_golden_string() {
    let samples = samples();
    let goldens = expected_goldens();
    assert_eq!(samples.len(), goldens.len());
    for (m, g) in samples.iter().zip(&goldens) {
        assert_eq!(to_xml(m), *g, "golden mismatch for {}", m.type_name());
    }
    // Every root is covered.
    for name in Message::TYPE_NAMES {
        assert!(
            samples.iter().any(|m| m.type_name() == name),
            "{name} has no sample"
        );
    }
}

#[test]
fn every_message_round_trips_and_validates() {
    for m in samples() {
        m.validate()
            .unwrap_or_else(|e| panic!("{}: {e}", m.type_name()));
        let xml = to_xml(&m);
        let back = from_xml(xml.as_bytes()).unwrap_or_else(|e| panic!("{}: {e}", m.type_name()));
        assert_eq!(back, m);
        assert_eq!(back.header(), m.header());
        assert_eq!(to_xml(&back), xml, "writing is deterministic");
    }
}

#[test]
fn payloads_match_goldens_and_round_trip() {
    let id = identity();
    let xml = id.to_xml();
    let expected = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<IdentityPayload xmlns=\"urn:renkei:platform:payload:v1\">\n  \
        <IndividualNumber>123456789018</IndividualNumber>\n</IdentityPayload>\n";
    // Never print the payload: it holds an individual number.
    assert!(xml.as_str() == expected, "identity payload golden mismatch");
    assert!(IdentityPayload::from_xml(xml.as_bytes()).unwrap() == id);

    let t = target();
    assert_eq!(
        t.to_xml(),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<TargetPayload xmlns=\"urn:renkei:platform:payload:v1\">\n  \
         <UnifiedAddressNumber>123456789012340</UnifiedAddressNumber>\n</TargetPayload>\n"
    );
    assert_eq!(TargetPayload::from_xml(t.to_xml().as_bytes()).unwrap(), t);

    let r = result_payload();
    r.validate().unwrap();
    assert_eq!(
        r.to_xml(),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ResultPayload xmlns=\"urn:renkei:platform:payload:v1\">\n  \
         <Item code=\"TM00000000000002\">\n    <Field name=\"市町村民税均等割額\">3500</Field>\n    \
         <Field name=\"市町村民税所得割額\">123000</Field>\n    <Field name=\"備考\"></Field>\n    \
         <Field name=\"注記 &quot;a&quot; &amp; &lt;b&gt;\">改行\nあり &amp; &lt;タグ&gt;</Field>\n  </Item>\n  \
         <Item code=\"TM00000000000089\"/>\n</ResultPayload>\n"
    );
    assert_eq!(ResultPayload::from_xml(r.to_xml().as_bytes()).unwrap(), r);
}

fn fault_doc(body: &str) -> String {
    golden("Fault", "m-1", None, body)
}

fn err(doc: &str) -> XmlError {
    from_xml(doc.as_bytes()).expect_err("document should be refused")
}

#[test]
fn refuses_dtd_and_billion_laughs() {
    let laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<Fault xmlns="urn:renkei:platform:v1"><Code>&lol9;</Code></Fault>"#;
    assert_eq!(err(laughs).code, "xml_dtd_forbidden");
    let external = r#"<?xml version="1.0"?><!DOCTYPE Fault SYSTEM "file:///etc/passwd"><Fault xmlns="urn:renkei:platform:v1"/>"#;
    assert_eq!(err(external).code, "xml_dtd_forbidden");
    // An entity reference without any declaration is refused too (no external resolution).
    let doc = fault_doc("  <Code>E1</Code>\n  <Message>&xxe;</Message>\n");
    let e = err(&doc);
    assert_eq!(e.code, "xml_entity_forbidden");
    assert_eq!(e.path, "Fault/Message");
}

#[test]
fn refuses_processing_instructions_but_accepts_predefined_entities_and_char_refs() {
    let doc = fault_doc("  <Code>E1</Code>\n  <?php evil ?>\n  <Message>x</Message>\n");
    assert_eq!(err(&doc).code, "xml_pi_forbidden");
    let styled = format!(
        "<?xml-stylesheet href=\"a\"?>{}",
        fault_doc("  <Code>E1</Code>\n  <Message>x</Message>\n")
    );
    assert_eq!(err(&styled).code, "xml_pi_forbidden");
    let doc = fault_doc("  <Code>E1</Code>\n  <Message>&lt;&#x7B26;&#21495;&amp;&apos;<![CDATA[<&>]]><!-- c --></Message>\n");
    let Message::Fault { fault, .. } = from_xml(doc.as_bytes()).unwrap() else {
        panic!("not a fault")
    };
    assert_eq!(fault.message, "<符号&'<&>");
    // A character reference to a character XML forbids.
    let doc = fault_doc("  <Code>E1</Code>\n  <Message>&#1;</Message>\n");
    assert_eq!(err(&doc).code, "xml_malformed");
}

#[test]
fn line_ends_are_normalised_like_a_conforming_parser() {
    let doc = fault_doc("  <Code>E1</Code>\n  <Message>a\r\nb\rc&#13;d</Message>\n");
    let Message::Fault { fault, .. } = from_xml(doc.as_bytes()).unwrap() else {
        panic!("not a fault")
    };
    assert_eq!(fault.message, "a\nb\nc\rd");
}

#[test]
fn enforces_size_and_depth_limits() {
    let big = format!(
        "{}<!--{}-->",
        fault_doc("  <Code>E1</Code>\n  <Message>x</Message>\n"),
        "a".repeat(MAX_MESSAGE_BYTES)
    );
    let e = err(&big);
    assert_eq!(e.code, "xml_too_large");
    // Exactly at the limit is still read (and here fails only on content).
    let mut at = fault_doc("  <Code>E1</Code>\n  <Message>x</Message>\n");
    let pad = MAX_MESSAGE_BYTES - at.len() - "<!---->".len();
    at.push_str(&format!("<!--{}-->", "a".repeat(pad)));
    assert_eq!(at.len(), MAX_MESSAGE_BYTES);
    assert!(from_xml(at.as_bytes()).is_ok());

    let deep = |n: usize| {
        let mut s = String::from("<Fault xmlns=\"urn:renkei:platform:v1\">");
        for _ in 1..n {
            s.push_str("<Header>");
        }
        for _ in 1..n {
            s.push_str("</Header>");
        }
        s.push_str("</Fault>");
        s
    };
    let e = err(&deep(MAX_DEPTH + 1));
    assert_eq!(e.code, "xml_too_deep");
    assert_eq!(e.path.matches('/').count(), MAX_DEPTH);
    // At the limit the depth is fine and the structure is what gets refused.
    assert_ne!(err(&deep(MAX_DEPTH)).code, "xml_too_deep");
    let e = err(&"<a>".repeat(100_000));
    assert_eq!(e.code, "xml_wrong_namespace");
}

#[test]
fn refuses_wrong_namespace_and_prefixes() {
    let ok = fault_doc("  <Code>E1</Code>\n  <Message>x</Message>\n");
    assert_eq!(
        err(&ok.replace("urn:renkei:platform:v1", "urn:other")).code,
        "xml_wrong_namespace"
    );
    assert_eq!(
        err(&ok.replace(" xmlns=\"urn:renkei:platform:v1\"", "")).code,
        "xml_wrong_namespace"
    );
    let prefixed = "<p:Fault xmlns:p=\"urn:renkei:platform:v1\"></p:Fault>";
    assert_eq!(err(prefixed).code, "xml_wrong_namespace");
    let e = err(&ok.replace("<Code>", "<Code xmlns=\"urn:other\">"));
    assert_eq!(
        (e.code, e.path.as_str()),
        ("xml_wrong_namespace", "Fault/Code")
    );
    // A message document is not a payload and vice versa.
    assert_eq!(
        TargetPayload::from_xml(ok.as_bytes()).unwrap_err().code,
        "xml_wrong_namespace"
    );
    assert_eq!(
        from_xml(target().to_xml().as_bytes()).unwrap_err().code,
        "xml_wrong_namespace"
    );
}

#[test]
fn refuses_unknown_missing_and_misplaced_elements_with_paths() {
    let cases: [(String, &str, &str); 8] = [
        (
            fault_doc("  <Code>E1</Code>\n  <Message>x</Message>\n  <Extra/>\n"),
            "xml_unknown_element",
            "Fault/Extra",
        ),
        (
            fault_doc("  <Code>E1</Code>\n"),
            "xml_missing_element",
            "Fault/Message",
        ),
        (
            fault_doc("  <Message>x</Message>\n  <Code>E1</Code>\n"),
            "xml_missing_element",
            "Fault/Code",
        ),
        (
            fault_doc("  <Code a=\"1\">E1</Code>\n  <Message>x</Message>\n"),
            "xml_unknown_attribute",
            "Fault/Code/@a",
        ),
        (
            fault_doc("  <Code><B/></Code>\n  <Message>x</Message>\n"),
            "xml_unknown_element",
            "Fault/Code/B",
        ),
        (
            fault_doc("  text<Code>E1</Code>\n  <Message>x</Message>\n"),
            "xml_unexpected_text",
            "Fault",
        ),
        (
            fault_doc("  <Code>E-1</Code>\n  <Message>x</Message>\n"),
            "xml_invalid_value",
            "Fault/Code",
        ),
        (
            fault_doc("  <Code>E1</Code>\n  <Message></Message>\n"),
            "xml_invalid_value",
            "Fault/Message",
        ),
    ];
    for (doc, code, path) in cases {
        let e = err(&doc);
        assert_eq!((e.code, e.path.as_str()), (code, path), "{e}");
    }
    // Text in element-only content, even where no child follows.
    let master = to_xml(&samples()[13]);
    let e = err(&master.replacen("<Agencies/>", "<Agencies>x</Agencies>", 1));
    assert_eq!(
        (e.code, e.path.as_str()),
        ("xml_unexpected_text", "MasterInfo/Agencies")
    );
    let e = err(&fault_doc(
        "  <Code>E1</Code>\n  <Message>x</Message>\n  y\n",
    ));
    assert_eq!((e.code, e.path.as_str()), ("xml_unexpected_text", "Fault"));
    let mut spaced = result_payload().to_xml();
    spaced = spaced.replacen(
        "<Item code=\"TM00000000000089\"/>",
        "<Item code=\"TM00000000000089\">\n  </Item>",
        1,
    );
    assert_eq!(
        ResultPayload::from_xml(spaced.as_bytes()),
        Ok(result_payload())
    );
    let e = ResultPayload::from_xml(spaced.replacen("\n  </Item>", "z</Item>", 1).as_bytes())
        .unwrap_err();
    assert_eq!(
        (e.code, e.path.as_str()),
        ("xml_unexpected_text", "ResultPayload/Item")
    );
    let e = err("<?xml version=\"1.0\"?><Nope xmlns=\"urn:renkei:platform:v1\"/>");
    assert_eq!((e.code, e.path.as_str()), ("xml_unknown_element", "Nope"));
}

#[test]
fn validates_every_value_through_the_id_types() {
    let base = to_xml(&inquiry(Condition::FiscalYear(2026), true));
    let cases = [
        (
            "<ItemCode>TM00000000000002<",
            "<ItemCode>JT00000000000002<",
            "InquiryRequest/ItemCode",
        ),
        (
            "<AffairCode>JM",
            "<AffairCode>JX",
            "InquiryRequest/AffairCode",
        ),
        (
            "<ProcedureCode>JT0101",
            "<ProcedureCode>JT0x01",
            "InquiryRequest/ProcedureCode",
        ),
        (
            "<Inquirer>0112",
            "<Inquirer>a112",
            "InquiryRequest/Inquirer",
        ),
        ("<Provider>0113", "<Provider>113", "InquiryRequest/Provider"),
        (
            "<NonDisclosure>false",
            "<NonDisclosure>0",
            "InquiryRequest/NonDisclosure",
        ),
        (
            "<FiscalYear>2026",
            "<FiscalYear>202",
            "InquiryRequest/Condition/FiscalYear",
        ),
        (
            "<MessageId>m-0003",
            "<MessageId>m_0003",
            "InquiryRequest/Header/MessageId",
        ),
        (
            "+09:00</CreatedAt>",
            "</CreatedAt>",
            "InquiryRequest/Header/CreatedAt",
        ),
        (
            "keyVersion=\"3\"",
            "keyVersion=\"03\"",
            "InquiryRequest/SealedData/@keyVersion",
        ),
        ("enc=\"AAEC", "enc=\"*AEC", "InquiryRequest/SealedData/@enc"),
        (">Y2lw", ">Y2l", "InquiryRequest/SealedData"),
        (" enc=\"", " x=\"1\" enc=\"", "InquiryRequest/SealedData/@x"),
    ];
    for (from, to, path) in cases {
        assert!(base.contains(from), "{from}");
        let e = err(&base.replacen(from, to, 1));
        assert_eq!(e.path, path, "{e}");
        assert!(e.code.starts_with("xml_"), "{e}");
    }
    let e = err(&base.replacen(" enc=\"", " enc2=\"", 1));
    assert_eq!(e.code, "xml_unknown_attribute");
    let period = to_xml(&inquiry(
        Condition::Period {
            from: "2026-04-01".into(),
            to: "2027-03-31".into(),
        },
        false,
    ));
    let e = err(&period.replace("2027-03-31", "2026-03-31"));
    assert_eq!(e.path, "InquiryRequest/Condition/Period/To");
    let e = err(&period.replace("2027-03-31", "2027-02-29"));
    assert_eq!(
        (e.code, e.path.as_str()),
        ("xml_invalid_value", "InquiryRequest/Condition/Period/To")
    );
    let unified_doc = to_xml(&samples()[0]);
    let e = err(&unified_doc.replace("123456789012340", "123456789012341"));
    assert_eq!(e.path, "CodeAcquisitionRequest/UnifiedAddressNumber");
    assert!(e.message.contains("check digit"), "{e}");
}

#[test]
fn identity_payload_errors_never_show_the_number() {
    let good = identity().to_xml();
    for (bad, why) in [
        ("123456789017", "check digit"),
        ("12345678901", "12 digits"),
        ("12345678901８", "12 digits"),
    ] {
        let doc = good.replace("123456789018", bad);
        let e = IdentityPayload::from_xml(doc.as_bytes()).unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("12345678901"), "error shows digits");
        assert_eq!(e.path, "IdentityPayload/IndividualNumber");
        assert!(shown.contains(why), "{why}");
    }
    // Not even where a sender put the digits into markup.
    for doc in [
        good.replace("IndividualNumber>", "a123456789018>"),
        good.replace(
            "<IndividualNumber>",
            "<IndividualNumber x123456789018=\"1\">",
        ),
        good.replace("<IndividualNumber>", "<Extra/><IndividualNumber>"),
        good.replace("<IndividualNumber>", "<123456789018/><IndividualNumber>"),
    ] {
        let e = IdentityPayload::from_xml(doc.as_bytes()).unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("1234"), "error shows digits");
    }
    // Escaped digits are still read and still never shown.
    let escaped = good.replace("123456789018", "&#49;23456789018");
    assert!(IdentityPayload::from_xml(escaped.as_bytes()).unwrap() == identity());
    let shown = format!("{:?}", identity());
    assert!(!shown.contains("123456789018"));
}

#[test]
fn validate_catches_what_from_xml_would_refuse() {
    let Message::InquiryRequest { .. } = inquiry(Condition::FiscalYear(2026), true) else {
        unreachable!()
    };
    let mut m = inquiry(Condition::FiscalYear(999), true);
    assert_eq!(
        m.validate().unwrap_err().path,
        "InquiryRequest/Condition/FiscalYear"
    );
    assert!(from_xml(to_xml(&m).as_bytes()).is_err());
    if let Message::InquiryRequest {
        header, condition, ..
    } = &mut m
    {
        *condition = Condition::FiscalYear(2026);
        header.created_at = "2026-11-26 21:00".into();
    }
    assert_eq!(
        m.validate().unwrap_err().path,
        "InquiryRequest/Header/CreatedAt"
    );
    let bad_fault = Message::Fault {
        header: header("m", None),
        fault: PlatformFault {
            code: "E1".into(),
            message: "bell\u{7}".into(),
        },
    };
    assert_eq!(bad_fault.validate().unwrap_err().path, "Fault/Message");
    let mut r = result_payload();
    r.items[0].fields[0].0.clear();
    assert_eq!(
        r.validate().unwrap_err().path,
        "ResultPayload/Item/Field/@name"
    );
}

#[test]
fn xml_declaration_is_checked_strictly() {
    let body = fault_doc("  <Code>E1</Code>\n  <Message>x</Message>\n");
    let body = body.split_once('\n').unwrap().1;
    for ok in [
        "<?xml version=\"1.0\"?>",
        "<?xml version='1.0' encoding='utf-8' standalone='yes'?>",
        "<?xml version=\"1.0\" standalone=\"no\" ?>",
        "",
    ] {
        assert!(from_xml(format!("{ok}\n{body}").as_bytes()).is_ok(), "{ok}");
    }
    for bad in [
        "<?xml version=\"1.1\"?>",
        "<?xml encoding=\"UTF-8\" version=\"1.0\"?>",
        "<?xml version=\"1.0\" foo=\"x\"?>",
        "<?xml version=\"1.0\"encoding=\"UTF-8\"?>",
        "<?xml version=\"1.0\" encoding=\"EUC-JP\"?>",
        "<?xml version=\"1.0\" standalone=\"maybe\"?>",
        "<?xml version=\"1.0\" standalone=\"yes\" encoding=\"UTF-8\"?>",
        "<?xml?>",
        " <?xml version=\"1.0\"?>",
    ] {
        assert_eq!(
            err(&format!("{bad}\n{body}")).code,
            "xml_malformed",
            "{bad}"
        );
    }
}

#[test]
fn other_malformed_documents_are_refused() {
    let ok = fault_doc("  <Code>E1</Code>\n  <Message>x</Message>\n");
    let cases = [
        ok.replacen("</Message>", "</Messag>", 1),
        ok.replacen(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
            "<?xml version=\"1.0\" encoding=\"Shift_JIS\"?>",
            1,
        ),
        format!("{ok}<Fault xmlns=\"urn:renkei:platform:v1\"/>"),
        format!("{ok}trailing"),
        ok[..ok.len() - 10].to_string(),
        String::new(),
        "   ".into(),
        ok.replacen("<Code>E1</Code>", "<Code a=\"1\" a=\"2\">E1</Code>", 1),
        ok.replacen("<Code>E1</Code>", "<Code a=\"<\">E1</Code>", 1),
        ok.replacen("x</Message>", "x & y</Message>", 1),
        ok.replacen("x</Message>", "\u{1}</Message>", 1),
    ];
    for doc in &cases {
        let e = err(doc);
        assert!(e.code.starts_with("xml_"), "{e}");
    }
    assert_eq!(from_xml(b"<a \xff/>").unwrap_err().code, "xml_malformed");
    // A UTF-8 byte-order mark is tolerated.
    let bom = [&b"\xEF\xBB\xBF"[..], ok.as_bytes()].concat();
    assert!(from_xml(&bom).is_ok());
}

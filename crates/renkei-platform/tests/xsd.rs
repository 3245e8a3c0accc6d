//! Every document the writer produces validates against the XSDs, checked by xmllint (an
//! outside validator, so a mistake shared by writer and reader is still caught); and the
//! schemas are strict enough to refuse documents the reader refuses.

mod common;

use common::*;
use renkei_platform::*;

#[test]
fn every_written_message_validates_against_messages_xsd() {
    let docs: Vec<(String, Vec<u8>)> = samples()
        .iter()
        .enumerate()
        .map(|(i, m)| (format!("{i:02}-{}", m.type_name()), to_xml(m).into_bytes()))
        .collect();
    xmllint_validate("messages.xsd", &docs, true);
}

#[test]
fn every_written_payload_validates_against_payloads_xsd() {
    let empty = ResultPayload { items: vec![] };
    let docs = vec![
        (
            "identity".to_string(),
            identity().to_xml().as_bytes().to_vec(),
        ),
        ("target".to_string(), target().to_xml().into_bytes()),
        ("result".to_string(), result_payload().to_xml().into_bytes()),
        ("result-empty".to_string(), empty.to_xml().into_bytes()),
    ];
    xmllint_validate("payloads.xsd", &docs, false);
}

/// The schema refuses what the reader refuses: run xmllint on documents that must fail and
/// check that each one does.
#[test]
fn schema_refuses_bad_values() {
    let base = to_xml(&inquiry(Condition::FiscalYear(2026), true));
    let bad = [
        ("<ItemCode>TM00000000000002<", "<ItemCode>TM0000000000002<"),
        ("<AffairCode>JM", "<AffairCode>JT"),
        ("<Inquirer>0112", "<Inquirer>a112"),
        ("+09:00</CreatedAt>", "</CreatedAt>"),
        ("<FiscalYear>2026", "<FiscalYear>0202"),
        ("keyVersion=\"3\"", "keyVersion=\"0\""),
        ("<NonDisclosure>false", "<NonDisclosure>0"),
        ("<Provider>", "<Unknown/><Provider>"),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, (from, to)) in bad.iter().enumerate() {
        assert!(base.contains(from), "{from}");
        let p = dir.path().join(format!("bad{i}.xml"));
        std::fs::write(&p, base.replacen(from, to, 1)).unwrap();
        let out = std::process::Command::new("xmllint")
            .args(["--noout", "--nonet", "--schema"])
            .arg(schema("messages.xsd"))
            .arg(&p)
            .output()
            .expect("xmllint is required: apt-get install -y libxml2-utils");
        assert!(
            !out.status.success(),
            "schema accepted bad document {i}: {to}"
        );
        assert!(
            from_xml(base.replacen(from, to, 1).as_bytes()).is_err(),
            "reader accepted {to}"
        );
    }
}

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

/// Mutates documents at random and keeps those `accept` still accepts (and that changed).
fn accepted_mutants(
    docs: &[Vec<u8>],
    rounds: usize,
    accept: impl Fn(&[u8]) -> bool,
) -> Vec<(String, Vec<u8>)> {
    // xorshift64*: deterministic, so a failure reproduces.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let tokens: [&[u8]; 24] = [
        b"0",
        b"9",
        b"A",
        b"-",
        b" ",
        b"",
        b"&amp;",
        "符".as_bytes(),
        b"Z",
        b"+",
        b".",
        b"x",
        b"<",
        b">",
        b"\"",
        b"'",
        b"\r\n",
        b"\t",
        b"<X/>",
        b"</Header>",
        b"&#x41;",
        b"<!-- c -->",
        b"<![CDATA[x]]>",
        b"=",
    ];
    let mut out = Vec::new();
    for i in 0..rounds {
        let mut doc = docs[(next() % docs.len() as u64) as usize].clone();
        for _ in 0..1 + next() % 2 {
            let at = (next() % doc.len() as u64) as usize;
            let end = (at + (next() % 4) as usize).min(doc.len());
            let rep = tokens[(next() % tokens.len() as u64) as usize];
            doc.splice(at..end, rep.iter().copied());
        }
        if !docs.contains(&doc) && accept(&doc) {
            out.push((format!("mutant{i:05}"), doc));
        }
    }
    out
}

/// Differential check, reader ⊆ schema: many randomly mutated documents; every one the reader
/// still accepts must also validate against the XSD (one xmllint run for all of them).
#[test]
fn whatever_the_reader_accepts_the_schema_accepts() {
    let docs: Vec<Vec<u8>> = samples().iter().map(|m| to_xml(m).into_bytes()).collect();
    let accepted = accepted_mutants(&docs, 20_000, |d| from_xml(d).is_ok());
    assert!(
        accepted.len() > 500,
        "too few accepted mutants ({}) to mean anything",
        accepted.len()
    );
    xmllint_validate("messages.xsd", &accepted, true);
    eprintln!(
        "{} accepted message mutants validated by xmllint",
        accepted.len()
    );

    let docs = vec![
        target().to_xml().into_bytes(),
        result_payload().to_xml().into_bytes(),
    ];
    let accepted = accepted_mutants(&docs, 5_000, |d| {
        TargetPayload::from_xml(d).is_ok() || ResultPayload::from_xml(d).is_ok()
    });
    assert!(
        accepted.len() > 100,
        "too few accepted payload mutants ({})",
        accepted.len()
    );
    xmllint_validate("payloads.xsd", &accepted, true);
    eprintln!(
        "{} accepted payload mutants validated by xmllint",
        accepted.len()
    );
}

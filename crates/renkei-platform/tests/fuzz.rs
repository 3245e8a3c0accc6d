//! Property tests: the parsers never panic on arbitrary or mutated input, and any valid
//! message with arbitrary text round-trips exactly.

mod common;

use common::*;
use proptest::prelude::*;
use renkei_platform::*;

fn parse_all(bytes: &[u8]) {
    let _ = from_xml(bytes);
    let _ = IdentityPayload::from_xml(bytes);
    let _ = TargetPayload::from_xml(bytes);
    let _ = ResultPayload::from_xml(bytes);
}

fn valid_docs() -> Vec<Vec<u8>> {
    let mut docs: Vec<Vec<u8>> = samples().iter().map(|m| to_xml(m).into_bytes()).collect();
    docs.push(target().to_xml().into_bytes());
    docs.push(result_payload().to_xml().into_bytes());
    docs.push(identity().to_xml().as_bytes().to_vec());
    docs
}

#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let markup = prop::sample::select(vec![
        b"<".to_vec(),
        b">".to_vec(),
        b"&".to_vec(),
        b"&amp;".to_vec(),
        b"&#0;".to_vec(),
        b"<!DOCTYPE a>".to_vec(),
        b"<?pi?>".to_vec(),
        b"<![CDATA[x]]>".to_vec(),
        b"<!--".to_vec(),
        b"</Header>".to_vec(),
        b"<Header>".to_vec(),
        b"xmlns=\"urn:x\"".to_vec(),
        b"\"".to_vec(),
        "符".as_bytes().to_vec(),
        vec![0xE7],
    ]);
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), markup).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1usize..40).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<usize>(), 1usize..200).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
    ]
}

fn apply(doc: &mut Vec<u8>, m: &Mutation) {
    if doc.is_empty() {
        return;
    }
    match m {
        Mutation::Set(i, b) => {
            let i = i % doc.len();
            doc[i] = *b;
        }
        Mutation::Insert(i, bytes) => {
            let i = i % (doc.len() + 1);
            doc.splice(i..i, bytes.iter().copied());
        }
        Mutation::Delete(i, n) => {
            let i = i % doc.len();
            let end = (i + n).min(doc.len());
            doc.drain(i..end);
        }
        Mutation::Duplicate(i, n) => {
            let i = i % doc.len();
            let end = (i + n).min(doc.len());
            let piece = doc[i..end].to_vec();
            doc.splice(end..end, piece);
        }
    }
}

/// Text the XML model can carry: any char but C0 controls other than TAB/LF/CR, and not
/// U+FFFE/U+FFFF; biased towards markup characters and Japanese.
fn xml_text(min: usize, max: usize) -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        prop::sample::select(vec![
            '&', '<', '>', '"', '\'', '\r', '\n', '\t', ' ', ';', '#', '１', '符', '号', 'ー',
            '〜', '𠀋'
        ]),
        any::<char>().prop_filter("XML Char", |c| {
            let c = *c as u32;
            (c >= 0x20 || c == 9 || c == 10 || c == 13) && c != 0xFFFE && c != 0xFFFF
        }),
    ];
    prop::collection::vec(ch, min..=max).prop_map(|v| v.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        parse_all(&bytes);
    }

    #[test]
    fn arbitrary_markup_soup_never_panics(parts in prop::collection::vec(prop::sample::select(vec![
        "<", ">", "</", "/>", "<Fault xmlns=\"urn:renkei:platform:v1\">", "</Fault>", "<Header>", "</Header>",
        "<Code>", "</Code>", "&", "&lt;", "&#x1F600;", "<!--", "-->", "<![CDATA[", "]]>", "<?xml version=\"1.0\"?>",
        "<!DOCTYPE", "\"", "=", " a", "E1", "符号", "\r\n",
    ]), 0..64)) {
        parse_all(parts.concat().as_bytes());
    }

    #[test]
    fn mutated_valid_documents_never_panic(
        which in any::<prop::sample::Index>(),
        muts in prop::collection::vec(mutation(), 1..6),
    ) {
        let docs = valid_docs();
        let mut doc = docs[which.index(docs.len())].clone();
        for m in &muts {
            apply(&mut doc, m);
        }
        parse_all(&doc);
        // If a mutated message still parses, it must write and re-read to itself.
        if let Ok(m) = from_xml(&doc) {
            let again = from_xml(to_xml(&m).as_bytes());
            prop_assert_eq!(again.as_ref(), Ok(&m));
        }
    }

    #[test]
    fn arbitrary_text_round_trips(
        message in xml_text(1, 60),
        name in xml_text(1, 30),
        value in xml_text(0, 80),
        code in "[A-Za-z0-9]{1,16}",
    ) {
        let m = Message::Fault {
            header: header("m-1", Some("m-0")),
            fault: PlatformFault { code, message },
        };
        prop_assert!(m.validate().is_ok());
        prop_assert_eq!(from_xml(to_xml(&m).as_bytes()), Ok(m));

        let mut r = result_payload();
        r.items[0].fields.push((name, value));
        prop_assert!(r.validate().is_ok());
        prop_assert_eq!(ResultPayload::from_xml(r.to_xml().as_bytes()), Ok(r));
    }
}

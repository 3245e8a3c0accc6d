//! Property tests: write-then-read round trips, and readers never panic on arbitrary bytes.

use proptest::prelude::*;
use renkei_convert::{Layout, LayoutReader, LayoutWriter, Record};
use time::macros::date;

const AS_OF: time::Date = date!(2026 - 04 - 01);

/// Kanji/kana/ASCII text that Shift_JIS (JIS X 0208) can encode, without edge spaces.
fn sjis_text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just('山'),
            Just('田'),
            Just('札'),
            Just('幌'),
            Just('ア'),
            Just('ー'),
            Just('あ'),
            Just('A'),
            Just('1'),
            Just(','),
            Just('"'),
            Just('・'),
            Just('　'),
            Just(' ')
        ],
        0..max,
    )
    .prop_map(|v| {
        v.into_iter()
            .collect::<String>()
            .trim_matches([' ', '\u{3000}'])
            .to_owned()
    })
}

fn kana(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just('ヤ'),
            Just('マ'),
            Just('ダ'),
            Just('パ'),
            Just('ヴ'),
            Just('ー')
        ],
        1..max,
    )
    .prop_map(|v| v.into_iter().collect())
}

fn alnum(min: usize, max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[A-Z0-9]{{{min},{max}}}")).unwrap()
}

fn birth() -> impl Strategy<Value = String> {
    (1870i32..2026, 0u8..13, 0u8..29).prop_map(|(y, m, d)| match (m, d) {
        (0, _) => format!("{y:04}"),
        (m, 0) => format!("{y:04}-{m:02}"),
        (m, d) => format!("{y:04}-{m:02}-{d:02}"),
    })
}

fn resident(layout: &Layout) -> impl Strategy<Value = Record> + '_ {
    (
        prop_oneof![Just("register"), Just("move-out"), Just("death")],
        alnum(1, 15),
        sjis_text(20),
        kana(20),
        birth(),
        prop_oneof![Just("1"), Just("2"), Just("0")],
        sjis_text(40),
    )
        .prop_map(move |(kind, bn, name, kana, birth, sex, addr)| {
            let mut r = Record::new(layout);
            r.set("change_kind", kind);
            r.set("business_number", bn);
            r.set(
                "name",
                if name.is_empty() {
                    "山".to_owned()
                } else {
                    name
                },
            );
            r.set("kana", kana);
            r.set("birth_date", birth);
            r.set("sex", sex);
            r.set("address", addr);
            r.set("change_date", "2026-04-01");
            r
        })
}

fn round_trip(layout: &Layout, recs: &[Record]) -> Vec<Record> {
    let mut w = LayoutWriter::with_as_of(layout, Vec::new(), AS_OF);
    for r in recs {
        w.write(r).unwrap_or_else(|e| panic!("write failed: {e}"));
    }
    let bytes = w.into_inner();
    LayoutReader::with_as_of(layout, bytes.as_slice(), AS_OF)
        .map(|r| r.unwrap_or_else(|e| panic!("read failed: {e}")))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn resident_fixed_round_trips(recs in proptest::collection::vec(resident(Box::leak(Box::new(Layout::builtin("resident-fixed").unwrap()))), 1..5)) {
        let layout = Layout::builtin("resident-fixed").unwrap();
        // Re-home records on this layout instance (same names).
        let recs: Vec<Record> = recs.iter().map(|r| { let mut n = Record::new(&layout); for (k, v) in r.iter() { n.set(k, v); } n }).collect();
        prop_assert_eq!(round_trip(&layout, &recs), recs);
    }

    #[test]
    fn resident_csv_round_trips(recs in proptest::collection::vec(resident(Box::leak(Box::new(Layout::builtin("resident-csv").unwrap()))), 1..5)) {
        let layout = Layout::builtin("resident-csv").unwrap();
        let recs: Vec<Record> = recs.iter().map(|r| { let mut n = Record::new(&layout); for (k, v) in r.iter() { n.set(k, v); } n }).collect();
        prop_assert_eq!(round_trip(&layout, &recs), recs);
    }

    #[test]
    fn inquiry_batch_round_trips(bn in alnum(1, 15), dept in sjis_text(10), user in alnum(0, 20), nd in prop_oneof![Just("0"), Just("1")], from in prop_oneof![Just(""), Just("2026-04-01"), Just("2024-02-29")]) {
        let layout = Layout::builtin("inquiry-batch").unwrap();
        let mut r = Record::new(&layout);
        for (k, v) in [("numbering_system", "01"), ("requested_at", "20260401093000123"), ("inquirer_agency", "0112345600000001"),
            ("affair_code", "JM01000000121000"), ("procedure_code", "JT01010000000214"), ("item_code", "TM00000000000002"),
            ("condition_kind", "1"), ("fiscal_year_kind", "2")] {
            r.set(k, v);
        }
        r.set("business_number", bn);
        r.set("inquirer_department", dept);
        r.set("inquirer_user_id", user);
        r.set("non_disclosure", nd);
        r.set("from_date", from);
        let back = round_trip(&layout, std::slice::from_ref(&r));
        prop_assert_eq!(&back[0], &r);
        prop_assert!(renkei_convert::parse_batch_line(&back[0]).is_ok());
    }

    #[test]
    fn readers_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        for name in Layout::builtin_names() {
            let layout = Layout::builtin(name).unwrap();
            for rec in LayoutReader::with_as_of(&layout, bytes.as_slice(), AS_OF).flatten() {
                let _ = renkei_convert::parse_batch_line(&rec);
            }
        }
    }

    #[test]
    fn readers_never_panic_on_mutated_lines(pos in 0usize..237, byte in any::<u8>(), cut in 0usize..240) {
        let layout = Layout::builtin("inquiry-batch").unwrap();
        let mut line = b"01,1              ,               ,20260401093000123,".to_vec();
        line.resize(237, b' ');
        line[pos] = byte;
        line.truncate(cut.max(1));
        line.extend_from_slice(b"\r\n");
        let n = LayoutReader::with_as_of(&layout, line.as_slice(), AS_OF).count();
        prop_assert!(n >= 1);
    }

    #[test]
    fn era_format_parse_round_trips(y in 1868i32..2100, m in 1u8..13, d in 1u8..29) {
        let eras = renkei_convert::era::EraTable::builtin().unwrap();
        let pd = renkei_convert::era::PartialDate { year: y, month: Some(m), day: Some(d) };
        if pd.first_day().unwrap() >= eras.eras()[0].start {
            for style in [renkei_convert::era::WarekiStyle::Kanji, renkei_convert::era::WarekiStyle::Letter, renkei_convert::era::WarekiStyle::Digits] {
                let s = eras.format(&pd, style).unwrap();
                prop_assert_eq!(eras.parse(&s).unwrap(), pd);
            }
        }
    }

    #[test]
    fn era_parse_never_panics(prefix in prop_oneof![Just(""), Just("R"), Just("令和"), Just("5"), Just("S")], s in "[0-9０-９年月日元不詳.あ/-]{0,10}") {
        let eras = renkei_convert::era::EraTable::builtin().unwrap();
        let _ = eras.parse(&format!("{prefix}{s}"));
    }
}

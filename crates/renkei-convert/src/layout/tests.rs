//! Golden tests for the layout codecs (fixed-width Shift_JIS, CSV) and line error reporting.

use time::macros::date;

use super::*;
use crate::codes::CodeTables;
use crate::era::EraTable;
use crate::inquiry::{batch_line_record, parse_batch_line, result_line_record, InquiryResultLine};

const AS_OF: time::Date = date!(2026 - 04 - 01);

fn batch() -> Layout {
    Layout::builtin("inquiry-batch").unwrap()
}

/// A valid inquiry line (ASCII except the department), without CRLF.
fn batch_line(business: &str, dept_sjis: &[u8]) -> Vec<u8> {
    let mut l = Vec::new();
    let mut f = |v: &[u8], w: usize| {
        if !l.is_empty() {
            l.push(b',');
        }
        l.extend_from_slice(v);
        l.resize(l.len() + (w - v.len()), b' ');
    };
    f(b"01", 2);
    f(business.as_bytes(), 15);
    f(b"000000000000019", 15);
    f(b"20260401093000123", 17);
    f(dept_sjis, 20);
    f(b"user01", 20);
    f(b"0112345600000001", 16);
    f(b"0", 1);
    f(b"JM01000000121000", 16);
    f(b"JT01010000000214", 16);
    f(b"", 16);
    f(b"", 16);
    f(b"0113000000000001", 16);
    f(b"TM00000000000002", 16);
    f(b"1", 1);
    f(b"1", 1);
    f(b"20260401", 8);
    f(b"", 8);
    l
}

#[test]
fn an_individual_number_field_not_marked_secret_is_refused() {
    let text = include_str!("../../../../schemas/layouts/resident-csv.toml");
    assert!(text.contains("secret = true"));
    let codes = CodeTables::builtin().unwrap();
    let eras = EraTable::builtin().unwrap();
    assert!(Layout::from_toml(text, &codes, eras).is_ok());
    let open = text.replacen("secret = true", "secret = false", 1);
    let errs = Layout::from_toml(&open, &codes, eras).unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e.code == "not_secret" && e.message.contains("individual_number")),
        "{errs:?}"
    );
    let left_out = text.replacen("secret = true\n", "", 1);
    let errs = Layout::from_toml(&left_out, &codes, eras).unwrap_err();
    assert!(errs.iter().any(|e| e.code == "not_secret"), "{errs:?}");
}

#[test]
fn builtin_layouts_load() {
    for name in Layout::builtin_names() {
        let l = Layout::builtin(name).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(l.name, name);
    }
    assert_eq!(batch().line_len, 237);
    assert_eq!(batch().fields.len(), 18);
}

#[test]
fn fixed_width_golden_read_and_typed_view() {
    let l = batch();
    // 福祉 in Shift_JIS.
    let mut file = batch_line("12345", &[0x95, 0x9F, 0x8E, 0x83]);
    file.extend_from_slice(b"\r\n");
    let recs: Vec<_> = LayoutReader::with_as_of(&l, file.as_slice(), AS_OF).collect();
    assert_eq!(recs.len(), 1);
    let r = recs[0].as_ref().unwrap();
    assert_eq!(r.get("inquirer_department"), Some("福祉"));
    assert_eq!(r.get("from_date"), Some("2026-04-01"));
    assert_eq!(r.get("to_date"), Some(""));
    let t = parse_batch_line(r).unwrap();
    assert_eq!(t.business_number.as_str(), "12345");
    assert_eq!(t.unified.unwrap().to_string(), "000000000000019");
    assert_eq!(t.requested_at, "2026-04-01T09:30:00.123");
    assert_eq!(t.item.as_str(), "TM00000000000002");
    assert_eq!(t.procedure.as_str(), "JT01010000000214");
    assert_eq!(t.provider.as_ref().unwrap().as_str(), "0113000000000001");
    assert!(!t.non_disclosure);
    assert_eq!((t.condition_kind, t.fiscal_year_kind), ('1', '1'));
    assert_eq!(t.from.as_deref(), Some("2026-04-01"));
    assert_eq!(t.to, None);
    // Writing the typed line back gives the same bytes.
    let rec = batch_line_record(&l, &t);
    let mut w = LayoutWriter::with_as_of(&l, Vec::new(), AS_OF);
    let mut rec2 = rec.clone();
    rec2.set("inquirer_department", "福祉");
    rec2.set("inquirer_user_id", "user01");
    w.write(&rec2).unwrap();
    assert_eq!(w.into_inner(), file);
}

#[test]
fn bad_lines_among_good_ones_keep_their_line_numbers() {
    let l = batch();
    let good = batch_line("1", b"");
    let mut file = Vec::new();
    file.extend_from_slice(&good); // line 1
    file.extend_from_slice(b"\r\n");
    file.extend_from_slice(&good[..100]); // line 2: short
    file.extend_from_slice(b"\r\n");
    let mut bad_dept = batch_line("3", &[0x82, 0xA0, 0x81, 0x60]); // あ + WAVE DASH bytes
    bad_dept.extend_from_slice(b"\r\n");
    file.extend_from_slice(&bad_dept); // line 3
    let mut bad_date = batch_line("4", b"");
    let at = bad_date.len() - 17;
    bad_date[at..at + 8].copy_from_slice(b"20260230");
    file.extend_from_slice(&bad_date); // line 4
    file.extend_from_slice(b"\r\n");
    file.extend_from_slice(&good); // line 5, LF only
    file.extend_from_slice(b"\n");
    file.extend_from_slice(&batch_line("6", b"")); // line 6, no terminator at EOF
    let got: Vec<_> = LayoutReader::with_as_of(&l, file.as_slice(), AS_OF).collect();
    let summary: Vec<String> = got
        .iter()
        .map(|r| match r {
            Ok(r) => format!("ok {}", r.get("business_number").unwrap()),
            Err(e) => e.to_string(),
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            "ok 1".to_owned(),
            "line 2: line_length: expected 237 bytes, got 100".to_owned(),
            "line 3 field inquirer_department: divergent_char: ambiguous bytes 0x8160 at byte offset 2: U+301C (JIS) or U+FF5E (CP932); the layout must set `divergent`".to_owned(),
            "line 4 field from_date: no_such_date: no such date".to_owned(),
            "line 5: line_ending: expected CRLF line endings".to_owned(),
            "ok 6".to_owned(),
        ]
    );
}

#[test]
fn secret_fields_never_reach_messages_or_debug() {
    let l = Layout::builtin("resident-csv").unwrap();
    let file = "change_kind,business_number,individual_number,name,kana,birth_date,sex,address,change_date\n\
                01,100,１２３４５６７８９０１８,山田太郎,ﾔﾏﾀﾞﾀﾛｳ,昭和25年4月不詳,1,札幌市,20260401\n\
                01,101,12345678901X,山田花子,やまだはなこ,平成元年1月8日,2,札幌市,20260401\n";
    let got: Vec<_> = LayoutReader::with_as_of(&l, file.as_bytes(), AS_OF).collect();
    let r = got[0].as_ref().unwrap();
    assert_eq!(r.get("individual_number"), Some("123456789018"));
    assert_eq!(r.get("kana"), Some("ヤマダタロウ"));
    assert_eq!(r.get("birth_date"), Some("1950-04"));
    assert_eq!(r.get("change_kind"), Some("register"));
    let dbg = format!("{r:?}");
    assert!(dbg.contains("\"individual_number\": \"***\""), "{dbg}");
    assert!(!dbg.contains("123456789018"));
    let number = r.individual_number("individual_number").unwrap().unwrap();
    assert!(!format!("{number} {number:?}").contains("123456789018"));
    let e = got[1].as_ref().unwrap_err();
    assert_eq!(e.field.as_deref(), Some("individual_number"));
    assert_eq!(
        e.to_string(),
        "line 3 field individual_number: not_digits: not_digits (value withheld: secret field)"
    );
    assert!(!e.to_string().contains("12345678901"));
}

#[test]
fn csv_rfc4180_quotes_and_result_writer_golden() {
    let l = Layout::builtin("inquiry-result").unwrap();
    let line = InquiryResultLine {
        business_number: renkei_ids::BusinessNumber::parse("12345").unwrap(),
        provider: Some(renkei_ids::AgencyCode::parse("0113000000000001").unwrap()),
        status_detail: "09".into(),
        status_item: "01".into(),
        message: "正常終了,\"確認\"".into(),
        items: vec![
            ("municipal_tax_per_capita".into(), "3500".into()),
            ("municipal_tax_income_levy".into(), "120000".into()),
        ],
    };
    let mut rec = result_line_record(&l, &line).unwrap();
    rec.set("line", "1");
    let mut w = LayoutWriter::with_as_of(&l, Vec::new(), AS_OF);
    w.write(&rec).unwrap();
    let bytes = w.into_inner();
    let expected_text =
        "1,,12345,0113000000000001,09,01,\"正常終了,\"\"確認\"\"\",,3500,120000\r\n";
    let expected = crate::charset::encode(
        expected_text,
        crate::charset::Charset::Cp932,
        crate::charset::DivergentRule::Cp932,
    )
    .unwrap();
    assert_eq!(bytes, expected);
    let back: Vec<_> = LayoutReader::with_as_of(&l, bytes.as_slice(), AS_OF).collect();
    assert_eq!(back[0].as_ref().unwrap(), &rec);
    // A quoted field spanning two physical lines: the next record keeps its own line number.
    let text = "1,,,,09,01,\"a\r\nb\",,0,0\r\n2,,,,09,01,x,,y,0\r\n";
    let back: Vec<_> = LayoutReader::with_as_of(&l, text.as_bytes(), AS_OF).collect();
    assert_eq!(
        back[0].as_ref().unwrap().get("result_message"),
        Some("a\r\nb")
    );
    assert_eq!(back[1].as_ref().unwrap_err().to_string(), "line 3 field municipal_tax_per_capita: not_digits: expected digits; character U+0079 at index 0");
    let bad = "1,,,,09,01,a\"b,,0,0\r\n1,,09\r\n";
    let back: Vec<_> = LayoutReader::with_as_of(&l, bad.as_bytes(), AS_OF).collect();
    assert_eq!(back[0].as_ref().unwrap_err().code, "csv_syntax");
    assert_eq!(
        back[1].as_ref().unwrap_err().to_string(),
        "line 2: column_count: expected 10 columns, got 3"
    );
}

#[test]
fn resident_fixed_golden_round_trip() {
    let l = Layout::builtin("resident-fixed").unwrap();
    let mut r = Record::new(&l);
    r.set("change_kind", "address-change");
    r.set("business_number", "000123");
    r.set("name", "山田　太郎");
    r.set("kana", "ヤマダ　タロウ");
    r.set("birth_date", "1989-01-07");
    r.set("sex", "1");
    r.set("address", "札幌市中央区北１条西２丁目");
    r.set("change_date", "2026-04-01");
    let mut w = LayoutWriter::with_as_of(&l, Vec::new(), AS_OF);
    w.write(&r).unwrap();
    let bytes = w.into_inner();
    assert_eq!(bytes.len(), l.line_len + 2);
    assert_eq!(&bytes[..17], b"04000123         ");
    // 生年月日 at byte 2+15+12+40+40 = 109: 昭和64年1月7日 as era digit + YYMMDD.
    assert_eq!(&bytes[109..117], b"36401071");
    let back: Vec<_> = LayoutReader::with_as_of(&l, bytes.as_slice(), AS_OF).collect();
    assert_eq!(back[0].as_ref().unwrap(), &r);
}

#[test]
fn writer_reports_field_errors() {
    let l = batch();
    let mut r = Record::new(&l);
    r.set("numbering_system", "01");
    let mut w = LayoutWriter::with_as_of(&l, Vec::new(), AS_OF);
    let e = w.write(&r).unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 1 field business_number: required: required field is empty"
    );
    r.set("business_number", "1");
    r.set("requested_at", "20260401093000123");
    r.set("inquirer_agency", "0112345600000001");
    r.set("non_disclosure", "0");
    r.set("affair_code", "JM01000000121000");
    r.set("procedure_code", "JT01010000000214");
    r.set("item_code", "TM00000000000002");
    r.set("condition_kind", "1");
    r.set("fiscal_year_kind", "1");
    r.set("inquirer_department", "髙");
    let e = w.write(&r).unwrap_err();
    assert_eq!(e.to_string(), "line 1 field inquirer_department: unmappable_char: character U+9AD9 at index 0 cannot be encoded in Shift_JIS");
    r.set("inquirer_department", "福祉局福祉局福祉局福祉局");
    assert_eq!(w.write(&r).unwrap_err().code, "too_long");
    assert!(w.into_inner().is_empty());
}

#[test]
fn csv_header_must_match_and_long_lines_are_refused() {
    let l = Layout::builtin("resident-csv").unwrap();
    let file =
        "change_kind,business_number,個人番号,name,kana,birth_date,sex,address,change_date\n\
                01,100,,山田,ヤマダ,令和8年4月1日,1,,20260401\n";
    let got: Vec<_> = LayoutReader::with_as_of(&l, file.as_bytes(), AS_OF).collect();
    assert_eq!(
        got.len(),
        1,
        "a matching header (names or labels) yields no item"
    );
    let r = got[0].as_ref().unwrap();
    assert_eq!((r.line(), r.get("birth_date")), (2, Some("2026-04-01")));
    let bad = "change_kind,bn\n01,100,,山田,ヤマダ,令和8年4月1日,1,,20260401\n";
    let got: Vec<_> = LayoutReader::with_as_of(&l, bad.as_bytes(), AS_OF).collect();
    assert_eq!(
        got[0].as_ref().unwrap_err().to_string(),
        "line 1: header_mismatch: expected 9 columns, got 2"
    );
    assert!(got[1].is_ok());

    let b = batch();
    let mut file = vec![b'x'; reader::DEFAULT_MAX_LINE_BYTES + 10];
    file.extend_from_slice(b"\r\n");
    file.extend_from_slice(&batch_line("7", b""));
    file.extend_from_slice(b"\r\n");
    let got: Vec<_> = LayoutReader::with_as_of(&b, file.as_slice(), AS_OF).collect();
    assert_eq!(got[0].as_ref().unwrap_err().code, "line_too_long");
    let r = got[1].as_ref().unwrap();
    assert_eq!(r.line(), 2);
    let mut r = r.clone();
    r.set("item_code", "XX00000000000002");
    let e = parse_batch_line(&r).unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 2 field item_code: invalid_format: item_code: expected TM followed by 14 digits"
    );
}

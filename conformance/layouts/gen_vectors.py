#!/usr/bin/env python3
"""Writes the layout conformance vectors: one folder per case with `input.*` (raw bytes) and
`case.json` (layout, as_of date, expected records or errors per line).

Expected values are written here by hand from the rules (DOMAIN.md, eras.toml, the code
tables), not produced by renkei, so the Rust test (crates/renkei-convert/tests/conformance.rs)
can fail. Run from the repository root: python3 conformance/layouts/gen_vectors.py
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
RESIDENT_WIDTHS = [2, 15, 12, 40, 40, 7, 1, 80, 8]
RESIDENT_NAMES = ["change_kind", "business_number", "individual_number", "name", "kana",
                  "birth_date", "sex", "address", "change_date"]
BATCH_WIDTHS = [2, 15, 15, 17, 20, 20, 16, 1, 16, 16, 16, 16, 16, 16, 1, 1, 8, 8]


def fixed(values, widths, sep=b""):
    out = []
    for v, w in zip(values, widths):
        b = v if isinstance(v, bytes) else v.encode("cp932")
        assert len(b) <= w, (v, w)
        out.append(b + b" " * (w - len(b)))
    return sep.join(out)


def resident(kind="01", bn="100", indiv="", name="山田太郎", kana="ヤマダタロウ", birth="3250401",
             sex="1", addr="札幌市中央区", date="20260401"):
    return fixed([kind, bn, indiv, name, kana, birth, sex, addr, date], RESIDENT_WIDTHS)


def rec(kind="register", bn="100", indiv="", name="山田太郎", kana="ヤマダタロウ", birth="1950-04-01",
        sex="1", addr="札幌市中央区", date="2026-04-01"):
    return dict(zip(RESIDENT_NAMES, [kind, bn, indiv, name, kana, birth, sex, addr, date]))


def batch(dept=b"", bn="1"):
    return fixed(["01", bn, "", "20260401093000123", dept, "u1", "0112345600000001", "0",
                  "JM01000000121000", "JT01010000000214", "", "", "", "TM00000000000002", "1", "1",
                  "20260401", "20270331"], BATCH_WIDTHS, b",")


def write_case(name, layout, lines, expect, ending=b"\r\n", input_name="input.sjis", note=""):
    d = os.path.join(HERE, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, input_name), "wb") as f:
        f.write(b"".join(l + ending for l in lines))
    case = {"note": note, "layout": layout, "as_of": "2026-04-01", "input": input_name, "expect": expect}
    with open(os.path.join(d, "case.json"), "w", encoding="utf-8") as f:
        json.dump(case, f, ensure_ascii=False, indent=1)
        f.write("\n")


def ok(line, record):
    return {"line": line, "record": record}


def err(line, field, code):
    return {"line": line, "error": {"field": field, "code": code}}


write_case("era-boundaries-fixed", "resident-fixed", [
    resident(birth="3640107"), resident(birth="3640108"), resident(birth="4010108"),
    resident(birth="4010107"), resident(birth="4310430"), resident(birth="5010501"),
    resident(birth="5010430"), resident(birth="1010125"), resident(birth="6080401"),
], [
    ok(1, rec(birth="1989-01-07")), err(2, "birth_date", "after_era_end"),
    ok(3, rec(birth="1989-01-08")), err(4, "birth_date", "before_era_start"),
    ok(5, rec(birth="2019-04-30")), ok(6, rec(birth="2019-05-01")),
    err(7, "birth_date", "before_era_start"), ok(8, rec(birth="1868-01-25")),
    err(9, "birth_date", "unknown_era"),
], note="昭和64年1月7日 valid, 昭和64年1月8日 invalid, 平成元年1月8日 valid; era digit + YYMMDD")

CSV_HEADER = ",".join(RESIDENT_NAMES).encode()


def csv_line(birth, name="山田太郎", kana="ヤマダタロウ"):
    return ("01,100,,%s,%s,%s,1,札幌市中央区,20260401" % (name, kana, birth)).encode("utf-8")


write_case("era-and-unknown-csv", "resident-csv", [
    CSV_HEADER, csv_line("昭和64年1月7日"), csv_line("昭和64年1月8日"), csv_line("平成元年1月8日"),
    csv_line("昭和25年不詳"), csv_line("昭和25年4月不詳"), csv_line("令和元年5月1日"),
    csv_line("令和８年４月１日"), csv_line("令和5年2月29日"),
], [
    ok(2, rec(birth="1989-01-07")), err(3, "birth_date", "after_era_end"),
    ok(4, rec(birth="1989-01-08")), ok(5, rec(birth="1950")), ok(6, rec(birth="1950-04")),
    ok(7, rec(birth="2019-05-01")), ok(8, rec(birth="2026-04-01")),
    err(9, "birth_date", "no_such_date"),
], ending=b"\n", input_name="input.csv", note="UTF-8 CSV with header; kanji era dates, 元年, 不詳, full-width digits")

write_case("unknown-parts-fixed", "resident-fixed", [
    resident(birth="3250000"), resident(birth="3250400"), resident(birth="3250010"),
    resident(birth="3641200"),
], [
    ok(1, rec(birth="1950")), ok(2, rec(birth="1950-04")),
    err(3, "birth_date", "unknown_month_known_day"), err(4, "birth_date", "after_era_end"),
], note="不詳 written as 00: month and day, or day only; a known day in an unknown month is refused")

write_case("fullwidth-digits", "resident-fixed", [
    resident(bn="１２３", indiv="123456789018"), resident(bn="１", birth="３２５０４０１"[:3]),
    resident(bn="ＡＢ１"),
    resident(bn="１２-"),
], [
    ok(1, rec(bn="123", indiv="123456789018")), err(2, "birth_date", "date_syntax"), ok(3, rec(bn="AB1")),
    err(4, "business_number", "not_alnum"),
], note="full-width digits/letters in number and code fields are folded to ASCII")

write_case("halfwidth-kana", "resident-fixed", [
    resident(name="ﾔﾏﾀﾞ ﾀﾛｳ", kana="ﾔﾏﾀﾞ ﾀﾛｳ"),
    resident(kana="ﾊﾟｳﾞｪﾙ"),
    resident(kana="ヤマダ太郎"),
], [
    ok(1, rec(name="ヤマダ タロウ", kana="ヤマダ タロウ")), ok(2, rec(kana="パヴェル")),
    err(3, "kana", "not_kana"),
], note="half-width katakana widened with voiced marks combined; kanji refused in a kana field")

write_case("gaiji-and-unmappable", "resident-fixed", [
    resident(name=b"\x8eR\xf0\x40"),
    resident(name="髙橋一郎", kana="タカハシイチロウ"),
    resident(addr="札幌市①番地㈱"),
    resident(name=b"\x8eR\x82"),
    resident(),
], [
    err(1, "name", "gaiji"), err(2, "name", "not_in_jisx0213"),
    ok(3, rec(addr="札幌市①番地㈱")), err(4, "name", "malformed_bytes"), ok(5, rec()),
], note="外字 (user-defined area) reported; CP932 IBM kanji 髙 outside JIS X 0213 reported; ① ㈱ kept (no NFKC)")

BATCH_NAMES = ["numbering_system", "business_number", "unified_address_number", "requested_at",
               "inquirer_department", "inquirer_user_id", "inquirer_agency", "non_disclosure",
               "affair_code", "procedure_code", "inquirer_agency_delegator",
               "provider_agency_delegator", "provider_agency", "item_code", "condition_kind",
               "fiscal_year_kind", "from_date", "to_date"]


def batch_rec(dept):
    return dict(zip(BATCH_NAMES, ["01", "1", "", "20260401093000123", dept, "u1", "0112345600000001", "0",
                                  "JM01000000121000", "JT01010000000214", "", "", "", "TM00000000000002",
                                  "1", "1", "2026-04-01", "2027-03-31"]))


write_case("wave-dash", "inquiry-batch", [
    batch(b"\x82\xa0\x81\x60"), batch(b"\x82\xa0\x81\x5b"), batch(b"\x87\x40"), batch("福祉課".encode("cp932")),
    batch(b"\x81\x7c"),
], [
    err(1, "inquirer_department", "divergent_char"), ok(2, batch_rec("あー")),
    err(3, "inquirer_department", "not_in_charset"), ok(4, batch_rec("福祉課")),
    err(5, "inquirer_department", "divergent_char"),
], note="0x8160 (WAVE DASH/FULLWIDTH TILDE) and 0x817C are refused under divergent = report; NEC ① is not Shift_JIS")
print("ok")

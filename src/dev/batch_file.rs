//! Valid `inquiry-batch` files of any size (tests, `renkei bench`): local-tax inquiries for
//! FY2026 under the development deployment's agency and affair codes.

use crate::dev::init::{AFFAIR_CHILD_MEDICAL, DEV_CITY_AGENCY, ITEM_LOCAL_TAX, PROC_LOCAL_TAX};

/// Byte widths of the 18 fields of the `inquiry-batch` layout, in file order.
pub const WIDTHS: [usize; 18] = [
    2, 15, 15, 17, 20, 20, 16, 1, 16, 16, 16, 16, 16, 16, 1, 1, 8, 8,
];

/// Field positions in [`WIDTHS`] and [`line_values`], for tests that spoil one field.
pub mod pos {
    pub const NUMBERING_SYSTEM: usize = 0;
    pub const BUSINESS_NUMBER: usize = 1;
    pub const REQUESTED_AT: usize = 3;
    pub const INQUIRER_AGENCY: usize = 6;
    pub const AFFAIR: usize = 8;
    pub const PROCEDURE: usize = 9;
    pub const ITEM: usize = 13;
    pub const FISCAL_YEAR_KIND: usize = 15;
    pub const FROM_DATE: usize = 16;
    pub const TO_DATE: usize = 17;
}

/// The field values of a local-tax FY2026 inquiry line for `business_number`.
pub fn line_values(business_number: &str) -> [String; 18] {
    [
        "01",
        business_number,
        "",
        "20260401093000123",
        "",
        "",
        DEV_CITY_AGENCY,
        "0",
        AFFAIR_CHILD_MEDICAL,
        PROC_LOCAL_TAX,
        "",
        "",
        "",
        ITEM_LOCAL_TAX,
        "1",
        "1",
        "20260401",
        "20270331",
    ]
    .map(str::to_string)
}

/// One line (CRLF included) from 18 ASCII values, each left-aligned and space-padded to its
/// width (a longer value is written as is, which makes the line the wrong length).
pub fn fixed_line(values: &[String; 18]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    for (i, (v, w)) in values.iter().zip(WIDTHS).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(v.as_bytes());
        out.extend(std::iter::repeat_n(b' ', w.saturating_sub(v.len())));
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// A batch file of `lines` valid local-tax FY2026 lines, cycling through `persons` (business
/// numbers already linked by the submitting system). Empty when `persons` is empty.
pub fn generate_batch_file(lines: usize, persons: &[&str]) -> Vec<u8> {
    if persons.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(lines * 240);
    let values: Vec<[String; 18]> = persons.iter().map(|p| line_values(p)).collect();
    let n = values.len();
    for i in 0..lines {
        out.extend_from_slice(&fixed_line(&values[i % n]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use renkei_convert::{parse_batch_line, Layout, LayoutReader};

    #[test]
    fn generated_lines_parse_in_the_layout() {
        let layout = Layout::builtin("inquiry-batch").unwrap();
        let file = generate_batch_file(5, &["000000000012345", "000000000012346"]);
        assert_eq!(file.len(), 5 * (layout.line_len + 2));
        let lines: Vec<_> = LayoutReader::new(&layout, file.as_slice())
            .map(|r| parse_batch_line(&r.unwrap()).unwrap())
            .collect();
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[1].business_number.as_str(), "000000000012346");
        assert_eq!(lines[4].from.as_deref(), Some("2026-04-01"));
        assert!(generate_batch_file(5, &[]).is_empty());
    }
}

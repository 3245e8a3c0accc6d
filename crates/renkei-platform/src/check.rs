//! Shape checks for the protocol's plain-text values, shared by the reader and `validate`.
//!
//! Each check returns a short reason (never the value) on failure. The XSDs under
//! `schemas/platform/` state the same rules as patterns; a value passing these checks also
//! passes the schema.

/// Longest message id, in-reply-to id and record id (ASCII letters, digits and `-`).
pub const MAX_ID_LEN: usize = 64;
/// Longest platform fault code (ASCII letters and digits, e.g. `E1001`).
pub const MAX_FAULT_CODE_LEN: usize = 16;
/// Longest platform fault message, in characters.
pub const MAX_FAULT_MESSAGE_CHARS: usize = 1024;
/// Longest display name in master information and longest result field name, in characters.
pub const MAX_NAME_CHARS: usize = 256;
/// Longest result field value, in characters.
pub const MAX_FIELD_VALUE_CHARS: usize = 8192;

/// Whether every character may appear in an XML 1.0 document (`Char` production).
/// Rust strings hold no surrogates, so only C0 controls and U+FFFE/U+FFFF remain to refuse.
pub(crate) fn is_xml_text(s: &str) -> bool {
    let b = s.as_bytes();
    // Fast path: a branch-free scan the compiler vectorises; most values have no control
    // characters and no 0xEF lead byte at all.
    if !b
        .iter()
        .fold(false, |acc, &c| acc | (c < 0x20) | (c == 0xEF))
    {
        return true;
    }
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c < 0x20 && c != b'\t' && c != b'\n' && c != b'\r' {
            return false;
        }
        // U+FFFE and U+FFFF are EF BF BE / EF BF BF in UTF-8.
        if c == 0xEF
            && i + 2 < b.len()
            && b[i + 1] == 0xBF
            && (b[i + 2] == 0xBE || b[i + 2] == 0xBF)
        {
            return false;
        }
        i += 1;
    }
    true
}

/// Message id, in-reply-to id, record id: 1 to 64 of `[A-Za-z0-9-]`.
pub(crate) fn id_token(s: &str) -> Result<(), &'static str> {
    if (1..=MAX_ID_LEN).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        Ok(())
    } else {
        Err("expected 1 to 64 ASCII letters, digits or '-'")
    }
}

/// Fault code: 1 to 16 ASCII letters or digits.
pub(crate) fn fault_code(s: &str) -> Result<(), &'static str> {
    if (1..=MAX_FAULT_CODE_LEN).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err("expected 1 to 16 ASCII letters or digits")
    }
}

/// Free text of `min..=max` characters, all allowed in XML.
pub(crate) fn text(s: &str, min: usize, max: usize) -> Result<(), &'static str> {
    if !is_xml_text(s) {
        return Err("contains a character not allowed in XML");
    }
    let n = s.chars().count();
    if n < min {
        Err("is empty")
    } else if n > max {
        Err("is too long")
    } else {
        Ok(())
    }
}

/// Two ASCII digits (照会ステータス).
pub(crate) fn status2(s: &str) -> Result<(), &'static str> {
    if s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err("expected 2 digits")
    }
}

/// Parses a positive `u32` in canonical form (`[1-9][0-9]*`, no sign, no leading zero).
pub(crate) fn positive_u32(s: &str) -> Result<u32, &'static str> {
    const REASON: &str =
        "expected a positive integer without sign or leading zero, at most 4294967295";
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 10 || b[0] == b'0' || !b.iter().all(u8::is_ascii_digit) {
        return Err(REASON);
    }
    let v: u64 = b.iter().fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
    u32::try_from(v).map_err(|_| REASON)
}

/// Parses a `u64` in canonical form (`0` or `[1-9][0-9]*`, at most 18 digits).
pub(crate) fn canonical_u64(s: &str) -> Result<u64, &'static str> {
    const REASON: &str = "expected an integer without sign or leading zero, at most 18 digits";
    let b = s.as_bytes();
    if b.is_empty()
        || b.len() > 18
        || (b[0] == b'0' && b.len() > 1)
        || !b.iter().all(u8::is_ascii_digit)
    {
        return Err(REASON);
    }
    Ok(b.iter().fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0')))
}

/// Fiscal year: four digits, 1000 to 9999.
pub(crate) fn fiscal_year(s: &str) -> Result<u16, &'static str> {
    const REASON: &str = "expected a four-digit year";
    let b = s.as_bytes();
    if b.len() != 4 || b[0] == b'0' || !b.iter().all(u8::is_ascii_digit) {
        return Err(REASON);
    }
    Ok(b.iter().fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0')))
}

/// Whether a fiscal year is in the range the text form allows.
pub(crate) fn fiscal_year_value(y: u16) -> Result<(), &'static str> {
    if (1000..=9999).contains(&y) {
        Ok(())
    } else {
        Err("expected a four-digit year")
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        _ => 28,
    }
}

/// `YYYY-MM-DD`, a real calendar date, year 0001 to 9999.
pub(crate) fn date(s: &str) -> Result<(), &'static str> {
    const REASON: &str = "expected a calendar date YYYY-MM-DD";
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(REASON);
    }
    let (Some(y), Some(m), Some(d)) = (digits(&b[0..4]), digits(&b[5..7]), digits(&b[8..10]))
    else {
        return Err(REASON);
    };
    if y == 0 || !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return Err(REASON);
    }
    Ok(())
}

/// RFC 3339 date-time with seconds and an offset (`Z` or `±HH:MM`, at most 14:00),
/// optional fraction of 1 to 9 digits: `2026-11-26T21:00:00.123+09:00`.
pub(crate) fn timestamp(s: &str) -> Result<(), &'static str> {
    const REASON: &str =
        "expected an RFC 3339 date-time with offset, e.g. 2026-11-26T21:00:00+09:00";
    let b = s.as_bytes();
    if b.len() < 20 || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return Err(REASON);
    }
    date(&s[..10]).map_err(|_| REASON)?;
    let (Some(h), Some(mi), Some(se)) =
        (digits(&b[11..13]), digits(&b[14..16]), digits(&b[17..19]))
    else {
        return Err(REASON);
    };
    if h > 23 || mi > 59 || se > 59 {
        return Err(REASON);
    }
    let mut rest = &b[19..];
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=9).contains(&n) {
            return Err(REASON);
        }
        rest = &frac[n..];
    }
    match rest {
        b"Z" => Ok(()),
        [sign, h1, h2, b':', m1, m2] if *sign == b'+' || *sign == b'-' => {
            let (Some(oh), Some(om)) = (digits(&[*h1, *h2]), digits(&[*m1, *m2])) else {
                return Err(REASON);
            };
            if oh > 14 || om > 59 || (oh == 14 && om != 0) {
                return Err(REASON);
            }
            Ok(())
        }
        _ => Err(REASON),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        for ok in [
            "2026-11-26T21:00:00.123+09:00",
            "2026-11-26T21:00:00Z",
            "2024-02-29T00:00:00-14:00",
            "2026-01-01T23:59:59.123456789+14:00",
        ] {
            assert_eq!(timestamp(ok), Ok(()), "{ok}");
        }
        for bad in [
            "2026-11-26T21:00:00",
            "2026-11-26 21:00:00Z",
            "2026-11-26T24:00:00Z",
            "2025-02-29T00:00:00Z",
            "2026-11-26T21:00:00.+09:00",
            "2026-11-26T21:00:00.1234567890Z",
            "2026-11-26T21:00:00+15:00",
            "2026-11-26T21:00:00+14:30",
            "2026-11-26T21:00:00+0900",
            "2026-13-01T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "２０２６-11-26T21:00:00Z",
        ] {
            assert!(timestamp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_numbers_text() {
        assert_eq!(date("2026-04-01"), Ok(()));
        assert!(date("2026-4-01").is_err());
        assert!(date("2026-04-31").is_err());
        assert_eq!(date("2000-02-29"), Ok(()));
        assert!(date("1900-02-29").is_err());
        assert_eq!(positive_u32("1"), Ok(1));
        assert_eq!(positive_u32("4294967295"), Ok(u32::MAX));
        for bad in ["0", "01", "+1", "-1", "4294967296", "", "1 "] {
            assert!(positive_u32(bad).is_err(), "{bad}");
        }
        assert_eq!(fiscal_year("2026"), Ok(2026));
        assert!(fiscal_year("0999").is_err());
        assert!(fiscal_year("20261").is_err());
        assert_eq!(text("符号", 1, 2), Ok(()));
        assert!(text("符号が", 1, 2).is_err());
        assert!(text("", 1, 2).is_err());
        assert_eq!(text("", 0, 2), Ok(()));
        assert!(text("a\u{1}b", 0, 10).is_err());
        assert!(text("a\u{FFFE}", 0, 10).is_err());
        assert_eq!(text("a\tb\r\n\u{FFFD}", 0, 10), Ok(()));
        assert!(id_token("m-1").is_ok());
        assert!(id_token("m_1").is_err());
        assert!(id_token(&"a".repeat(65)).is_err());
    }
}

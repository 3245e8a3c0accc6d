//! Strict Shift_JIS / CP932 / UTF-8 codecs that report every unmappable or ambiguous character.
//!
//! Nothing here ever substitutes a replacement character. Rules, in order:
//!
//! 1. Malformed byte sequences → [`CharsetError::Malformed`] with the byte offset and bytes.
//! 2. The user-defined area (外字, lead bytes 0xF0–0xF9, decoded by CP932 into the Private Use
//!    Area) → [`CharsetError::Gaiji`]; PUA characters are refused when encoding as well.
//! 3. The *divergent* characters — byte pairs that Shift_JIS (JIS X 0208 mapping) and CP932
//!    (Microsoft mapping) decode to different code points, see [`DIVERGENT`] — follow the
//!    layout's [`DivergentRule`]. The default, [`DivergentRule::Report`], refuses them: WAVE
//!    DASH U+301C vs FULLWIDTH TILDE U+FF5E is the famous case, and guessing silently corrupts
//!    names and addresses. A layout that knows its producer sets `divergent = "jis"` or
//!    `"cp932"`; then only that column's characters are accepted when encoding.
//! 4. 0x815F is always U+FF3C FULLWIDTH REVERSE SOLIDUS: the JIS mapping (U+005C) would alias
//!    ASCII 0x5C. For the same reason U+00A5 YEN SIGN and U+203E OVERLINE are refused when
//!    encoding (CP932 encoders quietly turn them into 0x5C / 0x7E).
//! 5. With [`Charset::ShiftJis`] the CP932 extensions (NEC row 13 such as ① ㈱, NEC-selected
//!    and IBM extensions, lead bytes 0x87, 0xED–0xEE, 0xFA–0xFC) are outside the repertoire →
//!    [`CharsetError::NotInCharset`]. [`Charset::Cp932`] accepts them.
//!
//! [`check_jisx0213`] checks text bound for the platform against the JIS X 0213:2004
//! repertoire, generated from Python's `euc_jis_2004` codec into
//! `schemas/charsets/jisx0213-2004.ranges` by `schemas/charsets/gen_jisx0213.py`.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The byte encoding of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Charset {
    /// UTF-8 without BOM handling (a BOM is reported as an unexpected character by the field).
    #[serde(rename = "utf-8")]
    Utf8,
    /// Shift_JIS restricted to JIS X 0201 + JIS X 0208 (no CP932 extensions).
    ShiftJis,
    /// Windows-31J (CP932): Shift_JIS plus NEC and IBM extensions.
    Cp932,
}

/// How to treat byte pairs whose meaning differs between Shift_JIS and CP932 (see [`DIVERGENT`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DivergentRule {
    /// Refuse them: the producer's mapping is unknown.
    #[default]
    Report,
    /// Use the JIS X 0208 mapping (0x8160 = U+301C WAVE DASH).
    Jis,
    /// Use the Microsoft CP932 mapping (0x8160 = U+FF5E FULLWIDTH TILDE).
    Cp932,
}

/// A divergent byte pair: its bytes, its JIS X 0208 mapping and its CP932 mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Divergent {
    /// The two Shift_JIS bytes.
    pub bytes: [u8; 2],
    /// Code point under the JIS X 0208 (Unicode SHIFTJIS.TXT) mapping.
    pub jis: char,
    /// Code point under Microsoft's CP932 mapping.
    pub cp932: char,
}

/// Every byte pair whose code point differs between Shift_JIS and CP932 (0x815F excepted, see
/// the module doc).
pub const DIVERGENT: [Divergent; 7] = [
    Divergent {
        bytes: [0x81, 0x5C],
        jis: '\u{2014}',
        cp932: '\u{2015}',
    }, // EM DASH / HORIZONTAL BAR
    Divergent {
        bytes: [0x81, 0x60],
        jis: '\u{301C}',
        cp932: '\u{FF5E}',
    }, // WAVE DASH / FULLWIDTH TILDE
    Divergent {
        bytes: [0x81, 0x61],
        jis: '\u{2016}',
        cp932: '\u{2225}',
    }, // DOUBLE VERTICAL LINE / PARALLEL TO
    Divergent {
        bytes: [0x81, 0x7C],
        jis: '\u{2212}',
        cp932: '\u{FF0D}',
    }, // MINUS SIGN / FULLWIDTH HYPHEN-MINUS
    Divergent {
        bytes: [0x81, 0x91],
        jis: '\u{00A2}',
        cp932: '\u{FFE0}',
    }, // CENT SIGN
    Divergent {
        bytes: [0x81, 0x92],
        jis: '\u{00A3}',
        cp932: '\u{FFE1}',
    }, // POUND SIGN
    Divergent {
        bytes: [0x81, 0xCA],
        jis: '\u{00AC}',
        cp932: '\u{FFE2}',
    }, // NOT SIGN
];

/// Why bytes could not be decoded or text could not be encoded. Offsets are byte offsets in
/// the decoded input (or char indexes in the encoded text); nothing here carries a whole value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CharsetError {
    /// The bytes are not valid in the encoding.
    #[error("malformed bytes {} at byte offset {offset}", hex(bytes))]
    Malformed {
        /// Byte offset of the bad sequence.
        offset: usize,
        /// The bad bytes.
        bytes: Vec<u8>,
    },
    /// A user-defined character (外字) with no standard meaning.
    #[error("user-defined character (外字) {} at byte offset {offset}", hex(bytes))]
    Gaiji {
        /// Byte offset.
        offset: usize,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// A byte pair that Shift_JIS and CP932 read differently, under [`DivergentRule::Report`].
    #[error("ambiguous bytes {} at byte offset {offset}: U+{:04X} (JIS) or U+{:04X} (CP932); the layout must set `divergent`", hex(bytes), *jis as u32, *cp932 as u32)]
    Divergent {
        /// Byte offset.
        offset: usize,
        /// The bytes.
        bytes: Vec<u8>,
        /// JIS reading.
        jis: char,
        /// CP932 reading.
        cp932: char,
    },
    /// A CP932 extension character in a file declared plain Shift_JIS.
    #[error(
        "bytes {} at byte offset {offset} are a CP932 extension, not Shift_JIS",
        hex(bytes)
    )]
    NotInCharset {
        /// Byte offset.
        offset: usize,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// A character the target encoding cannot represent.
    #[error("character U+{:04X} at index {index} cannot be encoded in {target}", *ch as u32)]
    Unmappable {
        /// The character.
        ch: char,
        /// Char index in the text.
        index: usize,
        /// Target encoding name.
        target: &'static str,
    },
    /// A divergent character while encoding under [`DivergentRule::Report`].
    #[error("character U+{:04X} at index {index} is mapped differently by Shift_JIS and CP932; the layout must set `divergent`", *ch as u32)]
    DivergentChar {
        /// The character.
        ch: char,
        /// Char index in the text.
        index: usize,
    },
}

impl CharsetError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            CharsetError::Malformed { .. } => "malformed_bytes",
            CharsetError::Gaiji { .. } => "gaiji",
            CharsetError::Divergent { .. } | CharsetError::DivergentChar { .. } => "divergent_char",
            CharsetError::NotInCharset { .. } => "not_in_charset",
            CharsetError::Unmappable { .. } => "unmappable_char",
        }
    }

    /// The message without any byte values or characters (for secret fields).
    pub fn redacted(&self) -> String {
        format!("{} (value withheld: secret field)", self.code())
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::from("0x");
    for b in bytes {
        s.push_str(&format!("{b:02X}"));
    }
    s
}

fn is_cp932_extension_lead(b: u8) -> bool {
    b == 0x87 || (0xED..=0xEE).contains(&b) || (0xFA..=0xFC).contains(&b)
}

fn is_pua(c: char) -> bool {
    ('\u{E000}'..='\u{F8FF}').contains(&c)
}

/// Decodes `bytes` strictly (see the module doc for the rules).
pub fn decode(bytes: &[u8], charset: Charset, rule: DivergentRule) -> Result<String, CharsetError> {
    if bytes.is_ascii() {
        // ASCII is identical in all three encodings (0x5C and 0x7E are read as ASCII).
        return Ok(bytes.iter().map(|&b| b as char).collect());
    }
    match charset {
        Charset::Utf8 => std::str::from_utf8(bytes).map(str::to_owned).map_err(|e| {
            let offset = e.valid_up_to();
            let len = e.error_len().unwrap_or(bytes.len() - offset);
            CharsetError::Malformed {
                offset,
                bytes: bytes[offset..offset + len].to_vec(),
            }
        }),
        Charset::ShiftJis | Charset::Cp932 => decode_sjis(bytes, charset, rule),
    }
}

fn decode_sjis(
    bytes: &[u8],
    charset: Charset,
    rule: DivergentRule,
) -> Result<String, CharsetError> {
    let mut decoder = encoding_rs::SHIFT_JIS.new_decoder_without_bom_handling();
    let cap = decoder
        .max_utf8_buffer_length_without_replacement(bytes.len())
        .unwrap_or(bytes.len().saturating_mul(3));
    let mut raw = String::with_capacity(cap);
    let (result, read) = decoder.decode_to_string_without_replacement(bytes, &mut raw, true);
    match result {
        encoding_rs::DecoderResult::InputEmpty => {}
        encoding_rs::DecoderResult::Malformed(bad, extra) => {
            let end = read.saturating_sub(usize::from(extra));
            let start = end.saturating_sub(usize::from(bad));
            return Err(CharsetError::Malformed {
                offset: start,
                bytes: bytes[start..end].to_vec(),
            });
        }
        encoding_rs::DecoderResult::OutputFull => {
            // Cannot happen: the buffer holds the maximum length; report rather than panic.
            return Err(CharsetError::Malformed {
                offset: read,
                bytes: Vec::new(),
            });
        }
    }
    // Every Shift_JIS character is one code point: ASCII and half-width katakana take one
    // byte, everything else two. Walk both in step to find each character's bytes.
    let mut out = String::with_capacity(raw.len());
    let mut offset = 0usize;
    for c in raw.chars() {
        let len = if c.is_ascii() || c == '\u{80}' || ('\u{FF61}'..='\u{FF9F}').contains(&c) {
            1
        } else {
            2
        };
        let here = match bytes.get(offset..offset + len) {
            Some(h) if c != '\u{80}' => h,
            // 0x80 is not Shift_JIS (WHATWG decodes it to U+0080); a short tail cannot happen
            // after a clean decode, but is reported rather than trusted.
            _ => {
                let end = (offset + len).min(bytes.len());
                return Err(CharsetError::Malformed {
                    offset,
                    bytes: bytes[offset.min(end)..end].to_vec(),
                });
            }
        };
        let end = offset + len;
        if len == 2 {
            if is_pua(c) {
                return Err(CharsetError::Gaiji {
                    offset,
                    bytes: here.to_vec(),
                });
            }
            if charset == Charset::ShiftJis && is_cp932_extension_lead(here[0]) {
                return Err(CharsetError::NotInCharset {
                    offset,
                    bytes: here.to_vec(),
                });
            }
            if let Some(d) = DIVERGENT.iter().find(|d| d.bytes[..] == *here) {
                match rule {
                    DivergentRule::Report => {
                        return Err(CharsetError::Divergent {
                            offset,
                            bytes: here.to_vec(),
                            jis: d.jis,
                            cp932: d.cp932,
                        })
                    }
                    DivergentRule::Jis => out.push(d.jis),
                    DivergentRule::Cp932 => out.push(d.cp932),
                }
                offset = end;
                continue;
            }
        }
        out.push(c);
        offset = end;
    }
    Ok(out)
}

/// Encodes `text` strictly (see the module doc for the rules).
pub fn encode(text: &str, charset: Charset, rule: DivergentRule) -> Result<Vec<u8>, CharsetError> {
    if text.is_ascii() || charset == Charset::Utf8 {
        return Ok(text.as_bytes().to_vec());
    }
    let target = match charset {
        Charset::ShiftJis => "Shift_JIS",
        _ => "CP932",
    };
    let mut out = Vec::with_capacity(text.len());
    let mut encoder = encoding_rs::SHIFT_JIS.new_encoder();
    let mut buf = [0u8; 8];
    let mut cbuf = [0u8; 4];
    for (index, ch) in text.chars().enumerate() {
        if ch.is_ascii() {
            out.push(ch as u8);
            continue;
        }
        if is_pua(ch) || ch == '\u{80}' || ch == '\u{00A5}' || ch == '\u{203E}' {
            return Err(CharsetError::Unmappable { ch, index, target });
        }
        if let Some(d) = DIVERGENT.iter().find(|d| d.jis == ch || d.cp932 == ch) {
            let wanted = match rule {
                DivergentRule::Report => return Err(CharsetError::DivergentChar { ch, index }),
                DivergentRule::Jis => d.jis,
                DivergentRule::Cp932 => d.cp932,
            };
            if wanted != ch {
                return Err(CharsetError::Unmappable { ch, index, target });
            }
            out.extend_from_slice(&d.bytes);
            continue;
        }
        let s = ch.encode_utf8(&mut cbuf);
        let (result, _read, written) =
            encoder.encode_from_utf8_without_replacement(s, &mut buf, false);
        match result {
            encoding_rs::EncoderResult::InputEmpty if written > 0 => {
                if charset == Charset::ShiftJis && written == 2 && is_cp932_extension_lead(buf[0]) {
                    return Err(CharsetError::Unmappable { ch, index, target });
                }
                out.extend_from_slice(&buf[..written]);
            }
            _ => return Err(CharsetError::Unmappable { ch, index, target }),
        }
    }
    Ok(out)
}

/// A character outside the JIS X 0213:2004 repertoire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("character U+{:04X} at index {index} is not in JIS X 0213:2004", *ch as u32)]
pub struct CharIssue {
    /// The character.
    pub ch: char,
    /// Its char index in the text.
    pub index: usize,
}

impl CharIssue {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        "not_in_jisx0213"
    }
}

const JISX0213_RANGES: &str = include_str!("../../../schemas/charsets/jisx0213-2004.ranges");

/// Parsed ranges, sorted, inclusive. A malformed line in the generated file yields an empty
/// table, which refuses every non-ASCII character (fail closed); the crate's tests pin it.
fn jisx0213_table() -> &'static [(u32, u32)] {
    static TABLE: OnceLock<Vec<(u32, u32)>> = OnceLock::new();
    TABLE.get_or_init(|| parse_ranges(JISX0213_RANGES).unwrap_or_default())
}

/// Parses a ranges file (`START-END` or `CP` hex lines, `#` comments).
pub fn parse_ranges(text: &str) -> Option<Vec<(u32, u32)>> {
    let mut v = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (a, b) = match line.split_once('-') {
            Some((a, b)) => (a, b),
            None => (line, line),
        };
        let a = u32::from_str_radix(a, 16).ok()?;
        let b = u32::from_str_radix(b, 16).ok()?;
        v.push((a, b));
    }
    v.sort_unstable();
    Some(v)
}

/// Whether `ch` is in the JIS X 0213:2004 repertoire (plane 1, plane 2 and ASCII, no controls
/// other than TAB).
pub fn in_jisx0213(ch: char) -> bool {
    let cp = ch as u32;
    if (0x20..0x7F).contains(&cp) {
        return true;
    }
    let t = jisx0213_table();
    match t.binary_search_by(|&(a, _)| a.cmp(&cp)) {
        Ok(_) => true,
        Err(0) => false,
        Err(i) => t[i - 1].1 >= cp,
    }
}

/// Checks that every character of `s` can travel to the platform (JIS X 0213 as UTF-8).
pub fn check_jisx0213(s: &str) -> Result<(), CharIssue> {
    for (index, ch) in s.chars().enumerate() {
        if !in_jisx0213(ch) {
            return Err(CharIssue { ch, index });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wave_dash_is_reported_by_default_and_mapped_by_rule() {
        let b = [0x82, 0xA0, 0x81, 0x60];
        let e = decode(&b, Charset::Cp932, DivergentRule::Report).unwrap_err();
        assert_eq!(e.code(), "divergent_char");
        assert_eq!(
            e.to_string(),
            "ambiguous bytes 0x8160 at byte offset 2: U+301C (JIS) or U+FF5E (CP932); the layout must set `divergent`"
        );
        assert_eq!(
            decode(&b, Charset::Cp932, DivergentRule::Jis).unwrap(),
            "あ\u{301C}"
        );
        assert_eq!(
            decode(&b, Charset::Cp932, DivergentRule::Cp932).unwrap(),
            "あ\u{FF5E}"
        );
        assert_eq!(
            encode("あ\u{301C}", Charset::ShiftJis, DivergentRule::Jis).unwrap(),
            b
        );
        assert_eq!(
            encode("あ\u{FF5E}", Charset::Cp932, DivergentRule::Cp932).unwrap(),
            b
        );
        let e = encode("あ\u{FF5E}", Charset::ShiftJis, DivergentRule::Jis).unwrap_err();
        assert_eq!(
            e.to_string(),
            "character U+FF5E at index 1 cannot be encoded in Shift_JIS"
        );
        let e = encode("\u{301C}", Charset::Cp932, DivergentRule::Report).unwrap_err();
        assert_eq!(e.code(), "divergent_char");
    }

    #[test]
    fn malformed_reports_offset_and_bytes() {
        let e = decode(b"AB\x82\x20C", Charset::ShiftJis, DivergentRule::Report).unwrap_err();
        assert_eq!(e.code(), "malformed_bytes");
        assert_eq!(e.to_string(), "malformed bytes 0x82 at byte offset 2");
        let e = decode(b"AB\x82", Charset::ShiftJis, DivergentRule::Report).unwrap_err();
        assert_eq!(e.to_string(), "malformed bytes 0x82 at byte offset 2");
        let e = decode(b"A\x80\x82\xA0", Charset::Cp932, DivergentRule::Report).unwrap_err();
        assert_eq!(e.to_string(), "malformed bytes 0x80 at byte offset 1");
        assert!(encode("\u{80}", Charset::Cp932, DivergentRule::Report).is_err());
        let e = decode(b"A\xff", Charset::Utf8, DivergentRule::Report).unwrap_err();
        assert_eq!(e.to_string(), "malformed bytes 0xFF at byte offset 1");
    }

    #[test]
    fn gaiji_and_extensions() {
        let e = decode(b"\x88\x9f\xF0\x40", Charset::Cp932, DivergentRule::Report).unwrap_err();
        assert_eq!(
            e.to_string(),
            "user-defined character (外字) 0xF040 at byte offset 2"
        );
        assert_eq!(
            decode(b"\x87\x40", Charset::Cp932, DivergentRule::Report).unwrap(),
            "①"
        );
        let e = decode(b"\x87\x40", Charset::ShiftJis, DivergentRule::Report).unwrap_err();
        assert_eq!(e.code(), "not_in_charset");
        assert!(encode("①", Charset::ShiftJis, DivergentRule::Report).is_err());
        assert_eq!(
            encode("①", Charset::Cp932, DivergentRule::Report).unwrap(),
            b"\x87\x40"
        );
        let e = encode("山\u{E000}", Charset::Cp932, DivergentRule::Report).unwrap_err();
        assert_eq!(
            e.to_string(),
            "character U+E000 at index 1 cannot be encoded in CP932"
        );
        let e = encode("\u{A5}100", Charset::Cp932, DivergentRule::Report).unwrap_err();
        assert_eq!(e.code(), "unmappable_char");
        let e = encode("𠀋", Charset::Cp932, DivergentRule::Report).unwrap_err();
        assert_eq!(
            e.to_string(),
            "character U+2000B at index 0 cannot be encoded in CP932"
        );
    }

    #[test]
    fn golden_round_trip_sjis() {
        let text = "札幌市中央区北1条西2丁目ｻｯﾎﾟﾛ";
        let bytes = encode(text, Charset::ShiftJis, DivergentRule::Report).unwrap();
        assert_eq!(&bytes[..4], &[0x8E, 0x44, 0x96, 0x79]);
        assert_eq!(
            decode(&bytes, Charset::ShiftJis, DivergentRule::Report).unwrap(),
            text
        );
    }

    #[test]
    fn jisx0213_repertoire() {
        assert!(jisx0213_table().len() > 1000, "ranges file must parse");
        assert!(check_jisx0213("山田 太郎 ヤマダ〜～①㈱𠀋").is_ok());
        let e = check_jisx0213("髙橋").unwrap_err();
        assert_eq!(
            e.to_string(),
            "character U+9AD9 at index 0 is not in JIS X 0213:2004"
        );
        assert_eq!(check_jisx0213("a\u{E000}").unwrap_err().index, 1);
        assert!(check_jisx0213("a\u{7}").is_err());
    }
}

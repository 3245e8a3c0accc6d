//! Width and kana conversions by explicit tables (never NFKC, which also rewrites ① and ㈱).

/// Full-width katakana for U+FF61..=U+FF9F (index = code point − 0xFF61).
const HALF_KANA: [char; 63] = [
    '。', '「', '」', '、', '・', 'ヲ', 'ァ', 'ィ', 'ゥ', 'ェ', 'ォ', 'ャ', 'ュ', 'ョ', 'ッ', 'ー',
    'ア', 'イ', 'ウ', 'エ', 'オ', 'カ', 'キ', 'ク', 'ケ', 'コ', 'サ', 'シ', 'ス', 'セ', 'ソ', 'タ',
    'チ', 'ツ', 'テ', 'ト', 'ナ', 'ニ', 'ヌ', 'ネ', 'ノ', 'ハ', 'ヒ', 'フ', 'ヘ', 'ホ', 'マ', 'ミ',
    'ム', 'メ', 'モ', 'ヤ', 'ユ', 'ヨ', 'ラ', 'リ', 'ル', 'レ', 'ロ', 'ワ', 'ン', '゛', '゜',
];

/// The voiced (dakuten) form of a full-width katakana, if it has one.
fn voiced(c: char) -> Option<char> {
    match c {
        'ウ' => Some('ヴ'),
        'ワ' => Some('ヷ'),
        'ヲ' => Some('ヺ'),
        'カ' | 'キ' | 'ク' | 'ケ' | 'コ' | 'サ' | 'シ' | 'ス' | 'セ' | 'ソ' | 'タ' | 'チ'
        | 'テ' | 'ト' | 'ハ' | 'ヒ' | 'フ' | 'ヘ' | 'ホ' => char::from_u32(c as u32 + 1),
        'ツ' => Some('ヅ'),
        _ => None,
    }
}

/// The semi-voiced (handakuten) form, if it has one.
fn semi_voiced(c: char) -> Option<char> {
    match c {
        'ハ' | 'ヒ' | 'フ' | 'ヘ' | 'ホ' => char::from_u32(c as u32 + 2),
        _ => None,
    }
}

/// Half-width katakana (JIS X 0201) → full-width katakana, combining a following ﾞ/ﾟ with
/// the previous kana when a composed character exists (ｶﾞ → ガ, ﾊﾟ → パ, ｳﾞ → ヴ). A lone mark
/// becomes ゛/゜. Every other character is kept as is.
pub fn halfwidth_kana_to_fullwidth(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let cp = c as u32;
        if !(0xFF61..=0xFF9F).contains(&cp) {
            out.push(c);
            continue;
        }
        if c == 'ﾞ' || c == 'ﾟ' {
            let combined = out.chars().last().and_then(|p| {
                if c == 'ﾞ' {
                    voiced(p)
                } else {
                    semi_voiced(p)
                }
            });
            if let Some(v) = combined {
                out.pop();
                out.push(v);
                continue;
            }
        }
        out.push(HALF_KANA[(cp - 0xFF61) as usize]);
    }
    out
}

/// Full-width ASCII digits and letters (０-９, Ａ-Ｚ, ａ-ｚ) → ASCII, for code and number fields.
/// Other characters are kept.
pub fn fullwidth_alnum_to_halfwidth(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '０'..='９' | 'Ａ'..='Ｚ' | 'ａ'..='ｚ' => {
                char::from_u32(c as u32 - 0xFEE0).unwrap_or(c)
            }
            _ => c,
        })
        .collect()
}

/// ASCII digits and letters → full-width (the reverse of [`fullwidth_alnum_to_halfwidth`]).
pub fn halfwidth_alnum_to_fullwidth(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '0'..='9' | 'A'..='Z' | 'a'..='z' => char::from_u32(c as u32 + 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .collect()
}

/// Hiragana → katakana (ぁ-ゖ → ァ-ヶ, ゝゞ → ヽヾ), for kana names. Other characters are kept.
pub fn hiragana_to_katakana(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{3041}'..='\u{3096}' | 'ゝ' | 'ゞ' => char::from_u32(c as u32 + 0x60).unwrap_or(c),
            _ => c,
        })
        .collect()
}

/// Whether `s` is a katakana name: full-width katakana, ー, ・, ヽヾ and the full-width or ASCII space.
pub fn is_katakana_name(s: &str) -> bool {
    s.chars().all(|c| {
        matches!(
            c,
            '\u{30A1}'..='\u{30FA}' | 'ー' | '・' | 'ヽ' | 'ヾ' | '\u{3000}' | ' '
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halfwidth_kana_golden() {
        assert_eq!(halfwidth_kana_to_fullwidth("ﾔﾏﾀﾞ ﾀﾛｳ"), "ヤマダ タロウ");
        assert_eq!(halfwidth_kana_to_fullwidth("ﾊﾟﾋﾟﾌﾟﾍﾟﾎﾟｳﾞｧ"), "パピプペポヴァ");
        assert_eq!(halfwidth_kana_to_fullwidth("ｱﾞﾟ｡ｰ"), "ア゛゜。ー");
        assert_eq!(halfwidth_kana_to_fullwidth("①㈱"), "①㈱");
        assert_eq!(halfwidth_kana_to_fullwidth("ｶﾞｷﾞｸﾞｹﾞｺﾞﾂﾞﾄﾞ"), "ガギグゲゴヅド");
    }

    #[test]
    fn alnum_golden() {
        assert_eq!(fullwidth_alnum_to_halfwidth("ＴＭ０１２ａｚ①"), "TM012az①");
        assert_eq!(halfwidth_alnum_to_fullwidth("R08x"), "Ｒ０８ｘ");
    }

    #[test]
    fn hiragana_golden() {
        assert_eq!(
            hiragana_to_katakana("やまだ たろう ゔゝ"),
            "ヤマダ タロウ ヴヽ"
        );
        assert!(is_katakana_name("ヤマダ　タロウ"));
        assert!(!is_katakana_name("やまだ"));
    }
}

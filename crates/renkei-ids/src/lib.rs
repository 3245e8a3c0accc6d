//! Validated identifiers and codes of the My Number linkage domain, as newtypes.
//!
//! Every value here is checked when it is made, so the rest of renkei never sees a malformed
//! number or code. The individual number (個人番号) is special: its `Debug` and `Display` are
//! masked, it has no `Serialize`, and its digits are zeroized on drop, so it cannot reach a log
//! line, an error message or a JSON answer by accident. Code that truly needs the digits (sealing
//! to the national side, the blind index) calls [`IndividualNumber::expose_digits`], which is
//! easy to grep for in a privacy review.
#![forbid(unsafe_code)]

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

/// Why a value was refused. `code()` is stable and meant for machines.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Wrong length or characters; the message says what was expected (never the value).
    #[error("{what}: expected {expected}")]
    Format {
        what: &'static str,
        expected: &'static str,
    },
    /// Right shape, wrong check digit.
    #[error("{what}: check digit does not match")]
    CheckDigit { what: &'static str },
}

impl IdError {
    /// A stable machine code for the error.
    pub fn code(&self) -> &'static str {
        match self {
            IdError::Format { .. } => "invalid_format",
            IdError::CheckDigit { .. } => "invalid_check_digit",
        }
    }
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Check digit of the individual number (番号法施行令 第8条): over the first 11 digits,
/// weights 6,5,4,3,2,7,6,5,4,3,2 left to right; `11 - (sum mod 11)`, or 0 when the
/// remainder is 0 or 1.
pub fn individual_number_check_digit(first11: &[u8; 11]) -> u8 {
    const WEIGHTS: [u32; 11] = [6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2];
    let sum: u32 = first11
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(*d) * w)
        .sum();
    let r = sum % 11;
    if r <= 1 {
        0
    } else {
        (11 - r) as u8
    }
}

/// 個人番号: 12 digits, the last a check digit. Masked in `Debug`/`Display`, never serialized.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct IndividualNumber([u8; 12]);

impl IndividualNumber {
    /// Parses and validates 12 ASCII digits with a correct check digit.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        const WHAT: &str = "individual_number";
        if s.len() != 12 || !all_digits(s) {
            return Err(IdError::Format {
                what: WHAT,
                expected: "12 digits",
            });
        }
        let mut digits = [0u8; 12];
        for (i, b) in s.bytes().enumerate() {
            digits[i] = b - b'0';
        }
        let mut first = [0u8; 11];
        first.copy_from_slice(&digits[..11]);
        if individual_number_check_digit(&first) != digits[11] {
            digits.zeroize();
            return Err(IdError::CheckDigit { what: WHAT });
        }
        Ok(Self(digits))
    }

    /// The 12 digits as text. Only for sealing to the national side and for the blind index;
    /// the returned string should be zeroized by the caller when practical.
    pub fn expose_digits(&self) -> String {
        self.0.iter().map(|d| char::from(b'0' + d)).collect()
    }
}

impl TryFrom<String> for IndividualNumber {
    type Error = IdError;
    fn try_from(mut s: String) -> Result<Self, IdError> {
        let r = Self::parse(&s);
        s.zeroize();
        r
    }
}

impl Drop for IndividualNumber {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for IndividualNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IndividualNumber(************)")
    }
}

impl fmt::Display for IndividualNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("************")
    }
}

/// Modulus-11 check digit with weights 2..=7 repeating from the rightmost digit; a result of
/// 10 or 11 becomes 0. Used for unified address numbers (documented in docs/identifiers.md).
pub fn mod11_check_digit(digits: &[u8]) -> u8 {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| u32::from(*d) * (2 + (i as u32 % 6)))
        .sum();
    let c = 11 - (sum % 11);
    if c >= 10 {
        0
    } else {
        c as u8
    }
}

/// 団体内統合宛名番号: 15 digits, a 14-digit serial then a modulus-11 check digit.
/// Assigned by the registry, never reused; it is what travels to the platform.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UnifiedAddressNumber(u64);

impl UnifiedAddressNumber {
    /// Largest serial that fits in 14 digits.
    pub const MAX_SERIAL: u64 = 99_999_999_999_999;

    /// The number for a serial (1..=MAX_SERIAL), with its check digit.
    pub fn from_serial(serial: u64) -> Result<Self, IdError> {
        if serial == 0 || serial > Self::MAX_SERIAL {
            return Err(IdError::Format {
                what: "unified_address_number",
                expected: "a serial of 1 to 14 digits",
            });
        }
        Ok(Self(serial))
    }

    /// Parses 15 digits and checks the check digit.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        const WHAT: &str = "unified_address_number";
        if s.len() != 15 || !all_digits(s) {
            return Err(IdError::Format {
                what: WHAT,
                expected: "15 digits",
            });
        }
        let digits: Vec<u8> = s.bytes().map(|b| b - b'0').collect();
        if mod11_check_digit(&digits[..14]) != digits[14] {
            return Err(IdError::CheckDigit { what: WHAT });
        }
        let serial = s[..14].parse::<u64>().map_err(|_| IdError::Format {
            what: WHAT,
            expected: "15 digits",
        })?;
        Self::from_serial(serial)
    }

    /// The 14-digit serial.
    pub fn serial(&self) -> u64 {
        self.0
    }
}

impl fmt::Display for UnifiedAddressNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let serial = format!("{:014}", self.0);
        let digits: Vec<u8> = serial.bytes().map(|b| b - b'0').collect();
        write!(f, "{serial}{}", mod11_check_digit(&digits))
    }
}

impl fmt::Debug for UnifiedAddressNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UnifiedAddressNumber({self})")
    }
}

impl TryFrom<String> for UnifiedAddressNumber {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::parse(&s)
    }
}

impl From<UnifiedAddressNumber> for String {
    fn from(v: UnifiedAddressNumber) -> String {
        v.to_string()
    }
}

/// Defines a string newtype validated by `$check`, serialized as its text.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $what:literal, $expected:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses and validates the text.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                let check: fn(&str) -> bool = $check;
                if check(s) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(IdError::Format { what: $what, expected: $expected })
                }
            }
            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }
    };
}

fn prefixed14(prefix: &'static str) -> impl Fn(&str) -> bool {
    move |s: &str| s.len() == 16 && s.starts_with(prefix) && all_digits(&s[2..])
}

string_id!(
    /// 業務宛名番号: a business system's own number for a person (1–20 ASCII letters/digits).
    BusinessNumber,
    "business_number",
    "1 to 20 ASCII letters or digits",
    |s| (1..=20).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
);
string_id!(
    /// 事務手続コード: `JT` and 14 digits.
    ProcedureCode,
    "procedure_code",
    "JT followed by 14 digits",
    |s| prefixed14("JT")(s)
);
string_id!(
    /// 特定個人情報名コード: `TM` and 14 digits.
    ItemCode,
    "item_code",
    "TM followed by 14 digits",
    |s| prefixed14("TM")(s)
);
string_id!(
    /// 事務コード: `JM` and 14 digits.
    AffairCode,
    "affair_code",
    "JM followed by 14 digits",
    |s| prefixed14("JM")(s)
);
string_id!(
    /// 機関コード: 16 ASCII upper-case letters or digits.
    AgencyCode,
    "agency_code",
    "16 upper-case letters or digits",
    |s| s.len() == 16 && s.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
);
string_id!(
    /// 符号: the platform's opaque per-agency code for a person (1–64 ASCII letters, digits, `-`, `_`).
    Fugo,
    "fugo",
    "1 to 64 ASCII letters, digits, '-' or '_'",
    |s| (1..=64).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
);
string_id!(
    /// 処理通番: the platform's processing serial number tying an inquiry to its result.
    ProcessingSerial,
    "processing_serial",
    "1 to 32 ASCII letters or digits",
    |s| (1..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
);
string_id!(
    /// An inquiry's id: `IQ` and 26 Crockford base-32 characters (time-ordered, like a ULID).
    /// It is a store key and the platform message id, so its shape is checked before use.
    InquiryId,
    "inquiry_id",
    "IQ followed by 26 letters or digits",
    |s| s.len() == 28
        && s.starts_with("IQ")
        && s[2..].bytes().all(|b| b.is_ascii_digit() || (b.is_ascii_uppercase() && !matches!(b, b'I' | b'L' | b'O' | b'U')))
);
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// 26 Crockford base-32 characters of a 48-bit millisecond time and 80 random bits, like a
/// ULID: ids made this way sort by time and cannot be guessed from one another.
pub fn time_ordered_text(ms: u64, random: [u8; 10]) -> String {
    let mut rnd = 0u128;
    for b in random {
        rnd = (rnd << 8) | u128::from(b);
    }
    let v = ((u128::from(ms) & ((1 << 48) - 1)) << 80) | rnd;
    (0..26)
        .rev()
        .map(|i| char::from(CROCKFORD[((v >> (i * 5)) & 31) as usize]))
        .collect()
}

impl InquiryId {
    /// A new id from a time (ms since the epoch) and 80 bits from a CSPRNG.
    pub fn from_time_and_random(ms: u64, random: [u8; 10]) -> InquiryId {
        InquiryId(format!("IQ{}", time_ordered_text(ms, random)))
    }
}

string_id!(
    /// The name of a business system or staff client, as in its certificate (`kodomo-iryo`).
    SystemId,
    "system_id",
    "1 to 32 lower-case letters, digits or '-'",
    |s| (1..=32).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn individual_number_check_digit_matches_known_valid_numbers() {
        assert!(IndividualNumber::parse("123456789018").is_ok());
        assert!(IndividualNumber::parse("621498320257").is_ok());
        assert_eq!(
            IndividualNumber::parse("123456789017").unwrap_err().code(),
            "invalid_check_digit"
        );
        assert_eq!(
            IndividualNumber::parse("12345678901").unwrap_err().code(),
            "invalid_format"
        );
        assert_eq!(
            IndividualNumber::parse("12345678901a").unwrap_err().code(),
            "invalid_format"
        );
    }

    #[test]
    fn individual_number_never_prints_its_digits() {
        let n = IndividualNumber::parse("621498320257").unwrap();
        let shown = format!("{n} {n:?} {:?}", Some(&n));
        assert!(!shown.contains("621498320257"), "{shown}");
        assert!(!shown.contains("0257"));
        assert_eq!(n.expose_digits(), "621498320257");
        let err = IndividualNumber::parse("621498320250")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("62149832025"), "{err}");
    }

    #[test]
    fn individual_number_deserializes_but_has_no_serialize() {
        let n: IndividualNumber = serde_json::from_str("\"123456789018\"").unwrap();
        assert_eq!(n.expose_digits(), "123456789018");
        assert!(serde_json::from_str::<IndividualNumber>("\"123456789019\"").is_err());
    }

    #[test]
    fn unified_address_number_round_trips_with_check_digit() {
        for serial in [1u64, 42, 12_345_678, UnifiedAddressNumber::MAX_SERIAL] {
            let u = UnifiedAddressNumber::from_serial(serial).unwrap();
            let s = u.to_string();
            assert_eq!(s.len(), 15);
            assert_eq!(UnifiedAddressNumber::parse(&s).unwrap(), u);
            // Any single-digit change in the serial part is caught.
            let mut bytes = s.clone().into_bytes();
            bytes[13] = if bytes[13] == b'9' {
                b'0'
            } else {
                bytes[13] + 1
            };
            let changed = String::from_utf8(bytes).unwrap();
            assert_eq!(
                UnifiedAddressNumber::parse(&changed).unwrap_err().code(),
                "invalid_check_digit",
                "{changed}"
            );
        }
        assert!(UnifiedAddressNumber::from_serial(0).is_err());
    }

    #[test]
    fn codes_are_validated() {
        assert!(ProcedureCode::parse("JT01010000000214").is_ok());
        assert!(ProcedureCode::parse("TM01010000000214").is_err());
        assert!(ItemCode::parse("TM00000000000002").is_ok());
        assert!(ItemCode::parse("TM0000000000002").is_err());
        assert!(AffairCode::parse("JM01000000121000").is_ok());
        assert!(AgencyCode::parse("0112345678900000").is_ok());
        assert!(AgencyCode::parse("011234567890000a").is_err());
        assert!(BusinessNumber::parse("000000000012345").is_ok());
        assert!(BusinessNumber::parse("").is_err());
        assert!(BusinessNumber::parse("12 34").is_err());
        assert!(SystemId::parse("kodomo-iryo").is_ok());
        assert!(SystemId::parse("Kodomo").is_err());
    }
}

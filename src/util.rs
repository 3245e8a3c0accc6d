//! Small shared helpers: time in JST, sortable unique ids, request hashing.

use std::time::{SystemTime, UNIX_EPOCH};

use time::{OffsetDateTime, UtcOffset};

/// Japan Standard Time, the platform's and the city's clock.
pub const JST: UtcOffset = match UtcOffset::from_hms(9, 0, 0) {
    Ok(o) => o,
    Err(_) => UtcOffset::UTC,
};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// RFC 3339 in JST with milliseconds, e.g. `2026-11-26T21:00:00.123+09:00`.
pub fn rfc3339_jst(ms: u64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(JST);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+09:00",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Parses an RFC 3339 time into milliseconds since the epoch.
pub fn parse_rfc3339_ms(s: &str) -> Option<u64> {
    let t = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Minute of the day in JST.
pub fn jst_minute_of_day(ms: u64) -> u32 {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(JST);
    u32::from(t.hour()) * 60 + u32::from(t.minute())
}

/// Milliseconds from `now` until the window `[open, close)` (minutes of the JST day) is
/// open; 0 when it is open now.
pub fn ms_until_open(now: u64, (open, close): (u32, u32)) -> u64 {
    let minute = jst_minute_of_day(now);
    if minute >= open && minute < close {
        return 0;
    }
    let into_minute = now % 60_000;
    let minutes = if minute < open {
        open - minute
    } else {
        24 * 60 - minute + open
    };
    u64::from(minutes) * 60_000 - into_minute
}

/// 80 bits from the operating system's CSPRNG.
fn random80() -> [u8; 10] {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 10];
    // The system RNG does not fail on Linux once booted; if it ever did, a process-wide
    // counter still keeps ids unique (they would only become guessable).
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        static FALLBACK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = FALLBACK.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        bytes[..8].copy_from_slice(&n.to_be_bytes());
    }
    bytes
}

/// A time-ordered unique id: `prefix` then 26 Crockford base-32 characters (48-bit
/// millisecond time, 80 random bits from the CSPRNG), like a ULID. Letters and digits only,
/// so it is also a valid platform message id and record id.
pub fn new_id(prefix: &str) -> String {
    let (ms, random) = next_time_and_random();
    format!("{prefix}{}", renkei_ids::time_ordered_text(ms, random))
}

/// A new inquiry id (`IQ` + 26 characters).
pub fn new_inquiry_id() -> renkei_ids::InquiryId {
    let (ms, random) = next_time_and_random();
    renkei_ids::InquiryId::from_time_and_random(ms, random)
}

/// The time and random part of the last id this process made.
static LAST_ID: std::sync::Mutex<(u64, u128)> = std::sync::Mutex::new((0, 0));

/// The time and random part of a new id, monotonic within the process (as ULID's monotonic
/// mode): an id made in the same millisecond as the last one, or after the clock stepped
/// back, takes the last one's random part plus one, so this process's ids sort in the order
/// they were made — the "newest first" listings rely on it. The random part of the first id
/// of each millisecond is fresh from the CSPRNG.
fn next_time_and_random() -> (u64, [u8; 10]) {
    let now = now_ms();
    let mut fresh = [0u8; 16];
    fresh[6..].copy_from_slice(&random80());
    let fresh = u128::from_be_bytes(fresh);
    let mut last = LAST_ID.lock().unwrap_or_else(|e| e.into_inner());
    let next = if now > last.0 {
        (now, fresh)
    } else if last.1 + 1 < 1u128 << 80 {
        (last.0, last.1 + 1)
    } else {
        // The random part ran out within one millisecond: borrow the next one.
        (last.0 + 1, fresh)
    };
    *last = next;
    let mut random = [0u8; 10];
    random.copy_from_slice(&next.1.to_be_bytes()[6..]);
    (next.0, random)
}

/// Removes any run of 6 or more digits from text that may echo input (a parser's message can
/// quote a number it could not read): an individual number must never come back in an
/// error, whatever shape the client sent it in.
pub fn scrub(s: &str) -> String {
    scrub_runs(s, 6)
}

/// `s` with every run of `min_run` or more ASCII digits replaced by `…`.
pub fn scrub_runs(s: &str, min_run: usize) -> String {
    let mut out = String::with_capacity(s.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= min_run {
            out.push('…');
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in s.chars() {
        if c.is_ascii_digit() {
            run.push(c);
            continue;
        }
        flush(&mut run, &mut out);
        out.push(c);
    }
    flush(&mut run, &mut out);
    out
}

/// SHA-256 of bytes, hex.
pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_one_process_sort_in_the_order_they_were_made() {
        // Thousands within a few milliseconds: many share their millisecond.
        let ids: Vec<String> = (0..5000).map(|_| new_id("T")).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids out of order");
        let inquiries: Vec<String> = (0..2000).map(|_| new_inquiry_id().to_string()).collect();
        assert!(inquiries.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn ids_are_unique_sortable_and_alphanumeric() {
        let a = new_id("IQ");
        let b = new_id("IQ");
        assert_ne!(a, b);
        assert_eq!(a.len(), 28);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert!(renkei_ids::InquiryId::parse(&a).is_ok());
        assert_ne!(new_inquiry_id(), new_inquiry_id());
    }

    #[test]
    fn scrub_removes_long_digit_runs_only() {
        assert_eq!(
            scrub("invalid type: integer `621498320257`, expected a string"),
            "invalid type: integer `…`, expected a string"
        );
        assert_eq!(scrub("line 12 column 5"), "line 12 column 5");
        assert_eq!(scrub("123456"), "…");
    }

    #[test]
    fn jst_formatting_and_window() {
        // 2026-11-26T00:00:00Z is 09:00 JST.
        let ms = 1_795_651_200_000;
        assert_eq!(rfc3339_jst(ms), "2026-11-26T09:00:00.000+09:00");
        assert_eq!(parse_rfc3339_ms("2026-11-26T09:00:00.000+09:00"), Some(ms));
        assert_eq!(jst_minute_of_day(ms), 540);
        assert_eq!(ms_until_open(ms, (480, 1260)), 0);
        assert_eq!(ms_until_open(ms, (600, 1260)), 60 * 60_000);
        assert_eq!(ms_until_open(ms, (0, 480)), (24 * 60 - 540) * 60_000);
    }
}

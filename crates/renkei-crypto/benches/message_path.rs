//! Benchmark of the message path (`cargo bench -p renkei-crypto`): ops/s for sign, verify, seal, open, seal+sign and open+verify on a 2 KiB payload, median of 5 rounds, one thread.
//!
//! Plain `fn main` (`harness = false`): no benchmark framework to build, and the figures
//! are the same operations the gateway does per message. "seal+sign" is what a sender does
//! (`seal_for`, then `signature_header` over `enc || ciphertext` as the body stand-in);
//! "open+verify" is what a receiver does (`SignatureHeader::parse`, verify, `open_from`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use renkei_crypto::envelope::{open_from, seal_for, signature_header, SignatureHeader};
use renkei_crypto::{CryptoError, OpeningKey, Sealed, SigningKey};

/// Payload size: 2 KiB, a typical sealed inquiry answer.
const DEFAULT_PAYLOAD_LEN: usize = 2048;
/// Rounds per operation; the median is reported so one noisy round (the machine's
/// 2 cores are shared) does not move the figure.
const DEFAULT_ROUNDS: usize = 5;
/// Time per round and operation: long enough for thousands of operations, short enough
/// that the whole run (6 operations × 5 rounds) stays under 15 s.
const DEFAULT_ROUND_TIME: Duration = Duration::from_millis(400);
/// Agency code in the signature headers (any valid code will do).
const BENCH_AGENCY: &str = "0112345678900000";
/// Message type bound into the HPKE info.
const BENCH_MESSAGE_TYPE: &str = "InquiryRequest";
/// Message id bound into the HPKE info.
const BENCH_MESSAGE_ID: &str = "msg-0";

/// Runs `op` for at least `budget`; returns operations per second.
fn rate(
    budget: Duration,
    mut op: impl FnMut() -> Result<(), CryptoError>,
) -> Result<f64, CryptoError> {
    let start = Instant::now();
    let mut n: u64 = 0;
    while start.elapsed() < budget {
        op()?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Median of `DEFAULT_ROUNDS` rounds of [`rate`].
fn median_rate(mut op: impl FnMut() -> Result<(), CryptoError>) -> Result<f64, CryptoError> {
    // One untimed warm-up round (caches, CPU frequency).
    rate(DEFAULT_ROUND_TIME / 4, &mut op)?;
    let mut rounds = Vec::with_capacity(DEFAULT_ROUNDS);
    for _ in 0..DEFAULT_ROUNDS {
        rounds.push(rate(DEFAULT_ROUND_TIME, &mut op)?);
    }
    rounds.sort_by(f64::total_cmp);
    Ok(rounds[rounds.len() / 2])
}

fn body(s: &Sealed) -> Vec<u8> {
    [s.enc.as_slice(), s.ciphertext.as_slice()].concat()
}

fn main() -> Result<(), CryptoError> {
    let signer = SigningKey::generate()?;
    let verifier = signer.verifying_key();
    let recipient = OpeningKey::generate()?;
    let pk = recipient.public_key();
    let payload: Vec<u8> = (0..DEFAULT_PAYLOAD_LEN).map(|i| (i % 251) as u8).collect();

    let sig = signer.sign(&payload)?;
    let sealed = seal_for(&pk, BENCH_MESSAGE_TYPE, BENCH_MESSAGE_ID, &payload)?;
    let wire = body(&sealed);
    let header = signature_header(BENCH_AGENCY, 1, &signer, &wire)?;

    let sign = median_rate(|| signer.sign(black_box(&payload)).map(drop))?;
    let verify = median_rate(|| verifier.verify(black_box(&payload), &sig))?;
    let seal = median_rate(|| {
        seal_for(
            &pk,
            BENCH_MESSAGE_TYPE,
            BENCH_MESSAGE_ID,
            black_box(&payload),
        )
        .map(drop)
    })?;
    let open = median_rate(|| {
        open_from(
            &recipient,
            BENCH_MESSAGE_TYPE,
            BENCH_MESSAGE_ID,
            black_box(&sealed),
        )
        .map(drop)
    })?;
    let seal_sign = median_rate(|| {
        let s = seal_for(
            &pk,
            BENCH_MESSAGE_TYPE,
            BENCH_MESSAGE_ID,
            black_box(&payload),
        )?;
        signature_header(BENCH_AGENCY, 1, &signer, &body(&s)).map(drop)
    })?;
    let open_verify = median_rate(|| {
        let h = SignatureHeader::parse(black_box(&header))?;
        h.verify(&verifier, &wire)?;
        let pt = open_from(&recipient, BENCH_MESSAGE_TYPE, BENCH_MESSAGE_ID, &sealed)?;
        if pt.len() == DEFAULT_PAYLOAD_LEN {
            Ok(())
        } else {
            Err(CryptoError::Decrypt)
        }
    })?;

    println!(
        "message path, payload {DEFAULT_PAYLOAD_LEN} bytes, one thread, median of {DEFAULT_ROUNDS} rounds of {} ms",
        DEFAULT_ROUND_TIME.as_millis()
    );
    println!("{:<26} {:>12} {:>10}", "operation", "ops/s", "vs sign");
    for (name, v) in [
        ("sign (ECDSA P-256)", sign),
        ("verify (ECDSA P-256)", verify),
        ("seal (HPKE)", seal),
        ("open (HPKE)", open),
        ("seal+sign (send)", seal_sign),
        ("open+verify (receive)", open_verify),
    ] {
        println!("{name:<26} {v:>12.0} {:>10.3}", v / sign);
    }
    Ok(())
}

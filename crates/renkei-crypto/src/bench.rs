//! Throughput measurement of the message path: sign, sign+seal, open+verify.

use std::time::{Duration, Instant};

use crate::envelope::{open_from, seal_for, signature_header, SignatureHeader};
use crate::{CryptoError, OpeningKey, SigningKey};

/// Agency code used for the benchmark's signature headers (any valid code will do).
const BENCH_AGENCY: &str = "0112345678900000";
/// Message type used for the benchmark's HPKE info.
const BENCH_MESSAGE_TYPE: &str = "InquiryRequest";
/// Fewest iterations per phase, so a tiny duration still yields a figure.
const MIN_ITERATIONS: u64 = 10;

/// Figures from one [`bench_message_path`] run (operations per second, single thread).
#[derive(Clone, Debug, PartialEq)]
pub struct BenchReport {
    /// Payload size in bytes.
    pub payload_len: usize,
    /// Raw ring ECDSA P-256 signatures per second over the payload.
    pub raw_signs_per_s: f64,
    /// Raw ring ECDSA P-256 verifications per second over the payload.
    pub raw_verifies_per_s: f64,
    /// HPKE seals per second alone (`seal_for`, no signature).
    pub seal_only_per_s: f64,
    /// HPKE opens per second alone (`open_from`, no verification).
    pub open_only_per_s: f64,
    /// Messages per second through HPKE seal + `Renkei-Signature` over the sealed body.
    pub sign_seal_per_s: f64,
    /// Messages per second through header parse + verify + HPKE open.
    pub open_verify_per_s: f64,
    /// The error code that stopped the run early, if any (figures not reached are 0).
    pub failure: Option<&'static str>,
}

impl BenchReport {
    /// sign+seal throughput relative to raw signing.
    pub fn sign_seal_ratio(&self) -> f64 {
        self.sign_seal_per_s / self.raw_signs_per_s
    }

    /// open+verify throughput relative to raw signing.
    pub fn open_verify_ratio(&self) -> f64 {
        self.open_verify_per_s / self.raw_signs_per_s
    }
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "message path, payload {} bytes, one thread",
            self.payload_len
        )?;
        writeln!(
            f,
            "{:<28} {:>12} {:>10}",
            "operation", "per second", "vs sign"
        )?;
        for (name, v) in [
            ("raw ECDSA P-256 sign", self.raw_signs_per_s),
            ("raw ECDSA P-256 verify", self.raw_verifies_per_s),
            ("HPKE seal only", self.seal_only_per_s),
            ("HPKE open only", self.open_only_per_s),
            ("seal + sign (send)", self.sign_seal_per_s),
            ("verify + open (receive)", self.open_verify_per_s),
        ] {
            writeln!(f, "{name:<28} {v:>12.0} {:>10.3}", v / self.raw_signs_per_s)?;
        }
        if let Some(code) = self.failure {
            writeln!(f, "run stopped early: {code}")?;
        }
        Ok(())
    }
}

/// Runs `op` repeatedly for at least `budget` (and [`MIN_ITERATIONS`] times); returns ops/s.
fn rate(
    budget: Duration,
    mut op: impl FnMut() -> Result<(), CryptoError>,
) -> Result<f64, CryptoError> {
    let start = Instant::now();
    let mut n: u64 = 0;
    while n < MIN_ITERATIONS || start.elapsed() < budget {
        op()?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Measures, in one run with fresh keys, the four phases of the message path for a
/// `payload_len`-byte payload, each for a sixth of `duration`.
///
/// "send" = `seal_for` the payload, then `signature_header` over `enc || ciphertext`
/// (the body stand-in); "receive" = `SignatureHeader::parse` + verify + `open_from`.
/// A failure (only possible if the system RNG fails) ends the run; its code is in
/// [`BenchReport::failure`] and the phases not measured read 0.
pub fn bench_message_path(payload_len: usize, duration: Duration) -> BenchReport {
    let mut report = BenchReport {
        payload_len,
        raw_signs_per_s: 0.0,
        raw_verifies_per_s: 0.0,
        seal_only_per_s: 0.0,
        open_only_per_s: 0.0,
        sign_seal_per_s: 0.0,
        open_verify_per_s: 0.0,
        failure: None,
    };
    if let Err(e) = run(&mut report, duration) {
        report.failure = Some(e.code());
    }
    report
}

fn run(report: &mut BenchReport, duration: Duration) -> Result<(), CryptoError> {
    let payload_len = report.payload_len;
    let phase = duration / 6;
    let signer = SigningKey::generate()?;
    let verifier = signer.verifying_key();
    let recipient = OpeningKey::generate()?;
    let pk = recipient.public_key();
    let payload: Vec<u8> = (0..payload_len).map(|i| (i % 251) as u8).collect();

    let sig = signer.sign(&payload)?;
    report.raw_signs_per_s = rate(phase, || signer.sign(&payload).map(drop))?;
    report.raw_verifies_per_s = rate(phase, || verifier.verify(&payload, &sig))?;

    let sealed0 = seal_for(&pk, BENCH_MESSAGE_TYPE, "msg-0", &payload)?;
    report.seal_only_per_s = rate(phase, || {
        seal_for(&pk, BENCH_MESSAGE_TYPE, "msg-0", &payload).map(drop)
    })?;
    report.open_only_per_s = rate(phase, || {
        open_from(&recipient, BENCH_MESSAGE_TYPE, "msg-0", &sealed0).map(drop)
    })?;

    let body = |s: &crate::Sealed| [s.enc.as_slice(), s.ciphertext.as_slice()].concat();
    let mut n: u64 = 0;
    report.sign_seal_per_s = rate(phase, || {
        n += 1;
        let id = format!("msg-{n}");
        let sealed = seal_for(&pk, BENCH_MESSAGE_TYPE, &id, &payload)?;
        signature_header(BENCH_AGENCY, 1, &signer, &body(&sealed)).map(drop)
    })?;

    let sealed = seal_for(&pk, BENCH_MESSAGE_TYPE, "msg-0", &payload)?;
    let wire = body(&sealed);
    let header = signature_header(BENCH_AGENCY, 1, &signer, &wire)?;
    report.open_verify_per_s = rate(phase, || {
        let h = SignatureHeader::parse(&header)?;
        h.verify(&verifier, &wire)?;
        let pt = open_from(&recipient, BENCH_MESSAGE_TYPE, "msg-0", &sealed)?;
        if pt.len() == payload_len {
            Ok(())
        } else {
            Err(CryptoError::Decrypt)
        }
    })?;

    Ok(())
}

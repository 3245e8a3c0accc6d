//! Randomness: the system RNG (via ring) and a seeded generator for APIs that cannot fail.

use hpke::rand_core::{CryptoRng, RngCore};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

/// Fills `buf` from the operating system's CSPRNG.
pub(crate) fn fill(buf: &mut [u8]) -> Result<(), CryptoError> {
    SystemRandom::new().fill(buf).map_err(|_| CryptoError::Rng)
}

use crate::CryptoError;

/// Returns `N` fresh random bytes, zeroized on drop.
pub(crate) fn random_array<const N: usize>() -> Result<Zeroizing<[u8; N]>, CryptoError> {
    let mut out = Zeroizing::new([0u8; N]);
    fill(out.as_mut())?;
    Ok(out)
}

/// A `rand_core` generator for the `hpke` crate, whose `RngCore::fill_bytes`
/// cannot report failure.
///
/// It is seeded with 32 bytes from the system RNG when created (the fallible
/// step, reported as [`CryptoError::Rng`]) and expands them as
/// `SHA-256(seed || counter_be64)` blocks. HPKE encapsulation draws exactly 32
/// bytes (one block), so in practice every output byte is the seed hashed once;
/// the expansion only exists so that a larger draw can never panic.
pub(crate) struct SeededRng {
    seed: Zeroizing<[u8; 32]>,
    counter: u64,
}

impl SeededRng {
    /// Seeds a new generator from the system RNG.
    pub(crate) fn new() -> Result<Self, CryptoError> {
        Ok(SeededRng {
            seed: random_array::<32>()?,
            counter: 0,
        })
    }

    fn block(&mut self) -> Zeroizing<[u8; 32]> {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(self.seed.as_ref());
        ctx.update(&self.counter.to_be_bytes());
        self.counter = self.counter.wrapping_add(1);
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }
}

impl RngCore for SeededRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(32) {
            let block = self.block();
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }
}

impl CryptoRng for SeededRng {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_rng_blocks_differ_and_are_not_the_seed() {
        let mut r = SeededRng::new().unwrap();
        let mut a = [0u8; 40];
        r.fill_bytes(&mut a);
        let mut b = [0u8; 40];
        r.fill_bytes(&mut b);
        assert_ne!(a, b);
        assert_ne!(&a[..32], r.seed.as_ref());
    }
}

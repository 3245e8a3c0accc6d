use std::time::Instant;
use ring::agreement;
#[test]
#[ignore]
fn breakdown() {
    let rng = ring::rand::SystemRandom::new();
    let k = renkei_crypto::OpeningKey::generate().unwrap();
    let pk = k.public_key().to_bytes();
    let n = 3000;
    let t = Instant::now();
    for _ in 0..n { let e = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng).unwrap(); let p = e.compute_public_key().unwrap(); std::hint::black_box(p); }
    let keygen = t.elapsed().as_secs_f64() / n as f64;
    let t = Instant::now();
    for _ in 0..n { let e = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng).unwrap(); let p = e.compute_public_key().unwrap(); std::hint::black_box(&p);
      agreement::agree_ephemeral(e, &agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, &pk), |z| std::hint::black_box(z.len())).unwrap(); }
    let full = t.elapsed().as_secs_f64() / n as f64;
    let sk = p256::SecretKey::from_slice(&k.to_bytes()).unwrap();
    let pe = p256::PublicKey::from_sec1_bytes(&pk).unwrap();
    let t = Instant::now();
    for _ in 0..n { std::hint::black_box(p256::ecdh::diffie_hellman(sk.to_nonzero_scalar(), pe.as_affine())); }
    let p256dh = t.elapsed().as_secs_f64() / n as f64;
    let pt = vec![7u8; 2048];
    let t = Instant::now();
    for _ in 0..n { std::hint::black_box(renkei_crypto::seal(&k.public_key(), b"i", b"a", &pt).unwrap()); }
    let seal = t.elapsed().as_secs_f64() / n as f64;
    let s = renkei_crypto::seal(&k.public_key(), b"i", b"a", &pt).unwrap();
    let t = Instant::now();
    for _ in 0..n { std::hint::black_box(k.open(&s, b"i", b"a").unwrap()); }
    let open = t.elapsed().as_secs_f64() / n as f64;
    let sg = renkei_crypto::SigningKey::generate().unwrap();
    let t = Instant::now();
    for _ in 0..n { std::hint::black_box(sg.sign(&pt).unwrap()); }
    let sign = t.elapsed().as_secs_f64() / n as f64;
    println!("us: ring keygen {:.1} ring keygen+agree {:.1} p256 dh {:.1} seal {:.1} open {:.1} sign {:.1}", keygen*1e6, full*1e6, p256dh*1e6, seal*1e6, open*1e6, sign*1e6);
}

//! The limits that bound the bench's figures, measured on this machine in the same run:
//! raw ring P-256 signatures/s on every core, `fdatasync`/s in the gateway's data folder,
//! sled batch commits/s through `renkei_store` directly (group commit, as many committers as
//! clients), and an HTTPS no-op handler's requests/s on the gateway's own TLS set-up (rustls +
//! hyper, in this process, the same client count). Also the CPU one linkage record costs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use renkei_store::{Batch, Store, Tree};
use serde::Serialize;

use super::load::Clients;
use super::procs::Deployment;
use super::{BenchError, Plan};

/// Bytes each measured signature covers: about one platform message.
const SIGNED_BYTES: usize = 2048;
/// Bytes each `fdatasync` follows: one small record's worth.
const SYNCED_BYTES: usize = 512;
/// Sizes of the puts in each measured sled batch: the shape of one accept's writes (the
/// sealed inquiry, its idempotency key, its schedule entry, its system index).
const BATCH_PUTS: [usize; 4] = [700, 80, 0, 0];

/// What limits each figure, as measured.
#[derive(Debug, Clone, Serialize)]
pub struct Limits {
    /// ECDSA P-256 (SHA-256) signatures/s with ring, one thread per core.
    pub ring_p256_signatures_per_sec: f64,
    /// `write` + `fdatasync` rounds/s on one file in the data folder.
    pub fdatasync_per_sec: f64,
    /// One `fdatasync`, in ms (1000 / `fdatasync_per_sec`): the floor of a durable answer.
    pub fdatasync_ms: f64,
    /// Batches/s committed durably by `renkei_store`'s sled backend, with as many concurrent
    /// committers as the closed loop has clients.
    pub sled_batch_writes_per_sec: f64,
    /// Requests/s an HTTPS no-op handler answers on the gateway's TLS set-up, closed loop,
    /// as many clients as the closed loop.
    pub https_noop_requests_per_sec: f64,
}

impl Limits {
    /// What bounds the accept rate: the lower of the store's commits and the TLS no-op.
    pub fn accept_bound(&self) -> (&'static str, f64) {
        if self.sled_batch_writes_per_sec < self.https_noop_requests_per_sec {
            ("sled_batch_writes_per_sec", self.sled_batch_writes_per_sec)
        } else {
            (
                "https_noop_requests_per_sec",
                self.https_noop_requests_per_sec,
            )
        }
    }

    /// What bounds a durable answer's latency: one `fdatasync`.
    pub fn sync_bound(&self) -> (&'static str, f64) {
        ("fdatasync_ms", self.fdatasync_ms)
    }

    /// What bounds end to end: public-key work.
    pub fn sign_bound(&self) -> (&'static str, f64) {
        (
            "ring_p256_signatures_per_sec",
            self.ring_p256_signatures_per_sec,
        )
    }
}

/// The machine's cores (as the process may use them).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Measures every limit, `plan.limit_seconds` each.
pub async fn measure(d: &Deployment, plan: &Plan) -> Result<Limits, BenchError> {
    let window = Duration::from_secs_f64(plan.limit_seconds);
    let signatures = tokio::task::spawn_blocking(move || signatures_per_sec(window)).await??;
    let file = d.data_dir.join("bench-fdatasync.tmp");
    let fdatasync = tokio::task::spawn_blocking(move || fdatasync_per_sec(&file, window)).await??;
    let sled = sled_batches_per_sec(d, plan.clients, window).await?;
    let https = https_noop_per_sec(d, plan.clients, window).await?;
    Ok(Limits {
        ring_p256_signatures_per_sec: signatures,
        fdatasync_per_sec: fdatasync,
        fdatasync_ms: 1000.0 / fdatasync.max(f64::MIN_POSITIVE),
        sled_batch_writes_per_sec: sled,
        https_noop_requests_per_sec: https,
    })
}

fn signatures_per_sec(window: Duration) -> Result<f64, BenchError> {
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING as ALG};
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ALG, &rng).map_err(|_| BenchError::Crypto("key"))?;
    let key = EcdsaKeyPair::from_pkcs8(&ALG, pkcs8.as_ref(), &rng)
        .map_err(|_| BenchError::Crypto("key"))?;
    let message = vec![0x5a_u8; SIGNED_BYTES];
    let count = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..cores() {
            s.spawn(|| {
                let mut n = 0u64;
                while started.elapsed() < window {
                    match key.sign(&rng, &message) {
                        Ok(_) => n += 1,
                        Err(_) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                }
                count.fetch_add(n, Ordering::Relaxed);
            });
        }
    });
    if failed.load(Ordering::Relaxed) > 0 {
        return Err(BenchError::Crypto("signing"));
    }
    Ok(count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

fn fdatasync_per_sec(file: &std::path::Path, window: Duration) -> Result<f64, BenchError> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::create(file).map_err(BenchError::io("making the fdatasync file"))?;
    let block = vec![0xa5_u8; SYNCED_BYTES];
    let started = Instant::now();
    let mut n = 0u64;
    let result = loop {
        if started.elapsed() >= window {
            break Ok(n as f64 / started.elapsed().as_secs_f64());
        }
        if let Err(e) = f.write_all_at(&block, 0).and_then(|()| f.sync_data()) {
            break Err(BenchError::Io {
                what: "fdatasync in the data folder".into(),
                source: e,
            });
        }
        n += 1;
    };
    drop(f);
    let _ = std::fs::remove_file(file);
    result
}

async fn sled_batches_per_sec(
    d: &Deployment,
    committers: usize,
    window: Duration,
) -> Result<f64, BenchError> {
    // Beside the data folder (the same file system), removed afterwards so that the disk
    // figure counts the gateway's store only.
    let dir = d.dir.join("bench-sled");
    let store: Arc<dyn Store> = renkei_store::sled_store::SledStore::open(
        &dir,
        renkei_store::sled_store::Durability::Fsync,
    )?;
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(committers);
    for c in 0..committers {
        let (store, count) = (store.clone(), count.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while started.elapsed() < window {
                let mut b = Batch::new();
                for (t, size) in [Tree::Inquiries, Tree::Idempotency, Tree::Due, Tree::Batches]
                    .into_iter()
                    .zip(BATCH_PUTS)
                {
                    b.put(t, format!("{c:06}-{i:012}"), vec![0x33_u8; size]);
                }
                i += 1;
                store.commit(b).await?;
                count.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), renkei_store::StoreError>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let rate = count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(rate)
}

async fn https_noop_per_sec(
    d: &Deployment,
    clients: usize,
    window: Duration,
) -> Result<f64, BenchError> {
    let tls = crate::tls::server_config(
        &d.dir.join("ca.pem"),
        &d.dir.join("gateway/server.pem"),
        &d.dir.join("gateway/server-key.pem"),
    )?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(BenchError::io("binding the no-op listener"))?;
    let addr = listener
        .local_addr()
        .map_err(BenchError::io("the no-op listener's address"))?;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(crate::tls::serve(
        listener,
        tls,
        crate::tls::ServerLimits::default(),
        |_peer, req: hyper::Request<hyper::body::Incoming>| async move {
            // Read the body, as a real handler does, then answer nothing.
            let _ = req.into_body().collect().await;
            Ok(crate::tls::HttpResponse::new(axum::body::Body::empty()))
        },
        shutdown,
    ));
    let base = format!("https://{addr}");
    let made = Clients::new(d).connect(&base, clients).await?;
    let count = Arc::new(AtomicU64::new(0));
    let body = Bytes::from_static(br#"{"business_number":"000000000012345","procedure":"JT01010000000214","item":"TM00000000000002","conditions":{"fiscal_year":2026}}"#);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for client in made {
        let (base, count, body) = (base.clone(), count.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            while started.elapsed() < window {
                let ok = client
                    .send(
                        hyper::Method::POST,
                        &format!("{base}/noop"),
                        &[("content-type", "application/json")],
                        body.clone(),
                    )
                    .await
                    .is_ok_and(|r| r.status == 200);
                if ok {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let rate = count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    let _ = stop.send(true);
    let _ = server.await;
    Ok(rate)
}

/// Seconds of CPU one inquiry's "queued" record takes: built, validated, canonically encoded
/// and appended to a hash chain (the work the store's writer does per record).
pub fn record_cost_secs() -> f64 {
    const N: u32 = 20_000;
    let mut chain = renkei_records::ChainState::new();
    let start = Instant::now();
    for i in 0..N {
        let mut r = crate::records::base(
            renkei_records::RecordKind::Inquiry,
            renkei_records::RecordResult::Accepted,
        );
        r.reason = Some("queued".into());
        r.reference = Some(format!("IQ{i:026}"));
        // What `records::append` does (validate and encode), then the writer's chain step.
        if let Ok(bytes) = renkei_records::checked_canonical_bytes(&r) {
            chain.append(&bytes);
        }
    }
    start.elapsed().as_secs_f64() / f64::from(N)
}

//! Mutual TLS for both directions: the server side that turns a client certificate into a
//! [`Peer`] identity, and the HTTPS client the gateway, the staff commands and the tests use.
//!
//! Rationale for defaults: TLS 1.2 and 1.3 with rustls' safe defaults and the ring provider
//! (one provider, installed explicitly, so rustls never has to guess); client certificates are
//! mandatory and must chain to the deployment's CA; the identity is the certificate's common
//! name, looked up in the config, and its SHA-256 fingerprint goes into staff records.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// A TLS handshake that takes longer than this is dropped (slowloris protection).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response body the client reads (platform messages are bounded at 1 MiB; batch
/// result downloads at the batch limit).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// TLS set-up and transport failures.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {detail}")]
    Material { path: String, detail: String },
    #[error("tls configuration: {0}")]
    Config(String),
    #[error("request failed: {0}")]
    Transport(String),
    #[error("request timed out")]
    Timeout,
}

/// Who is on the other end of a connection, from its client certificate.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The certificate's common name.
    pub name: String,
    /// SHA-256 of the certificate (hex), for staff records.
    pub fingerprint: String,
    /// The client's address.
    pub addr: SocketAddr,
}

/// The one crypto provider renkei uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Installs the ring provider as the process default (harmless if already installed).
pub fn install_default_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn material(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Material {
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

/// Reads every certificate in a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| material(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| material(path, e))?;
    if certs.is_empty() {
        return Err(material(path, "no certificate found"));
    }
    Ok(certs)
}

/// Reads a private key from a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| material(path, e))
}

fn roots(ca: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut store = RootCertStore::empty();
    for c in load_certs(ca)? {
        store.add(c).map_err(|e| material(ca, e))?;
    }
    Ok(Arc::new(store))
}

/// Server config demanding a client certificate issued by `ca`.
pub fn server_config(ca: &Path, cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let p = provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(ca)?, p.clone())
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let mut cfg = ServerConfig::builder_with_provider(p)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(load_certs(cert)?, load_key(key)?)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Client config trusting `ca` and presenting `cert`/`key`.
pub fn client_config(ca: &Path, cert: &Path, key: &Path) -> Result<ClientConfig, TlsError> {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots(ca)?)
        .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
        .map_err(|e| TlsError::Config(e.to_string()))
}

fn peer_from(certs: Option<&[CertificateDer<'_>]>, addr: SocketAddr) -> Option<Peer> {
    let leaf = certs?.first()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let name = parsed
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    let fingerprint = hex::encode(ring::digest::digest(&ring::digest::SHA256, leaf.as_ref()));
    Some(Peer {
        name,
        fingerprint,
        addr,
    })
}

/// The response type servers produce.
pub type HttpResponse = Response<axum::body::Body>;

/// Serves HTTPS with mutual TLS on `listener` until `shutdown` turns true. Each request is
/// handed to `handle` with the caller's [`Peer`]; an `Err` from `handle` closes the
/// connection without an answer (the simulator uses this to drop connections).
pub async fn serve<F, Fut>(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    handle: F,
    mut shutdown: watch::Receiver<bool>,
) where
    F: Fn(Peer, Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<HttpResponse, std::io::Error>> + Send + 'static,
{
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (tcp, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(error) => {
                    tracing::warn!(message = "Accept failed.", %error);
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let handle = handle.clone();
        tokio::spawn(async move {
            let stream =
                match tokio::time::timeout(DEFAULT_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(error)) => {
                        tracing::debug!(message = "TLS handshake refused.", %error, %addr);
                        return;
                    }
                    Err(_) => return,
                };
            let Some(peer) = peer_from(stream.get_ref().1.peer_certificates(), addr) else {
                tracing::debug!(message = "Client certificate without a common name.", %addr);
                return;
            };
            let svc = hyper::service::service_fn(move |req| handle(peer.clone(), req));
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(error) = builder.serve_connection(TokioIo::new(stream), svc).await {
                tracing::debug!(message = "Connection ended with an error.", %error);
            }
        });
    }
}

/// A mutual-TLS HTTPS client with a connection pool.
#[derive(Clone)]
pub struct HttpsClient {
    inner: hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<HttpConnector>,
        Full<Bytes>,
    >,
    timeout: Duration,
}

/// A response read in full.
#[derive(Debug)]
pub struct ClientResponse {
    pub status: hyper::StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl HttpsClient {
    /// A client trusting `ca` and authenticating with `cert`/`key`.
    pub fn new(ca: &Path, cert: &Path, key: &Path, timeout: Duration) -> Result<Self, TlsError> {
        let cfg = client_config(ca, cert, key)?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(cfg)
            .https_only()
            .enable_http1()
            .build();
        let inner = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Self { inner, timeout })
    }

    /// Sends one request and reads the whole answer.
    pub async fn send(
        &self,
        method: hyper::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<ClientResponse, TlsError> {
        let mut b = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b
            .body(Full::new(body))
            .map_err(|e| TlsError::Transport(e.to_string()))?;
        let fut = async {
            let resp = self
                .inner
                .request(req)
                .await
                .map_err(|e| TlsError::Transport(format!("{e:?}")))?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, DEFAULT_MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| TlsError::Transport(e.to_string()))?
                .to_bytes();
            Ok(ClientResponse {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| TlsError::Timeout)?
    }
}

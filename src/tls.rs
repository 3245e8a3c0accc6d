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
use std::time::{Duration, Instant};

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
/// A request's headers must arrive within this long; hyper also applies it to an idle
/// keep-alive connection waiting for its next request, so a silent connection is closed
/// after this long whatever state it is in.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// At most this many connections at once, if the descriptor limit allows more: far above
/// what a city's business systems open, low enough to bound memory per connection.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Descriptors kept free for the store, log files and outgoing connections to the platform,
/// so that a flood of incoming connections cannot starve them.
pub const DESCRIPTOR_RESERVE: usize = 256;
/// First pause after a failed accept (e.g. out of descriptors); doubles up to the maximum
/// instead of retrying at once.
const ACCEPT_BACKOFF_FIRST: Duration = Duration::from_millis(10);
/// Longest pause after failed accepts.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// A repeated warning (failed accepts) is logged at most this often, with a count.
const REPEATED_LOG_EVERY: Duration = Duration::from_secs(10);

/// Limits of a server's connections.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    pub header_read_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: default_max_connections(),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
        }
    }
}

/// The soft limit on open descriptors of this process, from `/proc/self/limits`.
pub fn open_files_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// [`DEFAULT_MAX_CONNECTIONS`], or fewer when the descriptor limit minus the reserve is lower.
pub fn default_max_connections() -> usize {
    open_files_limit().map_or(DEFAULT_MAX_CONNECTIONS, connections_for_limit)
}

/// The connection cap for a descriptor limit of `limit`: the limit less the reserve, where the
/// reserve is [`DESCRIPTOR_RESERVE`] or half the limit when that is smaller — so a small limit
/// still leaves room for many clients, not one.
fn connections_for_limit(limit: usize) -> usize {
    let reserve = DESCRIPTOR_RESERVE.min(limit / 2);
    DEFAULT_MAX_CONNECTIONS.min(limit.saturating_sub(reserve).max(1))
}
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
    /// Nothing answers at the address (connection refused, host or network unreachable).
    #[error("cannot connect: {0}")]
    Unreachable(String),
}

/// A client error as plain text (each cause's message, outermost first), and whether it is
/// that nothing answers at the address.
pub fn client_error(e: &hyper_util::client::legacy::Error) -> TlsError {
    use std::error::Error as _;
    use std::io::ErrorKind;
    let mut parts = vec![e.to_string()];
    let mut unreachable = false;
    let mut cause = e.source();
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            unreachable |= matches!(
                io.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::HostUnreachable
                    | ErrorKind::NetworkUnreachable
                    | ErrorKind::AddrNotAvailable
            );
        }
        parts.push(c.to_string());
        cause = c.source();
    }
    parts.dedup();
    let text = parts.join(": ");
    if e.is_connect() && unreachable {
        TlsError::Unreachable(text)
    } else {
        TlsError::Transport(text)
    }
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

/// Refuses a platform trust anchor that shares a certificate with the clients' CA: the city
/// CA must never be able to vouch for the platform.
pub fn ensure_separate_roots(clients_ca: &Path, platform_ca: &Path) -> Result<(), TlsError> {
    let clients = load_certs(clients_ca)?;
    if load_certs(platform_ca)?.iter().any(|c| clients.contains(c)) {
        return Err(TlsError::Config(format!(
            "platform.ca {} holds a certificate of the clients' CA (tls.ca); the platform needs its own CA",
            platform_ca.display()
        )));
    }
    Ok(())
}

/// A client the server knows: the identity its certificate must carry and, optionally, the
/// SHA-256 of that very certificate (lower-case hex), so that another certificate with the same
/// name — from a compromised or careless CA — is refused too.
#[derive(Debug, Clone)]
pub struct KnownClient {
    pub name: String,
    pub pin: Option<String>,
}

/// How often the revocation lists' files are looked at for changes.
pub const CRL_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The client-certificate checks of a server. After webpki's (chain to the CA, validity, and
/// the revocation lists of `tls.crl`), a certificate is refused at the handshake when it is
/// not a client certificate (no clientAuth extended key usage), has no single identity
/// ([`client_identity`]), or — when the clients are listed — names no configured client or
/// does not match that client's pin. A stranger with a certificate from the same CA gets no
/// TLS session at all, not just a 403.
///
/// The revocation lists can be reloaded while serving ([`ClientTrust::reload`], polled by
/// [`watch_crls`]): the webpki verifier is rebuilt and swapped whole, and its generation
/// number moves so that connections already open re-check their certificate on their next
/// request ([`serve`]).
#[derive(Debug)]
pub struct ClientTrust {
    roots: Arc<RootCertStore>,
    ca_certs: Vec<CertificateDer<'static>>,
    hints: Vec<rustls::DistinguishedName>,
    provider: Arc<CryptoProvider>,
    crl_files: Vec<std::path::PathBuf>,
    clients: std::sync::RwLock<Option<Arc<KnownClients>>>,
    webpki: std::sync::RwLock<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
    generation: std::sync::atomic::AtomicU64,
}

/// Configured client names and their pins.
type KnownClients = std::collections::HashMap<String, Option<String>>;

fn known(cs: &[KnownClient]) -> Arc<KnownClients> {
    Arc::new(cs.iter().map(|c| (c.name.clone(), c.pin.clone())).collect())
}

fn refused() -> rustls::Error {
    rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure)
}

/// SHA-256 of a certificate's DER (lower-case hex): what a client's `pin` names.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, cert.as_ref()))
}

/// Reads one CRL file, PEM (one or more lists) or DER, and checks that each list is signed by
/// one of `ca_certs`: a list from another issuer, or forged, is a configuration mistake that
/// would otherwise refuse every client (or none) at the next handshake.
fn read_crls(
    path: &Path,
    ca_certs: &[CertificateDer<'static>],
) -> Result<Vec<rustls_pki_types::CertificateRevocationListDer<'static>>, TlsError> {
    use rustls_pki_types::CertificateRevocationListDer as Crl;
    let bytes = std::fs::read(path).map_err(|e| material(path, e))?;
    let crls: Vec<Crl<'static>> = if bytes.starts_with(b"-----BEGIN") {
        Crl::pem_slice_iter(&bytes)
            .collect::<Result<_, _>>()
            .map_err(|e| material(path, e))?
    } else {
        vec![Crl::from(bytes)]
    };
    if crls.is_empty() {
        return Err(material(path, "no revocation list found"));
    }
    for crl in &crls {
        let (_, parsed) = x509_parser::parse_x509_crl(crl.as_ref())
            .map_err(|_| material(path, "not a revocation list (CRL)"))?;
        let signed = ca_certs.iter().any(|ca| {
            x509_parser::parse_x509_certificate(ca.as_ref()).is_ok_and(|(_, ca)| {
                ca.subject().as_raw() == parsed.issuer().as_raw()
                    && parsed.verify_signature(ca.public_key()).is_ok()
            })
        });
        if !signed {
            return Err(material(
                path,
                "revocation list not signed by the CA (tls.ca)",
            ));
        }
    }
    Ok(crls)
}

/// webpki's client verifier for `roots` with the revocation lists in `crl_files`.
fn webpki_with_crls(
    roots: &Arc<RootCertStore>,
    provider: &Arc<CryptoProvider>,
    crl_files: &[std::path::PathBuf],
    ca_certs: &[CertificateDer<'static>],
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    let mut crls = Vec::new();
    for f in crl_files {
        crls.extend(read_crls(f, ca_certs)?);
    }
    WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .with_crls(crls)
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))
}

impl ClientTrust {
    /// Client checks for certificates issued by `ca`, revoked by the lists in `crl_files`, and,
    /// when `clients` is given, naming one of them.
    pub fn new(
        ca: &Path,
        crl_files: &[std::path::PathBuf],
        clients: Option<&[KnownClient]>,
    ) -> Result<Self, TlsError> {
        let ca_certs = load_certs(ca)?;
        let roots = roots(ca)?;
        let provider = provider();
        let webpki = webpki_with_crls(&roots, &provider, crl_files, &ca_certs)?;
        Ok(Self {
            hints: roots.subjects(),
            roots,
            ca_certs,
            provider,
            crl_files: crl_files.to_vec(),
            clients: std::sync::RwLock::new(clients.map(known)),
            webpki: std::sync::RwLock::new(webpki),
            generation: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Reads the revocation lists again and swaps in a verifier using them; on any problem
    /// the verifier in use stays, and the problem is returned.
    pub fn reload(&self) -> Result<(), TlsError> {
        let webpki =
            webpki_with_crls(&self.roots, &self.provider, &self.crl_files, &self.ca_certs)?;
        match self.webpki.write() {
            Ok(mut g) => *g = webpki,
            Err(p) => *p.into_inner() = webpki,
        }
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Ok(())
    }

    /// Replaces the configured clients (a configuration reload): handshakes from now on admit
    /// only these, and connections already open re-check on their next request.
    pub fn set_clients(&self, clients: &[KnownClient]) {
        let new = Some(known(clients));
        match self.clients.write() {
            Ok(mut g) => *g = new,
            Err(p) => *p.into_inner() = new,
        }
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Moves each time the revocation lists or the clients are reloaded.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    fn current(&self) -> Arc<dyn rustls::server::danger::ClientCertVerifier> {
        match self.webpki.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Whether a connection's certificate chain (leaf first) still passes every check.
    pub fn still_admits(&self, chain: &[CertificateDer<'_>]) -> bool {
        use rustls::server::danger::ClientCertVerifier;
        let Some((leaf, rest)) = chain.split_first() else {
            return false;
        };
        self.verify_client_cert(leaf, rest, rustls_pki_types::UnixTime::now())
            .is_ok()
    }

    fn admits(&self, end_entity: &CertificateDer<'_>) -> bool {
        let Some(name) = client_identity(end_entity) else {
            return false;
        };
        let clients = match self.clients.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        match clients {
            None => true,
            Some(clients) => match clients.get(&name) {
                None => false,
                Some(None) => true,
                Some(Some(pin)) => *pin == fingerprint(end_entity),
            },
        }
    }

    /// Fingerprints of the CRL files (modification time, size, inode), to notice a change.
    fn files_state(&self) -> Vec<Option<(std::time::SystemTime, u64, u64)>> {
        use std::os::unix::fs::MetadataExt;
        self.crl_files
            .iter()
            .map(|f| {
                let m = std::fs::metadata(f).ok()?;
                Some((m.modified().ok()?, m.len(), m.ino()))
            })
            .collect()
    }
}

impl rustls::server::danger::ClientCertVerifier for ClientTrust {
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        let verified = self
            .current()
            .verify_client_cert(end_entity, intermediates, now)?;
        if self.admits(end_entity) {
            Ok(verified)
        } else {
            Err(refused())
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Polls the revocation lists' files every `every` and reloads them when one changes. A bad
/// file is logged once (naming the file and the problem) and the lists in use stay until
/// the files are fixed.
pub async fn watch_crls(
    trust: Arc<ClientTrust>,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    if trust.crl_files.is_empty() {
        return;
    }
    let mut seen = trust.files_state();
    let mut last_problem: Option<String> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        let now = trust.files_state();
        if now == seen {
            continue;
        }
        seen = now;
        match trust.reload() {
            Ok(()) => {
                last_problem = None;
                tracing::info!(
                    message = "Revocation lists reloaded.",
                    generation = trust.generation()
                );
            }
            Err(error) => {
                let text = error.to_string();
                if last_problem.as_deref() != Some(text.as_str()) {
                    tracing::warn!(message = "Revocation lists not reloaded; the previous ones stay in use.", problem = %text);
                    last_problem = Some(text);
                }
            }
        }
    }
}

/// A server's TLS: the rustls config and the client checks inside it.
#[derive(Clone)]
pub struct ServerTls {
    pub config: Arc<ServerConfig>,
    pub trust: Arc<ClientTrust>,
}

/// Server TLS demanding a client certificate issued by `ca` (any identity, no CRL).
pub fn server_config(ca: &Path, cert: &Path, key: &Path) -> Result<ServerTls, TlsError> {
    server_config_with(Arc::new(ClientTrust::new(ca, &[], None)?), cert, key)
}

/// Server TLS presenting `cert`/`key` and checking client certificates with `trust`.
pub fn server_config_with(
    trust: Arc<ClientTrust>,
    cert: &Path,
    key: &Path,
) -> Result<ServerTls, TlsError> {
    let mut cfg = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(trust.clone())
        .with_single_cert(load_certs(cert)?, load_key(key)?)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(ServerTls {
        config: Arc::new(cfg),
        trust,
    })
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

/// A client certificate's one identity, or `None` when it is not a usable client certificate.
///
/// The identity is the subject's common name, and there must be exactly one: with two, "the
/// first one" would be a choice an attacker's certificate request could steer. A
/// subjectAltName is allowed only when it holds exactly one name equal to that common name
/// (as some CAs copy the CN there); more names, or another name, are ambiguous and refused.
/// The certificate must also carry the clientAuth extended key usage: webpki accepts a
/// certificate without any extended key usage, which could be a server's or a CA's.
pub fn client_identity(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let eku = parsed.extended_key_usage().ok()??;
    if !eku.value.client_auth {
        return None;
    }
    let mut names = parsed.subject().iter_common_name();
    let name = names.next()?.as_str().ok()?.to_string();
    if names.next().is_some() {
        return None;
    }
    match parsed.subject_alternative_name() {
        Ok(None) => {}
        Ok(Some(san)) => {
            use x509_parser::extensions::GeneralName;
            let [only] = san.value.general_names.as_slice() else {
                return None;
            };
            let same = match only {
                GeneralName::DNSName(n) | GeneralName::RFC822Name(n) | GeneralName::URI(n) => {
                    *n == name
                }
                _ => false,
            };
            if !same {
                return None;
            }
        }
        Err(_) => return None,
    }
    Some(name)
}

fn peer_from(certs: Option<&[CertificateDer<'_>]>, addr: SocketAddr) -> Option<Peer> {
    let leaf = certs?.first()?;
    let name = client_identity(leaf)?;
    let fingerprint = fingerprint(leaf);
    // Only configured names pass the handshake, so the label set stays the client list.
    if let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf.as_ref()) {
        crate::metrics::global().certificate_expires(
            &format!("client:{name}"),
            cert.validity().not_after.timestamp(),
        );
    }
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
///
/// Limits, in the order a connection meets them: at most `max_connections` at once (a new
/// one waits in the kernel's backlog until one ends); a failed accept pauses, growing, and
/// is logged at most every ten seconds with a count; the TLS handshake has a deadline; a
/// client certificate without the clientAuth usage and one identity is refused; then hyper reads each
/// request's headers under `header_read_timeout`, which also closes idle connections.
pub async fn serve<F, Fut>(
    listener: TcpListener,
    tls: ServerTls,
    limits: ServerLimits,
    handle: F,
    mut shutdown: watch::Receiver<bool>,
) where
    F: Fn(Peer, Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<HttpResponse, std::io::Error>> + Send + 'static,
{
    let acceptor = TlsAcceptor::from(tls.config.clone());
    let trust = tls.trust;
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let mut backoff = ACCEPT_BACKOFF_FIRST;
    let mut failed_accepts = 0u64;
    let mut last_logged: Option<std::time::Instant> = None;
    let refusals = Arc::new(RefusalLog::default());
    loop {
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => break,
            },
            _ = shutdown.changed() => break,
        };
        let (tcp, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => {
                    backoff = ACCEPT_BACKOFF_FIRST;
                    x
                }
                Err(error) => {
                    failed_accepts += 1;
                    if last_logged.is_none_or(|t| t.elapsed() >= REPEATED_LOG_EVERY) {
                        tracing::warn!(message = "Accept failed; pausing.", %error, failures = failed_accepts, pause_ms = backoff.as_millis() as u64);
                        last_logged = Some(std::time::Instant::now());
                        failed_accepts = 0;
                    }
                    drop(slot);
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => break,
                    }
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let handle = handle.clone();
        let trust = trust.clone();
        let refusals = refusals.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let stream = match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp))
                .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(error)) => {
                    if let Some(repeats) = refusals.should_log(addr.ip(), Instant::now()) {
                        tracing::warn!(message = "TLS handshake refused.", %error, peer = %addr.ip(), refused_since_last_line = repeats);
                    }
                    return;
                }
                Err(_) => return,
            };
            let chain: Vec<CertificateDer<'static>> = stream
                .get_ref()
                .1
                .peer_certificates()
                .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default();
            let Some(peer) = peer_from(Some(&chain), addr) else {
                tracing::debug!(message = "Client certificate without one identity.", %addr);
                return;
            };
            // Checked at the handshake under this generation of the revocation lists; a
            // request after a reload checks the certificate again, and a refused one ends
            // the connection without an answer.
            let checked = Arc::new(std::sync::atomic::AtomicU64::new(trust.generation()));
            let chain = Arc::new(chain);
            let svc = hyper::service::service_fn(move |req| {
                let (handle, peer, trust, checked, chain) = (
                    handle.clone(),
                    peer.clone(),
                    trust.clone(),
                    checked.clone(),
                    chain.clone(),
                );
                async move {
                    let now = trust.generation();
                    if checked.load(std::sync::atomic::Ordering::Acquire) != now {
                        if !trust.still_admits(&chain) {
                            return Err(std::io::Error::other(
                                "client certificate no longer trusted",
                            ));
                        }
                        checked.store(now, std::sync::atomic::Ordering::Release);
                    }
                    handle(peer, req).await
                }
            });
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            builder
                .http2()
                .timer(hyper_util::rt::TokioTimer::new())
                .keep_alive_interval(limits.header_read_timeout)
                .keep_alive_timeout(limits.header_read_timeout);
            if let Err(error) = builder.serve_connection(TokioIo::new(stream), svc).await {
                tracing::debug!(message = "Connection ended with an error.", %error);
            }
        });
    }
}

/// How long the client keeps an idle connection: under the server's 10 s idle timeout, so a
/// pooled connection is never one the server is closing.
pub const CLIENT_POOL_IDLE: Duration = Duration::from_secs(5);

/// Most peers whose refusals are remembered at once; beyond it the memory starts afresh (a
/// flood of addresses then costs one line each, at most this many per interval).
const REFUSAL_PEERS: usize = 1024;

/// Logs a refused TLS handshake once per peer address per [`REPEATED_LOG_EVERY`], with the
/// number refused since that peer's last line: a misconfigured client or a scanner leaves a
/// trace without flooding the log.
#[derive(Default)]
struct RefusalLog {
    peers: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, (Instant, u64)>>,
}

impl RefusalLog {
    /// `Some(refusals not logged since the peer's last line)` when this one is to be logged.
    fn should_log(&self, peer: std::net::IpAddr, now: Instant) -> Option<u64> {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        if peers.len() >= REFUSAL_PEERS && !peers.contains_key(&peer) {
            peers.clear();
        }
        match peers.get_mut(&peer) {
            Some((last, quiet)) if now.duration_since(*last) < REPEATED_LOG_EVERY => {
                *quiet += 1;
                None
            }
            Some((last, quiet)) => {
                let repeats = *quiet;
                *last = now;
                *quiet = 0;
                Some(repeats)
            }
            None => {
                peers.insert(peer, (now, 0));
                Some(0)
            }
        }
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
            .pool_idle_timeout(CLIENT_POOL_IDLE)
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
                .map_err(|e| client_error(&e))?;
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

/// A body fed from a channel of pieces (a file being uploaded, the backup stream), with its
/// exact length when known; a sender that is dropped ends it.
pub struct ChannelBody {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    len: Option<u64>,
}

impl ChannelBody {
    /// The body of what `rx` delivers (`len` bytes in all, when given).
    pub fn new(rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>, len: Option<u64>) -> Self {
        Self { rx, len }
    }

    /// A body with nothing in it.
    pub fn empty() -> Self {
        let (_, rx) = tokio::sync::mpsc::channel(1);
        Self::new(rx, Some(0))
    }
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|o| o.map(|r| r.map(hyper::body::Frame::data)))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self.len {
            Some(n) => hyper::body::SizeHint::with_exact(n),
            None => hyper::body::SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_leaves_a_reserve_and_room_for_clients() {
        assert_eq!(connections_for_limit(1_048_576), DEFAULT_MAX_CONNECTIONS);
        assert_eq!(connections_for_limit(1024), 1024 - DESCRIPTOR_RESERVE);
        // A small limit: half kept back, half for connections (not a cap of one).
        assert_eq!(connections_for_limit(256), 128);
        assert_eq!(connections_for_limit(128), 64);
        assert_eq!(connections_for_limit(1), 1);
    }

    #[test]
    fn a_peer_s_refusals_are_logged_once_per_interval_with_the_count_between() {
        let log = RefusalLog::default();
        let a: std::net::IpAddr = "192.0.2.1".parse().unwrap();
        let b: std::net::IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = Instant::now();
        assert_eq!(log.should_log(a, t0), Some(0));
        assert_eq!(log.should_log(a, t0 + Duration::from_secs(1)), None);
        assert_eq!(log.should_log(a, t0 + Duration::from_secs(2)), None);
        // Another peer has its own line.
        assert_eq!(log.should_log(b, t0 + Duration::from_secs(2)), Some(0));
        // After the interval: one line saying how many went unlogged.
        assert_eq!(log.should_log(a, t0 + REPEATED_LOG_EVERY), Some(2));
        assert_eq!(log.should_log(a, t0 + REPEATED_LOG_EVERY), None);
        // Memory stays bounded under a flood of addresses.
        for i in 0..(REFUSAL_PEERS as u32 * 3) {
            let ip = std::net::IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            assert_eq!(log.should_log(ip, t0), Some(0));
        }
        assert!(log.peers.lock().unwrap().len() <= REFUSAL_PEERS);
    }
}

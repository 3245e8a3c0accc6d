//! The one HTTPS client every command-line client of the running gateway uses (`renkei
//! keys …`, `audit …`, `persons …`, `inquiries …`): [`Conn`] says how to reach the gateway
//! and as whom, [`StaffClient`] sends JSON requests and streams files, authenticated with the
//! client certificate of `clients/NAME/` like any other user, and — for staff — with the
//! bearer token `renkei login` keeps in `clients/NAME/session`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use crate::tls::{ChannelBody, HttpsClient};

/// Staff requests may be slow (exports, live verification of a large log).
pub const DEFAULT_STAFF_TIMEOUT: Duration = Duration::from_secs(600);
/// A 300,000-line import takes seconds, a city-wide file on a slow disk may take minutes.
pub const DEFAULT_UPLOAD_TIMEOUT: Duration = Duration::from_secs(3600);
/// Bytes read from a file per upload piece.
pub const DEFAULT_UPLOAD_PIECE: usize = 256 * 1024;
/// Upload pieces in flight between the file reader and the connection.
const UPLOAD_QUEUE: usize = 4;
/// Where `renkei init` puts the running gateway's address, under the deployment folder.
const GATEWAY_ADDR_FILE: &str = "gateway/data/gateway.addr";

/// Characters escaped in a query value: everything but RFC 3986's unreserved set.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// How a command reaches the gateway, and as whom.
#[derive(clap::Args, Clone, Debug)]
pub struct Conn {
    /// Deployment folder (CA, clients/NAME/ certificates, the gateway's address).
    #[arg(long, env = "RENKEI_DIR", default_value = ".", global = true)]
    pub dir: PathBuf,
    /// Client certificate name under clients/ to act as.
    #[arg(long = "as", global = true)]
    pub as_name: Option<String>,
    /// Gateway URL, if not the one recorded in the deployment folder.
    #[arg(long, global = true)]
    pub gateway: Option<String>,
}

impl Conn {
    /// A client acting as `--as`, or as `default_as` when none was given.
    pub fn client(&self, default_as: Option<&str>) -> Result<StaffClient, String> {
        let name = self
            .as_name
            .as_deref()
            .or(default_as)
            .ok_or("say which client certificate to use: --as NAME")?;
        check_deployment(&self.dir, name)?;
        StaffClient::new(&self.dir, name, self.gateway.as_deref())
    }
}

/// The client names a deployment folder holds certificates for (`clients/NAME/cert.pem`).
pub fn client_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("clients"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("cert.pem").is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

/// One sentence when `dir` is not a deployment folder or has no client `name`.
pub fn check_deployment(dir: &Path, name: &str) -> Result<(), String> {
    let shown = dir.display();
    if !dir.is_dir() {
        return Err(format!(
            "there is no deployment at {shown}: no such folder (give --dir, or set RENKEI_DIR, to the folder `renkei init` made)"
        ));
    }
    if !dir.join("ca.pem").is_file() || !dir.join("clients").is_dir() {
        return Err(format!(
            "there is no deployment at {shown}: it has no ca.pem and clients/ folder (give --dir, or set RENKEI_DIR, to the folder `renkei init` made)"
        ));
    }
    let cdir = dir.join("clients").join(name);
    if !cdir.join("cert.pem").is_file() || !cdir.join("key.pem").is_file() {
        let names = client_names(dir);
        return Err(format!(
            "there is no client \"{name}\" in {shown}/clients/: give --as one of {}",
            if names.is_empty() {
                "(none: the folder holds no client certificates)".to_string()
            } else {
                names.join(", ")
            }
        ));
    }
    Ok(())
}

/// The sentence for a request that did not reach the gateway at `base`.
fn transport(base: &str, e: crate::tls::TlsError) -> String {
    match e {
        crate::tls::TlsError::Unreachable(_) => {
            format!("the gateway at {base} is not answering: is `renkei serve` running?")
        }
        crate::tls::TlsError::Timeout => format!("the gateway at {base} did not answer in time"),
        other => format!("the request to the gateway at {base} failed: {other}"),
    }
}

/// `?a=1&b=x%20y` from the pairs that have a value (empty when none has).
pub fn query(pairs: &[(&str, Option<&str>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", utf8_percent_encode(v, QUERY_VALUE))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// The gateway's base URL: `--gateway`, or the address the running gateway wrote.
fn gateway_base(dir: &Path, gateway: Option<&str>) -> Result<String, String> {
    if let Some(g) = gateway {
        return Ok(g.trim_end_matches('/').to_string());
    }
    let file = dir.join(GATEWAY_ADDR_FILE);
    let addr = std::fs::read_to_string(&file).map_err(|_| {
        format!(
            "the gateway is not running: {} is missing (`renkei serve` writes it); start the gateway, or pass --gateway URL",
            file.display()
        )
    })?;
    Ok(format!("https://{}", addr.trim()))
}

type UploadClient =
    hyper_util::client::legacy::Client<hyper_rustls::HttpsConnector<HttpConnector>, ChannelBody>;

/// A connection to the gateway as one client.
pub struct StaffClient {
    client: HttpsClient,
    upload: UploadClient,
    base: String,
    /// The client certificate name (for the "sign in first" sentence).
    name: String,
    /// `Bearer <token>` from `clients/NAME/session`, when signed in.
    bearer: Option<zeroize::Zeroizing<String>>,
}

/// Where `renkei login` keeps a staff client's session token.
pub fn session_file(dir: &Path, name: &str) -> PathBuf {
    dir.join("clients").join(name).join("session")
}

/// True for the gateway's answers that mean "no live session".
fn is_session_refusal(status: u16, body: &[u8]) -> bool {
    if status != 401 {
        return false;
    }
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
    matches!(
        v["code"].as_str(),
        Some("session_required" | "session_expired" | "session_mismatch")
    )
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The gateway's `code` and `detail` of a refused request (a problem document), as one line.
pub fn refusal(status: u16, body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
    let reason = hyper::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("refused");
    match (v["code"].as_str(), v["detail"].as_str()) {
        (Some(code), Some(detail)) => format!("the gateway refused ({status} {code}): {detail}"),
        (Some(code), None) => format!("the gateway refused ({status} {code})"),
        _ => format!("the gateway answered {status} {reason}"),
    }
}

impl StaffClient {
    /// Connects as `name` using the deployment folder `dir` (its CA, `clients/NAME/`, and the
    /// gateway's address), or `gateway` when given.
    pub fn new(dir: &Path, name: &str, gateway: Option<&str>) -> Result<Self, String> {
        let cdir: PathBuf = dir.join("clients").join(name);
        let (ca, cert, key) = (
            dir.join("ca.pem"),
            cdir.join("cert.pem"),
            cdir.join("key.pem"),
        );
        let client = HttpsClient::new(&ca, &cert, &key, DEFAULT_STAFF_TIMEOUT).map_err(err)?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(crate::tls::client_config(&ca, &cert, &key).map_err(err)?)
            .https_only()
            .enable_http1()
            .build();
        let upload = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .build::<_, ChannelBody>(connector);
        let bearer = std::fs::read_to_string(session_file(dir, name))
            .ok()
            .map(|t| zeroize::Zeroizing::new(format!("Bearer {}", t.trim())));
        Ok(Self {
            client,
            upload,
            base: gateway_base(dir, gateway)?,
            name: name.to_string(),
            bearer,
        })
    }

    /// The sentence for a staff command without a live session.
    fn sign_in_first(&self) -> String {
        format!("sign in first: renkei login --as {}", self.name)
    }

    /// Sends a request; returns status and body.
    pub async fn call(
        &self,
        method: hyper::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<(u16, Bytes), String> {
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if let Some(b) = &self.bearer {
            all.push(("authorization", b.as_str()));
        }
        let r = self
            .client
            .send(method, &format!("{}{path}", self.base), &all, body)
            .await
            .map_err(|e| transport(&self.base, e))?;
        let status = r.status.as_u16();
        if is_session_refusal(status, &r.body) {
            return Err(self.sign_in_first());
        }
        Ok((status, r.body))
    }

    /// Sends JSON, expects JSON; a non-2xx answer becomes an error with the gateway's message.
    pub async fn json(
        &self,
        method: hyper::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, String> {
        let bytes = match body {
            Some(v) => Bytes::from(serde_json::to_vec(&v).map_err(err)?),
            None => Bytes::new(),
        };
        let (status, body) = self
            .call(method, path, &[("content-type", "application/json")], bytes)
            .await?;
        if !(200..300).contains(&status) {
            return Err(refusal(status, &body));
        }
        Ok(serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
    }

    /// Streams `file` as the body of `POST path` (a progress line on a terminal); returns the
    /// JSON answer, or the gateway's refusal.
    pub async fn upload_file(&self, path: &str, file: &Path) -> Result<serde_json::Value, String> {
        let mut f = tokio::fs::File::open(file)
            .await
            .map_err(|e| format!("{}: {e}", file.display()))?;
        let len = f
            .metadata()
            .await
            .map_err(|e| format!("{}: {e}", file.display()))?
            .len();
        let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(UPLOAD_QUEUE);
        let bar = super::progress::bytes(len);
        let shown = bar.clone();
        let reader = tokio::spawn(async move {
            let mut sent = 0u64;
            loop {
                let mut buf = vec![0u8; DEFAULT_UPLOAD_PIECE];
                match f.read(&mut buf).await {
                    Ok(0) => break,
                    Ok(n) => {
                        buf.truncate(n);
                        sent += n as u64;
                        if tx.send(Ok(Bytes::from(buf))).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        break;
                    }
                }
                shown.set_position(sent);
            }
            shown.set_message("sent; waiting for the gateway to finish…");
        });
        let body = ChannelBody::new(rx, Some(len));
        let fut = async {
            let resp = self
                .stream_post(path, Some("application/octet-stream"), body)
                .await?;
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await.map_err(err)?.to_bytes();
            Ok::<_, String>((status, body))
        };
        let (status, body) = tokio::time::timeout(DEFAULT_UPLOAD_TIMEOUT, fut)
            .await
            .map_err(|_| "the gateway did not answer in time".to_string())??;
        let _ = reader.await;
        bar.finish_and_clear();
        if is_session_refusal(status, &body) {
            return Err(self.sign_in_first());
        }
        if !(200..300).contains(&status) {
            return Err(refusal(status, &body));
        }
        Ok(serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
    }
}

impl StaffClient {
    /// Sends `POST path` with a streamed `body` (and its content type), the session if any.
    async fn stream_post(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: ChannelBody,
    ) -> Result<hyper::Response<hyper::body::Incoming>, String> {
        use hyper::body::Body as _;
        let mut req = hyper::Request::builder()
            .method(hyper::Method::POST)
            .uri(format!("{}{path}", self.base));
        if let Some(len) = body.size_hint().exact() {
            req = req.header("content-length", len);
        }
        if let Some(t) = content_type {
            req = req.header("content-type", t);
        }
        if let Some(b) = &self.bearer {
            req = req.header("authorization", b.as_str());
        }
        let req = req.body(body).map_err(err)?;
        self.upload
            .request(req)
            .await
            .map_err(|e| transport(&self.base, crate::tls::client_error(&e)))
    }

    /// Sends `POST path` without a body and streams a 200 answer's body into `out` (synced);
    /// returns the bytes written, or the gateway's refusal.
    pub async fn download(&self, path: &str, out: &Path) -> Result<u64, String> {
        use tokio::io::AsyncWriteExt;
        let fut = async {
            let resp = self.stream_post(path, None, ChannelBody::empty()).await?;
            let status = resp.status().as_u16();
            let mut body = resp.into_body();
            if status != 200 {
                let body = body.collect().await.map_err(err)?.to_bytes();
                if is_session_refusal(status, &body) {
                    return Err(self.sign_in_first());
                }
                return Err(refusal(status, &body));
            }
            let mut f = tokio::fs::File::create(out)
                .await
                .map_err(|e| format!("{}: {e}", out.display()))?;
            let mut written = 0u64;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| format!("the backup stream broke off: {e}"))?;
                if let Ok(data) = frame.into_data() {
                    f.write_all(&data)
                        .await
                        .map_err(|e| format!("{}: {e}", out.display()))?;
                    written += data.len() as u64;
                }
            }
            f.sync_all()
                .await
                .map_err(|e| format!("{}: {e}", out.display()))?;
            Ok::<_, String>(written)
        };
        tokio::time::timeout(DEFAULT_UPLOAD_TIMEOUT, fut)
            .await
            .map_err(|_| "the gateway did not finish in time".to_string())?
    }
}

#[cfg(test)]
mod tests {
    use super::query;

    #[test]
    fn query_values_are_percent_encoded_and_absent_ones_left_out() {
        assert_eq!(query(&[("a", None)]), "");
        assert_eq!(
            query(&[
                ("kind", Some("inquiry")),
                ("x", None),
                ("from", Some("2026-01-01T00:00:00+09:00"))
            ]),
            "?kind=inquiry&from=2026-01-01T00%3A00%3A00%2B09%3A00"
        );
        assert_eq!(query(&[("n", Some("札幌"))]), "?n=%E6%9C%AD%E5%B9%8C");
    }
}

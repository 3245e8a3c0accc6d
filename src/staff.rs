//! The staff side of the command line (`renkei keys …`, `renkei audit …`, `renkei inquiries
//! submit …`): each is an HTTPS client of the running gateway, authenticated with the staff
//! member's client certificate like any other user.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;

use crate::tls::HttpsClient;

/// Staff requests may be slow (exports, live verification of a large log).
pub const DEFAULT_STAFF_TIMEOUT: Duration = Duration::from_secs(600);

/// A connection to the gateway as one client.
pub struct StaffClient {
    client: HttpsClient,
    base: String,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl StaffClient {
    /// Connects as `name` using the deployment folder `dir` (its CA, `clients/NAME/`, and the
    /// gateway's address from `gateway/data/gateway.addr`, or `--gateway URL`).
    pub fn new(dir: &Path, name: &str, gateway: Option<&str>) -> Result<Self, String> {
        let cdir: PathBuf = dir.join("clients").join(name);
        let client = HttpsClient::new(
            &dir.join("ca.pem"),
            &cdir.join("cert.pem"),
            &cdir.join("key.pem"),
            DEFAULT_STAFF_TIMEOUT,
        )
        .map_err(err)?;
        let base = match gateway {
            Some(g) => g.trim_end_matches('/').to_string(),
            None => {
                let addr_file = dir.join("gateway/data/gateway.addr");
                let addr = std::fs::read_to_string(&addr_file).map_err(|e| {
                    format!(
                        "cannot find the running gateway ({}: {e}); start `renkei serve` or pass --gateway",
                        addr_file.display()
                    )
                })?;
                format!("https://{}", addr.trim())
            }
        };
        Ok(Self { client, base })
    }

    /// Sends a request; returns status and body.
    pub async fn call(
        &self,
        method: hyper::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<(u16, Bytes), String> {
        let r = self
            .client
            .send(method, &format!("{}{path}", self.base), headers, body)
            .await
            .map_err(err)?;
        Ok((r.status.as_u16(), r.body))
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
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        if (200..300).contains(&status) {
            Ok(v)
        } else {
            Err(format!(
                "gateway answered {status}: {} {}",
                v["code"].as_str().unwrap_or(""),
                v["message"].as_str().unwrap_or("")
            ))
        }
    }
}

//! The gateway's side of the platform protocol: every exchange is one signed XML message
//! posted over mutual TLS and one signed XML answer, verified before it is believed.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use renkei_ids::AgencyCode;
use renkei_platform::{faults, from_xml, to_xml, Header, Message, PlatformFault, MESSAGES_PATH};

use crate::keyring::{KeyState, SIGNATURE_HEADER};
use crate::tls::{HttpsClient, TlsError};
use crate::util::{now_ms, rfc3339_jst};

/// An answer created further than this from our clock is refused as a replay: the same
/// window the platform applies to our messages (10 minutes).
pub const DEFAULT_ANSWER_CLOCK_SKEW_MS: u64 = 10 * 60 * 1000;

/// How an exchange failed, sorted by what the dispatcher should do about it.
#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    /// The platform is closed (operating hours); try again later.
    #[error("platform closed")]
    Closed { retry_after_ms: Option<u64> },
    /// Network, timeout or 5xx: try again with backoff.
    #[error("transient failure: {0}")]
    Transient(String),
    /// The platform answered with a fault: final for this message.
    #[error("platform fault {}", .0.code)]
    Fault(PlatformFault),
    /// The answer could not be trusted (bad signature, wrong reply, malformed): retry, and
    /// alert, since this should not happen with a healthy platform.
    #[error("untrusted answer: {0}")]
    Untrusted(String),
}

impl UplinkError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            UplinkError::Closed { .. } => "platform_closed",
            UplinkError::Transient(_) => "platform_unavailable",
            UplinkError::Fault(_) => "platform_fault",
            UplinkError::Untrusted(_) => "platform_answer_untrusted",
        }
    }
}

/// The HTTPS client toward the platform, with this side's keys.
#[derive(Clone)]
pub struct Uplink {
    client: HttpsClient,
    url: String,
    pub keys: Arc<KeyState>,
    pub platform: AgencyCode,
}

impl Uplink {
    /// A new uplink.
    pub fn new(
        client: HttpsClient,
        base_url: &str,
        keys: Arc<KeyState>,
        platform: AgencyCode,
    ) -> Self {
        Self {
            client,
            url: format!("{}{}", base_url.trim_end_matches('/'), MESSAGES_PATH),
            keys,
            platform,
        }
    }

    /// A plain GET to the platform (master information).
    pub async fn get(&self, url: &str) -> Result<crate::tls::ClientResponse, TlsError> {
        self.client
            .send(hyper::Method::GET, url, &[], Bytes::new())
            .await
    }

    /// A header for a new message to the platform.
    pub fn header(&self, message_id: String) -> Header {
        Header {
            message_id,
            sender: self.keys.agency.clone(),
            recipient: self.platform.clone(),
            created_at: rfc3339_jst(now_ms()),
            in_reply_to: None,
        }
    }

    /// Sends one message and returns the verified answer; counts it by outcome.
    pub async fn exchange(&self, msg: &Message) -> Result<Message, UplinkError> {
        let answer = self.exchange_once(msg).await;
        crate::metrics::global().platform_request(match &answer {
            Ok(_) => "ok",
            Err(e) => e.code(),
        });
        answer
    }

    async fn exchange_once(&self, msg: &Message) -> Result<Message, UplinkError> {
        let body = to_xml(msg);
        let sig = self
            .keys
            .sign(body.as_bytes())
            .map_err(|e| UplinkError::Transient(format!("signing: {e}")))?;
        let resp = self
            .client
            .send(
                hyper::Method::POST,
                &self.url,
                &[
                    ("content-type", "application/xml; charset=utf-8"),
                    (SIGNATURE_HEADER, &sig),
                ],
                Bytes::from(body),
            )
            .await
            .map_err(|e| match e {
                TlsError::Timeout => UplinkError::Transient("timeout".into()),
                other => UplinkError::Transient(other.to_string()),
            })?;
        let status = resp.status.as_u16();
        if status == 503 {
            let retry_after_ms = resp
                .headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .map(|s| s * 1000);
            return Err(UplinkError::Closed { retry_after_ms });
        }
        if status >= 500 {
            return Err(UplinkError::Transient(format!(
                "platform answered {status}"
            )));
        }
        let signature = resp
            .headers
            .get(SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok());
        let (signer, _) = self
            .keys
            .verify(signature, &resp.body)
            .map_err(|e| UplinkError::Untrusted(e.to_string()))?;
        if signer != self.platform.as_str() {
            return Err(UplinkError::Untrusted(format!("signed by {signer}")));
        }
        let answer = from_xml(&resp.body).map_err(|e| UplinkError::Untrusted(e.to_string()))?;
        let h = answer.header();
        if h.in_reply_to.as_deref() != Some(msg.header().message_id.as_str()) {
            return Err(UplinkError::Untrusted(
                "answer is not a reply to this message".into(),
            ));
        }
        if h.recipient != self.keys.agency || h.sender != self.platform {
            return Err(UplinkError::Untrusted(
                "answer is not addressed from the platform to this city".into(),
            ));
        }
        match crate::util::parse_rfc3339_ms(&h.created_at) {
            Some(t) if now_ms().abs_diff(t) <= DEFAULT_ANSWER_CLOCK_SKEW_MS => {}
            _ => {
                return Err(UplinkError::Untrusted(
                    "answer's creation time is outside the accepted window".into(),
                ))
            }
        }
        if let Message::Fault { fault, .. } = answer {
            // A refused signature is the gateway's key state, not the inquiry's fault (it
            // happens for a moment around a key rotation): retry rather than fail.
            if fault.code == faults::BAD_SIGNATURE {
                return Err(UplinkError::Transient(format!(
                    "platform refused our signature ({})",
                    fault.code
                )));
            }
            return Err(UplinkError::Fault(fault));
        }
        Ok(answer)
    }
}

/// Client timeout for the platform.
pub fn timeout(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

//! The platform side refuses what it must (issue 5): a body changed after signing, a
//! signature by a key it does not know, a stale (replayed-late) message and a truncated
//! ciphertext are refused with clear fault codes and counted; a verbatim resend of a message
//! gets the very same answer (dedupe by message id) instead of a second effect.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use renkei::keyring::{KeyState, PeerKeys, SIGNATURE_HEADER};
use renkei::util::{now_ms, rfc3339_jst};
use renkei_ids::{AgencyCode, UnifiedAddressNumber};
use renkei_platform::{from_xml, to_xml, CodeOutcome, Header, IdentityPayload, Message};

struct Sender {
    keys: KeyState,
    client: renkei::tls::HttpsClient,
    url: String,
}

impl Sender {
    fn message(&self, id: &str, created_ms: u64, truncate: bool) -> Vec<u8> {
        let n = renkei::dev::demo::sample_number(&renkei::dev::demo::SAMPLES[0]).unwrap();
        let payload = IdentityPayload {
            individual_number: n,
        }
        .to_xml();
        let platform = renkei::dev::init::DEV_PLATFORM_AGENCY;
        let mut sealed = self
            .keys
            .seal_to(platform, "CodeAcquisitionRequest", id, payload.as_bytes())
            .unwrap();
        if truncate {
            sealed.ciphertext.truncate(8);
        }
        to_xml(&Message::CodeAcquisitionRequest {
            header: Header {
                message_id: id.to_string(),
                sender: self.keys.agency.clone(),
                recipient: AgencyCode::parse(platform).unwrap(),
                created_at: rfc3339_jst(created_ms),
                in_reply_to: None,
            },
            unified: UnifiedAddressNumber::from_serial(1).unwrap(),
            sealed,
        })
        .into_bytes()
    }

    async fn post(&self, body: &[u8], sig: &str) -> (u16, Bytes) {
        let r = self
            .client
            .send(
                hyper::Method::POST,
                &self.url,
                &[("content-type", "application/xml"), (SIGNATURE_HEADER, sig)],
                Bytes::copy_from_slice(body),
            )
            .await
            .unwrap();
        (r.status.as_u16(), r.body)
    }
}

fn fault_code(body: &[u8]) -> String {
    match from_xml(body).expect("the platform answers in XML") {
        Message::Fault { fault, .. } => fault.code,
        other => panic!("expected a fault, got {}", other.type_name()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_refuses_tampered_unknown_stale_and_truncated_messages() {
    let mut d = Deployment::new();
    let sim = d.start_sim().await;
    renkei::tls::install_default_provider();
    let keys = KeyState::load(
        AgencyCode::parse(renkei::dev::init::DEV_CITY_AGENCY).unwrap(),
        &d.dir.join("gateway/keys"),
        &d.dir.join("gateway/master.key"),
    )
    .unwrap();
    keys.set_peer(PeerKeys::load(&d.dir.join("gateway/peers/platform.json")).unwrap());
    let client = renkei::tls::HttpsClient::new(
        &d.dir.join("platform-ca.pem"),
        &d.dir.join("gateway/platform-client.pem"),
        &d.dir.join("gateway/platform-client-key.pem"),
        Duration::from_secs(10),
    )
    .unwrap();
    let s = Sender {
        keys,
        client,
        url: format!("https://{sim}/platform/v1/messages"),
    };

    // A good message is answered, signed by the platform.
    let good = s.message("T-GOOD", now_ms(), false);
    let sig = s.keys.sign(&good).unwrap();
    let (status, first) = s.post(&good, &sig).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&first));
    match from_xml(&first).unwrap() {
        Message::CodeAcquisitionResponse { outcome, .. } => {
            assert!(matches!(outcome, CodeOutcome::Acquired { .. }))
        }
        other => panic!("{}", other.type_name()),
    }
    // The same bytes again: the same answer, byte for byte, and no second acquisition.
    let (status, again) = s.post(&good, &sig).await;
    assert_eq!(status, 200);
    assert_eq!(again, first);

    // One byte changed after signing.
    let mut changed = s.message("T-CHANGED", now_ms(), false);
    let sig = s.keys.sign(&changed).unwrap();
    let pos = changed.len() - 40;
    changed[pos] = if changed[pos] == b'A' { b'B' } else { b'A' };
    let (status, body) = s.post(&changed, &sig).await;
    assert_eq!(status, 400);
    assert_eq!(fault_code(&body), "E1004");

    // Signed by a key the platform does not know (right agency and version, wrong key).
    let stranger = renkei_crypto::SigningKey::generate().unwrap();
    let body = s.message("T-STRANGER", now_ms(), false);
    let sig = renkei_crypto::envelope::signature_header(
        renkei::dev::init::DEV_CITY_AGENCY,
        1,
        &stranger,
        &body,
    )
    .unwrap();
    let (status, answer) = s.post(&body, &sig).await;
    assert_eq!(status, 400);
    assert_eq!(fault_code(&answer), "E1004");

    // Properly signed but made 20 minutes ago: refused as a replay.
    let stale = s.message("T-STALE", now_ms() - 20 * 60 * 1000, false);
    let sig = s.keys.sign(&stale).unwrap();
    let (status, answer) = s.post(&stale, &sig).await;
    assert_eq!(status, 400);
    assert_eq!(fault_code(&answer), "E1005");

    // Properly signed, ciphertext truncated: the acquisition fails with a clear fault.
    let cut = s.message("T-CUT", now_ms(), true);
    let sig = s.keys.sign(&cut).unwrap();
    let (status, answer) = s.post(&cut, &sig).await;
    assert_eq!(status, 200);
    match from_xml(&answer).unwrap() {
        Message::CodeAcquisitionResponse {
            outcome: CodeOutcome::Failed { fault },
            ..
        } => assert_eq!(fault.code, "E1005"),
        other => panic!("expected a failed acquisition, got {other:?}"),
    }

    let stats = d.sim_stats().await;
    assert_eq!(stats["refused_signature"], 2, "{stats}");
    assert_eq!(stats["code_acquisitions"], 1, "{stats}");
}

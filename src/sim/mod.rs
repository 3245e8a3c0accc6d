//! The national platform simulator (中間サーバー・プラットフォーム): a peer with its own keys,
//! certificates and state, speaking the same signed, sealed XML protocol as the real side.
//!
//! It issues codes (符号) from individual numbers sealed to it, answers inquiries
//! asynchronously (receipt with a processing serial number now, result later) from seeded
//! provider data, enforces the national permission table, dedupes by message id, and can be
//! told to be closed, slow, failing or dropping connections — by config and at run time
//! through `/admin/mode`; `GET /admin/alive` shows the alive notifications (稼動状態の通知)
//! it last heard. Items its national table marks `manual` are handed to the city holding
//! the person (`ManualRequestFetch`), answered by it (`ManualAnswer`) or timed out. It shares message types and codecs with the gateway, never its store or
//! keys.

pub mod data;
pub mod provision;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Response, StatusCode};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::Request;
use renkei_ids::{AgencyCode, Fugo, ProcessingSerial, UnifiedAddressNumber};
use renkei_platform::{
    faults, from_xml, to_xml, CodeOutcome, Condition, Header, IdentityPayload, ManualDecision,
    Message, PlatformFault, ReceiptOutcome, ResultPayload, ResultStatus, TargetPayload,
    MASTER_PATH, MAX_MESSAGE_BYTES, MESSAGES_PATH,
};
use serde::{Deserialize, Serialize};

use crate::config::{parse_hours, SimConfig, SimMode};
use crate::keyring::{KeyError, KeyState, PeerKeys, SIGNATURE_HEADER};
use crate::tls::{HttpResponse, Peer};
use crate::util::{ms_until_open, new_id, now_ms, parse_rfc3339_ms, rfc3339_jst};

/// How long the simulator's master information is valid.
pub const DEFAULT_MASTER_VALIDITY_MS: u64 = 24 * 3600 * 1000;

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("provider data {path}: {detail}")]
    ProviderData { path: String, detail: String },
    #[error("capture folder {path}: {source}")]
    Capture {
        path: String,
        source: std::io::Error,
    },
}

/// Messages older or newer than this are refused as replays (clock skew allowance).
pub const DEFAULT_REPLAY_WINDOW_MS: u64 = 10 * 60 * 1000;

fn valid_date(s: &str) -> bool {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &fmt).is_ok()
}

/// Full-width digits, as the platform writes numbers in its messages.
pub fn fullwidth_digits(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '0'..='9' => char::from_u32(c as u32 - '0' as u32 + 0xFF10).unwrap_or(c),
            other => other,
        })
        .collect()
}

/// Counters the tests and the demo read from `/admin/stats`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct SimStats {
    pub messages_received: u64,
    pub inquiries_accepted: u64,
    pub inquiry_resends_deduped: u64,
    pub code_acquisitions: u64,
    pub results_served: u64,
    pub refused_signature: u64,
    pub refused_closed: u64,
    /// Platform requests answered 500 in `failing` mode.
    pub refused_failing: u64,
    /// Platform requests whose connection was dropped in `dropping` mode.
    pub connections_dropped: u64,
    /// record id → processing serial, one per inquiry that took effect.
    pub effects: HashMap<String, String>,
    /// Copy versions (副本) that took effect.
    #[serde(default)]
    pub copies_registered: u64,
    /// Copy transfers received again for a version already registered (no effect).
    #[serde(default)]
    pub copy_resends_deduped: u64,
    /// copy version id → times it took effect (1 when delivery is exactly once in effect).
    #[serde(default)]
    pub copy_effects: HashMap<String, u32>,
}

struct SimInquiry {
    record_id: String,
    inquirer: AgencyCode,
    person: Vec<u8>,
    item: renkei_ids::ItemCode,
    condition: Condition,
    ready_ms: u64,
}

#[derive(Default)]
struct Inner {
    stats: SimStats,
    /// (agency, unified) → (fugo, person index).
    codes: HashMap<(String, UnifiedAddressNumber), (Fugo, Vec<u8>)>,
    /// message id → the answer given (body, signature header).
    answered: HashMap<String, (Bytes, String)>,
    /// When each answer was stored, oldest first: answers older than the replay window are
    /// forgotten (a resend that late is refused as stale anyway), so memory stays bounded.
    answered_order: std::collections::VecDeque<(u64, String)>,
    /// record id → message id that carried it.
    records: HashMap<String, String>,
    inquiries: HashMap<String, SimInquiry>,
    provision: provision::ProvisionDb,
    /// sender agency → the last alive notification heard from it (`GET /admin/alive`).
    alive: std::collections::BTreeMap<String, AliveHeard>,
}

/// The last alive notification (稼動状態の通知) from one agency, as `GET /admin/alive` shows it.
#[derive(Debug, Clone, Serialize)]
struct AliveHeard {
    agency: String,
    /// When the simulator received it (RFC 3339, JST).
    last_heard_at: String,
    /// When the sender made it (its header's `CreatedAt`).
    created_at: String,
    message_id: String,
    /// Notifications heard from this agency since the simulator started.
    count: u64,
}

/// The simulator's run-time state.
pub struct Sim {
    pub config: SimConfig,
    pub keys: Arc<KeyState>,
    mode: Mutex<(SimMode, u64)>,
    inner: Mutex<Inner>,
    data: data::ProviderData,
    capture: Option<PathBuf>,
    captured: AtomicU64,
    master_control: Mutex<MasterControl>,
}

/// `/admin/master` body: how the simulator's master information departs from its own keys,
/// to play a platform that drops a key or re-publishes a version with another key. Each call
/// replaces the previous control; `{}` restores the plain keyring.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MasterControl {
    /// Signing key versions left out of the master information.
    #[serde(default)]
    pub drop_signing: Vec<u32>,
    /// Signing key versions published with this key (base64 SEC1) instead of the keyring's.
    #[serde(default)]
    pub replace_signing: std::collections::BTreeMap<u32, String>,
}

/// `/admin/mode` body.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModeRequest {
    pub mode: SimMode,
    #[serde(default)]
    pub slow_ms: Option<u64>,
}

fn xml_response(status: StatusCode, body: Bytes, sig: &str) -> HttpResponse {
    Response::builder()
        .status(status)
        .header("content-type", "application/xml; charset=utf-8")
        .header(SIGNATURE_HEADER, sig)
        .body(Body::from(body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn json_response(status: StatusCode, v: &impl Serialize) -> HttpResponse {
    let body = serde_json::to_vec(v).unwrap_or_default();
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn fault(code: &str, message: &str) -> PlatformFault {
    PlatformFault {
        code: code.to_string(),
        message: message.to_string(),
    }
}

impl Sim {
    /// Loads keys, peers and provider data.
    pub fn new(config: SimConfig, capture: Option<PathBuf>) -> Result<Arc<Self>, SimError> {
        let keys = KeyState::load(
            config.agency_code.clone(),
            &config.keys.dir,
            &config.keys.master_key_file,
        )?;
        for p in &config.peers {
            keys.set_peer(PeerKeys::load(&p.keys)?);
        }
        let data = data::ProviderData::load(&config.provider_data)?;
        if let Some(dir) = &capture {
            std::fs::create_dir_all(dir).map_err(|source| SimError::Capture {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let mode = (config.mode, config.slow_ms);
        Ok(Arc::new(Self {
            config,
            keys: Arc::new(keys),
            mode: Mutex::new(mode),
            inner: Mutex::new(Inner::default()),
            data,
            capture,
            captured: AtomicU64::new(0),
            master_control: Mutex::new(MasterControl::default()),
        }))
    }

    /// Changes the mode (as `/admin/mode` does).
    pub fn set_mode(&self, mode: SimMode, slow_ms: u64) {
        let mut g = match self.mode.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *g = (mode, slow_ms);
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn mode(&self) -> (SimMode, u64) {
        match self.mode.lock() {
            Ok(g) => *g,
            Err(p) => *p.into_inner(),
        }
    }

    /// Serves one HTTP request.
    pub async fn handle(
        self: Arc<Self>,
        peer: Peer,
        req: Request<Incoming>,
    ) -> Result<HttpResponse, std::io::Error> {
        let path = req.uri().path().to_string();
        if path.starts_with("/admin/") {
            return Ok(self.admin(peer, req).await);
        }
        let (mode, slow_ms) = self.mode();
        match mode {
            SimMode::Dropping => {
                self.inner().stats.connections_dropped += 1;
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "simulated drop",
                ));
            }
            SimMode::Failing => {
                self.inner().stats.refused_failing += 1;
                return Ok(json_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &serde_json::json!({"error": "simulated failure"}),
                ));
            }
            SimMode::Slow => tokio::time::sleep(Duration::from_millis(slow_ms)).await,
            SimMode::Closed | SimMode::Open => {}
        }
        let hours_closed = parse_hours(&self.config.operating_hours)
            .map(|w| ms_until_open(now_ms(), w) > 0)
            .unwrap_or(false);
        if mode == SimMode::Closed || hours_closed {
            self.inner().stats.refused_closed += 1;
            let (body, sig) = self.sign(&Message::Fault {
                header: self.header(None, &self.config.agency_code),
                fault: fault(faults::CLOSED, "現在、業務時間外のため受け付けできません。"),
            });
            let mut r = xml_response(StatusCode::SERVICE_UNAVAILABLE, body, &sig);
            r.headers_mut()
                .insert("retry-after", hyper::header::HeaderValue::from_static("1"));
            return Ok(r);
        }
        if path == MASTER_PATH && req.method() == hyper::Method::GET {
            let (body, sig) = self.sign(&self.master_info(&peer));
            return Ok(xml_response(StatusCode::OK, body, &sig));
        }
        if path != MESSAGES_PATH || req.method() != hyper::Method::POST {
            return Ok(json_response(
                StatusCode::NOT_FOUND,
                &serde_json::json!({"error": "no such endpoint"}),
            ));
        }
        let sig = req
            .headers()
            .get(SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = match Limited::new(req.into_body(), MAX_MESSAGE_BYTES)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return Ok(self.refuse(None, faults::BAD_MESSAGE, "電文が大きすぎます。"));
            }
        };
        self.capture(&body);
        self.inner().stats.messages_received += 1;
        let signer = match self.keys.verify(sig.as_deref(), &body) {
            Ok((agency, _)) => agency,
            Err(error) => {
                tracing::warn!(message = "Refused a message with a bad signature.", %error);
                self.inner().stats.refused_signature += 1;
                return Ok(self.refuse(None, faults::BAD_SIGNATURE, "署名の検証に失敗しました。"));
            }
        };
        let msg = match from_xml(&body) {
            Ok(m) => m,
            Err(e) => {
                return Ok(self.refuse(
                    None,
                    faults::BAD_MESSAGE,
                    &format!("電文の形式が不正です。（{}）", e.path),
                ))
            }
        };
        let h = msg.header().clone();
        if h.sender.as_str() != signer || h.recipient != self.config.agency_code {
            return Ok(self.refuse(
                Some(&h),
                faults::BAD_MESSAGE,
                "送信元または宛先が不正です。",
            ));
        }
        let fresh = parse_rfc3339_ms(&h.created_at)
            .map(|t| now_ms().abs_diff(t) <= DEFAULT_REPLAY_WINDOW_MS)
            .unwrap_or(false);
        if !fresh {
            return Ok(self.refuse(
                Some(&h),
                faults::BAD_MESSAGE,
                "電文の作成日時が許容範囲外です。",
            ));
        }
        // Dedupe by message id: a resend gets the very answer the first one got.
        let earlier = self.inner().answered.get(&h.message_id).cloned();
        if let Some((b, s)) = earlier {
            if matches!(msg, Message::InquiryRequest { .. }) {
                self.inner().stats.inquiry_resends_deduped += 1;
            }
            return Ok(xml_response(StatusCode::OK, b, &s));
        }
        let answer = self.answer(msg, &signer);
        let (b, s) = self.sign(&answer);
        if !matches!(
            answer,
            Message::InquiryResult { .. } | Message::Fault { .. }
        ) {
            let now = now_ms();
            let mut inner = self.inner();
            inner
                .answered
                .insert(h.message_id.clone(), (b.clone(), s.clone()));
            inner.answered_order.push_back((now, h.message_id.clone()));
            while let Some((t, _)) = inner.answered_order.front() {
                if now.saturating_sub(*t) <= 2 * DEFAULT_REPLAY_WINDOW_MS {
                    break;
                }
                if let Some((_, id)) = inner.answered_order.pop_front() {
                    inner.answered.remove(&id);
                }
            }
        }
        Ok(xml_response(StatusCode::OK, b, &s))
    }

    /// The signed master information for the agency behind `peer`.
    fn master_info(&self, peer: &Peer) -> Message {
        let recipient = self
            .config
            .peers
            .iter()
            .find(|p| p.client_name.as_str() == peer.name)
            .or(self.config.peers.first())
            .map(|p| p.agency_code.clone())
            .unwrap_or_else(|| self.config.agency_code.clone());
        let mut agencies = vec![
            (
                self.config.agency_code.clone(),
                "中間サーバー・プラットフォーム（シミュレータ）".to_string(),
            ),
            (
                self.config.provider_agency_code.clone(),
                "情報提供者（シミュレータ）".to_string(),
            ),
        ];
        for p in &self.config.peers {
            agencies.push((
                p.agency_code.clone(),
                format!("情報照会者 {}", p.client_name),
            ));
        }
        let mut procedures: Vec<_> = self
            .config
            .permissions
            .iter()
            .map(|p| p.procedure.clone())
            .collect();
        procedures.sort();
        procedures.dedup();
        let mut items: Vec<_> = self
            .config
            .permissions
            .iter()
            .map(|p| p.item.clone())
            .collect();
        items.sort();
        items.dedup();
        let own = self.keys.own_public();
        let control = match self.master_control.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let mut signing: std::collections::BTreeMap<u32, Vec<u8>> =
            own.signing.iter().map(|(v, k)| (*v, k.to_sec1())).collect();
        for (v, k) in &control.replace_signing {
            use base64::Engine;
            if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(k) {
                signing.insert(*v, bytes);
            }
        }
        let mut keys = Vec::new();
        for (v, k) in signing
            .into_iter()
            .filter(|(v, _)| !control.drop_signing.contains(v))
        {
            keys.push(renkei_platform::PublishedKey {
                agency: self.config.agency_code.clone(),
                key_use: renkei_platform::KeyUse::Signing,
                version: v,
                public_key: k,
                not_after: None,
            });
        }
        for (v, k) in &own.sealing {
            keys.push(renkei_platform::PublishedKey {
                agency: self.config.agency_code.clone(),
                key_use: renkei_platform::KeyUse::Sealing,
                version: *v,
                public_key: k.to_bytes(),
                not_after: None,
            });
        }
        Message::MasterInfo {
            header: self.header(None, &recipient),
            valid_until: rfc3339_jst(now_ms() + DEFAULT_MASTER_VALIDITY_MS),
            agencies,
            procedures: procedures
                .into_iter()
                .map(|p| (p, "事務手続".to_string()))
                .collect(),
            items: items
                .into_iter()
                .map(|i| (i, "特定個人情報".to_string()))
                .collect(),
            permissions: self
                .config
                .permissions
                .iter()
                .map(|p| (p.procedure.clone(), p.item.clone()))
                .collect(),
            keys,
        }
    }

    fn capture(&self, body: &[u8]) {
        if let Some(dir) = &self.capture {
            let n = self.captured.fetch_add(1, Ordering::SeqCst);
            let path = dir.join(format!("{n:08}.xml"));
            if let Err(error) = std::fs::write(&path, body) {
                tracing::warn!(message = "Capture failed.", %error);
            }
        }
    }

    fn header(&self, reply_to: Option<&Header>, recipient: &AgencyCode) -> Header {
        Header {
            message_id: new_id("PF"),
            sender: self.config.agency_code.clone(),
            recipient: reply_to
                .map(|h| h.sender.clone())
                .unwrap_or_else(|| recipient.clone()),
            created_at: rfc3339_jst(now_ms()),
            in_reply_to: reply_to.map(|h| h.message_id.clone()),
        }
    }

    fn sign(&self, m: &Message) -> (Bytes, String) {
        let body = to_xml(m);
        let sig = self.keys.sign(body.as_bytes()).unwrap_or_default();
        (Bytes::from(body), sig)
    }

    fn refuse(&self, h: Option<&Header>, code: &str, text: &str) -> HttpResponse {
        let mut header = self.header(h, &self.config.agency_code);
        if h.is_none() {
            header.recipient = self.config.agency_code.clone();
        }
        let (b, s) = self.sign(&Message::Fault {
            header,
            fault: fault(code, text),
        });
        xml_response(StatusCode::BAD_REQUEST, b, &s)
    }

    fn person_index(&self, digits: &[u8]) -> Vec<u8> {
        self.keys.keyring().blind_index().index(digits).to_vec()
    }

    fn answer(&self, msg: Message, signer: &str) -> Message {
        match msg {
            Message::CodeAcquisitionRequest {
                header,
                unified,
                sealed,
            } => {
                let outcome = match self
                    .keys
                    .open("CodeAcquisitionRequest", &header.message_id, &sealed)
                    .map_err(|e| e.to_string())
                    .and_then(|b| IdentityPayload::from_xml(&b).map_err(|e| e.to_string()))
                {
                    Ok(identity) => {
                        let digits =
                            zeroize::Zeroizing::new(identity.individual_number.expose_digits());
                        let person = self.person_index(digits.as_bytes());
                        match data::fugo_for(&person, signer) {
                            Some(fugo) => {
                                let mut inner = self.inner();
                                inner.stats.code_acquisitions += 1;
                                inner
                                    .codes
                                    .insert((signer.to_string(), unified), (fugo.clone(), person));
                                CodeOutcome::Acquired { fugo }
                            }
                            None => CodeOutcome::Failed {
                                fault: fault(faults::BAD_MESSAGE, "符号を生成できません。"),
                            },
                        }
                    }
                    Err(_) => CodeOutcome::Failed {
                        fault: fault(faults::BAD_MESSAGE, "暗号化データを復号できません。"),
                    },
                };
                Message::CodeAcquisitionResponse {
                    header: self.header(Some(&header), &header.sender),
                    unified,
                    outcome,
                }
            }
            Message::InquiryRequest {
                header,
                record_id,
                procedure,
                item,
                condition,
                sealed,
                ..
            } => {
                let reply = self.header(Some(&header), &header.sender);
                let rejected = |f: PlatformFault| Message::InquiryReceipt {
                    header: reply.clone(),
                    record_id: record_id.clone(),
                    outcome: ReceiptOutcome::Rejected { fault: f },
                };
                let target = match self
                    .keys
                    .open("InquiryRequest", &header.message_id, &sealed)
                    .map_err(|e| e.to_string())
                    .and_then(|b| TargetPayload::from_xml(&b).map_err(|e| e.to_string()))
                {
                    Ok(t) => t,
                    Err(_) => {
                        return rejected(fault(
                            faults::BAD_MESSAGE,
                            "暗号化データを復号できません。",
                        ))
                    }
                };
                if !self
                    .config
                    .permissions
                    .iter()
                    .any(|p| p.procedure == procedure && p.item == item)
                {
                    return rejected(fault(
                        faults::NOT_PERMITTED,
                        &format!(
                            "照会は許可されていません。（事務手続コード：{}、特定個人情報名コード：{}）",
                            fullwidth_digits(procedure.as_str()),
                            fullwidth_digits(item.as_str())
                        ),
                    ));
                }
                let mut inner = self.inner();
                let Some((_, person)) = inner
                    .codes
                    .get(&(signer.to_string(), target.unified))
                    .cloned()
                else {
                    return rejected(fault(
                        faults::CODE_NOT_ACQUIRED,
                        &format!(
                            "符号が未取得です。（団体内統合宛名番号：{}）",
                            fullwidth_digits(&target.unified.to_string())
                        ),
                    ));
                };
                if let Some(other) = inner.records.get(&record_id) {
                    if other != &header.message_id {
                        return rejected(fault(
                            faults::DUPLICATE_RECORD,
                            "レコード識別番号が重複しています。",
                        ));
                    }
                }
                let n = inner.stats.inquiries_accepted + 1;
                let Ok(serial) = ProcessingSerial::parse(&format!("S{n:015}")) else {
                    return rejected(fault(faults::BAD_MESSAGE, "処理通番を採番できません。"));
                };
                inner.stats.inquiries_accepted = n;
                inner
                    .stats
                    .effects
                    .insert(record_id.clone(), serial.to_string());
                inner
                    .records
                    .insert(record_id.clone(), header.message_id.clone());
                inner.inquiries.insert(
                    serial.to_string(),
                    SimInquiry {
                        record_id: record_id.clone(),
                        inquirer: header.sender.clone(),
                        person,
                        item,
                        condition,
                        ready_ms: now_ms() + self.config.result_delay_ms,
                    },
                );
                Message::InquiryReceipt {
                    header: reply,
                    record_id,
                    outcome: ReceiptOutcome::Accepted { serial },
                }
            }
            Message::ResultRequest { header, serial } => {
                let reply = self.header(Some(&header), &header.sender);
                let found = {
                    let inner = self.inner();
                    inner.inquiries.get(serial.as_str()).map(|q| {
                        (
                            q.record_id.clone(),
                            q.inquirer.clone(),
                            q.person.clone(),
                            q.item.clone(),
                            q.condition.clone(),
                            q.ready_ms,
                        )
                    })
                };
                let Some((record_id, inquirer, person, item, condition, ready)) = found else {
                    return Message::Fault {
                        header: reply,
                        fault: fault(faults::UNKNOWN_SERIAL, "処理通番が見つかりません。"),
                    };
                };
                if inquirer != header.sender {
                    return Message::Fault {
                        header: reply,
                        fault: fault(faults::UNKNOWN_SERIAL, "処理通番が見つかりません。"),
                    };
                }
                if now_ms() < ready {
                    return Message::InquiryResult {
                        header: reply,
                        serial,
                        record_id,
                        status: ResultStatus::Pending,
                        provider: None,
                        sealed: None,
                        fault: None,
                    };
                }
                let (item_status, items) = self.data.answer(&person, &item, &condition);
                let payload = ResultPayload { items };
                let sealed = self
                    .keys
                    .seal_to(
                        inquirer.as_str(),
                        "InquiryResult",
                        &reply.message_id,
                        payload.to_xml().as_bytes(),
                    )
                    .ok();
                self.inner().stats.results_served += 1;
                Message::InquiryResult {
                    header: reply,
                    serial,
                    record_id,
                    status: ResultStatus::Finished {
                        detail_status: "09".into(),
                        item_status: item_status.into(),
                    },
                    provider: Some(self.config.provider_agency_code.clone()),
                    sealed,
                    fault: None,
                }
            }
            Message::KeyPublication { header, key } => {
                let reply = self.header(Some(&header), &header.sender);
                let mut peer = match self.keys.peer(key.agency.as_str()) {
                    Some(p) if key.agency == header.sender => (*p).clone(),
                    _ => {
                        return Message::Fault {
                            header: reply,
                            fault: fault(faults::BAD_MESSAGE, "鍵の公開元が不正です。"),
                        }
                    }
                };
                let ok = match key.key_use {
                    renkei_platform::KeyUse::Signing => {
                        renkei_crypto::VerifyingKey::from_sec1(&key.public_key)
                            .map(|k| {
                                peer.signing.insert(key.version, k);
                            })
                            .is_ok()
                    }
                    renkei_platform::KeyUse::Sealing => {
                        renkei_crypto::SealingPublicKey::from_bytes(&key.public_key)
                            .map(|k| {
                                peer.sealing.insert(key.version, k);
                            })
                            .is_ok()
                    }
                };
                if !ok {
                    return Message::Fault {
                        header: reply,
                        fault: fault(faults::BAD_MESSAGE, "公開鍵の形式が不正です。"),
                    };
                }
                self.keys.set_peer(peer);
                Message::KeyPublicationAck {
                    header: reply,
                    agency: key.agency,
                    key_use: key.key_use,
                    version: key.version,
                }
            }
            Message::CopyTransfer {
                header,
                record_id,
                unified,
                item,
                dataset,
                version,
                effective_from,
                effective_to,
                non_disclosure,
                sealed,
                ..
            } => {
                let reply = self.header(Some(&header), &header.sender);
                let ack = |fault: Option<PlatformFault>| Message::CopyTransferAck {
                    header: reply.clone(),
                    record_id: record_id.clone(),
                    fault,
                };
                let fields = match &sealed {
                    None => Vec::new(),
                    Some(sealed) => match self
                        .keys
                        .open("CopyTransfer", &header.message_id, sealed)
                        .map_err(|e| e.to_string())
                        .and_then(|b| ResultPayload::from_xml(&b).map_err(|e| e.to_string()))
                    {
                        Ok(p) if p.items.len() == 1 && p.items[0].item == item => {
                            p.items.into_iter().flat_map(|i| i.fields).collect()
                        }
                        _ => {
                            return ack(Some(fault(
                                faults::BAD_MESSAGE,
                                "暗号化データを復号できません。",
                            )))
                        }
                    },
                };
                let copy = provision::SimCopy {
                    record_id: record_id.clone(),
                    dataset,
                    version,
                    effective_from,
                    effective_to,
                    non_disclosure,
                    withdrawn: sealed.is_none(),
                    fields,
                };
                let mut inner = self.inner();
                match inner.provision.register(signer, unified, item, copy) {
                    Ok(provision::Registered::New) => {
                        inner.stats.copies_registered += 1;
                        *inner
                            .stats
                            .copy_effects
                            .entry(record_id.clone())
                            .or_default() += 1;
                        drop(inner);
                        ack(None)
                    }
                    Ok(provision::Registered::Again) => {
                        inner.stats.copy_resends_deduped += 1;
                        drop(inner);
                        ack(None)
                    }
                    Err(f) => {
                        drop(inner);
                        ack(Some(f))
                    }
                }
            }
            Message::AliveNotification { header } => {
                let mut inner = self.inner();
                let count = inner.alive.get(signer).map_or(0, |a| a.count) + 1;
                inner.alive.insert(
                    signer.to_string(),
                    AliveHeard {
                        agency: signer.to_string(),
                        last_heard_at: rfc3339_jst(now_ms()),
                        created_at: header.created_at.clone(),
                        message_id: header.message_id.clone(),
                        count,
                    },
                );
                drop(inner);
                Message::AliveAck {
                    header: self.header(Some(&header), &header.sender),
                }
            }
            Message::ManualRequestFetch { header } => {
                let requests = self.inner().provision.manual_pending(signer, now_ms(), 500);
                Message::ManualRequestList {
                    header: self.header(Some(&header), &header.sender),
                    requests,
                }
            }
            Message::ManualAnswer {
                header,
                request_id,
                decision,
            } => {
                let reply = self.header(Some(&header), &header.sender);
                let ack = |fault: Option<PlatformFault>| Message::ManualAnswerAck {
                    header: reply.clone(),
                    request_id: request_id.clone(),
                    fault,
                };
                let item = self.inner().provision.manual_item(signer, &request_id);
                let answer = match (decision, item) {
                    (_, None) => {
                        return ack(Some(fault(
                            faults::MANUAL_UNKNOWN,
                            "手動提供の依頼が見つかりません。",
                        )))
                    }
                    (ManualDecision::Provide(sealed), Some(item)) => match self
                        .keys
                        .open("ManualAnswer", &header.message_id, &sealed)
                        .map_err(|e| e.to_string())
                        .and_then(|b| ResultPayload::from_xml(&b).map_err(|e| e.to_string()))
                    {
                        Ok(p) if p.items.len() == 1 && p.items[0].item == item => {
                            provision::ManualAnswerKind::Provide(
                                p.items.into_iter().flat_map(|i| i.fields).collect(),
                            )
                        }
                        _ => {
                            return ack(Some(fault(
                                faults::BAD_MESSAGE,
                                "暗号化データを復号できません。",
                            )))
                        }
                    },
                    (ManualDecision::NotHeld, Some(_)) => provision::ManualAnswerKind::NotHeld,
                    (ManualDecision::Refuse { reason }, Some(_)) => {
                        provision::ManualAnswerKind::Refuse(reason)
                    }
                };
                let taken =
                    self.inner()
                        .provision
                        .manual_answer(signer, &request_id, answer, now_ms());
                ack(taken.err())
            }
            Message::ProvisionLogRequest { header, after } => {
                let entries = self.inner().provision.log_after(signer, after, 500);
                Message::ProvisionLog {
                    header: self.header(Some(&header), &header.sender),
                    entries,
                }
            }
            other => {
                let h = other.header().clone();
                Message::Fault {
                    header: self.header(Some(&h), &h.sender),
                    fault: fault(faults::BAD_MESSAGE, "この電文種別は受け付けていません。"),
                }
            }
        }
    }

    /// Answers another agency's inquiry from the provision database.
    fn provision_inquiry(
        &self,
        r: &provision::ProvisionInquiryRequest,
    ) -> provision::ProvisionInquiry {
        let row = self
            .config
            .permissions
            .iter()
            .find(|p| p.procedure == r.procedure_code && p.item == r.item_code);
        let permitted = row.is_some();
        // A manual item is handed to the city, to answer by the deadline.
        let manual_deadline = row.filter(|p| p.manual).map(|_| {
            let wait = r
                .deadline_ms
                .unwrap_or(self.config.manual_deadline_secs.saturating_mul(1000));
            let at = now_ms().saturating_add(wait);
            (at, rfc3339_jst(at))
        });
        let now = rfc3339_jst(now_ms());
        let today = now.get(..10).unwrap_or_default().to_string();
        let inquirer = r
            .inquirer
            .clone()
            .unwrap_or_else(|| self.config.provider_agency_code.clone());
        let default_city = self.config.peers.first().map(|p| p.agency_code.to_string());
        self.inner().provision.ask(
            r,
            provision::AskContext {
                id: new_id("PQ"),
                permitted,
                inquirer,
                today,
                now,
                default_city,
                manual_deadline,
            },
        )
    }

    async fn admin(&self, peer: Peer, req: Request<Incoming>) -> HttpResponse {
        if peer.name != self.config.admin_client.as_str() {
            return json_response(
                StatusCode::FORBIDDEN,
                &serde_json::json!({"code": "not_admin", "message": "admin client certificate required"}),
            );
        }
        let path = req.uri().path().to_string();
        match (req.method().clone(), path.as_str()) {
            (hyper::Method::GET, "/admin/alive") => {
                // When the simulator last heard each agency's alive notification.
                let heard: Vec<AliveHeard> = self.inner().alive.values().cloned().collect();
                json_response(StatusCode::OK, &serde_json::json!({ "agencies": heard }))
            }
            (hyper::Method::GET, "/admin/stats") => {
                let stats = self.inner().stats.clone();
                json_response(StatusCode::OK, &stats)
            }
            (hyper::Method::GET, "/admin/codes") => {
                // The codes (符号) issued, for tests that look for them where they must not be.
                let codes: Vec<serde_json::Value> = self
                    .inner()
                    .codes
                    .iter()
                    .map(|((agency, unified), (fugo, _))| {
                        serde_json::json!({
                            "agency": agency, "unified": unified.to_string(), "fugo": fugo.as_str(),
                        })
                    })
                    .collect();
                json_response(StatusCode::OK, &codes)
            }
            (hyper::Method::POST, "/admin/provision-inquiries") => {
                let body = match Limited::new(req.into_body(), 4096).collect().await {
                    Ok(b) => b.to_bytes(),
                    Err(_) => Bytes::new(),
                };
                match serde_json::from_slice::<provision::ProvisionInquiryRequest>(&body) {
                    Ok(r) if r.as_of.as_deref().is_none_or(valid_date) => {
                        let q = self.provision_inquiry(&r);
                        json_response(StatusCode::CREATED, &serde_json::json!({"id": q.id}))
                    }
                    _ => json_response(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        &serde_json::json!({"code": "invalid_provision_inquiry", "message": "expected {unified_address_number, procedure_code, item_code, as_of?: YYYY-MM-DD}"}),
                    ),
                }
            }
            (hyper::Method::GET, "/admin/copies") => {
                let v: Vec<serde_json::Value> = self
                    .inner()
                    .provision
                    .versions()
                    .into_iter()
                    .map(|(a, u, i, v, w)| serde_json::json!({"agency": a, "unified": u, "item": i, "version": v, "withdrawn": w}))
                    .collect();
                json_response(StatusCode::OK, &v)
            }
            (hyper::Method::GET, p) if p.starts_with("/admin/provision-inquiries/") => {
                let id = &p["/admin/provision-inquiries/".len()..];
                match self.inner().provision.inquiry(id, now_ms()) {
                    Some(q) => json_response(StatusCode::OK, &q),
                    None => json_response(
                        StatusCode::NOT_FOUND,
                        &serde_json::json!({"code": "not_found"}),
                    ),
                }
            }
            (hyper::Method::POST, "/admin/mode") => {
                let body = match Limited::new(req.into_body(), 4096).collect().await {
                    Ok(b) => b.to_bytes(),
                    Err(_) => Bytes::new(),
                };
                match serde_json::from_slice::<ModeRequest>(&body) {
                    Ok(m) => {
                        let mut g = match self.mode.lock() {
                            Ok(g) => g,
                            Err(p) => p.into_inner(),
                        };
                        *g = (m.mode, m.slow_ms.unwrap_or(g.1));
                        tracing::info!(message = "Simulator mode changed.", mode = ?m.mode);
                        json_response(StatusCode::OK, &m)
                    }
                    Err(e) => json_response(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        &serde_json::json!({"code": "invalid_mode", "message": e.to_string()}),
                    ),
                }
            }
            (hyper::Method::POST, "/admin/master") => {
                let body = match Limited::new(req.into_body(), 16 * 1024).collect().await {
                    Ok(b) => b.to_bytes(),
                    Err(_) => Bytes::new(),
                };
                match serde_json::from_slice::<MasterControl>(&body) {
                    Ok(c) => {
                        tracing::info!(message = "Simulator master information changed.", dropped = ?c.drop_signing, replaced = ?c.replace_signing.keys().collect::<Vec<_>>());
                        let mut g = match self.master_control.lock() {
                            Ok(g) => g,
                            Err(p) => p.into_inner(),
                        };
                        *g = c.clone();
                        json_response(StatusCode::OK, &c)
                    }
                    Err(_) => json_response(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        &serde_json::json!({"code": "invalid_master_control", "message": "expected {drop_signing, replace_signing}"}),
                    ),
                }
            }
            _ => json_response(
                StatusCode::NOT_FOUND,
                &serde_json::json!({"code": "no_such_endpoint"}),
            ),
        }
    }
}

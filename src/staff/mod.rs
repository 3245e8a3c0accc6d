//! Staff users and their sign-in sessions: who may sign in ([`StaffUser`], bound to one client
//! certificate), with what (an argon2id password and a TOTP code, [`credentials`]), for how
//! long (idle and absolute timeouts, `[staff]`), and the lockout after failures in a row.
//!
//! Storage, all in `Tree::Staff`, every value sealed with the at-rest key bound to its
//! location [`staff_location`] (`staff/<key>`): `user/<name>` holds a user (password hash,
//! TOTP secret, state), `session/<sha256 of token>` a session (the token itself is never
//! stored). Every sign-in, failure, lockout, sign-out and user change is a staff-action
//! record, durable before the answer; no record, log line or error holds a password, TOTP
//! secret, code or token. Time comes from an injected [`Clock`], so tests move it.

pub mod credentials;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use renkei_crypto::at_rest::{decrypt_at_rest, encrypt_at_rest, AT_REST_MAGIC};
use renkei_records::{RecordKind, RecordResult, StaffDetail};
use renkei_store::{Batch, Store, StoreError, Tree};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::config::StaffConfig;
use crate::keyring::KeyState;
use credentials::CredentialError;

/// Where time comes from (milliseconds since the Unix epoch).
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> u64;
}

/// The system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        crate::util::now_ms()
    }
}

/// A clock that moves only when told (for tests of timeouts and lockout).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn new(ms: u64) -> Self {
        Self(AtomicU64::new(ms))
    }
    /// Moves the clock forward by `secs`.
    pub fn advance_secs(&self, secs: u64) {
        self.0.fetch_add(secs * 1000, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Why a staff operation was refused. Each has a stable code; none carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum StaffError {
    /// Unknown user, wrong certificate, wrong password, wrong or replayed code, disabled
    /// user: one answer for all, so a caller learns nothing about which factor failed.
    #[error("sign-in failed: check the user name, password and code")]
    SignInFailed,
    /// Too many failures in a row: locked for a while, whatever is presented.
    #[error("this user is locked after too many failed sign-ins; try again later")]
    Locked,
    /// No session token was sent.
    #[error("this endpoint needs a staff session: sign in first")]
    SessionRequired,
    /// The token is ended, expired, unknown, or its user was disabled or reset.
    #[error("the session has ended or expired: sign in again")]
    SessionExpired,
    /// The token belongs to a session signed in with another client certificate.
    #[error("the session does not belong to this client certificate")]
    SessionMismatch,
    /// No staff user of that name.
    #[error("no such staff user")]
    NoSuchUser,
    /// A user of that name exists already.
    #[error("a staff user of that name exists")]
    UserExists,
    /// A user name outside `[a-z0-9][a-z0-9._-]{0,63}`.
    #[error("user: 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit")]
    BadUserName,
    /// A new password shorter than the minimum.
    #[error("new_password: at least 12 characters")]
    WeakPassword,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("staff store value: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Credential(#[from] CredentialError),
}

impl StaffError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            StaffError::SignInFailed => "sign_in_failed",
            StaffError::Locked => "account_locked",
            StaffError::SessionRequired => "session_required",
            StaffError::SessionExpired => "session_expired",
            StaffError::SessionMismatch => "session_mismatch",
            StaffError::NoSuchUser => "no_such_user",
            StaffError::UserExists => "user_exists",
            StaffError::BadUserName => "bad_user_name",
            StaffError::WeakPassword => "weak_password",
            StaffError::Store(e) => e.code(),
            StaffError::Corrupt(_) => "staff_store_corrupt",
            StaffError::Credential(_) => "credential_failure",
        }
    }
}

/// A staff user as stored (sealed). Not `Debug`: it holds the password hash and TOTP secret.
#[derive(Clone, Serialize, Deserialize)]
struct UserRecord {
    user: String,
    /// The client certificate name this user signs in with.
    certificate: String,
    password_hash: String,
    totp_secret: String,
    disabled: bool,
    /// Failed sign-ins in a row since the last success or lock.
    failures: u32,
    locked_until_ms: u64,
    /// The last TOTP step accepted: a code of this step or an earlier one is refused.
    last_totp_step: u64,
    /// Bumped by disable and reset: a session of an older generation has ended.
    generation: u64,
    created_ms: u64,
}

/// A session as stored (sealed), under the SHA-256 of its token.
#[derive(Clone, Serialize, Deserialize)]
struct SessionRecord {
    user: String,
    certificate: String,
    generation: u64,
    created_ms: u64,
    last_seen_ms: u64,
}

/// A user as the admin sees it (no secret).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StaffUser {
    pub user: String,
    pub certificate: String,
    pub disabled: bool,
    pub locked: bool,
    pub created_at: String,
}

/// A user's first-login secrets: shown once, to be handed to the person.
pub struct FirstLogin {
    pub user: String,
    pub password: Zeroizing<String>,
    pub totp_secret: Zeroizing<String>,
}

impl FirstLogin {
    /// `{"user", "password", "totp_secret"}` (the first-login file and the admin's answer).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "user": self.user,
            "password": self.password.as_str(),
            "totp_secret": self.totp_secret.as_str(),
        })
    }

    /// The `otpauth://` URI an authenticator app scans.
    pub fn otpauth_uri(&self) -> String {
        format!(
            "otpauth://totp/renkei:{u}?secret={s}&issuer=renkei&algorithm=SHA1&digits=6&period=30",
            u = self.user,
            s = self.totp_secret.as_str()
        )
    }
}

/// A new session: its token (shown once) and when it ends if unused.
pub struct NewSession {
    pub token: Zeroizing<String>,
    pub expires_at: String,
}

/// A checked session: who is signed in.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: String,
    /// The digest the session is stored under (to end it).
    digest: String,
}

/// What a sign-in presents.
pub struct Attempt<'a> {
    pub user: &'a str,
    pub password: &'a str,
    pub totp: &'a str,
    /// The caller's client certificate name.
    pub certificate: &'a str,
}

/// The at-rest location a `Tree::Staff` value is bound to.
pub fn staff_location(key: &[u8]) -> String {
    format!("staff/{}", String::from_utf8_lossy(key))
}

fn user_key(name: &str) -> Vec<u8> {
    format!("user/{name}").into_bytes()
}

fn session_key(digest: &str) -> Vec<u8> {
    format!("session/{digest}").into_bytes()
}

/// True for a well-formed user name.
pub fn valid_user_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c))
}

/// Staff users and sessions.
pub struct Staff {
    store: Arc<dyn Store>,
    keys: Arc<KeyState>,
    config: StaffConfig,
    clock: Arc<dyn Clock>,
    /// Serialises this process's read-modify-writes of user records (each is also a
    /// compare-and-swap in the store).
    users_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Staff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staff").finish_non_exhaustive()
    }
}

/// Only write a session's last use when it moved by this much (fewer commits; the idle
/// timeout is that much less exact).
const TOUCH_EVERY_MS: u64 = 5_000;

impl Staff {
    pub fn new(
        store: Arc<dyn Store>,
        keys: Arc<KeyState>,
        config: StaffConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            keys,
            config,
            clock,
            users_lock: tokio::sync::Mutex::new(()),
        }
    }

    fn seal<T: Serialize>(&self, key: &[u8], v: &T) -> Result<Vec<u8>, StaffError> {
        let plain =
            Zeroizing::new(serde_json::to_vec(v).map_err(|e| StaffError::Corrupt(e.to_string()))?);
        encrypt_at_rest(&self.keys.keyring(), &staff_location(key), &plain)
            .map_err(|e| StaffError::Corrupt(e.to_string()))
    }

    fn open<T: serde::de::DeserializeOwned>(&self, key: &[u8], v: &[u8]) -> Result<T, StaffError> {
        if !v.starts_with(AT_REST_MAGIC) {
            return Err(StaffError::Corrupt("value is not sealed".into()));
        }
        let plain = decrypt_at_rest(&self.keys.keyring(), &staff_location(key), v)
            .map_err(|e| StaffError::Corrupt(e.to_string()))?;
        serde_json::from_slice(&plain).map_err(|e| StaffError::Corrupt(e.to_string()))
    }

    /// A user and the stored bytes (for compare-and-swap).
    fn load_user(&self, name: &str) -> Result<Option<(UserRecord, Vec<u8>)>, StaffError> {
        let key = user_key(name);
        match self.store.get(Tree::Staff, &key)? {
            Some(v) => Ok(Some((self.open(&key, &v)?, v))),
            None => Ok(None),
        }
    }

    /// Stages the replacement of a user record read as `old`.
    fn stage_user(&self, b: &mut Batch, u: &UserRecord, old: &[u8]) -> Result<(), StaffError> {
        let key = user_key(&u.user);
        b.require_equal(Tree::Staff, key.clone(), old.to_vec());
        b.put(Tree::Staff, key.clone(), self.seal(&key, u)?);
        Ok(())
    }

    /// Appends a staff-action record of `action` by `who` to `b`.
    fn stage_record(
        b: &mut Batch,
        who: &StaffDetail,
        action: &str,
        target: Option<&str>,
        refused: Option<&'static str>,
    ) {
        let result = if refused.is_some() {
            RecordResult::Refused
        } else {
            RecordResult::Done
        };
        let mut r = crate::records::base(RecordKind::StaffAction, result);
        r.reason = refused.map(str::to_string);
        r.staff = Some(StaffDetail {
            action: action.to_string(),
            target: target.map(|t| format!("staff-user:{t}")),
            ..who.clone()
        });
        crate::records::append(b, &r);
    }

    /// Records a refused action on its own, durably.
    async fn record_refusal(
        &self,
        who: &StaffDetail,
        action: &str,
        target: Option<&str>,
        reason: &'static str,
    ) -> Result<(), StaffError> {
        let mut b = Batch::new();
        Self::stage_record(&mut b, who, action, target, Some(reason));
        self.store.commit(b).await?;
        Ok(())
    }

    /// A fresh user record with new first-login secrets.
    fn new_user(
        &self,
        name: &str,
        certificate: &str,
    ) -> Result<(UserRecord, FirstLogin), StaffError> {
        if !valid_user_name(name) {
            return Err(StaffError::BadUserName);
        }
        let password = credentials::generate_password()?;
        let secret = credentials::generate_totp_secret()?;
        let rec = UserRecord {
            user: name.to_string(),
            certificate: certificate.to_string(),
            password_hash: credentials::hash_password(&password)?,
            totp_secret: secret.to_string(),
            disabled: false,
            failures: 0,
            locked_until_ms: 0,
            last_totp_step: 0,
            generation: 0,
            created_ms: self.clock.now_ms(),
        };
        Ok((
            rec,
            FirstLogin {
                user: name.to_string(),
                password,
                totp_secret: secret,
            },
        ))
    }

    /// Creates a user bound to `certificate` without a record (for `renkei init`, before the
    /// gateway runs).
    pub async fn create_initial(
        &self,
        name: &str,
        certificate: &str,
    ) -> Result<FirstLogin, StaffError> {
        let (rec, first) = self.new_user(name, certificate)?;
        let key = user_key(name);
        let mut b = Batch::new();
        b.require_absent(Tree::Staff, key.clone());
        b.put(Tree::Staff, key.clone(), self.seal(&key, &rec)?);
        self.commit_new(b).await?;
        Ok(first)
    }

    async fn commit_new(&self, b: Batch) -> Result<(), StaffError> {
        match self.store.commit(b).await {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict { .. }) => Err(StaffError::UserExists),
            Err(e) => Err(e.into()),
        }
    }

    /// Adds a user (admin), recorded.
    pub async fn add_user(
        &self,
        by: &StaffDetail,
        name: &str,
        certificate: &str,
    ) -> Result<FirstLogin, StaffError> {
        let (rec, first) = self.new_user(name, certificate)?;
        let key = user_key(name);
        let mut b = Batch::new();
        b.require_absent(Tree::Staff, key.clone());
        b.put(Tree::Staff, key.clone(), self.seal(&key, &rec)?);
        Self::stage_record(&mut b, by, "staff.user_add", Some(name), None);
        self.commit_new(b).await?;
        Ok(first)
    }

    /// Every user, by name.
    pub fn list(&self) -> Result<Vec<StaffUser>, StaffError> {
        let now = self.clock.now_ms();
        let rows = self
            .store
            .range(Tree::Staff, b"user/", b"user0", usize::MAX)?;
        rows.iter()
            .map(|(k, v)| {
                let u: UserRecord = self.open(k, v)?;
                Ok(StaffUser {
                    locked: u.locked_until_ms > now,
                    user: u.user,
                    certificate: u.certificate,
                    disabled: u.disabled,
                    created_at: crate::util::rfc3339_jst(u.created_ms),
                })
            })
            .collect()
    }

    /// Changes one user under the lock (compare-and-swap), recorded as `action` by `by`.
    async fn change_user(
        &self,
        by: &StaffDetail,
        name: &str,
        action: &str,
        f: impl FnOnce(&mut UserRecord) -> Result<(), StaffError>,
    ) -> Result<(), StaffError> {
        let _g = self.users_lock.lock().await;
        let (mut u, old) = self.load_user(name)?.ok_or(StaffError::NoSuchUser)?;
        f(&mut u)?;
        let mut b = Batch::new();
        self.stage_user(&mut b, &u, &old)?;
        Self::stage_record(&mut b, by, action, Some(name), None);
        self.store.commit(b).await?;
        Ok(())
    }

    /// Disables a user (admin): every session of theirs ends at once.
    pub async fn disable(&self, by: &StaffDetail, name: &str) -> Result<(), StaffError> {
        self.change_user(by, name, "staff.user_disable", |u| {
            u.disabled = true;
            u.generation += 1;
            Ok(())
        })
        .await
    }

    /// Enables a disabled user (admin) and clears a lock.
    pub async fn enable(&self, by: &StaffDetail, name: &str) -> Result<(), StaffError> {
        self.change_user(by, name, "staff.user_enable", |u| {
            u.disabled = false;
            u.failures = 0;
            u.locked_until_ms = 0;
            Ok(())
        })
        .await
    }

    /// New first-login secrets for a user (admin): their sessions end, a lock is cleared.
    pub async fn reset(&self, by: &StaffDetail, name: &str) -> Result<FirstLogin, StaffError> {
        let (fresh, first) = self.new_user(name, "")?;
        self.change_user(by, name, "staff.user_reset", move |u| {
            u.password_hash = fresh.password_hash;
            u.totp_secret = fresh.totp_secret;
            u.failures = 0;
            u.locked_until_ms = 0;
            u.last_totp_step = 0;
            u.generation += 1;
            Ok(())
        })
        .await?;
        Ok(first)
    }

    /// Checks password and code against `u` at `now`; on success returns the code's step.
    async fn check_factors(
        u: &UserRecord,
        password: &str,
        totp: &str,
        now: u64,
    ) -> Result<Result<u64, &'static str>, StaffError> {
        let hash = u.password_hash.clone();
        let pw = Zeroizing::new(password.to_string());
        let password_ok =
            tokio::task::spawn_blocking(move || credentials::verify_password(&pw, &hash))
                .await
                .map_err(|e| StaffError::Corrupt(e.to_string()))??;
        if !password_ok {
            return Ok(Err("wrong password"));
        }
        match credentials::totp_match(&u.totp_secret, totp, now)? {
            None => Ok(Err("wrong code")),
            Some(step) if step <= u.last_totp_step => Ok(Err("code already used")),
            Some(step) => Ok(Ok(step)),
        }
    }

    /// Counts a failure on `u` (locking it at the limit); stages the user and its records.
    fn stage_failure(
        &self,
        b: &mut Batch,
        u: &mut UserRecord,
        old: &[u8],
        who: &StaffDetail,
        (action, reason): (&str, &'static str),
        now: u64,
    ) -> Result<bool, StaffError> {
        u.failures += 1;
        let locked = u.failures >= self.config.max_failures;
        if locked {
            u.failures = 0;
            u.locked_until_ms = now + self.config.lockout_secs * 1000;
        }
        self.stage_user(b, u, old)?;
        Self::stage_record(b, who, action, Some(&u.user), Some(reason));
        if locked {
            Self::stage_record(b, who, "session.lockout", Some(&u.user), None);
        }
        Ok(locked)
    }

    /// Signs in: the certificate, password and code must all match. `who` is the caller
    /// (certificate, terminal) for the records.
    pub async fn sign_in(
        &self,
        who: &StaffDetail,
        a: &Attempt<'_>,
    ) -> Result<NewSession, StaffError> {
        const ACTION: &str = "session.sign_in";
        if !valid_user_name(a.user) {
            self.record_refusal(who, ACTION, None, "malformed user name")
                .await?;
            return Err(StaffError::SignInFailed);
        }
        let _g = self.users_lock.lock().await;
        let now = self.clock.now_ms();
        let Some((mut u, old)) = self.load_user(a.user)? else {
            self.record_refusal(who, ACTION, Some(a.user), "unknown user")
                .await?;
            return Err(StaffError::SignInFailed);
        };
        let who = &StaffDetail {
            actor: u.user.clone(),
            ..who.clone()
        };
        if u.disabled {
            self.record_refusal(who, ACTION, Some(a.user), "user disabled")
                .await?;
            return Err(StaffError::SignInFailed);
        }
        if u.locked_until_ms > now {
            self.record_refusal(who, ACTION, Some(a.user), "user locked")
                .await?;
            return Err(StaffError::Locked);
        }
        if u.certificate != a.certificate {
            self.record_refusal(who, ACTION, Some(a.user), "certificate does not match")
                .await?;
            return Err(StaffError::SignInFailed);
        }
        let mut b = Batch::new();
        let step = match Self::check_factors(&u, a.password, a.totp, now).await? {
            Ok(step) => step,
            Err(reason) => {
                let locked =
                    self.stage_failure(&mut b, &mut u, &old, who, (ACTION, reason), now)?;
                self.store.commit(b).await?;
                return Err(if locked {
                    StaffError::Locked
                } else {
                    StaffError::SignInFailed
                });
            }
        };
        u.failures = 0;
        u.last_totp_step = step;
        self.stage_user(&mut b, &u, &old)?;
        let token = credentials::generate_token()?;
        let s = SessionRecord {
            user: u.user.clone(),
            certificate: u.certificate.clone(),
            generation: u.generation,
            created_ms: now,
            last_seen_ms: now,
        };
        let key = session_key(&credentials::token_digest(&token));
        b.require_absent(Tree::Staff, key.clone());
        b.put(Tree::Staff, key.clone(), self.seal(&key, &s)?);
        Self::stage_record(&mut b, who, ACTION, Some(&u.user), None);
        self.store.commit(b).await?;
        Ok(NewSession {
            token,
            expires_at: crate::util::rfc3339_jst(self.ends_at(&s)),
        })
    }

    /// When a session ends if not used again.
    fn ends_at(&self, s: &SessionRecord) -> u64 {
        (s.last_seen_ms + self.config.idle_timeout_secs * 1000)
            .min(s.created_ms + self.config.absolute_timeout_secs * 1000)
    }

    /// Checks a token presented with `certificate`; marks the session used.
    pub async fn check(&self, token: &str, certificate: &str) -> Result<SignedIn, StaffError> {
        let digest = credentials::token_digest(token);
        let key = session_key(&digest);
        let Some(v) = self.store.get(Tree::Staff, &key)? else {
            return Err(StaffError::SessionExpired);
        };
        let mut s: SessionRecord = self.open(&key, &v)?;
        if s.certificate != certificate {
            return Err(StaffError::SessionMismatch);
        }
        let now = self.clock.now_ms();
        let live_user = match self.load_user(&s.user)? {
            Some((u, _)) => !u.disabled && u.generation == s.generation,
            None => false,
        };
        if !live_user || now >= self.ends_at(&s) {
            let mut b = Batch::new();
            b.require_equal(Tree::Staff, key.clone(), v);
            b.delete(Tree::Staff, key);
            match self.store.commit(b).await {
                Ok(_) | Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            return Err(StaffError::SessionExpired);
        }
        if now.saturating_sub(s.last_seen_ms) >= TOUCH_EVERY_MS {
            s.last_seen_ms = now;
            let mut b = Batch::new();
            b.require_equal(Tree::Staff, key.clone(), v);
            b.put(Tree::Staff, key.clone(), self.seal(&key, &s)?);
            // A conflict means a racing request touched or ended it: either way, fine.
            match self.store.commit(b).await {
                Ok(_) | Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(SignedIn {
            user: s.user,
            digest,
        })
    }

    /// Ends a checked session at once, recorded.
    pub async fn sign_out(&self, who: &StaffDetail, s: &SignedIn) -> Result<(), StaffError> {
        let mut b = Batch::new();
        b.delete(Tree::Staff, session_key(&s.digest));
        Self::stage_record(&mut b, who, "session.sign_out", Some(&s.user), None);
        self.store.commit(b).await?;
        Ok(())
    }

    /// Changes a signed-in user's own password: the current password and a fresh code are
    /// asked again (failures count toward the lockout).
    pub async fn change_password(
        &self,
        who: &StaffDetail,
        s: &SignedIn,
        current: &str,
        totp: &str,
        new_password: &str,
    ) -> Result<(), StaffError> {
        const ACTION: &str = "staff.password_change";
        if new_password.chars().count() < credentials::MIN_PASSWORD_LEN {
            return Err(StaffError::WeakPassword);
        }
        let _g = self.users_lock.lock().await;
        let now = self.clock.now_ms();
        let (mut u, old) = self.load_user(&s.user)?.ok_or(StaffError::NoSuchUser)?;
        if u.locked_until_ms > now {
            self.record_refusal(who, ACTION, Some(&s.user), "user locked")
                .await?;
            return Err(StaffError::Locked);
        }
        let mut b = Batch::new();
        match Self::check_factors(&u, current, totp, now).await? {
            Ok(step) => {
                u.failures = 0;
                u.last_totp_step = step;
                let pw = Zeroizing::new(new_password.to_string());
                u.password_hash =
                    tokio::task::spawn_blocking(move || credentials::hash_password(&pw))
                        .await
                        .map_err(|e| StaffError::Corrupt(e.to_string()))??;
                self.stage_user(&mut b, &u, &old)?;
                Self::stage_record(&mut b, who, ACTION, Some(&s.user), None);
                self.store.commit(b).await?;
                Ok(())
            }
            Err(reason) => {
                let locked =
                    self.stage_failure(&mut b, &mut u, &old, who, (ACTION, reason), now)?;
                self.store.commit(b).await?;
                Err(if locked {
                    StaffError::Locked
                } else {
                    StaffError::SignInFailed
                })
            }
        }
    }
}

#[cfg(test)]
mod tests;

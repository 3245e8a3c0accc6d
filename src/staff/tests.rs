//! Unit tests of staff sign-in over a real sled store and at-rest keys, with a manual clock:
//! factors, replay, lockout and its expiry, idle and absolute timeouts, sign-out, disable,
//! reset, password change, and that stored values hold no secret in plaintext.

use super::*;
use renkei_crypto::keyring::{Keyring, MasterKey};
use renkei_ids::AgencyCode;
use renkei_store::sled_store::{Durability, SledStore};

/// 2027-01-15 in ms, well inside one TOTP step's start.
const T0: u64 = 1_800_000_000_000;

struct Fixture {
    _dir: tempfile::TempDir,
    staff: Staff,
    clock: Arc<ManualClock>,
    store: Arc<dyn Store>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let master = MasterKey::generate_file(&dir.path().join("master.key")).unwrap();
    Keyring::generate()
        .unwrap()
        .save(&dir.path().join("keys"), &master)
        .unwrap();
    let keys = Arc::new(
        KeyState::load(
            AgencyCode::parse("0110020000000001").unwrap(),
            &dir.path().join("keys"),
            &dir.path().join("master.key"),
        )
        .unwrap(),
    );
    let store: Arc<dyn Store> =
        SledStore::open(&dir.path().join("store"), Durability::FlushOnly).unwrap();
    crate::records::install(store.as_ref()).unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let staff = Staff::new(store.clone(), keys, StaffConfig::default(), clock.clone());
    Fixture {
        _dir: dir,
        staff,
        clock,
        store,
    }
}

fn who(cert: &str) -> StaffDetail {
    StaffDetail {
        actor: cert.into(),
        terminal: "127.0.0.1:1".into(),
        certificate_fingerprint: None,
        action: String::new(),
        target: None,
        touched_individual_number: false,
    }
}

fn code(f: &Fixture, first: &FirstLogin) -> String {
    let step = credentials::totp_step(f.clock.now_ms());
    format!(
        "{:06}",
        credentials::totp_code(&first.totp_secret, step).unwrap()
    )
}

async fn sign_in(
    f: &Fixture,
    first: &FirstLogin,
    password: &str,
    totp: &str,
) -> Result<NewSession, StaffError> {
    f.staff
        .sign_in(
            &who("auditor"),
            &Attempt {
                user: &first.user,
                password,
                totp,
                certificate: "auditor",
            },
        )
        .await
}

async fn user(f: &Fixture) -> FirstLogin {
    f.staff.create_initial("auditor", "auditor").await.unwrap()
}

/// Each sign-in needs a fresh step (replays are refused): the clock moves one step.
fn next_step(f: &Fixture) {
    f.clock.advance_secs(credentials::TOTP_STEP_SECS);
}

#[tokio::test]
async fn sign_in_with_both_factors_and_the_session_works_until_sign_out() {
    let f = fixture();
    let first = user(&f).await;
    let s = sign_in(&f, &first, &first.password, &code(&f, &first))
        .await
        .unwrap();
    let got = f.staff.check(&s.token, "auditor").await.unwrap();
    assert_eq!(got.user, "auditor");
    f.staff.sign_out(&who("auditor"), &got).await.unwrap();
    assert!(matches!(
        f.staff.check(&s.token, "auditor").await,
        Err(StaffError::SessionExpired)
    ));
}

#[tokio::test]
async fn wrong_password_wrong_code_replay_and_other_certificate_are_refused() {
    let f = fixture();
    let first = user(&f).await;
    let c = code(&f, &first);
    for (pw, totp) in [("wrong password!", c.as_str()), (&first.password, "000000")] {
        assert!(matches!(
            sign_in(&f, &first, pw, totp).await,
            Err(StaffError::SignInFailed)
        ));
    }
    let other_cert = f
        .staff
        .sign_in(
            &who("operator"),
            &Attempt {
                user: "auditor",
                password: &first.password,
                totp: &c,
                certificate: "operator",
            },
        )
        .await;
    assert!(matches!(other_cert, Err(StaffError::SignInFailed)));
    sign_in(&f, &first, &first.password, &c).await.unwrap();
    // The same code again, in the same step: refused.
    assert!(matches!(
        sign_in(&f, &first, &first.password, &c).await,
        Err(StaffError::SignInFailed)
    ));
    next_step(&f);
    sign_in(&f, &first, &first.password, &code(&f, &first))
        .await
        .unwrap();
}

#[tokio::test]
async fn five_failures_lock_the_user_until_the_lockout_passes() {
    let f = fixture();
    let first = user(&f).await;
    for i in 0..5 {
        let r = sign_in(&f, &first, "wrong password!", &code(&f, &first)).await;
        if i < 4 {
            assert!(matches!(r, Err(StaffError::SignInFailed)), "try {i}");
        } else {
            assert!(matches!(r, Err(StaffError::Locked)));
        }
    }
    // Locked: even the right password and code.
    assert!(matches!(
        sign_in(&f, &first, &first.password, &code(&f, &first)).await,
        Err(StaffError::Locked)
    ));
    assert!(f.staff.list().unwrap()[0].locked);
    f.clock.advance_secs(15 * 60 - 60);
    assert!(matches!(
        sign_in(&f, &first, &first.password, &code(&f, &first)).await,
        Err(StaffError::Locked)
    ));
    f.clock.advance_secs(61);
    sign_in(&f, &first, &first.password, &code(&f, &first))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_success_resets_the_failure_count() {
    let f = fixture();
    let first = user(&f).await;
    for _ in 0..4 {
        let _ = sign_in(&f, &first, "wrong password!", &code(&f, &first)).await;
    }
    sign_in(&f, &first, &first.password, &code(&f, &first))
        .await
        .unwrap();
    next_step(&f);
    for _ in 0..4 {
        assert!(matches!(
            sign_in(&f, &first, "wrong password!", &code(&f, &first)).await,
            Err(StaffError::SignInFailed)
        ));
    }
}

#[tokio::test]
async fn idle_and_absolute_timeouts_end_sessions() {
    let f = fixture();
    let first = user(&f).await;
    let s = sign_in(&f, &first, &first.password, &code(&f, &first))
        .await
        .unwrap();
    // Used every 14 minutes: alive until the 8-hour mark.
    for _ in 0..34 {
        f.clock.advance_secs(14 * 60);
        f.staff.check(&s.token, "auditor").await.unwrap();
    }
    // 34 × 14 min = 7 h 56 min; 5 minutes later it is past 8 h.
    f.clock.advance_secs(5 * 60);
    assert!(matches!(
        f.staff.check(&s.token, "auditor").await,
        Err(StaffError::SessionExpired)
    ));
    next_step(&f);
    let s = sign_in(&f, &first, &first.password, &code(&f, &first))
        .await
        .unwrap();
    f.clock.advance_secs(15 * 60 - 1);
    f.staff.check(&s.token, "auditor").await.unwrap();
    f.clock.advance_secs(15 * 60);
    assert!(matches!(
        f.staff.check(&s.token, "auditor").await,
        Err(StaffError::SessionExpired)
    ));
}

#[tokio::test]
async fn a_token_with_another_certificate_is_a_mismatch() {
    let f = fixture();
    let first = user(&f).await;
    let s = sign_in(&f, &first, &first.password, &code(&f, &first))
        .await
        .unwrap();
    assert!(matches!(
        f.staff.check(&s.token, "operator").await,
        Err(StaffError::SessionMismatch)
    ));
    assert!(matches!(
        f.staff.check("rks_not-a-token", "auditor").await,
        Err(StaffError::SessionExpired)
    ));
}

#[tokio::test]
async fn disable_ends_sessions_at_once_and_reset_issues_new_secrets() {
    let f = fixture();
    let first = user(&f).await;
    let admin = who("admin");
    let s = sign_in(&f, &first, &first.password, &code(&f, &first))
        .await
        .unwrap();
    f.staff.disable(&admin, "auditor").await.unwrap();
    assert!(matches!(
        f.staff.check(&s.token, "auditor").await,
        Err(StaffError::SessionExpired)
    ));
    next_step(&f);
    assert!(matches!(
        sign_in(&f, &first, &first.password, &code(&f, &first)).await,
        Err(StaffError::SignInFailed)
    ));
    f.staff.enable(&admin, "auditor").await.unwrap();
    let fresh = f.staff.reset(&admin, "auditor").await.unwrap();
    assert_ne!(*fresh.password, *first.password);
    assert!(matches!(
        sign_in(&f, &first, &first.password, &code(&f, &first)).await,
        Err(StaffError::SignInFailed)
    ));
    sign_in(&f, &fresh, &fresh.password, &code(&f, &fresh))
        .await
        .unwrap();
    assert!(matches!(
        f.staff.add_user(&admin, "auditor", "auditor").await,
        Err(StaffError::UserExists)
    ));
    assert!(matches!(
        f.staff.disable(&admin, "nobody").await,
        Err(StaffError::NoSuchUser)
    ));
}

#[tokio::test]
async fn password_change_needs_both_factors() {
    let f = fixture();
    let first = user(&f).await;
    let s = sign_in(&f, &first, &first.password, &code(&f, &first))
        .await
        .unwrap();
    let signed = f.staff.check(&s.token, "auditor").await.unwrap();
    let me = who("auditor");
    next_step(&f);
    assert!(matches!(
        f.staff
            .change_password(&me, &signed, &first.password, &code(&f, &first), "short")
            .await,
        Err(StaffError::WeakPassword)
    ));
    assert!(matches!(
        f.staff
            .change_password(
                &me,
                &signed,
                "wrong!",
                &code(&f, &first),
                "a long new password"
            )
            .await,
        Err(StaffError::SignInFailed)
    ));
    f.staff
        .change_password(
            &me,
            &signed,
            &first.password,
            &code(&f, &first),
            "a long new password",
        )
        .await
        .unwrap();
    next_step(&f);
    sign_in(&f, &first, "a long new password", &code(&f, &first))
        .await
        .unwrap();
}

#[tokio::test]
async fn stored_values_and_records_hold_no_secret() {
    let f = fixture();
    let first = user(&f).await;
    let c = code(&f, &first);
    let s = sign_in(&f, &first, &first.password, &c).await.unwrap();
    let _ = sign_in(&f, &first, "wrong password!", &c).await;
    let mut all = Vec::new();
    for t in Tree::ALL {
        for (k, v) in f.store.range(t, &[], &[], usize::MAX).unwrap() {
            all.extend(k);
            all.extend(v);
        }
    }
    let hay = String::from_utf8_lossy(&all);
    for secret in [
        first.password.as_str(),
        first.totp_secret.as_str(),
        s.token.as_str(),
        &s.token[credentials::TOKEN_PREFIX.len()..],
        "wrong password!",
        "$argon2id$",
    ] {
        assert!(!hay.contains(secret), "a secret is stored in plaintext");
    }
    // Sign-in records are there: one done, one refused (plus none of the secrets above).
    assert!(hay.contains("session.sign_in"));
}

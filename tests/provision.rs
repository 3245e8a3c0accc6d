//! Information provision end to end (issue 13), over the real binary and simulator: copies
//! (副本) registered by the business system that owns the business number, converted,
//! versioned, transferred through the durable queue, and used by the simulator's provision
//! database to answer other agencies — the version in force on the asked date, superseded and
//! withdrawn versions, not held, refused by the national table, 不開示 — with the records of
//! both directions in a person's export that verifies; closed hours, a SIGKILL during
//! transfers; and nothing of a copy's data or an individual number in plaintext on disk.

mod common;
mod provision_support;

use common::{sample_digits, wait_for, wait_until, Deployment, BIN};
use provision_support::{
    all_transferred, ask, ask_local_tax, copy_path, export_person, field, plaintext_hits,
    second_system_provides_local_tax, versions, TIMEOUT,
};
use renkei::dev::demo::SAMPLES;
use renkei::dev::init::{
    CLIENT_SECOND, CLIENT_SUBSIDY, ITEM_LOCAL_TAX, ITEM_PUBLIC_FUND, PROC_PUBLIC_FUND,
};
use serde_json::{json, Value};

fn tax_copy(from: &str, to: Option<&str>, income: &str, nd: bool) -> Value {
    let mut v = json!({
        "dataset": "D2026",
        "effective_from": from,
        "non_disclosure": nd,
        "data": {"fiscal_year": "2026", "income_levy": income, "per_capita_levy": "3500"},
    });
    if let Some(t) = to {
        v["effective_to"] = json!(t);
    }
    v
}

/// Lets the second business system provide local-tax copies too, and fetches provisions
/// back quickly.
fn configure(d: &Deployment) {
    second_system_provides_local_tax(d);
    d.set_in_table("renkei.toml", "platform", "provision_fetch_ms", "200");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_are_transferred_and_answered_by_version_and_date_with_both_directions_recorded() {
    let mut d = Deployment::new();
    configure(&d);
    d.start().await;
    let unified = d.link_samples().await;
    let api = d.client(CLIENT_SUBSIDY);
    let bn0 = SAMPLES[0].business_number;
    let bn1 = SAMPLES[1].business_number;
    let bn2 = SAMPLES[2].business_number;

    // Version 1 for FY2025, version 2 from FY2026 (full-width digits are converted).
    let r = api
        .put_json(
            &copy_path(bn0, ITEM_LOCAL_TAX),
            &tax_copy("2025-04-01", Some("2026-03-31"), "811111", false),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["version"], 1);
    assert_eq!(r.body["status"], "queued");
    assert!(
        r.body["id"].as_str().is_some_and(|s| s.starts_with("CP")),
        "{}",
        r.body
    );
    let v2 = tax_copy("2026-04-01", None, "８２２２２２", false);
    let r = api.put_json(&copy_path(bn0, ITEM_LOCAL_TAX), &v2).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["version"], 2);
    let v2_id = r.body["id"].clone();
    // The same content again is the same version (a retried request), not a third one.
    let again = api.put_json(&copy_path(bn0, ITEM_LOCAL_TAX), &v2).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["id"], v2_id);
    // Data outside the item's layout is refused, naming the field.
    let bad = api
        .put_json(
            &copy_path(bn0, ITEM_LOCAL_TAX),
            &json!({"dataset": "D2026", "effective_from": "2026-04-01", "data": {"fiscal_year": "2026", "income_levy": "12x"}}),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    // Not-held candidate, 不開示 candidate, code conversion on the second item.
    let r = api
        .put_json(
            &copy_path(bn1, ITEM_LOCAL_TAX),
            &tax_copy("2026-04-01", None, "833333", true),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let r = api
        .put_json(
            &copy_path(bn2, ITEM_PUBLIC_FUND),
            &json!({"dataset": "ACCT", "effective_from": "2026-01-01", "data": {
                "bank_code": "0009", "branch_code": "123", "account_kind": "9",
                "account_number": "7654321", "holder_kana": "ﾌﾟﾛﾋﾞｼﾞｮﾝ ﾊﾅｺ"}}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);

    // Ownership and provision rights: another system cannot register or read the copy; an
    // item the system may not provide is refused.
    let other = d.client(CLIENT_SECOND);
    let r = other
        .put_json(
            &copy_path(bn0, ITEM_LOCAL_TAX),
            &tax_copy("2026-04-01", None, "1", false),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(other.get(&copy_path(bn0, ITEM_LOCAL_TAX)).await.status, 404);
    let r = other
        .put_json(
            &copy_path(bn0, ITEM_PUBLIC_FUND),
            &tax_copy("2026-04-01", None, "1", false),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.body["code"], "not_permitted");
    assert_eq!(r.body["field"], "item_code");
    let r = api
        .put_json(
            &copy_path(bn0, "TM09999999999999"),
            &tax_copy("2026-04-01", None, "1", false),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);

    all_transferred(&api, bn0, ITEM_LOCAL_TAX, 2).await;
    all_transferred(&api, bn1, ITEM_LOCAL_TAX, 1).await;
    all_transferred(&api, bn2, ITEM_PUBLIC_FUND, 1).await;

    // The platform answers from the version in force on the asked date.
    let a = ask_local_tax(&d, &unified[0], "2025-06-01").await;
    assert_eq!(a["status"], "answered", "{a}");
    assert_eq!(a["answer"]["version"], 1);
    assert_eq!(field(&a, "市町村民税所得割額").as_deref(), Some("811111"));
    let a = ask_local_tax(&d, &unified[0], "2026-06-01").await;
    assert_eq!(a["answer"]["version"], 2, "{a}");
    assert_eq!(field(&a, "市町村民税所得割額").as_deref(), Some("822222"));
    // Before any version: not held.
    let a = ask_local_tax(&d, &unified[0], "2024-01-01").await;
    assert_eq!(a["status"], "not_held", "{a}");
    // Refused by the national permission table (this procedure may not ask for this item).
    let a = ask(
        &d,
        &unified[0],
        PROC_PUBLIC_FUND,
        ITEM_LOCAL_TAX,
        Some("2026-06-01"),
    )
    .await;
    assert_eq!(a["status"], "refused", "{a}");
    // 不開示: held, but withheld, no data.
    let a = ask_local_tax(&d, &unified[1], "2026-06-01").await;
    assert_eq!(a["status"], "answered", "{a}");
    assert_eq!(a["answer"]["withheld"], true, "{a}");
    assert_eq!(
        a["answer"]["fields"].as_array().map(Vec::len),
        Some(0),
        "{a}"
    );
    // Codes and text converted for the platform.
    let a = ask(&d, &unified[2], PROC_PUBLIC_FUND, ITEM_PUBLIC_FUND, None).await;
    assert_eq!(a["status"], "answered", "{a}");
    assert_eq!(field(&a, "預金種目").as_deref(), Some("4"), "{a}");
    assert_eq!(
        field(&a, "口座名義人（カナ）").as_deref(),
        Some("プロビジョン ハナコ"),
        "{a}"
    );

    // Withdrawal: a version of its own; afterwards nothing is held on any date.
    let r = api
        .send(
            hyper::Method::DELETE,
            &copy_path(bn0, ITEM_LOCAL_TAX),
            &[],
            bytes::Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["version"], 3);
    all_transferred(&api, bn0, ITEM_LOCAL_TAX, 3).await;
    let listed = versions(&api, bn0, ITEM_LOCAL_TAX).await;
    assert_eq!(listed[2]["withdrawn"], true);
    let a = ask_local_tax(&d, &unified[0], "2026-06-01").await;
    assert_eq!(a["status"], "not_held", "{a}");

    // Each version took effect at the platform once.
    let stats = d.sim_stats().await;
    assert_eq!(stats["copies_registered"], 5, "{stats}");
    for (_, n) in stats["copy_effects"].as_object().expect("copy effects") {
        assert_eq!(n, 1, "{stats}");
    }

    // An inquiry about the same person, so their export holds both directions.
    api.inquire_answered("prov-inq", bn0).await;

    // Records: transfers and withdrawals, and the provisions fetched back from the platform
    // (answered v1, v2, not held twice; the refusal never reached the city).
    let auditor = d.client("auditor");
    let recs = wait_for(TIMEOUT, "provisions fetched back", || async {
        let r = auditor
            .get(&format!(
                "/v1/audit/records?kind=provision&person={}&limit=1000",
                unified[0]
            ))
            .await;
        let recs = r.body["records"].as_array().cloned().unwrap_or_default();
        let fetched = recs
            .iter()
            .filter(|x| x["reference"].as_str().is_some_and(|s| s.starts_with("PL")))
            .count();
        (fetched >= 4).then_some(recs)
    })
    .await;
    let reasons: Vec<String> = recs
        .iter()
        .filter_map(|r| r["reason"].as_str().map(str::to_string))
        .collect();
    for want in [
        "copy v1 transferred",
        "copy v2 transferred",
        "copy_withdrawal v3 transferred",
        "provided from copy (v1)",
        "provided from copy (v2)",
        "no copy in force",
    ] {
        assert!(
            reasons.iter().any(|r| r == want),
            "no record {want:?} in {reasons:?}"
        );
    }
    let r = auditor
        .get(&format!(
            "/v1/audit/records?kind=provision&person={}",
            unified[1]
        ))
        .await;
    assert!(
        r.body["records"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|x| x["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("withheld: non-disclosure"))),
        "{}",
        r.body
    );
    let q = d.cli(&["audit", "query", "--kind", "provision"]);
    assert!(q.status.success(), "{}", String::from_utf8_lossy(&q.stderr));

    // The person's export holds both directions and verifies offline.
    let key_file = d.auditor_key_file();
    let (pb, text) = export_person(&d, &unified[0]);
    assert!(
        text.contains("\"inquiry\""),
        "inquiry direction in the export"
    );
    assert!(
        text.contains("\"provision\""),
        "provision direction in the export"
    );
    let ok = std::process::Command::new(BIN)
        .args([
            "audit",
            "verify",
            pb.to_str().expect("utf-8"),
            "--public-key",
        ])
        .arg(&key_file)
        .output()
        .expect("verify");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    // Privacy: no copy value and no individual number in plaintext anywhere on disk or in logs.
    let mut needles: Vec<(String, Vec<u8>)> = ["811111", "822222", "833333", "7654321"]
        .iter()
        .map(|v| {
            (
                format!("copy value #{}", v.len()),
                format!("\"{v}\"").into_bytes(),
            )
        })
        .collect();
    needles.push((
        "holder kana".into(),
        "プロビジョン ハナコ".as_bytes().to_vec(),
    ));
    needles.push((
        "holder kana (half-width)".into(),
        "ﾌﾟﾛﾋﾞｼﾞｮﾝ ﾊﾅｺ".as_bytes().to_vec(),
    ));
    for i in 0..SAMPLES.len() {
        needles.push((
            format!("individual number {i}"),
            sample_digits(i).into_bytes(),
        ));
    }
    let hits = plaintext_hits(&d, &needles);
    assert!(hits.is_empty(), "plaintext found: {hits:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_wait_for_open_hours_and_survive_a_kill_exactly_once_in_effect() {
    let mut d = Deployment::new();
    configure(&d);
    d.fast_backoff();
    d.start().await;
    d.link_samples().await;
    let api = d.client(CLIENT_SUBSIDY);

    // Closed: copies are accepted and stay queued; on opening they are transferred.
    d.sim_mode("closed", 0).await;
    let mut acknowledged = Vec::new();
    for (i, s) in SAMPLES.iter().enumerate() {
        let r = api
            .put_json(
                &copy_path(s.business_number, ITEM_LOCAL_TAX),
                &tax_copy("2026-04-01", None, &format!("{}", 700 + i), false),
            )
            .await;
        assert_eq!(r.status, 202, "{}", r.body);
        acknowledged.push(r.body["id"].as_str().expect("id").to_string());
    }
    wait_until(
        TIMEOUT,
        "the closed platform refused a transfer",
        || async { d.sim_stats().await["refused_closed"].as_u64().unwrap_or(0) >= 1 },
    )
    .await;
    for s in SAMPLES.iter() {
        let v = versions(&api, s.business_number, ITEM_LOCAL_TAX).await;
        assert_eq!(v[0]["status"], "queued", "{v:?}");
    }
    assert_eq!(d.sim_stats().await["copies_registered"], 0);
    d.sim_mode("open", 0).await;
    for s in SAMPLES.iter() {
        all_transferred(&api, s.business_number, ITEM_LOCAL_TAX, 1).await;
    }

    // SIGKILL while transfers are under way (a slow platform keeps them in flight).
    d.sim_mode("slow", 150).await;
    let mut count = [1usize; 3];
    for n in 0..24 {
        let i = n % SAMPLES.len();
        let s = &SAMPLES[i];
        let r = api
            .put_json(
                &copy_path(s.business_number, ITEM_LOCAL_TAX),
                &tax_copy("2026-04-01", None, &format!("{}", 1000 + n), false),
            )
            .await;
        assert_eq!(r.status, 202, "{}", r.body);
        acknowledged.push(r.body["id"].as_str().expect("id").to_string());
        count[i] += 1;
    }
    d.kill_gateway();
    d.sim_mode("open", 0).await;
    d.start_gateway().await;
    let api = d.client(CLIENT_SUBSIDY);
    for (i, s) in SAMPLES.iter().enumerate() {
        all_transferred(&api, s.business_number, ITEM_LOCAL_TAX, count[i]).await;
    }
    let stats = d.sim_stats().await;
    let effects = stats["copy_effects"].as_object().expect("copy effects");
    for id in &acknowledged {
        assert_eq!(effects.get(id.as_str()), Some(&json!(1)), "{id}: {stats}");
    }
    assert_eq!(effects.len(), acknowledged.len(), "{stats}");
    assert_eq!(stats["copies_registered"], acknowledged.len(), "{stats}");
}

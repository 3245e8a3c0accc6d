//! The resident-record import over real HTTPS: a fixed-width Shift_JIS (CP932) file with change
//! records and bad lines, replay, isolation between systems, code acquisition after an import,
//! and a scan proving no individual number is stored or printed in plaintext. Only the
//! resident-record feed (`jukiban`) may import: a business system's import of a death is
//! refused and changes nothing.

mod common;

use bytes::Bytes;
use common::{wait_until, Api, Deployment, START_TIMEOUT};
use renkei::dev::init::{CLIENT_FEED, CLIENT_SECOND, CLIENT_SUBSIDY};
use renkei_convert::{Layout, LayoutWriter, Record};
use serde_json::{json, Value};

/// A valid individual number made from `i` (check digit computed, never written in source).
pub fn number(i: u64) -> String {
    let first = format!("{:011}", 47_000_000_000u64 + i * 7919);
    let mut d = [0u8; 11];
    for (k, b) in first.bytes().enumerate() {
        d[k] = b - b'0';
    }
    format!("{first}{}", renkei_ids::individual_number_check_digit(&d))
}

/// One resident-record line (canonical values).
pub struct Line<'a> {
    pub kind: &'a str,
    pub bn: String,
    pub number: Option<String>,
    pub name: &'a str,
    pub kana: &'a str,
    pub birth: &'a str,
    pub sex: &'a str,
    pub address: &'a str,
}

/// Writes lines in the `resident-fixed` layout (CP932, CRLF).
pub fn fixed_file(lines: &[Line<'_>]) -> Vec<u8> {
    let l = Layout::builtin("resident-fixed").expect("layout");
    let mut w = LayoutWriter::new(&l, Vec::new());
    for x in lines {
        let mut r = Record::new(&l);
        r.set("change_kind", x.kind);
        r.set("business_number", x.bn.clone());
        if let Some(n) = &x.number {
            r.set("individual_number", n.clone());
        }
        r.set("name", x.name);
        r.set("kana", x.kana);
        r.set("birth_date", x.birth);
        r.set("sex", x.sex);
        r.set("address", x.address);
        r.set("change_date", "2026-04-01");
        w.write(&r).expect("write line");
    }
    w.into_inner()
}

pub async fn import(api: &Api, layout: &str, file: Vec<u8>) -> common::Reply {
    api.send(
        hyper::Method::POST,
        &format!("/v1/persons:import?layout={layout}"),
        &[("content-type", "application/octet-stream")],
        Bytes::from(file),
    )
    .await
}

fn register(i: u64, name: &'static str, kana: &'static str) -> Line<'static> {
    Line {
        kind: "register",
        bn: format!("R{i:05}"),
        number: Some(number(i)),
        name,
        kana,
        birth: "2018-05-01",
        sex: "2",
        address: "北海道札幌市中央区北１条西２丁目",
    }
}

fn change(kind: &'static str, i: u64) -> Line<'static> {
    Line {
        kind,
        bn: format!("R{i:05}"),
        number: None,
        name: "札幌　花子",
        kana: "サッポロ　ハナコ",
        birth: "2018-05-01",
        sex: "2",
        address: "北海道札幌市北区北８条西５丁目",
    }
}

fn the_file() -> Vec<u8> {
    let mut lines: Vec<Line<'static>> = (1..=5)
        .map(|i| register(i, "札幌　花子", "サッポロ　ハナコ"))
        .collect();
    // Line 6 gets a user-defined character (外字) patched in below; line 7 a bad check digit.
    lines.push(register(6, "札幌　花子", "サッポロ　ハナコ"));
    let mut l7 = register(7, "札幌　花子", "サッポロ　ハナコ");
    let good = number(7);
    let last = (good.as_bytes()[11] - b'0' + 1) % 10;
    l7.number = Some(format!("{}{last}", &good[..11]));
    lines.push(l7);
    let mut l8 = change("name-change", 2);
    l8.name = "札幌　春子";
    l8.kana = "サッポロ　ハルコ";
    lines.push(l8);
    lines.push(change("address-change", 3));
    lines.push(change("move-out", 4));
    lines.push(change("death", 5));
    lines.push(change("move-out", 99));
    let mut bytes = fixed_file(&lines);
    let layout = Layout::builtin("resident-fixed").expect("layout");
    let len = layout.line_len + 2;
    // 氏名 starts at byte 2 + 15 + 12 = 29 of the line; 0xF040 is the first 外字 code.
    let at = 5 * len + 29 + 2;
    bytes[at] = 0xF0;
    bytes[at + 1] = 0x40;
    bytes
}

async fn lookup(api: &Api, bn: &str) -> common::Reply {
    api.get(&format!("/v1/persons:lookup?business_number={bn}"))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_width_import_changes_replay_isolation_and_privacy() {
    let mut d = Deployment::new();
    d.fast_backoff();
    d.start().await;
    let feed = d.client(CLIENT_FEED);
    let file = the_file();

    let r = import(&feed, "resident-fixed", file.clone()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let s = &r.body;
    assert_eq!(s["lines"], 12, "{s}");
    assert_eq!(s["accepted"], 9, "{s}");
    assert_eq!(s["applied_changes"], 9, "{s}");
    assert_eq!(s["persons_created"], 5, "{s}");
    assert_eq!(s["rejected_count"], 3, "{s}");
    let rej = s["rejected"].as_array().expect("rejected list");
    let line = |n: u64| -> &Value {
        rej.iter()
            .find(|r| r["line"] == n)
            .unwrap_or_else(|| panic!("line {n} not rejected: {s}"))
    };
    // The 外字 is named by line, field and code, never replaced.
    assert_eq!(line(6)["field"], "name", "{s}");
    let msg = line(6)["message"].as_str().unwrap_or_default();
    assert!(msg.contains("0xF040") || msg.contains("F040"), "{msg}");
    assert!(line(6)["code"].as_str().is_some_and(|c| !c.is_empty()));
    assert_eq!(line(7)["field"], "individual_number", "{s}");
    assert_eq!(line(7)["code"], "invalid_check_digit", "{s}");
    assert_eq!(line(12)["code"], "person_not_linked", "{s}");

    // States and facts after the change records.
    assert_eq!(lookup(&feed, "R00001").await.body["status"], "active");
    assert_eq!(lookup(&feed, "R00004").await.body["status"], "moved_out");
    assert_eq!(lookup(&feed, "R00005").await.body["status"], "deceased");
    let renamed = feed
        .post_json(
            "/v1/persons:match",
            &[],
            &json!({"kana": "サッポロ ハルコ", "birth_date": "2018-05-01"}),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    let persons = renamed.body["persons"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(persons.len(), 1, "{}", renamed.body);
    assert_eq!(persons[0]["business_number"], "R00002");
    let old = feed
        .post_json(
            "/v1/persons:match",
            &[],
            &json!({"kana": "サッポロハナコ", "birth_date": "2018-05-01", "sex": "2"}),
        )
        .await;
    let olds: Vec<String> = old.body["persons"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| {
            p["business_number"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(
        olds,
        ["R00001", "R00003", "R00004", "R00005"],
        "{}",
        old.body
    );

    // Replay: nothing changes, the same lines are refused again.
    let again = import(&feed, "resident-fixed", file.clone()).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["applied_changes"], 0, "{}", again.body);
    assert_eq!(again.body["unchanged"], 9, "{}", again.body);
    assert_eq!(again.body["persons_created"], 0, "{}", again.body);
    assert_eq!(again.body["rejected_count"], 3, "{}", again.body);
    assert_eq!(lookup(&feed, "R00004").await.body["status"], "moved_out");

    // Code acquisition runs (paced) for the imported persons and shows in searches.
    wait_until(START_TIMEOUT, "imported persons have codes", || async {
        lookup(&feed, "R00001").await.body["code"]["status"] == "acquired"
    })
    .await;

    // Isolation: the subsidy system cannot resolve the feed's numbers.
    let other = d.client(CLIENT_SUBSIDY);
    assert_eq!(lookup(&other, "R00001").await.status, 404);
    let u = lookup(&feed, "R00001").await.body["unified_address_number"]
        .as_str()
        .expect("unified")
        .to_string();
    let by_u = other.get(&format!("/v1/persons:lookup?unified={u}")).await;
    assert_eq!(by_u.status, 404, "{}", by_u.body);
    assert_eq!(
        feed.get(&format!("/v1/persons:lookup?unified={u}"))
            .await
            .status,
        200
    );

    // Staff may not import; the feed may not use a wrong layout.
    let staff = d.client("security-officer");
    assert_eq!(
        import(&staff, "resident-fixed", file.clone()).await.status,
        403
    );
    let bad = import(&feed, "inquiry-batch", file.clone()).await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert_eq!(bad.body["code"], "wrong_layout");

    // The import is in the linkage records as a staff action that touched individual numbers.
    let rec = d
        .client("auditor")
        .get("/v1/audit/records?kind=staff_action&limit=100")
        .await;
    assert_eq!(rec.status, 200, "{}", rec.body);
    let imports: Vec<&Value> = rec.body["records"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|r| r["staff"]["action"] == "persons.import")
                .collect()
        })
        .unwrap_or_default();
    assert!(imports.len() >= 2, "{}", rec.body);
    assert!(imports
        .iter()
        .all(|r| r["staff"]["touched_individual_number"] == true));

    // No individual number in plaintext anywhere: answers, data folder, logs.
    let numbers: Vec<String> = (1..=7).map(number).collect();
    for n in &numbers {
        for body in [&r.raw, &again.raw, &rec.raw] {
            assert!(
                !String::from_utf8_lossy(body).contains(n.as_str()),
                "an answer carries an individual number"
            );
        }
    }
    d.kill_gateway();
    d.kill_sim();
    let mut scanned = 0;
    for f in d.all_files() {
        let Ok(bytes) = std::fs::read(&f) else {
            continue;
        };
        scanned += 1;
        for n in &numbers {
            assert!(
                !bytes.windows(12).any(|w| w == n.as_bytes()),
                "{} holds an individual number in plaintext",
                f.display()
            );
        }
    }
    assert!(scanned > 10, "scanned only {scanned} files");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_import_names_code_point_and_refuses_oversize() {
    let mut d = Deployment::new();
    d.set_gateway("max_batch_bytes", "4096");
    d.start().await;
    let feed = d.client(CLIENT_FEED);
    let n1 = number(1);
    let n2 = number(2);
    let csv = format!(
        "change_kind,business_number,individual_number,name,kana,birth_date,sex,address,change_date\n\
         01,C1,{n1},札幌花子,サッポロハナコ,平成30年5月1日,2,札幌市,20260401\n\
         01,C2,{n2},札幌😀子,サッポロハナコ,平成30年5月1日,2,札幌市,20260401\n"
    );
    let r = import(&feed, "resident-csv", csv.into_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["accepted"], 1, "{}", r.body);
    let rej = &r.body["rejected"][0];
    assert_eq!(rej["line"], 3, "{}", r.body);
    assert_eq!(rej["field"], "name", "{}", r.body);
    assert!(
        rej["message"]
            .as_str()
            .unwrap_or_default()
            .contains("U+1F600"),
        "{}",
        r.body
    );
    assert!(!r
        .raw
        .windows(12)
        .any(|w| w == n1.as_bytes() || w == n2.as_bytes()));

    // The command line streams a file to the same endpoint and prints the summary.
    let file = d.dir.join("feed.dat");
    std::fs::write(
        &file,
        fixed_file(&[register(21, "石狩　一郎", "イシカリ　イチロウ")]),
    )
    .expect("write feed");
    let out = std::process::Command::new(common::BIN)
        .args(["persons", "import"])
        .arg(&file)
        .args(["--layout", "resident-fixed", "--dir"])
        .arg(&d.dir)
        .output()
        .expect("run renkei persons import");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&stdout).expect("summary JSON");
    assert_eq!(v["persons_created"], 1, "{v}");
    assert_eq!(lookup(&feed, "R00021").await.status, 200);
    assert!(!stdout.contains(&number(21)));

    // Larger than max_batch_bytes: refused before anything is applied.
    let big = vec![b'0'; 8192];
    let r = import(&feed, "resident-fixed", big).await;
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(r.body["code"], "body_too_large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_business_system_cannot_import_or_change_a_person() {
    use renkei::dev::demo::SAMPLES;
    let mut d = Deployment::new();
    d.start().await;
    d.link_samples().await;
    let subsidy = d.client(CLIENT_SUBSIDY);
    let kokuho = d.client(CLIENT_SECOND);
    let linked = kokuho
        .put_json("/v1/persons/K0001", &common::link_body(0))
        .await;
    assert_eq!(linked.status, 201, "{}", linked.body);
    let bn0 = SAMPLES[0].business_number;
    let before = lookup(&subsidy, bn0).await;
    assert_eq!(before.status, 200, "{}", before.body);
    assert_eq!(before.body["status"], "active");
    let persons_before = d.ops_stats().await["persons"].clone();
    let facts = json!({"kana": SAMPLES[0].kana, "birth_date": SAMPLES[0].birth_date});

    // kokuho (a business system) feeds the death, a move-out and a name change of the person
    // kodomo-iryo also uses, and registers someone new: every one refused with 403.
    let at_k0001 = |kind: &'static str| {
        let mut l = change(kind, 0);
        l.bn = "K0001".into();
        l
    };
    let mut renamed = at_k0001("name-change");
    renamed.kana = "サッポロ　ハルコ";
    let feeds = [
        ("death", fixed_file(&[at_k0001("death")])),
        ("move-out", fixed_file(&[at_k0001("move-out")])),
        ("name-change", fixed_file(&[renamed])),
        (
            "register",
            fixed_file(&[register(31, "札幌　花子", "サッポロ　ハナコ")]),
        ),
    ];
    for client in [&kokuho, &subsidy] {
        for (kind, file) in &feeds {
            let r = import(client, "resident-fixed", file.clone()).await;
            assert_eq!(
                (r.status, r.body["code"].as_str()),
                (403, Some("wrong_role")),
                "a business system's {kind} line: {}",
                r.body
            );
        }
    }

    // Nothing changed: same person, still active for both systems, facts as before, no one
    // new, and kodomo-iryo's next inquiry for the resident is answered.
    let after = lookup(&subsidy, bn0).await;
    assert_eq!(after.body, before.body, "the person is unchanged");
    assert_eq!(lookup(&kokuho, "K0001").await.body["status"], "active");
    let m = subsidy.post_json("/v1/persons:match", &[], &facts).await;
    assert_eq!(m.status, 200, "{}", m.body);
    assert_eq!(m.body["persons"][0]["business_number"], bn0, "{}", m.body);
    assert_eq!(d.ops_stats().await["persons"], persons_before);
    let id = subsidy
        .submit_ok("after-refused-feed", &common::local_tax(bn0))
        .await;
    let v = subsidy
        .wait_final(&id, std::time::Duration::from_secs(30))
        .await;
    assert_eq!(v["status"], "answered", "{v}");

    // The same death from the resident-record feed, in its own number, does take effect.
    let feed = d.client(CLIENT_FEED);
    let mut reg = register(0, SAMPLES[0].name, SAMPLES[0].kana);
    reg.bn = "J0001".into();
    reg.number = Some(common::sample_digits(0));
    reg.birth = SAMPLES[0].birth_date;
    let mut death = change("death", 0);
    death.bn = "J0001".into();
    let r = import(&feed, "resident-fixed", fixed_file(&[reg, death])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["applied_changes"], 2, "{}", r.body);
    let now = lookup(&subsidy, bn0).await;
    assert_eq!(now.body["status"], "deceased", "{}", now.body);
    assert_eq!(
        now.body["unified_address_number"],
        before.body["unified_address_number"]
    );
}

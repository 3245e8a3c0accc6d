//! A command line scripts can trust, over the real binary: the documented exit codes (0 done,
//! 1 failed, 2 usage, 3 done with rejected lines), one plain sentence for a stopped gateway,
//! a wrong `--dir` and an unknown `--as`, clap-checked values, no echo of a long number,
//! `--output csv|json` that parse back, `audit query --all` past the first page, an export
//! that refuses a non-empty folder, and completions and man pages from the CLI definition.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{Deployment, BIN};
use renkei::dev::batch_file::{fixed_line, line_values, pos};
use renkei::dev::demo::SAMPLES;
use renkei_convert::{Layout, LayoutWriter, Record};
use serde_json::Value;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run renkei")
}

fn json_of(o: &Output) -> Value {
    assert_eq!(code(o), 0, "{}", text(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(o)))
}

/// A valid individual number made from `i` (check digit computed, never written in source).
fn number(i: u64) -> String {
    let first = format!("{:011}", 48_000_000_000u64 + i * 7919);
    let mut d = [0u8; 11];
    for (k, b) in first.bytes().enumerate() {
        d[k] = b - b'0';
    }
    format!("{first}{}", renkei_ids::individual_number_check_digit(&d))
}

/// A resident-record file: one good registration, then one line that is not a record.
fn feed_with_a_bad_line() -> Vec<u8> {
    let l = Layout::builtin("resident-fixed").expect("layout");
    let mut w = LayoutWriter::new(&l, Vec::new());
    let mut r = Record::new(&l);
    r.set("change_kind", "register");
    r.set("business_number", "T00001");
    r.set("individual_number", number(1));
    r.set("name", "札幌　花子");
    r.set("kana", "サッポロ　ハナコ");
    r.set("birth_date", "2018-05-01");
    r.set("sex", "2");
    r.set("address", "北海道札幌市中央区北１条西２丁目");
    r.set("change_date", "2026-04-01");
    w.write(&r).expect("write line");
    let mut file = w.into_inner();
    file.extend_from_slice(b"not a record\r\n");
    file
}

fn submit(d: &Deployment, name: &str, file: &[u8]) -> Output {
    let path = d.dir.join(name);
    std::fs::write(&path, file).expect("write batch");
    d.cli(&[
        "inquiries",
        "submit",
        path.to_str().expect("utf-8"),
        "--wait",
        "--timeout",
        "60",
    ])
}

/// The `seq` of every record of a query answer, in order.
fn seqs_of(page: &Value) -> Vec<u64> {
    page["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["seq"].as_u64().expect("seq"))
        .collect()
}

fn csv_rows(o: &Output) -> (Vec<String>, Vec<Vec<String>>) {
    assert_eq!(code(o), 0, "{}", text(o));
    let mut r = csv::Reader::from_reader(&o.stdout[..]);
    let header = r
        .headers()
        .expect("a header row")
        .iter()
        .map(str::to_string)
        .collect();
    let rows = r
        .records()
        .map(|x| x.expect("a CSV row").iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_outputs_paging_and_one_sentence_errors_against_a_gateway() {
    let mut d = Deployment::new();
    d.start().await;
    d.link_samples().await;
    let bn = |i: usize| SAMPLES[i].business_number;

    // A clean batch: 0. One with a rejected line: 3, the batch itself done.
    let clean: Vec<u8> = [
        fixed_line(&line_values(bn(0))),
        fixed_line(&line_values(bn(1))),
    ]
    .concat();
    let out = tokio::task::block_in_place(|| submit(&d, "P640R110_20260401090000", &clean));
    assert_eq!(code(&out), 0, "{}", text(&out));
    let mut bad = line_values(bn(0));
    bad[pos::BUSINESS_NUMBER] = String::new();
    let mixed: Vec<u8> = [fixed_line(&line_values(bn(2))), fixed_line(&bad)].concat();
    let out = tokio::task::block_in_place(|| submit(&d, "P640R110_20260401090001", &mixed));
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout)
        .trim()
        .starts_with("BT"));

    // An import with a line that is not a record: 3; the good line is applied.
    let feed = d.dir.join("feed.dat");
    std::fs::write(&feed, feed_with_a_bad_line()).expect("write feed");
    let out = d.cli(&[
        "persons",
        "import",
        feed.to_str().expect("utf-8"),
        "--layout",
        "resident-fixed",
    ]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).expect("summary JSON");
    assert_eq!(summary["rejected_count"], 1, "{summary}");
    assert_eq!(summary["persons_created"], 1, "{summary}");
    assert!(!text(&out).contains(&number(1)));

    // One page, then every page: --all follows the cursor past the first page.
    let one_page = json_of(&d.cli(&["audit", "query", "--limit", "1000", "--output", "json"]));
    let total = one_page["records"].as_array().expect("records").len();
    assert!(total > 4, "enough records for several pages: {total}");
    let small = json_of(&d.cli(&["audit", "query", "--limit", "2", "--output", "json"]));
    assert_eq!(small["records"].as_array().expect("records").len(), 2);
    let cursor = small["next_before"].as_u64().expect("a cursor");
    let all = json_of(&d.cli(&[
        "audit", "query", "--all", "--limit", "2", "--output", "json",
    ]));
    let seqs = seqs_of(&all);
    // The gateway's own records of these queries are newer than the first page taken.
    assert!(seqs.len() >= total, "{} of {total}", seqs.len());
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeats"
    );
    // --cursor starts where a page ended.
    let next = json_of(&d.cli(&[
        "audit",
        "query",
        "--limit",
        "2",
        "--cursor",
        &cursor.to_string(),
        "--output",
        "json",
    ]));
    let next_seqs = seqs_of(&next);
    assert!(
        next_seqs.iter().all(|s| *s < cursor),
        "{next_seqs:?} < {cursor}"
    );

    // CSV parses back: a header row, one row per record, the same records as JSON.
    let (header, rows) =
        csv_rows(&d.cli(&["audit", "query", "--limit", "1000", "--output", "csv"]));
    assert_eq!(header[..3], ["seq", "kind", "requested_at"]);
    assert!(header.contains(&"staff_actor".to_string()));
    assert!(rows.len() >= total);
    assert!(rows.iter().all(|r| r.len() == header.len()));
    let (kheader, krows) = csv_rows(&d.cli(&["keys", "list", "--output", "csv"]));
    assert_eq!(kheader[..3], ["purpose", "version", "status"]);
    assert!(krows.iter().any(|r| r[0] == "signing" && r[2] == "active"));
    let keys = json_of(&d.cli(&["keys", "list", "--output", "json"]));
    assert!(keys.as_array().is_some_and(|a| a.len() == krows.len()));
    let clients = json_of(&run(&[
        "clients",
        "list",
        "--dir",
        d.dir.to_str().expect("utf-8"),
        "--output",
        "json",
    ]));
    assert!(clients
        .as_array()
        .expect("clients")
        .iter()
        .any(|c| c["name"] == "auditor" && c["state"] == "valid"));

    // A closed set of values is checked by clap: a typo is refused with the valid values.
    let out = d.cli(&["audit", "query", "--kind", "inquiries"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains("inquiry") && err.contains("code_acquisition"),
        "{err}"
    );
    let out = d.cli(&["keys", "rotate", "at_rest"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(stderr(&out).contains("at-rest"), "{}", text(&out));

    // An export into a folder with something in it: refused, the folder unchanged.
    let folder = d.tmp.path().join("not-empty");
    std::fs::create_dir_all(&folder).expect("folder");
    std::fs::write(folder.join("mine.txt"), "keep me").expect("file");
    let out = d.cli(&["audit", "export", "--out", folder.to_str().expect("utf-8")]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(stderr(&out).contains("not empty"), "{}", text(&out));
    let names: Vec<_> = std::fs::read_dir(&folder)
        .expect("read")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec!["mine.txt"]);
    assert_eq!(
        std::fs::read_to_string(folder.join("mine.txt")).expect("read"),
        "keep me"
    );
    let fresh = d.tmp.path().join("fresh");
    let out = d.cli(&["audit", "export", "--out", fresh.to_str().expect("utf-8")]);
    assert_eq!(code(&out), 0, "{}", text(&out));

    // An unknown --as: one sentence listing the client names of the folder.
    let out = d.cli(&["audit", "query", "--as", "audtor"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains("audtor") && err.contains("auditor") && err.contains("security-officer"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    // A stopped gateway: one sentence naming it, nothing from inside the HTTP client.
    let gw = format!("https://{}", d.gw_addr.expect("gateway"));
    d.kill_gateway();
    let out = Command::new(BIN)
        .args([
            "audit",
            "query",
            "--dir",
            d.dir.to_str().expect("utf-8"),
            "--gateway",
            &gw,
        ])
        .output()
        .expect("run renkei");
    assert_eq!(code(&out), 1, "{}", text(&out));
    let err = stderr(&out);
    assert_eq!(
        err.trim(),
        format!("renkei: the gateway at {gw} is not answering: is `renkei serve` running?")
    );
}

#[test]
fn usage_errors_wrong_folders_and_long_numbers_without_a_gateway() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_str().expect("utf-8");

    // A wrong --dir: what is missing, in one sentence.
    let out = run(&["keys", "list", "--dir", dir]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains("there is no deployment at") && err.contains("ca.pem"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let missing = tmp.path().join("nowhere");
    let out = run(&["keys", "list", "--dir", missing.to_str().expect("utf-8")]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(stderr(&out).contains("no such folder"), "{}", text(&out));

    // Usage: 2. A long number given where it does not belong is never repeated.
    let digits = "123456789012";
    for args in [
        &["audit", digits][..],
        &["inquiries", "status", "BT1", digits][..],
        &["keys", "retire", "signing", "1234567890123456"][..],
        &["audit", "query", "--person", "1", digits][..],
        &["audit", "query", &format!("--kind={digits}")][..],
        &[
            "persons",
            "lookup",
            &format!("--unified={digits}x"),
            "extra",
        ][..],
        &[digits][..],
    ] {
        let out = run(args);
        assert_eq!(code(&out), 2, "{args:?}: {}", text(&out));
        let all = text(&out);
        assert!(!all.contains(digits), "{args:?} echoed: {all}");
        assert!(!all.contains("1234567890123456"), "{args:?} echoed: {all}");
    }
    let out = run(&["audit", "query", "--nonsense"]);
    assert_eq!(code(&out), 2);

    // --help documents the exit codes.
    let out = run(&["--help"]);
    assert_eq!(code(&out), 0);
    let help = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        help.contains("Exit codes") && help.contains("3  done with rejected lines"),
        "{help}"
    );

    // Completions and man pages, from the CLI definition.
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&["completions", shell]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        let script = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            script.contains("audit") && script.contains("public-keys"),
            "{shell}"
        );
    }
    let man = tmp.path().join("man");
    let out = run(&["man", "--out", man.to_str().expect("utf-8")]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let page = |name: &str| std::fs::read_to_string(man.join(name)).unwrap_or_default();
    assert!(page("renkei.1").contains("audit"), "renkei.1");
    assert!(
        page("renkei-audit-query.1").contains("cursor"),
        "renkei-audit-query.1"
    );
    assert!(!Path::new(&man.join("renkei.1"))
        .metadata()
        .map(|m| m.len() == 0)
        .unwrap_or(true));
}

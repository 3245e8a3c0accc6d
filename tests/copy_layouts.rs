//! Copy (副本) layouts come from the configured `schemas_dir` (issue 13): a layout added to the
//! folder is used by `PUT /v1/copies` after `renkei config reload`; a broken layout file is
//! named with its file, line and field by `renkei schemas check`, refused by a reload (the
//! running gateway keeps the layout in force) and refused at start.

mod common;

use std::process::Command;

use common::{Deployment, BIN};
use renkei::dev::demo::SAMPLES;
use renkei::dev::init::CLIENT_SUBSIDY;
use serde_json::json;

/// An item the repository has no copy layout for.
const NEW_ITEM: &str = "TM00000000000003";

/// Its layout: one digits field.
const NEW_LAYOUT: &str = r#"
item = "TM00000000000003"
title = "試験用の副本"

[[fields]]
name = "score"
label = "点数"
kind = "digits"
max = 4
required = true
"#;

/// A second, required field naming a code table the folder lacks (appended to
/// [`NEW_LAYOUT`], its `table` is on line 16).
const BROKEN_FIELD: &str = r#"
[[fields]]
name = "grade"
label = "等級"
kind = "code"
table = "no-such-table"
required = true
"#;

/// What `schemas check` and a reload print for the broken layout: file, line, field, code.
const BROKEN_PROBLEM: &str = "TM00000000000003.toml: line 16: fields[1].table: unknown_code_table";

/// A provision row letting the local-tax affair keep copies of [`NEW_ITEM`].
fn provision_row() -> String {
    format!(
        "\n[[rows]]\nprocedure = \"JT01010000000214\"\nitem = \"{NEW_ITEM}\"\ndirection = \"provision\"\nlegal_basis = \"市個人番号利用条例 別表第4 (試験)\"\n"
    )
}

fn printed(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_layouts_come_from_the_schemas_folder_and_a_broken_one_is_refused() {
    let mut d = Deployment::new();
    let schemas = d.dir.join("schemas");
    let copied = Command::new("cp")
        .arg("-r")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas"))
        .arg(&schemas)
        .status()
        .unwrap();
    assert!(copied.success());
    let cfg = d.dir.join("renkei.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replacen("listen = ", "schemas_dir = \"schemas\"\nlisten = ", 1),
    )
    .unwrap();
    let table = schemas.join("permissions/local-tax.toml");
    let rows = std::fs::read_to_string(&table).unwrap();
    std::fs::write(&table, format!("{rows}{}", provision_row())).unwrap();
    d.start().await;
    d.link_samples().await;
    let api = d.client(CLIENT_SUBSIDY);
    let path = format!("/v1/copies/{}/{NEW_ITEM}", SAMPLES[0].business_number);
    let copy = |score: &str| json!({"dataset": "D2026", "effective_from": "2026-04-01", "data": {"score": score}});

    // Permitted by the table, but no layout for the item yet.
    let r = api.put_json(&path, &copy("12")).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["code"], "no_copy_layout", "{}", r.body);

    // The layout added to the folder and reloaded: the copy is checked with it and accepted.
    let file = schemas.join(format!("copies/{NEW_ITEM}.toml"));
    std::fs::write(&file, NEW_LAYOUT).unwrap();
    let check = Command::new(BIN)
        .args(["schemas", "check", "--dir", schemas.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", printed(&check));
    let out = d.cli(&["config", "reload"]);
    assert!(out.status.success(), "{}", printed(&out));
    let r = api.put_json(&path, &copy("５５")).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["version"], 1);
    let r = api.put_json(&path, &copy("12345")).await;
    assert_eq!(r.status, 422, "the layout's max applies: {}", r.body);
    assert_eq!(r.body["field"], "data.score", "{}", r.body);
    let listed = api.get(&path).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(
        listed.body["versions"].as_array().unwrap().len(),
        1,
        "{}",
        listed.body
    );

    // Broken: `schemas check` names file, line and field; a reload is refused and the
    // layout in force stays (the new required field is not asked for).
    std::fs::write(&file, format!("{NEW_LAYOUT}{BROKEN_FIELD}")).unwrap();
    let check = Command::new(BIN)
        .args(["schemas", "check", "--dir", schemas.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!check.status.success());
    assert!(
        printed(&check).contains(BROKEN_PROBLEM),
        "{}",
        printed(&check)
    );
    let out = d.cli(&["config", "reload"]);
    assert!(!out.status.success());
    assert!(printed(&out).contains(BROKEN_PROBLEM), "{}", printed(&out));
    let r = api.put_json(&path, &copy("66")).await;
    assert_eq!(r.status, 202, "the layout in force stays: {}", r.body);
    assert_eq!(r.body["version"], 2);

    // And a gateway does not start with it, naming the same problem (start-up errors mask
    // long digit runs, so the file is named by its folder here).
    let out = Command::new(BIN)
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = printed(&out);
    assert!(err.contains("schemas/copies/"), "{err}");
    assert!(
        err.contains("line 16: fields[1].table: unknown_code_table"),
        "{err}"
    );
}

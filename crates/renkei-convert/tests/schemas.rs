//! `check_schemas` on the committed schemas (clean) and on broken copies (each problem found).

use std::path::{Path, PathBuf};

use renkei_convert::check_schemas;

fn schemas() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

#[test]
fn committed_schemas_are_clean() {
    let problems = check_schemas(&schemas());
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn broken_schemas_are_all_reported() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&schemas(), dir.path());
    let d = dir.path();
    let edit = |rel: &str, from: &str, to: &str| {
        let p = d.join(rel);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains(from), "{rel} must contain {from}");
        std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
    };
    edit(
        "layouts/resident-fixed.toml",
        "table = \"sex\"",
        "table = \"gender\"",
    );
    edit(
        "layouts/inquiry-batch.toml",
        "width = 15",
        "width = 0\ncolour = 1",
    );
    edit(
        "layouts/resident-csv.toml",
        "format = \"kanji\"",
        "format = \"roman\"",
    );
    edit(
        "codes/relationship.toml",
        "effective_to = \"2026-03-31\"",
        "effective_to = \"2026-04-01\"",
    );
    edit(
        "eras.toml",
        "start = \"1989-01-08\"",
        "start = \"1926-01-08\"",
    );
    let problems = check_schemas(d);
    let codes: Vec<String> = problems
        .iter()
        .map(|p| {
            format!(
                "{}:{}",
                p.file.file_name().unwrap().to_string_lossy(),
                p.code
            )
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            "eras.toml:era_table",
            "relationship.toml:invalid_code_table",
            "inquiry-batch.toml:layout_syntax",
            "resident-csv.toml:bad_format",
            "resident-fixed.toml:missing_code_table",
        ],
        "{problems:#?}"
    );
    assert!(problems[1].message.contains("versions 1 and 2 overlap"));
    assert!(
        problems[2].message.contains("colour"),
        "{}",
        problems[2].message
    );
}

#[test]
fn layouts_load_from_disk_like_the_builtins() {
    for name in renkei_convert::Layout::builtin_names() {
        let disk = renkei_convert::Layout::load(&schemas(), name).unwrap();
        let built = renkei_convert::Layout::builtin(name).unwrap();
        assert_eq!(disk.fields, built.fields, "{name}");
    }
    let e = renkei_convert::Layout::load(&schemas(), "nope").unwrap_err();
    assert_eq!(e[0].code, "unreadable");
}

//! Walks `conformance/layouts/*/case.json` and checks every vector against the reader.

use std::path::PathBuf;

use renkei_convert::{Layout, LayoutReader};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance/layouts")
}

fn date(s: &str) -> time::Date {
    let f = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &f).expect("as_of must be YYYY-MM-DD")
}

#[test]
fn every_layout_vector_passes() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root())
        .expect("conformance/layouts must exist")
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("case.json").is_file())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 7,
        "expected the committed vectors, found {}",
        dirs.len()
    );
    let mut failures = Vec::new();
    for dir in &dirs {
        let case: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("case.json")).unwrap()).unwrap();
        let layout = Layout::builtin(case["layout"].as_str().unwrap()).unwrap();
        let input = std::fs::read(dir.join(case["input"].as_str().unwrap())).unwrap();
        let as_of = date(case["as_of"].as_str().unwrap());
        let got: Vec<_> = LayoutReader::with_as_of(&layout, input.as_slice(), as_of).collect();
        let expect = case["expect"].as_array().unwrap();
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        if got.len() != expect.len() {
            failures.push(format!(
                "{name}: {} results, expected {}",
                got.len(),
                expect.len()
            ));
            continue;
        }
        for (i, (g, e)) in got.iter().zip(expect).enumerate() {
            let line = e["line"].as_u64().unwrap();
            match (g, e.get("record"), e.get("error")) {
                (Ok(rec), Some(want), None) => {
                    let want = want.as_object().unwrap();
                    let have: Vec<(&str, &str)> = rec.iter().collect();
                    let wanted: Vec<(&str, &str)> = layout
                        .fields
                        .iter()
                        .map(|f| {
                            (
                                f.name.as_str(),
                                want.get(&f.name)
                                    .and_then(Value::as_str)
                                    .unwrap_or("<missing>"),
                            )
                        })
                        .collect();
                    if have != wanted || want.len() != layout.fields.len() {
                        // Secret fields (individual numbers) are masked in the report.
                        let shown: Vec<(&str, &str)> = layout
                            .fields
                            .iter()
                            .zip(&wanted)
                            .map(|(f, (n, v))| {
                                (*n, if f.secret && !v.is_empty() { "***" } else { *v })
                            })
                            .collect();
                        failures.push(format!(
                            "{name} result {i} (line {line}): got {rec:?}, want {shown:?}"
                        ));
                    }
                }
                (Err(err), None, Some(want)) => {
                    let ok = err.line == line
                        && err.field.as_deref() == want["field"].as_str()
                        && err.code == want["code"].as_str().unwrap();
                    if !ok {
                        failures.push(format!(
                            "{name} result {i}: got {err}, want line {line} {want}"
                        ));
                    }
                }
                (g, _, _) => failures.push(format!(
                    "{name} result {i} (line {line}): got {g:?}, want {e}"
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "conformance failures:\n{}",
        failures.join("\n")
    );
}

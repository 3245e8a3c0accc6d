//! The shape of `src/` stays true: every `crate::` reference between the gateway's top-level
//! modules must point down the layer table below (the table `docs/architecture.md` draws).
//! A reference up or sideways — which is how cycles and hubs start — fails this test with
//! the file and the line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each top-level module of `src/` and its layer: a module may use only modules of a lower
/// layer. Modules on the same layer may not use each other.
const LAYERS: &[(&str, u32)] = &[
    // Foundations: no knowledge of any capability.
    ("config", 0),
    ("error", 0),
    ("util", 0),
    ("fsutil", 0),
    ("metrics", 0),
    // Infrastructure: transport, this side's keys, the layouts folder.
    ("tls", 1),
    ("keyring", 1),
    ("schemas", 1),
    // Shared by the capabilities: the platform client, linkage records, the schedule; and
    // the simulator, which stands beside the gateway (see SIM_MAY_USE).
    ("platform", 2),
    ("records", 2),
    ("schedule", 2),
    ("lease", 2),
    // The settings in force (config and permission table), swapped whole by a reload.
    ("settings", 2),
    // Backup and restore: the store's dump and the deployment files under a signed manifest.
    ("backup", 2),
    ("sim", 2),
    // Capabilities, each above what it builds on.
    ("registry", 3),
    ("staff", 3),
    ("inquiry", 4),
    ("copies", 4),
    ("batch", 5),
    ("dispatch", 5),
    ("keys", 5),
    ("ops", 6),
    // The edges: HTTP, wiring, development tools, the command line.
    ("api", 7),
    ("app", 8),
    ("dev", 9),
    ("cli", 10),
];

/// The simulator is the national side: it shares the protocol crate, TLS, the keyring type
/// and small helpers with the gateway, never the gateway's store, capabilities or config of
/// other modules.
const SIM_MAY_USE: &[&str] = &["config", "keyring", "tls", "util", "fsutil"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let p = entry.expect("entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file belongs to (`None` for lib.rs and main.rs).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel
        .components()
        .next()?
        .as_os_str()
        .to_string_lossy()
        .to_string();
    let name = first.strip_suffix(".rs").unwrap_or(&first).to_string();
    (name != "lib" && name != "main").then_some(name)
}

/// Every top-level module named after `crate::` on a line (including `crate::{a, b::c}`).
fn referenced(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        let before = &rest[..i];
        rest = &rest[i + "crate::".len()..];
        // `renkei_crate::` or `some_crate::` are other crates.
        if before.ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let body = group.split('}').next().unwrap_or("");
            let mut depth = 0;
            let mut item = String::new();
            for c in body.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(item.trim().split("::").next().unwrap_or("").to_string());
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            out.push(item.trim().split("::").next().unwrap_or("").to_string());
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
    }
    out.retain(|m| !m.is_empty() && m != "self");
    out
}

#[test]
fn every_dependency_points_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let layer: BTreeMap<&str, u32> = LAYERS.iter().copied().collect();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut edges = 0;
    for file in &files {
        let Some(from) = module_of(&src, file) else {
            continue;
        };
        let Some(&from_layer) = layer.get(from.as_str()) else {
            problems.push(format!(
                "{}: module `{from}` is not in the layer table of tests/architecture.rs",
                file.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).expect("read");
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for to in referenced(code) {
                if to == from {
                    continue;
                }
                edges += 1;
                let at = format!("{}:{}", file.display(), n + 1);
                let Some(&to_layer) = layer.get(to.as_str()) else {
                    problems.push(format!("{at}: `{from}` uses unknown module `{to}`"));
                    continue;
                };
                if from == "sim" && !SIM_MAY_USE.contains(&to.as_str()) {
                    problems.push(format!(
                        "{at}: the simulator uses the gateway's `{to}` (it may use only {SIM_MAY_USE:?})"
                    ));
                } else if to_layer >= from_layer {
                    problems.push(format!(
                        "{at}: `{from}` (layer {from_layer}) uses `{to}` (layer {to_layer}): dependencies must point down"
                    ));
                }
            }
        }
    }
    assert!(
        edges > 50,
        "the scan found only {edges} references; is it reading src/?"
    );
    assert!(
        problems.is_empty(),
        "{} back-edges:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_reference_scanner_reads_grouped_and_nested_paths() {
    assert_eq!(
        referenced("use crate::inquiry::{accept::business_client, Inquiries};"),
        vec!["inquiry"]
    );
    assert_eq!(
        referenced("use crate::{config::Role, error::Error};"),
        vec!["config", "error"]
    );
    assert_eq!(
        referenced("let x = crate::util::now_ms() + renkei_crate::y();"),
        vec!["util"]
    );
}

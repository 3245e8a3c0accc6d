//! `docs/config.md`, the configuration reference, is generated here from the doc comments of
//! the config structs in `src/config.rs` (read with `syn`, so the reference cannot drift from
//! the code): this test regenerates it and fails when the file differs. To update the file
//! after changing the config: `RENKEI_WRITE_DOCS=1 cargo test --release --test config_docs`.
//! It also checks that every setting has a doc comment, and that the production example
//! `deploy/renkei.toml` shows every setting and nothing else.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;
use std::path::Path;

use quote::ToTokens;
use syn::{Attribute, Expr, Fields, Item, Lit, Meta, Type};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `///` lines of an item, joined into one paragraph.
fn doc(attrs: &[Attribute]) -> String {
    let mut lines = Vec::new();
    for a in attrs {
        if let Meta::NameValue(nv) = &a.meta {
            if nv.path.is_ident("doc") {
                if let Expr::Lit(l) = &nv.value {
                    if let Lit::Str(s) = &l.lit {
                        lines.push(s.value().trim().to_string());
                    }
                }
            }
        }
    }
    lines.join(" ").trim().replace('|', "\\|")
}

/// What `#[serde(...)]` says about a field's default: `None` (required), `Some(None)` (the
/// type's default), `Some(Some(f))` (the function `f`).
fn serde_default(attrs: &[Attribute]) -> Option<Option<String>> {
    let mut found = None;
    for a in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let _ = a.parse_nested_meta(|m| {
            if m.path.is_ident("default") {
                found = Some(match m.value() {
                    Ok(v) => Some(v.parse::<syn::LitStr>()?.value()),
                    Err(_) => None,
                });
            } else if m.input.peek(syn::Token![=]) {
                let _: Expr = m.value()?.parse()?;
            }
            Ok(())
        });
    }
    found
}

fn ty(t: &Type) -> String {
    t.to_token_stream()
        .to_string()
        .replace(" < ", "<")
        .replace(" >", ">")
        .replace("< ", "<")
        .replace(" :: ", "::")
}

/// The innermost type name: `Option<Vec<X>>` → `X`.
fn inner(t: &str) -> &str {
    let last = t.rsplit("::").next().unwrap_or(t);
    let last = last.trim_end_matches('>');
    last.rsplit('<').next().unwrap_or(last)
}

/// `CamelCase` → `kebab-case` (serde's `rename_all`).
fn kebab(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

struct Source {
    structs: HashMap<String, syn::ItemStruct>,
    enums: HashMap<String, syn::ItemEnum>,
    consts: HashMap<String, String>,
    fns: HashMap<String, String>,
}

impl Source {
    fn read(files: &[&str]) -> Source {
        let mut s = Source {
            structs: HashMap::new(),
            enums: HashMap::new(),
            consts: HashMap::new(),
            fns: HashMap::new(),
        };
        for f in files {
            let text = std::fs::read_to_string(root().join(f)).expect("read source");
            let file = syn::parse_file(&text).expect("parse source");
            for item in file.items {
                match item {
                    Item::Struct(i) => {
                        s.structs.insert(i.ident.to_string(), i);
                    }
                    Item::Enum(i) => {
                        s.enums.insert(i.ident.to_string(), i);
                    }
                    Item::Const(i) => {
                        let v = i.expr.to_token_stream().to_string().replace(' ', "");
                        s.consts.insert(i.ident.to_string(), v);
                    }
                    Item::Fn(i) => {
                        if let Some(syn::Stmt::Expr(e, None)) = i.block.stmts.last() {
                            let v = e.to_token_stream().to_string();
                            s.fns.insert(i.sig.ident.to_string(), v);
                        }
                    }
                    _ => {}
                }
            }
        }
        s
    }

    /// A default function's value, through the constant it names.
    fn default_value(&self, f: &str) -> String {
        let body = self.fns.get(f).cloned().unwrap_or_default();
        let body = body.trim_end_matches(". into ()").trim().to_string();
        match self.consts.get(&body) {
            Some(v) => format!("`{v}`"),
            None if body.starts_with("SocketAddr") => "`127.0.0.1:9090`".to_string(),
            None => format!("`{}`", body.replace(' ', "")),
        }
    }

    fn enum_values(&self, name: &str) -> Option<String> {
        let e = self.enums.get(name)?;
        Some(
            e.variants
                .iter()
                .map(|v| {
                    let d = doc(&v.attrs);
                    format!("`{}` ({d})", kebab(&v.ident.to_string())).replace(" ()", "")
                })
                .collect::<Vec<_>>()
                .join("; "),
        )
    }

    /// One table per struct, then the structs its fields name, depth first.
    fn render(&self, name: &str, title: &str, out: &mut String, missing: &mut Vec<String>) {
        let s = &self.structs[name];
        let _ = writeln!(out, "## {title}\n\n{}\n", doc(&s.attrs));
        let _ = writeln!(
            out,
            "| setting | type | default | meaning |\n|---|---|---|---|"
        );
        let mut nested = Vec::new();
        let Fields::Named(fields) = &s.fields else {
            return;
        };
        for f in &fields.named {
            let field = f.ident.as_ref().map(|i| i.to_string()).unwrap_or_default();
            let t = ty(&f.ty);
            let mut meaning = doc(&f.attrs);
            if meaning.is_empty() {
                missing.push(format!("{name}.{field}"));
            }
            let inner = inner(&t).to_string();
            if let Some(values) = self.enum_values(&inner) {
                let _ = write!(meaning, " Values: {values}.");
            }
            let default = match serde_default(&f.attrs) {
                None => "required".to_string(),
                Some(Some(func)) => self.default_value(&func),
                Some(None) if t.starts_with("Option") => "none".to_string(),
                Some(None) if t.starts_with("Vec") => "empty".to_string(),
                Some(None) if t == "bool" => "`false`".to_string(),
                Some(None) if self.structs.contains_key(&inner) => "see below".to_string(),
                Some(None) => match self.enums.get(&inner).and_then(|e| {
                    e.variants
                        .iter()
                        .find(|v| v.attrs.iter().any(|a| a.path().is_ident("default")))
                }) {
                    Some(v) => format!("`{}`", kebab(&v.ident.to_string())),
                    None => "the type's default".to_string(),
                },
            };
            let _ = writeln!(out, "| `{field}` | `{t}` | {default} | {meaning} |");
            if self.structs.contains_key(&inner) {
                let sub = if title == "Top level" {
                    if t.starts_with("Vec") {
                        format!("[[{field}]]")
                    } else {
                        format!("[{field}]")
                    }
                } else {
                    format!("{} {field}", title.trim_matches(['[', ']']))
                };
                nested.push((inner, sub));
            }
        }
        out.push('\n');
        for (inner, sub) in nested {
            self.render(&inner, &sub, out, missing);
        }
    }
}

fn generate() -> (String, Vec<String>) {
    let src = Source::read(&["src/config.rs", "crates/renkei-store/src/sled_store.rs"]);
    let mut out = String::from(
        "<!-- Generated by tests/config_docs.rs from the doc comments in src/config.rs; do not edit. -->\n\
         # Configuration reference: `renkei.toml`\n\n\
         Every setting of the gateway's configuration, read from the config structs' own \
         documentation. Relative paths are resolved against the folder holding the file. The \
         file is checked as a whole at start-up (unknown keys refused, every problem listed). \
         A production example with every setting is `deploy/renkei.toml`.\n\n",
    );
    let mut missing = Vec::new();
    src.render("GatewayConfig", "Top level", &mut out, &mut missing);
    let _ = writeln!(
        out,
        "## Environment\n\n\
         | variable | meaning |\n|---|---|\n\
         | `RENKEI_LOG` | log filter (`EnvFilter` syntax), wins over `RUST_LOG`; default `warn,renkei=info` |\n\
         | `RUST_LOG` | log filter when `RENKEI_LOG` is not set |\n\
         | `RENKEI_LOG_FORMAT` | `json` or `text`: overrides `log_format` |"
    );
    (out, missing)
}

#[test]
fn config_reference_is_current() {
    let (text, missing) = generate();
    assert!(
        missing.is_empty(),
        "settings without a doc comment: {missing:?}"
    );
    let path = root().join("docs/config.md");
    if std::env::var_os("RENKEI_WRITE_DOCS").is_some() {
        std::fs::write(&path, &text).expect("write docs/config.md");
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == text,
        "docs/config.md is not current: run RENKEI_WRITE_DOCS=1 cargo test --release --test config_docs"
    );
}

/// Dotted keys of a TOML document (`platform.url`, `clients.name`).
fn keys(prefix: &str, item: &toml_edit::Item, out: &mut BTreeSet<String>) {
    let mut visit = |k: &str, v: &toml_edit::Item| {
        let key = if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        };
        out.insert(key.clone());
        keys(&key, v, out);
    };
    match item {
        toml_edit::Item::Table(t) => t.iter().for_each(|(k, v)| visit(k, v)),
        toml_edit::Item::ArrayOfTables(a) => a
            .iter()
            .for_each(|t| t.iter().for_each(|(k, v)| visit(k, v))),
        toml_edit::Item::Value(toml_edit::Value::InlineTable(t)) => t
            .iter()
            .for_each(|(k, v)| visit(k, &toml_edit::Item::Value(v.clone()))),
        _ => {}
    }
}

#[test]
fn production_example_shows_every_setting() {
    let (text, _) = generate();
    // Documented settings, by section: "## [platform]" tables list `platform.*`.
    let mut documented = BTreeSet::new();
    let mut section = String::new();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("## ") {
            section = t
                .trim_matches(['[', ']'])
                .replace(' ', ".")
                .replace("Top.level", "");
        } else if let Some(rest) = line.strip_prefix("| `") {
            let name = rest.split('`').next().unwrap_or_default();
            if section == "Environment" || name.starts_with("RENKEI") || name == "RUST_LOG" {
                continue;
            }
            documented.insert(if section.is_empty() {
                name.to_string()
            } else {
                format!("{section}.{name}")
            });
        }
    }
    let example = std::fs::read_to_string(root().join("deploy/renkei.toml")).expect("example");
    let doc: toml_edit::DocumentMut = example.parse().expect("example parses");
    let mut shown = BTreeSet::new();
    keys("", doc.as_item(), &mut shown);
    // Permissions are an array of inline tables: their keys are under clients.permissions.
    for k in ["clients.permissions.procedure", "clients.permissions.item"] {
        if example.contains("procedure =") {
            shown.insert(k.to_string());
        }
    }
    // An optional setting may be shown commented out (`# url = "…"`) under its table.
    let mut table = String::new();
    for line in example.lines() {
        if let Some(t) = line.strip_prefix('[') {
            table = t.trim_matches(['[', ']']).to_string();
        } else if let Some(rest) = line.strip_prefix("# ") {
            if let Some((name, _)) = rest.split_once(" = ") {
                if name.chars().all(|c| c.is_ascii_lowercase() || c == '_') && !table.is_empty() {
                    shown.insert(format!("{table}.{name}"));
                }
            }
        }
    }
    let not_shown: Vec<_> = documented.difference(&shown).collect();
    assert!(
        not_shown.is_empty(),
        "deploy/renkei.toml does not show {not_shown:?}"
    );
    let unknown: Vec<_> = shown.difference(&documented).collect();
    assert!(
        unknown.is_empty(),
        "deploy/renkei.toml has unknown {unknown:?}"
    );
}

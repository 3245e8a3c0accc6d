//! Where the gateway takes its layouts, code tables and era table from: the copies built
//! into the binary, or — when `schemas_dir` is set in `renkei.toml` — a folder an operator
//! edits (checked as a whole at start-up with the same rules as `renkei schemas check`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use renkei_convert::layout::Layout;

static SCHEMAS_DIR: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Sets the schemas folder for this process (once, at start-up) after checking it.
pub fn use_dir(dir: Option<&Path>) -> Result<(), String> {
    if let Some(d) = dir {
        let problems = renkei_convert::check_schemas(d);
        if !problems.is_empty() {
            let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            return Err(format!(
                "schemas_dir {}:\n  - {}",
                d.display(),
                list.join("\n  - ")
            ));
        }
    }
    let _ = SCHEMAS_DIR.set(dir.map(Path::to_path_buf));
    Ok(())
}

/// A layout by name, from the configured folder or the built-in copy.
pub fn layout(name: &str) -> Result<Layout, String> {
    match SCHEMAS_DIR.get().and_then(|d| d.as_ref()) {
        Some(dir) => Layout::load(dir, name).map_err(|e| format!("{e:?}")),
        None => Layout::builtin(name).map_err(|e| format!("{e:?}")),
    }
}

//! Where the gateway takes its layouts, code tables and era table from: the copies built
//! into the binary, or — when `schemas_dir` is set in `renkei.toml` — a folder an operator
//! edits (checked as a whole at start-up with the same rules as `renkei schemas check`).
//! The permission table by law ([`permissions`]) and the copy (副本) layouts ([`copies`]) come
//! from the same place: the folder's `permissions/` and `copies/`, or the built-in copies of
//! the repository's `schemas/permissions/` and `schemas/copies/`.

pub mod copies;
pub mod permissions;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use renkei_convert::layout::Layout;

use copies::CopyLayouts;
use permissions::PermissionTable;

static SCHEMAS_DIR: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Why a schemas folder or a layout could not be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SchemaError {
    /// The configured folder failed the check; every problem is listed.
    #[error("schemas_dir {dir}:\n  - {}", problems.join("\n  - "))]
    Folder { dir: String, problems: Vec<String> },
    /// A layout name outside `[a-z0-9-]+` (it names a file: no paths).
    #[error("layout names are lower-case letters, digits and '-'")]
    BadName,
    /// The layout could not be loaded.
    #[error("layout {name}: {detail}")]
    Layout { name: String, detail: String },
}

/// `(path, text)` of a file read, or `(path, error)` of one that could not be.
pub(crate) type PathAnd = (String, String);

/// The `*.toml` files directly in `dir`, sorted by name, read: `(path, text)` pairs and the
/// `(path, error)` of each file that could not be read (none when the folder is missing).
pub(crate) fn read_toml_files(dir: &Path) -> (Vec<PathAnd>, Vec<PathAnd>) {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let (mut texts, mut unreadable) = (Vec::new(), Vec::new());
    for p in files {
        match std::fs::read_to_string(&p) {
            Ok(t) => texts.push((p.display().to_string(), t)),
            Err(e) => unreadable.push((p.display().to_string(), e.to_string())),
        }
    }
    (texts, unreadable)
}

/// True for a layout name that can only name a file inside the schemas folder.
pub fn valid_layout_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The permission table of a schemas folder (`dir/permissions/`), or the built-in one; every
/// problem is listed as text naming the file, the row and the field.
pub fn permission_table(dir: Option<&Path>) -> Result<PermissionTable, Vec<String>> {
    let t = match dir {
        Some(d) => PermissionTable::load_dir(&d.join("permissions")),
        None => PermissionTable::builtin(),
    };
    t.map_err(|ps| ps.iter().map(|p| p.to_string()).collect())
}

/// The copy layouts of a schemas folder (`dir/copies/`, with the folder's code tables), or
/// the built-in ones; every problem is listed as text naming the file, the line and the field.
pub fn copy_layouts(dir: Option<&Path>) -> Result<CopyLayouts, Vec<String>> {
    let l = match dir {
        Some(d) => CopyLayouts::load_dir(d),
        None => CopyLayouts::builtin(),
    };
    l.map_err(|ps| ps.iter().map(|p| p.to_string()).collect())
}

/// Every problem of a schemas folder: layouts, code tables, the era table, the permission
/// table and the copy layouts (what `renkei schemas check` prints).
pub fn check_dir(dir: &Path) -> Vec<String> {
    let mut problems: Vec<String> = renkei_convert::check_schemas(dir)
        .iter()
        .map(|p| p.to_string())
        .collect();
    if let Err(ps) = permission_table(Some(dir)) {
        problems.extend(ps);
    }
    if let Err(ps) = copy_layouts(Some(dir)) {
        // A broken code table is already listed by the layout check.
        let fresh: Vec<String> = ps.into_iter().filter(|p| !problems.contains(p)).collect();
        problems.extend(fresh);
    }
    problems
}

/// Sets the schemas folder for this process (once, at start-up) after checking it.
pub fn use_dir(dir: Option<&Path>) -> Result<(), SchemaError> {
    if let Some(d) = dir {
        let problems = check_dir(d);
        if !problems.is_empty() {
            return Err(SchemaError::Folder {
                dir: d.display().to_string(),
                problems,
            });
        }
    }
    let _ = SCHEMAS_DIR.set(dir.map(Path::to_path_buf));
    Ok(())
}

/// A layout by name, from the configured folder or the built-in copy.
pub fn layout(name: &str) -> Result<Layout, SchemaError> {
    if !valid_layout_name(name) {
        return Err(SchemaError::BadName);
    }
    let loaded = match SCHEMAS_DIR.get().and_then(|d| d.as_ref()) {
        Some(dir) => Layout::load(dir, name),
        None => Layout::builtin(name),
    };
    loaded.map_err(|e| SchemaError::Layout {
        name: name.to_string(),
        detail: format!("{e:?}"),
    })
}

/// A layout by name, loaded once for the process into `cell` (the folder is chosen at start,
/// so the first load stands; a failed load is kept too and returned to every caller).
pub fn layout_once(
    cell: &'static OnceLock<Result<Layout, SchemaError>>,
    name: &str,
) -> Result<&'static Layout, SchemaError> {
    cell.get_or_init(|| layout(name))
        .as_ref()
        .map_err(Clone::clone)
}

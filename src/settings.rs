//! The settings in force: `renkei.toml`, the permission table by law and the copy (副本)
//! layouts, held together and swapped whole by a reload ([`Reloader`], for `renkei config reload` and SIGHUP). A reload
//! reads and checks everything first; on any problem nothing changes and every problem is
//! named. Requests in flight keep the settings they started with (an `Arc`), new requests
//! and new TLS handshakes see the new ones.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use renkei_ids::{AffairCode, ItemCode, ProcedureCode};

use crate::config::{ClientConfig, GatewayConfig, Role};
use crate::schemas::copies::CopyLayouts;
use crate::schemas::permissions::{Direction, PermissionTable};
use crate::tls::{ClientTrust, KnownClient};

/// One consistent set of settings.
#[derive(Debug)]
pub struct Settings {
    pub config: Arc<GatewayConfig>,
    pub table: Arc<PermissionTable>,
    /// The copy layouts (the config's `schemas_dir`'s `copies/`, or the built-in copy).
    pub copies: Arc<CopyLayouts>,
}

impl Settings {
    /// Pairs a loaded config with its permission table and copy layouts (from the config's
    /// `schemas_dir`, or the built-in copies) after checking that they fit together; every
    /// problem of all three is listed.
    pub fn new(config: GatewayConfig) -> Result<Self, Vec<String>> {
        let dir = config.schemas_dir.as_deref();
        let (table, copies) = match (
            crate::schemas::permission_table(dir),
            crate::schemas::copy_layouts(dir),
        ) {
            (Ok(t), Ok(c)) => (t, c),
            (t, c) => {
                let mut problems = t.err().unwrap_or_default();
                problems.extend(c.err().unwrap_or_default());
                return Err(problems);
            }
        };
        let problems = fit(&config, &table);
        if problems.is_empty() {
            Ok(Self {
                config: Arc::new(config),
                table: Arc::new(table),
                copies: Arc::new(copies),
            })
        } else {
            Err(problems)
        }
    }

    /// Reads `renkei.toml` at `path` and its permission table; every problem is listed.
    pub fn load(path: &Path) -> Result<Self, Vec<String>> {
        let config = GatewayConfig::load(path).map_err(|e| {
            e.problems
                .iter()
                .map(|p| format!("{}: {p}", e.path))
                .collect::<Vec<_>>()
        })?;
        Self::new(config)
    }

    /// The affair under which `client` may inquire (`procedure`, `item`): `hint` when it is
    /// one of the client's affairs and the table permits it there, else the first of the
    /// client's affairs that the table permits it under. `None`: not permitted.
    pub fn inquiry_affair(
        &self,
        client: &ClientConfig,
        hint: Option<&AffairCode>,
        procedure: &ProcedureCode,
        item: &ItemCode,
    ) -> Option<AffairCode> {
        client
            .affairs
            .iter()
            .filter(|a| hint.is_none_or(|h| h == *a))
            .find(|a| self.table.permits(a, procedure, item, Direction::Inquiry))
            .cloned()
    }
}

/// Problems between a config and a table: a business system's affair with no rows.
fn fit(config: &GatewayConfig, table: &PermissionTable) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, c) in config.clients.iter().enumerate() {
        if c.role != Role::Business {
            continue;
        }
        for (j, a) in c.affairs.iter().enumerate() {
            if !table.knows_affair(a) {
                problems.push(format!(
                    "clients[{i}].affairs[{j}]: no rows for this affair in the permission table (schemas/permissions/)"
                ));
            }
        }
    }
    problems
}

/// The settings in force, shared by everything that answers requests.
#[derive(Debug, Clone)]
pub struct Live(Arc<RwLock<Arc<Settings>>>);

impl Live {
    /// Holds `settings` (and puts its copy layouts in force for `copies::layout`).
    pub fn new(settings: Settings) -> Self {
        crate::schemas::copies::put_in_force(settings.copies.clone());
        Self(Arc::new(RwLock::new(Arc::new(settings))))
    }

    /// The settings now in force (kept by the caller for the whole of one request).
    pub fn current(&self) -> Arc<Settings> {
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Puts `settings` in force.
    fn replace(&self, settings: Settings) {
        crate::schemas::copies::put_in_force(settings.copies.clone());
        let new = Arc::new(settings);
        match self.0.write() {
            Ok(mut g) => *g = new,
            Err(p) => *p.into_inner() = new,
        }
    }
}

/// The clients the TLS handshake admits, from a config.
pub fn known_clients(config: &GatewayConfig) -> Vec<KnownClient> {
    config
        .clients
        .iter()
        .map(|c| KnownClient {
            name: c.name.to_string(),
            pin: c.pin_hex(),
        })
        .collect()
}

/// What a reload put in force.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Reloaded {
    /// Clients now configured.
    pub clients: usize,
    /// Rows of the permission table now in force.
    pub permission_rows: usize,
    /// Items with a copy layout now in force.
    pub copy_layouts: usize,
    /// Settings that changed in the file but take effect only at the next start (the
    /// listeners, the store, keys, TLS files, the platform).
    pub restart_needed: Vec<&'static str>,
}

/// Re-reads `renkei.toml` (and the permission table and copy layouts) and swaps them in whole.
#[derive(Debug)]
pub struct Reloader {
    path: PathBuf,
    live: Live,
    trust: Arc<ClientTrust>,
    /// One reload at a time (the API and SIGHUP may ask at once).
    busy: std::sync::Mutex<()>,
}

impl Reloader {
    /// Reloads `path` into `live` and the handshake's client list in `trust`.
    pub fn new(path: PathBuf, live: Live, trust: Arc<ClientTrust>) -> Self {
        Self {
            path,
            live,
            trust,
            busy: std::sync::Mutex::new(()),
        }
    }

    /// Reads and checks everything; puts it in force only when there is no problem. On
    /// failure the settings in force stay, and every problem is returned.
    pub fn reload(&self) -> Result<Reloaded, Vec<String>> {
        let _one = match self.busy.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let new = Settings::load(&self.path)?;
        let old = self.live.current();
        if new.config.schemas_dir != old.config.schemas_dir {
            return Err(vec![
                "schemas_dir: changed; the layouts folder is chosen at start, restart the gateway to change it".into(),
            ]);
        }
        let done = Reloaded {
            clients: new.config.clients.len(),
            permission_rows: new.table.rows().len(),
            copy_layouts: new.copies.len(),
            restart_needed: restart_needed(&old.config, &new.config),
        };
        self.trust.set_clients(&known_clients(&new.config));
        self.live.replace(new);
        Ok(done)
    }
}

/// The sections that differ between `old` and `new` but are read only at start.
fn restart_needed(old: &GatewayConfig, new: &GatewayConfig) -> Vec<&'static str> {
    let same = |a: &dyn erased::Ser, b: &dyn erased::Ser| a.json() == b.json();
    let mut out = Vec::new();
    let pairs: [(&'static str, &dyn erased::Ser, &dyn erased::Ser); 10] = [
        ("listen", &old.listen, &new.listen),
        ("data_dir", &old.data_dir, &new.data_dir),
        ("agency_code", &old.agency_code, &new.agency_code),
        ("durability", &old.durability, &new.durability),
        ("server", &old.server, &new.server),
        ("limits", &old.limits, &new.limits),
        ("ops", &old.ops, &new.ops),
        ("tls", &old.tls, &new.tls),
        ("keys", &old.keys, &new.keys),
        ("platform", &old.platform, &new.platform),
    ];
    for (name, a, b) in pairs {
        if !same(a, b) {
            out.push(name);
        }
    }
    if old.max_body_bytes != new.max_body_bytes || old.max_batch_bytes != new.max_batch_bytes {
        out.push("max_body_bytes");
    }
    let limits = |c: &GatewayConfig| -> Vec<(String, String)> {
        c.clients
            .iter()
            .map(|cl| (cl.name.to_string(), format!("{:?}", cl.limits)))
            .collect()
    };
    if limits(old) != limits(new) {
        out.push("clients.limits");
    }
    out
}

/// Comparing config sections by their serialized form.
mod erased {
    /// A section that can be written as JSON.
    pub trait Ser {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Ser for T {
        fn json(&self) -> String {
            serde_json::to_string(self).unwrap_or_default()
        }
    }
}

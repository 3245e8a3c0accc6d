//! What the handlers may use: narrow handles to each capability, wired once at start-up by
//! `app`. A handler takes the one it needs; nothing here is a hub that reaches everywhere.

use std::path::PathBuf;
use std::sync::Arc;

use renkei_store::Store;

use crate::config::GatewayConfig;
use crate::copies::manual::ManualProvision;
use crate::copies::Copies;
use crate::inquiry::Inquiries;
use crate::keys::master::SharedMaster;
use crate::keys::Keys;
use crate::ops::Readiness;
use crate::registry::Registry;
use crate::settings::{Live, Reloader};
use crate::staff::Staff;

/// The API's state.
#[derive(Clone)]
pub struct AppState {
    /// The configuration as started (limits, the data folder); the client list and the
    /// permission table in force are in `settings`.
    pub config: Arc<GatewayConfig>,
    /// The settings in force, swapped whole by a reload.
    pub settings: Live,
    /// Reloads `renkei.toml` (none when the gateway was started without a file).
    pub reloader: Option<Arc<Reloader>>,
    /// The `renkei.toml` the gateway was started with (a backup starts from it; none when
    /// it was started without a file).
    pub config_path: Option<PathBuf>,
    /// Read access for audit, batch progress and statistics; writes go through capabilities.
    pub store: Arc<dyn Store>,
    pub registry: Arc<Registry>,
    pub inquiries: Arc<Inquiries>,
    pub copies: Arc<Copies>,
    /// Manual provision requests (手動提供) of business systems.
    pub manual: Arc<ManualProvision>,
    pub keys: Arc<Keys>,
    /// The platform's master information as last verified.
    pub master: SharedMaster,
    /// Staff users and sessions.
    pub staff: Arc<Staff>,
    /// What the readiness checks look at (`/readyz` on the operations listener, and
    /// `GET /v1/ops/readiness` for operators here).
    pub readiness: Readiness,
}

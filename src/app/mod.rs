//! Start-up and shut-down: the one place that names the store implementation and wires the
//! capabilities together — [`build`] opens the store and loads keys, [`start`] runs the API
//! listener and the background work (dispatcher, checkpoints, re-encryption, master
//! information, retention); [`start_sim`] runs the platform simulator. Logging is in
//! [`logging`].

pub mod logging;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use renkei_store::{Store, StoreError};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::AppState;
use crate::config::{GatewayConfig, SimConfig, StoreBackend};
use crate::copies::manual::ManualProvision;
use crate::copies::manual_jobs::ManualJobs;
use crate::copies::provisions::ProvisionFetch;
use crate::copies::transfer::Transfer;
use crate::copies::Copies;
use crate::dispatch::{Dispatcher, Provision};
use crate::inquiry::deliver::Delivery;
use crate::inquiry::repo::InquiryRepo;
use crate::inquiry::Inquiries;
use crate::keyring::{KeyError, KeyState, PeerKeys};
use crate::keys::master::{MasterSource, SharedMaster};
use crate::keys::Keys;
use crate::lease::{while_held, Leadership};
use crate::ops::Readiness;
use crate::platform::{Policy, Uplink};
use crate::registry::codes::CodeAcquisition;
use crate::registry::{Registry, RegistryError};
use crate::schedule::Wake;
use crate::settings::{Live, Reloader, Settings};
use crate::sim::{Sim, SimError};
use crate::tls::{self, HttpsClient, TlsError};

/// Why the gateway or the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("schemas: {0}")]
    Schemas(#[from] crate::schemas::SchemaError),
    #[error("configuration:\n  - {}", .0.join("\n  - "))]
    Settings(Vec<String>),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("store: {0}")]
    StoreSetup(#[from] store::StoreSetupError),
    #[error("keys: {0}")]
    Keys(#[from] KeyError),
    #[error("registry: {0}")]
    Registry(#[from] RegistryError),
    #[error("tls: {0}")]
    Tls(#[from] TlsError),
    #[error("simulator: {0}")]
    Sim(#[from] SimError),
    #[error("inquiry status index: {0}")]
    StatusIndex(#[from] crate::inquiry::repo::RepoError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StartError {
    let what = what.into();
    move |source| StartError::Io { what, source }
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, stops background work and waits for it.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// The gateway, wired: every capability and the handles that connect them.
pub struct Gateway {
    /// The configuration as started.
    pub config: Arc<GatewayConfig>,
    /// The settings in force (client list and permission table), swapped by a reload.
    pub settings: Live,
    /// The `renkei.toml` a reload re-reads (set by `renkei serve`).
    pub config_path: Option<PathBuf>,
    pub store: Arc<dyn Store>,
    pub keyring: Arc<KeyState>,
    pub registry: Arc<Registry>,
    pub inquiries: Arc<Inquiries>,
    pub copies: Arc<Copies>,
    /// Manual provision requests (手動提供) as business systems answer them.
    pub manual: Arc<ManualProvision>,
    pub keys: Arc<Keys>,
    pub uplink: Uplink,
    pub policy: Arc<Policy>,
    pub wake: Wake,
    pub master: SharedMaster,
    pub staff: Arc<crate::staff::Staff>,
}

/// Opens the store (`[store]`: sled under `data_dir`, or PostgreSQL) and loads keys.
pub fn build(config: GatewayConfig) -> Result<Gateway, StartError> {
    crate::schemas::use_dir(config.schemas_dir.as_deref())?;
    let store: Arc<dyn Store> = store::open(&config)?;
    let keyring = Arc::new(KeyState::load(
        config.agency_code.clone(),
        &config.keys.dir,
        &config.keys.master_key_file,
    )?);
    keyring.set_peer(PeerKeys::load(&config.platform.peer_keys)?);
    crate::records::install(store.as_ref())?;
    store.observe_commits(Arc::new(|g: renkei_store::GroupReport| {
        crate::metrics::global().commit_group(g.batches, g.records, g.write, g.ok)
    }));
    for (name, file) in [
        ("server", &config.tls.cert),
        ("platform-client", &config.platform.client_cert),
    ] {
        if let Some(t) = crate::ops::certificate_expiry(file) {
            crate::metrics::global().certificate_expires(name, t);
        }
    }
    let wake = Wake::new();
    let registry = Arc::new(Registry::new(store.clone(), keyring.clone(), wake.clone())?);
    tls::ensure_separate_roots(&config.tls.ca, &config.platform.ca)?;
    let client = HttpsClient::new(
        &config.platform.ca,
        &config.platform.client_cert,
        &config.platform.client_key,
        std::time::Duration::from_millis(config.platform.request_timeout_ms),
    )?;
    let uplink = Uplink::new(
        client,
        &config.platform.url,
        keyring.clone(),
        config.platform.agency_code.clone(),
    );
    let settings = Live::new(Settings::new(config).map_err(StartError::Settings)?);
    let config = settings.current().config.clone();
    let inquiries = Arc::new(Inquiries::new(
        settings.clone(),
        store.clone(),
        registry.clone(),
        wake.clone(),
    ));
    let copies = Arc::new(Copies::new(
        settings.clone(),
        store.clone(),
        registry.clone(),
        wake.clone(),
    ));
    let manual = Arc::new(ManualProvision::new(
        settings.clone(),
        store.clone(),
        keyring.clone(),
        wake.clone(),
    ));
    let keys = Arc::new(Keys::new(
        keyring.clone(),
        store.clone(),
        uplink.clone(),
        config.agency_code.clone(),
        config.keys.two_person_rule,
    ));
    let staff = Arc::new(crate::staff::Staff::new(
        store.clone(),
        keyring.clone(),
        config.staff,
        Arc::new(crate::staff::SystemClock),
    ));
    Ok(Gateway {
        staff,
        policy: Arc::new(Policy::new(&config.platform)),
        config,
        settings,
        config_path: None,
        store,
        keyring,
        registry,
        inquiries,
        copies,
        manual,
        keys,
        uplink,
        wake,
        master: Default::default(),
    })
}

/// The API listener's limits: `[server]` with defaults filled in.
fn server_limits(c: &crate::config::ServerConfig) -> tls::ServerLimits {
    let d = tls::ServerLimits::default();
    let secs = std::time::Duration::from_secs;
    tls::ServerLimits {
        max_connections: c.max_connections.unwrap_or(d.max_connections),
        handshake_timeout: c
            .handshake_timeout_secs
            .map(secs)
            .unwrap_or(d.handshake_timeout),
        header_read_timeout: c
            .header_read_timeout_secs
            .map(secs)
            .unwrap_or(d.header_read_timeout),
    }
}

/// Listens on `listen` and writes the bound address (port 0 picks one) to `addr_file`.
async fn bind(
    listen: SocketAddr,
    addr_file: &std::path::Path,
) -> Result<(TcpListener, SocketAddr), StartError> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: listen,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(io("the listener's address"))?;
    crate::fsutil::write_public(addr_file, addr.to_string().as_bytes())
        .map_err(io(addr_file.display().to_string()))?;
    Ok((listener, addr))
}

/// Starts the gateway: API listener, operations listener and background work. Writes the
/// bound addresses to `<data_dir>/gateway.addr` and `<data_dir>/ops.addr`.
pub async fn start(gw: &Gateway) -> Result<Running, StartError> {
    let cfg = &gw.config;
    // The ops listener first: once the API's address is written, both answer.
    let (ops_listener, ops_addr) = bind(cfg.ops.listen, &cfg.data_dir.join("ops.addr")).await?;
    // Uploads a previous run was receiving or accepting: their batches resume when the
    // file is uploaded again.
    let spool = crate::batch::spool::spool_dir(&cfg.data_dir);
    let stale =
        crate::batch::spool::clear(&cfg.data_dir).map_err(io(spool.display().to_string()))?;
    if stale > 0 {
        tracing::info!(
            message = "Removed spool files of uploads cut short.",
            files = stale
        );
    }
    // A store written before the inquiry status index: indexed once, before anything can
    // change an inquiry.
    let indexed = InquiryRepo::new(gw.store.clone(), gw.keyring.clone())
        .ensure_status_index()
        .await?;
    if indexed > 0 {
        tracing::info!(
            message = "Built the inquiry status index.",
            inquiries = indexed
        );
    }
    let (listener, addr) = bind(cfg.listen, &cfg.data_dir.join("gateway.addr")).await?;
    let (tx, rx) = watch::channel(false);
    // Two gateways may share one PostgreSQL database: the singleton work runs under a lease.
    let mut lease_task = None;
    let leadership = match cfg.store.backend {
        StoreBackend::Sled => Leadership::sole(),
        StoreBackend::Postgres => {
            let holder = format!(
                "{addr} pid {} {}",
                std::process::id(),
                crate::util::new_id("GW")
            );
            let (l, task) = crate::lease::contend(
                gw.store.clone(),
                holder,
                std::time::Duration::from_secs(cfg.store.dispatch_lease_secs),
                rx.clone(),
            );
            lease_task = Some(tokio::spawn(task));
            l
        }
    };
    let clients = crate::settings::known_clients(&gw.settings.current().config);
    let trust = Arc::new(tls::ClientTrust::new(
        &cfg.tls.ca,
        &cfg.tls.crl,
        Some(&clients),
    )?);
    let tls_cfg = tls::server_config_with(trust.clone(), &cfg.tls.cert, &cfg.tls.key)?;
    let reloader = gw
        .config_path
        .clone()
        .map(|path| Arc::new(Reloader::new(path, gw.settings.clone(), trust.clone())));
    let hangup = tokio::spawn(reload_on_hangup(
        reloader.clone(),
        gw.store.clone(),
        rx.clone(),
    ));
    let readiness = Readiness {
        store: gw.store.clone(),
        keyring: gw.keyring.clone(),
        master: gw.master.clone(),
        policy: gw.policy.clone(),
        platform_url: cfg.platform.url.clone(),
        backend: cfg.store.backend,
        leadership: leadership.clone(),
        own_certificates: vec![
            ("server", cfg.tls.cert.clone()),
            ("platform-client", cfg.platform.client_cert.clone()),
        ],
        clients_dir: gw
            .config_path
            .as_ref()
            .and_then(|p| p.parent())
            .map(|d| d.join("clients")),
        settings: gw.settings.clone(),
    };
    let app = crate::api::app(AppState {
        config: cfg.clone(),
        settings: gw.settings.clone(),
        reloader,
        config_path: gw.config_path.clone(),
        store: gw.store.clone(),
        registry: gw.registry.clone(),
        inquiries: gw.inquiries.clone(),
        copies: gw.copies.clone(),
        manual: gw.manual.clone(),
        keys: gw.keys.clone(),
        master: gw.master.clone(),
        staff: gw.staff.clone(),
        readiness: readiness.clone(),
    });
    let serve = tokio::spawn(tls::serve(
        listener,
        tls_cfg,
        server_limits(&cfg.server),
        move |peer, mut req: hyper::Request<hyper::body::Incoming>| {
            let app = app.clone();
            async move {
                use tower::ServiceExt;
                req.extensions_mut().insert(peer);
                let resp = app.oneshot(req).await;
                Ok::<_, std::io::Error>(match resp {
                    Ok(r) => r,
                    Err(never) => match never {},
                })
            }
        },
        rx.clone(),
    ));
    let probes = crate::api::ops::probes(readiness);
    let mut ops_rx = rx.clone();
    let ops_serve = tokio::spawn(async move {
        let stop = async move {
            let _ = ops_rx.wait_for(|stop| *stop).await;
        };
        if let Err(error) = axum::serve(ops_listener, probes)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(message = "Operations listener stopped.", %error);
        }
    });
    if let Err(error) = crate::copies::provisions::ensure_scheduled(gw.store.as_ref()).await {
        tracing::error!(message = "Cannot schedule the provision-log fetch.", %error);
    }
    if let Err(error) = crate::copies::manual_jobs::ensure_scheduled(gw.store.as_ref()).await {
        tracing::error!(message = "Cannot schedule the manual provision fetch.", %error);
    }
    let dispatcher = Dispatcher::new(
        gw.store.clone(),
        gw.policy.clone(),
        gw.wake.clone(),
        Delivery {
            store: gw.store.clone(),
            repo: InquiryRepo::new(gw.store.clone(), gw.keyring.clone()),
            registry: gw.registry.clone(),
            uplink: gw.uplink.clone(),
            policy: gw.policy.clone(),
            agency: cfg.agency_code.clone(),
            poll_interval_ms: cfg.platform.poll_interval_ms,
        },
        CodeAcquisition {
            store: gw.store.clone(),
            registry: gw.registry.clone(),
            uplink: gw.uplink.clone(),
            policy: gw.policy.clone(),
            agency: cfg.agency_code.clone(),
        },
        Provision {
            transfer: Transfer {
                store: gw.store.clone(),
                repo: gw.copies.repo().clone(),
                uplink: gw.uplink.clone(),
                policy: gw.policy.clone(),
                agency: cfg.agency_code.clone(),
            },
            fetch: ProvisionFetch {
                store: gw.store.clone(),
                uplink: gw.uplink.clone(),
                policy: gw.policy.clone(),
                agency: cfg.agency_code.clone(),
                interval_ms: cfg.platform.provision_fetch_ms.max(1),
            },
            manual: ManualJobs {
                store: gw.store.clone(),
                repo: gw.manual.repo().clone(),
                registry: gw.registry.clone(),
                settings: gw.settings.clone(),
                uplink: gw.uplink.clone(),
                policy: gw.policy.clone(),
                agency: cfg.agency_code.clone(),
                interval_ms: cfg.platform.provision_fetch_ms.max(1),
            },
        },
        cfg.platform.max_in_flight,
    );
    let (store, keyring) = (gw.store.clone(), gw.keyring.clone());
    let checkpoints = tokio::spawn(while_held(leadership.clone(), rx.clone(), move |stop| {
        crate::records::checkpoint::checkpointer(store.clone(), keyring.clone(), stop)
    }));
    let (store, keyring) = (gw.store.clone(), gw.keyring.clone());
    let rekey = tokio::spawn(while_held(leadership.clone(), rx.clone(), move |stop| {
        crate::keys::reencrypt::reencrypt_job(store.clone(), keyring.clone(), stop)
    }));
    let master = tokio::spawn(crate::keys::master::refresher(
        MasterSource {
            uplink: gw.uplink.clone(),
            keyring: gw.keyring.clone(),
            platform_url: cfg.platform.url.clone(),
            platform: cfg.platform.agency_code.clone(),
            peer_keys_file: cfg.platform.peer_keys.clone(),
            document_file: cfg.data_dir.join("master.xml"),
            status: gw.master.clone(),
            refresh_every: std::time::Duration::from_secs(cfg.platform.master_refresh_secs.max(1)),
            overlap: std::time::Duration::from_secs(cfg.platform.master_key_overlap_secs),
            history: Default::default(),
        },
        rx.clone(),
    ));
    let store = gw.store.clone();
    let sweep = tokio::spawn(while_held(leadership.clone(), rx.clone(), move |stop| {
        crate::records::retention::sweeper(
            store.clone(),
            renkei_records::DEFAULT_RETENTION_YEARS,
            stop,
        )
    }));
    let crls = tokio::spawn(tls::watch_crls(trust, tls::CRL_POLL_INTERVAL, rx.clone()));
    let alive_every = cfg.platform.alive_interval_secs;
    let (uplink, policy) = (gw.uplink.clone(), gw.policy.clone());
    let alive = tokio::spawn(while_held(leadership.clone(), rx.clone(), move |stop| {
        let (uplink, policy) = (uplink.clone(), policy.clone());
        async move {
            if alive_every > 0 {
                crate::platform::alive::notifier(
                    uplink,
                    policy,
                    std::time::Duration::from_secs(alive_every),
                    stop,
                )
                .await;
            }
        }
    }));
    let dispatch = tokio::spawn(while_held(leadership, rx, move |stop| {
        dispatcher.clone().run(stop)
    }));
    tracing::info!(message = "Gateway listening.", %addr, ops = %ops_addr);
    Ok(Running {
        addr,
        shutdown: tx,
        tasks: lease_task
            .into_iter()
            .chain([
                serve,
                dispatch,
                checkpoints,
                rekey,
                sweep,
                master,
                ops_serve,
                crls,
                hangup,
                alive,
            ])
            .collect(),
    })
}

/// On SIGHUP, reloads the configuration as `renkei config reload` does, records it as a
/// staff action of the host (`signal:SIGHUP`) and logs the outcome with every problem.
async fn reload_on_hangup(
    reloader: Option<Arc<Reloader>>,
    store: Arc<dyn Store>,
    mut shutdown: watch::Receiver<bool>,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let Some(reloader) = reloader else {
        return;
    };
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(error) => {
            tracing::warn!(message = "SIGHUP reload unavailable.", %error);
            return;
        }
    };
    loop {
        tokio::select! {
            got = hup.recv() => if got.is_none() { return },
            _ = shutdown.changed() => return,
        }
        let r = reloader.clone();
        let outcome = match tokio::task::spawn_blocking(move || r.reload()).await {
            Ok(o) => o,
            Err(error) => {
                tracing::error!(message = "Configuration reload failed.", %error);
                continue;
            }
        };
        match &outcome {
            Ok(done) => tracing::info!(
                message = "Configuration reloaded (SIGHUP).",
                clients = done.clients,
                permission_rows = done.permission_rows,
                restart_needed = ?done.restart_needed
            ),
            Err(problems) => tracing::warn!(
                message = "Configuration not reloaded (SIGHUP); the one in force stays.",
                problems = ?problems
            ),
        }
        let staff = renkei_records::StaffDetail {
            actor: "signal:SIGHUP".into(),
            terminal: "localhost".into(),
            certificate_fingerprint: None,
            action: "config.reload".into(),
            target: None,
            touched_individual_number: false,
        };
        if let Err(error) = crate::api::admin::record_reload(store.as_ref(), staff, &outcome).await
        {
            tracing::error!(message = "Reload record not written.", %error);
        }
    }
}

/// Starts the simulator.
pub async fn start_sim(
    config: SimConfig,
    capture: Option<PathBuf>,
) -> Result<(Running, Arc<Sim>), StartError> {
    std::fs::create_dir_all(&config.data_dir).map_err(io(config.data_dir.display().to_string()))?;
    let (listener, addr) = bind(config.listen, &config.data_dir.join("sim.addr")).await?;
    let tls_cfg = tls::server_config(&config.tls.ca, &config.tls.cert, &config.tls.key)?;
    let sim = Sim::new(config, capture)?;
    let (tx, rx) = watch::channel(false);
    let s = sim.clone();
    let serve = tokio::spawn(tls::serve(
        listener,
        tls_cfg,
        tls::ServerLimits::default(),
        move |peer, req| s.clone().handle(peer, req),
        rx,
    ));
    tracing::info!(message = "Platform simulator listening.", %addr);
    Ok((
        Running {
            addr,
            shutdown: tx,
            tasks: vec![serve],
        },
        sim,
    ))
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}

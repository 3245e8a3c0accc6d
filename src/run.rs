//! Starting and stopping the two servers: the gateway (`renkei serve`) and the platform
//! simulator (`renkei sim`), as tasks of the current runtime with a shutdown signal.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::config::{GatewayConfig, SimConfig};
use crate::gateway::Gateway;
use crate::inquiry::dispatch::Dispatcher;
use crate::keys::{KeyState, PeerKeys};
use crate::registry::Registry;
use crate::sim::Sim;
use crate::tls::{self, HttpsClient};
use crate::uplink::{self, Uplink};
use renkei_store::sled_store::SledStore;
use renkei_store::Store;

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

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Builds the gateway's state from its config (opens the store, loads keys).
pub fn build_gateway(config: GatewayConfig) -> Result<Arc<Gateway>, String> {
    crate::schemas::use_dir(config.schemas_dir.as_deref())?;
    let store: Arc<dyn Store> =
        SledStore::open(&config.data_dir.join("store"), config.durability).map_err(err)?;
    let keys = Arc::new(
        KeyState::load(
            config.agency_code.clone(),
            &config.keys.dir,
            &config.keys.master_key_file,
        )
        .map_err(err)?,
    );
    keys.set_peer(PeerKeys::load(&config.platform.peer_keys).map_err(err)?);
    crate::records::install(store.as_ref()).map_err(err)?;
    let registry = Registry::new(store.clone(), keys.clone()).map_err(err)?;
    let client = HttpsClient::new(
        &config.tls.ca,
        &config.platform.client_cert,
        &config.platform.client_key,
        uplink::timeout(config.platform.request_timeout_ms),
    )
    .map_err(err)?;
    let uplink = Uplink::new(
        client,
        &config.platform.url,
        keys.clone(),
        config.platform.agency_code.clone(),
    );
    Ok(Arc::new(Gateway {
        config,
        store,
        registry,
        keys,
        uplink,
        wake: Arc::new(Notify::new()),
        master: Default::default(),
    }))
}

/// Starts the gateway: API listener and dispatcher. Writes the bound address to
/// `<data_dir>/gateway.addr`.
pub async fn start_gateway(gw: Arc<Gateway>) -> Result<Running, String> {
    let listener = TcpListener::bind(gw.config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", gw.config.listen))?;
    let addr = listener.local_addr().map_err(err)?;
    let tls_cfg = tls::server_config(&gw.config.tls.ca, &gw.config.tls.cert, &gw.config.tls.key)
        .map_err(err)?;
    crate::fsutil::write_public(
        &gw.config.data_dir.join("gateway.addr"),
        addr.to_string().as_bytes(),
    )
    .map_err(err)?;
    let (tx, rx) = watch::channel(false);
    let app = crate::api::app(gw.clone());
    let serve = tokio::spawn(tls::serve(
        listener,
        tls_cfg,
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
    let dispatcher = Dispatcher::new(gw.clone());
    let checkpoints = tokio::spawn(crate::records::checkpointer(
        gw.store.clone(),
        gw.keys.clone(),
        rx.clone(),
    ));
    let rekey = tokio::spawn(crate::rekey::reencrypt_job(gw.clone(), rx.clone()));
    let master = tokio::spawn(crate::master::refresher(
        gw.clone(),
        gw.master.clone(),
        rx.clone(),
    ));
    let sweep = tokio::spawn(crate::records::sweeper(
        gw.store.clone(),
        renkei_records::DEFAULT_RETENTION_YEARS,
        rx.clone(),
    ));
    let dispatch = tokio::spawn(dispatcher.run(rx));
    tracing::info!(message = "Gateway listening.", %addr);
    Ok(Running {
        addr,
        shutdown: tx,
        tasks: vec![serve, dispatch, checkpoints, rekey, sweep, master],
    })
}

/// Starts the simulator.
pub async fn start_sim(
    config: SimConfig,
    capture: Option<PathBuf>,
) -> Result<(Running, Arc<Sim>), String> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(err)?;
    let tls_cfg =
        tls::server_config(&config.tls.ca, &config.tls.cert, &config.tls.key).map_err(err)?;
    std::fs::create_dir_all(&config.data_dir).map_err(err)?;
    crate::fsutil::write_public(
        &config.data_dir.join("sim.addr"),
        addr.to_string().as_bytes(),
    )
    .map_err(err)?;
    let sim = Sim::new(config, capture)?;
    let (tx, rx) = watch::channel(false);
    let s = sim.clone();
    let serve = tokio::spawn(tls::serve(
        listener,
        tls_cfg,
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
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
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
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

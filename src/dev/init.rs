//! `renkei init`: makes a ready deployment folder — configs for the gateway and the
//! simulator, a development city CA (the gateway's server certificate, the clients') and a
//! separate development platform CA (the simulator's server certificate, the gateway's client
//! certificate toward it, the simulator's admin), both sides' message keys (sealed under
//! their own master keys), and each side's copy of the other's public keys.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use renkei_crypto::keyring::{Keyring, MasterKey};
use renkei_ids::{AgencyCode, IndividualNumber};

use crate::config::{
    ClientConfig, GatewayConfig, KeysConfig, LogFormat, Permission, PlatformConfig, Role,
    SimConfig, SimMode, SimPeer, TlsConfig,
};
use crate::fsutil::write_public;
use crate::keyring::{KeyState, PeerKeys};
use crate::keys::pki::{DevCa, CRL_FILE, PLATFORM_CA};
use crate::sim::data::ProviderData;

/// The city's agency code in a development deployment (札幌市, fictitious suffix).
pub const DEV_CITY_AGENCY: &str = "0110020000000001";
/// The platform's agency code in a development deployment.
pub const DEV_PLATFORM_AGENCY: &str = "9900000000000001";
/// The provider whose data the simulator answers with (a tax office, fictitious).
pub const DEV_PROVIDER_AGENCY: &str = "0110020000000099";
/// 事務コード of the child medical subsidy (子ども医療費助成).
pub const AFFAIR_CHILD_MEDICAL: &str = "JM01000000121000";
/// 事務コード of the second business system's affair (national health insurance, 国民健康保険),
/// as the development permission table (`schemas/permissions/kokuho.toml`) names it.
pub const AFFAIR_NHI: &str = "JM01000000030000";
/// 事務コード of the local-tax affair (地方税の賦課徴収), whose permission-table rows
/// (`schemas/permissions/local-tax.toml`) let a business system provide copies (副本).
pub const AFFAIR_LOCAL_TAX: &str = "JM01000000020000";
/// Local-tax information under the income screening procedure.
pub const PROC_LOCAL_TAX: &str = "JT01010000000214";
pub const ITEM_LOCAL_TAX: &str = "TM00000000000002";
/// Local-tax information under a procedure whose answers a person gives (手動提供): the
/// permission table's `manual = true` provision row, and the simulator's manual pair.
pub const PROC_MANUAL_LOCAL_TAX: &str = "JT01010000000215";
/// Public-fund receipt account.
pub const PROC_PUBLIC_FUND: &str = "JT01010000000001";
pub const ITEM_PUBLIC_FUND: &str = "TM00000000000089";
/// The subsidy system's client name.
pub const CLIENT_SUBSIDY: &str = "kodomo-iryo";
/// A second business system (national health insurance), for isolation.
pub const CLIENT_SECOND: &str = "kokuho";
/// The resident-record feed (住基): the only client that imports and changes persons.
pub const CLIENT_FEED: &str = "jukiban";
/// The simulator's admin client.
pub const CLIENT_SIM_ADMIN: &str = "sim-admin";
/// The administrator's client (staff users, client certificates, configuration reload).
pub const CLIENT_ADMIN: &str = "admin";
/// The staff clients `renkei init` makes, each with one staff user of the same name.
pub const STAFF_CLIENTS: [(&str, Role); 5] = [
    ("security-officer", Role::Security),
    ("security-officer-2", Role::Security),
    ("auditor", Role::Auditor),
    ("operator", Role::Operator),
    (CLIENT_ADMIN, Role::Admin),
];
/// A staff user's first-login secrets, under the deployment folder.
pub fn first_login_file(dir: &Path, user: &str) -> PathBuf {
    dir.join("staff").join(user).join("first-login.json")
}
/// The certificate the gateway presents to the platform.
pub const CLIENT_GATEWAY: &str = "renkei-gateway";

/// Options of `renkei init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub dir: PathBuf,
    pub listen: SocketAddr,
    pub sim_listen: SocketAddr,
}

/// Seeded data of one item: (item code, condition key, fields).
pub type SeedItem = (&'static str, String, Vec<(String, String)>);

/// A seeded resident of the simulator's provider data (for the demo and tests).
pub struct SeedResident {
    pub individual_number: IndividualNumber,
    /// (item, condition key, fields)
    pub data: Vec<SeedItem>,
}

/// Why `renkei init` could not make a deployment.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0} already holds a deployment (renkei.toml); choose another --dir")]
    Exists(PathBuf),
    #[error("the new store stayed locked")]
    StoreStillLocked,
    #[error("creating the staff users failed")]
    StaffUsers,
    /// A step failed: files, certificates, keys, configuration or the store.
    #[error(transparent)]
    Failed(Box<dyn std::error::Error + Send + Sync>),
}

fn err(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> InitError {
    InitError::Failed(e.into())
}

fn agency(s: &str) -> Result<AgencyCode, InitError> {
    AgencyCode::parse(s).map_err(err)
}

fn write_toml<T: serde::Serialize>(path: &Path, v: &T, header: &str) -> Result<(), InitError> {
    let text = toml::to_string_pretty(v).map_err(err)?;
    write_public(path, format!("{header}\n{text}").as_bytes()).map_err(err)
}

fn make_keys(dir: &Path, agency: AgencyCode) -> Result<KeyState, InitError> {
    let master_file = dir.join("master.key");
    let master = MasterKey::generate_file(&master_file).map_err(err)?;
    let keyring = Keyring::generate().map_err(err)?;
    keyring.save(&dir.join("keys"), &master).map_err(err)?;
    KeyState::load(agency, &dir.join("keys"), &master_file).map_err(err)
}

/// Makes the deployment folder. Refuses to overwrite an existing one.
pub fn init(opts: &InitOptions, seeds: &[SeedResident]) -> Result<(), InitError> {
    let d = &opts.dir;
    if d.join("renkei.toml").exists() {
        return Err(InitError::Exists(d.to_path_buf()));
    }
    for sub in ["gateway", "sim", "clients"] {
        std::fs::create_dir_all(d.join(sub)).map_err(err)?;
    }
    let ca = DevCa::create(d).map_err(err)?;
    // An empty revocation list, configured as tls.crl: `renkei clients revoke` adds to it.
    ca.revoke(&d.join(CRL_FILE), &[]).map_err(err)?;
    ca.issue_server(
        &d.join("gateway"),
        "renkei gateway",
        "server.pem",
        "server-key.pem",
    )
    .map_err(err)?;
    // The platform side has its own CA: the gateway trusts only it for the platform.
    let platform_ca =
        DevCa::create_named(d, PLATFORM_CA, "renkei development platform CA").map_err(err)?;
    platform_ca
        .issue_server(
            &d.join("sim"),
            "platform simulator",
            "server.pem",
            "server-key.pem",
        )
        .map_err(err)?;
    platform_ca
        .issue_client(
            &d.join("gateway"),
            CLIENT_GATEWAY,
            "platform-client.pem",
            "platform-client-key.pem",
        )
        .map_err(err)?;
    platform_ca
        .issue_client(
            &d.join("clients").join(CLIENT_SIM_ADMIN),
            CLIENT_SIM_ADMIN,
            "cert.pem",
            "key.pem",
        )
        .map_err(err)?;
    let clients = [CLIENT_SUBSIDY, CLIENT_SECOND, CLIENT_FEED]
        .into_iter()
        .chain(STAFF_CLIENTS.iter().map(|(n, _)| *n));
    for name in clients {
        ca.issue_client(&d.join("clients").join(name), name, "cert.pem", "key.pem")
            .map_err(err)?;
    }

    let city = agency(DEV_CITY_AGENCY)?;
    let platform = agency(DEV_PLATFORM_AGENCY)?;
    let gw_keys = make_keys(&d.join("gateway"), city.clone())?;
    let gw_keys = make_staff_users(d, gw_keys)?;
    let sim_keys = make_keys(&d.join("sim"), platform.clone())?;
    gw_keys
        .own_public()
        .save(&d.join("sim/peers/gateway.json"))
        .map_err(err)?;
    sim_keys
        .own_public()
        .save(&d.join("gateway/peers/platform.json"))
        .map_err(err)?;

    // Seeded provider data, keyed by the simulator's own person index.
    let mut data = ProviderData::default();
    let ring = sim_keys.keyring();
    for r in seeds {
        let digits = zeroize::Zeroizing::new(r.individual_number.expose_digits());
        let idx = hex::encode(ring.blind_index().index(digits.as_bytes()));
        let person = data.persons.entry(idx).or_default();
        for (item, cond, fields) in &r.data {
            person
                .entry((*item).to_string())
                .or_default()
                .insert(cond.clone(), fields.clone());
        }
    }
    write_public(
        &d.join("sim/provider-data.json"),
        &serde_json::to_vec_pretty(&data).map_err(err)?,
    )
    .map_err(err)?;

    let perm = |p: &str, i: &str| -> Result<Permission, InitError> {
        Ok(Permission {
            procedure: p.parse().map_err(err)?,
            item: i.parse().map_err(err)?,
            manual: false,
        })
    };
    let client = |name: &str, role: Role, affairs: &[&str]| -> Result<ClientConfig, InitError> {
        Ok(ClientConfig {
            name: name.parse().map_err(err)?,
            role,
            affairs: affairs
                .iter()
                .map(|a| a.parse().map_err(err))
                .collect::<Result<_, _>>()?,
            affair_code: None,
            permissions: None,
            provides: None,
            limits: Default::default(),
            pin: None,
        })
    };
    let staff = |name: &str, role: Role| client(name, role, &[]);
    let gw = GatewayConfig {
        listen: opts.listen,
        data_dir: "gateway/data".into(),
        agency_code: city.clone(),
        log_format: LogFormat::Text,
        durability: Default::default(),
        schemas_dir: None,
        max_body_bytes: crate::config::DEFAULT_MAX_BODY_BYTES,
        max_batch_bytes: crate::config::DEFAULT_MAX_BATCH_BYTES,
        server: Default::default(),
        limits: Default::default(),
        store: Default::default(),
        staff: Default::default(),
        // Ephemeral API port, ephemeral ops port (tests run many deployments at once).
        ops: crate::config::OpsConfig {
            listen: if opts.listen.port() == 0 {
                SocketAddr::from(([127, 0, 0, 1], 0))
            } else {
                crate::config::OpsConfig::default().listen
            },
            allow_remote: false,
        },
        tls: TlsConfig {
            ca: "ca.pem".into(),
            cert: "gateway/server.pem".into(),
            key: "gateway/server-key.pem".into(),
            crl: vec![CRL_FILE.into()],
        },
        keys: KeysConfig {
            dir: "gateway/keys".into(),
            master_key_file: "gateway/master.key".into(),
            two_person_rule: false,
        },
        platform: PlatformConfig {
            url: format!("https://{}", opts.sim_listen),
            agency_code: platform.clone(),
            ca: "platform-ca.pem".into(),
            client_cert: "gateway/platform-client.pem".into(),
            client_key: "gateway/platform-client-key.pem".into(),
            peer_keys: "gateway/peers/platform.json".into(),
            operating_hours: "00:00-24:00".into(),
            max_in_flight: crate::config::DEFAULT_MAX_IN_FLIGHT,
            request_timeout_ms: crate::config::DEFAULT_REQUEST_TIMEOUT_MS,
            inquiry_deadline_secs: crate::config::DEFAULT_INQUIRY_DEADLINE_SECS,
            backoff_base_ms: crate::config::DEFAULT_BACKOFF_BASE_MS,
            backoff_max_ms: crate::config::DEFAULT_BACKOFF_MAX_MS,
            poll_interval_ms: crate::config::DEFAULT_POLL_INTERVAL_MS,
            master_refresh_secs: crate::config::DEFAULT_MASTER_REFRESH_SECS,
            master_key_overlap_secs: crate::config::DEFAULT_MASTER_KEY_OVERLAP_SECS,
            provision_fetch_ms: crate::config::DEFAULT_PROVISION_FETCH_MS,
            alive_interval_secs: crate::config::DEFAULT_ALIVE_INTERVAL_SECS,
        },
        clients: vec![
            // The first business system also stands in for the tax system that provides copies
            // (副本) of local-tax information (the local-tax affair's provision rows); its own
            // affair's table provides the public-fund account.
            client(
                CLIENT_SUBSIDY,
                Role::Business,
                &[AFFAIR_CHILD_MEDICAL, AFFAIR_LOCAL_TAX],
            )?,
            client(CLIENT_SECOND, Role::Business, &[AFFAIR_NHI])?,
            staff(CLIENT_FEED, Role::ResidentFeed)?,
        ]
        .into_iter()
        .chain(
            STAFF_CLIENTS
                .iter()
                .map(|(n, r)| staff(n, *r))
                .collect::<Result<Vec<_>, _>>()?,
        )
        .collect(),
    };
    write_toml(
        &d.join("renkei.toml"),
        &gw,
        "# renkei gateway configuration (made by `renkei init`). Paths are relative to this file.",
    )?;
    let sim = SimConfig {
        listen: opts.sim_listen,
        data_dir: "sim/data".into(),
        agency_code: platform,
        provider_agency_code: agency(DEV_PROVIDER_AGENCY)?,
        log_format: LogFormat::Text,
        tls: TlsConfig {
            ca: "platform-ca.pem".into(),
            cert: "sim/server.pem".into(),
            key: "sim/server-key.pem".into(),
            crl: Vec::new(),
        },
        keys: KeysConfig {
            dir: "sim/keys".into(),
            master_key_file: "sim/master.key".into(),
            two_person_rule: false,
        },
        peers: vec![SimPeer {
            agency_code: city,
            client_name: CLIENT_GATEWAY.parse().map_err(err)?,
            keys: "sim/peers/gateway.json".into(),
        }],
        admin_client: CLIENT_SIM_ADMIN.parse().map_err(err)?,
        operating_hours: "00:00-24:00".into(),
        mode: SimMode::Open,
        slow_ms: 0,
        result_delay_ms: 50,
        permissions: vec![
            perm(PROC_LOCAL_TAX, ITEM_LOCAL_TAX)?,
            perm(PROC_PUBLIC_FUND, ITEM_PUBLIC_FUND)?,
            Permission {
                manual: true,
                ..perm(PROC_MANUAL_LOCAL_TAX, ITEM_LOCAL_TAX)?
            },
        ],
        manual_deadline_secs: crate::config::DEFAULT_MANUAL_DEADLINE_SECS,
        provider_data: "sim/provider-data.json".into(),
    };
    write_toml(
        &d.join("sim.toml"),
        &sim,
        "# National platform simulator configuration (made by `renkei init`).",
    )?;
    Ok(())
}

/// Creates one staff user per staff client straight in the gateway's store (the gateway is
/// not running yet) and writes each one's first-login secrets to
/// `staff/NAME/first-login.json` (0600). Runs on a thread of its own, with its own runtime,
/// so that it works whether or not the caller is inside one.
fn make_staff_users(d: &Path, keys: KeyState) -> Result<KeyState, InitError> {
    let d = d.to_path_buf();
    std::thread::spawn(move || -> Result<KeyState, InitError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(err)?;
        let store_dir = d.join("gateway/data/store");
        let keys = std::sync::Arc::new(keys);
        rt.block_on(async {
            let store: std::sync::Arc<dyn renkei_store::Store> =
                renkei_store::sled_store::SledStore::open(&store_dir, Default::default())
                    .map_err(err)?;
            let staff = crate::staff::Staff::new(
                store,
                keys.clone(),
                Default::default(),
                std::sync::Arc::new(crate::staff::SystemClock),
            );
            for (name, _) in STAFF_CLIENTS {
                let first = staff.create_initial(name, name).await.map_err(err)?;
                let file = first_login_file(&d, name);
                if let Some(parent) = file.parent() {
                    use std::os::unix::fs::DirBuilderExt;
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(parent)
                        .map_err(err)?;
                }
                let text = zeroize::Zeroizing::new(
                    serde_json::to_vec_pretty(&first.to_json()).map_err(err)?,
                );
                crate::fsutil::write_private(&file, &text).map_err(err)?;
            }
            Ok::<_, InitError>(())
        })?;
        wait_store_released(&store_dir)?;
        std::sync::Arc::try_unwrap(keys).map_err(|_| InitError::StaffUsers)
    })
    .join()
    .map_err(|_| InitError::StaffUsers)?
}

/// Waits until the store's writer thread has let go of the store's lock (so that a gateway
/// started right after, in this process or another, can open it).
fn wait_store_released(store_dir: &Path) -> Result<(), InitError> {
    use rustix::fs::{flock, FlockOperation};
    let db = store_dir.join("db");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let f = std::fs::File::open(&db).map_err(err)?;
        if flock(&f, FlockOperation::NonBlockingLockExclusive).is_ok() {
            let _ = flock(&f, FlockOperation::Unlock);
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(InitError::StoreStillLocked);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Loads a peer's keys into a key state (used by serve).
pub fn load_peer(keys: &KeyState, path: &Path) -> Result<(), InitError> {
    keys.set_peer(PeerKeys::load(path).map_err(err)?);
    Ok(())
}

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
/// Local-tax information under the income screening procedure.
pub const PROC_LOCAL_TAX: &str = "JT01010000000214";
pub const ITEM_LOCAL_TAX: &str = "TM00000000000002";
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

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn agency(s: &str) -> Result<AgencyCode, String> {
    AgencyCode::parse(s).map_err(err)
}

fn write_toml<T: serde::Serialize>(path: &Path, v: &T, header: &str) -> Result<(), String> {
    let text = toml::to_string_pretty(v).map_err(err)?;
    write_public(path, format!("{header}\n{text}").as_bytes()).map_err(err)
}

fn make_keys(dir: &Path, agency: AgencyCode) -> Result<KeyState, String> {
    let master_file = dir.join("master.key");
    let master = MasterKey::generate_file(&master_file).map_err(err)?;
    let keyring = Keyring::generate().map_err(err)?;
    keyring.save(&dir.join("keys"), &master).map_err(err)?;
    KeyState::load(agency, &dir.join("keys"), &master_file).map_err(err)
}

/// Makes the deployment folder. Refuses to overwrite an existing one.
pub fn init(opts: &InitOptions, seeds: &[SeedResident]) -> Result<(), String> {
    let d = &opts.dir;
    if d.join("renkei.toml").exists() {
        return Err(format!(
            "{} already holds a deployment (renkei.toml); choose another --dir",
            d.display()
        ));
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
    let clients = [
        CLIENT_SUBSIDY,
        CLIENT_SECOND,
        CLIENT_FEED,
        "security-officer",
        "security-officer-2",
        "auditor",
        "operator",
    ];
    for name in clients {
        ca.issue_client(&d.join("clients").join(name), name, "cert.pem", "key.pem")
            .map_err(err)?;
    }

    let city = agency(DEV_CITY_AGENCY)?;
    let platform = agency(DEV_PLATFORM_AGENCY)?;
    let gw_keys = make_keys(&d.join("gateway"), city.clone())?;
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

    let perm = |p: &str, i: &str| -> Result<Permission, String> {
        Ok(Permission {
            procedure: p.parse().map_err(err)?,
            item: i.parse().map_err(err)?,
        })
    };
    let business = |name: &str, perms: Vec<Permission>| -> Result<ClientConfig, String> {
        // The first business system also keeps copies (副本) of both items to provide.
        let provides = if name == CLIENT_SUBSIDY {
            vec![
                ITEM_LOCAL_TAX.parse().map_err(err)?,
                ITEM_PUBLIC_FUND.parse().map_err(err)?,
            ]
        } else {
            Vec::new()
        };
        Ok(ClientConfig {
            name: name.parse().map_err(err)?,
            role: Role::Business,
            affair_code: Some(AFFAIR_CHILD_MEDICAL.parse().map_err(err)?),
            permissions: perms,
            provides,
            limits: Default::default(),
            pin: None,
        })
    };
    let staff = |name: &str, role: Role| -> Result<ClientConfig, String> {
        Ok(ClientConfig {
            name: name.parse().map_err(err)?,
            role,
            affair_code: None,
            permissions: Vec::new(),
            provides: Vec::new(),
            limits: Default::default(),
            pin: None,
        })
    };
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
        },
        clients: vec![
            business(
                CLIENT_SUBSIDY,
                vec![
                    perm(PROC_LOCAL_TAX, ITEM_LOCAL_TAX)?,
                    perm(PROC_PUBLIC_FUND, ITEM_PUBLIC_FUND)?,
                ],
            )?,
            business(CLIENT_SECOND, vec![perm(PROC_LOCAL_TAX, ITEM_LOCAL_TAX)?])?,
            staff(CLIENT_FEED, Role::ResidentFeed)?,
            staff("security-officer", Role::Security)?,
            staff("security-officer-2", Role::Security)?,
            staff("auditor", Role::Auditor)?,
            staff("operator", Role::Operator)?,
        ],
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
        ],
        provider_data: "sim/provider-data.json".into(),
    };
    write_toml(
        &d.join("sim.toml"),
        &sim,
        "# National platform simulator configuration (made by `renkei init`).",
    )?;
    Ok(())
}

/// Loads a peer's keys into a key state (used by serve).
pub fn load_peer(keys: &KeyState, path: &Path) -> Result<(), String> {
    keys.set_peer(PeerKeys::load(path).map_err(err)?);
    Ok(())
}

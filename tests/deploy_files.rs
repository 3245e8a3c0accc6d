//! The files in `deploy/`: the systemd unit's hardening (rated by `systemd-analyze security`
//! when the tool is on the machine, and `systemd-analyze verify`), and the production example
//! config, which must parse as a gateway config.

use std::path::Path;
use std::process::Command;

const ANALYZE: &str = "/usr/bin/systemd-analyze";
/// The highest exposure the unit may have (0 = fully locked down, 10 = unprotected).
const MAX_EXPOSURE: f64 = 2.0;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The number in "→ Overall exposure level for renkei.service: 1.2 OK".
fn overall_exposure(report: &str) -> Option<f64> {
    let line = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))?;
    let after = line.rsplit_once(':')?.1.trim();
    after.split_whitespace().next()?.parse().ok()
}

#[test]
fn unit_exposure_is_low() {
    if !Path::new(ANALYZE).exists() {
        eprintln!("skipped: {ANALYZE} is not on this machine");
        return;
    }
    let unit = root().join("deploy/renkei.service");
    let out = Command::new(ANALYZE)
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&unit)
        .output()
        .expect("run systemd-analyze");
    let report = String::from_utf8_lossy(&out.stdout);
    let exposure = overall_exposure(&report)
        .unwrap_or_else(|| panic!("no overall exposure in the report:\n{report}"));
    assert!(
        exposure <= MAX_EXPOSURE,
        "exposure {exposure} above {MAX_EXPOSURE}:\n{report}"
    );
}

#[test]
fn unit_verifies() {
    if !Path::new(ANALYZE).exists() {
        eprintln!("skipped: {ANALYZE} is not on this machine");
        return;
    }
    // `verify` checks that ExecStart= exists: point it at the binary just built.
    let text = std::fs::read_to_string(root().join("deploy/renkei.service")).expect("unit");
    let text = text.replace("/usr/local/bin/renkei", env!("CARGO_BIN_EXE_renkei"));
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = dir.path().join("renkei.service");
    std::fs::write(&unit, text).expect("write unit");
    let out = Command::new(ANALYZE)
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("run systemd-analyze verify");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {stderr}");
    let unit_problems: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("renkei.service"))
        .collect();
    assert!(unit_problems.is_empty(), "{unit_problems:?}");
}

#[test]
fn unit_has_the_required_settings() {
    let text = std::fs::read_to_string(root().join("deploy/renkei.service")).expect("unit");
    for setting in [
        "User=renkei",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/renkei",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service",
        "MemoryDenyWriteExecute=yes",
        "RestrictAddressFamilies=",
        "ProtectHome=yes",
        "PrivateDevices=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "LockPersonality=yes",
        "RestrictNamespaces=yes",
        "UMask=0077",
        "Environment=RENKEI_LOG_FORMAT=json",
    ] {
        assert!(text.contains(setting), "renkei.service lacks {setting:?}");
    }
}

#[test]
fn production_example_parses_as_a_gateway_config() {
    let text = std::fs::read_to_string(root().join("deploy/renkei.toml")).expect("example");
    let cfg: renkei::config::GatewayConfig =
        toml::from_str(&text).unwrap_or_else(|e| panic!("deploy/renkei.toml: {e}"));
    assert_eq!(
        cfg.durability,
        renkei_store::sled_store::Durability::Fsync,
        "production runs with fsync"
    );
    assert!(cfg.ops.listen.ip().is_loopback());
    assert!(
        !cfg.tls.crl.is_empty(),
        "the example shows the city CA's CRL"
    );
    // The master key is kept apart from the data folder (and so from its backups).
    assert!(!cfg.keys.master_key_file.starts_with(&cfg.data_dir));
}

#[test]
fn exposure_parse() {
    assert_eq!(
        overall_exposure("→ Overall exposure level for renkei.service: 1.2 OK 🙂"),
        Some(1.2)
    );
    assert_eq!(overall_exposure("nothing"), None);
}

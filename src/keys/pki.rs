//! The development PKI made by `renkei init`: two CAs — the city's (`ca.pem`: the gateway's
//! server certificate and one client certificate per user, its common name the user's name)
//! and a stand-in for the platform's (`platform-ca.pem`: the simulator's server certificate
//! and the gateway's client certificate toward the platform) — so that nothing the city CA
//! signs can pass for the platform.
//!
//! A city replaces the first with its own CA, and the second is the platform's; the gateway
//! only needs both CA certificates and its own pairs.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::fsutil::{write_private, write_public};

/// Validity of development certificates: long enough for a pilot, short enough to remind
/// that they are not for production.
pub const DEFAULT_CERT_DAYS: i64 = 825;

/// PKI failures.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

/// File stem of the city's CA in a deployment folder (`ca.pem`, `ca-key.pem`).
pub const CITY_CA: &str = "ca";
/// File stem of the development stand-in for the platform's CA (`platform-ca.pem`, …).
pub const PLATFORM_CA: &str = "platform-ca";

/// A CA able to issue certificates.
pub struct DevCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn params(cn: &str, sans: Vec<String>) -> Result<CertificateParams, PkiError> {
    let mut p = CertificateParams::new(sans)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "renkei development");
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(DEFAULT_CERT_DAYS);
    p.serial_number = Some(random_serial()?);
    Ok(p)
}

/// A random positive 16-byte serial: unique per certificate even when a key is reused, so
/// revoking one certificate never revokes another.
fn random_serial() -> Result<rcgen::SerialNumber, PkiError> {
    let mut b = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .map_err(|_| PkiError::Generate(rcgen::Error::RingUnspecified))?;
    b[0] = (b[0] & 0x7f) | 0x40;
    Ok(rcgen::SerialNumber::from_slice(&b))
}

fn write_pair(
    dir: &Path,
    cert_name: &str,
    key_name: &str,
    cert: &rcgen::Certificate,
    key: &KeyPair,
) -> Result<(), PkiError> {
    let werr = |path: &Path| {
        let path = path.display().to_string();
        move |source| PkiError::Write { path, source }
    };
    let cp = dir.join(cert_name);
    write_public(&cp, cert.pem().as_bytes()).map_err(werr(&cp))?;
    let kp = dir.join(key_name);
    write_private(&kp, key.serialize_pem().as_bytes()).map_err(werr(&kp))?;
    Ok(())
}

/// What a client certificate holds: CN = `name`, no subjectAltName, the clientAuth extended
/// key usage, digitalSignature, a random serial and [`DEFAULT_CERT_DAYS`] of validity.
pub fn client_params(name: &str) -> Result<CertificateParams, PkiError> {
    let mut p = params(name, Vec::new())?;
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    Ok(p)
}

impl DevCa {
    /// Makes the city's development CA: writes `ca.pem` and `ca-key.pem` (0600) into `dir`.
    pub fn create(dir: &Path) -> Result<Self, PkiError> {
        Self::create_named(dir, CITY_CA, "renkei development CA")
    }

    /// Makes a CA named `stem`: writes `{stem}.pem` and `{stem}-key.pem` (0600) into `dir`.
    pub fn create_named(dir: &Path, stem: &str, cn: &str) -> Result<Self, PkiError> {
        let key = KeyPair::generate()?;
        let mut p = params(cn, Vec::new())?;
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = p.self_signed(&key)?;
        write_pair(
            dir,
            &format!("{stem}.pem"),
            &format!("{stem}-key.pem"),
            &cert,
            &key,
        )?;
        Ok(Self { cert, key })
    }

    /// Loads the city CA that [`DevCa::create`] wrote into `dir` (to issue more certificates).
    pub fn load(dir: &Path) -> Result<Self, PkiError> {
        Self::load_named(dir, CITY_CA)
    }

    /// Loads the CA that [`DevCa::create_named`] wrote into `dir` under `stem`.
    pub fn load_named(dir: &Path, stem: &str) -> Result<Self, PkiError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| PkiError::Read {
                path: path.display().to_string(),
                source,
            })
        };
        let key = KeyPair::from_pem(&read(&format!("{stem}-key.pem"))?)?;
        // The same name and key as the stored CA certificate, so what it signs chains to it.
        let cert = CertificateParams::from_ca_cert_pem(&read(&format!("{stem}.pem"))?)?
            .self_signed(&key)?;
        Ok(Self { cert, key })
    }

    /// Issues a server certificate for loopback names into `dir/{cert,key}`.
    pub fn issue_server(
        &self,
        dir: &Path,
        cn: &str,
        cert_name: &str,
        key_name: &str,
    ) -> Result<(), PkiError> {
        let mut p = params(
            cn,
            vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
        )?;
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        self.issue_with(dir, p, cert_name, key_name)
    }

    /// Issues a client certificate whose CN is `name` into `dir/{cert,key}`.
    pub fn issue_client(
        &self,
        dir: &Path,
        name: &str,
        cert_name: &str,
        key_name: &str,
    ) -> Result<(), PkiError> {
        self.issue_with(dir, client_params(name)?, cert_name, key_name)
    }

    /// Issues a certificate with `params` and a new key into `dir/{cert,key}` (tests use it
    /// to make certificates the gateway must refuse).
    pub fn issue_with(
        &self,
        dir: &Path,
        params: CertificateParams,
        cert_name: &str,
        key_name: &str,
    ) -> Result<(), PkiError> {
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        write_pair(dir, cert_name, key_name, &cert, &key)
    }
}

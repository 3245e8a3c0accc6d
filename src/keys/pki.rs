//! The development PKI made by `renkei init`: one CA, server certificates for the gateway and
//! the simulator, and one client certificate per user (its common name is the user's name).
//!
//! A city replaces this with its own CA; the gateway only needs `ca.pem` and its own pair.

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
    Ok(p)
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

impl DevCa {
    /// Makes a new CA and writes `ca.pem` and `ca-key.pem` (0600) into `dir`.
    pub fn create(dir: &Path) -> Result<Self, PkiError> {
        let key = KeyPair::generate()?;
        let mut p = params("renkei development CA", Vec::new())?;
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = p.self_signed(&key)?;
        write_pair(dir, "ca.pem", "ca-key.pem", &cert, &key)?;
        Ok(Self { cert, key })
    }

    /// Loads the CA that [`DevCa::create`] wrote into `dir` (to issue more certificates).
    pub fn load(dir: &Path) -> Result<Self, PkiError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| PkiError::Read {
                path: path.display().to_string(),
                source,
            })
        };
        let key = KeyPair::from_pem(&read("ca-key.pem")?)?;
        // The same name and key as the stored CA certificate, so what it signs chains to it.
        let cert = CertificateParams::from_ca_cert_pem(&read("ca.pem")?)?.self_signed(&key)?;
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
        let key = KeyPair::generate()?;
        let mut p = params(
            cn,
            vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
        )?;
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = p.signed_by(&key, &self.cert, &self.key)?;
        write_pair(dir, cert_name, key_name, &cert, &key)
    }

    /// Issues a client certificate whose CN is `name` into `dir/{cert,key}`.
    pub fn issue_client(
        &self,
        dir: &Path,
        name: &str,
        cert_name: &str,
        key_name: &str,
    ) -> Result<(), PkiError> {
        let key = KeyPair::generate()?;
        let mut p = params(name, Vec::new())?;
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = p.signed_by(&key, &self.cert, &self.key)?;
        write_pair(dir, cert_name, key_name, &cert, &key)
    }
}

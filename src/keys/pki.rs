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
    #[error("{path}: {detail}")]
    Parse { path: String, detail: String },
}

fn parse_err(path: &Path, detail: impl std::fmt::Display) -> PkiError {
    PkiError::Parse {
        path: path.display().to_string(),
        detail: detail.to_string(),
    }
}

/// The serial number (big-endian bytes) and the end of validity of a PEM certificate file.
pub fn certificate_facts(path: &Path) -> Result<(Vec<u8>, time::OffsetDateTime), PkiError> {
    let pem = std::fs::read(path).map_err(|source| PkiError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).map_err(|e| parse_err(path, e))?;
    let cert = pem.parse_x509().map_err(|e| parse_err(path, e))?;
    let not_after =
        time::OffsetDateTime::from_unix_timestamp(cert.validity().not_after.timestamp())
            .map_err(|e| parse_err(path, e))?;
    Ok((cert.raw_serial().to_vec(), not_after))
}

/// The serial numbers a PEM revocation list file names (empty when the file does not exist).
pub fn revoked_serials(path: &Path) -> Result<Vec<Vec<u8>>, PkiError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(PkiError::Read {
                path: path.display().to_string(),
                source,
            })
        }
    };
    let (_, pem) = x509_parser::pem::parse_x509_pem(&bytes).map_err(|e| parse_err(path, e))?;
    let (_, crl) = x509_parser::parse_x509_crl(&pem.contents).map_err(|e| parse_err(path, e))?;
    Ok(crl
        .iter_revoked_certificates()
        .map(|r| r.raw_serial().to_vec())
        .collect())
}

/// File stem of the city's CA in a deployment folder (`ca.pem`, `ca-key.pem`).
pub const CITY_CA: &str = "ca";
/// File stem of the development stand-in for the platform's CA (`platform-ca.pem`, …).
pub const PLATFORM_CA: &str = "platform-ca";

/// The deployment's revocation list of the city CA, configured as `tls.crl` by `renkei init`.
pub const CRL_FILE: &str = "crl.pem";
/// A development revocation list claims to be current for this long (the gateway does not
/// enforce it: the list in the file is the list in force).
const CRL_NEXT_UPDATE_DAYS: i64 = 30;

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

    /// Writes the revocation list at `path` anew, signed by this CA: the serials it already
    /// names plus `serials`, with a CRL number from the clock (so it only grows). Written
    /// atomically, so a gateway reloading it never reads half a file.
    pub fn revoke(&self, path: &Path, serials: &[Vec<u8>]) -> Result<(), PkiError> {
        let mut all = revoked_serials(path)?;
        for s in serials {
            if !all.contains(s) {
                all.push(s.clone());
            }
        }
        let now = time::OffsetDateTime::now_utc();
        let number = u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(u64::MAX);
        let crl = rcgen::CertificateRevocationListParams {
            this_update: now,
            next_update: now + time::Duration::days(CRL_NEXT_UPDATE_DAYS),
            crl_number: rcgen::SerialNumber::from_slice(&number.to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs: all
                .iter()
                .map(|s| rcgen::RevokedCertParams {
                    serial_number: rcgen::SerialNumber::from_slice(s),
                    revocation_time: now,
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        }
        .signed_by(&self.cert, &self.key)?;
        write_public(path, crl.pem()?.as_bytes()).map_err(|source| PkiError::Write {
            path: path.display().to_string(),
            source,
        })
    }

    /// Signs a certificate request (PEM) made on the client's own machine, so its key never
    /// leaves it. The request must be validly self-signed and name exactly `name` as its one
    /// common name; everything else it asks for (other names, usages, validity) is ignored:
    /// the certificate holds what [`client_params`] says. Writes `dir/cert.pem`.
    pub fn sign_request(&self, dir: &Path, csr_pem: &str, name: &str) -> Result<(), PkiError> {
        let bad = |d: &str| parse_err(Path::new("certificate request"), d);
        let (_, pem) =
            x509_parser::pem::parse_x509_pem(csr_pem.as_bytes()).map_err(|_| bad("not PEM"))?;
        let (_, req) = <x509_parser::certification_request::X509CertificationRequest as x509_parser::prelude::FromDer<_>>::from_der(&pem.contents)
            .map_err(|_| bad("not a certificate request"))?;
        let mut cns = req.certification_request_info.subject.iter_common_name();
        let cn = cns.next().and_then(|c| c.as_str().ok());
        if cn != Some(name) || cns.next().is_some() {
            return Err(bad(
                "the request must name the client as its one common name",
            ));
        }
        let mut csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem)?;
        csr.params = client_params(name)?;
        let cert = csr.signed_by(&self.cert, &self.key)?;
        let path = dir.join("cert.pem");
        write_public(&path, cert.pem().as_bytes()).map_err(|source| PkiError::Write {
            path: path.display().to_string(),
            source,
        })
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

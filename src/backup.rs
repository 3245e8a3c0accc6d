//! Backup and restore of one gateway: [`make`] takes a consistent copy while the gateway
//! serves (the store's dump between two durable commit groups, plus the files the gateway
//! runs on), described by a manifest signed with the gateway's checkpoint key; [`unpack`]
//! writes the copy into a folder; [`check`] and [`restore`] verify a backup folder against
//! its manifest offline and bring it back into an empty folder.
//!
//! What a backup holds, and why:
//! - the store as it is at rest (personal data stays sealed under the at-rest keys), as a dump
//!   taken under the writer's lock (`renkei_store::Store::export`): every group acknowledged
//!   before the backup is in it, none after;
//! - `renkei.toml` and every file it names that the gateway reads: the CA and CRLs it trusts,
//!   its server and platform-client certificates and their private keys, the platform's CA and
//!   message keys, the sealed keyring, `schemas_dir`, and the clients' public certificates
//!   beside the configuration (`clients/NAME/cert.pem`).
//! - NOT the master key (`keys.master_key_file`): whoever has a backup and the master key has
//!   every key, so the master key is kept apart (README, "Going to production") and named in the
//!   manifest's `left_out`; NOT any client's private key nor a CA's private key: a backup is a
//!   copy of the gateway, not of its clients or of the CA that issues them.
//!
//! The manifest lists every file with its size and SHA-256 and is signed (ECDSA P-256) over
//! [`SIGNING_CONTEXT`] followed by its exact bytes, with the checkpoint-signing key whose public
//! half auditors already hold offline (`renkei audit public-keys`); the context keeps the
//! signature from meaning anything as a checkpoint. Files outside the configuration's folder
//! keep their absolute path under `external/`.
//!
//! A PostgreSQL store is backed up with the database server's own tools (`pg_basebackup`,
//! `pg_dump`); [`make`] refuses it.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use base64::Engine as _;
use renkei_crypto::VerifyingKey;
use renkei_store::{Store, StoreError};
use serde::{Deserialize, Serialize};

use crate::config::{GatewayConfig, StoreBackend};
use crate::keyring::KeyState;

/// The manifest's `format`.
pub const FORMAT: &str = "renkei-backup-1";
/// The manifest, at the top of a backup folder.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The manifest's signature (base64 of a DER ECDSA signature), beside it.
pub const SIGNATURE_FILE: &str = "manifest.sig";
/// The store's dump, at the top of a backup folder.
pub const STORE_DUMP_FILE: &str = "store.dump";
/// Signed before the manifest's bytes: a manifest signature is never a valid checkpoint.
pub const SIGNING_CONTEXT: &[u8] = b"renkei backup manifest v1\n";
/// Where files from outside the configuration's folder go in a backup.
const EXTERNAL_DIR: &str = "external";
/// Bytes copied per read when hashing and copying files.
const COPY_BUFFER: usize = 256 * 1024;

/// Why a backup could not be made, checked or restored.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("a PostgreSQL store is backed up with pg_basebackup or pg_dump (see the README), not with renkei backup")]
    Postgres,
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("keys: {0}")]
    Keys(String),
    #[error("{MANIFEST_FILE}: {0}")]
    Manifest(String),
    #[error("{SIGNATURE_FILE}: the manifest's signature does not verify{0}")]
    Signature(&'static str),
    #[error("the backup does not match its manifest (nothing was written): {}", .0.join("; "))]
    Mismatch(Vec<String>),
    #[error("{0} is not empty: restore into a new or empty folder")]
    NotEmpty(String),
    #[error("the backup stream holds an entry that is not a plain file under the folder: {0}")]
    BadEntry(String),
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The description of a backup, signed by the gateway.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// When the store's copy was taken (RFC 3339, JST).
    pub made_at: String,
    /// The gateway's agency code.
    pub agency_code: String,
    /// The key that signed [`SIGNATURE_FILE`].
    pub signed_by: SignedBy,
    /// The store's dump.
    pub store: StorePart,
    /// Files the gateway uses that a backup leaves out on purpose (the master key).
    pub left_out: Vec<String>,
    /// Every file of the backup but the manifest and its signature, by path in the backup.
    pub files: Vec<FileEntry>,
}

/// The checkpoint-signing key version that signed a manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedBy {
    /// Always `checkpoint`.
    pub purpose: String,
    pub version: u32,
    pub fingerprint: String,
    /// SPKI PEM (integrity when no trusted key is given; compared with it when one is).
    pub public_key: String,
}

/// The store's part of a backup.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorePart {
    /// Always `sled`.
    pub backend: String,
    /// The dump's path in the backup ([`STORE_DUMP_FILE`]).
    pub dump: String,
    /// Where restore rebuilds the store, relative to the restored folder.
    pub restore_to: String,
    /// Entries in the dump (every tree).
    pub entries: u64,
}

/// One file of a backup.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Relative path in the backup (`/`-separated).
    pub path: String,
    pub size: u64,
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
}

/// A backup made by the gateway, ready to be streamed ([`write_tar`]).
pub struct Made {
    /// The manifest's exact bytes (what is signed).
    pub manifest: Vec<u8>,
    /// [`SIGNATURE_FILE`]'s content.
    pub signature: Vec<u8>,
    /// The deployment files, by path in the backup, as read once.
    pub files: Vec<(String, Vec<u8>)>,
    /// The store's dump: an unlinked temporary file under the data folder, at its start.
    pub dump: File,
    pub dump_len: u64,
    /// Entries in the dump.
    pub entries: u64,
}

/// SHA-256 and length of what passes through.
struct Digest {
    ctx: ring::digest::Context,
    len: u64,
}

impl Digest {
    fn new() -> Self {
        Self {
            ctx: ring::digest::Context::new(&ring::digest::SHA256),
            len: 0,
        }
    }
    fn update(&mut self, b: &[u8]) {
        self.ctx.update(b);
        self.len += b.len() as u64;
    }
    fn finish(self) -> (u64, String) {
        (self.len, hex::encode(self.ctx.finish().as_ref()))
    }
}

/// A writer that hashes what it passes on.
struct HashingWriter<W> {
    inner: W,
    digest: Digest,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digest.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes what it passes on.
struct HashingReader<R> {
    inner: R,
    digest: Digest,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digest.update(&buf[..n]);
        Ok(n)
    }
}

/// `path`'s name in a backup: relative to `base` (the configuration's folder), or under
/// `external/` with its absolute path.
fn backup_name(base: &Path, path: &Path) -> Result<String, BackupError> {
    let (root, rest) = match path.strip_prefix(base) {
        Ok(rel) => (None, rel),
        Err(_) => (Some(EXTERNAL_DIR), path.strip_prefix("/").unwrap_or(path)),
    };
    let mut parts: Vec<&str> = root.into_iter().collect();
    for c in rest.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str().ok_or_else(|| {
                BackupError::BadEntry(format!("{} is not UTF-8", path.display()))
            })?),
            _ => {
                return Err(BackupError::BadEntry(format!(
                    "{} is not a plain path",
                    path.display()
                )))
            }
        }
    }
    Ok(parts.join("/"))
}

/// Every file under `dir`, recursively, in name order.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), BackupError> {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(io_at(dir))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io_at(dir))?;
    entries.sort();
    for p in entries {
        let meta = fs::metadata(&p).map_err(io_at(&p))?;
        if meta.is_dir() {
            files_under(&p, out)?;
        } else if meta.is_file() {
            out.push(p);
        }
    }
    Ok(())
}

/// The files of a deployment that a backup holds (see the module doc), by absolute path.
fn deployment_files(
    config_path: &Path,
    config: &GatewayConfig,
) -> Result<Vec<PathBuf>, BackupError> {
    let mut paths = vec![config_path.to_path_buf()];
    paths.extend([
        config.tls.ca.clone(),
        config.tls.cert.clone(),
        config.tls.key.clone(),
        config.platform.ca.clone(),
        config.platform.client_cert.clone(),
        config.platform.client_key.clone(),
        config.platform.peer_keys.clone(),
    ]);
    paths.extend(config.tls.crl.iter().cloned());
    files_under(&config.keys.dir, &mut paths)?;
    if let Some(dir) = &config.schemas_dir {
        files_under(dir, &mut paths)?;
    }
    // The clients' public certificates beside the configuration (readiness reads their
    // expiry); never their keys.
    if let Some(clients) = config_path.parent().map(|d| d.join("clients")) {
        if let Ok(rd) = fs::read_dir(&clients) {
            let mut certs: Vec<PathBuf> = rd
                .flatten()
                .map(|e| e.path().join("cert.pem"))
                .filter(|p| p.is_file())
                .collect();
            certs.sort();
            paths.extend(certs);
        }
    }
    let master = fs::canonicalize(&config.keys.master_key_file).ok();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for p in paths {
        let canon = fs::canonicalize(&p).map_err(io_at(&p))?;
        if Some(&canon) == master.as_ref() || !seen.insert(canon.clone()) {
            continue;
        }
        out.push(canon);
    }
    Ok(out)
}

/// Takes a backup of the running gateway: the store's dump (into an unlinked temporary file
/// under the data folder, so commits pause only for the copy itself), then every deployment
/// file read once and hashed, and the signed manifest. Blocking: call it off the runtime.
pub fn make(
    config_path: &Path,
    config: &GatewayConfig,
    store: &dyn Store,
    keys: &KeyState,
) -> Result<Made, BackupError> {
    if config.store.backend == StoreBackend::Postgres {
        return Err(BackupError::Postgres);
    }
    let config_path = fs::canonicalize(config_path).map_err(io_at(config_path))?;
    let base = config_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    let made_at = crate::util::rfc3339_jst(crate::util::now_ms());
    let mut dump = tempfile::tempfile_in(&config.data_dir).map_err(io_at(&config.data_dir))?;
    let (report, (dump_len, dump_sha)) = {
        let mut w = HashingWriter {
            inner: io::BufWriter::new(&mut dump),
            digest: Digest::new(),
        };
        let report = store.export(&mut w)?;
        w.flush().map_err(io_at(&config.data_dir))?;
        (report, w.digest.finish())
    };
    dump.rewind().map_err(io_at(&config.data_dir))?;

    let mut entries = Vec::new();
    let mut files = Vec::new();
    for p in deployment_files(&config_path, config)? {
        let bytes = fs::read(&p).map_err(io_at(&p))?;
        let name = backup_name(&base, &p)?;
        entries.push(FileEntry {
            path: name.clone(),
            size: bytes.len() as u64,
            sha256: crate::util::sha256_hex(&bytes),
        });
        files.push((name, bytes));
    }
    entries.push(FileEntry {
        path: STORE_DUMP_FILE.into(),
        size: dump_len,
        sha256: dump_sha,
    });
    let store_dir = config.data_dir.join("store");
    let store_dir = fs::canonicalize(&store_dir).unwrap_or(store_dir);
    let master = fs::canonicalize(&config.keys.master_key_file)
        .unwrap_or_else(|_| config.keys.master_key_file.clone());

    let ring = keys.keyring();
    let (version, key) = ring
        .checkpoint_signing()
        .map_err(|e| BackupError::Keys(e.to_string()))?;
    let public = key.verifying_key();
    let manifest = Manifest {
        format: FORMAT.into(),
        made_at,
        agency_code: config.agency_code.to_string(),
        signed_by: SignedBy {
            purpose: "checkpoint".into(),
            version,
            fingerprint: public.fingerprint(),
            public_key: public.to_spki_pem(),
        },
        store: StorePart {
            backend: "sled".into(),
            dump: STORE_DUMP_FILE.into(),
            restore_to: backup_name(&base, &store_dir)?,
            entries: report.entries,
        },
        left_out: vec![backup_name(&base, &master)?],
        files: entries,
    };
    let mut manifest_bytes =
        serde_json::to_vec_pretty(&manifest).map_err(|e| BackupError::Manifest(e.to_string()))?;
    manifest_bytes.push(b'\n');
    let sig = key
        .sign(&signed_message(&manifest_bytes))
        .map_err(|e| BackupError::Keys(e.to_string()))?;
    let mut signature = base64::engine::general_purpose::STANDARD
        .encode(sig)
        .into_bytes();
    signature.push(b'\n');
    Ok(Made {
        manifest: manifest_bytes,
        signature,
        files,
        dump,
        dump_len,
        entries: report.entries,
    })
}

fn signed_message(manifest: &[u8]) -> Vec<u8> {
    [SIGNING_CONTEXT, manifest].concat()
}

/// A tar entry header for a private regular file of `size` bytes.
fn header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(size);
    h.set_mode(0o600);
    h.set_mtime(crate::util::now_ms() / 1000);
    h
}

/// Writes `made` as a tar stream: the manifest, its signature, the files, the store's dump.
pub fn write_tar(made: Made, out: impl Write) -> io::Result<()> {
    let mut b = tar::Builder::new(out);
    b.mode(tar::HeaderMode::Deterministic);
    b.append_data(
        &mut header(made.manifest.len() as u64),
        MANIFEST_FILE,
        &made.manifest[..],
    )?;
    b.append_data(
        &mut header(made.signature.len() as u64),
        SIGNATURE_FILE,
        &made.signature[..],
    )?;
    for (name, bytes) in &made.files {
        b.append_data(&mut header(bytes.len() as u64), name, &bytes[..])?;
    }
    let dump = io::BufReader::with_capacity(COPY_BUFFER, made.dump);
    b.append_data(&mut header(made.dump_len), STORE_DUMP_FILE, dump)?;
    b.into_inner()?.flush()
}

/// `name` as a path under a folder, if it is a plain relative path (no `..`, no root).
fn safe_relative(name: &str) -> Option<PathBuf> {
    let p = Path::new(name);
    let plain = !name.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    plain.then(|| p.to_path_buf())
}

/// Makes `dir` and its missing parents, 0700.
fn make_dirs(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// A new private file (refuses an existing one).
fn create_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Writes the tar stream `tar` (from the gateway) into the empty folder `to`: every entry a
/// plain file under it, 0600 in 0700 folders, each synced. Then checks the result against
/// its manifest ([`check`]) and syncs the folders.
pub fn unpack(tar: impl Read, to: &Path) -> Result<Manifest, BackupError> {
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().map_err(io_at(to))? {
        let mut entry = entry.map_err(io_at(to))?;
        let name = entry
            .path()
            .map_err(io_at(to))?
            .to_str()
            .map(str::to_string)
            .unwrap_or_default();
        let rel = safe_relative(&name)
            .filter(|_| entry.header().entry_type() == tar::EntryType::Regular)
            .ok_or_else(|| BackupError::BadEntry(crate::util::scrub(&name)))?;
        let path = to.join(rel);
        if let Some(parent) = path.parent() {
            make_dirs(parent).map_err(io_at(parent))?;
        }
        let mut f = create_private(&path).map_err(io_at(&path))?;
        io::copy(&mut entry, &mut f).map_err(io_at(&path))?;
        f.sync_all().map_err(io_at(&path))?;
    }
    let checked = check(to, None)?;
    sync_tree(to)?;
    Ok(checked.manifest)
}

/// What [`check`] found.
#[derive(Debug)]
pub struct Checked {
    pub manifest: Manifest,
    /// The signing key was one of the trusted keys given (not only the one the backup names).
    pub key_trusted: bool,
}

/// Every file under `dir` by relative `/`-separated name.
fn relative_files(dir: &Path) -> Result<BTreeSet<String>, BackupError> {
    let mut all = Vec::new();
    files_under(dir, &mut all)?;
    all.iter()
        .map(|p| {
            let rel = p.strip_prefix(dir).unwrap_or(p);
            backup_name(Path::new(""), rel)
        })
        .collect()
}

/// SHA-256 and size of a file, streamed.
fn digest_file(path: &Path) -> io::Result<(u64, String)> {
    let mut r = HashingReader {
        inner: File::open(path)?,
        digest: Digest::new(),
    };
    io::copy(&mut r, &mut io::sink())?;
    Ok(r.digest.finish())
}

/// Checks the backup folder `from` offline: the manifest's signature (with `trusted`, the
/// gateway's checkpoint public keys as `renkei audit public-keys` prints them, the signing
/// key must be among them), and that the folder holds exactly the manifest's files with
/// their sizes and SHA-256. Every changed, missing or extra file is named.
pub fn check(from: &Path, trusted: Option<&[u8]>) -> Result<Checked, BackupError> {
    let mpath = from.join(MANIFEST_FILE);
    let bytes = fs::read(&mpath).map_err(io_at(&mpath))?;
    let spath = from.join(SIGNATURE_FILE);
    let sig_text = fs::read_to_string(&spath).map_err(io_at(&spath))?;
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| BackupError::Manifest(format!("not a backup manifest: {e}")))?;
    if manifest.format != FORMAT {
        return Err(BackupError::Manifest(format!(
            "format {:?} is not {FORMAT}",
            crate::util::scrub(&manifest.format)
        )));
    }
    let key = VerifyingKey::from_spki_pem(&manifest.signed_by.public_key)
        .map_err(|_| BackupError::Signature(": the signing key it names is not a P-256 key"))?;
    let key_trusted = match trusted {
        None => false,
        Some(pem) => {
            let set = renkei_records::KeySet::parse(pem)
                .map_err(|_| BackupError::Signature(": the trusted key file cannot be read"))?;
            if set.get(manifest.signed_by.version) != Some(&key.to_sec1()[..]) {
                return Err(BackupError::Signature(
                    ": it is not signed by one of the keys you trust (--public-key)",
                ));
            }
            true
        }
    };
    let sig = base64::engine::general_purpose::STANDARD
        .decode(sig_text.trim())
        .map_err(|_| BackupError::Signature(""))?;
    key.verify(&signed_message(&bytes), &sig)
        .map_err(|_| BackupError::Signature(""))?;

    let mut problems = Vec::new();
    let mut listed = BTreeSet::new();
    for f in &manifest.files {
        if safe_relative(&f.path).is_none()
            || [MANIFEST_FILE, SIGNATURE_FILE].contains(&f.path.as_str())
        {
            problems.push(format!(
                "{}: not a plain path in the folder",
                crate::util::scrub(&f.path)
            ));
            continue;
        }
        listed.insert(f.path.clone());
        match digest_file(&from.join(&f.path)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                problems.push(format!("{}: missing", f.path));
            }
            Err(e) => problems.push(format!("{}: cannot be read ({e})", f.path)),
            Ok((size, sha)) if size != f.size || sha != f.sha256 => {
                problems.push(format!(
                    "{}: changed (its SHA-256 is not the manifest's)",
                    f.path
                ));
            }
            Ok(_) => {}
        }
    }
    if !listed.contains(&manifest.store.dump) {
        problems.push(format!(
            "{}: the store's dump is not listed",
            manifest.store.dump
        ));
    }
    for name in relative_files(from)? {
        if name != MANIFEST_FILE && name != SIGNATURE_FILE && !listed.contains(&name) {
            problems.push(format!(
                "{}: not in the manifest",
                crate::util::scrub(&name)
            ));
        }
    }
    if !problems.is_empty() {
        return Err(BackupError::Mismatch(problems));
    }
    Ok(Checked {
        manifest,
        key_trusted,
    })
}

/// What [`restore`] brought back.
#[derive(Debug)]
pub struct Restored {
    pub files: usize,
    pub entries: u64,
    pub key_trusted: bool,
    /// Files to put back by hand (the master key, from its offline copy).
    pub left_out: Vec<String>,
}

/// Restores the backup folder `from` into `to` (missing or empty): checks it first
/// ([`check`]; on any problem nothing is written), copies every file 0600 into 0700 folders,
/// rebuilds the store from the dump at the manifest's `restore_to`, and syncs every file and
/// folder. If writing fails part-way, what was written is removed.
pub fn restore(from: &Path, to: &Path, trusted: Option<&[u8]>) -> Result<Restored, BackupError> {
    let existed = to.exists();
    if existed && fs::read_dir(to).map_err(io_at(to))?.next().is_some() {
        return Err(BackupError::NotEmpty(to.display().to_string()));
    }
    let checked = check(from, trusted)?;
    let m = &checked.manifest;
    let restore_to = safe_relative(&m.store.restore_to).ok_or_else(|| {
        BackupError::Manifest("store.restore_to is not a plain relative path".into())
    })?;
    make_dirs(to).map_err(io_at(to))?;
    let written = (|| -> Result<u64, BackupError> {
        let mut problems = Vec::new();
        for f in m.files.iter().filter(|f| f.path != m.store.dump) {
            let src = from.join(&f.path);
            let dst = to.join(&f.path);
            if let Some(parent) = dst.parent() {
                make_dirs(parent).map_err(io_at(parent))?;
            }
            let mut r = HashingReader {
                inner: File::open(&src).map_err(io_at(&src))?,
                digest: Digest::new(),
            };
            let mut out = create_private(&dst).map_err(io_at(&dst))?;
            io::copy(&mut r, &mut out).map_err(io_at(&dst))?;
            out.sync_all().map_err(io_at(&dst))?;
            if r.digest.finish() != (f.size, f.sha256.clone()) {
                problems.push(format!("{}: changed while it was restored", f.path));
            }
        }
        let dump = from.join(&m.store.dump);
        let mut r = HashingReader {
            inner: io::BufReader::with_capacity(
                COPY_BUFFER,
                File::open(&dump).map_err(io_at(&dump))?,
            ),
            digest: Digest::new(),
        };
        let store_dir = to.join(&restore_to);
        if let Some(parent) = store_dir.parent() {
            make_dirs(parent).map_err(io_at(parent))?;
        }
        let entries = renkei_store::sled_store::import(&store_dir, &mut r)?;
        let listed = m.files.iter().find(|f| f.path == m.store.dump);
        if listed.map(|f| (f.size, f.sha256.clone())) != Some(r.digest.finish()) {
            problems.push(format!("{}: changed while it was restored", m.store.dump));
        }
        if !problems.is_empty() {
            return Err(BackupError::Mismatch(problems));
        }
        private_tree(to)?;
        sync_tree(to)?;
        if let Some(parent) = to.parent().filter(|p| !p.as_os_str().is_empty()) {
            File::open(parent)
                .and_then(|d| d.sync_all())
                .map_err(io_at(parent))?;
        }
        Ok(entries)
    })();
    match written {
        Ok(entries) => Ok(Restored {
            files: m.files.len() - 1,
            entries,
            key_trusted: checked.key_trusted,
            left_out: m.left_out.clone(),
        }),
        Err(e) => {
            // Nothing half-written stays: the folder was empty or new.
            if existed {
                if let Ok(rd) = fs::read_dir(to) {
                    for entry in rd.flatten() {
                        let p = entry.path();
                        let _ = if p.is_dir() {
                            fs::remove_dir_all(&p)
                        } else {
                            fs::remove_file(&p)
                        };
                    }
                }
            } else {
                let _ = fs::remove_dir_all(to);
            }
            Err(e)
        }
    }
}

/// Sets every file under `dir` to 0600 and every folder (itself included) to 0700.
fn private_tree(dir: &Path) -> Result<(), BackupError> {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_at(dir))?;
    for e in fs::read_dir(dir).map_err(io_at(dir))? {
        let p = e.map_err(io_at(dir))?.path();
        if p.is_dir() {
            private_tree(&p)?;
        } else {
            fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).map_err(io_at(&p))?;
        }
    }
    Ok(())
}

/// `fsync`s `dir` and every folder under it (their entries).
fn sync_tree(dir: &Path) -> Result<(), BackupError> {
    for e in fs::read_dir(dir).map_err(io_at(dir))? {
        let p = e.map_err(io_at(dir))?.path();
        if p.is_dir() {
            sync_tree(&p)?;
        }
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_at(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_relative_to_the_configuration_or_under_external() {
        let base = Path::new("/srv/renkei");
        assert_eq!(
            backup_name(base, Path::new("/srv/renkei/gateway/keys/a.key")).unwrap(),
            "gateway/keys/a.key"
        );
        assert_eq!(
            backup_name(base, Path::new("/etc/renkei/city-ca.pem")).unwrap(),
            "external/etc/renkei/city-ca.pem"
        );
    }

    #[test]
    fn only_plain_relative_paths_are_accepted() {
        assert!(safe_relative("gateway/keys/a").is_some());
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "./a"] {
            assert!(safe_relative(bad).is_none(), "{bad}");
        }
    }
}

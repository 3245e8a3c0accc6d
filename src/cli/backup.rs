//! `renkei backup` and `renkei restore`: a consistent, signed copy of the running gateway
//! taken through the API as the `admin` client, and its offline check and restoration into
//! an empty folder (`crate::backup` does the work).

use std::path::{Path, PathBuf};

use super::staff_client::Conn;

/// The client certificate used when `--as` is not given.
const DEFAULT_AS: &str = "admin";
/// Where the stream is kept while it arrives, inside the backup folder (removed after).
const INCOMING: &str = ".incoming.tar";

/// Arguments of `renkei backup`.
#[derive(clap::Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub conn: Conn,
    /// The folder to write: a new or empty one.
    #[arg(long)]
    pub to: PathBuf,
}

/// Arguments of `renkei restore`.
#[derive(clap::Args)]
pub struct RestoreArgs {
    /// The backup folder (`renkei backup --to`).
    #[arg(long)]
    pub from: PathBuf,
    /// The folder to restore into: a new or empty one.
    #[arg(long)]
    pub dir: PathBuf,
    /// The gateway's checkpoint public keys (PEM, as `renkei audit public-keys` prints them),
    /// kept apart from the backup: the manifest must be signed by one of them. Without it the
    /// signature is checked with the key the backup names (integrity, not origin).
    #[arg(long)]
    pub public_key: Option<PathBuf>,
}

fn not_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
}

/// `renkei backup --dir D --to DIR`.
pub async fn backup(args: BackupArgs) -> Result<(), String> {
    let to = args.to;
    if not_empty(&to) {
        return Err(format!(
            "{} is not empty: back up into a new or empty folder",
            to.display()
        ));
    }
    let c = args.conn.client(Some(DEFAULT_AS))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .create(&to)
        .map_err(|e| format!("{}: {e}", to.display()))?;
    let incoming = to.join(INCOMING);
    let got = c.download("/v1/admin/backup", &incoming).await;
    let unpacked = match got {
        Ok(_) => {
            let (inc, dir) = (incoming.clone(), to.clone());
            tokio::task::spawn_blocking(move || -> Result<_, String> {
                let f = std::fs::File::open(&inc).map_err(|e| format!("{}: {e}", inc.display()))?;
                let _ = std::fs::remove_file(&inc);
                crate::backup::unpack(std::io::BufReader::new(f), &dir).map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| e.to_string())?
        }
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_file(&incoming);
    let manifest = match unpacked {
        Ok(m) => m,
        Err(e) => {
            // Nothing half-written stays: the folder was new or empty.
            if let Ok(rd) = std::fs::read_dir(&to) {
                for entry in rd.flatten() {
                    let p = entry.path();
                    let _ = if p.is_dir() {
                        std::fs::remove_dir_all(&p)
                    } else {
                        std::fs::remove_file(&p)
                    };
                }
            }
            return Err(format!("backup not taken: {e}"));
        }
    };
    let bytes: u64 = manifest.files.iter().map(|f| f.size).sum();
    println!(
        "Backed up {} files ({} bytes; the store's {} entries) into {}, signed by checkpoint key {} ({}).",
        manifest.files.len(),
        bytes,
        manifest.store.entries,
        to.display(),
        manifest.signed_by.version,
        manifest.signed_by.fingerprint
    );
    for f in &manifest.left_out {
        println!("Not in the backup: {f} — keep its offline copy apart from this one.");
    }
    Ok(())
}

/// `renkei restore --from DIR --dir D2`.
pub fn restore(args: RestoreArgs) -> Result<(), String> {
    let trusted = match &args.public_key {
        Some(p) => Some(std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?),
        None => None,
    };
    let done = crate::backup::restore(&args.from, &args.dir, trusted.as_deref())
        .map_err(|e| format!("not restored: {e}"))?;
    println!(
        "Restored {} files and the store ({} entries) into {}.",
        done.files,
        done.entries,
        args.dir.display()
    );
    if done.key_trusted {
        println!("The manifest is signed by one of the keys you trust.");
    } else {
        println!(
            "The manifest's signature was checked with the key the backup names; pass --public-key to check it against keys you trust."
        );
    }
    for f in &done.left_out {
        println!("Put back by hand (never in a backup): {f}, from its offline copy.");
    }
    Ok(())
}

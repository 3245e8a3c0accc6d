//! `renkei audit checkpoint` and `renkei audit verify --since`: an auditor saves today's
//! signed checkpoint, and later proves the log only grew since — both signatures checked
//! with the auditor's own copy of the checkpoint keys, never keys the gateway hands over
//! with the data — and, when it did not, names the first rewritten record.
//!
//! # Locating a rewrite
//! A failed consistency proof says only "not a prefix". To say where, the command fetches
//! the gateway's stored checkpoints and the current leaf hashes of the saved checkpoint's
//! range, keeps only the checkpoints that verify under the auditor's keys (the gateway
//! cannot forge those, only delete them), adds the saved one, and replays the leaves against
//! each signed root (`renkei_records::locate_rewrite`): the first rewritten record lies
//! between the last root the log still reproduces and the first it does not. It is named
//! exactly when two signed checkpoints one record apart bracket it, else as a range.

use std::path::Path;

use base64::Engine;
use hyper::Method;
use renkei_records::{Checkpoint, GrowthError, Hash, KeySet};

use super::staff_client::StaffClient;

fn read_keys(path: &Path) -> Result<KeySet, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    KeySet::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn hash(s: &serde_json::Value) -> Result<Hash, String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(s.as_str().unwrap_or_default())
        .map_err(|_| "the gateway sent a hash that is not base64".to_string())?;
    <[u8; 32]>::try_from(raw.as_slice())
        .map_err(|_| "the gateway sent a hash that is not 32 bytes".to_string())
}

async fn consistency(c: &StaffClient, from: u64) -> Result<(String, Vec<Hash>), String> {
    let v = c
        .json(
            Method::GET,
            &format!("/v1/audit/consistency?from={from}"),
            None,
        )
        .await?;
    let note = v["checkpoint"]
        .as_str()
        .ok_or("the gateway sent no checkpoint")?
        .to_string();
    let proof = v["proof"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(hash)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((note, proof))
}

/// `renkei audit checkpoint --out FILE`: saves today's signed checkpoint (C2SP signed note),
/// checked first with the auditor's keys when `--public-key` is given.
pub async fn save_checkpoint(
    c: &StaffClient,
    out: &Path,
    public_key: Option<&Path>,
) -> Result<(), String> {
    let (note, _) = consistency(c, 0).await?;
    let cp = match public_key {
        Some(path) => Checkpoint::from_signed_note(&note, &read_keys(path)?)
            .map_err(|e| format!("today's checkpoint does NOT verify with your keys: {e}"))?,
        None => Checkpoint::parse_signed_note(&note).map_err(|e| e.to_string())?,
    };
    std::fs::write(out, &note).map_err(|e| format!("{}: {e}", out.display()))?;
    println!(
        "Saved the checkpoint of {} records (key version {}) to {}.",
        cp.tree_size,
        cp.key_version,
        out.display()
    );
    Ok(())
}

/// `renkei audit verify --since FILE --public-key KEYS`.
pub async fn verify_since(c: &StaffClient, since: &Path, key_file: &Path) -> Result<(), String> {
    let keys = read_keys(key_file)?;
    let old_note =
        std::fs::read_to_string(since).map_err(|e| format!("{}: {e}", since.display()))?;
    let old = Checkpoint::from_signed_note(&old_note, &keys)
        .map_err(|e| format!("the saved checkpoint does NOT verify with your keys: {e}"))?;
    let (new_note, proof) = consistency(c, old.tree_size).await?;
    let new = Checkpoint::from_signed_note(&new_note, &keys)
        .map_err(|e| format!("today's checkpoint does NOT verify with your keys: {e}"))?;
    match renkei_records::verify_growth(&old_note, &new, &keys, &proof) {
        Ok(g) => {
            println!(
                "OK: the log only grew, from {} to {} records (today's checkpoint signed {}).",
                g.old_size, g.new_size, new.created_at
            );
            Ok(())
        }
        Err(e @ (GrowthError::Inconsistent(_) | GrowthError::DifferentLogs { .. })) => {
            let place = locate(c, &old, &new, &keys).await?;
            Err(format!(
                "the log did NOT only grow since the saved checkpoint ({e}): {place}"
            ))
        }
        Err(e) => Err(format!("the checkpoints do NOT verify: {e}")),
    }
}

/// Where the current log departs from what was signed, in words.
async fn locate(
    c: &StaffClient,
    old: &Checkpoint,
    new: &Checkpoint,
    keys: &KeySet,
) -> Result<String, String> {
    let stored = c.json(Method::GET, "/v1/audit/checkpoints", None).await?;
    let mut evidence = vec![old.clone()];
    let mut unverified = 0usize;
    for line in stored["checkpoints"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        match Checkpoint::from_json_line(line.as_str().unwrap_or_default()) {
            Ok(cp) if cp.tree_size < old.tree_size && cp.verify_with(keys).is_ok() => {
                evidence.push(cp)
            }
            Ok(cp) if cp.tree_size < old.tree_size => unverified += 1,
            _ => {}
        }
    }
    const PAGE: u64 = 65_536;
    let mut leaves: Vec<Hash> = Vec::new();
    while (leaves.len() as u64) < old.tree_size.min(new.tree_size) {
        let from = leaves.len() as u64;
        let to = (from + PAGE).min(old.tree_size);
        let page = c
            .json(
                Method::GET,
                &format!("/v1/audit/leaves?from={from}&to={to}"),
                None,
            )
            .await?;
        let got = page["leaves"].as_array().cloned().unwrap_or_default();
        if got.is_empty() {
            break;
        }
        for h in &got {
            leaves.push(hash(h)?);
        }
    }
    let current_size = new.tree_size.max(leaves.len() as u64);
    let found = renkei_records::locate_rewrite(&evidence, keys, current_size, |i| {
        leaves
            .get(i as usize)
            .copied()
            .ok_or("the gateway sent fewer leaves than its log holds")
    })
    .map_err(|e| format!("cannot locate the rewrite: {e}"))?;
    let dropped = if unverified > 0 {
        format!(
            " ({unverified} stored checkpoints did not verify with your keys and were not used)"
        )
    } else {
        String::new()
    };
    Ok(match (found.first_rewritten(), found.suspects()) {
        _ if found.shrunk => format!(
            "records were removed: the log holds {} records, fewer than a signed checkpoint{dropped}",
            found.current_size
        ),
        (Some(seq), _) => format!("the first rewritten record is seq {seq}{dropped}"),
        (None, Some(r)) => format!(
            "the first rewritten record is among seq {} to {} (no signed checkpoints closer together){dropped}",
            r.start,
            r.end - 1
        ),
        (None, None) => format!(
            "yet the gateway's current leaves reproduce every signed root: its answers contradict each other{dropped}"
        ),
    })
}

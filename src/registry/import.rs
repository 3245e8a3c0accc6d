//! Bulk import of the resident-record feed (住民記録異動ファイル): change records applied in
//! file order, many persons per store commit, replay-safe, with the code acquisitions that
//! follow spread over time so a whole city does not reach the platform at once.
//!
//! Change kinds (code table `change-kind`): `register` (01 登録/転入) links or creates the person,
//! `move-out` (02 転出) and `death` (05 死亡) end new inquiries, `name-change` (03) and
//! `address-change` (04) update the encrypted basic facts.
//!
//! Replay: every applied line leaves a marker `x:` ‖ system ‖ business number ‖ HMAC(line
//! values) in `Tree::BlindIndex` (keyed with the blind-index key: the marker reveals nothing of
//! the line); a line whose marker exists is counted as unchanged and not applied again, so
//! replaying a file, or a file that overlaps an earlier one, changes nothing.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use base64::Engine;
use renkei_convert::{LineError, Record};
use renkei_crypto::at_rest::encrypt_at_rest;
use renkei_ids::{BusinessNumber, SystemId, UnifiedAddressNumber};
use renkei_records::{RecordKind, RecordResult, StaffDetail};
use serde::Serialize;

use super::{b64, BasicFacts, CodeStatus, PersonRecord, PersonState, Registry, RegistryError};
use crate::schedule::{Due, Job};
use crate::util::{now_ms, rfc3339_jst};
use renkei_store::{key2, Batch, CommitFuture, StoreError, Tree};

/// Persons per store commit: large enough that one fsync is shared by hundreds of persons,
/// small enough that a chunk's writes (≈ 7 keys per person) stay a few hundred KiB.
pub const DEFAULT_IMPORT_CHUNK: usize = 512;
/// Code acquisitions scheduled per second after an import. The platform is shared by every
/// municipality; 100/s lets 300,000 residents through in under an hour without a burst.
pub const DEFAULT_CODE_ACQUISITIONS_PER_SEC: u64 = 100;
/// Rejected lines listed in a summary (all are counted): a file of garbage must not make the
/// answer as large as the file.
pub const DEFAULT_MAX_REPORTED_REJECTS: usize = 1000;
/// Marker prefix in `Tree::BlindIndex` of applied change lines.
pub const APPLIED_PREFIX: &[u8] = b"x:";
/// `Tree::Meta` key of the next free code-acquisition slot (ms), shared by imports.
const META_CODE_PACE: &[u8] = b"registry.code_pace_ms";

/// One refused line.
#[derive(Debug, Clone, Serialize)]
pub struct RejectedLine {
    pub line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub code: String,
    pub message: String,
}

impl From<LineError> for RejectedLine {
    fn from(e: LineError) -> Self {
        Self {
            line: e.line,
            field: e.field,
            code: e.code.to_string(),
            message: crate::util::scrub(&e.message),
        }
    }
}

/// The refused lines of an import (`rejected_count`, `rejected`, `rejected_truncated` in its
/// answer): every one counted, the first [`DEFAULT_MAX_REPORTED_REJECTS`] listed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Rejections {
    pub rejected_count: u64,
    /// The first [`DEFAULT_MAX_REPORTED_REJECTS`] refused lines.
    pub rejected: Vec<RejectedLine>,
    pub rejected_truncated: bool,
}

impl Rejections {
    /// Counts a refused line, and lists it while there is room.
    pub fn push(&mut self, r: RejectedLine) {
        self.rejected_count += 1;
        if self.rejected.len() < DEFAULT_MAX_REPORTED_REJECTS {
            self.rejected.push(r);
        } else {
            self.rejected_truncated = true;
        }
    }
}

/// What an import answers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportSummary {
    pub layout: String,
    pub system: String,
    /// Records read (good and bad).
    pub lines: u64,
    /// Good lines: applied now or found already applied.
    pub accepted: u64,
    /// Lines that changed the registry now.
    pub applied_changes: u64,
    /// Good lines that changed nothing (already applied: a replay).
    pub unchanged: u64,
    /// Persons made by this import.
    pub persons_created: u64,
    /// The refused lines.
    #[serde(flatten)]
    pub rejections: Rejections,
    /// Code acquisitions scheduled, paced at [`DEFAULT_CODE_ACQUISITIONS_PER_SEC`].
    pub code_acquisitions_scheduled: u64,
    /// When the last of them is due (RFC 3339, JST).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_acquisitions_until: Option<String>,
    /// Store commits made (each one shared fsync).
    pub commits: u64,
    /// Where the time went (for the benchmark and operators sizing a feed).
    pub timing: ImportTiming,
}

/// Milliseconds spent per phase of an import.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportTiming {
    /// Waiting for parsed lines (network and Shift_JIS parsing).
    pub waiting_for_lines_ms: u64,
    /// Reading the store, encrypting, building batches.
    pub applying_ms: u64,
    /// Waiting for the store to make batches durable.
    pub committing_ms: u64,
    /// The whole request.
    pub total_ms: u64,
}

impl ImportSummary {
    fn reject(&mut self, r: RejectedLine) {
        self.rejections.push(r);
    }

    fn add(&mut self, d: &ImportSummary) {
        self.lines += d.lines;
        self.accepted += d.accepted;
        self.applied_changes += d.applied_changes;
        self.unchanged += d.unchanged;
        self.persons_created += d.persons_created;
        self.timing.applying_ms += d.timing.applying_ms;
        self.timing.committing_ms += d.timing.committing_ms;
        self.code_acquisitions_scheduled += d.code_acquisitions_scheduled;
        if d.code_acquisitions_until.is_some() {
            self.code_acquisitions_until = d.code_acquisitions_until.clone();
        }
        let theirs = &d.rejections;
        for r in &theirs.rejected {
            self.reject(r.clone());
        }
        self.rejections.rejected_count += theirs.rejected_count - theirs.rejected.len() as u64;
    }
}

/// Spreads code acquisitions: one slot every `1000 / per_sec` ms from now or the last slot.
struct Pacer {
    next_ms: u64,
}

impl Pacer {
    const STEP_MS: u64 = 1000 / DEFAULT_CODE_ACQUISITIONS_PER_SEC;

    fn next(&mut self) -> u64 {
        self.next_ms = self.next_ms.max(now_ms());
        let t = self.next_ms;
        self.next_ms += Self::STEP_MS.max(1);
        t
    }
}

type Writes = HashMap<(Tree, Vec<u8>), Option<Vec<u8>>>;

/// Reads through a chunk's own writes, then the writes of the chunk still being committed
/// before it (`pending`), then the store. Every first write of a key, and every read served
/// from `pending`, guards the key with the value seen: the writer applies batches in order, so
/// a racing change — or a failed previous chunk — makes this chunk conflict instead of being
/// lost or applied on top of something that never happened.
struct Overlay<'a> {
    reg: &'a Registry,
    pending: Option<&'a Writes>,
    writes: Writes,
    seen: Writes,
    guarded: std::collections::HashSet<(Tree, Vec<u8>)>,
    batch: Batch,
}

impl<'a> Overlay<'a> {
    fn new(reg: &'a Registry, pending: Option<&'a Writes>) -> Self {
        Self {
            reg,
            pending,
            writes: HashMap::new(),
            seen: HashMap::new(),
            guarded: Default::default(),
            batch: Batch::new(),
        }
    }

    fn add_guard(&mut self, tree: Tree, key: &[u8], v: Option<Vec<u8>>) {
        if self.guarded.insert((tree, key.to_vec())) {
            match v {
                Some(v) => self.batch.require_equal(tree, key.to_vec(), v),
                None => self.batch.require_absent(tree, key.to_vec()),
            }
        }
    }

    fn get(&mut self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, RegistryError> {
        let k = (tree, key.to_vec());
        if let Some(v) = self.writes.get(&k).or_else(|| self.seen.get(&k)) {
            return Ok(v.clone());
        }
        let v = match self.pending.and_then(|p| p.get(&k)) {
            Some(v) => {
                let v = v.clone();
                self.add_guard(tree, key, v.clone());
                v
            }
            None => self.reg.store.get(tree, key)?,
        };
        self.seen.insert(k, v.clone());
        Ok(v)
    }

    fn guard(&mut self, tree: Tree, key: &[u8]) -> Result<(), RegistryError> {
        if !self.guarded.contains(&(tree, key.to_vec())) {
            let v = self.get(tree, key)?;
            self.add_guard(tree, key, v);
        }
        Ok(())
    }

    fn put(&mut self, tree: Tree, key: Vec<u8>, value: Vec<u8>) -> Result<(), RegistryError> {
        self.guard(tree, &key)?;
        self.batch.put(tree, key.clone(), value.clone());
        self.writes.insert((tree, key), Some(value));
        Ok(())
    }

    /// A key that cannot exist yet (it names a unified number allocated by this chunk).
    fn put_new(&mut self, tree: Tree, key: Vec<u8>, value: Vec<u8>) {
        self.add_guard(tree, &key, None);
        self.batch.put(tree, key.clone(), value.clone());
        self.writes.insert((tree, key), Some(value));
    }

    fn delete(&mut self, tree: Tree, key: Vec<u8>) -> Result<(), RegistryError> {
        self.guard(tree, &key)?;
        self.batch.delete(tree, key.clone());
        self.writes.insert((tree, key), None);
        Ok(())
    }

    fn person(&mut self, u: &UnifiedAddressNumber) -> Result<Option<PersonRecord>, RegistryError> {
        self.get(Tree::Persons, u.to_string().as_bytes())?
            .map(|v| serde_json::from_slice(&v).map_err(|e| RegistryError::Corrupt(e.to_string())))
            .transpose()
    }

    fn put_person(&mut self, p: &PersonRecord) -> Result<(), RegistryError> {
        let v = serde_json::to_vec(p).map_err(|e| RegistryError::Corrupt(e.to_string()))?;
        self.put(Tree::Persons, p.unified.to_string().into_bytes(), v)
    }

    fn unified(
        &mut self,
        tree: Tree,
        key: &[u8],
    ) -> Result<Option<UnifiedAddressNumber>, RegistryError> {
        self.get(tree, key)?
            .map(|v| {
                UnifiedAddressNumber::parse(&String::from_utf8_lossy(&v))
                    .map_err(|e| RegistryError::Corrupt(e.to_string()))
            })
            .transpose()
    }
}

/// How one good line ended.
enum Applied {
    Changed { created: bool },
    Unchanged,
    Refused(RejectedLine),
}

fn refuse(line: u64, field: &str, code: &str, message: impl Into<String>) -> Applied {
    Applied::Refused(RejectedLine {
        line,
        field: Some(field.to_string()),
        code: code.to_string(),
        message: message.into(),
    })
}

/// Basic facts from a line's canonical values (sex back to the registry's 1/2/9).
fn facts_of(rec: &Record) -> BasicFacts {
    let v = |n: &str| super::search::normalise(rec.get(n).unwrap_or_default());
    let sex = match rec.get("sex").unwrap_or_default() {
        "0" => "9".to_string(),
        s => s.to_string(),
    };
    BasicFacts {
        name: v("name"),
        kana: v("kana"),
        birth_date: rec.get("birth_date").unwrap_or_default().to_string(),
        sex,
        address: v("address"),
    }
}

impl Registry {
    /// The replay marker of a line fed by `system`.
    ///
    /// `x:` ‖ system ‖ 0 ‖ business number ‖ 0 ‖ HMAC(line values): the business number (not
    /// secret; `BusinessLinks` holds it in clear too) keeps one person's markers together and
    /// sorted feeds write them in key order.
    fn applied_marker(&self, system: &SystemId, bn: &BusinessNumber, rec: &Record) -> Vec<u8> {
        let mut plain = zeroize::Zeroizing::new(String::from(system.as_str()));
        for (_, v) in rec.iter() {
            plain.push('\u{1f}');
            plain.push_str(v);
        }
        let mut k = APPLIED_PREFIX.to_vec();
        k.extend_from_slice(&key2(system.as_str(), bn.as_str()));
        k.push(0);
        k.extend_from_slice(&self.keys.keyring().blind_index().index(plain.as_bytes()));
        k
    }

    /// Replaces a person's facts (re-sealed, index entries moved); false if nothing changed.
    fn update_facts(
        &self,
        ov: &mut Overlay<'_>,
        p: &mut PersonRecord,
        change: impl FnOnce(&mut BasicFacts),
    ) -> Result<bool, RegistryError> {
        let old = self.basic_facts(p)?;
        let mut new = old.clone();
        change(&mut new);
        if new == old {
            return Ok(false);
        }
        for k in self.facts_index_keys(&p.unified, &old) {
            ov.delete(Tree::BlindIndex, k)?;
        }
        for k in self.facts_index_keys(&p.unified, &new) {
            ov.put(Tree::BlindIndex, k, Vec::new())?;
        }
        p.basic_sealed = self.seal_facts(&p.unified, &new)?;
        Ok(true)
    }

    /// Applies one good line to the overlay.
    fn apply_line(
        &self,
        ov: &mut Overlay<'_>,
        system: &SystemId,
        rec: &Record,
        pacer: &mut Pacer,
        d: &mut ImportSummary,
    ) -> Result<Applied, RegistryError> {
        let line = rec.line();
        let bn = match BusinessNumber::parse(rec.get("business_number").unwrap_or_default()) {
            Ok(bn) => bn,
            Err(e) => {
                return Ok(refuse(
                    line,
                    "business_number",
                    e.code(),
                    "business_number: not a valid business number",
                ))
            }
        };
        let link_key = key2(system.as_str(), bn.as_str());
        let linked = ov.unified(Tree::BusinessLinks, &link_key)?;
        let marker = self.applied_marker(system, &bn, rec);
        // A line was applied only if its business number is linked (links are never deleted):
        // an unlinked number needs no marker read, which saves a random read per new person.
        if linked.is_some() && ov.get(Tree::BlindIndex, &marker)?.is_some() {
            return Ok(Applied::Unchanged);
        }
        let kind = rec.get("change_kind").unwrap_or_default();
        let now = now_ms();
        let outcome = match kind {
            "register" => {
                let n = match rec.individual_number("individual_number") {
                    Ok(Some(n)) => n,
                    Ok(None) => {
                        return Ok(refuse(
                            line,
                            "individual_number",
                            "required",
                            "individual_number: required to register a person",
                        ))
                    }
                    Err(e) => {
                        return Ok(refuse(
                            line,
                            "individual_number",
                            e.code(),
                            "individual_number: not a valid individual number (value withheld)",
                        ))
                    }
                };
                let facts = facts_of(rec);
                let idx = self.blind_index(&n);
                let by_number = ov.unified(Tree::BlindIndex, &idx)?;
                let by_number = match by_number {
                    Some(u) => Some(self.follow_merge(&u)?),
                    None => None,
                };
                let linked = match linked {
                    Some(u) => Some(self.follow_merge(&u)?),
                    None => None,
                };
                match (linked, by_number) {
                    (Some(a), Some(b)) if a != b => {
                        return Ok(refuse(
                            line,
                            "business_number",
                            "business_number_linked_elsewhere",
                            "business_number: already linked to another person",
                        ))
                    }
                    (Some(_), None) => {
                        return Ok(refuse(
                            line,
                            "business_number",
                            "business_number_linked_elsewhere",
                            "business_number: already linked to another person",
                        ))
                    }
                    (l, Some(u)) => {
                        let mut p = ov.person(&u)?.ok_or(RegistryError::NotFound)?;
                        if p.state == PersonState::Deceased {
                            return Ok(refuse(
                                line,
                                "change_kind",
                                "person_deceased",
                                "change_kind: the person is recorded as deceased",
                            ));
                        }
                        let mut changed = self.update_facts(ov, &mut p, |f| *f = facts.clone())?;
                        if p.state == PersonState::MovedOut {
                            p.state = PersonState::Active;
                            changed = true;
                        }
                        if l.is_none() {
                            ov.put(Tree::BusinessLinks, link_key, u.to_string().into_bytes())?;
                            ov.put(
                                Tree::ReverseLinks,
                                key2(&u.to_string(), system.as_str()),
                                bn.as_str().as_bytes().to_vec(),
                            )?;
                            changed = true;
                        }
                        if changed {
                            p.updated_ms = now;
                            ov.put_person(&p)?;
                            Applied::Changed { created: false }
                        } else {
                            Applied::Unchanged
                        }
                    }
                    (None, None) => {
                        let serial = self.next_serial.fetch_add(1, Ordering::SeqCst);
                        let u = UnifiedAddressNumber::from_serial(serial)
                            .map_err(|e| RegistryError::Corrupt(e.to_string()))?;
                        let digits = zeroize::Zeroizing::new(n.expose_digits());
                        let enc_n = encrypt_at_rest(
                            &self.keys.keyring(),
                            &format!("persons/{u}/individual_number"),
                            digits.as_bytes(),
                        )
                        .map_err(|e| RegistryError::Crypto(e.to_string()))?;
                        let p = PersonRecord {
                            unified: u,
                            individual_number_sealed: b64().encode(enc_n),
                            basic_sealed: self.seal_facts(&u, &facts)?,
                            code_status: CodeStatus::Pending,
                            code_reason: None,
                            fugo_sealed: None,
                            code_attempts: 0,
                            state: PersonState::Active,
                            created_ms: now,
                            updated_ms: now,
                        };
                        ov.put(Tree::BlindIndex, idx, u.to_string().into_bytes())?;
                        ov.put(Tree::BusinessLinks, link_key, u.to_string().into_bytes())?;
                        let us = u.to_string();
                        ov.put_new(
                            Tree::Persons,
                            us.clone().into_bytes(),
                            serde_json::to_vec(&p)
                                .map_err(|e| RegistryError::Corrupt(e.to_string()))?,
                        );
                        ov.put_new(
                            Tree::ReverseLinks,
                            key2(&us, system.as_str()),
                            bn.as_str().as_bytes().to_vec(),
                        );
                        for k in self.facts_index_keys(&u, &facts) {
                            ov.put_new(Tree::BlindIndex, k, Vec::new());
                        }
                        let due = pacer.next();
                        ov.put_new(Tree::Due, Due::new(due, Job::Code(u)).key(), Vec::new());
                        d.code_acquisitions_scheduled += 1;
                        d.code_acquisitions_until = Some(rfc3339_jst(due));
                        Applied::Changed { created: true }
                    }
                }
            }
            "move-out" | "death" | "name-change" | "address-change" => {
                let Some(u) = linked else {
                    return Ok(refuse(
                        line,
                        "business_number",
                        "person_not_linked",
                        "business_number: not linked to a person; register (01) first",
                    ));
                };
                let u = self.follow_merge(&u)?;
                let mut p = ov.person(&u)?.ok_or(RegistryError::NotFound)?;
                let changed = match kind {
                    "move-out" => {
                        let c = p.state == PersonState::Active;
                        if c {
                            p.state = PersonState::MovedOut;
                        }
                        c
                    }
                    "death" => {
                        let c = p.state != PersonState::Deceased;
                        p.state = PersonState::Deceased;
                        c
                    }
                    "name-change" => {
                        let f = facts_of(rec);
                        self.update_facts(ov, &mut p, |o| {
                            o.name = f.name.clone();
                            o.kana = f.kana.clone();
                        })?
                    }
                    _ => {
                        let f = facts_of(rec);
                        self.update_facts(ov, &mut p, |o| o.address = f.address.clone())?
                    }
                };
                if changed {
                    p.updated_ms = now;
                    ov.put_person(&p)?;
                    Applied::Changed { created: false }
                } else {
                    Applied::Unchanged
                }
            }
            other => {
                return Ok(refuse(
                    line,
                    "change_kind",
                    "unknown_change_kind",
                    format!("change_kind: {other:?} is not handled"),
                ))
            }
        };
        if linked.is_some() {
            ov.put(Tree::BlindIndex, marker, Vec::new())?;
        } else {
            ov.put_new(Tree::BlindIndex, marker, Vec::new());
        }
        Ok(outcome)
    }

    /// Builds the batch for `items` (good and bad lines, in order) over `pending`.
    fn prepare(
        &self,
        system: &SystemId,
        items: &[Result<Record, LineError>],
        pacer: &mut Pacer,
        pending: Option<&Writes>,
    ) -> Result<(Batch, Writes, ImportSummary), RegistryError> {
        let started = std::time::Instant::now();
        let mut ov = Overlay::new(self, pending);
        let mut d = ImportSummary::default();
        for item in items {
            d.lines += 1;
            match item {
                Err(e) => d.reject(e.clone().into()),
                Ok(rec) => match self.apply_line(&mut ov, system, rec, pacer, &mut d)? {
                    Applied::Changed { created } => {
                        d.accepted += 1;
                        d.applied_changes += 1;
                        d.persons_created += u64::from(created);
                    }
                    Applied::Unchanged => {
                        d.accepted += 1;
                        d.unchanged += 1;
                    }
                    Applied::Refused(r) => d.reject(r),
                },
            }
        }
        let mut b = ov.batch;
        if !b.is_empty() {
            b.put(
                Tree::Meta,
                META_CODE_PACE.to_vec(),
                pacer.next_ms.to_be_bytes().to_vec(),
            );
            d.commits = 1;
        }
        d.timing.applying_ms = started.elapsed().as_millis() as u64;
        Ok((b, ov.writes, d))
    }
    /// Records a finished import (linkage records: a staff action that touched individual
    /// numbers).
    pub async fn record_import(
        &self,
        staff: StaffDetail,
        summary: &ImportSummary,
        complete: bool,
    ) -> Result<(), RegistryError> {
        let mut r = crate::records::base(
            RecordKind::StaffAction,
            if complete {
                RecordResult::Done
            } else {
                RecordResult::Failed
            },
        );
        r.business_system = SystemId::parse(&summary.system).ok();
        r.reason = Some(format!(
            "import layout={} lines={} applied={} unchanged={} rejected={}",
            summary.layout,
            summary.lines,
            summary.applied_changes,
            summary.unchanged,
            summary.rejections.rejected_count
        ));
        r.staff = Some(StaffDetail {
            action: "persons.import".into(),
            touched_individual_number: true,
            ..staff
        });
        let mut b = Batch::new();
        crate::records::append(&mut b, &r);
        self.store.commit(b).await?;
        Ok(())
    }
}

/// A chunk whose batch is with the store writer.
struct InFlight {
    commit: CommitFuture,
    writes: Writes,
    delta: ImportSummary,
    items: Vec<Result<Record, LineError>>,
}

/// Applies an import chunk by chunk, building chunk N+1 while chunk N is being made durable
/// (one chunk in flight: memory stays bounded by two chunks).
pub struct Importer<'a> {
    reg: &'a Registry,
    system: SystemId,
    pacer: Pacer,
    in_flight: Option<InFlight>,
    /// The running summary.
    pub summary: ImportSummary,
}

impl<'a> Importer<'a> {
    /// Starts an import fed by `system`.
    pub fn new(reg: &'a Registry, system: SystemId, layout: &str) -> Result<Self, RegistryError> {
        let stored = reg
            .store
            .get(Tree::Meta, META_CODE_PACE)?
            .and_then(|v| v.try_into().ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0);
        Ok(Self {
            reg,
            summary: ImportSummary {
                layout: layout.to_string(),
                system: system.to_string(),
                ..Default::default()
            },
            system,
            pacer: Pacer { next_ms: stored },
            in_flight: None,
        })
    }

    /// Takes the next chunk of lines.
    pub async fn push(
        &mut self,
        items: Vec<Result<Record, LineError>>,
    ) -> Result<(), RegistryError> {
        let prev = self.in_flight.take();
        let mut prepared = self.reg.prepare(
            &self.system,
            &items,
            &mut self.pacer,
            prev.as_ref().map(|p| &p.writes),
        )?;
        if let Some(prev) = prev {
            if !self.settle(prev).await? {
                // Chunk N+1 was built on N's writes, which did not happen: build it again.
                prepared = self
                    .reg
                    .prepare(&self.system, &items, &mut self.pacer, None)?;
            }
        }
        let (batch, writes, delta) = prepared;
        if batch.is_empty() {
            self.summary.add(&delta);
            return Ok(());
        }
        let mut commit = self.reg.store.commit(batch);
        // Poll once so the batch reaches the writer's queue now, in order, before the next one.
        let early = std::future::poll_fn(|cx| {
            std::task::Poll::Ready(std::future::Future::poll(commit.as_mut(), cx))
        })
        .await;
        match early {
            std::task::Poll::Ready(outcome) => {
                let ready: CommitFuture = Box::pin(async move { outcome });
                self.in_flight = Some(InFlight {
                    commit: ready,
                    writes,
                    delta,
                    items,
                });
            }
            std::task::Poll::Pending => {
                self.in_flight = Some(InFlight {
                    commit,
                    writes,
                    delta,
                    items,
                });
            }
        }
        Ok(())
    }

    /// Waits for the chunk in flight; false if it conflicted (its lines were then applied one
    /// by one).
    async fn settle(&mut self, f: InFlight) -> Result<bool, RegistryError> {
        let waiting = std::time::Instant::now();
        let outcome = f.commit.await;
        self.summary.timing.committing_ms += waiting.elapsed().as_millis() as u64;
        match outcome {
            Ok(_) => {
                self.summary.commits += f.delta.commits;
                self.summary.add(&f.delta);
                Ok(true)
            }
            Err(StoreError::Conflict { .. }) => {
                tracing::info!(
                    message = "Import chunk raced another change; applying line by line."
                );
                self.one_by_one(&f.items).await?;
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn one_by_one(
        &mut self,
        items: &[Result<Record, LineError>],
    ) -> Result<(), RegistryError> {
        for (i, item) in items.iter().enumerate() {
            let mut done = false;
            for _ in 0..3 {
                let (b, _, d) =
                    self.reg
                        .prepare(&self.system, &items[i..=i], &mut self.pacer, None)?;
                let ok = b.is_empty()
                    || match self.reg.store.commit(b).await {
                        Ok(_) => true,
                        Err(StoreError::Conflict { .. }) => false,
                        Err(e) => return Err(e.into()),
                    };
                if ok {
                    self.summary.commits += d.commits;
                    self.summary.add(&d);
                    done = true;
                    break;
                }
            }
            if !done {
                self.summary.lines += 1;
                self.summary.reject(RejectedLine {
                    line: item.as_ref().map(|r| r.line()).unwrap_or_else(|e| e.line),
                    field: None,
                    code: "conflict".into(),
                    message: "the line kept racing another change; send it again".into(),
                });
            }
        }
        Ok(())
    }

    /// Waits for the last chunk; returns the summary.
    pub async fn finish(mut self) -> Result<ImportSummary, RegistryError> {
        if let Some(f) = self.in_flight.take() {
            self.settle(f).await?;
        }
        Ok(self.summary)
    }
}

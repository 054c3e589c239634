//! Committing: one log record per commit, written after the data it refers
//! to, then the new state installed (FORMAT.md §7.1).

use super::plan::{needs_relocation, Intent, PlanIo, Planner};
use super::{Engine, SyncPolicy};
use crate::format::history::{CommitInfo, OpSummary};
use crate::format::manifest::{entry_len, manifest_len};
use crate::format::record::encode_body;
use crate::format::MAX_RECORD_BODY;
use crate::model::error::{Error, Result};
use crate::model::op::{Op, Payload};
use crate::model::state::State;
use crate::util::now_ns;

/// The ops of a planned commit and, for a commit of several changes, the
/// state after them and the files they made unreferenced.
struct Planned {
    ops: Vec<Op>,
    staged: Option<(State, Vec<u64>)>,
}

impl Engine {
    /// Commit intents atomically.
    pub(crate) fn commit(&mut self, intents: &[Intent<'_>]) -> Result<()> {
        self.commit_described(intents, &|_| String::new())
            .map_err(|(_, e)| e)
    }

    /// Commit intents atomically; a failure names the intent that caused
    /// it (its index; `describe` is for internal errors' messages).
    pub(crate) fn commit_described(
        &mut self,
        intents: &[Intent<'_>],
        describe: &dyn Fn(usize) -> String,
    ) -> std::result::Result<(), (usize, Error)> {
        let whole = |e| (intents.len(), e);
        self.settle_sums().map_err(whole)?;
        self.check_writable().map_err(whole)?;
        if intents.is_empty() {
            return Ok(());
        }
        self.take_turn().map_err(whole)?;
        let res = self.commit_in_turn(intents, describe);
        if res.is_ok() {
            self.compact_where_needed(intents);
        }
        self.end_turn();
        res
    }

    /// Automatic compaction: after a commit, an array it changed whose
    /// dead rows (deleted, or superseded by replacements) or row-map
    /// fragments passed a threshold is rewritten at once (its own commit),
    /// so that reads, replaces and checkpoints stay as fast as on a freshly
    /// saved array whatever its history. The commit itself has succeeded:
    /// a failed compaction only leaves the array as it was (a failed sync
    /// poisons the handle, reported by the next call).
    fn compact_where_needed(&mut self, intents: &[Intent<'_>]) {
        let names: Vec<&str> = intents
            .iter()
            .filter_map(|i| match i {
                Intent::Replace { name, .. }
                | Intent::DeleteRows { name, .. }
                | Intent::Append { name, .. }
                // A save may be a replace of the rows that changed.
                | Intent::Save { name, .. } => Some(*name),
                _ => None,
            })
            .collect();
        for name in names {
            // An array whose file a version keeps is left alone: the
            // version holds its rows anyway (FORMAT.md §15.5).
            let due = self.state.arrays.get(name).is_some_and(|a| {
                needs_compaction(a)
                    && !self.busy.contains(name)
                    && self
                        .state
                        .file_refs
                        .get(&a.file_id)
                        .is_none_or(|r| r.versions == 0)
            });
            if due && self.poisoned.is_none() {
                let _ = self.commit_in_turn(&[Intent::Compact { name }], &|_| String::new());
            }
        }
    }

    /// Commit intents in a turn already taken, without automatic
    /// compaction (version operations).
    pub(super) fn commit_in_turn_plain(&mut self, intents: &[Intent<'_>]) -> Result<()> {
        self.commit_in_turn(intents, &|_| String::new())
            .map_err(|(_, e)| e)
    }

    fn commit_in_turn(
        &mut self,
        intents: &[Intent<'_>],
        describe: &dyn Fn(usize) -> String,
    ) -> std::result::Result<(), (usize, Error)> {
        let whole = |e| (intents.len(), e);
        let time_ns = now_ns();
        let io = PlanIo {
            files: &mut self.files,
            payload_gen: &mut self.payload_gen,
        };
        let mut planner = Planner::new(Some(io), &self.busy, self.sync);
        let planned = plan_all(&mut planner, &self.state, intents, time_ns, describe);
        let (created, presync, sync_failed) =
            (planner.created, planner.presync, planner.sync_failed);
        if let Some(p) = sync_failed {
            // fsync-gate: a failed sync is never retried as if it worked.
            self.poison(&p);
        }
        let planned = match planned {
            Ok(p) => p,
            Err(e) => {
                self.discard_created(&created);
                return Err(e);
            }
        };
        if planned.ops.is_empty() {
            return Ok(());
        }
        self.presync = presync;
        self.log_and_install(planned, time_ns, &created)
            .map_err(whole)
    }

    /// Write the record of a planned commit, install its state, release or
    /// queue the files it made unreferenced, and checkpoint if the log is
    /// long.
    fn log_and_install(&mut self, planned: Planned, time_ns: u64, created: &[u64]) -> Result<()> {
        let Planned { mut ops, staged } = planned;
        // Files this commit makes unreferenced that no durable state refers
        // to are released: deleted right after the record is written, so a
        // run of saves does not pile up superseded files (and their page
        // cache) until the next checkpoint. The record says so, for
        // recovery (FORMAT.md §7.1 step 7, §7.4).
        let released = self.releasable(&ops, staged.as_ref().map(|(_, g)| g.as_slice()));
        for (name, id) in &released {
            ops.push(Op::Release {
                name: name.clone(),
                file_id: *id,
            });
        }
        if let Err(e) = self.check_manifest_room(&ops) {
            self.discard_created(created);
            return Err(e);
        }
        if let Err(e) = self.append_record(time_ns, &ops) {
            // A poisoning failure (a sync after the record was written, or a
            // tail that could not be cut) may leave the record in the log:
            // keep the files it refers to; the next open removes them if
            // the record did not survive.
            if self.poisoned.is_none() {
                self.discard_created(created);
            }
            return Err(e);
        }
        let touched = touched_names(&ops);
        let before = self.entries_len(&touched);
        let garbage = self.install(staged, &ops, time_ns)?;
        self.manifest_bytes =
            self.manifest_bytes - before.min(self.manifest_bytes) + self.entries_len(&touched);
        debug_assert_eq!(self.manifest_total(), manifest_len(&self.state));
        debug_assert_eq!(self.state.check_invariants(), Ok(()));
        for (_, id) in &released {
            self.fresh.remove(id);
            self.payload_gen.remove(id);
            // A file left behind (removal failed) is a stray that the next
            // open folding the log removes.
            self.files.delete_now(*id);
        }
        for id in garbage {
            if !released.iter().any(|(_, r)| *r == id) {
                self.files.retire(id);
                self.garbage.push(id);
            }
        }
        self.note_fresh(&ops);
        self.note_dead_versions(&ops);
        if self.log_len() > self.checkpoint_log_bytes {
            // The commit itself succeeded; a checkpoint failure must not be
            // reported as the operation failing. A failed sync poisons the
            // handle and the next mutation reports it; anything else is
            // retried at the next commit.
            let _ = self.checkpoint();
        }
        Ok(())
    }

    /// Refuse a commit after which the state could not be checkpointed: a
    /// MANIFEST larger than readers accept (FORMAT.md §2.1, A.12). Checked
    /// against an upper bound of what the ops add, before anything is
    /// logged.
    fn check_manifest_room(&self, ops: &[Op]) -> Result<()> {
        let bound = ops
            .iter()
            .map(|op| growth_bound(&self.state, op))
            .fold(self.manifest_total(), u64::saturating_add);
        if bound <= self.max_manifest_bytes {
            return Ok(());
        }
        Err(Error::LimitExceeded {
            what: format!(
                "after this commit the store's checkpoint (MANIFEST) could take {bound} bytes; compact the arrays with many deleted or replaced rows, or split the change"
            ),
            limit: self.max_manifest_bytes,
        })
    }

    /// Bytes of the MANIFEST entries of `names` in the current state.
    pub(crate) fn entries_len(&self, names: &[&str]) -> u64 {
        names
            .iter()
            .filter_map(|n| self.state.arrays.get(*n).map(|a| entry_len(n, a)))
            .sum()
    }

    /// The record is written: make its state the engine's. Returns the
    /// files the ops made unreferenced.
    fn install(
        &mut self,
        staged: Option<(State, Vec<u64>)>,
        ops: &[Op],
        time_ns: u64,
    ) -> Result<Vec<u64>> {
        if let Some((mut s, garbage)) = staged {
            s.seq = self.state.seq;
            s.chain = self.state.chain;
            s.gen = self.state.gen;
            self.state = s;
            return Ok(garbage);
        }
        let mut garbage = Vec::new();
        for op in ops {
            match self.state.apply(op, time_ns) {
                Ok(g) => garbage.extend(g),
                Err(d) => {
                    // Planned ops always apply; refuse to go on with memory
                    // that disagrees with the log.
                    let log = self.log_path();
                    self.poison(&log);
                    return Err(Error::Internal(format!(
                        "a planned op does not apply to the state it was planned on: {d}"
                    )));
                }
            }
        }
        Ok(garbage)
    }

    /// Outside `Sync::Always`, files created by in-file Puts are fresh:
    /// referred to by no durable state or record (see `Engine::fresh`).
    fn note_fresh(&mut self, ops: &[Op]) {
        if self.sync == SyncPolicy::Always {
            return;
        }
        for op in ops {
            if let Op::Put {
                file_id,
                payload: Payload::InFile { .. },
                ..
            } = op
            {
                self.fresh.insert(*file_id);
            }
        }
    }

    /// Log ops built outside the planner (writable sessions) and apply them;
    /// `durable`: then sync everything.
    pub(crate) fn commit_ops(&mut self, ops: Vec<Op>, durable: bool) -> Result<()> {
        self.settle_sums()?;
        self.check_writable()?;
        self.take_turn()?;
        let res = self.commit_ops_in_turn(ops, durable);
        self.end_turn();
        res
    }

    fn commit_ops_in_turn(&mut self, ops: Vec<Op>, durable: bool) -> Result<()> {
        self.commit_ops_at(ops, now_ns())?;
        if durable {
            self.sync_all()?;
        }
        Ok(())
    }

    /// Log ops built outside the planner with the given commit time (a
    /// checksum refresh carries the array's last change time, so that it
    /// does not change it) and apply them.
    pub(crate) fn commit_ops_at(&mut self, ops: Vec<Op>, time_ns: u64) -> Result<()> {
        let mut staged = self.state.clone();
        for op in &ops {
            staged
                .apply(op, time_ns)
                .map_err(|d| Error::Internal(format!("a session op does not apply: {d}")))?;
        }
        self.check_manifest_room(&ops)?;
        self.append_record(time_ns, &ops)?;
        let touched = touched_names(&ops);
        let before = self.entries_len(&touched);
        staged.seq = self.state.seq;
        staged.chain = self.state.chain;
        staged.gen = self.state.gen;
        self.state = staged;
        self.manifest_bytes =
            self.manifest_bytes - before.min(self.manifest_bytes) + self.entries_len(&touched);
        Ok(())
    }

    /// The files `ops` make unreferenced that can be released at once (see
    /// `Engine::fresh`), each with the array whose change released it.
    /// `batch_garbage`: what the ops of a multi-op commit made unreferenced.
    fn releasable(&self, ops: &[Op], batch_garbage: Option<&[u64]>) -> Vec<(String, u64)> {
        if self.fresh.is_empty() || self.sync == SyncPolicy::Always {
            return Vec::new();
        }
        let Some(g) = batch_garbage else {
            return ops
                .iter()
                .filter(|op| matches!(op, Op::Put { .. } | Op::Drop { .. } | Op::Compact { .. }))
                .filter_map(|op| {
                    let name = op.array_name();
                    let a = self.state.arrays.get(name)?;
                    // A file a version keeps, or another array names, stays.
                    let kept = self.state.file_refs.contains_key(&a.file_id);
                    (self.fresh.contains(&a.file_id) && !kept)
                        .then(|| (name.to_string(), a.file_id))
                })
                .collect();
        };
        let Some(name) = ops.first().map(|o| o.array_name().to_string()) else {
            return Vec::new();
        };
        g.iter()
            .filter(|id| self.fresh.contains(id))
            .map(|id| (name.clone(), *id))
            .collect()
    }

    fn discard_created(&mut self, created: &[u64]) {
        for id in created {
            self.files.retire(*id);
            let _ = self.vfs.remove_file(&self.files.path(*id));
        }
    }

    /// Write one record to the log; on success the chain and seq advance.
    fn append_record(&mut self, time_ns: u64, ops: &[Op]) -> Result<()> {
        let body = encode_body(time_ns, self.synced_seq, ops);
        // What is written must read back as written (the decoder is the
        // one recovery uses).
        debug_assert!(crate::format::record::decode_record_body(
            &[
                &(self.state.seq + 1).to_le_bytes()[..],
                &self.state.chain[..],
                &body[..],
            ]
            .concat()
        )
        .is_ok_and(|r| r.ops == ops));
        if body.len() > MAX_RECORD_BODY as usize {
            return Err(Error::LimitExceeded {
                what: format!(
                    "a commit of {} bytes (its log record); split it into smaller commits",
                    body.len()
                ),
                limit: u64::from(MAX_RECORD_BODY),
            });
        }
        let record_len = (crate::format::RECORD_HEADER_BYTES + body.len()) as u64;
        self.make_room(record_len)?;
        let always = self.sync == SyncPolicy::Always;
        if always && (self.presync || self.inherited) {
            // Data not carried inline must be durable before the record
            // (and data other handles wrote before a record that declares
            // theirs durable).
            if let Err(e) = self.files.sync_dirty() {
                let dir = self.files.data_dir.clone();
                self.poison(&dir);
                return Err(Error::io(dir, e));
            }
        }
        let Some(log) = self.log.as_mut() else {
            return Err(Error::Closed {
                path: self.dir.clone(),
            });
        };
        let seq = self.state.seq + 1;
        let prev = self.state.chain;
        let hash = match log.append(seq, &prev, &body, always) {
            Ok(h) => h,
            Err(f) => return Err(self.absorb(f)),
        };
        self.state.seq = seq;
        self.state.chain = hash;
        self.last_declared = self.synced_seq;
        if ops.iter().any(Op::checked_at_recovery) {
            self.last_checked_seq = seq;
        }
        // history: summarized at the checkpoint that folds this record.
        self.pending_history.push(CommitInfo {
            seq,
            time_ns,
            hash,
            prev_hash: prev,
            ops: ops.iter().filter_map(OpSummary::of).collect(),
            in_log: true,
        });
        self.after_record()
    }

    /// Keep the log within what readers accept (FORMAT.md §2.1): a record
    /// that would take it past the cap is preceded by a checkpoint, and
    /// refused if the checkpoint fails.
    fn make_room(&mut self, record_len: u64) -> Result<()> {
        let fits = |e: &Engine| e.log.as_ref().is_some_and(|l| l.fits(record_len));
        if fits(self) {
            return Ok(());
        }
        if let Err(e) = self.checkpoint() {
            return Err(Error::LimitExceeded {
                what: format!(
                    "the log is full and the checkpoint that would empty it failed ({e})"
                ),
                limit: crate::format::MAX_LOG_FILE_BYTES,
            });
        }
        if fits(self) {
            Ok(())
        } else {
            Err(Error::Internal("a new log cannot hold one record".into()))
        }
    }

    /// The durability step after a record is written (FORMAT.md §7.1 step 6).
    fn after_record(&mut self) -> Result<()> {
        match self.sync {
            SyncPolicy::Always => {
                self.note_syncing();
                self.sync_log_and_declare()?;
            }
            SyncPolicy::Group { .. } => {
                if self.dirty_since.is_none() {
                    self.dirty_since = Some(std::time::Instant::now());
                }
            }
            SyncPolicy::OnFlush | SyncPolicy::Never => {}
        }
        Ok(())
    }
}

/// Plan every intent: a single one against the engine's state (no copy of
/// it), several against a staged copy that each applies to in turn. A
/// failure carries the index of the intent.
fn plan_all(
    planner: &mut Planner<'_>,
    state: &State,
    intents: &[Intent<'_>],
    time_ns: u64,
    describe: &dyn Fn(usize) -> String,
) -> std::result::Result<Planned, (usize, Error)> {
    if let [intent] = intents {
        if needs_relocation(state, intent).is_none() {
            let ops = planner.plan(state, intent).map_err(|e| (0, e))?;
            return Ok(Planned {
                ops: ops.into_iter().collect(),
                staged: None,
            });
        }
    }
    let mut staged = state.clone();
    let mut ops = Vec::with_capacity(intents.len());
    let mut garbage = Vec::new();
    for (i, intent) in intents.iter().enumerate() {
        if let Some(name) = needs_relocation(&staged, intent) {
            let op = planner.relocate(&staged, name).map_err(|e| (i, e))?;
            let freed = staged.apply(&op, time_ns).map_err(|d| {
                (
                    i,
                    Error::Internal(format!("a relocation does not apply: {d}")),
                )
            })?;
            garbage.extend(freed);
            ops.push(op);
        }
        let Some(op) = planner.plan(&staged, intent).map_err(|e| (i, e))? else {
            continue;
        };
        let freed = staged.apply(&op, time_ns).map_err(|d| {
            let what = format!("a planned op ({}) does not apply: {d}", describe(i));
            (i, Error::Internal(what))
        })?;
        garbage.extend(freed);
        ops.push(op);
    }
    Ok(Planned {
        ops,
        staged: Some((staged, garbage)),
    })
}

/// The arrays `ops` change (a rename's both names), once each.
pub(crate) fn touched_names(ops: &[Op]) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::with_capacity(ops.len() + 1);
    for op in ops {
        names.push(op.array_name());
        if let Op::Rename { to, .. } = op {
            names.push(to);
        }
    }
    names.sort_unstable();
    names.dedup();
    names
}

/// An upper bound of the bytes `op` adds to the MANIFEST of `state`.
fn growth_bound(state: &State, op: &Op) -> u64 {
    let chunks = |bytes: u64| 4 * (bytes / crate::model::sums::CHUNK_BYTES + 2);
    let rb = |name: &str| state.arrays.get(name).map_or(0, |a| a.row_bytes);
    match op {
        Op::Put {
            name,
            row_shape,
            sums,
            ..
        } => 128 + name.len() as u64 + 8 * row_shape.len() as u64 + 4 * sums.sums.len() as u64,
        Op::Append { name, rows, .. } => 16 + chunks(rows.saturating_mul(rb(name))),
        Op::Replace { name, slots, .. } => {
            let n = slots.len() as u64;
            16 * n + chunks(n.saturating_mul(rb(name)))
        }
        Op::DeleteRows { slots, .. } => 16 * slots.len() as u64,
        Op::SetSums { sums, .. } => 4 * sums.sums.len() as u64,
        Op::Rename { to, .. } => to.len() as u64,
        Op::Compact { sums, .. } => 4 * sums.sums.len() as u64,
        Op::Restore { name, entry, .. } => {
            crate::format::manifest::entry_len(name, &entry.0) + 16 * 2
        }
        // The version list and file table grow by a few entries per array.
        Op::Snapshot { tag, .. } => {
            64 + tag.as_ref().map_or(0, |t| t.len() as u64) + 20 * state.arrays.len() as u64
        }
        Op::Drop { .. } | Op::Release { .. } | Op::DeleteVersion { .. } => 0,
    }
}

/// Dead rows (deleted, or superseded by replacements) worth a rewrite: this
/// fraction of the live rows...
const AUTO_COMPACT_DEAD_FRACTION: u64 = 16;
/// ... and at least this many (small arrays compact rarely; they are cheap
/// to read anyway).
const AUTO_COMPACT_MIN_DEAD: u64 = 4096;

/// Whether an array's history has made it slower to read than a freshly
/// saved one by more than the thresholds allow (see
/// `Engine::compact_where_needed`).
fn needs_compaction(a: &crate::model::state::ArrayMeta) -> bool {
    let rows = a.rows();
    let dead = a.dead_slots();
    let fragments = a.rowmap.extents().len() as u64;
    dead >= AUTO_COMPACT_MIN_DEAD.max(rows / AUTO_COMPACT_DEAD_FRACTION)
        || fragments > 64 + rows / 1024
}

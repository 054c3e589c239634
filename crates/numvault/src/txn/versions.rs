//! Versions (FORMAT.md §15): snapshot, delete and restore commits, the
//! upgrade to format 2, the version files a checkpoint writes, and the
//! state of a version for reading.

use std::sync::Arc;

use super::plan::Intent;
use super::Engine;
use crate::format::version::{encode_version_file, version_file_name, VERSIONS_DIR};
use crate::io::vfs::OpenMode;
use crate::model::error::{Error, IoContext, Result};
use crate::model::op::Op;
use crate::model::state::State;
use crate::model::version::{ArrayTable, Version};

/// A version named by its id or its tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VersionRef {
    Id(u64),
    Tag(String),
}

impl From<u64> for VersionRef {
    fn from(id: u64) -> Self {
        VersionRef::Id(id)
    }
}

impl From<&str> for VersionRef {
    fn from(tag: &str) -> Self {
        VersionRef::Tag(tag.to_string())
    }
}

impl std::fmt::Display for VersionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VersionRef::Id(id) => write!(f, "{id}"),
            VersionRef::Tag(t) => write!(f, "'{t}'"),
        }
    }
}

impl VersionRef {
    /// From text (a command line): a number is an id, anything else a tag.
    /// A tag that looks like a number is reached through
    /// [`VersionRef::Tag`].
    pub fn parse(s: &str) -> VersionRef {
        match s.parse::<u64>() {
            Ok(id) => VersionRef::Id(id),
            Err(_) => VersionRef::Tag(s.to_string()),
        }
    }
}

impl Engine {
    /// Version operations need format 2 (FORMAT.md §12).
    pub(crate) fn require_versions(&self, what: &str) -> Result<()> {
        if self.state.format < 2 {
            return Err(Error::NeedsUpgrade {
                path: self.dir.clone(),
                found: self.state.format,
                needed: 2,
                what: what.to_string(),
            });
        }
        Ok(())
    }

    /// The id of the version `v` names in the current state.
    pub(crate) fn resolve_version(&self, v: &VersionRef) -> Result<u64> {
        let found = match v {
            VersionRef::Id(id) => self.state.versions.contains_key(id).then_some(*id),
            VersionRef::Tag(t) => self.state.version_by_tag(t).map(|v| v.id),
        };
        found.ok_or_else(|| Error::NoSuchVersion {
            path: self.dir.clone(),
            version: v.to_string(),
        })
    }

    /// Pin the current state as a version; returns its id.
    pub(crate) fn snapshot(&mut self, tag: Option<&str>) -> Result<u64> {
        self.check_writable()?;
        self.require_versions("snapshot")?;
        if let Some(name) = self.busy.iter().next() {
            // Its bytes change in place: a version must not pin them.
            return Err(Error::InUse {
                array: name.clone(),
            });
        }
        self.commit(&[Intent::Snapshot { tag }])?;
        Ok(self.state.seq)
    }

    /// Run `f` in a turn (after catching up with other writers), as a
    /// commit does.
    fn in_turn<T>(&mut self, f: impl FnOnce(&mut Engine) -> Result<T>) -> Result<T> {
        self.settle_sums()?;
        self.check_writable()?;
        self.take_turn()?;
        let res = f(self);
        self.end_turn();
        res
    }

    /// Make version `id`'s array table resident in the state (planning a
    /// deletion or restore needs it).
    pub(crate) fn load_table(&mut self, id: u64) -> Result<Arc<ArrayTable>> {
        let table =
            crate::recovery::load_version_table(self.vfs.as_ref(), &self.dir, &self.state, id)?;
        if let Some(v) = self.state.versions.get(&id) {
            if v.arrays.is_none() {
                let mut v = (**v).clone();
                v.arrays = Some(table.clone());
                self.state.versions.insert(id, Arc::new(v));
            }
        }
        Ok(table)
    }

    /// Delete version `v` (its data files become garbage where nothing
    /// else keeps them, freed by the next checkpoint).
    pub(crate) fn delete_version(&mut self, v: &VersionRef) -> Result<()> {
        self.require_versions("delete_snapshot")?;
        let v = v.clone();
        self.in_turn(|e| {
            let id = e.resolve_version(&v)?;
            e.check_leases(id)?;
            e.load_table(id)?;
            e.commit_in_turn_plain(&[Intent::DeleteVersion { id }])?;
            e.remove_lease_file(id);
            Ok(())
        })
    }

    /// Restore all arrays (`names = None`: arrays the version lacks are
    /// dropped) or the named ones to their state in version `v`, as one
    /// commit, without copying data.
    pub(crate) fn restore(&mut self, v: &VersionRef, names: Option<&[String]>) -> Result<()> {
        self.require_versions("restore")?;
        let v = v.clone();
        self.in_turn(|e| {
            let id = e.resolve_version(&v)?;
            let table = e.load_table(id)?;
            let mut intents = Vec::new();
            match names {
                Some(names) => {
                    for n in names {
                        intents.push(Intent::Restore {
                            name: n,
                            version: id,
                        });
                    }
                }
                None => {
                    for n in e.state.arrays.keys() {
                        if !table.contains_key(n) {
                            intents.push(Intent::Drop { name: n });
                        }
                    }
                    for n in table.keys() {
                        intents.push(Intent::Restore {
                            name: n,
                            version: id,
                        });
                    }
                }
            }
            // The names borrow the state: plan from owned copies.
            let owned: Vec<(bool, String)> = intents
                .iter()
                .map(|i| match i {
                    Intent::Drop { name } => (true, name.to_string()),
                    Intent::Restore { name, .. } => (false, name.to_string()),
                    _ => (false, String::new()),
                })
                .collect();
            let intents: Vec<Intent<'_>> = owned
                .iter()
                .map(|(drop, name)| match drop {
                    true => Intent::Drop { name },
                    false => Intent::Restore { name, version: id },
                })
                .collect();
            e.commit_in_turn_plain(&intents)
        })
    }

    /// The state of version `v`, for a read-only handle (FORMAT.md §15.6).
    pub(crate) fn version_state(&mut self, v: &VersionRef) -> Result<State> {
        self.check_open()?;
        let id = self.resolve_version(v)?;
        let table = self.load_table(id)?;
        Ok(State {
            format: self.state.format,
            gen: self.state.gen,
            seq: id,
            chain: [0; 32],
            next_file_id: self.state.next_file_id,
            arrays: (*table).clone(),
            ..State::default()
        })
    }

    /// Every version, oldest first, with its array table.
    pub(crate) fn version_tables(&mut self) -> Result<Vec<(Arc<Version>, Arc<ArrayTable>)>> {
        self.check_open()?;
        let ids: Vec<u64> = self.state.versions.keys().copied().collect();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let table = self.load_table(id)?;
            if let Some(v) = self.state.versions.get(&id) {
                out.push((v.clone(), table));
            }
        }
        Ok(out)
    }

    /// Rewrite the store in format 2 (FORMAT.md §12): a checkpoint whose
    /// log and MANIFEST are of version 2. Nothing if it already is.
    pub(crate) fn upgrade(&mut self) -> Result<bool> {
        self.check_writable()?;
        if self.state.format >= crate::format::FORMAT_VERSION {
            return Ok(false);
        }
        self.in_turn(|e| {
            let old = e.state.format;
            e.state.format = crate::format::FORMAT_VERSION;
            e.force_checkpoint = true;
            let res = e.checkpoint_in_turn_pub();
            e.force_checkpoint = false;
            if res.is_err() && !e.is_poisoned() {
                e.state.format = old;
            }
            res.map(|_| true)
        })
    }

    /// Checkpoint step 2b (FORMAT.md §15.3): write the version file of
    /// every version taken since the last checkpoint, with checksums over
    /// all its rows, then fsync `versions/`.
    pub(super) fn write_version_files(&mut self) -> Result<()> {
        let pending: Vec<Arc<Version>> = self
            .state
            .versions
            .values()
            .filter(|v| !v.on_disk)
            .cloned()
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let vdir = self.dir.join(VERSIONS_DIR);
        let created = !self.vfs.exists(&vdir);
        if created {
            self.vfs.create_dir_all(&vdir).ctx(&vdir)?;
        }
        for v in pending {
            let Some(table) = v.arrays.clone() else {
                return Err(Error::Internal(format!(
                    "version {} has no table to write",
                    v.id
                )));
            };
            let table = self.with_full_sums(&table)?;
            let bytes = encode_version_file(&v, &table);
            let path = vdir.join(version_file_name(v.id));
            self.write_synced(&path, &bytes)?;
            let mut nv = (*v).clone();
            nv.arrays = Some(Arc::new(table));
            self.state.versions.insert(v.id, Arc::new(nv));
            self.versions_written.push(v.id);
        }
        self.sync_dir_or_poison(&vdir)?;
        if created {
            let dir = self.dir.clone();
            self.sync_dir_or_poison(&dir)?;
        }
        Ok(())
    }

    /// After the MANIFEST rename: the versions written are durable and
    /// listed; the files of deleted versions go.
    pub(super) fn after_version_files(&mut self) {
        for id in std::mem::take(&mut self.versions_written) {
            if let Some(v) = self.state.versions.get(&id) {
                let mut nv = (**v).clone();
                nv.on_disk = true;
                self.state.versions.insert(id, Arc::new(nv));
            }
        }
        let vdir = self.dir.join(VERSIONS_DIR);
        for id in std::mem::take(&mut self.dead_versions) {
            if !self.state.versions.contains_key(&id) {
                let _ = self.vfs.remove_file(&vdir.join(version_file_name(id)));
            }
        }
    }

    /// Note the versions that `ops` delete: their files go at the next
    /// checkpoint.
    pub(crate) fn note_dead_versions(&mut self, ops: &[Op]) {
        for op in ops {
            if let Op::DeleteVersion { id, .. } = op {
                self.dead_versions.push(*id);
            }
        }
    }

    /// `table` with every entry's checksums covering all its slots.
    fn with_full_sums(&mut self, table: &ArrayTable) -> Result<ArrayTable> {
        let mut out = table.clone();
        for (name, a) in table {
            if a.sums.covered >= a.phys_bytes() {
                continue;
            }
            let df = self.files.get(a.file_id)?;
            if let Some(sums) = super::checkpoint::extend_sums(&df, &a.sums, a.phys_bytes())? {
                let mut m = (**a).clone();
                m.sums = Arc::new(sums);
                m.cache = Default::default();
                out.insert(name.clone(), Arc::new(m));
            }
        }
        Ok(out)
    }

    /// temp file, write, fdatasync, rename over `path` (a failed sync
    /// poisons the handle).
    fn write_synced(&mut self, path: &std::path::Path, bytes: &[u8]) -> Result<()> {
        let tmp = path.with_extension("nvv.tmp");
        if self.vfs.exists(&tmp) {
            self.vfs.remove_file(&tmp).ctx(&tmp)?;
        }
        let f = self.vfs.open(&tmp, OpenMode::CreateNew).ctx(&tmp)?;
        f.write_all_at(bytes, 0).ctx(&tmp)?;
        if let Err(e) = f.sync_data() {
            self.poison(&tmp);
            return Err(Error::io(&tmp, e));
        }
        self.vfs.rename(&tmp, path).ctx(path)
    }

    fn sync_dir_or_poison(&mut self, dir: &std::path::Path) -> Result<()> {
        if let Err(e) = self.vfs.sync_dir(dir) {
            self.poison(dir);
            return Err(Error::io(dir, e));
        }
        Ok(())
    }
}

impl Engine {
    /// A read-only engine showing `state` (a version's), which never
    /// follows later commits.
    pub(crate) fn frozen(dir: &std::path::Path, opts: &super::OpenOptions, state: State) -> Engine {
        let mut e = Engine::new(dir, opts, true);
        e.frozen = Some(state.seq);
        e.state = state;
        e
    }

    /// Free what deleted versions, drops and overwrites left: a checkpoint.
    /// Returns the bytes of the data and version files it deleted.
    pub(crate) fn gc(&mut self) -> Result<u64> {
        self.check_writable()?;
        let vdir = self.dir.join(VERSIONS_DIR);
        let size = |e: &Engine, p: &std::path::Path| {
            e.vfs
                .open(p, OpenMode::Read)
                .and_then(|f| f.len())
                .unwrap_or(0)
        };
        let dead: u64 = self
            .dead_versions
            .iter()
            .map(|id| size(self, &vdir.join(version_file_name(*id))))
            .sum();
        let before = self.garbage_bytes() + dead;
        self.checkpoint()?;
        // What is still queued (a checkpoint that could not delete it)
        // was not freed.
        Ok(before.saturating_sub(self.garbage_bytes()))
    }
}

/// The directory of readers' leases on versions (FORMAT.md §15.7).
pub(crate) const LEASES_DIR: &str = "leases";

/// A lease on a version (FORMAT.md §15.7): a shared lock on
/// `leases/<id>.lease`, held while the version handle lives. Every reader of
/// the version shares that one file; a deleter that can lock it exclusively
/// knows nobody reads the version. A crashed reader's lock goes with its
/// process, so it never pins a version.
pub(crate) struct Lease {
    _lock: crate::io::vfs::LockGuard,
}

/// `leases/<id>.lease`.
pub(crate) fn lease_path(dir: &std::path::Path, id: u64) -> std::path::PathBuf {
    dir.join(LEASES_DIR).join(format!("{id:016x}.lease"))
}

impl Lease {
    /// Take a lease on version `id` of the store in `dir`. `None` where the
    /// store cannot be written (a read-only mount: nobody can delete the
    /// version there either) or the file system has no shared locks.
    pub(crate) fn take(
        vfs: &Arc<dyn crate::io::vfs::Vfs>,
        dir: &std::path::Path,
        id: u64,
    ) -> Result<Option<Lease>> {
        let path = lease_path(dir, id);
        let ldir = dir.join(LEASES_DIR);
        let taken = match vfs.exists(&ldir) {
            true => vfs.lock_shared(&path),
            false => vfs
                .create_dir_all(&ldir)
                .and_then(|_| vfs.lock_shared(&path)),
        };
        match taken {
            Ok(lock) => Ok(Some(Lease { _lock: lock })),
            Err(e) if e.kind() == std::io::ErrorKind::Unsupported || read_only_fs(&e) => Ok(None),
            Err(e) => Err(Error::io(&path, e)),
        }
    }
}

fn read_only_fs(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::PermissionDenied || e.raw_os_error() == Some(30)
    // EROFS
}

impl Engine {
    /// Fail with `VersionInUse` if a live reader holds a lease on version
    /// `id` (FORMAT.md §15.7).
    fn check_leases(&self, id: u64) -> Result<()> {
        let path = lease_path(&self.dir, id);
        if !self.vfs.exists(&path) {
            return Ok(());
        }
        match self.vfs.lock_exclusive(&path, None) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Err(Error::VersionInUse {
                version: id,
                holder: None,
            }),
            _ => Ok(()),
        }
    }

    /// After a version's deletion: its lease file goes (a reader that
    /// opens it meanwhile finds the version gone when it looks it up).
    fn remove_lease_file(&self, id: u64) {
        let _ = self.vfs.remove_file(&lease_path(&self.dir, id));
    }

    /// The versions the retention policy deletes now (FORMAT.md §15.8):
    /// untagged ones outside the newest `keep_last` and older than
    /// `keep_for` (each condition only if set), without a live lease.
    fn retention_victims(&self) -> Vec<u64> {
        let (keep_last, keep_for) = (self.keep_last, self.keep_for);
        if keep_last.is_none() && keep_for.is_none() {
            return Vec::new();
        }
        let untagged: Vec<&Arc<Version>> = self
            .state
            .versions
            .values()
            .filter(|v| v.tag.is_none())
            .collect();
        let now = crate::util::now_ns();
        let cut = untagged.len().saturating_sub(keep_last.unwrap_or(0));
        untagged
            .iter()
            .enumerate()
            .filter(|(i, v)| {
                let beyond = keep_last.is_none_or(|_| *i < cut);
                let old = keep_for.is_none_or(|d| {
                    now.saturating_sub(v.time_ns) > d.as_nanos().min(u64::MAX as u128) as u64
                });
                beyond && old
            })
            .map(|(_, v)| v.id)
            .filter(|id| self.check_leases(*id).is_ok())
            .collect()
    }

    /// Apply the retention policy (in a turn, before a checkpoint): one
    /// DeleteVersion commit per version it removes. A failure stops it;
    /// the checkpoint goes on.
    pub(super) fn apply_retention(&mut self) {
        for id in self.retention_victims() {
            if self.load_table(id).is_err()
                || self
                    .commit_in_turn_plain(&[Intent::DeleteVersion { id }])
                    .is_err()
            {
                return;
            }
            self.remove_lease_file(id);
        }
    }
}

//! [`Store`]'s versions (FORMAT.md §15): snapshots, time travel, diff,
//! restore, deletion and garbage collection, and the format upgrade.

use super::Store;
use crate::audit::diff::{diff_tables, ArrayDiff};
use crate::model::error::Result;
use crate::model::version::ArrayTable;
use crate::txn::versions::{Lease, VersionRef};
use crate::txn::{Engine, SyncPolicy};

/// Facts about one version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionInfo {
    /// Its id: the commit sequence number of its snapshot.
    pub id: u64,
    pub tag: Option<String>,
    /// When it was taken, ns since the Unix epoch.
    pub time_ns: u64,
    /// Its arrays, sorted.
    pub arrays: Vec<String>,
    /// Bytes of data files that only this version keeps (deleting it frees
    /// them).
    pub own_bytes: u64,
}

impl Store {
    /// Pin the current committed state as a version; returns its id. An
    /// optional unique `tag` names it. Costs a log record, whatever the
    /// data's size; durable under the store's sync policy like any commit.
    /// A format-1 store needs [`Store::upgrade`] first (`NeedsUpgrade`).
    pub fn snapshot(&self, tag: Option<&str>) -> Result<u64> {
        self.engine().snapshot(tag)
    }

    /// The versions, oldest first; with `name`, only those in which that
    /// array changed (was created, changed or dropped since the version
    /// before).
    pub fn versions(&self, name: Option<&str>) -> Result<Vec<VersionInfo>> {
        let mut g = self.engine();
        let tables = g.version_tables()?;
        let mut out = Vec::new();
        let mut prev: Option<&ArrayTable> = None;
        for (v, t) in &tables {
            let changed = name.is_none_or(|n| match (prev.and_then(|p| p.get(n)), t.get(n)) {
                (None, None) => false,
                (Some(a), Some(b)) => !a.same_rows(b),
                _ => true,
            });
            prev = Some(t);
            if !changed {
                continue;
            }
            out.push(VersionInfo {
                id: v.id,
                tag: v.tag.clone(),
                time_ns: v.time_ns,
                arrays: t.keys().cloned().collect(),
                own_bytes: own_bytes(&g, t),
            });
        }
        Ok(out)
    }

    /// The number of versions (no version file is read).
    pub fn version_count(&self) -> usize {
        self.engine().state.versions.len()
    }

    /// A read-only handle on version `v` (an id or a tag): every read works
    /// on it as on the current state. It does not follow later commits.
    pub fn at(&self, v: impl Into<VersionRef>) -> Result<Store> {
        let v = v.into();
        let mut g = self.engine();
        if g.read_only && g.frozen.is_none() && g.resolve_version(&v).is_err() {
            // Taken by the writer since this reader's last load.
            g.reader_refresh()?;
        } else if g.is_shared() && g.resolve_version(&v).is_err() {
            g.take_turn()?;
            g.end_turn();
        }
        let id = g.resolve_version(&v)?;
        // The lease first, then the version looked up again: a deleter
        // that did not see the lease committed its deletion before this
        // look (FORMAT.md §15.7).
        let lease = Lease::take(&g.vfs, &g.dir, id)?;
        if g.read_only && g.frozen.is_none() {
            g.reader_refresh()?;
        } else if g.is_shared() {
            g.take_turn()?;
            g.end_turn();
        }
        drop(g);
        self.at_leased(id, lease)
    }

    /// A handle on version `id`, whose lease the caller took before this
    /// handle's state was loaded.
    pub(crate) fn at_leased(&self, id: u64, lease: Option<Lease>) -> Result<Store> {
        let mut g = self.engine();
        let state = g.version_state(&VersionRef::Id(id))?;
        let opts = g.reopen_opts();
        drop(g);
        let mut e = Engine::frozen(self.path(), &opts, state);
        e.lease = lease;
        Store::start(e, self.path().to_path_buf(), SyncPolicy::Never)
    }

    /// The version this handle shows, if it was opened on one
    /// ([`Store::at`]).
    pub fn version(&self) -> Option<u64> {
        self.engine().frozen
    }

    /// What changed from version `a` to version `b` (`None`: the current
    /// state), per array, from metadata alone.
    pub fn diff(&self, a: impl Into<VersionRef>, b: Option<VersionRef>) -> Result<Vec<ArrayDiff>> {
        let a = a.into();
        let old = self.engine().version_state(&a)?.arrays;
        let new = match b {
            Some(b) => self.engine().version_state(&b)?.arrays,
            None => self.engine().state.arrays.clone(),
        };
        Ok(diff_tables(&old, &new))
    }

    /// Put all arrays (`names = None`; arrays the version lacks are
    /// dropped) or the named ones back to their state in version `v`, as
    /// one atomic commit, without copying data.
    pub fn restore(&self, v: impl Into<VersionRef>, names: Option<&[&str]>) -> Result<()> {
        let names: Option<Vec<String>> = names.map(|n| n.iter().map(|s| s.to_string()).collect());
        self.engine().restore(&v.into(), names.as_deref())
    }

    /// Delete version `v`. Its data stays until [`Store::gc`] (or the next
    /// checkpoint) frees what nothing else keeps.
    pub fn delete_snapshot(&self, v: impl Into<VersionRef>) -> Result<()> {
        self.engine().delete_version(&v.into())
    }

    /// Free the files that deleted versions, drops and overwrites left
    /// behind (a checkpoint); returns the bytes freed. O(files freed).
    pub fn gc(&self) -> Result<u64> {
        self.engine().gc()
    }

    /// Rewrite a format-1 store as format 2 (atomically, FORMAT.md §12);
    /// true if it was upgraded, false if it already was format 2.
    pub fn upgrade(&self) -> Result<bool> {
        self.engine().upgrade()
    }

    /// The store's format version (1 or 2).
    pub fn format_version(&self) -> u32 {
        self.engine().state.format
    }
}

/// Bytes of the data files that only the version of table `t` keeps.
fn own_bytes(g: &Engine, t: &ArrayTable) -> u64 {
    let mut counts: std::collections::HashMap<u64, (u32, u64)> = Default::default();
    for a in t.values() {
        let c = counts.entry(a.file_id).or_default();
        c.0 += 1;
        c.1 = c.1.max(a.phys_bytes());
    }
    counts
        .iter()
        .filter(|(id, (n, _))| {
            g.state.file_refs.get(*id).is_some_and(|r| r.versions == *n)
                && !g.state.arrays.values().any(|a| a.file_id == **id)
        })
        .map(|(id, (_, bytes))| {
            let end = g.state.file_refs.get(id).map_or(0, |r| r.end_slots);
            let rb = t
                .values()
                .find(|a| a.file_id == *id)
                .map_or(0, |a| a.row_bytes);
            (*bytes).max(end * rb)
        })
        .sum()
}

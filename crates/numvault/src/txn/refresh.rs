//! A read-only engine catching up with the writer (FORMAT.md §10.2).

use std::collections::HashSet;
use std::io;

use super::Engine;
use crate::model::error::{Error, Result};
use crate::recovery::{apply_new_records, load_manifest, Mode};

impl Engine {
    /// Load commits made since the last load: the records appended to the
    /// same generation's log, or a newer checkpoint and its log.
    pub(crate) fn reader_refresh(&mut self) -> Result<()> {
        self.check_open()?;
        if self.frozen.is_some() {
            // A version's handle shows that version only.
            return Ok(());
        }
        let (state, created) = load_manifest(self.vfs.as_ref(), &self.dir)?;
        if state.gen == self.state.gen && state.seq <= self.state.seq {
            return self.read_more();
        }
        let keep = std::mem::replace(
            &mut self.files,
            crate::data::FileTable::new(self.vfs.clone(), &self.dir, true, self.max_open_files),
        );
        self.state = state;
        self.created_ns = created;
        let same_boot = self.log_in_this_boot();
        match self.replay(Mode::Reader, same_boot) {
            Ok(_) => {
                // Keep handles of files still referenced.
                self.files = keep;
                self.files.retain(&self.live_files());
                Ok(())
            }
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                // A checkpoint raced us; try once more from the top.
                let mut fresh = Engine::load_reader(&self.dir, &self.reopen_opts())?.engine;
                fresh.files = keep;
                fresh.files.retain(&fresh.live_files());
                *self = fresh;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The data files the state references: its arrays' and those a
    /// version keeps (FORMAT.md §15.2).
    pub(crate) fn live_files(&self) -> HashSet<u64> {
        let mut live: HashSet<u64> = self.state.arrays.values().map(|a| a.file_id).collect();
        live.extend(self.state.file_refs.keys());
        live
    }

    /// Apply the valid records appended to the live log since the last load.
    fn read_more(&mut self) -> Result<()> {
        let Some(log) = self.log.as_mut() else {
            return Ok(());
        };
        log.end = apply_new_records(log.file.as_ref(), &log.path, log.end, &mut self.state)?;
        Ok(())
    }
}

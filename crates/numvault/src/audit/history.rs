//! The commit history: every commit summarized in HISTORY plus the records
//! of the live log, in seq order, with the hash chain checked from seq 1 to
//! the head (FORMAT.md §5.7).

use std::path::Path;

use super::{read_disk_pair, DiskPair, Problem};
use crate::format::history::{decode_file, CommitInfo, MAX_HISTORY_FILE_BYTES};
use crate::format::manifest::decode_manifest;
use crate::format::record::decode_log_header;
use crate::format::{HISTORY, LOG_HEADER_BYTES};
use crate::io::vfs::{OpenMode, Vfs};
use crate::log::read_capped;
use crate::log::walker::{LogEnd, LogWalker};
use crate::model::error::{IoContext, Result};
use crate::recovery::header_err;

/// What `Store::history` found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryReport {
    /// Every commit found, in seq order.
    pub commits: Vec<CommitInfo>,
    /// Sequence number and hash of the newest commit on disk (the chain head).
    pub head_seq: u64,
    pub head_hash: [u8; 32],
    /// Broken links, gaps, damaged bytes.
    pub problems: Vec<Problem>,
}

impl HistoryReport {
    /// True when the chain links every commit from seq 1 to the head.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

fn problem(file: &Path, range: Option<(u64, u64)>, detail: String) -> Problem {
    Problem {
        file: file.to_path_buf(),
        array: None,
        chunk: None,
        range,
        detail,
    }
}

/// Read the history of the store in `dir`: summaries from HISTORY (each
/// commit once, up to the MANIFEST's seq), then the live log's records
/// (hashes recomputed from their bytes), then the links between them.
pub(crate) fn read_history(vfs: &dyn Vfs, dir: &Path) -> Result<HistoryReport> {
    let mut rep = HistoryReport::default();
    let hpath = dir.join(HISTORY);
    let from_file = read_summaries(vfs, &hpath, &mut rep)?;
    let DiskPair {
        manifest_path,
        manifest,
        log,
    } = read_disk_pair(vfs, dir);
    let (ds, _) = decode_manifest(&manifest?).map_err(|e| header_err(&manifest_path, e))?;
    let mut commits = dedupe_summaries(from_file, ds.seq, &hpath, &mut rep);
    if let Some(last) = commits.last() {
        if last.seq == ds.seq && last.hash != ds.chain {
            let detail = format!(
                "commit {} does not match the MANIFEST's chain head",
                last.seq
            );
            rep.problems.push(problem(&hpath, None, detail));
        }
    }
    let (mut seq, mut chain) = (ds.seq, ds.chain);
    if let Some((lpath, log)) = log {
        let bytes = log?;
        decode_log_header(&bytes).map_err(|e| header_err(&lpath, e))?;
        let mut walker = LogWalker::new(&bytes, LOG_HEADER_BYTES, seq, chain);
        commits.extend(
            walker
                .by_ref()
                .map(|w| CommitInfo::of_record(&w.rec, w.hash)),
        );
        (seq, chain) = (walker.seq, walker.chain);
        let at = walker.pos();
        // An incomplete record may be a writer appending right now: it is
        // not part of the history yet.
        match walker.into_end() {
            LogEnd::Clean | LogEnd::Incomplete(_) => {}
            LogEnd::Damaged(e) => {
                let range = Some((at, bytes.len() as u64));
                rep.problems.push(problem(&lpath, range, e.what));
            }
            end @ LogEnd::ChainBroken { offset, len, .. } => {
                let range = Some((offset, offset + len));
                rep.problems.push(problem(&lpath, range, end.describe()));
            }
        }
    }
    rep.head_seq = seq;
    rep.head_hash = chain;
    check_links(&commits, seq, &hpath, &mut rep);
    rep.commits = commits;
    Ok(rep)
}

/// The summaries in HISTORY, in file order; damaged bytes are reported.
fn read_summaries(vfs: &dyn Vfs, hpath: &Path, rep: &mut HistoryReport) -> Result<Vec<CommitInfo>> {
    if !vfs.exists(hpath) {
        return Ok(Vec::new());
    }
    let f = vfs.open(hpath, OpenMode::Read).ctx(hpath)?;
    let bytes = read_capped(f.as_ref(), hpath, MAX_HISTORY_FILE_BYTES)?;
    let (entries, damaged) = decode_file(&bytes);
    for (s, e, why) in damaged {
        let detail = format!("damaged bytes skipped: {why}");
        rep.problems.push(problem(hpath, Some((s, e)), detail));
    }
    Ok(entries)
}

/// Summaries in seq order, up to the checkpointed `seq`. A checkpoint that
/// failed after writing them writes the same ones again: keep the first of
/// equal copies (different ones are a problem); summaries past `seq` were
/// written by a checkpoint that did not complete, and their records are
/// still in the log.
fn dedupe_summaries(
    mut from_file: Vec<CommitInfo>,
    seq: u64,
    hpath: &Path,
    rep: &mut HistoryReport,
) -> Vec<CommitInfo> {
    from_file.sort_by_key(|c| c.seq);
    let mut commits: Vec<CommitInfo> = Vec::with_capacity(from_file.len());
    for c in from_file.into_iter().filter(|c| c.seq <= seq) {
        match commits.last() {
            Some(last) if last.seq == c.seq => {
                if last.hash != c.hash {
                    let detail = format!("two different commits with seq {}", c.seq);
                    rep.problems.push(problem(hpath, None, detail));
                }
            }
            _ => commits.push(c),
        }
    }
    commits
}

/// Seq 1 starts from the zero hash; each next commit names the previous
/// one's hash; gaps are missing summaries.
fn check_links(commits: &[CommitInfo], head: u64, hpath: &Path, rep: &mut HistoryReport) {
    let mut prev: Option<&CommitInfo> = None;
    for c in commits {
        let (want_seq, want_hash) = match prev {
            Some(p) => (p.seq + 1, p.hash),
            None => (1, [0u8; 32]),
        };
        if c.seq != want_seq {
            let detail = format!(
                "no summary of commits {}..{} (history incomplete)",
                want_seq,
                c.seq - 1
            );
            rep.problems.push(problem(hpath, None, detail));
        } else if c.prev_hash != want_hash {
            let detail = format!(
                "commit {} does not link to commit {} (hash chain broken)",
                c.seq,
                c.seq.saturating_sub(1)
            );
            rep.problems.push(problem(hpath, None, detail));
        }
        prev = Some(c);
    }
    let last = commits.last().map_or(0, |c| c.seq);
    if last < head {
        let detail = format!(
            "no summary of commits {}..{head} (history incomplete)",
            last + 1
        );
        rep.problems.push(problem(hpath, None, detail));
    }
}

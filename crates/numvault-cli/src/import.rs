//! import and status: bring .npy/.npz/.csv/.parquet files into a store and
//! track them (size, mtime, content hash) in `<store>/imports.json`, so an
//! unchanged source is skipped on the next run and `status` can tell what
//! changed, appeared or disappeared.
//!
//! Change detection: a source whose size and mtime match its record is
//! unchanged (no read), unless `--rehash`; otherwise it is hashed, and only
//! a different content hash (or a missing array) re-imports it. The tracking
//! file is written atomically after the imported arrays are committed and
//! flushed, so a crash in between only makes the next run import again.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use clap::Args;
use globset::{Glob, GlobSet, GlobSetBuilder};
use indicatif::ProgressBar;
use numvault::{ArrayRef, Store, Txn};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::formats::{self, Format, Loaded};
use crate::inspect::open_ro;
use crate::out::{human_bytes, now_ns, table, Fail, Out};
use crate::{Common, HashAlgo};

/// File in the store directory holding the import records (owned by this
/// command; the engine ignores it).
pub(crate) const TRACKING: &str = "imports.json";
const TRACKING_VERSION: u32 = 1;

#[derive(Args, Debug)]
pub(crate) struct ImportArgs {
    #[command(flatten)]
    pub c: Common,
    /// Files or directories to import (directories recursively), or one
    /// NumPack store directory (holding metadata.npkm): imported whole, in
    /// one commit, without its deleted rows.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Read the source as this kind of store (default: a directory holding
    /// metadata.npkm is a NumPack store, anything else files).
    #[arg(long, value_enum)]
    pub from: Option<SourceKind>,
    /// Only files whose path relative to PATH matches this glob (repeatable).
    #[arg(long)]
    pub include: Vec<String>,
    /// Skip files whose path relative to PATH matches this glob (repeatable).
    #[arg(long)]
    pub exclude: Vec<String>,
    /// Put the arrays under this group: PREFIX/<relative path>.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Content hash used to detect changes.
    #[arg(long, value_enum, default_value = "xxh3")]
    pub hash: HashAlgo,
    /// Threads for hashing and parsing (default: the number of CPUs).
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// Hash every source even if its size and mtime are unchanged.
    #[arg(long)]
    pub rehash: bool,
    /// Show what would be imported without changing the store.
    #[arg(long)]
    pub dry_run: bool,
}

/// A kind of source store `--from` can force.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SourceKind {
    /// A NumPack 0.5-0.7 store directory.
    Numpack,
}

#[derive(Args, Debug)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    pub c: Common,
    /// Hash every tracked source even if its size and mtime are unchanged.
    #[arg(long)]
    pub rehash: bool,
    /// Threads for hashing (default: the number of CPUs).
    #[arg(long, short)]
    pub jobs: Option<usize>,
}

#[derive(Serialize, Deserialize, Default, Debug)]
struct Tracking {
    version: u32,
    /// What each import was asked to scan (status rescans these).
    roots: Vec<Root>,
    /// By absolute source path.
    sources: BTreeMap<String, Source>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
struct Root {
    path: String,
    prefix: String,
    include: Vec<String>,
    exclude: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
struct Source {
    root: String,
    size: u64,
    mtime_ns: u64,
    hash_algo: String,
    hash: String,
    arrays: Vec<String>,
    imported_ns: u64,
}

fn load_tracking(store: &Path) -> Result<Tracking, Fail> {
    let p = store.join(TRACKING);
    match fs::read(&p) {
        Ok(b) => {
            let t: Tracking = serde_json::from_slice(&b).map_err(|e| {
                Fail::Damage(format!("{}: not a valid import record: {e}", p.display()))
            })?;
            if t.version != TRACKING_VERSION {
                return Err(Fail::Error(format!(
                    "{}: import record version {} is not supported (this build: {TRACKING_VERSION})",
                    p.display(),
                    t.version
                )));
            }
            Ok(t)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Tracking {
            version: TRACKING_VERSION,
            ..Tracking::default()
        }),
        Err(e) => Err(Fail::Error(format!("{}: {e}", p.display()))),
    }
}

/// temp file + fsync + rename + directory fsync.
fn save_tracking(store: &Path, t: &Tracking) -> Result<(), Fail> {
    let p = store.join(TRACKING);
    let tmp = store.join(format!("{TRACKING}.tmp"));
    let io = |e: std::io::Error| Fail::Error(format!("{}: {e}", p.display()));
    let bytes = serde_json::to_vec_pretty(t).map_err(|e| Fail::Error(e.to_string()))?;
    {
        let mut f = fs::File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    fs::rename(&tmp, &p).map_err(io)?;
    fs::File::open(store)
        .and_then(|d| d.sync_all())
        .map_err(io)?;
    Ok(())
}

fn globs(patterns: &[String]) -> Result<Option<GlobSet>, Fail> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(Glob::new(p).map_err(|e| Fail::Usage(format!("bad glob {p:?}: {e}")))?);
    }
    b.build()
        .map(Some)
        .map_err(|e| Fail::Usage(format!("bad globs: {e}")))
}

/// A file found under a root.
#[derive(Clone, Debug)]
struct Candidate {
    abs: PathBuf,
    /// Path relative to the root, '/'-separated.
    rel: String,
    size: u64,
    mtime_ns: u64,
}

fn stat(p: &Path) -> std::io::Result<(u64, u64)> {
    let m = fs::metadata(p)?;
    let mtime = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    Ok((m.len(), mtime))
}

fn rel_string(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// The supported files under `root` (itself, if a file) passing the globs.
fn scan(
    root: &Path,
    include: &Option<GlobSet>,
    exclude: &Option<GlobSet>,
) -> Result<Vec<Candidate>, Fail> {
    let keep = |rel: &str| {
        include.as_ref().is_none_or(|g| g.is_match(rel))
            && !exclude.as_ref().is_some_and(|g| g.is_match(rel))
    };
    let mut out = Vec::new();
    if root.is_file() {
        let rel = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if Format::of_path(root).is_none() {
            return Err(Fail::Usage(format!(
                "{}: not a .npy, .npz, .csv or .parquet file",
                root.display()
            )));
        }
        if keep(&rel) {
            let (size, mtime_ns) = stat(root)?;
            out.push(Candidate {
                abs: root.to_path_buf(),
                rel,
                size,
                mtime_ns,
            });
        }
        return Ok(out);
    }
    if !root.is_dir() {
        return Err(Fail::Error(format!(
            "{}: no such file or directory",
            root.display()
        )));
    }
    for e in walkdir::WalkDir::new(root).sort_by_file_name() {
        let e = e.map_err(|e| Fail::Error(e.to_string()))?;
        if !e.file_type().is_file() || Format::of_path(e.path()).is_none() {
            continue;
        }
        let rel = rel_string(e.path().strip_prefix(root).unwrap_or(e.path()));
        if !keep(&rel) {
            continue;
        }
        let (size, mtime_ns) = stat(e.path())?;
        out.push(Candidate {
            abs: e.path().to_path_buf(),
            rel,
            size,
            mtime_ns,
        });
    }
    Ok(out)
}

/// Hash a file's content, reporting bytes read to `progress`.
pub(crate) fn hash_file(p: &Path, algo: HashAlgo, progress: &AtomicU64) -> std::io::Result<String> {
    let mut f = fs::File::open(p)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut x = xxhash_rust::xxh3::Xxh3::new();
    let mut b = blake3::Hasher::new();
    let mut s = <sha2::Sha256 as sha2::Digest>::new();
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        match algo {
            HashAlgo::Xxh3 => x.update(&buf[..n]),
            HashAlgo::Blake3 => {
                b.update(&buf[..n]);
            }
            HashAlgo::Sha256 => sha2::Digest::update(&mut s, &buf[..n]),
        }
        progress.fetch_add(n as u64, Ordering::Relaxed);
    }
    Ok(match algo {
        HashAlgo::Xxh3 => format!("{:032x}", x.digest128()),
        HashAlgo::Blake3 => b.finalize().to_hex().to_string(),
        HashAlgo::Sha256 => sha2::Digest::finalize(s)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    })
}

fn pool(jobs: Option<usize>) -> Result<rayon::ThreadPool, Fail> {
    let mut b = rayon::ThreadPoolBuilder::new();
    if let Some(j) = jobs {
        if j == 0 {
            return Err(Fail::Usage("--jobs must be at least 1".into()));
        }
        b = b.num_threads(j);
    }
    b.build().map_err(|e| Fail::Error(e.to_string()))
}

/// Hash `files` in parallel with a progress bar; results in input order.
fn hash_all(
    out: &Out,
    pool: &rayon::ThreadPool,
    files: &[(PathBuf, u64)],
    algo: HashAlgo,
) -> Vec<std::io::Result<String>> {
    let total: u64 = files.iter().map(|f| f.1).sum();
    let pb = out.bytes_bar(total, "hashing");
    let done = AtomicU64::new(0);
    let stop = AtomicU64::new(0);
    let res = std::thread::scope(|s| {
        let ticker = s.spawn(|| tick(&pb, &done, &stop));
        let r = pool.install(|| {
            files
                .par_iter()
                .map(|(p, _)| hash_file(p, algo, &done))
                .collect::<Vec<_>>()
        });
        stop.store(1, Ordering::Relaxed);
        let _ = ticker.join();
        r
    });
    pb.finish_and_clear();
    res
}

fn tick(pb: &ProgressBar, done: &AtomicU64, stop: &AtomicU64) {
    while stop.load(Ordering::Relaxed) == 0 {
        pb.set_position(done.load(Ordering::Relaxed));
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The array name of a source: prefix + relative path without extension.
fn array_name(prefix: &str, rel: &str) -> String {
    let stem = match rel.rfind('.') {
        Some(i) if !rel[i..].contains('/') => &rel[..i],
        _ => rel,
    };
    if prefix.is_empty() {
        stem.to_string()
    } else {
        format!("{}/{stem}", prefix.trim_end_matches('/'))
    }
}

fn arrays_exist(store: &Store, names: &[String]) -> bool {
    !names.is_empty() && names.iter().all(|n| store.has(n))
}

/// What happened to one source.
struct Outcome {
    path: String,
    state: &'static str,
    arrays: Vec<String>,
    rows: u64,
    bytes: u64,
    error: Option<String>,
}

impl Outcome {
    fn failed(path: String, error: String) -> Outcome {
        Outcome {
            path,
            state: "failed",
            arrays: vec![],
            rows: 0,
            bytes: 0,
            error: Some(error),
        }
    }
}

pub(crate) fn import(out: &Out, a: &ImportArgs) -> Result<(), Fail> {
    if numpack::wanted(a) {
        return numpack::import(out, a);
    }
    let include = globs(&a.include)?;
    let exclude = globs(&a.exclude)?;
    let prefix = a.prefix.clone().unwrap_or_default();
    if !prefix.is_empty() {
        numvault::validate_name(prefix.trim_end_matches('/'))
            .map_err(|e| Fail::Usage(format!("--prefix: {e}")))?;
    }
    // Every candidate, with its root.
    let mut cands: Vec<(String, Candidate)> = Vec::new();
    let mut roots = Vec::new();
    for p in &a.paths {
        let abs = fs::canonicalize(p).map_err(|e| Fail::Error(format!("{}: {e}", p.display())))?;
        let root = abs.display().to_string();
        for c in scan(&abs, &include, &exclude)? {
            cands.push((root.clone(), c));
        }
        roots.push(Root {
            path: root,
            prefix: prefix.clone(),
            include: a.include.clone(),
            exclude: a.exclude.clone(),
        });
    }
    // Two sources must not map to one array name (a.npy and a.csv).
    let mut by_name: BTreeMap<String, &Path> = BTreeMap::new();
    for (_, c) in &cands {
        let n = array_name(&prefix, &c.rel);
        if let Some(other) = by_name.insert(n.clone(), &c.abs) {
            return Err(Fail::Usage(format!(
                "{} and {} would both become array '{n}'; use --exclude or import them with different --prefix",
                other.display(),
                c.abs.display()
            )));
        }
    }
    let store = if a.dry_run {
        if a.c.store.is_dir() {
            Some(open_ro(&a.c.store)?)
        } else {
            None
        }
    } else {
        Some(Store::open(&a.c.store, numvault::OpenOptions::default())?)
    };
    let mut tracking = if a.c.store.is_dir() {
        load_tracking(&a.c.store)?
    } else {
        Tracking {
            version: TRACKING_VERSION,
            ..Tracking::default()
        }
    };
    let pool = pool(a.jobs)?;
    let algo = a.hash.name().to_string();

    // 1. Stat: unchanged sources need no read.
    let mut outcomes = Vec::new();
    let mut to_hash = Vec::new();
    for (root, c) in &cands {
        let key = c.abs.display().to_string();
        let prev = tracking.sources.get(&key);
        let exist = |s: &Source| store.as_ref().is_some_and(|st| arrays_exist(st, &s.arrays));
        match prev {
            Some(s)
                if !a.rehash
                    && s.size == c.size
                    && s.mtime_ns == c.mtime_ns
                    && s.hash_algo == algo
                    && exist(s) =>
            {
                outcomes.push(Outcome {
                    path: key,
                    state: "unchanged",
                    arrays: s.arrays.clone(),
                    rows: 0,
                    bytes: 0,
                    error: None,
                });
            }
            _ => to_hash.push((root.clone(), c.clone())),
        }
    }
    // 2. Hash the rest in parallel; equal content is only "touched".
    let files: Vec<(PathBuf, u64)> = to_hash
        .iter()
        .map(|(_, c)| (c.abs.clone(), c.size))
        .collect();
    let hashes = hash_all(out, &pool, &files, a.hash);
    let mut to_load = Vec::new();
    for ((root, c), h) in to_hash.into_iter().zip(hashes) {
        let key = c.abs.display().to_string();
        let h = match h {
            Ok(h) => h,
            Err(e) => {
                outcomes.push(Outcome::failed(key, format!("{}: {e}", c.abs.display())));
                continue;
            }
        };
        let prev = tracking.sources.get(&key).cloned();
        // Same content: same hash. With a different algorithm than recorded
        // the hashes cannot be compared; unchanged size and mtime decide, and
        // the record switches to the new algorithm.
        let same = prev.as_ref().is_some_and(|s| {
            let content = if s.hash_algo == algo {
                s.hash == h
            } else {
                s.size == c.size && s.mtime_ns == c.mtime_ns
            };
            content && store.as_ref().is_some_and(|st| arrays_exist(st, &s.arrays))
        });
        if same {
            if let Some(mut s) = prev {
                let arrays = s.arrays.clone();
                s.size = c.size;
                s.mtime_ns = c.mtime_ns;
                s.hash_algo = algo.clone();
                s.hash = h;
                if !a.dry_run {
                    tracking.sources.insert(key.clone(), s);
                }
                outcomes.push(Outcome {
                    path: key,
                    state: "unchanged",
                    arrays,
                    rows: 0,
                    bytes: 0,
                    error: None,
                });
            }
            continue;
        }
        to_load.push((root, c, h, prev));
    }
    if a.dry_run {
        for (_, c, _, prev) in &to_load {
            outcomes.push(Outcome {
                path: c.abs.display().to_string(),
                state: if prev.is_some() {
                    "would re-import"
                } else {
                    "would import"
                },
                arrays: vec![array_name(&prefix, &c.rel)],
                rows: 0,
                bytes: c.size,
                error: None,
            });
        }
        return report(out, &outcomes, true);
    }
    let Some(store) = store else {
        return Err(Fail::Error("internal: no store".into()));
    };
    // 3. Parse in parallel (bounded) and stage each source's arrays in one
    // transaction as they come (large ones go to staging files at once, so
    // memory holds only the sources being parsed); then commit the whole
    // import atomically.
    let mut txn = store.begin()?;
    let mut staged: Vec<(usize, Vec<String>, u64, u64)> = Vec::new();
    let total: u64 = to_load.iter().map(|(_, c, _, _)| c.size).sum();
    let pb = out.bytes_bar(total, "importing");
    let (tx, rx) =
        mpsc::sync_channel::<(usize, Result<Parsed, String>)>(pool.current_num_threads());
    let mut failed = false;
    std::thread::scope(|s| -> Result<(), Fail> {
        let list = &to_load;
        let pool = &pool;
        s.spawn(move || {
            pool.install(|| {
                list.par_iter()
                    .enumerate()
                    .for_each_with(tx, |tx, (i, (_, c, _, _))| {
                        let r = if Format::of_path(&c.abs) == Some(Format::Npy) {
                            Ok(Parsed::Stream)
                        } else {
                            formats::load(&c.abs)
                                .map(Parsed::Loaded)
                                .map_err(|e| e.to_string())
                        };
                        let _ = tx.send((i, r));
                    });
            });
        });
        for (i, loaded) in rx {
            let (_, c, _, prev) = &to_load[i];
            let key = c.abs.display().to_string();
            let base = array_name(&prefix, &c.rel);
            pb.set_message(base.clone());
            let res = loaded.and_then(|parsed| match parsed {
                Parsed::Loaded(arrs) => {
                    stage_source(&mut txn, &base, &arrs, prev.as_ref()).map_err(|e| e.to_string())
                }
                Parsed::Stream => stream_npy(&mut txn, &base, &c.abs, prev.as_ref()),
            });
            pb.inc(c.size);
            match res {
                Ok((names, rows, bytes)) => staged.push((i, names, rows, bytes)),
                Err(e) => {
                    failed = true;
                    outcomes.push(Outcome::failed(key, e));
                }
            }
        }
        Ok(())
    })?;
    pb.finish_and_clear();
    // One atomic commit: every staged source or, if it fails, none.
    if let Err(e) = txn.commit() {
        for (i, _, _, _) in &staged {
            let key = to_load[*i].1.abs.display().to_string();
            outcomes.push(Outcome::failed(
                key,
                format!("the import's commit failed: {e}"),
            ));
        }
        outcomes.sort_by(|x, y| x.path.cmp(&y.path));
        report(out, &outcomes, false)?;
        return Err(e.into());
    }
    for (i, names, rows, bytes) in staged {
        let (root, c, h, prev) = &to_load[i];
        let key = c.abs.display().to_string();
        let source = Source {
            root: root.clone(),
            size: c.size,
            mtime_ns: c.mtime_ns,
            hash_algo: algo.clone(),
            hash: h.clone(),
            arrays: names.clone(),
            imported_ns: now_ns(),
        };
        tracking.sources.insert(key.clone(), source);
        let state = if prev.is_some() {
            "re-imported"
        } else {
            "imported"
        };
        outcomes.push(Outcome {
            path: key,
            state,
            arrays: names,
            rows,
            bytes,
            error: None,
        });
    }
    // The arrays must be durable before the record says they were imported.
    store.close()?;
    for r in roots {
        if !tracking.roots.contains(&r) {
            tracking
                .roots
                .retain(|o| !(o.path == r.path && o.prefix == r.prefix));
            tracking.roots.push(r);
        }
    }
    save_tracking(&a.c.store, &tracking)?;
    outcomes.sort_by(|x, y| x.path.cmp(&y.path));
    report(out, &outcomes, false)?;
    if failed || outcomes.iter().any(|o| o.state == "failed") {
        return Err(Fail::Problems);
    }
    Ok(())
}

/// What a parse worker hands the staging thread: a source's arrays, or
/// word that it is a .npy file, which the staging thread streams into the
/// transaction itself (`stream_npy`).
enum Parsed {
    Loaded(Vec<Loaded>),
    Stream,
}

/// Rows per chunk of a streamed .npy: about this many bytes.
const STREAM_CHUNK: usize = 16 << 20;

/// Stage a .npy source by streaming its rows through the shared reader into
/// the transaction's staging file, so memory holds one chunk whatever the
/// file's size (a Fortran-order array of 2+ dimensions, or one whose rows
/// have no bytes, is read whole). A bad file stages nothing.
fn stream_npy(
    txn: &mut Txn,
    base: &str,
    path: &Path,
    prev: Option<&Source>,
) -> Result<(Vec<String>, u64, u64), String> {
    numvault::validate_name(base).map_err(|e| e.to_string())?;
    let mut r = formats::NpyReader::open(path).map_err(|e| e.to_string())?;
    let (rows, bytes) = (r.rows(), r.rows().saturating_mul(r.row_bytes()));
    if r.whole() || r.row_bytes() == 0 {
        let (dtype, shape, data) = r.read_all().map_err(|f| f.at(path).to_string())?;
        txn.save(base, ArrayRef::new(dtype, &shape, &data))
            .map_err(|e| e.to_string())?;
    } else {
        let per_chunk = r.rows_per_chunk(STREAM_CHUNK);
        let mut w = txn
            .save_stream(base, r.dtype(), &r.row_shape())
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        while r
            .next_rows(per_chunk, &mut buf)
            .map_err(|f| f.at(path).to_string())?
            > 0
        {
            w.write(&buf).map_err(|e| e.to_string())?;
        }
        w.finish().map_err(|e| e.to_string())?;
    }
    let names = vec![base.to_string()];
    drop_stale(txn, &names, prev).map_err(|e| e.to_string())?;
    Ok((names, rows, bytes))
}

/// Drop the arrays an earlier import of a source made that it no longer
/// has (an .npz member removed).
fn drop_stale(txn: &mut Txn, names: &[String], prev: Option<&Source>) -> numvault::Result<()> {
    let keep: BTreeSet<&String> = names.iter().collect();
    let stale: Vec<String> = prev
        .map(|s| {
            s.arrays
                .iter()
                .filter(|n| !keep.contains(n) && txn.has(n))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    for n in &stale {
        txn.drop_array(n)?;
    }
    Ok(())
}

/// Stage the saves of one source's arrays in the import's transaction;
/// drop arrays an earlier import of it made that it no longer has (an .npz
/// member removed).
fn stage_source(
    txn: &mut Txn,
    base: &str,
    arrs: &[Loaded],
    prev: Option<&Source>,
) -> Result<(Vec<String>, u64, u64), numvault::Error> {
    let names: Vec<String> = arrs
        .iter()
        .map(|l| match &l.member {
            Some(m) => format!("{base}/{m}"),
            None => base.to_string(),
        })
        .collect();
    for n in &names {
        numvault::validate_name(n)?;
    }
    for (l, n) in arrs.iter().zip(&names) {
        txn.save(n, ArrayRef::new(l.dtype, &l.shape, &l.data))?;
    }
    drop_stale(txn, &names, prev)?;
    let rows = arrs
        .iter()
        .map(|l| l.shape.first().copied().unwrap_or(0))
        .sum();
    let bytes = arrs.iter().map(|l| l.data.len() as u64).sum();
    Ok((names, rows, bytes))
}

fn report(out: &Out, outcomes: &[Outcome], dry_run: bool) -> Result<(), Fail> {
    let count = |s: &str| outcomes.iter().filter(|o| o.state == s).count();
    out.doc(&json!({
        "ok": !outcomes.iter().any(|o| o.state == "failed"),
        "dry_run": dry_run,
        "sources": outcomes.iter().map(|o| json!({
            "path": o.path, "state": o.state, "arrays": o.arrays, "rows": o.rows,
            "bytes": o.bytes, "error": o.error,
        })).collect::<Vec<_>>(),
        "imported": count("imported") + count("re-imported"),
        "unchanged": count("unchanged"),
        "failed": count("failed"),
    }))?;
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|o| {
            vec![
                o.state.to_string(),
                o.arrays.join(", "),
                if o.rows > 0 {
                    o.rows.to_string()
                } else {
                    String::new()
                },
                if o.bytes > 0 {
                    human_bytes(o.bytes)
                } else {
                    String::new()
                },
                o.error.clone().unwrap_or_else(|| o.path.clone()),
            ]
        })
        .collect();
    if !rows.is_empty() {
        for l in table(&["STATE", "ARRAYS", "ROWS", "BYTES", "SOURCE"], &rows) {
            out.line(l)?;
        }
    }
    out.line(format!(
        "{} sources: {} imported, {} unchanged, {} failed",
        outcomes.len(),
        count("imported") + count("re-imported") + count("would import") + count("would re-import"),
        count("unchanged"),
        count("failed")
    ))?;
    Ok(())
}

pub(crate) fn status(out: &Out, a: &StatusArgs) -> Result<(), Fail> {
    let store = open_ro(&a.c.store)?;
    let tracking = load_tracking(&a.c.store)?;
    let pool = pool(a.jobs)?;
    // Current files under every recorded root.
    let mut current: BTreeMap<String, (Candidate, String)> = BTreeMap::new();
    let mut unreadable = Vec::new();
    for r in &tracking.roots {
        let root = PathBuf::from(&r.path);
        if !root.exists() {
            continue; // its sources are reported as disappeared
        }
        match scan(&root, &globs(&r.include)?, &globs(&r.exclude)?) {
            Ok(cs) => {
                for c in cs {
                    current.insert(c.abs.display().to_string(), (c, r.prefix.clone()));
                }
            }
            Err(Fail::Error(e)) | Err(Fail::Usage(e)) => unreadable.push(e),
            Err(e) => return Err(e),
        }
    }
    let mut entries: Vec<(String, &'static str, Vec<String>)> = Vec::new();
    let mut to_hash = Vec::new();
    for (path, s) in &tracking.sources {
        match current.get(path) {
            None => entries.push((path.clone(), "disappeared", s.arrays.clone())),
            Some((c, _)) => {
                if !arrays_exist(&store, &s.arrays) {
                    entries.push((path.clone(), "array missing", s.arrays.clone()));
                } else if a.rehash || c.size != s.size || c.mtime_ns != s.mtime_ns {
                    to_hash.push((path.clone(), c.abs.clone(), c.size, s));
                } else {
                    entries.push((path.clone(), "unchanged", s.arrays.clone()));
                }
            }
        }
    }
    let mut by_algo: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, (_, _, _, s)) in to_hash.iter().enumerate() {
        by_algo.entry(s.hash_algo.as_str()).or_default().push(i);
    }
    let mut hashed: Vec<Option<std::io::Result<String>>> =
        (0..to_hash.len()).map(|_| None).collect();
    for (algo, idx) in by_algo {
        let Some(al) = HashAlgo::from_name(algo) else {
            for i in idx {
                hashed[i] = Some(Err(std::io::Error::other(format!("unknown hash {algo}"))));
            }
            continue;
        };
        let files: Vec<(PathBuf, u64)> = idx
            .iter()
            .map(|&i| (to_hash[i].1.clone(), to_hash[i].2))
            .collect();
        for (i, h) in idx.into_iter().zip(hash_all(out, &pool, &files, al)) {
            hashed[i] = Some(h);
        }
    }
    for ((path, _, _, s), h) in to_hash.iter().zip(hashed) {
        let state = match h {
            Some(Ok(h)) if h == s.hash => "touched",
            Some(Ok(_)) => "modified",
            _ => "unreadable",
        };
        entries.push((path.clone(), state, s.arrays.clone()));
    }
    for (path, (c, prefix)) in &current {
        if !tracking.sources.contains_key(path) {
            entries.push((path.clone(), "new", vec![array_name(prefix, &c.rel)]));
        }
    }
    entries.sort();
    let count = |s: &str| entries.iter().filter(|e| e.1 == s).count();
    let changed = entries
        .iter()
        .filter(|e| e.1 != "unchanged" && e.1 != "touched")
        .count();
    out.doc(&json!({
        "ok": unreadable.is_empty(),
        "sources": entries.iter().map(|(p, s, arrs)| json!({"path": p, "state": s, "arrays": arrs})).collect::<Vec<_>>(),
        "counts": {
            "unchanged": count("unchanged"), "touched": count("touched"), "modified": count("modified"),
            "new": count("new"), "disappeared": count("disappeared"), "array_missing": count("array missing"),
            "unreadable": count("unreadable"),
        },
        "changed": changed,
        "errors": unreadable,
    }))?;
    let rows: Vec<Vec<String>> = entries
        .iter()
        .filter(|e| e.1 != "unchanged")
        .map(|(p, s, arrs)| vec![s.to_string(), arrs.join(", "), p.clone()])
        .collect();
    if !rows.is_empty() {
        for l in table(&["STATE", "ARRAYS", "SOURCE"], &rows) {
            out.line(l)?;
        }
    }
    for e in &unreadable {
        out.line(format!("PROBLEM: {e}"))?;
    }
    out.line(format!(
        "{} tracked sources: {} unchanged, {} touched (mtime only), {} modified, {} disappeared, {} array missing; {} new",
        tracking.sources.len(),
        count("unchanged"),
        count("touched"),
        count("modified"),
        count("disappeared"),
        count("array missing"),
        count("new")
    ))?;
    if !unreadable.is_empty() || count("unreadable") > 0 {
        return Err(Fail::Problems);
    }
    Ok(())
}

mod numpack;

#[cfg(test)]
mod tests;

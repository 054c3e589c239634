//! Backward compatibility: stores written by the format-version-1 engine keep
//! opening, reading and verifying identically.
//!
//! `tests/fixtures/v1/<scenario>/` are store directories written once by the
//! version-1 engine (see `tests/fixtures/v1/README.md`), and
//! `tests/fixtures/v1/<scenario>.expected.json` lists what each holds: every
//! array's name, dtype, shape, mtime and the BLAKE3 of its logical C-order
//! bytes, and the store's `last_seq`. They are checked in and must never be
//! regenerated: a later engine writing them again would prove nothing.
//!
//! The tests open a fresh copy of each fixture (opening may recover, and so
//! rewrite, a store; the checked-in files are never opened in place) three
//! ways: read-only while nobody holds the lock (a store with a log tail is
//! then recovered under the lock, FORMAT.md §10.2), read-only while the test
//! holds the lock as a live writer would (the store is read as found and must
//! not change on disk), and as a writer (recovery), followed by an append to
//! every array, a reopen and a re-check.
//!
//! The generator `write_v1_fixtures` is `#[ignore]`d and writes nothing unless
//! `NUMVAULT_WRITE_V1_FIXTURES=1` is set:
//!
//! ```text
//! NUMVAULT_WRITE_V1_FIXTURES=1 cargo test -p numvault --release \
//!     --test backward_compat -- --ignored write_v1_fixtures
//! ```
//!
//! It refuses to run unless `numvault::FORMAT_VERSION == 1`, unless the
//! engine sources are committed, and if `tests/fixtures/v1` already exists.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use numvault::{ArrayRef, Batch, DType, Error, OpenOptions, Store, Sync, FORMAT_VERSION};
use serde_json::{json, Value};

/// Every scenario under `tests/fixtures/v1`; the test fails if the directory
/// holds others or lacks one.
const SCENARIOS: [&str; 10] = [
    "checkpointed",
    "log_tail",
    "writable_session",
    "session_crash",
    "torn_tail",
    "garbage_tail",
    "sync_always",
    "released",
    "crash_leftovers",
    "edge_shapes",
];

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn digest(bytes: &[u8]) -> String {
    hex(blake3::hash(bytes).as_bytes())
}

// ------------------------------------------------------------------ expected

#[derive(Clone, Debug)]
struct ExpArray {
    name: String,
    dtype: DType,
    shape: Vec<u64>,
    blake3: String,
    mtime_ns: u64,
}

impl ExpArray {
    fn rows(&self) -> u64 {
        self.shape[0]
    }
    fn row_bytes(&self) -> u64 {
        self.dtype.itemsize() as u64 * self.shape[1..].iter().product::<u64>()
    }
}

#[derive(Clone, Debug)]
struct Expected {
    last_seq: u64,
    /// The live log ends with bytes that are not a valid record (a torn or
    /// garbage tail that recovery drops).
    bad_log_tail: bool,
    arrays: Vec<ExpArray>,
}

fn load_expected(scenario: &str) -> Expected {
    let path = fixtures_dir().join(format!("{scenario}.expected.json"));
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(v["format_version"], 1, "{}", path.display());
    assert_eq!(v["scenario"], scenario, "{}", path.display());
    let u = |v: &Value| v.as_u64().unwrap_or_else(|| panic!("not a u64: {v}"));
    let arrays = v["arrays"]
        .as_array()
        .expect("arrays")
        .iter()
        .map(|a| ExpArray {
            name: a["name"].as_str().expect("name").to_string(),
            dtype: DType::from_name(a["dtype"].as_str().expect("dtype")).expect("dtype name"),
            shape: a["shape"]
                .as_array()
                .expect("shape")
                .iter()
                .map(u)
                .collect(),
            blake3: a["blake3"].as_str().expect("blake3").to_string(),
            mtime_ns: u(&a["mtime_ns"]),
        })
        .collect();
    Expected {
        last_seq: u(&v["last_seq"]),
        bad_log_tail: v["bad_log_tail"].as_bool().expect("bad_log_tail"),
        arrays,
    }
}

// ------------------------------------------------------------------ helpers

fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for entry in fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            fs::copy(entry.path(), &to).unwrap();
        }
    }
}

/// A fresh copy of a fixture store in a temporary directory.
fn fresh_copy(scenario: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(scenario);
    copy_dir(&fixtures_dir().join(scenario), &dir);
    (tmp, dir)
}

/// Relative path -> BLAKE3 of every file under `dir`.
fn tree_digest(dir: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel, digest(&fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn flip_byte(path: &Path, offset: usize) {
    let mut b = fs::read(path).unwrap();
    b[offset] ^= 0x5a;
    fs::write(path, b).unwrap();
}

fn row_of(data: &[u8], rb: u64, i: u64) -> &[u8] {
    &data[(i * rb) as usize..((i + 1) * rb) as usize]
}

fn norm(index: i64, rows: u64) -> u64 {
    if index < 0 {
        (rows as i64 + index) as u64
    } else {
        index as u64
    }
}

// ------------------------------------------------------------------ checks

/// Check every array of `store` against `exp` through every read path, and
/// the history. Returns the full bytes of every array.
/// `tail_problems_allowed`: the history may report a bad log tail.
fn check_contents(
    store: &Store,
    exp: &Expected,
    ctx: &str,
    tail_problems_allowed: bool,
) -> BTreeMap<String, Vec<u8>> {
    assert_eq!(store.last_seq(), exp.last_seq, "{ctx}: last_seq");
    let want: Vec<String> = exp.arrays.iter().map(|a| a.name.clone()).collect();
    let mut sorted = want.clone();
    sorted.sort();
    assert_eq!(store.list(""), sorted, "{ctx}: list(\"\")");
    assert_eq!(store.len(), want.len(), "{ctx}: len");
    let groups: BTreeSet<&str> = want
        .iter()
        .filter_map(|n| n.split_once('/').map(|(g, _)| g))
        .collect();
    for g in groups {
        let members: Vec<String> = sorted
            .iter()
            .filter(|n| n.starts_with(&format!("{g}/")))
            .cloned()
            .collect();
        assert_eq!(store.list(g), members, "{ctx}: list({g:?})");
    }

    let mut out = BTreeMap::new();
    for a in &exp.arrays {
        let n = a.name.as_str();
        let c = format!("{ctx}: array {n:?}");
        assert!(store.has(n), "{c}: has");
        assert_eq!(store.shape(n).unwrap(), a.shape, "{c}: shape");
        assert_eq!(store.dtype(n).unwrap(), a.dtype, "{c}: dtype");
        assert_eq!(store.mtime_ns(n).unwrap(), a.mtime_ns, "{c}: mtime_ns");
        let info = store.info(n).unwrap();
        assert_eq!((info.dtype, &info.shape), (a.dtype, &a.shape), "{c}: info");
        let rows = a.rows();
        let rb = a.row_bytes();

        // Verified whole reads.
        let full = store.read(n).unwrap_or_else(|e| panic!("{c}: read: {e}"));
        assert_eq!((full.dtype, &full.shape), (a.dtype, &a.shape), "{c}: read");
        assert_eq!(digest(&full.data), a.blake3, "{c}: read() BLAKE3");
        let full = full.data;
        let mut buf = vec![0u8; full.len()];
        assert_eq!(store.read_into(n, &mut buf).unwrap(), a.shape, "{c}");
        assert_eq!(digest(&buf), a.blake3, "{c}: read_into() BLAKE3");
        let reader = store.reader(n).unwrap();
        assert_eq!((reader.dtype(), reader.shape()), (a.dtype, a.shape.clone()));
        let mut buf = vec![0u8; reader.nbytes() as usize];
        reader.read_into(&mut buf).unwrap();
        assert_eq!(digest(&buf), a.blake3, "{c}: reader().read_into() BLAKE3");

        // Row ranges (clamped like Python slices).
        for (s, e) in [
            (0, rows),
            (0, 3),
            (rows / 3, 2 * rows / 3),
            (rows.saturating_sub(1), rows + 5),
            (rows + 2, rows + 10),
        ] {
            let r = store.read_rows(n, s, e).unwrap();
            let e2 = e.min(rows);
            let s2 = s.min(e2);
            let mut shape = a.shape.clone();
            shape[0] = e2 - s2;
            assert_eq!(
                (r.dtype, &r.shape),
                (a.dtype, &shape),
                "{c}: read_rows({s},{e})"
            );
            assert_eq!(
                r.data,
                full[(s2 * rb) as usize..(e2 * rb) as usize],
                "{c}: read_rows({s},{e})"
            );
        }

        // Views: whole, ranges, gathers, single rows.
        let view = store.view(n).unwrap();
        assert_eq!(
            (view.dtype(), view.shape(), view.rows()),
            (a.dtype, a.shape.clone(), rows)
        );
        assert_eq!(view.row_bytes(), rb, "{c}: row_bytes");
        let all = view.to_array().unwrap();
        assert_eq!(digest(&all.data), a.blake3, "{c}: view().to_array() BLAKE3");
        if let Some(cont) = view.contiguous() {
            assert_eq!(digest(cont), a.blake3, "{c}: view().contiguous() BLAKE3");
        }
        let mut part = vec![0u8; ((rows - rows / 2) * rb) as usize];
        view.read_range_into(rows / 2, rows, &mut part).unwrap();
        assert_eq!(
            part,
            full[((rows / 2) * rb) as usize..],
            "{c}: read_range_into"
        );
        let idx: Vec<i64> = if rows == 0 {
            Vec::new()
        } else {
            let r = rows as i64;
            vec![0, r - 1, r / 2, -1, 1 % r, -r, r / 3, r / 2]
        };
        let want_rows: Vec<u8> = idx
            .iter()
            .flat_map(|&i| row_of(&full, rb, norm(i, rows)).to_vec())
            .collect();
        let g = view.gather(&idx).unwrap();
        assert_eq!(g.shape[0], idx.len() as u64, "{c}: gather shape");
        assert_eq!(g.data, want_rows, "{c}: view().gather({idx:?})");
        let g = store.read_indices(n, &idx).unwrap();
        assert_eq!(g.data, want_rows, "{c}: read_indices({idx:?})");
        for &i in idx.iter().take(4) {
            assert_eq!(
                view.row(i).unwrap(),
                row_of(&full, rb, norm(i, rows)),
                "{c}: row({i})"
            );
        }
        assert!(view.row(rows as i64).is_err(), "{c}: row(rows) must fail");

        // Verified streaming in a few batch sizes.
        for size in [1u64, 7, 1000, u64::MAX] {
            let mut got = Vec::with_capacity(full.len());
            let mut batches = 0u64;
            for b in store.batches(n, size).unwrap() {
                let b = b.unwrap_or_else(|e| panic!("{c}: batches({size}): {e}"));
                assert_eq!(b.dtype, a.dtype);
                assert_eq!(b.shape[1..], a.shape[1..]);
                got.extend_from_slice(&b.data);
                batches += 1;
            }
            assert_eq!(batches, rows.div_ceil(size), "{c}: batches({size}) count");
            assert_eq!(digest(&got), a.blake3, "{c}: batches({size}) BLAKE3");
        }
        out.insert(a.name.clone(), full);
    }

    let h = store
        .history()
        .unwrap_or_else(|e| panic!("{ctx}: history(): {e}"));
    assert_eq!(h.head_seq, exp.last_seq, "{ctx}: history head_seq");
    let seqs: Vec<u64> = h.commits.iter().map(|c| c.seq).collect();
    assert_eq!(
        seqs,
        (1..=exp.last_seq).collect::<Vec<_>>(),
        "{ctx}: history seqs"
    );
    if tail_problems_allowed {
        assert_only_log_problems(&h.problems, &format!("{ctx}: history()"));
    } else {
        assert!(h.is_clean(), "{ctx}: history problems: {:#?}", h.problems);
    }
    out
}

/// A read-only handle that could not recover (the lock is held) sees a bad
/// log tail as damage or as a live writer's record in progress (FORMAT.md
/// §10.2, §14); it may report it, but nothing else may be wrong.
fn assert_only_log_problems(problems: &[numvault::Problem], ctx: &str) {
    for p in problems {
        let f = p.file.file_name().unwrap().to_string_lossy();
        assert!(f.starts_with("wal-"), "{ctx}: {p}");
    }
}

fn assert_verify_clean(store: &Store, ctx: &str) {
    let rep = store
        .verify()
        .unwrap_or_else(|e| panic!("{ctx}: verify(): {e}"));
    assert!(rep.is_clean(), "{ctx}: verify(): {:#?}", rep.problems);
}

fn check_scenario(scenario: &str) {
    let exp = load_expected(scenario);

    // A. Read-only, nobody holds the lock: a log tail is recovered under the
    // lock (FORMAT.md §10.2), then read. The copy has no LOCK file: a store
    // without one must open anyway.
    {
        let (_tmp, dir) = fresh_copy(scenario);
        let _ = fs::remove_file(dir.join("LOCK"));
        let ctx = format!("{scenario} (read-only)");
        let s = Store::open(&dir, OpenOptions::read_only())
            .unwrap_or_else(|e| panic!("{ctx}: open: {e}"));
        assert!(s.is_read_only());
        check_contents(&s, &exp, &ctx, false);
        assert_verify_clean(&s, &ctx);
        s.close().unwrap();
    }

    // B. Read-only while the lock is held, as by a live writer: no recovery,
    // the store is read as found and nothing on disk changes.
    {
        let (_tmp, dir) = fresh_copy(scenario);
        // The writer's lock is an exclusive flock on LOCK (FORMAT.md §1,
        // §10.1), which std's File::try_lock takes.
        let lock = fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("LOCK"))
            .unwrap();
        lock.try_lock().unwrap();
        let before = tree_digest(&dir);
        let ctx = format!("{scenario} (read-only, lock held)");
        let s = Store::open(&dir, OpenOptions::read_only())
            .unwrap_or_else(|e| panic!("{ctx}: open: {e}"));
        check_contents(&s, &exp, &ctx, exp.bad_log_tail);
        let rep = s.verify().unwrap();
        if exp.bad_log_tail {
            assert_only_log_problems(&rep.problems, &format!("{ctx}: verify()"));
        } else {
            assert!(rep.is_clean(), "{ctx}: verify(): {:#?}", rep.problems);
        }
        s.close().unwrap();
        assert_eq!(
            tree_digest(&dir),
            before,
            "{ctx}: a read-only open changed files"
        );
        drop(lock);
    }

    // C. Writer: recovery, then an append to every array in one commit,
    // close, reopen, and the old rows unchanged with the new ones after them.
    {
        let (_tmp, dir) = fresh_copy(scenario);
        let ctx = format!("{scenario} (writer)");
        let s = Store::open(&dir, OpenOptions::default())
            .unwrap_or_else(|e| panic!("{ctx}: open: {e}"));
        let old = check_contents(&s, &exp, &ctx, false);
        assert_verify_clean(&s, &ctx);

        let mut new_rows = BTreeMap::new();
        for (k, a) in exp.arrays.iter().enumerate() {
            let bytes: Vec<u8> = (0..2 * a.row_bytes())
                .map(|i| (i as usize * 31 + k * 7 + 1) as u8)
                .collect();
            new_rows.insert(a.name.clone(), bytes);
        }
        let shapes: Vec<Vec<u64>> = exp
            .arrays
            .iter()
            .map(|a| [&[2][..], &a.shape[1..]].concat())
            .collect();
        let mut batch = Batch::new();
        for (a, shape) in exp.arrays.iter().zip(&shapes) {
            batch.append(&a.name, ArrayRef::new(a.dtype, shape, &new_rows[&a.name]));
        }
        if !batch.is_empty() {
            s.commit(&batch)
                .unwrap_or_else(|e| panic!("{ctx}: append: {e}"));
        }
        s.close().unwrap();

        let mut after = exp.clone();
        if !exp.arrays.is_empty() {
            after.last_seq += 1;
        }
        for a in &mut after.arrays {
            a.shape[0] += 2;
            let mut data = old[&a.name].clone();
            data.extend_from_slice(&new_rows[&a.name]);
            a.blake3 = digest(&data);
        }
        let s = Store::open(&dir, OpenOptions::default())
            .unwrap_or_else(|e| panic!("{ctx}: reopen: {e}"));
        for a in &mut after.arrays {
            // Set by the append.
            a.mtime_ns = s.mtime_ns(&a.name).unwrap();
        }
        let ctx = format!("{ctx} after append and reopen");
        let got = check_contents(&s, &after, &ctx, false);
        for a in &exp.arrays {
            let g = &got[&a.name];
            let old_len = old[&a.name].len();
            assert_eq!(g[..old_len], old[&a.name], "{ctx}: {} old rows", a.name);
            assert_eq!(
                g[old_len..],
                new_rows[&a.name],
                "{ctx}: {} new rows",
                a.name
            );
        }
        assert_verify_clean(&s, &ctx);
        s.close().unwrap();
    }
}

macro_rules! scenario_tests {
    ($($name:ident),*) => {$(
        #[test]
        fn $name() {
            check_scenario(stringify!($name));
        }
    )*};
}

scenario_tests!(
    checkpointed,
    log_tail,
    writable_session,
    session_crash,
    torn_tail,
    garbage_tail,
    sync_always,
    released,
    crash_leftovers,
    edge_shapes
);

#[test]
fn fixture_tree_is_complete() {
    let root = fixtures_dir();
    assert!(root.join("README.md").is_file(), "fixtures/v1/README.md");
    let mut found = BTreeSet::new();
    for entry in fs::read_dir(&root).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(s) = name.strip_suffix(".expected.json") {
            found.insert(s.to_string());
        } else if root.join(&name).is_dir() {
            assert!(
                root.join(&name).join("MANIFEST").is_file(),
                "{name}: no MANIFEST"
            );
            assert!(
                root.join(format!("{name}.expected.json")).is_file(),
                "{name}: no expected.json"
            );
        } else {
            assert!(
                name == "README.md" || name == ".gitattributes",
                "unexpected file fixtures/v1/{name}"
            );
        }
    }
    let want: BTreeSet<String> = SCENARIOS.iter().map(|s| s.to_string()).collect();
    assert_eq!(found, want, "scenarios in fixtures/v1 vs SCENARIOS");
}

/// The checks above can fail: damage to a copy is reported through the real
/// checksum and hash-chain paths.
#[test]
fn damaged_copies_are_reported() {
    // A flipped byte in a checksummed data file: verified reads and verify()
    // report ChecksumMismatch; other arrays still read.
    let exp = load_expected("checkpointed");
    let (_tmp, dir) = fresh_copy("checkpointed");
    let name = "big/f32";
    let file = {
        let s = Store::open(&dir, OpenOptions::read_only()).unwrap();
        let info = s.info(name).unwrap();
        assert_eq!(
            info.unchecksummed_bytes, 0,
            "{name} must be fully checksummed"
        );
        dir.join(info.file)
    };
    let len = fs::metadata(&file).unwrap().len() as usize;
    flip_byte(&file, len / 2);
    for opts in [OpenOptions::read_only(), OpenOptions::default()] {
        let s = Store::open(&dir, opts).unwrap();
        match s.read(name) {
            Err(Error::ChecksumMismatch { array, chunk, .. }) => {
                assert_eq!((array.as_str(), chunk), (name, 0));
            }
            other => panic!("read of a damaged array: {other:?}"),
        }
        let batch_err = s.batches(name, 100).unwrap().find_map(|b| b.err());
        assert!(
            matches!(batch_err, Some(Error::ChecksumMismatch { .. })),
            "batches: {batch_err:?}"
        );
        let rep = s.verify().unwrap();
        assert!(!rep.is_clean());
        assert!(
            rep.problems
                .iter()
                .all(|p| p.array.as_deref() == Some(name) && p.chunk == Some(0)),
            "{:#?}",
            rep.problems
        );
        for a in exp.arrays.iter().filter(|a| a.name != name) {
            assert_eq!(digest(&s.read(&a.name).unwrap().data), a.blake3);
        }
        s.close().unwrap();
    }

    // A flipped byte in the MANIFEST body: the store does not open.
    let (_tmp, dir) = fresh_copy("checkpointed");
    flip_byte(&dir.join("MANIFEST"), 40);
    for opts in [OpenOptions::read_only(), OpenOptions::default()] {
        match Store::open(&dir, opts) {
            Err(e) => assert!(e.is_corruption(), "MANIFEST damage: {e}"),
            Ok(_) => panic!("a store with a damaged MANIFEST opened"),
        }
    }

    // A flipped byte in the first record of log_tail's log, which later
    // records declare durable (a flush came after it): Corrupt, not a
    // silently dropped tail.
    let (_tmp, dir) = fresh_copy("log_tail");
    let log = live_log(&dir);
    flip_byte(&log, 24 + 48 + 2);
    for opts in [OpenOptions::read_only(), OpenOptions::default()] {
        match Store::open(&dir, opts) {
            Err(e) => assert!(e.is_corruption(), "log damage: {e}"),
            Ok(_) => panic!("a store with a damaged durable record opened"),
        }
    }
}

/// The one live log of a store that has exactly one.
fn live_log(dir: &Path) -> PathBuf {
    let logs: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("wal-") && n.ends_with(".log")
        })
        .collect();
    assert_eq!(logs.len(), 1, "{}: logs {logs:?}", dir.display());
    logs[0].clone()
}

// ================================================================ generator

/// An array's full contents, as the generator's model holds it.
#[derive(Clone, Debug)]
struct Arr {
    dtype: DType,
    shape: Vec<u64>,
    data: Vec<u8>,
}

impl Arr {
    fn row_bytes(&self) -> usize {
        self.dtype.itemsize() * self.shape[1..].iter().product::<u64>() as usize
    }
    fn as_ref(&self) -> ArrayRef<'_> {
        ArrayRef::new(self.dtype, &self.shape, &self.data)
    }
    fn append(&mut self, other: &Arr) {
        assert_eq!(
            (self.dtype, &self.shape[1..]),
            (other.dtype, &other.shape[1..])
        );
        self.shape[0] += other.shape[0];
        self.data.extend_from_slice(&other.data);
    }
    fn replace(&mut self, idx: &[i64], new: &Arr) {
        let rb = self.row_bytes();
        for (j, &i) in idx.iter().enumerate() {
            let r = norm(i, self.shape[0]) as usize;
            self.data[r * rb..(r + 1) * rb].copy_from_slice(&new.data[j * rb..(j + 1) * rb]);
        }
    }
    fn delete(&mut self, idx: &[i64]) {
        let rb = self.row_bytes();
        let gone: BTreeSet<u64> = idx.iter().map(|&i| norm(i, self.shape[0])).collect();
        let mut data = Vec::new();
        for r in 0..self.shape[0] {
            if !gone.contains(&r) {
                data.extend_from_slice(row_of(&self.data, rb as u64, r));
            }
        }
        self.shape[0] -= gone.len() as u64;
        self.data = data;
    }
}

/// splitmix64: deterministic values from a fixed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn f64_val(i: u64, r: u64) -> f64 {
    match i {
        0 => -0.0,
        1 => f64::INFINITY,
        2 => f64::from_bits(0x7ff8_0000_dead_beef), // NaN with a payload
        3 => f64::MIN_POSITIVE / 4.0,               // subnormal
        _ => ((r % 2_000_001) as f64 - 1_000_000.0) / 1024.0,
    }
}

fn f32_val(i: u64, r: u64) -> f32 {
    match i {
        0 => -0.0,
        1 => f32::NEG_INFINITY,
        2 => f32::from_bits(0x7fc0_beef), // NaN with a payload
        3 => f32::MIN_POSITIVE / 8.0,     // subnormal
        _ => ((r % 200_001) as f32 - 100_000.0) / 64.0,
    }
}

fn gen_arr(rng: &mut Rng, dtype: DType, shape: &[u64]) -> Arr {
    let n: u64 = shape.iter().product();
    let mut data = Vec::with_capacity(n as usize * dtype.itemsize());
    for i in 0..n {
        let r = rng.next();
        match dtype {
            DType::Bool => data.push((r & 1) as u8),
            DType::F16 => {
                // +0, -0, 1, +inf, -inf, NaN, smallest subnormal, max; then
                // arbitrary finite values (exponent below all ones).
                const SPECIAL: [u16; 8] = [0, 0x8000, 0x3c00, 0x7c00, 0xfc00, 0x7e01, 1, 0x7bff];
                let v = SPECIAL
                    .get(i as usize)
                    .copied()
                    .unwrap_or((r as u16) & 0xbbff);
                data.extend_from_slice(&v.to_le_bytes());
            }
            DType::F32 => data.extend_from_slice(&f32_val(i, r).to_le_bytes()),
            DType::F64 => data.extend_from_slice(&f64_val(i, r).to_le_bytes()),
            DType::Complex64 => {
                data.extend_from_slice(&f32_val(i, r).to_le_bytes());
                data.extend_from_slice(&f32_val(i + 4, r >> 20).to_le_bytes());
            }
            DType::Complex128 => {
                data.extend_from_slice(&f64_val(i, r).to_le_bytes());
                data.extend_from_slice(&f64_val(i + 4, r >> 20).to_le_bytes());
            }
            _ => data.extend_from_slice(&r.to_le_bytes()[..dtype.itemsize()]),
        }
    }
    Arr {
        dtype,
        shape: shape.to_vec(),
        data,
    }
}

/// One change, for [`Gen::batch`].
enum Op {
    Save(String, Arr),
    Append(String, Arr),
    Replace(String, Vec<i64>, Arr),
    Delete(String, Vec<i64>),
    Drop(String),
    Rename(String, String),
}

/// A store being written, with a model of what it must contain.
struct Gen {
    dir: PathBuf,
    store: Store,
    model: BTreeMap<String, Arr>,
    rng: Rng,
}

impl Gen {
    fn new(root: &Path, scenario: &str, sync: Sync) -> Gen {
        let dir = root.join(scenario);
        let store = Store::open(&dir, OpenOptions::default().sync(sync)).unwrap();
        // A fixed seed per scenario.
        let seed = scenario.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        Gen {
            dir,
            store,
            model: BTreeMap::new(),
            rng: Rng(seed),
        }
    }

    fn arr(&mut self, dtype: DType, shape: &[u64]) -> Arr {
        gen_arr(&mut self.rng, dtype, shape)
    }

    /// New rows shaped like the rows of `name`.
    fn rows_like(&mut self, name: &str, rows: u64) -> Arr {
        let m = &self.model[name];
        let (dtype, shape) = (m.dtype, [&[rows][..], &m.shape[1..]].concat());
        self.arr(dtype, &shape)
    }

    fn save(&mut self, name: &str, dtype: DType, shape: &[u64]) {
        let a = self.arr(dtype, shape);
        self.store.save(name, a.as_ref()).unwrap();
        self.model.insert(name.to_string(), a);
    }

    fn append(&mut self, name: &str, rows: u64) {
        let a = self.rows_like(name, rows);
        self.store.append(name, a.as_ref()).unwrap();
        self.model.get_mut(name).unwrap().append(&a);
    }

    fn replace(&mut self, name: &str, idx: &[i64]) {
        let a = self.rows_like(name, idx.len() as u64);
        self.store.replace(name, idx, a.as_ref()).unwrap();
        self.model.get_mut(name).unwrap().replace(idx, &a);
    }

    fn delete(&mut self, name: &str, idx: &[i64]) {
        self.store.delete_rows(name, idx).unwrap();
        self.model.get_mut(name).unwrap().delete(idx);
    }

    fn rename(&mut self, from: &str, to: &str) {
        self.store.rename(from, to).unwrap();
        let a = self.model.remove(from).unwrap();
        self.model.insert(to.to_string(), a);
    }

    fn drop_array(&mut self, name: &str) {
        self.store.drop_array(name).unwrap();
        self.model.remove(name).unwrap();
    }

    fn compact(&mut self, name: &str) {
        self.store.compact(name).unwrap();
    }

    /// Commit `ops` as one record through [`Batch`].
    fn batch(&mut self, ops: Vec<Op>) {
        {
            let mut b = Batch::new();
            for op in &ops {
                match op {
                    Op::Save(n, a) => b.save(n, a.as_ref()),
                    Op::Append(n, a) => b.append(n, a.as_ref()),
                    Op::Replace(n, i, a) => b.replace(n, i, a.as_ref()),
                    Op::Delete(n, i) => b.delete_rows(n, i),
                    Op::Drop(n) => b.drop_array(n),
                    Op::Rename(f, t) => b.rename(f, t),
                };
            }
            self.store.commit(&b).unwrap();
        }
        for op in ops {
            match op {
                Op::Save(n, a) => {
                    self.model.insert(n, a);
                }
                Op::Append(n, a) => self.model.get_mut(&n).unwrap().append(&a),
                Op::Replace(n, i, a) => self.model.get_mut(&n).unwrap().replace(&i, &a),
                Op::Delete(n, i) => self.model.get_mut(&n).unwrap().delete(&i),
                Op::Drop(n) => {
                    self.model.remove(&n).unwrap();
                }
                Op::Rename(f, t) => {
                    let a = self.model.remove(&f).unwrap();
                    self.model.insert(t, a);
                }
            }
        }
    }

    /// The store reads back exactly the model.
    fn check(&self) {
        let names: Vec<String> = self.model.keys().cloned().collect();
        assert_eq!(self.store.list(""), names, "{}", self.dir.display());
        for (n, a) in &self.model {
            let got = self.store.read(n).unwrap();
            assert_eq!((got.dtype, &got.shape), (a.dtype, &a.shape), "{n}");
            assert!(
                got.data == a.data,
                "{}: {n}: data differs from the model",
                self.dir.display()
            );
        }
    }

    /// What the store holds now, as `<scenario>.expected.json` lists it.
    fn expected(&self, description: &str, bad_log_tail: bool) -> Value {
        self.check();
        let arrays: Vec<Value> = self
            .model
            .iter()
            .map(|(n, a)| {
                json!({
                    "name": n,
                    "dtype": a.dtype.name(),
                    "shape": a.shape,
                    "blake3": digest(&a.data),
                    "mtime_ns": self.store.mtime_ns(n).unwrap(),
                })
            })
            .collect();
        json!({
            "scenario": self.dir.file_name().unwrap().to_string_lossy(),
            "format_version": FORMAT_VERSION,
            "description": description,
            "last_seq": self.store.last_seq(),
            "bad_log_tail": bad_log_tail,
            "arrays": arrays,
        })
    }

    /// End like a process killed without closing: no final checkpoint, the
    /// log keeps its records. (The generator's process ends soon after; the
    /// lock and file handles go with it.)
    fn crash(self) {
        std::mem::forget(self.store);
    }

    fn close(self) {
        self.store.close().unwrap();
    }
}

const BIG: &str = "big/f32";

/// Arrays of every dtype and of several shapes, then deletions, replaces and
/// appends that leave several extents and remaps.
fn phase_create_and_edit(g: &mut Gen) {
    let mut ops = Vec::new();
    for (name, dtype, shape) in [
        ("dtypes/bool", DType::Bool, &[37][..]),
        ("dtypes/int8", DType::I8, &[64]),
        ("dtypes/int16", DType::I16, &[20, 3]),
        ("dtypes/int32", DType::I32, &[50, 4]),
        ("dtypes/int64", DType::I64, &[30, 2]),
        ("dtypes/uint8", DType::U8, &[16, 16]),
        ("dtypes/uint16", DType::U16, &[45]),
        ("dtypes/uint32", DType::U32, &[12, 2, 2]),
        ("dtypes/uint64", DType::U64, &[25]),
        ("dtypes/float16", DType::F16, &[40, 2]),
        ("dtypes/float32", DType::F32, &[33, 3]),
        ("dtypes/float64", DType::F64, &[60, 2]),
        ("dtypes/complex64", DType::Complex64, &[18, 2]),
        ("dtypes/complex128", DType::Complex128, &[22]),
    ] {
        let a = g.arr(dtype, shape);
        ops.push(Op::Save(name.to_string(), a));
    }
    g.batch(ops);
    g.save("grid/3d", DType::F32, &[12, 4, 5]);
    g.save("empty/zero_rows", DType::F64, &[0, 7]);
    g.save("empty/grown", DType::F32, &[0, 2]);
    g.append("empty/grown", 3);
    g.save("empty/emptied", DType::I8, &[5]);
    g.delete("empty/emptied", &[0, 1, 2, 3, 4]);

    // Deletions at the start, in the middle (one repeated index) and at the end.
    g.delete("dtypes/int32", &[0, 1]);
    g.delete("dtypes/int32", &[20, 21, 25, 21]);
    g.delete("dtypes/int32", &[-1, -2]);
    // Scattered replaces over several commits, one row replaced twice.
    g.replace("dtypes/float64", &[3, 17, 5, -1]);
    g.replace("dtypes/float64", &[3, 0, 10]);
    // Appends after the replaces, with a deletion between them: extents.
    g.append("dtypes/float64", 5);
    g.delete("dtypes/float64", &[30, 31, 58]);
    g.append("dtypes/float64", 4);
    g.replace("dtypes/float64", &[-1, -6]);
    g.delete("dtypes/float16", &[7]);
    g.append("dtypes/float16", 2);
}

/// Renames, a drop, an overwrite, payloads over 16 KiB (in-file).
fn phase_restructure(g: &mut Gen) {
    g.rename("dtypes/int16", "renamed/int16");
    g.drop_array("dtypes/uint8");
    // Overwrite with another dtype and shape.
    g.save("grid/3d", DType::F64, &[6, 4, 5]);
    // 1100 x 16 bytes = 17600 > 16 KiB: an in-file Put, then an in-file
    // Append (16800 bytes) and an in-file Replace (1030 rows, 16480 bytes),
    // then small inline ones.
    g.save(BIG, DType::F32, &[1100, 4]);
    g.append(BIG, 1050);
    let idx: Vec<i64> = (0..1030).rev().map(|k| k * 2).collect();
    g.replace(BIG, &idx);
    g.append(BIG, 3);
    g.replace(BIG, &[5, -1, 2100]);
    g.delete(BIG, &[10, 11, 2000]);
}

/// A compaction and a multi-op batch.
fn phase_compact_and_batch(g: &mut Gen) {
    g.replace("dtypes/int64", &[1, 2, -3]);
    g.delete("dtypes/int64", &[0, 15]);
    g.append("dtypes/int64", 4);
    g.compact("dtypes/int64");
    let int8 = g.rows_like("dtypes/int8", 8);
    let u64s = g.rows_like("dtypes/uint64", 2);
    let fresh = g.arr(DType::U32, &[9]);
    let short_lived = g.arr(DType::I8, &[3]);
    g.batch(vec![
        Op::Append("dtypes/int8".into(), int8),
        Op::Replace("dtypes/uint64".into(), vec![1, -1], u64s),
        Op::Delete("dtypes/complex64".into(), vec![0, 17]),
        Op::Rename("dtypes/bool".into(), "flags/bool".into()),
        Op::Save("new/in_batch".into(), fresh),
        Op::Save("new/short_lived".into(), short_lived),
        Op::Drop("new/short_lived".into()),
    ]);
    g.replace("dtypes/complex128", &[2, 3, 4]);
}

fn gen_checkpointed(root: &Path) -> Value {
    let mut g = Gen::new(root, "checkpointed", Sync::OnFlush);
    phase_create_and_edit(&mut g);
    g.store.checkpoint().unwrap();
    phase_restructure(&mut g);
    g.store.checkpoint().unwrap();
    phase_compact_and_batch(&mut g);
    let v = g.expected(
        "Every dtype; 1-D, 2-D, 3-D and 0-row arrays; '/' groups; deletions at the start, middle \
         and end; scattered replaces over several commits; appends after replaces (several \
         extents); rename, drop, overwrite with another dtype, in-file (>16 KiB) put, append and \
         replace; a compaction; a multi-op batch. Closed cleanly: the last checkpoint folded the \
         log into the MANIFEST (generation 3, empty log) and HISTORY holds every commit.",
        false,
    );
    g.close();
    v
}

fn gen_log_tail(root: &Path) -> Value {
    let mut g = Gen::new(root, "log_tail", Sync::OnFlush);
    phase_create_and_edit(&mut g);
    g.store.checkpoint().unwrap();
    phase_restructure(&mut g);
    g.store.flush().unwrap();
    phase_compact_and_batch(&mut g);
    let v = g.expected(
        "The same history as 'checkpointed', but the process ended without closing: one \
         checkpoint in the middle (generation 1, HISTORY), then renames, drop, overwrite, \
         in-file payloads, a flush (so later records carry synced_seq > 0), a compaction and a \
         batch, all still in the log with inline redo payloads.",
        false,
    );
    g.crash();
    v
}

fn gen_writable_session(root: &Path) -> Value {
    let mut g = Gen::new(root, "writable_session", Sync::OnFlush);
    g.save("w/f32", DType::F32, &[64, 8]);
    g.save("w/i16", DType::I16, &[100]);
    g.save("w/remapped", DType::F64, &[40, 3]);
    g.replace("w/remapped", &[2, 7, -1]);
    g.save("w/trimmed", DType::U32, &[50]);
    g.delete("w/trimmed", &[-1, -2]);

    fn session(g: &mut Gen, name: &str, salt: u8) {
        let mut w = g.store.writable(name).unwrap();
        let bytes = w.bytes_mut();
        for (i, b) in bytes.iter_mut().enumerate() {
            if i % 5 == 0 {
                *b = b.wrapping_mul(3).wrapping_add(salt);
            }
        }
        let new = bytes.to_vec();
        w.finish().unwrap();
        let m = g.model.get_mut(name).unwrap();
        assert_eq!(m.data.len(), new.len());
        m.data = new;
    }
    // A session on a plain array (the start checkpoints first: its data
    // was written since the last checkpoint).
    session(&mut g, "w/f32", 1);
    g.append("w/f32", 4);
    // Replaced rows: the session compacts them first.
    session(&mut g, "w/remapped", 2);
    // Rows deleted at the end only: allowed in place.
    session(&mut g, "w/trimmed", 3);
    g.append("w/i16", 7);
    g.replace("w/f32", &[0, -1]);
    session(&mut g, "w/i16", 4);
    g.rename("w/i16", "w/i16_renamed");
    g.append("w/trimmed", 2);
    let v = g.expected(
        "Writable sessions (bytes_mut, finish) under OnFlush: on a plain array, on one with \
         replaced rows (compacted first), on one with rows deleted at the end; commits after \
         each. Not closed: the last session's start and end (SetSums) records and the later \
         commits are in the log.",
        false,
    );
    g.crash();
    v
}

fn gen_session_crash(root: &Path) -> Value {
    let mut g = Gen::new(root, "session_crash", Sync::OnFlush);
    g.save("s/a", DType::F32, &[32, 4]);
    g.save("s/b", DType::I64, &[10]);
    g.append("s/b", 2);
    let mut w = g.store.writable("s/a").unwrap();
    for (i, b) in w.bytes_mut().iter_mut().enumerate() {
        if i % 3 == 0 {
            *b ^= 0xa5;
        }
    }
    // A checkpoint during the session: the MANIFEST keeps the array's
    // checksums suspended (covered = 0).
    g.store.checkpoint().unwrap();
    for b in w.bytes_mut().iter_mut().step_by(11) {
        *b = b.wrapping_add(0x11);
    }
    g.append("s/b", 3);
    let new = w.bytes_mut().to_vec();
    g.model.get_mut("s/a").unwrap().data = new;
    let v = g.expected(
        "A process killed during a writable session: the session started (SetSums covered = 0), \
         its bytes were changed in place through the mapping, a checkpoint during the session \
         wrote a MANIFEST with the array's checksums suspended, more bytes changed, another \
         array got an append (in the log), and finish() never ran. The array holds the changed \
         bytes.",
        false,
    );
    std::mem::forget(w);
    g.crash();
    v
}

fn gen_torn_tail(root: &Path) -> Value {
    let mut g = Gen::new(root, "torn_tail", Sync::OnFlush);
    phase_create_and_edit(&mut g);
    g.store.checkpoint().unwrap();
    g.rename("dtypes/int16", "renamed/int16");
    g.save(BIG, DType::F32, &[1100, 4]);
    g.store.flush().unwrap();
    g.replace("dtypes/float64", &[1, 2]);
    g.append("dtypes/int32", 3);
    let v = g.expected(
        "The first part of log_tail's history, a checkpoint, then a rename, an in-file save, a \
         flush and two small commits in the log; then one more commit (an append and a replace \
         in one batch) whose record was cut 7 bytes short, as by a crash during its write: \
         recovery drops it. The expected state is the one before that commit.",
        true,
    );
    let a = g.rows_like("dtypes/int32", 2);
    let b = g.rows_like("dtypes/uint16", 3);
    g.batch(vec![
        Op::Append("dtypes/int32".into(), a),
        Op::Replace("dtypes/uint16".into(), vec![0, 1, 2], b),
    ]);
    let log = live_log(&g.dir);
    g.crash();
    let len = fs::metadata(&log).unwrap().len();
    let f = fs::OpenOptions::new().write(true).open(&log).unwrap();
    f.set_len(len - 7).unwrap();
    v
}

fn gen_garbage_tail(root: &Path) -> Value {
    let mut g = Gen::new(root, "garbage_tail", Sync::OnFlush);
    g.save("g/a", DType::U16, &[30, 2]);
    g.save("g/b", DType::F64, &[12]);
    g.store.checkpoint().unwrap();
    g.append("g/a", 5);
    g.delete("g/b", &[3]);
    g.replace("g/a", &[0, -1]);
    const GARBAGE: &[u8] = b"NOT A RECORD: bytes of a write that never completed \x01\x02\x03\xff";
    let v = g.expected(
        &format!(
            "Complete records, then {} bytes that are not a record (non-zero garbage after the \
             last record, as from an unsynced write that never completed): recovery truncates \
             them, every record stays.",
            GARBAGE.len()
        ),
        true,
    );
    let log = live_log(&g.dir);
    g.crash();
    let mut bytes = fs::read(&log).unwrap();
    bytes.extend_from_slice(GARBAGE);
    fs::write(&log, bytes).unwrap();
    v
}

fn gen_sync_always(root: &Path) -> Value {
    let mut g = Gen::new(root, "sync_always", Sync::Always);
    g.save("a/small", DType::I32, &[40, 3]);
    g.save(BIG, DType::F32, &[1100, 4]);
    g.save("a/c128", DType::Complex128, &[10, 2]);
    g.store.checkpoint().unwrap();
    // A session first: its start would checkpoint if the log held payloads
    // written into its file.
    let mut w = g.store.writable("a/c128").unwrap();
    for b in w.bytes_mut().iter_mut().step_by(7) {
        *b = b.wrapping_add(1);
    }
    let new = w.bytes_mut().to_vec();
    w.finish().unwrap();
    g.model.get_mut("a/c128").unwrap().data = new;
    g.append(BIG, 1050);
    g.append("a/small", 2);
    g.replace("a/small", &[0, 5, -1]);
    g.delete("a/small", &[1]);
    g.rename("a/c128", "b/c128");
    g.compact("a/small");
    g.append("b/c128", 1);
    g.save("a/f64", DType::F64, &[1100, 2]);
    let v = g.expected(
        "Written under Sync::Always and not closed: a checkpoint, then a writable session \
         (its end synced), in-file payloads with synced = 1 (append, put), a compaction and \
         small commits, all in the log, which ends with preallocated, fdatasynced zero bytes \
         after its last record.",
        false,
    );
    g.crash();
    v
}

fn gen_released(root: &Path) -> Value {
    let mut g = Gen::new(root, "released", Sync::OnFlush);
    g.save("r/keep", DType::I16, &[20, 2]);
    // In-file Puts made unreferenced before any sync: the records carry
    // Release ops and the files are deleted at once.
    g.save("r/over", DType::F32, &[1100, 4]);
    g.save("r/over", DType::F32, &[1100, 4]); // Put over: releases the first
    g.save("r/dropped", DType::F32, &[1100, 4]);
    g.drop_array("r/dropped"); // Drop: releases its file
    g.save("r/compacted", DType::F32, &[1100, 4]);
    g.delete("r/compacted", &[0, 5, 1099]);
    g.compact("r/compacted"); // Compact: releases the original file
    let data = g.dir.join("data");
    let files = fs::read_dir(&data).unwrap().count();
    assert_eq!(files, 3, "released files must be gone from data/");
    g.store.flush().unwrap();
    // After a sync the file is not released: it waits for the checkpoint.
    g.save("r/over", DType::F32, &[1100, 4]);
    g.append("r/keep", 3);
    let files = fs::read_dir(&data).unwrap().count();
    assert_eq!(
        files, 4,
        "the synced file overwritten stays until a checkpoint"
    );
    let v = g.expected(
        "Generation 0, never checkpointed, no HISTORY: in-file saves overwritten, dropped and \
         compacted before any sync, so their records carry Release ops and the files were \
         deleted at once; recovery accepts the records whose data files are gone. Then a flush \
         and an overwrite whose old file is only queued (still in data/).",
        false,
    );
    g.crash();
    v
}

fn gen_crash_leftovers(root: &Path) -> Value {
    let mut g = Gen::new(root, "crash_leftovers", Sync::OnFlush);
    g.save("c/a", DType::I32, &[20, 2]);
    g.save("c/doomed", DType::U8, &[100]);
    g.store.checkpoint().unwrap();
    let doomed = g.dir.join(g.store.info("c/doomed").unwrap().file);
    let doomed_bytes = fs::read(&doomed).unwrap();
    g.drop_array("c/doomed");
    g.append("c/a", 3);
    let old_log = live_log(&g.dir);
    let old_log_bytes = fs::read(&old_log).unwrap();
    let manifest = fs::read(g.dir.join("MANIFEST")).unwrap();
    let v = g.expected(
        "Closed cleanly, then given the leftovers of crashed checkpoints: the previous \
         generation's log (with records) and the data file of a dropped array (a crash in step \
         5, before their deletion), an empty log of the next generation and a half-written \
         MANIFEST.tmp (a crash in steps 3-4 of a later checkpoint). All are garbage.",
        false,
    );
    let dir = g.dir.clone();
    g.close();
    let live = live_log(&dir);
    assert!(!doomed.exists() && !old_log.exists());
    fs::write(&doomed, doomed_bytes).unwrap();
    fs::write(&old_log, old_log_bytes).unwrap();
    fs::write(dir.join("MANIFEST.tmp"), &manifest[..manifest.len() / 2]).unwrap();
    let gen = u64::from_str_radix(
        live.file_name()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("wal-")
            .trim_end_matches(".log"),
        16,
    )
    .unwrap();
    fs::write(dir.join(format!("wal-{:016x}.log", gen + 1)), b"").unwrap();
    v
}

fn gen_edge_shapes(root: &Path) -> Value {
    let mut g = Gen::new(root, "edge_shapes", Sync::OnFlush);
    // 32 dimensions (MAX_NDIM), zero-width rows, a 255-byte name, non-ASCII
    // names, deep groups.
    let mut shape32 = vec![3u64];
    shape32.extend(std::iter::repeat_n(1, 29));
    shape32.extend([2, 2]);
    assert_eq!(shape32.len(), numvault::MAX_NDIM);
    g.save("deep/ndim32", DType::U8, &shape32);
    g.save("deep/a/b/c/d/zero_width", DType::I32, &[5, 0]);
    g.save("deep/zero_width_3d", DType::F16, &[4, 3, 0]);
    let long = format!("long/{}", "n".repeat(250));
    assert_eq!(long.len(), numvault::MAX_NAME_BYTES);
    g.save(&long, DType::I16, &[4]);
    g.save("unicodé/ärräy/日本", DType::U16, &[6]);
    g.save("single", DType::Complex64, &[1]);
    g.store.checkpoint().unwrap();
    g.append("deep/ndim32", 2);
    g.delete("deep/ndim32", &[0]);
    g.append("deep/a/b/c/d/zero_width", 3);
    g.delete("deep/a/b/c/d/zero_width", &[1, -1]);
    g.replace("deep/zero_width_3d", &[0, 3]);
    g.replace(&long, &[-1]);
    g.rename("single", "unicodé/single");
    g.store.checkpoint().unwrap();
    g.append("unicodé/ärräy/日本", 2);
    let v = g.expected(
        "Edge shapes and names: 32 dimensions, rows of zero bytes (appended, deleted and \
         replaced), a 255-byte name, non-ASCII names, deep groups, a one-row array; two \
         checkpoints, then one record left in the log (not closed).",
        false,
    );
    g.crash();
    v
}

fn git(args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Writes `tests/fixtures/v1`. Run once, by the version-1 engine; see the
/// module documentation.
#[test]
#[ignore = "writes the version-1 fixtures on request (NUMVAULT_WRITE_V1_FIXTURES=1)"]
fn write_v1_fixtures() {
    if std::env::var("NUMVAULT_WRITE_V1_FIXTURES").as_deref() != Ok("1") {
        eprintln!("write_v1_fixtures: NUMVAULT_WRITE_V1_FIXTURES=1 is not set; nothing written");
        return;
    }
    if FORMAT_VERSION != 1 {
        panic!(
            "refusing to write the version-1 fixtures: this engine writes format version {}. \
             The v1 fixtures were written once by the version-1 engine and must never be \
             regenerated; add fixtures for version {} in a directory of their own.",
            FORMAT_VERSION, FORMAT_VERSION
        );
    }
    let root = fixtures_dir();
    if root.exists() {
        panic!(
            "refusing to overwrite {}: the version-1 fixtures are written once and never \
             regenerated. (Delete it only if it has never been committed.)",
            root.display()
        );
    }
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = git(&[
        "status",
        "--porcelain",
        "--",
        "src",
        "Cargo.toml",
        "../../Cargo.lock",
    ]);
    if let Some(d) = &dirty {
        assert!(
            d.is_empty(),
            "refusing: the engine sources have uncommitted changes, so the fixtures would not \
             be traceable to a commit:\n{d}"
        );
    }
    let staging = root.with_file_name("v1.partial");
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging).unwrap();

    type GenFn = fn(&Path) -> Value;
    let gens: [(&str, GenFn); 10] = [
        ("checkpointed", gen_checkpointed),
        ("log_tail", gen_log_tail),
        ("writable_session", gen_writable_session),
        ("session_crash", gen_session_crash),
        ("torn_tail", gen_torn_tail),
        ("garbage_tail", gen_garbage_tail),
        ("sync_always", gen_sync_always),
        ("released", gen_released),
        ("crash_leftovers", gen_crash_leftovers),
        ("edge_shapes", gen_edge_shapes),
    ];
    assert_eq!(gens.map(|(n, _)| n), SCENARIOS);
    let mut table = String::new();
    for (name, f) in gens {
        let v = f(&staging);
        let text = serde_json::to_string_pretty(&v).unwrap() + "\n";
        fs::write(staging.join(format!("{name}.expected.json")), text).unwrap();
        table.push_str(&format!(
            "| `{name}` | {} |\n",
            v["description"].as_str().unwrap()
        ));
    }
    fs::write(
        staging.join(".gitattributes"),
        "# Store images are byte-exact: no line-ending conversion, no text diffs or merges.\n\
         * binary\n\
         *.json text eol=lf diff merge\n\
         *.md text eol=lf diff merge\n\
         .gitattributes text eol=lf diff merge\n",
    )
    .unwrap();
    let readme = format!(
        "# Format version 1 store images\n\
         \n\
         **Never regenerate these files.** They were written once, by the format-version-1\n\
         engine, so that every later engine can be checked against stores that version 1\n\
         really wrote. Regenerating them with a later engine would prove nothing. If the\n\
         format changes, add fixtures for the new version in a directory of their own and\n\
         keep these.\n\
         \n\
         - Engine: commit `{commit}` (`crates/numvault/src` unchanged from it),\n\
         \x20 `numvault::FORMAT_VERSION == 1`.\n\
         - Generator: `write_v1_fixtures` in `crates/numvault/tests/backward_compat.rs`,\n\
         \x20 run with\n\
         \n\
         \x20 ```text\n\
         \x20 NUMVAULT_WRITE_V1_FIXTURES=1 cargo test -p numvault --release \\\n\
         \x20     --test backward_compat -- --ignored write_v1_fixtures\n\
         \x20 ```\n\
         \n\
         \x20 It refuses to run if `FORMAT_VERSION != 1` or if this directory exists.\n\
         - Checked by the other tests in `backward_compat.rs`, which open fresh copies\n\
         \x20 (never these files in place: opening may recover and rewrite a store).\n\
         \n\
         Each `<scenario>/` is a store directory; `<scenario>.expected.json` lists its\n\
         `last_seq` and, for every array, the name, dtype, shape, `mtime_ns` and the\n\
         BLAKE3 of its logical C-order bytes. Values are deterministic (fixed seeds);\n\
         times, and with them CRCs and hashes in the files, are those of the run.\n\
         \n\
         | Scenario | Contents |\n\
         |---|---|\n\
         {table}"
    );
    fs::write(staging.join("README.md"), readme).unwrap();
    fs::rename(&staging, &root).unwrap();

    // The fixtures as written pass the checks.
    fixture_tree_is_complete();
    for s in SCENARIOS {
        check_scenario(s);
    }
}

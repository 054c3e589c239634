//! Measures the versions of issue 13 (FORMAT.md §15) against their targets,
//! each side by side with its reference in the same run:
//!
//! - `snapshot` of a store of 1,000 arrays under `Sync::OnFlush` (target
//!   < 1 ms) and `Sync::Always` (target: one fsync + < 1 ms; the reference
//!   is a 4 KiB `pwrite` + `fdatasync` on the same disk);
//! - opening a version vs opening the current state (target < 2x);
//! - the reads of the seed table on a version vs the same reads on the
//!   current state (target <= 1.1x);
//! - saving an unchanged 38 MB array vs BLAKE3 of its 38 MB on one core
//!   (target <= 1.2x, and 0 data bytes written);
//! - `delete_snapshot` + `gc` of one version out of 10, 100 and 1,000
//!   (target: time independent of the number kept).
//!
//! ```text
//! cargo run --release -p numvault --example versions_bench [-- --quick] [--json PATH] [--dir DIR]
//! ```
//!
//! Medians of interleaved repetitions (numvault and reference alternate).
//! The temp dir defaults to `target/bench-tmp` (a real disk, not tmpfs).

use std::fmt::Write as _;
use std::fs;
use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use numvault::{ArrayRef, DType, OpenOptions, Store, Sync, VersionRef};

type Res<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn time<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let t = Instant::now();
    let r = f();
    (t.elapsed().as_secs_f64() * 1e3, r)
}

/// Deterministic f32 bytes.
fn floats(rows: u64, cols: u64, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..rows * cols)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 40) as f32 / 16_777_216.0).to_le_bytes()
        })
        .collect()
}

struct Report {
    md: String,
    json: Vec<String>,
}

impl Report {
    fn row(
        &mut self,
        what: &str,
        ours: f64,
        reference: f64,
        ref_label: &str,
        target: &str,
        ok: bool,
    ) {
        let ratio = ours / reference;
        writeln!(
            self.md,
            "| {what} | {ours:.3} ms | {reference:.3} ms ({ref_label}) | {ratio:.2} | {target} | {} |",
            if ok { "met" } else { "MISSED" }
        )
        .unwrap();
        self.json.push(format!(
            "{{\"what\": {what:?}, \"ms\": {ours:.4}, \"reference_ms\": {reference:.4}, \"reference\": {ref_label:?}, \"ratio\": {ratio:.4}, \"target\": {target:?}, \"met\": {ok}}}"
        ));
    }
}

fn data_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir.join("data"))
        .map(|it| {
            it.filter_map(|e| e.ok())
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Snapshots of a store of 1,000 arrays (100 x 10 float32 each).
fn bench_snapshot(root: &Path, rep: &mut Report, reps: usize) -> Res<()> {
    for sync in [Sync::OnFlush, Sync::Always] {
        let dir = root.join(format!("snap-{sync:?}"));
        let _ = fs::remove_dir_all(&dir);
        let s = Store::open(&dir, OpenOptions::default().sync(sync))?;
        let row = floats(100, 10, 1);
        for i in 0..1000 {
            s.save(
                &format!("a{i:04}"),
                ArrayRef::new(DType::F32, &[100, 10], &row),
            )?;
        }
        s.flush()?;
        // Reference: one 4 KiB pwrite + fdatasync on the same disk.
        let fsync_file = fs::File::create(dir.join("fsync-ref"))?;
        let page = vec![7u8; 4096];
        let (mut snap, mut fsync) = (Vec::new(), Vec::new());
        for i in 0..reps {
            // A change between snapshots, as in use (not timed).
            s.save(
                "a0000",
                ArrayRef::new(DType::F32, &[100, 10], &floats(100, 10, i as u64 + 2)),
            )?;
            let (ms, r) = time(|| s.snapshot(None));
            r?;
            snap.push(ms);
            let (ms, r) = time(|| {
                fsync_file
                    .write_all_at(&page, 0)
                    .and_then(|_| fsync_file.sync_data())
            });
            r?;
            fsync.push(ms);
        }
        let (snap_ms, fsync_ms) = (median(&mut snap), median(&mut fsync));
        match sync {
            Sync::OnFlush => rep.row(
                "snapshot, 1,000 arrays, sync=flush",
                snap_ms,
                1.0,
                "target 1 ms",
                "< 1 ms",
                snap_ms < 1.0,
            ),
            _ => rep.row(
                "snapshot, 1,000 arrays, sync=always",
                snap_ms,
                fsync_ms,
                "4 KiB pwrite+fdatasync",
                "< fsync + 1 ms",
                snap_ms < fsync_ms + 1.0,
            ),
        }
        s.close()?;
    }
    Ok(())
}

/// Open and the seed table's reads: a version vs the current state.
fn bench_reads(root: &Path, rep: &mut Report, reps: usize, rows: u64) -> Res<()> {
    let dir = root.join("reads");
    let _ = fs::remove_dir_all(&dir);
    let s = Store::open(&dir, OpenOptions::default())?;
    let data = floats(rows, 10, 3);
    s.save("a", ArrayRef::new(DType::F32, &[rows, 10], &data))?;
    for i in 0..99 {
        s.save(
            &format!("small/{i}"),
            ArrayRef::new(DType::F32, &[10, 10], &floats(10, 10, i)),
        )?;
    }
    let v = s.snapshot(Some("v"))?;
    // Later changes elsewhere: the version and the current state hold the
    // same rows of 'a' (the reads compare like with like).
    for i in 0..99 {
        s.save(
            &format!("small/{i}"),
            ArrayRef::new(DType::F32, &[10, 10], &floats(10, 10, i + 500)),
        )?;
    }
    s.close()?;
    let ro = || OpenOptions::read_only();
    let at_v = || OpenOptions {
        version: Some(VersionRef::Id(v)),
        ..OpenOptions::read_only()
    };
    let (mut cur, mut ver) = (Vec::new(), Vec::new());
    for i in 0..reps {
        for is_v in [i % 2 == 1, i % 2 == 0] {
            let opts = if is_v { at_v() } else { ro() };
            let (ms, r) = time(|| Store::open(&dir, opts).map(|s| s.list("").len()));
            black_box(r?);
            if is_v {
                ver.push(ms)
            } else {
                cur.push(ms)
            }
        }
    }
    let (c, w) = (median(&mut cur), median(&mut ver));
    rep.row(
        "open (read-only) + list",
        w,
        c,
        "current state",
        "< 2x",
        w < 2.0 * c,
    );

    let cur_s = Store::open(&dir, ro())?;
    let ver_s = cur_s.at(v)?;
    let mut rng = 12345u64;
    let idx: Vec<i64> = (0..1000)
        .map(|_| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % rows) as i64
        })
        .collect();
    type ReadOp = fn(&Store, &[i64]) -> numvault::Result<usize>;
    let ops: [(&str, ReadOp); 4] = [
        ("full load", |s, _| s.read("a").map(|d| d.data.len())),
        ("lazy load (view + first row)", |s, _| {
            let v = s.view("a")?;
            let n = v.row(0)?.len();
            Ok(n)
        }),
        ("random access, 1,000 rows", |s, idx| {
            s.read_indices("a", idx).map(|d| d.data.len())
        }),
        ("stream, 10,000-row batches", |s, _| {
            let mut n = 0;
            for b in s.batches("a", 10_000)? {
                n += b?.data.len();
            }
            Ok(n)
        }),
    ];
    for (name, op) in ops {
        let (mut c, mut w) = (Vec::new(), Vec::new());
        for i in 0..reps {
            let order: [(&Store, bool); 2] = if i % 2 == 0 {
                [(&cur_s, false), (&ver_s, true)]
            } else {
                [(&ver_s, true), (&cur_s, false)]
            };
            for (st, is_v) in order {
                let (ms, r) = time(|| op(st, &idx));
                black_box(r?);
                if is_v {
                    w.push(ms)
                } else {
                    c.push(ms)
                }
            }
        }
        let (cm, wm) = (median(&mut c), median(&mut w));
        rep.row(
            &format!("{name}, {rows} x 10 float32"),
            wm,
            cm,
            "current state",
            "<= 1.1x",
            wm <= 1.1 * cm,
        );
    }
    Ok(())
}

/// Saving an unchanged 38 MB array vs BLAKE3 of its bytes on one core.
fn bench_unchanged_save(root: &Path, rep: &mut Report, reps: usize) -> Res<()> {
    let dir = root.join("resave");
    let _ = fs::remove_dir_all(&dir);
    let s = Store::open(&dir, OpenOptions::default())?;
    let rows = 1_000_000;
    let data = floats(rows, 10, 4);
    s.save("a", ArrayRef::new(DType::F32, &[rows, 10], &data))?;
    s.flush()?;
    let before = (data_bytes(&dir), s.last_seq());
    let (mut save, mut hash) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let (ms, r) = time(|| s.save("a", ArrayRef::new(DType::F32, &[rows, 10], &data)));
        r?;
        save.push(ms);
        let (ms, h) = time(|| blake3::hash(&data));
        black_box(h);
        hash.push(ms);
    }
    let after = (data_bytes(&dir), s.last_seq());
    let written = after.0 - before.0;
    let (sm, hm) = (median(&mut save), median(&mut hash));
    rep.row(
        &format!(
            "save of an unchanged 38 MB array ({written} data bytes written, {} records)",
            after.1 - before.1
        ),
        sm,
        hm,
        "BLAKE3 of 38 MB, 1 core",
        "<= 1.2x, 0 bytes",
        sm <= 1.2 * hm && written == 0,
    );
    Ok(())
}

/// What the save-time comparison costs where it finds nothing to spare: a
/// save over a same-shape array whose last 26 % of rows changed (compared
/// in full, then written whole) vs the same save over an array of another
/// shape (no comparison). And a writable session's start on an array a
/// version keeps (copied first, FORMAT.md §15.5) vs on one it does not.
fn bench_compare_and_session(root: &Path, rep: &mut Report, reps: usize) -> Res<()> {
    let dir = root.join("compare");
    let _ = fs::remove_dir_all(&dir);
    let s = Store::open(&dir, OpenOptions::default())?;
    let rows = 1_000_000u64;
    let base = floats(rows, 10, 6);
    let mut late = base.clone();
    let from = (rows as usize * 74 / 100) * 40;
    for b in &mut late[from..] {
        *b = b.wrapping_add(1);
    }
    let (mut worst, mut plain) = (Vec::new(), Vec::new());
    for i in 0..reps {
        // Reset (not timed): 'w' holds `base`, 'p' another shape.
        s.save("w", ArrayRef::new(DType::F32, &[rows, 10], &base))?;
        s.save("p", ArrayRef::new(DType::F32, &[1, 10], &base[..40]))?;
        let order = if i % 2 == 0 { ["w", "p"] } else { ["p", "w"] };
        for name in order {
            let (ms, r) = time(|| s.save(name, ArrayRef::new(DType::F32, &[rows, 10], &late)));
            r?;
            if name == "w" {
                worst.push(ms)
            } else {
                plain.push(ms)
            }
        }
    }
    let (w, p) = (median(&mut worst), median(&mut plain));
    rep.row(
        "save of 38 MB whose last 26 % changed (compared, then written)",
        w,
        p,
        "same save, nothing to compare",
        "<= 1.1x",
        w <= 1.1 * p,
    );
    let (mut pinned, mut free) = (Vec::new(), Vec::new());
    for i in 0..reps.min(11) {
        s.save(
            "sess",
            ArrayRef::new(DType::F32, &[rows, 10], &floats(rows, 10, 100 + i as u64)),
        )?;
        let (ms, r) = time(|| s.writable("sess").and_then(|w| w.finish()));
        r?;
        free.push(ms);
        let v = s.snapshot(None)?;
        let (ms, r) = time(|| s.writable("sess").and_then(|w| w.finish()));
        r?;
        pinned.push(ms);
        s.delete_snapshot(v)?;
    }
    let (pm, fm) = (median(&mut pinned), median(&mut free));
    rep.row(
        "writable session start + finish on a 38 MB array a version keeps (copied first)",
        pm,
        fm,
        "same, no version",
        "reported (the copy's cost)",
        true,
    );
    s.close()?;
    let _ = fs::remove_dir_all(&dir);
    Ok(())
}

/// `delete_snapshot` + `gc` of one version among `n`.
fn bench_gc(root: &Path, rep: &mut Report, counts: &[usize]) -> Res<()> {
    let mut per_n = Vec::new();
    for &n in counts {
        let dir = root.join(format!("gc-{n}"));
        let _ = fs::remove_dir_all(&dir);
        let s = Store::open(&dir, OpenOptions::default())?;
        let big = floats(10_000, 10, 5);
        for i in 0..20 {
            s.save(
                &format!("w{i}"),
                ArrayRef::new(DType::F32, &[10_000, 10], &big),
            )?;
        }
        let mut ids = Vec::new();
        for i in 0..n {
            s.save(
                "x",
                ArrayRef::new(DType::F32, &[1000, 10], &floats(1000, 10, i as u64)),
            )?;
            ids.push(s.snapshot(None)?);
        }
        s.checkpoint()?;
        let mut times = Vec::new();
        for k in 0..5.min(n) {
            let id = ids[(n / 2 + k) % n];
            let (ms, r) = time(|| s.delete_snapshot(id).and_then(|_| s.gc()));
            let freed = r?;
            assert!(freed > 0, "gc freed nothing");
            times.push(ms);
        }
        let m = median(&mut times);
        per_n.push((n, m));
        s.close()?;
        let _ = fs::remove_dir_all(&dir);
    }
    let (n0, t0) = per_n[0];
    for &(n, t) in &per_n {
        rep.row(
            &format!("delete_snapshot + gc, 1 of {n} versions"),
            t,
            t0,
            &format!("1 of {n0}"),
            "flat (<= 2x)",
            t <= 2.0 * t0,
        );
    }
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let arg = |k: &str| {
        args.iter()
            .position(|a| a == k)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let root: PathBuf = arg("--dir").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-tmp/versions")
    });
    fs::create_dir_all(&root)?;
    let reps = if quick { 5 } else { 31 };
    let mut rep = Report {
        md: String::from("| measurement | numvault (median) | reference (median) | ratio | target | verdict |\n|---|---|---|---|---|---|\n"),
        json: Vec::new(),
    };
    bench_snapshot(&root, &mut rep, reps)?;
    bench_reads(
        &root,
        &mut rep,
        reps,
        if quick { 100_000 } else { 1_000_000 },
    )?;
    bench_unchanged_save(&root, &mut rep, if quick { 3 } else { 11 })?;
    bench_compare_and_session(&root, &mut rep, if quick { 3 } else { 11 })?;
    bench_gc(
        &root,
        &mut rep,
        if quick { &[10, 100] } else { &[10, 100, 1000] },
    )?;
    print!("{}", rep.md);
    if let Some(p) = arg("--json") {
        fs::write(p, format!("[\n  {}\n]\n", rep.json.join(",\n  ")))?;
    }
    let _ = fs::remove_dir_all(&root);
    Ok(())
}

//! Measures numvault against the performance targets of issue 2, each side by
//! side with a plain-std baseline in the same run.
//!
//! ```text
//! cargo run --release -p numvault --example perf_targets [-- --quick] [--json PATH] [--dir DIR]
//! ```
//!
//! Every pair interleaves numvault and baseline rounds (alternating which goes
//! first) and reports the min and the median of many repetitions; the verdict
//! uses medians. The temp dir defaults to `target/bench-tmp` of the workspace,
//! which must be on the same disk as the store would be (not tmpfs).

mod common;

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions as FsOpenOptions};
use std::hint::black_box;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use numvault::{ArrayRef, Batch, OpenOptions, Store, Sync};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type Res<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const ROWS: u64 = 1_000_000;
const COLS: u64 = 10;
const ROW_BYTES: usize = COLS as usize * 4;

/// Samples of one side of a pair, in nanoseconds.
#[derive(Clone, Debug)]
struct Side {
    label: String,
    ns: Vec<f64>,
}

impl Side {
    fn sorted(&self) -> Vec<f64> {
        let mut v = self.ns.clone();
        v.sort_by(f64::total_cmp);
        v
    }
    fn min(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(f64::NAN)
    }
    fn pct(&self, p: f64) -> f64 {
        let v = self.sorted();
        if v.is_empty() {
            return f64::NAN;
        }
        let i = ((v.len() - 1) as f64 * p).round() as usize;
        v[i]
    }
    fn median(&self) -> f64 {
        let v = self.sorted();
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }
}

#[derive(Clone, Debug)]
enum Target {
    /// numvault median <= factor * baseline median.
    Ratio(f64),
    /// numvault median < this many microseconds.
    AbsUs(f64),
}

#[derive(Clone, Debug)]
struct Row {
    id: &'static str,
    title: String,
    nv: Side,
    base: Option<Side>,
    target: Target,
    note: String,
}

impl Row {
    fn ratio_median(&self) -> Option<f64> {
        self.base.as_ref().map(|b| self.nv.median() / b.median())
    }
    fn ratio_min(&self) -> Option<f64> {
        self.base.as_ref().map(|b| self.nv.min() / b.min())
    }
    fn pass(&self) -> bool {
        match self.target {
            Target::Ratio(f) => self.ratio_median().is_some_and(|r| r <= f),
            Target::AbsUs(us) => self.nv.median() < us * 1e3,
        }
    }
    fn target_str(&self) -> String {
        match self.target {
            Target::Ratio(f) => format!("<= {f}x baseline"),
            Target::AbsUs(us) if us >= 1000.0 => format!("< {} ms", us / 1000.0),
            Target::AbsUs(us) => format!("< {us} us"),
        }
    }
}

/// Run `reps` interleaved rounds of `a` and `b` (after `warmup` unrecorded
/// ones), alternating which goes first. Each closure returns the time of
/// its measured part, so it may do untimed setup and cleanup.
fn pair(
    reps: usize,
    warmup: usize,
    mut a: impl FnMut(usize) -> Res<Duration>,
    mut b: impl FnMut(usize) -> Res<Duration>,
) -> Res<(Vec<f64>, Vec<f64>)> {
    let mut va = Vec::with_capacity(reps);
    let mut vb = Vec::with_capacity(reps);
    for r in 0..warmup + reps {
        let (ta, tb) = if r % 2 == 0 {
            let ta = a(r)?;
            (ta, b(r)?)
        } else {
            let tb = b(r)?;
            (a(r)?, tb)
        };
        if r >= warmup {
            va.push(ta.as_nanos() as f64);
            vb.push(tb.as_nanos() as f64);
        }
    }
    Ok((va, vb))
}

/// Same as [`pair`] for three alternatives (rotating the order).
fn triple(
    reps: usize,
    warmup: usize,
    f: [&mut dyn FnMut(usize) -> Res<Duration>; 3],
) -> Res<[Vec<f64>; 3]> {
    let mut out = [Vec::new(), Vec::new(), Vec::new()];
    for r in 0..warmup + reps {
        let mut t = [Duration::ZERO; 3];
        for k in 0..3 {
            let j = (r + k) % 3;
            t[j] = f[j](r)?;
        }
        if r >= warmup {
            for j in 0..3 {
                out[j].push(t[j].as_nanos() as f64);
            }
        }
    }
    Ok(out)
}

fn timed(f: impl FnOnce() -> Res<()>) -> Res<Duration> {
    let t = Instant::now();
    f()?;
    Ok(t.elapsed())
}

fn fmt_ns(ns: f64) -> String {
    if !ns.is_finite() {
        "-".into()
    } else if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} us", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

struct Cfg {
    quick: bool,
    json: Option<PathBuf>,
    dir: Option<PathBuf>,
    only: Option<String>,
}

impl Cfg {
    /// Repetitions: `full` normally, `quick` with --quick.
    fn reps(&self, full: usize, quick: usize) -> usize {
        if self.quick {
            quick
        } else {
            full
        }
    }
    fn wants(&self, id: &str) -> bool {
        self.only
            .as_deref()
            .is_none_or(|o| o.split(',').any(|p| id.starts_with(p)))
    }
}

fn parse_args() -> Res<Cfg> {
    let mut cfg = Cfg {
        quick: false,
        json: None,
        dir: None,
        only: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => cfg.quick = true,
            "--json" => cfg.json = Some(args.next().ok_or("--json needs a path")?.into()),
            "--dir" => cfg.dir = Some(args.next().ok_or("--dir needs a path")?.into()),
            "--only" => cfg.only = Some(args.next().ok_or("--only needs ids")?),
            "--bench" => {} // passed by `cargo bench`-style runners
            "-h" | "--help" => {
                println!(
                    "perf_targets [--quick] [--json PATH] [--dir TEMP_PARENT] [--only ID[,ID..]]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    Ok(cfg)
}

// ---------------------------------------------------------------- machine

struct Machine {
    cpu: String,
    cores: usize,
    ram_gib: f64,
    fs: String,
    kernel: String,
    temp_dir: String,
}

fn machine(dir: &Path) -> Machine {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown".into(), |s| s.trim().to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let ram_gib = fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / (1024.0 * 1024.0));
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or("unknown".into(), |s| s.trim().to_string());
    let canon = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut best: Option<(usize, String)> = None;
    for line in fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .lines()
    {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 {
            continue;
        }
        let mp = f[1].replace("\\040", " ");
        if canon.starts_with(&mp) && best.as_ref().is_none_or(|(n, _)| mp.len() > *n) {
            let opts: Vec<&str> = f[3].split(',').take(4).collect();
            best = Some((
                mp.len(),
                format!("{} on {} ({}, {})", f[2], mp, f[0], opts.join(",")),
            ));
        }
    }
    Machine {
        cpu,
        cores,
        ram_gib,
        fs: best.map_or("unknown".into(), |b| b.1),
        kernel,
        temp_dir: canon.display().to_string(),
    }
}

// ---------------------------------------------------------------- helpers

fn make_data() -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(7);
    (0..ROWS * COLS).map(|_| rng.gen::<f32>()).collect()
}

fn shape(rows: u64) -> [u64; 2] {
    [rows, COLS]
}

fn distinct_indices(rng: &mut StdRng, n: usize, rows: u64) -> Vec<i64> {
    rand::seq::index::sample(rng, rows as usize, n)
        .into_iter()
        .map(|i| i as i64)
        .collect()
}

fn sync_file(path: &Path) -> Res<()> {
    File::open(path)?.sync_data()?;
    Ok(())
}

/// Fields of the /proc/self/smaps entry of the mapping holding `addr`, in
/// kB: (Rss, FilePmdMapped, AnonHugePages). Explains TLB behaviour.
fn smaps_of(addr: *const u8) -> Option<(u64, u64, u64)> {
    let a = addr as usize;
    let text = fs::read_to_string("/proc/self/smaps").ok()?;
    let mut inside = false;
    let (mut rss, mut pmd, mut anon_huge) = (0, 0, 0);
    for line in text.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((lo, hi)) = first.split_once('-') {
            if let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            {
                if inside {
                    break;
                }
                inside = lo <= a && a < hi;
                continue;
            }
        }
        if inside {
            let kb = |l: &str| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            if line.starts_with("Rss:") {
                rss = kb(line);
            } else if line.starts_with("FilePmdMapped:") {
                pmd = kb(line);
            } else if line.starts_with("AnonHugePages:") {
                anon_huge = kb(line);
            }
        }
    }
    inside.then_some((rss, pmd, anon_huge))
}

/// Touch every page of `bytes` so later accesses find it mapped.
fn touch(bytes: &[u8]) -> u64 {
    bytes.iter().step_by(4096).map(|&b| u64::from(b)).sum()
}

// ---------------------------------------------------------------- targets

fn bench_save(cfg: &Cfg, root: &Path, data: &[f32], out: &mut Vec<Row>) -> Res<()> {
    let dir = root.join("save");
    let base_dir = root.join("save-std");
    fs::create_dir_all(&base_dir)?;
    let store = Store::open(&dir, OpenOptions::default())?;
    let bytes: &[u8] = bytemuck::cast_slice(data);
    let sh = shape(ROWS);
    let mut prev: Option<PathBuf> = None;
    let reps = cfg.reps(25, 7);
    let (nv, base) = pair(
        reps,
        2,
        |_| {
            let t = timed(|| Ok(store.save("x", ArrayRef::of(&sh, data))?))?;
            // Untimed: make it durable and free the replaced file.
            store.checkpoint()?;
            Ok(t)
        },
        |r| {
            let p = base_dir.join(format!("copy-{r}.bin"));
            let t = timed(|| Ok(fs::write(&p, bytes)?))?;
            sync_file(&p)?;
            if let Some(old) = prev.replace(p) {
                fs::remove_file(old)?;
            }
            common::sync_dir(&base_dir)?;
            Ok(t)
        },
    )?;
    store.close()?;
    out.push(Row {
        id: "save",
        title: "save 1M x 10 f32 (40 MB = 38 MiB), Sync::OnFlush".into(),
        nv: Side {
            label: "Store::save (new file, chunk crc32c, log record)".into(),
            ns: nv,
        },
        base: Some(Side {
            label: "std::fs::write to a new file, same dir".into(),
            ns: base,
        }),
        target: Target::Ratio(1.1),
        note: "untimed between rounds: checkpoint (numvault) / fdatasync + unlink previous (std)"
            .into(),
    });
    Ok(())
}

/// The store used by the read, view, open and gather targets.
fn prepare_read_store(root: &Path, data: &[f32]) -> Res<(PathBuf, PathBuf)> {
    let dir = root.join("read");
    let store = Store::open(&dir, OpenOptions::default())?;
    store.save("x", ArrayRef::of(&shape(ROWS), data))?;
    store.close()?;
    let copy = root.join("read-std.bin");
    fs::write(&copy, bytemuck::cast_slice::<f32, u8>(data))?;
    sync_file(&copy)?;
    Ok((dir, copy))
}

fn bench_read(cfg: &Cfg, dir: &Path, copy: &Path, out: &mut Vec<Row>) -> Res<()> {
    let store = Store::open(dir, OpenOptions::default())?;
    let n = (ROWS as usize) * ROW_BYTES;
    let reps = cfg.reps(41, 11);
    // Store::read (allocates) vs std::fs::read (allocates).
    let (nv, base) = pair(
        reps,
        3,
        |_| {
            let t = Instant::now();
            let a = store.read("x")?;
            let t = t.elapsed();
            black_box(&a);
            Ok(t)
        },
        |_| {
            let t = Instant::now();
            let v = fs::read(copy)?;
            let t = t.elapsed();
            black_box(&v);
            Ok(t)
        },
    )?;
    out.push(Row {
        id: "read",
        title: "full read 40 MB, checksums verified".into(),
        nv: Side {
            label: "Store::read (allocates)".into(),
            ns: nv,
        },
        base: Some(Side {
            label: "std::fs::read (allocates)".into(),
            ns: base,
        }),
        target: Target::Ratio(1.1),
        note: "result dropped outside the timed part on both sides".into(),
    });
    // read_into a reused buffer vs File::open + read_exact into a reused buffer.
    let mut buf_a = vec![0u8; n];
    let mut buf_b = vec![0u8; n];
    let (nv, base) = pair(
        reps,
        3,
        |_| {
            timed(|| {
                store.read_into("x", &mut buf_a)?;
                Ok(())
            })
        },
        |_| {
            timed(|| {
                let mut f = File::open(copy)?;
                f.read_exact(&mut buf_b)?;
                Ok(())
            })
        },
    )?;
    black_box((&buf_a, &buf_b));
    out.push(Row {
        id: "read_into",
        title: "full read_into 40 MB (reused buffer), checksums verified".into(),
        nv: Side {
            label: "Store::read_into".into(),
            ns: nv,
        },
        base: Some(Side {
            label: "File::open + read_exact into a reused buffer".into(),
            ns: base,
        }),
        target: Target::Ratio(1.1),
        note: String::new(),
    });
    store.close()?;
    Ok(())
}

/// `k` copies of the read store (data file hard-linked, else copied), for
/// opening cleanly closed stores back to back.
fn clone_stores(dir: &Path, root: &Path, k: usize) -> Res<Vec<PathBuf>> {
    let mut out = Vec::with_capacity(k);
    for i in 0..k {
        let d = root.join(format!("open-copy-{i}"));
        fs::create_dir_all(d.join("data"))?;
        for sub in ["", "data"] {
            for e in fs::read_dir(dir.join(sub))? {
                let e = e?;
                let name = e.file_name();
                if name == "LOCK" || e.file_type()?.is_dir() {
                    continue;
                }
                let to = d.join(sub).join(&name);
                if sub == "data" {
                    if fs::hard_link(e.path(), &to).is_err() {
                        fs::copy(e.path(), &to)?;
                    }
                } else {
                    fs::copy(e.path(), &to)?;
                }
            }
        }
        // Normalize: one clean open/close so each copy is a closed store.
        Store::open(&d, OpenOptions::default())?.close()?;
        out.push(d);
    }
    Ok(out)
}

/// Like [`pair`], for closures that time several operations per round.
fn pair_multi(
    reps: usize,
    warmup: usize,
    mut a: impl FnMut() -> Res<Vec<Duration>>,
    mut b: impl FnMut() -> Res<Vec<Duration>>,
) -> Res<(Vec<f64>, Vec<f64>)> {
    let mut va = Vec::new();
    let mut vb = Vec::new();
    for r in 0..warmup + reps {
        let (ta, tb) = if r % 2 == 0 {
            let ta = a()?;
            (ta, b()?)
        } else {
            let tb = b()?;
            (a()?, tb)
        };
        if r >= warmup {
            va.extend(ta.iter().map(|t| t.as_nanos() as f64));
            vb.extend(tb.iter().map(|t| t.as_nanos() as f64));
        }
    }
    Ok((va, vb))
}

fn bench_open_view(cfg: &Cfg, root: &Path, dir: &Path, out: &mut Vec<Row>) -> Res<()> {
    const K: usize = 8;
    let copies = clone_stores(dir, root, K)?;
    let data_files: Vec<PathBuf> = copies
        .iter()
        .map(|d| -> Res<PathBuf> {
            let s = Store::open(d, OpenOptions::read_only())?;
            let p = s.view("x")?.path().to_path_buf();
            Ok(p)
        })
        .collect::<Res<_>>()?;
    // Reference: what the OS needs at least (open + fstat + mmap).
    let std_open = |p: &Path| -> Res<Duration> {
        let t = Instant::now();
        let f = File::open(p)?;
        let len = f.metadata()?.len() as usize;
        // SAFETY: the file is not modified while mapped.
        let m = unsafe { memmap2::MmapOptions::new().len(len).map(&f)? };
        let t = t.elapsed();
        black_box(&m);
        Ok(t)
    };
    let std_all = || -> Res<Vec<Duration>> { data_files.iter().map(|p| std_open(p)).collect() };
    let reps = cfg.reps(40, 10);
    let ref_label = "ref: File::open + fstat + mmap of the data file";
    for (id, ro) in [("open_rw_view", false), ("open_ro_view", true)] {
        let opts = if ro {
            OpenOptions::read_only()
        } else {
            OpenOptions::default()
        };
        // K cleanly closed stores opened back to back; closed (untimed) after.
        let (nv, base) = pair_multi(
            reps,
            2,
            || {
                let mut times = Vec::with_capacity(K);
                let mut open = Vec::with_capacity(K);
                for d in &copies {
                    let t = Instant::now();
                    let s = Store::open(d, opts.clone())?;
                    let v = s.view("x")?;
                    times.push(t.elapsed());
                    open.push((s, v));
                }
                for (s, v) in open {
                    drop(v);
                    s.close()?;
                }
                Ok(times)
            },
            std_all,
        )?;
        let mode = if ro { "read-only" } else { "read-write" };
        out.push(Row {
            id,
            title: format!("open {mode} + view (cleanly closed store, 1 array of 40 MB)"),
            nv: Side {
                label: format!("Store::open({}) + view", if ro { "read_only" } else { "default" }),
                ns: nv,
            },
            base: Some(Side {
                label: ref_label.into(),
                ns: base,
            }),
            target: Target::AbsUs(50.0),
            note: format!(
                "{K} cleanly closed copies of the store opened back to back per round; closes untimed"
            ),
        });
    }
    // The same store reopened right after its own close (a checkpoint with
    // three fsyncs): the open pays for caches left cold by the blocking close.
    let d = &copies[0];
    let (nv, base) = pair(
        cfg.reps(201, 41),
        5,
        |_| {
            let t = Instant::now();
            let s = Store::open(d, OpenOptions::default())?;
            let v = s.view("x")?;
            let t = t.elapsed();
            black_box(v.rows());
            drop(v);
            s.close()?;
            Ok(t)
        },
        |_| std_open(&data_files[0]),
    )?;
    out.push(Row {
        id: "open_rw_view_after_close",
        title: "open read-write + view right after closing the same store".into(),
        nv: Side {
            label: "Store::open(default) + view".into(),
            ns: nv,
        },
        base: Some(Side {
            label: ref_label.into(),
            ns: base,
        }),
        target: Target::AbsUs(50.0),
        note: "each open follows a close (checkpoint: 3 fsyncs) within microseconds".into(),
    });
    for d in copies {
        fs::remove_dir_all(d)?;
    }
    Ok(())
}

fn bench_gather(cfg: &Cfg, dir: &Path, data: &[f32], out: &mut Vec<Row>) -> Res<()> {
    let store = Store::open(dir, OpenOptions::read_only())?;
    let view = store.view("x")?;
    let all = view.contiguous().ok_or("view is not contiguous")?;
    black_box(touch(all));
    black_box(touch(bytemuck::cast_slice(data)));
    const N: usize = 1000;
    let reps = cfg.reps(3001, 501);
    let mut rng = StdRng::seed_from_u64(11);
    let mut out_a = vec![0u8; N * ROW_BYTES];
    let mut out_b = vec![0f32; N * COLS as usize];
    let cols = COLS as usize;
    let gather_vec = |idx: &[i64], out_b: &mut [f32]| {
        for (dst, &i) in out_b.chunks_exact_mut(cols).zip(idx) {
            let i = i as usize;
            dst.copy_from_slice(&data[i * cols..(i + 1) * cols]);
        }
    };
    // Cold rows: each call draws a fresh random set (different sets for the
    // two sides, so neither finds the other's rows in the CPU cache).
    let sets: Vec<Vec<i64>> = (0..2 * (reps + 10))
        .map(|_| (0..N).map(|_| rng.gen_range(0..ROWS as i64)).collect())
        .collect();
    let (nv, base) = pair(
        reps,
        10,
        |r| {
            let idx = &sets[2 * r];
            timed(|| Ok(view.gather_into(black_box(idx), &mut out_a)?))
        },
        |r| {
            let idx = &sets[2 * r + 1];
            let t = Instant::now();
            gather_vec(black_box(idx), &mut out_b);
            let t = t.elapsed();
            black_box(&out_b);
            Ok(t)
        },
    )?;
    let huge = |p: *const u8| {
        smaps_of(p).map_or("n/a".to_string(), |(rss, pmd, ah)| {
            format!("{rss} kB resident, {pmd} kB PMD-mapped file pages, {ah} kB anon huge pages")
        })
    };
    let pages_note = format!(
        "rows mostly miss the CPU cache on both sides; view mapping: {}; Vec: {}",
        huge(all.as_ptr()),
        huge(data.as_ptr().cast())
    );
    out.push(Row {
        id: "gather_cold",
        title: "gather 1000 random rows from a view (fresh random rows per call)".into(),
        nv: Side {
            label: "View::gather_into (same view, pages mapped)".into(),
            ns: nv,
        },
        base: Some(Side {
            label: "copy the rows out of a Vec<f32> in memory".into(),
            ns: base,
        }),
        target: Target::Ratio(2.0),
        note: pages_note,
    });
    // Hot rows: the same 1000 rows every call, on both sides.
    let idx = distinct_indices(&mut rng, N, ROWS);
    let (nv, base) = pair(
        reps,
        10,
        |_| timed(|| Ok(view.gather_into(black_box(&idx), &mut out_a)?)),
        |_| {
            let t = Instant::now();
            gather_vec(black_box(&idx), &mut out_b);
            let t = t.elapsed();
            black_box(&out_b);
            Ok(t)
        },
    )?;
    black_box(&out_a);
    out.push(Row {
        id: "gather_hot",
        title: "gather the same 1000 random rows repeatedly (cache-hot)".into(),
        nv: Side {
            label: "View::gather_into".into(),
            ns: nv,
        },
        base: Some(Side {
            label: "copy the same rows out of a Vec<f32>".into(),
            ns: base,
        }),
        target: Target::Ratio(2.0),
        note: "measures per-row overhead without cache misses".into(),
    });
    drop(view);
    drop(store);
    Ok(())
}

/// A file written with plain pwrite, as the minimal I/O of a small commit.
struct StdAppender {
    data: File,
    log: File,
    data_end: u64,
    log_end: u64,
}

impl StdAppender {
    fn new(dir: &Path) -> Res<Self> {
        fs::create_dir_all(dir)?;
        let open = |n: &str| {
            FsOpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(dir.join(n))
        };
        Ok(StdAppender {
            data: open("data.bin")?,
            log: open("log.bin")?,
            data_end: 0,
            log_end: 0,
        })
    }
    /// pwrite `row_bytes` to the data file and a record of the same size plus
    /// `extra` bytes to the log, both at their ends.
    fn commit(&mut self, payload: &[u8], extra: usize) -> Res<()> {
        self.data.write_all_at(payload, self.data_end)?;
        self.data_end += payload.len() as u64;
        let mut rec = Vec::with_capacity(payload.len() + extra);
        rec.extend_from_slice(payload);
        rec.resize(payload.len() + extra, 0);
        self.log.write_all_at(&rec, self.log_end)?;
        self.log_end += rec.len() as u64;
        Ok(())
    }
}

fn bench_small_writes(cfg: &Cfg, root: &Path, data: &[f32], out: &mut Vec<Row>) -> Res<()> {
    let dir = root.join("small");
    let store = Store::open(&dir, OpenOptions::default())?;
    store.save("x", ArrayRef::of(&shape(ROWS), data))?;
    store.save("y", ArrayRef::of(&shape(ROWS), data))?;
    store.flush()?;
    let mut app = StdAppender::new(&root.join("small-std"))?;
    let reps = cfg.reps(3001, 501);
    let mut rng = StdRng::seed_from_u64(13);
    let rows: Vec<f32> = (0..100 * COLS).map(|_| rng.gen::<f32>()).collect();
    let rows_bytes: &[u8] = bytemuck::cast_slice(&rows);
    let sh100 = shape(100);
    let idx_sets: Vec<Vec<i64>> = (0..reps + 10)
        .map(|_| distinct_indices(&mut rng, 100, ROWS))
        .collect();
    let (nv, base) = pair(
        reps,
        10,
        |r| {
            let idx = &idx_sets[r];
            timed(|| Ok(store.replace("x", idx, ArrayRef::of(&sh100, &rows))?))
        },
        |_| timed(|| app.commit(rows_bytes, 900)),
    )?;
    out.push(Row {
        id: "replace100",
        title: "replace 100 random rows, Sync::OnFlush".into(),
        nv: Side {
            label: "Store::replace".into(),
            ns: nv,
        },
        base: Some(Side {
            label: "ref: pwrite 4000 B to a data file + 4.9 KB to a log".into(),
            ns: base,
        }),
        target: Target::AbsUs(50.0),
        note: "remap grows by up to 100 entries per call over the run".into(),
    });
    let (nv, base) = pair(
        reps,
        10,
        |_| timed(|| Ok(store.append("y", ArrayRef::of(&sh100, &rows))?)),
        |_| timed(|| app.commit(rows_bytes, 100)),
    )?;
    out.push(Row {
        id: "append100",
        title: "append 100 rows, Sync::OnFlush".into(),
        nv: Side {
            label: "Store::append".into(),
            ns: nv,
        },
        base: Some(Side {
            label: "ref: pwrite 4000 B to a data file + 4.1 KB to a log".into(),
            ns: base,
        }),
        target: Target::AbsUs(50.0),
        note: String::new(),
    });
    store.close()?;
    Ok(())
}

fn bench_always(cfg: &Cfg, root: &Path, data: &[f32], out: &mut Vec<Row>) -> Res<()> {
    let dir = root.join("always");
    let store = Store::open(&dir, OpenOptions::default().sync(Sync::Always))?;
    store.save("x", ArrayRef::of(&shape(ROWS), data))?;
    // In-place: a 1 MiB file written and synced once, then 4 KiB overwrites.
    let (inplace, append) = common::fsync_reference_files(&root.join("always-std"))?;
    let page = vec![7u8; 4096];
    let mut append_end = 0u64;
    let reps = cfg.reps(151, 41);
    let mut rng = StdRng::seed_from_u64(17);
    let rows: Vec<f32> = (0..100 * COLS).map(|_| rng.gen::<f32>()).collect();
    let sh100 = shape(100);
    let idx_sets: Vec<Vec<i64>> = (0..reps + 5)
        .map(|_| distinct_indices(&mut rng, 100, ROWS))
        .collect();
    let mut f_nv = |r: usize| -> Res<Duration> {
        let idx = &idx_sets[r];
        timed(|| Ok(store.replace("x", idx, ArrayRef::of(&sh100, &rows))?))
    };
    let mut f_inplace = |r: usize| -> Res<Duration> {
        timed(|| {
            inplace.write_all_at(&page, (r % 256) as u64 * 4096)?;
            inplace.sync_data()?;
            Ok(())
        })
    };
    let mut f_append = |_| -> Res<Duration> {
        let t = timed(|| {
            append.write_all_at(&page, append_end)?;
            append.sync_data()?;
            Ok(())
        })?;
        append_end += 4096;
        Ok(t)
    };
    let [nv, inp, app] = triple(reps, 5, [&mut f_nv, &mut f_inplace, &mut f_append])?;
    store.close()?;
    let nv = Side {
        label: "Store::replace with Sync::Always".into(),
        ns: nv,
    };
    out.push(Row {
        id: "always_replace100_vs_inplace",
        title: "replace 100 rows, Sync::Always vs 4 KiB in-place overwrite + fdatasync".into(),
        nv: nv.clone(),
        base: Some(Side {
            label: "pwrite 4 KiB in place + fdatasync".into(),
            ns: inp,
        }),
        target: Target::Ratio(2.0),
        note: String::new(),
    });
    out.push(Row {
        id: "always_replace100_vs_append",
        title: "replace 100 rows, Sync::Always vs 4 KiB append + fdatasync".into(),
        nv,
        base: Some(Side {
            label: "pwrite 4 KiB at end of file + fdatasync".into(),
            ns: app,
        }),
        target: Target::Ratio(2.0),
        note: "same run and samples as the row above".into(),
    });
    Ok(())
}

fn bench_open_many(cfg: &Cfg, root: &Path, out: &mut Vec<Row>) -> Res<()> {
    let dir = root.join("many");
    {
        let store = Store::open(&dir, OpenOptions::default())?;
        let small: Vec<f32> = (0..100 * COLS).map(|i| i as f32).collect();
        let names: Vec<String> = (0..1000)
            .map(|i| format!("group{}/a{i:04}", i % 10))
            .collect();
        for chunk in names.chunks(100) {
            let mut b = Batch::new();
            let sh = shape(100);
            let shapes = vec![sh; chunk.len()];
            for (n, s) in chunk.iter().zip(&shapes) {
                b.save(n, ArrayRef::of(s, &small));
            }
            store.commit(&b)?;
        }
        if store.len() != 1000 {
            return Err("expected 1000 arrays".into());
        }
        store.close()?;
    }
    let manifest = dir.join("MANIFEST");
    let data_dir = dir.join("data");
    // Reference: read the MANIFEST and list the data directory.
    let mut std_ref = |_| -> Res<Duration> {
        timed(|| {
            black_box(fs::read(&manifest)?);
            black_box(fs::read_dir(&data_dir)?.count());
            Ok(())
        })
    };
    let reps = cfg.reps(101, 21);
    let (nv, base) = pair(
        reps,
        3,
        |_| {
            let t = Instant::now();
            let s = Store::open(&dir, OpenOptions::default())?;
            let t = t.elapsed();
            black_box(s.len());
            s.close()?;
            Ok(t)
        },
        &mut std_ref,
    )?;
    out.push(Row {
        id: "open_1000_rw",
        title: "open read-write, 1000 arrays (clean store)".into(),
        nv: Side {
            label: "Store::open(default)".into(),
            ns: nv,
        },
        base: Some(Side {
            label: "ref: fs::read(MANIFEST) + read_dir(data)".into(),
            ns: base,
        }),
        target: Target::AbsUs(5000.0),
        note: "close (a checkpoint) is outside the timed part".into(),
    });
    let (nv, base) = pair(
        reps,
        3,
        |_| {
            let t = Instant::now();
            let s = Store::open(&dir, OpenOptions::read_only())?;
            let t = t.elapsed();
            black_box(s.len());
            drop(s);
            Ok(t)
        },
        &mut std_ref,
    )?;
    out.push(Row {
        id: "open_1000_ro",
        title: "open read-only, 1000 arrays (clean store)".into(),
        nv: Side {
            label: "Store::open(read_only)".into(),
            ns: nv,
        },
        base: Some(Side {
            label: "ref: fs::read(MANIFEST) + read_dir(data)".into(),
            ns: base,
        }),
        target: Target::AbsUs(5000.0),
        note: String::new(),
    });
    Ok(())
}

// ---------------------------------------------------------------- output

fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json_num(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.1}")
    } else {
        "null".into()
    }
}

fn json_ratio(x: Option<f64>) -> String {
    x.filter(|x| x.is_finite())
        .map_or("null".into(), |x| format!("{x:.4}"))
}

fn side_json(s: &Side) -> String {
    format!(
        "{{\"label\": {}, \"n\": {}, \"min_ns\": {}, \"median_ns\": {}, \"p90_ns\": {}}}",
        json_str(&s.label),
        s.ns.len(),
        json_num(s.min()),
        json_num(s.median()),
        json_num(s.pct(0.9))
    )
}

fn to_json(m: &Machine, cfg: &Cfg, rows: &[Row], cmd: &str) -> String {
    let mut o = String::from("{\n");
    let _ = writeln!(o, "  \"command\": {},", json_str(cmd));
    let _ = writeln!(o, "  \"quick\": {},", cfg.quick);
    let _ = writeln!(
        o,
        "  \"machine\": {{\"cpu\": {}, \"cores\": {}, \"ram_gib\": {:.1}, \"filesystem\": {}, \"kernel\": {}, \"temp_dir\": {}}},",
        json_str(&m.cpu),
        m.cores,
        m.ram_gib,
        json_str(&m.fs),
        json_str(&m.kernel),
        json_str(&m.temp_dir)
    );
    o.push_str("  \"results\": [\n");
    for (i, r) in rows.iter().enumerate() {
        let (kind, value) = match r.target {
            Target::Ratio(f) => ("max_ratio", f),
            Target::AbsUs(us) => ("max_us", us),
        };
        let _ = write!(
            o,
            "    {{\"id\": {}, \"title\": {}, \"numvault\": {}, \"baseline\": {}, \"ratio_median\": {}, \"ratio_min\": {}, \"target\": {{\"kind\": \"{kind}\", \"value\": {value}}}, \"pass\": {}, \"note\": {}}}",
            json_str(r.id),
            json_str(&r.title),
            side_json(&r.nv),
            r.base.as_ref().map_or("null".into(), side_json),
            json_ratio(r.ratio_median()),
            json_ratio(r.ratio_min()),
            r.pass(),
            json_str(&r.note)
        );
        o.push_str(if i + 1 < rows.len() { ",\n" } else { "\n" });
    }
    o.push_str("  ]\n}\n");
    o
}

fn table(rows: &[Row]) -> String {
    let mut o = String::new();
    o.push_str(
        "| target | numvault min / median | baseline | baseline min / median | ratio (median) | ratio (min) | goal | result |\n",
    );
    o.push_str("|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        let (bl, bm) = r.base.as_ref().map_or(("-".into(), "-".into()), |b| {
            (
                b.label.clone(),
                format!("{} / {}", fmt_ns(b.min()), fmt_ns(b.median())),
            )
        });
        let ratio = |x: Option<f64>| x.map_or("-".into(), |x| format!("{x:.2}x"));
        let _ = writeln!(
            o,
            "| {} ({}) | {} / **{}** | {} | {} | {} | {} | {} | {} |",
            r.title,
            r.nv.label,
            fmt_ns(r.nv.min()),
            fmt_ns(r.nv.median()),
            bl,
            bm,
            ratio(r.ratio_median()),
            ratio(r.ratio_min()),
            r.target_str(),
            if r.pass() { "PASS" } else { "**FAIL**" }
        );
    }
    o
}

fn main() -> Res<()> {
    let cfg = parse_args()?;
    let parent = match &cfg.dir {
        Some(d) => d.clone(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-tmp"),
    };
    fs::create_dir_all(&parent)?;
    let root = parent.join(format!("perf-targets-{}", std::process::id()));
    if root.exists() {
        fs::remove_dir_all(&root)?;
    }
    fs::create_dir_all(&root)?;
    let m = machine(&root);
    if m.fs.starts_with("tmpfs") || m.fs.starts_with("ramfs") {
        eprintln!(
            "warning: {} is on {}; use --dir on a real disk",
            m.temp_dir, m.fs
        );
    }
    let cmd = std::env::args().collect::<Vec<_>>().join(" ");
    eprintln!("perf_targets: temp dir {}", m.temp_dir);
    let data = make_data();
    let mut rows = Vec::new();
    let res = (|| -> Res<()> {
        let step = |name: &str| eprintln!("  measuring {name} ...");
        if cfg.wants("save") {
            step("save");
            bench_save(&cfg, &root, &data, &mut rows)?;
        }
        let need_read = ["read", "open_rw", "open_ro", "gather"]
            .iter()
            .any(|id| cfg.wants(id));
        if need_read {
            let (dir, copy) = prepare_read_store(&root, &data)?;
            if cfg.wants("read") {
                step("full read");
                bench_read(&cfg, &dir, &copy, &mut rows)?;
            }
            if cfg.wants("open_rw") || cfg.wants("open_ro") {
                step("open + view");
                bench_open_view(&cfg, &root, &dir, &mut rows)?;
            }
            if cfg.wants("gather") {
                step("gather");
                bench_gather(&cfg, &dir, &data, &mut rows)?;
            }
        }
        if cfg.wants("replace") || cfg.wants("append") {
            step("replace / append (OnFlush)");
            bench_small_writes(&cfg, &root, &data, &mut rows)?;
        }
        if cfg.wants("always") {
            step("replace with Sync::Always vs 4 KiB write + fdatasync");
            bench_always(&cfg, &root, &data, &mut rows)?;
        }
        if cfg.wants("open_1000") {
            step("open with 1000 arrays");
            bench_open_many(&cfg, &root, &mut rows)?;
        }
        Ok(())
    })();
    let _ = fs::remove_dir_all(&root);
    res?;

    println!("## numvault performance targets (issue 2)\n");
    println!(
        "command: `{cmd}`{}\n",
        if cfg.quick { " (quick)" } else { "" }
    );
    println!("machine:");
    println!("- CPU: {} ({} cores available)", m.cpu, m.cores);
    println!("- RAM: {:.1} GiB", m.ram_gib);
    println!("- temp dir: {} on {}", m.temp_dir, m.fs);
    println!("- kernel: {}\n", m.kernel);
    println!(
        "Data: {ROWS} rows x {COLS} float32 ({:.1} MB = 38.1 MiB), warm page cache, Sync::OnFlush unless said. \
         Times are per operation; min / median of the interleaved repetitions; verdicts use medians.\n",
        (ROWS as usize * ROW_BYTES) as f64 / 1e6
    );
    print!("{}", table(&rows));
    for r in rows.iter().filter(|r| !r.note.is_empty()) {
        println!("- {}: {}", r.id, r.note);
    }
    let failed: Vec<&str> = rows.iter().filter(|r| !r.pass()).map(|r| r.id).collect();
    println!(
        "\n{} of {} targets pass{}",
        rows.len() - failed.len(),
        rows.len(),
        if failed.is_empty() {
            String::new()
        } else {
            format!("; failing: {}", failed.join(", "))
        }
    );
    if let Some(p) = &cfg.json {
        fs::write(p, to_json(&m, &cfg, &rows, &cmd))?;
        eprintln!("wrote {}", p.display());
    }
    Ok(())
}

//! Latency distributions (hdrhistogram) of `append` (100 rows x 10 f32) and
//! `replace` (100 random rows of a 1M-row array) under each `Sync` policy,
//! next to one 4 KiB write + fdatasync measured in the same run.
//!
//! ```text
//! cargo run --release -p numvault --example latency              # full run
//! cargo run --release -p numvault --example latency -- --quick   # smoke run
//! cargo run --release -p numvault --example latency -- --help
//! ```
//!
//! Writes `latency.md` (table: p50, p90, p99, p99.9, max, mean in µs),
//! `latency.json` and `latency_ecdf.csv` (`sync,op,latency_us,cumulative_fraction`,
//! for `bench/plot_latency.py`) to `--out-dir` (default `bench/results`, or
//! `bench/results/quick` with `--quick`).
//!
//! Method: a closed loop, one thread; each operation is timed from call to
//! return and recorded in nanoseconds (1 ns .. 100 s, 3 significant digits).
//! There is no target arrival rate, so no coordinated-omission correction: the
//! figures are service times of back-to-back operations. Every (policy, op)
//! series has its own store (created, filled and checkpointed untimed) and
//! runs `--rounds` chunks, interleaved round-robin with the other series (the
//! order rotated each round) so that a change in machine load falls on all
//! of them alike. A `Group` store's last background sync of a chunk may
//! overlap the first millisecond of the next series (flushing it after each
//! chunk would also checkpoint it: `flush()` checkpoints a log over 1 MiB).
//! Automatic checkpoints (every 64 MiB of log) happen inside the timed
//! operations, as they would in use, and show up in the tail.

mod common;

use std::fmt::Write as _;
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use numvault::{ArrayRef, OpenOptions, Store, Sync};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type Res<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const COLS: u64 = 10;
const OP_ROWS: u64 = 100;
/// Rows of the array `replace` targets (40 MB of f32).
const REPLACE_BASE_ROWS: u64 = 1_000_000;
/// Rows of the array `append` starts from.
const APPEND_BASE_ROWS: u64 = 1_000;
/// Histogram range in ns: 1 ns .. 100 s, 3 significant digits.
const HIST_MAX_NS: u64 = 100_000_000_000;
/// eCDF resolution: quantile steps per halving of the distance to 100 %
/// (a few hundred points per series, denser in the tail).
const ECDF_TICKS_PER_HALF: u32 = 32;

const USAGE: &str = "\
latency: per-operation latency of append/replace under each Sync policy

usage: cargo run --release -p numvault --example latency -- [options]

  --quick              2,000 ops per series (200 under Always), 2 rounds,
                       output to bench/results/quick unless --out-dir
  --ops N              ops per series for Group, OnFlush, Never (default 20000)
  --ops-always N       ops per series for Always and the fsync reference (default 2000)
  --rounds R           interleaved chunks per series (default 5)
  --warmup N           unrecorded ops per series before the first round (default 200)
  --group-delay-ms MS  Sync::Group max_delay (default 1)
  --out-dir DIR        where latency.{md,json} and latency_ecdf.csv go
                       (default: bench/results of the workspace)
  --dir DIR            parent of the temporary stores (default: target/bench-tmp
                       of the workspace; must be a real disk, not tmpfs)
  --keep               keep the stores
";

struct Cfg {
    ops: u64,
    ops_always: u64,
    rounds: u64,
    warmup: u64,
    group_delay: Duration,
    out_dir: PathBuf,
    dir: PathBuf,
    keep: bool,
    quick: bool,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn parse_args() -> Res<Option<Cfg>> {
    let mut args = std::env::args().skip(1);
    let mut quick = false;
    let (mut ops, mut ops_always, mut rounds, mut warmup, mut delay_ms) =
        (None, None, None, None, 1u64);
    let (mut out_dir, mut dir, mut keep) = (None, None, false);
    let num = |flag: &str, v: Option<String>| -> Res<u64> {
        let v = v.ok_or_else(|| format!("{flag} needs a value"))?;
        v.parse::<u64>()
            .map_err(|e| format!("{flag} {v}: {e}").into())
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--ops" => ops = Some(num("--ops", args.next())?),
            "--ops-always" => ops_always = Some(num("--ops-always", args.next())?),
            "--rounds" => rounds = Some(num("--rounds", args.next())?),
            "--warmup" => warmup = Some(num("--warmup", args.next())?),
            "--group-delay-ms" => delay_ms = num("--group-delay-ms", args.next())?,
            "--out-dir" => {
                out_dir = Some(PathBuf::from(args.next().ok_or("--out-dir needs a value")?))
            }
            "--dir" => dir = Some(PathBuf::from(args.next().ok_or("--dir needs a value")?)),
            "--keep" => keep = true,
            // `cargo bench`-style harness flags are ignored.
            "--bench" => {}
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(None);
            }
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}").into()),
        }
    }
    let ws = workspace();
    let cfg = Cfg {
        ops: ops.unwrap_or(if quick { 2_000 } else { 20_000 }),
        ops_always: ops_always.unwrap_or(if quick { 200 } else { 2_000 }),
        rounds: rounds.unwrap_or(if quick { 2 } else { 5 }).max(1),
        warmup: warmup.unwrap_or(if quick { 50 } else { 200 }),
        group_delay: Duration::from_millis(delay_ms),
        out_dir: out_dir.unwrap_or_else(|| {
            let base = ws.join("bench/results");
            if quick {
                base.join("quick")
            } else {
                base
            }
        }),
        dir: dir.unwrap_or_else(|| ws.join("target/bench-tmp")),
        keep,
        quick,
    };
    if cfg.ops == 0 || cfg.ops_always == 0 {
        return Err("--ops and --ops-always must be at least 1".into());
    }
    Ok(Some(cfg))
}

fn sync_name(s: Sync) -> String {
    match s {
        Sync::Always => "always".into(),
        Sync::Group { max_delay } => format!("group_{}ms", max_delay.as_millis()),
        Sync::OnFlush => "on_flush".into(),
        Sync::Never => "never".into(),
    }
}

fn rows_f32(rows: u64, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..rows * COLS).map(|_| rng.gen::<f32>()).collect()
}

#[derive(Copy, Clone, PartialEq, Eq)]
enum Op {
    Append,
    Replace,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Append => "append",
            Op::Replace => "replace",
        }
    }
}

/// What one series times.
enum Target {
    Store {
        store: Store,
        op: Op,
        rng: Box<StdRng>,
    },
    /// 4 KiB `pwrite` into a preallocated, synced 1 MiB file (cycling through
    /// its 256 pages) + fdatasync: what `Always` pays per commit at best (its
    /// log is preallocated, FORMAT.md §5.2a).
    WriteInPlace { file: File, next: u64 },
    /// 4 KiB `pwrite` at the end of a growing file + fdatasync (the size
    /// change is part of what is synced).
    WriteAppend { file: File, end: u64 },
}

struct Series {
    sync: String,
    op: String,
    label: String,
    target: Target,
    ops: u64,
    hist: Histogram<u64>,
    /// Exact sum and max (the histogram's are bucket-rounded).
    sum_ns: u128,
    max_ns: u64,
}

impl Series {
    fn new(sync: String, op: &str, label: String, target: Target, ops: u64) -> Res<Series> {
        Ok(Series {
            sync,
            op: op.to_string(),
            label,
            target,
            ops,
            hist: Histogram::new_with_bounds(1, HIST_MAX_NS, 3)?,
            sum_ns: 0,
            max_ns: 0,
        })
    }

    /// Run one operation; returns its latency.
    fn run_one(&mut self, rows: &[f32], page: &[u8]) -> Res<Duration> {
        let shape = [OP_ROWS, COLS];
        match &mut self.target {
            Target::Store { store, op, rng, .. } => match op {
                Op::Append => {
                    let t = Instant::now();
                    store.append("x", ArrayRef::of(&shape, rows))?;
                    Ok(t.elapsed())
                }
                Op::Replace => {
                    let idx: Vec<i64> =
                        rand::seq::index::sample(rng, REPLACE_BASE_ROWS as usize, OP_ROWS as usize)
                            .into_iter()
                            .map(|i| i as i64)
                            .collect();
                    let t = Instant::now();
                    store.replace("x", &idx, ArrayRef::of(&shape, rows))?;
                    Ok(t.elapsed())
                }
            },
            Target::WriteInPlace { file, next } => {
                let off = (*next % 256) * 4096;
                *next += 1;
                let t = Instant::now();
                file.write_all_at(page, off)?;
                file.sync_data()?;
                Ok(t.elapsed())
            }
            Target::WriteAppend { file, end } => {
                let t = Instant::now();
                file.write_all_at(page, *end)?;
                file.sync_data()?;
                let d = t.elapsed();
                *end += page.len() as u64;
                Ok(d)
            }
        }
    }

    fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.hist.saturating_record(ns);
        self.sum_ns += u128::from(ns);
        self.max_ns = self.max_ns.max(ns);
    }

    /// Quantile `q` in µs. The histogram answers with its bucket's highest
    /// equivalent value (up to 0.1 % high): capped at the exact max.
    fn q_us(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q).min(self.max_ns) as f64 / 1e3
    }

    fn mean_us(&self) -> f64 {
        let n = self.hist.len().max(1);
        self.sum_ns as f64 / n as f64 / 1e3
    }

    /// eCDF points (latency µs, fraction of ops at or below it), from the
    /// histogram's quantile iteration; consecutive repeats dropped.
    fn ecdf(&self) -> Vec<(f64, f64)> {
        let mut out: Vec<(f64, f64)> = Vec::new();
        for v in self.hist.iter_quantiles(ECDF_TICKS_PER_HALF) {
            let p = (
                v.value_iterated_to().min(self.max_ns) as f64 / 1e3,
                v.quantile(),
            );
            if out.last().is_some_and(|l| l.0 == p.0) {
                if let Some(l) = out.last_mut() {
                    l.1 = p.1;
                }
            } else {
                out.push(p);
            }
        }
        out
    }
}

fn open_store(dir: &Path, sync: Sync, rows: u64, seed: u64) -> Res<Store> {
    let store = Store::open(dir, OpenOptions::default().sync(sync))?;
    store.save("x", ArrayRef::of(&[rows, COLS], &rows_f32(rows, seed)))?;
    // Start from a clean state: everything synced, an empty log.
    store.checkpoint()?;
    Ok(store)
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "n/a".into())
}

fn kernel() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "n/a".into())
}

/// UTC time as `YYYY-MM-DD HH:MM:SS` (no date crate in the dependencies).
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A ratio with 2 significant digits at least (0.0021, 0.35, 1.03, 12.4).
fn ratio(r: f64) -> String {
    if !r.is_finite() {
        "n/a".into()
    } else if r >= 0.1 {
        format!("{r:.2}")
    } else {
        let digits = (-r.log10()).ceil() as usize + 1;
        format!("{r:.digits$}")
    }
}

fn main() -> Res<()> {
    let cfg = match parse_args() {
        Ok(Some(cfg)) => cfg,
        Ok(None) => return Ok(()),
        Err(e) => {
            // A usage error: the message as text, not as `main`'s Debug output.
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    fs::create_dir_all(&cfg.dir)?;
    fs::create_dir_all(&cfg.out_dir)?;
    let cfg = Cfg {
        dir: fs::canonicalize(&cfg.dir)?,
        out_dir: fs::canonicalize(&cfg.out_dir)?,
        ..cfg
    };
    let tmp = tempfile::Builder::new()
        .prefix("latency-")
        .tempdir_in(&cfg.dir)?;
    let root = tmp.path().to_path_buf();
    let started = utc_now();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut command = String::from("cargo run --release -p numvault --example latency");
    if !args.is_empty() {
        command.push_str(" -- ");
        command.push_str(&args.join(" "));
    }
    let load_start = load_average();
    eprintln!(
        "latency: {} ops per series ({} under Always), {} rounds, stores in {}; load average {load_start}",
        cfg.ops,
        cfg.ops_always,
        cfg.rounds,
        root.display()
    );

    let syncs = [
        Sync::Always,
        Sync::Group {
            max_delay: cfg.group_delay,
        },
        Sync::OnFlush,
        Sync::Never,
    ];
    let mut series: Vec<Series> = Vec::new();
    for (i, sync) in syncs.into_iter().enumerate() {
        let ops = if sync == Sync::Always {
            cfg.ops_always
        } else {
            cfg.ops
        };
        for op in [Op::Append, Op::Replace] {
            let name = format!("{}-{}", sync_name(sync), op.name());
            eprintln!("  setting up {name}");
            let base = match op {
                Op::Append => APPEND_BASE_ROWS,
                Op::Replace => REPLACE_BASE_ROWS,
            };
            let store = open_store(&root.join(&name), sync, base, 1 + i as u64)?;
            let label = match op {
                Op::Append => "append 100 rows".to_string(),
                Op::Replace => "replace 100 random rows of 1M".to_string(),
            };
            let target = Target::Store {
                store,
                op,
                rng: Box::new(StdRng::seed_from_u64(100 + i as u64)),
            };
            series.push(Series::new(sync_name(sync), op.name(), label, target, ops)?);
        }
    }
    let (inplace, append) = common::fsync_reference_files(&root.join("reference"))?;
    series.push(Series::new(
        "reference".into(),
        "write4k_inplace_fdatasync",
        "4 KiB pwrite in place + fdatasync".into(),
        Target::WriteInPlace {
            file: inplace,
            next: 0,
        },
        cfg.ops_always,
    )?);
    series.push(Series::new(
        "reference".into(),
        "write4k_append_fdatasync",
        "4 KiB pwrite at end of file + fdatasync".into(),
        Target::WriteAppend {
            file: append,
            end: 0,
        },
        cfg.ops_always,
    )?);

    let rows = rows_f32(OP_ROWS, 7);
    let page = vec![7u8; 4096];
    let wall = Instant::now();

    eprintln!("  warm-up: {} ops per series", cfg.warmup);
    for s in series.iter_mut() {
        for _ in 0..cfg.warmup {
            s.run_one(&rows, &page)?;
        }
    }
    let n = series.len();
    for r in 0..cfg.rounds {
        for k in 0..n {
            let s = &mut series[(k + r as usize) % n];
            // Round r runs ops/rounds, the last round the remainder.
            let per = s.ops / cfg.rounds;
            let chunk = if r + 1 == cfg.rounds {
                s.ops - per * (cfg.rounds - 1)
            } else {
                per
            };
            for _ in 0..chunk {
                let d = s.run_one(&rows, &page)?;
                s.record(d);
            }
        }
        eprintln!(
            "  round {}/{} done ({:.1} s, load average {})",
            r + 1,
            cfg.rounds,
            wall.elapsed().as_secs_f64(),
            load_average()
        );
    }
    let load_end = load_average();
    let elapsed = wall.elapsed();

    let final_rows: Vec<Option<u64>> = series
        .iter()
        .map(|s| match &s.target {
            Target::Store { store, .. } => store.shape("x").ok().map(|sh| sh[0]),
            _ => None,
        })
        .collect();

    let refp50 = series
        .iter()
        .find(|s| s.op == "write4k_inplace_fdatasync")
        .map(|s| s.q_us(0.5))
        .unwrap_or(f64::NAN);

    // Markdown.
    let mut md = String::new();
    writeln!(
        md,
        "# numvault: latency of append / replace under each Sync"
    )?;
    writeln!(md)?;
    writeln!(md, "Generated by `{command}` on {started} UTC.")?;
    writeln!(md)?;
    writeln!(
        md,
        "- Machine: {} CPUs, Linux {}; load average (1/5/15 min) {load_start} at start, {load_end} at end.",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        kernel()
    )?;
    writeln!(
        md,
        "- {} ops per series ({} under `always` and for the reference), {} interleaved rounds, {} warm-up ops per series; run time {:.1} s.",
        cfg.ops,
        cfg.ops_always,
        cfg.rounds,
        cfg.warmup,
        elapsed.as_secs_f64()
    )?;
    writeln!(
        md,
        "- append: 100 rows x 10 f32 (4 KB) to an array of 1,000 rows; replace: 100 distinct random rows of a 1,000,000 x 10 f32 array. \
One store per series, under `{}` (not tmpfs). `group_*` returns before its fsync (a background thread syncs within max_delay).",
        cfg.dir.display()
    )?;
    writeln!(
        md,
        "- Closed loop, one thread: each op timed call to return (service time, no coordinated-omission correction). hdrhistogram, 3 significant digits; max and mean exact. Automatic checkpoints (every 64 MiB of log) fall inside the timed ops."
    )?;
    writeln!(md)?;
    writeln!(
        md,
        "| sync | op | n | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | mean µs | p50 / 4K-fdatasync p50 |"
    )?;
    writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    for s in &series {
        writeln!(
            md,
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            s.sync,
            s.label,
            s.hist.len(),
            s.q_us(0.5),
            s.q_us(0.9),
            s.q_us(0.99),
            s.q_us(0.999),
            s.max_ns as f64 / 1e3,
            s.mean_us(),
            ratio(s.q_us(0.5) / refp50)
        )?;
    }
    writeln!(md)?;
    writeln!(
        md,
        "Reference: one 4 KiB write + fdatasync on the same file system in the same run: p50 {refp50:.1} µs (in place, preallocated file; the `always` log is preallocated too, FORMAT.md §5.2a)."
    )?;
    writeln!(md)?;
    writeln!(
        md,
        "eCDF: `latency_ecdf.csv`; plot with `.venv-bench/bin/python bench/plot_latency.py` (writes `latency_ecdf.png`)."
    )?;

    // JSON.
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let js_series: Vec<serde_json::Value> = series
        .iter()
        .zip(&final_rows)
        .map(|(s, rows_after)| {
            serde_json::json!({
                "sync": s.sync, "op": s.op, "label": s.label, "n": s.hist.len(),
                "p50_us": s.q_us(0.5), "p90_us": s.q_us(0.9), "p99_us": s.q_us(0.99),
                "p999_us": s.q_us(0.999), "max_us": s.max_ns as f64 / 1e3,
                "mean_us": s.mean_us(), "stdev_us": s.hist.stdev() / 1e3,
                "min_us": s.hist.min() as f64 / 1e3, "rows_after": rows_after,
            })
        })
        .collect();
    let js = serde_json::to_string_pretty(&serde_json::json!({
        "generated_utc": started,
        "quick": cfg.quick,
        "command": command,
        "cpus": cpus,
        "kernel": kernel(),
        "load_average_start": load_start,
        "load_average_end": load_end,
        "store_dir": cfg.dir.to_string_lossy(),
        "ops": cfg.ops,
        "ops_always": cfg.ops_always,
        "rounds": cfg.rounds,
        "warmup": cfg.warmup,
        "group_max_delay_ms": cfg.group_delay.as_millis() as u64,
        "elapsed_s": elapsed.as_secs_f64(),
        "series": js_series,
    }))?;

    // eCDF CSV.
    let mut csv = String::from("sync,op,latency_us,cumulative_fraction\n");
    for s in &series {
        for (us, f) in s.ecdf() {
            writeln!(csv, "{},{},{us:.3},{f:.6}", s.sync, s.op)?;
        }
    }

    let md_path = cfg.out_dir.join("latency.md");
    fs::write(&md_path, &md)?;
    fs::write(cfg.out_dir.join("latency.json"), &js)?;
    fs::write(cfg.out_dir.join("latency_ecdf.csv"), &csv)?;
    print!("{md}");
    eprintln!(
        "wrote {}, latency.json, latency_ecdf.csv",
        md_path.display()
    );
    // Untimed: close (checkpoint) the stores.
    for s in series {
        if let Target::Store { store, .. } = s.target {
            store.close()?;
        }
    }
    if cfg.keep {
        let kept = tmp.keep();
        eprintln!("kept stores in {}", kept.display());
    }
    Ok(())
}

//! Criterion benches of the engine's main paths.
//!
//! ```text
//! cargo bench -p numvault --bench engine                # everything, ~5 min on a busy 2-core VM
//! cargo bench -p numvault --bench engine -- gather      # one group (a regex on the id)
//! cargo bench -p numvault --bench engine -- --noplot    # no HTML plots (faster analysis)
//! NUMVAULT_BENCH_QUICK=1 cargo bench -p numvault --bench engine   # smoke run, < 1 min
//! ```
//!
//! Groups: `small_writes` (append / replace 100 rows, `OnFlush`),
//! `commit_replace_100_rows/<sync>` and `commit_append_100_rows/<sync>` (one
//! commit under each `Sync`), `gather`, `full_read_40MB`, `save/<sync>/<size>`,
//! `verify_128MB` (GB/s), `recovery_open/log_records/<N>` (open after a crash
//! whose log holds N records).
//!
//! Stores live under `target/bench-tmp` (same disk as the workspace, not
//! tmpfs). Each bench measures for a few seconds only (1 s, with fewer
//! samples and no plots, under `NUMVAULT_BENCH_QUICK=1`); `perf_targets` (an example) is the side-by-side
//! comparison with plain-std baselines, and the `latency` example gives the
//! latency distributions (p50..p99.9) of append/replace under each `Sync`.

use std::fs;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use numvault::{ArrayRef, Batch, OpenOptions, Store, Sync, View};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const COLS: u64 = 10;
const BIG_ROWS: u64 = 1_000_000;
/// 128 MB of f32 for `verify_128MB`: large next to the caches, small next to RAM.
const VERIFY_ROWS: u64 = 3_200_000;
/// Appends grow the array without bound (4 KB per commit, 100k+ commits in a
/// run under `Never`): past this many rows the append benches overwrite it
/// with a small array and checkpoint, untimed, so a run neither fills the disk
/// nor measures an ever larger file.
const APPEND_RESET_ROWS: u64 = 2_000_000;

/// `NUMVAULT_BENCH_QUICK=1`: shorter warm-up and measurement (a smoke run;
/// the sizes stay the same, so figures are comparable but noisier).
fn quick() -> bool {
    std::env::var_os("NUMVAULT_BENCH_QUICK").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Measurement time of a group: `secs`, or 1 s in quick mode.
fn measure(secs: u64) -> Duration {
    if quick() {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(secs)
    }
}

fn tmp_parent() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-tmp");
    fs::create_dir_all(&p).expect("create target/bench-tmp");
    p
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("engine-bench-")
        .tempdir_in(tmp_parent())
        .expect("temp dir")
}

fn rows_f32(rows: u64, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..rows * COLS).map(|_| rng.gen::<f32>()).collect()
}

fn distinct(rng: &mut StdRng, n: usize, rows: u64) -> Vec<i64> {
    rand::seq::index::sample(rng, rows as usize, n)
        .into_iter()
        .map(|i| i as i64)
        .collect()
}

/// A store at `dir` holding array "x" of `rows` x 10 f32.
fn store_with(dir: &Path, sync: Sync, rows: u64) -> Store {
    let s = Store::open(dir, OpenOptions::default().sync(sync)).expect("open");
    s.save("x", ArrayRef::of(&[rows, COLS], &rows_f32(rows, 1)))
        .expect("save");
    s.flush().expect("flush");
    s
}

/// A store in its own temp dir. Benches build theirs on first use (inside
/// the bench closure, which criterion calls only when the bench's id matches
/// the filter), so `-- gather` does not build every other bench's store.
struct Fixture {
    // Dropped in this order: the store (its close checkpoint) before the dir.
    store: Store,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new(sync: Sync, rows: u64) -> Fixture {
        let dir = tempdir();
        let store = store_with(dir.path(), sync, rows);
        Fixture { store, _dir: dir }
    }
}

fn sync_name(s: Sync) -> &'static str {
    match s {
        Sync::Always => "always",
        Sync::Group { .. } => "group_1ms",
        Sync::OnFlush => "on_flush",
        Sync::Never => "never",
    }
}

const SYNCS: [Sync; 4] = [
    Sync::Always,
    Sync::Group {
        max_delay: Duration::from_millis(1),
    },
    Sync::OnFlush,
    Sync::Never,
];

fn small_writes(c: &mut Criterion) {
    let mut fx: Option<Fixture> = None;
    let rows = rows_f32(100, 2);
    let mut rng = StdRng::seed_from_u64(3);
    let mut g = c.benchmark_group("small_writes");
    g.throughput(Throughput::Elements(100));
    g.bench_function("append_100_rows", |b| {
        let store = &fx
            .get_or_insert_with(|| Fixture::new(Sync::OnFlush, BIG_ROWS))
            .store;
        b.iter(|| {
            store
                .append("x", ArrayRef::of(&[100, COLS], &rows))
                .expect("append")
        })
    });
    // Replace targets the original rows so the remap stays bounded.
    // The mean includes the checkpoints that a sustained run triggers every
    // 64 MiB of log (about 13k replaces).
    g.bench_function("replace_100_random_rows", |b| {
        let store = &fx
            .get_or_insert_with(|| Fixture::new(Sync::OnFlush, BIG_ROWS))
            .store;
        b.iter_batched(
            || distinct(&mut rng, 100, BIG_ROWS),
            |idx| {
                store
                    .replace("x", &idx, ArrayRef::of(&[100, COLS], &rows))
                    .expect("replace")
            },
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn commit_by_sync(c: &mut Criterion) {
    let mut g = c.benchmark_group("commit_replace_100_rows");
    g.throughput(Throughput::Elements(1));
    let rows = rows_f32(100, 4);
    for sync in SYNCS {
        let mut fx: Option<Fixture> = None;
        let mut rng = StdRng::seed_from_u64(5);
        g.bench_function(BenchmarkId::from_parameter(sync_name(sync)), |b| {
            let store = &fx.get_or_insert_with(|| Fixture::new(sync, 100_000)).store;
            b.iter_batched(
                || distinct(&mut rng, 100, 100_000),
                |idx| {
                    store
                        .replace("x", &idx, ArrayRef::of(&[100, COLS], &rows))
                        .expect("replace")
                },
                criterion::BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

/// One `Store::commit` of a batch appending 100 x 10 f32 rows (4 KB, an
/// inline payload), under each `Sync`. `Group` returns after the record
/// write, before the fsync; its background sync holds the store's mutex,
/// so a commit arriving meanwhile waits for it and that shows in the mean.
fn commit_append_by_sync(c: &mut Criterion) {
    let mut g = c.benchmark_group("commit_append_100_rows");
    g.throughput(Throughput::Elements(1));
    let rows = rows_f32(100, 9);
    let small = rows_f32(1000, 10);
    for sync in SYNCS {
        let mut fx: Option<Fixture> = None;
        let mut appended = 0u64;
        g.bench_function(BenchmarkId::from_parameter(sync_name(sync)), |b| {
            let store = &fx.get_or_insert_with(|| Fixture::new(sync, 1000)).store;
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut batch = Batch::new();
                    batch.append("x", ArrayRef::of(&[100, COLS], &rows));
                    let t = Instant::now();
                    store.commit(black_box(&batch)).expect("commit");
                    total += t.elapsed();
                    appended += 100;
                    if appended >= APPEND_RESET_ROWS {
                        // Untimed: back to a small array (see APPEND_RESET_ROWS).
                        store
                            .save("x", ArrayRef::of(&[1000, COLS], &small))
                            .expect("save");
                        store.checkpoint().expect("checkpoint");
                        appended = 0;
                    }
                }
                total
            })
        });
    }
    g.finish();
}

fn gather(c: &mut Criterion) {
    let mut fx: Option<(View, Fixture)> = None;
    let mut rng = StdRng::seed_from_u64(6);
    let sets: Vec<Vec<i64>> = (0..64)
        .map(|_| {
            (0..1000)
                .map(|_| rng.gen_range(0..BIG_ROWS as i64))
                .collect()
        })
        .collect();
    let mut out = vec![0u8; 1000 * COLS as usize * 4];
    let mut g = c.benchmark_group("gather");
    g.throughput(Throughput::Elements(1000));
    let mut k = 0usize;
    g.bench_function("view_gather_into_1000_random_rows", |b| {
        let (view, _) = fx.get_or_insert_with(|| {
            let f = Fixture::new(Sync::OnFlush, BIG_ROWS);
            let view = f.store.view("x").expect("view");
            // Fault the whole mapping in: measure gathers, not page faults.
            let all = view.contiguous().expect("contiguous");
            black_box(all.iter().step_by(4096).map(|&b| u64::from(b)).sum::<u64>());
            (view, f)
        });
        b.iter(|| {
            k = (k + 1) % sets.len();
            view.gather_into(&sets[k], &mut out).expect("gather")
        })
    });
    // Reference: the same from a Vec<f32> in memory.
    let mut data: Option<Vec<f32>> = None;
    let mut outf = vec![0f32; 1000 * COLS as usize];
    g.bench_function("vec_gather_1000_random_rows", |b| {
        let data = data.get_or_insert_with(|| rows_f32(BIG_ROWS, 1));
        b.iter(|| {
            k = (k + 1) % sets.len();
            for (dst, &i) in outf.chunks_exact_mut(COLS as usize).zip(&sets[k]) {
                let i = i as usize * COLS as usize;
                dst.copy_from_slice(&data[i..i + COLS as usize]);
            }
            black_box(&outf);
        })
    });
    g.finish();
}

fn full_read_and_verify(c: &mut Criterion) {
    let mut fx: Option<Fixture> = None;
    let bytes = BIG_ROWS * COLS * 4;
    let mut out = vec![0u8; bytes as usize];
    let mut g = c.benchmark_group("full_read_40MB");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(10);
    g.measurement_time(measure(4));
    g.bench_function("read_into_verified", |b| {
        let store = &fx
            .get_or_insert_with(|| Fixture::new(Sync::OnFlush, BIG_ROWS))
            .store;
        b.iter(|| store.read_into("x", &mut out).expect("read"))
    });
    g.bench_function("read_allocating", |b| {
        let store = &fx
            .get_or_insert_with(|| Fixture::new(Sync::OnFlush, BIG_ROWS))
            .store;
        b.iter(|| black_box(store.read("x").expect("read")))
    });
    g.bench_function("verify", |b| {
        let store = &fx
            .get_or_insert_with(|| Fixture::new(Sync::OnFlush, BIG_ROWS))
            .store;
        b.iter(|| {
            let r = store.verify().expect("verify");
            assert!(r.is_clean());
        })
    });
    g.finish();
}

/// Save (create or overwrite) a 4 MB and a 40 MB array. `on_flush` returns
/// with the data in the page cache; `always` fdatasyncs the new data file and
/// the log first. The checkpoint after each save (it syncs and frees the
/// replaced file) is not timed, but takes wall time: flat sampling with few
/// iterations keeps the group short.
fn save(c: &mut Criterion) {
    let mut data: Option<Vec<f32>> = None;
    let mut g = c.benchmark_group("save");
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.measurement_time(measure(3));
    for sync in [Sync::OnFlush, Sync::Always] {
        let mut fx: Option<(Store, tempfile::TempDir)> = None;
        for (rows, label) in [(BIG_ROWS / 10, "4MB"), (BIG_ROWS, "40MB")] {
            g.throughput(Throughput::Bytes(rows * COLS * 4));
            g.bench_function(BenchmarkId::new(sync_name(sync), label), |b| {
                let data = data.get_or_insert_with(|| rows_f32(BIG_ROWS, 7));
                let part = &data[..(rows * COLS) as usize];
                let (store, _) = fx.get_or_insert_with(|| {
                    let dir = tempdir();
                    let s =
                        Store::open(dir.path(), OpenOptions::default().sync(sync)).expect("open");
                    (s, dir)
                });
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let t = Instant::now();
                        store
                            .save("x", ArrayRef::of(&[rows, COLS], part))
                            .expect("save");
                        total += t.elapsed();
                        // Untimed: sync and free the replaced file.
                        store.checkpoint().expect("checkpoint");
                    }
                    total
                })
            });
        }
    }
    g.finish();
}

/// `Store::verify()` of a 128 MB store (MANIFEST, log, every data chunk's
/// CRC32C); criterion reports GB/s of data checked. The data is in the page
/// cache (it was just written), so this is the CPU + copy cost of checking,
/// not the disk's read speed.
fn verify_throughput(c: &mut Criterion) {
    let bytes = VERIFY_ROWS * COLS * 4;
    let mut fx: Option<Fixture> = None;
    let mut g = c.benchmark_group("verify_128MB");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.measurement_time(measure(4));
    g.bench_function("verify", |b| {
        let store = &fx
            .get_or_insert_with(|| {
                let f = Fixture::new(Sync::OnFlush, VERIFY_ROWS);
                f.store.checkpoint().expect("checkpoint");
                let rep = f.store.verify().expect("verify");
                assert!(rep.is_clean(), "{:?}", rep.problems);
                assert_eq!(rep.unchecksummed_bytes, 0);
                assert_eq!(rep.data_bytes, bytes);
                f
            })
            .store;
        b.iter(|| {
            let r = store.verify().expect("verify");
            assert!(r.is_clean());
            r.data_bytes
        })
    });
    g.finish();
}

/// Copy a store directory (not its LOCK) to `to`.
fn copy_store(from: &Path, to: &Path) {
    fs::create_dir_all(to.join("data")).expect("mkdir");
    for sub in ["", "data"] {
        for e in fs::read_dir(from.join(sub)).expect("read_dir") {
            let e = e.expect("entry");
            let name = e.file_name();
            if name == "LOCK" || e.file_type().expect("type").is_dir() {
                continue;
            }
            fs::copy(e.path(), to.join(sub).join(&name)).expect("copy");
        }
    }
}

/// Bytes in the store's live log file(s) (`wal-*.log`), preallocation included.
fn log_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .expect("read_dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("wal-"))
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// Writer open of a crashed store whose log holds N records (N = 0, 100,
/// 1,000, 10,000 commits of 10 rows): replay (inline payloads are redone
/// into the data file), then the checkpoint recovery ends with (its fsyncs
/// included). The time per N shows the growth with log length; the
/// throughput line is records per second. The copy of the store before each
/// open is not timed.
fn recovery(c: &mut Criterion) {
    let mut g = c.benchmark_group("recovery_open");
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.measurement_time(measure(3));
    let rows = rows_f32(10, 8);
    for records in [0u64, 100, 1000, 10_000] {
        let mut fx: Option<(tempfile::TempDir, tempfile::TempDir)> = None;
        let mut n = 0u64;
        g.throughput(Throughput::Elements(records.max(1)));
        g.bench_function(BenchmarkId::new("log_records", records), |b| {
            let (template, work) = fx.get_or_insert_with(|| {
                // A store whose writer "crashed" after `records` appends of
                // 10 rows: the handle is leaked (no close, no checkpoint), so
                // the log holds them. As after a kill -9, the written bytes
                // are in the page cache.
                let template = tempdir();
                let store = store_with(template.path(), Sync::OnFlush, 1000);
                store.checkpoint().expect("checkpoint"); // the log starts empty
                for _ in 0..records {
                    store
                        .append("x", ArrayRef::of(&[10, COLS], &rows))
                        .expect("append");
                }
                std::mem::forget(store);
                eprintln!(
                    "recovery_open/log_records/{records}: log file {} bytes",
                    log_bytes(template.path())
                );
                (template, tempdir())
            });
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    n += 1;
                    let d = work.path().join(format!("s{n}"));
                    copy_store(template.path(), &d);
                    let t = Instant::now();
                    let s = Store::open(&d, OpenOptions::default()).expect("recover");
                    total += t.elapsed();
                    assert_eq!(s.shape("x").expect("shape")[0], 1000 + 10 * records);
                    drop(s);
                    fs::remove_dir_all(&d).expect("cleanup");
                }
                total
            })
        });
    }
    g.finish();
}

fn config() -> Criterion {
    let c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(measure(3))
        .sample_size(30);
    if quick() {
        // Most of a quick run's time would go to the analysis: fewer
        // bootstrap resamples and no HTML plots.
        c.warm_up_time(Duration::from_millis(200))
            .sample_size(10)
            .nresamples(10_000)
            .without_plots()
    } else {
        c
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = small_writes, commit_by_sync, commit_append_by_sync, gather, full_read_and_verify,
        save, verify_throughput, recovery
}
criterion_main!(benches);

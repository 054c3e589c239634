//! Criterion benches of the engine's main paths.
//!
//! ```text
//! cargo bench -p numvault --bench engine            # everything, a few minutes
//! cargo bench -p numvault --bench engine -- gather  # one group
//! ```
//!
//! Stores live under `target/bench-tmp` (same disk as the workspace, not
//! tmpfs). Each bench measures for a few seconds only; `perf_targets` (an
//! example) is the side-by-side comparison with plain-std baselines.

use std::fs;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use numvault::{ArrayRef, OpenOptions, Store, Sync};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const COLS: u64 = 10;
const BIG_ROWS: u64 = 1_000_000;

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
    let dir = tempdir();
    let store = store_with(dir.path(), Sync::OnFlush, BIG_ROWS);
    let rows = rows_f32(100, 2);
    let mut rng = StdRng::seed_from_u64(3);
    let mut g = c.benchmark_group("small_writes");
    g.throughput(Throughput::Elements(100));
    g.bench_function("append_100_rows", |b| {
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
    drop(store);
}

fn commit_by_sync(c: &mut Criterion) {
    let mut g = c.benchmark_group("commit_replace_100_rows");
    g.throughput(Throughput::Elements(1));
    let rows = rows_f32(100, 4);
    for sync in SYNCS {
        let dir = tempdir();
        let store = store_with(dir.path(), sync, 100_000);
        let mut rng = StdRng::seed_from_u64(5);
        g.bench_function(BenchmarkId::from_parameter(sync_name(sync)), |b| {
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
        drop(store);
    }
    g.finish();
}

fn gather(c: &mut Criterion) {
    let dir = tempdir();
    let store = store_with(dir.path(), Sync::OnFlush, BIG_ROWS);
    let view = store.view("x").expect("view");
    let all = view.contiguous().expect("contiguous");
    black_box(all.iter().step_by(4096).map(|&b| u64::from(b)).sum::<u64>());
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
        b.iter(|| {
            k = (k + 1) % sets.len();
            view.gather_into(&sets[k], &mut out).expect("gather")
        })
    });
    // Reference: the same from a Vec<f32> in memory.
    let data = rows_f32(BIG_ROWS, 1);
    let mut outf = vec![0f32; 1000 * COLS as usize];
    g.bench_function("vec_gather_1000_random_rows", |b| {
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
    let dir = tempdir();
    let store = store_with(dir.path(), Sync::OnFlush, BIG_ROWS);
    let bytes = BIG_ROWS * COLS * 4;
    let mut out = vec![0u8; bytes as usize];
    let mut g = c.benchmark_group("full_read_40MB");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(10);
    g.bench_function("read_into_verified", |b| {
        b.iter(|| store.read_into("x", &mut out).expect("read"))
    });
    g.bench_function("read_allocating", |b| {
        b.iter(|| black_box(store.read("x").expect("read")))
    });
    g.bench_function("verify", |b| {
        b.iter(|| {
            let r = store.verify().expect("verify");
            assert!(r.is_clean());
        })
    });
    g.finish();
}

fn save(c: &mut Criterion) {
    let dir = tempdir();
    let store = Store::open(dir.path(), OpenOptions::default()).expect("open");
    let data = rows_f32(BIG_ROWS, 7);
    let mut g = c.benchmark_group("save_40MB");
    g.throughput(Throughput::Bytes(BIG_ROWS * COLS * 4));
    g.sample_size(10);
    g.bench_function("save_on_flush", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                store
                    .save("x", ArrayRef::of(&[BIG_ROWS, COLS], &data))
                    .expect("save");
                total += t.elapsed();
                // Untimed: sync and free the replaced file.
                store.checkpoint().expect("checkpoint");
            }
            total
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

fn recovery(c: &mut Criterion) {
    let mut g = c.benchmark_group("recovery_open");
    g.sample_size(10);
    let rows = rows_f32(10, 8);
    for records in [0u64, 100, 1000, 10_000] {
        // A store whose writer "crashed" after `records` appends of 10 rows:
        // the handle is leaked, so no checkpoint ran and the log holds them.
        let template = tempdir();
        let store = store_with(template.path(), Sync::OnFlush, 1000);
        store.checkpoint().expect("checkpoint"); // the log starts empty
        for _ in 0..records {
            store
                .append("x", ArrayRef::of(&[10, COLS], &rows))
                .expect("append");
        }
        std::mem::forget(store);
        let work = tempdir();
        let mut n = 0u64;
        g.throughput(Throughput::Elements(records.max(1)));
        g.bench_function(BenchmarkId::new("log_records", records), |b| {
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
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = small_writes, commit_by_sync, gather, full_read_and_verify, save, recovery
}
criterion_main!(benches);

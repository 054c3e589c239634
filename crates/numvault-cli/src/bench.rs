//! `numvault bench`: a quick self-benchmark on generated data, next to the
//! same work done with plain files; `--hash` compares the content hashes
//! `import` can use.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use numvault::{ArrayRef, OpenOptions, Store};
use serde_json::json;

use crate::out::{human_bytes, table, Fail, Out};

#[derive(Args, Debug)]
pub(crate) struct BenchArgs {
    /// Rows of the generated float32 array.
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: u64,
    /// Columns of the generated array.
    #[arg(long, default_value_t = 10)]
    pub cols: u64,
    /// Timed repetitions of each operation (median and best are reported).
    #[arg(long, default_value_t = 7)]
    pub repeats: usize,
    /// Directory for the temporary store (default: the system temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Compare the throughput of the hash algorithms instead (xxh3, blake3, sha256).
    #[arg(long)]
    pub hash: bool,
    /// MiB of data to hash with --hash.
    #[arg(long, default_value_t = 256)]
    pub hash_mib: u64,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Deterministic pseudo-random bytes (xorshift), no dependency needed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// An operation's timings, and those of the plain-file baseline if any.
type Timings = (&'static str, Vec<f64>, Option<Vec<f64>>);
/// A hash function under test.
type HashFn = fn(&[u8]) -> u64;

fn median_best(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    let m = if v.is_empty() { 0.0 } else { v[v.len() / 2] };
    (m, v.first().copied().unwrap_or(0.0))
}

fn fmt_t(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

fn err(e: impl std::fmt::Display) -> Fail {
    Fail::Error(e.to_string())
}

pub(crate) fn bench(out: &Out, a: &BenchArgs) -> Result<(), Fail> {
    if a.repeats == 0 {
        return Err(Fail::Usage("--repeats must be at least 1".into()));
    }
    if a.hash {
        return bench_hash(out, a);
    }
    if a.rows < 1000 || a.cols == 0 {
        return Err(Fail::Usage(
            "--rows must be at least 1000 and --cols at least 1".into(),
        ));
    }
    let base = a.dir.clone().unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::Builder::new()
        .prefix("numvault-bench-")
        .tempdir_in(&base)
        .map_err(|e| Fail::Error(format!("{}: {e}", base.display())))?;
    let dir = tmp.path().join("store");
    let raw = tmp.path().join("raw.bin");
    let n = (a.rows * a.cols) as usize;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let data: Vec<f32> = (0..n).map(|_| (rng.next() >> 40) as f32 / 1e6).collect();
    let bytes: &[u8] = bytemuck_cast(&data);
    let shape = [a.rows, a.cols];
    let row100: Vec<f32> = (0..100 * a.cols as usize).map(|i| i as f32).collect();
    let shape100 = [100, a.cols];
    let steps = 8 * a.repeats as u64;
    let pb = out.items_bar(steps, "benchmarking");
    let mut res: Vec<Timings> = Vec::new();
    let store = Store::open(&dir, OpenOptions::default())?;
    // save vs fs::write
    let (mut t, mut r) = (Vec::new(), Vec::new());
    for _ in 0..a.repeats {
        let s = Instant::now();
        store.save("bench", ArrayRef::of(&shape, &data))?;
        t.push(s.elapsed().as_secs_f64());
        let s = Instant::now();
        std::fs::write(&raw, bytes).map_err(err)?;
        r.push(s.elapsed().as_secs_f64());
        pb.inc(1);
    }
    res.push(("save", t, Some(r)));
    store.flush()?;
    // full read (checksums verified) vs fs::read
    let (mut t, mut r) = (Vec::new(), Vec::new());
    for _ in 0..a.repeats {
        let s = Instant::now();
        let got = store.read("bench")?;
        t.push(s.elapsed().as_secs_f64());
        if got.data.len() != bytes.len() {
            return Err(Fail::Error("read returned the wrong size".into()));
        }
        let s = Instant::now();
        let got = std::fs::read(&raw).map_err(err)?;
        r.push(s.elapsed().as_secs_f64());
        drop(got);
        pb.inc(1);
    }
    res.push(("load", t, Some(r)));
    store.checkpoint()?;
    // lazy: open read-only + view + first row
    let mut t = Vec::new();
    for _ in 0..a.repeats {
        let s = Instant::now();
        let ro = Store::open(&dir, OpenOptions::read_only())?;
        let v = ro.view("bench")?;
        let first = v.row(0)?.to_vec();
        t.push(s.elapsed().as_secs_f64());
        if first.len() != a.cols as usize * 4 {
            return Err(Fail::Error("lazy row has the wrong size".into()));
        }
        pb.inc(1);
    }
    res.push(("lazy open+row", t, None));
    // replace 100 random rows, append 100 rows, gather 1000 random rows
    let mut t = Vec::new();
    for _ in 0..a.repeats {
        let mut idx: Vec<i64> = (0..100).map(|_| rng.below(a.rows) as i64).collect();
        idx.sort_unstable();
        idx.dedup();
        let rows = &row100[..idx.len() * a.cols as usize];
        let sh = [idx.len() as u64, a.cols];
        let s = Instant::now();
        store.replace("bench", &idx, ArrayRef::of(&sh, rows))?;
        t.push(s.elapsed().as_secs_f64());
        pb.inc(1);
    }
    res.push(("replace 100", t, None));
    let mut t = Vec::new();
    for _ in 0..a.repeats {
        let s = Instant::now();
        store.append("bench", ArrayRef::of(&shape100, &row100))?;
        t.push(s.elapsed().as_secs_f64());
        pb.inc(1);
    }
    res.push(("append 100", t, None));
    let view = store.view("bench")?;
    let rows_now = view.rows();
    let mut t = Vec::new();
    for _ in 0..a.repeats {
        let idx: Vec<i64> = (0..1000).map(|_| rng.below(rows_now) as i64).collect();
        let s = Instant::now();
        let g = view.gather(&idx)?;
        t.push(s.elapsed().as_secs_f64());
        if g.data.len() != 1000 * a.cols as usize * 4 {
            return Err(Fail::Error("gather returned the wrong size".into()));
        }
        pb.inc(1);
    }
    res.push(("gather 1000", t, None));
    drop(view);
    let mut t = Vec::new();
    for _ in 0..a.repeats {
        let s = Instant::now();
        let rep = store.verify()?;
        t.push(s.elapsed().as_secs_f64());
        if !rep.is_clean() {
            return Err(Fail::Damage(format!(
                "verify found problems: {:?}",
                rep.problems
            )));
        }
        pb.inc(2);
    }
    res.push(("verify", t, None));
    pb.finish_and_clear();
    store.close()?;

    let mut rows = Vec::new();
    let mut jops = Vec::new();
    for (op, t, r) in res {
        let (m, b) = median_best(t);
        let (rm, rb) = r.map(median_best).unwrap_or((0.0, 0.0));
        rows.push(vec![
            op.to_string(),
            fmt_t(m),
            fmt_t(b),
            if rm > 0.0 { fmt_t(rm) } else { "-".into() },
            if rm > 0.0 {
                format!("{:.2}", m / rm)
            } else {
                "-".into()
            },
        ]);
        jops.push(json!({
            "op": op, "median_s": m, "best_s": b,
            "plain_file_median_s": (rm > 0.0).then_some(rm), "plain_file_best_s": (rb > 0.0).then_some(rb),
        }));
    }
    out.doc(&json!({
        "ok": true, "rows": a.rows, "cols": a.cols, "dtype": "float32",
        "bytes": bytes.len(), "repeats": a.repeats, "dir": base.display().to_string(), "ops": jops,
    }))?;
    out.line(format!(
        "numvault bench: {} x {} float32 ({}), {} repeats, in {}",
        a.rows,
        a.cols,
        human_bytes(bytes.len() as u64),
        a.repeats,
        base.display()
    ))?;
    for l in table(&["OP", "MEDIAN", "BEST", "PLAIN FILE", "RATIO"], &rows) {
        out.line(l)?;
    }
    out.line("PLAIN FILE: std::fs::write / std::fs::read of the same bytes (no checksums, no atomicity).")?;
    Ok(())
}

fn bytemuck_cast(v: &[f32]) -> &[u8] {
    bytemuck::cast_slice(v)
}

fn bench_hash(out: &Out, a: &BenchArgs) -> Result<(), Fail> {
    let n = (a.hash_mib.max(1) << 20) as usize;
    let mut rng = Rng(7);
    let mut buf = vec![0u8; n];
    for c in buf.chunks_mut(8) {
        let x = rng.next().to_le_bytes();
        c.copy_from_slice(&x[..c.len()]);
    }
    let algos: [(&str, HashFn); 4] = [
        ("xxh3", |b| xxhash_rust::xxh3::xxh3_128(b) as u64),
        ("blake3", |b| blake3::hash(b).as_bytes()[0] as u64),
        ("sha256", |b| {
            let d = <sha2::Sha256 as sha2::Digest>::digest(b);
            d[0] as u64
        }),
        ("crc32c", |b| crc32c::crc32c(b) as u64),
    ];
    let pb = out.items_bar((algos.len() * a.repeats) as u64, "hashing");
    let mut rows = Vec::new();
    let mut j = Vec::new();
    for (name, f) in algos {
        let mut t = Vec::new();
        let mut sink = 0u64;
        for _ in 0..a.repeats {
            let s = Instant::now();
            sink = sink.wrapping_add(f(&buf));
            t.push(s.elapsed().as_secs_f64());
            pb.inc(1);
        }
        std::hint::black_box(sink);
        let (m, b) = median_best(t);
        let gbs = n as f64 / m.max(1e-12) / 1e9;
        rows.push(vec![
            name.to_string(),
            format!("{gbs:.2} GB/s"),
            fmt_t(m),
            fmt_t(b),
        ]);
        j.push(json!({"algorithm": name, "gb_per_s": gbs, "median_s": m, "best_s": b}));
    }
    pb.finish_and_clear();
    out.doc(&json!({"ok": true, "bytes": n, "repeats": a.repeats, "algorithms": j}))?;
    out.line(format!(
        "hash throughput over {} in memory, {} repeats (one thread):",
        human_bytes(n as u64),
        a.repeats
    ))?;
    for l in table(&["HASH", "THROUGHPUT", "MEDIAN", "BEST"], &rows) {
        out.line(l)?;
    }
    out.line("import uses xxh3 by default (--hash blake3|sha256); crc32c is what the engine checksums chunks with.")?;
    Ok(())
}

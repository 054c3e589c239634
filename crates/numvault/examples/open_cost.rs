//! Open + close time of a store whose log holds N KiB of 100-row changes
//! (`cargo run --release --example open_cost -- DIR KIB [mixed] [loop]`):
//! appends only, or (`mixed`) appends, scattered and contiguous replaces of
//! a 1M x 10 float32 array in turn, as bench/compare.py's one-shot rounds
//! leave them. `loop` only opens and closes (for a profiler).
use numvault::{ArrayRef, OpenOptions, Store, Sync};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .get(1)
        .ok_or("usage: open_cost DIR KIB [mixed] [loop]")?;
    let kib: u64 = args.get(2).map_or(Ok(256), |s| s.parse())?;
    let mixed = args.iter().any(|a| a == "mixed");
    let o = || OpenOptions::default().sync(Sync::Never);
    if !args.iter().any(|a| a == "loop") {
        let _ = std::fs::remove_dir_all(dir);
        let s = Store::open(dir, o())?;
        let base_rows: u64 = if mixed { 1_000_000 } else { 100 };
        let base: Vec<f32> = (0..base_rows * 10).map(|i| i as f32).collect();
        s.save("x", ArrayRef::of(&[base_rows, 10], &base))?;
        s.checkpoint()?;
        let rows: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        let scattered: Vec<i64> = (0..100).map(|i| i * 9_973).collect();
        let contiguous: Vec<i64> = (500_000..500_100).collect();
        for k in 0..(kib / 4) {
            let r = ArrayRef::of(&[100, 10], &rows);
            match (mixed, k % 3) {
                (true, 0) => s.replace("x", &scattered, r)?,
                (true, 1) => s.replace("x", &contiguous, r)?,
                _ => s.append("x", r)?,
            }
        }
        drop(s);
    }
    let mut ts = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        let s = Store::open(dir, o())?;
        drop(s);
        ts.push(t.elapsed().as_micros());
    }
    ts.sort();
    println!(
        "{kib} KiB log{}: open+close median {} us",
        if mixed { " (mixed)" } else { "" },
        ts[ts.len() / 2]
    );
    Ok(())
}

//! Open time of a store of N small arrays (`cargo run --release --example
//! open_many -- DIR N [loop]`): builds it (commits of 1,000 saves, as
//! bench/growth.py does) unless `loop`, then times read-only and writer
//! opens (with the first `list("")`).
use numvault::{ArrayRef, OpenOptions, Store, Sync};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).ok_or("usage: open_many DIR N [loop]")?;
    let n: usize = args.get(2).map_or(Ok(100_000), |s| s.parse())?;
    if !args.iter().any(|a| a == "loop") {
        let _ = std::fs::remove_dir_all(dir);
        let s = Store::open(dir, OpenOptions::default().sync(Sync::Never))?;
        let rows: Vec<f32> = (0..100).map(|i| i as f32).collect();
        let names: Vec<String> = (0..n).map(|i| format!("layer_{i:06}")).collect();
        for chunk in names.chunks(1000) {
            let mut t = s.begin()?;
            for name in chunk {
                t.save(name, ArrayRef::of(&[10, 10], &rows))?;
            }
            t.commit()?;
        }
        s.close()?;
    }
    let only_writer = args.iter().any(|a| a == "writer");
    for (what, opts) in [
        ("read-only", OpenOptions::read_only()),
        ("writer", OpenOptions::default()),
    ] {
        if only_writer && what == "read-only" {
            continue;
        }
        let mut ts = Vec::new();
        for _ in 0..7 {
            let t = Instant::now();
            let s = Store::open(dir, opts.clone())?;
            std::hint::black_box(s.list(""));
            ts.push(t.elapsed());
            drop(s);
        }
        ts.sort();
        println!("{n} arrays, {what} open: median {:?}", ts[ts.len() / 2]);
    }
    Ok(())
}

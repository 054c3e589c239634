//! Profile: stream an existing store's array, whole-array read and gather,
//! timing each (`cargo run --release --example stream_cost -- DIR ARRAY`).
use std::time::Instant;

use numvault::{OpenOptions, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (dir, name) = (&args[1], &args[2]);
    let s = Store::open(dir, OpenOptions::read_only())?;
    if args.get(3).is_some_and(|a| a == "gather") {
        let rows = s.shape(name)?[0] as i64;
        let idx: Vec<i64> = (0..1000).map(|i| (i * 7919 * 131) % rows).collect();
        let v = s.view(name)?;
        let mut out = vec![0u8; 1000 * v.row_bytes() as usize];
        for _ in 0..20_000 {
            v.gather_into(&idx, &mut out)?;
        }
        return Ok(());
    }
    if args.get(3).is_some_and(|a| a == "read") {
        for _ in 0..200 {
            std::hint::black_box(s.read(name)?);
        }
        return Ok(());
    }
    if args.get(3).is_some_and(|a| a == "stream") {
        for _ in 0..200 {
            for b in s.batches(name, 10_000)? {
                std::hint::black_box(b?);
            }
        }
        return Ok(());
    }
    for _ in 0..5 {
        let t = Instant::now();
        let mut n = 0usize;
        for b in s.batches(name, 10_000)? {
            n += b?.data.len();
        }
        let ts = t.elapsed();
        let t = Instant::now();
        let all = s.read(name)?;
        let tr = t.elapsed();
        let rows = s.shape(name)?[0] as i64;
        let idx: Vec<i64> = (0..1000).map(|i| (i * 7919 * 131) % rows).collect();
        let v = s.view(name)?;
        let mut out = vec![0u8; 1000 * v.row_bytes() as usize];
        let t = Instant::now();
        for _ in 0..100 {
            v.gather_into(&idx, &mut out)?;
        }
        let tg = t.elapsed() / 100;
        println!(
            "stream {ts:?} ({n} B) read {tr:?} ({} B) gather1000 {tg:?}",
            all.data.len()
        );
    }
    Ok(())
}

//! Open + close time of a store whose log holds N KiB of 4 KB appends.
use numvault::{ArrayRef, OpenOptions, Store, Sync};
use std::time::Instant;

fn main() {
    let dir = std::env::args().nth(1).expect("dir");
    let kib: u64 = std::env::args()
        .nth(2)
        .map_or(800, |s| s.parse().unwrap_or(800));
    let _ = std::fs::remove_dir_all(&dir);
    let o = || OpenOptions::default().sync(Sync::Never);
    let s = Store::open(&dir, o()).unwrap();
    let rows: Vec<f32> = (0..1000).map(|i| i as f32).collect();
    s.save("x", ArrayRef::of(&[100, 10], &rows)).unwrap();
    for _ in 0..(kib / 4) {
        s.append("x", ArrayRef::of(&[100, 10], &rows)).unwrap();
    }
    drop(s);
    let mut ts = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let s = Store::open(&dir, o()).unwrap();
        drop(s);
        ts.push(t.elapsed().as_micros());
    }
    ts.sort();
    println!("{kib} KiB log: open+close median {} us", ts[ts.len() / 2]);
}

//! Automatic compaction: an array whose history of replaces, deletes and
//! appends left many dead rows or row-map fragments is rewritten after the
//! commit that passed the threshold, transparently: contents equal a model
//! throughout, views taken before keep their snapshot, and after a reopen
//! and a power loss the store is consistent.

mod common;

use common::{assert_verify_clean, open_sim, snapshot};
use numvault::sim::SimVfs;
use numvault::{ArrayRef, OpenOptions, Store, Sync};

fn u64s(b: &[u8]) -> Vec<u64> {
    b.chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

#[test]
fn replaces_and_deletes_keep_the_array_compact_and_right() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path(), OpenOptions::default().sync(Sync::Never)).unwrap();
    let rows = 100_000u64;
    let mut model: Vec<u64> = (0..rows).collect();
    s.save("a", ArrayRef::of(&[rows], &model)).unwrap();
    let early = s.view("a").unwrap();
    let mut x = 7u64;
    let mut max_dead = 0;
    let mut rewrites = 0;
    let mut file = s.info("a").unwrap().file;
    for round in 0..60u64 {
        let n = model.len() as u64;
        let idx: Vec<i64> = (0..1000)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 33) % n) as i64
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let vals: Vec<u64> = idx.iter().map(|&i| round << 32 | i as u64).collect();
        s.replace("a", &idx, ArrayRef::of(&[idx.len() as u64], &vals))
            .unwrap();
        for (i, v) in idx.iter().zip(&vals) {
            model[*i as usize] = *v;
        }
        if round % 5 == 0 {
            let del: Vec<i64> = (0..200)
                .map(|k| (k * 37 + round as i64) % n as i64)
                .collect();
            s.delete_rows("a", &del).unwrap();
            let gone: std::collections::BTreeSet<usize> = del.iter().map(|&i| i as usize).collect();
            model = model
                .iter()
                .enumerate()
                .filter(|(i, _)| !gone.contains(i))
                .map(|(_, v)| *v)
                .collect();
        }
        let info = s.info("a").unwrap();
        max_dead = max_dead.max(info.dead_rows);
        if info.file != file {
            rewrites += 1;
            file = info.file;
        }
        assert!(
            info.dead_rows <= 4096.max(info.shape[0] / 16) + 1200,
            "round {round}: {} dead rows were left",
            info.dead_rows
        );
    }
    assert!(rewrites >= 3, "only {rewrites} automatic compactions");
    assert_eq!(u64s(&s.read("a").unwrap().data), model);
    // The view taken before every rewrite still shows its snapshot.
    assert_eq!(
        u64s(&early.to_array().unwrap().data),
        (0..rows).collect::<Vec<_>>()
    );
    assert_verify_clean(&s, "after the history");
    s.close().unwrap();
    let s = Store::open(d.path(), OpenOptions::default()).unwrap();
    assert_eq!(u64s(&s.read("a").unwrap().data), model);
    assert_verify_clean(&s, "reopened");
    println!("{rewrites} automatic compactions, at most {max_dead} dead rows");
}

#[test]
fn a_fragmented_row_map_is_compacted_and_survives_a_power_loss() {
    let sim = SimVfs::new();
    let s = open_sim(&sim, Sync::OnFlush).unwrap();
    let rows = 20_000u64;
    let mut model: Vec<u64> = (0..rows).collect();
    s.save("a", ArrayRef::of(&[rows], &model)).unwrap();
    // Every 100th row: many small extents, few dead rows.
    for k in 0..150i64 {
        let i = (k * 97) % model.len() as i64;
        s.delete_rows("a", &[i]).unwrap();
        model.remove(i as usize);
    }
    assert!(
        s.info("a").unwrap().dead_rows < 100,
        "compacted by the fragments"
    );
    s.flush().unwrap();
    let want = snapshot(&s).unwrap();
    let image = sim.after_power_loss(3);
    drop(s);
    let s = open_sim(&image, Sync::OnFlush).unwrap();
    assert_eq!(snapshot(&s).unwrap(), want);
    assert_eq!(u64s(&s.read("a").unwrap().data), model);
    assert_verify_clean(&s, "after the power loss");
}

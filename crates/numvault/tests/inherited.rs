//! Records another handle wrote and did not sync (FORMAT.md §7.4, §10.1;
//! Appendix A.13): an earlier handle in the same boot whose log is reused,
//! or another writer by turns. Whoever declares them durable (a flush, a
//! commit under `Sync::Always`, a checkpoint) must first sync them: the
//! log, the files they wrote and their `data/` entries. Each scenario kills
//! the first handle (its unsynced writes stay unsynced, `SimVfs::after_kill`),
//! lets a second handle declare, then cuts the power many ways.

use std::path::Path;
use std::sync::Arc;

use numvault::sim::SimVfs;
use numvault::{ArrayRef, OpenOptions, Store, Sync};

const SEEDS: u64 = 64;

fn open(fs: &SimVfs, sync: Sync) -> Store {
    Store::open(
        Path::new("/s"),
        OpenOptions::default().sync(sync).vfs(Arc::new(fs.clone())),
    )
    .unwrap()
}

fn open_shared(fs: &SimVfs, sync: Sync) -> Store {
    Store::open(
        Path::new("/s"),
        OpenOptions::default()
            .sync(sync)
            .shared(true)
            .vfs(Arc::new(fs.clone())),
    )
    .unwrap()
}

/// Rows 0..n of array `name` as u64 values base+i.
fn rows(base: u64, n: u64) -> Vec<u64> {
    (base..base + n).collect()
}

/// The first handle's work, never synced: a save big enough for its own
/// file (the rows are written to the file, not the log), inline appends,
/// and a second array.
fn unsynced_work(s: &Store) {
    s.save("big", ArrayRef::of(&[20_000], &rows(0, 20_000)))
        .unwrap();
    s.append("big", ArrayRef::of(&[3], &rows(20_000, 3)))
        .unwrap();
    s.save("small", ArrayRef::of(&[2], &rows(7, 2))).unwrap();
}

/// After a power loss the store opens, verifies clean, and holds all of
/// the first handle's work (declared durable by the second handle).
fn check_all_there(img: &SimVfs, seed: u64, small_rows: u64) {
    let s = Store::open(
        Path::new("/s"),
        OpenOptions::default().vfs(Arc::new(img.clone())),
    )
    .unwrap_or_else(|e| panic!("seed {seed}: the store does not open: {e}"));
    let rep = s.verify().unwrap();
    assert!(rep.is_clean(), "seed {seed}: {:?}", rep.problems);
    let big = s
        .read("big")
        .unwrap_or_else(|e| panic!("seed {seed}: big: {e}"))
        .to_vec::<u64>()
        .unwrap();
    assert_eq!(big, rows(0, 20_003), "seed {seed}");
    let small = s.read("small").unwrap().to_vec::<u64>().unwrap();
    assert_eq!(small, rows(7, small_rows), "seed {seed}");
}

#[test]
fn a_flush_after_a_reused_log_syncs_the_earlier_handles_records() {
    for declare in ["flush", "append+flush", "checkpoint"] {
        let fs = SimVfs::new();
        let a = open(&fs, Sync::Never);
        unsynced_work(&a);
        let killed = fs.after_kill();
        std::mem::forget(a);
        // Same boot: the log is reused, the first handle's records stay.
        let b = open(&killed, Sync::OnFlush);
        match declare {
            "flush" => b.flush().unwrap(),
            "append+flush" => {
                b.append("small", ArrayRef::of(&[1], &rows(9, 1))).unwrap();
                b.flush().unwrap();
            }
            _ => b.checkpoint().unwrap(),
        }
        let small_rows = if declare == "append+flush" { 3 } else { 2 };
        for seed in 0..SEEDS {
            let img = killed.after_power_loss(seed);
            check_all_there(&img, seed, small_rows);
        }
        std::mem::forget(b);
    }
}

#[test]
fn an_always_commit_after_a_reused_log_syncs_the_earlier_handles_data_first() {
    let fs = SimVfs::new();
    let a = open(&fs, Sync::Never);
    unsynced_work(&a);
    let killed = fs.after_kill();
    std::mem::forget(a);
    let b = open(&killed, Sync::Always);
    // Inline: this commit's own data needs no sync before its record.
    b.append("small", ArrayRef::of(&[1], &rows(9, 1))).unwrap();
    for seed in 0..SEEDS {
        let img = killed.after_power_loss(seed);
        check_all_there(&img, seed, 3);
    }
    std::mem::forget(b);
}

#[test]
fn a_writer_by_turns_syncs_what_it_caught_up_with() {
    for declare in ["flush", "checkpoint"] {
        let fs = SimVfs::new();
        let a = open_shared(&fs, Sync::Never);
        let b = open_shared(&fs, Sync::OnFlush);
        unsynced_work(&a);
        // A writable session's end: new bytes in the file, new checksums.
        let mut w = a.writable("big").unwrap();
        w.bytes_mut()[0..8].copy_from_slice(&5u64.to_le_bytes());
        w.finish().unwrap();
        a.save("small", ArrayRef::of(&[2], &rows(7, 2))).unwrap();
        // b catches up in its turn and declares everything durable.
        b.append("small", ArrayRef::of(&[1], &rows(9, 1))).unwrap();
        match declare {
            "flush" => b.flush().unwrap(),
            _ => b.checkpoint().unwrap(),
        }
        for seed in 0..SEEDS {
            let img = fs.after_power_loss(seed);
            let s = Store::open(
                Path::new("/s"),
                OpenOptions::default().vfs(Arc::new(img.clone())),
            )
            .unwrap_or_else(|e| panic!("{declare} seed {seed}: the store does not open: {e}"));
            let rep = s.verify().unwrap();
            assert!(rep.is_clean(), "{declare} seed {seed}: {:?}", rep.problems);
            let big = s.read("big").unwrap().to_vec::<u64>().unwrap();
            let mut want = rows(0, 20_003);
            want[0] = 5;
            assert_eq!(big, want, "{declare} seed {seed}");
            let small = s.read("small").unwrap().to_vec::<u64>().unwrap();
            assert_eq!(small, rows(7, 3), "{declare} seed {seed}");
        }
        std::mem::forget(a);
        std::mem::forget(b);
    }
}

#[test]
fn what_a_clean_close_synced_is_not_synced_again_in_the_same_boot() {
    // The close notes in LOCK what its sync covered (FORMAT.md §1.1): a
    // flush right after reopening syncs nothing. After a kill, the records
    // past the last sync are the opener's to sync: its flush syncs.
    let syncs = |fs: &SimVfs| {
        fs.point_kinds()
            .iter()
            .filter(|k| **k == "sync" || **k == "sync_dir")
            .count()
    };
    let fs = SimVfs::new();
    let a = open(&fs, Sync::OnFlush);
    a.save("small", ArrayRef::of(&[2], &rows(7, 2))).unwrap();
    a.append("small", ArrayRef::of(&[1], &rows(9, 1))).unwrap();
    a.close().unwrap();
    let b = open(&fs, Sync::OnFlush);
    fs.set_plan(Default::default());
    b.flush().unwrap();
    assert_eq!(syncs(&fs), 0, "{:?}", fs.point_kinds());
    b.append("small", ArrayRef::of(&[1], &rows(10, 1))).unwrap();
    let killed = fs.after_kill();
    std::mem::forget(b);
    let c = open(&killed, Sync::OnFlush);
    killed.set_plan(Default::default());
    c.flush().unwrap();
    assert!(syncs(&killed) > 0, "{:?}", killed.point_kinds());
    for seed in 0..SEEDS {
        let img = killed.after_power_loss(seed);
        let s = open(&img, Sync::OnFlush);
        let small = s.read("small").unwrap().to_vec::<u64>().unwrap();
        assert_eq!(small, rows(7, 4), "seed {seed}");
    }
    std::mem::forget(c);
}

/// Found by the power-loss trials once versions changed their random
/// workloads: a first handle under `Sync::Always` syncs a Put's rows, writes
/// its record and is killed before it notes the record in `LOCK`. The next
/// handle (same boot) took that file for a fresh one (no durable state
/// referring to it) and, dropping the array, released it at once; a power
/// loss then kept the Put's record and lost the Release, and recovery
/// refused the store (`synced` rows missing). A Put synced before its
/// record is never fresh now. Every kill point of the first handle's save,
/// every crash point of the second handle's drop and flush, power losses.
#[test]
fn a_put_synced_before_its_record_is_never_released_by_the_next_handle() {
    use numvault::sim::FaultPlan;
    let big = rows(0, 20_000);
    let save = |s: &Store| s.save("big", ArrayRef::of(&[20_000], &big));
    let count = SimVfs::new();
    let a = open(&count, Sync::Always);
    count.set_plan(FaultPlan::default());
    save(&a).unwrap();
    let points = count.points();
    drop(a);
    let mut images = 0;
    for k1 in 0..=points {
        let fs = SimVfs::new();
        let a = open(&fs, Sync::Always);
        fs.set_plan(FaultPlan {
            crash_at: Some(k1),
            ..FaultPlan::default()
        });
        let _ = save(&a);
        drop(a);
        let killed = fs.after_kill();
        let second = |sim: &SimVfs, plan: FaultPlan| {
            let b = open(sim, Sync::OnFlush);
            sim.set_plan(plan);
            if b.has("big") {
                let _ = b.drop_array("big");
            }
            let _ = b.flush();
        };
        let c2 = killed.after_kill();
        second(&c2, FaultPlan::default());
        for k2 in 0..=c2.points() {
            let sim2 = killed.after_kill();
            second(
                &sim2,
                FaultPlan {
                    crash_at: Some(k2),
                    ..FaultPlan::default()
                },
            );
            for seed in 0..4 {
                let img = sim2.after_power_loss(seed);
                let s = Store::open(
                    Path::new("/s"),
                    OpenOptions::default().vfs(Arc::new(img.clone())),
                )
                .unwrap_or_else(|e| panic!("kill {k1}, crash {k2}, image {seed}: {e}"));
                let rep = s.verify().unwrap();
                assert!(rep.is_clean(), "kill {k1}, crash {k2}: {:?}", rep.problems);
                images += 1;
            }
        }
    }
    assert!(images > 0);
}

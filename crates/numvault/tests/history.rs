//! The commit history (`Store::history`, the HISTORY file): every commit is
//! listed once, in order, across checkpoints, reopenings and crashes, with
//! the hash chain linked end to end; damage is reported, never fatal.

mod common;

use common::*;
use numvault::sim::{FaultPlan, SimVfs};
use numvault::{DType, OpKind, OpenOptions, Store, Sync};

/// (kind, array, rows) of each commit, as the test expects them.
type Expected = Vec<(OpKind, String, u64)>;

fn listed(store: &Store) -> Expected {
    let rep = store.history().unwrap();
    assert!(rep.is_clean(), "history problems: {:?}", rep.problems);
    assert_eq!(rep.head_seq, store.last_seq());
    for (i, c) in rep.commits.iter().enumerate() {
        assert_eq!(c.seq, i as u64 + 1, "commits in seq order, no gaps");
    }
    rep.commits
        .iter()
        .map(|c| {
            assert_eq!(c.ops.len(), 1);
            (c.ops[0].kind, c.ops[0].array.clone(), c.ops[0].rows)
        })
        .collect()
}

/// A fixed sequence of one-op commits; checkpoints and reopenings in between.
fn run(store_at: &dyn Fn() -> Store) -> Expected {
    let mut want = Expected::new();
    let mut store = store_at();
    let a = arr(DType::F32, &[10, 3], 1);
    let one = arr(DType::F32, &[1, 3], 2);
    for round in 0..4u64 {
        let name = format!("g/a{round}");
        store.save(&name, a.r()).unwrap();
        want.push((OpKind::Save, name.clone(), 10));
        store.append(&name, one.r()).unwrap();
        want.push((OpKind::Append, name.clone(), 1));
        store.replace(&name, &[0], one.r()).unwrap();
        want.push((OpKind::Replace, name.clone(), 1));
        store.delete_rows(&name, &[1, 2]).unwrap();
        want.push((OpKind::DeleteRows, name.clone(), 2));
        assert_eq!(listed(&store), want, "round {round}, before checkpoint");
        match round % 3 {
            0 => store.checkpoint().unwrap(),
            1 => {
                store.close().unwrap();
                store = store_at();
            }
            _ => {}
        }
        assert_eq!(
            listed(&store),
            want,
            "round {round}, after checkpoint/reopen"
        );
    }
    store.compact("g/a0").unwrap();
    want.push((OpKind::Compact, "g/a0".into(), 9));
    store.rename("g/a1", "h").unwrap();
    want.push((OpKind::Rename, "g/a1".into(), 0));
    store.drop_array("h").unwrap();
    want.push((OpKind::Drop, "h".into(), 0));
    store.close().unwrap();
    let store = store_at();
    assert_eq!(listed(&store), want);
    // A read-only handle sees the same history.
    want
}

#[test]
fn every_commit_is_listed_once_across_checkpoints_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let want = run(&|| Store::open(&path, OpenOptions::default()).unwrap());
    let ro = Store::open(&path, OpenOptions::read_only()).unwrap();
    assert_eq!(listed(&ro), want);
    let rep = ro.history().unwrap();
    let renamed = rep.commits.iter().find(|c| c.ops[0].kind == OpKind::Rename);
    assert_eq!(renamed.unwrap().ops[0].to.as_deref(), Some("h"));
    assert!(rep.commits.iter().all(|c| c.time_ns > 0));
}

#[test]
fn history_survives_crashes_at_every_point_of_a_checkpoint() {
    // Commit, then crash at every fault point of the open that replays and
    // checkpoints the log (process crash and power loss): after reopening,
    // the history lists each commit once.
    let base = SimVfs::new();
    {
        let s = open_sim(&base, Sync::Always).unwrap();
        let a = arr(DType::U8, &[4, 2], 3);
        s.save("x", a.r()).unwrap();
        s.checkpoint().unwrap();
        s.append("x", a.r()).unwrap();
        s.append("x", a.r()).unwrap();
        std::mem::forget(s); // leave the log un-checkpointed
    }
    let want: Expected = vec![
        (OpKind::Save, "x".into(), 4),
        (OpKind::Append, "x".into(), 4),
        (OpKind::Append, "x".into(), 4),
    ];
    let mut crashed = 0;
    for point in 0.. {
        // Opening after a reboot replays the log with every check and
        // checkpoints it: crash in there. (In the boot that wrote the log,
        // an open reuses it without a checkpoint since issue 11.)
        let sim = base.after_crash(false);
        let start = sim.points();
        sim.set_plan(FaultPlan {
            crash_at: Some(start + point),
            ..Default::default()
        });
        let r = open_sim(&sim, Sync::Always);
        if !sim.crashed() {
            assert_eq!(listed(&r.unwrap()), want);
            break;
        }
        if let Ok(s) = r {
            std::mem::forget(s);
        }
        crashed += 1;
        for (i, image) in [sim.after_crash(false), sim.after_power_loss(point)]
            .into_iter()
            .enumerate()
        {
            let s = open_sim(&image, Sync::Always).unwrap();
            assert_eq!(listed(&s), want, "crash point {point}, image {i}");
            // A later commit and checkpoint still produce a clean history.
            s.append("x", arr(DType::U8, &[1, 2], 4).r()).unwrap();
            s.checkpoint().unwrap();
            let mut w = want.clone();
            w.push((OpKind::Append, "x".into(), 1));
            assert_eq!(listed(&s), w, "crash point {point}, image {i}, after");
        }
    }
    assert!(
        crashed > 3,
        "the checkpoint had only {crashed} fault points"
    );
    report_figures(&format!(
        "history: {crashed} crash points of a replaying open x 2 images, each commit listed once"
    ));
}

#[test]
fn damage_to_history_is_reported_and_the_rest_still_listed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let s = Store::open(&path, OpenOptions::default()).unwrap();
    let a = arr(DType::I64, &[3], 5);
    for _ in 0..5 {
        s.append("v", a.r())
            .or_else(|_| s.save("v", a.r()))
            .unwrap();
        s.checkpoint().unwrap();
    }
    s.close().unwrap();
    let h = path.join("HISTORY");
    let clean = std::fs::read(&h).unwrap();
    // Flip one byte inside the third entry.
    let mut bad = clean.clone();
    let mid = 16 + (clean.len() - 16) / 2;
    bad[mid] ^= 0x40;
    std::fs::write(&h, &bad).unwrap();
    // Opening is unaffected; the store's data is intact.
    let s = Store::open(&path, OpenOptions::default()).unwrap();
    assert_verify_clean(&s, "after HISTORY damage");
    assert_eq!(s.shape("v").unwrap(), vec![15]);
    let rep = s.history().unwrap();
    assert!(!rep.is_clean());
    assert!(
        rep.problems
            .iter()
            .any(|p| p.file.ends_with("HISTORY") && p.range.is_some()),
        "{:?}",
        rep.problems
    );
    assert!(
        rep.problems.iter().any(|p| p.detail.contains("incomplete")),
        "the gap is named: {:?}",
        rep.problems
    );
    assert_eq!(rep.commits.len(), 4, "the four undamaged commits remain");
    // A truncated file: the entries before the cut remain.
    std::fs::write(&h, &clean[..clean.len() - 7]).unwrap();
    let rep = s.history().unwrap();
    assert_eq!(rep.commits.len(), 4);
    assert!(!rep.is_clean());
    // Garbage in place of the file: reported, no panic.
    std::fs::write(&h, b"garbage").unwrap();
    let rep = s.history().unwrap();
    assert!(!rep.is_clean());
    assert!(rep.commits.is_empty());
}

//! Transactions that stage their changes (`Store::begin`): validation
//! against the staged state, atomic commit, discard, staging files for rows
//! beyond the memory budget, streamed rows, conflicts with other writers.

mod common;
mod workload;

use std::path::Path;
use std::sync::Arc;

use common::{assert_verify_clean, snapshot};
use numvault::sim::{FaultPlan, SimVfs};
use numvault::{ArrayRef, DType, Error, OpenOptions, Store, Sync};

fn u32s(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn stage_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir.join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("stage-"))
        .collect()
}

fn open(dir: &Path) -> Store {
    Store::open(dir, OpenOptions::default()).unwrap()
}

#[test]
fn changes_are_checked_against_the_state_the_earlier_ones_leave() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    s.save("a", ArrayRef::of(&[4], &[1u32, 2, 3, 4])).unwrap();
    let mut t = s.begin().unwrap();
    t.append("a", ArrayRef::of(&[2], &[5u32, 6])).unwrap();
    assert_eq!(t.shape("a").unwrap(), vec![6]);
    // Index 5 exists only after the staged append; -1 is the appended row.
    t.replace("a", &[5, -2], ArrayRef::of(&[2], &[60u32, 50]))
        .unwrap();
    let e = t
        .replace("a", &[6], ArrayRef::of(&[1], &[0u32]))
        .unwrap_err();
    assert!(
        matches!(e, Error::IndexOutOfRange { ref array, index: 6, rows: 6 } if array == "a"),
        "{e}"
    );
    t.delete_rows("a", &[0]).unwrap();
    t.rename("a", "b").unwrap();
    assert!(matches!(
        t.append("a", ArrayRef::of(&[1], &[0u32])),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        t.append("b", ArrayRef::of(&[1], &[0u64])),
        Err(Error::DTypeMismatch { .. })
    ));
    t.save("c", ArrayRef::of(&[1, 2], &[7i16, 8])).unwrap();
    t.drop_array("c").unwrap();
    assert!(!t.has("c"));
    // Nothing is visible before the commit.
    assert_eq!(s.list(""), vec!["a"]);
    assert_eq!(s.shape("a").unwrap(), vec![4]);
    let seq = s.last_seq();
    t.commit().unwrap();
    assert_eq!(s.last_seq(), seq + 1, "one commit, one record");
    assert_eq!(s.list(""), vec!["b"]);
    assert_eq!(
        s.read("b").unwrap().data,
        u32s(&[2, 3, 4, 50, 60]),
        "the failed stagings left nothing behind"
    );
    drop(s);
    let s = open(d.path());
    assert_eq!(s.read("b").unwrap().data, u32s(&[2, 3, 4, 50, 60]));
    assert_verify_clean(&s, "reopened");
}

#[test]
fn a_dropped_transaction_changes_nothing_and_leaves_no_files() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    let big: Vec<u32> = (0..100_000).collect();
    s.save("a", ArrayRef::of(&[10], &big[..10])).unwrap();
    let before = snapshot(&s).unwrap();
    {
        let mut t = s.begin_with_memory(1024).unwrap();
        t.save("big", ArrayRef::of(&[100_000], &big)).unwrap();
        t.append("a", ArrayRef::of(&[50_000], &big[..50_000]))
            .unwrap();
        assert_eq!(stage_files(d.path()).len(), 2, "a staged file and a spill");
    }
    assert!(stage_files(d.path()).is_empty());
    assert_eq!(snapshot(&s).unwrap(), before);
    assert_verify_clean(&s, "after discard");
}

#[test]
fn rows_beyond_the_memory_budget_go_through_staging_files() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    let vals: Vec<u32> = (0..300_000).map(|i| i * 7).collect();
    s.save("a", ArrayRef::of(&[1000, 3], &vals[..3000]))
        .unwrap();
    let mut t = s.begin_with_memory(64 << 10).unwrap();
    // Appends and replaces spill, saves are staged whole, small ones stay
    // in memory; a replace addresses rows a spilled append added.
    for k in 0..10u32 {
        let rows = &vals[(k as usize) * 30_000..(k as usize + 1) * 30_000];
        t.append("a", ArrayRef::of(&[10_000, 3], rows)).unwrap();
    }
    t.replace("a", &[-1, 5], ArrayRef::of(&[2, 3], &[9u32, 9, 9, 8, 8, 8]))
        .unwrap();
    t.save("b", ArrayRef::of(&[100_000, 3], &vals)).unwrap();
    t.save("tiny", ArrayRef::of(&[2], &[1u8, 2])).unwrap();
    assert!(stage_files(d.path()).len() >= 2);
    t.commit().unwrap();
    assert!(
        stage_files(d.path()).is_empty(),
        "staging files moved or removed"
    );
    let mut want: Vec<u32> = vals[..3000].to_vec();
    want.extend_from_slice(&vals);
    want[15..18].copy_from_slice(&[8, 8, 8]);
    let n = want.len();
    want[n - 3..].copy_from_slice(&[9, 9, 9]);
    assert_eq!(s.read("a").unwrap().data, u32s(&want));
    assert_eq!(s.read("b").unwrap().data, u32s(&vals));
    assert_eq!(s.read("tiny").unwrap().data, vec![1, 2]);
    assert_verify_clean(&s, "committed");
    s.close().unwrap();
    let s = open(d.path());
    assert_eq!(s.read("a").unwrap().data, u32s(&want));
    assert_verify_clean(&s, "reopened");
}

#[test]
fn streamed_rows_make_one_save_or_append() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    let mut t = s.begin_with_memory(0).unwrap();
    let mut w = t.save_stream("st", DType::U32, &[2]).unwrap();
    assert_eq!(w.row_bytes(), 8);
    let mut want = Vec::new();
    for k in 0..500u32 {
        let rows: Vec<u32> = (0..2000).map(|i| k * 2000 + i).collect();
        w.write(&u32s(&rows)).unwrap();
        want.extend(rows);
    }
    assert!(matches!(w.write(&[0u8; 3]), Err(Error::InvalidArgument(_))));
    assert_eq!(w.rows(), 500_000);
    w.finish().unwrap();
    assert_eq!(t.shape("st").unwrap(), vec![500_000, 2]);
    let mut w = t.append_stream("st").unwrap();
    w.write(&u32s(&[1, 2, 3, 4])).unwrap();
    w.finish().unwrap();
    want.extend([1, 2, 3, 4]);
    // An abandoned stream stages nothing.
    let mut w = t.append_stream("st").unwrap();
    w.write(&u32s(&[9, 9])).unwrap();
    drop(w);
    let mut w = t.save_stream("gone", DType::U8, &[]).unwrap();
    w.write(&[1, 2, 3]).unwrap();
    drop(w);
    assert!(!t.has("gone"));
    assert!(matches!(
        t.save_stream("z", DType::U8, &[0]),
        Err(Error::InvalidArgument(_))
    ));
    t.commit().unwrap();
    assert_eq!(s.shape("st").unwrap(), vec![500_002, 2]);
    assert_eq!(s.read("st").unwrap().data, u32s(&want));
    assert!(!s.has("gone"));
    assert!(stage_files(d.path()).is_empty());
    assert_verify_clean(&s, "streamed");
}

#[test]
fn changes_that_no_longer_apply_are_a_conflict_and_commit_nothing() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    s.save("a", ArrayRef::of(&[10], &[0u32; 10])).unwrap();
    s.save("b", ArrayRef::of(&[1], &[0u32])).unwrap();
    let mut t = s.begin().unwrap();
    t.append("b", ArrayRef::of(&[1], &[1u32])).unwrap();
    t.replace("a", &[9], ArrayRef::of(&[1], &[5u32])).unwrap();
    // Another writer (here: the same handle) shortens "a" meanwhile.
    s.delete_rows("a", &[0, 1, 2]).unwrap();
    let before = snapshot(&s).unwrap();
    let e = t.commit().unwrap_err();
    assert!(
        matches!(e, Error::Conflict(ref m) if m.contains("replace in 'a'") && m.contains("index 9")),
        "{e}"
    );
    assert_eq!(snapshot(&s).unwrap(), before, "nothing was committed");
    assert!(stage_files(d.path()).is_empty());
    // A change elsewhere does not conflict.
    let mut t = s.begin().unwrap();
    t.replace("a", &[6], ArrayRef::of(&[1], &[5u32])).unwrap();
    s.append("b", ArrayRef::of(&[1], &[2u32])).unwrap();
    t.commit().unwrap();
    assert_eq!(s.read("a").unwrap().data[24..28], 5u32.to_le_bytes());
}

#[test]
fn another_writer_by_turns_makes_a_change_a_conflict_too() {
    // The other writer's commit is seen only when this one catches up,
    // inside the commit (Appendix A.14).
    let d = tempfile::tempdir().unwrap();
    let shared = || OpenOptions::default().shared(true);
    let s = Store::open(d.path(), shared()).unwrap();
    s.save("a", ArrayRef::of(&[10], &[0u32; 10])).unwrap();
    let mut t = s.begin().unwrap();
    t.replace("a", &[9], ArrayRef::of(&[1], &[5u32])).unwrap();
    let other = Store::open(d.path(), shared()).unwrap();
    other.delete_rows("a", &[0, 1, 2]).unwrap();
    other.close().unwrap();
    let e = t.commit().unwrap_err();
    assert!(
        matches!(e, Error::Conflict(ref m) if m.contains("replace in 'a'") && m.contains("index 9")),
        "{e}"
    );
    assert_eq!(s.shape("a").unwrap(), vec![7]);
    assert!(stage_files(d.path()).is_empty());
}

#[test]
fn staging_files_of_a_crashed_transaction_are_removed_at_the_next_open() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    s.save("a", ArrayRef::of(&[1], &[1u8])).unwrap();
    let big = vec![7u8; 1 << 20];
    let mut t = s.begin_with_memory(0).unwrap();
    t.save("big", ArrayRef::of(&[1 << 20], &big)).unwrap();
    t.append("a", ArrayRef::of(&[1 << 20], &big)).unwrap();
    assert_eq!(stage_files(d.path()).len(), 2);
    // As if the process died: no cleanup runs.
    std::mem::forget(t);
    std::mem::forget(s);
    // The forgotten handles hold their locks in this process: emulate the
    // crash by copying the directory, as the next process would find it.
    let d2 = tempfile::tempdir().unwrap();
    copy_dir(d.path(), d2.path());
    assert_eq!(stage_files(d2.path()).len(), 2);
    let s = open(d2.path());
    assert!(stage_files(d2.path()).is_empty());
    assert_eq!(s.list(""), vec!["a"]);
    assert_verify_clean(&s, "after crash");
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dst).unwrap();
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// Every I/O fault during a commit of staged changes leaves the store at
/// the state before or after the commit (here: before, since the commit
/// reports the error), and after a reopen no staging file is left.
#[test]
fn a_failure_anywhere_in_a_staged_commit_changes_nothing() {
    let vals: Vec<u32> = (0..40_000).collect();
    let mut point = 0u64;
    let mut failures = 0;
    loop {
        let sim = SimVfs::new();
        let opts = OpenOptions::default()
            .sync(Sync::Always)
            .vfs(Arc::new(sim.clone()));
        let s = Store::open("/s", opts.clone()).unwrap();
        s.save("a", ArrayRef::of(&[100], &vals[..100])).unwrap();
        let before = snapshot(&s).unwrap();
        let mut t = s.begin_with_memory(1000).unwrap();
        t.append("a", ArrayRef::of(&[20_000], &vals[..20_000]))
            .unwrap();
        t.save("b", ArrayRef::of(&[40_000], &vals)).unwrap();
        t.replace("a", &[0], ArrayRef::of(&[1], &[9u32])).unwrap();
        // Fault points count from here.
        sim.set_plan(FaultPlan {
            fail_at: Some((point, std::io::ErrorKind::Other)),
            ..FaultPlan::default()
        });
        let res = t.commit();
        let end = sim.points();
        sim.set_plan(FaultPlan::default());
        match res {
            Ok(()) => {
                assert!(snapshot(&s).unwrap().contains_key("b"));
                if point >= end {
                    break;
                }
            }
            Err(e) => {
                failures += 1;
                if !matches!(e, Error::Poisoned { .. }) && !s.is_read_only() {
                    let now = snapshot(&s);
                    if let Ok(now) = now {
                        assert_eq!(now, before, "point {point}: {e}");
                    }
                }
            }
        }
        drop(s);
        let s = Store::open("/s", opts).unwrap();
        let now = snapshot(&s).unwrap();
        assert!(
            now == before || now.contains_key("b"),
            "point {point}: reopened between states"
        );
        assert_verify_clean(&s, &format!("point {point}"));
        point += 1;
        assert!(point < 500, "the commit never got through");
    }
    assert!(failures >= 5, "only {failures} fault points were hit");
}

/// Staged changes read back (`Txn::read`, `shape`, `has`, `names`) equal a
/// model of the changes after every step, for random workloads (replaces
/// of appended rows, deletes, renames, drops, saves over arrays); the
/// commit then gives the model's contents.
#[test]
fn staged_changes_read_back_as_a_model_says() {
    use workload::{generate_data_only as generate, Op, Rng};
    for seed in 0..12u64 {
        let d = tempfile::tempdir().unwrap();
        let s = open(d.path());
        let mut rng = Rng::new(seed);
        let mut model = common::Snap::new();
        // A committed start, then one transaction of many changes.
        for op in generate(&mut rng, &mut model, 30) {
            op.run(&s).unwrap();
        }
        let start = model.clone();
        let mut staged_model = start.clone();
        let ops = generate(&mut rng, &mut staged_model, 40);
        let flat: Vec<Op> = ops
            .into_iter()
            .flat_map(|op| match op {
                Op::Batch(v) | Op::Txn(v) => v,
                Op::Flush | Op::Checkpoint => vec![],
                other => vec![other],
            })
            .collect();
        let mut m = start.clone();
        let mut t = s
            .begin_with_memory(if seed % 2 == 0 { 0 } else { 1 << 20 })
            .unwrap();
        for (i, op) in flat.iter().enumerate() {
            op.run_in(&mut t).unwrap();
            op.apply(&mut m);
            let ctx = format!("seed {seed}, step {i} ({})", op.encode());
            assert_eq!(t.names(), m.keys().cloned().collect::<Vec<_>>(), "{ctx}");
            for (name, want) in &m {
                let got = t
                    .read(name)
                    .unwrap_or_else(|e| panic!("{ctx}: read {name}: {e}"));
                assert_eq!(
                    (got.dtype, &got.shape),
                    (want.dtype, &want.shape),
                    "{ctx}: {name}"
                );
                assert!(got.data == want.data, "{ctx}: {name}: rows differ");
                assert_eq!(t.shape(name).unwrap(), want.shape, "{ctx}");
            }
        }
        assert_eq!(
            snapshot(&s).unwrap(),
            start,
            "seed {seed}: nothing visible before commit"
        );
        t.commit().unwrap();
        assert_eq!(snapshot(&s).unwrap(), m, "seed {seed}: committed");
        assert_verify_clean(&s, &format!("seed {seed}"));
    }
}

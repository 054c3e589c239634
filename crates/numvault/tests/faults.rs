//! I/O errors injected at every fault point of every operation, through
//! `SimVfs`: EIO and ENOSPC at every write, fsync, truncate, create, rename,
//! remove and directory fsync, and EIO at every read, under every policy.
//!
//! For each injected fault:
//! - a failed operation returns `Error::Io` naming a file of the store and
//!   carrying the injected error kind, and the handle still shows the state
//!   from before the operation;
//! - a failed fsync (of a file or a directory) gates the handle (the
//!   fsync-gate problem: the kernel may have dropped the dirty pages, so a
//!   retried fsync proves nothing): every later mutation and flush returns
//!   `Error::Poisoned` until the store is reopened;
//! - any other fault is transient: once it clears, later operations work on
//!   the same handle;
//! - reopening is clean (`verify()`), and shows the state before the
//!   operation or, if it had reached the log, after it (exactly the expected
//!   one when the handle was not poisoned), plus any later writes.
//!
//! The figures (fault points injected) print at the end; set
//! `NUMVAULT_FIGURES=<file>` to append them to a file.

mod common;

use std::io;
use std::sync::LazyLock;

use common::*;
use numvault::sim::{FaultPlan, SimVfs};
use numvault::{Batch, DType, Error, Store, Sync};

static A: LazyLock<Arr> = LazyLock::new(|| arr(DType::F32, &[20, 4], 1));
static BIG: LazyLock<Arr> = LazyLock::new(|| arr(DType::U8, &[40, 4096], 3));
static C: LazyLock<Arr> = LazyLock::new(|| arr(DType::F64, &[5, 2, 3], 4));
static HUGE: LazyLock<Arr> = LazyLock::new(|| arr(DType::F32, &[50, 1000], 5));
static BIG_ROWS: LazyLock<Arr> = LazyLock::new(|| arr(DType::U8, &[20, 4096], 7));
static A_ROWS: LazyLock<Arr> = LazyLock::new(|| arr(DType::F32, &[3, 4], 8));
static SMALL: LazyLock<Arr> = LazyLock::new(|| arr(DType::I32, &[8, 3], 9));
static POST: LazyLock<Arr> = LazyLock::new(|| arr(DType::U64, &[4, 2], 11));

type OpFn = fn(&Store) -> numvault::Result<()>;

fn ops() -> Vec<(&'static str, OpFn)> {
    vec![
        ("save small", |s| s.save("n", SMALL.r())),
        ("save large", |s| s.save("huge", HUGE.r())),
        ("overwrite large", |s| s.save("big", HUGE.r())),
        ("append small", |s| s.append("a", A_ROWS.r())),
        ("append large", |s| s.append("big", BIG_ROWS.r())),
        ("replace small", |s| s.replace("a", &[-1, 3, 0], A_ROWS.r())),
        ("replace large", |s| {
            let idx: Vec<i64> = (0..20)
                .map(|i| if i % 2 == 0 { -1 - i } else { i })
                .collect();
            s.replace("big", &idx, BIG_ROWS.r())
        }),
        ("delete rows", |s| s.delete_rows("a", &[3, -1, 3, 0])),
        ("compact small", |s| s.compact("a").map(|_| ())),
        ("compact large", |s| s.compact("big").map(|_| ())),
        ("drop", |s| s.drop_array("g/c")),
        ("rename", |s| s.rename("g/c", "h/c")),
        ("batch", |s| {
            let mut b = Batch::new();
            b.save("n", SMALL.r())
                .append("a", A_ROWS.r())
                .rename("a", "z")
                .compact("big")
                .append("big", BIG_ROWS.r())
                .drop_array("g/c");
            s.commit(&b)
        }),
        ("flush", |s| s.flush()),
        ("checkpoint", |s| s.checkpoint()),
        ("snapshot", |s| s.snapshot(Some("t")).map(|_| ())),
        ("restore all", |s| s.restore("v0", None)),
        ("restore one", |s| s.restore("v0", Some(&["a"]))),
        ("delete version", |s| s.delete_snapshot("v0")),
        ("gc", |s| s.gc().map(|_| ())),
    ]
}

/// A durable base with a flushed log tail (replaced and deleted rows), as a
/// file-system image to copy for each trial.
fn base(sync: Sync) -> SimVfs {
    let sim = SimVfs::new();
    let s = open_sim(&sim, sync).unwrap();
    s.save("a", A.r()).unwrap();
    s.save("big", BIG.r()).unwrap();
    s.save("g/c", C.r()).unwrap();
    s.close().unwrap();
    let s = open_sim(&sim, sync).unwrap();
    s.replace("a", &[2, 5, 7], A_ROWS.r()).unwrap();
    s.delete_rows("a", &[0]).unwrap();
    s.append("big", BIG_ROWS.r()).unwrap();
    s.flush().unwrap();
    // Versions: one kept (in the log, no version file yet), one deleted
    // (its files wait for a gc).
    s.snapshot(Some("v0")).unwrap();
    s.save("big", HUGE.r()).unwrap();
    s.snapshot(Some("vdel")).unwrap();
    s.save("big", BIG.r()).unwrap();
    s.delete_snapshot("vdel").unwrap();
    // One more record, then the process dies: every trial starts with a
    // log to replay.
    s.append("a", A_ROWS.r()).unwrap();
    // ... and 'a' back as v0 has it: its slots end below its file's
    // committed end, so the trials' appends and replaces of 'a' relocate it
    // first (FORMAT.md §15.2).
    s.restore("v0", Some(&["a"])).unwrap();
    sim.set_plan(FaultPlan {
        crash_at: Some(0),
        ..FaultPlan::default()
    });
    drop(s);
    sim.after_crash(true)
}

fn with_post(mut snap: Snap) -> Snap {
    snap.insert("post".into(), POST.clone());
    snap
}

#[derive(Default)]
struct Counts {
    write_points: u64,
    sync_points: u64,
    read_points: u64,
    poisoned: u64,
    failed_ops: u64,
}

fn is_sync(kind: &str) -> bool {
    kind == "sync" || kind == "sync_dir"
}

fn check_error(e: &Error, kind: Option<io::ErrorKind>, ctx: &str) {
    let msg = e.to_string();
    match e {
        Error::Io { path, source } => {
            assert!(
                path.starts_with(SIM_PATH),
                "{ctx}: the error names no store file: {msg}"
            );
            if let Some(k) = kind {
                assert_eq!(source.kind(), k, "{ctx}: error kind lost: {msg}");
            }
        }
        other => panic!("{ctx}: expected Error::Io naming a file, got {other:?} ({msg})"),
    }
}

fn fault_trials(sync: Sync, c: &mut Counts) {
    let image = base(sync);
    for (name, op) in ops() {
        // Fault-free: the points, reads and state after.
        let sim = image.after_crash(true);
        let s = open_sim(&sim, sync).unwrap();
        let before = snapshot_with_versions(&s).unwrap();
        sim.set_plan(FaultPlan::default());
        op(&s).unwrap_or_else(|e| panic!("fault-free {name}: {e}"));
        let (points, reads, kinds) = (sim.points(), sim.reads(), sim.point_kinds());
        let after = snapshot_with_versions(&s).unwrap();
        drop(s);

        let mut plans: Vec<(FaultPlan, String, Option<io::ErrorKind>, bool)> = Vec::new();
        for k in 0..points {
            for kind in [io::ErrorKind::Other, io::ErrorKind::StorageFull] {
                plans.push((
                    FaultPlan {
                        fail_at: Some((k, kind)),
                        ..FaultPlan::default()
                    },
                    format!("{kind:?} at point {k}/{points} ({})", kinds[k as usize]),
                    Some(kind),
                    is_sync(kinds[k as usize]),
                ));
            }
        }
        for r in 0..reads {
            plans.push((
                FaultPlan {
                    fail_read_at: Some(r),
                    ..FaultPlan::default()
                },
                format!("EIO at read {r}/{reads}"),
                None,
                false,
            ));
        }
        for (plan, what, kind, sync_fault) in plans {
            let ctx = format!("{name} [{}] {what}", policy_name(sync));
            let sim = image.after_crash(true);
            let s = open_sim(&sim, sync).unwrap();
            sim.set_plan(plan);
            let res = op(&s);
            match kind {
                Some(_) if sync_fault => c.sync_points += 1,
                Some(_) => c.write_points += 1,
                None => c.read_points += 1,
            }
            let failed = res.is_err();
            if let Err(e) = &res {
                c.failed_ops += 1;
                check_error(e, kind, &ctx);
                let snap =
                    snapshot_with_versions(&s).unwrap_or_else(|e| panic!("{ctx}: read after: {e}"));
                assert_eq!(snap, before, "{ctx}: the handle shows a changed state");
            }
            // The fault has cleared (it was one-shot). Further mutations:
            let post = s.save("post", POST.r());
            let flushed = s.flush();
            if sync_fault {
                // fsync-gate: refused until reopened, never retried.
                c.poisoned += 1;
                assert!(
                    matches!(post, Err(Error::Poisoned { .. })),
                    "{ctx}: a mutation after a failed fsync was not refused: {post:?}"
                );
                assert!(
                    matches!(flushed, Err(Error::Poisoned { .. })),
                    "{ctx}: a flush after a failed fsync was not refused: {flushed:?}"
                );
                assert!(
                    matches!(s.checkpoint(), Err(Error::Poisoned { .. })),
                    "{ctx}: checkpoint after a failed fsync"
                );
            } else {
                post.unwrap_or_else(|e| panic!("{ctx}: a write after the fault cleared: {e}"));
                flushed.unwrap_or_else(|e| panic!("{ctx}: flush after the fault cleared: {e}"));
            }
            drop(s);
            sim.set_plan(FaultPlan::default());
            let s = open_sim(&sim, sync).unwrap_or_else(|e| panic!("{ctx}: reopen: {e}"));
            let snap = snapshot_with_versions(&s)
                .unwrap_or_else(|e| panic!("{ctx}: read after reopen: {e}"));
            if sync_fault {
                assert!(
                    snap == before || snap == after,
                    "{ctx}: reopened state is neither before nor after the op"
                );
            } else {
                let want = with_post(if failed {
                    before.clone()
                } else {
                    after.clone()
                });
                assert_eq!(snap, want, "{ctx}: reopened state");
            }
            assert_verify_clean(&s, &ctx);
        }
    }
}

/// EIO at every read of opening a store (with a log to replay): the open
/// fails naming a file, or succeeds with the right contents; a later open
/// works.
fn open_read_faults(sync: Sync, c: &mut Counts) {
    let image = base(sync);
    let probe = image.after_crash(true);
    probe.set_plan(FaultPlan::default());
    let s = open_sim(&probe, sync).unwrap();
    let want = snapshot_with_versions(&s).unwrap();
    let reads = probe.reads();
    drop(s);
    for r in 0..reads {
        let ctx = format!("open [{}] EIO at read {r}/{reads}", policy_name(sync));
        let sim = image.after_crash(true);
        sim.set_plan(FaultPlan {
            fail_read_at: Some(r),
            ..FaultPlan::default()
        });
        c.read_points += 1;
        match open_sim(&sim, sync) {
            Ok(s) => {
                // A read during open may be retried or not needed; then the
                // contents are right, or a read reports an error.
                if let Ok(snap) = snapshot_with_versions(&s) {
                    assert_eq!(snap, want, "{ctx}");
                }
            }
            Err(e) => check_error(&e, None, &ctx),
        }
        sim.set_plan(FaultPlan::default());
        let s = open_sim(&sim, sync).unwrap_or_else(|e| panic!("{ctx}: reopen: {e}"));
        assert_eq!(snapshot_with_versions(&s).unwrap(), want, "{ctx}: reopen");
        assert_verify_clean(&s, &ctx);
    }
}

#[test]
fn io_errors_at_every_point_of_every_op_and_policy() {
    let mut total = Counts::default();
    let mut per = Vec::new();
    for sync in policies() {
        let mut c = Counts::default();
        fault_trials(sync, &mut c);
        open_read_faults(sync, &mut c);
        per.push(format!(
            "{}: {}",
            policy_name(sync),
            c.write_points + c.sync_points + c.read_points
        ));
        total.write_points += c.write_points;
        total.sync_points += c.sync_points;
        total.read_points += c.read_points;
        total.poisoned += c.poisoned;
        total.failed_ops += c.failed_ops;
    }
    let line = format!(
        "I/O errors: {} fault points injected ({} EIO/ENOSPC at write/create/rename/remove/truncate points, \
         {} at fsync points, {} EIO at read points; {}); {} operations failed cleanly; \
         {} failed fsyncs gated the handle (Poisoned until reopen); 0 lost or changed states",
        total.write_points + total.sync_points + total.read_points,
        total.write_points,
        total.sync_points,
        total.read_points,
        per.join(", "),
        total.failed_ops,
        total.poisoned
    );
    report_figures(&line);
}

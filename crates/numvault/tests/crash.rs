//! Crash tests through the fault-injecting `SimVfs`.
//!
//! A scenario is a list of steps (mutations, flush, checkpoint, close) run on
//! a durable base state. A fault-free run gives the state after each prefix
//! of the mutating steps and the number N of fault points. Then for every
//! point k in 0..=N the base is rebuilt, the process "crashes" at k, and the
//! file system is reopened as a process crash (unsynced writes kept) and as
//! a power loss (unsynced writes dropped) would leave it. The reopened store
//! must hold exactly one prefix state, and at least every mutation that
//! returned (process crash, any policy; power loss under `Sync::Always`), or
//! every mutation before the last flush/checkpoint/close that returned
//! (power loss, any policy; a close is no sync point under `Sync::Never`). `verify()` must be clean, the recovered state
//! must survive another close/reopen, and a further write must work.
//!
//! Also: torn writes, crashes during recovery and during creation, an I/O
//! error at every point, and a checkpoint after every commit.
//! `NUMVAULT_EXHAUSTIVE=1` runs the torn-write and I/O-error variants for
//! every policy and more tear lengths.

mod common;

use std::io;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use common::*;
use numvault::sim::{FaultPlan, SimVfs};
use numvault::{ArrayRef, Batch, DType, OpenOptions, Store, Sync};

// ---------------------------------------------------------------- base data

thread_local! {
    /// `checkpoint_log_bytes` for the stores this test thread opens.
    static CKPT_BYTES: std::cell::Cell<u64> = const { std::cell::Cell::new(64 << 20) };
}

fn open_s(sim: &SimVfs, sync: Sync) -> numvault::Result<Store> {
    let mut o = sim_opts(sim, sync);
    o.checkpoint_log_bytes = CKPT_BYTES.get();
    Store::open(SIM_PATH, o)
}

static A: LazyLock<Arr> = LazyLock::new(|| arr(DType::F32, &[20, 4], 1));
static B: LazyLock<Arr> = LazyLock::new(|| arr(DType::I16, &[10], 2));
/// 40 rows of 4 KiB: 160 KiB, so its save is not carried inline.
static BIG: LazyLock<Arr> = LazyLock::new(|| arr(DType::U8, &[40, 4096], 3));
static C: LazyLock<Arr> = LazyLock::new(|| arr(DType::F64, &[5, 2, 3], 4));
/// 200 KB, not inline.
static HUGE: LazyLock<Arr> = LazyLock::new(|| arr(DType::F32, &[50, 1000], 5));
static BIG2: LazyLock<Arr> = LazyLock::new(|| arr(DType::U8, &[30, 4096], 6));
/// 20 rows of `BIG`'s row shape: 80 KiB, not inline.
static BIG_ROWS: LazyLock<Arr> = LazyLock::new(|| arr(DType::U8, &[20, 4096], 7));
static A_ROWS: LazyLock<Arr> = LazyLock::new(|| arr(DType::F32, &[3, 4], 8));
static SMALL_NEW: LazyLock<Arr> = LazyLock::new(|| arr(DType::I32, &[8, 3], 9));
static A_U16: LazyLock<Arr> = LazyLock::new(|| arr(DType::U16, &[3], 10));
/// Rows appended to `SMALL_NEW` (distinct bytes, so a redo at a wrong
/// offset shows).
static N_ROWS: LazyLock<Arr> = LazyLock::new(|| arr(DType::I32, &[5, 3], 12));
static POST: LazyLock<Arr> = LazyLock::new(|| arr(DType::U64, &[4, 2], 11));

/// The durable state every scenario starts from: checkpointed arrays plus a
/// log holding a few flushed records (a replaced row, a deleted row, ...).
fn build_base(sync: Sync) -> (SimVfs, Store) {
    let sim = SimVfs::new();
    let s = open_s(&sim, sync).unwrap();
    s.save("a", A.r()).unwrap();
    s.save("g/b", B.r()).unwrap();
    s.save("big", BIG.r()).unwrap();
    s.save("g/c", C.r()).unwrap();
    // Checkpointed: a close alone no longer checkpoints, nor syncs under
    // Sync::Never (changed on purpose, issue 11).
    s.checkpoint().unwrap();
    s.close().unwrap();
    let s = open_s(&sim, sync).unwrap();
    s.replace("a", &[2, 5], A_ROWS.r_rows(0..2)).unwrap();
    s.delete_rows("a", &[0]).unwrap();
    s.append("big", BIG_ROWS.r_rows(0..1)).unwrap();
    s.replace("big", &[1], BIG_ROWS.r_rows(1..2)).unwrap();
    s.flush().unwrap();
    (sim, s)
}

trait RowsRef {
    fn r_rows(&self, r: std::ops::Range<usize>) -> ArrayRef<'_>;
}

impl RowsRef for Arr {
    fn r_rows(&self, r: std::ops::Range<usize>) -> ArrayRef<'_> {
        let rb = self.row_bytes();
        let shape: &'static [u64] = leak_shape(r.len() as u64, &self.shape[1..]);
        ArrayRef::new(self.dtype, shape, &self.data[r.start * rb..r.end * rb])
    }
}

/// Shapes for `r_rows` must outlive the borrow; a few leaked vectors are fine
/// in a test binary.
fn leak_shape(rows: u64, rest: &[u64]) -> &'static [u64] {
    let mut v = vec![rows];
    v.extend_from_slice(rest);
    Box::leak(v.into_boxed_slice())
}

// -------------------------------------------------------------------- steps

type OpFn = fn(&Store) -> numvault::Result<()>;

#[derive(Clone, Copy)]
enum Step {
    /// A mutation.
    Do(&'static str, OpFn),
    Flush,
    Checkpoint,
    Close,
}

impl Step {
    fn mutates(&self) -> bool {
        matches!(self, Step::Do(..))
    }
    fn name(&self) -> &'static str {
        match self {
            Step::Do(n, _) => n,
            Step::Flush => "flush",
            Step::Checkpoint => "checkpoint",
            Step::Close => "close",
        }
    }
}

fn save_small_new(s: &Store) -> numvault::Result<()> {
    s.save("g/new", SMALL_NEW.r())
}
fn save_small_overwrite(s: &Store) -> numvault::Result<()> {
    s.save("a", A_U16.r())
}
fn save_large_new(s: &Store) -> numvault::Result<()> {
    s.save("huge", HUGE.r())
}
fn save_large_overwrite(s: &Store) -> numvault::Result<()> {
    s.save("big", BIG2.r())
}
fn append_small(s: &Store) -> numvault::Result<()> {
    s.append("a", A_ROWS.r())
}
fn append_large(s: &Store) -> numvault::Result<()> {
    s.append("big", BIG_ROWS.r())
}
fn replace_small(s: &Store) -> numvault::Result<()> {
    s.replace("a", &[-1, 3, 0], A_ROWS.r())
}
fn replace_large(s: &Store) -> numvault::Result<()> {
    // Unsorted, mixing negative and positive, all distinct (41 rows).
    let idx: Vec<i64> = (0..20)
        .map(|i| if i % 2 == 0 { -1 - i } else { i })
        .collect();
    s.replace("big", &idx, BIG_ROWS.r())
}
fn delete_rows(s: &Store) -> numvault::Result<()> {
    s.delete_rows("a", &[3, -1, 3, 0])
}
fn compact_small(s: &Store) -> numvault::Result<()> {
    s.compact("a").map(|_| ())
}
fn compact_large(s: &Store) -> numvault::Result<()> {
    s.compact("big").map(|_| ())
}
fn drop_array(s: &Store) -> numvault::Result<()> {
    s.drop_array("g/b")
}
fn rename(s: &Store) -> numvault::Result<()> {
    s.rename("g/c", "h/c")
}
/// Ops that depend on earlier ops of the same record: a new array appended
/// to, a renamed array appended to, a compacted array appended to.
fn batch_mixed(s: &Store) -> numvault::Result<()> {
    let mut b = Batch::new();
    b.save("n", SMALL_NEW.r())
        .append("n", N_ROWS.r())
        .replace("n", &[0, -1], N_ROWS.r_rows(2..4))
        .rename("a", "z")
        .append("z", A_ROWS.r())
        .delete_rows("z", &[0, 0])
        .compact("z")
        .append("z", A_ROWS.r_rows(1..2))
        .drop_array("g/b");
    s.commit(&b)
}
/// The same with payloads that are not carried inline.
fn batch_large(s: &Store) -> numvault::Result<()> {
    let mut b = Batch::new();
    b.save("n2", BIG2.r())
        .append("n2", BIG_ROWS.r())
        .compact("big")
        .append("big", BIG_ROWS.r())
        .rename("big", "big3")
        .replace(
            "big3",
            &[
                0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, -1,
            ],
            BIG_ROWS.r(),
        );
    s.commit(&b)
}
fn batch_overwrite_twice(s: &Store) -> numvault::Result<()> {
    let mut b = Batch::new();
    b.save("a", SMALL_NEW.r())
        .save("a", A_U16.r())
        .save("tmp", POST.r())
        .drop_array("tmp");
    s.commit(&b)
}

// Saves over a file no durable state refers to yet: outside `always` the
// writer deletes it at once and the superseding record releases it
// (FORMAT.md §7.1 step 7); recovery must accept the earlier records whose
// data went with it, or cut the log before them.
fn save_rep(s: &Store) -> numvault::Result<()> {
    s.save("rep", BIG2.r())
}
fn append_rep(s: &Store) -> numvault::Result<()> {
    s.append("rep", BIG_ROWS.r())
}
fn save_rep_other(s: &Store) -> numvault::Result<()> {
    s.save("rep", BIG.r())
}
/// Appends to the fresh file and supersedes it in the same record.
fn batch_append_then_save_rep(s: &Store) -> numvault::Result<()> {
    let mut b = Batch::new();
    b.append("rep", BIG_ROWS.r()).save("rep", BIG2.r());
    s.commit(&b)
}
fn drop_rep(s: &Store) -> numvault::Result<()> {
    s.drop_array("rep")
}

fn scenarios() -> Vec<(&'static str, Vec<Step>)> {
    use Step::*;
    vec![
        ("save_small_new", vec![Do("save", save_small_new), Flush]),
        (
            "save_small_overwrite",
            vec![Do("save", save_small_overwrite), Flush],
        ),
        ("save_large_new", vec![Do("save", save_large_new), Flush]),
        (
            "save_large_overwrite",
            vec![Do("save", save_large_overwrite), Flush],
        ),
        ("append_small", vec![Do("append", append_small), Flush]),
        ("append_large", vec![Do("append", append_large), Flush]),
        ("replace_small", vec![Do("replace", replace_small), Flush]),
        ("replace_large", vec![Do("replace", replace_large), Flush]),
        ("delete_rows", vec![Do("delete", delete_rows), Flush]),
        ("compact_small", vec![Do("compact", compact_small), Flush]),
        ("compact_large", vec![Do("compact", compact_large), Flush]),
        ("drop", vec![Do("drop", drop_array), Flush]),
        ("rename", vec![Do("rename", rename), Flush]),
        ("batch_mixed", vec![Do("batch", batch_mixed), Flush]),
        ("batch_large", vec![Do("batch", batch_large), Flush]),
        (
            "batch_overwrite_twice",
            vec![Do("batch", batch_overwrite_twice), Flush],
        ),
        (
            "flush_of_several",
            vec![Do("append", append_small), Do("delete", delete_rows), Flush],
        ),
        (
            "release_superseded",
            vec![
                Do("save", save_rep),
                Do("append", append_rep),
                Do("save", save_rep_other),
                Do("batch", batch_append_then_save_rep),
                Do("save", save_rep_other),
                Do("drop", drop_rep),
                Flush,
            ],
        ),
        (
            "release_across_flush",
            vec![
                Do("save", save_rep),
                Do("save", save_rep_other),
                Flush,
                Do("save", save_rep),
                Do("append", append_rep),
                Do("save", save_rep_other),
                Flush,
            ],
        ),
        ("checkpoint", vec![Do("append", append_small), Checkpoint]),
        ("close", vec![Do("append", append_large), Close]),
    ]
}

/// ~8 ops of every kind with a flush in the middle.
fn sequence() -> Vec<Step> {
    use Step::*;
    vec![
        Do("save_small_new", save_small_new),
        Do("append_large", append_large),
        Do("replace_small", replace_small),
        Flush,
        Do("batch_mixed", batch_mixed),
        Do("rename", rename),
        Do("save_large_new", save_large_new),
        Do("compact_large", compact_large),
        Do("drop", |s| s.drop_array("h/c")),
    ]
}

// ------------------------------------------------------------------ running

/// What happened when the steps ran.
struct Run {
    /// Steps that returned Ok, in order (running stops at the first error).
    ok: usize,
    store: Option<Store>,
}

fn run_steps(store: Store, steps: &[Step]) -> Run {
    let mut store = Some(store);
    let mut ok = 0;
    for step in steps {
        let Some(s) = store.as_ref() else { break };
        let res = match step {
            Step::Do(_, f) => f(s),
            Step::Flush => s.flush(),
            Step::Checkpoint => s.checkpoint(),
            Step::Close => store.take().map_or(Ok(()), Store::close),
        };
        if res.is_err() {
            break;
        }
        ok += 1;
    }
    Run { ok, store }
}

/// The fault-free run: the state after each prefix of mutating steps (index
/// j = after j mutations) and the number of fault points of all steps.
fn reference(sync: Sync, steps: &[Step]) -> (Vec<Snap>, u64) {
    let (sim, store) = build_base(sync);
    let mut states = vec![snapshot(&store).unwrap()];
    sim.set_plan(FaultPlan::default());
    let mut store = Some(store);
    for step in steps {
        let s = store.as_ref().unwrap();
        let res = match step {
            Step::Do(_, f) => f(s),
            Step::Flush => s.flush(),
            Step::Checkpoint => s.checkpoint(),
            Step::Close => store.take().unwrap().close(),
        };
        res.unwrap_or_else(|e| panic!("fault-free {} failed: {e}", step.name()));
        if step.mutates() {
            let snap = snapshot(store.as_ref().unwrap()).unwrap();
            // Compaction keeps the contents; everything else changes them.
            assert!(
                step.name().starts_with("compact") || &snap != states.last().unwrap(),
                "{} changed nothing",
                step.name()
            );
            states.push(snap);
        }
    }
    let points = sim.points();
    if let Some(s) = store {
        assert_verify_clean(&s, "fault-free run");
        s.close().unwrap();
    }
    // The fault-free end state also survives a reopen.
    let s = open_s(&sim, sync).unwrap();
    assert_eq!(&snapshot(&s).unwrap(), states.last().unwrap());
    (states, points)
}

/// Which prefix states a reopened store may show after `run`.
/// Returns (lo, hi): indices into the prefix states.
fn allowed(steps: &[Step], ok: usize, sync: Sync, power_loss: bool) -> (usize, usize) {
    let muts_done = steps[..ok].iter().filter(|s| s.mutates()).count();
    // A mutation that was running when the crash hit may or may not be in.
    let hi = steps[..(ok + 1).min(steps.len())]
        .iter()
        .filter(|s| s.mutates())
        .count();
    let lo = if !power_loss || sync == Sync::Always {
        muts_done
    } else {
        // Everything before the last flush/checkpoint/close that returned
        // (a close syncs nothing under `Sync::Never`: changed on purpose,
        // issue 11, "never" means no fsync at close).
        steps[..ok]
            .iter()
            .rposition(|s| !(s.mutates() || sync == Sync::Never && matches!(s, Step::Close)))
            .map_or(0, |p| steps[..p].iter().filter(|s| s.mutates()).count())
    };
    (lo, hi)
}

/// Reopen the file system left by a crash and check everything.
fn check_reopened(fs: SimVfs, sync: Sync, states: &[Snap], (lo, hi): (usize, usize), ctx: &str) {
    // A reader opening first (no writer holds the lock) recovers the store
    // itself; check that on a copy.
    {
        let copy = fs.after_crash(true);
        let mut ro = OpenOptions::read_only();
        ro.vfs = std::sync::Arc::new(copy);
        let r = Store::open(SIM_PATH, ro)
            .unwrap_or_else(|e| panic!("{ctx}: read-only open after crash failed: {e}"));
        let snap = snapshot(&r).unwrap_or_else(|e| panic!("{ctx}: reader: {e}"));
        find_state(&snap, states, lo, hi, &format!("{ctx} (read-only)"));
        assert_verify_clean(&r, &format!("{ctx} (read-only)"));
    }
    let s = open_s(&fs, sync).unwrap_or_else(|e| panic!("{ctx}: reopen failed: {e}"));
    let snap = snapshot(&s).unwrap_or_else(|e| panic!("{ctx}: {e}"));
    find_state(&snap, states, lo, hi, ctx);
    assert_verify_clean(&s, ctx);
    // Recovery itself is durable: a power loss right after it changes nothing.
    {
        let again = open_s(&fs.after_crash(false), sync)
            .unwrap_or_else(|e| panic!("{ctx}: reopen after a power loss after recovery: {e}"));
        let snap2 =
            snapshot(&again).unwrap_or_else(|e| panic!("{ctx}: power loss after recovery: {e}"));
        assert_eq!(snap2, snap, "{ctx}: power loss right after recovery");
    }
    // A further operation works and everything survives a clean reopen.
    s.save("post/x", POST.r())
        .unwrap_or_else(|e| panic!("{ctx}: save after recovery: {e}"));
    s.append("post/x", POST.r())
        .unwrap_or_else(|e| panic!("{ctx}: append after recovery: {e}"));
    let mut expected = snap.clone();
    let mut post = POST.clone();
    post.shape[0] *= 2;
    post.data = [POST.data.clone(), POST.data.clone()].concat();
    expected.insert("post/x".into(), post);
    assert_eq!(snapshot(&s).unwrap(), expected, "{ctx}: after a further op");
    s.close().unwrap_or_else(|e| panic!("{ctx}: close: {e}"));
    let s = open_s(&fs, sync).unwrap_or_else(|e| panic!("{ctx}: second reopen: {e}"));
    assert_eq!(
        snapshot(&s).unwrap(),
        expected,
        "{ctx}: after second reopen"
    );
    assert_verify_clean(&s, ctx);
}

fn find_state(snap: &Snap, states: &[Snap], lo: usize, hi: usize, ctx: &str) -> usize {
    if let Some(j) = (lo..=hi).rev().find(|&j| &states[j] == snap) {
        return j;
    }
    let other = states.iter().position(|s| s == snap);
    panic!(
        "{ctx}: reopened state is not one of the allowed prefix states {lo}..={hi} \
         (matches prefix {other:?})\n got: {snap:#?}\n expected one of: {:#?}",
        &states[lo..=hi]
    );
}

#[derive(Default, Debug)]
struct Counts {
    points: u64,
    reopens: u64,
}

/// Crash at every point of `steps` (optionally tearing writes).
fn crash_everywhere(name: &str, steps: &[Step], sync: Sync, torn: &[Option<usize>]) -> Counts {
    let (states, n) = reference(sync, steps);
    let mut counts = Counts::default();
    for &t in torn {
        for k in 0..=n {
            let (sim, store) = build_base(sync);
            sim.set_plan(FaultPlan {
                crash_at: Some(k),
                torn_bytes: t,
                ..FaultPlan::default()
            });
            let run = run_steps(store, steps);
            if k < n {
                assert!(sim.crashed(), "{name}: no crash at point {k} of {n}");
            }
            drop(run.store);
            for power_loss in [false, true] {
                let ctx = format!(
                    "{name} [{}] crash at point {k}/{n}{} ({}, {} steps returned)",
                    policy_name(sync),
                    t.map_or(String::new(), |t| format!(" torn after {t} bytes")),
                    if power_loss {
                        "power loss"
                    } else {
                        "process crash"
                    },
                    run.ok
                );
                let range = allowed(steps, run.ok, sync, power_loss);
                check_reopened(sim.after_crash(!power_loss), sync, &states, range, &ctx);
                counts.reopens += 1;
            }
            counts.points += 1;
        }
    }
    counts
}

#[test]
fn crash_at_every_point_of_every_op_and_policy() {
    let mut total = Counts::default();
    let mut report = Vec::new();
    for sync in policies() {
        let mut per_policy = 0;
        for (name, steps) in scenarios() {
            let c = crash_everywhere(name, &steps, sync, &[None]);
            per_policy += c.points;
            total.points += c.points;
            total.reopens += c.reopens;
        }
        report.push(format!("{}: {per_policy}", policy_name(sync)));
    }
    eprintln!(
        "crash points per policy: {}; {} reopens in all",
        report.join(", "),
        total.reopens
    );
    assert!(
        total.points > 400,
        "suspiciously few fault points: {total:?}"
    );
}

#[test]
fn crash_at_every_point_of_a_sequence() {
    let steps = sequence();
    for sync in policies() {
        let c = crash_everywhere("sequence", &steps, sync, &[None]);
        eprintln!(
            "sequence [{}]: {} crash points",
            policy_name(sync),
            c.points
        );
        assert!(c.points > 25);
    }
}

/// `NUMVAULT_EXHAUSTIVE=1` runs the slower variants in full.
fn exhaustive() -> bool {
    std::env::var_os("NUMVAULT_EXHAUSTIVE").is_some()
}

#[test]
fn torn_writes_at_every_point() {
    // Tearing a write is the same as a crash for points that are not writes
    // or are shorter than the tear, so every write of the log and the data
    // files gets torn at several lengths.
    let steps = sequence();
    let (policies, tears): (Vec<Sync>, Vec<Option<usize>>) = if exhaustive() {
        (
            policies(),
            [1, 2, 7, 13, 53, 200, 4099, 70_000].map(Some).to_vec(),
        )
    } else {
        (
            vec![Sync::Always, Sync::OnFlush],
            vec![Some(1), Some(53), Some(4099)],
        )
    };
    for &sync in &policies {
        crash_everywhere("sequence", &steps, sync, &tears);
    }
    for (name, steps) in scenarios() {
        if exhaustive()
            || name.starts_with("batch")
            || name.starts_with("append")
            || name == "close"
        {
            crash_everywhere(name, &steps, Sync::Always, &[Some(3), Some(60)]);
        }
    }
}

/// A crash while recovering (redo into data files, truncating the tail,
/// the checkpoint at the end of recovery) must leave the same state.
#[test]
fn crash_during_recovery() {
    let steps = sequence();
    for sync in [Sync::Always, Sync::OnFlush] {
        let (states, n) = reference(sync, &steps);
        // Crash images with log records and unflushed data to recover.
        for k in [n / 3, n / 2, n - 2, n] {
            let (sim, store) = build_base(sync);
            sim.set_plan(FaultPlan {
                crash_at: Some(k),
                ..FaultPlan::default()
            });
            let run = run_steps(store, &steps);
            drop(run.store);
            for power_loss in [false, true] {
                let image = sim.after_crash(!power_loss);
                // First, recover without faults to learn the result.
                let probe = image.after_crash(true);
                probe.set_plan(FaultPlan::default());
                let s = open_s(&probe, sync).unwrap();
                let expected = snapshot(&s).unwrap();
                let (lo, hi) = allowed(&steps, run.ok, sync, power_loss);
                find_state(&expected, &states, lo, hi, "recovery probe");
                let rec_points = probe.points();
                drop(s);
                for j in 0..rec_points {
                    let fs = image.after_crash(true);
                    fs.set_plan(FaultPlan {
                        crash_at: Some(j),
                        ..FaultPlan::default()
                    });
                    let res = open_s(&fs, sync);
                    drop(res);
                    for pl2 in [false, true] {
                        let ctx = format!(
                            "[{}] crash at {k}, then crash at point {j}/{rec_points} of recovery \
                             (power loss: {power_loss}, then {pl2})",
                            policy_name(sync)
                        );
                        let again = fs.after_crash(!pl2);
                        let s =
                            open_s(&again, sync).unwrap_or_else(|e| panic!("{ctx}: reopen: {e}"));
                        assert_eq!(snapshot(&s).unwrap(), expected, "{ctx}");
                        assert_verify_clean(&s, &ctx);
                    }
                }
            }
        }
    }
}

/// `truncate` drops every array on open, atomically: a crash leaves the old
/// store or an empty one.
#[test]
fn crash_during_truncating_open() {
    for sync in [Sync::Always, Sync::OnFlush] {
        let open_trunc = |sim: &SimVfs| {
            let mut o = sim_opts(sim, sync);
            o.truncate = true;
            Store::open(SIM_PATH, o)
        };
        let (sim, store) = build_base(sync);
        let before = snapshot(&store).unwrap();
        drop(store);
        let probe = sim.after_crash(true);
        probe.set_plan(FaultPlan::default());
        let s = open_trunc(&probe).unwrap();
        assert!(s.is_empty());
        drop(s);
        let n = probe.points();
        let empty = Snap::new();
        for k in 0..=n {
            let fs = sim.after_crash(true);
            fs.set_plan(FaultPlan {
                crash_at: Some(k),
                ..FaultPlan::default()
            });
            let res = open_trunc(&fs).map(|s| s.is_empty());
            for power_loss in [false, true] {
                let ctx = format!(
                    "[{}] crash at point {k}/{n} of a truncating open (power loss: {power_loss})",
                    policy_name(sync)
                );
                let s = open_s(&fs.after_crash(!power_loss), sync)
                    .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                let got = snapshot(&s).unwrap();
                assert!(got == before || got == empty, "{ctx}: {got:#?}");
                if matches!(res, Ok(true)) {
                    assert_eq!(got, empty, "{ctx}: the truncating open returned");
                }
                assert_verify_clean(&s, &ctx);
            }
        }
    }
}

/// A crash while a store is being created leaves either no store (and the
/// next open creates one) or an empty store, never an unopenable directory.
#[test]
fn crash_during_creation() {
    let probe = SimVfs::new();
    probe.set_plan(FaultPlan::default());
    open_s(&probe, Sync::Always).unwrap().close().unwrap();
    let n = probe.points();
    for k in 0..=n {
        let sim = SimVfs::new();
        sim.set_plan(FaultPlan {
            crash_at: Some(k),
            ..FaultPlan::default()
        });
        drop(open_s(&sim, Sync::Always));
        for keep in [true, false] {
            let ctx = format!("crash at point {k}/{n} of creation (keep unsynced: {keep})");
            let fs = sim.after_crash(keep);
            let s = open_s(&fs, Sync::Always).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert!(s.is_empty(), "{ctx}");
            s.save("x", POST.r()).unwrap();
            s.close().unwrap();
            let s = open_s(&fs, Sync::Always).unwrap();
            assert_eq!(s.read("x").unwrap().data, POST.data, "{ctx}");
            assert_verify_clean(&s, &ctx);
        }
    }
}

/// An I/O error (EIO) at any single point: the call may fail, the handle's
/// view must not change on failure, and the store on disk must hold the
/// state before or after the failed step, both if the process dies right
/// away and if it closes the handle and reopens.
#[test]
fn io_error_at_every_point() {
    let mut scen = scenarios();
    scen.push(("sequence", sequence()));
    for sync in [Sync::Always, Sync::OnFlush] {
        for (name, steps) in &scen {
            io_error_everywhere(name, steps, sync);
        }
    }
}

fn io_error_everywhere(name: &str, steps: &[Step], sync: Sync) {
    let (states, n) = reference(sync, steps);
    for k in 0..n {
        let (sim, store) = build_base(sync);
        sim.set_plan(FaultPlan {
            fail_at: Some((k, io::ErrorKind::Other)),
            ..FaultPlan::default()
        });
        let run = run_steps(store, steps);
        let (lo, hi) = allowed(steps, run.ok, sync, false);
        let ctx = format!(
            "{name} [{}] EIO at point {k}/{n} ({} steps returned)",
            policy_name(sync),
            run.ok
        );
        if let Some(s) = &run.store {
            // On error nothing changes in what the handle shows.
            let snap = snapshot(s).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert_eq!(snap, states[lo], "{ctx}: the handle shows a changed state");
        }
        // The process dies right after the error.
        let image = sim.after_crash(true);
        check_reopened(
            image,
            sync,
            &states,
            (lo, hi),
            &format!("{ctx}, then crash"),
        );
        // Or it closes the handle and opens the store again.
        drop(run.store);
        sim.set_plan(FaultPlan::default());
        let s = open_s(&sim, sync).unwrap_or_else(|e| panic!("{ctx}: reopen after close: {e}"));
        let snap = snapshot(&s).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        find_state(
            &snap,
            &states,
            lo,
            hi,
            &format!("{ctx}, closed and reopened"),
        );
        assert_verify_clean(&s, &ctx);
    }
}

/// A checkpoint after every commit (`checkpoint_log_bytes` = 1): crashes and
/// I/O errors inside the automatic checkpoint that follows a commit.
#[test]
fn crash_and_io_error_with_a_checkpoint_after_every_commit() {
    CKPT_BYTES.set(1);
    let steps = sequence();
    for sync in [Sync::Always, Sync::OnFlush] {
        let c = crash_everywhere("sequence (auto checkpoint)", &steps, sync, &[None]);
        assert!(c.points > 100, "{c:?}");
        if sync == Sync::Always || exhaustive() {
            io_error_everywhere("sequence (auto checkpoint)", &steps, sync);
        }
    }
}

/// Group commit makes a commit durable within about `max_delay` without
/// any flush.
#[test]
fn group_commit_syncs_in_the_background() {
    let sim = SimVfs::new();
    let sync = Sync::Group {
        max_delay: Duration::from_millis(20),
    };
    let s = open_s(&sim, sync).unwrap();
    s.save("a", A.r()).unwrap();
    s.append("a", A_ROWS.r()).unwrap();
    let expected = snapshot(&s).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let fs = sim.after_crash(false);
        let got = open_s(&fs, sync).map(|r| snapshot(&r).unwrap());
        if got.as_ref().ok() == Some(&expected) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "commits were not made durable by the group-commit thread"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(s);
}

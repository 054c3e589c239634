//! Crash torture with real processes and SIGKILL.
//!
//! Each round the parent generates a random sequence of mutating operations
//! (save, append, replace, delete rows, compact, drop, rename, multi-op
//! batches, flush, checkpoint) from its model of the store, and starts this
//! test binary as a child (`torture_child`) that opens the store under the
//! round's durability policy and runs them, appending each operation's index
//! to a progress file after the call returns. The parent kills the child with
//! SIGKILL at a random moment after it reports the store open (and, one round
//! in eight, while it is still starting, opening and recovering the previous
//! round's crash), reopens the store (as a writer, or
//! as a reader first, which recovers a crashed store itself) and checks:
//! - the contents equal the model after a prefix of the operations,
//! - that prefix holds every operation that returned (a process crash loses
//!   nothing, whatever the policy) and at most the one in flight,
//! - `verify()` is clean.
//!
//! `NUMVAULT_TORTURE_KILLS` sets the number of kills (default 300);
//! `NUMVAULT_TORTURE_SEED` the seed; `NUMVAULT_TORTURE_SLOW_START_MS` makes
//! every child wait that long before opening (a slow machine, simulated).
//! `NUMVAULT_TORTURE_BUDGET_SECS` caps the wall-clock time (default 600 s
//! for up to 1,000 kills, none above): a machine too slow to reach the kill
//! count in time stops early, and the test still fails unless it reached a
//! tenth of the kills wanted. A failure prints the seed, the round and its
//! operation sequence, and keeps a copy of the store directory.

mod common;
mod workload;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use numvault::{OpenOptions, Store, Sync};
use workload::{generate, Op, Rng};

const CHILD_DIR: &str = "NUMVAULT_TORTURE_DIR";
const CHILD_POLICY: &str = "NUMVAULT_TORTURE_POLICY";
const CHILD_CKPT: &str = "NUMVAULT_TORTURE_CKPT";
const OPS_PER_ROUND: usize = 60;

fn policy(i: usize) -> Sync {
    match i % 4 {
        0 => Sync::Always,
        // A short delay so the group-commit thread really runs.
        1 => Sync::Group {
            max_delay: Duration::from_millis(2),
        },
        2 => Sync::OnFlush,
        _ => Sync::Never,
    }
}

fn store_path(dir: &Path) -> PathBuf {
    dir.join("store")
}

// ------------------------------------------------------------- child side

#[test]
#[ignore = "run by torture_sigkill in a child process"]
fn torture_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let pol: usize = std::env::var(CHILD_POLICY).unwrap().parse().unwrap();
    let ckpt: u64 = std::env::var(CHILD_CKPT).unwrap().parse().unwrap();
    let ops: Vec<Op> = std::fs::read_to_string(dir.join("ops"))
        .unwrap()
        .lines()
        .map(|l| Op::decode(l).unwrap())
        .collect();
    let mut progress = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(dir.join("progress"))
        .unwrap();
    let mut opts = OpenOptions::default().sync(policy(pol));
    opts.checkpoint_log_bytes = ckpt;
    // A slow machine, simulated: the parent's kill clock must not depend on
    // how long the child takes to start and open (see torture_sigkill).
    if let Some(ms) = std::env::var("NUMVAULT_TORTURE_SLOW_START_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        std::thread::sleep(Duration::from_millis(ms));
    }
    let s = Store::open(store_path(&dir), opts).unwrap();
    writeln!(progress, "open").unwrap();
    for (i, op) in ops.iter().enumerate() {
        if let Err(e) = op.run(&s) {
            writeln!(progress, "error {i} {e}").unwrap();
            std::process::exit(3);
        }
        // Written after the call returned: the parent's model counts it.
        writeln!(progress, "{i}").unwrap();
    }
    s.close().unwrap();
    writeln!(progress, "closed").unwrap();
}

// ------------------------------------------------------------ parent side

struct Figures {
    kills: u64,
    early_kills: u64,
    completed: u64,
    ops_returned: u64,
    in_flight_present: u64,
    in_flight_absent: u64,
    reader_recoveries: u64,
}

fn fail(ctx: &str, seed: u64, round: u64, ops: &[Op], dir: &Path, msg: String) -> ! {
    let keep = std::env::temp_dir().join(format!("numvault-torture-fail-{seed}-{round}"));
    let _ = std::fs::remove_dir_all(&keep);
    copy_store_dir(&store_path(dir), &keep);
    let listing: Vec<String> = ops
        .iter()
        .enumerate()
        .map(|(i, o)| format!("  {i}: {}", o.encode()))
        .collect();
    panic!(
        "torture failure (NUMVAULT_TORTURE_SEED={seed}, round {round}): {ctx}: {msg}\n\
         store kept at {}\noperations of the round:\n{}",
        keep.display(),
        listing.join("\n")
    );
}

#[test]
fn torture_sigkill() {
    let kills_wanted: u64 = std::env::var("NUMVAULT_TORTURE_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let seed: u64 = std::env::var("NUMVAULT_TORTURE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5EED);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng::new(seed);
    let mut model = Snap::new();
    let mut f = Figures {
        kills: 0,
        early_kills: 0,
        completed: 0,
        ops_returned: 0,
        in_flight_present: 0,
        in_flight_absent: 0,
        reader_recoveries: 0,
    };
    // Most rounds wait until the child reports the store open and then kill
    // it after a delay drawn from 0..est. est tracks the time the child takes
    // to run all its operations: it shrinks after a round the child finished
    // (the delay was too long) and stretches a little after each kill (the
    // run may be longer), settling where about one round in eight finishes,
    // so the kills fall all along the run. (It once grew after a finish and
    // ran away to its cap: most rounds then finished, and 300 kills took
    // 90 s instead of 4.) One round in eight kills the
    // child while it is still starting, opening or recovering the previous
    // crash, at a delay drawn from 0..(twice the typical time to open). The
    // kill clock never depends on how fast the machine starts a process or
    // syncs a file, so a slow machine cannot turn every round into an early
    // kill (which once made this loop spin until CI's time limit).
    let mut est_us: u64 = 20_000;
    let mut open_est_us: u64 = 20_000;
    let started = Instant::now();
    let mut round = 0u64;
    let max_rounds = kills_wanted * 20 + 1_000;
    let budget = std::env::var("NUMVAULT_TORTURE_BUDGET_SECS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .or((kills_wanted <= 1_000).then_some(600))
        .map(Duration::from_secs);
    let mut out_of_time = false;
    while f.kills < kills_wanted {
        if let Some(b) = budget.filter(|b| started.elapsed() > *b) {
            out_of_time = true;
            let least = kills_wanted.div_ceil(10);
            assert!(
                f.kills >= least,
                "torture: the time budget of {b:?} ran out after {} kills ({} early, {} \
                 clean finishes, {round} rounds); at least {least} were needed; seed {seed}",
                f.kills,
                f.early_kills,
                f.completed
            );
            break;
        }
        if round >= max_rounds {
            panic!(
                "torture: {round} rounds gave only {} kills after the child opened the store \
                 ({} before, {} clean finishes); seed {seed}",
                f.kills, f.early_kills, f.completed
            );
        }
        let pol = (round % 4) as usize;
        let ckpt = if rng.chance(30) { 16 << 10 } else { 64 << 20 };
        let mut end_model = model.clone();
        let ops = generate(&mut rng, &mut end_model, OPS_PER_ROUND);
        let text: String = ops.iter().map(|o| o.encode() + "\n").collect();
        std::fs::write(dir.join("ops"), text).unwrap();
        let _ = std::fs::remove_file(dir.join("progress"));
        let early_round = rng.chance(12);
        let spawned = Instant::now();
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "torture_child",
                "--nocapture",
                "--ignored",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir)
            .env(CHILD_POLICY, pol.to_string())
            .env(CHILD_CKPT, ckpt.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let delay = if early_round {
            let d = Duration::from_micros(rng.below(open_est_us * 2));
            std::thread::sleep(d);
            d
        } else {
            // Wait for "open" (or the child's exit), then the drawn delay.
            loop {
                let p = std::fs::read_to_string(dir.join("progress")).unwrap_or_default();
                if p.lines().any(|l| l == "open") {
                    let took = spawned.elapsed().as_micros() as u64;
                    open_est_us = (open_est_us * 7 + took) / 8;
                    break;
                }
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                if spawned.elapsed() > Duration::from_secs(120) {
                    let _ = child.kill();
                    let _ = child.wait();
                    fail(
                        "waiting for the child to open the store",
                        seed,
                        round,
                        &ops,
                        dir,
                        "the child did not open the store within 120 s".into(),
                    );
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            let d = Duration::from_micros(rng.below(est_us));
            // Sleep until the kill moment, or until the child exits.
            let t = Instant::now();
            while t.elapsed() < d && child.try_wait().unwrap().is_none() {
                std::thread::sleep(
                    d.saturating_sub(t.elapsed())
                        .min(Duration::from_micros(500)),
                );
            }
            d
        };
        let killed = match child.try_wait().unwrap() {
            None => {
                child.kill().unwrap(); // SIGKILL
                true
            }
            Some(_) => false,
        };
        let out = child.wait_with_output().unwrap();
        let progress = std::fs::read_to_string(dir.join("progress")).unwrap_or_default();
        let ctx = format!(
            "[{}] kill {delay:?} after {} (killed: {killed})",
            policy_name(policy(pol)),
            if early_round { "the spawn" } else { "the open" }
        );
        if progress.lines().any(|l| l.starts_with("error")) || (!killed && !out.status.success()) {
            fail(
                &ctx,
                seed,
                round,
                &ops,
                dir,
                format!(
                    "the child failed: {progress}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                ),
            );
        }
        let done = progress
            .lines()
            .filter(|l| l.parse::<u64>().is_ok())
            .count();
        for (i, l) in progress
            .lines()
            .filter(|l| l.parse::<u64>().is_ok())
            .enumerate()
        {
            assert_eq!(l, i.to_string(), "progress file out of order");
        }
        if killed && !progress.lines().any(|l| l == "open") {
            // Killed while starting, opening or recovering: counted apart.
            f.early_kills += 1;
        } else if killed {
            f.kills += 1;
            if f.kills.is_multiple_of(500) {
                eprintln!("torture: {} kills, {:.0?}", f.kills, started.elapsed());
            }
            if !early_round {
                est_us = (est_us * 17 / 16).min(5_000_000);
            }
        } else {
            f.completed += 1;
            est_us = (est_us * 2 / 3).max(1_000);
            assert_eq!(done, ops.len(), "{ctx}: clean exit without every op");
        }
        f.ops_returned += done as u64;

        // The model after `done` ops and after `done + 1` (the op in flight).
        let mut expect = model.clone();
        for op in &ops[..done] {
            op.apply(&mut expect);
        }
        let mut expect_next = expect.clone();
        if let Some(op) = ops.get(done) {
            op.apply(&mut expect_next);
        }

        // Reopen: every third round a reader first (it recovers the store
        // itself when no writer holds the lock), then the writer.
        let path = store_path(dir);
        if round % 3 == 1 && path.join("MANIFEST").exists() {
            let r = Store::open(&path, OpenOptions::read_only()).unwrap_or_else(|e| {
                fail(&ctx, seed, round, &ops, dir, format!("reader open: {e}"))
            });
            let snap = snapshot_with_versions(&r)
                .unwrap_or_else(|e| fail(&ctx, seed, round, &ops, dir, format!("reader: {e}")));
            if snap != expect && snap != expect_next {
                fail(
                    &ctx,
                    seed,
                    round,
                    &ops,
                    dir,
                    format!(
                        "reader sees a state that is not prefix {done} or {}",
                        done + 1
                    ),
                );
            }
            f.reader_recoveries += 1;
        }
        let s = Store::open(&path, OpenOptions::default())
            .unwrap_or_else(|e| fail(&ctx, seed, round, &ops, dir, format!("reopen: {e}")));
        let snap = snapshot_with_versions(&s)
            .unwrap_or_else(|e| fail(&ctx, seed, round, &ops, dir, format!("read: {e}")));
        if snap == expect_next && done < ops.len() && expect_next != expect {
            f.in_flight_present += 1;
            model = expect_next;
        } else if snap == expect {
            if done < ops.len() && expect_next != expect {
                f.in_flight_absent += 1;
            }
            model = expect;
        } else {
            let lost = (0..done).rev().find(|&p| {
                let mut m = model.clone();
                for op in &ops[..p] {
                    op.apply(&mut m);
                }
                m == snap
            });
            fail(
                &ctx,
                seed,
                round,
                &ops,
                dir,
                format!(
                    "{done} ops returned; the reopened store is not the state after {done} \
                     or {} ops (it matches the state after {lost:?} ops)",
                    done + 1
                ),
            );
        }
        let rep = s
            .verify()
            .unwrap_or_else(|e| fail(&ctx, seed, round, &ops, dir, format!("verify: {e}")));
        if !rep.is_clean() {
            fail(
                &ctx,
                seed,
                round,
                &ops,
                dir,
                format!("verify: {:?}", rep.problems),
            );
        }
        s.close()
            .unwrap_or_else(|e| fail(&ctx, seed, round, &ops, dir, format!("close: {e}")));
        round += 1;
    }
    let line = format!(
        "torture: {} SIGKILLs survived after the child opened the store ({} more before it \
         had; {} rounds ran to the end) in {:.1?}; {} ops returned \
         before a kill or exit, 0 lost; op in flight at the kill present {} / absent {} times; \
         {} reader-first recoveries; seed {seed}{}",
        f.kills,
        f.early_kills,
        f.completed,
        started.elapsed(),
        f.ops_returned,
        f.in_flight_present,
        f.in_flight_absent,
        f.reader_recoveries,
        if out_of_time {
            format!(" (stopped by the time budget short of {kills_wanted} kills)")
        } else {
            String::new()
        }
    );
    report_figures(&line);
}

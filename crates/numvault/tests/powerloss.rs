//! Power loss with reordered and torn writes, through `SimVfs`.
//!
//! A random workload (every kind of mutation, flushes, checkpoints) runs on
//! the simulated file system and "crashes" at a random fault point. Then
//! `SimVfs::after_power_loss(seed)` builds what the disk may hold: synced
//! bytes, plus a random subset of the writes made since each file's last
//! fsync, landed in any order and each possibly torn at 512-byte sector
//! boundaries, plus a random subset of the directory changes since the last
//! directory fsync. The engine writes `synced_seq` into every log record so
//! that recovery can tell a damaged durable record (corruption) from a
//! reordered unsynced tail; these images exercise exactly that.
//!
//! For every policy the reopened store must hold the model state after a
//! prefix of the operations that is at least
//! - every operation that returned, under `Sync::Always`,
//! - every operation before the last flush/checkpoint that returned,
//!   otherwise,
//!
//! and at most the one in flight; `verify()` must be clean, recovery must be
//! durable (a second power loss right after it changes nothing) and a
//! further write must work.
//!
//! `NUMVAULT_POWERLOSS_TRIALS` sets crash points per policy (default 60),
//! each checked under 4 power-loss images.

mod common;
mod workload;

use std::sync::Arc;

use common::*;
use numvault::sim::{FaultPlan, SimVfs};
use numvault::{DType, OpenOptions, Store, Sync};
use workload::{generate, Op, Rng};

fn open_with(sim: &SimVfs, sync: Sync, ckpt: u64) -> numvault::Result<Store> {
    let mut o = sim_opts(sim, sync);
    o.checkpoint_log_bytes = ckpt;
    Store::open(SIM_PATH, o)
}

struct Run {
    /// Operations that returned Ok (running stops at the first error).
    ok: usize,
    /// Operations before the last flush/checkpoint that returned.
    durable: usize,
}

fn run_ops(s: &Store, ops: &[Op]) -> Run {
    let mut run = Run { ok: 0, durable: 0 };
    for (i, op) in ops.iter().enumerate() {
        if op.run(s).is_err() {
            break;
        }
        run.ok = i + 1;
        if matches!(op, Op::Flush | Op::Checkpoint) {
            run.durable = i + 1;
        }
    }
    run
}

fn prefix_states(base: &Snap, ops: &[Op]) -> Vec<Snap> {
    let mut m = base.clone();
    let mut v = vec![m.clone()];
    for op in ops {
        op.apply(&mut m);
        v.push(m.clone());
    }
    v
}

#[derive(Default)]
struct Counts {
    crash_points: u64,
    images: u64,
    lost_unsynced: u64,
}

fn trials() -> u64 {
    std::env::var("NUMVAULT_POWERLOSS_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60)
}

fn torture_policy(sync: Sync, seed: u64, c: &mut Counts) {
    let name = policy_name(sync);
    let mut rng = Rng::new(seed);
    for t in 0..trials() {
        // A durable base with a few arrays, then a workload that crashes.
        let ckpt = if rng.chance(30) { 8 << 10 } else { 64 << 20 };
        let mut base = Snap::new();
        let setup = generate(&mut rng, &mut base, 6);
        let mut end = base.clone();
        let ops = generate(&mut rng, &mut end, 25);
        let states = prefix_states(&base, &ops);
        let build = || {
            let sim = SimVfs::new();
            let s = open_with(&sim, sync, ckpt).unwrap();
            for op in &setup {
                op.run(&s).unwrap();
            }
            // A durable base: a close syncs nothing under Sync::Never
            // (changed on purpose, issue 11), so it is flushed explicitly.
            s.flush().unwrap();
            s.close().unwrap();
            let s = open_with(&sim, sync, ckpt).unwrap();
            (sim, s)
        };
        // Count the fault points of a fault-free run, then crash at a
        // random one.
        let (sim, s) = build();
        sim.set_plan(FaultPlan::default());
        let r = run_ops(&s, &ops);
        assert_eq!(r.ok, ops.len(), "fault-free run failed");
        let points = sim.points();
        drop(s);
        let k = rng.below(points + 1);
        let (sim, s) = build();
        sim.set_plan(FaultPlan {
            crash_at: Some(k),
            // Sometimes the write at the crash point lands in part.
            torn_bytes: rng.chance(30).then(|| rng.below(5000) as usize),
            ..FaultPlan::default()
        });
        let run = run_ops(&s, &ops);
        drop(s);
        c.crash_points += 1;
        let hi = (run.ok + 1).min(ops.len());
        let lo = if sync == Sync::Always {
            run.ok
        } else {
            run.durable
        };
        let listing = || {
            ops.iter()
                .enumerate()
                .map(|(i, o)| format!("  {i}: {}", o.encode()))
                .collect::<Vec<_>>()
                .join("\n")
        };
        for img in 0..4 {
            let pl_seed = rng.next();
            let ctx = format!(
                "[{name}] trial {t} (seed {seed}), crash at point {k}/{points}, {} ops returned, \
                 power-loss image seed {pl_seed} (#{img})",
                run.ok
            );
            let fs = sim.after_power_loss(pl_seed);
            // A reader first on a copy: it recovers the store itself.
            {
                let copy = fs.after_crash(true);
                let mut ro = OpenOptions::read_only();
                ro.vfs = Arc::new(copy);
                let r = Store::open(SIM_PATH, ro)
                    .unwrap_or_else(|e| panic!("{ctx}: reader open: {e}\n{}", listing()));
                let snap =
                    snapshot_with_versions(&r).unwrap_or_else(|e| panic!("{ctx}: reader: {e}"));
                assert!(
                    (lo..=hi).any(|p| states[p] == snap),
                    "{ctx}: reader state is not a prefix in {lo}..={hi} (matches {:?})\n{}",
                    states.iter().position(|s| *s == snap),
                    listing()
                );
            }
            let s = open_with(&fs, sync, ckpt)
                .unwrap_or_else(|e| panic!("{ctx}: reopen: {e}\n{}", listing()));
            let snap = snapshot_with_versions(&s).unwrap_or_else(|e| panic!("{ctx}: read: {e}"));
            let Some(p) = (lo..=hi).rev().find(|&p| states[p] == snap) else {
                panic!(
                    "{ctx}: reopened state is not a prefix in {lo}..={hi} (matches {:?})\n{}",
                    states.iter().position(|s| *s == snap),
                    listing()
                );
            };
            if p < run.ok {
                c.lost_unsynced += 1;
            }
            assert_verify_clean(&s, &ctx);
            // Recovery is durable: another power loss right away keeps it.
            let again = open_with(&fs.after_power_loss(pl_seed ^ 1), sync, ckpt)
                .unwrap_or_else(|e| panic!("{ctx}: reopen after a second power loss: {e}"));
            assert_eq!(
                snapshot_with_versions(&again).unwrap(),
                snap,
                "{ctx}: second power loss"
            );
            drop(again);
            // A further write works and survives.
            let post = arr(DType::U32, &[3, 2], 99);
            s.save("post", post.r())
                .unwrap_or_else(|e| panic!("{ctx}: save after recovery: {e}"));
            s.close().unwrap();
            let s = open_with(&fs, sync, ckpt).unwrap();
            let mut want = snap;
            want.insert("post".into(), post);
            assert_eq!(
                snapshot_with_versions(&s).unwrap(),
                want,
                "{ctx}: after a further save"
            );
            c.images += 1;
        }
    }
}

#[test]
fn power_loss_with_reordered_and_torn_writes() {
    let mut lines = Vec::new();
    let mut total = Counts::default();
    for (i, sync) in policies().into_iter().enumerate() {
        let mut c = Counts::default();
        torture_policy(sync, 1000 + i as u64, &mut c);
        lines.push(format!(
            "{}: {} crash points, {} power-loss images, {} lost only unsynced ops",
            policy_name(sync),
            c.crash_points,
            c.images,
            c.lost_unsynced
        ));
        if sync == Sync::Always {
            assert_eq!(c.lost_unsynced, 0);
        }
        total.crash_points += c.crash_points;
        total.images += c.images;
    }
    let line = format!(
        "power loss: {} crash points, {} reordered/torn power-loss images checked, 0 returned ops lost under Always ({})",
        total.crash_points,
        total.images,
        lines.join("; ")
    );
    report_figures(&line);
}

/// The first handle is killed (its unsynced writes stay unsynced: same
/// boot), a second handle under `sync` reopens the store (reusing the log),
/// runs more operations and crashes; then the power goes. What the second
/// handle declared durable (a flush or checkpoint that returned, or any
/// returned operation under `Always`) covers the first handle's operations
/// too (Appendix A.13).
fn kill_then_power_loss(sync: Sync, seed: u64, c: &mut Counts) {
    let name = policy_name(sync);
    let mut rng = Rng::new(seed);
    for t in 0..trials().div_ceil(2) {
        let first = policies()[rng.below(4) as usize];
        let mut base = Snap::new();
        let setup = generate(&mut rng, &mut base, 4);
        let mut end1 = base.clone();
        let ops1 = generate(&mut rng, &mut end1, 15);
        let states1 = prefix_states(&base, &ops1);
        let sim = SimVfs::new();
        let s = open_with(&sim, first, 64 << 20).unwrap();
        for op in &setup {
            op.run(&s).unwrap();
        }
        s.flush().unwrap();
        sim.set_plan(FaultPlan::default());
        let r = run_ops(&s, &ops1);
        assert_eq!(r.ok, ops1.len(), "fault-free run failed");
        let points = sim.points();
        drop(s);
        // Again, killed at a random point.
        let sim = SimVfs::new();
        let s = open_with(&sim, first, 64 << 20).unwrap();
        for op in &setup {
            op.run(&s).unwrap();
        }
        s.flush().unwrap();
        let k1 = rng.below(points + 1);
        sim.set_plan(FaultPlan {
            crash_at: Some(k1),
            ..FaultPlan::default()
        });
        let run1 = run_ops(&s, &ops1);
        drop(s);
        let killed = sim.after_kill();
        let ctx1 = format!(
            "[{name}] trial {t} (seed {seed}): first handle {} killed at point {k1}/{points}",
            policy_name(first)
        );
        // A kill loses nothing that returned.
        let p = {
            let s = open_with(&killed.after_kill(), sync, 64 << 20)
                .unwrap_or_else(|e| panic!("{ctx1}: reopen: {e}"));
            let snap = snapshot_with_versions(&s).unwrap();
            let hi = (run1.ok + 1).min(ops1.len());
            (run1.ok..=hi)
                .rev()
                .find(|&p| states1[p] == snap)
                .unwrap_or_else(|| panic!("{ctx1}: the kill lost returned operations"))
        };
        let mut end2 = states1[p].clone();
        let ops2 = generate(&mut rng, &mut end2, 15);
        let mut states = states1[..=p].to_vec();
        states.extend(prefix_states(&states1[p], &ops2).into_iter().skip(1));
        let count = killed.after_kill();
        let s = open_with(&count, sync, 64 << 20).unwrap();
        count.set_plan(FaultPlan::default());
        assert_eq!(
            run_ops(&s, &ops2).ok,
            ops2.len(),
            "{ctx1}: fault-free second run"
        );
        let points2 = count.points();
        drop(s);
        let sim2 = killed.after_kill();
        let s = open_with(&sim2, sync, 64 << 20).unwrap();
        let k2 = rng.below(points2 + 1);
        sim2.set_plan(FaultPlan {
            crash_at: Some(k2),
            torn_bytes: rng.chance(30).then(|| rng.below(5000) as usize),
            ..FaultPlan::default()
        });
        let run2 = run_ops(&s, &ops2);
        drop(s);
        c.crash_points += 1;
        let declared = if sync == Sync::Always {
            run2.ok
        } else {
            run2.durable
        };
        // Nothing the second handle declared: only the setup is sure.
        let lo = if declared > 0 { p + declared } else { 0 };
        let hi = p + (run2.ok + 1).min(ops2.len());
        let listing = || {
            let a = setup.iter().map(|o| format!("  0: {}", o.encode()));
            let a = a.chain(ops1[..p].iter().map(|o| format!("  1: {}", o.encode())));
            let b = ops2.iter().map(|o| format!("  2: {}", o.encode()));
            a.chain(b).collect::<Vec<_>>().join("\n")
        };
        for img in 0..4 {
            let pl_seed = rng.next();
            let ctx = format!(
                "{ctx1}; second handle crashed at point {k2}/{points2} after {} ops, \
                 power-loss image seed {pl_seed} (#{img})",
                run2.ok
            );
            let fs = sim2.after_power_loss(pl_seed);
            let s = open_with(&fs, Sync::OnFlush, 64 << 20)
                .unwrap_or_else(|e| panic!("{ctx}: reopen: {e}\n{}", listing()));
            let snap = snapshot_with_versions(&s)
                .unwrap_or_else(|e| panic!("{ctx}: read: {e}\n{}", listing()));
            assert!(
                (lo..=hi).any(|q| states[q] == snap),
                "{ctx}: state is not a prefix in {lo}..={hi} (matches {:?})\n{}",
                states.iter().position(|s| *s == snap),
                listing()
            );
            assert_verify_clean(&s, &ctx);
            c.images += 1;
        }
    }
}

#[test]
fn kill_then_power_loss_keeps_what_the_next_handle_declared() {
    let mut total = Counts::default();
    for (i, sync) in policies().into_iter().enumerate() {
        kill_then_power_loss(sync, 5000 + i as u64, &mut total);
    }
    report_figures(&format!(
        "kill then power loss: {} second-handle crash points, {} power-loss images checked",
        total.crash_points, total.images
    ));
}

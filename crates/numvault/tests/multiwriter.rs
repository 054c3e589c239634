//! Writers by turns (`OpenOptions::shared`): several handles, in threads of
//! several processes, append to one array and replace rows of another; no
//! update is lost, each lands once, each writer's updates land in the order
//! it made them, and `verify` is clean. The test binary runs itself as a
//! child process (`child_entry`, ignored unless asked for by name).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::assert_verify_clean;
use numvault::{ArrayRef, Error, OpenOptions, Store, Sync};

const ROLE: &str = "NUMVAULT_MW_ROLE";
const DIR: &str = "NUMVAULT_MW_DIR";
const PROCS: u64 = 4;
const THREADS: u64 = 4;

fn ops_per_writer() -> u64 {
    std::env::var("NUMVAULT_MW_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

fn shared_opts(sync: Sync) -> OpenOptions {
    OpenOptions {
        lock_timeout: Some(Duration::from_secs(60)),
        ..OpenOptions::default().sync(sync).shared(true)
    }
}

fn u64s(b: &[u8]) -> Vec<u64> {
    b.chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// Create the store: "log" (rows [writer, k]) empty, "last" (one row
/// [writer, k] per writer), all zero.
fn create(dir: &Path) {
    let s = Store::open(dir, OpenOptions::default()).unwrap();
    s.save("log", ArrayRef::of(&[0, 2], &[0u64; 0])).unwrap();
    let writers = PROCS * THREADS;
    s.save(
        "last",
        ArrayRef::of(&[writers, 2], &vec![0u64; 2 * writers as usize]),
    )
    .unwrap();
    s.close().unwrap();
}

/// One writer: its own shared handle; `ops` times append [w, k] to "log"
/// and put [w, k] into row w of "last"; now and then a flush, a checkpoint
/// or both changes in one transaction.
fn writer(dir: &Path, w: u64, ops: u64, sync: Sync) {
    let s = Store::open(dir, shared_opts(sync)).unwrap();
    for k in 1..=ops {
        let row = [w, k];
        if k % 5 == 0 {
            let mut t = s.begin().unwrap();
            t.append("log", ArrayRef::of(&[1, 2], &row)).unwrap();
            t.replace("last", &[w as i64], ArrayRef::of(&[1, 2], &row))
                .unwrap();
            t.commit().unwrap();
        } else {
            s.append("log", ArrayRef::of(&[1, 2], &row)).unwrap();
            s.replace("last", &[w as i64], ArrayRef::of(&[1, 2], &row))
                .unwrap();
        }
        if k % 17 == 0 {
            s.flush().unwrap();
        }
        if k % 23 == 0 {
            s.checkpoint().unwrap();
        }
    }
    s.close().unwrap();
}

/// Every writer's updates are present once, in its order; "last" holds
/// each writer's final update.
fn check(dir: &Path, writers: u64, ops: u64) {
    let s = Store::open(dir, OpenOptions::default()).unwrap();
    let log = u64s(&s.read("log").unwrap().data);
    assert_eq!(
        log.len() as u64,
        2 * writers * ops,
        "updates lost or doubled"
    );
    let mut next = vec![1u64; writers as usize];
    for pair in log.chunks_exact(2) {
        let (w, k) = (pair[0] as usize, pair[1]);
        assert_eq!(k, next[w], "writer {w}: update {k} out of order or doubled");
        next[w] += 1;
    }
    let last = u64s(&s.read("last").unwrap().data);
    for w in 0..writers as usize {
        assert_eq!(last[2 * w..2 * w + 2], [w as u64, ops], "writer {w}");
    }
    assert_verify_clean(&s, "after the writers");
    let h = s.history().unwrap();
    assert!(h.is_clean(), "{:?}", h.problems);
    assert_eq!(h.head_seq, s.last_seq());
}

#[test]
fn threads_with_their_own_handles_write_by_turns() {
    let d = tempfile::tempdir().unwrap();
    create(d.path());
    let ops = ops_per_writer();
    std::thread::scope(|sc| {
        for w in 0..THREADS {
            let dir = d.path();
            sc.spawn(move || writer(dir, w, ops, Sync::OnFlush));
        }
    });
    check(d.path(), THREADS, ops);
}

#[test]
fn processes_of_threads_write_by_turns() {
    let d = tempfile::tempdir().unwrap();
    create(d.path());
    let ops = ops_per_writer();
    let children: Vec<_> = (0..PROCS)
        .map(|p| {
            let out = d.path().with_extension(format!("p{p}.out"));
            let f = std::fs::File::create(&out).unwrap();
            let child = Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "child_entry", "--nocapture", "--ignored"])
                .env(ROLE, p.to_string())
                .env(DIR, d.path())
                .stdout(Stdio::from(f.try_clone().unwrap()))
                .stderr(Stdio::from(f))
                .spawn()
                .unwrap();
            (child, out)
        })
        .collect();
    for (mut child, out) in children {
        let st = child.wait().unwrap();
        let log = std::fs::read_to_string(&out).unwrap_or_default();
        assert!(st.success(), "child failed:\n{log}");
    }
    check(d.path(), PROCS * THREADS, ops);
}

/// A child process: `THREADS` writers with ids `p * THREADS ..`.
#[test]
#[ignore]
fn child_entry() {
    let Ok(p) = std::env::var(ROLE) else {
        return;
    };
    let p: u64 = p.parse().unwrap();
    let dir = PathBuf::from(std::env::var(DIR).unwrap());
    let ops = ops_per_writer();
    let sync = if p.is_multiple_of(2) {
        Sync::OnFlush
    } else {
        Sync::Always
    };
    std::thread::scope(|sc| {
        for t in 0..THREADS {
            let dir = &dir;
            sc.spawn(move || writer(dir, p * THREADS + t, ops, sync));
        }
    });
}

#[test]
fn a_writer_that_waits_in_vain_names_the_holder_then_catches_up() {
    let d = tempfile::tempdir().unwrap();
    create(d.path());
    let quick = OpenOptions {
        lock_timeout: Some(Duration::from_millis(50)),
        ..OpenOptions::default().shared(true)
    };
    let c = Store::open(d.path(), quick.clone()).unwrap();
    // An exclusive writer holds the lock from open to close. (It waits a
    // little: a process forked by another test in this binary keeps a lock
    // just released by this one until it execs.)
    let patient = OpenOptions {
        lock_timeout: Some(Duration::from_secs(5)),
        ..OpenOptions::default()
    };
    let held = Store::open(d.path(), patient).unwrap();
    match Store::open(d.path(), quick) {
        Err(Error::Locked { .. }) => {}
        other => panic!("{:?}", other.map(|_| ())),
    }
    held.append("log", ArrayRef::of(&[1, 2], &[9u64, 9]))
        .unwrap();
    let e = c
        .append("log", ArrayRef::of(&[1, 2], &[2u64, 2]))
        .unwrap_err();
    let pid = format!("pid {}", std::process::id());
    assert!(
        matches!(&e, Error::Locked { holder: Some(h), .. } if *h == pid),
        "{e}"
    );
    assert!(e.to_string().contains(&pid), "{e}");
    drop(held);
    c.append("log", ArrayRef::of(&[1, 2], &[2u64, 2])).unwrap();
    assert_eq!(
        u64s(&c.read("log").unwrap().data),
        vec![9, 9, 2, 2],
        "c caught up with the other writer's append before its own"
    );
    assert_verify_clean(&c, "after the turns");
}

#[test]
fn refresh_catches_up_and_the_lock_wait_can_change() {
    let d = tempfile::tempdir().unwrap();
    create(d.path());
    let a = Store::open(d.path(), shared_opts(Sync::OnFlush)).unwrap();
    let b = Store::open(d.path(), shared_opts(Sync::OnFlush)).unwrap();
    a.append("log", ArrayRef::of(&[1, 2], &[5u64, 5])).unwrap();
    assert!(
        b.read("log").unwrap().data.is_empty(),
        "not seen before a refresh"
    );
    b.refresh().unwrap();
    assert_eq!(u64s(&b.read("log").unwrap().data), vec![5, 5]);
    // b waits 60 s by default; made impatient, it fails at once while an
    // exclusive writer holds the lock, and waits again once changed back.
    b.set_lock_timeout(Some(Duration::from_millis(20)));
    let patient = OpenOptions {
        lock_timeout: Some(Duration::from_secs(5)),
        ..OpenOptions::default()
    };
    let held = Store::open(d.path(), patient).unwrap();
    let t = std::time::Instant::now();
    let e = b
        .append("log", ArrayRef::of(&[1, 2], &[6u64, 6]))
        .unwrap_err();
    assert!(matches!(e, Error::Locked { .. }), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(matches!(b.refresh(), Err(Error::Locked { .. })));
    b.set_lock_timeout(None);
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        drop(held);
    });
    b.append("log", ArrayRef::of(&[1, 2], &[6u64, 6])).unwrap();
    releaser.join().unwrap();
    assert_eq!(u64s(&b.read("log").unwrap().data), vec![5, 5, 6, 6]);
    drop(a);
    assert_verify_clean(&b, "after refresh and changed waits");
}

/// Crash torture for writers by turns: each round starts `KILL_WRITERS`
/// child processes, each a shared writer that commits [w, k] to "log" and
/// "last" in one transaction per step (resuming after the last step that
/// landed), reporting every step that returned; then SIGKILLs all of them
/// at a random moment. After each round the store must hold, for every
/// writer, exactly the steps 1..=last[w] once each and in order, every
/// reported step among them, and `verify` clean.
/// `NUMVAULT_MW_ROUNDS` rounds (default 12).
#[test]
fn shared_writers_survive_sigkill() {
    const KILL_WRITERS: u64 = 3;
    let rounds: u64 = std::env::var("NUMVAULT_MW_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("store");
    create(&dir);
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut killed_mid_work = 0;
    for round in 0..rounds {
        let children: Vec<_> = (0..KILL_WRITERS)
            .map(|w| {
                let out = d.path().join(format!("w{w}.r{round}"));
                let f = std::fs::File::create(&out).unwrap();
                let child = Command::new(std::env::current_exe().unwrap())
                    .args(["--exact", "kill_child", "--nocapture", "--ignored"])
                    .env(ROLE, w.to_string())
                    .env(DIR, &dir)
                    .env("NUMVAULT_MW_POLICY", (round + w).to_string())
                    .stdout(Stdio::from(f))
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                (child, out)
            })
            .collect();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(30 + seed % 300));
        let mut reported = vec![0u64; KILL_WRITERS as usize];
        for (w, (mut child, out)) in children.into_iter().enumerate() {
            if child.try_wait().unwrap().is_none() {
                killed_mid_work += 1;
            }
            let _ = child.kill();
            child.wait().unwrap();
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            reported[w] = text
                .lines()
                .filter_map(|l| l.strip_prefix("done "))
                .filter_map(|k| k.trim().parse().ok())
                .max()
                .unwrap_or(0);
        }
        let s = Store::open(&dir, OpenOptions::default().shared(true))
            .unwrap_or_else(|e| panic!("round {round}: reopen: {e}"));
        let log = u64s(&s.read("log").unwrap().data);
        let last = u64s(&s.read("last").unwrap().data);
        let mut next = vec![1u64; KILL_WRITERS as usize];
        for pair in log.chunks_exact(2) {
            let (w, k) = (pair[0] as usize, pair[1]);
            assert_eq!(
                k, next[w],
                "round {round}: writer {w} step {k} out of order or doubled"
            );
            next[w] += 1;
        }
        for w in 0..KILL_WRITERS as usize {
            let landed = next[w] - 1;
            assert_eq!(
                last[2 * w + 1],
                landed,
                "round {round}: writer {w}: log and last disagree"
            );
            assert!(
                reported[w] <= landed,
                "round {round}: writer {w}: step {} returned but is lost (landed {landed})",
                reported[w]
            );
        }
        assert_verify_clean(&s, &format!("round {round}"));
    }
    assert!(
        killed_mid_work >= rounds,
        "only {killed_mid_work} kills hit a working writer"
    );
}

/// A writer of [`shared_writers_survive_sigkill`]: resumes after its last
/// step that landed and commits steps until killed.
#[test]
#[ignore]
fn kill_child() {
    let Ok(w) = std::env::var(ROLE) else {
        return;
    };
    let w: u64 = w.parse().unwrap();
    let dir = PathBuf::from(std::env::var(DIR).unwrap());
    let policy: u64 = std::env::var("NUMVAULT_MW_POLICY")
        .unwrap()
        .parse()
        .unwrap();
    let sync = match policy % 3 {
        0 => Sync::Always,
        1 => Sync::OnFlush,
        _ => Sync::Never,
    };
    let s = Store::open(&dir, shared_opts(sync)).unwrap();
    let last = u64s(&s.read_rows("last", w, w + 1).unwrap().data);
    let mut out = std::io::stdout();
    for k in last[1] + 1.. {
        let row = [w, k];
        let mut t = s.begin().unwrap();
        t.append("log", ArrayRef::of(&[1, 2], &row)).unwrap();
        t.replace("last", &[w as i64], ArrayRef::of(&[1, 2], &row))
            .unwrap();
        t.commit().unwrap();
        use std::io::Write as _;
        writeln!(out, "done {k}").unwrap();
        out.flush().unwrap();
        if k % 50 == 0 {
            s.checkpoint().unwrap();
        }
    }
}

/// `verify()` on a writer by turns (and on a reader) while another writer
/// is in its turn (it holds the writer lock) and has written only part of
/// its record: that incomplete or damaged (written over preallocated zeros)
/// record at the end of the log is a write in progress, not a problem;
/// verify looks again once the lock is free (FORMAT.md §14). A torn tail
/// that no writer is writing (the lock is free: a crashed writer's) is a
/// problem on a writer, until the next turn cuts it; so is one still there
/// when the lock stays held (reported after a bounded wait).
#[test]
fn verify_ignores_another_writers_record_in_progress() {
    use numvault::sim::SimVfs;
    use numvault::vfs::Vfs;
    use std::time::Instant;

    let sim = SimVfs::new();
    let opts = OpenOptions {
        lock_timeout: Some(Duration::from_secs(10)),
        ..OpenOptions::default()
            .shared(true)
            .vfs(std::sync::Arc::new(sim.clone()))
    };
    let store = Path::new("/store");
    let a = Store::open(store, opts.clone()).unwrap();
    a.save("log", ArrayRef::of(&[1, 2], &[1u64, 1])).unwrap();
    let reader = OpenOptions {
        vfs: std::sync::Arc::new(sim.clone()),
        ..OpenOptions::read_only()
    };
    let r = Store::open(store, reader).unwrap();
    let b = Store::open(store, opts).unwrap();
    let log = sim
        .files()
        .into_iter()
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("wal-"))
        .unwrap();
    let lock_path = store.join("LOCK");
    let before = sim.read_file(&log).unwrap();
    b.append("log", ArrayRef::of(&[1, 2], &[2u64, 2])).unwrap();
    drop(b);
    let after = sim.read_file(&log).unwrap();
    let record = after[before.len()..].to_vec();
    assert!(record.len() > 48, "{} bytes", record.len());
    let half = record.len() / 2;
    let cut = [&before[..], &record[..half]].concat();
    let over_zeros = [
        &before[..],
        &record[..half],
        &vec![0u8; record.len() - half],
    ]
    .concat();
    let records = a.verify().unwrap().records;
    for (what, partial) in [("incomplete", &cut), ("damaged", &over_zeros)] {
        for (who, s) in [("writer by turns", &a), ("reader", &r)] {
            // B in its turn, half of its record written; it finishes 100 ms
            // on. (On a reader an incomplete record never was a problem; a
            // damaged one was.)
            let turn = sim.lock_exclusive(&lock_path, None).unwrap();
            sim.write_file(&log, partial.clone());
            let finish = {
                let (sim, log, after) = (sim.clone(), log.clone(), after.clone());
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(100));
                    sim.write_file(&log, after);
                    drop(turn);
                })
            };
            let rep = s.verify().unwrap();
            finish.join().unwrap();
            assert!(
                rep.is_clean(),
                "{what} record in progress reported on a {who}: {:#?}",
                rep.problems
            );
            // What was read is judged: the record in progress only if a
            // second look (after the turn) was needed.
            let looked_again = !(who == "reader" && what == "incomplete");
            let want = if looked_again { records } else { records - 1 };
            assert_eq!(rep.records, want, "{what}, {who}");
        }
    }
    // A crashed writer's torn tail: nobody holds the lock.
    sim.write_file(&log, cut.clone());
    let rep = a.verify().unwrap();
    assert_eq!(rep.problems.len(), 1, "{:#?}", rep.problems);
    assert_eq!(rep.problems[0].file, log);
    assert!(
        rep.problems[0].detail.contains("incomplete"),
        "{:?}",
        rep.problems
    );
    // Held by a writer that does not finish it: reported after the wait.
    let stuck = sim.lock_exclusive(&lock_path, None).unwrap();
    let t = Instant::now();
    let rep = a.verify().unwrap();
    assert_eq!(rep.problems.len(), 1, "{:#?}", rep.problems);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    drop(stuck);
    // A's next turn cuts the torn tail (the test tore B's record, so B's
    // append goes with it), then commits.
    a.append("log", ArrayRef::of(&[1, 2], &[3u64, 3])).unwrap();
    assert_eq!(u64s(&a.read("log").unwrap().data), vec![1, 1, 3, 3]);
    assert_verify_clean(&a, "after the tail was cut");
}

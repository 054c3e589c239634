//! One writer process, several reader processes, for a sustained run.
//!
//! The writer commits batches that replace every row of "ver" with the
//! commit number v and append B rows to "counter" (row i holds i), so in
//! every committed state "ver" is uniform with value v and "counter" has
//! exactly v * B rows. It also deletes and re-appends rows of "churn",
//! compacts and checkpoints regularly. Reader processes open the store
//! (fresh or by refresh), read and verify continuously and check those
//! invariants: a torn or uncommitted state would break them. Each reader
//! also holds a view and a reader handle of "ver" from the start and checks
//! it keeps reading its original values after the writer has compacted the
//! array and checkpointed its files away. Meanwhile the parent checks that
//! a second writer is refused.
//!
//! `NUMVAULT_MP_SECS` sets the run length (default 4 s).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use numvault::{ArrayRef, Batch, Error, OpenOptions, Store, Sync};

const ROLE: &str = "NUMVAULT_MPR_ROLE";
const DIR: &str = "NUMVAULT_MPR_DIR";
const W: usize = 4;
const B: u64 = 16;
const VER_ROWS: u64 = 64;
const READERS: usize = 3;

fn secs() -> u64 {
    std::env::var("NUMVAULT_MP_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}

fn store_path(dir: &Path) -> PathBuf {
    dir.join("store")
}

fn u64s(b: &[u8]) -> Vec<u64> {
    b.chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn spawn(role: &str, dir: &Path) -> (Child, PathBuf) {
    let out = dir.join(format!("{role}.out"));
    let f = std::fs::File::create(&out).unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "mpr_child",
            "--nocapture",
            "--ignored",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .env(DIR, dir)
        .stdout(Stdio::from(f.try_clone().unwrap()))
        .stderr(Stdio::from(f))
        .spawn()
        .unwrap();
    (child, out)
}

#[test]
#[ignore = "run by many_readers_one_writer in child processes"]
fn mpr_child() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let dir = PathBuf::from(std::env::var(DIR).unwrap());
    if role == "writer" {
        writer(&dir);
    } else {
        reader(&dir, &role);
    }
}

fn writer(dir: &Path) {
    let s = Store::open(store_path(dir), OpenOptions::default().sync(Sync::OnFlush)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs() + 60);
    let mut v = s.shape("counter").map_or(0, |sh| sh[0] / B);
    while !dir.join("stop").exists() && Instant::now() < deadline {
        v += 1;
        let ver = vec![v; VER_ROWS as usize * W];
        let first = (v - 1) * B;
        let rows: Vec<u64> = (first..first + B).flat_map(|i| [i; W]).collect();
        let all: Vec<i64> = (0..VER_ROWS as i64).collect();
        let mut b = Batch::new();
        b.replace("ver", &all, ArrayRef::of(&[VER_ROWS, W as u64], &ver))
            .append("counter", ArrayRef::of(&[B, W as u64], &rows));
        s.commit(&b).unwrap();
        // "churn": delete two rows, append two, all rows hold v-ish values.
        s.delete_rows("churn", &[0, -1]).unwrap();
        s.append("churn", ArrayRef::of(&[2, W as u64], &[v; 2 * W]))
            .unwrap();
        if v.is_multiple_of(5) {
            s.flush().unwrap();
        }
        if v.is_multiple_of(7) {
            s.compact("ver").unwrap();
            s.compact("churn").unwrap();
        }
        if v.is_multiple_of(11) {
            s.checkpoint().unwrap();
        }
        std::fs::write(dir.join("progress.tmp"), v.to_string()).unwrap();
        std::fs::rename(dir.join("progress.tmp"), dir.join("progress")).unwrap();
    }
    s.close().unwrap();
    std::fs::write(dir.join("writer.done"), v.to_string()).unwrap();
}

/// Reads on a read-only handle whose state names a file a checkpoint has
/// removed load the newest state first, so two reads can come from two
/// commits; read both arrays again until they come from one.
fn check_state(r: &Store, ctx: &str) -> numvault::Result<u64> {
    loop {
        let seq = r.last_seq();
        let counter = r.read("counter")?;
        let ver = r.read("ver")?;
        if r.last_seq() == seq {
            return check_arrays(r, counter, ver, ctx);
        }
    }
}

fn check_arrays(
    r: &Store,
    counter: numvault::ArrayData,
    ver: numvault::ArrayData,
    ctx: &str,
) -> numvault::Result<u64> {
    let ver = u64s(&ver.data);
    let v = ver[0];
    assert!(
        ver.iter().all(|&x| x == v),
        "{ctx}: torn 'ver' (not uniform)"
    );
    assert_eq!(
        counter.shape[0],
        v * B,
        "{ctx}: 'counter' has {} rows but 'ver' is at commit {v}: not one committed state",
        counter.shape[0]
    );
    for (i, row) in u64s(&counter.data).chunks_exact(W).enumerate() {
        assert!(
            row.iter().all(|&x| x == i as u64),
            "{ctx}: row {i} holds {row:?}"
        );
    }
    let churn = u64s(&r.read("churn")?.data);
    for row in churn.chunks_exact(W) {
        assert!(row.iter().all(|&x| x == row[0]), "{ctx}: torn churn row");
    }
    Ok(v)
}

fn not_found(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}

fn reader(dir: &Path, role: &str) {
    let path = store_path(dir);
    let held = Store::open(&path, OpenOptions::read_only()).unwrap();
    let v0 = check_state(&held, role).unwrap();
    let view = held.view("ver").unwrap();
    let original = u64s(&view.to_array().unwrap().data);
    let mut r = Store::open(&path, OpenOptions::read_only()).unwrap();
    let t = Instant::now();
    let (mut iters, mut opens, mut verifies, mut last, mut vanished) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let progress = || {
        std::fs::read_to_string(dir.join("progress"))
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
    };
    while !dir.join("stop").exists() {
        assert!(t.elapsed() < Duration::from_secs(secs() + 60), "no stop");
        if iters.is_multiple_of(5) {
            r = Store::open(&path, OpenOptions::read_only()).unwrap();
            opens += 1;
        } else {
            match r.refresh() {
                Ok(()) => {}
                // A checkpoint removed the log between our reads: reopen.
                Err(e) if not_found(&e) => {
                    r = Store::open(&path, OpenOptions::read_only()).unwrap();
                    opens += 1;
                }
                Err(e) => panic!("{role}: refresh: {e}"),
            }
        }
        let v = match check_state(&r, role) {
            Ok(v) => v,
            // The writer compacted and checkpointed away a file of the
            // state just loaded before we opened it: reload.
            Err(e) if not_found(&e) => {
                vanished += 1;
                r = Store::open(&path, OpenOptions::read_only()).unwrap();
                opens += 1;
                match check_state(&r, role) {
                    Ok(v) => v,
                    Err(e) if not_found(&e) => continue,
                    Err(e) => panic!("{role}: read: {e}"),
                }
            }
            Err(e) => panic!("{role}: read: {e}"),
        };
        assert!(v >= last, "{role}: went back from commit {last} to {v}");
        last = v;
        if iters.is_multiple_of(10) {
            // A checkpoint can remove the log or a data file of the state
            // being verified mid-way (reported as a missing file): verify
            // the newest state again; three races in a row fail the test.
            let mut attempt = 0;
            loop {
                let problems = match r.verify() {
                    Ok(rep) if rep.is_clean() => break,
                    Ok(rep) => format!("{:?}", rep.problems),
                    Err(e) if not_found(&e) => e.to_string(),
                    Err(e) => panic!("{role}: verify: {e}"),
                };
                attempt += 1;
                assert!(
                    attempt < 3 && problems.contains("No such file"),
                    "{role}: verify: {problems}"
                );
                vanished += 1;
                r = Store::open(&path, OpenOptions::read_only()).unwrap();
                opens += 1;
            }
            verifies += 1;
        }
        // The held view outlives compactions and checkpoints.
        assert_eq!(u64s(&view.to_array().unwrap().data), original);
        assert_eq!(u64s(view.row(-1).unwrap()), vec![v0; W]);
        iters += 1;
    }
    let p = progress();
    println!(
        "READER {role}: {iters} reads, {opens} opens, {verifies} verifies, commits {v0}..{last} seen (writer at {p}), {vanished} reloads after a checkpoint race"
    );
}

#[test]
fn many_readers_one_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(dir.path());
    {
        let s = Store::open(&path, OpenOptions::default()).unwrap();
        s.save(
            "ver",
            ArrayRef::of(&[VER_ROWS, W as u64], &vec![0u64; 64 * W]),
        )
        .unwrap();
        s.save("counter", ArrayRef::of::<u64>(&[0, W as u64], &[]))
            .unwrap();
        s.save("churn", ArrayRef::of(&[8, W as u64], &[0u64; 8 * W]))
            .unwrap();
        s.close().unwrap();
    }
    let (mut w, wout) = spawn("writer", dir.path());
    let wait_progress = |n: u64| {
        let t = Instant::now();
        loop {
            let p = std::fs::read_to_string(dir.path().join("progress"))
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0);
            if p >= n {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(60), "writer stalled");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait_progress(1);
    let readers: Vec<(Child, PathBuf)> = (0..READERS)
        .map(|i| spawn(&format!("reader{i}"), dir.path()))
        .collect();
    let t = Instant::now();
    let mut refused = 0;
    while t.elapsed() < Duration::from_secs(secs()) {
        // A second writer is refused at once.
        match Store::open(&path, OpenOptions::default()) {
            Err(Error::Locked { .. }) => refused += 1,
            other => panic!(
                "second writer: expected Locked, got {:?}",
                other.map(|_| ())
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Make sure compactions and checkpoints happened during the run.
    wait_progress(23);
    std::fs::write(dir.path().join("stop"), b"").unwrap();
    let mut lines = Vec::new();
    for (mut c, out) in readers {
        let st = c.wait().unwrap();
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        assert!(st.success(), "reader failed:\n{text}");
        assert!(text.contains("1 passed"), "reader did not run:\n{text}");
        // The harness prints "test mpr_child ... " on the same line.
        lines.extend(
            text.lines()
                .filter_map(|l| l.find("READER ").map(|i| l[i + 7..].to_string())),
        );
    }
    let st = w.wait().unwrap();
    let text = std::fs::read_to_string(&wout).unwrap_or_default();
    assert!(st.success(), "writer failed:\n{text}");
    let commits: u64 = std::fs::read_to_string(dir.path().join("writer.done"))
        .unwrap()
        .parse()
        .unwrap();
    let s = Store::open(&path, OpenOptions::default()).unwrap();
    assert_eq!(check_state(&s, "final").unwrap(), commits);
    assert_verify_clean(&s, "final");
    let line = format!(
        "multi-process: 1 writer ({commits} commits, compaction every 7, checkpoint every 11) and \
         {READERS} reader processes for {} s; {refused} second-writer opens refused; {}",
        secs(),
        lines.join("; ")
    );
    report_figures(&line);
}

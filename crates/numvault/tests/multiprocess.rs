//! Real processes on a real directory. The test binary runs itself as a
//! child (`child_entry`, ignored unless asked for by name) with
//! `NUMVAULT_MP_ROLE` saying what to do; parent and child coordinate through
//! marker files in the store's parent directory.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use numvault::{ArrayRef, Batch, Error, OpenOptions, Store, Sync};

const ROLE: &str = "NUMVAULT_MP_ROLE";
const DIR: &str = "NUMVAULT_MP_DIR";
/// Row width (u64 elements) and batch size of the counter array.
const W: usize = 4;
const B: u64 = 64;
/// Rows of the array the view test holds.
const N: u64 = 1000;
const VIEW_VAL: u64 = 1_000_000;

fn store_path(dir: &Path) -> PathBuf {
    dir.join("store")
}

fn touch(p: PathBuf) {
    std::fs::write(p, b"").unwrap();
}

fn wait_for(p: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !p.exists() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Rows `first..first+n` of the counter: row i holds i in every element.
fn counter_rows(first: u64, n: u64) -> Vec<u64> {
    (first..first + n).flat_map(|i| [i; W]).collect()
}

fn u64s(b: &[u8]) -> Vec<u64> {
    b.chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

struct Proc {
    child: Child,
    out: PathBuf,
    role: String,
}

fn spawn(role: &str, dir: &Path) -> Proc {
    let out = dir.join(format!("{role}.out"));
    let f = std::fs::File::create(&out).unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_entry",
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
    Proc {
        child,
        out,
        role: role.into(),
    }
}

impl Proc {
    /// Wait (bounded) for the child; it must have succeeded.
    fn finish(mut self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("child {} did not finish", self.role);
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let out = std::fs::read_to_string(&self.out).unwrap_or_default();
        assert!(
            status.success(),
            "child {} failed ({status}):\n{out}",
            self.role
        );
        assert!(
            out.contains("1 passed"),
            "child {} did not run its entry:\n{out}",
            self.role
        );
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Never leave a child behind when a parent assertion fails.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ------------------------------------------------------------- child side

#[test]
#[ignore = "run by the other tests in a child process"]
fn child_entry() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let dir = PathBuf::from(std::env::var(DIR).unwrap());
    match role.as_str() {
        "hold" => child_hold(&dir),
        "expect_locked" => child_expect_locked(&dir),
        "writer_counter" => child_writer_counter(&dir),
        "writer_churn" => child_writer_churn(&dir),
        other => panic!("unknown role {other}"),
    }
}

/// Hold the writer lock (after one commit) until told to stop.
fn child_hold(dir: &Path) {
    let s = Store::open(store_path(dir), OpenOptions::default()).unwrap();
    s.append("a", ArrayRef::of(&[1, W as u64], &counter_rows(7, 1)))
        .unwrap();
    touch(dir.join("ready"));
    wait_for(&dir.join("stop"), "stop");
    s.close().unwrap();
}

/// Another process holds the lock: opening for writing fails at once.
fn child_expect_locked(dir: &Path) {
    let t = Instant::now();
    match Store::open(store_path(dir), OpenOptions::default()) {
        Err(Error::Locked { path, .. }) => assert_eq!(path, store_path(dir)),
        other => panic!("expected Locked, got {:?}", other.map(|_| ())),
    }
    assert!(t.elapsed() < Duration::from_secs(2));
    // Reading is allowed.
    let r = Store::open(store_path(dir), OpenOptions::read_only()).unwrap();
    assert!(r.has("a"));
}

/// Append batches of B rows (row i holds i), sometimes through multi-op
/// batches, sometimes replacing rows with their own values, sometimes
/// large (not inline), with flushes and checkpoints, until told to stop.
fn child_writer_counter(dir: &Path) {
    let s = Store::open(store_path(dir), OpenOptions::default().sync(Sync::OnFlush)).unwrap();
    s.save("counter", ArrayRef::of::<u64>(&[0, W as u64], &[]))
        .unwrap();
    s.flush().unwrap();
    touch(dir.join("ready"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut next = 0u64;
    let mut k = 0u64;
    while !dir.join("stop").exists() && Instant::now() < deadline {
        let n = if k % 11 == 5 { 40 * B } else { B }; // 80 KiB: not inline
        let rows = counter_rows(next, n);
        let shape = [n, W as u64];
        match k % 4 {
            0 | 1 => s.append("counter", ArrayRef::of(&shape, &rows)).unwrap(),
            2 if next > 0 => {
                let idx: Vec<i64> = vec![(next - 1) as i64, 0, (k * 7 % next) as i64];
                let mut idx2 = idx.clone();
                idx2.sort_unstable();
                idx2.dedup();
                let vals: Vec<u64> = idx2.iter().flat_map(|&i| [i as u64; W]).collect();
                let rshape = [idx2.len() as u64, W as u64];
                let mut b = Batch::new();
                b.replace("counter", &idx2, ArrayRef::of(&rshape, &vals))
                    .append("counter", ArrayRef::of(&shape, &rows));
                s.commit(&b).unwrap();
            }
            _ => {
                s.append("counter", ArrayRef::of(&shape, &rows)).unwrap();
                // The last row (by a negative index) and another one.
                let i = (k * 13) % (next + n - 1);
                let vals: Vec<u64> = [next + n - 1, i].iter().flat_map(|&v| [v; W]).collect();
                s.replace(
                    "counter",
                    &[-1, i as i64],
                    ArrayRef::of(&[2, W as u64], &vals),
                )
                .unwrap();
            }
        }
        next += n;
        if k % 7 == 3 {
            s.flush().unwrap();
        }
        if k % 23 == 22 {
            s.checkpoint().unwrap();
        }
        k += 1;
        std::thread::sleep(Duration::from_millis(1));
    }
    std::fs::write(dir.join("done"), next.to_string()).unwrap();
    s.close().unwrap();
}

/// Append, replace with new values, delete, compact and checkpoint "v" in a
/// loop; rows keep all their elements equal.
fn child_writer_churn(dir: &Path) {
    let s = Store::open(store_path(dir), OpenOptions::default()).unwrap();
    touch(dir.join("ready"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut k = 0u64;
    while !dir.join("stop").exists() && Instant::now() < deadline {
        let v = 2 * VIEW_VAL + k;
        s.append("v", ArrayRef::of(&[10, W as u64], &[v; 10 * W]))
            .unwrap();
        s.replace(
            "v",
            &[0, 5, -1],
            ArrayRef::of(&[3, W as u64], &[v + 1; 3 * W]),
        )
        .unwrap();
        s.delete_rows("v", &[1, -2]).unwrap();
        if k % 3 == 2 {
            s.compact("v").unwrap();
        }
        if k % 4 == 3 {
            s.checkpoint().unwrap();
        }
        k += 1;
        std::fs::write(dir.join("progress"), k.to_string()).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    s.close().unwrap();
}

// ------------------------------------------------------------ parent side

#[test]
fn second_writer_process_is_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(dir.path());
    {
        let s = Store::open(&path, OpenOptions::default()).unwrap();
        s.save("a", ArrayRef::of(&[1, W as u64], &counter_rows(0, 1)))
            .unwrap();
    }
    // A child holds the lock: this process is locked out at once.
    let child = spawn("hold", dir.path());
    wait_for(&dir.path().join("ready"), "the child to take the lock");
    let t = Instant::now();
    match Store::open(&path, OpenOptions::default()) {
        Err(Error::Locked { path: p, .. }) => assert_eq!(p, path),
        other => panic!("expected Locked, got {:?}", other.map(|_| ())),
    }
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "Locked must come at once"
    );
    // A reader sees the child's commit (not flushed: visible to other
    // processes all the same).
    let r = Store::open(&path, OpenOptions::read_only()).unwrap();
    assert_eq!(r.shape("a").unwrap(), vec![2, W as u64]);
    assert_eq!(
        u64s(&r.read("a").unwrap().data),
        counter_rows(0, 1)
            .into_iter()
            .chain(counter_rows(7, 1))
            .collect::<Vec<_>>()
    );
    // A writer with a lock timeout gets the store once the child closes.
    let waiter = {
        let path = path.clone();
        std::thread::spawn(move || {
            let o = OpenOptions {
                lock_timeout: Some(Duration::from_secs(60)),
                ..OpenOptions::default()
            };
            let t = Instant::now();
            let s = Store::open(&path, o).unwrap();
            (t.elapsed(), s.shape("a").unwrap())
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    touch(dir.path().join("stop"));
    child.finish();
    let (waited, shape) = waiter.join().unwrap();
    assert!(
        waited >= Duration::from_millis(250),
        "did not wait: {waited:?}"
    );
    assert_eq!(shape, vec![2, W as u64]);

    // The other way round: this process holds the lock, a child is refused.
    let s = Store::open(&path, OpenOptions::default()).unwrap();
    spawn("expect_locked", dir.path()).finish();
    drop(s);
}

#[test]
fn reader_process_sees_only_committed_states() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(dir.path());
    let writer = spawn("writer_counter", dir.path());
    wait_for(&dir.path().join("ready"), "the writer");
    let r = Store::open(&path, OpenOptions::read_only()).unwrap();
    let t = Instant::now();
    let (mut states, mut last_rows, mut iters) = (0u64, 0u64, 0u64);
    while t.elapsed() < Duration::from_secs(2) || states < 5 {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the writer made no progress"
        );
        r.refresh().unwrap();
        let shape = r.shape("counter").unwrap();
        let rows = shape[0];
        assert_eq!(shape[1], W as u64);
        assert_eq!(rows % B, 0, "a state with a partial batch: {rows} rows");
        assert!(
            rows >= last_rows,
            "rows went back from {last_rows} to {rows}"
        );
        if rows != last_rows {
            states += 1;
        }
        last_rows = rows;
        let data = u64s(&r.read("counter").unwrap().data);
        assert_eq!(data.len() as u64, rows * W as u64);
        for (i, row) in data.chunks_exact(W).enumerate() {
            assert!(row.iter().all(|&x| x == i as u64), "row {i} holds {row:?}");
        }
        if rows > 0 {
            let v = r.view("counter").unwrap();
            for i in [0, rows / 2, rows - 1] {
                assert_eq!(u64s(v.row(i as i64).unwrap()), vec![i; W]);
            }
        }
        if iters % 8 == 0 {
            assert_verify_clean(&r, &format!("reader at {rows} rows"));
        }
        iters += 1;
    }
    touch(dir.path().join("stop"));
    writer.finish();
    let done: u64 = std::fs::read_to_string(dir.path().join("done"))
        .unwrap()
        .parse()
        .unwrap();
    // The reader catches up with everything, and the store checks clean.
    r.refresh().unwrap();
    assert_eq!(r.shape("counter").unwrap()[0], done);
    let s = Store::open(&path, OpenOptions::default()).unwrap();
    assert_eq!(s.shape("counter").unwrap()[0], done);
    assert_verify_clean(&s, "after the writer exited");
    eprintln!("reader observed {states} distinct states in {iters} refreshes; {done} rows written");
}

#[test]
fn held_view_stays_correct_while_another_process_rewrites_the_array() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(dir.path());
    let original: Vec<u64> = (0..N).flat_map(|i| [VIEW_VAL + i; W]).collect();
    {
        let s = Store::open(&path, OpenOptions::default()).unwrap();
        s.save("v", ArrayRef::of(&[N, W as u64], &original))
            .unwrap();
    }
    let r = Store::open(&path, OpenOptions::read_only()).unwrap();
    let v0 = r.view("v").unwrap();
    let mut batches = r.batches("v", 50).unwrap();
    let mut streamed: Vec<u64> = u64s(&batches.next().unwrap().unwrap().data);
    let writer = spawn("writer_churn", dir.path());
    wait_for(&dir.path().join("ready"), "the writer");
    let progress = || {
        std::fs::read_to_string(dir.path().join("progress"))
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let t = Instant::now();
    let (mut fresh_views, mut vanished) = (0u64, 0u64);
    // Run until the writer has compacted and checkpointed several times.
    while t.elapsed() < Duration::from_secs(2) || progress() < 12 {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the writer made no progress"
        );
        // The held view still shows the array as it was.
        assert_eq!(v0.rows(), N);
        assert_eq!(u64s(&v0.to_array().unwrap().data), original);
        assert_eq!(u64s(v0.contiguous().unwrap()), original);
        for i in [0i64, 5, 1, -1, 499] {
            let want = VIEW_VAL + i.rem_euclid(N as i64) as u64;
            assert_eq!(u64s(v0.row(i).unwrap()), vec![want; W]);
        }
        let g = u64s(&v0.gather(&[999, 0, 0, -2]).unwrap().data);
        assert_eq!(g[..W], [VIEW_VAL + 999; W]);
        // The started stream goes on with the old contents.
        if let Some(b) = batches.next() {
            streamed.extend(u64s(&b.unwrap().data));
        }
        // Fresh snapshots are internally consistent: no torn rows.
        r.refresh().unwrap();
        match r.view("v") {
            Ok(v) => {
                let d = u64s(&v.to_array().unwrap().data);
                assert_eq!(d.len() as u64, v.rows() * W as u64);
                for row in d.chunks_exact(W) {
                    assert!(row.iter().all(|&x| x == row[0]), "torn row {row:?}");
                }
                fresh_views += 1;
            }
            // The writer may compact and checkpoint away the file of the
            // state just loaded before it is opened; a refresh fixes it.
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                vanished += 1;
            }
            Err(e) => panic!("fresh view: {e}"),
        }
    }
    touch(dir.path().join("stop"));
    writer.finish();
    for b in batches {
        streamed.extend(u64s(&b.unwrap().data));
    }
    assert_eq!(streamed, original, "the stream changed under the writer");
    // Every file the view was made from is gone; it still reads.
    assert_eq!(u64s(&v0.to_array().unwrap().data), original);
    assert!(fresh_views > 0);
    let s = Store::open(&path, OpenOptions::default()).unwrap();
    assert_verify_clean(&s, "after the writer exited");
    eprintln!("{fresh_views} fresh views, {vanished} raced with a checkpoint");
}

//! The number of arrays is limited by the disk alone: a handle keeps a
//! bounded number of data files open (`OpenOptions::max_open_files`), so a
//! store of thousands of arrays works under an open-file limit far below
//! their number. The test binary runs itself as a child under
//! `ulimit -n 256` (`NUMVAULT_MANY_ARRAYS` arrays, default 2,000; 20,000 in
//! the long mode) and does everything a user would: saves in commits of
//! 100 arrays, appends, reads, verify, compaction, reopen, a reader.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::assert_verify_clean;
use numvault::{ArrayRef, Batch, OpenOptions, Store, Sync};

const DIR: &str = "NUMVAULT_MANY_DIR";

fn count() -> u64 {
    std::env::var("NUMVAULT_MANY_ARRAYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

fn name(i: u64) -> String {
    format!("layer{:03}/w{i}", i % 97)
}

fn rows_of(i: u64, n: u64) -> Vec<u32> {
    (0..n * 4)
        .map(|k| (i as u32).wrapping_mul(31) ^ k as u32)
        .collect()
}

#[test]
fn thousands_of_arrays_under_a_low_open_file_limit() {
    let d = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let cmd = format!(
        "ulimit -n 256 && exec '{}' --exact many_child --nocapture --ignored --test-threads=1",
        exe.display()
    );
    let out = Command::new("sh")
        .args(["-c", &cmd])
        .env(DIR, d.path())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(
        text.contains(&format!("{} arrays under ulimit -n 256: ok", count())),
        "child did not run:\n{text}"
    );
}

#[test]
#[ignore]
fn many_child() {
    let Ok(dir) = std::env::var(DIR) else {
        return;
    };
    let dir = PathBuf::from(dir).join("store");
    let n = count();
    let opts = OpenOptions::default().sync(Sync::Never);
    let s = Store::open(&dir, opts.clone()).unwrap();
    save_all(&s, n);
    // Appends and replaces to every array, one commit each.
    for i in 0..n {
        s.append(&name(i), ArrayRef::of(&[1, 4], &rows_of(i + 1, 1)))
            .unwrap();
        if i % 3 == 0 {
            s.replace(&name(i), &[0], ArrayRef::of(&[1, 4], &rows_of(i + 2, 1)))
                .unwrap();
        }
    }
    check_all(&s, n);
    assert_verify_clean(&s, "writer");
    for i in (0..n).step_by(3) {
        s.compact(&name(i)).unwrap();
    }
    s.checkpoint().unwrap();
    // A reader alongside the writer.
    let r = Store::open(&dir, OpenOptions::read_only()).unwrap();
    check_all(&r, n);
    assert_verify_clean(&r, "reader");
    drop(r);
    s.close().unwrap();
    let s = Store::open(&dir, opts).unwrap();
    assert_eq!(s.len() as u64, n);
    check_all(&s, n);
    assert_verify_clean(&s, "reopened");
    s.close().unwrap();
    println!("{n} arrays under ulimit -n 256: ok");
}

fn save_all(s: &Store, n: u64) {
    let data: Vec<Vec<u32>> = (0..n).map(|i| rows_of(i, 3)).collect();
    let names: Vec<String> = (0..n).map(name).collect();
    for start in (0..n).step_by(100) {
        let mut b = Batch::new();
        for i in start..(start + 100).min(n) {
            b.save(&names[i as usize], ArrayRef::of(&[3, 4], &data[i as usize]));
        }
        s.commit(&b).unwrap();
    }
}

fn check_all(s: &Store, n: u64) {
    for i in 0..n {
        let mut want = rows_of(i, 3);
        want.extend(rows_of(i + 1, 1));
        if i % 3 == 0 {
            want[..4].copy_from_slice(&rows_of(i + 2, 1));
        }
        let got = s.read(&name(i)).unwrap().to_vec::<u32>().unwrap();
        assert_eq!(got, want, "array {i}");
        assert_eq!(
            s.view(&name(i))
                .unwrap()
                .gather(&[-1])
                .unwrap()
                .to_vec::<u32>()
                .unwrap(),
            rows_of(i + 1, 1)
        );
    }
}

//! A version's lease held by another process (FORMAT.md §15.7). In a test
//! binary of its own: spawning a process from a multi-threaded test binary
//! lets the child hold copies of every descriptor (the other tests' `LOCK`
//! locks among them) until it execs, which makes their reopens race.

mod common;

use common::arr;
use numvault::{DType, Error, OpenOptions, Store};

fn open(dir: &std::path::Path) -> Store {
    Store::open(dir, OpenOptions::default()).unwrap()
}

#[test]
fn a_reader_in_another_process_keeps_its_version() {
    // The lease is a file lock: a reader process holds it until it exits.
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    s.save("a", arr(DType::U8, &[64], 1).r()).unwrap();
    let v = s.snapshot(None).unwrap();
    s.close().unwrap();
    std::fs::create_dir_all(dir.path().join("leases")).unwrap();
    let script = format!(
        "import fcntl,os,sys,time; f=open(os.path.join(sys.argv[1],'leases','{v:016x}.lease'),'a'); \
         fcntl.flock(f, fcntl.LOCK_SH); print('held', flush=True); time.sleep(30)"
    );
    let child = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn();
    let Ok(mut c) = child else {
        eprintln!("no python3 to play the reader process; skipped");
        return;
    };
    let mut line = String::new();
    let mut out = std::io::BufReader::new(c.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line.trim(), "held");
    let s = open(dir.path());
    assert!(matches!(
        s.delete_snapshot(v),
        Err(Error::VersionInUse { .. })
    ));
    c.kill().unwrap();
    c.wait().unwrap();
    // Killed: its lock went with it.
    s.delete_snapshot(v).unwrap();
}

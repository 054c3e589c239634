//! Every kind of bad input: the error variant and its fields, a message that
//! names the array (and the index, shape, dtype or file), and a store left
//! exactly as it was (contents, commit sequence number, data files).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use numvault::{ArrayRef, Batch, DType, Error, OpenOptions, Store};

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    store: Store,
}

/// A store holding a 2-D, a 1-D and a 3-D array.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let store = Store::open(&path, OpenOptions::default()).unwrap();
    store.save("m/a", arr(DType::F32, &[6, 3], 1).r()).unwrap();
    store.save("v", arr(DType::I64, &[5], 2).r()).unwrap();
    store.save("t", arr(DType::U8, &[4, 2, 2], 3).r()).unwrap();
    Fixture {
        _dir: dir,
        path,
        store,
    }
}

/// Everything observable about a store.
#[derive(Debug, PartialEq)]
struct State {
    snap: Snap,
    seq: u64,
    files: Vec<PathBuf>,
}

fn state(f: &Fixture) -> State {
    State {
        snap: snapshot(&f.store).unwrap(),
        seq: f.store.last_seq(),
        files: std_data_files(&f.path),
    }
}

/// Run `op`, which must fail with an error matching `pred` whose message
/// contains every string of `words`, and leave the store unchanged.
#[track_caller]
fn bad<T: std::fmt::Debug>(
    f: &Fixture,
    op: impl FnOnce(&Store) -> numvault::Result<T>,
    pred: impl FnOnce(&Error) -> bool,
    words: &[&str],
) -> Error {
    let before = state(f);
    let e = match op(&f.store) {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e,
    };
    assert!(pred(&e), "wrong error: {e:?}");
    let msg = e.to_string();
    for w in words {
        assert!(msg.contains(w), "message {msg:?} does not contain {w:?}");
    }
    assert_eq!(state(f), before, "the store changed after: {msg}");
    assert_verify_clean(&f.store, &msg);
    e
}

fn f32s(n: usize) -> Vec<f32> {
    (0..n).map(|i| i as f32).collect()
}

#[test]
fn index_out_of_range_positive_and_negative() {
    let f = fixture();
    let row = f32s(3);
    let oor = |want: i64| {
        move |e: &Error| {
            matches!(e, Error::IndexOutOfRange { array, index, rows }
                if array == "m/a" && *index == want && *rows == 6)
        }
    };
    for i in [6i64, 7, i64::MAX, -7, -100, i64::MIN] {
        let w = i.to_string();
        bad(
            &f,
            |s| s.replace("m/a", &[i], ArrayRef::of(&[1, 3], &row)),
            oor(i),
            &["m/a", &w, "6 rows"],
        );
        bad(&f, |s| s.delete_rows("m/a", &[i]), oor(i), &["m/a", &w]);
        bad(&f, |s| s.read_indices("m/a", &[i]), oor(i), &["m/a", &w]);
        bad(
            &f,
            |s| s.view("m/a").and_then(|v| v.row(i).map(<[u8]>::to_vec)),
            oor(i),
            &["m/a", &w],
        );
    }
    // One bad index among good ones: nothing is applied.
    let two = f32s(6);
    bad(
        &f,
        |s| s.replace("m/a", &[0, 6], ArrayRef::of(&[2, 3], &two)),
        oor(6),
        &["m/a", "6"],
    );
    bad(
        &f,
        |s| s.delete_rows("m/a", &[0, 1, -7, 2]),
        oor(-7),
        &["m/a", "-7"],
    );
    bad(&f, |s| s.read_indices("m/a", &[5, 0, 6]), oor(6), &["m/a"]);
    // Row ranges of a view.
    let mut out = vec![0u8; 12];
    bad(
        &f,
        |s| s.view("m/a")?.read_range_into(6, 7, &mut out),
        |e| matches!(e, Error::IndexOutOfRange { array, .. } if array == "m/a"),
        &["m/a"],
    );
    // An empty array has no valid index at all.
    f.store
        .save("empty", ArrayRef::of::<f32>(&[0, 3], &[]))
        .unwrap();
    bad(
        &f,
        |s| s.delete_rows("empty", &[0]),
        |e| matches!(e, Error::IndexOutOfRange { array, index: 0, rows: 0 } if array == "empty"),
        &["empty"],
    );
    bad(
        &f,
        |s| s.view("empty")?.row(-1).map(<[u8]>::to_vec),
        |e| matches!(e, Error::IndexOutOfRange { rows: 0, .. }),
        &["empty"],
    );
}

#[test]
fn duplicate_indices_in_replace() {
    let f = fixture();
    let rows = f32s(6);
    bad(
        &f,
        |s| s.replace("m/a", &[1, 1], ArrayRef::of(&[2, 3], &rows)),
        |e| matches!(e, Error::DuplicateIndex { array, index: 1 } if array == "m/a"),
        &["m/a", "1", "more than once"],
    );
    // The same row by a negative and a positive index.
    bad(
        &f,
        |s| s.replace("m/a", &[-5, 1], ArrayRef::of(&[2, 3], &rows)),
        |e| matches!(e, Error::DuplicateIndex { array, index } if array == "m/a" && (*index == 1 || *index == -5)),
        &["m/a"],
    );
    // Repeated indices are fine for delete (the row goes once).
    f.store.delete_rows("m/a", &[2, 2, -4]).unwrap();
    assert_eq!(f.store.shape("m/a").unwrap(), vec![5, 3]);
}

#[test]
fn shape_mismatches() {
    let f = fixture();
    let shape_err = |expected: &'static str, got: &'static str| {
        move |e: &Error| {
            matches!(e, Error::ShapeMismatch { array, expected: x, got: g }
                if array == "m/a" && x == expected && g == got)
        }
    };
    // Wrong trailing dimensions.
    let d8 = f32s(8);
    bad(
        &f,
        |s| s.append("m/a", ArrayRef::of(&[2, 4], &d8)),
        shape_err("(n, 3)", "(2, 4)"),
        &["m/a", "(n, 3)", "(2, 4)"],
    );
    // Wrong number of dimensions.
    let d6 = f32s(6);
    bad(
        &f,
        |s| s.append("m/a", ArrayRef::of(&[6], &d6)),
        shape_err("(n, 3)", "(6)"),
        &["m/a", "(6)"],
    );
    bad(
        &f,
        |s| s.append("m/a", ArrayRef::of(&[2, 3, 1], &d6)),
        shape_err("(n, 3)", "(2, 3, 1)"),
        &["m/a", "(2, 3, 1)"],
    );
    bad(
        &f,
        |s| s.replace("m/a", &[0, 1], ArrayRef::of(&[2, 1, 3], &d6)),
        |e| matches!(e, Error::ShapeMismatch { .. }),
        &["m/a", "(2, 1, 3)"],
    );
    // Rows not matching the number of indices.
    let d9 = f32s(9);
    bad(
        &f,
        |s| s.replace("m/a", &[0, 1], ArrayRef::of(&[3, 3], &d9)),
        shape_err("(2, 3)", "(3, 3)"),
        &["m/a", "(2, 3)", "(3, 3)"],
    );
    bad(
        &f,
        |s| s.replace("m/a", &[0, 1, 2], ArrayRef::of(&[2, 3], &d6)),
        shape_err("(3, 3)", "(2, 3)"),
        &["m/a"],
    );
    // 1-D and 3-D arrays.
    let i2 = [1i64, 2];
    bad(
        &f,
        |s| s.append("v", ArrayRef::of(&[2, 1], &i2)),
        |e| matches!(e, Error::ShapeMismatch { array, expected, .. } if array == "v" && expected == "(n,)"),
        &["v", "(n,)", "(2, 1)"],
    );
    let u = [0u8; 8];
    bad(
        &f,
        |s| s.append("t", ArrayRef::of(&[2, 4], &u)),
        |e| matches!(e, Error::ShapeMismatch { array, expected, .. } if array == "t" && expected == "(n, 2, 2)"),
        &["t", "(n, 2, 2)", "(2, 4)"],
    );
    bad(
        &f,
        |s| s.replace("t", &[0], ArrayRef::of(&[1, 2, 1, 2], &u[..4])),
        |e| matches!(e, Error::ShapeMismatch { array, .. } if array == "t"),
        &["t"],
    );
}

#[test]
fn dtype_mismatch() {
    let f = fixture();
    let d = [0f64; 3];
    bad(
        &f,
        |s| s.append("m/a", ArrayRef::of(&[1, 3], &d)),
        |e| matches!(e, Error::DTypeMismatch { array, stored: DType::F32, got: DType::F64 } if array == "m/a"),
        &["m/a", "float32", "float64"],
    );
    let i = [0i32; 3];
    bad(
        &f,
        |s| s.replace("m/a", &[0], ArrayRef::of(&[1, 3], &i)),
        |e| {
            matches!(
                e,
                Error::DTypeMismatch {
                    stored: DType::F32,
                    got: DType::I32,
                    ..
                }
            )
        },
        &["m/a", "int32"],
    );
    // Same item size, other type.
    let u = [0u64; 2];
    bad(
        &f,
        |s| s.append("v", ArrayRef::of(&[2], &u)),
        |e| matches!(e, Error::DTypeMismatch { array, stored: DType::I64, got: DType::U64 } if array == "v"),
        &["v", "int64", "uint64"],
    );
}

#[test]
fn unknown_array_for_every_operation() {
    let f = fixture();
    let nf = |e: &Error| matches!(e, Error::NotFound(n) if n == "nope/x");
    let w = &["nope/x", "does not exist"];
    let row = f32s(3);
    let r = ArrayRef::of(&[1, 3], &row);
    bad(&f, |s| s.append("nope/x", r), nf, w);
    bad(&f, |s| s.replace("nope/x", &[0], r), nf, w);
    bad(&f, |s| s.delete_rows("nope/x", &[0]), nf, w);
    bad(&f, |s| s.delete_rows("nope/x", &[]), nf, w);
    bad(&f, |s| s.compact("nope/x"), nf, w);
    bad(&f, |s| s.drop_array("nope/x"), nf, w);
    bad(&f, |s| s.rename("nope/x", "fresh"), nf, w);
    bad(&f, |s| s.read("nope/x"), nf, w);
    bad(&f, |s| s.read_into("nope/x", &mut []), nf, w);
    bad(&f, |s| s.read_rows("nope/x", 0, 1), nf, w);
    bad(&f, |s| s.read_indices("nope/x", &[0]), nf, w);
    bad(&f, |s| s.view("nope/x"), nf, w);
    bad(&f, |s| s.batches("nope/x", 1).map(|_| ()), nf, w);
    bad(&f, |s| s.shape("nope/x"), nf, w);
    bad(&f, |s| s.dtype("nope/x"), nf, w);
    bad(&f, |s| s.info("nope/x"), nf, w);
    bad(&f, |s| s.mtime_ns("nope/x"), nf, w);
    bad(&f, |s| s.reader("nope/x").map(|_| ()), nf, w);
    bad(&f, |s| s.writable("nope/x").map(|_| ()), nf, w);
    assert!(!f.store.has("nope/x"));
    // In a batch after valid ops: nothing of the batch is applied, and the
    // file the batch's save created is removed.
    let new = arr(DType::U8, &[3], 9);
    bad(
        &f,
        |s| {
            let mut b = Batch::new();
            b.save("fresh", new.r())
                .append("v", ArrayRef::of(&[1], &[7i64]))
                .append("nope/x", r);
            s.commit(&b)
        },
        nf,
        w,
    );
    // A prefix of a name, or a group, is not an array.
    bad(
        &f,
        |s| s.read("m"),
        |e| matches!(e, Error::NotFound(n) if n == "m"),
        &["'m'"],
    );
}

fn invalid_names() -> Vec<String> {
    vec![
        String::new(),
        "/a".into(),
        "a/".into(),
        "a//b".into(),
        ".".into(),
        "..".into(),
        "a/../b".into(),
        "a/./b".into(),
        "a\0b".into(),
        "a\nb".into(),
        "a\tb".into(),
        "n".repeat(256),
        "é".repeat(128), // 256 bytes
    ]
}

#[test]
fn invalid_names_on_save_and_rename() {
    let f = fixture();
    let a = arr(DType::U8, &[2], 5);
    for name in invalid_names() {
        let quoted = format!("{name:?}");
        let pred = |e: &Error| matches!(e, Error::InvalidName { name: n, .. } if *n == name);
        bad(&f, |s| s.save(&name, a.r()), pred, &[&quoted]);
        bad(&f, |s| s.rename("v", &name), pred, &[&quoted]);
        bad(
            &f,
            |s| {
                let mut b = Batch::new();
                b.drop_array("t").save(&name, a.r());
                s.commit(&b)
            },
            pred,
            &[&quoted],
        );
    }
    // The longest valid name works.
    let longest = "n".repeat(255);
    f.store.save(&longest, a.r()).unwrap();
    f.store.rename(&longest, "short").unwrap();
}

#[test]
fn rename_onto_an_existing_name() {
    let f = fixture();
    bad(
        &f,
        |s| s.rename("m/a", "v"),
        |e| matches!(e, Error::AlreadyExists(n) if n == "v"),
        &["'v'", "already exists"],
    );
    bad(
        &f,
        |s| {
            let mut b = Batch::new();
            b.rename("t", "t2").rename("m/a", "t2");
            s.commit(&b)
        },
        |e| matches!(e, Error::AlreadyExists(n) if n == "t2"),
        &["t2"],
    );
    // Renaming onto itself is a no-op, not an error.
    f.store.rename("v", "v").unwrap();
}

#[test]
fn zero_d_arrays_and_data_length() {
    let f = fixture();
    let four = [0u8; 4];
    let ia = |e: &Error| matches!(e, Error::InvalidArgument(_));
    bad(
        &f,
        |s| s.save("z", ArrayRef::new(DType::F32, &[], &four)),
        ia,
        &["'z'", "0-d"],
    );
    bad(
        &f,
        |s| s.append("v", ArrayRef::new(DType::I64, &[], &[0u8; 8])),
        |e| matches!(e, Error::ShapeMismatch { array, .. } if array == "v"),
        &["v"],
    );
    // Data length not matching the shape: short, long, and for append/replace.
    let twenty = [0u8; 20];
    bad(
        &f,
        |s| s.save("z", ArrayRef::new(DType::F32, &[2, 3], &twenty)),
        ia,
        &["'z'", "24", "20", "float32"],
    );
    let long = [0u8; 28];
    bad(
        &f,
        |s| s.save("z", ArrayRef::new(DType::F32, &[2, 3], &long)),
        ia,
        &["'z'", "24", "28"],
    );
    bad(
        &f,
        |s| s.append("m/a", ArrayRef::new(DType::F32, &[1, 3], &four)),
        ia,
        &["m/a", "12"],
    );
    bad(
        &f,
        |s| s.replace("m/a", &[0], ArrayRef::new(DType::F32, &[1, 3], &twenty)),
        ia,
        &["m/a"],
    );
    // Too many dimensions, and sizes that overflow: limits, not bad
    // arguments.
    let limit = |e: &Error| matches!(e, Error::LimitExceeded { .. });
    let dims = vec![1u64; 40];
    bad(
        &f,
        |s| s.save("z", ArrayRef::new(DType::U8, &dims, &[0])),
        limit,
        &["'z'", "40 dimensions", "32"],
    );
    bad(
        &f,
        |s| s.save("z", ArrayRef::new(DType::F64, &[u64::MAX, u64::MAX], &[])),
        limit,
        &["'z'"],
    );
    // Wrong output buffer sizes.
    let mut small = vec![0u8; 8];
    bad(&f, |s| s.read_into("m/a", &mut small), ia, &["m/a"]);
    bad(
        &f,
        |s| s.view("m/a")?.gather_into(&[0, 1], &mut small),
        ia,
        &["m/a"],
    );
}

#[test]
fn batches_of_zero_rows() {
    let f = fixture();
    bad(
        &f,
        |s| s.batches("m/a", 0).map(|_| ()),
        |e| matches!(e, Error::InvalidArgument(_)),
        &["m/a", "batch"],
    );
}

#[test]
fn mutations_on_a_read_only_handle() {
    let f = fixture();
    f.store.flush().unwrap();
    let ro = Store::open(&f.path, OpenOptions::read_only()).unwrap();
    assert!(ro.is_read_only());
    let before = snapshot(&ro).unwrap();
    let row = f32s(3);
    let r = ArrayRef::of(&[1, 3], &row);
    let results: Vec<(&str, numvault::Result<()>)> = vec![
        ("save", ro.save("new", r)),
        ("append", ro.append("m/a", r)),
        ("replace", ro.replace("m/a", &[0], r)),
        ("delete_rows", ro.delete_rows("m/a", &[0])),
        ("compact", ro.compact("m/a").map(|_| ())),
        ("drop", ro.drop_array("v")),
        ("rename", ro.rename("v", "w")),
        ("checkpoint", ro.checkpoint()),
        ("writable", ro.writable("m/a").map(|_| ())),
        ("commit", {
            let mut b = Batch::new();
            b.drop_array("v");
            ro.commit(&b)
        }),
    ];
    for (op, res) in results {
        match res {
            Err(Error::ReadOnly { path }) => assert_eq!(path, f.path, "{op}"),
            other => panic!("{op} on a read-only handle: {other:?}"),
        }
    }
    assert_eq!(snapshot(&ro).unwrap(), before);
    assert_eq!(snapshot(&f.store).unwrap(), before);
    // A read-only open of something that is not a store.
    let missing = f.path.with_file_name("missing");
    assert!(matches!(
        Store::open(&missing, OpenOptions::read_only()),
        Err(Error::NoSuchStore { path }) if path == missing
    ));
}

#[test]
fn second_writer_is_locked_out_and_lock_timeout_waits() {
    let f = fixture();
    let t = Instant::now();
    match Store::open(&f.path, OpenOptions::default()) {
        Err(Error::Locked { path, .. }) => assert_eq!(path, f.path),
        other => panic!("second writer: {:?}", other.map(|_| ())),
    }
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "Locked must come at once"
    );
    // A short timeout still fails, after waiting.
    let t = Instant::now();
    let mut o = OpenOptions {
        lock_timeout: Some(Duration::from_millis(200)),
        ..OpenOptions::default()
    };
    assert!(matches!(
        Store::open(&f.path, o.clone()),
        Err(Error::Locked { .. })
    ));
    assert!(t.elapsed() >= Duration::from_millis(200));
    // A long timeout waits until the first writer closes.
    let Fixture { _dir, path, store } = f;
    let expected = snapshot(&store).unwrap();
    let closer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        store.close().unwrap();
    });
    let t = Instant::now();
    o.lock_timeout = Some(Duration::from_secs(30));
    let s = Store::open(&path, o).unwrap();
    assert!(t.elapsed() >= Duration::from_millis(300), "did not wait");
    closer.join().unwrap();
    assert_eq!(snapshot(&s).unwrap(), expected);
    // Readers are not blocked by the writer.
    let r = Store::open(&path, OpenOptions::read_only()).unwrap();
    assert_eq!(snapshot(&r).unwrap(), expected);
}

fn patch(path: &Path, offset: usize, bytes: &[u8]) {
    let mut b = std::fs::read(path).unwrap();
    b[offset..offset + bytes.len()].copy_from_slice(bytes);
    std::fs::write(path, b).unwrap();
}

fn log_path(dir: &Path) -> PathBuf {
    let logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("wal-"))
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    logs[0].clone()
}

#[test]
fn unknown_format_version() {
    let f = fixture();
    let Fixture { _dir, path, store } = f;
    let expected = snapshot(&store).unwrap();
    store.close().unwrap();
    let check = |file: &Path, found: u32| {
        for opts in [OpenOptions::default(), OpenOptions::read_only()] {
            match Store::open(&path, opts) {
                Err(e @ Error::UnsupportedVersion { .. }) => {
                    let msg = e.to_string();
                    let Error::UnsupportedVersion {
                        path: p,
                        found: fd,
                        supported,
                    } = e
                    else {
                        unreachable!()
                    };
                    assert_eq!(p, file);
                    assert_eq!(fd, found);
                    assert_eq!(supported, numvault::FORMAT_VERSION);
                    assert!(msg.contains(&file.display().to_string()), "{msg}");
                    assert!(msg.contains(&found.to_string()), "{msg}");
                }
                other => panic!("{}: {:?}", file.display(), other.map(|_| ())),
            }
        }
    };
    // MANIFEST: magic (8 bytes), then the version.
    let manifest = path.join("MANIFEST");
    let orig = std::fs::read(&manifest).unwrap();
    // (Version 3 is the first this engine does not know.)
    patch(&manifest, 8, &3u32.to_le_bytes());
    check(&manifest, 3);
    std::fs::write(&manifest, &orig).unwrap();
    // The log header: magic (8 bytes), then the version.
    let log = log_path(&path);
    let orig_log = std::fs::read(&log).unwrap();
    patch(&log, 8, &99u32.to_le_bytes());
    check(&log, 99);
    // A known version that is not the MANIFEST's: a log from another store.
    patch(&log, 8, &1u32.to_le_bytes());
    for opts in [OpenOptions::default(), OpenOptions::read_only()] {
        match Store::open(&path, opts) {
            Err(Error::Corrupt { path: p, detail }) => {
                assert_eq!(p, log);
                assert!(detail.contains("format version"), "{detail}");
            }
            other => panic!("log of version 1: {:?}", other.map(|_| ())),
        }
    }
    std::fs::write(&log, &orig_log).unwrap();
    // Restored, the store opens as before.
    let s = Store::open(&path, OpenOptions::default()).unwrap();
    assert_eq!(snapshot(&s).unwrap(), expected);
    assert_verify_clean(&s, "after restoring");
}

#[test]
fn opening_what_is_not_a_store() {
    let dir = tempfile::tempdir().unwrap();
    // A missing directory without `create`.
    let missing = dir.path().join("missing");
    let o = OpenOptions {
        create: false,
        ..OpenOptions::default()
    };
    assert!(matches!(
        Store::open(&missing, o),
        Err(Error::NoSuchStore { path }) if path == missing
    ));
    assert!(!missing.exists());
    // A directory holding someone else's files.
    let foreign = dir.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), b"hello").unwrap();
    assert!(matches!(
        Store::open(&foreign, OpenOptions::default()),
        Err(Error::NotAStore { path }) if path == foreign
    ));
    assert_eq!(std::fs::read(foreign.join("notes.txt")).unwrap(), b"hello");
}

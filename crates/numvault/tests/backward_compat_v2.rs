//! Backward compatibility of format version 2 (versions, FORMAT.md §15):
//! stores written by the first format-2 engine keep opening, reading (the
//! current state and every version) and taking writes.
//!
//! `tests/fixtures/v2/<scenario>/` are store directories written once by
//! `write_v2_fixtures` (`#[ignore]`d; it writes nothing unless
//! `NUMVAULT_WRITE_V2_FIXTURES=1` and refuses if the directory exists):
//!
//! ```text
//! NUMVAULT_WRITE_V2_FIXTURES=1 cargo test -p numvault --release \
//!     --test backward_compat_v2 -- --ignored write_v2_fixtures
//! ```
//!
//! `<scenario>.expected.json` holds, for the current state and for each
//! version (id and tag), every array's name, dtype, shape and the BLAKE3 of
//! its logical bytes. They are checked in and must never be regenerated.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{arr, assert_verify_clean, copy_store_dir};
use numvault::{DType, OpenOptions, Store, Sync};
use serde_json::{json, Value};

const SCENARIOS: [&str; 2] = ["versions_checkpointed", "versions_in_log"];

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v2")
}

/// name -> [dtype, shape, blake3 of the bytes].
fn table(s: &Store) -> Value {
    let mut out = BTreeMap::new();
    for n in s.list("") {
        let a = s.read(&n).unwrap();
        out.insert(
            n,
            json!([
                a.dtype.name(),
                a.shape,
                blake3::hash(&a.data).to_hex().to_string()
            ]),
        );
    }
    json!(out)
}

/// The current state's table and every version's (id, tag, table).
fn describe(s: &Store) -> Value {
    let versions: Vec<Value> = s
        .versions(None)
        .unwrap()
        .into_iter()
        .map(|v| json!({"id": v.id, "tag": v.tag, "arrays": table(&s.at(v.id).unwrap())}))
        .collect();
    json!({"current": table(s), "versions": versions})
}

/// The scenarios, written into `root`.
fn write_scenarios(root: &Path) {
    // Versions folded into version files; a deleted one; a restored array
    // sharing its file with a version (its next write relocates); a save
    // that became a replace of the changed rows.
    let dir = root.join("versions_checkpointed");
    let s = Store::open(&dir, OpenOptions::default()).unwrap();
    s.save("w/a", arr(DType::F32, &[300, 4], 1).r()).unwrap();
    s.save("w/b", arr(DType::I64, &[50], 2).r()).unwrap();
    s.save("labels", arr(DType::U8, &[1000], 3).r()).unwrap();
    s.snapshot(Some("epoch0")).unwrap();
    s.append("w/a", arr(DType::F32, &[10, 4], 4).r()).unwrap();
    s.replace("labels", &[0, 500, 999], arr(DType::U8, &[3], 5).r())
        .unwrap();
    let gone = s.snapshot(None).unwrap();
    s.delete_rows("w/b", &[1, 2]).unwrap();
    let mut l = s.read("labels").unwrap();
    l.data[10..20].fill(9);
    s.save(
        "labels",
        numvault::ArrayRef::new(l.dtype, &l.shape, &l.data),
    )
    .unwrap();
    s.snapshot(None).unwrap();
    s.delete_snapshot(gone).unwrap();
    s.restore("epoch0", Some(&["w/a"])).unwrap();
    s.rename("w/b", "w/b2").unwrap();
    s.checkpoint().unwrap();
    s.close().unwrap();
    // Versions still in the live log (no version files), taken under
    // `always`; the store closed without a checkpoint.
    let dir = root.join("versions_in_log");
    let s = Store::open(&dir, OpenOptions::default().sync(Sync::Always)).unwrap();
    s.save("x", arr(DType::F64, &[64, 2], 6).r()).unwrap();
    s.snapshot(Some("before")).unwrap();
    s.save("x", arr(DType::F64, &[8, 2], 7).r()).unwrap();
    s.save("y", arr(DType::I16, &[5, 3], 8).r()).unwrap();
    s.snapshot(None).unwrap();
    s.drop_array("y").unwrap();
    s.close().unwrap();
}

#[test]
#[ignore = "writes the version-2 fixtures on request (NUMVAULT_WRITE_V2_FIXTURES=1)"]
fn write_v2_fixtures() {
    if std::env::var("NUMVAULT_WRITE_V2_FIXTURES").as_deref() != Ok("1") {
        eprintln!("write_v2_fixtures: NUMVAULT_WRITE_V2_FIXTURES=1 is not set; nothing written");
        return;
    }
    assert_eq!(
        numvault::FORMAT_VERSION,
        2,
        "these are the version-2 fixtures"
    );
    let root = fixtures_dir();
    assert!(!root.exists(), "refusing to overwrite {}", root.display());
    std::fs::create_dir_all(&root).unwrap();
    write_scenarios(&root);
    for sc in SCENARIOS {
        let s = Store::open(root.join(sc), OpenOptions::read_only()).unwrap();
        let d = describe(&s);
        drop(s);
        let _ = std::fs::remove_dir_all(root.join(sc).join("leases"));
        std::fs::write(
            root.join(format!("{sc}.expected.json")),
            serde_json::to_string_pretty(&d).unwrap(),
        )
        .unwrap();
    }
}

fn expected(sc: &str) -> Value {
    let p = fixtures_dir().join(format!("{sc}.expected.json"));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

/// A fresh copy of a fixture (opening may recover, and so rewrite, it).
fn copy_of(sc: &str) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let dst = d.path().join(sc);
    copy_store_dir(&fixtures_dir().join(sc), &dst);
    (d, dst)
}

#[test]
fn version_2_fixtures_open_read_and_take_writes() {
    for sc in SCENARIOS {
        let want = expected(sc);
        // Read-only, as found.
        let (_d, path) = copy_of(sc);
        let r = Store::open(&path, OpenOptions::read_only()).unwrap();
        assert_eq!(r.format_version(), 2, "{sc}");
        assert_eq!(describe(&r), want, "{sc}: read-only");
        drop(r);
        // As a writer (recovery), verified, then a write to every array
        // (restored arrays relocate), a new version, a reopen.
        let s = Store::open(&path, OpenOptions::default()).unwrap();
        assert_eq!(describe(&s), want, "{sc}: writer");
        assert_verify_clean(&s, sc);
        for n in s.list("") {
            let a = s.read(&n).unwrap();
            if a.shape[0] == 0 {
                continue;
            }
            let shape = [&[1][..], &a.shape[1..]].concat();
            let row = &a.data[..a.data.len() / a.shape[0] as usize];
            s.append(&n, numvault::ArrayRef::new(a.dtype, &shape, row))
                .unwrap();
        }
        let v = s.snapshot(Some("after")).unwrap();
        let now = table(&s);
        s.close().unwrap();
        let s = Store::open(&path, OpenOptions::default()).unwrap();
        assert_eq!(table(&s), now, "{sc}: after writes");
        assert_eq!(table(&s.at(v).unwrap()), now, "{sc}: the new version");
        let old: Vec<Value> = describe(&s)["versions"].as_array().unwrap().clone();
        assert_eq!(
            &old[..old.len() - 1],
            want["versions"].as_array().unwrap().as_slice(),
            "{sc}: old versions"
        );
        assert_verify_clean(&s, sc);
    }
}

//! Versions (FORMAT.md §15): snapshots keep their contents through every
//! kind of change, reopen and checkpoint; restore, delete, gc, diff; the
//! format-1 upgrade path; bad input.

mod common;

use common::{arr, assert_verify_clean, snapshot, Snap};
use numvault::{DType, DiffKind, Error, OpenOptions, Store, Sync, VersionRef};

fn open(dir: &std::path::Path) -> Store {
    Store::open(dir, OpenOptions::default()).unwrap()
}

fn at(s: &Store, v: u64) -> Snap {
    let h = s.at(v).unwrap();
    assert!(h.is_read_only());
    snapshot(&h).unwrap()
}

#[test]
fn a_snapshot_keeps_its_contents_through_every_change_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let a = arr(DType::F32, &[1000, 4], 1);
    let b = arr(DType::I64, &[50], 2);
    s.save("a", a.r()).unwrap();
    s.save("b", b.r()).unwrap();
    s.save("c", b.r()).unwrap();
    let before = snapshot(&s).unwrap();
    let v1 = s.snapshot(Some("first")).unwrap();
    assert_eq!(s.last_seq(), v1);
    // Every kind of change.
    s.append("a", arr(DType::F32, &[10, 4], 3).r()).unwrap();
    s.replace("a", &[0, 5, 999], arr(DType::F32, &[3, 4], 4).r())
        .unwrap();
    s.delete_rows("a", &[1, 2, 3]).unwrap();
    s.save("b", arr(DType::I64, &[7], 5).r()).unwrap();
    s.drop_array("c").unwrap();
    s.rename("b", "b2").unwrap();
    s.compact("a").unwrap();
    let now = snapshot(&s).unwrap();
    assert_eq!(at(&s, v1), before);
    let v2 = s.snapshot(None).unwrap();
    s.checkpoint().unwrap();
    assert_eq!(at(&s, v1), before);
    assert_eq!(at(&s, v2), now);
    assert_verify_clean(&s, "after checkpoint");
    s.close().unwrap();
    // Reopened as a writer and read-only, by id and tag.
    let s = open(dir.path());
    assert_eq!(at(&s, v1), before);
    assert_eq!(snapshot(&s.at("first").unwrap()).unwrap(), before);
    let vs = s.versions(None).unwrap();
    assert_eq!(vs.iter().map(|v| v.id).collect::<Vec<_>>(), vec![v1, v2]);
    assert_eq!(s.version_count(), 2);
    assert_eq!(vs[0].tag.as_deref(), Some("first"));
    assert_eq!(vs[0].arrays, vec!["a", "b", "c"]);
    s.close().unwrap();
    let r = Store::open(dir.path(), OpenOptions::read_only()).unwrap();
    assert_eq!(snapshot(&r.at(v1).unwrap()).unwrap(), before);
    assert_eq!(snapshot(&r).unwrap(), now);
    let o = Store::open(
        dir.path(),
        OpenOptions {
            version: Some(VersionRef::Tag("first".into())),
            ..OpenOptions::default()
        },
    )
    .unwrap();
    assert_eq!(snapshot(&o).unwrap(), before);
    assert_eq!(o.version(), Some(v1));
    assert!(matches!(o.save("x", b.r()), Err(Error::ReadOnly { .. })));
}

#[test]
fn versions_taken_in_the_log_survive_a_crash_without_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), OpenOptions::default().sync(Sync::Always)).unwrap();
    let a = arr(DType::U8, &[100, 3], 1);
    s.save("a", a.r()).unwrap();
    let v = s.snapshot(None).unwrap();
    s.append("a", arr(DType::U8, &[5, 3], 2).r()).unwrap();
    // What a process crash leaves: the files as they are, the log holding
    // the snapshot.
    let copy = tempfile::tempdir().unwrap();
    common::copy_store_dir(dir.path(), copy.path());
    drop(s);
    let s = open(copy.path());
    let mut want = Snap::new();
    want.insert("a".into(), a.clone());
    assert_eq!(at(&s, v), want);
    assert_verify_clean(&s, "reopened");
}

#[test]
fn restore_is_one_commit_without_copies_and_later_writes_relocate() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let a = arr(DType::F64, &[200, 2], 1);
    s.save("a", a.r()).unwrap();
    s.save("keep", a.r()).unwrap();
    let v = s.snapshot(None).unwrap();
    let before = snapshot(&s).unwrap();
    s.append("a", arr(DType::F64, &[20, 2], 2).r()).unwrap();
    s.replace("a", &[3], arr(DType::F64, &[1, 2], 3).r())
        .unwrap();
    s.save("new", a.r()).unwrap();
    s.drop_array("keep").unwrap();
    let file_before = s.info("a").unwrap().file;
    let seq = s.last_seq();
    s.restore(v, None).unwrap();
    assert_eq!(s.last_seq(), seq + 1, "one commit");
    assert_eq!(snapshot(&s).unwrap(), before);
    assert_eq!(s.info("a").unwrap().file, file_before, "no copy");
    // Appending to the restored array must not touch the slots that the
    // pre-restore state wrote (the version and its file keep them).
    let extra = arr(DType::F64, &[3, 2], 9);
    s.append("a", extra.r()).unwrap();
    let mut want = before["a"].clone();
    want.shape[0] += 3;
    want.data.extend_from_slice(&extra.data);
    assert_eq!(s.read("a").unwrap().data, want.data);
    assert_eq!(at(&s, v), before);
    assert_verify_clean(&s, "after relocation");
    // Named restore; restoring what is already there is no commit.
    s.save("a", arr(DType::F64, &[1, 2], 5).r()).unwrap();
    s.restore(v, Some(&["a"])).unwrap();
    assert_eq!(s.read("a").unwrap().data, before["a"].data);
    let seq = s.last_seq();
    s.restore(v, Some(&["a"])).unwrap();
    assert_eq!(s.last_seq(), seq);
    assert!(matches!(
        s.restore(v, Some(&["new"])),
        Err(Error::NotInVersion { .. })
    ));
    s.close().unwrap();
    let s = open(dir.path());
    assert_eq!(s.read("a").unwrap().data, before["a"].data);
    assert_verify_clean(&s, "reopened");
}

#[test]
fn delete_and_gc_free_only_what_no_version_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let big = arr(DType::U8, &[1 << 20], 1);
    s.save("a", big.r()).unwrap();
    let v1 = s.snapshot(None).unwrap();
    s.save("a", arr(DType::U8, &[1 << 20], 2).r()).unwrap();
    let v2 = s.snapshot(None).unwrap();
    s.save("a", arr(DType::U8, &[16], 3).r()).unwrap();
    // v1 alone keeps the first file.
    let vs = s.versions(None).unwrap();
    assert_eq!(vs[0].own_bytes, 1 << 20);
    assert_eq!(s.gc().unwrap(), 0, "nothing is garbage yet");
    s.delete_snapshot(v1).unwrap();
    let freed = s.gc().unwrap();
    assert!(freed >= 1 << 20, "freed {freed}");
    assert_eq!(
        snapshot(&s.at(v2).unwrap()).unwrap()["a"].data,
        arr(DType::U8, &[1 << 20], 2).data
    );
    assert!(matches!(s.at(v1), Err(Error::NoSuchVersion { .. })));
    assert_verify_clean(&s, "after gc");
    let files = common::std_data_files(dir.path()).len();
    assert_eq!(files, 2, "v2's file and the current one");
    s.close().unwrap();
}

#[test]
fn diff_reports_rows_from_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    s.save("a", arr(DType::I32, &[100], 1).r()).unwrap();
    s.save("b", arr(DType::I32, &[10], 2).r()).unwrap();
    s.save("gone", arr(DType::I32, &[10], 2).r()).unwrap();
    let v = s.snapshot(None).unwrap();
    s.delete_rows("a", &[10, 11, 12, 50]).unwrap();
    s.append("a", arr(DType::I32, &[5], 3).r()).unwrap();
    s.replace("a", &[0, 1, 20], arr(DType::I32, &[3], 4).r())
        .unwrap();
    s.rename("b", "b2").unwrap();
    s.drop_array("gone").unwrap();
    s.save("new", arr(DType::I32, &[1], 5).r()).unwrap();
    let d = s.diff(v, None).unwrap();
    let by: std::collections::BTreeMap<_, _> = d.iter().map(|x| (x.name.as_str(), x)).collect();
    let a = by["a"];
    assert_eq!(a.kind, DiffKind::Modified);
    assert_eq!(a.deleted, vec![(10, 13), (50, 51)]);
    assert_eq!(a.appended, vec![(96, 101)]);
    // Row 20 of the new numbering was row 23 before: replaced.
    assert_eq!(a.replaced, vec![(0, 2), (20, 21)]);
    assert_eq!(by["b2"].kind, DiffKind::Renamed);
    assert_eq!(by["b2"].renamed_from.as_deref(), Some("b"));
    assert_eq!(by["gone"].kind, DiffKind::Dropped);
    assert_eq!(by["new"].kind, DiffKind::Added);
    assert_eq!(d.len(), 4);
    // Rows a restore brings back are rows the later version has anew.
    s.save("r", arr(DType::I32, &[2], 6).r()).unwrap();
    let v1 = s.snapshot(None).unwrap();
    s.delete_rows("r", &[0]).unwrap();
    let v2 = s.snapshot(None).unwrap();
    s.restore(v1, Some(&["r"])).unwrap();
    s.delete_rows("r", &[1]).unwrap();
    let d = s.diff(v2, None).unwrap();
    let r = d.iter().find(|x| x.name == "r").unwrap();
    assert_eq!(
        (r.deleted.clone(), r.appended.clone()),
        (vec![(0, 1)], vec![(0, 1)])
    );
}

#[test]
fn writable_sessions_and_compaction_leave_versions_alone() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let a = arr(DType::U8, &[4096, 2], 1);
    s.save("a", a.r()).unwrap();
    let v = s.snapshot(None).unwrap();
    let before = snapshot(&s).unwrap();
    {
        let mut w = s.writable("a").unwrap();
        w.bytes_mut().fill(7);
        // No version may pin bytes that change in place.
        assert!(matches!(s.snapshot(None), Err(Error::InUse { .. })));
        w.finish().unwrap();
    }
    assert!(s.read("a").unwrap().data.iter().all(|b| *b == 7));
    assert_eq!(at(&s, v), before);
    // Many replaces would trigger automatic compaction; a pinned array is
    // left alone (no copies of rows the version keeps anyway).
    let v2 = s.snapshot(None).unwrap();
    let f = s.info("a").unwrap().file;
    let idx: Vec<i64> = (0..4096).collect();
    s.replace("a", &idx, arr(DType::U8, &[4096, 2], 3).r())
        .unwrap();
    assert_eq!(s.info("a").unwrap().file, f);
    assert_eq!(at(&s, v), before);
    assert!(at(&s, v2)["a"].data.iter().all(|b| *b == 7));
    // An explicit compact proceeds, and says what it duplicated.
    let c = s.compact_report("a").unwrap();
    assert_eq!(c.reclaimed_bytes, 0);
    assert_eq!(c.duplicated_bytes, 4096 * 2);
    assert_eq!(at(&s, v2)["a"].data, vec![7; 4096 * 2]);
    assert_verify_clean(&s, "end");
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    s.save("a", arr(DType::U8, &[3], 1).r()).unwrap();
    let v = s.snapshot(Some("t")).unwrap();
    let seq = s.last_seq();
    assert!(matches!(
        s.snapshot(Some("t")),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        s.snapshot(Some("")),
        Err(Error::InvalidName { .. })
    ));
    assert!(matches!(
        s.snapshot(Some("a/../b")),
        Err(Error::InvalidName { .. })
    ));
    assert!(matches!(s.at(v + 100), Err(Error::NoSuchVersion { .. })));
    assert!(matches!(s.at("nope"), Err(Error::NoSuchVersion { .. })));
    assert!(matches!(
        s.restore(v + 100, None),
        Err(Error::NoSuchVersion { .. })
    ));
    assert!(matches!(
        s.delete_snapshot("nope"),
        Err(Error::NoSuchVersion { .. })
    ));
    assert!(matches!(
        s.diff(99u64, None),
        Err(Error::NoSuchVersion { .. })
    ));
    assert_eq!(s.last_seq(), seq);
    s.close().unwrap();
    let r = Store::open(dir.path(), OpenOptions::read_only()).unwrap();
    assert!(matches!(r.snapshot(None), Err(Error::ReadOnly { .. })));
    assert!(matches!(r.delete_snapshot(v), Err(Error::ReadOnly { .. })));
    assert!(matches!(r.restore(v, None), Err(Error::ReadOnly { .. })));
    let h = r.at("t").unwrap();
    assert!(matches!(h.snapshot(None), Err(Error::ReadOnly { .. })));
}

#[test]
fn a_format_1_store_needs_an_upgrade_which_is_atomic() {
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1/checkpointed");
    let dir = tempfile::tempdir().unwrap();
    common::copy_store_dir(&fixture, dir.path());
    let s = open(dir.path());
    assert_eq!(s.format_version(), 1);
    let before = snapshot(&s).unwrap();
    let name = before.keys().next().unwrap().clone();
    match s.snapshot(None) {
        Err(Error::NeedsUpgrade {
            found: 1,
            needed: 2,
            ..
        }) => {}
        other => panic!("expected NeedsUpgrade, got {other:?}"),
    }
    // Ordinary writes keep working, in format 1.
    let a = s.read(&name).unwrap();
    s.save("extra", numvault::ArrayRef::new(a.dtype, &a.shape, &a.data))
        .unwrap();
    s.checkpoint().unwrap();
    s.close().unwrap();
    let m = std::fs::read(dir.path().join("MANIFEST")).unwrap();
    assert_eq!(&m[8..12], &1u32.to_le_bytes());
    let s = Store::open(
        dir.path(),
        OpenOptions {
            upgrade: true,
            ..OpenOptions::default()
        },
    )
    .unwrap();
    assert_eq!(s.format_version(), 2);
    let v = s.snapshot(None).unwrap();
    s.close().unwrap();
    let m = std::fs::read(dir.path().join("MANIFEST")).unwrap();
    assert_eq!(&m[8..12], &2u32.to_le_bytes());
    let s = open(dir.path());
    assert!(!s.upgrade().unwrap(), "already format 2");
    let h = s.at(v).unwrap();
    assert_eq!(snapshot(&h).unwrap()[&name], before[&name]);
    assert_verify_clean(&s, "upgraded");
}

#[test]
fn a_reader_lease_keeps_its_version_and_a_dead_readers_lease_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let a = arr(DType::U8, &[1 << 16], 1);
    s.save("a", a.r()).unwrap();
    let v = s.snapshot(None).unwrap();
    s.save("a", arr(DType::U8, &[8], 2).r()).unwrap();
    // A reader in another handle (another process would be the same: the
    // lease is a file lock).
    let r = Store::open(dir.path(), OpenOptions::read_only()).unwrap();
    let h = r.at(v).unwrap();
    match s.delete_snapshot(v) {
        Err(Error::VersionInUse { version, .. }) => assert_eq!(version, v),
        other => panic!("expected VersionInUse, got {other:?}"),
    }
    // So is opening it by id, which takes the lease before loading.
    let h2 = Store::open(
        dir.path(),
        OpenOptions {
            version: Some(VersionRef::Id(v)),
            ..OpenOptions::read_only()
        },
    )
    .unwrap();
    drop(h);
    assert!(matches!(
        s.delete_snapshot(v),
        Err(Error::VersionInUse { .. })
    ));
    let h = h2;
    // gc meanwhile frees nothing the reader needs.
    s.gc().unwrap();
    assert_eq!(h.read("a").unwrap().data, a.data);
    drop(h);
    s.delete_snapshot(v).unwrap();
    assert!(s.gc().unwrap() >= 1 << 16);
    // A lease left by a reader that died (its lock went with it) holds
    // nothing; the deletion removes its file.
    let v2 = s.snapshot(None).unwrap();
    let leases = dir.path().join("leases");
    let stale = leases.join(format!("{v2:016x}.lease"));
    std::fs::write(&stale, b"").unwrap();
    s.delete_snapshot(v2).unwrap();
    assert!(!stale.exists(), "lease file removed with its version");
    assert_eq!(
        std::fs::read_dir(&leases).unwrap().count(),
        0,
        "no lease left"
    );
}

#[test]
fn retention_deletes_untagged_versions_at_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let opts = OpenOptions {
        keep_last: Some(2),
        ..OpenOptions::default()
    };
    let s = Store::open(dir.path(), opts).unwrap();
    let mut ids = Vec::new();
    for i in 0..5u64 {
        s.save("a", arr(DType::U8, &[100], i).r()).unwrap();
        ids.push(s.snapshot((i == 1).then_some("keep")).unwrap());
    }
    assert_eq!(
        s.versions(None).unwrap().len(),
        5,
        "nothing before a checkpoint"
    );
    s.checkpoint().unwrap();
    let left: Vec<u64> = s.versions(None).unwrap().iter().map(|v| v.id).collect();
    assert_eq!(
        left,
        vec![ids[1], ids[3], ids[4]],
        "the tagged one and the newest two"
    );
    assert_verify_clean(&s, "after retention");
    s.close().unwrap();
    // keep_for: versions older than that go, unless kept by keep_last.
    let opts = OpenOptions {
        keep_last: Some(1),
        keep_for: Some(std::time::Duration::from_nanos(1)),
        ..OpenOptions::default()
    };
    let s = Store::open(dir.path(), opts).unwrap();
    s.checkpoint().unwrap();
    let left: Vec<u64> = s.versions(None).unwrap().iter().map(|v| v.id).collect();
    assert_eq!(left, vec![ids[1], ids[4]]);
    let opts = OpenOptions {
        keep_for: Some(std::time::Duration::from_secs(3600)),
        ..OpenOptions::default()
    };
    s.close().unwrap();
    let s = Store::open(dir.path(), opts).unwrap();
    s.snapshot(None).unwrap();
    s.checkpoint().unwrap();
    assert_eq!(
        s.versions(None).unwrap().len(),
        3,
        "all younger than an hour"
    );
}

/// Bytes of every data file of the store.
fn data_bytes(dir: &std::path::Path) -> u64 {
    common::std_data_files(dir)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

#[test]
fn saving_unchanged_or_slightly_changed_rows_writes_only_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let a = arr(DType::F32, &[100_000, 10], 1);
    s.save("a", a.r()).unwrap();
    let v = s.snapshot(None).unwrap();
    let (seq, bytes) = (s.last_seq(), data_bytes(dir.path()));
    // Unchanged: no record, no byte.
    s.save("a", a.r()).unwrap();
    assert_eq!((s.last_seq(), data_bytes(dir.path())), (seq, bytes));
    // One contiguous tenth changed: about a tenth is written.
    let mut b = a.clone();
    let rb = b.row_bytes();
    for x in &mut b.data[20_000 * rb..30_000 * rb] {
        *x = x.wrapping_add(1);
    }
    s.save("a", b.r()).unwrap();
    let grown = data_bytes(dir.path()) - bytes;
    assert_eq!(grown, 10_000 * rb as u64, "only the changed rows");
    assert_eq!(s.read("a").unwrap().data, b.data);
    assert_eq!(at(&s, v)["a"], a);
    // Mostly changed, or another shape: a new file, as before.
    let c = arr(DType::F32, &[100_000, 10], 2);
    s.save("a", c.r()).unwrap();
    assert_eq!(s.read("a").unwrap().data, c.data);
    assert_eq!(at(&s, v)["a"], a);
    assert_verify_clean(&s, "end");
    s.close().unwrap();
    let s = open(dir.path());
    assert_eq!(s.read("a").unwrap().data, c.data);
    assert_eq!(at(&s, v)["a"], a);
}

#[test]
fn writers_by_turns_share_versions() {
    // Two handles writing by turns (NumPack's default): each sees the
    // other's versions at its next turn, restores from them, deletes them.
    let dir = tempfile::tempdir().unwrap();
    let opts = || OpenOptions::default().shared(true);
    let a = Store::open(dir.path(), opts()).unwrap();
    let b = Store::open(dir.path(), opts()).unwrap();
    let x = arr(DType::I32, &[100], 1);
    a.save("x", x.r()).unwrap();
    let va = a.snapshot(Some("from-a")).unwrap();
    b.append("x", arr(DType::I32, &[5], 2).r()).unwrap();
    assert_eq!(b.read("x").unwrap().shape, vec![105]);
    // b restores a's version (its turn catches up first)...
    b.restore("from-a", None).unwrap();
    // ... a appends to the restored array (relocated: the version keeps
    // the slots b appended after it) and checkpoints ...
    a.append("x", arr(DType::I32, &[3], 3).r()).unwrap();
    a.checkpoint().unwrap();
    let mut want = x.data.clone();
    want.extend_from_slice(&arr(DType::I32, &[3], 3).data);
    // (A writer by turns reads its state as of its last turn.)
    b.refresh().unwrap();
    assert_eq!(b.read("x").unwrap().data, want);
    assert_eq!(snapshot(&b.at(va).unwrap()).unwrap()["x"], x);
    // ... b deletes it and collects; a sees it gone.
    let vb = b.snapshot(None).unwrap();
    b.delete_snapshot(va).unwrap();
    b.gc().unwrap();
    a.refresh().unwrap();
    assert!(matches!(a.at(va), Err(Error::NoSuchVersion { .. })));
    assert_eq!(
        a.versions(None)
            .unwrap()
            .iter()
            .map(|v| v.id)
            .collect::<Vec<_>>(),
        vec![vb]
    );
    assert_verify_clean(&a, "a");
    assert_verify_clean(&b, "b");
    drop((a, b));
    let s = open(dir.path());
    assert_eq!(s.read("x").unwrap().data, want);
    assert_verify_clean(&s, "reopened");
}

//! Damaged files: data files (flipped bytes, truncation, removal), the
//! MANIFEST (every single-byte flip, every truncation, removal) and the log
//! (every byte of a record in the middle, every torn tail). The engine must
//! report damage with an error naming the file (and array, chunk and byte
//! range for data), never return wrong data, never present an empty store
//! in place of a damaged one, and never panic.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use common::*;
use numvault::sim::{FaultPlan, SimVfs};
use numvault::{ArrayRef, DType, Error, OpenOptions, Store, Sync};

const MIB: usize = 1 << 20;

fn ro_opts(sim: &SimVfs) -> OpenOptions {
    let mut o = OpenOptions::read_only();
    o.vfs = std::sync::Arc::new(sim.clone());
    o
}

fn data_file_of(store: &Store, name: &str) -> PathBuf {
    store.view(name).unwrap().path().to_path_buf()
}

fn flip(path: &Path, offset: u64) {
    let mut b = std::fs::read(path).unwrap();
    b[offset as usize] ^= 0x20;
    std::fs::write(path, b).unwrap();
}

// --------------------------------------------------------------- data files

/// A store with a 3.5 MiB identity array, a small one with a replaced row
/// (read through the remap) and a 1-D one; closed, so checksums cover all.
fn data_fixture() -> (tempfile::TempDir, PathBuf, Snap) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let s = Store::open(&path, OpenOptions::default()).unwrap();
    s.save("big", arr(DType::U8, &[3584, 1024], 1).r()).unwrap();
    s.save("g/small", arr(DType::F32, &[10, 4], 2).r()).unwrap();
    s.replace("g/small", &[3], arr(DType::F32, &[1, 4], 3).r())
        .unwrap();
    s.save("v", arr(DType::I32, &[100], 4).r()).unwrap();
    let snap = snapshot(&s).unwrap();
    s.close().unwrap();
    (dir, path, snap)
}

#[test]
fn flipped_data_byte_gives_checksum_mismatch_naming_array_file_chunk_and_range() {
    let (_d, path, snap) = data_fixture();
    let s = Store::open(&path, OpenOptions::default()).unwrap();
    let file = data_file_of(&s, "big");
    drop(s);
    let at = 2 * MIB as u64 + 12345; // in chunk 2
    flip(&file, at);
    let s = Store::open(&path, OpenOptions::default()).unwrap();
    let check = |e: Error, how: &str| {
        let msg = e.to_string();
        match e {
            Error::ChecksumMismatch {
                array,
                path: p,
                chunk,
                start,
                end,
            } => {
                assert_eq!(array, "big", "{how}");
                assert_eq!(p, file, "{how}");
                assert_eq!(chunk, 2, "{how}");
                assert_eq!((start, end), (2 * MIB as u64, 3 * MIB as u64), "{how}");
                assert!(start <= at && at < end);
                for w in [
                    "'big'",
                    &file.display().to_string(),
                    "chunk 2",
                    "2097152..3145728",
                ] {
                    assert!(msg.contains(w), "{how}: {msg:?} lacks {w:?}");
                }
            }
            other => panic!("{how}: expected a checksum mismatch, got {other:?}"),
        }
    };
    check(s.read("big").unwrap_err(), "read");
    let mut out = vec![0u8; 3584 * 1024];
    check(s.read_into("big", &mut out).unwrap_err(), "read_into");
    let errs: Vec<Error> = s
        .batches("big", 1000)
        .unwrap()
        .filter_map(Result::err)
        .collect();
    assert_eq!(errs.len(), 1, "batches must stop at the damage");
    check(errs.into_iter().next().unwrap(), "batches");
    // verify() names the same place.
    let rep = s.verify().unwrap();
    assert_eq!(rep.problems.len(), 1, "{:#?}", rep.problems);
    let p = &rep.problems[0];
    assert_eq!(p.file, file);
    assert_eq!(p.array.as_deref(), Some("big"));
    assert_eq!(p.chunk, Some(2));
    assert_eq!(p.range, Some((2 * MIB as u64, 3 * MIB as u64)));
    let shown = p.to_string();
    assert!(
        shown.contains("big") && shown.contains("chunk 2"),
        "{shown}"
    );
    // Other arrays are unaffected.
    assert_eq!(s.read("v").unwrap().data, snap["v"].data);
    assert_eq!(s.read("g/small").unwrap().data, snap["g/small"].data);
}

#[test]
fn flipped_byte_in_a_replaced_row_is_detected() {
    let (_d, path, snap) = data_fixture();
    let s = Store::open(&path, OpenOptions::default()).unwrap();
    let file = data_file_of(&s, "g/small");
    drop(s);
    // The shadow copy of row 3 sits after the 10 original rows (16 B each).
    flip(&file, 10 * 16 + 5);
    let s = Store::open(&path, OpenOptions::default()).unwrap();
    for e in [
        s.read("g/small").unwrap_err(),
        s.batches("g/small", 4)
            .unwrap()
            .find_map(Result::err)
            .unwrap(),
    ] {
        assert!(
            matches!(&e, Error::ChecksumMismatch { array, chunk: 0, .. } if array == "g/small"),
            "{e:?}"
        );
    }
    assert!(!s.verify().unwrap().is_clean());
    assert_eq!(s.read("big").unwrap().data, snap["big"].data);
}

/// Bytes appended after a checksummed partial chunk must not let a checkpoint
/// recompute that chunk's checksum over damaged bytes.
#[test]
fn damage_stays_detected_after_appends_and_checkpoints() {
    let (_d, path, snap) = data_fixture();
    let s = Store::open(&path, OpenOptions::default()).unwrap();
    let file = data_file_of(&s, "v");
    drop(s);
    flip(&file, 17);
    let s = Store::open(&path, OpenOptions::default()).unwrap();
    s.append("v", ArrayRef::of(&[3], &[1i32, 2, 3])).unwrap();
    s.checkpoint().unwrap();
    s.close().unwrap();
    let s = Store::open(&path, OpenOptions::default()).unwrap();
    match s.read("v") {
        Err(Error::ChecksumMismatch { array, .. }) => assert_eq!(array, "v"),
        Ok(a) => {
            assert_ne!(a.data[..400], snap["v"].data[..]);
            panic!("read() returned damaged data without an error");
        }
        Err(e) => panic!("{e}"),
    }
    assert!(!s.verify().unwrap().is_clean());
}

/// Every read path either fails or returns the right bytes.
fn reads_never_wrong(s: &Store, snap: &Snap) -> usize {
    let mut errors = 0;
    for (name, a) in snap {
        let rows = a.rows() as i64;
        let rb = a.row_bytes();
        let mut results: Vec<(String, numvault::Result<Vec<u8>>, Vec<u8>)> = vec![
            ("read".into(), s.read(name).map(|x| x.data), a.data.clone()),
            (
                "read_rows".into(),
                s.read_rows(name, 1, 3).map(|x| x.data),
                a.data[rb..3 * rb].to_vec(),
            ),
            (
                "read_indices".into(),
                s.read_indices(name, &[rows - 1, 0]).map(|x| x.data),
                [a.row(a.rows() as usize - 1), a.row(0)].concat(),
            ),
            (
                "view".into(),
                s.view(name).and_then(|v| v.to_array()).map(|x| x.data),
                a.data.clone(),
            ),
            (
                "batches".into(),
                s.batches(name, 7).and_then(|b| {
                    b.collect::<numvault::Result<Vec<_>>>()
                        .map(|v| v.into_iter().flat_map(|x| x.data).collect())
                }),
                a.data.clone(),
            ),
        ];
        for (how, got, want) in results.drain(..) {
            match got {
                Ok(g) => assert!(g == want, "{how}('{name}') returned wrong data"),
                Err(e) => {
                    assert!(!matches!(e, Error::NotFound(_)), "{how}: {e}");
                    errors += 1;
                }
            }
        }
    }
    errors
}

#[test]
fn truncated_or_missing_data_file_gives_clear_errors_never_wrong_data() {
    for cut in [0u64, 1, MIB as u64 + 7, 3 * MIB as u64] {
        let (_d, path, snap) = data_fixture();
        let s = Store::open(&path, OpenOptions::default()).unwrap();
        let file = data_file_of(&s, "big");
        drop(s);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(cut)
            .unwrap();
        let s = Store::open(&path, OpenOptions::default()).unwrap();
        let e = s.read("big").unwrap_err();
        assert!(
            e.to_string().contains(&file.display().to_string()),
            "cut {cut}: {e}"
        );
        assert!(
            matches!(e, Error::Io { .. } | Error::Corrupt { .. }),
            "{e:?}"
        );
        let e = s.view("big").unwrap_err();
        assert!(
            matches!(&e, Error::Corrupt { path: p, .. } if *p == file),
            "{e:?}"
        );
        assert!(reads_never_wrong(&s, &snap) >= 3);
        let rep = s.verify().unwrap();
        assert!(
            rep.problems
                .iter()
                .any(|p| p.file == file && p.array.as_deref() == Some("big")),
            "cut {cut}: {:#?}",
            rep.problems
        );
    }
    // Removed altogether.
    let (_d, path, snap) = data_fixture();
    let s = Store::open(&path, OpenOptions::default()).unwrap();
    let file = data_file_of(&s, "g/small");
    drop(s);
    std::fs::remove_file(&file).unwrap();
    let s = Store::open(&path, OpenOptions::default()).unwrap();
    let e = s.read("g/small").unwrap_err();
    assert!(e.to_string().contains(&file.display().to_string()), "{e}");
    assert!(reads_never_wrong(&s, &snap) >= 5);
    assert!(!s.verify().unwrap().is_clean());
    assert_eq!(s.read("big").unwrap().data, snap["big"].data);
}

#[test]
fn read_errors_are_reported_never_wrong_data() {
    let sim = SimVfs::new();
    let s = open_sim(&sim, Sync::OnFlush).unwrap();
    s.save("a", arr(DType::U16, &[3000, 200], 1).r()).unwrap();
    s.replace("a", &[5, -1], arr(DType::U16, &[2, 200], 2).r())
        .unwrap();
    s.save("b", arr(DType::F64, &[20], 3).r()).unwrap();
    s.close().unwrap();
    let s = open_sim(&sim, Sync::OnFlush).unwrap();
    let snap = snapshot(&s).unwrap();
    // Count the reads of a full pass, then fail each one in turn.
    sim.set_plan(FaultPlan::default());
    let _ = reads_never_wrong(&s, &snap);
    let reads = {
        // There is no read counter; probe until a plan stops failing anything.
        let mut n = 0;
        loop {
            sim.set_plan(FaultPlan {
                fail_read_at: Some(n),
                ..FaultPlan::default()
            });
            if reads_never_wrong(&s, &snap) == 0 {
                break n;
            }
            n += 1;
        }
    };
    assert!(reads > 10, "only {reads} reads");
}

// ----------------------------------------------------------------- MANIFEST

/// A closed store on the simulator, its files and contents.
fn sim_store() -> (SimVfs, Snap) {
    let sim = SimVfs::new();
    let s = open_sim(&sim, Sync::OnFlush).unwrap();
    s.save("a", arr(DType::F32, &[10, 3], 1).r()).unwrap();
    s.save("g/b", arr(DType::I8, &[7], 2).r()).unwrap();
    s.delete_rows("a", &[2]).unwrap();
    s.replace("a", &[0], arr(DType::F32, &[1, 3], 3).r())
        .unwrap();
    let snap = snapshot(&s).unwrap();
    s.close().unwrap();
    (sim, snap)
}

fn manifest() -> PathBuf {
    Path::new(SIM_PATH).join("MANIFEST")
}

/// Open (writer and reader) must fail naming `file`, or (if `allow_same`)
/// show exactly `snap`. Never panics. Returns true if it opened.
fn open_fails_or_same(sim: &SimVfs, file: &Path, snap: &Snap, allow_same: bool, ctx: &str) -> bool {
    let mut opened = false;
    for ro in [true, false] {
        let fs = sim.after_crash(true);
        let res = catch_unwind(AssertUnwindSafe(|| {
            let r = if ro {
                Store::open(SIM_PATH, ro_opts(&fs))
            } else {
                open_sim(&fs, Sync::OnFlush)
            };
            r.map(|s| snapshot(&s))
        }))
        .unwrap_or_else(|_| panic!("{ctx}: panicked"));
        match res {
            Err(e) => {
                assert!(e.is_corruption(), "{ctx}: {e:?} is not a corruption error");
                let shown = file.display().to_string();
                assert!(
                    e.to_string().contains(&shown),
                    "{ctx}: {e} does not name {shown}"
                );
            }
            Ok(got) => {
                assert!(allow_same, "{ctx}: opened a damaged store");
                assert_eq!(got.as_ref().ok(), Some(snap), "{ctx}: wrong contents");
                opened = true;
            }
        }
    }
    opened
}

#[test]
fn every_single_byte_flip_of_the_manifest() {
    let (sim, snap) = sim_store();
    let orig = sim.read_file(&manifest()).unwrap();
    let mut undetected = Vec::new();
    for i in 0..orig.len() {
        for bit in [0x01u8, 0x80] {
            let mut b = orig.clone();
            b[i] ^= bit;
            sim.write_file(&manifest(), b);
            let ctx = format!("MANIFEST byte {i} ^ {bit:#x}");
            if open_fails_or_same(&sim, &manifest(), &snap, true, &ctx) {
                undetected.push(i);
            }
        }
    }
    sim.write_file(&manifest(), orig);
    // Only the unused header fields (flags, reserved) may go unnoticed, and
    // then the store is intact.
    undetected.dedup();
    assert!(
        undetected
            .iter()
            .all(|&i| (12..16).contains(&i) || (28..32).contains(&i)),
        "undetected flips at {undetected:?}"
    );
}

#[test]
fn every_truncation_of_the_manifest_and_its_removal() {
    let (sim, snap) = sim_store();
    let orig = sim.read_file(&manifest()).unwrap();
    for len in 0..orig.len() {
        sim.write_file(&manifest(), orig[..len].to_vec());
        open_fails_or_same(
            &sim,
            &manifest(),
            &snap,
            false,
            &format!("MANIFEST cut to {len}"),
        );
    }
    // Garbage after it.
    let mut long = orig.clone();
    long.extend_from_slice(&[0u8; 9]);
    sim.write_file(&manifest(), long);
    open_fails_or_same(
        &sim,
        &manifest(),
        &snap,
        false,
        "MANIFEST with trailing bytes",
    );
    sim.write_file(&manifest(), orig.clone());

    // Removed while data exists: the writer reports it; a reader finds no
    // store; neither creates an empty store nor deletes anything.
    let fs2 = sim.after_crash(true);
    remove_sim_file(&fs2, &manifest());
    let mut before = fs2.files();
    before.sort();
    match open_sim(&fs2, Sync::OnFlush) {
        Err(e @ Error::Corrupt { .. }) => {
            assert!(e.to_string().contains("MANIFEST"), "{e}");
        }
        other => panic!("writer without MANIFEST: {:?}", other.map(|s| s.list(""))),
    }
    match Store::open(SIM_PATH, ro_opts(&fs2)) {
        Err(Error::NotAStore { .. } | Error::Corrupt { .. }) => {}
        other => panic!("reader without MANIFEST: {:?}", other.map(|s| s.list(""))),
    }
    let mut after = fs2.files();
    after.sort();
    assert_eq!(after, before, "a failed open changed the directory");
}

/// Remove a file of a simulated store, durably.
fn remove_sim_file(sim: &SimVfs, path: &Path) {
    use numvault::vfs::Vfs;
    sim.remove_file(path).unwrap();
    sim.sync_dir(path.parent().unwrap()).unwrap();
}

#[test]
fn manifest_removed_on_a_real_directory() {
    let (_d, path, _) = data_fixture();
    std::fs::remove_file(path.join("MANIFEST")).unwrap();
    let listing = |p: &Path| {
        let mut v: Vec<_> = walk(p);
        v.sort();
        v
    };
    let before = listing(&path);
    match Store::open(&path, OpenOptions::default()) {
        Err(e @ Error::Corrupt { .. }) => {
            assert!(
                e.to_string()
                    .contains(&path.join("MANIFEST").display().to_string()),
                "{e}"
            )
        }
        other => panic!("{:?}", other.map(|s| s.list(""))),
    }
    assert!(matches!(
        Store::open(&path, OpenOptions::read_only()),
        Err(Error::NotAStore { .. })
    ));
    assert_eq!(listing(&path), before);
}

fn walk(p: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push((e.path(), e.metadata().unwrap().len()));
        }
    }
    out
}

// --------------------------------------------------------------------- log

struct LogImage {
    sim: SimVfs,
    log: PathBuf,
    /// (offset, length) of each record.
    records: Vec<(usize, usize)>,
    /// The state after 0, 1, ... records.
    states: Vec<Snap>,
}

/// A crashed store whose log holds six records after its checkpoint,
/// written under `sync`, with a flush after each op if `flush_each`.
fn log_image(sync: Sync, flush_each: bool) -> LogImage {
    let sim = SimVfs::new();
    let s = open_sim(&sim, sync).unwrap();
    s.save("a", arr(DType::U32, &[4, 2], 1).r()).unwrap();
    // A close no longer checkpoints (changed on purpose, issue 11): the
    // checkpoint that leaves the six records alone in the log is explicit.
    s.checkpoint().unwrap();
    s.close().unwrap();
    let s = open_sim(&sim, sync).unwrap();
    let mut states = vec![snapshot(&s).unwrap()];
    for i in 0..6u64 {
        match i {
            2 => s.replace("a", &[1, -1], arr(DType::U32, &[2, 2], 10 + i).r()),
            4 => s.save("b/c", arr(DType::I16, &[3, 3], 10 + i).r()),
            _ => s.append("a", arr(DType::U32, &[2, 2], 10 + i).r()),
        }
        .unwrap();
        if flush_each {
            s.flush().unwrap();
        }
        states.push(snapshot(&s).unwrap());
    }
    s.flush().unwrap();
    let sim = sim.after_crash(true);
    drop(s);
    let log = sim
        .files()
        .into_iter()
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("wal-"))
        .unwrap();
    let bytes = sim.read_file(&log).unwrap();
    let mut records = Vec::new();
    let mut pos = 24;
    // Under Sync::Always the log is preallocated: zeros follow the records.
    while pos < bytes.len() && bytes[pos..].iter().any(|b| *b != 0) {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize + 48;
        records.push((pos, len));
        pos += len;
    }
    assert!(bytes[pos..].iter().all(|b| *b == 0));
    assert_eq!(records.len(), 6);
    LogImage {
        sim,
        log,
        records,
        states,
    }
}

/// A damaged record that a later valid record declares durable (it was
/// synced before that record was written) is corruption: opening fails
/// naming the log, whichever byte of the record is damaged.
#[test]
fn every_byte_of_a_damaged_durable_record_in_the_middle_is_corrupt() {
    for (sync, flush_each) in [(Sync::Always, false), (Sync::OnFlush, true)] {
        let img = log_image(sync, flush_each);
        let orig = img.sim.read_file(&img.log).unwrap();
        for k in [1usize, 3] {
            let (start, len) = img.records[k];
            for i in start..start + len {
                for bit in [0x01u8, 0x80] {
                    let mut b = orig.clone();
                    b[i] ^= bit;
                    let fs = img.sim.after_crash(true);
                    fs.write_file(&img.log, b);
                    let ctx = format!(
                        "{} record {k}, byte {} ^ {bit:#x}",
                        policy_name(sync),
                        i - start
                    );
                    open_fails_or_same(&fs, &img.log, &img.states[6], false, &ctx);
                }
            }
        }
    }
}

/// Records written without a sync in between may reach the disk in any
/// order before a power loss, so damage in one that no later record
/// declares durable is taken as the end of the log: the store opens at the
/// state before it (never with wrong data), or reports corruption.
#[test]
fn damaged_record_not_yet_declared_durable_ends_the_log() {
    let img = log_image(Sync::OnFlush, false);
    let orig = img.sim.read_file(&img.log).unwrap();
    let (start, len) = img.records[2];
    for i in (start..start + len).step_by(7) {
        let mut b = orig.clone();
        b[i] ^= 0x10;
        let fs = img.sim.after_crash(true);
        fs.write_file(&img.log, b);
        match open_sim(&fs, Sync::OnFlush) {
            Ok(s) => {
                assert_eq!(snapshot(&s).unwrap(), img.states[2], "byte {}", i - start);
                assert_verify_clean(&s, "after dropping the damaged tail");
            }
            Err(e) => assert!(e.is_corruption(), "{e:?}"),
        }
    }
}

#[test]
fn torn_log_tail_recovers_to_the_last_whole_record() {
    let img = log_image(Sync::Always, false);
    let orig = img.sim.read_file(&img.log).unwrap();
    let (start, len) = img.records[5];
    let mut cases: Vec<(String, Vec<u8>, usize)> = (1..len)
        .map(|cut| (format!("cut {cut}"), orig[..start + cut].to_vec(), 5))
        .collect();
    // Junk after the last record: zeros, and the start of a copy of it.
    let mut zeros = orig.clone();
    zeros.extend_from_slice(&[0u8; 100]);
    cases.push(("zero tail".into(), zeros, 6));
    let mut partial = orig.clone();
    partial.extend_from_slice(&orig[start..start + 30]);
    cases.push(("partial copy".into(), partial, 6));
    for (what, bytes, expect) in cases {
        for ro in [true, false] {
            let fs = img.sim.after_crash(true);
            fs.write_file(&img.log, bytes.clone());
            let ctx = format!("{what} (read-only {ro})");
            let s = if ro {
                Store::open(SIM_PATH, ro_opts(&fs))
            } else {
                open_sim(&fs, Sync::OnFlush)
            }
            .unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert_eq!(snapshot(&s).unwrap(), img.states[expect], "{ctx}");
            assert_verify_clean(&s, &ctx);
            if !ro {
                s.append("a", arr(DType::U32, &[1, 2], 99).r()).unwrap();
                s.close().unwrap();
                let s = open_sim(&fs, Sync::OnFlush).unwrap();
                assert_eq!(s.shape("a").unwrap()[0], img.states[expect]["a"].rows() + 1);
            }
        }
    }
}

/// Synced InFile data (outside `Always` written with `synced = 0`) that a
/// later record declares durable, then damaged: a full recovery fails with
/// `Corrupt` naming the data file, instead of taking the damage for a lost
/// unsynced tail and silently dropping that commit and every later one
/// (FORMAT.md §7.4 step 3, Appendix A.10). Damage to the region of the last
/// such record, which no record declares durable, still ends the log before
/// it (the blind spot of §9).
#[test]
fn damaged_in_file_data_that_a_later_record_declares_durable_is_corrupt() {
    let policies = [
        Sync::Group {
            max_delay: std::time::Duration::from_secs(3600),
        },
        Sync::OnFlush,
        Sync::Never,
    ];
    for sync in policies {
        let name = policy_name(sync);
        let sim = SimVfs::new();
        let s = open_sim(&sim, sync).unwrap();
        s.save("a", arr(DType::U8, &[10, 1000], 1).r()).unwrap();
        s.checkpoint().unwrap();
        // 80 000 bytes each: InFile payloads (over 16 KiB), not in the log.
        s.append("a", arr(DType::U8, &[80, 1000], 2).r()).unwrap();
        s.flush().unwrap();
        let first = snapshot(&s).unwrap();
        // This record declares the first append durable (synced_seq).
        s.append("a", arr(DType::U8, &[80, 1000], 3).r()).unwrap();
        s.flush().unwrap();
        let file = data_file_of(&s, "a");
        // The power goes (a new boot: full recovery); every write was
        // synced by the flushes. No close: it would checkpoint.
        let image = sim.after_power_loss(7);
        drop(s);
        let orig = image.read_file(&file).unwrap();
        assert_eq!(orig.len(), 170_000, "[{name}] data file");
        for (region, at) in [(1, 10_000 + 12_345), (2, 90_000 + 4_321)] {
            let mut b = orig.clone();
            b[at] ^= 0x40;
            let ctx = format!("[{name}] byte {at} of append {region} flipped");
            for ro in [false, true] {
                let fs = image.after_crash(true);
                fs.write_file(&file, b.clone());
                let opened = if ro {
                    Store::open(SIM_PATH, ro_opts(&fs))
                } else {
                    open_sim(&fs, Sync::OnFlush)
                };
                match (region, opened) {
                    (1, Err(e)) => {
                        assert!(matches!(e, Error::Corrupt { .. }), "{ctx}: {e:?}");
                        let shown = file.display().to_string();
                        assert!(
                            e.to_string().contains(&shown),
                            "{ctx}: {e} does not name {shown}"
                        );
                        assert!(e.to_string().contains("durable"), "{ctx}: {e}");
                    }
                    (1, Ok(s)) => panic!(
                        "{ctx} (read-only {ro}): opened with {:?} rows instead of failing",
                        s.shape("a").unwrap()
                    ),
                    (_, Ok(s)) => {
                        assert_eq!(snapshot(&s).unwrap(), first, "{ctx} (read-only {ro})");
                        assert_verify_clean(&s, &ctx);
                    }
                    (_, Err(e)) => panic!("{ctx} (read-only {ro}): {e}"),
                }
            }
        }
    }
}

// -------------------------------------------------------------------- fuzz

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// Random damage to any file: opening, reading and verifying never panic,
/// and whatever is read is some committed version of the array.
#[test]
fn random_damage_never_panics_nor_returns_wrong_data() {
    // Under OnFlush no record vouches for another; under Always each does.
    for (sync, seed) in [
        (Sync::OnFlush, 0x1234_5678_9abc_def1u64),
        (Sync::Always, 77),
    ] {
        fuzz_image(&log_image(sync, false), seed, cases(150));
    }
}

fn fuzz_image(img: &LogImage, mut rng: u64, iterations: u32) {
    let files = img.sim.files();
    let mut versions: std::collections::HashMap<String, Vec<Arr>> = Default::default();
    for st in &img.states {
        for (n, a) in st {
            versions.entry(n.clone()).or_default().push(a.clone());
        }
    }
    for it in 0..iterations {
        let fs = img.sim.after_crash(true);
        let f = &files[(xorshift(&mut rng) % files.len() as u64) as usize];
        let mut b = fs.read_file(f).unwrap();
        match xorshift(&mut rng) % 4 {
            0 | 1 if !b.is_empty() => {
                for _ in 0..1 + xorshift(&mut rng) % 3 {
                    let i = (xorshift(&mut rng) % b.len() as u64) as usize;
                    b[i] ^= 1 << (xorshift(&mut rng) % 8);
                }
            }
            2 => {
                let cut = (xorshift(&mut rng) % (b.len() as u64 + 1)) as usize;
                b.truncate(cut);
            }
            _ => {
                let n = xorshift(&mut rng) % 64;
                b.extend((0..n).map(|_| xorshift(&mut rng) as u8));
            }
        }
        fs.write_file(f, b);
        let ctx = format!("iteration {it}: damaged {}", f.display());
        let r = catch_unwind(AssertUnwindSafe(|| {
            let s = match open_sim(&fs, Sync::OnFlush) {
                Ok(s) => s,
                Err(_) => return,
            };
            for name in s.list("") {
                if let Ok(a) = s.read(&name) {
                    let known = versions
                        .get(&name)
                        .is_some_and(|v| v.iter().any(|x| x.data == a.data && x.shape == a.shape));
                    assert!(known, "{ctx}: read('{name}') returned data never committed");
                }
                let _ = s.view(&name).and_then(|v| v.to_array());
                let _ = s.batches(&name, 3).map(|b| b.count());
            }
            let _ = s.verify();
        }));
        if let Err(p) = r {
            std::panic::resume_unwind(p);
        }
    }
}

/// Arrays of 8 MiB and more are written and verified on two threads: damage
/// and read errors are reported from that path too, without hanging.
#[test]
fn large_arrays_checked_in_parallel_report_damage_and_read_errors() {
    let sim = SimVfs::new();
    let s = open_sim(&sim, Sync::OnFlush).unwrap();
    let a = arr(DType::U8, &[9 * 1024, 1024], 5); // 9 MiB
    s.save("big", a.r()).unwrap();
    assert_eq!(s.read("big").unwrap().data, a.data);
    let file = data_file_of(&s, "big");
    s.close().unwrap();
    // Every read failing in turn (the first few cover all chunk reads).
    let s = open_sim(&sim, Sync::OnFlush).unwrap();
    for n in 0..12 {
        sim.set_plan(FaultPlan {
            fail_read_at: Some(n),
            ..FaultPlan::default()
        });
        match s.read("big") {
            Ok(got) => assert!(got.data == a.data, "read {n} failed: wrong data"),
            Err(e) => assert!(matches!(e, Error::Io { .. }), "{e:?}"),
        }
    }
    sim.set_plan(FaultPlan::default());
    drop(s);
    let mut b = sim.read_file(&file).unwrap();
    b[7 * MIB + 99] ^= 4;
    sim.write_file(&file, b);
    let s = open_sim(&sim, Sync::OnFlush).unwrap();
    match s.read("big") {
        Err(Error::ChecksumMismatch {
            array,
            chunk,
            start,
            ..
        }) => {
            assert_eq!((array.as_str(), chunk, start), ("big", 7, 7 * MIB as u64));
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    let rep = s.verify().unwrap();
    assert_eq!(rep.problems.len(), 1);
    assert_eq!(rep.problems[0].chunk, Some(7));
}

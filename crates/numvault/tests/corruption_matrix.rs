//! Corruption matrix: every file kind of a store (MANIFEST, the log, each
//! data file, LOCK) gets single-byte flips at many offsets (header fields,
//! start, middle, end, random) and truncations at several points, in two
//! store images: cleanly closed, and a crashed writer with a log to replay.
//! Each damaged store is opened (alternately read-only first and as a
//! writer) and every array read. The rule: opening or reading gives an error
//! naming the damaged file, or the store shows a committed state (the
//! arrays and shapes of one, with every array that reads without error
//! holding exactly that state's bytes). Wrong data is never returned.
//!
//! Also writes the fuzz seed corpora when `NUMVAULT_WRITE_FUZZ_SEEDS` names
//! the fuzz directory (see `write_fuzz_seeds`).

mod common;

use std::path::{Path, PathBuf};

use common::*;
use numvault::{ArrayRef, DType, OpenOptions, Store, Sync};

/// Builds a store at `dir` and returns every committed state in order.
fn build(dir: &Path, crash: bool) -> Vec<Snap> {
    let mut states = vec![Snap::new()];
    let s = Store::open(dir, OpenOptions::default().sync(Sync::Always)).unwrap();
    let mut step = |s: &Store, f: &dyn Fn(&Store)| {
        f(s);
        states.push(snapshot(s).unwrap());
    };
    let small = arr(DType::F32, &[30, 4], 1);
    let big = arr(DType::U8, &[40, 4096], 2);
    let i64s = arr(DType::I64, &[50, 3], 3);
    step(&s, &|s| s.save("a", small.r()).unwrap());
    step(&s, &|s| s.save("big", big.r()).unwrap());
    step(&s, &|s| s.save("g/c", i64s.r()).unwrap());
    step(&s, &|s| {
        s.replace("a", &[1, -1], ArrayRef::of(&[2, 4], &[7.5f32; 8]))
            .unwrap()
    });
    step(&s, &|s| s.delete_rows("g/c", &[0, 5]).unwrap());
    s.checkpoint().unwrap();
    let more = arr(DType::U8, &[20, 4096], 4);
    step(&s, &|s| s.append("big", more.r()).unwrap());
    step(&s, &|s| {
        s.append("a", ArrayRef::of(&[1, 4], &[1.0f32, 2.0, 3.0, 4.0]))
            .unwrap()
    });
    step(&s, &|s| s.compact("g/c").map(|_| ()).unwrap());
    step(&s, &|s| s.rename("g/c", "h/c").unwrap());
    if crash {
        // The writer "dies" here: copy the directory while it is open.
        let img = dir.with_extension("crashed");
        copy_store_dir(dir, &img);
        drop(s);
        std::fs::remove_dir_all(dir).unwrap();
        std::fs::rename(&img, dir).unwrap();
    } else {
        s.close().unwrap();
    }
    states
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(files(&p));
        } else {
            v.push(p);
        }
    }
    v.sort();
    v
}

#[derive(Clone, Copy, Debug)]
enum Damage {
    Flip(u64),
    Truncate(u64),
}

fn damages(len: u64, seed: u64) -> Vec<Damage> {
    let mut offs: Vec<u64> = vec![0, 1, 7, 8, 11, 12, 15, 16, 20, 23, 24, 27, 28, 31, 32];
    offs.extend([40, 48, 56, 64, 80, 100, 128]);
    offs.extend([
        len / 4,
        len / 3,
        len / 2,
        2 * len / 3,
        len.saturating_sub(9),
    ]);
    offs.extend([len.saturating_sub(2), len.saturating_sub(1)]);
    let r = bytes(16, seed);
    for c in r.chunks(2) {
        if len > 0 {
            offs.push(u64::from(u16::from_le_bytes([c[0], c[1]])) * 7919 % len);
        }
    }
    offs.retain(|&o| o < len);
    offs.sort_unstable();
    offs.dedup();
    let mut out: Vec<Damage> = offs.into_iter().map(Damage::Flip).collect();
    let mut cuts = vec![0, 1, 8, 24, 28, 31, 40, len / 2, len.saturating_sub(1)];
    cuts.retain(|&c| c < len);
    cuts.sort_unstable();
    cuts.dedup();
    out.extend(cuts.into_iter().map(Damage::Truncate));
    out
}

fn apply(path: &Path, d: Damage) {
    let mut b = std::fs::read(path).unwrap();
    match d {
        Damage::Flip(o) => b[o as usize] ^= 0x5a,
        Damage::Truncate(n) => b.truncate(n as usize),
    }
    std::fs::write(path, b).unwrap();
}

/// Open and read everything; check the rule. Returns "error", "state j" or
/// "state j, k arrays unreadable".
fn check(dir: &Path, damaged: &Path, states: &[Snap], read_only_first: bool, ctx: &str) -> String {
    let fname = damaged.file_name().unwrap().to_string_lossy().to_string();
    let names_file = |e: &numvault::Error| {
        let m = e.to_string();
        assert!(
            m.contains(&fname),
            "{ctx}: the error does not name the damaged file {fname}: {m}"
        );
    };
    let opts = if read_only_first {
        OpenOptions::read_only()
    } else {
        OpenOptions::default().sync(Sync::Always)
    };
    let s = match Store::open(dir, opts) {
        Ok(s) => s,
        Err(e) => {
            names_file(&e);
            return "open error".into();
        }
    };
    // Which committed state do the names and shapes say?
    let names = s.list("");
    let shapes: Vec<(String, Vec<u64>, DType)> = names
        .iter()
        .map(|n| (n.clone(), s.shape(n).unwrap(), s.dtype(n).unwrap()))
        .collect();
    let candidates: Vec<usize> = (0..states.len())
        .filter(|&j| {
            states[j].len() == shapes.len()
                && shapes.iter().all(|(n, sh, dt)| {
                    states[j]
                        .get(n)
                        .is_some_and(|a| &a.shape == sh && a.dtype == *dt)
                })
        })
        .collect();
    assert!(
        !candidates.is_empty(),
        "{ctx}: the store shows names/shapes of no committed state: {shapes:?}"
    );
    let mut unreadable = 0;
    let mut got = Snap::new();
    for n in &names {
        match s.read(n) {
            Ok(a) => {
                got.insert(
                    n.clone(),
                    Arr {
                        dtype: a.dtype,
                        shape: a.shape,
                        data: a.data,
                    },
                );
            }
            Err(e) => {
                names_file(&e);
                unreadable += 1;
            }
        }
    }
    let j = candidates
        .iter()
        .rev()
        .copied()
        .find(|&j| got.iter().all(|(n, a)| states[j].get(n) == Some(a)));
    let Some(j) = j else {
        panic!("{ctx}: WRONG DATA: readable arrays match no committed state");
    };
    if unreadable > 0 {
        let rep = s.verify();
        assert!(
            rep.map_or(true, |r| !r.is_clean()),
            "{ctx}: reads failed but verify() is clean"
        );
        return format!("state {j}, {unreadable} arrays unreadable");
    }
    format!("state {j}")
}

#[test]
fn corruption_matrix() {
    let mut cases = 0u64;
    let (mut errors, mut recovered) = (0u64, 0u64);
    let mut per_kind: std::collections::BTreeMap<String, u64> = Default::default();
    for crash in [false, true] {
        let root = tempfile::tempdir().unwrap();
        let pristine = root.path().join("pristine");
        let states = build(&pristine, crash);
        for (fi, file) in files(&pristine).iter().enumerate() {
            let rel = file.strip_prefix(&pristine).unwrap().to_path_buf();
            let len = std::fs::metadata(file).unwrap().len();
            let kind = match rel.to_string_lossy() {
                r if r.starts_with("wal-") => "log".to_string(),
                r if r.ends_with(".nvd") => "data file".to_string(),
                r => r.to_string(),
            };
            for (di, d) in damages(len, fi as u64 + 1).into_iter().enumerate() {
                let dir = root.path().join(format!("case-{fi}-{di}"));
                copy_store_dir(&pristine, &dir);
                let target = dir.join(&rel);
                if !target.exists() {
                    // `copy_store_dir` leaves LOCK out; damage a copy of it.
                    std::fs::copy(file, &target).unwrap();
                }
                apply(&target, d);
                let ctx = format!(
                    "{} image, {} ({len} bytes): {d:?}",
                    if crash { "crashed" } else { "closed" },
                    rel.display()
                );
                let out = check(&dir, &target, &states, di.is_multiple_of(2), &ctx);
                if out == "open error" || out.contains("unreadable") {
                    errors += 1;
                } else {
                    recovered += 1;
                }
                // A second open (after any recovery) obeys the rule too.
                check(
                    &dir,
                    &target,
                    &states,
                    false,
                    &format!("{ctx} (second open)"),
                );
                *per_kind.entry(kind.clone()).or_default() += 1;
                cases += 1;
                std::fs::remove_dir_all(&dir).unwrap();
            }
        }
    }
    let line = format!(
        "corruption: {cases} damaged-file cases (byte flips and truncations of {}): \
         {errors} gave an error naming the file, {recovered} opened to a committed state; \
         0 returned wrong data",
        per_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    report_figures(&line);
}

/// `NUMVAULT_WRITE_FUZZ_SEEDS=<repo>/fuzz cargo test --test corruption_matrix
/// write_fuzz_seeds -- --ignored` writes small seed inputs for the fuzz
/// targets from a real store.
#[test]
#[ignore = "writes the fuzz seed corpora on request"]
fn write_fuzz_seeds() {
    let Ok(fuzz) = std::env::var("NUMVAULT_WRITE_FUZZ_SEEDS") else {
        return;
    };
    let fuzz = PathBuf::from(fuzz).join("seeds");
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("s");
    {
        let s = Store::open(&dir, OpenOptions::default()).unwrap();
        s.save(
            "a",
            ArrayRef::of(&[3, 2], &[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]),
        )
        .unwrap();
        s.save("g/b", ArrayRef::of(&[4], &[1u16, 2, 3, 4])).unwrap();
        s.checkpoint().unwrap();
        s.append("a", ArrayRef::of(&[1, 2], &[7.0f32, 8.0]))
            .unwrap();
        s.replace("g/b", &[0, -1], ArrayRef::of(&[2], &[9u16, 9]))
            .unwrap();
        s.delete_rows("a", &[1]).unwrap();
        s.rename("g/b", "c").unwrap();
        let img = root.path().join("img");
        copy_store_dir(&dir, &img);
        drop(s);
        let put = |target: &str, name: &str, bytes: &[u8]| {
            let d = fuzz.join(target);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(name), bytes).unwrap();
        };
        let manifest = std::fs::read(img.join("MANIFEST")).unwrap();
        let log_name = files(&img)
            .into_iter()
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("wal-"))
            .unwrap();
        let log = std::fs::read(&log_name).unwrap();
        put("manifest", "store", &manifest);
        put("manifest_body", "store", &manifest[32..]);
        put("log_header", "store", &log[..24]);
        put("log_record", "first", &log[24..]);
        put("log_record_body", "first", &log[32..]);
        // A checksum table: covered 6 bytes, one chunk sum.
        let mut t = 6u64.to_le_bytes().to_vec();
        t.extend(1u32.to_le_bytes());
        t.extend(0xdead_beefu32.to_le_bytes());
        put("checksum_table", "one", &t);
        let mut image = manifest.clone();
        let sep = numvault::fuzzing::FILE_SEPARATOR;
        let gen0 = img.join("wal-0000000000000000.log");
        for g in 0..3 {
            image.extend_from_slice(sep);
            if log_name == gen0.with_file_name(format!("wal-{g:016x}.log")) {
                image.extend_from_slice(&log);
            }
        }
        for f in files(&img.join("data")) {
            image.extend_from_slice(sep);
            image.extend_from_slice(&std::fs::read(f).unwrap());
        }
        put("store_image", "store", &image);
    }
}

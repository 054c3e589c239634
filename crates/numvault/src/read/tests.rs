//! Tests of the read paths against models, damaged chunks and failed reads.

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::whole::mapped_read_pays;
use crate::model::error::Error;
use crate::model::sums::CHUNK_BYTES;
use crate::read::ahead::HELPER_MIN_UNITS;
use crate::sim::{FaultPlan, SimVfs};
use crate::vfs::{LockGuard, Mapping, OpenMode, VFile, Vfs};
use crate::Store;
use crate::{ArrayRef, OpenOptions};

/// A file system that counts the bytes read from data files.
#[derive(Clone)]
struct Counting {
    inner: SimVfs,
    bytes: Arc<AtomicU64>,
}

struct CountingFile {
    inner: Arc<dyn VFile>,
    bytes: Option<Arc<AtomicU64>>,
}

impl VFile for CountingFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        if let Some(b) = &self.bytes {
            b.fetch_add(buf.len() as u64, Ordering::SeqCst);
        }
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.inner.write_all_at(buf, offset)
    }
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.inner.sync_data()
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.inner.set_len(len)
    }
    fn map(&self, len: u64) -> std::io::Result<Arc<dyn Mapping>> {
        self.inner.map(len)
    }
    fn map_mut(&self, len: u64) -> std::io::Result<Option<memmap2::MmapMut>> {
        self.inner.map_mut(len)
    }
}

impl Vfs for Counting {
    fn open(&self, path: &Path, mode: OpenMode) -> std::io::Result<Arc<dyn VFile>> {
        let data = path.extension().is_some_and(|e| e == "nvd");
        Ok(Arc::new(CountingFile {
            inner: self.inner.open(path, mode)?,
            bytes: data.then(|| self.bytes.clone()),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        self.inner.remove_file(path)
    }
    fn create_dir_all(&self, path: &Path) -> std::io::Result<()> {
        self.inner.create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> std::io::Result<Vec<String>> {
        self.inner.list_dir(path)
    }
    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }
    fn sync_dir(&self, path: &Path) -> std::io::Result<()> {
        self.inner.sync_dir(path)
    }
    fn lock_exclusive(&self, path: &Path, wait: Option<Duration>) -> std::io::Result<LockGuard> {
        self.inner.lock_exclusive(path, wait)
    }
}

/// An empty store on a counting file system.
fn counting_store() -> (Counting, Store) {
    let fs = Counting {
        inner: SimVfs::new(),
        bytes: Arc::default(),
    };
    let opts = OpenOptions::default().vfs(Arc::new(fs.clone()));
    let s = Store::open(Path::new("/s"), opts).unwrap();
    (fs, s)
}

/// A counting store holding "a": 2.5 chunks of u32 rows of 3 (12 bytes:
/// rows straddle chunk ends); also its bytes. Streamed by the consumer
/// alone (no helper thread below `HELPER_MIN_UNITS`).
fn saved() -> (Counting, Store, Vec<u8>) {
    saved_halves(5)
}

/// The same with 10.5 chunks: streamed with the helper thread.
fn saved_large() -> (Counting, Store, Vec<u8>) {
    saved_halves(21)
}

fn saved_halves(halves: u32) -> (Counting, Store, Vec<u8>) {
    assert!(halves.div_ceil(2) < HELPER_MIN_UNITS as u32 || halves / 2 >= 10);
    let (fs, s) = counting_store();
    let vals: Vec<u32> = (0..(halves * CHUNK_BYTES as u32 / 8)).collect();
    let rows = vals.len() as u64 / 3;
    let vals = &vals[..rows as usize * 3];
    s.save("a", ArrayRef::of(&[rows, 3], vals)).unwrap();
    let bytes = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
    (fs, s, bytes)
}

#[test]
fn streaming_reads_and_checks_each_byte_once_whatever_the_batch_size() {
    for (fs, s, want) in [saved(), saved_large()] {
        let rows = want.len() as u64 / 12;
        for batch in [
            1u64,
            7,
            1000,
            30_000,
            87_381,
            87_382,
            200_000,
            rows,
            u64::MAX,
        ] {
            fs.bytes.store(0, Ordering::SeqCst);
            let mut got = Vec::with_capacity(want.len());
            for b in s.batches("a", batch).unwrap() {
                got.extend_from_slice(&b.unwrap().data);
            }
            assert!(got == want, "batch {batch}: wrong data");
            assert_eq!(
                fs.bytes.load(Ordering::SeqCst),
                want.len() as u64,
                "batch {batch}: bytes read"
            );
        }
    }
}

/// Up to `n` distinct random row indices below `len`, sorted.
fn random_rows(x: &mut u64, n: usize, len: usize) -> Vec<i64> {
    let mut idx: Vec<i64> = (0..n)
        .map(|_| {
            *x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((*x >> 33) % len as u64) as i64
        })
        .collect();
    idx.sort_unstable();
    idx.dedup();
    idx
}

/// Every range of rows of "a" read with its shadow rows preloaded, with
/// them only sorted (the preload over its limit) and without either gives
/// the model's bytes.
fn ranges_match_with_and_without_preloaded_shadow_rows(s: &Store, want: &[u8]) {
    use super::rows::{read_rows_into, ShadowRows};
    let (a, df) = s.array_snapshot("a").unwrap();
    assert!(!a.remap.is_empty());
    let rb = a.row_bytes;
    let preloaded = ShadowRows::load(&a, &df, None).unwrap();
    let sorted_only = ShadowRows::load_within(&a, &df, None, 0).unwrap();
    let rows = a.rows();
    for (start, end) in [
        (0, rows),
        (0, 1),
        (rows - 1, rows),
        (12_345, 67_890),
        (150_000, 150_100),
    ] {
        for shadow in [Some(&preloaded), Some(&sorted_only), None] {
            let mut out = vec![0u8; ((end - start) * rb) as usize];
            read_rows_into(&a, &df, start, end, &mut out, None, shadow).unwrap();
            let w = &want[(start * rb) as usize..(end * rb) as usize];
            assert!(
                out == w,
                "rows {start}..{end}, preloaded {}",
                shadow.is_some_and(|s| s.is_preloaded())
            );
        }
    }
}

#[test]
fn streaming_with_replaced_and_deleted_rows_matches_a_model() {
    let (fs, s) = counting_store();
    let rows = 300_000u64;
    let mut model: Vec<u64> = (0..rows).collect();
    s.save("a", ArrayRef::of(&[rows], &model)).unwrap();
    // Scattered replacements (several commits, so shadow rows of one
    // batch lie in several places), a re-replacement and deletions.
    let mut x = 12345u64;
    for round in 0..6u64 {
        let idx = random_rows(&mut x, 2000, model.len());
        let vals: Vec<u64> = idx
            .iter()
            .map(|&i| 1_000_000 * (round + 1) + i as u64)
            .collect();
        s.replace("a", &idx, ArrayRef::of(&[idx.len() as u64], &vals))
            .unwrap();
        for (i, v) in idx.iter().zip(&vals) {
            model[*i as usize] = *v;
        }
        let del = [round as i64 * 7, 100_000 + round as i64];
        s.delete_rows("a", &del).unwrap();
        for d in del.iter().rev() {
            model.remove(*d as usize);
        }
    }
    let want: Vec<u8> = model.iter().flat_map(|v| v.to_le_bytes()).collect();
    ranges_match_with_and_without_preloaded_shadow_rows(&s, &want);
    // Before the checkpoint the appended shadow rows are not checksummed
    // yet; after it they are: stream both ways.
    let file_bytes = s.info("a").unwrap().data_bytes;
    for checkpointed in [false, true] {
        if checkpointed {
            s.checkpoint().unwrap();
        }
        fs.bytes.store(0, Ordering::SeqCst);
        let got: Vec<u8> = s
            .batches("a", 10_000)
            .unwrap()
            .flat_map(|b| b.unwrap().data)
            .collect();
        assert!(got == want, "checkpointed {checkpointed}: wrong data");
        // The shadow rows are read once for the whole stream, not once per
        // batch: about the file's bytes (a little more: chunks read whole to
        // be checked, gaps between shadow rows read to save read calls).
        // Reading each batch's shadow rows apart read 1.53x here.
        let read = fs.bytes.load(Ordering::SeqCst);
        assert!(
            read <= file_bytes + file_bytes / 4,
            "checkpointed {checkpointed}: {read} bytes read for a file of {file_bytes}"
        );
    }
    for batch in [1u64, 999, 10_000, 65_536, rows] {
        let mut got = Vec::with_capacity(want.len());
        for b in s.batches("a", batch).unwrap() {
            got.extend_from_slice(&b.unwrap().data);
        }
        assert!(got == want, "batch {batch}: wrong data");
    }
    assert!(s.read("a").unwrap().data == want, "read");
}

#[test]
fn read_ahead_streams_an_unchecksummed_tail_and_stops_when_dropped() {
    let (fs, s, mut want) = saved_large();
    // Appended rows are past the checksummed bytes until a checkpoint.
    let extra: Vec<u32> = (0..3000u32).map(|v| v ^ 0xdead_beef).collect();
    s.append("a", ArrayRef::of(&[1000, 3], &extra)).unwrap();
    want.extend(extra.iter().flat_map(|v| v.to_le_bytes()));
    for batch in [1000u64, 10_000, 333_333] {
        fs.bytes.store(0, Ordering::SeqCst);
        let mut got = Vec::with_capacity(want.len());
        for b in s.batches("a", batch).unwrap() {
            got.extend_from_slice(&b.unwrap().data);
        }
        assert!(got == want, "batch {batch}: wrong data");
        assert_eq!(fs.bytes.load(Ordering::SeqCst), want.len() as u64);
    }
    // Streams dropped early, many times: the helpers stop, and the
    // store goes on working.
    for _ in 0..50 {
        let mut it = s.batches("a", 1000).unwrap();
        assert!(it.next().unwrap().is_ok());
    }
    s.append("a", ArrayRef::of(&[1000, 3], &extra)).unwrap();
    s.checkpoint().unwrap();
    assert!(s.verify().unwrap().is_clean());
}

#[test]
fn a_damaged_chunk_fails_the_first_batch_that_touches_it() {
    for (fs, s, _) in [saved(), saved_large()] {
        let file = s.view("a").unwrap().path().to_path_buf();
        // Damage the last byte of chunk 1: a batch ending inside chunk 1
        // must already fail, although it does not return that byte.
        let mut bytes = fs.inner.read_file(&file).unwrap();
        bytes[2 * CHUNK_BYTES as usize - 1] ^= 1;
        fs.inner.write_file(&file, bytes);
        let first_row_in_chunk_1 = CHUNK_BYTES / 12 + 1;
        let mut it = s.batches("a", first_row_in_chunk_1 + 10).unwrap();
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none(), "the stream ends after an error");
        // A batch within chunk 0 is fine.
        let mut it = s.batches("a", 1000).unwrap();
        assert!(it.next().unwrap().is_ok());
    }
}

/// Stream "a" with `batch` rows through `next`, or through
/// `read_next_into` on odd batches when `mixed`: the bytes of the
/// batches that came, and the first error (after which the stream must
/// be over).
fn stream_all(s: &Store, batch: u64, mixed: bool) -> (Vec<u8>, Option<Error>) {
    let mut it = s.batches("a", batch).unwrap();
    let mut got = Vec::new();
    let mut k = 0u64;
    loop {
        let step = if mixed && k % 2 == 1 {
            let n = it.next_rows();
            if n == 0 {
                None
            } else {
                let mut buf = vec![0u8; (n * it.row_bytes()) as usize];
                Some(it.read_next_into(&mut buf).map(|_| buf))
            }
        } else {
            it.next().map(|r| r.map(|d| d.data))
        };
        match step {
            None => return (got, None),
            Some(Ok(b)) => got.extend_from_slice(&b),
            Some(Err(e)) => {
                assert!(it.next().is_none(), "the stream ends after an error");
                return (got, Some(e));
            }
        }
        k += 1;
    }
}

#[test]
fn read_ahead_hands_out_every_batch_before_a_damaged_chunk_then_fails() {
    let (fs, s, want) = saved_large();
    assert!(s.batches("a", 1000).unwrap().reads_ahead());
    let file = s.view("a").unwrap().path().to_path_buf();
    let mut bytes = fs.inner.read_file(&file).unwrap();
    let bad = 7 * CHUNK_BYTES as usize + 12_345;
    bytes[bad] ^= 0x40;
    fs.inner.write_file(&file, bytes);
    for batch in [1u64, 1000, 10_000, 87_382, 300_000] {
        for mixed in [false, true] {
            let (got, err) = stream_all(&s, batch, mixed);
            let e = err.unwrap_or_else(|| panic!("batch {batch}: no error"));
            assert!(
                matches!(e, Error::ChecksumMismatch { chunk: 7, .. }),
                "batch {batch}: {e}"
            );
            // Every batch that ends before chunk 7 came, and right.
            let bb = batch as usize * 12;
            let whole = (7 * CHUNK_BYTES as usize) / bb * bb;
            assert_eq!(got.len(), whole, "batch {batch}: bytes before the error");
            assert!(got == want[..whole], "batch {batch}: wrong data");
        }
    }
}

#[test]
fn read_ahead_serves_next_and_read_next_into_alike() {
    let (_, s, want) = saved_large();
    for batch in [7u64, 4096, 87_381, 1 << 20] {
        let (got, err) = stream_all(&s, batch, true);
        assert!(err.is_none(), "batch {batch}: {err:?}");
        assert!(got == want, "batch {batch}: wrong data");
    }
    // Rows deleted from the end leave checksummed bytes past the rows: the
    // workers read them too (to check their chunk) and drop them.
    let rows = want.len() as u64 / 12;
    let last: Vec<i64> = (rows as i64 - 5..rows as i64).collect();
    s.delete_rows("a", &last).unwrap();
    s.checkpoint().unwrap();
    assert!(s.batches("a", 1000).unwrap().reads_ahead());
    for mixed in [false, true] {
        let (got, err) = stream_all(&s, 1000, mixed);
        assert!(err.is_none());
        assert!(got == want[..want.len() - 60]);
    }
}

#[test]
fn read_ahead_turns_a_failed_read_into_an_error_never_wrong_data() {
    let (fs, s, want) = saved_large();
    let mut failures = 0;
    for n in [0u64, 1, 3, 10, 25, 39, 41, 42] {
        for batch in [1000u64, 50_000] {
            fs.inner.set_plan(FaultPlan {
                fail_read_at: Some(n),
                ..FaultPlan::default()
            });
            let (got, err) = stream_all(&s, batch, false);
            fs.inner.set_plan(FaultPlan::default());
            assert!(
                got == want[..got.len()],
                "read {n}, batch {batch}: wrong data"
            );
            match err {
                Some(e) => {
                    failures += 1;
                    assert!(e.to_string().contains("/s/"), "read {n}: {e}");
                }
                None => assert_eq!(got.len(), want.len(), "read {n}: short stream"),
            }
        }
    }
    assert!(
        failures >= 14,
        "only {failures} streams saw the failed read"
    );
    // Streams dropped at every point while the helper works ahead.
    for stop in [0usize, 1, 2, 5, 17, 40] {
        let mut it = s.batches("a", 7000).unwrap();
        for _ in 0..stop {
            assert!(it.next().unwrap().is_ok());
        }
    }
    assert!(s.verify().unwrap().is_clean());
}

/// A 12 MB array of u64 with rows replaced over several commits (shadow
/// rows in several places), deleted at the start, middle and end, and
/// appended after the replacements (several extents), and its model.
fn mapped_array() -> (Counting, Store, Vec<u64>) {
    let (fs, s) = counting_store();
    let rows = 1_500_000u64;
    let mut model: Vec<u64> = (0..rows).map(|i| i * 3).collect();
    s.save("a", ArrayRef::of(&[rows], &model)).unwrap();
    let mut x = 99u64;
    for round in 0..5u64 {
        let idx = random_rows(&mut x, 3000, model.len());
        let vals: Vec<u64> = idx.iter().map(|&i| (round + 1) << 40 | i as u64).collect();
        s.replace("a", &idx, ArrayRef::of(&[idx.len() as u64], &vals))
            .unwrap();
        for (i, v) in idx.iter().zip(&vals) {
            model[*i as usize] = *v;
        }
        let extra: Vec<u64> = (0..20_000u64).map(|v| v | round << 50).collect();
        s.append("a", ArrayRef::of(&[extra.len() as u64], &extra))
            .unwrap();
        model.extend_from_slice(&extra);
        let n = model.len() as i64;
        let del = [0, 1, 700_000 + round as i64, n - 1];
        s.delete_rows("a", &del).unwrap();
        for d in del.iter().rev() {
            model.remove(*d as usize);
        }
    }
    (fs, s, model)
}

/// [`mapped_array`] with the model's bytes, for each of: before and after
/// a checkpoint, `check(checkpointed)` (after asserting the array is still
/// not identity-mapped and has replaced rows).
fn mapped_array_both_ways(check: impl Fn(&Store, &[u8], bool)) -> (Counting, Store, Vec<u8>) {
    let (fs, s, model) = mapped_array();
    let want: Vec<u8> = model.iter().flat_map(|v| v.to_le_bytes()).collect();
    for checkpoint in [false, true] {
        if checkpoint {
            s.checkpoint().unwrap();
        }
        let (meta, _) = s.array_snapshot("a").unwrap();
        assert!(!meta.is_identity() && meta.rowmap.extents().len() > 3);
        assert!(!meta.remap.is_empty());
        check(&s, &want, checkpoint);
    }
    (fs, s, want)
}

/// Damage one byte of each kind of region of "a" in turn: a live row, a
/// deleted row (row 0's slot) and a shadow row; `check(at)` runs with the
/// damage, and the file is restored after each.
fn with_each_region_damaged(fs: &Counting, s: &Store, check: impl Fn(u64)) {
    let file = s.view("a").unwrap().path().to_path_buf();
    let (meta, _) = s.array_snapshot("a").unwrap();
    let shadow = *meta.remap.values().max().unwrap();
    for at in [8 * 900_000 + 3, 5, shadow * 8 + 1] {
        let orig = fs.inner.read_file(&file).unwrap();
        let mut bad = orig.clone();
        bad[at as usize] ^= 0x10;
        fs.inner.write_file(&file, bad);
        check(at);
        fs.inner.write_file(&file, orig);
    }
}

#[test]
fn whole_reads_of_a_mapped_array_match_the_model_and_check_every_chunk() {
    let (fs, s, want) = mapped_array_both_ways(|s, want, checkpoint| {
        let (meta, _) = s.array_snapshot("a").unwrap();
        assert!(
            mapped_read_pays(&meta, want),
            "the two-thread path is taken"
        );
        assert!(s.read("a").unwrap().data == want, "checkpoint {checkpoint}");
        let mut buf = vec![7u8; want.len()];
        s.reader("a").unwrap().read_into(&mut buf).unwrap();
        assert!(buf == want);
    });
    // Every whole read with a damaged region fails naming the chunk.
    with_each_region_damaged(&fs, &s, |at| match s.read("a") {
        Err(Error::ChecksumMismatch { chunk, .. }) => {
            assert_eq!(chunk, at / CHUNK_BYTES, "byte {at}")
        }
        other => panic!("byte {at}: {:?}", other.map(|d| d.data.len())),
    });
    assert!(s.read("a").unwrap().data == want);
    // A failed read at every point: an error, never wrong data.
    for n in [0u64, 2, 9, 30, 47] {
        fs.inner.set_plan(FaultPlan {
            fail_read_at: Some(n),
            ..FaultPlan::default()
        });
        let r = s.read("a");
        fs.inner.set_plan(FaultPlan::default());
        match r {
            Ok(d) => assert!(d.data == want, "read {n}: wrong data"),
            Err(e) => assert!(e.to_string().contains("/s/"), "read {n}: {e}"),
        }
    }
}

/// Gathers and range reads through views of an array with replaced,
/// deleted and appended rows match the model, before and after the
/// snapshot's slot index is built (enough rows looked up), and on the next
/// snapshot after more changes (the index is rebuilt, never reused).
#[test]
fn view_gathers_match_the_model_before_and_after_the_slot_index() {
    let (_, s, mut model) = mapped_array();
    let mut x = 5u64;
    for round in 0..3u64 {
        let v = s.view("a").unwrap();
        let (meta, _) = s.array_snapshot("a").unwrap();
        assert!(
            meta.slot_index(0).is_none(),
            "round {round}: built too early"
        );
        let n = model.len();
        let mut built = false;
        for k in 0..40 {
            let idx: Vec<i64> = random_rows(&mut x, 500, n)
                .into_iter()
                .rev()
                .chain([0, n as i64 - 1, -1])
                .collect();
            let got = v.gather(&idx).unwrap().to_vec::<u64>().unwrap();
            let want: Vec<u64> = idx
                .iter()
                .map(|&i| model[if i < 0 { n - 1 } else { i as usize }])
                .collect();
            assert!(got == want, "round {round}, gather {k}: wrong rows");
            let (start, end) = (k * 7_000, k * 7_000 + 3_000);
            let mut out = vec![0u8; 3_000 * 8];
            v.read_range_into(start as u64, end as u64, &mut out)
                .unwrap();
            let want: Vec<u8> = model[start..end]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            assert!(out == want, "round {round}, range {start}..{end}");
            built |= v.meta.slot_index(0).is_some();
        }
        assert!(built, "round {round}: the slot index was never built");
        // More history: a new snapshot, whose index starts empty.
        let idx = random_rows(&mut x, 2_000, model.len());
        let vals: Vec<u64> = idx.iter().map(|&i| (round + 9) << 44 | i as u64).collect();
        s.replace("a", &idx, ArrayRef::of(&[idx.len() as u64], &vals))
            .unwrap();
        for (i, v) in idx.iter().zip(&vals) {
            model[*i as usize] = *v;
        }
        s.delete_rows("a", &[3, 400_000]).unwrap();
        model.remove(400_000);
        model.remove(3);
    }
}

/// Streams of an array with replaced, deleted and appended rows go through
/// the read-ahead workers (helper thread included) and match the model for
/// any batch size, before and after a checkpoint; damage to a live row, a
/// deleted row or a shadow row fails the stream naming the chunk, with
/// every batch before it right; a failed read anywhere is an error, never
/// wrong data.
#[test]
fn read_ahead_streams_a_mapped_array_and_checks_every_chunk() {
    let (fs, s, want) = mapped_array_both_ways(|s, want, checkpoint| {
        for batch in [1u64 << 20, 100_000, 65_537, 10_000, 777] {
            assert!(s.batches("a", batch).unwrap().reads_ahead());
            for mixed in [false, true] {
                let (got, err) = stream_all(s, batch, mixed);
                assert!(err.is_none(), "batch {batch}: {err:?}");
                assert!(
                    got == want,
                    "checkpoint {checkpoint}, batch {batch}: wrong data"
                );
            }
        }
    });
    with_each_region_damaged(&fs, &s, |at| {
        for batch in [100_000u64, 4_096] {
            let (got, err) = stream_all(&s, batch, false);
            match err {
                Some(Error::ChecksumMismatch { chunk, .. }) => {
                    assert_eq!(chunk, at / CHUNK_BYTES, "byte {at}")
                }
                other => panic!("byte {at}, batch {batch}: {other:?}"),
            }
            assert!(
                got == want[..got.len()],
                "byte {at}: wrong data before the error"
            );
        }
    });
    let mut failures = 0;
    for n in [0u64, 1, 4, 9, 13] {
        fs.inner.set_plan(FaultPlan {
            fail_read_at: Some(n),
            ..FaultPlan::default()
        });
        let (got, err) = stream_all(&s, 50_000, true);
        fs.inner.set_plan(FaultPlan::default());
        assert!(got == want[..got.len()], "read {n}: wrong data");
        match err {
            Some(_) => failures += 1,
            None => assert_eq!(got.len(), want.len(), "read {n}: short stream"),
        }
    }
    assert!(failures >= 4, "only {failures} streams saw the failed read");
    let (got, err) = stream_all(&s, 50_000, false);
    assert!(err.is_none() && got == want);
}

//! Writers keep the store within what readers accept (FORMAT.md §2.1,
//! A.12): a commit after which the MANIFEST could not be written is refused
//! with `LimitExceeded` and changes nothing; compacting makes room again.
//! (The cap is lowered through a hidden option; the real one is 1 GiB.)

mod common;

use common::{assert_verify_clean, snapshot};
use numvault::{ArrayRef, Error, OpenOptions, Store};

#[test]
fn a_commit_whose_checkpoint_would_be_too_large_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let opts = OpenOptions {
        max_manifest_bytes: 2048,
        ..OpenOptions::default()
    };
    let s = Store::open(d.path(), opts.clone()).unwrap();
    let rows: Vec<u64> = (0..1000).collect();
    s.save("a", ArrayRef::of(&[1000], &rows)).unwrap();
    // Each scattered replace adds remap entries (16 bytes each) to the
    // array's MANIFEST entry; deletes add extents.
    let mut refused = None;
    for k in 0..200i64 {
        let before = snapshot(&s).unwrap();
        let seq = s.last_seq();
        let idx = [k * 4 % 1000, (k * 4 + 501) % 1000];
        match s.replace("a", &idx, ArrayRef::of(&[2], &[7u64, 8])) {
            Ok(()) => {}
            Err(e) => {
                assert!(matches!(e, Error::LimitExceeded { limit: 2048, .. }), "{e}");
                assert!(e.to_string().contains("compact"), "{e}");
                assert_eq!(
                    snapshot(&s).unwrap(),
                    before,
                    "a refused commit changed the state"
                );
                assert_eq!(s.last_seq(), seq, "a refused commit was logged");
                refused = Some(k);
                break;
            }
        }
    }
    let k = refused.expect("the limit was never reached");
    assert!(k > 10, "refused too early, after {k} commits");
    // The state can be checkpointed, and compaction makes room again.
    s.checkpoint().unwrap();
    s.compact("a").unwrap();
    s.replace("a", &[0, 1], ArrayRef::of(&[2], &[1u64, 2]))
        .unwrap();
    let want = snapshot(&s).unwrap();
    s.close().unwrap();
    let s = Store::open(d.path(), opts).unwrap();
    assert_eq!(snapshot(&s).unwrap(), want);
    assert_verify_clean(&s, "after the limit");
}

#[test]
fn a_too_large_batch_of_deletes_is_refused_too() {
    let d = tempfile::tempdir().unwrap();
    let opts = OpenOptions {
        max_manifest_bytes: 4096,
        ..OpenOptions::default()
    };
    let s = Store::open(d.path(), opts).unwrap();
    let rows: Vec<u32> = (0..10_000).collect();
    s.save("a", ArrayRef::of(&[10_000], &rows)).unwrap();
    // Every other row: one extent each.
    let idx: Vec<i64> = (0..10_000).step_by(2).collect();
    let e = s.delete_rows("a", &idx).unwrap_err();
    assert!(matches!(e, Error::LimitExceeded { .. }), "{e}");
    assert_eq!(s.shape("a").unwrap(), vec![10_000]);
    s.delete_rows("a", &idx[..10]).unwrap();
    assert_eq!(s.shape("a").unwrap(), vec![9_990]);
}

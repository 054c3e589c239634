use super::*;

#[test]
fn names() {
    assert_eq!(array_name("", "a/b.npy"), "a/b");
    assert_eq!(array_name("g", "x.csv"), "g/x");
    assert_eq!(array_name("g/", "d.v/x.parquet"), "g/d.v/x");
    assert_eq!(array_name("", "noext"), "noext");
}

#[test]
fn hashes_are_stable_and_differ_by_algorithm() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("f");
    fs::write(&p, b"hello").unwrap();
    let n = AtomicU64::new(0);
    let x = hash_file(&p, HashAlgo::Xxh3, &n).unwrap();
    let b = hash_file(&p, HashAlgo::Blake3, &n).unwrap();
    let s = hash_file(&p, HashAlgo::Sha256, &n).unwrap();
    assert_eq!(
        s,
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    assert_eq!(b, blake3::hash(b"hello").to_hex().to_string());
    assert_eq!(x, format!("{:032x}", xxhash_rust::xxh3::xxh3_128(b"hello")));
    assert_eq!(n.load(Ordering::Relaxed), 15);
}

#[test]
fn npy_sources_stream_into_the_transaction() {
    use numvault::DType;
    let d = tempfile::tempdir().unwrap();
    let npy = |name: &str, dtype: DType, shape: &[u64], data: &[u8]| {
        let mut b = numvault_formats::npy::npy_header(dtype, shape).unwrap();
        b.extend_from_slice(data);
        let p = d.path().join(name);
        fs::write(&p, b).unwrap();
        p
    };
    let data: Vec<u8> = (0..120u8).collect();
    let c = npy("c.npy", DType::U16, &[20, 3], &data);
    let s = npy("s.npy", DType::F64, &[], &2.5f64.to_le_bytes());
    let e = npy("e.npy", DType::I8, &[4, 0], &[]);
    let bad = d.path().join("bad.npy");
    let good = fs::read(&c).unwrap();
    fs::write(&bad, &good[..good.len() - 1]).unwrap();
    let store = Store::open(d.path().join("st"), numvault::OpenOptions::default()).unwrap();
    let mut txn = store.begin().unwrap();
    assert_eq!(
        stream_npy(&mut txn, "c", &c, None).unwrap(),
        (vec!["c".to_string()], 20, 120)
    );
    assert_eq!(stream_npy(&mut txn, "s", &s, None).unwrap().1, 1);
    assert_eq!(stream_npy(&mut txn, "e", &e, None).unwrap().1, 4);
    let err = stream_npy(&mut txn, "bad", &bad, None).unwrap_err();
    assert!(
        err.contains("bad.npy") && err.contains("truncated"),
        "{err}"
    );
    assert!(!txn.has("bad"));
    txn.commit().unwrap();
    let got = store.read("c").unwrap();
    assert_eq!(
        (got.dtype, got.shape, got.data),
        (DType::U16, vec![20, 3], data)
    );
    assert_eq!(store.read("s").unwrap().shape, vec![1]);
    assert_eq!(store.read("e").unwrap().shape, vec![4, 0]);
}

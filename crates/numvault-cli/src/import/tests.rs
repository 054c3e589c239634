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

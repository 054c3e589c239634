use super::*;
use crate::formats::npy::swap_to_le;

#[test]
fn npz_stored_and_deflated() {
    let dir = tempfile::tempdir().unwrap();
    let a = sample(DType::F32, 6);
    let b = sample(DType::Complex128, 4);
    let mut bbe = b.clone();
    swap_to_le(&mut bbe, DType::Complex128); // make it big-endian
    let members = vec![
        (
            "a.npy",
            npy_bytes(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                &a,
            ),
        ),
        (
            "sub/b.npy",
            npy_bytes(
                "{'descr': '>c16', 'fortran_order': False, 'shape': (4,), }",
                &bbe,
            ),
        ),
        (
            "s.npy",
            npy_bytes(
                "{'descr': '<i8', 'fortran_order': False, 'shape': (), }",
                &7i64.to_le_bytes(),
            ),
        ),
    ];
    for (i, method) in [
        zip::CompressionMethod::Stored,
        zip::CompressionMethod::Deflated,
    ]
    .into_iter()
    .enumerate()
    {
        let p = write(
            dir.path(),
            &format!("t{i}.npz"),
            &zip_bytes(&members, method),
        );
        let got = load(&p).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].member.as_deref(), Some("a"));
        assert_eq!(
            (got[0].dtype, &got[0].shape, &got[0].data),
            (DType::F32, &vec![2, 3], &a)
        );
        assert_eq!(got[1].member.as_deref(), Some("sub/b"));
        assert_eq!(
            (got[1].dtype, &got[1].shape, &got[1].data),
            (DType::Complex128, &vec![4], &b)
        );
        assert_eq!(got[2].member.as_deref(), Some("s"));
        assert_eq!(
            (&got[2].shape, &got[2].data),
            (&vec![1], &7i64.to_le_bytes().to_vec())
        );
    }
    // Export to npz is refused with a helpful message.
    let err = export(&dir.path().join("o.npz"), DType::U8, &[1], &[1]).unwrap_err();
    assert!(
        err.to_string()
            .contains("export supports .npy, .csv and .parquet"),
        "{err}"
    );
}

#[test]
fn npz_rejects_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let member = npy_bytes(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (64,), }",
        &[0; 512],
    );
    let stored = zip_bytes(&[("x.npy", member.clone())], zip::CompressionMethod::Stored);
    let deflated = zip_bytes(&[("x.npy", member)], zip::CompressionMethod::Deflated);
    // Truncations and garbage.
    for (i, src) in [&stored, &deflated].into_iter().enumerate() {
        for cut in (0..src.len()).step_by(7) {
            let p = write(dir.path(), "cut.npz", &src[..cut]);
            assert!(load(&p).is_err(), "{i} cut at {cut}");
        }
    }
    let p = write(
        dir.path(),
        "garbage.npz",
        b"this is not a zip file at all, sorry",
    );
    assert!(load(&p).unwrap_err().to_string().contains("garbage.npz"));
    // A flipped data byte in a stored member fails the CRC check.
    let mut bad = stored.clone();
    let at = bad.windows(8).position(|w| w == [0u8; 8]).unwrap() + 100;
    bad[at] ^= 1;
    let p = write(dir.path(), "crc.npz", &bad);
    let err = load(&p).unwrap_err().to_string();
    assert!(err.contains("member 'x.npy'"), "{err}");
    // Corrupt every byte position of the deflated archive in turn: never a panic.
    for i in 0..deflated.len() {
        let mut d = deflated.clone();
        d[i] ^= 0x5a;
        let p = write(dir.path(), "flip.npz", &d);
        let _ = load(&p);
    }
    // A member with a bad npy inside names the member.
    let z = zip_bytes(
        &[("y.npy", b"nope".to_vec())],
        zip::CompressionMethod::Deflated,
    );
    let p = write(dir.path(), "inner.npz", &z);
    let err = load(&p).unwrap_err().to_string();
    assert!(
        err.contains("inner.npz") && err.contains("member 'y.npy'"),
        "{err}"
    );
    // Member whose header claims far more data than the archive holds.
    let z = zip_bytes(
        &[(
            "h.npy",
            npy_bytes(
                "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000000,), }",
                &[],
            ),
        )],
        zip::CompressionMethod::Deflated,
    );
    let p = write(dir.path(), "huge.npz", &z);
    assert!(load(&p).unwrap_err().to_string().contains("truncated"));
    // Empty archive.
    let p = write(
        dir.path(),
        "empty.npz",
        &zip_bytes(&[], zip::CompressionMethod::Stored),
    );
    assert!(load(&p).unwrap_err().to_string().contains("no arrays"));
}

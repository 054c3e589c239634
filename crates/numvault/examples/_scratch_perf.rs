// temporary profiling helper (to be deleted)
use numvault::*;
use std::time::Instant;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).cloned().unwrap_or_default();
    let dir = std::path::PathBuf::from("/work/main/target/bench-tmp/scratch");
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20);
    let data: Vec<f32> = (0..10_000_000).map(|i| i as f32).collect();
    match mode.as_str() {
        "setup" => {
            let _ = std::fs::remove_dir_all(&dir);
            let s = Store::open(&dir, OpenOptions::default()).unwrap();
            s.save("x", ArrayRef::of(&[1_000_000, 10], &data)).unwrap();
            s.close().unwrap();
        }
        "openrw" => {
            for _ in 0..n {
                let t = Instant::now();
                let s = Store::open(&dir, OpenOptions::default()).unwrap();
                let v = s.view("x").unwrap();
                let e = t.elapsed();
                eprintln!("open+view {:?}", e);
                drop(v);
                s.close().unwrap();
                if let Some(ms) = args.get(3).and_then(|s| s.parse::<u64>().ok()) {
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                }
            }
        }
        "ab_read" => {
            use std::os::unix::fs::FileExt;
            let b: &[u8] = bytemuck::cast_slice(&data);
            let src = dir.join("proto-src.bin");
            std::fs::write(&src, b).unwrap();
            let f = std::fs::File::open(&src).unwrap();
            let st = Store::open(&dir, OpenOptions::default()).unwrap();
            let mut out = vec![1u8; b.len()];
            let med = |v: &mut Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            let mut res: Vec<Vec<f64>> = vec![vec![]; 4];
            let names = [
                "std read_exact",
                "engine read_into",
                "seq pread+crc 1M",
                "par pread, crc thread",
            ];
            for r in 0..n {
                for k in 0..4 {
                    let k = (k + r) % 4;
                    let t = Instant::now();
                    match k {
                        0 => {
                            let mut g = std::fs::File::open(&src).unwrap();
                            std::io::Read::read_exact(&mut g, &mut out).unwrap();
                        }
                        1 => {
                            st.read_into("x", &mut out).unwrap();
                        }
                        2 => {
                            let mut x = 0u32;
                            for (c, p) in out.chunks_mut(1 << 20).enumerate() {
                                f.read_exact_at(p, (c << 20) as u64).unwrap();
                                x ^= crc32c::crc32c(p);
                            }
                            std::hint::black_box(x);
                        }
                        _ => {
                            std::thread::scope(|s| {
                                let (tx, rx) = std::sync::mpsc::sync_channel::<&[u8]>(16);
                                let h = s.spawn(move || {
                                    let mut x = 0u32;
                                    for p in rx {
                                        x ^= crc32c::crc32c(p);
                                    }
                                    x
                                });
                                for (c, p) in out.chunks_mut(1 << 20).enumerate() {
                                    f.read_exact_at(p, (c << 20) as u64).unwrap();
                                    let p: &[u8] = p;
                                    tx.send(p).unwrap();
                                }
                                drop(tx);
                                std::hint::black_box(h.join().unwrap());
                            });
                        }
                    }
                    res[k].push(t.elapsed().as_secs_f64() * 1e3);
                }
            }
            let base = med(&mut res[0].clone());
            for k in 0..4 {
                let mut v = res[k].clone();
                v.sort_by(f64::total_cmp);
                let v0 = v[0];
                eprintln!(
                    "{:24} min {:.2} med {:.2} ms  ratio(med) {:.2}",
                    names[k],
                    v0,
                    med(&mut v),
                    med(&mut res[k].clone()) / base
                );
            }
        }
        "ab_read2" => {
            use std::os::unix::fs::FileExt;
            let b: &[u8] = bytemuck::cast_slice(&data);
            let src = dir.join("proto-src.bin");
            std::fs::write(&src, b).unwrap();
            let f = std::fs::File::open(&src).unwrap();
            let map = unsafe { memmap2::Mmap::map(&f).unwrap() };
            std::hint::black_box(map.iter().step_by(4096).map(|&x| x as u64).sum::<u64>());
            let mut out = vec![1u8; b.len()];
            let med = |v: &mut Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            let names = [
                "std read_exact",
                "pread 1M no crc",
                "pread 1M + crc",
                "pread 256K + crc",
                "pread 64K + crc",
                "mmap copy 256K + crc",
                "pread 1M +crc 64K sub",
            ];
            let m = names.len();
            let mut res: Vec<Vec<f64>> = vec![vec![]; m];
            for r in 0..n {
                for k in 0..m {
                    let k = (k + r) % m;
                    let t = Instant::now();
                    let mut x = 0u32;
                    match k {
                        0 => {
                            let mut g = std::fs::File::open(&src).unwrap();
                            std::io::Read::read_exact(&mut g, &mut out).unwrap();
                        }
                        1 => {
                            for (c, p) in out.chunks_mut(1 << 20).enumerate() {
                                f.read_exact_at(p, (c << 20) as u64).unwrap();
                            }
                        }
                        2 | 3 | 4 => {
                            let sz = [1usize << 20, 256 << 10, 64 << 10][k - 2];
                            for (c, p) in out.chunks_mut(sz).enumerate() {
                                f.read_exact_at(p, (c * sz) as u64).unwrap();
                                x = crc32c::crc32c_append(x, p);
                            }
                        }
                        5 => {
                            let sz = 256 << 10;
                            for (p, q) in out.chunks_mut(sz).zip(map.chunks(sz)) {
                                p.copy_from_slice(q);
                                x = crc32c::crc32c_append(x, p);
                            }
                        }
                        _ => {
                            for (c, p) in out.chunks_mut(1 << 20).enumerate() {
                                f.read_exact_at(p, (c << 20) as u64).unwrap();
                                for q in p.chunks(64 << 10) {
                                    x = crc32c::crc32c_append(x, q);
                                }
                            }
                        }
                    }
                    std::hint::black_box(x);
                    res[k].push(t.elapsed().as_secs_f64() * 1e3);
                }
            }
            let base = med(&mut res[0].clone());
            for k in 0..m {
                let mut v = res[k].clone();
                v.sort_by(f64::total_cmp);
                let v0 = v[0];
                eprintln!(
                    "{:24} min {:.2} med {:.2} ms  ratio(med) {:.2}",
                    names[k],
                    v0,
                    med(&mut v),
                    med(&mut res[k].clone()) / base
                );
            }
        }
        "many_setup" => {
            let d = dir.join("many");
            let _ = std::fs::remove_dir_all(&d);
            let s = Store::open(&d, OpenOptions::default()).unwrap();
            let small: Vec<f32> = (0..1000).map(|i| i as f32).collect();
            for i in 0..1000 {
                s.save(
                    &format!("group{}/a{i:04}", i % 10),
                    ArrayRef::of(&[100, 10], &small),
                )
                .unwrap();
            }
            s.close().unwrap();
        }
        "many_open" => {
            let d = dir.join("many");
            let ro = args.get(3).is_some_and(|s| s == "ro");
            let mut v = vec![];
            for _ in 0..n {
                let t = Instant::now();
                let s = if ro {
                    Store::open(&d, OpenOptions::read_only()).unwrap()
                } else {
                    Store::open(&d, OpenOptions::default()).unwrap()
                };
                v.push(t.elapsed().as_secs_f64() * 1e6);
                std::hint::black_box(s.len());
                drop(s);
            }
            v.sort_by(f64::total_cmp);
            eprintln!(
                "open 1000 arrays: min {:.1} med {:.1} us",
                v[0],
                v[v.len() / 2]
            );
        }
        "ab_write" => {
            use std::os::unix::fs::FileExt;
            let b: &[u8] = bytemuck::cast_slice(&data);
            let med = |v: &mut Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            let names = [
                "fs::write",
                "pwrite whole",
                "pwrite 8M",
                "pwrite 1M",
                "pwrite 256K",
                "crc256K+pwrite 256K",
                "crc1M + pwrite 1M",
                "crc 8M + pwrite 8M",
            ];
            let m = names.len();
            let mut res: Vec<Vec<f64>> = vec![vec![]; m];
            let p1 = dir.join("w1");
            for r in 0..n {
                for k in 0..m {
                    let k = (k + r) % m;
                    let t = Instant::now();
                    let mut x = 0u32;
                    if k == 0 {
                        std::fs::write(&p1, b).unwrap();
                    } else {
                        let g = std::fs::OpenOptions::new()
                            .write(true)
                            .create_new(true)
                            .open(&p1)
                            .unwrap();
                        let (sz, crc) = [
                            (b.len(), false),
                            (b.len(), false),
                            (8 << 20, false),
                            (1 << 20, false),
                            (256 << 10, false),
                            (256 << 10, true),
                            (1 << 20, true),
                            (8 << 20, true),
                        ][k];
                        for (c, p) in b.chunks(sz).enumerate() {
                            if crc {
                                x ^= crc32c::crc32c(p);
                            }
                            g.write_all_at(p, (c * sz) as u64).unwrap();
                        }
                    }
                    std::hint::black_box(x);
                    res[k].push(t.elapsed().as_secs_f64() * 1e3);
                    std::fs::File::open(&p1).unwrap().sync_data().unwrap();
                    std::fs::remove_file(&p1).unwrap();
                    std::fs::File::open(&dir).unwrap().sync_all().unwrap();
                }
            }
            let base = med(&mut res[0].clone());
            for k in 0..m {
                let mut v = res[k].clone();
                v.sort_by(f64::total_cmp);
                let v0 = v[0];
                eprintln!(
                    "{:24} min {:.2} med {:.2} ms  ratio(med) {:.2}",
                    names[k],
                    v0,
                    med(&mut v),
                    med(&mut res[k].clone()) / base
                );
            }
        }
        "ab_save" => {
            use std::os::unix::fs::FileExt;
            let b: &[u8] = bytemuck::cast_slice(&data);
            let st = Store::open(&dir, OpenOptions::default()).unwrap();
            let med = |v: &mut Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            let mut res: Vec<Vec<f64>> = vec![vec![]; 4];
            let names = [
                "std fs::write",
                "engine save",
                "seq crc+pwrite 1M",
                "par crc thread + write",
            ];
            let p1 = dir.join("w1");
            for r in 0..n {
                for k in 0..4 {
                    let k = (k + r) % 4;
                    let t = Instant::now();
                    match k {
                        0 => {
                            std::fs::write(&p1, b).unwrap();
                        }
                        1 => {
                            st.save("y", ArrayRef::of(&[1_000_000, 10], &data)).unwrap();
                        }
                        2 => {
                            let g = std::fs::OpenOptions::new()
                                .write(true)
                                .create_new(true)
                                .open(&p1)
                                .unwrap();
                            let mut x = 0u32;
                            for (c, p) in b.chunks(1 << 20).enumerate() {
                                x ^= crc32c::crc32c(p);
                                g.write_all_at(p, (c << 20) as u64).unwrap();
                            }
                            std::hint::black_box(x);
                        }
                        _ => {
                            let g = std::fs::OpenOptions::new()
                                .write(true)
                                .create_new(true)
                                .open(&p1)
                                .unwrap();
                            std::thread::scope(|s| {
                                let h = s.spawn(|| {
                                    b.chunks(1 << 20).map(crc32c::crc32c).collect::<Vec<_>>()
                                });
                                g.write_all_at(b, 0).unwrap();
                                std::hint::black_box(h.join().unwrap());
                            });
                        }
                    }
                    res[k].push(t.elapsed().as_secs_f64() * 1e3);
                    if k == 1 {
                        st.checkpoint().unwrap();
                    } else {
                        std::fs::File::open(&p1).unwrap().sync_data().unwrap();
                        std::fs::remove_file(&p1).unwrap();
                        std::fs::File::open(&dir).unwrap().sync_all().unwrap();
                    }
                }
            }
            let base = med(&mut res[0].clone());
            for k in 0..4 {
                let mut v = res[k].clone();
                v.sort_by(f64::total_cmp);
                let v0 = v[0];
                eprintln!(
                    "{:24} min {:.2} med {:.2} ms  ratio(med) {:.2}",
                    names[k],
                    v0,
                    med(&mut v),
                    med(&mut res[k].clone()) / base
                );
            }
        }
        "openrw_split" => {
            let med = |v: &mut Vec<f64>| {
                v.sort_by(f64::total_cmp);
                (v[0], v[v.len() / 2])
            };
            let (mut a, mut b, mut c, mut d) = (vec![], vec![], vec![], vec![]);
            let ro = args.get(3).is_some_and(|s| s == "ro");
            for _ in 0..n {
                let t = Instant::now();
                let s = if ro {
                    Store::open(&dir, OpenOptions::read_only()).unwrap()
                } else {
                    Store::open(&dir, OpenOptions::default()).unwrap()
                };
                let t1 = t.elapsed();
                let v = s.view("x").unwrap();
                let t2 = t.elapsed();
                let s2 = Store::open(&dir, OpenOptions::read_only()).unwrap();
                let v2 = s2.view("x").unwrap();
                let t3 = t.elapsed();
                a.push(t1.as_secs_f64() * 1e6);
                b.push((t2 - t1).as_secs_f64() * 1e6);
                c.push((t3 - t2).as_secs_f64() * 1e6);
                drop(v2);
                drop(s2);
                drop(v);
                let t = Instant::now();
                s.close().unwrap();
                d.push(t.elapsed().as_secs_f64() * 1e6);
            }
            eprintln!(
                "open (min,med) {:?} us; view {:?}; then ro open+view {:?}; close {:?}",
                med(&mut a),
                med(&mut b),
                med(&mut c),
                med(&mut d)
            );
        }
        "openrw_phases" => {
            use std::os::unix::fs::FileExt;
            for _ in 0..n {
                let t = Instant::now();
                let f = std::fs::File::open(dir.join("MANIFEST")).unwrap();
                let a = t.elapsed();
                let mut b = [0u8; 64];
                let t = Instant::now();
                let _ = f.read_at(&mut b, 0).unwrap();
                let r = t.elapsed();
                let t = Instant::now();
                let s = Store::open(&dir, OpenOptions::default()).unwrap();
                let v = s.view("x").unwrap();
                let e = t.elapsed();
                eprintln!(
                    "open manifest {:?} pread {:?}  then store open+view {:?}",
                    a, r, e
                );
                drop(v);
                s.close().unwrap();
            }
        }
        "read" => {
            let s = Store::open(&dir, OpenOptions::default()).unwrap();
            let mut buf = vec![0u8; 40_000_000];
            for _ in 0..n {
                let t = Instant::now();
                s.read_into("x", &mut buf).unwrap();
                eprintln!("read_into {:?}", t.elapsed());
            }
        }
        "save" => {
            let s = Store::open(&dir, OpenOptions::default()).unwrap();
            for _ in 0..n {
                let t = Instant::now();
                s.save("y", ArrayRef::of(&[1_000_000, 10], &data)).unwrap();
                eprintln!("save {:?}", t.elapsed());
                s.checkpoint().unwrap();
            }
        }
        "crc2" => {
            let b: &[u8] = bytemuck::cast_slice(&data);
            let small = &b[..1 << 20];
            for _ in 0..5 {
                let t = Instant::now();
                let mut c = 0;
                for _ in 0..40 {
                    c ^= crc32c::crc32c(std::hint::black_box(small));
                }
                eprintln!("crc 1MiB x40 (cache) {:?} {c}", t.elapsed());
            }
            let mut buf = vec![1u8; b.len()];
            for _ in 0..5 {
                let t = Instant::now();
                buf.copy_from_slice(b);
                eprintln!("memcpy 40MB warm {:?}", t.elapsed());
                std::hint::black_box(&buf);
            }
            for _ in 0..5 {
                let t = Instant::now();
                let s: u64 = b
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                    .fold(0, |a, x| a ^ x);
                eprintln!("read-only scan 40MB {:?} {s}", t.elapsed());
            }
            for _ in 0..5 {
                let t = Instant::now();
                let c = crc32c::crc32c(b);
                eprintln!("crc 40MB {:?} {c}", t.elapsed());
            }
        }
        "proto" => {
            use std::os::unix::fs::FileExt;
            let b: &[u8] = bytemuck::cast_slice(&data);
            let src = dir.join("proto-src.bin");
            std::fs::write(&src, b).unwrap();
            let f = std::fs::File::open(&src).unwrap();
            let mut out = vec![1u8; b.len()];
            let med = |v: &mut Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            let pieces = [64usize << 10, 256 << 10, 1 << 20];
            let mut plain = Vec::new();
            let mut seq: Vec<Vec<f64>> = vec![Vec::new(); 3];
            let mut par = Vec::new();
            for _ in 0..n {
                let t = Instant::now();
                f.read_exact_at(&mut out, 0).unwrap();
                plain.push(t.elapsed().as_secs_f64() * 1e3);
                for (k, &piece) in pieces.iter().enumerate() {
                    let t = Instant::now();
                    let mut sums = Vec::new();
                    for (c, p) in out.chunks_mut(piece).enumerate() {
                        f.read_exact_at(p, (c * piece) as u64).unwrap();
                        sums.push(crc32c::crc32c(p));
                    }
                    seq[k].push(t.elapsed().as_secs_f64() * 1e3);
                    std::hint::black_box(&sums);
                }
                let t = Instant::now();
                std::thread::scope(|s| {
                    let (tx, rx) = std::sync::mpsc::sync_channel::<&[u8]>(16);
                    let h = s.spawn(move || {
                        let mut x = 0u32;
                        for p in rx {
                            x ^= crc32c::crc32c(p);
                        }
                        x
                    });
                    for (c, p) in out.chunks_mut(1 << 20).enumerate() {
                        f.read_exact_at(p, (c << 20) as u64).unwrap();
                        let p: &[u8] = p;
                        tx.send(p).unwrap();
                    }
                    drop(tx);
                    std::hint::black_box(h.join().unwrap());
                });
                par.push(t.elapsed().as_secs_f64() * 1e3);
            }
            let pm = med(&mut plain);
            eprintln!("READ plain median {pm:.2} ms");
            for (k, v) in seq.iter_mut().enumerate() {
                let m = med(v);
                eprintln!(
                    "  seq piece {}K: {m:.2} ms ratio {:.2}",
                    pieces[k] >> 10,
                    m / pm
                );
            }
            let m = med(&mut par);
            eprintln!("  parallel 1M: {m:.2} ms ratio {:.2}", m / pm);
            let mut plain = Vec::new();
            let mut seq: Vec<Vec<f64>> = vec![Vec::new(); 3];
            let mut par = Vec::new();
            for i in 0..n {
                let p1 = dir.join(format!("w1-{i}"));
                let t = Instant::now();
                std::fs::write(&p1, b).unwrap();
                plain.push(t.elapsed().as_secs_f64() * 1e3);
                std::fs::File::open(&p1).unwrap().sync_data().unwrap();
                std::fs::remove_file(&p1).unwrap();
                for (k, &piece) in pieces.iter().enumerate() {
                    let t = Instant::now();
                    let g = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&p1)
                        .unwrap();
                    let mut sums = Vec::new();
                    for (c, p) in b.chunks(piece).enumerate() {
                        sums.push(crc32c::crc32c(p));
                        g.write_all_at(p, (c * piece) as u64).unwrap();
                    }
                    seq[k].push(t.elapsed().as_secs_f64() * 1e3);
                    std::hint::black_box(&sums);
                    g.sync_data().unwrap();
                    std::fs::remove_file(&p1).unwrap();
                }
                let t = Instant::now();
                let g = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&p1)
                    .unwrap();
                std::thread::scope(|s| {
                    let h = s.spawn(|| b.chunks(1 << 20).map(crc32c::crc32c).collect::<Vec<_>>());
                    g.write_all_at(b, 0).unwrap();
                    std::hint::black_box(h.join().unwrap());
                });
                par.push(t.elapsed().as_secs_f64() * 1e3);
                g.sync_data().unwrap();
                std::fs::remove_file(&p1).unwrap();
            }
            let pm = med(&mut plain);
            eprintln!("WRITE plain median {pm:.2} ms");
            for (k, v) in seq.iter_mut().enumerate() {
                let m = med(v);
                eprintln!(
                    "  seq piece {}K: {m:.2} ms ratio {:.2}",
                    pieces[k] >> 10,
                    m / pm
                );
            }
            let m = med(&mut par);
            eprintln!("  parallel: {m:.2} ms ratio {:.2}", m / pm);
        }
        "crc2" => {
            let b: &[u8] = bytemuck::cast_slice(&data);
            let small = &b[..1 << 20];
            for _ in 0..5 {
                let t = Instant::now();
                let mut c = 0;
                for _ in 0..40 {
                    c ^= crc32c::crc32c(std::hint::black_box(small));
                }
                eprintln!("crc 1MiB x40 (cache) {:?} {c}", t.elapsed());
            }
            let mut buf = vec![1u8; b.len()];
            for _ in 0..5 {
                let t = Instant::now();
                buf.copy_from_slice(b);
                eprintln!("memcpy 40MB warm {:?}", t.elapsed());
                std::hint::black_box(&buf);
            }
            for _ in 0..5 {
                let t = Instant::now();
                let s: u64 = b
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                    .fold(0, |a, x| a ^ x);
                eprintln!("read-only scan 40MB {:?} {s}", t.elapsed());
            }
            for _ in 0..5 {
                let t = Instant::now();
                let c = crc32c::crc32c(b);
                eprintln!("crc 40MB {:?} {c}", t.elapsed());
            }
        }
        "proto" => {
            use std::os::unix::fs::FileExt;
            let b: &[u8] = bytemuck::cast_slice(&data);
            let src = dir.join("proto-src.bin");
            std::fs::write(&src, b).unwrap();
            let f = std::fs::File::open(&src).unwrap();
            let mut out = vec![1u8; b.len()];
            let piece: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1 << 20);
            for _ in 0..n {
                let t = Instant::now();
                f.read_exact_at(&mut out, 0).unwrap();
                let a = t.elapsed();
                let t = Instant::now();
                let mut sums = Vec::new();
                for (c, p) in out.chunks_mut(piece).enumerate() {
                    f.read_exact_at(p, (c * piece) as u64).unwrap();
                    sums.push(crc32c::crc32c(p));
                }
                let bb = t.elapsed();
                std::hint::black_box(&sums);
                eprintln!(
                    "read plain {:?}  read+crc seq {:?}  ratio {:.2}",
                    a,
                    bb,
                    bb.as_secs_f64() / a.as_secs_f64()
                );
            }
            for i in 0..n {
                let p1 = dir.join(format!("w1-{i}"));
                let p2 = dir.join(format!("w2-{i}"));
                let t = Instant::now();
                std::fs::write(&p1, b).unwrap();
                let a = t.elapsed();
                let t = Instant::now();
                let g = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&p2)
                    .unwrap();
                let mut sums = Vec::new();
                for (c, p) in b.chunks(piece).enumerate() {
                    sums.push(crc32c::crc32c(p));
                    g.write_all_at(p, (c * piece) as u64).unwrap();
                }
                let bb = t.elapsed();
                std::hint::black_box(&sums);
                eprintln!(
                    "write plain {:?}  crc+write seq {:?}  ratio {:.2}",
                    a,
                    bb,
                    bb.as_secs_f64() / a.as_secs_f64()
                );
                std::fs::File::open(&p1).unwrap().sync_data().unwrap();
                std::fs::File::open(&p2).unwrap().sync_data().unwrap();
                std::fs::remove_file(&p1).unwrap();
                std::fs::remove_file(&p2).unwrap();
            }
        }
        "crc" => {
            let b: &[u8] = bytemuck::cast_slice(&data);
            for _ in 0..n {
                let t = Instant::now();
                let c = crc32c::crc32c(b);
                eprintln!("crc {:?} {c}", t.elapsed());
            }
            let mut buf = vec![0u8; b.len()];
            for _ in 0..n {
                let t = Instant::now();
                buf.copy_from_slice(b);
                eprintln!("memcpy {:?}", t.elapsed());
                std::hint::black_box(&buf);
            }
        }
        _ => panic!("mode"),
    }
}

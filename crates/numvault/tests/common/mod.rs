//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use numvault::sim::SimVfs;
use numvault::{ArrayRef, DType, OpenOptions, Store, Sync};

/// One array's full contents.
#[derive(Clone, PartialEq, Eq)]
pub struct Arr {
    pub dtype: DType,
    pub shape: Vec<u64>,
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Arr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Full data would drown the failure message: show length + hash.
        write!(
            f,
            "Arr({} {:?}, {} bytes, crc {:08x})",
            self.dtype,
            self.shape,
            self.data.len(),
            crc32(&self.data)
        )
    }
}

fn crc32(b: &[u8]) -> u32 {
    // Tiny FNV-style digest; only used for readable debug output.
    b.iter().fold(0x811c_9dc5u32, |h, &x| {
        (h ^ u32::from(x)).wrapping_mul(0x0100_0193)
    })
}

/// The full contents of a store: name -> array.
pub type Snap = BTreeMap<String, Arr>;

/// Read every array of the store (through `list`, `dtype`, `shape`, `read`).
pub fn snapshot(store: &Store) -> Result<Snap, String> {
    let mut out = Snap::new();
    for name in store.list("") {
        let a = store
            .read(&name)
            .map_err(|e| format!("read('{name}'): {e}"))?;
        let shape = store.shape(&name).map_err(|e| format!("shape: {e}"))?;
        let dtype = store.dtype(&name).map_err(|e| format!("dtype: {e}"))?;
        if shape != a.shape || dtype != a.dtype {
            return Err(format!(
                "'{name}': shape/dtype {shape:?}/{dtype} disagree with read() {:?}/{}",
                a.shape, a.dtype
            ));
        }
        out.insert(
            name,
            Arr {
                dtype: a.dtype,
                shape: a.shape,
                data: a.data,
            },
        );
    }
    Ok(out)
}

/// [`snapshot`], plus every tagged version: an entry `@<tag>` (empty) and
/// `@<tag>/<array>` for each of its arrays. The workloads of the crash
/// tests model versions so (see `workload::Op::Snapshot`).
pub fn snapshot_with_versions(store: &Store) -> Result<Snap, String> {
    let mut out = snapshot(store)?;
    for v in store
        .versions(None)
        .map_err(|e| format!("versions(): {e}"))?
    {
        let Some(tag) = v.tag else { continue };
        let h = store.at(v.id).map_err(|e| format!("at({}): {e}", v.id))?;
        for (name, a) in snapshot(&h).map_err(|e| format!("version '{tag}': {e}"))? {
            out.insert(format!("@{tag}/{name}"), a);
        }
        out.insert(format!("@{tag}"), version_marker());
    }
    Ok(out)
}

/// The model's entry standing for a version's existence.
pub fn version_marker() -> Arr {
    Arr {
        dtype: DType::U8,
        shape: vec![0],
        data: Vec::new(),
    }
}

/// Panics unless `verify()` is clean.
pub fn assert_verify_clean(store: &Store, ctx: &str) {
    let rep = store
        .verify()
        .unwrap_or_else(|e| panic!("{ctx}: verify() failed: {e}"));
    assert!(
        rep.is_clean(),
        "{ctx}: verify() found problems: {:#?}",
        rep.problems
    );
}

/// Deterministic pseudo-random bytes.
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(0x2545_F491_4F6C_DD1D);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// An owned array of `dtype` and `shape` filled from `seed`.
pub fn arr(dtype: DType, shape: &[u64], seed: u64) -> Arr {
    let n = shape.iter().product::<u64>() as usize * dtype.itemsize();
    Arr {
        dtype,
        shape: shape.to_vec(),
        data: bytes(n, seed),
    }
}

impl Arr {
    pub fn r(&self) -> ArrayRef<'_> {
        ArrayRef::new(self.dtype, &self.shape, &self.data)
    }
    pub fn row_bytes(&self) -> usize {
        self.shape[1..].iter().product::<u64>() as usize * self.dtype.itemsize()
    }
    pub fn rows(&self) -> u64 {
        self.shape[0]
    }
    pub fn row(&self, i: usize) -> &[u8] {
        let rb = self.row_bytes();
        &self.data[i * rb..(i + 1) * rb]
    }
}

/// The path used for stores on a [`SimVfs`].
pub const SIM_PATH: &str = "/store";

pub fn sim_opts(sim: &SimVfs, sync: Sync) -> OpenOptions {
    OpenOptions::default().vfs(Arc::new(sim.clone())).sync(sync)
}

pub fn open_sim(sim: &SimVfs, sync: Sync) -> numvault::Result<Store> {
    Store::open(SIM_PATH, sim_opts(sim, sync))
}

/// Every durability policy. Group uses a delay far beyond any test so that
/// fault points stay deterministic (its timer never fires mid-test).
pub fn policies() -> Vec<Sync> {
    vec![
        Sync::Always,
        Sync::Group {
            max_delay: Duration::from_secs(3600),
        },
        Sync::OnFlush,
        Sync::Never,
    ]
}

pub fn policy_name(s: Sync) -> &'static str {
    match s {
        Sync::Always => "Always",
        Sync::Group { .. } => "Group",
        Sync::OnFlush => "OnFlush",
        Sync::Never => "Never",
    }
}

/// Paths of the data files (`*.nvd`) of a store on a SimVfs.
pub fn sim_data_files(sim: &SimVfs) -> Vec<PathBuf> {
    sim.files()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "nvd"))
        .collect()
}

/// Data files of a store directory on the real file system.
pub fn std_data_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("data"))
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "nvd"));
    v.sort();
    v
}

/// Copy a store directory (as a process crash would leave it) without LOCK.
pub fn copy_store_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if name == "LOCK" {
            continue;
        }
        let src = e.path();
        if src.is_dir() {
            copy_store_dir(&src, &to.join(&name));
        } else {
            std::fs::copy(&src, to.join(&name)).unwrap();
        }
    }
}

/// Number of cases for property tests: `NUMVAULT_PROPTEST_CASES` or `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("NUMVAULT_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Print a suite's summary line and append it to the file named by
/// `NUMVAULT_FIGURES`, if set (docs/RELIABILITY.md collects these).
pub fn report_figures(line: &str) {
    eprintln!("{line}");
    if let Ok(p) = std::env::var("NUMVAULT_FIGURES") {
        use std::io::Write as _;
        let mut out = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(p)
            .unwrap();
        writeln!(out, "{line}").unwrap();
    }
}

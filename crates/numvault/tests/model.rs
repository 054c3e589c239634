//! Model-based property test: random sequences of every operation against
//! an in-memory model, on a real directory and on the simulated file system.
//! Versions (FORMAT.md §15) are part of it: snapshots (tagged or not),
//! restores of all or one array, deletions and gc; every retained version
//! (at most [`MAX_VERSIONS`] per case) is read back through every read path
//! after every step, after reopen and after crashes.
//!
//! After every step the store must agree with the model through every read
//! path (list, shape, dtype, read, read_into, read_rows, read_indices, views,
//! batches), `verify()` must be clean, and an invalid operation must fail
//! with the error the model predicts and change nothing. Steps include
//! close/reopen, a simulated process crash (and a power loss under
//! `Sync::Always`) with recovery, and a read-only handle kept open across
//! steps and refreshed.
//!
//! `NUMVAULT_PROPTEST_CASES` sets the number of cases per backend.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::*;
use numvault::sim::SimVfs;
use numvault::{ArrayRef, Batch, DType, Error, OpenOptions, Store, Sync};
use proptest::prelude::*;

// -------------------------------------------------------------------- model

const NAMES: [&str; 8] = ["a", "b", "g/x", "g/y", "g/h", "g/h/z", "g.x", "gg/q"];
const PREFIXES: [&str; 8] = ["", "g", "g/", "g/h", "g/h/z", "gg", "a", "nope"];
fn invalid_names() -> Vec<String> {
    vec![
        String::new(),
        "/a".into(),
        "a/".into(),
        "a//b".into(),
        ".".into(),
        "a/../b".into(),
        "a\0b".into(),
        "a\nb".into(),
        "n".repeat(256),
    ]
}
/// Element types and row shapes (1-D, 2-D, 3-D, and rows of zero bytes).
const KINDS: [(DType, &[u64]); 6] = [
    (DType::U8, &[]),
    (DType::F32, &[3]),
    (DType::I16, &[2, 2]),
    (DType::F64, &[1]),
    (DType::Complex128, &[]),
    (DType::I8, &[0]),
];

#[derive(Clone, Debug, PartialEq)]
struct MArr {
    dtype: DType,
    row_shape: Vec<u64>,
    rows: Vec<Vec<u8>>,
}

impl MArr {
    fn row_bytes(&self) -> usize {
        row_bytes(self.dtype, &self.row_shape)
    }
    fn shape(&self) -> Vec<u64> {
        let mut s = vec![self.rows.len() as u64];
        s.extend_from_slice(&self.row_shape);
        s
    }
    fn data(&self) -> Vec<u8> {
        self.rows.concat()
    }
}

fn row_bytes(dtype: DType, row_shape: &[u64]) -> usize {
    row_shape.iter().product::<u64>() as usize * dtype.itemsize()
}

type Model = BTreeMap<String, MArr>;

/// The error kinds the model predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    NotFound,
    AlreadyExists,
    InvalidName,
    IndexOutOfRange,
    DuplicateIndex,
    ShapeMismatch,
    DTypeMismatch,
    InvalidArgument,
}

fn kind_of(e: &Error) -> Option<Kind> {
    Some(match e {
        Error::NotFound(_) => Kind::NotFound,
        Error::AlreadyExists(_) => Kind::AlreadyExists,
        Error::InvalidName { .. } => Kind::InvalidName,
        Error::IndexOutOfRange { .. } => Kind::IndexOutOfRange,
        Error::DuplicateIndex { .. } => Kind::DuplicateIndex,
        Error::ShapeMismatch { .. } => Kind::ShapeMismatch,
        Error::DTypeMismatch { .. } => Kind::DTypeMismatch,
        Error::InvalidArgument(_) => Kind::InvalidArgument,
        _ => return None,
    })
}

/// A fully resolved mutation.
#[derive(Clone, Debug)]
enum Mut {
    Save {
        name: String,
        dtype: DType,
        shape: Vec<u64>,
        data: Vec<u8>,
    },
    Append {
        name: String,
        dtype: DType,
        shape: Vec<u64>,
        data: Vec<u8>,
    },
    Replace {
        name: String,
        idx: Vec<i64>,
        dtype: DType,
        shape: Vec<u64>,
        data: Vec<u8>,
    },
    Delete {
        name: String,
        idx: Vec<i64>,
    },
    Compact {
        name: String,
    },
    Drop {
        name: String,
    },
    Rename {
        from: String,
        to: String,
    },
}

fn norm(i: i64, rows: usize) -> Option<usize> {
    let r = rows as i64;
    let j = if i < 0 { i + r } else { i };
    (0..r).contains(&j).then_some(j as usize)
}

/// Does `data` hold whole rows of `shape`? (the engine's `ArrayRef::check`)
fn data_fits(dtype: DType, shape: &[u64], data: &[u8]) -> bool {
    !shape.is_empty() && shape.iter().product::<u64>() as usize * dtype.itemsize() == data.len()
}

/// Apply `m` to the model with the engine's order of checks; on error the
/// model is unchanged.
fn model_apply(model: &mut Model, m: &Mut) -> Result<(), Kind> {
    let invalid = invalid_names();
    let get = |model: &Model, name: &str| model.get(name).cloned().ok_or(Kind::NotFound);
    let check_rows = |a: &MArr, dtype: DType, shape: &[u64], data: &[u8], rows: Option<usize>| {
        if dtype != a.dtype {
            return Err(Kind::DTypeMismatch);
        }
        if shape.len() != a.row_shape.len() + 1
            || shape[1..] != a.row_shape[..]
            || rows.is_some_and(|r| r as u64 != shape[0])
        {
            return Err(Kind::ShapeMismatch);
        }
        if !data_fits(dtype, shape, data) {
            return Err(Kind::InvalidArgument);
        }
        Ok(())
    };
    let split = |rb: usize, rows: u64, data: &[u8]| -> Vec<Vec<u8>> {
        (0..rows as usize)
            .map(|i| data[i * rb..(i + 1) * rb].to_vec())
            .collect()
    };
    match m {
        Mut::Save {
            name,
            dtype,
            shape,
            data,
        } => {
            if invalid.contains(name) {
                return Err(Kind::InvalidName);
            }
            if !data_fits(*dtype, shape, data) {
                return Err(Kind::InvalidArgument);
            }
            let rb = row_bytes(*dtype, &shape[1..]);
            model.insert(
                name.clone(),
                MArr {
                    dtype: *dtype,
                    row_shape: shape[1..].to_vec(),
                    rows: split(rb, shape[0], data),
                },
            );
        }
        Mut::Append {
            name,
            dtype,
            shape,
            data,
        } => {
            let a = get(model, name)?;
            check_rows(&a, *dtype, shape, data, None)?;
            let rows = split(a.row_bytes(), shape[0], data);
            model.get_mut(name).unwrap().rows.extend(rows);
        }
        Mut::Replace {
            name,
            idx,
            dtype,
            shape,
            data,
        } => {
            let a = get(model, name)?;
            check_rows(&a, *dtype, shape, data, Some(idx.len()))?;
            let mut seen = Vec::new();
            for &i in idx {
                seen.push(norm(i, a.rows.len()).ok_or(Kind::IndexOutOfRange)?);
            }
            let mut sorted = seen.clone();
            sorted.sort_unstable();
            sorted.dedup();
            if sorted.len() != seen.len() {
                return Err(Kind::DuplicateIndex);
            }
            let rows = split(a.row_bytes(), shape[0], data);
            let t = model.get_mut(name).unwrap();
            for (j, i) in seen.into_iter().enumerate() {
                t.rows[i] = rows[j].clone();
            }
        }
        Mut::Delete { name, idx } => {
            let a = get(model, name)?;
            let mut del = Vec::new();
            for &i in idx {
                del.push(norm(i, a.rows.len()).ok_or(Kind::IndexOutOfRange)?);
            }
            let t = model.get_mut(name).unwrap();
            t.rows = std::mem::take(&mut t.rows)
                .into_iter()
                .enumerate()
                .filter(|(i, _)| !del.contains(i))
                .map(|(_, r)| r)
                .collect();
        }
        Mut::Compact { name } => {
            get(model, name)?;
        }
        Mut::Drop { name } => {
            get(model, name)?;
            model.remove(name);
        }
        Mut::Rename { from, to } => {
            if invalid.contains(to) {
                return Err(Kind::InvalidName);
            }
            let a = get(model, from)?;
            if from == to {
                return Ok(());
            }
            if model.contains_key(to) {
                return Err(Kind::AlreadyExists);
            }
            model.remove(from);
            model.insert(to.clone(), a);
        }
    }
    Ok(())
}

fn store_apply(s: &Store, m: &Mut) -> numvault::Result<()> {
    match m {
        Mut::Save {
            name,
            dtype,
            shape,
            data,
        } => s.save(name, ArrayRef::new(*dtype, shape, data)),
        Mut::Append {
            name,
            dtype,
            shape,
            data,
        } => s.append(name, ArrayRef::new(*dtype, shape, data)),
        Mut::Replace {
            name,
            idx,
            dtype,
            shape,
            data,
        } => s.replace(name, idx, ArrayRef::new(*dtype, shape, data)),
        Mut::Delete { name, idx } => s.delete_rows(name, idx),
        Mut::Compact { name } => s.compact(name).map(|_| ()),
        Mut::Drop { name } => s.drop_array(name),
        Mut::Rename { from, to } => s.rename(from, to),
    }
}

fn batch_add<'a>(b: &mut Batch<'a>, m: &'a Mut) {
    match m {
        Mut::Save {
            name,
            dtype,
            shape,
            data,
        } => b.save(name, ArrayRef::new(*dtype, shape, data)),
        Mut::Append {
            name,
            dtype,
            shape,
            data,
        } => b.append(name, ArrayRef::new(*dtype, shape, data)),
        Mut::Replace {
            name,
            idx,
            dtype,
            shape,
            data,
        } => b.replace(name, idx, ArrayRef::new(*dtype, shape, data)),
        Mut::Delete { name, idx } => b.delete_rows(name, idx),
        Mut::Compact { name } => b.compact(name),
        Mut::Drop { name } => b.drop_array(name),
        Mut::Rename { from, to } => b.rename(from, to),
    };
}

/// The array name an error about `m` of kind `k` must mention.
fn err_name(m: &Mut, k: Kind) -> &str {
    match m {
        Mut::Rename { to, .. } if k == Kind::AlreadyExists => to,
        _ => mut_array_name(m),
    }
}

fn mut_array_name(m: &Mut) -> &str {
    match m {
        Mut::Save { name, .. }
        | Mut::Append { name, .. }
        | Mut::Replace { name, .. }
        | Mut::Delete { name, .. }
        | Mut::Compact { name }
        | Mut::Drop { name } => name,
        Mut::Rename { from, .. } => from,
    }
}

// ------------------------------------------------------- generated actions

/// An index selector, resolved against the row count at run time.
#[derive(Clone, Copy, Debug)]
struct Sel {
    v: u16,
    neg: bool,
}

impl Sel {
    fn valid(self, rows: usize) -> i64 {
        if rows == 0 {
            return self.oob(rows);
        }
        let i = (self.v as usize % rows) as i64;
        if self.neg {
            i - rows as i64
        } else {
            i
        }
    }
    fn oob(self, rows: usize) -> i64 {
        let k = (self.v % 3) as i64;
        if self.neg {
            -(rows as i64) - 1 - k
        } else {
            rows as i64 + k
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Defect {
    None,
    /// Another dtype.
    DType,
    /// A trailing dimension off by one (or an extra one for 1-D rows).
    Trailing,
    /// One dimension more.
    Ndim,
    /// 0-d input.
    ZeroD,
    /// Data one byte longer than the shape needs.
    DataLen,
    /// replace: one index out of range / delete: idem.
    OutOfRange,
    /// replace: an index twice.
    Duplicate,
    /// replace: one row more than indices.
    RowCount,
}

#[derive(Clone, Debug)]
enum Act {
    Save {
        name: usize,
        kind: usize,
        rows: u8,
        seed: u64,
        defect: Defect,
    },
    SaveInvalidName {
        which: usize,
    },
    Append {
        name: usize,
        rows: u8,
        seed: u64,
        defect: Defect,
    },
    Replace {
        name: usize,
        sel: Vec<Sel>,
        seed: u64,
        defect: Defect,
    },
    Delete {
        name: usize,
        sel: Vec<Sel>,
        defect: Defect,
    },
    Compact {
        name: usize,
    },
    Drop {
        name: usize,
    },
    Rename {
        from: usize,
        /// Index into NAMES, or past it into the invalid names.
        to: usize,
    },
    Batch(Vec<Act>),
    Flush,
    Checkpoint,
    Reopen,
    /// Process crash (or power loss, under `Sync::Always`) and recovery.
    Crash {
        power_loss: bool,
    },
    /// Open (or refresh) a read-only handle and compare it too.
    Reader,
    /// Take a version (deleting the oldest first if [`MAX_VERSIONS`] are
    /// kept).
    Snapshot {
        tagged: bool,
    },
    /// Restore everything, or one array (`name`), from a retained version.
    Restore {
        which: usize,
        name: Option<usize>,
    },
    DeleteVersion {
        which: usize,
    },
    Gc,
}

/// Versions kept at once per case: reading each after every step keeps the
/// test linear in its length.
const MAX_VERSIONS: usize = 4;

/// A retained version: its id, tag and contents.
#[derive(Clone, Debug)]
struct MVersion {
    id: u64,
    tag: Option<String>,
    model: Model,
}

fn other_dtype(d: DType) -> DType {
    if d == DType::U16 {
        DType::I16
    } else {
        DType::U16
    }
}

/// Shape and data for `rows` rows of array `a` with `defect` applied.
fn rows_input(a: &MArr, rows: usize, seed: u64, defect: Defect) -> (DType, Vec<u64>, Vec<u8>) {
    let mut dtype = a.dtype;
    let mut shape = vec![rows as u64];
    shape.extend_from_slice(&a.row_shape);
    match defect {
        Defect::DType => dtype = other_dtype(dtype),
        Defect::Trailing => {
            if shape.len() > 1 {
                shape[1] += 1;
            } else {
                shape.push(2);
            }
        }
        Defect::Ndim => shape.push(1),
        Defect::ZeroD => shape.clear(),
        _ => {}
    }
    let n = if shape.is_empty() {
        dtype.itemsize()
    } else {
        shape.iter().product::<u64>() as usize * dtype.itemsize()
    };
    let mut data = bytes(n, seed);
    if let Defect::DataLen = defect {
        data.push(0xAB);
    }
    (dtype, shape, data)
}

/// Turn a generated action into concrete mutations against `model`.
fn resolve(act: &Act, model: &Model) -> Option<Mut> {
    let invalid = invalid_names();
    Some(match act {
        Act::Save {
            name,
            kind,
            rows,
            seed,
            defect,
        } => {
            let (dtype, rs) = KINDS[*kind];
            let mut shape = vec![u64::from(*rows)];
            shape.extend_from_slice(rs);
            let mut data = bytes(
                shape.iter().product::<u64>() as usize * dtype.itemsize(),
                *seed,
            );
            match defect {
                Defect::ZeroD => shape.clear(),
                Defect::DataLen => data.push(1),
                _ => {}
            }
            Mut::Save {
                name: NAMES[*name].into(),
                dtype,
                shape,
                data,
            }
        }
        Act::SaveInvalidName { which } => Mut::Save {
            name: invalid[*which % invalid.len()].clone(),
            dtype: DType::U8,
            shape: vec![1],
            data: vec![7],
        },
        Act::Append {
            name,
            rows,
            seed,
            defect,
        } => {
            let name = NAMES[*name];
            let a = model.get(name).cloned().unwrap_or(MArr {
                dtype: DType::U8,
                row_shape: vec![],
                rows: vec![],
            });
            let (dtype, shape, data) = rows_input(&a, usize::from(*rows), *seed, *defect);
            Mut::Append {
                name: name.into(),
                dtype,
                shape,
                data,
            }
        }
        Act::Replace {
            name,
            sel,
            seed,
            defect,
        } => {
            let name = NAMES[*name];
            let a = model.get(name).cloned().unwrap_or(MArr {
                dtype: DType::F32,
                row_shape: vec![3],
                rows: vec![],
            });
            let n = a.rows.len();
            let mut idx: Vec<i64> = Vec::new();
            for s in sel {
                let i = s.valid(n);
                if !idx.iter().any(|&j| norm(j, n) == norm(i, n)) {
                    idx.push(i);
                }
            }
            match defect {
                Defect::OutOfRange => {
                    let pos = sel.first().map_or(0, |s| s.v as usize % (idx.len() + 1));
                    idx.insert(
                        pos,
                        sel.first().map_or(Sel { v: 0, neg: false }, |s| *s).oob(n),
                    );
                }
                Defect::Duplicate if n > 0 && !idx.is_empty() => {
                    // The same row by its negative and positive index.
                    let j = norm(idx[0], n).unwrap() as i64;
                    idx.push(if idx[0] < 0 { j } else { j - n as i64 });
                }
                _ => {}
            }
            let rows = idx.len() + usize::from(matches!(defect, Defect::RowCount));
            let d = match defect {
                Defect::RowCount | Defect::OutOfRange | Defect::Duplicate => Defect::None,
                d => *d,
            };
            let (dtype, shape, data) = rows_input(&a, rows, *seed, d);
            Mut::Replace {
                name: name.into(),
                idx,
                dtype,
                shape,
                data,
            }
        }
        Act::Delete { name, sel, defect } => {
            let name = NAMES[*name];
            let n = model.get(name).map_or(0, |a| a.rows.len());
            let mut idx: Vec<i64> = sel.iter().map(|s| s.valid(n)).collect();
            if n > 0 {
                if let Some(&first) = idx.first() {
                    idx.push(first); // repeated indices delete once
                }
            }
            if let Defect::OutOfRange = defect {
                idx.push(sel.first().map_or(Sel { v: 1, neg: true }, |s| *s).oob(n));
            }
            if n == 0 && !matches!(defect, Defect::OutOfRange) {
                idx.clear();
            }
            Mut::Delete {
                name: name.into(),
                idx,
            }
        }
        Act::Compact { name } => Mut::Compact {
            name: NAMES[*name].into(),
        },
        Act::Drop { name } => Mut::Drop {
            name: NAMES[*name].into(),
        },
        Act::Rename { from, to } => Mut::Rename {
            from: NAMES[*from].into(),
            to: if *to < NAMES.len() {
                NAMES[*to].into()
            } else {
                invalid[(*to - NAMES.len()) % invalid.len()].clone()
            },
        },
        _ => return None,
    })
}

fn sel_strategy() -> impl Strategy<Value = Vec<Sel>> {
    prop::collection::vec(
        (any::<u16>(), any::<bool>()).prop_map(|(v, neg)| Sel { v, neg }),
        0..5,
    )
}

fn defect_strategy(choices: &'static [Defect]) -> impl Strategy<Value = Defect> {
    // Mostly valid inputs.
    prop_oneof![
        6 => Just(Defect::None),
        1 => prop::sample::select(choices),
    ]
}

fn name_strategy() -> impl Strategy<Value = usize> {
    0..NAMES.len()
}

fn mutation_strategy() -> impl Strategy<Value = Act> {
    prop_oneof![
        4 => (name_strategy(), 0..KINDS.len(), 0u8..7, any::<u64>(),
              defect_strategy(&[Defect::ZeroD, Defect::DataLen]))
            .prop_map(|(name, kind, rows, seed, defect)| Act::Save { name, kind, rows, seed, defect }),
        3 => (name_strategy(), 0u8..4, any::<u64>(),
              defect_strategy(&[Defect::DType, Defect::Trailing, Defect::Ndim, Defect::ZeroD, Defect::DataLen]))
            .prop_map(|(name, rows, seed, defect)| Act::Append { name, rows, seed, defect }),
        3 => (name_strategy(), sel_strategy(), any::<u64>(),
              defect_strategy(&[Defect::OutOfRange, Defect::Duplicate, Defect::RowCount, Defect::DType, Defect::Trailing, Defect::DataLen]))
            .prop_map(|(name, sel, seed, defect)| Act::Replace { name, sel, seed, defect }),
        2 => (name_strategy(), sel_strategy(), defect_strategy(&[Defect::OutOfRange]))
            .prop_map(|(name, sel, defect)| Act::Delete { name, sel, defect }),
        1 => name_strategy().prop_map(|name| Act::Compact { name }),
        1 => name_strategy().prop_map(|name| Act::Drop { name }),
        1 => (name_strategy(), 0..NAMES.len() + 3).prop_map(|(from, to)| Act::Rename { from, to }),
    ]
}

fn act_strategy() -> impl Strategy<Value = Act> {
    prop_oneof![
        16 => mutation_strategy(),
        1 => (0usize..9).prop_map(|which| Act::SaveInvalidName { which }),
        2 => prop::collection::vec(mutation_strategy(), 1..5).prop_map(Act::Batch),
        1 => Just(Act::Flush),
        1 => Just(Act::Checkpoint),
        1 => Just(Act::Reopen),
        1 => any::<bool>().prop_map(|power_loss| Act::Crash { power_loss }),
        1 => Just(Act::Reader),
        2 => any::<bool>().prop_map(|tagged| Act::Snapshot { tagged }),
        1 => (0usize..8, prop::option::of(name_strategy()))
            .prop_map(|(which, name)| Act::Restore { which, name }),
        1 => (0usize..8).prop_map(|which| Act::DeleteVersion { which }),
        1 => Just(Act::Gc),
    ]
}

// ------------------------------------------------------------------ backends

enum Backend {
    Std { dirs: Vec<tempfile::TempDir> },
    Sim { sim: SimVfs },
}

impl Backend {
    fn path(&self) -> PathBuf {
        match self {
            Backend::Std { dirs } => dirs.last().unwrap().path().join("store"),
            Backend::Sim { .. } => PathBuf::from(SIM_PATH),
        }
    }
    fn opts(&self, sync: Sync) -> OpenOptions {
        match self {
            Backend::Std { .. } => OpenOptions::default().sync(sync),
            Backend::Sim { sim } => sim_opts(sim, sync),
        }
    }
    fn open(&self, sync: Sync) -> Store {
        Store::open(self.path(), self.opts(sync)).unwrap()
    }
    fn open_reader(&self) -> Store {
        let mut o = self.opts(Sync::OnFlush);
        o.read_only = true;
        o.create = false;
        Store::open(self.path(), o).unwrap()
    }
    fn data_files(&self) -> usize {
        match self {
            Backend::Std { .. } => std_data_files(&self.path()).len(),
            Backend::Sim { sim } => sim_data_files(sim).len(),
        }
    }
    /// Leave the files as a crash would and switch to them.
    fn crash(&mut self, power_loss: bool) {
        match self {
            Backend::Std { dirs } => {
                let from = dirs.last().unwrap().path().join("store");
                let d = tempfile::tempdir().unwrap();
                copy_store_dir(&from, &d.path().join("store"));
                dirs.push(d);
            }
            Backend::Sim { sim } => *sim = sim.after_crash(!power_loss),
        }
    }
}

// ------------------------------------------------------------------ checks

fn expect_err<T: std::fmt::Debug>(r: numvault::Result<T>, want: Kind, name: &str, ctx: &str) {
    match r {
        Ok(v) => panic!("{ctx}: expected {want:?}, got Ok({v:?})"),
        Err(e) => {
            assert_eq!(kind_of(&e), Some(want), "{ctx}: wrong error: {e}");
            if want != Kind::InvalidName && !name.is_empty() {
                assert!(
                    e.to_string().contains(name),
                    "{ctx}: message {e:?} does not name '{name}'"
                );
            }
        }
    }
}

/// Every read path of `s` against the model.
fn check_store(s: &Store, model: &Model, ctx: &str) {
    let names: Vec<String> = model.keys().cloned().collect();
    assert_eq!(s.list(""), names, "{ctx}: list(\"\")");
    assert_eq!(s.len(), model.len(), "{ctx}: len");
    for p in PREFIXES {
        let t = p.trim_end_matches('/');
        let want: Vec<String> = if t.is_empty() {
            names.clone()
        } else {
            names
                .iter()
                .filter(|n| *n == t || n.starts_with(&format!("{t}/")))
                .cloned()
                .collect()
        };
        assert_eq!(s.list(p), want, "{ctx}: list({p:?})");
    }
    for n in NAMES {
        if !model.contains_key(n) {
            assert!(!s.has(n), "{ctx}: has({n})");
            expect_err(s.read(n), Kind::NotFound, n, ctx);
            expect_err(s.view(n), Kind::NotFound, n, ctx);
            expect_err(s.shape(n), Kind::NotFound, n, ctx);
        }
    }
    for (name, a) in model {
        let ctx = format!("{ctx}: array '{name}'");
        let rows = a.rows.len();
        let rb = a.row_bytes();
        let data = a.data();
        assert!(s.has(name), "{ctx}: has");
        assert_eq!(s.shape(name).unwrap(), a.shape(), "{ctx}: shape");
        assert_eq!(s.dtype(name).unwrap(), a.dtype, "{ctx}: dtype");
        let info = s.info(name).unwrap();
        assert_eq!(
            (info.shape, info.dtype),
            (a.shape(), a.dtype),
            "{ctx}: info"
        );
        let r = s.read(name).unwrap_or_else(|e| panic!("{ctx}: read: {e}"));
        assert_eq!(
            (r.dtype, &r.shape),
            (a.dtype, &a.shape()),
            "{ctx}: read meta"
        );
        assert!(r.data == data, "{ctx}: read data differs");
        let mut out = vec![0u8; data.len()];
        assert_eq!(s.read_into(name, &mut out).unwrap(), a.shape(), "{ctx}");
        assert!(out == data, "{ctx}: read_into data differs");
        let mut wrong = vec![0u8; data.len() + rb.max(1)];
        expect_err(
            s.read_into(name, &mut wrong),
            Kind::InvalidArgument,
            name,
            &ctx,
        );
        // Row ranges, clamped like a Python slice.
        for (st, en) in [
            (0, rows),
            (1, rows + 5),
            (rows / 2, rows / 2 + 1),
            (5, 2),
            (rows, rows + 1),
        ] {
            let got = s.read_rows(name, st as u64, en as u64).unwrap();
            let e = en.min(rows);
            let b = st.min(e);
            assert_eq!(
                got.shape[0],
                (e - b) as u64,
                "{ctx}: read_rows({st},{en}) rows"
            );
            assert!(
                got.data == data[b * rb..e * rb],
                "{ctx}: read_rows({st},{en})"
            );
        }
        // Gathers: unsorted, repeated, negative.
        let idx: Vec<i64> = if rows == 0 {
            vec![]
        } else {
            let r = rows as i64;
            vec![r - 1, 0, -1, -r, r / 2, 0, -(r / 2) - 1]
        };
        let want: Vec<u8> = idx
            .iter()
            .flat_map(|&i| a.rows[norm(i, rows).unwrap()].clone())
            .collect();
        let g = s.read_indices(name, &idx).unwrap();
        assert_eq!(g.shape[0], idx.len() as u64, "{ctx}");
        assert!(g.data == want, "{ctx}: read_indices");
        expect_err(
            s.read_indices(name, &[rows as i64]),
            Kind::IndexOutOfRange,
            name,
            &ctx,
        );
        expect_err(
            s.read_indices(name, &[-(rows as i64) - 1]),
            Kind::IndexOutOfRange,
            name,
            &ctx,
        );
        // The view.
        let v = s.view(name).unwrap();
        assert_eq!(
            (v.shape(), v.dtype(), v.rows()),
            (a.shape(), a.dtype, rows as u64),
            "{ctx}"
        );
        for i in 0..rows {
            assert!(
                v.row(i as i64).unwrap() == a.rows[i],
                "{ctx}: view.row({i})"
            );
            assert!(
                v.row(i as i64 - rows as i64).unwrap() == a.rows[i],
                "{ctx}: view.row({})",
                i as i64 - rows as i64
            );
        }
        expect_err(v.row(rows as i64), Kind::IndexOutOfRange, name, &ctx);
        expect_err(v.row(-(rows as i64) - 1), Kind::IndexOutOfRange, name, &ctx);
        assert!(v.gather(&idx).unwrap().data == want, "{ctx}: view.gather");
        if let Some(c) = v.contiguous() {
            assert!(c == data, "{ctx}: view.contiguous");
        }
        assert!(v.to_array().unwrap().data == data, "{ctx}: view.to_array");
        for (st, en) in [(0, rows), (rows / 3, rows - rows / 3), (rows, rows)] {
            let mut out = vec![0u8; (en - st) * rb];
            v.read_range_into(st as u64, en as u64, &mut out).unwrap();
            assert!(
                out == data[st * rb..en * rb],
                "{ctx}: read_range_into({st},{en})"
            );
        }
        let mut out = vec![0u8; rb];
        expect_err(
            v.read_range_into(rows as u64, rows as u64 + 1, &mut out),
            Kind::IndexOutOfRange,
            name,
            &ctx,
        );
        // Batches.
        for n in [1u64, 3] {
            let mut all = Vec::new();
            let mut count = 0;
            for b in s.batches(name, n).unwrap() {
                let b = b.unwrap_or_else(|e| panic!("{ctx}: batches({n}): {e}"));
                assert!(
                    b.shape[0] >= 1 && b.shape[0] <= n,
                    "{ctx}: batch of {} rows",
                    b.shape[0]
                );
                assert_eq!(b.shape[1..], a.row_shape[..], "{ctx}");
                count += b.shape[0];
                all.extend_from_slice(&b.data);
            }
            assert_eq!(count, rows as u64, "{ctx}: batches({n}) rows");
            assert!(all == data, "{ctx}: batches({n}) data");
        }
        expect_err(
            s.batches(name, 0).map(|_| ()),
            Kind::InvalidArgument,
            name,
            &ctx,
        );
    }
    assert_verify_clean(s, ctx);
}

// ------------------------------------------------------------------ runner

/// A version step against the store and the model.
fn version_step(s: &Store, act: &Act, model: &mut Model, versions: &mut Vec<MVersion>, ctx: &str) {
    match act {
        Act::Snapshot { tagged } => {
            if versions.len() >= MAX_VERSIONS {
                let old = versions.remove(0);
                s.delete_snapshot(old.id).unwrap();
            }
            let tag = tagged.then(|| format!("t{}", s.last_seq()));
            let id = s.snapshot(tag.as_deref()).unwrap();
            assert_eq!(id, s.last_seq(), "{ctx}: a version's id is its commit");
            if let Some(t) = &tag {
                // A tag is unique.
                let e = s.snapshot(Some(t)).unwrap_err();
                assert!(matches!(e, Error::InvalidArgument(_)), "{ctx}: {e}");
            }
            versions.push(MVersion {
                id,
                tag,
                model: model.clone(),
            });
        }
        Act::Restore { which, name } => {
            let Some(v) = versions.get(which % versions.len().max(1)) else {
                let e = s.restore(u64::MAX, None).unwrap_err();
                assert!(matches!(e, Error::NoSuchVersion { .. }), "{ctx}: {e}");
                return;
            };
            let vref: numvault::VersionRef = match &v.tag {
                Some(t) => t.as_str().into(),
                None => v.id.into(),
            };
            match name.map(|n| NAMES[n % NAMES.len()]) {
                None => {
                    s.restore(vref, None).unwrap();
                    *model = v.model.clone();
                }
                Some(n) => match v.model.get(n) {
                    Some(a) => {
                        s.restore(vref, Some(&[n])).unwrap();
                        model.insert(n.to_string(), a.clone());
                    }
                    None => {
                        let e = s.restore(vref, Some(&[n])).unwrap_err();
                        assert!(matches!(e, Error::NotInVersion { .. }), "{ctx}: {e}");
                    }
                },
            }
        }
        Act::DeleteVersion { which } => {
            if versions.is_empty() {
                let e = s.delete_snapshot(1u64 << 40).unwrap_err();
                assert!(matches!(e, Error::NoSuchVersion { .. }), "{ctx}: {e}");
                return;
            }
            let v = versions.remove(which % versions.len());
            s.delete_snapshot(v.id).unwrap();
            assert!(
                matches!(s.at(v.id), Err(Error::NoSuchVersion { .. })),
                "{ctx}"
            );
        }
        Act::Gc => {
            s.gc().unwrap();
        }
        _ => unreachable!(),
    }
}

/// Every retained version of `s` against its model, through every read
/// path of a version handle; and the version list.
fn check_versions(s: &Store, versions: &[MVersion], ctx: &str) {
    let listed: Vec<(u64, Option<String>)> = s
        .versions(None)
        .unwrap_or_else(|e| panic!("{ctx}: versions(): {e}"))
        .into_iter()
        .map(|v| (v.id, v.tag))
        .collect();
    let want: Vec<(u64, Option<String>)> = versions.iter().map(|v| (v.id, v.tag.clone())).collect();
    assert_eq!(listed, want, "{ctx}: versions()");
    for v in versions {
        let h = s
            .at(v.id)
            .unwrap_or_else(|e| panic!("{ctx}: at({}): {e}", v.id));
        check_store(&h, &v.model, &format!("{ctx} (version {})", v.id));
    }
}

fn run(acts: &[Act], mut backend: Backend, sync: Sync) {
    let mut model = Model::new();
    let mut versions: Vec<MVersion> = Vec::new();
    let mut store = Some(backend.open(sync));
    let mut reader: Option<Store> = None;
    for (step, act) in acts.iter().enumerate() {
        let ctx = format!("step {step} {act:?}");
        let s = store.as_ref().unwrap();
        match act {
            Act::Snapshot { .. } | Act::Restore { .. } | Act::DeleteVersion { .. } | Act::Gc => {
                version_step(s, act, &mut model, &mut versions, &ctx);
            }
            Act::Batch(subs) => {
                let mut staged = model.clone();
                let mut muts = Vec::new();
                let mut expected = Ok(());
                for sub in subs {
                    let m = resolve(sub, &staged).unwrap();
                    if expected.is_ok() {
                        expected = model_apply(&mut staged, &m)
                            .map_err(|k| (k, err_name(&m, k).to_string()));
                    }
                    muts.push(m);
                }
                let mut b = Batch::new();
                for m in &muts {
                    batch_add(&mut b, m);
                }
                let got = s.commit(&b);
                match expected {
                    Ok(()) => {
                        got.unwrap_or_else(|e| panic!("{ctx}: batch failed: {e}\n{muts:#?}"));
                        model = staged;
                    }
                    Err((k, name)) => expect_err(got, k, &name, &ctx),
                }
            }
            Act::Flush => s.flush().unwrap(),
            Act::Checkpoint => {
                s.checkpoint().unwrap();
                assert_files(&backend, &model, &versions, &ctx);
                // A checkpoint extends the checksums over every row.
                for name in model.keys() {
                    let info = s.info(name).unwrap();
                    assert_eq!(info.unchecksummed_bytes, 0, "{ctx}: '{name}'");
                }
                assert_eq!(s.verify().unwrap().unchecksummed_bytes, 0, "{ctx}");
            }
            Act::Reopen => {
                store.take().unwrap().close().unwrap();
                let s = backend.open(sync);
                // A close or open no longer checkpoints (changed on purpose,
                // issue 11): superseded files stay until the next
                // checkpoint, which removes every one of them.
                assert!(
                    backend.data_files() >= model.len(),
                    "{ctx}: data files missing after reopen"
                );
                s.checkpoint().unwrap();
                assert_files(&backend, &model, &versions, &ctx);
                store = Some(s);
            }
            Act::Crash { power_loss } => {
                // Only `Sync::Always` promises that a power loss keeps every
                // returned operation.
                let pl = *power_loss && sync == Sync::Always;
                reader = None;
                backend.crash(pl);
                drop(store.take());
                store = Some(backend.open(sync));
            }
            Act::Reader => {
                if let Some(r) = &reader {
                    r.refresh().unwrap();
                } else {
                    reader = Some(backend.open_reader());
                }
            }
            _ => {
                let m = resolve(act, &model).unwrap();
                let before = model.clone();
                let expected = model_apply(&mut model, &m);
                let got = store_apply(s, &m);
                match expected {
                    Ok(()) => {
                        got.unwrap_or_else(|e| panic!("{ctx}: failed: {e}\n{m:?}"));
                        if let Mut::Compact { name } = &m {
                            let info = s.info(name).unwrap();
                            assert_eq!(info.dead_rows, 0, "{ctx}: dead rows after compact");
                            let rb = model[name].row_bytes() as u64;
                            assert_eq!(info.data_bytes, info.shape[0] * rb, "{ctx}");
                        }
                    }
                    Err(k) => {
                        expect_err(got, k, err_name(&m, k), &format!("{ctx} {m:?}"));
                        assert_eq!(model, before);
                    }
                }
            }
        }
        let s = store.as_ref().unwrap();
        check_store(s, &model, &ctx);
        check_versions(s, &versions, &ctx);
        if let Some(r) = &reader {
            r.refresh().unwrap();
            check_store(r, &model, &format!("{ctx} (reader)"));
            check_versions(r, &versions, &format!("{ctx} (reader)"));
        }
    }
    drop(reader);
    store.take().unwrap().close().unwrap();
    let s = backend.open(sync);
    check_store(&s, &model, "final reopen");
    check_versions(&s, &versions, "final reopen");
    // Deleting every version and collecting leaves one file per array.
    for v in &versions {
        s.delete_snapshot(v.id).unwrap();
    }
    s.gc().unwrap();
    assert_files(&backend, &model, &[], "after deleting every version");
    check_store(&s, &model, "after deleting every version");
}

/// After a checkpoint: one data file per array when no version is kept;
/// with versions, no more than one per array of the state and of each
/// version.
fn assert_files(backend: &Backend, model: &Model, versions: &[MVersion], ctx: &str) {
    let n = backend.data_files();
    let most = model.len() + versions.iter().map(|v| v.model.len()).sum::<usize>();
    if versions.is_empty() {
        assert_eq!(n, model.len(), "{ctx}: data files left after a checkpoint");
    } else {
        assert!(
            (model.len().min(1)..=most).contains(&n),
            "{ctx}: {n} data files for {} arrays and versions of {most}",
            model.len()
        );
    }
}

fn sync_strategy() -> impl Strategy<Value = Sync> {
    prop::sample::select(policies())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(24),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn model_on_sim_vfs(acts in prop::collection::vec(act_strategy(), 1..40), sync in sync_strategy()) {
        run(&acts, Backend::Sim { sim: SimVfs::new() }, sync);
    }

    #[test]
    fn model_on_real_dir(acts in prop::collection::vec(act_strategy(), 1..40), sync in sync_strategy()) {
        run(&acts, Backend::Std { dirs: vec![tempfile::tempdir().unwrap()] }, sync);
    }
}

// ------------------------------------------- regressions found by the model

fn both_backends(acts: &[Act], sync: Sync) {
    run(acts, Backend::Sim { sim: SimVfs::new() }, sync);
    run(
        acts,
        Backend::Std {
            dirs: vec![tempfile::tempdir().unwrap()],
        },
        sync,
    );
}

fn save(name: usize, kind: usize, rows: u8, seed: u64) -> Act {
    Act::Save {
        name,
        kind,
        rows,
        seed,
        defect: Defect::None,
    }
}

/// Rows deleted from the end of an array whose rows are otherwise in file
/// order: `read()` checked a chunk's checksum against the visible bytes only.
#[test]
fn regression_read_after_deleting_the_tail() {
    let sel = |v| Sel { v, neg: false };
    let acts = [
        save(3, 0, 5, 30),
        Act::Delete {
            name: 3,
            sel: vec![sel(4), sel(3), sel(2)],
            defect: Defect::None,
        },
    ];
    both_backends(&acts, Sync::OnFlush);
}

/// Recovery redid inline payloads through a file handle it did not keep, so
/// they were never synced before the checkpoint ending recovery: a second
/// power loss lost them.
#[test]
fn regression_power_loss_twice() {
    let acts = [
        save(0, 0, 1, 1),
        Act::Crash { power_loss: true },
        Act::Crash { power_loss: true },
    ];
    run(&acts, Backend::Sim { sim: SimVfs::new() }, Sync::Always);
}

/// A failed batch wrote rows past the committed end; the data file's cached
/// mapping (a snapshot on the simulator) covered them and went stale when the
/// next commit overwrote them.
#[test]
fn regression_stale_mapping_after_failed_batch() {
    let acts = [
        save(2, 0, 1, 0),
        Act::Batch(vec![
            Act::Append {
                name: 2,
                rows: 1,
                seed: 0,
                defect: Defect::None,
            },
            Act::Append {
                name: 0,
                rows: 0,
                seed: 0,
                defect: Defect::None,
            },
        ]),
        Act::Reopen,
        Act::Replace {
            name: 2,
            sel: vec![Sel { v: 0, neg: false }],
            seed: 1,
            defect: Defect::None,
        },
    ];
    both_backends(&acts, Sync::Always);
}

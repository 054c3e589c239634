//! Random workloads for the torture, power-loss and fault tests: a seeded
//! generator of valid mutating operations (every kind: save, append,
//! replace, delete rows, compact, drop, rename, multi-op batches, flush,
//! checkpoint, and versions: snapshot, restore, delete, gc), an in-memory
//! model of what each does, a text form so a parent process can hand a
//! sequence to a child, and a runner.
//!
//! The model is the store's contents by name; a version tagged `t` is the
//! entry `@t` plus `@t/<array>` for each of its arrays (compare with
//! `common::snapshot_with_versions`). At most [`MAX_VERSIONS`] are kept.
#![allow(dead_code)]

use std::fmt::Write as _;

use crate::common::{arr, version_marker, Arr, Snap};
use numvault::{Batch, DType, Store};

/// Small deterministic PRNG (xorshift64*), so a seed reproduces a workload.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const NAMES: [&str; 6] = ["a", "b", "g/c", "g/d", "e", "h/i/j"];
const DTYPES: [DType; 5] = [DType::U8, DType::I16, DType::F32, DType::I64, DType::F64];
/// Rows an array may grow to before the generator shrinks it.
const MAX_ROWS: u64 = 400;

/// One operation. Data is generated from `seed` (see [`crate::common::arr`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Save {
        name: String,
        dtype: DType,
        rows: u64,
        cols: u64,
        seed: u64,
    },
    Append {
        name: String,
        dtype: DType,
        rows: u64,
        cols: u64,
        seed: u64,
    },
    Replace {
        name: String,
        dtype: DType,
        cols: u64,
        idx: Vec<i64>,
        seed: u64,
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
    Batch(Vec<Op>),
    /// The same through a staged transaction (`Store::begin`), with a small
    /// memory budget so that rows go to staging files too.
    Txn(Vec<Op>),
    Flush,
    Checkpoint,
    /// A version tagged `tag`.
    Snapshot {
        tag: String,
    },
    /// Restore every array (`name = None`) or one from version `tag`.
    Restore {
        tag: String,
        name: Option<String>,
    },
    DeleteVersion {
        tag: String,
    },
    Gc,
}

std::thread_local! {
    /// [`generate`] mixes version ops in ([`generate_data_only`] does not).
    static VERSIONS: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
}

/// [`generate`] without version ops (for a transaction's staged changes).
pub fn generate_data_only(rng: &mut Rng, m: &mut Snap, n: usize) -> Vec<Op> {
    VERSIONS.with(|v| v.set(false));
    let ops = generate(rng, m, n);
    VERSIONS.with(|v| v.set(true));
    ops
}

/// Versions a workload keeps at once.
pub const MAX_VERSIONS: usize = 3;

/// The tags of the versions in model `m`.
pub fn model_tags(m: &Snap) -> Vec<String> {
    m.keys()
        .filter_map(|k| k.strip_prefix('@'))
        .filter(|k| !k.contains('/'))
        .map(str::to_string)
        .collect()
}

fn ints(v: &[i64]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    v.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

fn parse_ints(s: &str) -> Option<Vec<i64>> {
    if s == "-" {
        return Some(Vec::new());
    }
    s.split(',').map(|x| x.parse().ok()).collect()
}

impl Op {
    /// One-line text form (names hold no spaces, '|' or ';').
    pub fn encode(&self) -> String {
        let mut s = String::new();
        match self {
            Op::Save {
                name,
                dtype,
                rows,
                cols,
                seed,
            } => write!(s, "save {name} {} {rows} {cols} {seed}", dtype.name()),
            Op::Append {
                name,
                dtype,
                rows,
                cols,
                seed,
            } => write!(s, "append {name} {} {rows} {cols} {seed}", dtype.name()),
            Op::Replace {
                name,
                dtype,
                cols,
                idx,
                seed,
            } => write!(
                s,
                "replace {name} {} {cols} {} {seed}",
                dtype.name(),
                ints(idx)
            ),
            Op::Delete { name, idx } => write!(s, "delete {name} {}", ints(idx)),
            Op::Compact { name } => write!(s, "compact {name}"),
            Op::Drop { name } => write!(s, "drop {name}"),
            Op::Rename { from, to } => write!(s, "rename {from} {to}"),
            Op::Batch(ops) => write!(
                s,
                "batch {}",
                ops.iter().map(Op::encode).collect::<Vec<_>>().join(";")
            ),
            Op::Txn(ops) => write!(
                s,
                "txn {}",
                ops.iter().map(Op::encode).collect::<Vec<_>>().join(";")
            ),
            Op::Flush => write!(s, "flush"),
            Op::Checkpoint => write!(s, "checkpoint"),
            Op::Snapshot { tag } => write!(s, "snapshot {tag}"),
            Op::Restore { tag, name } => {
                write!(s, "restore {tag} {}", name.as_deref().unwrap_or("-"))
            }
            Op::DeleteVersion { tag } => write!(s, "delete-version {tag}"),
            Op::Gc => write!(s, "gc"),
        }
        .unwrap();
        s
    }

    pub fn decode(line: &str) -> Option<Op> {
        if let Some(rest) = line.strip_prefix("batch ") {
            return rest
                .split(';')
                .map(Op::decode)
                .collect::<Option<Vec<_>>>()
                .map(Op::Batch);
        }
        if let Some(rest) = line.strip_prefix("txn ") {
            return rest
                .split(';')
                .map(Op::decode)
                .collect::<Option<Vec<_>>>()
                .map(Op::Txn);
        }
        let t: Vec<&str> = line.split(' ').collect();
        let n = |i: usize| t.get(i).and_then(|x| x.parse::<u64>().ok());
        let name = |i: usize| t.get(i).map(|x| x.to_string());
        let dt = |i: usize| t.get(i).and_then(|x| DType::from_name(x));
        Some(match *t.first()? {
            "save" => Op::Save {
                name: name(1)?,
                dtype: dt(2)?,
                rows: n(3)?,
                cols: n(4)?,
                seed: n(5)?,
            },
            "append" => Op::Append {
                name: name(1)?,
                dtype: dt(2)?,
                rows: n(3)?,
                cols: n(4)?,
                seed: n(5)?,
            },
            "replace" => Op::Replace {
                name: name(1)?,
                dtype: dt(2)?,
                cols: n(3)?,
                idx: parse_ints(t.get(4)?)?,
                seed: n(5)?,
            },
            "delete" => Op::Delete {
                name: name(1)?,
                idx: parse_ints(t.get(2)?)?,
            },
            "compact" => Op::Compact { name: name(1)? },
            "drop" => Op::Drop { name: name(1)? },
            "rename" => Op::Rename {
                from: name(1)?,
                to: name(2)?,
            },
            "flush" => Op::Flush,
            "checkpoint" => Op::Checkpoint,
            "snapshot" => Op::Snapshot { tag: name(1)? },
            "restore" => Op::Restore {
                tag: name(1)?,
                name: name(2).filter(|n| n != "-"),
            },
            "delete-version" => Op::DeleteVersion { tag: name(1)? },
            "gc" => Op::Gc,
            _ => return None,
        })
    }

    /// True if the op can change the contents (flush, checkpoint and
    /// compact cannot).
    pub fn changes_contents(&self) -> bool {
        !matches!(
            self,
            Op::Flush | Op::Checkpoint | Op::Compact { .. } | Op::Gc
        )
    }

    /// Apply to the model. Ops come from [`generate`], so they are valid.
    pub fn apply(&self, m: &mut Snap) {
        match self {
            Op::Save {
                name,
                dtype,
                rows,
                cols,
                seed,
            } => {
                m.insert(name.clone(), arr(*dtype, &[*rows, *cols], *seed));
            }
            Op::Append {
                name,
                dtype,
                rows,
                cols,
                seed,
            } => {
                let add = arr(*dtype, &[*rows, *cols], *seed);
                let a = m.get_mut(name).unwrap();
                a.data.extend_from_slice(&add.data);
                a.shape[0] += rows;
            }
            Op::Replace {
                name,
                dtype,
                cols,
                idx,
                seed,
            } => {
                let src = arr(*dtype, &[idx.len() as u64, *cols], *seed);
                let a = m.get_mut(name).unwrap();
                let rb = a.row_bytes();
                let rows = a.rows() as i64;
                for (j, &i) in idx.iter().enumerate() {
                    let r = i.rem_euclid(rows) as usize;
                    a.data[r * rb..(r + 1) * rb].copy_from_slice(src.row(j));
                }
            }
            Op::Delete { name, idx } => {
                let a = m.get_mut(name).unwrap();
                let rows = a.rows() as i64;
                let gone: std::collections::BTreeSet<usize> =
                    idx.iter().map(|&i| i.rem_euclid(rows) as usize).collect();
                let rb = a.row_bytes();
                let mut data = Vec::with_capacity(a.data.len());
                for r in 0..rows as usize {
                    if !gone.contains(&r) {
                        data.extend_from_slice(&a.data[r * rb..(r + 1) * rb]);
                    }
                }
                a.data = data;
                a.shape[0] -= gone.len() as u64;
            }
            Op::Compact { .. } | Op::Flush | Op::Checkpoint | Op::Gc => {}
            Op::Snapshot { tag } => {
                let current: Vec<(String, Arr)> = m
                    .iter()
                    .filter(|(k, _)| !k.starts_with('@'))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                for (k, v) in current {
                    m.insert(format!("@{tag}/{k}"), v);
                }
                m.insert(format!("@{tag}"), version_marker());
            }
            Op::Restore { tag, name } => {
                let prefix = format!("@{tag}/");
                let saved: Vec<(String, Arr)> = m
                    .iter()
                    .filter_map(|(k, v)| {
                        k.strip_prefix(&prefix).map(|n| (n.to_string(), v.clone()))
                    })
                    .collect();
                if name.is_none() {
                    m.retain(|k, _| k.starts_with('@'));
                }
                for (k, v) in saved {
                    if name.as_ref().is_none_or(|n| *n == k) {
                        m.insert(k, v);
                    }
                }
            }
            Op::DeleteVersion { tag } => {
                let prefix = format!("@{tag}/");
                m.retain(|k, _| *k != format!("@{tag}") && !k.starts_with(&prefix));
            }
            Op::Drop { name } => {
                m.remove(name);
            }
            Op::Rename { from, to } => {
                let a = m.remove(from).unwrap();
                m.insert(to.clone(), a);
            }
            Op::Batch(ops) | Op::Txn(ops) => {
                for op in ops {
                    op.apply(m);
                }
            }
        }
    }

    /// Run against a store.
    pub fn run(&self, s: &Store) -> numvault::Result<()> {
        match self {
            Op::Snapshot { tag } => s.snapshot(Some(tag)).map(|_| ()),
            Op::Restore { tag, name } => match name {
                Some(n) => s.restore(tag.as_str(), Some(&[n.as_str()])),
                None => s.restore(tag.as_str(), None),
            },
            Op::DeleteVersion { tag } => s.delete_snapshot(tag.as_str()),
            Op::Gc => s.gc().map(|_| ()),
            Op::Flush => s.flush(),
            Op::Checkpoint => s.checkpoint(),
            Op::Compact { name } => s.compact(name).map(|_| ()),
            Op::Batch(ops) => {
                let datas: Vec<Option<Arr>> = ops.iter().map(Op::data).collect();
                let mut b = Batch::new();
                for (op, d) in ops.iter().zip(&datas) {
                    match op {
                        Op::Save { name, .. } => b.save(name, d.as_ref().unwrap().r()),
                        Op::Append { name, .. } => b.append(name, d.as_ref().unwrap().r()),
                        Op::Replace { name, idx, .. } => {
                            b.replace(name, idx, d.as_ref().unwrap().r())
                        }
                        Op::Delete { name, idx } => b.delete_rows(name, idx),
                        Op::Compact { name } => b.compact(name),
                        Op::Drop { name } => b.drop_array(name),
                        Op::Rename { from, to } => b.rename(from, to),
                        _ => unreachable!("not in a batch: {op:?}"),
                    };
                }
                s.commit(&b)
            }
            Op::Txn(ops) => {
                // 4 KiB in memory: larger rows are spilled or staged in files.
                let mut t = s.begin_with_memory(4096)?;
                for op in ops {
                    op.run_in(&mut t)?;
                }
                t.commit()
            }
            Op::Save { name, .. } => s.save(name, self.data().unwrap().r()),
            Op::Append { name, .. } => s.append(name, self.data().unwrap().r()),
            Op::Replace { name, idx, .. } => s.replace(name, idx, self.data().unwrap().r()),
            Op::Delete { name, idx } => s.delete_rows(name, idx),
            Op::Drop { name } => s.drop_array(name),
            Op::Rename { from, to } => s.rename(from, to),
        }
    }

    /// Stage a data op in a transaction.
    pub fn run_in(&self, t: &mut numvault::Txn) -> numvault::Result<()> {
        let d = self.data();
        match self {
            Op::Save { name, .. } => t.save(name, d.as_ref().unwrap().r()),
            Op::Append { name, .. } => t.append(name, d.as_ref().unwrap().r()),
            Op::Replace { name, idx, .. } => t.replace(name, idx, d.as_ref().unwrap().r()),
            Op::Delete { name, idx } => t.delete_rows(name, idx),
            Op::Compact { name } => t.compact(name),
            Op::Drop { name } => t.drop_array(name),
            Op::Rename { from, to } => t.rename(from, to),
            _ => unreachable!("not in a transaction: {self:?}"),
        }
    }

    fn data(&self) -> Option<Arr> {
        match self {
            Op::Save {
                dtype,
                rows,
                cols,
                seed,
                ..
            }
            | Op::Append {
                dtype,
                rows,
                cols,
                seed,
                ..
            } => Some(arr(*dtype, &[*rows, *cols], *seed)),
            Op::Replace {
                dtype,
                cols,
                idx,
                seed,
                ..
            } => Some(arr(*dtype, &[idx.len() as u64, *cols], *seed)),
            _ => None,
        }
    }
}

/// Distinct random row indices of an array of `rows` rows, some negative.
fn distinct_idx(rng: &mut Rng, rows: u64, k: u64) -> Vec<i64> {
    let mut picked = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    while (out.len() as u64) < k.min(rows) {
        let r = rng.below(rows);
        if picked.insert(r) {
            out.push(if rng.chance(30) {
                r as i64 - rows as i64
            } else {
                r as i64
            });
        }
    }
    out
}

/// Rows of a new or appended block: mostly small (carried inline in the
/// log), sometimes about 70 KB (over the inline limit: written to the data
/// file before the record).
fn block_rows(rng: &mut Rng, dtype: DType, cols: u64) -> u64 {
    let row = cols * dtype.itemsize() as u64;
    if rng.chance(12) {
        (70_000 / row).max(1) + rng.below(20)
    } else {
        1 + rng.below(12)
    }
}

/// One random valid data op for the model `m` (`allow_batch`: may be a
/// multi-op batch).
/// A version op for model `m`, if the roll picks one (top level only).
fn gen_version_op(rng: &mut Rng, m: &Snap) -> Option<Op> {
    let tags = model_tags(m);
    let pick = |rng: &mut Rng| tags[rng.below(tags.len() as u64) as usize].clone();
    Some(match rng.below(100) {
        0..=3 if tags.len() >= MAX_VERSIONS => Op::DeleteVersion { tag: pick(rng) },
        0..=3 => {
            // A fresh tag.
            let mut tag = format!("v{}", rng.below(1 << 20));
            while tags.contains(&tag) {
                tag = format!("v{}", rng.below(1 << 20));
            }
            Op::Snapshot { tag }
        }
        4 if !tags.is_empty() => Op::Restore {
            tag: pick(rng),
            name: None,
        },
        5 if !tags.is_empty() => {
            let tag = pick(rng);
            let prefix = format!("@{tag}/");
            let names: Vec<&str> = m.keys().filter_map(|k| k.strip_prefix(&prefix)).collect();
            if names.is_empty() {
                return None;
            }
            let name = names[rng.below(names.len() as u64) as usize].to_string();
            Op::Restore {
                tag,
                name: Some(name),
            }
        }
        6 if !tags.is_empty() => Op::DeleteVersion { tag: pick(rng) },
        7 => Op::Gc,
        _ => return None,
    })
}

fn gen_op(rng: &mut Rng, m: &Snap, seed: u64, allow_batch: bool) -> Op {
    if allow_batch && VERSIONS.with(|v| v.get()) {
        if let Some(op) = gen_version_op(rng, m) {
            return op;
        }
    }
    let existing: Vec<&String> = m.keys().filter(|k| !k.starts_with('@')).collect();
    let pick = |rng: &mut Rng| existing[rng.below(existing.len() as u64) as usize].clone();
    loop {
        let choice = rng.below(100);
        if existing.is_empty() || choice < 12 {
            let name = NAMES[rng.below(NAMES.len() as u64) as usize].to_string();
            let dtype = DTYPES[rng.below(DTYPES.len() as u64) as usize];
            let cols = [1, 3, 8, 64, 1024][rng.below(5) as usize];
            let rows = if rng.chance(5) {
                0
            } else {
                block_rows(rng, dtype, cols)
            };
            return Op::Save {
                name,
                dtype,
                rows,
                cols,
                seed,
            };
        }
        let name = pick(rng);
        let a = &m[&name];
        let (dtype, rows, cols) = (a.dtype, a.rows(), a.shape[1]);
        match choice {
            12..=36 if rows < MAX_ROWS => {
                return Op::Append {
                    name,
                    dtype,
                    rows: block_rows(rng, dtype, cols),
                    cols,
                    seed,
                }
            }
            37..=56 if rows > 0 => {
                let k = 1 + rng.below(rows.min(6));
                return Op::Replace {
                    name,
                    dtype,
                    cols,
                    idx: distinct_idx(rng, rows, k),
                    seed,
                };
            }
            57..=72 if rows > 0 => {
                let k = if rows > MAX_ROWS / 2 {
                    rows / 2
                } else {
                    1 + rng.below(rows.min(4))
                };
                let mut idx = distinct_idx(rng, rows, k);
                if rng.chance(20) {
                    idx.push(idx[0]); // repeated indices delete once
                }
                return Op::Delete { name, idx };
            }
            73..=80 => return Op::Compact { name },
            81..=85 => return Op::Drop { name },
            86..=91 => {
                let to = NAMES[rng.below(NAMES.len() as u64) as usize].to_string();
                if !m.contains_key(&to) {
                    return Op::Rename { from: name, to };
                }
            }
            92..=99 if allow_batch => {
                let mut staged = m.clone();
                let mut ops = Vec::new();
                for j in 0..2 + rng.below(4) {
                    let op = gen_op(rng, &staged, seed.wrapping_add(j * 7919), false);
                    op.apply(&mut staged);
                    ops.push(op);
                }
                return if rng.chance(50) {
                    Op::Batch(ops)
                } else {
                    Op::Txn(ops)
                };
            }
            _ => {}
        }
    }
}

/// `n` random operations valid from the model `m` (which is advanced), with
/// flushes and checkpoints mixed in.
pub fn generate(rng: &mut Rng, m: &mut Snap, n: usize) -> Vec<Op> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let op = match rng.below(100) {
            0..=6 => Op::Flush,
            7..=8 => Op::Checkpoint,
            _ => {
                let seed = rng.next();
                gen_op(rng, m, seed, true)
            }
        };
        op.apply(m);
        out.push(op);
    }
    out
}

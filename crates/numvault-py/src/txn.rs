//! `Transaction`: the engine's staged transaction (`numvault::Txn`) for
//! Python. Every change is checked by the engine against the state the
//! earlier ones leave, and read back (`shape`, `load`, ...) from the
//! engine: the binding keeps no state of its own.

use std::sync::Mutex;

use numvault::{ArrayRef, DType, Txn};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::conv::{alloc, descr, input, out_slice, shape_tuple};
use crate::errors::{guard, nogil, withgil};
use crate::vault::{resolve_rows, Meta};

/// A transaction: changes staged (each checked when made, indexes resolved
/// against the array as the earlier changes leave it), then committed
/// atomically by ``commit()``, or discarded. Rows beyond a memory budget
/// are staged in files, so a transaction of any size runs in bounded
/// memory. As a context manager it commits when the block ends normally and
/// discards on an exception. Made by ``Vault.begin()``.
#[pyclass(module = "numvault", name = "Transaction", frozen)]
pub struct Transaction {
    txn: Mutex<Option<Txn>>,
    /// The process (and fork generation) that began it: a child after
    /// fork() must neither commit to the parent's store nor remove the
    /// parent's staging files.
    pid: u32,
    fork_gen: u64,
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if self.forked() {
            // In a child: the staged files are the parent's; leave them.
            let t = match self.txn.get_mut() {
                Ok(g) => g.take(),
                Err(p) => p.into_inner().take(),
            };
            std::mem::forget(t);
        }
    }
}

impl Transaction {
    pub fn new(txn: Txn) -> Self {
        Transaction {
            txn: Mutex::new(Some(txn)),
            pid: std::process::id(),
            fork_gen: crate::fork_gen(),
        }
    }

    fn forked(&self) -> bool {
        crate::fork_gen() != self.fork_gen || std::process::id() != self.pid
    }

    fn check_process(&self) -> PyResult<()> {
        if !self.forked() {
            return Ok(());
        }
        Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
            "this transaction was begun in process {} and is used from process {} (a child \
             after fork()); it cannot be used here: its changes belong to the parent",
            self.pid,
            std::process::id()
        )))
    }

    /// Run `f` on the open transaction.
    fn with<T>(&self, f: impl FnOnce(&mut Txn) -> PyResult<T>) -> PyResult<T> {
        self.check_process()?;
        let mut g = match self.txn.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        match g.as_mut() {
            Some(t) => f(t),
            None => Err(PyValueError::new_err(
                "the transaction was committed or discarded",
            )),
        }
    }

    /// Run `f` on the open transaction if no other call is using it (for
    /// work that calls back into Python meanwhile, as the file importers of
    /// formats.rs do: waiting there could deadlock).
    pub(crate) fn with_now<T>(&self, f: impl FnOnce(&mut Txn) -> PyResult<T>) -> PyResult<T> {
        self.check_process()?;
        let mut g = match self.txn.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                return Err(PyValueError::new_err("the transaction is in use"))
            }
        };
        match g.as_mut() {
            Some(t) => f(t),
            None => Err(PyValueError::new_err(
                "the transaction was committed or discarded",
            )),
        }
    }

    fn take(&self) -> PyResult<Txn> {
        self.check_process()?;
        let mut g = match self.txn.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.take()
            .ok_or_else(|| PyValueError::new_err("the transaction was committed or discarded"))
    }

    fn meta(t: &Txn, name: &str) -> PyResult<Meta> {
        withgil(|| {
            Ok(Meta {
                dtype: t.dtype(name)?,
                shape: t.shape(name)?,
            })
        })
    }

    /// Stage one operation of `Vault.commit`'s list.
    pub fn stage_op(&self, op: &Bound<'_, PyAny>) -> PyResult<()> {
        let t = op.cast::<PyTuple>().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err("each operation must be a tuple")
        })?;
        if t.is_empty() {
            return Err(PyValueError::new_err("empty operation"));
        }
        let kind: String = t.get_item(0)?.extract()?;
        let want = |n: usize| -> PyResult<()> {
            if t.len() != n {
                return Err(PyValueError::new_err(format!(
                    "operation {kind:?} takes {} arguments, got {}",
                    n - 1,
                    t.len() - 1
                )));
            }
            Ok(())
        };
        let arg = |i: usize| t.get_item(i);
        let name = || -> PyResult<String> { arg(1)?.extract() };
        match kind.as_str() {
            "save" => want(3).and_then(|_| self.save(&name()?, &arg(2)?)),
            "append" => want(3).and_then(|_| self.append(&name()?, &arg(2)?)),
            "replace" => want(4).and_then(|_| self.replace(&name()?, &arg(2)?, &arg(3)?)),
            "delete_rows" => want(3).and_then(|_| self.delete_rows(&name()?, &arg(2)?)),
            "drop" => want(2).and_then(|_| self.drop(&name()?)),
            "rename" => want(3).and_then(|_| self.rename(&name()?, &arg(2)?.extract::<String>()?)),
            "compact" => want(2).and_then(|_| self.compact(&name()?)),
            other => Err(PyValueError::new_err(format!(
                "unknown operation {other:?} (expected save, append, replace, delete_rows, \
                 drop, rename or compact)"
            ))),
        }
    }

    /// Commit, releasing the GIL.
    pub fn commit_now(&self, py: Python<'_>) -> PyResult<()> {
        let t = self.take()?;
        nogil(py, move || t.commit())
    }
}

#[pymethods]
impl Transaction {
    /// Stage creating or overwriting array ``name`` with ``array``.
    fn save(&self, name: &str, array: &Bound<'_, PyAny>) -> PyResult<()> {
        let inp = input(array, &format!("array '{name}'"))?;
        self.with(|t| withgil(|| t.save(name, ArrayRef::new(inp.dtype, &inp.shape, inp.bytes()))))
    }

    /// Stage creating or overwriting array ``name`` with the row batches of
    /// ``batches`` (an iterable of arrays of one dtype and row shape, stacked
    /// along the first axis), streamed into a staging file as they come: the
    /// memory used is one batch, whatever the total (the rows never enter
    /// the transaction's memory budget). Returns the number of rows; an
    /// empty iterable stages nothing and returns 0. The iterable must not
    /// use this transaction. Rows of 0 bytes (a zero-size row shape) cannot
    /// be streamed: stage them with ``save``.
    fn save_batches(&self, name: &str, batches: &Bound<'_, PyAny>) -> PyResult<u64> {
        let what = format!("array '{name}'");
        let mut it = batches.try_iter()?;
        let first = match it.next() {
            None => return Ok(0),
            Some(x) => x?,
        };
        let inp = input(&first, &what)?;
        if inp.shape.is_empty() {
            return Err(PyValueError::new_err(format!(
                "{what}: a batch must have at least one dimension"
            )));
        }
        let (dtype, row_shape) = (inp.dtype, inp.shape[1..].to_vec());
        let mut g = match self.txn.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                return Err(PyValueError::new_err(
                    "the transaction is in use (save_batches' iterable must not use it)",
                ))
            }
        };
        let t = g
            .as_mut()
            .ok_or_else(|| PyValueError::new_err("the transaction was committed or discarded"))?;
        let mut w = withgil(|| t.save_stream(name, dtype, &row_shape))?;
        withgil(|| w.write(inp.bytes()))?;
        drop(inp);
        drop(first);
        for item in it {
            let item = item?;
            let b = input(&item, &what)?;
            if b.dtype != dtype
                || b.shape.len() != row_shape.len() + 1
                || b.shape[1..] != row_shape[..]
            {
                return Err(PyValueError::new_err(format!(
                    "{what}: a batch of {} with shape {:?} does not stack on the earlier ones ({} rows of shape {:?})",
                    b.dtype, b.shape, dtype, row_shape
                )));
            }
            withgil(|| w.write(b.bytes()))?;
        }
        let rows = w.rows();
        withgil(|| w.finish())?;
        Ok(rows)
    }

    /// Stage appending the rows of ``array`` to array ``name``.
    fn append(&self, name: &str, array: &Bound<'_, PyAny>) -> PyResult<()> {
        let inp = input(array, &format!("array '{name}'"))?;
        self.with(|t| withgil(|| t.append(name, ArrayRef::new(inp.dtype, &inp.shape, inp.bytes()))))
    }

    /// Stage ``array[index] = value`` (NumPy indexing and broadcasting;
    /// repeated indices: the last value wins), ``index`` resolved against
    /// the array as the earlier changes leave it.
    fn replace(
        &self,
        name: &str,
        index: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        guard(|| {
            self.with(|t| {
                let meta = Self::meta(t, name)?;
                let Some((idx, shape, dtype, data)) = resolve_rows(name, index, value, &meta)?
                else {
                    return Ok(());
                };
                withgil(|| t.replace(name, &idx, ArrayRef::new(dtype, &shape, &data)))
            })
        })
    }

    /// Stage deleting the selected rows (``numpy.delete`` semantics).
    fn delete_rows(&self, name: &str, index: &Bound<'_, PyAny>) -> PyResult<()> {
        self.with(|t| {
            let rows = withgil(|| t.shape(name))?[0];
            let idx = crate::index::parse_target(index, rows)?.to_vec();
            if idx.is_empty() {
                return Ok(());
            }
            withgil(|| t.delete_rows(name, &idx))
        })
    }

    /// Stage removing array ``name``.
    fn drop(&self, name: &str) -> PyResult<()> {
        self.with(|t| withgil(|| t.drop_array(name)))
    }

    /// Stage renaming ``src`` to ``dst``.
    fn rename(&self, src: &str, dst: &str) -> PyResult<()> {
        self.with(|t| withgil(|| t.rename(src, dst)))
    }

    /// Stage compacting array ``name``.
    fn compact(&self, name: &str) -> PyResult<()> {
        self.with(|t| withgil(|| t.compact(name)))
    }

    /// Shape of array ``name`` as the staged changes leave it.
    fn shape<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyTuple>> {
        let shape = self.with(|t| withgil(|| t.shape(name)))?;
        shape_tuple(py, &shape)
    }

    /// NumPy dtype of array ``name`` as the staged changes leave it.
    fn dtype<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let d: DType = self.with(|t| withgil(|| t.dtype(name)))?;
        Ok(descr(py, d).into_any())
    }

    /// True if array ``name`` exists once the staged changes apply.
    fn has(&self, name: &str) -> PyResult<bool> {
        self.with(|t| Ok(t.has(name)))
    }

    fn __contains__(&self, name: &Bound<'_, PyAny>) -> PyResult<bool> {
        match name.extract::<&str>() {
            Ok(n) => self.has(n),
            Err(_) => Ok(false),
        }
    }

    /// Sorted names of the arrays once the staged changes apply.
    fn names(&self) -> PyResult<Vec<String>> {
        self.with(|t| Ok(t.names()))
    }

    /// Array ``name`` as the staged changes leave it, as a new NumPy array.
    fn load<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let data = self.with(|t| withgil(|| t.read(name)))?;
        let (arr, ptr) = alloc(py, data.dtype, &data.shape)?;
        let out = unsafe { out_slice(ptr, data.data.len()) };
        out.copy_from_slice(&data.data);
        Ok(arr.into_any())
    }

    /// Number of changes staged.
    fn __len__(&self) -> PyResult<usize> {
        self.with(|t| Ok(t.len()))
    }

    /// Commit every staged change atomically. ``ConflictError`` if another
    /// writer changed the store so that a change no longer applies (then
    /// nothing is committed).
    fn commit(&self, py: Python<'_>) -> PyResult<()> {
        self.commit_now(py)
    }

    /// Discard the staged changes (and their staging files).
    pub fn discard(&self) -> PyResult<()> {
        self.check_process()?;
        let mut g = match self.txn.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        drop(g.take());
        Ok(())
    }

    /// True until ``commit()`` or ``discard()``.
    #[getter]
    fn active(&self) -> bool {
        self.txn.lock().map(|g| g.is_some()).unwrap_or(false)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (exc_type=None, _exc=None, _tb=None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        if exc_type.is_some_and(|e| !e.is_none()) || !self.active() {
            self.discard()?;
        } else {
            self.commit_now(py)?;
        }
        Ok(false)
    }
}

//! Streaming batches (`Vault.batches`, `NumPack.stream_load`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, TryLockError};

use numvault::Batches;
use pyo3::prelude::*;

use crate::conv::{alloc, out_slice};
use crate::errors::{panic_err, to_py};
use crate::lazy::NOGIL_BYTES;

/// Iterator over row batches of one array, each a new NumPy array
/// (checksums verified as read). Reads the snapshot taken when created.
#[pyclass(module = "numvault", name = "BatchIterator", frozen)]
pub struct BatchIter {
    inner: Mutex<Option<Batches>>,
}

impl BatchIter {
    pub fn new(b: Batches) -> BatchIter {
        BatchIter {
            inner: Mutex::new(Some(b)),
        }
    }

    /// Run `f` on the iterator state, taking the mutex with the GIL held if
    /// it is free and waiting for it with the GIL released otherwise.
    fn with_lock<T>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Option<Batches>) -> T,
    ) -> PyResult<T> {
        let mut f = Some(f);
        loop {
            let g = match self.inner.try_lock() {
                Ok(g) => Some(g),
                Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            };
            if let Some(mut g) = g {
                let f = f.take().ok_or_else(|| panic_err(Box::new("lock retry")))?;
                return catch_unwind(AssertUnwindSafe(|| f(&mut g))).map_err(panic_err);
            }
            py.detach(|| drop(lock(&self.inner)));
        }
    }
}

fn lock(m: &Mutex<Option<Batches>>) -> std::sync::MutexGuard<'_, Option<Batches>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[pymethods]
impl BatchIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        // The mutex is never held while Python code runs (array allocation
        // can run a garbage collection), nor waited for with the GIL held.
        loop {
            let peek = self.with_lock(py, |b| {
                b.as_ref()
                    .and_then(|b| Some((b.next_index(), b.next_shape()?, b.dtype(), b.row_bytes())))
            })?;
            let Some((pos, shape, dtype, row_bytes)) = peek else {
                return Ok(None);
            };
            let (arr, data) = alloc(py, dtype, &shape)?;
            let n = (shape[0] * row_bytes) as usize;
            // SAFETY: the array is new and no other code can reach it yet.
            let out = unsafe { out_slice(data, n) };
            let mut read = move |b: &mut Option<Batches>| -> Option<numvault::Result<u64>> {
                let b = b.as_mut()?;
                // Another thread took this batch meanwhile: try again.
                if b.next_index() != pos {
                    return None;
                }
                Some(b.read_next_into(out))
            };
            let got = if n >= NOGIL_BYTES {
                py.detach(|| catch_unwind(AssertUnwindSafe(|| read(&mut lock(&self.inner)))))
                    .map_err(panic_err)?
            } else {
                self.with_lock(py, read)?
            };
            match got {
                None => continue,
                Some(r) => {
                    // The engine ends the stream after an error.
                    r.map_err(to_py)?;
                    return Ok(Some(arr.into_any()));
                }
            }
        }
    }

    fn __repr__(&self) -> String {
        "BatchIterator".to_string()
    }
}

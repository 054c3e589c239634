//! Streaming batches (`Vault.batches`, `NumPack.stream_load`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, TryLockError};

use numvault::{ArrayData, Batches};
use pyo3::prelude::*;

use crate::conv::{alloc, borrowed_array, out_slice};
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

/// Owner of a batch the engine read into its own buffer: the memory of a
/// `Vec<u8>`, freed when the NumPy array over it (whose base this is) goes.
#[pyclass(module = "numvault._core", name = "_BatchMemory", frozen)]
pub struct BatchMemory {
    ptr: usize,
    len: usize,
    cap: usize,
}

impl Drop for BatchMemory {
    fn drop(&mut self) {
        // SAFETY: the parts of the Vec taken apart in `owned_array`, freed once.
        drop(unsafe { Vec::from_raw_parts(self.ptr as *mut u8, self.len, self.cap) });
    }
}

/// A writable NumPy array over a batch's own buffer (no copy).
fn owned_array(py: Python<'_>, d: ArrayData) -> PyResult<Bound<'_, PyAny>> {
    let mut v = std::mem::ManuallyDrop::new(d.data);
    let ptr = v.as_mut_ptr();
    let owner = Bound::new(
        py,
        BatchMemory {
            ptr: ptr as usize,
            len: v.len(),
            cap: v.capacity(),
        },
    )?;
    // SAFETY: the buffer belongs to `owner`, the array's base, which frees
    // it only when the array is gone; nothing else refers to it.
    let arr = unsafe { borrowed_array(owner.into_any(), d.dtype, &d.shape, ptr, true)? };
    Ok(arr.into_any())
}

impl BatchIter {
    /// Run a read of `n` bytes on the iterator state: with the GIL released
    /// for large reads, under [`BatchIter::with_lock`] for small ones.
    fn read_locked<T: Send>(
        &self,
        py: Python<'_>,
        n: usize,
        f: impl FnOnce(&mut Option<Batches>) -> T + Send,
    ) -> PyResult<T> {
        if n >= NOGIL_BYTES {
            py.detach(|| catch_unwind(AssertUnwindSafe(|| f(&mut lock(&self.inner)))))
                .map_err(panic_err)
        } else {
            self.with_lock(py, f)
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
                b.as_ref().and_then(|b| {
                    Some((
                        b.next_index(),
                        b.next_shape()?,
                        b.dtype(),
                        b.row_bytes(),
                        b.reads_ahead(),
                    ))
                })
            })?;
            let Some((pos, shape, dtype, row_bytes, ahead)) = peek else {
                return Ok(None);
            };
            let n = (shape[0] * row_bytes) as usize;
            if ahead {
                // The engine reads the batch into its own buffer, which
                // becomes the array's memory.
                let take = move |b: &mut Option<Batches>| -> Option<numvault::Result<ArrayData>> {
                    let b = b.as_mut()?;
                    // Another thread took this batch meanwhile: try again.
                    if b.next_index() != pos {
                        return None;
                    }
                    b.next()
                };
                let got = self.read_locked(py, n, take)?;
                match got {
                    None => continue,
                    Some(r) => return owned_array(py, r.map_err(to_py)?).map(Some),
                }
            }
            let (arr, data) = alloc(py, dtype, &shape)?;
            // SAFETY: the array is new and no other code can reach it yet.
            let out = unsafe { out_slice(data, n) };
            let read = move |b: &mut Option<Batches>| -> Option<numvault::Result<u64>> {
                let b = b.as_mut()?;
                // Another thread took this batch meanwhile: try again.
                if b.next_index() != pos {
                    return None;
                }
                Some(b.read_next_into(out))
            };
            let got = self.read_locked(py, n, read)?;
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

//! Streaming batches (`Vault.batches`, `NumPack.stream_load`).

use std::sync::Mutex;

use numvault::Batches;
use pyo3::prelude::*;

use crate::conv::borrowed_array;
use crate::errors::{panic_err, to_py};

/// Owner of a batch's bytes, the base of the array made from them.
#[pyclass(module = "numvault._core", name = "_OwnedBytes", frozen)]
pub struct OwnedBytes {
    #[allow(dead_code)]
    data: Box<[u8]>,
}

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
}

#[pymethods]
impl BatchIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        // The lock is taken and released with the GIL released.
        let r = py.detach(|| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut g = match self.inner.lock() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                g.as_mut().and_then(Iterator::next)
            }))
        });
        let next = r.map_err(panic_err)?;
        let Some(item) = next else {
            return Ok(None);
        };
        // The engine ends the stream after an error.
        let data = item.map_err(to_py)?;
        let mut bytes = data.data.into_boxed_slice();
        let ptr = bytes.as_mut_ptr();
        let owner = Bound::new(py, OwnedBytes { data: bytes })?;
        // SAFETY: the boxed bytes never move and live as long as `owner`.
        let arr = unsafe { borrowed_array(owner.into_any(), data.dtype, &data.shape, ptr, true)? };
        Ok(Some(arr.into_any()))
    }

    fn __repr__(&self) -> String {
        "BatchIterator".to_string()
    }
}

//! In-place writable sessions (`writable_batch_mode`).
//!
//! The engine's session (`Store::writable`) suspends the array's checksums
//! durably and recomputes and logs them at `finish`. The NumPy array we hand
//! out is backed by our own shared, writable mapping of the same data file
//! (coherent with the engine's through the page cache), owned by a Python
//! object that is the array's base. At finish the engine logs checksums
//! over the file's bytes; then we replace our mapping, at the same address,
//! with a private copy-on-write mapping of the file and mark the array
//! read-only. Arrays (and views of them) that outlive the session therefore
//! stay valid memory, never a segfault, and can no longer change the file
//! behind the checksums.

use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::sync::Mutex;

use numvault::DType;
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;

use crate::conv::{alloc, borrowed_array, make_read_only};
use crate::errors::nogil;

/// Owner of the writable mapping behind an array handed out by a session.
#[pyclass(module = "numvault._core", name = "_MappedMemory", frozen)]
pub struct MappedMemory {
    map: memmap2::MmapMut,
    file: File,
    ptr: usize,
    len: usize,
    detached: std::sync::atomic::AtomicBool,
}

impl MappedMemory {
    /// Swap the shared mapping for a private copy-on-write one at the same
    /// address: later writes stay in this process's memory.
    fn detach(&self) -> PyResult<()> {
        use std::sync::atomic::Ordering;
        if self.detached.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        // SAFETY: remaps exactly the range `self.map` owns (MAP_FIXED
        // replaces it atomically); `self.map` unmaps the same range on drop.
        let r = unsafe {
            libc::mmap(
                self.ptr as *mut libc::c_void,
                self.len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_FIXED,
                self.file.as_raw_fd(),
                0,
            )
        };
        if r == libc::MAP_FAILED || r as usize != self.ptr {
            return Err(PyOSError::new_err(format!(
                "could not detach the writable mapping: {}",
                std::io::Error::last_os_error()
            )));
        }
        let _ = &self.map;
        Ok(())
    }
}

/// An in-place writable session on one array (see
/// ``Vault.writable(name)``). ``array`` is a NumPy array backed by a shared
/// writable mapping of the array's rows: assignments to it change the
/// stored array directly, with no copy and no save.
///
/// Crash semantics: the session start is logged durably and suspends the
/// array's checksums. Writes are not atomic as a group: after a crash during
/// the session each page of the array holds its old or its new contents (a
/// process crash keeps every write made; a power loss keeps an arbitrary
/// subset of the writes not yet synced); the rest of the store is
/// untouched, and the checksums are recomputed at the next open or
/// checkpoint. ``finish()`` (or leaving the ``with`` block) computes the
/// checksums over the new contents and logs them; the changes are then
/// durable per the store's ``sync`` policy (at the next ``flush()`` by
/// default). After ``finish()`` the array (and any view of it) stays valid
/// but becomes a private, read-only copy: writes through it raise or no
/// longer reach the store.
#[pyclass(module = "numvault", name = "WritableArray", frozen)]
pub struct WritableArray {
    session: Mutex<Option<numvault::Writable>>,
    memory: Option<Py<MappedMemory>>,
    array: Py<PyAny>,
    name: String,
    /// Fork generation at start (see `crate::fork_gen`).
    fork_gen: u64,
}

impl WritableArray {
    pub fn start(
        py: Python<'_>,
        store: std::sync::Arc<numvault::Store>,
        name: &str,
    ) -> PyResult<WritableArray> {
        let n = name.to_string();
        let (session, path) = nogil(py, move || {
            let w = store.writable(&n)?;
            // The array is busy until finish, so its data file is stable.
            let path = store.view(&n)?.path().to_path_buf();
            Ok((w, path))
        })?;
        let shape = session.shape().to_vec();
        let dtype: DType = session.dtype();
        let len = (shape.iter().product::<u64>() as usize) * dtype.itemsize();
        let (memory, array) = if len == 0 {
            let (arr, _) = alloc(py, dtype, &shape)?;
            (None, arr.into_any().unbind())
        } else {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| PyOSError::new_err(format!("{}: {e}", path.display())))?;
            // SAFETY: the engine never shrinks data files; this file is only
            // written through this session while it is open.
            let mut map = unsafe { memmap2::MmapOptions::new().len(len).map_mut(&file) }
                .map_err(|e| PyOSError::new_err(format!("{}: {e}", path.display())))?;
            let ptr = map.as_mut_ptr() as usize;
            let mem = Bound::new(
                py,
                MappedMemory {
                    map,
                    file,
                    ptr,
                    len,
                    detached: std::sync::atomic::AtomicBool::new(false),
                },
            )?;
            // SAFETY: the mapping is owned by `mem`, the array's base.
            let arr = unsafe {
                borrowed_array(mem.clone().into_any(), dtype, &shape, ptr as *mut u8, true)?
            };
            (Some(mem.unbind()), arr.into_any().unbind())
        };
        Ok(WritableArray {
            session: Mutex::new(Some(session)),
            memory,
            array,
            name: name.to_string(),
            fork_gen: crate::fork_gen(),
        })
    }

    /// In a child process after fork(): drop the session without ending it
    /// (ending it would write to the parent's store).
    pub(crate) fn abandon(&self) {
        let session = match self.session.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        std::mem::forget(session);
    }

    fn forked(&self) -> bool {
        crate::fork_gen() != self.fork_gen
    }

    pub(crate) fn is_open(&self) -> bool {
        self.session.lock().map(|g| g.is_some()).unwrap_or(false)
    }

    pub(crate) fn array_name(&self) -> &str {
        &self.name
    }
}

#[pymethods]
impl WritableArray {
    /// The writable NumPy array over the stored rows.
    #[getter]
    fn array(&self, py: Python<'_>) -> Py<PyAny> {
        self.array.clone_ref(py)
    }

    /// Name of the array.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// True once the session has finished.
    #[getter]
    fn finished(&self) -> bool {
        !self.is_open()
    }

    /// End the session: log checksums over the new contents (durable per the
    /// store's sync policy) and detach the array from the file (it becomes a
    /// read-only private copy). Idempotent.
    pub fn finish(&self, py: Python<'_>) -> PyResult<()> {
        if self.forked() {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "this writable session was started before fork(); finish it in the parent",
            ));
        }
        let session = match self.session.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        let Some(session) = session else {
            return Ok(());
        };
        let res = nogil(py, move || session.finish());
        let detach = match &self.memory {
            Some(m) => m.get().detach(),
            None => Ok(()),
        };
        make_read_only(self.array.bind(py))?;
        res?;
        detach
    }

    fn __enter__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if !self.is_open() {
            return Err(PyValueError::new_err("the writable session has finished"));
        }
        Ok(self.array.clone_ref(py))
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.finish(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "WritableArray({:?}, {})",
            self.name,
            if self.is_open() { "open" } else { "finished" }
        )
    }
}

impl Drop for WritableArray {
    fn drop(&mut self) {
        if self.forked() {
            self.abandon();
            return;
        }
        // The engine session ends in its own Drop; detach our mapping so that
        // the array, if still referenced, cannot change the file afterwards.
        let open = self.session.get_mut().map(|s| s.take()).unwrap_or(None);
        drop(open);
        if let Some(m) = &self.memory {
            let _ = m.get().detach();
        }
    }
}

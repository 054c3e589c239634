//! `Vault`'s versions (FORMAT.md §15): snapshot, versions, time travel
//! (`at`, `Vault(path, "r", version=...)`), diff, restore, delete_snapshot,
//! gc and the format upgrade. A second `#[pymethods]` block of `Vault`.

use std::sync::Arc;

use numvault::{ArrayDiff, DType, OpenOptions, Store, VersionRef};
use pyo3::exceptions::{PyKeyError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList, PyString};

use crate::conv::{descr, shape_tuple};
use crate::errors::{nogil, ArrayInUseError};
use crate::vault::Vault;

/// A version named from Python: an int is an id, a str a tag; anything
/// else (bool included) is a `TypeError`. An int that no id can be
/// (negative, too large) is a `KeyError` like any unknown id.
pub(crate) fn version_ref(v: &Bound<'_, PyAny>) -> PyResult<VersionRef> {
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(VersionRef::Tag(s.to_str()?.to_string()));
    }
    if v.is_instance_of::<PyBool>() || v.is_instance(&numpy_bool(v.py())?)? {
        return Err(type_error(v));
    }
    let Ok(i) = v.py().import("operator")?.call_method1("index", (v,)) else {
        return Err(type_error(v));
    };
    match i.extract::<u64>() {
        Ok(id) => Ok(VersionRef::Id(id)),
        Err(_) => Err(PyKeyError::new_err(format!(
            "no version {i}: version ids are integers from 0 to 2**64-1"
        ))),
    }
}

fn numpy_bool(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    crate::conv::np(py)?.getattr("bool_")
}

fn type_error(v: &Bound<'_, PyAny>) -> PyErr {
    let t = v
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_string());
    PyTypeError::new_err(format!(
        "a version is an int (its id) or a str (its tag), not {t}"
    ))
}

/// `names=` of `restore`: None, one name, or an iterable of names.
fn name_list(names: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<String>>> {
    let Some(n) = names.filter(|n| !n.is_none()) else {
        return Ok(None);
    };
    if let Ok(s) = n.cast::<PyString>() {
        return Ok(Some(vec![s.to_str()?.to_string()]));
    }
    let mut out = Vec::new();
    for item in n.try_iter()? {
        let item = item?;
        match item.cast::<PyString>() {
            Ok(s) => out.push(s.to_str()?.to_string()),
            Err(_) => {
                return Err(PyTypeError::new_err(format!(
                    "names must be array names (str), got {}",
                    item.get_type().name()?
                )))
            }
        }
    }
    Ok(Some(out))
}

/// The handle through which version-level reads (`versions`, `at`, `diff`)
/// go: `s` itself, or for a version view (which knows no other version) a
/// read-only handle on the store's current state.
fn catalog(s: Arc<Store>) -> numvault::Result<Arc<Store>> {
    if s.version().is_none() {
        return Ok(s);
    }
    Ok(Arc::new(Store::open(s.path(), OpenOptions::read_only())?))
}

fn side<'py>(py: Python<'py>, side: &Option<(DType, Vec<u64>)>) -> PyResult<Bound<'py, PyAny>> {
    match side {
        None => Ok(py.None().into_bound(py)),
        Some((dtype, shape)) => {
            let d = PyDict::new(py);
            d.set_item("dtype", descr(py, *dtype))?;
            d.set_item("shape", shape_tuple(py, shape)?)?;
            Ok(d.into_any())
        }
    }
}

fn diff_entry<'py>(py: Python<'py>, d: &ArrayDiff) -> PyResult<Bound<'py, PyDict>> {
    let e = PyDict::new(py);
    e.set_item("kind", d.kind.as_str())?;
    e.set_item("renamed_from", d.renamed_from.as_deref())?;
    e.set_item("before", side(py, &d.before)?)?;
    e.set_item("after", side(py, &d.after)?)?;
    e.set_item("deleted", d.deleted.clone())?;
    e.set_item("appended", d.appended.clone())?;
    e.set_item("replaced", d.replaced.clone())?;
    Ok(e)
}

#[pymethods]
impl Vault {
    /// ``snapshot(tag=None) -> int``: pin the current committed state as a
    /// version and return its id (an increasing int). ``tag``, a str
    /// following the rules of array names and unique among the versions,
    /// names it too (``ValueError`` if taken). Costs one log record whatever
    /// the data's size: later changes write new rows and files, never the
    /// version's. A format-1 store raises ``NeedsUpgradeError`` (see
    /// ``upgrade()``); a read-only handle ``PermissionError``; an open
    /// writable session of this Vault (``writable()``) ``ArrayInUseError``.
    #[pyo3(signature = (tag=None))]
    fn snapshot(&self, py: Python<'_>, tag: Option<&Bound<'_, PyAny>>) -> PyResult<u64> {
        let tag: Option<String> = match tag.filter(|t| !t.is_none()) {
            None => None,
            Some(t) => match t.cast::<PyString>() {
                Ok(s) => Some(s.to_str()?.to_string()),
                Err(_) => {
                    return Err(PyTypeError::new_err(format!(
                        "a snapshot tag is a str, not {}",
                        t.get_type().name()?
                    )))
                }
            },
        };
        let s = self.store()?;
        if let Some(name) = self.open_session() {
            // The version would share the file the session writes in
            // place: it would not keep the rows it pins.
            return Err(ArrayInUseError::new_err(format!(
                "array '{name}' is open for in-place writing; finish that session before \
                 taking a snapshot"
            )));
        }
        nogil(py, move || s.snapshot(tag.as_deref()))
    }

    /// ``versions(name=None) -> list[dict]``: the versions, oldest first,
    /// each ``{"id", "tag" (str or None), "time" (float seconds since the
    /// epoch), "time_ns", "arrays" (sorted names), "own_bytes" (bytes of
    /// data only this version keeps: what deleting it and ``gc()`` would
    /// free)}``. With ``name``, only the versions in which that array was
    /// created, changed or dropped since the version before.
    #[pyo3(signature = (name=None))]
    fn versions<'py>(&self, py: Python<'py>, name: Option<String>) -> PyResult<Bound<'py, PyList>> {
        let s = self.store()?;
        let list = nogil(py, move || catalog(s)?.versions(name.as_deref()))?;
        let out = PyList::empty(py);
        for v in list {
            let d = PyDict::new(py);
            d.set_item("id", v.id)?;
            d.set_item("tag", v.tag)?;
            d.set_item("time", v.time_ns as f64 / 1e9)?;
            d.set_item("time_ns", v.time_ns)?;
            d.set_item("arrays", v.arrays)?;
            d.set_item("own_bytes", v.own_bytes)?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// ``at(version) -> Vault``: a read-only Vault on ``version`` (an int id
    /// or a str tag; ``KeyError`` if there is none): every read (``load``,
    /// ``lazy``, ``getitem``, ``batches``, ``names``, ``shape``, ``info``,
    /// ``verify``, ``v[name]``, ``name in v``, ``len(v)``...) shows the
    /// arrays as they were in it; changes raise ``PermissionError``. It does
    /// not follow later commits and stays valid after this Vault closes.
    /// While it is open the version cannot be deleted (it holds a lease):
    /// close it (or use it in a ``with`` block) when done. Lazy arrays from
    /// it pickle with their version.
    fn at(&self, py: Python<'_>, version: &Bound<'_, PyAny>) -> PyResult<Vault> {
        let v = version_ref(version)?;
        let s = self.store()?;
        let store = nogil(py, move || catalog(s)?.at(v))?;
        Ok(self.view_of(store))
    }

    /// The id of the version this handle shows (``at()``,
    /// ``Vault(path, "r", version=...)``), or None for the current state.
    #[getter]
    fn version(&self) -> PyResult<Option<u64>> {
        Ok(self.store()?.version())
    }

    /// ``diff(a, b=None) -> dict``: what changed from version ``a`` to
    /// version ``b`` (None: the current state; on a version view, that
    /// version), from metadata alone (no data is read). Maps each changed
    /// array's name (in ``b``; in ``a`` if dropped) to ``{"kind": "added" |
    /// "dropped" | "renamed" | "retyped" | "rewritten" | "modified",
    /// "renamed_from": old name or None, "before": {"dtype", "shape"} or
    /// None, "after": likewise, "deleted": [(start, end), ...] (rows of
    /// ``a``), "appended": [...], "replaced": [...] (rows of ``b``)}``;
    /// ranges are half-open. "rewritten" (saved anew or compacted): which
    /// rows changed is not known without reading data.
    #[pyo3(signature = (a, b=None))]
    fn diff<'py>(
        &self,
        py: Python<'py>,
        a: &Bound<'py, PyAny>,
        b: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let a = version_ref(a)?;
        let b = match b.filter(|b| !b.is_none()) {
            Some(b) => Some(version_ref(b)?),
            None => None,
        };
        let s = self.store()?;
        let diffs = nogil(py, move || {
            let b = b.or(s.version().map(VersionRef::Id));
            catalog(s)?.diff(a, b)
        })?;
        let out = PyDict::new(py);
        for d in &diffs {
            out.set_item(&d.name, diff_entry(py, d)?)?;
        }
        Ok(out)
    }

    /// ``restore(version, names=None)``: put all arrays (``names=None``;
    /// arrays the version lacks are dropped) or the named ones (a name or a
    /// list of names; ``KeyError`` for one the version lacks) back to their
    /// state in ``version``, in one atomic commit, without copying data.
    /// The restored arrays take appends and other changes as usual; the
    /// version itself never changes.
    #[pyo3(signature = (version, names=None))]
    fn restore(
        &self,
        py: Python<'_>,
        version: &Bound<'_, PyAny>,
        names: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let v = version_ref(version)?;
        let names = name_list(names)?;
        let s = self.store()?;
        nogil(py, move || {
            let refs: Option<Vec<&str>> = names
                .as_ref()
                .map(|n| n.iter().map(String::as_str).collect());
            s.restore(v, refs.as_deref())
        })
    }

    /// ``delete_snapshot(version)``: delete a version (id or tag). Its data
    /// stays on disk until ``gc()`` (or the next checkpoint) frees what no
    /// other version and no current array keeps. ``VersionInUseError``
    /// while a handle on the version (``at()``, ``Vault(path, "r",
    /// version=...)``, in any process) is open: close it first. LazyArrays
    /// hold no handle: they stay valid after the deletion.
    fn delete_snapshot(&self, py: Python<'_>, version: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = version_ref(version)?;
        let s = self.store()?;
        nogil(py, move || s.delete_snapshot(v))
    }

    /// ``gc() -> int``: free the files that deleted versions, drops and
    /// overwrites left behind (a checkpoint); returns the bytes freed.
    fn gc(&self, py: Python<'_>) -> PyResult<u64> {
        let s = self.store()?;
        nogil(py, move || s.gc())
    }

    /// ``upgrade() -> bool``: rewrite a format-1 store as format 2 (needed
    /// for versions), atomically; True if it was upgraded, False if it
    /// already was format 2. Older numvault releases cannot open it after.
    fn upgrade(&self, py: Python<'_>) -> PyResult<bool> {
        let s = self.store()?;
        nogil(py, move || s.upgrade())
    }

    /// The store's format version: 1 (no versions until ``upgrade()``) or 2.
    #[getter]
    fn format_version(&self) -> PyResult<u32> {
        Ok(self.store()?.format_version())
    }
}

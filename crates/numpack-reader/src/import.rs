//! Import a NumPack store into a numvault store in one atomic commit: the
//! one implementation behind `numvault import` and
//! `numvault.io.from_numpack`.

use std::path::Path;

use numvault::{ArrayRef, DType, Store, Txn};

use crate::error::{Error, Result};
use crate::store::{NumPackArray, NumPackStore};

/// Default bytes of rows read and staged at a time.
pub const DEFAULT_CHUNK_BYTES: usize = 8 << 20;

/// A filter of NumPack array names.
pub type Select = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// Which arrays to import, and how.
pub struct ImportOptions {
    /// Put the arrays under this group: `PREFIX/<name>`.
    pub prefix: Option<String>,
    /// Import only the NumPack arrays this accepts (by NumPack name).
    pub select: Option<Select>,
    /// Bytes of rows read and staged at a time (at least one row).
    pub chunk_bytes: usize,
    /// Drop every array the target store has, in the same commit.
    pub replace_all: bool,
    /// Open an existing target as a writer by turns (the lock taken only
    /// to commit), so it coexists with other handles on the store.
    pub shared: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            prefix: None,
            select: None,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
            replace_all: false,
            shared: false,
        }
    }
}

/// One array to import: the NumPack array and the numvault name.
#[derive(Debug, Clone)]
pub struct Planned<'s> {
    pub array: &'s NumPackArray,
    pub target: String,
}

/// One imported array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedArray {
    /// The NumPack name.
    pub source: String,
    /// The numvault name.
    pub name: String,
    pub dtype: DType,
    /// The imported shape (live rows only).
    pub shape: Vec<u64>,
    /// Rows NumPack had deleted (not imported).
    pub deleted_rows: u64,
    /// Bytes of rows imported.
    pub bytes: u64,
    /// Stored as segments in the NumPack store.
    pub segmented: bool,
}

/// The numvault name of NumPack array `name`.
pub fn target_name(prefix: Option<&str>, name: &str) -> String {
    match prefix.map(|p| p.trim_end_matches('/')) {
        Some(p) if !p.is_empty() => format!("{p}/{name}"),
        _ => name.to_string(),
    }
}

/// The arrays `opts` selects, with their numvault names (checked).
pub fn plan<'s>(src: &'s NumPackStore, opts: &ImportOptions) -> Result<Vec<Planned<'s>>> {
    let mut out = Vec::new();
    for a in &src.arrays {
        if let Some(sel) = &opts.select {
            if !sel(&a.name) {
                continue;
            }
        }
        let target = target_name(opts.prefix.as_deref(), &a.name);
        numvault::validate_name(&target).map_err(|e| {
            Error::unsupported(
                &src.metadata_path,
                Some(&a.name),
                format!(
                    "not a valid numvault array name: {e} (leave it out: --exclude on the command line, arrays= in from_numpack)"
                ),
            )
        })?;
        out.push(Planned { array: a, target });
    }
    Ok(out)
}

fn target_err(array: &str) -> impl Fn(numvault::Error) -> Error + '_ {
    move |source| Error::Target {
        array: Some(array.to_string()),
        source,
    }
}

/// Stage one array's live rows in `txn` (streamed, bounded memory).
pub fn stage_array(
    txn: &mut Txn,
    src: &NumPackStore,
    p: &Planned<'_>,
    chunk_bytes: usize,
    progress: &mut dyn FnMut(u64) -> Result<()>,
) -> Result<ImportedArray> {
    let a = p.array;
    let shape = a.shape();
    let terr = target_err(&p.target);
    if a.row_bytes == 0 {
        // A zero in the row shape: no bytes to stream.
        txn.save(&p.target, ArrayRef::new(a.dtype, &shape, &[]))
            .map_err(&terr)?;
    } else {
        let mut w = txn
            .save_stream(&p.target, a.dtype, &shape[1..])
            .map_err(&terr)?;
        src.stream_rows(a, chunk_bytes, |rows| {
            w.write(rows).map_err(&terr)?;
            progress(rows.len() as u64)
        })?;
        if w.rows() != a.live_rows() {
            return Err(Error::corrupt(
                &src.metadata_path,
                Some(&a.name),
                a.meta.offset,
                format!(
                    "read {} live rows, the deletion bitmap counts {}",
                    w.rows(),
                    a.live_rows()
                ),
            ));
        }
        w.finish().map_err(&terr)?;
    }
    Ok(ImportedArray {
        source: a.name.clone(),
        name: p.target.clone(),
        dtype: a.dtype,
        shape,
        deleted_rows: a.deleted_rows(),
        bytes: a.live_bytes(),
        segmented: a.is_segmented(),
    })
}

/// Import `planned` arrays of `src` into `store` in one transaction: every
/// array or, on any error, none (the store is left as it was). Arrays of the
/// same name in `store` are replaced; with `replace_all` every other array
/// of `store` is dropped in the same commit. `progress` gets the bytes of
/// rows staged; an error from it cancels the import.
pub fn import_into(
    store: &Store,
    src: &NumPackStore,
    planned: &[Planned<'_>],
    opts: &ImportOptions,
    progress: &mut dyn FnMut(u64) -> Result<()>,
) -> Result<Vec<ImportedArray>> {
    let chunk_bytes = opts.chunk_bytes;
    let mut txn = store.begin()?;
    if opts.replace_all {
        for n in txn.names() {
            txn.drop_array(&n)?;
        }
    }
    let mut out = Vec::with_capacity(planned.len());
    for p in planned {
        out.push(stage_array(&mut txn, src, p, chunk_bytes, progress)?);
    }
    // Dropping `txn` on an error above removes its staging files.
    txn.commit()?;
    Ok(out)
}

/// What [`import_dir`] did.
#[derive(Debug, Clone)]
pub struct ImportReport {
    pub arrays: Vec<ImportedArray>,
    /// The store was created by this import.
    pub created: bool,
}

/// Open the NumPack store `src`, check it whole, and import it into the
/// numvault store `dst` (created if missing) in one commit. On any error
/// nothing is committed, and a `dst` this call created is removed again (an
/// empty directory is left empty).
pub fn import_dir(
    src: &Path,
    dst: &Path,
    opts: &ImportOptions,
    progress: &mut dyn FnMut(u64) -> Result<()>,
) -> Result<ImportReport> {
    let np = NumPackStore::open(src)?;
    let planned = plan(&np, opts)?;
    let existed = dst.exists();
    // An empty directory is given back empty (not as an empty store).
    let was_empty_dir = existed
        && std::fs::read_dir(dst)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
    let store = Store::open(
        dst,
        numvault::OpenOptions::default().shared(opts.shared && existed && !was_empty_dir),
    )?;
    match import_into(&store, &np, &planned, opts, progress) {
        Ok(arrays) => {
            store.close()?;
            Ok(ImportReport {
                arrays,
                created: !existed,
            })
        }
        Err(e) => {
            let _ = store.close();
            if !existed || was_empty_dir {
                // Nothing was committed to the store this call created.
                let _ = std::fs::remove_dir_all(dst);
                if was_empty_dir {
                    let _ = std::fs::create_dir(dst);
                }
            }
            Err(e)
        }
    }
}

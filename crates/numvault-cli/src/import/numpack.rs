//! `numvault import STORE NUMPACK_DIR`: a NumPack store directory (one
//! holding `metadata.npkm`, or any directory with `--from numpack`)
//! imported whole in one commit by the `numpack-reader` crate (the code
//! behind `numvault.io.from_numpack` too).
//!
//! `--include`/`--exclude` globs match NumPack array names, `--prefix` puts
//! the arrays under a group, `--dry-run` checks the NumPack store (every
//! record against its files) and lists what would be imported. NumPack
//! imports are not recorded in `imports.json` (`status` does not track
//! them); importing again replaces the arrays.

use std::path::Path;

use globset::GlobSet;
use numpack_reader::{Error as NpError, ImportOptions, NumPackStore};
use serde_json::json;

use super::{globs, ImportArgs, SourceKind};
use crate::out::{human_bytes, table, Fail, Out};

/// Is this import one of a NumPack store? (`--from numpack`, or a path that
/// is a NumPack store directory.)
pub(crate) fn wanted(a: &ImportArgs) -> bool {
    a.from == Some(SourceKind::Numpack)
        || a.paths.iter().any(|p| numpack_reader::is_numpack_store(p))
}

fn fail(e: NpError) -> Fail {
    match e {
        NpError::Corrupt { .. } | NpError::Unsupported { .. } => Fail::Damage(e.to_string()),
        NpError::NotNumPack { .. } => Fail::Usage(format!(
            "{e}; --from numpack needs a NumPack store directory"
        )),
        NpError::Target { source, .. } => {
            let f = Fail::from(source);
            match f {
                Fail::Damage(m) => Fail::Damage(format!("the target store: {m}")),
                other => other,
            }
        }
        _ => Fail::Error(e.to_string()),
    }
}

fn select(include: Option<GlobSet>, exclude: Option<GlobSet>) -> Option<numpack_reader::Select> {
    if include.is_none() && exclude.is_none() {
        return None;
    }
    Some(Box::new(move |n: &str| {
        include.as_ref().is_none_or(|g| g.is_match(n))
            && !exclude.as_ref().is_some_and(|g| g.is_match(n))
    }))
}

fn shape_str(s: &[u64]) -> String {
    let parts: Vec<String> = s.iter().map(u64::to_string).collect();
    if parts.len() == 1 {
        format!("({},)", parts[0])
    } else {
        format!("({})", parts.join(", "))
    }
}

pub(crate) fn import(out: &Out, a: &ImportArgs) -> Result<(), Fail> {
    let [src] = a.paths.as_slice() else {
        return Err(Fail::Usage(
            "a NumPack store is imported on its own: give exactly one NUMPACK_DIR".into(),
        ));
    };
    let prefix = a
        .prefix
        .as_deref()
        .map(|p| p.trim_end_matches('/'))
        .filter(|p| !p.is_empty());
    if let Some(p) = prefix {
        numvault::validate_name(p).map_err(|e| Fail::Usage(format!("--prefix: {e}")))?;
    }
    let opts = ImportOptions {
        prefix: prefix.map(str::to_string),
        select: select(globs(&a.include)?, globs(&a.exclude)?),
        ..ImportOptions::default()
    };
    let np = NumPackStore::open(src).map_err(fail)?;
    let planned = numpack_reader::plan(&np, &opts).map_err(fail)?;
    let total: u64 = planned.iter().map(|p| p.array.live_bytes()).sum();
    let arrays: Vec<(String, String, String, Vec<u64>, u64, u64)> = if a.dry_run {
        planned
            .iter()
            .map(|p| {
                (
                    p.array.name.clone(),
                    p.target.clone(),
                    p.array.dtype.to_string(),
                    p.array.shape(),
                    p.array.deleted_rows(),
                    p.array.live_bytes(),
                )
            })
            .collect()
    } else {
        let pb = out.bytes_bar(total, "importing");
        let res = import_planned(src, &a.c.store, &opts, &mut |n| {
            pb.inc(n);
            Ok(())
        });
        pb.finish_and_clear();
        res?.into_iter()
            .map(|r| {
                (
                    r.source,
                    r.name,
                    r.dtype.to_string(),
                    r.shape,
                    r.deleted_rows,
                    r.bytes,
                )
            })
            .collect()
    };
    report(out, src, &arrays, a.dry_run)
}

fn import_planned(
    src: &Path,
    store: &Path,
    opts: &ImportOptions,
    progress: &mut dyn FnMut(u64) -> numpack_reader::Result<()>,
) -> Result<Vec<numpack_reader::ImportedArray>, Fail> {
    numpack_reader::import_dir(src, store, opts, progress)
        .map(|r| r.arrays)
        .map_err(fail)
}

type Row = (String, String, String, Vec<u64>, u64, u64);

fn report(out: &Out, src: &Path, arrays: &[Row], dry_run: bool) -> Result<(), Fail> {
    let rows: u64 = arrays
        .iter()
        .map(|r| r.3.first().copied().unwrap_or(0))
        .sum();
    let deleted: u64 = arrays.iter().map(|r| r.4).sum();
    let bytes: u64 = arrays.iter().map(|r| r.5).sum();
    out.doc(&json!({
        "ok": true,
        "dry_run": dry_run,
        "format": "numpack",
        "source": src.display().to_string(),
        "arrays": arrays.iter().map(|(source, name, dtype, shape, del, b)| json!({
            "source": source, "name": name, "dtype": dtype, "shape": shape,
            "deleted_rows": del, "bytes": b,
        })).collect::<Vec<_>>(),
        "imported": if dry_run { 0 } else { arrays.len() },
        "rows": rows,
        "deleted_rows": deleted,
        "bytes": bytes,
    }))?;
    let table_rows: Vec<Vec<String>> = arrays
        .iter()
        .map(|(source, name, dtype, shape, del, b)| {
            vec![
                name.clone(),
                dtype.clone(),
                shape_str(shape),
                if *del > 0 {
                    del.to_string()
                } else {
                    String::new()
                },
                human_bytes(*b),
                if source != name {
                    source.clone()
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    if !table_rows.is_empty() {
        for l in table(
            &[
                "ARRAY",
                "DTYPE",
                "SHAPE",
                "DELETED",
                "BYTES",
                "NUMPACK NAME",
            ],
            &table_rows,
        ) {
            out.line(l)?;
        }
    }
    out.line(format!(
        "NumPack store {}: {} {} arrays ({} rows, {}; {} deleted rows left out){}",
        src.display(),
        if dry_run { "would import" } else { "imported" },
        arrays.len(),
        rows,
        human_bytes(bytes),
        deleted,
        if dry_run { "" } else { " in one commit" }
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    fn fixture(v: &str) -> PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/numpack")
            .join(v)
            .join("store")
    }

    fn run(args: &[&std::ffi::OsStr]) -> i32 {
        let mut v: Vec<std::ffi::OsString> = vec!["numvault".into(), "--quiet".into()];
        v.extend(args.iter().map(|a| a.to_os_string()));
        crate::run(v)
    }

    #[test]
    fn imports_each_version_and_refuses_damage() {
        let t = tempfile::tempdir().unwrap();
        for v in ["0.5.2", "0.6.0", "0.7.0"] {
            let dst = t.path().join(v);
            let src = fixture(v);
            assert_eq!(
                run(&["import".as_ref(), dst.as_os_str(), src.as_os_str()]),
                0
            );
            let st = numvault::Store::open(&dst, numvault::OpenOptions::read_only()).unwrap();
            let np = numpack_reader::NumPackStore::open(&src).unwrap();
            assert_eq!(st.len(), np.arrays.len());
            for a in &np.arrays {
                assert_eq!(st.read(&a.name).unwrap().data, np.read_array(a).unwrap());
            }
        }
        // Damaged: exit 1, the target unchanged, a new target not created.
        let bad = t.path().join("bad");
        std::fs::create_dir(&bad).unwrap();
        for e in std::fs::read_dir(fixture("0.6.0")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), bad.join(e.file_name())).unwrap();
        }
        let f = bad.join("data_cube.npkd");
        let len = std::fs::metadata(&f).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&f)
            .unwrap()
            .set_len(len - 1)
            .unwrap();
        let dst = t.path().join("0.5.2");
        let before = numvault::Store::open(&dst, numvault::OpenOptions::read_only())
            .unwrap()
            .last_seq();
        assert_eq!(
            run(&["import".as_ref(), dst.as_os_str(), bad.as_os_str()]),
            1
        );
        let after = numvault::Store::open(&dst, numvault::OpenOptions::read_only())
            .unwrap()
            .last_seq();
        assert_eq!(before, after);
        let fresh = t.path().join("fresh");
        assert_eq!(
            run(&["import".as_ref(), fresh.as_os_str(), bad.as_os_str()]),
            1
        );
        assert!(!fresh.exists());
        // Usage: --from numpack on a directory that is not one; two stores.
        let empty = t.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let args = [
            "import".as_ref(),
            fresh.as_os_str(),
            empty.as_os_str(),
            "--from".as_ref(),
            "numpack".as_ref(),
        ];
        assert_eq!(run(&args), 2);
        let src = fixture("0.7.0");
        assert_eq!(
            run(&[
                "import".as_ref(),
                fresh.as_os_str(),
                src.as_os_str(),
                src.as_os_str()
            ]),
            2
        );
        assert!(!fresh.exists());
    }
}

//! Versions (docs/FORMAT.md §15): snapshot, versions, diff, restore,
//! delete-snapshot, gc, upgrade, and the `--version V` of the reading verbs.

use std::path::Path;

use numvault::{ArrayDiff, DType, DiffKind, Error, Store, VersionInfo, VersionRef};
use serde_json::{json, Value};

use crate::inspect::{dir_bytes, open_ro, open_rw};
use crate::out::{human_bytes, shape_str, table, time_str, Fail, Out};
use crate::{At, Common};

/// At most this many row ranges per kind in diff's text (all in --json).
const TEXT_RANGES: usize = 8;

/// A store opened for reading, at a version when `--version` asked for one.
pub(crate) struct Opened {
    /// The store's current state (read-only).
    pub base: Store,
    /// The version's read-only handle, with `--version`.
    pub view: Option<Store>,
}

impl Opened {
    /// The handle the verb reads: the version's, else the current state's.
    pub fn store(&self) -> &Store {
        self.view.as_ref().unwrap_or(&self.base)
    }

    /// The version read, with its tag and time.
    pub fn version(&self) -> Result<Option<VersionInfo>, Fail> {
        match self.view.as_ref().and_then(Store::version) {
            Some(id) => Ok(Some(describe(&self.base, id)?)),
            None => Ok(None),
        }
    }
}

/// Open `path` read-only, and version `at.at` of it if given.
pub(crate) fn open_at(path: &Path, at: &At) -> Result<Opened, Fail> {
    let base = open_ro(path)?;
    let view = match &at.at {
        Some(v) => Some(version_handle(&base, v)?),
        None => None,
    };
    Ok(Opened { base, view })
}

/// `NeedsUpgrade` (whose message says how to upgrade) on a format-1 store.
fn require_versions(store: &Store, what: &str) -> Result<(), Fail> {
    let found = store.format_version();
    if found < 2 {
        return Err(Error::NeedsUpgrade {
            path: store.path().to_path_buf(),
            found,
            needed: 2,
            what: what.to_string(),
        }
        .into());
    }
    Ok(())
}

/// A version argument as the engine reads it: digits are an id, anything
/// else a tag.
pub(crate) fn version_ref(v: &str) -> VersionRef {
    VersionRef::parse(v)
}

/// A missing version as a usage error that says where the list is.
fn no_such(e: Error) -> Fail {
    match e {
        Error::NoSuchVersion { ref path, .. } => Fail::Usage(format!(
            "{e} (`numvault versions {}` lists them)",
            path.display()
        )),
        e => e.into(),
    }
}

/// Version `v` (an id or a tag) of `store`, read-only. Digits name an id;
/// a tag made of digits is found when no version has that id.
pub(crate) fn version_handle(store: &Store, v: &str) -> Result<Store, Fail> {
    require_versions(store, "reading a version")?;
    let r = version_ref(v);
    let digits = matches!(r, VersionRef::Id(_));
    match store.at(r) {
        Ok(h) => Ok(h),
        Err(e @ Error::NoSuchVersion { .. }) if digits => store
            .at(VersionRef::Tag(v.to_string()))
            .map_err(|_| no_such(e)),
        Err(e) => Err(no_such(e)),
    }
}

/// The id of version `v` (an id or a tag).
fn resolve(store: &Store, v: &str) -> Result<u64, Fail> {
    version_handle(store, v)?
        .version()
        .ok_or_else(|| Fail::Error(format!("version {v}: the engine returned no id")))
}

/// Tag, time, arrays and own bytes of version `id`.
fn describe(store: &Store, id: u64) -> Result<VersionInfo, Fail> {
    store
        .versions(None)?
        .into_iter()
        .find(|v| v.id == id)
        .ok_or_else(|| {
            no_such(Error::NoSuchVersion {
                path: store.path().to_path_buf(),
                version: id.to_string(),
            })
        })
}

/// `version 7` or `version 7 ('nightly')`.
pub(crate) fn label(v: &VersionInfo) -> String {
    match &v.tag {
        Some(t) => format!("version {} ('{t}')", v.id),
        None => format!("version {}", v.id),
    }
}

/// A version's id, tag and time as JSON.
pub(crate) fn version_json(v: &VersionInfo) -> Value {
    json!({"id": v.id, "tag": v.tag, "time": time_str(v.time_ns), "time_ns": v.time_ns})
}

/// The number of versions, 0 for a format-1 store.
pub(crate) fn count(store: &Store) -> Result<usize, Error> {
    if store.format_version() < 2 {
        return Ok(0);
    }
    Ok(store.version_count())
}

pub(crate) fn snapshot(out: &Out, c: &Common, tag: Option<&str>) -> Result<(), Fail> {
    let store = open_rw(&c.store)?;
    require_versions(&store, "snapshot")?;
    let id = store.snapshot(tag).map_err(|e| match e {
        // A tag in use.
        Error::InvalidArgument(m) => Fail::Usage(m),
        e => e.into(),
    })?;
    let v = describe(&store, id)?;
    store.close()?;
    let mut doc = version_json(&v);
    doc["ok"] = json!(true);
    doc["arrays"] = json!(v.arrays.len());
    out.doc(&doc)?;
    out.line(id.to_string())
}

pub(crate) fn versions(out: &Out, c: &Common, array: Option<&str>) -> Result<(), Fail> {
    let store = open_ro(&c.store)?;
    require_versions(&store, "listing versions")?;
    let vs = store.versions(array)?;
    out.doc(&json!({
        "ok": true,
        "array": array,
        "versions": vs.iter().map(|v| {
            let mut j = version_json(v);
            j["arrays"] = json!(v.arrays);
            j["array_count"] = json!(v.arrays.len());
            j["own_bytes"] = json!(v.own_bytes);
            j
        }).collect::<Vec<_>>(),
    }))?;
    if vs.is_empty() {
        return out.line(match array {
            Some(a) => format!("(no version in which '{a}' changed)"),
            None => format!(
                "(no versions; `numvault snapshot {}` takes one)",
                c.store.display()
            ),
        });
    }
    let rows: Vec<Vec<String>> = vs
        .iter()
        .map(|v| {
            vec![
                v.id.to_string(),
                v.tag.clone().unwrap_or_else(|| "-".into()),
                time_str(v.time_ns),
                v.arrays.len().to_string(),
                human_bytes(v.own_bytes),
            ]
        })
        .collect();
    for l in table(&["ID", "TAG", "TIME", "ARRAYS", "OWN BYTES"], &rows) {
        out.line(l)?;
    }
    Ok(())
}

/// `(1000, 4) float32`.
fn typed_shape(t: &Option<(DType, Vec<u64>)>) -> String {
    match t {
        Some((d, s)) => format!("{} {d}", shape_str(s)),
        None => "-".into(),
    }
}

/// Rows in half-open ranges.
fn rows_in(ranges: &[(u64, u64)]) -> u64 {
    ranges.iter().map(|(s, e)| e - s).sum()
}

/// `0..3, 7..8` (at most `max` ranges, then how many more).
pub(crate) fn ranges_str(ranges: &[(u64, u64)], max: usize) -> String {
    let mut parts: Vec<String> = ranges
        .iter()
        .take(max)
        .map(|(s, e)| format!("{s}..{e}"))
        .collect();
    if ranges.len() > max {
        parts.push(format!("... ({} more ranges)", ranges.len() - max));
    }
    parts.join(", ")
}

fn typed_json(t: &Option<(DType, Vec<u64>)>) -> Value {
    match t {
        Some((d, s)) => json!({"dtype": d.to_string(), "shape": s}),
        None => Value::Null,
    }
}

fn ranges_json(r: &[(u64, u64)]) -> Value {
    json!(r.iter().map(|(s, e)| [s, e]).collect::<Vec<_>>())
}

pub(crate) fn diff_json(d: &ArrayDiff) -> Value {
    json!({
        "name": d.name,
        "kind": d.kind.as_str(),
        "renamed_from": d.renamed_from,
        "before": typed_json(&d.before),
        "after": typed_json(&d.after),
        "deleted": ranges_json(&d.deleted),
        "appended": ranges_json(&d.appended),
        "replaced": ranges_json(&d.replaced),
        "rows_deleted": rows_in(&d.deleted),
        "rows_appended": rows_in(&d.appended),
        "rows_replaced": rows_in(&d.replaced),
    })
}

/// The text of one array's difference: a head line (kind, name, types)
/// and indented row-range lines.
pub(crate) fn diff_lines(d: &ArrayDiff, name_width: usize) -> Vec<String> {
    let name = match &d.renamed_from {
        Some(from) => format!("{from} -> {}", d.name),
        None => d.name.clone(),
    };
    let what = match d.kind {
        DiffKind::Added => typed_shape(&d.after),
        DiffKind::Dropped => typed_shape(&d.before),
        _ if d.before == d.after => typed_shape(&d.after),
        _ => format!("{} -> {}", typed_shape(&d.before), typed_shape(&d.after)),
    };
    let mut lines = vec![format!(
        "{:<9}  {name:<name_width$}  {what}",
        d.kind.as_str()
    )];
    let indent = " ".repeat(11);
    for (verb, r) in [
        ("deleted", &d.deleted),
        ("appended", &d.appended),
        ("replaced", &d.replaced),
    ] {
        if !r.is_empty() {
            let n = rows_in(r);
            lines.push(format!(
                "{indent}{verb} {n} row{}: {}",
                if n == 1 { "" } else { "s" },
                ranges_str(r, TEXT_RANGES)
            ));
        }
    }
    if d.kind == DiffKind::Rewritten {
        lines.push(format!(
            "{indent}saved anew or compacted: which rows changed is not known without reading data"
        ));
    }
    lines
}

pub(crate) fn diff(out: &Out, c: &Common, a: &str, b: Option<&str>) -> Result<(), Fail> {
    let store = open_ro(&c.store)?;
    require_versions(&store, "diff")?;
    let va = describe(&store, resolve(&store, a)?)?;
    let vb = match b {
        Some(b) => Some(describe(&store, resolve(&store, b)?)?),
        None => None,
    };
    let diffs = store.diff(VersionRef::Id(va.id), vb.as_ref().map(|v| v.id.into()))?;
    out.doc(&json!({
        "ok": true,
        "from": version_json(&va),
        "to": vb.as_ref().map(version_json),
        "arrays": diffs.iter().map(diff_json).collect::<Vec<_>>(),
    }))?;
    let to = vb
        .as_ref()
        .map(label)
        .unwrap_or_else(|| "the current state".into());
    if diffs.is_empty() {
        return out.line(format!("{} -> {to}: no differences", label(&va)));
    }
    out.line(format!(
        "{} -> {to}: {} array{} differ{}",
        label(&va),
        diffs.len(),
        if diffs.len() == 1 { "" } else { "s" },
        if diffs.len() == 1 { "s" } else { "" },
    ))?;
    let width = diffs
        .iter()
        .map(|d| match &d.renamed_from {
            Some(f) => f.chars().count() + 4 + d.name.chars().count(),
            None => d.name.chars().count(),
        })
        .max()
        .unwrap_or(0);
    for d in &diffs {
        for l in diff_lines(d, width) {
            out.line(l.trim_end())?;
        }
    }
    Ok(())
}

/// What restoring version `v` over the current state changes, from the
/// diff version -> current: (arrays restored, arrays dropped, named arrays
/// already as in the version).
pub(crate) fn restore_effect(
    diffs: &[ArrayDiff],
    names: &[String],
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut restored, mut dropped, mut unchanged) = (Vec::new(), Vec::new(), Vec::new());
    if names.is_empty() {
        for d in diffs {
            match d.kind {
                DiffKind::Added => dropped.push(d.name.clone()),
                DiffKind::Renamed => {
                    dropped.push(d.name.clone());
                    restored.extend(d.renamed_from.clone());
                }
                _ => restored.push(d.name.clone()),
            }
        }
    } else {
        for n in names {
            let touched = diffs.iter().any(|d| {
                (d.name == *n && d.kind != DiffKind::Added) || d.renamed_from.as_ref() == Some(n)
            });
            if touched {
                restored.push(n.clone());
            } else {
                unchanged.push(n.clone());
            }
        }
    }
    restored.sort();
    restored.dedup();
    unchanged.dedup();
    (restored, dropped, unchanged)
}

pub(crate) fn restore(out: &Out, c: &Common, v: &str, names: &[String]) -> Result<(), Fail> {
    let store = open_rw(&c.store)?;
    require_versions(&store, "restore")?;
    let info = describe(&store, resolve(&store, v)?)?;
    let diffs = store.diff(VersionRef::Id(info.id), None)?;
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    store.restore(
        VersionRef::Id(info.id),
        (!names.is_empty()).then_some(&refs[..]),
    )?;
    store.close()?;
    let (restored, dropped, unchanged) = restore_effect(&diffs, names);
    out.doc(&json!({
        "ok": true,
        "version": version_json(&info),
        "restored": restored,
        "dropped": dropped,
        "unchanged": unchanged,
    }))?;
    if restored.is_empty() && dropped.is_empty() {
        return out.line(format!(
            "nothing to restore: the arrays already are as in {}",
            label(&info)
        ));
    }
    if !restored.is_empty() {
        out.line(format!(
            "restored from {}: {}",
            label(&info),
            restored.join(", ")
        ))?;
    }
    if !dropped.is_empty() {
        out.line(format!(
            "dropped (not in {}): {}",
            label(&info),
            dropped.join(", ")
        ))?;
    }
    if !unchanged.is_empty() {
        out.line(format!(
            "already as in {}: {}",
            label(&info),
            unchanged.join(", ")
        ))?;
    }
    Ok(())
}

pub(crate) fn delete_snapshot(out: &Out, c: &Common, v: &str) -> Result<(), Fail> {
    let store = open_rw(&c.store)?;
    require_versions(&store, "delete-snapshot")?;
    let info = describe(&store, resolve(&store, v)?)?;
    store.delete_snapshot(VersionRef::Id(info.id))?;
    store.close()?;
    let mut deleted = version_json(&info);
    deleted["own_bytes"] = json!(info.own_bytes);
    out.doc(&json!({"ok": true, "deleted": deleted}))?;
    if info.own_bytes == 0 {
        return out.line(format!(
            "deleted {}; it kept no data of its own",
            label(&info)
        ));
    }
    out.line(format!(
        "deleted {}; `numvault gc {}` frees the {} only it kept",
        label(&info),
        c.store.display(),
        human_bytes(info.own_bytes)
    ))
}

pub(crate) fn gc(out: &Out, c: &Common) -> Result<(), Fail> {
    let store = open_rw(&c.store)?;
    let before = dir_bytes(&c.store);
    let freed = store.gc()?;
    store.close()?;
    let after = dir_bytes(&c.store);
    out.doc(&json!({
        "ok": true, "bytes_freed": freed,
        "store_bytes_before": before, "store_bytes_after": after,
    }))?;
    out.line(format!(
        "freed {} ({freed} bytes); store directory {} -> {}",
        human_bytes(freed),
        human_bytes(before),
        human_bytes(after)
    ))
}

pub(crate) fn upgrade(out: &Out, c: &Common) -> Result<(), Fail> {
    let store = open_rw(&c.store)?;
    let before = store.format_version();
    let upgraded = store.upgrade()?;
    let after = store.format_version();
    store.close()?;
    out.doc(&json!({
        "ok": true, "upgraded": upgraded,
        "format_version_before": before, "format_version": after,
    }))?;
    if upgraded {
        out.line(format!(
            "upgraded {} from format version {before} to {after}; older numvault releases cannot open it now",
            c.store.display()
        ))
    } else {
        out.line(format!(
            "{} is already format version {after}; nothing to do",
            c.store.display()
        ))
    }
}

#[cfg(test)]
mod tests;

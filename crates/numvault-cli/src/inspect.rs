//! info, ls, show, verify, log, compact, export.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use numvault::{hash_hex, ArrayInfo, DType, OpenOptions, Store};
use serde_json::{json, Value};

use crate::out::{human_bytes, now_ns, problem_json, shape_str, table, time_str, Fail, Out};
use crate::versions::{self, open_at};
use crate::{At, Common};

/// Open a store read-only; a missing directory is a clear error.
pub(crate) fn open_ro(path: &Path) -> Result<Store, Fail> {
    if !path.is_dir() {
        return Err(Fail::Error(format!(
            "{}: no such store directory",
            path.display()
        )));
    }
    Ok(Store::open(path, OpenOptions::read_only())?)
}

/// Open a store for writing, never creating one.
pub(crate) fn open_rw(path: &Path) -> Result<Store, Fail> {
    if !path.is_dir() {
        return Err(Fail::Error(format!(
            "{}: no such store directory",
            path.display()
        )));
    }
    let opts = OpenOptions {
        create: false,
        ..OpenOptions::default()
    };
    Ok(Store::open(path, opts)?)
}

/// ` (version 7)` for a version handle.
fn at_suffix(store: &Store) -> String {
    store
        .version()
        .map(|id| format!(" (version {id})"))
        .unwrap_or_default()
}

fn infos(store: &Store, prefix: &str) -> Result<Vec<ArrayInfo>, Fail> {
    let mut v = Vec::new();
    for n in store.list(prefix) {
        v.push(store.info(&n)?);
    }
    Ok(v)
}

/// Apparent size of every file under `dir`.
pub(crate) fn dir_bytes(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

fn file_bytes(p: &Path) -> (u64, u64) {
    std::fs::metadata(p)
        .map(|m| (m.len(), m.blocks() * 512))
        .unwrap_or((0, 0))
}

pub(crate) fn info(out: &Out, c: &Common, at: &At) -> Result<(), Fail> {
    let opened = open_at(&c.store, at)?;
    let store = opened.store();
    let base = &opened.base;
    let format = base.format_version();
    // A version file that does not load is verify's to report; info still
    // shows the rest.
    let n_versions = versions::count(base);
    let version = opened.version()?;
    let arrays = infos(store, "")?;
    let hist = base.history();
    let (commits, last_commit, history_ok) = match &hist {
        Ok(h) => (
            h.commits.len() as u64,
            h.commits.last().map(|c| c.time_ns),
            h.is_clean(),
        ),
        Err(_) => (0, None, false),
    };
    let log_records = hist
        .as_ref()
        .map(|h| h.commits.iter().filter(|c| c.in_log).count())
        .unwrap_or(0);
    let mut rows = Vec::new();
    let mut jarrays = Vec::new();
    let (mut t_rows, mut t_dead, mut t_logical, mut t_disk) = (0u64, 0u64, 0u64, 0u64);
    for a in &arrays {
        let (disk, _) = file_bytes(&c.store.join(&a.file));
        let nrows = a.shape.first().copied().unwrap_or(0);
        let row_bytes: u64 = a.shape.iter().skip(1).product::<u64>() * a.dtype.itemsize() as u64;
        let logical = nrows * row_bytes;
        t_rows += nrows;
        t_dead += a.dead_rows;
        t_logical += logical;
        t_disk += disk;
        rows.push(vec![
            a.name.clone(),
            shape_str(&a.shape),
            a.dtype.to_string(),
            a.dead_rows.to_string(),
            human_bytes(disk),
            time_str(a.mtime_ns),
        ]);
        jarrays.push(json!({
            "name": a.name,
            "shape": a.shape,
            "dtype": a.dtype.to_string(),
            "rows": nrows,
            "dead_rows": a.dead_rows,
            "logical_bytes": logical,
            "data_bytes": a.data_bytes,
            "bytes_on_disk": disk,
            "unchecksummed_bytes": a.unchecksummed_bytes,
            "file": a.file.display().to_string(),
            "mtime": time_str(a.mtime_ns),
            "mtime_ns": a.mtime_ns,
        }));
    }
    let store_bytes = dir_bytes(&c.store);
    out.doc(&json!({
        "ok": true,
        "store": c.store.display().to_string(),
        "format_version": format,
        "engine_format_version": numvault::FORMAT_VERSION,
        "versions": n_versions.as_ref().ok(),
        "version": version.as_ref().map(versions::version_json),
        "durability": {
            "policy": "chosen by each writer when it opens the store",
            "default": "flush",
            "policies": ["always", "group", "flush", "never"],
        },
        "last_seq": base.last_seq(),
        "log_records_since_checkpoint": log_records,
        "commits_in_history": commits,
        "history_clean": history_ok,
        "last_commit": last_commit.map(time_str),
        "last_commit_ns": last_commit,
        "arrays": jarrays,
        "totals": {
            "arrays": arrays.len(),
            "rows": t_rows,
            "dead_rows": t_dead,
            "logical_bytes": t_logical,
            "data_file_bytes": t_disk,
            "store_bytes": store_bytes,
        },
    }))?;
    out.line(format!("store:          {}", c.store.display()))?;
    if let Some(v) = &version {
        out.line(format!(
            "showing:        {}, taken {} (read-only)",
            versions::label(v),
            time_str(v.time_ns)
        ))?;
    }
    out.line(format!(
        "format version: {format}{}",
        if format < numvault::FORMAT_VERSION {
            format!(
                " (versions need {}: `numvault upgrade {}`)",
                numvault::FORMAT_VERSION,
                c.store.display()
            )
        } else {
            String::new()
        }
    ))?;
    if format >= 2 {
        out.line(match &n_versions {
            Ok(n) => format!("versions:       {n}"),
            Err(e) => format!("versions:       unknown: {e} (run `numvault verify`)"),
        })?;
    }
    out.line("durability:     chosen by each writer at open (always | group | flush | never; default flush)")?;
    out.line(format!(
        "commits:        {} (last seq {}), {} in the log since the last checkpoint{}",
        commits,
        base.last_seq(),
        log_records,
        if history_ok {
            ""
        } else {
            "; history has problems (run `numvault log`)"
        }
    ))?;
    out.line(format!(
        "last commit:    {}",
        last_commit.map(time_str).unwrap_or_else(|| "none".into())
    ))?;
    out.line("")?;
    if rows.is_empty() {
        out.line("(no arrays)")?;
    } else {
        for l in table(
            &[
                "ARRAY",
                "SHAPE",
                "DTYPE",
                "DEAD ROWS",
                "ON DISK",
                "LAST CHANGE",
            ],
            &rows,
        ) {
            out.line(l)?;
        }
    }
    out.line("")?;
    out.line(format!(
        "totals: {} arrays, {} rows ({}), {} dead rows; data files {}, store directory {}",
        arrays.len(),
        t_rows,
        human_bytes(t_logical),
        t_dead,
        human_bytes(t_disk),
        human_bytes(store_bytes)
    ))?;
    Ok(())
}

pub(crate) fn ls(out: &Out, c: &Common, at: &At, prefix: Option<&str>) -> Result<(), Fail> {
    let opened = open_at(&c.store, at)?;
    let arrays = infos(opened.store(), prefix.unwrap_or(""))?;
    out.doc(&json!({
        "ok": true,
        "version": opened.store().version(),
        "arrays": arrays.iter().map(|a| json!({
            "name": a.name, "shape": a.shape, "dtype": a.dtype.to_string(),
        })).collect::<Vec<_>>(),
    }))?;
    let rows: Vec<Vec<String>> = arrays
        .iter()
        .map(|a| vec![a.name.clone(), shape_str(&a.shape), a.dtype.to_string()])
        .collect();
    if !rows.is_empty() {
        for l in table(&["ARRAY", "SHAPE", "DTYPE"], &rows) {
            out.line(l)?;
        }
    }
    Ok(())
}

/// Parse `A:B` (Python slice, no step) against `n` rows into `start..stop`.
pub(crate) fn parse_rows(spec: &str, n: u64) -> Result<(u64, u64), Fail> {
    let bad = || {
        Fail::Usage(format!(
            "--rows {spec:?}: expected START:STOP, e.g. 0:10, -5:, 100:200"
        ))
    };
    let (a, b) = match spec.split_once(':') {
        Some(p) => p,
        None => {
            // A single index: that row.
            let i: i64 = spec.trim().parse().map_err(|_| bad())?;
            let i = if i < 0 { n as i64 + i } else { i };
            if i < 0 || i as u64 >= n {
                return Err(Fail::Usage(format!(
                    "--rows {spec}: row {spec} is out of range for {n} rows"
                )));
            }
            return Ok((i as u64, i as u64 + 1));
        }
    };
    let conv = |s: &str, default: u64| -> Result<u64, Fail> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(default);
        }
        let v: i64 = s.parse().map_err(|_| bad())?;
        let v = if v < 0 { n as i64 + v } else { v };
        Ok(v.clamp(0, n as i64) as u64)
    };
    let start = conv(a, 0)?;
    let stop = conv(b, n)?;
    Ok((start, stop.max(start)))
}

fn f16_to_f64(bits: u16) -> f64 {
    half::f16::from_bits(bits).to_f64()
}

macro_rules! le {
    ($t:ty, $b:expr) => {{
        let mut a = [0u8; std::mem::size_of::<$t>()];
        a.copy_from_slice($b);
        <$t>::from_le_bytes(a)
    }};
}

/// One element as text (NumPy-like) and as JSON.
pub(crate) fn element(dtype: DType, b: &[u8]) -> (String, Value) {
    fn float(v: f64) -> (String, Value) {
        let s = if v.is_nan() {
            "nan".to_string()
        } else if v.is_infinite() {
            if v > 0.0 { "inf" } else { "-inf" }.to_string()
        } else {
            format!("{v:?}")
        };
        let j = if v.is_finite() {
            json!(v)
        } else {
            Value::String(s.clone())
        };
        (s, j)
    }
    match dtype {
        DType::Bool => {
            let v = b[0] != 0;
            (if v { "True" } else { "False" }.into(), json!(v))
        }
        DType::I8 => (format!("{}", b[0] as i8), json!(b[0] as i8)),
        DType::U8 => (format!("{}", b[0]), json!(b[0])),
        DType::I16 => {
            let v = le!(i16, b);
            (v.to_string(), json!(v))
        }
        DType::U16 => {
            let v = le!(u16, b);
            (v.to_string(), json!(v))
        }
        DType::I32 => {
            let v = le!(i32, b);
            (v.to_string(), json!(v))
        }
        DType::U32 => {
            let v = le!(u32, b);
            (v.to_string(), json!(v))
        }
        DType::I64 => {
            let v = le!(i64, b);
            (v.to_string(), json!(v))
        }
        DType::U64 => {
            let v = le!(u64, b);
            (v.to_string(), json!(v))
        }
        DType::F16 => float(f16_to_f64(le!(u16, b))),
        DType::F32 => {
            let v = le!(f32, b);
            // Shortest text that round-trips the f32, not its f64 widening.
            let (s, j) = float(v as f64);
            if v.is_finite() {
                (format!("{v:?}"), j)
            } else {
                (s, j)
            }
        }
        DType::F64 => float(le!(f64, b)),
        DType::Complex64 => {
            let (re, im) = (le!(f32, &b[..4]), le!(f32, &b[4..8]));
            (
                format!("{re:?}{im:+?}j"),
                json!([float(re as f64).1, float(im as f64).1]),
            )
        }
        DType::Complex128 => {
            let (re, im) = (le!(f64, &b[..8]), le!(f64, &b[8..16]));
            (format!("{re:?}{im:+?}j"), json!([float(re).1, float(im).1]))
        }
    }
}

/// A row (trailing dims `dims`) as nested text and JSON.
fn nested(dtype: DType, dims: &[u64], b: &[u8]) -> (String, Value) {
    let item = dtype.itemsize();
    match dims.split_first() {
        None => element(dtype, &b[..item]),
        Some((&n, rest)) => {
            let step = rest.iter().product::<u64>() as usize * item;
            let mut s = Vec::new();
            let mut j = Vec::new();
            for i in 0..n as usize {
                let (ts, tj) = nested(dtype, rest, &b[i * step..(i + 1) * step]);
                s.push(ts);
                j.push(tj);
            }
            (format!("[{}]", s.join(", ")), Value::Array(j))
        }
    }
}

pub(crate) fn show(
    out: &Out,
    c: &Common,
    at: &At,
    name: &str,
    rows: Option<&str>,
) -> Result<(), Fail> {
    let opened = open_at(&c.store, at)?;
    let store = opened.store();
    let info = store.info(name)?;
    let n = info.shape.first().copied().unwrap_or(0);
    let (start, stop) = match rows {
        Some(spec) => parse_rows(spec, n)?,
        None => (0, n.min(10)),
    };
    let data = store.read_rows(name, start, stop)?;
    let dims = &info.shape[1..];
    let rb = dims.iter().product::<u64>() as usize * info.dtype.itemsize();
    let mut jrows = Vec::new();
    let mut lines = Vec::new();
    let width = stop.saturating_sub(1).to_string().len();
    for (k, chunk) in data.data.chunks_exact(rb.max(1)).enumerate() {
        let (s, j) = nested(info.dtype, dims, chunk);
        lines.push(format!("{:>width$}: {s}", start + k as u64));
        jrows.push(j);
    }
    out.doc(&json!({
        "ok": true, "name": name, "dtype": info.dtype.to_string(), "shape": info.shape,
        "start": start, "stop": stop, "rows": jrows, "version": store.version(),
    }))?;
    out.line(format!(
        "{name}: {} {}, rows {start}..{stop} of {n}{}",
        shape_str(&info.shape),
        info.dtype,
        at_suffix(store)
    ))?;
    for l in lines {
        out.line(l)?;
    }
    Ok(())
}

pub(crate) fn verify(out: &Out, c: &Common, at: &At, quick: bool) -> Result<(), Fail> {
    let opened = open_at(&c.store, at)?;
    let store = opened.store();
    let total: u64 = if quick {
        0
    } else {
        infos(store, "")?
            .iter()
            .map(|a| a.data_bytes - a.unchecksummed_bytes.min(a.data_bytes))
            .sum()
    };
    let pb = out.bytes_bar(total, "verifying");
    let started = std::time::Instant::now();
    let rep = store.verify_with(!quick, &mut |done, _| pb.set_position(done))?;
    pb.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let hist = store.history()?;
    let mut problems: Vec<Value> = rep.problems.iter().map(problem_json).collect();
    problems.extend(hist.problems.iter().map(problem_json));
    let clean = problems.is_empty();
    out.doc(&json!({
        "ok": clean,
        "quick": quick,
        "version": store.version(),
        "arrays": rep.arrays,
        "chunks": rep.chunks,
        "data_bytes": rep.data_bytes,
        "unchecksummed_bytes": rep.unchecksummed_bytes,
        "log_records": rep.records,
        "commits_in_history": hist.commits.len(),
        "head_seq": hist.head_seq,
        "head_hash": hash_hex(&hist.head_hash),
        "seconds": secs,
        "problems": problems,
    }))?;
    if let Some(v) = opened.version()? {
        out.line(format!(
            "{}: its arrays' data, and the store's MANIFEST, log and hash chain",
            versions::label(&v)
        ))?;
    }
    if quick {
        out.line(format!(
            "checked MANIFEST, {} log records and the hash chain of {} commits (--quick: data chunks not read)",
            rep.records,
            hist.commits.len()
        ))?;
    } else {
        out.line(format!(
            "checked {} arrays: {} chunks, {} in {:.2} s ({}/s); {} log records; hash chain of {} commits",
            rep.arrays,
            rep.chunks,
            human_bytes(rep.data_bytes),
            secs,
            human_bytes((rep.data_bytes as f64 / secs.max(1e-9)) as u64),
            rep.records,
            hist.commits.len()
        ))?;
    }
    if rep.unchecksummed_bytes > 0 {
        out.line(format!(
            "note: {} appended since the last checkpoint are not yet covered by chunk checksums",
            human_bytes(rep.unchecksummed_bytes)
        ))?;
    }
    for p in rep.problems.iter().chain(&hist.problems) {
        out.line(format!("PROBLEM: {p}"))?;
    }
    if clean {
        out.line(format!(
            "OK: no problems (head seq {}, {})",
            hist.head_seq,
            &hash_hex(&hist.head_hash)[..16]
        ))?;
        Ok(())
    } else {
        out.line(format!("FAILED: {} problems", problems.len()))?;
        Err(Fail::Problems)
    }
}

/// `--since`: a seq number, a time, or an age; returns (min seq, min time).
fn parse_since(s: &str) -> Result<(u64, u64), Fail> {
    let s = s.trim();
    if let Ok(seq) = s.parse::<u64>() {
        return Ok((seq.saturating_add(1), 0));
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        let ns = t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        return Ok((0, ns));
    }
    if let Ok(d) = humantime::parse_duration(s) {
        let ns = now_ns().saturating_sub(d.as_nanos() as u64);
        return Ok((0, ns));
    }
    Err(Fail::Usage(format!(
        "--since {s:?}: expected a sequence number (120), a UTC time (2026-11-21T10:00:00Z) or an age (90m, 2h, 3days)"
    )))
}

/// One op of commit `seq` in the log: as JSON, and its ARRAY and ROWS
/// cells. The version ops carry a version instead of rows: a snapshot's is
/// its commit's seq (the engine's summary has its tag in `array`), a
/// deletion's and a restore's is in the summary's `rows`.
pub(crate) fn log_op(seq: u64, o: &numvault::OpSummary) -> (Value, String, String) {
    use numvault::OpKind;
    let version = match o.kind {
        OpKind::Snapshot => Some(seq),
        OpKind::DeleteSnapshot | OpKind::Restore => Some(o.rows),
        _ => None,
    };
    let Some(id) = version else {
        let array = match &o.to {
            Some(to) => format!("{} -> {to}", o.array),
            None => o.array.clone(),
        };
        let j = json!({"op": o.kind.as_str(), "array": o.array, "to": o.to, "rows": o.rows});
        return (j, array, o.rows.to_string());
    };
    let (array, tag, text) = match o.kind {
        OpKind::Snapshot if o.array.is_empty() => (String::new(), None, format!("version {id}")),
        OpKind::Snapshot => (
            String::new(),
            Some(o.array.clone()),
            format!("version {id} '{}'", o.array),
        ),
        OpKind::Restore => (
            o.array.clone(),
            None,
            format!("{} <- version {id}", o.array),
        ),
        _ => (String::new(), None, format!("version {id}")),
    };
    let j = json!({
        "op": o.kind.as_str(), "array": array, "to": null, "rows": 0,
        "version": id, "tag": tag,
    });
    (j, text, String::new())
}

pub(crate) fn log(
    out: &Out,
    c: &Common,
    since: Option<&str>,
    last: Option<usize>,
) -> Result<(), Fail> {
    let store = open_ro(&c.store)?;
    let (min_seq, min_ns) = match since {
        Some(s) => parse_since(s)?,
        None => (0, 0),
    };
    let hist = store.history()?;
    let mut shown: Vec<&numvault::CommitInfo> = hist
        .commits
        .iter()
        .filter(|c| c.seq >= min_seq && c.time_ns >= min_ns)
        .collect();
    if let Some(k) = last {
        let skip = shown.len().saturating_sub(k);
        shown.drain(..skip);
    }
    let clean = hist.is_clean();
    out.doc(&json!({
        "ok": clean,
        "head_seq": hist.head_seq,
        "head_hash": hash_hex(&hist.head_hash),
        "commits_total": hist.commits.len(),
        "commits": shown.iter().map(|c| json!({
            "seq": c.seq,
            "time": time_str(c.time_ns),
            "time_ns": c.time_ns,
            "hash": hash_hex(&c.hash),
            "prev_hash": hash_hex(&c.prev_hash),
            "source": if c.in_log { "log" } else { "history" },
            "ops": c.ops.iter().map(|o| log_op(c.seq, o).0).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "problems": hist.problems.iter().map(problem_json).collect::<Vec<_>>(),
    }))?;
    let mut rows = Vec::new();
    for c in &shown {
        for (i, o) in c.ops.iter().enumerate() {
            let (_, array, nrows) = log_op(c.seq, o);
            let first = i == 0;
            rows.push(vec![
                if first {
                    c.seq.to_string()
                } else {
                    String::new()
                },
                if first {
                    time_str(c.time_ns)
                } else {
                    String::new()
                },
                o.kind.as_str().to_string(),
                array,
                nrows,
                if first {
                    hash_hex(&c.hash)[..16].to_string()
                } else {
                    String::new()
                },
            ]);
        }
    }
    if !rows.is_empty() {
        for l in table(&["SEQ", "TIME", "OP", "ARRAY", "ROWS", "HASH"], &rows) {
            out.line(l)?;
        }
    }
    for p in &hist.problems {
        out.line(format!("PROBLEM: {p}"))?;
    }
    if clean {
        out.line(format!(
            "hash chain OK: {} commits linked from seq 1 to {} (head {})",
            hist.commits.len(),
            hist.head_seq,
            &hash_hex(&hist.head_hash)[..16]
        ))?;
        Ok(())
    } else {
        out.line(format!(
            "hash chain FAILED: {} problems",
            hist.problems.len()
        ))?;
        Err(Fail::Problems)
    }
}

pub(crate) fn compact(out: &Out, c: &Common, names: &[String]) -> Result<(), Fail> {
    let store = open_rw(&c.store)?;
    let before_dir = dir_bytes(&c.store);
    let targets: Vec<ArrayInfo> = if names.is_empty() {
        infos(&store, "")?
            .into_iter()
            .filter(|a| a.dead_rows > 0)
            .collect()
    } else {
        names
            .iter()
            .map(|n| store.info(n))
            .collect::<Result<_, _>>()?
    };
    let total: u64 = targets.iter().map(|a| a.data_bytes).sum();
    let pb = out.bytes_bar(total, "compacting");
    let mut rows = Vec::new();
    let mut jrows = Vec::new();
    let mut freed = 0u64;
    let mut duplicated = 0u64;
    for a in &targets {
        pb.set_message(a.name.clone());
        let report = store.compact_report(&a.name)?;
        let f = report.reclaimed_bytes;
        duplicated += report.duplicated_bytes;
        freed += f;
        pb.inc(a.data_bytes);
        rows.push(vec![
            a.name.clone(),
            a.dead_rows.to_string(),
            human_bytes(a.data_bytes),
            human_bytes(a.data_bytes - f),
            human_bytes(f),
        ]);
        jrows.push(json!({
            "name": a.name, "dead_rows": a.dead_rows, "bytes_before": a.data_bytes,
            "bytes_after": a.data_bytes - f, "bytes_freed": f,
            "bytes_duplicated": report.duplicated_bytes,
        }));
    }
    pb.finish_and_clear();
    // Closing checkpoints, which deletes the old data files.
    store.close()?;
    let after_dir = dir_bytes(&c.store);
    out.doc(&json!({
        "ok": true, "arrays": jrows, "bytes_freed": freed, "bytes_duplicated": duplicated,
        "store_bytes_before": before_dir, "store_bytes_after": after_dir,
    }))?;
    if rows.is_empty() {
        out.line("nothing to compact (no array has deleted or replaced rows)")?;
    } else {
        for l in table(&["ARRAY", "DEAD ROWS", "BEFORE", "AFTER", "FREED"], &rows) {
            out.line(l)?;
        }
    }
    out.line(format!(
        "freed {} of row data; store directory {} -> {}",
        human_bytes(freed),
        human_bytes(before_dir),
        human_bytes(after_dir)
    ))?;
    if duplicated > 0 {
        out.line(format!(
            "{} of rows now held twice: versions keep the old files (numvault versions; delete-snapshot + gc frees them)",
            human_bytes(duplicated)
        ))?;
    }
    Ok(())
}

pub(crate) fn export(
    out: &Out,
    c: &Common,
    at: &At,
    name: &str,
    to: &Path,
    force: bool,
) -> Result<(), Fail> {
    if crate::formats::Format::of_path(to).is_none() {
        return Err(Fail::Usage(format!(
            "{}: unknown extension; export writes .npy, .csv or .parquet",
            to.display()
        )));
    }
    if to.exists() && !force {
        return Err(Fail::Usage(format!(
            "{} exists; pass --force to replace it",
            to.display()
        )));
    }
    let opened = open_at(&c.store, at)?;
    let store = opened.store();
    let info = store.info(name)?;
    let started = std::time::Instant::now();
    let data = store.read(name)?;
    // .npy is the data plus a small header; other formats' sizes are not
    // known ahead: show bytes written and the rate.
    let pb = if crate::formats::Format::of_path(to) == Some(crate::formats::Format::Npy) {
        out.bytes_bar(info.data_bytes.max(data.data.len() as u64), "exporting")
    } else {
        out.bytes_spinner(&format!("exporting {name}"))
    };
    pb.enable_steady_tick(Duration::from_millis(200));
    crate::formats::export_with_progress(to, data.dtype, &data.shape, &data.data, &|n| {
        pb.set_position(n)
    })
    .map_err(|e| Fail::Error(e.to_string()))?;
    pb.finish_and_clear();
    let (size, _) = file_bytes(to);
    out.doc(&json!({
        "ok": true, "name": name, "to": to.display().to_string(), "dtype": data.dtype.to_string(),
        "shape": data.shape, "bytes_written": size, "seconds": started.elapsed().as_secs_f64(),
        "version": store.version(),
    }))?;
    out.line(format!(
        "exported {name} {} {}{} to {} ({})",
        shape_str(&data.shape),
        data.dtype,
        at_suffix(store),
        to.display(),
        human_bytes(size)
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests;

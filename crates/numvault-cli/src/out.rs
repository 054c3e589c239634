//! Output: text or JSON on stdout, errors on stderr, progress bars, exit
//! status, and the formatting helpers every verb shares.

use std::io::{self, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};

/// Why a verb did not succeed.
#[derive(Debug)]
pub enum Fail {
    /// The command ran and found problems (exit 1); the report was printed.
    Problems,
    /// The command found problems and could not finish, e.g. a corrupt store
    /// (exit 1); the message is printed.
    Damage(String),
    /// Bad arguments detected after parsing (exit 2).
    Usage(String),
    /// The command could not run (exit 3).
    Error(String),
    /// Standard output was closed (a pipe into `head`): stop quietly.
    Pipe,
}

impl Fail {
    fn code(&self) -> i32 {
        match self {
            Fail::Problems | Fail::Damage(_) => 1,
            Fail::Usage(_) => 2,
            Fail::Error(_) => 3,
            Fail::Pipe => 0,
        }
    }
}

impl From<numvault::Error> for Fail {
    fn from(e: numvault::Error) -> Fail {
        match e {
            numvault::Error::Corrupt { .. }
            | numvault::Error::Decode { .. }
            | numvault::Error::ChecksumMismatch { .. } => Fail::Damage(e.to_string()),
            numvault::Error::NotFound(_)
            | numvault::Error::NoSuchVersion { .. }
            | numvault::Error::NotInVersion { .. }
            | numvault::Error::InvalidName { .. }
            | numvault::Error::IndexOutOfRange { .. } => Fail::Usage(e.to_string()),
            _ => Fail::Error(e.to_string()),
        }
    }
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Fail {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Fail::Pipe
        } else {
            Fail::Error(e.to_string())
        }
    }
}

/// Where a verb prints.
pub struct Out {
    pub json: bool,
    pub quiet: bool,
}

impl Out {
    pub fn new(json: bool, quiet: bool) -> Out {
        Out { json, quiet }
    }

    /// Print a line of text (text mode only).
    pub fn line(&self, s: impl AsRef<str>) -> Result<(), Fail> {
        if self.json {
            return Ok(());
        }
        let mut o = io::stdout().lock();
        writeln!(o, "{}", s.as_ref())?;
        Ok(())
    }

    /// Print the JSON document (JSON mode only).
    pub fn doc(&self, v: &Value) -> Result<(), Fail> {
        if !self.json {
            return Ok(());
        }
        let mut o = io::stdout().lock();
        let s = serde_json::to_string_pretty(v).map_err(|e| Fail::Error(e.to_string()))?;
        writeln!(o, "{s}")?;
        o.flush()?;
        Ok(())
    }

    /// A progress bar over `total` bytes on stderr; hidden when stderr is
    /// not a terminal, with --quiet, or when the work is tiny.
    pub fn bytes_bar(&self, total: u64, msg: &str) -> ProgressBar {
        let pb = if self.quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
        };
        if let Ok(st) = ProgressStyle::with_template(
            "{msg:12} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}",
        ) {
            pb.set_style(st.progress_chars("=> "));
        }
        pb.set_message(msg.to_string());
        pb
    }

    /// A progress bar over `total` items.
    pub fn items_bar(&self, total: u64, msg: &str) -> ProgressBar {
        let pb = if self.quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
        };
        if let Ok(st) =
            ProgressStyle::with_template("{msg:12} [{bar:30}] {pos}/{len} {per_sec} ETA {eta}")
        {
            pb.set_style(st.progress_chars("=> "));
        }
        pb.set_message(msg.to_string());
        pb
    }

    /// A spinner with bytes done, rate and elapsed time, for work whose size
    /// is not known ahead.
    pub fn bytes_spinner(&self, msg: &str) -> ProgressBar {
        let pb = if self.quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
        };
        if let Ok(st) = ProgressStyle::with_template(
            "{spinner} {msg} {binary_bytes} {binary_bytes_per_sec} {elapsed}",
        ) {
            pb.set_style(st);
        }
        pb.set_message(msg.to_string());
        pb
    }

    /// Turn a verb's result into the exit status, printing the error.
    pub fn finish(&self, r: Result<(), Fail>) -> i32 {
        let Err(f) = r else { return 0 };
        let msg = match &f {
            Fail::Damage(m) | Fail::Usage(m) | Fail::Error(m) => Some(m.clone()),
            Fail::Problems | Fail::Pipe => None,
        };
        if let Some(m) = msg {
            if self.json {
                let kind = match f {
                    Fail::Damage(_) => "damage",
                    Fail::Usage(_) => "usage",
                    _ => "error",
                };
                let _ = self.doc(&json!({"ok": false, "error": m, "kind": kind}));
            }
            let _ = writeln!(io::stderr(), "numvault: error: {m}");
        }
        f.code()
    }
}

/// `1.5 MiB` style sizes.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// RFC 3339 UTC time (seconds) of a ns-since-epoch timestamp.
pub fn time_str(ns: u64) -> String {
    let t = UNIX_EPOCH + Duration::from_nanos(ns);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Now, ns since the epoch.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// `(1000, 10)`-style shape.
pub fn shape_str(shape: &[u64]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    if parts.len() == 1 {
        format!("({},)", parts[0])
    } else {
        format!("({})", parts.join(", "))
    }
}

/// Left-aligned columns padded to the widest cell (the last column unpadded).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> Vec<String> {
    let n = header.len();
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(n) {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let fmt = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 < cells.len() {
                s.push_str(&format!("{c:<width$}  ", width = w[i]));
            } else {
                s.push_str(c);
            }
        }
        s.trim_end().to_string()
    };
    let mut out = vec![fmt(header.to_vec())];
    for r in rows {
        out.push(fmt(r.iter().map(String::as_str).collect()));
    }
    out
}

/// A store problem as JSON.
pub fn problem_json(p: &numvault::Problem) -> Value {
    json!({
        "file": p.file.display().to_string(),
        "array": p.array,
        "chunk": p.chunk,
        "range": p.range.map(|(s, e)| vec![s, e]),
        "detail": p.detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(human_bytes(10), "10 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(shape_str(&[3]), "(3,)");
        assert_eq!(shape_str(&[3, 4]), "(3, 4)");
        assert_eq!(time_str(0), "1970-01-01T00:00:00Z");
        let t = table(&["a", "bb"], &[vec!["xyz".into(), "1".into()]]);
        assert_eq!(t, vec!["a    bb", "xyz  1"]);
    }
}

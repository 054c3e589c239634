//! Full integrity check: MANIFEST, every log record and the hash chain,
//! every data chunk.

use std::path::PathBuf;

use crate::error::Result;
use crate::format::{decode_log_header, decode_manifest};
use crate::history::{read_disk_pair, walk_log, DiskPair, LogEnd};
use crate::meta::CHUNK_BYTES;
use crate::store::Store;

/// One problem found by [`Store::verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The damaged file.
    pub file: PathBuf,
    /// The array concerned, if any.
    pub array: Option<String>,
    /// The checksum chunk concerned, if any.
    pub chunk: Option<u64>,
    /// Byte range within the file, if known.
    pub range: Option<(u64, u64)>,
    pub detail: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(a) = &self.array {
            write!(f, " (array '{a}')")?;
        }
        if let Some(c) = self.chunk {
            write!(f, " chunk {c}")?;
        }
        if let Some((s, e)) = self.range {
            write!(f, " bytes {s}..{e}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// What [`Store::verify`] checked and found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub arrays: u64,
    pub chunks: u64,
    pub data_bytes: u64,
    pub records: u64,
    /// Bytes appended since the last checksum refresh (checked from the next
    /// checkpoint on; reported, never counted as verified).
    pub unchecksummed_bytes: u64,
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// True when no problem was found.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Store {
    /// Check every data chunk, every log record and the hash chain.
    pub fn verify(&self) -> Result<VerifyReport> {
        self.verify_with(true, &mut |_, _| {})
    }

    /// Like [`Store::verify`]; `data`: also check data chunks (else only the
    /// MANIFEST and the log); `progress(done_bytes, total_bytes)` is called
    /// as data is checked.
    pub fn verify_with(
        &self,
        data: bool,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<VerifyReport> {
        let (state, vfs, dir, files) = {
            let mut g = self.inner();
            g.check_open()?;
            let state = g.state.clone();
            let mut files = Vec::new();
            if data {
                for (name, a) in &state.arrays {
                    files.push((name.clone(), a.clone(), g.io.file(a.file_id)));
                }
            }
            (state, g.io.vfs.clone(), g.io.dir.clone(), files)
        };
        let mut rep = VerifyReport {
            arrays: state.arrays.len() as u64,
            ..VerifyReport::default()
        };
        let problem = |file: &PathBuf, detail: String| Problem {
            file: file.clone(),
            array: None,
            chunk: None,
            range: None,
            detail,
        };

        // The checkpoint this handle started from may have been replaced by a
        // newer one: check the MANIFEST on disk and the log it names.
        // A writer's checkpoint can replace the MANIFEST and delete the log it
        // named between our two reads: read a consistent pair, as open does.
        let DiskPair {
            manifest_path: mpath,
            manifest: disk,
            log,
        } = read_disk_pair(vfs.as_ref(), &dir);
        let disk_state = match disk {
            Ok(bytes) => match decode_manifest(&bytes) {
                Ok((s, _)) => Some(s),
                Err(e) => {
                    rep.problems.push(problem(&mpath, format!("{e:?}")));
                    None
                }
            },
            Err(e) => {
                rep.problems.push(problem(&mpath, e.to_string()));
                None
            }
        };
        if let (Some(ds), Some((lpath, log))) = (disk_state, log) {
            match log {
                Ok(bytes) => {
                    if let Err(e) = decode_log_header(&bytes) {
                        rep.problems
                            .push(problem(&lpath, format!("bad log header: {e:?}")));
                    } else {
                        let (_, _, end) = walk_log(&bytes, ds.seq, ds.chain, &mut |_, _| {
                            rep.records += 1;
                        });
                        match end {
                            LogEnd::Clean => {}
                            // A reader may see a writer's record half written.
                            LogEnd::Incomplete(at) => {
                                if !self.is_read_only() {
                                    let mut p = problem(
                                        &lpath,
                                        "incomplete record at the end of the log".into(),
                                    );
                                    p.range = Some((at, bytes.len() as u64));
                                    rep.problems.push(p);
                                }
                            }
                            LogEnd::Damaged { range, detail } => {
                                let mut p = problem(&lpath, detail);
                                p.range = Some(range);
                                rep.problems.push(p);
                            }
                        }
                    }
                }
                Err(e) => rep.problems.push(problem(&lpath, e.to_string())),
            }
        }

        if !data {
            return Ok(rep);
        }
        let total: u64 = files.iter().map(|(_, a, _)| a.sums.covered).sum();
        let mut done = 0u64;
        let mut buf = vec![0u8; CHUNK_BYTES as usize];
        for (name, a, df) in files {
            rep.unchecksummed_bytes += a.phys_bytes().saturating_sub(a.sums.covered);
            let df = match df {
                Ok(df) => df,
                Err(e) => {
                    let mut p = problem(&dir.join("data"), e.to_string());
                    p.array = Some(name.clone());
                    rep.problems.push(p);
                    continue;
                }
            };
            match df.file.len() {
                Ok(len) if len < a.phys_bytes() => {
                    let mut p = problem(
                        &df.path,
                        format!("file holds {len} bytes, the array needs {}", a.phys_bytes()),
                    );
                    p.array = Some(name.clone());
                    p.range = Some((len, a.phys_bytes()));
                    rep.problems.push(p);
                }
                Err(e) => {
                    let mut p = problem(&df.path, e.to_string());
                    p.array = Some(name.clone());
                    rep.problems.push(p);
                    continue;
                }
                _ => {}
            }
            for (c, expected) in a.sums.sums.iter().enumerate() {
                let (s, e) = a.sums.range(c);
                let n = (e - s) as usize;
                rep.chunks += 1;
                let bad = match df.file.read_exact_at(&mut buf[..n], s) {
                    Ok(()) => (crc32c::crc32c(&buf[..n]) != *expected)
                        .then(|| "checksum mismatch".to_string()),
                    Err(err) => Some(format!("cannot read: {err}")),
                };
                if let Some(detail) = bad {
                    rep.problems.push(Problem {
                        file: df.path.clone(),
                        array: Some(name.clone()),
                        chunk: Some(c as u64),
                        range: Some((s, e)),
                        detail,
                    });
                }
                rep.data_bytes += n as u64;
                done += n as u64;
                progress(done, total);
            }
        }
        Ok(rep)
    }
}

//! NumPy `.npz`: a zip archive of `.npy` members (read only).
//!
//! The archive is read with the `zip` crate and each member, as it is
//! decompressed, with the .npy reader (npy.rs), so a member's rows stream in
//! chunks of bounded size like a .npy file's. The npz readers of npyz and
//! ndarray-npy are not used: each would bring another major version of
//! `zip` (0.6 and 6) beside ours, and this file's checks (compression
//! method, member sizes against the archive before anything is
//! decompressed, the CRC) would have to stay.
//!
//! Writing .npz is not here: the command does not export .npz, and
//! `numvault.io.to_npy` writes the archive with Python's `zipfile` and each
//! member's header with [`crate::npy::npy_header`].

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use numvault::DType;

use crate::npy::NpyReader;
use crate::{invalid, io_at, unsupported, Fail, FormatError, Loaded};

/// Deflate cannot expand more than ~1032:1.
const DEFLATE_MAX_RATIO: u64 = 1100;

/// Read every member of a .npz file into memory.
pub fn load_npz(path: &Path) -> Result<Vec<Loaded>, FormatError> {
    let mut out = Vec::new();
    NpzReader::open(path)?.for_each(|m| -> Result<(), FormatError> {
        let (dtype, shape) = (m.dtype(), m.shape());
        let mut data = Vec::new();
        while let Some(chunk) = m.next_chunk(usize::MAX)? {
            if data.is_empty() {
                data = chunk;
            } else {
                data.extend_from_slice(&chunk);
            }
        }
        out.push(Loaded {
            member: Some(m.key().to_string()),
            dtype,
            shape,
            data,
        });
        Ok(())
    })?;
    Ok(out)
}

/// An open .npz archive whose members are read one after the other.
pub struct NpzReader {
    path: PathBuf,
    file_len: u64,
    zip: zip::ZipArchive<BufReader<File>>,
}

/// One member of a .npz archive being read: its header is checked; its rows
/// come in chunks. Errors name the archive and the member.
pub struct NpzMember<'a, 'z> {
    path: &'a Path,
    name: String,
    key: String,
    reader: NpyReader<&'a mut zip::read::ZipFile<'z, BufReader<File>>>,
}

impl NpzMember<'_, '_> {
    /// The member's file name in the archive ("a.npy").
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The array's key: the name without ".npy" (what `np.load` gives).
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn dtype(&self) -> DType {
        self.reader.dtype()
    }

    /// Shape with at least one dimension (see [`NpyReader::shape`]).
    pub fn shape(&self) -> Vec<u64> {
        self.reader.shape()
    }

    /// What the member's .npy header says.
    pub fn header(&self) -> &crate::npy::NpyHeader {
        self.reader.header()
    }

    /// See [`NpyReader::row_shape`].
    pub fn row_shape(&self) -> Vec<u64> {
        self.reader.row_shape()
    }

    /// See [`NpyReader::rows`].
    pub fn rows(&self) -> u64 {
        self.reader.rows()
    }

    /// See [`NpyReader::row_bytes`].
    pub fn row_bytes(&self) -> u64 {
        self.reader.row_bytes()
    }

    /// See [`NpyReader::rows_per_chunk`].
    pub fn rows_per_chunk(&self, max_bytes: usize) -> u64 {
        self.reader.rows_per_chunk(max_bytes)
    }

    fn fail(&self, f: Fail) -> FormatError {
        f.context(&format!("member '{}'", self.name)).at(self.path)
    }

    /// See [`NpyReader::next_rows`].
    pub fn next_rows(&mut self, max_rows: u64, buf: &mut Vec<u8>) -> Result<u64, FormatError> {
        self.reader
            .next_rows(max_rows, buf)
            .map_err(|f| self.fail(f))
    }

    /// See [`NpyReader::next_chunk`].
    pub fn next_chunk(&mut self, max_bytes: usize) -> Result<Option<Vec<u8>>, FormatError> {
        self.reader.next_chunk(max_bytes).map_err(|f| self.fail(f))
    }
}

impl NpzReader {
    /// Open .npz file `path` and read its directory.
    pub fn open(path: &Path) -> Result<NpzReader, FormatError> {
        let file = File::open(path).map_err(io_at(path))?;
        let file_len = file.metadata().map_err(io_at(path))?.len();
        let zip = zip::ZipArchive::new(BufReader::new(file))
            .map_err(|e| invalid(format!("not a valid .npz (zip) archive: {e}")).at(path))?;
        Ok(NpzReader {
            path: path.to_path_buf(),
            file_len,
            zip,
        })
    }

    /// Call `f` on every array member in archive order (directories are
    /// skipped). `f` may read the member's rows or not; what it leaves is
    /// read after it returns, and the member must then end where its header
    /// says and pass its CRC check. An archive without members is an error.
    pub fn for_each<E: From<FormatError>>(
        &mut self,
        mut f: impl FnMut(&mut NpzMember<'_, '_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let path = self.path.as_path();
        let file_len = self.file_len;
        let mut found = false;
        for i in 0..self.zip.len() {
            let mut entry = self
                .zip
                .by_index(i)
                .map_err(|e| invalid(format!("cannot read archive entry {i}: {e}")).at(path))?;
            if entry.is_dir() {
                continue;
            }
            let name = entry
                .name()
                .map_err(|e| invalid(format!("bad name of archive entry {i}: {e}")).at(path))?
                .into_owned();
            let what = format!("member '{name}'");
            let size = entry.size();
            let csize = entry.compressed_size();
            let plausible = match entry.compression() {
                zip::CompressionMethod::Stored => size == csize,
                zip::CompressionMethod::Deflated => {
                    size <= csize.saturating_mul(DEFLATE_MAX_RATIO).saturating_add(4096)
                }
                m => {
                    return Err(unsupported(format!(
                        "{what}: unsupported compression method {m} (NumPy writes stored or \
                         deflated)"
                    ))
                    .at(path)
                    .into())
                }
            };
            if !plausible || csize > file_len {
                return Err(invalid(format!(
                    "{what}: implausible sizes ({csize} bytes compressed, {size} uncompressed, \
                     archive is {file_len} bytes)"
                ))
                .at(path)
                .into());
            }
            let reader = NpyReader::new(&mut entry, size).map_err(|f| f.context(&what).at(path))?;
            let key = name.strip_suffix(".npy").unwrap_or(&name).to_string();
            let mut member = NpzMember {
                path,
                name,
                key,
                reader,
            };
            f(&mut member)?;
            // Read what `f` left, then one byte more: the zip reader checks
            // the CRC once the member's end is reached.
            let mut buf = Vec::new();
            while member.next_rows(member.reader.rows_per_chunk(1 << 20), &mut buf)? > 0 {}
            let mut extra = [0u8; 1];
            match member.reader.into_inner().read(&mut extra) {
                Ok(0) => {}
                Ok(_) => {
                    return Err(invalid(format!("{what}: more data than its declared size"))
                        .at(path)
                        .into())
                }
                Err(e) => return Err(invalid(format!("{what}: {e}")).at(path).into()),
            }
            found = true;
        }
        if !found {
            return Err(invalid("the archive contains no arrays").at(path).into());
        }
        Ok(())
    }
}

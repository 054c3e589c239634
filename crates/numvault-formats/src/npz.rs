//! NumPy `.npz`: a zip archive of `.npy` members (read only).
//!
//! The archive is read with the `zip` crate and each member with the .npy
//! reader (npy.rs). The npz readers of npyz and ndarray-npy are not used:
//! each would bring another major version of `zip` (0.6 and 6) beside ours,
//! and this file's checks (compression method, member sizes against the
//! archive before anything is decompressed, the CRC) would have to stay.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use super::npy::read_npy;
use super::{invalid, io_at, unsupported, FormatError, Loaded};

/// Deflate cannot expand more than ~1032:1.
const DEFLATE_MAX_RATIO: u64 = 1100;

pub(super) fn load_npz(path: &Path) -> Result<Vec<Loaded>, FormatError> {
    let file = File::open(path).map_err(io_at(path))?;
    let file_len = file.metadata().map_err(io_at(path))?.len();
    let mut zip = zip::ZipArchive::new(BufReader::new(file))
        .map_err(|e| invalid(format!("not a valid .npz (zip) archive: {e}")).at(path))?;
    let mut out = Vec::new();
    for i in 0..zip.len() {
        let mut entry = zip
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
                    "{what}: unsupported compression method {m} (NumPy writes stored or deflated)"
                ))
                .at(path))
            }
        };
        if !plausible || csize > file_len {
            return Err(invalid(format!(
                "{what}: implausible sizes ({csize} bytes compressed, {size} uncompressed, \
                 archive is {file_len} bytes)"
            ))
            .at(path));
        }
        let (dtype, shape, data) =
            read_npy(&mut entry, size).map_err(|f| f.context(&what).at(path))?;
        // Read to the end so the zip reader verifies the CRC.
        let mut extra = [0u8; 1];
        match entry.read(&mut extra) {
            Ok(0) => {}
            Ok(_) => {
                return Err(invalid(format!("{what}: more data than its declared size")).at(path))
            }
            Err(e) => return Err(invalid(format!("{what}: {e}")).at(path)),
        }
        let member = name.strip_suffix(".npy").unwrap_or(&name).to_string();
        out.push(Loaded {
            member: Some(member),
            dtype,
            shape,
            data,
        });
    }
    if out.is_empty() {
        return Err(invalid("the archive contains no arrays").at(path));
    }
    Ok(out)
}

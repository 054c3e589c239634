//! Hand-built source files for tests (of this crate and of the numvault
//! command): not part of the API.

use std::io::{self, Write};

use crate::npy::NPY_MAGIC;

/// A format 1.0 .npy file with the header dict `header` (padded as NumPy
/// pads it) followed by `data`.
pub fn npy_bytes(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.as_bytes().to_vec();
    let unpadded = 10 + h.len() + 1;
    h.resize(h.len() + (64 - unpadded % 64) % 64, b' ');
    h.push(b'\n');
    let mut out = NPY_MAGIC.to_vec();
    out.extend([1, 0]);
    out.extend((h.len() as u16).to_le_bytes());
    out.extend(h);
    out.extend(data);
    out
}

/// A zip archive (an .npz) of `members`, each stored with `method`.
pub fn zip_bytes(
    members: &[(&str, Vec<u8>)],
    method: zip::CompressionMethod,
) -> io::Result<Vec<u8>> {
    let mut w = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, bytes) in members {
        w.start_file(*name, opts).map_err(io::Error::other)?;
        w.write_all(bytes)?;
    }
    Ok(w.finish().map_err(io::Error::other)?.into_inner())
}

//! Helpers shared by the example benchmarks (not an example itself).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;

/// fsync a directory (makes its entries durable).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The two files behind the "one 4 KiB write + fdatasync" reference, in
/// `dir` (created): `inplace.bin`, 1 MiB written and synced once, for
/// overwrites; `append.bin`, empty, for writes at the end. Both and the
/// directory are synced, so later fdatasyncs only commit the new write.
pub fn fsync_reference_files(dir: &Path) -> io::Result<(File, File)> {
    fs::create_dir_all(dir)?;
    let inplace_path = dir.join("inplace.bin");
    fs::write(&inplace_path, vec![1u8; 1 << 20])?;
    let inplace = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&inplace_path)?;
    inplace.sync_all()?;
    let append = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.join("append.bin"))?;
    append.sync_all()?;
    sync_dir(dir)?;
    Ok((inplace, append))
}

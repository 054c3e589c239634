//! Byte layouts of everything numvault writes: file names, the MANIFEST
//! (checkpoint), the commit log (header, record frame, record body, ops),
//! the HISTORY file, and the caps on lengths read from disk. Each structure
//! has exactly one encoder and one decoder, here. docs/FORMAT.md is the
//! normative description (§1 file names, §2.1 caps, §4 MANIFEST, §5 log,
//! §5.7 HISTORY); keep the two in step.
//!
//! Decoders never trust a length: every count and length is checked against
//! the bytes present before anything is allocated ([`codec::Dec`]), and a
//! failure is a [`codec::DecodeError`] naming the field and its offset.

pub(crate) mod codec;
pub(crate) mod fields;
pub(crate) mod history;
pub(crate) mod manifest;
pub(crate) mod record;
pub(crate) mod version;

pub use crate::model::MAX_NDIM;

/// Version of every file format this build writes and reads.
pub const FORMAT_VERSION: u32 = crate::model::NEWEST_FORMAT;
/// The oldest format version this engine reads and writes (FORMAT.md §12).
pub const MIN_FORMAT_VERSION: u32 = 1;

pub(crate) const MANIFEST_MAGIC: &[u8; 8] = b"NVMANIF\0";
pub(crate) const LOG_MAGIC: &[u8; 8] = b"NVLOG\0\0\0";
/// Manifest header: magic, version, flags, body length, body crc32c, reserved.
pub(crate) const MANIFEST_HEADER_BYTES: usize = 8 + 4 + 4 + 8 + 4 + 4;
/// Log header: magic, version, reserved, generation.
pub(crate) const LOG_HEADER_BYTES: u64 = 8 + 4 + 4 + 8;
/// Record frame before the body: body length, crc32c, seq, previous hash.
pub(crate) const RECORD_HEADER_BYTES: usize = 4 + 4 + 8 + 32;
/// Largest record body accepted (caps allocation when reading a log).
pub(crate) const MAX_RECORD_BODY: u32 = 256 << 20;
/// Largest manifest body accepted.
pub(crate) const MAX_MANIFEST_BODY: u64 = 1 << 30;
/// Largest MANIFEST file read.
pub(crate) const MAX_MANIFEST_FILE_BYTES: u64 = MAX_MANIFEST_BODY + MANIFEST_HEADER_BYTES as u64;
/// Largest log file read at open: writers checkpoint long before this; a
/// larger file is damaged, and reading it whole must not exhaust memory.
pub(crate) const MAX_LOG_FILE_BYTES: u64 = 2 << 30;

/// The current checkpoint (§4).
pub(crate) const MANIFEST: &str = "MANIFEST";
/// The next MANIFEST while it is written.
pub(crate) const MANIFEST_TMP: &str = "MANIFEST.tmp";
/// Target of the writer's advisory lock.
pub(crate) const LOCK: &str = "LOCK";
/// The directory of data files.
pub(crate) const DATA_DIR: &str = "data";
/// Summaries of checkpointed commits (§5.7).
pub(crate) const HISTORY: &str = "HISTORY";
/// Start of the names of staging files in `data/`: rows a transaction
/// staged before its commit (FORMAT.md §1).
pub(crate) const STAGE_PREFIX: &str = "stage-";
/// Extension of data files.
pub(crate) const DATA_EXT: &str = "nvd";

/// File name of the log of generation `gen`.
pub(crate) fn log_name(gen: u64) -> String {
    format!("wal-{gen:016x}.log")
}

/// True for the name of a log file of any generation.
pub(crate) fn is_log_name(name: &str) -> bool {
    name.starts_with("wal-")
}

/// File name (within [`DATA_DIR`]) of data file `id`.
pub(crate) fn data_name(id: u64) -> String {
    format!("{id:016x}.{DATA_EXT}")
}

/// The data file id a name within [`DATA_DIR`] stands for, if it is one
/// [`data_name`] gives (16 lowercase hex digits, then the extension).
pub(crate) fn data_file_id(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(DATA_EXT)?.strip_suffix('.')?;
    let lower = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
    if hex.len() != 16 || !hex.as_bytes().iter().all(lower) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// A header that is either malformed or of another version.
#[derive(Debug)]
pub(crate) enum HeaderError {
    Bad(codec::DecodeError),
    Version(u32),
}

impl From<codec::DecodeError> for HeaderError {
    fn from(e: codec::DecodeError) -> Self {
        HeaderError::Bad(e)
    }
}

/// What the holder of the writer lock writes into `LOCK` (FORMAT.md §1):
/// its process id, for errors that name the holder, and the boot in which
/// the live log was last recovered or written, which lets the next opener
/// in the same boot skip recovery's checks of data that only a power loss
/// could have taken (§7.4). Either line may be missing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LockNote {
    pub pid: Option<u32>,
    pub boot: Option<String>,
    /// No sync in this boot has covered a record past this seq (a writer
    /// holding the lock notes it before each sync): records after it, and
    /// files only they refer to, are not durable. Trusted only in the same
    /// boot; missing: unknown.
    pub syncing: Option<u64>,
    /// A sync in this boot covered every record up to this seq (written
    /// after the sync returned): the next opener in this boot takes them
    /// as durable without a record declaring it. Trusted only in the same
    /// boot; missing: only what the log declares.
    pub synced: Option<u64>,
}

impl LockNote {
    pub fn encode(&self) -> String {
        let mut s = String::new();
        if let Some(p) = self.pid {
            s.push_str(&format!("pid {p}\n"));
        }
        if let Some(b) = &self.boot {
            s.push_str(&format!("boot {b}\n"));
        }
        if let Some(n) = self.syncing {
            s.push_str(&format!("syncing {n}\n"));
        }
        if let Some(n) = self.synced {
            s.push_str(&format!("synced {n}\n"));
        }
        s
    }

    /// Lenient: unknown lines and damage give missing fields, never an error
    /// (a missing boot only means a full recovery).
    pub fn decode(bytes: &[u8]) -> LockNote {
        let text = String::from_utf8_lossy(bytes);
        let mut note = LockNote::default();
        for line in text.lines() {
            if let Some(p) = line.strip_prefix("pid ") {
                note.pid = p.trim().parse().ok();
            } else if let Some(n) = line.strip_prefix("syncing ") {
                note.syncing = n.trim().parse().ok();
            } else if let Some(n) = line.strip_prefix("synced ") {
                note.synced = n.trim().parse().ok();
            } else if let Some(b) = line.strip_prefix("boot ") {
                let b = b.trim();
                if !b.is_empty() && b.len() <= 64 {
                    note.boot = Some(b.to_string());
                }
            }
        }
        note
    }

    /// "pid 1234", for errors.
    pub fn holder(&self) -> Option<String> {
        self.pid.map(|p| format!("pid {p}"))
    }
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn data_file_names_give_back_their_ids_and_nothing_else_does() {
        for id in [0u64, 1, 0xab, u64::MAX, 1 << 40] {
            assert_eq!(data_file_id(&data_name(id)), Some(id));
        }
        for bad in [
            "00000000000000AB.nvd",
            "00000000000000ab.nvd.tmp",
            "0000000000000ab.nvd",
            "000000000000000ab.nvd",
            "00000000000000ab",
            "00000000000000abnvd",
            "+000000000000000.nvd",
            "stage-1.nvd",
        ] {
            assert_eq!(data_file_id(bad), None, "{bad}");
        }
    }
}

#[cfg(test)]
mod lock_note_tests {
    use super::LockNote;

    #[test]
    fn round_trips_and_tolerates_damage_and_unknown_lines() {
        let n = LockNote {
            pid: Some(42),
            boot: Some("b-1".into()),
            syncing: Some(9),
            synced: Some(7),
        };
        assert_eq!(LockNote::decode(n.encode().as_bytes()), n);
        let text = b"pid x\nboot b-1\nfuture 3\nsynced 5\nsyncing \xff\n";
        let got = LockNote::decode(text);
        assert_eq!(
            got,
            LockNote {
                pid: None,
                boot: Some("b-1".into()),
                syncing: None,
                synced: Some(5),
            }
        );
        assert_eq!(LockNote::decode(&[0xff; 300]), LockNote::default());
    }
}

//! numvault: a crash-safe embedded storage engine for numeric arrays.
//!
//! A store is a directory of named arrays of fixed-size elements; the first
//! axis is rows. Every mutation is atomic and goes through a checksummed,
//! hash-chained commit log; data files are append-only and covered by
//! per-chunk checksums. See `docs/FORMAT.md` for the on-disk format and the
//! durability guarantees of each [`Sync`] policy.
//!
//! ```
//! use numvault::{ArrayRef, Store, OpenOptions};
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path(), OpenOptions::default()).unwrap();
//! let rows: Vec<f32> = (0..30).map(|i| i as f32).collect();
//! store.save("features", ArrayRef::of(&[10, 3], &rows)).unwrap();
//! store.append("features", ArrayRef::of(&[1, 3], &[1.0f32, 2.0, 3.0])).unwrap();
//! store.replace("features", &[-1], ArrayRef::of(&[1, 3], &[0.0f32; 3])).unwrap();
//! store.delete_rows("features", &[0]).unwrap();
//! assert_eq!(store.shape("features").unwrap(), vec![10, 3]);
//! let view = store.view("features").unwrap();
//! assert_eq!(view.row(0).unwrap(), bytemuck::cast_slice::<f32, u8>(&[3.0, 4.0, 5.0]));
//! ```
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod array;
mod codec;
mod dtype;
mod error;
mod format;
mod history;
mod inplace;
mod meta;
mod options;
mod read;
mod read_ahead;
mod store;
mod verify;
mod write;

#[doc(hidden)]
pub mod fuzzing;
pub mod sim;
pub mod vfs;

pub use array::{ArrayData, ArrayInfo, ArrayRef, Element};
pub use dtype::DType;
pub use error::{Error, Result};
pub use format::{FORMAT_VERSION, MAX_NDIM};
pub use history::{hex as hash_hex, CommitInfo, HistoryReport, OpKind, OpSummary};
pub use inplace::Writable;
pub use options::{OpenOptions, Sync};
pub use read::{ArrayReader, Batches, View};
pub use store::{Batch, Store};
pub use verify::{Problem, VerifyReport};

/// Longest array name in bytes.
pub const MAX_NAME_BYTES: usize = 255;

/// Check an array name: 1..=255 bytes of UTF-8 without NUL or control
/// characters; '/'-separated components that are neither empty, '.' nor '..'.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("name is empty");
    }
    if name.len() > MAX_NAME_BYTES {
        return bad("name is longer than 255 bytes");
    }
    if name.chars().any(char::is_control) {
        return bad("name contains NUL or a control character");
    }
    for part in name.split('/') {
        match part {
            "" => return bad("name has an empty path component"),
            "." | ".." => return bad("name has a '.' or '..' component"),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "model/layer1/weight", "x.y", "é/ü", &"n".repeat(255)] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            ".",
            "a/../b",
            "a/./b",
            "a\0b",
            "a\nb",
            &"n".repeat(256),
        ] {
            assert!(
                matches!(validate_name(bad), Err(Error::InvalidName { .. })),
                "{bad:?}"
            );
        }
    }
}

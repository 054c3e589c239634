//! Array names.

use super::error::{Error, Result};

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

//! Little-endian encoding helpers with bounds-checked, length-capped decoding.
//!
//! Every length read from disk is checked against the bytes that remain
//! before anything is allocated, so a hostile file cannot cause an unbounded
//! allocation.

/// Appends little-endian fields to a byte vector.
#[derive(Default)]
pub(crate) struct Enc {
    pub buf: Vec<u8>,
}

impl Enc {
    pub fn with_capacity(n: usize) -> Self {
        Enc {
            buf: Vec::with_capacity(n),
        }
    }
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn raw(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }
    /// u16 length + UTF-8 bytes.
    pub fn str(&mut self, s: &str) {
        // Names are validated to at most 255 bytes before they get here.
        let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf
            .extend_from_slice(&s.as_bytes()[..usize::from(len)]);
    }
    /// u64 length + bytes.
    pub fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.buf.extend_from_slice(b);
    }
}

/// Why bytes read from disk could not be decoded: what was expected, and
/// where (a byte offset within the buffer being decoded; callers that
/// decode part of a file add the part's offset and name the file, giving
/// `Error::Decode`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DecodeError {
    pub offset: u64,
    pub what: String,
}

impl DecodeError {
    pub fn at(offset: u64, what: impl Into<String>) -> Self {
        DecodeError {
            offset,
            what: what.into(),
        }
    }

    /// The error for file `path`, whose bytes this error's offsets count.
    pub fn in_file(self, path: impl Into<std::path::PathBuf>) -> crate::model::error::Error {
        crate::model::error::Error::Decode {
            path: path.into(),
            offset: self.offset,
            what: self.what,
        }
    }

    /// The same error, `base` bytes further into the file.
    pub fn shifted(mut self, base: u64) -> Self {
        self.offset = self.offset.saturating_add(base);
        self
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (at byte {})", self.what, self.offset)
    }
}

pub(crate) type DecResult<T> = std::result::Result<T, DecodeError>;

/// Reads little-endian fields; every failure is a [`DecodeError`] saying
/// what was expected and at which offset.
pub(crate) struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Dec<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Dec { buf, pos: 0 }
    }
    /// Offset of the next field.
    pub fn pos(&self) -> u64 {
        self.pos as u64
    }
    /// An error at the current offset.
    pub fn error(&self, what: impl Into<String>) -> DecodeError {
        DecodeError::at(self.pos as u64, what)
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }
    pub fn take(&mut self, n: usize, what: &str) -> DecResult<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.error(format!(
                "{what}: needs {n} bytes, only {} remain",
                self.remaining()
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    pub fn u8(&mut self, what: &str) -> DecResult<u8> {
        Ok(self.take(1, what)?[0])
    }
    pub fn u16(&mut self, what: &str) -> DecResult<u16> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    pub fn u32(&mut self, what: &str) -> DecResult<u32> {
        let b = self.take(4, what)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_le_bytes(a))
    }
    pub fn u64(&mut self, what: &str) -> DecResult<u64> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    pub fn array32(&mut self, what: &str) -> DecResult<[u8; 32]> {
        let b = self.take(32, what)?;
        let mut a = [0u8; 32];
        a.copy_from_slice(b);
        Ok(a)
    }
    pub fn str(&mut self, what: &str) -> DecResult<String> {
        let n = usize::from(self.u16(what)?);
        let at = self.pos;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec())
            .map_err(|_| DecodeError::at(at as u64, format!("{what}: not valid UTF-8")))
    }
    pub fn bytes(&mut self, what: &str) -> DecResult<&'a [u8]> {
        let n = self.u64(what)?;
        let n =
            usize::try_from(n).map_err(|_| self.error(format!("{what}: length {n} too large")))?;
        self.take(n, what)
    }
    /// A count of items each at least `min_item_bytes` long: rejected if the
    /// remaining bytes cannot possibly hold them (caps allocations).
    pub fn count(&mut self, min_item_bytes: usize, what: &str) -> DecResult<usize> {
        let n = self.u32(what)? as usize;
        if n.saturating_mul(min_item_bytes.max(1)) > self.remaining() {
            return Err(self.error(format!(
                "{what}: count {n} cannot fit in the {} remaining bytes",
                self.remaining()
            )));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut e = Enc::default();
        e.u8(7);
        e.u32(0xdead_beef);
        e.u64(u64::MAX - 1);
        e.str("model/w");
        e.bytes(b"abc");
        let mut d = Dec::new(&e.buf);
        assert_eq!(d.u8("a").unwrap(), 7);
        assert_eq!(d.u32("b").unwrap(), 0xdead_beef);
        assert_eq!(d.u64("c").unwrap(), u64::MAX - 1);
        assert_eq!(d.str("d").unwrap(), "model/w");
        assert_eq!(d.bytes("e").unwrap(), b"abc");
        assert!(d.is_empty());
        assert!(d.u8("f").is_err());
    }

    #[test]
    fn hostile_lengths_are_rejected_without_allocating() {
        let mut e = Enc::default();
        e.u64(u64::MAX);
        assert!(Dec::new(&e.buf).bytes("x").is_err());
        let mut e = Enc::default();
        e.u32(u32::MAX);
        assert!(Dec::new(&e.buf).count(8, "x").is_err());
    }
}

//! Chunk checksums of data files: one CRC-32C per [`CHUNK_BYTES`] of a
//! file's bytes, and the arithmetic to combine and extend them.

/// Data files are checksummed in chunks of this many bytes.
pub(crate) const CHUNK_BYTES: u64 = 1 << 20;

/// Checksums of a data file's bytes `0..covered`, one crc32c per chunk; the
/// last chunk may be partial. Data files are append-only, so a sum never goes
/// stale: it covers exactly bytes that can no longer change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ChunkSums {
    pub covered: u64,
    pub sums: Vec<u32>,
}

impl ChunkSums {
    /// Checksums of `data`, taken as the start of a file.
    pub fn of(data: &[u8]) -> Self {
        ChunkSums {
            covered: data.len() as u64,
            sums: data
                .chunks(CHUNK_BYTES as usize)
                .map(crc32c::crc32c)
                .collect(),
        }
    }

    /// Byte range of chunk `i` that its checksum covers.
    pub fn range(&self, i: usize) -> (u64, u64) {
        let start = i as u64 * CHUNK_BYTES;
        (start, (start + CHUNK_BYTES).min(self.covered))
    }

    /// crc32c of all covered bytes, from the chunk sums.
    ///
    /// Combining costs a GF(2) operator for the length of the chunk appended;
    /// every chunk but the last is `CHUNK_BYTES` long, so that operator is
    /// built once (a `crc32c_combine` per chunk took ~50 us each).
    pub fn whole(&self) -> u32 {
        let mut crc = 0u32;
        let mut full: Option<Gf2Op> = None;
        for (i, s) in self.sums.iter().enumerate() {
            let (a, b) = self.range(i);
            crc = if i == 0 {
                *s
            } else if b - a == CHUNK_BYTES {
                full.get_or_insert_with(|| Gf2Op::zeros(CHUNK_BYTES))
                    .apply(crc)
                    ^ *s
            } else {
                crc32c::crc32c_combine(crc, *s, (b - a) as usize)
            };
        }
        crc
    }

    /// Extend the checksums over `bytes` appended right after the covered
    /// ones (the last chunk's CRC is extended, then new chunks begin).
    pub fn extend(&mut self, mut bytes: &[u8]) {
        let partial = (self.covered % CHUNK_BYTES) as usize;
        if partial > 0 {
            let n = bytes.len().min(CHUNK_BYTES as usize - partial);
            if let Some(last) = self.sums.last_mut() {
                *last = crc32c::crc32c_append(*last, &bytes[..n]);
            }
            self.covered += n as u64;
            bytes = &bytes[n..];
        }
        for piece in bytes.chunks(CHUNK_BYTES as usize) {
            self.sums.push(crc32c::crc32c(piece));
            self.covered += piece.len() as u64;
        }
        debug_assert!(self.is_consistent());
    }

    pub fn is_consistent(&self) -> bool {
        self.sums.len() as u64 == self.covered.div_ceil(CHUNK_BYTES)
    }
}

/// A linear operator on CRC-32C registers over GF(2): column `n` is the
/// image of bit `n`. `zeros(len)` feeds `len` zero bytes, so that
/// `crc(A ++ B) == zeros(len(B)).apply(crc(A)) ^ crc(B)` (zlib's combine).
struct Gf2Op([u32; 32]);

impl Gf2Op {
    fn apply(&self, mut v: u32) -> u32 {
        let mut sum = 0;
        let mut n = 0;
        while v != 0 {
            if v & 1 != 0 {
                sum ^= self.0[n];
            }
            v >>= 1;
            n += 1;
        }
        sum
    }

    /// `self`, then `other` (powers of one operator commute anyway).
    fn then(&self, other: &Gf2Op) -> Gf2Op {
        Gf2Op(self.0.map(|col| other.apply(col)))
    }

    fn zeros(mut len: u64) -> Gf2Op {
        // One zero bit: shift right, folding in the reflected polynomial.
        let mut op = [0u32; 32];
        op[0] = 0x82F6_3B78;
        for (n, col) in op.iter_mut().enumerate().skip(1) {
            *col = 1 << (n - 1);
        }
        let mut power = Gf2Op(op);
        // Square three times: one zero byte.
        for _ in 0..3 {
            power = power.then(&power);
        }
        let mut result = Gf2Op(std::array::from_fn(|n| 1 << n));
        while len != 0 {
            if len & 1 != 0 {
                result = result.then(&power);
            }
            len >>= 1;
            if len != 0 {
                power = power.then(&power);
            }
        }
        result
    }
}

/// Builds [`ChunkSums`] from bytes fed in order, in pieces of any size.
#[derive(Default)]
pub(crate) struct SumBuilder {
    sums: Vec<u32>,
    cur: u32,
    cur_len: u64,
    covered: u64,
}

impl SumBuilder {
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = (CHUNK_BYTES - self.cur_len) as usize;
            let n = room.min(data.len());
            self.cur = crc32c::crc32c_append(self.cur, &data[..n]);
            self.cur_len += n as u64;
            self.covered += n as u64;
            data = &data[n..];
            if self.cur_len == CHUNK_BYTES {
                self.sums.push(self.cur);
                self.cur = 0;
                self.cur_len = 0;
            }
        }
    }

    pub fn finish(mut self) -> ChunkSums {
        if self.cur_len > 0 {
            self.sums.push(self.cur);
        }
        ChunkSums {
            covered: self.covered,
            sums: self.sums,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extending_equals_computing_over_the_whole() {
        let c = CHUNK_BYTES as usize;
        let data: Vec<u8> = (0..(2 * c + 777)).map(|i| (i * 13 % 251) as u8).collect();
        for cuts in [
            vec![0, 5, 100, c - 1, c, c + 3, 2 * c + 777],
            vec![0, c / 2, 2 * c + 777],
        ] {
            let mut s = ChunkSums::default();
            for w in cuts.windows(2) {
                s.extend(&data[w[0]..w[1]]);
            }
            assert_eq!(s, ChunkSums::of(&data), "{cuts:?}");
        }
    }

    #[test]
    fn whole_crc_combines_chunks() {
        let data: Vec<u8> = (0..(3 * CHUNK_BYTES as usize + 17))
            .map(|i| (i % 253) as u8)
            .collect();
        let s = ChunkSums::of(&data);
        assert_eq!(s.sums.len(), 4);
        assert!(s.is_consistent());
        assert_eq!(s.whole(), crc32c::crc32c(&data));
        assert_eq!(ChunkSums::of(&[]).whole(), 0);
    }

    #[test]
    fn whole_crc_of_exact_and_single_chunks() {
        for len in [1usize, CHUNK_BYTES as usize, 2 * CHUNK_BYTES as usize] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            assert_eq!(ChunkSums::of(&data).whole(), crc32c::crc32c(&data), "{len}");
        }
    }

    #[test]
    fn sum_builder_matches_chunk_sums_whatever_the_piece_sizes() {
        let c = CHUNK_BYTES as usize;
        let data: Vec<u8> = (0..(2 * c + 1000)).map(|i| (i * 7 % 251) as u8).collect();
        let want = ChunkSums::of(&data);
        for pieces in [
            vec![1, 7, c - 8, 3],
            vec![c],
            vec![c + 3, c - 3],
            vec![2 * c + 1000],
        ] {
            let mut b = SumBuilder::default();
            let mut rest = &data[..];
            for n in pieces.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let n = (*n).min(rest.len());
                b.feed(&rest[..n]);
                rest = &rest[n..];
            }
            assert_eq!(b.finish(), want, "pieces {pieces:?}");
        }
        assert_eq!(want.range(2), (2 * CHUNK_BYTES, 2 * CHUNK_BYTES + 1000));
        assert_eq!(SumBuilder::default().finish(), ChunkSums::default());
    }
}

//! Streaming an array in batches.

use std::sync::Arc;

use super::ahead::ReadAhead;
use super::rows::{
    patch_preloaded, read_rows_into, ShadowRows, Verifier, VerifyState, SHADOW_PRELOAD_BYTES,
};
use super::whole::check_out_len;
use crate::data::DataFile;
use crate::model::array::ArrayData;
use crate::model::dtype::DType;
use crate::model::error::Result;
use crate::model::state::ArrayMeta;

/// Streaming iterator over row batches (see [`Store::batches`]).
///
/// Besides iterating (each batch a new [`ArrayData`]), a caller that
/// allocates its own buffers can ask [`Batches::next_rows`] and fill one
/// with [`Batches::read_next_into`]. Checksums are verified chunk by chunk
/// as the rows are read, and each byte is read once.
pub struct Batches {
    name: String,
    meta: Arc<ArrayMeta>,
    df: Arc<DataFile>,
    next: u64,
    batch_rows: u64,
    verify: VerifyState,
    /// The snapshot's replaced rows, loaded at the first batch.
    shadow: Option<ShadowRows>,
    /// Large identity-mapped arrays: chunks read and checked ahead.
    ahead: Option<ReadAhead>,
}

impl Batches {
    /// Stream `meta`'s rows in batches of `batch_rows` (at least 1).
    pub(crate) fn new(
        name: &str,
        meta: Arc<ArrayMeta>,
        df: Arc<DataFile>,
        batch_rows: u64,
    ) -> Self {
        debug_assert!(batch_rows > 0);
        Batches {
            name: name.to_string(),
            meta,
            df,
            next: 0,
            batch_rows,
            verify: VerifyState::default(),
            shadow: None,
            ahead: None,
        }
    }

    /// Rows in the array being streamed.
    pub fn rows(&self) -> u64 {
        self.meta.rows()
    }

    /// Element type of the array.
    pub fn dtype(&self) -> DType {
        self.meta.dtype
    }

    /// Bytes per row.
    pub fn row_bytes(&self) -> u64 {
        self.meta.row_bytes
    }

    /// Shape of the next batch (rows first), `None` at the end.
    pub fn next_shape(&self) -> Option<Vec<u64>> {
        let n = self.next_rows();
        (n > 0).then(|| {
            let mut shape = self.meta.shape();
            shape[0] = n;
            shape
        })
    }

    /// Rows of the next batch (0 at the end of the stream).
    pub fn next_rows(&self) -> u64 {
        let rows = self.meta.rows();
        self.batch_rows.min(rows.saturating_sub(self.next))
    }

    /// Logical index of the first row of the next batch.
    pub fn next_index(&self) -> u64 {
        self.next
    }

    /// Read the next batch into `out`, which must be exactly
    /// `next_rows() * row_bytes()` bytes; returns the rows read (0 at the
    /// end). After an error the stream ends.
    pub fn read_next_into(&mut self, out: &mut [u8]) -> Result<u64> {
        let n = self.next_rows();
        check_out_len(&self.name, &self.meta, n, out)?;
        if n == 0 {
            return Ok(0);
        }
        if self.reads_ahead() {
            let data = self.take_ahead()?;
            out.copy_from_slice(&data);
            return Ok(n);
        }
        let start = self.next;
        let end = start + n;
        let mut v = Verifier::with_state(
            &self.name,
            &self.meta,
            &self.df,
            std::mem::take(&mut self.verify),
        );
        let mut res = Ok(());
        if self.shadow.is_none() && !self.meta.remap.is_empty() {
            res = ShadowRows::load(&self.meta, &self.df, Some(&mut v))
                .map(|shadow| self.shadow = Some(shadow));
        }
        let res = res.and_then(|()| {
            read_rows_into(
                &self.meta,
                &self.df,
                start,
                end,
                out,
                Some(&mut v),
                self.shadow.as_ref(),
            )
        });
        self.verify = v.into_state();
        if let Err(e) = res {
            self.next = self.meta.rows();
            return Err(e);
        }
        self.next = end;
        Ok(n)
    }
}

impl Batches {
    /// Whether batches come from the read-ahead workers: streams from the
    /// first row of arrays whose replaced rows, if any, can be preloaded
    /// ([`ShadowRows`]). Such batches are read straight into buffers the
    /// iterator hands out (see [`ReadAhead`]), so iterating costs no copy;
    /// [`Batches::read_next_into`] copies them once into the caller's
    /// buffer.
    pub fn reads_ahead(&self) -> bool {
        let m = &self.meta;
        m.row_bytes > 0
            && (m.remap.len() as u64).saturating_mul(m.row_bytes) <= SHADOW_PRELOAD_BYTES
            && (self.ahead.is_some() || self.next == 0)
    }

    /// The next batch from the read-ahead workers (the caller checked
    /// [`Batches::reads_ahead`] and that a batch is left).
    fn take_ahead(&mut self) -> Result<Vec<u8>> {
        let n = self.next_rows();
        if self.ahead.is_none() && !self.meta.remap.is_empty() {
            // The replaced rows first, read once and checked.
            let mut v = Verifier::new(&self.name, &self.meta, &self.df);
            match ShadowRows::load(&self.meta, &self.df, Some(&mut v)) {
                Ok(shadow) => self.shadow = Some(shadow),
                Err(e) => {
                    self.next = self.meta.rows();
                    return Err(e);
                }
            }
        }
        let ahead = self.ahead.get_or_insert_with(|| {
            ReadAhead::start(&self.name, &self.meta, &self.df, self.batch_rows)
        });
        match ahead.take((self.next / self.batch_rows) as usize) {
            Ok(mut data) => {
                if let Some(shadow) = &self.shadow {
                    let (start, end) = (self.next, self.next + n);
                    patch_preloaded(&self.meta, start, end, &mut data, shadow);
                }
                self.next += n;
                Ok(data)
            }
            Err(e) => {
                self.next = self.meta.rows();
                self.ahead = None;
                Err(e)
            }
        }
    }
}

impl Iterator for Batches {
    type Item = Result<ArrayData>;

    fn next(&mut self) -> Option<Self::Item> {
        let shape = self.next_shape()?;
        if self.reads_ahead() {
            return Some(self.take_ahead().map(|data| ArrayData {
                dtype: self.meta.dtype,
                shape,
                data,
            }));
        }
        let mut data = vec![0u8; (shape[0] * self.meta.row_bytes) as usize];
        if let Err(e) = self.read_next_into(&mut data) {
            return Some(Err(e));
        }
        Some(Ok(ArrayData {
            dtype: self.meta.dtype,
            shape,
            data,
        }))
    }
}

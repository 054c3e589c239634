//! Parquet: one column per array column, or one array per column when
//! the columns do not share a type.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use numvault::DType;

use super::{arr, element_count, invalid, io_at, unsupported, Fail, FormatError, Loaded};
use numvault_formats::npy::MAX_NPY_NDIM;

pub(super) const SHAPE_KEY: &str = "numvault.shape";
/// Decoded parquet data may be at most this many times the file size (or
/// PARQUET_MIN_BUDGET, whichever is larger) before we call the file
/// implausible.
const PARQUET_EXPANSION: u64 = 4096;
const PARQUET_MIN_BUDGET: u64 = 256 << 20;
const PARQUET_BATCH: usize = 64 * 1024;
const ROW_GROUP_BYTES: usize = 64 << 20;

fn parquet_err(e: parquet::errors::ParquetError) -> Fail {
    invalid(format!("cannot read parquet data: {e}"))
}

fn parquet_dtype(col: &parquet::schema::types::ColumnDescriptor) -> Result<DType, Fail> {
    use parquet::basic::{ConvertedType as C, LogicalType as L, Type as P};
    let from_int = |bits: i8, signed: bool| match (bits, signed) {
        (8, true) => Some(DType::I8),
        (16, true) => Some(DType::I16),
        (32, true) => Some(DType::I32),
        (64, true) => Some(DType::I64),
        (8, false) => Some(DType::U8),
        (16, false) => Some(DType::U16),
        (32, false) => Some(DType::U32),
        (64, false) => Some(DType::U64),
        _ => None,
    };
    let phys = col.physical_type();
    let d = match (phys, col.logical_type_ref()) {
        (P::BOOLEAN, None) => Some(DType::Bool),
        (P::INT32, None) => match col.converted_type() {
            C::NONE | C::INT_32 => Some(DType::I32),
            C::INT_8 => Some(DType::I8),
            C::INT_16 => Some(DType::I16),
            C::UINT_8 => Some(DType::U8),
            C::UINT_16 => Some(DType::U16),
            C::UINT_32 => Some(DType::U32),
            _ => None,
        },
        (P::INT64, None) => match col.converted_type() {
            C::NONE | C::INT_64 => Some(DType::I64),
            C::UINT_64 => Some(DType::U64),
            _ => None,
        },
        (P::INT32, Some(L::Integer(t))) if t.bit_width <= 32 => from_int(t.bit_width, t.is_signed),
        (P::INT64, Some(L::Integer(t))) if t.bit_width == 64 => from_int(t.bit_width, t.is_signed),
        (P::FLOAT, None) => Some(DType::F32),
        (P::DOUBLE, None) => Some(DType::F64),
        (P::FIXED_LEN_BYTE_ARRAY, Some(L::Float16)) if col.type_length() == 2 => Some(DType::F16),
        _ => None,
    };
    d.ok_or_else(|| {
        let ann = match (col.converted_type(), col.logical_type_ref()) {
            (C::NONE, Some(l)) => format!(" ({l:?})"),
            (C::NONE, None) => String::new(),
            (c, _) => format!(" ({c})"),
        };
        unsupported(format!(
            "column '{}' has unsupported type {phys}{ann} (supported: bool, integers, float16/32/64)",
            col.path().string()
        ))
    })
}

/// Read `rows` non-null values of one column chunk, handing them to `sink`.
fn drain<T: parquet::data_type::DataType>(
    r: &mut parquet::column::reader::ColumnReaderImpl<T>,
    rows: usize,
    mut sink: impl FnMut(&[T::T]) -> Result<(), Fail>,
) -> Result<(), Fail> {
    let mut def = Vec::new();
    let mut vals = Vec::new();
    let mut got = 0usize;
    while got < rows {
        def.clear();
        vals.clear();
        let want = (rows - got).min(PARQUET_BATCH);
        let (recs, nvals, _) = r
            .read_records(want, Some(&mut def), None, &mut vals)
            .map_err(parquet_err)?;
        if recs == 0 {
            break;
        }
        if nvals != recs {
            // Flat optional column: definition level 0 marks a null.
            let first = got + def.iter().position(|&d| d == 0).unwrap_or(0);
            return Err(unsupported(format!(
                "contains null values (the first at row {first} of the row group); \
                 nulls are not supported"
            )));
        }
        sink(&vals)?;
        got += recs;
    }
    if got != rows {
        return Err(invalid(format!(
            "has {got} values where the row group metadata promises {rows}"
        )));
    }
    Ok(())
}

fn narrow<T: TryFrom<i32>>(v: i32, dtype: DType) -> Result<T, Fail> {
    T::try_from(v).map_err(|_| invalid(format!("value {v} is out of range for {dtype}")))
}

fn read_parquet_column(
    reader: parquet::column::reader::ColumnReader,
    dtype: DType,
    rows: usize,
    out: &mut Vec<u8>,
) -> Result<(), Fail> {
    use parquet::column::reader::ColumnReader as CR;
    match reader {
        CR::BoolColumnReader(mut r) => drain(&mut r, rows, |vs| {
            out.extend(vs.iter().map(|&b| u8::from(b)));
            Ok(())
        }),
        CR::Int32ColumnReader(mut r) => drain(&mut r, rows, |vs| {
            for &v in vs {
                match dtype {
                    DType::I8 => out.extend(narrow::<i8>(v, dtype)?.to_le_bytes()),
                    DType::I16 => out.extend(narrow::<i16>(v, dtype)?.to_le_bytes()),
                    DType::U8 => out.extend(narrow::<u8>(v, dtype)?.to_le_bytes()),
                    DType::U16 => out.extend(narrow::<u16>(v, dtype)?.to_le_bytes()),
                    // I32, and U32 stored as its bit pattern.
                    _ => out.extend(v.to_le_bytes()),
                }
            }
            Ok(())
        }),
        CR::Int64ColumnReader(mut r) => drain(&mut r, rows, |vs| {
            // I64, and U64 stored as its bit pattern.
            vs.iter().for_each(|v| out.extend(v.to_le_bytes()));
            Ok(())
        }),
        CR::FloatColumnReader(mut r) => drain(&mut r, rows, |vs| {
            vs.iter().for_each(|v| out.extend(v.to_le_bytes()));
            Ok(())
        }),
        CR::DoubleColumnReader(mut r) => drain(&mut r, rows, |vs| {
            vs.iter().for_each(|v| out.extend(v.to_le_bytes()));
            Ok(())
        }),
        CR::FixedLenByteArrayColumnReader(mut r) => drain(&mut r, rows, |vs| {
            for v in vs {
                let b: &[u8] = v.as_ref();
                if b.len() != 2 {
                    return Err(invalid(format!(
                        "a float16 value has {} bytes, expected 2",
                        b.len()
                    )));
                }
                out.extend_from_slice(b);
            }
            Ok(())
        }),
        _ => Err(unsupported("unsupported physical type")),
    }
}

/// Page reader that refuses pages the column reader would panic on instead
/// of returning an error: a dictionary-encoded data page with no dictionary
/// page before it, a v2 page whose level lengths exceed the page, and a
/// BYTE_STREAM_SPLIT page whose value bytes do not match its value count.
struct PageGuard {
    inner: Box<dyn parquet::column::page::PageReader>,
    seen_dict: bool,
    /// Bytes per value for BYTE_STREAM_SPLIT (physical width).
    width: usize,
    /// The column is required (no definition levels in v1 pages).
    required: bool,
}

impl Iterator for PageGuard {
    type Item = parquet::errors::Result<parquet::column::page::Page>;

    fn next(&mut self) -> Option<Self::Item> {
        parquet::column::page::PageReader::get_next_page(self).transpose()
    }
}

impl PageGuard {
    fn check(&mut self, page: &parquet::column::page::Page) -> Result<(), &'static str> {
        use parquet::basic::Encoding as E;
        use parquet::column::page::Page;
        let encoding = match page {
            Page::DictionaryPage { .. } => {
                self.seen_dict = true;
                return Ok(());
            }
            Page::DataPage { encoding, .. } | Page::DataPageV2 { encoding, .. } => *encoding,
        };
        if matches!(encoding, E::PLAIN_DICTIONARY | E::RLE_DICTIONARY) && !self.seen_dict {
            return Err("dictionary-encoded page without a dictionary page");
        }
        // Bytes holding the values, and how many values they must hold (when known).
        let (value_bytes, values) = match page {
            Page::DataPageV2 {
                buf,
                num_values,
                num_nulls,
                def_levels_byte_len,
                rep_levels_byte_len,
                ..
            } => {
                let levels = *def_levels_byte_len as usize + *rep_levels_byte_len as usize;
                let Some(rest) = buf.len().checked_sub(levels) else {
                    return Err("page levels are longer than the page");
                };
                let Some(non_null) = num_values.checked_sub(*num_nulls) else {
                    return Err("page has more nulls than values");
                };
                (rest, Some(non_null as usize))
            }
            Page::DataPage {
                buf, num_values, ..
            } => (buf.len(), self.required.then_some(*num_values as usize)),
            Page::DictionaryPage { .. } => return Ok(()),
        };
        if encoding == E::BYTE_STREAM_SPLIT {
            // Unknown for v1 pages of nullable columns (levels not parsed here).
            if let Some(n) = values {
                if n.checked_mul(self.width) != Some(value_bytes) {
                    return Err("BYTE_STREAM_SPLIT page size does not match its value count");
                }
            }
        }
        Ok(())
    }
}

impl parquet::column::page::PageReader for PageGuard {
    fn get_next_page(&mut self) -> parquet::errors::Result<Option<parquet::column::page::Page>> {
        let page = self.inner.get_next_page()?;
        if let Some(p) = &page {
            self.check(p)
                .map_err(|m| parquet::errors::ParquetError::General(m.to_string()))?;
        }
        Ok(page)
    }

    fn peek_next_page(
        &mut self,
    ) -> parquet::errors::Result<Option<parquet::column::page::PageMetadata>> {
        self.inner.peek_next_page()
    }

    fn skip_next_page(&mut self) -> parquet::errors::Result<()> {
        self.inner.skip_next_page()
    }

    fn at_record_boundary(&mut self) -> parquet::errors::Result<bool> {
        self.inner.at_record_boundary()
    }
}

pub(super) fn load_parquet(path: &Path) -> Result<Vec<Loaded>, FormatError> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let file = File::open(path).map_err(io_at(path))?;
    let file_len = file.metadata().map_err(io_at(path))?.len();
    let reader = SerializedFileReader::new(file)
        .map_err(|e| invalid(format!("not a valid parquet file: {e}")).at(path))?;
    let meta = reader.metadata();
    let fmeta = meta.file_metadata();
    let schema = fmeta.schema_descr();

    for field in schema.root_schema().get_fields() {
        if !field.is_primitive() {
            return Err(unsupported(format!(
                "column '{}' is nested (struct/list/map); only flat numeric columns are supported",
                field.name()
            ))
            .at(path));
        }
    }
    let ncols = schema.num_columns();
    let mut dtypes = Vec::with_capacity(ncols);
    let mut names = Vec::with_capacity(ncols);
    for col in schema.columns() {
        if col.max_rep_level() > 0 {
            return Err(unsupported(format!(
                "column '{}' is repeated; only flat numeric columns are supported",
                col.path().string()
            ))
            .at(path));
        }
        dtypes.push(parquet_dtype(col).map_err(|f| f.at(path))?);
        names.push(col.name().to_string());
    }

    // Row counts from the footer, checked against what the file could hold.
    let mut group_rows = Vec::with_capacity(meta.num_row_groups());
    let mut rows = 0u64;
    for rg in meta.row_groups() {
        let n = u64::try_from(rg.num_rows())
            .map_err(|_| invalid("a row group has a negative row count").at(path))?;
        rows = rows
            .checked_add(n)
            .ok_or_else(|| invalid("row count overflows").at(path))?;
        group_rows.push(n);
        // Column chunks must lie inside the file (the reader asserts this).
        for cc in rg.columns() {
            let start = cc.dictionary_page_offset().unwrap_or(cc.data_page_offset());
            let len = cc.compressed_size();
            let inside = u64::try_from(start)
                .ok()
                .zip(u64::try_from(len).ok())
                .and_then(|(s, l)| s.checked_add(l))
                .is_some_and(|end| end <= file_len);
            if !inside {
                return Err(invalid(format!(
                    "column chunk '{}' lies outside the file (offset {start}, length {len})",
                    cc.column_path().string()
                ))
                .at(path));
            }
        }
    }
    let row_bytes: u64 = dtypes.iter().map(|d| d.itemsize() as u64).sum();
    let budget = file_len
        .saturating_mul(PARQUET_EXPANSION)
        .max(PARQUET_MIN_BUDGET);
    let total = rows.checked_mul(row_bytes);
    if total.is_none_or(|t| t > budget) {
        return Err(invalid(format!(
            "implausible size: {rows} rows of {row_bytes} bytes from a {file_len}-byte file"
        ))
        .at(path));
    }
    let rows_us = usize::try_from(rows).map_err(|_| invalid("too many rows").at(path))?;

    let mut columns: Vec<Vec<u8>> = Vec::with_capacity(ncols);
    for d in &dtypes {
        let mut v = Vec::new();
        v.try_reserve_exact(rows_us.saturating_mul(d.itemsize()))
            .map_err(|_| invalid("cannot allocate memory for the columns").at(path))?;
        columns.push(v);
    }
    for (g, &n) in group_rows.iter().enumerate() {
        let n = usize::try_from(n).map_err(|_| invalid("too many rows").at(path))?;
        let rg = reader
            .get_row_group(g)
            .map_err(|e| parquet_err(e).at(path))?;
        for c in 0..ncols {
            let what = format!("column '{}' (row group {g})", names[c]);
            let pages = rg
                .get_column_page_reader(c)
                .map_err(|e| parquet_err(e).context(&what).at(path))?;
            let descr = schema.column(c);
            let guarded_pages = PageGuard {
                inner: pages,
                seen_dict: false,
                width: match descr.physical_type() {
                    parquet::basic::Type::FIXED_LEN_BYTE_ARRAY => {
                        usize::try_from(descr.type_length()).unwrap_or(0)
                    }
                    _ => dtypes[c].itemsize().max(4),
                },
                required: descr.max_def_level() == 0,
            };
            let cr = parquet::column::reader::get_column_reader(descr, Box::new(guarded_pages));
            read_parquet_column(cr, dtypes[c], n, &mut columns[c])
                .map_err(|f| f.context(&what).at(path))?;
        }
    }

    let same_type = dtypes.windows(2).all(|w| w[0] == w[1]);
    if !same_type {
        let out = names
            .into_iter()
            .zip(dtypes)
            .zip(columns)
            .map(|((name, dtype), data)| Loaded {
                member: Some(name),
                dtype,
                shape: vec![rows],
                data,
            })
            .collect();
        return Ok(out);
    }
    let Some(&dtype) = dtypes.first() else {
        // No columns: only a numvault-written empty array can look like this.
        if let Some(shape) = stored_shape(fmeta.key_value_metadata()) {
            if element_count(&shape) == Some(0) && shape.len() > 1 {
                if let Some(d) = stored_dtype(fmeta.key_value_metadata()) {
                    return Ok(vec![Loaded {
                        member: None,
                        dtype: d,
                        shape,
                        data: Vec::new(),
                    }]);
                }
            }
        }
        return Err(invalid("the parquet file has no columns").at(path));
    };

    // Interleave the columns into row-major order.
    let item = dtype.itemsize();
    let data = if ncols == 1 {
        columns.pop().unwrap_or_default()
    } else {
        let mut data = Vec::new();
        data.try_reserve_exact(rows_us.saturating_mul(item).saturating_mul(ncols))
            .map_err(|_| invalid("cannot allocate memory for the array").at(path))?;
        for r in 0..rows_us {
            for col in &columns {
                if let Some(el) = col.get(r * item..(r + 1) * item) {
                    data.extend_from_slice(el);
                }
            }
        }
        data
    };
    let default_shape = if ncols == 1 {
        vec![rows]
    } else {
        vec![rows, ncols as u64]
    };
    let shape = match stored_shape(fmeta.key_value_metadata()) {
        Some(s)
            if s.first() == Some(&rows)
                && (if s.len() == 1 {
                    ncols == 1
                } else {
                    element_count(&s[1..]) == Some(ncols as u64)
                }) =>
        {
            s
        }
        _ => default_shape,
    };
    Ok(vec![Loaded {
        member: None,
        dtype,
        shape,
        data,
    }])
}

fn kv_value<'a>(
    kv: Option<&'a Vec<parquet::file::metadata::KeyValue>>,
    key: &str,
) -> Option<&'a str> {
    kv?.iter()
        .find(|e| e.key == key)
        .and_then(|e| e.value.as_deref())
}

/// The `numvault.shape` metadata, if present and well-formed.
pub(super) fn stored_shape(
    kv: Option<&Vec<parquet::file::metadata::KeyValue>>,
) -> Option<Vec<u64>> {
    let s = kv_value(kv, SHAPE_KEY)?;
    let shape: Vec<u64> = serde_json::from_str(s).ok()?;
    (!shape.is_empty() && shape.len() <= MAX_NPY_NDIM).then_some(shape)
}

/// The `numvault.dtype` metadata (only needed for column-less files).
fn stored_dtype(kv: Option<&Vec<parquet::file::metadata::KeyValue>>) -> Option<DType> {
    DType::from_name(kv_value(kv, "numvault.dtype")?)
}

pub(super) fn write_parquet<W: Write + Send>(
    w: W,
    dtype: DType,
    shape: &[u64],
    data: &[u8],
) -> Result<W, Fail> {
    use parquet::basic::{Compression, LogicalType, Repetition, Type as P};
    use parquet::data_type::{
        BoolType, DoubleType, FixedLenByteArray, FixedLenByteArrayType, FloatType, Int32Type,
        Int64Type,
    };
    use parquet::file::metadata::KeyValue;
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::types::Type;

    let werr = |e: parquet::errors::ParquetError| invalid(format!("parquet writer: {e}"));
    let (phys, logical) = match dtype {
        DType::Bool => (P::BOOLEAN, None),
        DType::I8 => (P::INT32, Some(LogicalType::integer(8, true))),
        DType::I16 => (P::INT32, Some(LogicalType::integer(16, true))),
        DType::I32 => (P::INT32, None),
        DType::I64 => (P::INT64, None),
        DType::U8 => (P::INT32, Some(LogicalType::integer(8, false))),
        DType::U16 => (P::INT32, Some(LogicalType::integer(16, false))),
        DType::U32 => (P::INT32, Some(LogicalType::integer(32, false))),
        DType::U64 => (P::INT64, Some(LogicalType::integer(64, false))),
        DType::F16 => (P::FIXED_LEN_BYTE_ARRAY, Some(LogicalType::Float16)),
        DType::F32 => (P::FLOAT, None),
        DType::F64 => (P::DOUBLE, None),
        DType::Complex64 | DType::Complex128 => {
            return Err(unsupported(format!(
                "cannot export {dtype} to parquet (parquet has no complex type; use .npy)"
            )))
        }
    };
    let too_big = || invalid("the array is too large for this machine");
    let rows = usize::try_from(shape.first().copied().unwrap_or(1)).map_err(|_| too_big())?;
    let cols = usize::try_from(element_count(shape.get(1..).unwrap_or(&[])).unwrap_or(0))
        .map_err(|_| too_big())?;
    let mut fields = Vec::with_capacity(cols);
    for j in 0..cols {
        let name = j.to_string();
        let mut b = Type::primitive_type_builder(&name, phys)
            .with_repetition(Repetition::REQUIRED)
            .with_logical_type(logical.clone());
        if dtype == DType::F16 {
            b = b.with_length(2);
        }
        fields.push(Arc::new(b.build().map_err(werr)?));
    }
    let schema = Type::group_type_builder("schema")
        .with_fields(fields)
        .build()
        .map_err(werr)?;
    let shape_json = serde_json::to_string(&if shape.is_empty() {
        vec![1]
    } else {
        shape.to_vec()
    })
    .map_err(|e| invalid(e.to_string()))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_key_value_metadata(Some(vec![
            KeyValue::new(SHAPE_KEY.to_string(), shape_json),
            KeyValue::new("numvault.dtype".to_string(), dtype.name().to_string()),
        ]))
        .build();
    let mut writer =
        SerializedFileWriter::new(w, Arc::new(schema), Arc::new(props)).map_err(werr)?;

    let item = dtype.itemsize();
    let row_bytes = cols.saturating_mul(item).max(1);
    let per_group = (ROW_GROUP_BYTES / row_bytes).clamp(1, 1 << 20);
    let el = |r: usize, j: usize| {
        let at = (r * cols + j) * item;
        data.get(at..at + item).unwrap_or(&[])
    };
    let mut r0 = 0;
    while r0 < rows && cols > 0 {
        let r1 = rows.min(r0 + per_group);
        let mut rg = writer.next_row_group().map_err(werr)?;
        for j in 0..cols {
            let Some(mut col) = rg.next_column().map_err(werr)? else {
                return Err(invalid("parquet writer: missing column"));
            };
            let written = match dtype {
                DType::Bool => {
                    let v: Vec<bool> = (r0..r1)
                        .map(|r| el(r, j).first().is_some_and(|b| *b != 0))
                        .collect();
                    col.typed::<BoolType>().write_batch(&v, None, None)
                }
                DType::I8 => {
                    let v: Vec<i32> = (r0..r1)
                        .map(|r| i32::from(i8::from_le_bytes(arr(el(r, j)))))
                        .collect();
                    col.typed::<Int32Type>().write_batch(&v, None, None)
                }
                DType::I16 => {
                    let v: Vec<i32> = (r0..r1)
                        .map(|r| i32::from(i16::from_le_bytes(arr(el(r, j)))))
                        .collect();
                    col.typed::<Int32Type>().write_batch(&v, None, None)
                }
                DType::U8 => {
                    let v: Vec<i32> = (r0..r1)
                        .map(|r| i32::from(u8::from_le_bytes(arr(el(r, j)))))
                        .collect();
                    col.typed::<Int32Type>().write_batch(&v, None, None)
                }
                DType::U16 => {
                    let v: Vec<i32> = (r0..r1)
                        .map(|r| i32::from(u16::from_le_bytes(arr(el(r, j)))))
                        .collect();
                    col.typed::<Int32Type>().write_batch(&v, None, None)
                }
                DType::I32 | DType::U32 => {
                    let v: Vec<i32> = (r0..r1)
                        .map(|r| i32::from_le_bytes(arr(el(r, j))))
                        .collect();
                    col.typed::<Int32Type>().write_batch(&v, None, None)
                }
                DType::I64 | DType::U64 => {
                    let v: Vec<i64> = (r0..r1)
                        .map(|r| i64::from_le_bytes(arr(el(r, j))))
                        .collect();
                    col.typed::<Int64Type>().write_batch(&v, None, None)
                }
                DType::F16 => {
                    let v: Vec<FixedLenByteArray> = (r0..r1)
                        .map(|r| FixedLenByteArray::from(el(r, j).to_vec()))
                        .collect();
                    col.typed::<FixedLenByteArrayType>()
                        .write_batch(&v, None, None)
                }
                DType::F32 => {
                    let v: Vec<f32> = (r0..r1)
                        .map(|r| f32::from_le_bytes(arr(el(r, j))))
                        .collect();
                    col.typed::<FloatType>().write_batch(&v, None, None)
                }
                DType::F64 => {
                    let v: Vec<f64> = (r0..r1)
                        .map(|r| f64::from_le_bytes(arr(el(r, j))))
                        .collect();
                    col.typed::<DoubleType>().write_batch(&v, None, None)
                }
                DType::Complex64 | DType::Complex128 => Ok(0),
            };
            written.map_err(werr)?;
            col.close().map_err(werr)?;
        }
        rg.close().map_err(werr)?;
        r0 = r1;
    }
    writer.into_inner().map_err(werr)
}

//! Arrow inputs, read in place: any object with the Arrow PyCapsule interface
//! (`__arrow_c_array__`: one array, as a pyarrow `Array`; `__arrow_c_stream__`: chunks, as a
//! pyarrow `ChunkedArray`, a polars `Series` or a pandas `Series`). arrow-rs's C data interface
//! (`arrow_array::ffi`) imports each chunk; its values buffer is read where the producer keeps
//! it, and the imported data keeps it alive (and releases it to its producer when dropped).
//! Chunks become one [`Array`] of chunks ([`Array::from_chunks`]).

use std::ffi::{c_char, CStr};

use arrow_array::ffi::{from_ffi, FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_data::ArrayData;
use arrow_schema::DataType;
use divgpu::input::{Array, DType, ExternalBytes};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

use crate::DivgpuError;

/// One chunk's values buffer, kept alive (with the producer's other buffers) by its data.
struct Chunk(ArrayData);

impl ExternalBytes for Chunk {
    fn bytes(&self) -> &[u8] {
        self.0.buffers().first().map_or(&[], |b| b.as_slice())
    }
}

/// Whether `values` offers the Arrow PyCapsule interface.
pub fn is_arrow(values: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(values.hasattr("__arrow_c_array__")? || values.hasattr("__arrow_c_stream__")?)
}

/// `values`' elements, read in place; `TypeError` for a type that is not an integer,
/// `ValueError` for nulls (their count and the first one's index).
pub fn array_of(values: &Bound<'_, PyAny>) -> PyResult<Array> {
    let mut chunks = Vec::new();
    let dtype = if values.hasattr("__arrow_c_array__")? {
        let (schema, array): (Bound<'_, PyCapsule>, Bound<'_, PyCapsule>) =
            values.call_method0("__arrow_c_array__")?.extract()?;
        let schema = capsule::<FFI_ArrowSchema>(&schema, c"arrow_schema")?;
        // SAFETY: the capsule holds a schema, alive while the capsule is
        let schema = unsafe { &*schema };
        let dtype = dtype_of(schema)?;
        let array = capsule::<FFI_ArrowArray>(&array, c"arrow_array")?;
        // SAFETY: the capsule holds an array; `from_raw` moves it out, leaving the capsule a
        // released one that its destructor skips
        let array = unsafe { FFI_ArrowArray::from_raw(array) };
        chunks.push(import(array, schema)?);
        dtype
    } else {
        let stream: Bound<'_, PyCapsule> = values.call_method0("__arrow_c_stream__")?.extract()?;
        let stream = capsule::<FFI_ArrowArrayStream>(&stream, c"arrow_array_stream")?;
        // SAFETY: as for the array above; the stream is released when dropped
        let mut stream = unsafe { FFI_ArrowArrayStream::from_raw(stream) };
        let mut schema = FFI_ArrowSchema::empty();
        let get_schema = stream.get_schema.ok_or_else(|| released("stream"))?;
        // SAFETY: a live stream, and a schema for it to fill
        let status = unsafe { get_schema(&mut stream, &mut schema) };
        stream_status(&mut stream, status)?;
        let dtype = dtype_of(&schema)?;
        let get_next = stream.get_next.ok_or_else(|| released("stream"))?;
        loop {
            let mut array = FFI_ArrowArray::empty();
            // SAFETY: a live stream, and an array for it to fill
            let status = unsafe { get_next(&mut stream, &mut array) };
            stream_status(&mut stream, status)?;
            if array.is_released() {
                break;
            }
            chunks.push(import(array, &schema)?);
        }
        dtype
    };
    check_nulls(&chunks)?;
    let width = dtype.width;
    let parts = chunks
        .into_iter()
        .map(|data| {
            let (len, offset) = (data.len(), data.offset());
            Array::from_external(
                Box::new(Chunk(data)),
                dtype,
                &[len],
                &[width as isize],
                offset * width,
            )
        })
        .collect::<divgpu::Result<Vec<_>>>()
        .map_err(crate::to_py)?;
    match <[Array; 1]>::try_from(parts) {
        Ok([one]) => Ok(one),
        Err(parts) => Array::from_chunks(dtype, parts).map_err(crate::to_py),
    }
}

/// The pointer a capsule named `name` holds.
fn capsule<T>(capsule: &Bound<'_, PyCapsule>, name: &CStr) -> PyResult<*mut T> {
    Ok(capsule.pointer_checked(Some(name))?.cast::<T>().as_ptr())
}

fn released(what: &str) -> PyErr {
    PyValueError::new_err(format!("the Arrow {what} was already released"))
}

fn import(array: FFI_ArrowArray, schema: &FFI_ArrowSchema) -> PyResult<ArrayData> {
    // SAFETY: the array and schema come from the producer's capsules, as the C data interface
    // lays them out; arrow-rs checks the buffers' count and lengths against the type
    let data = unsafe { from_ffi(array, schema) }
        .map_err(|e| PyValueError::new_err(format!("could not read the Arrow array: {e}")))?;
    data.validate()
        .map_err(|e| PyValueError::new_err(format!("a malformed Arrow array: {e}")))?;
    Ok(data)
}

/// An error for a stream call that failed, with the stream's own message.
fn stream_status(stream: &mut FFI_ArrowArrayStream, status: i32) -> PyResult<()> {
    if status == 0 {
        return Ok(());
    }
    let message = stream
        .get_last_error
        // SAFETY: a live stream; the message (if any) lives until the next call on it
        .map(|last| unsafe { last(stream) })
        .filter(|m| !m.is_null())
        .map(|m: *const c_char| unsafe { CStr::from_ptr(m) }.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("error {status}"));
    Err(DivgpuError::new_err(format!(
        "reading the Arrow stream failed: {message}"
    )))
}

/// The divgpu dtype of an Arrow integer type.
fn dtype_of(schema: &FFI_ArrowSchema) -> PyResult<DType> {
    let data_type = DataType::try_from(schema)
        .map_err(|e| PyTypeError::new_err(format!("an Arrow type divgpu cannot read: {e}")))?;
    let (signed, width) = match data_type {
        DataType::Int8 => (true, 1),
        DataType::Int16 => (true, 2),
        DataType::Int32 => (true, 4),
        DataType::Int64 => (true, 8),
        DataType::UInt8 => (false, 1),
        DataType::UInt16 => (false, 2),
        DataType::UInt32 => (false, 4),
        DataType::UInt64 => (false, 8),
        other => {
            return Err(PyTypeError::new_err(format!(
                "divgpu counts arrays of integers (int8 ... uint64); this one is Arrow {other}"
            )))
        }
    };
    Ok(DType {
        signed,
        width,
        // the C data interface's buffers are in the machine's own order
        big_endian: cfg!(target_endian = "big"),
    })
}

/// `ValueError` when any chunk has a null: how many, and the first one's index.
fn check_nulls(chunks: &[ArrayData]) -> PyResult<()> {
    let mut nulls = 0usize;
    let mut first = None;
    let mut start = 0usize;
    for data in chunks {
        if let Some(mask) = data.nulls().filter(|m| m.null_count() > 0) {
            nulls += mask.null_count();
            if first.is_none() {
                first = mask.iter().position(|valid| !valid).map(|i| start + i);
            }
        }
        start += data.len();
    }
    match first {
        None => Ok(()),
        Some(first) => Err(PyValueError::new_err(nulls_message(nulls, first))),
    }
}

/// The `ValueError`'s message for an input with `nulls` nulls, the first at index `first`
/// (Arrow's nulls here, pandas' NaN in the package).
#[pyfunction]
pub fn nulls_message(nulls: usize, first: usize) -> String {
    format!(
        "the array has {nulls} null{} (the first at index {first}); divgpu counts integers: \
         drop or fill the nulls first",
        if nulls == 1 { "" } else { "s" }
    )
}

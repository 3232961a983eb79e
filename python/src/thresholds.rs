//! Thresholds from Python: each one checked in one place ([`threshold`]), and a sequence made one
//! flat array ([`thresholds_of`]) for the package's classification (`divgpu._thresholds`).

use divgpu::input::{MAX_VALUE, MIN_VALUE};
use numpy::PyArray1;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt};

/// One threshold: an int (not a bool) in [-2**63, 2**64); `TypeError` or `ValueError` otherwise.
pub(crate) fn threshold(item: &Bound<'_, PyAny>) -> PyResult<i128> {
    if is_bool(item)? {
        return Err(PyTypeError::new_err("a threshold is an int, not a bool"));
    }
    let value: i128 = match item.extract() {
        Ok(v) => v,
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyOverflowError>(item.py()) => {
            return Err(out_of_range(item));
        }
        Err(_) => {
            return Err(PyTypeError::new_err(format!(
                "a threshold is an int, not {}",
                item.get_type().name()?
            )))
        }
    };
    if !(MIN_VALUE..=MAX_VALUE).contains(&value) {
        return Err(out_of_range(item));
    }
    Ok(value)
}

/// Whether `item` is a bool: Python's, or numpy's (which NumPy 1.x still lets `__index__` turn
/// into 0 or 1, with only a warning).
fn is_bool(item: &Bound<'_, PyAny>) -> PyResult<bool> {
    if item.is_exact_instance_of::<PyInt>() {
        return Ok(false);
    }
    if item.is_instance_of::<PyBool>() {
        return Ok(true);
    }
    let kind = item.get_type();
    Ok(kind.module()?.to_cow()? == "numpy" && matches!(&*kind.name()?.to_cow()?, "bool" | "bool_"))
}

/// Each threshold of `items` (any iterable), checked by [`threshold`].
pub(crate) fn threshold_values(items: &Bound<'_, PyAny>) -> PyResult<Vec<i128>> {
    items.try_iter()?.map(|item| threshold(&item?)).collect()
}

/// The thresholds in `items` (any iterable), each checked by [`threshold`], as one flat array:
/// int64 where every one fits, else uint64 where none is negative, else an object array of the
/// ints (a mix that neither holds, which `count_seq` takes). The package's one classification
/// (`divgpu._thresholds`, for `Index.count` and `divgpu.dask`) hands every sequence here.
#[pyfunction]
pub(crate) fn thresholds_of<'py>(
    py: Python<'py>,
    items: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let values = threshold_values(items)?;
    if let Ok(signed) = values.iter().map(|&v| i64::try_from(v)).collect() {
        return Ok(PyArray1::<i64>::from_vec(py, signed).into_any());
    }
    if let Ok(unsigned) = values.iter().map(|&v| u64::try_from(v)).collect() {
        return Ok(PyArray1::<u64>::from_vec(py, unsigned).into_any());
    }
    let ints = values
        .iter()
        .map(|v| Ok(v.into_pyobject(py)?.into_any().unbind()))
        .collect::<PyResult<Vec<Py<PyAny>>>>()?;
    Ok(PyArray1::from_vec(py, ints).into_any())
}

fn out_of_range(item: &Bound<'_, PyAny>) -> PyErr {
    let shown = item.str().map(|s| s.to_string()).unwrap_or_default();
    PyValueError::new_err(format!("threshold {shown} is outside [-2**63, 2**64)"))
}

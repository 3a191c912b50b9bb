//! `moodle_gradebook_core` Python module: a thin PyO3 layer over `gradebook-core`, used by the
//! property-based parity tests and the benchmark.  Same bulk contract as the PHP extension:
//! bytes in (`struct.pack('<%dd')`, one flag byte per cell), bytes out.

use gradebook_core::{regrade_packed, Course as CoreCourse};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

fn f64s(b: &[u8], what: &str) -> PyResult<Vec<f64>> {
    if !b.len().is_multiple_of(8) {
        return Err(PyValueError::new_err(format!("{what}: length {} is not a multiple of 8", b.len())));
    }
    Ok(b.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect())
}

fn to_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A compiled course (formulas parsed, natural weights computed) that can be regraded repeatedly.
#[pyclass(frozen)]
#[derive(Debug)]
struct Course {
    inner: CoreCourse,
}

#[pymethods]
impl Course {
    #[new]
    fn new(spec: &str) -> PyResult<Self> {
        CoreCourse::from_json(spec).map(|inner| Course { inner }).map_err(PyValueError::new_err)
    }

    /// Read a compiled course (`compiled()` bytes: little-endian doubles) back.
    #[staticmethod]
    fn from_compiled(data: &[u8]) -> PyResult<Self> {
        let values = f64s(data, "compiled")?;
        CoreCourse::from_compiled(&values, gradebook_core::Platform::RUST)
            .map(|inner| Course { inner })
            .map_err(PyValueError::new_err)
    }

    /// The compiled course the widget loads (little-endian doubles, see gradebook_core::compiled).
    fn compiled<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &to_bytes(&self.inner.to_compiled()))
    }

    /// Number of grade items (columns).
    #[getter]
    fn nitems(&self) -> usize {
        self.inner.items.len()
    }

    /// Regrade all users: returns a dict of bytes `final`, `hasvalue`, `rawmin`, `rawmax`.
    fn regrade<'py>(
        &self,
        py: Python<'py>,
        grades: &[u8],
        flags: &[u8],
        nusers: usize,
    ) -> PyResult<Bound<'py, PyDict>> {
        let cells = f64s(grades, "grades")?;
        let r = py
            .detach(|| regrade_packed(&self.inner, nusers, &cells, flags))
            .map_err(PyValueError::new_err)?;
        let d = PyDict::new(py);
        d.set_item("final", PyBytes::new(py, &to_bytes(&r.finalgrade)))?;
        d.set_item("hasvalue", PyBytes::new(py, &r.has_value))?;
        d.set_item("rawmin", PyBytes::new(py, &to_bytes(&r.rawmin)))?;
        d.set_item("rawmax", PyBytes::new(py, &to_bytes(&r.rawmax)))?;
        Ok(d)
    }
}

/// `db_decimal5` / `php_round` exposed for the numeric parity tests.
#[pyfunction]
fn db_decimal5(v: f64) -> f64 {
    gradebook_core::phpmath::db_decimal5(v)
}

#[pyfunction]
fn php_round(v: f64, places: i64) -> f64 {
    gradebook_core::phpmath::php_round(v, places)
}

#[pymodule]
fn moodle_gradebook_core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Course>()?;
    m.add_function(wrap_pyfunction!(db_decimal5, m)?)?;
    m.add_function(wrap_pyfunction!(php_round, m)?)?;
    Ok(())
}

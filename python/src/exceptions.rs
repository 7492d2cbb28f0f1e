//! Raising the Python exceptions declared in `ndring/__init__.py` by name: the bottom of the
//! binding's layers (the element types' numpy dtypes raise them too), below `errors`, which turns
//! the Rust errors into them.

use pyo3::prelude::*;

/// The `ndring` exception class called `name`.
pub fn class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("ndring")?.getattr(name)
}

/// Raises `ndring.<name>(message, *extra)`.
pub fn raise(py: Python<'_>, name: &str, message: String) -> PyErr {
    match class(py, name).and_then(|c| c.call1((message,))) {
        Ok(e) => PyErr::from_value(e),
        Err(e) => e,
    }
}

/// `ndring.InvalidArgument` (a `ValueError`): an argument of the right type but out of range.
pub fn invalid_argument(py: Python<'_>, message: String) -> PyErr {
    raise(py, "InvalidArgument", message)
}

/// `ndring.InvalidType` (a `TypeError`): an argument of a type (or numpy dtype) ndring does not
/// take there.
pub fn invalid_type(py: Python<'_>, message: String) -> PyErr {
    raise(py, "InvalidType", message)
}

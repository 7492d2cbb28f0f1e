//! Rust errors as the Python exceptions declared in `ndring/__init__.py` (where they can inherit
//! from two bases: `ndring.Timeout` is also a `TimeoutError`, and so on). Messages are the Rust
//! `Display` text.

use ndring::Error;
use pyo3::prelude::*;

/// The `ndring` exception class called `name`.
fn class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("ndring")?.getattr(name)
}

/// Raises `ndring.<name>(message, *extra)`.
pub fn raise(py: Python<'_>, name: &str, message: String) -> PyErr {
    match class(py, name).and_then(|c| c.call1((message,))) {
        Ok(e) => PyErr::from_value(e),
        Err(e) => e,
    }
}

/// The Python exception for `e`.
pub fn to_py(py: Python<'_>, e: Error) -> PyErr {
    let message = e.to_string();
    let name = match &e {
        Error::Lagged { missed } => {
            return match class(py, "Lagged").and_then(|c| c.call1((message, *missed))) {
                Ok(e) => PyErr::from_value(e),
                Err(e) => e,
            };
        }
        Error::NotFound { .. } => "NotFound",
        Error::PermissionDenied { .. } => "PermissionDenied",
        Error::AlreadyExists { .. } => "AlreadyExists",
        Error::Timeout => "Timeout",
        Error::Closed => "Closed",
        Error::Disconnected { .. } => "Disconnected",
        Error::Full => "Full",
        Error::Empty => "Empty",
        Error::TooManyLeases { .. } => "TooManyLeases",
        Error::TypeMismatch { .. }
        | Error::RankMismatch { .. }
        | Error::ShapeMismatch { .. }
        | Error::KindMismatch { .. } => "Mismatch",
        Error::InvalidName { .. } | Error::InvalidConfig(_) | Error::MetaTooLarge { .. } => {
            "InvalidArgument"
        }
        _ => "Error",
    };
    raise(py, name, message)
}

/// Ends an iteration (`None`: `StopIteration`) where `r` is `ndring.Closed`: a ring closed and
/// drained ends a `for` loop over its consumer or subscriber; any other error is raised.
pub fn until_closed<T>(py: Python<'_>, r: PyResult<T>) -> PyResult<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if class(py, "Closed").is_ok_and(|c| e.matches(py, c).unwrap_or(false)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `Result<T, ndring::Error>` into `PyResult<T>`.
pub trait IntoPy<T> {
    /// Converts the error, if any.
    fn py(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPy<T> for ndring::Result<T> {
    fn py(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, e))
    }
}

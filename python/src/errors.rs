//! Rust errors as the Python exceptions declared in `ndring/__init__.py` (where they can inherit
//! from two bases: `ndring.Timeout` is also a `TimeoutError`, `ndring.Stale` a `FileExistsError`,
//! and so on). Messages are the Rust `Display` text, except where that names a Rust option or
//! type: those are said in Python's terms (`replace_stale=True`, `ndring.remove(name)`, numpy
//! dtype names, shapes as tuples).

use ndring::Error;
use pyo3::prelude::*;

pub use crate::exceptions::{class, invalid_argument, invalid_type, raise};

/// A shape as Python writes it: `(2, 3)`, `(4,)`, `()`.
pub fn tuple(shape: &[usize]) -> String {
    match shape {
        [d] => format!("({d},)"),
        _ => {
            let v: Vec<String> = shape.iter().map(usize::to_string).collect();
            format!("({})", v.join(", "))
        }
    }
}

/// What a ring name must look like, for messages about a bad one.
pub const NAME_RULE: &str = "a ring name is '/' followed by 1 to 30 bytes, none of them '/' or \
                             NUL, e.g. \"/cam0\"";

/// The Python exception for `e`.
pub fn to_py(py: Python<'_>, e: Error) -> PyErr {
    let (name, message) = match &e {
        Error::Lagged { missed } => {
            return match class(py, "Lagged").and_then(|c| c.call1((e.to_string(), *missed))) {
                Ok(e) => PyErr::from_value(e),
                Err(e) => e,
            };
        }
        // The Rust text names `Config::replace_stale(true)`.
        Error::Stale { name, creator_pid } => (
            "Stale",
            format!(
                "a stale ring named {name:?} exists: its creator (pid {creator_pid}) is dead; \
                 create with replace_stale=True to replace it, or remove it with \
                 ndring.remove({name:?})"
            ),
        ),
        Error::NotReady { name, waited } => (
            "Error",
            format!(
                "{name:?} was not initialised within {waited:?}: its creator may have died; \
                 remove it with ndring.remove({name:?}) or create with replace_stale=True"
            ),
        ),
        Error::NotFound { .. } => ("NotFound", e.to_string()),
        Error::PermissionDenied { .. } => ("PermissionDenied", e.to_string()),
        // Both are a create that found the name taken by a ring in use.
        Error::AlreadyExists { .. } | Error::InUse { .. } => ("AlreadyExists", e.to_string()),
        Error::Timeout => ("Timeout", e.to_string()),
        Error::Closed => ("Closed", e.to_string()),
        Error::Disconnected { .. } => ("Disconnected", e.to_string()),
        Error::Full => ("Full", e.to_string()),
        Error::Empty => ("Empty", e.to_string()),
        Error::TooManyLeases { .. } => ("TooManyLeases", e.to_string()),
        Error::TypeMismatch { expected, found } => (
            "Mismatch",
            format!(
                "dtype mismatch: expected {}, the ring holds {}",
                crate::element::numpy_name(*expected),
                crate::element::numpy_name(*found)
            ),
        ),
        Error::ShapeMismatch { expected, found } => (
            "Mismatch",
            format!(
                "shape mismatch: expected {}, the ring's arrays are {}",
                tuple(expected),
                tuple(found)
            ),
        ),
        Error::RankMismatch { .. } | Error::KindMismatch { .. } => ("Mismatch", e.to_string()),
        Error::InvalidName { name, reason } => (
            "InvalidArgument",
            format!("invalid ring name {name:?}: {reason} ({NAME_RULE})"),
        ),
        Error::MetaTooLarge { size, capacity } => (
            "InvalidArgument",
            format!(
                "meta of {size} bytes does not fit the {capacity} bytes each slot of this ring \
                 reserves for it (meta_size, set at create)"
            ),
        ),
        Error::InvalidConfig(_) => ("InvalidArgument", e.to_string()),
        Error::Poisoned { name } => (
            "Poisoned",
            format!(
                "the shared array {name:?} may be half-written: a writer died holding its lock; \
                 check or rewrite it, then call clear_poison()"
            ),
        ),
        Error::RowsOutOfRange { .. } => ("InvalidArgument", e.to_string()),
        Error::RequestFailed { .. } => ("RequestFailed", e.to_string()),
        _ => ("Error", e.to_string()),
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

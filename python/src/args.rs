//! Arguments checked as Python sees them: each extractor (a `#[pyo3(from_py_with = ...)]`, or
//! called on an argument taken as an object) turns a value of the wrong type into
//! `ndring.InvalidType` (a `TypeError`) and one out of range into `ndring.InvalidArgument` (a
//! `ValueError`), naming the argument and the range allowed, where pyo3's own conversions
//! would raise a plain `TypeError` or an `OverflowError` ("can't convert negative int to
//! unsigned").

use ndring::layout::{MAX_PEERS, MAX_RANK, MAX_SLOTS, MAX_USER_META};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyFloat, PyInt, PyString};

use crate::exceptions::{invalid_argument, invalid_type};

/// `repr(value)` and its type's name, for messages: `-1 (int)`.
fn shown(value: &Bound<'_, PyAny>) -> String {
    let repr = value
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "?".into());
    let ty = value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into());
    format!("{repr} ({ty})")
}

/// An int (anything with `__index__`, numpy integers included; not a bool) as an `i128`, or
/// `None` for another type. Ints beyond `i128` come back as `i128::MAX` (or `MIN`): out of any
/// range checked here.
fn int_of(value: &Bound<'_, PyAny>) -> Option<i128> {
    if value.is_instance_of::<PyBool>() || value.is_instance_of::<PyFloat>() {
        return None;
    }
    let index = value.call_method0("__index__").ok()?;
    let index = index.cast::<PyInt>().ok()?;
    Some(match index.extract::<i128>() {
        Ok(v) => v,
        Err(_) if index.lt(0).unwrap_or(false) => i128::MIN,
        Err(_) => i128::MAX,
    })
}

/// The int `value` of argument `arg`, within `lo..=hi`.
fn int_in(value: &Bound<'_, PyAny>, arg: &str, lo: usize, hi: usize) -> PyResult<usize> {
    let py = value.py();
    let range = format!("an int from {lo} to {hi}");
    match int_of(value) {
        None => Err(invalid_type(
            py,
            format!("{arg} must be {range}, got {}", shown(value)),
        )),
        Some(v) if v < lo as i128 || v > hi as i128 => Err(invalid_argument(
            py,
            format!("{arg} must be {range}, got {v}"),
        )),
        Some(v) => Ok(v as usize),
    }
}

/// `slots`: 2 to 65,536 (`ndring::layout::MAX_SLOTS`).
pub fn slots(value: &Bound<'_, PyAny>) -> PyResult<usize> {
    int_in(value, "slots", 2, MAX_SLOTS)
}

/// `meta_size`: None (the default, 64 bytes) or 0 to 4,096 bytes.
pub fn meta_size(value: &Bound<'_, PyAny>) -> PyResult<Option<usize>> {
    if value.is_none() {
        return Ok(None);
    }
    int_in(value, "meta_size", 0, MAX_USER_META).map(Some)
}

/// `max_subscribers`: None (as many as the slots allow, at most 1,023) or 1 to 1,023 (the peer
/// table holds the writer and the subscribers).
pub fn max_subscribers(value: &Bound<'_, PyAny>) -> PyResult<Option<usize>> {
    if value.is_none() {
        return Ok(None);
    }
    int_in(value, "max_subscribers", 1, MAX_PEERS - 1).map(Some)
}

/// `spin`: None (200) or polls before a wait sleeps, 0 to 2**32 - 1.
pub fn spin(value: &Bound<'_, PyAny>) -> PyResult<Option<u32>> {
    if value.is_none() {
        return Ok(None);
    }
    int_in(value, "spin", 0, u32::MAX as usize).map(|v| Some(v as u32))
}

/// `timeout`: None (no limit) or a number of seconds >= 0.
pub fn timeout(value: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
    if value.is_none() {
        return Ok(None);
    }
    let py = value.py();
    const RANGE: &str = "None or a number of seconds >= 0";
    let t = if value.is_instance_of::<PyBool>() || value.is_instance_of::<PyString>() {
        None
    } else {
        value.extract::<f64>().ok()
    };
    match t {
        None => Err(invalid_type(
            py,
            format!("timeout must be {RANGE}, got {}", shown(value)),
        )),
        Some(t) if t.is_finite() && t >= 0.0 => Ok(Some(t)),
        // An infinite timeout is no timeout.
        Some(t) if t == f64::INFINITY => Ok(None),
        Some(t) => Err(invalid_argument(
            py,
            format!("timeout must be {RANGE}, got {t}"),
        )),
    }
}

/// A ring name (a str; its form is checked by the library: `ndring.InvalidArgument`).
pub fn name(value: &Bound<'_, PyAny>) -> PyResult<String> {
    match value.cast::<PyString>() {
        Ok(s) => Ok(s.to_cow()?.into_owned()),
        Err(_) => Err(invalid_type(
            value.py(),
            format!("name must be a str such as \"/cam0\", got {}", shown(value)),
        )),
    }
}

/// A flag (`keep`, `timestamps`, `replace_stale`): True or False (numpy bools too).
fn flag(value: &Bound<'_, PyAny>, arg: &str) -> PyResult<bool> {
    value.extract::<bool>().map_err(|_| {
        invalid_type(
            value.py(),
            format!("{arg} must be True or False, got {}", shown(value)),
        )
    })
}

/// `keep`.
pub fn keep(value: &Bound<'_, PyAny>) -> PyResult<bool> {
    flag(value, "keep")
}

/// `timestamps`.
pub fn timestamps(value: &Bound<'_, PyAny>) -> PyResult<bool> {
    flag(value, "timestamps")
}

/// `replace_stale`.
pub fn replace_stale(value: &Bound<'_, PyAny>) -> PyResult<bool> {
    flag(value, "replace_stale")
}

/// One of `choices` (a str).
fn choice(value: &Bound<'_, PyAny>, arg: &str, choices: &[&'static str]) -> PyResult<&'static str> {
    let quoted: Vec<String> = choices.iter().map(|c| format!("\"{c}\"")).collect();
    let allowed = quoted.join(" or ");
    let Ok(s) = value.cast::<PyString>() else {
        return Err(invalid_type(
            value.py(),
            format!("{arg} must be {allowed}, got {}", shown(value)),
        ));
    };
    let s = s.to_cow()?;
    choices
        .iter()
        .find(|c| **c == s.as_ref())
        .copied()
        .ok_or_else(|| invalid_argument(value.py(), format!("{arg} must be {allowed}, not {s:?}")))
}

/// A queue ring's `kind`: "spsc" or "mpmc".
pub fn queue_kind(value: &Bound<'_, PyAny>) -> PyResult<&'static str> {
    choice(value, "kind", &["spsc", "mpmc"])
}

/// A subscriber's `start`: "newest" or "oldest".
pub fn start(value: &Bound<'_, PyAny>) -> PyResult<&'static str> {
    choice(value, "start", &["newest", "oldest"])
}

/// `meta`: None or bytes (or what converts to them as before: a bytearray, a sequence of ints
/// from 0 to 255).
pub fn meta(value: &Bound<'_, PyAny>) -> PyResult<Option<Vec<u8>>> {
    if value.is_none() {
        return Ok(None);
    }
    if let Ok(b) = value.cast::<PyBytes>() {
        return Ok(Some(b.as_bytes().to_vec()));
    }
    value.extract::<Vec<u8>>().map(Some).map_err(|_| {
        invalid_type(
            value.py(),
            format!("meta must be None or bytes, got {}", shown(value)),
        )
    })
}

/// A ring's shape: an int (one dimension) or a sequence of ints, 0 to 8 dimensions, each >= 1.
pub fn shape(value: &Bound<'_, PyAny>) -> PyResult<Vec<usize>> {
    let py = value.py();
    let rule = format!("an int or a sequence of 0 to {MAX_RANK} ints, each >= 1");
    let dims: Vec<Option<i128>> = if let Some(n) = int_of(value) {
        vec![Some(n)]
    } else if value.is_instance_of::<PyString>() || value.is_instance_of::<PyBytes>() {
        vec![None]
    } else {
        match value.try_iter() {
            Ok(items) => items
                .map(|item| item.ok().and_then(|i| int_of(&i)))
                .collect(),
            Err(_) => vec![None],
        }
    };
    if dims.iter().any(Option::is_none) {
        return Err(invalid_type(
            py,
            format!("shape must be {rule}, got {}", shown(value)),
        ));
    }
    let dims: Vec<i128> = dims.into_iter().flatten().collect();
    if dims.len() > MAX_RANK || dims.iter().any(|&d| d < 1 || d > isize::MAX as i128) {
        let what = match dims.iter().position(|&d| d < 1) {
            Some(i) => format!("dimension {i} is {}", dims[i]),
            None if dims.len() > MAX_RANK => format!("{} dimensions", dims.len()),
            None => "a dimension is too large".into(),
        };
        return Err(invalid_argument(
            py,
            format!(
                "shape must be {rule}, got {} ({what})",
                value.repr().map(|r| r.to_string()).unwrap_or_default()
            ),
        ));
    }
    Ok(dims.into_iter().map(|d| d as usize).collect())
}

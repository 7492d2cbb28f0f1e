//! The four handle classes. Each wraps a type-erased Rust handle (one generic implementation per
//! element type), records the process that opened it (a forked child gets a clear error instead
//! of corrupting the parent's registration), releases the GIL in every wait and waits in slices
//! so that Ctrl-C interrupts it.
//!
//! One file a class (`producer`, `consumer`, `broadcast_writer`, `subscriber`); this one holds
//! what they share: argument parsing, the GIL-free wait, the `Handle` wrapper and the getters
//! every class has.

use std::time::{Duration, Instant};

use ndring::{Config, DType, Error, OpenOptions, Segment};
use numpy::{PyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::args;
use crate::element;
use crate::errors::{IntoPy, invalid_type, raise, to_py, tuple};

/// Longest uninterrupted wait: signals (Ctrl-C) are checked between slices.
const SLICE: Duration = Duration::from_millis(50);

/// Polls before sleeping, for Python handles. Shorter than the Rust default (2,000): a Python
/// peer takes microseconds per item, so a long spin mostly burns the CPU the peer needs (on the
/// 2-core host of `python/bench`, 200 polls gave ~1.0x the seed approach on 1080p frames where
/// 2,000 gave ~0.8x, and no loss on 64-byte arrays).
pub(crate) const PY_SPIN: u32 = 200;

/// A deadline `timeout` seconds from now (`None`: no deadline). `timeout` was checked by
/// `args::timeout` (>= 0, finite).
fn deadline(timeout: Option<f64>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(Duration::from_secs_f64(t)))
}

/// Calls `attempt(slice)` without the GIL until it returns something other than `Timeout`,
/// checking for signals between slices; `Timeout` once `timeout` seconds have passed.
pub(crate) fn wait<R: Send>(
    py: Python<'_>,
    timeout: Option<f64>,
    mut attempt: impl FnMut(Duration) -> ndring::Result<R> + Send,
) -> PyResult<R> {
    let deadline = deadline(timeout);
    loop {
        let slice = match deadline {
            None => SLICE,
            Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
        };
        match py.detach(|| attempt(slice)) {
            Err(Error::Timeout) => {
                py.check_signals()?;
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(to_py(py, Error::Timeout));
                }
            }
            r => return r.py(py),
        }
    }
}

/// `first`, an attempt made with the GIL kept (a free slot or an item already there costs no
/// GIL hand-over), unless it found nothing yet (`Empty`, `Full`): then [`wait`]s without it.
pub(crate) fn now_or_wait<R: Send>(
    py: Python<'_>,
    timeout: Option<f64>,
    first: ndring::Result<R>,
    attempt: impl FnMut(Duration) -> ndring::Result<R> + Send,
) -> PyResult<R> {
    match first {
        Err(Error::Empty | Error::Full) => wait(py, timeout, attempt),
        r => r.py(py),
    }
}

/// The element type named by a numpy dtype-like (`np.uint8`, `"float32"`, `np.float16`,
/// `ml_dtypes.bfloat16`, `"bfloat16"` where `ml_dtypes` is installed, ...).
pub(crate) fn parse_dtype(py: Python<'_>, dtype: &Bound<'_, PyAny>) -> PyResult<DType> {
    if let Some(r) = element::bfloat16_by_name(py, dtype) {
        r?;
    }
    let d = match py.import("numpy")?.getattr("dtype")?.call1((dtype,)) {
        Ok(d) => d,
        Err(e) => {
            let shown = dtype
                .repr()
                .map(|r| r.to_string())
                .unwrap_or_else(|_| "?".into());
            return Err(invalid_type(
                py,
                format!(
                    "dtype must be a numpy dtype ({}), got {shown}: {e}",
                    element::supported()
                ),
            ));
        }
    };
    let name: String = d.getattr("name")?.extract()?;
    let order: String = d.getattr("byteorder")?.extract()?;
    let Some(t) = element::from_numpy_name(&name) else {
        // A structured or raw void dtype's name (`void64`) is one the user never wrote: its repr
        // shows the fields given.
        let kind: String = d.getattr("kind")?.extract()?;
        let shown = if kind == "V" {
            d.repr()?.to_string()
        } else {
            name
        };
        return Err(invalid_type(
            py,
            format!("{}, not {shown}", element::supported()),
        ));
    };
    // A dtype of another size under one of these names (another package's "bfloat16", say) is
    // not this element type.
    let itemsize: usize = d.getattr("itemsize")?.extract()?;
    if itemsize != t.size() {
        return Err(invalid_type(
            py,
            format!(
                "{}, not {} ({itemsize} bytes, where {name} is {})",
                element::supported(),
                d.repr()?,
                t.size()
            ),
        ));
    }
    if order != "=" && order != "|" {
        let s: String = d.getattr("str")?.extract()?;
        return Err(invalid_type(
            py,
            format!(
                "dtype {s} is not in the native byte order; ndring rings hold native-order \
                 elements (dtype {name}, e.g. array.astype({name:?}))"
            ),
        ));
    }
    Ok(t)
}

/// numpy's name of an element type, for messages.
pub fn dtype_label(t: DType) -> &'static str {
    element::numpy_name(t)
}

/// The numpy dtype of an element type, as `ndring.list()` shows it: for `bfloat16` without
/// `ml_dtypes`, its name (a str) instead.
pub(crate) fn listed_dtype<'py>(py: Python<'py>, t: DType) -> PyResult<Bound<'py, PyAny>> {
    match element::descr(py, t) {
        Ok(d) => Ok(d.into_any()),
        Err(_) => Ok(PyString::new(py, element::numpy_name(t)).into_any()),
    }
}

fn queue_config(
    kind: &str,
    slots: usize,
    meta_size: Option<usize>,
    timestamps: bool,
    spin: Option<u32>,
) -> Config {
    let c = match kind {
        "mpmc" => Config::mpmc(),
        _ => Config::spsc(),
    };
    let c = c
        .slots(slots)
        .timestamps(timestamps)
        .spin(spin.unwrap_or(PY_SPIN));
    match meta_size {
        Some(m) => c.user_meta_size(m),
        None => c,
    }
}

/// The shape, element type and configuration of a queue ring to create, from the arguments
/// `Producer` and `Consumer` share (`kind`, `slots`, `meta_size` and `spin` already checked by
/// `args`).
fn queue_spec(
    shape: &Bound<'_, PyAny>,
    dtype: &Bound<'_, PyAny>,
    slots: usize,
    kind: &str,
    meta_size: Option<usize>,
    timestamps: bool,
    spin: Option<u32>,
) -> PyResult<(Vec<usize>, DType, Config)> {
    let (shape, t) = (args::shape(shape)?, parse_dtype(shape.py(), dtype)?);
    let config = queue_config(kind, slots, meta_size, timestamps, spin);
    Ok((shape, t, config))
}

/// Opens `name`, waiting up to `timeout` seconds for it to be created (`None`: fail at once),
/// in slices (the core's inotify wait) with signal checks between them.
pub(crate) fn open_segment(py: Python<'_>, name: &str, timeout: Option<f64>) -> PyResult<Segment> {
    let end = deadline(timeout);
    loop {
        let wait = match (timeout, end) {
            (None, _) => Duration::ZERO,
            (Some(_), None) => SLICE,
            (Some(_), Some(d)) => d.saturating_duration_since(Instant::now()).min(SLICE),
        };
        let options = OpenOptions::default().wait_for_creator(wait);
        match py.detach(|| Segment::open_with(name, &options)) {
            Err(Error::NotFound { .. })
                if timeout.is_some() && end.is_none_or(|d| Instant::now() < d) =>
            {
                py.check_signals()?;
            }
            r => return r.py(py),
        }
    }
}

/// The error a handle gives in a process other than the one that opened it (or, pid 0, a zeroed
/// object made around its class's `tp_new`, which only Python 3.9 allows: see `immutable`).
fn forked(py: Python<'_>, pid: u32) -> PyErr {
    if pid == 0 {
        return raise(
            py,
            "Error",
            "this ndring handle was not made by create or open (uninitialised)".into(),
        );
    }
    raise(
        py,
        "Error",
        format!(
            "this ndring handle was opened in process {pid}; process {} (a forked child) cannot \
             use it: pass the ring's name to the child and open it there",
            crate::pid::current()
        ),
    )
}

fn detached(py: Python<'_>) -> PyErr {
    raise(
        py,
        "Error",
        "this ndring handle is closed (detached from its ring)".into(),
    )
}

/// The array `image` as `T`s of the ring's shape: `ndring.InvalidType` (a `TypeError`) for
/// something else than a numpy array of the ring's dtype, `ndring.Mismatch` (a `ValueError`)
/// for one of another shape. `what` names the argument ("image", "out").
fn input<'py, T: numpy::Element>(
    image: &Bound<'py, PyAny>,
    dtype: DType,
    shape: &[usize],
    what: &str,
) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    let py = image.py();
    let a = image.cast::<PyArrayDyn<T>>().map_err(|_| {
        let found = match image.getattr("dtype") {
            Ok(d) if image.hasattr("shape").unwrap_or(false) => {
                format!("an array of dtype {d}")
            }
            _ => image
                .get_type()
                .name()
                .map(|n| format!("a {n}"))
                .unwrap_or_else(|_| "another object".into()),
        };
        invalid_type(
            py,
            format!(
                "{what} must be a numpy array of the ring's dtype {} and shape {}, got {found}",
                dtype_label(dtype),
                tuple(shape)
            ),
        )
    })?;
    if a.shape() != shape {
        return Err(raise(
            py,
            "Mismatch",
            format!(
                "{what} must have the ring's shape {}, got an array of shape {}",
                tuple(shape),
                tuple(a.shape())
            ),
        ));
    }
    Ok(a.clone())
}

fn describe(seg: &Segment) -> String {
    format!(
        "name={:?}, kind={:?}, dtype={}, shape={}, slots={}",
        seg.name(),
        format!("{:?}", seg.kind()).to_lowercase(),
        dtype_label(seg.dtype()),
        tuple(seg.shape()),
        seg.slot_count()
    )
}

/// Segment facts every handle class exposes.
macro_rules! segment_getters {
    ($class:ident) => {
        #[pymethods]
        impl $class {
            /// The ring's name.
            #[getter]
            fn name(&self, py: Python<'_>) -> PyResult<String> {
                Ok(self.h.get(py)?.segment().name().to_string())
            }
            /// The shape of each slot's array.
            #[getter]
            fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyTuple>> {
                pyo3::types::PyTuple::new(py, self.h.get(py)?.segment().shape())
            }
            /// The element type, as a numpy dtype.
            #[getter]
            fn dtype<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                let t = self.h.get(py)?.segment().dtype();
                // A handle exists only where its dtype does (bfloat16: with ml_dtypes).
                Ok($crate::element::descr(py, t)?.into_any())
            }
            /// Number of slots.
            #[getter]
            fn slots(&self, py: Python<'_>) -> PyResult<usize> {
                Ok(self.h.get(py)?.segment().slot_count())
            }
            /// "spsc", "mpmc" or "broadcast".
            #[getter]
            fn kind(&self, py: Python<'_>) -> PyResult<String> {
                Ok(format!("{:?}", self.h.get(py)?.segment().kind()).to_lowercase())
            }
            /// The ring's waiters now, consumers' and producers' (for tests: a cancelled
            /// `arecv` leaves none counted).
            fn _sleepers(&self, py: Python<'_>) -> PyResult<(u32, u32)> {
                Ok(self.h.get(py)?.segment().sleepers())
            }
            /// Detaches from the ring (as leaving a `with` block does); further calls raise.
            fn detach(&self, py: Python<'_>) -> PyResult<()> {
                self.h.detach(py)
            }
            fn __enter__(slf: Py<Self>) -> Py<Self> {
                slf
            }
            #[pyo3(signature = (*_args))]
            fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
                self.h.detach(py)?;
                Ok(false)
            }
            fn __reduce__(&self, py: Python<'_>) -> PyResult<()> {
                Err($crate::errors::raise(
                    py,
                    "Error",
                    concat!(
                        "an ndring.",
                        stringify!($class),
                        " cannot be pickled: pass the ring's name to the other process and open it there"
                    )
                    .into(),
                ))
            }
            fn __repr__(&self, py: Python<'_>) -> String {
                match self.h.get(py) {
                    Ok(h) => format!(concat!("ndring.", stringify!($class), "({})"), $crate::handles::describe(h.segment())),
                    Err(_) if self.h.in_use() => concat!("ndring.", stringify!($class), "(in use by another thread)").into(),
                    Err(_) => concat!("ndring.", stringify!($class), "(detached)").into(),
                }
            }
        }
    };
}

mod broadcast_writer;
mod consumer;
mod handle;
mod producer;
mod subscriber;

use handle::Handle;

pub use broadcast_writer::BroadcastWriter;
pub use consumer::Consumer;
pub use producer::Producer;
pub use subscriber::Subscriber;

/// Removes the ring `name` from the system (`/dev/shm`); attached processes keep their mapping.
#[pyfunction]
pub fn remove(py: Python<'_>, #[pyo3(from_py_with = args::name)] name: String) -> PyResult<()> {
    ndring::remove(&name).py(py)
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock of `ndring.info(a).timestamp_ns`.
#[pyfunction]
pub fn now_ns() -> u64 {
    ndring::now_ns()
}

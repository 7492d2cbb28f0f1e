//! The four handle classes. Each wraps a type-erased Rust handle (one generic implementation per
//! element type), records the process that opened it (a forked child gets a clear error instead
//! of corrupting the parent's registration), releases the GIL in every wait and waits in slices
//! so that Ctrl-C interrupts it.

use std::time::{Duration, Instant};

use ndarray::IxDyn;
use ndring::{
    BroadcastWriter as RsWriter, Config, Consumer as RsConsumer, DType, Error, LeaseConsumer,
    LeaseProducer, OpenOptions, Producer as RsProducer, RingKind, Segment, Start,
    Subscriber as RsSubscriber,
};
use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::errors::{IntoPy, raise, to_py};
use crate::leases::{self, Claim, Copied};

/// Longest uninterrupted wait: signals (Ctrl-C) are checked between slices.
const SLICE: Duration = Duration::from_millis(50);

/// Polls before sleeping, for Python handles. Shorter than the Rust default (2,000): a Python
/// peer takes microseconds per item, so a long spin mostly burns the CPU the peer needs (on the
/// 2-core host of `python/bench`, 200 polls gave ~1.0x the seed approach on 1080p frames where
/// 2,000 gave ~0.8x, and no loss on 64-byte arrays).
const PY_SPIN: u32 = 200;

/// Runs `$body` with `$T` the Rust type of `$dtype`.
macro_rules! with_dtype {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            DType::U8 => {
                type $T = u8;
                $body
            }
            DType::U16 => {
                type $T = u16;
                $body
            }
            DType::U32 => {
                type $T = u32;
                $body
            }
            DType::U64 => {
                type $T = u64;
                $body
            }
            DType::I8 => {
                type $T = i8;
                $body
            }
            DType::I16 => {
                type $T = i16;
                $body
            }
            DType::I32 => {
                type $T = i32;
                $body
            }
            DType::I64 => {
                type $T = i64;
                $body
            }
            DType::F32 => {
                type $T = f32;
                $body
            }
            DType::F64 => {
                type $T = f64;
                $body
            }
        }
    };
}

/// A deadline `timeout` seconds from now (`None`: no deadline).
fn deadline(timeout: Option<f64>) -> PyResult<Option<Instant>> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_finite() && t >= 0.0 => {
            Ok(Instant::now().checked_add(Duration::from_secs_f64(t)))
        }
        Some(t) => Err(PyValueError::new_err(format!(
            "timeout must be None or >= 0 seconds, got {t}"
        ))),
    }
}

/// Calls `attempt(slice)` without the GIL until it returns something other than `Timeout`,
/// checking for signals between slices; `Timeout` once `timeout` seconds have passed.
fn wait<R: Send>(
    py: Python<'_>,
    timeout: Option<f64>,
    mut attempt: impl FnMut(Duration) -> ndring::Result<R> + Send,
) -> PyResult<R> {
    let deadline = deadline(timeout)?;
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

/// The element type named by a numpy dtype-like (`np.uint8`, `"float32"`, ...).
fn parse_dtype(py: Python<'_>, dtype: &Bound<'_, PyAny>) -> PyResult<DType> {
    let d = py.import("numpy")?.getattr("dtype")?.call1((dtype,))?;
    let name: String = d.getattr("name")?.extract()?;
    let order: String = d.getattr("byteorder")?.extract()?;
    let t = match name.as_str() {
        "uint8" => DType::U8,
        "uint16" => DType::U16,
        "uint32" => DType::U32,
        "uint64" => DType::U64,
        "int8" => DType::I8,
        "int16" => DType::I16,
        "int32" => DType::I32,
        "int64" => DType::I64,
        "float32" => DType::F32,
        "float64" => DType::F64,
        other => {
            return Err(PyTypeError::new_err(format!(
                "ndring rings hold uint8/16/32/64, int8/16/32/64, float32 or float64 elements, \
                 not {other}"
            )));
        }
    };
    if order != "=" && order != "|" {
        return Err(PyTypeError::new_err(format!(
            "dtype {name} must be in native byte order"
        )));
    }
    Ok(t)
}

/// numpy's name of an element type.
fn dtype_name(t: DType) -> &'static str {
    match t {
        DType::U8 => "uint8",
        DType::U16 => "uint16",
        DType::U32 => "uint32",
        DType::U64 => "uint64",
        DType::I8 => "int8",
        DType::I16 => "int16",
        DType::I32 => "int32",
        DType::I64 => "int64",
        DType::F32 => "float32",
        DType::F64 => "float64",
    }
}

fn queue_config(
    kind: &str,
    slots: usize,
    meta_size: Option<usize>,
    timestamps: bool,
    spin: Option<u32>,
) -> PyResult<Config> {
    let c = match kind {
        "spsc" => Config::spsc(),
        "mpmc" => Config::mpmc(),
        other => {
            return Err(PyValueError::new_err(format!(
                "kind must be \"spsc\" or \"mpmc\", not {other:?}"
            )));
        }
    };
    let c = c
        .slots(slots)
        .timestamps(timestamps)
        .spin(spin.unwrap_or(PY_SPIN));
    Ok(match meta_size {
        Some(m) => c.user_meta_size(m),
        None => c,
    })
}

/// Opens `name`, waiting up to `timeout` seconds for it to be created (`None`: fail at once),
/// in slices (the core's inotify wait) with signal checks between them.
fn open_segment(py: Python<'_>, name: &str, timeout: Option<f64>) -> PyResult<Segment> {
    let end = deadline(timeout)?;
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

fn shape_of(shape: &Bound<'_, PyAny>) -> PyResult<Vec<usize>> {
    if let Ok(n) = shape.extract::<usize>() {
        return Ok(vec![n]);
    }
    shape.extract::<Vec<usize>>()
}

/// The error a handle gives in a process other than the one that opened it.
fn forked(py: Python<'_>, pid: u32) -> PyErr {
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

/// The array `image` as `T`s of the ring's shape, or a TypeError saying what was expected.
fn input<'py, T: numpy::Element>(
    image: &Bound<'py, PyAny>,
    dtype: DType,
    shape: &[usize],
) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    let a = image.cast::<PyArrayDyn<T>>().map_err(|_| {
        let found = image
            .getattr("dtype")
            .map(|d| d.to_string())
            .unwrap_or_else(|_| image.get_type().to_string());
        PyTypeError::new_err(format!(
            "expected a numpy array of dtype {} and shape {shape:?}, got {found}",
            dtype_name(dtype)
        ))
    })?;
    if a.shape() != shape {
        return Err(to_py(
            image.py(),
            Error::ShapeMismatch {
                expected: shape.to_vec(),
                found: a.shape().to_vec(),
            },
        ));
    }
    Ok(a.clone())
}

/// Copies `src` into `dst` (same shape), as one memcpy when both are contiguous.
fn copy_into<T: Copy>(
    dst: &mut ndarray::ArrayViewMut<'_, T, IxDyn>,
    src: &ndarray::ArrayView<'_, T, IxDyn>,
) {
    match (dst.as_slice_mut(), src.as_slice()) {
        (Some(d), Some(s)) => d.copy_from_slice(s),
        _ => dst.assign(src),
    }
}

// ---------------------------------------------------------------------------------------------
// Producer

trait AnyProducer: Send + Sync {
    fn claim(
        &mut self,
        py: Python<'_>,
        timeout: Option<f64>,
        meta: Option<Vec<u8>>,
    ) -> PyResult<Claim>;
    fn send(
        &mut self,
        py: Python<'_>,
        image: &Bound<'_, PyAny>,
        meta: Option<&[u8]>,
        timeout: Option<f64>,
    ) -> PyResult<u64>;
    fn close(&mut self);
    fn segment(&self) -> &Segment;
}

impl<T: ndring::Element + numpy::Element> AnyProducer for LeaseProducer<T, IxDyn> {
    fn claim(
        &mut self,
        py: Python<'_>,
        timeout: Option<f64>,
        meta: Option<Vec<u8>>,
    ) -> PyResult<Claim> {
        let lease = match self.try_claim_lease() {
            Err(Error::Full) => wait(py, timeout, |d| self.claim_lease_timeout(d))?,
            r => r.py(py)?,
        };
        leases::claim(py, lease, meta)
    }

    fn send(
        &mut self,
        py: Python<'_>,
        image: &Bound<'_, PyAny>,
        meta: Option<&[u8]>,
        timeout: Option<f64>,
    ) -> PyResult<u64> {
        let src = input::<T>(image, T::DTYPE, self.shape())?;
        if src.is_c_contiguous() {
            // The common case, per item: one memcpy from numpy's buffer, without rust-numpy's
            // borrow tracking (a global table) or an ndarray view on each side.
            let mut lease = match self.try_claim_lease() {
                Err(Error::Full) => wait(py, timeout, |d| self.claim_lease_timeout(d))?,
                r => r.py(py)?,
            };
            if let Some(m) = meta {
                lease.set_user_meta_bytes(m).py(py)?;
            }
            let bytes = src.len() * std::mem::size_of::<T>();
            // `src` is a C-contiguous array of the ring's shape and element type (checked by
            // `input`), kept alive by `src` and read with the GIL held, as numpy's own `copyto`
            // does (no Rust reference covers it); copied as bytes: numpy arrays may be unaligned.
            // SAFETY: `bytes` bytes are readable from `src`'s data and writable in the claimed slot,
            // ours alone until publish; a claimed slot never overlaps a Python array.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    src.data().cast::<u8>().cast_const(),
                    lease.as_mut_ptr().cast::<u8>(),
                    bytes,
                )
            };
            return Ok(lease.publish());
        }
        let src = src
            .try_readonly()
            .map_err(|e| PyTypeError::new_err(e.to_string()))?;
        let mut lease = match self.try_claim_lease() {
            Err(Error::Full) => wait(py, timeout, |d| self.claim_lease_timeout(d))?,
            r => r.py(py)?,
        };
        if let Some(m) = meta {
            lease.set_user_meta_bytes(m).py(py)?;
        }
        copy_into(&mut lease.view_mut(), &src.as_array());
        Ok(lease.publish())
    }

    fn close(&mut self) {
        LeaseProducer::close(self)
    }

    fn segment(&self) -> &Segment {
        LeaseProducer::segment(self)
    }
}

/// Shared by the four handle classes: the Rust handle, and the process that opened it.
struct Handle<H: ?Sized> {
    inner: Option<Box<H>>,
    pid: u32,
}

impl<H: ?Sized> Handle<H> {
    fn new(inner: Box<H>) -> Self {
        Handle {
            inner: Some(inner),
            pid: crate::pid::current(),
        }
    }

    fn get(&mut self, py: Python<'_>) -> PyResult<&mut H> {
        if crate::pid::current() != self.pid {
            return Err(forked(py, self.pid));
        }
        self.inner.as_deref_mut().ok_or_else(|| detached(py))
    }

    fn get_ref(&self, py: Python<'_>) -> PyResult<&H> {
        if crate::pid::current() != self.pid {
            return Err(forked(py, self.pid));
        }
        self.inner.as_deref().ok_or_else(|| detached(py))
    }

    fn detach(&mut self) {
        let inner = self.inner.take();
        if crate::pid::current() == self.pid {
            drop(inner);
        } else {
            // A forked child's copy: dropping it would unregister (or unlink) the parent's.
            std::mem::forget(inner);
        }
    }
}

impl<H: ?Sized> Drop for Handle<H> {
    fn drop(&mut self) {
        self.detach();
    }
}

fn describe(seg: &Segment) -> String {
    format!(
        "name={:?}, kind={:?}, dtype={}, shape={:?}, slots={}",
        seg.name(),
        format!("{:?}", seg.kind()).to_lowercase(),
        dtype_name(seg.dtype()),
        seg.shape(),
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
                Ok(self.h.get_ref(py)?.segment().name().to_string())
            }
            /// The shape of each slot's array.
            #[getter]
            fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
                PyTuple::new(py, self.h.get_ref(py)?.segment().shape())
            }
            /// The element type, as a numpy dtype.
            #[getter]
            fn dtype<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                let t = self.h.get_ref(py)?.segment().dtype();
                py.import("numpy")?.getattr("dtype")?.call1((dtype_name(t),))
            }
            /// Number of slots.
            #[getter]
            fn slots(&self, py: Python<'_>) -> PyResult<usize> {
                Ok(self.h.get_ref(py)?.segment().slot_count())
            }
            /// "spsc", "mpmc" or "broadcast".
            #[getter]
            fn kind(&self, py: Python<'_>) -> PyResult<String> {
                Ok(format!("{:?}", self.h.get_ref(py)?.segment().kind()).to_lowercase())
            }
            /// Detaches from the ring (as leaving a `with` block does); further calls raise.
            fn detach(&mut self) {
                self.h.detach();
            }
            fn __enter__(slf: Py<Self>) -> Py<Self> {
                slf
            }
            #[pyo3(signature = (*_args))]
            fn __exit__(&mut self, _args: &Bound<'_, PyTuple>) -> bool {
                self.h.detach();
                false
            }
            fn __reduce__(&self, py: Python<'_>) -> PyResult<()> {
                Err(raise(
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
                match self.h.get_ref(py) {
                    Ok(h) => format!(concat!("ndring.", stringify!($class), "({})"), describe(h.segment())),
                    Err(_) => concat!("ndring.", stringify!($class), "(detached)").into(),
                }
            }
        }
    };
}

/// Fills and publishes the slots of a queue ring (SPSC or MPMC). A full ring makes claims wait:
/// `spin` polls (default 200), then a sleep on the ring's futex, without the GIL.
#[pyclass(module = "ndring")]
pub struct Producer {
    h: Handle<dyn AnyProducer>,
}

fn producer_of<T: ndring::Element + numpy::Element>(
    p: RsProducer<T, IxDyn>,
) -> Box<dyn AnyProducer> {
    Box::new(LeaseProducer::from(p))
}

#[pymethods]
impl Producer {
    /// Creates the ring `name` (e.g. "/cam0") and attaches as its producer.
    #[staticmethod]
    #[pyo3(signature = (name, shape, dtype, slots=4, kind="spsc", meta_size=None, timestamps=false, keep=false, spin=None))]
    #[allow(clippy::too_many_arguments)]
    fn create(
        py: Python<'_>,
        name: &str,
        shape: &Bound<'_, PyAny>,
        dtype: &Bound<'_, PyAny>,
        slots: usize,
        kind: &str,
        meta_size: Option<usize>,
        timestamps: bool,
        keep: bool,
        spin: Option<u32>,
    ) -> PyResult<Self> {
        let (shape, t) = (shape_of(shape)?, parse_dtype(py, dtype)?);
        let config = queue_config(kind, slots, meta_size, timestamps, spin)?.keep(keep);
        let inner = with_dtype!(t, T => producer_of(
            RsProducer::<T, IxDyn>::create(name, IxDyn(&shape), &config).py(py)?));
        Ok(Producer {
            h: Handle::new(inner),
        })
    }

    /// Attaches as a producer to the existing ring `name` (dtype and shape from its header);
    /// `timeout` seconds to wait for it to be created (None: fail at once with NotFound).
    #[staticmethod]
    #[pyo3(signature = (name, timeout=None, spin=None))]
    fn open(py: Python<'_>, name: &str, timeout: Option<f64>, spin: Option<u32>) -> PyResult<Self> {
        let dtype = open_segment(py, name, timeout)?.dtype();
        let options = OpenOptions::default().spin(spin.unwrap_or(PY_SPIN));
        let inner = with_dtype!(dtype, T => producer_of(
            RsProducer::<T, IxDyn>::open_with(name, &options).py(py)?));
        Ok(Producer {
            h: Handle::new(inner),
        })
    }

    /// Opens `name` if it exists (checking dtype and shape), else creates it.
    #[staticmethod]
    #[pyo3(signature = (name, shape, dtype, slots=4, kind="spsc", meta_size=None, timestamps=false, spin=None))]
    #[allow(clippy::too_many_arguments)]
    fn open_or_create(
        py: Python<'_>,
        name: &str,
        shape: &Bound<'_, PyAny>,
        dtype: &Bound<'_, PyAny>,
        slots: usize,
        kind: &str,
        meta_size: Option<usize>,
        timestamps: bool,
        spin: Option<u32>,
    ) -> PyResult<Self> {
        let (shape, t) = (shape_of(shape)?, parse_dtype(py, dtype)?);
        let config = queue_config(kind, slots, meta_size, timestamps, spin)?;
        let inner = with_dtype!(t, T => producer_of(
            RsProducer::<T, IxDyn>::open_or_create(name, IxDyn(&shape), &config).py(py)?));
        Ok(Producer {
            h: Handle::new(inner),
        })
    }

    /// Claims a free slot (waiting while the ring is full, at most `timeout` seconds): use it as
    /// `with tx.claim() as frame: frame[...] = ...`.
    #[pyo3(signature = (timeout=None, meta=None))]
    fn claim(
        &mut self,
        py: Python<'_>,
        timeout: Option<f64>,
        meta: Option<Vec<u8>>,
    ) -> PyResult<Claim> {
        self.h.get(py)?.claim(py, timeout, meta)
    }

    /// Copies `image` (a numpy array of the ring's dtype and shape, any strides) into a slot and
    /// publishes it with `meta` as its user metadata; returns its sequence number.
    #[pyo3(signature = (image, meta=None, timeout=None))]
    fn send(
        &mut self,
        py: Python<'_>,
        image: &Bound<'_, PyAny>,
        meta: Option<Vec<u8>>,
        timeout: Option<f64>,
    ) -> PyResult<u64> {
        self.h.get(py)?.send(py, image, meta.as_deref(), timeout)
    }

    /// Closes the ring: consumers receive what was published, then `ndring.Closed`.
    fn close(&mut self, py: Python<'_>) -> PyResult<()> {
        self.h.get(py)?.close();
        Ok(())
    }
}
segment_getters!(Producer);

// ---------------------------------------------------------------------------------------------
// Consumer

trait AnyConsumer: Send + Sync {
    fn recv<'py>(&mut self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>>;
    fn recv_into(
        &mut self,
        py: Python<'_>,
        out: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<u64>;
    fn recv_copy<'py>(
        &mut self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>>;
    fn held(&self) -> usize;
    fn segment(&self) -> &Segment;
}

impl<T: ndring::Element + numpy::Element> AnyConsumer for LeaseConsumer<T, IxDyn> {
    fn recv<'py>(&mut self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        let lease = self.lease(py, timeout)?;
        leases::read_array(py, lease, self.shape())
    }

    fn recv_into(
        &mut self,
        py: Python<'_>,
        out: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<u64> {
        let dst = input::<T>(out, T::DTYPE, self.shape())?;
        let mut dst = dst
            .try_readwrite()
            .map_err(|e| PyTypeError::new_err(format!("out: {e}")))?;
        let lease = self.lease(py, timeout)?;
        copy_into(&mut dst.as_array_mut(), &lease.view());
        Ok(lease.seq())
    }

    fn recv_copy<'py>(
        &mut self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let lease = self.lease(py, timeout)?;
        Ok(numpy::PyArray::from_array(py, &lease.view()).into_any())
    }

    fn held(&self) -> usize {
        LeaseConsumer::held(self)
    }

    fn segment(&self) -> &Segment {
        LeaseConsumer::segment(self)
    }
}

trait Leasing<T: ndring::Element> {
    fn lease(
        &mut self,
        py: Python<'_>,
        timeout: Option<f64>,
    ) -> PyResult<ndring::ReadLease<T, IxDyn>>;
}

impl<T: ndring::Element> Leasing<T> for LeaseConsumer<T, IxDyn> {
    /// The next item: at once if published (the GIL kept), else waiting without the GIL.
    fn lease(
        &mut self,
        py: Python<'_>,
        timeout: Option<f64>,
    ) -> PyResult<ndring::ReadLease<T, IxDyn>> {
        match self.try_recv_lease() {
            Err(Error::Empty) => wait(py, timeout, |d| self.recv_lease_timeout(d)),
            r => r.py(py),
        }
    }
}

/// Receives the slots of a queue ring, each exactly once, as read-only numpy arrays over the
/// shared memory. An empty ring makes `recv` wait: `spin` polls (default 200), then a sleep on
/// the ring's futex, without the GIL.
#[pyclass(module = "ndring")]
pub struct Consumer {
    h: Handle<dyn AnyConsumer>,
}

fn consumer_of<T: ndring::Element + numpy::Element>(
    c: RsConsumer<T, IxDyn>,
) -> Box<dyn AnyConsumer> {
    Box::new(LeaseConsumer::from(c))
}

#[pymethods]
impl Consumer {
    /// Attaches as a consumer to the ring `name` (dtype and shape from its header); `timeout`
    /// seconds to wait for it to be created (None: fail at once with NotFound).
    #[staticmethod]
    #[pyo3(signature = (name, timeout=None, spin=None))]
    fn open(py: Python<'_>, name: &str, timeout: Option<f64>, spin: Option<u32>) -> PyResult<Self> {
        // The header tells the element type; the typed open then checks it again.
        let dtype = open_segment(py, name, timeout)?.dtype();
        let options = OpenOptions::default().spin(spin.unwrap_or(PY_SPIN));
        let inner = with_dtype!(dtype, T => consumer_of(
            RsConsumer::<T, IxDyn>::open_with(name, &options).py(py)?));
        Ok(Consumer {
            h: Handle::new(inner),
        })
    }

    /// Creates the ring `name` and attaches as its consumer (for consumers that start first).
    #[staticmethod]
    #[pyo3(signature = (name, shape, dtype, slots=4, kind="spsc", meta_size=None, timestamps=false, keep=false, spin=None))]
    #[allow(clippy::too_many_arguments)]
    fn create(
        py: Python<'_>,
        name: &str,
        shape: &Bound<'_, PyAny>,
        dtype: &Bound<'_, PyAny>,
        slots: usize,
        kind: &str,
        meta_size: Option<usize>,
        timestamps: bool,
        keep: bool,
        spin: Option<u32>,
    ) -> PyResult<Self> {
        let (shape, t) = (shape_of(shape)?, parse_dtype(py, dtype)?);
        let config = queue_config(kind, slots, meta_size, timestamps, spin)?.keep(keep);
        let inner = with_dtype!(t, T => consumer_of(
            RsConsumer::<T, IxDyn>::create(name, IxDyn(&shape), &config).py(py)?));
        Ok(Consumer {
            h: Handle::new(inner),
        })
    }

    /// Opens `name` if it exists (checking dtype and shape), else creates it.
    #[staticmethod]
    #[pyo3(signature = (name, shape, dtype, slots=4, kind="spsc", meta_size=None, timestamps=false, spin=None))]
    #[allow(clippy::too_many_arguments)]
    fn open_or_create(
        py: Python<'_>,
        name: &str,
        shape: &Bound<'_, PyAny>,
        dtype: &Bound<'_, PyAny>,
        slots: usize,
        kind: &str,
        meta_size: Option<usize>,
        timestamps: bool,
        spin: Option<u32>,
    ) -> PyResult<Self> {
        let (shape, t) = (shape_of(shape)?, parse_dtype(py, dtype)?);
        let config = queue_config(kind, slots, meta_size, timestamps, spin)?;
        let inner = with_dtype!(t, T => consumer_of(
            RsConsumer::<T, IxDyn>::open_or_create(name, IxDyn(&shape), &config).py(py)?));
        Ok(Consumer {
            h: Handle::new(inner),
        })
    }

    /// The next item as a read-only array over its slot (zero copy), waiting while the ring is
    /// empty (at most `timeout` seconds). The slot returns to the ring when the array and every
    /// view of it are gone; `ndring.info(array)` gives its seq, timestamp and metadata.
    #[pyo3(signature = (timeout=None))]
    fn recv<'py>(&mut self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        self.h.get(py)?.recv(py, timeout)
    }

    /// Copies the next item into `out` (a writable array of the ring's dtype and shape) and
    /// releases its slot at once; returns its sequence number.
    #[pyo3(signature = (out, timeout=None))]
    fn recv_into(
        &mut self,
        py: Python<'_>,
        out: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<u64> {
        self.h.get(py)?.recv_into(py, out, timeout)
    }

    /// The next item copied into a new array; its slot is released at once.
    #[pyo3(signature = (timeout=None))]
    fn recv_copy<'py>(
        &mut self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.h.get(py)?.recv_copy(py, timeout)
    }

    /// Slots held by arrays still alive.
    #[getter]
    fn held(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.h.get_ref(py)?.held())
    }

    /// Detaches from the ring (as `detach()`); arrays already received stay valid.
    fn close(&mut self) {
        self.h.detach();
    }
}
segment_getters!(Consumer);

// ---------------------------------------------------------------------------------------------
// Broadcast

trait AnyWriter: Send + Sync {
    fn send(&mut self, image: &Bound<'_, PyAny>, meta: Option<&[u8]>) -> PyResult<u64>;
    fn close(&mut self);
    fn published(&self) -> u64;
    fn segment(&self) -> &Segment;
}

impl<T: ndring::Element + numpy::Element> AnyWriter for RsWriter<T, IxDyn> {
    fn send(&mut self, image: &Bound<'_, PyAny>, meta: Option<&[u8]>) -> PyResult<u64> {
        let py = image.py();
        let src = input::<T>(image, T::DTYPE, self.shape())?;
        let src = src
            .try_readonly()
            .map_err(|e| PyTypeError::new_err(e.to_string()))?;
        let mut slot = self.claim();
        if let Some(m) = meta {
            slot.set_user_meta_bytes(m).py(py)?;
        }
        copy_into(&mut slot, &src.as_array());
        Ok(slot.publish())
    }
    fn close(&mut self) {
        RsWriter::close(self)
    }
    fn published(&self) -> u64 {
        RsWriter::published(self)
    }
    fn segment(&self) -> &Segment {
        RsWriter::segment(self)
    }
}

/// The one writer of a broadcast ring: never waits; overwrites the oldest frame nobody reads.
#[pyclass(module = "ndring")]
pub struct BroadcastWriter {
    h: Handle<dyn AnyWriter>,
}

#[pymethods]
impl BroadcastWriter {
    /// Creates the broadcast ring `name` (`slots >= max_subscribers + 2`).
    #[staticmethod]
    #[pyo3(signature = (name, shape, dtype, slots=8, max_subscribers=None, meta_size=None, timestamps=false, keep=false))]
    #[allow(clippy::too_many_arguments)]
    fn create(
        py: Python<'_>,
        name: &str,
        shape: &Bound<'_, PyAny>,
        dtype: &Bound<'_, PyAny>,
        slots: usize,
        max_subscribers: Option<usize>,
        meta_size: Option<usize>,
        timestamps: bool,
        keep: bool,
    ) -> PyResult<Self> {
        let (shape, t) = (shape_of(shape)?, parse_dtype(py, dtype)?);
        let mut config = Config::broadcast()
            .slots(slots)
            .timestamps(timestamps)
            .keep(keep);
        config = config.max_subscribers(max_subscribers.unwrap_or(slots.saturating_sub(2).max(1)));
        if let Some(m) = meta_size {
            config = config.user_meta_size(m);
        }
        let inner: Box<dyn AnyWriter> = with_dtype!(t, T => Box::new(
            RsWriter::<T, IxDyn>::create(name, IxDyn(&shape), &config).py(py)?));
        Ok(BroadcastWriter {
            h: Handle::new(inner),
        })
    }

    /// Takes over the writer role of the existing broadcast ring `name`.
    #[staticmethod]
    #[pyo3(signature = (name, timeout=None))]
    fn open(py: Python<'_>, name: &str, timeout: Option<f64>) -> PyResult<Self> {
        let seg = open_segment(py, name, timeout)?;
        let inner: Box<dyn AnyWriter> = with_dtype!(seg.dtype(), T => Box::new(
            RsWriter::<T, IxDyn>::from_segment(seg).py(py)?));
        Ok(BroadcastWriter {
            h: Handle::new(inner),
        })
    }

    /// Copies `image` into the next slot and publishes it (never waits); returns its seq.
    #[pyo3(signature = (image, meta=None))]
    fn send(
        &mut self,
        py: Python<'_>,
        image: &Bound<'_, PyAny>,
        meta: Option<Vec<u8>>,
    ) -> PyResult<u64> {
        self.h.get(py)?.send(image, meta.as_deref())
    }

    /// Frames published so far.
    #[getter]
    fn published(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.h.get_ref(py)?.published())
    }

    /// Closes the ring: subscribers receive what they can, then `ndring.Closed`.
    fn close(&mut self, py: Python<'_>) -> PyResult<()> {
        self.h.get(py)?.close();
        Ok(())
    }
}
segment_getters!(BroadcastWriter);

trait AnySubscriber: Send + Sync {
    fn recv<'py>(
        &mut self,
        py: Python<'py>,
        timeout: Option<f64>,
        latest: bool,
    ) -> PyResult<Bound<'py, PyAny>>;
    fn missed_total(&self) -> u64;
    fn segment(&self) -> &Segment;
}

impl<T: ndring::Element + numpy::Element> AnySubscriber for RsSubscriber<T, IxDyn> {
    fn recv<'py>(
        &mut self,
        py: Python<'py>,
        timeout: Option<f64>,
        latest: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        // The frame is pinned only while it is copied, inside the wait (no array can outlive
        // the pin: a subscriber pins one frame at a time).
        let frame = wait(py, timeout, |d| {
            let slot = if latest {
                self.latest_timeout(d)?
            } else {
                self.recv_timeout(d)?
            };
            Ok(Copied {
                data: match slot.as_slice() {
                    Some(s) => s.to_vec(),
                    None => slot.iter().copied().collect(),
                },
                seq: slot.seq(),
                timestamp_ns: slot.timestamp_ns(),
                meta: slot.user_meta_bytes().to_vec(),
            })
        })?;
        let shape = self.shape().to_vec();
        leases::copied_array(py, frame, &shape)
    }
    fn missed_total(&self) -> u64 {
        RsSubscriber::missed_total(self)
    }
    fn segment(&self) -> &Segment {
        RsSubscriber::segment(self)
    }
}

/// Follows a broadcast ring: every frame while it keeps up, `ndring.Lagged(missed=n)` when the
/// writer overwrote frames it had not read. Frames are copied out (see the README).
#[pyclass(module = "ndring")]
pub struct Subscriber {
    h: Handle<dyn AnySubscriber>,
}

#[pymethods]
impl Subscriber {
    /// Attaches to the broadcast ring `name`, starting at the "newest" or "oldest" frame.
    #[staticmethod]
    #[pyo3(signature = (name, start="newest", timeout=None, spin=None))]
    fn open(
        py: Python<'_>,
        name: &str,
        start: &str,
        timeout: Option<f64>,
        spin: Option<u32>,
    ) -> PyResult<Self> {
        let start = match start {
            "newest" => Start::Newest,
            "oldest" => Start::Oldest,
            other => {
                return Err(PyValueError::new_err(format!(
                    "start must be \"newest\" or \"oldest\", not {other:?}"
                )));
            }
        };
        let seg = open_segment(py, name, timeout)?;
        if seg.kind() != RingKind::Broadcast {
            return Err(to_py(
                py,
                Error::KindMismatch {
                    expected: "broadcast",
                    found: seg.kind(),
                },
            ));
        }
        let options = OpenOptions::default().spin(spin.unwrap_or(PY_SPIN));
        let inner: Box<dyn AnySubscriber> = with_dtype!(seg.dtype(), T => Box::new(
            RsSubscriber::<T, IxDyn>::open_with(name, start, &options).py(py)?));
        Ok(Subscriber {
            h: Handle::new(inner),
        })
    }

    /// The next frame (a copy; `ndring.info` gives its seq, timestamp and metadata), waiting at
    /// most `timeout` seconds. Raises `ndring.Lagged` when frames were overwritten unread; the
    /// next call continues with the oldest frame still held.
    #[pyo3(signature = (timeout=None))]
    fn recv<'py>(&mut self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        self.h.get(py)?.recv(py, timeout, false)
    }

    /// The newest frame newer than the last one received, skipping older ones (counted as
    /// missed, not raised).
    #[pyo3(signature = (timeout=None))]
    fn latest<'py>(
        &mut self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.h.get(py)?.recv(py, timeout, true)
    }

    /// Frames lost to lag so far.
    #[getter]
    fn missed_total(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.h.get_ref(py)?.missed_total())
    }

    /// Detaches from the ring (as `detach()`).
    fn close(&mut self) {
        self.h.detach();
    }
}
segment_getters!(Subscriber);

/// Removes the ring `name` from the system (`/dev/shm`); attached processes keep their mapping.
#[pyfunction]
pub fn remove(py: Python<'_>, name: &str) -> PyResult<()> {
    ndring::remove(name).py(py)
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock of `ndring.info(a).timestamp_ns`.
#[pyfunction]
pub fn now_ns() -> u64 {
    ndring::now_ns()
}

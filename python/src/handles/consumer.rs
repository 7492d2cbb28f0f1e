//! `ndring.Consumer`: receives the slots of a queue ring as read-only numpy arrays.

use std::task::{Context, Poll, ready};

use ndarray::IxDyn;
use ndring::{Consumer as RsConsumer, Error, LeaseConsumer, OpenOptions, Segment, with_dtype};
use numpy::PyArrayMethods;
use pyo3::prelude::*;

use crate::args;
use crate::element::{self, np_view};
use crate::errors::{IntoPy, invalid_argument};
use crate::leases;

use super::{Handle, PY_SPIN, input, now_or_wait, open_segment, queue_spec};

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
    /// One poll of `arecv` (see `Handle::poll`).
    fn poll_recv<'py>(
        &mut self,
        py: Python<'py>,
        cx: &mut Context<'_>,
    ) -> Poll<PyResult<Bound<'py, PyAny>>>;
    fn forget_poll(&mut self);
    fn held(&self) -> usize;
    fn segment(&self) -> &Segment;
}

/// A lease consumer, with what numpy needs for each array it hands out.
struct Receiver<T: ndring::Element> {
    rx: LeaseConsumer<T, IxDyn>,
    kind: leases::ArrayKind,
}

impl<T: leases::Leased> AnyConsumer for Receiver<T> {
    fn recv<'py>(&mut self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        let lease = self.rx.lease(py, timeout)?;
        leases::read_array(py, &self.kind, lease, self.rx.shape())
    }

    fn recv_into(
        &mut self,
        py: Python<'_>,
        out: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<u64> {
        let dst = input::<T::Np>(out, T::DTYPE, self.rx.shape(), "out")?;
        let mut dst = dst.try_readwrite().map_err(|e| {
            invalid_argument(py, format!("out must be a writable array, not in use: {e}"))
        })?;
        let lease = self.rx.lease(py, timeout)?;
        element::copy_out::<T>(&mut dst.as_array_mut(), &np_view(lease.view()));
        Ok(lease.seq())
    }

    fn recv_copy<'py>(
        &mut self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let lease = self.rx.lease(py, timeout)?;
        let items = np_view(lease.view());
        Ok(if T::ANY_BYTES {
            numpy::PyArray::from_array(py, &items).into_any()
        } else {
            numpy::PyArray::from_owned_array(py, items.mapv(T::canonical)).into_any()
        })
    }

    fn poll_recv<'py>(
        &mut self,
        py: Python<'py>,
        cx: &mut Context<'_>,
    ) -> Poll<PyResult<Bound<'py, PyAny>>> {
        let lease = ready!(self.rx.poll_lease(cx)).py(py);
        // The same array as `recv`'s: its base keeps the lease (and so the mapping) alive.
        Poll::Ready(
            lease.and_then(|lease| leases::read_array(py, &self.kind, lease, self.rx.shape())),
        )
    }

    fn forget_poll(&mut self) {
        self.rx.forget_poll()
    }

    fn held(&self) -> usize {
        self.rx.held()
    }

    fn segment(&self) -> &Segment {
        self.rx.segment()
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
        let first = self.try_recv_lease();
        now_or_wait(py, timeout, first, |d| self.recv_lease_timeout(d))
    }
}

/// Receives the slots of a queue ring, each exactly once, as read-only numpy arrays over the
/// shared memory. An empty ring makes `recv` wait: `spin` polls (default 200), then a sleep on
/// the ring's futex, without the GIL.
#[pyclass(module = "ndring", frozen)]
pub struct Consumer {
    h: Handle<dyn AnyConsumer>,
}

/// A consumer handle over `c` (`ndring.InvalidType` where numpy has no dtype for `T` here:
/// `bfloat16` without `ml_dtypes`).
fn consumer_of<T: leases::Leased>(
    py: Python<'_>,
    c: RsConsumer<T, IxDyn>,
) -> PyResult<Box<dyn AnyConsumer>> {
    let kind = leases::ArrayKind::of::<T>(py)?;
    Ok(Box::new(Receiver {
        rx: LeaseConsumer::from(c),
        kind,
    }))
}

#[pymethods]
impl Consumer {
    /// Attaches as a consumer to the ring `name` (dtype and shape from its header); `timeout`
    /// seconds to wait for it to be created (None: fail at once with NotFound).
    #[staticmethod]
    #[pyo3(signature = (name, timeout=None, spin=None))]
    fn open(
        py: Python<'_>,
        #[pyo3(from_py_with = args::name)] name: String,
        #[pyo3(from_py_with = args::timeout)] timeout: Option<f64>,
        #[pyo3(from_py_with = args::spin)] spin: Option<u32>,
    ) -> PyResult<Self> {
        let options = OpenOptions::default().spin(spin.unwrap_or(PY_SPIN));
        // One mapping: the header tells the element type, and the handle attaches to it.
        let inner = loop {
            let seg = open_segment(py, &name, timeout)?;
            let dtype = seg.dtype();
            // numpy's dtype first (bfloat16 needs ml_dtypes): no registration made to be undone.
            crate::element::descr(py, dtype)?;
            let attached = with_dtype!(dtype, T =>
            match RsConsumer::<T, IxDyn>::from_segment_with(seg, &options) {
                // Removed or replaced between the open and the registration: open again.
                Err(Error::NotFound { .. }) => None,
                c => Some(consumer_of(py, c.py(py)?)?),
            });
            if let Some(c) = attached {
                break c;
            }
        };
        Ok(Consumer {
            h: Handle::new(inner),
        })
    }

    /// Creates the ring `name` and attaches as its consumer (for consumers that start first).
    /// A stale ring of that name raises `ndring.Stale`, unless `replace_stale=True`.
    #[staticmethod]
    #[pyo3(signature = (name, shape, dtype, slots=4, kind="spsc", meta_size=None, timestamps=false, keep=false, spin=None, replace_stale=false))]
    #[allow(clippy::too_many_arguments)]
    fn create(
        py: Python<'_>,
        #[pyo3(from_py_with = args::name)] name: String,
        shape: &Bound<'_, PyAny>,
        dtype: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = args::slots)] slots: usize,
        #[pyo3(from_py_with = args::queue_kind)] kind: &str,
        #[pyo3(from_py_with = args::meta_size)] meta_size: Option<usize>,
        #[pyo3(from_py_with = args::timestamps)] timestamps: bool,
        #[pyo3(from_py_with = args::keep)] keep: bool,
        #[pyo3(from_py_with = args::spin)] spin: Option<u32>,
        #[pyo3(from_py_with = args::replace_stale)] replace_stale: bool,
    ) -> PyResult<Self> {
        let (shape, t, config) =
            queue_spec(shape, dtype, slots, kind, meta_size, timestamps, spin)?;
        let config = config.keep(keep).replace_stale(replace_stale);
        let inner = with_dtype!(t, T => consumer_of(py,
            RsConsumer::<T, IxDyn>::create(&name, IxDyn(&shape), &config).py(py)?)?);
        Ok(Consumer {
            h: Handle::new(inner),
        })
    }

    /// Opens `name` if it exists (checking dtype and shape), else creates it. A stale ring is
    /// opened (adopted); `replace_stale=True` replaces one its creator died creating.
    #[staticmethod]
    #[pyo3(signature = (name, shape, dtype, slots=4, kind="spsc", meta_size=None, timestamps=false, spin=None, replace_stale=false))]
    #[allow(clippy::too_many_arguments)]
    fn open_or_create(
        py: Python<'_>,
        #[pyo3(from_py_with = args::name)] name: String,
        shape: &Bound<'_, PyAny>,
        dtype: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = args::slots)] slots: usize,
        #[pyo3(from_py_with = args::queue_kind)] kind: &str,
        #[pyo3(from_py_with = args::meta_size)] meta_size: Option<usize>,
        #[pyo3(from_py_with = args::timestamps)] timestamps: bool,
        #[pyo3(from_py_with = args::spin)] spin: Option<u32>,
        #[pyo3(from_py_with = args::replace_stale)] replace_stale: bool,
    ) -> PyResult<Self> {
        let (shape, t, config) =
            queue_spec(shape, dtype, slots, kind, meta_size, timestamps, spin)?;
        let config = config.replace_stale(replace_stale);
        let inner = with_dtype!(t, T => consumer_of(py,
            RsConsumer::<T, IxDyn>::open_or_create(&name, IxDyn(&shape), &config).py(py)?)?);
        Ok(Consumer {
            h: Handle::new(inner),
        })
    }

    /// The next item as a read-only array over its slot (zero copy), waiting while the ring is
    /// empty (at most `timeout` seconds). The slot returns to the ring when the array and every
    /// view of it are gone; `ndring.info(array)` gives its seq, timestamp and metadata.
    #[pyo3(signature = (timeout=None))]
    fn recv<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = args::timeout)] timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.h.get_to_wait(py)?.recv(py, timeout)
    }

    /// A consumer is an iterator over its items: `for a in rx:` receives each one (as `recv()`)
    /// until the ring is closed and drained; any other error (`Disconnected`, ...) is raised.
    /// The previous item's array is released when the loop variable is rebound (or deleted).
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        crate::errors::until_closed(py, self.recv(py, None))
    }

    /// `recv()` for asyncio: awaits the next item without blocking the event loop, and without
    /// a thread per pending call (this process's one reactor thread wakes the loop).
    /// Cancelling the task (or Ctrl-C) takes no item and leaves no waiter counted.
    #[pyo3(signature = (timeout=None))]
    fn arecv<'py>(
        slf: &Bound<'py, Self>,
        #[pyo3(from_py_with = args::timeout)] timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        crate::aio::coroutine(slf.py(), "recv", (slf, timeout))
    }

    /// `async for a in rx:` receives each item (as `arecv()`) until the ring is closed and
    /// drained.
    fn __aiter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __anext__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        crate::aio::coroutine(slf.py(), "anext", (slf,))
    }

    /// One poll of `arecv` (`ndring._aio`): the item, or None while pending.
    fn _poll_recv<'py>(
        &self,
        py: Python<'py>,
        notifier: &Bound<'py, crate::aio::Notifier>,
        token: u64,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.h
            .poll(py, notifier.get(), token, |h, cx| h.poll_recv(py, cx))
    }

    /// Ends the pending wait of the `arecv` call `token`, if any (`ndring._aio`).
    fn _forget_poll(&self, py: Python<'_>, token: u64) {
        self.h.forget(py, token, |h| h.forget_poll())
    }

    /// Copies the next item into `out` (a writable array of the ring's dtype and shape) and
    /// releases its slot at once; returns its sequence number.
    #[pyo3(signature = (out, timeout=None))]
    fn recv_into(
        &self,
        py: Python<'_>,
        out: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = args::timeout)] timeout: Option<f64>,
    ) -> PyResult<u64> {
        self.h.get_to_wait(py)?.recv_into(py, out, timeout)
    }

    /// The next item copied into a new array; its slot is released at once.
    #[pyo3(signature = (timeout=None))]
    fn recv_copy<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = args::timeout)] timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.h.get_to_wait(py)?.recv_copy(py, timeout)
    }

    /// Slots held by arrays still alive.
    #[getter]
    fn held(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.h.get(py)?.held())
    }

    /// Detaches from the ring (as `detach()`); arrays already received stay valid.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.h.detach(py)
    }
}
segment_getters!(Consumer);

//! `ndring.Producer`: fills and publishes the slots of a queue ring (SPSC or MPMC).

use std::task::{Context, Poll, ready};

use ndarray::IxDyn;
use ndring::{Error, LeaseProducer, OpenOptions, Producer as RsProducer, Segment, with_dtype};
use numpy::{PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::args;
use crate::element::{self, PyElement, np_view_mut};
use crate::errors::{IntoPy, invalid_argument};
use crate::leases::{self, Claim};

use super::{Handle, PY_SPIN, input, now_or_wait, open_segment, queue_spec};

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
    /// One poll of `asend` (see `Handle::poll`).
    fn poll_send(
        &mut self,
        py: Python<'_>,
        image: &Bound<'_, PyAny>,
        meta: Option<&[u8]>,
        cx: &mut Context<'_>,
    ) -> Poll<PyResult<u64>>;
    fn forget_poll(&mut self);
    fn close(&mut self);
    fn reuse_recent_slots(&mut self, on: bool);
    fn segment(&self) -> &Segment;
}

/// A lease producer, with what numpy needs to check each array it sends.
struct Sender<T: ndring::Element> {
    tx: LeaseProducer<T, IxDyn>,
    kind: leases::ArrayKind,
}

impl<T: ndring::Element> Sender<T> {
    /// A claimed slot, at once if free (the GIL kept), else waiting without the GIL.
    fn lease(
        &mut self,
        py: Python<'_>,
        timeout: Option<f64>,
    ) -> PyResult<ndring::WriteLease<T, IxDyn>> {
        let first = self.tx.try_claim_lease();
        now_or_wait(py, timeout, first, |d| self.tx.claim_lease_timeout(d))
    }
}

impl<T: PyElement> AnyProducer for Sender<T> {
    fn claim(
        &mut self,
        py: Python<'_>,
        timeout: Option<f64>,
        meta: Option<Vec<u8>>,
    ) -> PyResult<Claim> {
        let lease = self.lease(py, timeout)?;
        leases::claim(py, lease, meta)
    }

    fn send(
        &mut self,
        py: Python<'_>,
        image: &Bound<'_, PyAny>,
        meta: Option<&[u8]>,
        timeout: Option<f64>,
    ) -> PyResult<u64> {
        self.check(image)?;
        let lease = self.lease(py, timeout)?;
        self.fill(py, lease, image, meta)
    }

    fn poll_send(
        &mut self,
        py: Python<'_>,
        image: &Bound<'_, PyAny>,
        meta: Option<&[u8]>,
        cx: &mut Context<'_>,
    ) -> Poll<PyResult<u64>> {
        if let Err(e) = self.check(image) {
            return Poll::Ready(Err(e));
        }
        let lease = ready!(self.tx.poll_claim_lease(cx)).py(py);
        Poll::Ready(lease.and_then(|lease| self.fill(py, lease, image, meta)))
    }

    fn forget_poll(&mut self) {
        self.tx.forget_poll()
    }

    fn close(&mut self) {
        self.tx.close()
    }

    fn reuse_recent_slots(&mut self, on: bool) {
        self.tx.reuse_recent_slots(on)
    }

    fn segment(&self) -> &Segment {
        self.tx.segment()
    }
}

impl<T: PyElement> Sender<T> {
    /// A wrong array fails at once, even on a full ring.
    fn check(&self, image: &Bound<'_, PyAny>) -> PyResult<()> {
        if self.kind.contiguous_data(image, self.tx.shape()).is_none() {
            input::<T::Np>(image, T::DTYPE, self.tx.shape(), "image")?;
        }
        Ok(())
    }

    /// Copies `image` into the claimed `lease` and publishes it, with `meta`.
    fn fill(
        &self,
        py: Python<'_>,
        mut lease: ndring::WriteLease<T, IxDyn>,
        image: &Bound<'_, PyAny>,
        meta: Option<&[u8]>,
    ) -> PyResult<u64> {
        if let Some(m) = meta {
            lease.set_user_meta_bytes(m).py(py)?;
        }
        // The array is read from here on with the GIL held, as numpy's own `copyto` does (no
        // Rust reference covers it), and checked again: another thread may have changed it
        // while the claim waited without the GIL. An error now abandons the claim.
        let shape = self.tx.shape();
        let bytes = shape.iter().product::<usize>() * std::mem::size_of::<T>();
        let data = match self.kind.contiguous_data(image, shape) {
            // The common case, per item: one memcpy from numpy's buffer after reading a few
            // fields of the array (no rust-numpy borrow tracking, a global table, nor an ndarray
            // view on either side).
            Some(data) => data,
            None => {
                let src = input::<T::Np>(image, T::DTYPE, shape, "image")?;
                if !src.is_c_contiguous() {
                    let src = src
                        .try_readonly()
                        .map_err(|e| invalid_argument(py, format!("image: {e}")))?;
                    element::copy_into(&mut np_view_mut(lease.view_mut()), &src.as_array());
                    return Ok(lease.publish());
                }
                src.data().cast::<u8>().cast_const()
            }
        };
        // Copied as bytes: numpy arrays may be unaligned.
        if bytes > 0 {
            // SAFETY: `data` is the buffer of a live C-contiguous array of the ring's element
            // type and shape (`bytes` bytes), unchanged since the check (the GIL is held); the
            // claimed slot is ours alone until publish, and never overlaps a Python array.
            unsafe { std::ptr::copy_nonoverlapping(data, lease.as_mut_ptr().cast::<u8>(), bytes) };
        }
        Ok(lease.publish())
    }
}

/// Fills and publishes the slots of a queue ring (SPSC or MPMC). A full ring makes claims wait:
/// `spin` polls (default 200), then a sleep on the ring's futex, without the GIL.
#[pyclass(module = "ndring", frozen)]
pub struct Producer {
    h: Handle<dyn AnyProducer>,
}

/// A producer handle over `p` (`ndring.InvalidType` where numpy has no dtype for `T` here:
/// `bfloat16` without `ml_dtypes`).
fn producer_of<T: PyElement>(
    py: Python<'_>,
    p: RsProducer<T, IxDyn>,
) -> PyResult<Box<dyn AnyProducer>> {
    let kind = leases::ArrayKind::of::<T>(py)?;
    Ok(Box::new(Sender {
        tx: LeaseProducer::from(p),
        kind,
    }))
}

#[pymethods]
impl Producer {
    /// Creates the ring `name` (e.g. "/cam0") and attaches as its producer.
    /// A stale ring of that name (its creator died: SIGKILL, Ctrl-C with items unread) raises
    /// `ndring.Stale`, unless `replace_stale=True` (then it is removed and created afresh).
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
        let inner = with_dtype!(t, T => producer_of(py,
            RsProducer::<T, IxDyn>::create(&name, IxDyn(&shape), &config).py(py)?)?);
        Ok(Producer {
            h: Handle::new(inner),
        })
    }

    /// Attaches as a producer to the existing ring `name` (dtype and shape from its header);
    /// `timeout` seconds to wait for it to be created (None: fail at once with NotFound).
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
            match RsProducer::<T, IxDyn>::from_segment_with(seg, &options) {
                // Removed or replaced between the open and the registration: open again.
                Err(Error::NotFound { .. }) => None,
                p => Some(producer_of(py, p.py(py)?)?),
            });
            if let Some(p) = attached {
                break p;
            }
        };
        Ok(Producer {
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
        let inner = with_dtype!(t, T => producer_of(py,
            RsProducer::<T, IxDyn>::open_or_create(&name, IxDyn(&shape), &config).py(py)?)?);
        Ok(Producer {
            h: Handle::new(inner),
        })
    }

    /// Claims a free slot (waiting while the ring is full, at most `timeout` seconds): use it as
    /// `with tx.claim() as frame: frame[...] = ...`.
    #[pyo3(signature = (timeout=None, meta=None))]
    fn claim(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = args::timeout)] timeout: Option<f64>,
        #[pyo3(from_py_with = args::meta)] meta: Option<Vec<u8>>,
    ) -> PyResult<Claim> {
        self.h.get_to_wait(py)?.claim(py, timeout, meta)
    }

    /// Copies `image` (a numpy array of the ring's dtype and shape, any strides) into a slot and
    /// publishes it with `meta` as its user metadata; returns its sequence number.
    #[pyo3(signature = (image, meta=None, timeout=None))]
    fn send(
        &self,
        py: Python<'_>,
        image: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = args::meta)] meta: Option<Vec<u8>>,
        #[pyo3(from_py_with = args::timeout)] timeout: Option<f64>,
    ) -> PyResult<u64> {
        self.h
            .get_to_wait(py)?
            .send(py, image, meta.as_deref(), timeout)
    }

    /// `send()` for asyncio: awaits a free slot without blocking the event loop, and without a
    /// thread per pending call (this process's one reactor thread wakes the loop). Cancelling
    /// the task (or Ctrl-C) sends nothing and leaves no waiter counted.
    #[pyo3(signature = (image, meta=None, timeout=None))]
    fn asend<'py>(
        slf: &Bound<'py, Self>,
        image: &Bound<'py, PyAny>,
        #[pyo3(from_py_with = args::meta)] meta: Option<Vec<u8>>,
        #[pyo3(from_py_with = args::timeout)] timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        crate::aio::coroutine(slf.py(), "send", (slf, image, meta, timeout))
    }

    /// One poll of `asend` (`ndring._aio`): the sequence number, or None while pending.
    #[pyo3(signature = (image, meta, notifier, token))]
    fn _poll_send(
        &self,
        py: Python<'_>,
        image: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = args::meta)] meta: Option<Vec<u8>>,
        notifier: &Bound<'_, crate::aio::Notifier>,
        token: u64,
    ) -> PyResult<Option<u64>> {
        self.h.poll(py, notifier.get(), token, |h, cx| {
            h.poll_send(py, image, meta.as_deref(), cx)
        })
    }

    /// Ends the pending wait of the `asend` call `token`, if any (`ndring._aio`).
    fn _forget_poll(&self, py: Python<'_>, token: u64) {
        self.h.forget(py, token, |h| h.forget_poll())
    }

    /// SPSC rings: fill the slot the consumer released last (`True`, the default for items of at
    /// least 64 KiB: the ring's working set stays two slots at any depth) or the slots in turn
    /// (`False`, the default for smaller items; faster where producer and consumer do not share
    /// a last-level cache). Delivery is the same either way; MPMC rings ignore it.
    fn reuse_recent_slots(&self, py: Python<'_>, on: bool) -> PyResult<()> {
        self.h.get(py)?.reuse_recent_slots(on);
        Ok(())
    }

    /// Closes the ring: consumers receive what was published, then `ndring.Closed`.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.h.get(py)?.close();
        Ok(())
    }
}
segment_getters!(Producer);

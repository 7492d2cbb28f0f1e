//! `ndring.Subscriber`: follows a broadcast ring, frames copied out.

use std::task::{Context, Poll, ready};

use ndarray::IxDyn;
use ndring::{
    Error, OpenOptions, RingKind, Segment, Start, Subscriber as RsSubscriber, with_dtype,
};
use pyo3::prelude::*;

use crate::args;
use crate::element::{self, PyElement};
use crate::errors::{IntoPy, to_py};
use crate::leases::{self, Copied};

use super::{Handle, PY_SPIN, open_segment, wait};

trait AnySubscriber: Send + Sync {
    fn recv<'py>(
        &mut self,
        py: Python<'py>,
        timeout: Option<f64>,
        latest: bool,
    ) -> PyResult<Bound<'py, PyAny>>;
    /// One poll of `arecv` (see `Handle::poll`).
    fn poll_recv<'py>(
        &mut self,
        py: Python<'py>,
        cx: &mut Context<'_>,
    ) -> Poll<PyResult<Bound<'py, PyAny>>>;
    fn forget_poll(&mut self);
    fn missed_total(&self) -> u64;
    fn segment(&self) -> &Segment;
}

/// A copy of the pinned frame `slot`.
fn copy_frame<T: PyElement>(slot: &ndring::ReadSlot<'_, T, IxDyn>) -> Copied<T::Np> {
    Copied {
        data: match slot.as_slice() {
            Some(s) if T::ANY_BYTES => bytemuck::cast_slice::<T, T::Np>(s).to_vec(),
            // Made canonical (a `bool` byte other than 0 or 1 as 1, see `element`).
            _ => element::to_np_vec(slot.iter().copied()),
        },
        seq: slot.seq(),
        timestamp_ns: slot.timestamp_ns(),
        meta: slot.user_meta_bytes().to_vec(),
    }
}

impl<T: PyElement> AnySubscriber for RsSubscriber<T, IxDyn> {
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
            Ok(copy_frame(&slot))
        })?;
        let shape = self.shape().to_vec();
        leases::copied_array(py, frame, &shape)
    }
    fn poll_recv<'py>(
        &mut self,
        py: Python<'py>,
        cx: &mut Context<'_>,
    ) -> Poll<PyResult<Bound<'py, PyAny>>> {
        // Copied while pinned, as `recv` does, then unpinned with the slot.
        let frame = ready!(RsSubscriber::poll_recv(self, cx)).map(|slot| copy_frame(&slot));
        let shape = self.shape().to_vec();
        Poll::Ready(
            frame
                .py(py)
                .and_then(|frame| leases::copied_array(py, frame, &shape)),
        )
    }
    fn forget_poll(&mut self) {
        RsSubscriber::forget_poll(self)
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
#[pyclass(module = "ndring", frozen)]
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
        #[pyo3(from_py_with = args::name)] name: String,
        #[pyo3(from_py_with = args::start)] start: &str,
        #[pyo3(from_py_with = args::timeout)] timeout: Option<f64>,
        #[pyo3(from_py_with = args::spin)] spin: Option<u32>,
    ) -> PyResult<Self> {
        let start = match start {
            "oldest" => Start::Oldest,
            _ => Start::Newest,
        };
        let options = OpenOptions::default().spin(spin.unwrap_or(PY_SPIN));
        // One mapping: the header is checked, and the handle attaches to it.
        let inner = loop {
            let seg = open_segment(py, &name, timeout)?;
            if seg.kind() != RingKind::Broadcast {
                return Err(to_py(
                    py,
                    Error::KindMismatch {
                        expected: "broadcast",
                        found: seg.kind(),
                    },
                ));
            }
            element::descr(py, seg.dtype())?;
            let attached: Option<Box<dyn AnySubscriber>> = with_dtype!(seg.dtype(), T =>
            match RsSubscriber::<T, IxDyn>::from_segment_with(seg, start, &options) {
                // Removed or replaced between the open and the registration: open again.
                Err(Error::NotFound { .. }) => None,
                s => Some(Box::new(s.py(py)?)),
            });
            if let Some(s) = attached {
                break s;
            }
        };
        Ok(Subscriber {
            h: Handle::new(inner),
        })
    }

    /// The next frame (a copy; `ndring.info` gives its seq, timestamp and metadata), waiting at
    /// most `timeout` seconds. Raises `ndring.Lagged` when frames were overwritten unread; the
    /// next call continues with the oldest frame still held.
    #[pyo3(signature = (timeout=None))]
    fn recv<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = args::timeout)] timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.h.get_to_wait(py)?.recv(py, timeout, false)
    }

    /// A subscriber is an iterator over its frames: `for f in sub:` receives each one (as
    /// `recv()`) until the writer closes the ring; `Lagged` and other errors are raised.
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        crate::errors::until_closed(py, self.recv(py, None))
    }

    /// `recv()` for asyncio: awaits the next frame without blocking the event loop, and without
    /// a thread per pending call (this process's one reactor thread wakes the loop).
    /// Cancelling the task (or Ctrl-C) skips no frame and leaves no waiter counted.
    #[pyo3(signature = (timeout=None))]
    fn arecv<'py>(
        slf: &Bound<'py, Self>,
        #[pyo3(from_py_with = args::timeout)] timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        crate::aio::coroutine(slf.py(), "recv", (slf, timeout))
    }

    /// `async for f in sub:` receives each frame (as `arecv()`) until the ring is closed;
    /// `ndring.Lagged` and other errors are raised.
    fn __aiter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __anext__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        crate::aio::coroutine(slf.py(), "anext", (slf,))
    }

    /// One poll of `arecv` (`ndring._aio`): the frame, or None while pending.
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

    /// The newest frame newer than the last one received, skipping older ones (counted as
    /// missed, not raised).
    #[pyo3(signature = (timeout=None))]
    fn latest<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = args::timeout)] timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.h.get_to_wait(py)?.recv(py, timeout, true)
    }

    /// Frames lost to lag so far.
    #[getter]
    fn missed_total(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.h.get(py)?.missed_total())
    }

    /// Detaches from the ring (as `detach()`).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.h.detach(py)
    }
}
segment_getters!(Subscriber);

//! `ndring.Subscriber`: follows a broadcast ring, frames copied out.

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
    fn missed_total(&self) -> u64;
    fn segment(&self) -> &Segment;
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
            Ok(Copied {
                data: match slot.as_slice() {
                    Some(s) if T::ANY_BYTES => bytemuck::cast_slice::<T, T::Np>(s).to_vec(),
                    // Made canonical (a `bool` byte other than 0 or 1 as 1, see `element`).
                    _ => element::to_np_vec(slot.iter().copied()),
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
        let options = OpenOptions::default().spin(spin.unwrap_or(PY_SPIN));
        let inner: Box<dyn AnySubscriber> = with_dtype!(seg.dtype(), T => Box::new(
            RsSubscriber::<T, IxDyn>::open_with(&name, start, &options).py(py)?));
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
        self.h.get(py)?.recv(py, timeout, false)
    }

    /// A subscriber is an iterator over its frames: `for f in sub:` receives each one (as
    /// `recv()`) until the writer closes the ring; `Lagged` and other errors are raised.
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        crate::errors::until_closed(py, self.recv(py, None))
    }

    /// The newest frame newer than the last one received, skipping older ones (counted as
    /// missed, not raised).
    #[pyo3(signature = (timeout=None))]
    fn latest<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = args::timeout)] timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.h.get(py)?.recv(py, timeout, true)
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

//! `ndring.BroadcastWriter`: the one writer of a broadcast ring.

use ndarray::IxDyn;
use ndring::{BroadcastWriter as RsWriter, Config, Segment, with_dtype};
use numpy::PyArrayMethods;
use pyo3::prelude::*;

use crate::args;
use crate::element::{self, PyElement, np_view_mut};
use crate::errors::{IntoPy, invalid_argument};

use super::{Handle, input, open_segment, parse_dtype};

trait AnyWriter: Send + Sync {
    fn send(&mut self, image: &Bound<'_, PyAny>, meta: Option<&[u8]>) -> PyResult<u64>;
    fn close(&mut self);
    fn skip(&mut self, frames: u64) -> u64;
    fn published(&self) -> u64;
    fn segment(&self) -> &Segment;
}

impl<T: PyElement> AnyWriter for RsWriter<T, IxDyn> {
    fn send(&mut self, image: &Bound<'_, PyAny>, meta: Option<&[u8]>) -> PyResult<u64> {
        let py = image.py();
        let src = input::<T::Np>(image, T::DTYPE, self.shape(), "image")?;
        let src = src
            .try_readonly()
            .map_err(|e| invalid_argument(py, format!("image: {e}")))?;
        let mut slot = self.claim();
        if let Some(m) = meta {
            slot.set_user_meta_bytes(m).py(py)?;
        }
        element::copy_into(&mut np_view_mut(slot.view_mut()), &src.as_array());
        Ok(slot.publish())
    }
    fn close(&mut self) {
        RsWriter::close(self)
    }
    fn skip(&mut self, frames: u64) -> u64 {
        RsWriter::skip(self, frames)
    }
    fn published(&self) -> u64 {
        RsWriter::published(self)
    }
    fn segment(&self) -> &Segment {
        RsWriter::segment(self)
    }
}

/// The one writer of a broadcast ring: never waits; overwrites the oldest frame nobody reads.
#[pyclass(module = "ndring", frozen)]
pub struct BroadcastWriter {
    h: Handle<dyn AnyWriter>,
}

#[pymethods]
impl BroadcastWriter {
    /// Creates the broadcast ring `name` (`slots >= max_subscribers + 2`; `max_subscribers`
    /// defaults to `slots - 2`, at most 1,023). A stale ring of that name raises
    /// `ndring.Stale`, unless `replace_stale=True`.
    #[staticmethod]
    #[pyo3(signature = (name, shape, dtype, slots=8, max_subscribers=None, meta_size=None, timestamps=false, keep=false, replace_stale=false))]
    #[allow(clippy::too_many_arguments)]
    fn create(
        py: Python<'_>,
        #[pyo3(from_py_with = args::name)] name: String,
        shape: &Bound<'_, PyAny>,
        dtype: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = args::slots)] slots: usize,
        #[pyo3(from_py_with = args::max_subscribers)] max_subscribers: Option<usize>,
        #[pyo3(from_py_with = args::meta_size)] meta_size: Option<usize>,
        #[pyo3(from_py_with = args::timestamps)] timestamps: bool,
        #[pyo3(from_py_with = args::keep)] keep: bool,
        #[pyo3(from_py_with = args::replace_stale)] replace_stale: bool,
    ) -> PyResult<Self> {
        let (shape, t) = (args::shape(shape)?, parse_dtype(py, dtype)?);
        let mut config = Config::broadcast()
            .slots(slots)
            .timestamps(timestamps)
            .keep(keep)
            .replace_stale(replace_stale);
        // The peer table holds the writer and at most MAX_PEERS - 1 subscribers.
        let most = ndring::layout::MAX_PEERS - 1;
        config = config.max_subscribers(max_subscribers.unwrap_or((slots - 2).clamp(1, most)));
        if let Some(m) = meta_size {
            config = config.user_meta_size(m);
        }
        let inner: Box<dyn AnyWriter> = with_dtype!(t, T => Box::new(
            RsWriter::<T, IxDyn>::create(&name, IxDyn(&shape), &config).py(py)?));
        Ok(BroadcastWriter {
            h: Handle::new(inner),
        })
    }

    /// Takes over the writer role of the existing broadcast ring `name`.
    #[staticmethod]
    #[pyo3(signature = (name, timeout=None))]
    fn open(
        py: Python<'_>,
        #[pyo3(from_py_with = args::name)] name: String,
        #[pyo3(from_py_with = args::timeout)] timeout: Option<f64>,
    ) -> PyResult<Self> {
        let seg = open_segment(py, &name, timeout)?;
        element::descr(py, seg.dtype())?;
        let inner: Box<dyn AnyWriter> = with_dtype!(seg.dtype(), T => Box::new(
            RsWriter::<T, IxDyn>::from_segment(seg).py(py)?));
        Ok(BroadcastWriter {
            h: Handle::new(inner),
        })
    }

    /// Copies `image` into the next slot and publishes it (never waits); returns its seq.
    #[pyo3(signature = (image, meta=None))]
    fn send(
        &self,
        py: Python<'_>,
        image: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = args::meta)] meta: Option<Vec<u8>>,
    ) -> PyResult<u64> {
        self.h.get(py)?.send(image, meta.as_deref())
    }

    /// Frames published so far.
    #[getter]
    fn published(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.h.get(py)?.published())
    }

    /// Publishes the sequence numbers of `frames` frames lost upstream (a relay that knows frames
    /// of its source are missing): subscribers that wanted them get `ndring.Lagged` exactly there,
    /// also just before `ndring.Closed`. Returns the last of them.
    fn skip(&self, py: Python<'_>, frames: u64) -> PyResult<u64> {
        Ok(self.h.get(py)?.skip(frames))
    }

    /// Closes the ring: subscribers receive what they can, then `ndring.Closed`.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.h.get(py)?.close();
        Ok(())
    }
}
segment_getters!(BroadcastWriter);

//! `ndring.SharedArray`: one array in named shared memory that every attached process reads and
//! writes in place, over the Rust `ndring::SharedArray` (its reader-writer lock, version and
//! dead-holder recovery).
//!
//! A handle pickles to its name (a worker of a `multiprocessing.Pool` attaches by name) and, in
//! a child forked from the process that opened it, attaches again by name on first use: the
//! parent's registration is the parent's. Every wait releases the GIL and runs in slices that
//! let Ctrl-C through; the Rust handle counts how long the lock has been stuck across those
//! calls, so a dead holder is recovered however the caller waits.

mod block;
mod mapping;
mod retained;
mod typed;

use std::ops::Range;
use std::sync::{Arc, Mutex};

use ndarray::IxDyn;
use ndring::{Config, DType, OpenOptions, RingKind, with_dtype};
use pyo3::prelude::*;
use pyo3::types::{PySlice, PyTuple};

use crate::args;
use crate::errors::{IntoPy, invalid_argument, invalid_type, raise, tuple};
use crate::handles::{PY_SPIN, dtype_label, open_segment, parse_dtype};

pub use block::{ArrayBlock, HeldLock};
pub use mapping::ArrayMapping;
use typed::{AnyShared, Lock, Typed};

/// The Rust handle and the process it belongs to.
struct Inner {
    /// `None` once closed.
    array: Option<Arc<dyn AnyShared>>,
    pid: u32,
    /// This process created the array (through this handle).
    owner: bool,
    /// The last block handed out by `read()` or `write()`: handed out again once it has
    /// finished and nothing else refers to it (no allocation per block).
    block: Option<Py<ArrayBlock>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if crate::pid::current() != self.pid {
            // A forked child's copy: dropping it would unregister the parent.
            std::mem::forget(self.array.take());
            return;
        }
        // A handle collected without `close()`: as `close()` does, drop a kept mapping of this
        // name once the name is gone (this handle may have been the last one out).
        if let Some(a) = self.array.take() {
            let name = a.segment().name().to_owned();
            drop(a);
            Python::attach(|py| retained::closed(py, &name));
        }
    }
}

/// One array in named shared memory that every attached process reads and writes in place.
#[pyclass(module = "ndring", frozen)]
pub struct SharedArray {
    inner: Mutex<Inner>,
    name: String,
    shape: Vec<usize>,
    dtype: DType,
}

fn erase<T: crate::element::PyElement>(a: ndring::SharedArray<T, IxDyn>) -> Arc<dyn AnyShared> {
    Arc::new(Typed(a))
}

/// Attaches to the shared array `name` (waiting `timeout` seconds for it to be created),
/// checking `shape` and `dtype` where given.
fn attach(
    py: Python<'_>,
    name: &str,
    timeout: Option<f64>,
    shape: Option<&[usize]>,
    dtype: Option<DType>,
) -> PyResult<Arc<dyn AnyShared>> {
    loop {
        // A mapping this process kept from an earlier handle (a pool worker's previous chunk):
        // registered over without mapping the array again.
        let (seg, kept) = match retained::find(name) {
            Some(seg) => (seg, true),
            None => (Arc::new(open_segment(py, name, timeout)?), false),
        };
        let checked = check_header(py, name, &seg, dtype, shape);
        if let Err(e) = checked {
            // A kept mapping's header is the array that was there: if the name now holds
            // another, check that one.
            if kept && !seg.still_named() {
                retained::forget(py, &seg);
                continue;
            }
            return Err(e);
        }
        let found_t = seg.dtype();
        let options = OpenOptions::default().spin(PY_SPIN);
        // Attached to the mapping just read, not to a second one.
        let a = with_dtype!(found_t, T =>
            ndring::SharedArray::<T, IxDyn>::from_mapped(seg.clone(), &options).map(erase));
        match a {
            // The name was removed or replaced between the open (or the kept mapping's check)
            // and the registration: the next open finds what holds it now.
            Err(ndring::Error::NotFound { .. }) => {
                if kept {
                    retained::forget(py, &seg);
                }
                continue;
            }
            // Any other refusal (a full peer table) of a kept mapping whose name moved on:
            // the array there now decides.
            Err(_) if kept && !seg.still_named() => {
                retained::forget(py, &seg);
                continue;
            }
            Ok(a) => {
                if !kept {
                    retained::keep(py, &seg);
                }
                return Ok(a);
            }
            Err(e) => return Err(e).py(py),
        }
    }
}

/// Whether `seg` is a shared array of `dtype` and `shape` (where given), numpy knowing its dtype.
fn check_header(
    py: Python<'_>,
    name: &str,
    seg: &ndring::Segment,
    dtype: Option<DType>,
    shape: Option<&[usize]>,
) -> PyResult<()> {
    if seg.kind() != RingKind::Array {
        return Err(raise(
            py,
            "Mismatch",
            format!(
                "{name:?} is {}, not a shared array (open it with ndring.Consumer, Producer or \
                 Subscriber)",
                seg.kind()
            ),
        ));
    }
    check(py, name, dtype, shape, seg.dtype(), seg.shape())?;
    // numpy's dtype first (bfloat16 needs ml_dtypes): no registration made to be undone.
    crate::element::descr(py, seg.dtype())?;
    Ok(())
}

fn check(
    py: Python<'_>,
    name: &str,
    dtype: Option<DType>,
    shape: Option<&[usize]>,
    found_t: DType,
    found_shape: &[usize],
) -> PyResult<()> {
    if let Some(t) = dtype.filter(|&t| t != found_t) {
        return Err(raise(
            py,
            "Mismatch",
            format!(
                "dtype mismatch: expected {}, the shared array {name:?} holds {}",
                dtype_label(t),
                dtype_label(found_t)
            ),
        ));
    }
    if let Some(s) = shape.filter(|&s| s != found_shape) {
        return Err(raise(
            py,
            "Mismatch",
            format!(
                "shape mismatch: expected {}, the shared array {name:?} is {}",
                tuple(s),
                tuple(found_shape)
            ),
        ));
    }
    Ok(())
}

/// The rows of `shape`'s first axis that `rows` (a slice with step 1) selects.
fn rows_of(rows: &Bound<'_, PyAny>, shape: &[usize]) -> PyResult<Range<usize>> {
    let py = rows.py();
    let Some(&n) = shape.first() else {
        return Err(invalid_argument(
            py,
            "rows= needs an array of at least one dimension; this one is 0-d".into(),
        ));
    };
    let slice = rows.cast::<PySlice>().map_err(|_| {
        invalid_type(
            py,
            format!(
                "rows must be a slice of the first axis such as slice(0, 250), got {}",
                rows.repr().map(|r| r.to_string()).unwrap_or_default()
            ),
        )
    })?;
    let ind = slice.indices(n as isize)?;
    if ind.step != 1 || ind.slicelength == 0 {
        return Err(invalid_argument(
            py,
            format!(
                "rows must select one or more consecutive rows (step 1) of the first axis, \
                 {n} rows long; got {} (rows {}:{}:{})",
                rows.repr()?,
                ind.start,
                ind.stop,
                ind.step
            ),
        ));
    }
    Ok(ind.start as usize..ind.stop as usize)
}

impl SharedArray {
    fn new(a: Arc<dyn AnyShared>, owner: bool) -> Self {
        SharedArray {
            name: a.segment().name().to_string(),
            shape: a.shape().to_vec(),
            dtype: a.dtype(),
            inner: Mutex::new(Inner {
                array: Some(a),
                pid: crate::pid::current(),
                owner,
                block: None,
            }),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The Rust handle; in a forked child, one attached anew by name.
    fn get(&self, py: Python<'_>) -> PyResult<Arc<dyn AnyShared>> {
        let current = crate::pid::current();
        {
            let inner = self.inner();
            if inner.pid == current || inner.array.is_none() {
                return inner.array.clone().ok_or_else(|| closed(py));
            }
        }
        // Not under the lock: attaching releases the GIL.
        let fresh = attach(py, &self.name, None, Some(&self.shape), Some(self.dtype))?;
        let mut inner = self.inner();
        if inner.pid != current {
            std::mem::forget(inner.array.take());
            inner.array = Some(fresh);
            inner.pid = current;
            inner.owner = false;
        }
        inner.array.clone().ok_or_else(|| closed(py))
    }

    /// A block for `lock`: the last one again where it has finished, nothing else refers to it
    /// and the handle is the same, else a new one (kept for next time).
    fn block(&self, py: Python<'_>, lock: Lock, timeout: Option<f64>) -> PyResult<Py<ArrayBlock>> {
        {
            let inner = self.inner();
            if let (Some(b), Some(a)) = (&inner.block, &inner.array) {
                // No Python code runs under the mutex: a reference count, a borrow flag.
                // SAFETY (the count): a live object (`inner` holds it); the GIL is held.
                if inner.pid == crate::pid::current()
                    && unsafe { pyo3::ffi::Py_REFCNT(b.as_ptr()) } == 1
                    && b.bind(py)
                        .try_borrow_mut()
                        .is_ok_and(|mut blk| blk.reset(a, &lock, timeout))
                {
                    return Ok(b.clone_ref(py));
                }
            }
        }
        let b = Py::new(py, ArrayBlock::new(self.get(py)?, lock, timeout))?;
        let before = self.inner().block.replace(b.clone_ref(py));
        drop(before); // outside the mutex
        Ok(b)
    }
}

fn closed(py: Python<'_>) -> PyErr {
    raise(py, "Error", "this ndring.SharedArray is closed".into())
}

#[pymethods]
impl SharedArray {
    /// Creates the shared array `name`, zero-filled, and attaches to it. The last handle out
    /// (in any process) removes the name, unless `keep`.
    #[staticmethod]
    #[pyo3(signature = (name, shape, dtype=None, keep=false, spin=None))]
    fn create(
        py: Python<'_>,
        #[pyo3(from_py_with = args::name)] name: String,
        shape: &Bound<'_, PyAny>,
        dtype: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = args::keep)] keep: bool,
        #[pyo3(from_py_with = args::spin)] spin: Option<u32>,
    ) -> PyResult<Self> {
        let shape = args::shape(shape)?;
        let t = match dtype {
            Some(d) if !d.is_none() => parse_dtype(py, d)?,
            _ => DType::F64,
        };
        crate::element::descr(py, t)?;
        let config = Config::array().keep(keep).spin(spin.unwrap_or(PY_SPIN));
        let a = with_dtype!(t, T => erase(
            ndring::SharedArray::<T, IxDyn>::create(&name, IxDyn(&shape), &config).py(py)?));
        Ok(SharedArray::new(a, true))
    }

    /// Creates the shared array `name` holding a copy of `data` (any numpy array, any strides;
    /// its shape and dtype), and attaches to it.
    #[staticmethod]
    #[pyo3(signature = (name, data, keep=false, spin=None))]
    fn from_array(
        py: Python<'_>,
        #[pyo3(from_py_with = args::name)] name: String,
        data: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = args::keep)] keep: bool,
        #[pyo3(from_py_with = args::spin)] spin: Option<u32>,
    ) -> PyResult<Self> {
        let data = py.import("numpy")?.getattr("asarray")?.call1((data,))?;
        let shape = data.getattr("shape")?;
        let dtype = data.getattr("dtype")?;
        let sa = Self::create(py, name, &shape, Some(&dtype), keep, spin)?;
        let a = sa.get(py)?;
        let held = block::take(py, &a, &Lock::Write, None)?;
        a.copy_in(&held, &data)?;
        drop(held);
        Ok(sa)
    }

    /// Attaches to the shared array `name`; shape and dtype come from its header and are checked
    /// against `shape` and `dtype` where given (`ndring.Mismatch`). `timeout`: seconds to wait
    /// for it to be created (None: fail at once with NotFound).
    #[staticmethod]
    #[pyo3(signature = (name, timeout=None, shape=None, dtype=None))]
    fn open(
        py: Python<'_>,
        #[pyo3(from_py_with = args::name)] name: String,
        #[pyo3(from_py_with = args::timeout)] timeout: Option<f64>,
        shape: Option<&Bound<'_, PyAny>>,
        dtype: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let shape = match shape {
            Some(s) if !s.is_none() => Some(args::shape(s)?),
            _ => None,
        };
        let dtype = match dtype {
            Some(d) if !d.is_none() => Some(parse_dtype(py, d)?),
            _ => None,
        };
        let a = attach(py, &name, timeout, shape.as_deref(), dtype)?;
        Ok(SharedArray::new(a, false))
    }

    /// What a pickled handle becomes where it is unpickled (through
    /// `ndring._open_shared_array`): attached by name, checked against the shape and dtype it
    /// was pickled with. The dtype is numpy's name of it, read without numpy: in a freshly
    /// forked pool worker each Python object touched costs a copy-on-write fault, and parsing
    /// it through `numpy.dtype` took half of the first attach.
    #[staticmethod]
    fn _from_pickle(
        py: Python<'_>,
        name: String,
        shape: Vec<usize>,
        dtype: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let t = match dtype
            .cast::<pyo3::types::PyString>()
            .ok()
            .and_then(|s| crate::element::from_numpy_name(s.to_cow().ok()?.as_ref()))
        {
            Some(t) => t,
            None => parse_dtype(py, dtype)?,
        };
        let a = attach(py, &name, None, Some(&shape), Some(t))?;
        Ok(SharedArray::new(a, false))
    }

    /// The array's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The array's shape.
    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.shape)
    }

    /// The element type, as a numpy dtype.
    #[getter]
    fn dtype<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(crate::element::descr(py, self.dtype)?.into_any())
    }

    /// Whether this handle created the array.
    #[getter]
    fn owner(&self) -> bool {
        self.inner().owner
    }

    /// How many writes have ended (whole-array and row writes).
    #[getter]
    fn version(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.get(py)?.version())
    }

    /// Whether a writer died holding the lock since the last `clear_poison()`.
    #[getter]
    fn poisoned(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.get(py)?.is_poisoned())
    }

    /// Declares the array consistent again after a writer died holding its lock (for every
    /// process): `read()` and `write()` stop raising `ndring.Poisoned`.
    fn clear_poison(&self, py: Python<'_>) -> PyResult<()> {
        self.get(py)?.clear_poison();
        Ok(())
    }

    /// Whether the name stays when the last handle detaches (for every process).
    #[setter]
    fn set_keep(&self, py: Python<'_>, keep: &Bound<'_, PyAny>) -> PyResult<()> {
        let keep = args::keep(keep)?;
        self.get(py)?.set_keep(keep);
        Ok(())
    }

    /// A writable numpy array over the shared memory, without any lock (as with
    /// `multiprocessing.shared_memory`). Its base keeps the mapping alive: it stays valid after
    /// `close()`.
    fn as_array<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let a = self.get(py)?;
        let (descr, ptr) = (a.descr(py)?, a.ptr());
        let base = Bound::new(py, ArrayMapping::new(a))?.into_any();
        // SAFETY: `ptr` is the array's first element in a mapping that `base` (the array's base
        // object) keeps attached; the elements are `shape`'s, aligned. Other processes may write
        // them at any time: numpy reads and writes them as any shared buffer, outside Rust.
        unsafe { crate::views::numpy_over(py, descr, ptr, &self.shape, true, base) }
    }

    /// `with sa.read() as a:` a read-only array under the shared lock, for the block.
    #[pyo3(signature = (timeout=None))]
    fn read(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = args::timeout)] timeout: Option<f64>,
    ) -> PyResult<Py<ArrayBlock>> {
        self.block(py, Lock::Read, timeout)
    }

    /// `with sa.write() as a:` a writable array under the exclusive lock, for the block;
    /// `rows=slice(i, j)`: those rows only, beside writers of other rows.
    #[pyo3(signature = (rows=None, timeout=None))]
    fn write(
        &self,
        py: Python<'_>,
        rows: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = args::timeout)] timeout: Option<f64>,
    ) -> PyResult<Py<ArrayBlock>> {
        let lock = match rows {
            Some(r) if !r.is_none() => Lock::Rows(rows_of(r, &self.shape)?),
            _ => Lock::Write,
        };
        self.block(py, lock, timeout)
    }

    /// Sleeps until the version differs from `version` (a write ended since); returns the new
    /// version. `ndring.Timeout` after `timeout` seconds.
    #[pyo3(signature = (version, timeout=None))]
    fn wait_changed(
        &self,
        py: Python<'_>,
        version: u64,
        #[pyo3(from_py_with = args::timeout)] timeout: Option<f64>,
    ) -> PyResult<u64> {
        let a = self.get(py)?;
        crate::handles::wait(py, timeout, |slice| a.wait_changed(version, slice))
    }

    /// Detaches this handle (arrays from `as_array()` stay valid, and keep the process attached
    /// until they are gone). The last handle out removes the name, unless kept.
    fn close(&self, py: Python<'_>) {
        let (a, block) = {
            let mut inner = self.inner();
            let a = inner.array.take();
            if inner.pid != crate::pid::current() {
                std::mem::forget(a);
                return;
            }
            (a, inner.block.take())
        };
        // The kept block's clone of the handle too (outside the mutex: it may free arrays).
        drop(block);
        drop(a);
        retained::closed(py, &self.name);
    }

    /// Unmaps the arrays this process opened and has closed every handle of. A process keeps
    /// the mappings of up to 8 of them after their handles close, so that a pool worker that
    /// attaches for every task maps the array once; each is dropped when its name is removed
    /// and this process notices (its next open of another array, a close of that name) or at
    /// exit. Returns how many were unmapped.
    #[staticmethod]
    fn release_mappings(py: Python<'_>) -> usize {
        retained::release(py)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> bool {
        self.close(py);
        false
    }

    /// Pickles to its name: unpickled (in a pool worker), it attaches by name.
    #[allow(clippy::type_complexity)]
    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(
        Bound<'py, PyAny>,
        (String, Bound<'py, PyTuple>, &'static str),
    )> {
        let open = py.import("ndring")?.getattr("_open_shared_array")?;
        let shape = PyTuple::new(py, &self.shape)?;
        let dtype = crate::element::numpy_name(self.dtype);
        Ok((open, (self.name.clone(), shape, dtype)))
    }

    fn __repr__(&self) -> String {
        let state = match &self.inner().array {
            Some(a) => format!("version={}", a.version()),
            None => "closed".into(),
        };
        format!(
            "ndring.SharedArray(name={:?}, shape={}, dtype={}, {state})",
            self.name,
            tuple(&self.shape),
            dtype_label(self.dtype)
        )
    }
}

//! `with sa.read() as a:` and `with sa.write() as a:`: a lock held for a block, and the numpy
//! array over the memory it covers, which cannot reach that memory once the block is over.
//!
//! As for a claim (`leases::Claim`): the array the block gets is a view of an array whose base
//! (`HeldLock`) holds the lock. At the end of the block the view is emptied and cut from that
//! base; if any other view of it survives (a slice, a memoryview, a second name), `__exit__`
//! raises `BufferError` and the lock stays held until they are all gone, so that none of them
//! ever reads or writes the array outside the lock.

use std::sync::{Arc, Mutex};

use pyo3::exceptions::{PyBufferError, PyRuntimeError};
use pyo3::prelude::*;

use super::typed::{AnyShared, Held, Lock, numpy_over};
use crate::errors::raise;
use crate::leases::{give_dimension, make_read_only, revoke};

/// The base object of the array a block hands out: it holds the lock, released when the block
/// ends with no view left, else when the last view goes.
#[pyclass(module = "ndring", frozen)]
pub struct HeldLock {
    held: Mutex<Option<Held>>,
    /// The process that took the lock: a forked child's copy must not release it.
    pid: u32,
}

impl HeldLock {
    fn release(&self) {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(held) = held {
            crate::fork::guard_gone(held.ptr);
            if crate::pid::current() == self.pid {
                drop(held); // unlocks
            } else {
                std::mem::forget(held); // the parent's lock
            }
        }
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        self.release();
    }
}

/// A lock to take for a `with` block: `sa.read()`, `sa.write()`, `sa.write(rows=...)`.
#[pyclass(module = "ndring")]
pub struct ArrayBlock {
    array: Option<Arc<dyn AnyShared>>,
    lock: Lock,
    timeout: Option<f64>,
    /// The lock's holder, the array over the memory (base: `holder`) and the view handed to the
    /// `with` target (base: `array`).
    holder: Option<Py<HeldLock>>,
    base: Option<Py<PyAny>>,
    view: Option<Py<PyAny>>,
    entered: bool,
}

impl ArrayBlock {
    pub fn new(array: Arc<dyn AnyShared>, lock: Lock, timeout: Option<f64>) -> Self {
        ArrayBlock {
            array: Some(array),
            lock,
            timeout,
            holder: None,
            base: None,
            view: None,
            entered: false,
        }
    }

    fn writable(&self) -> bool {
        !matches!(self.lock, Lock::Read)
    }
}

/// Takes `lock` on `array` without the GIL, in slices that let Ctrl-C through.
pub fn take(
    py: Python<'_>,
    array: &Arc<dyn AnyShared>,
    lock: &Lock,
    timeout: Option<f64>,
) -> PyResult<Held> {
    crate::handles::wait(py, timeout, |slice| array.clone().lock(lock, slice))
}

/// A numpy array over what `held` covers, with a `HeldLock` owning `held` as its base.
pub fn array_of<'py>(
    py: Python<'py>,
    array: &Arc<dyn AnyShared>,
    held: Held,
    writable: bool,
) -> PyResult<(Bound<'py, PyAny>, Py<HeldLock>)> {
    let (ptr, shape) = (held.ptr, held.shape.clone());
    let descr = array.descr(py)?;
    crate::fork::guard_made(ptr);
    let holder = Py::new(
        py,
        HeldLock {
            held: Mutex::new(Some(held)),
            pid: crate::pid::current(),
        },
    )?;
    // SAFETY: `ptr` is the first of `shape`'s elements the lock covers, in the segment's mapping
    // (kept by the handle the guard holds); the lock, held by `holder` (the base) for as long as
    // the array or any view of it lives, keeps other writers out (and, read-only, is shared).
    let a = unsafe {
        numpy_over(
            py,
            descr,
            ptr,
            &shape,
            writable,
            holder.bind(py).clone().into_any(),
        )?
    };
    Ok((a, holder))
}

#[pymethods]
impl ArrayBlock {
    /// Takes the lock (waiting at most `timeout` seconds, `ndring.Timeout`), and returns the
    /// array over the memory it covers: read-only for `read()`, writable for `write()`.
    fn __enter__(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if self.entered {
            return Err(PyRuntimeError::new_err(
                "this block was already entered: call read() or write() again for another",
            ));
        }
        self.entered = true;
        let Some(array) = self.array.take() else {
            return Err(PyRuntimeError::new_err("this block is finished"));
        };
        let held = take(py, &array, &self.lock, self.timeout)?;
        let (base, holder) = array_of(py, &array, held, self.writable())?;
        let view = base.call_method0("view")?;
        self.holder = Some(holder);
        self.base = Some(base.unbind());
        self.view = Some(view.clone().unbind());
        Ok(view.unbind())
    }

    /// Releases the lock (a write moves the version), unless a view of the array survives the
    /// block: `BufferError` then, and the lock is released once they are all gone.
    #[pyo3(signature = (exc_type=None, _exc=None, _tb=None))]
    fn __exit__(
        &mut self,
        py: Python<'_>,
        exc_type: Option<Bound<'_, PyAny>>,
        _exc: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let (Some(base), Some(view), Some(holder)) =
            (self.base.take(), self.view.take(), self.holder.take())
        else {
            return Err(PyRuntimeError::new_err("this block was not entered"));
        };
        let (base, view) = (base.into_bound(py), view.into_bound(py));
        let failed = exc_type.is_some_and(|t| !t.is_none());
        let pid = holder.get().pid;
        if pid != crate::pid::current() {
            // A child forked inside the block: its array is a private copy (`fork`), and the
            // lock is the parent's (the holder forgets it here).
            let reshaped = give_dimension(&view).is_ok();
            let _ = revoke(&view, reshaped);
            make_read_only(&base);
            if self.writable() && !failed {
                return Err(raise(
                    py,
                    "Error",
                    format!(
                        "this write() block was entered in process {pid}: in this forked child \
                         its array was a private copy, so what the block wrote is not in the \
                         shared array; open the array in the child (or pass the handle) and \
                         write there"
                    ),
                ));
            }
            return Ok(false);
        }
        // As in `Claim::__exit__`: a 0-d target gets a dimension first (Python code may run);
        // from the reference count on, no Python code runs until the lock is released.
        let reshaped = give_dimension(&view);
        // Expected: `base` is held here and by `view`'s base; `view` here and by the `with`
        // target. Anything more is a view, slice or exported buffer that would outlive the lock.
        // SAFETY: both pointers are live objects (we hold references); the GIL is held.
        let (refs_base, refs_view) = unsafe {
            (
                pyo3::ffi::Py_REFCNT(base.as_ptr()),
                pyo3::ffi::Py_REFCNT(view.as_ptr()),
            )
        };
        let views_alive = refs_base > 2 || refs_view > 2;
        let emptied = revoke(&view, refs_view <= 2 && reshaped.is_ok());
        make_read_only(&base);
        if views_alive || !emptied {
            // The holder keeps the lock until those views are gone.
            if failed {
                return Ok(false);
            }
            let err = PyBufferError::new_err(if views_alive {
                "a view of the array (a slice, a reshaped or transposed array, a memoryview, or \
                 a second name bound to it) is still alive after the with block: the lock stays \
                 held until they are all gone (copy what must outlive the block)"
            } else {
                "the with target is a 0-d array that numpy would not empty (reshape to (1,) \
                 failed): the lock stays held until the target is gone"
            });
            if let Err(cause) = reshaped {
                err.set_cause(py, Some(cause));
            }
            return Err(err);
        }
        holder.get().release();
        Ok(false)
    }
}

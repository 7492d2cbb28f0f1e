//! `with sa.read() as a:` and `with sa.write() as a:`: a lock held for a block, and the numpy
//! array over the memory it covers, which cannot reach that memory once the block is over.
//!
//! As for a claim (`leases::Claim`): the array the block gets is a view of an array whose base
//! (`HeldLock`) holds the lock. At the end of the block the view is emptied and cut from that
//! base; if any other view of it survives (a slice, a memoryview, a second name), `__exit__`
//! raises `BufferError` and the lock stays held until they are all gone, so that none of them
//! ever reads or writes the array outside the lock.
//!
//! An uncontended block costs about what a `threading.Lock` block does, because nothing is
//! allocated once a handle has run one block: `SharedArray` hands the same `ArrayBlock` out again
//! once nothing else refers to it, and a whole-array block keeps its `HeldLock` and the array
//! over the whole memory (idle: the lock released, read-only, referred to by nothing but the
//! block) and the views it handed out (emptied and cut), which it makes the next block's array
//! again once nothing else refers to them. The lock is first tried with the GIL held: only a
//! wait releases it.

use std::ffi::c_int;
use std::mem::ManuallyDrop;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use numpy::PyArrayDescr;
use numpy::npyffi::{NPY_ARRAY_WRITEABLE, PyArrayObject, npy_intp};
use pyo3::exceptions::{PyBufferError, PyRuntimeError};
use pyo3::prelude::*;

use super::typed::{AnyShared, Held, Lock};
use crate::errors::{IntoPy, raise};
use crate::views::numpy_over;
use crate::views::{give_dimension, make_read_only, revoke};

/// The base object of the array a block hands out: it holds the lock, released when the block
/// ends with no view left, else when the last view goes.
#[pyclass(module = "ndring", frozen)]
pub struct HeldLock {
    held: Mutex<Option<Held>>,
    /// The process that took the lock: a forked child's copy must not release it.
    pid: u32,
}

impl HeldLock {
    fn new() -> Self {
        HeldLock {
            held: Mutex::new(None),
            pid: crate::pid::current(),
        }
    }

    /// Keeps `held` (just taken) until `release`.
    fn hold(&self, held: Held) {
        crate::fork::guard_made(held.ptr);
        let before = self
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(held);
        // A holder is only given a lock when idle (released, or new).
        debug_assert!(before.is_none());
        if let Some(before) = before {
            crate::fork::guard_gone(before.ptr);
        }
    }

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

/// A block's objects while it runs: the lock's holder, the array over the memory (base:
/// `holder`) and the view handed to the `with` target (base: `base`).
struct Current {
    holder: Py<HeldLock>,
    base: Py<PyAny>,
    view: Py<PyAny>,
}

/// A whole-array block's holder and base array between blocks: the lock released, the array
/// read-only, referred to by the block alone (the views of the last block were cut from it).
struct Idle {
    holder: Py<HeldLock>,
    base: Py<PyAny>,
}

/// What a new view over the whole array looks like (`PyArray_NewFromDescr`'s choice, the same
/// for every one): a spare view is made the block's array again only if it still is so.
struct Template {
    /// Its flags, without WRITEABLE.
    flags: c_int,
    strides: Vec<npy_intp>,
}

/// Views kept from earlier blocks: two, so that `with sa.read() as a:` in a loop finds the view
/// of the block before last free (the last one is still bound to `a` when the next block starts).
const SPARES: usize = 2;

/// A lock to take for a `with` block: `sa.read()`, `sa.write()`, `sa.write(rows=...)`.
#[pyclass(module = "ndring")]
pub struct ArrayBlock {
    /// The handle; in a forked child, the parent's (`Drop` forgets it there).
    array: ManuallyDrop<Arc<dyn AnyShared>>,
    /// The process that made the block.
    pid: u32,
    lock: Lock,
    timeout: Option<f64>,
    entered: bool,
    /// Never entered, or finished with no lock held and no view alive (or its enter failed):
    /// `SharedArray` may hand it out again (`reset`).
    reusable: bool,
    current: Option<Current>,
    idle: Option<Idle>,
    /// Views handed out by earlier whole-array blocks, emptied and cut, oldest first.
    spares: Vec<Py<PyAny>>,
    template: Option<Template>,
    /// numpy's dtype of the elements (held: `revive` compares a view's to it by address).
    descr: Option<Py<PyArrayDescr>>,
}

impl Drop for ArrayBlock {
    fn drop(&mut self) {
        if crate::pid::current() == self.pid {
            // SAFETY: dropped once, here, and never used after.
            unsafe { ManuallyDrop::drop(&mut self.array) };
        }
        // Else a forked child: the handle is the parent's, leaked with its mapping (as
        // `Inner` does).
    }
}

impl ArrayBlock {
    pub fn new(array: Arc<dyn AnyShared>, lock: Lock, timeout: Option<f64>) -> Self {
        ArrayBlock {
            array: ManuallyDrop::new(array),
            pid: crate::pid::current(),
            lock,
            timeout,
            entered: false,
            reusable: true,
            current: None,
            idle: None,
            spares: Vec::new(),
            template: None,
            descr: None,
        }
    }

    /// Makes a finished block (one nothing else refers to: the caller checked) a new one for
    /// `lock` on `array`; false if it cannot be (not finished cleanly, another handle or
    /// process).
    pub fn reset(&mut self, array: &Arc<dyn AnyShared>, lock: &Lock, timeout: Option<f64>) -> bool {
        let same = std::ptr::addr_eq(Arc::as_ptr(&self.array), Arc::as_ptr(array));
        if !self.reusable || !same || self.pid != crate::pid::current() {
            return false;
        }
        self.entered = false;
        self.lock = lock.clone();
        self.timeout = timeout;
        true
    }

    fn writable(&self) -> bool {
        !matches!(self.lock, Lock::Read)
    }

    fn descr<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyArrayDescr>> {
        if let Some(d) = &self.descr {
            return Ok(d.bind(py).clone());
        }
        let d = self.array.descr(py)?;
        self.descr = Some(d.clone().unbind());
        Ok(d)
    }

    /// The objects of a block over what `held` covers: the idle ones of the last whole-array
    /// block where it can (`whole`), else new ones.
    fn objects(&mut self, py: Python<'_>, held: Held, whole: bool) -> PyResult<Current> {
        let writable = self.writable();
        // The shape: the handle's for the whole array (a slice, no copy on this path).
        let array = Arc::clone(&self.array);
        let rows = held.rows.clone();
        let (ptr, shape) = (held.ptr, rows.as_deref().unwrap_or(array.shape()));
        // The idle base only if the block alone refers to it and it is as it was made (its
        // layout could have been changed through a view's `base` during an earlier block).
        // None for a 0-d array (`as_made` needs a dimension): a new one each time.
        let first = shape.first().copied().unwrap_or(0);
        let idle = (if whole { self.idle.take() } else { None }).filter(|i| {
            let (Some(t), Some(descr)) = (&self.template, &self.descr) else {
                return false;
            };
            // SAFETY: `base` is a live ndarray made by `numpy_over`; the GIL is held.
            unsafe {
                pyo3::ffi::Py_REFCNT(i.base.as_ptr()) == 1
                    && as_made(&i.base, ptr, shape, first, descr, &t.strides, true)
            }
        });
        let (holder, base) = match idle {
            Some(Idle { holder, base }) => {
                holder.get().hold(held);
                // The lock `base` is over is held again (by `holder`, its base), shared for a read
                // (read-only then: numpy checks a view's base before letting it become writable).
                // SAFETY: `base` is an ndarray this block made (`numpy_over`), referred to by the
                // block alone (count 1: no view, no other name); the GIL is held.
                unsafe { set_writeable(&base, writable) };
                (holder, base)
            }
            None => {
                let holder = Py::new(py, HeldLock::new())?;
                holder.get().hold(held);
                let descr = self.descr(py)?;
                // The lock, held by `holder` (the base) for as long as the array or any view of
                // it lives, keeps other writers out (and, read-only, is shared).
                // SAFETY: `ptr` is the first of `shape`'s elements the lock covers, in the
                // segment's mapping (kept by the handle the lock holds); see above.
                let base = unsafe {
                    numpy_over(
                        py,
                        descr,
                        ptr,
                        shape,
                        writable,
                        holder.bind(py).clone().into_any(),
                    )?
                };
                (holder, base.unbind())
            }
        };
        let view = match self.spare(py, ptr, shape, writable, &base, whole) {
            Some(v) => v,
            None => {
                let descr = self.descr(py)?;
                // SAFETY: as for `base`: the same memory, under the same lock, which `base` (this
                // array's base) keeps held through `holder`.
                let view = unsafe {
                    numpy_over(
                        py,
                        descr,
                        ptr,
                        shape,
                        writable,
                        base.bind(py).clone().into_any(),
                    )?
                };
                if whole && self.template.is_none() {
                    // SAFETY: an ndarray just made, not yet shared; `strides` holds `nd` entries.
                    self.template = Some(unsafe {
                        let f = &(*view.as_ptr().cast::<PyArrayObject>()).fields;
                        Template {
                            flags: f.flags & !NPY_ARRAY_WRITEABLE,
                            strides: std::slice::from_raw_parts(f.strides, f.nd as usize).to_vec(),
                        }
                    });
                }
                view.unbind()
            }
        };
        Ok(Current { holder, base, view })
    }

    /// A view of an earlier block made the array over `shape`'s elements from `ptr` again, with
    /// `base` as its base: the first spare that nothing else refers to and that is as
    /// `revoke` left a view of the template.
    fn spare(
        &mut self,
        py: Python<'_>,
        ptr: usize,
        shape: &[usize],
        writable: bool,
        base: &Py<PyAny>,
        whole: bool,
    ) -> Option<Py<PyAny>> {
        if !whole || shape.is_empty() {
            return None;
        }
        let (t, descr) = (self.template.as_ref()?, self.descr.as_ref()?);
        let i = self.spares.iter().position(|v| {
            // SAFETY: a live ndarray (spares are views made by `objects`; an ndarray's type
            // cannot be changed from Python); the GIL is held.
            unsafe {
                pyo3::ffi::Py_REFCNT(v.as_ptr()) == 1 // not bound, no view of it alive
                    && as_made(v, ptr, shape, 0, descr, &t.strides, false)
            }
        })?;
        let view = self.spares.remove(i);
        // `view` is over `ptr` with the template's dtype, strides and dimensions but the first,
        // which `revoke` set to 0: giving it back the first dimension, the template's flags and
        // a base makes it what `numpy_over` would make over the same memory.
        // SAFETY: the checks above: `view` is referred to by nothing but this block (count 1, no
        // weak reference), has no base and was seen by nobody since it was emptied; GIL held.
        unsafe {
            let f = &mut (*view.as_ptr().cast::<PyArrayObject>()).fields;
            *f.dimensions = shape[0] as npy_intp;
            f.flags = t.flags | if writable { NPY_ARRAY_WRITEABLE } else { 0 };
            f.base = base.clone_ref(py).into_ptr();
        }
        Some(view)
    }
}

/// Whether `array` is over `shape`'s elements of `descr` from `ptr` with `strides`, but for a
/// first dimension of `first`, with no weak reference and with a base only if `based`: as
/// `numpy_over` made it (and `revoke` left it, for a view: first dimension 0, no base), whatever
/// the code that had it did since (a new shape, dtype or strides; a weak reference, through
/// which it could be reached without the reference count showing it).
///
/// # Safety
/// `array` is a live ndarray; the GIL is held.
unsafe fn as_made(
    array: &Py<PyAny>,
    ptr: usize,
    shape: &[usize],
    first: usize,
    descr: &Py<PyArrayDescr>,
    strides: &[npy_intp],
    based: bool,
) -> bool {
    // SAFETY: per the contract; `dimensions` and `strides` hold `nd` entries (read once `nd`
    // is known to be `shape.len()` > 0).
    unsafe {
        let f = &(*array.as_ptr().cast::<PyArrayObject>()).fields;
        if shape.is_empty()
            || f.nd as usize != shape.len()
            || f.data as usize != ptr
            || f.base.is_null() == based
            || !f.weakreflist.is_null()
            || f.descr.cast::<pyo3::ffi::PyObject>() != descr.as_ptr()
        {
            return false;
        }
        let dims = std::slice::from_raw_parts(f.dimensions, shape.len());
        dims[0] as usize == first
            && dims[1..]
                .iter()
                .zip(&shape[1..])
                .all(|(&d, &n)| d as usize == n)
            && std::slice::from_raw_parts(f.strides, shape.len()) == strides
    }
}

/// Sets or clears an array's WRITEABLE flag.
///
/// # Safety
/// `array` is an ndarray nothing else refers to, whose memory may be written if `writable`; the
/// GIL is held.
unsafe fn set_writeable(array: &Py<PyAny>, writable: bool) {
    // SAFETY: per the contract.
    let f = unsafe { &mut (*array.as_ptr().cast::<PyArrayObject>()).fields };
    if writable {
        f.flags |= NPY_ARRAY_WRITEABLE;
    } else {
        f.flags &= !NPY_ARRAY_WRITEABLE;
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
        self.reusable = false;
        let array: &Arc<dyn AnyShared> = &self.array;
        // One attempt with the GIL held: uncontended, it succeeds, and releasing and retaking
        // the GIL would cost more than the lock. Only a wait releases it.
        let held = match array.clone().lock(&self.lock, Duration::ZERO) {
            Err(ndring::Error::Timeout) => take(py, array, &self.lock, self.timeout),
            r => r.py(py),
        };
        // A failed enter leaves nothing held: the block may be handed out again.
        let held = held.inspect_err(|_| self.reusable = true)?;
        let whole = !matches!(self.lock, Lock::Rows(_));
        let current = self.objects(py, held, whole)?;
        let view = current.view.clone_ref(py);
        self.current = Some(current);
        Ok(view)
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
        let Some(Current { holder, base, view }) = self.current.take() else {
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
        self.reusable = true;
        // SAFETY: `base` is a live ndarray; the GIL is held.
        let weak = unsafe {
            !(*base.as_ptr().cast::<PyArrayObject>())
                .fields
                .weakreflist
                .is_null()
        };
        if !matches!(self.lock, Lock::Rows(_)) && !weak {
            // `view` was cut from `base` (count 2 at most, checked above): the block alone
            // refers to `base` now. (One with a weak reference goes now, as before this path
            // existed: kept idle, the reference could reach it after the block.)
            self.idle = Some(Idle {
                holder,
                base: base.unbind(),
            });
            if self.spares.len() == SPARES {
                self.spares.remove(0);
            }
            self.spares.push(view.unbind());
        }
        Ok(false)
    }
}

//! `ndring.Lease`, the base object of every received array, as a plain CPython type rather than
//! a `#[pyclass]`: one is made and freed per received item, and pyo3's generic path (the base
//! type's `tp_new` with an empty argument tuple on creation; a panic-catching trampoline and
//! type-slot lookups on destruction) cost ~20 ns of the ~0.3 us a 64-byte item costs a Python
//! consumer (`python/bench/per_item.py`). Made with `PyType_FromSpec` (stable ABI), allocated
//! with `PyType_GenericAlloc`, freed with `PyObject_Free`.

use std::ffi::{c_char, c_int, c_void};
use std::mem::ManuallyDrop;

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use crate::frame::Frame;

/// The object's layout: a Python object header, then what it owns. Only `new_lease` makes one.
/// From Python 3.10 on, the type is immutable and cannot be instantiated (`make_type`). On 3.9
/// those flags do not exist: a user could still set `Lease.__new__` and get a zeroed object
/// from `object.__new__(Lease)`. Such an object has `pid` 0 (never a process id), which every
/// accessor checks (`frame`) and `dealloc` never drops.
#[repr(C)]
struct LeaseObject {
    ob_base: ffi::PyObject,
    /// Dropped by `dealloc`, in the process that received it only.
    frame: ManuallyDrop<Frame>,
    /// The process that received it: a forked child's copy must not release the parent's slot.
    /// 0 in a zeroed object that `new_lease` did not make (Python 3.9, see above).
    pid: u32,
}

static TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// The `ndring.Lease` type (made once).
pub fn lease_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    TYPE.get_or_try_init(py, || make_type(py))
        .map(|t| t.bind(py))
}

/// A new `Lease` owning `frame`.
pub fn new_lease(py: Python<'_>, frame: Frame) -> PyResult<Bound<'_, PyAny>> {
    let ty = lease_type(py)?;
    // SAFETY: `ty` is the `Lease` type (basic size: a `LeaseObject`, no items); the GIL is held.
    // `PyType_GenericAlloc` returns zeroed memory with the header set (and a reference to the
    // type taken), which we fill before anyone else sees it.
    unsafe {
        let obj = ffi::PyType_GenericAlloc(ty.as_type_ptr(), 0);
        if obj.is_null() {
            return Err(PyErr::fetch(py));
        }
        let this = obj.cast::<LeaseObject>();
        std::ptr::addr_of_mut!((*this).frame).write(ManuallyDrop::new(frame));
        std::ptr::addr_of_mut!((*this).pid).write(crate::pid::current());
        crate::fork::view_made();
        Ok(Bound::from_owned_ptr(py, obj))
    }
}

/// The frame of `obj`, a `Lease`; `None` (with a `TypeError` raised) if it was not made by
/// `new_lease` (a zeroed object, see `LeaseObject`).
///
/// # Safety
/// `obj` is a live object of the `Lease` type (the getters' and `repr`'s receiver, which
/// CPython checks), at least zeroed (`PyType_GenericAlloc`); the GIL is held.
unsafe fn frame<'a>(obj: *mut ffi::PyObject) -> Option<&'a Frame> {
    // SAFETY: per the contract, `obj` points to a `LeaseObject`-sized, at least zeroed block.
    // `pid` is non-zero only once `new_lease` has written the frame.
    unsafe {
        let this = obj.cast::<LeaseObject>();
        if (*this).pid != 0 {
            return Some(&(*this).frame);
        }
        let py = Python::assume_attached();
        PyTypeError::new_err("this ndring.Lease was not made by recv (uninitialised)").restore(py);
        None
    }
}

unsafe extern "C" fn dealloc(obj: *mut ffi::PyObject) {
    // Called once, by CPython, when the last reference to a `Lease` goes (the GIL held); the
    // frame was written by `new_lease` and is never used after. The object was allocated by
    // `PyType_GenericAlloc` (pymalloc, not GC-tracked: no `Py_TPFLAGS_HAVE_GC`), so
    // `PyObject_Free` frees it; instances of heap types hold a reference to their type.
    // SAFETY: `obj` is a live `LeaseObject` dropped exactly once, freed by its allocator's pair.
    unsafe {
        let this = obj.cast::<LeaseObject>();
        if crate::pid::current() == (*this).pid {
            ManuallyDrop::drop(&mut (*this).frame);
        }
        if (*this).pid != 0 {
            crate::fork::view_gone();
        }
        // Else a forked child: the slot is the parent's to release; the frame is leaked. Or a
        // zeroed object (`pid` 0, Python 3.9): there is no frame to drop.
        let ty = ffi::Py_TYPE(obj);
        ffi::PyObject_Free(obj.cast());
        ffi::Py_DECREF(ty.cast());
    }
}

unsafe extern "C" fn get_seq(obj: *mut ffi::PyObject, _: *mut c_void) -> *mut ffi::PyObject {
    // SAFETY: `obj` is a `Lease` (CPython checks the descriptor's type); the GIL is held.
    unsafe {
        match frame(obj) {
            Some(f) => ffi::PyLong_FromUnsignedLongLong(f.info().seq()),
            None => std::ptr::null_mut(),
        }
    }
}

unsafe extern "C" fn get_timestamp_ns(
    obj: *mut ffi::PyObject,
    _: *mut c_void,
) -> *mut ffi::PyObject {
    // SAFETY: as in `get_seq`.
    unsafe {
        let Some(f) = frame(obj) else {
            return std::ptr::null_mut();
        };
        match f.info().timestamp_ns() {
            Some(t) => ffi::PyLong_FromUnsignedLongLong(t),
            None => {
                let none = ffi::Py_None();
                ffi::Py_INCREF(none);
                none
            }
        }
    }
}

unsafe extern "C" fn get_meta(obj: *mut ffi::PyObject, _: *mut c_void) -> *mut ffi::PyObject {
    // SAFETY: as in `get_seq`; `meta` is a live byte slice of at most the ring's metadata size.
    unsafe {
        let Some(f) = frame(obj) else {
            return std::ptr::null_mut();
        };
        let meta = f.info().meta();
        ffi::PyBytes_FromStringAndSize(meta.as_ptr().cast::<c_char>(), meta.len() as isize)
    }
}

unsafe extern "C" fn repr(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: as in `get_seq`.
    let Some(f) = (unsafe { frame(obj) }) else {
        return std::ptr::null_mut();
    };
    let s = format!("ndring.Lease(seq={})", f.info().seq());
    // SAFETY: `s` is valid UTF-8 of that length.
    unsafe { ffi::PyUnicode_FromStringAndSize(s.as_ptr().cast::<c_char>(), s.len() as isize) }
}

/// `Lease()` from Python, on 3.9 (3.10+ drops `tp_new` for `DISALLOW_INSTANTIATION`).
unsafe extern "C" fn new(
    _: *mut ffi::PyTypeObject,
    _: *mut ffi::PyObject,
    _: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: called by CPython with the GIL held; raising needs nothing else.
    let py = unsafe { Python::assume_attached() };
    PyTypeError::new_err("ndring.Lease objects are made by recv, not directly").restore(py);
    std::ptr::null_mut()
}

/// The getters table, read by CPython for as long as the type lives (the process).
struct GetSet([ffi::PyGetSetDef; 4]);
// SAFETY: only static strings and function pointers, never written.
unsafe impl Sync for GetSet {}

static GETSET: GetSet = GetSet([
    ffi::PyGetSetDef {
        name: c"seq".as_ptr(),
        get: Some(get_seq),
        set: None,
        doc: c"The item's sequence number (1-based position in the stream).".as_ptr(),
        closure: std::ptr::null_mut(),
    },
    ffi::PyGetSetDef {
        name: c"timestamp_ns".as_ptr(),
        get: Some(get_timestamp_ns),
        set: None,
        doc: c"CLOCK_MONOTONIC nanoseconds at publish (compare with ndring.now_ns()), or None \
on rings created without timestamps=True."
            .as_ptr(),
        closure: std::ptr::null_mut(),
    },
    ffi::PyGetSetDef {
        name: c"meta".as_ptr(),
        get: Some(get_meta),
        set: None,
        doc: c"The user metadata bytes published with the item (send(..., meta=b\"...\"))."
            .as_ptr(),
        closure: std::ptr::null_mut(),
    },
    ffi::PyGetSetDef {
        name: std::ptr::null(),
        get: None,
        set: None,
        doc: std::ptr::null(),
        closure: std::ptr::null_mut(),
    },
]);

const DOC: &std::ffi::CStr = c"The base object of every array recv returns: it owns the received \
slot (or, for broadcast frames, the copy), which goes back to the ring when the array and every \
view of it are gone. ndring.info(array) finds it from any view.";

/// `Py_TPFLAGS_DISALLOW_INSTANTIATION` and `Py_TPFLAGS_IMMUTABLETYPE`, CPython 3.10+ (pyo3's
/// ffi defines them only for builds whose minimum is 3.10; this one's abi3 floor is 3.9).
pub const DISALLOW_INSTANTIATION: std::ffi::c_ulong = 1 << 7;
pub const IMMUTABLETYPE: std::ffi::c_ulong = 1 << 8;

fn make_type(py: Python<'_>) -> PyResult<Py<PyType>> {
    let mut slots = [
        ffi::PyType_Slot {
            slot: ffi::Py_tp_dealloc,
            pfunc: dealloc as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_new,
            pfunc: new as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_repr,
            pfunc: repr as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_getset,
            pfunc: GETSET.0.as_ptr().cast_mut().cast::<c_void>(),
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_doc,
            pfunc: DOC.as_ptr().cast_mut().cast::<c_void>(),
        },
        ffi::PyType_Slot {
            slot: 0,
            pfunc: std::ptr::null_mut(),
        },
    ];
    let mut flags = ffi::Py_TPFLAGS_DEFAULT;
    if py.version_info() >= (3, 10) {
        flags |= IMMUTABLETYPE | DISALLOW_INSTANTIATION;
    }
    let mut spec = ffi::PyType_Spec {
        name: c"ndring.Lease".as_ptr(),
        basicsize: std::mem::size_of::<LeaseObject>() as c_int,
        itemsize: 0,
        // Not a base type: nothing may extend the layout `dealloc` frees. Like a built-in type,
        // immutable (`__new__`, the getters and the rest cannot be replaced or deleted) and not
        // instantiable from Python (`tp_new` becomes NULL, `object.__new__(Lease)` is refused),
        // on the versions that honour those flags. 3.9 has no such flags: there `new` refuses
        // plain calls, and `frame` refuses objects made by going around it.
        flags: flags as _,
        slots: slots.as_mut_ptr(),
    };
    // SAFETY: `spec` and `slots` are valid for the call (CPython copies them; the doc string
    // too); the getters table is static. The GIL is held.
    unsafe {
        let ty = ffi::PyType_FromSpec(&mut spec);
        if ty.is_null() {
            return Err(PyErr::fetch(py));
        }
        Ok(Bound::from_owned_ptr(py, ty)
            .cast_into_unchecked::<PyType>()
            .unbind())
    }
}

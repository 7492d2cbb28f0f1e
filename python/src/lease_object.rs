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

use crate::leases::Frame;

/// The object's layout: a Python object header, then what it owns.
#[repr(C)]
struct LeaseObject {
    ob_base: ffi::PyObject,
    /// Dropped by `dealloc`, in the process that received it only.
    frame: ManuallyDrop<Frame>,
    /// The process that received it: a forked child's copy must not release the parent's slot.
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
        Ok(Bound::from_owned_ptr(py, obj))
    }
}

/// The frame of `obj`, a `Lease`.
///
/// # Safety
/// `obj` is a live `LeaseObject` made by `new_lease` (the getters' and `repr`'s receiver).
unsafe fn frame<'a>(obj: *mut ffi::PyObject) -> &'a Frame {
    unsafe { &(*obj.cast::<LeaseObject>()).frame }
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
        // Else a forked child: the slot is the parent's to release; the frame is leaked.
        let ty = ffi::Py_TYPE(obj);
        ffi::PyObject_Free(obj.cast());
        ffi::Py_DECREF(ty.cast());
    }
}

unsafe extern "C" fn get_seq(obj: *mut ffi::PyObject, _: *mut c_void) -> *mut ffi::PyObject {
    // SAFETY: `obj` is a `Lease` (CPython checks the descriptor's type); the GIL is held.
    unsafe { ffi::PyLong_FromUnsignedLongLong(frame(obj).info().seq()) }
}

unsafe extern "C" fn get_timestamp_ns(
    obj: *mut ffi::PyObject,
    _: *mut c_void,
) -> *mut ffi::PyObject {
    // SAFETY: as in `get_seq`.
    unsafe {
        match frame(obj).info().timestamp_ns() {
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
        let meta = frame(obj).info().meta();
        ffi::PyBytes_FromStringAndSize(meta.as_ptr().cast::<c_char>(), meta.len() as isize)
    }
}

unsafe extern "C" fn repr(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: as in `get_seq`.
    let s = format!("ndring.Lease(seq={})", unsafe { frame(obj) }.info().seq());
    // SAFETY: `s` is valid UTF-8 of that length.
    unsafe { ffi::PyUnicode_FromStringAndSize(s.as_ptr().cast::<c_char>(), s.len() as isize) }
}

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
    let mut spec = ffi::PyType_Spec {
        name: c"ndring.Lease".as_ptr(),
        basicsize: std::mem::size_of::<LeaseObject>() as c_int,
        itemsize: 0,
        // Not a base type: nothing may extend the layout `dealloc` frees.
        flags: ffi::Py_TPFLAGS_DEFAULT as _,
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

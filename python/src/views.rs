//! The numpy arrays made over shared memory, and what is done to them when the memory is given
//! back: made over a pointer with a base object that owns it, viewed, made read-only, emptied
//! and cut from their base (revoked). Used by the queues' leases and claims, the shared array's
//! blocks and request/reply's requests and replies.

use std::ffi::{c_int, c_void};

use numpy::npyffi::{
    self, NPY_ARRAY_WRITEABLE, PY_ARRAY_API, PyArray_Descr, PyArrayObject, npy_intp,
};
use numpy::{PyArrayDescr, PyUntypedArrayMethods};
use pyo3::prelude::*;

/// A numpy array over `shape`'s elements (C order) of `descr` at `ptr`, writable or not, with
/// `base` as its base object (which must keep the memory valid while it lives).
///
/// # Safety
/// `ptr` points to `shape`'s elements of `descr`'s type, aligned, valid for as long as `base`
/// lives; if `writable`, nothing else relies on them not changing.
pub unsafe fn numpy_over<'py>(
    py: Python<'py>,
    descr: Bound<'py, PyArrayDescr>,
    ptr: usize,
    shape: &[usize],
    writable: bool,
    base: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let mut dims: Vec<npy_intp> = shape.iter().map(|&n| n as npy_intp).collect();
    let flags = if writable { NPY_ARRAY_WRITEABLE } else { 0 };
    // numpy's `ndarray` type, a descriptor reference it steals (`into_ptr`), the data per the
    // contract. SAFETY: the base is stored as `read_array` does (no base or owned data before),
    // its reference then the array's; read-only over a base without the buffer protocol stays so.
    unsafe {
        let ty = npyffi::get_type_object(py, npyffi::NpyTypes::PyArray_Type);
        let array = PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            ty,
            descr.into_ptr().cast::<PyArray_Descr>(),
            dims.len() as c_int,
            dims.as_mut_ptr(),
            std::ptr::null_mut(),
            ptr as *mut c_void,
            flags,
            std::ptr::null_mut(),
        );
        if array.is_null() {
            return Err(PyErr::fetch(py));
        }
        let fields = &mut (*array.cast::<npyffi::PyArrayObject>()).fields;
        fields.base = base.into_ptr();
        Ok(Bound::from_owned_ptr(py, array))
    }
}

/// `array.view()` (a new array over the same memory, with `array` as its base), without the
/// attribute lookup and method call: one per request served and per claim.
pub fn view_of<'py>(array: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let a = array.cast::<numpy::PyUntypedArray>()?;
    // SAFETY: `a` is a live ndarray and the GIL is held; a null descriptor and type keep
    // `array`'s own (numpy's `ndarray.view()` with no argument); the new reference is ours.
    unsafe {
        let v = PY_ARRAY_API.PyArray_View(
            array.py(),
            a.as_array_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
        if v.is_null() {
            return Err(PyErr::fetch(array.py()));
        }
        Ok(Bound::from_owned_ptr(array.py(), v))
    }
}

/// Clears an array's WRITEABLE flag before anyone else sees it.
pub fn make_read_only(array: &Bound<'_, PyAny>) {
    let ptr = array.as_ptr().cast::<PyArrayObject>();
    // SAFETY: `array` is an ndarray we just created (a `PyArrayObject`), not yet shared; the GIL
    // is held. Its base (a `Lease`) has no buffer protocol, so numpy refuses to make it
    // writeable again.
    unsafe { (*ptr).fields.flags &= !NPY_ARRAY_WRITEABLE };
}

/// Gives a 0-d `with` target one dimension, so that `revoke` can empty it. A 0-d array has
/// no dimension to lower to 0. That is a ring of `shape=()`, or a target the block reshaped, e.g.
/// `f.shape = (f.size,); f.dtype = np.dtype(("V", f.nbytes)); f.shape = ()`. Its `nd` cannot be
/// raised by hand: numpy allocates the dimensions and strides and frees them by the count in
/// `nd`. Its size is always 1, so numpy's own shape setter always accepts `(1,)`. That setter
/// allocates the new fields itself and reshapes in place, keeping the data pointer. Should a
/// numpy refuse it (deprecated and turned into an error, say), the caller treats the target as a
/// surviving view (`BufferError`, the slot kept claimed until it goes), which is sound too.
///
/// It runs numpy code, and a garbage collection it triggers may run finalizers that make new
/// views. So `__exit__` calls it before counting references, never between the count and the
/// publish.
pub fn give_dimension(array: &Bound<'_, PyAny>) -> PyResult<()> {
    // SAFETY: `array` is an ndarray we created (`view()` of our own array; its type cannot be
    // changed from Python) and the GIL is held: reading `nd` is a plain field read.
    let nd = unsafe { (*array.as_ptr().cast::<PyArrayObject>()).fields.nd };
    if nd == 0 {
        array.setattr("shape", (1,))?;
    }
    Ok(())
}

/// Empties `array` (first dimension 0), makes it read-only and, if `cut`, cuts it from its base:
/// the name a `with` block bound can no longer reach the slot, nor keep it claimed. Not cut when
/// something else refers to the array itself (a memoryview keeps its own shape and pointer): the
/// base then keeps the slot claimed for as long as that lives.
///
/// This holds whatever shape, dtype and strides the block gave the array. With one dimension 0,
/// its size and `nbytes` are 0 for any dtype or strides. numpy then refuses every way back to
/// a non-empty array: a reshape must keep the size 0; a dtype change scales only the last axis;
/// strides are checked against 0 bytes; `resize` needs OWNDATA, which it never had. Returns
/// false, leaving it uncut (read-only, still over the claimed slot), if it has no dimension
/// (`give_dimension` failed): the caller must not publish then.
#[must_use]
pub fn revoke(array: &Bound<'_, PyAny>, cut: bool) -> bool {
    let ptr = array.as_ptr().cast::<PyArrayObject>();
    // Nothing else caches the array's shape (a buffer exported from it would hold a reference,
    // which `__exit__` checked for). Lowering a dimension to 0 keeps every stride and flag valid
    // (numpy treats empty arrays as contiguous); numpy's own resize writes these fields too.
    // With no element left, the array needs no base: it does not own its data (no OWNDATA), so
    // numpy frees nothing at its end, and the reference it held on its base is ours to drop.
    // No Python code runs here (the base is `__exit__`'s `array`, which it still holds).
    // SAFETY: `array` is an ndarray we created (`view()` of our own array) and the GIL is held;
    // `dimensions` holds `nd` > 0 entries; its base reference is dropped only after the field no
    // longer points to it.
    unsafe {
        let fields = &mut (*ptr).fields;
        fields.flags &= !NPY_ARRAY_WRITEABLE;
        if fields.nd == 0 {
            return false;
        }
        *fields.dimensions = 0;
        if cut {
            let base = std::mem::replace(&mut fields.base, std::ptr::null_mut());
            if !base.is_null() {
                pyo3::ffi::Py_DECREF(base);
            }
        }
        true
    }
}

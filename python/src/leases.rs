//! The objects numpy arrays hang on: the arrays over the `Frame` a `Lease` (the base object of a
//! received array, `lease_object`) owns, and `Claim` (a claimed slot, with the array over it,
//! published when its `with` block ends).

use std::sync::Mutex;

use ndarray::{ArrayView, ArrayViewMut, IxDyn};
use ndring::{ReadLease, WriteLease};
use std::ffi::{c_int, c_void};

use numpy::npyffi::{
    self, NPY_ARRAY_C_CONTIGUOUS, NPY_ARRAY_OWNDATA, PY_ARRAY_API, PyArray_Descr, PyArrayObject,
    npy_intp,
};
use numpy::{PyArray, PyArrayDescr};
use pyo3::exceptions::{PyBufferError, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyType};

use crate::element::PyElement;
use crate::errors::IntoPy;
pub use crate::frame::{Copied, Frame, FrameInfo, Leased};
use crate::lease_object::new_lease;
use crate::views::{give_dimension, make_read_only, revoke};

/// A ring's rank is at most 8 (the header's limit); numpy takes up to 32 (64 in numpy 2).
const MAX_DIMS: usize = 8;

/// What `read_array` and `send` need from numpy for every item, looked up once per handle: the
/// `ndarray` type and the element type's descriptor.
pub struct ArrayKind {
    array_type: Py<PyType>,
    descr: Py<PyArrayDescr>,
}

impl ArrayKind {
    /// numpy's `ndarray` type and the descriptor of `T` (`ndring.InvalidType` for `bfloat16`
    /// without `ml_dtypes`).
    pub fn of<T: PyElement>(py: Python<'_>) -> PyResult<Self> {
        let descr = T::descr(py)?.unbind();
        // SAFETY: `get_type_object` returns numpy's (immortal, static) `ndarray` type object.
        let array_type = unsafe {
            let ty = npyffi::get_type_object(py, npyffi::NpyTypes::PyArray_Type);
            Bound::from_borrowed_ptr(py, ty.cast::<pyo3::ffi::PyObject>())
                .cast_into_unchecked::<PyType>()
        };
        Ok(ArrayKind {
            array_type: array_type.unbind(),
            descr,
        })
    }
}

impl ArrayKind {
    /// The data of `image` if it is exactly an `ndarray` of this kind's element type (the very
    /// descriptor: numpy's builtin one), of shape `shape`, C-contiguous: what `send` can copy
    /// with one memcpy after reading a few fields, without the type and dtype-equivalence checks
    /// of the general path (which takes every other array).
    pub fn contiguous_data(&self, image: &Bound<'_, PyAny>, shape: &[usize]) -> Option<*const u8> {
        let obj = image.as_ptr();
        // SAFETY: `obj` is a live object (the GIL is held); it is only read as a
        // `PyArrayObject` once its type is exactly numpy's `ndarray`, and `dimensions` holds
        // `nd` entries.
        unsafe {
            if pyo3::ffi::Py_TYPE(obj) != self.array_type.as_ptr().cast::<pyo3::ffi::PyTypeObject>()
            {
                return None;
            }
            let f = &(*obj.cast::<PyArrayObject>()).fields;
            if f.descr != self.descr.as_ptr().cast::<PyArray_Descr>()
                || f.nd as usize != shape.len()
                || f.flags & NPY_ARRAY_C_CONTIGUOUS == 0
            {
                return None;
            }
            let dims = std::slice::from_raw_parts(f.dimensions, shape.len());
            if dims.iter().zip(shape).any(|(&d, &n)| d as usize != n) {
                return None;
            }
            Some(f.data.cast::<u8>().cast_const())
        }
    }
}

/// A read-only numpy array over a received slot, with a `Lease` owning the slot as its base; or,
/// for an item numpy would not store as it is (a `bool` byte other than 0 or 1, see `element`),
/// a read-only copy made canonical, the slot released at once.
///
/// Built with one `PyArray_NewFromDescr` call (read-only from birth: no WRITEABLE flag, no
/// strides to compute: C order) rather than through an ndarray view, with the type and
/// descriptor looked up once (`kind`): this runs once per item.
pub fn read_array<'py, T>(
    py: Python<'py>,
    kind: &ArrayKind,
    lease: ReadLease<T, IxDyn>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>>
where
    T: Leased,
{
    if !T::ANY_BYTES {
        let items = lease
            .view()
            .to_slice()
            .expect("a slot's items are in C order");
        if !T::canonical_bytes(items) {
            let array = copied_array(py, Copied::of(&lease), shape)?;
            make_read_only(&array);
            return Ok(array);
        }
    }
    let mut dims: [npy_intp; MAX_DIMS] = [0; MAX_DIMS];
    let nd = shape.len().min(MAX_DIMS);
    for (d, &n) in dims.iter_mut().zip(shape) {
        *d = n as npy_intp;
    }
    let ptr = lease.as_ptr();
    let owner = new_lease(py, T::frame(lease))?;
    // `shape` is the ring's (at most 8 dimensions). The array is created without WRITEABLE, and
    // its base (a `Lease`, which has no buffer protocol) makes numpy refuse to set it again. The
    // descriptor reference is stolen by `PyArray_NewFromDescr` (hence the new one); the owner's
    // by the array's `base` field, released by numpy when the array goes.
    // SAFETY: `ptr` is the leased slot's payload, 128-aligned, `shape`'s elements of `T` in C
    // order, which nobody writes until the lease is dropped, and the lease (the array's base)
    // lives as long as the array and every view of it.
    unsafe {
        let array = PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            kind.array_type.as_ptr().cast::<pyo3::ffi::PyTypeObject>(),
            kind.descr.clone_ref(py).into_ptr().cast::<PyArray_Descr>(),
            nd as c_int,
            dims.as_mut_ptr(),
            std::ptr::null_mut(),
            ptr as *mut c_void,
            0,
            std::ptr::null_mut(),
        );
        if array.is_null() {
            return Err(PyErr::fetch(py));
        }
        // What `PyArray_SetBaseObject` does for a base that is not an array (nothing to collapse)
        // on an array with no base yet (just created, its data not owned): store it.
        let fields = &mut (*array.cast::<PyArrayObject>()).fields;
        debug_assert!(fields.base.is_null() && fields.flags & NPY_ARRAY_OWNDATA == 0);
        fields.base = owner.into_ptr();
        Ok(Bound::from_owned_ptr(py, array))
    }
}

/// A frame copied out: a writable array over the copy, with its info as base.
pub fn copied_array<'py, N>(
    py: Python<'py>,
    frame: Copied<N>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>>
where
    N: numpy::Element + Copy + 'static,
{
    let ptr = frame.data.as_ptr();
    let dim = IxDyn(shape);
    assert_eq!(frame.data.len(), shape.iter().product::<usize>());
    let owner = new_lease(py, Frame::Copied(Box::new(frame)))?;
    // SAFETY: `ptr` points into the Vec now owned (never resized) by `owner`, which becomes the
    // array's base; it holds `dim.size()` elements.
    let array = unsafe {
        let view = ArrayView::from_shape_ptr(dim, ptr);
        PyArray::<N, IxDyn>::borrow_from_array(&view, owner)
    };
    Ok(array.into_any())
}

/// A claim, whatever its element type.
pub trait AnyWrite: Send + Sync {
    /// Stores the user metadata.
    fn set_meta(&mut self, meta: &[u8]) -> ndring::Result<()>;
    /// Publishes; returns the sequence number.
    fn publish(self: Box<Self>) -> u64;
}

impl<T: ndring::Element> AnyWrite for WriteLease<T, IxDyn> {
    fn set_meta(&mut self, meta: &[u8]) -> ndring::Result<()> {
        self.set_user_meta_bytes(meta)
    }
    fn publish(self: Box<Self>) -> u64 {
        WriteLease::publish(*self)
    }
}

/// The base object of a claim's array: holds the claimed slot until it is published, or, if
/// never published, until the array and every view of it are gone (then it is abandoned).
#[pyclass(module = "ndring", frozen)]
pub struct ClaimedSlot {
    lease: Mutex<Option<Box<dyn AnyWrite>>>,
    pid: u32,
}

impl Drop for ClaimedSlot {
    fn drop(&mut self) {
        let lease = self
            .lease
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if crate::pid::current() == self.pid {
            drop(lease); // abandoned
        } else {
            std::mem::forget(lease); // a forked child's copy: the parent's claim
        }
        crate::fork::view_gone();
    }
}

/// A claimed slot: `with producer.claim() as frame:` gives a writable array over the slot,
/// published when the block ends normally and abandoned when it raises.
///
/// At publish, no other reference to the array may remain than the `with` target: a view, a
/// slice or a memoryview kept past the block makes `__exit__` raise `BufferError` (as
/// `mmap.close()` does), and the slot is then abandoned once they are all gone. The `with`
/// target itself is emptied (its first dimension becomes 0; a 0-d target is first made 1-d),
/// whatever shape, dtype or strides the block gave it, and made read-only, so that it can no
/// longer reach the published slot.
#[pyclass(module = "ndring")]
pub struct Claim {
    hold: Option<Py<ClaimedSlot>>,
    /// The array over the slot (base: `hold`) and the view handed to the `with` target (base:
    /// `array`, to which numpy collapses the base of every further view).
    array: Option<Py<PyAny>>,
    view: Option<Py<PyAny>>,
    meta: Option<Vec<u8>>,
    seq: Option<u64>,
    entered: bool,
}

/// A claim over `lease`, with its array.
pub fn claim<T>(
    py: Python<'_>,
    mut lease: WriteLease<T, IxDyn>,
    meta: Option<Vec<u8>>,
) -> PyResult<Claim>
where
    T: PyElement,
{
    // numpy's element type has `T`'s size and alignment, and every bit pattern of either is
    // valid for both (`PyElement::Np`).
    let ptr = lease.as_mut_ptr().cast::<T::Np>();
    let dim = IxDyn(lease.view_mut().shape());
    // Counted from here: the `ClaimedSlot` below counts itself out when dropped (also should
    // `Py::new` fail).
    crate::fork::view_made();
    let hold = Py::new(
        py,
        ClaimedSlot {
            lease: Mutex::new(Some(Box::new(lease))),
            pid: crate::pid::current(),
        },
    )?;
    // The lease lives in `hold`, the array's base, so the slot stays claimed while any view
    // exists, and `__exit__` publishes only when no view but the revoked `with` target remains.
    // SAFETY: `ptr` is the claimed slot's payload (`dim`'s elements of `T`, as many of
    // `T::Np`), ours alone until publish or abandon, which cannot happen while the array
    // (holding `hold`) lives.
    let array = unsafe {
        let view = ArrayViewMut::from_shape_ptr(dim, ptr);
        PyArray::<T::Np, IxDyn>::borrow_from_array(&view, hold.bind(py).clone().into_any())
    };
    let view = crate::views::view_of(array.as_any())?;
    Ok(Claim {
        hold: Some(hold),
        array: Some(array.into_any().unbind()),
        view: Some(view.unbind()),
        meta,
        seq: None,
        entered: false,
    })
}

#[pymethods]
impl Claim {
    /// The writable array over the claimed slot.
    fn __enter__(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if self.entered {
            return Err(PyRuntimeError::new_err("this claim was already entered"));
        }
        self.entered = true;
        match &self.view {
            Some(v) => Ok(v.clone_ref(py)),
            None => Err(PyRuntimeError::new_err("this claim is finished")),
        }
    }

    /// Publishes the slot (no exception) or abandons it (exception); raises `BufferError` if a
    /// view of the array survives the block.
    #[pyo3(signature = (exc_type=None, _exc=None, _tb=None))]
    fn __exit__(
        &mut self,
        py: Python<'_>,
        exc_type: Option<Bound<'_, PyAny>>,
        _exc: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        if let Some(hold) = &self.hold {
            let pid = hold.get().pid;
            if pid != crate::pid::current() {
                return Err(crate::errors::raise(
                    py,
                    "Error",
                    format!(
                        "this claim was made in process {pid}; a forked child cannot publish it"
                    ),
                ));
            }
        }
        let (Some(array), Some(view), Some(hold)) =
            (self.array.take(), self.view.take(), self.hold.take())
        else {
            return Err(PyRuntimeError::new_err("this claim is finished"));
        };
        let (array, view) = (array.into_bound(py), view.into_bound(py));
        // First, while Python code may still run (see `give_dimension`): a 0-d target gets the
        // dimension `revoke` lowers to 0. From the reference count on, nothing runs Python code
        // until the slot is published or abandoned.
        let reshaped = give_dimension(&view);
        // Expected: `array` is held here and by `view`'s base; `view` here and by the `with`
        // target. Anything more is a view, slice or exported buffer that would outlive the claim.
        // SAFETY: both pointers are live objects (we hold references); the GIL is held.
        let (refs_array, refs_view) = unsafe {
            (
                pyo3::ffi::Py_REFCNT(array.as_ptr()),
                pyo3::ffi::Py_REFCNT(view.as_ptr()),
            )
        };
        let views_alive = refs_array > 2 || refs_view > 2;
        // An emptied target reaches nothing; one that could not be emptied is a surviving view.
        let emptied = revoke(&view, refs_view <= 2 && reshaped.is_ok());
        make_read_only(&array);
        let failed = exc_type.is_some_and(|t| !t.is_none());
        if views_alive || !emptied {
            // The slot stays claimed in `hold` until those views are gone, then is abandoned.
            if failed {
                return Ok(false);
            }
            let err = PyBufferError::new_err(if views_alive {
                "cannot publish: a view of the claimed array (a slice, a reshaped or transposed \
                 array, a memoryview, or a second name bound to it) is still alive after the with \
                 block; the slot is abandoned once they are all gone"
            } else {
                "cannot publish: the with target is a 0-d array that numpy would not empty \
                 (reshape to (1,) failed); the slot is abandoned once the target is gone"
            });
            if let Err(cause) = reshaped {
                err.set_cause(py, Some(cause));
            }
            return Err(err);
        }
        let lease = hold
            .get()
            .lease
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(mut lease) = lease else {
            return Err(PyRuntimeError::new_err("this claim is finished"));
        };
        if failed {
            drop(lease); // abandoned
            return Ok(false);
        }
        if let Some(meta) = &self.meta {
            if let Err(e) = lease.set_meta(meta) {
                drop(lease);
                return Err(e).py(py);
            }
        }
        self.seq = Some(lease.publish());
        Ok(false)
    }

    /// User metadata bytes published with the slot (set before the `with` block ends).
    #[getter]
    fn get_meta<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.meta.as_deref().map(|m| PyBytes::new(py, m))
    }

    #[setter]
    fn set_meta(&mut self, meta: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        self.meta = match meta {
            Some(m) => crate::args::meta(m)?,
            None => None, // `del claim.meta`
        };
        Ok(())
    }

    /// The sequence number, once published (None before, or if abandoned).
    #[getter]
    fn seq(&self) -> Option<u64> {
        self.seq
    }
}

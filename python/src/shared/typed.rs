//! One implementation of a shared array per element type (`ndring::SharedArray<T, IxDyn>`),
//! behind `AnyShared`, and the locks it holds over its memory (`Held`).

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use ndarray::{ArrayViewMut, IxDyn};
use ndring::{DType, Segment, SharedArray as RsShared};
use numpy::{PyArrayDescr, PyArrayDyn, PyArrayMethods};
use pyo3::prelude::*;

use crate::element::PyElement;
use crate::errors::invalid_type;

/// Which lock a block takes.
#[derive(Clone, Debug)]
pub enum Lock {
    /// Shared, the whole array.
    Read,
    /// Exclusive, the whole array.
    Write,
    /// Rows of the first axis, beside writers of other rows.
    Rows(Range<usize>),
}

/// A lock held, and the memory it lets its holder reach.
pub struct Held {
    /// The Rust guard, with the handle it borrows: dropping it unlocks (and, for a write,
    /// moves the version).
    _guard: Box<dyn Send + Sync>,
    /// The first element the lock covers.
    pub ptr: usize,
    /// The shape from there (C order) of a rows lock; `None`: the whole array's (the handle's
    /// shape, not copied for every lock).
    pub rows: Option<Vec<usize>>,
}

/// A guard of `ndring::SharedArray` with the handle it borrows. Fields drop in order: the guard
/// (which unlocks through its reference to the handle) before the handle.
struct Owned<G> {
    _guard: G,
    _array: Arc<dyn AnyShared>,
}

/// A shared array of any element type.
pub trait AnyShared: Send + Sync {
    fn segment(&self) -> &Segment;
    fn shape(&self) -> &[usize];
    fn dtype(&self) -> DType;
    fn version(&self) -> u64;
    fn is_poisoned(&self) -> bool;
    fn clear_poison(&self);
    fn set_keep(&self, keep: bool);
    /// The first element, in this process's mapping.
    fn ptr(&self) -> usize;
    /// `wait_changed` for at most `slice` (`Err(Timeout)` then).
    fn wait_changed(&self, seen: u64, slice: Duration) -> ndring::Result<u64>;
    /// Takes `lock`, waiting at most `slice` (zero: one attempt).
    fn lock(self: Arc<Self>, lock: &Lock, slice: Duration) -> ndring::Result<Held>;
    /// numpy's dtype of the elements.
    fn descr<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArrayDescr>>;
    /// Copies `src` (a numpy array of the element type and shape, any strides) into the memory
    /// `held` covers (an exclusive lock on the whole array).
    fn copy_in(&self, held: &Held, src: &Bound<'_, PyAny>) -> PyResult<()>;
}

/// `ndring::SharedArray<T, IxDyn>` behind `AnyShared`.
pub struct Typed<T: PyElement>(pub RsShared<T, IxDyn>);

/// `guard` with the handle it borrows, over `shape` from `ptr`.
fn held<G: Send + Sync + 'static>(
    guard: G,
    array: Arc<dyn AnyShared>,
    ptr: *const impl Sized,
    rows: Option<Vec<usize>>,
) -> Held {
    Held {
        _guard: Box::new(Owned {
            _guard: guard,
            _array: array,
        }),
        ptr: ptr as usize,
        rows,
    }
}

/// Takes a guard of `ndring::SharedArray` and gives it the `'static` lifetime, to be kept in an
/// `Owned` with the `Arc` of the handle it borrows.
macro_rules! locked {
    ($self:ident, $array:ident, $guard:ident, $take:expr, $rows:expr) => {{
        let g = $take?;
        let (ptr, rows) = (g.as_ptr(), $rows.then(|| g.shape().to_vec()));
        // The guard borrows `*$self`, the handle inside an `Arc` allocation (it never moves);
        // `held` stores it in an `Owned` with `$array`, a clone of that `Arc`, dropped after it.
        // SAFETY: so the borrow never outlives the handle; the types differ in lifetime only.
        let g = unsafe {
            std::mem::transmute::<ndring::$guard<'_, T, IxDyn>, ndring::$guard<'static, T, IxDyn>>(
                g,
            )
        };
        held(g, $array, ptr, rows)
    }};
}

impl<T: PyElement> AnyShared for Typed<T> {
    fn segment(&self) -> &Segment {
        self.0.segment()
    }
    fn shape(&self) -> &[usize] {
        self.0.shape()
    }
    fn dtype(&self) -> DType {
        T::DTYPE
    }
    fn version(&self) -> u64 {
        self.0.version()
    }
    fn is_poisoned(&self) -> bool {
        self.0.is_poisoned()
    }
    fn clear_poison(&self) {
        self.0.clear_poison()
    }
    fn set_keep(&self, keep: bool) {
        self.0.set_keep(keep)
    }
    fn ptr(&self) -> usize {
        self.0.as_mut_ptr() as usize
    }
    fn wait_changed(&self, seen: u64, slice: Duration) -> ndring::Result<u64> {
        self.0.wait_changed(seen, Some(slice))
    }
    fn lock(self: Arc<Self>, lock: &Lock, slice: Duration) -> ndring::Result<Held> {
        let array: Arc<dyn AnyShared> = self.clone();
        let a = &self.0;
        Ok(match lock {
            Lock::Read => locked!(self, array, ReadGuard, a.read_timeout(slice), false),
            Lock::Write => locked!(self, array, WriteGuard, a.write_timeout(slice), false),
            Lock::Rows(rows) => {
                locked!(
                    self,
                    array,
                    RowsGuard,
                    a.write_rows_timeout(rows.clone(), slice),
                    true
                )
            }
        })
    }
    fn descr<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArrayDescr>> {
        T::descr(py)
    }
    fn copy_in(&self, held: &Held, src: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = src.py();
        let src = src
            .cast::<PyArrayDyn<T::Np>>()
            .map_err(|_| invalid_type(py, format!("data must be a numpy array of {}", T::NUMPY)))?;
        let src = src.try_readonly().map_err(|e| {
            crate::errors::invalid_argument(py, format!("data is in use (borrowed): {e}"))
        })?;
        let src = src.as_array();
        debug_assert!(held.rows.is_none(), "copy_in takes a whole-array lock");
        // `held` is the exclusive lock on the whole array, dropped after this call; its memory
        // is the array's elements of `T` (as many `T::Np`: same size, alignment) in C order.
        // SAFETY: so nobody else reads or writes what this view covers while it lives.
        let mut dst =
            unsafe { ArrayViewMut::from_shape_ptr(IxDyn(self.0.shape()), held.ptr as *mut T::Np) };
        dst.assign(&src);
        Ok(())
    }
}

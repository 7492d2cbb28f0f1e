//! The guards a [`SharedArray`] hands out: each derefs to an [`ndarray::ArrayRef`] over the
//! segment, so that the views a user makes from it borrow the guard and cannot outlive the lock
//! (an `ArrayView` target could be cloned out of the guard and read after it is gone).

use std::ops::{Deref, DerefMut, Range};

use ndarray::{ArrayRef, ArrayView, ArrayViewMut, Dimension};

use super::SharedArray;
use super::wait::wake;
use crate::element::Element;
use crate::protocol::array::{self, ArrayMemory, Wake};

/// A shared (read) lock on the whole array: derefs to a read-only array.
///
/// ```
/// # use ndring::*;
/// # let name = format!("/ndr-doc-rg-{}", std::process::id());
/// let sa = SharedArray::<f64, ndarray::Ix2>::create(&name, (4, 4), &Config::array())?;
/// let a = sa.read()?;
/// assert_eq!(a.sum(), 0.0);
/// # Ok::<(), Error>(())
/// ```
pub struct ReadGuard<'a, T: Element, D: Dimension> {
    pub(super) array: &'a SharedArray<T, D>,
    pub(super) view: ArrayView<'a, T, D>,
}

impl<T: Element, D: Dimension> Deref for ReadGuard<'_, T, D> {
    type Target = ArrayRef<T, D>;
    fn deref(&self) -> &ArrayRef<T, D> {
        &self.view
    }
}

impl<T: Element, D: Dimension> Drop for ReadGuard<'_, T, D> {
    fn drop(&mut self) {
        let seg = &*self.array.seg;
        array::read_unlock(seg, self.array.entry);
        wake(
            seg.array(),
            Wake {
                drained: true,
                released: false,
            },
        );
    }
}

/// An exclusive (write) lock on the whole array: derefs to a writable array. The version moves
/// when it is dropped.
///
/// ```
/// # use ndring::*;
/// # let name = format!("/ndr-doc-wg-{}", std::process::id());
/// let sa = SharedArray::<u8, ndarray::Ix1>::create(&name, 8, &Config::array())?;
/// sa.write()?.fill(3);
/// assert_eq!(sa.read()?.sum(), 24);
/// assert_eq!(sa.version(), 1);
/// # Ok::<(), Error>(())
/// ```
pub struct WriteGuard<'a, T: Element, D: Dimension> {
    pub(super) array: &'a SharedArray<T, D>,
    pub(super) view: ArrayViewMut<'a, T, D>,
}

impl<T: Element, D: Dimension> Deref for WriteGuard<'_, T, D> {
    type Target = ArrayRef<T, D>;
    fn deref(&self) -> &ArrayRef<T, D> {
        &self.view
    }
}

impl<T: Element, D: Dimension> DerefMut for WriteGuard<'_, T, D> {
    fn deref_mut(&mut self) -> &mut ArrayRef<T, D> {
        &mut self.view
    }
}

impl<T: Element, D: Dimension> Drop for WriteGuard<'_, T, D> {
    fn drop(&mut self) {
        let seg = &*self.array.seg;
        array::end_write(seg);
        crate::shm::wait::notify(&seg.array().changed);
        array::exclusive_unlock(seg);
        wake(
            seg.array(),
            Wake {
                drained: false,
                released: true,
            },
        );
    }
}

/// A write lock on some rows (first axis) of the array, beside other such locks on disjoint
/// rows: derefs to a writable array of those rows only. The version moves when it is dropped.
///
/// ```
/// # use ndring::*;
/// # let name = format!("/ndr-doc-rows-{}", std::process::id());
/// let sa = SharedArray::<u32, ndarray::Ix2>::create(&name, (100, 10), &Config::array())?;
/// let mut top = sa.write_rows(0..50)?;
/// let mut bottom = sa.write_rows(50..100)?;   // disjoint: both held at once
/// top.fill(1);
/// bottom.fill(2);
/// drop((top, bottom));
/// assert_eq!(sa.read()?.sum(), 500 + 1000);
/// # Ok::<(), Error>(())
/// ```
pub struct RowsGuard<'a, T: Element, D: Dimension> {
    pub(super) array: &'a SharedArray<T, D>,
    pub(super) view: ArrayViewMut<'a, T, D>,
    /// The stripes held.
    pub(super) stripes: Range<usize>,
    /// The rows exposed.
    pub(super) rows: Range<usize>,
}

impl<T: Element, D: Dimension> RowsGuard<'_, T, D> {
    /// The rows of the array this guard writes.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-rowsr-{}", std::process::id());
    /// let sa = SharedArray::<u8, ndarray::Ix2>::create(&name, (8, 2), &Config::array())?;
    /// assert_eq!(sa.write_rows(2..5)?.rows(), 2..5);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn rows(&self) -> Range<usize> {
        self.rows.clone()
    }
}

impl<T: Element, D: Dimension> Deref for RowsGuard<'_, T, D> {
    type Target = ArrayRef<T, D>;
    fn deref(&self) -> &ArrayRef<T, D> {
        &self.view
    }
}

impl<T: Element, D: Dimension> DerefMut for RowsGuard<'_, T, D> {
    fn deref_mut(&mut self) -> &mut ArrayRef<T, D> {
        &mut self.view
    }
}

impl<T: Element, D: Dimension> Drop for RowsGuard<'_, T, D> {
    fn drop(&mut self) {
        let seg = &*self.array.seg;
        array::end_write(seg);
        crate::shm::wait::notify(&seg.array().changed);
        for i in self.stripes.clone().rev() {
            array::stripe_unlock(seg, i);
        }
        array::leave_ranges(seg, self.array.entry);
        wake(
            seg.array(),
            Wake {
                drained: true,
                released: true,
            },
        );
    }
}

macro_rules! debug_guard {
    ($($g:ident),*) => {$(
        impl<T: Element, D: Dimension> std::fmt::Debug for $g<'_, T, D> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($g))
                    .field("name", &self.array.seg.name())
                    .field("shape", &self.view.shape())
                    .finish()
            }
        }
    )*};
}
debug_guard!(ReadGuard, WriteGuard, RowsGuard);

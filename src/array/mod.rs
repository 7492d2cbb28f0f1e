//! Shared arrays: one named array that every attached process reads and writes in place, under
//! a reader-writer lock that crosses processes (`protocol::array`).

mod constructors;
mod guard;
mod wait;

use std::marker::PhantomData;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ndarray::{ArrayView, ArrayViewMut, Dimension};

pub use guard::{ReadGuard, RowsGuard, WriteGuard};

use crate::element::Element;
use crate::error::{Error, Result};
use crate::handle::accessors::segment_accessors;
use crate::protocol::array::{self as proto, ArrayMemory, Wait};
use crate::role::Role;
use crate::shm::peers;
use crate::shm::segment::Segment;
use crate::shm::wait::{Stuck, Waiting};
use crate::sync::Ordering::*;

/// One array in named shared memory that every attached process reads and writes in place.
///
/// [`read`](SharedArray::read) gives a shared lock (any number of readers, in any process),
/// [`write`](SharedArray::write) an exclusive one, [`write_rows`](SharedArray::write_rows) a
/// lock on some rows beside writers of other rows. Each derefs to an [`ndarray::ArrayRef`] over
/// the segment: no copy, and no view can outlive its lock. Every write moves the
/// [`version`](SharedArray::version), which a reader can sleep on
/// ([`wait_changed`](SharedArray::wait_changed)); [`snapshot`](SharedArray::snapshot) copies the
/// array out without taking the lock (it never makes a writer wait).
///
/// A process that dies holding a read lock loses it to the next process that waits for the
/// lock a grace period; one that dies holding a write lock loses it too, and the array is
/// *poisoned*: every lock fails with [`Error::Poisoned`] until someone calls
/// [`clear_poison`](SharedArray::clear_poison).
///
/// ```
/// use ndring::{Config, SharedArray};
/// # let name = format!("/ndr-doc-sa-{}", std::process::id());
/// // Process A
/// let grid = SharedArray::<f64, ndarray::Ix2>::create(&name, (100, 100), &Config::array())?;
/// grid.write()?[[0, 0]] = 1.0;
/// // Process B
/// let same = SharedArray::<f64, ndarray::Ix2>::open(&name)?;
/// assert_eq!(same.read()?[[0, 0]], 1.0);
/// assert_eq!(same.version(), 1);
/// # Ok::<(), ndring::Error>(())
/// ```
pub struct SharedArray<T: Element, D: Dimension> {
    seg: Arc<Segment>,
    /// Our peer entry: our read and range-write counts live there.
    entry: usize,
    /// Our owner tag (pid, entry) in the lock word and the stripes.
    tag: u64,
    dim: D,
    how: Waiting,
    /// How long our lock attempts have found the lock word unchanged, across calls.
    stuck: Mutex<Stuck>,
    _t: PhantomData<fn() -> T>,
}

segment_accessors!(
    impl[T: Element, D: Dimension] SharedArray<T, D>,
    seg: seg,
    create: SharedArray::<u8, ndarray::Ix2>::create,
    config: Config::array(),
    tag: SharedArray,
);

impl<T: Element, D: Dimension> SharedArray<T, D> {
    /// The array's name.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-san-{}", std::process::id());
    /// let sa = SharedArray::<u8, ndarray::Ix1>::create(&name, 8, &Config::array())?;
    /// assert_eq!(sa.name(), name);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn name(&self) -> &str {
        self.seg.name()
    }

    /// How many writes have ended (whole-array and row writes; a dead writer's counts too).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-sav-{}", std::process::id());
    /// let sa = SharedArray::<u8, ndarray::Ix1>::create(&name, 8, &Config::array())?;
    /// assert_eq!(sa.version(), 0);
    /// drop(sa.write()?);
    /// assert_eq!(sa.version(), 1);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn version(&self) -> u64 {
        proto::version(&*self.seg)
    }

    /// Takes the shared lock, waiting while a writer holds or waits for it.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-sar-{}", std::process::id());
    /// let sa = SharedArray::<i32, ndarray::Ix1>::create(&name, 4, &Config::array())?;
    /// let (a, b) = (sa.read()?, sa.read()?);   // any number of readers at once
    /// assert_eq!(a.len() + b.len(), 8);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn read(&self) -> Result<ReadGuard<'_, T, D>> {
        self.read_until(None)
    }

    /// Takes the shared lock if it is free of writers now: `Err(Timeout)` otherwise.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-satr-{}", std::process::id());
    /// let sa = SharedArray::<u8, ndarray::Ix1>::create(&name, 4, &Config::array())?;
    /// let w = sa.write()?;
    /// assert!(matches!(sa.try_read(), Err(Error::Timeout)));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn try_read(&self) -> Result<ReadGuard<'_, T, D>> {
        self.read_until(Some(Instant::now()))
    }

    /// [`SharedArray::read`], giving up after `timeout` (`Err(Timeout)`).
    ///
    /// ```
    /// # use ndring::*;
    /// # use std::time::Duration;
    /// # let name = format!("/ndr-doc-sart-{}", std::process::id());
    /// let sa = SharedArray::<u8, ndarray::Ix1>::create(&name, 4, &Config::array())?;
    /// assert_eq!(sa.read_timeout(Duration::from_millis(10))?.len(), 4);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn read_timeout(&self, timeout: Duration) -> Result<ReadGuard<'_, T, D>> {
        self.read_until(crate::shm::wait::deadline(timeout))
    }

    fn read_until(&self, deadline: Option<Instant>) -> Result<ReadGuard<'_, T, D>> {
        let seg = &*self.seg;
        let mut lead = false;
        let got = self.wait(deadline, |strong, wake| {
            proto::try_read(seg, self.entry, self.tag, &mut lead, strong, wake)
        });
        if let Err(e) = got {
            let mut w = proto::Wake::default();
            proto::give_up_lead(seg, &mut lead, &mut w);
            wait::wake(seg.array(), w);
            return Err(e);
        }
        let guard = ReadGuard {
            array: self,
            // SAFETY: we hold the shared lock: no writer stores to the array until the guard,
            // which borrows the view, is dropped; the payload holds `dim` elements of `T`,
            // aligned (checked by `attach`).
            view: unsafe { ArrayView::from_shape_ptr(self.dim.clone(), self.ptr()) },
        };
        self.check_poison()?;
        Ok(guard)
    }

    /// Takes the exclusive lock: waits for the readers and writers inside to leave, while new
    /// readers wait behind (a stream of readers cannot starve a writer).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-saw-{}", std::process::id());
    /// let sa = SharedArray::<f32, ndarray::Ix2>::create(&name, (2, 2), &Config::array())?;
    /// let mut a = sa.write()?;
    /// a[[1, 1]] = 5.0;
    /// drop(a);
    /// assert_eq!(sa.read()?[[1, 1]], 5.0);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn write(&self) -> Result<WriteGuard<'_, T, D>> {
        self.write_until(None)
    }

    /// Takes the exclusive lock if nobody holds the array now: `Err(Timeout)` otherwise.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-satw-{}", std::process::id());
    /// let sa = SharedArray::<u8, ndarray::Ix1>::create(&name, 4, &Config::array())?;
    /// let r = sa.read()?;
    /// assert!(matches!(sa.try_write(), Err(Error::Timeout)));
    /// drop(r);
    /// assert!(sa.try_write().is_ok());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn try_write(&self) -> Result<WriteGuard<'_, T, D>> {
        self.write_until(Some(Instant::now()))
    }

    /// [`SharedArray::write`], giving up after `timeout` (`Err(Timeout)`).
    ///
    /// ```
    /// # use ndring::*;
    /// # use std::time::Duration;
    /// # let name = format!("/ndr-doc-sawt-{}", std::process::id());
    /// let sa = SharedArray::<u8, ndarray::Ix1>::create(&name, 4, &Config::array())?;
    /// sa.write_timeout(Duration::from_millis(10))?.fill(9);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn write_timeout(&self, timeout: Duration) -> Result<WriteGuard<'_, T, D>> {
        self.write_until(crate::shm::wait::deadline(timeout))
    }

    fn write_until(&self, deadline: Option<Instant>) -> Result<WriteGuard<'_, T, D>> {
        let seg = &*self.seg;
        self.wait(deadline, |strong, _| {
            proto::try_exclusive(seg, self.tag, strong)
        })?;
        let drained = self.wait(deadline, |strong, _| {
            if proto::drained(seg, true, true, strong) {
                Ok(())
            } else {
                Err(Wait::Drained)
            }
        });
        if let Err(e) = drained.and_then(|()| self.check_poison()) {
            proto::exclusive_unlock(seg);
            crate::shm::wait::notify(&seg.array().released);
            return Err(e);
        }
        proto::begin_write(seg);
        Ok(WriteGuard {
            array: self,
            // SAFETY: we hold the exclusive lock and every reader and range writer has left: no
            // other thread or process touches the array until the guard is dropped.
            view: unsafe { ArrayViewMut::from_shape_ptr(self.dim.clone(), self.ptr()) },
        })
    }

    /// Takes a write lock on `rows` (of the first axis) only: writers of disjoint rows work at
    /// the same time (pool workers filling their tiles), while readers and whole-array writers
    /// wait. Rows are locked by stripe (at most 64 stripes per array, [`SharedArray::stripes`]):
    /// two ranges that share a stripe take turns.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-sawr-{}", std::process::id());
    /// let sa = SharedArray::<u32, ndarray::Ix2>::create(&name, (64, 4), &Config::array())?;
    /// std::thread::scope(|s| {
    ///     for k in 0..4 {
    ///         let sa = &sa;
    ///         s.spawn(move || sa.write_rows(k * 16..(k + 1) * 16).unwrap().fill(k as u32));
    ///     }
    /// });
    /// assert_eq!(sa.read()?.sum(), (0 + 1 + 2 + 3) * 16 * 4);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn write_rows(&self, rows: Range<usize>) -> Result<RowsGuard<'_, T, D>> {
        self.rows_until(rows, None)
    }

    /// [`SharedArray::write_rows`] if the rows can be had now: `Err(Timeout)` otherwise.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-satwr-{}", std::process::id());
    /// let sa = SharedArray::<u8, ndarray::Ix2>::create(&name, (64, 4), &Config::array())?;
    /// let a = sa.write_rows(0..10)?;
    /// assert!(matches!(sa.try_write_rows(5..20), Err(Error::Timeout)));
    /// assert!(sa.try_write_rows(32..64).is_ok());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn try_write_rows(&self, rows: Range<usize>) -> Result<RowsGuard<'_, T, D>> {
        self.rows_until(rows, Some(Instant::now()))
    }

    /// [`SharedArray::write_rows`], giving up after `timeout` (`Err(Timeout)`).
    ///
    /// ```
    /// # use ndring::*;
    /// # use std::time::Duration;
    /// # let name = format!("/ndr-doc-sawrt-{}", std::process::id());
    /// let sa = SharedArray::<u8, ndarray::Ix2>::create(&name, (8, 4), &Config::array())?;
    /// sa.write_rows_timeout(0..4, Duration::from_millis(10))?.fill(1);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn write_rows_timeout(
        &self,
        rows: Range<usize>,
        timeout: Duration,
    ) -> Result<RowsGuard<'_, T, D>> {
        self.rows_until(rows, crate::shm::wait::deadline(timeout))
    }

    /// How many stripes the first axis is cut into for [`SharedArray::write_rows`].
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-sast-{}", std::process::id());
    /// let sa = SharedArray::<u8, ndarray::Ix2>::create(&name, (1000, 4), &Config::array())?;
    /// assert_eq!(sa.stripes(), 64);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn stripes(&self) -> usize {
        ArrayMemory::stripes(&*self.seg)
    }

    fn rows_until(
        &self,
        rows: Range<usize>,
        deadline: Option<Instant>,
    ) -> Result<RowsGuard<'_, T, D>> {
        let n = self.dim.slice().first().copied().unwrap_or(0);
        if rows.start >= rows.end || rows.end > n {
            return Err(Error::RowsOutOfRange {
                start: rows.start,
                end: rows.end,
                rows: n,
            });
        }
        let seg = &*self.seg;
        let s = self.stripes();
        let stripes = rows.start * s / n..(rows.end - 1) * s / n + 1;
        self.wait(deadline, |strong, wake| {
            proto::try_enter_ranges(seg, self.entry, strong, wake)
        })?;
        let mut taken = stripes.start;
        let got = self
            .wait(deadline, |strong, _| {
                if proto::drained(seg, true, false, strong) {
                    Ok(())
                } else {
                    Err(Wait::Drained)
                }
            })
            .and_then(|()| {
                while taken < stripes.end {
                    self.wait(deadline, |strong, _| {
                        proto::try_stripe(seg, taken, self.tag, strong)
                    })?;
                    taken += 1;
                }
                self.check_poison()
            });
        if let Err(e) = got {
            for i in (stripes.start..taken).rev() {
                proto::stripe_unlock(seg, i);
            }
            proto::leave_ranges(seg, self.entry);
            wait::wake(
                seg.array(),
                proto::Wake {
                    drained: true,
                    released: true,
                },
            );
            return Err(e);
        }
        proto::begin_write(seg);
        let mut dim = self.dim.clone();
        dim.slice_mut()[0] = rows.end - rows.start;
        let row_len: usize = self.dim.slice()[1..].iter().product();
        Ok(RowsGuard {
            array: self,
            // Rows of a C-order array: `row_len` elements each, from `rows.start * row_len`.
            // SAFETY: we hold the stripes covering `rows` (no other range writer touches them) and
            // count as a range writer (no reader or whole-array writer is inside); in the payload.
            view: unsafe {
                ArrayViewMut::from_shape_ptr(dim, self.ptr().add(rows.start * row_len))
            },
            stripes,
            rows,
        })
    }

    /// Sleeps until the version differs from `seen` (a write ended since), or `timeout`
    /// (`None`: no limit) passes (`Err(Timeout)`); returns the new version.
    ///
    /// ```
    /// # use ndring::*;
    /// # use std::time::Duration;
    /// # let name = format!("/ndr-doc-sawc-{}", std::process::id());
    /// let sa = SharedArray::<u8, ndarray::Ix1>::create(&name, 4, &Config::array())?;
    /// let seen = sa.version();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| sa.write().unwrap().fill(1));
    ///     assert!(sa.wait_changed(seen, None).unwrap() > seen);
    /// });
    /// assert!(matches!(sa.wait_changed(sa.version(), Some(Duration::from_millis(1))), Err(Error::Timeout)));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn wait_changed(&self, seen: u64, timeout: Option<Duration>) -> Result<u64> {
        wait::changed(
            &self.seg,
            self.entry_ref(),
            self.how,
            seen,
            timeout.and_then(crate::shm::wait::deadline),
        )
    }

    /// Copies the array into `dst` (as many elements, C order) without taking the lock, so
    /// that it never makes a writer wait: retries while a write overlaps the copy. Returns the
    /// version copied. `Err(Poisoned)` as the locks.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-sasi-{}", std::process::id());
    /// let sa = SharedArray::<u16, ndarray::Ix1>::create(&name, 4, &Config::array())?;
    /// sa.write()?.fill(7);
    /// let mut out = [0u16; 4];
    /// assert_eq!(sa.snapshot_into(&mut out)?, 1);
    /// assert_eq!(out, [7; 4]);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn snapshot_into(&self, dst: &mut [T]) -> Result<u64> {
        let len = self.dim.size();
        if dst.len() != len {
            return Err(Error::ShapeMismatch {
                expected: vec![len],
                found: vec![dst.len()],
            });
        }
        let seg = &*self.seg;
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(dst);
        loop {
            let begun = self.wait(None, |strong, _| proto::copy_begin(seg, strong))?;
            let version = proto::version(seg);
            // SAFETY: the payload is `bytes.len()` bytes from `ptr()`, 8-aligned (128, from a
            // page-aligned mapping); read only with atomic loads, as writers may store meanwhile.
            unsafe { crate::protocol::copy::atomic_copy(self.ptr().cast::<u8>(), bytes) };
            if proto::copy_end(seg, begun) {
                self.check_poison()?;
                return Ok(version);
            }
        }
    }

    /// A copy of the array and the version it shows, taken as
    /// [`snapshot_into`](SharedArray::snapshot_into) does (without the lock).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-sas-{}", std::process::id());
    /// let sa = SharedArray::<f64, ndarray::Ix2>::create(&name, (2, 2), &Config::array())?;
    /// sa.write()?.fill(0.5);
    /// let (copy, version) = sa.snapshot()?;
    /// assert_eq!((copy.sum(), version), (2.0, 1));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn snapshot(&self) -> Result<(ndarray::Array<T, D>, u64)> {
        let mut v = vec![T::zeroed(); self.dim.size()];
        let version = self.snapshot_into(&mut v)?;
        let a = ndarray::Array::from_shape_vec(self.dim.clone(), v)
            .expect("the vector holds exactly the array's elements");
        Ok((a, version))
    }

    /// Whether a writer died holding the lock since the last [`clear_poison`](Self::clear_poison).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-saip-{}", std::process::id());
    /// let sa = SharedArray::<u8, ndarray::Ix1>::create(&name, 4, &Config::array())?;
    /// assert!(!sa.is_poisoned());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn is_poisoned(&self) -> bool {
        self.seg.array().state.poisoned.load(Acquire) != 0
    }

    /// Declares the array consistent again after a writer died holding its lock (for every
    /// process): the locks stop failing with [`Error::Poisoned`].
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-sacp-{}", std::process::id());
    /// let sa = SharedArray::<u8, ndarray::Ix1>::create(&name, 4, &Config::array())?;
    /// sa.clear_poison();
    /// assert!(sa.write().is_ok());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn clear_poison(&self) {
        self.seg.array().state.poisoned.store(0, Release);
    }

    /// Whether the name stays when the last handle detaches ([`Config::keep`]), for every
    /// process.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-sak-{}", std::process::id());
    /// let sa = SharedArray::<u8, ndarray::Ix1>::create(&name, 4, &Config::array())?;
    /// sa.set_keep(true);
    /// drop(sa);
    /// assert!(SharedArray::<u8, ndarray::Ix1>::open(&name).is_ok());
    /// ndring::remove(&name)?;
    /// # Ok::<(), Error>(())
    /// ```
    pub fn set_keep(&self, keep: bool) {
        self.seg.set_keep(keep);
    }

    /// The array's first element in shared memory, for code that coordinates its own access
    /// (Python's unlocked `as_array()`, a GPU copy engine). Reading or writing through it is
    /// `unsafe`: nothing excludes the other processes.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-saptr-{}", std::process::id());
    /// let sa = SharedArray::<u8, ndarray::Ix1>::create(&name, 4, &Config::array())?;
    /// assert!(!sa.as_mut_ptr().is_null());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn as_mut_ptr(&self) -> *mut T {
        self.ptr()
    }

    fn ptr(&self) -> *mut T {
        self.seg.payload(0).cast::<T>()
    }

    fn entry_ref(&self) -> &crate::header::PeerEntry {
        ArrayMemory::peer(&*self.seg, self.entry)
    }

    fn check_poison(&self) -> Result<()> {
        if self.is_poisoned() {
            return Err(Error::Poisoned {
                name: self.name().into(),
            });
        }
        Ok(())
    }

    fn wait<R>(
        &self,
        deadline: Option<Instant>,
        step: impl FnMut(bool, &mut proto::Wake) -> std::result::Result<R, Wait>,
    ) -> Result<R> {
        wait::until(
            &self.seg,
            self.entry_ref(),
            self.how,
            &self.stuck,
            deadline,
            step,
        )
    }
}

impl<T: Element, D: Dimension> Drop for SharedArray<T, D> {
    fn drop(&mut self) {
        peers::unregister(&self.seg, self.entry, Role::Sharer);
        peers::leave(&self.seg);
    }
}

impl<T: Element, D: Dimension> std::fmt::Debug for SharedArray<T, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedArray")
            .field("name", &self.seg.name())
            .field("dtype", &T::DTYPE)
            .field("shape", &self.shape())
            .field("version", &self.version())
            .finish()
    }
}

//! The zero-copy borrows: `WriteSlot` (a claimed slot being filled) and `ReadSlot` (a received
//! slot being read).

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use ndarray::{ArrayView, ArrayViewMut, Dimension};

use crate::element::Element;
use crate::error::{Error, Result};
use crate::handle::publisher::Publisher;
use crate::protocol::RingMemory;
use crate::shm::segment::Segment;
use crate::sync::Ordering::*;

/// A claimed slot: fill it through the `ArrayViewMut` it derefs to, set its metadata, then
/// [`publish`](WriteSlot::publish) it. Dropped unpublished, it is abandoned: no consumer ever sees
/// it.
///
/// Replacing the view itself (`std::mem::swap(&mut *slot, ..)`) is a bug: `publish` detects it and
/// panics, and the slot is never released.
#[must_use = "a WriteSlot dropped without publish() is abandoned"]
pub struct WriteSlot<'a, T: Element, D: Dimension> {
    publisher: Publisher<'a>,
    view: ArrayViewMut<'a, T, D>,
    /// Where the view must still point, and its shape, at publish (see `view_intact`).
    ptr: *const T,
    dim: D,
    slot: usize,
    /// The ring position it was claimed at (what the publisher needs to publish it).
    pos: u64,
    /// The sequence number publishing assigns (what `publish` returns).
    seq: u64,
    user_len: u32,
    done: bool,
}

impl<'a, T: Element, D: Dimension> WriteSlot<'a, T, D> {
    /// # Safety
    /// The caller owns slot `slot` (claimed at `pos`, to be published as `seq`) exclusively until
    /// `publisher.commit` is called, and the segment's payload for that slot holds `dim`'s elements of
    /// `T`.
    #[inline(always)]
    pub(crate) unsafe fn new(
        publisher: Publisher<'a>,
        slot: usize,
        pos: u64,
        seq: u64,
        dim: D,
    ) -> Self {
        let ptr = publisher.segment().payload(slot).cast::<T>();
        // SAFETY: from the caller: exclusive ownership of the slot's payload, which is
        // 128-aligned (>= align_of::<T>()) and holds exactly `dim.size()` elements of `T`, inside
        // a mapping that `publisher` keeps alive for 'a.
        let view = unsafe { ArrayViewMut::from_shape_ptr(dim.clone(), ptr) };
        WriteSlot {
            publisher,
            view,
            ptr,
            dim,
            slot,
            pos,
            seq,
            user_len: 0,
            done: false,
        }
    }

    /// Stores `meta` (any `Pod` struct: a frame id, an exposure time) in the slot's user
    /// metadata; the receiver reads it with [`ReadSlot::user_meta`].
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-meta-{}", std::process::id());
    /// let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 4, &Config::spsc())?;
    /// let mut rx = Consumer::<u8, ndarray::Ix1>::open(&name)?;
    /// let mut slot = tx.claim()?;
    /// slot.set_user_meta(&[7u32, 8u32])?;
    /// slot.publish();
    /// assert_eq!(rx.recv()?.user_meta::<[u32; 2]>()?, [7, 8]);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn set_user_meta<M: bytemuck::Pod>(&mut self, meta: &M) -> Result<()> {
        self.set_user_meta_bytes(bytemuck::bytes_of(meta))
    }

    /// Stores `bytes` as the slot's user metadata (the byte-slice form of
    /// [`WriteSlot::set_user_meta`], for metadata whose size is known only at run time).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-metab-{}", std::process::id());
    /// let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 4, &Config::spsc())?;
    /// let mut rx = Consumer::<u8, ndarray::Ix1>::open(&name)?;
    /// let mut slot = tx.claim()?;
    /// slot.set_user_meta_bytes(b"frame-7")?;
    /// slot.publish();
    /// assert_eq!(rx.recv()?.user_meta_bytes(), b"frame-7");
    /// # Ok::<(), Error>(())
    /// ```
    pub fn set_user_meta_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        // SAFETY: the slot (its metadata included) is ours until commit.
        unsafe { self.publisher.segment().write_user_meta(self.slot, bytes)? };
        self.user_len = bytes.len() as u32;
        Ok(())
    }

    /// The slot index within the ring.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-idx-{}", std::process::id());
    /// let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 4, &Config::spsc())?;
    /// assert_eq!(tx.claim()?.slot_index(), 0);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn slot_index(&self) -> usize {
        self.slot
    }

    /// Makes the slot visible to consumers; returns its sequence number (1-based).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-pub-{}", std::process::id());
    /// let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 4, &Config::spsc())?;
    /// let mut slot = tx.claim()?;
    /// slot.fill(1);
    /// assert_eq!(slot.publish(), 1);
    /// # ndring::remove(&name)?; // items left unread keep the name (last one out)
    /// # Ok::<(), Error>(())
    /// ```
    #[inline(always)]
    pub fn publish(mut self) -> u64 {
        if !self.view_intact() {
            self.done = true;
            panic!("ndring: the WriteSlot's view was replaced; the slot is leaked, not published");
        }
        self.publisher
            .commit(self.slot, self.pos, Some(self.user_len));
        self.done = true;
        self.seq
    }

    /// Whether the view is still the one we made: same start, same shape, C order. A view
    /// swapped out (`mem::replace`) and split could otherwise keep a part of the slot writable
    /// after publish.
    #[inline]
    fn view_intact(&self) -> bool {
        self.view.as_ptr() == self.ptr
            && self.view.raw_dim() == self.dim
            && self.view.is_standard_layout()
    }
}

impl<'a, T: Element, D: Dimension> Deref for WriteSlot<'a, T, D> {
    type Target = ArrayViewMut<'a, T, D>;
    fn deref(&self) -> &Self::Target {
        &self.view
    }
}

impl<T: Element, D: Dimension> DerefMut for WriteSlot<'_, T, D> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.view
    }
}

impl<T: Element, D: Dimension> Drop for WriteSlot<'_, T, D> {
    #[inline]
    fn drop(&mut self) {
        if !self.done && self.view_intact() {
            self.publisher.commit(self.slot, self.pos, None);
        }
    }
}

/// A received slot: read it through the `ArrayView` it derefs to.
///
/// The slot stays reserved to this receiver until its next call (`recv`, `try_recv`, ... or
/// drop): views copied out of a `ReadSlot` borrow the receiver, so the compiler ensures none
/// outlives the reservation.
pub struct ReadSlot<'a, T: Element, D: Dimension> {
    seg: &'a Segment,
    view: ArrayView<'a, T, D>,
    slot: usize,
    seq: u64,
    _exclusive: PhantomData<&'a mut ()>,
}

impl<'a, T: Element, D: Dimension> ReadSlot<'a, T, D> {
    /// # Safety
    /// Nobody writes slot `slot` for 'a (the protocol reserves it to the caller, who holds a
    /// `&'a mut` borrow of its handle and releases only on its next call), and its payload holds
    /// `dim`'s elements of `T`.
    #[inline(always)]
    pub(crate) unsafe fn new(seg: &'a Segment, slot: usize, seq: u64, dim: D) -> Self {
        // SAFETY: from the caller; the payload is 128-aligned and sized for `dim`.
        let view = unsafe { ArrayView::from_shape_ptr(dim, seg.payload(slot).cast::<T>()) };
        ReadSlot {
            seg,
            view,
            slot,
            seq,
            _exclusive: PhantomData,
        }
    }

    /// The item's sequence number (1-based; queue rings: its position in the stream).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-seq-{}", std::process::id());
    /// let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 4, &Config::spsc())?;
    /// let mut rx = Consumer::<u8, ndarray::Ix1>::open(&name)?;
    /// tx.send(&ndarray::arr1(&[1, 2, 3, 4]))?;
    /// assert_eq!(rx.recv()?.seq(), 1);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// `CLOCK_MONOTONIC` nanoseconds at publish (compare with [`crate::now_ns`]), on rings
    /// created with [`Config::timestamps`](crate::Config::timestamps); `None` on others.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-rts-{}", std::process::id());
    /// let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 4, &Config::spsc().timestamps(true))?;
    /// let mut rx = Consumer::<u8, ndarray::Ix1>::open(&name)?;
    /// tx.send(&ndarray::arr1(&[1, 2, 3, 4]))?;
    /// assert!(rx.recv()?.timestamp_ns().unwrap() <= ndring::now_ns());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn timestamp_ns(&self) -> Option<u64> {
        self.seg
            .timestamps()
            .then(|| self.seg.slot(self.slot).timestamp_ns.load(Relaxed))
    }

    /// The user metadata written with [`WriteSlot::set_user_meta`], as an `M` (bytes beyond what
    /// was written read as zero).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-um-{}", std::process::id());
    /// let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 4, &Config::spsc())?;
    /// let mut rx = Consumer::<u8, ndarray::Ix1>::open(&name)?;
    /// let mut s = tx.claim()?;
    /// s.set_user_meta(&42u64)?;
    /// s.publish();
    /// assert_eq!(rx.recv()?.user_meta::<u64>()?, 42);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn user_meta<M: bytemuck::Pod>(&self) -> Result<M> {
        let capacity = self.seg.user_meta_size();
        let size = std::mem::size_of::<M>();
        if size > capacity {
            return Err(Error::MetaTooLarge { size, capacity });
        }
        let written = (self.seg.slot(self.slot).user_len.load(Relaxed) as usize).min(size);
        let mut out = M::zeroed();
        // SAFETY: the slot is reserved to us (see `new`); `written <= size <= capacity` bytes of
        // metadata lie before the payload.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.seg.user_meta(self.slot),
                bytemuck::bytes_of_mut(&mut out).as_mut_ptr(),
                written,
            )
        };
        Ok(out)
    }

    /// The user metadata bytes written with the item (as many as the producer wrote).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-umb-{}", std::process::id());
    /// let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 4, &Config::spsc())?;
    /// let mut rx = Consumer::<u8, ndarray::Ix1>::open(&name)?;
    /// tx.send(&ndarray::arr1(&[1, 2, 3, 4]))?;
    /// assert!(rx.recv()?.user_meta_bytes().is_empty());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn user_meta_bytes(&self) -> &[u8] {
        // A hostile length is clamped to the room the header declares.
        let len = (self.seg.slot(self.slot).user_len.load(Relaxed) as usize)
            .min(self.seg.user_meta_size());
        // SAFETY: the slot is reserved to us for 'a (see `new`); `len` bytes of metadata lie
        // between the slot control block and the payload.
        unsafe { std::slice::from_raw_parts(self.seg.user_meta(self.slot), len) }
    }

    /// The slot index within the ring.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-ridx-{}", std::process::id());
    /// let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 4, &Config::spsc())?;
    /// let mut rx = Consumer::<u8, ndarray::Ix1>::open(&name)?;
    /// tx.send(&ndarray::arr1(&[1, 2, 3, 4]))?;
    /// assert_eq!(rx.recv()?.slot_index(), 0);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn slot_index(&self) -> usize {
        self.slot
    }
}

impl<'a, T: Element, D: Dimension> Deref for ReadSlot<'a, T, D> {
    type Target = ArrayView<'a, T, D>;
    fn deref(&self) -> &Self::Target {
        &self.view
    }
}

impl<T: Element, D: Dimension> std::fmt::Debug for WriteSlot<'_, T, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteSlot")
            .field("slot", &self.slot)
            .field("seq", &self.seq)
            .field("dtype", &T::DTYPE)
            .field("shape", &self.dim.slice())
            .finish_non_exhaustive()
    }
}

impl<T: Element, D: Dimension> std::fmt::Debug for ReadSlot<'_, T, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadSlot")
            .field("slot", &self.slot)
            .field("seq", &self.seq)
            .field("dtype", &T::DTYPE)
            .field("shape", &self.view.shape())
            .finish_non_exhaustive()
    }
}

//! A segment mapped into this process, read-write (the handles) or read-only (inspection, a
//! look at what holds a name): the one place where an offset of the layout becomes a reference
//! into shared memory.
//!
//! A [`RawMap`] is the mapping before its header is validated: only its state word, its magic
//! and copies of its bytes can be had. [`RawMap::checked`] pairs it with the `Layout` that
//! `layout::decode` (an opener, against the object's real size) or `Layout::compute` (its
//! creator) produced: a [`Mapping`], whose accessors are the only ones in the crate.

use std::ptr::NonNull;

use crate::header::{
    ArrayControl, CallCtrl, Control, LINE, PeerEntry, SLOT_CTRL_SIZE, STATE_READY, SlotCtrl,
};
use crate::layout::{
    self, ARRAY_CONTROL_SIZE, CONTROL_OFFSET, CONTROL_SIZE, FIXED_SIZE, Fixed, Layout,
};
use crate::shm::sys;
use crate::sync::{AtomicU64, Ordering::*};

/// `len` bytes of a segment, mapped shared; its header not validated yet.
#[derive(Debug)]
pub(crate) struct RawMap {
    /// Start of the mapping, page-aligned; `len > 0` bytes.
    base: NonNull<u8>,
    len: usize,
    /// Mapped `PROT_READ`: nothing may store through it, only load (atomic loads of at most 8
    /// bytes and plain volatile reads, which Rust allows on read-only memory).
    read_only: bool,
}

// SAFETY: the mapping is shared memory meant for concurrent use; it is only accessed through
// atomics, volatile copies, or memory whose use the ring protocol grants (`Segment`).
unsafe impl Send for RawMap {}
// SAFETY: as above; `&RawMap` only hands out copies, and `&Mapping` references to atomics.
unsafe impl Sync for RawMap {}

impl RawMap {
    /// Maps the first `len` (> 0) bytes of `fd` shared, read-only or read-write.
    pub(crate) fn new(
        fd: &sys::Handle,
        len: usize,
        read_only: bool,
    ) -> Result<RawMap, rustix::io::Errno> {
        let base = sys::map(fd, len, read_only)?;
        Ok(RawMap {
            base,
            len,
            read_only,
        })
    }

    /// Copies `N` bytes at `offset` with volatile reads: the bytes are shared and hostile, so
    /// each is read once, into our own copy, and only the copy is validated.
    pub(crate) fn copy<const N: usize>(&self, offset: usize) -> [u8; N] {
        assert!(offset.checked_add(N).is_some_and(|end| end <= self.len));
        let mut out = [0u8; N];
        for (i, b) in out.iter_mut().enumerate() {
            // SAFETY: offset + i < offset + N <= len: inside the mapping; a byte read needs no
            // alignment; volatile, since another process may write these bytes.
            *b = unsafe { self.base.as_ptr().add(offset + i).read_volatile() };
        }
        out
    }

    /// The first word: [`layout::MAGIC`] once its creator has begun, 0 before.
    pub(crate) fn magic(&self) -> u64 {
        u64::from_ne_bytes(self.copy::<8>(0))
    }

    /// Whether its creator has marked it ready (with Release: everything it wrote before is
    /// visible after this Acquire). The mapping must hold the fixed header and the control
    /// block.
    pub(crate) fn ready(&self) -> bool {
        assert!(self.len >= FIXED_SIZE + CONTROL_SIZE);
        // SAFETY: CONTROL_OFFSET + size_of::<Control>() <= FIXED_SIZE + CONTROL_SIZE <= len, and
        // the offset is a multiple of 128 from a page-aligned base; `Control` is all atomics,
        // valid for any bits; only its state word is loaded here.
        let control = unsafe { &*self.base.as_ptr().add(CONTROL_OFFSET).cast::<Control>() };
        control.state.load(Acquire) == STATE_READY
    }

    /// Writes the fixed header of a segment its caller has just created (exclusively) and
    /// mapped read-write: no other process reads it before the creator marks it ready.
    pub(crate) fn write_fixed(&self, fixed: Fixed) {
        assert!(!self.read_only && self.len >= FIXED_SIZE);
        // SAFETY: the mapping is writable, `len >= FIXED_SIZE >= size_of::<Fixed>()` bytes and
        // page-aligned; nobody else reads or writes the fixed header before READY.
        unsafe { self.base.cast::<Fixed>().as_ptr().write(fixed) };
    }

    /// Pairs the mapping with its validated layout.
    ///
    /// `layout` must come from `layout::decode` (against at most `len` bytes) or from
    /// `Layout::compute`: each guarantees that every region it places lies inside its
    /// `total_size`, aligned as its words need. Checked here: `total_size <= len`.
    pub(crate) fn checked(self, layout: Layout) -> Mapping {
        assert!(layout.total_size <= self.len);
        Mapping { raw: self, layout }
    }
}

impl Drop for RawMap {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` come from one `sys::map`; every reference into the mapping
        // borrows the `RawMap` or `Mapping` (or the `Segment`, `Inspector` holding it), so none
        // outlives it.
        unsafe { sys::unmap(self.base, self.len) };
    }
}

/// A mapped segment with its validated layout: every region the layout places lies inside the
/// mapping, so each accessor below stays inside it.
#[derive(Debug)]
pub(crate) struct Mapping {
    raw: RawMap,
    layout: Layout,
}

impl Mapping {
    /// The validated layout.
    #[inline]
    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Whether it was mapped `PROT_READ` (then nothing may be stored through it).
    #[inline]
    pub(crate) fn read_only(&self) -> bool {
        self.raw.read_only
    }

    #[inline]
    fn at(&self, offset: usize) -> *mut u8 {
        debug_assert!(offset <= self.layout.total_size);
        // SAFETY: every caller passes an offset inside the layout, and total_size <= len
        // (`RawMap::checked`), so the pointer stays inside the mapping.
        unsafe { self.raw.base.as_ptr().add(offset) }
    }

    /// The control block.
    #[inline]
    pub(crate) fn control(&self) -> &Control {
        // SAFETY: CONTROL_OFFSET + size_of::<Control>() <= total_size <= len, 128-aligned from
        // a page-aligned base; `Control` is all atomics (valid for any bits, and shared mutation
        // through `&` is their purpose; on a read-only mapping only loaded).
        unsafe { &*self.at(CONTROL_OFFSET).cast::<Control>() }
    }

    /// Slot `i`'s control words.
    #[inline]
    pub(crate) fn slot(&self, i: usize) -> &SlotCtrl {
        assert!(i < self.layout.params.slots);
        // SAFETY: i < slots, so the slot's first 64 bytes lie inside the mapping, 128-aligned;
        // `SlotCtrl` is all atomics.
        unsafe {
            &*self
                .at(self.layout.slots_offset + i * self.layout.slot_stride)
                .cast::<SlotCtrl>()
        }
    }

    /// Broadcast index entry `i`.
    #[inline]
    pub(crate) fn index(&self, i: usize) -> &AtomicU64 {
        assert!(i < self.layout.params.slots);
        // SAFETY: the index table holds `slots` u64s from index_offset (128-aligned) inside the
        // mapping.
        unsafe {
            &*self
                .at(self.layout.index_offset + i * 8)
                .cast::<AtomicU64>()
        }
    }

    /// Peer entry `i`.
    #[inline]
    pub(crate) fn peer(&self, i: usize) -> &PeerEntry {
        assert!(i < self.layout.params.max_peers);
        // SAFETY: the peer table holds `max_peers` 128-byte entries from peers_offset
        // (128-aligned) inside the mapping; `PeerEntry` is all atomics.
        unsafe {
            &*self
                .at(self.layout.peers_offset + i * LINE)
                .cast::<PeerEntry>()
        }
    }

    /// A shared array's control words.
    #[inline]
    pub(crate) fn array(&self) -> &ArrayControl {
        assert_eq!(self.layout.params.kind, layout::RingKind::Array);
        // SAFETY: a shared array's layout reserves ARRAY_CONTROL_SIZE bytes (the struct's size)
        // at index_offset (a multiple of 128) inside the mapping; `ArrayControl` is all atomics.
        unsafe { &*self.at(self.layout.index_offset).cast::<ArrayControl>() }
    }

    /// A shared array's stripe word `i`.
    #[inline]
    pub(crate) fn stripe(&self, i: usize) -> &AtomicU64 {
        assert!(self.layout.params.kind == layout::RingKind::Array && i < self.stripes());
        // SAFETY: a shared array's layout reserves `stripes` u64s after its control words,
        // 8-aligned, inside the mapping (`Layout::compute`).
        unsafe {
            &*self
                .at(self.layout.index_offset + ARRAY_CONTROL_SIZE + i * 8)
                .cast::<AtomicU64>()
        }
    }

    /// A shared array's number of stripes.
    #[inline]
    pub(crate) fn stripes(&self) -> usize {
        layout::stripes(&self.layout.params.shape)
    }

    /// Pointer to slot `i`'s array, `payload_bytes` long, 128-aligned. Never turned into a
    /// reference here: who may read or write it is the ring protocol's to say.
    #[inline]
    pub(crate) fn payload(&self, i: usize) -> *mut u8 {
        debug_assert!(i < self.layout.params.slots);
        // SAFETY (of the offset): slots_offset + slots * stride <= total_size and
        // payload_offset + payload_bytes <= stride, so it stays inside the mapping.
        self.at(self.layout.slots_offset + i * self.layout.slot_stride + self.layout.payload_offset)
    }

    /// Pointer to slot `i`'s user metadata bytes (between its control words and its array).
    #[inline]
    pub(crate) fn user_meta(&self, i: usize) -> *mut u8 {
        debug_assert!(i < self.layout.params.slots);
        self.at(self.layout.slots_offset + i * self.layout.slot_stride + SLOT_CTRL_SIZE)
    }

    /// A request/reply segment's call `i` control words (in place of the slot's `SlotCtrl`).
    #[inline]
    pub(crate) fn call(&self, i: usize) -> &CallCtrl {
        assert!(self.layout.params.kind == layout::RingKind::Rpc && i < self.layout.params.slots);
        // SAFETY: i < slots: the slot's first SLOT_CTRL_SIZE >= size_of::<CallCtrl>() bytes lie
        // inside the mapping, 128-aligned; `CallCtrl` is all atomics.
        unsafe {
            &*self
                .at(self.layout.slots_offset + i * self.layout.slot_stride)
                .cast::<CallCtrl>()
        }
    }

    /// Pointer to a request/reply segment's call `i` reply, `reply_bytes` long, 128-aligned.
    #[inline]
    pub(crate) fn reply_payload(&self, i: usize) -> *mut u8 {
        assert!(self.layout.params.kind == layout::RingKind::Rpc && i < self.layout.params.slots);
        // SAFETY (of the offset): reply_offset + reply_bytes <= stride (`Layout::compute`).
        self.at(self.layout.slots_offset + i * self.layout.slot_stride + self.layout.reply_offset)
    }
}

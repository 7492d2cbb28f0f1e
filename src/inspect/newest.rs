//! A copy of a ring's newest item, taken from outside the protocol: no role, no pin, no store,
//! so that it works on a read-only mapping and never disturbs the ring.
//!
//! It is a seqlock read: find the newest published item and its slot, copy the payload with
//! relaxed atomic loads (a concurrent rewrite makes the copy stale, never undefined behaviour),
//! `fence(Acquire)`, then check that the slot cannot have been rewritten meanwhile; if it may
//! have been, discard the copy and try again.
//!
//! * Broadcast: the writer sets `WRITING` in the stamp and fences (Release) before it rewrites a
//!   slot, so an unchanged stamp proves the copy whole (as `Subscriber::recv_into`).
//! * Queues: a producer marks nothing when it starts to rewrite a slot; in turn it may only do
//!   so for position `pos + slots`, which it claims when `tail` reaches `pos + slots` (SPSC) or
//!   by moving `tail` past it (MPMC). So the copy of position `pos` is whole if `tail` is still
//!   below `pos + slots` after the copy, and the slot's stamp still names `pos`. The newest item
//!   is the one furthest from being rewritten (`slots − 1` publishes away). An SPSC producer
//!   that reuses slots out of turn (recent-first; the ring's `out_of_turn` mark says one has)
//!   rewrites a released slot only once its item is no longer the newest: the copy is then
//!   whole if, afterwards, `tail` is still `pos + 1` or `head` still at most `pos`. This check relies on the
//!   producer's `tail` store becoming visible no later than its next payload stores (true on x86,
//!   whose stores are seen in order, and for fenced publishes everywhere); in the language's
//!   memory model it is the usual seqlock caveat for a writer whose stores are not atomics.
//! * MPMC: the newest position whose stamp says published (`pos + 1`) or released
//!   (`pos + slots`). A released item cannot be told from a released tombstone (an abandoned
//!   claim), whose bytes are whatever its producer left.

use crate::error::{Error, Result};
use crate::header::CLOSED;
use crate::layout::RingKind;
use crate::protocol::broadcast::stamp_of;
use crate::protocol::spsc::OUT_OF_TURN;
use crate::sync::{AtomicU64, Ordering::*, fence};
use std::sync::atomic::AtomicU8;

use super::Inspector;

/// Attempts before giving up with `Error::Timeout` (each one is a copy overtaken by the
/// producer; a ring rewritten faster than one item can be copied never yields one).
const ATTEMPTS: u32 = 10_000;

/// What [`Inspector::copy_newest`] copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Newest {
    /// The item's sequence number: its position + 1 (queues), its frame number (broadcast).
    pub seq: u64,
    /// The item's slot.
    pub slot: usize,
    /// Publish time (`ndring::now_ns` clock), on rings created with timestamps.
    pub timestamp_ns: Option<u64>,
    /// Copies discarded because the producer overtook them.
    pub retries: u32,
}

impl Inspector {
    /// Copies the newest published item into `dst` (`payload_bytes()` long, the array in C
    /// order) without taking it: nothing in the ring changes, and a queue item stays there for
    /// its consumer. The item may already have been consumed (its bytes stay until its slot is
    /// reused). `Err(Empty)` if nothing was ever published; `Err(Timeout)` if the producer
    /// overtook 10,000 copies in a row.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-newest-{}", std::process::id());
    /// let mut w = BroadcastWriter::<u16, ndarray::Ix1>::create(&name, 2, &Config::broadcast())?;
    /// let ring = ndring::inspect::Inspector::open(&name)?;
    /// let mut buf = vec![0u8; ring.payload_bytes()];
    /// assert!(matches!(ring.copy_newest(&mut buf), Err(Error::Empty)));
    /// w.send(&ndarray::arr1(&[1u16, 2]).view())?;
    /// w.send(&ndarray::arr1(&[3u16, 4]).view())?;
    /// assert_eq!(ring.copy_newest(&mut buf)?.seq, 2);
    /// assert_eq!(buf, [3u8, 0, 4, 0]);
    /// # let _ = ndring::remove(&name); // items left unread keep the name
    /// # Ok::<(), Error>(())
    /// ```
    pub fn copy_newest(&self, dst: &mut [u8]) -> Result<Newest> {
        if dst.len() != self.payload_bytes() {
            return Err(Error::InvalidConfig(format!(
                "a buffer of {} bytes cannot hold an item of {} bytes",
                dst.len(),
                self.payload_bytes()
            )));
        }
        for retries in 0..ATTEMPTS {
            let found = match self.kind() {
                RingKind::Broadcast => self.try_copy_frame(dst)?,
                RingKind::Spsc | RingKind::Mpmc => self.try_copy_item(dst)?,
            };
            if let Some((seq, slot)) = found {
                let timestamp_ns = self
                    .layout()
                    .params
                    .timestamps
                    .then(|| self.slot(slot).timestamp_ns.load(Relaxed));
                return Ok(Newest {
                    seq,
                    slot,
                    timestamp_ns,
                    retries,
                });
            }
            if retries % 16 == 15 {
                std::thread::yield_now();
            }
        }
        Err(Error::Timeout)
    }

    /// One attempt on a broadcast ring: `Some((seq, slot))` if `dst` now holds frame `seq` whole.
    fn try_copy_frame(&self, dst: &mut [u8]) -> Result<Option<(u64, usize)>> {
        let seq = self.control().published.load(Acquire) & !CLOSED;
        if seq == 0 {
            return Err(Error::Empty);
        }
        let n = self.slot_count();
        let s = self.index((seq % n as u64) as usize).load(Acquire) as usize;
        let s = if s < n && self.slot(s).stamp.load(Acquire) == stamp_of(seq) {
            s
        } else {
            // A newer frame's index entry, or one being written: search the slots.
            match (0..n).find(|&i| self.slot(i).stamp.load(Acquire) == stamp_of(seq)) {
                Some(s) => s,
                None => return Ok(None),
            }
        };
        // SAFETY: s < slots: the payload lies inside the mapping, 128-aligned; it is read only
        // with atomic loads, as the writer's fence protocol requires.
        unsafe { atomic_copy(self.payload(s), dst) };
        fence(Acquire);
        Ok((self.slot(s).stamp.load(Relaxed) == stamp_of(seq)).then_some((seq, s)))
    }

    /// One attempt on a queue ring: `Some((pos + 1, slot))` if `dst` now holds position `pos`.
    fn try_copy_item(&self, dst: &mut [u8]) -> Result<Option<(u64, usize)>> {
        let c = self.control();
        let n = self.slot_count() as u64;
        let tail = c.tail.load(Acquire) & !CLOSED;
        if tail == 0 {
            return Err(Error::Empty);
        }
        let mpmc = self.kind() == RingKind::Mpmc;
        // The stamp of a slot still holding position `pos` (SPSC: `pos + 1` once published;
        // MPMC: `pos + 1` published, `pos + n` released; a tombstone bit set means no item).
        let holds = |st: u64, pos: u64| st == pos + 1 || (mpmc && st == pos + n);
        // SPSC: the newest is `tail − 1`. MPMC: claims may be in progress above the newest
        // published position, so look back at most one lap.
        let newest = (tail.saturating_sub(n)..tail).rev().find(|&pos| {
            let st = self.slot((pos % n) as usize).stamp.load(Acquire);
            holds(st, pos)
        });
        let Some(pos) = newest else {
            return Ok(None);
        };
        let e = (pos % n) as usize;
        // SPSC: the entry of `pos` names its data slot (bounds-checked: hostile input; out of
        // range reads as the entry's own, as the consumer does). A producer that reuses slots
        // out of turn may rewrite it once `pos` is released and no longer the newest item, not
        // only one lap later.
        let (s, out_of_turn) = if mpmc {
            (e, false)
        } else {
            let d = self.slot(e).data_slot.load(Relaxed);
            let slot = d & !OUT_OF_TURN;
            (
                if slot < n { slot as usize } else { e },
                d & OUT_OF_TURN != 0,
            )
        };
        // SAFETY: s < slots: the payload lies inside the mapping, 128-aligned; read only with
        // atomic loads, so a producer rewriting it makes the copy stale, never undefined.
        unsafe { atomic_copy(self.payload(s), dst) };
        fence(Acquire);
        let tail_now = c.tail.load(Relaxed) & !CLOSED;
        // Out of turn (this entry's mark, or the ring's: a producer that switched policy after
        // `pos` was published): whole if `pos` is still unreleased, or still the newest item.
        let out_of_turn = !mpmc && (out_of_turn || c.lifecycle.out_of_turn.load(Relaxed) != 0);
        let still = holds(self.slot(e).stamp.load(Relaxed), pos)
            && tail_now < pos + n
            && (!out_of_turn || tail_now <= pos + 1 || c.head.load(Relaxed) <= pos);
        Ok(still.then_some((pos + 1, s)))
    }
}

/// Copies `dst.len()` bytes from `src` with relaxed atomic loads (8 bytes at a time, then single
/// bytes): loads only, so it works on a read-only mapping.
///
/// # Safety
/// `src` is 8-aligned and valid for `dst.len()` bytes of reads for the call, and this process
/// accesses those bytes only atomically while the call runs.
unsafe fn atomic_copy(src: *const u8, dst: &mut [u8]) {
    let words = dst.len() / 8;
    for (i, chunk) in dst.chunks_exact_mut(8).enumerate() {
        // SAFETY: i < words, so 8 bytes at src + 8i are in range and 8-aligned.
        let v = unsafe { (*src.cast::<AtomicU64>().add(i)).load(Relaxed) };
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in dst[words * 8..].iter_mut().enumerate() {
        // SAFETY: in range, as above; any address is aligned for a byte.
        *b = unsafe { (*src.add(words * 8 + i).cast::<AtomicU8>()).load(Relaxed) };
    }
}

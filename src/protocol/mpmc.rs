//! Multi-producer multi-consumer queue: Vyukov's bounded queue over per-slot stamps.
//!
//! Position `pos` lives in slot `pos % slots`, whose stamp says whose turn it is:
//! `stamp == pos` — free for the producer of `pos`; `stamp == pos + 1` — published for the
//! consumer of `pos`; after the consumer releases it, `stamp == pos + slots`, the producer of the
//! next lap's turn. Producers take positions by CAS on `tail`, consumers by CAS on `head`; the
//! stamp's Release/Acquire pair hands the slot's contents over. Needs at least 2 slots (with one,
//! "published for pos" and "free for pos + 1" would be the same stamp).
//!
//! Before each CAS a peer writes the position it is about to take in its own peer entry
//! (`holding`), so that if it dies a survivor can tell which slot it held (see `recover`).
//! A slot published with the `TOMBSTONE` bit in its stamp (a write slot dropped unpublished, or a
//! dead producer's claim) is released by the consumer that takes it, never delivered.

use crate::header::{CLOSED, PeerEntry};
use crate::protocol::RingMemory;
use crate::protocol::spsc::Stop;
use crate::sync::Ordering::*;

/// Stamp bit: this published position is a tombstone, to be skipped.
pub const TOMBSTONE: u64 = 1 << 62;

/// The slot of position `pos`, `pos % slots`: a mask when `slots` is a power of two (the
/// default rings), as a 64-bit division costs more than the rest of a claim.
#[inline]
pub fn slot_of(pos: u64, slots: u64) -> usize {
    if slots.is_power_of_two() {
        (pos & (slots - 1)) as usize
    } else {
        (pos % slots) as usize
    }
}

#[inline]
fn signed(stamp: u64, b: u64) -> i64 {
    (stamp & !TOMBSTONE).wrapping_sub(b) as i64
}

/// Claims a position for writing. `me` is the caller's peer entry.
#[inline]
pub fn try_claim<M: RingMemory>(mem: &M, me: &PeerEntry, strong: bool) -> Result<u64, Stop> {
    let c = mem.control();
    let n = mem.slots() as u64;
    // Strong: an RMW, so that a `close()` racing with our sleep is seen (or sees us).
    let mut pos = if strong {
        c.tail.fetch_add(0, AcqRel)
    } else {
        c.tail.load(Relaxed)
    };
    loop {
        if pos & CLOSED != 0 {
            return Err(Stop::Closed);
        }
        let slot = mem.slot(slot_of(pos, n));
        let stamp = if strong {
            slot.stamp.fetch_add(0, AcqRel)
        } else {
            slot.stamp.load(Acquire)
        };
        let d = signed(stamp, pos);
        if d == 0 {
            me.holding.store(pos + 1, Relaxed);
            match c.tail.compare_exchange_weak(pos, pos + 1, AcqRel, Relaxed) {
                Ok(_) => return Ok(pos),
                Err(now) => pos = now,
            }
        } else if d < 0 {
            // The slot still holds the previous lap's item: full, unless tail moved meanwhile.
            let now = c.tail.load(Relaxed);
            if now == pos {
                me.holding.store(0, Relaxed);
                return Err(Stop::Wait);
            }
            pos = now;
        } else {
            pos = c.tail.load(Relaxed);
        }
        crate::sync::spin_loop();
    }
}

/// Publishes a claimed position; `abandoned` publishes it as a tombstone that consumers skip.
#[inline]
pub fn publish<M: RingMemory>(mem: &M, me: &PeerEntry, pos: u64, abandoned: bool) {
    let slot = mem.slot(slot_of(pos, mem.slots() as u64));
    // stamp: pos -> pos + 1. An RMW: it hands the contents over (Release) and is the notifier's
    // half of the wake-up argument (Acquire).
    slot.stamp
        .fetch_add(if abandoned { 1 | TOMBSTONE } else { 1 }, AcqRel);
    me.holding.store(0, Release);
}

/// Where the ring stands: (`head`, `tail` without the `CLOSED` bit). Relaxed: a hint for
/// [`crate::shm::wait::Stuck`] (has the ring moved since the last look?), never for a slot's contents.
pub fn positions<M: RingMemory>(mem: &M) -> (u64, u64) {
    let c = mem.control();
    (c.head.load(Relaxed), c.tail.load(Relaxed) & !CLOSED)
}

/// Whether the ring holds published items nobody has received yet: a position between `head`
/// and `tail` whose stamp says published (`pos + 1`, not a tombstone of an abandoned or dead
/// claim). What the last handle out asks before removing the name (`shm::peers::leave`), and
/// what tells an abandoned ring from a finished one (`shm::existing`).
pub fn unread<M: RingMemory>(mem: &M) -> bool {
    let c = mem.control();
    let tail = c.tail.load(Acquire) & !CLOSED;
    let head = c.head.load(Acquire);
    let n = mem.slots() as u64;
    (head..tail.min(head.saturating_add(n)))
        .any(|pos| mem.slot(slot_of(pos, n)).stamp.load(Acquire) == pos + 1)
}

/// Takes the oldest published position for reading, skipping tombstones (each one skipped is
/// counted in `stats.abandoned` by whoever made it, not here).
#[inline]
pub fn try_recv<M: RingMemory>(mem: &M, me: &PeerEntry, strong: bool) -> Result<u64, Stop> {
    recv_step(mem, me, strong, true)
}

/// [`try_recv`] for a consumer polling in a loop: with `look_at_tail == false`, an unpublished
/// position means `Wait` without loading `tail` (so `Closed` is reported only by a poll that
/// looks). A polling consumer that loaded `tail` every time would hold the line the producers'
/// claim CAS must take back: one cache-line transfer more per item.
#[inline]
pub fn try_recv_polling<M: RingMemory>(
    mem: &M,
    me: &PeerEntry,
    look_at_tail: bool,
) -> Result<u64, Stop> {
    recv_step(mem, me, false, look_at_tail)
}

#[inline(always)]
fn recv_step<M: RingMemory>(
    mem: &M,
    me: &PeerEntry,
    strong: bool,
    look_at_tail: bool,
) -> Result<u64, Stop> {
    let c = mem.control();
    let n = mem.slots() as u64;
    let mut pos = c.head.load(Relaxed);
    loop {
        let slot = mem.slot(slot_of(pos, n));
        let stamp = if strong {
            slot.stamp.fetch_add(0, AcqRel)
        } else {
            slot.stamp.load(Acquire)
        };
        let d = signed(stamp, pos + 1);
        if d == 0 {
            me.holding.store(pos + 1, Relaxed);
            match c.head.compare_exchange_weak(pos, pos + 1, AcqRel, Relaxed) {
                Ok(_) => {
                    if stamp & TOMBSTONE != 0 {
                        release(mem, me, pos);
                        pos += 1;
                        continue;
                    }
                    return Ok(pos);
                }
                Err(now) => pos = now,
            }
        } else if d < 0 {
            // Not published yet: empty, in flight, or closed and drained.
            if look_at_tail {
                let t = if strong {
                    c.tail.fetch_add(0, AcqRel)
                } else {
                    c.tail.load(Acquire)
                };
                if t & !CLOSED == pos && t & CLOSED != 0 {
                    me.holding.store(0, Relaxed);
                    return Err(Stop::Closed);
                }
            }
            let now = c.head.load(Relaxed);
            if now == pos {
                me.holding.store(0, Relaxed);
                return Err(Stop::Wait);
            }
            pos = now;
        } else {
            pos = c.head.load(Relaxed);
        }
        crate::sync::spin_loop();
    }
}

/// Releases a position taken by `try_recv` to the producers of the next lap.
#[inline]
pub fn release<M: RingMemory>(mem: &M, me: &PeerEntry, pos: u64) {
    let n = mem.slots() as u64;
    // stamp: pos + 1 (maybe with TOMBSTONE) -> pos + n.
    mem.slot(slot_of(pos, n)).stamp.swap(pos + n, AcqRel);
    me.holding.store(0, Release);
}

/// Sets `CLOSED` on `tail`: no claim succeeds after it; consumers drain, then see `Closed`.
pub fn close<M: RingMemory>(mem: &M) {
    mem.control().tail.fetch_or(CLOSED, AcqRel);
}

/// What a survivor did about a dead peer's `holding` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovered {
    /// Nothing was held, or someone else already finished it.
    Nothing,
    /// A claimed, unpublished slot was published as a tombstone.
    Tombstone,
    /// A slot taken by a dead consumer was released to the producers.
    Released,
}

/// Undoes what the dead peer `dead` held, if anything. `live_holds` says whether a live peer
/// records `pos + 1` as held (then it is theirs, not the dead one's).
///
/// The stamp is changed only by CAS from the exact value that means "claimed, not published"
/// (`pos`, with `tail > pos`) or "taken, not released" (`pos + 1`, with `head > pos`), so a
/// racing owner's own publish or release wins and the survivor does nothing.
pub fn recover<M: RingMemory>(
    mem: &M,
    dead: &PeerEntry,
    live_holds: impl Fn(u64) -> bool,
) -> Recovered {
    let held = dead.holding.load(Acquire);
    if held == 0 {
        return Recovered::Nothing;
    }
    let pos = held - 1;
    let c = mem.control();
    let n = mem.slots() as u64;
    let slot = mem.slot(slot_of(pos, n));
    let stamp = slot.stamp.load(Acquire);
    let result = if stamp == pos && (c.tail.load(Acquire) & !CLOSED) > pos && !live_holds(held) {
        if slot
            .stamp
            .compare_exchange(pos, pos + 1 + TOMBSTONE, AcqRel, Relaxed)
            .is_ok()
        {
            c.stats.recovered_claims.fetch_add(1, Relaxed);
            Recovered::Tombstone
        } else {
            Recovered::Nothing
        }
    } else if stamp & !TOMBSTONE == pos + 1 && c.head.load(Acquire) > pos && !live_holds(held) {
        if slot
            .stamp
            .compare_exchange(stamp, pos + n, AcqRel, Relaxed)
            .is_ok()
        {
            c.stats.recovered_reads.fetch_add(1, Relaxed);
            Recovered::Released
        } else {
            Recovered::Nothing
        }
    } else {
        Recovered::Nothing
    };
    dead.holding.store(0, Release);
    result
}

/// With nothing left to take (`try_recv` said `Wait`): the position whose release the next
/// publish needs, when every published position is taken (`head == tail`) and the slot of
/// position `tail` still holds position `tail - slots` (a reader that holds that position and
/// waits for more would wait forever: the lease consumer reports it).
pub fn awaited_release<M: RingMemory>(mem: &M) -> Option<u64> {
    let c = mem.control();
    let tail = c.tail.load(Acquire) & !CLOSED;
    let head = c.head.load(Acquire);
    if head == tail {
        tail.checked_sub(mem.slots() as u64)
    } else {
        None
    }
}

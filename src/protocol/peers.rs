//! The peer table: who holds which role, proven alive by pid plus process start time.

use crate::header::{OCCUPIED, PeerEntry, WaitWord};
use crate::protocol::RingMemory;
use crate::sync::Ordering::*;

/// The `owner` word of an entry held by `pid` in `role`.
#[inline]
pub fn owner_word(pid: u32, role: u8) -> u64 {
    OCCUPIED | (role as u64) << 32 | pid as u64
}

/// Splits an `owner` word into `(pid, role)`; `None` for a free entry.
#[inline]
pub fn split_owner(word: u64) -> Option<(u32, u8)> {
    (word & OCCUPIED != 0).then_some((word as u32, (word >> 32) as u8))
}

/// An entry's owner as a reader finds it: for a liveness judgement (pid and start time), a
/// recovery (the `word` a takeover or a free must still find) or a listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    /// The `owner` word read.
    pub word: u64,
    pub pid: u32,
    pub role: u8,
    /// The start time the owner stored after taking the entry; 0: not yet stored ("unknown").
    pub start_time: u64,
}

/// Who holds entry `e`; `None` when it is free. The owner word first, then the start time it
/// stored (Acquire each: a taker stores its start time after its owner CAS, see [`try_take`]).
#[inline]
pub fn owner(e: &PeerEntry) -> Option<Owner> {
    let word = e.owner.load(Acquire);
    let (pid, role) = split_owner(word)?;
    Some(Owner {
        word,
        pid,
        role,
        start_time: e.start_time.load(Acquire),
    })
}

/// What entry `e` holds, as its owner published it: `(holding, pin)` (a queue position or an
/// array read count; a broadcast or array range-writer pin), for a recovery or a listing.
#[inline]
pub fn holds(e: &PeerEntry) -> (u64, u64) {
    (e.holding.load(Acquire), e.pin.load(Acquire))
}

/// An SPSC consumer took the position before `next`: should it die holding it, its successor
/// skips every position below `next`. Relaxed: read only by a survivor that judged this owner
/// dead (by `/proc`, long after the store), and the position is delivered either way.
#[inline(always)]
pub fn hold(e: &PeerEntry, next: u64) {
    e.holding.store(next, Relaxed);
}

/// After taking entry `e` over from its dead owner, whose holdings were recovered: clears its
/// pin, and its `holding` unless `keep_holding` (an SPSC consumer's, which stays until the
/// successor's attach has skipped the positions it names).
pub fn clear_after_takeover(e: &PeerEntry, keep_holding: bool) {
    if !keep_holding {
        e.holding.store(0, Release);
    }
    e.pin.store(0, Release);
}

/// Takes back the broadcast pin of entry `e`'s dead owner: whether it held one.
pub fn unpin_dead(e: &PeerEntry) -> bool {
    e.pin.swap(0, AcqRel) != 0
}

/// Whether the segment outlives its last handle (`Config::keep`).
#[inline]
pub fn kept<M: RingMemory>(mem: &M) -> bool {
    mem.control().lifecycle.keep.load(Acquire) != 0
}

/// Takes the free entry `e`, recording `start_time`.
///
/// `start_time` is 0 whenever `owner` is free (see `release`), so while our start time is not
/// yet stored a checker sees 0 ("unknown") and judges us by pid alone, never by a stale time.
pub fn try_take(e: &PeerEntry, owner: u64, start_time: u64) -> Result<(), u64> {
    e.owner.compare_exchange(0, owner, AcqRel, Acquire)?;
    e.start_time.store(start_time, Release);
    Ok(())
}

/// Takes entry `e` over from its dead owner (`dead`, whose start time was `dead_start`). The
/// caller has already dealt with what the dead owner held (`holding`, `pin`).
///
/// The dead start time is cleared first (CAS, so that one of several survivors wins), then the
/// owner swapped: no checker ever pairs our pid with the dead owner's start time. Returns
/// whether we took it (`false`: another survivor changed it first).
pub fn try_take_over(
    e: &PeerEntry,
    dead: u64,
    dead_start: u64,
    owner: u64,
    start_time: u64,
) -> bool {
    if dead_start != 0
        && e.start_time
            .compare_exchange(dead_start, 0, AcqRel, Relaxed)
            .is_err()
    {
        return false;
    }
    if e.owner
        .compare_exchange(dead, owner, AcqRel, Relaxed)
        .is_err()
    {
        return false;
    }
    e.start_time.store(start_time, Release);
    true
}

/// Frees entry `e` of its dead owner (`dead`, started at `dead_start`), in the same order as
/// `try_take_over`; `false` if someone else changed it first.
pub fn free_dead(e: &PeerEntry, dead: u64, dead_start: u64) -> bool {
    if dead_start != 0
        && e.start_time
            .compare_exchange(dead_start, 0, AcqRel, Relaxed)
            .is_err()
    {
        return false;
    }
    e.pin.store(0, Release);
    e.holding.store(0, Release);
    e.owner.compare_exchange(dead, 0, AcqRel, Relaxed).is_ok()
}

/// Frees entry `e` (held by the caller, or by a dead owner whose state was recovered).
///
/// The owner is cleared with an RMW: it is the notifier's half of the disconnect wake-up (see
/// [`attached`]); the caller then notifies the wait word the other side sleeps on.
pub fn release(e: &PeerEntry) {
    e.pin.store(0, Release);
    e.holding.store(0, Release);
    e.sleeping.store(0, Release);
    e.start_time.store(0, Release);
    e.owner.swap(0, AcqRel);
}

/// Records that a peer of `role` has attached (after its registration): a receiver reports
/// `Disconnected` only once the other side has been seen.
pub fn mark_seen<M: RingMemory>(mem: &M, role: u8) {
    mem.control().lifecycle.seen.fetch_or(1 << role, AcqRel);
}

/// Whether a peer of `role` has ever attached.
pub fn seen<M: RingMemory>(mem: &M, role: u8) -> bool {
    mem.control().lifecycle.seen.load(Acquire) & (1 << role) != 0
}

/// Whether an entry of `entries` is taken by a peer of `role` (alive or not: liveness is the
/// caller's business). `strong` reads each owner with an RMW: the re-check before sleeping.
///
/// Why no disconnect wake-up is lost: a sleeper announces itself (`waiters += 1`), then reads
/// every owner with an RMW; a leaving peer clears its owner with an RMW ([`release`]), then
/// loads `waiters`. RMWs on one owner word are totally ordered: if the sleeper's came first, the
/// leaver's reads from it and sees the waiter (and wakes it); if the leaver's came first, the
/// sleeper sees the entry free. Acquire on a free owner also makes everything the leaver
/// published before leaving visible, so a receiver that sees no sender and then an empty ring
/// has really drained it.
pub fn attached<M: RingMemory>(
    mem: &M,
    entries: core::ops::Range<usize>,
    role: u8,
    strong: bool,
) -> bool {
    entries.into_iter().any(|i| {
        let o = &mem.peer(i).owner;
        let word = if strong {
            o.fetch_add(0, AcqRel)
        } else {
            o.load(Acquire)
        };
        split_owner(word).is_some_and(|(_, r)| r == role)
    })
}

/// Whether the other side (`role`, in `entries`) is gone: no entry is taken by it, and it has
/// attached once. The owners are read first (with RMWs when `strong`), `seen` second: if `seen`
/// then reads 0, our owner RMWs came before any registration of that role in each owner's
/// order, so a peer that registers and leaves later sees our waiter when it leaves. (Read in the
/// other order, a peer could register, mark itself seen and leave between a stale `seen` and
/// our sleep, and nobody would wake us.)
pub fn gone<M: RingMemory>(
    mem: &M,
    entries: core::ops::Range<usize>,
    role: u8,
    strong: bool,
) -> bool {
    !attached(mem, entries, role, strong) && seen(mem, role)
}

/// The `sleeping` word of a peer of `pid` asleep on the word tagged `tag`.
#[inline]
pub fn sleeping_word(pid: u32, tag: u64) -> u64 {
    (pid as u64) << 32 | tag
}

/// Takes back the `waiters` announcement of the dead owner (`dead_pid`) of entry `e`, if it
/// died asleep: `word(tag)` gives the wait word of a tag. The CAS names the dead owner, so a
/// successor's own announcement in the same entry is never taken. Returns whether one was.
///
/// A peer counts itself in `waiters` first and records `sleeping` second, and clears `sleeping`
/// before it uncounts itself: a death between the two steps leaves one waiter counted (extra
/// wake-ups, never a lost one), never one uncounted twice.
pub fn undo_sleep<'a>(
    e: &PeerEntry,
    dead_pid: u32,
    word: impl Fn(u64) -> Option<&'a WaitWord>,
) -> bool {
    let s = e.sleeping.load(Acquire);
    if s == 0 || (s >> 32) as u32 != dead_pid {
        return false;
    }
    let Some(w) = word(s & 0xffff_ffff) else {
        return false;
    };
    if e.sleeping.compare_exchange(s, 0, AcqRel, Relaxed).is_err() {
        return false;
    }
    // Never below zero, whatever a hostile or torn segment says.
    let _ = w
        .waiters
        .fetch_update(AcqRel, Acquire, |n| n.checked_sub(1));
    true
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::header::{SLEEPING_NOT_EMPTY, SLEEPING_NOT_FULL};
    use crate::protocol::tests::Mem;

    /// A ring with no slots to speak of: the peer table and control block are all these
    /// functions touch.
    fn mem() -> std::sync::Arc<Mem> {
        Mem::new(2, 3, false)
    }

    #[test]
    fn gone_needs_the_role_seen_and_no_entry_taken() {
        let m = mem();
        // Never seen: not gone (a consumer that attached first waits).
        assert!(!gone(&*m, 0..3, 1, true));
        try_take(&m.peers[1], owner_word(7, 1), 0).unwrap();
        mark_seen(&*m, 1);
        // Another role's entry does not count.
        try_take(&m.peers[2], owner_word(8, 2), 0).unwrap();
        assert!(!gone(&*m, 0..3, 1, false));
        release(&m.peers[1]);
        assert!(gone(&*m, 0..3, 1, true));
        assert!(!gone(&*m, 0..3, 2, false), "role 2 was never seen");
    }

    #[test]
    fn undo_sleep_takes_back_only_the_dead_owners_count_once() {
        let m = mem();
        let w = &m.control.not_empty;
        let e = &m.peers[0];
        w.waiters.store(2, Relaxed);
        e.sleeping
            .store(sleeping_word(42, SLEEPING_NOT_EMPTY), Relaxed);
        let word = |t| match t {
            SLEEPING_NOT_EMPTY => Some(&*m.control.not_empty),
            SLEEPING_NOT_FULL => Some(&*m.control.not_full),
            _ => None,
        };
        // Another pid's record (a successor's) is never taken.
        assert!(!undo_sleep(e, 41, word));
        assert!(undo_sleep(e, 42, word));
        assert_eq!(w.waiters.load(Relaxed), 1);
        assert!(!undo_sleep(e, 42, word), "taken back once");
        // Never below zero, and an unknown tag is left alone.
        w.waiters.store(0, Relaxed);
        e.sleeping
            .store(sleeping_word(42, SLEEPING_NOT_EMPTY), Relaxed);
        assert!(undo_sleep(e, 42, word));
        assert_eq!(w.waiters.load(Relaxed), 0);
        e.sleeping.store(sleeping_word(42, 9), Relaxed);
        assert!(!undo_sleep(e, 42, word));
    }
}

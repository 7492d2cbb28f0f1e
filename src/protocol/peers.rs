//! The peer table: who holds which role, proven alive by pid plus process start time.

use crate::header::{OCCUPIED, PeerEntry};
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
/// owner swapped: no checker ever pairs our pid with the dead owner's start time.
pub fn try_take_over(
    e: &PeerEntry,
    dead: u64,
    dead_start: u64,
    owner: u64,
    start_time: u64,
) -> Result<(), ()> {
    if dead_start != 0 {
        e.start_time
            .compare_exchange(dead_start, 0, AcqRel, Relaxed)
            .map_err(drop)?;
    }
    e.owner
        .compare_exchange(dead, owner, AcqRel, Relaxed)
        .map_err(drop)?;
    e.start_time.store(start_time, Release);
    Ok(())
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
pub fn release(e: &PeerEntry) {
    e.pin.store(0, Release);
    e.holding.store(0, Release);
    e.start_time.store(0, Release);
    e.owner.store(0, Release);
}

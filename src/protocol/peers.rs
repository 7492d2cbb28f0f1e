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

/// Takes entry `e` if it is free (or holds exactly `expected`, a dead owner being replaced).
/// On success `start_time` is recorded; the caller has already dealt with what a dead previous
/// owner held (`holding`, `pin`).
pub fn try_take(e: &PeerEntry, expected: u64, owner: u64, start_time: u64) -> Result<(), u64> {
    e.owner.compare_exchange(expected, owner, AcqRel, Acquire)?;
    e.start_time.store(start_time, Release);
    Ok(())
}

/// Frees entry `e` (held by the caller, or by a dead owner whose state was recovered).
pub fn release(e: &PeerEntry) {
    e.pin.store(0, Release);
    e.holding.store(0, Release);
    e.start_time.store(0, Release);
    e.owner.store(0, Release);
}

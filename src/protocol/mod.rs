//! The concurrency protocols, written once over the [`crate::sync`] shim and a [`RingMemory`],
//! so that the code that runs over a mapped segment is the code that loom model-checks over
//! heap-owned structs in `loom-tests/`.
//!
//! No function here blocks or makes a system call: each is a single non-blocking step. Waiting
//! (spin, then futex) is layered on top in `wait.rs`.
//!
//! # Why no wake-up is lost
//!
//! A sleeper does `waiters += 1` (RMW), reads the futex epoch, then re-checks its condition with
//! an RMW (`fetch_add(0)`) on the word the notifier changes, then sleeps only if the epoch is
//! unchanged. A notifier changes that word with an RMW, then loads `waiters`. RMWs on one word are
//! totally ordered: if the sleeper's check came first, the notifier's RMW reads from it (AcqRel),
//! so the sleeper's `waiters += 1` happens-before the notifier's load, which therefore sees a
//! waiter and bumps the epoch; if the notifier's RMW came first, the sleeper's check sees the
//! change. This needs no `SeqCst` and costs the hot path one RMW it needs anyway.

pub mod broadcast;
pub mod mpmc;
pub mod peers;
pub mod spsc;

#[cfg(all(test, not(loom)))]
mod tests;

use crate::header::{Control, PeerEntry, SlotCtrl, WaitWord};
use crate::sync::{AtomicU64, Ordering::*};

/// Access to a ring's shared words, wherever they live.
pub trait RingMemory {
    /// The control block.
    fn control(&self) -> &Control;
    /// Slot `i`'s control words, `i < slots()`.
    fn slot(&self, i: usize) -> &SlotCtrl;
    /// Broadcast index entry `i`, `i < slots()`.
    fn index(&self, i: usize) -> &AtomicU64;
    /// Peer entry `i`, `i < max_peers()`.
    fn peer(&self, i: usize) -> &PeerEntry;
    /// Number of slots.
    fn slots(&self) -> usize;
    /// Number of peer entries.
    fn max_peers(&self) -> usize;
}

/// First half of going to sleep: registers as a waiter and returns the epoch to sleep on.
/// The caller must then re-check its condition with `strong = true` and, if it still must wait,
/// sleep while the futex word equals the epoch; then call [`end_wait`].
#[inline]
pub fn begin_wait(w: &WaitWord) -> u32 {
    w.waiters.fetch_add(1, AcqRel);
    w.futex.load(Acquire)
}

/// Undoes [`begin_wait`].
#[inline]
pub fn end_wait(w: &WaitWord) {
    w.waiters.fetch_sub(1, Release);
}

/// After changing a condition with an RMW: whether someone may be asleep on it. If so the caller
/// bumps the epoch with [`bump`] and wakes the futex.
#[inline]
pub fn has_waiters(w: &WaitWord) -> bool {
    w.waiters.load(Acquire) != 0
}

/// Changes the epoch so that a sleeper about to sleep on the old one does not.
#[inline]
pub fn bump(w: &WaitWord) {
    w.futex.fetch_add(1, Release);
}

/// Initialises the words of a fresh ring (all zero already, except MPMC stamps).
pub fn init<M: RingMemory>(mem: &M, mpmc: bool) {
    if mpmc {
        for i in 0..mem.slots() {
            mem.slot(i).stamp.store(i as u64, Relaxed);
        }
    }
}

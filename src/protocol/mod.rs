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
//! unchanged. A *fenced* notifier changes that word with an RMW, then loads `waiters`. RMWs on
//! one word are totally ordered: if the sleeper's check came first, the notifier's RMW reads from
//! it (AcqRel), so the sleeper's `waiters += 1` happens-before the notifier's load, which
//! therefore sees a waiter and bumps the epoch; if the notifier's RMW came first, the sleeper's
//! check sees the change. This needs no `SeqCst`.
//!
//! An RMW is a full barrier on x86: each publish then waits for its payload's stores to leave the
//! store buffer, which costs an SPSC stream three quarters of its rate. So an SPSC side (the one
//! notifier of its word) that has seen no sleeper for [`QUIET_PUBLISHES`] publishes goes
//! *plain*: a `Release` store, then a `waiters` load with only a compiler barrier between them
//! (the *light* barrier). That is Dekker's pattern with one fence missing; the sleeper supplies
//! it: having seen `WaitWord::plain == 1`, it issues a *heavy* barrier (Linux `membarrier`,
//! global expedited) between `waiters += 1` and its re-check, which runs a full barrier on every
//! CPU that is running a thread of a registered process, so either the notifier's store is
//! visible to the re-check or the notifier's load sees the waiter. The switch between modes is
//! itself a Dekker handshake over `plain` and `waiters` with `SeqCst` fences (see [`Notifier`]).
//! Under loom, both barriers are `fence(SeqCst)`, which is what `membarrier` guarantees.

pub mod array;
pub mod broadcast;
#[cfg(not(loom))]
pub(crate) mod copy;
pub mod mpmc;
pub mod peers;
pub mod read_ahead;
pub mod rpc;
pub mod spsc;

#[cfg(all(test, not(loom)))]
mod tests;

use crate::header::{Control, PeerEntry, SlotCtrl, WaitWord};
use crate::sync::{AtomicU64, Ordering::*, fence};

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

/// What [`begin_wait`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sleep {
    /// The futex epoch to sleep on.
    pub epoch: u32,
    /// The notifier may be publishing with plain stores: a heavy barrier must come before the
    /// re-check (see the module docs).
    pub heavy: bool,
}

/// First half of going to sleep: registers as a waiter and returns the epoch to sleep on.
/// The caller must then issue a heavy barrier if [`Sleep::heavy`], re-check its condition with
/// `strong = true` and, if it still must wait, sleep while the futex word equals the epoch; then
/// call [`end_wait`].
#[inline]
pub fn begin_wait(w: &WaitWord) -> Sleep {
    // Relaxed: the increment reaches a notifier through the re-check RMW that follows it in
    // program order (a release), not through its own ordering (see the module docs).
    w.waiters.fetch_add(1, Relaxed);
    // Pairs with the fence in `Notifier::go_plain`: either that notifier sees this waiter and
    // stays fenced, or this load sees `plain == 1`.
    fence(SeqCst);
    let epoch = w.futex.load(Acquire);
    Sleep {
        epoch,
        heavy: w.plain.load(Acquire) != 0,
    }
}

/// Undoes [`begin_wait`]. Never below zero: a survivor may have taken this count back already,
/// judging our entry's owner dead by a pid we reuse (`peers::undo_sleep`); wrapping to
/// `u32::MAX` would make every later notification a futex call. (Off the hot path: a sleeper
/// that woke.)
#[inline]
pub fn end_wait(w: &WaitWord) {
    let _ = w
        .waiters
        .fetch_update(Release, Relaxed, |n| n.checked_sub(1));
}

/// After changing a condition with an RMW: whether someone may be asleep on it. If so the caller
/// bumps the epoch with [`bump`] and wakes the futex.
#[inline]
pub fn has_waiters(w: &WaitWord) -> bool {
    // Relaxed: a sleeper's increment that matters happens-before this load (the caller's RMW
    // read from the sleeper's re-check RMW), and coherence alone makes the load see it.
    w.waiters.load(Relaxed) != 0
}

/// Whether a sleeper on epoch `epoch` would not (or no longer) sleep: the epoch moved. What the
/// async reactor checks before it sleeps on many words at once; the futex call compares the
/// same word again, atomically with going to sleep.
#[cfg(feature = "async")]
#[inline]
pub fn epoch_moved(w: &WaitWord, epoch: u32) -> bool {
    w.futex.load(Acquire) != epoch
}

/// Changes the epoch so that a sleeper about to sleep on the old one does not.
#[inline]
pub fn bump(w: &WaitWord) {
    w.futex.fetch_add(1, Release);
}

/// Publishes after which a notifier that saw no sleeper switches to plain stores.
pub const QUIET_PUBLISHES: u32 = 64;

/// The notifying half of one SPSC side, for the [`WaitWord`] it alone notifies.
///
/// Invariants: while `plain` is false every publish is an RMW; `plain` becomes true only after
/// the `go_plain` handshake found no waiter (and `WaitWord::plain` was 1 before that check), and
/// false again, with `WaitWord::plain = 0` stored before the next publish, as soon as a waiter is
/// seen. A notifier that cannot rely on sleepers' heavy barriers (`can_plain == false`: this
/// process could not register for `membarrier`) stays fenced.
#[derive(Debug)]
pub struct Notifier {
    plain: bool,
    can_plain: bool,
    /// Publishes in a row that found no waiter, while fenced.
    quiet: u32,
    /// `quiet` needed to go plain ([`QUIET_PUBLISHES`]; tests use 0).
    quiet_needed: u32,
}

impl Notifier {
    /// A notifier that starts fenced.
    pub fn new(can_plain: bool, quiet_needed: u32) -> Notifier {
        Notifier {
            plain: false,
            can_plain,
            quiet: 0,
            quiet_needed,
        }
    }

    /// Whether the next publish must be an RMW.
    #[inline]
    pub fn fenced(&self) -> bool {
        !self.plain
    }

    /// Call right after each publish; true if someone may be asleep on `w` (the caller bumps
    /// the epoch and wakes the futex).
    #[inline]
    pub fn after_publish(&mut self, w: &WaitWord) -> bool {
        if self.plain {
            crate::sync::light_barrier();
        }
        // Relaxed, as in `has_waiters`; in plain mode the barriers do the ordering.
        if w.waiters.load(Relaxed) != 0 {
            if self.plain {
                self.go_fenced(w);
            }
            self.quiet = 0;
            return true;
        }
        if !self.plain && self.can_plain {
            self.quiet += 1;
            if self.quiet > self.quiet_needed {
                self.go_plain(w);
            }
        }
        false
    }

    #[cold]
    fn go_fenced(&mut self, w: &WaitWord) {
        // Release: a sleeper that reads this 0 sees every plain publish made before it.
        w.plain.store(0, Release);
        self.plain = false;
    }

    #[cold]
    fn go_plain(&mut self, w: &WaitWord) {
        w.plain.store(1, Relaxed);
        // Pairs with the fence in `begin_wait`: a sleeper that this check misses reads `plain == 1`
        // and brings its own (heavy) barrier.
        fence(SeqCst);
        if w.waiters.load(Relaxed) == 0 {
            self.plain = true;
        } else {
            w.plain.store(0, Release);
        }
        self.quiet = 0;
    }

    /// Leaves plain mode for good (the handle is going away or closing).
    pub fn retire(&mut self, w: &WaitWord) {
        if self.plain {
            self.go_fenced(w);
        }
        self.can_plain = false;
    }
}

/// Initialises the words of a fresh ring (all zero already, except MPMC stamps).
pub fn init<M: RingMemory>(mem: &M, mpmc: bool) {
    if mpmc {
        for i in 0..mem.slots() {
            mem.slot(i).stamp.store(i as u64, Relaxed);
        }
    }
}

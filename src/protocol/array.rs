//! The shared array's lock: a reader-writer lock over the whole array, a mutex per stripe of
//! rows for writers of disjoint rows, the version, and the recovery of what a dead process held.
//!
//! # The lock word and the counts
//!
//! * A **reader** counts itself in its own peer entry (`PeerEntry::holding += 1`), then reads
//!   the lock word: it is in unless `EXCLUSIVE` or `RANGES` is set, else it takes its count back.
//! * A **whole-array writer** sets `EXCLUSIVE` with its owner tag (a CAS, so one at a time),
//!   which turns new readers and range writers away, then waits until every entry below the
//!   high-water mark counts no reader (`holding`) and no range writer (`pin`).
//! * A **range writer** counts itself in its entry (`PeerEntry::pin += 1`), then reads the lock
//!   word: it backs off while `EXCLUSIVE` or `READ_WANTED` is set; else it sets `RANGES` (which
//!   turns new readers away), waits for the readers' counts to drain, and takes the mutexes of
//!   its stripes in ascending order (no cycle among range writers).
//! * A reader that finds `RANGES` sets `READ_WANTED` (new range writers back off), waits for
//!   the range writers' counts to drain, and clears both bits.
//!
//! Each "count myself, then read the lock word" pairs with "change the lock word, then read the
//! counts" (Dekker's pattern): every access involved is `SeqCst`, so in their single total order
//! one side sees the other. Those are the necessary orderings (mutants in `.ci/mutants.toml`).
//!
//! No stream of readers starves a writer: once `EXCLUSIVE` is set, readers back off until the
//! writer is done. Readers and range writers alternate through `RANGES`/`READ_WANTED`.
//!
//! # Crash recovery
//!
//! Everything a process holds is named by its own entry (counts) or by its owner tag (the
//! `EXCLUSIVE` holder in the lock word, a stripe's owner), so a survivor that finds the entry's
//! owner dead takes back exactly that ([`recover`]); a dead writer also poisons the array (it may
//! be half-written) and moves the version.
//!
//! # Waking
//!
//! Every release changes its word with an RMW, then wakes sleepers of `released` (lock word,
//! stripes) or `drained` (counts) if there are any; a sleeper's last check before sleeping reads
//! those words with RMWs (`strong`), as in the rings (see the `protocol` module docs).

use crate::header::{ArrayControl, PeerEntry};
use crate::sync::{AtomicU64, Ordering::*, fence};

/// Lock word: a whole-array writer holds the lock or is draining readers.
pub const EXCLUSIVE: u64 = 1 << 63;
/// Lock word: range writers may be inside; readers stay out.
pub const RANGES: u64 = 1 << 62;
/// Lock word: a reader waits for range writers to finish; new range writers stay out.
pub const READ_WANTED: u64 = 1 << 61;
/// Lock word: the bits of the exclusive holder's owner tag.
pub const OWNER: u64 = (1 << 48) - 1;

/// Access to a shared array's words, wherever they live.
pub trait ArrayMemory {
    /// The control words.
    fn array(&self) -> &ArrayControl;
    /// Stripe `i`'s mutex word, `i < stripes()`.
    fn stripe(&self, i: usize) -> &AtomicU64;
    /// Number of stripes.
    fn stripes(&self) -> usize;
    /// Peer entry `i`, `i < max_peers()`.
    fn peer(&self, i: usize) -> &PeerEntry;
    /// Number of peer entries.
    fn max_peers(&self) -> usize;
}

/// The owner tag of entry `index` held by `pid`: never 0, fits [`OWNER`].
#[inline]
pub fn owner_tag(pid: u32, index: usize) -> u64 {
    ((index as u64 + 1) << 32 | pid as u64) & OWNER
}

/// Where a waiter should sleep until its next attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// On `released`: a lock word bit or a stripe must be released.
    Released,
    /// On `drained`: counts in the peer entries must fall.
    Drained,
    /// Not at all: the step changed the lock word; try again at once.
    Retry,
}

/// What a caller must wake after a step: whether it took back a count (a writer may be
/// waiting for it to drain) or cleared a lock word bit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wake {
    /// Wake sleepers of `drained`.
    pub drained: bool,
    /// Wake sleepers of `released`.
    pub released: bool,
}

#[inline]
fn peek(w: &AtomicU64, strong: bool) -> u64 {
    if strong {
        w.fetch_add(0, SeqCst)
    } else {
        w.load(SeqCst)
    }
}

/// Raises the high-water mark to cover entry `index`; before the entry's first lock.
pub fn cover<M: ArrayMemory>(mem: &M, index: usize) {
    mem.array()
        .state
        .high_water
        .fetch_max(index as u32 + 1, SeqCst);
}

/// Whether no entry counts a reader (`readers`) or range writer (`ranges`).
pub fn drained<M: ArrayMemory>(mem: &M, readers: bool, ranges: bool, strong: bool) -> bool {
    let hw = (mem.array().state.high_water.load(SeqCst) as usize).min(mem.max_peers());
    (0..hw).all(|i| {
        let e = mem.peer(i);
        (!readers || peek(&e.holding, strong) == 0) && (!ranges || peek(&e.pin, strong) == 0)
    })
}

/// One attempt of a reader of entry `me` to take the lock shared. `Ok` when it holds it.
pub fn try_read<M: ArrayMemory>(
    mem: &M,
    me: usize,
    strong: bool,
    wake: &mut Wake,
) -> Result<(), Wait> {
    let lock = &mem.array().lock;
    let s = peek(lock, strong);
    if s & EXCLUSIVE != 0 {
        return Err(Wait::Released);
    }
    if s & RANGES != 0 {
        return end_ranges(mem, s, strong, wake);
    }
    let count = &mem.peer(me).holding;
    count.fetch_add(1, SeqCst);
    if lock.load(SeqCst) & (EXCLUSIVE | RANGES) == 0 {
        return Ok(());
    }
    count.fetch_sub(1, SeqCst);
    wake.drained = true;
    Err(Wait::Released)
}

/// A reader (or a copy-out) that found `RANGES` in `s`: turns new range writers away, and
/// clears `RANGES` once the range writers inside are gone.
fn end_ranges<M: ArrayMemory>(mem: &M, s: u64, strong: bool, wake: &mut Wake) -> Result<(), Wait> {
    let lock = &mem.array().lock;
    if s & READ_WANTED == 0 {
        lock.fetch_or(READ_WANTED, SeqCst);
    }
    if !drained(mem, false, true, strong) {
        return Err(Wait::Drained);
    }
    lock.fetch_and(!(RANGES | READ_WANTED), SeqCst);
    // Range writers that backed off for us sleep on `released`.
    wake.released = true;
    Err(Wait::Retry)
}

/// Releases a read lock of entry `me`; the caller then wakes `drained` if it has sleepers (a
/// writer may be waiting for this count to fall).
#[inline]
pub fn read_unlock<M: ArrayMemory>(mem: &M, me: usize) {
    mem.peer(me).holding.fetch_sub(1, SeqCst);
}

/// First half of a whole-array write lock: sets `EXCLUSIVE` with `tag`. `Ok` once set (then
/// drain with [`drained`]`(mem, true, true, ..)`).
pub fn try_exclusive<M: ArrayMemory>(mem: &M, tag: u64, strong: bool) -> Result<(), Wait> {
    let lock = &mem.array().lock;
    let mut s = peek(lock, strong);
    loop {
        if s & EXCLUSIVE != 0 {
            return Err(Wait::Released);
        }
        match lock.compare_exchange(s, (s & !OWNER) | EXCLUSIVE | tag, SeqCst, SeqCst) {
            Ok(_) => return Ok(()),
            // Changed meanwhile (a flag of readers or range writers): look again.
            Err(now) => s = now,
        }
    }
}

/// Releases `EXCLUSIVE` (after writing, or after giving up while draining).
pub fn exclusive_unlock<M: ArrayMemory>(mem: &M) {
    mem.array().lock.fetch_and(!(EXCLUSIVE | OWNER), SeqCst);
}

/// First half of a range write lock for entry `me`: counts it in and sets `RANGES`. `Ok` once
/// in; then wait for [`drained`]`(mem, true, false, ..)`, then take the stripes.
pub fn try_enter_ranges<M: ArrayMemory>(
    mem: &M,
    me: usize,
    strong: bool,
    wake: &mut Wake,
) -> Result<(), Wait> {
    let lock = &mem.array().lock;
    if peek(lock, strong) & (EXCLUSIVE | READ_WANTED) != 0 {
        return Err(Wait::Released);
    }
    let count = &mem.peer(me).pin;
    count.fetch_add(1, SeqCst);
    let s = lock.load(SeqCst);
    if s & (EXCLUSIVE | READ_WANTED) != 0 {
        count.fetch_sub(1, SeqCst);
        wake.drained = true;
        return Err(Wait::Released);
    }
    if s & RANGES == 0 {
        lock.fetch_or(RANGES, SeqCst);
    }
    Ok(())
}

/// Leaves the range writers (after releasing its stripes, or after giving up).
pub fn leave_ranges<M: ArrayMemory>(mem: &M, me: usize) {
    mem.peer(me).pin.fetch_sub(1, SeqCst);
}

/// Takes stripe `i` for `tag`.
pub fn try_stripe<M: ArrayMemory>(mem: &M, i: usize, tag: u64, strong: bool) -> Result<(), Wait> {
    let w = mem.stripe(i);
    if peek(w, strong) != 0 {
        return Err(Wait::Released);
    }
    w.compare_exchange(0, tag, Acquire, Relaxed)
        .map(|_| ())
        .map_err(|_| Wait::Released)
}

/// Releases stripe `i`.
pub fn stripe_unlock<M: ArrayMemory>(mem: &M, i: usize) {
    mem.stripe(i).swap(0, Release);
}

/// Before a writer's first store: a copy-out that overlaps it sees `begun` move.
#[inline]
pub fn begin_write<M: ArrayMemory>(mem: &M) {
    // Release: a copy-out that reads this count also sees the lock word that admitted us
    // (`copy_begin` re-reads it). The fence: a copy-out that reads any of our stores sees it.
    mem.array().versions.begun.fetch_add(1, Release);
    fence(Release);
}

/// After a writer's last store: the version moves (before the lock is released).
#[inline]
pub fn end_write<M: ArrayMemory>(mem: &M) -> u64 {
    mem.array().versions.done.fetch_add(1, Release) + 1
}

/// The version: how many writes have ended.
#[inline]
pub fn version<M: ArrayMemory>(mem: &M) -> u64 {
    mem.array().versions.done.load(Acquire)
}

/// A lock-free copy-out's opening check: `Some(begun)` to copy now, `None` while a writer is
/// inside (or may be: `RANGES`). A `RANGES` left with no range writer inside is cleared, as a
/// reader would.
pub fn copy_begin<M: ArrayMemory>(mem: &M, wake: &mut Wake) -> Option<u64> {
    let lock = &mem.array().lock;
    let s = lock.load(Acquire);
    if s & EXCLUSIVE != 0 {
        return None;
    }
    if s & RANGES != 0 {
        let _ = end_ranges(mem, s, false, wake);
        return None;
    }
    let begun = mem.array().versions.begun.load(Acquire);
    // A writer that took the lock before `begun` was read shows in the lock word read after it.
    (lock.load(Acquire) & (EXCLUSIVE | RANGES) == 0).then_some(begun)
}

/// A lock-free copy-out's closing check, after copying with atomic loads: whether the copy is
/// one state of the array (no writer began meanwhile).
pub fn copy_end<M: ArrayMemory>(mem: &M, begun: u64) -> bool {
    // Pairs with `begin_write`'s fence: a copy that read any store of a writer sees its `begun`.
    fence(Acquire);
    mem.array().versions.begun.load(Relaxed) == begun
}

/// What [`recover`] took back from a dead entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Read locks.
    pub reads: u64,
    /// Whole-array or stripe write locks (the array is now poisoned).
    pub writes: u64,
}

/// Takes back what the dead owner of entry `index` (`tag` = its owner tag) held: its read and
/// range-writer counts, the exclusive lock, its stripes. A write lock taken back poisons the
/// array and moves the version (the array may have changed, halfway).
pub fn recover<M: ArrayMemory>(mem: &M, index: usize, tag: u64) -> Recovered {
    let e = mem.peer(index);
    let reads = e.holding.swap(0, SeqCst);
    e.pin.swap(0, SeqCst);
    let mut writes = 0;
    let lock = &mem.array().lock;
    let s = lock.load(SeqCst);
    if s & EXCLUSIVE != 0
        && s & OWNER == tag
        && lock
            .compare_exchange(s, s & !(EXCLUSIVE | OWNER), SeqCst, SeqCst)
            .is_ok()
    {
        writes += 1;
    }
    for i in 0..mem.stripes() {
        if mem
            .stripe(i)
            .compare_exchange(tag, 0, AcqRel, Relaxed)
            .is_ok()
        {
            writes += 1;
        }
    }
    if writes > 0 {
        mem.array().state.poisoned.store(1, SeqCst);
        mem.array().versions.done.fetch_add(1, Release);
    }
    Recovered { reads, writes }
}

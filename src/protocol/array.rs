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
//! * A reader that finds `RANGES` (and no `READ_WANTED`) *leads*: it sets `READ_WANTED` with
//!   its owner tag (a CAS, so one leader at a time; new range writers back off), waits for the
//!   range writers' counts to drain, and clears `RANGES`, `READ_WANTED` and the tag at once.
//!   Other readers wait for it. Only the leader clears, and nothing else changes the word while
//!   `READ_WANTED` is set, so its scan is never stale: two readers clearing on the strength of
//!   scans made at different times could let a range writer in between unseen (a data race that
//!   `loom-tests/tests/array.rs` finds). A leader that gives up ([`give_up_lead`]) clears
//!   `READ_WANTED` alone; a dead one's is cleared by [`recover`] (by its tag).
//! * A whole-array writer also waits while `READ_WANTED` is set (the tag would be lost).
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
/// Lock word: the bits of the owner tag of the exclusive holder (with `EXCLUSIVE`) or of the
/// leading reader (with `READ_WANTED`).
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

/// One attempt of a reader of entry `me` (owner tag `tag`) to take the lock shared. `Ok` when
/// it holds it. `lead` is the caller's, kept across attempts (false at first): whether it leads
/// the readers out of `RANGES` (module docs); a caller that gives up while it leads calls
/// [`give_up_lead`].
pub fn try_read<M: ArrayMemory>(
    mem: &M,
    me: usize,
    tag: u64,
    lead: &mut bool,
    strong: bool,
    wake: &mut Wake,
) -> Result<(), Wait> {
    if *lead {
        return lead_out_of_ranges(mem, lead, strong, wake);
    }
    let lock = &mem.array().lock;
    let s = peek(lock, strong);
    if s & (EXCLUSIVE | READ_WANTED) != 0 {
        return Err(Wait::Released);
    }
    if s & RANGES != 0 {
        // `s` holds no tag (neither `EXCLUSIVE` nor `READ_WANTED`).
        if lock
            .compare_exchange(s, s | READ_WANTED | tag, SeqCst, SeqCst)
            .is_err()
        {
            return Err(Wait::Retry);
        }
        *lead = true;
        return lead_out_of_ranges(mem, lead, strong, wake);
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

/// The leading reader (`READ_WANTED` is ours): clears `RANGES` once no range writer is inside.
fn lead_out_of_ranges<M: ArrayMemory>(
    mem: &M,
    lead: &mut bool,
    strong: bool,
    wake: &mut Wake,
) -> Result<(), Wait> {
    if !drained(mem, false, true, strong) {
        return Err(Wait::Drained);
    }
    mem.array()
        .lock
        .fetch_and(!(RANGES | READ_WANTED | OWNER), SeqCst);
    *lead = false;
    // Readers that waited for us, and range writers that backed off, sleep on `released`.
    wake.released = true;
    Err(Wait::Retry)
}

/// A reader that leads (`*lead`) and gives up (timeout): clears `READ_WANTED`, so that range
/// writers come in again (`RANGES` stays: readers stay out). The caller wakes `released`.
pub fn give_up_lead<M: ArrayMemory>(mem: &M, lead: &mut bool, wake: &mut Wake) {
    if *lead {
        mem.array().lock.fetch_and(!(READ_WANTED | OWNER), SeqCst);
        *lead = false;
        wake.released = true;
    }
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
        if s & (EXCLUSIVE | READ_WANTED) != 0 {
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

/// Releases stripe `i`; the caller then wakes `released`.
pub fn stripe_unlock<M: ArrayMemory>(mem: &M, i: usize) {
    // Release: our rows' stores happen-before the next holder's. Acquire: the RMW that a
    // sleeper's strong re-check of this stripe pairs with, before the caller looks for
    // sleepers (`protocol` module docs).
    mem.stripe(i).swap(0, AcqRel);
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
    // AcqRel: the RMW that a `wait_changed` sleeper's re-check pairs with before the caller
    // looks for sleepers (`protocol` module docs).
    mem.array().versions.done.fetch_add(1, AcqRel) + 1
}

/// The version: how many writes have ended.
#[inline]
pub fn version<M: ArrayMemory>(mem: &M) -> u64 {
    mem.array().versions.done.load(Acquire)
}

/// A lock-free copy-out's opening check: `Ok(begun)` to copy now, `Err` while a writer is
/// inside (or may be), saying where to sleep. Loads only (an inspector's mapping is read-only):
/// a `RANGES` left by range writers that are gone does not stop it, their counts are looked at.
pub fn copy_begin<M: ArrayMemory>(mem: &M, strong: bool) -> Result<u64, Wait> {
    let lock = &mem.array().lock;
    if peek(lock, strong) & EXCLUSIVE != 0 {
        return Err(Wait::Released);
    }
    let begun = mem.array().versions.begun.load(Acquire);
    // A writer whose `begin_write` we read took the lock before: a whole-array writer shows in
    // the lock word read after it, a range writer in its count (and `RANGES`).
    let s = lock.load(Acquire);
    if s & EXCLUSIVE != 0 {
        return Err(Wait::Released);
    }
    if s & RANGES != 0 && !drained(mem, false, true, strong) {
        return Err(Wait::Drained);
    }
    Ok(begun)
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
    } else if s & READ_WANTED != 0 && s & OWNER == tag {
        // A reader that died leading: range writers may come in again (no write to undo).
        let _ = lock.compare_exchange(s, s & !(READ_WANTED | OWNER), SeqCst, SeqCst);
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
        mem.array().versions.done.fetch_add(1, AcqRel);
    }
    Recovered { reads, writes }
}

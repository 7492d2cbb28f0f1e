//! The shared, mutable part of a segment: the control lines, the per-slot control blocks and the
//! peer table. Every field that two processes touch is an atomic; each counter that one side writes
//! often sits on its own 128-byte line (two 64-byte lines: the adjacent-line prefetcher pairs them),
//! so that a producer and a consumer never false-share.
//!
//! These structs are laid over the mapping by `Segment` and owned on the heap by the loom tests:
//! the protocol code cannot tell which.

use crate::sync::{AtomicU32, AtomicU64};

/// Size of one isolated line: two cache lines, against the adjacent-line prefetcher.
pub const LINE: usize = 128;

/// A value alone on its own [`LINE`].
#[repr(C, align(128))]
#[derive(Debug, Default)]
pub struct Line<T>(pub T);

impl<T> std::ops::Deref for Line<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}

/// A futex word and the count of processes asleep on it.
///
/// Invariant: a notifier makes the `futex` system call only when `waiters != 0`; a waiter
/// increments `waiters` before its last check of the condition, so no wake-up is lost (see
/// `protocol` for the ordering argument).
#[repr(C)]
#[derive(Debug, Default)]
pub struct WaitWord {
    /// Bumped by every notification that found a waiter; waiters sleep while it is unchanged.
    pub futex: AtomicU32,
    /// Number of threads (in any process) between "about to sleep" and "woke".
    pub waiters: AtomicU32,
    /// 1 while this word's single notifier (an SPSC side) publishes with plain stores and no
    /// fence; 0 (the initial, always-safe value) while every notification is an RMW. A sleeper
    /// that reads 1 must issue a heavy barrier (`membarrier`) before its last check. Written only
    /// by the notifier; see `protocol::Notifier`.
    pub plain: AtomicU32,
}

/// Counters of unusual events, readable by anyone (see `Stats` in the public API).
#[repr(C)]
#[derive(Debug, Default)]
pub struct StatsWords {
    /// Write slots dropped without `publish` (queue rings), skipped by consumers.
    pub abandoned: AtomicU64,
    /// Claimed slots of dead producers turned into tombstones by a survivor.
    pub recovered_claims: AtomicU64,
    /// Slots held by dead consumers that were returned to producers, or pins of dead subscribers
    /// that were dropped.
    pub recovered_reads: AtomicU64,
    /// Roles (SPSC producer/consumer, broadcast writer) taken over from a dead holder.
    pub role_takeovers: AtomicU64,
}

/// Who has been attached, and whether the name outlives its last handle (format version 3).
#[repr(C)]
#[derive(Debug, Default)]
pub struct Lifecycle {
    /// Bit `1 << role` is set (with `fetch_or`) once a peer of that role has attached to the ring;
    /// never cleared. A receiver reports `Disconnected` only once the sending role has been seen,
    /// so a consumer that attaches before any producer waits.
    pub seen: AtomicU32,
    /// 1: the name stays when the last handle detaches (`Config::keep(true)`); 0: the last
    /// handle out removes it.
    pub keep: AtomicU32,
    /// 1 once an SPSC producer of this ring has reused slots out of turn (recent-first, or a
    /// free list after a corrupt takeover): stored, then a Release fence, before that producer's
    /// first such claim; never cleared. Such a producer may rewrite a released slot as soon as
    /// its position is released and no longer the newest, so a non-consuming reader
    /// (`copy_newest`) that finds it set accepts a copy of position `pos` only if, afterwards,
    /// `tail <= pos + 1` (still the newest) or `head <= pos` (not yet released).
    pub out_of_turn: AtomicU32,
}

/// The control block that follows the fixed header.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Control {
    /// `STATE_READY` once the creator has written everything else (stored last, Release).
    pub state: Line<AtomicU32>,
    /// Queue rings: the producers' position, i.e. the number of slots ever claimed (MPMC) or
    /// published (SPSC). Bit 63 (`CLOSED`) is set once by `close()`; no claim succeeds after it.
    pub tail: Line<AtomicU64>,
    /// Queue rings: the consumers' position, i.e. the number of slots ever taken (MPMC) or
    /// released (SPSC).
    pub head: Line<AtomicU64>,
    /// Consumers and subscribers sleep here until something is published or the ring closes.
    pub not_empty: Line<WaitWord>,
    /// Producers sleep here until a slot is released or the ring closes.
    pub not_full: Line<WaitWord>,
    /// Broadcast rings: the sequence number of the newest published frame (0: none yet).
    /// Bit 63 (`CLOSED`) is set by the writer's `close()`.
    pub published: Line<AtomicU64>,
    /// Event counters.
    pub stats: Line<StatsWords>,
    /// Roles seen, and whether the name is kept.
    pub lifecycle: Line<Lifecycle>,
}

/// The control words at the start of every slot, on the slot's first line (the user metadata
/// follows on the same line, the payload on the next 128-byte boundary).
#[repr(C)]
#[derive(Debug, Default)]
pub struct SlotCtrl {
    /// MPMC: Vyukov's stamp: `pos` when free for the producer of position `pos`, `pos + 1` when
    /// published for the consumer of `pos`. SPSC: `pos + 1` once position `pos` is published
    /// (a consumer that has caught up polls it, on the slot's own line, rather than `tail`).
    /// Broadcast: `seq << 1` when it holds frame `seq` (0: never written), with bit 0
    /// (`WRITING`) set while the writer rewrites it.
    pub stamp: AtomicU64,
    /// SPSC: the data slot holding the item of the position this slot's words describe (low 32
    /// bits; bit 32, `spsc::OUT_OF_TURN`, when the producer may rewrite it as soon as the
    /// position is released; see `protocol::spsc`); stored before `stamp`. MPMC and broadcast: reserved (0). (A queue
    /// item's sequence number is its position + 1 and a broadcast frame's is in `stamp`.)
    pub data_slot: AtomicU64,
    /// `CLOCK_MONOTONIC` nanoseconds at publish, on rings created with timestamps (else 0).
    pub timestamp_ns: AtomicU64,
    /// Reserved (0).
    pub flags: AtomicU32,
    /// Bytes of user metadata written with this item.
    pub user_len: AtomicU32,
    /// Reserved (0).
    pub owner: AtomicU64,
}

/// The control words at the start of each slot (one call) of a request/reply segment, in place
/// of [`SlotCtrl`]; the request's user metadata, the request and the reply follow.
#[repr(C)]
#[derive(Debug, Default)]
pub struct CallCtrl {
    /// Who holds the call and how far it is: `protocol::rpc` (state code, server and client
    /// entries, generation, client pid).
    pub state: AtomicU64,
    /// The caller sleeps here until its reply (or failure) is in.
    pub reply: WaitWord,
    /// Bytes of user metadata written with the request.
    pub meta_len: AtomicU32,
}

/// [`PeerEntry::sleeping`] (request/reply): asleep on call `i`'s reply word, tagged
/// `SLEEPING_REPLY + i`.
pub const SLEEPING_REPLY: u64 = 16;

/// Size reserved for [`SlotCtrl`] at the start of a slot; user metadata starts here.
pub const SLOT_CTRL_SIZE: usize = 64;

/// One entry of the peer table: who holds a role, and what it holds.
#[repr(C, align(128))]
#[derive(Debug, Default)]
pub struct PeerEntry {
    /// 0 when free; else `OCCUPIED | role << 32 | pid`.
    pub owner: AtomicU64,
    /// The owner's process start time (clock ticks since boot, from `/proc/PID/stat`), to tell a
    /// live owner from a reused pid. 0 while being registered.
    pub start_time: AtomicU64,
    /// Broadcast subscribers: `slot + 1` of the slot it has pinned, 0 if none. The writer never
    /// rewrites a pinned slot.
    pub pin: AtomicU64,
    /// Queue rings: `pos + 1` of the position this peer has claimed (producer) or holds
    /// (consumer), 0 if none; lets a survivor undo what a dead peer held.
    pub holding: AtomicU64,
    /// `pid << 32 | word` while this peer's thread counts in the `waiters` of a wait word
    /// (`SLEEPING_NOT_EMPTY` or `SLEEPING_NOT_FULL`), else 0: lets a survivor take back the
    /// announcement of a peer that died asleep, so that notifiers stop waking no one.
    pub sleeping: AtomicU64,
}

/// [`PeerEntry::sleeping`]: asleep on `not_empty`.
pub const SLEEPING_NOT_EMPTY: u64 = 1;
/// [`PeerEntry::sleeping`]: asleep on `not_full`.
pub const SLEEPING_NOT_FULL: u64 = 2;
/// [`PeerEntry::sleeping`] (shared arrays): asleep on [`ArrayControl::released`].
pub const SLEEPING_RELEASED: u64 = 3;
/// [`PeerEntry::sleeping`] (shared arrays): asleep on [`ArrayControl::drained`].
pub const SLEEPING_DRAINED: u64 = 4;
/// [`PeerEntry::sleeping`] (shared arrays): asleep on [`ArrayControl::changed`].
pub const SLEEPING_CHANGED: u64 = 5;

/// The words of a shared array (kind 4), at the layout's `index_offset`, followed by its stripe
/// words (one `AtomicU64` each: 0 when free, else the owner tag of the range writer holding it).
///
/// The array's lock is a reader-writer lock over the whole array plus a mutex per stripe of the
/// first axis, for writers of disjoint rows (`protocol::array`). Readers and range writers count
/// themselves in their own peer entry (`PeerEntry::holding`: read guards, `PeerEntry::pin`:
/// range-write guards), so that a survivor can take back exactly what a dead process held.
#[repr(C)]
#[derive(Debug, Default)]
pub struct ArrayControl {
    /// The lock word: `EXCLUSIVE` (bit 63) with the owner tag (pid | entry << 32) in the low 48
    /// bits while a whole-array writer holds or drains; `RANGES` (bit 62) while range writers may
    /// be inside (readers stay out); `READ_WANTED` (bit 61) while a reader waits for the range
    /// writers to finish (new range writers stay out). See `protocol::array`.
    pub lock: Line<AtomicU64>,
    /// Sleepers waiting for the lock word or a stripe to change (bumped by every release).
    pub released: Line<WaitWord>,
    /// Sleepers waiting for the readers' or range writers' counts to fall (bumped by releases).
    pub drained: Line<WaitWord>,
    /// Write counters: `begun`, then `done` (the array's version).
    pub versions: Line<Versions>,
    /// `wait_changed` sleepers (bumped when `done` moves).
    pub changed: Line<WaitWord>,
    /// Poison flag and the peer table's high-water mark.
    pub state: Line<ArrayState>,
}

/// [`ArrayControl::versions`].
#[repr(C)]
#[derive(Debug, Default)]
pub struct Versions {
    /// Writes that have begun (incremented, then a Release fence, before a writer's first
    /// store): a lock-free copy-out that sees it move retries.
    pub begun: AtomicU64,
    /// Writes that have ended: the version that `wait_changed` waits on. Also moved by the
    /// recovery of a dead writer.
    pub done: AtomicU64,
}

/// [`ArrayControl::state`].
#[repr(C)]
#[derive(Debug, Default)]
pub struct ArrayState {
    /// 1 once a writer died holding the lock (the array may be half-written) until someone calls
    /// `clear_poison`; 0 otherwise.
    pub poisoned: AtomicU32,
    /// One more than the highest peer entry ever taken: writers scan the entries below it for
    /// readers. Raised (`fetch_max`, SeqCst) by each handle before its first lock.
    pub high_water: AtomicU32,
}

/// The [`PeerEntry::owner`] bit that marks an entry as taken.
pub const OCCUPIED: u64 = 1 << 40;

/// Values of [`Control::state`].
pub const STATE_READY: u32 = 0x5245_4459; // "READ" "Y"

/// Bit 63 of `tail` / `published`: closed.
pub const CLOSED: u64 = 1 << 63;

#[cfg(not(loom))]
const _: () = {
    assert!(std::mem::size_of::<SlotCtrl>() <= SLOT_CTRL_SIZE);
    assert!(std::mem::size_of::<CallCtrl>() <= SLOT_CTRL_SIZE);
    assert!(std::mem::size_of::<PeerEntry>() == LINE);
    // Where these words sit in a segment is `layout`'s to say, and to assert.
    assert!(std::mem::offset_of!(Lifecycle, keep) == 4);
    assert!(std::mem::offset_of!(PeerEntry, sleeping) == 32);
};

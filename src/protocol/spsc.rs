//! Single-producer single-consumer queue: two positions, no CAS, and slots reused most recently
//! released first.
//!
//! `tail` counts published items and is written only by the producer; `head` counts released
//! items and is written only by the consumer (besides the `fetch_add(0)` re-checks of sleepers,
//! which do not change them). Position `pos` is described by the control words of slot
//! `pos % slots` (its *entry*): the producer stores there the *data slot* that holds the item
//! (`SlotCtrl::data_slot`), then sets the entry's `stamp` to `pos + 1`, then advances `tail`.
//! The producer may fill position `tail` when `tail - head < slots`; the consumer may read
//! position `head` when `head < tail`, or when the entry's stamp says `head + 1`.
//!
//! **Which data slot.** Delivery is FIFO by position, but the data slot is the producer's
//! choice. An eager producer (large items by default, `Producer::reuse_recent_slots`) keeps a
//! stack of free data slots and takes the one released most recently (a LIFO), except the slot
//! of the newest item while another is free: when the consumer keeps up, the ring's working set
//! stays two slots whatever its depth (a FIFO ring walks every slot: at 8 slots of 6 MB frames
//! the walk spills the L3 cache), and a non-consuming reader copying the newest item has until
//! the next publish. Small items reuse slots in release order, which keeps position `pos` in
//! slot `pos % slots` and each item's control words on the line of its entry's stamp. The stack
//! is private and rebuilt from `head` alone: the data slots named by positions `head..tail` are
//! in use, every other one is free.
//!
//! Each side caches the other's position and reloads it only when the cache says full (or
//! empty), as rtrb does, so a side that runs behind touches the other side's line once per lap
//! rather than once per item; a consumer that has caught up polls the stamp of the next entry
//! rather than `tail`. An eager producer ([`Producer::set_eager`]) reloads `head` at every claim
//! while anything is outstanding, so that it sees each release as soon as it happens (one line
//! read, nothing beside the copy of a large item).
//!
//! Each side is the only notifier of one [`WaitWord`](crate::header::WaitWord) (the producer of
//! `not_empty`, the consumer of `not_full`) and publishes with plain stores or RMWs as its
//! [`Notifier`] says (see the module docs of `protocol`).

use std::collections::VecDeque;

use crate::header::{CLOSED, Control};
use crate::protocol::{Notifier, RingMemory};
use crate::sync::{AtomicU64, Ordering::*, fence};

/// Whether the ring holds published items nobody has received yet (`tail > head`): what the last
/// handle out asks before removing the name (`shm::peers::leave`), and what tells an abandoned
/// ring from a finished one (`shm::existing`).
pub fn unread<M: RingMemory>(mem: &M) -> bool {
    let c = mem.control();
    c.tail.load(Acquire) & !CLOSED > c.head.load(Acquire)
}

/// The data slot that entry `entry` (of position `pos`, `entry == pos % slots`) names, once an
/// Acquire load of its stamp or of `tail` has shown `pos` published. A name out of range (only a
/// corrupt producer writes one) reads as the entry's own slot: the index stays in bounds, and
/// such a producer could write any slot's contents anyway. Used by the consumer and by a reader
/// that holds several positions at once (`lease/read.rs`).
#[inline]
pub fn data_slot_of<M: RingMemory>(mem: &M, entry: usize) -> usize {
    let d = mem.slot(entry).data_slot.load(Relaxed) & !OUT_OF_TURN;
    if d < mem.slots() as u64 {
        d as usize
    } else {
        entry
    }
}

/// [`data_slot_of`] out of line: the consumer's unexpected case (see `Consumer::data_slot`).
#[cold]
#[inline(never)]
fn data_slot_elsewhere<M: RingMemory>(mem: &M, entry: usize) -> usize {
    data_slot_of(mem, entry)
}

/// Marks the ring as one whose producer reuses slots out of turn (`Lifecycle::out_of_turn`),
/// before the first such claim: the fence orders the mark before every later payload store, so
/// a reader that copied bytes of such a rewrite and then fences (Acquire) sees the mark.
fn mark_out_of_turn(c: &Control) {
    if c.lifecycle.out_of_turn.load(Relaxed) == 0 {
        c.lifecycle.out_of_turn.store(1, Relaxed);
    }
    fence(Release);
}

/// Outcome of a step that did not get a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Full (producer) or empty (consumer): wait and retry.
    Wait,
    /// Closed (and, for the consumer, drained).
    Closed,
}

/// `(slot + 1) % slots`, without a division.
#[inline]
fn next_slot(slot: usize, slots: u64) -> usize {
    if slot as u64 + 1 == slots {
        0
    } else {
        slot + 1
    }
}

/// Bit of `SlotCtrl::data_slot` set by a producer that reuses slots out of turn (recent-first,
/// or a free list after a corrupt takeover): the named slot may be rewritten as soon as its
/// position is released, not only by the position one lap later. The slot is the low 32 bits.
pub const OUT_OF_TURN: u64 = 1 << 32;

/// Marks a position whose data slot is unknown (a corrupt entry found at takeover): its slot is
/// never freed by this producer.
const UNKNOWN: u32 = u32::MAX;

/// How the producer picks the data slot of the next position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reuse {
    /// Small items: position `pos` reuses the slot that position `pos - slots` (the previous
    /// user of its entry) had, which `pos` may only be claimed after. `named` is then a
    /// permutation of the slots, and a fresh ring puts `pos` in slot `pos % slots`: no free list
    /// to keep, and an item's own control words share the line of its entry's stamp.
    Cycle,
    /// The free list `free`, refilled from `head`, in release order (a takeover that found the
    /// entries inconsistent, so that `Cycle` cannot be trusted).
    InOrder,
    /// The free list `free`, the most recently released slot on top (eager: large items),
    /// except the newest item's slot, which waits for the next publish (see `pick`).
    Recent,
}
// Fieldless, so that each test of the policy on the hot path is one compare.

/// The producer's private state.
///
/// Invariants: `named[pos % slots]` is the data slot of each position in `cached_head..tail`
/// (or [`UNKNOWN`]). `Reuse::Cycle`: `named` is a permutation of `0..slots`. `Reuse::InOrder`
/// and `Reuse::Recent`: `free` holds distinct data slots, none named by a position in `cached_head..tail`, and
/// `is_free[d]` says whether `d` is in `free`; without corruption
/// `free.len() == slots - (tail - cached_head)`.
#[derive(Debug)]
pub struct Producer {
    /// Next position to fill; equals the shared `tail` without the `CLOSED` bit.
    tail: u64,
    /// `tail % slots`: the entry of the next position, kept in step rather than divided for (a
    /// 64-bit division costs more than the rest of a publish).
    entry: usize,
    /// A value `head` had; `head` only grows, so `tail - cached_head` over-estimates fullness.
    cached_head: u64,
    /// `cached_head % slots`.
    head_entry: usize,
    /// The data slot of each entry's latest position.
    named: Vec<u32>,
    /// The data slot of position `tail - 1` (the newest published item), or [`UNKNOWN`].
    newest: u32,
    reuse: Reuse,
    /// With a free list: free data slots, the next one to fill at the back.
    free: VecDeque<u32>,
    is_free: Vec<bool>,
    slots: u64,
    closed: bool,
    notifier: Notifier,
}

impl Producer {
    /// Takes over the producer side at the current positions; `notifier` decides how publishes
    /// are ordered against sleepers.
    ///
    /// A predecessor that died between stamping an entry and advancing `tail` had published that
    /// item as far as a caught-up consumer is concerned (its stamp is stored after its contents):
    /// `tail` is advanced past it here, so that its data slot is never claimed again while it may
    /// be read.
    ///
    /// The data slots in use are rebuilt from `head`: those named by the entries of
    /// `head..tail` (read after `tail`, which was stored after them); all others are free. If an
    /// entry names a slot out of range, or one already named, the state is corrupt: such a
    /// position frees nothing when released (the ring runs short of a slot rather than hand out
    /// one that may be being read), and the producer keeps a free list from then on.
    pub fn attach<M: RingMemory>(mem: &M, notifier: Notifier) -> Producer {
        let c = mem.control();
        let slots = mem.slots() as u64;
        let mut t = c.tail.load(Acquire);
        if t & CLOSED == 0 && mem.slot((t % slots) as usize).stamp.load(Acquire) == t + 1 {
            // Only the producer changes `tail` (sleepers' RMWs rewrite the value they read).
            t = c.tail.fetch_add(1, AcqRel) + 1;
        }
        let tail = t & !CLOSED;
        // Not past `tail`, nor more than a ring behind it (a corrupt `head`).
        let head = c.head.load(Acquire).clamp(tail.saturating_sub(slots), tail);
        let n = slots as usize;
        let mut is_free = vec![true; n];
        let mut named = vec![UNKNOWN; n];
        let mut consistent = true;
        for pos in head..tail {
            let e = (pos % slots) as usize;
            let d = mem.slot(e).data_slot.load(Relaxed) & !OUT_OF_TURN;
            if d < slots && is_free[d as usize] {
                is_free[d as usize] = false;
                named[e] = d as u32;
            } else {
                consistent = false;
            }
        }
        // Lowest slot on top (at the back): a fresh ring starts in slot 0. Room for every slot,
        // so that no publish ever allocates.
        let mut free = VecDeque::with_capacity(n);
        free.extend((0..n as u32).rev().filter(|&d| is_free[d as usize]));
        if consistent {
            // The entries not in use get the free slots, each its own where it is free: a fresh
            // ring (or one that always cycled) keeps `pos` in slot `pos % slots`.
            let in_use = |e: usize| (e as u64 + slots - head % slots) % slots < tail - head;
            let mut taken = vec![false; n];
            for e in 0..n {
                if !in_use(e) && is_free[e] {
                    named[e] = e as u32;
                    taken[e] = true;
                }
            }
            let mut rest = (0..n).filter(|&d| is_free[d] && !taken[d]);
            for name in named.iter_mut().filter(|d| **d == UNKNOWN) {
                // As many free slots as entries not in use: every in-use entry named a
                // distinct slot.
                match rest.next() {
                    Some(d) => *name = d as u32,
                    None => consistent = false,
                }
            }
        }
        let newest = match tail.checked_sub(1) {
            Some(pos) => {
                let d = mem.slot((pos % slots) as usize).data_slot.load(Relaxed) & !OUT_OF_TURN;
                if d < slots { d as u32 } else { UNKNOWN }
            }
            None => UNKNOWN,
        };
        if !consistent {
            mark_out_of_turn(c);
        }
        Producer {
            tail,
            entry: (tail % slots) as usize,
            cached_head: head,
            head_entry: (head % slots) as usize,
            named,
            newest,
            reuse: if consistent {
                Reuse::Cycle
            } else {
                Reuse::InOrder
            },
            free,
            is_free,
            slots,
            closed: t & CLOSED != 0,
            notifier,
        }
    }

    /// Large items: reuse the slot released most recently, and reload `head` at every claim
    /// while an item is outstanding to see each release at once, so that the ring's working set
    /// stays about two slots at any depth. Costs a line read per claim; for items large enough
    /// that their cache footprint matters more (`Producer::reuse_recent_slots`; on by default
    /// for items of at least 64 KiB).
    ///
    /// Turning it on marks the ring (`Lifecycle::out_of_turn`) before any claim out of turn.
    pub fn set_eager(&mut self, c: &Control, eager: bool) {
        if eager {
            mark_out_of_turn(c);
        }
        if eager && self.reuse == Reuse::Cycle {
            // The free list: every slot not named by a position in `cached_head..tail`.
            self.is_free.iter_mut().for_each(|f| *f = true);
            let mut e = (self.cached_head % self.slots) as usize;
            for _ in self.cached_head..self.tail {
                self.is_free[self.named[e] as usize] = false;
                e = next_slot(e, self.slots);
            }
            self.free.clear();
            let is_free = &self.is_free;
            self.free.extend(
                (0..self.slots as u32)
                    .rev()
                    .filter(|&d| is_free[d as usize]),
            );
            self.head_entry = (self.cached_head % self.slots) as usize;
        }
        if eager {
            self.reuse = Reuse::Recent;
        } else if self.reuse != Reuse::Cycle {
            self.reuse = Reuse::InOrder;
        }
    }

    #[inline]
    fn eager(&self) -> bool {
        self.reuse == Reuse::Recent
    }

    /// Learns that `head` is `h`: with a free list, takes back the data slots of the positions
    /// released since the last look.
    ///
    /// Eager: the most recently released goes on top, so that it is rewritten next while still
    /// in cache. Otherwise they go under the slots still free, oldest nearest the top, so that
    /// slots are reused in release order.
    #[inline]
    fn see_head(&mut self, h: u64) {
        if self.reuse == Reuse::Cycle {
            self.cached_head = self.cached_head.max(h.min(self.tail));
        } else {
            self.reclaim(h);
        }
    }

    /// [`Producer::see_head`] with a free list.
    #[inline(never)]
    fn reclaim(&mut self, h: u64) {
        let h = h.min(self.tail);
        let eager = self.eager();
        while self.cached_head < h {
            let d = self.named[self.head_entry];
            if d != UNKNOWN && !self.is_free[d as usize] {
                self.is_free[d as usize] = true;
                if eager {
                    self.free.push_back(d);
                } else {
                    self.free.push_front(d);
                }
            }
            self.cached_head += 1;
            self.head_entry = next_slot(self.head_entry, self.slots);
        }
    }

    /// Whether no position (or, with a free list, no slot) is free by what this side knows.
    #[inline]
    fn full(&self) -> bool {
        // Positions bound the producer; a free list can run dry before them only after a
        // corrupt entry was found at takeover.
        self.tail - self.cached_head >= self.slots
            || (self.reuse != Reuse::Cycle && self.free.is_empty())
    }

    /// Position of the next claim: where a producer that finds no room is stuck.
    pub fn tail(&self) -> u64 {
        self.tail
    }

    /// The position the next claim gets (and its data slot), if one is free. `strong` re-reads
    /// `head` with an RMW (see the module docs of `protocol`), for the check before sleeping.
    #[inline(always)]
    pub fn try_claim(&mut self, c: &Control, strong: bool) -> Result<(u64, usize), Stop> {
        if self.closed {
            return Err(Stop::Closed);
        }
        if self.full() || strong || (self.eager() && self.cached_head != self.tail) {
            let h = if strong {
                c.head.fetch_add(0, AcqRel)
            } else {
                c.head.load(Acquire)
            };
            self.see_head(h);
            if self.full() {
                return Err(Stop::Wait);
            }
        }
        // Not taken until published: an abandoned claim gets the same slot again.
        let d = match self.reuse {
            Reuse::Cycle => self.named[self.entry],
            Reuse::InOrder | Reuse::Recent => self.free[self.pick()],
        };
        Ok((self.tail, d as usize))
    }

    /// With a free list: the index in `free` of the slot the next position gets. The top,
    /// unless it holds the newest item (its position released, the consumer having caught up)
    /// and another slot is free: a slot is rewritten only once its item is no longer the
    /// newest, so that a non-consuming reader copying the newest item (`ndring peek`) has until
    /// the next publish, as on a two-slot ring. The working set stays two slots.
    #[inline]
    fn pick(&self) -> usize {
        let top = self.free.len() - 1;
        if top > 0 && self.free[top] == self.newest {
            top - 1
        } else {
            top
        }
    }

    /// Publishes the position returned by `try_claim`: its entry names the data slot, then
    /// the entry's stamp, then `tail` (both Release, so the slot's contents and the name come
    /// first). Returns true if the consumer may be asleep (the caller wakes `not_empty`).
    #[inline(always)]
    pub fn publish<M: RingMemory>(&mut self, mem: &M) -> bool {
        let c = mem.control();
        let next = self.tail + 1;
        let d = match self.reuse {
            Reuse::Cycle => self.named[self.entry],
            Reuse::InOrder | Reuse::Recent => {
                // Below the top, the top moves down into its place: the order of the rest holds.
                let d = self
                    .free
                    .swap_remove_back(self.pick())
                    .expect("publish follows a successful claim");
                self.is_free[d as usize] = false;
                self.named[self.entry] = d;
                d
            }
        };
        let e = mem.slot(self.entry);
        // Relaxed: the stamp's (and `tail`'s) Release store publishes it. `OUT_OF_TURN` tells an
        // inspector that the slot may be rewritten as soon as this position is released.
        let mark = if self.reuse == Reuse::Cycle {
            0
        } else {
            OUT_OF_TURN
        };
        e.data_slot.store(u64::from(d) | mark, Relaxed);
        e.stamp.store(next, Release);
        self.newest = d;
        self.entry = next_slot(self.entry, self.slots);
        if self.notifier.fenced() {
            c.tail.fetch_add(1, AcqRel);
        } else {
            c.tail.store(next, Release);
        }
        self.tail = next;
        let wake = self.notifier.after_publish(&c.not_empty);
        if next - self.cached_head + 1 >= self.slots && !self.eager() {
            // About to run out: look at `head` now, right after handing an item over, when the
            // caller is likely to wait for something anyway (a reply, the next input), rather
            // than at the next claim, where the line's transfer would delay the next item.
            self.see_head(c.head.load(Acquire));
        }
        wake
    }

    /// Sets `CLOSED`: no claim succeeds after it; the consumer drains what was published.
    /// The caller wakes both wait words.
    ///
    /// Then marks the slot of position `tail` with `(tail + 1) | CLOSED`, so that a polling
    /// consumer, which reads only stamps, goes to `tail` once it gets there. If the ring is full
    /// that slot still holds position `tail - slots`, whose stamp this overwrites: a consumer that
    /// then reads it sees neither `head + 1` nor a smaller value, and also goes to `tail`, which
    /// says the item is published.
    pub fn close<M: RingMemory>(&mut self, mem: &M) {
        let c = mem.control();
        self.notifier.retire(&c.not_empty);
        let t = c.tail.fetch_or(CLOSED, AcqRel) & !CLOSED;
        mem.slot((t % self.slots) as usize)
            .stamp
            .store((t + 1) | CLOSED, Release);
        self.closed = true;
    }

    /// Stops publishing with plain stores (the handle is being dropped), so that a successor
    /// starts from the always-safe state.
    pub fn retire(&mut self, c: &Control) {
        self.notifier.retire(&c.not_empty);
    }
}

/// The consumer's private state.
#[derive(Debug)]
pub struct Consumer {
    /// Next position to read; equals the shared `head`.
    head: u64,
    /// `head % slots`: the entry of the next position.
    entry: usize,
    /// A value `tail` had (with its `CLOSED` bit).
    cached_tail: u64,
    slots: u64,
    notifier: Notifier,
}

impl Consumer {
    /// Takes over the consumer side at the current positions.
    pub fn attach<M: RingMemory>(mem: &M, notifier: Notifier) -> Consumer {
        let c = mem.control();
        let head = c.head.load(Acquire);
        Consumer {
            head,
            entry: (head % mem.slots() as u64) as usize,
            cached_tail: c.tail.load(Acquire),
            slots: mem.slots() as u64,
            notifier,
        }
    }

    /// The position to read next and its data slot, if one is published.
    ///
    /// Polling (`strong == false`) a consumer that has caught up reads only the next entry's
    /// stamp: `head + 1` means published; a smaller value (an older lap, or 0) means not yet;
    /// anything else (a `CLOSED` mark left by `close`, see there) sends it to `tail`.
    #[inline(always)]
    pub fn try_recv<M: RingMemory>(&mut self, mem: &M, strong: bool) -> Result<(u64, usize), Stop> {
        if !strong {
            if self.head < self.cached_tail & !CLOSED {
                return Ok((self.head, self.data_slot(mem)));
            }
            // Acquire: the stamp is stored after the slot's contents and the entry's name.
            let stamp = mem.slot(self.entry).stamp.load(Acquire);
            if stamp == self.head + 1 {
                return Ok((self.head, self.data_slot(mem)));
            }
            if stamp < self.head + 1 {
                return Err(Stop::Wait);
            }
        }
        let c = mem.control();
        self.cached_tail = if strong {
            c.tail.fetch_add(0, AcqRel)
        } else {
            c.tail.load(Acquire)
        };
        // `>=`: having read a stamp, we may be ahead of the `tail` we just loaded.
        if self.head >= self.cached_tail & !CLOSED {
            return Err(if self.cached_tail & CLOSED != 0 {
                Stop::Closed
            } else {
                Stop::Wait
            });
        }
        Ok((self.head, self.data_slot(mem)))
    }

    /// The data slot that the entry of `head` names (which an Acquire load of its stamp or of
    /// `tail` has made visible), as [`data_slot_of`] reads it.
    ///
    /// The entry's own slot is expected (always so on a ring whose producer reuses slots in
    /// turn): that case is a compare and a branch that returns `entry` itself, not the loaded
    /// name, so that a CPU predicting the branch computes the payload's address without waiting
    /// for the entry's line, and loads the payload beside the stamp rather than after it. An
    /// address computed from the loaded name cost a 64-byte round trip 40 ns (W1: a raw
    /// ping-pong whose payload offset travels on the flag's line, 150 against 110 ns).
    /// `black_box` keeps the compiler from putting the loaded value back in `entry`'s place.
    #[inline(always)]
    fn data_slot<M: RingMemory>(&self, mem: &M) -> usize {
        if mem.slot(self.entry).data_slot.load(Relaxed) == self.entry as u64 {
            std::hint::black_box(self.entry)
        } else {
            data_slot_elsewhere(mem, self.entry)
        }
    }

    /// Releases the position returned by `try_recv` back to the producer. Returns true if the
    /// producer may be asleep (the caller wakes `not_full`).
    #[inline(always)]
    pub fn release(&mut self, c: &Control) -> bool {
        let next = self.head + 1;
        if self.notifier.fenced() {
            c.head.fetch_add(1, AcqRel);
        } else {
            c.head.store(next, Release);
        }
        self.head = next;
        self.entry = next_slot(self.entry, self.slots);
        self.notifier.after_publish(&c.not_full)
    }

    /// Skips the item at `head` without reading it (recovery of an item a dead consumer held).
    pub fn skip(&mut self, c: &Control) -> bool {
        self.release(c)
    }

    /// Stops releasing with plain stores (the handle is being dropped).
    pub fn retire(&mut self, c: &Control) {
        self.notifier.retire(&c.not_full);
    }

    /// The stamp that the publish of the next item sets, and the value it then has (`head + 1`;
    /// see [`Consumer::try_recv`]), for a consumer that polls it between attempts.
    #[inline(always)]
    pub fn next_stamp<'m, M: RingMemory>(&self, mem: &'m M) -> (&'m AtomicU64, u64) {
        (&mem.slot(self.entry).stamp, self.head + 1)
    }

    /// Position of the next item.
    pub fn head(&self) -> u64 {
        self.head
    }
}

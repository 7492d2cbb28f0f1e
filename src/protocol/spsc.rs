//! Single-producer single-consumer queue: two positions, no CAS.
//!
//! `tail` counts published items and is written only by the producer; `head` counts released
//! items and is written only by the consumer (besides the `fetch_add(0)` re-checks of sleepers,
//! which do not change them). Item `pos` lives in slot `pos % slots`, whose `stamp` the producer
//! sets to `pos + 1` before it advances `tail`. The producer may fill position `tail` when
//! `tail - head < slots`; the consumer may read position `head` when `head < tail`, or when the
//! slot's stamp says `head + 1`. Each side caches the other's position and reloads it only when
//! the cache says full (or empty), as rtrb does, so a side that runs behind touches the other
//! side's line once per lap rather than once per item; a consumer that has caught up polls the
//! stamp of the next slot, which lies on the slot's own line next to the payload it is about to
//! read, rather than `tail`.
//!
//! Each side is the only notifier of one [`WaitWord`](crate::header::WaitWord) (the producer of
//! `not_empty`, the consumer of `not_full`) and publishes with plain stores or RMWs as its
//! [`Notifier`] says (see the module docs of `protocol`).

use crate::header::{CLOSED, Control};
use crate::protocol::{Notifier, RingMemory};
use crate::sync::Ordering::*;

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

/// The producer's private state.
#[derive(Debug)]
pub struct Producer {
    /// Next position to fill; equals the shared `tail` without the `CLOSED` bit.
    tail: u64,
    /// `tail % slots`, kept in step rather than divided for (a 64-bit division costs more than
    /// the rest of a publish).
    slot: usize,
    /// A value `head` had; `head` only grows, so `tail - cached_head` over-estimates fullness.
    cached_head: u64,
    slots: u64,
    closed: bool,
    notifier: Notifier,
}

impl Producer {
    /// Takes over the producer side at the current positions; `notifier` decides how publishes
    /// are ordered against sleepers.
    ///
    /// A predecessor that died between stamping a slot and advancing `tail` had published that
    /// item as far as a caught-up consumer is concerned (its stamp is stored after its contents):
    /// `tail` is advanced past it here, so that the slot is never claimed again while it may be
    /// read.
    pub fn attach<M: RingMemory>(mem: &M, notifier: Notifier) -> Producer {
        let c = mem.control();
        let slots = mem.slots() as u64;
        let mut t = c.tail.load(Acquire);
        if t & CLOSED == 0 && mem.slot((t % slots) as usize).stamp.load(Acquire) == t + 1 {
            // Only the producer changes `tail` (sleepers' RMWs rewrite the value they read).
            t = c.tail.fetch_add(1, AcqRel) + 1;
        }
        Producer {
            tail: t & !CLOSED,
            slot: ((t & !CLOSED) % slots) as usize,
            cached_head: c.head.load(Acquire),
            slots,
            closed: t & CLOSED != 0,
            notifier,
        }
    }

    /// The position the next claim gets (and its slot), if a slot is free. `strong` re-reads
    /// `head` with an RMW (see the module docs of `protocol`), for the check before sleeping.
    #[inline]
    pub fn try_claim(&mut self, c: &Control, strong: bool) -> Result<(u64, usize), Stop> {
        if self.closed {
            return Err(Stop::Closed);
        }
        if self.tail - self.cached_head >= self.slots || strong {
            self.cached_head = if strong {
                c.head.fetch_add(0, AcqRel)
            } else {
                c.head.load(Acquire)
            };
            if self.tail - self.cached_head >= self.slots {
                return Err(Stop::Wait);
            }
        }
        Ok((self.tail, self.slot))
    }

    /// Publishes the position returned by `try_claim`: its slot's stamp, then `tail` (both
    /// Release, so the slot's contents come first). Returns true if the consumer may be asleep
    /// (the caller wakes `not_empty`).
    #[inline]
    pub fn publish<M: RingMemory>(&mut self, mem: &M) -> bool {
        let c = mem.control();
        let next = self.tail + 1;
        mem.slot(self.slot).stamp.store(next, Release);
        self.slot = next_slot(self.slot, self.slots);
        if self.notifier.fenced() {
            c.tail.fetch_add(1, AcqRel);
        } else {
            c.tail.store(next, Release);
        }
        self.tail = next;
        self.notifier.after_publish(&c.not_empty)
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
    /// `head % slots`.
    slot: usize,
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
            slot: (head % mem.slots() as u64) as usize,
            cached_tail: c.tail.load(Acquire),
            slots: mem.slots() as u64,
            notifier,
        }
    }

    /// The position to read next, if one is published.
    ///
    /// Polling (`strong == false`) a consumer that has caught up reads only the next slot's
    /// stamp: `head + 1` means published; a smaller value (an older lap, or 0) means not yet;
    /// anything else (a `CLOSED` mark left by `close`, see there) sends it to `tail`. One line
    /// polled, on which the producer's publish lands next to the payload about to be read.
    #[inline]
    pub fn try_recv<M: RingMemory>(&mut self, mem: &M, strong: bool) -> Result<(u64, usize), Stop> {
        if !strong {
            if self.head < self.cached_tail & !CLOSED {
                return Ok((self.head, self.slot));
            }
            // Acquire: the stamp is stored after the slot's contents.
            let stamp = mem.slot(self.slot).stamp.load(Acquire);
            if stamp == self.head + 1 {
                return Ok((self.head, self.slot));
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
        Ok((self.head, self.slot))
    }

    /// Releases the position returned by `try_recv` back to the producer. Returns true if the
    /// producer may be asleep (the caller wakes `not_full`).
    #[inline]
    pub fn release(&mut self, c: &Control) -> bool {
        let next = self.head + 1;
        if self.notifier.fenced() {
            c.head.fetch_add(1, AcqRel);
        } else {
            c.head.store(next, Release);
        }
        self.head = next;
        self.slot = next_slot(self.slot, self.slots);
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

    /// Position of the next item.
    pub fn head(&self) -> u64 {
        self.head
    }
}

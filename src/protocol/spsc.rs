//! Single-producer single-consumer queue: two positions, no CAS.
//!
//! `tail` counts published items and is written only by the producer; `head` counts released
//! items and is written only by the consumer (besides the `fetch_add(0)` re-checks of sleepers,
//! which do not change them). Item `pos` lives in slot `pos % slots`. The producer may fill
//! position `tail` when `tail - head < slots`; the consumer may read position `head` when
//! `head < tail`. Each side caches the other's position and reloads it only when the cache says
//! full (or empty), as rtrb does, so the steady state touches the other side's line once per lap
//! rather than once per item.

use crate::header::{CLOSED, Control};
use crate::sync::Ordering::*;

/// Outcome of a step that did not get a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Full (producer) or empty (consumer): wait and retry.
    Wait,
    /// Closed (and, for the consumer, drained).
    Closed,
}

/// The producer's private state.
#[derive(Debug)]
pub struct Producer {
    /// Next position to fill; equals the shared `tail` without the `CLOSED` bit.
    tail: u64,
    /// A value `head` had; `head` only grows, so `tail - cached_head` over-estimates fullness.
    cached_head: u64,
    slots: u64,
    closed: bool,
}

impl Producer {
    /// Takes over the producer side at the current positions.
    pub fn attach(c: &Control, slots: usize) -> Producer {
        let t = c.tail.load(Acquire);
        Producer {
            tail: t & !CLOSED,
            cached_head: c.head.load(Acquire),
            slots: slots as u64,
            closed: t & CLOSED != 0,
        }
    }

    /// The position the next claim gets, if a slot is free. `strong` re-reads `head` with an RMW
    /// (see the module docs of `protocol`), for the check before sleeping.
    #[inline]
    pub fn try_claim(&mut self, c: &Control, strong: bool) -> Result<u64, Stop> {
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
        Ok(self.tail)
    }

    /// Publishes the position returned by `try_claim`. The RMW orders the slot's contents before
    /// the new `tail` (Release) and is the notifier's half of the wake-up argument.
    #[inline]
    pub fn publish(&mut self, c: &Control) {
        c.tail.fetch_add(1, AcqRel);
        self.tail += 1;
    }

    /// Sets `CLOSED`: no claim succeeds after it; the consumer drains what was published.
    pub fn close(&mut self, c: &Control) {
        c.tail.fetch_or(CLOSED, AcqRel);
        self.closed = true;
    }
}

/// The consumer's private state.
#[derive(Debug)]
pub struct Consumer {
    /// Next position to read; equals the shared `head`.
    head: u64,
    /// A value `tail` had (with its `CLOSED` bit).
    cached_tail: u64,
}

impl Consumer {
    /// Takes over the consumer side at the current positions.
    pub fn attach(c: &Control) -> Consumer {
        Consumer {
            head: c.head.load(Acquire),
            cached_tail: c.tail.load(Acquire),
        }
    }

    /// The position to read next, if one is published.
    #[inline]
    pub fn try_recv(&mut self, c: &Control, strong: bool) -> Result<u64, Stop> {
        if self.head == self.cached_tail & !CLOSED || strong {
            self.cached_tail = if strong {
                c.tail.fetch_add(0, AcqRel)
            } else {
                c.tail.load(Acquire)
            };
            if self.head == self.cached_tail & !CLOSED {
                return Err(if self.cached_tail & CLOSED != 0 {
                    Stop::Closed
                } else {
                    Stop::Wait
                });
            }
        }
        Ok(self.head)
    }

    /// Releases the position returned by `try_recv` back to the producer.
    #[inline]
    pub fn release(&mut self, c: &Control) {
        c.head.fetch_add(1, AcqRel);
        self.head += 1;
    }

    /// Skips the item at `head` without reading it (recovery of an item a dead consumer held).
    pub fn skip(&mut self, c: &Control) {
        self.release(c);
    }

    /// Position of the next item.
    pub fn head(&self) -> u64 {
        self.head
    }
}

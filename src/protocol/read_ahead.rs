//! Reading ahead of `head` on an SPSC ring: the lease consumer (`queue/lease/read.rs`) holds
//! several received items at once and drops them in any order.
//!
//! The reader takes positions `read, read + 1, ...` while `head` stays at the oldest one still
//! held, so the producer (which may fill position `tail` only while `tail - head < slots`) never
//! reuses the slot of an item being read. A released position is marked; `head` then advances
//! over every contiguous marked position, in order, each step an ordinary
//! [`spsc::Consumer::release`] (a Release store or RMW of `head`, and the producer woken if its
//! notifier says so). Taking position `read` needs what the plain consumer needs for `head`:
//! `read < tail`, read with Acquire from `tail` (the entry's data slot and the item's bytes are
//! written before `tail` advances).
//!
//! Should the reader die holding items, a successor skips every position below the value it
//! left in its peer entry's `holding` word (`shm::peers`): `read` after each take.

use crate::header::{CLOSED, PeerEntry};
use crate::protocol::spsc::{self, Consumer};
use crate::protocol::{RingMemory, peers};
use crate::sync::Ordering::*;

/// Why [`ReadAhead::try_take`] took nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Nothing published past `read` yet: wait.
    Wait,
    /// Nothing published past `read`, and the producer closed the ring.
    Closed,
    /// Every slot holds an item taken and not yet passed by `head` (the oldest is still held):
    /// the producer waits for this reader, which would wait for the producer.
    Stalled,
}

/// The read-ahead state beside an SPSC [`Consumer`] (which keeps `head`).
#[derive(Debug)]
pub struct ReadAhead {
    /// The next position to take; `head <= read <= tail`.
    read: u64,
    /// A value `tail` had (with its `CLOSED` bit); `read` may be taken while below it.
    cached_tail: u64,
    /// By entry (`pos % slots`): taken and released, not yet passed by `head`. Allocated once,
    /// when the reader attaches.
    released: Vec<bool>,
}

impl ReadAhead {
    /// Starts reading at the consumer's `head`.
    pub fn new<M: RingMemory>(mem: &M, c: &Consumer) -> ReadAhead {
        ReadAhead {
            read: c.head(),
            cached_tail: mem.control().tail.load(Acquire),
            released: vec![false; mem.slots()],
        }
    }

    /// Takes the next published position: `(position, its data slot)`. Records in `me.holding`
    /// what a successor must skip should we die holding it. `strong`: the RMW re-check that
    /// must precede a sleep (see `protocol`), made when the cached `tail` says nothing is left.
    pub fn try_take<M: RingMemory>(
        &mut self,
        mem: &M,
        c: &Consumer,
        me: &PeerEntry,
        strong: bool,
    ) -> Result<(u64, usize), Refused> {
        if self.read >= self.cached_tail & !CLOSED {
            let ctl = mem.control();
            // Acquire: `tail` advances after the item's contents and its entry's data slot.
            self.cached_tail = if strong {
                ctl.tail.fetch_add(0, AcqRel)
            } else {
                ctl.tail.load(Acquire)
            };
            let tail = self.cached_tail & !CLOSED;
            if self.read >= tail {
                if self.cached_tail & CLOSED != 0 {
                    return Err(Refused::Closed);
                }
                if tail - c.head() >= mem.slots() as u64 {
                    return Err(Refused::Stalled);
                }
                return Err(Refused::Wait);
            }
        }
        let pos = self.read;
        self.read += 1;
        peers::hold(me, self.read);
        Ok((
            pos,
            spsc::data_slot_of(mem, (pos % mem.slots() as u64) as usize),
        ))
    }

    /// Releases position `pos` (taken, not released before), then advances `head` over every
    /// contiguous released position. Returns whether the producer may be asleep (the caller
    /// wakes `not_full`).
    pub fn release<M: RingMemory>(&mut self, mem: &M, c: &mut Consumer, pos: u64) -> bool {
        let n = mem.slots() as u64;
        self.released[(pos % n) as usize] = true;
        let mut wake = false;
        while c.head() < self.read && self.released[(c.head() % n) as usize] {
            self.released[(c.head() % n) as usize] = false;
            wake |= c.release(mem.control());
        }
        wake
    }

    /// The next position to take.
    pub fn read(&self) -> u64 {
        self.read
    }
}

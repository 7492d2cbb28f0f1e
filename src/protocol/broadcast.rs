//! Broadcast ring: one writer that never waits, subscribers that pin what they read.
//!
//! A slot's stamp is `seq << 1` while it holds frame `seq` (0: never written), with bit 0
//! (`WRITING`) set while the writer rewrites it. `index[seq % slots]` names the slot that frame
//! `seq` was written to; `published` is the newest frame's `seq`.
//!
//! **Pins.** A subscriber that wants to borrow frame `seq` in slot `s` stores `s + 1` in its peer
//! entry's `pin`, then re-reads the stamp with an RMW; the writer, before rewriting slot `s`, sets
//! `WRITING` with an RMW, then loads every subscriber's `pin`. The two RMWs on the stamp are
//! ordered: if the subscriber's came first, the writer's reads from it and sees the pin (and backs
//! off); if the writer's came first, the subscriber sees `WRITING` (and unpins). So a pinned slot
//! is never rewritten, and a view of it is sound for as long as the pin is held.
//!
//! **Free slot.** The writer never rewrites the newest frame, nor a pinned slot. Each subscriber
//! pins at most one slot, so with `slots >= max_subscribers + 2` a free slot always exists.
//!
//! **Copy-out.** A reader that does not pin reads the stamp (Acquire), copies with atomic loads,
//! issues an Acquire fence and re-reads the stamp: unchanged means the copy is a frame the writer
//! published whole (a seqlock; the writer fences Release after setting `WRITING`).

use crate::header::{CLOSED, PeerEntry};
use crate::protocol::RingMemory;
use crate::sync::{Ordering::*, fence};

/// Stamp bit 0: the writer is rewriting this slot.
pub const WRITING: u64 = 1;

/// The stamp of a slot holding frame `seq`.
#[inline]
pub fn stamp_of(seq: u64) -> u64 {
    seq << 1
}

/// The writer's private state.
#[derive(Debug)]
pub struct Writer {
    /// Sequence number of the newest published frame.
    seq: u64,
    /// Slot holding frame `seq` (meaningless while `seq == 0`).
    newest_slot: usize,
    /// Where the search for a free slot starts: the slot after the last one written, so that
    /// frames are overwritten oldest first.
    cursor: usize,
    /// First peer entry that belongs to a subscriber.
    first_sub: usize,
    /// A claim passed a slot pinned while its frame is a lap old or more (`slots` frames behind
    /// the newest): a subscriber that fell a lap behind, or one that died holding it. Taken by
    /// [`Writer::take_stale_pin`].
    stale_pin: bool,
}

impl Writer {
    /// Takes the writer side over at the ring's current state (fresh, or after a dead writer).
    /// Any slot left `WRITING` by a dead writer is turned back into "empty" (stamp 0).
    pub fn attach<M: RingMemory>(mem: &M, first_sub: usize) -> Writer {
        // A new writer starts a new stream (continuing the sequence numbers).
        let seq = mem.control().published.fetch_and(!CLOSED, AcqRel) & !CLOSED;
        let mut newest_slot = 0;
        let mut oldest = (u64::MAX, 0);
        for i in 0..mem.slots() {
            let st = mem.slot(i).stamp.load(Acquire);
            if st & WRITING != 0 {
                mem.slot(i).stamp.store(0, Release);
                oldest = (0, i);
                continue;
            }
            if st != 0 && st >> 1 == seq {
                newest_slot = i;
            }
            if st >> 1 < oldest.0 {
                oldest = (st >> 1, i);
            }
        }
        Writer {
            seq,
            newest_slot,
            cursor: oldest.1,
            first_sub,
            stale_pin: false,
        }
    }

    fn pinned<M: RingMemory>(&self, mem: &M, slot: usize) -> bool {
        (self.first_sub..mem.max_peers()).any(|p| mem.peer(p).pin.load(Acquire) == slot as u64 + 1)
    }

    /// Picks the oldest slot that is neither pinned nor the newest frame, and marks it `WRITING`.
    /// Never fails while `slots >= subscribers + 2`; it retries while pins move. The flag is
    /// true if it gave a frame back after a subscriber pinned it first (a subscriber that saw
    /// the transient `WRITING` may be waiting: notify).
    pub fn claim<M: RingMemory>(&mut self, mem: &M) -> (usize, bool) {
        let mut gave_back = false;
        let n = mem.slots();
        loop {
            for _ in 0..n {
                let s = self.cursor;
                self.cursor = (self.cursor + 1) % n;
                if self.seq != 0 && s == self.newest_slot {
                    continue;
                }
                if self.pinned(mem, s) {
                    // Relaxed: only a hint for when to look for dead subscribers.
                    let frame = mem.slot(s).stamp.load(Relaxed) >> 1;
                    if self.seq.saturating_sub(frame) >= n as u64 {
                        self.stale_pin = true;
                    }
                    continue;
                }
                let old = mem.slot(s).stamp.fetch_or(WRITING, AcqRel);
                if self.pinned(mem, s) {
                    // A subscriber pinned it first: give the frame back untouched.
                    mem.slot(s).stamp.store(old, Release);
                    gave_back = true;
                    continue;
                }
                // Orders the WRITING mark before the payload stores (the seqlock's writer half).
                fence(Release);
                return (s, gave_back);
            }
            crate::sync::spin_loop();
        }
    }

    /// Whether a claim passed a stale pin since the last call (see the field).
    pub fn take_stale_pin(&mut self) -> bool {
        std::mem::take(&mut self.stale_pin)
    }

    /// Publishes slot `s` (from `claim`) as the next frame; returns its sequence number.
    /// The caller has written `seq`/`timestamp_ns` of the slot before (see `next_seq`).
    pub fn publish<M: RingMemory>(&mut self, mem: &M, s: usize) -> u64 {
        let seq = self.seq + 1;
        // Relaxed: a reader looks for frame `seq` only after loading a `published >= seq`
        // (Acquire), which synchronizes with the `fetch_add` below (every later change of
        // `published` is an RMW, so it continues that release sequence); that hands over the
        // frame's contents, its stamp and its index entry. The stamp and the index only say where
        // the frame is, and the stamp is confirmed against `seq`.
        mem.slot(s).stamp.store(stamp_of(seq), Relaxed);
        mem.index((seq % mem.slots() as u64) as usize)
            .store(s as u64, Relaxed);
        // An RMW: it publishes the frame (Release), and is the notifier's half of the wake-up
        // argument (Acquire).
        mem.control().published.fetch_add(1, AcqRel);
        self.seq = seq;
        self.newest_slot = s;
        seq
    }

    /// Publishes `frames` sequence numbers with no frame behind them (frames lost upstream: a
    /// bridge's gaps), so that a subscriber that wants one learns it is missing (`Lagged`)
    /// instead of waiting for it. Returns the last of them. No slot is touched: the newest
    /// frame stays held, and a subscriber tells a skipped number from a frame being written by
    /// finding no frame at or after it held (see `Subscriber::try_recv`).
    pub fn skip<M: RingMemory>(&mut self, mem: &M, frames: u64) -> u64 {
        if frames > 0 {
            // An RMW as `publish`'s. Acquire: it is the notifier's half of the wake-up argument.
            // Release is not needed (kept for symmetry): nothing is written before it, and as an
            // RMW it continues the release sequence of the publishes before, so a subscriber
            // that loads its value sees those frames' stamps.
            mem.control().published.fetch_add(frames, AcqRel);
            self.seq += frames;
        }
        self.seq
    }

    /// Gives slot `s` back without publishing: it becomes empty (its old frame is gone).
    pub fn abandon<M: RingMemory>(&mut self, mem: &M, s: usize) {
        mem.slot(s).stamp.store(0, Release);
    }

    /// The sequence number the next `publish` assigns.
    pub fn next_seq(&self) -> u64 {
        self.seq + 1
    }

    /// Starts a new stream after `close` (what a newly attached writer does).
    pub fn reopen<M: RingMemory>(&mut self, mem: &M) {
        mem.control().published.fetch_and(!CLOSED, AcqRel);
    }

    /// Marks the stream closed: subscribers drain what is held, then get `Closed`.
    pub fn close<M: RingMemory>(&mut self, mem: &M) {
        mem.control().published.fetch_or(CLOSED, AcqRel);
    }
}

/// Why a subscriber got no frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Miss {
    /// Nothing newer than what it has read: wait.
    Wait,
    /// Nothing newer, and the writer closed the stream.
    Closed,
    /// Frames `next .. next + missed` were overwritten; it now continues from the oldest held.
    Lagged(u64),
}

/// A subscriber's private state.
#[derive(Debug)]
pub struct Subscriber {
    /// Sequence number of the next frame it wants.
    next: u64,
    /// Slot it has pinned (its entry's `pin` is `slot + 1`), if any.
    pinned: Option<usize>,
}

impl Subscriber {
    /// Starts at the newest frame (`newest = true`) or at the oldest frame still held.
    pub fn attach<M: RingMemory>(mem: &M, newest: bool) -> Subscriber {
        let latest = mem.control().published.load(Acquire) & !CLOSED;
        let next = if newest {
            // A newest number that was skipped is not a frame to start at.
            if latest > 0 && slot_of(mem, latest).is_none() && oldest_held(mem, latest).is_none() {
                latest + 1
            } else {
                latest.max(1)
            }
        } else {
            // Capped at the next number to publish: a frame being published now may show its
            // stamp before an older frame's (both stores are Relaxed; nothing here synchronizes
            // with them), and starting past the older one would pass it over unreported.
            oldest_held(mem, 1).map_or(latest + 1, |o| o.min(latest + 1))
        };
        Subscriber { next, pinned: None }
    }

    /// Sequence number of the next frame `try_recv` looks for.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Drops the pin held, if any. The caller guarantees no reference to the slot remains.
    pub fn unpin(&mut self, me: &PeerEntry) {
        if self.pinned.take().is_some() {
            me.pin.store(0, Release);
        }
    }

    /// Pins frame `seq` if it is still held; returns its slot.
    fn try_pin<M: RingMemory>(&mut self, mem: &M, me: &PeerEntry, seq: u64) -> Option<usize> {
        let s = slot_of(mem, seq)?;
        me.pin.store(s as u64 + 1, Release);
        if mem.slot(s).stamp.fetch_add(0, AcqRel) != stamp_of(seq) {
            me.pin.store(0, Release);
            return None;
        }
        self.pinned = Some(s);
        Some(s)
    }

    /// The next frame's `seq` and the newest published if it is published; else `Wait`, or
    /// `Closed` once the writer closed.
    fn wanted<M: RingMemory>(&self, mem: &M, strong: bool) -> Result<(u64, u64), Miss> {
        let p = published(mem, strong);
        if self.next <= p & !CLOSED {
            Ok((self.next, p & !CLOSED))
        } else if p & CLOSED != 0 {
            Err(Miss::Closed)
        } else {
            Err(Miss::Wait)
        }
    }

    /// Pins the next frame in sequence: `Ok((slot, seq))`. Unpins the previous one first.
    /// `strong` re-reads `published` with an RMW (the check before sleeping).
    pub fn try_recv<M: RingMemory>(
        &mut self,
        mem: &M,
        me: &PeerEntry,
        strong: bool,
    ) -> Result<(usize, u64), Miss> {
        self.unpin(me);
        let (seq, newest) = self.wanted(mem, strong)?;
        if let Some(s) = self.try_pin(mem, me, seq) {
            self.next = seq + 1;
            return Ok((s, seq));
        }
        // `seq` is in a slot being rewritten, or being given back by a writer that found it
        // pinned: wait for the writer's publish (or its notification that it gave the frame
        // back; that one is not an RMW on `published`, so a sleeper may miss it and wake at the
        // next publish or grace tick instead).
        Err(self.missed(mem, seq, newest).unwrap_or(Miss::Wait))
    }

    /// Why frame `seq` (`<= newest`, the `published` loaded before) is not there: `Lagged` up
    /// to the oldest frame held after it, or past `newest` where no frame at or after `seq` is
    /// held at all; `None` (wait) while `seq` may still be in a slot being rewritten.
    ///
    /// No frame `>= seq` held means `seq..=newest` were skipped (or given up by a writer that
    /// died or abandoned a claim): a published frame's stamp is stored before its `published`
    /// RMW, which the load of `newest` acquired (later RMWs, a skip's too, continue that release
    /// sequence), and a frame leaves its slot only for a newer one, itself held or, while being
    /// written, counted with the old frame by `oldest_held`; the newest is never overwritten.
    fn missed<M: RingMemory>(&mut self, mem: &M, seq: u64, newest: u64) -> Option<Miss> {
        match oldest_held(mem, seq) {
            Some(o) if o > seq => {
                self.next = o;
                Some(Miss::Lagged(o - seq))
            }
            Some(_) => None,
            None => {
                self.next = newest + 1;
                Some(Miss::Lagged(newest + 1 - seq))
            }
        }
    }

    /// Pins the newest frame if it is newer than the last one received: `Ok((slot, seq,
    /// skipped))`, where `skipped` frames between were passed over.
    pub fn try_latest<M: RingMemory>(
        &mut self,
        mem: &M,
        me: &PeerEntry,
        strong: bool,
    ) -> Result<(usize, u64, u64), Miss> {
        self.unpin(me);
        loop {
            let p = published(mem, strong);
            let seq = p & !CLOSED;
            if seq < self.next {
                return Err(if p & CLOSED != 0 {
                    Miss::Closed
                } else {
                    Miss::Wait
                });
            }
            if let Some(s) = self.try_pin(mem, me, seq) {
                let skipped = seq - self.next;
                self.next = seq + 1;
                return Ok((s, seq, skipped));
            }
            // The newest numbers were skipped (no frame at or after the next one held): they
            // are missing, as `try_recv` reports them.
            if oldest_held(mem, self.next).is_none() {
                let missed = seq + 1 - self.next;
                self.next = seq + 1;
                return Err(Miss::Lagged(missed));
            }
            // Overwritten between the load and the pin: retry if a newer frame is out, else
            // wait for it.
            if published(mem, false) == p {
                return Err(Miss::Wait);
            }
        }
    }

    /// Copies the next frame out without pinning: `copy(slot)` must copy with atomic loads.
    /// Returns the frame's `seq`; a copy the writer overtook is discarded and retried (or
    /// reported as `Lagged` if the frame is gone).
    pub fn try_copy<M: RingMemory>(
        &mut self,
        mem: &M,
        strong: bool,
        mut copy: impl FnMut(usize),
    ) -> Result<u64, Miss> {
        let (seq, newest) = self.wanted(mem, strong)?;
        if let Some(s) = slot_of(mem, seq) {
            copy(s);
            fence(Acquire);
            if mem.slot(s).stamp.load(Relaxed) == stamp_of(seq) {
                self.next = seq + 1;
                return Ok(seq);
            }
        }
        // Being rewritten or given back: wait for the writer.
        Err(self.missed(mem, seq, newest).unwrap_or(Miss::Wait))
    }
}

/// What [`try_copy_newest`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewestCopy {
    /// Nothing published yet.
    Empty,
    /// The writer rewrote (or was rewriting) the newest frame's slot: the copy is discarded.
    Overtaken,
    /// The copy made from `slot` is frame `seq`, whole.
    Copied {
        /// The frame's sequence number.
        seq: u64,
        /// The slot it was copied from.
        slot: usize,
    },
}

/// An inspector's copy of the newest frame: no peer entry, no pin and no store, so that a
/// read-only mapping serves and the ring is never disturbed. `copy_slot(s)` copies slot `s`
/// with atomic loads (the payload, and any control word that belongs with the frame); the
/// stamp re-read after `fence(Acquire)` then says whether the writer began to rewrite the slot
/// meanwhile (the seqlock of the copy-out, module docs).
pub fn try_copy_newest<M: RingMemory>(mem: &M, copy_slot: impl FnOnce(usize)) -> NewestCopy {
    let seq = mem.control().published.load(Acquire) & !CLOSED;
    if seq == 0 {
        return NewestCopy::Empty;
    }
    let Some(slot) = slot_of(mem, seq) else {
        return NewestCopy::Overtaken;
    };
    copy_slot(slot);
    fence(Acquire);
    if mem.slot(slot).stamp.load(Relaxed) == stamp_of(seq) {
        NewestCopy::Copied { seq, slot }
    } else {
        NewestCopy::Overtaken
    }
}

#[inline]
fn published<M: RingMemory>(mem: &M, strong: bool) -> u64 {
    let c = mem.control();
    if strong {
        c.published.fetch_add(0, AcqRel)
    } else {
        c.published.load(Acquire)
    }
}

/// The slot that holds frame `seq` now (its stamp loaded with Acquire), if any.
///
/// `index[seq % slots]` names it unless a newer frame `seq + k * slots` has since been written
/// to another slot while `seq` stayed where it was (kept by a pin, or simply not reached by the
/// writer's cursor yet); then the slots are searched, which is rare and costs one load per slot.
/// Without the search a subscriber would wait forever for a frame that is held but unindexed.
#[inline]
fn slot_of<M: RingMemory>(mem: &M, seq: u64) -> Option<usize> {
    let n = mem.slots();
    let s = mem.index((seq % n as u64) as usize).load(Acquire) as usize;
    if s < n && mem.slot(s).stamp.load(Acquire) == stamp_of(seq) {
        return Some(s);
    }
    (0..n).find(|&i| mem.slot(i).stamp.load(Acquire) == stamp_of(seq))
}

/// The smallest frame `>= from` still held in some slot. A slot being rewritten counts with
/// its old frame: the writer may yet back off (the slot was pinned) and restore it, so a frame
/// is reported lost only once its slot holds a newer one. Callers retry when this returns the
/// frame they failed to get.
pub fn oldest_held<M: RingMemory>(mem: &M, from: u64) -> Option<u64> {
    (0..mem.slots())
        .filter_map(|i| {
            let st = mem.slot(i).stamp.load(Acquire);
            (st > WRITING && st >> 1 >= from).then_some(st >> 1)
        })
        .min()
}

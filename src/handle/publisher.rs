//! The untyped sending half of a handle, which a `WriteSlot` commits to: a [`QueuePublisher`]
//! inside each `Producer`, a [`BroadcastPublisher`] inside each `BroadcastWriter`, and
//! [`Publisher`], the one a slot borrows.
//!
//! Below `slot.rs` and the handles, so that a slot can name what it reports to without
//! importing the handles that create it.

use std::sync::Arc;
use std::time::Duration;

use crate::protocol::{RingMemory, broadcast, mpmc, spsc};
use crate::role::Role;
use crate::shm::peers;
use crate::shm::segment::Segment;
use crate::shm::sys;
use crate::shm::wait::{self, Stuck, SweepClock, Waiting};
use crate::sync::Ordering::*;

/// The handle a `WriteSlot` came from. An enum of the two concrete publishers, not a
/// `&mut dyn` trait object, so that a queue producer's publish is inlined into the caller's
/// loop (a call through a vtable, and the registers it saves, is a measurable share of a
/// 64-byte hand-off: `examples/handoff.rs`).
pub(crate) enum Publisher<'a> {
    Queue(&'a mut QueuePublisher),
    Broadcast(&'a mut BroadcastPublisher),
}

impl Publisher<'_> {
    #[inline(always)]
    pub(crate) fn segment(&self) -> &Segment {
        match self {
            Publisher::Queue(q) => &q.seg,
            Publisher::Broadcast(b) => &b.seg,
        }
    }

    /// Publishes slot `slot`, claimed at position `pos`, with `Some(user_len)` bytes of user
    /// metadata (the slot's control block is written first, see [`write_ctrl`]), or abandons
    /// it with `None`.
    #[inline(always)]
    pub(crate) fn commit(&mut self, slot: usize, pos: u64, publish: Option<u32>) {
        match self {
            Publisher::Queue(q) => q.commit(slot, pos, publish),
            Publisher::Broadcast(b) => b.commit(slot, publish),
        }
    }
}

/// Writes the control-block fields a publish carries: the timestamp (on rings that keep them)
/// and the metadata length. Called by the slot's owner before it publishes.
#[inline]
pub(crate) fn write_ctrl(seg: &Segment, slot: usize, user_len: u32) {
    let ctrl = seg.slot(slot);
    if seg.timestamps() {
        ctrl.timestamp_ns.store(sys::now_ns(), Relaxed);
    }
    // Stored unconditionally: every publish writes the stamp on this line anyway, and loading
    // the old value first would fetch the line for reading before the stamp's store takes it
    // for writing (two transfers instead of one while a consumer polls the stamp).
    ctrl.user_len.store(user_len, Relaxed);
}

/// The untyped part of a `Producer` (queue rings).
pub(crate) struct QueuePublisher {
    pub(crate) seg: Arc<Segment>,
    /// Our peer entry.
    pub(crate) entry: usize,
    /// SPSC state; `None` for MPMC.
    pub(crate) spsc: Option<spsc::Producer>,
    pub(crate) how: Waiting,
    /// When a publish that woke a sleeping consumer may next sweep for dead sleepers.
    pub(crate) clock: SweepClock,
    /// When a full ring may next make us check whether its consumers are alive.
    pub(crate) liveness: SweepClock,
    /// How long our claims have found the ring full at one position (a dead consumer's slot
    /// holds it back): when to sweep for dead peers, whether we wait in one call or many.
    pub(crate) stuck: Stuck,
    /// The wait that a `Pending` `Producer::poll_claim` left registered.
    #[cfg(feature = "async")]
    pub(crate) pending: Option<crate::shm::wait_async::AsyncSleep>,
}

impl QueuePublisher {
    /// [`Publisher::commit`]. Inlined into `WriteSlot::publish`; an abandon goes out of line.
    #[inline(always)]
    pub(crate) fn commit(&mut self, slot: usize, pos: u64, publish: Option<u32>) {
        let Some(user_len) = publish else {
            return self.abandon(pos);
        };
        let seg = &*self.seg;
        write_ctrl(seg, slot, user_len);
        match &mut self.spsc {
            Some(p) => {
                if p.publish(seg) {
                    self.woke(true);
                }
            }
            None => {
                mpmc::publish(seg, seg.peer(self.entry), pos, false);
                if wait::notify(&seg.control().not_empty) {
                    self.woke(false);
                }
            }
        }
    }

    /// [`QueuePublisher::commit`] of a slot dropped unpublished.
    #[inline(never)]
    fn abandon(&mut self, pos: u64) {
        let seg = &*self.seg;
        let woke = match &mut self.spsc {
            // SPSC: an abandoned position is simply claimed again.
            Some(_) => false,
            None => {
                mpmc::publish(seg, seg.peer(self.entry), pos, true);
                wait::notify(&seg.control().not_empty)
            }
        };
        seg.control().stats.abandoned.fetch_add(1, Relaxed);
        if woke {
            self.woke(false);
        }
    }

    /// After a publish that found the consumer side asleep: wakes it (`wake`, SPSC: the
    /// notifier only said someone may sleep), and, should that sleeper have died asleep, takes
    /// its count back within a grace period, so that publishes return to their fast path.
    #[cold]
    #[inline(never)]
    fn woke(&mut self, wake: bool) {
        let seg = &*self.seg;
        if wake {
            wait::wake(&seg.control().not_empty);
        }
        if self.clock.due(self.how.grace) {
            peers::sweep(seg);
        }
    }
}

impl Drop for QueuePublisher {
    fn drop(&mut self) {
        // First: it writes our peer entry, which `unregister` hands back.
        #[cfg(feature = "async")]
        {
            self.pending = None;
        }
        if let Some(p) = &mut self.spsc {
            p.retire(self.seg.control());
        }
        peers::unregister(&self.seg, self.entry, Role::Producer);
        peers::leave(&self.seg);
    }
}

/// The untyped part of a `BroadcastWriter`.
pub(crate) struct BroadcastPublisher {
    pub(crate) seg: Arc<Segment>,
    pub(crate) entry: usize,
    pub(crate) writer: broadcast::Writer,
    /// `close` was called: the next claim reopens the stream.
    pub(crate) closed: bool,
    /// The grace period (see `Config::grace`): how often we may sweep for dead subscribers.
    pub(crate) grace: Duration,
    /// When a claim that passed a stale pin, or a publish that found sleepers, may next sweep
    /// for dead subscribers (their pins and sleeper counts; see
    /// [`BroadcastPublisher::after_dead`]).
    pub(crate) clock: SweepClock,
}

impl BroadcastPublisher {
    /// [`Publisher::commit`] (a broadcast slot needs no position).
    fn commit(&mut self, slot: usize, publish: Option<u32>) {
        let seg = &*self.seg;
        if let Some(user_len) = publish {
            write_ctrl(seg, slot, user_len);
            self.writer.publish(seg, slot);
            if wait::notify(&seg.control().not_empty) {
                self.after_dead();
            }
        } else {
            self.writer.abandon(seg, slot);
        }
    }

    /// After a claim that passed a pin a lap old, or a publish that found sleepers: either may be
    /// a dead subscriber's (a pin never dropped, a sleeper count never taken back), which no
    /// other subscriber may be stuck long enough to sweep for. At most once per grace period.
    #[cold]
    #[inline(never)]
    pub(crate) fn after_dead(&mut self) {
        if self.clock.due(self.grace) {
            peers::sweep(&self.seg);
        }
    }
}

impl Drop for BroadcastPublisher {
    fn drop(&mut self) {
        peers::unregister(&self.seg, self.entry, Role::Writer);
        peers::leave(&self.seg);
    }
}

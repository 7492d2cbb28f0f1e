//! Waiting in a future: the blocking wait's protocol (`wait::sleep_until`), with the sleep
//! handed to this process's reactor thread (`reactor`) instead of the calling thread.
//!
//! One poll that must wait does what a blocking wait does before its futex call: count in the
//! word's `waiters` (`begin_wait`), record the sleep in our peer entry, issue the heavy barrier
//! if the notifier may publish with plain stores, and re-check with `strong = true`. Then,
//! instead of sleeping, it registers the word and the epoch with the reactor, which wakes the
//! task once the epoch moves (a notifier saw our count and bumped it), or after the grace
//! period (the next poll re-checks, and looks for dead peers as a blocking wait's does). The
//! next poll, or dropping the future, undoes the count: a cancelled wait leaves no waiter.

use std::sync::Arc;
use std::task::{Context, Poll};

use crate::header::{PeerEntry, WaitWord};
use crate::protocol::{Sleep, begin_wait, end_wait, epoch_moved};
use crate::shm::reactor::{self, Registration};
use crate::shm::segment::Segment;
use crate::shm::sys;
use crate::shm::wait::{Sleeper, UNBARRIERED_SLEEP, Waiting};
use crate::sync::Ordering::Release;

/// One async wait on a word of a segment, across the polls of its future.
#[derive(Debug)]
pub(crate) struct AsyncSleep {
    /// Keeps the mapping of `word` and `entry` alive (and the reactor holds a clone).
    segment: Arc<Segment>,
    word: *const WaitWord,
    entry: *const PeerEntry,
    /// The `sleeping` record for our entry (see `wait::Sleeper`).
    record: u64,
    how: Waiting,
    /// While counted in the word's waiters: the epoch we sleep on, when the sleep ends, and the
    /// reactor's registration.
    asleep: Option<Asleep>,
}

#[derive(Debug)]
struct Asleep {
    epoch: u32,
    until_ns: u64,
    reg: Registration,
}

// SAFETY: `word` and `entry` point into the mapping that `segment` (an `Arc<Segment>`, Send and
// Sync) keeps alive, and are only read and written through atomics (both types are Sync).
unsafe impl Send for AsyncSleep {}
// SAFETY: as for Send; `&AsyncSleep` gives access to nothing but those atomics.
unsafe impl Sync for AsyncSleep {}

impl AsyncSleep {
    /// A wait on `word` of `segment` by the sleeper `me` (both in `segment`).
    pub(crate) fn new(
        segment: &Arc<Segment>,
        word: &WaitWord,
        me: Sleeper<'_>,
        how: Waiting,
    ) -> Self {
        AsyncSleep {
            segment: Arc::clone(segment),
            word,
            entry: me.entry,
            record: me.word,
            how,
            asleep: None,
        }
    }

    fn word(&self) -> &WaitWord {
        // SAFETY: inside the mapping `self.segment` keeps alive.
        unsafe { &*self.word }
    }

    fn entry(&self) -> &PeerEntry {
        // SAFETY: inside the mapping `self.segment` keeps alive.
        unsafe { &*self.entry }
    }

    /// One poll: `Ready` with `step`'s result, or `Pending` with the task's waker registered.
    /// `step(strong)` is one non-blocking attempt, as for `wait::sleep_until`.
    pub(crate) fn poll<R>(
        &mut self,
        cx: &mut Context<'_>,
        mut step: impl FnMut(bool) -> Option<R>,
    ) -> Poll<R> {
        if let Some(a) = &self.asleep {
            // Nothing was published since we registered unless the epoch moved (a notifier
            // that found us counted bumps it): stay asleep, with this poll's waker.
            if !epoch_moved(self.word(), a.epoch)
                && sys::now_ns() < a.until_ns
                && reactor::update(&a.reg, cx.waker())
            {
                return Poll::Pending;
            }
            self.wake_up();
            if let Some(r) = step(false) {
                return Poll::Ready(r);
            }
        }
        let w = self.word();
        let Sleep { epoch, heavy } = begin_wait(w);
        // Counted first, recorded second, as in `wait::sleep_until`.
        self.entry().sleeping.store(self.record, Release);
        let sleep = if heavy && !sys::heavy_barrier() {
            self.how.grace.min(UNBARRIERED_SLEEP)
        } else {
            self.how.grace
        };
        if let Some(r) = step(true) {
            self.end();
            return Poll::Ready(r);
        }
        let until_ns =
            sys::now_ns().saturating_add(u64::try_from(sleep.as_nanos()).unwrap_or(u64::MAX));
        let reg = reactor::register(&self.segment, self.word(), epoch, until_ns, cx.waker());
        self.asleep = Some(Asleep {
            epoch,
            until_ns,
            reg,
        });
        Poll::Pending
    }

    /// Ends the registration and the count, if any.
    fn wake_up(&mut self) {
        if let Some(a) = self.asleep.take() {
            reactor::cancel(a.reg);
            self.end();
        }
    }

    /// Counts us out of the word's waiters, record first (as `wait::wake_up`).
    fn end(&self) {
        self.entry().sleeping.store(0, Release);
        end_wait(self.word());
    }
}

impl Drop for AsyncSleep {
    fn drop(&mut self) {
        self.wake_up();
    }
}

/// [`crate::shm::wait::wait_for`] in a future, without a deadline: `poll`s `how.spin` times
/// (the bare protocol attempt: the spin is a waiter's reaction time), then waits in the reactor
/// until `step` (the attempt with its liveness checks) returns `Some`. Dropped before it is
/// ready, it leaves no waiter counted.
pub(crate) async fn wait_for<R>(
    segment: &Arc<Segment>,
    word: &WaitWord,
    me: Sleeper<'_>,
    how: Waiting,
    poll: impl FnMut() -> Option<R>,
    mut step: impl FnMut(bool) -> Option<R>,
) -> R {
    if let Some(r) = crate::shm::wait::spin(how.spin, poll) {
        return r;
    }
    let mut sleep = AsyncSleep::new(segment, word, me, how);
    std::future::poll_fn(|cx| sleep.poll(cx, &mut step)).await
}

//! Blocking: poll briefly, then sleep on a shared futex in the segment, with a deadline.

use std::time::{Duration, Instant};

use crate::header::{PeerEntry, WaitWord};
use crate::protocol::spsc::Stop;
use crate::protocol::{Sleep, begin_wait, bump, end_wait, has_waiters};
use crate::shm::sys;
use crate::sync::Ordering::Release;

/// Longest sleep when a heavy barrier was needed but refused by the kernel.
pub(crate) const UNBARRIERED_SLEEP: Duration = Duration::from_millis(1);

/// How a blocking call waits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Waiting {
    /// Polls before sleeping.
    pub spin: u32,
    /// Longest single sleep, and how long a ring must be stuck before a call looks for dead
    /// peers (see [`Stuck`]).
    pub grace: Duration,
}

/// Who is about to sleep: its peer entry and the `sleeping` word it records there while it
/// counts in a word's `waiters` (see `protocol::peers::undo_sleep`).
#[derive(Clone, Copy)]
pub(crate) struct Sleeper<'a> {
    pub entry: &'a PeerEntry,
    pub word: u64,
}

impl<'a> Sleeper<'a> {
    /// The sleeper of entry `entry` (ours) on the word tagged `tag` (`SLEEPING_NOT_EMPTY` or
    /// `_FULL`). The pid recorded is the one our entry is registered under (a load, not a
    /// `getpid` call: this runs on every blocking call), which is the pid a survivor judges.
    #[inline]
    pub fn new(entry: &'a PeerEntry, tag: u64) -> Self {
        let owner = entry.owner.load(crate::sync::Ordering::Relaxed);
        Sleeper {
            entry,
            word: crate::protocol::peers::sleeping_word(owner as u32, tag),
        }
    }
}

/// Runs `step` until it returns `Some`, or until `deadline` (then `None`).
///
/// `step(strong)` makes one non-blocking attempt; `strong` asks for the RMW re-check that must
/// precede a sleep (see `protocol`). A sleep lasts at most `grace`, and `step(true)` runs before
/// each, so a step that looks for dead peers once its ring is [`Stuck`] does so in time.
#[inline]
pub(crate) fn wait_for<R>(
    w: &WaitWord,
    me: Sleeper<'_>,
    how: Waiting,
    deadline: Option<Instant>,
    mut step: impl FnMut(bool) -> Option<R>,
) -> Option<R> {
    if let Some(r) = spin(how.spin, || step(false)) {
        return Some(r);
    }
    sleep_until(w, me, how, deadline, step)
}

/// [`wait_for`] with the spin's attempt apart from the sleeps': `poll` (the bare protocol
/// attempt, a waiter's reaction time) up to `how.spin` times, then [`sleep_until`] with `step`
/// (the attempt with its liveness checks), as [`crate::shm::wait_async::wait_for`] does.
#[inline]
pub(crate) fn poll_then_sleep<R>(
    w: &WaitWord,
    me: Sleeper<'_>,
    how: Waiting,
    deadline: Option<Instant>,
    poll: impl FnMut() -> Option<R>,
    step: impl FnMut(bool) -> Option<R>,
) -> Option<R> {
    spin(how.spin, poll).or_else(|| sleep_until(w, me, how, deadline, step))
}

/// Polls `poll` up to `polls` times, with a spin hint between polls and a yield every 64 (to let
/// the peer run should it share our core, as on 2-core machines).
///
/// Inlined: the poll loop is what a busy consumer's latency is made of, and an out-of-line
/// `poll` returning a large `Result` through memory cost a measured 10-50 ns per hand-off (the
/// W1 benchmark). The compiler may still keep the closure out of line, so the queues' consumers
/// write their loops out (`consumer::spin_spsc`, `spin_mpmc`) with [`pause`] between polls.
#[inline(always)]
pub(crate) fn spin<R>(polls: u32, mut poll: impl FnMut() -> Option<R>) -> Option<R> {
    if let Some(r) = poll() {
        return Some(r);
    }
    for i in 1..=polls {
        pause(i);
        if let Some(r) = poll() {
            return Some(r);
        }
    }
    None
}

/// Between the polls of a spin: a spin hint, and a yield before every 64th poll (`poll`
/// counts from 1), to let the peer run should it share our core, as on 2-core machines.
#[inline(always)]
pub(crate) fn pause(poll: u32) {
    if poll % 64 == 0 {
        std::thread::yield_now();
    } else {
        std::hint::spin_loop();
    }
}

/// One attempt's outcome for the waiting loops: `None` to keep waiting.
#[inline(always)]
pub(crate) fn attempt(
    r: std::result::Result<(u64, usize), Stop>,
) -> Option<crate::error::Result<(u64, usize)>> {
    match r {
        Ok(got) => Some(Ok(got)),
        Err(Stop::Closed) => Some(Err(crate::error::Error::Closed)),
        Err(Stop::Wait) => None,
    }
}

/// Sleeps on `w` until `step` returns `Some`, or until `deadline` (then `None`); see
/// [`wait_for`], which spins first.
#[inline]
pub(crate) fn sleep_until<R>(
    w: &WaitWord,
    me: Sleeper<'_>,
    how: Waiting,
    deadline: Option<Instant>,
    mut step: impl FnMut(bool) -> Option<R>,
) -> Option<R> {
    wait_slow(w, me, how, deadline, &mut step)
}

/// Counts this thread out of `w`'s waiters: the record in its peer entry goes first (see
/// `protocol::peers::undo_sleep`).
#[inline]
fn wake_up(w: &WaitWord, me: Sleeper<'_>) {
    me.entry.sleeping.store(0, Release);
    end_wait(w);
}

#[cold]
fn wait_slow<R>(
    w: &WaitWord,
    me: Sleeper<'_>,
    how: Waiting,
    deadline: Option<Instant>,
    step: &mut impl FnMut(bool) -> Option<R>,
) -> Option<R> {
    loop {
        let Sleep { epoch, heavy } = begin_wait(w);
        // Counted in `waiters` first, recorded second: should we die asleep, a survivor takes
        // the count back (`peers::sweep`), and notifiers stop paying for a wake-up of no one.
        me.entry.sleeping.store(me.word, Release);
        // A plain-mode notifier relies on this barrier (see `protocol`). Should the kernel refuse
        // it, a store of the notifier's may be missed for as long as we sleep: sleep briefly.
        let mut sleep = if heavy && !sys::heavy_barrier() {
            how.grace.min(UNBARRIERED_SLEEP)
        } else {
            how.grace
        };
        if let Some(r) = step(true) {
            wake_up(w, me);
            return Some(r);
        }
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                wake_up(w, me);
                return step(true);
            }
            sleep = sleep.min(left);
        }
        sys::futex_wait(&w.futex, epoch, Some(sleep));
        wake_up(w, me);
        if let Some(r) = step(false) {
            return Some(r);
        }
    }
}

/// Wakes everyone asleep on `w`, if anyone is: a load and nothing else when nobody sleeps.
/// Returns whether it woke (made the system call).
#[inline]
pub(crate) fn notify(w: &WaitWord) -> bool {
    if has_waiters(w) {
        notify_slow(w);
        return true;
    }
    false
}

/// Wakes everyone asleep on `w` (after a [`crate::protocol::Notifier`] said someone may be).
#[cold]
pub(crate) fn wake(w: &WaitWord) {
    notify_slow(w);
}

#[cold]
fn notify_slow(w: &WaitWord) {
    bump(w);
    sys::futex_wake_all(&w.futex);
}

/// The notifier for a new SPSC side of this process: plain stores once quiet, if this process
/// is a target of heavy barriers.
pub(crate) fn notifier() -> crate::protocol::Notifier {
    crate::protocol::Notifier::new(
        sys::register_for_heavy_barriers(),
        crate::protocol::QUIET_PUBLISHES,
    )
}

/// `Instant::now() + d`, or no deadline if that overflows.
pub(crate) fn deadline(d: Duration) -> Option<Instant> {
    Instant::now().checked_add(d)
}

/// Rate-limits the sweeps that a notifier runs when it finds sleepers: at most one per grace
/// period, so that a peer that died asleep (and is still counted in `waiters`) costs a wake-up
/// per publish for at most one grace period, and a live sleeper costs no more than before.
/// Also rate-limits the liveness checks of `try_recv`/`try_claim` on an empty (full) ring.
///
/// It reads the coarse clock ([`sys::coarse_now_ns`]): `due` runs on every poll of a
/// non-blocking call that finds nothing, and the coarse clock is a few loads where the fine
/// one reads the TSC (or, on a clocksource without vDSO support, makes a system call). Its
/// tick (1 to 10 ms) only delays a check by that much against a grace period of 500 ms.
#[derive(Debug)]
pub(crate) struct SweepClock {
    /// Coarse-clock nanoseconds before which `due` says no; 0 at first.
    next: u64,
}

impl SweepClock {
    pub(crate) fn new() -> Self {
        SweepClock { next: 0 }
    }

    /// True at the first call, then at most once per `grace`.
    #[inline]
    pub(crate) fn due(&mut self, grace: Duration) -> bool {
        let now = sys::coarse_now_ns();
        if now < self.next {
            return false;
        }
        let grace = u64::try_from(grace.as_nanos()).unwrap_or(u64::MAX);
        self.next = now.saturating_add(grace).max(1);
        true
    }
}

/// How long a handle's calls have found its ring stuck at one position, across calls: dead-peer
/// recovery must not depend on how a caller slices its waits (one long `recv`, `recv_timeout`
/// in 50 ms slices as the Python binding waits, or a `try_recv` poll loop).
///
/// A call that finds nothing to do (nothing to receive, no room to claim) asks [`Stuck::due`]
/// with the ring position it is waiting at; once calls have found the ring stuck at that same
/// position for a grace period, a sweep of the peer table is due, then again at most once per
/// grace period while it stays stuck. A position that moved starts a new count, so a ring that
/// makes progress never pays for a sweep (each reads `/proc` once per attached peer).
#[derive(Debug)]
pub(crate) struct Stuck {
    /// The position the last call found the ring stuck at.
    at: u64,
    /// Coarse-clock nanoseconds at which calls first found the ring stuck at `at`; 0: never.
    since: u64,
    /// Coarse-clock nanoseconds before which no further sweep is due (one per grace period).
    next: u64,
}

impl Stuck {
    pub(crate) fn new() -> Self {
        Stuck {
            at: 0,
            since: 0,
            next: 0,
        }
    }

    /// Called by a call that found the ring stuck at position `pos`: whether to sweep now.
    #[inline]
    pub(crate) fn due(&mut self, pos: u64, grace: Duration) -> bool {
        self.due_at(pos, grace, sys::coarse_now_ns())
    }

    /// [`Stuck::due`] at coarse-clock time `now`.
    fn due_at(&mut self, pos: u64, grace: Duration, now: u64) -> bool {
        let now = now.max(1);
        if self.since == 0 || pos != self.at {
            self.at = pos;
            self.since = now;
            return grace.is_zero();
        }
        // `Duration::MAX` ("never look for dead peers") saturates: never due.
        let grace = u64::try_from(grace.as_nanos()).unwrap_or(u64::MAX);
        if now.saturating_sub(self.since) < grace || now < self.next {
            return false;
        }
        self.next = now.saturating_add(grace);
        true
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn sweep_clock_is_due_at_once_then_once_per_grace() {
        let mut c = SweepClock::new();
        assert!(c.due(Duration::from_secs(3600)), "due at the first call");
        assert!(
            !c.due(Duration::from_secs(3600)),
            "not again within the grace period"
        );
        let mut c = SweepClock::new();
        assert!(c.due(Duration::ZERO));
        assert!(c.due(Duration::ZERO), "a zero grace period is always due");
        // A grace period too long for the clock never overflows into "due".
        let mut c = SweepClock::new();
        assert!(c.due(Duration::MAX));
        assert!(!c.due(Duration::MAX));
    }

    #[test]
    fn stuck_is_due_after_a_grace_period_at_one_position_then_once_per_grace() {
        const MS: u64 = 1_000_000;
        let grace = Duration::from_millis(500);
        let mut s = Stuck::new();
        assert!(!s.due_at(7, grace, 1_000 * MS), "not at the first look");
        assert!(
            !s.due_at(8, grace, 2_000 * MS),
            "the position moved: a new count"
        );
        assert!(
            !s.due_at(8, grace, 2_499 * MS),
            "stuck for less than a grace period"
        );
        assert!(
            s.due_at(8, grace, 2_500 * MS),
            "stuck at 8 for a grace period"
        );
        assert!(
            !s.due_at(8, grace, 2_999 * MS),
            "at most once per grace period"
        );
        assert!(s.due_at(8, grace, 3_000 * MS), "still stuck: due again");
        assert!(!s.due_at(9, grace, 9_000 * MS), "moved again: a new count");
        let mut s = Stuck::new();
        assert!(
            s.due_at(1, Duration::ZERO, 5),
            "a zero grace period is always due"
        );
        let mut s = Stuck::new();
        assert!(!s.due_at(1, Duration::MAX, 5));
        assert!(
            !s.due_at(1, Duration::MAX, u64::MAX),
            "Duration::MAX: never"
        );
    }
}

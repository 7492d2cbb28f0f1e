//! Waiting for a shared array's lock or version: poll briefly, then sleep on the futex word the
//! protocol step names, looking for dead holders once the lock has been stuck for a grace
//! period (however the caller slices its waits: the count lives in the handle).

use std::sync::Mutex;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::header::{
    ArrayControl, PeerEntry, SLEEPING_CHANGED, SLEEPING_DRAINED, SLEEPING_RELEASED, WaitWord,
};
use crate::protocol::array::{ArrayMemory, Wait, Wake};
use crate::protocol::{begin_wait, end_wait};
use crate::shm::segment::Segment;
use crate::shm::sys;
use crate::shm::wait::{Sleeper, Stuck, Waiting, notify, pause};
use crate::sync::Ordering::*;

/// Wakes whom a step or a release asked for.
#[inline]
pub(crate) fn wake(words: &ArrayControl, w: Wake) {
    if w.drained {
        notify(&words.drained);
    }
    if w.released {
        notify(&words.released);
    }
}

fn word_of(words: &ArrayControl, w: Wait) -> (&WaitWord, u64) {
    match w {
        Wait::Drained => (&words.drained, SLEEPING_DRAINED),
        _ => (&words.released, SLEEPING_RELEASED),
    }
}

/// Runs `step(strong, wake)` until it returns `Ok`, sleeping where its `Err` says; `Timeout` at
/// `deadline` (a `try_` form passes a deadline already past: one attempt).
///
/// `stuck` counts how long the lock word has stayed the same across calls: once that passes the
/// grace period, the peer table is swept, so a dead holder's lock is taken back.
pub(crate) fn until<R>(
    seg: &Segment,
    entry: &PeerEntry,
    how: Waiting,
    stuck: &Mutex<Stuck>,
    deadline: Option<Instant>,
    mut step: impl FnMut(bool, &mut Wake) -> std::result::Result<R, Wait>,
) -> Result<R> {
    let words = seg.array();
    let mut attempt = |strong: bool| {
        let mut w = Wake::default();
        let r = step(strong, &mut w);
        wake(words, w);
        if r.is_err() {
            let now = words.lock.load(Relaxed);
            let due = stuck.lock().is_ok_and(|mut s| s.due(now, how.grace));
            if due && crate::shm::peers::sweep(seg) > 0 {
                return Err(Wait::Retry);
            }
        }
        r
    };
    let mut polls = 0;
    loop {
        let wait = match attempt(false) {
            Ok(r) => return Ok(r),
            Err(Wait::Retry) => continue,
            Err(w) => w,
        };
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Error::Timeout);
        }
        if polls < how.spin {
            polls += 1;
            pause(polls);
            continue;
        }
        let (word, tag) = word_of(words, wait);
        let me = Sleeper::new(entry, tag);
        let sleep = begin_wait(word);
        me.entry.sleeping.store(me.word, Release);
        let again = attempt(true);
        if !matches!(again, Err(w) if w == wait) {
            wake_up(word, me);
            match again {
                Ok(r) => return Ok(r),
                Err(_) => continue,
            }
        }
        let mut nap = how.grace;
        if let Some(d) = deadline {
            nap = nap.min(d.saturating_duration_since(Instant::now()));
        }
        sys::futex_wait(&word.futex, sleep.epoch, Some(nap));
        wake_up(word, me);
    }
}

/// Sleeps until the version differs from `seen` (or `deadline`); returns it.
pub(crate) fn changed(
    seg: &Segment,
    entry: &PeerEntry,
    how: Waiting,
    seen: u64,
    deadline: Option<Instant>,
) -> Result<u64> {
    let words = seg.array();
    let done = &words.versions.done;
    let mut polls = 0;
    loop {
        let v = done.load(Acquire);
        if v != seen {
            return Ok(v);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Error::Timeout);
        }
        if polls < how.spin {
            polls += 1;
            pause(polls);
            continue;
        }
        let me = Sleeper::new(entry, SLEEPING_CHANGED);
        let sleep = begin_wait(&words.changed);
        me.entry.sleeping.store(me.word, Release);
        // RMW: pairs with the writer's RMW of `done` before it looks for sleepers.
        let v = done.fetch_add(0, AcqRel);
        if v != seen {
            wake_up(&words.changed, me);
            return Ok(v);
        }
        let mut nap = how.grace;
        if let Some(d) = deadline {
            nap = nap.min(d.saturating_duration_since(Instant::now()));
        }
        sys::futex_wait(&words.changed.futex, sleep.epoch, Some(nap));
        wake_up(&words.changed, me);
    }
}

fn wake_up(w: &WaitWord, me: Sleeper<'_>) {
    me.entry.sleeping.store(0, Release);
    end_wait(w);
}

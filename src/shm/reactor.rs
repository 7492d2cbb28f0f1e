//! The thread that sleeps for every async wait of this process: one thread per 127 futex words
//! awaited at once (`futex_waitv` takes 128, one of which is the thread's own kick word), not
//! one per handle.
//!
//! A future that must wait registers the word it would sleep on (after the same `begin_wait` and
//! strong re-check as a blocking wait: see `wait_async`) with the value to sleep while it holds
//! and its task's waker. The thread sleeps in `futex_waitv` on all registered words and its kick
//! word; when a word changes or is woken (a notifier in any process bumps it and wakes it), or
//! a registration's deadline passes (its grace period, after which the future looks for dead
//! peers as a blocking wait does), the registration is removed and its waker woken. Registering
//! kicks the thread so that its next sleep includes the new word.
//!
//! Every registration holds an `Arc` of its segment: the thread loads the word only while the
//! registration exists, and the mapping outlives it, even if the future is leaked rather than
//! dropped. After a `fork` the child's first registration starts a reactor of its own (the
//! parent's threads do not exist in the child).

use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Release};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::Duration;

use crate::header::WaitWord;
use crate::shm::segment::Segment;
use crate::shm::sys;

/// Registrations served by one thread: `futex_waitv`'s limit less the kick word.
const PER_THREAD: usize = sys::WAIT_ANY_MAX - 1;

/// How often a reactor polls its words where the kernel has no `futex_waitv` (before 5.16).
const POLL_WITHOUT_WAITV: Duration = Duration::from_millis(1);

/// A registered wait; [`cancel`] it, or let the reactor remove it when it fires.
#[derive(Debug)]
pub(crate) struct Registration {
    shard: Arc<Shard>,
    id: u64,
}

/// One awaited word.
struct Entry {
    id: u64,
    /// The wait word, inside the mapping that `_segment` keeps alive.
    word: *const WaitWord,
    /// The value the waiter sleeps while the word holds.
    expected: u32,
    /// `CLOCK_MONOTONIC` nanoseconds at which the waiter is woken regardless.
    until_ns: u64,
    waker: Waker,
    _segment: Arc<Segment>,
}

// SAFETY: `word` points into the mapping held by `_segment` (an `Arc`, itself Send and Sync),
// and is only ever read through atomics (a `WaitWord` is Sync); the rest is Send.
unsafe impl Send for Entry {}

impl Entry {
    /// Whether the waiter must be woken: its word moved, or its deadline passed.
    fn due(&self, now_ns: u64) -> bool {
        now_ns >= self.until_ns || crate::protocol::epoch_moved(self.word(), self.expected)
    }

    fn word(&self) -> &WaitWord {
        // SAFETY: the word lies in the mapping `_segment` keeps mapped while this entry exists.
        unsafe { &*self.word }
    }
}

/// One reactor thread and what it waits for.
#[derive(Debug)]
struct Shard {
    entries: Mutex<Entries>,
    /// Bumped (and woken) by each registration, so that the thread's sleep, which waits on
    /// this word too, ends and picks up the new entry.
    kick: AtomicU32,
}

#[derive(Default)]
struct Entries {
    list: Vec<Entry>,
    next_id: u64,
}

impl std::fmt::Debug for Entries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entries")
            .field("len", &self.list.len())
            .finish()
    }
}

impl Shard {
    fn entries(&self) -> MutexGuard<'_, Entries> {
        // A panicking waker cannot leave the list inconsistent (it is woken outside the lock).
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// This process's reactor: its threads, created as registrations need them.
struct Reactor {
    /// The process that created it (after a `fork`, the child makes its own).
    pid: u32,
    shards: Mutex<Vec<Arc<Shard>>>,
}

static REACTOR: std::sync::atomic::AtomicPtr<Reactor> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

/// This process's reactor. Lock-free to find, so that a child forked while another thread
/// held a reactor lock never waits on that lock: it makes a reactor of its own.
fn reactor() -> &'static Reactor {
    let pid = sys::pid();
    loop {
        let current = REACTOR.load(Acquire);
        // SAFETY: a reactor once published is never freed (a parent's is leaked in its child).
        if let Some(r) = unsafe { current.as_ref() } {
            if r.pid == pid {
                return r;
            }
        }
        let new = Box::into_raw(Box::new(Reactor {
            pid,
            shards: Mutex::new(Vec::new()),
        }));
        match REACTOR.compare_exchange(current, new, AcqRel, Acquire) {
            // SAFETY: just published, never freed.
            Ok(_) => return unsafe { &*new },
            // SAFETY: `new` was never published: ours to free.
            Err(_) => drop(unsafe { Box::from_raw(new) }),
        }
    }
}

/// Registers `word` (in `segment`) to wake `waker` once it no longer holds `expected` or is
/// woken, or at `until_ns` (`CLOCK_MONOTONIC`).
pub(crate) fn register(
    segment: &Arc<Segment>,
    word: &WaitWord,
    expected: u32,
    until_ns: u64,
    waker: &Waker,
) -> Registration {
    let entry = Entry {
        id: 0,
        word,
        expected,
        until_ns,
        waker: waker.clone(),
        _segment: Arc::clone(segment),
    };
    let (shard, id) = push_to_a_shard(entry);
    // After the push: a thread that read the kick word before it sleeps on the old value, so
    // this bump ends that sleep and its next one includes the entry.
    shard.kick.fetch_add(1, Release);
    sys::futex_wake_all(&shard.kick);
    Registration { shard, id }
}

/// Replaces the waker of a registration that is still waiting; false if it fired already.
pub(crate) fn update(reg: &Registration, waker: &Waker) -> bool {
    let mut e = reg.shard.entries();
    match e.list.iter_mut().find(|x| x.id == reg.id) {
        Some(x) => {
            if !x.waker.will_wake(waker) {
                x.waker = waker.clone();
            }
            true
        }
        None => false,
    }
}

/// Ends a registration (a no-op if it fired). The thread may still be asleep on the word: a
/// harmless wake-up later, never a read of it (the thread reads words only under the lock).
pub(crate) fn cancel(reg: Registration) {
    let removed = {
        let mut e = reg.shard.entries();
        e.list
            .iter()
            .position(|x| x.id == reg.id)
            .map(|i| e.list.swap_remove(i))
    };
    // The segment's `Arc` is dropped here, outside the lock.
    drop(removed);
}

/// Pushes `entry` (given its id here) to a shard with fewer than [`PER_THREAD`] registrations,
/// starting a thread for a new shard if every one is full; returns the shard and the id. Every
/// push happens under the reactor's lock, so that two registrations never both take a shard's
/// last place (a shard over `PER_THREAD` words would exceed `futex_waitv`'s limit).
fn push_to_a_shard(mut entry: Entry) -> (Arc<Shard>, u64) {
    let r = reactor();
    let mut shards = r.shards.lock().unwrap_or_else(|e| e.into_inner());
    let push = |shard: &Arc<Shard>, mut entry: Entry| {
        let mut e = shard.entries();
        if e.list.len() >= PER_THREAD {
            return Err(entry);
        }
        let id = e.next_id;
        e.next_id += 1;
        entry.id = id;
        e.list.push(entry);
        Ok((Arc::clone(shard), id))
    };
    for shard in shards.iter() {
        match push(shard, entry) {
            Ok(done) => return done,
            Err(back) => entry = back,
        }
    }
    let shard = Arc::new(Shard {
        entries: Mutex::new(Entries::default()),
        kick: AtomicU32::new(0),
    });
    let run = Arc::clone(&shard);
    std::thread::Builder::new()
        .name("ndring-reactor".into())
        .spawn(move || serve(&run))
        .expect("ndring: could not start the thread that serves async waits");
    shards.push(Arc::clone(&shard));
    match push(&shard, entry) {
        Ok(done) => done,
        Err(_) => unreachable!("a new shard has room"),
    }
}

/// The reactor thread: forever, wake what is due, then sleep on every registered word.
fn serve(shard: &Shard) {
    let mut words: Vec<(*const AtomicU32, u32)> = Vec::with_capacity(sys::WAIT_ANY_MAX);
    let mut due: Vec<Entry> = Vec::new();
    let mut waitv = true;
    loop {
        // Before building the list: a registration after this load changes the word, so the
        // sleep below returns at once and the next pass sees it.
        let kick = shard.kick.load(Acquire);
        let mut until: Option<u64> = None;
        words.clear();
        words.push((&shard.kick, kick));
        {
            let mut e = shard.entries();
            let now = sys::now_ns();
            let mut i = 0;
            while i < e.list.len() {
                if e.list[i].due(now) {
                    due.push(e.list.swap_remove(i));
                } else {
                    let x = &e.list[i];
                    words.push((&x.word().futex as *const AtomicU32, x.expected));
                    until = Some(until.map_or(x.until_ns, |u| u.min(x.until_ns)));
                    i += 1;
                }
            }
        }
        // Outside the lock: a waker may run code, and a segment's last `Arc` unmaps it.
        for entry in due.drain(..) {
            entry.waker.wake_by_ref();
        }
        if waitv {
            match sys::futex_wait_any(&words, until) {
                Ok(()) => continue,
                Err(_) => waitv = false,
            }
        }
        // No `futex_waitv`: poll the words each millisecond (woken at once by a kick).
        let sleep = until.map_or(POLL_WITHOUT_WAITV, |u| {
            Duration::from_nanos(u.saturating_sub(sys::now_ns())).min(POLL_WITHOUT_WAITV)
        });
        sys::futex_wait(&shard.kick, kick, Some(sleep));
    }
}

//! Model checks of the shared array's lock, version and copy-out (`protocol::array`,
//! `RUSTFLAGS="--cfg loom"`).
//!
//! The array's rows are loom `UnsafeCell`s, one per stripe: a reader or writer admitted while
//! another writer may be inside fails the model by itself (loom's causality check), whatever
//! values it sees. Every waiter sleeps as `array/wait.rs` does (a strong re-check after
//! `begin_wait`, then a futex epoch), so a release that leaves a sleeper asleep fails the model
//! too: the sleeper spins on an unchanged epoch until loom's branch limit.
//!
//! Loom treats a `SeqCst` load as reading the newest `SeqCst` store (in its execution order),
//! which is what the Dekker pairs of the protocol rely on; an atomic's initial value is not a
//! `SeqCst` store to loom, so [`ArrayMem::new`] stores every word's 0 once with `SeqCst` before
//! the threads start (as if the creator had).
#![cfg(loom)]

mod support;

use std::ops::Range;

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicU64, Ordering::*};
use loom::thread;
use ndring::header::{ArrayControl, PeerEntry, WaitWord};
use ndring::protocol::array::{self as proto, ArrayMemory, Wait, Wake};
use ndring::protocol::{begin_wait, end_wait};
use support::{model, notify, sleep_until};

/// A shared array owned on the heap: the words `Segment` lays over the mapping, and one cell of
/// data per stripe.
struct ArrayMem {
    control: ArrayControl,
    stripes: Vec<AtomicU64>,
    peers: Vec<PeerEntry>,
    /// Stripe `i`'s rows, checked by loom for exclusive access.
    rows: Vec<UnsafeCell<u64>>,
    /// Two words of the array, read by the lock-free copy-out with atomic loads.
    words: [AtomicU64; 2],
    /// For models that stage a state: one thread waits for another to reach a point.
    cue: AtomicU64,
}

impl ArrayMem {
    /// `stripes` stripes, `peers` entries, every entry covered (as each handle does at attach).
    fn new(stripes: usize, peers: usize) -> Arc<ArrayMem> {
        let m = ArrayMem {
            control: ArrayControl::default(),
            stripes: (0..stripes).map(|_| AtomicU64::new(0)).collect(),
            peers: (0..peers).map(|_| PeerEntry::default()).collect(),
            rows: (0..stripes).map(|_| UnsafeCell::new(0)).collect(),
            words: [AtomicU64::new(0), AtomicU64::new(0)],
            cue: AtomicU64::new(0),
        };
        m.control.lock.store(0, SeqCst);
        for w in &m.stripes {
            w.store(0, SeqCst);
        }
        for e in &m.peers {
            e.holding.store(0, SeqCst);
            e.pin.store(0, SeqCst);
        }
        for i in 0..peers {
            proto::cover(&m, i);
        }
        Arc::new(m)
    }

    fn wake(&self, w: Wake) {
        if w.drained {
            notify(&self.control.drained);
        }
        if w.released {
            notify(&self.control.released);
        }
    }

    fn word(&self, w: Wait) -> &WaitWord {
        match w {
            Wait::Drained => &self.control.drained,
            _ => &self.control.released,
        }
    }

    /// Runs a protocol step until it succeeds, sleeping where it says, as `wait::until` does.
    fn until<R>(&self, mut step: impl FnMut(bool, &mut Wake) -> Result<R, Wait>) -> R {
        loop {
            let mut w = Wake::default();
            let r = step(false, &mut w);
            self.wake(w);
            let wait = match r {
                Ok(r) => return r,
                Err(Wait::Retry) => continue,
                Err(w) => w,
            };
            let word = self.word(wait);
            let sleep = begin_wait(word);
            let mut w = Wake::default();
            let again = step(true, &mut w);
            self.wake(w);
            match again {
                Ok(r) => {
                    end_wait(word);
                    return r;
                }
                Err(x) if x == wait => {}
                Err(_) => {
                    end_wait(word);
                    continue;
                }
            }
            while word.futex.load(Acquire) == sleep.epoch {
                thread::yield_now();
            }
            end_wait(word);
        }
    }

    /// Waits for the counts to drain (`readers`, `ranges`), as `write_until`/`rows_until` do.
    fn drain(&self, readers: bool, ranges: bool) {
        self.until(|strong, _| {
            if proto::drained(self, readers, ranges, strong) {
                Ok(())
            } else {
                Err(Wait::Drained)
            }
        })
    }

    /// `SharedArray::read` of entry `me`: every row, under the shared lock.
    fn read(&self, me: usize) -> Vec<u64> {
        let mut lead = false;
        self.until(|strong, wake| proto::try_read(self, me, tag(me), &mut lead, strong, wake));
        let seen = self
            .rows
            .iter()
            // SAFETY (checked by loom): the shared lock keeps writers out.
            .map(|c| c.with(|p| unsafe { *p }))
            .collect();
        proto::read_unlock(self, me);
        notify(&self.control.drained);
        seen
    }

    /// `SharedArray::write` by `tag`: every row set to `v`, under the exclusive lock.
    fn write(&self, tag: u64, v: u64) {
        self.until(|strong, _| proto::try_exclusive(self, tag, strong));
        self.drain(true, true);
        proto::begin_write(self);
        for c in &self.rows {
            // SAFETY (checked by loom): the exclusive lock keeps everyone else out.
            c.with_mut(|p| unsafe { *p = v });
        }
        for w in &self.words {
            w.store(v, Relaxed);
        }
        proto::end_write(self);
        notify(&self.control.changed);
        proto::exclusive_unlock(self);
        notify(&self.control.released);
    }

    /// `SharedArray::write_rows` of entry `me` (`tag`): the rows of `stripes` set to `v`.
    fn write_rows(&self, me: usize, tag: u64, stripes: Range<usize>, v: u64) {
        self.write_rows_then(me, tag, stripes, v, || {})
    }

    /// [`ArrayMem::write_rows`], running `inside` while it holds the rows.
    fn write_rows_then(
        &self,
        me: usize,
        tag: u64,
        stripes: Range<usize>,
        v: u64,
        inside: impl FnOnce(),
    ) {
        self.until(|strong, wake| proto::try_enter_ranges(self, me, strong, wake));
        self.drain(true, false);
        for i in stripes.clone() {
            self.until(|strong, _| proto::try_stripe(self, i, tag, strong));
        }
        proto::begin_write(self);
        for i in stripes.clone() {
            // SAFETY (checked by loom): our stripes, and no reader or whole-array writer.
            self.rows[i].with_mut(|p| unsafe { *p = v });
        }
        inside();
        proto::end_write(self);
        notify(&self.control.changed);
        for i in stripes.rev() {
            proto::stripe_unlock(self, i);
        }
        proto::leave_ranges(self, me);
        self.wake(Wake {
            drained: true,
            released: true,
        });
    }
}

impl ArrayMemory for ArrayMem {
    fn array(&self) -> &ArrayControl {
        &self.control
    }
    fn stripe(&self, i: usize) -> &AtomicU64 {
        &self.stripes[i]
    }
    fn stripes(&self) -> usize {
        self.stripes.len()
    }
    fn peer(&self, i: usize) -> &PeerEntry {
        &self.peers[i]
    }
    fn max_peers(&self) -> usize {
        self.peers.len()
    }
}

fn tag(i: usize) -> u64 {
    proto::owner_tag(100 + i as u32, i)
}

/// Runs `a` in a thread beside `b`, then joins.
fn both(m: &Arc<ArrayMem>, a: impl Fn(&ArrayMem) + Send + 'static, b: impl FnOnce(&ArrayMem)) {
    let m2 = m.clone();
    let t = thread::spawn(move || a(&m2));
    b(m);
    t.join().unwrap();
}

#[test]
fn reader_and_writer_exclude_each_other() {
    model(2, || {
        let m = ArrayMem::new(1, 2);
        both(
            &m,
            |m| m.write(tag(0), 1),
            |m| {
                let seen = m.read(1);
                assert!(seen == [0] || seen == [1]);
            },
        );
    });
}

#[test]
fn range_writer_and_reader_exclude_each_other() {
    model(2, || {
        let m = ArrayMem::new(2, 2);
        both(
            &m,
            |m| m.write_rows(0, tag(0), 0..1, 1),
            |m| {
                let seen = m.read(1);
                assert!(seen == [0, 0] || seen == [1, 0]);
            },
        );
    });
}

#[test]
fn range_writer_and_writer_exclude_each_other() {
    model(2, || {
        let m = ArrayMem::new(2, 2);
        both(
            &m,
            |m| m.write_rows(0, tag(0), 1..2, 1),
            |m| m.write(tag(1), 2),
        );
        let seen = m.read(0);
        assert!(seen == [2, 2] || seen == [2, 1], "{seen:?}");
    });
}

#[test]
fn range_writers_of_one_stripe_take_turns() {
    model(2, || {
        let m = ArrayMem::new(2, 2);
        both(
            &m,
            |m| m.write_rows(0, tag(0), 0..1, 1),
            |m| m.write_rows(1, tag(1), 0..2, 2),
        );
        assert_eq!(proto::version(&*m), 2);
    });
}

/// `RANGES` left set by range writers that are gone (as every range write leaves it), two
/// readers and a range writer: a reader must never clear `RANGES` on the strength of a scan
/// made before another reader cleared it and a range writer came in. (One reader makes a single
/// attempt, which clears `RANGES`; the other polls until it reads.)
#[test]
fn readers_clearing_ranges_never_let_a_range_writer_in_unseen() {
    model(2, || {
        let m = ArrayMem::new(1, 3);
        m.control.lock.store(proto::RANGES, SeqCst);
        let m2 = m.clone();
        let r = thread::spawn(move || {
            let (mut w, mut lead) = (Wake::default(), false);
            if proto::try_read(&*m2, 1, tag(1), &mut lead, false, &mut w).is_ok() {
                proto::read_unlock(&*m2, 1);
                w.drained = true;
            }
            proto::give_up_lead(&*m2, &mut lead, &mut w);
            m2.wake(w);
        });
        let m3 = m.clone();
        let writer = thread::spawn(move || m3.write_rows(2, tag(2), 0..1, 1));
        let mut lead = false;
        for _ in 0..3 {
            let mut w = Wake::default();
            let r = proto::try_read(&*m, 0, tag(0), &mut lead, false, &mut w);
            m.wake(w);
            match r {
                Ok(()) => {
                    // SAFETY (checked by loom): the shared lock keeps writers out.
                    m.rows[0].with(|p| unsafe { *p });
                    proto::read_unlock(&*m, 0);
                    notify(&m.control.drained);
                    break;
                }
                Err(Wait::Retry) => {}
                Err(_) => thread::yield_now(),
            }
        }
        let mut w = Wake::default();
        proto::give_up_lead(&*m, &mut lead, &mut w);
        m.wake(w);
        r.join().unwrap();
        writer.join().unwrap();
    });
}

/// A reader that gives up (`try_read`, a timeout) while a range writer is inside never leaves
/// range writers locked out: the range writer's next write goes through.
#[test]
fn a_reader_that_gives_up_leaves_range_writers_free() {
    model(2, || {
        let m = ArrayMem::new(1, 2);
        both(
            &m,
            |m| {
                m.write_rows_then(0, tag(0), 0..1, 1, || {
                    m.cue.store(1, Release);
                    while m.cue.load(Acquire) != 2 {
                        thread::yield_now();
                    }
                });
                m.write_rows(0, tag(0), 0..1, 2);
            },
            |m| {
                while m.cue.load(Acquire) != 1 {
                    thread::yield_now();
                }
                let (mut w, mut lead) = (Wake::default(), false);
                assert!(proto::try_read(m, 1, tag(1), &mut lead, false, &mut w).is_err());
                proto::give_up_lead(m, &mut lead, &mut w);
                m.wake(w);
                m.cue.store(2, Release);
            },
        );
    });
}

/// The lock-free copy-out (`snapshot_into`: wait for `copy_begin`, copy with atomic loads,
/// `copy_end`) never accepts a copy that a write overlapped, and never sleeps through the
/// release it waits for.
fn copy_out(m: &ArrayMem) {
    loop {
        let begun = m.until(|strong, _| proto::copy_begin(m, strong));
        let copy = [m.words[0].load(Relaxed), m.words[1].load(Relaxed)];
        if proto::copy_end(m, begun) {
            assert_eq!(copy[0], copy[1], "torn copy");
            return;
        }
    }
}

#[test]
fn copy_out_is_never_torn() {
    model(2, || {
        let m = ArrayMem::new(1, 2);
        both(&m, |m| m.write(tag(0), 1), copy_out);
    });
}

/// As above, beside a range writer (whose words are the array's first rows).
#[test]
fn copy_out_beside_a_range_writer_is_never_torn() {
    model(2, || {
        let m = ArrayMem::new(1, 2);
        both(
            &m,
            |m| {
                m.until(|strong, wake| proto::try_enter_ranges(m, 0, strong, wake));
                m.drain(true, false);
                m.until(|strong, _| proto::try_stripe(m, 0, tag(0), strong));
                proto::begin_write(m);
                for w in &m.words {
                    w.store(1, Relaxed);
                }
                proto::end_write(m);
                proto::stripe_unlock(m, 0);
                proto::leave_ranges(m, 0);
                m.wake(Wake {
                    drained: true,
                    released: true,
                });
            },
            copy_out,
        );
    });
}

/// A reader asleep in `wait_changed` is woken by the write that moves the version.
#[test]
fn wait_changed_never_sleeps_through_a_write() {
    model(2, || {
        let m = ArrayMem::new(1, 2);
        both(
            &m,
            |m| m.write(tag(0), 1),
            |m| {
                let c = &m.control;
                let v = sleep_until(&c.changed, |strong| {
                    let v = if strong {
                        c.versions.done.fetch_add(0, AcqRel)
                    } else {
                        c.versions.done.load(Acquire)
                    };
                    (v != 0).then_some(v)
                });
                assert_eq!(v, 1);
            },
        );
    });
}

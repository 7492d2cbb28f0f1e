//! Model checks of the SPSC and MPMC protocols (`RUSTFLAGS="--cfg loom"`).
#![cfg(loom)]

mod support;

use loom::sync::Arc;
use loom::thread;
use ndring::header::WaitWord;
use ndring::protocol::read_ahead::{ReadAhead, Refused};
use ndring::protocol::spsc::{self, Stop};
use ndring::protocol::{Notifier, begin_wait, mpmc};
use support::{Mem, model, notify, sleep_until, wake_if};

/// Notifiers that go plain as early as they can (after one quiet publish), so that the models
/// cover fenced publishes, the switch and plain publishes.
fn eager() -> Notifier {
    Notifier::new(true, 0)
}

/// Receives everything from an SPSC ring until closed.
fn spsc_drain(m: &Mem) -> Vec<u64> {
    let mut c = spsc::Consumer::attach(m, eager());
    let mut got = vec![];
    loop {
        match c.try_recv(m, false) {
            Ok((_, slot)) => {
                assert!(slot < m.slots.len());
                got.push(m.read(slot));
                c.release(&m.control);
            }
            Err(Stop::Closed) => return got,
            Err(Stop::Wait) => thread::yield_now(),
        }
    }
}

/// Four items through two slots, so that each slot is rewritten after a fenced release (the
/// first) and after a plain one.
#[test]
fn spsc_1p1c_fifo_and_exclusive() {
    model(2, || {
        let m = Arc::new(Mem::new(2, 2, false));
        let m2 = m.clone();
        let p = thread::spawn(move || {
            let mut p = spsc::Producer::attach(&*m2, eager());
            for i in 0..4 {
                let (pos, slot) = loop {
                    match p.try_claim(&m2.control, false) {
                        Ok(claimed) => break claimed,
                        Err(_) => thread::yield_now(),
                    }
                };
                assert!(pos < 4 && slot < 2, "position {pos}, data slot {slot}");
                m2.write(slot, i + 10);
                p.publish(&*m2);
            }
            p.close(&*m2);
        });
        assert_eq!(spsc_drain(&m), vec![10, 11, 12, 13]);
        p.join().unwrap();
    });
}

/// A lease reader (`protocol::read_ahead`) holds both slots of a two-slot ring at once and
/// releases the newer item first, while the producer sleeps on the full ring and refills each
/// slot as `head` passes it: the producer never writes a slot whose item is held (loom checks
/// the payload's exclusivity), every item arrives once and in order, the `holding` word covers
/// every position held, and no release that frees a slot loses the sleeping producer's wake-up.
#[test]
fn spsc_read_ahead_releases_out_of_order() {
    model(2, || {
        let m = Arc::new(Mem::new(2, 2, false));
        let m2 = m.clone();
        let p = thread::spawn(move || {
            let mut p = spsc::Producer::attach(&*m2, eager());
            for i in 0..4 {
                let (_, slot) = sleep_until(&m2.control.not_full, |strong| {
                    p.try_claim(&m2.control, strong).ok()
                });
                m2.write(slot, i + 10);
                let wake = p.publish(&*m2);
                wake_if(wake, &m2.control.not_empty);
            }
            p.close(&*m2);
        });
        // Releases by RMW: plain ones are checked by `spsc_no_lost_wakeup_full_plain`, and this
        // longer run of them meets loom's issue #254 (see `support::model`), as that model
        // does with a fourth item.
        let mut c = spsc::Consumer::attach(&*m, Notifier::new(false, 0));
        let mut r = ReadAhead::new(&*m, &c);
        let me = &m.peers[0];
        let mut got = vec![];
        let mut closed = false;
        while !closed {
            let mut held = vec![];
            while held.len() < 2 && !closed {
                match r.try_take(&*m, &c, me, false) {
                    Ok(taken) => held.push(taken),
                    Err(Refused::Closed) => closed = true,
                    Err(Refused::Wait) => thread::yield_now(),
                    Err(Refused::Stalled) => panic!("stalled while holding {}", held.len()),
                }
            }
            for &(pos, slot) in &held {
                got.push(m.read(slot));
                assert!(me.holding.load(loom::sync::atomic::Ordering::Relaxed) > pos);
            }
            for &(pos, _) in held.iter().rev() {
                let wake = r.release(&*m, &mut c, pos);
                wake_if(wake, &m.control.not_full);
            }
        }
        assert_eq!(got, vec![10, 11, 12, 13]);
        p.join().unwrap();
    });
}

/// A consumer sleeps on an empty ring while the producer publishes twice.
fn spsc_consumer_sleeps(can_plain: bool) {
    model(2, move || {
        let m = Arc::new(Mem::new(2, 2, false));
        let m2 = m.clone();
        let p = thread::spawn(move || {
            let mut p = spsc::Producer::attach(&*m2, Notifier::new(can_plain, 0));
            for i in 0..2 {
                let (_, slot) = p.try_claim(&m2.control, false).unwrap();
                m2.write(slot, 5 + i);
                let wake = p.publish(&*m2);
                wake_if(wake, &m2.control.not_empty);
            }
        });
        let mut c = spsc::Consumer::attach(&*m, Notifier::new(false, 0));
        for i in 0..2 {
            let (_, slot) =
                sleep_until(&m.control.not_empty, |strong| c.try_recv(&*m, strong).ok());
            assert_eq!(m.read(slot), 5 + i);
            c.release(&m.control);
        }
        p.join().unwrap();
    });
}

/// No wake-up is lost while a consumer sleeps on an empty ring and the producer publishes with
/// RMWs (it never goes plain). This mode has no stand-in barrier: it is checked exactly.
#[test]
fn spsc_no_lost_wakeup_empty_fenced() {
    spsc_consumer_sleeps(false);
}

/// The same with a producer that switches to plain stores after its first publish.
#[test]
fn spsc_no_lost_wakeup_empty_plain() {
    spsc_consumer_sleeps(true);
}

/// The switch to plain mode is a Dekker handshake over `WaitWord::plain` and `waiters`, with a
/// `SeqCst` fence on each side (`Notifier::go_plain`, `begin_wait`): a sleeper that the
/// notifier's `waiters` check misses must read `plain == 1`, and so bring its heavy barrier.
/// Checked directly, so it needs no stand-in for `membarrier`.
#[test]
fn plain_mode_switch_is_a_dekker_handshake() {
    model(2, || {
        let w = Arc::new(WaitWord::default());
        let w2 = w.clone();
        let n = thread::spawn(move || {
            // One quiet publish: it goes plain unless it sees the sleeper.
            let mut n = Notifier::new(true, 0);
            n.after_publish(&w2);
            n.fenced()
        });
        let s = begin_wait(&w);
        let fenced = n.join().unwrap();
        assert!(
            fenced || s.heavy,
            "the notifier went plain and the sleeper skipped its heavy barrier"
        );
    });
}

/// A producer sleeps on a full ring while the consumer releases.
fn spsc_producer_sleeps(can_plain: bool) {
    model(2, move || {
        let m = Arc::new(Mem::new(2, 2, false));
        let m2 = m.clone();
        let c = thread::spawn(move || {
            let mut c = spsc::Consumer::attach(&*m2, Notifier::new(can_plain, 0));
            let mut got = vec![];
            while got.len() < 3 {
                match c.try_recv(&*m2, false) {
                    Ok((_, slot)) => {
                        got.push(m2.read(slot));
                        let wake = c.release(&m2.control);
                        wake_if(wake, &m2.control.not_full);
                    }
                    Err(_) => thread::yield_now(),
                }
            }
            got
        });
        let mut p = spsc::Producer::attach(&*m, Notifier::new(false, 0));
        for i in 0..3 {
            let (_, slot) = sleep_until(&m.control.not_full, |strong| {
                p.try_claim(&m.control, strong).ok()
            });
            m.write(slot, i);
            p.publish(&*m);
        }
        assert_eq!(c.join().unwrap(), vec![0, 1, 2]);
    });
}

/// No wake-up is lost while a producer sleeps on a full ring and the consumer releases with
/// RMWs (checked exactly).
#[test]
fn spsc_no_lost_wakeup_full_fenced() {
    spsc_producer_sleeps(false);
}

/// The same with a consumer that switches to plain stores after its first release.
#[test]
fn spsc_no_lost_wakeup_full_plain() {
    spsc_producer_sleeps(true);
}

/// A consumer that reads `tail` (as its strong re-check does) may then read every item `tail`
/// counts without looking at their stamps: `tail`'s store must hand them over, in plain mode too.
///
/// The consumer makes a bounded number of attempts rather than waiting for both items: its
/// `fetch_add(0)` on `tail` races the producer's plain store, and loom 0.7 (issue #254) may
/// place that store between the RMW's read and write, which loses the store in that execution
/// (a behaviour real hardware and the C++ model forbid); an unbounded wait would then spin
/// forever. What this model checks is the contents of what is received.
#[test]
fn spsc_tail_hands_over_what_it_counts() {
    model(2, || {
        let m = Arc::new(Mem::new(2, 2, false));
        let m2 = m.clone();
        let p = thread::spawn(move || {
            let mut p = spsc::Producer::attach(&*m2, eager());
            for i in 0..2 {
                let (_, slot) = p.try_claim(&m2.control, false).unwrap();
                m2.write(slot, 5 + i);
                p.publish(&*m2);
            }
        });
        let mut c = spsc::Consumer::attach(&*m, Notifier::new(false, 0));
        let mut next = 5;
        for _ in 0..3 {
            match c.try_recv(&*m, true) {
                Ok((_, slot)) => {
                    assert_eq!(m.read(slot), next);
                    next += 1;
                    c.release(&m.control);
                }
                Err(_) => thread::yield_now(),
            }
        }
        p.join().unwrap();
    });
}

fn mpmc_send(m: &Mem, me: usize, v: u64, abandon: bool) {
    let pos = loop {
        match mpmc::try_claim(m, &m.peers[me], false) {
            Ok(pos) => break pos,
            Err(_) => thread::yield_now(),
        }
    };
    let slot = (pos % m.slots.len() as u64) as usize;
    m.write(slot, v);
    mpmc::publish(m, &m.peers[me], pos, abandon);
}

fn mpmc_recv(m: &Mem, me: usize) -> Option<u64> {
    loop {
        match mpmc::try_recv(m, &m.peers[me], false) {
            Ok(pos) => {
                let v = m.read((pos % m.slots.len() as u64) as usize);
                mpmc::release(m, &m.peers[me], pos);
                return Some(v);
            }
            Err(Stop::Closed) => return None,
            Err(Stop::Wait) => thread::yield_now(),
        }
    }
}

#[test]
fn mpmc_2p1c_exactly_once() {
    model(2, || {
        let m = Arc::new(Mem::new(2, 3, true));
        let ps: Vec<_> = (0..2)
            .map(|p| {
                let m = m.clone();
                thread::spawn(move || mpmc_send(&m, p, 100 + p as u64, false))
            })
            .collect();
        let mut got = vec![mpmc_recv(&m, 2).unwrap(), mpmc_recv(&m, 2).unwrap()];
        got.sort();
        assert_eq!(got, vec![100, 101]);
        for p in ps {
            p.join().unwrap();
        }
    });
}

/// Two consumers race a producer for a bounded number of attempts each (loom explores every
/// interleaving of them); whatever they did not get is drained afterwards. Every item is
/// received exactly once, and the drained ring then reports `Closed`.
#[test]
fn mpmc_1p2c_exactly_once_then_closed() {
    model(2, || {
        let m = Arc::new(Mem::new(2, 3, true));
        let cs: Vec<_> = (1..3)
            .map(|c| {
                let m = m.clone();
                thread::spawn(move || {
                    let mut got = vec![];
                    for _ in 0..2 {
                        match mpmc::try_recv(&*m, &m.peers[c], false) {
                            Ok(pos) => {
                                got.push(m.read((pos % 2) as usize));
                                mpmc::release(&*m, &m.peers[c], pos);
                            }
                            Err(_) => thread::yield_now(),
                        }
                    }
                    got
                })
            })
            .collect();
        for i in 0..2 {
            mpmc_send(&m, 0, i, false);
        }
        mpmc::close(&*m);
        let mut all: Vec<u64> = cs.into_iter().flat_map(|c| c.join().unwrap()).collect();
        while let Some(v) = mpmc_recv(&m, 1) {
            all.push(v);
        }
        all.sort();
        assert_eq!(all, vec![0, 1]);
    });
}

#[test]
fn mpmc_abandoned_claim_is_never_delivered() {
    model(2, || {
        let m = Arc::new(Mem::new(2, 2, true));
        let m2 = m.clone();
        let p = thread::spawn(move || {
            mpmc_send(&m2, 0, 666, true);
            mpmc_send(&m2, 0, 7, false);
            mpmc_send(&m2, 0, 8, false);
            mpmc::close(&*m2);
        });
        let mut got = vec![];
        while let Some(v) = mpmc_recv(&m, 1) {
            got.push(v);
        }
        assert_eq!(got, vec![7, 8]);
        p.join().unwrap();
    });
}

/// A dead producer's claim (it claimed, then "died": never publishes) is turned into a
/// tombstone by a survivor while a live producer and a consumer carry on.
#[test]
fn mpmc_recovery_of_a_dead_claim() {
    model(2, || {
        let m = Arc::new(Mem::new(2, 3, true));
        // Peer 0 claims position 0 and dies.
        let pos = mpmc::try_claim(&*m, &m.peers[0], false).unwrap();
        assert_eq!(pos, 0);
        let m2 = m.clone();
        let live = thread::spawn(move || mpmc_send(&m2, 1, 42, false));
        let m3 = m.clone();
        let survivor = thread::spawn(move || {
            mpmc::recover(&*m3, &m3.peers[0], |held| {
                m3.peers[1..]
                    .iter()
                    .any(|p| p.holding.load(loom::sync::atomic::Ordering::Acquire) == held)
            })
        });
        assert_eq!(mpmc_recv(&m, 2), Some(42));
        assert_eq!(survivor.join().unwrap(), mpmc::Recovered::Tombstone);
        live.join().unwrap();
    });
}

/// A consumer reads a slot and releases it, and the producer rewrites it on the next lap (three
/// items through two slots): the release must hand the slot back before the rewrite (loom's
/// `UnsafeCell` check).
#[test]
fn mpmc_slot_reused_on_next_lap() {
    model(2, || {
        let m = Arc::new(Mem::new(2, 2, true));
        let m2 = m.clone();
        let p = thread::spawn(move || {
            for v in 0..3 {
                mpmc_send(&m2, 0, v, false);
            }
        });
        let got: Vec<_> = (0..3).map(|_| mpmc_recv(&m, 1).unwrap()).collect();
        assert_eq!(got, vec![0, 1, 2]);
        p.join().unwrap();
    });
}

/// No wake-up is lost while an MPMC consumer sleeps on an empty ring.
#[test]
fn mpmc_consumer_sleeps_no_lost_wakeup() {
    model(2, || {
        let m = Arc::new(Mem::new(2, 2, true));
        let m2 = m.clone();
        let p = thread::spawn(move || {
            mpmc_send(&m2, 0, 7, false);
            notify(&m2.control.not_empty);
        });
        let me = &m.peers[1];
        let pos = sleep_until(&m.control.not_empty, |strong| {
            mpmc::try_recv(&*m, me, strong).ok()
        });
        assert_eq!(m.read((pos % 2) as usize), 7);
        mpmc::release(&*m, me, pos);
        p.join().unwrap();
    });
}

/// No wake-up is lost while an MPMC producer sleeps on a full ring; the slot it then gets was
/// just read by the consumer.
#[test]
fn mpmc_producer_sleeps_no_lost_wakeup() {
    model(2, || {
        let m = Arc::new(Mem::new(2, 2, true));
        for v in 0..2 {
            mpmc_send(&m, 0, v, false);
        }
        let m2 = m.clone();
        let c = thread::spawn(move || {
            let v = mpmc_recv(&m2, 1);
            notify(&m2.control.not_full);
            v
        });
        let me = &m.peers[0];
        let pos = sleep_until(&m.control.not_full, |strong| {
            mpmc::try_claim(&*m, me, strong).ok()
        });
        assert_eq!(pos, 2);
        m.write(0, 2);
        mpmc::publish(&*m, me, pos, false);
        assert_eq!(c.join().unwrap(), Some(0));
    });
}

/// `unread`, which the last handle out asks before removing an SPSC ring's name: while a
/// consumer races the producer, whatever it sees unread is there to receive, and once the
/// consumer has received everything published, nothing is unread.
#[test]
fn spsc_unread_counts_what_is_still_to_receive() {
    model(2, || {
        let m = Arc::new(Mem::new(2, 2, false));
        assert!(!spsc::unread(&*m), "a new ring");
        let m2 = m.clone();
        let p = thread::spawn(move || {
            let mut p = spsc::Producer::attach(&*m2, eager());
            let (_, slot) = p
                .try_claim(&m2.control, false)
                .expect("an empty ring has room");
            m2.write(slot, 5);
            p.publish(&*m2);
        });
        let mut c = spsc::Consumer::attach(&*m, eager());
        loop {
            let seen = spsc::unread(&*m);
            match c.try_recv(&*m, false) {
                Ok((_, slot)) => {
                    assert_eq!(m.read(slot), 5);
                    c.release(&m.control);
                    break;
                }
                Err(_) => {
                    assert!(!seen || spsc::unread(&*m), "unread, then gone unreceived");
                    thread::yield_now();
                }
            }
        }
        p.join().unwrap();
        assert!(!spsc::unread(&*m), "everything received");
    });
}

/// The same for MPMC: a tombstone (an abandoned claim) is nothing to read, a published item is.
#[test]
fn mpmc_unread_sees_published_items_not_tombstones() {
    model(2, || {
        let m = Arc::new(Mem::new(2, 2, true));
        assert!(!mpmc::unread(&*m), "a new ring");
        let m2 = m.clone();
        let p = thread::spawn(move || {
            mpmc_send(&m2, 0, 666, true);
            mpmc_send(&m2, 0, 7, false);
            mpmc::close(&*m2);
        });
        let mut got = vec![];
        while let Some(v) = mpmc_recv(&m, 1) {
            got.push(v);
        }
        p.join().unwrap();
        assert_eq!(got, [7]);
        assert!(!mpmc::unread(&*m), "the tombstone is nothing to read");
    });
}

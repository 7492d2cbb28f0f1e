//! Model checks of the SPSC and MPMC protocols (`RUSTFLAGS="--cfg loom"`).
#![cfg(loom)]

mod support;

use loom::sync::Arc;
use loom::sync::atomic::{Ordering::*, fence};
use loom::thread;
use ndring::header::WaitWord;
use ndring::protocol::spsc::{self, Stop};
use ndring::protocol::{Notifier, begin_wait, bump, end_wait, mpmc};
use support::Mem;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    // Receivers poll (with yields) until they see `Closed`: allow long paths.
    b.max_branches = 20_000;
    b.check(f);
}

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

#[test]
fn spsc_1p1c_fifo_and_exclusive() {
    model(|| {
        let m = Arc::new(Mem::new(2, 2, false));
        let m2 = m.clone();
        let p = thread::spawn(move || {
            let mut p = spsc::Producer::attach(&*m2, eager());
            for i in 0..3 {
                let (pos, slot) = loop {
                    match p.try_claim(&m2.control, false) {
                        Ok(claimed) => break claimed,
                        Err(_) => thread::yield_now(),
                    }
                };
                assert!(pos < 3 && slot < 2, "position {pos}, data slot {slot}");
                m2.write(slot, i + 10);
                p.publish(&*m2);
            }
            p.close(&*m2);
        });
        assert_eq!(spsc_drain(&m), vec![10, 11, 12]);
        p.join().unwrap();
    });
}

/// Sleeps on `w` the way `wait.rs` does, until `ready` succeeds: the heavy barrier (`membarrier`)
/// is a `fence(SeqCst)` here, and the "futex" a loop until the epoch changes. A lost wake-up
/// leaves this loop spinning on an unchanged epoch forever, which loom reports.
///
/// Loom cannot express `membarrier` (a fence forced onto another thread), so plain mode is
/// checked as the textbook asymmetric Dekker is: both barriers as `SeqCst` fences. The fenced
/// mode is checked exactly (it has no barrier to stand in for): making its publish a plain store
/// fails `spsc_no_lost_wakeup_empty`.
fn sleep_until<R>(w: &WaitWord, mut ready: impl FnMut(bool) -> Option<R>) -> R {
    loop {
        if let Some(r) = ready(false) {
            return r;
        }
        let s = begin_wait(w);
        if s.heavy {
            fence(SeqCst);
        }
        if let Some(r) = ready(true) {
            end_wait(w);
            return r;
        }
        while w.futex.load(Acquire) == s.epoch {
            thread::yield_now();
        }
        end_wait(w);
    }
}

/// What `wait::wake` does, minus the system call.
fn wake_if(needed: bool, w: &WaitWord) {
    if needed {
        bump(w);
    }
}

/// No wake-up is lost while a consumer sleeps on an empty ring: with a producer that stays
/// fenced (`plain == false`), and with one that switches to plain stores between its two
/// publishes.
#[test]
fn spsc_no_lost_wakeup_empty() {
    for can_plain in [false, true] {
        model(move || {
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
}

/// No wake-up is lost while a producer sleeps on a full ring and the consumer releases with
/// plain stores.
#[test]
fn spsc_no_lost_wakeup_full() {
    model(|| {
        let m = Arc::new(Mem::new(2, 2, false));
        let m2 = m.clone();
        let c = thread::spawn(move || {
            let mut c = spsc::Consumer::attach(&*m2, eager());
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
    model(|| {
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
    model(|| {
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
    model(|| {
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
    model(|| {
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

//! Model checks of the SPSC and MPMC protocols (`RUSTFLAGS="--cfg loom"`).
#![cfg(loom)]

mod support;

use loom::sync::Arc;
use loom::thread;
use ndring::protocol::spsc::{self, Stop};
use ndring::protocol::{begin_wait, bump, end_wait, has_waiters, mpmc};
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

/// Receives everything from an SPSC ring until closed.
fn spsc_drain(m: &Mem) -> Vec<u64> {
    let mut c = spsc::Consumer::attach(&m.control);
    let mut got = vec![];
    loop {
        match c.try_recv(&m.control, false) {
            Ok(pos) => {
                got.push(m.read((pos % m.slots.len() as u64) as usize));
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
            let mut p = spsc::Producer::attach(&m2.control, 2);
            for i in 0..3 {
                let pos = loop {
                    match p.try_claim(&m2.control, false) {
                        Ok(pos) => break pos,
                        Err(_) => thread::yield_now(),
                    }
                };
                m2.write((pos % 2) as usize, i + 10);
                p.publish(&m2.control);
            }
            p.close(&m2.control);
        });
        assert_eq!(spsc_drain(&m), vec![10, 11, 12]);
        p.join().unwrap();
    });
}

/// The sleeper's protocol: no wake-up is lost. A lost one leaves the consumer spinning on an
/// unchanged epoch forever, which loom reports.
#[test]
fn spsc_no_lost_wakeup() {
    model(|| {
        let m = Arc::new(Mem::new(2, 2, false));
        let m2 = m.clone();
        let p = thread::spawn(move || {
            let mut p = spsc::Producer::attach(&m2.control, 2);
            let pos = p.try_claim(&m2.control, false).unwrap();
            m2.write(pos as usize, 5);
            p.publish(&m2.control);
            if has_waiters(&m2.control.not_empty) {
                bump(&m2.control.not_empty);
            }
        });
        let mut c = spsc::Consumer::attach(&m.control);
        let pos = loop {
            if let Ok(pos) = c.try_recv(&m.control, false) {
                break pos;
            }
            let epoch = begin_wait(&m.control.not_empty);
            if let Ok(pos) = c.try_recv(&m.control, true) {
                end_wait(&m.control.not_empty);
                break pos;
            }
            // "Sleep": until the epoch changes. Without a bump this never ends.
            while m
                .control
                .not_empty
                .futex
                .load(loom::sync::atomic::Ordering::Acquire)
                == epoch
            {
                thread::yield_now();
            }
            end_wait(&m.control.not_empty);
        };
        assert_eq!(m.read(pos as usize), 5);
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

//! Model checks of SPSC slot reuse (`protocol::spsc`: each position's entry names its data slot,
//! and the producer rewrites the slot released most recently). The payload of every data slot is
//! a loom `UnsafeCell`, so a producer writing a slot that the consumer may still read fails.
//!
//! Orderings this state relies on (each model below fails when one is weakened; checked by hand
//! on 2026-11-29 with `LOOM_MAX_PREEMPTIONS=2`):
//! - the producer's `head` load in `try_claim` is Acquire: the consumer's reads of a released
//!   slot happen before the producer rewrites it (Relaxed: `spsc_reuse_exclusive` fails with a
//!   causality violation on the payload cell);
//! - the entry's stamp is stored Release after its `data_slot` name, and loaded Acquire: the
//!   consumer finds the name of the item it was told is published (storing the name after the
//!   stamp: `spsc_reuse_exclusive` fails, the consumer reads an old name).
//!
//! The name itself needs no ordering of its own (Relaxed both ways).
#![cfg(loom)]

mod support;

use loom::sync::Arc;
use loom::thread;
use ndring::protocol::Notifier;
use ndring::protocol::spsc::{self, Stop};
use support::Mem;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    b.max_branches = 20_000;
    b.check(f);
}

fn produce(m: &Mem, p: &mut spsc::Producer, v: u64) {
    let (_, slot) = loop {
        match p.try_claim(&m.control, false) {
            Ok(claimed) => break claimed,
            Err(_) => thread::yield_now(),
        }
    };
    m.write(slot, v);
    p.publish(m);
}

fn consume(m: &Mem, c: &mut spsc::Consumer, n: usize) -> Vec<u64> {
    let mut got = vec![];
    while got.len() < n {
        match c.try_recv(m, false) {
            Ok((_, slot)) => {
                got.push(m.read(slot));
                c.release(&m.control);
            }
            Err(Stop::Closed) => break,
            Err(Stop::Wait) => thread::yield_now(),
        }
    }
    got
}

/// An eager producer (it reloads `head` at every claim and reuses the slot released last) and a
/// consumer on a 3-slot ring: FIFO, exactly once, never a slot written while it is read.
#[test]
fn spsc_reuse_exclusive() {
    model(|| {
        let m = Arc::new(Mem::new(3, 2, false));
        let m2 = m.clone();
        let p = thread::spawn(move || {
            let mut p = spsc::Producer::attach(&*m2, Notifier::new(true, 0));
            p.set_eager(&m2.control, true);
            for i in 0..4 {
                produce(&m2, &mut p, 10 + i);
            }
        });
        let mut c = spsc::Consumer::attach(&*m, Notifier::new(true, 0));
        assert_eq!(consume(&m, &mut c, 4), vec![10, 11, 12, 13]);
        p.join().unwrap();
    });
}

/// A producer hands over to a successor (which rebuilds its free slots from `head` while the
/// consumer is releasing) on a 2-slot ring: the successor never rewrites a queued or held slot.
#[test]
fn spsc_reuse_takeover_rebuilds_from_head() {
    model(|| {
        let m = Arc::new(Mem::new(2, 2, false));
        let m2 = m.clone();
        let p = thread::spawn(move || {
            let mut p = spsc::Producer::attach(&*m2, Notifier::new(false, 0));
            produce(&m2, &mut p, 1);
            produce(&m2, &mut p, 2);
            drop(p);
            let mut p = spsc::Producer::attach(&*m2, Notifier::new(false, 0));
            p.set_eager(&m2.control, true);
            produce(&m2, &mut p, 3);
        });
        let mut c = spsc::Consumer::attach(&*m, Notifier::new(false, 0));
        assert_eq!(consume(&m, &mut c, 3), vec![1, 2, 3]);
        p.join().unwrap();
    });
}

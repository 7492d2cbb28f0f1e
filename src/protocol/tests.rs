//! The protocols over heap memory with real threads: fast under `cargo test`, and the part of
//! the crate Miri can run (no shared memory or futex), where Miri checks for data races on the
//! slot payloads and for undefined behaviour.

use std::cell::UnsafeCell;
use std::sync::Arc;
use std::thread;

use super::broadcast::{Miss, Subscriber, Writer};
use super::spsc::{self, Stop};
use super::{Notifier, RingMemory, mpmc};
use crate::header::{Control, PeerEntry, SlotCtrl};
use crate::sync::AtomicU64;

/// A ring over heap memory (also used by the unit tests of `peers`).
pub(crate) struct Mem {
    pub(crate) control: Control,
    slots: Vec<SlotCtrl>,
    index: Vec<AtomicU64>,
    pub(crate) peers: Vec<PeerEntry>,
    data: Vec<UnsafeCell<u64>>,
}

// SAFETY: `data` is accessed only by the thread the protocol under test grants the slot to;
// the point of these tests (and of Miri) is to check exactly that.
unsafe impl Sync for Mem {}

impl Mem {
    pub(crate) fn new(slots: usize, peers: usize, mpmc: bool) -> Arc<Mem> {
        let m = Mem {
            control: Control::default(),
            slots: (0..slots).map(|_| SlotCtrl::default()).collect(),
            index: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            peers: (0..peers).map(|_| PeerEntry::default()).collect(),
            data: (0..slots).map(|_| UnsafeCell::new(0)).collect(),
        };
        super::init(&m, mpmc);
        Arc::new(m)
    }
    fn write(&self, slot: usize, v: u64) {
        // SAFETY: the protocol gave the calling thread this slot exclusively.
        unsafe { *self.data[slot].get() = v }
    }
    fn read(&self, slot: usize) -> u64 {
        // SAFETY: the protocol reserved this slot to the calling thread.
        unsafe { *self.data[slot].get() }
    }
}

impl RingMemory for Mem {
    fn control(&self) -> &Control {
        &self.control
    }
    fn slot(&self, i: usize) -> &SlotCtrl {
        &self.slots[i]
    }
    fn index(&self, i: usize) -> &AtomicU64 {
        &self.index[i]
    }
    fn peer(&self, i: usize) -> &PeerEntry {
        &self.peers[i]
    }
    fn slots(&self) -> usize {
        self.slots.len()
    }
    fn max_peers(&self) -> usize {
        self.peers.len()
    }
}

const N: u64 = if cfg!(miri) { 50 } else { 20_000 };

#[test]
fn spsc_fifo_between_threads() {
    let m = Mem::new(4, 2, false);
    let m2 = m.clone();
    let p = thread::spawn(move || {
        let mut p = spsc::Producer::attach(&*m2, Notifier::new(true, 3));
        for i in 0..N {
            let (pos, slot) = loop {
                match p.try_claim(&m2.control, false) {
                    Ok(claimed) => break claimed,
                    Err(_) => thread::yield_now(),
                }
            };
            assert_eq!((pos, slot), (i, (i % 4) as usize));
            m2.write(slot, i);
            p.publish(&*m2);
        }
        p.close(&*m2);
    });
    let mut c = spsc::Consumer::attach(&*m, Notifier::new(true, 3));
    let mut expected = 0;
    loop {
        match c.try_recv(&*m, expected % 7 == 0) {
            Ok((pos, slot)) => {
                assert_eq!((pos, slot), (expected, (expected % 4) as usize));
                assert_eq!(m.read(slot), expected);
                expected += 1;
                c.release(&m.control);
            }
            Err(Stop::Closed) => break,
            Err(Stop::Wait) => thread::yield_now(),
        }
    }
    assert_eq!(expected, N);
    p.join().unwrap();
}

#[test]
fn mpmc_exactly_once_between_threads() {
    let m = Mem::new(4, 4, true);
    let producers: Vec<_> = (0..2u64)
        .map(|id| {
            let m = m.clone();
            thread::spawn(move || {
                for i in 0..N {
                    let me = &m.peers[id as usize];
                    let pos = loop {
                        match mpmc::try_claim(&*m, me, false) {
                            Ok(pos) => break pos,
                            Err(_) => thread::yield_now(),
                        }
                    };
                    m.write((pos % 4) as usize, id << 32 | i);
                    // Every 5th claim is abandoned: never delivered.
                    mpmc::publish(&*m, me, pos, i % 5 == 4);
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (2..4)
        .map(|id| {
            let m = m.clone();
            thread::spawn(move || {
                let mut got = vec![];
                loop {
                    match mpmc::try_recv(&*m, &m.peers[id], false) {
                        Ok(pos) => {
                            got.push(m.read((pos % 4) as usize));
                            mpmc::release(&*m, &m.peers[id], pos);
                        }
                        Err(Stop::Closed) => return got,
                        Err(Stop::Wait) => thread::yield_now(),
                    }
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    mpmc::close(&*m);
    let mut all: Vec<u64> = consumers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    all.sort_unstable();
    let mut expected: Vec<u64> = (0..2u64)
        .flat_map(|id| (0..N).filter(|i| i % 5 != 4).map(move |i| id << 32 | i))
        .collect();
    expected.sort_unstable();
    assert_eq!(all, expected);
}

#[test]
fn broadcast_pins_hold_while_the_writer_laps() {
    let m = Mem::new(4, 3, false);
    let subs: Vec<_> = (1..3)
        .map(|id| {
            let m = m.clone();
            // Attached before the writer starts, so every frame is either received or missed.
            let mut sub = Subscriber::attach(&*m, false);
            thread::spawn(move || {
                let (mut last, mut got, mut missed) = (0, 0, 0);
                loop {
                    match sub.try_recv(&*m, &m.peers[id], false) {
                        Ok((s, seq)) => {
                            assert!(seq > last);
                            assert_eq!(m.read(s), seq);
                            thread::yield_now(); // hold the pin while the writer goes on
                            assert_eq!(m.read(s), seq);
                            last = seq;
                            got += 1;
                        }
                        Err(Miss::Lagged(n)) => missed += n,
                        Err(Miss::Closed) => break,
                        Err(Miss::Wait) => thread::yield_now(),
                    }
                }
                sub.unpin(&m.peers[id]);
                assert_eq!(got + missed, N);
            })
        })
        .collect();
    let mut w = Writer::attach(&*m, 1);
    for _ in 0..N {
        let (s, _) = w.claim(&*m);
        m.write(s, w.next_seq());
        w.publish(&*m, s);
    }
    w.close(&*m);
    for s in subs {
        s.join().unwrap();
    }
}

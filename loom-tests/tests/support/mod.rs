//! A ring owned on the heap by loom: the same `RingMemory` the protocols run on in production,
//! with one `UnsafeCell` (or atomic words) of data per slot so that loom checks exclusivity.
#![allow(dead_code)]

use loom::cell::UnsafeCell;
use loom::sync::atomic::AtomicU64;
use ndring::header::{Control, PeerEntry, SlotCtrl};
use ndring::protocol::RingMemory;

pub struct Mem {
    pub control: Control,
    pub slots: Vec<SlotCtrl>,
    pub index: Vec<AtomicU64>,
    pub peers: Vec<PeerEntry>,
    /// Payload accessed through references, checked by loom for exclusive access.
    pub data: Vec<UnsafeCell<u64>>,
    /// Payload of two words read by the seqlock copy-out path.
    pub words: Vec<[AtomicU64; 2]>,
}

impl Mem {
    pub fn new(slots: usize, peers: usize, mpmc: bool) -> Mem {
        let m = Mem {
            control: Control::default(),
            slots: (0..slots).map(|_| SlotCtrl::default()).collect(),
            index: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            peers: (0..peers).map(|_| PeerEntry::default()).collect(),
            data: (0..slots).map(|_| UnsafeCell::new(0)).collect(),
            words: (0..slots)
                .map(|_| [AtomicU64::new(0), AtomicU64::new(0)])
                .collect(),
        };
        ndring::protocol::init(&m, mpmc);
        m
    }

    pub fn write(&self, slot: usize, v: u64) {
        // SAFETY (checked by loom): the protocol gave this thread the slot exclusively.
        self.data[slot].with_mut(|p| unsafe { *p = v });
    }

    pub fn read(&self, slot: usize) -> u64 {
        // SAFETY (checked by loom): the protocol reserved the slot to this reader.
        self.data[slot].with(|p| unsafe { *p })
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

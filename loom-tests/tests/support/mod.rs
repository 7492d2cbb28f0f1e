//! A ring owned on the heap by loom: the same `RingMemory` the protocols run on in production,
//! with one `UnsafeCell` (or atomic words) of data per slot so that loom checks exclusivity;
//! and the model runner and sleeping helpers every model file shares.
#![allow(dead_code)]

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicU64, Ordering::*, fence};
use loom::thread;
use ndring::header::{Control, PeerEntry, SlotCtrl, WaitWord};
use ndring::protocol::{RingMemory, begin_wait, bump, end_wait};

/// Runs `f` under loom with at most `bound` preemptions per execution.
///
/// The bound is set here, per model, and `LOOM_MAX_PREEMPTIONS` is ignored, so that a developer's
/// shell, CI and the mutation check (`.ci/mutants`) explore the same executions. Every model uses
/// bound 2: each ordering mutant in `.ci/mutants.toml` is killed at that bound, and bound 3
/// runs into loom 0.7's open issue #254 (a plain `store` racing a read-modify-write on the same
/// atomic can be placed between the RMW's read and its write, an execution the C++ model forbids)
/// in the plain-mode SPSC models, where the plain `tail`/`head` stores race the sleepers'
/// `fetch_add(0)` re-checks: a correct protocol then "loses" a wake-up. A plain-mode model at
/// bound 2 does too once it runs four items through two slots instead of three (the producer of
/// `spsc_no_lost_wakeup_full_plain` never wakes, with any branch limit; fenced, it passes): taken
/// for the same limitation, since the fence argument of ARCHITECTURE.md §3.4 rules that wake-up
/// loss out, but not shown further. Raising the bound for a
/// model that has no plain store (MPMC, broadcast) is safe; do it here, not through the
/// environment.
pub fn model(bound: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(bound);
    // Receivers poll (with yields) until they see `Closed`, and a lost wake-up shows as a
    // sleeper spinning on an unchanged epoch until this limit: allow long paths.
    b.max_branches = 20_000;
    b.check(f);
}

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

/// Sleeps on `w` the way `wait.rs` does, until `ready` succeeds: the heavy barrier (`membarrier`)
/// is a `fence(SeqCst)` here, and the "futex" a loop until the epoch changes. A lost wake-up
/// leaves this loop spinning on an unchanged epoch until loom's branch limit, which fails the
/// model.
///
/// Loom cannot express `membarrier` (a fence forced onto another thread), so plain mode is
/// checked as the textbook asymmetric Dekker is: both barriers as `SeqCst` fences. The mode
/// switch itself is checked exactly by `plain_mode_switch_is_a_dekker_handshake`, and the fenced
/// mode exactly by every other sleeping model.
pub fn sleep_until<R>(w: &WaitWord, mut ready: impl FnMut(bool) -> Option<R>) -> R {
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
pub fn wake_if(needed: bool, w: &WaitWord) {
    if needed {
        bump(w);
    }
}

/// What `wait::notify` does after an RMW on a condition word, minus the system call.
pub fn notify(w: &WaitWord) {
    wake_if(ndring::protocol::has_waiters(w), w);
}

//! The hot path allocates nothing: 10,000 steady-state claim/publish/recv/release cycles on each
//! ring kind, counted by a global allocator that counts this thread's allocations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use ndarray::Ix3;
use ndring::{BroadcastWriter, Config, Consumer, Producer, Start, Subscriber};

struct Counting;

thread_local! {
    /// Whether this thread's allocations are being counted, and how many there were.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    if COUNTING.with(Cell::get) {
        ALLOCS.with(|a| a.set(a.get() + 1));
    }
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        count_one();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by this thread while running `f`.
fn allocations(f: impl FnOnce()) -> u64 {
    let before = ALLOCS.with(Cell::get);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCS.with(Cell::get) - before
}

const CYCLES: u64 = 10_000;
const SHAPE: (usize, usize, usize) = (4, 8, 2);

#[test]
fn queue_hot_path_does_not_allocate() {
    for (tag, config) in [("s", Config::spsc()), ("m", Config::mpmc())] {
        let n = format!("/ndt-{}-alloc{tag}", std::process::id());
        let mut tx = Producer::<u16, Ix3>::create(&n, SHAPE, &config).unwrap();
        let mut rx = Consumer::<u16, Ix3>::open(&n).unwrap();
        let mut sum = 0u64;
        let count = allocations(|| {
            for i in 0..CYCLES {
                let mut slot = tx.claim().unwrap();
                slot.fill(i as u16);
                slot.set_user_meta(&i).unwrap();
                slot.publish();
                let r = rx.recv().unwrap();
                sum += r[[3, 7, 1]] as u64 + r.user_meta::<u64>().unwrap();
            }
        });
        assert_eq!(count, 0, "{tag}: {count} allocations in {CYCLES} cycles");
        assert_eq!(sum, (0..CYCLES).map(|i| (i as u16) as u64 + i).sum::<u64>());
    }
}

#[test]
fn broadcast_hot_path_does_not_allocate() {
    let n = format!("/ndt-{}-allocb", std::process::id());
    let mut w = BroadcastWriter::<u16, Ix3>::create(&n, SHAPE, &Config::broadcast()).unwrap();
    let mut s = Subscriber::<u16, Ix3>::open(&n, Start::Oldest).unwrap();
    let mut sum = 0u64;
    let count = allocations(|| {
        for i in 0..CYCLES {
            let mut slot = w.claim();
            slot.fill(i as u16);
            slot.publish();
            sum += s.recv().unwrap()[[0, 0, 0]] as u64;
        }
    });
    assert_eq!(count, 0, "{count} allocations in {CYCLES} cycles");
    assert_eq!(sum, (0..CYCLES).map(|i| (i as u16) as u64).sum::<u64>());
}

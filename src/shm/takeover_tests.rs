//! SPSC consumer takeover, step by step in one process: a consumer "dies" when its peer entry is
//! handed to a process that has exited (a pid nobody holds), which is all a successor looks at.
//! Each step a real SIGKILL can interrupt is taken here on purpose (`tests/takeover.rs` kills
//! processes at random points for the same bugs).

use ndarray::{Ix1, arr1};

use crate::protocol::RingMemory;
use crate::protocol::peers::owner_word;
use crate::role::Role;
use crate::shm::peers;
use crate::sync::Ordering::*;
use crate::test_name::TestName;
use crate::{Config, Consumer, Producer};

/// The ring is removed when the test ends (see `TestName`).
fn name(test: &str) -> TestName {
    TestName::new(format!("/ndr-tk-{test}-{}", std::process::id()))
}

/// A pid that no process holds now (a child that has exited and been reaped).
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// Hands the consumer entry (SPSC: entry 1) to a dead process, as a SIGKILL would leave it.
fn die(seg: &crate::Segment) {
    let e = seg.peer(1);
    e.start_time.store(0, Release);
    e.owner
        .store(owner_word(dead_pid(), Role::Consumer as u8), Release);
}

/// A consumer dies holding an item; its successor dies after taking the role over but before
/// skipping that item; the third consumer must skip it all the same (it was delivered once).
#[test]
fn a_successor_killed_before_it_skipped_passes_the_dead_holding_on() {
    let n = name("twice");
    let mut tx = Producer::<u64, Ix1>::create(&n, 1, &Config::spsc().slots(4)).unwrap();
    for i in 0..3 {
        tx.send(&arr1(&[i])).unwrap();
    }
    let mut first = Consumer::<u64, Ix1>::open(&n).unwrap();
    assert_eq!(first.recv().unwrap()[0], 0);
    let seg = first.seg.clone();
    std::mem::forget(first); // killed holding item 0: nothing of its handle runs again
    die(&seg);
    // The second takes the role over (what `Consumer::open` does first), then is killed before
    // its attach skips item 0.
    let reg = peers::register(&seg, Role::Consumer).unwrap();
    assert_eq!(reg.dead_holding, Some(1));
    die(&seg);
    let mut third = Consumer::<u64, Ix1>::open(&n).unwrap();
    assert_eq!(
        third.recv().unwrap()[0],
        1,
        "item 0 was delivered to the first consumer already"
    );
    assert_eq!(seg.stats().role_takeovers, 2);
}

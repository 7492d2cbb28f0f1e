//! The creator of a ring is registered before the ring is READY (ARCHITECTURE.md §2.7): an
//! opener racing the creation sees the creator attached as soon as it sees the ring, so a peer
//! that attaches and leaves at once never takes itself for the last one out and removes the name
//! under the creator. Real segments and threads (the race is between READY and the creator's
//! entry); not under Miri, whose segments are not named.

use std::hint::spin_loop;
use std::thread;
use std::time::{Duration, Instant};

use ndarray::Ix1;

use crate::header::{Control, LINE, PeerEntry, STATE_READY};
use crate::layout::{Layout, Params};
use crate::shm::sys;
use crate::sync::Ordering::*;
use crate::{BroadcastWriter, Config, Consumer, DType, Error, Producer, Role, Segment};

/// Rounds per handle type: each is one creation raced by an opener spinning on the state word.
const ROUNDS: usize = 200;

/// Spins until `name` exists and is READY, then reads its peer table at once. Returns the
/// owner words seen (0: free) in the first instant the ring was ready for this thread.
fn owners_at_ready(name: &str, layout: &Layout) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let timed_out = || assert!(Instant::now() < deadline, "{name} never became ready");
    let fd = loop {
        match sys::open(name, true) {
            Ok(fd) => break fd,
            Err(_) => timed_out(),
        }
    };
    while sys::size(&fd).unwrap() < layout.total_size as u64 {
        timed_out();
        spin_loop();
    }
    let base = sys::map(&fd, layout.total_size, true).unwrap();
    // SAFETY: the mapping is `total_size` bytes, page-aligned; `Control` and `PeerEntry` are all
    // atomics at their layout offsets (128-aligned), valid for any bits; the references are
    // dropped before the unmap below.
    let owners = unsafe {
        let control = &*base
            .as_ptr()
            .add(crate::layout::CONTROL_OFFSET)
            .cast::<Control>();
        while control.state.load(Acquire) != STATE_READY {
            timed_out();
            spin_loop();
        }
        (0..layout.params.max_peers)
            .map(|i| {
                let e = &*base
                    .as_ptr()
                    .add(layout.peers_offset + i * LINE)
                    .cast::<PeerEntry>();
                e.owner.load(Acquire)
            })
            .collect()
    };
    // SAFETY: mapped above; no reference into it is left.
    unsafe { sys::unmap(base, layout.total_size) };
    owners
}

/// Races `create` of each round's ring against an opener that, the instant it sees the ring
/// READY, reads the peer table and then attaches and leaves as `visitor` (`attach_and_leave`).
/// Checks that the opener saw the creator's entry (`role`, our pid), that the create succeeded,
/// and that the creator's ring kept its name through the visit; then `after` uses the ring.
fn race<H: Send + 'static>(
    test: &str,
    config: Config,
    role: Role,
    create: impl Fn(&str, &Config) -> crate::Result<H>,
    attach_and_leave: impl Fn(&str) + Send + Sync + Copy + 'static,
    after: impl Fn(&str, H),
) {
    let layout = Layout::compute(Params {
        kind: config.kind,
        dtype: DType::U64,
        shape: vec![1],
        slots: config.slots,
        user_meta: config.user_meta,
        max_peers: config.max_peers,
        timestamps: config.timestamps,
        reply: None,
    })
    .unwrap();
    let me = crate::protocol::peers::owner_word(sys::pid(), role as u8);
    for round in 0..ROUNDS {
        let name = format!("/ndr-cr-{test}{round}-{}", std::process::id());
        let opener = thread::spawn({
            let (name, layout) = (name.clone(), layout.clone());
            move || {
                let owners = owners_at_ready(&name, &layout);
                attach_and_leave(&name);
                owners
            }
        });
        let created = create(&name, &config);
        let owners = opener.join().unwrap();
        assert!(
            owners.contains(&me),
            "round {round}: the ring was READY before its creator's entry ({owners:x?})"
        );
        let handle = created.unwrap_or_else(|e| panic!("round {round}: create failed: {e}"));
        let seg = Segment::open(&name, Duration::from_secs(1))
            .unwrap_or_else(|e| panic!("round {round}: the creator's ring lost its name: {e}"));
        assert_eq!(seg.creator_pid(), sys::pid(), "round {round}: another ring");
        drop(seg);
        after(&name, handle);
        assert!(
            matches!(
                Segment::open(&name, Duration::ZERO),
                Err(Error::NotFound { .. })
            ),
            "round {round}: the last one out left the name"
        );
    }
}

/// The review's case: a consumer creates the ring, a producer attaches and leaves before the
/// consumer's handle exists. The name stays, and the consumer receives from the next producer.
#[test]
fn a_consumer_creator_keeps_its_name_when_a_producer_visits_during_create() {
    race(
        "c",
        Config::spsc().slots(2),
        Role::Consumer,
        |n, c| Consumer::<u64, Ix1>::create(n, 1, c),
        |n| drop(Producer::<u64, Ix1>::open(n).unwrap()),
        |n, mut rx| {
            Producer::<u64, Ix1>::open(n)
                .unwrap()
                .send(&ndarray::arr1(&[7]))
                .unwrap();
            assert_eq!(rx.recv().unwrap()[0], 7);
        },
    );
}

/// The same for an MPMC producer that creates the ring and a consumer that visits.
#[test]
fn a_producer_creator_keeps_its_name_when_a_consumer_visits_during_create() {
    race(
        "p",
        Config::mpmc().slots(2).max_peers(4),
        Role::Producer,
        |n, c| Producer::<u64, Ix1>::create(n, 1, c),
        |n| drop(Consumer::<u64, Ix1>::open(n).unwrap()),
        |n, mut tx| {
            let mut rx = Consumer::<u64, Ix1>::open(n).unwrap();
            tx.send(&ndarray::arr1(&[9])).unwrap();
            assert_eq!(rx.recv().unwrap()[0], 9);
        },
    );
}

/// The same for a broadcast writer and a subscriber that visits.
#[test]
fn a_writer_creator_keeps_its_name_when_a_subscriber_visits_during_create() {
    race(
        "w",
        Config::broadcast().slots(4).max_subscribers(2),
        Role::Writer,
        |n, c| BroadcastWriter::<u64, Ix1>::create(n, 1, c),
        |n| drop(crate::Subscriber::<u64, Ix1>::open(n, crate::Start::Newest).unwrap()),
        |n, mut w| {
            let mut sub = crate::Subscriber::<u64, Ix1>::open(n, crate::Start::Newest).unwrap();
            w.send(&ndarray::arr1(&[5])).unwrap();
            assert_eq!(sub.recv().unwrap()[0], 5);
        },
    );
}

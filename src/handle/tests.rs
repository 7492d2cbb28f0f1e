//! The typed layer with real threads: handles, the views `WriteSlot`/`ReadSlot` build over the
//! segment, user metadata, timestamps, copy-in and copy-out, the peer table. Under `cargo test`
//! the segments are real shared memory; under Miri (`sys/miri.rs`) they are heap memory, and Miri
//! checks every access of these paths for data races and undefined behaviour.
//!
//! One thing Miri would rightly report is left out: `Subscriber::recv_into` copying a slot while
//! a writer *thread of the same process* rewrites it (the writer's payload stores are not atomic;
//! see README, "Zero copy, sound"). Copy-out here runs while the writer is not writing.

use std::thread;

use ndarray::{Array2, Ix1, Ix2, arr1};

use crate::{BroadcastWriter, Config, Consumer, Error, Producer, Role, Start, Subscriber};

/// Items per test: Miri runs about a million times slower than the CPU.
const N: u64 = if cfg!(miri) { 6 } else { 2_000 };

fn name(test: &str) -> String {
    format!("/ndr-ht-{test}-{}", std::process::id())
}

#[test]
fn spsc_views_metadata_and_copies_between_threads() {
    let name = name("spsc");
    let config = Config::spsc().slots(2).timestamps(true).spin(0);
    let mut tx = Producer::<u16, Ix2>::create(&name, (2, 3), &config).unwrap();
    let mut rx = Consumer::<u16, Ix2>::open(&name).unwrap();
    let consumer = thread::spawn(move || {
        for i in 0..N {
            let frame = rx.recv().unwrap();
            assert_eq!(frame.seq(), i + 1);
            assert!(frame.iter().all(|&v| v == i as u16));
            assert_eq!(frame.user_meta::<[u64; 2]>().unwrap(), [i, !i]);
            assert!(frame.timestamp_ns().is_some());
        }
        // Copy-out of a queue slot, into a transposed (non-contiguous) array.
        let mut out = Array2::<u16>::zeros((3, 2));
        let mut t = out.view_mut().reversed_axes();
        rx.recv_into(&mut t).unwrap();
        assert_eq!(
            out,
            Array2::from_shape_fn((3, 2), |(r, c)| (10 * c + r) as u16)
        );
        assert!(matches!(rx.recv(), Err(Error::Closed)));
    });
    for i in 0..N {
        let mut slot = tx.claim().unwrap();
        slot.fill(i as u16);
        slot.set_user_meta(&[i, !i]).unwrap();
        slot.publish();
    }
    // Copy-in from a transposed view.
    let src = Array2::from_shape_fn((3, 2), |(r, c)| (10 * c + r) as u16);
    tx.send(&src.t()).unwrap();
    tx.close();
    consumer.join().unwrap();
}

#[test]
fn mpmc_every_item_once_between_threads() {
    let name = name("mpmc");
    let config = Config::mpmc().slots(2).spin(0);
    let tx = Producer::<u64, Ix1>::create(&name, 2, &config).unwrap();
    let producers: Vec<_> = (0..2u64)
        .map(|p| {
            let name = name.clone();
            thread::spawn(move || {
                let mut tx = Producer::<u64, Ix1>::open(&name).unwrap();
                for i in 0..N {
                    tx.send(&arr1(&[p, i])).unwrap();
                }
                // An abandoned claim is never delivered.
                drop(tx.claim().unwrap());
            })
        })
        .collect();
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let mut rx = Consumer::<u64, Ix1>::open(&name).unwrap();
            thread::spawn(move || {
                let mut got = vec![];
                while let Ok(item) = rx.recv() {
                    got.push((item[0], item[1]));
                }
                got
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    let mut tx = tx;
    tx.close();
    let mut all: Vec<_> = consumers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    all.sort_unstable();
    let expected: Vec<_> = (0..2).flat_map(|p| (0..N).map(move |i| (p, i))).collect();
    assert_eq!(all, expected);
    assert_eq!(tx.segment().stats().abandoned, 2);
}

#[test]
fn broadcast_pins_latest_and_copy_out_between_threads() {
    let name = name("bcast");
    let config = Config::broadcast().slots(4).max_subscribers(2).spin(0);
    let mut w = BroadcastWriter::<u32, Ix1>::create(&name, 3, &config).unwrap();
    let subscribers: Vec<_> = (0..2)
        .map(|_| {
            let mut s = Subscriber::<u32, Ix1>::open(&name, Start::Oldest).unwrap();
            thread::spawn(move || {
                let (mut got, mut missed) = (0, 0);
                loop {
                    match s.recv() {
                        Ok(frame) => {
                            let seq = frame.seq() as u32;
                            assert_eq!(frame.to_vec(), vec![seq; 3]);
                            assert_eq!(frame.user_meta::<u32>().unwrap(), seq);
                            got += 1;
                        }
                        Err(Error::Lagged { missed: m }) => missed += m,
                        Err(Error::Closed) => break,
                        Err(e) => panic!("{e}"),
                    }
                }
                assert_eq!(got + missed, N);
            })
        })
        .collect();
    for i in 1..=N {
        let mut slot = w.claim();
        slot.fill(i as u32);
        slot.set_user_meta(&(i as u32)).unwrap();
        slot.publish();
    }
    // Copy-out and `latest` while the writer thread (this one) is not writing.
    let mut late = Subscriber::<u32, Ix1>::open_with(
        &name,
        Start::Oldest,
        &crate::OpenOptions::default().spin(0),
    );
    // Both subscriber entries may still be taken by the threads above: then there is no room.
    if let Ok(late) = late.as_mut() {
        let mut out = ndarray::Array1::<u32>::zeros(3);
        match late.recv_into(&mut out, None) {
            Ok(seq) => assert_eq!(out.to_vec(), vec![seq as u32; 3]),
            Err(Error::Lagged { .. }) => {}
            Err(e) => panic!("{e}"),
        }
        assert_eq!(late.latest().unwrap().to_vec(), vec![N as u32; 3]);
    }
    drop(late);
    w.close();
    for s in subscribers {
        s.join().unwrap();
    }
}

#[test]
fn peer_table_registers_and_frees_entries() {
    let name = name("peers");
    let tx = Producer::<u8, Ix1>::create(&name, 4, &Config::spsc()).unwrap();
    assert!(matches!(
        Producer::<u8, Ix1>::open(&name),
        Err(Error::RoleTaken {
            role: Role::Producer,
            ..
        })
    ));
    let rx = Consumer::<u8, Ix1>::open(&name).unwrap();
    let roles: Vec<_> = tx.peers().iter().map(|p| (p.role, p.alive)).collect();
    assert_eq!(roles, vec![(Role::Producer, true), (Role::Consumer, true)]);
    drop(rx);
    assert_eq!(tx.peers().len(), 1);
    assert_eq!(tx.recover_dead(), 0);
}

/// The last handle out racing an opener: the opener never stays attached to a ring whose name
/// is gone (it would wait there for peers that can no longer find it). Real segments only (the
/// race is between the unlink and the registration).
#[test]
#[cfg(not(miri))]
fn an_opener_racing_the_last_handle_out_never_attaches_to_a_removed_name() {
    use std::sync::{Arc, Barrier};
    let name = name("race");
    for round in 0..300 {
        let rx = Consumer::<u8, Ix1>::create(&name, 1, &Config::spsc()).unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let leaver = thread::spawn({
            let barrier = barrier.clone();
            move || {
                barrier.wait();
                drop(rx);
            }
        });
        barrier.wait();
        let tx = Producer::<u8, Ix1>::open_or_create(&name, 1, &Config::spsc()).unwrap();
        leaver.join().unwrap();
        assert!(
            tx.segment().still_named(),
            "round {round}: attached to a ring whose name was removed"
        );
        drop(tx);
        assert!(matches!(
            crate::Segment::open(&name, std::time::Duration::ZERO),
            Err(Error::NotFound { .. })
        ));
    }
}

/// A grace period too long for the clock (`Duration::MAX`: "never look for dead peers") is
/// accepted, not a panic in the waiting loop: a blocking call still times out.
#[test]
fn a_grace_period_of_duration_max_does_not_overflow_the_wait() {
    use std::time::Duration;
    let name = name("gmax");
    let config = Config::spsc().grace(Duration::MAX).spin(0);
    let mut rx = Consumer::<u8, Ix1>::create(&name, 1, &config).unwrap();
    assert!(matches!(
        rx.recv_timeout(Duration::from_millis(5)),
        Err(Error::Timeout)
    ));
    assert!(matches!(rx.try_recv(), Err(Error::Empty)));
}

/// A subscriber fixes where it starts before it shows in the peer table, so a writer that waits
/// for it there and then publishes finds every frame received or reported `Lagged` (what the
/// cross-process test `eight_subscriber_processes_see_frames_in_order` relies on). The window
/// between the two is held open here: a subscriber's registration takes its peer entry, then
/// confirms the name under the segment's lock (shared), which this test holds exclusively.
#[cfg(not(miri))]
#[test]
fn subscriber_in_the_peer_table_has_fixed_its_start() {
    use rustix::fs::{FlockOperation, flock};
    use std::time::Duration;
    const FRAMES: u64 = 100;
    let name = name("bstart");
    let config = Config::broadcast().slots(32).max_subscribers(1);
    let mut w = BroadcastWriter::<u64, Ix1>::create(&name, 1, &config).unwrap();
    let lock = std::fs::File::open(format!("/dev/shm{name}")).unwrap();
    flock(&lock, FlockOperation::LockExclusive).unwrap();
    let opening = thread::spawn({
        let name = name.clone();
        move || Subscriber::<u64, Ix1>::open(&name, Start::Oldest).unwrap()
    });
    // Bounded, so that a registration that never shows fails the test instead of hanging it.
    let listed = (0..10_000).any(|_| {
        let seen = w.peers().iter().any(|p| p.role == Role::Subscriber);
        if !seen {
            thread::sleep(Duration::from_millis(1));
        }
        seen
    });
    assert!(listed, "the subscriber never showed in the peer table");
    // Listed, so its start is fixed: these frames are all its to receive or miss.
    for i in 1..=FRAMES {
        w.send(&arr1(&[i])).unwrap();
    }
    w.close();
    flock(&lock, FlockOperation::Unlock).unwrap();
    let mut sub = opening.join().unwrap();
    let mut received = 0;
    loop {
        match sub.recv() {
            Ok(f) => {
                assert_eq!(f[0], f.seq());
                received += 1;
            }
            Err(Error::Lagged { .. }) => {}
            Err(Error::Closed) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(
        (received, sub.missed_total()),
        (32, FRAMES - 32),
        "frames neither received nor reported Lagged"
    );
}

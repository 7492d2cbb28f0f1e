//! Lease tests in one process: out-of-order releases, the stall error, the data slot each entry
//! names, releases from other threads.

use super::*;
use crate::test_name::TestName;
use crate::{Config, Consumer, Error, Producer};
use ndarray::{Ix1, arr1};
use std::time::Duration;

/// The ring is removed when the test ends (see `TestName`).
fn name(tag: &str) -> TestName {
    TestName::new(format!("/ndr-lease-{tag}-{}", std::process::id()))
}

#[test]
fn spsc_out_of_order_releases_apply_in_order_and_a_stall_is_an_error() {
    let n = name("spsc");
    let mut tx = Producer::<u8, Ix1>::create(&n, 1, &Config::spsc().slots(4)).unwrap();
    let mut rx = LeaseConsumer::from(Consumer::<u8, Ix1>::open(&n).unwrap());
    for i in 0..4 {
        tx.send(&arr1(&[i])).unwrap();
    }
    let mut held: Vec<_> = (0..4).map(|_| rx.recv_lease().unwrap()).collect();
    assert!(matches!(
        rx.recv_lease(),
        Err(Error::TooManyLeases { held: 4, .. })
    ));
    // Releasing 2 and 3 frees nothing for the producer: 1 (the oldest) is still held.
    let third = held.pop().unwrap();
    let second = held.pop().unwrap();
    drop((second, third));
    assert!(matches!(tx.try_claim(), Err(Error::Full)));
    assert!(matches!(
        rx.try_recv_lease(),
        Err(Error::TooManyLeases { held: 2, .. })
    ));
    assert!(matches!(
        rx.recv_lease(),
        Err(Error::TooManyLeases { held: 2, .. })
    ));
    // Dropping seq 1 frees its slot alone (seq 2 is held); dropping seq 2 then frees 2, 3, 4.
    drop(held.remove(0));
    tx.try_claim().unwrap().publish();
    assert!(matches!(tx.try_claim(), Err(Error::Full)));
    drop(held.remove(0));
    for i in 6..9 {
        tx.send(&arr1(&[i])).unwrap();
    }
    let next = rx.recv_lease().unwrap();
    assert_eq!(next.seq(), 5);
    assert_eq!(rx.recv_lease().unwrap().view()[0], 6);
}

#[test]
fn spsc_leases_read_the_data_slot_each_entry_names() {
    // A producer that reuses the slot released last puts position 4 in slot 1, not in
    // slot 4 % 4: a lease must follow the entry's name, also for items read ahead.
    let n = name("names");
    let mut tx = Producer::<u32, Ix1>::create(&n, 2, &Config::spsc().slots(4)).unwrap();
    tx.reuse_recent_slots(true);
    let mut rx = LeaseConsumer::from(Consumer::<u32, Ix1>::open(&n).unwrap());
    let mut sent = 0u32;
    let mut send = |tx: &mut Producer<u32, Ix1>| {
        tx.send(&arr1(&[sent, !sent])).unwrap();
        sent += 1;
    };
    for _ in 0..4 {
        send(&mut tx);
    }
    let (a, b) = (rx.recv_lease().unwrap(), rx.recv_lease().unwrap());
    drop(a);
    drop(b);
    send(&mut tx);
    let held: Vec<_> = (0..3).map(|_| rx.recv_lease().unwrap()).collect();
    let got: Vec<_> = held.iter().map(|l| l.view().to_vec()).collect();
    assert_eq!(got, vec![vec![2, !2], vec![3, !3], vec![4, !4]]);
    assert_ne!(held[2].slot, 0, "the producer reused a slot out of turn");
    // Out of order: the newest first; `head` moves only when the oldest goes.
    send(&mut tx); // position 5: the ring is full now
    let mut held = held;
    drop(held.pop());
    drop(held.pop());
    assert!(matches!(tx.try_claim(), Err(Error::Full)));
    drop(held.pop());
    for _ in 0..3 {
        send(&mut tx);
    }
    let got: Vec<_> = (0..4)
        .map(|_| rx.recv_lease().unwrap().view().to_vec())
        .collect();
    assert_eq!(got, (5..9u32).map(|i| vec![i, !i]).collect::<Vec<_>>());
}

#[test]
fn mpmc_leases_release_from_other_threads_and_a_stall_is_an_error() {
    let n = name("mpmc");
    let mut tx = Producer::<u32, Ix1>::create(&n, 2, &Config::mpmc().slots(2)).unwrap();
    let mut rx = LeaseConsumer::from(Consumer::<u32, Ix1>::open(&n).unwrap());
    tx.send(&arr1(&[1, 1])).unwrap();
    tx.send(&arr1(&[2, 2])).unwrap();
    let a = rx.recv_lease().unwrap();
    let b = rx.recv_lease().unwrap();
    std::thread::spawn(move || drop(b)).join().unwrap();
    assert!(matches!(tx.try_claim(), Err(Error::Full))); // seq 1's slot is still ours
    let c = rx.recv_lease_timeout(Duration::from_millis(1));
    assert!(
        matches!(c, Err(Error::TooManyLeases { held: 1, .. })),
        "{c:?}"
    );
    assert_eq!(a.view().to_vec(), vec![1, 1]);
    drop(a);
    tx.send(&arr1(&[3, 3])).unwrap();
    assert_eq!(rx.recv_lease().unwrap().seq(), 3);
}

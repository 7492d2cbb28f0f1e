//! Queue rings (SPSC, MPMC) across real processes.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::time::Duration;

use common::{eventually, finish, name, pattern, spawn, trial};
use ndarray::{Array1, Ix1, arr1};
use ndring::{Config, Consumer, Error, OpenOptions, Producer};

const LONG: Duration = Duration::from_secs(120);

fn main() -> std::process::ExitCode {
    common::main(
        &[
            ("sleepy-consumer", sleepy_consumer),
            ("spsc-producer", spsc_producer),
            ("mpmc-producer", mpmc_producer),
            ("mpmc-consumer", mpmc_consumer),
            ("close-producer", close_producer),
            ("abandon-producer", abandon_producer),
            ("sleepy-producer", sleepy_producer),
            ("patient-consumer", patient_consumer),
        ],
        vec![
            trial(
                "consumer_asleep_in_recv_is_woken_by_another_process",
                wake_across_processes,
            ),
            trial(
                "producer_asleep_in_claim_is_woken_by_a_release",
                producer_woken_by_release,
            ),
            trial(
                "spsc_sleepers_are_woken_when_the_other_side_publishes_plain",
                plain_mode_wakeups,
            ),
            trial(
                "spsc_delivers_a_million_items_in_fifo_order",
                spsc_million_fifo,
            ),
            trial(
                "mpmc_2p2c_delivers_every_item_exactly_once",
                mpmc_exactly_once,
            ),
            trial("recv_timeout_and_claim_timeout_time_out", timeouts),
            trial("close_drains_then_reports_closed", close_drains),
            trial("abandoned_write_slot_is_never_delivered_spsc", || {
                abandoned(false)
            }),
            trial("abandoned_write_slot_is_never_delivered_mpmc", || {
                abandoned(true)
            }),
            trial("send_copies_non_contiguous_views", send_non_contiguous),
            trial("metadata_travels_with_each_item", metadata),
            trial("spsc_role_taken_names_the_holder", role_taken),
        ],
    )
}

/// Child: opens `name` as a consumer that sleeps at once, receives one item and checks it.
fn sleepy_consumer(a: &[String]) {
    let mut rx = Consumer::<u64, Ix1>::open_with(&a[0], &OpenOptions::default().spin(0)).unwrap();
    let slot = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("woken with an item");
    assert_eq!(slot.to_vec(), vec![7, 8, 9]);
}

fn wake_across_processes() {
    let n = name("wake");
    let mut tx = Producer::<u64, Ix1>::create(&n, 3, &Config::spsc()).unwrap();
    let child = spawn("sleepy-consumer", &[&n]);
    // The child is asleep on the futex once it registered as a waiter.
    eventually(LONG, "consumer asleep", || tx.segment().sleepers().0 == 1);
    tx.send(&arr1(&[7, 8, 9])).unwrap();
    finish(child, LONG);
}

/// Child: fills a 2-slot ring, then sleeps in claim until the parent releases one.
fn sleepy_producer(a: &[String]) {
    let mut tx = Producer::<u64, Ix1>::open_with(&a[0], &OpenOptions::default().spin(0)).unwrap();
    for i in 0..3 {
        let mut s = tx
            .claim_timeout(Duration::from_secs(60))
            .expect("woken with a free slot");
        s.fill(i);
        s.publish();
    }
}

fn producer_woken_by_release() {
    let n = name("wakep");
    let mut rx = Consumer::<u64, Ix1>::create(&n, 1, &Config::spsc().slots(2)).unwrap();
    let child = spawn("sleepy-producer", &[&n]);
    eventually(LONG, "producer asleep on a full ring", || {
        rx.segment().sleepers().1 == 1
    });
    for i in 0..3 {
        assert_eq!(rx.recv_timeout(LONG).unwrap()[0], i);
    }
    finish(child, LONG);
}

const PLAIN_ROUNDS: u64 = 150;
const PLAIN_BURST: u64 = 200;

/// Child: receives every item of `plain_mode_wakeups` in order. Its grace period (the longest
/// single futex sleep) is an hour, so a lost wake-up hangs it instead of costing 500 ms.
fn patient_consumer(a: &[String]) {
    let opts = OpenOptions::default().grace(Duration::from_secs(3600));
    let mut rx = Consumer::<u64, Ix1>::open_with(&a[0], &opts).unwrap();
    for i in 0..PLAIN_ROUNDS * PLAIN_BURST {
        assert_eq!(rx.recv().unwrap()[0], i, "item {i}");
    }
}

/// Bursts long enough for the producer to switch to plain stores (64 quiet publishes), each
/// followed either by a wait until the consumer is asleep, or by a short pause that races with
/// its falling asleep. The consumer must be woken every time: a sleeper that missed a plain
/// publish (no membarrier, or a broken mode switch) would sleep for its hour-long grace period.
fn plain_mode_wakeups() {
    use std::os::unix::fs::FileExt;
    let n = name("plain");
    let opts = Config::spsc().slots(8).grace(Duration::from_secs(3600));
    let mut tx = Producer::<u64, Ix1>::create(&n, 1, &opts).unwrap();
    let shm = std::fs::File::open(format!("/dev/shm/{}", n.trim_start_matches('/'))).unwrap();
    let child = spawn("patient-consumer", &[&n]);
    let mut plain_when_asleep = 0;
    for round in 0..PLAIN_ROUNDS {
        for k in 0..PLAIN_BURST {
            tx.send(&arr1(&[round * PLAIN_BURST + k])).unwrap();
        }
        if round % 2 == 0 {
            eventually(LONG, "consumer asleep", || tx.segment().sleepers().0 == 1);
            // `not_empty.plain` at offset 904 (ARCHITECTURE.md §2.2; a compile-time assertion in
            // src/header.rs keeps the offset true): was this sleeper relying on membarrier?
            let mut word = [0u8; 4];
            shm.read_exact_at(&mut word, 904).unwrap();
            plain_when_asleep += u32::from_le_bytes(word);
        } else {
            std::thread::sleep(Duration::from_micros(round % 7 * 40));
        }
    }
    finish(child, LONG);
    // The case under test happened (it is the common one: the consumer keeps up in bursts).
    assert!(plain_when_asleep > 0, "the producer never went plain");
}

/// Child: sends `count` items [i, !i] over SPSC, then closes.
fn spsc_producer(a: &[String]) {
    let count: u64 = a[1].parse().unwrap();
    let mut tx = Producer::<u64, Ix1>::open(&a[0]).unwrap();
    for i in 0..count {
        let mut s = tx.claim().unwrap();
        s[0] = i;
        s[1] = !i;
        s.publish();
    }
    tx.close();
}

fn spsc_million_fifo() {
    const COUNT: u64 = 1_000_000;
    let n = name("fifo");
    let mut rx = Consumer::<u64, Ix1>::create(&n, 2, &Config::spsc().slots(64)).unwrap();
    let child = spawn("spsc-producer", &[&n, &COUNT.to_string()]);
    let mut expected = 0u64;
    loop {
        match rx.recv() {
            Ok(s) => {
                assert_eq!(
                    (s[0], s[1]),
                    (expected, !expected),
                    "item {expected} out of order"
                );
                assert_eq!(s.seq(), expected + 1);
                expected += 1;
            }
            Err(Error::Closed) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(expected, COUNT);
    finish(child, LONG);
}

const MPMC_ITEMS: u64 = 50_000;
const MPMC_LEN: usize = 16;

/// Child: producer `id` sends MPMC_ITEMS items whose every element is `pattern(id, i, j)`.
fn mpmc_producer(a: &[String]) {
    let id: u64 = a[1].parse().unwrap();
    let mut tx = Producer::<u64, Ix1>::open(&a[0]).unwrap();
    for i in 0..MPMC_ITEMS {
        let mut s = tx.claim().unwrap();
        for (j, v) in s.iter_mut().enumerate() {
            *v = pattern(id, i, j);
        }
        s.set_user_meta(&[id, i]).unwrap();
        s.publish();
    }
}

/// Child: receives until closed, checks each item's content, prints "id i" per item.
fn mpmc_consumer(a: &[String]) {
    use std::io::Write;
    let mut rx = Consumer::<u64, Ix1>::open(&a[0]).unwrap();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    loop {
        match rx.recv() {
            Ok(s) => {
                let [id, i] = s.user_meta::<[u64; 2]>().unwrap();
                for (j, &v) in s.iter().enumerate() {
                    assert_eq!(v, pattern(id, i, j), "item ({id}, {i}) corrupt at {j}");
                }
                writeln!(out, "{id} {i}").unwrap();
            }
            Err(Error::Closed) => break,
            Err(e) => panic!("{e}"),
        }
    }
}

fn mpmc_exactly_once() {
    let n = name("mpmc");
    let mut closer = Producer::<u64, Ix1>::create(&n, MPMC_LEN, &Config::mpmc().slots(8)).unwrap();
    let consumers: Vec<_> = (0..2).map(|_| spawn("mpmc-consumer", &[&n])).collect();
    let producers: Vec<_> = (0..2)
        .map(|p| spawn("mpmc-producer", &[&n, &p.to_string()]))
        .collect();
    for p in producers {
        finish(p, LONG);
    }
    closer.close();
    let mut seen = HashSet::new();
    for c in consumers {
        let out = finish(c, LONG);
        for line in BufReader::new(&out.stdout[..]).lines() {
            let line = line.unwrap();
            let mut it = line.split(' ').map(|v| v.parse::<u64>().unwrap());
            let key = (it.next().unwrap(), it.next().unwrap());
            assert!(seen.insert(key), "item {key:?} delivered twice");
        }
    }
    assert_eq!(seen.len() as u64, 2 * MPMC_ITEMS, "items lost");
}

fn timeouts() {
    for config in [Config::spsc().slots(2), Config::mpmc().slots(2)] {
        let n = name("tmo");
        let mut tx = Producer::<u8, Ix1>::create(&n, 4, &config).unwrap();
        let mut rx = Consumer::<u8, Ix1>::open(&n).unwrap();
        let t = Duration::from_millis(20);
        assert!(matches!(rx.recv_timeout(t), Err(Error::Timeout)));
        tx.claim_timeout(t).unwrap().publish();
        tx.claim_timeout(t).unwrap().publish();
        assert!(matches!(tx.claim_timeout(t), Err(Error::Timeout)));
        assert!(matches!(tx.try_claim(), Err(Error::Full)));
        assert_eq!(rx.recv_timeout(t).unwrap().seq(), 1);
        // The slot of the last recv is released at the consumer's next call.
        assert!(matches!(tx.try_claim(), Err(Error::Full)));
        assert_eq!(rx.recv_timeout(t).unwrap().seq(), 2);
        assert!(tx.try_claim().is_ok());
    }
}

/// Child: sends 10 items, closes, exits.
fn close_producer(a: &[String]) {
    let mut tx = Producer::<u64, Ix1>::open(&a[0]).unwrap();
    for i in 0..10 {
        tx.send(&arr1(&[i])).unwrap();
    }
    tx.close();
    assert!(matches!(tx.claim(), Err(Error::Closed)));
}

fn close_drains() {
    for config in [Config::spsc().slots(16), Config::mpmc().slots(16)] {
        let n = name("close");
        let mut rx = Consumer::<u64, Ix1>::create(&n, 1, &config).unwrap();
        finish(spawn("close-producer", &[&n]), LONG);
        for i in 0..10 {
            assert_eq!(rx.recv().unwrap()[0], i);
        }
        assert!(matches!(rx.recv(), Err(Error::Closed)));
        assert!(matches!(rx.try_recv(), Err(Error::Closed)));
    }
}

/// Child: for i in 0..20, fills an item with i; publishes the even ones, drops the odd ones.
fn abandon_producer(a: &[String]) {
    let mut tx = Producer::<u64, Ix1>::open(&a[0]).unwrap();
    for i in 0..20u64 {
        let mut s = tx.claim().unwrap();
        s.fill(i);
        if i % 2 == 0 {
            s.publish();
        }
    }
    tx.close();
}

fn abandoned(mpmc: bool) {
    let n = name(if mpmc { "abm" } else { "abs" });
    let config = if mpmc { Config::mpmc() } else { Config::spsc() }.slots(4);
    let mut rx = Consumer::<u64, Ix1>::create(&n, 8, &config).unwrap();
    let child = spawn("abandon-producer", &[&n]);
    let mut got = vec![];
    loop {
        match rx.recv_timeout(LONG) {
            Ok(s) => {
                assert!(s.iter().all(|&v| v == s[0]), "torn item");
                got.push(s[0]);
            }
            Err(Error::Closed) => break,
            Err(e) => panic!("{e}"),
        }
    }
    finish(child, LONG);
    assert_eq!(got, (0..20).step_by(2).collect::<Vec<u64>>());
    assert_eq!(rx.segment().stats().abandoned, 10);
}

fn send_non_contiguous() {
    let n = name("send");
    let mut tx = Producer::<i32, ndarray::Ix2>::create(&n, (3, 2), &Config::spsc()).unwrap();
    let mut rx = Consumer::<i32, ndarray::Ix2>::open(&n).unwrap();
    let a = ndarray::Array2::from_shape_fn((2, 6), |(i, j)| (i * 10 + j) as i32);
    let view = a.slice(ndarray::s![.., ..;2]).reversed_axes(); // (3, 2), strided
    tx.send(&view).unwrap();
    assert_eq!(*rx.recv().unwrap(), view);
    assert!(matches!(
        tx.send(&ndarray::Array2::<i32>::zeros((2, 3))),
        Err(Error::ShapeMismatch { .. })
    ));
    tx.send(&view).unwrap();
    let mut out = ndarray::Array2::<i32>::zeros((2, 3));
    rx.recv_into(&mut out.view_mut().reversed_axes()).unwrap();
    assert_eq!(out, view.t());
}

fn metadata() {
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable, PartialEq, Debug)]
    #[repr(C)]
    struct Frame {
        id: u64,
        exposure_us: f32,
        gain: f32,
    }
    let n = name("meta");
    let config = Config::spsc().user_meta_size(16).timestamps(true);
    let mut tx = Producer::<u8, Ix1>::create(&n, 4, &config).unwrap();
    let mut rx = Consumer::<u8, Ix1>::open(&n).unwrap();
    let before = ndring::now_ns();
    let mut s = tx.claim().unwrap();
    let f = Frame {
        id: 99,
        exposure_us: 250.0,
        gain: 1.5,
    };
    s.set_user_meta(&f).unwrap();
    assert!(matches!(
        s.set_user_meta(&[0u64; 3]),
        Err(Error::MetaTooLarge {
            size: 24,
            capacity: 16
        })
    ));
    s.publish();
    let r = rx.recv().unwrap();
    assert_eq!(r.user_meta::<Frame>().unwrap(), f);
    let t = r.timestamp_ns().expect("created with timestamps");
    assert!(t >= before && t <= ndring::now_ns());
    assert_eq!(r.seq(), 1);
    let _: Array1<u8> = r.to_owned();
    // The same slot again, a lap later, published without metadata: none is read back.
    for seq in 2..=5 {
        tx.claim().unwrap().publish();
        let r = rx.recv().unwrap();
        assert_eq!(r.seq(), seq);
        assert_eq!(
            r.user_meta::<Frame>().unwrap(),
            bytemuck::Zeroable::zeroed()
        );
    }
    // Without `timestamps(true)` there are none.
    let n2 = name("meta-nots");
    let mut tx = Producer::<u8, Ix1>::create(&n2, 4, &Config::spsc()).unwrap();
    let mut rx = Consumer::<u8, Ix1>::open(&n2).unwrap();
    tx.claim().unwrap().publish();
    assert_eq!(rx.recv().unwrap().timestamp_ns(), None);
}

fn role_taken() {
    let n = name("role");
    let _tx = Producer::<u8, Ix1>::create(&n, 4, &Config::spsc()).unwrap();
    let _rx = Consumer::<u8, Ix1>::open(&n).unwrap();
    match Producer::<u8, Ix1>::open(&n) {
        Err(Error::RoleTaken {
            role: ndring::Role::Producer,
            pid,
        }) => {
            assert_eq!(pid, std::process::id())
        }
        other => panic!("expected RoleTaken, got {other:?}"),
    }
    // A role freed by drop can be taken again.
    drop(_rx);
    assert!(Consumer::<u8, Ix1>::open(&n).is_ok());
}

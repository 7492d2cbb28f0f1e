//! Dead-peer recovery however the survivor waits: one blocking call, calls with a timeout
//! shorter than the grace period (a stoppable worker's loop, or the Python binding's 50 ms
//! slices), or a non-blocking poll loop. Each recovery the README lists, with one peer SIGKILLed
//! at a known point, asserting that the survivor goes on and that nothing is delivered twice.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{command, name, trial};
use ndarray::Ix1;
use ndring::{BroadcastWriter, Config, Consumer, Error, OpenOptions, Producer, Start, Subscriber};

const GRACE: Duration = Duration::from_millis(20);
/// A sliced caller's timeout: a quarter of the grace period, so no one call waits a whole one.
const SLICE: Duration = Duration::from_millis(5);
/// Deadlock guard (not a timing check): recovery takes about a grace period.
const STALL: Duration = Duration::from_secs(60);

/// How the survivor waits.
#[derive(Clone, Copy, Debug)]
enum Waits {
    Blocking,
    Sliced,
    Polling,
}

const ALL: [Waits; 3] = [Waits::Blocking, Waits::Sliced, Waits::Polling];

fn main() -> std::process::ExitCode {
    let mut tests = vec![];
    for waits in ALL {
        let t = |name: &str| -> &'static str { format!("{name}_{waits:?}").leak() };
        tests.push(trial_with(
            t("mpmc_dead_producers_claim_is_skipped_by_a_consumer_waiting"),
            waits,
            dead_producer_claim,
        ));
        tests.push(trial_with(
            t("mpmc_dead_consumers_slot_returns_to_a_producer_waiting"),
            waits,
            dead_consumer_slot,
        ));
        tests.push(trial_with(
            t("spsc_dead_consumer_is_taken_over_while_the_producer_waits"),
            waits,
            spsc_takeover,
        ));
        tests.push(trial_with(
            t("broadcast_dead_subscribers_pin_is_dropped_by_a_subscriber_waiting"),
            waits,
            dead_pin_seen_by_subscriber,
        ));
    }
    tests.push(trial(
        "broadcast_dead_subscribers_pin_is_dropped_by_the_writer_alone",
        dead_pin_seen_by_writer,
    ));
    tests.push(trial(
        "broadcast_subscriber_killed_asleep_is_taken_out_of_the_sleepers_by_the_writer",
        dead_sleeper_seen_by_writer,
    ));
    common::main(
        &[
            ("claim-and-hang", claim_and_hang),
            ("take-and-hang", take_and_hang),
            ("pin-and-hang", pin_and_hang),
            ("sleep-in-recv", sleep_in_recv),
        ],
        tests,
    )
}

fn trial_with(name: &'static str, waits: Waits, f: fn(Waits)) -> libtest_mimic::Trial {
    libtest_mimic::Trial::test(name, move || {
        std::panic::catch_unwind(|| f(waits)).map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
                .into()
        })
    })
}

fn options() -> OpenOptions {
    OpenOptions::default().grace(GRACE)
}

/// Child: an MPMC producer that claims a slot, says so, and hangs holding the claim.
fn claim_and_hang(a: &[String]) {
    let mut tx = Producer::<u64, Ix1>::open_with(&a[0], &options()).unwrap();
    let _claim = tx.claim().unwrap();
    println!("claimed");
    thread::sleep(STALL);
}

/// Child: a queue consumer that receives one item, prints it, and hangs holding it.
fn take_and_hang(a: &[String]) {
    let mut rx = Consumer::<u64, Ix1>::open_with(&a[0], &options()).unwrap();
    let s = rx.recv().unwrap();
    println!("{}", s[0]);
    thread::sleep(STALL);
}

/// Child: a subscriber that pins the oldest frame, prints its number, and hangs holding it.
fn pin_and_hang(a: &[String]) {
    let mut s = Subscriber::<u64, Ix1>::open_with(&a[0], Start::Oldest, &options()).unwrap();
    let f = s.recv().unwrap();
    println!("{}", f.seq());
    thread::sleep(STALL);
}

/// Child: a subscriber asleep waiting for a frame (to be killed there).
fn sleep_in_recv(a: &[String]) {
    let mut s =
        Subscriber::<u64, Ix1>::open_with(&a[0], Start::Newest, &options().spin(0)).unwrap();
    println!("open");
    let _ = s.recv_timeout(STALL);
}

/// Starts child `role` on ring `n`, waits for its first line, and returns it with the line.
fn start(role: &str, n: &str) -> (Child, String) {
    let mut child = command(role, &[n]).stdout(Stdio::piped()).spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(STALL).expect("the child reached its point");
    (child, line.trim().to_string())
}

fn kill(mut c: Child) {
    c.kill().unwrap();
    c.wait().unwrap();
}

/// Calls `attempt` the way `waits` says (blocking, with a `SLICE` timeout, or not waiting) until
/// it returns something other than `Timeout`, `Full` or `Empty`; fails after `STALL`.
fn retry<R>(waits: Waits, mut attempt: impl FnMut(Option<Duration>) -> Result<R, Error>) -> R {
    let start = Instant::now();
    loop {
        let r = match waits {
            Waits::Blocking => attempt(None),
            Waits::Sliced => attempt(Some(SLICE)),
            Waits::Polling => attempt(Some(Duration::ZERO)),
        };
        match r {
            Ok(r) => return r,
            Err(Error::Timeout | Error::Full | Error::Empty) => {
                assert!(
                    start.elapsed() < STALL,
                    "no progress for {STALL:?} waiting {waits:?}: the dead peer was never recovered"
                );
                if let Waits::Polling = waits {
                    thread::yield_now();
                }
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// Receives one item as `waits` says; returns its first element.
fn recv(rx: &mut Consumer<u64, Ix1>, waits: Waits) -> u64 {
    retry(waits, |t| {
        match t {
            None => rx.recv(),
            Some(Duration::ZERO) => rx.try_recv(),
            Some(t) => rx.recv_timeout(t),
        }
        .map(|s| s[0])
    })
}

/// Sends `v` as `waits` says.
fn send(tx: &mut Producer<u64, Ix1>, v: u64, waits: Waits) {
    retry(waits, |t| {
        let mut s = match t {
            None => tx.claim(),
            Some(Duration::ZERO) => tx.try_claim(),
            Some(t) => tx.claim_timeout(t),
        }?;
        s.fill(v);
        s.publish();
        Ok(())
    })
}

/// A producer dies between claim and publish at position 0; a live producer publishes position
/// 1. The consumer, stuck at 0, must skip the dead claim (a tombstone) and receive 1, once.
fn dead_producer_claim(waits: Waits) {
    let n = name(&format!("rc-claim-{waits:?}"));
    let _rm = common::RemoveOnDrop(n.clone());
    let config = Config::mpmc().slots(4).grace(GRACE);
    let mut rx = Consumer::<u64, Ix1>::create(&n, 4, &config).unwrap();
    let mut tx = Producer::<u64, Ix1>::open_with(&n, &options()).unwrap();
    let (child, _) = start("claim-and-hang", &n);
    kill(child);
    send(&mut tx, 1, Waits::Blocking);
    assert_eq!(recv(&mut rx, waits), 1);
    assert_eq!(rx.segment().stats().recovered_claims, 1);
    tx.close();
    assert!(matches!(rx.recv(), Err(Error::Closed)), "nothing else");
}

/// A consumer dies holding item 0 of a two-slot ring; item 1 is received; the producer's claim
/// of position 2 needs the dead consumer's slot back.
fn dead_consumer_slot(waits: Waits) {
    let n = name(&format!("rc-slot-{waits:?}"));
    let _rm = common::RemoveOnDrop(n.clone());
    let config = Config::mpmc().slots(2).grace(GRACE);
    let mut tx = Producer::<u64, Ix1>::create(&n, 4, &config).unwrap();
    let mut rx = Consumer::<u64, Ix1>::open_with(&n, &options()).unwrap();
    send(&mut tx, 0, Waits::Blocking);
    let (child, held) = start("take-and-hang", &n);
    assert_eq!(held, "0");
    kill(child);
    send(&mut tx, 1, Waits::Blocking);
    let mut out = ndarray::Array1::<u64>::zeros(4);
    rx.recv_into(&mut out).unwrap();
    assert_eq!(out[0], 1);
    send(&mut tx, 2, waits);
    assert_eq!(tx.segment().stats().recovered_reads, 1);
    rx.recv_into(&mut out).unwrap();
    assert_eq!(out[0], 2);
    tx.close();
    assert!(
        matches!(rx.recv(), Err(Error::Closed)),
        "item 0 is not delivered again"
    );
}

/// An SPSC consumer dies holding item 0 of a full two-slot ring. The producer waits for room
/// (seeing `Disconnected` while no consumer is attached); a new consumer takes the role over,
/// skips the dead one's item, and receives 1 and 2, once each.
fn spsc_takeover(waits: Waits) {
    let n = name(&format!("rc-spsc-{waits:?}"));
    let _rm = common::RemoveOnDrop(n.clone());
    let config = Config::spsc().slots(2).grace(GRACE);
    let mut tx = Producer::<u64, Ix1>::create(&n, 4, &config).unwrap();
    send(&mut tx, 0, Waits::Blocking);
    send(&mut tx, 1, Waits::Blocking);
    let (child, held) = start("take-and-hang", &n);
    assert_eq!(held, "0");
    kill(child);
    let producer = thread::spawn(move || {
        // `Disconnected` until the successor attaches: not final, try again.
        let start = Instant::now();
        loop {
            let r = match waits {
                Waits::Blocking => tx.claim(),
                Waits::Sliced => tx.claim_timeout(SLICE),
                Waits::Polling => tx.try_claim(),
            };
            match r {
                Ok(mut s) => {
                    s.fill(2);
                    s.publish();
                    break;
                }
                Err(Error::Timeout | Error::Full | Error::Disconnected { .. }) => {
                    assert!(start.elapsed() < STALL, "the producer never got room");
                    thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("{e}"),
            }
        }
        tx
    });
    let mut rx = Consumer::<u64, Ix1>::open_with(&n, &options()).unwrap();
    assert_eq!(
        recv(&mut rx, waits),
        1,
        "the dead consumer's item is skipped"
    );
    assert_eq!(recv(&mut rx, waits), 2);
    let mut tx = producer.join().unwrap();
    assert_eq!(rx.segment().stats().role_takeovers, 1);
    tx.close();
    assert!(matches!(rx.recv(), Err(Error::Closed)), "nothing else");
}

/// A subscriber dies pinning frame 1; no frame is published after it. Another subscriber,
/// waiting for frame 2, must drop the dead pin and free its entry.
fn dead_pin_seen_by_subscriber(waits: Waits) {
    let n = name(&format!("rc-pin-{waits:?}"));
    let _rm = common::RemoveOnDrop(n.clone());
    let config = Config::broadcast().grace(GRACE);
    let mut w = BroadcastWriter::<u64, Ix1>::create(&n, 4, &config).unwrap();
    w.send(&ndarray::arr1(&[1, 1, 1, 1])).unwrap();
    let (child, seq) = start("pin-and-hang", &n);
    assert_eq!(seq, "1");
    let mut s = Subscriber::<u64, Ix1>::open_with(&n, Start::Newest, &options()).unwrap();
    assert_eq!(s.recv().unwrap().seq(), 1);
    kill(child);
    let start = Instant::now();
    while w.segment().stats().recovered_reads == 0 {
        let r = match waits {
            Waits::Blocking => s.recv_timeout(GRACE * 10).map(|_| ()),
            Waits::Sliced => s.recv_timeout(SLICE).map(|_| ()),
            Waits::Polling => s.try_recv().map(|_| ()),
        };
        assert!(
            matches!(r, Err(Error::Timeout | Error::Empty)),
            "no frame was published: {r:?}"
        );
        assert!(start.elapsed() < STALL, "the dead pin was never dropped");
    }
    assert_eq!(w.peers().len(), 2, "the dead subscriber's entry is free");
    assert_eq!(w.segment().stats().recovered_reads, 1);
}

/// A subscriber dies pinning frame 1, and no other subscriber is attached: the writer alone,
/// publishing, must drop the pin once it is a lap old.
fn dead_pin_seen_by_writer() {
    let n = name("rc-wpin");
    let _rm = common::RemoveOnDrop(n.clone());
    let config = Config::broadcast().max_subscribers(2).slots(4).grace(GRACE);
    let mut w = BroadcastWriter::<u64, Ix1>::create(&n, 4, &config).unwrap();
    w.send(&ndarray::arr1(&[1, 1, 1, 1])).unwrap();
    let (child, seq) = start("pin-and-hang", &n);
    assert_eq!(seq, "1");
    kill(child);
    let start = Instant::now();
    let mut i = 1;
    while w.segment().stats().recovered_reads == 0 {
        i += 1;
        w.send(&ndarray::arr1(&[i, i, i, i])).unwrap();
        assert!(start.elapsed() < STALL, "the dead pin was never dropped");
        thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(w.peers().len(), 1, "the dead subscriber's entry is free");
    // Its slot is in use again: after a lap, frame 1 is gone.
    for _ in 0..4 {
        i += 1;
        w.send(&ndarray::arr1(&[i, i, i, i])).unwrap();
    }
    let mut s = Subscriber::<u64, Ix1>::open_with(&n, Start::Oldest, &options()).unwrap();
    let first = s.recv().unwrap().seq();
    assert!(
        first > 1,
        "frame 1 was overwritten once its pin was dropped"
    );
}

/// A subscriber is SIGKILLed asleep, and it was the only one: the writer's publishes find a
/// sleeper that is not there (a futex wake each), until the writer takes it out of the count.
fn dead_sleeper_seen_by_writer() {
    let n = name("rc-wsleep");
    let _rm = common::RemoveOnDrop(n.clone());
    let config = Config::broadcast().grace(GRACE);
    let mut w = BroadcastWriter::<u64, Ix1>::create(&n, 4, &config).unwrap();
    let (child, _) = start("sleep-in-recv", &n);
    common::eventually(STALL, "subscriber asleep", || w.segment().sleepers().0 == 1);
    kill(child);
    let start = Instant::now();
    let mut i = 0;
    while w.segment().sleepers().0 != 0 {
        i += 1;
        w.send(&ndarray::arr1(&[i, i, i, i])).unwrap();
        assert!(
            start.elapsed() < STALL,
            "the dead sleeper was never taken out"
        );
        thread::sleep(Duration::from_millis(1));
    }
    let before = ndring::futex_calls();
    for _ in 0..100 {
        i += 1;
        w.send(&ndarray::arr1(&[i, i, i, i])).unwrap();
    }
    assert_eq!(
        ndring::futex_calls(),
        before,
        "publishes make no futex call for no one"
    );
}

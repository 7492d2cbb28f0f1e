//! Fault injection between two hosts: two network namespaces joined by a veth pair that each
//! test makes (root only), `ndring-bridge out` in one, `ndring-bridge in` in the other, Zenoh's
//! shared memory off. Each scenario streams numbered frames (300 kB, every byte derived from the
//! frame's number and checked on arrival) through one fault: a partition (the link set down) of
//! 1, 6 or 30 s, a bridge SIGKILLed and restarted, a rate limit (`tc tbf`), a producer killed.
//!
//! Queue rings: every frame arrives exactly once, in order, byte-exact (or, where the ring
//! itself gives frames up, a killed sending bridge's, each one missing is counted). Broadcast
//! rings: every frame missing is counted exactly, and the consumer never sees a clean `Closed`
//! after a hole.
//!
//! Where namespaces cannot be made (not root), every test fails saying so: never skipped.
//! The scenarios run concurrently (`--test-threads 8`): each has its own namespaces.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ndarray::Ix3;
use ndring::{Config, Consumer, Error, Producer, Start, Subscriber};

#[path = "faults/net.rs"]
mod net;
use net::{Bridge, Net, field, run};

/// The bridge under test (`NDZ_BRIDGE_BIN` overrides it: to run a scenario against another
/// build, as when looking for the corruption of issue 22 in the bridge before it).
fn bin() -> String {
    std::env::var("NDZ_BRIDGE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_ndring-bridge").into())
}
const SHAPE: (usize, usize, usize) = (100, 1000, 3);
/// Frames per second the producer offers (the blip scenario: twice that).
const RATE: u64 = 50;
/// A guard against hangs (a scenario takes well under a minute): past it the test fails.
const DEADLINE: Duration = Duration::from_secs(240);
const PORT: u16 = 7447;

/// Frame `i`'s bytes: a xorshift stream seeded by `i`, so every frame differs everywhere.
fn fill_frame(i: u64, bytes: &mut [u8]) {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for chunk in bytes.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
}

/// Whether `bytes` are frame `i`'s.
fn frame_is(i: u64, bytes: &[u8], scratch: &mut Vec<u8>) -> bool {
    scratch.resize(bytes.len(), 0);
    fill_frame(i, scratch);
    scratch[..] == *bytes
}

/// Removes rings when dropped, also when the test fails.
struct RemoveOnDrop(Vec<String>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = ndring::remove(n);
        }
    }
}

fn names(tag: &str) -> (String, String, String) {
    let pid = std::process::id();
    (
        format!("/ndzf-{tag}-s-{pid}"),
        format!("/ndzf-{tag}-d-{pid}"),
        format!("ndring/faults/{pid}/{tag}"),
    )
}

/// Writes frames 1..=n at `RATE` per second (frame number in the metadata), waiting while the
/// ring is full, then closes. Counts the frames published.
fn produce(mut tx: Producer<u8, Ix3>, n: u64, rate: u64, published: Arc<AtomicU64>) {
    let start = Instant::now();
    for i in 1..=n {
        let due = start + Duration::from_micros(i * 1_000_000 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        let mut slot = loop {
            match tx.claim_timeout(Duration::from_millis(100)) {
                Ok(slot) => break slot,
                // The sending bridge restarting: its consumer role is vacant for a while.
                Err(Error::Timeout | Error::Disconnected { .. }) => {
                    assert!(
                        start.elapsed() < DEADLINE,
                        "the producer stalled at frame {i}"
                    )
                }
                Err(e) => panic!("claim: {e}"),
            }
        };
        fill_frame(i, slot.as_slice_mut().unwrap());
        slot.set_user_meta(&i).unwrap();
        slot.publish();
        published.store(i, Relaxed);
    }
    tx.close();
}

/// What a consumer saw: frame numbers in order of arrival, frames whose bytes were wrong.
#[derive(Default, Debug)]
struct Seen {
    frames: Vec<u64>,
    corrupt: Vec<u64>,
    lagged: u64,
    /// Broadcast: lagged over since the last frame received (at the end: the lost end).
    lagged_at_end: u64,
    /// How the stream ended: `Closed`, or `Disconnected` (the writer left without closing).
    closed: bool,
}

fn consume_queue(rx: Consumer<u8, Ix3>, seen: Arc<Mutex<Seen>>) {
    consume_queue_until(rx, seen, None)
}

/// Receives frames until `Closed`, or, with `gone`, until `Disconnected { missing: Producer }`
/// after the first frame (sets `gone`). Before the first frame, the receiving bridge may not have
/// taken the producer role yet: a `Disconnected` then is waited through.
fn consume_queue_until(
    mut rx: Consumer<u8, Ix3>,
    seen: Arc<Mutex<Seen>>,
    gone: Option<Arc<AtomicBool>>,
) {
    let start = Instant::now();
    let mut scratch = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(frame) => {
                let i = frame.user_meta::<u64>().unwrap();
                let ok = frame_is(i, frame.as_slice().unwrap(), &mut scratch);
                let mut s = seen.lock().unwrap();
                s.frames.push(i);
                if !ok {
                    s.corrupt.push(i);
                }
            }
            Err(Error::Closed) => {
                seen.lock().unwrap().closed = true;
                return;
            }
            Err(Error::Disconnected {
                missing: ndring::Role::Producer,
            }) if gone.is_some() && !seen.lock().unwrap().frames.is_empty() => {
                gone.unwrap().store(true, Relaxed);
                return;
            }
            Err(Error::Timeout | Error::Disconnected { .. }) => {
                assert!(start.elapsed() < DEADLINE, "the stream stalled")
            }
            Err(e) => panic!("receive: {e}"),
        }
    }
}

/// Waits until `cond` holds: a hang guard, not a timing check.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "never happened: {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// A fault applied to a running stream.
#[derive(Clone, Copy, Debug)]
enum Fault {
    Partition(Duration),
    KillOut,
    KillIn,
    RateLimit,
}

/// Streams `n` frames through one fault on an SPSC ring; asserts exactly-once delivery, or,
/// where the ring gives frames up (a killed sending bridge), that every missing one is counted.
fn queue_through(tag: &str, fault: Fault, n: u64) {
    queue_at(tag, fault, n, RATE)
}

fn queue_at(tag: &str, fault: Fault, n: u64, rate: u64) {
    let net = Net::new(tag);
    let (src, dst, key) = names(tag);
    let _rm = RemoveOnDrop(vec![src.clone(), dst.clone()]);
    let config = Config::spsc().slots(8);
    let tx = Producer::<u8, Ix3>::create(&src, SHAPE, &config).unwrap();
    let rx = Consumer::<u8, Ix3>::create(&dst, SHAPE, &config).unwrap();
    if let Fault::RateLimit = fault {
        // 40 Mbit/s, a third of what the producer offers (120 Mbit/s).
        net.rate_limit("40mbit");
    }
    let in_args = ["in", key.as_str(), dst.as_str()];
    let out_args = ["out", src.as_str(), key.as_str()];
    let mut bridge_in = Bridge::spawn(&net.b, &in_args);
    let mut bridge_out = Bridge::spawn(&net.a, &out_args);
    let published = Arc::new(AtomicU64::new(0));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let producer = {
        let p = published.clone();
        thread::spawn(move || produce(tx, n, rate, p))
    };
    let consumer = {
        let s = seen.clone();
        thread::spawn(move || consume_queue(rx, s))
    };
    // The fault strikes mid-stream.
    wait_until("frames flow", || seen.lock().unwrap().frames.len() >= 60);
    match fault {
        Fault::Partition(d) => net.partition(d),
        Fault::KillOut => {
            bridge_out.kill();
            bridge_out = Bridge::spawn(&net.a, &out_args);
        }
        Fault::KillIn => {
            bridge_in.kill();
            bridge_in = Bridge::spawn(&net.b, &in_args);
        }
        Fault::RateLimit => {}
    }
    producer.join().expect("producer");
    consumer.join().expect("consumer");
    let out = bridge_out.finish();
    let inn = bridge_in.finish();
    let seen = seen.lock().unwrap();
    eprintln!(
        "{tag} {fault:?}: {} frames arrived\n{out}{inn}",
        seen.frames.len()
    );
    assert!(
        seen.corrupt.is_empty(),
        "frames with wrong bytes: {:?}",
        seen.corrupt
    );
    assert!(seen.closed, "the stream ended with Closed");
    for w in seen.frames.windows(2) {
        assert!(w[0] < w[1], "out of order or twice: {} then {}", w[0], w[1]);
    }
    assert_eq!(
        seen.frames.last(),
        Some(&n),
        "the stream resumed to its end"
    );
    let missing = n - seen.frames.len() as u64;
    match fault {
        Fault::KillOut => {
            // The killed bridge's held frames are given up by the ring (a dead reader's items
            // are not redelivered): each one missing is counted, as never arrived or late.
            assert_eq!(
                missing,
                field(&inn, "gaps") + field(&inn, "late"),
                "every frame missing is counted: {inn}"
            );
        }
        _ => {
            assert_eq!(
                seen.frames,
                (1..=n).collect::<Vec<_>>(),
                "exactly once, in order"
            );
            assert_eq!((field(&inn, "gaps"), field(&inn, "late")), (0, 0), "{inn}");
        }
    }
    if let Fault::KillIn = fault {
        // The restarted bridge wrote only what its predecessor had not: from its first frame
        // to the end, once each.
        assert_eq!(field(&inn, "frames"), n - field(&inn, "first") + 1, "{inn}");
    } else {
        assert_eq!(field(&inn, "frames"), seen.frames.len() as u64, "{inn}");
    }
    assert_eq!(field(&out, "unacked"), 0, "{out}");
}

#[test]
fn fault_queue_partition_1s() {
    queue_through("p1", Fault::Partition(Duration::from_secs(1)), 300);
}

#[test]
fn fault_queue_link_blip_100ms() {
    // The issue's: 100 frames/s, the link down for 100 ms (there: frames lost, one corrupted).
    queue_at("pb", Fault::Partition(Duration::from_millis(100)), 500, 100);
}

#[test]
fn fault_queue_partition_6s() {
    // Longer than Zenoh's wait_before_close (5 s): the link is closed and opened again.
    queue_through("p6", Fault::Partition(Duration::from_secs(6)), 300);
}

#[test]
fn fault_queue_partition_30s() {
    // Longer than Zenoh's lease (10 s): both sessions drop the peer, then reconnect.
    queue_through("p30", Fault::Partition(Duration::from_secs(30)), 300);
}

#[test]
fn fault_queue_out_killed_and_restarted() {
    queue_through("ko", Fault::KillOut, 300);
}

#[test]
fn fault_queue_in_killed_and_restarted() {
    queue_through("ki", Fault::KillIn, 300);
}

#[test]
fn fault_queue_rate_limited() {
    queue_through("rl", Fault::RateLimit, 150);
}

fn consume_broadcast(mut rx: Subscriber<u8, Ix3>, seen: Arc<Mutex<Seen>>, done: Arc<AtomicBool>) {
    let start = Instant::now();
    let mut scratch = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(frame) => {
                let i = frame.user_meta::<u64>().unwrap();
                let ok = frame_is(i, frame.as_slice().unwrap(), &mut scratch);
                let mut s = seen.lock().unwrap();
                s.frames.push(i);
                s.lagged_at_end = 0;
                if !ok {
                    s.corrupt.push(i);
                }
            }
            Err(Error::Lagged { missed }) => {
                let mut s = seen.lock().unwrap();
                s.lagged += missed;
                s.lagged_at_end += missed;
            }
            Err(Error::Closed) => {
                seen.lock().unwrap().closed = true;
                return;
            }
            // Disconnected: the writer (the receiving bridge) left without closing.
            Err(Error::Timeout | Error::Disconnected { .. }) => {
                if done.load(Relaxed) {
                    return;
                }
                assert!(start.elapsed() < DEADLINE, "the stream stalled")
            }
            Err(e) => panic!("receive: {e}"),
        }
    }
}

/// A broadcast ring through a partition: the frames lost are counted exactly, those lost at
/// the end included, and the consumer does not see a clean `Closed` after them.
fn broadcast_through(tag: &str, partition: Duration, n: u64) {
    let net = Net::new(tag);
    let (src, dst, key) = names(tag);
    let _rm = RemoveOnDrop(vec![src.clone(), dst.clone()]);
    let mut tx =
        ndring::BroadcastWriter::<u8, Ix3>::create(&src, SHAPE, &Config::broadcast()).unwrap();
    drop(
        ndring::BroadcastWriter::<u8, Ix3>::create(&dst, SHAPE, &Config::broadcast().keep(true))
            .unwrap(),
    );
    let rx = Subscriber::<u8, Ix3>::open(&dst, Start::Oldest).unwrap();
    let bridge_in = Bridge::spawn(&net.b, &["in", &key, &dst]);
    let bridge_out = Bridge::spawn(&net.a, &["out", &src, &key]);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let done = Arc::new(AtomicBool::new(false));
    let consumer = {
        let (s, d) = (seen.clone(), done.clone());
        thread::spawn(move || consume_broadcast(rx, s, d))
    };
    wait_until("the sending bridge subscribes", || {
        tx.peers()
            .iter()
            .any(|p| p.role == ndring::Role::Subscriber && p.alive)
    });
    let start = Instant::now();
    let strike = n / 3;
    for i in 1..=n {
        let due = start + Duration::from_micros(i * 1_000_000 / RATE);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        if i == strike {
            // Down at a third of the stream, and up again only after it ended: the frames
            // lost include the stream's last ones.
            run(&["ip", "-n", &net.a, "link", "set", &net.veth_a, "down"]).unwrap();
        }
        let mut slot = tx.claim();
        fill_frame(i, slot.as_slice_mut().unwrap());
        slot.set_user_meta(&i).unwrap();
        slot.publish();
    }
    tx.close();
    let elapsed = start.elapsed();
    if let Some(rest) = (partition)
        .checked_sub(elapsed.saturating_sub(Duration::from_micros(strike * 1_000_000 / RATE)))
    {
        thread::sleep(rest);
    }
    run(&["ip", "-n", &net.a, "link", "set", &net.veth_a, "up"]).unwrap();
    let out = bridge_out.finish();
    let inn = bridge_in.finish();
    done.store(true, Relaxed);
    consumer.join().expect("consumer");
    let _ = ndring::remove(&dst);
    let seen = seen.lock().unwrap();
    eprintln!(
        "{tag}: {} frames arrived, {} lagged\n{out}{inn}",
        seen.frames.len(),
        seen.lagged
    );
    assert!(
        seen.corrupt.is_empty(),
        "frames with wrong bytes: {:?}",
        seen.corrupt
    );
    for w in seen.frames.windows(2) {
        assert!(w[0] < w[1], "out of order or twice: {} then {}", w[0], w[1]);
    }
    let first = field(&inn, "first");
    let counted = field(&inn, "gaps") + field(&inn, "late");
    // Exact: every frame from the first the receiving bridge got to the source's last either
    // reached this consumer or was reported to it as lagged over: the ring skips the numbers of
    // the frames the bridge counts as missing, so its subscribers learn of each hole.
    assert_eq!(
        seen.frames.len() as u64 + seen.lagged,
        n - first + 1,
        "{out}{inn}"
    );
    assert!(counted > 0, "the partition lost frames: {inn}");
    assert!(
        seen.lagged >= counted,
        "holes the bridge counted were not reported to the consumer: lagged {} < {counted}",
        seen.lagged
    );
    let last = *seen.frames.last().unwrap_or(&0);
    assert!(last < n, "the last frames were lost");
    // The lost end reached the consumer as `Lagged` before a `Closed`, never a clean `Closed`.
    assert!(seen.closed, "the stream did not end with Closed: {inn}");
    assert!(
        seen.lagged_at_end >= n - last,
        "the frames lost at the end were not reported before Closed: {} < {}",
        seen.lagged_at_end,
        n - last
    );
}

#[test]
fn fault_broadcast_partition_through_the_end() {
    broadcast_through("bp", Duration::from_secs(8), 200);
}

/// Set in the producer process that `fault_queue_producer_killed` starts (this test binary
/// again, running only that test): the ring it produces into.
const PRODUCER_RING: &str = "NDZF_PRODUCER_RING";

/// The producer's half of `fault_queue_producer_killed`, in a process of its own: publishes
/// frames 1, 2, ... at `RATE` into `ring` (created by the test, with no producer), printing
/// `published N` after each, until it is killed.
fn produce_until_killed(ring: &str) {
    let mut tx = Producer::<u8, Ix3>::open(ring).unwrap();
    let start = Instant::now();
    for i in 1.. {
        let due = start + Duration::from_micros(i * 1_000_000 / RATE);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        let mut slot = loop {
            match tx.claim_timeout(Duration::from_millis(100)) {
                Ok(slot) => break slot,
                Err(Error::Timeout | Error::Disconnected { .. }) => {
                    assert!(start.elapsed() < DEADLINE, "the producer stalled")
                }
                Err(e) => panic!("claim: {e}"),
            }
        };
        fill_frame(i, slot.as_slice_mut().unwrap());
        slot.set_user_meta(&i).unwrap();
        slot.publish();
        println!("published {i}");
    }
}

/// Death crosses the link: the producer on host A SIGKILLed mid-stream (it never closes), the
/// consumer on host B receives every frame it published, in order, then `Disconnected { missing:
/// Producer }` as for a producer of its own that died, never `Closed`; the receiving bridge
/// counts `producer_gone=1`.
#[test]
fn fault_queue_producer_killed() {
    if let Ok(ring) = std::env::var(PRODUCER_RING) {
        return produce_until_killed(&ring);
    }
    let tag = "pk";
    let net = Net::new(tag);
    let (src, dst, key) = names(tag);
    let _rm = RemoveOnDrop(vec![src.clone(), dst.clone()]);
    let config = Config::spsc().slots(8);
    // The ring stays without its creator's producer: the producer process takes the role.
    drop(Producer::<u8, Ix3>::create(&src, SHAPE, &config.clone().keep(true)).unwrap());
    let rx = Consumer::<u8, Ix3>::create(&dst, SHAPE, &config).unwrap();
    let bridge_in = Bridge::spawn(&net.b, &["in", &key, &dst]);
    let bridge_out = Bridge::spawn(&net.a, &["out", &src, &key]);
    let mut producer = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "fault_queue_producer_killed", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(PRODUCER_RING, &src)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the producer process");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let gone = Arc::new(AtomicBool::new(false));
    let consumer = {
        let (s, g) = (seen.clone(), gone.clone());
        thread::spawn(move || consume_queue_until(rx, s, Some(g)))
    };
    wait_until("frames flow", || seen.lock().unwrap().frames.len() >= 30);
    producer.kill().unwrap();
    producer.wait().unwrap(); // reaped: the ring now sees it dead
    let mut printed = String::new();
    producer
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut printed)
        .unwrap();
    let last_printed: u64 = printed
        .lines()
        .filter_map(|l| l.strip_prefix("published ")?.parse().ok())
        .max()
        .expect("the producer published frames");
    consumer.join().expect("consumer");
    // The bridges keep running for a next producer: stop them as an operator would.
    let out = bridge_out.stop();
    let inn = bridge_in.stop();
    let seen = seen.lock().unwrap();
    eprintln!(
        "{tag}: producer killed after frame {last_printed}; {} frames arrived\n{out}{inn}",
        seen.frames.len()
    );
    assert!(
        gone.load(Relaxed),
        "the consumer was not told the producer died"
    );
    assert!(!seen.closed, "a clean Closed for a producer that died");
    assert!(
        seen.corrupt.is_empty(),
        "frames with wrong bytes: {:?}",
        seen.corrupt
    );
    // Every frame published (the last one perhaps published but not yet printed), once, in order.
    let n = seen.frames.len() as u64;
    assert_eq!(
        seen.frames,
        (1..=n).collect::<Vec<_>>(),
        "exactly once, in order"
    );
    assert!(
        n == last_printed || n == last_printed + 1,
        "published {last_printed}, {n} arrived"
    );
    assert_eq!(field(&inn, "producer_gone"), 1, "{inn}");
}

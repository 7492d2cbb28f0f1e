//! The bridge across real processes: two `ndring-bridge` processes on 127.0.0.1 (explicit
//! endpoints, multicast scouting off), a ring on each side, this test writing one and reading the
//! other.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use ndarray::Ix3;
use ndring::{BroadcastWriter, Config, Consumer, Error, Producer, Role, Start, Subscriber};
use ndring_zenoh::{BridgeError, InOptions, OutOptions, SessionOptions};

const BIN: &str = env!("CARGO_BIN_EXE_ndring-bridge");
const SHAPE: (usize, usize, usize) = (480, 640, 3);
const FRAMES: u64 = 300;
const DEADLINE: Duration = Duration::from_secs(120);

/// A port nobody listens on now (the OS picks it).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

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

fn md5_of(bytes: &[u8]) -> [u8; 16] {
    Md5::digest(bytes).into()
}

fn expected_md5s() -> Vec<[u8; 16]> {
    let mut buf = vec![0u8; SHAPE.0 * SHAPE.1 * SHAPE.2];
    (0..=FRAMES)
        .map(|i| {
            fill_frame(i, &mut buf);
            md5_of(&buf)
        })
        .collect()
}

/// A bridge process, killed if the test fails before it exits.
struct Bridge(Option<Child>);

impl Bridge {
    /// A bridge on the network path: Zenoh's shared memory is off unless `args` asks for a
    /// shared-memory pool (on one host Zenoh would otherwise move large payloads through shared
    /// memory by itself, and the TCP path, the one between machines, would go untested).
    fn spawn(args: &[&str], port: u16, listen: bool) -> Bridge {
        let endpoint = format!("tcp/127.0.0.1:{port}");
        let shm = args.contains(&"--shm-pool-mib") || args.contains(&"--shared-memory");
        let child = Command::new(BIN)
            .args(args)
            .args(if shm {
                &[][..]
            } else {
                &["--shared-memory", "false"][..]
            })
            .args([if listen { "--listen" } else { "--connect" }, &endpoint])
            .args(["--multicast-scouting", "false"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn ndring-bridge");
        Bridge(Some(child))
    }

    /// Waits for the exit (or kills it at the deadline) and returns its report line.
    fn finish(mut self) -> String {
        let mut child = self.0.take().unwrap();
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > DEADLINE {
                let _ = child.kill();
                panic!("bridge did not exit within {DEADLINE:?}");
            }
            thread::sleep(Duration::from_millis(20));
        };
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert!(status.success(), "bridge failed ({status}): {out}");
        out
    }

    fn kill(mut self) {
        let mut child = self.0.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap(); // reaped: the ring now sees it dead
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `name=value` from a bridge's report line.
fn field(report: &str, name: &str) -> u64 {
    report
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= in {report:?}"))
        .parse()
        .unwrap()
}

/// Writes frames 1..=FRAMES (frame number in the metadata) into an SPSC producer, then closes.
///
/// `Disconnected` is not final: while the sending bridge is restarted, the ring is full and its
/// consumer dead for as long as the new bridge takes to start, connect and take the consumer role
/// over (under load, longer than the grace period), and then frames flow again.
fn produce(mut tx: Producer<u8, Ix3>) {
    let start = Instant::now();
    for i in 1..=FRAMES {
        let mut slot = loop {
            match tx.claim_timeout(DEADLINE) {
                Ok(slot) => break slot,
                Err(Error::Disconnected { .. }) if start.elapsed() < DEADLINE => {
                    thread::sleep(Duration::from_millis(10))
                }
                Err(e) => panic!("the bridge stopped taking frames: {e}"),
            }
        };
        fill_frame(i, slot.as_slice_mut().unwrap());
        slot.set_user_meta(&i).unwrap();
        slot.publish();
    }
    tx.close();
}

/// What arrived on the receiving side: (frame number, md5) in order of arrival.
type Received = Vec<(u64, [u8; 16])>;

/// Receives from a queue ring until it is closed.
fn drain_queue(rx: &mut Consumer<u8, Ix3>) -> Received {
    let mut got = Vec::new();
    let start = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(frame) => got.push((
                frame.user_meta::<u64>().unwrap(),
                md5_of(frame.as_slice().unwrap()),
            )),
            Err(Error::Closed) => return got,
            Err(Error::Timeout | Error::Disconnected { .. }) => {
                assert!(
                    start.elapsed() < DEADLINE,
                    "stream stalled after {} frames",
                    got.len()
                )
            }
            Err(e) => panic!("receive: {e}"),
        }
    }
}

fn names(test: &str) -> (String, String, String) {
    let pid = std::process::id();
    (
        format!("/ndz-{test}-s-{pid}"),
        format!("/ndz-{test}-d-{pid}"),
        format!("ndring/test/{pid}/{test}"),
    )
}

/// Every frame that arrived is byte-exact, in increasing order; returns the frames missing
/// between `first` and the last that arrived.
fn check_frames(got: &Received, first: u64) -> u64 {
    let expected = expected_md5s();
    for pair in got.windows(2) {
        assert!(
            pair[0].0 < pair[1].0,
            "out of order: {} then {}",
            pair[0].0,
            pair[1].0
        );
    }
    for (i, md5) in got {
        assert_eq!(*md5, expected[*i as usize], "frame {i} differs");
    }
    assert!(got[0].0 >= first);
    got.last().unwrap().0 - first + 1 - got.len() as u64
}

#[test]
fn lossless_frames_arrive_byte_exact() {
    lossless("ll", &[]);
}

#[test]
fn lossless_through_zenoh_shared_memory() {
    // Frames copied into a Zenoh SHM pool: the receiver on this host reads them in place.
    lossless("sh", &["--shm-pool-mib", "8"]);
}

fn lossless(test: &str, out_args: &[&str]) {
    let shm = !out_args.is_empty();
    let (src, dst, key) = names(test);
    let port = free_port();
    let tx = Producer::<u8, Ix3>::create(&src, SHAPE, &Config::spsc().slots(4)).unwrap();
    // The receiving bridge creates the destination ring from the first frame's description.
    let mut args = vec!["in", &key, &dst];
    if shm {
        args.extend(["--shared-memory", "true"]);
    }
    let bridge_in = Bridge::spawn(&args, port, true);
    // The sender as a Zenoh client of the receiving peer (the other tests run peers only). A
    // client does not retry its first connection: start it once the peer listens.
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < DEADLINE,
            "the receiving bridge never listened"
        );
        thread::sleep(Duration::from_millis(5));
    }
    let mut args = vec!["out", &src, &key, "--mode", "client"];
    args.extend(out_args);
    let bridge_out = Bridge::spawn(&args, port, false);
    let producer = thread::spawn(move || produce(tx));
    let start = Instant::now();
    let mut rx = loop {
        match Consumer::<u8, Ix3>::open(&dst) {
            Ok(rx) => break rx,
            Err(Error::NotFound { .. }) if start.elapsed() < DEADLINE => {
                thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("open {dst}: {e}"),
        }
    };
    let got = drain_queue(&mut rx);
    producer.join().unwrap();
    let (out, inn) = (bridge_out.finish(), bridge_in.finish());
    eprint!("{out}{inn}");
    assert_eq!(got.len() as u64, FRAMES, "lossless: every frame arrives");
    assert_eq!(check_frames(&got, 1), 0);
    assert_eq!((got[0].0, got.last().unwrap().0), (1, FRAMES));
    assert_eq!(
        (field(&out, "frames"), field(&out, "dropped")),
        (FRAMES, 0),
        "{out}"
    );
    assert_eq!(
        (field(&inn, "frames"), field(&inn, "gaps")),
        (FRAMES, 0),
        "{inn}"
    );
    let in_place = if shm { FRAMES } else { 0 };
    assert_eq!(
        field(&inn, "shm"),
        in_place,
        "frames read from Zenoh SHM: {inn}"
    );
}

#[test]
fn latest_frame_mode_counts_every_drop() {
    let (src, dst, key) = names("lf");
    let port = free_port();
    let mut tx = BroadcastWriter::<u8, Ix3>::create(&src, SHAPE, &Config::broadcast()).unwrap();
    // An existing destination ring: the bridge checks it and becomes its writer.
    drop(BroadcastWriter::<u8, Ix3>::create(&dst, SHAPE, &Config::broadcast().keep(true)).unwrap());
    let mut rx = Subscriber::<u8, Ix3>::open(&dst, Start::Oldest).unwrap();
    let bridge_in = Bridge::spawn(&["in", &key, &dst], port, true);
    let bridge_out = Bridge::spawn(&["out", &src, &key], port, false);
    // The sending bridge subscribes once a receiver matches its key.
    wait_until("the bridge to subscribe", || {
        tx.peers()
            .iter()
            .any(|p| p.role == Role::Subscriber && p.alive)
    });
    // As fast as memory allows: far faster than the network path, so frames are dropped.
    for i in 1..=FRAMES {
        let mut slot = tx.claim();
        fill_frame(i, slot.as_slice_mut().unwrap());
        slot.set_user_meta(&i).unwrap();
        slot.publish();
    }
    tx.close();
    let (mut got, mut lagged) = (Received::new(), 0);
    loop {
        match rx.recv_timeout(DEADLINE) {
            Ok(frame) => got.push((
                frame.user_meta::<u64>().unwrap(),
                md5_of(frame.as_slice().unwrap()),
            )),
            Err(Error::Lagged { missed }) => lagged += missed,
            Err(Error::Closed) => break,
            Err(e) => panic!("receive: {e}"),
        }
    }
    let (out, inn) = (bridge_out.finish(), bridge_in.finish());
    eprint!("{out}{inn}");
    let _ = ndring::remove(&dst);
    // Counted from the first frame the receiving bridge got (this reader may lag even on that).
    let missing = check_frames(&got, field(&inn, "first"));
    assert!(
        field(&out, "dropped") > 0,
        "the sender skipped frames: {out}"
    );
    let holes = field(&inn, "gaps") + field(&inn, "late");
    assert!(holes > 0, "{inn}");
    // Exact accounting: every frame missing here was reported to this reader as `Lagged`
    // (the receiving bridge skips each hole's numbers in the ring: `BroadcastWriter::skip`),
    // whether the bridge counted it as a hole or this reader itself fell behind on it.
    assert_eq!(missing, lagged, "{out} / {inn}");
    assert!(lagged >= holes, "holes not reported to the reader: {inn}");
    assert_eq!(
        got.len() as u64 + lagged,
        field(&inn, "frames") + holes,
        "{inn}"
    );
}

#[test]
fn a_restarted_bridge_resumes() {
    let (src, dst, key) = names("rs");
    let port = free_port();
    let tx = Producer::<u8, Ix3>::create(&src, SHAPE, &Config::spsc().slots(4)).unwrap();
    let mut rx = Consumer::<u8, Ix3>::create(&dst, SHAPE, &Config::spsc().slots(4)).unwrap();
    let bridge_in = Bridge::spawn(&["in", &key, &dst], port, true);
    let first_out = Bridge::spawn(&["out", &src, &key], port, false);
    let producer = thread::spawn(move || produce(tx));
    let mut got = Received::new();
    while got.len() < 100 {
        let frame = rx
            .recv_timeout(DEADLINE)
            .expect("frames before the restart");
        got.push((
            frame.user_meta::<u64>().unwrap(),
            md5_of(frame.as_slice().unwrap()),
        ));
    }
    // Mid-stream: kill the sending bridge outright and start another.
    first_out.kill();
    let second_out = Bridge::spawn(&["out", &src, &key], port, false);
    got.extend(drain_queue(&mut rx));
    producer.join().unwrap();
    let (out, inn) = (second_out.finish(), bridge_in.finish());
    eprint!("{out}{inn}received {} frames", got.len());
    let missing = check_frames(&got, 1);
    assert_eq!(
        got.last().unwrap().0,
        FRAMES,
        "the stream resumed to its end"
    );
    assert!(field(&out, "frames") > 0, "{out}");
    // Exact accounting: every frame missing here is counted once, as never arrived (the one the
    // killed bridge held) or as arrived too late; nothing was taken for a restart or a duplicate.
    assert_eq!(
        missing,
        field(&inn, "gaps") + field(&inn, "late"),
        "every lost frame is counted once: {inn}"
    );
    assert_eq!(field(&inn, "frames"), got.len() as u64, "{inn}");
    assert_eq!(
        (field(&inn, "restarts"), field(&inn, "duplicates")),
        (0, 0),
        "{inn}"
    );
    // The killed bridge's frames that were on their way arrive after the new bridge's first
    // ones and are still written, in order: none is given up as late. (It loses what was in its
    // own process: the frame it was handing to Zenoh, frames Zenoh had queued but not sent;
    // 0 to 3 of 300 in 30 runs, counted in `gaps`.)
    assert_eq!(field(&inn, "late"), 0, "{inn}");
}

#[test]
fn an_existing_ring_of_another_shape_is_a_typed_error() {
    let (src, dst, key) = names("mm");
    let port = free_port();
    let endpoint = format!("tcp/127.0.0.1:{port}");
    let mut tx = Producer::<u8, Ix3>::create(&src, SHAPE, &Config::spsc()).unwrap();
    let _other = Consumer::<u8, Ix3>::create(&dst, (2, 2, 3), &Config::spsc()).unwrap();
    // Both ends embedded in this process, through the library calls.
    let receiving = SessionOptions::default().listen(&endpoint).open().unwrap();
    let sending = SessionOptions::default().connect(&endpoint).open().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let options = OutOptions {
        stop: Some(stop.clone()),
        ..OutOptions::default()
    };
    let (src2, key2) = (src.clone(), key.clone());
    let out = thread::spawn(move || ndring_zenoh::bridge_out(&sending, &src2, &key2, &options));
    tx.send(&ndarray::Array3::zeros(SHAPE)).unwrap();
    let err = ndring_zenoh::bridge_in(&receiving, &key, &dst, &InOptions::default()).unwrap_err();
    stop.store(true, Relaxed);
    out.join().unwrap().unwrap();
    match err {
        BridgeError::Mismatch {
            expected, found, ..
        } => {
            assert_eq!(expected, "u8 [480, 640, 3]");
            assert_eq!(found, "u8 [2, 2, 3]");
        }
        other => panic!("expected Mismatch, got {other}"),
    }
}

/// Polls `cond` until it holds. A deadlock guard, not a timing check: after `DEADLINE` (minutes)
/// the test fails saying what never happened, rather than hanging CI.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > DEADLINE {
            panic!("never happened within {DEADLINE:?}: {what}");
        }
        thread::sleep(Duration::from_millis(5));
    }
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

/// Sends `values` (twice, the second time reversed) from a ring of `T` through `bridge_out` and
/// `bridge_in` (both through the library in this process) and checks the receiving ring, which
/// `bridge_in` creates from the stream's description, holds `T` and the same bytes.
fn dtype_crosses<T: ndring::Element>(
    tag: &str,
    values: Vec<T>,
    sending: &zenoh::Session,
    receiving: &zenoh::Session,
) {
    use ndarray::{ArrayD, IxDyn};
    let (src, dst, key) = names(tag);
    let _rm = RemoveOnDrop(vec![src.clone(), dst.clone()]);
    let n = values.len();
    let mut reversed = values.clone();
    reversed.reverse();
    let items: Vec<ArrayD<T>> = [values, reversed]
        .into_iter()
        .map(|v| ArrayD::from_shape_vec(IxDyn(&[n]), v).unwrap())
        .collect();
    let mut tx = Producer::<T, IxDyn>::create(&src, vec![n], &Config::spsc()).unwrap();
    for item in &items {
        tx.send(item).unwrap();
    }
    tx.close();
    let options = OutOptions {
        linger: Some(Duration::from_millis(100)),
        ..OutOptions::default()
    };
    thread::scope(|s| {
        let out = s.spawn(|| ndring_zenoh::bridge_out(sending, &src, &key, &options));
        let inn = s.spawn(|| ndring_zenoh::bridge_in(receiving, &key, &dst, &InOptions::default()));
        let open = ndring::OpenOptions::default().wait_for_creator(DEADLINE);
        let mut rx = Consumer::<T, IxDyn>::open_with(&dst, &open).unwrap();
        assert_eq!(rx.segment().dtype(), T::DTYPE);
        for (k, sent) in items.iter().enumerate() {
            let got = rx.recv_timeout(DEADLINE).unwrap();
            let got: &[u8] = bytemuck::cast_slice(got.as_slice().unwrap());
            let want: &[u8] = bytemuck::cast_slice(sent.as_slice().unwrap());
            assert!(got == want, "{tag}: item {k} differs");
        }
        assert_eq!(out.join().unwrap().unwrap().frames, 2);
        assert_eq!(inn.join().unwrap().unwrap().frames, 2);
    });
}

#[test]
fn every_new_element_type_crosses_byte_exact() {
    use ndring::half::{bf16, f16};
    use ndring::num_complex::Complex;
    let port = free_port();
    let endpoint = format!("tcp/127.0.0.1:{port}");
    let receiving = SessionOptions::default().listen(&endpoint).open().unwrap();
    let sending = SessionOptions::default().connect(&endpoint).open().unwrap();
    // NaN payloads (quiet and signalling), subnormals, infinities, -0.
    let f32s = [
        0x7fc0_0001,
        0x7f80_0001,
        0xffc1_2345,
        0x0000_0001,
        0x807f_ffff,
        0xff80_0000,
        0x8000_0000,
        0x3f80_0000,
    ]
    .map(f32::from_bits);
    let f64s = [
        0x7ff8_0000_0000_0001,
        0x7ff0_0000_0000_0001,
        0x0000_0000_0000_0001,
        0x8000_0000_0000_0000,
        0xfff0_0000_0000_0000,
    ]
    .map(f64::from_bits);
    let all16 = || 0..=u16::MAX;
    dtype_crosses(
        "f16",
        all16().map(f16::from_bits).collect(),
        &sending,
        &receiving,
    );
    dtype_crosses(
        "bf16",
        all16().map(bf16::from_bits).collect(),
        &sending,
        &receiving,
    );
    let c64 = f32s
        .iter()
        .flat_map(|&re| f32s.map(|im| Complex::new(re, im)))
        .collect();
    dtype_crosses("c64", c64, &sending, &receiving);
    let c128 = f64s
        .iter()
        .flat_map(|&re| f64s.map(|im| Complex::new(re, im)))
        .collect();
    dtype_crosses("c128", c128, &sending, &receiving);
    let bools = (0..=u8::MAX).map(ndring::Bool8::from_byte).collect();
    dtype_crosses("bool", bools, &sending, &receiving);
}

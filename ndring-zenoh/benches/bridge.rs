//! The bridge over loopback against a plain TCP socket and Zenoh's own shared-memory transport,
//! between the same two processes, interleaved round by round.
//!
//! The binary re-executes itself as the peer process B (`NDZ_BENCH_ROLE=b`). Process A writes,
//! B reads; every variant runs between the same A and B, each round in the same order:
//!
//! * **1080p frames/s** (1920×1080×3 `u8`; A writes every byte of each frame, B reads every
//!   byte as a u64 word sum): the bridge (A's SPSC ring → `bridge_out` → TCP on 127.0.0.1 →
//!   `bridge_in` → B's ring; Zenoh's shared memory off, as between machines), the bridge with
//!   a Zenoh SHM pool (`--shm-pool-mib`: the same host's fast path), a plain TCP socket (A
//!   fills a buffer and writes it, B reads it), and Zenoh's SHM transport (A fills a Zenoh SHM
//!   buffer and publishes it, B reads it in place).
//! * **64-byte round trip** (p50): through two bridges (A's ring → B's ring → B echoes into a
//!   ring → A's ring), a TCP ping-pong (`TCP_NODELAY`), a Zenoh put/subscribe ping-pong, and
//!   ndring's own SPSC ping-pong between A and B (the machine's state: compare rows of one
//!   state only).
//!
//! `cargo bench --bench bridge` (about a minute); `NDZ_BENCH_ROUNDS` (default 5),
//! `NDZ_BENCH_SECONDS` per frame variant (default 2), `NDZ_BENCH_RT` round trips (default 2000),
//! `NDZ_BENCH_ONLY=bridge-frames,bridge-shm-frames,tcp-frames,shm-frames,bridge-rt,tcp-rt,zenoh-rt`
//! (the others print 0: for `strace -c -f` of one variant).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

use ndarray::{Array1, Ix1, Ix3, IxDyn};
use ndring::{Config, Consumer, Error, Producer};
use ndring_zenoh::{InOptions, OutOptions, SessionOptions, bridge_in, bridge_out};
use zenoh::Wait;
use zenoh::qos::CongestionControl;
use zenoh::shm::{BlockOn, GarbageCollect, ShmProviderBuilder};

const FRAME: (usize, usize, usize) = (1080, 1920, 3);
const FRAME_BYTES: usize = FRAME.0 * FRAME.1 * FRAME.2;
const SMALL: usize = 64;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The u64 word sum that reads every byte at memory speed.
fn word_sum(bytes: &[u8]) -> u64 {
    let (head, words, tail) = bytemuck::pod_align_to::<u8, u64>(bytes);
    let mut s = 0u64;
    for w in words {
        s = s.wrapping_add(*w);
    }
    head.iter()
        .chain(tail)
        .fold(s, |s, &b| s.wrapping_add(b as u64))
}

struct Names {
    tag: String,
}

/// Every ring either process creates (A: `fs`, `ps`, `gs`, `bd`, `ls`; B: `fd`, `gd`, `pd`, `bs`,
/// `lb`): A removes them all at the end, since B is killed and the bridges' threads never drop
/// their handles, so the last-one-out rule cannot be relied on to remove them.
const RINGS: [&str; 10] = ["fs", "ps", "gs", "bd", "ls", "fd", "gd", "pd", "bs", "lb"];

impl Names {
    fn ring(&self, what: &str) -> String {
        format!("/ndzb-{}-{what}", self.tag)
    }
    fn key(&self, what: &str) -> String {
        format!("ndzb/{}/{what}", self.tag)
    }
}

fn open_when_created<F: FnMut() -> ndring::Result<T>, T>(mut open: F) -> T {
    let start = Instant::now();
    loop {
        match open() {
            Ok(t) => return t,
            Err(Error::NotFound { .. }) if start.elapsed() < Duration::from_secs(30) => {
                thread::sleep(Duration::from_millis(2))
            }
            Err(e) => panic!("open: {e}"),
        }
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--exact") {
        return; // `cargo bench` probing for test names
    }
    let names = Names {
        tag: std::env::var("NDZ_BENCH_TAG").unwrap_or_else(|_| std::process::id().to_string()),
    };
    if std::env::var("NDZ_BENCH_ROLE").as_deref() == Ok("b") {
        peer_b(&names);
    } else {
        peer_a(&names);
    }
}

/// B: every service answers A; B never decides anything. Killed by A at the end.
fn peer_b(names: &Names) {
    let zport = env_or("NDZ_BENCH_ZPORT", 0);
    let tport = env_or("NDZ_BENCH_TPORT", 0);
    let tcp = TcpListener::bind(("127.0.0.1", tport as u16)).unwrap();
    // Two sessions: the network path (Zenoh's shared memory off, as between machines: else on
    // one host Zenoh moves large payloads through shared memory by itself) and the SHM path.
    let session = SessionOptions {
        shared_memory: Some(false),
        ..SessionOptions::default()
    }
    .listen(&format!("tcp/127.0.0.1:{zport}"))
    .open()
    .unwrap();
    let shm_session = SessionOptions {
        shared_memory: Some(true),
        ..SessionOptions::default()
    }
    .listen(&format!("tcp/127.0.0.1:{}", env_or("NDZ_BENCH_SPORT", 0)))
    .open()
    .unwrap();
    let sink = Arc::new(AtomicU64::new(0));

    // Bridge, frames: A's ring arrives in ring "fd"; a consumer reads every byte.
    let in_opts = InOptions {
        keep_running: true,
        ..InOptions::default()
    };
    {
        let (s, k, r, o) = (
            session.clone(),
            names.key("frames"),
            names.ring("fd"),
            in_opts.clone(),
        );
        thread::spawn(move || bridge_in(&s, &k, &r, &o).unwrap());
        let r = names.ring("fd");
        let sink = sink.clone();
        thread::spawn(move || {
            let mut rx = open_when_created(|| Consumer::<u8, Ix3>::open(&r));
            loop {
                let Ok(f) = rx.recv() else { return }; // A is gone: the run is over
                sink.fetch_add(word_sum(f.as_slice().unwrap()), Relaxed);
            }
        });
    }
    // Bridge through a Zenoh SHM pool: A's ring "gs" arrives in ring "gd".
    {
        let (s, k, r, o) = (
            shm_session.clone(),
            names.key("sframes"),
            names.ring("gd"),
            in_opts.clone(),
        );
        thread::spawn(move || bridge_in(&s, &k, &r, &o).unwrap());
        let r = names.ring("gd");
        let sink = sink.clone();
        thread::spawn(move || {
            let mut rx = open_when_created(|| Consumer::<u8, Ix3>::open(&r));
            loop {
                let Ok(f) = rx.recv() else { return }; // A is gone: the run is over
                sink.fetch_add(word_sum(f.as_slice().unwrap()), Relaxed);
            }
        });
    }
    // Bridge, round trip: "pd" (from A) is echoed into "bs", which goes back to A.
    {
        let (s, k, r, o) = (
            session.clone(),
            names.key("ping"),
            names.ring("pd"),
            in_opts.clone(),
        );
        thread::spawn(move || bridge_in(&s, &k, &r, &o).unwrap());
        let back = names.ring("bs");
        let mut tx = Producer::<u8, Ix1>::create(&back, SMALL, &Config::spsc().slots(4)).unwrap();
        let (s, k) = (session.clone(), names.key("pong"));
        thread::spawn(move || bridge_out(&s, &back, &k, &OutOptions::default()).unwrap());
        let r = names.ring("pd");
        thread::spawn(move || {
            let mut rx = open_when_created(|| Consumer::<u8, Ix1>::open(&r));
            loop {
                let Ok(f) = rx.recv() else { return }; // A is gone: the run is over
                tx.send(&f.view()).unwrap();
            }
        });
    }
    // ndring between A and B directly (the machine's state).
    {
        let (ls, lb) = (names.ring("ls"), names.ring("lb"));
        let mut tx = Producer::<u8, Ix1>::create(&lb, SMALL, &Config::spsc().slots(4)).unwrap();
        thread::spawn(move || {
            let mut rx = open_when_created(|| Consumer::<u8, Ix1>::open(&ls));
            loop {
                let Ok(f) = rx.recv() else { return }; // A is gone: the run is over
                tx.send(&f.view()).unwrap();
            }
        });
    }
    // Zenoh: SHM frames read in place; 64-byte ping answered with a pong.
    let shm_seen = Arc::new(AtomicBool::new(false));
    let sink2 = sink.clone();
    let _frames = shm_session
        .declare_subscriber(names.key("shm"))
        .callback(move |sample| {
            if !shm_seen.swap(true, Relaxed) {
                let how = if sample.payload().as_shm().is_some() {
                    "in place (SHM)"
                } else {
                    "copied"
                };
                eprintln!("B: Zenoh SHM frames arrive {how}");
            }
            sink2.fetch_add(word_sum(&sample.payload().to_bytes()), Relaxed);
        })
        .wait()
        .unwrap();
    let pong = session
        .declare_publisher(names.key("zpong"))
        .wait()
        .unwrap();
    let _ping = session
        .declare_subscriber(names.key("zping"))
        .callback(move |sample| pong.put(sample.payload().clone()).wait().unwrap())
        .wait()
        .unwrap();
    // TCP: the first connection is a frame sink, the second an echo.
    let (mut frames, _) = tcp.accept().unwrap();
    thread::spawn(move || {
        let mut buf = vec![0u8; FRAME_BYTES];
        while frames.read_exact(&mut buf).is_ok() {
            sink.fetch_add(word_sum(&buf), Relaxed);
        }
    });
    let (mut echo, _) = tcp.accept().unwrap();
    echo.set_nodelay(true).unwrap();
    let mut buf = [0u8; SMALL];
    while echo.read_exact(&mut buf).is_ok() && echo.write_all(&buf).is_ok() {}
}

/// Process B, and the rings' names: killed, then the rings removed, when A ends (also when A
/// panics).
struct PeerB(Child, Vec<String>);
impl Drop for PeerB {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        for ring in &self.1 {
            let _ = ndring::remove(ring);
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn p50(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Round-trip times (ns) of `n` calls of `once`, after 100 unmeasured ones.
fn round_trips(n: u64, mut once: impl FnMut()) -> u64 {
    for _ in 0..100 {
        once();
    }
    p50((0..n)
        .map(|_| {
            let t = Instant::now();
            once();
            t.elapsed().as_nanos() as u64
        })
        .collect())
}

/// Frames per second of `once` (which moves one frame) over `seconds`.
fn frame_rate(seconds: f64, mut once: impl FnMut(u64)) -> f64 {
    for i in 0..4 {
        once(i); // warm: first touch of buffers and slots
    }
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed().as_secs_f64() < seconds {
        once(n);
        n += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    thread::sleep(Duration::from_millis(300)); // let the pipeline drain before the next variant
    rate
}

fn peer_a(names: &Names) {
    let rounds = env_or("NDZ_BENCH_ROUNDS", 5);
    let seconds = env_or("NDZ_BENCH_SECONDS", 2) as f64;
    let rt = env_or("NDZ_BENCH_RT", 2000);
    let (zport, sport, tport) = (free_port(), free_port(), free_port());
    let _b = PeerB(
        Command::new(std::env::current_exe().unwrap())
            .env("NDZ_BENCH_ROLE", "b")
            .env("NDZ_BENCH_TAG", &names.tag)
            .env("NDZ_BENCH_ZPORT", zport.to_string())
            .env("NDZ_BENCH_SPORT", sport.to_string())
            .env("NDZ_BENCH_TPORT", tport.to_string())
            .spawn()
            .unwrap(),
        RINGS.iter().map(|r| names.ring(r)).collect(),
    );
    let tcp_connect = || {
        let start = Instant::now();
        loop {
            match TcpStream::connect(("127.0.0.1", tport)) {
                Ok(s) => return s,
                Err(_) if start.elapsed() < Duration::from_secs(30) => {
                    thread::sleep(Duration::from_millis(10))
                }
                Err(e) => panic!("connect to B: {e}"),
            }
        }
    };
    let mut tcp_frames = tcp_connect();
    let mut tcp_echo = tcp_connect();
    tcp_echo.set_nodelay(true).unwrap();
    let session = SessionOptions {
        shared_memory: Some(false),
        ..SessionOptions::default()
    }
    .connect(&format!("tcp/127.0.0.1:{zport}"))
    .open()
    .unwrap();
    let shm_session = SessionOptions {
        shared_memory: Some(true),
        ..SessionOptions::default()
    }
    .connect(&format!("tcp/127.0.0.1:{sport}"))
    .open()
    .unwrap();

    // The bridge: frames out, pings out, pongs in.
    let mut frames =
        Producer::<u8, Ix3>::create(&names.ring("fs"), FRAME, &Config::spsc().slots(4)).unwrap();
    let mut ping =
        Producer::<u8, Ix1>::create(&names.ring("ps"), SMALL, &Config::spsc().slots(4)).unwrap();
    for (ring, key) in [("fs", "frames"), ("ps", "ping")] {
        let (s, r, k) = (session.clone(), names.ring(ring), names.key(key));
        thread::spawn(move || bridge_out(&s, &r, &k, &OutOptions::default()).unwrap());
    }
    let mut shm_frames =
        Producer::<u8, Ix3>::create(&names.ring("gs"), FRAME, &Config::spsc().slots(4)).unwrap();
    {
        let (s, r, k) = (shm_session.clone(), names.ring("gs"), names.key("sframes"));
        let o = OutOptions {
            shm_pool_bytes: 4 * FRAME_BYTES,
            ..OutOptions::default()
        };
        thread::spawn(move || bridge_out(&s, &r, &k, &o).unwrap());
    }
    {
        let (s, k, r) = (session.clone(), names.key("pong"), names.ring("bd"));
        let o = InOptions {
            keep_running: true,
            ..InOptions::default()
        };
        thread::spawn(move || bridge_in(&s, &k, &r, &o).unwrap());
    }
    // ndring directly between A and B.
    let mut local_tx =
        Producer::<u8, Ix1>::create(&names.ring("ls"), SMALL, &Config::spsc().slots(4)).unwrap();
    let mut local_rx = open_when_created(|| Consumer::<u8, Ix1>::open(&names.ring("lb")));
    // Zenoh: SHM frames, 64-byte ping-pong.
    let provider = ShmProviderBuilder::default_backend(4 * FRAME_BYTES)
        .wait()
        .unwrap();
    let shm_pub = shm_session
        .declare_publisher(names.key("shm"))
        .congestion_control(CongestionControl::Block)
        .wait()
        .unwrap();
    let zping = session
        .declare_publisher(names.key("zping"))
        .congestion_control(CongestionControl::Block)
        .wait()
        .unwrap();
    let zpong = session
        .declare_subscriber(names.key("zpong"))
        .wait()
        .unwrap();

    let small = Array1::<u8>::from_elem(SMALL, 7);
    // The first pong through the bridges creates ring "bd"; wait for it (and for every route).
    ping.send(&small).unwrap();
    let mut pong = open_when_created(|| Consumer::<u8, IxDyn>::open(&names.ring("bd")));
    pong.recv().unwrap();
    while !zping.matching_status().wait().unwrap().matching()
        || !shm_pub.matching_status().wait().unwrap().matching()
    {
        thread::sleep(Duration::from_millis(10));
    }

    let only = std::env::var("NDZ_BENCH_ONLY").unwrap_or_default();
    let want = |v: &str| only.is_empty() || only.split(',').any(|o| o == v);
    let mut frame_buf = vec![0u8; FRAME_BYTES];
    let mut rows: Vec<[f64; 8]> = Vec::new();
    println!(
        "ndring-zenoh bridge benchmark: 1080p frames/s and 64 B round trip p50, A -> B over 127.0.0.1, {rounds} rounds"
    );
    println!(
        "round | state: ndring 64 B RT | frames/s: bridge | bridge (SHM pool) | TCP | Zenoh SHM | 64 B RT: bridge | TCP | Zenoh"
    );
    for round in 1..=rounds {
        let local = round_trips(rt * 5, || {
            local_tx.send(&small).unwrap();
            local_rx.recv().unwrap();
        });
        let bridge_fps = if !want("bridge-frames") {
            0.0
        } else {
            frame_rate(seconds, |i| {
                let mut slot = frames.claim().unwrap();
                slot.fill(i as u8);
                slot.publish();
            })
        };
        let bridge_shm_fps = if !want("bridge-shm-frames") {
            0.0
        } else {
            frame_rate(seconds, |i| {
                let mut slot = shm_frames.claim().unwrap();
                slot.fill(i as u8);
                slot.publish();
            })
        };
        let tcp_fps = if !want("tcp-frames") {
            0.0
        } else {
            frame_rate(seconds, |i| {
                frame_buf.fill(i as u8);
                tcp_frames.write_all(&frame_buf).unwrap();
            })
        };
        let shm_fps = if !want("shm-frames") {
            0.0
        } else {
            frame_rate(seconds, |i| {
                let mut buf = provider
                    .alloc(FRAME_BYTES)
                    .with_policy::<BlockOn<GarbageCollect>>()
                    .wait()
                    .unwrap();
                buf.as_mut().fill(i as u8);
                shm_pub.put(buf).wait().unwrap();
            })
        };
        let bridge_rt = if !want("bridge-rt") {
            0
        } else {
            round_trips(rt, || {
                ping.send(&small).unwrap();
                pong.recv().unwrap();
            })
        };
        let mut b = [0u8; SMALL];
        let tcp_rt = if !want("tcp-rt") {
            0
        } else {
            round_trips(rt, || {
                tcp_echo.write_all(small.as_slice().unwrap()).unwrap();
                tcp_echo.read_exact(&mut b).unwrap();
            })
        };
        let zenoh_rt = if !want("zenoh-rt") {
            0
        } else {
            round_trips(rt, || {
                zping.put(&b[..]).wait().unwrap();
                zpong.recv().unwrap();
            })
        };
        println!(
            "{round:>5} | {:>17} ns | {bridge_fps:>16.0} | {bridge_shm_fps:>17.0} | {tcp_fps:>4.0} | {shm_fps:>9.0} | {:>12.1} us | {:>5.1} us | {:>5.1} us",
            local,
            bridge_rt as f64 / 1e3,
            tcp_rt as f64 / 1e3,
            zenoh_rt as f64 / 1e3
        );
        rows.push([
            local as f64,
            bridge_fps,
            bridge_shm_fps,
            tcp_fps,
            shm_fps,
            bridge_rt as f64,
            tcp_rt as f64,
            zenoh_rt as f64,
        ]);
    }
    let col = |i: usize| median(&rows.iter().map(|r| r[i]).collect::<Vec<_>>());
    // Ratios per round, then their median: both sides of each ratio come from the same round.
    let ratio = |a: usize, b: usize| median(&rows.iter().map(|r| r[a] / r[b]).collect::<Vec<_>>());
    println!(
        "\nmedians: frames/s bridge {:.0}, bridge (SHM pool) {:.0}, TCP {:.0}, Zenoh SHM {:.0}; 64 B RT bridge {:.1} us, TCP {:.1} us, Zenoh {:.1} us; ndring {:.0} ns",
        col(1),
        col(2),
        col(3),
        col(4),
        col(5) / 1e3,
        col(6) / 1e3,
        col(7) / 1e3,
        col(0)
    );
    println!(
        "ratios (median of per-round ratios): frames bridge/TCP {:.2}x, bridge/Zenoh SHM {:.2}x, bridge (SHM pool)/Zenoh SHM {:.2}x; RT bridge/TCP {:.2}x, bridge/Zenoh {:.2}x",
        ratio(1, 3),
        ratio(1, 4),
        ratio(2, 4),
        ratio(5, 6),
        ratio(5, 7)
    );
}

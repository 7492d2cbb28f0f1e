//! W6: async. The W1 round trip of a 64-byte array (the `w1-ring` echo child, blocking), with
//! the parent's receive awaited three ways, at the same spin: blocking `recv`; `recv_async` on a
//! tokio current-thread runtime; and what users write today, a thread blocked in `recv` that
//! hands each item to the task through a tokio `mpsc` channel. At the default spin (2000 polls)
//! and at `spin(0)` (every receive asleep: the reactor thread's wake-up, against the blocking
//! futex wake-up). Then 1080p frames/s (W3's `w3-ring` child copying in at memcpy speed, the
//! parent reading a vectorised word sum) through blocking `recv` and through `recv_async`.
//! Variants interleaved within each round; each round prints the host's cache-line round trip.

use crate::frame::{HD, Source, frame_bytes};
use crate::harness::*;
use crate::w1::{line_round_trip_ns, load_average};
use ndarray::{Ix1, Ix3};
use ndring::{Config, Consumer, Error, Producer};

#[derive(Clone, Copy, PartialEq)]
enum Wait {
    Blocking,
    Async,
    ThreadMpsc,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime")
}

/// Round trips (ns, warm-up excluded) with the parent receiving as `wait` says.
fn round_trips(s: &Settings, wait: Wait, spin: u32) -> Vec<u64> {
    let total = s.w1_warm + s.w1_rt;
    let config = Config::spsc().spin(spin);
    let (a, b) = (ring_name("w6a"), ring_name("w6b"));
    let mut tx = Producer::<u8, Ix1>::create(&a, SMALL, &config).expect("create a");
    let mut rx = Consumer::<u8, Ix1>::create(&b, SMALL, &config).expect("create b");
    let child = spawn(
        "w1-ring",
        &[("a", a), ("b", b), ("spin", spin.to_string())],
        Stdio::null(),
        Stdio::null(),
    );
    let mut lat = Vec::with_capacity(s.w1_rt);
    let ping = |tx: &mut Producer<u8, Ix1>, i: usize| {
        let mut w = tx.claim().expect("claim");
        w.fill(i as u8);
        w.publish();
    };
    match wait {
        Wait::Blocking => {
            for i in 0..total {
                let t = Instant::now();
                ping(&mut tx, i);
                assert_eq!(rx.recv().expect("recv")[SMALL - 1], i as u8);
                let dt = nanos(t.elapsed());
                if i >= s.w1_warm {
                    lat.push(dt);
                }
            }
        }
        Wait::Async => runtime().block_on(async {
            for i in 0..total {
                let t = Instant::now();
                ping(&mut tx, i);
                assert_eq!(rx.recv_async().await.expect("recv")[SMALL - 1], i as u8);
                let dt = nanos(t.elapsed());
                if i >= s.w1_warm {
                    lat.push(dt);
                }
            }
        }),
        Wait::ThreadMpsc => {
            let (send, mut items) = tokio::sync::mpsc::unbounded_channel();
            let forward = std::thread::spawn(move || {
                for _ in 0..total {
                    let r = rx.recv().expect("recv");
                    send.send(r[SMALL - 1]).expect("send to the task");
                }
                rx
            });
            runtime().block_on(async {
                for i in 0..total {
                    let t = Instant::now();
                    ping(&mut tx, i);
                    assert_eq!(items.recv().await.expect("item"), i as u8);
                    let dt = nanos(t.elapsed());
                    if i >= s.w1_warm {
                        lat.push(dt);
                    }
                }
            });
            rx = forward.join().expect("forwarding thread");
        }
    }
    tx.close();
    reap(child);
    drop(rx);
    lat
}

/// 1080p frames/s received with `recv` or `recv_async` (default spin both sides' waits).
fn frames(s: &Settings, wait: Wait) -> f64 {
    let n = s.w3_frames;
    let warm = n / 10;
    let bytes = frame_bytes(HD);
    let src = Source::new(bytes);
    let name = ring_name("w6f");
    let mut rx = Consumer::<u8, Ix3>::create(&name, HD, &Config::spsc().slots(4)).expect("create");
    let child = spawn(
        "w3-ring",
        &[
            ("n", n.to_string()),
            ("res", "1080p".to_owned()),
            ("name", name),
            ("in_turn", "0".to_owned()),
        ],
        Stdio::null(),
        Stdio::null(),
    );
    let mut start = Instant::now();
    let mut check = |k: u64, frame: &[u8]| {
        assert!(src.check(frame, k), "frame {k} corrupt");
        if k == warm {
            start = Instant::now();
        }
    };
    match wait {
        Wait::Async => runtime().block_on(async {
            for k in 0..n {
                let r = rx.recv_async().await.expect("recv_async");
                check(k, r.as_slice().expect("contiguous"));
            }
            assert!(matches!(rx.recv_async().await, Err(Error::Closed)));
        }),
        _ => {
            for k in 0..n {
                let r = rx.recv().expect("recv");
                check(k, r.as_slice().expect("contiguous"));
            }
            assert!(matches!(rx.recv(), Err(Error::Closed)));
        }
    }
    let rate = (n - warm - 1) as f64 / start.elapsed().as_secs_f64();
    reap(child);
    rate
}

fn p50(mut v: Vec<u64>) -> f64 {
    v.sort_unstable();
    percentile(&v, 50.0) as f64
}

pub fn w6(s: &Settings, rep: &mut Report) {
    rep.say(&format!(
        "\n## W6: async\n\nPer round, interleaved: the W1 round trip (64 B, {} round trips, p50) \
         with the parent's receive blocking, awaited with `recv_async` (tokio current-thread), \
         and through a thread blocked in `recv` feeding a tokio `mpsc` channel; at the default \
         spin (2000) and at `spin(0)`. Then 1080p frames/s ({} frames) through `recv` and \
         `recv_async`. Each round prints the host's cache-line round trip and load.\n\n",
        s.w1_rt, s.w3_frames
    ));
    let mut t = Table::new(&[
        "round",
        "line rtt",
        "load",
        "spin",
        "blocking p50",
        "recv_async p50",
        "async/blocking",
        "thread+mpsc p50",
        "async/thread+mpsc",
    ]);
    let mut f = Table::new(&[
        "round",
        "line rtt",
        "blocking frames/s",
        "recv_async frames/s",
        "async/blocking",
    ]);
    let (mut rt_ratios, mut frame_ratios) = (Vec::new(), Vec::new());
    for run in 0..s.runs {
        arm(s.limit());
        let rtt = line_round_trip_ns(s);
        let load = load_average();
        for spin in [2000, 0] {
            let blocking = p50(round_trips(s, Wait::Blocking, spin));
            let awaited = p50(round_trips(s, Wait::Async, spin));
            let mpsc = p50(round_trips(s, Wait::ThreadMpsc, spin));
            rep.say(&format!(
                "run {}: line round trip {rtt} ns, load {load}, spin {spin}: blocking {blocking:.0} \
                 ns, recv_async {awaited:.0} ns ({:.2}x), thread+mpsc {mpsc:.0} ns ({:.2}x of it)\n",
                run + 1,
                awaited / blocking,
                awaited / mpsc
            ));
            rt_ratios.push((spin, awaited / blocking, awaited / mpsc));
            t.row(vec![
                (run + 1).to_string(),
                format!("{rtt} ns"),
                load.clone(),
                spin.to_string(),
                format!("{blocking:.0} ns"),
                format!("{awaited:.0} ns"),
                format!("{:.2}x", awaited / blocking),
                format!("{mpsc:.0} ns"),
                format!("{:.2}x", awaited / mpsc),
            ]);
        }
        // Alternate which goes first, so that neither always meets a warmer host.
        let (blocking, awaited) = if run % 2 == 0 {
            let b = frames(s, Wait::Blocking);
            (b, frames(s, Wait::Async))
        } else {
            let a = frames(s, Wait::Async);
            (frames(s, Wait::Blocking), a)
        };
        frame_ratios.push(awaited / blocking);
        f.row(vec![
            (run + 1).to_string(),
            format!("{rtt} ns"),
            format!("{blocking:.1}"),
            format!("{awaited:.1}"),
            format!("{:.3}x", awaited / blocking),
        ]);
    }
    let med = |spin: u32, pick: fn(&(u32, f64, f64)) -> f64| {
        let v: Vec<f64> = rt_ratios.iter().filter(|r| r.0 == spin).map(pick).collect();
        spread(&v)
    };
    let d = med(2000, |r| r.1);
    let dm = med(2000, |r| r.2);
    let z = med(0, |r| r.1);
    let zm = med(0, |r| r.2);
    let fr = spread(&frame_ratios);
    rep.say(&format!(
        "\n{}\n{}\nrecv_async / blocking recv, default spin: median {:.2}x (min {:.2}x, max {:.2}x); \
         / thread+mpsc {:.2}x\nrecv_async / blocking recv, spin 0: median {:.2}x (min {:.2}x, max \
         {:.2}x); / thread+mpsc {:.2}x\n1080p frames/s recv_async / recv: median {:.3}x (min \
         {:.3}x, max {:.3}x)\n",
        t.render(),
        f.render(),
        d.med,
        d.min,
        d.max,
        dm.med,
        z.med,
        z.min,
        z.max,
        zm.med,
        fr.med,
        fr.min,
        fr.max
    ));
}

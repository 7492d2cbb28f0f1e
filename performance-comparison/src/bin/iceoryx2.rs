//! ndring against iceoryx2 (publish-subscribe, `ipc::Service`), between two PROCESSES, round by
//! round: every round measures the host's cache-line round trip first (this VM flips between a
//! fast state, ~90-130 ns, and a slow one, ~500 ns; compare only rows of one state), then runs
//! each workload on ndring and on iceoryx2 back to back (which goes first alternates by round).
//!
//! * W1: 64-byte round trip, busy-poll (ndring SPSC rings `spin(u32::MAX)`; iceoryx2 `[u8; 64]`
//!   services ping and pong, `loan_uninit` + `write_payload` + `send`, polled `receive()`).
//! * W3: frames exactly as `benches/ipc/frame.rs` (this file includes it): the producer copies a
//!   source frame into the slot or loaned sample and stamps word 0 with the sequence number; the
//!   consumer reads every byte as a u64 word sum and checks it. 1080p at 2 / 4 / 8 / 16 slots
//!   (iceoryx2's subscriber buffer = ndring's slot count, no loss:
//!   `BackpressureStrategy::RetryUntilDelivered`), and 4K at 4. Both sides of both programs
//!   busy-poll (ndring `spin(u32::MAX)`, iceoryx2 polled `loan` and `receive()`).
//!
//! The binary re-executes itself with a role argument for the peer process. Waits poll like
//! `benches/ipc.rs` (a spin hint, a yield every 64 polls). Nothing is pinned. Prints each round's
//! figures, then, for each host state, per workload the median over the rounds measured wholly
//! in that state and the median of their ratios ndring / iceoryx2, and `RESULT key value` lines
//! (`slow_` before the keys of the slow state).
//!
//! Environment: `PC_RUNS` (rounds, default 5), `PC_RT` (W1 round trips per round, default
//! 20 000 plus 2 000 warm-up), `PC_FRAMES` (W3 frames per round, default 200; the first
//! 2 x slots + 4 untimed).

#[path = "../common.rs"]
mod common;
#[path = "../../../benches/ipc/frame.rs"]
mod frame;

use std::time::{Duration, Instant};

use common::*;
use frame::{HD, Source, UHD, frame_bytes};
use iceoryx2::prelude::*;
use ndarray::{Ix1, Ix3};
use ndring::{Config, Consumer, Error, OpenOptions, Producer};

const SMALL: usize = 64;
const W1_WARM: usize = 2_000;
/// The W3 cases: shape name, shape, slots (= iceoryx2 subscriber buffer).
const W3_CASES: [(&str, (usize, usize, usize), usize); 5] = [
    ("1080p", HD, 2),
    ("1080p", HD, 4),
    ("1080p", HD, 8),
    ("1080p", HD, 16),
    ("4K", UHD, 4),
];

// ------------------------------------------------------------------------------------------
// W1

type Factory<T> =
    iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, T, ()>;

fn ix_w1_services(
    node: &Node<ipc::Service>,
    tag: &str,
) -> Result<(Factory<[u8; SMALL]>, Factory<[u8; SMALL]>), Err> {
    let mk = |n: &str| -> Result<_, Err> {
        let name: ServiceName = format!("ndpc/{tag}/{n}").as_str().try_into()?;
        Ok(node
            .service_builder(&name)
            .publish_subscribe::<[u8; SMALL]>()
            .history_size(0)
            .subscriber_max_buffer_size(2)
            .open_or_create()?)
    };
    Ok((mk("ping")?, mk("pong")?))
}

fn ix_w1_child(tag: &str, total: usize) -> Result<(), Err> {
    let node = node()?;
    let (ping, pong) = ix_w1_services(&node, tag)?;
    let sub = ping.subscriber_builder().create()?;
    let publ = pong.publisher_builder().create()?;
    while pong.dynamic_config().number_of_subscribers() < 1 {
        std::thread::sleep(Duration::from_millis(1));
    }
    println!("ready");
    for _ in 0..total {
        let s = spin_until(|| sub.receive().expect("receive"));
        let v = *s.payload();
        drop(s);
        publ.loan_uninit()?.write_payload(v).send()?;
    }
    Ok(())
}

fn ix_w1(tag: &str, rt: usize) -> Result<u64, Err> {
    let total = W1_WARM + rt;
    let node = node()?;
    let (ping, pong) = ix_w1_services(&node, tag)?;
    let publ = ping.publisher_builder().create()?;
    let sub = pong.subscriber_builder().create()?;
    let child = spawn_child(&["ix-w1-child".into(), tag.into(), total.to_string()]);
    while ping.dynamic_config().number_of_subscribers() < 1 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut lat = Vec::with_capacity(rt);
    for i in 0..total {
        let t = Instant::now();
        let mut item = [i as u8; SMALL];
        item[..8].copy_from_slice(&(i as u64).to_le_bytes());
        publ.loan_uninit()?.write_payload(item).send()?;
        let r = spin_until(|| sub.receive().expect("receive"));
        let dt = t.elapsed().as_nanos() as u64;
        assert_eq!(&r.payload()[..8], &(i as u64).to_le_bytes());
        if i >= W1_WARM {
            lat.push(dt);
        }
    }
    reap(child);
    lat.sort_unstable();
    Ok(percentile(&lat, 50.0))
}

fn nd_w1_child(a: &str, b: &str) -> Result<(), Err> {
    let opts = OpenOptions::default().spin(u32::MAX);
    let mut rx = Consumer::<u8, Ix1>::open_with(a, &opts)?;
    let mut tx = Producer::<u8, Ix1>::open_with(b, &opts)?;
    println!("ready");
    loop {
        let r = match rx.recv() {
            Ok(r) => r,
            Err(Error::Closed) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let mut w = tx.claim()?;
        w.assign(&*r);
        w.publish();
    }
}

fn nd_w1(tag: &str, rt: usize) -> Result<u64, Err> {
    let total = W1_WARM + rt;
    let (a, b) = (format!("/ndpc-{tag}-a"), format!("/ndpc-{tag}-b"));
    let config = Config::spsc().spin(u32::MAX);
    let mut tx = Producer::<u8, Ix1>::create(&a, SMALL, &config)?;
    let mut rx = Consumer::<u8, Ix1>::create(&b, SMALL, &config)?;
    let child = spawn_child(&["nd-w1-child".into(), a, b]);
    let mut lat = Vec::with_capacity(rt);
    for i in 0..total {
        let t = Instant::now();
        let mut w = tx.claim()?;
        w.fill(i as u8);
        w.publish();
        let r = rx.recv()?;
        let dt = t.elapsed().as_nanos() as u64;
        assert_eq!(r[SMALL - 1], i as u8);
        drop(r);
        if i >= W1_WARM {
            lat.push(dt);
        }
    }
    tx.close();
    reap(child);
    lat.sort_unstable();
    Ok(percentile(&lat, 50.0))
}

// ------------------------------------------------------------------------------------------
// W3

fn warm(slots: usize) -> u64 {
    2 * slots as u64 + 4
}

fn ix_w3_service(node: &Node<ipc::Service>, tag: &str, slots: usize) -> Result<Factory<[u8]>, Err> {
    let name: ServiceName = format!("ndpc/{tag}/frames").as_str().try_into()?;
    Ok(node
        .service_builder(&name)
        .publish_subscribe::<[u8]>()
        .payload_alignment(Alignment::new(128).expect("power of two"))
        .history_size(0)
        .enable_safe_overflow(false)
        .subscriber_max_buffer_size(slots)
        .subscriber_max_borrowed_samples(1)
        .max_publishers(1)
        .max_subscribers(1)
        .open_or_create()?)
}

fn ix_w3_child(tag: &str, slots: usize, n: u64, bytes: usize) -> Result<(), Err> {
    let src = Source::new(bytes);
    let node = node()?;
    let svc = ix_w3_service(&node, tag, slots)?;
    let publ = svc
        .publisher_builder()
        .initial_max_slice_len(bytes)
        .max_loaned_samples(1)
        .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
        .create()?;
    while svc.dynamic_config().number_of_subscribers() < 1 {
        std::thread::sleep(Duration::from_millis(1));
    }
    println!("ready");
    for k in 0..n {
        let mut s = spin_until(|| publ.loan_slice_uninit(bytes).ok());
        let p = s.payload_mut();
        assert_eq!(p.len(), bytes);
        // SAFETY: `p` is the loaned slice of `p.len()` MaybeUninit<u8>, exclusively ours until
        // `send`; MaybeUninit<u8> has u8's layout, and we only write through this view.
        let dst = unsafe { std::slice::from_raw_parts_mut(p.as_mut_ptr().cast::<u8>(), p.len()) };
        src.write(dst, k);
        // SAFETY: every byte of the payload was initialised just above.
        let s = unsafe { s.assume_init() };
        s.send()?;
    }
    Ok(())
}

fn ix_w3(tag: &str, slots: usize, n: u64, bytes: usize) -> Result<f64, Err> {
    let src = Source::new(bytes);
    let node = node()?;
    let svc = ix_w3_service(&node, tag, slots)?;
    let sub = svc.subscriber_builder().buffer_size(slots).create()?;
    let child = spawn_child(&[
        "ix-w3-child".into(),
        tag.into(),
        slots.to_string(),
        n.to_string(),
        bytes.to_string(),
    ]);
    let mut start = Instant::now();
    for k in 0..n {
        let s = spin_until(|| sub.receive().expect("receive"));
        assert!(
            src.check(s.payload(), k),
            "iceoryx2 frame {k} corrupt or lost"
        );
        drop(s);
        if k == warm(slots) {
            start = Instant::now();
        }
    }
    let dt = start.elapsed().as_secs_f64();
    reap(child);
    Ok((n - warm(slots) - 1) as f64 / dt)
}

fn nd_w3_child(name: &str, n: u64, bytes: usize) -> Result<(), Err> {
    let src = Source::new(bytes);
    // Busy-poll on a full ring, as the iceoryx2 publisher's `spin_until(loan)` does.
    let mut tx = Producer::<u8, Ix3>::open_with(name, &OpenOptions::default().spin(u32::MAX))?;
    println!("ready");
    for k in 0..n {
        let mut w = tx.claim()?;
        src.write(w.as_slice_mut().expect("contiguous"), k);
        w.publish();
    }
    tx.close();
    Ok(())
}

fn nd_w3(tag: &str, shape: (usize, usize, usize), slots: usize, n: u64) -> Result<f64, Err> {
    let bytes = frame_bytes(shape);
    let src = Source::new(bytes);
    let name = format!("/ndpc-{tag}");
    // Busy-poll on an empty ring, as the iceoryx2 subscriber's `spin_until(receive)` does (the
    // default, 2,000 polls then a futex sleep, would add a wake-up to every 4K frame).
    let config = Config::spsc().slots(slots).spin(u32::MAX);
    let mut rx = Consumer::<u8, Ix3>::create(&name, shape, &config)?;
    let child = spawn_child(&["nd-w3-child".into(), name, n.to_string(), bytes.to_string()]);
    let mut start = Instant::now();
    for k in 0..n {
        let r = rx.recv()?;
        assert!(
            src.check(r.as_slice().expect("contiguous"), k),
            "ndring frame {k} corrupt or lost"
        );
        drop(r);
        if k == warm(slots) {
            start = Instant::now();
        }
    }
    let dt = start.elapsed().as_secs_f64();
    assert!(matches!(rx.recv(), Err(Error::Closed)));
    reap(child);
    Ok((n - warm(slots) - 1) as f64 / dt)
}

// ------------------------------------------------------------------------------------------

/// One workload's figures over the rounds, for both programs.
struct Pair {
    key: String,
    label: String,
    /// Lower is better (latency) or higher (rate).
    latency: bool,
    nd: Vec<f64>,
    ix: Vec<f64>,
    /// The host state around each round's pair (`None`: it flipped between the two checks).
    state: Vec<Option<HostState>>,
}

fn main() -> Result<(), Err> {
    set_log_level(LogLevel::Error);
    let args: Vec<String> = std::env::args().collect();
    pin(if args.len() > 1 { 1 } else { 0 });
    match args.get(1).map(String::as_str) {
        Some("ix-w1-child") => return ix_w1_child(&args[2], args[3].parse()?),
        Some("ix-w3-child") => {
            return ix_w3_child(
                &args[2],
                args[3].parse()?,
                args[4].parse()?,
                args[5].parse()?,
            );
        }
        Some("nd-w1-child") => return nd_w1_child(&args[2], &args[3]),
        Some("nd-w3-child") => return nd_w3_child(&args[2], args[3].parse()?, args[4].parse()?),
        _ => {}
    }
    let rounds = env_num("PC_RUNS", 5).max(1);
    let rt = env_num("PC_RT", 20_000).max(100);
    let frames = env_num("PC_FRAMES", 200) as u64;
    println!(
        "# ndring vs iceoryx2 0.10 publish-subscribe, two processes, {rounds} round(s), interleaved"
    );
    let mut pairs = vec![Pair {
        key: "w1_p50_ns".into(),
        label: "W1 64 B round trip, busy-poll, p50 (ns)".into(),
        latency: true,
        nd: vec![],
        ix: vec![],
        state: vec![],
    }];
    for (res, _, slots) in W3_CASES {
        pairs.push(Pair {
            key: format!("w3_{res}_{slots}_frames_per_s"),
            label: format!("W3 {res} frames/s, {slots} slots / subscriber buffer {slots}"),
            latency: false,
            nd: vec![],
            ix: vec![],
            state: vec![],
        });
    }
    let pid = std::process::id();
    for round in 0..rounds {
        let rtt = line_round_trip_ns();
        println!(
            "round {}/{rounds}: cache-line round trip {rtt} ns, load {}",
            round + 1,
            load_average()
        );
        println!("RESULT round{}_line_rtt_ns {rtt}", round + 1);
        let nd_first = round % 2 == 0;
        for (i, p) in pairs.iter_mut().enumerate() {
            let tag = format!("{pid}-{round}-{i}");
            let run_nd = |tag: &str| -> Result<f64, Err> {
                if i == 0 {
                    Ok(nd_w1(tag, rt)? as f64)
                } else {
                    let (_, shape, slots) = W3_CASES[i - 1];
                    nd_w3(tag, shape, slots, frames.max(warm(slots) + 20))
                }
            };
            let run_ix = |tag: &str| -> Result<f64, Err> {
                if i == 0 {
                    Ok(ix_w1(tag, rt)? as f64)
                } else {
                    let (_, shape, slots) = W3_CASES[i - 1];
                    ix_w3(tag, slots, frames.max(warm(slots) + 20), frame_bytes(shape))
                }
            };
            // The state can flip within a round: measured again right before each pair.
            let rtt = line_round_trip_ns();
            let (nd, ix) = if nd_first {
                let nd = run_nd(&format!("{tag}n"))?;
                (nd, run_ix(&format!("{tag}i"))?)
            } else {
                let ix = run_ix(&format!("{tag}i"))?;
                (run_nd(&format!("{tag}n"))?, ix)
            };
            let rtt_after = line_round_trip_ns();
            println!(
                "  {:<58} ndring {nd:>9.0}  iceoryx2 {ix:>9.0}  ndring/iceoryx2 {:.2}  \
                 (line round trip {rtt} / {rtt_after} ns)",
                p.label,
                nd / ix
            );
            p.nd.push(nd);
            p.ix.push(ix);
            p.state.push(host_state(rtt, rtt_after));
        }
    }
    // One table per host state, from the pairs measured wholly in it; a pair during which the
    // state flipped counts in neither.
    for (state, name, key) in [
        (HostState::Fast, "fast state (line round trip < 250 ns)", ""),
        (
            HostState::Slow,
            "slow state (line round trip >= 250 ns)",
            "slow_",
        ),
    ] {
        println!();
        println!("## {name}");
        println!();
        println!(
            "| workload | rounds | ndring (median) | iceoryx2 (median) | ndring / iceoryx2 (median of per-round ratios) | min | max |"
        );
        println!("|---|---|---|---|---|---|---|");
        for p in &pairs {
            let kept: Vec<usize> = (0..p.nd.len())
                .filter(|&i| p.state[i] == Some(state))
                .collect();
            if kept.is_empty() {
                println!("| {} | 0 | | | | | |", p.label);
                continue;
            }
            let ratios: Vec<f64> = kept.iter().map(|&i| p.nd[i] / p.ix[i]).collect();
            let (lo, hi) = ratios
                .iter()
                .fold((f64::MAX, f64::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)));
            let nd = median(kept.iter().map(|&i| p.nd[i]).collect());
            let ix = median(kept.iter().map(|&i| p.ix[i]).collect());
            let r = median(ratios);
            println!(
                "| {} | {} | {nd:.0} | {ix:.0} | {r:.2}×{} | {lo:.2} | {hi:.2} |",
                p.label,
                kept.len(),
                if p.latency {
                    " (below 1: ndring faster)"
                } else {
                    ""
                }
            );
            println!("RESULT {key}ndring_{} {nd:.1}", p.key);
            println!("RESULT {key}iceoryx2_{} {ix:.1}", p.key);
            println!("RESULT {key}ratio_{} {r:.3}", p.key);
        }
    }
    Ok(())
}

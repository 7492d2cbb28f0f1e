//! ndring request/reply against iceoryx2 0.10 request-response (`ipc::Service`), between two
//! PROCESSES, round by round, as `iceoryx2.rs` does for publish-subscribe: every round measures
//! the host's cache-line round trip first (this VM flips between a fast state, ~90-130 ns, and a
//! slow one, ~500 ns; compare only rows of one state), then runs the workload on ndring and on
//! iceoryx2 back to back (which goes first alternates by round), measuring the line round trip
//! again before and after the pair.
//!
//! The workload, RPC: a 64-byte request answered by a 64-byte reply, one call at a time, busy-poll
//! on both sides. The client (this process) stamps the call number into the request's first 8
//! bytes and the rest with its low byte; the server (the binary re-executed with a role argument)
//! copies the request into the reply; the client checks the reply's stamp. One call is timed from
//! before the client claims/loans its request to after it has checked and released the reply,
//! so each program's whole per-call cost (claim, fill, queue, serve, reply, see the reply, free
//! the call) is in the figure.
//!
//! * ndring: `Server<u8, Ix1, u8, Ix1>` created by the server process with
//!   `Config::rpc().clients(1).spin(u32::MAX)` (two calls), `Client` opened with
//!   `OpenOptions::default().spin(u32::MAX)`; the client `request()`s a call, fills it in place,
//!   `send()`s it and `receive()`s the reply; the server `recv()`s, copies the request into the
//!   reply in place (`parts()`) and `send()`s it.
//! * iceoryx2: `request_response::<[u8; 64], [u8; 64]>()` (defaults otherwise); the client
//!   `loan_uninit()` + `write_payload` + `send()` -> `PendingResponse`, polled `receive()`; the
//!   server polls `receive()` -> `ActiveRequest`, `loan_uninit()` + `write_payload` + `send()`.
//!
//! Waits poll like `benches/ipc.rs` and `iceoryx2.rs` (a spin hint, a yield every 64 polls;
//! ndring's own busy wait does the same). Nothing is pinned unless `PC_PIN=1`. Prints each
//! round's p50 and p99 per call, the ratio ndring / iceoryx2 of the p50s and where the pair ran
//! (see `SAMPLE`: client and server on two cores, or on one), then the medians over the rounds
//! run on two cores wholly in one host state, the median of their per-round ratios, the same
//! for the rounds run on one core, and `RESULT key value` lines (`slow_` before the keys of the
//! slow state, `onecore_` before those of one core).
//!
//! Environment: `PC_RUNS` (rounds, default 5), `PC_RT` (calls per round and program, default
//! 20 000, plus 2 000 warm-up), `PC_PIN=1`, `PC_STEPS=1` (ndring only: also prints, per round,
//! where the time of a call goes, step by step; see `nd_steps`).

#[path = "../common.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use iceoryx2::prelude::*;
use ndarray::Ix1;
use ndring::{Client, Config, OpenOptions, Server};

const SMALL: usize = 64;
const WARM: usize = 2_000;

type NdServer = Server<u8, Ix1, u8, Ix1>;
type NdClient = Client<u8, Ix1, u8, Ix1>;

/// p50 and p99 of one program's calls, in ns, and the share of sampled calls whose reply the
/// server wrote on the CPU the client read it on (both processes on one core).
#[derive(Clone, Copy)]
struct Lat {
    p50: u64,
    p99: u64,
    same_cpu: f64,
}

fn lat_of(mut v: Vec<u64>, same: &Same) -> Lat {
    v.sort_unstable();
    Lat {
        p50: percentile(&v, 50.0),
        p99: percentile(&v, 99.0),
        same_cpu: same.0 as f64 / same.1.max(1) as f64,
    }
}

/// Every `SAMPLE`th call, the server writes the CPU it runs on into byte 8 of the reply, and the
/// client compares it with its own (a `sched_getcpu`, a few ns, on 1 call in 64: no effect on
/// the p50). Unpinned, this VM's scheduler sometimes puts both busy-polling processes on one
/// core, where every hand-off waits for a yield: such rounds measure the scheduler, not the
/// IPC path, and are reported apart.
const SAMPLE: usize = 64;

fn cpu() -> u8 {
    // SAFETY: glibc's `int sched_getcpu(void)`, declared with its C signature.
    unsafe extern "C" {
        fn sched_getcpu() -> i32;
    }
    // SAFETY: no arguments, no memory; -1 on failure (then no match is counted).
    unsafe { sched_getcpu() as u8 }
}

/// Sampled calls whose reply came from the client's CPU, and calls sampled.
#[derive(Default)]
struct Same(u64, u64);

impl Same {
    /// Call `i`'s reply (its byte 8) seen by the client, after warm-up.
    #[inline]
    fn sample(&mut self, i: usize, reply: &[u8]) {
        if i >= WARM && i % SAMPLE == 0 {
            self.0 += u64::from(reply[8] == cpu());
            self.1 += 1;
        }
    }
}

/// The server's stamp: its CPU into byte 8 of a reply to a sampled call.
#[inline]
fn stamp_cpu(reply: &mut [u8]) {
    if u64::from_le_bytes(reply[..8].try_into().unwrap()) % SAMPLE as u64 == 0 {
        reply[8] = cpu();
    }
}

/// The request of call `i`: its number in the first 8 bytes, its low byte in the rest.
fn request_of(i: usize) -> [u8; SMALL] {
    let mut q = [i as u8; SMALL];
    q[..8].copy_from_slice(&(i as u64).to_le_bytes());
    q
}

// ------------------------------------------------------------------------------------------
// iceoryx2

type IxFactory = iceoryx2::service::port_factory::request_response::PortFactory<
    ipc::Service,
    [u8; SMALL],
    (),
    [u8; SMALL],
    (),
>;

fn ix_service(node: &Node<ipc::Service>, tag: &str) -> Result<IxFactory, Err> {
    let name: ServiceName = format!("ndpc/{tag}/rpc").as_str().try_into()?;
    Ok(node
        .service_builder(&name)
        .request_response::<[u8; SMALL], [u8; SMALL]>()
        .open_or_create()?)
}

fn ix_server(tag: &str, total: usize) -> Result<(), Err> {
    let node = node()?;
    let svc = ix_service(&node, tag)?;
    let server = svc.server_builder().create()?;
    while svc.dynamic_config().number_of_clients() < 1 {
        std::thread::sleep(Duration::from_millis(1));
    }
    println!("ready");
    for _ in 0..total {
        let req = spin_until(|| server.receive().expect("receive"));
        let mut v = *req.payload();
        stamp_cpu(&mut v);
        req.loan_uninit()?.write_payload(v).send()?;
        drop(req);
    }
    Ok(())
}

fn ix_client(tag: &str, rt: usize) -> Result<Lat, Err> {
    let total = WARM + rt;
    let node = node()?;
    let svc = ix_service(&node, tag)?;
    let client = svc.client_builder().create()?;
    let child = spawn_child(&["ix-server".into(), tag.into(), total.to_string()]);
    while svc.dynamic_config().number_of_servers() < 1 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut lat = Vec::with_capacity(rt);
    let mut same = Same::default();
    for i in 0..total {
        let t = Instant::now();
        let pending = client.loan_uninit()?.write_payload(request_of(i)).send()?;
        let r = spin_until(|| pending.receive().expect("receive"));
        assert_eq!(&r.payload()[..8], &(i as u64).to_le_bytes());
        same.sample(i, r.payload());
        drop(r);
        drop(pending);
        let dt = t.elapsed().as_nanos() as u64;
        if i >= WARM {
            lat.push(dt);
        }
    }
    reap(child);
    Ok(lat_of(lat, &same))
}

// ------------------------------------------------------------------------------------------
// ndring

fn nd_server(name: &str, total: usize) -> Result<(), Err> {
    let srv = NdServer::create(name, SMALL, SMALL, &Config::rpc().clients(1).spin(u32::MAX))?;
    println!("ready");
    for _ in 0..total {
        let mut req = srv.recv()?;
        let (q, mut r) = req.parts();
        r.assign(&q);
        stamp_cpu(r.as_slice_mut().expect("contiguous"));
        req.send();
    }
    Ok(())
}

fn nd_client(tag: &str, rt: usize) -> Result<Lat, Err> {
    let total = WARM + rt;
    let name = format!("/ndpc-rpc-{tag}");
    let child = spawn_child(&["nd-server".into(), name.clone(), total.to_string()]);
    let cli = NdClient::open_with(&name, &OpenOptions::default().spin(u32::MAX))?;
    let mut lat = Vec::with_capacity(rt);
    let mut same = Same::default();
    for i in 0..total {
        let t = Instant::now();
        let mut call = cli.request()?;
        call.fill(i as u8);
        call.as_slice_mut().expect("contiguous")[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let r = call.send().receive()?;
        let reply = r.as_slice().expect("contiguous");
        assert_eq!(&reply[..8], &(i as u64).to_le_bytes());
        same.sample(i, reply);
        drop(r);
        let dt = t.elapsed().as_nanos() as u64;
        if i >= WARM {
            lat.push(dt);
        }
    }
    drop(cli);
    reap(child);
    Ok(lat_of(lat, &same))
}

/// `PC_STEPS=1`: one more ndring run per round, timing each step of a call on the client (claim,
/// fill, queue, wait for the reply, check, free), with `Instant` (about 20 ns a read here) —
/// the steps add up to more than an untimed call. Prints the median of each step.
fn nd_steps(tag: &str, rt: usize) -> Result<(), Err> {
    let total = WARM + rt;
    let name = format!("/ndpc-rpc-{tag}");
    let child = spawn_child(&["nd-server".into(), name.clone(), total.to_string()]);
    let cli = NdClient::open_with(&name, &OpenOptions::default().spin(u32::MAX))?;
    const STEPS: [&str; 6] = ["claim", "fill", "send", "wait reply", "check", "free"];
    let mut d: [Vec<u64>; 6] = Default::default();
    for i in 0..total {
        let t0 = Instant::now();
        let mut call = cli.request()?;
        let t1 = Instant::now();
        call.fill(i as u8);
        call.as_slice_mut().expect("contiguous")[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let t2 = Instant::now();
        let pending = call.send();
        let t3 = Instant::now();
        let r = pending.receive()?;
        let t4 = Instant::now();
        assert_eq!(
            &r.as_slice().expect("contiguous")[..8],
            &(i as u64).to_le_bytes()
        );
        let t5 = Instant::now();
        drop(r);
        let t6 = Instant::now();
        if i >= WARM {
            for (k, (a, b)) in [(t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5), (t5, t6)]
                .into_iter()
                .enumerate()
            {
                d[k].push((b - a).as_nanos() as u64);
            }
        }
    }
    drop(cli);
    reap(child);
    let parts: Vec<String> = d
        .into_iter()
        .zip(STEPS)
        .map(|(mut v, s)| {
            v.sort_unstable();
            format!("{s} {}", percentile(&v, 50.0))
        })
        .collect();
    println!("    ndring steps, p50 ns each: {}", parts.join(", "));
    Ok(())
}

// ------------------------------------------------------------------------------------------

/// Where a pair ran: both programs with client and server on different cores (fewer than 10% of
/// the sampled replies from the client's CPU), both on one core (more than 90%), or mixed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Placement {
    CrossCore,
    OneCore,
    Mixed,
}

fn placement(a: Lat, b: Lat) -> Placement {
    match (a.same_cpu, b.same_cpu) {
        (x, y) if x < 0.1 && y < 0.1 => Placement::CrossCore,
        (x, y) if x > 0.9 && y > 0.9 => Placement::OneCore,
        _ => Placement::Mixed,
    }
}

/// One round's pair: ndring, iceoryx2, the host state around it, where it ran.
type Row = (Lat, Lat, Option<HostState>, Placement);

fn main() -> Result<(), Err> {
    set_log_level(LogLevel::Error);
    let args: Vec<String> = std::env::args().collect();
    pin(if args.len() > 1 { 1 } else { 0 });
    match args.get(1).map(String::as_str) {
        Some("ix-server") => return ix_server(&args[2], args[3].parse()?),
        Some("nd-server") => return nd_server(&args[2], args[3].parse()?),
        _ => {}
    }
    let rounds = env_num("PC_RUNS", 5).max(1);
    let rt = env_num("PC_RT", 20_000).max(100);
    let steps = std::env::var("PC_STEPS").is_ok_and(|v| v == "1");
    println!(
        "# ndring request/reply vs iceoryx2 0.10 request-response, 64 B request and reply, \
         busy-poll, two processes, {rounds} round(s) of {rt} calls (+{WARM} warm-up), interleaved"
    );
    let pid = std::process::id();
    let mut pairs: Vec<Row> = vec![];
    for round in 0..rounds {
        let rtt = line_round_trip_ns();
        println!(
            "round {}/{rounds}: cache-line round trip {rtt} ns, load {}",
            round + 1,
            load_average()
        );
        println!("RESULT round{}_line_rtt_ns {rtt}", round + 1);
        let tag = format!("{pid}-{round}");
        let before = line_round_trip_ns();
        let (n, i) = if round % 2 == 0 {
            let n = nd_client(&format!("{tag}n"), rt)?;
            (n, ix_client(&format!("{tag}i"), rt)?)
        } else {
            let i = ix_client(&format!("{tag}i"), rt)?;
            (nd_client(&format!("{tag}n"), rt)?, i)
        };
        let after = line_round_trip_ns();
        let st = host_state(before, after);
        let pl = placement(n, i);
        println!(
            "  RPC 64 B call: ndring p50 {:>5} p99 {:>6} ns  iceoryx2 p50 {:>5} p99 {:>6} ns  \
             ndring/iceoryx2 p50 {:.2}  (line round trip {before} / {after} ns: {}; \
             replies from the client's CPU: ndring {:.0}%, iceoryx2 {:.0}%: {})",
            n.p50,
            n.p99,
            i.p50,
            i.p99,
            n.p50 as f64 / i.p50 as f64,
            match st {
                Some(HostState::Fast) => "fast",
                Some(HostState::Slow) => "slow",
                None => "flipped",
            },
            n.same_cpu * 100.0,
            i.same_cpu * 100.0,
            match pl {
                Placement::CrossCore => "cross-core",
                Placement::OneCore => "one core",
                Placement::Mixed => "mixed",
            }
        );
        if steps {
            nd_steps(&format!("{tag}s"), rt)?;
        }
        pairs.push((n, i, st, pl));
    }
    // Cross-core pairs by host state; one-core pairs (either state) apart; mixed pairs and pairs
    // during which the state flipped count nowhere.
    let cross = |want: HostState| move |p: &Row| p.2 == Some(want) && p.3 == Placement::CrossCore;
    let tables: [(&str, &str, Box<dyn Fn(&Row) -> bool>); 3] = [
        (
            "client and server on two cores, fast state (line round trip < 250 ns)",
            "",
            Box::new(cross(HostState::Fast)),
        ),
        (
            "client and server on two cores, slow state (line round trip >= 250 ns)",
            "slow_",
            Box::new(cross(HostState::Slow)),
        ),
        (
            "client and server on ONE core (unpinned; every hand-off waits for a yield)",
            "onecore_",
            Box::new(|p| p.3 == Placement::OneCore),
        ),
    ];
    for (name, key, keep) in tables {
        println!();
        println!("## {name}");
        println!();
        println!(
            "| workload | rounds | ndring p50 (median) | iceoryx2 p50 (median) | ndring p99 | iceoryx2 p99 | ndring / iceoryx2 p50 (median of per-round ratios) | min | max |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        let kept: Vec<&Row> = pairs.iter().filter(|p| keep(p)).collect();
        let label = "RPC 64 B request + 64 B reply, busy-poll, per call (ns)";
        if kept.is_empty() {
            println!("| {label} | 0 | | | | | | | |");
            continue;
        }
        let ratios: Vec<f64> = kept
            .iter()
            .map(|p| p.0.p50 as f64 / p.1.p50 as f64)
            .collect();
        let (lo, hi) = ratios
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)));
        let med = |f: &dyn Fn(&Row) -> u64| median(kept.iter().map(|p| f(p) as f64).collect());
        let (n50, i50) = (med(&|p| p.0.p50), med(&|p| p.1.p50));
        let (n99, i99) = (med(&|p| p.0.p99), med(&|p| p.1.p99));
        let r = median(ratios);
        println!(
            "| {label} | {} | {n50:.0} | {i50:.0} | {n99:.0} | {i99:.0} | {r:.2}× (below 1: ndring faster) | {lo:.2} | {hi:.2} |",
            kept.len()
        );
        println!("RESULT {key}ndring_rpc_p50_ns {n50:.1}");
        println!("RESULT {key}iceoryx2_rpc_p50_ns {i50:.1}");
        println!("RESULT {key}ndring_rpc_p99_ns {n99:.1}");
        println!("RESULT {key}iceoryx2_rpc_p99_ns {i99:.1}");
        println!("RESULT {key}ratio_rpc_p50 {r:.3}");
    }
    Ok(())
}

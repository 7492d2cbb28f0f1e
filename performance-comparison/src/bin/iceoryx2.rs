//! iceoryx2 (publish-subscribe, `ipc::Service`) between two PROCESSES on W1 (64-byte round trip,
//! busy-poll) and W3 (1920x1080x3 u8 frames written in full by the publisher, read in full and
//! checksummed by the subscriber, no loss) of `benches/ipc.rs`.
//!
//! The binary re-executes itself with a role argument (`w1-child`, `w3-child`) for the peer
//! process. Waits poll like `benches/ipc.rs` (a spin hint, a yield every 64 polls). Prints
//! human-readable lines and machine-readable `RESULT key value` lines.
//!
//! Environment: `PC_RUNS` (default 5), `PC_RT` (W1 round trips per run, default 20 000 plus
//! 2 000 warm-up), `PC_FRAMES` (W3 frames per run, default 200, the first 8 untimed).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use iceoryx2::prelude::*;

const SMALL: usize = 64;
const W1_WARM: usize = 2_000;
const FRAME_BYTES: usize = 1080 * 1920 * 3;
const FRAME_WARM: u64 = 8;
const W3_SLOTS: [usize; 3] = [2, 4, 8];

type Err = Box<dyn core::error::Error>;

fn env_num(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

#[inline]
fn spin_until<T>(mut ready: impl FnMut() -> Option<T>) -> T {
    let mut i = 0u32;
    loop {
        if let Some(v) = ready() {
            return v;
        }
        i = i.wrapping_add(1);
        if i % 64 == 63 {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn median<T: PartialOrd + Copy>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn checksum(bytes: &[u8]) -> u64 {
    bytes
        .chunks(1 << 16)
        .map(|c| c.iter().map(|&b| u32::from(b)).sum::<u32>() as u64)
        .sum()
}

fn frame_value(k: u64) -> u8 {
    (k % 255) as u8 + 1
}

fn spawn_child(args: &[String]) -> Child {
    let mut child = Command::new(std::env::current_exe().expect("current_exe"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    // Wait for the child's "ready" line: its ports exist.
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .expect("read child");
    assert_eq!(line.trim(), "ready", "child did not start");
    child
}

fn reap(mut child: Child) {
    let st = child.wait().expect("wait child");
    assert!(st.success(), "child failed: {st}");
}

fn node() -> Result<Node<ipc::Service>, Err> {
    Ok(NodeBuilder::new().create::<ipc::Service>()?)
}

// ------------------------------------------------------------------------------------------
// W1

fn w1_services(
    node: &Node<ipc::Service>,
    tag: &str,
) -> Result<
    (
        iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, [u8; SMALL], ()>,
        iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, [u8; SMALL], ()>,
    ),
    Err,
> {
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

fn w1_child(tag: &str, total: usize) -> Result<(), Err> {
    let node = node()?;
    let (ping, pong) = w1_services(&node, tag)?;
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

fn w1_run(run: usize, rt: usize) -> Result<Vec<u64>, Err> {
    let tag = format!("{}-w1-{run}", std::process::id());
    let total = W1_WARM + rt;
    let node = node()?;
    let (ping, pong) = w1_services(&node, &tag)?;
    let publ = ping.publisher_builder().create()?;
    let sub = pong.subscriber_builder().create()?;
    let child = spawn_child(&["w1-child".into(), tag.clone(), total.to_string()]);
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
        assert_eq!(r.payload()[SMALL - 1], i as u8);
        assert_eq!(&r.payload()[..8], &(i as u64).to_le_bytes());
        if i >= W1_WARM {
            lat.push(dt);
        }
    }
    reap(child);
    lat.sort_unstable();
    Ok(lat)
}

// ------------------------------------------------------------------------------------------
// W3

fn w3_service(
    node: &Node<ipc::Service>,
    tag: &str,
    slots: usize,
) -> Result<iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, [u8], ()>, Err>
{
    let name: ServiceName = format!("ndpc/{tag}/frames").as_str().try_into()?;
    Ok(node
        .service_builder(&name)
        .publish_subscribe::<[u8]>()
        .history_size(0)
        .enable_safe_overflow(false)
        .subscriber_max_buffer_size(slots)
        .subscriber_max_borrowed_samples(1)
        .max_publishers(1)
        .max_subscribers(1)
        .open_or_create()?)
}

fn w3_child(tag: &str, slots: usize, n: u64) -> Result<(), Err> {
    let node = node()?;
    let svc = w3_service(&node, tag, slots)?;
    let publ = svc
        .publisher_builder()
        .initial_max_slice_len(FRAME_BYTES)
        .max_loaned_samples(1)
        .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
        .create()?;
    while svc.dynamic_config().number_of_subscribers() < 1 {
        std::thread::sleep(Duration::from_millis(1));
    }
    println!("ready");
    for k in 0..n {
        let mut s = spin_until(|| publ.loan_slice_uninit(FRAME_BYTES).ok());
        let p = s.payload_mut();
        assert_eq!(p.len(), FRAME_BYTES);
        // Write every byte in place (a memset, like ndring's `fill`).
        // SAFETY: `p` is the loaned slice of `p.len()` MaybeUninit<u8>, exclusively ours until
        // `send`; writing bytes into it is always valid.
        unsafe { std::ptr::write_bytes(p.as_mut_ptr(), frame_value(k), p.len()) };
        // SAFETY: every byte of the payload was initialised just above.
        let s = unsafe { s.assume_init() };
        s.send()?;
    }
    Ok(())
}

fn w3_run(run: usize, slots: usize, n: u64) -> Result<f64, Err> {
    let tag = format!("{}-w3-{slots}-{run}", std::process::id());
    let node = node()?;
    let svc = w3_service(&node, &tag, slots)?;
    let sub = svc.subscriber_builder().buffer_size(slots).create()?;
    let child = spawn_child(&[
        "w3-child".into(),
        tag.clone(),
        slots.to_string(),
        n.to_string(),
    ]);
    let mut start = Instant::now();
    for k in 0..n {
        let s = spin_until(|| sub.receive().expect("receive"));
        let sum = checksum(s.payload());
        assert_eq!(s.payload().len(), FRAME_BYTES);
        assert_eq!(sum, FRAME_BYTES as u64 * frame_value(k) as u64, "frame {k} corrupt or lost");
        drop(s);
        if k == FRAME_WARM {
            start = Instant::now();
        }
    }
    let dt = start.elapsed().as_secs_f64();
    reap(child);
    Ok((n - FRAME_WARM - 1) as f64 / dt)
}

fn main() -> Result<(), Err> {
    set_log_level(LogLevel::Error);
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("w1-child") => return w1_child(&args[2], args[3].parse()?),
        Some("w3-child") => return w3_child(&args[2], args[3].parse()?, args[4].parse()?),
        _ => {}
    }
    let runs = env_num("PC_RUNS", 5).max(1);
    let rt = env_num("PC_RT", 20_000);
    let frames = env_num("PC_FRAMES", 200) as u64;
    println!("# iceoryx2 0.10 publish-subscribe, two processes, {runs} run(s)");

    let (mut p50, mut p99, mut p999) = (vec![], vec![], vec![]);
    for run in 0..runs {
        let lat = w1_run(run, rt)?;
        p50.push(percentile(&lat, 50.0));
        p99.push(percentile(&lat, 99.0));
        p999.push(percentile(&lat, 99.9));
        eprintln!("W1 run {}/{runs}: p50 {} ns", run + 1, p50[run]);
    }
    let (p50, p99, p999) = (median(p50), median(p99), median(p999));
    println!(
        "W1 iceoryx2 round trip, 64 B, busy-poll ({rt} rt/run): p50 {p50} ns, p99 {p99} ns, \
         p99.9 {p999} ns (medians over runs)"
    );
    println!("RESULT iceoryx2_w1_p50_ns {p50}");
    println!("RESULT iceoryx2_w1_p99_ns {p99}");
    println!("RESULT iceoryx2_w1_p999_ns {p999}");

    let mut rates: Vec<Vec<f64>> = vec![vec![]; W3_SLOTS.len()];
    for run in 0..runs {
        for (j, &slots) in W3_SLOTS.iter().enumerate() {
            let r = w3_run(run, slots, frames)?;
            eprintln!("W3 run {}/{runs}, buffer {slots}: {r:.1} frames/s", run + 1);
            rates[j].push(r);
        }
    }
    for (j, &slots) in W3_SLOTS.iter().enumerate() {
        let m = median(rates[j].clone());
        println!(
            "W3 iceoryx2 1080p frames, subscriber buffer {slots}: {m:.1} frames/s ({:.2} GB/s)",
            m * FRAME_BYTES as f64 / 1e9
        );
        println!("RESULT iceoryx2_w3_{slots}_frames_per_s {m:.1}");
    }
    Ok(())
}

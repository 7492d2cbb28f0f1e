//! The main job: stream 1920×1080×3 u8 frames from a producer process to a consumer process
//! through an SPSC ring in shared memory, zero-copy, and report what happened.
//!
//! ```text
//! cargo run --release --example stream [-- --seconds 3 --slots 4]
//! ```
//!
//! The example re-executes itself twice, as `producer` and `consumer`. The producer writes every
//! byte of each frame in place (row `y` of frame `n` holds `(n + y) % 256`) and puts the frame
//! number in the slot's metadata; the consumer checks every byte of every frame, checks that
//! frame numbers arrive consecutively, and measures publish-to-receive latency from the slot's
//! timestamp.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ndarray::Ix3;
use ndring::{Config, Consumer, Error, OpenOptions, Producer};

const SHAPE: (usize, usize, usize) = (1080, 1920, 3);

#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct FrameMeta {
    frame: u64,
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("producer") => args[3]
            .parse()
            .map_err(Into::into)
            .and_then(|seconds| producer(&args[2], args[4].parse().unwrap_or(4), seconds)),
        Some("consumer") => consumer(&args[2]),
        _ => orchestrate(&args[1..]),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn flag(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Creates the ring, starts the two processes, prints the report.
fn orchestrate(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let seconds = flag(args, "--seconds", 3);
    let slots = flag(args, "--slots", 4) as usize;
    let name = format!("/ndring-stream-{}", std::process::id());
    // The producer process creates the ring; the consumer waits for it to appear. (A launcher
    // that created the ring and let go of it would count as a producer that came and left.)
    let bytes = slots * (frame_bytes().div_ceil(128) * 128 + 128);
    println!(
        "ndring stream: {}x{}x{} u8 frames ({:.1} MB each), {slots}-slot SPSC ring {name} (~{:.1} MB), {seconds} s",
        SHAPE.0,
        SHAPE.1,
        SHAPE.2,
        frame_bytes() as f64 / 1e6,
        bytes as f64 / 1e6
    );
    let exe = std::env::current_exe()?;
    let consumer = Command::new(&exe)
        .args(["consumer", &name])
        .stdout(Stdio::piped())
        .spawn()?;
    let producer = Command::new(&exe)
        .args(["producer", &name, &seconds.to_string(), &slots.to_string()])
        .stdout(Stdio::piped())
        .spawn()?;
    let p = producer.wait_with_output()?;
    let c = consumer.wait_with_output()?;
    // The last process out removed the name; this is for a child that failed.
    let _ = ndring::remove(&name);
    if !p.status.success() || !c.status.success() {
        return Err(format!(
            "a child failed: producer {}, consumer {}",
            p.status, c.status
        )
        .into());
    }
    let produced: u64 = String::from_utf8(p.stdout)?.trim().parse()?;
    let report = String::from_utf8(c.stdout)?;
    let v: Vec<f64> = report
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(f64::NAN))
        .collect();
    let (received, elapsed, p50, p99, max) = (v[0] as u64, v[1], v[2], v[3], v[4]);
    let fps = received as f64 / elapsed;
    println!("frames produced   {produced}");
    println!("frames received   {received} (every byte verified)");
    println!("frames lost       {}", produced - received);
    println!(
        "throughput        {fps:.0} frames/s, {:.2} GB/s",
        fps * frame_bytes() as f64 / 1e9
    );
    println!("latency (publish to receive)  p50 {p50:.1} us, p99 {p99:.1} us, max {max:.1} us");
    if produced != received {
        return Err("frames were lost".into());
    }
    Ok(())
}

fn frame_bytes() -> usize {
    SHAPE.0 * SHAPE.1 * SHAPE.2
}

/// Creates the ring, writes frames in place for `seconds`, then closes; prints how many it
/// published.
fn producer(name: &str, slots: usize, seconds: u64) -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::spsc().slots(slots).timestamps(true);
    let mut tx = Producer::<u8, Ix3>::create(name, SHAPE, &config)?;
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut n = 0u64;
    while Instant::now() < end {
        let mut slot = tx.claim()?;
        // The slot is one contiguous C-order array: fill it row by row at memset speed.
        let row_len = SHAPE.1 * SHAPE.2;
        let bytes = slot.as_slice_mut().expect("slots are contiguous");
        for (y, row) in bytes.chunks_exact_mut(row_len).enumerate() {
            row.fill((n as usize + y) as u8);
        }
        slot.set_user_meta(&FrameMeta { frame: n })?;
        slot.publish();
        n += 1;
    }
    tx.close();
    println!("{n}");
    Ok(())
}

/// Receives until closed, verifying every byte; prints "frames seconds p50 p99 max" (latency in
/// microseconds).
fn consumer(name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let wait = OpenOptions::default().wait_for_creator(Duration::from_secs(60));
    let mut rx = Consumer::<u8, Ix3>::open_with(name, &wait)?;
    let mut latencies = Vec::with_capacity(1 << 20);
    let mut expected = 0u64;
    let mut start = None;
    loop {
        let slot = match rx.recv() {
            Ok(s) => s,
            Err(Error::Closed) => break,
            Err(e) => return Err(e.into()),
        };
        let now = ndring::now_ns();
        start.get_or_insert_with(Instant::now);
        latencies.push(now.saturating_sub(slot.timestamp_ns().unwrap_or(now)));
        let meta: FrameMeta = slot.user_meta()?;
        if meta.frame != expected {
            return Err(format!("expected frame {expected}, got {}", meta.frame).into());
        }
        let bytes = slot.as_slice().expect("slots are contiguous");
        for (y, row) in bytes.chunks_exact(SHAPE.1 * SHAPE.2).enumerate() {
            let v = (meta.frame as usize + y) as u8;
            // Folding with `|` over `^` vectorises; `all` with its early exit does not.
            if row.iter().fold(0u8, |acc, &b| acc | (b ^ v)) != 0 {
                return Err(format!("frame {} row {y} corrupt", meta.frame).into());
            }
        }
        expected += 1;
    }
    let elapsed = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
    latencies.sort_unstable();
    let pct = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |&ns| ns as f64 / 1e3)
    };
    println!(
        "{expected} {elapsed} {} {} {}",
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
    Ok(())
}

//! A camera that never waits: one writer process publishes 640×480×3 u8 frames at a fixed rate
//! to a broadcast ring; a fast subscriber process takes every frame, a slow one (an "object
//! detector" at 5 frames/s) takes only the newest. Runs a few seconds, then prints what each saw.
//!
//! ```text
//! cargo run --release --example camera [-- --seconds 3 --fps 120]
//! ```

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ndarray::Ix3;
use ndring::{BroadcastWriter, Config, Error, OpenOptions, Start, Subscriber};

const SHAPE: (usize, usize, usize) = (480, 640, 3);

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("writer") => (|| writer(&args[2], args[3].parse()?, args[4].parse()?))(),
        Some("fast") => fast(&args[2]),
        Some("slow") => slow(&args[2]),
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

/// Subscribers start with the writer: they wait for it to create the ring.
fn wait() -> OpenOptions {
    OpenOptions::default().wait_for_creator(Duration::from_secs(60))
}

fn flag(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn orchestrate(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let seconds = flag(args, "--seconds", 3);
    let fps = flag(args, "--fps", 120);
    let name = format!("/ndring-camera-{}", std::process::id());
    println!("camera: {fps} frames/s of {SHAPE:?} u8 for {seconds} s on broadcast ring {name}");
    let exe = std::env::current_exe()?;
    let spawn = |args: &[&str]| Command::new(&exe).args(args).stdout(Stdio::piped()).spawn();
    // The writer creates the ring; the subscribers wait for it to appear.
    let writer = spawn(&["writer", &name, &fps.to_string(), &seconds.to_string()])?;
    let fast = spawn(&["fast", &name])?;
    let slow = spawn(&["slow", &name])?;
    let mut failed = false;
    for (who, child) in [
        ("writer", writer),
        ("fast subscriber", fast),
        ("slow subscriber", slow),
    ] {
        let out = child.wait_with_output()?;
        failed |= !out.status.success();
        print!("{who:<16} {}", String::from_utf8_lossy(&out.stdout));
    }
    // The last process out removed the name; this is for one that failed.
    let _ = ndring::remove(&name);
    if failed {
        return Err("a process failed".into());
    }
    Ok(())
}

/// Creates the ring and publishes at `fps` for `seconds`; never waits for anyone.
fn writer(name: &str, fps: u64, seconds: u64) -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::broadcast().max_subscribers(4).slots(8);
    let mut w = BroadcastWriter::<u8, Ix3>::create(name, SHAPE, &config)?;
    // Let the subscribers attach before the first frame.
    std::thread::sleep(Duration::from_millis(300));
    let period = Duration::from_secs_f64(1.0 / fps as f64);
    let start = Instant::now();
    let mut next = start;
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(seconds) {
        let mut slot = w.claim();
        slot.fill((n % 256) as u8);
        slot.set_user_meta(&n)?;
        slot.publish();
        n += 1;
        next += period;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    w.close();
    println!("published {n} frames, {rate:.1} frames/s achieved");
    Ok(())
}

fn check(frame: &ndarray::ArrayView3<u8>, n: u64) -> Result<(), String> {
    let v = (n % 256) as u8;
    if frame.iter().all(|&b| b == v) {
        Ok(())
    } else {
        Err(format!("frame {n} corrupt"))
    }
}

/// Takes every frame, in order.
fn fast(name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut s = Subscriber::<u8, Ix3>::open_with(name, Start::Oldest, &wait())?;
    let mut received = 0u64;
    loop {
        match s.recv() {
            Ok(frame) => {
                check(&frame, frame.user_meta()?)?;
                received += 1;
            }
            Err(Error::Lagged { .. }) => {}
            Err(Error::Closed) => break,
            Err(e) => return Err(e.into()),
        }
    }
    println!(
        "received {received} frames, missed {} (lagged)",
        s.missed_total()
    );
    Ok(())
}

/// Takes only the newest frame, then "processes" it for 200 ms.
fn slow(name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut s = Subscriber::<u8, Ix3>::open_with(name, Start::Newest, &wait())?;
    let mut received = 0u64;
    loop {
        match s.latest() {
            Ok(frame) => {
                check(&frame, frame.user_meta()?)?;
                received += 1;
            }
            Err(Error::Closed) => break,
            Err(e) => return Err(e.into()),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!(
        "received {received} frames (latest only), skipped {}, missed {}",
        s.skipped_total(),
        s.missed_total()
    );
    Ok(())
}

//! A model server and its clients through shared memory, as Frigate's object detector does: each
//! camera process sends a 320×320×3 u8 tensor, the detector process answers with a (20, 6) f32
//! array of detections, and each camera gets the answer to its own request.
//!
//! ```text
//! cargo run --release --example detector [-- --cameras 2 --calls 500]
//! ```
//!
//! The example re-executes itself as the `detector` and as each `camera`. The "model" is a
//! stand-in that reads the whole tensor: the detection rows hold the tensor's checksum, so a
//! camera can check that the answer is the one to its request.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ndarray::{Array3, ArrayRef, ArrayViewMut2, Ix2, Ix3};
use ndring::{Client, Config, OpenOptions, Server};

type Detector = Server<u8, Ix3, f32, Ix2>;
type Camera = Client<u8, Ix3, f32, Ix2>;

const TENSOR: (usize, usize, usize) = (320, 320, 3);
const DETECTIONS: (usize, usize) = (20, 6);

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("detector") => detector(&args[2], args[3].parse().unwrap_or(0)),
        Some("camera") => camera(
            &args[2],
            args[3].parse().unwrap_or(0),
            args[4].parse().unwrap_or(0),
        ),
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

/// The stand-in model: every detection row holds the tensor's checksum and the camera's mark.
fn detect(tensor: &ArrayRef<u8, Ix3>, out: &mut ArrayViewMut2<f32>) {
    let sum: u64 = tensor
        .as_slice()
        .expect("a request is C order")
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()) % 1_000_003)
        .sum();
    out.fill((sum % 1_000_003) as f32);
    out[[0, 0]] = tensor[[0, 0, 0]] as f32;
}

/// Serves `calls` requests, then leaves.
fn detector(name: &str, calls: u64) -> Result<(), Box<dyn std::error::Error>> {
    let srv = Detector::create(name, TENSOR, DETECTIONS, &Config::rpc().clients(8))?;
    println!("ready");
    for _ in 0..calls {
        let mut req = srv.recv()?;
        let (tensor, mut out) = req.parts();
        detect(&tensor, &mut out);
        req.send();
    }
    Ok(())
}

/// Camera `id`: `calls` requests, each answer checked against its own tensor; prints the
/// median and 99th percentile round trip in µs.
fn camera(name: &str, id: u8, calls: u64) -> Result<(), Box<dyn std::error::Error>> {
    let cam = Camera::open_with(
        name,
        &OpenOptions::default().wait_for_creator(Duration::from_secs(10)),
    )?;
    let mut tensor = Array3::<u8>::zeros(TENSOR);
    let mut expected = ndarray::Array2::<f32>::zeros(DETECTIONS);
    let mut rtt = Vec::with_capacity(calls as usize);
    for i in 0..calls {
        tensor.fill((i as u8).wrapping_mul(7) ^ id);
        tensor[[0, 0, 0]] = id;
        detect(&tensor, &mut expected.view_mut());
        let t = Instant::now();
        let reply = cam.call(&tensor, Some(Duration::from_secs(10)))?;
        rtt.push(t.elapsed());
        if *reply != expected {
            return Err(format!("camera {id}: call {i} got an answer to another request").into());
        }
    }
    rtt.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "camera {id}: {calls} calls, every answer its own; round trip p50 {:.0} µs, p99 {:.0} µs",
        us(rtt[rtt.len() / 2]),
        us(rtt[rtt.len() * 99 / 100])
    );
    Ok(())
}

fn orchestrate(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let cameras = flag(args, "--cameras", 2);
    let calls = flag(args, "--calls", 500);
    let name = format!("/ndring-detector-{}", std::process::id());
    let me = std::env::current_exe()?;
    let start = Instant::now();
    let mut detector = Command::new(&me)
        .args(["detector", &name, &(cameras * calls).to_string()])
        .stdout(Stdio::null())
        .spawn()?;
    let cams: Vec<_> = (0..cameras)
        .map(|id| {
            Command::new(&me)
                .args(["camera", &name, &id.to_string(), &calls.to_string()])
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    let mut ok = true;
    for mut c in cams {
        ok &= c.wait()?.success();
    }
    ok &= detector.wait()?.success();
    println!(
        "{} calls of {cameras} cameras in {:.2} s",
        cameras * calls,
        start.elapsed().as_secs_f64()
    );
    if ok {
        Ok(())
    } else {
        Err("a process failed".into())
    }
}

//! A tokio program serving the newest camera frame over TCP, with no thread per ring: a camera
//! process writes 640×480×3 u8 frames to a broadcast ring; this process accepts TCP clients and
//! gives each a subscriber awaited with `recv_async`, writing every frame from its slot straight
//! to the socket (a 16-byte header: sequence number and length, then the pixels). A slow client
//! lags and jumps to the oldest frame still held. For the demonstration, two clients in this
//! process read for a few seconds and check every frame they get.
//!
//! ```text
//! cargo run --release --example frame_server [-- --seconds 3 --fps 60]
//! ```

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ndarray::Ix3;
use ndring::{BroadcastWriter, Config, Error, OpenOptions, Start, Subscriber};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SHAPE: (usize, usize, usize) = (480, 640, 3);
const BYTES: usize = SHAPE.0 * SHAPE.1 * SHAPE.2;

type Failure = Box<dyn std::error::Error + Send + Sync>;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("camera") => (|| camera(&args[2], args[3].parse()?, args[4].parse()?))(),
        _ => serve(&args[1..]),
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

/// The camera process: `fps` frames a second for `seconds`, each filled with its sequence
/// number's low byte (so that a client can check it), then closes the ring.
fn camera(name: &str, fps: u64, seconds: u64) -> Result<(), Failure> {
    let mut w = BroadcastWriter::<u8, Ix3>::create(name, SHAPE, &Config::broadcast().slots(8))?;
    let period = Duration::from_secs_f64(1.0 / fps as f64);
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut next = Instant::now();
    // Broadcast sequence numbers count from 1.
    let mut seq = 1u64;
    while Instant::now() < end {
        let mut frame = w.claim();
        frame.fill(seq as u8);
        assert_eq!(frame.publish(), seq);
        seq += 1;
        next += period;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    w.close();
    Ok(())
}

fn serve(args: &[String]) -> Result<(), Failure> {
    let seconds = flag(args, "--seconds", 3);
    let fps = flag(args, "--fps", 60);
    let name = format!("/ndring-fsrv-{}", std::process::id());
    let exe = std::env::current_exe()?;
    let mut cam = Command::new(exe)
        .args(["camera", &name, &fps.to_string(), &seconds.to_string()])
        .stdout(Stdio::inherit())
        .spawn()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        println!("frame_server: {fps} frames/s of {SHAPE:?} u8 on ring {name}, served on {addr}");
        let server = tokio::spawn(accept(listener, name.clone()));
        let clients: Vec<_> = (0..2).map(|i| tokio::spawn(client(i, addr))).collect();
        let mut total = 0;
        for c in clients {
            total += c.await??;
        }
        server.abort();
        Ok::<u64, Failure>(total)
    });
    let status = cam.wait()?;
    let total = result?;
    if !status.success() {
        return Err(format!("the camera process failed: {status}").into());
    }
    if total == 0 {
        return Err("no client received a frame".into());
    }
    Ok(())
}

/// Accepts clients, each served by a task of its own (on this one thread).
async fn accept(listener: TcpListener, name: String) -> Result<(), Failure> {
    loop {
        let (socket, _) = listener.accept().await?;
        let name = name.clone();
        tokio::spawn(async move {
            if let Err(e) = stream_frames(socket, &name).await {
                eprintln!("frame_server: a client's stream ended: {e}");
            }
        });
    }
}

/// Writes every frame to `socket`, from the ring's slot to the socket with no copy of ours.
async fn stream_frames(mut socket: TcpStream, name: &str) -> Result<(), Failure> {
    let wait = OpenOptions::default().wait_for_creator(Duration::from_secs(60));
    let mut sub = Subscriber::<u8, Ix3>::open_with(name, Start::Newest, &wait)?;
    loop {
        let frame = match sub.recv_async().await {
            Ok(frame) => frame,
            // A slow client: the frames it missed were overwritten; go on with the oldest held.
            Err(Error::Lagged { .. }) => continue,
            Err(Error::Closed) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let pixels = frame.as_slice().expect("a slot is contiguous");
        let mut header = [0u8; 16];
        header[..8].copy_from_slice(&frame.seq().to_le_bytes());
        header[8..].copy_from_slice(&(pixels.len() as u64).to_le_bytes());
        socket.write_all(&header).await?;
        // The slot stays pinned (the writer skips it) while the socket takes it.
        socket.write_all(pixels).await?;
    }
}

/// A client: reads frames until the server closes, checks each, prints its rate.
async fn client(id: usize, addr: std::net::SocketAddr) -> Result<u64, Failure> {
    let mut socket = TcpStream::connect(addr).await?;
    let mut frame = vec![0u8; BYTES];
    let (mut frames, mut last) = (0u64, 0u64);
    let start = Instant::now();
    loop {
        let mut header = [0u8; 16];
        match socket.read_exact(&mut header).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e.into()),
        }
        let seq = u64::from_le_bytes(header[..8].try_into()?);
        let len = u64::from_le_bytes(header[8..].try_into()?) as usize;
        if len != BYTES || seq <= last {
            return Err(format!("client {id}: frame {seq} of {len} bytes after {last}").into());
        }
        socket.read_exact(&mut frame).await?;
        if frame.iter().any(|&b| b != seq as u8) {
            return Err(format!("client {id}: frame {seq} is not whole").into());
        }
        (frames, last) = (frames + 1, seq);
    }
    let s = start.elapsed().as_secs_f64();
    println!(
        "client {id}: {frames} frames checked whole, {:.0} frames/s, last {last}",
        frames as f64 / s
    );
    Ok(frames)
}

//! Terminal 1 of 2: publishes 480×640×3 u8 frames at 30 frames/s to the ring named on the command
//! line (created if it does not exist, replaced if an earlier stream on it is over), until
//! Ctrl-C or `--frames N` (then it closes the ring).
//!
//! ```text
//! cargo run --release --example producer -- /cam0
//! cargo run --release --example consumer -- /cam0     # in another terminal, before or after
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

use ndarray::Ix3;
use ndring::{Config, Producer};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), ndring::Error> {
    let args: Vec<String> = std::env::args().collect();
    let name = args.get(1).map_or("/cam0", String::as_str);
    let frames: Option<u64> = args
        .iter()
        .position(|a| a == "--frames")
        .and_then(|i| args.get(i + 1)?.parse().ok());
    let mut tx = Producer::<u8, Ix3>::open_or_create(
        name,
        (480, 640, 3),
        &Config::spsc().slots(4).timestamps(true),
    )?;
    println!(
        "producing to {name}: shape {:?}, {} slots",
        tx.shape(),
        tx.segment().slot_count()
    );
    let period = Duration::from_secs_f64(1.0 / 30.0);
    let mut next = Instant::now();
    for n in 0.. {
        if frames.is_some_and(|f| n >= f) {
            break;
        }
        let mut slot = tx.claim()?;
        slot.fill((n % 256) as u8);
        slot.set_user_meta(&n)?;
        let seq = slot.publish();
        if n % 30 == 0 {
            println!("published frame {n} (seq {seq})");
        }
        next += period;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    // Consumers receive what is left, then `Closed`. (Killed instead, the producer leaves them
    // `Disconnected` within the grace period.)
    tx.close();
    Ok(())
}

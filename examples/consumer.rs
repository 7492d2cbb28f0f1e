//! Terminal 2 of 2: attaches to the ring named on the command line without knowing its shape
//! (waiting for the producer to create it, if it has not yet), prints its layout, then receives
//! frames until the producer closes the ring or goes away.
//!
//! ```text
//! cargo run --release --example consumer -- /cam0
//! ```

use std::process::ExitCode;
use std::time::Duration;

use ndarray::IxDyn;
use ndring::{Consumer, Error, OpenOptions, Segment};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Error> {
    let name = std::env::args().nth(1).unwrap_or_else(|| "/cam0".into());
    // Sleeps (inotify, no polling) until the producer creates the ring, at most an hour.
    let wait = OpenOptions::default().wait_for_creator(Duration::from_secs(3600));
    let seg = Segment::open_with(&name, &wait)?;
    println!(
        "attached to {name}: {} of {} {:?}, {} slots",
        seg.kind(),
        seg.dtype(),
        seg.shape(),
        seg.slot_count()
    );
    let mut rx = Consumer::<u8, IxDyn>::from_segment(seg)?;
    loop {
        match rx.recv() {
            Ok(frame) => {
                let n: u64 = frame.user_meta()?;
                if n % 30 == 0 {
                    let age = match frame.timestamp_ns() {
                        Some(t) => format!(
                            "{} us after publish",
                            ndring::now_ns().saturating_sub(t) / 1000
                        ),
                        None => "no timestamp".into(),
                    };
                    println!("frame {n}: first byte {}, {age}", frame[[0, 0, 0]]);
                }
            }
            Err(Error::Closed) => {
                println!("the producer closed the ring");
                return Ok(());
            }
            Err(Error::Disconnected { .. }) => {
                println!("the producer went away without closing the ring");
                return Ok(());
            }
            Err(e) => return Err(e),
        }
    }
}

//! Terminal 2 of 2: attaches to the ring named on the command line without knowing its shape,
//! prints its layout, then receives frames until the producer closes the ring.
//!
//! ```text
//! cargo run --release --example consumer -- /cam0
//! ```

use std::time::Duration;

use ndarray::IxDyn;
use ndring::{Consumer, Error, Segment};

fn main() -> Result<(), Error> {
    let name = std::env::args().nth(1).unwrap_or_else(|| "/cam0".into());
    // Wait for the producer to create the ring, if it has not yet.
    let seg = loop {
        match Segment::open(&name, Duration::from_secs(2)) {
            Ok(seg) => break seg,
            Err(Error::NotFound { .. }) => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => return Err(e),
        }
    };
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
                println!("producer closed the ring");
                return Ok(());
            }
            Err(e) => return Err(e),
        }
    }
}

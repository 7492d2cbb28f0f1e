//! The code of one hand-off, counted: `N` cycles of claim, fill, publish, recv and release of a
//! 64-byte array in one thread, for an instruction counter (the W1 benchmark's busy-poll round
//! trip is two of these plus two cache-line transfers; on this shared 2-core host only
//! instruction counts are stable enough to compare changes to the hot path).
//!
//! ```text
//! cargo build --release --example handoff
//! valgrind --tool=callgrind --toggle-collect='*handoff*cycles*' \
//!     target/release/examples/handoff spsc 100000
//! ```
//!
//! Instructions per cycle = the `Ir` callgrind reports / `N` (only `cycles` is counted).

use ndarray::Ix1;
use ndring::{Config, Consumer, Producer};

const SMALL: usize = 64;

/// `n` hand-offs, as W1's busy-poll loop makes them (without the clock and the peer).
#[inline(never)]
fn cycles(tx: &mut Producer<u8, Ix1>, rx: &mut Consumer<u8, Ix1>, n: u64) -> u64 {
    let mut sum = 0u64;
    for i in 0..n {
        let mut w = tx.claim().expect("claim");
        w.fill(i as u8);
        w.publish();
        let r = rx.recv().expect("recv");
        sum += u64::from(r[SMALL - 1]);
    }
    sum
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let kind = args.get(1).map(String::as_str).unwrap_or("spsc");
    let n: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let config = match kind {
        "mpmc" => Config::mpmc(),
        _ => Config::spsc(),
    }
    .spin(u32::MAX);
    let name = format!("/ndr-handoff-{}", std::process::id());
    let mut tx = Producer::<u8, Ix1>::create(&name, SMALL, &config).expect("create");
    let mut rx = Consumer::<u8, Ix1>::open(&name).expect("open");
    // Warm up (the SPSC sides go plain after 64 quiet publishes), then count.
    cycles(&mut tx, &mut rx, 1000);
    let sum = cycles(&mut tx, &mut rx, n);
    println!("{kind}: {n} cycles, checksum {sum}");
}

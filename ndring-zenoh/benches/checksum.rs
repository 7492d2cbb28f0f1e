//! What the end-to-end checksum costs per frame, by frame size: xxh3 of a frame alone (the
//! sending side hashes a held slot), and copy-with-checksum (the receiving side, chunk by chunk
//! into the slot) against a plain copy, interleaved round by round.
//!
//! `cargo bench --bench checksum`; `NDZ_BENCH_ROUNDS` (default 5).

use std::hint::black_box;
use std::time::Instant;

use ndring_zenoh::checksum::{copy_and_checksum, frame_checksum};

/// Nanoseconds per call of `f`, over about 0.2 s.
fn per_call(mut f: impl FnMut()) -> f64 {
    f();
    let mut n = 1u64;
    loop {
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        let t = start.elapsed();
        if t.as_millis() >= 200 {
            return t.as_nanos() as f64 / n as f64;
        }
        n *= 2;
    }
}

fn main() {
    let rounds: u32 = std::env::var("NDZ_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let sizes = [
        ("64 B", 64usize),
        ("300 kB", 300_000),
        ("VGA 921,600 B", 640 * 480 * 3),
        ("1080p 6,220,800 B", 1920 * 1080 * 3),
    ];
    println!(
        "size | round | xxh3 alone (ns, GB/s) | plain copy (ns) | copy + xxh3 (ns) | copy + xxh3 / copy"
    );
    for (name, len) in sizes {
        let src: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
        let mut dst = vec![0u8; len];
        for round in 1..=rounds {
            let hash = per_call(|| {
                black_box(frame_checksum(1, [black_box(&src[..])], b""));
            });
            let copy = per_call(|| {
                dst.copy_from_slice(black_box(&src));
                black_box(&dst);
            });
            let both = per_call(|| {
                black_box(copy_and_checksum(1, [black_box(&src[..])], &mut dst, b""));
            });
            println!(
                "{name} | {round} | {hash:.0} ({:.1}) | {copy:.0} | {both:.0} | {:.2}x",
                len as f64 / hash,
                both / copy
            );
        }
    }
}

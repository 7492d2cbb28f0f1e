//! The host-state probe benchmarks print beside their figures: the round trip of one cache line
//! bounced between two threads (~90-120 ns in this host's fast state, ~500 ns in its slow one),
//! as the Rust benches' `line_round_trip_ns` measures it between two processes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::*};
use std::time::Instant;

use pyo3::prelude::*;

/// A line of its own, so that nothing else shares it.
#[repr(align(128))]
struct Line(AtomicU32);

/// Spins until `line` holds `want`, yielding every 64 polls so that a peer sharing the core runs
/// (as the benches' raw baselines do).
fn await_value(line: &Line, want: u32) {
    let mut i = 0u32;
    while line.0.load(Acquire) != want {
        i = i.wrapping_add(1);
        if i % 64 == 0 {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

/// Median round trip in nanoseconds of a cache line bounced `round_trips` times between this
/// thread and a helper thread (the GIL released meanwhile). For benchmark reports only.
#[pyfunction]
#[pyo3(signature = (round_trips=2000))]
pub fn _line_round_trip_ns(py: Python<'_>, round_trips: u32) -> u64 {
    let round_trips = round_trips.clamp(1, 1 << 20);
    py.detach(|| {
        let line = Arc::new(Line(AtomicU32::new(0)));
        let peer = {
            let line = line.clone();
            std::thread::spawn(move || {
                for i in 0..round_trips {
                    await_value(&line, 2 * i + 1);
                    line.0.store(2 * i + 2, Release);
                }
            })
        };
        let mut ns: Vec<u64> = (0..round_trips)
            .map(|i| {
                let t = Instant::now();
                line.0.store(2 * i + 1, Release);
                await_value(&line, 2 * i + 2);
                t.elapsed().as_nanos() as u64
            })
            .collect();
        // The peer ends once it answered the last ping, which we just saw.
        let _ = peer.join();
        ns.sort_unstable();
        ns[ns.len() / 2]
    })
}

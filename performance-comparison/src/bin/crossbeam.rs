//! In-process ceiling: crossbeam `ArrayQueue<[u8; 64]>` between two threads, and ndring SPSC
//! between two threads of the same process, on W1 (64-byte round trip, busy-poll) and W2 (one-way
//! 64-byte items/s) of `benches/ipc.rs`.
//!
//! Waits poll like the raw baselines of `benches/ipc.rs`: a spin hint, and a `yield` every 64
//! polls so that a peer sharing the core can run (the machine may have 2 cores). Nothing is
//! pinned. Prints human-readable lines and machine-readable `RESULT key value` lines.
//!
//! Environment: `PC_RUNS` (default 5), `PC_ITEMS` (W2 items, default 1 000 000), `PC_RT` (W1
//! round trips, default 20 000, plus 2 000 warm-up).

use std::sync::Arc;
use std::thread;
use std::time::Instant;

use crossbeam_queue::ArrayQueue;
use ndarray::Ix1;
use ndring::{Config, Consumer, Error, Producer};

const SMALL: usize = 64;
const SLOTS: usize = 64;
const W1_WARM: usize = 2_000;

fn env_num(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// A spin hint, a yield every 64 polls (as in benches/ipc.rs).
#[inline]
fn spin_until<T>(mut ready: impl FnMut() -> Option<T>) -> T {
    let mut i = 0u32;
    loop {
        if let Some(v) = ready() {
            return v;
        }
        i = i.wrapping_add(1);
        if i % 64 == 63 {
            thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

fn item(i: u64) -> [u8; SMALL] {
    let mut b = [i as u8; SMALL];
    b[..8].copy_from_slice(&i.to_le_bytes());
    b
}

fn item_index(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn median_u64(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

// ------------------------------------------------------------------------------------------
// W1: round trip, crossbeam.

fn w1_crossbeam(rt: usize) -> Vec<u64> {
    let ping = Arc::new(ArrayQueue::<[u8; SMALL]>::new(SLOTS));
    let pong = Arc::new(ArrayQueue::<[u8; SMALL]>::new(SLOTS));
    let total = W1_WARM + rt;
    let echo = {
        let (ping, pong) = (ping.clone(), pong.clone());
        thread::spawn(move || {
            for _ in 0..total {
                let v = spin_until(|| ping.pop());
                let mut v = v;
                while let Err(back) = pong.push(v) {
                    v = back;
                    std::hint::spin_loop();
                }
            }
        })
    };
    let mut lat = Vec::with_capacity(rt);
    for i in 0..total {
        let t = Instant::now();
        let _ = ping.push(item(i as u64));
        let r = spin_until(|| pong.pop());
        let dt = t.elapsed().as_nanos() as u64;
        assert_eq!(r[SMALL - 1], i as u8);
        if i >= W1_WARM {
            lat.push(dt);
        }
    }
    echo.join().unwrap();
    lat.sort_unstable();
    lat
}

// ------------------------------------------------------------------------------------------
// W2: one-way rate.

/// Items/s timed from item n/10 to the last, as in benches/ipc.rs.
fn w2_crossbeam(n: u64) -> f64 {
    let q = Arc::new(ArrayQueue::<[u8; SMALL]>::new(SLOTS));
    let prod = {
        let q = q.clone();
        thread::spawn(move || {
            for i in 0..n {
                let mut v = item(i);
                let mut k = 0u32;
                while let Err(back) = q.push(v) {
                    v = back;
                    k = k.wrapping_add(1);
                    if k % 64 == 63 {
                        thread::yield_now();
                    } else {
                        std::hint::spin_loop();
                    }
                }
            }
        })
    };
    let warm = n / 10;
    let mut start = Instant::now();
    for i in 0..n {
        let b = spin_until(|| q.pop());
        assert_eq!(item_index(&b), i, "item out of order");
        assert_eq!(b[SMALL - 1], i as u8);
        if i == warm {
            start = Instant::now();
        }
    }
    let dt = start.elapsed().as_secs_f64();
    prod.join().unwrap();
    (n - warm - 1) as f64 / dt
}

fn w2_ndring(n: u64, run: usize) -> f64 {
    let name = format!("/ndpc-{}-{run}", std::process::id());
    let mut rx =
        Consumer::<u8, Ix1>::create(&name, SMALL, &Config::spsc().slots(SLOTS)).expect("create");
    let prod = {
        let name = name.clone();
        thread::spawn(move || {
            let mut tx = Producer::<u8, Ix1>::open(&name).expect("open");
            for i in 0..n {
                let mut w = tx.claim().expect("claim");
                w.as_slice_mut()
                    .expect("contiguous")
                    .copy_from_slice(&item(i));
                w.publish();
            }
            tx.close();
        })
    };
    let warm = n / 10;
    let mut start = Instant::now();
    let mut buf = [0u8; SMALL];
    let mut i = 0u64;
    loop {
        match rx.recv() {
            Ok(r) => {
                buf.copy_from_slice(r.as_slice().expect("contiguous"));
                assert_eq!(item_index(&buf), i, "item out of order");
                assert_eq!(buf[SMALL - 1], i as u8);
                if i == warm {
                    start = Instant::now();
                }
                i += 1;
            }
            Err(Error::Closed) => break,
            Err(e) => panic!("recv: {e}"),
        }
    }
    let dt = start.elapsed().as_secs_f64();
    assert_eq!(i, n);
    prod.join().unwrap();
    (n - warm - 1) as f64 / dt
}

fn main() {
    let runs = env_num("PC_RUNS", 5).max(1);
    let n = env_num("PC_ITEMS", 1_000_000) as u64;
    let rt = env_num("PC_RT", 20_000);
    let cores = thread::available_parallelism().map_or(0, |c| c.get());
    println!("# crossbeam / ndring in-process, {cores} core(s), {runs} run(s)");

    // W1
    let (mut p50, mut p99, mut p999) = (vec![], vec![], vec![]);
    for _ in 0..runs {
        let lat = w1_crossbeam(rt);
        p50.push(percentile(&lat, 50.0));
        p99.push(percentile(&lat, 99.0));
        p999.push(percentile(&lat, 99.9));
    }
    let (p50, p99, p999) = (median_u64(p50), median_u64(p99), median_u64(p999));
    println!(
        "W1 crossbeam ArrayQueue round trip, 64 B, busy-poll ({rt} rt/run): \
         p50 {p50} ns, p99 {p99} ns, p99.9 {p999} ns (medians over runs)"
    );
    println!("RESULT crossbeam_w1_p50_ns {p50}");
    println!("RESULT crossbeam_w1_p99_ns {p99}");
    println!("RESULT crossbeam_w1_p999_ns {p999}");

    // W2, variants interleaved within each run.
    let (mut cb, mut nd) = (vec![], vec![]);
    for run in 0..runs {
        cb.push(w2_crossbeam(n));
        nd.push(w2_ndring(n, run));
        eprintln!(
            "W2 run {}/{runs}: crossbeam {:.2} M/s, ndring {:.2} M/s",
            run + 1,
            cb[run] / 1e6,
            nd[run] / 1e6
        );
    }
    let (cb, nd) = (median(cb), median(nd));
    println!(
        "W2 one-way 64 B, {SLOTS} slots, {n} items, two threads: crossbeam ArrayQueue {:.2} M items/s, \
         ndring spsc {:.2} M items/s, ratio ndring/crossbeam {:.2}",
        cb / 1e6,
        nd / 1e6,
        nd / cb
    );
    println!("RESULT crossbeam_w2_items_per_s {cb:.0}");
    println!("RESULT ndring_inproc_w2_items_per_s {nd:.0}");
    println!("RESULT ndring_inproc_over_crossbeam_w2 {:.3}", nd / cb);
}

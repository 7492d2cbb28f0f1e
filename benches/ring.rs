//! In-process cost of the ring operations (criterion).
//!
//! * `ring-64B/<kind>/pair`: claim + write 64 bytes + publish, then recv + read + release (the
//!   release of a `ReadSlot` is lazy: it happens at the consumer's next call), one item in flight,
//!   producer and consumer on the same thread. Per item.
//! * `ring-64B/<kind>/claim_publish` and `ring-64B/<kind>/recv_release`: the two halves measured
//!   separately over batches of 32 items (only the half named is timed).
//! * `ring-64B/reference/now_ns`: one `ndring::now_ns()`, the clock read every `publish` makes
//!   (to timestamp the slot), for scale.
//! * `ring-64B-threaded/<kind>`: a producer thread streams items to the consumer on the bench
//!   thread; per item.
//! * `ring-frame/...`: a 1920x1080x3 `u8` frame (shape `(1080, 1920, 3)`), every byte written
//!   with `fill` and every byte read by a checksum, one frame in flight; `baseline-vec` does the
//!   same fill + checksum on a plain heap array, the floor for the others.
//!
//! `<kind>` is `spsc`, `mpmc` or `broadcast` (a `BroadcastWriter` and a `Subscriber` opened with
//! `Start::Oldest`). Run with `cargo bench --bench ring` (`-- --quick` for a short run).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ndarray::{Array3, Ix1, Ix3};
use ndring::{BroadcastWriter, Config, Consumer, Producer, Start, Subscriber};

/// Elements of the small item.
const SMALL: usize = 64;
/// Slots of the rings of small items.
const SMALL_SLOTS: usize = 64;
/// Items per timed batch of the `claim_publish` / `recv_release` halves.
const BATCH: u64 = 32;
/// A 1920x1080 RGB frame: rows, columns, channels.
const FRAME: (usize, usize, usize) = (1080, 1920, 3);
const FRAME_BYTES: usize = FRAME.0 * FRAME.1 * FRAME.2;

/// A segment name unique to this process and `tag`.
fn seg_name(tag: &str) -> String {
    let name = format!("/ndrb-{}-{}", std::process::id(), tag);
    assert!(name.len() <= ndring::MAX_NAME_LEN, "name too long: {name}");
    name
}

/// Sum of all bytes: reads every byte (u32 partial sums over chunks that cannot overflow
/// vectorise well).
fn checksum(bytes: &[u8]) -> u64 {
    bytes
        .chunks(1 << 16)
        .map(|c| c.iter().map(|&b| u32::from(b)).sum::<u32>() as u64)
        .sum()
}

/// A queue ring (SPSC or MPMC) of 64-byte items, both ends in this process.
fn queue_pair(tag: &str, config: &Config) -> (Producer<u8, Ix1>, Consumer<u8, Ix1>) {
    let name = seg_name(tag);
    let tx = Producer::<u8, Ix1>::create(&name, SMALL, config).expect("create ring");
    let rx = Consumer::<u8, Ix1>::open(&name).expect("open ring");
    (tx, rx)
}

fn bench_queue_small(c: &mut Criterion, kind: &str, config: Config) {
    let config = config.slots(SMALL_SLOTS);
    let (mut tx, mut rx) = queue_pair(&format!("{kind}-s"), &config);
    let mut g = c.benchmark_group("ring-64B");
    g.throughput(Throughput::Elements(1));

    let mut i = 0u8;
    g.bench_function(format!("{kind}/pair"), |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let mut w = tx.claim().expect("claim");
            w.fill(i);
            w.publish();
            let r = rx.recv().expect("recv");
            black_box(r[0] as u32 + r[SMALL - 1] as u32)
        })
    });

    g.bench_function(format!("{kind}/claim_publish"), |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let n = BATCH.min(iters - done);
                let t = Instant::now();
                for k in 0..n {
                    let mut w = tx.claim().expect("claim");
                    w.fill(k as u8);
                    w.publish();
                }
                timed += t.elapsed();
                for _ in 0..n {
                    black_box(rx.recv().expect("recv")[0]);
                }
                // Releases the last item received (release is lazy).
                assert!(rx.try_recv().is_err());
                done += n;
            }
            timed
        })
    });

    g.bench_function(format!("{kind}/recv_release"), |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let n = BATCH.min(iters - done);
                for k in 0..n {
                    let mut w = tx.claim().expect("claim");
                    w.fill(k as u8);
                    w.publish();
                }
                let t = Instant::now();
                for _ in 0..n {
                    let r = rx.recv().expect("recv");
                    black_box(r[0] as u32 + r[SMALL - 1] as u32);
                }
                assert!(rx.try_recv().is_err());
                timed += t.elapsed();
                done += n;
            }
            timed
        })
    });
    g.finish();
}

fn bench_broadcast_small(c: &mut Criterion) {
    let name = seg_name("bc-s");
    let config = Config::broadcast().slots(SMALL_SLOTS);
    let mut w = BroadcastWriter::<u8, Ix1>::create(&name, SMALL, &config).expect("create");
    let mut s = Subscriber::<u8, Ix1>::open(&name, Start::Oldest).expect("open");
    let mut g = c.benchmark_group("ring-64B");
    g.throughput(Throughput::Elements(1));

    let mut i = 0u8;
    g.bench_function("broadcast/pair", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let mut slot = w.claim();
            slot.fill(i);
            slot.publish();
            let r = s.recv().expect("recv");
            black_box(r[0] as u32 + r[SMALL - 1] as u32)
        })
    });

    // Batches well below the slot count: the subscriber never lags.
    g.bench_function("broadcast/claim_publish", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let n = BATCH.min(iters - done);
                let t = Instant::now();
                for k in 0..n {
                    let mut slot = w.claim();
                    slot.fill(k as u8);
                    slot.publish();
                }
                timed += t.elapsed();
                for _ in 0..n {
                    black_box(s.recv().expect("recv")[0]);
                }
                done += n;
            }
            timed
        })
    });

    g.bench_function("broadcast/recv_release", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let n = BATCH.min(iters - done);
                for k in 0..n {
                    let mut slot = w.claim();
                    slot.fill(k as u8);
                    slot.publish();
                }
                let t = Instant::now();
                for _ in 0..n {
                    let r = s.recv().expect("recv");
                    black_box(r[0] as u32 + r[SMALL - 1] as u32);
                }
                timed += t.elapsed();
                done += n;
            }
            timed
        })
    });
    g.finish();
}

fn bench_small(c: &mut Criterion) {
    // Reference: the clock read that `publish` stamps every slot with.
    let mut g = c.benchmark_group("ring-64B");
    g.throughput(Throughput::Elements(1));
    g.bench_function("reference/now_ns", |b| b.iter(ndring::now_ns));
    g.finish();
    bench_queue_small(c, "spsc", Config::spsc());
    bench_queue_small(c, "mpmc", Config::mpmc());
    bench_broadcast_small(c);
}

/// A producer thread streams `iters` items; the bench thread receives them.
fn bench_threaded(c: &mut Criterion) {
    let mut g = c.benchmark_group("ring-64B-threaded");
    g.throughput(Throughput::Elements(1));
    for (kind, config) in [("spsc", Config::spsc()), ("mpmc", Config::mpmc())] {
        let (mut tx, mut rx) = queue_pair(&format!("{kind}-t"), &config.slots(SMALL_SLOTS));
        g.bench_function(kind, |b| {
            b.iter_custom(|iters| {
                std::thread::scope(|scope| {
                    let tx = &mut tx;
                    scope.spawn(move || {
                        for k in 0..iters {
                            let mut w = tx.claim().expect("claim");
                            w.fill(k as u8);
                            w.publish();
                        }
                    });
                    let t = Instant::now();
                    for k in 0..iters {
                        let r = rx.recv().expect("recv");
                        assert_eq!(r[SMALL - 1], k as u8);
                    }
                    let elapsed = t.elapsed();
                    assert!(rx.try_recv().is_err());
                    elapsed
                })
            })
        });
    }
    g.finish();
}

fn bench_frames(c: &mut Criterion) {
    let mut g = c.benchmark_group("ring-frame");
    g.throughput(Throughput::Bytes(FRAME_BYTES as u64))
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));

    let mut plain = Array3::<u8>::zeros(FRAME);
    let mut i = 0u8;
    g.bench_function("baseline-vec", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            plain.fill(i);
            let sum = checksum(plain.as_slice().expect("contiguous"));
            assert_eq!(sum, FRAME_BYTES as u64 * i as u64);
        })
    });

    for (kind, config) in [("spsc", Config::spsc()), ("mpmc", Config::mpmc())] {
        let name = seg_name(&format!("{kind}-f"));
        let mut tx = Producer::<u8, Ix3>::create(&name, FRAME, &config.slots(4)).expect("create");
        let mut rx = Consumer::<u8, Ix3>::open(&name).expect("open");
        g.bench_function(format!("{kind}/pair"), |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                let mut w = tx.claim().expect("claim");
                w.fill(i);
                w.publish();
                let r = rx.recv().expect("recv");
                let sum = checksum(r.as_slice().expect("contiguous"));
                assert_eq!(sum, FRAME_BYTES as u64 * i as u64);
            })
        });
    }

    let name = seg_name("bc-f");
    let config = Config::broadcast().max_subscribers(2).slots(4);
    let mut w = BroadcastWriter::<u8, Ix3>::create(&name, FRAME, &config).expect("create");
    let mut s = Subscriber::<u8, Ix3>::open(&name, Start::Oldest).expect("open");
    g.bench_function("broadcast/pair", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let mut slot = w.claim();
            slot.fill(i);
            slot.publish();
            let r = s.recv().expect("recv");
            let sum = checksum(r.as_slice().expect("contiguous"));
            assert_eq!(sum, FRAME_BYTES as u64 * i as u64);
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench_small, bench_threaded, bench_frames
}
criterion_main!(benches);

//! SPSC consumers SIGKILLed at random points, each replaced by a new consumer process that takes
//! the role over: no item is delivered twice, every item is the one its sequence number names,
//! and the only items lost are those a dead consumer held.
//!
//! Each consumer child writes every sequence number it receives to its stdout (a pipe to this
//! process) and flushes it before its next receive, which is what releases the item: whatever
//! the parent read from a consumer, that consumer received. Consumers use `recv`,
//! `recv_timeout`, `try_recv` loops, and the lease API holding several items at once and
//! releasing them out of order. Some kills land right after a child says it is about to open
//! the ring, to hit the takeover itself (the successor of a dead consumer killed in turn).
//! Failures replay with `NDRING_SEED`.

mod common;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{Rng, command, name, pattern, seed, trial};
use ndarray::Ix1;
use ndring::{Config, Consumer, Error, LeaseConsumer, OpenOptions, Producer, ReadLease};

const LEN: usize = 8;
const SLOTS: usize = 4;
const GRACE: Duration = Duration::from_millis(20);
const ROUNDS: u64 = 300;
/// A deadlock guard, not a timing check.
const LIMIT: Duration = Duration::from_secs(120);

fn main() -> std::process::ExitCode {
    common::main(
        &[("consume", consume)],
        vec![
            trial("spsc_consumers_killed_at_random_points", || {
                consumers_killed(false)
            }),
            trial("spsc_consumers_killed_with_recent_slot_reuse", || {
                consumers_killed(true)
            }),
        ],
    )
}

/// How a consumer child receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Recv,
    Timeout,
    Try,
    /// Up to this many leases held at once, dropped in random order.
    Lease(u64),
}

impl Mode {
    fn pick(rng: &mut Rng) -> Mode {
        match rng.below(4) {
            0 => Mode::Recv,
            1 => Mode::Timeout,
            2 => Mode::Try,
            _ => Mode::Lease(1 + rng.below(SLOTS as u64 - 1)),
        }
    }

    fn arg(self) -> String {
        match self {
            Mode::Recv => "recv".into(),
            Mode::Timeout => "timeout".into(),
            Mode::Try => "try".into(),
            Mode::Lease(k) => format!("lease{k}"),
        }
    }

    fn parse(s: &str) -> Mode {
        match s {
            "recv" => Mode::Recv,
            "timeout" => Mode::Timeout,
            "try" => Mode::Try,
            _ => Mode::Lease(s.strip_prefix("lease").unwrap().parse().unwrap()),
        }
    }

    /// The most items a consumer of this mode holds at once: what its death may lose.
    fn holds(self) -> u64 {
        match self {
            Mode::Lease(k) => k,
            _ => 1,
        }
    }
}

/// Writes one line to stdout (a pipe to the parent) and flushes it at once.
fn say(line: std::fmt::Arguments) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

/// Checks an item's payload and reports its sequence number and first element; then keeps it a
/// while (up to `hold` µs, spinning), so that consumers are mostly killed holding items and the
/// ring is mostly full.
fn report(seq: u64, s: &[u64], hold: u64) {
    let i = s[1];
    for (j, v) in s.iter().enumerate().skip(2) {
        assert_eq!(*v, pattern(0, i, j), "item {i} (seq {seq}) corrupt");
    }
    say(format_args!("{seq} {}", s[0]));
    let until = Instant::now() + Duration::from_micros(hold);
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

/// Child: a consumer (`mode`) that takes the role over and reports every item it receives,
/// until the ring is closed. Arguments: ring, mode, seed.
fn consume(a: &[String]) {
    let mode = Mode::parse(&a[1]);
    let mut rng = Rng(a[2].parse().unwrap());
    // A panic reaches the parent through the pipe (the exit status may be SIGKILL's, if the
    // kill came while the panic was being reported).
    let report_panic = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        say(format_args!("panic {info}"));
        report_panic(info);
    }));
    say(format_args!("opening"));
    let options = OpenOptions::default()
        .grace(GRACE)
        .spin(rng.below(100) as u32);
    let mut rx = Consumer::<u64, Ix1>::open_with(&a[0], &options).expect("take the consumer role");
    match mode {
        Mode::Lease(k) => {
            let mut rx = LeaseConsumer::from(rx);
            let mut held: VecDeque<ReadLease<u64, Ix1>> = VecDeque::new();
            loop {
                let got = match rng.below(3) {
                    0 => rx.recv_lease(),
                    1 => rx.recv_lease_timeout(Duration::from_micros(rng.below(2000))),
                    _ => rx.try_recv_lease(),
                };
                match got {
                    Ok(lease) => {
                        report(
                            lease.seq(),
                            lease.view().as_slice().unwrap(),
                            rng.below(100),
                        );
                        held.push_back(lease);
                        if held.len() as u64 >= k {
                            // Out of order: the oldest stays held until its turn comes.
                            let i = rng.below(held.len() as u64) as usize;
                            drop(held.remove(i));
                        }
                    }
                    Err(Error::Closed) => return,
                    Err(Error::Timeout | Error::Empty) => std::hint::spin_loop(),
                    // The ring is full and its oldest item is ours: let it go.
                    Err(Error::TooManyLeases { .. }) => drop(held.pop_front()),
                    Err(e) => panic!("{e}"),
                }
            }
        }
        _ => loop {
            let got = match mode {
                Mode::Recv => rx.recv(),
                Mode::Timeout => rx.recv_timeout(Duration::from_micros(rng.below(2000))),
                _ => rx.try_recv(),
            };
            match got {
                Ok(s) => report(s.seq(), s.as_slice().unwrap(), rng.below(100)),
                Err(Error::Closed) => return,
                Err(Error::Timeout | Error::Empty) => std::hint::spin_loop(),
                Err(e) => panic!("{e}"),
            }
        },
    }
}

/// What one consumer child reported: the sequence numbers and first elements of its items.
struct Reported {
    mode: Mode,
    items: Vec<(u64, u64)>,
    status: ExitStatus,
}

/// Starts a consumer child; returns it, a receiver of its lines, and the thread reading them.
fn start(
    ring: &str,
    mode: Mode,
    seed: u64,
) -> (
    std::process::Child,
    mpsc::Receiver<String>,
    thread::JoinHandle<()>,
) {
    let mut child = command("consume", &[ring, &mode.arg(), &seed.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let (lines, got) = mpsc::channel();
    let reader = thread::spawn(move || {
        for line in out.lines() {
            if lines.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    (child, got, reader)
}

/// Parses a child's lines (after it exited and its pipe was read to the end).
fn parse(lines: mpsc::Receiver<String>) -> Vec<(u64, u64)> {
    lines
        .into_iter()
        .filter(|l| l != "opening")
        .map(|l| {
            assert!(!l.starts_with("panic"), "a consumer child failed: {l}");
            let (seq, first) = l.split_once(' ').unwrap();
            (seq.parse().unwrap(), first.parse().unwrap())
        })
        .collect()
}

/// Producer thread: item `i` (sequence `i + 1`) is `[i, i, pattern..]`, with random short pauses
/// (so consumers are sometimes killed asleep), until `stop`; then closes the ring.
fn produce(mut tx: Producer<u64, Ix1>, seed: u64, stop: Arc<AtomicBool>, sent: Arc<AtomicU64>) {
    let mut rng = Rng(seed);
    let mut i = 0u64;
    while !stop.load(Relaxed) {
        let mut s = match tx.claim_timeout(Duration::from_millis(5)) {
            Ok(s) => s,
            // A dead consumer (or none yet): its successor takes the role over.
            Err(Error::Timeout | Error::Disconnected { .. }) => continue,
            Err(e) => panic!("{e}"),
        };
        s[0] = i;
        s[1] = i;
        for j in 2..LEN {
            s[j] = pattern(0, i, j);
        }
        s.publish();
        i += 1;
        sent.store(i, Relaxed);
        if rng.below(256) == 0 {
            thread::sleep(Duration::from_micros(rng.below(1000)));
        }
    }
    tx.close();
}

fn consumers_killed(recent: bool) {
    let n = name(if recent { "take-r" } else { "take-c" });
    let config = Config::spsc().slots(SLOTS).grace(GRACE);
    let mut tx = Producer::<u64, Ix1>::create(&n, LEN, &config).unwrap();
    tx.reuse_recent_slots(recent);
    let mut rng = Rng(seed());
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let producer = {
        let (stop, sent, seed) = (stop.clone(), sent.clone(), rng.below(u64::MAX) | 1);
        thread::spawn(move || produce(tx, seed, stop, sent))
    };
    let mut reports = Vec::new();
    for _ in 0..ROUNDS {
        let mode = Mode::pick(&mut rng);
        let (mut child, lines, reader) = start(&n, mode, rng.below(u64::MAX) | 1);
        // Timed from the child's word that it opens the ring (its start-up takes milliseconds);
        // half the kills aim at the takeover itself.
        let opening = lines.recv_timeout(LIMIT).expect("the child starts");
        assert_eq!(opening, "opening");
        let window = if rng.below(2) == 0 { 200 } else { 5000 };
        thread::sleep(Duration::from_micros(rng.below(window)));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        reader.join().unwrap();
        let items = parse(lines);
        reports.push(Reported {
            mode,
            items,
            status,
        });
    }
    // A last consumer takes over, receives until the ring is closed, and exits.
    let (mut last, lines, reader) = start(&n, Mode::Recv, 1);
    let before = sent.load(Relaxed);
    common::eventually(
        LIMIT,
        "the producer publishes after the last takeover",
        || sent.load(Relaxed) > before + 2 * SLOTS as u64,
    );
    stop.store(true, Relaxed);
    producer.join().unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = last.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > LIMIT {
            let _ = last.kill();
            panic!("the last consumer did not drain the closed ring within {LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(1));
    };
    assert!(status.success(), "the last consumer failed: {status}");
    reader.join().unwrap();
    let last_items = parse(lines);
    check(&reports, &last_items, sent.load(Relaxed));
}

/// Across all consumers, in the order they ran: every item is the one its sequence names, no
/// sequence is delivered twice or out of order, and a gap between what one consumer got and
/// the next one got is at most what the dead consumers in between could hold.
fn check(reports: &[Reported], last: &[(u64, u64)], sent: u64) {
    for r in reports {
        // Killed, never exited (a panic was reported through the pipe, see `parse`).
        assert!(r.status.code().is_none(), "{:?}: {}", r.mode, r.status);
    }
    let mut prev: Option<u64> = None;
    // Items the consumers since the last one that reported could have held when they died.
    let mut may_lose = 0;
    let mut delivered = 0u64;
    let mut dup = None;
    for (c, (items, mode)) in reports
        .iter()
        .map(|r| (&r.items[..], r.mode))
        .chain([(last, Mode::Recv)])
        .enumerate()
    {
        for &(seq, first) in items {
            assert_eq!(
                first + 1,
                seq,
                "sequence {seq} delivered item {first} (consumer {c}, {mode:?})"
            );
            if let Some(p) = prev {
                if seq <= p {
                    dup.get_or_insert((p, seq, c, mode));
                }
                assert!(
                    seq <= p || seq - p - 1 <= may_lose,
                    "items {}..{seq} lost, more than the {may_lose} the dead consumers held",
                    p + 1
                );
            }
            prev = Some(seq);
            may_lose = 0;
            delivered += 1;
        }
        may_lose += mode.holds();
    }
    if let Some((p, seq, c, mode)) = dup {
        let history: Vec<String> = reports[c.saturating_sub(6)..c.min(reports.len())]
            .iter()
            .map(|r| match (r.items.first(), r.items.last()) {
                (Some(a), Some(b)) => format!("{:?} {}..={}", r.mode, a.0, b.0),
                _ => format!("{:?} none", r.mode),
            })
            .collect();
        panic!(
            "sequence {seq} delivered again after {p} (consumer {c}, {mode:?}); the consumers \
             before it: {history:?}"
        );
    }
    assert_eq!(prev, Some(sent), "the last consumer drained the stream");
    let killed_with_items = reports.iter().filter(|r| !r.items.is_empty()).count();
    eprintln!(
        "{} consumers killed ({killed_with_items} after receiving), {delivered} of {sent} items \
         delivered",
        reports.len()
    );
}

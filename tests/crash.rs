//! Processes killed with SIGKILL at random points: the survivors keep streaming, every delivered
//! item is intact, none is delivered twice, and the only items lost are those the dead held.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{Rng, command, name, pattern, seed, trial};
use ndarray::Ix1;
use ndring::{Config, Consumer, Error, OpenOptions, Producer};

const LEN: usize = 8;
const GRACE: Duration = Duration::from_millis(20);
const ROUNDS: u64 = 100;
/// A survivor that waits in slices waits this long per call: well under the grace period, so
/// that no single call ever waits a whole one (recovery must not depend on it).
const SLICE: Duration = Duration::from_millis(5);
/// Deadlock guard for one item (not a timing check): recovery takes about a grace period.
const STALL: Duration = Duration::from_secs(60);

/// How the surviving side waits.
#[derive(Clone, Copy, Debug)]
enum Waits {
    /// One blocking call.
    Blocking,
    /// Calls with a timeout of `SLICE`, as a stoppable worker (or the Python binding) waits.
    Sliced,
    /// Non-blocking calls in a loop.
    Polling,
}

/// Calls `attempt(Some(SLICE))` (sliced), `attempt(Some(ZERO))` (polling) or `attempt(None)`
/// (blocking) until it returns something other than `Timeout`, `Full` or `Empty`; fails if that
/// takes longer than `STALL`.
fn retry<R>(
    waits: Waits,
    mut attempt: impl FnMut(Option<Duration>) -> Result<R, Error>,
) -> Result<R, Error> {
    let start = std::time::Instant::now();
    loop {
        let r = match waits {
            Waits::Blocking => attempt(None),
            Waits::Sliced => attempt(Some(SLICE)),
            Waits::Polling => attempt(Some(Duration::ZERO)),
        };
        match r {
            Err(Error::Timeout | Error::Full | Error::Empty) => {
                assert!(
                    start.elapsed() < STALL,
                    "no progress for {STALL:?} waiting {waits:?}: dead peer never recovered"
                );
                if let Waits::Polling = waits {
                    std::thread::yield_now();
                }
            }
            other => return other,
        }
    }
}

fn main() -> std::process::ExitCode {
    common::main(
        &[("stream", stream), ("take-one", take_one)],
        vec![
            trial("spsc_producers_killed_at_random_points", || {
                producers_killed(false, Waits::Blocking)
            }),
            trial("mpmc_producers_killed_at_random_points", || {
                producers_killed(true, Waits::Blocking)
            }),
            trial("mpmc_producers_killed_consumer_waits_in_slices", || {
                producers_killed(true, Waits::Sliced)
            }),
            trial("mpmc_producers_killed_consumer_polls", || {
                producers_killed(true, Waits::Polling)
            }),
            trial("spsc_producers_killed_consumer_waits_in_slices", || {
                producers_killed(false, Waits::Sliced)
            }),
            trial("mpmc_consumers_killed_holding_a_slot", || {
                consumers_killed(Waits::Blocking)
            }),
            trial("mpmc_consumers_killed_producer_waits_in_slices", || {
                consumers_killed(Waits::Sliced)
            }),
            trial("mpmc_consumers_killed_producer_polls", || {
                consumers_killed(Waits::Polling)
            }),
        ],
    )
}

/// Child: producer generation `generation` streams items `[generation, i, pattern..]` forever, or `count`
/// items and then closes the ring.
fn stream(a: &[String]) {
    let generation: u64 = a[1].parse().unwrap();
    let count: Option<u64> = a.get(2).map(|c| c.parse().unwrap());
    let mut tx = Producer::<u64, Ix1>::open_with(&a[0], &OpenOptions::default().grace(GRACE))
        .expect("take the producer role");
    for i in 0..count.unwrap_or(u64::MAX) {
        let mut s = tx.claim().unwrap();
        s[0] = generation;
        s[1] = i;
        for j in 2..LEN {
            s[j] = pattern(generation, i, j);
        }
        s.publish();
    }
    tx.close();
}

fn kill(mut c: Child) {
    c.kill().unwrap();
    c.wait().unwrap();
}

/// Receives until closed; returns, per generation, the item numbers in arrival order.
fn collect(mut rx: Consumer<u64, Ix1>, waits: Waits) -> BTreeMap<u64, Vec<u64>> {
    let mut seen: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    loop {
        let got = retry(waits, |t| match t {
            None => rx.recv().map(|s| s.to_owned()),
            Some(Duration::ZERO) => rx.try_recv().map(|s| s.to_owned()),
            Some(t) => rx.recv_timeout(t).map(|s| s.to_owned()),
        });
        match got {
            Ok(s) => {
                let (generation, i) = (s[0], s[1]);
                for j in 2..LEN {
                    assert_eq!(
                        s[j],
                        pattern(generation, i, j),
                        "item ({generation}, {i}) corrupt"
                    );
                }
                seen.entry(generation).or_default().push(i);
            }
            Err(Error::Closed) => return seen,
            // Between a killed producer and its successor: not final, wait for the next one.
            Err(Error::Disconnected { .. }) => thread::sleep(Duration::from_millis(1)),
            Err(e) => panic!("{e}"),
        }
    }
}

fn producers_killed(mpmc: bool, waits: Waits) {
    let n = name(&format!("kill-{}-{waits:?}", if mpmc { "m" } else { "s" }));
    let _rm = common::RemoveOnDrop(n.clone());
    let config = if mpmc { Config::mpmc() } else { Config::spsc() }
        .slots(4)
        .grace(GRACE);
    let rx = Consumer::<u64, Ix1>::create(&n, LEN, &config).unwrap();
    let receiver = thread::spawn(move || collect(rx, waits));
    let mut rng = Rng(seed());
    for generation in 0..ROUNDS {
        let child = command("stream", &[&n, &generation.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        thread::sleep(Duration::from_micros(rng.below(3000)));
        kill(child);
    }
    // A last producer takes the role over, sends 100 items and closes.
    let last = command("stream", &[&n, &ROUNDS.to_string(), "100"])
        .status()
        .unwrap();
    assert!(last.success());
    let seen = receiver.join().unwrap();
    // Each generation's items arrive in order, each once, with no gap: a dead producer loses
    // only the item it had claimed and not published, which was never visible.
    for (generation, items) in &seen {
        let expected: Vec<u64> = (0..items.len() as u64).collect();
        assert_eq!(
            items, &expected,
            "generation {generation}: items lost, repeated or reordered"
        );
    }
    assert_eq!(seen[&ROUNDS].len(), 100);
    eprintln!(
        "{} generations delivered items after {} kills",
        seen.len(),
        ROUNDS
    );
}

/// Child: a consumer that takes one item, says so, and hangs holding it.
fn take_one(a: &[String]) {
    let mut rx = Consumer::<u64, Ix1>::open(&a[0]).unwrap();
    let s = rx.recv().unwrap();
    println!("{}", s[1]);
    thread::sleep(Duration::from_secs(60));
}

fn consumers_killed(waits: Waits) {
    const KILLS: u64 = 50;
    let n = name(&format!("kill-c-{waits:?}"));
    let _rm = common::RemoveOnDrop(n.clone());
    let config = Config::mpmc().slots(2).grace(GRACE);
    let mut tx = Producer::<u64, Ix1>::create(&n, LEN, &config).unwrap();
    let mut rx = Consumer::<u64, Ix1>::open_with(&n, &OpenOptions::default().grace(GRACE)).unwrap();
    let (mut held, mut received) = (vec![], vec![]);
    let mut next = 0u64;
    let mut send = |tx: &mut Producer<u64, Ix1>| {
        // Waits for the dead consumer's slot to be recovered.
        retry(waits, |t| {
            let mut s = match t {
                None => tx.claim(),
                Some(Duration::ZERO) => tx.try_claim(),
                Some(t) => tx.claim_timeout(t),
            }?;
            s[0] = 0;
            s[1] = next;
            for j in 2..LEN {
                s[j] = pattern(0, next, j);
            }
            s.publish();
            Ok(())
        })
        .unwrap();
        next += 1;
    };
    for _ in 0..KILLS {
        send(&mut tx);
        let mut child = command("take-one", &[&n])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let (lines, got) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        thread::spawn(move || {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).unwrap();
            let _ = lines.send(line);
        });
        let line = got
            .recv_timeout(Duration::from_secs(60))
            .expect("child took an item");
        held.push(line.trim().parse::<u64>().unwrap());
        kill(child);
        // Two more items fill both slots' next lap: the second claim needs the dead consumer's
        // slot back, which a producer blocked past the grace period recovers.
        for _ in 0..2 {
            send(&mut tx);
            // recv_into releases the slot at once (a ReadSlot would keep it until our next
            // call, and this thread's next claim would wait for it).
            let mut s = ndarray::Array1::<u64>::zeros(LEN);
            rx.recv_into(&mut s).unwrap();
            for j in 2..LEN {
                assert_eq!(s[j], pattern(0, s[1], j));
            }
            received.push(s[1]);
        }
    }
    tx.close();
    while let Ok(s) = rx.recv() {
        received.push(s[1]);
    }
    let mut all: Vec<u64> = held.iter().chain(&received).copied().collect();
    all.sort_unstable();
    let expected: Vec<u64> = (0..next).collect();
    assert_eq!(all, expected, "an item was lost or delivered twice");
    assert!(rx.segment().stats().recovered_reads >= KILLS);
}

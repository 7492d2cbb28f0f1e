//! Model check of the disconnect wake-up (`RUSTFLAGS="--cfg loom"`): the last producer leaving
//! never leaves a consumer asleep, and the consumer receives everything published before the
//! producer left before it reports `Disconnected`.
//!
//! The same model runs against two broken variants of the leave/re-check pair, and must fail
//! for each: that shows the ordering and the wake-up it relies on are both necessary.
#![cfg(loom)]

mod support;

use loom::sync::Arc;
use loom::sync::atomic::Ordering::*;
use loom::thread;
use ndring::header::PeerEntry;
use ndring::protocol::spsc::{self, Stop};
use ndring::protocol::{Notifier, bump, has_waiters, peers};
use support::{Mem, sleep_until};

const PRODUCER: u8 = 1;
const CONSUMER: u8 = 2;

/// What the consumer saw, in order.
#[derive(Debug, PartialEq)]
enum Seen {
    Item(u64),
    Disconnected,
}

/// How the producer leaves and the consumer checks for a producer.
#[derive(Clone, Copy, PartialEq)]
enum Variant {
    /// The protocol as written: `release` clears the owner with an RMW, the sleeper re-reads it
    /// with an RMW (`attached(.., strong = true)`), the leaver wakes sleepers.
    Real,
    /// The owner cleared with a plain store and re-read with a plain load: store buffering
    /// lets each side miss the other.
    PlainStoreAndLoad,
    /// The RMWs, but the leaver does not wake sleepers.
    NoWake,
    /// `seen` read before the owners: a producer can register, mark itself seen and leave
    /// between the stale `seen` and the sleep.
    SeenFirst,
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    support::model(2, f);
}

/// The producer leaves its entry.
fn leave(v: Variant, m: &Mem, e: &PeerEntry) {
    match v {
        Variant::PlainStoreAndLoad => {
            e.start_time.store(0, Release);
            e.owner.store(0, Release);
        }
        Variant::Real | Variant::NoWake | Variant::SeenFirst => peers::release(e),
    }
    // What `peers::unregister` does next: wake the consumers, if any sleeps.
    if v != Variant::NoWake && has_waiters(&m.control.not_empty) {
        bump(&m.control.not_empty);
    }
}

/// Whether the producer (entry 0 of an SPSC ring) is gone: `peers::gone`, as `consumer.rs`
/// asks it, or a broken variant.
fn gone(v: Variant, m: &Mem, strong: bool) -> bool {
    match v {
        Variant::Real | Variant::NoWake => peers::gone(m, 0..1, PRODUCER, strong),
        Variant::PlainStoreAndLoad => {
            m.peers[0].owner.load(Acquire) == 0 && peers::seen(m, PRODUCER)
        }
        Variant::SeenFirst => {
            peers::seen(m, PRODUCER) && !peers::attached(m, 0..1, PRODUCER, strong)
        }
    }
}

/// A producer publishes `items` (0 or 1) and leaves without closing; a consumer receives until
/// `Disconnected`. `registered`: the producer registered before the consumer starts; otherwise
/// it registers in its own thread, racing the consumer's first looks.
fn disconnect(v: Variant, items: u64, registered: bool) {
    let m = Arc::new(Mem::new(2, 2, false));
    let register = |m: &Mem| {
        peers::try_take(&m.peers[0], peers::owner_word(10, PRODUCER), 0).unwrap();
        peers::mark_seen(m, PRODUCER);
    };
    if registered {
        register(&m);
    }
    peers::try_take(&m.peers[1], peers::owner_word(11, CONSUMER), 0).unwrap();
    let m2 = m.clone();
    let p = thread::spawn(move || {
        if !registered {
            register(&m2);
        }
        let mut p = spsc::Producer::attach(&*m2, Notifier::new(false, 0));
        for i in 0..items {
            let (_, slot) = p.try_claim(&m2.control, false).unwrap();
            m2.write(slot, 7 + i);
            if p.publish(&*m2) {
                bump(&m2.control.not_empty);
            }
        }
        p.retire(&m2.control);
        leave(v, &m2, &m2.peers[0]);
    });
    let mut c = spsc::Consumer::attach(&*m, Notifier::new(false, 0));
    let mut seen = vec![];
    loop {
        let got = sleep_until(&m.control.not_empty, |strong| {
            match c.try_recv(&*m, strong) {
                Ok((_, slot)) => Some(Seen::Item(m.read(slot))),
                Err(Stop::Closed) => unreachable!("nobody closes"),
                // `peers::disconnected`, then the re-check that `consumer.rs` makes.
                Err(Stop::Wait) if gone(v, &m, strong) => match c.try_recv(&*m, true) {
                    Ok((_, slot)) => Some(Seen::Item(m.read(slot))),
                    Err(_) => Some(Seen::Disconnected),
                },
                Err(Stop::Wait) => None,
            }
        });
        let done = got == Seen::Disconnected;
        if !done {
            c.release(&m.control);
        }
        seen.push(got);
        if done {
            break;
        }
    }
    let mut expected: Vec<Seen> = (0..items).map(|i| Seen::Item(7 + i)).collect();
    expected.push(Seen::Disconnected);
    assert_eq!(seen, expected);
    p.join().unwrap();
}

#[test]
fn last_producer_leaving_never_leaves_a_consumer_asleep() {
    // Registered first, one item: everything published is received before Disconnected.
    model(|| disconnect(Variant::Real, 1, true));
}

#[test]
fn a_producer_that_comes_and_goes_while_the_consumer_looks_still_wakes_it() {
    model(|| disconnect(Variant::Real, 0, false));
}

/// The model must fail without what it relies on; otherwise it proves nothing.
#[test]
fn the_model_fails_without_the_rmws_or_without_the_wake() {
    for (v, registered) in [
        (Variant::PlainStoreAndLoad, true),
        (Variant::NoWake, true),
        (Variant::SeenFirst, false),
    ] {
        let run = move || model(move || disconnect(v, 0, registered));
        let Err(panic) = std::panic::catch_unwind(run) else {
            panic!("a broken variant passed the model");
        };
        // The failure is a consumer left asleep (spinning on an unchanged epoch forever),
        // not some other assertion.
        let msg = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        assert!(msg.contains("maximum number of branches"), "{msg}");
    }
}

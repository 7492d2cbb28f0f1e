//! SPSC slot reuse across real processes: a producer that rewrites the slot released most
//! recently (`Producer::reuse_recent_slots`), or the slots in turn; delivery must stay FIFO and
//! exactly once, and no slot may be rewritten while the consumer holds it.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{finish, name, pattern, spawn, trial};
use ndarray::Ix1;
use ndring::{Config, Consumer, Error, Producer};

const LONG: Duration = Duration::from_secs(120);
/// u64 words per item (128 KiB).
const WORDS: usize = 16 * 1024;
const ITEMS: u64 = 2_000;

fn main() -> std::process::ExitCode {
    common::main(
        &[("large-producer", large_producer)],
        vec![
            trial(
                "large_items_stay_fifo_and_whole_while_recent_slots_are_reused",
                || large_items(8, "recent"),
            ),
            trial("large_items_on_two_slots_recent_first", || {
                large_items(2, "recent")
            }),
            trial("large_items_slots_in_turn", || large_items(8, "turn")),
        ],
    )
}

/// Child: sends `count` items, item `i` holding `pattern(7, i, j)` in word `j`, then closes.
fn large_producer(a: &[String]) {
    let count: u64 = a[1].parse().unwrap();
    let mut tx = Producer::<u64, Ix1>::open(&a[0]).unwrap();
    tx.reuse_recent_slots(a[2] == "recent");
    for i in 0..count {
        let mut s = tx.claim().unwrap();
        for (j, w) in s.as_slice_mut().unwrap().iter_mut().enumerate() {
            *w = pattern(7, i, j);
        }
        s.publish();
    }
    tx.close();
}

fn large_items(slots: usize, reuse: &str) {
    let n = name(&format!("reuse{slots}{reuse}"));
    let mut rx = Consumer::<u64, Ix1>::create(&n, WORDS, &Config::spsc().slots(slots)).unwrap();
    let child = spawn("large-producer", &[&n, &ITEMS.to_string(), reuse]);
    let mut expected = 0u64;
    let mut used = HashSet::new();
    loop {
        match rx.recv() {
            Ok(s) => {
                used.insert(s.slot_index());
                let words = s.as_slice().unwrap();
                let check = |when: &str| {
                    for (j, &w) in words.iter().enumerate() {
                        assert_eq!(
                            w,
                            pattern(7, expected, j),
                            "item {expected} word {j} {when}"
                        );
                    }
                };
                check("at receipt");
                // Hold some items a while: the producer fills every other slot meanwhile, and
                // must not touch this one.
                if expected % 97 == 0 {
                    std::thread::sleep(Duration::from_millis(2));
                    check("after holding it");
                }
                assert_eq!(s.seq(), expected + 1);
                expected += 1;
            }
            Err(Error::Closed) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(expected, ITEMS);
    assert!(used.iter().all(|&d| d < slots));
    finish(child, LONG);
}

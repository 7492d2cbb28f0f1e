//! A copy of a ring's newest item, taken from outside the protocol: no role, no pin, no store,
//! so that it works on a read-only mapping and never disturbs the ring.
//!
//! It is a seqlock read: find the newest published item and its slot, copy the payload and the
//! slot's timestamp with relaxed atomic loads (a concurrent rewrite makes the copy stale, never
//! undefined behaviour), `fence(Acquire)`, then check that the slot cannot have been rewritten meanwhile; if it may
//! have been, discard the copy and try again.
//!
//! * Broadcast (`protocol::broadcast::try_copy_newest`, under a loom model): the writer sets
//!   `WRITING` in the stamp and fences (Release) before it rewrites a slot, so an unchanged
//!   stamp proves the copy whole (as `Subscriber::recv_into`).
//! * Shared array: the lock-free copy-out of `protocol::array` (`copy_begin`, `copy_end`).
//! * Queues: a producer marks nothing when it starts to rewrite a slot; in turn it may only do
//!   so for position `pos + slots`, which it claims when `tail` reaches `pos + slots` (SPSC) or
//!   by moving `tail` past it (MPMC). So the copy of position `pos` is whole if `tail` is still
//!   below `pos + slots` after the copy, and the slot's stamp still names `pos`. The newest item
//!   is the one furthest from being rewritten (`slots − 1` publishes away). An SPSC producer
//!   that reuses slots out of turn (recent-first; the ring's `out_of_turn` mark says one has)
//!   rewrites a released slot only once its item is no longer the newest: the copy is then
//!   whole if, afterwards, `tail` is still `pos + 1` or `head` still at most `pos`. This check relies on the
//!   producer's `tail` store becoming visible no later than its next payload stores (true on x86,
//!   whose stores are seen in order, and for fenced publishes everywhere); in the language's
//!   memory model it is the usual seqlock caveat for a writer whose stores are not atomics.
//! * MPMC: the newest position whose stamp says published (`pos + 1`) or released
//!   (`pos + slots`). A released item cannot be told from a released tombstone (an abandoned
//!   claim), whose bytes are whatever its producer left.

use crate::error::{Error, Result};
use crate::header::CLOSED;
use crate::layout::RingKind;
use crate::protocol::array;
use crate::protocol::broadcast::{self, NewestCopy};
use crate::protocol::copy::atomic_copy;
use crate::protocol::spsc::OUT_OF_TURN;
use crate::sync::{Ordering::*, fence};

use super::Inspector;
use crate::shm::segment::Segment;

/// Attempts before giving up with `Error::Timeout` (each one is a copy overtaken by the
/// producer; a ring rewritten faster than one item can be copied never yields one).
const ATTEMPTS: u32 = 10_000;

/// What [`Inspector::copy_newest`] copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Newest {
    /// The item's sequence number: its position + 1 (queues), its frame number (broadcast).
    pub seq: u64,
    /// The item's slot.
    pub slot: usize,
    /// Publish time (`ndring::now_ns` clock), on rings created with timestamps.
    pub timestamp_ns: Option<u64>,
    /// Copies discarded because the producer overtook them.
    pub retries: u32,
}

impl Inspector {
    /// Copies the newest published item into `dst` (`payload_bytes()` long, the array in C
    /// order) without taking it: nothing in the ring changes, and a queue item stays there for
    /// its consumer. The item may already have been consumed (its bytes stay until its slot is
    /// reused). `Err(Empty)` if nothing was ever published; `Err(Timeout)` if the producer
    /// overtook 10,000 copies in a row.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-newest-{}", std::process::id());
    /// let mut w = BroadcastWriter::<u16, ndarray::Ix1>::create(&name, 2, &Config::broadcast())?;
    /// let ring = ndring::inspect::Inspector::open(&name)?;
    /// let mut buf = vec![0u8; ring.payload_bytes()];
    /// assert!(matches!(ring.copy_newest(&mut buf), Err(Error::Empty)));
    /// w.send(&ndarray::arr1(&[1u16, 2]).view())?;
    /// w.send(&ndarray::arr1(&[3u16, 4]).view())?;
    /// assert_eq!(ring.copy_newest(&mut buf)?.seq, 2);
    /// assert_eq!(buf, [3u8, 0, 4, 0]);
    /// # let _ = ndring::remove(&name); // items left unread keep the name
    /// # Ok::<(), Error>(())
    /// ```
    pub fn copy_newest(&self, dst: &mut [u8]) -> Result<Newest> {
        if dst.len() != self.payload_bytes() {
            return Err(Error::InvalidConfig(format!(
                "a buffer of {} bytes cannot hold an item of {} bytes",
                dst.len(),
                self.payload_bytes()
            )));
        }
        for retries in 0..ATTEMPTS {
            let found = match self.kind() {
                RingKind::Broadcast => self.try_copy_frame(dst)?,
                RingKind::Spsc | RingKind::Mpmc => self.try_copy_item(dst)?,
                RingKind::Array => self.try_copy_array(dst),
                // Calls are not a stream: no newest item to show.
                RingKind::Rpc => {
                    return Err(Error::KindMismatch {
                        expected: "a ring or a shared array",
                        found: RingKind::Rpc,
                    });
                }
            };
            if let Some((seq, slot, timestamp_ns)) = found {
                return Ok(Newest {
                    seq,
                    slot,
                    timestamp_ns,
                    retries,
                });
            }
            if retries % 16 == 15 {
                std::thread::yield_now();
            }
        }
        Err(Error::Timeout)
    }

    /// The item's control words that [`Newest`] reports (its timestamp), loaded as the payload
    /// is: relaxed, between the copy and the `fence(Acquire)` before the check that the slot was
    /// not rewritten meanwhile, so that they belong to the item whose bytes were copied. (Read
    /// after the check, they could belong to the next item written into the slot.)
    fn copy_ctrl(&self, s: usize) -> Option<u64> {
        self.layout()
            .params
            .timestamps
            .then(|| self.map().slot(s).timestamp_ns.load(Relaxed))
    }

    /// One attempt on a shared array: `Some((version, 0, None))` if `dst` holds the array as no
    /// writer was changing it: `protocol::array::copy_begin`/`copy_end`, by loads only (a
    /// read-only mapping). A `RANGES` flag left by range writers that are gone does not stop it:
    /// the range writers' counts in the peer table are looked at.
    fn try_copy_array(&self, dst: &mut [u8]) -> Option<(u64, usize, Option<u64>)> {
        let seg: &Segment = self;
        let begun = array::copy_begin(seg, false).ok()?;
        let version = array::version(seg);
        // SAFETY: slot 0's payload lies inside the mapping, 128-aligned; atomic loads only.
        unsafe { atomic_copy(self.map().payload(0), dst) };
        array::copy_end(seg, begun).then_some((version, 0, None))
    }

    /// One attempt on a broadcast ring: `Some((seq, slot, timestamp))` if `dst` now holds frame
    /// `seq` whole (`protocol::broadcast::try_copy_newest`).
    fn try_copy_frame(&self, dst: &mut [u8]) -> Result<Option<(u64, usize, Option<u64>)>> {
        let mut timestamp_ns = None;
        let seg: &Segment = self;
        let got = broadcast::try_copy_newest(seg, |s| {
            // SAFETY: s < slots: the payload lies inside the mapping, 128-aligned; it is read
            // only with atomic loads, as the writer's fence protocol requires.
            unsafe { atomic_copy(self.map().payload(s), dst) };
            timestamp_ns = self.copy_ctrl(s);
        });
        match got {
            NewestCopy::Empty => Err(Error::Empty),
            NewestCopy::Overtaken => Ok(None),
            NewestCopy::Copied { seq, slot } => Ok(Some((seq, slot, timestamp_ns))),
        }
    }

    /// One attempt on a queue ring: `Some((pos + 1, slot, timestamp))` if `dst` now holds
    /// position `pos`.
    fn try_copy_item(&self, dst: &mut [u8]) -> Result<Option<(u64, usize, Option<u64>)>> {
        let c = self.map().control();
        let n = self.slot_count() as u64;
        let tail = c.tail.load(Acquire) & !CLOSED;
        if tail == 0 {
            return Err(Error::Empty);
        }
        let mpmc = self.kind() == RingKind::Mpmc;
        // The stamp of a slot still holding position `pos` (SPSC: `pos + 1` once published;
        // MPMC: `pos + 1` published, `pos + n` released; a tombstone bit set means no item).
        let holds = |st: u64, pos: u64| st == pos + 1 || (mpmc && st == pos + n);
        // SPSC: the newest is `tail − 1`. MPMC: claims may be in progress above the newest
        // published position, so look back at most one lap.
        let newest = (tail.saturating_sub(n)..tail).rev().find(|&pos| {
            let st = self.map().slot((pos % n) as usize).stamp.load(Acquire);
            holds(st, pos)
        });
        let Some(pos) = newest else {
            return Ok(None);
        };
        let e = (pos % n) as usize;
        // SPSC: the entry of `pos` names its data slot (bounds-checked: hostile input; out of
        // range reads as the entry's own, as the consumer does). A producer that reuses slots
        // out of turn may rewrite it once `pos` is released and no longer the newest item, not
        // only one lap later.
        let (s, out_of_turn) = if mpmc {
            (e, false)
        } else {
            let d = self.map().slot(e).data_slot.load(Relaxed);
            let slot = d & !OUT_OF_TURN;
            (
                if slot < n { slot as usize } else { e },
                d & OUT_OF_TURN != 0,
            )
        };
        // SAFETY: s < slots: the payload lies inside the mapping, 128-aligned; read only with
        // atomic loads, so a producer rewriting it makes the copy stale, never undefined.
        unsafe { atomic_copy(self.map().payload(s), dst) };
        let timestamp_ns = self.copy_ctrl(s);
        fence(Acquire);
        let tail_now = c.tail.load(Relaxed) & !CLOSED;
        // Out of turn (this entry's mark, or the ring's: a producer that switched policy after
        // `pos` was published): whole if `pos` is still unreleased, or still the newest item.
        let out_of_turn = !mpmc && (out_of_turn || c.lifecycle.out_of_turn.load(Relaxed) != 0);
        let still = holds(self.map().slot(e).stamp.load(Relaxed), pos)
            && tail_now < pos + n
            && (!out_of_turn || tail_now <= pos + 1 || c.head.load(Relaxed) <= pos);
        Ok(still.then_some((pos + 1, s, timestamp_ns)))
    }
}

#[cfg(all(test, not(miri)))]
mod tests {
    use crate::inspect::Inspector;
    use crate::test_name::TestName;
    use crate::{BroadcastWriter, Config, Consumer, Error, Producer};
    use ndarray::{Array1, Ix1};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering::*};

    /// Items each ring streams.
    const N: u64 = 100_000;
    /// Elements (u64) per item, each the item's sequence number.
    const LEN: usize = 8;

    /// A producer thread rewrites a 2-slot ring as fast as it can, and notes the clock before
    /// and after each send: the item's timestamp (taken in between, at publish) lies in that
    /// window, and every later item's lies at or after its end. Every copy `copy_newest`
    /// accepts must carry its own item's timestamp, not that of a later item written into the
    /// slot meanwhile. (In one process: the copy races with non-atomic stores of this process,
    /// which Miri would rightly report; `ndring-cli/tests/cli.rs` streams from another process.)
    #[test]
    fn a_copy_carries_its_own_items_timestamp_while_the_slot_is_rewritten() {
        for kind in ["spsc", "mpmc", "broadcast"] {
            let name = TestName::new(format!("/ndr-newest-ts-{kind}-{}", std::process::id()));
            // As few slots as each kind allows: the newest item's slot is rewritten soonest.
            let config = match kind {
                "spsc" => Config::spsc().slots(2),
                "mpmc" => Config::mpmc().slots(2),
                _ => Config::broadcast().max_subscribers(1).slots(3),
            }
            .timestamps(true);
            // window[seq]: the clock before and after the send of item `seq` (0: not yet sent).
            let window: Arc<Vec<[AtomicU64; 2]>> = Arc::new(
                (0..=N)
                    .map(|_| [AtomicU64::new(0), AtomicU64::new(0)])
                    .collect(),
            );
            let mut consumer = None;
            let mut send: Box<dyn FnMut(u64) + Send> = if kind == "broadcast" {
                let mut w = BroadcastWriter::<u64, Ix1>::create(&name, LEN, &config).unwrap();
                Box::new(move |seq| assert_eq!(w.send(&Array1::from_elem(LEN, seq)).unwrap(), seq))
            } else {
                let mut tx = Producer::<u64, Ix1>::create(&name, LEN, &config).unwrap();
                let mut rx = Consumer::<u64, Ix1>::open(&name).unwrap();
                consumer = Some(std::thread::spawn(move || {
                    for _ in 0..N {
                        rx.recv().unwrap();
                    }
                }));
                Box::new(move |seq| assert_eq!(tx.send(&Array1::from_elem(LEN, seq)).unwrap(), seq))
            };
            let ring = Inspector::open(&name).unwrap();
            let w = window.clone();
            let producer = std::thread::spawn(move || {
                for seq in 1..=N {
                    let before = crate::now_ns();
                    send(seq);
                    w[seq as usize][0].store(before, Relaxed);
                    w[seq as usize][1].store(crate::now_ns(), Release);
                }
            });
            let mut buf = vec![0u8; LEN * 8];
            let mut copies = 0u64;
            while !producer.is_finished() {
                let got = match ring.copy_newest(&mut buf) {
                    Ok(got) => got,
                    Err(Error::Empty | Error::Timeout) => continue,
                    Err(e) => panic!("{kind}: {e}"),
                };
                copies += 1;
                let word = u64::from_ne_bytes(buf[..8].try_into().unwrap());
                assert_eq!(word, got.seq, "{kind}: the copy is another item's");
                let w = &window[got.seq as usize];
                let after = loop {
                    match w[1].load(Acquire) {
                        0 => std::thread::yield_now(),
                        t => break t,
                    }
                };
                let (before, ts) = (w[0].load(Relaxed), got.timestamp_ns.unwrap());
                assert!(
                    before <= ts && ts <= after,
                    "{kind}: item {} was sent between {before} and {after} ns, but its copy \
                     carries timestamp {ts} (a later item's)",
                    got.seq
                );
            }
            producer.join().unwrap();
            if let Some(c) = consumer {
                c.join().unwrap();
            }
            assert!(copies > 0, "{kind}: no copy taken");
        }
    }
}

//! Exactly once, in order, for a queue ring's stream: which arriving frame to write.
//!
//! The sending bridge holds every frame until it is acknowledged and sends again from the
//! oldest one the receiving side lacks (see `out.rs`), so this side writes only the frame that
//! is next in sequence: an earlier one is a duplicate (acknowledged again), a later one means
//! frames were lost on the way (a link that closed, a frame that failed its check) and the
//! sender is asked to send again from `next`.
//!
//! Two things make a frame unobtainable, and both are counted, never waited for forever:
//! a sending bridge killed while it held frames (the ring gives a dead consumer's frames up; its
//! successor's `floor`, the oldest frame it can send, is past them), and frames the killed
//! predecessor still had in flight, which may arrive interleaved with its successor's. So a
//! frame whose `floor` is past `next` waits [`GIVE_UP`] for the predecessor's frames, then the
//! hole is counted in `gaps`; any of its frames arriving after that is counted as `late`.
//!
//! A receiving bridge restarted after it was killed learns where its predecessor stopped from
//! the acknowledgement basis each frame carries (the last [`Ack`] the sender had): the frames
//! written after it are the destination ring's `tail` beyond the basis's `tail`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::wire::{Ack, FrameHeader};

/// How long a hole that only a killed sender could fill is waited for.
pub(crate) const GIVE_UP: Duration = Duration::from_millis(1500);

/// Holes given up that are remembered (for counting a late frame as late, not duplicate).
const REMEMBERED: usize = 64;

/// Counters of a queue stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct QueueCounts {
    /// Frames given up: never arrived (held by a killed sending bridge).
    pub gaps: u64,
    /// Frames that arrived after their hole was given up (not written).
    pub late: u64,
    /// Frames that arrived again after they were written (not written twice).
    pub duplicates: u64,
    /// Times the source ring was created anew.
    pub restarts: u64,
    /// Frames a killed predecessor of this bridge had written (found in the destination ring).
    pub resumed: u64,
    pub first_seq: u64,
    pub last_seq: u64,
}

/// What to do with an arriving frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It is next: write it (then call [`QueueStream::written`]).
    Write,
    /// Already written, or given up: acknowledge, do not write.
    Skip,
    /// Frames before it are missing: ask the sender to send again from `next`.
    Resend,
}

/// The destination ring as this bridge found it: `tail` (positions written) and its creator.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dest {
    pub tail: u64,
    pub ring: u64,
}

#[derive(Debug, Default)]
pub(crate) struct QueueStream {
    /// Next sequence number to write; `None` before the first frame.
    next: Option<u64>,
    /// The source ring's creator.
    origin: u32,
    /// A hole only a dead sender could fill: its end (the `floor` seen) and since when.
    waiting: Option<(u64, Instant)>,
    /// Holes given up, `(start, end)`, newest last.
    given_up: VecDeque<(u64, u64)>,
    pub counts: QueueCounts,
}

impl QueueStream {
    pub fn next(&self) -> Option<u64> {
        self.next
    }

    /// Judges frame `h` from the source ring created by `origin`; `dest` is the destination
    /// ring now (for a first frame: where a killed predecessor stopped).
    pub fn judge(&mut self, h: &FrameHeader, origin: u32, dest: Dest, now: Instant) -> Verdict {
        let next = match self.next {
            Some(next) if origin == self.origin => next,
            previous => {
                if previous.is_some() {
                    self.counts.restarts += 1;
                    self.given_up.clear();
                    self.waiting = None;
                }
                self.origin = origin;
                let start = self.start(h, dest, previous.is_none());
                self.next = Some(start);
                if previous.is_none() {
                    self.counts.first_seq = start;
                }
                start
            }
        };
        if h.seq < next {
            if let Some(i) = self
                .given_up
                .iter()
                .position(|&(a, b)| (a..b).contains(&h.seq))
            {
                self.counts.gaps -= 1;
                self.counts.late += 1;
                // Counted once: the range shrinks around it (split if inside).
                let (a, b) = self.given_up[i];
                self.given_up.remove(i);
                for r in [(a, h.seq), (h.seq + 1, b)] {
                    if r.0 < r.1 {
                        self.given_up.push_back(r);
                    }
                }
            } else {
                self.counts.duplicates += 1;
            }
            return Verdict::Skip;
        }
        if h.seq == next {
            return Verdict::Write;
        }
        if h.floor <= next {
            self.waiting = None;
            return Verdict::Resend;
        }
        // Frames next..floor: this sender cannot send them; a dead one may still.
        match self.waiting {
            Some((floor, since)) if floor == h.floor && now.duration_since(since) >= GIVE_UP => {
                self.waiting = None;
                self.counts.gaps += h.floor - next;
                self.given_up.push_back((next, h.floor));
                if self.given_up.len() > REMEMBERED {
                    self.given_up.pop_front();
                }
                self.next = Some(h.floor);
                self.judge(h, origin, dest, now)
            }
            Some((floor, _)) if floor == h.floor => Verdict::Skip,
            _ => {
                self.waiting = Some((h.floor, now));
                Verdict::Skip
            }
        }
    }

    /// Frame `seq` (judged [`Verdict::Write`]) is in the ring.
    pub fn written(&mut self, seq: u64) {
        self.next = Some(seq + 1);
        self.counts.last_seq = seq;
        if self.waiting.is_some_and(|(floor, _)| floor <= seq + 1) {
            self.waiting = None;
        }
    }

    /// The stream ended (end-of-stream mark): the next frame begins a new one.
    pub fn end(&mut self) {
        self.next = None;
        self.waiting = None;
        self.given_up.clear();
    }

    /// Where a new stream starts: after what a killed predecessor wrote (found through the
    /// basis), else at the oldest frame the sender holds.
    fn start(&mut self, h: &FrameHeader, dest: Dest, first: bool) -> u64 {
        let b: Ack = h.basis;
        if first && b.next > 0 && b.ring == dest.ring && dest.tail >= b.tail {
            let resumed = dest.tail - b.tail;
            self.counts.resumed += resumed;
            if resumed > 0 {
                tracing::info!(
                    resumed,
                    next = b.next + resumed,
                    "resuming: a previous receiving bridge wrote frames it could not acknowledge"
                );
            }
            return b.next + resumed;
        }
        if h.floor > 0 && h.floor <= h.seq {
            h.floor
        } else {
            h.seq
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: u64, floor: u64) -> FrameHeader {
        FrameHeader {
            seq,
            floor,
            ..FrameHeader::default()
        }
    }

    const DEST: Dest = Dest { tail: 0, ring: 9 };

    #[test]
    fn in_order_duplicates_and_holes() {
        let mut s = QueueStream::default();
        let t = Instant::now();
        assert_eq!(s.judge(&frame(5, 5), 1, DEST, t), Verdict::Write);
        s.written(5);
        assert_eq!(s.judge(&frame(5, 5), 1, DEST, t), Verdict::Skip);
        assert_eq!(s.judge(&frame(7, 6), 1, DEST, t), Verdict::Resend);
        assert_eq!(s.judge(&frame(6, 6), 1, DEST, t), Verdict::Write);
        s.written(6);
        assert_eq!((s.counts.duplicates, s.counts.gaps), (1, 0));
    }

    #[test]
    fn a_hole_only_a_dead_sender_could_fill_is_given_up_then_late() {
        let mut s = QueueStream::default();
        let t = Instant::now();
        assert_eq!(s.judge(&frame(1, 1), 1, DEST, t), Verdict::Write);
        s.written(1);
        // The successor starts at 4: 2 and 3 were held by the killed sender.
        assert_eq!(s.judge(&frame(4, 4), 1, DEST, t), Verdict::Skip);
        // The predecessor's 2 arrives in time and is written.
        assert_eq!(s.judge(&frame(2, 1), 1, DEST, t), Verdict::Write);
        s.written(2);
        let later = t + GIVE_UP;
        assert_eq!(s.judge(&frame(4, 4), 1, DEST, later), Verdict::Write);
        s.written(4);
        assert_eq!(s.counts.gaps, 1);
        // 3 arrives after all.
        assert_eq!(s.judge(&frame(3, 1), 1, DEST, later), Verdict::Skip);
        assert_eq!(
            (s.counts.gaps, s.counts.late, s.counts.duplicates),
            (0, 1, 0)
        );
    }

    #[test]
    fn a_restarted_receiver_skips_what_its_predecessor_wrote() {
        let mut s = QueueStream::default();
        let basis = Ack {
            next: 10,
            tail: 100,
            ring: 9,
            ..Ack::default()
        };
        let h = FrameHeader {
            basis,
            ..frame(10, 10)
        };
        // The killed receiver wrote 10 and 11 after its last acknowledgement.
        let dest = Dest { tail: 102, ring: 9 };
        assert_eq!(s.judge(&h, 1, dest, Instant::now()), Verdict::Skip);
        assert_eq!(s.next(), Some(12));
        assert_eq!(s.counts.resumed, 2);
        // Another destination ring: the basis says nothing about it.
        let mut s = QueueStream::default();
        let other = Dest { tail: 102, ring: 8 };
        assert_eq!(s.judge(&h, 1, other, Instant::now()), Verdict::Write);
    }

    #[test]
    fn a_new_source_ring_is_a_restart() {
        let mut s = QueueStream::default();
        let t = Instant::now();
        assert_eq!(s.judge(&frame(50, 50), 1, DEST, t), Verdict::Write);
        s.written(50);
        assert_eq!(s.judge(&frame(1, 1), 2, DEST, t), Verdict::Write);
        assert_eq!(s.counts.restarts, 1);
    }
}

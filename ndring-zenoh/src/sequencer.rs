//! Puts the frames of a stream back in sequence order before they are written into the ring.
//!
//! Why frames arrive out of order: when the sending bridge is killed and another takes its place,
//! frames the dead one had already handed to Zenoh are still on their way (on its own link) while
//! the new bridge's first frames arrive on a new one, and the two interleave (`…114, 123, 124,
//! 115, 116…`). Each bridge's own frames arrive in order (Zenoh is reliable and FIFO per
//! session), and a bridge that takes over a ring only reads frames its predecessor did not: so a
//! superseded sender can still deliver frames between its last one and its successor's first,
//! and nothing else.
//!
//! The sequencer keeps, per sender (the tag in [`crate::FrameHeader::sender`]), the last sequence
//! number it delivered and, once superseded, where its successor began. A frame that is next in
//! sequence is written at once. A frame after a hole waits in a window (sorted by sequence
//! number; at most [`WINDOW_FRAMES`] frames and [`WINDOW_BYTES`] of payload, about what the
//! kernel's socket buffers can hold in flight) only while a superseded sender could still fill
//! that hole;
//! the hole is given up when no sender can fill it any more, when the window is full, or when
//! the stream has been idle for a while ([`Sequencer::expire`]). A single sender's stream (and a
//! latest-frame stream, whose holes are frames the sender skipped) never waits.
//!
//! Counting, exactly: `gaps` are sequence numbers skipped that never arrived; `late` are frames
//! that arrived after their place in the ring had passed (each such frame had been counted as a
//! gap, and is moved from `gaps` to `late`), so the holes in the ring are `gaps + late`;
//! `duplicates` are frames already written that arrived again; `restarts` are the times the
//! source ring was created anew (another creator, or a new sender that begins well behind).

use std::collections::VecDeque;

/// Frames held back at most, waiting for a superseded sender to fill a hole before them.
pub(crate) const WINDOW_FRAMES: usize = 1024;

/// Payload bytes held back at most (at least one frame is always held).
pub(crate) const WINDOW_BYTES: usize = 64 << 20;

/// Senders remembered: the current one and the superseded ones that may still deliver.
const SENDERS: usize = 4;

/// Sequence numbers below `next` whose fate (written or skipped) is remembered.
const HISTORY: u64 = 256;

#[derive(Clone, Copy, Debug)]
struct SenderState {
    tag: u64,
    /// The last sequence number it delivered (its frames arrive in increasing order).
    last: u64,
    /// Its successor's first sequence number: it can deliver nothing at or after it (`u64::MAX`
    /// for the current sender, 0 for one whose ring was replaced).
    until: u64,
}

/// Counters of a stream (see the module's documentation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub gaps: u64,
    pub late: u64,
    pub duplicates: u64,
    pub restarts: u64,
    pub first_seq: u64,
    pub last_seq: u64,
}

/// Where a frame came from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Origin {
    /// The sending bridge's tag.
    pub sender: u64,
    /// The source ring's creator.
    pub ring: u32,
    /// Slots of the source ring.
    pub slots: usize,
}

/// Frames `F` in, frames in sequence order out (through a `write` callback).
pub(crate) struct Sequencer<F> {
    /// Next sequence number to write; `None` before the first frame.
    next: Option<u64>,
    ring: u32,
    /// Held-back frames (sequence number, payload bytes, frame), sorted by sequence number,
    /// all `>= next`; at most `max_frames` of them and `max_bytes` (after the first).
    window: VecDeque<(u64, usize, F)>,
    /// Payload bytes in `window`.
    held: usize,
    max_frames: usize,
    max_bytes: usize,
    senders: [Option<SenderState>; SENDERS],
    /// Bit `q % HISTORY`: sequence number `q` (in `next - HISTORY..next`) was skipped.
    skipped: [u64; (HISTORY / 64) as usize],
    pub counts: Counts,
}

impl<F> Sequencer<F> {
    /// A sequencer holding back at most `max_frames` frames and `max_bytes` of payload.
    pub fn new(max_frames: usize, max_bytes: usize) -> Self {
        Sequencer {
            next: None,
            ring: 0,
            window: VecDeque::new(),
            held: 0,
            max_frames: max_frames.max(1),
            max_bytes,
            senders: [None; SENDERS],
            skipped: [0; (HISTORY / 64) as usize],
            counts: Counts::default(),
        }
    }

    /// Takes frame `seq` (`bytes` of payload) from `from`; writes what is now in order.
    pub fn offer<E>(
        &mut self,
        from: Origin,
        seq: u64,
        bytes: usize,
        frame: F,
        write: &mut impl FnMut(u64, F) -> Result<(), E>,
    ) -> Result<(), E> {
        let Some(next) = self.next else {
            self.begin(from, seq);
            self.counts.first_seq = seq;
            return self.insert(seq, bytes, frame, write);
        };
        let known = self
            .senders
            .iter()
            .position(|s| s.is_some_and(|s| s.tag == from.sender));
        let state = match known {
            Some(i) => i,
            None => {
                let behind = next.saturating_sub(seq);
                if from.ring != self.ring || behind > from.slots as u64 {
                    // The source ring was created anew: what is held back belongs to the old one.
                    self.flush(write)?;
                    self.counts.restarts += 1;
                    for s in self.senders.iter_mut().flatten() {
                        s.until = 0;
                    }
                    self.skipped = [0; (HISTORY / 64) as usize];
                    self.next = Some(seq);
                    self.ring = from.ring;
                } else {
                    // A bridge taking over: its predecessors can deliver only what it did not read.
                    for s in self.senders.iter_mut().flatten() {
                        s.until = s.until.min(seq);
                    }
                }
                self.add_sender(from.sender, seq)
            }
        };
        let sender = self.senders[state].as_mut().expect("a remembered sender");
        sender.last = sender.last.max(seq);
        let until = sender.until;
        let next = self.next.unwrap_or(next);
        if seq < next {
            if next - seq <= HISTORY && self.was_skipped(seq) {
                self.set_skipped(seq, false);
                self.counts.gaps -= 1;
                self.counts.late += 1;
            } else if next - seq <= HISTORY {
                self.counts.duplicates += 1;
            } else {
                self.counts.late += 1;
            }
            return Ok(());
        }
        if self.window.iter().any(|&(q, _, _)| q == seq) {
            self.counts.duplicates += 1;
            return Ok(());
        }
        if seq >= until {
            // From a sender superseded before this frame: a replaced ring's (its place is not
            // in this stream).
            self.counts.late += 1;
            return Ok(());
        }
        self.insert(seq, bytes, frame, write)
    }

    /// The stream has been idle: give up the holes and write every held-back frame.
    pub fn expire<E>(&mut self, write: &mut impl FnMut(u64, F) -> Result<(), E>) -> Result<(), E> {
        self.flush(write)
    }

    /// Frames are held back.
    pub fn waiting(&self) -> bool {
        !self.window.is_empty()
    }

    /// End of a stream (the next frame begins a new one): writes what is held back.
    pub fn end<E>(&mut self, write: &mut impl FnMut(u64, F) -> Result<(), E>) -> Result<(), E> {
        self.flush(write)?;
        self.next = None;
        self.senders = [None; SENDERS];
        self.skipped = [0; (HISTORY / 64) as usize];
        Ok(())
    }

    fn begin(&mut self, from: Origin, seq: u64) {
        self.next = Some(seq);
        self.ring = from.ring;
        self.add_sender(from.sender, seq);
    }

    /// Remembers a new current sender, forgetting the one superseded longest ago if full.
    fn add_sender(&mut self, tag: u64, seq: u64) -> usize {
        let state = SenderState {
            tag,
            last: seq,
            until: u64::MAX,
        };
        let i = match self.senders.iter().position(Option::is_none) {
            Some(i) => i,
            None => (0..SENDERS)
                .min_by_key(|&i| self.senders[i].map_or(0, |s| s.until))
                .unwrap_or(0),
        };
        self.senders[i] = Some(state);
        i
    }

    fn insert<E>(
        &mut self,
        seq: u64,
        bytes: usize,
        frame: F,
        write: &mut impl FnMut(u64, F) -> Result<(), E>,
    ) -> Result<(), E> {
        let at = self.window.partition_point(|&(q, _, _)| q < seq);
        self.window.insert(at, (seq, bytes, frame));
        self.held += bytes;
        let full = self.window.len() >= self.max_frames || self.held >= self.max_bytes;
        self.drain(full, write)
    }

    fn flush<E>(&mut self, write: &mut impl FnMut(u64, F) -> Result<(), E>) -> Result<(), E> {
        while !self.window.is_empty() {
            self.drain(true, write)?;
        }
        Ok(())
    }

    /// Writes the frames in order from the window's front; a hole before the front is skipped
    /// if no sender can fill it any more, or once if `force`.
    fn drain<E>(
        &mut self,
        mut force: bool,
        write: &mut impl FnMut(u64, F) -> Result<(), E>,
    ) -> Result<(), E> {
        while let Some(&(front, _, _)) = self.window.front() {
            let next = self.next.unwrap_or(front);
            if front > next {
                if !force && self.fillable(next, front) {
                    return Ok(());
                }
                force = false;
                for q in next.max(front.saturating_sub(HISTORY))..front {
                    self.set_skipped(q, true);
                }
                self.counts.gaps += front - next;
            }
            let (seq, bytes, frame) = self.window.pop_front().expect("a front frame");
            self.held -= bytes;
            self.set_skipped(seq, false);
            self.next = Some(seq + 1);
            self.counts.last_seq = seq;
            write(seq, frame)?;
        }
        Ok(())
    }

    /// Some sender can still deliver a frame in `next..front`.
    fn fillable(&self, next: u64, front: u64) -> bool {
        self.senders
            .iter()
            .flatten()
            .any(|s| (s.last + 1).max(next) < front.min(s.until))
    }

    fn was_skipped(&self, seq: u64) -> bool {
        let bit = seq % HISTORY;
        self.skipped[(bit / 64) as usize] & (1 << (bit % 64)) != 0
    }

    fn set_skipped(&mut self, seq: u64, skipped: bool) {
        let bit = seq % HISTORY;
        let word = &mut self.skipped[(bit / 64) as usize];
        if skipped {
            *word |= 1 << (bit % 64);
        } else {
            *word &= !(1 << (bit % 64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames held back at most in these tests.
    const WINDOW: usize = 16;

    const A: Origin = Origin {
        sender: 1,
        ring: 10,
        slots: 4,
    };
    const B: Origin = Origin {
        sender: 2,
        ring: 10,
        slots: 4,
    };

    /// Offers `(origin, seq)` in turn; returns what was written, in order, and the counts.
    fn run(arrivals: &[(Origin, u64)], idle_at_end: bool) -> (Vec<u64>, Counts) {
        let mut s = Sequencer::new(WINDOW, usize::MAX);
        let mut out = Vec::new();
        let mut write = |q: u64, f: u64| -> Result<(), ()> {
            assert_eq!(q, f);
            out.push(q);
            Ok(())
        };
        for &(from, q) in arrivals {
            s.offer(from, q, 1, q, &mut write).unwrap();
        }
        if idle_at_end {
            s.expire(&mut write).unwrap();
        }
        (out, s.counts)
    }

    #[test]
    fn the_reviewed_interleaving_is_written_in_order_with_one_gap() {
        // The dead sender A delivered up to 114 and held 122; B took over at 123.
        let mut arrivals: Vec<(Origin, u64)> = (1..=114).map(|q| (A, q)).collect();
        arrivals.extend([(B, 123), (B, 124), (A, 115), (A, 116), (A, 117), (B, 125)]);
        arrivals.extend([(A, 118), (B, 126), (B, 127), (B, 128), (B, 129)]);
        arrivals.extend([(A, 119), (A, 120), (A, 121)]);
        arrivals.extend((130..=300).map(|q| (B, q)));
        let (out, c) = run(&arrivals, true);
        let expected: Vec<u64> = (1..=300).filter(|&q| q != 122).collect();
        assert_eq!(out, expected);
        assert_eq!((c.gaps, c.late, c.duplicates, c.restarts), (1, 0, 0, 0));
    }

    #[test]
    fn a_frame_after_its_hole_was_given_up_is_late_not_a_gap() {
        // B's frames fill the window before A's last one arrives.
        let mut arrivals: Vec<(Origin, u64)> = (1..=10).map(|q| (A, q)).collect();
        arrivals.extend((12..12 + WINDOW as u64).map(|q| (B, q)));
        arrivals.push((A, 11));
        let (out, c) = run(&arrivals, true);
        assert!(out.windows(2).all(|w| w[0] < w[1]), "{out:?}");
        assert!(!out.contains(&11));
        assert_eq!((c.gaps, c.late, c.duplicates), (0, 1, 0));
    }

    #[test]
    fn the_window_is_bounded_in_bytes() {
        let mut s = Sequencer::new(WINDOW, 100);
        let mut out = Vec::new();
        let mut write = |q: u64, _: ()| -> Result<(), ()> {
            out.push(q);
            Ok(())
        };
        for (from, q) in [(A, 1), (B, 3), (B, 4)] {
            s.offer(from, q, 50, (), &mut write).unwrap();
        }
        assert_eq!(out, [1, 3, 4]);
        assert_eq!(s.counts.gaps, 1);
    }

    #[test]
    fn an_idle_stream_gives_up_its_holes() {
        let arrivals = [(A, 1), (A, 2), (B, 5), (B, 6)];
        let (out, c) = run(&arrivals, false);
        assert_eq!(out, [1, 2]);
        assert_eq!(c.gaps, 0);
        let (out, c) = run(&arrivals, true);
        assert_eq!(out, [1, 2, 5, 6]);
        assert_eq!(c.gaps, 2);
    }

    #[test]
    fn one_sender_never_waits() {
        // Latest-frame: the sender skipped frames; each hole is counted at once.
        let (out, c) = run(&[(A, 1), (A, 3), (A, 4), (A, 9)], false);
        assert_eq!(out, [1, 3, 4, 9]);
        assert_eq!((c.gaps, c.late, c.restarts), (5, 0, 0));
    }

    #[test]
    fn the_same_frame_twice_is_a_duplicate() {
        let (out, c) = run(&[(A, 1), (A, 2), (B, 2), (B, 3), (A, 2)], false);
        assert_eq!(out, [1, 2, 3]);
        assert_eq!((c.gaps, c.late, c.duplicates, c.restarts), (0, 0, 2, 0));
    }

    #[test]
    fn a_recreated_source_ring_is_a_restart() {
        let other_ring = Origin { ring: 11, ..B };
        let (out, c) = run(&[(A, 7), (A, 8), (other_ring, 1), (other_ring, 2)], false);
        assert_eq!(out, [7, 8, 1, 2]);
        assert_eq!((c.gaps, c.restarts, c.first_seq, c.last_seq), (0, 1, 7, 2));
        // Same creator, a new sender far behind: also a new ring.
        let (out, c) = run(&[(A, 100), (B, 1), (B, 2), (A, 101)], false);
        assert_eq!(out, [100, 1, 2]);
        assert_eq!((c.restarts, c.late), (1, 1));
    }
}

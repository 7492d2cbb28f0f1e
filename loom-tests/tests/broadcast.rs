//! Model checks of the broadcast protocol (`RUSTFLAGS="--cfg loom"`).
#![cfg(loom)]

mod support;

use loom::sync::Arc;
use loom::sync::atomic::Ordering::Relaxed;
use loom::thread;
use ndring::protocol::broadcast::{Miss, NewestCopy, Subscriber, Writer, try_copy_newest};
use support::{Mem, model, notify, sleep_until};

/// Publishes frames `1..=n`, each slot's data and words set to its sequence number.
fn write_frames(m: &Mem, n: u64) {
    let mut w = Writer::attach(m, 1);
    for _ in 0..n {
        let (s, _) = w.claim(m);
        let seq = w.next_seq();
        m.write(s, seq);
        m.words[s][0].store(seq, Relaxed);
        m.words[s][1].store(seq, Relaxed);
        w.publish(m, s);
    }
    w.close(m);
}

/// Makes `attempts` non-blocking receive attempts (a bounded poll: loom explores every
/// interleaving of them with the writer), checking every pinned frame's content (loom checks that
/// the writer never writes a pinned slot), the order, and that once `Closed` is seen the
/// subscriber has accounted for every frame.
fn follow(m: &Mem, me: usize, total: u64, attempts: usize) {
    let mut sub = Subscriber::attach(m, false);
    let mut last = 0;
    for _ in 0..attempts {
        match sub.try_recv(m, &m.peers[me], false) {
            Ok((s, seq)) => {
                assert!(seq > last, "frames out of order");
                assert_eq!(m.read(s), seq, "pinned frame has wrong content");
                last = seq;
            }
            Err(Miss::Lagged(n)) => assert!(n > 0),
            Err(Miss::Closed) => {
                assert_eq!(sub.next(), total + 1, "closed before the last frame");
                break;
            }
            Err(Miss::Wait) => thread::yield_now(),
        }
    }
    sub.unpin(&m.peers[me]);
    assert!(last <= total);
}

#[test]
fn writer_and_two_subscribers() {
    model(2, || {
        let m = Arc::new(Mem::new(4, 3, false));
        let subs: Vec<_> = (1..3)
            .map(|i| {
                let m = m.clone();
                thread::spawn(move || follow(&m, i, 1, 2))
            })
            .collect();
        write_frames(&m, 1);
        for s in subs {
            s.join().unwrap();
        }
    });
}

/// One subscriber racing a writer that overwrites more frames than there are slots: a pin
/// never overlaps a rewrite (loom's UnsafeCell check) and lag is reported, never a wrong frame.
#[test]
fn pin_races_overwrite() {
    model(2, || {
        let m = Arc::new(Mem::new(3, 2, false));
        let m2 = m.clone();
        let sub = thread::spawn(move || follow(&m2, 1, 4, 2));
        write_frames(&m, 4);
        sub.join().unwrap();
    });
}

/// Lag is exact: with 3 slots and 5 frames written before the subscriber reads, it misses 2.
#[test]
fn lag_is_counted_exactly() {
    model(2, || {
        let m = Arc::new(Mem::new(3, 2, false));
        let mut sub = Subscriber::attach(&*m, false);
        write_frames(&m, 5);
        let me = &m.peers[1];
        assert_eq!(sub.try_recv(&*m, me, false), Err(Miss::Lagged(2)));
        for seq in 3..=5 {
            let (s, got) = sub.try_recv(&*m, me, false).unwrap();
            assert_eq!((got, m.read(s)), (seq, seq));
        }
        assert_eq!(sub.try_recv(&*m, me, false), Err(Miss::Closed));
    });
}

/// Copy-out without a pin never returns a torn frame: both words equal the frame's seq.
#[test]
fn copy_out_is_never_torn() {
    model(2, || {
        let m = Arc::new(Mem::new(3, 2, false));
        let m2 = m.clone();
        let reader = thread::spawn(move || {
            let mut sub = Subscriber::attach(&*m2, false);
            for _ in 0..3 {
                let mut copy = [0u64; 2];
                match sub.try_copy(&*m2, false, |s| {
                    copy = [m2.words[s][0].load(Relaxed), m2.words[s][1].load(Relaxed)];
                }) {
                    Ok(seq) => assert_eq!(copy, [seq, seq], "torn copy"),
                    Err(Miss::Closed) => break,
                    Err(Miss::Lagged(_)) => {}
                    Err(Miss::Wait) => thread::yield_now(),
                }
            }
        });
        write_frames(&m, 3);
        reader.join().unwrap();
    });
}

/// Copy-out of a slot that the writer rewrites meanwhile (two slots, three frames: frame 3 goes
/// where frame 1 was): a copy that overlaps the rewrite is discarded, never returned. Needs the
/// writer's `fence(Release)` after marking the slot `WRITING` and the reader's `fence(Acquire)`
/// before its re-check.
#[test]
fn copy_out_of_a_rewritten_slot_is_never_torn() {
    model(2, || {
        // One peer entry: the writer's; no pins.
        let m = Arc::new(Mem::new(2, 1, false));
        let mut sub = Subscriber::attach(&*m, false);
        let m2 = m.clone();
        let writer = thread::spawn(move || write_frames(&m2, 3));
        for _ in 0..3 {
            let mut copy = [0u64; 2];
            match sub.try_copy(&*m, false, |s| {
                copy = [m.words[s][0].load(Relaxed), m.words[s][1].load(Relaxed)];
            }) {
                Ok(seq) => assert_eq!(copy, [seq, seq], "torn or overtaken copy"),
                Err(Miss::Closed) => break,
                Err(Miss::Lagged(_)) => {}
                Err(Miss::Wait) => thread::yield_now(),
            }
        }
        writer.join().unwrap();
    });
}

/// An inspector's copy of the newest frame (no peer entry, no pin, loads only) while the writer
/// rewrites slots (two slots, three frames: frame 3 goes where frame 1 was): a copy it accepts
/// holds the frame it names, whole; one the writer overlapped is discarded. Needs the writer's
/// `fence(Release)` after marking the slot `WRITING` and the copy's `fence(Acquire)` before its
/// re-check.
#[test]
fn newest_copy_of_a_rewritten_slot_is_never_torn() {
    model(2, || {
        let m = Arc::new(Mem::new(2, 1, false));
        let m2 = m.clone();
        let writer = thread::spawn(move || write_frames(&m2, 3));
        for _ in 0..3 {
            let mut copy = [0u64; 2];
            match try_copy_newest(&*m, |s| {
                copy = [m.words[s][0].load(Relaxed), m.words[s][1].load(Relaxed)];
            }) {
                NewestCopy::Copied { seq, .. } => assert_eq!(copy, [seq, seq], "torn copy"),
                NewestCopy::Empty | NewestCopy::Overtaken => thread::yield_now(),
            }
        }
        writer.join().unwrap();
    });
}

/// No wake-up is lost while a subscriber sleeps for the next frame.
#[test]
fn subscriber_sleeps_no_lost_wakeup() {
    model(2, || {
        let m = Arc::new(Mem::new(3, 2, false));
        let mut sub = Subscriber::attach(&*m, false);
        let m2 = m.clone();
        let writer = thread::spawn(move || {
            let mut w = Writer::attach(&*m2, 1);
            let (s, _) = w.claim(&*m2);
            m2.write(s, 1);
            w.publish(&*m2, s);
            notify(&m2.control.not_empty);
        });
        let me = &m.peers[1];
        let (s, seq) = sleep_until(&m.control.not_empty, |strong| {
            sub.try_recv(&*m, me, strong).ok()
        });
        assert_eq!((seq, m.read(s)), (1, 1));
        sub.unpin(me);
        writer.join().unwrap();
    });
}

/// A writer relaying a stream that lost frame 2 (`skip`): a subscriber asleep for it wakes
/// (the skip is the notifier's RMW, as a publish is) and learns it is missing (`Lagged(1)`).
#[test]
fn a_sleeping_subscriber_wakes_to_a_skip() {
    model(2, || {
        let m = Arc::new(Mem::new(3, 2, false));
        let mut sub = Subscriber::attach(&*m, false);
        let m2 = m.clone();
        let writer = thread::spawn(move || {
            let mut w = Writer::attach(&*m2, 1);
            let (s, _) = w.claim(&*m2);
            m2.write(s, 1);
            w.publish(&*m2, s);
            notify(&m2.control.not_empty);
            assert_eq!(w.skip(&*m2, 1), 2);
            notify(&m2.control.not_empty);
        });
        let me = &m.peers[1];
        let mut seen = Vec::new();
        for _ in 0..2 {
            seen.push(sleep_until(&m.control.not_empty, |strong| {
                match sub.try_recv(&*m, me, strong) {
                    Err(Miss::Wait) => None,
                    Ok((s, seq)) => Some(Ok((seq, m.read(s)))),
                    Err(miss) => Some(Err(miss)),
                }
            }));
        }
        sub.unpin(me);
        assert_eq!(
            seen,
            [Ok((1, 1)), Err(Miss::Lagged(1))],
            "frame 1, then the hole"
        );
        writer.join().unwrap();
    });
}

/// Skipped numbers between held frames and at the end (frames 1 and 3 sent, 2 and 4 lost),
/// raced by a polling subscriber: a held frame is never reported missing (the rule "no frame
/// at or after it held" covers only skipped numbers), the order holds, and the lost end is
/// `Lagged` before `Closed`: never a clean `Closed` after a hole.
#[test]
fn skips_between_frames_and_at_the_end_are_lagged_exactly() {
    model(2, || {
        let m = Arc::new(Mem::new(3, 2, false));
        let m2 = m.clone();
        let sub = thread::spawn(move || {
            let mut sub = Subscriber::attach(&*m2, false);
            let me = &m2.peers[1];
            let mut last = 0;
            let mut lagged = Vec::new();
            for _ in 0..5 {
                match sub.try_recv(&*m2, me, false) {
                    Ok((s, seq)) => {
                        assert!(seq == 1 || seq == 3, "frame {seq} was skipped");
                        assert!(seq > last && m2.read(s) == seq);
                        last = seq;
                    }
                    Err(Miss::Lagged(n)) => {
                        assert_eq!(n, 1);
                        lagged.push(sub.next() - 1);
                    }
                    Err(Miss::Closed) => {
                        assert_eq!((last, sub.next()), (3, 5), "closed before frame 3");
                        assert_eq!(lagged, [2, 4], "numbers 2 and 4 are the missing ones");
                        break;
                    }
                    Err(Miss::Wait) => thread::yield_now(),
                }
            }
            sub.unpin(me);
        });
        let mut w = Writer::attach(&*m, 1);
        for seq in [1, 3] {
            if seq == 3 {
                w.skip(&*m, 1);
            }
            let (s, _) = w.claim(&*m);
            m.write(s, seq);
            assert_eq!(w.publish(&*m, s), seq);
        }
        assert_eq!(w.skip(&*m, 1), 4);
        w.close(&*m);
        sub.join().unwrap();
    });
}

//! Broadcast rings across real processes: pins hold, lag is exact, every subscriber sees the
//! frames in order, copy-out is never torn, sleepers are woken.

mod common;

use std::time::Duration;

use common::{eventually, finish, name, pattern, spawn, trial};
use ndarray::{Array1, Ix1};
use ndring::{BroadcastWriter, Config, Error, OpenOptions, Role, Start, Subscriber};

const LONG: Duration = Duration::from_secs(120);
const LEN: usize = 256;

fn main() -> std::process::ExitCode {
    common::main(
        &[
            ("writer", writer),
            ("follower", follower),
            ("sleepy-subscriber", sleepy_subscriber),
            ("pin-and-hang", pin_and_hang),
            ("skip-reader", skip_reader),
        ],
        vec![
            trial(
                "pinned_view_never_changes_and_writer_never_blocks",
                pinned_view_holds,
            ),
            trial(
                "eight_subscriber_processes_see_frames_in_order",
                eight_subscribers,
            ),
            trial(
                "subscriber_asleep_is_woken_by_another_process",
                wake_subscriber,
            ),
            trial(
                "copy_out_is_never_torn_across_processes",
                copy_out_never_torn,
            ),
            trial("latest_skips_to_the_newest_frame", latest_skips),
            trial("dead_subscriber_pin_is_dropped", dead_subscriber_pin),
            trial("bad_input_is_rejected", bad_input),
            trial(
                "skipped_numbers_reach_subscribers_in_other_processes_as_lagged",
                skipped_numbers_are_lagged,
            ),
        ],
    )
}

/// Fills `slot` with frame `seq`'s pattern.
fn fill(slot: &mut ndarray::ArrayViewMut1<u64>, seq: u64) {
    for (j, v) in slot.iter_mut().enumerate() {
        *v = pattern(0, seq, j);
    }
}

fn intact(frame: &ndarray::ArrayView1<u64>, seq: u64) -> bool {
    frame
        .iter()
        .enumerate()
        .all(|(j, &v)| v == pattern(0, seq, j))
}

/// Child: attaches as the writer of `name`, publishes `count` frames, closes if asked.
fn writer(a: &[String]) {
    let count: u64 = a[1].parse().unwrap();
    let mut w = BroadcastWriter::<u64, Ix1>::open(&a[0]).unwrap();
    for _ in 0..count {
        let seq = w.published() + 1;
        let mut slot = w.claim();
        fill(&mut slot, seq);
        assert_eq!(slot.publish(), seq);
    }
    if a.get(2).map(String::as_str) == Some("close") {
        w.close();
    }
}

fn create(n: &str, config: &Config) -> BroadcastWriter<u64, Ix1> {
    BroadcastWriter::<u64, Ix1>::create(n, LEN, config).unwrap()
}

fn pinned_view_holds() {
    let n = name("pin");
    let mut w = create(&n, &Config::broadcast().keep(true));
    let mut slot = w.claim();
    fill(&mut slot, 1);
    slot.publish();
    drop(w); // frees the writer role; the segment stays (keep)
    let mut sub = Subscriber::<u64, Ix1>::open(&n, Start::Oldest).unwrap();
    {
        let frame = sub.recv().unwrap();
        assert_eq!(frame.seq(), 1);
        let before = frame.to_owned();
        // Another process publishes 1000 frames while we hold the view: it must not block.
        finish(spawn("writer", &[&n, "1000"]), LONG);
        assert_eq!(*frame, before, "a pinned frame changed under its reader");
        assert!(intact(&frame, 1));
    }
    // 8 slots: frame 1 was pinned, so the other 7 hold 995..=1001; 2..=994 were overwritten.
    match sub.recv() {
        Err(Error::Lagged { missed }) => assert_eq!(missed, 993),
        other => panic!("expected Lagged, got {:?}", other.map(|s| s.seq())),
    }
    for seq in 995..=1001 {
        let f = sub.recv().unwrap();
        assert_eq!(f.seq(), seq);
        assert!(intact(&f, seq));
    }
    // Drained, and the writer is gone (it attached once): disconnected, not merely empty.
    assert!(matches!(
        sub.try_recv(),
        Err(Error::Disconnected {
            missing: Role::Writer
        })
    ));
    assert_eq!(sub.missed_total(), 993);
    ndring::remove(&n).unwrap();
}

/// Child: follows `name` from the oldest frame until closed; checks order and content; prints
/// "received missed last".
fn follower(a: &[String]) {
    let mut sub = Subscriber::<u64, Ix1>::open(&a[0], Start::Oldest).unwrap();
    println!("attached");
    let (mut received, mut last) = (0u64, 0u64);
    loop {
        match sub.recv() {
            Ok(f) => {
                assert!(f.seq() > last, "out of order: {} after {last}", f.seq());
                assert!(intact(&f, f.seq()), "frame {} corrupt", f.seq());
                last = f.seq();
                received += 1;
            }
            Err(Error::Lagged { .. }) => {}
            // Before the child's writer attaches, the creator's left: not final, wait for it.
            Err(Error::Disconnected { .. }) => std::thread::sleep(Duration::from_millis(1)),
            Err(Error::Closed) => break,
            Err(e) => panic!("{e}"),
        }
    }
    println!("{received} {} {last}", sub.missed_total());
}

fn eight_subscribers() {
    const FRAMES: u64 = 3000;
    let n = name("eight");
    let mut w = create(&n, &Config::broadcast().max_subscribers(8).slots(32));
    let subs: Vec<_> = (0..8).map(|_| spawn("follower", &[&n])).collect();
    eventually(LONG, "8 subscribers attached", || {
        w.peers()
            .iter()
            .filter(|p| p.role == Role::Subscriber)
            .count()
            == 8
    });
    for seq in 1..=FRAMES {
        let mut slot = w.claim();
        fill(&mut slot, seq);
        slot.publish();
        if seq % 64 == 0 {
            std::thread::yield_now();
        }
    }
    w.close();
    for s in subs {
        let out = String::from_utf8(finish(s, LONG).stdout).unwrap();
        let line = out.lines().last().unwrap();
        let v: Vec<u64> = line.split(' ').map(|x| x.parse().unwrap()).collect();
        let (received, missed, last) = (v[0], v[1], v[2]);
        assert_eq!(last, FRAMES, "subscriber did not reach the last frame");
        assert_eq!(received + missed, FRAMES, "frames unaccounted for: {line}");
    }
}

/// Child: subscribes (sleeping at once when idle) and waits for one frame.
fn sleepy_subscriber(a: &[String]) {
    let mut sub =
        Subscriber::<u64, Ix1>::open_with(&a[0], Start::Newest, &OpenOptions::default().spin(0))
            .unwrap();
    let f = sub
        .recv_timeout(Duration::from_secs(60))
        .expect("woken by a frame");
    assert!(intact(&f, 1));
}

fn wake_subscriber() {
    let n = name("bwake");
    let mut w = create(&n, &Config::broadcast());
    let child = spawn("sleepy-subscriber", &[&n]);
    eventually(LONG, "subscriber asleep", || w.segment().sleepers().0 == 1);
    let mut slot = w.claim();
    fill(&mut slot, 1);
    slot.publish();
    finish(child, LONG);
}

fn copy_out_never_torn() {
    let n = name("copy");
    let w = create(
        &n,
        &Config::broadcast().slots(3).max_subscribers(1).keep(true),
    );
    drop(w);
    let mut sub = Subscriber::<u64, Ix1>::open(&n, Start::Oldest).unwrap();
    let child = spawn("writer", &[&n, "20000", "close"]);
    let mut out = Array1::<u64>::zeros(LEN);
    let (mut copies, mut last) = (0u64, 0u64);
    loop {
        match sub.recv_into(&mut out, Some(LONG)) {
            Ok(seq) => {
                assert!(seq > last);
                assert!(intact(&out.view(), seq), "torn copy of frame {seq}");
                last = seq;
                copies += 1;
            }
            Err(Error::Lagged { .. }) => {}
            // Before the child's writer attaches, the creator's left: not final, wait for it.
            Err(Error::Disconnected { .. }) => std::thread::sleep(Duration::from_millis(1)),
            Err(Error::Closed) => break,
            Err(e) => panic!("{e}"),
        }
    }
    finish(child, LONG);
    assert_eq!(last, 20000);
    assert_eq!(copies + sub.missed_total(), 20000);
    ndring::remove(&n).unwrap();
}

fn latest_skips() {
    let n = name("latest");
    let w = create(&n, &Config::broadcast().keep(true));
    drop(w);
    let mut sub = Subscriber::<u64, Ix1>::open(&n, Start::Newest).unwrap();
    finish(spawn("writer", &[&n, "50"]), LONG);
    let f = sub.latest().unwrap();
    assert_eq!(f.seq(), 50);
    assert!(intact(&f, 50));
    assert_eq!(sub.skipped_total(), 49);
    assert!(matches!(
        sub.try_latest(),
        Err(Error::Disconnected {
            missing: Role::Writer
        })
    ));
    ndring::remove(&n).unwrap();
}

/// Child: pins the newest frame of `name` and hangs until killed.
fn pin_and_hang(a: &[String]) {
    let mut sub = Subscriber::<u64, Ix1>::open(&a[0], Start::Newest).unwrap();
    let _f = sub.recv().unwrap();
    println!("pinned");
    std::thread::sleep(Duration::from_secs(120));
}

fn dead_subscriber_pin() {
    let n = name("deadpin");
    let mut w = create(&n, &Config::broadcast());
    let mut slot = w.claim();
    fill(&mut slot, 1);
    slot.publish();
    let mut child = common::command("pin-and-hang", &[&n])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "pinned");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(w.recover_dead(), 1);
    assert_eq!(w.segment().stats().recovered_reads, 1);
    assert!(w.peers().is_empty() || w.peers().iter().all(|p| p.role == Role::Writer));
}

fn bad_input() {
    let n = name("bbad");
    let _w = create(&n, &Config::broadcast().max_subscribers(2).slots(4));
    let _a = Subscriber::<u64, Ix1>::open(&n, Start::Newest).unwrap();
    let _b = Subscriber::<u64, Ix1>::open(&n, Start::Newest).unwrap();
    assert!(matches!(
        Subscriber::<u64, Ix1>::open(&n, Start::Newest),
        Err(Error::TooManyPeers {
            role: Role::Subscriber,
            max: 2
        })
    ));
    assert!(matches!(
        Subscriber::<u32, Ix1>::open(&n, Start::Newest),
        Err(Error::TypeMismatch { .. })
    ));
    assert!(matches!(
        Subscriber::<u64, ndarray::Ix2>::open(&n, Start::Newest),
        Err(Error::RankMismatch { .. })
    ));
    assert!(matches!(
        ndring::Consumer::<u64, Ix1>::open(&n),
        Err(Error::KindMismatch { .. })
    ));
    let m = name("bbad2");
    assert!(matches!(
        BroadcastWriter::<u64, Ix1>::create(
            &m,
            LEN,
            &Config::broadcast().max_subscribers(4).slots(5)
        ),
        Err(Error::InvalidConfig(_))
    ));
    assert!(matches!(
        BroadcastWriter::<u64, Ix1>::create(&m, LEN, &Config::mpmc()),
        Err(Error::InvalidConfig(_))
    ));
    let mut w2 = BroadcastWriter::<u64, Ix1>::create(&m, LEN, &Config::broadcast()).unwrap();
    assert!(matches!(
        w2.send(&Array1::<u64>::zeros(3)),
        Err(Error::ShapeMismatch { .. })
    ));
}

/// Child: subscribes from the oldest frame and reads until `Closed`, waiting as told (`block`:
/// `recv`; `slices`: `recv_timeout` of 1 ms; `poll`: `try_recv`); prints what it saw, one item a
/// line: a frame's seq, `lagged N`, `closed`.
fn skip_reader(a: &[String]) {
    let mut sub = Subscriber::<u64, Ix1>::open(&a[0], Start::Oldest).unwrap();
    println!("attached");
    loop {
        let r = match a[1].as_str() {
            "block" => sub.recv(),
            "slices" => sub.recv_timeout(Duration::from_millis(1)),
            _ => sub.try_recv(),
        };
        match r {
            Ok(f) => {
                let seq = f.seq();
                assert!(intact(&f, seq), "frame {seq} damaged");
                println!("{seq}");
            }
            Err(Error::Lagged { missed }) => println!("lagged {missed}"),
            Err(Error::Closed) => {
                println!("closed");
                return;
            }
            Err(Error::Timeout | Error::Empty) => std::thread::yield_now(),
            Err(e) => panic!("unexpected {e}"),
        }
    }
}

/// A relaying writer's skipped numbers (frames lost upstream) reach subscribers of other
/// processes, whichever way they wait, as `Lagged` exactly where the frames are missing, the
/// lost end too: never a clean `Closed` after a hole.
fn skipped_numbers_are_lagged() {
    let n = name("bskip");
    let mut w = create(&n, &Config::broadcast().slots(8));
    let readers: Vec<_> = ["block", "slices", "poll"]
        .iter()
        .map(|how| spawn("skip-reader", &[&n, how]))
        .collect();
    eventually(LONG, "three subscribers", || {
        w.segment()
            .peers()
            .iter()
            .filter(|p| p.role == Role::Subscriber)
            .count()
            == 3
    });
    let send = |w: &mut BroadcastWriter<u64, Ix1>, seq: u64| {
        let mut slot = w.claim();
        fill(&mut slot, seq);
        assert_eq!(slot.publish(), seq);
    };
    send(&mut w, 1);
    send(&mut w, 2);
    // Give the blocking reader time to fall asleep: the skip must wake it.
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(w.skip(2), 4);
    send(&mut w, 5);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(w.skip(3), 8);
    w.close();
    for r in readers {
        let out = String::from_utf8(finish(r, LONG).stdout).unwrap();
        let seen: Vec<&str> = out.lines().collect();
        assert_eq!(
            seen,
            ["attached", "1", "2", "lagged 2", "5", "lagged 3", "closed"],
            "what a reader saw"
        );
    }
}

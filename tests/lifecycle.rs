//! A stream's whole life across real processes: start orders, disconnects, the name's lifetime,
//! reuse of finished rings, a dead sleeper, symbolic links and read-only inspection.

mod common;

use std::os::unix::process::CommandExt;
use std::time::Duration;

use common::{eventually, finish, name, spawn, trial};
use ndarray::{Ix1, Ix2, arr1};
use ndring::{
    BroadcastWriter, Config, Consumer, Error, OpenOptions, Producer, Role, Segment, Start,
    Subscriber,
};

const LONG: Duration = Duration::from_secs(120);
/// The grace period of these tests' handles: how soon a dead peer is noticed.
const GRACE: Duration = Duration::from_millis(100);
/// Polls before sleeping for the futex-count test: so many that a live side never sleeps, and
/// every futex call counted is one made for a sleeper that is not there.
const NEVER_SLEEP: u32 = u32::MAX;

fn main() -> std::process::ExitCode {
    common::main(
        &[
            ("inspect-read-only", inspect_read_only),
            ("send-and-exit", send_and_exit),
            ("send-then-hang", send_then_hang),
            ("consume-all", consume_all),
            ("sleep-in-recv", sleep_in_recv),
            ("count-futex-calls", count_futex_calls),
            ("fill-until-disconnected", fill_until_disconnected),
            ("subscribe-until-error", subscribe_until_error),
            ("attach-and-hang", attach_and_hang),
            ("write-then-hang", write_then_hang),
        ],
        vec![
            trial("a_symbolic_link_in_dev_shm_is_refused", symlink_refused),
            trial(
                "another_user_inspects_a_0644_ring_read_only",
                read_only_inspection,
            ),
            trial(
                "consumer_started_first_waits_for_the_creator_then_drains_to_closed",
                consumer_first_waits_for_creator,
            ),
            trial(
                "consumer_attached_before_any_producer_waits_instead_of_disconnecting",
                consumer_before_any_producer_waits,
            ),
            trial(
                "producer_dropped_without_close_disconnects_then_a_new_producer_reconnects",
                drop_without_close,
            ),
            trial(
                "producer_sigkilled_while_the_consumer_sleeps_disconnects_it",
                producer_killed_while_consumer_sleeps,
            ),
            trial(
                "short_timeouts_and_try_recv_notice_a_dead_producer",
                dead_producer_noticed_by_polling,
            ),
            trial(
                "early_exiting_producers_items_reach_a_consumer_started_later",
                early_exit,
            ),
            trial(
                "last_handle_out_removes_the_name_and_keep_keeps_it",
                last_one_out,
            ),
            trial(
                "closed_rings_are_replaced_and_in_use_ones_name_their_peers",
                closed_ring_reuse,
            ),
            trial(
                "producer_blocked_on_full_is_disconnected_when_the_consumer_leaves",
                producer_disconnected,
            ),
            trial(
                "subscriber_is_disconnected_when_the_writer_goes",
                subscriber_disconnected,
            ),
            trial(
                "subscriber_notices_a_sigkilled_writer_within_the_grace_period",
                writer_killed,
            ),
            trial(
                "spsc_sigkilled_sleeper_costs_no_futex_calls_after_takeover",
                || dead_sleeper(false),
            ),
            trial(
                "mpmc_sigkilled_sleeper_costs_no_futex_calls_after_the_grace_period",
                || dead_sleeper(true),
            ),
        ],
    )
}

fn options() -> OpenOptions {
    OpenOptions::default().grace(GRACE)
}

fn kill(id: u32) {
    let ok = std::process::Command::new("kill")
        .args(["-9", &id.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn exists(n: &str) -> bool {
    std::path::Path::new(&shm_path(n)).exists()
}

/// Child: `name count close|drop create|open`: sends items 0..count, closes or not, exits.
fn send_and_exit(a: &[String]) {
    let count: u64 = a[1].parse().unwrap();
    let mut tx = if a[3] == "create" {
        Producer::<u64, Ix1>::create(&a[0], 1, &Config::spsc().grace(GRACE)).unwrap()
    } else {
        Producer::<u64, Ix1>::open_with(&a[0], &options()).unwrap()
    };
    for i in 0..count {
        tx.send(&arr1(&[i])).unwrap();
    }
    if a[2] == "close" {
        tx.close();
    }
}

/// Child: attaches as the producer, sends one item, then waits to be killed.
fn send_then_hang(a: &[String]) {
    let mut tx = Producer::<u64, Ix1>::open_with(&a[0], &options()).unwrap();
    tx.send(&arr1(&[99])).unwrap();
    std::thread::sleep(Duration::from_secs(3600));
}

/// Child: waits for the ring to be created, receives until it ends; prints the items and how
/// it ended.
fn consume_all(a: &[String]) {
    let wait = options().wait_for_creator(LONG);
    let mut rx = Consumer::<u64, Ix1>::open_with(&a[0], &wait).unwrap();
    let mut got = vec![];
    let end = loop {
        match rx.recv() {
            Ok(s) => got.push(s[0]),
            Err(e) => break e,
        }
    };
    println!("{got:?} {end}");
}

/// Child: a consumer asleep in `recv` on an empty ring (to be killed there).
fn sleep_in_recv(a: &[String]) {
    let mut rx = Consumer::<u64, Ix1>::open_with(&a[0], &options().spin(0)).unwrap();
    let _ = rx.recv_timeout(LONG);
}

/// Child: a consumer that never sleeps receives `count` items, then prints its futex calls.
fn count_futex_calls(a: &[String]) {
    let count: u64 = a[1].parse().unwrap();
    let mut rx = Consumer::<u64, Ix1>::open_with(&a[0], &options().spin(NEVER_SLEEP)).unwrap();
    let before = ndring::futex_calls();
    for i in 0..count {
        assert_eq!(rx.recv().unwrap()[0], i);
    }
    println!("{}", ndring::futex_calls() - before);
}

/// Child: a producer that claims until it is told the consumer is gone.
fn fill_until_disconnected(a: &[String]) {
    let mut tx = Producer::<u64, Ix1>::open_with(&a[0], &options()).unwrap();
    let mut sent = 0;
    loop {
        match tx.claim() {
            Ok(s) => {
                s.publish();
                sent += 1;
            }
            Err(e) => {
                println!("{sent} {e}");
                return;
            }
        }
    }
}

/// Child: a subscriber that receives until an error, and prints it.
fn subscribe_until_error(a: &[String]) {
    let mut s = Subscriber::<u64, Ix1>::open_with(&a[0], Start::Oldest, &options()).unwrap();
    let mut got = 0;
    loop {
        match s.recv() {
            Ok(_) => got += 1,
            Err(e) => {
                println!("{got} {e}");
                return;
            }
        }
    }
}

/// Child: takes the writer role of a broadcast ring, publishes one frame, waits to be killed.
fn write_then_hang(a: &[String]) {
    let mut w = BroadcastWriter::<u64, Ix1>::open(&a[0]).unwrap();
    w.send(&arr1(&[5])).unwrap();
    std::thread::sleep(Duration::from_secs(3600));
}

/// Child: attaches as a consumer and waits to be killed.
fn attach_and_hang(a: &[String]) {
    let _rx = Consumer::<u64, Ix1>::open_with(&a[0], &options()).unwrap();
    std::thread::sleep(Duration::from_secs(3600));
}

/// Start order 1: the consumer first. It sleeps until the name appears, then drains to Closed.
fn consumer_first_waits_for_creator() {
    let n = name("cfirst");
    let consumer = spawn("consume-all", &[&n]);
    // Give it time to be waiting on the name (either way the outcome is the same).
    std::thread::sleep(Duration::from_millis(200));
    finish(spawn("send-and-exit", &[&n, "3", "close", "create"]), LONG);
    let out = String::from_utf8(finish(consumer, LONG).stdout).unwrap();
    assert_eq!(out.trim(), "[0, 1, 2] the ring is closed");
    // Both gone, nothing unread: the last one out removed the name.
    assert!(!exists(&n));
}

/// Start order 2: the consumer creates the ring; with no producer ever attached it waits
/// (sleeping through several grace periods) instead of reporting Disconnected.
fn consumer_before_any_producer_waits() {
    let n = name("cbefore");
    let mut rx = Consumer::<u64, Ix1>::create(&n, 1, &Config::spsc().grace(GRACE)).unwrap();
    assert!(matches!(rx.try_recv(), Err(Error::Empty)));
    assert!(matches!(rx.recv_timeout(GRACE * 3), Err(Error::Timeout)));
    let producer = spawn("send-and-exit", &[&n, "2", "drop", "open"]);
    assert_eq!(rx.recv().unwrap()[0], 0);
    assert_eq!(rx.recv().unwrap()[0], 1);
    finish(producer, LONG);
    // Drained, and the producer that came has left without closing.
    let e = rx.recv().unwrap_err();
    assert!(matches!(
        e,
        Error::Disconnected {
            missing: Role::Producer
        }
    ));
    assert_eq!(
        e.to_string(),
        "disconnected: no producer is attached to the ring"
    );
}

/// Dropped without close: Disconnected after the last item, and not final.
fn drop_without_close() {
    let n = name("dropped");
    let mut rx = Consumer::<u64, Ix1>::create(&n, 1, &Config::spsc().grace(GRACE)).unwrap();
    finish(spawn("send-and-exit", &[&n, "2", "drop", "open"]), LONG);
    assert_eq!(rx.recv().unwrap()[0], 0);
    assert_eq!(rx.recv().unwrap()[0], 1);
    for _ in 0..2 {
        assert!(matches!(rx.recv(), Err(Error::Disconnected { .. })));
        assert!(matches!(rx.try_recv(), Err(Error::Disconnected { .. })));
    }
    // A producer attaches again: receiving works again, then Closed (final).
    finish(spawn("send-and-exit", &[&n, "1", "close", "open"]), LONG);
    assert_eq!(rx.recv().unwrap()[0], 0);
    assert!(matches!(rx.recv(), Err(Error::Closed)));
}

/// SIGKILL of the producer while the consumer sleeps: the sleeper notices within the grace
/// period and returns Disconnected.
fn producer_killed_while_consumer_sleeps() {
    let n = name("pkill");
    let config = Config::spsc().grace(GRACE).spin(0);
    let mut rx = Consumer::<u64, Ix1>::create(&n, 1, &config).unwrap();
    let producer = spawn("send-then-hang", &[&n]);
    assert_eq!(rx.recv().unwrap()[0], 99);
    let id = producer.id;
    let killer = std::thread::spawn({
        let n = n.clone();
        move || {
            let seg = Segment::open_read_only(&n).unwrap();
            eventually(LONG, "consumer asleep", || seg.sleepers().0 == 1);
            kill(id);
        }
    });
    assert!(matches!(
        rx.recv(),
        Err(Error::Disconnected {
            missing: Role::Producer
        })
    ));
    killer.join().unwrap();
    assert_eq!(rx.segment().sleepers(), (0, 0));
}

/// A consumer that only ever waits less than the grace period (or never waits) still notices a
/// SIGKILLed producer: liveness is checked at most once per grace period across calls.
fn dead_producer_noticed_by_polling() {
    for short_timeouts in [true, false] {
        let n = name(if short_timeouts {
            "poll-to"
        } else {
            "poll-try"
        });
        let mut rx = Consumer::<u64, Ix1>::create(&n, 1, &Config::spsc().grace(GRACE)).unwrap();
        let producer = spawn("send-then-hang", &[&n]);
        assert_eq!(rx.recv().unwrap()[0], 99);
        kill(producer.id);
        let _ = producer.done_after_kill();
        eventually(LONG, "Disconnected reported", || {
            let r = if short_timeouts {
                rx.recv_timeout(Duration::from_millis(5)).map(drop)
            } else {
                rx.try_recv().map(drop)
            };
            match r {
                Err(Error::Disconnected { missing }) => {
                    assert_eq!(missing, Role::Producer);
                    true
                }
                Err(Error::Timeout | Error::Empty) => false,
                other => panic!("unexpected {other:?}"),
            }
        });
    }
}

/// A producer publishes 2 items and exits; a consumer started 1 s later receives both, then
/// Disconnected; when it leaves, the name goes.
fn early_exit() {
    let n = name("early");
    finish(spawn("send-and-exit", &[&n, "2", "drop", "create"]), LONG);
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        exists(&n),
        "the creator's exit removed a ring with unread items"
    );
    let mut rx = Consumer::<u64, Ix1>::open_with(&n, &options()).unwrap();
    assert_eq!(rx.recv().unwrap()[0], 0);
    assert_eq!(rx.recv().unwrap()[0], 1);
    assert!(matches!(
        rx.recv(),
        Err(Error::Disconnected {
            missing: Role::Producer
        })
    ));
    drop(rx);
    assert!(!exists(&n));
}

/// The creator's drop leaves the name while another process is attached; the last one out
/// removes it; `keep(true)` keeps it.
fn last_one_out() {
    let n = name("last");
    let tx = Producer::<u64, Ix1>::create(&n, 1, &Config::spsc()).unwrap();
    let consumer = spawn("attach-and-hang", &[&n]);
    eventually(LONG, "consumer attached", || tx.peers().len() == 2);
    drop(tx);
    assert!(
        exists(&n),
        "the creator removed the name while a consumer was attached"
    );
    // The consumer dies: a dead peer does not hold the name, the next one out removes it.
    kill(consumer.id);
    let _ = consumer.done_after_kill();
    let rx = Consumer::<u64, Ix1>::open(&n).unwrap();
    drop(rx);
    assert!(!exists(&n));
    // Kept: stays after everyone left, and is replaced by the next create.
    let tx = Producer::<u64, Ix1>::create(&n, 1, &Config::spsc().keep(true)).unwrap();
    drop(tx);
    assert!(exists(&n));
    let tx = Producer::<u64, Ix1>::create(&n, 1, &Config::spsc()).unwrap();
    drop(tx);
    assert!(!exists(&n));
    // MPMC: an abandoned claim (a tombstone between head and tail) is nothing unread, a
    // published item is.
    let mut tx = Producer::<u64, Ix1>::create(&n, 1, &Config::mpmc()).unwrap();
    drop(tx.claim().unwrap());
    drop(tx);
    assert!(!exists(&n));
    let mut tx = Producer::<u64, Ix1>::create(&n, 1, &Config::mpmc()).unwrap();
    drop(tx.claim().unwrap());
    tx.send(&arr1(&[1])).unwrap();
    drop(tx);
    assert!(exists(&n));
    let mut rx = Consumer::<u64, Ix1>::open(&n).unwrap();
    assert_eq!(rx.recv().unwrap()[0], 1);
    drop(rx);
    assert!(!exists(&n));
}

/// A closed ring whose peers are gone is replaced by create and open_or_create; one with live
/// peers gives InUse naming them.
fn closed_ring_reuse() {
    let n = name("reuse");
    let config = Config::spsc().keep(true);
    // Closed and drained, kept: every later producer used to fail with Closed.
    let mut tx = Producer::<u64, Ix1>::create(&n, 1, &config).unwrap();
    tx.close();
    drop(tx);
    let mut tx = Producer::<u64, Ix1>::open_or_create(&n, 1, &config).unwrap();
    tx.send(&arr1(&[5])).unwrap();
    tx.close();
    drop(tx);
    // Closed with an unread item and no peers: still over; replaced.
    let mut tx = Producer::<u64, Ix1>::create(&n, 1, &config).unwrap();
    assert!(tx.claim().is_ok());
    tx.close();
    // Closed, with a live consumer attached (in another process): InUse, naming it.
    let consumer = spawn("attach-and-hang", &[&n]);
    eventually(LONG, "consumer attached", || tx.peers().len() == 2);
    drop(tx);
    for r in [
        Producer::<u64, Ix1>::create(&n, 1, &config).map(drop),
        Producer::<u64, Ix1>::open_or_create(&n, 1, &config).map(drop),
        Consumer::<u64, Ix1>::open_or_create(&n, 1, &config).map(drop),
    ] {
        match r {
            Err(Error::InUse { name, peers }) => {
                assert_eq!(name, n);
                assert_eq!(peers.len(), 1);
                assert_eq!((peers[0].role, peers[0].pid), (Role::Consumer, consumer.id));
            }
            other => panic!("expected InUse, got {other:?}"),
        }
    }
    kill(consumer.id);
    let _ = consumer.done_after_kill();
    // Its peer is dead now: replaced.
    let mut tx = Producer::<u64, Ix1>::open_or_create(&n, 1, &Config::spsc()).unwrap();
    assert!(tx.try_claim().is_ok());
}

/// A producer blocked on a full ring whose consumer leaves (after having attached) gets
/// Disconnected.
fn producer_disconnected() {
    let n = name("pfull");
    let rx = Consumer::<u64, Ix1>::create(&n, 1, &Config::spsc().slots(2).keep(true)).unwrap();
    let producer = spawn("fill-until-disconnected", &[&n]);
    let seg = Segment::open_read_only(&n).unwrap();
    eventually(LONG, "producer asleep on a full ring", || {
        seg.sleepers().1 == 1
    });
    drop(rx);
    let out = String::from_utf8(finish(producer, LONG).stdout).unwrap();
    assert_eq!(
        out.trim(),
        "2 disconnected: no consumer is attached to the ring"
    );
    ndring::remove(&n).unwrap();
}

/// A subscriber asleep in recv is woken when the writer is dropped without close.
fn subscriber_disconnected() {
    let n = name("bcast");
    let mut w = BroadcastWriter::<u64, Ix1>::create(&n, 1, &Config::broadcast()).unwrap();
    w.send(&arr1(&[1])).unwrap();
    let sub = spawn("subscribe-until-error", &[&n]);
    let seg = Segment::open_read_only(&n).unwrap();
    eventually(LONG, "subscriber asleep", || seg.sleepers().0 == 1);
    drop(w);
    let out = String::from_utf8(finish(sub, LONG).stdout).unwrap();
    assert_eq!(
        out.trim(),
        "1 disconnected: no writer is attached to the ring"
    );
}

/// A subscriber asleep in recv when its writer is SIGKILLed: `Disconnected` within the grace
/// period (the dead writer's entry stays taken until a new writer takes it over).
fn writer_killed() {
    let n = name("wkill");
    let config = Config::broadcast().keep(true);
    drop(BroadcastWriter::<u64, Ix1>::create(&n, 1, &config).unwrap());
    let writer = spawn("write-then-hang", &[&n]);
    let seg = Segment::open_read_only(&n).unwrap();
    eventually(LONG, "frame published", || seg.positions().published == 1);
    let o = options().spin(0);
    let mut sub = Subscriber::<u64, Ix1>::open_with(&n, Start::Oldest, &o).unwrap();
    assert_eq!(sub.recv().unwrap()[0], 5);
    let id = writer.id;
    let killer = std::thread::spawn(move || {
        eventually(LONG, "subscriber asleep", || seg.sleepers().0 == 1);
        kill(id);
    });
    assert!(matches!(
        sub.recv(),
        Err(Error::Disconnected {
            missing: Role::Writer
        })
    ));
    killer.join().unwrap();
    let _ = writer.done_after_kill();
    drop(sub);
    ndring::remove(&n).unwrap();
}

/// A consumer SIGKILLed while asleep stays counted in `waiters`: every publish would then make a
/// futex call. SPSC: the next consumer takes its role over and the count back. MPMC: a notifier
/// that finds sleepers sweeps (at most once per grace period) and takes the count back. Then
/// 1M items cost (almost) no futex call on either side.
fn dead_sleeper(mpmc: bool) {
    const ITEMS: u64 = 1_000_000;
    let n = name(if mpmc { "deadsl-m" } else { "deadsl-s" });
    let config = if mpmc { Config::mpmc() } else { Config::spsc() }
        .slots(64)
        .grace(GRACE)
        .spin(NEVER_SLEEP);
    let mut tx = Producer::<u64, Ix1>::create(&n, 1, &config).unwrap();
    let sleeper = spawn("sleep-in-recv", &[&n]);
    eventually(LONG, "consumer asleep", || tx.segment().sleepers().0 == 1);
    kill(sleeper.id);
    let _ = sleeper.done_after_kill();
    assert_eq!(
        tx.segment().sleepers().0,
        1,
        "the dead sleeper still counts"
    );
    std::thread::sleep(GRACE);
    let consumer = spawn("count-futex-calls", &[&n, &ITEMS.to_string()]);
    let before = ndring::futex_calls();
    for i in 0..ITEMS {
        tx.send(&arr1(&[i])).unwrap();
    }
    let ours = ndring::futex_calls() - before;
    let theirs: u64 = String::from_utf8(finish(consumer, LONG).stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    println!(
        "futex calls over {ITEMS} items after a dead sleeper: producer {ours}, consumer {theirs}"
    );
    assert_eq!(tx.segment().sleepers(), (0, 0));
    assert!(ours + theirs <= 10, "producer {ours}, consumer {theirs}");
}

fn shm_path(n: &str) -> String {
    format!("/dev/shm{n}")
}

fn symlink_refused() {
    let target = name("lnk-target");
    let link = name("lnk");
    let _p = Producer::<u8, ndarray::Ix1>::create(&target, 4, &Config::spsc()).unwrap();
    let _ = std::fs::remove_file(shm_path(&link));
    std::os::unix::fs::symlink(shm_path(&target), shm_path(&link)).unwrap();
    // Every way of opening refuses the link (O_NOFOLLOW), and none follows it to the target.
    let refused = |r: Result<(), Error>| match r {
        Err(Error::SymbolicLink { name }) => assert_eq!(name, link),
        other => panic!("expected SymbolicLink, got {other:?}"),
    };
    refused(Segment::open(&link, Duration::from_secs(1)).map(drop));
    refused(Segment::open_read_only(&link).map(drop));
    refused(Consumer::<u8, ndarray::Ix1>::open(&link).map(drop));
    // A create does not follow it either: the name is taken by the link.
    assert!(Producer::<u8, ndarray::Ix1>::create(&link, 4, &Config::spsc()).is_err());
    std::fs::remove_file(shm_path(&link)).unwrap();
    // The target was never touched through the link.
    assert!(
        Segment::open(&target, Duration::from_secs(1))
            .unwrap()
            .peers()
            .len()
            == 1
    );
}

/// Child: inspects `name` read-only and prints what it saw; also shows that a read-write open
/// is refused to this user. Every inspection method that reads the mapping runs here, over a
/// `PROT_READ` mapping: a store or RMW on any of their paths would kill this child (SIGSEGV).
fn inspect_read_only(a: &[String]) {
    let n = &a[0];
    match Segment::open(n, Duration::from_secs(1)) {
        Err(Error::PermissionDenied { .. }) => println!("rw denied"),
        other => println!("rw unexpected: {:?}", other.map(drop)),
    }
    let seg = Segment::open_read_only(n).expect("read-only open");
    let peers: Vec<String> = seg
        .peers()
        .iter()
        .map(|p| format!("{}:{}:{}", p.role, p.pid, p.alive))
        .collect();
    let pos = seg.positions();
    println!(
        "{} {} {:?} {} tail={} head={} abandoned={} sleepers={:?} peers={}",
        seg.kind(),
        seg.dtype(),
        seg.shape(),
        seg.slot_count(),
        pos.tail,
        pos.head,
        seg.stats().abandoned,
        seg.sleepers(),
        peers.join(",")
    );
    assert!(matches!(
        Consumer::<u16, Ix2>::from_segment(seg),
        Err(Error::ReadOnly { .. })
    ));
}

fn read_only_inspection() {
    let n = name("ro");
    let is_root = common::effective_uid() == 0;
    // Root bypasses permission bits, so the inspector is a child running as `nobody`; any other
    // user checks the same path on a ring it may read but not write (mode 0o444).
    let mode = if is_root { 0o644 } else { 0o444 };
    let mut tx = Producer::<u16, Ix2>::create(&n, (3, 5), &Config::mpmc().mode(mode)).unwrap();
    tx.claim().unwrap().publish();
    drop(tx.claim().unwrap()); // abandoned: counted
    let me = std::process::id();
    let expected = format!(
        "an MPMC queue u16 [3, 5] 4 tail=2 head=0 abandoned=1 sleepers=(0, 0) peers=producer:{me}:true"
    );
    let out = if is_root {
        let out = common::command("inspect-read-only", &[&n])
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    } else {
        println!("not root: inspecting a 0o444 ring as its owner instead of as `nobody`");
        let out = common::command("inspect-read-only", &[&n])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, vec!["rw denied", expected.as_str()]);
    drop(tx);
    // The published item was never read: the ring outlived its last handle.
    ndring::remove(&n).unwrap();
}

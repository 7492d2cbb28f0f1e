//! The async API across processes: a producer in another process wakes an awaiting consumer;
//! 100 rings awaited in one process (one reactor thread) while another publishes to random ones,
//! every item received once; cancelled `recv_async`s drop nothing and leave no waiter; close,
//! disconnect and a SIGKILLed peer wake every pending future (consumers, subscribers, producers).

mod common;

use std::process::Command;
use std::time::Duration;

use common::{RemoveOnDrop, Rng, finish, name, spawn, trial};
use ndarray::{Array1, Ix1};
use ndring::{
    BroadcastWriter, Client, Config, Consumer, Error, LeaseConsumer, LeaseProducer, OpenOptions,
    Producer, Server, Start, Subscriber,
};

const GRACE: Duration = Duration::from_millis(20);
/// Deadlock guard (not a timing check).
const STALL: Duration = Duration::from_secs(120);

fn main() -> std::process::ExitCode {
    let tests = vec![
        trial(
            "a_producer_in_another_process_wakes_an_awaiting_consumer",
            cross_process_wake,
        ),
        trial(
            "a_hundred_rings_awaited_by_one_thread_every_item_once",
            || many_rings(100),
        ),
        trial(
            "three_hundred_rings_awaited_by_three_threads_every_item_once",
            || many_rings(300),
        ),
        trial(
            "a_cancelled_recv_async_drops_nothing_and_leaves_no_waiter",
            cancellation,
        ),
        trial("close_wakes_every_pending_consumer", || {
            every_consumer_woken("close")
        }),
        trial("a_producer_leaving_wakes_every_pending_consumer", || {
            every_consumer_woken("drop")
        }),
        trial("a_sigkilled_producer_wakes_every_pending_consumer", || {
            every_consumer_woken("kill")
        }),
        trial("close_wakes_every_pending_subscriber", || {
            every_subscriber_woken("close")
        }),
        trial("a_sigkilled_writer_wakes_every_pending_subscriber", || {
            every_subscriber_woken("kill")
        }),
        trial(
            "a_consumer_in_another_process_wakes_an_awaiting_producer",
            producer_woken,
        ),
        trial(
            "a_sigkilled_consumer_wakes_an_awaiting_producer",
            producer_disconnected,
        ),
        trial(
            "async_clients_and_an_async_server_across_processes_every_reply_its_own",
            rpc_async,
        ),
        trial(
            "a_sigkilled_server_wakes_every_pending_call",
            rpc_server_killed,
        ),
        trial(
            "a_producer_in_another_process_wakes_an_awaiting_lease_consumer",
            lease_cross_process_wake,
        ),
        trial(
            "a_cancelled_recv_lease_async_drops_nothing_and_leaves_no_waiter",
            lease_cancellation,
        ),
        trial(
            "a_consumer_in_another_process_wakes_an_awaiting_lease_producer",
            lease_producer_woken,
        ),
    ];
    common::main(
        &[
            ("produce", produce),
            ("publish-random", publish_random),
            ("await-many", await_many),
            ("hold", hold),
            ("write-hold", write_hold),
            ("drain", drain),
            ("serve-async", serve_async),
            ("serve-kill", serve_kill),
        ],
        tests,
    )
}

fn options() -> OpenOptions {
    OpenOptions::default().grace(GRACE).spin(0)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime")
}

fn item(i: u64) -> Array1<u64> {
    ndarray::arr1(&[i, i.wrapping_mul(0x9E37_79B9_7F4A_7C15)])
}

fn check(slot: &ndarray::ArrayRef<u64, Ix1>, i: u64) {
    assert_eq!(slot.to_vec(), item(i).to_vec(), "item {i}");
}

/// Child: opens ring `name` as a producer, sends `count` items (pausing 1 ms every `pause`
/// items, 0: never), then closes.
fn produce(args: &[String]) {
    let mut tx = Producer::<u64, Ix1>::open_with(&args[0], &options()).expect("open");
    let count: u64 = args[1].parse().unwrap();
    let pause: u64 = args[2].parse().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    for i in 0..count {
        tx.send(&item(i)).expect("send");
        if pause != 0 && i % pause == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    tx.close();
}

fn cross_process_wake() {
    let n = name("wake");
    let _rm = RemoveOnDrop(n.clone());
    let mut rx =
        Consumer::<u64, Ix1>::create(&n, 2, &Config::spsc().slots(4).spin(0)).expect("create");
    let child = spawn("produce", &[&n, "500", "7"]);
    let got = runtime().block_on(async {
        let mut i = 0;
        loop {
            match rx.recv_async().await {
                Ok(slot) => {
                    check(&slot, i);
                    i += 1;
                }
                Err(Error::Closed) => return i,
                Err(e) => panic!("recv_async: {e}"),
            }
        }
    });
    finish(child, STALL);
    assert_eq!(got, 500);
    assert_eq!(rx.segment().sleepers(), (0, 0), "no waiter left behind");
}

fn ring_name(base: &str, k: usize) -> String {
    format!("{base}{k}")
}

/// Child: opens the `rings` rings and sends `total` items, each to a random one (ring k's items
/// numbered 0, 1, ... in its own order), then closes every ring.
fn publish_random(args: &[String]) {
    let base = &args[0];
    let total: u64 = args[1].parse().unwrap();
    let rings: usize = args[3].parse().unwrap();
    let mut txs: Vec<_> = (0..rings)
        .map(|k| {
            // Kept at the first success: a producer that attached and left would tell the
            // consumer that its producer is gone (`Disconnected`).
            let mut tx = None;
            common::eventually(STALL, "the consumer created the ring", || {
                tx = Producer::<u64, Ix1>::open_with(&ring_name(base, k), &options()).ok();
                tx.is_some()
            });
            tx.expect("opened")
        })
        .collect();
    let mut next = vec![0u64; rings];
    let mut rng = Rng(args[2].parse().unwrap());
    for i in 0..total {
        let k = rng.below(rings as u64) as usize;
        txs[k].send(&item(next[k])).expect("send");
        next[k] += 1;
        if i % 50 == 0 {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    for tx in &mut txs {
        tx.close();
    }
    let counts: Vec<String> = next.iter().map(u64::to_string).collect();
    println!("{}", counts.join(" "));
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// Child: creates the `rings` rings and awaits them on one tokio thread, each in a task of its own, and prints
/// how many items each received, the threads it had before and the most it had while waiting.
fn await_many(args: &[String]) {
    let base = &args[0];
    let rings: usize = args[1].parse().unwrap();
    // Past 127 rings: two worker threads, so that registrations race for a reactor's places.
    let rt = if rings > 127 {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .expect("tokio runtime")
    } else {
        runtime()
    };
    let before = threads();
    let counts = rt.block_on(async {
        let tasks: Vec<_> = (0..rings)
            .map(|k| {
                let cfg = Config::spsc().slots(4).spin(0).grace(GRACE);
                let mut rx = Consumer::<u64, Ix1>::create(&ring_name(base, k), 2, &cfg)
                    .expect("create ring");
                tokio::spawn(async move {
                    let mut i = 0;
                    loop {
                        match rx.recv_async().await {
                            Ok(slot) => {
                                check(&slot, i);
                                i += 1;
                            }
                            Err(Error::Closed) => return i,
                            Err(e) => panic!("ring {k}: {e}"),
                        }
                    }
                })
            })
            .collect();
        let watch = tokio::spawn(async {
            let mut most = 0;
            for _ in 0..200 {
                most = most.max(threads());
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            most
        });
        let mut counts = Vec::new();
        for t in tasks {
            counts.push(t.await.expect("task").to_string());
        }
        (counts, watch.await.unwrap())
    });
    println!("{} {} {}", before, counts.1, counts.0.join(" "));
}

/// `rings` rings awaited in one process while another publishes to random ones: every item
/// received once, in order, and the awaiting process gains at most one thread per 127 rings
/// (`futex_waitv` takes 128 words, one of them the reactor's own).
fn many_rings(rings: usize) {
    let base = name(&format!("m{rings}-"));
    let _rms: Vec<_> = (0..rings)
        .map(|k| RemoveOnDrop(ring_name(&base, k)))
        .collect();
    let r = rings.to_string();
    let consumer = spawn("await-many", &[&base, &r]);
    let seed = common::seed().to_string();
    let publisher = spawn("publish-random", &[&base, "20000", &seed, &r]);
    let sent = String::from_utf8(finish(publisher, STALL).stdout).unwrap();
    let got = String::from_utf8(finish(consumer, STALL).stdout).unwrap();
    let mut got = got.split_whitespace();
    let before: usize = got.next().unwrap().parse().unwrap();
    let most: usize = got.next().unwrap().parse().unwrap();
    let got: Vec<&str> = got.collect();
    let sent: Vec<&str> = sent.split_whitespace().collect();
    assert_eq!(sent.len(), rings);
    assert_eq!(
        got, sent,
        "every ring received exactly what was sent to it, in order"
    );
    let threads = rings.div_ceil(127);
    assert!(
        most <= before + threads,
        "{rings} awaited rings cost at most {threads} thread(s): {before} threads before, {most} while waiting"
    );
}

fn cancellation() {
    let n = name("cancel");
    let _rm = RemoveOnDrop(n.clone());
    let mut rx =
        Consumer::<u64, Ix1>::create(&n, 2, &Config::spsc().slots(4).spin(0)).expect("create");
    let child = spawn("produce", &[&n, "3000", "3"]);
    let mut rng = Rng(common::seed());
    let (got, cancelled) = runtime().block_on(async {
        let (mut i, mut cancelled) = (0, 0);
        loop {
            let wait = Duration::from_micros(rng.below(400));
            tokio::select! {
                r = rx.recv_async() => match r {
                    Ok(slot) => {
                        check(&slot, i);
                        i += 1;
                    }
                    Err(Error::Closed) => return (i, cancelled),
                    Err(e) => panic!("recv_async: {e}"),
                },
                _ = tokio::time::sleep(wait) => cancelled += 1,
            }
        }
    });
    finish(child, STALL);
    assert_eq!(got, 3000, "every item received once, in order");
    assert!(cancelled > 0, "some waits were cancelled");
    assert_eq!(rx.segment().sleepers(), (0, 0), "no waiter left behind");
}

/// Child: opens ring `name` as a producer; once `pending` handles sleep on it, `close`s,
/// leaves (`drop`), or hangs to be SIGKILLed (`kill`).
fn hold(args: &[String]) {
    let mut tx = Producer::<u64, Ix1>::open_with(&args[0], &options()).expect("open");
    let pending: u32 = args[2].parse().unwrap();
    wait_sleepers(|| tx.segment().sleepers().0, pending);
    match args[1].as_str() {
        "close" => tx.close(),
        "drop" => drop(tx),
        _ => kill_self(),
    }
}

/// Dies by SIGKILL, as a crash would: nothing of ours runs after it.
fn kill_self() -> ! {
    Command::new("kill")
        .args(["-9", &std::process::id().to_string()])
        .status()
        .expect("kill");
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn wait_sleepers(sleepers: impl Fn() -> u32, n: u32) {
    common::eventually(STALL, "every future registered", || sleepers() >= n);
}

fn every_consumer_woken(action: &str) {
    const N: usize = 4;
    let n = name(&format!("all-{action}"));
    let _rm = RemoveOnDrop(n.clone());
    let cfg = Config::mpmc().slots(4).spin(0).grace(GRACE);
    let first = Consumer::<u64, Ix1>::create(&n, 2, &cfg).expect("create");
    let mut rxs = vec![first];
    for _ in 1..N {
        rxs.push(Consumer::open_with(&n, &options()).expect("open"));
    }
    let child = spawn("hold", &[&n, action, &N.to_string()]);
    let results = runtime().block_on(async {
        let tasks: Vec<_> = rxs
            .into_iter()
            .map(|mut rx| {
                tokio::spawn(async move {
                    let r = rx.recv_async().await.map(|_| ());
                    (r, rx.segment().sleepers().0)
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    if action == "kill" {
        child.done_after_kill();
    } else {
        finish(child, STALL);
    }
    for (r, _) in &results {
        match (action, r) {
            ("close", Err(Error::Closed)) => {}
            ("drop" | "kill", Err(Error::Disconnected { .. })) => {}
            _ => panic!("{action}: a pending recv_async returned {r:?}"),
        }
    }
}

/// Child: creates broadcast ring `name` as its writer and, once `pending` subscribers sleep on
/// it, `close`s or dies by SIGKILL.
fn write_hold(args: &[String]) {
    let cfg = Config::broadcast().slots(8).grace(GRACE);
    let mut w = BroadcastWriter::<u64, Ix1>::create(&args[0], 2, &cfg).expect("create");
    let pending: u32 = args[2].parse().unwrap();
    wait_sleepers(|| w.segment().sleepers().0, pending);
    match args[1].as_str() {
        "close" => w.close(),
        _ => kill_self(),
    }
}

fn every_subscriber_woken(action: &str) {
    const N: usize = 4;
    let n = name(&format!("sub-{action}"));
    let _rm = RemoveOnDrop(n.clone());
    let child = spawn("write-hold", &[&n, action, &N.to_string()]);
    let open = || Subscriber::<u64, Ix1>::open_with(&n, Start::Newest, &options());
    common::eventually(STALL, "the writer created the ring", || open().is_ok());
    let subs: Vec<_> = (0..N).map(|_| open().expect("open")).collect();
    let results = runtime().block_on(async {
        let tasks: Vec<_> = subs
            .into_iter()
            .map(|mut s| tokio::spawn(async move { s.recv_async().await.map(|f| f.seq()) }))
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    if action == "kill" {
        child.done_after_kill();
    } else {
        finish(child, STALL);
    }
    for r in &results {
        match (action, r) {
            ("close", Err(Error::Closed)) => {}
            ("kill", Err(Error::Disconnected { .. })) => {}
            _ => panic!("{action}: a pending subscriber's recv_async returned {r:?}"),
        }
    }
}

/// Child: opens ring `name` as a consumer, waits until a producer sleeps on it, then receives
/// `count` items (`kill`: dies by SIGKILL instead).
fn drain(args: &[String]) {
    let mut rx = Consumer::<u64, Ix1>::open_with(&args[0], &options()).expect("open");
    wait_sleepers(|| rx.segment().sleepers().1, 1);
    if args[1] == "kill" {
        kill_self();
    }
    let count: u64 = args[1].parse().unwrap();
    for i in 0..count {
        check(&rx.recv().expect("recv"), i);
    }
}

fn producer_woken() {
    let n = name("pwake");
    let _rm = RemoveOnDrop(n.clone());
    let mut tx =
        Producer::<u64, Ix1>::create(&n, 2, &Config::spsc().slots(2).spin(0)).expect("create");
    let child = spawn("drain", &[&n, "200"]);
    runtime().block_on(async {
        for i in 0..200 {
            tx.send_async(&item(i)).await.expect("send_async");
        }
    });
    finish(child, STALL);
    assert_eq!(tx.segment().sleepers(), (0, 0), "no waiter left behind");
}

fn producer_disconnected() {
    let n = name("pkill");
    let _rm = RemoveOnDrop(n.clone());
    let cfg = Config::spsc().slots(2).spin(0).grace(GRACE);
    let mut tx = Producer::<u64, Ix1>::create(&n, 2, &cfg).expect("create");
    let child = spawn("drain", &[&n, "kill"]);
    let r = runtime().block_on(async {
        let mut i = 0;
        loop {
            match tx.send_async(&item(i)).await {
                Ok(_) => i += 1,
                Err(e) => return e,
            }
        }
    });
    child.done_after_kill();
    assert!(
        matches!(r, Error::Disconnected { .. }),
        "a pending claim_async after its consumer died: {r:?}"
    );
}

type Srv = Server<u64, Ix1, u64, Ix1>;
type Cli = Client<u64, Ix1, u64, Ix1>;

/// The reply a request determines.
fn answer(req: &ndarray::ArrayRef<u64, Ix1>) -> Array1<u64> {
    ndarray::arr1(&[req[0].wrapping_mul(3), req[1] ^ 0xABCD])
}

/// Child: creates the request/reply segment `name` and serves `count` requests with
/// `recv_async` on a tokio thread.
fn serve_async(args: &[String]) {
    let cfg = Config::rpc().slots(4).spin(0).grace(GRACE);
    let srv = Srv::create(&args[0], 2, 2, &cfg).expect("create");
    let count: u64 = args[1].parse().unwrap();
    runtime().block_on(async {
        for _ in 0..count {
            let req = srv.recv_async().await.expect("recv_async");
            let a = answer(&req);
            req.reply_with(&a);
        }
    });
    // Let the last replies be read before the segment may go.
    common::eventually(STALL, "every caller is gone", || {
        srv.segment().calls().is_none_or(|c| c.replied == 0)
    });
}

fn open_client(n: &str) -> Cli {
    common::eventually(STALL, "the server created the segment", || {
        Cli::open_with(n, &options()).is_ok()
    });
    Cli::open_with(n, &options()).expect("open")
}

fn rpc_async() {
    let n = name("rpca");
    let _rm = RemoveOnDrop(n.clone());
    let child = spawn("serve-async", &[&n, "400"]);
    let cli = open_client(&n);
    runtime().block_on(async {
        let calls = (0..2u64).map(|c| {
            let cli = &cli;
            async move {
                for i in 0..200u64 {
                    let req = ndarray::arr1(&[c << 32 | i, i]);
                    let reply = cli.call_async(&req).await.expect("call_async");
                    assert_eq!(reply.to_vec(), answer(&req).to_vec(), "call {c}/{i}");
                }
            }
        });
        let mut all: Vec<_> = calls.map(Box::pin).collect();
        let (a, b) = all.split_at_mut(1);
        tokio::join!(&mut a[0], &mut b[0]);
    });
    drop(cli);
    finish(child, STALL);
}

/// Child: creates the segment, takes every request it can, and once `held` are taken dies by
/// SIGKILL holding them.
fn serve_kill(args: &[String]) {
    let cfg = Config::rpc().slots(4).spin(0).grace(GRACE);
    let srv = Srv::create(&args[0], 2, 4, &cfg).expect("create");
    let held: usize = args[1].parse().unwrap();
    let mut taken = Vec::new();
    while taken.len() < held {
        taken.push(srv.recv().expect("recv"));
    }
    kill_self();
}

fn rpc_server_killed() {
    const N: u64 = 3;
    let n = name("rpck");
    let _rm = RemoveOnDrop(n.clone());
    let child = spawn("serve-kill", &[&n, &N.to_string()]);
    let cli = open_client(&n);
    let results = runtime().block_on(async {
        let calls = (0..N).map(|i| {
            let cli = &cli;
            async move { cli.call_async(&ndarray::arr1(&[i, i])).await.map(|_| ()) }
        });
        let mut out = Vec::new();
        let mut futs: Vec<_> = calls.map(Box::pin).collect();
        // All in flight at once: the server takes all three before it dies.
        let all = futures_util::future::join_all(futs.iter_mut());
        for r in all.await {
            out.push(r);
        }
        out
    });
    child.done_after_kill();
    for r in &results {
        assert!(
            matches!(
                r,
                Err(Error::RequestFailed { .. } | Error::Disconnected { .. })
            ),
            "a call held by a server that died: {r:?}"
        );
    }
}

/// Leases received in a future, held two at a time and dropped out of order (SPSC: `head`
/// waits for the older one), as the Python binding's arrays are.
fn lease_cross_process_wake() {
    let n = name("lwake");
    let _rm = RemoveOnDrop(n.clone());
    let rx = Consumer::<u64, Ix1>::create(&n, 2, &Config::spsc().slots(4).spin(0)).expect("create");
    let mut rx = LeaseConsumer::from(rx);
    let child = spawn("produce", &[&n, "500", "7"]);
    let got = runtime().block_on(async {
        let (mut i, mut kept) = (0, None);
        loop {
            match rx.recv_lease_async().await {
                Ok(lease) => {
                    check(&lease.view(), i);
                    i += 1;
                    // Keep every other lease until the next one arrives, then drop it last.
                    match kept.take() {
                        None if i % 2 == 1 => kept = Some(lease),
                        older => {
                            drop(lease);
                            drop(older);
                        }
                    }
                }
                Err(Error::Closed) => return i,
                Err(e) => panic!("recv_lease_async: {e}"),
            }
        }
    });
    finish(child, STALL);
    assert_eq!(got, 500);
    assert_eq!(rx.held(), 0);
    assert_eq!(rx.segment().sleepers(), (0, 0), "no waiter left behind");
}

/// MPMC (a peer entry per held lease): cancelled waits take nothing, and leave no waiter.
fn lease_cancellation() {
    let n = name("lcancel");
    let _rm = RemoveOnDrop(n.clone());
    let rx = Consumer::<u64, Ix1>::create(&n, 2, &Config::mpmc().slots(4).spin(0)).expect("create");
    let mut rx = LeaseConsumer::from(rx);
    let child = spawn("produce", &[&n, "3000", "3"]);
    let mut rng = Rng(common::seed());
    let (got, cancelled) = runtime().block_on(async {
        let (mut i, mut cancelled) = (0, 0);
        loop {
            let wait = Duration::from_micros(rng.below(400));
            tokio::select! {
                r = rx.recv_lease_async() => match r {
                    Ok(lease) => {
                        check(&lease.view(), i);
                        i += 1;
                    }
                    Err(Error::Closed) => return (i, cancelled),
                    Err(e) => panic!("recv_lease_async: {e}"),
                },
                _ = tokio::time::sleep(wait) => cancelled += 1,
            }
        }
    });
    finish(child, STALL);
    assert_eq!(got, 3000, "every item received once, in order");
    assert!(cancelled > 0, "some waits were cancelled");
    assert_eq!(rx.segment().sleepers(), (0, 0), "no waiter left behind");
}

fn lease_producer_woken() {
    let n = name("lpwake");
    let _rm = RemoveOnDrop(n.clone());
    let tx = Producer::<u64, Ix1>::create(&n, 2, &Config::spsc().slots(2).spin(0)).expect("create");
    let mut tx = LeaseProducer::from(tx);
    let child = spawn("drain", &[&n, "200"]);
    runtime().block_on(async {
        for i in 0..200 {
            let mut lease = tx.claim_lease_async().await.expect("claim_lease_async");
            lease.assign(&item(i)).expect("assign");
            assert_eq!(lease.publish(), i + 1);
        }
    });
    finish(child, STALL);
    assert_eq!(tx.segment().sleepers(), (0, 0), "no waiter left behind");
}

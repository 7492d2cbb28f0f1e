//! Request and reply across processes: the Frigate pattern (clients sending tensors to a
//! detector), every reply checked to answer its own request; a call that times out before its
//! late reply; a client SIGKILLed between send and receive; a server SIGKILLed holding a request;
//! a server that leaves.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{RemoveOnDrop, command, finish, name, spawn, trial};
use ndarray::{Array1, Ix1, Ix2};
use ndring::{Client, Config, Error, OpenOptions, Server};

const GRACE: Duration = Duration::from_millis(20);
/// Deadlock guard (not a timing check).
const STALL: Duration = Duration::from_secs(60);
/// A request: 4 KiB of u32, every element derived from (client, i).
const REQ: usize = 1024;

type Srv = Server<u32, Ix1, f32, Ix2>;
type Cli = Client<u32, Ix1, f32, Ix2>;

fn main() -> std::process::ExitCode {
    let tests = vec![
        trial(
            "two_clients_one_server_every_reply_answers_its_request",
            || frigate(2, 1),
        ),
        trial(
            "four_clients_two_servers_every_reply_answers_its_request",
            || frigate(4, 2),
        ),
        trial("a_late_reply_to_a_timed_out_call_is_discarded", late_reply),
        trial(
            "a_client_killed_between_send_and_receive_frees_its_calls",
            dead_client,
        ),
        trial(
            "a_server_killed_holding_a_request_fails_it_to_its_caller",
            dead_server,
        ),
        trial(
            "a_caller_waiting_when_the_last_server_leaves_is_disconnected",
            server_leaves,
        ),
        trial(
            "several_calls_in_flight_each_get_their_own_reply",
            in_flight,
        ),
    ];
    common::main(
        &[
            ("serve", serve),
            ("ask", ask),
            ("slow-serve", slow_serve),
            ("send-and-hang", send_and_hang),
            ("take-and-hang", take_and_hang),
        ],
        tests,
    )
}

fn options() -> OpenOptions {
    OpenOptions::default().grace(GRACE)
}

fn request(client: u32, i: u32) -> Array1<u32> {
    Array1::from_shape_fn(REQ, |j| {
        client.wrapping_mul(0x9E37_79B9) ^ i.wrapping_mul(31) ^ j as u32
    })
}

/// The reply a request determines: (20, 6) f32, row 0 = the request's first three words and its
/// length, the rest its checksum.
fn answer(req: &ndarray::ArrayRef<u32, Ix1>, out: &mut ndarray::ArrayViewMut<f32, Ix2>) {
    let sum = req.iter().fold(0u32, |a, &x| a.wrapping_add(x));
    out.fill((sum % 1_000_003) as f32);
    out[[0, 0]] = (req[0] % 65536) as f32;
    out[[0, 1]] = (req[1] % 65536) as f32;
    out[[0, 2]] = req.len() as f32;
}

fn check(req: &Array1<u32>, reply: &ndarray::ArrayRef<f32, Ix2>) {
    let mut want = ndarray::Array2::<f32>::zeros((20, 6));
    answer(req, &mut want.view_mut());
    assert_eq!(reply, want, "a reply that does not answer its request");
}

/// Child: serves until the segment's clients are all gone (a[1] requests in all, then exits).
fn serve(a: &[String]) {
    let srv = Srv::open_with(&a[0], &options()).unwrap();
    println!("serving");
    let n: usize = a[1].parse().unwrap();
    let mut served = 0;
    while served < n {
        match srv.recv_timeout(Duration::from_millis(200)) {
            Ok(mut req) => {
                let (q, mut r) = req.parts();
                answer(&q, &mut r);
                req.send();
                served += 1;
            }
            Err(Error::Timeout) => {}
            Err(e) => panic!("{e}"),
        }
    }
}

/// Child: client a[1] makes a[2] calls, checking each reply against its own request.
fn ask(a: &[String]) {
    let cli = Cli::open_with(&a[0], &options()).unwrap();
    let me: u32 = a[1].parse().unwrap();
    for i in 0..a[2].parse::<u32>().unwrap() {
        let req = request(me, i);
        let reply = cli.call(&req, Some(STALL)).unwrap();
        check(&req, &reply);
    }
    println!("ok");
}

/// Child: serves one request after sleeping 200 ms (prints whether the reply was delivered),
/// then one more at once.
fn slow_serve(a: &[String]) {
    let srv = Srv::open_with(&a[0], &options()).unwrap();
    println!("serving");
    let mut req = srv.recv_timeout(STALL).unwrap();
    thread::sleep(Duration::from_millis(200));
    let (q, mut r) = req.parts();
    answer(&q, &mut r);
    let first = req.send();
    let mut req = srv.recv_timeout(STALL).unwrap();
    let (q, mut r) = req.parts();
    answer(&q, &mut r);
    let second = req.send();
    println!("{first} {second}");
}

/// Child: a client that sends a[1] requests, says so, and hangs.
fn send_and_hang(a: &[String]) {
    let cli = Cli::open_with(&a[0], &options()).unwrap();
    let pending: Vec<_> = (0..a[1].parse::<u32>().unwrap())
        .map(|i| cli.send(&request(99, i)).unwrap())
        .collect();
    println!("sent");
    thread::sleep(STALL);
    drop(pending);
}

/// Child: a server that takes one request, says so, and hangs.
fn take_and_hang(a: &[String]) {
    let srv = Srv::open_with(&a[0], &options()).unwrap();
    let _req = srv.recv_timeout(STALL).unwrap();
    println!("taken");
    thread::sleep(STALL);
}

fn create(n: &str, config: Config) -> Srv {
    Srv::create(n, REQ, (20, 6), &config.grace(GRACE)).unwrap()
}

fn frigate(clients: usize, servers: usize) {
    let n = name(&format!("rpc-f{clients}{servers}"));
    let _rm = RemoveOnDrop(n.clone());
    let calls = 300;
    // The creator serves nothing: it only holds the segment while the children work.
    let _holder = create(&n, Config::rpc().clients(clients));
    let total = clients * calls;
    // Each server serves its share; the shares add up to every call.
    let srvs: Vec<_> = (0..servers)
        .map(|k| {
            let share = total / servers + usize::from(k < total % servers);
            spawn("serve", &[&n, &share.to_string()])
        })
        .collect();
    let clis: Vec<_> = (0..clients)
        .map(|c| spawn("ask", &[&n, &c.to_string(), &calls.to_string()]))
        .collect();
    for c in clis {
        assert_eq!(
            String::from_utf8(finish(c, STALL).stdout).unwrap().trim(),
            "ok"
        );
    }
    for s in srvs {
        finish(s, STALL);
    }
    let counts = _holder.segment().calls().unwrap();
    assert_eq!(counts.sent_total, total as u64);
    assert_eq!(counts.replied_total, total as u64);
    assert_eq!(counts.free, _holder.segment().slot_count());
}

fn late_reply() {
    let n = name("rpc-late");
    let _rm = RemoveOnDrop(n.clone());
    let srv_holder = create(&n, Config::rpc());
    let (mut server, _) = start("slow-serve", &[&n]);
    let cli = Cli::open_with(&n, &options()).unwrap();
    let first = request(1, 0);
    assert!(matches!(
        cli.call(&first, Some(Duration::from_millis(20))),
        Err(Error::Timeout)
    ));
    // The next call gets its own reply, never the late one.
    let second = request(1, 1);
    let reply = cli.call(&second, Some(STALL)).unwrap();
    check(&second, &reply);
    drop(reply);
    assert!(server.wait().unwrap().success());
    let said = LINES.with(|l| l.borrow_mut().take()).unwrap();
    assert_eq!(said.recv_timeout(STALL).unwrap().trim(), "false true");
    drop(srv_holder);
}

fn dead_client() {
    let n = name("rpc-dc");
    let _rm = RemoveOnDrop(n.clone());
    let srv = create(&n, Config::rpc().slots(2));
    let (child, _) = start("send-and-hang", &[&n, "2"]);
    // Every call is the dead client's: a live client gets one only once they are recovered.
    kill(child);
    let cli = Cli::open_with(&n, &options()).unwrap();
    thread::scope(|s| {
        s.spawn(|| {
            // The dead client's requests may be served (their replies go nowhere) or skipped.
            let deadline = Instant::now() + STALL;
            let mut mine = 0;
            while mine < 1 {
                assert!(
                    Instant::now() < deadline,
                    "the live client's call never came"
                );
                if let Ok(mut req) = srv.recv_timeout(Duration::from_millis(50)) {
                    let live = req[0] == request(7, 0)[0];
                    let (q, mut r) = req.parts();
                    answer(&q, &mut r);
                    // A dead client's reply lands in its call, which the recovery frees.
                    let delivered = req.send();
                    assert!(delivered || !live, "the live client's reply was discarded");
                    mine += usize::from(live);
                }
            }
        });
        let req = request(7, 0);
        let reply = cli.call(&req, Some(STALL)).unwrap();
        check(&req, &reply);
    });
    assert!(srv.segment().stats().recovered_claims >= 1);
}

fn dead_server() {
    let n = name("rpc-ds");
    let _rm = RemoveOnDrop(n.clone());
    let _holder = create(&n, Config::rpc());
    let cli = Cli::open_with(&n, &options()).unwrap();
    let (child, _) = {
        let p = cli.send(&request(3, 0)).unwrap();
        let c = start("take-and-hang", &[&n]);
        // A second request, queued while the hung server holds the first.
        let queued = cli.send(&request(3, 1)).unwrap();
        kill(c.0);
        // The held request fails to its caller: never lost silently.
        assert!(matches!(
            p.wait(Some(STALL)),
            Err(Error::RequestFailed { .. })
        ));
        // The queued one is answered once by a live server.
        let live = Srv::open_with(&n, &options()).unwrap();
        let mut req = live.recv_timeout(STALL).unwrap();
        let (q, mut r) = req.parts();
        answer(&q, &mut r);
        assert!(req.send());
        check(&request(3, 1), &queued.receive().unwrap());
        assert!(
            matches!(live.try_recv(), Err(Error::Empty)),
            "a request served twice"
        );
        (live, ())
    };
    drop(child);
}

fn server_leaves() {
    let n = name("rpc-gone");
    let _rm = RemoveOnDrop(n.clone());
    let srv = create(&n, Config::rpc());
    let cli = Cli::open_with(&n, &options()).unwrap();
    let p = cli.send(&request(1, 0)).unwrap();
    thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_millis(20));
            drop(srv);
        });
        assert!(matches!(
            p.wait(Some(STALL)),
            Err(Error::Disconnected {
                missing: ndring::Role::Server
            })
        ));
    });
}

fn in_flight() {
    let n = name("rpc-fly");
    let _rm = RemoveOnDrop(n.clone());
    let srv = create(&n, Config::rpc().slots(8));
    let cli = Cli::open_with(&n, &options()).unwrap();
    let reqs: Vec<_> = (0..8).map(|i| request(5, i)).collect();
    let pending: Vec<_> = reqs.iter().map(|r| cli.send(r).unwrap()).collect();
    for _ in 0..8 {
        let mut req = srv.recv_timeout(STALL).unwrap();
        let (q, mut r) = req.parts();
        answer(&q, &mut r);
        req.send();
    }
    // Received in reverse order: each still answers its own request.
    for (req, p) in reqs.iter().zip(pending).rev() {
        check(req, &p.receive().unwrap());
    }
}

/// Starts child `role` with `args`, waits for its first line.
fn start(role: &str, args: &[&str]) -> (Child, String) {
    let mut child = command(role, args).stdout(Stdio::piped()).spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut r = BufReader::new(out);
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        let _ = tx.send((line, r));
    });
    let (line, rest) = rx.recv_timeout(STALL).expect("the child reached its point");
    // Keep reading so that the child never blocks on a full pipe; the lines go to `LINES`.
    let (tx, lines) = mpsc::channel();
    thread::spawn(move || {
        let mut rest = rest;
        loop {
            let mut line = String::new();
            if rest.read_line(&mut line).map_or(true, |n| n == 0) || tx.send(line).is_err() {
                break;
            }
        }
    });
    LINES.with(|l| *l.borrow_mut() = Some(lines));
    (child, line.trim().to_string())
}

thread_local! {
    /// The later lines of the child `start` started last on this thread.
    static LINES: std::cell::RefCell<Option<mpsc::Receiver<String>>> =
        const { std::cell::RefCell::new(None) };
}

fn kill(mut c: Child) {
    c.kill().unwrap();
    c.wait().unwrap();
}

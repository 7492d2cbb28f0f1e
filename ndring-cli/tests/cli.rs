//! The `ndring` command against live rings made here, across real processes: `ls` tells live,
//! closed, stale and unfinished rings apart and skips other files; `rm --stale` never removes a
//! ring in use; `peek` writes a .npy that numpy loads byte-exact without taking the item;
//! `--json` is valid JSON; errors are one line with exit status 1, usage errors status 2.

// The library's cross-process test harness, shared rather than copied: a child is this test
// binary run again with a role.
#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "cli/kinds.rs"]
mod kinds;
#[path = "cli/peek.rs"]
mod peek;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{name, trial};
use ndarray::{Array, Ix1, Ix2};
use ndring::{BroadcastWriter, Config, Consumer, Producer, Start, Subscriber};
use peek::check_npy;
use serde_json::Value;

const LONG: Duration = Duration::from_secs(60);

fn main() -> std::process::ExitCode {
    common::main(
        &[
            ("hold-then-die", hold_then_die),
            ("stream-items", stream_items),
            ("drain", drain),
            ("hold-array-write", kinds::hold_array_write),
            ("send-request", kinds::send_request),
        ],
        vec![
            trial("ls_tells_live_closed_stale_unfinished", ls_states),
            trial("rm_stale_never_removes_a_ring_in_use", rm_stale),
            trial("rm_by_name_refuses_live_rings_unless_forced", rm_names),
            trial(
                "peek_writes_npy_that_numpy_loads_byte_exact",
                peek::peek_npy,
            ),
            trial(
                "peek_writes_every_element_type_numpy_loads",
                peek::peek_dtypes,
            ),
            trial("peek_png_and_peek_errors", peek::peek_png),
            trial("inspect_json_shows_peers_counters_and_lag", inspect_json),
            trial("hz_and_top_stop_after_count", hz_top),
            trial(
                "read_only_rings_are_inspected_without_write_access",
                read_only,
            ),
            trial("errors_are_one_line_with_exit_codes", errors),
            trial(
                "newest_copies_are_whole_while_streaming",
                newest_while_streaming,
            ),
            trial(
                "array_shows_its_writer_by_pid_and_stale_one_is_removed",
                kinds::array_holder_peek_and_stale,
            ),
            trial("peek_copies_a_shared_array", kinds::array_peek),
            trial(
                "rpc_shows_queued_request_and_peers_and_refuses_peek",
                kinds::rpc_queued_request,
            ),
        ],
    )
}

/// Child: creates an SPSC ring it keeps, publishes 3 items, says so, and sleeps until killed.
fn hold_then_die(a: &[String]) {
    let mut p = Producer::<u8, Ix1>::create(&a[0], 8, &Config::spsc().keep(true)).unwrap();
    for i in 0..3u8 {
        p.send(&Array::from_elem(8, i).view()).unwrap();
    }
    println!("ready");
    std::thread::sleep(LONG * 10);
}

/// A ring whose creator and only peer were SIGKILLed: stale.
fn make_stale(n: &str) -> u32 {
    let mut child = common::command("hold-then-die", &[n])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "ready");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    child.id()
}

/// Removes the rings a test made when it ends (items left unread keep a name otherwise).
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = std::fs::remove_file(format!("/dev/shm{n}"));
        }
    }
}

fn ndring(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ndring"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = ndring(args);
    assert!(
        out.status.success(),
        "ndring {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a failing command: its status code and its stderr, which must be one line.
fn fails(args: &[&str]) -> (i32, String) {
    let out = ndring(args);
    let err = String::from_utf8(out.stderr).unwrap();
    let code = out.status.code().unwrap();
    if code == 1 {
        assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
        assert!(err.starts_with("ndring: "), "{err:?}");
    }
    (code, err)
}

fn json(args: &[&str]) -> Value {
    serde_json::from_str(&ok(args)).expect("valid JSON")
}

/// `ls --json` rows of this test process's rings (pattern `ndt-PID-*`), by name.
fn ls_rows() -> Vec<Value> {
    let pattern = format!("ndt-{}-*", std::process::id());
    json(&["ls", "--json", &pattern])
        .as_array()
        .unwrap()
        .clone()
}

fn row<'a>(rows: &'a [Value], n: &str) -> Option<&'a Value> {
    rows.iter().find(|r| r["name"] == n)
}

fn exists(n: &str) -> bool {
    Path::new(&format!("/dev/shm{n}")).exists()
}

fn ls_states() {
    let (live, closed, stale, unfinished, foreign) = (
        name("ls-live"),
        name("ls-closed"),
        name("ls-stale"),
        name("ls-unfin"),
        name("ls-foreign"),
    );
    let _c = Cleanup(vec![
        live.clone(),
        closed.clone(),
        stale.clone(),
        unfinished.clone(),
        foreign.clone(),
    ]);
    let mut tx = Producer::<u16, Ix2>::create(&live, (2, 3), &Config::mpmc().slots(8)).unwrap();
    let _rx = Consumer::<u16, Ix2>::open(&live).unwrap();
    for _ in 0..5 {
        tx.send(&Array::zeros((2, 3)).view()).unwrap();
    }
    let mut w =
        BroadcastWriter::<f32, Ix1>::create(&closed, 4, &Config::broadcast().keep(true)).unwrap();
    w.send(&Array::zeros(4).view()).unwrap();
    w.close();
    let dead = make_stale(&stale);
    // An unfinished segment: ndring's magic and a dead creator, never marked ready.
    let mut header = vec![0u8; 4096];
    header[..8].copy_from_slice(b"NDRING\0\x01");
    header[176..180].copy_from_slice(&dead.to_ne_bytes());
    std::fs::write(format!("/dev/shm{unfinished}"), &header).unwrap();
    // Another program's object: skipped, not an error.
    std::fs::write(format!("/dev/shm{foreign}"), vec![7u8; 4096]).unwrap();

    let rows = ls_rows();
    let mine = format!("/ndt-{}-", std::process::id());
    assert!(
        rows.iter()
            .all(|r| r["name"].as_str().unwrap().starts_with(&mine))
    );
    let r = row(&rows, &live).expect("live ring listed");
    assert_eq!(r["state"], "live");
    assert_eq!((&r["kind"], &r["dtype"]), (&"mpmc".into(), &"u16".into()));
    assert_eq!(r["shape"], serde_json::json!([2, 3]));
    assert_eq!((&r["published"], &r["peers_alive"]), (&5.into(), &2.into()));
    assert_eq!(r["creator_pid"], std::process::id());
    // What is attached, by program name: this test process (a bridge shows `ndring-bridge`).
    let me = this_program();
    assert_eq!(r["programs"], serde_json::json!([me]));
    let r = row(&rows, &closed).expect("closed ring listed");
    assert_eq!(
        (&r["state"], &r["kind"]),
        (&"closed".into(), &"broadcast".into())
    );
    assert_eq!(r["published"], 1);
    let r = row(&rows, &stale).expect("stale ring listed");
    assert_eq!(r["state"], "stale");
    assert_eq!(
        (&r["creator_pid"], &r["creator_alive"]),
        (&dead.into(), &false.into())
    );
    assert_eq!((&r["peers"], &r["peers_alive"]), (&1.into(), &0.into()));
    assert_eq!(
        r["programs"],
        serde_json::json!([]),
        "a dead peer has no program"
    );
    assert_eq!(r["published"], 3);
    let r = row(&rows, &unfinished).expect("unfinished segment listed");
    assert_eq!(
        (&r["state"], &r["creator_pid"]),
        (&"unfinished".into(), &dead.into())
    );
    assert!(
        row(&rows, &foreign).is_none(),
        "a foreign file is not a ring"
    );

    // The table says the same.
    let text = ok(&["ls", &format!("ndt-{}-ls-*", std::process::id())]);
    let state_of = |n: &str| {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{n} ")))
            .unwrap();
        // NAME KIND DTYPE SHAPE SLOTS SIZE (a number and a unit) STATE
        line.split_whitespace().nth(7).unwrap().to_owned()
    };
    assert_eq!(state_of(&live), "live");
    assert_eq!(state_of(&closed), "closed");
    assert_eq!(state_of(&stale), "stale");
    assert!(
        text.lines()
            .any(|l| l.starts_with(&unfinished) && l.contains("unfinished"))
    );
    for n in [&closed, &stale, &unfinished, &foreign] {
        let _ = std::fs::remove_file(format!("/dev/shm{n}"));
    }
}

fn rm_stale() {
    let (live, closed, stale, stale2) = (
        name("rm-live"),
        name("rm-closed"),
        name("rm-stale"),
        name("rm-stale2"),
    );
    let _c = Cleanup(vec![
        live.clone(),
        closed.clone(),
        stale.clone(),
        stale2.clone(),
    ]);
    let _tx = Producer::<u8, Ix1>::create(&live, 4, &Config::spsc()).unwrap();
    let mut w =
        BroadcastWriter::<u8, Ix1>::create(&closed, 4, &Config::broadcast().keep(true)).unwrap();
    w.close();
    make_stale(&stale);
    make_stale(&stale2);
    let pattern = format!("ndt-{}-rm-*", std::process::id());

    let out = ok(&["rm", "--stale", "--dry-run", &pattern]);
    assert!(
        out.contains(&format!("would remove {stale} (stale spsc ring")),
        "{out}"
    );
    assert!(out.contains(&format!("would remove {stale2} ")), "{out}");
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(
        exists(&stale) && exists(&stale2),
        "a dry run removes nothing"
    );

    let out = ok(&["rm", "--stale", &pattern]);
    assert!(out.contains(&format!("removed {stale} (stale")), "{out}");
    assert!(out.contains(", 3 unread items)"), "{out}");
    assert!(out.contains(&format!("removed {stale2} (stale")), "{out}");
    assert!(!exists(&stale) && !exists(&stale2));
    assert!(exists(&live), "a live ring is never removed by --stale");
    assert!(
        exists(&closed),
        "a closed ring whose creator lives is not stale"
    );
    assert_eq!(ok(&["rm", "--stale", &pattern]).trim(), "no stale rings");
    std::fs::remove_file(format!("/dev/shm{closed}")).unwrap();
}

fn rm_names() {
    let (live, stale) = (name("rmn-live"), name("rmn-stale"));
    let _c = Cleanup(vec![live.clone(), stale.clone(), name("rmn-other")]);
    let _tx = Producer::<u8, Ix1>::create(&live, 4, &Config::spsc()).unwrap();
    make_stale(&stale);
    let (code, err) = fails(&["rm", &live]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("in use by pid {} (producer)", std::process::id())),
        "{err}"
    );
    assert!(exists(&live));
    // Names as in /dev/shm, without the slash, work too.
    let out = ok(&["rm", &stale[1..]]);
    assert!(
        out.starts_with(&format!("removed {stale} (stale spsc ring of u8 8, ")),
        "{out}"
    );
    assert!(!exists(&stale));
    let out = ok(&["rm", "--force", &format!("/dev/shm{live}")]);
    assert!(out.starts_with(&format!("removed {live} (live")), "{out}");
    assert!(!exists(&live));
    // One missing among several: the others go, the status says one failed.
    let other = name("rmn-other");
    make_stale(&other);
    let out = ndring(&["rm", &name("rmn-missing"), &other]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such ring"));
    assert!(!exists(&other));
}

fn inspect_json() {
    let n = name("insp");
    let _c = Cleanup(vec![n.clone()]);
    let mut w = BroadcastWriter::<u8, Ix1>::create(&n, 16, &Config::broadcast().slots(8)).unwrap();
    let mut sub = Subscriber::<u8, Ix1>::open(&n, Start::Oldest).unwrap();
    for i in 0..5u8 {
        w.send(&Array::from_elem(16, i).view()).unwrap();
    }
    let frame = sub.recv().unwrap(); // pins frame 1: four frames behind
    assert_eq!(frame.seq(), 1);
    let v = json(&["inspect", &n, "--json"]);
    assert_eq!(v["state"], "live");
    assert_eq!(v["header"]["kind"], "broadcast");
    assert_eq!(v["header"]["shape"], serde_json::json!([16]));
    assert_eq!(v["header"]["slots"], 8);
    assert_eq!(v["counters"]["published"], 5);
    assert_eq!(v["sleepers"]["waiting_for_items"], 0);
    let peers = v["peers"].as_array().unwrap();
    assert_eq!(peers.len(), 2);
    let me = std::process::id();
    assert_eq!(
        (&peers[0]["role"], &peers[0]["pid"]),
        (&"writer".into(), &me.into())
    );
    assert_eq!(
        (&peers[1]["role"], &peers[1]["alive"]),
        (&"subscriber".into(), &true.into())
    );
    assert_eq!(peers[1]["program"], this_program());
    assert_eq!(
        (&peers[1]["reading"], &peers[1]["lag"]),
        (&1.into(), &4.into())
    );
    assert!(peers[1]["started_unix_s"].as_u64().unwrap() > 1_600_000_000);
    // And in text.
    let text = ok(&["inspect", &n]);
    assert!(
        text.starts_with(&format!("{n}: broadcast ring of u8 16, 8 slots, live")),
        "{text}"
    );
    assert!(text.contains("5 frames published"), "{text}");
    assert!(
        text.lines().any(|l| l.contains("subscriber")
            && l.contains(&this_program())
            && l.contains("frame 1")
            && l.trim_end().ends_with(" 4")),
        "{text}"
    );
    // `ls` names what is attached.
    let ls = ok(&["ls", &n]);
    assert!(
        ls.contains(&format!("2/2 alive: {}", this_program())),
        "{ls}"
    );
}

fn hz_top() {
    let n = name("hz");
    let _c = Cleanup(vec![n.clone()]);
    let mut tx = Producer::<u8, Ix1>::create(&n, 1000, &Config::spsc().slots(8)).unwrap();
    for _ in 0..6 {
        tx.send(&Array::zeros(1000).view()).unwrap();
    }
    let out = ok(&["hz", &n, "--count", "2", "--interval", "0.05"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    for l in lines {
        assert!(
            l.starts_with(&format!("{n}: 0.0 items/s, 0.00 GB/s, backlog 6, sleeping 0 for items 0 for slots, 6 published")),
            "{l}"
        );
    }
    let out = ok(&[
        "top",
        "-n",
        "2",
        "-d",
        "0.05",
        &format!("ndt-{}-hz", std::process::id()),
    ]);
    assert_eq!(out.matches("ndring top - ").count(), 2, "{out}");
    let row = out
        .lines()
        .find(|l| l.starts_with(&n))
        .expect("ring in top");
    // The pattern names this ring alone: one row under each of the two headings.
    assert_eq!(
        out.lines().filter(|l| l.starts_with('/')).count(),
        2,
        "{out}"
    );
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cols[1..],
        [
            "spsc",
            "live",
            "0",
            "0.00",
            "6",
            "0/0",
            "1/1",
            "6",
            &this_program()
        ],
        "{row}"
    );
}

fn read_only() {
    // A ring its creator made readable by others (0o644) or only by its owner (0o400): the
    // command reads it without asking for write access. Root bypasses permission bits, so as
    // root the command runs as `nobody`.
    let is_root = Path::new("/proc/self")
        .metadata()
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap()
        == 0;
    let n = name("ro");
    let _c = Cleanup(vec![n.clone()]);
    let mode = if is_root { 0o644 } else { 0o400 };
    let mut tx = Producer::<u8, Ix1>::create(&n, 8, &Config::spsc().mode(mode)).unwrap();
    tx.send(&Array::from_elem(8, 9u8).view()).unwrap();
    let run = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ndring"));
        c.args(args);
        if is_root {
            c.uid(65534).gid(65534);
        }
        c.output().unwrap()
    };
    let out = run(&["inspect", &n, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&v["state"], &v["counters"]["published"]),
        (&"live".into(), &1.into())
    );
    let out = run(&["hz", &n, "-n", "1", "-d", "0.01"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let npy = std::env::temp_dir().join(format!("ndt-{}-ro.npy", std::process::id()));
    let _ = std::fs::remove_file(&npy);
    let out = run(&["peek", &n, "-o", npy.to_str().unwrap()]);
    // `nobody` may not write to the temp dir everywhere; what matters is that it read the ring.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || err.contains("cannot write"),
        "{err}"
    );
    if out.status.success() {
        check_npy(&npy, "|u1", &[8], &[9; 8]);
        std::fs::remove_file(&npy).unwrap();
    }
    assert!(exists(&n), "inspection removed nothing");
}

fn errors() {
    let (code, err) = fails(&["inspect", "nope-does-not-exist"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "ndring: /nope-does-not-exist: no such ring (nothing named so in /dev/shm)\n"
    );
    let (code, err) = fails(&["inspect", "/a/b"]);
    assert_eq!(code, 1);
    assert!(err.contains("invalid segment name"), "{err}");
    let (code, _) = fails(&["peek", &name("missing"), "-o", "/tmp/x.npy"]);
    assert_eq!(code, 1);
    let (code, _) = fails(&["hz", &name("missing"), "-n", "1"]);
    assert_eq!(code, 1);
    // Another program's object is not a ring, and rm leaves it to rm(1).
    let foreign = name("err-foreign");
    std::fs::write(format!("/dev/shm{foreign}"), vec![1u8; 4096]).unwrap();
    let (code, err) = fails(&["rm", &foreign]);
    assert_eq!(code, 1);
    assert!(
        err.contains("is not an ndring segment") && err.contains("not removed"),
        "{err}"
    );
    assert!(exists(&foreign));
    std::fs::remove_file(format!("/dev/shm{foreign}")).unwrap();
    // Usage errors: clap's, status 2.
    for args in [
        &["rm"][..],
        &["peek", "x"],
        &["top", "-n", "0"],
        &["hz", "x", "-d", "soon"],
        &["bogus"],
        &["ls", "--jsno"],
    ] {
        let (code, err) = fails(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains("try '--help'"),
            "{err}"
        );
    }
}

const STREAM_LEN: usize = 256 << 10;

/// Child: creates ring `a[0]` of kind `a[1]` (4 slots for queues) and publishes item after item, every byte
/// of item `seq` equal to `seq % 251`, until killed.
fn stream_items(a: &[String]) {
    let fill = |seq: u64| Array::from_elem(STREAM_LEN, (seq % 251) as u8);
    if a[1] == "broadcast" {
        let mut w =
            BroadcastWriter::<u8, Ix1>::create(&a[0], STREAM_LEN, &Config::broadcast()).unwrap();
        for seq in 1.. {
            w.send(&fill(seq).view()).unwrap();
        }
    }
    let config = if a[1] == "spsc" {
        Config::spsc()
    } else {
        Config::mpmc()
    };
    // 4 slots: a copy of the newest item races the producer's next lap, not its next item.
    let mut tx = Producer::<u8, Ix1>::create(&a[0], STREAM_LEN, &config.slots(4)).unwrap();
    for seq in 1.. {
        tx.send(&fill(seq).view()).unwrap();
    }
}

/// Child: takes every item of queue ring `a[0]`, until killed or until the producer has gone
/// (the parent kills the producer first, so `Disconnected` is the normal end).
fn drain(a: &[String]) {
    let mut rx = Consumer::<u8, Ix1>::open_with(
        &a[0],
        &ndring::OpenOptions::default().wait_for_creator(LONG),
    )
    .unwrap();
    loop {
        match rx.recv() {
            Ok(_) => {}
            Err(ndring::Error::Disconnected { .. } | ndring::Error::Closed) => return,
            Err(e) => panic!("drain: {e}"),
        }
    }
}

/// `peek`'s copy of the newest item, taken again and again while a producer process rewrites
/// a small ring as fast as it can: every accepted copy is one whole item.
fn newest_while_streaming() {
    for kind in ["spsc", "mpmc", "broadcast"] {
        let n = name(&format!("nw-{kind}"));
        let _c = Cleanup(vec![n.clone()]);
        let mut children = vec![
            common::command("stream-items", &[&n, kind])
                .spawn()
                .unwrap(),
        ];
        if kind != "broadcast" {
            children.push(common::command("drain", &[&n]).spawn().unwrap());
        }
        let mut ring = None;
        common::eventually(LONG, "the stream to start", || {
            ring = ndring::inspect::Inspector::open(&n)
                .ok()
                .filter(|r| r.counters().published > 10);
            ring.is_some()
        });
        let ring = ring.unwrap();
        let mut buf = vec![0u8; STREAM_LEN];
        let (mut retries, mut last, mut copies, mut gave_up) = (0, 0, 0, 0);
        let until = ring.counters().published + 2_000;
        // Deadlock guards by progress, not by time: the stream must keep publishing between
        // copies, and copies must not all be overtaken.
        let (mut seen, mut stalled, mut overtaken_in_a_row) = (0, 0u32, 0u32);
        // While the producer publishes 2,000 more items (and at least 2,000 copies).
        while copies < 2000 || ring.counters().published < until {
            let published = ring.counters().published;
            stalled = if published == seen { stalled + 1 } else { 0 };
            seen = published;
            assert!(
                stalled < 1_000_000,
                "{kind}: the stream stopped at item {published}"
            );
            // A copy overtaken on every attempt gives up with `Timeout` (documented): on a quiet
            // host a producer can lap a small ring faster than a copy takes. Count it, go on.
            let got = match ring.copy_newest(&mut buf) {
                Ok(got) => got,
                Err(ndring::Error::Timeout) => {
                    gave_up += 1;
                    overtaken_in_a_row += 1;
                    assert!(
                        overtaken_in_a_row < 1_000,
                        "{kind}: 1,000 copies in a row overtaken 10,000 times each"
                    );
                    continue;
                }
                Err(e) => panic!("{kind}: {e}"),
            };
            overtaken_in_a_row = 0;
            copies += 1;
            let want = (got.seq % 251) as u8;
            assert!(
                buf.iter().all(|&b| b == want),
                "{kind}: item {} torn: first byte {}, want {want}",
                got.seq,
                buf[0]
            );
            assert!(got.seq >= last, "{kind}: newest went back");
            (retries, last) = (retries + got.retries, got.seq);
        }
        for mut c in children {
            c.kill().unwrap();
            c.wait().unwrap();
        }
        eprintln!(
            "{kind}: {copies} whole copies up to item {last}, {retries} overtaken and retried, \
             {gave_up} given up"
        );
    }
}

/// This process's program name as `/proc/self/comm` gives it (what `ndring` shows of a peer).
fn this_program() -> String {
    std::fs::read_to_string("/proc/self/comm")
        .unwrap()
        .trim_end()
        .to_owned()
}

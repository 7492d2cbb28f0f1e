//! The `ndring` command on the two kinds that are not rings: a shared array (its version and
//! the lock's holders by pid, `peek`, `rm --stale` after its holder was SIGKILLed) and a
//! request/reply segment (its queued request, servers and clients; `peek` refused).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Stdio};

use ndarray::{Array, Ix1, Ix2};
use ndring::{Client, Config, Server, SharedArray};

use super::peek::{check_npy, tmp};
use super::{Cleanup, common, fails, json, ls_rows, name, ok, row};

/// Child: creates the shared array (kept), writes 7s into it (version 1), takes the
/// whole-array write lock, says so, and sleeps holding it until killed.
pub fn hold_array_write(a: &[String]) {
    let sa = SharedArray::<u8, Ix2>::create(&a[0], (3, 4), &Config::array().keep(true)).unwrap();
    sa.write().unwrap().fill(7);
    let _held = sa.write().unwrap();
    println!("locked");
    std::io::stdout().flush().unwrap();
    std::thread::sleep(super::LONG * 10);
}

/// Child: opens the request/reply segment as a client, sends one request, says so, and waits
/// for a reply that never comes until killed.
pub fn send_request(a: &[String]) {
    let cli = Client::<u8, Ix1, u8, Ix1>::open(&a[0]).unwrap();
    let _pending = cli.send(&Array::from_elem(4, 9u8)).unwrap();
    println!("sent");
    std::io::stdout().flush().unwrap();
    std::thread::sleep(super::LONG * 10);
}

/// Starts child `role` on `n` and waits for its one line.
fn start(role: &str, n: &str, expect: &str) -> Child {
    let mut child = common::command(role, &[n])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    if line.trim() != expect {
        let _ = child.kill();
        let _ = child.wait();
        panic!("child {role} said {line:?}, not {expect:?}");
    }
    child
}

/// Kills a child if the test fails before it does.
struct KillOnDrop(Option<Child>);

impl KillOnDrop {
    fn kill(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        }
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn array_holder_peek_and_stale() {
    let n = name("arr");
    let _c = Cleanup(vec![n.clone()]);
    let mut child = KillOnDrop(Some(start("hold-array-write", &n, "locked")));
    let pid = child.0.as_ref().unwrap().id();

    let rows = ls_rows();
    let r = row(&rows, &n).expect("array listed");
    assert_eq!((&r["kind"], &r["dtype"]), (&"array".into(), &"u8".into()));
    assert_eq!(r["shape"], serde_json::json!([3, 4]));
    assert_eq!(r["array"]["version"], 1);
    assert_eq!(r["array"]["poisoned"], false);
    let table = ok(&["ls", &n]);
    assert!(
        table.contains("array") && table.contains("version 1"),
        "{table}"
    );

    let v = json(&["inspect", "--json", &n]);
    assert_eq!(v["header"]["kind"], "array");
    assert_eq!(v["array"]["exclusive_pid"], pid);
    assert_eq!(v["array"]["version"], 1);
    assert!(
        v["peers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["pid"] == pid),
        "{v}"
    );
    let text = ok(&["inspect", &n]);
    assert!(text.contains(&format!("pid {pid} (whole array)")), "{text}");

    // The creator dies holding the lock: nobody is left, and the name stays until removed.
    child.kill();
    let v = json(&["inspect", "--json", &n]);
    assert_eq!(v["state"], "stale");
    assert_eq!(
        v["array"]["exclusive_pid"], pid,
        "the dead holder's tag is still there"
    );
    let text = ok(&["inspect", &n]);
    assert!(
        text.contains(&format!("pid {pid} (whole array, dead")),
        "{text}"
    );
    let out = ok(&["rm", "--stale", &n]);
    assert!(
        out.contains(&format!("removed {n} (stale shared array of u8 3x4")),
        "{out}"
    );
    assert!(!super::exists(&n));
}

pub fn array_peek() {
    let n = name("arrpeek");
    let _c = Cleanup(vec![n.clone()]);
    let sa = SharedArray::<u16, Ix2>::create(&n, (2, 3), &Config::array()).unwrap();
    let data = Array::from_shape_fn((2, 3), |(i, j)| (i * 300 + j * 7) as u16);
    sa.write().unwrap().assign(&data);
    let npy = tmp("arr.npy");
    let out = ok(&["peek", &n, "-o", npy.to_str().unwrap()]);
    assert!(out.contains("version 1"), "{out}");
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_ne_bytes()).collect();
    check_npy(&npy, "<u2", &[2, 3], &bytes);
    let _ = std::fs::remove_file(&npy);
}

pub fn rpc_queued_request() {
    let n = name("rpc");
    let _c = Cleanup(vec![n.clone()]);
    let srv = Server::<u8, Ix1, u8, Ix1>::create(&n, 4, 2, &Config::rpc().slots(4)).unwrap();
    let mut child = KillOnDrop(Some(start("send-request", &n, "sent")));
    let pid = child.0.as_ref().unwrap().id();

    let rows = ls_rows();
    let r = row(&rows, &n).expect("rpc segment listed");
    assert_eq!(r["kind"], "rpc");
    assert_eq!((&r["servers"], &r["clients"]), (&1.into(), &1.into()));
    assert_eq!(
        (&r["calls"]["queued"], &r["calls"]["sent_total"]),
        (&1.into(), &1.into())
    );
    let table = ok(&["ls", &n]);
    assert!(
        table.contains("1 queued") && table.contains("1 client"),
        "{table}"
    );

    let v = json(&["inspect", "--json", &n]);
    assert_eq!(v["calls"]["queued"], 1);
    assert_eq!(v["calls"]["free"], 3);
    let peers = v["peers"].as_array().unwrap();
    assert!(
        peers
            .iter()
            .any(|p| p["role"] == "client" && p["pid"] == pid),
        "{v}"
    );
    assert!(
        peers
            .iter()
            .any(|p| p["role"] == "server" && p["pid"] == std::process::id()),
        "{v}"
    );
    let text = ok(&["inspect", &n]);
    assert!(
        text.contains("1 queued") && text.contains("1 sent"),
        "{text}"
    );

    let npy = tmp("rpc.npy");
    let (code, err) = fails(&["peek", &n, "-o", npy.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("request/reply"), "{err}");
    assert!(!npy.exists());
    child.kill();
    drop(srv);
}

//! What the peer programs share: polling, percentiles, the child process, and the host state
//! (the cache-line round trip that tells this VM's fast state from its slow one).

#![allow(dead_code)] // each program uses its own part of it

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::*};
use std::time::Instant;

use iceoryx2::prelude::*;

pub type Err = Box<dyn core::error::Error>;

pub fn env_num(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

#[inline]
pub fn spin_until<T>(mut ready: impl FnMut() -> Option<T>) -> T {
    let mut i = 0u32;
    loop {
        if let Some(v) = ready() {
            return v;
        }
        i = i.wrapping_add(1);
        if i % 64 == 63 {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub fn spawn_child(args: &[String]) -> Child {
    let mut child = Command::new(std::env::current_exe().expect("current_exe"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    // Wait for the child's "ready" line: its ports exist.
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .expect("read child");
    assert_eq!(line.trim(), "ready", "child did not start");
    child
}

pub fn reap(mut child: Child) {
    let st = child.wait().expect("wait child");
    assert!(st.success(), "child failed: {st}");
}

pub fn node() -> Result<Node<ipc::Service>, Err> {
    Ok(NodeBuilder::new().create::<ipc::Service>()?)
}

/// The host state: a cache line bounced between two threads (one per core on this 2-core VM),
/// median round trip in ns.
pub fn line_round_trip_ns() -> u64 {
    #[repr(align(128))]
    struct Line(AtomicU32);
    let lines = Arc::new([Line(AtomicU32::new(0)), Line(AtomicU32::new(0))]);
    let n = 4_000u32;
    let l2 = lines.clone();
    let echo = std::thread::spawn(move || {
        pin(1);
        for i in 1..=n {
            spin_until(|| (l2[0].0.load(Acquire) == i).then_some(()));
            l2[1].0.store(i, Release);
        }
    });
    let mut lat = Vec::with_capacity(n as usize);
    for i in 1..=n {
        let t = Instant::now();
        lines[0].0.store(i, Release);
        spin_until(|| (lines[1].0.load(Acquire) == i).then_some(()));
        lat.push(t.elapsed().as_nanos() as u64);
    }
    echo.join().unwrap();
    lat.sort_unstable();
    percentile(&lat, 50.0)
}

/// `PC_PIN=1`: this process on CPU `cpu` (the parent on 0, children on 1), so that a busy host
/// cannot put both ends on one core. Off by default.
pub fn pin(cpu: usize) {
    if std::env::var("PC_PIN").is_ok_and(|v| v == "1") {
        // SAFETY: glibc's `int sched_setaffinity(pid_t, size_t, const cpu_set_t *)`, declared
        // with its C signature (a one-word mask).
        unsafe extern "C" {
            fn sched_setaffinity(pid: i32, size: usize, mask: *const u64) -> i32;
        }
        let mask: u64 = 1 << cpu;
        // SAFETY: a one-word CPU mask, read by the call; pid 0 is this thread.
        let rc = unsafe { sched_setaffinity(0, 8, &mask) };
        assert_eq!(rc, 0, "sched_setaffinity to CPU {cpu} failed");
    }
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Which state the host was in (see the module docs); figures compare only within one.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HostState {
    Fast,
    Slow,
}

/// Cache-line round trips below this are the fast state (~80-130 ns), above it the slow one
/// (~500 ns).
pub const FAST_BELOW_NS: u64 = 250;

/// The state both line round trips (before and after a pair) agree on, if they do.
pub fn host_state(before: u64, after: u64) -> Option<HostState> {
    match (before < FAST_BELOW_NS, after < FAST_BELOW_NS) {
        (true, true) => Some(HostState::Fast),
        (false, false) => Some(HostState::Slow),
        _ => None,
    }
}

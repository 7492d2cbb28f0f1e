//! Cross-process benchmark of ndring against the obvious alternatives, measured in the same run.
//!
//! The binary re-executes itself (`NDRING_BENCH_CHILD=<role>`) to start its peer processes.
//!
//! * **W1** round trip of a 64-byte array (ping-pong over two rings, one each way): ndring SPSC
//!   busy-poll, default spin, blocking (`spin(0)`), MPMC busy-poll; baselines: a raw cache-line
//!   ping-pong on a shared page (spin), the same with the 64-byte array on a line of its own
//!   beside each flag (the floor for moving an array this way), a raw shared-futex ping-pong, a
//!   Unix socket, a pipe.
//!   p50 / p99 / p99.9 ns per round trip.
//! * **W2** one-way rate of 64-byte arrays (child produces, parent consumes): ndring SPSC, MPMC;
//!   baselines: a raw shared-memory SPSC ring, a Unix socket, a pipe. Items/s.
//! * **W3** 1920x1080x3 `u8` frames, every byte written by the producer and read (checksummed) by
//!   the consumer: ndring SPSC with 2, 4, 8 slots; baselines: a raw shared buffer of the same slot
//!   count handed over with per-slot flags, a single-process fill-then-read loop, a Unix socket, a
//!   pipe. Frames/s and GB/s.
//! * **W4** scaling: P producer x C consumer processes on one MPMC ring. Items/s.
//!
//! Each workload is repeated `NDRING_BENCH_RUNS` times (default 5; variants interleaved within a
//! run) and reported as min / median / max, with ratios against the baselines. Tables go to stdout
//! and to `target/ipc-report.md`; the W1 latency CDF to `target/ipc-w1-cdf.svg`.
//!
//! `cargo bench --bench ipc` runs it; `NDRING_BENCH_QUICK=1` (or `-- --quick`) runs one
//! repetition with small counts. Other knobs: `NDRING_BENCH_RT` (W1 round trips per run),
//! `NDRING_BENCH_ITEMS` (W2 items), `NDRING_BENCH_FRAMES` (W3 frames), `NDRING_BENCH_W4_ITEMS`,
//! `NDRING_BENCH_MAX_PROCS` (W4 cap on P and C, default 4), `NDRING_BENCH_ONLY=w1,w3`.
//!
//! Every wait in the raw baselines polls like ndring's blocking calls do (a spin hint, and a
//! `yield` every 64 polls so that a peer sharing the core can run). Nothing is pinned.

use std::ffi::{c_int, c_long, c_void};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};
use std::time::{Duration, Instant};

use ndarray::{Ix1, Ix3};
use ndring::{Config, Consumer, Error, OpenOptions, Producer};

const CHILD_ENV: &str = "NDRING_BENCH_CHILD";
/// Bytes of the small item.
const SMALL: usize = 64;
/// Slots of the rings of W2 and W4.
const RATE_SLOTS: usize = 64;
/// A 1920x1080 RGB frame: rows, columns, channels.
const FRAME: (usize, usize, usize) = (1080, 1920, 3);
const FRAME_BYTES: usize = FRAME.0 * FRAME.1 * FRAME.2;
/// Frames excluded from W3 timing (page faults of first touch, start-up): all 8 slots are
/// touched once by then.
const FRAME_WARM: u64 = 8;
/// Spin count that never falls back to the futex in practice.
const BUSY: u32 = u32::MAX;

// ---------------------------------------------------------------------------------------------
// Minimal OS interface for the raw baselines (libc symbols are always linked on Linux).

mod os {
    use super::{c_int, c_long, c_void};

    pub const PROT_READ: c_int = 1;
    pub const PROT_WRITE: c_int = 2;
    pub const MAP_SHARED: c_int = 1;
    pub const FUTEX_WAIT: c_int = 0;
    pub const FUTEX_WAKE: c_int = 1;

    #[cfg(target_arch = "x86_64")]
    pub const SYS_FUTEX: Option<c_long> = Some(202);
    #[cfg(any(
        target_arch = "aarch64",
        target_arch = "riscv64",
        target_arch = "loongarch64"
    ))]
    pub const SYS_FUTEX: Option<c_long> = Some(98);
    #[cfg(not(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64",
        target_arch = "loongarch64"
    )))]
    pub const SYS_FUTEX: Option<c_long> = None;

    unsafe extern "C" {
        pub fn mmap(
            addr: *mut c_void,
            len: usize,
            prot: c_int,
            flags: c_int,
            fd: c_int,
            offset: c_long,
        ) -> *mut c_void;
        pub fn munmap(addr: *mut c_void, len: usize) -> c_int;
        pub fn syscall(num: c_long, ...) -> c_long;
    }
}

/// Sleeps while `word == expected` (shared futex: no private flag, the word is in a shared
/// mapping). Spurious returns are fine: callers re-check.
fn futex_wait(word: &AtomicU32, expected: u32) {
    let nr = os::SYS_FUTEX.expect("futex baseline not supported on this architecture");
    // SAFETY: `word` is a valid, aligned u32 for the call; FUTEX_WAIT only reads it; the null
    // timeout means "no timeout", and the unused uaddr2/val3 are ignored by FUTEX_WAIT.
    unsafe {
        os::syscall(
            nr,
            word.as_ptr(),
            os::FUTEX_WAIT,
            expected,
            std::ptr::null::<c_void>(),
            std::ptr::null::<c_void>(),
            0 as c_int,
        );
    }
}

/// Wakes up to `n` sleepers on `word`.
fn futex_wake(word: &AtomicU32, n: c_int) {
    let nr = os::SYS_FUTEX.expect("futex baseline not supported on this architecture");
    // SAFETY: `word` is a valid, aligned u32; FUTEX_WAKE does not access memory through it
    // beyond hashing its address.
    unsafe {
        os::syscall(nr, word.as_ptr(), os::FUTEX_WAKE, n);
    }
}

/// Polls `ready` like ndring's blocking calls do: a spin hint, a yield every 64 polls.
#[inline]
fn spin_until(mut ready: impl FnMut() -> bool) {
    let mut i = 0u32;
    while !ready() {
        i = i.wrapping_add(1);
        if i % 64 == 63 {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

/// A file in `/dev/shm` mapped shared: the memory of the raw baselines. The creator removes the
/// file when dropped.
struct RawMap {
    ptr: NonNull<u8>,
    len: usize,
    path: PathBuf,
    owner: bool,
}

impl RawMap {
    fn create(tag: &str, len: usize) -> RawMap {
        let path = PathBuf::from(format!("/dev/shm/ndrb-{}-raw-{tag}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        file.set_len(len as u64).expect("size the raw shm file");
        Self::map(&file, path, len, true)
    }

    fn open(path: &Path, len: usize) -> RawMap {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        Self::map(&file, path.to_path_buf(), len, false)
    }

    fn map(file: &File, path: PathBuf, len: usize, owner: bool) -> RawMap {
        // SAFETY: a fresh shared mapping of `len` bytes of an open file chosen by the kernel (null
        // hint): it aliases no Rust object. The file is at least `len` bytes long (set_len by the
        // creator before any child opens it).
        let p = unsafe {
            os::mmap(
                std::ptr::null_mut(),
                len,
                os::PROT_READ | os::PROT_WRITE,
                os::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if p as usize == usize::MAX || p.is_null() {
            panic!("mmap failed: {}", std::io::Error::last_os_error());
        }
        RawMap {
            ptr: NonNull::new(p.cast()).expect("non-null"),
            len,
            path,
            owner,
        }
    }

    fn u32_at(&self, off: usize) -> &AtomicU32 {
        assert!(off % 4 == 0 && off + 4 <= self.len);
        // SAFETY: in bounds and 4-aligned (the mapping is page-aligned); the mapping lives as long
        // as `self`; every process accesses this word only atomically.
        unsafe { &*self.ptr.as_ptr().add(off).cast::<AtomicU32>() }
    }

    fn u64_at(&self, off: usize) -> &AtomicU64 {
        assert!(off % 8 == 0 && off + 8 <= self.len);
        // SAFETY: as in `u32_at`, 8-aligned.
        unsafe { &*self.ptr.as_ptr().add(off).cast::<AtomicU64>() }
    }

    /// Runs `f` on bytes `off..off + len`, which the caller's hand-off protocol (an Acquire load
    /// of a flag the other process stored with Release) gives to this process alone meanwhile.
    fn with_mut<R>(&self, off: usize, len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
        assert!(off + len <= self.len);
        // SAFETY: in bounds of the live mapping; by the caller's protocol no other process touches
        // the range until we hand it back, and no other reference into it exists in this
        // process (it is only reached through these closures, never nested).
        f(unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(off), len) })
    }

    /// Runs `f` on bytes `off..off + len`, which nobody writes meanwhile (caller's protocol).
    fn with_ref<R>(&self, off: usize, len: usize, f: impl FnOnce(&[u8]) -> R) -> R {
        assert!(off + len <= self.len);
        // SAFETY: in bounds of the live mapping; by the caller's protocol the writer has handed
        // the range over (Release/Acquire) and does not write it until we hand it back.
        f(unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(off), len) })
    }
}

impl Drop for RawMap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` come from one successful mmap; no reference into the mapping
        // outlives `self` (all accessors borrow it).
        unsafe { os::munmap(self.ptr.as_ptr().cast(), self.len) };
        if self.owner {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Shared helpers.

/// Sum of all bytes: reads every byte (u32 partial sums over chunks that cannot overflow
/// vectorise well).
fn checksum(bytes: &[u8]) -> u64 {
    bytes
        .chunks(1 << 16)
        .map(|c| c.iter().map(|&b| u32::from(b)).sum::<u32>() as u64)
        .sum()
}

/// The byte frame `k` is filled with (never 0, so a missed write shows).
fn frame_value(k: u64) -> u8 {
    (k % 255) as u8 + 1
}

fn frame_sum(k: u64) -> u64 {
    FRAME_BYTES as u64 * frame_value(k) as u64
}

/// The 64-byte item number `i`: its index in the first 8 bytes, its low byte after.
fn small_item(i: u64) -> [u8; SMALL] {
    let mut b = [i as u8; SMALL];
    b[..8].copy_from_slice(&i.to_le_bytes());
    b
}

fn item_index(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
}

fn ring_name(tag: &str) -> String {
    let name = format!("/ndrb-{}-{tag}", std::process::id());
    assert!(name.len() <= ndring::MAX_NAME_LEN, "name too long: {name}");
    name
}

fn sock_path(tag: &str) -> PathBuf {
    PathBuf::from(format!("/tmp/ndrb-{}-{tag}.sock", std::process::id()))
}

/// Removes whatever this process left in `/dev/shm` and `/tmp` (after a failure).
fn cleanup_files() {
    let prefix = format!("ndrb-{}-", std::process::id());
    for dir in ["/dev/shm", "/tmp"] {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos() as u64
}

// ---------------------------------------------------------------------------------------------
// Watchdogs: a benchmark never hangs, and no child outlives its parent.

/// Monotonic ns (since the first call) after which the parent gives up; 0: none.
static DEADLINE_NS: AtomicU64 = AtomicU64::new(0);

fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Arms the parent's watchdog for the next `secs` seconds.
fn arm(secs: u64) {
    DEADLINE_NS.store(nanos(epoch().elapsed()) + secs * 1_000_000_000, Relaxed);
}

fn start_parent_watchdog() {
    epoch();
    std::thread::spawn(|| {
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let d = DEADLINE_NS.load(Relaxed);
            if d != 0 && nanos(epoch().elapsed()) > d {
                eprintln!("ipc bench: a variant ran past its time limit; giving up");
                cleanup_files();
                std::process::exit(1);
            }
        }
    });
}

/// A child exits if its parent goes away (it would otherwise wait on its rings forever), or
/// after 10 minutes in any case.
fn start_child_watchdog() {
    let parent = std::os::unix::process::parent_id();
    let start = Instant::now();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(200));
            if std::os::unix::process::parent_id() != parent
                || start.elapsed() > Duration::from_secs(600)
            {
                std::process::exit(3);
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Children.

struct ChildArgs(Vec<(String, String)>);

impl ChildArgs {
    fn from_env() -> ChildArgs {
        ChildArgs(
            std::env::args()
                .skip(1)
                .filter_map(|a| a.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
                .collect(),
        )
    }

    fn str(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("child argument {key} missing"))
    }

    fn num<T: std::str::FromStr>(&self, key: &str) -> T {
        self.str(key)
            .parse()
            .unwrap_or_else(|_| panic!("child argument {key} is not a number"))
    }
}

fn spawn(role: &str, args: &[(&str, String)], stdin: Stdio, stdout: Stdio) -> Child {
    let exe = std::env::current_exe().expect("current_exe");
    Command::new(exe)
        .env(CHILD_ENV, role)
        .args(args.iter().map(|(k, v)| format!("{k}={v}")))
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child")
}

fn reap(mut child: Child) {
    let status = child.wait().expect("wait child");
    assert!(status.success(), "child failed: {status}");
}

fn stdin_file() -> File {
    File::from(
        std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .expect("dup stdin"),
    )
}

fn stdout_file() -> File {
    File::from(
        std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .expect("dup stdout"),
    )
}

fn child_main(role: &str) {
    start_child_watchdog();
    let a = ChildArgs::from_env();
    match role {
        "w1-ring" => {
            // Echo: receive on ring `a`, copy the array into a slot of ring `b`.
            let opts = OpenOptions::default().spin(a.num("spin"));
            let mut rx = Consumer::<u8, Ix1>::open_with(a.str("a"), &opts).expect("open a");
            let mut tx = Producer::<u8, Ix1>::open_with(a.str("b"), &opts).expect("open b");
            loop {
                let r = match rx.recv() {
                    Ok(r) => r,
                    Err(Error::Closed) => break,
                    Err(e) => panic!("recv: {e}"),
                };
                let mut w = tx.claim().expect("claim");
                w.assign(&*r);
                w.publish();
            }
        }
        "w1-spin" | "w1-futex" | "w1-spin-payload" => {
            let map = RawMap::open(Path::new(a.str("path")), 4096);
            let (ping, pong) = (map.u32_at(0), map.u32_at(128));
            let futex = role == "w1-futex";
            let payload = role == "w1-spin-payload";
            let mut buf = [0u8; SMALL];
            for i in 1..=a.num::<u32>("n") {
                if payload {
                    // Echo the array: read the ping's payload line, write the pong's.
                    spin_until(|| ping.load(Acquire) == i);
                    map.with_ref(RAW_PING_PAYLOAD, SMALL, |d| buf.copy_from_slice(d));
                    map.with_mut(RAW_PONG_PAYLOAD, SMALL, |d| d.copy_from_slice(&buf));
                    pong.store(i, Release);
                } else if futex {
                    while ping.load(Acquire) != i {
                        futex_wait(ping, i - 1);
                    }
                    pong.store(i, Release);
                    futex_wake(pong, 1);
                } else {
                    spin_until(|| ping.load(Acquire) == i);
                    pong.store(i, Release);
                }
            }
        }
        "w1-uds" | "w1-pipe" => {
            let n: u64 = a.num("n");
            let mut buf = [0u8; SMALL];
            let (mut input, mut output): (Box<dyn Read>, Box<dyn Write>) = if role == "w1-uds" {
                let s = UnixStream::connect(a.str("path")).expect("connect");
                (Box::new(s.try_clone().expect("clone")), Box::new(s))
            } else {
                (Box::new(stdin_file()), Box::new(stdout_file()))
            };
            for _ in 0..n {
                input.read_exact(&mut buf).expect("read");
                output.write_all(&buf).expect("write");
            }
        }
        "w2-ring" => {
            let mut tx = Producer::<u8, Ix1>::open(a.str("name")).expect("open");
            for i in 0..a.num::<u64>("n") {
                let mut w = tx.claim().expect("claim");
                w.as_slice_mut()
                    .expect("contiguous")
                    .copy_from_slice(&small_item(i));
                w.publish();
            }
            tx.close();
        }
        "w2-raw" => {
            let map = RawMap::open(Path::new(a.str("path")), raw_ring_len());
            let (head, tail) = (map.u64_at(0), map.u64_at(128));
            let slots = RATE_SLOTS as u64;
            let mut cached_head = 0;
            for i in 0..a.num::<u64>("n") {
                if i - cached_head >= slots {
                    spin_until(|| {
                        cached_head = head.load(Acquire);
                        i - cached_head < slots
                    });
                }
                let off = 256 + (i % slots) as usize * SMALL;
                map.with_mut(off, SMALL, |d| d.copy_from_slice(&small_item(i)));
                tail.store(i + 1, Release);
            }
        }
        "w2-uds" | "w2-pipe" => {
            let mut out: Box<dyn Write> = if role == "w2-uds" {
                Box::new(UnixStream::connect(a.str("path")).expect("connect"))
            } else {
                Box::new(stdout_file())
            };
            for i in 0..a.num::<u64>("n") {
                out.write_all(&small_item(i)).expect("write");
            }
        }
        "w3-ring" => {
            let mut tx = Producer::<u8, Ix3>::open(a.str("name")).expect("open");
            for k in 0..a.num::<u64>("n") {
                let mut w = tx.claim().expect("claim");
                w.fill(frame_value(k));
                w.publish();
            }
            tx.close();
        }
        "w3-raw" => {
            let slots: usize = a.num("slots");
            let map = RawMap::open(Path::new(a.str("path")), raw_frames_len(slots));
            for k in 0..a.num::<u64>("n") {
                let s = (k % slots as u64) as usize;
                let flag = map.u64_at(128 * s);
                spin_until(|| flag.load(Acquire) == 0);
                map.with_mut(raw_frame_off(s), FRAME_BYTES, |d| d.fill(frame_value(k)));
                flag.store(k + 1, Release);
            }
        }
        "w3-uds" | "w3-pipe" => {
            let mut out: Box<dyn Write> = if role == "w3-uds" {
                Box::new(UnixStream::connect(a.str("path")).expect("connect"))
            } else {
                Box::new(stdout_file())
            };
            let mut frame = vec![0u8; FRAME_BYTES];
            for k in 0..a.num::<u64>("n") {
                frame.fill(frame_value(k));
                out.write_all(&frame).expect("write");
            }
        }
        "w4-prod" => {
            let ctl = RawMap::open(Path::new(a.str("ctl")), 4096);
            let mut tx = Producer::<u8, Ix1>::open(a.str("name")).expect("open");
            ctl.u32_at(0).fetch_add(1, AcqRel);
            wait_nonzero(ctl.u32_at(128));
            let (n, producers): (u64, u32) = (a.num("n"), a.num("producers"));
            for i in 0..n {
                let mut w = tx.claim().expect("claim");
                w.as_slice_mut()
                    .expect("contiguous")
                    .copy_from_slice(&small_item(i));
                w.publish();
            }
            // The last producer to finish closes the ring: consumers drain it and stop.
            if ctl.u32_at(256).fetch_add(1, AcqRel) + 1 == producers {
                tx.close();
            }
        }
        "w4-cons" => {
            let ctl = RawMap::open(Path::new(a.str("ctl")), 4096);
            let mut rx = Consumer::<u8, Ix1>::open(a.str("name")).expect("open");
            ctl.u32_at(0).fetch_add(1, AcqRel);
            wait_nonzero(ctl.u32_at(128));
            let (mut count, mut sum) = (0u64, 0u64);
            loop {
                match rx.recv() {
                    Ok(r) => {
                        count += 1;
                        sum += item_index(r.as_slice().expect("contiguous"));
                    }
                    Err(Error::Closed) => break,
                    Err(e) => panic!("recv: {e}"),
                }
            }
            println!("{count} {sum} {}", ndring::now_ns());
        }
        other => panic!("unknown child role {other}"),
    }
}

/// Waits until `word` is non-zero (the W4 start barrier).
fn wait_nonzero(word: &AtomicU32) {
    while word.load(Acquire) == 0 {
        if os::SYS_FUTEX.is_some() {
            futex_wait(word, 0);
        } else {
            std::thread::sleep(Duration::from_micros(20));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Settings and statistics.

struct Settings {
    quick: bool,
    runs: usize,
    w1_rt: usize,
    w1_warm: usize,
    w2_items: u64,
    w3_frames: u64,
    w4_items: u64,
    max_procs: usize,
    only: Option<String>,
}

fn pick<T>(quick: bool, full: T, fast: T) -> T {
    if quick { fast } else { full }
}

fn env_num<T: std::str::FromStr>(key: &str) -> Option<T> {
    std::env::var(key).ok().and_then(|v| v.trim().parse().ok())
}

impl Settings {
    fn from_env() -> Settings {
        let quick = std::env::args().any(|a| a == "--quick")
            || std::env::var("NDRING_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        let w1_rt = env_num("NDRING_BENCH_RT").unwrap_or(pick(quick, 20_000, 2_000));
        Settings {
            quick,
            runs: env_num("NDRING_BENCH_RUNS")
                .unwrap_or(pick(quick, 5, 1))
                .max(1),
            w1_rt: w1_rt.max(10),
            w1_warm: (w1_rt / 10).max(100),
            w2_items: env_num("NDRING_BENCH_ITEMS")
                .unwrap_or(pick(quick, 1_000_000, 50_000))
                .max(100),
            w3_frames: env_num("NDRING_BENCH_FRAMES")
                .unwrap_or(pick(quick, 200, 30))
                .max(FRAME_WARM + 2),
            w4_items: env_num("NDRING_BENCH_W4_ITEMS")
                .unwrap_or(pick(quick, 1_000_000, 50_000))
                .max(100),
            max_procs: env_num("NDRING_BENCH_MAX_PROCS").unwrap_or(4).max(1),
            only: std::env::var("NDRING_BENCH_ONLY").ok(),
        }
    }

    fn wants(&self, w: &str) -> bool {
        self.only
            .as_deref()
            .is_none_or(|o| o.split(',').any(|x| x.trim().eq_ignore_ascii_case(w)))
    }

    /// Seconds a single variant may run before the watchdog gives up.
    fn limit(&self) -> u64 {
        if self.quick { 60 } else { 300 }
    }
}

#[derive(Clone, Copy, Debug)]
struct Spread {
    min: f64,
    med: f64,
    max: f64,
}

fn spread(values: &[f64]) -> Spread {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let med = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Spread {
        min: v[0],
        med,
        max: v[n - 1],
    }
}

/// The `p`-th percentile (0..=100) of sorted samples (nearest rank).
fn percentile(sorted: &[u64], p: f64) -> u64 {
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn fmt_ns(x: f64) -> String {
    if x >= 100_000.0 {
        format!("{:.0} µs", x / 1000.0)
    } else if x >= 10_000.0 {
        format!("{:.1} µs", x / 1000.0)
    } else {
        format!("{x:.0}")
    }
}

fn fmt_rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k", x / 1e3)
    } else {
        format!("{x:.1}")
    }
}

fn fmt_ratio(x: Option<f64>) -> String {
    match x {
        Some(r) if r.is_finite() => format!("{r:.2}×"),
        _ => "–".to_owned(),
    }
}

/// A markdown table under construction.
struct Table {
    head: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(head: &[&str]) -> Table {
        Table {
            head: head.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn render(&self) -> String {
        let mut w: Vec<usize> = self.head.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                w[i] = w[i].max(c.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::from("|");
            for (i, c) in cells.iter().enumerate() {
                let pad = w[i] - c.chars().count();
                if i == 0 {
                    let _ = write!(s, " {c}{} |", " ".repeat(pad));
                } else {
                    let _ = write!(s, " {}{c} |", " ".repeat(pad));
                }
            }
            s.push('\n');
            s
        };
        let mut out = line(&self.head);
        out.push('|');
        for (i, wi) in w.iter().enumerate() {
            let dashes = "-".repeat(*wi);
            if i == 0 {
                let _ = write!(out, " {dashes} |");
            } else {
                let _ = write!(out, " {}: |", &dashes[1..]);
            }
        }
        out.push('\n');
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }
}

/// Collects what is printed, for the markdown report.
struct Report {
    md: String,
}

impl Report {
    fn say(&mut self, text: &str) {
        print!("{text}");
        let _ = std::io::stdout().flush();
        self.md.push_str(text);
    }
}

// ---------------------------------------------------------------------------------------------
// W1: round-trip latency of a 64-byte array.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum W1 {
    SpscBusy,
    SpscDefault,
    SpscBlocking,
    MpmcBusy,
    RawSpin,
    RawSpinPayload,
    RawFutex,
    Uds,
    Pipe,
}

impl W1 {
    const ALL: [W1; 9] = [
        W1::SpscBusy,
        W1::SpscDefault,
        W1::SpscBlocking,
        W1::MpmcBusy,
        W1::RawSpin,
        W1::RawSpinPayload,
        W1::RawFutex,
        W1::Uds,
        W1::Pipe,
    ];

    fn label(self) -> &'static str {
        match self {
            W1::SpscBusy => "ndring spsc busy-poll",
            W1::SpscDefault => "ndring spsc default (spin 2000)",
            W1::SpscBlocking => "ndring spsc blocking (spin 0)",
            W1::MpmcBusy => "ndring mpmc busy-poll",
            W1::RawSpin => "baseline: raw shm spin",
            W1::RawSpinPayload => "baseline: raw shm spin + 64 B line",
            W1::RawFutex => "baseline: raw shm futex",
            W1::Uds => "baseline: unix socket",
            W1::Pipe => "baseline: pipe",
        }
    }

    fn available(self) -> bool {
        self != W1::RawFutex || os::SYS_FUTEX.is_some()
    }
}

/// Where the "raw shm spin + 64 B line" baseline keeps each direction's array: a line of its
/// own, apart from the flag's (as ndring keeps a slot's payload apart from its stamp).
const RAW_PING_PAYLOAD: usize = 256;
const RAW_PONG_PAYLOAD: usize = 384;

/// Runs one W1 variant; returns the measured round trips in ns (warm-up excluded).
fn w1_run(v: W1, s: &Settings) -> Vec<u64> {
    let total = s.w1_warm + s.w1_rt;
    let mut lat = Vec::with_capacity(s.w1_rt);
    let mut record = |i: usize, t: Instant| {
        let dt = nanos(t.elapsed());
        if i >= s.w1_warm {
            lat.push(dt);
        }
    };
    match v {
        W1::SpscBusy | W1::SpscDefault | W1::SpscBlocking | W1::MpmcBusy => {
            let spin = match v {
                W1::SpscDefault => 2000,
                W1::SpscBlocking => 0,
                _ => BUSY,
            };
            let config = if v == W1::MpmcBusy {
                Config::mpmc()
            } else {
                Config::spsc()
            }
            .spin(spin);
            let (a, b) = (ring_name("w1a"), ring_name("w1b"));
            let mut tx = Producer::<u8, Ix1>::create(&a, SMALL, &config).expect("create a");
            let mut rx = Consumer::<u8, Ix1>::create(&b, SMALL, &config).expect("create b");
            let child = spawn(
                "w1-ring",
                &[
                    ("a", a.clone()),
                    ("b", b.clone()),
                    ("spin", spin.to_string()),
                ],
                Stdio::null(),
                Stdio::null(),
            );
            for i in 0..total {
                let t = Instant::now();
                let mut w = tx.claim().expect("claim");
                w.fill(i as u8);
                w.publish();
                let r = rx.recv().expect("recv");
                assert_eq!(r[SMALL - 1], i as u8);
                record(i, t);
            }
            tx.close();
            reap(child);
        }
        W1::RawSpin | W1::RawSpinPayload | W1::RawFutex => {
            let map = RawMap::create("w1", 4096);
            let (ping, pong) = (map.u32_at(0), map.u32_at(128));
            let futex = v == W1::RawFutex;
            let payload = v == W1::RawSpinPayload;
            let child = spawn(
                match v {
                    W1::RawFutex => "w1-futex",
                    W1::RawSpinPayload => "w1-spin-payload",
                    _ => "w1-spin",
                },
                &[
                    ("path", map.path.display().to_string()),
                    ("n", total.to_string()),
                ],
                Stdio::null(),
                Stdio::null(),
            );
            for i in 0..total {
                let n = i as u32 + 1;
                let t = Instant::now();
                if payload {
                    map.with_mut(RAW_PING_PAYLOAD, SMALL, |d| d.fill(i as u8));
                }
                ping.store(n, Release);
                if payload {
                    spin_until(|| pong.load(Acquire) == n);
                    let last = map.with_ref(RAW_PONG_PAYLOAD, SMALL, |d| d[SMALL - 1]);
                    assert_eq!(last, i as u8);
                } else if futex {
                    futex_wake(ping, 1);
                    while pong.load(Acquire) != n {
                        futex_wait(pong, n - 1);
                    }
                } else {
                    spin_until(|| pong.load(Acquire) == n);
                }
                record(i, t);
            }
            reap(child);
        }
        W1::Uds => {
            let path = sock_path("w1");
            let listener = UnixListener::bind(&path).expect("bind");
            let child = spawn(
                "w1-uds",
                &[
                    ("path", path.display().to_string()),
                    ("n", total.to_string()),
                ],
                Stdio::null(),
                Stdio::null(),
            );
            let (mut sock, _) = listener.accept().expect("accept");
            let _ = std::fs::remove_file(&path);
            let mut buf = [0u8; SMALL];
            for i in 0..total {
                let t = Instant::now();
                sock.write_all(&[i as u8; SMALL]).expect("write");
                sock.read_exact(&mut buf).expect("read");
                assert_eq!(buf[SMALL - 1], i as u8);
                record(i, t);
            }
            reap(child);
        }
        W1::Pipe => {
            let mut child = spawn(
                "w1-pipe",
                &[("n", total.to_string())],
                Stdio::piped(),
                Stdio::piped(),
            );
            let mut to: ChildStdin = child.stdin.take().expect("stdin");
            let mut from: ChildStdout = child.stdout.take().expect("stdout");
            let mut buf = [0u8; SMALL];
            for i in 0..total {
                let t = Instant::now();
                to.write_all(&[i as u8; SMALL]).expect("write");
                from.read_exact(&mut buf).expect("read");
                assert_eq!(buf[SMALL - 1], i as u8);
                record(i, t);
            }
            drop(to);
            reap(child);
        }
    }
    lat
}

struct LatRow {
    variant: W1,
    p50: Vec<f64>,
    p99: Vec<f64>,
    p999: Vec<f64>,
    /// All measured round trips of all runs, sorted (for the CDF).
    pooled: Vec<u64>,
}

fn w1(s: &Settings, rep: &mut Report) -> Vec<LatRow> {
    let variants: Vec<W1> = W1::ALL.into_iter().filter(|v| v.available()).collect();
    let mut rows: Vec<LatRow> = variants
        .iter()
        .map(|&variant| LatRow {
            variant,
            p50: vec![],
            p99: vec![],
            p999: vec![],
            pooled: vec![],
        })
        .collect();
    for run in 0..s.runs {
        eprintln!("W1 run {}/{}", run + 1, s.runs);
        for row in &mut rows {
            arm(s.limit());
            let mut lat = w1_run(row.variant, s);
            lat.sort_unstable();
            row.p50.push(percentile(&lat, 50.0) as f64);
            row.p99.push(percentile(&lat, 99.0) as f64);
            row.p999.push(percentile(&lat, 99.9) as f64);
            row.pooled.extend_from_slice(&lat);
        }
    }
    for row in &mut rows {
        row.pooled.sort_unstable();
    }

    let base = |v: W1| {
        rows.iter()
            .find(|r| r.variant == v)
            .map(|r| spread(&r.p50).med)
    };
    let bases = [
        base(W1::RawSpin),
        base(W1::RawSpinPayload),
        base(W1::RawFutex),
        base(W1::Uds),
        base(W1::Pipe),
    ];
    let mut t = Table::new(&[
        "W1 round trip, 64 B",
        "p50 ns min",
        "p50 ns med",
        "p50 ns max",
        "p99 ns med",
        "p99.9 ns med",
        "p50 / raw spin",
        "p50 / raw spin + line",
        "p50 / raw futex",
        "p50 / unix socket",
        "p50 / pipe",
    ]);
    for r in &rows {
        let p50 = spread(&r.p50);
        let mut cells = vec![
            r.variant.label().to_owned(),
            fmt_ns(p50.min),
            fmt_ns(p50.med),
            fmt_ns(p50.max),
            fmt_ns(spread(&r.p99).med),
            fmt_ns(spread(&r.p999).med),
        ];
        cells.extend(bases.iter().map(|b| fmt_ratio(b.map(|b| p50.med / b))));
        t.row(cells);
    }
    rep.say(&format!(
        "\n## W1: round-trip latency, 64-byte array\n\n{} round trips per run ({} warm-up \
         excluded), {} run(s); p50 min/med/max over runs, p99 and p99.9 medians over runs. \
         Ratios: ndring latency / baseline latency (below 1: ndring is faster).\n\n{}",
        s.w1_rt,
        s.w1_warm,
        s.runs,
        t.render()
    ));
    rows
}

// ---------------------------------------------------------------------------------------------
// W2: one-way rate of 64-byte arrays.

fn raw_ring_len() -> usize {
    (256 + RATE_SLOTS * SMALL).next_multiple_of(4096)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum W2 {
    Spsc,
    SpscDefaultSlots,
    Mpmc,
    Raw,
    Uds,
    Pipe,
}

impl W2 {
    const ALL: [W2; 6] = [
        W2::Spsc,
        W2::SpscDefaultSlots,
        W2::Mpmc,
        W2::Raw,
        W2::Uds,
        W2::Pipe,
    ];

    fn label(self) -> String {
        match self {
            W2::Spsc => format!("ndring spsc ({RATE_SLOTS} slots)"),
            W2::SpscDefaultSlots => "ndring spsc (4 slots)".to_owned(),
            W2::Mpmc => format!("ndring mpmc ({RATE_SLOTS} slots)"),
            W2::Raw => format!("baseline: raw shm spsc ring ({RATE_SLOTS} slots)"),
            W2::Uds => "baseline: unix socket".to_owned(),
            W2::Pipe => "baseline: pipe".to_owned(),
        }
    }
}

/// Consumes `n` items, checking their order; returns items/s from item `n / 10` to the last.
fn w2_run(v: W2, s: &Settings) -> f64 {
    let n = s.w2_items;
    let warm = n / 10;
    let mut start = None;
    let mut end = None;
    let mut seen = |i: u64, item: &[u8]| {
        assert_eq!(item_index(item), i, "item out of order");
        assert_eq!(item[SMALL - 1], i as u8);
        if i == warm {
            start = Some(Instant::now());
        }
        if i == n - 1 {
            end = Some(Instant::now());
        }
    };
    let mut buf = [0u8; SMALL];
    match v {
        W2::Spsc | W2::SpscDefaultSlots | W2::Mpmc => {
            let config = match v {
                W2::Spsc => Config::spsc().slots(RATE_SLOTS),
                W2::SpscDefaultSlots => Config::spsc(),
                _ => Config::mpmc().slots(RATE_SLOTS),
            };
            let name = ring_name("w2");
            let mut rx = Consumer::<u8, Ix1>::create(&name, SMALL, &config).expect("create");
            let child = spawn(
                "w2-ring",
                &[("name", name.clone()), ("n", n.to_string())],
                Stdio::null(),
                Stdio::null(),
            );
            let mut i = 0;
            loop {
                match rx.recv() {
                    Ok(r) => {
                        buf.copy_from_slice(r.as_slice().expect("contiguous"));
                        seen(i, &buf);
                        i += 1;
                    }
                    Err(Error::Closed) => break,
                    Err(e) => panic!("recv: {e}"),
                }
            }
            assert_eq!(i, n);
            reap(child);
        }
        W2::Raw => {
            let map = RawMap::create("w2", raw_ring_len());
            let (head, tail) = (map.u64_at(0), map.u64_at(128));
            let child = spawn(
                "w2-raw",
                &[
                    ("path", map.path.display().to_string()),
                    ("n", n.to_string()),
                ],
                Stdio::null(),
                Stdio::null(),
            );
            let mut cached_tail = 0;
            for i in 0..n {
                if i >= cached_tail {
                    spin_until(|| {
                        cached_tail = tail.load(Acquire);
                        i < cached_tail
                    });
                }
                let off = 256 + (i % RATE_SLOTS as u64) as usize * SMALL;
                map.with_ref(off, SMALL, |d| buf.copy_from_slice(d));
                head.store(i + 1, Release);
                seen(i, &buf);
            }
            reap(child);
        }
        W2::Uds | W2::Pipe => {
            let (mut input, child): (Box<dyn Read>, Child) = if v == W2::Uds {
                let path = sock_path("w2");
                let listener = UnixListener::bind(&path).expect("bind");
                let child = spawn(
                    "w2-uds",
                    &[("path", path.display().to_string()), ("n", n.to_string())],
                    Stdio::null(),
                    Stdio::null(),
                );
                let (sock, _) = listener.accept().expect("accept");
                let _ = std::fs::remove_file(&path);
                (Box::new(sock), child)
            } else {
                let mut child = spawn(
                    "w2-pipe",
                    &[("n", n.to_string())],
                    Stdio::null(),
                    Stdio::piped(),
                );
                (Box::new(child.stdout.take().expect("stdout")), child)
            };
            for i in 0..n {
                input.read_exact(&mut buf).expect("read");
                seen(i, &buf);
            }
            reap(child);
        }
    }
    let (start, end) = (start.expect("timed"), end.expect("timed"));
    (n - 1 - warm) as f64 / (end - start).as_secs_f64()
}

fn w2(s: &Settings, rep: &mut Report) {
    let mut results: Vec<(W2, Vec<f64>)> = W2::ALL.iter().map(|&v| (v, vec![])).collect();
    for run in 0..s.runs {
        eprintln!("W2 run {}/{}", run + 1, s.runs);
        for (v, rates) in &mut results {
            arm(s.limit());
            rates.push(w2_run(*v, s));
        }
    }
    let base = |v: W2| results.iter().find(|r| r.0 == v).map(|r| spread(&r.1).med);
    let bases = [base(W2::Raw), base(W2::Uds), base(W2::Pipe)];
    let mut t = Table::new(&[
        "W2 one-way, 64 B",
        "items/s min",
        "items/s med",
        "items/s max",
        "ns/item med",
        "/ raw shm ring",
        "/ unix socket",
        "/ pipe",
    ]);
    for (v, rates) in &results {
        let r = spread(rates);
        let mut cells = vec![
            v.label(),
            fmt_rate(r.min),
            fmt_rate(r.med),
            fmt_rate(r.max),
            format!("{:.1}", 1e9 / r.med),
        ];
        cells.extend(bases.iter().map(|b| fmt_ratio(b.map(|b| r.med / b))));
        t.row(cells);
    }
    rep.say(&format!(
        "\n## W2: one-way rate, 64-byte arrays\n\nA child process produces {} items, the parent \
         consumes and checks them; timed from item {} to the last; {} run(s). Ratios: ndring \
         rate / baseline rate (above 1: ndring is faster).\n\n{}",
        s.w2_items,
        s.w2_items / 10,
        s.runs,
        t.render()
    ));
}

// ---------------------------------------------------------------------------------------------
// W3: 1920x1080x3 u8 frames.

fn raw_frame_stride() -> usize {
    FRAME_BYTES.next_multiple_of(4096)
}

fn raw_frame_off(slot: usize) -> usize {
    4096 + slot * raw_frame_stride()
}

fn raw_frames_len(slots: usize) -> usize {
    raw_frame_off(slots)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum W3 {
    Ring(usize),
    Raw(usize),
    Single,
    Uds,
    Pipe,
}

impl W3 {
    fn label(self) -> String {
        match self {
            W3::Ring(n) => format!("ndring spsc, {n} slots"),
            W3::Raw(n) => format!("baseline: raw shm flags, {n} slots"),
            W3::Single => "baseline: single process fill+read".to_owned(),
            W3::Uds => "baseline: unix socket".to_owned(),
            W3::Pipe => "baseline: pipe".to_owned(),
        }
    }
}

/// Receives (or, single-process, makes) the frames, checking each; returns frames/s from frame
/// `FRAME_WARM` to the last.
fn w3_run(v: W3, s: &Settings) -> f64 {
    let n = s.w3_frames;
    let mut start = None;
    let mut end = None;
    let mut seen = |k: u64, sum: u64| {
        assert_eq!(sum, frame_sum(k), "frame {k} corrupt");
        if k == FRAME_WARM {
            start = Some(Instant::now());
        }
        if k == n - 1 {
            end = Some(Instant::now());
        }
    };
    match v {
        W3::Ring(slots) => {
            let name = ring_name("w3");
            let config = Config::spsc().slots(slots);
            let mut rx = Consumer::<u8, Ix3>::create(&name, FRAME, &config).expect("create");
            let child = spawn(
                "w3-ring",
                &[("name", name.clone()), ("n", n.to_string())],
                Stdio::null(),
                Stdio::null(),
            );
            for k in 0..n {
                let r = rx.recv().expect("recv");
                seen(k, checksum(r.as_slice().expect("contiguous")));
            }
            assert!(matches!(rx.recv(), Err(Error::Closed)));
            reap(child);
        }
        W3::Raw(slots) => {
            let map = RawMap::create("w3", raw_frames_len(slots));
            let child = spawn(
                "w3-raw",
                &[
                    ("path", map.path.display().to_string()),
                    ("slots", slots.to_string()),
                    ("n", n.to_string()),
                ],
                Stdio::null(),
                Stdio::null(),
            );
            for k in 0..n {
                let slot = (k % slots as u64) as usize;
                let flag = map.u64_at(128 * slot);
                spin_until(|| flag.load(Acquire) == k + 1);
                let sum = map.with_ref(raw_frame_off(slot), FRAME_BYTES, checksum);
                flag.store(0, Release);
                seen(k, sum);
            }
            reap(child);
        }
        W3::Single => {
            let mut frame = vec![0u8; FRAME_BYTES];
            for k in 0..n {
                frame.fill(frame_value(k));
                seen(k, checksum(&frame));
            }
        }
        W3::Uds | W3::Pipe => {
            let (mut input, child): (Box<dyn Read>, Child) = if v == W3::Uds {
                let path = sock_path("w3");
                let listener = UnixListener::bind(&path).expect("bind");
                let child = spawn(
                    "w3-uds",
                    &[("path", path.display().to_string()), ("n", n.to_string())],
                    Stdio::null(),
                    Stdio::null(),
                );
                let (sock, _) = listener.accept().expect("accept");
                let _ = std::fs::remove_file(&path);
                (Box::new(sock), child)
            } else {
                let mut child = spawn(
                    "w3-pipe",
                    &[("n", n.to_string())],
                    Stdio::null(),
                    Stdio::piped(),
                );
                (Box::new(child.stdout.take().expect("stdout")), child)
            };
            let mut frame = vec![0u8; FRAME_BYTES];
            for k in 0..n {
                input.read_exact(&mut frame).expect("read");
                seen(k, checksum(&frame));
            }
            reap(child);
        }
    }
    let (start, end) = (start.expect("timed"), end.expect("timed"));
    (n - 1 - FRAME_WARM) as f64 / (end - start).as_secs_f64()
}

fn w3(s: &Settings, rep: &mut Report) {
    let mut variants = vec![];
    for slots in [2, 4, 8] {
        variants.push(W3::Ring(slots));
        variants.push(W3::Raw(slots));
    }
    variants.extend([W3::Single, W3::Uds, W3::Pipe]);
    let mut results: Vec<(W3, Vec<f64>)> = variants.into_iter().map(|v| (v, vec![])).collect();
    for run in 0..s.runs {
        eprintln!("W3 run {}/{}", run + 1, s.runs);
        for (v, rates) in &mut results {
            arm(s.limit());
            rates.push(w3_run(*v, s));
        }
    }
    let base = |v: W3| results.iter().find(|r| r.0 == v).map(|r| spread(&r.1).med);
    let mut t = Table::new(&[
        "W3 frames 1920x1080x3 u8",
        "frames/s min",
        "frames/s med",
        "frames/s max",
        "GB/s med",
        "/ raw flags (same slots)",
        "/ single process",
        "/ unix socket",
        "/ pipe",
    ]);
    for (v, rates) in &results {
        let r = spread(rates);
        let same = match v {
            W3::Ring(n) | W3::Raw(n) => base(W3::Raw(*n)),
            _ => None,
        };
        let mut cells = vec![
            v.label(),
            format!("{:.1}", r.min),
            format!("{:.1}", r.med),
            format!("{:.1}", r.max),
            format!("{:.2}", r.med * FRAME_BYTES as f64 / 1e9),
        ];
        for b in [same, base(W3::Single), base(W3::Uds), base(W3::Pipe)] {
            cells.push(fmt_ratio(b.map(|b| r.med / b)));
        }
        t.row(cells);
    }
    rep.say(&format!(
        "\n## W3: frames, 1920x1080x3 u8 ({FRAME_BYTES} bytes)\n\nThe producer writes every \
         byte of each frame in place, the consumer reads every byte (a checksum, verified); {} \
         frames per run, timed from frame {FRAME_WARM} to the last; {} run(s). GB/s counts each \
         frame once. Ratios: rate / baseline rate (above 1: faster).\n\n{}",
        s.w3_frames,
        s.runs,
        t.render()
    ));
}

// ---------------------------------------------------------------------------------------------
// W4: P producers x C consumers on one MPMC ring.

/// Runs `producers` x `consumers` processes; returns items/s.
fn w4_run(producers: usize, consumers: usize, s: &Settings) -> f64 {
    let n = s.w4_items;
    let name = ring_name("w4");
    let config = Config::mpmc().slots(RATE_SLOTS);
    // The creator's handle stays idle; it only keeps the ring alive.
    let _creator = Producer::<u8, Ix1>::create(&name, SMALL, &config).expect("create");
    let ctl = RawMap::create("w4", 4096);
    let ctl_path = ctl.path.display().to_string();
    let mut prods = vec![];
    let mut expected_sum = 0u64;
    for p in 0..producers {
        let share = n / producers as u64 + u64::from((p as u64) < n % producers as u64);
        expected_sum += share * share.saturating_sub(1) / 2;
        prods.push(spawn(
            "w4-prod",
            &[
                ("name", name.clone()),
                ("ctl", ctl_path.clone()),
                ("n", share.to_string()),
                ("producers", producers.to_string()),
            ],
            Stdio::null(),
            Stdio::null(),
        ));
    }
    let cons: Vec<Child> = (0..consumers)
        .map(|_| {
            spawn(
                "w4-cons",
                &[("name", name.clone()), ("ctl", ctl_path.clone())],
                Stdio::null(),
                Stdio::piped(),
            )
        })
        .collect();
    let ready = ctl.u32_at(0);
    while ready.load(Acquire) as usize != producers + consumers {
        std::thread::sleep(Duration::from_micros(100));
    }
    let go_ns = ndring::now_ns();
    let go = ctl.u32_at(128);
    go.store(1, Release);
    if os::SYS_FUTEX.is_some() {
        futex_wake(go, c_int::MAX);
    }
    for p in prods {
        reap(p);
    }
    let (mut count, mut sum, mut last_ns) = (0u64, 0u64, go_ns);
    for c in cons {
        let out = c.wait_with_output().expect("wait consumer");
        assert!(out.status.success(), "consumer failed: {}", out.status);
        let text = String::from_utf8_lossy(&out.stdout);
        let f: Vec<u64> = text
            .split_whitespace()
            .map(|x| x.parse().expect("consumer report"))
            .collect();
        assert_eq!(f.len(), 3, "consumer report: {text:?}");
        count += f[0];
        sum += f[1];
        last_ns = last_ns.max(f[2]);
    }
    assert_eq!(count, n, "items lost or duplicated");
    assert_eq!(sum, expected_sum, "items corrupted");
    n as f64 / ((last_ns - go_ns) as f64 / 1e9)
}

fn w4(s: &Settings, rep: &mut Report) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let m = cores.min(s.max_procs);
    let mut results: Vec<((usize, usize), Vec<f64>)> = vec![];
    for p in 1..=m {
        for c in 1..=m {
            results.push(((p, c), vec![]));
        }
    }
    for run in 0..s.runs {
        eprintln!("W4 run {}/{}", run + 1, s.runs);
        for ((p, c), rates) in &mut results {
            arm(s.limit());
            rates.push(w4_run(*p, *c, s));
        }
    }
    let one = spread(&results[0].1).med;
    let mut t = Table::new(&[
        "W4 MPMC, 64 B",
        "items/s min",
        "items/s med",
        "items/s max",
        "/ 1x1",
    ]);
    for ((p, c), rates) in &results {
        let r = spread(rates);
        t.row(vec![
            format!("{p} producer(s) x {c} consumer(s)"),
            fmt_rate(r.min),
            fmt_rate(r.med),
            fmt_rate(r.max),
            fmt_ratio(Some(r.med / one)),
        ]);
    }
    rep.say(&format!(
        "\n## W4: MPMC scaling, processes\n\n{} items per run over one {RATE_SLOTS}-slot MPMC \
         ring (default spin), P and C up to min(cores = {cores}, {}); timed from a start barrier \
         to the last consumer seeing the ring closed; {} run(s).\n\n{}",
        s.w4_items,
        s.max_procs,
        s.runs,
        t.render()
    ));
}

// ---------------------------------------------------------------------------------------------
// The W1 CDF plot.

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn cdf_svg(rows: &[LatRow]) -> String {
    const W: f64 = 980.0;
    const H: f64 = 520.0;
    const L: f64 = 70.0;
    const R: f64 = 300.0;
    const T: f64 = 40.0;
    const B: f64 = 60.0;
    const COLORS: [&str; 8] = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    ];
    const TOP_Q: f64 = 0.999;
    let rows: Vec<&LatRow> = rows.iter().filter(|r| !r.pooled.is_empty()).collect();
    let q = |v: &[u64], p: f64| v[((v.len() - 1) as f64 * p) as usize].max(1) as f64;
    let lo = rows
        .iter()
        .map(|r| q(&r.pooled, 0.0))
        .fold(f64::MAX, f64::min);
    let hi = rows.iter().map(|r| q(&r.pooled, TOP_Q)).fold(1.0, f64::max);
    let (e0, e1) = (
        lo.log10().floor(),
        hi.log10().ceil().max(lo.log10().floor() + 1.0),
    );
    let pw = W - L - R;
    let ph = H - T - B;
    let x = |ns: f64| L + (ns.log10() - e0) / (e1 - e0) * pw;
    let y = |f: f64| T + (1.0 - f) * ph;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">W1: round-trip latency CDF, 64-byte array (up to p99.9)</text>"#,
        L + pw / 2.0
    );
    // Grid and axes.
    for i in 0..=10 {
        let f = i as f64 / 10.0;
        let _ = writeln!(
            svg,
            r##"<line x1="{L}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="#ddd"/><text x="{2:.1}" y="{3:.1}" text-anchor="end">{f:.1}</text>"##,
            y(f),
            L + pw,
            L - 6.0,
            y(f) + 4.0
        );
    }
    let mut e = e0;
    while e <= e1 {
        for m in [1.0, 2.0, 5.0] {
            let v = m * 10f64.powf(e);
            if v.log10() > e1 + 1e-9 {
                break;
            }
            let label = if v >= 1e6 {
                format!("{} ms", v / 1e6)
            } else if v >= 1e3 {
                format!("{} µs", v / 1e3)
            } else {
                format!("{v} ns")
            };
            let _ = writeln!(
                svg,
                r##"<line x1="{0:.1}" y1="{T}" x2="{0:.1}" y2="{1:.1}" stroke="{2}"/><text x="{0:.1}" y="{3:.1}" text-anchor="middle">{label}</text>"##,
                x(v),
                T + ph,
                if m == 1.0 { "#bbb" } else { "#eee" },
                T + ph + 18.0
            );
        }
        e += 1.0;
    }
    let _ = writeln!(
        svg,
        r##"<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>"##
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">round trip (log scale)</text>"#,
        L + pw / 2.0,
        H - 15.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">fraction of round trips</text>"#,
        T + ph / 2.0,
        T + ph / 2.0
    );
    // Curves and legend.
    for (i, r) in rows.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let dash = if r.variant.label().starts_with("baseline") {
            r#" stroke-dasharray="6 3""#
        } else {
            ""
        };
        let mut pts = String::new();
        for j in 0..=400 {
            let f = j as f64 / 400.0 * TOP_Q;
            let _ = write!(pts, "{:.1},{:.1} ", x(q(&r.pooled, f)), y(f));
        }
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="{}"/>"#,
            pts.trim_end()
        );
        let ly = T + 10.0 + i as f64 * 22.0;
        let lx = W - R + 20.0;
        let _ = writeln!(
            svg,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{color}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
            lx + 28.0,
            lx + 34.0,
            ly + 4.0,
            xml_escape(r.variant.label())
        );
    }
    svg.push_str("</svg>\n");
    svg
}

// ---------------------------------------------------------------------------------------------
// The parent.

fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d);
    }
    // target/<profile>/deps/ipc-<hash>
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            let deps = exe.parent()?;
            (deps.file_name()? == "deps").then(|| deps.parent()?.parent().map(Path::to_path_buf))?
        })
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// Mean cost of one `Instant::now()` + `elapsed()` pair, which every W1 sample includes.
fn timer_overhead_ns() -> f64 {
    let n = 100_000;
    let t0 = Instant::now();
    let mut acc = 0u64;
    for _ in 0..n {
        let t = Instant::now();
        acc = acc.wrapping_add(nanos(t.elapsed()));
    }
    std::hint::black_box(acc);
    nanos(t0.elapsed()) as f64 / n as f64
}

fn first_line_of(path: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    Some(line.split_once(':')?.1.trim().to_owned())
}

fn main() {
    if let Ok(role) = std::env::var(CHILD_ENV) {
        child_main(&role);
        return;
    }
    let s = Settings::from_env();
    start_parent_watchdog();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpu = first_line_of("/proc/cpuinfo", "model name").unwrap_or_else(|| "?".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| k.trim().to_owned())
        .unwrap_or_else(|_| "?".into());
    let mut rep = Report { md: String::new() };
    rep.say(&format!(
        "# ndring IPC benchmark\n\n- mode: {}, {} run(s) per variant (variants interleaved)\n\
         - machine: {cores} core(s), {cpu}, Linux {kernel}\n\
         - nothing pinned; waits in the raw baselines poll like ndring (spin hint, yield every \
         64 polls)\n- timer overhead included in each W1 sample: {:.0} ns\n",
        if s.quick { "quick" } else { "full" },
        s.runs,
        timer_overhead_ns()
    ));

    let mut lat_rows = None;
    if s.wants("w1") {
        lat_rows = Some(w1(&s, &mut rep));
    }
    if s.wants("w2") {
        w2(&s, &mut rep);
    }
    if s.wants("w3") {
        w3(&s, &mut rep);
    }
    if s.wants("w4") {
        w4(&s, &mut rep);
    }
    DEADLINE_NS.store(0, Relaxed);

    let dir = target_dir();
    let _ = std::fs::create_dir_all(&dir);
    if let Some(rows) = &lat_rows {
        let svg = dir.join("ipc-w1-cdf.svg");
        match std::fs::write(&svg, cdf_svg(rows)) {
            Ok(()) => {
                rep.say("\n![W1 latency CDF](ipc-w1-cdf.svg)\n");
                eprintln!("wrote {}", svg.display());
            }
            Err(e) => eprintln!("could not write {}: {e}", svg.display()),
        }
    }
    let md = dir.join("ipc-report.md");
    match std::fs::write(&md, &rep.md) {
        Ok(()) => eprintln!("wrote {}", md.display()),
        Err(e) => eprintln!("could not write {}: {e}", md.display()),
    }
    cleanup_files();
}

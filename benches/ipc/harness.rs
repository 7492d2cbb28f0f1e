//! Shared harness of the IPC benchmark: raw shared memory and futexes for the baselines,
//! child processes, watchdogs, settings, statistics and tables.

pub use std::ffi::{c_int, c_long, c_void};
pub use std::fmt::Write as _;
pub use std::fs::File;
pub use std::io::{Read, Write};
pub use std::os::fd::{AsFd, AsRawFd};
pub use std::os::unix::net::{UnixListener, UnixStream};
pub use std::path::{Path, PathBuf};
pub use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
pub use std::ptr::NonNull;
pub use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};
pub use std::time::{Duration, Instant};

pub use ndarray::{Ix1, Ix3};
pub use ndring::{
    BroadcastWriter, Config, Consumer, Error, OpenOptions, Producer, Start, Subscriber,
};

/// Fewest frames per W3 variant (the warm-up of a 16-slot ring is 36).
pub const MIN_FRAMES: u64 = 60;

pub const CHILD_ENV: &str = "NDRING_BENCH_CHILD";
/// Bytes of the small item.
pub const SMALL: usize = 64;
/// Slots of the rings of W2 and W4.
pub const RATE_SLOTS: usize = 64;
/// Spin count that never falls back to the futex in practice.
pub const BUSY: u32 = u32::MAX;

// ---------------------------------------------------------------------------------------------
// Minimal OS interface for the raw baselines (libc symbols are always linked on Linux).

pub mod os {
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
pub fn futex_wait(word: &AtomicU32, expected: u32) {
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
pub fn futex_wake(word: &AtomicU32, n: c_int) {
    let nr = os::SYS_FUTEX.expect("futex baseline not supported on this architecture");
    // SAFETY: `word` is a valid, aligned u32; FUTEX_WAKE does not access memory through it
    // beyond hashing its address.
    unsafe {
        os::syscall(nr, word.as_ptr(), os::FUTEX_WAKE, n);
    }
}

/// Polls `ready` like ndring's blocking calls do: a spin hint, a yield every 64 polls.
#[inline]
pub fn spin_until(mut ready: impl FnMut() -> bool) {
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
pub struct RawMap {
    pub ptr: NonNull<u8>,
    pub len: usize,
    pub path: PathBuf,
    pub owner: bool,
}

impl RawMap {
    pub fn create(tag: &str, len: usize) -> RawMap {
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

    pub fn open(path: &Path, len: usize) -> RawMap {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        Self::map(&file, path.to_path_buf(), len, false)
    }

    pub fn map(file: &File, path: PathBuf, len: usize, owner: bool) -> RawMap {
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

    pub fn u32_at(&self, off: usize) -> &AtomicU32 {
        assert!(off % 4 == 0 && off + 4 <= self.len);
        // SAFETY: in bounds and 4-aligned (the mapping is page-aligned); the mapping lives as long
        // as `self`; every process accesses this word only atomically.
        unsafe { &*self.ptr.as_ptr().add(off).cast::<AtomicU32>() }
    }

    pub fn u64_at(&self, off: usize) -> &AtomicU64 {
        assert!(off % 8 == 0 && off + 8 <= self.len);
        // SAFETY: as in `u32_at`, 8-aligned.
        unsafe { &*self.ptr.as_ptr().add(off).cast::<AtomicU64>() }
    }

    /// Runs `f` on bytes `off..off + len`, which the caller's hand-off protocol (an Acquire load
    /// of a flag the other process stored with Release) gives to this process alone meanwhile.
    pub fn with_mut<R>(&self, off: usize, len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
        assert!(off + len <= self.len);
        // SAFETY: in bounds of the live mapping; by the caller's protocol no other process touches
        // the range until we hand it back, and no other reference into it exists in this
        // process (it is only reached through these closures, never nested).
        f(unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(off), len) })
    }

    /// Runs `f` on bytes `off..off + len`, which nobody writes meanwhile (caller's protocol).
    pub fn with_ref<R>(&self, off: usize, len: usize, f: impl FnOnce(&[u8]) -> R) -> R {
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

/// The 64-byte item number `i`: its index in the first 8 bytes, its low byte after.
pub fn small_item(i: u64) -> [u8; SMALL] {
    let mut b = [i as u8; SMALL];
    b[..8].copy_from_slice(&i.to_le_bytes());
    b
}

pub fn item_index(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
}

pub fn ring_name(tag: &str) -> String {
    let name = format!("/ndrb-{}-{tag}", std::process::id());
    assert!(name.len() <= ndring::MAX_NAME_LEN, "name too long: {name}");
    name
}

pub fn sock_path(tag: &str) -> PathBuf {
    PathBuf::from(format!("/tmp/ndrb-{}-{tag}.sock", std::process::id()))
}

/// Removes whatever this process left in `/dev/shm` and `/tmp` (after a failure).
pub fn cleanup_files() {
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

pub fn nanos(d: Duration) -> u64 {
    d.as_nanos() as u64
}

// ---------------------------------------------------------------------------------------------
// Watchdogs: a benchmark never hangs, and no child outlives its parent.

/// Monotonic ns (since the first call) after which the parent gives up; 0: none.
pub static DEADLINE_NS: AtomicU64 = AtomicU64::new(0);

pub fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Arms the parent's watchdog for the next `secs` seconds.
pub fn arm(secs: u64) {
    DEADLINE_NS.store(nanos(epoch().elapsed()) + secs * 1_000_000_000, Relaxed);
}

pub fn start_parent_watchdog() {
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
pub fn start_child_watchdog() {
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

pub struct ChildArgs(pub Vec<(String, String)>);

impl ChildArgs {
    pub fn from_env() -> ChildArgs {
        ChildArgs(
            std::env::args()
                .skip(1)
                .filter_map(|a| a.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
                .collect(),
        )
    }

    pub fn str(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("child argument {key} missing"))
    }

    pub fn num<T: std::str::FromStr>(&self, key: &str) -> T {
        self.str(key)
            .parse()
            .unwrap_or_else(|_| panic!("child argument {key} is not a number"))
    }
}

pub fn spawn(role: &str, args: &[(&str, String)], stdin: Stdio, stdout: Stdio) -> Child {
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

pub fn reap(mut child: Child) {
    let status = child.wait().expect("wait child");
    assert!(status.success(), "child failed: {status}");
}

pub fn stdin_file() -> File {
    File::from(
        std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .expect("dup stdin"),
    )
}

pub fn stdout_file() -> File {
    File::from(
        std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .expect("dup stdout"),
    )
}

/// Waits until `word` is non-zero (the W4 start barrier).
pub fn wait_nonzero(word: &AtomicU32) {
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

#[derive(Clone)]
pub struct Settings {
    pub quick: bool,
    pub runs: usize,
    pub w1_rt: usize,
    pub w1_warm: usize,
    pub w2_items: u64,
    pub w3_frames: u64,
    pub w4_items: u64,
    pub max_procs: usize,
    pub only: Option<String>,
}

pub fn pick<T>(quick: bool, full: T, fast: T) -> T {
    if quick { fast } else { full }
}

pub fn env_num<T: std::str::FromStr>(key: &str) -> Option<T> {
    std::env::var(key).ok().and_then(|v| v.trim().parse().ok())
}

impl Settings {
    pub fn from_env() -> Settings {
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
                .max(MIN_FRAMES),
            w4_items: env_num("NDRING_BENCH_W4_ITEMS")
                .unwrap_or(pick(quick, 1_000_000, 50_000))
                .max(100),
            max_procs: env_num("NDRING_BENCH_MAX_PROCS").unwrap_or(4).max(1),
            only: std::env::var("NDRING_BENCH_ONLY").ok(),
        }
    }

    pub fn wants(&self, w: &str) -> bool {
        self.only
            .as_deref()
            .is_none_or(|o| o.split(',').any(|x| x.trim().eq_ignore_ascii_case(w)))
    }

    /// Seconds a single variant may run before the watchdog gives up.
    pub fn limit(&self) -> u64 {
        if self.quick { 60 } else { 300 }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Spread {
    pub min: f64,
    pub med: f64,
    pub max: f64,
}

pub fn spread(values: &[f64]) -> Spread {
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
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

pub fn fmt_ns(x: f64) -> String {
    if x >= 100_000.0 {
        format!("{:.0} µs", x / 1000.0)
    } else if x >= 10_000.0 {
        format!("{:.1} µs", x / 1000.0)
    } else {
        format!("{x:.0}")
    }
}

pub fn fmt_rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k", x / 1e3)
    } else {
        format!("{x:.1}")
    }
}

pub fn fmt_ratio(x: Option<f64>) -> String {
    match x {
        Some(r) if r.is_finite() => format!("{r:.2}×"),
        _ => "–".to_owned(),
    }
}

/// A markdown table under construction.
pub struct Table {
    pub head: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(head: &[&str]) -> Table {
        Table {
            head: head.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
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
pub struct Report {
    pub md: String,
}

impl Report {
    pub fn say(&mut self, text: &str) {
        print!("{text}");
        let _ = std::io::stdout().flush();
        self.md.push_str(text);
    }
}

/// `NDRING_BENCH_PIN=1`: the parent runs on CPU 0 and every child on CPU 1, so that a busy host
/// cannot put both ends of a ping-pong on one core (a 5 µs "round trip" that measures the
/// scheduler). Off by default: nothing is pinned.
pub fn pin(cpu: usize) {
    if std::env::var("NDRING_BENCH_PIN").is_ok_and(|v| v == "1") {
        unsafe extern "C" {
            fn sched_setaffinity(pid: c_int, size: usize, mask: *const u64) -> c_int;
        }
        let mask: u64 = 1 << cpu;
        // SAFETY: a one-word CPU mask, read by the call; pid 0 is this thread.
        let rc = unsafe { sched_setaffinity(0, 8, &mask) };
        assert_eq!(rc, 0, "sched_setaffinity to CPU {cpu} failed");
    }
}

//! Shared by the cross-process tests: each test binary re-executes itself as a child process
//! with `NDRING_CHILD=<role>` and the role's arguments in `NDRING_ARGS`.
#![allow(dead_code)]

use std::process::{Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// A child process whose output is being collected (at once, so that a chatty child never
/// blocks on a full pipe).
pub struct Running {
    pub id: u32,
    done: Receiver<std::io::Result<Output>>,
}

/// A segment name unique to this process and `tag` (at most 31 bytes).
pub fn name(tag: &str) -> String {
    let n = format!("/ndt-{}-{}", std::process::id(), tag);
    assert!(n.len() <= 31, "test name too long: {n}");
    n
}

/// Removes ring `name` when dropped: declared before a test's handles, it runs after them, and
/// also when the test fails, so that a failing test leaves nothing in `/dev/shm`.
pub struct RemoveOnDrop(pub String);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = ndring::remove(&self.0);
    }
}

/// Starts this test binary again as the child `role` with `args`.
pub fn spawn(role: &str, args: &[&str]) -> Running {
    let child = command(role, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let id = child.id();
    let (tx, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    Running { id, done }
}

/// The command that runs child `role`.
pub fn command(role: &str, args: &[&str]) -> Command {
    let mut c = Command::new(std::env::current_exe().expect("current_exe"));
    c.env("NDRING_CHILD", role)
        .env("NDRING_ARGS", args.join(" "));
    c
}

impl Running {
    /// Reaps a child that was killed (its exit status is not checked).
    pub fn done_after_kill(self) -> Option<Output> {
        self.done.recv_timeout(Duration::from_secs(60)).ok()?.ok()
    }
}

/// Waits for `child` at most `limit`; kills it and fails if it runs longer. Returns its output,
/// and fails if it exited unsuccessfully.
pub fn finish(child: Running, limit: Duration) -> Output {
    let id = child.id;
    match child.done.recv_timeout(limit) {
        Ok(out) => {
            let out = out.expect("wait for child");
            assert!(out.status.success(), "child {id} failed: {:?}", out.status);
            out
        }
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &id.to_string()]).status();
            panic!("child {id} did not finish within {limit:?}");
        }
    }
}

/// Polls `cond` until it holds, failing after `limit`.
pub fn eventually(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        // A deadlock guard, not a timing check: the limit is minutes.
        if start.elapsed() >= limit {
            panic!("never happened within {limit:?}: {what}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The child's arguments.
pub fn args() -> Vec<String> {
    std::env::var("NDRING_ARGS")
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// A child role: its name and what it runs.
pub type Role = (&'static str, fn(&[String]));

/// Runs the child role named in the environment, if any (then exits), else the tests.
pub fn main(children: &[Role], tests: Vec<libtest_mimic::Trial>) -> std::process::ExitCode {
    if let Ok(role) = std::env::var("NDRING_CHILD") {
        let args = args();
        let f = children
            .iter()
            .find(|(r, _)| *r == role)
            .unwrap_or_else(|| panic!("unknown child role {role}"))
            .1;
        f(&args);
        std::process::exit(0);
    }
    let args = libtest_mimic::Arguments::from_args();
    libtest_mimic::run(&args, tests).exit_code()
}

/// A test from a plain function.
pub fn trial(name: &'static str, f: fn()) -> libtest_mimic::Trial {
    libtest_mimic::Trial::test(name, move || {
        std::panic::catch_unwind(f).map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
                .into()
        })
    })
}

/// The payload pattern of item `i` of producer `p`: every element derived from both.
pub fn pattern(p: u64, i: u64, j: usize) -> u64 {
    (p << 48) ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ j as u64
}

/// This process's effective user id (the owner of a file it just created): root bypasses
/// permission bits, so permission tests run their checks as `nobody` there.
pub fn effective_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    let path = std::env::temp_dir().join(format!("ndt-uid-{}", std::process::id()));
    std::fs::write(&path, b"").unwrap();
    let uid = std::fs::metadata(&path).unwrap().uid();
    std::fs::remove_file(&path).unwrap();
    uid
}

/// A cheap, seedable random number generator (xorshift), so failures can be replayed.
pub struct Rng(pub u64);
impl Rng {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The seed of a randomised test: `NDRING_SEED` replays one; printed either way.
pub fn seed() -> u64 {
    let s = std::env::var("NDRING_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| ndring::now_ns() | 1);
    eprintln!("NDRING_SEED={s}");
    s
}

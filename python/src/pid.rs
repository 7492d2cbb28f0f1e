//! This process's id without a system call. Every handle call, received array and release checks
//! it (a forked child must not use or release its parent's registration), and `getpid` is a
//! real system call in glibc >= 2.25: it was 4 of them per 64-byte item sent and received,
//! ~150 ns each on this host (`perf stat -e syscalls:sys_enter_getpid`). The id is cached at
//! module load and refreshed in the child of every `fork` by a `pthread_atfork` handler, which
//! glibc runs before `fork` returns there (`os.fork`, and so `multiprocessing`'s fork start
//! method, go through libc's `fork`).

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

/// The id of the process this copy of the module runs in (0 before `init`).
static PID: AtomicU32 = AtomicU32::new(0);

extern "C" fn refresh_in_child() {
    PID.store(std::process::id(), Relaxed);
    crate::fork::child();
}

/// Records the id and registers the fork handlers: this id's, and the snapshot of the ring
/// mappings that arrays cover (`fork.rs`). A second registration, should the module be
/// initialised twice, stores the same id twice and finds no copies the second time.
pub fn init() {
    PID.store(std::process::id(), Relaxed);
    // SAFETY: registers handlers that live as long as the module, which CPython never unloads.
    // The child's calls `getpid`, stores an atomic, and moves mappings with `mremap` (system
    // calls, async-signal-safe as a fork child handler's must be; its lock was released before
    // the fork and it allocates nothing); `prepare` and `parent` run in the parent.
    unsafe {
        libc::pthread_atfork(
            Some(crate::fork::prepare),
            Some(crate::fork::parent),
            Some(refresh_in_child),
        )
    };
}

/// This process's id.
pub fn current() -> u32 {
    match PID.load(Relaxed) {
        0 => std::process::id(),
        pid => pid,
    }
}

//! Everything the operating system does for us, behind one small module: named shared memory,
//! mappings, shared futexes, process identity and the clock. Linux only; a macOS port replaces
//! this file (`os_sync_wait_on_address` with the shared flag for the futex, `proc_pidinfo` for
//! start times).

use std::io;
use std::os::fd::OwnedFd;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

#[cfg(not(miri))]
use rustix::fs::{FallocateFlags, Mode};
use rustix::io::Errno;
#[cfg(not(miri))]
use rustix::mm::{MapFlags, ProtFlags};
#[cfg(not(miri))]
use rustix::shm;
#[cfg(not(miri))]
use rustix::thread::futex;

// Under Miri, which has no shared memory, futex or `membarrier`, the same functions over heap
// memory (see `sys/miri.rs`).
#[cfg(miri)]
mod miri;
#[cfg(miri)]
use miri::stat;
#[cfg(miri)]
pub use miri::{
    Handle, create, futex_wait, futex_wake_all, heavy_barrier, map, now_ns, open, pid,
    register_for_heavy_barriers, size, unlink, unmap,
};

/// What names an open shared-memory object (and keeps a mapping of it valid).
#[cfg(not(miri))]
pub type Handle = OwnedFd;

/// Creates `name` exclusively with exactly `mode` (the umask does not apply) and reserves `size`
/// bytes of pages, so that a too-small `/dev/shm` fails here and not with SIGBUS later.
#[cfg(not(miri))]
pub fn create(name: &str, size: u64, mode: u32) -> Result<OwnedFd, Errno> {
    let fd = shm::open(
        name,
        shm::OFlags::CREATE | shm::OFlags::EXCL | shm::OFlags::RDWR,
        Mode::from_raw_mode(mode),
    )?;
    let reserve = || -> Result<(), Errno> {
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
        match rustix::fs::fallocate(&fd, FallocateFlags::empty(), 0, size) {
            Ok(()) => Ok(()),
            // A file system without fallocate: size it, and let the pages come on first touch.
            Err(Errno::OPNOTSUPP) => rustix::fs::ftruncate(&fd, size),
            Err(e) => Err(e),
        }
    };
    if let Err(e) = reserve() {
        let _ = shm::unlink(name);
        return Err(e);
    }
    Ok(fd)
}

/// Opens an existing `name` read-write.
#[cfg(not(miri))]
pub fn open(name: &str) -> Result<OwnedFd, Errno> {
    shm::open(name, shm::OFlags::RDWR, Mode::empty())
}

/// Removes `name`; mappings stay valid until unmapped.
#[cfg(not(miri))]
pub fn unlink(name: &str) -> Result<(), Errno> {
    shm::unlink(name)
}

/// The size of the object behind `fd`.
#[cfg(not(miri))]
pub fn size(fd: &OwnedFd) -> Result<u64, Errno> {
    Ok(rustix::fs::fstat(fd)?.st_size as u64)
}

/// Maps `len` bytes of `fd` shared and read-write.
#[cfg(not(miri))]
pub fn map(fd: &OwnedFd, len: usize) -> Result<NonNull<u8>, Errno> {
    // SAFETY: a fresh mapping chosen by the kernel (null hint) aliases no Rust object; the
    // pointer is only used through `Segment`, which unmaps it exactly once.
    let p = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::SHARED,
            fd,
            0,
        )?
    };
    Ok(NonNull::new(p.cast()).expect("mmap returned null"))
}

/// Unmaps what `map` returned.
///
/// # Safety
/// `ptr`/`len` come from one `map` call, and no reference into the mapping outlives this call.
#[cfg(not(miri))]
pub unsafe fn unmap(ptr: NonNull<u8>, len: usize) {
    // SAFETY: forwarded from the caller's contract.
    let _ = unsafe { rustix::mm::munmap(ptr.as_ptr().cast(), len) };
}

/// Sleeps while `*word == expected`, at most `timeout` (forever if `None`). Returns early on a
/// wake, a changed value, a signal or a spurious wake-up: callers re-check their condition.
/// The futex is shared (no private flag): waker and sleeper may be in different processes.
#[cfg(not(miri))]
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|d| rustix::time::Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: d.subsec_nanos() as _,
    });
    let _ = futex::wait(word, futex::Flags::empty(), expected, ts.as_ref());
}

/// Wakes every sleeper on `word`, in any process.
#[cfg(not(miri))]
pub fn futex_wake_all(word: &AtomicU32) {
    let _ = futex::wake(word, futex::Flags::empty(), i32::MAX as u32);
}

/// This process's id.
/// Registers this process as a target of other processes' heavy barriers, once; false if the
/// kernel (before 4.16) or a seccomp filter refuses `membarrier`. A process that is not registered
/// never publishes with plain stores (see `protocol::Notifier`).
#[cfg(not(miri))]
pub fn register_for_heavy_barriers() -> bool {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *REGISTERED.get_or_init(|| {
        use rustix::thread::{MembarrierCommand, membarrier};
        membarrier(MembarrierCommand::RegisterGlobalExpedited).is_ok()
    })
}

/// A full memory barrier on every CPU that runs a thread of a registered process (and on this
/// one); false if the kernel refused it.
#[cfg(not(miri))]
pub fn heavy_barrier() -> bool {
    use rustix::thread::{MembarrierCommand, membarrier};
    membarrier(MembarrierCommand::GlobalExpedited).is_ok()
}

#[cfg(not(miri))]
pub fn pid() -> u32 {
    rustix::process::getpid().as_raw_nonzero().get() as u32
}

/// The start time of process `pid` in clock ticks after boot (field 22 of `/proc/PID/stat`),
/// and whether it is a zombie. `None` if there is no such process.
#[cfg(not(miri))]
fn stat(pid: u32) -> Option<(u64, bool)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain anything: split after it.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((start, state == "Z" || state == "X"))
}

/// The start time of process `pid` (0 if unknown).
pub fn start_time(pid: u32) -> u64 {
    stat(pid).map_or(0, |(t, _)| t)
}

/// Whether process `pid`, started at `start_time` (0: unknown), is alive: it exists, is not a
/// zombie, and (when known) started at that time, so a reused pid does not count.
pub fn alive(pid: u32, start_time: u64) -> bool {
    match stat(pid) {
        None => false,
        Some((_, true)) => false,
        Some((t, false)) => start_time == 0 || t == start_time,
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds: one clock for every process of the machine.
#[cfg(not(miri))]
pub fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Maps an OS error on `name` to ours.
pub fn error(e: Errno, op: &'static str, name: &str) -> crate::Error {
    use crate::Error;
    let name = name.to_owned();
    match e {
        Errno::NOENT => Error::NotFound { name },
        Errno::EXIST => Error::AlreadyExists {
            name,
            creator_pid: None,
        },
        Errno::ACCESS | Errno::PERM => Error::PermissionDenied { name, op },
        Errno::NOSPC | Errno::NOMEM | Errno::FBIG => Error::NoSpace { name, needed: 0 },
        Errno::NAMETOOLONG | Errno::INVAL if op != "map" => Error::InvalidName {
            name,
            reason: "rejected by the operating system",
        },
        e => Error::Io {
            op,
            name,
            source: io::Error::from(e),
        },
    }
}

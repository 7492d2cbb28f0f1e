//! Everything the operating system does for us, behind one small module: named shared memory,
//! mappings, shared futexes, process identity and the clock. Linux only; a macOS port replaces
//! this file (`os_sync_wait_on_address` with the shared flag for the futex, `proc_pidinfo` for
//! start times).

#![cfg_attr(miri, allow(unused_imports, dead_code))]

use std::io;
use std::os::fd::OwnedFd;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use std::cell::Cell;

use rustix::fs::{FallocateFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use rustix::mm::{MapFlags, ProtFlags};
use rustix::shm;
use rustix::thread::futex;

// Under Miri, which has no shared memory, futex or `membarrier`, the same functions over heap
// memory (`sys/miri.rs`); the imports and helpers of the real ones then go unused.
#[cfg(miri)]
mod miri;
#[cfg(all(miri, feature = "async"))]
pub use miri::futex_wait_any;
#[cfg(miri)]
use miri::stat;
#[cfg(miri)]
pub use miri::{
    Handle, coarse_now_ns, create, futex_wait, futex_wake_all, heavy_barrier, identity, map,
    name_identity, now_ns, open, open_to_inspect, open_waiting, pid, register_for_heavy_barriers,
    regular_file_size, size, try_lock, unlink, unlock, unmap,
};

/// What names an open shared-memory object (and keeps a mapping of it valid).
#[cfg(not(miri))]
pub type Handle = OwnedFd;

/// Where Linux keeps named shared memory (what glibc's `shm_open` opens).
pub const SHM_DIR: &str = "/dev/shm";

thread_local! {
    /// Futex system calls made by this thread (waits and wakes), for tests and diagnostics:
    /// touched only next to a system call, never on the fast path. Per thread, so that
    /// parallel tests do not disturb each other's counts.
    static FUTEX_CALLS: Cell<u64> = const { Cell::new(0) };
}

fn count_futex_call() {
    FUTEX_CALLS.with(|c| c.set(c.get() + 1));
}

/// How many futex system calls this thread has made.
pub fn futex_calls() -> u64 {
    FUTEX_CALLS.with(Cell::get)
}

/// Opens `/dev/shm/<name>` with `flags`, never following a symbolic link (`O_NOFOLLOW`, as
/// glibc's `shm_open` does; rustix's does not), close-on-exec. `name` is validated (`/` then
/// one component) by the caller.
#[cfg(not(miri))]
fn shm_path_open(name: &str, flags: OFlags, mode: Mode) -> Result<OwnedFd, Errno> {
    let path = format!("{SHM_DIR}{name}");
    rustix::fs::open(path, flags | OFlags::NOFOLLOW | OFlags::CLOEXEC, mode)
}

/// Creates `name` exclusively with exactly `mode` (the umask does not apply) and reserves `size`
/// bytes of pages, so that a too-small `/dev/shm` fails here and not with SIGBUS later.
#[cfg(not(miri))]
pub fn create(name: &str, size: u64, mode: u32) -> Result<OwnedFd, Errno> {
    let fd = shm_path_open(
        name,
        OFlags::CREATE | OFlags::EXCL | OFlags::RDWR,
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

/// Opens an existing `name` read-write, or read-only; a symbolic link is refused (`ELOOP`).
#[cfg(not(miri))]
pub fn open(name: &str, read_only: bool) -> Result<OwnedFd, Errno> {
    let access = if read_only {
        OFlags::RDONLY
    } else {
        OFlags::RDWR
    };
    shm_path_open(name, access, Mode::empty())
}

/// Opens an existing `name` read-only to inspect it, as [`open`] does, and without blocking on
/// a FIFO planted under the name (`O_NONBLOCK`, which changes nothing for a shared-memory
/// object).
#[cfg(not(miri))]
pub fn open_to_inspect(name: &str) -> Result<OwnedFd, Errno> {
    shm_path_open(name, OFlags::RDONLY | OFlags::NONBLOCK, Mode::empty())
}

/// The size of the object behind `fd` if it is a regular file, as every shared-memory object
/// is; `None` for anything else planted under a name (a FIFO, a device, a directory).
#[cfg(not(miri))]
pub fn regular_file_size(fd: &OwnedFd) -> Result<Option<u64>, Errno> {
    let st = rustix::fs::fstat(fd)?;
    let regular = FileType::from_raw_mode(st.st_mode) == FileType::RegularFile;
    Ok(regular.then_some(st.st_size as u64))
}

/// [`open`], waiting up to `timeout` for `name` to be created if it does not exist yet.
///
/// The wait is an inotify watch on `/dev/shm` (`IN_CREATE | IN_MOVED_TO`): the thread sleeps in
/// `poll` until some name appears there, then tries again, so a waiting consumer costs nothing
/// and attaches as soon as its producer creates the ring. The watch is added before the first
/// retry, so a creation between that and the `poll` is not missed. Where inotify is unavailable
/// (its per-user limits, a seccomp filter) it falls back to sleeps of 1 ms doubling to 50 ms.
#[cfg(not(miri))]
pub fn open_waiting(name: &str, read_only: bool, timeout: Duration) -> Result<OwnedFd, Errno> {
    use rustix::fs::inotify;
    let first = open(name, read_only);
    if timeout.is_zero() || !matches!(first, Err(Errno::NOENT)) {
        return first;
    }
    let deadline = std::time::Instant::now().checked_add(timeout);
    let watch = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)
        .ok()
        .filter(|fd| {
            inotify::add_watch(
                fd,
                SHM_DIR,
                inotify::WatchFlags::CREATE | inotify::WatchFlags::MOVED_TO,
            )
            .is_ok()
        });
    let mut backoff = Duration::from_millis(1);
    let mut events = [0u8; 4096];
    loop {
        match open(name, read_only) {
            Err(Errno::NOENT) => {}
            other => return other,
        }
        let left = match deadline {
            Some(d) => d.saturating_duration_since(std::time::Instant::now()),
            None => Duration::from_secs(3600),
        };
        if left.is_zero() {
            return Err(Errno::NOENT);
        }
        match &watch {
            Some(fd) => {
                let mut fds = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
                let t = rustix::time::Timespec {
                    tv_sec: left.as_secs().min(i64::MAX as u64) as i64,
                    tv_nsec: left.subsec_nanos() as _,
                };
                let _ = rustix::event::poll(&mut fds, Some(&t));
                // Any name created: drain the events and look again.
                while matches!(rustix::io::read(fd, &mut events), Ok(n) if n > 0) {}
            }
            None => {
                std::thread::sleep(backoff.min(left));
                backoff = (backoff * 2).min(Duration::from_millis(50));
            }
        }
    }
}

/// The identity (device, inode) of the object behind `fd`: tells whether a name still refers
/// to the object we mapped.
#[cfg(not(miri))]
pub fn identity(fd: &OwnedFd) -> Result<(u64, u64), Errno> {
    let st = rustix::fs::fstat(fd)?;
    Ok((st.st_dev, st.st_ino))
}

/// The identity of the object `name` refers to now, without following a symbolic link.
#[cfg(not(miri))]
pub fn name_identity(name: &str) -> Result<(u64, u64), Errno> {
    let st = rustix::fs::lstat(format!("{SHM_DIR}{name}"))?;
    Ok((st.st_dev, st.st_ino))
}

/// Takes the advisory lock (`flock`) of the object behind `fd`, shared or exclusive, without
/// blocking: false if another open of it holds a conflicting one. Held until [`unlock`] or the
/// descriptor's close (the kernel drops it when a process dies).
#[cfg(not(miri))]
pub fn try_lock(fd: &OwnedFd, exclusive: bool) -> bool {
    use rustix::fs::FlockOperation::*;
    let op = if exclusive {
        NonBlockingLockExclusive
    } else {
        NonBlockingLockShared
    };
    rustix::fs::flock(fd, op).is_ok()
}

/// Drops the lock of [`try_lock`].
#[cfg(not(miri))]
pub fn unlock(fd: &OwnedFd) {
    let _ = rustix::fs::flock(fd, rustix::fs::FlockOperation::Unlock);
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

/// Maps `len` bytes of `fd` shared and read-write (or read-only: `PROT_READ`, for a descriptor
/// opened read-only).
#[cfg(not(miri))]
pub fn map(fd: &OwnedFd, len: usize, read_only: bool) -> Result<NonNull<u8>, Errno> {
    let prot = if read_only {
        ProtFlags::READ
    } else {
        ProtFlags::READ | ProtFlags::WRITE
    };
    // SAFETY: a fresh mapping chosen by the kernel (null hint) aliases no Rust object; the
    // pointer is only used through `Segment`, which unmaps it exactly once.
    let p = unsafe { rustix::mm::mmap(std::ptr::null_mut(), len, prot, MapFlags::SHARED, fd, 0)? };
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
    count_futex_call();
    let _ = futex::wait(word, futex::Flags::empty(), expected, ts.as_ref());
}

/// Wakes every sleeper on `word`, in any process.
#[cfg(not(miri))]
pub fn futex_wake_all(word: &AtomicU32) {
    count_futex_call();
    let _ = futex::wake(word, futex::Flags::empty(), i32::MAX as u32);
}

/// Most words [`futex_wait_any`] sleeps on at once (the kernel's `FUTEX_WAITV_MAX`).
#[cfg(feature = "async")]
pub const WAIT_ANY_MAX: usize = 128;

/// Sleeps until one of `words` (each a futex word and the value to sleep while it holds) is
/// woken or holds another value, or until `CLOCK_MONOTONIC` reaches `until_ns` (`None`: no
/// limit). May return early (a signal, a word that changed before the call): callers re-check.
/// `Err(NOSYS)` where the kernel has no `futex_waitv` (before Linux 5.16, or a seccomp filter
/// refusing it). The words are addresses only: the kernel reads them, no reference is made.
#[cfg(all(feature = "async", not(miri)))]
pub fn futex_wait_any(
    words: &[(*const AtomicU32, u32)],
    until_ns: Option<u64>,
) -> Result<(), Errno> {
    assert!(
        words.len() <= WAIT_ANY_MAX,
        "futex_waitv takes at most 128 words"
    );
    let mut waits = [futex::Wait::new(); WAIT_ANY_MAX];
    for (w, &(word, expected)) in waits.iter_mut().zip(words) {
        w.val = u64::from(expected);
        w.uaddr = futex::WaitPtr::new(word.cast_mut().cast());
        w.flags = futex::WaitFlags::SIZE_U32;
    }
    let ts = until_ns.map(|ns| rustix::time::Timespec {
        tv_sec: (ns / 1_000_000_000).min(i64::MAX as u64) as i64,
        tv_nsec: (ns % 1_000_000_000) as _,
    });
    count_futex_call();
    match futex::waitv(
        &waits[..words.len()],
        futex::WaitvFlags::empty(),
        ts.as_ref(),
        rustix::time::ClockId::Monotonic,
    ) {
        Err(Errno::NOSYS) => Err(Errno::NOSYS),
        _ => Ok(()),
    }
}

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

/// This process's id.
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

/// The name of process `pid`'s program (`/proc/PID/comm`: at most 15 bytes, e.g.
/// `ndring-bridge`), for inspection; `None` if there is no such process.
#[cfg(not(miri))]
pub fn program(pid: u32) -> Option<String> {
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(name.trim_end_matches('\n').to_owned())
}

/// Under Miri only this process exists, and it has no `/proc`.
#[cfg(miri)]
pub fn program(_pid: u32) -> Option<String> {
    None
}

/// The start time of process `pid` (0 if unknown). This process's own is read from `/proc`
/// once (8 system calls) and kept, keyed by pid so that a forked child reads its own: every
/// registration asks for it.
pub fn start_time(pid: u32) -> u64 {
    use std::sync::atomic::{
        AtomicU32, AtomicU64,
        Ordering::{Acquire, Release},
    };
    // `OWN_START` is written before `OWN_PID` publishes it; 0 in `OWN_PID`: nothing kept yet.
    static OWN_PID: AtomicU32 = AtomicU32::new(0);
    static OWN_START: AtomicU64 = AtomicU64::new(0);
    let own = pid == self::pid();
    if own && OWN_PID.load(Acquire) == pid {
        return OWN_START.load(Acquire);
    }
    let t = stat(pid).map_or(0, |(t, _)| t);
    if own && t != 0 {
        OWN_START.store(t, Release);
        OWN_PID.store(pid, Release);
    }
    t
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

/// `CLOCK_MONOTONIC_COARSE` in nanoseconds: the time of the last timer tick (a few ms old at
/// most). Read from the vDSO's data page alone, with no `rdtsc` and never a system call (fine
/// clocks fall back to one where the clocksource has no vDSO support), so that rate limits
/// checked on every poll of an empty ring cost a few loads.
#[cfg(not(miri))]
pub fn coarse_now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Maps an OS error on `name` to ours.
pub fn error(e: Errno, op: &'static str, name: &str) -> crate::error::Error {
    use crate::error::Error;
    let name = name.to_owned();
    match e {
        Errno::NOENT => Error::NotFound { name },
        Errno::EXIST => Error::AlreadyExists {
            name,
            creator_pid: None,
        },
        Errno::ACCESS | Errno::PERM => Error::PermissionDenied { name, op },
        // O_NOFOLLOW met a symbolic link: never follow one planted in /dev/shm.
        Errno::LOOP => Error::SymbolicLink { name },
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

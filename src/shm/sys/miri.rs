//! What `sys` does, for Miri, which has no shared memory, futex or `membarrier`: named objects
//! are zeroed heap allocations in a process-wide table, so that the whole typed layer (handles,
//! views, metadata, copy-out, peer table) runs under Miri with threads. Compiled only under
//! `cfg(miri)`; the functions mirror the real ones in `sys.rs`.

use std::collections::HashMap;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rustix::io::Errno;

/// A zeroed, page-aligned allocation standing in for a shared-memory object.
#[derive(Debug)]
struct Object {
    base: NonNull<u8>,
    layout: std::alloc::Layout,
}

// SAFETY: the allocation is only reached through raw pointers by `Segment`, whose users follow
// the ring protocols (atomics, or memory the protocol grants to one side), as over a real mapping.
unsafe impl Send for Object {}
// SAFETY: as above.
unsafe impl Sync for Object {}

impl Drop for Object {
    fn drop(&mut self) {
        // SAFETY: allocated in `create` with this layout, freed once (the last `Arc` is gone, so
        // no `Handle`, and hence no `Segment` mapping it, remains).
        unsafe { std::alloc::dealloc(self.base.as_ptr(), self.layout) };
    }
}

/// An open object: what a file descriptor is in `sys.rs`. A mapping stays valid while the handle
/// that made it lives (`Segment` keeps it).
#[derive(Debug)]
pub struct Handle(Arc<Object>);

fn names() -> std::sync::MutexGuard<'static, HashMap<String, Arc<Object>>> {
    static NAMES: OnceLock<Mutex<HashMap<String, Arc<Object>>>> = OnceLock::new();
    NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

pub fn create(name: &str, size: u64, _mode: u32) -> Result<Handle, Errno> {
    let mut names = names();
    if names.contains_key(name) {
        return Err(Errno::EXIST);
    }
    let size = usize::try_from(size).map_err(|_| Errno::NOMEM)?.max(1);
    let layout = std::alloc::Layout::from_size_align(size, 4096).map_err(|_| Errno::NOMEM)?;
    // SAFETY: `layout` has a non-zero size.
    let base = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) }).ok_or(Errno::NOMEM)?;
    let object = Arc::new(Object { base, layout });
    names.insert(name.to_owned(), object.clone());
    Ok(Handle(object))
}

pub fn open(name: &str, _read_only: bool) -> Result<Handle, Errno> {
    names().get(name).cloned().map(Handle).ok_or(Errno::NOENT)
}

/// [`open`] read-only (there are no FIFOs here).
pub fn open_to_inspect(name: &str) -> Result<Handle, Errno> {
    open(name, true)
}

/// [`size`]: every object here is a regular one.
pub fn regular_file_size(h: &Handle) -> Result<Option<u64>, Errno> {
    size(h).map(Some)
}

/// [`open`], polling until `name` exists or `timeout` passes.
pub fn open_waiting(name: &str, read_only: bool, timeout: Duration) -> Result<Handle, Errno> {
    let deadline = Instant::now().checked_add(timeout);
    loop {
        match open(name, read_only) {
            Err(Errno::NOENT) if deadline.is_some_and(|d| Instant::now() < d) => {
                std::thread::yield_now()
            }
            other => return other,
        }
    }
}

/// The object's identity: its address, unique while it lives.
pub fn identity(h: &Handle) -> Result<(u64, u64), Errno> {
    Ok((0, h.0.base.as_ptr() as usize as u64))
}

/// The identity of the object `name` refers to now.
pub fn name_identity(name: &str) -> Result<(u64, u64), Errno> {
    names()
        .get(name)
        .map(|o| (0, o.base.as_ptr() as usize as u64))
        .ok_or(Errno::NOENT)
}

pub fn unlink(name: &str) -> Result<(), Errno> {
    names().remove(name).map(drop).ok_or(Errno::NOENT)
}

pub fn size(h: &Handle) -> Result<u64, Errno> {
    Ok(h.0.layout.size() as u64)
}

pub fn map(h: &Handle, len: usize, _read_only: bool) -> Result<NonNull<u8>, Errno> {
    if len > h.0.layout.size() {
        return Err(Errno::INVAL);
    }
    Ok(h.0.base)
}

/// # Safety
/// As `sys::unmap`; nothing to do here (the handle owns the memory).
pub unsafe fn unmap(_ptr: NonNull<u8>, _len: usize) {}

/// A spurious wake-up, which the contract allows: callers re-check their condition.
pub fn futex_wait(_word: &AtomicU32, _expected: u32, timeout: Option<Duration>) {
    super::count_futex_call();
    if timeout.is_some_and(|t| t.is_zero()) {
        return;
    }
    std::thread::yield_now();
}

/// As `futex_wait`: a spurious wake-up.
#[cfg(feature = "async")]
pub fn futex_wait_any(
    _words: &[(*const AtomicU32, u32)],
    _until_ns: Option<u64>,
) -> Result<(), rustix::io::Errno> {
    super::count_futex_call();
    std::thread::yield_now();
    Ok(())
}

pub fn futex_wake_all(_word: &AtomicU32) {
    super::count_futex_call();
}

/// Never: there is no `membarrier`, so SPSC sides stay fenced (loom checks plain mode).
pub fn register_for_heavy_barriers() -> bool {
    false
}

pub fn heavy_barrier() -> bool {
    false
}

pub fn pid() -> u32 {
    std::process::id()
}

/// Only this process exists (started at tick 1).
pub(super) fn stat(pid: u32) -> Option<(u64, bool)> {
    (pid == self::pid()).then_some((1, false))
}

pub fn now_ns() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_nanos() as u64 + 1
}

/// The same clock: Miri's is coarse enough.
pub fn coarse_now_ns() -> u64 {
    now_ns()
}

/// One process: no other open of the object to exclude.
pub fn try_lock(_h: &Handle, _exclusive: bool) -> bool {
    true
}

pub fn unlock(_h: &Handle) {}

//! Arrays that cross a `fork`: a child gets a private snapshot of every ring mapping, never the
//! live shared memory.
//!
//! A child forked while its parent holds a received array (or a claim's array) inherits that
//! array, but not the slot: the parent releases it when it drops its own copy, the producer
//! rewrites it, and the child would read a later item as if it were its own (or, through a
//! claim's array, write into an item a consumer is reading). So when any such array is alive at
//! `fork`, the parent copies every ndring mapping of the process just before the fork (while it
//! still holds its slots, so each held slot is whole), and the child moves those copies over the
//! shared mappings, at the same addresses, before `fork` returns there: its arrays keep the
//! contents they had, and nothing the child writes reaches the ring. The child's handles are
//! refused anyway (`handles::forked`). With no array alive, nothing is copied: forking a pool
//! of workers from a process that merely holds handles costs nothing.
//!
//! The handlers run through `pthread_atfork` (see `pid.rs`), which `os.fork` (and so
//! `multiprocessing`'s fork start method) calls through libc's `fork`. A snapshot is best
//! effort: should the copy fail (no memory), the child keeps the shared mapping, as before.
//!
//! Shared arrays (`ndring.SharedArray`) are meant to stay shared across a fork: a child writes
//! in place through the arrays it inherits from `as_array()`, as with `shared_memory`. Their
//! mappings are copied only while a `read()` or `write()` block's array is alive over them
//! (`GUARDED`): the parent holds that lock, the child does not, so the child's array keeps what
//! it showed at the fork (whole: the parent held the lock) rather than reaching memory that the
//! parent's lock no longer protects once its block ends. The child's handle attaches anew by
//! name (a new mapping, shared).

use std::fs;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};

/// Arrays alive in this process that cover a ring slot: received arrays (their `Lease`) and
/// claims (their `ClaimedSlot`). Changed only with the GIL held (a load and a store, no atomic
/// RMW on the per-item path), read by `prepare`, which runs with the GIL held too (`os.fork`).
static VIEWS: AtomicUsize = AtomicUsize::new(0);

/// The first element of each lock a `read()` / `write()` block holds in this process (the
/// array's payload in this process's mapping), while the block's array is alive. Changed with
/// the GIL held (the lock is never contended); read by `prepare`.
static GUARDED: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// The copies made by `prepare` for the fork under way: (copy, mapping, length) addresses.
/// Filled by `prepare`, then read by `parent` or `child` in the forking thread.
static COPIES: Mutex<Vec<(usize, usize, usize)>> = Mutex::new(Vec::new());

/// An array over a slot was made (GIL held).
#[inline]
pub fn view_made() {
    VIEWS.store(VIEWS.load(Relaxed) + 1, Relaxed);
}

/// An array over a slot is gone (GIL held).
#[inline]
pub fn view_gone() {
    VIEWS.store(VIEWS.load(Relaxed).saturating_sub(1), Relaxed);
}

/// A block's array over a shared array's memory from `ptr` was made (GIL held).
pub fn guard_made(ptr: usize) {
    GUARDED.lock().unwrap_or_else(|e| e.into_inner()).push(ptr);
}

/// That array is gone, its lock released (GIL held).
pub fn guard_gone(ptr: usize) {
    let mut g = GUARDED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(i) = g.iter().position(|&p| p == ptr) {
        g.swap_remove(i);
    }
}

/// Before `fork`, in the parent: copies every ring mapping if any array covers a slot, and
/// every shared array's mapping that a block's array covers.
pub extern "C" fn prepare() {
    let views = VIEWS.load(Relaxed) != 0;
    let guarded = GUARDED.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if !views && guarded.is_empty() {
        return;
    }
    let mut copies = COPIES.lock().unwrap_or_else(|e| e.into_inner());
    copies.clear();
    for (addr, len, array) in ring_mappings() {
        let copy = if array {
            guarded.iter().any(|&p| p >= addr && p < addr + len)
        } else {
            views
        };
        if !copy {
            continue;
        }
        if let Some(copy) = snapshot(addr, len) {
            copies.push((copy, addr, len));
        }
    }
}

/// After `fork`, in the parent: the copies are the child's; ours go.
pub extern "C" fn parent() {
    let mut copies = COPIES.lock().unwrap_or_else(|e| e.into_inner());
    for &(copy, _, len) in copies.iter() {
        // SAFETY: `copy` is a mapping of `len` bytes that `prepare` made and nothing else uses.
        unsafe { libc::munmap(copy as *mut libc::c_void, len) };
    }
    copies.clear();
}

/// After `fork`, in the child: each copy replaces its shared mapping, at the same address.
pub extern "C" fn child() {
    // The forking thread released the lock after `prepare`; no other thread exists here.
    let Ok(mut copies) = COPIES.try_lock() else {
        return;
    };
    for &(copy, addr, len) in copies.iter() {
        // SAFETY: `copy` and `addr` are page-aligned mappings of `len` bytes each (`prepare`);
        // moving the copy over `addr` replaces the shared pages with private ones holding what
        // they held at the fork, so every pointer into them stays valid.
        unsafe {
            libc::mremap(
                copy as *mut libc::c_void,
                len,
                len,
                libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                addr as *mut libc::c_void,
            )
        };
    }
    copies.clear();
}

/// The shared mappings of this process that hold an ndring segment: `/dev/shm` files mapped
/// from offset 0 whose first word is ndring's magic; with whether it is a shared array.
fn ring_mappings() -> Vec<(usize, usize, bool)> {
    let Ok(maps) = fs::read_to_string("/proc/self/maps") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms), Some(offset)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let path = line.split_whitespace().nth(5).unwrap_or("");
        if !path.starts_with("/dev/shm/") || !perms.starts_with('r') || !perms.ends_with('s') {
            continue;
        }
        if !offset.trim_start_matches('0').is_empty() {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (
            usize::from_str_radix(start, 16),
            usize::from_str_radix(end, 16),
        ) else {
            continue;
        };
        if end <= start {
            continue;
        }
        // SAFETY: `start` is the page-aligned start of a readable mapping of this process;
        // another process may write the word, hence an atomic load.
        let magic = unsafe { (*(start as *const AtomicU64)).load(Relaxed) };
        if magic == ndring::layout::MAGIC {
            let at = start + std::mem::offset_of!(ndring::layout::Fixed, kind);
            // SAFETY: the header's `kind` word, 4-aligned inside the mapping's first page; read
            // atomically as the magic is (it is written once, before the segment is ready).
            let kind = unsafe { (*(at as *const AtomicU32)).load(Relaxed) };
            found.push((start, end - start, kind == ndring::RingKind::Array as u32));
        }
    }
    found
}

/// A private anonymous mapping holding a copy of the `len` bytes at `addr`, or `None`.
fn snapshot(addr: usize, len: usize) -> Option<usize> {
    // SAFETY: asks for a fresh private mapping; nothing is replaced.
    let copy = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if copy == libc::MAP_FAILED {
        return None;
    }
    let words = len / 8;
    let src = addr as *const AtomicU64;
    let dst = copy.cast::<u64>();
    for i in 0..words {
        // SAFETY: both mappings are `len` bytes long, page-aligned (so `i < len / 8` is in
        // bounds and aligned); other processes may write the source, hence atomic loads; the
        // copy is ours alone.
        unsafe { dst.add(i).write((*src.add(i)).load(Relaxed)) };
    }
    Some(copy as usize)
}

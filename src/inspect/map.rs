//! A read-only mapping of a segment: opened `O_RDONLY | O_NOFOLLOW`, mapped `PROT_READ`, so that
//! a ring can be inspected by anyone who may read it, without write access and without any way
//! to disturb it. The only accesses made through it are plain loads and atomic loads of at most
//! 8 bytes (which Rust allows on read-only memory).
//!
//! Linux: the object behind `shm_open("/NAME")` is the file `/dev/shm/NAME`.

use std::os::fd::OwnedFd;
use std::ptr::NonNull;

use rustix::fs::{FileType, Mode, OFlags};
use rustix::mm::{MapFlags, ProtFlags};

use crate::error::{Error, Result};
use crate::segment::validate_name;
use crate::sys;

/// Where the kernel keeps POSIX shared-memory objects.
pub const SHM_DIR: &str = "/dev/shm";

/// `len` bytes of a segment mapped read-only.
#[derive(Debug)]
pub(crate) struct ReadOnlyMap {
    /// Start of the mapping; `len > 0` bytes, page-aligned, `PROT_READ`.
    pub base: NonNull<u8>,
    pub len: usize,
    /// The descriptor the mapping came from: its identity and advisory lock are the object's.
    pub fd: OwnedFd,
}

/// Opens `name` read-only (never following a symlink, never blocking on a FIFO) and returns the
/// descriptor and the object's size. Anything but a regular file is `Corrupt`.
pub(crate) fn open(name: &str) -> Result<(OwnedFd, u64)> {
    validate_name(name)?;
    let path = format!("{SHM_DIR}{name}");
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let fd = rustix::fs::open(&path, flags, Mode::empty()).map_err(|e| match e {
        rustix::io::Errno::LOOP => Error::Corrupt {
            name: name.into(),
            reason: "it is a symbolic link, not a segment".into(),
        },
        e => sys::error(e, "open", name),
    })?;
    let st = rustix::fs::fstat(&fd).map_err(|e| sys::error(e, "stat", name))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(Error::Corrupt {
            name: name.into(),
            reason: "it is not a regular file".into(),
        });
    }
    Ok((fd, st.st_size as u64))
}

/// Maps the first `len` (> 0) bytes of `fd` shared and read-only.
pub(crate) fn map(fd: OwnedFd, len: usize, name: &str) -> Result<ReadOnlyMap> {
    // SAFETY: a fresh mapping chosen by the kernel (null hint) aliases no Rust object; it is
    // unmapped exactly once, by `Drop`.
    let p = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            len,
            ProtFlags::READ,
            MapFlags::SHARED,
            &fd,
            0,
        )
    }
    .map_err(|e| sys::error(e, "map", name))?;
    Ok(ReadOnlyMap {
        base: NonNull::new(p.cast()).expect("mmap returned null"),
        len,
        fd,
    })
}

impl ReadOnlyMap {
    /// Copies `N` bytes at `offset` with volatile reads (the bytes are shared and hostile: each is
    /// read once, into our own copy).
    pub fn copy<const N: usize>(&self, offset: usize) -> [u8; N] {
        assert!(offset.checked_add(N).is_some_and(|end| end <= self.len));
        let mut out = [0u8; N];
        for (i, b) in out.iter_mut().enumerate() {
            // SAFETY: offset + i < offset + N <= len: inside the mapping; a byte read needs no
            // alignment; volatile, since another process may write these bytes.
            *b = unsafe { self.base.as_ptr().add(offset + i).read_volatile() };
        }
        out
    }
}

impl Drop for ReadOnlyMap {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` come from one `mmap`; every reference into the mapping borrows
        // the `Inspector` that owns this map, so none outlives it.
        let _ = unsafe { rustix::mm::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

// SAFETY: the mapping is shared, read-only memory; it is only read, through volatile and atomic
// loads, from any thread.
unsafe impl Send for ReadOnlyMap {}
// SAFETY: as above.
unsafe impl Sync for ReadOnlyMap {}

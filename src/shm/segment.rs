//! A named POSIX shared-memory segment holding one ring: creation, attachment, validation.

use std::time::{Duration, Instant};

use crate::config::Config;
use crate::element::DType;
use crate::error::{Error, Result};
use crate::header::{Control, PeerEntry, STATE_READY, SlotCtrl};
use crate::layout::{self, CONTROL_SIZE, FIXED_SIZE, Layout, RingKind};
use crate::protocol::{self, RingMemory};
use crate::shm::mapping::{Mapping, RawMap};
use crate::shm::sys;
use crate::sync::{AtomicU64, Ordering::*};

/// Longest portable name, leading `/` included (macOS's `PSHMNAMLEN`).
pub const MAX_NAME_LEN: usize = 31;

/// Checks that `name` is a portable shared-memory name: `/` then 1 to 30 bytes, none of them `/`
/// or NUL, and not `.` or `..`.
///
/// ```
/// assert!(ndring::validate_name("/cam0").is_ok());
/// assert!(ndring::validate_name("cam0").is_err());
/// assert!(ndring::validate_name("/a/b").is_err());
/// assert!(ndring::validate_name("/this-name-is-far-too-long-for-macos").is_err());
/// ```
pub fn validate_name(name: &str) -> Result<()> {
    let reason = if !name.starts_with('/') {
        Some("it must start with '/'")
    } else if name.len() < 2 {
        Some("it is empty after the '/'")
    } else if name.len() > MAX_NAME_LEN {
        Some("it is longer than 31 bytes (the portable limit, leading '/' included)")
    } else if name[1..].contains('/') {
        Some("it may contain no '/' after the first")
    } else if name.contains('\0') {
        Some("it contains a NUL byte")
    } else if name == "/." || name == "/.." {
        Some("'.' and '..' are not names")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Removes the segment `name`. Processes attached to it keep their mapping; new opens fail.
///
/// ```
/// # use ndring::*;
/// let name = format!("/ndr-doc-rm-{}", std::process::id());
/// let p = Producer::<u8, ndarray::Ix1>::create(&name, 8, &Config::spsc().keep(true))?;
/// drop(p);
/// ndring::remove(&name)?;
/// assert!(matches!(ndring::remove(&name), Err(Error::NotFound { .. })));
/// # Ok::<(), Error>(())
/// ```
pub fn remove(name: &str) -> Result<()> {
    validate_name(name)?;
    sys::unlink(name).map_err(|e| sys::error(e, "remove", name))
}

/// Whether `name` still refers to the object behind `fd` (not removed, nor replaced by another
/// ring).
pub(crate) fn names_object(name: &str, fd: &sys::Handle) -> bool {
    matches!(
        (sys::identity(fd), sys::name_identity(name)),
        (Ok(a), Ok(b)) if a == b
    )
}

/// Runs `f` while holding `fd`'s advisory lock; `None` if it is still held by another after 1 s
/// (see [`Segment::locked`]).
pub(crate) fn locked<R>(fd: &sys::Handle, exclusive: bool, f: impl FnOnce() -> R) -> Option<R> {
    let deadline = Instant::now() + Duration::from_secs(1);
    while !sys::try_lock(fd, exclusive) {
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let r = f();
    sys::unlock(fd);
    Some(r)
}

/// What [`remove_name_unless_used`] found under the lock.
pub(crate) enum NameRemoval<T> {
    /// The name is gone (processes that have the segment mapped keep it).
    Removed,
    /// Still used (what `used` said); nothing was removed.
    InUse(T),
    /// The name refers to another object now; nothing was removed.
    Replaced,
}

/// Removes `name` unless `used` finds the segment behind `fd` still used: the one way a name is
/// removed from under the processes that may be attaching to it (the last handle out, a create
/// replacing a ring whose stream is over or an unfinished one, `ndring rm`). Decided under
/// `fd`'s exclusive lock, the lock under which an opener confirms its registration (shared), so
/// that an opener either shows in `used` or finds the name gone; and only if the name still
/// refers to `fd`'s object, so that a ring that replaced it is never removed by its name.
/// `None` if the lock was held by another for over a second; `Some(Err)`: the unlink failed.
pub(crate) fn remove_name_unless_used<T>(
    name: &str,
    fd: &sys::Handle,
    used: impl FnOnce() -> Option<T>,
) -> Option<std::result::Result<NameRemoval<T>, rustix::io::Errno>> {
    locked(fd, true, || {
        if let Some(t) = used() {
            return Ok(NameRemoval::InUse(t));
        }
        if !names_object(name, fd) {
            return Ok(NameRemoval::Replaced);
        }
        sys::unlink(name).map(|()| NameRemoval::Removed)
    })
}

/// A mapped ring segment, validated: every offset below lies inside the mapping.
///
/// Obtained with [`Segment::open`] to inspect a ring without knowing its type (like Python's
/// SharedArray, the shape and element type are stored in the segment), then turned into a typed
/// handle with [`crate::Producer::from_segment`] and friends.
#[derive(Debug)]
pub struct Segment {
    name: String,
    /// The mapping with its validated layout. Mapped `PROT_READ` from a read-only descriptor
    /// for inspection: then nothing may store to it (the typed handles refuse such a segment).
    map: Mapping,
    creator_pid: u32,
    creator_start_time: u64,
    fd: sys::Handle,
    /// A handle of this process removed the name (the last one out): process-local, so that a
    /// binding keeping the mapping past its handles learns it without a system call.
    removed_here: std::sync::atomic::AtomicBool,
}

impl Segment {
    /// Lays a new ring out in `fd`, the object its creator has just made under `name`
    /// (exclusively, `layout.total_size` bytes): maps it, writes the fixed header and
    /// initialises the shared words. Not ready until [`Segment::mark_ready`]; on failure the
    /// name is removed again.
    pub(crate) fn lay_out(
        name: &str,
        fd: sys::Handle,
        layout: Layout,
        config: &Config,
    ) -> Result<Segment> {
        let raw = match RawMap::new(&fd, layout.total_size, false) {
            Ok(raw) => raw,
            Err(e) => {
                let _ = sys::unlink(name);
                return Err(sys::error(e, "map", name));
            }
        };
        let pid = sys::pid();
        let start = sys::start_time(pid);
        let fixed = layout.encode(pid, start);
        raw.write_fixed(fixed);
        let seg = Segment {
            name: name.to_owned(),
            map: raw.checked(layout),
            creator_pid: pid,
            creator_start_time: start,
            fd,
            removed_here: Default::default(),
        };
        protocol::init(&seg, seg.kind() == RingKind::Mpmc);
        seg.control()
            .lifecycle
            .keep
            .store(config.keep as u32, Relaxed);
        Ok(seg)
    }

    /// Marks a ring laid out by [`Segment::lay_out`] ready, last and with Release: everything
    /// written before (the creator's peer entry included) is visible to whoever acquires
    /// READY. Then drops the shared lock its creator held since the create, if `locked`.
    pub(crate) fn mark_ready(&self, locked: bool) {
        self.control().state.store(STATE_READY, Release);
        if locked {
            sys::unlock(&self.fd);
        }
    }

    /// The creating process's start time (clock ticks after boot, `/proc/PID/stat` field 22;
    /// 0 if unknown).
    pub fn creator_start_time(&self) -> u64 {
        self.creator_start_time
    }

    /// Attaches to the ring `name`, whatever its type, shape and kind: waits up to
    /// `ready_timeout` for its creator to finish, then validates the header against the
    /// mapping's real size.
    ///
    /// ```
    /// # use ndring::*;
    /// let name = format!("/ndr-doc-seg-{}", std::process::id());
    /// let _p = Producer::<f32, ndarray::Ix2>::create(&name, (480, 640), &Config::mpmc())?;
    /// let seg = Segment::open(&name, std::time::Duration::from_secs(1))?;
    /// assert_eq!(seg.shape(), &[480, 640]);
    /// assert_eq!(seg.dtype(), DType::F32);
    /// assert_eq!(seg.kind(), RingKind::Mpmc);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn open(name: &str, ready_timeout: Duration) -> Result<Segment> {
        Segment::open_mode(name, Duration::ZERO, ready_timeout, false)
    }

    /// Attaches to the ring `name` with `options`: waits up to
    /// [`wait_for_creator`](crate::OpenOptions::wait_for_creator) for the name to appear (for a
    /// consumer started before its producer), then up to
    /// [`ready_timeout`](crate::OpenOptions::ready_timeout) for its creator to finish.
    ///
    /// ```
    /// # use ndring::*;
    /// # use std::time::Duration;
    /// let name = format!("/ndr-doc-segwait-{}", std::process::id());
    /// let creator = {
    ///     let name = name.clone();
    ///     std::thread::spawn(move || {
    ///         std::thread::sleep(Duration::from_millis(50));
    ///         Producer::<u8, ndarray::Ix1>::create(&name, 4, &Config::spsc())
    ///     })
    /// };
    /// let seg = Segment::open_with(&name, &OpenOptions::default().wait_for_creator(Duration::from_secs(10)))?;
    /// assert_eq!(seg.shape(), &[4]);
    /// let _tx = creator.join().unwrap()?;
    /// # Ok::<(), Error>(())
    /// ```
    pub fn open_with(name: &str, options: &crate::config::OpenOptions) -> Result<Segment> {
        Segment::open_mode(name, options.wait, options.ready_timeout, false)
    }

    /// Attaches to the ring `name` read-only, for inspection: opened `O_RDONLY` and mapped
    /// `PROT_READ`, so read permission on the segment is enough (a ring created with
    /// [`crate::Config::mode`] `0o644` can be inspected by any user). Shape, element type,
    /// [`Segment::stats`], [`Segment::peers`], [`Segment::positions`] and [`Segment::sleepers`]
    /// work; the typed handles refuse it ([`Error::ReadOnly`]). Waits up to 2 s for a creator
    /// that is still initialising the segment.
    ///
    /// ```
    /// # use ndring::*;
    /// let name = format!("/ndr-doc-ro-{}", std::process::id());
    /// let _p = Producer::<u16, ndarray::Ix2>::create(&name, (3, 4), &Config::spsc().mode(0o644))?;
    /// let seg = Segment::open_read_only(&name)?;
    /// assert!(seg.is_read_only());
    /// assert_eq!((seg.dtype(), seg.shape()), (DType::U16, &[3, 4][..]));
    /// assert_eq!(seg.peers()[0].role, Role::Producer);
    /// assert!(matches!(Consumer::<u16, ndarray::Ix2>::from_segment(seg), Err(Error::ReadOnly { .. })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn open_read_only(name: &str) -> Result<Segment> {
        Segment::open_mode(name, Duration::ZERO, Duration::from_secs(2), true)
    }

    fn open_mode(
        name: &str,
        wait: Duration,
        ready_timeout: Duration,
        read_only: bool,
    ) -> Result<Segment> {
        validate_name(name)?;
        let fd =
            sys::open_waiting(name, read_only, wait).map_err(|e| sys::error(e, "open", name))?;
        let start = Instant::now();
        let not_ready = || Error::NotReady {
            name: name.into(),
            waited: ready_timeout,
        };
        // A creator sizes the file in one step (fallocate), so 0 means "in progress".
        let size = loop {
            let size = sys::size(&fd).map_err(|e| sys::error(e, "stat", name))?;
            if size != 0 {
                break size;
            }
            if start.elapsed() >= ready_timeout {
                return Err(not_ready());
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let corrupt = |reason: String| Error::Corrupt {
            name: name.into(),
            reason,
        };
        let min = (FIXED_SIZE + CONTROL_SIZE) as u64;
        if size < min {
            return Err(corrupt(format!(
                "the segment is {size} bytes, smaller than the {min}-byte header"
            )));
        }
        let len = usize::try_from(size)
            .ok()
            .filter(|&l| l <= isize::MAX as usize)
            .ok_or_else(|| corrupt(format!("size {size} does not fit the address space")))?;
        let raw = RawMap::new(&fd, len, read_only).map_err(|e| sys::error(e, "map", name))?;
        while !raw.ready() {
            let magic = raw.magic();
            // A creator writes the magic before anything else: 0 means "in progress", anything
            // else but ours means the segment is not ndring's, and waiting would not help.
            if magic != 0 && magic != layout::MAGIC {
                return Err(Error::NotNdring {
                    name: name.into(),
                    expected: layout::MAGIC,
                    found: magic,
                });
            }
            if start.elapsed() >= ready_timeout {
                return Err(not_ready());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Segment::from_ready(name, fd, raw, size)
    }

    /// The segment mapped in `raw` from `fd` (`size` bytes), once its creator made it ready:
    /// its header validated against that size. The one place a mapping becomes a `Segment`,
    /// for handles and inspectors alike.
    pub(crate) fn from_ready(
        name: &str,
        fd: sys::Handle,
        raw: RawMap,
        size: u64,
    ) -> Result<Segment> {
        let (layout, fixed) =
            layout::decode(&raw.copy::<FIXED_SIZE>(0), size).map_err(|r| rejection(name, r))?;
        Ok(Segment {
            name: name.to_owned(),
            map: raw.checked(layout),
            creator_pid: fixed.creator_pid,
            creator_start_time: fixed.creator_start_time,
            fd,
            removed_here: Default::default(),
        })
    }

    /// The mapping, for the readers of this crate that load its words themselves (`inspect`).
    pub(crate) fn mapping(&self) -> &Mapping {
        &self.map
    }

    /// The segment's name.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-name-{}", std::process::id());
    /// let p = Producer::<u8, ndarray::Ix1>::create(&name, 4, &Config::spsc())?;
    /// assert_eq!(p.segment().name(), name);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The ring kind.
    pub fn kind(&self) -> RingKind {
        self.map.layout().params.kind
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.map.layout().params.dtype
    }

    /// The shape of each slot's array.
    pub fn shape(&self) -> &[usize] {
        &self.map.layout().params.shape
    }

    /// Number of slots.
    pub fn slot_count(&self) -> usize {
        self.map.layout().params.slots
    }

    /// Bytes of one item's array.
    pub fn payload_bytes(&self) -> usize {
        self.map.layout().payload_bytes
    }

    /// Bytes of user metadata each slot can carry.
    pub fn user_meta_size(&self) -> usize {
        self.map.layout().params.user_meta
    }

    /// Whether items carry publish timestamps ([`crate::Config::timestamps`]).
    pub fn timestamps(&self) -> bool {
        self.map.layout().params.timestamps
    }

    /// Total bytes of the segment.
    pub fn size(&self) -> usize {
        self.map.layout().total_size
    }

    /// The creating process's id.
    pub fn creator_pid(&self) -> u32 {
        self.creator_pid
    }

    /// The validated layout (not API: see the `layout` module).
    #[doc(hidden)]
    pub fn layout(&self) -> &Layout {
        self.map.layout()
    }

    /// Whether this segment was opened read-only ([`Segment::open_read_only`]).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-isro-{}", std::process::id());
    /// let tx = Producer::<u8, ndarray::Ix1>::create(&name, 4, &Config::spsc())?;
    /// assert!(!tx.segment().is_read_only());
    /// assert!(Segment::open_read_only(&name)?.is_read_only());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn is_read_only(&self) -> bool {
        self.map.read_only()
    }

    /// The ring's positions: `(tail, head, published)` without the closed bit, and whether it
    /// is closed. Queue rings: `tail` counts positions published (SPSC) or claimed (MPMC),
    /// `head` positions released (SPSC) or taken (MPMC). Broadcast: `published` is the newest
    /// frame's sequence number. For inspection; the values move while peers run.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-segpos-{}", std::process::id());
    /// let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 4, &Config::spsc())?;
    /// tx.claim()?.publish();
    /// assert_eq!(tx.segment().positions(), Positions { tail: 1, head: 0, published: 0, closed: false });
    /// # ndring::remove(&name)?; // items left unread keep the name (last one out)
    /// # Ok::<(), Error>(())
    /// ```
    pub fn positions(&self) -> Positions {
        let c = self.control();
        let tail = c.tail.load(Acquire);
        let published = c.published.load(Acquire);
        Positions {
            tail: tail & !crate::header::CLOSED,
            head: c.head.load(Acquire),
            published: published & !crate::header::CLOSED,
            closed: (tail | published) & crate::header::CLOSED != 0,
        }
    }

    /// Whether its name still refers to the object mapped here (it may have been removed, or
    /// replaced by a new ring of the same name): one `stat` of the name.
    ///
    /// ```
    /// # use ndring::*;
    /// let name = format!("/ndr-doc-still-{}", std::process::id());
    /// let tx = Producer::<u8, ndarray::Ix1>::create(&name, 4, &Config::spsc())?;
    /// let seg = Segment::open(&name, std::time::Duration::from_secs(1))?;
    /// assert!(seg.still_named());
    /// drop(tx); // the last handle out removes the name
    /// assert!(!seg.still_named());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn still_named(&self) -> bool {
        names_object(&self.name, &self.fd)
    }

    /// Runs `f` while holding the segment's advisory lock (`flock`): exclusive for whoever
    /// removes the name (the last handle out, a create replacing a finished ring), shared for an
    /// opener confirming after its registration that the name still refers to this ring (see
    /// `peers::register`). Each hold lasts a few system calls; a lock still held after 1 s
    /// (only by a process holding it on purpose) gives `None`.
    pub(crate) fn locked<R>(&self, exclusive: bool, f: impl FnOnce() -> R) -> Option<R> {
        locked(&self.fd, exclusive, f)
    }

    /// [`remove_name_unless_used`] for this segment's name.
    pub(crate) fn remove_name_unless_used<T>(
        &self,
        used: impl FnOnce() -> Option<T>,
    ) -> Option<std::result::Result<NameRemoval<T>, rustix::io::Errno>> {
        let r = remove_name_unless_used(&self.name, &self.fd, used);
        if let Some(Ok(NameRemoval::Removed)) = r {
            self.removed_here
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        r
    }

    /// Whether a handle of this process removed the segment's name through this mapping (the
    /// last one out): no other open can find it any more. No system call.
    ///
    /// ```
    /// # use ndring::*;
    /// let name = format!("/ndr-doc-rmhere-{}", std::process::id());
    /// let sa = SharedArray::<u8, ndarray::Ix1>::create(&name, 4, &Config::array())?;
    /// let seg = std::sync::Arc::new(Segment::open(&name, std::time::Duration::from_secs(1))?);
    /// let opened = SharedArray::<u8, ndarray::Ix1>::from_mapped(seg.clone(), &OpenOptions::default())?;
    /// drop(sa);
    /// assert!(!seg.removed_here());
    /// drop(opened); // the last one out, through `seg`
    /// assert!(seg.removed_here());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn removed_here(&self) -> bool {
        self.removed_here.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the name stays when the last handle detaches (see [`crate::Config::keep`]).
    pub(crate) fn set_keep(&self, keep: bool) {
        self.control().lifecycle.keep.store(keep as u32, Release);
    }

    /// Whether the creating process is still alive (pid and start time).
    pub fn creator_alive(&self) -> bool {
        sys::alive(self.creator_pid, self.creator_start_time)
    }

    /// Counters of abandoned items and recoveries.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-stats-{}", std::process::id());
    /// let p = Producer::<u8, ndarray::Ix1>::create(&name, 4, &Config::spsc())?;
    /// assert_eq!(p.segment().stats().abandoned, 0);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn stats(&self) -> Stats {
        let s = &self.control().stats;
        Stats {
            abandoned: s.abandoned.load(Relaxed),
            recovered_claims: s.recovered_claims.load(Relaxed),
            recovered_reads: s.recovered_reads.load(Relaxed),
            role_takeovers: s.role_takeovers.load(Relaxed),
        }
    }

    /// How many threads (in any process) are asleep right now waiting for an item
    /// (consumers, subscribers) and for a free slot (producers). For diagnostics and tests.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-waiting-{}", std::process::id());
    /// let p = Producer::<u8, ndarray::Ix1>::create(&name, 4, &Config::spsc())?;
    /// assert_eq!(p.segment().sleepers(), (0, 0));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn sleepers(&self) -> (u32, u32) {
        let c = self.control();
        (
            c.not_empty.waiters.load(Relaxed),
            c.not_full.waiters.load(Relaxed),
        )
    }

    /// Pointer to slot `i`'s array.
    #[inline]
    pub(crate) fn payload(&self, i: usize) -> *mut u8 {
        self.map.payload(i)
    }

    /// Pointer to slot `i`'s user metadata bytes.
    #[inline]
    pub(crate) fn user_meta(&self, i: usize) -> *mut u8 {
        self.map.user_meta(i)
    }

    /// Copies `bytes` into slot `i`'s user metadata: `MetaTooLarge` past its room. The one
    /// copy-in of metadata, for claimed slots, leases and calls alike.
    ///
    /// # Safety
    /// Slot `i` is the caller's alone (claimed, or a call being filled): nobody else reads or
    /// writes its metadata until the caller hands it on.
    pub(crate) unsafe fn write_user_meta(&self, i: usize, bytes: &[u8]) -> Result<()> {
        let capacity = self.user_meta_size();
        if bytes.len() > capacity {
            return Err(Error::MetaTooLarge {
                size: bytes.len(),
                capacity,
            });
        }
        // SAFETY: the caller's exclusive hold on slot `i` (see above); `capacity >= bytes.len()`
        // bytes of metadata lie between the slot's control block and its payload.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.user_meta(i), bytes.len()) };
        Ok(())
    }
}

// The protocols' view of the mapping (`Mapping` writes each accessor once).
impl crate::protocol::array::ArrayMemory for Segment {
    #[inline]
    fn array(&self) -> &crate::header::ArrayControl {
        self.map.array()
    }

    #[inline]
    fn stripe(&self, i: usize) -> &AtomicU64 {
        self.map.stripe(i)
    }

    #[inline]
    fn stripes(&self) -> usize {
        self.map.stripes()
    }

    #[inline]
    fn peer(&self, i: usize) -> &PeerEntry {
        self.map.peer(i)
    }

    #[inline]
    fn max_peers(&self) -> usize {
        self.map.layout().params.max_peers
    }
}

impl crate::protocol::rpc::CallMemory for Segment {
    #[inline]
    fn call(&self, i: usize) -> &crate::header::CallCtrl {
        self.map.call(i)
    }

    #[inline]
    fn calls(&self) -> usize {
        self.map.layout().params.slots
    }
}

impl Segment {
    /// Request/reply segments: pointer to call `i`'s reply.
    #[inline]
    pub(crate) fn reply_payload(&self, i: usize) -> *mut u8 {
        self.map.reply_payload(i)
    }
}

impl RingMemory for Segment {
    #[inline]
    fn control(&self) -> &Control {
        self.map.control()
    }

    #[inline]
    fn slot(&self, i: usize) -> &SlotCtrl {
        self.map.slot(i)
    }

    #[inline]
    fn index(&self, i: usize) -> &AtomicU64 {
        self.map.index(i)
    }

    #[inline]
    fn peer(&self, i: usize) -> &PeerEntry {
        self.map.peer(i)
    }

    #[inline]
    fn slots(&self) -> usize {
        self.map.layout().params.slots
    }

    #[inline]
    fn max_peers(&self) -> usize {
        self.map.layout().params.max_peers
    }
}

/// Counters of unusual events, shared by every process attached to a ring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Write slots dropped without `publish` (queue rings).
    pub abandoned: u64,
    /// Claims of dead producers turned into tombstones by a survivor.
    pub recovered_claims: u64,
    /// Slots of dead consumers returned to producers, or pins of dead subscribers dropped.
    pub recovered_reads: u64,
    /// Single-holder roles taken over from a dead holder.
    pub role_takeovers: u64,
}

/// A ring's positions, from [`Segment::positions`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Positions {
    /// Queue rings: positions published (SPSC) or claimed (MPMC).
    pub tail: u64,
    /// Queue rings: positions released (SPSC) or taken (MPMC).
    pub head: u64,
    /// Broadcast rings: the newest frame's sequence number (0: none).
    pub published: u64,
    /// Whether the ring was closed.
    pub closed: bool,
}

pub(crate) fn rejection(name: &str, r: layout::Rejection) -> Error {
    let name = name.to_owned();
    match r {
        layout::Rejection::TooShort(n) => Error::Corrupt {
            name,
            reason: format!("only {n} header bytes"),
        },
        layout::Rejection::Magic(found) => Error::NotNdring {
            name,
            expected: layout::MAGIC,
            found,
        },
        layout::Rejection::Version(found) => Error::Version {
            name,
            expected: layout::VERSION,
            found,
        },
        layout::Rejection::Corrupt(reason) => Error::Corrupt { name, reason },
    }
}

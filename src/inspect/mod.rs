//! Read-only inspection of rings: what the `ndring` command shows, available to any program.
//!
//! An [`Inspector`] opens a segment `O_RDONLY` and maps it `PROT_READ`: it takes no role, registers
//! nowhere, changes no word, and works on rings the caller may only read (a ring created with
//! `Config::mode(0o644)` by another user). The header is validated like any opener's
//! (`layout::decode`, hostile input); the shared words are read with atomic loads only.
//!
//! ```
//! use ndring::inspect::{Inspector, RingState};
//! # use ndring::*;
//! # let name = format!("/ndr-doc-insp-{}", std::process::id());
//! let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 16, &Config::spsc())?;
//! tx.send(&ndarray::Array1::from_elem(16, 7u8).view())?;
//! let ring = Inspector::open(&name)?;
//! assert_eq!(ring.state(), RingState::Live);
//! assert_eq!(ring.counters().published, 1);
//! let mut frame = vec![0u8; ring.payload_bytes()];
//! assert_eq!(ring.copy_newest(&mut frame)?.seq, 1);
//! assert_eq!(frame, [7u8; 16]);
//! # let _ = ndring::remove(&name); // items left unread keep the name
//! # Ok::<(), Error>(())
//! ```

mod kinds;
mod map;
mod newest;
// Under Miri `sys` is a heap-backed stand-in without descriptors or locks.
#[cfg(not(miri))]
mod remove;

use std::fmt;
use std::time::Duration;

pub use crate::shm::sys::SHM_DIR;
pub use kinds::ArrayStatus;
pub use newest::Newest;
#[cfg(not(miri))]
pub use remove::Removal;

use crate::error::{Error, Result};
use crate::header::CLOSED;
use crate::layout::{self, CONTROL_SIZE, FIXED_SIZE, Fixed, RingKind};
use crate::role::Role;
use crate::shm::mapping::{Mapping, RawMap};
use crate::shm::segment::{Segment, Stats};
use crate::shm::sys;
use crate::sync::Ordering::*;

/// Where a ring is in its life, as `ndring ls` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RingState {
    /// Its creator or an attached peer is alive, and it is not closed.
    Live,
    /// Closed by its producer or writer, with its creator or a peer still alive (consumers may
    /// be draining it).
    Closed,
    /// Nobody is left: its creator and every registered peer are dead (closed or not). Safe to
    /// remove.
    Stale,
    /// Its creator never marked it ready: a creation in progress (creator alive) or one that
    /// died half-way (creator dead: safe to remove).
    Unfinished,
}

impl fmt::Display for RingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RingState::Live => "live",
            RingState::Closed => "closed",
            RingState::Stale => "stale",
            RingState::Unfinished => "unfinished",
        })
    }
}

/// A segment whose creator never marked it ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unfinished {
    /// Its name.
    pub name: String,
    /// The creator recorded in its header, if the header was written that far (else 0).
    pub creator_pid: u32,
    /// Whether that creator is alive (a creation in progress); false if unknown.
    pub creator_alive: bool,
    /// Bytes of the object.
    pub size: u64,
}

/// What a name in `/dev/shm` holds, as far as ndring is concerned.
#[derive(Debug)]
pub enum Probe {
    /// A ready ring, validated.
    Ring(Inspector),
    /// An ndring segment whose creator has not (or never) marked it ready.
    Unfinished(Unfinished),
}

impl Probe {
    /// The state of the ring or unfinished segment.
    pub fn state(&self) -> RingState {
        match self {
            Probe::Ring(r) => r.state(),
            Probe::Unfinished(_) => RingState::Unfinished,
        }
    }

    /// The segment's name.
    pub fn name(&self) -> &str {
        match self {
            Probe::Ring(r) => r.name(),
            Probe::Unfinished(u) => &u.name,
        }
    }

    /// Whether no process is left that could still use it: stale, or unfinished by a creator
    /// that is dead (or unknown). This is what `ndring rm --stale` removes.
    pub fn abandoned(&self) -> bool {
        match self {
            Probe::Ring(r) => r.state() == RingState::Stale,
            Probe::Unfinished(u) => !u.creator_alive,
        }
    }
}

/// What [`Inspector::scan`] found in `/dev/shm`.
#[derive(Debug)]
pub struct Scan {
    /// The ndring segments, by name.
    pub rings: Vec<Probe>,
    /// Every other regular file, with the reason it is not a readable ring (`NotNdring` for
    /// other programs' objects).
    pub skipped: Vec<(String, Error)>,
}

/// The shared counters of a ring at one instant (each word loaded atomically; the words are not
/// one snapshot, so a difference of two may be off by the items of a few microseconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counters {
    /// Items published: SPSC `tail`; MPMC positions claimed (published, being filled, or
    /// abandoned); broadcast the newest frame's sequence number.
    pub published: u64,
    /// Queue rings: items released (SPSC) or taken (MPMC); `None` for broadcast.
    pub taken: Option<u64>,
    /// Whether the producer or writer has closed the ring.
    pub closed: bool,
    /// Threads asleep waiting for an item (consumers, subscribers).
    pub sleeping_for_items: u32,
    /// Threads asleep waiting for a free slot (producers).
    pub sleeping_for_slots: u32,
    /// Event counters.
    pub stats: Stats,
    /// When the counters were read (`ndring::now_ns`).
    pub at_ns: u64,
}

impl Counters {
    /// Queue rings: items published and not yet taken (`published − taken`).
    pub fn backlog(&self) -> Option<u64> {
        self.taken.map(|t| self.published.saturating_sub(t))
    }
}

/// One registered peer, as seen from outside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerStatus {
    /// Entry in the peer table.
    pub entry: usize,
    /// Its role.
    pub role: Role,
    /// Its process id.
    pub pid: u32,
    /// Its start time in clock ticks after boot (field 22 of `/proc/PID/stat`; 0 if unknown).
    pub start_time: u64,
    /// Alive: the pid exists, is no zombie, and started at `start_time`.
    pub alive: bool,
    /// A live peer's program name (`/proc/PID/comm`, at most 15 bytes): `ndring-bridge` for a
    /// bridge, `python3` for a Python process. `None` for a dead peer.
    pub program: Option<String>,
    /// Queue rings: the position it has claimed (producer) or holds (consumer).
    pub holding: Option<u64>,
    /// Broadcast subscribers: the sequence number of the frame it has pinned (is reading now).
    pub reading: Option<u64>,
    /// Broadcast subscribers reading a frame: frames published after it (its lag).
    pub lag: Option<u64>,
}

/// When a process with start time `ticks` (clock ticks after boot, as in [`PeerStatus::start_time`])
/// started, by the wall clock; `None` if unknown.
///
/// ```
/// let me = std::time::SystemTime::now();
/// # let _ = me;
/// assert_eq!(ndring::inspect::started_at(0), None);
/// ```
pub fn started_at(ticks: u64) -> Option<std::time::SystemTime> {
    // USER_HZ: the unit of /proc's start times, fixed at 100 by the Linux ABI on x86 and ARM.
    const TICKS_PER_SECOND: u64 = 100;
    if ticks == 0 {
        return None;
    }
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let boot: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    let ms = boot * 1000 + ticks * 1000 / TICKS_PER_SECOND;
    Some(std::time::UNIX_EPOCH + Duration::from_millis(ms))
}

/// A ring mapped read-only: header, counters, peers, state, and copies of the newest item.
///
/// Its layout was validated by `layout::decode` against the object's real size (the
/// `Mapping`'s invariant), so every access stays inside the mapping.
#[derive(Debug)]
pub struct Inspector {
    /// Mapped `PROT_READ` from a read-only descriptor: only atomic loads of at most 8 bytes
    /// and volatile copies are made through it.
    seg: Segment,
}

/// An inspector is a read-only [`Segment`]: its name, kind, type, shape, sizes, creator,
/// positions and statistics are the segment's.
impl std::ops::Deref for Inspector {
    type Target = Segment;

    fn deref(&self) -> &Segment {
        &self.seg
    }
}

impl Inspector {
    /// The mapping's words, loaded by the listings.
    fn map(&self) -> &Mapping {
        self.seg.mapping()
    }

    /// Opens the ready ring `name` read-only; an unfinished segment is `Error::NotReady`.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-inspopen-{}", std::process::id());
    /// let _tx = Producer::<f32, ndarray::Ix2>::create(&name, (3, 4), &Config::mpmc())?;
    /// let ring = ndring::inspect::Inspector::open(&name)?;
    /// assert_eq!((ring.kind(), ring.dtype(), ring.shape()), (RingKind::Mpmc, DType::F32, &[3, 4][..]));
    /// # let _ = ndring::remove(&name); // items left unread keep the name
    /// # Ok::<(), Error>(())
    /// ```
    pub fn open(name: &str) -> Result<Inspector> {
        match Inspector::probe(name)? {
            Probe::Ring(r) => Ok(r),
            Probe::Unfinished(_) => Err(Error::NotReady {
                name: name.into(),
                waited: Duration::ZERO,
            }),
        }
    }

    /// Opens `name` read-only and says what it holds, without waiting: a validated ring, or an
    /// unfinished ndring segment. Anything else is an error: `NotNdring` (another program's
    /// object, or an empty one), `Version`, `Corrupt`, `NotFound`, `PermissionDenied`.
    ///
    /// ```
    /// # use ndring::*;
    /// # use ndring::inspect::{Inspector, Probe, RingState};
    /// # let name = format!("/ndr-doc-probe-{}", std::process::id());
    /// let _tx = BroadcastWriter::<u8, ndarray::Ix1>::create(&name, 8, &Config::broadcast())?;
    /// let probe = Inspector::probe(&name)?;
    /// assert!(matches!(probe, Probe::Ring(_)));
    /// assert_eq!(probe.state(), RingState::Live);
    /// # let _ = ndring::remove(&name); // items left unread keep the name
    /// # Ok::<(), Error>(())
    /// ```
    pub fn probe(name: &str) -> Result<Probe> {
        let (fd, size) = map::open(name)?;
        let not_ndring = |found| Error::NotNdring {
            name: name.into(),
            expected: layout::MAGIC,
            found,
        };
        // A creator sizes its object in one step, so anything smaller than the header is not
        // (or not yet recognisably) a ring.
        if size < (FIXED_SIZE + CONTROL_SIZE) as u64 {
            return Err(not_ndring(0));
        }
        let len = usize::try_from(size)
            .ok()
            .filter(|&l| l <= isize::MAX as usize)
            .ok_or_else(|| Error::Corrupt {
                name: name.into(),
                reason: format!("size {size} does not fit the address space"),
            })?;
        let raw = RawMap::new(&fd, len, true).map_err(|e| sys::error(e, "map", name))?;
        let magic = raw.magic();
        if magic != layout::MAGIC {
            return Err(not_ndring(magic));
        }
        let ready = raw.ready();
        let bytes = raw.copy::<FIXED_SIZE>(0);
        let fixed: Fixed = bytemuck::pod_read_unaligned(&bytes[..std::mem::size_of::<Fixed>()]);
        if !ready {
            let alive =
                fixed.creator_pid != 0 && sys::alive(fixed.creator_pid, fixed.creator_start_time);
            return Ok(Probe::Unfinished(Unfinished {
                name: name.into(),
                creator_pid: fixed.creator_pid,
                creator_alive: alive,
                size,
            }));
        }
        Ok(Probe::Ring(Inspector {
            seg: Segment::from_ready(name, fd, raw, size)?,
        }))
    }

    /// Every ndring segment in `/dev/shm`, sorted by name. Other objects (another program's,
    /// empty ones, unreadable ones, symlinks, directories) are skipped, not errors; their names
    /// and the reasons come back in [`Scan::skipped`].
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-scan-{}", std::process::id());
    /// let _tx = Producer::<u8, ndarray::Ix1>::create(&name, 8, &Config::spsc())?;
    /// let scan = ndring::inspect::Inspector::scan()?;
    /// assert!(scan.rings.iter().any(|r| r.name() == name));
    /// # let _ = ndring::remove(&name); // items left unread keep the name
    /// # Ok::<(), Error>(())
    /// ```
    pub fn scan() -> Result<Scan> {
        let dir = std::fs::read_dir(SHM_DIR).map_err(|source| Error::Io {
            op: "list",
            name: SHM_DIR.into(),
            source,
        })?;
        let mut names: Vec<String> = dir
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().into_string().ok())
            .map(|n| format!("/{n}"))
            .collect();
        names.sort();
        let (mut rings, mut skipped) = (Vec::new(), Vec::new());
        for name in names {
            match Inspector::probe(&name) {
                Ok(p) => rings.push(p),
                Err(e) => skipped.push((name, e)),
            }
        }
        Ok(Scan { rings, skipped })
    }

    /// The shared counters, loaded now.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-counters-{}", std::process::id());
    /// let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 4, &Config::mpmc())?;
    /// tx.send(&ndarray::arr1(&[1u8, 2, 3, 4]).view())?;
    /// let c = ndring::inspect::Inspector::open(&name)?.counters();
    /// assert_eq!((c.published, c.backlog(), c.closed), (1, Some(1), false));
    /// # let _ = ndring::remove(&name); // items left unread keep the name
    /// # Ok::<(), Error>(())
    /// ```
    pub fn counters(&self) -> Counters {
        let c = self.map().control();
        let queue = self.kind().is_queue();
        let word = if queue { &c.tail } else { &c.published };
        let published = word.load(Acquire);
        let s = &c.stats;
        Counters {
            published: published & !CLOSED,
            taken: queue.then(|| c.head.load(Acquire)),
            closed: published & CLOSED != 0,
            sleeping_for_items: c.not_empty.waiters.load(Relaxed),
            sleeping_for_slots: c.not_full.waiters.load(Relaxed),
            stats: Stats {
                abandoned: s.abandoned.load(Relaxed),
                recovered_claims: s.recovered_claims.load(Relaxed),
                recovered_reads: s.recovered_reads.load(Relaxed),
                role_takeovers: s.role_takeovers.load(Relaxed),
            },
            at_ns: sys::now_ns(),
        }
    }

    /// The registered peers, with their liveness and (broadcast) lag.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-inspeers-{}", std::process::id());
    /// let _tx = Producer::<u8, ndarray::Ix1>::create(&name, 4, &Config::spsc())?;
    /// let peers = ndring::inspect::Inspector::open(&name)?.peers();
    /// assert_eq!(peers.len(), 1);
    /// assert_eq!((peers[0].role, peers[0].pid, peers[0].alive), (Role::Producer, std::process::id(), true));
    /// # let _ = ndring::remove(&name); // items left unread keep the name
    /// # Ok::<(), Error>(())
    /// ```
    pub fn peers(&self) -> Vec<PeerStatus> {
        let published = self.map().control().published.load(Acquire) & !CLOSED;
        (0..self.map().layout().params.max_peers)
            .filter_map(|i| {
                let e = self.map().peer(i);
                let owner = crate::protocol::peers::owner(e)?;
                let (pid, start_time) = (owner.pid, owner.start_time);
                let role = Role::from_u8(owner.role)?;
                let (holding, pin) = crate::protocol::peers::holds(e);
                // A pin names slot `pin - 1`; its stamp says which frame it holds (hostile: the
                // slot number is bounds-checked, and a slot being rewritten holds none).
                let reading = (self.kind() == RingKind::Broadcast && pin != 0)
                    .then(|| pin - 1)
                    .filter(|&s| s < self.slot_count() as u64)
                    .map(|s| self.map().slot(s as usize).stamp.load(Acquire))
                    .filter(|&st| st != 0 && st & crate::protocol::broadcast::WRITING == 0)
                    .map(|st| st >> 1);
                let alive = sys::alive(pid, start_time);
                Some(PeerStatus {
                    entry: i,
                    role,
                    pid,
                    start_time,
                    alive,
                    program: alive.then(|| sys::program(pid)).flatten(),
                    holding: (self.kind().is_queue() && holding != 0).then(|| holding - 1),
                    reading,
                    lag: reading.map(|r| published.saturating_sub(r)),
                })
            })
            .collect()
    }

    /// The ring's state now: [`RingState::Live`], [`RingState::Closed`] or [`RingState::Stale`]
    /// (an `Inspector` is only made for ready rings).
    pub fn state(&self) -> RingState {
        let anyone = self.creator_alive() || self.peers().iter().any(|p| p.alive);
        match (anyone, self.counters().closed) {
            (false, _) => RingState::Stale,
            (true, true) => RingState::Closed,
            (true, false) => RingState::Live,
        }
    }
}

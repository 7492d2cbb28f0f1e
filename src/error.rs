//! The one error type of the crate.

use std::io;
use std::time::Duration;

use crate::element::DType;
use crate::layout::RingKind;
use crate::role::{PeerInfo, Role};

/// Everything that can go wrong, each case saying what was expected and what was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The segment name is not portable: it must start with `/`, have no other `/`, be at most
    /// 31 bytes long (macOS's limit) and hold no NUL.
    #[error("invalid segment name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No segment has this name.
    #[error("no shared-memory segment named {name:?} (is the creator running?)")]
    NotFound {
        /// The name looked up.
        name: String,
    },
    /// `create` found a segment of this name already there.
    #[error("a shared-memory segment named {name:?} already exists{}", match creator_pid {
        Some(pid) => format!(" (its creator, pid {pid}, is still alive)"),
        None => String::new(),
    })]
    AlreadyExists {
        /// The name.
        name: String,
        /// The creator's pid when it is known to be alive.
        creator_pid: Option<u32>,
    },
    /// `create` found a segment whose creator has died: it may be replaced with
    /// `Config::replace_stale(true)` or removed with [`crate::remove`].
    #[error(
        "a stale shared-memory segment named {name:?} exists: its creator (pid {creator_pid}) is dead; remove it or create with replace_stale(true)"
    )]
    Stale {
        /// The name.
        name: String,
        /// The dead creator's pid.
        creator_pid: u32,
    },
    /// The operating system refused access.
    #[error("permission denied to {op} shared-memory segment {name:?}")]
    PermissionDenied {
        /// The name.
        name: String,
        /// What was attempted ("open", "create", "remove").
        op: &'static str,
    },
    /// The name is a symbolic link in `/dev/shm`: segments are opened with `O_NOFOLLOW`, so a
    /// link planted by another local user cannot redirect an open.
    #[error(
        "{name:?} is a symbolic link in /dev/shm; shared-memory segments are never opened through one"
    )]
    SymbolicLink {
        /// The name.
        name: String,
    },
    /// The ring is closed (its stream is over) but processes are still attached to it, so it
    /// cannot be replaced by a new one yet.
    #[error(
        "{name:?} is closed but still attached by {}; it can be replaced once they detach",
        list_peers(peers)
    )]
    InUse {
        /// The name.
        name: String,
        /// The live processes attached to it.
        peers: Vec<PeerInfo>,
    },
    /// The segment was opened read-only ([`crate::Segment::open_read_only`]), for inspection:
    /// it cannot become a producer, consumer, writer or subscriber.
    #[error("{name:?} was opened read-only (for inspection); attach with Segment::open to use it")]
    ReadOnly {
        /// The name.
        name: String,
    },
    /// `/dev/shm` cannot hold the segment.
    #[error(
        "not enough shared memory for {name:?}: it needs {needed} bytes; enlarge /dev/shm (e.g. docker run --shm-size) or use fewer/smaller slots"
    )]
    NoSpace {
        /// The name.
        name: String,
        /// Bytes the segment needs.
        needed: u64,
    },
    /// The segment does not start with ndring's magic number.
    #[error("{name:?} is not an ndring segment (magic {found:#018x}, expected {expected:#018x})")]
    NotNdring {
        /// The name.
        name: String,
        /// The magic expected.
        expected: u64,
        /// The magic found.
        found: u64,
    },
    /// The segment was written by another version of the format.
    #[error("{name:?} has format version {found}, this library reads version {expected}")]
    Version {
        /// The name.
        name: String,
        /// The version this library writes and reads.
        expected: u32,
        /// The version found.
        found: u32,
    },
    /// The header's fields are inconsistent or do not fit the mapping.
    #[error("{name:?} has a corrupt header: {reason}")]
    Corrupt {
        /// The name.
        name: String,
        /// The first inconsistency found.
        reason: String,
    },
    /// The element type differs from the one asked for.
    #[error("element type mismatch: expected {expected}, the segment holds {found}")]
    TypeMismatch {
        /// The type asked for.
        expected: DType,
        /// The type in the header.
        found: DType,
    },
    /// The rank or shape differs from the one asked for.
    #[error("shape mismatch: expected {expected:?}, found {found:?}")]
    ShapeMismatch {
        /// The shape asked for.
        expected: Vec<usize>,
        /// The shape in the header or of the array given.
        found: Vec<usize>,
    },
    /// The rank differs from the dimension type asked for.
    #[error("rank mismatch: expected {expected} dimensions, the segment's arrays have {found}")]
    RankMismatch {
        /// `D::NDIM`.
        expected: usize,
        /// The header's rank.
        found: usize,
    },
    /// The segment holds another kind of ring.
    #[error("ring kind mismatch: expected {expected}, the segment is {found}")]
    KindMismatch {
        /// The kind needed.
        expected: &'static str,
        /// The kind in the header.
        found: RingKind,
    },
    /// The creator did not finish initialising the segment in time (it may have died).
    #[error(
        "{name:?} was not initialised within {waited:?}: its creator may have died; remove it or create with replace_stale(true)"
    )]
    NotReady {
        /// The name.
        name: String,
        /// How long we waited.
        waited: Duration,
    },
    /// The role is held by a live process.
    #[error("the {role} role of this ring is already held by pid {pid}")]
    RoleTaken {
        /// The role.
        role: Role,
        /// Its holder.
        pid: u32,
    },
    /// All peer entries are in use.
    #[error("too many {role}s attached: the ring allows {max}")]
    TooManyPeers {
        /// The role that found no room.
        role: Role,
        /// The limit recorded in the header.
        max: usize,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// User metadata larger than the room in each slot.
    #[error("user metadata of {size} bytes does not fit the {capacity} bytes reserved per slot")]
    MetaTooLarge {
        /// `size_of::<M>()`.
        size: usize,
        /// The configured room.
        capacity: usize,
    },
    /// `try_claim`: every slot is taken.
    #[error("the ring is full")]
    Full,
    /// `try_recv`: nothing is published.
    #[error("the ring is empty")]
    Empty,
    /// A `*_timeout` call ran out of time.
    #[error("timed out")]
    Timeout,
    /// The ring was closed and (for receivers) everything published was received.
    #[error("the ring is closed")]
    Closed,
    /// No peer is attached on the other side (every producer, or every consumer, has detached or
    /// died) and nothing is left to receive. Unlike [`Error::Closed`] it is not final: once a peer
    /// attaches again the same call can succeed.
    #[error("disconnected: no {missing} is attached to the ring")]
    Disconnected {
        /// The role that is missing ([`Role::Producer`], [`Role::Consumer`] or [`Role::Writer`]).
        missing: Role,
    },
    /// Broadcast: the writer overwrote frames this subscriber had not read. The next `recv`
    /// continues with the oldest frame still held.
    #[error("lagged: {missed} frames were overwritten before they were read")]
    Lagged {
        /// Frames skipped.
        missed: u64,
    },
    /// A lease holder ([`crate::LeaseConsumer`], [`crate::LeaseProducer`]) already holds as many
    /// slots as it can: holding them all, the next receive could never succeed, and a producer
    /// claims one slot at a time. Drop a lease (in Python: every array over it) first.
    #[error(
        "this handle already holds {held} slot(s), the most it can hold ({max}): release one \
         (drop the received arrays and their views, or publish the claim) before {action}"
    )]
    TooManyLeases {
        /// Slots held now.
        held: usize,
        /// The most this handle can hold.
        max: usize,
        /// "receiving" or "claiming".
        action: &'static str,
    },
    /// Shared arrays: a writer died holding the lock, so the array may be half-written. Every
    /// lock fails so until someone who knows how to repair it calls
    /// [`crate::SharedArray::clear_poison`] (as `std::sync::RwLock` poisoning).
    #[error(
        "shared array {name:?} is poisoned: a writer died holding its lock, so it may be \
         half-written; repair or check it, then call clear_poison()"
    )]
    Poisoned {
        /// The array's name.
        name: String,
    },
    /// Request/reply: the server that took the request dropped it unanswered, or died serving
    /// it. The request was served at most once, and not answered.
    #[error(
        "request/reply segment {name:?}: the server dropped the request unanswered or died serving it"
    )]
    RequestFailed {
        /// The segment's name.
        name: String,
    },
    /// Shared arrays: rows asked for outside the array's first axis.
    #[error("rows {start}..{end} are not within the array's {rows} rows (or are empty)")]
    RowsOutOfRange {
        /// First row asked for.
        start: usize,
        /// One past the last row asked for.
        end: usize,
        /// Rows of the array.
        rows: usize,
    },
    /// Another operating-system error.
    #[error("{op} of shared-memory segment {name:?} failed: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The name.
        name: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

fn list_peers(peers: &[PeerInfo]) -> String {
    let v: Vec<String> = peers
        .iter()
        .map(|p| format!("{} pid {}", p.role, p.pid))
        .collect();
    v.join(", ")
}

/// `Result<T, ndring::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! The segment's layout: the fixed header written once by the creator, and the offsets of every
//! region, computed from a few primary parameters with checked arithmetic.
//!
//! Decoding is a pure function over the header bytes and the mapping's real size, so that it can
//! be fuzzed: a header read from shared memory is hostile input.
//!
//! This is the format module, and it is stable: what it defines (the `Fixed` header, the
//! offset arithmetic of `Layout::compute`, `decode`) changes only together with [`VERSION`],
//! and a reader of one version rejects every other. `ARCHITECTURE.md` §2 describes the same
//! format byte by byte, for readers in other languages.
//!
//! Public API: the format version, the limits a caller checks its parameters against, and
//! [`RingKind`]. The rest (`Fixed`, `Params`, `Layout`, `decode`, the offsets) is the crate's own
//! and `#[doc(hidden)]`: public only so that `fuzz/` and `tests/header_props.rs` can drive the
//! decoder as hostile input arrives; no semver promise covers it.

use std::fmt;

use bytemuck::{Pod, Zeroable};

use crate::element::DType;
use crate::header::{LINE, SLOT_CTRL_SIZE};

/// `b"NDRING\0\x01"` read as a little-endian `u64`.
pub const MAGIC: u64 = u64::from_le_bytes(*b"NDRING\0\x01");
/// The format version this library writes and reads.
pub const VERSION: u32 = 4;
/// Bytes reserved for the fixed header at offset 0.
#[doc(hidden)]
pub const FIXED_SIZE: usize = 512;
/// Bytes reserved for `header::Control`, right after the fixed header.
#[doc(hidden)]
pub const CONTROL_SIZE: usize = 1024;
/// Offset of `header::Control`.
#[doc(hidden)]
pub const CONTROL_OFFSET: usize = FIXED_SIZE;
/// Most dimensions an array may have.
pub const MAX_RANK: usize = 8;
/// Most slots a ring may have.
pub const MAX_SLOTS: usize = 1 << 16;
/// Most bytes of user metadata per slot.
pub const MAX_USER_META: usize = 4096;
/// Most entries of the peer table.
pub const MAX_PEERS: usize = 1024;
/// Bytes of `header::ArrayControl`, at `index_offset` in a shared array.
pub const ARRAY_CONTROL_SIZE: usize = 6 * LINE;
/// Most stripes (lockable row ranges) of a shared array.
pub const MAX_STRIPES: usize = 64;

/// The number of stripes of a shared array of `shape`: the first axis is cut into
/// `min(shape[0], MAX_STRIPES)` ranges of rows (one for a 0-d array). Row `r` lies in stripe
/// `r * stripes / shape[0]`.
pub fn stripes(shape: &[usize]) -> usize {
    shape.first().map_or(1, |&n| n.clamp(1, MAX_STRIPES))
}

/// Which protocol a ring follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum RingKind {
    /// One producer, one consumer, FIFO, exactly once, backpressure.
    Spsc = 1,
    /// Any number of producers and consumers; each item goes to exactly one consumer.
    Mpmc = 2,
    /// One writer that never waits; any number of subscribers each see every frame still held.
    Broadcast = 3,
    /// One shared array that every attached process reads and writes in place, under a
    /// reader-writer lock ([`crate::SharedArray`]).
    Array = 4,
    /// Requests and replies between clients and servers ([`crate::Server`], [`crate::Client`]):
    /// each slot holds one call, its request and its reply.
    Rpc = 5,
}

impl RingKind {
    fn from_code(code: u32) -> Option<RingKind> {
        match code {
            1 => Some(RingKind::Spsc),
            2 => Some(RingKind::Mpmc),
            3 => Some(RingKind::Broadcast),
            4 => Some(RingKind::Array),
            5 => Some(RingKind::Rpc),
            _ => None,
        }
    }

    /// Whether this is a queue ring (SPSC or MPMC).
    pub fn is_queue(self) -> bool {
        matches!(self, RingKind::Spsc | RingKind::Mpmc)
    }
}

impl fmt::Display for RingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RingKind::Spsc => "an SPSC queue",
            RingKind::Mpmc => "an MPMC queue",
            RingKind::Broadcast => "a broadcast ring",
            RingKind::Array => "a shared array",
            RingKind::Rpc => "a request/reply segment",
        })
    }
}

/// The primary parameters from which every offset follows.
#[doc(hidden)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// Protocol.
    pub kind: RingKind,
    /// Element type.
    pub dtype: DType,
    /// Shape of each slot's array (row-major, C order).
    pub shape: Vec<usize>,
    /// Number of slots.
    pub slots: usize,
    /// Bytes of user metadata per slot.
    pub user_meta: usize,
    /// Entries of the peer table.
    pub max_peers: usize,
    /// Producers record a `CLOCK_MONOTONIC` timestamp with every item.
    pub timestamps: bool,
    /// Request/reply segments: the replies' element type and shape (the requests' are `dtype`
    /// and `shape`); `None` for every other kind.
    pub reply: Option<(DType, Vec<usize>)>,
}

/// `Fixed::flags` bit: items carry publish timestamps.
#[doc(hidden)]
pub const FLAG_TIMESTAMPS: u32 = 1;
/// Every flag bit this version knows.
#[doc(hidden)]
pub const KNOWN_FLAGS: u32 = FLAG_TIMESTAMPS;

/// Where everything is, in bytes from the start of the segment.
#[doc(hidden)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The parameters.
    pub params: Params,
    /// Bytes of one slot's array.
    pub payload_bytes: usize,
    /// Offset of the array within a slot (after the slot control block and user metadata).
    pub payload_offset: usize,
    /// Request/reply segments: bytes of one reply (else 0).
    pub reply_bytes: usize,
    /// Request/reply segments: offset of the reply within a slot, after the request (else 0).
    pub reply_offset: usize,
    /// Distance between two slots.
    pub slot_stride: usize,
    /// Offset of the broadcast index table (`slots` × `AtomicU64`).
    pub index_offset: usize,
    /// Offset of the peer table (`max_peers` × 128 bytes).
    pub peers_offset: usize,
    /// Offset of slot 0.
    pub slots_offset: usize,
    /// Bytes of the whole segment.
    pub total_size: usize,
}

/// The fixed header at offset 0, written once by the creator before it sets `READY`, and read
/// by openers with a volatile copy. Each field is described in `ARCHITECTURE.md`.
#[doc(hidden)]
#[allow(missing_docs)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct Fixed {
    pub magic: u64,
    pub version: u32,
    pub fixed_size: u32,
    pub kind: u32,
    pub dtype: u32,
    pub elem_size: u32,
    pub elem_align: u32,
    pub rank: u32,
    pub slots: u32,
    pub user_meta: u32,
    pub max_peers: u32,
    pub shape: [u64; MAX_RANK],
    pub payload_bytes: u64,
    pub payload_offset: u64,
    pub slot_stride: u64,
    pub control_offset: u64,
    pub index_offset: u64,
    pub peers_offset: u64,
    pub slots_offset: u64,
    pub total_size: u64,
    pub creator_pid: u32,
    pub flags: u32,
    pub creator_start_time: u64,
    pub _reserved: [u64; 32],
}

const _: () = assert!(std::mem::size_of::<Fixed>() <= FIXED_SIZE);

/// Request/reply segments: where the reply's element type code, rank and shape are in
/// `Fixed::_reserved` (zero in every other kind).
const RESERVED_REPLY_DTYPE: usize = 0;
const RESERVED_REPLY_RANK: usize = 1;
const RESERVED_REPLY_SHAPE: usize = 2;

// Where the shared words of `header` land in the segment: the offsets ARCHITECTURE.md §2.2 and
// §2.4 document (tests/queue.rs reads 904 from outside the crate). Here, not in `header`, so
// that the shared words do not depend on the layout that places them.
const _: () = {
    use crate::header::{Control, WaitWord};
    use std::mem::{offset_of, size_of};
    assert!(size_of::<Control>() <= CONTROL_SIZE);
    const PLAIN: usize = offset_of!(WaitWord, plain);
    assert!(CONTROL_OFFSET + offset_of!(Control, not_empty) + PLAIN == 904);
    assert!(CONTROL_OFFSET + offset_of!(Control, not_full) + PLAIN == 1032);
    // Version 3's additions.
    assert!(CONTROL_OFFSET + offset_of!(Control, lifecycle) == 1408);
    // A shared array's words, as ARCHITECTURE.md documents them.
    assert!(size_of::<crate::header::ArrayControl>() == ARRAY_CONTROL_SIZE);
};

/// Why [`Layout::compute`] refused its parameters: the value out of range, and the range.
#[doc(hidden)]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OutOfRange {
    /// More dimensions than [`MAX_RANK`].
    #[error("rank {0} exceeds the maximum {MAX_RANK}")]
    Rank(usize),
    /// A dimension of length 0.
    #[error("dimension {index} of shape {shape:?} is zero")]
    ZeroDimension {
        /// Which dimension.
        index: usize,
        /// The whole shape.
        shape: Vec<usize>,
    },
    /// A slot count outside `2..=MAX_SLOTS`.
    #[error("slot count {0} is outside 2..={MAX_SLOTS}")]
    Slots(usize),
    /// A shared array with a slot count other than 1.
    #[error("a shared array has 1 slot, not {0}")]
    ArraySlots(usize),
    /// A reply type given for a kind other than request/reply, or none for request/reply.
    #[error("a reply element type and shape go with a request/reply segment, and only with it")]
    Reply,
    /// More user metadata per slot than [`MAX_USER_META`].
    #[error("user metadata size {0} exceeds the maximum {MAX_USER_META}")]
    UserMeta(usize),
    /// A peer table size outside `2..=MAX_PEERS`.
    #[error("peer table size {0} is outside 2..={MAX_PEERS}")]
    Peers(usize),
    /// A segment larger than the address space (`isize::MAX` bytes) or than `usize` counts.
    #[error("shape {shape:?} with {slots} slots overflows")]
    Overflow {
        /// The shape asked for.
        shape: Vec<usize>,
        /// The slot count asked for.
        slots: usize,
    },
}

fn round_up(n: usize, to: usize) -> Option<usize> {
    n.checked_add(to - 1).map(|v| v / to * to)
}

impl Layout {
    /// Computes the layout, rejecting parameters out of range. Every sum and product is checked.
    pub fn compute(params: Params) -> Result<Layout, OutOfRange> {
        if params.shape.len() > MAX_RANK {
            return Err(OutOfRange::Rank(params.shape.len()));
        }
        if let Some(index) = params.shape.iter().position(|&d| d == 0) {
            let shape = params.shape;
            return Err(OutOfRange::ZeroDimension { index, shape });
        }
        if params.kind == RingKind::Array {
            if params.slots != 1 {
                return Err(OutOfRange::ArraySlots(params.slots));
            }
        } else if params.kind == RingKind::Rpc {
            if params.slots == 0 || params.slots > MAX_SLOTS {
                return Err(OutOfRange::Slots(params.slots));
            }
        } else if params.slots < 2 || params.slots > MAX_SLOTS {
            return Err(OutOfRange::Slots(params.slots));
        }
        let reply = match (&params.reply, params.kind) {
            (Some(r), RingKind::Rpc) => Some(r.clone()),
            (None, RingKind::Rpc) | (Some(_), _) => return Err(OutOfRange::Reply),
            (None, _) => None,
        };
        if let Some((_, shape)) = &reply {
            if shape.len() > MAX_RANK {
                return Err(OutOfRange::Rank(shape.len()));
            }
            if let Some(index) = shape.iter().position(|&d| d == 0) {
                let shape = shape.clone();
                return Err(OutOfRange::ZeroDimension { index, shape });
            }
        }
        if params.user_meta > MAX_USER_META {
            return Err(OutOfRange::UserMeta(params.user_meta));
        }
        if params.max_peers < 2 || params.max_peers > MAX_PEERS {
            return Err(OutOfRange::Peers(params.max_peers));
        }
        let too_big = || OutOfRange::Overflow {
            shape: params.shape.clone(),
            slots: params.slots,
        };
        let elems = params
            .shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(too_big)?;
        let payload_bytes = elems.checked_mul(params.dtype.size()).ok_or_else(too_big)?;
        let payload_offset =
            round_up(SLOT_CTRL_SIZE + params.user_meta, LINE).ok_or_else(too_big)?;
        let reply_bytes = match &reply {
            Some((dtype, shape)) => shape
                .iter()
                .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
                .ok_or_else(too_big)?,
            None => 0,
        };
        let reply_offset = if reply.is_some() {
            round_up(payload_bytes, LINE)
                .and_then(|p| p.checked_add(payload_offset))
                .ok_or_else(too_big)?
        } else {
            0
        };
        let slot_stride = round_up(payload_bytes, LINE)
            .and_then(|p| p.checked_add(payload_offset))
            .and_then(|p| p.checked_add(round_up(reply_bytes, LINE)?))
            .ok_or_else(too_big)?;
        let index_offset = CONTROL_OFFSET + CONTROL_SIZE;
        // Broadcast: the index table; shared arrays: their control words and stripes.
        let index_bytes = if params.kind == RingKind::Array {
            ARRAY_CONTROL_SIZE + stripes(&params.shape) * 8
        } else {
            params.slots * 8
        };
        let peers_offset = round_up(index_bytes, LINE)
            .and_then(|n| n.checked_add(index_offset))
            .ok_or_else(too_big)?;
        let slots_offset = peers_offset + params.max_peers * LINE;
        let total_size = slot_stride
            .checked_mul(params.slots)
            .and_then(|n| n.checked_add(slots_offset))
            .filter(|&n| n <= isize::MAX as usize)
            .ok_or_else(too_big)?;
        Ok(Layout {
            params,
            payload_bytes,
            payload_offset,
            reply_bytes,
            reply_offset,
            slot_stride,
            index_offset,
            peers_offset,
            slots_offset,
            total_size,
        })
    }

    /// The fixed header describing this layout.
    pub fn encode(&self, creator_pid: u32, creator_start_time: u64) -> Fixed {
        let p = &self.params;
        let mut shape = [0u64; MAX_RANK];
        for (s, &d) in shape.iter_mut().zip(&p.shape) {
            *s = d as u64;
        }
        Fixed {
            magic: MAGIC,
            version: VERSION,
            fixed_size: FIXED_SIZE as u32,
            kind: p.kind as u32,
            dtype: p.dtype.code(),
            elem_size: p.dtype.size() as u32,
            elem_align: p.dtype.align() as u32,
            rank: p.shape.len() as u32,
            slots: p.slots as u32,
            user_meta: p.user_meta as u32,
            max_peers: p.max_peers as u32,
            shape,
            payload_bytes: self.payload_bytes as u64,
            payload_offset: self.payload_offset as u64,
            slot_stride: self.slot_stride as u64,
            control_offset: CONTROL_OFFSET as u64,
            index_offset: self.index_offset as u64,
            peers_offset: self.peers_offset as u64,
            slots_offset: self.slots_offset as u64,
            total_size: self.total_size as u64,
            creator_pid,
            flags: if p.timestamps { FLAG_TIMESTAMPS } else { 0 },
            creator_start_time,
            _reserved: {
                let mut r = [0u64; 32];
                if let Some((dtype, shape)) = &p.reply {
                    r[RESERVED_REPLY_DTYPE] = dtype.code() as u64;
                    r[RESERVED_REPLY_RANK] = shape.len() as u64;
                    for (i, &d) in shape.iter().enumerate() {
                        r[RESERVED_REPLY_SHAPE + i] = d as u64;
                    }
                }
                r
            },
        }
    }
}

/// Why a header was rejected.
#[doc(hidden)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Fewer bytes than the fixed header.
    TooShort(usize),
    /// Not our magic.
    Magic(u64),
    /// Another format version.
    Version(u32),
    /// Inconsistent or out-of-range fields.
    Corrupt(String),
}

/// Validates a header: magic, version, every field in range, every derived offset equal to what
/// the primary fields imply, and the whole segment within `mapping_len` bytes.
///
/// Pure and total: any bytes give `Ok` or `Err`, without panicking, looping or allocating more
/// than the error message.
///
/// ```
/// use ndring::layout::{decode, Layout, Params, RingKind};
/// let layout = Layout::compute(Params {
///     kind: RingKind::Spsc, dtype: ndring::DType::U8, shape: vec![4, 4],
///     slots: 2, user_meta: 0, max_peers: 2, timestamps: false, reply: None,
/// }).unwrap();
/// let bytes = bytemuck::bytes_of(&layout.encode(1, 0)).to_vec();
/// assert_eq!(decode(&bytes, layout.total_size as u64).unwrap().0, layout);
/// assert!(decode(&bytes, layout.total_size as u64 - 1).is_err());
/// ```
#[doc(hidden)]
pub fn decode(bytes: &[u8], mapping_len: u64) -> Result<(Layout, Fixed), Rejection> {
    let size = std::mem::size_of::<Fixed>();
    if bytes.len() < size {
        return Err(Rejection::TooShort(bytes.len()));
    }
    let f: Fixed = bytemuck::pod_read_unaligned(&bytes[..size]);
    if f.magic != MAGIC {
        return Err(Rejection::Magic(f.magic));
    }
    if f.version != VERSION {
        return Err(Rejection::Version(f.version));
    }
    let bad = |s: String| Err(Rejection::Corrupt(s));
    if f.fixed_size as usize != FIXED_SIZE {
        return bad(format!(
            "fixed header size {} (expected {FIXED_SIZE})",
            f.fixed_size
        ));
    }
    let Some(kind) = RingKind::from_code(f.kind) else {
        return bad(format!("unknown ring kind {}", f.kind));
    };
    let Some(dtype) = DType::from_code(f.dtype) else {
        return bad(format!("unknown element type code {}", f.dtype));
    };
    if f.elem_size as usize != dtype.size() || f.elem_align as usize != dtype.align() {
        return bad(format!(
            "element size/alignment {}/{} do not match {dtype} ({}/{})",
            f.elem_size,
            f.elem_align,
            dtype.size(),
            dtype.align()
        ));
    }
    let rank = f.rank as usize;
    if rank > MAX_RANK {
        return bad(format!("rank {rank} exceeds {MAX_RANK}"));
    }
    if f.shape[rank..].iter().any(|&d| d != 0) {
        return bad("shape has non-zero entries beyond its rank".into());
    }
    let mut shape = Vec::with_capacity(rank);
    for &d in &f.shape[..rank] {
        match usize::try_from(d) {
            Ok(d) => shape.push(d),
            Err(_) => return bad(format!("dimension {d} does not fit this machine")),
        }
    }
    if f.flags & !KNOWN_FLAGS != 0 {
        return bad(format!("unknown flags {:#x}", f.flags & !KNOWN_FLAGS));
    }
    let reply = if kind == RingKind::Rpc {
        let r = &f._reserved;
        let Some(rdtype) = u32::try_from(r[RESERVED_REPLY_DTYPE])
            .ok()
            .and_then(DType::from_code)
        else {
            return bad(format!(
                "unknown reply element type code {}",
                r[RESERVED_REPLY_DTYPE]
            ));
        };
        let rank = r[RESERVED_REPLY_RANK];
        if rank > MAX_RANK as u64 {
            return bad(format!("reply rank {rank} exceeds {MAX_RANK}"));
        }
        let dims = &r[RESERVED_REPLY_SHAPE..RESERVED_REPLY_SHAPE + MAX_RANK];
        if dims[rank as usize..].iter().any(|&d| d != 0) {
            return bad("reply shape has non-zero entries beyond its rank".into());
        }
        let mut rshape = Vec::with_capacity(rank as usize);
        for &d in &dims[..rank as usize] {
            match usize::try_from(d) {
                Ok(d) => rshape.push(d),
                Err(_) => return bad(format!("reply dimension {d} does not fit this machine")),
            }
        }
        Some((rdtype, rshape))
    } else {
        None
    };
    if f._reserved[RESERVED_REPLY_DTYPE..RESERVED_REPLY_SHAPE + MAX_RANK]
        .iter()
        .any(|&w| w != 0)
        && reply.is_none()
    {
        return bad("reserved words are not zero".into());
    }
    let params = Params {
        kind,
        dtype,
        shape,
        slots: f.slots as usize,
        user_meta: f.user_meta as usize,
        max_peers: f.max_peers as usize,
        timestamps: f.flags & FLAG_TIMESTAMPS != 0,
        reply,
    };
    let layout = Layout::compute(params).map_err(|e| Rejection::Corrupt(e.to_string()))?;
    let fields = [
        ("payload_bytes", f.payload_bytes, layout.payload_bytes),
        ("payload_offset", f.payload_offset, layout.payload_offset),
        ("slot_stride", f.slot_stride, layout.slot_stride),
        ("control_offset", f.control_offset, CONTROL_OFFSET),
        ("index_offset", f.index_offset, layout.index_offset),
        ("peers_offset", f.peers_offset, layout.peers_offset),
        ("slots_offset", f.slots_offset, layout.slots_offset),
        ("total_size", f.total_size, layout.total_size),
    ];
    for (name, found, expected) in fields {
        if found != expected as u64 {
            return bad(format!("{name} is {found}, the layout implies {expected}"));
        }
    }
    if layout.total_size as u64 > mapping_len {
        return bad(format!(
            "the header describes {} bytes but the segment has only {mapping_len}",
            layout.total_size
        ));
    }
    Ok((layout, f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        Params {
            kind: RingKind::Mpmc,
            dtype: DType::U16,
            shape: vec![3, 5, 7],
            slots: 4,
            user_meta: 64,
            max_peers: 8,
            timestamps: true,
            reply: None,
        }
    }

    #[test]
    fn offsets_are_aligned_and_disjoint() {
        let l = Layout::compute(params()).unwrap();
        assert_eq!(l.payload_bytes, 3 * 5 * 7 * 2);
        assert_eq!(l.payload_offset % LINE, 0);
        assert_eq!(l.slot_stride % LINE, 0);
        assert_eq!(l.slots_offset % LINE, 0);
        assert!(l.payload_offset >= SLOT_CTRL_SIZE + 64);
        assert!(l.index_offset >= CONTROL_OFFSET + CONTROL_SIZE);
        assert!(l.peers_offset >= l.index_offset + 4 * 8);
        assert!(l.slots_offset >= l.peers_offset + 8 * LINE);
        assert_eq!(l.total_size, l.slots_offset + 4 * l.slot_stride);
    }

    /// Each parameter out of range is refused with what it was and the range it missed.
    #[test]
    fn compute_rejects_out_of_range() {
        let ovf = |shape: Vec<usize>| OutOfRange::Overflow { shape, slots: 4 };
        type Case = (fn(&mut Params), OutOfRange, &'static str);
        let cases: &[Case] = &[
            (
                |p| p.slots = 1,
                OutOfRange::Slots(1),
                "slot count 1 is outside 2..=65536",
            ),
            (
                |p| p.slots = MAX_SLOTS + 1,
                OutOfRange::Slots(MAX_SLOTS + 1),
                "65537",
            ),
            (
                |p| p.shape = vec![1; MAX_RANK + 1],
                OutOfRange::Rank(9),
                "rank 9 exceeds the maximum 8",
            ),
            (
                |p| p.shape = vec![4, 0],
                OutOfRange::ZeroDimension {
                    index: 1,
                    shape: vec![4, 0],
                },
                "dimension 1 of shape [4, 0] is zero",
            ),
            (
                |p| p.shape = vec![usize::MAX, 2],
                ovf(vec![usize::MAX, 2]),
                "slots overflows",
            ),
            (
                |p| p.shape = vec![1 << 40, 1 << 20],
                ovf(vec![1 << 40, 1 << 20]),
                "overflows",
            ),
            (
                |p| p.user_meta = MAX_USER_META + 1,
                OutOfRange::UserMeta(4097),
                "maximum 4096",
            ),
            (
                |p| p.max_peers = 1,
                OutOfRange::Peers(1),
                "peer table size 1 is outside 2..=1024",
            ),
        ];
        for (mutate, expected, says) in cases {
            let mut p = params();
            mutate(&mut p);
            let refused = Layout::compute(p).unwrap_err();
            assert_eq!(&refused, expected);
            assert!(refused.to_string().contains(says), "{refused}");
        }
    }

    /// Every element type's code, size and alignment are written and read back; an unknown code
    /// and a size or alignment not the type's are rejected.
    #[test]
    fn every_dtype_decodes() {
        for dtype in DType::ALL {
            let l = Layout::compute(Params { dtype, ..params() }).unwrap();
            assert_eq!(l.payload_bytes, 3 * 5 * 7 * dtype.size());
            assert_eq!(l.payload_offset % dtype.align(), 0);
            assert_eq!(l.slot_stride % dtype.align(), 0);
            let f = l.encode(1, 2);
            assert_eq!(
                (f.dtype, f.elem_size, f.elem_align),
                (dtype.code(), dtype.size() as u32, dtype.align() as u32)
            );
            let (back, _) = decode(bytemuck::bytes_of(&f), l.total_size as u64).unwrap();
            assert_eq!(back.params.dtype, dtype);
            let mutations: &[fn(&mut Fixed)] = &[
                |g| g.dtype = DType::ALL.len() as u32 + 1,
                |g| g.elem_size *= 2,
                |g| g.elem_align *= 2,
            ];
            for m in mutations {
                let mut g = f;
                m(&mut g);
                assert!(matches!(
                    decode(bytemuck::bytes_of(&g), u64::MAX),
                    Err(Rejection::Corrupt(_))
                ));
            }
        }
    }

    #[test]
    fn decode_round_trips_and_checks_each_field() {
        let l = Layout::compute(params()).unwrap();
        let f = l.encode(42, 7);
        let bytes = bytemuck::bytes_of(&f);
        let (back, fixed) = decode(bytes, l.total_size as u64).unwrap();
        assert_eq!(back, l);
        assert_eq!(fixed.creator_pid, 42);

        assert_eq!(
            decode(&bytes[..100], u64::MAX),
            Err(Rejection::TooShort(100))
        );
        let mut g = f;
        g.magic ^= 1;
        assert_eq!(
            decode(bytemuck::bytes_of(&g), u64::MAX),
            Err(Rejection::Magic(MAGIC ^ 1))
        );
        let mut g = f;
        g.version = VERSION + 1;
        assert_eq!(
            decode(bytemuck::bytes_of(&g), u64::MAX),
            Err(Rejection::Version(VERSION + 1))
        );
        let mutations: &[fn(&mut Fixed)] = &[
            |g| g.kind = 9,
            |g| g.dtype = 0,
            |g| g.elem_size = 4,
            |g| g.rank = 9,
            |g| g.shape[5] = 1,
            |g| g.shape[0] = 0,
            |g| g.slots = 0,
            |g| g.payload_bytes += 1,
            |g| g.payload_offset = 0,
            |g| g.slot_stride -= 128,
            |g| g.slots_offset += 128,
            |g| g.peers_offset = 0,
            |g| g.index_offset = 1,
            |g| g.total_size = u64::MAX,
            |g| g.fixed_size = 8,
            |g| g.control_offset = 0,
            |g| g.flags = 2,
        ];
        for (i, m) in mutations.iter().enumerate() {
            let mut g = f;
            m(&mut g);
            match decode(bytemuck::bytes_of(&g), u64::MAX) {
                Err(Rejection::Corrupt(_)) => {}
                other => panic!("mutation {i} gave {other:?}"),
            }
        }
        // The mapping must hold everything the header describes.
        assert!(matches!(
            decode(bytes, l.total_size as u64 - 1),
            Err(Rejection::Corrupt(r)) if r.contains("only")
        ));
    }
}

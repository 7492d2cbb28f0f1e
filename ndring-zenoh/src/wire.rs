//! What travels with each frame: the stream's description in the sample's encoding, the frame's
//! sequence number, timestamp and user metadata in its attachment, the array's bytes as payload.
//!
//! Encoding: `application/octet-stream;ndring/1 dtype=u8 shape=480,640,3 kind=spsc slots=4
//! meta=64 origin=PID` (schema after the `;`; `origin`, the source ring's creator, is optional).
//! Attachment: `seq: u64 LE`, `timestamp_ns: u64 LE` (0: the ring records none), `sender: u64
//! LE` (a random number each sending bridge draws when it starts: tells a restarted bridge's
//! frames from its dead predecessor's, still in flight), then the slot's user-metadata bytes.

use std::fmt;

use ndring::{DType, RingKind, Segment};

use crate::error::kind_name;

/// Bytes of the attachment before the user metadata.
pub const ATTACHMENT_HEADER: usize = 24;

const SCHEMA_PREFIX: &str = "ndring/1";

/// A stream's description: what a ring on the receiving side must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameDesc {
    /// Element type.
    pub dtype: DType,
    /// Shape of every frame.
    pub shape: Vec<usize>,
    /// Kind of the source ring (the receiving side creates the same kind).
    pub kind: RingKind,
    /// Slots of the source ring (the receiving side creates as many).
    pub slots: usize,
    /// Bytes of user metadata per slot.
    pub meta: usize,
    /// The source ring's creator (pid; 0: unknown): a frame from another creator begins a new
    /// stream (the source ring was created anew).
    pub origin: u32,
}

impl FrameDesc {
    /// The description of an open ring.
    ///
    /// ```
    /// # let name = format!("/ndz-doc-desc-{}", std::process::id());
    /// let tx = ndring::Producer::<u8, ndarray::Ix2>::create(&name, (2, 3), &ndring::Config::spsc())?;
    /// let d = ndring_zenoh::FrameDesc::of(tx.segment());
    /// assert_eq!((d.shape.as_slice(), d.payload_len()), (&[2, 3][..], 6));
    /// # Ok::<(), ndring::Error>(())
    /// ```
    pub fn of(seg: &Segment) -> FrameDesc {
        FrameDesc {
            dtype: seg.dtype(),
            shape: seg.shape().to_vec(),
            kind: seg.kind(),
            slots: seg.slot_count(),
            meta: seg.user_meta_size(),
            origin: seg.creator_pid(),
        }
    }

    /// Bytes of one frame's array.
    ///
    /// ```
    /// let d = ndring_zenoh::FrameDesc::parse("ndring/1 dtype=u16 shape=4,5 kind=spsc slots=4 meta=8").unwrap();
    /// assert_eq!(d.payload_len(), 40);
    /// ```
    pub fn payload_len(&self) -> usize {
        self.shape.iter().product::<usize>() * self.dtype.size()
    }

    /// The encoding schema carrying this description.
    ///
    /// ```
    /// let d = ndring_zenoh::FrameDesc::parse("ndring/1 dtype=u8 shape=2 kind=broadcast slots=8 meta=0").unwrap();
    /// assert_eq!(ndring_zenoh::FrameDesc::parse(&d.schema()), Some(d.clone()));
    /// // Every element type crosses, under its ndring name.
    /// for dtype in ndring::DType::ALL {
    ///     let e = ndring_zenoh::FrameDesc { dtype, ..d.clone() };
    ///     assert!(e.schema().contains(&format!(" dtype={} ", dtype.name())));
    ///     assert_eq!(ndring_zenoh::FrameDesc::parse(&e.schema()), Some(e));
    /// }
    /// ```
    pub fn schema(&self) -> String {
        let shape: Vec<String> = self.shape.iter().map(|n| n.to_string()).collect();
        format!(
            "{SCHEMA_PREFIX} dtype={} shape={} kind={} slots={} meta={} origin={}",
            self.dtype,
            shape.join(","),
            kind_name(self.kind),
            self.slots,
            self.meta,
            self.origin
        )
    }

    /// Parses a schema written by [`FrameDesc::schema`]; `None` if it is not one.
    ///
    /// ```
    /// assert!(ndring_zenoh::FrameDesc::parse("text/plain").is_none());
    /// ```
    pub fn parse(schema: &str) -> Option<FrameDesc> {
        let mut words = schema.split(' ');
        if words.next()? != SCHEMA_PREFIX {
            return None;
        }
        let (mut dtype, mut shape, mut kind, mut slots, mut meta) = (None, None, None, None, None);
        let mut origin = 0;
        for word in words {
            let (k, v) = word.split_once('=')?;
            match k {
                "dtype" => dtype = DType::from_name(v),
                "shape" => {
                    shape = v
                        .split(',')
                        .map(|n| n.parse::<usize>().ok())
                        .collect::<Option<Vec<_>>>()
                }
                "kind" => {
                    kind = match v {
                        "spsc" => Some(RingKind::Spsc),
                        "mpmc" => Some(RingKind::Mpmc),
                        "broadcast" => Some(RingKind::Broadcast),
                        _ => None,
                    }
                }
                "slots" => slots = v.parse().ok(),
                "meta" => meta = v.parse().ok(),
                "origin" => origin = v.parse().ok()?,
                _ => {} // unknown words are future extensions
            }
        }
        let desc = FrameDesc {
            dtype: dtype?,
            shape: shape?,
            kind: kind?,
            slots: slots?,
            meta: meta?,
            origin,
        };
        // A hostile description must not make us create an absurd ring.
        desc.shape
            .iter()
            .try_fold(desc.dtype.size(), |acc, &n| acc.checked_mul(n))?;
        Some(desc)
    }
}

impl fmt::Display for FrameDesc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:?} ({} ring, {} slots, {} B metadata)",
            self.dtype,
            self.shape,
            kind_name(self.kind),
            self.slots,
            self.meta
        )
    }
}

/// The per-frame part of the attachment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Sequence number in the source ring.
    pub seq: u64,
    /// `CLOCK_MONOTONIC` ns at publish on the source host, if the source ring records it.
    pub timestamp_ns: Option<u64>,
    /// The sending bridge: drawn at random when it starts, the same on all its frames.
    pub sender: u64,
}

impl FrameHeader {
    /// A sender tag for a bridge starting now: random (std's per-process hash keys), mixed with
    /// the pid and the clock, so two bridges, or one restarted, practically never share one.
    ///
    /// ```
    /// assert_ne!(ndring_zenoh::FrameHeader::new_sender(), ndring_zenoh::FrameHeader::new_sender());
    /// ```
    pub fn new_sender() -> u64 {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        h.write_u128(now.as_nanos());
        h.finish()
    }

    /// Writes the header followed by `meta` into `out` (cleared first).
    pub fn encode(&self, meta: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.timestamp_ns.unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&self.sender.to_le_bytes());
        out.extend_from_slice(meta);
    }

    /// Splits an attachment into the header and the user metadata.
    ///
    /// ```
    /// use ndring_zenoh::FrameHeader;
    /// let h = FrameHeader { seq: 7, timestamp_ns: Some(9), sender: 3 };
    /// let mut buf = Vec::new();
    /// h.encode(&[1, 2], &mut buf);
    /// assert_eq!(FrameHeader::decode(&buf), Some((h, &[1u8, 2][..])));
    /// ```
    pub fn decode(bytes: &[u8]) -> Option<(FrameHeader, &[u8])> {
        let seq = u64::from_le_bytes(bytes.get(0..8)?.try_into().ok()?);
        let ts = u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
        let sender = u64::from_le_bytes(bytes.get(16..24)?.try_into().ok()?);
        Some((
            FrameHeader {
                seq,
                timestamp_ns: (ts != 0).then_some(ts),
                sender,
            },
            &bytes[ATTACHMENT_HEADER..],
        ))
    }
}

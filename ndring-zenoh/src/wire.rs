//! What travels with each frame: the stream's description in the sample's encoding, the frame's
//! sequence number, timestamp and user metadata in its attachment, the array's bytes as payload.
//!
//! Encoding: `application/octet-stream;ndring/2 dtype=u8 shape=480,640,3 kind=spsc slots=4
//! meta=64 origin=PID` (schema after the `;`; `origin`, the source ring's creator, is optional).
//! Attachment ([`FrameHeader`], eight `u64` LE, then the slot's user-metadata bytes): `seq`,
//! `timestamp_ns` (0: the ring records none), `sender` (a random number each sending bridge
//! draws when it starts: tells a restarted bridge's frames from its dead predecessor's, still in
//! flight), `checksum` (xxh3 of payload and metadata, [`crate::checksum`]), `floor` (the oldest
//! frame this sender can still send), and the acknowledgement basis (`basis_next`,
//! `basis_tail`, `basis_ring`: the last [`Ack`] the sender received, which lets a restarted
//! receiving bridge tell the frames its predecessor wrote).
//!
//! Acknowledgements ([`Ack`]) travel back on [`ack_key`]; the end of a stream ([`EndMark`]) is
//! a `delete` on the key.

use std::fmt;

use ndring::{DType, RingKind, Segment};

use crate::error::kind_name;

/// Bytes of the attachment before the user metadata.
pub const ATTACHMENT_HEADER: usize = 64;

// 2: checksum, floor and acknowledgement basis in the attachment (a /1 bridge cannot read them).
const SCHEMA_PREFIX: &str = "ndring/2";

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
    /// let d = ndring_zenoh::FrameDesc::parse("ndring/2 dtype=u16 shape=4,5 kind=spsc slots=4 meta=8").unwrap();
    /// assert_eq!(d.payload_len(), 40);
    /// ```
    pub fn payload_len(&self) -> usize {
        self.shape.iter().product::<usize>() * self.dtype.size()
    }

    /// The encoding schema carrying this description.
    ///
    /// ```
    /// let d = ndring_zenoh::FrameDesc::parse("ndring/2 dtype=u8 shape=2 kind=broadcast slots=8 meta=0").unwrap();
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameHeader {
    /// Sequence number in the source ring.
    pub seq: u64,
    /// `CLOCK_MONOTONIC` ns at publish on the source host, if the source ring records it.
    pub timestamp_ns: Option<u64>,
    /// The sending bridge: drawn at random when it starts, the same on all its frames.
    pub sender: u64,
    /// xxh3 of the payload and the user metadata, seeded with `seq` ([`crate::checksum`]).
    pub checksum: u64,
    /// The oldest sequence number this sender can still send (queue rings: frames before it
    /// were acknowledged, or lost with a killed predecessor; 0: unknown).
    pub floor: u64,
    /// The last acknowledgement the sender received (all zero: none).
    pub basis: Ack,
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
        for word in [
            self.seq,
            self.timestamp_ns.unwrap_or(0),
            self.sender,
            self.checksum,
            self.floor,
            self.basis.next,
            self.basis.tail,
            self.basis.ring,
        ] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(meta);
    }

    /// Splits an attachment into the header and the user metadata.
    ///
    /// ```
    /// use ndring_zenoh::{Ack, FrameHeader};
    /// let basis = Ack { next: 5, tail: 4, ring: 77, ..Ack::default() };
    /// let h = FrameHeader { seq: 7, timestamp_ns: Some(9), sender: 3, checksum: 11, floor: 6, basis };
    /// let mut buf = Vec::new();
    /// h.encode(&[1, 2], &mut buf);
    /// assert_eq!(FrameHeader::decode(&buf), Some((h, &[1u8, 2][..])));
    /// assert_eq!(FrameHeader::decode(&buf[..63]), None);
    /// ```
    pub fn decode(bytes: &[u8]) -> Option<(FrameHeader, &[u8])> {
        let w = |i: usize| words(bytes, i);
        let ts = w(1)?;
        Some((
            FrameHeader {
                seq: w(0)?,
                timestamp_ns: (ts != 0).then_some(ts),
                sender: w(2)?,
                checksum: w(3)?,
                floor: w(4)?,
                basis: Ack {
                    next: w(5)?,
                    tail: w(6)?,
                    ring: w(7)?,
                    ..Ack::default()
                },
            },
            &bytes[ATTACHMENT_HEADER..],
        ))
    }
}

/// Word `i` (u64 LE) of `bytes`.
fn words(bytes: &[u8], i: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        bytes.get(i * 8..i * 8 + 8)?.try_into().ok()?,
    ))
}

/// The key acknowledgements of the stream on `key` travel on: a verbatim chunk (`@…`), which
/// no wildcard of a user's subscription matches.
///
/// ```
/// assert_eq!(ndring_zenoh::ack_key("lab/cam0"), "lab/cam0/@ndring/ack");
/// ```
pub fn ack_key(key: &str) -> String {
    format!("{key}/@ndring/ack")
}

/// What the receiving bridge has written (queue rings): sent back after frames are written,
/// and every [`Ack`] interval while idle. Cumulative: one lost is covered by the next.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ack {
    /// The receiving bridge (drawn at start, as [`FrameHeader::sender`]).
    pub receiver: u64,
    /// The sender whose stream this acknowledges (its tag).
    pub sender: u64,
    /// Every frame before this sequence number is in the destination ring (or was counted as
    /// lost): the sender may release them.
    pub next: u64,
    /// The destination ring's `tail` once frame `next - 1` was written.
    pub tail: u64,
    /// The destination ring's creator (pid): `tail` counts positions of that ring.
    pub ring: u64,
    /// A frame after a hole arrived (it was not written): send again from `next`.
    pub resend: bool,
    /// The sender's end-of-stream mark arrived (the sender may stop sending it).
    pub ended: bool,
}

impl Ack {
    /// Bytes of an encoded acknowledgement.
    pub const LEN: usize = 41;

    const RESEND: u8 = 1;
    const ENDED: u8 = 2;

    /// The acknowledgement as bytes.
    ///
    /// ```
    /// use ndring_zenoh::Ack;
    /// let a = Ack { receiver: 1, sender: 2, next: 3, tail: 4, ring: 5, resend: true, ended: false };
    /// assert_eq!(Ack::decode(&a.encode()), Some(a));
    /// assert_eq!(Ack::decode(&a.encode()[..40]), None);
    /// ```
    pub fn encode(&self) -> [u8; Ack::LEN] {
        let mut out = [0u8; Ack::LEN];
        for (i, w) in [self.receiver, self.sender, self.next, self.tail, self.ring]
            .into_iter()
            .enumerate()
        {
            out[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
        out[40] =
            if self.resend { Ack::RESEND } else { 0 } | if self.ended { Ack::ENDED } else { 0 };
        out
    }

    /// Parses [`Ack::encode`]'s bytes; `None` if they are not an acknowledgement.
    pub fn decode(bytes: &[u8]) -> Option<Ack> {
        if bytes.len() != Ack::LEN {
            return None;
        }
        Some(Ack {
            receiver: words(bytes, 0)?,
            sender: words(bytes, 1)?,
            next: words(bytes, 2)?,
            tail: words(bytes, 3)?,
            ring: words(bytes, 4)?,
            resend: bytes[40] & Ack::RESEND != 0,
            ended: bytes[40] & Ack::ENDED != 0,
        })
    }
}

/// Why a stream ended, in its end mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// The source ring was closed: the receiving side closes its ring too.
    Closed,
    /// The source ring's producer died (or detached) without closing: the receiving side
    /// detaches, so its consumers see `Disconnected`, and attaches again with the next frame.
    ProducerGone,
}

/// The attachment of the end-of-stream mark (a `delete` on the key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndMark {
    /// The sending bridge.
    pub sender: u64,
    /// The newest frame of the source stream the sender knows of (0: none): frames after the
    /// last one received and up to it never arrived.
    pub last_seq: u64,
    /// Why the stream ended.
    pub reason: EndReason,
}

impl EndMark {
    /// The mark as bytes.
    ///
    /// ```
    /// use ndring_zenoh::{EndMark, EndReason};
    /// let m = EndMark { sender: 9, last_seq: 300, reason: EndReason::ProducerGone };
    /// assert_eq!(EndMark::decode(&m.encode()), Some(m));
    /// ```
    pub fn encode(&self) -> [u8; 17] {
        let mut out = [0u8; 17];
        out[..8].copy_from_slice(&self.sender.to_le_bytes());
        out[8..16].copy_from_slice(&self.last_seq.to_le_bytes());
        out[16] = match self.reason {
            EndReason::Closed => 0,
            EndReason::ProducerGone => 1,
        };
        out
    }

    /// Parses [`EndMark::encode`]'s bytes.
    pub fn decode(bytes: &[u8]) -> Option<EndMark> {
        Some(EndMark {
            sender: words(bytes, 0)?,
            last_seq: words(bytes, 1)?,
            reason: match bytes.get(16)? {
                0 => EndReason::Closed,
                1 => EndReason::ProducerGone,
                _ => return None,
            },
        })
    }
}

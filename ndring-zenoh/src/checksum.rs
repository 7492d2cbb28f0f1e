//! The end-to-end check of every frame: xxh3 (64 bits) of the payload followed by the user
//! metadata, seeded with the frame's sequence number, computed by the sending bridge and checked
//! by the receiving one before the frame is published in its ring.
//!
//! It catches what no layer below checks end to end: a payload put together wrongly on the way
//! (fragments of two messages, a buffer reused while still sent), and a frame published under
//! another's sequence number (the seed). The payload's hash (xxh3, seeded with the sequence
//! number) seeds the metadata's, so a contiguous payload is hashed in one call (no streaming
//! state to set up: a 64-byte frame costs tens of nanoseconds). The receiving side hashes each
//! chunk right after copying it into the ring's slot, while it is still in cache, so the check
//! adds no pass over memory there. `cargo bench --bench checksum` measures it per frame size.

use std::hash::Hasher;

use twox_hash::XxHash3_64;

/// Bytes copied, then hashed, at a time: small enough to stay in L2 between the two.
const CHUNK: usize = 64 << 10;

/// The checksum of frame `seq` whose payload is the concatenation of `parts`.
///
/// ```
/// use ndring_zenoh::checksum::frame_checksum;
/// let whole = frame_checksum(7, [&b"abcdef"[..]], b"m");
/// assert_eq!(frame_checksum(7, [&b"abc"[..], &b"def"[..]], b"m"), whole);
/// assert_ne!(frame_checksum(8, [&b"abcdef"[..]], b"m"), whole);
/// assert_ne!(frame_checksum(7, [&b"abcdeF"[..]], b"m"), whole);
/// ```
pub fn frame_checksum<'a>(seq: u64, parts: impl IntoIterator<Item = &'a [u8]>, meta: &[u8]) -> u64 {
    let mut parts = parts.into_iter();
    let first = parts.next().unwrap_or(&[]);
    let payload = match parts.next() {
        None => XxHash3_64::oneshot_with_seed(seq, first),
        Some(second) => {
            let mut h = XxHash3_64::with_seed(seq);
            h.write(first);
            h.write(second);
            for part in parts {
                h.write(part);
            }
            h.finish()
        }
    };
    with_meta(payload, meta)
}

/// The frame's checksum from its payload's hash and its metadata.
fn with_meta(payload: u64, meta: &[u8]) -> u64 {
    XxHash3_64::oneshot_with_seed(payload, meta)
}

/// Copies the concatenation of `parts` into `dst` (exactly as long) and returns the checksum of
/// frame `seq` over the copied bytes, hashing each chunk just after copying it.
///
/// ```
/// use ndring_zenoh::checksum::{copy_and_checksum, frame_checksum};
/// let src = vec![5u8; 200_000];
/// let mut dst = vec![0u8; 200_000];
/// let sum = copy_and_checksum(3, [&src[..150_000], &src[150_000..]], &mut dst, b"");
/// assert_eq!(dst, src);
/// assert_eq!(sum, frame_checksum(3, [&src[..]], b""));
/// ```
pub fn copy_and_checksum<'a>(
    seq: u64,
    parts: impl IntoIterator<Item = &'a [u8]>,
    dst: &mut [u8],
    meta: &[u8],
) -> u64 {
    let mut at = 0;
    if dst.len() <= CHUNK {
        // Small: copy, then hash the copy in one shot (no streaming state to set up).
        for part in parts {
            dst[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        assert_eq!(at, dst.len(), "the parts fill the destination exactly");
        return with_meta(XxHash3_64::oneshot_with_seed(seq, dst), meta);
    }
    let mut h = XxHash3_64::with_seed(seq);
    for part in parts {
        for chunk in part.chunks(CHUNK) {
            let to = &mut dst[at..at + chunk.len()];
            to.copy_from_slice(chunk);
            h.write(to);
            at += chunk.len();
        }
    }
    assert_eq!(at, dst.len(), "the parts fill the destination exactly");
    with_meta(h.finish(), meta)
}

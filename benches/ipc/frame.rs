//! The W3 frame workload, shared with `performance-comparison/` (which includes this file with
//! `#[path]`, so both measure exactly the same work): the producer copies a source frame into
//! the slot (a memcpy) and stamps word 0 with the frame's sequence number; the consumer reads
//! every byte as a wrapping sum of `u64` words and checks it. Both steps run at memory speed,
//! so the figure measures the transport, not the checksum (a byte sum through `u32` read only
//! ~2,200 1080p frames/s in one process here, slower than the transports it was measuring).
//!
//! Depends on `std` alone.

/// A 1920x1080 RGB frame: rows, columns, channels.
pub const HD: (usize, usize, usize) = (1080, 1920, 3);
/// A 3840x2160 RGB frame.
pub const UHD: (usize, usize, usize) = (2160, 3840, 3);

/// Bytes of a frame of `shape`.
pub const fn frame_bytes(shape: (usize, usize, usize)) -> usize {
    shape.0 * shape.1 * shape.2
}

/// Wrapping sum of `words`, in eight independent lanes so that it vectorises (and is not bound
/// by the latency of one add chain).
#[inline]
pub fn word_sum(words: &[u64]) -> u64 {
    let mut lanes = [0u64; 8];
    let mut chunks = words.chunks_exact(8);
    for c in &mut chunks {
        for (l, w) in lanes.iter_mut().zip(c) {
            *l = l.wrapping_add(*w);
        }
    }
    let mut sum = chunks
        .remainder()
        .iter()
        .fold(0u64, |a, w| a.wrapping_add(*w));
    for l in lanes {
        sum = sum.wrapping_add(l);
    }
    sum
}

/// `bytes` as `u64` words (frames are 8-byte multiples; slots and buffers are 8-aligned).
pub fn as_words(bytes: &[u8]) -> &[u64] {
    // SAFETY: every bit pattern is a valid u64; `align_to` returns the aligned middle part.
    let (pre, words, post) = unsafe { bytes.align_to::<u64>() };
    assert!(pre.is_empty() && post.is_empty(), "frame not 8-aligned");
    words
}

/// The source frame a producer copies from, and the sum a consumer must find.
pub struct Source {
    /// Frame bytes as words (a `Vec<u64>` so that it is 8-aligned).
    words: Vec<u64>,
    /// Wrapping sum of words 1.. (word 0 carries the sequence number).
    rest_sum: u64,
}

impl Source {
    /// A frame of `bytes` bytes (a multiple of 8) of varied content.
    pub fn new(bytes: usize) -> Source {
        assert_eq!(bytes % 8, 0, "frame bytes must be a multiple of 8");
        let words: Vec<u64> = (0..bytes as u64 / 8)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i >> 7))
            .collect();
        let rest_sum = word_sum(&words[1..]);
        Source { words, rest_sum }
    }

    /// Bytes per frame.
    pub fn bytes(&self) -> usize {
        self.words.len() * 8
    }

    /// Copies the source frame into `dst` and stamps word 0 with `k`.
    #[inline]
    pub fn write(&self, dst: &mut [u8], k: u64) {
        // SAFETY: plain bytes of an initialised Vec<u64>.
        let src =
            unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.bytes()) };
        dst.copy_from_slice(src);
        dst[..8].copy_from_slice(&k.to_ne_bytes());
    }

    /// Reads every word of `frame`; true if it is frame `k` intact.
    #[inline]
    pub fn check(&self, frame: &[u8], k: u64) -> bool {
        let words = as_words(frame);
        words.len() == self.words.len()
            && word_sum(words) == self.rest_sum.wrapping_add(k)
            && words[0] == k
    }
}

//! The copy-out of bytes that another process may be writing: the payload of a broadcast frame
//! (`Subscriber::recv_into`) or of the newest item (`Inspector::copy_newest`), read without
//! pinning it. The callers' protocols decide afterwards whether the copy is whole (a seqlock
//! check of the slot's stamp); this only makes a racing copy stale rather than undefined
//! behaviour, and works on a read-only mapping (loads only).
//!
//! Not under the `sync` shim: it reads a mapping through a raw pointer, which loom's atomics
//! (of another size) cannot stand for. The orderings around it are the callers', in
//! `broadcast.rs` and the loom models of the stamps.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};

/// Copies `dst.len()` bytes from `src` with relaxed atomic loads (8 bytes at a time, then
/// single bytes), so that a concurrent writer makes the copy stale, never undefined behaviour.
///
/// # Safety
/// `src` is 8-aligned and valid for `dst.len()` bytes of reads for the call, and is only ever
/// accessed atomically by this process while the call runs.
pub(crate) unsafe fn atomic_copy(src: *const u8, dst: &mut [u8]) {
    let words = dst.len() / 8;
    for (i, chunk) in dst.chunks_exact_mut(8).enumerate() {
        // SAFETY: i < words, so 8 bytes at src + 8i are in range and 8-aligned.
        let v = unsafe { (*src.cast::<AtomicU64>().add(i)).load(Relaxed) };
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in dst[words * 8..].iter_mut().enumerate() {
        // SAFETY: in range, as above; any address is aligned for a byte.
        *b = unsafe { (*src.add(words * 8 + i).cast::<AtomicU8>()).load(Relaxed) };
    }
}

#[cfg(test)]
mod tests {
    use super::atomic_copy;

    /// Every length, the words and the tail bytes, lands byte-exact.
    #[test]
    fn copies_every_length_byte_exact() {
        let src: Vec<u64> = (0..8u64).map(|i| 0x0101_0101_0101_0101 * (i + 1)).collect();
        // SAFETY: bytes of `src`, a Vec<u64> we own.
        let bytes = unsafe { std::slice::from_raw_parts(src.as_ptr().cast::<u8>(), 64) };
        for len in 0..=64 {
            let mut dst = vec![0u8; len];
            // SAFETY: `src` is 8-aligned and holds 64 >= len bytes; nothing else touches it.
            unsafe { atomic_copy(src.as_ptr().cast(), &mut dst) };
            assert_eq!(dst, bytes[..len]);
        }
    }
}

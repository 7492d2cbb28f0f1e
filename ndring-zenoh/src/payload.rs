//! Where an outgoing frame's bytes live while Zenoh sends them, when they cannot stay in the slot.
//!
//! A queue ring's frame is sent from its slot, held as a lease until acknowledged (see
//! `out.rs`). A broadcast ring's slot is not the reader's to hold: the writer overwrites it. Its
//! frame is copied once, into a buffer Zenoh then owns without copying again: a recycled heap
//! buffer (`bytes::Bytes::from_owner`: no allocation and no page fault after the first frames;
//! it returns to the pool only when Zenoh drops the last reference to the payload, so a buffer
//! is never refilled while Zenoh still sends it), or a Zenoh shared-memory buffer, which reaches
//! a subscriber on the same host as a reference. The checksum is computed during the copy.

use std::sync::{Arc, Mutex};

use zenoh::bytes::ZBytes;

use crate::BridgeError;
use crate::checksum::copy_and_checksum;

/// Heap buffers that return to the pool when Zenoh drops the payload.
#[derive(Clone, Default)]
pub(crate) struct BufferPool {
    free: Arc<Mutex<Vec<Vec<u8>>>>,
}

struct Pooled {
    buf: Vec<u8>,
    free: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        if let Ok(mut free) = self.free.lock() {
            // A few buffers are enough: Zenoh releases each payload once it is serialised.
            if free.len() < 8 {
                free.push(buf);
            }
        }
    }
}

impl BufferPool {
    /// A payload holding a copy of `bytes`, and the checksum of frame `seq` (with `meta`).
    pub(crate) fn copy(&self, seq: u64, bytes: &[u8], meta: &[u8]) -> (ZBytes, u64) {
        let mut buf = self
            .free
            .lock()
            .ok()
            .and_then(|mut f| f.pop())
            .unwrap_or_default();
        buf.resize(bytes.len(), 0);
        let sum = copy_and_checksum(seq, [bytes], &mut buf, meta);
        let payload = ZBytes::from(bytes::Bytes::from_owner(Pooled {
            buf,
            free: self.free.clone(),
        }));
        (payload, sum)
    }
}

/// The buffer an outgoing frame is copied into.
pub(crate) enum PayloadSource {
    Heap(BufferPool),
    #[cfg(feature = "shm")]
    Shm(zenoh::shm::ShmProvider<zenoh::shm::PosixShmProviderBackend>),
}

impl PayloadSource {
    /// Heap buffers, or (`shm_bytes > 0`, `shm` feature) a Zenoh shared-memory pool of that size.
    pub(crate) fn new(shm_bytes: usize) -> Result<PayloadSource, BridgeError> {
        if shm_bytes == 0 {
            return Ok(PayloadSource::Heap(BufferPool::default()));
        }
        #[cfg(feature = "shm")]
        {
            use zenoh::Wait;
            let provider = zenoh::shm::ShmProviderBuilder::default_backend(shm_bytes)
                .wait()
                .map_err(|e| {
                    BridgeError::Zenoh(format!("shared-memory pool of {shm_bytes} B: {e}"))
                })?;
            Ok(PayloadSource::Shm(provider))
        }
        #[cfg(not(feature = "shm"))]
        Err(BridgeError::Unsupported(
            "shared memory: built without the `shm` feature".into(),
        ))
    }

    /// A payload holding a copy of `bytes`, and the checksum of frame `seq` (with `meta`).
    pub(crate) fn copy(
        &self,
        seq: u64,
        bytes: &[u8],
        meta: &[u8],
    ) -> Result<(ZBytes, u64), BridgeError> {
        match self {
            PayloadSource::Heap(pool) => Ok(pool.copy(seq, bytes, meta)),
            #[cfg(feature = "shm")]
            PayloadSource::Shm(provider) => {
                use zenoh::Wait;
                use zenoh::shm::{BlockOn, GarbageCollect};
                // Waits until a subscriber releases a buffer when the pool is full.
                let mut buf = provider
                    .alloc(bytes.len())
                    .with_policy::<BlockOn<GarbageCollect>>()
                    .wait()
                    .map_err(|e| BridgeError::Zenoh(format!("shared-memory alloc: {e:?}")))?;
                let sum = copy_and_checksum(seq, [bytes], buf.as_mut(), meta);
                Ok((ZBytes::from(buf), sum))
            }
        }
    }
}

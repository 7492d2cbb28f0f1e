//! `out`: a ring on this host → frames on a Zenoh key expression.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use ndarray::IxDyn;
use ndring::{Consumer, Element, ReadSlot, RingKind, Segment, Start, Subscriber};
use zenoh::Wait;
use zenoh::bytes::Encoding;
use zenoh::pubsub::Publisher;
use zenoh::qos::{CongestionControl, Reliability};

use crate::payload::PayloadSource;
use crate::wire::{FrameDesc, FrameHeader};
use crate::{BridgeError, meta};

/// How often a waiting bridge checks its stop flag.
pub(crate) const POLL: Duration = Duration::from_millis(100);

/// Options of [`bridge_out`].
#[derive(Clone, Debug, Default)]
pub struct OutOptions {
    /// Copy frames into a Zenoh shared-memory pool of this many bytes instead of heap buffers
    /// (0: heap). A subscriber on the same host then receives a reference, not a copy. Needs
    /// the `shm` feature.
    pub shm_pool_bytes: usize,
    /// Set to stop the bridge (checked every 100 ms while it waits).
    pub stop: Option<Arc<AtomicBool>>,
    /// After the ring closes, wait this long before closing the session so that queued frames
    /// and the end-of-stream mark leave (default 500 ms).
    pub linger: Option<Duration>,
}

/// What [`bridge_out`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutStats {
    /// Frames published on the key.
    pub frames: u64,
    /// Payload bytes published.
    pub bytes: u64,
    /// Broadcast rings: frames the writer published that were never sent (overwritten before
    /// they were read, or passed over for a newer one).
    pub dropped: u64,
}

/// Publishes every frame of ring `ring` on `key` until the ring is closed (then publishes an
/// end-of-stream mark, a `delete` on `key`) or `options.stop` is set.
///
/// A queue ring (SPSC, MPMC) is read as a consumer and sent losslessly: reliable, and the
/// publisher blocks while the network is congested, so the ring's producer waits in turn. A
/// broadcast ring is read as a subscriber that always takes the newest frame; the publisher drops
/// frames while the network is congested; every frame skipped is counted (on this side in
/// [`OutStats::dropped`], on the receiving side as a gap in the sequence numbers).
///
/// ```no_run
/// let session = ndring_zenoh::SessionOptions::default().connect("tcp/10.0.0.2:7447").open()?;
/// let stats = ndring_zenoh::bridge_out(&session, "/cam0", "lab/cam0", &Default::default())?;
/// println!("{} frames sent", stats.frames);
/// # Ok::<(), ndring_zenoh::BridgeError>(())
/// ```
pub fn bridge_out(
    session: &zenoh::Session,
    ring: &str,
    key: &str,
    options: &OutOptions,
) -> Result<OutStats, BridgeError> {
    let seg = Segment::open(ring, Duration::from_secs(2)).map_err(BridgeError::ring(ring))?;
    ndring::with_dtype!(seg.dtype(), T => out_typed::<T>(session, seg, ring, key, options))
}

/// Publishes frames: one copy into a payload buffer, the description in the encoding, the
/// per-frame header and metadata in the attachment.
struct Sender<'s> {
    publisher: Publisher<'s>,
    source: PayloadSource,
    room: usize,
    attachment: Vec<u8>,
    /// This bridge's tag on every frame ([`FrameHeader::sender`]).
    tag: u64,
    stats: OutStats,
}

impl Sender<'_> {
    fn send<T: Element>(&mut self, slot: &ReadSlot<'_, T, IxDyn>) -> Result<(), BridgeError> {
        let elems = slot
            .as_slice()
            .ok_or_else(|| BridgeError::Unsupported("a slot not in standard layout".into()))?;
        let bytes: &[u8] = bytemuck::cast_slice(elems);
        let payload = self.source.copy(bytes)?;
        let header = FrameHeader {
            seq: slot.seq(),
            timestamp_ns: slot.timestamp_ns(),
            sender: self.tag,
        };
        self.attachment.clear();
        header.encode(&[], &mut self.attachment);
        meta::read(slot, self.room, &mut self.attachment);
        self.publisher
            .put(payload)
            .attachment(self.attachment.as_slice())
            .wait()
            .map_err(BridgeError::zenoh)?;
        self.stats.frames += 1;
        self.stats.bytes += bytes.len() as u64;
        Ok(())
    }
}

fn out_typed<T: Element>(
    session: &zenoh::Session,
    seg: Segment,
    ring: &str,
    key: &str,
    options: &OutOptions,
) -> Result<OutStats, BridgeError> {
    let desc = FrameDesc::of(&seg);
    let lossless = seg.kind().is_queue();
    let encoding = Encoding::APPLICATION_OCTET_STREAM.with_schema(desc.schema());
    let publisher = session
        .declare_publisher(key.to_string())
        .encoding(encoding)
        .reliability(Reliability::Reliable)
        .congestion_control(if lossless {
            CongestionControl::Block
        } else {
            CongestionControl::Drop
        })
        .wait()
        .map_err(BridgeError::zenoh)?;
    // Lossless means a frame leaves the ring only when a subscriber is there to take it: while
    // none matches the key, the bridge leaves the frames in the ring (its producer then waits).
    let matched = Arc::new(AtomicBool::new(false));
    let flag = matched.clone();
    let _listener = publisher
        .matching_listener()
        .callback(move |status| flag.store(status.matching(), Relaxed))
        .wait()
        .map_err(BridgeError::zenoh)?;
    let now = publisher
        .matching_status()
        .wait()
        .map_err(BridgeError::zenoh)?;
    matched.fetch_or(now.matching(), Relaxed);
    let stopped = || options.stop.as_ref().is_some_and(|s| s.load(Relaxed));
    let wait_for_subscriber = || {
        while !matched.load(Relaxed) && !stopped() {
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let mut sender = Sender {
        publisher,
        source: PayloadSource::new(options.shm_pool_bytes)?,
        room: seg.user_meta_size(),
        attachment: Vec::with_capacity(64 + seg.user_meta_size()),
        tag: FrameHeader::new_sender(),
        stats: OutStats::default(),
    };
    match seg.kind() {
        // A shared array is not a stream: nothing tells which of its states to send.
        RingKind::Array => {
            return Err(BridgeError::ring(ring)(ndring::Error::KindMismatch {
                expected: "a ring (SPSC, MPMC or broadcast)",
                found: RingKind::Array,
            }));
        }
        RingKind::Spsc | RingKind::Mpmc => {
            // The consumer role is taken at once (a restarted bridge takes over from a dead one
            // within the ring's grace period, so the producer does not see `Disconnected`), but
            // no frame is read before a subscriber is there to take it.
            let mut rx =
                Consumer::<T, IxDyn>::from_segment(seg).map_err(BridgeError::ring(ring))?;
            while !stopped() {
                wait_for_subscriber();
                match rx.recv_timeout(POLL) {
                    Ok(slot) => sender.send(&slot)?,
                    Err(ndring::Error::Timeout) => {}
                    Err(ndring::Error::Disconnected { .. }) => std::thread::sleep(POLL / 10),
                    Err(ndring::Error::Closed) => break,
                    Err(e) => return Err(BridgeError::ring(ring)(e)),
                }
            }
        }
        RingKind::Broadcast => {
            // Latest-frame: subscribed once a receiver is there (frames before are not wanted).
            wait_for_subscriber();
            let mut rx = Subscriber::<T, IxDyn>::from_segment(seg, Start::Newest)
                .map_err(BridgeError::ring(ring))?;
            while !stopped() {
                match rx.latest_timeout(POLL) {
                    Ok(slot) => sender.send(&slot)?,
                    Err(ndring::Error::Timeout | ndring::Error::Lagged { .. }) => {}
                    Err(ndring::Error::Disconnected { .. }) => std::thread::sleep(POLL / 10),
                    Err(ndring::Error::Closed) => break,
                    Err(e) => return Err(BridgeError::ring(ring)(e)),
                }
                sender.stats.dropped = rx.missed_total() + rx.skipped_total();
            }
        }
    }
    if !stopped() {
        // End of stream, sent reliably even when frames are not.
        session
            .delete(key.to_string())
            .congestion_control(CongestionControl::Block)
            .wait()
            .map_err(BridgeError::zenoh)?;
        std::thread::sleep(options.linger.unwrap_or(Duration::from_millis(500)));
    }
    Ok(sender.stats)
}

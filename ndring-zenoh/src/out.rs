//! `out`: a ring on this host → frames on a Zenoh key expression.
//!
//! A queue ring is read through leases ([`ndring::LeaseConsumer`]): a frame stays held in the
//! source ring until the receiving bridge acknowledges it ([`crate::Ack`]), and is sent again
//! from the ring after a link was lost, a frame failed its check on the far side, or no
//! acknowledgement came for a while. At most `slots - 1` frames are held: during a partition the
//! ring fills and its producer waits, as it would for a slow local consumer.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use ndarray::IxDyn;
use ndring::{
    Consumer, Element, LeaseConsumer, ReadLease, RingKind, Role, Segment, Start, Subscriber,
};
use zenoh::Wait;
use zenoh::bytes::{Encoding, ZBytes};
use zenoh::pubsub::Publisher;
use zenoh::qos::{CongestionControl, Reliability};

use crate::checksum::frame_checksum;
use crate::payload::PayloadSource;
use crate::wire::{Ack, EndMark, EndReason, FrameDesc, FrameHeader, ack_key};
use crate::{BridgeError, meta};

/// How often a waiting bridge checks its stop flag.
pub(crate) const POLL: Duration = Duration::from_millis(100);

/// No acknowledgement for this long (at least) while frames are held: send them again.
const MIN_RESEND_AFTER: Duration = Duration::from_secs(1);

/// Options of [`bridge_out`].
#[derive(Clone, Debug, Default)]
pub struct OutOptions {
    /// Copy frames into a Zenoh shared-memory pool of this many bytes instead of sending them
    /// from the ring's slot (0: from the slot). A subscriber on the same host then receives a
    /// reference, not a copy. Needs the `shm` feature.
    pub shm_pool_bytes: usize,
    /// Set to stop the bridge (checked every 100 ms while it waits).
    pub stop: Option<Arc<AtomicBool>>,
    /// After the ring closes, wait this long before closing the session so that queued frames
    /// and the end-of-stream mark leave (default 500 ms).
    pub linger: Option<Duration>,
    /// Log the counters (target `ndring_bridge::stats`, level info) this often.
    pub stats_every: Option<Duration>,
}

/// What [`bridge_out`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutStats {
    /// Frames read from the ring and published on the key (each once; see `resent`).
    pub frames: u64,
    /// Payload bytes of those frames.
    pub bytes: u64,
    /// Broadcast rings: frames the writer published that were never sent (overwritten before
    /// they were read, or passed over for a newer one).
    pub dropped: u64,
    /// Queue rings: frames the receiving bridge acknowledged.
    pub acked: u64,
    /// Queue rings: frames sent again (link lost, a failed check, no acknowledgement in time).
    pub resent: u64,
    /// Queue rings: frames read from the ring whose acknowledgement never came before this
    /// bridge ended (the ring has given them up; the receiving side counts those that never
    /// arrived).
    pub unacked: u64,
    /// Times the link to the receiving side was lost (no subscriber matched any more).
    pub link_lost: u64,
}

/// Publishes every frame of ring `ring` on `key` until the ring is closed (then publishes an
/// end-of-stream mark, a `delete` on `key`) or `options.stop` is set.
///
/// A queue ring (SPSC, MPMC) is read as a consumer and sent losslessly: each frame stays in the
/// ring until the receiving bridge acknowledges it, and is sent again if needed; while no
/// receiver is there, or none acknowledges, the ring fills and its producer waits. A broadcast
/// ring is read as a subscriber that always takes the newest frame; the publisher drops frames
/// while the network is congested; every frame skipped is counted (on this side in
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
    if matches!(seg.kind(), RingKind::Array | RingKind::Rpc) {
        return Err(BridgeError::Unsupported(format!(
            "{ring} is {}, not a ring: the bridge carries a stream of frames",
            seg.kind()
        )));
    }
    ndring::with_dtype!(seg.dtype(), T => out_typed::<T>(session, seg, ring, key, options))
}

/// Whether a subscriber matches the key, and how many times one came back.
#[derive(Default)]
struct Link {
    matched: AtomicBool,
    /// Incremented each time a subscriber matches again after none did.
    returns: AtomicU64,
    lost: AtomicU64,
}

/// The newest acknowledgement for this sender, and whether one asks to send again.
#[derive(Default)]
struct Acks {
    state: Mutex<AckState>,
    arrived: Condvar,
}

#[derive(Default)]
struct AckState {
    latest: Option<Ack>,
    /// `next` of the newest acknowledgement asking to send again, not yet acted on.
    resend: Option<u64>,
    /// The receiving side has the end-of-stream mark.
    ended: bool,
}

/// A frame held in the source ring until acknowledged.
struct Held {
    seq: u64,
    /// The slot's bytes, owning the lease: the slot returns to the ring when this and every
    /// payload Zenoh still holds are dropped.
    bytes: bytes::Bytes,
    header: FrameHeader,
    meta: Vec<u8>,
}

/// A lease's bytes, for `Bytes::from_owner`.
struct LeaseBytes<T: Element>(ReadLease<T, IxDyn>);

impl<T: Element> AsRef<[u8]> for LeaseBytes<T> {
    fn as_ref(&self) -> &[u8] {
        // A ring slot is in standard layout (checked when the frame was read).
        let elems = self.0.view().to_slice().unwrap_or(&[]);
        bytemuck::cast_slice(elems)
    }
}

/// Publishes frames: the description in the encoding, the per-frame header and metadata in the
/// attachment.
struct Sender<'s> {
    publisher: Publisher<'s>,
    source: PayloadSource,
    attachment: Vec<u8>,
    /// This bridge's tag on every frame ([`FrameHeader::sender`]).
    tag: u64,
    key: String,
    stats: OutStats,
}

impl Sender<'_> {
    /// Publishes a frame; a Zenoh error is logged, not returned: the frame is sent again (queue
    /// rings) or counted as a gap on the far side (broadcast).
    fn put(&mut self, payload: ZBytes, header: &FrameHeader, meta: &[u8]) {
        header.encode(meta, &mut self.attachment);
        if let Err(e) = self
            .publisher
            .put(payload)
            .attachment(self.attachment.as_slice())
            .wait()
        {
            tracing::warn!(key = %self.key, seq = header.seq, "publish failed: {e}");
        }
    }

    fn send_held(&mut self, h: &Held, floor: u64, basis: Ack) -> Result<(), BridgeError> {
        let payload = match &self.source {
            PayloadSource::Heap(_) => ZBytes::from(h.bytes.clone()),
            source => source.copy(h.seq, &h.bytes, &h.meta)?.0,
        };
        let header = FrameHeader {
            floor,
            basis,
            ..h.header
        };
        self.put(payload, &header, &h.meta);
        Ok(())
    }

    fn end(&self, session: &zenoh::Session, last_seq: u64, reason: EndReason) {
        let mark = EndMark {
            sender: self.tag,
            last_seq,
            reason,
        };
        if let Err(e) = session
            .delete(self.key.clone())
            .congestion_control(CongestionControl::Block)
            .attachment(&mark.encode()[..])
            .wait()
        {
            tracing::warn!(key = %self.key, "end-of-stream mark not sent: {e}");
        }
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
    // A frame leaves the ring only when a subscriber is there to take it: while none matches
    // the key, the bridge leaves the frames in the ring (its producer then waits).
    let link = Arc::new(Link::default());
    let watch = link.clone();
    let log_key = key.to_string();
    let _listener = publisher
        .matching_listener()
        .callback(move |status| {
            let was = watch.matched.swap(status.matching(), Relaxed);
            match (was, status.matching()) {
                (false, true) if watch.lost.load(Relaxed) > 0 => {
                    watch.returns.fetch_add(1, Relaxed);
                    tracing::info!(key = %log_key, "reconnected: a receiving bridge matches again");
                }
                (false, true) => {
                    tracing::info!(key = %log_key, "connected: a receiving bridge matches")
                }
                (true, false) => {
                    watch.lost.fetch_add(1, Relaxed);
                    tracing::warn!(key = %log_key, "link lost: no receiving bridge matches");
                }
                _ => {}
            }
        })
        .wait()
        .map_err(BridgeError::zenoh)?;
    let now = publisher
        .matching_status()
        .wait()
        .map_err(BridgeError::zenoh)?;
    if now.matching() && !link.matched.swap(true, Relaxed) {
        tracing::info!(key, "connected: a receiving bridge matches");
    }
    let tag = FrameHeader::new_sender();
    let acks = Arc::new(Acks::default());
    let inbox = acks.clone();
    let _ack_subscriber = session
        .declare_subscriber(ack_key(key))
        .callback(move |sample| {
            let Some(ack) = Ack::decode(&sample.payload().to_bytes()) else {
                return;
            };
            if ack.sender != tag {
                return;
            }
            let mut s = inbox.state.lock().unwrap_or_else(|p| p.into_inner());
            if ack.ended {
                s.ended = true;
                inbox.arrived.notify_all();
                return;
            }
            if s.latest
                .is_none_or(|l| ack.next >= l.next || ack.receiver != l.receiver)
            {
                s.latest = Some(ack);
            }
            if ack.resend {
                s.resend = Some(ack.next);
            }
            inbox.arrived.notify_all();
        })
        .wait()
        .map_err(BridgeError::zenoh)?;
    let mut run = OutRun {
        session,
        ring,
        options,
        link,
        acks,
        sender: Sender {
            publisher,
            source: PayloadSource::new(options.shm_pool_bytes)?,
            attachment: Vec::with_capacity(64 + seg.user_meta_size()),
            tag,
            key: key.to_string(),
            stats: OutStats::default(),
        },
        room: seg.user_meta_size(),
        last_stats: Instant::now(),
    };
    match seg.kind() {
        RingKind::Spsc | RingKind::Mpmc => run.queue::<T>(seg)?,
        RingKind::Broadcast => run.broadcast::<T>(seg)?,
        RingKind::Array | RingKind::Rpc => unreachable!("refused in bridge_out"),
    }
    run.report();
    Ok(run.sender.stats)
}

struct OutRun<'a, 's> {
    session: &'a zenoh::Session,
    ring: &'a str,
    options: &'a OutOptions,
    link: Arc<Link>,
    acks: Arc<Acks>,
    sender: Sender<'s>,
    room: usize,
    last_stats: Instant,
}

impl OutRun<'_, '_> {
    fn stopped(&self) -> bool {
        self.options.stop.as_ref().is_some_and(|s| s.load(Relaxed))
    }

    fn matched(&self) -> bool {
        self.link.matched.load(Relaxed)
    }

    /// Logs the counters if `stats_every` has passed since the last time.
    fn tick(&mut self) {
        if let Some(every) = self.options.stats_every {
            if self.last_stats.elapsed() >= every {
                self.last_stats = Instant::now();
                self.report();
            }
        }
    }

    fn report(&mut self) {
        self.sender.stats.link_lost = self.link.lost.load(Relaxed);
        let s = &self.sender.stats;
        tracing::info!(
            target: "ndring_bridge::stats",
            "out {} -> {}: frames={} bytes={} dropped={} acked={} resent={} unacked={} link_lost={}",
            self.ring, self.sender.key, s.frames, s.bytes, s.dropped, s.acked, s.resent, s.unacked, s.link_lost
        );
    }

    /// Waits until a subscriber matches (or the bridge is stopped), saying so once.
    fn wait_for_subscriber(&mut self) {
        if self.matched() || self.stopped() {
            return;
        }
        tracing::info!(key = %self.sender.key, "waiting for a receiving bridge");
        while !self.matched() && !self.stopped() {
            std::thread::sleep(Duration::from_millis(5));
            self.tick();
        }
    }

    fn queue<T: Element>(&mut self, seg: Segment) -> Result<(), BridgeError> {
        let slots = seg.slot_count();
        // The consumer role is taken at once (a restarted bridge takes over from a dead one
        // within the ring's grace period, so the producer does not see `Disconnected`).
        let consumer =
            Consumer::<T, IxDyn>::from_segment(seg).map_err(BridgeError::ring(self.ring))?;
        let mut rx = LeaseConsumer::from(consumer);
        let max_held = slots.saturating_sub(1).max(1);
        let mut held: VecDeque<Held> = VecDeque::new();
        let mut basis = Ack::default();
        // Where the last round of sending again began, and when.
        let mut resent_from: Option<(u64, Instant)> = None;
        // Frames of `held` sent since the link last came back (the rest wait for it).
        let mut sent = 0usize;
        let mut returns = self.link.returns.load(Relaxed);
        let mut progress = Instant::now();
        let mut slowest = Duration::ZERO;
        // Rounds of sending again, in a row, that no acknowledgement followed.
        let mut quiet = 0u32;
        let mut producer_gone = false;
        let mut closed = false;
        let resend_after = |slowest: Duration| MIN_RESEND_AFTER.max(slowest * 4);
        loop {
            if self.stopped() {
                break;
            }
            self.tick();
            // Acknowledgements: release what the far side has; send again where it asks.
            let (latest, resend) = {
                let mut s = self.acks.state.lock().unwrap_or_else(|p| p.into_inner());
                (s.latest, s.resend.take())
            };
            if let Some(ack) = latest {
                if ack.receiver != basis.receiver && basis.receiver != 0 {
                    tracing::info!(key = %self.sender.key, "a new receiving bridge: sending the held frames again");
                    sent = 0;
                }
                basis = ack;
                let mut released = 0;
                while held.front().is_some_and(|h| h.seq < ack.next) {
                    held.pop_front();
                    released += 1;
                }
                if released > 0 {
                    self.sender.stats.acked += released as u64;
                    sent = sent.saturating_sub(released);
                    if quiet == 0 {
                        slowest = slowest.max(progress.elapsed().min(Duration::from_secs(10)));
                    }
                    quiet = 0;
                    progress = Instant::now();
                }
            }
            if let Some(from) = resend {
                let recent = resent_from
                    .is_some_and(|(f, at)| f == from && at.elapsed() < resend_after(slowest));
                if !recent {
                    if let Some(i) = held.iter().position(|h| h.seq >= from) {
                        tracing::debug!(key = %self.sender.key, from, "the receiving bridge asks to send again");
                        sent = sent.min(i);
                        resent_from = Some((from, Instant::now()));
                    }
                }
            }
            let now_returns = self.link.returns.load(Relaxed);
            if now_returns != returns {
                // The link came back: what was in flight when it went is lost with it.
                returns = now_returns;
                sent = 0;
                progress = Instant::now();
            }
            // Backs off (doubling, up to 16 times) while no acknowledgement comes: during a
            // partition Zenoh notices the link is gone only after its lease.
            if sent > 0
                && progress.elapsed() > resend_after(slowest) * (1 << quiet.min(4))
                && self.matched()
            {
                tracing::debug!(key = %self.sender.key, held = held.len(), "no acknowledgement in time: sending again");
                sent = 0;
                quiet += 1;
                progress = Instant::now();
            }
            if !self.matched() {
                self.wait_for_subscriber();
                continue;
            }
            // Send again what is held and not sent since the link came back (or since the far
            // side asked): frames are sent the first time as they are read (`take`).
            let floor = held.front().map_or(0, |h| h.seq);
            while sent < held.len() {
                self.sender.send_held(&held[sent], floor, basis)?;
                self.sender.stats.resent += 1;
                sent += 1;
            }
            if closed || producer_gone {
                if held.is_empty() && closed {
                    break;
                }
                self.wait_ack(Duration::from_millis(20));
                if producer_gone && held.is_empty() {
                    match rx.try_recv_lease() {
                        Err(ndring::Error::Disconnected { .. } | ndring::Error::Empty) => {
                            std::thread::sleep(Duration::from_millis(10));
                            continue;
                        }
                        Err(ndring::Error::Closed) => {
                            closed = true;
                            continue;
                        }
                        Ok(lease) => {
                            producer_gone = false;
                            self.take(lease, &mut held, floor, basis)?;
                            sent = held.len();
                            progress = Instant::now();
                        }
                        Err(e) => return Err(BridgeError::ring(self.ring)(e)),
                    }
                }
                continue;
            }
            if held.len() >= max_held {
                self.wait_ack(Duration::from_millis(20));
                continue;
            }
            let wait = if held.is_empty() {
                POLL
            } else {
                Duration::from_millis(5)
            };
            match rx.recv_lease_timeout(wait) {
                Ok(lease) => {
                    if held.is_empty() {
                        progress = Instant::now();
                    }
                    self.take(lease, &mut held, floor, basis)?;
                    sent = held.len();
                }
                Err(ndring::Error::Timeout | ndring::Error::TooManyLeases { .. }) => {}
                Err(ndring::Error::Disconnected {
                    missing: Role::Producer,
                }) => {
                    if held.is_empty() {
                        tracing::warn!(
                            ring = self.ring,
                            "the source ring's producer is gone: telling the receiving side"
                        );
                        self.end(0, EndReason::ProducerGone);
                        producer_gone = true;
                    } else {
                        self.wait_ack(Duration::from_millis(20));
                    }
                }
                Err(ndring::Error::Disconnected { .. }) => std::thread::sleep(POLL / 10),
                Err(ndring::Error::Closed) => closed = true,
                Err(e) => return Err(BridgeError::ring(self.ring)(e)),
            }
        }
        self.sender.stats.unacked = held.len() as u64;
        if closed && !self.stopped() {
            self.end(0, EndReason::Closed);
            std::thread::sleep(self.options.linger.unwrap_or(Duration::from_millis(500)));
        }
        Ok(())
    }

    /// Sends the end-of-stream mark until the receiving side acknowledges it (a mark sent
    /// while the link was down, or lost with it, is sent again once a receiver matches), or
    /// the bridge is stopped.
    fn end(&mut self, last_seq: u64, reason: EndReason) {
        self.acks
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ended = false;
        let mut returns = u64::MAX;
        let mut sent_at: Option<Instant> = None;
        loop {
            if self.stopped() {
                tracing::warn!(key = %self.sender.key, "stopped before the end of stream was acknowledged");
                return;
            }
            if self
                .acks
                .state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .ended
            {
                return;
            }
            self.tick();
            let now_returns = self.link.returns.load(Relaxed);
            let due = sent_at.is_none_or(|at| at.elapsed() >= MIN_RESEND_AFTER);
            if self.matched() && (due || now_returns != returns) {
                returns = now_returns;
                self.sender.end(self.session, last_seq, reason);
                sent_at = Some(Instant::now());
            }
            self.wait_ack(Duration::from_millis(20));
        }
    }

    /// Waits at most `timeout` for an acknowledgement to arrive.
    fn wait_ack(&self, timeout: Duration) {
        let s = self.acks.state.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self.acks.arrived.wait_timeout(s, timeout);
    }

    /// Holds a frame just read and sends it.
    fn take<T: Element>(
        &mut self,
        lease: ReadLease<T, IxDyn>,
        held: &mut VecDeque<Held>,
        floor: u64,
        basis: Ack,
    ) -> Result<(), BridgeError> {
        if lease.view().to_slice().is_none() {
            return Err(BridgeError::Unsupported(
                "a slot not in standard layout".into(),
            ));
        }
        let seq = lease.seq();
        let timestamp_ns = lease.timestamp_ns();
        let mut meta = lease.user_meta_bytes().to_vec();
        meta.truncate(meta::menu_size(self.room));
        let bytes = bytes::Bytes::from_owner(LeaseBytes(lease));
        let header = FrameHeader {
            seq,
            timestamp_ns,
            sender: self.sender.tag,
            checksum: frame_checksum(seq, [&bytes[..]], &meta),
            ..FrameHeader::default()
        };
        let h = Held {
            seq,
            bytes,
            header,
            meta,
        };
        let floor = if held.is_empty() { seq } else { floor };
        self.sender.send_held(&h, floor, basis)?;
        self.sender.stats.frames += 1;
        self.sender.stats.bytes += h.bytes.len() as u64;
        held.push_back(h);
        Ok(())
    }

    fn broadcast<T: Element>(&mut self, seg: Segment) -> Result<(), BridgeError> {
        // Latest-frame: subscribed once a receiver is there (frames before are not wanted).
        self.wait_for_subscriber();
        let mut rx = Subscriber::<T, IxDyn>::from_segment(seg, Start::Newest)
            .map_err(BridgeError::ring(self.ring))?;
        let mut meta_buf = Vec::new();
        let mut writer_gone = false;
        let mut closed = false;
        while !self.stopped() {
            self.tick();
            match rx.latest_timeout(POLL) {
                Ok(slot) => {
                    writer_gone = false;
                    let elems = slot.as_slice().ok_or_else(|| {
                        BridgeError::Unsupported("a slot not in standard layout".into())
                    })?;
                    let bytes: &[u8] = bytemuck::cast_slice(elems);
                    meta_buf.clear();
                    meta::read(&slot, self.room, &mut meta_buf);
                    let seq = slot.seq();
                    let len = bytes.len() as u64;
                    let (payload, checksum) = self.sender.source.copy(seq, bytes, &meta_buf)?;
                    let header = FrameHeader {
                        seq,
                        timestamp_ns: slot.timestamp_ns(),
                        sender: self.sender.tag,
                        checksum,
                        floor: seq,
                        basis: Ack::default(),
                    };
                    drop(slot);
                    self.sender.put(payload, &header, &meta_buf);
                    self.sender.stats.frames += 1;
                    self.sender.stats.bytes += len;
                }
                Err(ndring::Error::Timeout | ndring::Error::Lagged { .. }) => {}
                Err(ndring::Error::Disconnected { .. }) => {
                    if !writer_gone {
                        writer_gone = true;
                        tracing::warn!(
                            ring = self.ring,
                            "the source ring's writer is gone: telling the receiving side"
                        );
                        let last = rx.segment().positions().published;
                        self.end(last, EndReason::ProducerGone);
                    }
                    std::thread::sleep(POLL / 10)
                }
                Err(ndring::Error::Closed) => {
                    closed = true;
                    break;
                }
                Err(e) => return Err(BridgeError::ring(self.ring)(e)),
            }
            self.sender.stats.dropped = rx.missed_total() + rx.skipped_total();
        }
        self.sender.stats.dropped = rx.missed_total() + rx.skipped_total();
        if closed && !self.stopped() {
            // The newest frame the writer published: the far side counts what it never got.
            let last = rx.segment().positions().published;
            self.end(last, EndReason::Closed);
            std::thread::sleep(self.options.linger.unwrap_or(Duration::from_millis(500)));
        }
        Ok(())
    }
}

//! `in`: frames on a Zenoh key expression → a ring on this host.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use ndarray::IxDyn;
use ndring::{BroadcastWriter, Config, Element, Producer, RingKind, Segment, WriteSlot};
use zenoh::Wait;
use zenoh::pubsub::Publisher;
use zenoh::qos::CongestionControl;
use zenoh::sample::{Sample, SampleKind};

use crate::checksum::{copy_and_checksum, frame_checksum};
use crate::out::POLL;
use crate::resume::{Dest, QueueStream, Verdict};
use crate::sequencer::{Origin, Sequencer, WINDOW_BYTES, WINDOW_FRAMES};
use crate::wire::{Ack, EndMark, EndReason, FrameDesc, FrameHeader, ack_key};
use crate::{BridgeError, meta};

/// Options of [`bridge_in`].
#[derive(Clone, Debug, Default)]
pub struct InOptions {
    /// Set to stop the bridge (checked every 100 ms while it waits).
    pub stop: Option<Arc<AtomicBool>>,
    /// Keep running after an end-of-stream mark (a `delete` on the key): the ring stays open for
    /// the next stream. Default: close the ring and return.
    pub keep_running: bool,
    /// Keep the ring's name after the bridge ends (a ring it created is otherwise unlinked).
    pub keep_ring: bool,
    /// Log the counters (target `ndring_bridge::stats`, level info) this often.
    pub stats_every: Option<Duration>,
}

/// What [`bridge_in`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InStats {
    /// Frames written into the ring.
    pub frames: u64,
    /// Frames that never arrived and never will: broadcast rings, sequence numbers skipped over
    /// (the sending side skipped them, the network dropped them, they failed their check) and
    /// the frames after the last one received up to the source's last; queue rings, frames a
    /// killed sending bridge held (the source ring gives a dead reader's frames up). Frames are
    /// written in sequence order, so the holes in the ring are `gaps + late`.
    pub gaps: u64,
    /// Frames that arrived after their place had passed (a killed sending bridge's frames, still
    /// in flight, arriving after the hole they would fill was given up); not written.
    pub late: u64,
    /// Times the source ring was created anew (another creator, or a new sending bridge that
    /// begins well behind the stream): the sequence starts over.
    pub restarts: u64,
    /// Frames already written that arrived again (sent again by the sender); not written twice.
    pub duplicates: u64,
    /// Frames whose checksum did not match (altered on the way): not written; a queue ring's
    /// sender sends them again, a broadcast ring counts them in `gaps`.
    pub corrupt: u64,
    /// Queue rings: frames a killed predecessor of this bridge wrote but could not acknowledge,
    /// found in the ring at start and not written again.
    pub resumed: u64,
    /// Times the source's producer went away without closing (its death crossed the link: this
    /// bridge detached from the ring, so its consumers saw `Disconnected`).
    pub producer_gone: u64,
    /// Frames that arrived in Zenoh shared memory (a sender on this host with a SHM pool): read
    /// in place, with no copy before the one into the ring.
    pub shm_frames: u64,
    /// Sequence number (in the source ring) of the first frame written, 0 if none.
    pub first_seq: u64,
    /// Sequence number of the last frame written, 0 if none.
    pub last_seq: u64,
}

/// Samples from Zenoh's receiving task to the thread that writes the ring. A lossless sample
/// waits for room (the wait reaches the sender as TCP backpressure); a latest-frame sample is
/// dropped when the writer is behind (and then counted as a gap).
struct Inbox {
    rx: Receiver<Sample>,
}

fn inbox(depth: usize) -> (SyncSender<Sample>, Inbox) {
    let (tx, rx) = sync_channel(depth);
    (tx, Inbox { rx })
}

fn deliver(tx: &SyncSender<Sample>, sample: Sample) {
    if sample.congestion_control() == CongestionControl::Block
        || sample.kind() == SampleKind::Delete
    {
        let _ = tx.send(sample);
    } else if let Err(TrySendError::Full(_)) = tx.try_send(sample) {
        // Dropped: the writer is behind; the gap in sequence numbers counts it.
    }
}

/// Fills ring `ring` with the frames published on `key` (by [`crate::bridge_out`]) until an
/// end-of-stream mark arrives (unless `keep_running`) or `options.stop` is set.
///
/// The first frame's description decides: if no ring has this name, one is created like the
/// source (element type, shape, kind, slots, metadata room); if one exists, its element type and
/// shape must match, else [`BridgeError::Mismatch`]. A queue ring is filled as its producer (waits
/// while it is full: the wait reaches the sender), each frame exactly once and in order, every
/// frame acknowledged to the sender once written; a broadcast ring as its writer. Every frame's
/// checksum is verified before it is published in the ring.
///
/// ```no_run
/// let session = ndring_zenoh::SessionOptions::default().listen("tcp/0.0.0.0:7447").open()?;
/// let stats = ndring_zenoh::bridge_in(&session, "lab/cam0", "/cam0", &Default::default())?;
/// println!("{} frames, {} missing", stats.frames, stats.gaps);
/// # Ok::<(), ndring_zenoh::BridgeError>(())
/// ```
pub fn bridge_in(
    session: &zenoh::Session,
    key: &str,
    ring: &str,
    options: &InOptions,
) -> Result<InStats, BridgeError> {
    let (tx, inbox) = inbox(4);
    let _subscriber = session
        .declare_subscriber(key.to_string())
        .callback(move |sample| deliver(&tx, sample))
        .wait()
        .map_err(BridgeError::zenoh)?;
    // Acknowledgements: best effort (each covers every earlier one), sent at once.
    let acks = session
        .declare_publisher(ack_key(key))
        .congestion_control(CongestionControl::Drop)
        .express(true)
        .wait()
        .map_err(BridgeError::zenoh)?;
    let lost = Arc::new(AtomicU64::new(0));
    let watch = lost.clone();
    let log_key = key.to_string();
    let seen = Arc::new(AtomicBool::new(false));
    let _listener = acks
        .matching_listener()
        .callback(move |status| {
            let was = seen.swap(status.matching(), Relaxed);
            match (was, status.matching()) {
                (false, true) if watch.load(Relaxed) > 0 => {
                    tracing::info!(key = %log_key, "reconnected: a sending bridge is there again")
                }
                (false, true) => {
                    tracing::info!(key = %log_key, "connected: a sending bridge is there")
                }
                (true, false) => {
                    watch.fetch_add(1, Relaxed);
                    tracing::warn!(key = %log_key, "link lost: no sending bridge")
                }
                _ => {}
            }
        })
        .wait()
        .map_err(BridgeError::zenoh)?;
    let stopped = || options.stop.as_ref().is_some_and(|s| s.load(Relaxed));
    tracing::info!(key, ring, "waiting for the first frame");
    // Wait for the first frame: it says what ring to fill.
    let first = loop {
        if stopped() {
            return Ok(InStats::default());
        }
        match inbox.rx.recv_timeout(POLL) {
            Ok(s) if s.kind() == SampleKind::Put => break s,
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Ok(InStats::default()),
        }
    };
    let desc = describe(&first, key)?;
    let run = Run {
        key,
        ring,
        options,
        inbox,
        desc: desc.clone(),
        acks,
        receiver: FrameHeader::new_sender(),
    };
    ndring::with_dtype!(desc.dtype, T => run.typed::<T>(first))
}

fn describe(sample: &Sample, key: &str) -> Result<FrameDesc, BridgeError> {
    let bad = |reason: &str| BridgeError::BadSample {
        key: key.to_string(),
        reason: reason.to_string(),
    };
    let encoding = std::borrow::Cow::<str>::from(sample.encoding());
    let (_, schema) = encoding
        .split_once(';')
        .ok_or_else(|| bad(&format!("encoding {encoding:?} has no schema")))?;
    FrameDesc::parse(schema)
        .ok_or_else(|| bad(&format!("schema {schema:?} is not an ndring description")))
}

/// The ring being filled: a queue's producer or a broadcast ring's writer.
enum Sink<T: Element> {
    Queue(Producer<T, IxDyn>),
    Broadcast(BroadcastWriter<T, IxDyn>),
}

impl<T: Element> Sink<T> {
    fn segment(&self) -> &Segment {
        match self {
            Sink::Queue(p) => p.segment(),
            Sink::Broadcast(w) => w.segment(),
        }
    }

    /// The destination ring now: positions written and its creator.
    fn dest(&self) -> Dest {
        let seg = self.segment();
        Dest {
            tail: seg.positions().tail,
            ring: seg.creator_pid() as u64,
        }
    }
}

struct Run<'a> {
    key: &'a str,
    ring: &'a str,
    options: &'a InOptions,
    inbox: Inbox,
    desc: FrameDesc,
    acks: Publisher<'a>,
    /// This bridge's tag on its acknowledgements.
    receiver: u64,
}

/// A frame that arrived: its header and metadata decoded.
struct Arrival {
    sample: Sample,
    header: FrameHeader,
    meta: Vec<u8>,
}

/// Acknowledgements sent while idle, at most this often.
const HEARTBEAT: Duration = Duration::from_millis(250);

/// A request to send again is repeated at most this often.
const RESEND_EVERY: Duration = Duration::from_millis(300);

impl Run<'_> {
    fn stopped(&self) -> bool {
        self.options.stop.as_ref().is_some_and(|s| s.load(Relaxed))
    }

    /// Opens the ring named `self.ring` if it exists (checking it fits), else creates it.
    fn open<T: Element>(&self) -> Result<Sink<T>, BridgeError> {
        let err = BridgeError::ring(self.ring);
        for _ in 0..2 {
            match Segment::open(self.ring, Duration::from_secs(2)) {
                Ok(seg) => {
                    let found = FrameDesc::of(&seg);
                    if found.dtype != self.desc.dtype || found.shape != self.desc.shape {
                        return Err(BridgeError::mismatch(
                            self.ring,
                            self.key,
                            format!("{} {:?}", self.desc.dtype, self.desc.shape),
                            format!("{} {:?}", found.dtype, found.shape),
                        ));
                    }
                    return match seg.kind() {
                        RingKind::Array | RingKind::Rpc => {
                            return Err(BridgeError::mismatch(
                                self.ring,
                                self.key,
                                &self.desc,
                                "a shared array or request/reply segment, not a ring",
                            ));
                        }
                        RingKind::Broadcast => {
                            BroadcastWriter::from_segment(seg).map(Sink::Broadcast)
                        }
                        _ => Producer::from_segment(seg).map(Sink::Queue),
                    }
                    .map_err(err);
                }
                Err(ndring::Error::NotFound { .. }) => {}
                Err(e) => return Err(err(e)),
            }
            let config = match self.desc.kind {
                RingKind::Spsc => Config::spsc(),
                RingKind::Mpmc => Config::mpmc(),
                RingKind::Broadcast => Config::broadcast(),
                // `FrameDesc::parse` accepts ring kinds only.
                RingKind::Array | RingKind::Rpc => {
                    return Err(BridgeError::Unsupported(format!("{}", self.desc.kind)));
                }
            }
            .slots(self.desc.slots)
            .user_meta_size(self.desc.meta)
            .keep(self.options.keep_ring)
            .replace_stale(true);
            let shape = IxDyn(&self.desc.shape);
            let created = match self.desc.kind {
                RingKind::Broadcast => {
                    BroadcastWriter::create(self.ring, shape, &config).map(Sink::Broadcast)
                }
                _ => Producer::create(self.ring, shape, &config).map(Sink::Queue),
            };
            match created {
                Ok(sink) => return Ok(sink),
                // Someone created it meanwhile: open theirs.
                Err(ndring::Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(err(e)),
            }
        }
        Err(err(ndring::Error::NotFound {
            name: self.ring.to_string(),
        }))
    }

    fn arrival(&self, sample: Sample) -> Result<Arrival, BridgeError> {
        let bad = |reason: String| BridgeError::BadSample {
            key: self.key.to_string(),
            reason,
        };
        let attachment = sample
            .attachment()
            .map(|a| a.to_bytes().into_owned())
            .unwrap_or_default();
        let (header, meta) = FrameHeader::decode(&attachment)
            .ok_or_else(|| bad("no frame header in the attachment".into()))?;
        let desc = describe(&sample, self.key)?;
        if desc.dtype != self.desc.dtype || desc.shape != self.desc.shape {
            return Err(BridgeError::mismatch(
                self.ring, self.key, &desc, &self.desc,
            ));
        }
        let meta = meta.to_vec();
        Ok(Arrival {
            sample,
            header,
            meta,
        })
    }

    fn typed<T: Element>(self, first: Sample) -> Result<InStats, BridgeError> {
        let mut sink = Some(self.open::<T>()?);
        let mut tally = Tally::default();
        let queue = self.desc.kind.is_queue();
        let mut stream = QueueStream::default();
        let mut order = Sequencer::<Arrival>::new(WINDOW_FRAMES, WINDOW_BYTES);
        let mut idle = 0;
        let mut next = Some(first);
        // The sender to acknowledge, and whether frames were handled since the last ack.
        let mut ack_to: Option<u64> = None;
        let mut unacked = 0u32;
        let ack_every = (self.desc.slots.saturating_sub(1) / 2).max(1) as u32;
        let mut last_ack = Instant::now();
        let mut last_resend: Option<(u64, Instant)> = None;
        let mut last_stats = Instant::now();
        // Broadcast: the newest frame of the source announced by an end mark.
        let end = loop {
            if let Some(every) = self.options.stats_every {
                if last_stats.elapsed() >= every {
                    last_stats = Instant::now();
                    self.report(&stats_of(&tally, &stream, &order, queue));
                }
            }
            let sample = match next.take() {
                Some(s) => s,
                None => match self.inbox.rx.recv_timeout(if unacked > 0 {
                    Duration::ZERO
                } else {
                    POLL
                }) {
                    Ok(s) => {
                        idle = 0;
                        s
                    }
                    Err(RecvTimeoutError::Timeout) if !self.stopped() => {
                        if queue {
                            if let (Some(to), Some(sink)) = (ack_to, &sink) {
                                if unacked > 0 || last_ack.elapsed() >= HEARTBEAT {
                                    self.ack(to, &stream, sink.dest(), false);
                                    unacked = 0;
                                    last_ack = Instant::now();
                                }
                            }
                            continue;
                        }
                        idle += 1;
                        if idle >= IDLE_POLLS && order.waiting() {
                            let mut write =
                                |_: u64, a: Arrival| self.write_broadcast(&mut sink, &mut tally, a);
                            if let Err(halt) = order.expire(&mut write) {
                                break Err(halt);
                            }
                        }
                        continue;
                    }
                    Err(_) => {
                        let mut write =
                            |_: u64, a: Arrival| self.write_broadcast(&mut sink, &mut tally, a);
                        break order.end(&mut write).map(|()| false);
                    }
                },
            };
            if sample.kind() == SampleKind::Delete {
                let mark = sample
                    .attachment()
                    .and_then(|a| EndMark::decode(&a.to_bytes()));
                if let Some(m) = mark {
                    self.ack_end(m.sender);
                }
                let flushed = if queue {
                    stream.end();
                    Ok(())
                } else {
                    let mut write =
                        |_: u64, a: Arrival| self.write_broadcast(&mut sink, &mut tally, a);
                    order.end(&mut write)
                };
                if let Err(halt) = flushed {
                    break Err(halt);
                }
                if !queue {
                    // Frames after the last one received, up to the source's last, never came.
                    if let Some(m) = mark {
                        let written = order.counts.last_seq;
                        if m.last_seq > written && tally.frames > 0 {
                            let lost = m.last_seq - written;
                            tracing::warn!(
                                key = self.key,
                                lost,
                                "the stream ended with frames that never arrived"
                            );
                            tally.tail_gaps += lost;
                            // The ring's subscribers learn of them (`Lagged`) before `Closed`.
                            if let Some(Sink::Broadcast(w)) = &mut sink {
                                w.skip(lost);
                            }
                            tally.last_source_seq = Some(m.last_seq);
                        }
                    }
                }
                match mark.map(|m| m.reason) {
                    Some(EndReason::ProducerGone) => {
                        // Detach without closing: this host's consumers see `Disconnected`, as
                        // they would for a producer of their own that died.
                        tracing::warn!(
                            key = self.key,
                            ring = self.ring,
                            "the source's producer is gone: detaching from the ring"
                        );
                        tally.producer_gone += 1;
                        sink = None;
                        continue;
                    }
                    _ if self.options.keep_running => continue,
                    _ => break Ok(true),
                }
            }
            let arrival = self.arrival(sample)?;
            if sink.is_none() {
                tracing::info!(
                    key = self.key,
                    ring = self.ring,
                    "frames again: attaching to the ring"
                );
                sink = Some(self.open::<T>()?);
            }
            if !queue {
                let from = Origin {
                    sender: arrival.header.sender,
                    ring: self.origin_of(&arrival)?,
                    slots: self.desc.slots,
                };
                let seq = arrival.header.seq;
                let bytes = arrival.sample.payload().len();
                let mut write = |_: u64, a: Arrival| self.write_broadcast(&mut sink, &mut tally, a);
                if let Err(halt) = order.offer(from, seq, bytes, arrival, &mut write) {
                    break Err(halt);
                }
                continue;
            }
            let h = arrival.header;
            let origin = self.origin_of(&arrival)?;
            let dest = sink.as_ref().expect("attached").dest();
            ack_to = Some(h.sender);
            unacked += 1;
            match stream.judge(&h, origin, dest, Instant::now()) {
                Verdict::Write => {
                    let Some(Sink::Queue(p)) = &mut sink else {
                        unreachable!("a queue stream fills a queue ring")
                    };
                    match self.write_queue(p, &mut tally, &arrival) {
                        Ok(true) => stream.written(h.seq),
                        Ok(false) => {
                            // Failed its check: not written; ask for it again.
                            let next = stream.next().unwrap_or(h.seq);
                            self.ack(h.sender, &stream, dest, true);
                            last_resend = Some((next, Instant::now()));
                        }
                        Err(halt) => break Err(halt),
                    }
                }
                Verdict::Skip => {}
                Verdict::Resend => {
                    let next = stream.next().unwrap_or(h.seq);
                    let recent =
                        last_resend.is_some_and(|(n, at)| n == next && at.elapsed() < RESEND_EVERY);
                    if !recent {
                        tracing::debug!(
                            key = self.key,
                            next,
                            got = h.seq,
                            "frames missing: asking to send again"
                        );
                        self.ack(h.sender, &stream, dest, true);
                        last_resend = Some((next, Instant::now()));
                    }
                }
            }
            // The sender holds at most `slots - 1` frames: acknowledge at least every half of
            // that while busy, or it would stop and wait for this side to drain.
            if unacked >= ack_every {
                let dest = sink.as_ref().expect("attached").dest();
                self.ack(h.sender, &stream, dest, false);
                unacked = 0;
                last_ack = Instant::now();
            }
        };
        let stats = stats_of(&tally, &stream, &order, queue);
        if let Ok(true) = end {
            // Let the acknowledgement of the end mark leave before the session closes.
            std::thread::sleep(Duration::from_millis(200));
        }
        match end {
            // End of stream: close the ring (frames lost at a broadcast stream's end were
            // skipped before: its subscribers get `Lagged`, then `Closed`).
            Ok(true) => match sink {
                Some(Sink::Queue(mut p)) => p.close(),
                Some(Sink::Broadcast(mut w)) => w.close(),
                None => {}
            },
            Ok(false) | Err(Halt::Stopped) => {}
            Err(Halt::Failed(e)) => return Err(e),
        }
        Ok(stats)
    }

    fn origin_of(&self, a: &Arrival) -> Result<u32, BridgeError> {
        Ok(describe(&a.sample, self.key)?.origin)
    }

    /// Sends an acknowledgement of the stream to `sender`.
    fn ack(&self, sender: u64, stream: &QueueStream, dest: Dest, resend: bool) {
        let Some(next) = stream.next() else { return };
        let ack = Ack {
            receiver: self.receiver,
            sender,
            next,
            tail: dest.tail,
            ring: dest.ring,
            resend,
            ended: false,
        };
        if let Err(e) = self.acks.put(&ack.encode()[..]).wait() {
            tracing::debug!(key = self.key, "acknowledgement not sent: {e}");
        }
    }

    /// Tells `sender` its end-of-stream mark arrived.
    fn ack_end(&self, sender: u64) {
        let ack = Ack {
            receiver: self.receiver,
            sender,
            ended: true,
            ..Ack::default()
        };
        if let Err(e) = self.acks.put(&ack.encode()[..]).wait() {
            tracing::debug!(key = self.key, "acknowledgement not sent: {e}");
        }
    }

    fn report(&self, s: &InStats) {
        tracing::info!(
            target: "ndring_bridge::stats",
            "in {} -> {}: frames={} gaps={} late={} restarts={} duplicates={} corrupt={} resumed={} producer_gone={}",
            self.key, self.ring, s.frames, s.gaps, s.late, s.restarts, s.duplicates, s.corrupt, s.resumed, s.producer_gone
        );
    }

    /// Writes one frame into a queue ring (waiting for room), after checking it: `Ok(false)` if
    /// it failed (nothing published).
    fn write_queue<T: Element>(
        &self,
        p: &mut Producer<T, IxDyn>,
        tally: &mut Tally,
        a: &Arrival,
    ) -> Result<bool, Halt> {
        let mpmc = p.segment().kind() == RingKind::Mpmc;
        if mpmc && !self.verify(tally, a) {
            // An MPMC claim dropped unpublished leaves a tombstone: check before claiming.
            return Ok(false);
        }
        loop {
            match p.claim_timeout(POLL) {
                Ok(mut slot) => {
                    return match fill(&mut slot, a, self.desc.meta, self.key) {
                        Ok(sum) if mpmc || sum == a.header.checksum => {
                            slot.publish();
                            self.count(tally, a);
                            Ok(true)
                        }
                        // Dropped unpublished: an SPSC position is simply claimed again.
                        Ok(_) => {
                            drop(slot);
                            self.corrupt(tally, a);
                            Ok(false)
                        }
                        Err(e) => Err(Halt::Failed(e)),
                    };
                }
                Err(ndring::Error::Timeout) if !self.stopped() => {}
                // No reader attached on this host yet: the frame waits (lossless).
                Err(ndring::Error::Disconnected { .. }) if !self.stopped() => {
                    std::thread::sleep(POLL / 10)
                }
                Err(ndring::Error::Disconnected { .. } | ndring::Error::Timeout) => {
                    return Err(Halt::Stopped);
                }
                Err(e) => return Err(Halt::Failed(BridgeError::ring(self.ring)(e))),
            }
        }
    }

    /// Writes one frame into a broadcast ring, after checking it (a frame that fails is not
    /// published: its number is skipped, as the frames missing before it are).
    fn write_broadcast<T: Element>(
        &self,
        sink: &mut Option<Sink<T>>,
        tally: &mut Tally,
        a: Arrival,
    ) -> Result<(), Halt> {
        let Some(Sink::Broadcast(w)) = sink else {
            return Ok(());
        };
        let seq = a.header.seq;
        // Frames missing before this one (never arrived, or dropped by a sender that sends the
        // newest): the same hole in the ring. A smaller number is a new source stream (a
        // restart), whose numbers start again.
        if let Some(last) = tally.last_source_seq.filter(|&l| seq > l + 1) {
            w.skip(seq - last - 1);
        }
        tally.last_source_seq = Some(seq);
        let mut slot = w.claim();
        match fill(&mut slot, &a, self.desc.meta, self.key) {
            Ok(sum) if sum == a.header.checksum => {
                slot.publish();
                self.count(tally, &a);
                Ok(())
            }
            Ok(_) => {
                drop(slot);
                self.corrupt(tally, &a);
                tally.corrupt_gaps += 1;
                w.skip(1);
                Ok(())
            }
            Err(e) => Err(Halt::Failed(e)),
        }
    }

    fn verify(&self, tally: &mut Tally, a: &Arrival) -> bool {
        let sum = frame_checksum(a.header.seq, a.sample.payload().slices(), &a.meta);
        let ok = sum == a.header.checksum;
        if !ok {
            self.corrupt(tally, a);
        }
        ok
    }

    fn corrupt(&self, tally: &mut Tally, a: &Arrival) {
        tally.corrupt += 1;
        tracing::warn!(
            key = self.key,
            seq = a.header.seq,
            "a frame failed its checksum: not written"
        );
    }

    fn count(&self, tally: &mut Tally, a: &Arrival) {
        tally.frames += 1;
        #[cfg(feature = "shm")]
        if a.sample.payload().as_shm().is_some() {
            tally.shm_frames += 1;
        }
        let _ = a;
    }
}

fn stats_of(
    tally: &Tally,
    stream: &QueueStream,
    order: &Sequencer<Arrival>,
    queue: bool,
) -> InStats {
    let base = InStats {
        frames: tally.frames,
        corrupt: tally.corrupt,
        producer_gone: tally.producer_gone,
        shm_frames: tally.shm_frames,
        ..InStats::default()
    };
    if queue {
        let c = stream.counts;
        InStats {
            gaps: c.gaps,
            late: c.late,
            restarts: c.restarts,
            duplicates: c.duplicates,
            resumed: c.resumed,
            first_seq: c.first_seq,
            last_seq: c.last_seq,
            ..base
        }
    } else {
        let c = order.counts;
        InStats {
            // A frame that failed its check left a hole the sequencer counted.
            gaps: c.gaps + tally.tail_gaps + tally.corrupt_gaps,
            late: c.late,
            restarts: c.restarts,
            duplicates: c.duplicates,
            first_seq: c.first_seq,
            last_seq: c.last_seq,
            ..base
        }
    }
}

/// Why writing stopped before the stream ended.
enum Halt {
    /// `options.stop` was set while waiting for room.
    Stopped,
    Failed(BridgeError),
}

/// What was written so far, and what the stream's sequencer does not count.
#[derive(Default)]
struct Tally {
    frames: u64,
    shm_frames: u64,
    corrupt: u64,
    producer_gone: u64,
    /// Broadcast: frames that failed their check (holes the sequencer took as written).
    corrupt_gaps: u64,
    /// Broadcast: frames after the last received, up to the source's last (end mark).
    tail_gaps: u64,
    /// Broadcast: the source sequence number last written into the ring or skipped there, so
    /// that a hole in the source's numbers becomes the same hole in the ring's
    /// (`BroadcastWriter::skip`): its subscribers get `Lagged` exactly where frames are missing.
    last_source_seq: Option<u64>,
}

/// Idle polls (of [`POLL`]) after which held-back frames are written and their holes given up:
/// a superseded sender's frames in flight arrive interleaved with its successor's, not later.
const IDLE_POLLS: u32 = 3;

/// Copies a sample's payload and metadata into a claimed slot (one copy: from the network
/// buffers, or from Zenoh's shared memory, into the ring), and returns the frame's checksum
/// computed over the copy.
fn fill<T: Element>(
    slot: &mut WriteSlot<'_, T, IxDyn>,
    a: &Arrival,
    room: usize,
    key: &str,
) -> Result<u64, BridgeError> {
    let bad = |reason: String| BridgeError::BadSample {
        key: key.to_string(),
        reason,
    };
    let dst: &mut [u8] = bytemuck::cast_slice_mut(
        slot.as_slice_mut()
            .ok_or_else(|| bad("slot not in standard layout".into()))?,
    );
    let payload = a.sample.payload();
    if payload.len() != dst.len() {
        return Err(bad(format!(
            "payload of {} bytes, the frame has {}",
            payload.len(),
            dst.len()
        )));
    }
    let sum = copy_and_checksum(a.header.seq, payload.slices(), dst, &a.meta);
    meta::write(slot, room, &a.meta).map_err(|e| bad(e.to_string()))?;
    Ok(sum)
}

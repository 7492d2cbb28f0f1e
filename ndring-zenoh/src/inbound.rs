//! `in`: frames on a Zenoh key expression → a ring on this host.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use ndarray::IxDyn;
use ndring::{BroadcastWriter, Config, Element, Producer, RingKind, Segment, WriteSlot};
use zenoh::Wait;
use zenoh::qos::CongestionControl;
use zenoh::sample::{Sample, SampleKind};

use crate::out::POLL;
use crate::sequencer::{Origin, Sequencer, WINDOW_BYTES, WINDOW_FRAMES};
use crate::wire::{FrameDesc, FrameHeader};
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
}

/// What [`bridge_in`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InStats {
    /// Frames written into the ring.
    pub frames: u64,
    /// Frames that never arrived: sequence numbers skipped over (the sending side skipped them,
    /// the network dropped them, or a killed sending bridge held them). Frames are written in
    /// sequence order, so the holes in the ring are `gaps + late`.
    pub gaps: u64,
    /// Frames that arrived after their place had passed (a killed sending bridge's frames, still
    /// in flight, arriving after the hole they would fill was given up); not written.
    pub late: u64,
    /// Times the source ring was created anew (another creator, or a new sending bridge that
    /// begins well behind the stream): the sequence starts over.
    pub restarts: u64,
    /// Frames already written that arrived again; not written twice.
    pub duplicates: u64,
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
/// while it is full: the wait reaches the sender); a broadcast ring as its writer.
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
    let stopped = || options.stop.as_ref().is_some_and(|s| s.load(Relaxed));
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

struct Run<'a> {
    key: &'a str,
    ring: &'a str,
    options: &'a InOptions,
    inbox: Inbox,
    desc: FrameDesc,
}

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
                // Refused by the producer's create below (a shared array is not a ring).
                RingKind::Array => Config::array(),
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

    fn typed<T: Element>(self, first: Sample) -> Result<InStats, BridgeError> {
        let mut sink = self.open::<T>()?;
        let mut tally = Tally::default();
        let mut order = Sequencer::<Sample>::new(WINDOW_FRAMES, WINDOW_BYTES);
        let mut idle = 0;
        let mut next = Some(first);
        let mut write = |_: u64, sample: Sample| self.write(&mut sink, &mut tally, &sample);
        let end = loop {
            let sample = match next.take() {
                Some(s) => s,
                None => match self.inbox.rx.recv_timeout(POLL) {
                    Ok(s) => {
                        idle = 0;
                        s
                    }
                    Err(RecvTimeoutError::Timeout) if !self.stopped() => {
                        idle += 1;
                        if idle >= IDLE_POLLS && order.waiting() {
                            if let Err(halt) = order.expire(&mut write) {
                                break Err(halt);
                            }
                        }
                        continue;
                    }
                    Err(_) => break order.end(&mut write).map(|()| false),
                },
            };
            if sample.kind() == SampleKind::Delete {
                let flushed = order.end(&mut write);
                if self.options.keep_running && flushed.is_ok() {
                    continue;
                }
                break flushed.map(|()| true);
            }
            let (header, _) = sample
                .attachment()
                .map(|a| a.to_bytes())
                .as_deref()
                .and_then(FrameHeader::decode)
                .ok_or_else(|| BridgeError::BadSample {
                    key: self.key.to_string(),
                    reason: "no frame header in the attachment".into(),
                })?;
            let desc = describe(&sample, self.key)?;
            if desc.dtype != self.desc.dtype || desc.shape != self.desc.shape {
                return Err(BridgeError::mismatch(
                    self.ring, self.key, &desc, &self.desc,
                ));
            }
            let from = Origin {
                sender: header.sender,
                ring: desc.origin,
                slots: desc.slots,
            };
            let bytes = sample.payload().len();
            if let Err(halt) = order.offer(from, header.seq, bytes, sample, &mut write) {
                break Err(halt);
            }
        };
        let c = order.counts;
        let stats = InStats {
            frames: tally.frames,
            gaps: c.gaps,
            late: c.late,
            restarts: c.restarts,
            duplicates: c.duplicates,
            shm_frames: tally.shm_frames,
            first_seq: c.first_seq,
            last_seq: c.last_seq,
        };
        match end {
            // End of stream: close the ring.
            Ok(true) => match sink {
                Sink::Queue(mut p) => p.close(),
                Sink::Broadcast(mut w) => w.close(),
            },
            Ok(false) | Err(Halt::Stopped) => {}
            Err(Halt::Failed(e)) => return Err(e),
        }
        Ok(stats)
    }

    /// Writes one frame into the ring (waiting for room in a queue ring).
    fn write<T: Element>(
        &self,
        sink: &mut Sink<T>,
        tally: &mut Tally,
        sample: &Sample,
    ) -> Result<(), Halt> {
        let meta_bytes = sample
            .attachment()
            .map(|a| a.to_bytes())
            .as_deref()
            .and_then(FrameHeader::decode)
            .map(|(_, m)| m.to_vec())
            .unwrap_or_default();
        let room = self.desc.meta;
        let written = match sink {
            Sink::Queue(p) => loop {
                match p.claim_timeout(POLL) {
                    Ok(mut slot) => {
                        break fill(&mut slot, sample, room, &meta_bytes, self.key)
                            .map(|()| slot.publish());
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
            },
            Sink::Broadcast(w) => {
                let mut slot = w.claim();
                fill(&mut slot, sample, room, &meta_bytes, self.key).map(|()| slot.publish())
            }
        };
        written.map_err(Halt::Failed)?;
        tally.frames += 1;
        #[cfg(feature = "shm")]
        if sample.payload().as_shm().is_some() {
            tally.shm_frames += 1;
        }
        Ok(())
    }
}

/// Why writing stopped before the stream ended.
enum Halt {
    /// `options.stop` was set while waiting for room.
    Stopped,
    Failed(BridgeError),
}

/// Frames written so far.
#[derive(Default)]
struct Tally {
    frames: u64,
    shm_frames: u64,
}

/// Idle polls (of [`POLL`]) after which held-back frames are written and their holes given up:
/// a superseded sender's frames in flight arrive interleaved with its successor's, not later.
const IDLE_POLLS: u32 = 3;

/// Copies a sample's payload and metadata into a claimed slot (one copy: from the network
/// buffers, or from Zenoh's shared memory, into the ring).
fn fill<T: Element>(
    slot: &mut WriteSlot<'_, T, IxDyn>,
    sample: &Sample,
    room: usize,
    meta_bytes: &[u8],
    key: &str,
) -> Result<(), BridgeError> {
    let bad = |reason: String| BridgeError::BadSample {
        key: key.to_string(),
        reason,
    };
    let dst: &mut [u8] = bytemuck::cast_slice_mut(
        slot.as_slice_mut()
            .ok_or_else(|| bad("slot not in standard layout".into()))?,
    );
    let payload = sample.payload();
    if payload.len() != dst.len() {
        return Err(bad(format!(
            "payload of {} bytes, the frame has {}",
            payload.len(),
            dst.len()
        )));
    }
    let mut at = 0;
    for part in payload.slices() {
        dst[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    meta::write(slot, room, meta_bytes).map_err(|e| bad(e.to_string()))
}

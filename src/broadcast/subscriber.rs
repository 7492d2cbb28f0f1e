//! The reading side of a broadcast ring.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ndarray::{ArrayBase, DataMut, Dimension};

use crate::config::OpenOptions;
use crate::element::Element;
use crate::error::{Error, Result};
use crate::handle::attach;
use crate::handle::slot::ReadSlot;
use crate::header::SLEEPING_NOT_EMPTY;
use crate::protocol::RingMemory;
use crate::protocol::broadcast::{self, Miss};
use crate::protocol::copy::atomic_copy;
use crate::role::Role;
use crate::shm::peers;
use crate::shm::segment::Segment;
use crate::shm::wait::{self, Stuck, SweepClock, Waiting};

/// Where a new subscriber starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// At the newest published frame (or the first one, if none is published yet).
    Newest,
    /// At the oldest frame still held by the ring when the subscriber attaches (before it
    /// shows in the writer's [`peers`](crate::BroadcastWriter::peers)).
    Oldest,
}

/// Follows a broadcast ring: every frame in order while it keeps up, `Err(Lagged)` with the
/// exact count when the writer overwrote frames it had not read.
///
/// ```
/// use ndring::{BroadcastWriter, Config, Error, Start, Subscriber};
/// # let name = format!("/ndr-doc-sub-{}", std::process::id());
/// let mut w = BroadcastWriter::<u32, ndarray::Ix1>::create(&name, 2, &Config::broadcast())?;
/// let mut s = Subscriber::<u32, ndarray::Ix1>::open(&name, Start::Oldest)?;
/// for i in 0..20 {
///     w.send(&ndarray::arr1(&[i, i]))?;
/// }
/// // 8 slots: frames 13..=20 are still held, 1..=12 were overwritten.
/// assert!(matches!(s.recv(), Err(Error::Lagged { missed: 12 })));
/// assert_eq!(s.recv()?[0], 12);
/// # Ok::<(), ndring::Error>(())
/// ```
pub struct Subscriber<T: Element, D: Dimension> {
    seg: Arc<Segment>,
    entry: usize,
    sub: broadcast::Subscriber,
    dim: D,
    how: Waiting,
    missed: u64,
    skipped: u64,
    /// When a wait for frames may next make us check whether the writer is alive.
    liveness: SweepClock,
    /// How long our calls have waited for one frame: when to sweep for dead subscribers (their
    /// pins and sleeper counts), whether we wait in one call or many.
    stuck: Stuck,
    /// The wait that a `Pending` `poll_recv` left registered (see `recv_async`).
    #[cfg(feature = "async")]
    pending: Option<crate::shm::wait_async::AsyncSleep>,
    _t: PhantomData<fn() -> T>,
}

#[cfg(feature = "async")]
mod recv_async;
#[cfg(feature = "async")]
pub use recv_async::SubscriberRecv;

impl<T: Element, D: Dimension> Subscriber<T, D> {
    /// Attaches to the broadcast ring `name` as a subscriber starting at `start`. Fails with
    /// `TooManyPeers` if the ring's subscriber limit is reached.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-subopen-{}", std::process::id());
    /// let _w = BroadcastWriter::<u8, ndarray::Ix1>::create(
    ///     &name, 4, &Config::broadcast().max_subscribers(1).slots(3))?;
    /// let _a = Subscriber::<u8, ndarray::Ix1>::open(&name, Start::Newest)?;
    /// assert!(matches!(
    ///     Subscriber::<u8, ndarray::Ix1>::open(&name, Start::Newest),
    ///     Err(Error::TooManyPeers { max: 1, .. })
    /// ));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn open(name: &str, start: Start) -> Result<Self> {
        Self::open_with(name, start, &OpenOptions::default())
    }

    /// [`Subscriber::open`] with options.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-subopenw-{}", std::process::id());
    /// # let _w = BroadcastWriter::<u8, ndarray::Ix1>::create(&name, 4, &Config::broadcast())?;
    /// let s = Subscriber::<u8, ndarray::Ix1>::open_with(&name, Start::Newest,
    ///     &OpenOptions::default().spin(0))?;
    /// # Ok::<(), Error>(())
    /// ```
    pub fn open_with(name: &str, start: Start, options: &OpenOptions) -> Result<Self> {
        attach::open_attach(
            || Segment::open_with(name, options),
            |seg| Self::from_segment_with(seg, start, options),
        )
    }

    /// Turns an untyped [`Segment`] into a subscriber.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-subfs-{}", std::process::id());
    /// # let _w = BroadcastWriter::<u8, ndarray::Ix1>::create(&name, 4, &Config::broadcast())?;
    /// let seg = Segment::open(&name, std::time::Duration::from_secs(1))?;
    /// let s = Subscriber::<u8, ndarray::IxDyn>::from_segment(seg, Start::Oldest)?;
    /// # Ok::<(), Error>(())
    /// ```
    pub fn from_segment(seg: Segment, start: Start) -> Result<Self> {
        Self::from_segment_with(seg, start, &OpenOptions::default())
    }

    /// [`Subscriber::from_segment`] with `options` (spin, grace period), for a caller that
    /// opened the segment itself: the one attach path of every constructor.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-subfsw-{}", std::process::id());
    /// # let _w = BroadcastWriter::<u8, ndarray::Ix1>::create(&name, 4, &Config::broadcast())?;
    /// let seg = Segment::open(&name, std::time::Duration::from_secs(1))?;
    /// let s = Subscriber::<u8, ndarray::IxDyn>::from_segment_with(
    ///     seg, Start::Oldest, &OpenOptions::default().spin(0))?;
    /// # Ok::<(), Error>(())
    /// ```
    pub fn from_segment_with(seg: Segment, start: Start, options: &OpenOptions) -> Result<Self> {
        let dim = attach::check_as::<T, D>(&seg, attach::Family::Broadcast)?;
        attach::check_broadcast_capacity(&seg)?;
        // Where we start is fixed before we show in the peer table (the registration's entry
        // CAS): a writer that waits for a subscriber there and then publishes must find each of
        // those frames received or reported `Lagged`. Fixed after, a registration held up (its
        // shared lock, or just descheduled) would start at the oldest frame held by then and pass
        // the frames before it over unreported.
        let sub = broadcast::Subscriber::attach(&seg, start == Start::Newest);
        let reg = peers::register(&seg, Role::Subscriber)?;
        Ok(Subscriber {
            seg: Arc::new(seg),
            entry: reg.index,
            sub,
            dim,
            how: Waiting {
                spin: options.spin,
                grace: options.grace,
            },
            missed: 0,
            skipped: 0,
            liveness: SweepClock::new(),
            stuck: Stuck::new(),
            #[cfg(feature = "async")]
            pending: None,
            _t: PhantomData,
        })
    }

    fn next_until(
        &mut self,
        deadline: Option<Instant>,
        block: bool,
        latest: bool,
    ) -> Result<ReadSlot<'_, T, D>> {
        let seg = &*self.seg;
        let me = seg.peer(self.entry);
        let how = self.how;
        let sub = &mut self.sub;
        let mut skipped = 0;
        // The common case first, as the queues do: the weak attempt alone, inlined into the
        // poll loop (see `wait::spin`), before the generic step, the liveness checks and sleep.
        let spun = if block && !latest {
            wait::spin(how.spin, || miss(sub.try_recv(seg, me, false)))
        } else {
            None
        };
        let liveness = &mut self.liveness;
        let stuck = &mut self.stuck;
        let mut step = |strong: bool| {
            next_step(
                seg,
                me,
                sub,
                liveness,
                stuck,
                how,
                Step {
                    strong,
                    block,
                    latest,
                },
                &mut skipped,
            )
        };
        let w = &seg.control().not_empty;
        let sleeper = wait::Sleeper::new(me, SLEEPING_NOT_EMPTY);
        let got = if let Some(got) = spun {
            got
        } else if block && !latest {
            // Spun already.
            wait::sleep_until(w, sleeper, how, deadline, &mut step).unwrap_or(Err(Error::Timeout))
        } else if block {
            wait::wait_for(w, sleeper, how, deadline, &mut step).unwrap_or(Err(Error::Timeout))
        } else {
            step(false).unwrap_or(Err(Error::Empty))
        };
        self.skipped += skipped;
        self.deliver(got)
    }

    /// The frame an attempt found (slot, sequence number), or its error, counted.
    fn deliver(&mut self, got: Result<(usize, u64)>) -> Result<ReadSlot<'_, T, D>> {
        let (s, seq) = match got {
            Ok(got) => got,
            Err(e) => {
                if let Error::Lagged { missed } = e {
                    self.missed += missed;
                }
                return Err(e);
            }
        };
        // SAFETY: slot `s` is pinned by our entry; the writer never rewrites a pinned slot, and
        // the pin is dropped only at our next call, when this `&mut self` borrow has ended.
        Ok(unsafe { ReadSlot::new(&self.seg, s, seq, self.dim.clone()) })
    }

    /// The next frame in sequence, waiting for it. `Err(Lagged { missed })` if frames were
    /// overwritten before this subscriber read them (the next call continues with the oldest
    /// frame held); `Err(Closed)` once the writer closed and nothing newer is held;
    /// `Err(Disconnected { missing: Role::Writer })` once nothing newer is held and the writer is
    /// gone without closing (dropped, or dead: noticed within the grace period). Not final: a
    /// writer that attaches again continues the stream.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-subrecv-{}", std::process::id());
    /// # let mut w = BroadcastWriter::<u8, ndarray::Ix1>::create(&name, 2, &Config::broadcast())?;
    /// let mut s = Subscriber::<u8, ndarray::Ix1>::open(&name, Start::Newest)?;
    /// w.send(&ndarray::arr1(&[1, 2]))?;
    /// let frame = s.recv()?;
    /// assert_eq!((frame.seq(), frame[1]), (1, 2));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn recv(&mut self) -> Result<ReadSlot<'_, T, D>> {
        self.next_until(None, true, false)
    }

    /// [`Subscriber::recv`] without waiting: `Err(Empty)` if no newer frame is published.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-subtry-{}", std::process::id());
    /// # let _w = BroadcastWriter::<u8, ndarray::Ix1>::create(&name, 2, &Config::broadcast())?;
    /// let mut s = Subscriber::<u8, ndarray::Ix1>::open(&name, Start::Newest)?;
    /// assert!(matches!(s.try_recv(), Err(Error::Empty)));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn try_recv(&mut self) -> Result<ReadSlot<'_, T, D>> {
        self.next_until(None, false, false)
    }

    /// [`Subscriber::recv`] waiting at most `timeout`: `Err(Timeout)` after it.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-subto-{}", std::process::id());
    /// # let _w = BroadcastWriter::<u8, ndarray::Ix1>::create(&name, 2, &Config::broadcast())?;
    /// let mut s = Subscriber::<u8, ndarray::Ix1>::open(&name, Start::Newest)?;
    /// let t = std::time::Duration::from_millis(10);
    /// assert!(matches!(s.recv_timeout(t), Err(Error::Timeout)));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<ReadSlot<'_, T, D>> {
        match wait::deadline(timeout) {
            Some(d) => self.next_until(Some(d), true, false),
            None => self.recv(),
        }
    }

    /// The newest frame, skipping any between it and the last one received; waits for a frame
    /// newer than the last one received.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-sublatest-{}", std::process::id());
    /// # let mut w = BroadcastWriter::<u8, ndarray::Ix1>::create(&name, 1, &Config::broadcast())?;
    /// let mut s = Subscriber::<u8, ndarray::Ix1>::open(&name, Start::Newest)?;
    /// for i in 1..=5 { w.send(&ndarray::arr1(&[i]))?; }
    /// assert_eq!(s.latest()?[0], 5);
    /// assert_eq!(s.skipped_total(), 4);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn latest(&mut self) -> Result<ReadSlot<'_, T, D>> {
        self.next_until(None, true, true)
    }

    /// [`Subscriber::latest`] without waiting: `Err(Empty)` if nothing newer is published.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-subtl-{}", std::process::id());
    /// # let _w = BroadcastWriter::<u8, ndarray::Ix1>::create(&name, 1, &Config::broadcast())?;
    /// let mut s = Subscriber::<u8, ndarray::Ix1>::open(&name, Start::Newest)?;
    /// assert!(matches!(s.try_latest(), Err(Error::Empty)));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn try_latest(&mut self) -> Result<ReadSlot<'_, T, D>> {
        self.next_until(None, false, true)
    }

    /// [`Subscriber::latest`] waiting at most `timeout`.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-subltt-{}", std::process::id());
    /// # let _w = BroadcastWriter::<u8, ndarray::Ix1>::create(&name, 1, &Config::broadcast())?;
    /// let mut s = Subscriber::<u8, ndarray::Ix1>::open(&name, Start::Newest)?;
    /// let t = std::time::Duration::from_millis(5);
    /// assert!(matches!(s.latest_timeout(t), Err(Error::Timeout)));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn latest_timeout(&mut self, timeout: Duration) -> Result<ReadSlot<'_, T, D>> {
        match wait::deadline(timeout) {
            Some(d) => self.next_until(Some(d), true, true),
            None => self.latest(),
        }
    }

    /// Copies the next frame into `dst` without pinning its slot (atomic loads, then a sequence
    /// re-check: a copy the writer overtook is discarded). Waits at most `timeout` (`None`:
    /// forever). Returns the frame's `seq`, or `Err(Lagged)` like [`Subscriber::recv`].
    ///
    /// `dst` must have the ring's shape; a non-contiguous `dst` costs one temporary buffer.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-subcopy-{}", std::process::id());
    /// # let mut w = BroadcastWriter::<u16, ndarray::Ix1>::create(&name, 3, &Config::broadcast())?;
    /// let mut s = Subscriber::<u16, ndarray::Ix1>::open(&name, Start::Newest)?;
    /// w.send(&ndarray::arr1(&[1, 2, 3]))?;
    /// let mut out = ndarray::Array1::<u16>::zeros(3);
    /// assert_eq!(s.recv_into(&mut out, None)?, 1);
    /// assert_eq!(out.to_vec(), vec![1, 2, 3]);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn recv_into<S: DataMut<Elem = T>>(
        &mut self,
        dst: &mut ArrayBase<S, D>,
        timeout: Option<Duration>,
    ) -> Result<u64> {
        if dst.shape() != self.dim.slice() {
            return Err(Error::ShapeMismatch {
                expected: self.dim.slice().to_vec(),
                found: dst.shape().to_vec(),
            });
        }
        let seg = &*self.seg;
        let me = seg.peer(self.entry);
        self.sub.unpin(me);
        let contiguous = dst.is_standard_layout();
        let mut temp: Vec<T> = if contiguous {
            Vec::new()
        } else {
            vec![T::zeroed(); dst.len()]
        };
        let got = {
            let out: &mut [T] = match dst.as_slice_mut() {
                Some(s) if contiguous => s,
                _ => &mut temp,
            };
            let out_bytes: &mut [u8] = bytemuck::cast_slice_mut(out);
            let sub = &mut self.sub;
            let liveness = &mut self.liveness;
            let stuck = &mut self.stuck;
            let grace = self.how.grace;
            let step = |strong: bool| {
                let mut attempt = |sub: &mut broadcast::Subscriber, strong: bool| {
                    sub.try_copy(seg, strong, |s| {
                        // Atomic loads only: the writer may be rewriting the slot; `try_copy`
                        // re-checks the stamp and discards a torn copy.
                        // SAFETY: slot `s`'s payload lies inside the mapping, 128-aligned,
                        // holding `out_bytes.len()` bytes, and this process reads it only
                        // atomically.
                        unsafe { atomic_copy(seg.payload(s), out_bytes) }
                    })
                };
                let mut r = attempt(sub, strong);
                // Only before a sleep, not while spinning.
                if r == Err(Miss::Wait)
                    && strong
                    && peers::recover_if_stuck(seg, stuck, sub.next(), grace)
                {
                    r = attempt(sub, strong);
                }
                if r == Err(Miss::Wait)
                    && strong
                    && writer_gone(seg, strong, || liveness.due(grace))
                {
                    r = attempt(sub, true);
                    if r == Err(Miss::Wait) {
                        return Some(Err(Error::Disconnected {
                            missing: Role::Writer,
                        }));
                    }
                }
                miss(r)
            };
            let deadline = timeout.and_then(wait::deadline);
            wait::wait_for(
                &seg.control().not_empty,
                wait::Sleeper::new(me, SLEEPING_NOT_EMPTY),
                self.how,
                deadline,
                step,
            )
            .unwrap_or(Err(Error::Timeout))
        };
        if let Err(Error::Lagged { missed }) = got {
            self.missed += missed;
        }
        let seq = got?;
        if !contiguous {
            let src = ndarray::ArrayView::from_shape(self.dim.clone(), &temp[..])
                .expect("the temporary has the ring's shape");
            dst.assign(&src);
        }
        Ok(seq)
    }

    /// Frames lost to lag so far (the sum of every `Lagged { missed }` reported).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-submissed-{}", std::process::id());
    /// # let _w = BroadcastWriter::<u8, ndarray::Ix1>::create(&name, 1, &Config::broadcast())?;
    /// let s = Subscriber::<u8, ndarray::Ix1>::open(&name, Start::Newest)?;
    /// assert_eq!(s.missed_total(), 0);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn missed_total(&self) -> u64 {
        self.missed
    }

    /// Frames passed over by [`Subscriber::latest`] so far.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-subskip-{}", std::process::id());
    /// # let _w = BroadcastWriter::<u8, ndarray::Ix1>::create(&name, 1, &Config::broadcast())?;
    /// let s = Subscriber::<u8, ndarray::Ix1>::open(&name, Start::Newest)?;
    /// assert_eq!(s.skipped_total(), 0);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn skipped_total(&self) -> u64 {
        self.skipped
    }

    /// Sequence number of the next frame `recv` returns.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-subnext-{}", std::process::id());
    /// # let _w = BroadcastWriter::<u8, ndarray::Ix1>::create(&name, 1, &Config::broadcast())?;
    /// let s = Subscriber::<u8, ndarray::Ix1>::open(&name, Start::Newest)?;
    /// assert_eq!(s.next_seq(), 1);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn next_seq(&self) -> u64 {
        self.sub.next()
    }

    /// The shape of each frame.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-subshape-{}", std::process::id());
    /// # let _w = BroadcastWriter::<u8, ndarray::Ix2>::create(&name, (2, 2), &Config::broadcast())?;
    /// let s = Subscriber::<u8, ndarray::Ix2>::open(&name, Start::Newest)?;
    /// assert_eq!(s.shape(), &[2, 2]);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn shape(&self) -> &[usize] {
        self.dim.slice()
    }

    /// The underlying segment.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-subseg-{}", std::process::id());
    /// # let _w = BroadcastWriter::<u8, ndarray::Ix1>::create(&name, 1, &Config::broadcast())?;
    /// let s = Subscriber::<u8, ndarray::Ix1>::open(&name, Start::Newest)?;
    /// assert_eq!(s.segment().slot_count(), 8);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn segment(&self) -> &Segment {
        &self.seg
    }
}

impl<T: Element, D: Dimension> Drop for Subscriber<T, D> {
    fn drop(&mut self) {
        // First: it writes our peer entry, which `unregister` hands back.
        #[cfg(feature = "async")]
        self.forget_poll();
        let me = self.seg.peer(self.entry);
        self.sub.unpin(me);
        peers::unregister(&self.seg, self.entry, Role::Subscriber);
        peers::leave(&self.seg);
    }
}

/// Whether the writer has attached once and is gone now (detached, or dead if `check_alive()`
/// lets us look).
fn writer_gone(seg: &Segment, strong: bool, check_alive: impl FnOnce() -> bool) -> bool {
    peers::disconnected(seg, Role::Writer, strong, check_alive)
}

/// A subscriber step's outcome for the waiting loop: `None` to keep waiting.
/// What one attempt of [`next_step`] is.
#[derive(Clone, Copy)]
struct Step {
    /// The RMW re-check before a sleep.
    strong: bool,
    /// Part of a call that waits (blocking or a future).
    block: bool,
    /// The newest frame (`latest`), not the next.
    latest: bool,
}

/// One attempt at the next frame (or the newest, counting the frames passed over in
/// `skipped`): `None` to keep waiting. Not while spinning (the same step polls there): before
/// each sleep, or when not blocking at all, a sweep recovers dead subscribers' pins and sleeper
/// counts, and a writer gone is `Disconnected`.
#[allow(clippy::too_many_arguments)]
fn next_step(
    seg: &Segment,
    me: &crate::header::PeerEntry,
    sub: &mut broadcast::Subscriber,
    liveness: &mut SweepClock,
    stuck: &mut Stuck,
    how: Waiting,
    step: Step,
    skipped: &mut u64,
) -> Option<Result<(usize, u64)>> {
    let Step {
        strong,
        block,
        latest,
    } = step;
    let mut attempt = |sub: &mut broadcast::Subscriber, strong: bool| {
        if latest {
            sub.try_latest(seg, me, strong).map(|(s, seq, k)| {
                *skipped = k;
                (s, seq)
            })
        } else {
            sub.try_recv(seg, me, strong)
        }
    };
    let mut r = attempt(sub, strong);
    if r == Err(Miss::Wait)
        && (strong || !block)
        && peers::recover_if_stuck(seg, stuck, sub.next(), how.grace)
    {
        r = attempt(sub, strong);
    }
    if r == Err(Miss::Wait)
        && (strong || !block)
        && writer_gone(seg, strong, || liveness.due(how.grace))
    {
        r = attempt(sub, true);
        if r == Err(Miss::Wait) {
            return Some(Err(Error::Disconnected {
                missing: Role::Writer,
            }));
        }
    }
    miss(r)
}

fn miss<R>(r: std::result::Result<R, Miss>) -> Option<Result<R>> {
    match r {
        Ok(got) => Some(Ok(got)),
        Err(Miss::Wait) => None,
        Err(Miss::Closed) => Some(Err(Error::Closed)),
        Err(Miss::Lagged(missed)) => Some(Err(Error::Lagged { missed })),
    }
}

impl<T: Element, D: Dimension> std::fmt::Debug for Subscriber<T, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("name", &self.seg.name())
            .field("dtype", &T::DTYPE)
            .field("shape", &self.shape())
            .field("next_seq", &self.next_seq())
            .finish()
    }
}

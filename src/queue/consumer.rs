//! The receiving side of a queue ring.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ndarray::{ArrayBase, DataMut, Dimension};

use crate::config::OpenOptions;
use crate::element::Element;
use crate::error::{Error, Result};
use crate::handle::accessors::segment_accessors;
use crate::handle::attach;
use crate::handle::constructors::{Attach, typed_constructors};
use crate::handle::slot::ReadSlot;
use crate::header::{PeerEntry, SLEEPING_NOT_EMPTY};
use crate::layout::RingKind;
use crate::protocol::spsc::Stop;
use crate::protocol::{RingMemory, mpmc, spsc};
use crate::role::Role;
use crate::shm::peers::{self, Registration};
use crate::shm::segment::Segment;
use crate::shm::wait::{self, Stuck, SweepClock, Waiting};
use crate::sync::Ordering::*;

/// Receives the slots of a queue ring (SPSC or MPMC) in place, each exactly once.
///
/// ```
/// use ndring::{Config, Consumer, Producer};
/// # let name = format!("/ndr-doc-cons-{}", std::process::id());
/// let mut rx = Consumer::<f32, ndarray::Ix1>::create(&name, 3, &Config::spsc())?;
/// let mut tx = Producer::<f32, ndarray::Ix1>::open(&name)?;
/// tx.send(&ndarray::arr1(&[1.0, 2.0, 3.0]))?;
/// let slot = rx.recv()?;
/// assert_eq!(slot.sum(), 6.0);
/// # Ok::<(), ndring::Error>(())
/// ```
pub struct Consumer<T: Element, D: Dimension> {
    pub(crate) seg: Arc<Segment>,
    pub(crate) entry: usize,
    pub(crate) spsc: Option<spsc::Consumer>,
    /// The position returned by the last `recv`, released at the next call: views of it borrow
    /// `self`, so none outlives that point.
    held: Option<u64>,
    pub(crate) dim: D,
    pub(crate) how: Waiting,
    /// When a release that woke a sleeping producer may next sweep for dead sleepers.
    clock: SweepClock,
    /// When an empty ring may next make us check whether its producers are alive.
    liveness: SweepClock,
    /// How long our calls have found the ring stuck at one position (a dead producer's claim
    /// holds `head` back): when to sweep for dead peers, whether we wait in one call or many.
    stuck: Stuck,
    /// The wait that a `Pending` `poll_recv` left registered (see `recv_async`).
    #[cfg(feature = "async")]
    pending: Option<crate::shm::wait_async::AsyncSleep>,
    _t: PhantomData<fn() -> T>,
}

#[cfg(feature = "async")]
mod recv_async;
#[cfg(feature = "async")]
pub use recv_async::{Recv, RecvStream};

typed_constructors!(
    Consumer,
    what: "a consumer",
    create: "Creates the ring `name` and attaches as a consumer (for consumers that start first). The last handle to detach (of any process) removes the name once nothing is left unread, unless `config.keep(true)`.",
    open_or_create: "Opens `name` if it holds a ring in use (checking type and shape), else creates it. A ring whose stream is over (closed, or left by every peer with nothing unread) is replaced; one a producer left with unread items is opened, so they are received.",
    config: Config::mpmc(),
    first: Producer,
);

segment_accessors!(
    impl[T: Element, D: Dimension] Consumer<T, D>,
    seg: seg,
    create: Consumer::<u8, ndarray::Ix2>::create,
    config: Config::mpmc(),
    tag: Consumer,
);

impl<T: Element, D: Dimension> Attach for Consumer<T, D> {
    const ROLE: Role = Role::Consumer;

    /// Attaches to `seg`: registers as a consumer, unless `created` (our entry in a ring we
    /// created, taken before READY by `shm::existing::create`).
    fn attach(seg: Segment, created: Option<Registration>, options: &OpenOptions) -> Result<Self> {
        // Cannot fail for a ring we created: we wrote its header for `T` and `D`.
        let dim = attach::check_as::<T, D>(&seg, attach::Family::Queue)?;
        let reg = match created {
            Some(reg) => reg,
            None => peers::register(&seg, Role::Consumer)?,
        };
        let mut spsc = None;
        if seg.kind() == RingKind::Spsc {
            let mut c = spsc::Consumer::attach(&seg, wait::notifier());
            // A dead predecessor held the items from `head` up to `holding - 1` (one, or several
            // through leases, see `lease/read.rs`): they are lost with it, never redelivered.
            if let Some(end) = reg.dead_holding {
                while c.head() < end {
                    seg.control().stats.recovered_reads.fetch_add(1, Relaxed);
                    if c.skip(seg.control()) {
                        wait::wake(&seg.control().not_full);
                    }
                }
            }
            spsc = Some(c);
        }
        Ok(Consumer {
            seg: Arc::new(seg),
            entry: reg.index,
            spsc,
            held: None,
            dim,
            how: Waiting {
                spin: options.spin,
                grace: options.grace,
            },
            clock: SweepClock::new(),
            liveness: SweepClock::new(),
            stuck: Stuck::new(),
            #[cfg(feature = "async")]
            pending: None,
            _t: PhantomData,
        })
    }
}

impl<T: Element, D: Dimension> Consumer<T, D> {
    /// Releases the slot of the previous `recv` to the producers.
    #[inline(always)]
    fn release_held(&mut self) {
        if let Some(pos) = self.held.take() {
            match &mut self.spsc {
                // `holding` keeps `pos + 1`: with `head` now past `pos`, a successor never
                // mistakes it for a held item.
                Some(c) => {
                    if c.release(self.seg.control()) {
                        self.woke(true);
                    }
                }
                None => {
                    let seg = &*self.seg;
                    mpmc::release(seg, seg.peer(self.entry), pos);
                    if wait::notify(&seg.control().not_full) {
                        self.woke(false);
                    }
                }
            }
        }
    }

    /// After a release that found the producer side asleep: wakes it (`wake`, SPSC: the
    /// notifier only said someone may sleep), and, should that sleeper have died asleep, takes
    /// its count back within a grace period, so that releases return to their fast path.
    #[cold]
    #[inline(never)]
    fn woke(&mut self, wake: bool) {
        let seg = &*self.seg;
        if wake {
            wait::wake(&seg.control().not_full);
        }
        if self.clock.due(self.how.grace) {
            peers::sweep(seg);
        }
    }

    /// Inlined into the caller: an SPSC ring's polls (a busy consumer's latency is this loop's
    /// exit, and a call returning through memory delays each hand-off: the W1 benchmark), and
    /// the rest out of line.
    #[inline(always)]
    fn recv_until(&mut self, deadline: Option<Instant>, block: bool) -> Result<ReadSlot<'_, T, D>> {
        self.release_held();
        // Not blocking: the one attempt, then `recv_other`'s disconnect check.
        let polls = if block { self.how.spin } else { 0 };
        let (pos, slot) = match self.spin(polls) {
            Some(got) => got?,
            None => self.recv_other(deadline, block)?,
        };
        Ok(self.hold(pos, slot))
    }

    /// Up to `polls` polls after a first attempt: `None` if all found the ring empty.
    #[inline(always)]
    fn spin(&mut self, polls: u32) -> Option<Result<(u64, usize)>> {
        let seg = &*self.seg;
        let me = seg.peer(self.entry);
        match &mut self.spsc {
            Some(c) => match spin_spsc(c, seg, polls) {
                Some(Ok(got)) => {
                    crate::protocol::peers::hold(me, got.0 + 1);
                    Some(Ok(got))
                }
                other => other,
            },
            None => match spin_mpmc(seg, me, polls) {
                Some(Ok(pos)) => {
                    // Tombstones skipped on the way were released: producers may have room (a
                    // load unless a producer sleeps).
                    wait::notify(&seg.control().not_full);
                    Some(Ok((pos, mpmc::slot_of(pos, seg.slot_count() as u64))))
                }
                Some(Err(e)) => Some(Err(e)),
                None => None,
            },
        }
    }

    /// The received position `pos` (slot `slot`), held until our next call.
    #[inline(always)]
    fn hold(&mut self, pos: u64, slot: usize) -> ReadSlot<'_, T, D> {
        self.held = Some(pos);
        // SAFETY: the protocol reserved position `pos` (slot `slot`) to us; it is released only
        // by `release_held`, at our next call, when the `&mut self` borrow that this ReadSlot
        // (and every view derived from it) holds has ended.
        unsafe { ReadSlot::new(&self.seg, slot, pos + 1, self.dim.clone()) }
    }

    /// The rest of [`Consumer::recv_until`]: an empty ring (SPSC: after the polls).
    #[inline(never)]
    fn recv_other(&mut self, deadline: Option<Instant>, block: bool) -> Result<(u64, usize)> {
        let seg = &*self.seg;
        let me = seg.peer(self.entry);
        let (pos, slot) = wait_recv(
            seg,
            me,
            &mut self.spsc,
            &mut self.liveness,
            &mut self.stuck,
            self.how,
            deadline,
            block,
        )?;
        self.took(pos);
        Ok((pos, slot))
    }

    /// After a receive that waited (here or in a future) took position `pos`.
    fn took(&self, pos: u64) {
        let seg = &*self.seg;
        if self.spsc.is_some() {
            crate::protocol::peers::hold(seg.peer(self.entry), pos + 1);
        } else {
            // Tombstones skipped on the way were released: producers may have room (a load
            // unless a producer sleeps).
            wait::notify(&seg.control().not_full);
        }
    }

    /// Receives the next item, waiting while the ring is empty. `Err(Closed)` once the ring is
    /// closed and drained; `Err(Disconnected { missing: Role::Producer })` once it is drained and
    /// no producer is attached any more (every producer dropped its handle, or died: a dead one
    /// is noticed within the grace period). `Disconnected` is not final: once a producer
    /// attaches again, `recv` receives again. A consumer that attached before any producer ever
    /// did waits for one.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-recv-{}", std::process::id());
    /// # let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc())?;
    /// # let mut rx = Consumer::<u8, ndarray::Ix1>::open(&name)?;
    /// tx.send(&ndarray::arr1(&[5, 6]))?;
    /// let slot = rx.recv()?;
    /// assert_eq!(slot.to_vec(), vec![5, 6]);
    /// # Ok::<(), Error>(())
    /// ```
    #[inline(always)]
    pub fn recv(&mut self) -> Result<ReadSlot<'_, T, D>> {
        self.recv_until(None, true)
    }

    /// Receives the next item if one is published: `Err(Empty)` otherwise (`Err(Closed)` or
    /// `Err(Disconnected { .. })` as [`Consumer::recv`] says).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-trecv-{}", std::process::id());
    /// # let _tx = Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc())?;
    /// let mut rx = Consumer::<u8, ndarray::Ix1>::open(&name)?;
    /// assert!(matches!(rx.try_recv(), Err(Error::Empty)));
    /// # Ok::<(), Error>(())
    /// ```
    #[inline]
    pub fn try_recv(&mut self) -> Result<ReadSlot<'_, T, D>> {
        self.recv_until(None, false)
    }

    /// Receives the next item, waiting at most `timeout`: `Err(Timeout)` after it.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-rto-{}", std::process::id());
    /// # let _tx = Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc())?;
    /// let mut rx = Consumer::<u8, ndarray::Ix1>::open(&name)?;
    /// let t = std::time::Duration::from_millis(10);
    /// assert!(matches!(rx.recv_timeout(t), Err(Error::Timeout)));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<ReadSlot<'_, T, D>> {
        match wait::deadline(timeout) {
            Some(d) => self.recv_until(Some(d), true),
            None => self.recv(),
        }
    }

    /// Receives the next item into `dst` (any memory layout, same shape) and releases the slot
    /// at once. Returns the item's sequence number.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-rinto-{}", std::process::id());
    /// # let mut tx = Producer::<u8, ndarray::Ix2>::create(&name, (2, 2), &Config::spsc())?;
    /// # let mut rx = Consumer::<u8, ndarray::Ix2>::open(&name)?;
    /// tx.send(&ndarray::arr2(&[[1, 2], [3, 4]]))?;
    /// let mut out = ndarray::Array2::<u8>::zeros((2, 2));
    /// rx.recv_into(&mut out.view_mut().reversed_axes())?;
    /// assert_eq!(out, ndarray::arr2(&[[1, 3], [2, 4]]));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn recv_into<S: DataMut<Elem = T>>(&mut self, dst: &mut ArrayBase<S, D>) -> Result<u64> {
        if dst.shape() != self.dim.slice() {
            return Err(Error::ShapeMismatch {
                expected: self.dim.slice().to_vec(),
                found: dst.shape().to_vec(),
            });
        }
        let seq = {
            let slot = self.recv()?;
            dst.assign(&*slot);
            slot.seq()
        };
        self.release_held();
        Ok(seq)
    }
}

/// Polls an SPSC ring up to `polls` times after a first attempt, as `wait::spin` does, but
/// written out rather than through closures: the compiler kept the closure out of line, a call
/// per poll returning its result through memory, which delayed each hand-off (the W1
/// benchmark).
///
/// Between attempts it polls only the stamp that the next item's publish sets, in a loop as
/// tight as a raw ping-pong's (a load, a compare, a spin hint): an item is seen 7 ns sooner
/// than through the full attempt at each poll (W1, TSC-stamped).
#[inline(always)]
fn spin_spsc(c: &mut spsc::Consumer, seg: &Segment, polls: u32) -> Option<Result<(u64, usize)>> {
    let mut i = 0u32;
    loop {
        match c.try_recv(seg, false) {
            Ok(got) => return Some(Ok(got)),
            Err(Stop::Closed) => return Some(Err(Error::Closed)),
            Err(Stop::Wait) => {}
        }
        if i == polls {
            return None;
        }
        let (stamp, published) = c.next_stamp(seg);
        loop {
            i += 1;
            wait::pause(i);
            // Relaxed: only a hint; the attempt re-reads the stamp with Acquire. A value at or
            // past `published` is the item, or a `CLOSED` mark (see `spsc::Producer::close`).
            if stamp.load(Relaxed) >= published || i == polls {
                break;
            }
        }
    }
}

/// MPMC: [`spin_spsc`]'s counterpart. Looks at `tail` (for `Closed`) once every 64 polls only
/// (see `mpmc::try_recv_polling`); the first attempt does not.
#[inline(always)]
fn spin_mpmc(seg: &Segment, me: &PeerEntry, polls: u32) -> Option<Result<u64>> {
    let mut i = 0u32;
    loop {
        match mpmc::try_recv_polling(seg, me, i % 64 == 63) {
            Ok(pos) => return Some(Ok(pos)),
            Err(Stop::Closed) => return Some(Err(Error::Closed)),
            Err(Stop::Wait) => {}
        }
        if i == polls {
            return None;
        }
        i += 1;
        wait::pause(i);
    }
}

/// The rest of a receive, once the polls found nothing: sleeps if `block`. Each attempt that
/// finds nothing (before each sleep, or the one attempt of a non-blocking call) looks for dead
/// peers once the ring has been stuck for a grace period (see [`Stuck`]), and tries again if a
/// sweep recovered something (a dead producer's claim turned into a tombstone).
#[cold]
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn wait_recv(
    seg: &Segment,
    me: &crate::header::PeerEntry,
    spsc: &mut Option<spsc::Consumer>,
    liveness: &mut SweepClock,
    stuck: &mut Stuck,
    how: Waiting,
    deadline: Option<Instant>,
    block: bool,
) -> Result<(u64, usize)> {
    let step = |strong: bool| recv_step(seg, me, spsc, liveness, stuck, how, strong, block);
    if block {
        let me = wait::Sleeper::new(me, SLEEPING_NOT_EMPTY);
        wait::sleep_until(&seg.control().not_empty, me, how, deadline, step)
            .unwrap_or(Err(Error::Timeout))
    } else {
        let mut step = step;
        step(false).unwrap_or(Err(Error::Empty))
    }
}

/// One attempt of [`wait_recv`] (and of an async receive): `None` to keep waiting.
#[allow(clippy::too_many_arguments)]
fn recv_step(
    seg: &Segment,
    me: &crate::header::PeerEntry,
    spsc: &mut Option<spsc::Consumer>,
    liveness: &mut SweepClock,
    stuck: &mut Stuck,
    how: Waiting,
    strong: bool,
    block: bool,
) -> Option<Result<(u64, usize)>> {
    let n = seg.slot_count() as u64;
    let attempt = |spsc: &mut Option<spsc::Consumer>, strong: bool| match spsc {
        Some(c) => c.try_recv(seg, strong),
        None => mpmc::try_recv(seg, me, strong).map(|pos| (pos, mpmc::slot_of(pos, n))),
    };
    let mut r = attempt(spsc, strong);
    if r == Err(Stop::Wait) && (strong || !block) {
        let at = match spsc {
            Some(c) => c.head(),
            None => mpmc::positions(seg).0,
        };
        if peers::recover_if_stuck(seg, stuck, at, how.grace) {
            r = attempt(spsc, strong);
        }
    }
    match r {
        // Nothing published, and no producer left to publish: drained for good, unless one
        // published and left just before we looked (the re-check sees it).
        Err(Stop::Wait)
            if peers::disconnected(seg, Role::Producer, strong, || liveness.due(how.grace)) =>
        {
            match attempt(spsc, true) {
                Err(Stop::Wait) => Some(Err(Error::Disconnected {
                    missing: Role::Producer,
                })),
                other => wait::attempt(other),
            }
        }
        other => wait::attempt(other),
    }
}

impl<T: Element, D: Dimension> Drop for Consumer<T, D> {
    fn drop(&mut self) {
        // First: it writes our peer entry, which `unregister` hands back.
        #[cfg(feature = "async")]
        self.forget_poll();
        self.release_held();
        if let Some(c) = &mut self.spsc {
            c.retire(self.seg.control());
        }
        peers::unregister(&self.seg, self.entry, Role::Consumer);
        peers::leave(&self.seg);
    }
}

impl<T: Element, D: Dimension> std::fmt::Debug for Consumer<T, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("name", &self.seg.name())
            .field("kind", &self.seg.kind())
            .field("dtype", &T::DTYPE)
            .field("shape", &self.shape())
            .finish()
    }
}

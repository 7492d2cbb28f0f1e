//! The sending side of a queue ring.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ndarray::{ArrayBase, Data, Dimension};

use crate::config::OpenOptions;
use crate::element::Element;
use crate::error::{Error, Result};
use crate::handle::accessors::segment_accessors;
use crate::handle::attach;
use crate::handle::constructors::{Attach, typed_constructors};
use crate::handle::publisher::{Publisher, QueuePublisher};
use crate::handle::slot::WriteSlot;
use crate::header::SLEEPING_NOT_FULL;
use crate::layout::RingKind;
use crate::protocol::spsc::Stop;
use crate::protocol::{RingMemory, mpmc, spsc};
use crate::role::Role;
use crate::shm::peers::{self, Registration};
use crate::shm::segment::Segment;
use crate::shm::wait::{self, Stuck, SweepClock, Waiting};

/// Item size (bytes) from which an SPSC producer reuses the slot released most recently by
/// default ([`Producer::reuse_recent_slots`]).
pub const RECENT_FIRST_MIN_BYTES: usize = 64 * 1024;

/// Claims slots of a queue ring (SPSC or MPMC), fills them in place and publishes them.
///
/// ```
/// use ndring::{Config, Consumer, Producer};
/// # let name = format!("/ndr-doc-prod-{}", std::process::id());
/// let mut tx = Producer::<u16, ndarray::Ix2>::create(&name, (2, 3), &Config::spsc())?;
/// let mut rx = Consumer::<u16, ndarray::Ix2>::open(&name)?;
/// let mut slot = tx.claim()?;
/// slot.fill(7);
/// slot.publish();
/// assert_eq!(rx.recv()?.sum(), 42);
/// # Ok::<(), ndring::Error>(())
/// ```
pub struct Producer<T: Element, D: Dimension> {
    inner: QueuePublisher,
    dim: D,
    _t: PhantomData<fn() -> T>,
}

#[cfg(feature = "async")]
mod claim_async;
#[cfg(feature = "async")]
pub use claim_async::Claim;

typed_constructors!(
    Producer,
    what: "a producer",
    create: "Creates the ring `name` for arrays of `shape` and attaches as its producer. The last handle to detach (of any process) removes the name once nothing is left unread, unless `config.keep(true)`.",
    open_or_create: "Opens `name` if it holds a ring in use (checking type and shape), else creates it: for processes that may start in either order. A ring whose stream is over (closed, or left by every peer with nothing unread) is replaced, never reused, so a name is never poisoned; a closed ring that live peers still use is [`Error::InUse`], naming them.",
    config: Config::mpmc(),
    first: Consumer,
);

segment_accessors!(
    impl[T: Element, D: Dimension] Producer<T, D>,
    seg: inner.seg,
    create: Producer::<u8, ndarray::Ix2>::create,
    config: Config::spsc(),
    tag: Producer,
);

impl<T: Element, D: Dimension> Attach for Producer<T, D> {
    const ROLE: Role = Role::Producer;

    /// Attaches to `seg`: registers as a producer, unless `created` (our entry in a ring we
    /// created, taken before READY by `shm::existing::create`).
    fn attach(seg: Segment, created: Option<Registration>, options: &OpenOptions) -> Result<Self> {
        // Cannot fail for a ring we created: we wrote its header for `T` and `D`.
        let dim = attach::check_as::<T, D>(&seg, attach::Family::Queue)?;
        let reg = match created {
            Some(reg) => reg,
            None => peers::register(&seg, Role::Producer)?,
        };
        let spsc = (seg.kind() == RingKind::Spsc).then(|| {
            let mut p = spsc::Producer::attach(&seg, wait::notifier());
            // Large items: rewrite the slot released last, so the working set stays ~2 slots.
            if seg.layout().payload_bytes >= RECENT_FIRST_MIN_BYTES {
                p.set_eager(seg.control(), true);
            }
            p
        });
        Ok(Producer {
            inner: QueuePublisher {
                seg: Arc::new(seg),
                entry: reg.index,
                spsc,
                how: Waiting {
                    spin: options.spin,
                    grace: options.grace,
                },
                clock: SweepClock::new(),
                liveness: SweepClock::new(),
                stuck: Stuck::new(),
                #[cfg(feature = "async")]
                pending: None,
            },
            dim,
            _t: PhantomData,
        })
    }
}

impl<T: Element, D: Dimension> Producer<T, D> {
    /// Claims a free slot, waiting while the ring is full. `Err(Closed)` once closed;
    /// `Err(Disconnected { missing: Role::Consumer })` while the ring is full and no consumer is
    /// attached any more (every consumer detached or died, noticed within the grace period);
    /// not final: a consumer that attaches makes room again. A producer whose ring fills before
    /// any consumer ever attached waits for one.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-claim-{}", std::process::id());
    /// let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 4, &Config::spsc())?;
    /// let mut slot = tx.claim()?;
    /// slot.assign(&ndarray::arr1(&[1, 2, 3, 4]));
    /// slot.publish();
    /// # ndring::remove(&name)?; // items left unread keep the name (last one out)
    /// # Ok::<(), Error>(())
    /// ```
    #[inline(always)]
    pub fn claim(&mut self) -> Result<WriteSlot<'_, T, D>> {
        self.claim_until(None, true)
    }

    /// Claims a free slot if one is free now: `Err(Full)` otherwise (`Err(Closed)` or
    /// `Err(Disconnected { .. })` as [`Producer::claim`] says).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-tclaim-{}", std::process::id());
    /// let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 4, &Config::spsc().slots(2))?;
    /// tx.try_claim()?.publish();
    /// tx.try_claim()?.publish();
    /// assert!(matches!(tx.try_claim(), Err(Error::Full)));
    /// # ndring::remove(&name)?; // items left unread keep the name (last one out)
    /// # Ok::<(), Error>(())
    /// ```
    #[inline]
    pub fn try_claim(&mut self) -> Result<WriteSlot<'_, T, D>> {
        self.claim_until(None, false)
    }

    /// Claims a free slot, waiting at most `timeout`: `Err(Timeout)` after it.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-clto-{}", std::process::id());
    /// let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 4, &Config::spsc().slots(2))?;
    /// tx.claim()?.publish();
    /// tx.claim()?.publish();
    /// let t = std::time::Duration::from_millis(10);
    /// assert!(matches!(tx.claim_timeout(t), Err(Error::Timeout)));
    /// # ndring::remove(&name)?; // items left unread keep the name (last one out)
    /// # Ok::<(), Error>(())
    /// ```
    pub fn claim_timeout(&mut self, timeout: Duration) -> Result<WriteSlot<'_, T, D>> {
        match wait::deadline(timeout) {
            Some(d) => self.claim_until(Some(d), true),
            None => self.claim(),
        }
    }

    #[inline(always)]
    fn claim_until(
        &mut self,
        deadline: Option<Instant>,
        block: bool,
    ) -> Result<WriteSlot<'_, T, D>> {
        let inner = &mut self.inner;
        // The common case first, without the waiting machinery: a free slot.
        let free = match &mut inner.spsc {
            Some(p) => p.try_claim(inner.seg.control(), false).ok(),
            None => {
                let seg = &*inner.seg;
                mpmc::try_claim(seg, seg.peer(inner.entry), false)
                    .ok()
                    .map(|pos| (pos, mpmc::slot_of(pos, seg.slot_count() as u64)))
            }
        };
        let (pos, slot) = match free {
            Some(got) => got,
            None => wait_claim(inner, deadline, block)?,
        };
        Ok(self.claimed(pos, slot))
    }

    /// The claimed position `pos` (slot `slot`), ours until published or dropped.
    #[inline(always)]
    fn claimed(&mut self, pos: u64, slot: usize) -> WriteSlot<'_, T, D> {
        // SAFETY: the protocol gave us position `pos`, hence slot `slot`, exclusively until we
        // publish or abandon it through `commit`; the payload holds `self.dim`'s elements.
        unsafe {
            WriteSlot::new(
                Publisher::Queue(&mut self.inner),
                slot,
                pos,
                pos + 1,
                self.dim.clone(),
            )
        }
    }

    /// [`Producer::claim`] without the borrowing [`WriteSlot`], for `lease/write.rs`: the position and
    /// slot, which the caller must publish or abandon through [`Producer::commit_position`].
    pub(crate) fn claim_position(
        &mut self,
        deadline: Option<Instant>,
        block: bool,
    ) -> Result<(u64, usize)> {
        let inner = &mut self.inner;
        let free = match &mut inner.spsc {
            Some(p) => p.try_claim(inner.seg.control(), false).ok(),
            None => None,
        };
        match free {
            Some(got) => Ok(got),
            None => wait_claim(inner, deadline, block),
        }
    }

    /// Publishes (`Some(user_len)`) or abandons (`None`) a position of [`Producer::claim_position`].
    pub(crate) fn commit_position(&mut self, slot: usize, pos: u64, publish: Option<u32>) {
        self.inner.commit(slot, pos, publish);
    }

    /// The array shape, for `lease/write.rs`.
    pub(crate) fn dim_clone(&self) -> D {
        self.dim.clone()
    }

    /// The shared segment, for `lease/write.rs`.
    pub(crate) fn shared_segment(&self) -> &Arc<Segment> {
        &self.inner.seg
    }

    /// Copies `array` into a claimed slot and publishes it. Any memory layout is accepted (a
    /// transposed or sliced view is copied element by element); the shape must match.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-send-{}", std::process::id());
    /// let mut tx = Producer::<i32, ndarray::Ix2>::create(&name, (2, 3), &Config::spsc())?;
    /// let mut rx = Consumer::<i32, ndarray::Ix2>::open(&name)?;
    /// let a = ndarray::arr2(&[[1, 2], [3, 4], [5, 6]]);
    /// tx.send(&a.t())?;
    /// assert_eq!(*rx.recv()?, a.t());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn send<S: Data<Elem = T>>(&mut self, array: &ArrayBase<S, D>) -> Result<u64> {
        if array.shape() != self.dim.slice() {
            return Err(Error::ShapeMismatch {
                expected: self.dim.slice().to_vec(),
                found: array.shape().to_vec(),
            });
        }
        let mut slot = self.claim()?;
        slot.assign(array);
        Ok(slot.publish())
    }

    /// SPSC rings: fill the slot the consumer released most recently (`true`), or the slots in
    /// turn (`false`). The default is recent-first for items of at least
    /// [`RECENT_FIRST_MIN_BYTES`] (64 KiB) and in turn for smaller ones. When the consumer keeps
    /// up, recent-first keeps the ring's working set at two slots whatever its depth (the slot
    /// of the newest item is rewritten only after the next publish, so that `ndring peek` can
    /// copy it): on a 2-core VM whose cores share the L3, 1080p frames at 8 and 16 slots ran
    /// about 2.5x as fast as in turn (README, Performance). Where producer and consumer sit on
    /// different last-level caches, rewriting the slot just read can cost more than a cold
    /// one: turn it off there. Small items stay in turn, where an item's control words share
    /// its entry's line. Delivery order and every guarantee are the same either way; MPMC rings
    /// ignore it.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-reuse-{}", std::process::id());
    /// let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 4, &Config::spsc())?;
    /// let mut rx = Consumer::<u8, ndarray::Ix1>::open(&name)?;
    /// tx.reuse_recent_slots(true);
    /// for i in 0..3 {
    ///     tx.send(&ndarray::arr1(&[i, i, i, i]))?;
    ///     let r = rx.recv()?;
    ///     assert_eq!(r[0], i);
    /// }
    /// # Ok::<(), Error>(())
    /// ```
    pub fn reuse_recent_slots(&mut self, on: bool) {
        if let Some(p) = &mut self.inner.spsc {
            p.set_eager(self.inner.seg.control(), on);
        }
    }

    /// Closes the ring: no claim succeeds after it (here or in other producers); consumers
    /// receive what was published, then `Err(Closed)`.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-close-{}", std::process::id());
    /// let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc())?;
    /// let mut rx = Consumer::<u8, ndarray::Ix1>::open(&name)?;
    /// tx.send(&ndarray::arr1(&[1, 2]))?;
    /// tx.close();
    /// assert_eq!(rx.recv()?[0], 1);
    /// assert!(matches!(rx.recv(), Err(Error::Closed)));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn close(&mut self) {
        let seg = &*self.inner.seg;
        match &mut self.inner.spsc {
            Some(p) => p.close(seg),
            None => mpmc::close(seg),
        }
        wait::notify(&seg.control().not_empty);
        wait::notify(&seg.control().not_full);
    }
}

/// The rest of a claim: MPMC, or a full SPSC ring (polls, then sleeps if `block`).
#[cold]
#[inline(never)]
fn wait_claim(
    inner: &mut QueuePublisher,
    deadline: Option<Instant>,
    block: bool,
) -> Result<(u64, usize)> {
    if block {
        if let Some(r) = spin_claim(inner, inner.how.spin) {
            return r;
        }
    }
    let seg = &*inner.seg;
    let me = seg.peer(inner.entry);
    let (spsc, liveness, stuck, how) = (
        &mut inner.spsc,
        &mut inner.liveness,
        &mut inner.stuck,
        inner.how,
    );
    let step = |strong: bool| claim_step(seg, me, spsc, liveness, stuck, how, strong);
    if block {
        let me = wait::Sleeper::new(me, SLEEPING_NOT_FULL);
        wait::sleep_until(&seg.control().not_full, me, how, deadline, step)
            .unwrap_or(Err(Error::Timeout))
    } else {
        let mut step = step;
        step(false).unwrap_or(Err(Error::Full))
    }
}

/// The polls of a blocking claim (one, then `polls` more), with the weak attempt alone inlined
/// into the poll loop (see `wait::spin`): `None` if every poll found the ring full.
fn spin_claim(inner: &mut QueuePublisher, polls: u32) -> Option<Result<(u64, usize)>> {
    let seg = &*inner.seg;
    let me = seg.peer(inner.entry);
    let n = seg.slot_count() as u64;
    match inner.spsc.as_mut() {
        Some(p) => wait::spin(polls, || wait::attempt(p.try_claim(seg.control(), false))),
        None => wait::spin(polls, || {
            wait::attempt(mpmc::try_claim(seg, me, false).map(|pos| (pos, mpmc::slot_of(pos, n))))
        }),
    }
}

/// One attempt of a claim that waits (blocking or in a future): `None` to keep waiting. An
/// attempt that finds no room (before each sleep, or the one attempt of a non-blocking call)
/// looks for dead peers once the ring has been stuck for a grace period (see `Stuck`), and
/// tries again if a sweep recovered something (a dead consumer's slot).
fn claim_step(
    seg: &Segment,
    me: &crate::header::PeerEntry,
    spsc: &mut Option<spsc::Producer>,
    liveness: &mut SweepClock,
    stuck: &mut Stuck,
    how: Waiting,
    strong: bool,
) -> Option<Result<(u64, usize)>> {
    let n = seg.slot_count() as u64;
    let attempt = |spsc: &mut Option<spsc::Producer>, strong: bool| match spsc {
        Some(p) => p.try_claim(seg.control(), strong),
        None => mpmc::try_claim(seg, me, strong).map(|pos| (pos, mpmc::slot_of(pos, n))),
    };
    let mut r = attempt(spsc, strong);
    if r == Err(Stop::Wait) {
        let at = match spsc {
            Some(p) => p.tail(),
            None => mpmc::positions(seg).1,
        };
        if peers::recover_if_stuck(seg, stuck, at, how.grace) {
            r = attempt(spsc, strong);
        }
    }
    match r {
        // Full, and no consumer left to make room (re-checked after looking, as a consumer
        // may release and leave in between).
        Err(Stop::Wait)
            if peers::disconnected(seg, Role::Consumer, strong, || liveness.due(how.grace)) =>
        {
            match attempt(spsc, true) {
                Err(Stop::Wait) => Some(Err(Error::Disconnected {
                    missing: Role::Consumer,
                })),
                other => wait::attempt(other),
            }
        }
        other => wait::attempt(other),
    }
}

impl<T: Element, D: Dimension> std::fmt::Debug for Producer<T, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("name", &self.inner.seg.name())
            .field("kind", &self.inner.seg.kind())
            .field("dtype", &T::DTYPE)
            .field("shape", &self.shape())
            .finish()
    }
}

impl<T: Element, D: Dimension> Producer<T, D> {
    /// Whether the name stays when the last handle detaches ([`Config::keep`]), for the whole
    /// ring (every process sees the change).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-keep-{}", std::process::id());
    /// let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 3, &Config::spsc())?;
    /// tx.set_keep(true);
    /// drop(tx);
    /// ndring::remove(&name)?;
    /// # Ok::<(), Error>(())
    /// ```
    pub fn set_keep(&mut self, keep: bool) {
        self.inner.seg.set_keep(keep);
    }
}

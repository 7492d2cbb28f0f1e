//! Owned leases: received and claimed slots that own their reservation instead of borrowing
//! their handle, for callers that hold several slots at once and release them in any order
//! (the Python binding, where a slot lives as long as a numpy array that refers to it).
//!
//! [`LeaseConsumer`] wraps a [`Consumer`]; each [`ReadLease`] it hands out is `'static` and
//! `Send`, shares the consumer's state through an `Arc`, and releases its slot when dropped:
//!
//! * SPSC: the consumer reads ahead of `head` (positions `head..read` are held); a release out of
//!   order is remembered, and `head` advances over every contiguous released position, so the
//!   producer still sees in-order releases. The consumer's peer entry records `read` in
//!   `holding`, so a successor that takes over a dead lease consumer skips every item it held.
//! * MPMC: each held slot uses one peer entry of this process (the consumer's own, then extra
//!   ones registered on demand and kept until the `LeaseConsumer` is gone), so that dead-peer
//!   recovery returns every slot a dead process held, as for one slot per consumer.
//!
//! A consumer that holds every slot of the ring could never receive again: `recv_lease` then
//! fails with [`Error::TooManyLeases`] instead of waiting forever.
//!
//! [`LeaseProducer`] wraps a [`Producer`]; its [`WriteLease`] is a claimed slot that owns its
//! claim (one at a time per producer, as for `claim`), published with [`WriteLease::publish`] or
//! abandoned when dropped.
//!
//! Broadcast rings have no leases: a subscriber pins one frame at a time (the ring is sized
//! `slots >= max_subscribers + 2` for that), so a caller that cannot bound a frame's lifetime
//! copies frames out with [`crate::Subscriber::recv_into`].

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ndarray::{ArrayBase, ArrayView, ArrayViewMut, Data, Dimension};

use crate::consumer::Consumer;
use crate::element::Element;
use crate::error::{Error, Result};
use crate::header::{CLOSED, SLEEPING_NOT_EMPTY};
use crate::peers::{self, Role};
use crate::producer::Producer;
use crate::protocol::{RingMemory, mpmc, spsc, spsc::Stop};
use crate::segment::Segment;
use crate::sync::Ordering::*;
use crate::wait::{self, SweepClock, Waiting};

/// Locks `m`, ignoring poisoning: the state is only changed by short steps that cannot panic
/// half-way (a poisoned lock would otherwise leak every slot a lease still holds).
fn lock<S>(m: &Mutex<S>) -> MutexGuard<'_, S> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A [`Consumer`] whose receives are owned [`ReadLease`]s, any number held at once (fewer than
/// the ring's slots), released in any order.
///
/// ```
/// use ndring::{Config, Consumer, LeaseConsumer, Producer};
/// # let name = format!("/ndr-doc-lease-{}", std::process::id());
/// let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc().slots(4))?;
/// let mut rx = LeaseConsumer::from(Consumer::<u8, ndarray::Ix1>::open(&name)?);
/// for i in 0..3 {
///     tx.send(&ndarray::arr1(&[i, i]))?;
/// }
/// let a = rx.recv_lease()?;
/// let b = rx.recv_lease()?;
/// drop(a); // out of order: slot 0 returns to the producer only with b's
/// assert_eq!(b.view()[0], 1);
/// assert_eq!(rx.recv_lease()?.seq(), 3);
/// # Ok::<(), ndring::Error>(())
/// ```
pub struct LeaseConsumer<T: Element, D: Dimension> {
    shared: Arc<ReadShared<T, D>>,
}

/// What a `LeaseConsumer` and its leases share.
struct ReadShared<T: Element, D: Dimension> {
    /// Kept outside the lock: leases read their slot's control words through it.
    seg: Arc<Segment>,
    dim: D,
    how: Waiting,
    state: Mutex<ReadState<T, D>>,
}

/// The mutable part, changed under the lock by one step (a receive attempt or a release).
struct ReadState<T: Element, D: Dimension> {
    /// The registration (its own one-slot `recv` is never used, so it holds nothing itself).
    consumer: Consumer<T, D>,
    /// SPSC: the next position to read; positions `head..read` are held or released early.
    read: u64,
    /// SPSC: a value `tail` had (with its `CLOSED` bit).
    cached_tail: u64,
    /// SPSC: per entry (`pos % slots`), whether its position (in `head..read`) was released
    /// already.
    released: Vec<bool>,
    /// MPMC: this process's peer entries used to take slots (the consumer's own first), and
    /// the position each holds now.
    entries: Vec<(usize, Option<u64>)>,
    /// Slots held by live leases.
    held: usize,
    /// Rate-limits the `/proc` liveness checks of a receive that finds no producer.
    liveness: SweepClock,
}

/// A received slot that owns its reservation: read it through [`ReadLease::view`]; dropping it
/// returns the slot to the ring (SPSC: once every older lease is dropped too).
///
/// ```
/// # use ndring::*;
/// # let name = format!("/ndr-doc-rlease-{}", std::process::id());
/// let mut tx = Producer::<u16, ndarray::Ix1>::create(&name, 3, &Config::mpmc())?;
/// let mut rx = LeaseConsumer::from(Consumer::<u16, ndarray::Ix1>::open(&name)?);
/// tx.send(&ndarray::arr1(&[1, 2, 3]))?;
/// let lease = rx.recv_lease()?;
/// let t = std::thread::spawn(move || lease.view().sum()); // 'static and Send
/// assert_eq!(t.join().unwrap(), 6);
/// # Ok::<(), ndring::Error>(())
/// ```
pub struct ReadLease<T: Element, D: Dimension> {
    shared: Arc<ReadShared<T, D>>,
    pos: u64,
    slot: usize,
    /// MPMC: index into `ReadState::entries` of the entry that took it.
    entry: usize,
}

impl<T: Element, D: Dimension> From<Consumer<T, D>> for LeaseConsumer<T, D> {
    /// Turns a consumer into a lease consumer; it keeps the consumer's registration (the role
    /// stays taken until the `LeaseConsumer` and every lease are dropped).
    fn from(consumer: Consumer<T, D>) -> Self {
        let seg = consumer.seg.clone();
        let read = consumer.spsc.as_ref().map_or(0, |c| c.head());
        let entries = vec![(consumer.entry, None)];
        LeaseConsumer {
            shared: Arc::new(ReadShared {
                dim: consumer.dim.clone(),
                how: consumer.how,
                state: Mutex::new(ReadState {
                    read,
                    cached_tail: seg.control().tail.load(Acquire),
                    released: vec![false; seg.slot_count()],
                    entries,
                    held: 0,
                    liveness: SweepClock::new(),
                    consumer,
                }),
                seg,
            }),
        }
    }
}

impl<T: Element, D: Dimension> ReadState<T, D> {
    /// One receive attempt with the MPMC entry `entry` (an index into `entries`); `None` to wait.
    fn step(&mut self, seg: &Segment, entry: usize, strong: bool) -> Option<Result<(u64, usize)>> {
        let n = seg.slot_count() as u64;
        if self.consumer.spsc.is_some() {
            let c = seg.control();
            if self.read >= self.cached_tail & !CLOSED {
                // Acquire (or the RMW before a sleep, see `protocol`): `tail` is advanced after
                // the item's contents are written.
                self.cached_tail = if strong {
                    c.tail.fetch_add(0, AcqRel)
                } else {
                    c.tail.load(Acquire)
                };
                let tail = self.cached_tail & !CLOSED;
                if self.read >= tail {
                    if self.cached_tail & CLOSED != 0 {
                        return Some(Err(Error::Closed));
                    }
                    // Every slot is ours (some maybe released, but not the oldest): the producer
                    // waits for us, and we would wait for it.
                    let head = self.consumer.spsc.as_ref().map_or(0, |c| c.head());
                    if tail - head >= n {
                        return Some(Err(self.stalled()));
                    }
                    return None;
                }
            }
            let pos = self.read;
            self.read += 1;
            // What a successor skips should we die holding it (see `Consumer::attach`).
            seg.peer(self.consumer.entry)
                .holding
                .store(self.read, Relaxed);
            self.held += 1;
            // The entry of `pos` names its data slot (not always `pos % n`: a producer may reuse
            // the slot released most recently, see `protocol::spsc`); the Acquire load of `tail`
            // above made the name visible.
            Some(Ok((pos, spsc::data_slot_of(seg, (pos % n) as usize))))
        } else {
            let me = seg.peer(self.entries[entry].0);
            match mpmc::try_recv(seg, me, strong) {
                Ok(pos) => {
                    // Tombstones skipped on the way were released: producers may have room.
                    wait::notify(&seg.control().not_full);
                    self.entries[entry].1 = Some(pos);
                    self.held += 1;
                    Some(Ok((pos, (pos % n) as usize)))
                }
                Err(Stop::Closed) => Some(Err(Error::Closed)),
                Err(Stop::Wait) => {
                    // Nothing left to take, and the next position's slot still holds one we
                    // hold: no producer can publish until we release it.
                    let c = seg.control();
                    let tail = c.tail.load(Acquire) & !CLOSED;
                    let head = c.head.load(Acquire);
                    let blocking = tail.checked_sub(n);
                    if head == tail
                        && self
                            .entries
                            .iter()
                            .any(|&(_, p)| p.is_some() && p == blocking)
                    {
                        return Some(Err(self.stalled()));
                    }
                    None
                }
            }
        }
    }

    /// Releases position `pos`, taken with the MPMC entry `entry`.
    fn release(&mut self, seg: &Segment, pos: u64, entry: usize) {
        self.held -= 1;
        match &mut self.consumer.spsc {
            Some(c) => {
                let n = seg.slot_count() as u64;
                // Indexed by entry (`pos % n`), the order `head` walks in; the data slot may differ.
                self.released[(pos % n) as usize] = true;
                // `head` advances over every contiguous released position, in order.
                while c.head() < self.read && self.released[(c.head() % n) as usize] {
                    self.released[(c.head() % n) as usize] = false;
                    if c.release(seg.control()) {
                        wait::wake(&seg.control().not_full);
                    }
                }
            }
            None => {
                let (index, held) = &mut self.entries[entry];
                mpmc::release(seg, seg.peer(*index), pos);
                *held = None;
                wait::notify(&seg.control().not_full);
            }
        }
    }

    /// The error for a receive that could only succeed after one of our own leases is dropped.
    fn stalled(&self) -> Error {
        Error::TooManyLeases {
            held: self.held,
            max: self.held,
            action: "receiving again: the ring is full and the slot producers need next is one \
                     this consumer holds (drop the oldest received array first)",
        }
    }

    /// The MPMC entry for the next receive: a free one of ours, or a newly registered one.
    fn free_entry(&mut self, seg: &Segment) -> Result<usize> {
        if self.consumer.spsc.is_some() {
            return Ok(0);
        }
        if let Some(i) = self.entries.iter().position(|&(_, held)| held.is_none()) {
            return Ok(i);
        }
        match peers::register(seg, Role::Consumer) {
            Ok(reg) => {
                self.entries.push((reg.index, None));
                Ok(self.entries.len() - 1)
            }
            Err(Error::TooManyPeers { .. }) => Err(Error::TooManyLeases {
                held: self.held,
                max: self.held,
                action: "receiving (every consumer entry of the ring's peer table is in use)",
            }),
            Err(e) => Err(e),
        }
    }
}

impl<T: Element, D: Dimension> Drop for ReadState<T, D> {
    fn drop(&mut self) {
        // Every lease is gone (each holds the state): only the extra MPMC entries remain ours.
        for &(index, _) in &self.entries[1..] {
            peers::unregister(&self.consumer.seg, index, Role::Consumer);
        }
    }
}

impl<T: Element, D: Dimension> LeaseConsumer<T, D> {
    fn recv_until(&mut self, deadline: Option<Instant>, block: bool) -> Result<ReadLease<T, D>> {
        let sh = &*self.shared;
        let seg = &*sh.seg;
        let entry = {
            let mut st = lock(&sh.state);
            let max = seg.slot_count();
            if st.held >= max {
                return Err(Error::TooManyLeases {
                    held: st.held,
                    max,
                    action: "receiving again (holding every slot, no item could ever arrive)",
                });
            }
            st.free_entry(seg)?
        };
        // The lock is taken per attempt, never across a sleep: leases dropped meanwhile (on other
        // threads) release their slots without waiting for us.
        let step = |strong: bool| {
            let mut st = lock(&sh.state);
            match st.step(seg, entry, strong) {
                // Nothing published, and no producer left to publish: drained for good, unless
                // one published and left just before we looked (the re-check sees it).
                None if peers::disconnected(seg, Role::Producer, strong, || {
                    st.liveness.due(sh.how.grace)
                }) =>
                {
                    st.step(seg, entry, true).or(Some(Err(Error::Disconnected {
                        missing: Role::Producer,
                    })))
                }
                other => other,
            }
        };
        let got = if block {
            match wait::spin(sh.how.spin, || lock(&sh.state).step(seg, entry, false)) {
                Some(r) => Some(r),
                None => {
                    let index = lock(&sh.state).entries[entry].0;
                    let me = wait::Sleeper::new(seg.peer(index), SLEEPING_NOT_EMPTY);
                    wait::sleep_until(&seg.control().not_empty, me, sh.how, deadline, step, || {
                        peers::sweep(seg);
                    })
                }
            }
        } else {
            step(false)
        };
        let (pos, slot) = match got {
            Some(r) => r?,
            None if block => return Err(Error::Timeout),
            None => return Err(Error::Empty),
        };
        Ok(ReadLease {
            shared: self.shared.clone(),
            pos,
            slot,
            entry,
        })
    }

    /// Receives the next item as a lease, waiting while the ring is empty. `Err(Closed)` once the
    /// ring is closed and drained; `Err(TooManyLeases)` if this consumer holds every slot.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-lrecv-{}", std::process::id());
    /// # let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 1, &Config::spsc().slots(2))?;
    /// let mut rx = LeaseConsumer::from(Consumer::<u8, ndarray::Ix1>::open(&name)?);
    /// tx.send(&ndarray::arr1(&[7]))?;
    /// tx.send(&ndarray::arr1(&[8]))?;
    /// let kept = (rx.recv_lease()?, rx.recv_lease()?);
    /// assert!(matches!(rx.recv_lease(), Err(Error::TooManyLeases { held: 2, max: 2, .. })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn recv_lease(&mut self) -> Result<ReadLease<T, D>> {
        self.recv_until(None, true)
    }

    /// [`LeaseConsumer::recv_lease`] without waiting: `Err(Empty)` if nothing is published.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-ltrecv-{}", std::process::id());
    /// # let _tx = Producer::<u8, ndarray::Ix1>::create(&name, 1, &Config::spsc())?;
    /// let mut rx = LeaseConsumer::from(Consumer::<u8, ndarray::Ix1>::open(&name)?);
    /// assert!(matches!(rx.try_recv_lease(), Err(Error::Empty)));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn try_recv_lease(&mut self) -> Result<ReadLease<T, D>> {
        self.recv_until(None, false)
    }

    /// [`LeaseConsumer::recv_lease`], waiting at most `timeout`: `Err(Timeout)` after it.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-lrto-{}", std::process::id());
    /// # let _tx = Producer::<u8, ndarray::Ix1>::create(&name, 1, &Config::mpmc())?;
    /// let mut rx = LeaseConsumer::from(Consumer::<u8, ndarray::Ix1>::open(&name)?);
    /// let t = std::time::Duration::from_millis(5);
    /// assert!(matches!(rx.recv_lease_timeout(t), Err(Error::Timeout)));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn recv_lease_timeout(&mut self, timeout: Duration) -> Result<ReadLease<T, D>> {
        match wait::deadline(timeout) {
            Some(d) => self.recv_until(Some(d), true),
            None => self.recv_lease(),
        }
    }

    /// Slots held by live leases of this consumer.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-lheld-{}", std::process::id());
    /// # let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 1, &Config::spsc())?;
    /// let mut rx = LeaseConsumer::from(Consumer::<u8, ndarray::Ix1>::open(&name)?);
    /// tx.send(&ndarray::arr1(&[1]))?;
    /// let lease = rx.recv_lease()?;
    /// assert_eq!(rx.held(), 1);
    /// drop(lease);
    /// assert_eq!(rx.held(), 0);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn held(&self) -> usize {
        lock(&self.shared.state).held
    }

    /// The shape of each slot's array.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-lshape-{}", std::process::id());
    /// let rx = LeaseConsumer::from(Consumer::<u8, ndarray::Ix2>::create(&name, (2, 3), &Config::spsc())?);
    /// assert_eq!(rx.shape(), &[2, 3]);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn shape(&self) -> &[usize] {
        self.shared.dim.slice()
    }

    /// The underlying segment.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-lseg-{}", std::process::id());
    /// let rx = LeaseConsumer::from(Consumer::<u8, ndarray::Ix1>::create(&name, 3, &Config::mpmc())?);
    /// assert_eq!(rx.segment().kind(), RingKind::Mpmc);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn segment(&self) -> &Segment {
        &self.shared.seg
    }
}

impl<T: Element, D: Dimension> ReadLease<T, D> {
    /// The item, read in place.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-lview-{}", std::process::id());
    /// # let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc())?;
    /// # let mut rx = LeaseConsumer::from(Consumer::<u8, ndarray::Ix1>::open(&name)?);
    /// tx.send(&ndarray::arr1(&[3, 4]))?;
    /// assert_eq!(rx.recv_lease()?.view().to_vec(), vec![3, 4]);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn view(&self) -> ArrayView<'_, T, D> {
        // The protocol gave the slot to us and only `Drop` releases it; the mapping is kept alive
        // by `shared.seg`.
        // SAFETY: the slot is reserved to this lease until it is dropped, so nobody writes it while
        // the view borrows `self`; its payload is 128-aligned and holds `dim`'s elements of `T`.
        unsafe { ArrayView::from_shape_ptr(self.shared.dim.clone(), self.as_ptr()) }
    }

    /// The first element of the item (C order), for foreign views (numpy): valid for reads of
    /// the whole item while this lease is alive, and no longer.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-lptr-{}", std::process::id());
    /// # let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc())?;
    /// # let mut rx = LeaseConsumer::from(Consumer::<u8, ndarray::Ix1>::open(&name)?);
    /// tx.send(&ndarray::arr1(&[3, 4]))?;
    /// let lease = rx.recv_lease()?;
    /// assert_eq!(lease.as_ptr(), lease.view().as_ptr());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn as_ptr(&self) -> *const T {
        self.shared.seg.payload(self.slot).cast::<T>()
    }

    /// The item's sequence number (its position in the stream, 1-based).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-lseq-{}", std::process::id());
    /// # let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc())?;
    /// # let mut rx = LeaseConsumer::from(Consumer::<u8, ndarray::Ix1>::open(&name)?);
    /// tx.send(&ndarray::arr1(&[3, 4]))?;
    /// assert_eq!(rx.recv_lease()?.seq(), 1);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn seq(&self) -> u64 {
        self.pos + 1
    }

    /// `CLOCK_MONOTONIC` nanoseconds at publish, on rings created with
    /// [`Config::timestamps`](crate::Config::timestamps); `None` on others.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-lts-{}", std::process::id());
    /// # let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc())?;
    /// # let mut rx = LeaseConsumer::from(Consumer::<u8, ndarray::Ix1>::open(&name)?);
    /// tx.send(&ndarray::arr1(&[3, 4]))?;
    /// assert_eq!(rx.recv_lease()?.timestamp_ns(), None);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn timestamp_ns(&self) -> Option<u64> {
        let seg = &self.shared.seg;
        seg.timestamps()
            .then(|| seg.slot(self.slot).timestamp_ns.load(Relaxed))
    }

    /// The user metadata bytes the producer wrote with the item (`set_user_meta`).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-lmeta-{}", std::process::id());
    /// # let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc())?;
    /// # let mut rx = LeaseConsumer::from(Consumer::<u8, ndarray::Ix1>::open(&name)?);
    /// let mut slot = tx.claim()?;
    /// slot.set_user_meta(&7u16)?;
    /// slot.publish();
    /// assert_eq!(rx.recv_lease()?.user_meta_bytes(), &7u16.to_ne_bytes());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn user_meta_bytes(&self) -> &[u8] {
        let seg = &self.shared.seg;
        // A hostile length is clamped to the room the header declares.
        let len = (seg.slot(self.slot).user_len.load(Relaxed) as usize).min(seg.user_meta_size());
        // SAFETY: the slot, its metadata included, is reserved to this lease (see `view`); `len`
        // bytes of metadata lie between the slot control block and the payload.
        unsafe { std::slice::from_raw_parts(seg.user_meta(self.slot), len) }
    }

    /// The slot index within the ring.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-lidx-{}", std::process::id());
    /// # let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc())?;
    /// # let mut rx = LeaseConsumer::from(Consumer::<u8, ndarray::Ix1>::open(&name)?);
    /// tx.send(&ndarray::arr1(&[3, 4]))?;
    /// assert_eq!(rx.recv_lease()?.slot_index(), 0);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn slot_index(&self) -> usize {
        self.slot
    }
}

impl<T: Element, D: Dimension> Drop for ReadLease<T, D> {
    fn drop(&mut self) {
        let sh = &*self.shared;
        lock(&sh.state).release(&sh.seg, self.pos, self.entry);
    }
}

impl<T: Element, D: Dimension> std::fmt::Debug for ReadLease<T, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadLease")
            .field("seq", &self.seq())
            .field("slot", &self.slot)
            .finish()
    }
}

impl<T: Element, D: Dimension> std::fmt::Debug for LeaseConsumer<T, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseConsumer")
            .field("name", &self.shared.seg.name())
            .field("shape", &self.shape())
            .finish()
    }
}

/// A [`Producer`] whose claims are owned [`WriteLease`]s (one at a time).
///
/// ```
/// use ndring::{Config, Consumer, LeaseProducer, Producer};
/// # let name = format!("/ndr-doc-lprod-{}", std::process::id());
/// let mut tx = LeaseProducer::from(Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc())?);
/// let mut rx = Consumer::<u8, ndarray::Ix1>::open(&name)?;
/// let mut lease = tx.claim_lease()?;
/// lease.view_mut().fill(9);
/// lease.set_user_meta_bytes(b"id")?;
/// assert_eq!(lease.publish(), 1);
/// assert_eq!(rx.recv()?.to_vec(), vec![9, 9]);
/// # Ok::<(), ndring::Error>(())
/// ```
pub struct LeaseProducer<T: Element, D: Dimension> {
    shared: Arc<WriteShared<T, D>>,
}

struct WriteShared<T: Element, D: Dimension> {
    seg: Arc<Segment>,
    dim: D,
    state: Mutex<WriteState<T, D>>,
}

struct WriteState<T: Element, D: Dimension> {
    producer: Producer<T, D>,
    /// A `WriteLease` is alive (a producer claims one position at a time).
    claimed: bool,
}

/// A claimed slot that owns its claim: fill it through [`WriteLease::view_mut`] (or
/// [`WriteLease::as_mut_ptr`]), then [`publish`](WriteLease::publish) it; dropped unpublished,
/// it is abandoned.
///
/// ```
/// # use ndring::*;
/// # let name = format!("/ndr-doc-wlease-{}", std::process::id());
/// let mut tx = LeaseProducer::from(Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::mpmc())?);
/// let mut rx = Consumer::<u8, ndarray::Ix1>::open(&name)?;
/// drop(tx.claim_lease()?); // abandoned: never received
/// tx.claim_lease()?.publish();
/// assert_eq!(rx.recv()?.seq(), 2);
/// # Ok::<(), Error>(())
/// ```
#[must_use = "a WriteLease dropped without publish() is abandoned"]
pub struct WriteLease<T: Element, D: Dimension> {
    shared: Arc<WriteShared<T, D>>,
    pos: u64,
    slot: usize,
    user_len: u32,
    done: bool,
}

impl<T: Element, D: Dimension> From<Producer<T, D>> for LeaseProducer<T, D> {
    /// Turns a producer into a lease producer (keeping its registration and name ownership).
    fn from(producer: Producer<T, D>) -> Self {
        LeaseProducer {
            shared: Arc::new(WriteShared {
                seg: producer.shared_segment().clone(),
                dim: producer.dim_clone(),
                state: Mutex::new(WriteState {
                    producer,
                    claimed: false,
                }),
            }),
        }
    }
}

impl<T: Element, D: Dimension> LeaseProducer<T, D> {
    fn claim_until(&mut self, deadline: Option<Instant>, block: bool) -> Result<WriteLease<T, D>> {
        let mut st = lock(&self.shared.state);
        if st.claimed {
            return Err(Error::TooManyLeases {
                held: 1,
                max: 1,
                action: "claiming again",
            });
        }
        // The lock is held across the wait: no lease of ours is alive to need it.
        let (pos, slot) = st.producer.claim_position(deadline, block)?;
        st.claimed = true;
        Ok(WriteLease {
            shared: self.shared.clone(),
            pos,
            slot,
            user_len: 0,
            done: false,
        })
    }

    /// Claims a free slot as a lease, waiting while the ring is full. `Err(Closed)` once closed;
    /// `Err(TooManyLeases)` while a previous lease of this producer is alive.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-lclaim-{}", std::process::id());
    /// let mut tx = LeaseProducer::from(Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc())?);
    /// let first = tx.claim_lease()?;
    /// assert!(matches!(tx.claim_lease(), Err(Error::TooManyLeases { .. })));
    /// first.publish();
    /// # Ok::<(), Error>(())
    /// ```
    pub fn claim_lease(&mut self) -> Result<WriteLease<T, D>> {
        self.claim_until(None, true)
    }

    /// [`LeaseProducer::claim_lease`] without waiting: `Err(Full)` if no slot is free.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-ltclaim-{}", std::process::id());
    /// let mut tx = LeaseProducer::from(Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc().slots(2))?);
    /// tx.try_claim_lease()?.publish();
    /// tx.try_claim_lease()?.publish();
    /// assert!(matches!(tx.try_claim_lease(), Err(Error::Full)));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn try_claim_lease(&mut self) -> Result<WriteLease<T, D>> {
        self.claim_until(None, false)
    }

    /// [`LeaseProducer::claim_lease`], waiting at most `timeout`: `Err(Timeout)` after it.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-lclto-{}", std::process::id());
    /// let mut tx = LeaseProducer::from(Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc().slots(2))?);
    /// tx.claim_lease()?.publish();
    /// tx.claim_lease()?.publish();
    /// let t = std::time::Duration::from_millis(5);
    /// assert!(matches!(tx.claim_lease_timeout(t), Err(Error::Timeout)));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn claim_lease_timeout(&mut self, timeout: Duration) -> Result<WriteLease<T, D>> {
        match wait::deadline(timeout) {
            Some(d) => self.claim_until(Some(d), true),
            None => self.claim_lease(),
        }
    }

    /// Closes the ring (see [`Producer::close`]).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-lclose-{}", std::process::id());
    /// let mut tx = LeaseProducer::from(Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc())?);
    /// tx.close();
    /// assert!(matches!(tx.claim_lease(), Err(Error::Closed)));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn close(&mut self) {
        lock(&self.shared.state).producer.close();
    }

    /// The shape of each slot's array.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-lpshape-{}", std::process::id());
    /// let tx = LeaseProducer::from(Producer::<u8, ndarray::Ix2>::create(&name, (2, 3), &Config::spsc())?);
    /// assert_eq!(tx.shape(), &[2, 3]);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn shape(&self) -> &[usize] {
        self.shared.dim.slice()
    }

    /// The underlying segment.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-lpseg-{}", std::process::id());
    /// let tx = LeaseProducer::from(Producer::<u8, ndarray::Ix1>::create(&name, 3, &Config::spsc())?);
    /// assert_eq!(tx.segment().slot_count(), 4);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn segment(&self) -> &Segment {
        &self.shared.seg
    }
}

impl<T: Element, D: Dimension> WriteLease<T, D> {
    /// The slot, writable in place.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-lvm-{}", std::process::id());
    /// # let mut tx = LeaseProducer::from(Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc())?);
    /// let mut lease = tx.claim_lease()?;
    /// lease.view_mut().assign(&ndarray::arr1(&[1, 2]));
    /// lease.publish();
    /// # Ok::<(), Error>(())
    /// ```
    pub fn view_mut(&mut self) -> ArrayViewMut<'_, T, D> {
        // SAFETY: the claim gives this lease the slot exclusively until publish or drop; the view
        // borrows `self` mutably, so it is the only one; the payload is 128-aligned inside the
        // mapping (kept alive by `shared.seg`) and holds `dim`'s elements of `T`.
        unsafe { ArrayViewMut::from_shape_ptr(self.shared.dim.clone(), self.as_mut_ptr()) }
    }

    /// The first element of the slot (C order), for foreign views (numpy): valid for reads and
    /// writes of the whole item until this lease is published or dropped, and no longer.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-lmptr-{}", std::process::id());
    /// # let mut tx = LeaseProducer::from(Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc())?);
    /// let mut lease = tx.claim_lease()?;
    /// assert!(!lease.as_mut_ptr().is_null());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn as_mut_ptr(&mut self) -> *mut T {
        self.shared.seg.payload(self.slot).cast::<T>()
    }

    /// Copies `array` (any memory layout, the ring's shape) into the slot.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-lassign-{}", std::process::id());
    /// # let mut tx = LeaseProducer::from(Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc())?);
    /// let mut lease = tx.claim_lease()?;
    /// assert!(matches!(lease.assign(&ndarray::arr1(&[1u8])), Err(Error::ShapeMismatch { .. })));
    /// lease.assign(&ndarray::arr1(&[1u8, 2]))?;
    /// # Ok::<(), Error>(())
    /// ```
    pub fn assign<S: Data<Elem = T>>(&mut self, array: &ArrayBase<S, D>) -> Result<()> {
        if array.shape() != self.shared.dim.slice() {
            return Err(Error::ShapeMismatch {
                expected: self.shared.dim.slice().to_vec(),
                found: array.shape().to_vec(),
            });
        }
        self.view_mut().assign(array);
        Ok(())
    }

    /// Stores `bytes` as the slot's user metadata (read back with
    /// [`ReadLease::user_meta_bytes`] or `ReadSlot::user_meta`).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-lsetm-{}", std::process::id());
    /// # let mut tx = LeaseProducer::from(Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc())?);
    /// let mut lease = tx.claim_lease()?;
    /// assert!(matches!(lease.set_user_meta_bytes(&[0; 65]), Err(Error::MetaTooLarge { .. })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn set_user_meta_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        let seg = &self.shared.seg;
        let capacity = seg.user_meta_size();
        if bytes.len() > capacity {
            return Err(Error::MetaTooLarge {
                size: bytes.len(),
                capacity,
            });
        }
        // SAFETY: the slot, its metadata included, is ours until publish or drop; `capacity`
        // bytes lie between the slot control block and the payload.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), seg.user_meta(self.slot), bytes.len())
        };
        self.user_len = bytes.len() as u32;
        Ok(())
    }

    /// The sequence number publishing assigns (queue position + 1).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-lwseq-{}", std::process::id());
    /// # let mut tx = LeaseProducer::from(Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc())?);
    /// assert_eq!(tx.claim_lease()?.seq(), 1);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn seq(&self) -> u64 {
        self.pos + 1
    }

    /// Makes the slot visible to consumers; returns its sequence number.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-lpub-{}", std::process::id());
    /// # let mut tx = LeaseProducer::from(Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc())?);
    /// assert_eq!(tx.claim_lease()?.publish(), 1);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn publish(mut self) -> u64 {
        self.commit(Some(self.user_len));
        self.pos + 1
    }

    fn commit(&mut self, publish: Option<u32>) {
        let mut st = lock(&self.shared.state);
        st.producer.commit_position(self.slot, self.pos, publish);
        st.claimed = false;
        self.done = true;
    }
}

impl<T: Element, D: Dimension> Drop for WriteLease<T, D> {
    fn drop(&mut self) {
        if !self.done {
            self.commit(None);
        }
    }
}

impl<T: Element, D: Dimension> std::fmt::Debug for WriteLease<T, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteLease")
            .field("seq", &self.seq())
            .field("slot", &self.slot)
            .finish()
    }
}

impl<T: Element, D: Dimension> std::fmt::Debug for LeaseProducer<T, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseProducer")
            .field("name", &self.shared.seg.name())
            .field("shape", &self.shape())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;
    use ndarray::{Ix1, arr1};

    fn name(tag: &str) -> String {
        format!("/ndr-lease-{tag}-{}", std::process::id())
    }

    #[test]
    fn spsc_out_of_order_releases_apply_in_order_and_a_stall_is_an_error() {
        let n = name("spsc");
        let mut tx = Producer::<u8, Ix1>::create(&n, 1, &Config::spsc().slots(4)).unwrap();
        let mut rx = LeaseConsumer::from(Consumer::<u8, Ix1>::open(&n).unwrap());
        for i in 0..4 {
            tx.send(&arr1(&[i])).unwrap();
        }
        let mut held: Vec<_> = (0..4).map(|_| rx.recv_lease().unwrap()).collect();
        assert!(matches!(
            rx.recv_lease(),
            Err(Error::TooManyLeases { held: 4, .. })
        ));
        // Releasing 2 and 3 frees nothing for the producer: 1 (the oldest) is still held.
        let third = held.pop().unwrap();
        let second = held.pop().unwrap();
        drop((second, third));
        assert!(matches!(tx.try_claim(), Err(Error::Full)));
        assert!(matches!(
            rx.try_recv_lease(),
            Err(Error::TooManyLeases { held: 2, .. })
        ));
        assert!(matches!(
            rx.recv_lease(),
            Err(Error::TooManyLeases { held: 2, .. })
        ));
        // Dropping seq 1 frees its slot alone (seq 2 is held); dropping seq 2 then frees 2, 3, 4.
        drop(held.remove(0));
        tx.try_claim().unwrap().publish();
        assert!(matches!(tx.try_claim(), Err(Error::Full)));
        drop(held.remove(0));
        for i in 6..9 {
            tx.send(&arr1(&[i])).unwrap();
        }
        let next = rx.recv_lease().unwrap();
        assert_eq!(next.seq(), 5);
        assert_eq!(rx.recv_lease().unwrap().view()[0], 6);
    }

    #[test]
    fn spsc_leases_read_the_data_slot_each_entry_names() {
        // A producer that reuses the slot released last puts position 4 in slot 1, not in
        // slot 4 % 4: a lease must follow the entry's name, also for items read ahead.
        let n = name("names");
        let mut tx = Producer::<u32, Ix1>::create(&n, 2, &Config::spsc().slots(4)).unwrap();
        tx.reuse_recent_slots(true);
        let mut rx = LeaseConsumer::from(Consumer::<u32, Ix1>::open(&n).unwrap());
        let mut sent = 0u32;
        let mut send = |tx: &mut Producer<u32, Ix1>| {
            tx.send(&arr1(&[sent, !sent])).unwrap();
            sent += 1;
        };
        for _ in 0..4 {
            send(&mut tx);
        }
        let (a, b) = (rx.recv_lease().unwrap(), rx.recv_lease().unwrap());
        drop(a);
        drop(b);
        send(&mut tx);
        let held: Vec<_> = (0..3).map(|_| rx.recv_lease().unwrap()).collect();
        let got: Vec<_> = held.iter().map(|l| l.view().to_vec()).collect();
        assert_eq!(got, vec![vec![2, !2], vec![3, !3], vec![4, !4]]);
        assert_ne!(held[2].slot, 0, "the producer reused a slot out of turn");
        // Out of order: the newest first; `head` moves only when the oldest goes.
        send(&mut tx); // position 5: the ring is full now
        let mut held = held;
        drop(held.pop());
        drop(held.pop());
        assert!(matches!(tx.try_claim(), Err(Error::Full)));
        drop(held.pop());
        for _ in 0..3 {
            send(&mut tx);
        }
        let got: Vec<_> = (0..4)
            .map(|_| rx.recv_lease().unwrap().view().to_vec())
            .collect();
        assert_eq!(got, (5..9u32).map(|i| vec![i, !i]).collect::<Vec<_>>());
    }

    #[test]
    fn mpmc_leases_release_from_other_threads_and_a_stall_is_an_error() {
        let n = name("mpmc");
        let mut tx = Producer::<u32, Ix1>::create(&n, 2, &Config::mpmc().slots(2)).unwrap();
        let mut rx = LeaseConsumer::from(Consumer::<u32, Ix1>::open(&n).unwrap());
        tx.send(&arr1(&[1, 1])).unwrap();
        tx.send(&arr1(&[2, 2])).unwrap();
        let a = rx.recv_lease().unwrap();
        let b = rx.recv_lease().unwrap();
        std::thread::spawn(move || drop(b)).join().unwrap();
        assert!(matches!(tx.try_claim(), Err(Error::Full))); // seq 1's slot is still ours
        let c = rx.recv_lease_timeout(Duration::from_millis(1));
        assert!(
            matches!(c, Err(Error::TooManyLeases { held: 1, .. })),
            "{c:?}"
        );
        assert_eq!(a.view().to_vec(), vec![1, 1]);
        drop(a);
        tx.send(&arr1(&[3, 3])).unwrap();
        assert_eq!(rx.recv_lease().unwrap().seq(), 3);
    }
}

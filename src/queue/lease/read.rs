//! The read side: [`LeaseConsumer`] and its [`ReadLease`]s, with the release bookkeeping
//! ([`ReadState`]) they share.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[cfg(feature = "async")]
mod poll;
#[cfg(feature = "async")]
pub use poll::LeaseRecv;

use ndarray::{ArrayView, Dimension};

use crate::element::Element;
use crate::error::{Error, Result};
use crate::header::SLEEPING_NOT_EMPTY;
use crate::protocol::read_ahead::{ReadAhead, Refused};
use crate::protocol::{RingMemory, mpmc, spsc::Stop};
use crate::queue::consumer::Consumer;
use crate::role::Role;
use crate::shm::peers;
use crate::shm::segment::Segment;
use crate::shm::wait::{self, Stuck, SweepClock, Waiting};
use crate::sync::Ordering::*;

use super::lock;

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
    /// The wait a `Pending` `poll_lease` left (feature `async`), and the MPMC entry it is for.
    #[cfg(feature = "async")]
    pending: Option<(crate::shm::wait_async::AsyncSleep, usize)>,
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
    /// SPSC: the positions read ahead of `head` (held, or released before an older one).
    ahead: Option<ReadAhead>,
    /// MPMC: this process's peer entries used to take slots (the consumer's own first), and
    /// the position each holds now.
    entries: Vec<(usize, Option<u64>)>,
    /// Slots held by live leases.
    held: usize,
    /// Rate-limits the `/proc` liveness checks of a receive that finds no producer.
    liveness: SweepClock,
    /// How long our receives have found the ring stuck at one position: when to sweep for dead
    /// peers, whether we wait in one call or many (see [`Stuck`]).
    stuck: Stuck,
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
    /// Index of the data slot it reads (`pub(super)`: the tests check which slot was handed out).
    pub(super) slot: usize,
    /// MPMC: index into `ReadState::entries` of the entry that took it.
    entry: usize,
}

impl<T: Element, D: Dimension> From<Consumer<T, D>> for LeaseConsumer<T, D> {
    /// Turns a consumer into a lease consumer; it keeps the consumer's registration (the role
    /// stays taken until the `LeaseConsumer` and every lease are dropped).
    fn from(consumer: Consumer<T, D>) -> Self {
        let seg = consumer.seg.clone();
        let ahead = consumer.spsc.as_ref().map(|c| ReadAhead::new(&*seg, c));
        let entries = vec![(consumer.entry, None)];
        LeaseConsumer {
            shared: Arc::new(ReadShared {
                dim: consumer.dim.clone(),
                how: consumer.how,
                state: Mutex::new(ReadState {
                    ahead,
                    entries,
                    held: 0,
                    liveness: SweepClock::new(),
                    stuck: Stuck::new(),
                    consumer,
                }),
                seg,
            }),
            #[cfg(feature = "async")]
            pending: None,
        }
    }
}

impl<T: Element, D: Dimension> ReadState<T, D> {
    /// One receive attempt with the MPMC entry `entry` (an index into `entries`); `None` to wait.
    fn step(&mut self, seg: &Segment, entry: usize, strong: bool) -> Option<Result<(u64, usize)>> {
        let n = seg.slot_count() as u64;
        if let (Some(ahead), Some(c)) = (&mut self.ahead, &self.consumer.spsc) {
            let me = seg.peer(self.consumer.entry);
            match ahead.try_take(seg, c, me, strong) {
                Ok(got) => {
                    self.held += 1;
                    Some(Ok(got))
                }
                Err(Refused::Wait) => None,
                Err(Refused::Closed) => Some(Err(Error::Closed)),
                // Every slot is ours (some maybe released, but not the oldest): the producer
                // waits for us, and we would wait for it.
                Err(Refused::Stalled) => Some(Err(self.stalled())),
            }
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
                    let awaited = mpmc::awaited_release(seg);
                    (awaited.is_some() && self.entries.iter().any(|&(_, p)| p == awaited))
                        .then(|| Err(self.stalled()))
                }
            }
        }
    }

    /// Releases position `pos`, taken with the MPMC entry `entry`.
    fn release(&mut self, seg: &Segment, pos: u64, entry: usize) {
        self.held -= 1;
        match (&mut self.ahead, &mut self.consumer.spsc) {
            (Some(ahead), Some(c)) => {
                if ahead.release(seg, c, pos) {
                    wait::wake(&seg.control().not_full);
                }
            }
            _ => {
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

/// A receive's outcome: the position taken and its data slot, or the error.
type Received = Result<(u64, usize)>;

impl<T: Element, D: Dimension> ReadShared<T, D> {
    /// The common case, an item already published, under the one lock that also finds a free
    /// entry (each lock and unlock is an atomic RMW: a Python consumer of 64-byte arrays spends
    /// ~5 % of an item on one pair): the entry to receive with, and the outcome of one weak
    /// attempt (`None`: nothing published yet).
    fn first_attempt(&self) -> Result<(usize, Option<Received>)> {
        let seg = &*self.seg;
        let mut st = lock(&self.state);
        let max = seg.slot_count();
        if st.held >= max {
            return Err(Error::TooManyLeases {
                held: st.held,
                max,
                action: "receiving again (holding every slot, no item could ever arrive)",
            });
        }
        let entry = st.free_entry(seg)?;
        Ok((entry, st.step(seg, entry, false)))
    }

    /// One attempt of a receive that waits (blocking or in a future, `block`) or of a
    /// non-blocking one, with the MPMC entry `entry`: `None` to keep waiting. The lock is taken
    /// per attempt, never across a sleep: leases dropped meanwhile (on other threads) release
    /// their slots without waiting for us.
    fn attempt(&self, entry: usize, strong: bool, block: bool) -> Option<Received> {
        let seg = &*self.seg;
        let mut st = lock(&self.state);
        let mut r = st.step(seg, entry, strong);
        // Before each sleep, or the one attempt of a non-blocking call: a dead producer's claim
        // holds `head` back until a sweep turns it into a tombstone.
        if r.is_none() && (strong || !block) {
            let at = match &st.ahead {
                Some(a) => a.read(),
                None => crate::protocol::mpmc::positions(seg).0,
            };
            let st = &mut *st;
            if peers::recover_if_stuck(seg, &mut st.stuck, at, self.how.grace) {
                r = st.step(seg, entry, strong);
            }
        }
        match r {
            // Nothing published, and no producer left to publish: drained for good, unless one
            // published and left just before we looked (the re-check sees it).
            None if peers::disconnected(seg, Role::Producer, strong, || {
                st.liveness.due(self.how.grace)
            }) =>
            {
                st.step(seg, entry, true).or(Some(Err(Error::Disconnected {
                    missing: Role::Producer,
                })))
            }
            other => other,
        }
    }

    /// Who sleeps for a receive with the MPMC entry `entry`: that entry.
    fn sleeper(&self, entry: usize) -> wait::Sleeper<'_> {
        let index = lock(&self.state).entries[entry].0;
        wait::Sleeper::new(self.seg.peer(index), SLEEPING_NOT_EMPTY)
    }
}

impl<T: Element, D: Dimension> LeaseConsumer<T, D> {
    fn recv_until(&mut self, deadline: Option<Instant>, block: bool) -> Result<ReadLease<T, D>> {
        // A wait left by a `Pending` `poll_lease` would share our peer entry's sleep record.
        #[cfg(feature = "async")]
        self.forget_poll();
        let sh = &*self.shared;
        let seg = &*sh.seg;
        let (entry, first) = sh.first_attempt()?;
        let got = if first.is_some() {
            first
        } else if block {
            match wait::spin(sh.how.spin, || lock(&sh.state).step(seg, entry, false)) {
                Some(r) => Some(r),
                None => wait::sleep_until(
                    &seg.control().not_empty,
                    sh.sleeper(entry),
                    sh.how,
                    deadline,
                    |strong| sh.attempt(entry, strong, true),
                ),
            }
        } else {
            sh.attempt(entry, false, false)
        };
        let (pos, slot) = match got {
            Some(r) => r?,
            None if block => return Err(Error::Timeout),
            None => return Err(Error::Empty),
        };
        Ok(self.lease(pos, slot, entry))
    }

    /// The lease of position `pos` (data slot `slot`), taken with the MPMC entry `entry`.
    fn lease(&self, pos: u64, slot: usize, entry: usize) -> ReadLease<T, D> {
        ReadLease {
            shared: self.shared.clone(),
            pos,
            slot,
            entry,
        }
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

impl<T: Element, D: Dimension> Drop for LeaseConsumer<T, D> {
    fn drop(&mut self) {
        // First: the wait writes our peer entry, which the state's drop (once the last lease is
        // gone too) hands back.
        #[cfg(feature = "async")]
        self.forget_poll();
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

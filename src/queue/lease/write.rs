//! The write side: [`LeaseProducer`] and its [`WriteLease`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ndarray::{ArrayBase, ArrayViewMut, Data, Dimension};

use crate::element::Element;
use crate::error::{Error, Result};
use crate::queue::producer::Producer;
use crate::shm::segment::Segment;
use crate::shm::wait;

use super::lock;

#[cfg(feature = "async")]
mod poll;
#[cfg(feature = "async")]
pub use poll::LeaseClaim;

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
        let mut st = self.unclaimed()?;
        // A wait left by a `Pending` `poll_claim_lease` would share our peer entry's sleep
        // record.
        #[cfg(feature = "async")]
        st.producer.forget_poll();
        // The lock is held across the wait: no lease of ours is alive to need it.
        let (pos, slot) = st.producer.claim_position(deadline, block)?;
        st.claimed = true;
        drop(st);
        Ok(self.lease(pos, slot))
    }

    /// The state, locked, if no lease of ours is alive (a producer claims one at a time).
    fn unclaimed(&self) -> Result<std::sync::MutexGuard<'_, WriteState<T, D>>> {
        let st = lock(&self.shared.state);
        if st.claimed {
            return Err(Error::TooManyLeases {
                held: 1,
                max: 1,
                action: "claiming again",
            });
        }
        Ok(st)
    }

    /// The lease of the claimed position `pos` (slot `slot`), recorded as claimed.
    fn lease(&self, pos: u64, slot: usize) -> WriteLease<T, D> {
        WriteLease {
            shared: self.shared.clone(),
            pos,
            slot,
            user_len: 0,
            done: false,
        }
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
    /// # ndring::remove(&name)?; // items left unread keep the name (last one out)
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
    /// # ndring::remove(&name)?; // items left unread keep the name (last one out)
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
    /// # ndring::remove(&name)?; // items left unread keep the name (last one out)
    /// # Ok::<(), Error>(())
    /// ```
    pub fn claim_lease_timeout(&mut self, timeout: Duration) -> Result<WriteLease<T, D>> {
        match wait::deadline(timeout) {
            Some(d) => self.claim_until(Some(d), true),
            None => self.claim_lease(),
        }
    }

    /// SPSC rings: which slot the next items go to (see [`Producer::reuse_recent_slots`]: the
    /// slot released last, the default for items of at least 64 KiB, or the slots in turn).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-lreuse-{}", std::process::id());
    /// let mut tx = LeaseProducer::from(Producer::<u8, ndarray::Ix1>::create(&name, 4, &Config::spsc())?);
    /// let mut rx = Consumer::<u8, ndarray::Ix1>::open(&name)?;
    /// tx.reuse_recent_slots(true);
    /// for i in 1..=3 {
    ///     tx.claim_lease()?.publish();
    ///     assert_eq!(rx.recv()?.seq(), i);
    /// }
    /// # Ok::<(), Error>(())
    /// ```
    pub fn reuse_recent_slots(&mut self, on: bool) {
        lock(&self.shared.state).producer.reuse_recent_slots(on);
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
    /// # ndring::remove(&name)?; // items left unread keep the name (last one out)
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
    /// [`ReadLease::user_meta_bytes`](crate::ReadLease::user_meta_bytes) or `ReadSlot::user_meta`).
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
        // SAFETY: the slot, its metadata included, is ours until publish or drop.
        unsafe { self.shared.seg.write_user_meta(self.slot, bytes)? };
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
    /// # ndring::remove(&name)?; // items left unread keep the name (last one out)
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

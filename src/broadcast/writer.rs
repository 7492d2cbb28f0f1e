//! The writing side of a broadcast ring.

use std::marker::PhantomData;
use std::sync::Arc;

use ndarray::{ArrayBase, Data, Dimension, IntoDimension};

use crate::config::{Config, OpenOptions};
use crate::element::Element;
use crate::error::{Error, Result};
use crate::handle::accessors::segment_accessors;
use crate::handle::attach;
use crate::handle::constructors::{self, Attach};
use crate::handle::publisher::{BroadcastPublisher, Publisher};
use crate::handle::slot::WriteSlot;
use crate::protocol::{RingMemory, broadcast};
use crate::role::Role;
use crate::shm::peers::{self, Registration};
use crate::shm::segment::Segment;
use crate::shm::wait::{self, SweepClock};

/// Publishes frames to a broadcast ring. It never waits for subscribers: it overwrites the
/// oldest frame that no subscriber has pinned. One writer per ring at a time (a second gets
/// [`Error::RoleTaken`]; a dead writer's role can be taken over).
///
/// ```
/// use ndring::{BroadcastWriter, Config, Start, Subscriber};
/// # let name = format!("/ndr-doc-bw-{}", std::process::id());
/// let mut w = BroadcastWriter::<u8, ndarray::Ix2>::create(&name, (4, 4), &Config::broadcast())?;
/// let mut s = Subscriber::<u8, ndarray::Ix2>::open(&name, Start::Oldest)?;
/// let mut slot = w.claim();
/// slot.fill(9);
/// slot.publish();
/// assert_eq!(s.recv()?[[3, 3]], 9);
/// # Ok::<(), ndring::Error>(())
/// ```
pub struct BroadcastWriter<T: Element, D: Dimension> {
    inner: BroadcastPublisher,
    dim: D,
    _t: PhantomData<fn() -> T>,
}

segment_accessors!(
    impl[T: Element, D: Dimension] BroadcastWriter<T, D>,
    seg: inner.seg,
    create: BroadcastWriter::<u8, ndarray::Ix2>::create,
    config: Config::broadcast(),
    tag: BroadcastWriter,
);

impl<T: Element, D: Dimension> Attach for BroadcastWriter<T, D> {
    const ROLE: Role = Role::Writer;

    /// Attaches to `seg`: registers as its writer, unless `created` (our entry in a ring we
    /// created, taken before READY by `shm::existing::create`).
    fn attach(seg: Segment, created: Option<Registration>, options: &OpenOptions) -> Result<Self> {
        // Neither check can fail for a ring we created: we wrote its header for `T` and `D`,
        // with enough slots.
        let dim = attach::check_as::<T, D>(&seg, attach::Family::Broadcast)?;
        attach::check_broadcast_capacity(&seg)?;
        let reg = match created {
            Some(reg) => reg,
            None => peers::register(&seg, Role::Writer)?,
        };
        let writer = broadcast::Writer::attach(&seg, 1);
        Ok(BroadcastWriter {
            inner: BroadcastPublisher {
                seg: Arc::new(seg),
                entry: reg.index,
                writer,
                closed: false,
                grace: options.grace,
                clock: SweepClock::new(),
            },
            dim,
            _t: PhantomData,
        })
    }
}

impl<T: Element, D: Dimension> BroadcastWriter<T, D> {
    /// Creates the broadcast ring `name` and attaches as its writer. Fails with
    /// `InvalidConfig` unless `slots >= max_subscribers + 2`.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-bwc-{}", std::process::id());
    /// let bad = Config::broadcast().max_subscribers(8).slots(8);
    /// assert!(matches!(
    ///     BroadcastWriter::<u8, ndarray::Ix1>::create(&name, 16, &bad),
    ///     Err(Error::InvalidConfig(_))
    /// ));
    /// let w = BroadcastWriter::<u8, ndarray::Ix1>::create(&name, 16, &bad.slots(10))?;
    /// # Ok::<(), Error>(())
    /// ```
    pub fn create(name: &str, shape: impl IntoDimension<Dim = D>, config: &Config) -> Result<Self> {
        constructors::create::<Self, T, D>(name, shape.into_dimension(), config)
    }

    /// Attaches as the writer of the existing broadcast ring `name` (after a writer that
    /// exited or died).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-bwo-{}", std::process::id());
    /// let w = BroadcastWriter::<u8, ndarray::Ix1>::create(&name, 16, &Config::broadcast())?;
    /// assert!(matches!(
    ///     BroadcastWriter::<u8, ndarray::Ix1>::open(&name),
    ///     Err(Error::RoleTaken { role: Role::Writer, .. })
    /// ));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn open(name: &str) -> Result<Self> {
        constructors::open_with(name, &OpenOptions::default())
    }

    /// Turns an untyped [`Segment`] into a writer.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-bwfs-{}", std::process::id());
    /// # let mut c = Config::broadcast(); c = c.keep(true);
    /// # drop(BroadcastWriter::<u8, ndarray::Ix1>::create(&name, 16, &c)?);
    /// let seg = Segment::open(&name, std::time::Duration::from_secs(1))?;
    /// let w = BroadcastWriter::<u8, ndarray::IxDyn>::from_segment(seg)?;
    /// # ndring::remove(&name)?;
    /// # Ok::<(), Error>(())
    /// ```
    pub fn from_segment(seg: Segment) -> Result<Self> {
        Self::from_segment_with(seg, &OpenOptions::default())
    }

    /// [`BroadcastWriter::from_segment`] with `options` (spin, grace period), for a caller
    /// that opened the segment itself, for instance to read its element type first: the one
    /// attach path of every constructor, with no second mapping.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-bwfsw-{}", std::process::id());
    /// # let mut c = Config::broadcast(); c = c.keep(true);
    /// # drop(BroadcastWriter::<u8, ndarray::Ix1>::create(&name, 16, &c)?);
    /// let seg = Segment::open(&name, std::time::Duration::from_secs(1))?;
    /// let h = BroadcastWriter::<u8, ndarray::IxDyn>::from_segment_with(seg, &OpenOptions::default().spin(0))?;
    /// # ndring::remove(&name)?;
    /// # Ok::<(), Error>(())
    /// ```
    pub fn from_segment_with(seg: Segment, options: &OpenOptions) -> Result<Self> {
        <Self as Attach>::attach(seg, None, options)
    }

    /// Claims the slot of the oldest frame that no subscriber has pinned. Never waits.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-bwclaim-{}", std::process::id());
    /// let mut w = BroadcastWriter::<u8, ndarray::Ix1>::create(&name, 4, &Config::broadcast())?;
    /// for i in 0..100u8 {
    ///     let mut slot = w.claim();
    ///     slot.fill(i);
    ///     assert_eq!(slot.publish(), i as u64 + 1);
    /// }
    /// # Ok::<(), Error>(())
    /// ```
    pub fn claim(&mut self) -> WriteSlot<'_, T, D> {
        if self.inner.closed {
            self.inner.closed = false;
            self.inner.writer.reopen(&*self.inner.seg);
        }
        let (s, gave_back) = self.inner.writer.claim(&*self.inner.seg);
        if gave_back {
            wait::notify(&self.inner.seg.control().not_empty);
        }
        if self.inner.writer.take_stale_pin() {
            self.inner.after_dead();
        }
        let seq = self.inner.writer.next_seq();
        // SAFETY: `claim` marked slot `s` WRITING after checking that no subscriber pins it; no
        // subscriber borrows a WRITING slot, so it is ours until `commit`.
        unsafe {
            WriteSlot::new(
                Publisher::Broadcast(&mut self.inner),
                s,
                seq,
                seq,
                self.dim.clone(),
            )
        }
    }

    /// Copies `array` (any layout, same shape) into a slot and publishes it; returns its `seq`.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-bwsend-{}", std::process::id());
    /// let mut w = BroadcastWriter::<f32, ndarray::Ix1>::create(&name, 3, &Config::broadcast())?;
    /// assert_eq!(w.send(&ndarray::arr1(&[1.0, 2.0, 3.0]))?, 1);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn send<S: Data<Elem = T>>(&mut self, array: &ArrayBase<S, D>) -> Result<u64> {
        if array.shape() != self.dim.slice() {
            return Err(Error::ShapeMismatch {
                expected: self.dim.slice().to_vec(),
                found: array.shape().to_vec(),
            });
        }
        let mut slot = self.claim();
        slot.assign(array);
        Ok(slot.publish())
    }

    /// Ends the stream: subscribers receive what is still held, then `Err(Closed)`. The same
    /// receiver as [`crate::Producer::close`]; the handle stays the writer, and a `claim` after
    /// `close` starts a new stream (as a writer that attaches later does). A writer dropped
    /// without `close` leaves its subscribers `Err(Disconnected { missing: Role::Writer })` instead.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-bwclose-{}", std::process::id());
    /// let mut w = BroadcastWriter::<u8, ndarray::Ix1>::create(&name, 4, &Config::broadcast())?;
    /// let mut s = Subscriber::<u8, ndarray::Ix1>::open(&name, Start::Oldest)?;
    /// w.close();
    /// assert!(matches!(s.recv(), Err(Error::Closed)));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn close(&mut self) {
        let seg = &*self.inner.seg;
        self.inner.writer.close(seg);
        self.inner.closed = true;
        wait::notify(&seg.control().not_empty);
    }

    /// Publishes `frames` sequence numbers with no frame behind them, and returns the last: for a
    /// writer that relays another stream and knows frames of it were lost (a bridge's gaps).
    /// Subscribers that wanted them get `Err(Lagged { missed })` where they would have read
    /// them (also just before `Closed`, so a stream that lost its end never looks complete). A
    /// reader of the newest frame counts them among the frames it passed over, or gets `Lagged`
    /// where they are the newest numbers.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-bwskip-{}", std::process::id());
    /// let mut w = BroadcastWriter::<u8, ndarray::Ix1>::create(&name, 2, &Config::broadcast())?;
    /// let mut s = Subscriber::<u8, ndarray::Ix1>::open(&name, Start::Oldest)?;
    /// w.send(&ndarray::arr1(&[1, 1]))?;
    /// assert_eq!(w.skip(3), 4); // frames 2, 3 and 4 were lost upstream
    /// w.close();
    /// assert_eq!(s.recv()?.seq(), 1);
    /// assert!(matches!(s.recv(), Err(Error::Lagged { missed: 3 })));
    /// assert!(matches!(s.recv(), Err(Error::Closed)));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn skip(&mut self, frames: u64) -> u64 {
        let seg = &*self.inner.seg;
        if self.inner.closed && frames > 0 {
            self.inner.closed = false;
            self.inner.writer.reopen(seg);
        }
        let last = self.inner.writer.skip(seg, frames);
        if frames > 0 {
            wait::notify(&seg.control().not_empty);
        }
        last
    }

    /// Sequence number of the newest published frame (0: none).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-bwseq-{}", std::process::id());
    /// let mut w = BroadcastWriter::<u8, ndarray::Ix1>::create(&name, 4, &Config::broadcast())?;
    /// assert_eq!(w.published(), 0);
    /// w.claim().publish();
    /// assert_eq!(w.published(), 1);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn published(&self) -> u64 {
        self.inner.writer.next_seq() - 1
    }
}

impl<T: Element, D: Dimension> std::fmt::Debug for BroadcastWriter<T, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BroadcastWriter")
            .field("name", &self.inner.seg.name())
            .field("dtype", &T::DTYPE)
            .field("shape", &self.shape())
            .field("published", &self.published())
            .finish()
    }
}

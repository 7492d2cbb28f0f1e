//! Claiming in a future (feature `async`): [`Producer::claim_async`], [`Producer::poll_claim`]
//! and [`Producer::send_async`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use ndarray::{ArrayBase, Data, Dimension};

use super::{Producer, claim_step, spin_claim};
use crate::element::Element;
use crate::error::{Error, Result};
use crate::handle::slot::WriteSlot;
use crate::header::SLEEPING_NOT_FULL;
use crate::protocol::RingMemory;
use crate::shm::wait::Sleeper;
use crate::shm::wait_async::AsyncSleep;

impl<T: Element, D: Dimension> Producer<T, D> {
    /// Claims a free slot, awaiting one while the ring is full: [`Producer::claim`] in a
    /// future, with the same results. It polls as `claim` does ([`crate::Config::spin`]) before
    /// it waits, so a free slot costs no system call; while it waits, this process's reactor
    /// thread sleeps on the ring's futex word (see [`crate::Consumer::recv_async`]).
    ///
    /// Cancel-safe: dropping the future before it is ready claims nothing and leaves no
    /// waiter counted in the ring.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-claima-{}", std::process::id());
    /// let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc())?;
    /// let mut rx = Consumer::<u8, ndarray::Ix1>::open(&name)?;
    /// futures_executor::block_on(async {
    ///     let mut slot = tx.claim_async().await?;
    ///     slot.fill(9);
    ///     slot.publish();
    ///     Ok::<(), Error>(())
    /// })?;
    /// assert_eq!(rx.recv()?.to_vec(), vec![9, 9]);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn claim_async(&mut self) -> Claim<'_, T, D> {
        Claim { tx: Some(self) }
    }

    /// Copies `array` into a slot claimed with [`Producer::claim_async`] and publishes it;
    /// returns the item's sequence number. Cancel-safe as `claim_async` is: dropped before it
    /// is ready, nothing is sent.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-senda-{}", std::process::id());
    /// let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc())?;
    /// let mut rx = Consumer::<u8, ndarray::Ix1>::open(&name)?;
    /// futures_executor::block_on(tx.send_async(&ndarray::arr1(&[3, 4])))?;
    /// assert_eq!(rx.recv()?.to_vec(), vec![3, 4]);
    /// # Ok::<(), Error>(())
    /// ```
    pub async fn send_async<S: Data<Elem = T>>(&mut self, array: &ArrayBase<S, D>) -> Result<u64> {
        if array.shape() != self.shape() {
            return Err(Error::ShapeMismatch {
                expected: self.shape().to_vec(),
                found: array.shape().to_vec(),
            });
        }
        let mut slot = self.claim_async().await?;
        slot.assign(array);
        Ok(slot.publish())
    }

    /// The poll behind [`Producer::claim_async`], for hand-written futures and bindings:
    /// `Ready` with a claimed slot, or `Pending` with `cx`'s waker registered. A `Pending`
    /// poll leaves this producer counted as a waiter until the next `poll_claim` returns
    /// `Ready`, or [`Producer::forget_poll`] (or the producer's drop) ends it.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-pollclaim-{}", std::process::id());
    /// let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc().slots(2).spin(0))?;
    /// let _rx = Consumer::<u8, ndarray::Ix1>::open(&name)?;
    /// tx.claim()?.publish();
    /// tx.claim()?.publish();
    /// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// assert!(tx.poll_claim(&mut cx).is_pending());
    /// tx.forget_poll();
    /// # ndring::remove(&name)?;
    /// # Ok::<(), Error>(())
    /// ```
    pub fn poll_claim(&mut self, cx: &mut Context<'_>) -> Poll<Result<WriteSlot<'_, T, D>>> {
        let (pos, slot) = ready!(self.poll_pos(cx, true))?;
        Poll::Ready(Ok(self.claimed(pos, slot)))
    }

    /// Ends the wait that a `Pending` [`Producer::poll_claim`] registered (nothing if none).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-pforget-{}", std::process::id());
    /// let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc())?;
    /// tx.forget_poll();
    /// # Ok::<(), Error>(())
    /// ```
    pub fn forget_poll(&mut self) {
        self.inner.pending = None;
    }

    /// Polls for a claimed position: spins first as `claim` does (`spin`, else one attempt),
    /// then waits in the reactor. Also [`crate::LeaseProducer::poll_claim_lease`]'s, which
    /// calls it with the position and slot to publish through `commit_position`.
    pub(crate) fn poll_pos(
        &mut self,
        cx: &mut Context<'_>,
        spin: bool,
    ) -> Poll<Result<(u64, usize)>> {
        let inner = &mut self.inner;
        if inner.pending.is_none() {
            let seg = &*inner.seg;
            // The common case first: a free slot (MPMC: the spin's first attempt).
            if let Some(p) = &mut inner.spsc {
                if let Ok(got) = p.try_claim(seg.control(), false) {
                    return Poll::Ready(Ok(got));
                }
            }
            let polls = if spin { inner.how.spin } else { 0 };
            if let Some(got) = spin_claim(inner, polls) {
                return Poll::Ready(got);
            }
            let seg = &inner.seg;
            let me = Sleeper::new(seg.peer(inner.entry), SLEEPING_NOT_FULL);
            inner.pending = Some(AsyncSleep::new(seg, &seg.control().not_full, me, inner.how));
        }
        let seg = &*inner.seg;
        let me = seg.peer(inner.entry);
        let how = inner.how;
        let sleep = inner.pending.as_mut().expect("set above");
        let got = ready!(sleep.poll(cx, |strong| claim_step(
            seg,
            me,
            &mut inner.spsc,
            &mut inner.liveness,
            &mut inner.stuck,
            how,
            strong
        )));
        inner.pending = None;
        Poll::Ready(got)
    }
}

/// The future of [`Producer::claim_async`].
#[must_use = "a future does nothing unless awaited"]
#[derive(Debug)]
pub struct Claim<'a, T: Element, D: Dimension> {
    /// `None` once ready.
    tx: Option<&'a mut Producer<T, D>>,
}

impl<'a, T: Element, D: Dimension> Future for Claim<'a, T, D> {
    type Output = Result<WriteSlot<'a, T, D>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let tx = self.tx.as_mut().expect("Claim polled after it was ready");
        let got = ready!(tx.poll_pos(cx, true));
        let tx = self.tx.take().expect("checked above");
        Poll::Ready(got.map(|(pos, slot)| tx.claimed(pos, slot)))
    }
}

impl<T: Element, D: Dimension> Drop for Claim<'_, T, D> {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            tx.forget_poll();
        }
    }
}

//! Claiming leases in a future (feature `async`): [`LeaseProducer::poll_claim_lease`],
//! [`LeaseProducer::forget_poll`] and [`LeaseProducer::claim_lease_async`], on the producer's
//! own poll (`Producer::poll_pos`), whose pending wait the producer holds (and its drop ends
//! before it unregisters).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use ndarray::Dimension;

use super::{LeaseProducer, WriteLease, lock};
use crate::element::Element;
use crate::error::Result;

impl<T: Element, D: Dimension> LeaseProducer<T, D> {
    /// The poll of a claim, for hand-written futures and bindings (the Python package's
    /// `asend`): `Ready` with a claimed lease (or the error [`LeaseProducer::claim_lease`]
    /// would give), or `Pending` with `cx`'s waker registered with this process's reactor
    /// thread, which wakes it when a slot may be free. Unlike `claim_lease` it does not spin:
    /// one attempt, then the wait, so that an event loop is never held up.
    ///
    /// A `Pending` poll leaves this producer counted as a waiter of the ring until the next
    /// `poll_claim_lease` returns `Ready`, or [`LeaseProducer::forget_poll`] (or the producer's
    /// drop, or a blocking claim) ends the wait. Ending it claims nothing.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-lpclaim-{}", std::process::id());
    /// let mut tx = LeaseProducer::from(Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc().slots(2))?);
    /// let mut rx = LeaseConsumer::from(Consumer::<u8, ndarray::Ix1>::open(&name)?);
    /// tx.claim_lease()?.publish();
    /// tx.claim_lease()?.publish();
    /// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// assert!(tx.poll_claim_lease(&mut cx).is_pending());
    /// drop(rx.recv_lease()?); // its slot returns to the ring at once
    /// match tx.poll_claim_lease(&mut cx) {
    ///     std::task::Poll::Ready(lease) => assert_eq!(lease?.publish(), 3),
    ///     std::task::Poll::Pending => unreachable!("a slot was released before the poll"),
    /// }
    /// assert_eq!(tx.segment().sleepers(), (0, 0));
    /// # ndring::remove(&name)?; // items left unread keep the name (last one out)
    /// # Ok::<(), Error>(())
    /// ```
    pub fn poll_claim_lease(&mut self, cx: &mut Context<'_>) -> Poll<Result<WriteLease<T, D>>> {
        let mut st = self.unclaimed()?;
        let (pos, slot) = ready!(st.producer.poll_pos(cx, false))?;
        st.claimed = true;
        drop(st);
        Poll::Ready(Ok(self.lease(pos, slot)))
    }

    /// Ends the wait that a `Pending` [`LeaseProducer::poll_claim_lease`] registered (nothing
    /// if none): no waiter stays counted in the ring, and nothing is claimed.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-lpforget-{}", std::process::id());
    /// let mut tx = LeaseProducer::from(Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::mpmc().slots(2))?);
    /// let _rx = Consumer::<u8, ndarray::Ix1>::open(&name)?;
    /// tx.claim_lease()?.publish();
    /// tx.claim_lease()?.publish();
    /// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// assert!(tx.poll_claim_lease(&mut cx).is_pending());
    /// assert_eq!(tx.segment().sleepers(), (0, 1));
    /// tx.forget_poll();
    /// assert_eq!(tx.segment().sleepers(), (0, 0));
    /// # ndring::remove(&name)?; // items left unread keep the name (last one out)
    /// # Ok::<(), Error>(())
    /// ```
    pub fn forget_poll(&mut self) {
        lock(&self.shared.state).producer.forget_poll();
    }

    /// Claims a free slot as a lease, awaiting one while the ring is full:
    /// [`LeaseProducer::poll_claim_lease`] as a future. Cancel-safe: dropped before it is
    /// ready, it claims nothing and leaves no waiter counted.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-lpclaima-{}", std::process::id());
    /// let mut tx = LeaseProducer::from(Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc())?);
    /// let mut rx = Consumer::<u8, ndarray::Ix1>::open(&name)?;
    /// let mut lease = futures_executor::block_on(tx.claim_lease_async())?;
    /// lease.view_mut().fill(4);
    /// lease.publish();
    /// assert_eq!(rx.recv()?.to_vec(), vec![4, 4]);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn claim_lease_async(&mut self) -> LeaseClaim<'_, T, D> {
        LeaseClaim { tx: Some(self) }
    }
}

/// The future of [`LeaseProducer::claim_lease_async`].
#[must_use = "a future does nothing unless awaited"]
#[derive(Debug)]
pub struct LeaseClaim<'a, T: Element, D: Dimension> {
    /// `None` once ready.
    tx: Option<&'a mut LeaseProducer<T, D>>,
}

impl<T: Element, D: Dimension> Future for LeaseClaim<'_, T, D> {
    type Output = Result<WriteLease<T, D>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let tx = self
            .tx
            .as_mut()
            .expect("LeaseClaim polled after it was ready");
        let got = ready!(tx.poll_claim_lease(cx));
        self.tx = None;
        Poll::Ready(got)
    }
}

impl<T: Element, D: Dimension> Drop for LeaseClaim<'_, T, D> {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            tx.forget_poll();
        }
    }
}

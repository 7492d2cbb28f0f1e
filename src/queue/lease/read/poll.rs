//! Receiving leases in a future (feature `async`): [`LeaseConsumer::poll_lease`],
//! [`LeaseConsumer::forget_poll`] and [`LeaseConsumer::recv_lease_async`], the blocking
//! receive's attempts with the sleep handed to this process's reactor thread.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use ndarray::Dimension;

use super::{LeaseConsumer, ReadLease};
use crate::element::Element;
use crate::error::Result;
use crate::protocol::RingMemory;
use crate::shm::wait_async::AsyncSleep;

impl<T: Element, D: Dimension> LeaseConsumer<T, D> {
    /// The poll of a receive, for hand-written futures and bindings (the Python package's
    /// `arecv`): `Ready` with the next item's lease (or the error [`LeaseConsumer::recv_lease`]
    /// would give), or `Pending` with `cx`'s waker registered with this process's reactor
    /// thread, which wakes it when an item may be there. Unlike `recv_lease` it does not spin:
    /// one attempt, then the wait, so that an event loop is never held up.
    ///
    /// A `Pending` poll leaves this consumer counted as a waiter of the ring until the next
    /// `poll_lease` returns `Ready`, or [`LeaseConsumer::forget_poll`] (or the consumer's drop,
    /// or a blocking receive) ends the wait. Ending it takes no item.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-lpoll-{}", std::process::id());
    /// let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc())?;
    /// let mut rx = LeaseConsumer::from(Consumer::<u8, ndarray::Ix1>::open(&name)?);
    /// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// assert!(rx.poll_lease(&mut cx).is_pending());
    /// tx.send(&ndarray::arr1(&[1, 2]))?;
    /// match rx.poll_lease(&mut cx) {
    ///     std::task::Poll::Ready(lease) => assert_eq!(lease?.view().to_vec(), vec![1, 2]),
    ///     std::task::Poll::Pending => unreachable!("published before the poll"),
    /// }
    /// assert_eq!(rx.segment().sleepers(), (0, 0));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn poll_lease(&mut self, cx: &mut Context<'_>) -> Poll<Result<ReadLease<T, D>>> {
        let entry = match &self.pending {
            Some((_, entry)) => *entry,
            None => {
                let sh = &*self.shared;
                let (entry, first) = sh.first_attempt()?;
                if let Some(r) = first {
                    return Poll::Ready(r.map(|(pos, slot)| self.lease(pos, slot, entry)));
                }
                let seg = &sh.seg;
                let sleep =
                    AsyncSleep::new(seg, &seg.control().not_empty, sh.sleeper(entry), sh.how);
                self.pending = Some((sleep, entry));
                entry
            }
        };
        let LeaseConsumer { shared, pending } = self;
        let sleep = &mut pending.as_mut().expect("set above").0;
        let got = ready!(sleep.poll(cx, |strong| shared.attempt(entry, strong, true)));
        self.pending = None;
        Poll::Ready(got.map(|(pos, slot)| self.lease(pos, slot, entry)))
    }

    /// Ends the wait that a `Pending` [`LeaseConsumer::poll_lease`] registered (nothing if
    /// none): no waiter stays counted in the ring, and no item is taken.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-lforget-{}", std::process::id());
    /// # let _tx = Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::mpmc())?;
    /// let mut rx = LeaseConsumer::from(Consumer::<u8, ndarray::Ix1>::open(&name)?);
    /// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// assert!(rx.poll_lease(&mut cx).is_pending());
    /// assert_eq!(rx.segment().sleepers(), (1, 0));
    /// rx.forget_poll();
    /// assert_eq!(rx.segment().sleepers(), (0, 0));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn forget_poll(&mut self) {
        self.pending = None;
    }

    /// Receives the next item as a lease, awaiting it while the ring is empty:
    /// [`LeaseConsumer::poll_lease`] as a future. Cancel-safe: dropped before it is ready, it
    /// takes no item and leaves no waiter counted. The lease it gives is owned (`'static`), as
    /// `recv_lease`'s.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-lrecva-{}", std::process::id());
    /// # let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc())?;
    /// let mut rx = LeaseConsumer::from(Consumer::<u8, ndarray::Ix1>::open(&name)?);
    /// tx.send(&ndarray::arr1(&[5, 6]))?;
    /// let lease = futures_executor::block_on(rx.recv_lease_async())?;
    /// assert_eq!(lease.view().to_vec(), vec![5, 6]);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn recv_lease_async(&mut self) -> LeaseRecv<'_, T, D> {
        LeaseRecv { rx: Some(self) }
    }
}

/// The future of [`LeaseConsumer::recv_lease_async`].
#[must_use = "a future does nothing unless awaited"]
#[derive(Debug)]
pub struct LeaseRecv<'a, T: Element, D: Dimension> {
    /// `None` once ready.
    rx: Option<&'a mut LeaseConsumer<T, D>>,
}

impl<T: Element, D: Dimension> Future for LeaseRecv<'_, T, D> {
    type Output = Result<ReadLease<T, D>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let rx = self
            .rx
            .as_mut()
            .expect("LeaseRecv polled after it was ready");
        let got = ready!(rx.poll_lease(cx));
        self.rx = None;
        Poll::Ready(got)
    }
}

impl<T: Element, D: Dimension> Drop for LeaseRecv<'_, T, D> {
    fn drop(&mut self) {
        if let Some(rx) = self.rx.take() {
            rx.forget_poll();
        }
    }
}

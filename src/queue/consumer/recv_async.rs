//! Receiving in a future (feature `async`): [`Consumer::recv_async`], [`Consumer::poll_recv`]
//! and a [`Stream`] of owned copies.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_core::Stream;
use ndarray::{Array, Dimension};

use super::{Consumer, recv_step};
use crate::element::Element;
use crate::error::{Error, Result};
use crate::handle::slot::ReadSlot;
use crate::header::SLEEPING_NOT_EMPTY;
use crate::protocol::RingMemory;
use crate::shm::wait::Sleeper;
use crate::shm::wait_async::AsyncSleep;

impl<T: Element, D: Dimension> Consumer<T, D> {
    /// Receives the next item, awaiting it while the ring is empty: [`Consumer::recv`] in a
    /// future, with the same results (`Closed`, `Disconnected`, dead producers recovered within
    /// the grace period). It polls as `recv` does ([`crate::Config::spin`]) before it waits, so
    /// an item already there costs no system call. While it waits, this process's one reactor
    /// thread (one per 127 words awaited at once) sleeps on the ring's futex word, for every
    /// future of the process, and wakes the task.
    ///
    /// Cancel-safe: dropping the future before it is ready takes no item and leaves no waiter
    /// counted in the ring.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-recva-{}", std::process::id());
    /// # let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc())?;
    /// # let mut rx = Consumer::<u8, ndarray::Ix1>::open(&name)?;
    /// # let block_on = |f| futures_executor::block_on(f);
    /// tx.send(&ndarray::arr1(&[5, 6]))?;
    /// block_on(async {
    ///     let slot = rx.recv_async().await?;
    ///     assert_eq!(slot.to_vec(), vec![5, 6]);
    ///     Ok::<(), Error>(())
    /// })?;
    /// # Ok::<(), Error>(())
    /// ```
    pub fn recv_async(&mut self) -> Recv<'_, T, D> {
        Recv { rx: Some(self) }
    }

    /// The poll behind [`Consumer::recv_async`], for hand-written futures and bindings:
    /// `Ready` with the next item, or `Pending` with `cx`'s waker registered to be woken when
    /// an item may be there. A `Pending` poll leaves this consumer counted as a waiter of the
    /// ring until the next `poll_recv` returns `Ready`, or [`Consumer::forget_poll`] (or the
    /// consumer's drop) ends it.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-pollrecv-{}", std::process::id());
    /// # let _tx = Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc())?;
    /// let mut rx = Consumer::<u8, ndarray::Ix1>::open_with(&name, &OpenOptions::default().spin(0))?;
    /// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// assert!(rx.poll_recv(&mut cx).is_pending());
    /// rx.forget_poll();
    /// # Ok::<(), Error>(())
    /// ```
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<ReadSlot<'_, T, D>>> {
        let (pos, slot) = ready!(self.poll_pos(cx))?;
        Poll::Ready(Ok(self.hold(pos, slot)))
    }

    /// Ends the wait that a `Pending` [`Consumer::poll_recv`] registered (nothing if none).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-forget-{}", std::process::id());
    /// # let _tx = Producer::<u8, ndarray::Ix1>::create(&name, 2, &Config::spsc())?;
    /// let mut rx = Consumer::<u8, ndarray::Ix1>::open(&name)?;
    /// rx.forget_poll();
    /// # Ok::<(), Error>(())
    /// ```
    pub fn forget_poll(&mut self) {
        self.pending = None;
    }

    /// The items as a [`Stream`] of owned arrays, each copied out of its slot, which is then
    /// released at once (for zero copy, loop on [`Consumer::recv_async`]). The stream ends at
    /// `Closed`; any other error is an item (`Disconnected` is not final: polling on waits
    /// for a producer to attach again).
    ///
    /// ```
    /// # use ndring::*;
    /// use futures_util::StreamExt;
    /// # let name = format!("/ndr-doc-stream-{}", std::process::id());
    /// # let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 4, &Config::spsc())?;
    /// # let mut rx = Consumer::<u8, ndarray::Ix1>::open(&name)?;
    /// tx.send(&ndarray::arr1(&[1, 2, 3, 4]))?;
    /// tx.close();
    /// let items: Vec<_> = futures_executor::block_on(rx.stream().collect());
    /// assert_eq!(items.len(), 1);
    /// assert_eq!(items[0].as_ref().unwrap().sum(), 10);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn stream(&mut self) -> RecvStream<'_, T, D> {
        RecvStream { rx: self }
    }

    /// Polls for the next position: spins first, as `recv` does, then waits in the reactor.
    fn poll_pos(&mut self, cx: &mut Context<'_>) -> Poll<Result<(u64, usize)>> {
        if self.pending.is_none() {
            self.release_held();
            if let Some(got) = self.spin(self.how.spin) {
                return Poll::Ready(got);
            }
            let seg = &self.seg;
            let me = Sleeper::new(seg.peer(self.entry), SLEEPING_NOT_EMPTY);
            self.pending = Some(AsyncSleep::new(seg, &seg.control().not_empty, me, self.how));
        }
        let Consumer {
            seg,
            entry,
            spsc,
            how,
            liveness,
            stuck,
            pending,
            ..
        } = self;
        let (seg, me, how) = (&**seg, seg.peer(*entry), *how);
        let sleep = pending.as_mut().expect("set above");
        let got = ready!(sleep.poll(cx, |strong| recv_step(
            seg, me, spsc, liveness, stuck, how, strong, true
        )));
        self.pending = None;
        if let Ok((pos, _)) = got {
            self.took(pos);
        }
        Poll::Ready(got)
    }
}

/// The future of [`Consumer::recv_async`].
#[must_use = "a future does nothing unless awaited"]
#[derive(Debug)]
pub struct Recv<'a, T: Element, D: Dimension> {
    /// `None` once ready.
    rx: Option<&'a mut Consumer<T, D>>,
}

impl<'a, T: Element, D: Dimension> Future for Recv<'a, T, D> {
    type Output = Result<ReadSlot<'a, T, D>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let rx = self.rx.as_mut().expect("Recv polled after it was ready");
        let got = ready!(rx.poll_pos(cx));
        let rx = self.rx.take().expect("checked above");
        Poll::Ready(got.map(|(pos, slot)| rx.hold(pos, slot)))
    }
}

impl<T: Element, D: Dimension> Drop for Recv<'_, T, D> {
    fn drop(&mut self) {
        if let Some(rx) = self.rx.take() {
            rx.forget_poll();
        }
    }
}

/// The stream of [`Consumer::stream`].
#[must_use = "a stream does nothing unless polled"]
#[derive(Debug)]
pub struct RecvStream<'a, T: Element, D: Dimension> {
    rx: &'a mut Consumer<T, D>,
}

impl<T: Element, D: Dimension> Stream for RecvStream<'_, T, D> {
    type Item = Result<Array<T, D>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let rx = &mut *self.rx;
        match ready!(rx.poll_pos(cx)) {
            Ok((pos, slot)) => {
                let item = rx.hold(pos, slot).to_owned();
                rx.release_held();
                Poll::Ready(Some(Ok(item)))
            }
            Err(Error::Closed) => Poll::Ready(None),
            Err(e) => Poll::Ready(Some(Err(e))),
        }
    }
}

impl<T: Element, D: Dimension> Drop for RecvStream<'_, T, D> {
    fn drop(&mut self) {
        self.rx.forget_poll();
    }
}

//! Receiving frames in a future (feature `async`): [`Subscriber::recv_async`] and
//! [`Subscriber::poll_recv`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use ndarray::Dimension;

use super::{Step, Subscriber, miss, next_step};
use crate::element::Element;
use crate::error::Result;
use crate::handle::slot::ReadSlot;
use crate::header::SLEEPING_NOT_EMPTY;
use crate::protocol::RingMemory;
use crate::shm::wait::{self, Sleeper};
use crate::shm::wait_async::AsyncSleep;

impl<T: Element, D: Dimension> Subscriber<T, D> {
    /// The next frame in sequence, awaiting it: [`Subscriber::recv`] in a future, with the same
    /// results (`Lagged`, `Closed`, `Disconnected`). It polls as `recv` does before it waits;
    /// while it waits, this process's reactor thread sleeps on the ring's futex word (see
    /// [`crate::Consumer::recv_async`]). Cancel-safe: dropped before it is ready, it skips no
    /// frame and leaves no waiter counted.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-subrecva-{}", std::process::id());
    /// # let mut w = BroadcastWriter::<u8, ndarray::Ix1>::create(&name, 2, &Config::broadcast())?;
    /// let mut s = Subscriber::<u8, ndarray::Ix1>::open(&name, Start::Newest)?;
    /// w.send(&ndarray::arr1(&[1, 2]))?;
    /// let seq = futures_executor::block_on(async { s.recv_async().await.map(|f| f.seq()) })?;
    /// assert_eq!(seq, 1);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn recv_async(&mut self) -> SubscriberRecv<'_, T, D> {
        SubscriberRecv { sub: Some(self) }
    }

    /// The poll behind [`Subscriber::recv_async`]: `Ready` with the next frame (or its error),
    /// or `Pending` with `cx`'s waker registered until the next `poll_recv` returns `Ready`, or
    /// [`Subscriber::forget_poll`] (or the subscriber's drop) ends the wait.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-subpoll-{}", std::process::id());
    /// # let _w = BroadcastWriter::<u8, ndarray::Ix1>::create(&name, 2, &Config::broadcast())?;
    /// let mut s = Subscriber::<u8, ndarray::Ix1>::open_with(
    ///     &name, Start::Newest, &OpenOptions::default().spin(0))?;
    /// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// assert!(s.poll_recv(&mut cx).is_pending());
    /// s.forget_poll();
    /// # Ok::<(), Error>(())
    /// ```
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<ReadSlot<'_, T, D>>> {
        let got = ready!(self.poll_frame(cx));
        Poll::Ready(self.deliver(got))
    }

    /// Ends the wait that a `Pending` [`Subscriber::poll_recv`] registered (nothing if none).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-subforget-{}", std::process::id());
    /// # let _w = BroadcastWriter::<u8, ndarray::Ix1>::create(&name, 2, &Config::broadcast())?;
    /// let mut s = Subscriber::<u8, ndarray::Ix1>::open(&name, Start::Newest)?;
    /// s.forget_poll();
    /// # Ok::<(), Error>(())
    /// ```
    pub fn forget_poll(&mut self) {
        self.pending = None;
    }

    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Result<(usize, u64)>> {
        let seg = &*self.seg;
        let me = seg.peer(self.entry);
        if self.pending.is_none() {
            let sub = &mut self.sub;
            if let Some(got) = wait::spin(self.how.spin, || miss(sub.try_recv(seg, me, false))) {
                return Poll::Ready(got);
            }
            let sleeper = Sleeper::new(me, SLEEPING_NOT_EMPTY);
            self.pending = Some(AsyncSleep::new(
                &self.seg,
                &seg.control().not_empty,
                sleeper,
                self.how,
            ));
        }
        let how = self.how;
        let (sub, liveness, stuck) = (&mut self.sub, &mut self.liveness, &mut self.stuck);
        let sleep = self.pending.as_mut().expect("set above");
        let step = Step {
            strong: false,
            block: true,
            latest: false,
        };
        let got = ready!(sleep.poll(cx, |strong| {
            let step = Step { strong, ..step };
            next_step(seg, me, sub, liveness, stuck, how, step, &mut 0)
        }));
        self.pending = None;
        Poll::Ready(got)
    }
}

/// The future of [`Subscriber::recv_async`].
#[must_use = "a future does nothing unless awaited"]
#[derive(Debug)]
pub struct SubscriberRecv<'a, T: Element, D: Dimension> {
    /// `None` once ready.
    sub: Option<&'a mut Subscriber<T, D>>,
}

impl<'a, T: Element, D: Dimension> Future for SubscriberRecv<'a, T, D> {
    type Output = Result<ReadSlot<'a, T, D>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let sub = self
            .sub
            .as_mut()
            .expect("SubscriberRecv polled after it was ready");
        let got = ready!(sub.poll_frame(cx));
        let sub = self.sub.take().expect("checked above");
        Poll::Ready(sub.deliver(got))
    }
}

impl<T: Element, D: Dimension> Drop for SubscriberRecv<'_, T, D> {
    fn drop(&mut self) {
        if let Some(sub) = self.sub.take() {
            sub.forget_poll();
        }
    }
}

//! The calls in futures (feature `async`): the reactor thread waits, not the task's thread.
//! Each future polls and re-checks with the same steps as the blocking calls of `client.rs`.

use ndarray::{ArrayBase, Data, Dimension};

use super::{Call, Client, Pending, Reply};
use crate::element::Element;
use crate::error::Result;
use crate::header::{SLEEPING_NOT_FULL, SLEEPING_REPLY};
use crate::protocol::RingMemory;
use crate::protocol::rpc::CallMemory;
use crate::shm::wait::{self, Sleeper};

/// Calls in a future (feature `async`): the reactor thread waits, not the task's thread.
impl<Q: Element, QD: Dimension, R: Element, RD: Dimension> Client<Q, QD, R, RD> {
    /// [`Client::request`] in a future: awaits a free call. Cancel-safe: dropped before it is
    /// ready, it claims nothing and leaves no waiter counted.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-clirqa-{}", std::process::id());
    /// # let _srv = Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>::create(&name, 2, 1, &Config::rpc())?;
    /// let cli = Client::<u8, ndarray::Ix1, u8, ndarray::Ix1>::open(&name)?;
    /// let call = futures_executor::block_on(cli.request_async())?;
    /// # Ok::<(), Error>(())
    /// ```
    pub async fn request_async(&self) -> Result<Call<'_, Q, QD, R, RD>> {
        let seg = &self.end.seg;
        let me = Sleeper::new(self.end.entry_ref(), SLEEPING_NOT_FULL);
        let ticket = crate::shm::wait_async::wait_for(
            seg,
            &seg.control().not_full,
            me,
            self.end.how,
            || self.claim_poll(),
            |strong| self.claim_step(strong),
        )
        .await;
        Ok(self.call_for(ticket))
    }

    /// [`Client::send`] in a future: awaits a free call, copies `request` in and sends it.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-clisa-{}", std::process::id());
    /// # let srv = Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>::create(&name, 2, 1, &Config::rpc())?;
    /// let cli = Client::<u8, ndarray::Ix1, u8, ndarray::Ix1>::open(&name)?;
    /// let p = futures_executor::block_on(cli.send_async(&ndarray::arr1(&[1, 2])))?;
    /// # srv.recv()?.reply_with(&ndarray::arr1(&[3]));
    /// # Ok::<(), Error>(())
    /// ```
    pub async fn send_async<S: Data<Elem = Q>>(
        &self,
        request: &ArrayBase<S, QD>,
    ) -> Result<Pending<'_, Q, QD, R, RD>> {
        let mut call = self.request_async().await?;
        call.assign(request);
        Ok(call.send())
    }

    /// [`Client::call`] in a future: sends `request` and awaits its reply (bound it with the
    /// runtime's timeout; a call whose future is dropped is given up, its late reply discarded).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-clica-{}", std::process::id());
    /// # let srv = Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>::create(&name, 2, 1, &Config::rpc())?;
    /// let cli = Client::<u8, ndarray::Ix1, u8, ndarray::Ix1>::open(&name)?;
    /// let serve = std::thread::spawn(move || {
    ///     let r = srv.recv().unwrap();
    ///     let s = r.sum();
    ///     r.reply_with(&ndarray::arr1(&[s]));
    /// });
    /// let reply = futures_executor::block_on(cli.call_async(&ndarray::arr1(&[1, 2])))?;
    /// assert_eq!(reply.to_vec(), vec![3]);
    /// # serve.join().unwrap();
    /// # Ok::<(), Error>(())
    /// ```
    pub async fn call_async<S: Data<Elem = Q>>(
        &self,
        request: &ArrayBase<S, QD>,
    ) -> Result<Reply<'_, Q, QD, R, RD>> {
        self.send_async(request).await?.receive_async().await
    }
}

impl<'c, Q: Element, QD: Dimension, R: Element, RD: Dimension> Pending<'c, Q, QD, R, RD> {
    /// [`Pending::wait`] in a future, without a limit. Dropped before it is ready, the call
    /// stays pending (and no waiter stays counted).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-penwa-{}", std::process::id());
    /// # let srv = Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>::create(&name, 2, 1, &Config::rpc())?;
    /// # let cli = Client::<u8, ndarray::Ix1, u8, ndarray::Ix1>::open(&name)?;
    /// let p = cli.send(&ndarray::arr1(&[1, 2]))?;
    /// drop(srv.recv()?);            // dropped unanswered
    /// let r = futures_executor::block_on(p.wait_async());
    /// assert!(matches!(r, Err(Error::RequestFailed { .. })));
    /// # Ok::<(), Error>(())
    /// ```
    pub async fn wait_async(&self) -> Result<()> {
        let end = &self.client.end;
        let seg = &end.seg;
        let t = self.ticket;
        let me = Sleeper::new(end.entry_ref(), SLEEPING_REPLY + t.slot as u64);
        let got = crate::shm::wait_async::wait_for(
            seg,
            &seg.call(t.slot).reply,
            me,
            end.how,
            || self.reply_poll(),
            |strong| self.reply_step(strong),
        )
        .await;
        self.outcome(Some(got))
    }

    /// The poll behind [`Pending::wait_async`], for hand-written futures and bindings: `Ready`
    /// with the call's outcome (as [`Pending::wait`]: `Ok` once answered, then
    /// [`Pending::receive`] returns at once), or `Pending` with `cx`'s waker registered to be
    /// woken when the answer may be there. It polls as `wait` does
    /// ([`crate::Config::spin`]) before it registers. A `Pending` poll leaves this call's
    /// client counted as a waiter of the call until the next `poll_wait` returns `Ready`, or
    /// [`Pending::forget_poll`] (or dropping the call, which gives it up) ends it.
    ///
    /// ```
    /// # use ndring::*;
    /// # use std::task::{Context, Poll, Waker};
    /// # let name = format!("/ndr-doc-penpw-{}", std::process::id());
    /// # let srv = Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>::create(&name, 1, 1, &Config::rpc())?;
    /// # let cli = Client::<u8, ndarray::Ix1, u8, ndarray::Ix1>::open(&name)?;
    /// let mut p = cli.send(&ndarray::arr1(&[6]))?;
    /// let mut cx = Context::from_waker(Waker::noop());
    /// assert!(p.poll_wait(&mut cx).is_pending());      // not served yet: counted as a waiter
    /// srv.recv()?.reply_with(&ndarray::arr1(&[7]));      // the server's notify wakes the waker
    /// assert!(matches!(p.poll_wait(&mut cx), Poll::Ready(Ok(()))));
    /// assert_eq!(p.receive()?[0], 7);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn poll_wait(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<()>> {
        let mut sleep = match self.sleep.take() {
            Some(s) => s,
            None => {
                let how = self.client.end.how;
                if let Some(got) = wait::spin(how.spin, || self.reply_poll()) {
                    return std::task::Poll::Ready(self.outcome(Some(got)));
                }
                let end = &self.client.end;
                let t = self.ticket;
                let me = Sleeper::new(end.entry_ref(), SLEEPING_REPLY + t.slot as u64);
                Box::new(crate::shm::wait_async::AsyncSleep::new(
                    &end.seg,
                    &end.seg.call(t.slot).reply,
                    me,
                    how,
                ))
            }
        };
        match sleep.poll(cx, |strong| self.reply_step(strong)) {
            std::task::Poll::Ready(got) => std::task::Poll::Ready(self.outcome(Some(got))),
            std::task::Poll::Pending => {
                self.sleep = Some(sleep);
                std::task::Poll::Pending
            }
        }
    }

    /// Ends the wait that a `Pending` [`Pending::poll_wait`] registered (nothing if none); the
    /// call stays pending.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-penfp-{}", std::process::id());
    /// # let _srv = Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>::create(&name, 1, 1, &Config::rpc())?;
    /// # let cli = Client::<u8, ndarray::Ix1, u8, ndarray::Ix1>::open_with(&name, &OpenOptions::default().spin(0))?;
    /// let mut p = cli.send(&ndarray::arr1(&[6]))?;
    /// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// assert!(p.poll_wait(&mut cx).is_pending());
    /// p.forget_poll();      // no longer a waiter; the call is still in flight
    /// # Ok::<(), Error>(())
    /// ```
    pub fn forget_poll(&mut self) {
        self.sleep = None;
    }

    /// [`Pending::receive`] in a future: awaits the answer, then borrows the reply. Dropped
    /// before it is ready, the call is given up (a late reply is discarded).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-penra-{}", std::process::id());
    /// # let srv = Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>::create(&name, 1, 1, &Config::rpc())?;
    /// # let cli = Client::<u8, ndarray::Ix1, u8, ndarray::Ix1>::open(&name)?;
    /// let p = cli.send(&ndarray::arr1(&[6]))?;
    /// srv.recv()?.reply_with(&ndarray::arr1(&[7]));
    /// let reply = futures_executor::block_on(p.receive_async())?;
    /// assert_eq!(reply[0], 7);
    /// # Ok::<(), Error>(())
    /// ```
    pub async fn receive_async(self) -> Result<Reply<'c, Q, QD, R, RD>> {
        self.wait_async().await?;
        Ok(self.reply())
    }
}

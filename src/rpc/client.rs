//! The asking side of a request/reply segment.

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use ndarray::{ArrayBase, ArrayRef, ArrayView, ArrayViewMut, Data, Dimension};

use super::{Endpoint, check};
use crate::config::OpenOptions;
use crate::element::Element;
use crate::error::{Error, Result};
use crate::handle::constructors::{self, Attach, opening_constructors};
use crate::header::{SLEEPING_NOT_FULL, SLEEPING_REPLY};
use crate::protocol::RingMemory;
use crate::protocol::rpc::{self, CallMemory, Poll, Ticket};
use crate::role::Role;
use crate::shm::peers::Registration;
use crate::shm::segment::Segment;
use crate::shm::wait::{self, Sleeper};
use crate::sync::Ordering::*;

#[cfg(feature = "async")]
mod asynchronous;

/// Sends requests to a request/reply segment and receives their replies, several in flight if
/// need be; each reply answers only the call that asked.
///
/// ```
/// use ndring::{Client, Config, Server};
/// use ndarray::Ix1;
/// # let name = format!("/ndr-doc-cli-{}", std::process::id());
/// let srv = Server::<f32, Ix1, f32, Ix1>::create(&name, 3, 1, &Config::rpc())?;
/// let cli = Client::<f32, Ix1, f32, Ix1>::open(&name)?;
/// std::thread::scope(|s| {
///     s.spawn(|| {
///         let req = srv.recv().unwrap();
///         let sum = req.sum();
///         req.reply_with(&ndarray::arr1(&[sum]));
///     });
///     let reply = cli.call(&ndarray::arr1(&[1.0, 2.0, 3.5]), None).unwrap();
///     assert_eq!(reply[0], 6.5);
/// });
/// # Ok::<(), ndring::Error>(())
/// ```
pub struct Client<Q: Element, QD: Dimension, R: Element, RD: Dimension> {
    end: Endpoint,
    qdim: QD,
    rdim: RD,
    _t: PhantomData<fn() -> (Q, R)>,
}

opening_constructors!(
    impl[Q: Element, QD: Dimension, R: Element, RD: Dimension] Client<Q, QD, R, RD>,
    what: "a client",
    example: Client::<u8, ndarray::Ix1, u8, ndarray::Ix1>,
    wrong: Client::<u16, ndarray::Ix1, u8, ndarray::Ix1>,
    first: Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>::create(&name, 4, 2, &Config::rpc()),
    tag: rpc_client,
);

impl<Q: Element, QD: Dimension, R: Element, RD: Dimension> Attach for Client<Q, QD, R, RD> {
    const ROLE: Role = Role::Client;

    /// Clients never create the segment: `created` is always `None`.
    fn attach(seg: Segment, _created: Option<Registration>, options: &OpenOptions) -> Result<Self> {
        let dims = check::<Q, QD, R, RD>(&seg)?;
        Self::with_dims(seg, dims, options)
    }
}

impl<Q: Element, QD: Dimension, R: Element, RD: Dimension> Client<Q, QD, R, RD> {
    /// A client over `seg`, whose request and reply shapes `dims` are checked.
    fn with_dims(seg: Segment, (qdim, rdim): (QD, RD), options: &OpenOptions) -> Result<Self> {
        Ok(Client {
            end: Endpoint::attach(seg, None, Role::Client, options)?,
            qdim,
            rdim,
            _t: PhantomData,
        })
    }

    /// The segment under this handle (name, peers, stats).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-cliseg-{}", std::process::id());
    /// # let _s = Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>::create(&name, 4, 2, &Config::rpc())?;
    /// let c = Client::<u8, ndarray::Ix1, u8, ndarray::Ix1>::open(&name)?;
    /// assert_eq!(c.segment().peers().len(), 2);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn segment(&self) -> &Segment {
        &self.end.seg
    }

    /// Claims a call, waiting while every call is in flight, to fill its request in place.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-clirq-{}", std::process::id());
    /// # let srv = Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>::create(&name, 4, 1, &Config::rpc())?;
    /// let cli = Client::<u8, ndarray::Ix1, u8, ndarray::Ix1>::open(&name)?;
    /// let mut call = cli.request()?;
    /// call.fill(1);
    /// let pending = call.send();
    /// # let r = srv.recv()?; r.reply_with(&ndarray::arr1(&[4]));
    /// # assert_eq!(pending.receive()?[0], 4);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn request(&self) -> Result<Call<'_, Q, QD, R, RD>> {
        self.request_until(None)
    }

    /// Claims a free call if there is one now: `Err(Full)` while every call is in flight (a
    /// caller that waits instead uses [`Client::request`]).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-clitrq-{}", std::process::id());
    /// # let srv = Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>::create(&name, 4, 1, &Config::rpc().slots(1))?;
    /// let cli = Client::<u8, ndarray::Ix1, u8, ndarray::Ix1>::open(&name)?;
    /// let first = cli.try_request()?;
    /// assert!(matches!(cli.try_request(), Err(Error::Full)));
    /// drop(first);                              // given up unsent: the call is free again
    /// assert!(cli.try_request().is_ok());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn try_request(&self) -> Result<Call<'_, Q, QD, R, RD>> {
        // Loads only (no RMW re-check: no sleep follows); the dead-peer sweep when it fails.
        match self.claim_step(false) {
            Some(t) => Ok(self.call_for(t)),
            None => Err(Error::Full),
        }
    }

    /// [`Client::request`], giving up after `timeout` (`Err(Timeout)`).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-clirqt-{}", std::process::id());
    /// # let srv = Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>::create(&name, 4, 1, &Config::rpc().slots(1))?;
    /// let cli = Client::<u8, ndarray::Ix1, u8, ndarray::Ix1>::open(&name)?;
    /// let first = cli.request()?;
    /// assert!(matches!(cli.request_timeout(std::time::Duration::from_millis(1)), Err(Error::Timeout)));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn request_timeout(&self, timeout: Duration) -> Result<Call<'_, Q, QD, R, RD>> {
        self.request_until(wait::deadline(timeout))
    }

    fn request_until(&self, deadline: Option<Instant>) -> Result<Call<'_, Q, QD, R, RD>> {
        let seg = &*self.end.seg;
        let me = Sleeper::new(self.end.entry_ref(), SLEEPING_NOT_FULL);
        let ticket = wait::poll_then_sleep(
            &seg.control().not_full,
            me,
            self.end.how,
            deadline,
            || self.claim_poll(),
            |strong| self.claim_step(strong),
        )
        .ok_or(Error::Timeout)?;
        Ok(self.call_for(ticket))
    }

    /// The bare attempt to claim a free call, for the spin before a sleep (which is the
    /// waiter's reaction time: the liveness checks of [`Client::claim_step`] wait for it).
    #[inline(always)]
    fn claim_poll(&self) -> Option<Ticket> {
        rpc::try_claim(
            &*self.end.seg,
            self.end.start(),
            self.end.entry,
            self.end.pid,
            false,
        )
    }

    /// One attempt to claim a free call; sweeps for dead peers once no call has freed for a
    /// grace period.
    fn claim_step(&self, strong: bool) -> Option<Ticket> {
        let seg = &*self.end.seg;
        let t = rpc::try_claim(seg, self.end.start(), self.end.entry, self.end.pid, strong);
        if t.is_none() && self.end.recover_if_stuck(seg.control().head.load(Relaxed)) {
            return rpc::try_claim(seg, 0, self.end.entry, self.end.pid, false);
        }
        t
    }

    /// The call of a claimed `ticket`, its request to fill.
    fn call_for(&self, ticket: Ticket) -> Call<'_, Q, QD, R, RD> {
        let seg = &*self.end.seg;
        Call {
            client: self,
            ticket,
            // SAFETY: the FILLING CAS gave us this call: no server reads the request before we
            // queue it, and the guard borrows the view.
            request: unsafe {
                ArrayViewMut::from_shape_ptr(
                    self.qdim.clone(),
                    seg.payload(ticket.slot).cast::<Q>(),
                )
            },
            sent: false,
        }
    }

    /// Copies `request` into a call and sends it: the pending call, to receive its reply.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-clis-{}", std::process::id());
    /// # let srv = Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>::create(&name, 2, 1, &Config::rpc())?;
    /// let cli = Client::<u8, ndarray::Ix1, u8, ndarray::Ix1>::open(&name)?;
    /// let a = cli.send(&ndarray::arr1(&[1, 2]))?;     // several calls in flight
    /// let b = cli.send(&ndarray::arr1(&[3, 4]))?;
    /// for _ in 0..2 {
    ///     let r = srv.recv()?;
    ///     let s = r.sum();
    ///     r.reply_with(&ndarray::arr1(&[s]));
    /// }
    /// assert_eq!((b.receive()?[0], a.receive()?[0]), (7, 3));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn send<S: Data<Elem = Q>>(
        &self,
        request: &ArrayBase<S, QD>,
    ) -> Result<Pending<'_, Q, QD, R, RD>> {
        let mut call = self.request()?;
        call.assign(request);
        Ok(call.send())
    }

    /// Sends `request` and waits up to `timeout` (`None`: no limit) for its reply. On
    /// `Err(Timeout)` the call is given up: a reply that arrives later is discarded.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-clic-{}", std::process::id());
    /// # let _srv = Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>::create(&name, 2, 1, &Config::rpc())?;
    /// let cli = Client::<u8, ndarray::Ix1, u8, ndarray::Ix1>::open(&name)?;
    /// let r = cli.call(&ndarray::arr1(&[1, 2]), Some(std::time::Duration::from_millis(5)));
    /// assert!(matches!(r, Err(Error::Timeout)));   // nobody served it
    /// # Ok::<(), Error>(())
    /// ```
    pub fn call<S: Data<Elem = Q>>(
        &self,
        request: &ArrayBase<S, QD>,
        timeout: Option<Duration>,
    ) -> Result<Reply<'_, Q, QD, R, RD>> {
        let pending = self.send(request)?;
        pending.wait(timeout)?;
        pending.receive()
    }
}

impl Client<u8, ndarray::Ix1, u8, ndarray::Ix1> {
    /// Attaches to the request/reply segment `name` with requests and replies as bytes,
    /// whatever their element types (for bindings to other languages, which interpret them).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-clib-{}", std::process::id());
    /// let _s = Server::<f32, ndarray::Ix1, u16, ndarray::Ix1>::create(&name, 2, 3, &Config::rpc())?;
    /// let c = Client::open_bytes(&name, &OpenOptions::default())?;
    /// assert_eq!(c.types(), ((DType::F32, vec![2]), (DType::U16, vec![3])));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn open_bytes(name: &str, options: &OpenOptions) -> Result<Self> {
        constructors::open_then(name, options, Self::from_segment_bytes)
    }

    /// [`Client::open_bytes`] over a segment the caller opened itself (to read its types first,
    /// as a binding does): no second mapping. [`Error::NotFound`] where the name was removed
    /// or replaced since the open: open it again.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-clifsb-{}", std::process::id());
    /// let _s = Server::<f32, ndarray::Ix1, u16, ndarray::Ix1>::create(&name, 2, 3, &Config::rpc())?;
    /// let seg = Segment::open(&name, std::time::Duration::from_secs(1))?;
    /// let h = Client::from_segment_bytes(seg, &OpenOptions::default())?;
    /// assert_eq!(h.types().1, (DType::U16, vec![3]));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn from_segment_bytes(seg: Segment, options: &OpenOptions) -> Result<Self> {
        let dims = super::check_bytes(&seg)?;
        Self::with_dims(seg, dims, options)
    }
}

impl<Q: Element, QD: Dimension, R: Element, RD: Dimension> Client<Q, QD, R, RD> {
    /// The element types and shapes of the requests and of the replies.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-clity-{}", std::process::id());
    /// # let _s = Server::<u8, ndarray::Ix1, f64, ndarray::Ix2>::create(&name, 4, (2, 2), &Config::rpc())?;
    /// let c = Client::<u8, ndarray::Ix1, f64, ndarray::Ix2>::open(&name)?;
    /// assert_eq!(c.types().1, (DType::F64, vec![2, 2]));
    /// # Ok::<(), Error>(())
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn types(&self) -> ((crate::DType, Vec<usize>), (crate::DType, Vec<usize>)) {
        super::types(&self.end.seg)
    }
}

/// A call being filled: derefs to its writable request. [`send`](Call::send) queues it;
/// dropped unsent, it is freed.
pub struct Call<'c, Q: Element, QD: Dimension, R: Element, RD: Dimension> {
    client: &'c Client<Q, QD, R, RD>,
    ticket: Ticket,
    request: ArrayViewMut<'c, Q, QD>,
    sent: bool,
}

impl<'c, Q: Element, QD: Dimension, R: Element, RD: Dimension> Call<'c, Q, QD, R, RD> {
    /// Writes user metadata with the request (a frame id, a camera name): at most the
    /// segment's [`Config::user_meta_size`](crate::Config::user_meta_size) bytes.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-callm-{}", std::process::id());
    /// # let _srv = Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>::create(&name, 2, 1, &Config::rpc())?;
    /// let cli = Client::<u8, ndarray::Ix1, u8, ndarray::Ix1>::open(&name)?;
    /// let mut call = cli.request()?;
    /// assert!(call.set_meta(&[0u8; 64]).is_ok());
    /// assert!(matches!(call.set_meta(&[0u8; 65]), Err(Error::MetaTooLarge { .. })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn set_meta(&mut self, bytes: &[u8]) -> Result<()> {
        let seg = &*self.client.end.seg;
        // SAFETY: the metadata room of our FILLING call: nobody else reads or writes it until
        // we queue the call.
        unsafe { seg.write_user_meta(self.ticket.slot, bytes)? };
        seg.call(self.ticket.slot)
            .meta_len
            .store(bytes.len() as u32, Relaxed);
        Ok(())
    }

    /// Queues the request for a server.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-calls-{}", std::process::id());
    /// # let srv = Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>::create(&name, 2, 1, &Config::rpc())?;
    /// # let cli = Client::<u8, ndarray::Ix1, u8, ndarray::Ix1>::open(&name)?;
    /// let mut call = cli.request()?;
    /// call.assign(&ndarray::arr1(&[9, 9]));
    /// let pending = call.send();
    /// assert_eq!(srv.recv()?.sum(), 18);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn send(mut self) -> Pending<'c, Q, QD, R, RD> {
        self.sent = true;
        let seg = &*self.client.end.seg;
        rpc::submit(seg, self.ticket);
        seg.control().tail.fetch_add(1, Relaxed);
        wait::notify(&seg.control().not_empty);
        Pending {
            #[cfg(feature = "async")]
            sleep: None,
            client: self.client,
            ticket: self.ticket,
            done: false,
        }
    }
}

impl<Q: Element, QD: Dimension, R: Element, RD: Dimension> Deref for Call<'_, Q, QD, R, RD> {
    type Target = ArrayRef<Q, QD>;
    fn deref(&self) -> &ArrayRef<Q, QD> {
        &self.request
    }
}

impl<Q: Element, QD: Dimension, R: Element, RD: Dimension> DerefMut for Call<'_, Q, QD, R, RD> {
    fn deref_mut(&mut self) -> &mut ArrayRef<Q, QD> {
        &mut self.request
    }
}

impl<Q: Element, QD: Dimension, R: Element, RD: Dimension> Drop for Call<'_, Q, QD, R, RD> {
    fn drop(&mut self) {
        if !self.sent {
            release(self.client, self.ticket);
        }
    }
}

fn release<Q: Element, QD: Dimension, R: Element, RD: Dimension>(
    client: &Client<Q, QD, R, RD>,
    t: Ticket,
) {
    let seg = &*client.end.seg;
    if rpc::release(seg, t) {
        wait::notify(&seg.control().not_full);
    }
}

/// A call sent and not yet answered (the ticket of its reply). Dropped, the call is given up:
/// its reply, should one come, is discarded.
pub struct Pending<'c, Q: Element, QD: Dimension, R: Element, RD: Dimension> {
    /// The wait a `Pending` [`Pending::poll_wait`] left registered (dropped before the call is
    /// given up: `Drop` ends it first). Boxed: a call that is never polled stays small.
    #[cfg(feature = "async")]
    sleep: Option<Box<crate::shm::wait_async::AsyncSleep>>,
    client: &'c Client<Q, QD, R, RD>,
    /// `pub(super)`: the poll tests look at the call's reply word.
    pub(super) ticket: Ticket,
    done: bool,
}

impl<'c, Q: Element, QD: Dimension, R: Element, RD: Dimension> Pending<'c, Q, QD, R, RD> {
    /// Waits up to `timeout` (`None`: no limit) for the answer, keeping the call on
    /// `Err(Timeout)`. `Err(RequestFailed)` if its server dropped it unanswered or died serving
    /// it; `Err(Disconnected)` while no server is attached (one was once, and all left or died).
    ///
    /// ```
    /// # use ndring::*;
    /// # use std::time::Duration;
    /// # let name = format!("/ndr-doc-penw-{}", std::process::id());
    /// # let srv = Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>::create(&name, 2, 1, &Config::rpc())?;
    /// # let cli = Client::<u8, ndarray::Ix1, u8, ndarray::Ix1>::open(&name)?;
    /// let p = cli.send(&ndarray::arr1(&[1, 2]))?;
    /// assert!(matches!(p.wait(Some(Duration::from_millis(1))), Err(Error::Timeout)));
    /// drop(srv.recv()?);            // dropped unanswered
    /// assert!(matches!(p.wait(None), Err(Error::RequestFailed { .. })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn wait(&self, timeout: Option<Duration>) -> Result<()> {
        let seg = &*self.client.end.seg;
        let end = &self.client.end;
        let t = self.ticket;
        let me = Sleeper::new(end.entry_ref(), SLEEPING_REPLY + t.slot as u64);
        let got = wait::poll_then_sleep(
            &seg.call(t.slot).reply,
            me,
            end.how,
            timeout.and_then(wait::deadline),
            || self.reply_poll(),
            |strong| self.reply_step(strong),
        );
        self.outcome(got)
    }

    /// The bare look at the call, for the spin before a sleep (the waiter's reaction time: the
    /// liveness checks of [`Pending::reply_step`] wait for the sleep, or a non-blocking look).
    #[inline(always)]
    fn reply_poll(&self) -> Option<Result<Poll>> {
        match rpc::poll(&*self.client.end.seg, self.ticket, false) {
            Poll::Pending => None,
            p => Some(Ok(p)),
        }
    }

    /// Looks at the call once, without waiting: `Ok(true)` once it is answered (then
    /// [`Pending::receive`] returns at once), `Ok(false)` while it is pending; the errors of
    /// [`Pending::wait`] (`RequestFailed`, `Disconnected`) otherwise.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-pentw-{}", std::process::id());
    /// # let srv = Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>::create(&name, 2, 1, &Config::rpc())?;
    /// # let cli = Client::<u8, ndarray::Ix1, u8, ndarray::Ix1>::open(&name)?;
    /// let p = cli.send(&ndarray::arr1(&[1]))?;
    /// assert!(!p.try_wait()?);
    /// srv.recv()?.reply_with(&ndarray::arr1(&[2]));
    /// assert!(p.try_wait()?);
    /// assert_eq!(p.receive()?[0], 2);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn try_wait(&self) -> Result<bool> {
        // Loads only (no RMW re-check: no sleep follows); the liveness checks while pending.
        match self.reply_step(false) {
            None => Ok(false),
            got => self.outcome(got).map(|()| true),
        }
    }

    /// One look at the call: `None` while it is pending (sweeping for dead peers once it has
    /// been stuck for a grace period; `Disconnected` once no server is left).
    fn reply_step(&self, strong: bool) -> Option<Result<Poll>> {
        let seg = &*self.client.end.seg;
        let end = &self.client.end;
        let t = self.ticket;
        match rpc::poll(seg, t, strong) {
            Poll::Pending => {
                let state = seg.call(t.slot).state.load(Relaxed);
                if end.recover_if_stuck(state) {
                    let p = rpc::poll(seg, t, false);
                    if p != Poll::Pending {
                        return Some(Ok(p));
                    }
                }
                end.no_server().then_some(Err(Error::Disconnected {
                    missing: Role::Server,
                }))
            }
            p => Some(Ok(p)),
        }
    }

    /// What a wait that ended with `got` (`None`: timed out) tells the caller.
    fn outcome(&self, got: Option<Result<Poll>>) -> Result<()> {
        match got {
            None => Err(Error::Timeout),
            Some(Err(e)) => Err(e),
            Some(Ok(Poll::Replied)) => Ok(()),
            Some(Ok(_)) => Err(Error::RequestFailed {
                name: self.client.end.seg.name().into(),
            }),
        }
    }

    /// Waits for the answer, then borrows the reply.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-penr-{}", std::process::id());
    /// # let srv = Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>::create(&name, 1, 1, &Config::rpc())?;
    /// # let cli = Client::<u8, ndarray::Ix1, u8, ndarray::Ix1>::open(&name)?;
    /// let p = cli.send(&ndarray::arr1(&[6]))?;
    /// srv.recv()?.reply_with(&ndarray::arr1(&[7]));
    /// let reply = p.receive()?;
    /// assert_eq!(reply[0], 7);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn receive(self) -> Result<Reply<'c, Q, QD, R, RD>> {
        self.wait(None)?;
        Ok(self.reply())
    }

    /// The reply of a call that was answered (`wait` returned `Ok`).
    fn reply(mut self) -> Reply<'c, Q, QD, R, RD> {
        self.done = true;
        let seg = &*self.client.end.seg;
        Reply {
            client: self.client,
            ticket: self.ticket,
            // SAFETY: REPLIED (acquired by `poll`): the server wrote the reply and writes no more;
            // the call stays ours until the guard, which borrows the view, frees it.
            reply: unsafe {
                ArrayView::from_shape_ptr(
                    self.client.rdim.clone(),
                    seg.reply_payload(self.ticket.slot).cast::<R>(),
                )
            },
        }
    }
}

impl<Q: Element, QD: Dimension, R: Element, RD: Dimension> Drop for Pending<'_, Q, QD, R, RD> {
    fn drop(&mut self) {
        // The wait first: it stops counting us as a waiter of the call's word before the call
        // is freed (and may be claimed by another client).
        #[cfg(feature = "async")]
        self.forget_poll();
        if !self.done {
            release(self.client, self.ticket);
        }
    }
}

/// A reply borrowed from its call: derefs to the (read-only) reply; dropped, the call is freed.
pub struct Reply<'c, Q: Element, QD: Dimension, R: Element, RD: Dimension> {
    client: &'c Client<Q, QD, R, RD>,
    ticket: Ticket,
    reply: ArrayView<'c, R, RD>,
}

impl<Q: Element, QD: Dimension, R: Element, RD: Dimension> Deref for Reply<'_, Q, QD, R, RD> {
    type Target = ArrayRef<R, RD>;
    fn deref(&self) -> &ArrayRef<R, RD> {
        &self.reply
    }
}

impl<Q: Element, QD: Dimension, R: Element, RD: Dimension> Drop for Reply<'_, Q, QD, R, RD> {
    fn drop(&mut self) {
        release(self.client, self.ticket);
    }
}

macro_rules! debug_named {
    ($($t:ident),*) => {$(
        impl<Q: Element, QD: Dimension, R: Element, RD: Dimension> std::fmt::Debug
            for $t<'_, Q, QD, R, RD>
        {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($t)).field("ticket", &self.ticket).finish()
            }
        }
    )*};
}
debug_named!(Call, Pending, Reply);

impl<Q: Element, QD: Dimension, R: Element, RD: Dimension> std::fmt::Debug
    for Client<Q, QD, R, RD>
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("name", &self.end.seg.name())
            .finish()
    }
}

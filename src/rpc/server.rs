//! The serving side of a request/reply segment.

use std::marker::PhantomData;
use std::ops::Deref;
use std::time::{Duration, Instant};

use ndarray::{ArrayBase, ArrayRef, ArrayView, ArrayViewMut, Data, Dimension, IntoDimension};

use super::{Endpoint, check};
use crate::config::{Config, OpenOptions};
use crate::element::Element;
use crate::error::{Error, Result};
use crate::handle::attach::create_segment;
use crate::handle::constructors::{self, Attach, opening_constructors};
use crate::header::SLEEPING_NOT_EMPTY;
use crate::protocol::RingMemory;
use crate::protocol::rpc::{self, Answered, CallMemory, State};
use crate::role::Role;
use crate::shm::peers::Registration;
use crate::shm::segment::Segment;
use crate::shm::wait::{self, Sleeper};
use crate::sync::Ordering::*;

/// Serves the requests of a request/reply segment: each request to exactly one server, each
/// reply to the call that asked, zero copy both ways.
///
/// Requests are arrays of `Q` shaped `QD`, replies arrays of `R` shaped `RD`.
///
/// ```
/// use ndring::{Client, Config, Server};
/// use ndarray::{Ix1, Ix2};
/// # let name = format!("/ndr-doc-srv-{}", std::process::id());
/// let srv = Server::<u8, Ix1, f32, Ix2>::create(&name, 4, (2, 3), &Config::rpc())?;
/// let cli = Client::<u8, Ix1, f32, Ix2>::open(&name)?;
/// let pending = cli.send(&ndarray::arr1(&[1u8, 2, 3, 4]))?;
/// // The server, usually another process:
/// let mut req = srv.recv()?;
/// let total = req.sum() as f32;
/// req.reply().fill(total);
/// req.send();
/// assert_eq!(pending.receive()?[[1, 2]], 10.0);
/// # Ok::<(), ndring::Error>(())
/// ```
pub struct Server<Q: Element, QD: Dimension, R: Element, RD: Dimension> {
    /// The wait a `Pending` [`Server::poll_recv`] left registered. First, so that it drops
    /// (no longer counted as a waiter, our peer entry's record cleared) before `end` detaches.
    #[cfg(feature = "async")]
    pending: std::sync::Mutex<Option<crate::shm::wait_async::AsyncSleep>>,
    end: Endpoint,
    qdim: QD,
    rdim: RD,
    _t: PhantomData<fn() -> (Q, R)>,
}

opening_constructors!(
    impl[Q: Element, QD: Dimension, R: Element, RD: Dimension] Server<Q, QD, R, RD>,
    what: "one more server (servers share the requests; a restarted one takes over where a dead one stopped)",
    example: Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>,
    wrong: Server::<u16, ndarray::Ix1, u8, ndarray::Ix1>,
    first: Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>::create(&name, 4, 2, &Config::rpc()),
    tag: rpc_server,
);

impl<Q: Element, QD: Dimension, R: Element, RD: Dimension> Attach for Server<Q, QD, R, RD> {
    const ROLE: Role = Role::Server;

    fn attach(seg: Segment, created: Option<Registration>, options: &OpenOptions) -> Result<Self> {
        let dims = check::<Q, QD, R, RD>(&seg)?;
        Self::with_dims(seg, created, dims, options)
    }
}

impl<Q: Element, QD: Dimension, R: Element, RD: Dimension> Server<Q, QD, R, RD> {
    /// Creates the request/reply segment `name` for requests of `request` shape and replies of
    /// `reply` shape, and serves it. A name whose processes all died is replaced.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-srvc-{}", std::process::id());
    /// let srv = Server::<u8, ndarray::Ix3, f32, ndarray::Ix2>::create(
    ///     &name, (320, 320, 3), (20, 6), &Config::rpc().clients(8))?;
    /// assert_eq!(srv.request_shape(), &[320, 320, 3]);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn create(
        name: &str,
        request: impl IntoDimension<Dim = QD>,
        reply: impl IntoDimension<Dim = RD>,
        config: &Config,
    ) -> Result<Self> {
        let (q, r) = (request.into_dimension(), reply.into_dimension());
        let (seg, reg) = create_segment(
            name,
            (Q::DTYPE, q.slice()),
            Some((R::DTYPE, r.slice())),
            config,
            Role::Server,
        )?;
        Self::attach(seg, Some(reg), &config.into())
    }

    /// A server over `seg`, whose request and reply shapes `dims` are checked.
    fn with_dims(
        seg: Segment,
        created: Option<Registration>,
        (qdim, rdim): (QD, RD),
        options: &OpenOptions,
    ) -> Result<Self> {
        Ok(Server {
            #[cfg(feature = "async")]
            pending: Default::default(),
            end: Endpoint::attach(seg, created, Role::Server, options)?,
            qdim,
            rdim,
            _t: PhantomData,
        })
    }

    /// The requests' shape.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-srvqs-{}", std::process::id());
    /// let s = Server::<u8, ndarray::Ix1, u8, ndarray::Ix2>::create(&name, 4, (2, 2), &Config::rpc())?;
    /// assert_eq!((s.request_shape(), s.reply_shape()), (&[4][..], &[2, 2][..]));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn request_shape(&self) -> &[usize] {
        self.qdim.slice()
    }

    /// The replies' shape.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-srvrs-{}", std::process::id());
    /// let s = Server::<u8, ndarray::Ix1, u8, ndarray::Ix2>::create(&name, 4, (2, 5), &Config::rpc())?;
    /// assert_eq!(s.reply_shape(), &[2, 5]);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn reply_shape(&self) -> &[usize] {
        self.rdim.slice()
    }

    /// The segment under this handle (name, peers, stats).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-srvseg-{}", std::process::id());
    /// let s = Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>::create(&name, 4, 4, &Config::rpc())?;
    /// assert_eq!(s.segment().kind(), RingKind::Rpc);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn segment(&self) -> &Segment {
        &self.end.seg
    }

    /// Takes the next request, waiting for one.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-srvr-{}", std::process::id());
    /// # let srv = Server::<u32, ndarray::Ix1, u32, ndarray::Ix1>::create(&name, 2, 1, &Config::rpc())?;
    /// # let cli = Client::<u32, ndarray::Ix1, u32, ndarray::Ix1>::open(&name)?;
    /// # let p = cli.send(&ndarray::arr1(&[3, 4]))?;
    /// let req = srv.recv()?;
    /// let sum = req.sum();
    /// req.reply_with(&ndarray::arr1(&[sum]));
    /// # assert_eq!(p.receive()?[0], 7);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn recv(&self) -> Result<Request<'_, Q, QD, R, RD>> {
        self.recv_until(None)
    }

    /// Takes a request if one is queued now: `Err(Empty)` otherwise.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-srvtr-{}", std::process::id());
    /// let srv = Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>::create(&name, 2, 1, &Config::rpc())?;
    /// assert!(matches!(srv.try_recv(), Err(Error::Empty)));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn try_recv(&self) -> Result<Request<'_, Q, QD, R, RD>> {
        // Loads only (no RMW re-check: no sleep follows); the dead-peer sweep when it finds
        // nothing.
        match self.take(false) {
            Some(r) => Ok(r),
            None => Err(Error::Empty),
        }
    }

    /// [`Server::recv`], giving up after `timeout` (`Err(Timeout)`).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-srvrt-{}", std::process::id());
    /// let srv = Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>::create(&name, 2, 1, &Config::rpc())?;
    /// assert!(matches!(srv.recv_timeout(std::time::Duration::from_millis(1)), Err(Error::Timeout)));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Request<'_, Q, QD, R, RD>> {
        self.recv_until(wait::deadline(timeout))
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Result<Request<'_, Q, QD, R, RD>> {
        let c = self.end.seg.control();
        let me = Sleeper::new(self.end.entry_ref(), SLEEPING_NOT_EMPTY);
        wait::poll_then_sleep(
            &c.not_empty,
            me,
            self.end.how,
            deadline,
            || self.take_poll(),
            |strong| self.take(strong),
        )
        .ok_or(Error::Timeout)
    }

    /// [`Server::recv`] in a future: awaits a request. Cancel-safe: dropped before it is
    /// ready, it takes no request and leaves no waiter counted.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-srvra-{}", std::process::id());
    /// # let srv = Server::<u32, ndarray::Ix1, u32, ndarray::Ix1>::create(&name, 2, 1, &Config::rpc())?;
    /// # let cli = Client::<u32, ndarray::Ix1, u32, ndarray::Ix1>::open(&name)?;
    /// # let p = cli.send(&ndarray::arr1(&[3, 4]))?;
    /// futures_executor::block_on(async {
    ///     let req = srv.recv_async().await?;
    ///     let sum = req.sum();
    ///     req.reply_with(&ndarray::arr1(&[sum]));
    ///     Ok::<(), Error>(())
    /// })?;
    /// # assert_eq!(p.receive()?[0], 7);
    /// # Ok::<(), Error>(())
    /// ```
    #[cfg(feature = "async")]
    pub async fn recv_async(&self) -> Result<Request<'_, Q, QD, R, RD>> {
        let seg = &self.end.seg;
        let me = Sleeper::new(self.end.entry_ref(), SLEEPING_NOT_EMPTY);
        Ok(crate::shm::wait_async::wait_for(
            seg,
            &seg.control().not_empty,
            me,
            self.end.how,
            || self.take_poll(),
            |strong| self.take(strong),
        )
        .await)
    }

    /// The poll behind [`Server::recv_async`], for hand-written futures and bindings: `Ready`
    /// with the next request, or `Pending` with `cx`'s waker registered to be woken when one
    /// may be queued. It polls as `recv` does ([`crate::Config::spin`]) before it registers.
    /// A `Pending` poll leaves this server counted as a waiter until the next `poll_recv`
    /// returns `Ready`, or [`Server::forget_poll`] (or the server's drop) ends it. One such
    /// wait per server: polls from several tasks at once share it, and only the last poll's
    /// waker is woken (give each task its own server, or use [`Server::recv_async`]).
    ///
    /// ```
    /// # use ndring::*;
    /// # use std::task::{Context, Poll, Waker};
    /// # let name = format!("/ndr-doc-srvpr-{}", std::process::id());
    /// let srv = Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>::create(&name, 1, 1, &Config::rpc().spin(0))?;
    /// let cli = Client::<u8, ndarray::Ix1, u8, ndarray::Ix1>::open(&name)?;
    /// let mut cx = Context::from_waker(Waker::noop());
    /// assert!(srv.poll_recv(&mut cx).is_pending());     // nothing queued: counted as a waiter
    /// let p = cli.send(&ndarray::arr1(&[4]))?;
    /// let Poll::Ready(req) = srv.poll_recv(&mut cx) else { panic!("a request is queued") };
    /// req?.reply_with(&ndarray::arr1(&[5]));
    /// assert_eq!(p.receive()?[0], 5);
    /// # Ok::<(), Error>(())
    /// ```
    #[cfg(feature = "async")]
    pub fn poll_recv(
        &self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<Request<'_, Q, QD, R, RD>>> {
        use std::task::Poll;
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.is_none() {
            if let Some(r) = wait::spin(self.end.how.spin, || self.take_poll()) {
                return Poll::Ready(Ok(r));
            }
            let seg = &self.end.seg;
            let me = Sleeper::new(self.end.entry_ref(), SLEEPING_NOT_EMPTY);
            *pending = Some(crate::shm::wait_async::AsyncSleep::new(
                seg,
                &seg.control().not_empty,
                me,
                self.end.how,
            ));
        }
        let sleep = pending.as_mut().expect("set above");
        let got = std::task::ready!(sleep.poll(cx, |strong| self.take(strong)));
        *pending = None;
        Poll::Ready(Ok(got))
    }

    /// Ends the wait that a `Pending` [`Server::poll_recv`] registered (nothing if none): no
    /// request is taken.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-srvfp-{}", std::process::id());
    /// let srv = Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>::create(&name, 1, 1, &Config::rpc().spin(0))?;
    /// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// assert!(srv.poll_recv(&mut cx).is_pending());
    /// srv.forget_poll();
    /// # Ok::<(), Error>(())
    /// ```
    #[cfg(feature = "async")]
    pub fn forget_poll(&self) {
        let sleep = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        drop(sleep);
    }

    /// One scan for a queued request; sweeps for dead peers once nothing has come for a grace
    /// period.
    fn take(&self, strong: bool) -> Option<Request<'_, Q, QD, R, RD>> {
        let seg = &*self.end.seg;
        let found = rpc::try_take(seg, self.end.start(), self.end.entry, strong);
        let Some((slot, state)) = found else {
            let submitted = seg.control().tail.load(Relaxed);
            if self.end.recover_if_stuck(submitted) {
                return self.take(false);
            }
            return None;
        };
        Some(self.taken(slot, state))
    }

    /// The bare attempt to take a queued request, for the spin before a sleep (the waiter's
    /// reaction time: the dead-peer sweep of [`Server::take`] waits for the sleep, or a
    /// non-blocking attempt).
    #[inline(always)]
    fn take_poll(&self) -> Option<Request<'_, Q, QD, R, RD>> {
        let found = rpc::try_take(&*self.end.seg, self.end.start(), self.end.entry, false);
        found.map(|(slot, state)| self.taken(slot, state))
    }

    /// The request of call `slot`, which our SERVING CAS (`state`) gave us.
    fn taken(&self, slot: usize, state: State) -> Request<'_, Q, QD, R, RD> {
        let seg = &*self.end.seg;
        Request {
            server: self,
            slot,
            state,
            // SAFETY: the SERVING CAS gave us this call: its client wrote the request before
            // queueing it (Release, acquired by our CAS) and writes nothing until the call is
            // answered and freed; the guard borrows the view.
            request: unsafe {
                ArrayView::from_shape_ptr(self.qdim.clone(), seg.payload(slot).cast::<Q>())
            },
            answered: false,
        }
    }
}

impl Server<u8, ndarray::Ix1, u8, ndarray::Ix1> {
    /// Creates a request/reply segment of the given element types and shapes and serves its
    /// requests and replies as bytes (for bindings to other languages, which interpret them).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-srvb-{}", std::process::id());
    /// let s = Server::create_bytes(&name, (DType::F32, &[2, 2]), (DType::U16, &[3]), &Config::rpc())?;
    /// assert_eq!((s.request_shape(), s.reply_shape()), (&[16][..], &[6][..]));
    /// assert_eq!(s.types().1, (DType::U16, vec![3]));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn create_bytes(
        name: &str,
        request: (crate::DType, &[usize]),
        reply: (crate::DType, &[usize]),
        config: &Config,
    ) -> Result<Self> {
        let (seg, reg) = create_segment(name, request, Some(reply), config, Role::Server)?;
        let dims = super::check_bytes(&seg)?;
        Self::with_dims(seg, Some(reg), dims, &config.into())
    }

    /// Serves the existing segment `name` as bytes, whatever its element types.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-srvob-{}", std::process::id());
    /// let _a = Server::<f32, ndarray::Ix1, f32, ndarray::Ix1>::create(&name, 2, 1, &Config::rpc())?;
    /// let b = Server::open_bytes(&name, &OpenOptions::default())?;
    /// assert_eq!(b.types().0, (DType::F32, vec![2]));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn open_bytes(name: &str, options: &OpenOptions) -> Result<Self> {
        constructors::open_then(name, options, Self::from_segment_bytes)
    }

    /// [`Server::open_bytes`] over a segment the caller opened itself (to read its types first,
    /// as a binding does): no second mapping. [`Error::NotFound`] where the name was removed
    /// or replaced since the open: open it again.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-serfsb-{}", std::process::id());
    /// let _s = Server::<f32, ndarray::Ix1, u16, ndarray::Ix1>::create(&name, 2, 3, &Config::rpc())?;
    /// let seg = Segment::open(&name, std::time::Duration::from_secs(1))?;
    /// let h = Server::from_segment_bytes(seg, &OpenOptions::default())?;
    /// assert_eq!(h.types().1, (DType::U16, vec![3]));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn from_segment_bytes(seg: Segment, options: &OpenOptions) -> Result<Self> {
        let dims = super::check_bytes(&seg)?;
        Self::with_dims(seg, None, dims, options)
    }
}

impl<Q: Element, QD: Dimension, R: Element, RD: Dimension> Server<Q, QD, R, RD> {
    /// The element types and shapes of the requests and of the replies, as the segment
    /// records them.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-srvty-{}", std::process::id());
    /// let s = Server::<u8, ndarray::Ix1, f64, ndarray::Ix2>::create(&name, 4, (2, 2), &Config::rpc())?;
    /// assert_eq!(s.types(), ((DType::U8, vec![4]), (DType::F64, vec![2, 2])));
    /// # Ok::<(), Error>(())
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn types(&self) -> ((crate::DType, Vec<usize>), (crate::DType, Vec<usize>)) {
        super::types(&self.end.seg)
    }
}

/// A request taken by a server: derefs to the (read-only) request; fill the reply in place
/// ([`Request::reply`]) and [`send`](Request::send) it, or answer with a copy
/// ([`Request::reply_with`]). Dropped unanswered, its caller gets [`Error::RequestFailed`].
pub struct Request<'s, Q: Element, QD: Dimension, R: Element, RD: Dimension> {
    server: &'s Server<Q, QD, R, RD>,
    slot: usize,
    state: State,
    request: ArrayView<'s, Q, QD>,
    answered: bool,
}

impl<Q: Element, QD: Dimension, R: Element, RD: Dimension> Request<'_, Q, QD, R, RD> {
    /// The reply, to fill in place (it holds whatever this slot last held: write it whole).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-reqr-{}", std::process::id());
    /// # let srv = Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>::create(&name, 1, 2, &Config::rpc())?;
    /// # let cli = Client::<u8, ndarray::Ix1, u8, ndarray::Ix1>::open(&name)?;
    /// # let p = cli.send(&ndarray::arr1(&[5]))?;
    /// let mut req = srv.recv()?;
    /// let x = req[0];
    /// req.reply().assign(&ndarray::arr1(&[x, x + 1]));
    /// req.send();
    /// # assert_eq!(p.receive()?.to_vec(), [5, 6]);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn reply(&mut self) -> ArrayViewMut<'_, R, RD> {
        let seg = &*self.server.end.seg;
        // SAFETY: the call is ours (SERVING) until answered: its client reads the reply only
        // after REPLIED; the view borrows `self` mutably, so it ends before `send`.
        unsafe {
            ArrayViewMut::from_shape_ptr(
                self.server.rdim.clone(),
                seg.reply_payload(self.slot).cast::<R>(),
            )
        }
    }

    /// The request and the reply at once (they lie apart in the slot): read one while filling
    /// the other.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-reqp-{}", std::process::id());
    /// # let srv = Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>::create(&name, 2, 2, &Config::rpc())?;
    /// # let cli = Client::<u8, ndarray::Ix1, u8, ndarray::Ix1>::open(&name)?;
    /// # let p = cli.send(&ndarray::arr1(&[1, 2]))?;
    /// let mut req = srv.recv()?;
    /// let (request, mut reply) = req.parts();
    /// reply.assign(&request.mapv(|x| x * 10));
    /// req.send();
    /// # assert_eq!(p.receive()?.to_vec(), [10, 20]);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn parts(&mut self) -> (ArrayView<'_, Q, QD>, ArrayViewMut<'_, R, RD>) {
        let request = self.request.view();
        let seg = &*self.server.end.seg;
        // SAFETY: as `reply`; the reply region does not overlap the request (layout).
        let reply = unsafe {
            ArrayViewMut::from_shape_ptr(
                self.server.rdim.clone(),
                seg.reply_payload(self.slot).cast::<R>(),
            )
        };
        (request, reply)
    }

    /// The user metadata sent with the request.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-reqm-{}", std::process::id());
    /// # let srv = Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>::create(&name, 1, 1, &Config::rpc())?;
    /// # let cli = Client::<u8, ndarray::Ix1, u8, ndarray::Ix1>::open(&name)?;
    /// let mut call = cli.request()?;
    /// call.set_meta(b"cam-3")?;
    /// let _p = call.send();
    /// assert_eq!(srv.recv()?.meta(), b"cam-3");
    /// # Ok::<(), Error>(())
    /// ```
    pub fn meta(&self) -> &[u8] {
        let seg = &*self.server.end.seg;
        let len = (seg.call(self.slot).meta_len.load(Relaxed) as usize).min(seg.user_meta_size());
        // SAFETY: the metadata bytes lie in this call's slot, written by the client before it
        // queued the call, and not written again while we serve it.
        unsafe { std::slice::from_raw_parts(seg.user_meta(self.slot), len) }
    }

    /// The asking client's process id.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-reqc-{}", std::process::id());
    /// # let srv = Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>::create(&name, 1, 1, &Config::rpc())?;
    /// # let cli = Client::<u8, ndarray::Ix1, u8, ndarray::Ix1>::open(&name)?;
    /// # let _p = cli.send(&ndarray::arr1(&[1]))?;
    /// assert_eq!(srv.recv()?.client(), std::process::id());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn client(&self) -> u32 {
        self.state.client_pid()
    }

    /// Hands the reply to its caller. Whether the caller had it: `false` when it had given up
    /// (timed out, or dropped its ticket): the reply is then discarded.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-reqs-{}", std::process::id());
    /// # let srv = Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>::create(&name, 1, 1, &Config::rpc())?;
    /// # let cli = Client::<u8, ndarray::Ix1, u8, ndarray::Ix1>::open(&name)?;
    /// let pending = cli.send(&ndarray::arr1(&[1]))?;
    /// let mut req = srv.recv()?;
    /// drop(pending);                 // the caller gives up
    /// req.reply().fill(2);
    /// assert!(!req.send());          // discarded, never delivered to another call
    /// # Ok::<(), Error>(())
    /// ```
    pub fn send(mut self) -> bool {
        self.finish(true)
    }

    /// Copies `reply` in and hands it to its caller, as [`Request::send`].
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-reqw-{}", std::process::id());
    /// # let srv = Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>::create(&name, 1, 2, &Config::rpc())?;
    /// # let cli = Client::<u8, ndarray::Ix1, u8, ndarray::Ix1>::open(&name)?;
    /// # let p = cli.send(&ndarray::arr1(&[1]))?;
    /// assert!(srv.recv()?.reply_with(&ndarray::arr1(&[7, 8])));
    /// # assert_eq!(p.receive()?.to_vec(), [7, 8]);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn reply_with<S: Data<Elem = R>>(mut self, reply: &ArrayBase<S, RD>) -> bool {
        self.reply().assign(reply);
        self.finish(true)
    }

    fn finish(&mut self, replied: bool) -> bool {
        self.answered = true;
        let seg = &*self.server.end.seg;
        let c = seg.control();
        match rpc::answer(seg, self.slot, self.state, replied) {
            Answered::Delivered => {
                if replied {
                    c.head.fetch_add(1, Relaxed);
                } else {
                    c.stats.abandoned.fetch_add(1, Relaxed);
                }
                wait::notify(&seg.call(self.slot).reply);
                replied
            }
            Answered::Discarded => {
                wait::notify(&c.not_full);
                false
            }
            Answered::Lost => false,
        }
    }
}

impl<Q: Element, QD: Dimension, R: Element, RD: Dimension> Deref for Request<'_, Q, QD, R, RD> {
    type Target = ArrayRef<Q, QD>;
    fn deref(&self) -> &ArrayRef<Q, QD> {
        &self.request
    }
}

impl<Q: Element, QD: Dimension, R: Element, RD: Dimension> Drop for Request<'_, Q, QD, R, RD> {
    fn drop(&mut self) {
        if !self.answered {
            self.finish(false);
        }
    }
}

impl<Q: Element, QD: Dimension, R: Element, RD: Dimension> std::fmt::Debug
    for Server<Q, QD, R, RD>
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("name", &self.end.seg.name())
            .field("request", &(Q::DTYPE, self.request_shape()))
            .field("reply", &(R::DTYPE, self.reply_shape()))
            .finish()
    }
}

impl<Q: Element, QD: Dimension, R: Element, RD: Dimension> std::fmt::Debug
    for Request<'_, Q, QD, R, RD>
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("slot", &self.slot)
            .field("client", &self.client())
            .finish()
    }
}

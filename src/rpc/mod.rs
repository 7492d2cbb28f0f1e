//! Request and reply: a server process answers the requests of its clients through one named
//! segment, each call a slot holding its request and its reply (`protocol::rpc`).

mod client;
mod server;

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use ndarray::Dimension;

pub use client::{Call, Client, Pending, Reply};
pub use server::{Request, Server};

use crate::config::OpenOptions;
use crate::element::{DType, Element};
use crate::error::{Error, Result};
use crate::handle::attach::Family;
use crate::layout::RingKind;
use crate::role::Role;
use crate::shm::peers::{self, Registration};
use crate::shm::segment::Segment;
use crate::shm::wait::{Stuck, SweepClock, Waiting};

/// What a server or a client holds of its segment.
struct Endpoint {
    seg: Arc<Segment>,
    entry: usize,
    role: Role,
    pid: u32,
    how: Waiting,
    /// Where the next scan for a free or queued call starts (round robin).
    cursor: AtomicUsize,
    /// How long our waits have found nothing moving, across calls (dead-peer sweeps).
    stuck: Mutex<Stuck>,
    /// When we may next look in `/proc` whether any server is alive.
    liveness: Mutex<SweepClock>,
}

impl Endpoint {
    fn attach(
        seg: Segment,
        created: Option<Registration>,
        role: Role,
        options: &OpenOptions,
    ) -> Result<Endpoint> {
        let reg = match created {
            Some(reg) => reg,
            None => peers::register(&seg, role)?,
        };
        Ok(Endpoint {
            seg: Arc::new(seg),
            entry: reg.index,
            role,
            pid: crate::shm::sys::pid(),
            how: Waiting {
                spin: options.spin,
                grace: options.grace,
            },
            cursor: AtomicUsize::new(reg.index),
            stuck: Mutex::new(Stuck::new()),
            liveness: Mutex::new(SweepClock::new()),
        })
    }

    /// The next scan's start.
    fn start(&self) -> usize {
        self.cursor.fetch_add(1, Relaxed) % self.seg.slot_count()
    }

    /// For a wait that found nothing at `pos`: sweeps the peer table once stuck for a grace
    /// period. Whether it recovered anything.
    fn recover_if_stuck(&self, pos: u64) -> bool {
        let due = self
            .stuck
            .lock()
            .is_ok_and(|mut s| s.due(pos, self.how.grace));
        due && peers::sweep(&self.seg) > 0
    }

    /// Whether callers waiting for a reply are disconnected: a server attached once, and none is
    /// now (dead ones noticed within a grace period).
    fn no_server(&self) -> bool {
        peers::disconnected(&self.seg, Role::Server, false, || {
            self.liveness
                .lock()
                .is_ok_and(|mut c| c.due(self.how.grace))
        })
    }

    fn entry_ref(&self) -> &crate::header::PeerEntry {
        crate::protocol::RingMemory::peer(&*self.seg, self.entry)
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        peers::unregister(&self.seg, self.entry, self.role);
        peers::leave(&self.seg);
    }
}

/// Checks a request/reply segment against the request's `Q`, `QD` and the reply's `R`, `RD`.
fn check<Q: Element, QD: Dimension, R: Element, RD: Dimension>(seg: &Segment) -> Result<(QD, RD)> {
    let qdim = crate::handle::attach::check_as::<Q, QD>(seg, Family::Rpc)?;
    let Some((rdtype, rshape)) = &seg.layout().params.reply else {
        return Err(Error::Corrupt {
            name: seg.name().into(),
            reason: "a request/reply segment without a reply type".into(),
        });
    };
    let rdim = crate::handle::attach::dim_of::<R, RD>(*rdtype, rshape)?;
    Ok((qdim, rdim))
}

/// Checks that `seg` is a request/reply segment; its requests and replies as bytes (the element
/// types and shapes are the caller's to interpret: bindings to other languages).
fn check_bytes(seg: &Segment) -> Result<(ndarray::Ix1, ndarray::Ix1)> {
    if seg.is_read_only() {
        return Err(Error::ReadOnly {
            name: seg.name().into(),
        });
    }
    if seg.kind() != RingKind::Rpc {
        return Err(Error::KindMismatch {
            expected: "a request/reply segment",
            found: seg.kind(),
        });
    }
    let l = seg.layout();
    Ok((ndarray::Ix1(l.payload_bytes), ndarray::Ix1(l.reply_bytes)))
}

/// A request/reply segment's element types and shapes: `((request dtype, shape), (reply dtype,
/// shape))`.
fn types(seg: &Segment) -> ((DType, Vec<usize>), (DType, Vec<usize>)) {
    let p = &seg.layout().params;
    let reply = p.reply.clone().expect("checked: a request/reply segment");
    ((p.dtype, p.shape.clone()), reply)
}

/// How the calls of a request/reply segment stand, for listings ([`Segment::calls`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallCounts {
    /// Calls free for a client.
    pub free: usize,
    /// Calls being filled by their clients.
    pub filling: usize,
    /// Requests waiting for a server.
    pub queued: usize,
    /// Requests being served.
    pub serving: usize,
    /// Replies waiting for their callers.
    pub replied: usize,
    /// Requests being served whose callers gave up.
    pub cancelled: usize,
    /// Failures waiting for their callers.
    pub failed: usize,
    /// Requests ever sent.
    pub sent_total: u64,
    /// Replies ever delivered.
    pub replied_total: u64,
    /// Requests ever dropped unanswered by a server.
    pub failed_total: u64,
}

impl Segment {
    /// Request/reply segments: how the calls stand: how many are free, queued, being served,
    /// answered, and the totals ever sent, replied and failed (`None` for other kinds).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-calls-{}", std::process::id());
    /// let srv = Server::<u8, ndarray::Ix1, u8, ndarray::Ix1>::create(&name, 1, 1, &Config::rpc().slots(4))?;
    /// let cli = Client::<u8, ndarray::Ix1, u8, ndarray::Ix1>::open(&name)?;
    /// let _p = cli.send(&ndarray::arr1(&[1]))?;
    /// let c = srv.segment().calls().unwrap();
    /// assert_eq!((c.free, c.queued, c.sent_total), (3, 1, 1));
    /// // Anyone who may read the segment sees the same, through an inspector:
    /// assert_eq!(ndring::inspect::Inspector::open(&name)?.calls(), Some(c));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn calls(&self) -> Option<CallCounts> {
        use crate::protocol::RingMemory;
        if self.kind() != RingKind::Rpc {
            return None;
        }
        let [free, filling, queued, serving, replied, cancelled, failed] =
            crate::protocol::rpc::census(self);
        let c = self.control();
        Some(CallCounts {
            free,
            filling,
            queued,
            serving,
            replied,
            cancelled,
            failed,
            sent_total: c.tail.load(Relaxed),
            replied_total: c.head.load(Relaxed),
            failed_total: c.stats.abandoned.load(Relaxed),
        })
    }
}

/// The poll API leaves no waiter counted once forgotten or dropped.
#[cfg(all(test, feature = "async", not(miri)))]
mod poll_tests {
    use std::task::{Context, Waker};

    use crate::protocol::rpc::CallMemory;
    use crate::{Client, Config, OpenOptions, Server};
    use ndarray::Ix1;

    type Srv = Server<u8, Ix1, u8, Ix1>;
    type Cli = Client<u8, Ix1, u8, Ix1>;

    fn pair(tag: &str) -> (Srv, Cli) {
        let name = format!("/ndr-ut-rpcpoll-{tag}-{}", std::process::id());
        let srv = Srv::create(&name, 1, 1, &Config::rpc().slots(2).spin(0)).unwrap();
        let cli = Cli::open_with(&name, &OpenOptions::default().spin(0)).unwrap();
        (srv, cli)
    }

    #[test]
    fn a_forgotten_or_dropped_pending_wait_leaves_no_waiter() {
        let (srv, cli) = pair("cli");
        let mut cx = Context::from_waker(Waker::noop());
        let mut p = cli.send(&ndarray::arr1(&[1])).unwrap();
        let slot = p.ticket.slot;
        let waiters = || {
            srv.segment()
                .call(slot)
                .reply
                .waiters
                .load(crate::sync::Ordering::Relaxed)
        };
        assert!(p.poll_wait(&mut cx).is_pending());
        assert_eq!(waiters(), 1);
        p.forget_poll();
        assert_eq!(waiters(), 0);
        assert!(p.poll_wait(&mut cx).is_pending());
        assert_eq!(waiters(), 1);
        drop(p); // given up: the wait ends first, then the call
        assert_eq!(waiters(), 0);
    }

    #[test]
    fn a_forgotten_server_poll_leaves_no_waiter_and_takes_nothing() {
        let (srv, cli) = pair("srv");
        let mut cx = Context::from_waker(Waker::noop());
        assert!(srv.poll_recv(&mut cx).is_pending());
        assert_eq!(srv.segment().sleepers().0, 1);
        srv.forget_poll();
        assert_eq!(srv.segment().sleepers().0, 0);
        assert!(srv.poll_recv(&mut cx).is_pending());
        let p = cli.send(&ndarray::arr1(&[5])).unwrap();
        srv.forget_poll();
        assert_eq!(srv.segment().sleepers().0, 0);
        // Nothing was taken: the request is still queued.
        let req = srv.try_recv().unwrap();
        assert!(req.reply_with(&ndarray::arr1(&[6])));
        assert_eq!(p.receive().unwrap()[0], 6);
    }
}

//! Options for creating and attaching to rings.

use std::time::Duration;

use crate::layout::RingKind;

/// How to create (and attach to) a ring. Start from [`Config::spsc`], [`Config::mpmc`] or
/// [`Config::broadcast`] and adjust.
///
/// ```
/// let config = ndring::Config::spsc().slots(4).user_meta_size(16).mode(0o660);
/// assert_eq!(config.slot_count(), 4);
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    pub(crate) kind: RingKind,
    pub(crate) slots: usize,
    pub(crate) user_meta: usize,
    pub(crate) mode: u32,
    pub(crate) keep: bool,
    pub(crate) max_peers: usize,
    pub(crate) timestamps: bool,
    pub(crate) replace_stale: bool,
    pub(crate) ready_timeout: Duration,
    pub(crate) spin: u32,
    pub(crate) grace: Duration,
}

impl Config {
    fn new(kind: RingKind, max_peers: usize) -> Config {
        Config {
            kind,
            slots: 4,
            user_meta: 64,
            mode: 0o600,
            keep: false,
            max_peers,
            timestamps: false,
            replace_stale: false,
            ready_timeout: Duration::from_secs(2),
            spin: 2000,
            grace: Duration::from_millis(500),
        }
    }

    /// A single-producer single-consumer queue: FIFO, exactly once, no CAS on the fast path.
    ///
    /// ```
    /// assert_eq!(ndring::Config::spsc().kind(), ndring::RingKind::Spsc);
    /// ```
    pub fn spsc() -> Config {
        Config::new(RingKind::Spsc, 2)
    }

    /// A shared array ([`crate::SharedArray`]): one array that every attached process reads
    /// and writes in place, under a reader-writer lock. At most 64 handles at once by default
    /// ([`Config::max_peers`]).
    ///
    /// ```
    /// assert_eq!(ndring::Config::array().kind(), ndring::RingKind::Array);
    /// ```
    pub fn array() -> Config {
        let mut c = Config::new(RingKind::Array, 64);
        c.slots = 1;
        c.user_meta = 0;
        c
    }

    /// A multi-producer multi-consumer queue: each item to exactly one consumer. At most 64
    /// producers and consumers together by default ([`Config::max_peers`]).
    ///
    /// ```
    /// assert_eq!(ndring::Config::mpmc().kind(), ndring::RingKind::Mpmc);
    /// ```
    pub fn mpmc() -> Config {
        Config::new(RingKind::Mpmc, 64)
    }

    /// A broadcast ring: one writer that never waits, up to 4 subscribers by default
    /// ([`Config::max_subscribers`]); needs `slots >= max_subscribers + 2`, so 8 slots by default.
    ///
    /// ```
    /// let c = ndring::Config::broadcast().max_subscribers(6);
    /// assert_eq!(c.kind(), ndring::RingKind::Broadcast);
    /// ```
    pub fn broadcast() -> Config {
        Config::new(RingKind::Broadcast, 5).slots(8)
    }

    /// A request/reply segment ([`crate::Server`], [`crate::Client`]): by default room for 8
    /// clients and 8 servers attached at once and 16 calls in flight ([`Config::clients`]).
    ///
    /// ```
    /// let c = ndring::Config::rpc().clients(4);
    /// assert_eq!(c.kind(), ndring::RingKind::Rpc);
    /// assert_eq!(c.slot_count(), 8);
    /// ```
    pub fn rpc() -> Config {
        Config::new(RingKind::Rpc, 16).slots(16)
    }

    /// Request/reply: most clients attached at once (beside up to 8 servers), with two calls in
    /// flight each ([`Config::slots`] after this call changes the number of calls).
    ///
    /// ```
    /// let c = ndring::Config::rpc().clients(2).slots(16);
    /// assert_eq!(c.slot_count(), 16);
    /// ```
    pub fn clients(mut self, n: usize) -> Config {
        if self.kind == RingKind::Rpc {
            self.max_peers = n.saturating_add(8);
            self.slots = n.saturating_mul(2).max(1);
        }
        self
    }

    /// Number of slots (at least 2). Default 4 for queues, 8 for broadcast.
    ///
    /// ```
    /// assert_eq!(ndring::Config::mpmc().slots(16).slot_count(), 16);
    /// ```
    pub fn slots(mut self, slots: usize) -> Config {
        self.slots = slots;
        self
    }

    /// Bytes of user metadata each slot can carry (a frame id, an exposure time). Default 64.
    ///
    /// ```
    /// let c = ndring::Config::spsc().user_meta_size(0);
    /// ```
    pub fn user_meta_size(mut self, bytes: usize) -> Config {
        self.user_meta = bytes;
        self
    }

    /// Permission bits of the segment, exactly (the umask does not apply). Default `0o600`; widen
    /// to `0o660` to share with a group.
    ///
    /// ```
    /// let c = ndring::Config::spsc().mode(0o660);
    /// ```
    pub fn mode(mut self, mode: u32) -> Config {
        self.mode = mode & 0o777;
        self
    }

    /// Record a `CLOCK_MONOTONIC` timestamp with every item at publish, read back with
    /// [`crate::ReadSlot::timestamp_ns`] (for latency measurements). Default off: reading the
    /// clock costs about 25 ns per item, as much as the rest of an SPSC hand-over of a small
    /// array.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-ts-{}", std::process::id());
    /// let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 4, &Config::spsc().timestamps(true))?;
    /// let mut rx = Consumer::<u8, ndarray::Ix1>::open(&name)?;
    /// tx.claim()?.publish();
    /// assert!(rx.recv()?.timestamp_ns().unwrap() <= now_ns());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn timestamps(mut self, on: bool) -> Config {
        self.timestamps = on;
        self
    }

    /// Keep the name when the last handle detaches. By default the last handle out (in any
    /// process) removes the name once no published item is left unread; a producer that
    /// publishes and exits leaves the ring for a consumer that starts later.
    ///
    /// ```
    /// let c = ndring::Config::spsc().keep(true);
    /// ```
    pub fn keep(mut self, keep: bool) -> Config {
        self.keep = keep;
        self
    }

    /// MPMC: most producers and consumers attached at once (default 64); shared arrays: most
    /// handles attached at once (default 64).
    ///
    /// ```
    /// let c = ndring::Config::mpmc().max_peers(8);
    /// ```
    pub fn max_peers(mut self, n: usize) -> Config {
        if matches!(self.kind, RingKind::Mpmc | RingKind::Array) {
            self.max_peers = n;
        }
        self
    }

    /// Broadcast: most subscribers attached at once (default 4).
    ///
    /// ```
    /// let c = ndring::Config::broadcast().max_subscribers(2).slots(4);
    /// ```
    pub fn max_subscribers(mut self, n: usize) -> Config {
        if self.kind == RingKind::Broadcast {
            self.max_peers = n.saturating_add(1);
        }
        self
    }

    /// If a segment of this name exists and its creator is dead (or it never became ready),
    /// remove it and create afresh instead of failing with [`crate::Error::Stale`]. A segment
    /// whose creator is alive is never replaced.
    ///
    /// ```
    /// let c = ndring::Config::spsc().replace_stale(true);
    /// ```
    pub fn replace_stale(mut self, yes: bool) -> Config {
        self.replace_stale = yes;
        self
    }

    /// How long an opener waits for a creator to finish initialising (default 2 s).
    ///
    /// ```
    /// let c = ndring::Config::spsc().ready_timeout(std::time::Duration::from_millis(100));
    /// ```
    pub fn ready_timeout(mut self, d: std::time::Duration) -> Config {
        self.ready_timeout = d;
        self
    }

    /// How many times a blocking call polls before it sleeps on the futex (default 2000, a few
    /// microseconds). 0 sleeps at once.
    ///
    /// ```
    /// let c = ndring::Config::spsc().spin(0);
    /// ```
    pub fn spin(mut self, polls: u32) -> Config {
        self.spin = polls;
        self
    }

    /// How long a blocked call waits before it checks whether a peer it waits on has died and
    /// recovers what that peer held (default 500 ms).
    ///
    /// ```
    /// let c = ndring::Config::mpmc().grace(std::time::Duration::from_secs(1));
    /// ```
    pub fn grace(mut self, d: std::time::Duration) -> Config {
        self.grace = d.max(Duration::from_millis(1));
        self
    }

    /// The ring kind.
    ///
    /// ```
    /// assert_eq!(ndring::Config::spsc().kind(), ndring::RingKind::Spsc);
    /// ```
    pub fn kind(&self) -> RingKind {
        self.kind
    }

    /// The slot count.
    ///
    /// ```
    /// assert_eq!(ndring::Config::spsc().slot_count(), 4);
    /// ```
    pub fn slot_count(&self) -> usize {
        self.slots
    }
}

/// Options for attaching to an existing ring (the waiting behaviour of [`Config`] without the
/// layout).
///
/// ```
/// let o = ndring::OpenOptions::default().spin(100);
/// ```
#[derive(Clone, Debug)]
pub struct OpenOptions {
    pub(crate) wait: Duration,
    pub(crate) ready_timeout: Duration,
    pub(crate) spin: u32,
    pub(crate) grace: Duration,
}

impl Default for OpenOptions {
    fn default() -> Self {
        let c = Config::spsc();
        OpenOptions {
            wait: Duration::ZERO,
            ready_timeout: c.ready_timeout,
            spin: c.spin,
            grace: c.grace,
        }
    }
}

impl OpenOptions {
    /// How long an open waits for the ring to be created, if its name does not exist yet
    /// (default 0: `Err(NotFound)` at once). For a consumer that may start before its producer:
    /// the thread sleeps on an inotify watch of `/dev/shm` (no polling) and attaches as soon
    /// as the ring appears; `Err(NotFound)` after `timeout`.
    ///
    /// ```
    /// # use ndring::*;
    /// # use std::time::Duration;
    /// # let name = format!("/ndr-doc-wfc-{}", std::process::id());
    /// let o = OpenOptions::default().wait_for_creator(Duration::from_millis(20));
    /// assert!(matches!(Consumer::<u8, ndarray::Ix1>::open_with(&name, &o), Err(Error::NotFound { .. })));
    /// ```
    pub fn wait_for_creator(mut self, timeout: Duration) -> Self {
        self.wait = timeout;
        self
    }

    /// See [`Config::ready_timeout`].
    ///
    /// ```
    /// let o = ndring::OpenOptions::default().ready_timeout(std::time::Duration::from_secs(1));
    /// ```
    pub fn ready_timeout(mut self, d: Duration) -> Self {
        self.ready_timeout = d;
        self
    }

    /// See [`Config::spin`].
    ///
    /// ```
    /// let o = ndring::OpenOptions::default().spin(0);
    /// ```
    pub fn spin(mut self, polls: u32) -> Self {
        self.spin = polls;
        self
    }

    /// See [`Config::grace`].
    ///
    /// ```
    /// let o = ndring::OpenOptions::default().grace(std::time::Duration::from_millis(100));
    /// ```
    pub fn grace(mut self, d: Duration) -> Self {
        self.grace = d.max(Duration::from_millis(1));
        self
    }
}

impl From<&Config> for OpenOptions {
    fn from(c: &Config) -> Self {
        OpenOptions {
            wait: Duration::ZERO,
            ready_timeout: c.ready_timeout,
            spin: c.spin,
            grace: c.grace,
        }
    }
}

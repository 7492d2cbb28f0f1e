//! # ndring
//!
//! Fixed-shape arrays (camera frames, sensor blocks, tensors) moved between processes of one
//! machine through a lock-free ring in named POSIX shared memory, with zero copies: a producer
//! fills a slot in place through an [`ndarray::ArrayViewMut`] and publishes it; a consumer in
//! another process borrows it as an [`ndarray::ArrayView`] and releases it.
//!
//! * Queue rings ([`Config::spsc`], [`Config::mpmc`]) hand each slot to exactly one consumer,
//!   with backpressure: [`Producer`], [`Consumer`].
//! * Broadcast rings ([`Config::broadcast`]) let one writer overwrite the oldest frame while any
//!   number of subscribers follow, each told how many frames it missed: [`BroadcastWriter`],
//!   [`Subscriber`].
//! * Shared arrays ([`Config::array`]) are one array that every attached process reads and
//!   writes in place, under a reader-writer lock that crosses processes: [`SharedArray`].
//! * Request/reply segments ([`Config::rpc`]) carry the calls of clients to servers, each reply
//!   to the call that asked: [`Server`], [`Client`].
//!
//! ```
//! use ndring::{Config, Consumer, Producer};
//! use ndarray::Ix3;
//! # let name = format!("/ndr-doc-lib-{}", std::process::id());
//! // Process A
//! let mut tx = Producer::<u8, Ix3>::create(&name, (480, 640, 3), &Config::spsc().slots(4))?;
//! let mut slot = tx.claim()?;          // an ArrayViewMut<u8, Ix3> over shared memory
//! slot.fill(128);
//! slot.publish();
//! // Process B
//! let mut rx = Consumer::<u8, Ix3>::open(&name)?;
//! let frame = rx.recv()?;              // an ArrayView<u8, Ix3> of the same memory
//! assert_eq!(frame[[0, 0, 0]], 128);
//! # Ok::<(), ndring::Error>(())
//! ```
//!
//! Linux only (shared futexes, `/proc` for liveness); see `ARCHITECTURE.md` for the format.

#![warn(missing_docs, missing_debug_implementations)]

mod sync;

#[cfg(loom)]
#[doc(hidden)]
pub mod header;
#[cfg(not(loom))]
mod header;

#[cfg(loom)]
#[doc(hidden)]
pub mod protocol;
#[cfg(not(loom))]
mod protocol;

#[cfg(not(loom))]
mod array;
#[cfg(not(loom))]
mod broadcast;
#[cfg(not(loom))]
mod config;
#[cfg(not(loom))]
mod element;
#[cfg(not(loom))]
mod error;
#[cfg(not(loom))]
mod handle;
#[cfg(not(loom))]
pub mod inspect;
#[cfg(not(loom))]
pub mod layout;
#[cfg(not(loom))]
mod queue;
#[cfg(not(loom))]
mod role;
#[cfg(not(loom))]
mod rpc;
#[cfg(not(loom))]
mod shm;

#[cfg(all(test, not(loom)))]
mod test_name;

#[cfg(not(loom))]
pub use crate::{
    array::{ReadGuard, RowsGuard, SharedArray, WriteGuard},
    broadcast::{
        subscriber::{Start, Subscriber},
        writer::BroadcastWriter,
    },
    config::{Config, OpenOptions},
    element::{Bool8, DType, Element},
    error::{Error, Result},
    handle::slot::{ReadSlot, WriteSlot},
    layout::RingKind,
    queue::{
        consumer::Consumer,
        lease::{LeaseConsumer, LeaseProducer, ReadLease, WriteLease},
        producer::{Producer, RECENT_FIRST_MIN_BYTES},
    },
    role::{PeerInfo, Role},
    rpc::{Call, CallCounts, Client, Pending, Reply, Request, Server},
    shm::segment::{MAX_NAME_LEN, Positions, Segment, Stats, remove, validate_name},
};

/// The futures and streams of the async API (feature `async`, on by default).
#[cfg(all(feature = "async", not(loom)))]
pub mod futures {
    pub use crate::broadcast::subscriber::SubscriberRecv;
    pub use crate::queue::consumer::{Recv, RecvStream};
    pub use crate::queue::lease::{LeaseClaim, LeaseRecv};
    pub use crate::queue::producer::Claim;
}

/// The crate of the `f16` and `bf16` element types ([`DType::F16`], [`DType::BF16`]), re-exported
/// so that a user needs no dependency of its own (and gets the same version).
#[cfg(not(loom))]
pub use half;
/// The crate of the complex element types ([`DType::C64`], [`DType::C128`]), re-exported as
/// [`half`] is.
#[cfg(not(loom))]
pub use num_complex;

/// The code blocks of `README.md`, compiled and run by `cargo test` as doc tests, so that the
/// README's examples stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// `CLOCK_MONOTONIC` in nanoseconds, the clock of [`ReadSlot::timestamp_ns`]; the same clock in
/// every process of the machine.
///
/// ```
/// let a = ndring::now_ns();
/// assert!(ndring::now_ns() >= a);
/// ```
#[cfg(not(loom))]
pub fn now_ns() -> u64 {
    shm::sys::now_ns()
}

/// How many futex system calls (sleeps and wakes) the calling thread has made through ndring:
/// a diagnostic that shows whether a ring runs on its fast path, where no system call is made
/// unless a peer is asleep.
///
/// ```
/// # use ndring::*;
/// # let name = format!("/ndr-doc-futex-{}", std::process::id());
/// let mut tx = Producer::<u8, ndarray::Ix1>::create(&name, 4, &Config::spsc())?;
/// let mut rx = Consumer::<u8, ndarray::Ix1>::open(&name)?;
/// let before = ndring::futex_calls();
/// tx.send(&ndarray::arr1(&[1, 2, 3, 4]))?;
/// assert_eq!(rx.recv()?[0], 1);
/// // Nobody was asleep: no system call on either side.
/// assert_eq!(ndring::futex_calls(), before);
/// # Ok::<(), Error>(())
/// ```
#[cfg(not(loom))]
pub fn futex_calls() -> u64 {
    shm::sys::futex_calls()
}

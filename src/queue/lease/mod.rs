//! Owned leases: received and claimed slots that own their reservation instead of borrowing
//! their handle, for callers that hold several slots at once and release them in any order
//! (the Python binding, where a slot lives as long as a numpy array that refers to it).
//!
//! [`LeaseConsumer`] wraps a [`Consumer`]; each [`ReadLease`] it hands out is `'static` and
//! `Send`, shares the consumer's state through an `Arc`, and releases its slot when dropped:
//!
//! * SPSC: the consumer reads ahead of `head` (positions `head..read` are held); a release out of
//!   order is remembered, and `head` advances over every contiguous released position, so the
//!   producer still sees in-order releases. The consumer's peer entry records `read` in
//!   `holding`, so a successor that takes over a dead lease consumer skips every item it held.
//! * MPMC: each held slot uses one peer entry of this process (the consumer's own, then extra
//!   ones registered on demand and kept until the `LeaseConsumer` is gone), so that dead-peer
//!   recovery returns every slot a dead process held, as for one slot per consumer.
//!
//! A consumer that holds every slot of the ring could never receive again: `recv_lease` then
//! fails with [`Error::TooManyLeases`] instead of waiting forever.
//!
//! [`LeaseProducer`] wraps a [`Producer`]; its [`WriteLease`] is a claimed slot that owns its
//! claim (one at a time per producer, as for `claim`), published with [`WriteLease::publish`] or
//! abandoned when dropped.
//!
//! Broadcast rings have no leases: a subscriber pins one frame at a time (the ring is sized
//! `slots >= max_subscribers + 2` for that), so a caller that cannot bound a frame's lifetime
//! copies frames out with [`crate::Subscriber::recv_into`].

mod read;
#[cfg(test)]
mod tests;
mod write;

use std::sync::{Mutex, MutexGuard};

pub use read::{LeaseConsumer, ReadLease};
pub use write::{LeaseProducer, WriteLease};
#[cfg(feature = "async")]
pub use {read::LeaseRecv, write::LeaseClaim};

/// Locks `m`, ignoring poisoning: the state is only changed by short steps that cannot panic
/// half-way (a poisoned lock would otherwise leak every slot a lease still holds).
fn lock<S>(m: &Mutex<S>) -> MutexGuard<'_, S> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

//! Queue rings (SPSC, MPMC): each item to exactly one consumer.

pub(crate) mod consumer;
pub(crate) mod lease;
pub(crate) mod producer;

//! Broadcast rings: one writer, any number of subscribers.

pub(crate) mod subscriber;
pub(crate) mod writer;

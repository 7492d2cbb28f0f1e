//! What the typed handles of every kind share: attaching, the slot borrows, the publishers.

pub(crate) mod accessors;
pub(crate) mod attach;
pub(crate) mod constructors;
pub(crate) mod publisher;
pub(crate) mod slot;

#[cfg(test)]
mod tests;

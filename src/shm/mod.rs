//! The segment in the operating system: the system calls, the mapping, the name's life.

pub(crate) mod existing;
pub(crate) mod mapping;
pub(crate) mod peers;
#[cfg(feature = "async")]
pub(crate) mod reactor;
pub(crate) mod segment;
pub(crate) mod sys;
pub(crate) mod wait;
#[cfg(feature = "async")]
pub(crate) mod wait_async;

#[cfg(all(test, not(miri)))]
mod creator_tests;
#[cfg(all(test, not(miri)))]
mod takeover_tests;

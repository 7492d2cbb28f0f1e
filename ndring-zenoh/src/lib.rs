//! Bridge ndring rings across machines over [Zenoh](https://zenoh.io): a ring on one host, a
//! ring on another.
//!
//! [`bridge_out`] reads a ring and publishes each frame on a Zenoh key expression;
//! [`bridge_in`] subscribes to the key and fills a ring on the receiving host. The command
//! `ndring-bridge out NAME KEY` / `ndring-bridge in KEY NAME` runs either end.
//!
//! Each sample carries the stream's description (element type, shape, ring kind, slots,
//! metadata room) in its encoding's schema, and the frame's sequence number, timestamp, sending
//! bridge's tag, checksum, acknowledgement state and user metadata in its attachment (see
//! [`FrameDesc`], [`FrameHeader`]). A queue ring's frames are acknowledged end to end
//! ([`Ack`]): a frame leaves the source ring only once the receiving bridge has written it.

#![warn(missing_docs)]

pub mod checksum;
mod error;
mod inbound;
mod meta;
mod out;
mod payload;
mod resume;
mod sequencer;
mod session;
mod wire;

pub use error::BridgeError;
pub use inbound::{InOptions, InStats, bridge_in};
pub use out::{OutOptions, OutStats, bridge_out};
pub use session::{Mode, SessionOptions};
pub use wire::{ATTACHMENT_HEADER, Ack, EndMark, EndReason, FrameDesc, FrameHeader, ack_key};

//! Bridge ndring rings across machines over [Zenoh](https://zenoh.io): a ring on one host, a
//! ring on another.
//!
//! [`bridge_out`] reads a ring and publishes each frame on a Zenoh key expression;
//! [`bridge_in`] subscribes to the key and fills a ring on the receiving host. The command
//! `ndring-bridge out NAME KEY` / `ndring-bridge in KEY NAME` runs either end.
//!
//! Each sample carries the stream's description (element type, shape, ring kind, slots,
//! metadata room) in its encoding's schema, and the frame's sequence number, timestamp, sending
//! bridge's tag and user metadata in its attachment (see [`FrameDesc`], [`FrameHeader`]).

#![warn(missing_docs)]

mod error;
mod inbound;
mod meta;
mod out;
mod payload;
mod sequencer;
mod session;
mod wire;

pub use error::BridgeError;
pub use inbound::{InOptions, InStats, bridge_in};
pub use out::{OutOptions, OutStats, bridge_out};
pub use session::{Mode, SessionOptions};
pub use wire::{ATTACHMENT_HEADER, FrameDesc, FrameHeader};

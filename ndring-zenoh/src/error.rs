//! The bridge's error type.

use ndring::RingKind;

/// What can stop a bridge, each case saying what was expected and what was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// The ring failed (open, create, receive, publish).
    #[error("ring {ring:?}: {source}")]
    Ring {
        /// The ring's name.
        ring: String,
        /// The ring's error.
        #[source]
        source: ndring::Error,
    },
    /// Zenoh failed (open the session, declare, publish).
    #[error("zenoh: {0}")]
    Zenoh(String),
    /// The ring on the receiving host exists with another description than the stream's.
    #[error(
        "ring {ring:?} does not fit the stream on {key:?}: the stream carries {expected}, the ring holds {found}"
    )]
    Mismatch {
        /// The ring's name.
        ring: String,
        /// The key expression of the stream.
        key: String,
        /// What the stream carries.
        expected: String,
        /// What the existing ring holds.
        found: String,
    },
    /// A sample on the key is not an ndring frame (no or bad description, wrong payload size).
    #[error("sample on {key:?} is not an ndring frame: {reason}")]
    BadSample {
        /// The key expression of the sample.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A ring kind or element type this bridge cannot carry.
    #[error("unsupported ring: {0}")]
    Unsupported(String),
}

impl BridgeError {
    pub(crate) fn ring(ring: &str) -> impl FnOnce(ndring::Error) -> BridgeError + '_ {
        move |source| BridgeError::Ring {
            ring: ring.to_string(),
            source,
        }
    }

    pub(crate) fn zenoh(e: impl std::fmt::Display) -> BridgeError {
        BridgeError::Zenoh(e.to_string())
    }

    pub(crate) fn mismatch(
        ring: &str,
        key: &str,
        expected: impl std::fmt::Display,
        found: impl std::fmt::Display,
    ) -> BridgeError {
        BridgeError::Mismatch {
            ring: ring.to_string(),
            key: key.to_string(),
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }
}

pub(crate) fn kind_name(kind: RingKind) -> &'static str {
    match kind {
        RingKind::Spsc => "spsc",
        RingKind::Mpmc => "mpmc",
        RingKind::Broadcast => "broadcast",
        RingKind::Array => "array",
        RingKind::Rpc => "rpc",
    }
}

//! The one place that names the atomics: `std` normally, `loom` under `cfg(loom)`, so that the
//! protocol code in `protocol/` is the same code that loom model-checks in `loom-tests/`.

#[cfg(loom)]
pub use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
#[cfg(not(loom))]
pub use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

/// A busy-wait hint. Under loom it yields, so that spinning models terminate.
#[inline]
pub fn spin_loop() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}

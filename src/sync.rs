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

/// The notifier's half of an asymmetric barrier (see `protocol`): only a compiler barrier, the
/// sleeper's heavy barrier (`membarrier`) supplies the CPU fence. Under loom both halves are
/// `fence(SeqCst)`, which is the guarantee `membarrier` gives.
#[inline]
pub fn light_barrier() {
    #[cfg(loom)]
    fence(Ordering::SeqCst);
    #[cfg(not(loom))]
    std::sync::atomic::compiler_fence(Ordering::SeqCst);
}

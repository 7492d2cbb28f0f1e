//! The `ndring` Python package's native part: numpy arrays over ndring's shared-memory rings.
//!
//! Everything runs through the Rust library's own handles (no second protocol): queue rings
//! through `LeaseConsumer` / `LeaseProducer`, whose owned leases become the numpy arrays' base
//! objects, and broadcast rings through `BroadcastWriter` / `Subscriber` (frames copied out).
//! See `python/ndring/__init__.pyi` for the documented Python API.

mod errors;
mod handles;
mod leases;
mod pid;
mod probe;

use pyo3::prelude::*;

/// The native module, re-exported by `ndring/__init__.py`.
#[pymodule]
fn _ndring(m: &Bound<'_, PyModule>) -> PyResult<()> {
    pid::init();
    m.add_class::<handles::Producer>()?;
    m.add_class::<handles::Consumer>()?;
    m.add_class::<handles::BroadcastWriter>()?;
    m.add_class::<handles::Subscriber>()?;
    m.add_class::<leases::Lease>()?;
    m.add_class::<leases::Claim>()?;
    m.add_function(wrap_pyfunction!(handles::remove, m)?)?;
    m.add_function(wrap_pyfunction!(handles::now_ns, m)?)?;
    m.add_function(wrap_pyfunction!(probe::_line_round_trip_ns, m)?)?;
    Ok(())
}

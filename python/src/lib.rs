//! The `ndring` Python package's native part: numpy arrays over ndring's shared-memory rings.
//!
//! Everything runs through the Rust library's own handles (no second protocol): queue rings
//! through `LeaseConsumer` / `LeaseProducer`, whose owned leases become the numpy arrays' base
//! objects, and broadcast rings through `BroadcastWriter` / `Subscriber` (frames copied out).
//! See `python/ndring/__init__.pyi` for the documented Python API.

mod aio;
mod args;
mod element;
mod errors;
mod exceptions;
mod fork;
mod frame;
mod handles;
mod immutable;
mod lease_object;
mod leases;
mod pid;
mod probe;
mod rpc;
mod scan;
mod shared;
mod views;

use pyo3::exceptions::PyImportError;
use pyo3::prelude::*;

/// Refuses to load where the GIL is off (a free-threaded interpreter run with `PYTHON_GIL=0`):
/// the handle classes rely on it to order calls.
fn require_gil(py: Python<'_>) -> PyResult<()> {
    let sys = py.import("sys")?;
    if let Ok(enabled) = sys.getattr("_is_gil_enabled") {
        if !enabled.call0()?.is_truthy()? {
            return Err(PyImportError::new_err(
                "ndring needs the GIL: run this free-threaded interpreter with PYTHON_GIL=1",
            ));
        }
    }
    Ok(())
}

/// The native module, re-exported by `ndring/__init__.py`. It needs the GIL (`gil_used`: a
/// free-threaded interpreter turns it on at import), which orders every call into a handle
/// (see `handles::handle`).
#[pymodule(gil_used = true)]
fn _ndring(m: &Bound<'_, PyModule>) -> PyResult<()> {
    require_gil(m.py())?;
    pid::init();
    m.add_class::<aio::Notifier>()?;
    m.add_class::<handles::Producer>()?;
    m.add_class::<handles::Consumer>()?;
    m.add_class::<handles::BroadcastWriter>()?;
    m.add_class::<handles::Subscriber>()?;
    m.add("Lease", lease_object::lease_type(m.py())?)?;
    m.add_class::<leases::Claim>()?;
    m.add_class::<shared::SharedArray>()?;
    m.add_class::<shared::ArrayBlock>()?;
    m.add_class::<rpc::Server>()?;
    m.add_class::<rpc::Request>()?;
    m.add_class::<rpc::ReplyBlock>()?;
    m.add_class::<rpc::Client>()?;
    m.add_class::<rpc::Ticket>()?;
    m.add_function(wrap_pyfunction!(handles::remove, m)?)?;
    m.add_function(wrap_pyfunction!(handles::now_ns, m)?)?;
    m.add_function(wrap_pyfunction!(scan::_scan, m)?)?;
    m.add_function(wrap_pyfunction!(element::_dtype_names, m)?)?;
    m.add_function(wrap_pyfunction!(scan::_remove_unused, m)?)?;
    m.add_function(wrap_pyfunction!(probe::_line_round_trip_ns, m)?)?;
    // Complete now: immutable from here on, like `Lease` (see `immutable`).
    let py = m.py();
    for ty in [
        py.get_type::<aio::Notifier>(),
        py.get_type::<handles::Producer>(),
        py.get_type::<handles::Consumer>(),
        py.get_type::<handles::BroadcastWriter>(),
        py.get_type::<handles::Subscriber>(),
        py.get_type::<leases::Claim>(),
        py.get_type::<leases::ClaimedSlot>(),
        py.get_type::<shared::SharedArray>(),
        py.get_type::<shared::ArrayBlock>(),
        py.get_type::<shared::HeldLock>(),
        py.get_type::<shared::ArrayMapping>(),
        py.get_type::<rpc::Server>(),
        py.get_type::<rpc::Request>(),
        py.get_type::<rpc::ReplyBlock>(),
        py.get_type::<rpc::ServedRequest>(),
        py.get_type::<rpc::Client>(),
        py.get_type::<rpc::Ticket>(),
        py.get_type::<rpc::CallReply>(),
    ] {
        immutable::make_immutable(py, &ty)?;
    }
    Ok(())
}

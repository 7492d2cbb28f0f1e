//! `ndring.list()`'s source: every ring in `/dev/shm` as `ndring ls --json` shows it, through
//! the library's read-only inspection (`ndring::inspect`), as dicts that `ndring/__init__.py`
//! turns into `ndring.RingInfo` objects.

use ndring::RingKind;
use ndring::inspect::{Inspector, Probe, RingState};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::errors::IntoPy;

fn kind(k: RingKind) -> &'static str {
    match k {
        RingKind::Spsc => "spsc",
        RingKind::Mpmc => "mpmc",
        RingKind::Broadcast => "broadcast",
        RingKind::Array => "array",
        RingKind::Rpc => "rpc",
    }
}

/// One dict per ndring segment of `/dev/shm`, sorted by name: the fields of `ndring ls --json`
/// (`dtype` a numpy dtype, `shape` a tuple; those of a ring never made ready are None).
/// Other programs' objects, and segments of another format version, are left out.
#[pyfunction]
pub fn _scan(py: Python<'_>) -> PyResult<Vec<Bound<'_, PyDict>>> {
    let scan = py.detach(Inspector::scan).py(py)?;
    scan.rings.iter().map(|p| row(py, p)).collect()
}

fn row<'py>(py: Python<'py>, p: &Probe) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("name", p.name())?;
    d.set_item("state", p.state().to_string())?;
    match p {
        Probe::Ring(r) => {
            let c = r.counters();
            let peers = r.peers();
            d.set_item("kind", kind(r.kind()))?;
            d.set_item("dtype", crate::handles::listed_dtype(py, r.dtype())?)?;
            d.set_item("shape", PyTuple::new(py, r.shape())?)?;
            d.set_item("slots", r.slot_count())?;
            d.set_item("size", r.size())?;
            d.set_item("creator_pid", r.creator_pid())?;
            d.set_item("creator_alive", r.creator_alive())?;
            d.set_item("peers", peers.len())?;
            d.set_item("peers_alive", peers.iter().filter(|p| p.alive).count())?;
            // The live peers' program names, each once (as `ndring ls` shows them).
            let mut programs: Vec<&str> = Vec::new();
            for name in peers.iter().filter_map(|p| p.program.as_deref()) {
                if !programs.contains(&name) {
                    programs.push(name);
                }
            }
            d.set_item("programs", programs)?;
            d.set_item("published", c.published)?;
            d.set_item("closed", c.closed)?;
        }
        Probe::Unfinished(u) => {
            debug_assert_eq!(p.state(), RingState::Unfinished);
            for key in ["kind", "dtype", "shape", "slots"] {
                d.set_item(key, py.None())?;
            }
            d.set_item("size", u.size)?;
            d.set_item("creator_pid", (u.creator_pid != 0).then_some(u.creator_pid))?;
            d.set_item("creator_alive", u.creator_alive)?;
            for key in ["peers", "peers_alive", "programs", "published", "closed"] {
                d.set_item(key, py.None())?;
            }
        }
    }
    Ok(d)
}

/// `python -m ndring rm NAME`: removes the ready ring `name` unless a live process is attached,
/// deciding under the ring's lock as `ndring rm` does (`Inspector::remove_unless_used`), so that
/// nothing attaches between the check and the unlink. Returns `("removed", [])`,
/// `("in use", [(pid, role), ...])` or `("replaced", [])` (another ring took the name meanwhile).
#[pyfunction]
pub fn _remove_unused(
    py: Python<'_>,
    #[pyo3(from_py_with = crate::args::name)] name: String,
) -> PyResult<(&'static str, Vec<(u32, String)>)> {
    use ndring::inspect::Removal;
    let removal = py
        .detach(|| Inspector::open(&name)?.remove_unless_used())
        .py(py)?;
    Ok(match removal {
        Removal::Removed => ("removed", vec![]),
        Removal::InUse(peers) => (
            "in use",
            peers.iter().map(|p| (p.pid, p.role.to_string())).collect(),
        ),
        Removal::Replaced => ("replaced", vec![]),
    })
}

//! `ndring.Client`, its tickets (`ndring.Ticket`) and the replies it receives.
//!
//! A reply is a read-only numpy array over the call's slot whose base (`CallReply`) owns the
//! Rust reply guard: the call is freed when the array and every view of it are gone.

use std::sync::{Arc, Mutex};

use ndring::OpenOptions;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::{RsClient, Shared, Types, conform, data_of, forget_in_child};
use crate::args;
use crate::errors::{IntoPy, raise};
use crate::handles::{PY_SPIN, open_segment};
use crate::shared::numpy_over;

type RsPending = ndring::Pending<'static, u8, ndarray::Ix1, u8, ndarray::Ix1>;
type RsReply = ndring::Reply<'static, u8, ndarray::Ix1, u8, ndarray::Ix1>;

/// A call in flight and the client it borrows. Fields drop in order: the call (dropped, it is
/// given up, through its reference to the client) before the client's `Arc`.
struct InFlight {
    pending: RsPending,
    client: Arc<RsClient>,
}

/// A reply and the client it borrows (the same order).
struct Replied {
    _reply: RsReply,
    _client: Arc<RsClient>,
}

/// The base object of a reply array: owns the call until the array and its views are gone.
#[pyclass(module = "ndring", frozen)]
pub struct CallReply {
    replied: Mutex<Option<Replied>>,
    pid: u32,
}

impl Drop for CallReply {
    fn drop(&mut self) {
        let r = self
            .replied
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if r.is_some() {
            crate::fork::view_gone();
        }
        forget_in_child(self.pid, r);
    }
}

/// Calls the server(s) of a request/reply segment.
#[pyclass(module = "ndring", frozen)]
pub struct Client {
    inner: Shared<RsClient>,
    types: Arc<Types>,
    name: String,
}

impl Client {
    /// Copies `request` into a call and sends it.
    fn start(
        &self,
        py: Python<'_>,
        request: &Bound<'_, PyAny>,
        meta: Option<Vec<u8>>,
    ) -> PyResult<InFlight> {
        let client = self.inner.get(py, "Client")?;
        let a = conform(py, request, &self.types.request, "request", false)?;
        let src = data_of(&a)?;
        let c = client.clone();
        let mut call = crate::handles::wait(py, None, move |slice| {
            c.request_timeout(slice).map(|call| {
                // SAFETY: the call borrows the client inside the `Arc` (a stable address);
                // `InFlight` keeps a clone of it beside the call and drops the call first.
                unsafe {
                    std::mem::transmute::<
                        ndring::Call<'_, u8, _, u8, _>,
                        ndring::Call<'static, u8, ndarray::Ix1, u8, ndarray::Ix1>,
                    >(call)
                }
            })
        })?;
        let n = call.len();
        // SAFETY: `dst` is the request of our FILLING call, `n` bytes, nobody else's until sent;
        // `src` is `a`'s C-contiguous data of the request's shape and dtype (`conform`), `n`
        // bytes, alive while `a` is. A raw copy: no Rust reference over `a`'s memory, which
        // could be shared with another process.
        unsafe { std::ptr::copy_nonoverlapping(src as *const u8, call.as_mut_ptr(), n) };
        drop(a);
        if let Some(m) = meta {
            call.set_meta(&m).py(py)?;
        }
        Ok(InFlight {
            pending: call.send(),
            client,
        })
    }
}

/// Waits for `f`'s answer, in slices that let Ctrl-C through; on success, its reply array.
fn finish<'py>(
    py: Python<'py>,
    f: InFlight,
    timeout: Option<f64>,
    types: &Types,
) -> Result<Bound<'py, PyAny>, (PyErr, Option<InFlight>)> {
    let waited = {
        let p = &f.pending;
        crate::handles::wait(py, timeout, |slice| p.wait(Some(slice)))
    };
    if let Err(e) = waited {
        return Err((e, Some(f)));
    }
    let InFlight { pending, client } = f;
    // Replied: `receive` returns at once.
    let reply = pending.receive().py(py).map_err(|e| (e, None))?;
    let ptr = reply.as_ptr() as usize;
    crate::fork::view_made();
    let holder = Bound::new(
        py,
        CallReply {
            replied: Mutex::new(Some(Replied {
                _reply: reply,
                _client: client,
            })),
            pid: crate::pid::current(),
        },
    )
    .map_err(|e| (e, None))?;
    let (t, shape) = &types.reply;
    let descr = crate::element::descr(py, *t).map_err(|e| (e, None))?;
    // SAFETY: `ptr` is the reply of our REPLIED call in the segment's mapping, which the
    // client `holder` keeps attached; the server writes no more to it, and the call stays ours
    // until `holder` (the array's base, read-only with a base without the buffer protocol)
    // drops the reply guard.
    unsafe { numpy_over(py, descr, ptr, shape, false, holder.into_any()) }.map_err(|e| (e, None))
}

#[pymethods]
impl Client {
    /// Attaches to the request/reply segment `name`. `timeout`: seconds to wait for it to be
    /// created (None: fail at once with `ndring.NotFound`).
    #[staticmethod]
    #[pyo3(signature = (name, timeout=None, spin=None))]
    fn open(
        py: Python<'_>,
        #[pyo3(from_py_with = args::name)] name: String,
        #[pyo3(from_py_with = args::timeout)] timeout: Option<f64>,
        #[pyo3(from_py_with = args::spin)] spin: Option<u32>,
    ) -> PyResult<Self> {
        drop(open_segment(py, &name, timeout)?);
        let options = OpenOptions::default().spin(spin.unwrap_or(PY_SPIN));
        let c = py.detach(|| RsClient::open_bytes(&name, &options)).py(py)?;
        Ok(Client {
            name: c.segment().name().to_string(),
            types: Arc::new(Types::of(c.types())),
            inner: Shared::new(c),
        })
    }

    /// The segment's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The requests' `(shape, dtype)`.
    #[getter]
    fn request<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        super::server::spec_tuple(py, &self.types.request)
    }

    /// The replies' `(shape, dtype)`.
    #[getter]
    fn reply<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        super::server::spec_tuple(py, &self.types.reply)
    }

    /// Sends `request` (copied in) and waits at most `timeout` seconds for its reply, a
    /// read-only array over the call's slot (freed when it and its views are gone). On
    /// `ndring.Timeout` the call is given up: its reply, should it come, is discarded.
    /// `meta`: bytes the server reads as `req.meta` (at most the segment's `meta_size`).
    #[pyo3(signature = (request, timeout=None, meta=None))]
    fn call<'py>(
        &self,
        py: Python<'py>,
        request: &Bound<'py, PyAny>,
        #[pyo3(from_py_with = args::timeout)] timeout: Option<f64>,
        #[pyo3(from_py_with = args::meta)] meta: Option<Vec<u8>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let f = self.start(py, request, meta)?;
        finish(py, f, timeout, &self.types).map_err(|(e, f)| {
            drop(f); // given up
            e
        })
    }

    /// Sends `request` (copied in) without waiting: a ticket whose `result()` is the reply
    /// (several calls in flight). A ticket dropped unanswered gives its call up.
    #[pyo3(signature = (request, meta=None))]
    fn send(
        &self,
        py: Python<'_>,
        request: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = args::meta)] meta: Option<Vec<u8>>,
    ) -> PyResult<Ticket> {
        let f = self.start(py, request, meta)?;
        Ok(Ticket {
            call: Mutex::new(Some(f)),
            types: self.types.clone(),
            pid: crate::pid::current(),
        })
    }

    /// Detaches (replies still alive stay valid).
    fn close(&self) {
        self.inner.close();
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, PyTuple>) -> bool {
        self.close();
        false
    }

    fn __repr__(&self) -> String {
        format!(
            "ndring.Client(name={:?}, {})",
            self.name,
            self.types.describe()
        )
    }
}

/// A call sent by `Client.send`: `result(timeout)` waits for its reply.
#[pyclass(module = "ndring", frozen)]
pub struct Ticket {
    call: Mutex<Option<InFlight>>,
    types: Arc<Types>,
    pid: u32,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let c = self.call.lock().unwrap_or_else(|e| e.into_inner()).take();
        forget_in_child(self.pid, c);
    }
}

#[pymethods]
impl Ticket {
    /// Waits at most `timeout` seconds (None: no limit) for the reply. On `ndring.Timeout` the
    /// call is kept (call again); `ndring.RequestFailed` if its server dropped it unanswered or
    /// died serving it; `ndring.Disconnected` when no server is left.
    #[pyo3(signature = (timeout=None))]
    fn result<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = args::timeout)] timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if crate::pid::current() != self.pid {
            return Err(raise(
                py,
                "Error",
                "this ndring.Ticket belongs to the process that sent it".into(),
            ));
        }
        let f = self.call.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(f) = f else {
            return Err(raise(
                py,
                "Error",
                "this ticket's reply was already received (or is being waited for)".into(),
            ));
        };
        finish(py, f, timeout, &self.types).map_err(|(e, f)| {
            let timed_out = py
                .import("ndring")
                .and_then(|m| m.getattr("Timeout"))
                .is_ok_and(|t| e.is_instance(py, &t));
            if timed_out {
                *self.call.lock().unwrap_or_else(|e| e.into_inner()) = f;
            }
            e
        })
    }

    /// Whether the reply is still to be received.
    #[getter]
    fn pending(&self) -> bool {
        self.call
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Gives the call up: its reply, should one come, is discarded.
    fn cancel(&self) {
        let c = self.call.lock().unwrap_or_else(|e| e.into_inner()).take();
        forget_in_child(self.pid, c);
    }
}

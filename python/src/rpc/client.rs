//! `ndring.Client`, its tickets (`ndring.Ticket`) and the replies it receives.
//!
//! A reply is a read-only numpy array over the call's slot whose base (`CallReply`) owns the
//! Rust reply guard: the call is freed when the array and every view of it are gone.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use ndring::OpenOptions;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::{RsClient, Shared, Types, conform, data_of, forget_in_child};
use crate::args;
use crate::errors::{IntoPy, raise};
use crate::handles::{PY_SPIN, open_segment};
use crate::views::numpy_over;

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
        // SAFETY: the call borrows the client in the `Arc` (a stable address); `InFlight`
        // keeps a clone of it beside the call and drops the call first.
        let unbound = |call: ndring::Call<'_, u8, ndarray::Ix1, u8, ndarray::Ix1>| unsafe {
            std::mem::transmute::<
                ndring::Call<'_, u8, _, u8, _>,
                ndring::Call<'static, u8, ndarray::Ix1, u8, ndarray::Ix1>,
            >(call)
        };
        let first = client.try_request().map(unbound);
        let c = client.clone();
        let mut call = crate::handles::now_or_wait(py, None, first, move |slice| {
            c.request_timeout(slice).map(unbound)
        })?;
        let n = call.len();
        // A raw copy: no Rust reference over `a`'s memory, which could be shared with another
        // process. SAFETY: `dst` is our FILLING call's request, `n` bytes, nobody else's until
        // sent; `src` is `a`'s C-contiguous data (`conform`), `n` bytes, alive while `a` is.
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
/// `look_first`: a call sent a while ago (a ticket's `result`) takes an answer already in with
/// the GIL kept; one just sent (`call`) cannot have one yet and goes straight to the wait.
fn finish<'py>(
    py: Python<'py>,
    f: InFlight,
    timeout: Option<f64>,
    types: &Types,
    look_first: bool,
) -> Result<Bound<'py, PyAny>, (PyErr, Option<InFlight>)> {
    let waited = match look_first.then(|| f.pending.try_wait()) {
        Some(Ok(true)) => Ok(()),
        Some(Err(e)) => Err(crate::errors::to_py(py, e)),
        Some(Ok(false)) | None => {
            let p = &f.pending;
            crate::handles::wait(py, timeout, |slice| p.wait(Some(slice)))
        }
    };
    if let Err(e) = waited {
        return Err((e, Some(f)));
    }
    reply_array(py, f, types).map_err(|e| (e, None))
}

/// The reply array of an answered call (its wait returned `Ok`).
fn reply_array<'py>(py: Python<'py>, f: InFlight, types: &Types) -> PyResult<Bound<'py, PyAny>> {
    let InFlight { pending, client } = f;
    // Replied: `receive` returns at once.
    let reply = pending.receive().py(py)?;
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
    )?;
    let (t, shape) = &types.reply;
    let descr = crate::element::descr(py, *t)?;
    // `holder` is the array's base (read-only, a base without the buffer protocol). SAFETY:
    // `ptr` is our REPLIED call's reply in the mapping `holder` keeps attached; the server writes
    // no more to it, and the call stays ours until `holder` drops the reply guard.
    unsafe { numpy_over(py, descr, ptr, shape, false, holder.into_any()) }
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
        let options = OpenOptions::default().spin(spin.unwrap_or(PY_SPIN));
        // Attached to the mapping opened (and waited for) here, not to a second one; again
        // where the name was removed or replaced before the registration.
        let c = loop {
            let seg = open_segment(py, &name, timeout)?;
            match py.detach(|| RsClient::from_segment_bytes(seg, &options)) {
                Err(ndring::Error::NotFound { .. }) => continue,
                r => break r.py(py)?,
            }
        };
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
        finish(py, f, timeout, &self.types, false).map_err(|(e, f)| {
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
            awaiting: Mutex::new(None),
            types: self.types.clone(),
            pid: crate::pid::current(),
        })
    }

    /// `await cli.acall(request)`: `call` in a coroutine, the event loop free while it waits
    /// (`ndring._aio`). Cancelled (or timed out, or interrupted), the call is given up: a late
    /// reply is discarded. It waits for a free call as `call` does, which only blocks while
    /// every call of the segment is in flight.
    #[pyo3(signature = (request, timeout=None, meta=None))]
    fn acall<'py>(
        slf: &Bound<'py, Self>,
        request: &Bound<'py, PyAny>,
        #[pyo3(from_py_with = args::timeout)] timeout: Option<f64>,
        meta: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        crate::aio::coroutine(slf.py(), "call", (slf, request, timeout, meta))
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
    /// The `aresult` call whose wait is pending: its token, and the waker it registered (woken
    /// by `cancel`). Locked before `call` where both are.
    awaiting: Mutex<Option<(u64, Waker)>>,
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
        if self.awaited() {
            return Err(awaited(py));
        }
        let f = self.call.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(f) = f else {
            return Err(gone(py));
        };
        finish(py, f, timeout, &self.types, true).map_err(|(e, f)| {
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

    /// Gives the call up: its reply, should one come, is discarded (a task awaiting
    /// `aresult` is woken, and raises).
    fn cancel(&self) {
        let a = self
            .awaiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let c = self.call.lock().unwrap_or_else(|e| e.into_inner()).take();
        forget_in_child(self.pid, c);
        if let Some((_, waker)) = a {
            waker.wake();
        }
    }

    /// `await ticket.aresult(timeout)`: `result` in a coroutine (`ndring._aio`). On
    /// `ndring.Timeout`, and when the awaiting task is cancelled, the call is kept.
    #[pyo3(signature = (timeout=None))]
    fn aresult<'py>(
        slf: &Bound<'py, Self>,
        #[pyo3(from_py_with = args::timeout)] timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        crate::aio::coroutine(slf.py(), "result", (slf, timeout))
    }

    /// One poll of `aresult` / `Client.acall` (`ndring._aio`): the reply array, or None while
    /// pending. An error ends the call, as `result` does (but `ndring.Timeout`, which `_aio`
    /// raises itself).
    fn _poll_reply<'py>(
        &self,
        py: Python<'py>,
        notifier: &Bound<'py, crate::aio::Notifier>,
        token: u64,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        if crate::pid::current() != self.pid {
            return Err(raise(
                py,
                "Error",
                "this ndring.Ticket belongs to the process that sent it".into(),
            ));
        }
        let mut awaiting = self.awaiting.lock().unwrap_or_else(|e| e.into_inner());
        if awaiting.as_ref().is_some_and(|(t, _)| *t != token) {
            return Err(awaited(py));
        }
        let mut call = self.call.lock().unwrap_or_else(|e| e.into_inner());
        let Some(f) = call.as_mut() else {
            *awaiting = None;
            return Err(gone(py));
        };
        let waker = crate::aio::Notifier::waker(notifier.get(), token);
        match f.pending.poll_wait(&mut Context::from_waker(&waker)) {
            Poll::Pending => {
                *awaiting = Some((token, waker));
                Ok(None)
            }
            Poll::Ready(r) => {
                *awaiting = None;
                let f = call.take().expect("checked above");
                drop((call, awaiting));
                match r {
                    Ok(()) => reply_array(py, f, &self.types).map(Some),
                    // Failed or disconnected: the call is over (dropped here, as `result` does).
                    Err(e) => Err(crate::errors::to_py(py, e)),
                }
            }
        }
    }

    /// Ends the pending wait of the `aresult` call `token`, if any (`ndring._aio`): no waiter
    /// stays counted; the call is kept.
    fn _forget_poll(&self, token: u64) {
        let mut awaiting = self.awaiting.lock().unwrap_or_else(|e| e.into_inner());
        if awaiting.as_ref().is_none_or(|(t, _)| *t != token) {
            return;
        }
        *awaiting = None;
        if let Some(f) = self.call.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            f.pending.forget_poll();
        }
    }
}

impl Ticket {
    fn awaited(&self) -> bool {
        self.awaiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }
}

fn awaited(py: Python<'_>) -> PyErr {
    raise(
        py,
        "Error",
        "an asyncio task awaits this ticket's reply (aresult)".into(),
    )
}

fn gone(py: Python<'_>) -> PyErr {
    raise(
        py,
        "Error",
        "this ticket's reply was already received, or its call was cancelled".into(),
    )
}

//! `ndring.Server` and the requests it hands out (`ndring.Request`).
//!
//! A request's array is a read-only view of an array whose base (`ServedRequest`) owns the Rust
//! request, as a claim's array is (`leases::Claim`): answering empties that view and cuts it
//! from its base, so nothing reaches the slot once its client may reuse it. If any other view of
//! the request survives (a slice, a memoryview, a name still bound to `req.array`), the answer is
//! refused with `BufferError` and nothing is sent. A request whose objects are all gone
//! unanswered fails its caller (`ndring.RequestFailed` there).

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use ndring::{Config, DType, OpenOptions};
use pyo3::exceptions::PyBufferError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use super::{RsServer, Shared, Types, conform, data_of, forget_in_child};
use crate::args;
use crate::errors::{IntoPy, raise};
use crate::handles::{PY_SPIN, open_segment, parse_dtype};
use crate::views::numpy_over;
use crate::views::{give_dimension, make_read_only, revoke};

type RsRequest = ndring::Request<'static, u8, ndarray::Ix1, u8, ndarray::Ix1>;

/// A request and the server it borrows. Fields drop in order: the request (which answers or
/// fails through its reference to the server) before the server's `Arc`.
struct Served {
    req: RsRequest,
    _server: Arc<RsServer>,
}

/// The base object of a request's array (and of a reply block's array): owns the Rust request
/// until it is answered; dropped unanswered, it fails its caller.
#[pyclass(module = "ndring", frozen)]
pub struct ServedRequest {
    served: Mutex<Option<Served>>,
    pid: u32,
}

impl ServedRequest {
    fn take(&self) -> Option<Served> {
        let s = self.served.lock().unwrap_or_else(|e| e.into_inner()).take();
        if s.is_some() {
            crate::fork::view_gone();
        }
        s
    }

    /// The first byte of the reply, in this process's mapping.
    fn reply_ptr(&self) -> Option<usize> {
        let mut s = self.served.lock().unwrap_or_else(|e| e.into_inner());
        s.as_mut().map(|s| s.req.reply().as_mut_ptr() as usize)
    }
}

impl Drop for ServedRequest {
    fn drop(&mut self) {
        let s = self.take();
        forget_in_child(self.pid, s);
    }
}

/// Serves the requests of a request/reply segment.
#[pyclass(module = "ndring", frozen)]
pub struct Server {
    inner: Shared<RsServer>,
    /// The `arecv` call whose wait is pending: its token, and the waker it registered (woken
    /// by `close`).
    awaiting: Mutex<Option<(u64, Waker)>>,
    types: Arc<Types>,
    name: String,
}

fn parse_spec(py: Python<'_>, v: &Bound<'_, PyAny>, what: &str) -> PyResult<(DType, Vec<usize>)> {
    let pair = v
        .cast::<PyTuple>()
        .ok()
        .filter(|t| t.len() == 2)
        .ok_or_else(|| {
            crate::errors::invalid_type(
                py,
                format!(
                    "{what} must be a (shape, dtype) pair such as ((320, 320, 3), numpy.uint8)"
                ),
            )
        })?;
    let shape = args::shape(&pair.get_item(0)?)?;
    let t = parse_dtype(py, &pair.get_item(1)?)?;
    crate::element::descr(py, t)?;
    Ok((t, shape))
}

impl Server {
    fn wrap(s: RsServer) -> Self {
        let types = Types::of(s.types());
        Server {
            name: s.segment().name().to_string(),
            types: Arc::new(types),
            inner: Shared::new(s),
            awaiting: Mutex::new(None),
        }
    }

    fn take(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Request> {
        let srv = self.inner.get(py, "Server")?;
        // SAFETY: the request borrows the server in the `Arc` (a stable address); `Served`
        // keeps a clone of it beside the request and drops the request first.
        let unbound = |r: ndring::Request<'_, u8, ndarray::Ix1, u8, ndarray::Ix1>| unsafe {
            std::mem::transmute::<ndring::Request<'_, u8, _, u8, _>, RsRequest>(r)
        };
        let first = srv.try_recv().map(unbound);
        let s = srv.clone();
        let req = crate::handles::now_or_wait(py, timeout, first, move |slice| {
            s.recv_timeout(slice).map(unbound)
        })?;
        Request::new(py, req, srv, self.types.clone())
    }
}

#[pymethods]
impl Server {
    /// Creates the request/reply segment `name` and serves it: requests of `request` =
    /// `(shape, dtype)`, replies of `reply` = `(shape, dtype)`, up to `clients` clients with
    /// two calls in flight each (`slots`: calls in all).
    #[staticmethod]
    #[pyo3(signature = (name, request, reply, clients=8, slots=None, meta_size=None, replace_stale=false, spin=None))]
    #[allow(clippy::too_many_arguments)]
    fn create(
        py: Python<'_>,
        #[pyo3(from_py_with = args::name)] name: String,
        request: &Bound<'_, PyAny>,
        reply: &Bound<'_, PyAny>,
        clients: usize,
        slots: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = args::meta_size)] meta_size: Option<usize>,
        #[pyo3(from_py_with = args::replace_stale)] replace_stale: bool,
        #[pyo3(from_py_with = args::spin)] spin: Option<u32>,
    ) -> PyResult<Self> {
        let q = parse_spec(py, request, "request")?;
        let r = parse_spec(py, reply, "reply")?;
        if clients == 0 {
            return Err(crate::errors::invalid_argument(
                py,
                "clients must be at least 1".into(),
            ));
        }
        let mut config = Config::rpc()
            .clients(clients)
            .replace_stale(replace_stale)
            .spin(spin.unwrap_or(PY_SPIN));
        if let Some(s) = slots.filter(|s| !s.is_none()) {
            config = config.slots(args::slots(s)?);
        }
        if let Some(m) = meta_size {
            config = config.user_meta_size(m);
        }
        let s = py
            .detach(|| RsServer::create_bytes(&name, (q.0, &q.1), (r.0, &r.1), &config))
            .py(py)?;
        Ok(Server::wrap(s))
    }

    /// Serves the existing segment `name` too (several servers share its requests; a restarted
    /// server takes over). `timeout`: seconds to wait for it to be created (None: at once).
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
        let s = loop {
            let seg = open_segment(py, &name, timeout)?;
            match py.detach(|| RsServer::from_segment_bytes(seg, &options)) {
                Err(ndring::Error::NotFound { .. }) => continue,
                r => break r.py(py)?,
            }
        };
        Ok(Server::wrap(s))
    }

    /// The segment's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The requests' `(shape, dtype)`.
    #[getter]
    fn request<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        spec_tuple(py, &self.types.request)
    }

    /// The replies' `(shape, dtype)`.
    #[getter]
    fn reply<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        spec_tuple(py, &self.types.reply)
    }

    /// Takes the next request, waiting at most `timeout` seconds (None: no limit;
    /// `ndring.Timeout` then).
    #[pyo3(signature = (timeout=None))]
    fn recv(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = args::timeout)] timeout: Option<f64>,
    ) -> PyResult<Request> {
        self.take(py, timeout)
    }

    /// Takes a request if one is queued now, else None.
    fn try_recv(&self, py: Python<'_>) -> PyResult<Option<Request>> {
        match self.take(py, Some(0.0)) {
            Ok(r) => Ok(Some(r)),
            Err(e) if e.is_instance(py, &py.import("ndring")?.getattr("Timeout")?) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// `for req in srv:` the requests, one after another, until the server is closed.
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Request>> {
        if self
            .inner
            .handle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
        {
            return Ok(None);
        }
        self.take(py, None).map(Some)
    }

    /// Stops serving (requests still held stay answerable). Callers waiting get
    /// `ndring.Disconnected` once no server is left. A task awaiting `arecv` is woken (and
    /// raises; `async for` ends).
    fn close(&self, py: Python<'_>) {
        let a = self
            .awaiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some((_, waker)) = a {
            // The wait first: requests still held keep the Rust server alive after `close`.
            if let Ok(srv) = self.inner.get(py, "Server") {
                srv.forget_poll();
            }
            waker.wake();
        }
        self.inner.close();
    }

    /// `await srv.arecv(timeout)`: `recv` in a coroutine, the event loop free while it waits
    /// (`ndring._aio`). Cancelled (or timed out, or interrupted), it takes no request.
    #[pyo3(signature = (timeout=None))]
    fn arecv<'py>(
        slf: &Bound<'py, Self>,
        #[pyo3(from_py_with = args::timeout)] timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        crate::aio::coroutine(slf.py(), "recv", (slf, timeout))
    }

    /// `async for req in srv:` the requests (as `arecv()`), until the server is closed.
    fn __aiter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __anext__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        crate::aio::coroutine(slf.py(), "serve", (slf,))
    }

    /// How many handles sleep waiting for a request, and for a free call (tests).
    fn _sleepers(&self, py: Python<'_>) -> PyResult<(u32, u32)> {
        Ok(self.inner.get(py, "Server")?.segment().sleepers())
    }

    /// Whether `close` was called (`ndring._aio`: the end of `async for`).
    #[getter]
    fn _closed(&self) -> bool {
        self.inner
            .handle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }

    /// One poll of `arecv` (`ndring._aio`): the request, or None while pending.
    fn _poll_recv(
        &self,
        py: Python<'_>,
        notifier: &Bound<'_, crate::aio::Notifier>,
        token: u64,
    ) -> PyResult<Option<Request>> {
        let mut awaiting = self.awaiting.lock().unwrap_or_else(|e| e.into_inner());
        if awaiting.as_ref().is_some_and(|(t, _)| *t != token) {
            return Err(raise(
                py,
                "Error",
                "another asyncio task awaits this server (arecv): one at a time".into(),
            ));
        }
        let srv = match self.inner.get(py, "Server") {
            Ok(s) => s,
            Err(e) => {
                *awaiting = None;
                return Err(e);
            }
        };
        let s = srv.clone();
        let waker = crate::aio::Notifier::waker(notifier.get(), token);
        match s.poll_recv(&mut Context::from_waker(&waker)) {
            Poll::Pending => {
                *awaiting = Some((token, waker));
                Ok(None)
            }
            Poll::Ready(r) => {
                *awaiting = None;
                drop(awaiting);
                let req = r.py(py)?;
                // SAFETY: as in `Server::take`: the request borrows the server inside the
                // `Arc`; `Served` keeps `srv`, a clone of it, and drops the request first.
                let req = unsafe {
                    std::mem::transmute::<ndring::Request<'_, u8, _, u8, _>, RsRequest>(req)
                };
                Request::new(py, req, srv, self.types.clone()).map(Some)
            }
        }
    }

    /// Ends the pending wait of the `arecv` call `token`, if any (`ndring._aio`): no waiter
    /// stays counted, no request is taken.
    fn _forget_poll(&self, py: Python<'_>, token: u64) {
        let mut awaiting = self.awaiting.lock().unwrap_or_else(|e| e.into_inner());
        if awaiting.as_ref().is_none_or(|(t, _)| *t != token) {
            return;
        }
        *awaiting = None;
        if let Ok(srv) = self.inner.get(py, "Server") {
            srv.forget_poll();
        }
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self) -> String {
        format!(
            "ndring.Server(name={:?}, {})",
            self.name,
            self.types.describe()
        )
    }
}

pub(super) fn spec_tuple<'py>(
    py: Python<'py>,
    (t, shape): &(DType, Vec<usize>),
) -> PyResult<Bound<'py, PyTuple>> {
    let s = PyTuple::new(py, shape)?.into_any();
    let d = crate::element::descr(py, *t)?.into_any();
    PyTuple::new(py, [s, d])
}

/// A request taken by a server: `array` (read-only), `client`, `meta`; answer with `reply(x)`
/// or `with req.reply_array() as out:`.
#[pyclass(module = "ndring", unsendable)]
pub struct Request {
    holder: Py<ServedRequest>,
    /// The array over the request (base: `holder`) and the view handed out as `array`.
    base: Option<Py<PyAny>>,
    view: Option<Py<PyAny>>,
    types: Arc<Types>,
    client: u32,
    meta: Vec<u8>,
    /// A `reply_array()` block is open, or a view of its array outlived it: the reply memory
    /// may be written through it, so the request cannot be answered (it fails to its caller
    /// once everything is gone).
    blocked: bool,
}

impl Request {
    fn new(
        py: Python<'_>,
        req: RsRequest,
        server: Arc<RsServer>,
        types: Arc<Types>,
    ) -> PyResult<Self> {
        let (client, meta, ptr) = (req.client(), req.meta().to_vec(), req.as_ptr() as usize);
        crate::fork::view_made();
        let holder = Py::new(
            py,
            ServedRequest {
                served: Mutex::new(Some(Served {
                    req,
                    _server: server,
                })),
                pid: crate::pid::current(),
            },
        )?;
        let (t, shape) = &types.request;
        let descr = crate::element::descr(py, *t)?;
        // `holder` is the array's base; answering first cuts every array from it (`answer`).
        // SAFETY: `ptr` is the request in the mapping `holder` keeps attached; the call is ours
        // (SERVING) while `holder` owns it, and the client writes nothing to it until answered.
        let base = unsafe {
            numpy_over(
                py,
                descr,
                ptr,
                shape,
                false,
                holder.bind(py).clone().into_any(),
            )?
        };
        let view = crate::views::view_of(&base)?;
        Ok(Request {
            holder,
            base: Some(base.unbind()),
            view: Some(view.unbind()),
            types,
            client,
            meta,
            blocked: false,
        })
    }

    fn refuse_if_blocked(&self, py: Python<'_>) -> PyResult<()> {
        if self.blocked {
            return Err(raise(
                py,
                "Error",
                "a reply_array() block of this request is open, or a view of its array outlived \
                 it: the request cannot be answered otherwise (it fails to its caller once that \
                 array and its views are gone)"
                    .into(),
            ));
        }
        Ok(())
    }

    fn answered(py: Python<'_>) -> PyErr {
        raise(py, "Error", "this request was already answered".into())
    }

    /// Cuts the request's array from the slot; `BufferError` (nothing changed) if a view of it
    /// survives.
    fn cut(&mut self, py: Python<'_>) -> PyResult<()> {
        let (Some(base), Some(view)) = (self.base.take(), self.view.take()) else {
            return Err(Self::answered(py));
        };
        let (base, view) = (base.into_bound(py), view.into_bound(py));
        let reshaped = give_dimension(&view);
        // Expected: `base` here and as `view`'s base; `view` here only.
        // SAFETY: both are live objects we hold; the GIL is held.
        let (refs_base, refs_view) = unsafe {
            (
                pyo3::ffi::Py_REFCNT(base.as_ptr()),
                pyo3::ffi::Py_REFCNT(view.as_ptr()),
            )
        };
        if refs_base > 2 || refs_view > 1 || reshaped.is_err() {
            self.base = Some(base.unbind());
            self.view = Some(view.unbind());
            return Err(PyBufferError::new_err(
                "the request's array (req.array, a name bound to it, a slice, a view or a \
                 memoryview of it) is still alive: its slot goes back to the client with the \
                 answer, so delete them (or copy what must outlive the request) before replying; \
                 nothing was sent",
            ));
        }
        let emptied = revoke(&view, true);
        make_read_only(&base);
        debug_assert!(emptied);
        Ok(())
    }

    /// Sends the reply now in the slot.
    fn send(&mut self, py: Python<'_>) -> PyResult<bool> {
        self.cut(py)?;
        let served = self.holder.get().take().ok_or_else(|| Self::answered(py))?;
        let Served { req, _server } = served;
        Ok(req.send())
    }
}

#[pymethods]
impl Request {
    /// The request, read-only, valid until the request is answered.
    #[getter]
    fn array<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match &self.view {
            Some(v) => Ok(v.bind(py).clone()),
            None => Err(Self::answered(py)),
        }
    }

    /// The asking client's process id.
    #[getter]
    fn client(&self) -> u32 {
        self.client
    }

    /// The metadata the client sent with the request (bytes).
    #[getter]
    fn meta<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.meta)
    }

    /// Copies `reply` (an array of the reply's shape; same-kind dtypes are cast) in and hands it
    /// to the caller. Whether the caller had it: False when it had given up (timed out): the
    /// reply is then discarded.
    fn reply(&mut self, py: Python<'_>, reply: &Bound<'_, PyAny>) -> PyResult<bool> {
        if self.view.is_none() {
            return Err(Self::answered(py));
        }
        self.refuse_if_blocked(py)?;
        let a = conform(py, reply, &self.types.reply, "reply", true)?;
        let src = data_of(&a)?;
        let dst = self
            .holder
            .get()
            .reply_ptr()
            .ok_or_else(|| Self::answered(py))?;
        let n = crate::element::descr(py, self.types.reply.0)?.itemsize()
            * self.types.reply.1.iter().product::<usize>();
        // SAFETY: `dst` is the reply of our SERVING call (nobody else reads or writes it until
        // answered), `n` bytes long; `src` is `a`'s data, C-contiguous, `n` bytes (checked
        // shape and dtype), alive while `a` is; raw copy, no reference over either.
        unsafe { std::ptr::copy_nonoverlapping(src as *const u8, dst as *mut u8, n) };
        self.send(py)
    }

    /// `with req.reply_array() as out:` a writable array over the reply (holding whatever the
    /// slot last held: write it whole), sent at the end of the block unless it raised.
    fn reply_array(slf: Py<Self>) -> ReplyBlock {
        ReplyBlock {
            request: slf,
            base: None,
            view: None,
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "ndring.Request(client={}, {}{})",
            self.client,
            self.types.describe(),
            if self.view.is_none() {
                ", answered"
            } else {
                ""
            }
        )
    }
}

use numpy::PyArrayDescrMethods;

/// `with req.reply_array() as out:`.
#[pyclass(module = "ndring", unsendable)]
pub struct ReplyBlock {
    request: Py<Request>,
    base: Option<Py<PyAny>>,
    view: Option<Py<PyAny>>,
}

#[pymethods]
impl ReplyBlock {
    fn __enter__(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if self.base.is_some() {
            return Err(raise(
                py,
                "Error",
                "this reply block was already entered".into(),
            ));
        }
        let mut req = self.request.borrow_mut(py);
        if req.view.is_none() {
            return Err(Request::answered(py));
        }
        req.refuse_if_blocked(py)?;
        req.blocked = true;
        let holder = req.holder.clone_ref(py);
        let (t, shape) = req.types.reply.clone();
        drop(req);
        let ptr = holder
            .get()
            .reply_ptr()
            .ok_or_else(|| Request::answered(py))?;
        let descr = crate::element::descr(py, t)?;
        // SAFETY: `ptr` is the reply of our SERVING call (nobody else reads or writes it until
        // it is answered), `holder` (the base) keeps it ours; `__exit__` cuts the array from it
        // before answering.
        let base = unsafe {
            numpy_over(
                py,
                descr,
                ptr,
                &shape,
                true,
                holder.into_bound(py).into_any(),
            )?
        };
        let view = crate::views::view_of(&base)?;
        self.base = Some(base.unbind());
        self.view = Some(view.clone().unbind());
        Ok(view.unbind())
    }

    /// Sends the reply, unless the block raised (the request stays unanswered) or a view of
    /// `out` survives it (`BufferError`, nothing sent).
    #[pyo3(signature = (exc_type=None, _exc=None, _tb=None))]
    fn __exit__(
        &mut self,
        py: Python<'_>,
        exc_type: Option<Bound<'_, PyAny>>,
        _exc: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let (Some(base), Some(view)) = (self.base.take(), self.view.take()) else {
            return Err(raise(
                py,
                "Error",
                "this reply block was not entered".into(),
            ));
        };
        let (base, view) = (base.into_bound(py), view.into_bound(py));
        let reshaped = give_dimension(&view);
        // Expected: `base` here and as `view`'s base; `view` here and as the `with` target.
        // SAFETY: both are live objects we hold; the GIL is held.
        let (refs_base, refs_view) = unsafe {
            (
                pyo3::ffi::Py_REFCNT(base.as_ptr()),
                pyo3::ffi::Py_REFCNT(view.as_ptr()),
            )
        };
        let alive = refs_base > 2 || refs_view > 2 || reshaped.is_err();
        let emptied = revoke(&view, !alive);
        make_read_only(&base);
        if alive || !emptied {
            // The request stays blocked: `base` keeps it (its holder) until those views go,
            // and it fails to its caller once the `Request` is gone too.
            return Err(PyBufferError::new_err(
                "a view of the reply array (a slice, a memoryview, a second name) is still alive \
                 after the with block: nothing was sent, the request can no longer be answered, \
                 and it fails to its caller once they and the request are gone",
            ));
        }
        drop((base, view));
        let mut req = self.request.borrow_mut(py);
        req.blocked = false;
        if exc_type.is_some_and(|t| !t.is_none()) {
            return Ok(false);
        }
        req.send(py)?;
        Ok(false)
    }
}

//! `ndring.Server` and `ndring.Client`: request and reply over the Rust `ndring::Server` /
//! `ndring::Client`, bound as bytes (`create_bytes` / `open_bytes`) with the element types and
//! shapes the segment records.
//!
//! Every Rust guard (a request being served, a call in flight, a reply borrowed) is kept next to
//! the `Arc` of the handle it borrows, in a Python object that owns it: the request's and the
//! reply's numpy arrays have that object as their base, so the slot is freed when the array and
//! every view of it are gone, never while one can still reach it. Waits release the GIL in
//! 50 ms slices that let Ctrl-C through.

mod client;
mod server;

use std::sync::{Arc, Mutex};

use ndring::DType;
use pyo3::prelude::*;

pub use client::{CallReply, Client, Ticket};
pub use server::{ReplyBlock, Request, ServedRequest, Server};

use crate::errors::{raise, tuple};
use crate::handles::dtype_label;

/// The Rust server and client, as bytes.
type RsServer = ndring::Server<u8, ndarray::Ix1, u8, ndarray::Ix1>;
type RsClient = ndring::Client<u8, ndarray::Ix1, u8, ndarray::Ix1>;

/// What the requests and the replies hold: element types and shapes.
#[derive(Clone, Debug)]
struct Types {
    request: (DType, Vec<usize>),
    reply: (DType, Vec<usize>),
}

impl Types {
    fn of(t: ((DType, Vec<usize>), (DType, Vec<usize>))) -> Self {
        Types {
            request: t.0,
            reply: t.1,
        }
    }

    fn describe(&self) -> String {
        format!(
            "request={}, reply={}",
            spec(&self.request),
            spec(&self.reply)
        )
    }
}

fn spec((t, shape): &(DType, Vec<usize>)) -> String {
    format!("({}, {})", tuple(shape), dtype_label(*t))
}

/// A Rust handle shared by a Python handle object and the guards borrowing it, and the process
/// that opened it (a forked child's copy is forgotten, never dropped: it would unregister the
/// parent).
struct Shared<H> {
    /// `None` once closed.
    handle: Mutex<Option<Arc<H>>>,
    pid: u32,
}

impl<H> Shared<H> {
    fn new(h: H) -> Self {
        Shared {
            handle: Mutex::new(Some(Arc::new(h))),
            pid: crate::pid::current(),
        }
    }

    /// The handle, for one call: an error in a forked child or once closed.
    fn get(&self, py: Python<'_>, what: &str) -> PyResult<Arc<H>> {
        if crate::pid::current() != self.pid {
            return Err(raise(
                py,
                "Error",
                format!(
                    "this ndring.{what} was opened in process {}: open it again in this \
                     (forked) process",
                    self.pid
                ),
            ));
        }
        let h = self.handle.lock().unwrap_or_else(|e| e.into_inner());
        h.clone()
            .ok_or_else(|| raise(py, "Error", format!("this ndring.{what} is closed")))
    }

    fn close(&self) {
        let h = self.handle.lock().unwrap_or_else(|e| e.into_inner()).take();
        forget_in_child(self.pid, h);
    }
}

impl<H> Drop for Shared<H> {
    fn drop(&mut self) {
        self.close();
    }
}

/// Drops `v`, unless this is a child forked from the process `pid` that made it: the guard or
/// handle is the parent's (dropping it would answer, free or unregister for the parent).
fn forget_in_child<T>(pid: u32, v: T) {
    if crate::pid::current() == pid {
        drop(v);
    } else {
        std::mem::forget(v);
    }
}

/// `numpy.asarray(x)` checked against `(dtype, shape)`, C-contiguous: `ndring.InvalidType` for
/// another dtype (without `cast`: same-kind casts are made, e.g. float64 to float32),
/// `ndring.Mismatch` for another shape.
fn conform<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    (t, shape): &(DType, Vec<usize>),
    what: &str,
    cast: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let descr = crate::element::descr(py, *t)?;
    // The common case, with no Python call: a C-contiguous array of the very dtype and shape.
    if let Ok(a) = x.cast::<numpy::PyUntypedArray>() {
        use numpy::{PyArrayDescrMethods, PyUntypedArrayMethods};
        if a.is_c_contiguous() && a.shape() == shape.as_slice() && a.dtype().is_equiv_to(&descr) {
            return Ok(x.clone());
        }
    }
    let np = py.import("numpy")?;
    let a = np.getattr("asarray")?.call1((x,))?;
    let found: Vec<usize> = a.getattr("shape")?.extract()?;
    if &found != shape {
        return Err(raise(
            py,
            "Mismatch",
            format!(
                "shape mismatch: expected a {what} of shape {}, got {}",
                tuple(shape),
                tuple(&found)
            ),
        ));
    }
    let dt = a.getattr("dtype")?;
    let same = dt.eq(&descr)?;
    let castable = cast
        && np
            .getattr("can_cast")?
            .call1((&dt, &descr, "same_kind"))?
            .is_truthy()?;
    if !same && !castable {
        return Err(crate::errors::invalid_type(
            py,
            format!(
                "expected a {what} of dtype {}, got {}",
                dtype_label(*t),
                dt.str()?
            ),
        ));
    }
    np.getattr("ascontiguousarray")?.call1((a, descr))
}

/// The data pointer of a C-contiguous numpy array (from `conform`).
fn data_of(a: &Bound<'_, PyAny>) -> PyResult<usize> {
    let a = a.cast::<numpy::PyUntypedArray>()?;
    use numpy::PyUntypedArrayMethods;
    // SAFETY: `a` is a live ndarray (the GIL is held); `data` is a plain field.
    Ok(unsafe { (*a.as_array_ptr()).fields.data } as usize)
}

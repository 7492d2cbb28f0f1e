//! `Handle`: what the four handle classes hold, the Rust handle and the process that opened it,
//! borrowed once per call without an atomic operation.

use std::cell::{Cell, UnsafeCell};
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::task::{Context, Poll, Waker};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use super::{detached, forked};

/// The Rust handle of a Python handle object, and the process that opened it.
///
/// The classes are `frozen` and borrow the handle through [`Handle::get`], which checks a plain
/// flag rather than pyo3's borrow counter (an atomic compare-exchange per call, ~8 ns of the
/// ~0.3 us a 64-byte item costs a Python consumer). Exclusion comes from the GIL instead: the
/// flag and the handle are only reached with the GIL held, and a borrow kept across a wait
/// without the GIL leaves the flag set, so that another thread (or a signal handler) calling in
/// meanwhile gets a `RuntimeError`, as pyo3's borrow checking would give it.
pub(super) struct Handle<H: ?Sized> {
    /// `None` once detached. Reached only through a `Borrowed` (or `&mut self`).
    inner: UnsafeCell<Option<Box<H>>>,
    /// A `Borrowed` is alive.
    busy: Cell<bool>,
    /// The async call (`arecv`, `asend`) whose wait is pending: its token, and the waker it
    /// registered (woken if the handle is detached meanwhile).
    awaiting: Cell<Option<(u64, Waker)>>,
    pid: u32,
}

// `busy`, `awaiting` and `inner` are only read or written by threads holding the GIL (every method takes a
// `Python` token, and `Borrowed` is neither `Send` nor dropped without it), which orders those
// accesses; `busy` makes the `&mut H` a `Borrowed` gives out the only one, for as long as it
// lives, GIL released or not. The module refuses to load where there is no GIL
// (`crate::require_gil`). `H: Send` because the handle is used by whichever thread calls in.
// SAFETY: shared access is serialised by the GIL and exclusive by `busy`, as above.
unsafe impl<H: ?Sized + Send> Sync for Handle<H> {}

/// The handle, borrowed: derefs to it; clears the busy flag when dropped.
pub(super) struct Borrowed<'a, H: ?Sized> {
    handle: &'a Handle<H>,
    inner: &'a mut H,
    /// Not `Send`: dropped on the thread that borrowed, with the GIL.
    _not_send: PhantomData<*const ()>,
}

impl<H: ?Sized> Handle<H> {
    pub(super) fn new(inner: Box<H>) -> Self {
        Handle {
            inner: UnsafeCell::new(Some(inner)),
            busy: Cell::new(false),
            awaiting: Cell::new(None),
            pid: crate::pid::current(),
        }
    }

    /// The handle, for one call: an error in a forked child, once detached, or while another
    /// call (on another thread, waiting without the GIL) has it.
    pub(super) fn get<'a>(&'a self, py: Python<'a>) -> PyResult<Borrowed<'a, H>> {
        if crate::pid::current() != self.pid {
            return Err(forked(py, self.pid));
        }
        if self.busy.get() {
            return Err(in_use());
        }
        // SAFETY: the GIL is held and no `Borrowed` is alive (`busy` is clear): nothing else
        // refers to `inner` (see the `Sync` impl).
        let inner = unsafe { &mut *self.inner.get() };
        let inner = inner.as_deref_mut().ok_or_else(|| detached(py))?;
        self.busy.set(true);
        Ok(Borrowed {
            handle: self,
            inner,
            _not_send: PhantomData,
        })
    }

    /// The handle, for a call that may block (a receive, a claim): as [`Handle::get`], and an
    /// error while an asyncio task awaits the handle (the two waits would share its sleep).
    pub(super) fn get_to_wait<'a>(&'a self, py: Python<'a>) -> PyResult<Borrowed<'a, H>> {
        let h = self.get(py)?;
        if self.awaiting_token().is_some() {
            return Err(awaited());
        }
        Ok(h)
    }

    /// One poll of the async call `token` (see `crate::aio` and `ndring/_aio.py`): `Some` once
    /// `poll` is ready; `None` while it is pending, with a waker that reports `token` to
    /// `notifier` registered. An error while another async call awaits the handle.
    pub(super) fn poll<R>(
        &self,
        py: Python<'_>,
        notifier: &crate::aio::Notifier,
        token: u64,
        poll: impl FnOnce(&mut H, &mut Context<'_>) -> Poll<PyResult<R>>,
    ) -> PyResult<Option<R>> {
        let mut h = self.get(py)?;
        if self.awaiting_token().is_some_and(|t| t != token) {
            return Err(awaited());
        }
        let waker = notifier.waker(token);
        match poll(&mut h, &mut Context::from_waker(&waker)) {
            Poll::Pending => {
                self.awaiting.set(Some((token, waker)));
                Ok(None)
            }
            Poll::Ready(r) => {
                self.awaiting.set(None);
                r.map(Some)
            }
        }
    }

    /// Ends the pending wait of the async call `token` (cancelled, interrupted, timed out)
    /// with `forget`: no waiter stays counted in the ring, nothing is taken. Nothing to do if
    /// that call is not pending, or the handle was detached (its drop ended the wait).
    pub(super) fn forget(&self, py: Python<'_>, token: u64, forget: impl FnOnce(&mut H)) {
        if self.awaiting_token() != Some(token) {
            return;
        }
        if let Ok(mut h) = self.get(py) {
            forget(&mut h);
            self.awaiting.set(None);
        }
    }

    fn awaiting_token(&self) -> Option<u64> {
        let a = self.awaiting.take();
        let token = a.as_ref().map(|(t, _)| *t);
        self.awaiting.set(a);
        token
    }

    /// A call (on another thread, waiting without the GIL) has the handle.
    pub(super) fn in_use(&self) -> bool {
        self.busy.get()
    }

    /// Detaches from the ring (drops the Rust handle), unless another call has it. A task
    /// awaiting the handle is woken: its next poll raises that the handle is closed.
    pub(super) fn detach(&self, _py: Python<'_>) -> PyResult<()> {
        if self.busy.get() {
            return Err(in_use());
        }
        if let Some((_, waker)) = self.awaiting.take() {
            waker.wake();
        }
        // SAFETY: as in `get`: the GIL is held and no `Borrowed` is alive.
        let inner = unsafe { (*self.inner.get()).take() };
        self.release(inner);
        Ok(())
    }

    fn release(&self, inner: Option<Box<H>>) {
        if crate::pid::current() == self.pid {
            drop(inner);
        } else {
            // A forked child's copy: dropping it would unregister (or unlink) the parent's.
            std::mem::forget(inner);
        }
    }
}

impl<H: ?Sized> Drop for Handle<H> {
    fn drop(&mut self) {
        let inner = self.inner.get_mut().take();
        self.release(inner);
    }
}

impl<H: ?Sized> Deref for Borrowed<'_, H> {
    type Target = H;
    fn deref(&self) -> &H {
        self.inner
    }
}

impl<H: ?Sized> DerefMut for Borrowed<'_, H> {
    fn deref_mut(&mut self) -> &mut H {
        self.inner
    }
}

impl<H: ?Sized> Drop for Borrowed<'_, H> {
    fn drop(&mut self) {
        self.handle.busy.set(false);
    }
}

fn awaited() -> PyErr {
    PyRuntimeError::new_err(
        "this ndring handle is awaited by another task (a pending arecv or asend): one call at \
         a time per handle",
    )
}

fn in_use() -> PyErr {
    PyRuntimeError::new_err(
        "this ndring handle is in use by another call (another thread waiting in it)",
    )
}

//! asyncio without a thread per handle: the Rust side of `ndring/_aio.py`.
//!
//! An `_AsyncNotifier` is made per event loop; its eventfd is registered with
//! `loop.add_reader`. A pending `arecv` / `asend` polls its handle (`_poll_recv`, ...) with a
//! `std::task::Waker` that, when this process's reactor thread wakes it, pushes the call's token
//! to the notifier's ready list and writes the eventfd: no GIL taken on the reactor thread, no
//! thread per pending call. The loop's reader callback (`drain`) then resolves the asyncio
//! future of each token, and the task polls again.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::task::{Wake, Waker};

use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;

/// What an event loop's notifier and the wakers it hands out share.
struct Ready {
    /// Non-blocking eventfd, readable while tokens may be waiting.
    fd: OwnedFd,
    /// Tokens of the calls woken since the last `drain`.
    tokens: Mutex<Vec<u64>>,
}

impl Ready {
    fn push(&self, token: u64) {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(token);
        let one = 1u64.to_ne_bytes();
        // An eventfd counter only overflows after 2^64 - 2 writes without a read: the write
        // cannot fail but with EAGAIN then, when the fd is readable anyway.
        // SAFETY: `fd` is an open eventfd we own; `one` is 8 readable bytes.
        let _ = unsafe { libc::write(self.fd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    }
}

/// The waker of one pending call: its token, to the ready list of its loop's notifier.
struct TokenWaker {
    ready: Arc<Ready>,
    token: u64,
}

impl Wake for TokenWaker {
    fn wake(self: Arc<Self>) {
        self.ready.push(self.token);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.ready.push(self.token);
    }
}

/// The wake-up channel of one asyncio event loop (made by `ndring._aio`, not by users).
#[pyclass(name = "_AsyncNotifier", module = "ndring", frozen)]
pub struct Notifier {
    ready: Arc<Ready>,
}

impl Notifier {
    /// A waker that reports `token` to this notifier.
    pub fn waker(&self, token: u64) -> Waker {
        Waker::from(Arc::new(TokenWaker {
            ready: Arc::clone(&self.ready),
            token,
        }))
    }
}

#[pymethods]
impl Notifier {
    #[new]
    fn new() -> PyResult<Self> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a new fd we then own.
        let fd: RawFd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(PyOSError::new_err(format!(
                "eventfd: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(Notifier {
            ready: Arc::new(Ready {
                // SAFETY: `fd` was just opened and is owned by nothing else.
                fd: unsafe { OwnedFd::from_raw_fd(fd) },
                tokens: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The eventfd, for `loop.add_reader`.
    fn fileno(&self) -> RawFd {
        self.ready.fd.as_fd().as_raw_fd()
    }

    /// The tokens woken since the last call (the eventfd read first, so that a token pushed
    /// after this call's take makes the fd readable again).
    fn drain(&self) -> Vec<u64> {
        let mut count = [0u8; 8];
        // Nothing to read (EAGAIN) is fine: a previous drain took the tokens already.
        // SAFETY: `fd` is an open eventfd we own; `count` is 8 writable bytes.
        let _ = unsafe {
            libc::read(
                self.ready.fd.as_raw_fd(),
                count.as_mut_ptr().cast(),
                count.len(),
            )
        };
        std::mem::take(&mut *self.ready.tokens.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// `ndring._aio.<function>(*args)`: the coroutine of an async method.
pub fn coroutine<'py>(
    py: Python<'py>,
    function: &str,
    args: impl pyo3::call::PyCallArgs<'py>,
) -> PyResult<Bound<'py, PyAny>> {
    py.import("ndring._aio")?.getattr(function)?.call1(args)
}

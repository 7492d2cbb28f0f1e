//! The mappings of the shared arrays this process opened, kept after their handles close.
//!
//! A `multiprocessing.Pool` worker attaches to the array anew for every chunk of tasks (the
//! handle in the task's arguments is unpickled, used and dropped). Unmapping the array at each
//! chunk's end and mapping it again at the next would cost the worker a `munmap` of every page
//! it touched (~10 ms for 200 MB) and a fault on every page it touches again: so the mapping
//! outlives the handle here, and the next open of the same name registers over it
//! ([`ndring::SharedArray::from_mapped`]), whose registration confirms under the segment's lock
//! that the name still refers to it. Only the mapping is kept: the registration ends with the
//! handle, so the last handle out still removes the name at once, and a process that keeps a
//! mapping is not a user of the array (nothing held, nothing to recover).
//!
//! Up to [`MAX`] mappings, the most recently opened last; one whose name was removed or replaced
//! is dropped at the next close of a handle of that name in this process (its owner's too), at
//! the next open of that name or the next open that maps an array, or by
//! `SharedArray.release_mappings()`. Entries are added and taken with the GIL held, so no fork
//! can copy the mutex locked.

use std::sync::{Arc, Mutex, MutexGuard};

use ndring::Segment;
use pyo3::prelude::*;

/// How many closed arrays' mappings a process keeps (a worker handed a source and a
/// destination array in every task keeps both).
const MAX: usize = 8;

static KEPT: Mutex<Vec<Arc<Segment>>> = Mutex::new(Vec::new());

fn kept() -> MutexGuard<'static, Vec<Arc<Segment>>> {
    KEPT.lock().unwrap_or_else(|e| e.into_inner())
}

/// The kept mapping of `name`. Whether the name still refers to it is for the caller to
/// learn: the registration confirms it (`NotFound` if not), and a header check that fails
/// asks [`still_named`](Segment::still_named) before blaming the array.
pub(super) fn find(name: &str) -> Option<Arc<Segment>> {
    kept()
        .iter()
        .find(|s| s.name() == name && !s.removed_here())
        .cloned()
}

/// Keeps `seg` (just opened) past its handles; drops the mappings whose names no longer refer
/// to them, and the oldest beyond [`MAX`].
pub(super) fn keep(py: Python<'_>, seg: &Arc<Segment>) {
    let gone: Vec<Arc<Segment>> = {
        let mut list = kept();
        list.retain(|s| s.name() != seg.name());
        list.push(seg.clone());
        let extra = list.len().saturating_sub(MAX);
        let mut gone: Vec<_> = list.drain(..extra).collect();
        let (live, stale): (Vec<_>, Vec<_>) = list.drain(..).partition(|s| s.still_named());
        *list = live;
        gone.extend(stale);
        gone
    };
    unmap(py, gone);
}

/// Drops the kept mapping `seg` (its name was removed or replaced).
pub(super) fn forget(py: Python<'_>, seg: &Arc<Segment>) {
    let gone: Vec<Arc<Segment>> = {
        let mut list = kept();
        let (out, stay): (Vec<_>, Vec<_>) = list.drain(..).partition(|s| Arc::ptr_eq(s, seg));
        *list = stay;
        out
    };
    unmap(py, gone);
}

/// After a handle of `name` closed: drops its kept mapping if the name is gone, since nothing
/// can open it again (this handle, or another handle of this process over another mapping, was
/// the last one out, or another process removed it). A `stat`, and only where a mapping of that
/// name is kept.
pub(super) fn closed(py: Python<'_>, name: &str) {
    let seg = kept().iter().find(|s| s.name() == name).cloned();
    if let Some(seg) = seg.filter(|s| s.removed_here() || !s.still_named()) {
        forget(py, &seg);
    }
}

/// Drops every kept mapping that no handle uses; returns how many were unmapped.
pub(super) fn release(py: Python<'_>) -> usize {
    let gone: Vec<Arc<Segment>> = std::mem::take(&mut *kept());
    let unused = gone.iter().filter(|s| Arc::strong_count(s) == 1).count();
    unmap(py, gone);
    unused
}

/// Unmapping a large array takes milliseconds: without the GIL.
fn unmap(py: Python<'_>, gone: Vec<Arc<Segment>>) {
    if !gone.is_empty() {
        py.detach(move || drop(gone));
    }
}

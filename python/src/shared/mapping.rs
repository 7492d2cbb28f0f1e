//! The base object of `as_array()`'s arrays: it keeps the handle (the mapping and this process's
//! registration) alive, so that such an array never dangles, also after `close()`.

use std::mem::ManuallyDrop;
use std::sync::Arc;

use pyo3::prelude::*;

use super::typed::AnyShared;

/// Keeps a shared array attached while an array over its memory lives.
#[pyclass(module = "ndring", frozen)]
pub struct ArrayMapping {
    array: ManuallyDrop<Arc<dyn AnyShared>>,
    /// The process that made it: a forked child's copy must not detach the parent's handle.
    pid: u32,
}

impl ArrayMapping {
    pub fn new(array: Arc<dyn AnyShared>) -> Self {
        ArrayMapping {
            array: ManuallyDrop::new(array),
            pid: crate::pid::current(),
        }
    }
}

impl Drop for ArrayMapping {
    fn drop(&mut self) {
        if crate::pid::current() == self.pid {
            // SAFETY: dropped once, here, and never used after.
            unsafe { ManuallyDrop::drop(&mut self.array) };
        }
        // Else a forked child: the reference is the parent's, leaked with the mapping.
    }
}

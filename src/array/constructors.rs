//! The constructors of a shared array: those of every typed handle (`handle::constructors`),
//! and `from_mapped` over a mapping this process keeps; every one ends in `attach`.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use ndarray::Dimension;

use super::SharedArray;
use crate::config::OpenOptions;
use crate::element::Element;
use crate::error::Result;
use crate::handle::attach;
use crate::handle::constructors::{Attach, typed_constructors};
use crate::protocol::array::{self as proto, ArrayMemory};
use crate::role::Role;
use crate::shm::peers::{self, Registration};
use crate::shm::segment::Segment;
use crate::shm::wait::{Stuck, Waiting};

typed_constructors!(
    SharedArray,
    what: "a shared array handle",
    create: "Creates the shared array `name` of `shape`, zero-filled, and attaches to it. The last handle to detach (of any process) removes the name, unless `config.keep(true)`. A name left by processes that all died is replaced.",
    open_or_create: "Opens `name` if it holds a shared array in use (or kept), checking type and shape, else creates it: for processes that may start in either order.",
    config: Config::array(),
    first: SharedArray,
);

impl<T: Element, D: Dimension> Attach for SharedArray<T, D> {
    const ROLE: Role = Role::Sharer;

    fn attach(seg: Segment, created: Option<Registration>, options: &OpenOptions) -> Result<Self> {
        Self::attach_mapped(Arc::new(seg), created, options)
    }
}

impl<T: Element, D: Dimension> SharedArray<T, D> {
    /// [`SharedArray::from_segment_with`] over a segment this process has already mapped and
    /// keeps (an earlier handle's, now closed, or a sibling's): the new handle registers on its
    /// own but shares the mapping, so nothing is mapped again and pages already touched fault
    /// no more. A pool worker that attaches for every task keeps its mapping this way, as the
    /// Python binding does. [`Error::NotFound`] if the name has since been removed or replaced:
    /// then open it anew.
    ///
    /// ```
    /// # use ndring::*;
    /// # use std::sync::Arc;
    /// # let name = format!("/ndr-doc-safm-{}", std::process::id());
    /// # let _a = SharedArray::<f64, ndarray::IxDyn>::create(&name, vec![3, 3], &Config::array())?;
    /// let seg = Arc::new(Segment::open(&name, std::time::Duration::from_secs(1))?);
    /// let first = SharedArray::<f64, ndarray::IxDyn>::from_mapped(seg.clone(), &OpenOptions::default())?;
    /// drop(first); // unregistered; `seg` keeps the mapping
    /// let again = SharedArray::<f64, ndarray::IxDyn>::from_mapped(seg, &OpenOptions::default())?;
    /// # Ok::<(), Error>(())
    /// ```
    pub fn from_mapped(seg: Arc<Segment>, options: &OpenOptions) -> Result<Self> {
        Self::attach_mapped(seg, None, options)
    }

    /// Attaches to `seg`, registering unless `created` (our entry, taken before READY).
    fn attach_mapped(
        seg: Arc<Segment>,
        created: Option<Registration>,
        options: &OpenOptions,
    ) -> Result<Self> {
        let dim = attach::check_as::<T, D>(&seg, attach::Family::Array)?;
        let reg = match created {
            Some(reg) => reg,
            None => peers::register(&seg, Role::Sharer)?,
        };
        // Before our first lock: writers scan our entry from now on.
        proto::cover(&*seg, reg.index);
        let pid = peers_pid(&seg, reg.index);
        Ok(SharedArray {
            tag: proto::owner_tag(pid, reg.index),
            seg,
            entry: reg.index,
            dim,
            how: Waiting {
                spin: options.spin,
                grace: options.grace,
            },
            stuck: Mutex::new(Stuck::new()),
            _t: PhantomData,
        })
    }
}

/// The pid of the process registered in entry `index`.
fn peers_pid(seg: &Segment, index: usize) -> u32 {
    crate::protocol::peers::owner(ArrayMemory::peer(seg, index)).map_or(0, |o| o.pid)
}

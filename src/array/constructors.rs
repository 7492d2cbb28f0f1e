//! The constructors of a shared array: every one of them ends in `attach`, over a segment
//! mapped once (`handle::attach` does the create, open and open-or-create of the name).

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use ndarray::{Dimension, IntoDimension};

use super::SharedArray;
use crate::config::{Config, OpenOptions};
use crate::element::Element;
use crate::error::{Error, Result};
use crate::handle::attach;
use crate::layout::{Params, RingKind};
use crate::protocol::array::{self as proto, ArrayMemory};
use crate::role::Role;
use crate::shm::peers::{self, Registration};
use crate::shm::segment::Segment;
use crate::shm::wait::{Stuck, Waiting};

impl<T: Element, D: Dimension> SharedArray<T, D> {
    /// Creates the shared array `name` of `shape`, zero-filled, and attaches to it. The last
    /// handle to detach (of any process) removes the name, unless `config.keep(true)`. A name
    /// left by processes that all died is replaced.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-sac-{}", std::process::id());
    /// let sa = SharedArray::<f32, ndarray::Ix3>::create(&name, (2, 3, 4), &Config::array())?;
    /// assert_eq!(sa.shape(), &[2, 3, 4]);
    /// assert!(matches!(
    ///     SharedArray::<f32, ndarray::Ix3>::create(&name, (2, 3, 4), &Config::array()),
    ///     Err(Error::AlreadyExists { .. })
    /// ));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn create(name: &str, shape: impl IntoDimension<Dim = D>, config: &Config) -> Result<Self> {
        let (seg, reg) = create_segment::<T>(name, shape.into_dimension().slice(), config)?;
        Self::attach(seg, Some(reg), config.into())
    }

    /// Attaches to the shared array `name`, checking its element type and rank.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-sao-{}", std::process::id());
    /// let _a = SharedArray::<u16, ndarray::Ix1>::create(&name, 8, &Config::array())?;
    /// let b = SharedArray::<u16, ndarray::Ix1>::open(&name)?;
    /// assert!(matches!(SharedArray::<u8, ndarray::Ix1>::open(&name), Err(Error::TypeMismatch { .. })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn open(name: &str) -> Result<Self> {
        Self::open_with(name, &OpenOptions::default())
    }

    /// [`SharedArray::open`] with options (wait for the creator, spin, grace period).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-saow-{}", std::process::id());
    /// # let _a = SharedArray::<u16, ndarray::Ix1>::create(&name, 8, &Config::array())?;
    /// let b = SharedArray::<u16, ndarray::Ix1>::open_with(&name, &OpenOptions::default().spin(0))?;
    /// # Ok::<(), Error>(())
    /// ```
    pub fn open_with(name: &str, options: &OpenOptions) -> Result<Self> {
        attach::open_attach(
            || Segment::open_with(name, options),
            |seg| Self::attach(seg, None, options.clone()),
        )
    }

    /// Like [`SharedArray::open`], additionally requiring the exact `shape`.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-saos-{}", std::process::id());
    /// # let _a = SharedArray::<u8, ndarray::Ix2>::create(&name, (4, 4), &Config::array())?;
    /// assert!(matches!(
    ///     SharedArray::<u8, ndarray::Ix2>::open_shape(&name, (4, 5)),
    ///     Err(Error::ShapeMismatch { .. })
    /// ));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn open_shape(name: &str, shape: impl IntoDimension<Dim = D>) -> Result<Self> {
        let shape = shape.into_dimension();
        attach::open_attach(
            || attach::open_shape(name, shape.slice()),
            |seg| Self::attach(seg, None, OpenOptions::default()),
        )
    }

    /// Opens `name` if it holds a shared array in use (or kept), checking type and shape, else
    /// creates it: for processes that may start in either order.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-saoc-{}", std::process::id());
    /// let a = SharedArray::<u8, ndarray::Ix1>::open_or_create(&name, 8, &Config::array())?;
    /// let b = SharedArray::<u8, ndarray::Ix1>::open_or_create(&name, 8, &Config::array())?;
    /// a.write()?.fill(1);
    /// assert_eq!(b.read()?.sum(), 8);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn open_or_create(
        name: &str,
        shape: impl IntoDimension<Dim = D>,
        config: &Config,
    ) -> Result<Self> {
        let dim = shape.into_dimension();
        attach::open_attach(
            || attach::open_or_create::<T, D>(name, dim.clone(), config, Role::Sharer),
            |(seg, reg)| Self::attach(seg, reg, config.into()),
        )
    }

    /// Turns an untyped [`Segment`] into a shared array handle, checking kind, type and rank.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-safs-{}", std::process::id());
    /// # let _a = SharedArray::<f64, ndarray::IxDyn>::create(&name, vec![3, 3], &Config::array())?;
    /// let seg = Segment::open(&name, std::time::Duration::from_secs(1))?;
    /// assert_eq!(seg.kind(), RingKind::Array);
    /// let sa = SharedArray::<f64, ndarray::IxDyn>::from_segment(seg)?;
    /// # Ok::<(), Error>(())
    /// ```
    pub fn from_segment(seg: Segment) -> Result<Self> {
        Self::attach(seg, None, OpenOptions::default())
    }

    /// [`SharedArray::from_segment`] with `options` (spin, grace period), for a caller
    /// that opened the segment itself, for instance to read its element type first: the one
    /// attach path of every constructor, with no second mapping.
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-safsw-{}", std::process::id());
    /// # let _a = SharedArray::<f64, ndarray::IxDyn>::create(&name, vec![3, 3], &Config::array())?;
    /// let seg = Segment::open(&name, std::time::Duration::from_secs(1))?;
    /// let h = SharedArray::<f64, ndarray::IxDyn>::from_segment_with(seg, &OpenOptions::default().spin(0))?;
    /// # Ok::<(), Error>(())
    /// ```
    pub fn from_segment_with(seg: Segment, options: &OpenOptions) -> Result<Self> {
        Self::attach(seg, None, options.clone())
    }

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
        Self::attach(seg, None, options.clone())
    }

    /// Attaches to `seg`, registering unless `created` (our entry, taken before READY).
    fn attach(
        seg: impl Into<Arc<Segment>>,
        created: Option<Registration>,
        options: OpenOptions,
    ) -> Result<Self> {
        let seg: Arc<Segment> = seg.into();
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

/// Creates the segment of a shared array of `T` and `shape`, registered as a sharer.
pub(crate) fn create_segment<T: Element>(
    name: &str,
    shape: &[usize],
    config: &Config,
) -> Result<(Segment, Registration)> {
    if config.kind != RingKind::Array {
        return Err(Error::InvalidConfig(format!(
            "a shared array needs Config::array(), the config is for {}",
            config.kind
        )));
    }
    let params = Params {
        kind: RingKind::Array,
        dtype: T::DTYPE,
        shape: shape.to_vec(),
        slots: 1,
        user_meta: 0,
        max_peers: config.max_peers,
        timestamps: false,
        reply: None,
    };
    Segment::create(name, params, config, Role::Sharer)
}

/// The pid of the process registered in entry `index`.
fn peers_pid(seg: &Segment, index: usize) -> u32 {
    crate::protocol::peers::owner(ArrayMemory::peer(seg, index)).map_or(0, |o| o.pid)
}

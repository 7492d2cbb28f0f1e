//! The constructors of the typed handles, written once. Every one of them maps the segment
//! once and ends in the handle's [`Attach::attach`]: `create` makes the segment with the
//! caller's registration taken before READY, the opens register after mapping, and
//! `from_segment` takes a segment the caller mapped itself (to read its type first).
//!
//! [`opening_constructors!`] writes the four public constructors that attach to a segment
//! someone else created (`open`, `open_with`, `from_segment`, `from_segment_with`) of every
//! handle that implements [`Attach`], and [`typed_constructors!`] adds the three that may create
//! it (`create`, `open_shape`, `open_or_create`) for a handle of one item type and shape
//! (`Producer`, `Consumer`, `SharedArray`). Both write over the generic functions below, which
//! the handles with other constructors (the broadcast writer's, request and reply's) call too.

use ndarray::Dimension;

use crate::config::{Config, OpenOptions};
use crate::element::Element;
use crate::error::Result;
use crate::handle::attach;
use crate::role::Role;
use crate::shm::peers::Registration;
use crate::shm::segment::Segment;

/// A typed handle made over a mapped segment.
pub(crate) trait Attach: Sized {
    /// The role the handle registers as.
    const ROLE: Role;

    /// Checks `seg` against the handle's type and attaches: registers as [`Attach::ROLE`],
    /// unless `created` (our entry in a segment we created, taken before READY).
    fn attach(seg: Segment, created: Option<Registration>, options: &OpenOptions) -> Result<Self>;
}

/// Creates `name` for items of `T` and `shape` and attaches to it.
pub(crate) fn create<H: Attach, T: Element, D: Dimension>(
    name: &str,
    shape: D,
    config: &Config,
) -> Result<H> {
    let (seg, reg) = attach::create::<T>(name, shape.slice(), config, H::ROLE)?;
    H::attach(seg, Some(reg), &config.into())
}

/// Opens `name` and attaches to it (again, where the name was replaced in between).
pub(crate) fn open_with<H: Attach>(name: &str, options: &OpenOptions) -> Result<H> {
    open_then(name, options, |seg, options| H::attach(seg, None, options))
}

/// Opens `name` and attaches to it with `attach` (a handle's other way of attaching, such as
/// request/reply as bytes), again where the name was replaced in between.
pub(crate) fn open_then<H>(
    name: &str,
    options: &OpenOptions,
    mut attach: impl FnMut(Segment, &OpenOptions) -> Result<H>,
) -> Result<H> {
    attach::open_attach(
        || Segment::open_with(name, options),
        |seg| attach(seg, options),
    )
}

/// [`open_with`] default options, requiring the exact `shape`.
pub(crate) fn open_shape<H: Attach>(name: &str, shape: &[usize]) -> Result<H> {
    let options = OpenOptions::default();
    attach::open_attach(
        || attach::open_shape(name, shape),
        |seg| H::attach(seg, None, &options),
    )
}

/// Opens `name` if it holds a segment in use, else creates it (see `attach::open_or_create`).
pub(crate) fn open_or_create<H: Attach, T: Element, D: Dimension>(
    name: &str,
    shape: D,
    config: &Config,
) -> Result<H> {
    let options = config.into();
    attach::open_attach(
        || attach::open_or_create::<T>(name, shape.slice(), config, H::ROLE),
        |(seg, reg)| H::attach(seg, reg, &options),
    )
}

/// Writes `open`, `open_with`, `from_segment` and `from_segment_with` of a handle that
/// implements [`Attach`], each with its documentation and a doc example.
///
/// `impl[generics] Type` is the handle, `$what` says what it is ("a producer"); the examples
/// attach as `$example` to the segment that `$first` creates (`name` in scope), and find
/// `$wrong` refused for its element type; `$tag` keeps the examples' names apart.
macro_rules! opening_constructors {
    (
        impl[$($generics:tt)*] $self_ty:ty,
        what: $what:literal,
        example: $example:ty,
        wrong: $wrong:ty,
        first: $first:expr,
        tag: $tag:ident $(,)?
    ) => {
        impl<$($generics)*> $self_ty {
            #[doc = concat!("Attaches as ", $what, " to the existing segment `name`, checking its kind, element types and ranks.")]
            ///
            /// ```
            /// # use ndring::*;
            #[doc = concat!("# let name = format!(\"/ndr-", stringify!($tag), "-o-{}\", std::process::id());")]
            #[doc = concat!("let _first = ", stringify!($first), "?;")]
            #[doc = concat!("let h = ", stringify!($example), "::open(&name)?;")]
            /// assert_eq!(h.segment().name(), name);
            /// assert!(matches!(
            #[doc = concat!("    ", stringify!($wrong), "::open(&name),")]
            ///     Err(Error::TypeMismatch { .. })
            /// ));
            /// # Ok::<(), Error>(())
            /// ```
            pub fn open(name: &str) -> $crate::error::Result<Self> {
                Self::open_with(name, &$crate::config::OpenOptions::default())
            }

            #[doc = concat!("[`Self::open`] with options (wait for the creator, spin, grace period).")]
            ///
            /// ```
            /// # use ndring::*;
            #[doc = concat!("# let name = format!(\"/ndr-", stringify!($tag), "-ow-{}\", std::process::id());")]
            #[doc = concat!("# let _first = ", stringify!($first), "?;")]
            #[doc = concat!("let h = ", stringify!($example), "::open_with(&name, &OpenOptions::default().spin(0))?;")]
            /// # Ok::<(), Error>(())
            /// ```
            pub fn open_with(
                name: &str,
                options: &$crate::config::OpenOptions,
            ) -> $crate::error::Result<Self> {
                $crate::handle::constructors::open_with(name, options)
            }

            #[doc = concat!("Turns an untyped [`Segment`](crate::Segment) into ", $what, ", checking its kind, element types and ranks.")]
            ///
            /// ```
            /// # use ndring::*;
            #[doc = concat!("# let name = format!(\"/ndr-", stringify!($tag), "-fs-{}\", std::process::id());")]
            #[doc = concat!("# let _first = ", stringify!($first), "?;")]
            /// let seg = Segment::open(&name, std::time::Duration::from_secs(1))?;
            #[doc = concat!("let h = ", stringify!($example), "::from_segment(seg)?;")]
            /// # Ok::<(), Error>(())
            /// ```
            pub fn from_segment(seg: $crate::shm::segment::Segment) -> $crate::error::Result<Self> {
                Self::from_segment_with(seg, &$crate::config::OpenOptions::default())
            }

            /// [`Self::from_segment`] with `options` (spin, grace period), for a caller that
            /// opened the segment itself, for instance to read its element type first: the one
            /// attach path of every constructor, with no second mapping.
            ///
            /// ```
            /// # use ndring::*;
            #[doc = concat!("# let name = format!(\"/ndr-", stringify!($tag), "-fsw-{}\", std::process::id());")]
            #[doc = concat!("# let _first = ", stringify!($first), "?;")]
            /// let seg = Segment::open(&name, std::time::Duration::from_secs(1))?;
            #[doc = concat!("let h = ", stringify!($example), "::from_segment_with(seg, &OpenOptions::default().spin(0))?;")]
            /// # Ok::<(), Error>(())
            /// ```
            pub fn from_segment_with(
                seg: $crate::shm::segment::Segment,
                options: &$crate::config::OpenOptions,
            ) -> $crate::error::Result<Self> {
                <Self as $crate::handle::constructors::Attach>::attach(seg, None, options)
            }
        }
    };
}

/// Writes the seven public constructors of a typed handle `$handle<T, D>` that implements
/// [`Attach`]: `create`, `open_shape`, `open_or_create`, and [`opening_constructors!`]'s
/// four, each with its documentation and a doc example.
///
/// `$what` names what the handle is ("a producer"), `$create` and `$open_or_create` say what
/// those two do for this kind, `$config` is the config of the examples and `$first` the handle
/// that creates the segment the examples of the opens attach to.
macro_rules! typed_constructors {
    (
        $handle:ident,
        what: $what:literal,
        create: $create:literal,
        open_or_create: $open_or_create:literal,
        config: $config:expr,
        first: $first:ident $(,)?
    ) => {
        $crate::handle::constructors::opening_constructors!(
            impl[T: $crate::element::Element, D: ::ndarray::Dimension] $handle<T, D>,
            what: $what,
            example: $handle::<u16, ndarray::Ix1>,
            wrong: $handle::<u8, ndarray::Ix1>,
            first: $first::<u16, ndarray::Ix1>::create(&name, 8, &$config),
            tag: $handle,
        );

        impl<T: $crate::element::Element, D: ::ndarray::Dimension> $handle<T, D> {
            #[doc = $create]
            ///
            /// ```
            /// # use ndring::*;
            #[doc = concat!("# let name = format!(\"/ndr-", stringify!($handle), "-c-{}\", std::process::id());")]
            #[doc = concat!("let h = ", stringify!($handle), "::<u8, ndarray::Ix2>::create(&name, (4, 4), &", stringify!($config), ")?;")]
            /// assert_eq!(h.shape(), &[4, 4]);
            /// assert!(matches!(
            #[doc = concat!("    ", stringify!($handle), "::<u8, ndarray::Ix2>::create(&name, (4, 4), &", stringify!($config), "),")]
            ///     Err(Error::AlreadyExists { .. })
            /// ));
            /// # Ok::<(), Error>(())
            /// ```
            pub fn create(
                name: &str,
                shape: impl ::ndarray::IntoDimension<Dim = D>,
                config: &$crate::config::Config,
            ) -> $crate::error::Result<Self> {
                $crate::handle::constructors::create::<Self, T, D>(
                    name,
                    shape.into_dimension(),
                    config,
                )
            }

            #[doc = concat!("Like [`", stringify!($handle), "::open`], additionally requiring the exact `shape`.")]
            ///
            /// ```
            /// # use ndring::*;
            #[doc = concat!("# let name = format!(\"/ndr-", stringify!($handle), "-os-{}\", std::process::id());")]
            #[doc = concat!("# let _first = ", stringify!($first), "::<u8, ndarray::Ix2>::create(&name, (4, 4), &", stringify!($config), ")?;")]
            /// assert!(matches!(
            #[doc = concat!("    ", stringify!($handle), "::<u8, ndarray::Ix2>::open_shape(&name, (4, 5)),")]
            ///     Err(Error::ShapeMismatch { .. })
            /// ));
            #[doc = concat!("let h = ", stringify!($handle), "::<u8, ndarray::Ix2>::open_shape(&name, (4, 4))?;")]
            /// # Ok::<(), Error>(())
            /// ```
            pub fn open_shape(
                name: &str,
                shape: impl ::ndarray::IntoDimension<Dim = D>,
            ) -> $crate::error::Result<Self> {
                $crate::handle::constructors::open_shape(name, shape.into_dimension().slice())
            }

            #[doc = $open_or_create]
            ///
            /// ```
            /// # use ndring::*;
            #[doc = concat!("# let name = format!(\"/ndr-", stringify!($handle), "-ooc-{}\", std::process::id());")]
            #[doc = concat!("let a = ", stringify!($handle), "::<u8, ndarray::Ix1>::open_or_create(&name, 8, &", stringify!($config), ")?;")]
            #[doc = concat!("let b = ", stringify!($handle), "::<u8, ndarray::Ix1>::open_or_create(&name, 8, &", stringify!($config), ")?;")]
            /// assert_eq!(a.shape(), b.shape());
            /// # Ok::<(), Error>(())
            /// ```
            pub fn open_or_create(
                name: &str,
                shape: impl ::ndarray::IntoDimension<Dim = D>,
                config: &$crate::config::Config,
            ) -> $crate::error::Result<Self> {
                $crate::handle::constructors::open_or_create::<Self, T, D>(
                    name,
                    shape.into_dimension(),
                    config,
                )
            }
        }
    };
}

pub(crate) use {opening_constructors, typed_constructors};

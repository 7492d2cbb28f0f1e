//! What every typed handle of one item type and shape tells of itself, written once:
//! [`segment_accessors!`] writes `shape`, `segment`, `peers` and `recover_dead`.

/// Writes `shape`, `segment`, `peers` and `recover_dead` of a handle `impl[generics] Type`
/// whose shape is its field `dim` and whose segment is reached as `self.$seg` (an
/// `Arc<Segment>`), each with its documentation and a doc example on a handle that
/// `$create(&name, (2, 5), &$config)` makes; `$tag` keeps the examples' names apart.
macro_rules! segment_accessors {
    (
        impl[$($generics:tt)*] $self_ty:ty,
        seg: $($seg:ident).+,
        create: $create:expr,
        config: $config:expr,
        tag: $tag:ident $(,)?
    ) => {
        impl<$($generics)*> $self_ty {
            /// The shape of each item.
            ///
            /// ```
            /// # use ndring::*;
            #[doc = concat!("# let name = format!(\"/ndr-", stringify!($tag), "-shp-{}\", std::process::id());")]
            #[doc = concat!("let h = ", stringify!($create), "(&name, (2, 5), &", stringify!($config), ")?;")]
            /// assert_eq!(h.shape(), &[2, 5]);
            /// # Ok::<(), Error>(())
            /// ```
            pub fn shape(&self) -> &[usize] {
                ::ndarray::Dimension::slice(&self.dim)
            }

            /// The underlying segment (name, layout, statistics).
            ///
            /// ```
            /// # use ndring::*;
            #[doc = concat!("# let name = format!(\"/ndr-", stringify!($tag), "-seg-{}\", std::process::id());")]
            #[doc = concat!("let h = ", stringify!($create), "(&name, (2, 5), &", stringify!($config), ")?;")]
            /// assert_eq!((h.segment().name(), h.segment().shape()), (name.as_str(), &[2, 5][..]));
            /// # Ok::<(), Error>(())
            /// ```
            pub fn segment(&self) -> &$crate::shm::segment::Segment {
                &self.$($seg).+
            }

            /// The processes attached to the segment, and whether each is alive.
            ///
            /// ```
            /// # use ndring::*;
            #[doc = concat!("# let name = format!(\"/ndr-", stringify!($tag), "-prs-{}\", std::process::id());")]
            #[doc = concat!("let h = ", stringify!($create), "(&name, (2, 5), &", stringify!($config), ")?;")]
            /// let peers = h.peers();
            /// assert_eq!(peers.len(), 1);
            /// assert!(peers[0].alive && peers[0].pid == std::process::id());
            /// # Ok::<(), Error>(())
            /// ```
            pub fn peers(&self) -> Vec<$crate::role::PeerInfo> {
                $crate::shm::peers::list(&self.$($seg).+)
            }

            /// Recovers what dead peers held now; returns how many dead peers were cleaned up.
            /// Not needed to keep a segment going: calls that find it stuck for a grace period
            /// do it (blocking, with a timeout, or not waiting at all).
            ///
            /// ```
            /// # use ndring::*;
            #[doc = concat!("# let name = format!(\"/ndr-", stringify!($tag), "-rd-{}\", std::process::id());")]
            #[doc = concat!("let h = ", stringify!($create), "(&name, (2, 5), &", stringify!($config), ")?;")]
            /// assert_eq!(h.recover_dead(), 0);
            /// # Ok::<(), Error>(())
            /// ```
            pub fn recover_dead(&self) -> usize {
                $crate::shm::peers::sweep(&self.$($seg).+)
            }
        }
    };
}

pub(crate) use segment_accessors;

//! What a `Lease` (the base object of a received array, `lease_object`) owns: a received slot of
//! any element type, or a frame's copy, with the numbers and bytes it carried.

use ndarray::IxDyn;
use ndring::ReadLease;

use crate::element::PyElement;

/// The numbers and bytes a received item carries, whatever its element type.
pub trait FrameInfo: Send + Sync {
    /// The sequence number.
    fn seq(&self) -> u64;
    /// Publish time, on rings with timestamps.
    fn timestamp_ns(&self) -> Option<u64>;
    /// The user metadata bytes.
    fn meta(&self) -> &[u8];
}

impl<T: ndring::Element> FrameInfo for ReadLease<T, IxDyn> {
    fn seq(&self) -> u64 {
        ReadLease::seq(self)
    }
    fn timestamp_ns(&self) -> Option<u64> {
        ReadLease::timestamp_ns(self)
    }
    fn meta(&self) -> &[u8] {
        self.user_meta_bytes()
    }
}

/// A frame copied out of the ring (numpy's element type `N`, canonical), with what it carried.
pub struct Copied<N> {
    pub data: Vec<N>,
    pub seq: u64,
    pub timestamp_ns: Option<u64>,
    pub meta: Vec<u8>,
}

impl<N> Copied<N> {
    /// A copy of the item `lease` holds, made canonical (see `element`).
    pub fn of<T: PyElement<Np = N>>(lease: &ReadLease<T, IxDyn>) -> Self {
        Copied {
            data: crate::element::to_np_vec(lease.view().iter().copied()),
            seq: lease.seq(),
            timestamp_ns: lease.timestamp_ns(),
            meta: lease.user_meta_bytes().to_vec(),
        }
    }
}

impl<N: Send + Sync> FrameInfo for Copied<N> {
    fn seq(&self) -> u64 {
        self.seq
    }
    fn timestamp_ns(&self) -> Option<u64> {
        self.timestamp_ns
    }
    fn meta(&self) -> &[u8] {
        &self.meta
    }
}

/// Declares `Frame` (one variant per element type) and `Leased` for each type.
macro_rules! frames {
    ($($v:ident: $t:ty),*) => {
        /// What a `Lease` owns. A received slot is held inline, one variant per element type (no
        /// allocation per item: this runs once per received array); a frame's copy, boxed.
        pub enum Frame {
            $($v(ReadLease<$t, IxDyn>),)*
            Copied(Box<dyn FrameInfo>),
        }

        impl Frame {
            /// Its sequence number, timestamp and metadata.
            pub fn info(&self) -> &dyn FrameInfo {
                match self {
                    $(Frame::$v(l) => l,)*
                    Frame::Copied(c) => &**c,
                }
            }
        }

        $(impl Leased for $t {
            fn frame(lease: ReadLease<Self, IxDyn>) -> Frame {
                Frame::$v(lease)
            }
        })*
    };
}

/// An element type whose leases a `Frame` holds inline.
pub trait Leased: PyElement {
    /// `lease` as a `Frame`.
    fn frame(lease: ReadLease<Self, IxDyn>) -> Frame;
}

frames!(U8: u8, U16: u16, U32: u32, U64: u64, I8: i8, I16: i16, I32: i32, I64: i64, F32: f32,
    F64: f64, F16: ndring::half::f16, BF16: ndring::half::bf16,
    C64: ndring::num_complex::Complex<f32>, C128: ndring::num_complex::Complex<f64>,
    Bool: ndring::Bool8);

//! Element types: plain-old-data numbers with a stable code stored in the segment header.

use std::fmt;

use num_complex::Complex;

/// The element type of a ring, as recorded in its header.
///
/// The numeric codes are part of the on-disk format (see `ARCHITECTURE.md`) and never change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum DType {
    /// `u8`
    U8 = 1,
    /// `u16`
    U16 = 2,
    /// `u32`
    U32 = 3,
    /// `u64`
    U64 = 4,
    /// `i8`
    I8 = 5,
    /// `i16`
    I16 = 6,
    /// `i32`
    I32 = 7,
    /// `i64`
    I64 = 8,
    /// `f32`
    F32 = 9,
    /// `f64`
    F64 = 10,
    /// [`half::f16`]: IEEE 754 binary16 (numpy `float16`).
    F16 = 11,
    /// [`half::bf16`]: bfloat16, the top 16 bits of an IEEE 754 binary32 (`ml_dtypes.bfloat16`).
    BF16 = 12,
    /// [`num_complex::Complex<f32>`]: a (re, im) pair of `f32` (numpy `complex64`).
    C64 = 13,
    /// [`num_complex::Complex<f64>`]: a (re, im) pair of `f64` (numpy `complex128`).
    C128 = 14,
    /// [`Bool8`]: a boolean in one byte, any nonzero byte true (numpy `bool`).
    Bool = 15,
}

impl DType {
    /// Every element type, in code order.
    ///
    /// ```
    /// assert!(ndring::DType::ALL.iter().enumerate().all(|(i, d)| d.code() == i as u32 + 1));
    /// ```
    pub const ALL: [DType; 15] = {
        use DType::*;
        [
            U8, U16, U32, U64, I8, I16, I32, I64, F32, F64, F16, BF16, C64, C128, Bool,
        ]
    };

    /// The type with this header code, if any.
    ///
    /// ```
    /// assert_eq!(ndring::DType::from_code(9), Some(ndring::DType::F32));
    /// assert_eq!(ndring::DType::from_code(0), None);
    /// ```
    pub fn from_code(code: u32) -> Option<DType> {
        use DType::*;
        Some(match code {
            1 => U8,
            2 => U16,
            3 => U32,
            4 => U64,
            5 => I8,
            6 => I16,
            7 => I32,
            8 => I64,
            9 => F32,
            10 => F64,
            11 => F16,
            12 => BF16,
            13 => C64,
            14 => C128,
            15 => Bool,
            _ => return None,
        })
    }

    /// The header code.
    ///
    /// ```
    /// assert_eq!(ndring::DType::U8.code(), 1);
    /// ```
    pub const fn code(self) -> u32 {
        self as u32
    }

    /// Size of one element in bytes.
    ///
    /// ```
    /// assert_eq!(ndring::DType::F64.size(), 8);
    /// ```
    pub const fn size(self) -> usize {
        use DType::*;
        match self {
            U8 | I8 | Bool => 1,
            U16 | I16 | F16 | BF16 => 2,
            U32 | I32 | F32 => 4,
            U64 | I64 | F64 | C64 => 8,
            C128 => 16,
        }
    }

    /// Alignment of one element in bytes, as recorded in the header: its size for the real
    /// types, the size of one part for the complex ones (`c64` 4, `c128` 8). Every slot's payload
    /// starts on a 128-byte line, so any element is aligned at least this much.
    ///
    /// ```
    /// assert_eq!(ndring::DType::U16.align(), 2);
    /// assert_eq!((ndring::DType::C64.size(), ndring::DType::C64.align()), (8, 4));
    /// ```
    pub const fn align(self) -> usize {
        match self {
            DType::C64 => 4,
            DType::C128 => 8,
            d => d.size(),
        }
    }

    /// The short name of the type: the Rust primitive's for the integers and floats, `f16`,
    /// `bf16`, `c64` and `c128` (numpy's bit counts: a `c64` is two `f32`), and `bool`.
    ///
    /// ```
    /// assert_eq!(ndring::DType::I32.name(), "i32");
    /// assert_eq!(ndring::DType::C128.name(), "c128");
    /// ```
    pub const fn name(self) -> &'static str {
        use DType::*;
        match self {
            U8 => "u8",
            U16 => "u16",
            U32 => "u32",
            U64 => "u64",
            I8 => "i8",
            I16 => "i16",
            I32 => "i32",
            I64 => "i64",
            F32 => "f32",
            F64 => "f64",
            F16 => "f16",
            BF16 => "bf16",
            C64 => "c64",
            C128 => "c128",
            Bool => "bool",
        }
    }

    /// The type with this [`name`](DType::name), if any.
    ///
    /// ```
    /// assert_eq!(ndring::DType::from_name("bf16"), Some(ndring::DType::BF16));
    /// assert_eq!(ndring::DType::from_name("float32"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == name)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A type that can be an element of a ring's arrays: a [`bytemuck::Pod`] number with a [`DType`]:
/// `u8`…`u64`, `i8`…`i64`, `f32`, `f64`, [`half::f16`], [`half::bf16`],
/// [`Complex<f32>`](num_complex::Complex), [`Complex<f64>`](num_complex::Complex) and [`Bool8`].
/// [`with_dtype!`](crate::with_dtype) picks the one of a run-time [`DType`].
///
/// Sealed: the header can only describe the types listed in [`DType`].
pub trait Element: bytemuck::Pod + Send + Sync + sealed::Sealed {
    /// This type's code in the header.
    const DTYPE: DType;
}

macro_rules! element {
    ($($t:ty => $d:ident),*) => {$(
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: DType = DType::$d;
        }
        // The header's size is the type's, and its alignment at least the type's (so a payload
        // aligned as the header says is aligned for the type).
        const _: () = assert!(
            size_of::<$t>() == DType::$d.size() && align_of::<$t>() <= DType::$d.align()
        );
    )*};
}

element!(u8 => U8, u16 => U16, u32 => U32, u64 => U64, i8 => I8, i16 => I16, i32 => I32,
    i64 => I64, f32 => F32, f64 => F64, half::f16 => F16, half::bf16 => BF16,
    Complex<f32> => C64, Complex<f64> => C128, Bool8 => Bool);

/// A boolean in one byte: the element type of [`DType::Bool`] rings.
///
/// A ring's bytes are written by other processes, and a Rust `bool` over a byte that is neither
/// 0 nor 1 is undefined behaviour, so rings of booleans hold `Bool8`s instead: every byte value
/// is a valid `Bool8`, 0 reads as false and **any nonzero byte as true**. ndring writes 0 and 1,
/// as numpy's `bool` does; [`Bool8::to_byte`] gives the byte as stored.
///
/// Equality and hashing follow the truth value, so `Bool8::from_byte(2) == Bool8::TRUE`.
///
/// ```
/// use ndring::Bool8;
/// let b = Bool8::from(true);
/// assert!(b.get() && b == true && b.to_byte() == 1);
/// assert!(Bool8::from_byte(0x80).get() && !Bool8::from_byte(0).get());
/// assert_eq!(Bool8::from_byte(0x80), Bool8::TRUE);
/// ```
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(transparent)]
pub struct Bool8(u8);

impl Bool8 {
    /// False: the byte 0.
    pub const FALSE: Bool8 = Bool8(0);
    /// True: the byte 1.
    pub const TRUE: Bool8 = Bool8(1);

    /// `b` as a byte, 0 or 1.
    pub const fn new(b: bool) -> Bool8 {
        Bool8(b as u8)
    }

    /// The truth value: `true` for any nonzero byte.
    pub const fn get(self) -> bool {
        self.0 != 0
    }

    /// The `Bool8` of this byte, as stored (any value; nonzero reads as true).
    pub const fn from_byte(byte: u8) -> Bool8 {
        Bool8(byte)
    }

    /// The byte as stored.
    pub const fn to_byte(self) -> u8 {
        self.0
    }
}

impl From<bool> for Bool8 {
    fn from(b: bool) -> Bool8 {
        Bool8::new(b)
    }
}

impl From<Bool8> for bool {
    fn from(b: Bool8) -> bool {
        b.get()
    }
}

impl PartialEq for Bool8 {
    fn eq(&self, other: &Bool8) -> bool {
        self.get() == other.get()
    }
}

impl Eq for Bool8 {}

impl PartialEq<bool> for Bool8 {
    fn eq(&self, other: &bool) -> bool {
        self.get() == *other
    }
}

impl std::hash::Hash for Bool8 {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.get().hash(state)
    }
}

impl fmt::Debug for Bool8 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.get(), f)
    }
}

impl fmt::Display for Bool8 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.get(), f)
    }
}

/// Runs code generic over a ring's element type chosen at run time: `with_dtype!(dtype, T =>
/// body)` evaluates `body` with `T` a type alias for the [`Element`] of `dtype` (a [`DType`]).
///
/// It expands in place to a `match` with one arm per type, so `body` may use `?`, `return`,
/// `break` and the caller's borrows, and every arm must have the same type. This is the one
/// mapping from [`DType`] to Rust types: code written with it carries every element type,
/// including those added later. The types it names are reached through ndring
/// ([`ndring::half`](crate::half), [`ndring::num_complex`](crate::num_complex), [`Bool8`]), so the
/// calling crate needs no dependency of its own on them.
///
/// ```
/// use ndarray::IxDyn;
/// use ndring::{Config, Consumer, Element, Producer, Segment, with_dtype};
/// # let name = format!("/ndr-doc-dispatch-{}", std::process::id());
/// # let _tx = Producer::<ndring::half::f16, IxDyn>::create(&name, vec![2, 3], &Config::spsc())?;
///
/// fn attach<T: Element>(seg: Segment) -> ndring::Result<String> {
///     let rx = Consumer::<T, IxDyn>::from_segment(seg)?;
///     Ok(format!("{} {:?}", T::DTYPE, rx.segment().shape()))
/// }
///
/// // A ring of any element type, attached as a typed consumer.
/// let seg = Segment::open(&name, std::time::Duration::from_secs(1))?;
/// let described = with_dtype!(seg.dtype(), T => attach::<T>(seg)?);
/// assert_eq!(described, "f16 [2, 3]");
///
/// // The body may be any expression of the alias.
/// for d in ndring::DType::ALL {
///     assert_eq!(with_dtype!(d, T => size_of::<T>()), d.size());
/// }
/// # Ok::<(), ndring::Error>(())
/// ```
#[macro_export]
macro_rules! with_dtype {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::DType::U8 => {
                type $T = ::core::primitive::u8;
                $body
            }
            $crate::DType::U16 => {
                type $T = ::core::primitive::u16;
                $body
            }
            $crate::DType::U32 => {
                type $T = ::core::primitive::u32;
                $body
            }
            $crate::DType::U64 => {
                type $T = ::core::primitive::u64;
                $body
            }
            $crate::DType::I8 => {
                type $T = ::core::primitive::i8;
                $body
            }
            $crate::DType::I16 => {
                type $T = ::core::primitive::i16;
                $body
            }
            $crate::DType::I32 => {
                type $T = ::core::primitive::i32;
                $body
            }
            $crate::DType::I64 => {
                type $T = ::core::primitive::i64;
                $body
            }
            $crate::DType::F32 => {
                type $T = ::core::primitive::f32;
                $body
            }
            $crate::DType::F64 => {
                type $T = ::core::primitive::f64;
                $body
            }
            $crate::DType::F16 => {
                type $T = $crate::half::f16;
                $body
            }
            $crate::DType::BF16 => {
                type $T = $crate::half::bf16;
                $body
            }
            $crate::DType::C64 => {
                type $T = $crate::num_complex::Complex<::core::primitive::f32>;
                $body
            }
            $crate::DType::C128 => {
                type $T = $crate::num_complex::Complex<::core::primitive::f64>;
                $body
            }
            $crate::DType::Bool => {
                type $T = $crate::Bool8;
                $body
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in 0..64 {
            if let Some(d) = DType::from_code(code) {
                assert_eq!(d.code(), code);
                assert_eq!(DType::ALL[code as usize - 1], d);
                assert!(d.size().is_power_of_two() && d.align().is_power_of_two());
                assert_eq!(d.size() % d.align(), 0);
                assert_eq!(DType::from_name(d.name()), Some(d));
            } else {
                assert!(code == 0 || code > 15);
            }
        }
        assert_eq!(<f32 as Element>::DTYPE, DType::F32);
        assert_eq!(<i16 as Element>::DTYPE.size(), 2);
    }

    /// The on-disk codes of the types added after the first ten (never to change).
    #[test]
    fn codes_are_fixed() {
        let fixed = [
            (DType::F16, 11, "f16", 2, 2),
            (DType::BF16, 12, "bf16", 2, 2),
            (DType::C64, 13, "c64", 8, 4),
            (DType::C128, 14, "c128", 16, 8),
            (DType::Bool, 15, "bool", 1, 1),
        ];
        for (d, code, name, size, align) in fixed {
            assert_eq!(
                (d.code(), d.name(), d.size(), d.align()),
                (code, name, size, align)
            );
        }
    }

    /// `with_dtype!` gives each dtype the Rust type whose `DTYPE`, size and alignment it has.
    #[test]
    fn dispatch_maps_each_dtype_to_its_type() {
        for d in DType::ALL {
            let (dtype, size, align) =
                crate::with_dtype!(d, T => (T::DTYPE, size_of::<T>(), align_of::<T>()));
            assert_eq!((dtype, size), (d, d.size()));
            assert!(align <= d.align());
        }
    }

    #[test]
    fn bool8_reads_any_nonzero_byte_as_true() {
        for b in 0..=255u8 {
            let v = Bool8::from_byte(b);
            assert_eq!((v.get(), v.to_byte()), (b != 0, b));
            assert_eq!(bool::from(v), b != 0);
            assert_eq!(v == Bool8::TRUE, b != 0);
        }
        assert_eq!(Bool8::from(true).to_byte(), 1);
        assert_eq!(Bool8::from(false).to_byte(), 0);
        assert_eq!(Bool8::default(), false);
        assert_eq!(
            format!("{:?} {}", Bool8::from_byte(7), Bool8::FALSE),
            "true false"
        );
    }
}

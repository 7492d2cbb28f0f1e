//! Element types: plain-old-data numbers with a stable code stored in the segment header.

use std::fmt;

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
}

impl DType {
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
            _ => return None,
        })
    }

    /// The header code.
    ///
    /// ```
    /// assert_eq!(ndring::DType::U8.code(), 1);
    /// ```
    pub fn code(self) -> u32 {
        self as u32
    }

    /// Size of one element in bytes.
    ///
    /// ```
    /// assert_eq!(ndring::DType::F64.size(), 8);
    /// ```
    pub fn size(self) -> usize {
        use DType::*;
        match self {
            U8 | I8 => 1,
            U16 | I16 => 2,
            U32 | I32 | F32 => 4,
            U64 | I64 | F64 => 8,
        }
    }

    /// Alignment of one element in bytes (equal to its size for every supported type).
    ///
    /// ```
    /// assert_eq!(ndring::DType::U16.align(), 2);
    /// ```
    pub fn align(self) -> usize {
        self.size()
    }

    /// The Rust (and numpy) name of the type.
    ///
    /// ```
    /// assert_eq!(ndring::DType::I32.name(), "i32");
    /// ```
    pub fn name(self) -> &'static str {
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
        }
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

/// A type that can be an element of a ring's arrays: a [`bytemuck::Pod`] number with a [`DType`].
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
        const _: () = assert!(std::mem::size_of::<$t>() == DType::$d as usize * 0 + {
            match DType::$d { DType::U8 | DType::I8 => 1, DType::U16 | DType::I16 => 2,
                DType::U32 | DType::I32 | DType::F32 => 4, _ => 8 }
        });
    )*};
}

element!(u8 => U8, u16 => U16, u32 => U32, u64 => U64, i8 => I8, i16 => I16, i32 => I32,
    i64 => I64, f32 => F32, f64 => F64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in 0..16 {
            if let Some(d) = DType::from_code(code) {
                assert_eq!(d.code(), code);
                assert!(d.size().is_power_of_two());
            } else {
                assert!(code == 0 || code > 10);
            }
        }
        assert_eq!(<f32 as Element>::DTYPE, DType::F32);
        assert_eq!(<i16 as Element>::DTYPE.size(), 2);
    }
}

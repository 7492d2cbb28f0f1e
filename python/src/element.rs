//! ndring's element types as numpy holds them: for each [`DType`] (through the library's one
//! dispatch, `ndring::with_dtype!`) the numpy element type with the same bytes, numpy's dtype
//! name, and what a reader does with bytes numpy would not store itself.
//!
//! Every type is its own numpy element (`half::f16` is numpy's `float16`, `Complex<f32>` its
//! `complex64`, ...) except two:
//! - `bool`: the ring holds `ndring::Bool8`, a byte any value of which is valid (a Rust `bool`
//!   over bytes another process writes would be undefined behaviour for bytes other than 0 and
//!   1), and numpy's `bool` is a byte too but canonically 0 or 1. The binding's arrays are of
//!   [`NumpyBool`], a byte with numpy's `bool` dtype, never a Rust `bool`. A reader sees any
//!   nonzero byte as `True` (what `Bool8` says): an item whose bytes are all 0 or 1 is handed
//!   out as stored (zero copy); one holding another byte (only a writer that stores raw bytes,
//!   e.g. Rust's `Bool8::from_byte(2)`, makes one) is handed out as a copy made canonical, 0 or
//!   1 (see [`PyElement::canonical_bytes`]).
//! - `bfloat16`: numpy has no such type; `ml_dtypes.bfloat16` is one, and rust-numpy's `bf16`
//!   element looks it up by name, which works only once `ml_dtypes` is imported. [`descr`]
//!   imports it first and says so when it is missing, rather than letting rust-numpy panic.

use ndarray::{ArrayView, ArrayViewMut, IxDyn};
use ndring::DType;
use numpy::PyArrayDescr;
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::exceptions::invalid_type;

/// numpy's `bool` over the bytes of an `ndring::Bool8`: every byte value is valid (unlike a Rust
/// `bool`), and its dtype is numpy's builtin `bool`.
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(transparent)]
pub struct NumpyBool(u8);

// SAFETY: a plain byte (`IS_COPY`: no Python objects), with the dtype of the same size and
// alignment, numpy's builtin `bool` (numpy's own `bool` element, whose descriptor this is). numpy
// may store any byte in it; every byte is a valid `NumpyBool`.
unsafe impl numpy::Element for NumpyBool {
    const IS_COPY: bool = true;

    fn get_dtype(py: Python<'_>) -> Bound<'_, PyArrayDescr> {
        numpy::dtype::<bool>(py)
    }

    fn clone_ref(&self, _py: Python<'_>) -> Self {
        *self
    }
}

/// An ndring element type with the numpy element type a binding's array of it holds.
pub trait PyElement: ndring::Element {
    /// A numpy element type of the same size and alignment for which, as for `Self`, every bit
    /// pattern is valid: `Self`, or [`NumpyBool`] for `Bool8`.
    type Np: numpy::Element + bytemuck::Pod;

    /// numpy's name of the dtype.
    const NUMPY: &'static str;

    /// Whether numpy reads every value a writer may store as it is (false for `bool`: numpy's is
    /// 0 or 1, a writer may store any byte).
    const ANY_BYTES: bool = true;

    /// Whether the values in `items` are already what numpy stores (always, but for `bool`: every
    /// byte 0 or 1). A word-at-a-time scan for `bool`.
    fn canonical_bytes(_items: &[Self]) -> bool {
        true
    }

    /// `x` in numpy's canonical form (`bool`: any nonzero byte as 1).
    fn canonical(x: Self::Np) -> Self::Np {
        x
    }

    /// The dtype (for `bfloat16`, importing `ml_dtypes`: `ndring.InvalidType` where it is not
    /// installed).
    fn descr(py: Python<'_>) -> PyResult<Bound<'_, PyArrayDescr>> {
        Ok(<Self::Np as numpy::Element>::get_dtype(py))
    }
}

macro_rules! py_element {
    ($($t:ty => $np:ty, $name:literal;)*) => {$(
        impl PyElement for $t {
            type Np = $np;
            const NUMPY: &'static str = $name;
        }
        const _: () = assert!(
            size_of::<$t>() == size_of::<$np>() && align_of::<$t>() == align_of::<$np>()
        );
    )*};
}

py_element! {
    u8 => u8, "uint8";
    u16 => u16, "uint16";
    u32 => u32, "uint32";
    u64 => u64, "uint64";
    i8 => i8, "int8";
    i16 => i16, "int16";
    i32 => i32, "int32";
    i64 => i64, "int64";
    f32 => f32, "float32";
    f64 => f64, "float64";
    ndring::half::f16 => ndring::half::f16, "float16";
    ndring::num_complex::Complex<f32> => ndring::num_complex::Complex<f32>, "complex64";
    ndring::num_complex::Complex<f64> => ndring::num_complex::Complex<f64>, "complex128";
}

impl PyElement for ndring::half::bf16 {
    type Np = ndring::half::bf16;
    const NUMPY: &'static str = "bfloat16";

    fn descr(py: Python<'_>) -> PyResult<Bound<'_, PyArrayDescr>> {
        // rust-numpy finds `bfloat16` by name (and panics where it cannot): only once
        // `ml_dtypes` has registered it.
        if let Err(e) = py.import("ml_dtypes") {
            return Err(invalid_type(
                py,
                format!("{BF16_NEEDS} (importing it failed: {e})"),
            ));
        }
        Ok(<Self::Np as numpy::Element>::get_dtype(py))
    }
}

impl PyElement for ndring::Bool8 {
    type Np = NumpyBool;
    const NUMPY: &'static str = "bool";
    const ANY_BYTES: bool = false;

    fn canonical_bytes(items: &[Self]) -> bool {
        let bytes: &[u8] = bytemuck::cast_slice(items);
        // Any bit but the lowest set in any byte, ORed over aligned words in eight independent
        // lanes (a slot's payload is 128-aligned): vector ORs at the speed of a word sum.
        let (head, words, tail) = bytemuck::pod_align_to::<u8, u64>(bytes);
        let mut lanes = [0u64; 8];
        let chunks = words.chunks_exact(8);
        let rest = chunks.remainder();
        for chunk in chunks {
            for (lane, &w) in lanes.iter_mut().zip(chunk) {
                *lane |= w;
            }
        }
        let high_words = lanes.iter().chain(rest).fold(0, |acc, &w| acc | w);
        let high_bytes = head.iter().chain(tail).fold(0, |acc, &b| acc | b);
        high_words & 0xfefe_fefe_fefe_fefe == 0 && high_bytes & 0xfe == 0
    }

    fn canonical(x: NumpyBool) -> NumpyBool {
        NumpyBool((x.0 != 0) as u8)
    }
}

/// What a `bfloat16` ring needs in this process.
const BF16_NOTE: &str = "bfloat16 (with ml_dtypes)";
const BF16_NEEDS: &str = "bfloat16 rings need the ml_dtypes package (pip install ml_dtypes), \
                          whose ml_dtypes.bfloat16 is numpy's dtype for them";

/// numpy's name of an element type.
pub fn numpy_name(t: DType) -> &'static str {
    ndring::with_dtype!(t, T => T::NUMPY)
}

/// The element type numpy calls `name`.
pub fn from_numpy_name(name: &str) -> Option<DType> {
    DType::ALL.into_iter().find(|&t| numpy_name(t) == name)
}

/// The dtype of `t` (`ndring.InvalidType` for `bfloat16` without `ml_dtypes`).
pub fn descr(py: Python<'_>, t: DType) -> PyResult<Bound<'_, PyArrayDescr>> {
    ndring::with_dtype!(t, T => T::descr(py))
}

/// The element types, for messages: "uint8, uint16, ..., complex128 or bool".
pub fn supported() -> String {
    let names: Vec<&str> = DType::ALL
        .iter()
        .map(|&t| match t {
            DType::BF16 => BF16_NOTE,
            t => numpy_name(t),
        })
        .collect();
    let (last, rest) = names.split_last().expect("DType::ALL is not empty");
    format!("ndring rings hold {} or {last} elements", rest.join(", "))
}

/// The message for a `bfloat16` dtype numpy did not understand (no `ml_dtypes` imported), if
/// `dtype` names it; imports `ml_dtypes` when it is installed, so that numpy understands it.
pub fn bfloat16_by_name(py: Python<'_>, dtype: &Bound<'_, PyAny>) -> Option<PyResult<()>> {
    let s = dtype.cast::<PyString>().ok()?.to_cow().ok()?;
    if s != "bfloat16" {
        return None;
    }
    Some(match py.import("ml_dtypes") {
        Ok(_) => Ok(()),
        Err(e) => Err(invalid_type(
            py,
            format!("dtype \"bfloat16\": {BF16_NEEDS} (importing it failed: {e})"),
        )),
    })
}

/// `{numpy name: ndring name}` of every element type (`{"float16": "f16", "bool": "bool", ...}`),
/// for `python -m ndring ls`, which prints the library's names as `ndring ls` does.
#[pyfunction]
pub fn _dtype_names(py: Python<'_>) -> PyResult<Bound<'_, pyo3::types::PyDict>> {
    let d = pyo3::types::PyDict::new(py);
    for t in DType::ALL {
        d.set_item(numpy_name(t), t.name())?;
    }
    Ok(d)
}

/// A slot's items as numpy's element type (same bytes).
pub fn np_view<'a, T: PyElement>(v: ArrayView<'a, T, IxDyn>) -> ArrayView<'a, T::Np, IxDyn> {
    let dim = v.raw_dim();
    let items = v.to_slice().expect("a slot's items are in C order");
    ArrayView::from_shape(dim, bytemuck::cast_slice(items)).expect("the same shape")
}

/// A claimed slot's items as numpy's element type (same bytes).
pub fn np_view_mut<'a, T: PyElement>(
    v: ArrayViewMut<'a, T, IxDyn>,
) -> ArrayViewMut<'a, T::Np, IxDyn> {
    let dim = v.raw_dim();
    let items = v.into_slice().expect("a slot's items are in C order");
    ArrayViewMut::from_shape(dim, bytemuck::cast_slice_mut(items)).expect("the same shape")
}

/// Copies `src` into `dst` (same shape) as stored, as one memcpy when both are contiguous: what
/// a writer stores (a `bool` byte other than 0 or 1 too; Rust's `Bool8` reads any byte).
pub fn copy_into<N: Copy>(dst: &mut ArrayViewMut<'_, N, IxDyn>, src: &ArrayView<'_, N, IxDyn>) {
    match (dst.as_slice_mut(), src.as_slice()) {
        (Some(d), Some(s)) => d.copy_from_slice(s),
        _ => dst.assign(src),
    }
}

/// Copies a received item `src` into `dst` (same shape) as a reader sees it: canonical (see
/// [`PyElement::canonical`]).
pub fn copy_out<T: PyElement>(
    dst: &mut ArrayViewMut<'_, T::Np, IxDyn>,
    src: &ArrayView<'_, T::Np, IxDyn>,
) {
    if T::ANY_BYTES {
        copy_into(dst, src);
    } else {
        dst.zip_mut_with(src, |d, &s| *d = T::canonical(s));
    }
}

/// `items` copied out as numpy's element type, canonical.
pub fn to_np_vec<T: PyElement>(items: impl Iterator<Item = T>) -> Vec<T::Np> {
    items
        .map(|x| T::canonical(bytemuck::cast::<T, T::Np>(x)))
        .collect()
}

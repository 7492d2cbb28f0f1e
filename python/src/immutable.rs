//! Makes the module's `#[pyclass]` types immutable, as built-in types are, so that no one can
//! replace `__new__` and get an instance whose Rust contents were never written:
//! `Claim.__new__ = staticmethod(lambda cls: object.__new__(cls)); Claim()` gives zeroed
//! memory, and zero is not a valid value of every field (an `Option<Vec<u8>>` reads as
//! `Some` with a null pointer). With the type immutable, `__new__` cannot be replaced, and
//! `object.__new__(Claim)` is refused ("not safe") because the type's own `tp_new` differs.
//!
//! pyo3 sets `Py_TPFLAGS_IMMUTABLETYPE` itself only outside the limited API on 3.10–3.13, or
//! through `PyType_Freeze` on 3.14 builds. Under `abi3-py39`, `#[pyclass(immutable_type)]` is a
//! compile error, so the flag is set here, once the types are complete. That is what pyo3 does
//! on 3.10–3.13: OR the flag into `tp_flags`, then `PyType_Modified`. The limited API has no
//! setter (before 3.14's `PyType_Freeze`), so the field is reached at its offset in
//! `PyTypeObject`. The offset is the same in every CPython from 3.9 to 3.14 (release and debug
//! builds without `Py_TRACE_REFS`, with the GIL). It is checked before writing: the word there must
//! equal what `PyType_GetFlags` (stable ABI) returns, or nothing is written. Python 3.9 has no
//! such flag: there the types stay mutable, as every heap type of 3.9 is (`ndring.Lease`'s own
//! guard is in `lease_object`).

use std::ffi::c_ulong;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyType;

use crate::lease_object::IMMUTABLETYPE;

/// Offset of `tp_flags` in `PyTypeObject`: after the variable-size object header (3 words)
/// and 18 pointer-sized fields (`tp_name` to `tp_as_buffer`).
const TP_FLAGS_OFFSET: usize = 21 * std::mem::size_of::<usize>();

/// Makes `ty` immutable (Python 3.10+). Leaves it as it is on 3.9, or where the word at the
/// offset is not `tp_flags` (an interpreter built otherwise): mutable, as every 3.9 heap type.
pub fn make_immutable(py: Python<'_>, ty: &Bound<'_, PyType>) -> PyResult<()> {
    if py.version_info() < (3, 10) {
        return Ok(());
    }
    let raw = ty.as_type_ptr();
    // SAFETY: `raw` is a live type object (we hold a reference); the GIL is held.
    let flags = unsafe { ffi::PyType_GetFlags(raw) };
    if flags & IMMUTABLETYPE != 0 {
        return Ok(());
    }
    // The object is at least its metatype's basic size (`type`'s: a whole `PyHeapTypeObject`).
    let size: usize = ty.get_type().getattr("__basicsize__")?.extract()?;
    if size < TP_FLAGS_OFFSET + std::mem::size_of::<c_ulong>() {
        return Ok(());
    }
    // SAFETY: the word read lies inside the type object (checked against its size just above);
    // type objects are pointer-aligned, and so is the offset. It is written only if it holds
    // the type's flags, i.e. it is `tp_flags`, with the GIL held, as pyo3 and CPython's own
    // `PyType_Freeze` do; `PyType_Modified` then drops what caches derived from the type.
    unsafe {
        let field = raw.cast::<u8>().add(TP_FLAGS_OFFSET).cast::<c_ulong>();
        if field.read() != flags {
            return Ok(());
        }
        field.write(flags | IMMUTABLETYPE);
        ffi::PyType_Modified(raw);
    }
    Ok(())
}

//! User metadata of runtime size.
//!
//! ndring reads and writes a slot's metadata as a `bytemuck::Pod` value whose size is known at
//! compile time; the bridge learns the size from the ring at run time, so it picks the byte array
//! `[u8; N]` of the size it needs from a fixed menu: every multiple of 8 up to 256, then powers of
//! two up to 4096. A ring whose metadata room is not on the menu carries the longest prefix that
//! is.

use ndarray::Dimension;
use ndring::{Element, ReadSlot, WriteSlot};

/// The sizes on the menu, ascending (the same list as in `dispatch!`).
const MENU: &[usize] = &[
    0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120, 128, 136, 144, 152, 160, 168,
    176, 184, 192, 200, 208, 216, 224, 232, 240, 248, 256, 512, 1024, 2048, 4096,
];

/// Calls `f::<N, _, _>(args)` with `N` the (menu) size given at run time.
macro_rules! dispatch {
    ($len:expr, $f:ident $args:tt) => {
        dispatch!(@ $len, $f $args, [0 8 16 24 32 40 48 56 64 72 80 88 96 104 112 120 128 136
            144 152 160 168 176 184 192 200 208 216 224 232 240 248 256 512 1024 2048 4096])
    };
    (@ $len:expr, $f:ident $args:tt, [$($n:literal)*]) => {
        match $len {
            $( $n => $f::<$n, _, _> $args, )*
            other => unreachable!("{other} is not on the menu"),
        }
    };
}

/// The largest menu size not above `len`.
pub(crate) fn menu_size(len: usize) -> usize {
    MENU.iter()
        .copied()
        .filter(|&n| n <= len)
        .max()
        .unwrap_or(0)
}

fn read_n<const N: usize, T: Element, D: Dimension>(slot: &ReadSlot<'_, T, D>, out: &mut Vec<u8>) {
    // N <= the ring's room (menu_size of it), so user_meta cannot fail.
    let bytes: [u8; N] = slot.user_meta().unwrap_or([0; N]);
    out.extend_from_slice(&bytes);
}

fn write_n<const N: usize, T: Element, D: Dimension>(
    slot: &mut WriteSlot<'_, T, D>,
    meta: &[u8],
) -> ndring::Result<()> {
    let mut bytes = [0u8; N];
    let n = meta.len().min(N);
    bytes[..n].copy_from_slice(&meta[..n]);
    slot.set_user_meta(&bytes)
}

/// Appends the slot's metadata (the first `menu_size(room)` bytes) to `out`.
pub(crate) fn read<T: Element, D: Dimension>(
    slot: &ReadSlot<'_, T, D>,
    room: usize,
    out: &mut Vec<u8>,
) {
    dispatch!(menu_size(room), read_n(slot, out))
}

/// Writes `meta` (cut to the ring's room) into the slot's metadata.
pub(crate) fn write<T: Element, D: Dimension>(
    slot: &mut WriteSlot<'_, T, D>,
    room: usize,
    meta: &[u8],
) -> ndring::Result<()> {
    // The smallest menu size holding `meta`, unless the room is smaller.
    let want = MENU
        .iter()
        .copied()
        .find(|&n| n >= meta.len())
        .unwrap_or(4096);
    dispatch!(want.min(menu_size(room)), write_n(slot, meta))
}

#[cfg(test)]
mod tests {
    #[test]
    fn menu() {
        assert_eq!(super::menu_size(64), 64);
        assert_eq!(super::menu_size(70), 64);
        assert_eq!(super::menu_size(5000), 4096);
        assert_eq!(super::menu_size(3), 0);
        // Every size on the menu dispatches (the two lists agree).
        fn size<const N: usize, A, B>(_: A, _: B) -> usize {
            N
        }
        for &n in super::MENU {
            assert_eq!(dispatch!(n, size((), ())), n);
        }
    }
}

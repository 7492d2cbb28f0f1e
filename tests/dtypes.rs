//! The element types beyond the integers and f32/f64 (f16, bf16, complex64, complex128, bool)
//! across real processes, byte-exact: every f16 and bf16 bit pattern (NaN payloads, signalling
//! NaNs, subnormals, infinities, -0), complex pairs of such f32/f64 values, and every byte
//! 0..=255 in a `Bool8` ring go to a child process that knows only the ring's name (it picks
//! the type with `with_dtype!`) and come back unchanged.

mod common;

use std::time::Duration;

use common::{RemoveOnDrop, finish, name, spawn, trial};
use ndarray::{ArrayD, IxDyn};
use ndring::half::{bf16, f16};
use ndring::num_complex::Complex;
use ndring::{Bool8, Config, Consumer, DType, Element, Producer, Segment, with_dtype};

const LONG: Duration = Duration::from_secs(120);

/// Items sent through each ring (the pattern, then each element moved one place along).
const ITEMS: usize = 3;

fn main() -> std::process::ExitCode {
    common::main(
        &[("echo", echo)],
        vec![
            trial("f16_every_bit_pattern_crosses_processes", || {
                round_trip::<f16>("f16", (0..=u16::MAX).map(f16::from_bits).collect())
            }),
            trial("bf16_every_bit_pattern_crosses_processes", || {
                round_trip::<bf16>("bf16", (0..=u16::MAX).map(bf16::from_bits).collect())
            }),
            trial("complex64_special_pairs_cross_processes", || {
                let v = F32_SPECIAL.map(f32::from_bits);
                round_trip::<Complex<f32>>("c64", pairs(&v))
            }),
            trial("complex128_special_pairs_cross_processes", || {
                let v = F64_SPECIAL.map(f64::from_bits);
                round_trip::<Complex<f64>>("c128", pairs(&v))
            }),
            trial("bool8_every_byte_crosses_processes_unchanged", || {
                round_trip::<Bool8>("bool", (0..=u8::MAX).map(Bool8::from_byte).collect())
            }),
        ],
    )
}

/// f32 bit patterns a copy through a float register could change or a conversion could lose.
const F32_SPECIAL: [u32; 16] = [
    0x0000_0000, // +0
    0x8000_0000, // -0
    0x0000_0001, // smallest subnormal
    0x807f_ffff, // largest negative subnormal
    0x0080_0000, // smallest normal
    0x7f7f_ffff, // largest finite
    0x7f80_0000, // +inf
    0xff80_0000, // -inf
    0x7fc0_0000, // quiet NaN
    0x7fc0_0001, // quiet NaN with a payload
    0xffc1_2345, // negative quiet NaN with a payload
    0x7f80_0001, // signalling NaN, smallest payload
    0x7fbf_ffff, // signalling NaN, largest payload
    0xff80_0001, // negative signalling NaN
    0x3f80_0000, // 1.0
    0xc049_0fdb, // -pi
];

/// As [`F32_SPECIAL`], for f64.
const F64_SPECIAL: [u64; 16] = [
    0x0000_0000_0000_0000,
    0x8000_0000_0000_0000,
    0x0000_0000_0000_0001,
    0x800f_ffff_ffff_ffff,
    0x0010_0000_0000_0000,
    0x7fef_ffff_ffff_ffff,
    0x7ff0_0000_0000_0000,
    0xfff0_0000_0000_0000,
    0x7ff8_0000_0000_0000,
    0x7ff8_0000_0000_0001,
    0xfff8_1234_5678_9abc,
    0x7ff0_0000_0000_0001,
    0x7ff7_ffff_ffff_ffff,
    0xfff0_0000_0000_0001,
    0x3ff0_0000_0000_0000,
    0xc009_21fb_5444_2d18,
];

/// Every (re, im) pair of `values`.
fn pairs<F: Copy>(values: &[F]) -> Vec<Complex<F>> {
    values
        .iter()
        .flat_map(|&re| values.iter().map(move |&im| Complex::new(re, im)))
        .collect()
}

/// Child: receives every item of ring `a[0]`, whatever its element type, and sends it on
/// through ring `a[1]`, then closes it.
fn echo(a: &[String]) {
    let seg = Segment::open(&a[0], LONG).unwrap();
    with_dtype!(seg.dtype(), T => echo_typed::<T>(seg, &a[1]));
}

fn echo_typed<T: Element>(seg: Segment, back: &str) {
    let mut rx = Consumer::<T, IxDyn>::from_segment(seg).unwrap();
    let mut tx = Producer::<T, IxDyn>::open(back).unwrap();
    loop {
        match rx.recv() {
            Ok(item) => {
                tx.send(&*item).unwrap();
            }
            Err(ndring::Error::Closed) => break,
            Err(e) => panic!("echo: {e}"),
        }
    }
    tx.close();
}

/// Sends `ITEMS` arrangements of `values` to an echoing child and checks each comes back with
/// the same bytes, and that both rings say they hold `T::DTYPE`.
fn round_trip<T: Element>(tag: &str, values: Vec<T>) {
    let (out_name, back_name) = (name(&format!("{tag}-out")), name(&format!("{tag}-bk")));
    let _rm = (
        RemoveOnDrop(out_name.clone()),
        RemoveOnDrop(back_name.clone()),
    );
    let n = values.len();
    let config = Config::spsc().slots(ITEMS + 1);
    let mut tx = Producer::<T, IxDyn>::create(&out_name, vec![n], &config).unwrap();
    let mut rx = Consumer::<T, IxDyn>::create(&back_name, vec![n], &config).unwrap();
    for seg in [tx.segment(), rx.segment()] {
        assert_eq!(seg.dtype(), T::DTYPE);
        assert_eq!(DType::from_code(T::DTYPE.code()), Some(T::DTYPE));
    }
    let child = spawn("echo", &[&out_name, &back_name]);
    let items: Vec<ArrayD<T>> = (0..ITEMS)
        .map(|k| {
            let mut v = values.clone();
            v.rotate_left(k);
            ArrayD::from_shape_vec(IxDyn(&[n]), v).unwrap()
        })
        .collect();
    for item in &items {
        tx.send(item).unwrap();
    }
    tx.close();
    for (k, sent) in items.iter().enumerate() {
        let got = rx.recv_timeout(LONG).unwrap();
        let got: &[u8] = bytemuck::cast_slice(got.as_slice().unwrap());
        let want: &[u8] = bytemuck::cast_slice(sent.as_slice().unwrap());
        if let Some(at) = (0..want.len()).find(|&i| got[i] != want[i]) {
            panic!(
                "{tag} item {k}: byte {at} came back {:#04x}, sent {:#04x}",
                got[at], want[at]
            );
        }
        assert_eq!(got.len(), want.len());
    }
    finish(child, LONG);
}

//! Relays items between a ring of any element type and a ring of their raw bytes, so that
//! another program (the Python tests, `python/tests/test_dtypes.py`) can check byte for byte
//! what a Rust reader got from it and make a Rust writer store exactly the bytes it chooses:
//!
//! ```text
//! dtype_relay to-bytes TYPED BYTES     # each item of TYPED -> its bytes, one item of BYTES
//! dtype_relay from-bytes BYTES TYPED   # each item of BYTES -> one item of TYPED, those bytes
//! ```
//!
//! `TYPED` is a queue ring (SPSC or MPMC) or a broadcast ring of any element type, which the
//! relay learns from its header and picks with `ndring::with_dtype!`; `BYTES` a queue ring of
//! `u8`, shape `[n]`, `n` the typed item's size in bytes. Both rings exist already (their creator
//! holds the writer role of a broadcast `TYPED` only until the relay attaches: create it with
//! `keep`, then detach). The relay prints `TYPED: KIND DTYPE SHAPE` and `ready` once attached,
//! relays until its input is closed, then closes its output.

use std::process::ExitCode;
use std::time::Duration;

use ndarray::{ArrayView, IxDyn};
use ndring::{
    BroadcastWriter, Consumer, Element, Error, Producer, RingKind, Segment, Start, Subscriber,
    with_dtype,
};

const WAIT: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let run = match args.as_slice() {
        [mode, typed, bytes] if mode == "to-bytes" => to_bytes(typed, bytes),
        [mode, bytes, typed] if mode == "from-bytes" => from_bytes(bytes, typed),
        _ => {
            eprintln!("usage: dtype_relay to-bytes TYPED BYTES | from-bytes BYTES TYPED");
            return ExitCode::from(2);
        }
    };
    match run {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dtype_relay: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Opens `name` and says what it holds.
fn typed_segment(name: &str) -> Result<Segment, Error> {
    let seg = Segment::open(name, WAIT)?;
    println!(
        "{name}: {} {} {:?}",
        format!("{:?}", seg.kind()).to_lowercase(),
        seg.dtype(),
        seg.shape()
    );
    Ok(seg)
}

fn to_bytes(typed: &str, bytes: &str) -> Result<(), Error> {
    let seg = typed_segment(typed)?;
    with_dtype!(seg.dtype(), T => relay_out::<T>(seg, bytes))
}

/// Sends the bytes of each item of `seg` (a `T` ring) through `bytes`.
fn relay_out<T: Element>(seg: Segment, bytes: &str) -> Result<(), Error> {
    let mut tx = Producer::<u8, IxDyn>::open(bytes)?;
    let mut send = |items: &[T]| -> Result<(), Error> {
        let raw: &[u8] = bytemuck::cast_slice(items);
        tx.send(&ArrayView::from_shape(IxDyn(&[raw.len()]), raw).expect("one dimension"))?;
        Ok(())
    };
    if seg.kind() == RingKind::Broadcast {
        let mut rx = Subscriber::<T, IxDyn>::from_segment(seg, Start::Oldest)?;
        println!("ready");
        loop {
            match rx.recv_timeout(WAIT) {
                Ok(frame) => send(frame.as_slice().expect("a slot is in C order"))?,
                Err(Error::Closed) => break,
                Err(e) => return Err(e),
            }
        }
    } else {
        let mut rx = Consumer::<T, IxDyn>::from_segment(seg)?;
        println!("ready");
        loop {
            match rx.recv_timeout(WAIT) {
                Ok(item) => send(item.as_slice().expect("a slot is in C order"))?,
                Err(Error::Closed) => break,
                Err(e) => return Err(e),
            }
        }
    }
    tx.close();
    Ok(())
}

fn from_bytes(bytes: &str, typed: &str) -> Result<(), Error> {
    let seg = typed_segment(typed)?;
    with_dtype!(seg.dtype(), T => relay_in::<T>(bytes, seg))
}

/// Sends each item of `bytes`, as `T`s, through `seg` (a `T` ring).
fn relay_in<T: Element>(bytes: &str, seg: Segment) -> Result<(), Error> {
    let shape = seg.shape().to_vec();
    let kind = seg.kind();
    let mut rx = Consumer::<u8, IxDyn>::open(bytes)?;
    // Each item of `T`s from the bytes received, copied out.
    let mut next = || -> Result<Option<Vec<T>>, Error> {
        let item = match rx.recv_timeout(WAIT) {
            Ok(item) => item,
            Err(Error::Closed) => return Ok(None),
            Err(e) => return Err(e),
        };
        let raw = item.as_slice().expect("a slot is in C order");
        if raw.len() % size_of::<T>() != 0 {
            return Err(Error::InvalidConfig(format!(
                "{} bytes are not a whole number of {}",
                raw.len(),
                T::DTYPE
            )));
        }
        let mut items = vec![T::zeroed(); raw.len() / size_of::<T>()];
        bytemuck::cast_slice_mut::<T, u8>(&mut items).copy_from_slice(raw);
        Ok(Some(items))
    };
    if kind == RingKind::Broadcast {
        let mut tx = BroadcastWriter::<T, IxDyn>::from_segment(seg)?;
        println!("ready");
        while let Some(items) = next()? {
            tx.send(&view(&shape, &items)?)?;
        }
        tx.close();
    } else {
        let mut tx = Producer::<T, IxDyn>::from_segment(seg)?;
        println!("ready");
        while let Some(items) = next()? {
            tx.send(&view(&shape, &items)?)?;
        }
        tx.close();
    }
    Ok(())
}

/// `items` as an array of the ring's shape.
fn view<'a, T>(shape: &[usize], items: &'a [T]) -> Result<ArrayView<'a, T, IxDyn>, Error> {
    ArrayView::from_shape(IxDyn(shape), items).map_err(|e| {
        Error::InvalidConfig(format!("{} items for shape {shape:?}: {e}", items.len()))
    })
}

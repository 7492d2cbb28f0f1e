//! `ndring peek`: a .npy of the newest item that numpy loads byte-exact (every element type), a
//! PNG of a frame, and peek's errors.

use std::path::{Path, PathBuf};
use std::process::Command;

use ndarray::{Array, Ix1, Ix2, Ix3};
use ndring::{BroadcastWriter, Config, Consumer, Element, Producer};

use super::{Cleanup, fails, json, ls_rows, name, ok, row};

/// The Python to check .npy files with: `NDRING_PYTHON` (CI sets a venv with numpy), else
/// `python3` if it has numpy. None: numpy is not installed (the header and bytes are then
/// checked here only, and the test says so).
pub fn python() -> Option<String> {
    if let Ok(p) = std::env::var("NDRING_PYTHON") {
        return Some(p);
    }
    let has = Command::new("python3")
        .args(["-c", "import numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has {
        eprintln!("numpy not found (set NDRING_PYTHON): .npy checked by this test only");
    }
    has.then(|| "python3".into())
}

pub fn tmp(file: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ndt-{}-{file}", std::process::id()))
}

/// Checks `npy` holds exactly `bytes` as `descr` of `shape`: here, and with numpy if present.
pub fn check_npy(npy: &Path, descr: &str, shape: &[usize], bytes: &[u8]) {
    let file = std::fs::read(npy).unwrap();
    assert_eq!(&file[..8], b"\x93NUMPY\x01\x00");
    let hlen = u16::from_le_bytes([file[8], file[9]]) as usize;
    let header = std::str::from_utf8(&file[10..10 + hlen]).unwrap();
    assert!(header.contains(&format!("'descr': '{descr}'")), "{header}");
    assert!(header.contains("'fortran_order': False"), "{header}");
    assert_eq!(&file[10 + hlen..], bytes, "payload bytes");
    let Some(py) = python() else { return };
    let raw = npy.with_extension("raw");
    std::fs::write(&raw, bytes).unwrap();
    let shape_py = format!(
        "({})",
        shape.iter().map(|d| format!("{d},")).collect::<String>()
    );
    let script = format!(
        "import numpy as np, sys\n\
         a = np.load(sys.argv[1])\n\
         assert a.dtype == np.dtype('{descr}'), a.dtype\n\
         assert a.shape == {shape_py}, a.shape\n\
         assert a.tobytes() == open(sys.argv[2], 'rb').read()\n\
         print('ok')"
    );
    let out = Command::new(&py)
        .args(["-c", &script])
        .arg(npy)
        .arg(&raw)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stdout == b"ok\n",
        "numpy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(raw).unwrap();
}

pub fn peek_npy() {
    // SPSC u16: the newest item, and the consumer still gets every item afterwards.
    let n = name("pk-spsc");
    let _c = Cleanup(vec![n.clone(), name("pk-bc"), name("pk-mpmc")]);
    let mut tx = Producer::<u16, Ix3>::create(&n, (3, 4, 5), &Config::spsc().slots(4)).unwrap();
    let mut rx = Consumer::<u16, Ix3>::open(&n).unwrap();
    let item = |i: u16| {
        Array::from_shape_fn((3, 4, 5), |(a, b, c)| {
            i * 1000 + (a * 20 + b * 5 + c) as u16
        })
    };
    for i in 0..3 {
        tx.send(&item(i).view()).unwrap();
    }
    let npy = tmp("spsc.npy");
    let out = ok(&["peek", &n, "-o", npy.to_str().unwrap()]);
    assert!(
        out.starts_with(&format!("wrote item 3 of {n} (u16 3x4x5, 120 B)")),
        "{out}"
    );
    let bytes: Vec<u8> = item(2).iter().flat_map(|v| v.to_ne_bytes()).collect();
    check_npy(&npy, "<u2", &[3, 4, 5], &bytes);
    for i in 0..3 {
        assert_eq!(*rx.recv().unwrap(), item(i), "peek took nothing");
    }

    // Broadcast f64 with a transposed source (the ring holds C order).
    let n = name("pk-bc");
    let mut w = BroadcastWriter::<f64, Ix2>::create(&n, (2, 3), &Config::broadcast()).unwrap();
    let src = Array::from_shape_fn((3, 2), |(a, b)| a as f64 + b as f64 / 10.0);
    w.send(&Array::zeros((2, 3)).view()).unwrap();
    w.send(&src.t()).unwrap();
    let npy = tmp("bc.npy");
    ok(&["peek", &n, "-o", npy.to_str().unwrap()]);
    let bytes: Vec<u8> = src.t().iter().flat_map(|v| v.to_ne_bytes()).collect();
    check_npy(&npy, "<f8", &[2, 3], &bytes);

    // MPMC i32, items already taken and released: the newest is still in its slot.
    let n = name("pk-mpmc");
    let mut tx = Producer::<i32, Ix1>::create(&n, 7, &Config::mpmc().slots(3)).unwrap();
    let mut rx = Consumer::<i32, Ix1>::open(&n).unwrap();
    for i in 0..5 {
        tx.send(&Array::from_elem(7, -i).view()).unwrap();
        rx.recv().unwrap();
    }
    drop(rx);
    let npy = tmp("mpmc.npy");
    let out = ok(&["peek", &n, "-o", npy.to_str().unwrap()]);
    assert!(out.starts_with("wrote item 5 "), "{out}");
    let bytes: Vec<u8> = [-4i32; 7].iter().flat_map(|v| v.to_ne_bytes()).collect();
    check_npy(&npy, "<i4", &[7], &bytes);
    for f in ["spsc.npy", "bc.npy", "mpmc.npy"] {
        std::fs::remove_file(tmp(f)).unwrap();
    }
}

/// Publishes `values` (shape `shape`) in a new ring, peeks it and checks the .npy holds
/// `bytes` as `descr`, and that `ls` and `inspect` name the type. Returns peek's output.
pub fn peek_one<T: Element>(
    tag: &str,
    shape: &[usize],
    values: Vec<T>,
    descr: &str,
    bytes: &[u8],
) -> String {
    let n = name(tag);
    let _c = Cleanup(vec![n.clone()]);
    let dtype = T::DTYPE.name();
    let mut tx =
        Producer::<T, ndarray::IxDyn>::create(&n, shape.to_vec(), &Config::spsc()).unwrap();
    let item = ndarray::ArrayD::from_shape_vec(shape, values).unwrap();
    tx.send(&item).unwrap();
    let npy = tmp(&format!("{tag}.npy"));
    let out = ok(&["peek", &n, "-o", npy.to_str().unwrap()]);
    assert!(
        out.starts_with(&format!("wrote item 1 of {n} ({dtype} ")),
        "{out}"
    );
    check_npy(&npy, descr, shape, bytes);
    std::fs::remove_file(npy).unwrap();
    assert_eq!(row(&ls_rows(), &n).unwrap()["dtype"], dtype);
    assert!(ok(&["ls", &n]).contains(&format!(" {dtype} ")));
    assert_eq!(json(&["inspect", "--json", &n])["header"]["dtype"], dtype);
    assert!(ok(&["inspect", &n]).contains(dtype));
    out
}

pub fn peek_dtypes() {
    use ndring::Bool8;
    use ndring::half::{bf16, f16};
    use ndring::num_complex::Complex;
    let le = |v: &[u16]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };

    // f16: every bit pattern (NaN payloads, subnormals, infinities, -0).
    let bits: Vec<u16> = (0..=u16::MAX).collect();
    peek_one(
        "pk-f16",
        &[256, 256],
        bits.iter().map(|&b| f16::from_bits(b)).collect(),
        "<f2",
        &le(&bits),
    );

    // bf16: numpy has none; the raw bits, as uint16, and peek says so.
    let out = peek_one(
        "pk-bf16",
        &[4, 16384],
        bits.iter().map(|&b| bf16::from_bits(b)).collect(),
        "<u2",
        &le(&bits),
    );
    assert!(
        out.contains("numpy has no bfloat16") && out.contains("ml_dtypes.bfloat16"),
        "{out}"
    );

    // complex64 and complex128: (re, im) pairs, including a NaN payload and a subnormal.
    let c64 = vec![
        Complex::new(1.5f32, -2.0),
        Complex::new(f32::from_bits(0x7fc0_0001), f32::from_bits(1)),
        Complex::new(f32::NEG_INFINITY, -0.0),
    ];
    let bytes: Vec<u8> = c64
        .iter()
        .flat_map(|c| [c.re.to_le_bytes(), c.im.to_le_bytes()])
        .flatten()
        .collect();
    peek_one("pk-c64", &[3], c64, "<c8", &bytes);
    let c128 = vec![
        Complex::new(
            f64::from_bits(0x7ff8_0000_0000_0001),
            f64::MIN_POSITIVE / 4.0,
        ),
        Complex::new(3.25f64, f64::MAX),
    ];
    let bytes: Vec<u8> = c128
        .iter()
        .flat_map(|c| [c.re.to_le_bytes(), c.im.to_le_bytes()])
        .flatten()
        .collect();
    peek_one("pk-c128", &[1, 2], c128, "<c16", &bytes);

    // bool: every byte in the ring; numpy gets 0 for 0 and 1 for any other byte.
    let bytes: Vec<u8> = (0..=u8::MAX).collect();
    let normalised: Vec<u8> = bytes.iter().map(|&b| (b != 0) as u8).collect();
    peek_one(
        "pk-bool",
        &[16, 16],
        bytes.iter().map(|&b| Bool8::from_byte(b)).collect(),
        "|b1",
        &normalised,
    );
}

pub fn peek_png() {
    let n = name("png");
    let _c = Cleanup(vec![n.clone(), name("png16")]);
    let mut tx = Producer::<u8, Ix3>::create(&n, (4, 6, 3), &Config::spsc()).unwrap();
    let frame = Array::from_shape_fn((4, 6, 3), |(y, x, c)| (y * 50 + x * 7 + c) as u8);
    tx.send(&frame.view()).unwrap();
    let png = tmp("frame.png");
    ok(&["peek", &n, "-o", png.to_str().unwrap(), "--png"]);
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (6, 4));
    assert_eq!(info.color_type, png::ColorType::Rgb);
    assert_eq!(&buf[..info.buffer_size()], frame.as_slice().unwrap());
    std::fs::remove_file(&png).unwrap();

    // Not an image: a clear error, no file.
    let n16 = name("png16");
    let _t = Producer::<u16, Ix2>::create(&n16, (4, 6), &Config::spsc()).unwrap();
    let (code, err) = fails(&["peek", &n16, "-o", png.to_str().unwrap(), "--png"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("--png needs u8 items of shape HxW, HxWx3 or HxWx4; this ring holds u16 4x6"),
        "{err}"
    );
    assert!(!png.exists());
    // Nothing published yet.
    let (code, err) = fails(&["peek", &n16, "-o", png.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("nothing published yet"), "{err}");
}

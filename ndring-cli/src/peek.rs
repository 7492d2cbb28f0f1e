//! `ndring peek NAME -o FILE`: the newest item, copied without taking it, as .npy or .png.

use std::path::PathBuf;

use ndring::inspect::{Inspector, Newest};
use ndring::{DType, RingKind};

use crate::{Failure, fmt};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The ring (/cam0, cam0 or /dev/shm/cam0)
    name: String,
    /// Where to write the item (.npy, loadable with numpy.load). bool items are written 0/1;
    /// bf16 items, which numpy has no type for, as their raw bits (uint16)
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Write a PNG instead (u8 items of shape HxW, HxWx3 or HxWx4)
    #[arg(long)]
    png: bool,
}

pub fn run(args: Args) -> Result<(), Failure> {
    let name = fmt::ring_name(&args.name);
    let r = Inspector::open(&name).map_err(fmt::open_error)?;
    if r.kind() == RingKind::Rpc {
        return Err(format!(
            "{name}: a request/reply segment has no newest item to peek at: its requests and \
             replies belong to their callers (see `ndring inspect {name}`)"
        ));
    }
    let shape = r.shape().to_vec();
    if args.png {
        check_png(r.dtype(), &shape)?;
    }
    let newest = write(&r, &args)?;
    let what = if r.kind() == RingKind::Array {
        "version"
    } else {
        "item"
    };
    println!(
        "wrote {what} {} of {name} ({} {}, {} B) to {}",
        newest.seq,
        r.dtype().name(),
        fmt::shape(&shape),
        r.payload_bytes(),
        args.output.display()
    );
    if r.dtype() == DType::BF16 && !args.png {
        println!("{BF16_NOTE}");
    }
    Ok(())
}

/// What `peek` says after writing a bf16 item.
const BF16_NOTE: &str = "note: numpy has no bfloat16: the item is written as its raw bits, \
    uint16; np.load(f).view(ml_dtypes.bfloat16) reads the values, as does \
    (np.load(f).astype('<u4') << 16).view('<f4')";

/// The numpy type string of a dtype on this host, as written in a .npy header: `<f2` for f16,
/// `<c8`/`<c16` for the complex types, `|b1` for bool. bfloat16 has none in numpy (it is
/// `ml_dtypes.bfloat16`, which `np.load` cannot name without that package): its raw bits are
/// written as `<u2` and `peek` says so.
fn npy_descr(dtype: DType) -> String {
    let code = match dtype {
        DType::U8 => return "|u1".into(),
        DType::I8 => return "|i1".into(),
        DType::Bool => return "|b1".into(),
        DType::U16 | DType::BF16 => "u2",
        DType::U32 => "u4",
        DType::U64 => "u8",
        DType::I16 => "i2",
        DType::I32 => "i4",
        DType::I64 => "i8",
        DType::F16 => "f2",
        DType::F32 => "f4",
        DType::F64 => "f8",
        DType::C64 => "c8",
        DType::C128 => "c16",
    };
    let order = if cfg!(target_endian = "little") {
        '<'
    } else {
        '>'
    };
    format!("{order}{code}")
}

/// Copies the newest item and writes it.
fn write(r: &Inspector, args: &Args) -> Result<Newest, Failure> {
    let name = r.name();
    let mut bytes = vec![0u8; r.payload_bytes()];
    let newest = r.copy_newest(&mut bytes).map_err(|e| match e {
        ndring::Error::Empty => format!("{name}: nothing published yet"),
        ndring::Error::Timeout => {
            format!("{name}: the producer overtook 10000 copies in a row; try again")
        }
        e => format!("{name}: {e}"),
    })?;
    if r.dtype() == DType::Bool {
        // Any nonzero byte is true in a ring; numpy's bool is 0 or 1.
        for b in &mut bytes {
            *b = (*b != 0) as u8;
        }
    }
    let out = &args.output;
    let fail = |e: &dyn std::fmt::Display| format!("cannot write {}: {e}", out.display());
    if args.png {
        write_png(out, r.shape(), &bytes).map_err(|e| fail(&e))?;
    } else {
        write_npy(out, &npy_descr(r.dtype()), r.shape(), &bytes).map_err(|e| fail(&e))?;
    }
    Ok(newest)
}

/// Writes a version 1.0 .npy file: the magic, the header (a Python dict literal padded with
/// spaces to a multiple of 64 bytes, ending in a newline), then the C-order data.
fn write_npy(
    path: &std::path::Path,
    descr: &str,
    shape: &[usize],
    data: &[u8],
) -> std::io::Result<()> {
    use std::io::Write;
    let dims: String = shape.iter().map(|d| format!("{d}, ")).collect();
    let dims = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!("({})", dims.trim_end_matches(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {dims}, }}");
    let len = (10 + header.len() + 1).next_multiple_of(64) - 10;
    while header.len() + 1 < len {
        header.push(' ');
    }
    header.push('\n');
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    f.write_all(b"\x93NUMPY\x01\x00")?;
    f.write_all(&(header.len() as u16).to_le_bytes())?;
    f.write_all(header.as_bytes())?;
    f.write_all(data)?;
    f.flush()
}

fn check_png(dtype: DType, shape: &[usize]) -> Result<(), Failure> {
    let fits = dtype == DType::U8
        && match shape {
            [h, w] | [h, w, 3] | [h, w, 4] => *h <= u32::MAX as usize && *w <= u32::MAX as usize,
            _ => false,
        };
    if fits {
        Ok(())
    } else {
        Err(format!(
            "--png needs u8 items of shape HxW, HxWx3 or HxWx4; this ring holds {} {}",
            dtype.name(),
            fmt::shape(shape)
        ))
    }
}

fn write_png(path: &std::path::Path, shape: &[usize], bytes: &[u8]) -> Result<(), String> {
    let color = match shape.get(2) {
        None => png::ColorType::Grayscale,
        Some(3) => png::ColorType::Rgb,
        _ => png::ColorType::Rgba,
    };
    let file = std::fs::File::create(path).map_err(|e| e.to_string())?;
    let mut enc = png::Encoder::new(
        std::io::BufWriter::new(file),
        shape[1] as u32,
        shape[0] as u32,
    );
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().map_err(|e| e.to_string())?;
    w.write_image_data(bytes).map_err(|e| e.to_string())?;
    w.finish().map_err(|e| e.to_string())
}

//! `ndring peek NAME -o FILE`: the newest item, copied without taking it, as .npy or .png.

use std::path::PathBuf;

use bytemuck::Pod;
use ndarray::{ArrayD, IxDyn};
use ndring::DType;
use ndring::inspect::{Inspector, Newest};

use crate::{Failure, fmt};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The ring (/cam0, cam0 or /dev/shm/cam0)
    name: String,
    /// Where to write the item (.npy, loadable with numpy.load)
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Write a PNG instead (u8 items of shape HxW, HxWx3 or HxWx4)
    #[arg(long)]
    png: bool,
}

pub fn run(args: Args) -> Result<(), Failure> {
    let name = fmt::ring_name(&args.name);
    let r = Inspector::open(&name).map_err(fmt::open_error)?;
    let shape = r.shape().to_vec();
    if args.png {
        check_png(r.dtype(), &shape)?;
    }
    let out = args.output.display();
    let newest = match r.dtype() {
        DType::U8 => write::<u8>(&r, &args)?,
        DType::U16 => write::<u16>(&r, &args)?,
        DType::U32 => write::<u32>(&r, &args)?,
        DType::U64 => write::<u64>(&r, &args)?,
        DType::I8 => write::<i8>(&r, &args)?,
        DType::I16 => write::<i16>(&r, &args)?,
        DType::I32 => write::<i32>(&r, &args)?,
        DType::I64 => write::<i64>(&r, &args)?,
        DType::F32 => write::<f32>(&r, &args)?,
        DType::F64 => write::<f64>(&r, &args)?,
    };
    println!(
        "wrote item {} of {name} ({} {}, {} B) to {out}",
        newest.seq,
        r.dtype().name(),
        fmt::shape(&shape),
        r.payload_bytes()
    );
    Ok(())
}

/// Copies the newest item into an array of `T` and writes it.
fn write<T>(r: &Inspector, args: &Args) -> Result<Newest, Failure>
where
    T: Pod + ndarray_npy::WritableElement,
{
    let name = r.name();
    let mut items = vec![T::zeroed(); r.payload_bytes() / size_of::<T>()];
    let newest = r
        .copy_newest(bytemuck::cast_slice_mut(&mut items))
        .map_err(|e| match e {
            ndring::Error::Empty => format!("{name}: nothing published yet"),
            ndring::Error::Timeout => {
                format!("{name}: the producer overtook 10000 copies in a row; try again")
            }
            e => format!("{name}: {e}"),
        })?;
    let out = &args.output;
    let fail = |e: &dyn std::fmt::Display| format!("cannot write {}: {e}", out.display());
    if args.png {
        write_png(out, r.shape(), bytemuck::cast_slice(&items)).map_err(|e| fail(&e))?;
    } else {
        let array = ArrayD::from_shape_vec(IxDyn(r.shape()), items).map_err(|e| fail(&e))?;
        ndarray_npy::write_npy(out, &array).map_err(|e| fail(&e))?;
    }
    Ok(newest)
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

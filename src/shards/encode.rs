//! Pass 2, per pair: mask PNG → multi-hot planes and histogram (one
//! decode), image → its bytes (tar) or RGB planes (safetensors), then the
//! sample's files. Runs on rayon workers; buffers live in a [`Worker`]
//! reused from pair to pair.
//!
//! Resizing: images bilinear (`image`'s Triangle filter), masks nearest
//! neighbour on the planes (labels are never interpolated): output pixel
//! `(i, j)` takes source `((2i+1)H / 2h, (2j+1)W / 2w)`, integer division.

use serde::{Deserialize, Serialize};

use super::plan::Source;
use super::{Dims, Format, Geometry};
use crate::decode::{self, MaskHist, Scratch};
use crate::labels::LabelMap;
use crate::output::error_chain;
use crate::stats::BadFile;
use crate::tensors::{DType, npy_header};

/// Largest image side decoded (matches the masks' limit).
const MAX_SIDE: u32 = 1 << 16;

/// A sample's description: the `.json` of a tar sample, and one entry of
/// `samples` in a safetensors shard's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleInfo {
    pub key: String,
    pub split: String,
    /// Source files, relative to the dataset root.
    pub image: String,
    pub mask: String,
    /// Size of this sample's arrays.
    pub width: u32,
    pub height: u32,
    /// `[x, y, w, h]` of the tile in the source, when tiling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tile: Option<[u32; 4]>,
    /// Per class (manifest order): 1 when the sample's mask holds it, else 0.
    pub present: Vec<u8>,
}

/// The description of a sample of `s` (presence not yet known: zeros, the
/// same width as the final JSON).
pub fn info(
    s: &Source,
    split: &str,
    tile: Option<[u32; 4]>,
    width: u32,
    height: u32,
    c: usize,
) -> SampleInfo {
    let key = match tile {
        Some([x, y, ..]) => format!("{}_x{x}_y{y}", s.key),
        None => s.key.clone(),
    };
    SampleInfo {
        key,
        split: split.to_string(),
        image: s.image_rel.clone(),
        mask: s.mask_rel.clone(),
        width,
        height,
        tile,
        present: vec![0; c],
    }
}

/// What a worker needs besides the pair.
pub struct Ctx<'a> {
    pub map: &'a LabelMap,
    pub format: Format,
    pub geometry: Geometry,
    /// safetensors: the size of every sample.
    pub sample_dims: Option<Dims>,
}

/// Per-worker buffers.
#[derive(Default)]
pub struct Worker {
    scratch: Scratch,
    planes: Vec<u8>,
    excluded: Vec<u8>,
    rows: Vec<usize>,
    cols: Vec<usize>,
}

/// One sample's payload.
pub struct Sample {
    pub info: SampleInfo,
    /// tar: the image file's bytes; safetensors: RGB planes `[3,h,w]`.
    pub image: Vec<u8>,
    /// tar: the whole `.npy`; safetensors: planes `[C,h,w]`.
    pub mask: Vec<u8>,
}

/// A pair, encoded.
pub struct Encoded {
    /// The mask's histogram, for exact counts.
    pub hist: MaskHist,
    pub samples: Vec<Sample>,
}

fn bad(path: &std::path::Path, reason: impl Into<String>) -> BadFile {
    BadFile {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Encodes one pair into its samples.
pub fn encode(ctx: &Ctx<'_>, s: &Source, split: &str, w: &mut Worker) -> Result<Encoded, BadFile> {
    let bytes = decode::read_file(&s.mask)
        .map_err(|e| bad(&s.mask, format!("failed to read mask: {}", error_chain(&e))))?;
    let Worker {
        scratch,
        planes,
        excluded,
        rows,
        cols,
    } = w;
    let (frame, hist) = decode::decode_frame_hist(&bytes, scratch).map_err(|e| {
        bad(
            &s.mask,
            format!("failed to decode mask: {}", error_chain(&e)),
        )
    })?;
    ctx.map
        .check_format(frame.format)
        .map_err(|why| bad(&s.mask, why))?;
    if (frame.width, frame.height) != (s.width, s.height) {
        return Err(bad(
            &s.mask,
            format!(
                "mask is now {}x{}, was {}x{} when planned; expected files not to change while running",
                frame.width, frame.height, s.width, s.height
            ),
        ));
    }
    ctx.map.planes(&frame, planes, excluded);
    let c = ctx.map.num_classes();
    let (sw, sh) = (s.width as usize, s.height as usize);
    let samples = match ctx.format {
        Format::Webdataset => {
            let image = crate::store::read(&s.image)
                .map_err(|e| bad(&s.image, format!("cannot read the file: {e}")))?;
            let mut npy = npy_header(DType::U8, &[c, sh, sw]);
            npy.extend_from_slice(planes);
            let mut info = info(s, split, None, s.width, s.height, c);
            info.present = presence(planes, c);
            vec![Sample {
                info,
                image,
                mask: npy,
            }]
        }
        Format::Safetensors => {
            let rgb = load_rgb(&s.image)?;
            if rgb.dimensions() != (s.width, s.height) {
                return Err(bad(
                    &s.image,
                    format!(
                        "image is {}x{} but its mask is {}x{}; expected the same size",
                        rgb.width(),
                        rgb.height(),
                        s.width,
                        s.height
                    ),
                ));
            }
            match ctx.geometry {
                Geometry::Tile(_) => s
                    .tiles
                    .iter()
                    .map(|&t| {
                        let [x, y, tw, th] = t.map(|v| v as usize);
                        let image = crop_rgb(rgb.as_raw(), sw, x, y, tw, th);
                        let mask = crop_planes(planes, c, sw, sh, x, y, tw, th);
                        let mut info = info(s, split, Some(t), t[2], t[3], c);
                        info.present = presence(&mask, c);
                        Sample { info, image, mask }
                    })
                    .collect(),
                Geometry::Resize(d) if (d.width, d.height) != (s.width, s.height) => {
                    let small = image::imageops::resize(
                        &rgb,
                        d.width,
                        d.height,
                        image::imageops::FilterType::Triangle,
                    );
                    let (dw, dh) = (d.width as usize, d.height as usize);
                    let image = crop_rgb(small.as_raw(), dw, 0, 0, dw, dh);
                    let mask = nearest(planes, c, sw, sh, dw, dh, rows, cols);
                    let mut info = info(s, split, None, d.width, d.height, c);
                    info.present = presence(&mask, c);
                    vec![Sample { info, image, mask }]
                }
                _ => {
                    let image = crop_rgb(rgb.as_raw(), sw, 0, 0, sw, sh);
                    let mask = planes.clone();
                    let mut info = info(s, split, None, s.width, s.height, c);
                    info.present = presence(&mask, c);
                    vec![Sample { info, image, mask }]
                }
            }
        }
    };
    Ok(Encoded { hist, samples })
}

/// Decodes an image to 8-bit RGB (gray expanded, alpha dropped).
fn load_rgb(path: &std::path::Path) -> Result<image::RgbImage, BadFile> {
    let mut reader = crate::store::open(path)
        .map(image::ImageReader::new)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| bad(path, format!("cannot read the file: {e}")))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| bad(path, format!("not a readable image: {}", error_chain(&e))))?;
    Ok(img.to_rgb8())
}

/// Per class: does any pixel carry it?
fn presence(planes: &[u8], c: usize) -> Vec<u8> {
    let hw = planes.len() / c.max(1);
    (0..c)
        .map(|k| u8::from(planes[k * hw..(k + 1) * hw].iter().any(|&b| b != 0)))
        .collect()
}

/// A window of an interleaved RGB image (`width` pixels a row) as planes `[3,th,tw]`.
fn crop_rgb(rgb: &[u8], width: usize, x: usize, y: usize, tw: usize, th: usize) -> Vec<u8> {
    let mut out = vec![0u8; 3 * tw * th];
    let (r, rest) = out.split_at_mut(tw * th);
    let (g, b) = rest.split_at_mut(tw * th);
    for row in 0..th {
        let src = &rgb[((y + row) * width + x) * 3..((y + row) * width + x + tw) * 3];
        let at = row * tw;
        for (i, px) in src.chunks_exact(3).enumerate() {
            r[at + i] = px[0];
            g[at + i] = px[1];
            b[at + i] = px[2];
        }
    }
    out
}

/// A window of planes `[c,h,w]` as planes `[c,th,tw]`.
#[allow(clippy::too_many_arguments)]
fn crop_planes(
    planes: &[u8],
    c: usize,
    w: usize,
    h: usize,
    x: usize,
    y: usize,
    tw: usize,
    th: usize,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(c * tw * th);
    for k in 0..c {
        let plane = &planes[k * w * h..(k + 1) * w * h];
        for row in y..y + th {
            out.extend_from_slice(&plane[row * w + x..row * w + x + tw]);
        }
    }
    out
}

/// Nearest-neighbour resize of planes `[c,h,w]` to `[c,dh,dw]`.
#[allow(clippy::too_many_arguments)]
fn nearest(
    planes: &[u8],
    c: usize,
    w: usize,
    h: usize,
    dw: usize,
    dh: usize,
    rows: &mut Vec<usize>,
    cols: &mut Vec<usize>,
) -> Vec<u8> {
    rows.clear();
    rows.extend((0..dh).map(|i| (2 * i + 1) * h / (2 * dh)));
    cols.clear();
    cols.extend((0..dw).map(|j| (2 * j + 1) * w / (2 * dw)));
    let mut out = Vec::with_capacity(c * dw * dh);
    for k in 0..c {
        let plane = &planes[k * w * h..(k + 1) * w * h];
        for &r in rows.iter() {
            let src = &plane[r * w..(r + 1) * w];
            out.extend(cols.iter().map(|&x| src[x]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_picks_centres_and_never_blends() {
        // One class, 4x2: columns 0..4 = 0,1,0,1 on both rows.
        let planes = vec![0, 1, 0, 1, 0, 1, 0, 1];
        let (mut r, mut c) = (Vec::new(), Vec::new());
        let half = nearest(&planes, 1, 4, 2, 2, 1, &mut r, &mut c);
        // Centres of 2 output columns sample source columns 1 and 3.
        assert_eq!(half, vec![1, 1]);
        let same = nearest(&planes, 1, 4, 2, 4, 2, &mut r, &mut c);
        assert_eq!(same, planes);
        let up = nearest(&[0, 1], 1, 2, 1, 4, 1, &mut r, &mut c);
        assert_eq!(up, vec![0, 0, 1, 1]);
    }

    #[test]
    fn crops_are_planar() {
        // 2x2 RGB: pixel p has (p, 10+p, 20+p).
        let rgb = vec![0, 10, 20, 1, 11, 21, 2, 12, 22, 3, 13, 23];
        assert_eq!(crop_rgb(&rgb, 2, 1, 0, 1, 2), vec![1, 3, 11, 13, 21, 23]);
        let planes = vec![0, 1, 2, 3, 4, 5, 6, 7];
        assert_eq!(crop_planes(&planes, 2, 2, 2, 0, 1, 2, 1), vec![2, 3, 6, 7]);
        assert_eq!(presence(&[0, 0, 0, 1], 2), vec![0, 1]);
    }
}

//! Check stage: dataset health before training, from one decode pass per
//! mask (in parallel over files, rayon `fold` + `reduce`): objects per
//! class (connected components, sizes, holes, small objects), per-split
//! class counts, and the hashes that find duplicate masks and photos
//! within and across splits. Memory holds per-class summaries, a bounded
//! list of worst images, and the hashes of each file (about 100 bytes per
//! mask); never a plane.

pub mod collect;
pub mod components;
pub mod doc;
pub mod sampling;
pub mod sizes;
pub mod splits;

use std::ops::AddAssign;

use rayon::prelude::*;

use crate::decode::{self, DecodeError, Frame};
use crate::labels::LabelMap;
use crate::output::{error_chain, progress};
use crate::source::{Dataset, Item};
use crate::stats::BadFile;
pub use components::Connectivity;
use components::{Labeller, label};
use sizes::SizeHist;
use splits::Splits;

/// Objects smaller than this (pixels) are listed by default.
pub const MIN_OBJECT: u64 = 16;
/// Images listed per class for small objects, by default.
pub const LISTED: usize = 20;

/// What to check.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub connectivity: Connectivity,
    /// Objects below this size (pixels) are small.
    pub min_object: u64,
    /// Hash the photos too (decodes each once).
    pub photos: bool,
    /// Images listed per class (worst first).
    pub listed: usize,
    /// Keep each mask's classes (for sampling weights).
    pub keep_classes: bool,
    pub progress: bool,
}

/// An image with objects below the size limit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct SmallImage {
    /// Small objects, negated so that sorting puts the worst first.
    #[serde(skip)]
    rank: std::cmp::Reverse<u64>,
    pub smallest: u64,
    pub mask: String,
    pub small_objects: u64,
}

/// One class's objects over the dataset.
#[derive(Debug, Clone, Default)]
pub struct ClassAcc {
    /// Masks holding the class.
    pub images: u64,
    pub sizes: SizeHist,
    /// Most objects in one mask.
    pub max_per_image: u64,
    pub holed: u64,
    /// Objects below the size limit, and the masks holding any.
    pub small: u64,
    pub small_images: u64,
    pub worst: Vec<SmallImage>,
}

/// One split's counts.
#[derive(Debug, Clone, Default)]
pub struct SplitAcc {
    pub images: u64,
    /// Valid pixels (not ignored or undeclared).
    pub valid: u64,
    pub class_pixels: Vec<u64>,
    pub class_images: Vec<u64>,
}

/// What the pass keeps of one mask for the dataset-wide checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// Position in the dataset.
    pub index: usize,
    /// Hash of the planes; `None` for a mask with one label set on every
    /// pixel (empty, all background: all such masks of one size are alike,
    /// not compared).
    pub mask_hash: Option<u128>,
    /// Hash of the photo's pixels, when hashed and readable.
    pub photo_hash: Option<u128>,
    /// Classes present, when kept (for sampling weights).
    pub classes: Vec<u16>,
}

/// The pass's result, merged by addition.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    pub classes: Vec<ClassAcc>,
    pub splits: Vec<SplitAcc>,
    pub facts: Vec<Facts>,
    pub bad: Vec<BadFile>,
    /// Photos that could not be decoded (their masks are still counted).
    pub bad_photos: Vec<BadFile>,
    listed: usize,
}

impl Checked {
    fn new(classes: usize, splits: usize, listed: usize) -> Self {
        let split = SplitAcc {
            class_pixels: vec![0; classes],
            class_images: vec![0; classes],
            ..SplitAcc::default()
        };
        Self {
            classes: vec![ClassAcc::default(); classes],
            splits: vec![split; splits],
            listed,
            ..Self::default()
        }
    }
}

impl AddAssign for Checked {
    fn add_assign(&mut self, rhs: Self) {
        for (a, b) in self.classes.iter_mut().zip(rhs.classes) {
            a.images += b.images;
            a.sizes += b.sizes;
            a.max_per_image = a.max_per_image.max(b.max_per_image);
            a.holed += b.holed;
            a.small += b.small;
            a.small_images += b.small_images;
            a.worst.extend(b.worst);
            bound(&mut a.worst, self.listed);
        }
        for (a, b) in self.splits.iter_mut().zip(rhs.splits) {
            a.images += b.images;
            a.valid += b.valid;
            for (x, y) in a.class_pixels.iter_mut().zip(b.class_pixels) {
                *x += y;
            }
            for (x, y) in a.class_images.iter_mut().zip(b.class_images) {
                *x += y;
            }
        }
        self.facts.extend(rhs.facts);
        self.bad.extend(rhs.bad);
        self.bad_photos.extend(rhs.bad_photos);
    }
}

/// Keeps the `n` worst images (sorted, worst first).
fn bound(list: &mut Vec<SmallImage>, n: usize) {
    list.sort();
    list.truncate(n);
}

/// Per-thread buffers.
#[derive(Default)]
struct Worker {
    lab: Labeller,
    buf: Vec<u8>,
}

/// Decodes every mask once (and its photo, when asked) and checks it; an
/// unreadable mask is listed and skipped.
pub fn check(ds: &Dataset, map: &LabelMap, splits: &Splits, opts: &Options) -> Checked {
    let bar = progress(ds.items.len() as u64, opts.progress);
    let (c, s) = (map.num_classes(), splits.names.len());
    let init = || Checked::new(c, s, opts.listed);
    let mut out = ds
        .items
        .par_iter()
        .enumerate()
        .fold(
            || (init(), Worker::default()),
            |(mut acc, mut w), (k, item)| {
                acc.take(k, item, splits.of[k], map, opts, &mut w);
                bar.inc(1);
                (acc, w)
            },
        )
        .map(|(acc, _)| acc)
        .reduce(init, |mut a, b| {
            a += b;
            a
        });
    bar.finish_and_clear();
    out.bad.extend(ds.skipped.iter().map(|s| BadFile {
        path: s.path.display().to_string(),
        reason: s.reason.clone(),
    }));
    out.facts.sort_by_key(|f| f.index);
    out.bad.sort();
    out.bad_photos.sort();
    for a in &mut out.classes {
        bound(&mut a.worst, opts.listed);
    }
    out
}

impl Checked {
    /// Checks mask `k` (in split `split`), or lists it as a bad file.
    fn take(
        &mut self,
        k: usize,
        item: &Item,
        split: usize,
        map: &LabelMap,
        opts: &Options,
        w: &mut Worker,
    ) {
        let path = item.mask.display().to_string();
        let read = read_frame(&item.mask, &mut w.buf).and_then(|frame| {
            map.check_format(frame.format)
                .map_err(DecodeError::Unusable)?;
            Ok(label(&frame, map, opts.connectivity, &mut w.lab))
        });
        let summary = match read {
            Ok(s) => s,
            Err(e) => {
                let reason = error_chain(&e);
                self.bad.push(BadFile { path, reason });
                return;
            }
        };
        let photo_hash = match (&item.image, opts.photos) {
            (Some(image), true) => match photo_hash(image) {
                Ok(h) => Some(h),
                Err(reason) => {
                    let path = image.display().to_string();
                    self.bad_photos.push(BadFile { path, reason });
                    None
                }
            },
            _ => None,
        };
        self.add_objects(&path, w.lab.objects(), opts.min_object);
        let sp = &mut self.splits[split];
        sp.images += 1;
        sp.valid += u64::from(summary.width) * u64::from(summary.height) - summary.excluded;
        let mut classes = Vec::new();
        for (c, &n) in summary.class_pixels.iter().enumerate() {
            if n > 0 {
                sp.class_pixels[c] += n;
                sp.class_images[c] += 1;
                if opts.keep_classes {
                    classes.push(c as u16);
                }
            }
        }
        self.facts.push(Facts {
            index: k,
            mask_hash: (!summary.uniform).then_some(summary.hash),
            photo_hash,
            classes,
        });
    }

    /// Adds the objects of the mask just labelled to their classes.
    fn add_objects(&mut self, path: &str, objects: &[components::Object], min_object: u64) {
        for group in objects.chunk_by(|a, b| a.class == b.class) {
            let acc = &mut self.classes[usize::from(group[0].class)];
            acc.images += 1;
            acc.max_per_image = acc.max_per_image.max(group.len() as u64);
            let (mut small, mut smallest) = (0u64, u64::MAX);
            for o in group {
                acc.sizes.add(o.size);
                acc.holed += u64::from(o.holed);
                small += u64::from(o.size < min_object);
                smallest = smallest.min(o.size);
            }
            if small > 0 {
                acc.small += small;
                acc.small_images += 1;
                acc.worst.push(SmallImage {
                    rank: std::cmp::Reverse(small),
                    smallest,
                    mask: path.to_string(),
                    small_objects: small,
                });
                if acc.worst.len() > 2 * self.listed.max(1) {
                    bound(&mut acc.worst, self.listed);
                }
            }
        }
    }
}

/// Reads and decodes a mask: PNG (or an annotation raster), or a JPEG
/// mask when its name says so.
pub fn read_frame<'a>(
    path: &std::path::Path,
    buf: &'a mut Vec<u8>,
) -> Result<Frame<'a>, DecodeError> {
    let bytes = decode::read_file(path)?;
    if decode::is_jpeg(path) && !decode::raster::is_raster(&bytes) {
        let img = decode_image(&bytes).map_err(DecodeError::Jpeg)?;
        let (w, h) = (img.width(), img.height());
        let channels = match img {
            image::DynamicImage::ImageLuma8(g) => {
                *buf = g.into_raw();
                1
            }
            other => {
                *buf = other.into_rgb8().into_raw();
                3
            }
        };
        return Frame::from_samples(w, h, channels, buf);
    }
    decode::decode_frame(&bytes, buf)
}

/// Decodes an image file's bytes (format from its content) within the
/// decoder's limits.
fn decode_image(bytes: &[u8]) -> image::ImageResult<image::DynamicImage> {
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(1 << 15);
    limits.max_image_height = Some(1 << 15);
    limits.max_alloc = Some(1 << 30);
    reader.limits(limits);
    reader.decode()
}

/// The photo's hash: xxh3-128 of its width, height and pixels as 8-bit
/// RGB (alpha dropped), so a lossless re-encoding (PNG at another
/// compression level, a JPEG's decoded pixels saved as PNG) hashes equal;
/// a lossy one (JPEG, even at quality 100) does not.
pub fn photo_hash(path: &std::path::Path) -> Result<u128, String> {
    let bytes = crate::store::read(path).map_err(|e| format!("cannot read the photo: {e}"))?;
    let img = decode_image(&bytes).map_err(|e| format!("cannot decode the photo: {e}"))?;
    Ok(pixels_hash(
        img.width(),
        img.height(),
        img.into_rgb8().as_raw(),
    ))
}

/// xxh3-128 of `w`, `h` and 8-bit RGB pixels.
pub fn pixels_hash(w: u32, h: u32, rgb: &[u8]) -> u128 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(&w.to_le_bytes());
    hasher.update(&h.to_le_bytes());
    hasher.update(rgb);
    hasher.digest128()
}

//! Annotation exports as masks: COCO JSON (polygons and RLE) and Kaggle
//! run-length CSV, read into one [`Export`] of images and objects, and
//! rasterised per image into runs of *category sets* ([`rasterise`]).
//!
//! The reader stage beside the PNG decoder: a pixel's code is the set of
//! categories covering it. Category planes are unions of their objects'
//! masks, each object rasterised exactly as pycocotools' `annToMask` does
//! (`poly`, `rle`); the sweep works on runs, never on pixels, so an
//! image's cost follows its objects' outlines, not its area.

pub mod coco;
pub mod csv;
pub mod poly;
pub mod results;
pub mod rle;

use std::collections::HashMap;
use std::path::PathBuf;

/// Which kind of export a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// COCO JSON (`images`, `annotations`, `categories`).
    Coco,
    /// Kaggle run-length CSV (`ImageId,EncodedPixels` and its kin).
    RleCsv,
}

/// One annotation file, read.
#[derive(Debug, Clone)]
pub struct Export {
    pub format: Format,
    pub path: PathBuf,
    /// Sorted by id; [`Object::category`] indexes this list.
    pub categories: Vec<Category>,
    /// In file order (CSV: order of first appearance).
    pub images: Vec<ImageAnn>,
    /// What was skipped, and why (each one makes the run exit 1).
    pub problems: Vec<Problem>,
}

/// A category (class) as the export declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    pub id: i64,
    /// As given; names may repeat (display names are the caller's choice).
    pub name: String,
    /// Objects kept with this category (crowd ones included).
    pub annotations: u64,
    /// Of those, the `iscrowd` ones.
    pub crowd: u64,
}

/// One image and its objects.
#[derive(Debug, Clone)]
pub struct ImageAnn {
    pub id: i64,
    /// As written in the export (relative names, `images/x.jpg`,
    /// `/data/upload/1/x.jpg`, or a CSV image id).
    pub file_name: String,
    pub width: u32,
    pub height: u32,
    pub objects: Vec<Object>,
}

/// One annotation (COCO) or one CSV row with pixels.
#[derive(Debug, Clone)]
pub struct Object {
    /// Index into [`Export::categories`].
    pub category: u32,
    pub crowd: bool,
    pub shape: Shape,
    /// The COCO annotation id, or the CSV line number.
    pub ann_id: Option<i64>,
}

/// An object's mask as the export stores it.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// COCO polygons `[x0, y0, x1, y1, ...]`, each of at least 3 points,
    /// unioned (pycocotools `frPyObjects` + `merge`).
    Polygons(Vec<Vec<f64>>),
    /// Uncompressed COCO RLE: column-major counts, background first.
    Counts {
        height: u32,
        width: u32,
        counts: Vec<u32>,
    },
    /// Compressed COCO RLE (pycocotools' string form).
    Compressed {
        height: u32,
        width: u32,
        counts: String,
    },
    /// CSV runs: 0-based start and length, in `order`, increasing and
    /// disjoint.
    Runs { order: Order, runs: Vec<(u64, u64)> },
}

/// Pixel order of runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Index `x * height + y` (COCO RLE, Kaggle's default).
    #[default]
    ColumnMajor,
    /// Index `y * width + x`.
    RowMajor,
}

/// Something skipped (an image, an object, a polygon, a category, a row)
/// and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The image's file name, or `id N` when it has none known.
    pub image: Option<String>,
    pub reason: String,
}

/// What `iscrowd` regions count as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CrowdMode {
    /// Their category, as `annToMask` gives them.
    #[default]
    AsCategory,
    /// Ignored pixels: they add no category, and mark the runs they cover.
    Ignore,
}

/// One image's pixels as runs over `height * width` in `order`, each
/// naming a local set: `sets[k]` is the sorted category indices covering
/// those pixels (empty: background), `ignored[k]` whether a crowd region
/// covers them under [`CrowdMode::Ignore`]. Runs are maximal (neighbours
/// name different sets), non-empty, and sum to `height * width`; sets are
/// numbered in order of first appearance and each appears in some run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Raster {
    pub order: Order,
    pub width: u32,
    pub height: u32,
    pub sets: Vec<Vec<u32>>,
    pub ignored: Vec<bool>,
    pub runs: Vec<(u32, u64)>,
}

impl Raster {
    /// Pixels per set, indexed like `sets`.
    pub fn set_pixels(&self) -> Vec<u64> {
        let mut out = vec![0u64; self.sets.len()];
        for &(k, n) in &self.runs {
            out[k as usize] += n;
        }
        out
    }

    /// The on-intervals `[start, end)` (in `order`) of category `c`.
    pub fn category_intervals(&self, c: u32) -> Vec<(u64, u64)> {
        self.intervals_where(|k| self.sets[k].binary_search(&c).is_ok())
    }

    /// The on-intervals of pixels under a crowd region (Ignore mode).
    pub fn ignored_intervals(&self) -> Vec<(u64, u64)> {
        self.intervals_where(|k| self.ignored[k])
    }

    fn intervals_where(&self, on: impl Fn(usize) -> bool) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        let mut pos = 0u64;
        for &(k, n) in &self.runs {
            if on(k as usize) {
                match out.last_mut() {
                    Some(last) if last.1 == pos => last.1 = pos + n,
                    _ => out.push((pos, pos + n)),
                }
            }
            pos += n;
        }
        out
    }

    /// Each pixel's set index, row-major (`y * width + x`), whatever the
    /// runs' order: the plane that shards and overlays need.
    pub fn pixels(&self, out: &mut Vec<u32>) {
        let (w, h) = (u64::from(self.width), u64::from(self.height));
        out.clear();
        out.resize((w * h) as usize, 0);
        let mut pos = 0u64;
        for &(k, n) in &self.runs {
            match self.order {
                Order::RowMajor => out[pos as usize..(pos + n) as usize].fill(k),
                Order::ColumnMajor => {
                    for p in pos..pos + n {
                        out[((p % h) * w + p / h) as usize] = k;
                    }
                }
            }
            pos += n;
        }
    }
}

/// Buffers reused from image to image by [`rasterise`].
#[derive(Debug, Default)]
pub struct RasterScratch {
    toggles: Vec<u32>,
    intervals: Vec<(u64, u64)>,
    counts: Vec<u32>,
    /// `pos << 32 | slot << 1 | is_start`, sorted.
    events: Vec<u64>,
    cover: Vec<u32>,
    active: Vec<u32>,
    key: Vec<u32>,
    index: HashMap<Vec<u32>, u32>,
}

/// The sweep slot of crowd regions under [`CrowdMode::Ignore`].
const IGNORE_SLOT: u32 = (1 << 31) - 1;

/// Rasterises `img`'s objects into `out` (see [`Raster`]). An object that
/// cannot be rasterised (bad coordinates, an RLE of another size or whose
/// counts do not sum to `height * width`, runs past the image, runs of
/// another order) fails the image with the object named.
pub fn rasterise(
    img: &ImageAnn,
    crowd: CrowdMode,
    scratch: &mut RasterScratch,
    out: &mut Raster,
) -> Result<(), String> {
    let (h, w) = (img.height, img.width);
    let total = u64::from(h) * u64::from(w);
    if total == 0 || total > u64::from(u32::MAX) {
        return Err(format!(
            "image is {w}x{h}; expected at least 1x1 and at most {} pixels",
            u32::MAX
        ));
    }
    out.order = img
        .objects
        .iter()
        .find_map(|o| match &o.shape {
            Shape::Runs { order, .. } => Some(*order),
            _ => None,
        })
        .unwrap_or(Order::ColumnMajor);
    out.width = w;
    out.height = h;
    out.sets.clear();
    out.ignored.clear();
    out.runs.clear();
    scratch.events.clear();
    let mut slots = 0u32;
    for obj in &img.objects {
        let slot = if obj.crowd && crowd == CrowdMode::Ignore {
            IGNORE_SLOT
        } else if obj.category < IGNORE_SLOT {
            slots = slots.max(obj.category + 1);
            obj.category
        } else {
            return Err(format!(
                "{}: category index {} is out of range",
                object_name(obj),
                obj.category
            ));
        };
        scratch.intervals.clear();
        object_intervals(obj, h, w, out.order, scratch)
            .map_err(|e| format!("{}: {e}", object_name(obj)))?;
        for &(s, e) in &scratch.intervals {
            if s < e {
                scratch.events.push(s << 32 | u64::from(slot) << 1 | 1);
                scratch.events.push(e << 32 | u64::from(slot) << 1);
            }
        }
    }
    sweep(scratch, slots as usize, total, out);
    Ok(())
}

/// How a problem or an error names an object.
fn object_name(obj: &Object) -> String {
    match (&obj.shape, obj.ann_id) {
        (Shape::Runs { .. }, Some(id)) => format!("row {id}"),
        (_, Some(id)) => format!("annotation {id}"),
        (_, None) => "an annotation with no id".to_string(),
    }
}

/// Fills `scratch.intervals` with `obj`'s on-intervals (possibly
/// overlapping: polygons of one object are unioned by the sweep).
fn object_intervals(
    obj: &Object,
    h: u32,
    w: u32,
    order: Order,
    scratch: &mut RasterScratch,
) -> Result<(), String> {
    let total = u64::from(h) * u64::from(w);
    match &obj.shape {
        Shape::Polygons(polys) => {
            for p in polys {
                if p.len() < 6 {
                    return Err(format!(
                        "a polygon has {} numbers; expected at least 3 points (6 numbers)",
                        p.len()
                    ));
                }
                poly::check(p)?;
                poly::intervals(p, h, w, &mut scratch.toggles, &mut scratch.intervals);
            }
        }
        Shape::Counts {
            height,
            width,
            counts,
        } => {
            check_rle_size(*height, *width, h, w)?;
            check_sum(rle::counts_intervals(counts, &mut scratch.intervals), total)?;
        }
        Shape::Compressed {
            height,
            width,
            counts,
        } => {
            check_rle_size(*height, *width, h, w)?;
            scratch.counts = rle::decode_string(counts)?;
            check_sum(
                rle::counts_intervals(&scratch.counts, &mut scratch.intervals),
                total,
            )?;
        }
        Shape::Runs { order: o, runs } => {
            if *o != order {
                return Err("runs are in another pixel order than the image's other rows".into());
            }
            for &(s, n) in runs {
                if s + n > total {
                    return Err(format!(
                        "run at {} of {n} pixels ends past the image's {total} pixels",
                        s + 1
                    ));
                }
                scratch.intervals.push((s, s + n));
            }
        }
    }
    Ok(())
}

/// An RLE must have its image's size (pycocotools decodes it at its own).
pub(crate) fn check_rle_size(rh: u32, rw: u32, h: u32, w: u32) -> Result<(), String> {
    if (rh, rw) != (h, w) {
        return Err(format!(
            "RLE size is [{rh}, {rw}] (height, width); expected the image's [{h}, {w}]"
        ));
    }
    Ok(())
}

/// RLE counts must cover the image exactly (pycocotools refuses more, and
/// leaves fewer undefined).
pub(crate) fn check_sum(sum: u64, total: u64) -> Result<(), String> {
    if sum != total {
        return Err(format!(
            "RLE counts sum to {sum}; expected height * width = {total}"
        ));
    }
    Ok(())
}

/// The event sweep: per slot, how many intervals cover the position; the
/// set is the slots covered at least once.
fn sweep(s: &mut RasterScratch, slots: usize, total: u64, out: &mut Raster) {
    s.events.sort_unstable();
    s.cover.clear();
    s.cover.resize(slots, 0);
    s.active.clear();
    s.index.clear();
    let mut ignore = 0u32;
    let mut pos = 0u64;
    let mut current: Option<u32> = None;
    let mut i = 0;
    while i < s.events.len() {
        let at = s.events[i] >> 32;
        if at > pos {
            let k = set_index(s, ignore > 0, &mut current, out);
            push_run(out, k, at - pos);
            pos = at;
        }
        while i < s.events.len() && s.events[i] >> 32 == at {
            let ev = s.events[i];
            let slot = ((ev >> 1) & 0x7fff_ffff) as u32;
            let start = ev & 1 == 1;
            if slot == IGNORE_SLOT {
                if start {
                    ignore += 1;
                } else {
                    ignore -= 1;
                }
            } else {
                let c = &mut s.cover[slot as usize];
                if start {
                    *c += 1;
                    if *c == 1 {
                        let at = s.active.partition_point(|&a| a < slot);
                        s.active.insert(at, slot);
                    }
                } else {
                    *c -= 1;
                    if *c == 0 {
                        let at = s.active.partition_point(|&a| a < slot);
                        s.active.remove(at);
                    }
                }
            }
            i += 1;
        }
        current = None;
    }
    if total > pos {
        let k = set_index(s, ignore > 0, &mut current, out);
        push_run(out, k, total - pos);
    }
}

/// The local index of the active set (adding it on first sight).
fn set_index(
    s: &mut RasterScratch,
    ignored: bool,
    current: &mut Option<u32>,
    out: &mut Raster,
) -> u32 {
    if let Some(k) = *current {
        return k;
    }
    s.key.clear();
    s.key.extend_from_slice(&s.active);
    if ignored {
        s.key.push(IGNORE_SLOT);
    }
    let k = match s.index.get(s.key.as_slice()) {
        Some(&k) => k,
        None => {
            let k = out.sets.len() as u32;
            out.sets.push(s.active.clone());
            out.ignored.push(ignored);
            s.index.insert(s.key.clone(), k);
            k
        }
    };
    *current = Some(k);
    k
}

fn push_run(out: &mut Raster, k: u32, n: u64) {
    match out.runs.last_mut() {
        Some(last) if last.0 == k => last.1 += n,
        _ => out.runs.push((k, n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(h: u32, w: u32, objects: Vec<Object>) -> ImageAnn {
        ImageAnn {
            id: 1,
            file_name: "a.png".into(),
            width: w,
            height: h,
            objects,
        }
    }

    fn counts(category: u32, crowd: bool, h: u32, w: u32, counts: Vec<u32>) -> Object {
        Object {
            category,
            crowd,
            shape: Shape::Counts {
                height: h,
                width: w,
                counts,
            },
            ann_id: Some(i64::from(category) + 10),
        }
    }

    #[test]
    fn sweep_unions_same_category_and_sets_cross_category() {
        // 1x10 image. Category 0: [1,4) and [3,6) -> [1,6). Category 2:
        // [5,8). Expected: bg 1, {0} 4, {0,2} 1, {2} 2, bg 2.
        let img = image(
            1,
            10,
            vec![
                counts(0, false, 1, 10, vec![1, 3, 6]),
                counts(0, false, 1, 10, vec![3, 3, 4]),
                counts(2, false, 1, 10, vec![5, 3, 2]),
            ],
        );
        let (mut s, mut r) = (RasterScratch::default(), Raster::default());
        rasterise(&img, CrowdMode::AsCategory, &mut s, &mut r).unwrap();
        assert_eq!(r.sets, vec![vec![], vec![0], vec![0, 2], vec![2]]);
        assert_eq!(r.ignored, vec![false; 4]);
        assert_eq!(r.runs, vec![(0, 1), (1, 4), (2, 1), (3, 2), (0, 2)]);
        assert_eq!(r.set_pixels(), vec![3, 4, 1, 2]);
        assert_eq!(r.category_intervals(0), vec![(1, 6)]);
        assert_eq!(r.category_intervals(2), vec![(5, 8)]);
        assert_eq!(r.category_intervals(1), vec![]);
    }

    #[test]
    fn crowd_counts_or_is_ignored() {
        let img = image(
            2,
            2,
            vec![
                counts(0, false, 2, 2, vec![0, 2, 2]),
                counts(1, true, 2, 2, vec![1, 3]),
            ],
        );
        let (mut s, mut r) = (RasterScratch::default(), Raster::default());
        rasterise(&img, CrowdMode::AsCategory, &mut s, &mut r).unwrap();
        assert_eq!(r.sets, vec![vec![0], vec![0, 1], vec![1]]);
        assert_eq!(r.runs, vec![(0, 1), (1, 1), (2, 2)]);
        rasterise(&img, CrowdMode::Ignore, &mut s, &mut r).unwrap();
        assert_eq!(r.sets, vec![vec![0], vec![0], vec![]]);
        assert_eq!(r.ignored, vec![false, true, true]);
        assert_eq!(r.runs, vec![(0, 1), (1, 1), (2, 2)]);
        assert_eq!(r.ignored_intervals(), vec![(1, 4)]);
    }

    #[test]
    fn empty_image_is_one_background_run() {
        let img = image(3, 4, vec![]);
        let (mut s, mut r) = (RasterScratch::default(), Raster::default());
        rasterise(&img, CrowdMode::AsCategory, &mut s, &mut r).unwrap();
        assert_eq!(r.sets, vec![Vec::<u32>::new()]);
        assert_eq!(r.runs, vec![(0, 12)]);
    }

    #[test]
    fn bad_objects_are_named() {
        let img = image(2, 2, vec![counts(0, false, 2, 2, vec![1, 2])]);
        let (mut s, mut r) = (RasterScratch::default(), Raster::default());
        let e = rasterise(&img, CrowdMode::AsCategory, &mut s, &mut r).unwrap_err();
        assert!(e.contains("annotation 10") && e.contains("sum to 3"), "{e}");
        let img = image(2, 2, vec![counts(0, false, 2, 3, vec![6])]);
        let e = rasterise(&img, CrowdMode::AsCategory, &mut s, &mut r).unwrap_err();
        assert!(e.contains("[2, 3]"), "{e}");
    }

    #[test]
    fn pixels_transpose_column_major_runs() {
        // 2x3 (h=2, w=3), category 0 on column 1 (indices 2, 3).
        let img = image(2, 3, vec![counts(0, false, 2, 3, vec![2, 2, 2])]);
        let (mut s, mut r) = (RasterScratch::default(), Raster::default());
        rasterise(&img, CrowdMode::AsCategory, &mut s, &mut r).unwrap();
        let mut px = Vec::new();
        r.pixels(&mut px);
        assert_eq!(px, vec![0, 1, 0, 0, 1, 0]);
    }
}

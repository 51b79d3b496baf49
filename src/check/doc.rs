//! Check stage: the check document (`check --json`) and its table, from
//! the pass's counts: objects per class, splits and missing classes,
//! per-split class shares, duplicate masks and photos. Fixed key order,
//! sorted lists: the same input gives the same bytes with any thread count.

use std::fmt::Write as _;

use serde::Serialize;

use super::splits::Splits;
use super::{Checked, Options, SmallImage};
use crate::output::Console;
use crate::source::Dataset;
use crate::stats::BadFile;

pub const FORMAT: &str = "maskprep-check/1";

/// Pairs listed per kind of duplicate, at most (all are counted).
pub const PAIRS_LISTED: usize = 1000;

/// Quantiles of the object sizes reported.
pub const QUANTILES: [(&str, f64); 5] = [
    ("p10", 0.10),
    ("p25", 0.25),
    ("p50", 0.50),
    ("p75", 0.75),
    ("p90", 0.90),
];

/// Size ranges of the report's object-size plot (pixels).
pub const SIZE_EDGES: [u64; 8] = [2, 5, 10, 50, 100, 1000, 10_000, 100_000];

#[derive(Debug, Clone, Serialize)]
pub struct CheckDoc {
    pub format: &'static str,
    pub meta: Meta,
    pub files: Files,
    pub classes: Vec<ClassObjects>,
    pub splits: Vec<SplitDoc>,
    /// Per class, its share in each split (in `splits` order), largest
    /// difference first.
    pub shares: Vec<Shares>,
    pub duplicates: Duplicates,
    /// Cross-split duplicates (masks or photos) and classes absent from a
    /// split: what `--strict` fails on.
    pub problems: Problems,
    pub warnings: Vec<String>,
    pub definitions: Definitions,
}

#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    pub dataset: String,
    pub labels_origin: String,
    pub classes: Vec<String>,
    pub connectivity: u8,
    pub min_object: u64,
    pub photos_hashed: bool,
    pub splits_origin: String,
    /// Edges of each class's `size_bins` (pixels): below the first, between
    /// edges, from the last up.
    pub size_bin_edges: Vec<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Files {
    pub masks_found: u64,
    pub masks_read: u64,
    pub bad: Vec<BadFile>,
    pub bad_photos: Vec<BadFile>,
    /// Keys a VOC list puts in several splits (counted in the first).
    pub listed_in_several_splits: Vec<String>,
}

/// Object sizes in pixels: exact min and max, quantiles as in
/// [`super::sizes`].
#[derive(Debug, Clone, Serialize)]
pub struct SizeDoc {
    pub min: u64,
    pub p10: u64,
    pub p25: u64,
    pub p50: u64,
    pub p75: u64,
    pub p90: u64,
    pub max: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClassObjects {
    pub name: String,
    /// Masks holding the class.
    pub images: u64,
    pub objects: u64,
    pub objects_per_image: f64,
    pub max_objects_per_image: u64,
    /// `None` without objects.
    pub sizes: Option<SizeDoc>,
    /// Objects in the ranges below `SIZE_EDGES[0]`, between edges, above the last.
    pub size_bins: Vec<u64>,
    /// Objects enclosing at least one hole.
    pub objects_with_holes: u64,
    pub small_objects: u64,
    pub images_with_small_objects: u64,
    /// Worst first: most small objects, then the smallest, then by path.
    pub worst_images: Vec<SmallImage>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SplitDoc {
    pub name: String,
    pub images: u64,
    pub valid_pixels: u64,
    /// Declared classes with no pixel in this split.
    pub missing_classes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Shares {
    pub class: String,
    /// Class pixels / valid pixels, per split (`None`: no valid pixel).
    pub pixel_share: Vec<Option<f64>>,
    /// Masks holding the class / masks, per split.
    pub image_share: Vec<Option<f64>>,
    /// Largest minus smallest pixel share over the splits.
    pub pixel_share_spread: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Duplicates {
    pub masks: DupDoc,
    /// `None` when photos were not hashed (`--no-photos`, or no photos).
    pub photos: Option<DupDoc>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DupDoc {
    /// Sets of two or more files with one hash.
    pub groups: u64,
    pub files: u64,
    pub pairs: u64,
    pub cross_split_pairs: u64,
    /// Cross-split pairs first, then by path; at most [`PAIRS_LISTED`].
    pub listed: Vec<Pair>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Pair {
    pub a: String,
    pub b: String,
    pub split_a: String,
    pub split_b: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Problems {
    pub leaked_mask_pairs: u64,
    pub leaked_photo_pairs: u64,
    /// (split, class) pairs with no pixel.
    pub missing_classes: u64,
}

impl Problems {
    pub fn any(&self) -> bool {
        self.leaked_mask_pairs + self.leaked_photo_pairs + self.missing_classes > 0
    }
}

/// What the numbers mean, carried in the document.
#[derive(Debug, Clone, Serialize)]
pub struct Definitions {
    pub objects: &'static str,
    pub holes: &'static str,
    pub quantiles: &'static str,
    pub duplicate_masks: &'static str,
    pub duplicate_photos: &'static str,
}

pub const DEFINITIONS: Definitions = Definitions {
    objects: "connected components of each class's plane (pixels carrying the class), \
              8-connected (corners touch) unless `connectivity` is 4",
    holes: "components of the rest of the image (pixels not carrying the class, ignored ones \
            included) under the dual connectivity (4 for 8, 8 for 4) that touch no border; \
            an object with at least one counts once",
    quantiles: "size of the object at rank ceil(q*n) in increasing order (numpy \
                method='inverted_cdf'); exact below 4096 pixels, above it the lower edge of a \
                bucket 1/128 of a power of two wide; min and max exact",
    duplicate_masks: "equal size and equal label set on every pixel (xxh3-128 of the decoded \
                      planes), however the files encode them; masks with one label set on \
                      every pixel (empty, all background) are not compared",
    duplicate_photos: "equal size and equal 8-bit RGB pixels after decoding (xxh3-128), alpha \
                       dropped: a lossless re-encoding matches, a lossy one (JPEG, even at \
                       quality 100) does not",
};

/// Builds the document from the pass.
pub fn build(
    meta: Meta,
    ds: &Dataset,
    splits: &Splits,
    checked: &Checked,
    opts: &Options,
) -> CheckDoc {
    let classes = class_objects(&meta.classes, checked);
    let split_docs: Vec<SplitDoc> = splits
        .names
        .iter()
        .zip(&checked.splits)
        .map(|(name, s)| SplitDoc {
            name: name.clone(),
            images: s.images,
            valid_pixels: s.valid,
            missing_classes: s
                .class_pixels
                .iter()
                .zip(&meta.classes)
                .filter(|(n, _)| **n == 0)
                .map(|(_, c)| c.clone())
                .collect(),
        })
        .collect();
    let shares = shares(&meta.classes, checked);
    let masks = duplicates(ds, splits, checked, false);
    let photos = opts
        .photos
        .then(|| duplicates(ds, splits, checked, true))
        .filter(|_| ds.items.iter().any(|i| i.image.is_some()));
    let problems = Problems {
        leaked_mask_pairs: masks.cross_split_pairs,
        leaked_photo_pairs: photos.as_ref().map_or(0, |p| p.cross_split_pairs),
        missing_classes: split_docs
            .iter()
            .map(|s| s.missing_classes.len() as u64)
            .sum(),
    };
    let files = Files {
        masks_found: ds.items.len() as u64,
        masks_read: checked.facts.len() as u64,
        bad: checked.bad.clone(),
        bad_photos: checked.bad_photos.clone(),
        listed_in_several_splits: splits.listed_twice.clone(),
    };
    let warnings = warnings(&problems, &split_docs, &masks, photos.as_ref(), &files);
    CheckDoc {
        format: FORMAT,
        meta,
        files,
        classes,
        splits: split_docs,
        shares,
        duplicates: Duplicates { masks, photos },
        problems,
        warnings,
        definitions: DEFINITIONS,
    }
}

fn class_objects(names: &[String], checked: &Checked) -> Vec<ClassObjects> {
    names
        .iter()
        .zip(&checked.classes)
        .map(|(name, a)| {
            let h = &a.sizes;
            let q = |p: f64| h.quantile(p).unwrap_or(0);
            let sizes = h.min.map(|min| SizeDoc {
                min,
                p10: q(QUANTILES[0].1),
                p25: q(QUANTILES[1].1),
                p50: q(QUANTILES[2].1),
                p75: q(QUANTILES[3].1),
                p90: q(QUANTILES[4].1),
                max: h.max,
            });
            ClassObjects {
                name: name.clone(),
                images: a.images,
                objects: h.objects,
                objects_per_image: if a.images == 0 {
                    0.0
                } else {
                    h.objects as f64 / a.images as f64
                },
                max_objects_per_image: a.max_per_image,
                sizes,
                size_bins: h.binned(&SIZE_EDGES),
                objects_with_holes: a.holed,
                small_objects: a.small,
                images_with_small_objects: a.small_images,
                worst_images: a.worst.clone(),
            }
        })
        .collect()
}

fn ratio(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

fn shares(names: &[String], checked: &Checked) -> Vec<Shares> {
    let mut out: Vec<Shares> = names
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let pixel_share: Vec<Option<f64>> = checked
                .splits
                .iter()
                .map(|s| ratio(s.class_pixels[c], s.valid))
                .collect();
            let known = pixel_share.iter().flatten();
            let hi = known.clone().copied().fold(f64::MIN, f64::max);
            let lo = known.copied().fold(f64::MAX, f64::min);
            Shares {
                class: name.clone(),
                image_share: checked
                    .splits
                    .iter()
                    .map(|s| ratio(s.class_images[c], s.images))
                    .collect(),
                pixel_share,
                pixel_share_spread: if hi >= lo { hi - lo } else { 0.0 },
            }
        })
        .collect();
    // Stable: equal spreads keep the class order.
    out.sort_by(|a, b| b.pixel_share_spread.total_cmp(&a.pixel_share_spread));
    out
}

/// Groups the masks (or their photos) by hash and lists the pairs of each
/// group: cross-split pairs first, each kind sorted by path, at most
/// [`PAIRS_LISTED`] (all counted; past the bound, which pairs are listed
/// follows the hashes' order).
fn duplicates(ds: &Dataset, splits: &Splits, checked: &Checked, photos: bool) -> DupDoc {
    let mut keyed: Vec<(u128, usize)> = checked
        .facts
        .iter()
        .filter_map(|f| {
            let h = if photos { f.photo_hash } else { f.mask_hash };
            h.map(|h| (h, f.index))
        })
        .collect();
    keyed.sort_unstable();
    let mut doc = DupDoc::default();
    let (mut cross, mut within) = (Vec::new(), Vec::new());
    let path = |k: usize| match (&ds.items[k].image, photos) {
        (Some(image), true) => image.display().to_string(),
        _ => ds.items[k].mask.display().to_string(),
    };
    for group in keyed.chunk_by(|a, b| a.0 == b.0).filter(|g| g.len() > 1) {
        doc.groups += 1;
        doc.files += group.len() as u64;
        for (i, &(_, a)) in group.iter().enumerate() {
            for &(_, b) in &group[i + 1..] {
                let (sa, sb) = (splits.of[a], splits.of[b]);
                doc.pairs += 1;
                doc.cross_split_pairs += u64::from(sa != sb);
                let list = if sa == sb { &mut within } else { &mut cross };
                if list.len() < PAIRS_LISTED {
                    list.push(Pair {
                        a: path(a),
                        b: path(b),
                        split_a: splits.names[sa].clone(),
                        split_b: splits.names[sb].clone(),
                    });
                }
            }
        }
    }
    cross.sort();
    within.sort();
    cross.extend(within);
    cross.truncate(PAIRS_LISTED);
    doc.listed = cross;
    doc
}

fn warnings(
    problems: &Problems,
    splits: &[SplitDoc],
    masks: &DupDoc,
    photos: Option<&DupDoc>,
    files: &Files,
) -> Vec<String> {
    let mut w = Vec::new();
    if problems.leaked_mask_pairs > 0 {
        w.push(format!(
            "{} pair(s) of identical masks across splits (leakage)",
            problems.leaked_mask_pairs
        ));
    }
    if problems.leaked_photo_pairs > 0 {
        w.push(format!(
            "{} pair(s) of identical photos across splits (leakage)",
            problems.leaked_photo_pairs
        ));
    }
    let within = masks.pairs - masks.cross_split_pairs;
    if within > 0 {
        w.push(format!(
            "{within} pair(s) of identical masks within a split"
        ));
    }
    if let Some(p) = photos.filter(|p| p.pairs > p.cross_split_pairs) {
        w.push(format!(
            "{} pair(s) of identical photos within a split",
            p.pairs - p.cross_split_pairs
        ));
    }
    for s in splits.iter().filter(|s| !s.missing_classes.is_empty()) {
        let list: Vec<String> = s.missing_classes.iter().map(|c| format!("`{c}`")).collect();
        w.push(format!(
            "split `{}` has no pixel of {} (its IoU is undefined there)",
            s.name,
            list.join(", ")
        ));
    }
    if !files.listed_in_several_splits.is_empty() {
        w.push(format!(
            "{} mask(s) listed in several splits (leakage; counted in the first list)",
            files.listed_in_several_splits.len()
        ));
    }
    w
}

/// Shares shown in the table's drift section, at most.
const DRIFT_SHOWN: usize = 10;
/// Pairs and images shown per list in the table, at most.
const TABLE_LISTED: usize = 10;

/// The table on stdout.
pub fn render_table(doc: &CheckDoc) -> String {
    let mut s = String::new();
    let m = &doc.meta;
    let _ = writeln!(
        s,
        "maskprep check: {}: {} masks read of {}; labels: {}; objects {}-connected; small: under {} px\n",
        m.dataset,
        doc.files.masks_read,
        doc.files.masks_found,
        m.labels_origin,
        m.connectivity,
        m.min_object
    );
    objects_table(&mut s, doc);
    splits_table(&mut s, doc);
    dup_lines(&mut s, "masks", &doc.duplicates.masks);
    match &doc.duplicates.photos {
        Some(p) => dup_lines(&mut s, "photos", p),
        None => s.push_str("duplicate photos: not checked (no photos, or `--no-photos`)\n"),
    }
    if !doc.warnings.is_empty() {
        s.push('\n');
        for w in &doc.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
    }
    s
}

fn name_width(doc: &CheckDoc) -> usize {
    doc.meta
        .classes
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(5)
        .clamp(5, crate::labels::MAX_NAME_CHARS)
}

fn objects_table(s: &mut String, doc: &CheckDoc) {
    let w = name_width(doc);
    let _ = writeln!(
        s,
        "{:<w$}  {:>8}  {:>10}  {:>9}  {:>7}  {:>8}  {:>8}  {:>9}  {:>7}  {:>7}",
        "class",
        "images",
        "objects",
        "per image",
        "max/img",
        "min px",
        "median",
        "max px",
        "holed",
        "small"
    );
    for c in &doc.classes {
        let (min, med, max) = c
            .sizes
            .as_ref()
            .map_or(("-".into(), "-".into(), "-".into()), |z| {
                (z.min.to_string(), z.p50.to_string(), z.max.to_string())
            });
        let _ = writeln!(
            s,
            "{:<w$}  {:>8}  {:>10}  {:>9.2}  {:>7}  {:>8}  {:>8}  {:>9}  {:>7}  {:>7}",
            c.name,
            c.images,
            c.objects,
            c.objects_per_image,
            c.max_objects_per_image,
            min,
            med,
            max,
            c.objects_with_holes,
            c.small_objects
        );
    }
    for c in doc.classes.iter().filter(|c| !c.worst_images.is_empty()) {
        let _ = writeln!(
            s,
            "  `{}`: {} image(s) with objects under {} px, worst first:",
            c.name, c.images_with_small_objects, doc.meta.min_object
        );
        for i in c.worst_images.iter().take(TABLE_LISTED) {
            let _ = writeln!(
                s,
                "    {} ({} small, smallest {} px)",
                i.mask, i.small_objects, i.smallest
            );
        }
    }
    s.push('\n');
}

fn splits_table(s: &mut String, doc: &CheckDoc) {
    let _ = writeln!(s, "splits ({}):", doc.meta.splits_origin);
    for sp in &doc.splits {
        let missing = if sp.missing_classes.is_empty() {
            "none".to_string()
        } else {
            sp.missing_classes.join(", ")
        };
        let _ = writeln!(
            s,
            "  {:<12} {:>8} images   classes missing: {missing}",
            sp.name, sp.images
        );
    }
    if doc.splits.len() > 1 {
        let w = name_width(doc);
        let _ = write!(s, "\npixel share, largest spread first\n{:<w$}", "class");
        for sp in &doc.splits {
            let _ = write!(s, "  {:>10}", sp.name);
        }
        let _ = writeln!(s, "  {:>10}", "spread");
        for r in doc.shares.iter().take(DRIFT_SHOWN) {
            let _ = write!(s, "{:<w$}", r.class);
            for v in &r.pixel_share {
                match v {
                    Some(v) => {
                        let _ = write!(s, "  {:>9.3}%", v * 100.0);
                    }
                    None => {
                        let _ = write!(s, "  {:>10}", "-");
                    }
                }
            }
            let _ = writeln!(s, "  {:>9.3}%", r.pixel_share_spread * 100.0);
        }
    }
    s.push('\n');
}

fn dup_lines(s: &mut String, what: &str, d: &DupDoc) {
    let _ = writeln!(
        s,
        "duplicate {what}: {} group(s), {} pair(s), {} across splits",
        d.groups, d.pairs, d.cross_split_pairs
    );
    for p in d.listed.iter().take(TABLE_LISTED) {
        let _ = writeln!(s, "  {} ({}) = {} ({})", p.a, p.split_a, p.b, p.split_b);
    }
    if d.pairs as usize > TABLE_LISTED.min(d.listed.len()) {
        let _ = writeln!(s, "  ... (all listed in `--json`, up to {PAIRS_LISTED})");
    }
}

impl CheckDoc {
    /// 1 when files were skipped, or (`strict`) a leak or a missing class was
    /// found; else 0.
    pub fn exit_code(&self, strict: bool) -> u8 {
        let skipped = !self.files.bad.is_empty() || !self.files.bad_photos.is_empty();
        u8::from(skipped || strict && self.problems.any())
    }

    /// Lists skipped files (always) and the warnings (unless quiet).
    pub fn report_problems(&self, console: &Console) {
        for b in self.files.bad.iter().chain(&self.files.bad_photos) {
            console.skipped(&b.path, &b.reason);
        }
        for w in &self.warnings {
            console.warn(w);
        }
    }
}

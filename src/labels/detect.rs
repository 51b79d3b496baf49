//! Auto-detection of a label map when none is given: from a map file that
//! ships with the dataset, from a known layout or file names (VOC,
//! Cityscapes, ADE20K), or from evidence measured on a sample of masks.
//! Every decision comes with a sentence saying why, the facts behind it,
//! how sure it is and the runner-up reading.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::evidence::{self, Confidence, Detection, Overlap, RgbEvidence};
use super::presets::{self, VOC_CLASSES, voc_colour};
use super::{CodeRef, Kind, LabelError, LabelSpec, Unlisted, hex};
use crate::decode::{MaskFormat, MaskHist};

/// A detected label map and the reason it was chosen.
#[derive(Debug, Clone)]
pub struct Detected {
    pub spec: LabelSpec,
    pub origin: String,
    pub why: String,
    pub detection: Detection,
}

/// Where the dataset is, and what its layout implies.
pub struct Hints<'a> {
    /// The folder given on the command line.
    pub root: &'a Path,
    /// The (first) mask folder found in it.
    pub mask_dir: &'a Path,
    /// A preset the layout implies (`ade20k`, `ade20k-full`).
    pub preset: Option<&'static str>,
    /// The layout recognised (`VOC layout`, ...).
    pub layout: Option<&'static str>,
}

/// Dataset map files, looked for near the masks (see [`map_dirs`]).
pub const MAP_FILES: &[&str] = &[
    "labels.toml",
    "labelmap.txt",
    "label_colors.txt",
    "class_dict.csv",
    "dataset_meta.json",
];

/// Most distinct RGB colours for masks to be read as a palette.
const MAX_AUTO_COLOURS: usize = 256;

/// Folders searched for a map file, nearest first: the mask folder, the two
/// folders above it, the given folder and its parent, then the mask
/// folder's siblings when it lies inside the given folder.
pub fn map_dirs(root: &Path, mask_dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let up1 = mask_dir.parent();
    let up2 = up1.and_then(Path::parent);
    for d in [Some(mask_dir), up1, up2, Some(root), root.parent()]
        .into_iter()
        .flatten()
    {
        dirs.push(d.to_path_buf());
    }
    // Siblings only inside the dataset: beside `DIR` itself lie other datasets.
    let inside = mask_dir != root && mask_dir.starts_with(root);
    if let Some(up1) = up1.filter(|_| inside) {
        dirs.extend(crate::store::subdirs(up1));
    }
    let mut seen = BTreeSet::new();
    dirs.retain(|d| seen.insert(d.clone()));
    dirs
}

/// Detects the label map of a dataset from where it is, its mask paths,
/// and the histograms (and palettes) of a sample of its masks.
pub fn detect(
    hints: &Hints<'_>,
    masks: &[PathBuf],
    sample: &[(PathBuf, MaskHist)],
    palettes: &[Option<Vec<u8>>],
) -> Result<Detected, LabelError> {
    let root = hints.root;
    let formats: BTreeSet<MaskFormat> = sample.iter().map(|(_, h)| h.format).collect();
    let all_index = formats.iter().all(|f| f.is_index());
    for dir in map_dirs(root, hints.mask_dir) {
        for name in MAP_FILES {
            let path = dir.join(name);
            // One that is there but unreadable (a dangling link, a folder,
            // a device) is an error below, never passed over.
            if !super::map_file_present(&path) {
                continue;
            }
            let origin = path.display().to_string();
            let mut spec = presets::load_spec(&origin)?;
            let mut why = format!("found `{origin}` beside the masks");
            if all_index && spec.kind == Kind::Palette {
                spec = presets::palette_as_index(&spec);
                why.push_str(": index masks, so value i is its i-th class, 255 ignored");
            }
            let mut detection =
                Detection::sure("map file", format!("the dataset's own `{origin}`"));
            detection.alternative = Some(
                "a reading detected from the masks: not needed, the file names the classes".into(),
            );
            return Ok(Detected {
                spec,
                origin,
                why,
                detection,
            });
        }
    }
    let named = |suffix: &str| {
        !masks.is_empty()
            && masks.iter().all(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(suffix))
            })
    };
    if all_index && named("_labelTrainIds.png") {
        let why =
            "mask names end in `_labelTrainIds.png`: Cityscapes trainIds (19 classes, 255 ignored)";
        return Ok(preset(
            presets::cityscapes_train_ids(),
            "cityscapes-trainids",
            why,
        ));
    }
    if all_index && named("_labelIds.png") {
        let why = "mask names end in `_labelIds.png`: Cityscapes labelIds mapped to the 19 trainId classes, other ids ignored";
        return Ok(preset(presets::cityscapes_label_ids(), "cityscapes", why));
    }
    if sample.is_empty() {
        return Err(LabelError::malformed(
            &root.display().to_string(),
            "no readable mask to detect a label map from; pass `--labels`",
        ));
    }
    if formats.len() > 1 && !all_index {
        let names: Vec<&str> = formats.iter().map(|f| f.describe()).collect();
        return Err(LabelError::malformed(
            &root.display().to_string(),
            format!(
                "masks mix formats ({}); pass `--labels` to say how to read them",
                names.join(", ")
            ),
        ));
    }
    let n = sample.len();
    if all_index && hints.preset == Some("ade20k") {
        let values = evidence::value_pixels(sample);
        if values.keys().all(|&v| v <= 150) {
            let why = format!(
                "ADE20K SceneParsing layout (`ADE_*` masks in `annotations/`) with values within \
                 0..=150 in {n} sampled masks: the 150 ADE20K classes, value v is class v-1, 0 \
                 (\"other\") ignored"
            );
            return Ok(preset(presets::ade20k(), "ade20k", &why));
        }
    }
    if !all_index && hints.preset == Some("ade20k-full") {
        return Ok(detect_ade_full(sample, n));
    }
    if all_index {
        return detect_index(hints, sample, palettes, &formats, n);
    }
    detect_rgb(hints, sample, n)
}

fn preset(spec: LabelSpec, name: &str, why: &str) -> Detected {
    let mut detection = Detection::sure(&format!("preset {name}"), why);
    detection.alternative = Some(format!(
        "each code its own unnamed class (`class_<value>` or `#rrggbb`): rejected, the \
         {name} layout, names or colours say what the codes mean"
    ));
    Detected {
        spec,
        origin: format!("preset {name}"),
        why: why.to_string(),
        detection,
    }
}

/// Only `0`/`255` (or `0`/`1`), or `0`/`255` with a thin spread of blended
/// values between: one foreground class, a threshold.
fn binary_reading(values: &BTreeMap<u32, u64>) -> Option<(u8, Option<f64>)> {
    let keys: Vec<u32> = values.keys().copied().collect();
    if keys.iter().all(|&v| v == 0 || v == 255) && values.contains_key(&255) {
        return Some((128, None));
    }
    if keys.iter().all(|&v| v <= 1) && values.contains_key(&1) {
        return Some((1, None));
    }
    if keys.iter().all(|&v| v <= 1 || v == 255)
        && values.contains_key(&1)
        && values.contains_key(&255)
    {
        // 0/1 with a VOC-style 255 border: binary, 255 ignored.
        return Some((1, None));
    }
    // Blended edges or compression noise: near-0 and near-255 values, many
    // other values each rare, mid-range ones a small share, and no value
    // far from 0/255 common (a class of its own, as VOC's 15 would be).
    let total: u64 = values.values().sum();
    let others: Vec<(u32, u64)> = values
        .iter()
        .filter(|(v, _)| **v != 0 && **v != 255)
        .map(|(v, n)| (*v, *n))
        .collect();
    let blended: u64 = others.iter().map(|o| o.1).sum();
    let mid: u64 = others
        .iter()
        .filter(|o| (33..=222).contains(&o.0))
        .map(|o| o.1)
        .sum();
    let far = others
        .iter()
        .filter(|o| (9..=246).contains(&o.0))
        .map(|o| o.1)
        .max()
        .unwrap_or(0);
    let low = values.keys().any(|&v| v <= 8);
    let high = values.keys().any(|&v| v >= 247);
    let edges = low
        && high
        && others.len() >= 16
        && mid * 5 <= total
        && far * 100 <= total
        && blended < total;
    edges.then(|| (128, Some(blended as f64 / total as f64)))
}

fn binary(
    what: &str,
    values: &BTreeMap<u32, u64>,
    threshold: u8,
    blended: Option<f64>,
    n: usize,
) -> Detected {
    let fg = if threshold == 1 { 1 } else { 255 };
    let border = threshold == 1 && values.contains_key(&255);
    let mut evidence = vec![match blended {
        None if border => format!(
            "values are only 0 and 1, plus 255 (a VOC-style ignore border) in {n} sampled masks"
        ),
        None => format!("values are only 0 and {fg} in {n} sampled masks"),
        Some(b) => format!(
            "values are near 0 and 255 but for {} of pixels spread over {} other values \
             (blended edges or compression noise)",
            share(b),
            values.len().saturating_sub(2)
        ),
    }];
    if let Some(b) = blended {
        evidence.push(format!(
            "{} of pixels are blended edges: thresholded at {threshold}",
            share(b)
        ));
    }
    let alternative = if threshold == 1 {
        "two index classes (0 and 1) for CrossEntropyLoss with 2 outputs: the same pixels, one \
         output more"
            .to_string()
    } else {
        "an index map with 255 ignored (VOC style): rejected, it would drop every foreground \
         pixel and leave one class"
            .to_string()
    };
    let why = format!(
        "{what} masks, binary: {}; value >= {threshold} is class `foreground`, smaller values \
         are background (no class, kept in N, not ignored), so pos_weight is the \
         BCEWithLogitsLoss weight of a 1-channel output",
        evidence.join("; ")
    );
    Detected {
        spec: LabelSpec {
            kind: Kind::Binary,
            classes: vec!["foreground".into()],
            threshold: Some(threshold),
            ignore: if border {
                vec![CodeRef::Value(255)]
            } else {
                Vec::new()
            },
            colors: Default::default(),
            values: Default::default(),
            unlisted: Unlisted::Unknown,
        },
        origin: "auto".into(),
        why,
        detection: Detection {
            confidence: if blended.is_some() {
                Confidence::Medium
            } else {
                Confidence::High
            },
            reading: "binary".into(),
            evidence,
            alternative: Some(alternative),
            settle: None,
            blended_fraction: blended,
        },
    }
}

fn share(f: f64) -> String {
    crate::format::percent(f)
}

fn detect_index(
    hints: &Hints<'_>,
    sample: &[(PathBuf, MaskHist)],
    palettes: &[Option<Vec<u8>>],
    formats: &BTreeSet<MaskFormat>,
    n: usize,
) -> Result<Detected, LabelError> {
    let pixels = evidence::value_pixels(sample);
    let eight_bit = !formats.contains(&MaskFormat::Gray16);
    if let Some(voc) = voc_index(hints, &pixels, palettes, formats, n) {
        return Ok(voc);
    }
    let what = formats
        .iter()
        .map(|f| f.describe())
        .collect::<Vec<_>>()
        .join(", ");
    if eight_bit && let Some((threshold, blended)) = binary_reading(&pixels) {
        return Ok(binary(&what, &pixels, threshold, blended, n));
    }
    index_by_value(hints.root, &what, &pixels, eight_bit, n)
}

/// The VOC preset, when the palette or the layout and the values say VOC.
fn voc_index(
    hints: &Hints<'_>,
    pixels: &BTreeMap<u32, u64>,
    palettes: &[Option<Vec<u8>>],
    formats: &BTreeSet<MaskFormat>,
    n: usize,
) -> Option<Detected> {
    let values: BTreeSet<u32> = pixels.keys().copied().collect();
    let is_voc = |p: &Option<Vec<u8>>| {
        p.as_ref().is_some_and(|p| {
            p.len() >= 3 * 21
                && (0..21u8).all(|i| p[3 * i as usize..3 * i as usize + 3] == voc_colour(i))
        })
    };
    if formats.iter().all(|f| *f == MaskFormat::Indexed)
        && !palettes.is_empty()
        && palettes.iter().all(is_voc)
        && values.iter().all(|&v| v <= 20 || v == 255)
    {
        let why = format!(
            "palette PNGs with the standard VOC palette, values within 0..=20 and 255 \
             in {n} sampled masks: reading indices as the {} VOC classes, 255 ignored",
            VOC_CLASSES.len()
        );
        return Some(preset(presets::voc_index(), "voc", &why));
    }
    let voc_dir = hints
        .mask_dir
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("SegmentationClass"));
    let voc_values = pixels.keys().all(|&v| v <= 20 || v == 255) && pixels.keys().any(|&v| v != 0);
    if (hints.layout == Some("VOC layout") || voc_dir) && voc_values {
        let folder = hints
            .mask_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let why = format!(
            "VOC layout (`{folder}`) with values within 0..=20 and 255 in {n} sampled masks: \
             the 21 VOC classes, 255 ignored"
        );
        return Some(preset(presets::voc_index(), "voc", &why));
    }
    None
}

/// Each value its own class: by position when the values are dense, one by
/// one when sparse; 255 ignored when it sits apart (VOC style).
fn index_by_value(
    root: &Path,
    what: &str,
    pixels: &BTreeMap<u32, u64>,
    eight_bit: bool,
    n: usize,
) -> Result<Detected, LabelError> {
    let values: BTreeSet<u32> = pixels.keys().copied().collect();
    let ignore = eight_bit && evidence::ignore_255(pixels);
    let seen: Vec<u32> = values
        .iter()
        .copied()
        .filter(|&v| !(ignore && v == 255))
        .collect();
    let max = seen.last().copied().unwrap_or(0);
    // Dense values (0..=max, max < 256, most of the range used) map by
    // position; sparse ones (0/85/170/255) or 16-bit ones (1000, 40000) are
    // listed one by one, so no empty classes pad the map.
    if seen.len() > MAX_AUTO_COLOURS {
        return Err(LabelError::malformed(
            &root.display().to_string(),
            format!(
                "{} distinct values in {n} sampled masks, more than a class mask has (instance \
                 ids?); expected at most {MAX_AUTO_COLOURS}, or pass `--labels`",
                seen.len()
            ),
        ));
    }
    let dense = max < 256 && (max <= 20 || seen.len() * 2 > max as usize + 1);
    let classes: Vec<String> = if dense {
        (0..=max).map(|v| format!("class_{v}")).collect()
    } else {
        seen.iter().map(|v| format!("class_{v}")).collect()
    };
    let value_map = if dense {
        Default::default()
    } else {
        seen.iter()
            .map(|v| (v.to_string(), format!("class_{v}")))
            .collect()
    };
    let ignore_note = if ignore { ", 255 ignored" } else { "" };
    let listing = if dense {
        format!("class_0..class_{max}")
    } else {
        format!("{} values seen, each `class_<value>`", seen.len())
    };
    let alternative = ignore_alternative(ignore, &values, eight_bit);
    Ok(Detected {
        spec: LabelSpec {
            kind: Kind::Index,
            classes,
            threshold: None,
            ignore: if ignore {
                vec![CodeRef::Value(255)]
            } else {
                Vec::new()
            },
            colors: Default::default(),
            values: value_map,
            unlisted: Unlisted::Unknown,
        },
        origin: "auto".into(),
        why: format!(
            "{what} masks with {} in {n} sampled masks: reading each value as a class \
             ({listing}{ignore_note}); other values will be reported as undeclared; to name the \
             classes, write the map with `maskprep labels {} -o labels.toml` and edit it",
            if max == 0 {
                "only the value 0".to_string()
            } else if dense {
                format!("values within 0..={max}")
            } else {
                format!("values up to {max}")
            },
            root.display()
        ),
        detection: Detection {
            confidence: Confidence::Medium,
            reading: "index".into(),
            evidence: vec![format!(
                "{} distinct values in {n} sampled masks, up to {max}",
                values.len()
            )],
            alternative,
            settle: None,
            blended_fraction: None,
        },
    })
}

/// The reading of 255 that detection rejected, if 255 was a question.
fn ignore_alternative(ignore: bool, values: &BTreeSet<u32>, eight_bit: bool) -> Option<String> {
    if ignore {
        Some(
            "255 as a class of its own: rejected, it sits apart from the small range of \
             the other values (VOC style ignore)"
                .to_string(),
        )
    } else if values.contains(&255) && eight_bit {
        Some(
            "255 as ignore (VOC style): rejected, the other values are not a small range \
             far below it"
                .to_string(),
        )
    } else {
        None
    }
}

/// The full ADE20K format: class = R/10*256 + G, B is the instance.
fn detect_ade_full(sample: &[(PathBuf, MaskHist)], n: usize) -> Detected {
    let ids: BTreeSet<u32> = sample
        .iter()
        .flat_map(|(_, h)| h.codes.iter().map(|c| presets::ade_full_class(c.0)))
        .filter(|&id| id != 0)
        .collect();
    let spec = presets::ade20k_full(&ids);
    let why = format!(
        "ADE20K full layout (`*_seg.png` beside the photos): class = R/10*256 + G, B is the \
         instance; {} classes seen in {n} sampled masks, each `class_<id>` (0 = unlabelled, \
         ignored); `*_parts_N.png` are part masks, not read",
        ids.len()
    );
    Detected {
        spec,
        origin: "preset ade20k-full".into(),
        detection: Detection::sure("preset ade20k-full", why.clone()),
        why,
    }
}

fn detect_rgb(
    hints: &Hints<'_>,
    sample: &[(PathBuf, MaskHist)],
    n: usize,
) -> Result<Detected, LabelError> {
    let root = hints.root;
    if let Some(d) = voc_colours(hints, sample, n) {
        return Ok(d);
    }
    let e = RgbEvidence::measure(sample);
    if e.all_gray {
        // Read as the brightest channel, as the binary map reads RGB.
        let mut values = BTreeMap::new();
        for (_, h) in sample {
            for &(code, px) in &h.codes {
                let v = (code >> 16 & 0xFF).max(code >> 8 & 0xFF).max(code & 0xFF);
                *values.entry(v).or_insert(0) += px;
            }
        }
        if let Some((threshold, blended)) = binary_reading(&values) {
            return Ok(binary(
                "RGB (gray colours only)",
                &values,
                threshold,
                blended,
                n,
            ));
        }
    }
    if e.blended() == 0 || e.blended_edges() {
        return Ok(pure_colours(hints, &e, n));
    }
    if e.colours > MAX_AUTO_COLOURS {
        return Err(LabelError::malformed(
            &root.display().to_string(),
            format!(
                "{} distinct colours in {n} sampled masks, more than a mask has (are these \
                 photos?); expected at most {MAX_AUTO_COLOURS}, or pass `--labels`",
                e.colours
            ),
        ));
    }
    let colours: BTreeSet<u32> = sample
        .iter()
        .flat_map(|(_, h)| h.codes.iter().map(|c| c.0 & 0x00FF_FFFF))
        .collect();
    let (classes, colors) = palette_of(&colours);
    let black = if colours.contains(&0) {
        "; black means no class"
    } else {
        ""
    };
    let blended = e.blended() as f64 / e.pixels.max(1) as f64;
    Ok(Detected {
        spec: LabelSpec::palette(classes, Vec::new(), colors),
        origin: "auto".into(),
        why: format!(
            "RGB masks with {} distinct colours in {n} sampled masks, not all 0/255: reading as \
             a palette, each colour its own class{black}; colours not in the sample will be \
             reported as undeclared",
            colours.len()
        ),
        detection: Detection {
            confidence: Confidence::Medium,
            reading: "palette".into(),
            evidence: vec![format!(
                "{} of pixels have channel values other than 0/255, in flat regions of a few \
                 colours (not blended edges)",
                share(blended)
            )],
            alternative: None,
            settle: None,
            blended_fraction: None,
        },
    })
}

/// RGB masks drawn in the VOC colours (within the VOC layout, or with VOC's
/// void border colour): the VOC palette preset.
fn voc_colours(hints: &Hints<'_>, sample: &[(PathBuf, MaskHist)], n: usize) -> Option<Detected> {
    let voc: BTreeSet<u32> = (0..21u8)
        .map(|i| {
            let [r, g, b] = voc_colour(i);
            u32::from(r) << 16 | u32::from(g) << 8 | u32::from(b)
        })
        .collect();
    let void = super::parse_hex(presets::VOC_VOID).unwrap_or(0);
    let colours: BTreeSet<u32> = sample
        .iter()
        .flat_map(|(_, h)| h.codes.iter().map(|c| c.0 & 0x00FF_FFFF))
        .collect();
    let within = colours.iter().all(|c| voc.contains(c) || *c == void);
    let coloured = colours.iter().any(|&c| c != 0 && c != void);
    let voc_dir = hints
        .mask_dir
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("SegmentationClass"));
    let sign = colours.contains(&void) || hints.layout == Some("VOC layout") || voc_dir;
    (within && coloured && sign).then(|| {
        let why = format!(
            "RGB masks whose {} colours are all VOC colours (`{}` = void) in {n} sampled \
             masks: the VOC palette, 21 classes, void ignored",
            colours.len(),
            presets::VOC_VOID
        );
        preset(presets::voc_palette(), "voc-colours", &why)
    })
}

/// Classes and colour entries for a palette of `colours` (black = no class).
fn palette_of(colours: &BTreeSet<u32>) -> (Vec<String>, BTreeMap<String, Vec<String>>) {
    let mut classes = Vec::new();
    let mut colors = BTreeMap::new();
    for &c in colours {
        if c == 0 {
            colors.insert(hex(c), Vec::new());
        } else {
            classes.push(hex(c));
            colors.insert(hex(c), vec![hex(c)]);
        }
    }
    if classes.is_empty() {
        classes.push("#000000".into());
        colors.insert("#000000".into(), vec!["#000000".into()]);
    }
    (classes, colors)
}

/// Masks whose channels are 0/255 (after thresholding blended edges): each
/// channel a class (overlaps allowed), or a palette of pure colours? Decided
/// from how the compound colours (2+ channels on) behave.
fn pure_colours(hints: &Hints<'_>, e: &RgbEvidence, n: usize) -> Detected {
    let o = Overlap::measure(e);
    let blended = (e.blended() > 0).then(|| e.blended() as f64 / e.pixels.max(1) as f64);
    let share_c = o.share();
    let mut evidence = pure_evidence(e, &o, blended, share_c, n);
    let (palette, confidence) = palette_or_channels(&o, share_c);
    let files = MAP_FILES
        .iter()
        .map(|f| format!("`{f}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if o.compound > 0 {
        evidence.push(format!(
            "no colour file ({files}) in `{}`, the two folders above it, or the folders \
             beside it inside the dataset",
            hints.mask_dir.display()
        ));
    }
    let channels_reading = "rgb-bits: each channel a class, compound colours (yellow = red + \
                            green) are overlaps, multi-label, BCEWithLogitsLoss";
    let palette_reading = "a palette: each colour its own class, single-label, CrossEntropyLoss";
    let settle = (confidence == Confidence::Low).then(|| {
        format!(
            "{}; a colour file ({files}) beside the masks would also settle it",
            evidence::settle(&hints.root.display().to_string())
        )
    });
    let thresholded = if blended.is_some() {
        " (thresholded at 128)"
    } else {
        ""
    };
    if palette {
        return pure_palette(
            e,
            blended,
            thresholded,
            confidence,
            evidence,
            settle,
            channels_reading,
        );
    }
    let why = format!(
        "RGB masks whose channels are 0/255 only{thresholded} ({} colours in {n} sampled \
         masks): reading as rgb-bits, each channel a class (red, green, blue) and a pixel may \
         carry several",
        e.colours,
    );
    Detected {
        spec: LabelSpec {
            kind: Kind::RgbBits,
            classes: vec!["red".into(), "green".into(), "blue".into()],
            threshold: Some(128),
            ignore: Vec::new(),
            colors: Default::default(),
            values: Default::default(),
            unlisted: Unlisted::Unknown,
        },
        origin: "auto".into(),
        why,
        detection: Detection {
            confidence,
            reading: "rgb-bits".into(),
            evidence,
            alternative: Some(palette_reading.into()),
            settle,
            blended_fraction: blended,
        },
    }
}

/// What the colours of pure-colour RGB masks show: blending, the colours
/// present, how many pixels have 2+ channels on, orphan compounds, black.
fn pure_evidence(
    e: &RgbEvidence,
    o: &Overlap,
    blended: Option<f64>,
    share_c: f64,
    n: usize,
) -> Vec<String> {
    let mut evidence = Vec::new();
    if let Some(b) = blended {
        evidence.push(format!(
            "{} of pixels are blended edges: thresholded at 128",
            share(b)
        ));
    }
    let present: Vec<String> = (1..8usize)
        .filter(|&b| e.by_bits[b] > 0)
        .map(|b| colour_name(b).to_string())
        .collect();
    evidence.push(format!(
        "colours with channels at 0/255 in {n} sampled masks: {}",
        present.join(", ")
    ));
    if o.compound == 0 {
        evidence.push("no pixel has two channels on: channels and palette read the same".into());
    } else {
        evidence.push(format!(
            "{} of coloured pixels have 2+ channels on",
            share(share_c)
        ));
    }
    for (comp, part) in &o.orphans {
        evidence.push(format!(
            "`{}` occurs but its component `{}` never appears alone",
            hex(*comp),
            hex(*part)
        ));
    }
    if o.no_black && o.compound > 0 {
        evidence.push("no pixel is black (as channels, every pixel would carry a class)".into());
    }
    evidence
}

/// Whether the compound colours read as a palette, and how sure that is:
/// many compound pixels, or a compound whose parts never appear alone.
fn palette_or_channels(o: &Overlap, share_c: f64) -> (bool, Confidence) {
    let orphan = !o.orphans.is_empty();
    if o.compound == 0 {
        (false, Confidence::High)
    } else if share_c >= 0.5 {
        (
            true,
            if orphan {
                Confidence::High
            } else {
                Confidence::Medium
            },
        )
    } else if share_c < 0.05 && !orphan {
        (false, Confidence::High)
    } else if share_c < 0.15 {
        (false, Confidence::Medium)
    } else if orphan && share_c >= 0.3 {
        (true, Confidence::Medium)
    } else {
        (orphan || share_c >= 0.3, Confidence::Low)
    }
}

/// Pure-colour RGB masks read as a palette: each colour its own class.
fn pure_palette(
    e: &RgbEvidence,
    blended: Option<f64>,
    thresholded: &str,
    confidence: Confidence,
    evidence: Vec<String>,
    settle: Option<String>,
    channels_reading: &str,
) -> Detected {
    let colours: BTreeSet<u32> = (0..8usize)
        .filter(|&b| e.by_bits[b] > 0)
        .map(bits_colour)
        .collect();
    let (classes, colors) = palette_of(&colours);
    let edge_note = if blended.is_some() {
        "; blended edge colours are not in the palette and will be reported as undeclared"
    } else {
        ""
    };
    let why = format!(
        "RGB masks with pure colours{thresholded}: reading as a palette ({} colours, each \
         its own class, black = no class), not as overlapping channels{edge_note}",
        colours.len(),
    );
    Detected {
        spec: LabelSpec::palette(classes, Vec::new(), colors),
        origin: "auto".into(),
        why,
        detection: Detection {
            confidence,
            reading: "palette".into(),
            evidence,
            alternative: Some(channels_reading.into()),
            settle,
            blended_fraction: blended,
        },
    }
}

fn bits_colour(bits: usize) -> u32 {
    (if bits & 4 != 0 { 0xFF0000 } else { 0 })
        | (if bits & 2 != 0 { 0x00FF00 } else { 0 })
        | (if bits & 1 != 0 { 0x0000FF } else { 0 })
}

fn colour_name(bits: usize) -> &'static str {
    [
        "black", "blue", "green", "cyan", "red", "magenta", "yellow", "white",
    ][bits & 7]
}

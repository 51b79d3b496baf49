//! Auto-detection of a label map when none is given: from a map file that
//! ships with the dataset, from Cityscapes file names, or from the codes seen
//! in a sample of masks. Every decision comes with a sentence saying why.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::presets::{self, VOC_CLASSES, voc_colour};
use super::{CodeRef, Kind, LabelError, LabelSpec, Unlisted, hex};
use crate::decode::{MaskFormat, MaskHist};

/// A detected label map and the reason it was chosen.
#[derive(Debug, Clone)]
pub struct Detected {
    pub spec: LabelSpec,
    pub origin: String,
    pub why: String,
}

/// Dataset map files looked for in the dataset root and its parent.
const MAP_FILES: &[&str] = &[
    "labels.toml",
    "labelmap.txt",
    "label_colors.txt",
    "dataset_meta.json",
];

/// Most distinct RGB colours for masks to be read as a palette.
const MAX_AUTO_COLOURS: usize = 256;

/// Detects the label map of a dataset from `root`, its mask paths, and the
/// histograms (and palettes) of a sample of its masks.
pub fn detect(
    root: &Path,
    masks: &[PathBuf],
    sample: &[(PathBuf, MaskHist)],
    palettes: &[Option<Vec<u8>>],
) -> Result<Detected, LabelError> {
    let formats: BTreeSet<MaskFormat> = sample.iter().map(|(_, h)| h.format).collect();
    let all_index = formats.iter().all(|f| f.is_index());
    for dir in [Some(root), root.parent()].into_iter().flatten() {
        for name in MAP_FILES {
            let path = dir.join(name);
            if !path.is_file() {
                continue;
            }
            let origin = path.display().to_string();
            let mut spec = presets::load_spec(&origin)?;
            let mut why = format!("found `{origin}` beside the masks");
            if all_index && spec.kind == Kind::Palette {
                spec = presets::palette_as_index(&spec);
                why.push_str(": index masks, so value i is its i-th class, 255 ignored");
            }
            return Ok(Detected { spec, origin, why });
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
        return Ok(Detected {
            spec: presets::cityscapes_train_ids(),
            origin: "preset cityscapes-trainids".into(),
            why: "mask names end in `_labelTrainIds.png`: Cityscapes trainIds (19 classes, 255 ignored)".into(),
        });
    }
    if all_index && named("_labelIds.png") {
        return Ok(Detected {
            spec: presets::cityscapes_label_ids(),
            origin: "preset cityscapes".into(),
            why: "mask names end in `_labelIds.png`: Cityscapes labelIds mapped to the 19 trainId classes, other ids ignored".into(),
        });
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
    if all_index {
        return detect_index(root, sample, palettes, &formats, n);
    }
    detect_rgb(root, sample, n)
}

fn detect_index(
    root: &Path,
    sample: &[(PathBuf, MaskHist)],
    palettes: &[Option<Vec<u8>>],
    formats: &BTreeSet<MaskFormat>,
    n: usize,
) -> Result<Detected, LabelError> {
    let values: BTreeSet<u32> = sample
        .iter()
        .flat_map(|(_, h)| h.codes.iter().map(|c| c.0))
        .collect();
    let eight_bit = !formats.contains(&MaskFormat::Gray16);
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
        return Ok(Detected {
            spec: presets::voc_index(),
            origin: "preset voc".into(),
            why: format!(
                "palette PNGs with the standard VOC palette, values within 0..=20 and 255 \
                 in {n} sampled masks: reading indices as the {} VOC classes, 255 ignored",
                VOC_CLASSES.len()
            ),
        });
    }
    let ignore = eight_bit && values.contains(&255);
    let max = values
        .iter()
        .copied()
        .filter(|&v| !(ignore && v == 255))
        .max()
        .unwrap_or(0);
    let seen: Vec<u32> = values
        .iter()
        .copied()
        .filter(|&v| !(ignore && v == 255))
        .collect();
    // Dense values (0..=max, max < 256) map by position; sparse or 16-bit
    // ones (e.g. 1000, 40000) are listed one by one.
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
    let dense = max < 256;
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
    let what = formats
        .iter()
        .map(|f| f.describe())
        .collect::<Vec<_>>()
        .join(", ");
    let ignore_note = if ignore { ", 255 ignored" } else { "" };
    let listing = if dense {
        format!("class_0..class_{max}")
    } else {
        format!("{} values seen, each `class_<value>`", seen.len())
    };
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
            "{what} masks with values up to {max} in {n} sampled masks: reading each value as a \
             class ({listing}{ignore_note}); other values will be reported as undeclared; name \
             the classes with `maskprep labels DIR -o labels.toml`"
        ),
    })
}

fn detect_rgb(
    root: &Path,
    sample: &[(PathBuf, MaskHist)],
    n: usize,
) -> Result<Detected, LabelError> {
    let colours: BTreeSet<u32> = sample
        .iter()
        .flat_map(|(_, h)| h.codes.iter().map(|c| c.0 & 0x00FF_FFFF))
        .collect();
    let binary = colours
        .iter()
        .all(|c| [16, 8, 0].iter().all(|s| matches!(c >> s & 0xFF, 0 | 255)));
    if binary {
        return Ok(Detected {
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
            why: format!(
                "RGB masks whose channels are 0/255 only ({} colours in {n} sampled masks): \
                 reading as rgb-bits, each channel a class (red, green, blue) and a pixel may \
                 carry several",
                colours.len()
            ),
        });
    }
    if colours.len() > MAX_AUTO_COLOURS {
        return Err(LabelError::malformed(
            &root.display().to_string(),
            format!(
                "{} distinct colours in {n} sampled masks, more than a mask has (are these \
                 photos?); expected at most {MAX_AUTO_COLOURS}, or pass `--labels`",
                colours.len()
            ),
        ));
    }
    let mut classes = Vec::new();
    let mut colors = std::collections::BTreeMap::new();
    for &c in &colours {
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
    let black = if colours.contains(&0) {
        "; black means no class"
    } else {
        ""
    };
    Ok(Detected {
        spec: LabelSpec {
            kind: Kind::Palette,
            classes,
            threshold: None,
            ignore: Vec::new(),
            colors,
            values: Default::default(),
            unlisted: Unlisted::Unknown,
        },
        origin: "auto".into(),
        why: format!(
            "RGB masks with {} distinct colours in {n} sampled masks, not all 0/255: reading as \
             a palette, each colour its own class{black}; colours not in the sample will be \
             reported as undeclared",
            colours.len()
        ),
    })
}

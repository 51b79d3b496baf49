//! The manifest, `index.json`: what the shards hold (format, layout,
//! classes and colours, label map), where (per split: shards with sample
//! counts, byte sizes, sha256), the exact per-split counts (a stats
//! document each, as `maskprep stats --json` writes), the split report, what
//! was skipped, and the command that wrote it. Keys are sorted; the same
//! input and command give the same bytes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::{Dims, Format, Geometry};
use crate::format::table::{Column, Table, Width};
use crate::format::{percent, ratio};
use crate::labels::{LabelMap, LabelSpec};
use crate::stats::doc::StatsDoc;
use crate::stats::{BadFile, Counts};

/// One shard file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// Path relative to the manifest's folder.
    pub name: String,
    pub samples: u64,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassInfo {
    /// Plane index in every mask array.
    pub index: usize,
    pub name: String,
    /// `#rrggbb` where the label map gives the class one colour.
    pub colour: Option<String>,
}

/// One split's shards and counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitEntry {
    /// Share of the pairs asked for this split.
    pub fraction: f64,
    /// Image/mask pairs written (tiles come from one pair).
    pub pairs: u64,
    /// Samples written (pairs, or tiles).
    pub samples: u64,
    pub shards: Vec<ShardEntry>,
    /// Exact counts of the source masks written to this split.
    pub stats: StatsDoc,
}

/// How the split was drawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitSettings {
    pub seed: u64,
    /// Iterative stratification on per-image class presence.
    pub stratify: bool,
    /// Samples in seeded random order within each split (else key order).
    pub shuffle: bool,
}

/// One class across the splits: masks holding it and its pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassShare {
    pub class: String,
    pub images: BTreeMap<String, u64>,
    pub pixels: BTreeMap<String, u64>,
    /// Each split's share of the class's images (0..=1).
    pub image_share: BTreeMap<String, f64>,
    /// Each split's share of the class's pixels (0..=1).
    pub pixel_share: BTreeMap<String, f64>,
}

/// `index.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub maskprep_version: String,
    /// The command line that wrote the shards.
    pub command: Vec<String>,
    pub dataset: String,
    pub shard_format: Format,
    pub geometry: Geometry,
    /// safetensors: `[H, W]` of every sample; null for tar (sizes vary).
    pub sample_size: Option<Dims>,
    /// What each file of a sample (tar) or tensor (safetensors) holds.
    pub layout: BTreeMap<String, String>,
    pub mask_layout: String,
    pub classes: Vec<ClassInfo>,
    pub labels: LabelSpec,
    pub labels_origin: String,
    pub split: SplitSettings,
    pub splits: BTreeMap<String, SplitEntry>,
    pub split_report: Vec<ClassShare>,
    /// Pairs left out, and why.
    pub skipped: Vec<BadFile>,
    pub warnings: Vec<String>,
    /// Loss weights of the `train` split (pos_weight `[C,1,1]`, class
    /// weights); null until the weights stage fills it.
    pub weights: Option<serde_json::Value>,
}

/// Loss weights for the manifest (the `maskprep weights` document, default
/// options), from the training split's exact counts; `None` when the split
/// has no valid pixels to weigh.
pub fn loss_weights(train: &StatsDoc) -> Option<serde_json::Value> {
    let doc = crate::weights::doc::weights_doc(train, None, &Default::default()).ok()?;
    serde_json::to_value(&doc).ok()
}

/// What each file or tensor holds.
pub fn layout(format: Format) -> BTreeMap<String, String> {
    let pairs: &[(&str, &str)] = match format {
        Format::Webdataset => &[
            (
                "KEY.EXT",
                "the source image's bytes, unchanged (EXT as the source file: png, jpg)",
            ),
            ("KEY.mask.npy", "the mask, see mask_layout"),
            (
                "KEY.json",
                "key, split, source paths, width, height, present (0/1 per class)",
            ),
        ],
        Format::Safetensors => &[
            ("images", "uint8 [N,3,H,W], RGB"),
            ("masks", "uint8 [N,C,H,W], see mask_layout"),
            (
                "__metadata__.samples",
                "JSON list, per sample: key, split, source paths, width, height, tile, present",
            ),
            ("__metadata__.classes", "JSON list of class names"),
        ],
    };
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The class table from a label map.
pub fn classes(map: &LabelMap) -> Vec<ClassInfo> {
    map.classes()
        .iter()
        .zip(map.class_colours())
        .enumerate()
        .map(|(index, (name, colour))| ClassInfo {
            index,
            name: name.clone(),
            colour: colour.map(|[r, g, b]| format!("#{r:02x}{g:02x}{b:02x}")),
        })
        .collect()
}

/// Each class's images and pixels per split, and warnings for classes a
/// split lacks.
pub fn split_report(
    names: &[String],
    counts: &[Counts],
    classes: &[String],
) -> (Vec<ClassShare>, Vec<String>) {
    let mut warnings = Vec::new();
    let rows = classes
        .iter()
        .enumerate()
        .map(|(c, class)| {
            let images: u64 = counts.iter().map(|k| k.class_images[c]).sum();
            let pixels: u64 = counts.iter().map(|k| k.class_pixels[c]).sum();
            let mut row = ClassShare {
                class: class.clone(),
                images: BTreeMap::new(),
                pixels: BTreeMap::new(),
                image_share: BTreeMap::new(),
                pixel_share: BTreeMap::new(),
            };
            for (name, k) in names.iter().zip(counts) {
                row.images.insert(name.clone(), k.class_images[c]);
                row.pixels.insert(name.clone(), k.class_pixels[c]);
                row.image_share.insert(name.clone(), ratio(k.class_images[c], images));
                row.pixel_share.insert(name.clone(), ratio(k.class_pixels[c], pixels));
                if names.len() > 1 && images > 0 && k.class_images[c] == 0 {
                    warnings.push(format!(
                        "class `{class}` has no image in split `{name}` ({images} image(s) hold it in all)"
                    ));
                }
            }
            row
        })
        .collect();
    (rows, warnings)
}

/// The split report as a table for people.
pub fn render_split_report(m: &Manifest) -> String {
    let mut s = String::new();
    let names: Vec<&String> = order(m);
    // Measured in bytes, not characters (as it always was): a name with
    // non-ASCII letters gets a column a little wider than it needs.
    let w = m
        .split_report
        .iter()
        .map(|r| r.class.len())
        .max()
        .unwrap_or(5)
        .clamp(5, crate::labels::MAX_NAME_CHARS);
    let _ = writeln!(s, "split report: each class's images and pixels per split");
    let mut columns = vec![Column::left("class", Width::Fixed(w))];
    columns.extend(names.iter().map(|n| {
        let head = format!("{n} ({})", m.splits[*n].samples);
        Column::right(head, Width::Fixed(24))
    }));
    let mut table = Table::new(columns);
    for r in &m.split_report {
        let cells = names.iter().map(|n| {
            format!(
                "{} img, {} px",
                r.images.get(*n).copied().unwrap_or(0),
                percent(r.pixel_share.get(*n).copied().unwrap_or(0.0))
            )
        });
        table.row(std::iter::once(r.class.clone()).chain(cells));
    }
    table.write_to(&mut s);
    s
}

/// Split names, `train` first, then as sorted.
fn order(m: &Manifest) -> Vec<&String> {
    let mut v: Vec<&String> = m.splits.keys().collect();
    v.sort_by_key(|n| (n.as_str() != "train", n.as_str()));
    v
}

//! Collecting a dataset: find the masks, resolve the label map, scan →
//! the stats document, its per-image rows and the label map. The one copy
//! that `stats`, `weights`, `report` and pipelines run; nothing is written.

use std::path::Path;

use anyhow::Context;

use super::doc::{Files, Meta, StatsDoc};
use super::scan::{self, ImageRow, ScanOptions};
use crate::dataset::{ExportOptions, prepare};
use crate::labels::LabelMap;
use crate::output::Console;
use crate::source::Partition;

/// What to collect.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub dir: &'a Path,
    /// Label map file or preset; detected when `None`.
    pub labels: Option<&'a str>,
    /// How annotation exports are read.
    pub exports: ExportOptions,
    /// `None` or `1/1`: the whole dataset.
    pub partition: Option<Partition>,
    pub rare_below: f64,
    /// Stop at the first unreadable mask.
    pub strict: bool,
    /// Keep a row per mask (per-image tables, report plots).
    pub per_image: bool,
}

/// A collected dataset.
pub struct Collected {
    pub doc: StatsDoc,
    /// Empty unless asked for.
    pub rows: Vec<ImageRow>,
    pub map: LabelMap,
}

/// Scans a dataset into its stats document; says on the console how the
/// label map was chosen (when detected).
pub fn collect(req: &Request<'_>, console: &Console) -> anyhow::Result<Collected> {
    let dir = req.dir.display();
    let part = req.partition.unwrap_or(Partition::WHOLE);
    let prep = prepare(req.dir, req.labels, &req.exports, part)
        .with_context(|| format!("cannot compute stats for `{dir}`"))?;
    prep.announce(console);
    let opts = ScanOptions {
        strict: req.strict,
        per_image: req.per_image,
        progress: console.progress(),
    };
    let scan = scan::scan(&prep.dataset, &prep.map, &prep.cache, &opts)
        .with_context(|| format!("cannot compute stats for `{dir}`"))?;
    let files = Files {
        masks_found: prep.dataset.items.len() as u64,
        masks_without_images: prep
            .dataset
            .masks_without_images()
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        images_without_masks: prep
            .dataset
            .images_without_masks
            .iter()
            .map(|(_, p)| p.display().to_string())
            .collect(),
        size_mismatches: scan.mismatches.clone(),
        ..Files::default()
    };
    let meta = Meta {
        dataset: dir.to_string(),
        partition: req.partition.filter(|p| p.count > 1),
        labels: prep.map.spec.clone(),
        labels_origin: prep.origin.clone(),
        rare_below: req.rare_below,
    };
    let doc = StatsDoc::new(meta, &scan.counts, files, &prep.map);
    Ok(Collected {
        doc,
        rows: scan.rows,
        map: prep.map,
    })
}

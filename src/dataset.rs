//! Dataset stage: find the masks and their images, then resolve the label
//! map (loaded from `--labels`, or detected from the whole dataset so every
//! partition detects the same map). Histograms decoded for detection are
//! kept and reused by the scan, so no mask is decoded twice.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::decode::{self, MaskFormat, MaskHist, Scratch};
use crate::labels::LabelMap;
use crate::labels::detect::{self, Detected};
use crate::source::{self, Dataset, Partition};

/// Masks decoded to detect a label map (their histograms are reused).
const DETECT_SAMPLE: usize = 16;

/// A dataset with its label map, ready to scan.
pub struct Prepared {
    pub dataset: Dataset,
    pub map: LabelMap,
    pub origin: String,
    /// Why the map was chosen, when it was detected.
    pub why: Option<String>,
    /// Histograms decoded for detection, reused by the scan.
    pub cache: BTreeMap<PathBuf, MaskHist>,
}

/// Finds the masks and resolves the label map (loaded, or detected from the
/// whole dataset so every partition detects the same map).
pub fn prepare(dir: &Path, labels: Option<&str>, part: Partition) -> anyhow::Result<Prepared> {
    let whole = source::discover(dir)?;
    let (map, origin, why, cache) = match labels {
        Some(arg) => {
            let map = LabelMap::load(arg)?;
            (map, arg.to_string(), None, BTreeMap::new())
        }
        None => {
            let (det, cache) = detect_map(&whole)?;
            let map = LabelMap::compile(det.spec, &det.origin)?;
            (map, det.origin, Some(det.why), cache)
        }
    };
    let dataset = whole.partition(part);
    let cache = cache
        .into_iter()
        .filter(|(p, _)| dataset.items.iter().any(|i| &i.mask == p))
        .collect();
    Ok(Prepared {
        dataset,
        map,
        origin,
        why,
        cache,
    })
}

fn detect_map(ds: &Dataset) -> anyhow::Result<(Detected, BTreeMap<PathBuf, MaskHist>)> {
    let n = ds.items.len();
    let take = n.min(DETECT_SAMPLE);
    let mut picks: Vec<usize> = (0..take).map(|k| k * n / take).collect();
    picks.dedup();
    let mut scratch = Scratch::default();
    let mut sample = Vec::new();
    let mut palettes = Vec::new();
    for i in picks {
        let path = &ds.items[i].mask;
        let Ok(bytes) = decode::read_file(path) else {
            continue;
        };
        let Ok(hist) = decode::decode_hist(&bytes, &mut scratch) else {
            continue;
        };
        if hist.format == MaskFormat::Indexed {
            palettes.push(decode::palette(&bytes));
        }
        sample.push((path.clone(), hist));
    }
    let masks: Vec<PathBuf> = ds.items.iter().map(|i| i.mask.clone()).collect();
    let det = detect::detect(&ds.root, &masks, &sample, &palettes)?;
    Ok((det, sample.into_iter().collect()))
}

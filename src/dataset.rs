//! Dataset stage: find the masks and their images (the layout), then
//! resolve the label map (loaded from `--labels`, or detected from the whole
//! dataset so every partition detects the same map). Histograms decoded for
//! detection are kept and reused by the scan, so no mask is decoded twice.

pub mod exports;
pub mod layout;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::decode::{self, MaskFormat, MaskHist, Scratch};
use crate::labels::LabelMap;
use crate::labels::detect::{self, Detected, Hints};
use crate::labels::evidence::{self, Detection, PhotoEvidence};
use crate::output::Console;
use crate::source::{self, Dataset, Partition};

pub use exports::ExportOptions;

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
    /// Where the masks were found, and what was left out (for stderr).
    pub found: Vec<String>,
    /// Weak evidence behind the detected map, said loudly.
    pub warnings: Vec<String>,
    /// How the map was detected (stated on stderr).
    pub detection: Option<Detection>,
}

impl Prepared {
    /// States on the console where the masks are and how they are read;
    /// warnings about a doubtful label map are shown even when quiet.
    pub fn announce(&self, console: &Console) {
        for line in &self.found {
            console.note(line);
        }
        if let Some(why) = &self.why {
            console.note(&format!("labels: {why}"));
        }
        if let Some(d) = &self.detection {
            console.note(&format!(
                "labels: confidence {}; evidence: {}; runner-up: {}",
                format!("{:?}", d.confidence).to_lowercase(),
                d.evidence.join("; "),
                d.alternative
                    .as_deref()
                    .unwrap_or("none that fits these masks")
            ));
        }
        for w in &self.warnings {
            console.alert(w);
        }
    }
}

/// Finds the masks and resolves the label map (loaded, or detected from the
/// whole dataset so every partition detects the same map). A folder (or
/// file) holding an annotation export is read as that export.
pub fn prepare(
    dir: &Path,
    labels: Option<&str>,
    opts: &ExportOptions,
    part: Partition,
) -> anyhow::Result<Prepared> {
    if let Some(loaded) = exports::load(dir, opts)? {
        return prepare_export(loaded, labels, opts, part);
    }
    let (whole, layout) = discover(dir)?;
    resolve(whole, layout, dir, labels, part)
}

/// Given splits (`check --split name=DIR`) as one dataset: each split's
/// layout is found in its folder, and its keys start with `name/`. The
/// label map is loaded, or detected from all splits together (a class
/// absent from one split does not change the map).
pub fn prepare_splits(
    splits: &[(String, PathBuf)],
    labels: Option<&str>,
    opts: &ExportOptions,
) -> anyhow::Result<Prepared> {
    let Some((_, first)) = splits.first() else {
        anyhow::bail!("no split given; expected `--split NAME=DIR`");
    };
    let mut parts = Vec::new();
    let mut notes = Vec::new();
    let mut names = None;
    for (name, dir) in splits {
        if exports::load(dir, opts)?.is_some() {
            anyhow::bail!(
                "`--split {name}={}` is an annotation export; pass the export's folder as DIR \
                 and its splits are found from it",
                dir.display()
            );
        }
        source::check_dir(dir)?;
        let layout = layout::find(dir);
        if names.is_some_and(|n| n != layout.names) {
            anyhow::bail!(
                "split `{name}` (`{}`) names its masks unlike the first split; expected one kind \
                 of dataset",
                dir.display()
            );
        }
        names = Some(layout.names);
        notes.extend(layout.notes.iter().map(|n| format!("split `{name}`: {n}")));
        for mut p in layout.parts {
            p.prefix = if p.prefix.is_empty() {
                name.clone()
            } else {
                format!("{name}/{}", p.prefix)
            };
            parts.push(p);
        }
    }
    let layout = layout::Layout {
        name: Some("given splits"),
        parts,
        names: names.unwrap_or_default(),
        notes,
        preset: None,
        candidates: Vec::new(),
    };
    let whole = source::discover_parts(first, &layout.parts, layout.names)?;
    resolve(whole, layout, first, labels, Partition::WHOLE)
}

/// The label map of a dataset found at `dir` (loaded, or detected from the
/// whole dataset), then its partition `part`.
fn resolve(
    whole: Dataset,
    layout: layout::Layout,
    dir: &Path,
    labels: Option<&str>,
    part: Partition,
) -> anyhow::Result<Prepared> {
    let mut found: Vec<String> = layout::describe(&layout, dir).into_iter().collect();
    found.extend(layout.notes.iter().cloned());
    let mut warnings = Vec::new();
    let mut detection = None;
    let (map, origin, why, cache) = match labels {
        Some(arg) => {
            let map = LabelMap::load(arg)?;
            (map, arg.to_string(), None, BTreeMap::new())
        }
        None => {
            let (det, cache) = detect_map(&whole, &layout)?;
            let mut map = LabelMap::compile(det.spec, &det.origin)?;
            if let Some(w) = det.detection.warning() {
                warnings.push(w);
            }
            // A map file says what the codes mean, as `--labels` would:
            // nothing guessed, so the documents carry no detection record.
            if det.detection.reading != "map file" {
                map.detection = Some(det.detection.clone());
            }
            detection = Some(det.detection);
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
        found,
        warnings,
        detection,
    })
}

/// An annotation export as a prepared dataset: its categories are the label
/// map (or `--labels`, a `categories` map that renames, merges or drops
/// them); nothing is detected, so nothing is decoded ahead of the scan.
fn prepare_export(
    loaded: exports::Loaded,
    labels: Option<&str>,
    opts: &ExportOptions,
    part: Partition,
) -> anyhow::Result<Prepared> {
    let exports::Loaded {
        exports,
        dataset,
        found,
        warnings,
    } = loaded;
    let (map, origin, why) = match labels {
        Some(arg) => {
            let map = LabelMap::load(arg)?;
            if map.kind() != crate::labels::Kind::Categories {
                anyhow::bail!(
                    "label map `{arg}` is of kind `{}`; an annotation export needs kind \
                     `categories` (write one to edit with `maskprep labels DIR -o labels.toml`)",
                    map.kind().name()
                );
            }
            (map, arg.to_string(), None)
        }
        None => {
            let map = exports::default_map(&exports)?;
            let why = format!(
                "categories of the export ({} classes, by category id)",
                map.num_classes()
            );
            (map, "export categories".to_string(), Some(why))
        }
    };
    for (export, keys) in &exports {
        decode::raster::register(export.clone(), keys, &map, opts.crowd);
    }
    Ok(Prepared {
        dataset: dataset.partition(part),
        map,
        origin,
        why,
        cache: BTreeMap::new(),
        found,
        warnings,
        detection: None,
    })
}

/// Finds the layout and lists its masks; a folder with no mask gets the
/// candidate mask folders (inside it) in its error.
fn discover(dir: &Path) -> anyhow::Result<(Dataset, layout::Layout)> {
    source::check_dir(dir)?;
    let layout = layout::find(dir);
    let mut ds = match source::discover_parts(dir, &layout.parts, layout.names) {
        Ok(ds) => ds,
        Err(e @ source::SourceError::Empty(_)) => {
            let mut what: Vec<String> = layout::describe(&layout, dir).into_iter().collect();
            what.extend(layout.notes.iter().cloned());
            if !layout.candidates.is_empty() {
                what.push(format!(
                    "candidate mask folders: {}",
                    quote(&layout.candidates)
                ));
            }
            if what.is_empty() {
                return Err(e.into());
            }
            return Err(anyhow::Error::new(e)
                .context(format!("no masks where expected ({})", what.join("; "))));
        }
        Err(e) => return Err(e.into()),
    };
    ds.candidates = layout.candidates.clone();
    Ok((ds, layout))
}

fn quote(dirs: &[String]) -> String {
    dirs.iter()
        .map(|d| format!("`{d}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn detect_map(
    ds: &Dataset,
    layout: &layout::Layout,
) -> anyhow::Result<(Detected, BTreeMap<PathBuf, MaskHist>)> {
    let n = ds.items.len();
    let take = n.min(DETECT_SAMPLE);
    let mut picks: Vec<usize> = (0..take).map(|k| k * n / take).collect();
    picks.dedup();
    let mut scratch = Scratch::default();
    let mut sample = Vec::new();
    let mut palettes = Vec::new();
    let mut photos = Vec::new();
    let mut cache = BTreeMap::new();
    let mut weak = Vec::new();
    let mut photo_paths: Vec<PathBuf> = Vec::new();
    for i in picks {
        let path = &ds.items[i].mask;
        let Ok(bytes) = decode::read_file(path) else {
            continue;
        };
        let Ok(hist) = decode::decode_path_hist(path, &bytes, &mut scratch) else {
            continue;
        };
        match evidence::photo_evidence(&hist) {
            PhotoEvidence::Strong(reason) => {
                photos.push(format!("`{}`: {reason}", path.display()));
                photo_paths.push(path.clone());
                cache.insert(path.clone(), hist);
            }
            PhotoEvidence::Weak(reason) => weak.push((path.clone(), hist, reason)),
            PhotoEvidence::None => {
                if hist.format == MaskFormat::Indexed {
                    palettes.push(decode::palette(&bytes));
                }
                sample.push((path.clone(), hist));
            }
        }
    }
    // Weak signs of a photograph: its folder decides, from what the sample
    // read there (as the scan decides from every file).
    for (path, hist, reason) in weak {
        let dir = path.parent();
        let n_photos = photo_paths
            .iter()
            .filter(|d| d.as_path().parent() == dir)
            .count() as u64;
        let n_masks = sample.iter().filter(|(p, _)| p.parent() == dir).count() as u64;
        match evidence::weak_photo_reason(&reason, &path, n_photos, n_photos + n_masks) {
            Some(why) => {
                photos.push(format!("`{}`: {why}", path.display()));
                cache.insert(path, hist);
            }
            None => sample.push((path, hist)),
        }
    }
    if sample.is_empty() && !photos.is_empty() {
        let cands = if ds.candidates.is_empty() {
            format!(
                "none found inside `{}` (expected a folder such as `masks/`, `labels/`, \
                 `SegmentationClass/`, `gtFine/` or `ann_dir/`)",
                ds.root.display()
            )
        } else {
            quote(&ds.candidates)
        };
        anyhow::bail!(
            "`{}` holds photographs, not masks ({} of the sampled files, e.g. {}); candidate \
             mask folders: {cands}; pass the mask folder",
            ds.mask_dir.display(),
            photos.len(),
            photos[0]
        );
    }
    let masks: Vec<PathBuf> = ds.items.iter().map(|i| i.mask.clone()).collect();
    let hints = Hints {
        root: &ds.root,
        mask_dir: &ds.mask_dir,
        preset: layout.preset,
        layout: layout.name,
    };
    let det = detect::detect(&hints, &masks, &sample, &palettes)?;
    cache.extend(sample);
    Ok((det, cache))
}

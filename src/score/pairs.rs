//! Pairing: each truth mask with its prediction, by relative path without
//! extension (`val/0001.png` ↔ `val/0001.npy`), as `source` pairs masks
//! with images. Truth without a prediction and predictions without truth
//! are listed, never silently dropped. Everything is sorted by key. The
//! folder is listed by [`crate::source::list`] (local or object store),
//! and every file left out is said on the console.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::annotations::results;
use crate::output::Console;
use crate::source::{self, Dataset, SourceError};

/// The file type of the predictions (one type per folder).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PredFile {
    /// PNG masks.
    Png,
    /// NumPy `.npy` arrays.
    Npy,
    /// `.safetensors` files.
    Safetensors,
    /// A COCO results file (detections with RLE masks and scores).
    CocoResults,
}

impl PredFile {
    fn from_ext(ext: &str) -> Option<Self> {
        match ext.to_ascii_lowercase().as_str() {
            "png" => Some(Self::Png),
            "npy" => Some(Self::Npy),
            "safetensors" => Some(Self::Safetensors),
            _ => None,
        }
    }
}

impl fmt::Display for PredFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Png => "`.png` masks",
            Self::Npy => "`.npy` arrays",
            Self::Safetensors => "`.safetensors` arrays",
            Self::CocoResults => "a COCO results file",
        })
    }
}

/// A truth mask and its prediction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// Relative path without extension, `/`-separated.
    pub key: String,
    pub truth: PathBuf,
    pub pred: PathBuf,
}

/// The pairs, and the files that have no partner.
#[derive(Debug, Clone)]
pub struct Pairing {
    pub pred_file: PredFile,
    pub pairs: Vec<Pair>,
    /// Truth masks with no prediction.
    pub missing: Vec<PathBuf>,
    /// Predictions with no truth mask.
    pub extra: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum PairError {
    #[error(
        "`{0}` does not exist or is not a folder; expected a folder of predictions (`.png` masks, or `.npy` / `.safetensors` arrays)"
    )]
    NotADir(PathBuf),
    #[error("no predictions (`*.png`, `*.npy` or `*.safetensors`) found under `{0}`")]
    Empty(PathBuf),
    #[error(
        "`{dir}` mixes prediction types: {a} (e.g. `{a_path}`) and {b} (e.g. `{b_path}`); expected one type"
    )]
    Mixed {
        dir: PathBuf,
        a: PredFile,
        a_path: PathBuf,
        b: PredFile,
        b_path: PathBuf,
    },
    #[error("cannot read the predictions `{path}`: {message}")]
    Results { path: PathBuf, message: String },
    #[error("cannot list `{path}`")]
    List {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// Pairs the masks of `truth` with the predictions under `pred_dir` (or in
/// the COCO results file `pred_dir`), as [`pair_on`] does on a console that
/// is not quiet.
pub fn pair(truth: &Dataset, pred_dir: &Path) -> Result<Pairing, PairError> {
    pair_on(truth, pred_dir, &Console::new(false))
}

/// Pairs the masks of `truth` with the predictions under `pred_dir` (or in
/// the COCO results file `pred_dir`). Each file left out is said on
/// `console` as it is met (shown even when quiet: the exit code says so).
pub fn pair_on(truth: &Dataset, pred_dir: &Path, console: &Console) -> Result<Pairing, PairError> {
    if is_results_file(pred_dir) {
        return pair_results(truth, pred_dir, console);
    }
    match crate::store::dir_status(pred_dir) {
        Ok(true) => {}
        Ok(false) => return Err(PairError::NotADir(pred_dir.to_path_buf())),
        Err(source) => {
            return Err(PairError::List {
                path: pred_dir.to_path_buf(),
                source,
            });
        }
    }
    // Predictions that cannot be taken (dangling symlinks, loops, unreadable
    // folders, a second file with one key) are listed as extra, never dropped.
    let listing = source::list(pred_dir)?;
    let mut unusable = Vec::new();
    for (path, reason) in listing.unreadable {
        console.skipped(&path.display().to_string(), &reason);
        unusable.push(path);
    }
    pair_files(truth, pred_dir, &listing.files, unusable, console)
}

/// Pairs the masks of `truth` with the prediction `files` of `pred_dir`.
fn pair_files(
    truth: &Dataset,
    pred_dir: &Path,
    files: &[PathBuf],
    mut unusable: Vec<PathBuf>,
    console: &Console,
) -> Result<Pairing, PairError> {
    let mut preds: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut first: Option<(PredFile, PathBuf)> = None;
    for path in files {
        let path = path.as_path();
        let Some(kind) = path
            .extension()
            .and_then(|e| e.to_str())
            .and_then(PredFile::from_ext)
        else {
            continue;
        };
        match &first {
            None => first = Some((kind, path.to_path_buf())),
            Some((k, p)) if *k != kind => {
                return Err(PairError::Mixed {
                    dir: pred_dir.to_path_buf(),
                    a: *k,
                    a_path: p.clone(),
                    b: kind,
                    b_path: path.to_path_buf(),
                });
            }
            Some(_) => {}
        }
        let k = source::key_of(pred_dir, path);
        if let Some(first) = preds.get(&k) {
            console.skipped(
                &path.display().to_string(),
                &format!(
                    "has the same name as `{}` (key `{k}`); expected one file per name",
                    first.display()
                ),
            );
            unusable.push(path.to_path_buf());
            continue;
        }
        preds.insert(k, path.to_path_buf());
    }
    let Some((pred_file, _)) = first else {
        return Err(PairError::Empty(pred_dir.to_path_buf()));
    };
    let mut pairs = Vec::new();
    // Truth files the walk could not take have no score either.
    let masks = truth
        .skipped
        .iter()
        .filter(|s| s.path.starts_with(&truth.mask_dir));
    let mut missing: Vec<PathBuf> = masks.clone().map(|s| s.path.clone()).collect();
    for s in masks {
        console.skipped(&s.path.display().to_string(), &s.reason);
    }
    for item in &truth.items {
        match preds.remove(&item.key) {
            Some(pred) => pairs.push(Pair {
                key: item.key.clone(),
                truth: item.mask.clone(),
                pred,
            }),
            None => missing.push(item.mask.clone()),
        }
    }
    Ok(Pairing {
        pred_file,
        pairs,
        missing,
        extra: preds.into_values().chain(unusable).collect(),
    })
}

/// Is `path` a file of detections (`*.json`) rather than a folder?
fn is_results_file(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        && crate::store::is_file(path)
        && !crate::store::is_dir(path)
}

/// Pairs each image of an annotation-export truth with its detections in
/// a COCO results file, by image id: an image with no detection predicts
/// nothing (it is paired, with all-zero scores); detections of images the
/// truth does not hold are extra.
fn pair_results(truth: &Dataset, file: &Path, console: &Console) -> Result<Pairing, PairError> {
    let bad = |message: String| PairError::Results {
        path: file.to_path_buf(),
        message,
    };
    let copy = crate::store::local_copy(file).map_err(|source| PairError::List {
        path: file.to_path_buf(),
        source,
    })?;
    let results = results::load(&copy.path, file).map_err(|e| bad(format!("{e:#}")))?;
    for (id, why) in &results.problems {
        console.problem(&format!(
            "skipped a detection of image {id} in `{}`: {why}",
            file.display()
        ));
    }
    let results = std::sync::Arc::new(results);
    results::register(results.clone());
    let mut pairs = Vec::new();
    let mut missing = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for item in &truth.items {
        match crate::decode::raster::image_id(&item.mask) {
            Some(id) => {
                seen.insert(id);
                pairs.push(Pair {
                    key: item.key.clone(),
                    truth: item.mask.clone(),
                    pred: results::virtual_path(file, id),
                });
            }
            None => missing.push(item.mask.clone()),
        }
    }
    if pairs.is_empty() {
        return Err(bad(
            "its truth is not an annotation export with image ids; expected COCO JSON truth \
             (a results file pairs by `image_id`)"
                .into(),
        ));
    }
    let extra = results
        .by_image
        .keys()
        .filter(|id| !seen.contains(id))
        .map(|id| results::virtual_path(file, *id))
        .collect();
    Ok(Pairing {
        pred_file: PredFile::CocoResults,
        pairs,
        missing,
        extra,
    })
}

/// The `[C,H,W]` scores of a COCO results prediction (`FILE#IMAGE_ID`):
/// per class the highest score of the detections covering each pixel.
pub fn coco_scores(
    pred: &Path,
    map: &crate::labels::LabelMap,
    size: (u32, u32),
    out: &mut Vec<f32>,
) -> Result<(), String> {
    let (res, id) = results::lookup(pred)
        .ok_or_else(|| format!("`{}` names no detections read in this run", pred.display()))?;
    let dets = res.by_image.get(&id).map_or(&[][..], Vec::as_slice);
    results::scores(
        dets,
        map.num_classes(),
        size,
        |c| map.category_class(c),
        out,
    )
    .map_err(|why| format!("`{}`: {why}", pred.display()))
}

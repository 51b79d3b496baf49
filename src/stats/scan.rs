//! The parallel pass: every mask of a dataset decoded once, in parallel over
//! files (rayon `fold` + `reduce`), into [`Counts`], optional per-image rows
//! and the image/mask size check. Memory holds one frame per worker, not
//! the dataset (per-image rows only when asked).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{BadFile, Counts};
use crate::decode::{self, MaskHist, Scratch};
use crate::format::problem;
use crate::labels::LabelMap;
use crate::labels::evidence::{PhotoEvidence, photo_evidence, weak_photo_reason};
use crate::output::{error_chain, progress};
use crate::source::{Dataset, Item};

/// An image whose size differs from its mask's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SizeMismatch {
    pub mask: String,
    pub image: String,
    /// `WxH` of the mask.
    pub mask_size: String,
    /// `WxH` of the image, or why it could not be read.
    pub image_size: String,
}

impl SizeMismatch {
    fn sides(&self) -> (problem::Sized<'_>, problem::Sized<'_>) {
        (
            problem::Sized {
                role: "mask",
                path: &self.mask,
                size: &self.mask_size,
            },
            problem::Sized {
                role: "image",
                path: &self.image,
                size: &self.image_size,
            },
        )
    }

    /// In a list: "size mismatch: mask `a` is 4x4, image `b` is 8x8".
    pub fn line(&self) -> String {
        let (mask, image) = self.sides();
        problem::size_mismatch_line(mask, image)
    }

    /// As a sentence: "mask `a` is 4x4 but image `b` is 8x8".
    pub fn sentence(&self) -> String {
        let (mask, image) = self.sides();
        problem::size_mismatch(mask, image)
    }
}

/// One mask's row of the per-image table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRow {
    pub mask: String,
    pub width: u32,
    pub height: u32,
    pub ignored: u64,
    pub undeclared: u64,
    pub class_pixels: Vec<u64>,
}

/// What one pass produces.
#[derive(Debug, Default)]
pub struct Scan {
    pub counts: Counts,
    pub rows: Vec<ImageRow>,
    pub mismatches: Vec<SizeMismatch>,
    /// Files with only some signs of a photograph (by position in the
    /// dataset), decided by their folder once every file is read.
    weak: Vec<(usize, MaskHist, String)>,
    /// Photographs found per folder, for the weak ones.
    photos: BTreeMap<PathBuf, u64>,
}

pub struct ScanOptions {
    pub strict: bool,
    pub per_image: bool,
    pub progress: bool,
}

/// `--strict` stopped at a bad file.
#[derive(Debug, thiserror::Error)]
#[error("failed to decode mask `{path}` (`--strict` stops at the first bad file)")]
pub struct StrictStop {
    pub path: String,
    #[source]
    pub source: decode::DecodeError,
}

/// Decodes every mask once (`cache` holds masks already decoded, e.g. for
/// label detection) and counts them.
pub fn scan(
    ds: &Dataset,
    map: &LabelMap,
    cache: &BTreeMap<PathBuf, MaskHist>,
    opts: &ScanOptions,
) -> Result<Scan, StrictStop> {
    let bar = progress(ds.items.len() as u64, opts.progress);
    let c = map.num_classes();
    let init = || Scan {
        counts: Counts::new(c),
        ..Scan::default()
    };
    let not_a_mask = |why| decode::DecodeError::NotAMask(with_candidates(why, &ds.candidates));
    let mut scan = ds
        .items
        .par_iter()
        .enumerate()
        .try_fold(
            || (init(), Scratch::default(), Vec::new()),
            |(mut acc, mut scratch, mut per_class), (k, item)| {
                let hist = match cache.get(&item.mask) {
                    Some(h) => Ok(h.clone()),
                    None => decode::read_hist(&item.mask, &mut scratch),
                };
                bar.inc(1);
                let hist = match hist.map(|h| (photo_evidence(&h), h)) {
                    Ok((PhotoEvidence::None, h)) => Ok(h),
                    Ok((PhotoEvidence::Strong(why), _)) => {
                        let dir = item.mask.parent().unwrap_or(Path::new("")).to_path_buf();
                        *acc.photos.entry(dir).or_default() += 1;
                        Err(not_a_mask(why))
                    }
                    // In a folder named for photographs it is one; elsewhere
                    // its neighbours decide, once all are read.
                    Ok((PhotoEvidence::Weak(evidence), h)) => {
                        match weak_photo_reason(&evidence, &item.mask, 0, 0) {
                            Some(why) => Err(not_a_mask(why)),
                            None => {
                                acc.weak.push((k, h, evidence));
                                return Ok((acc, scratch, per_class));
                            }
                        }
                    }
                    Err(e) => Err(e),
                };
                acc.take(item, hist, map, opts, &mut per_class)?;
                Ok((acc, scratch, per_class))
            },
        )
        .map(|r| r.map(|(acc, _, _)| acc))
        .try_reduce(init, |mut a, b| {
            a.counts += b.counts;
            a.rows.extend(b.rows);
            a.mismatches.extend(b.mismatches);
            a.weak.extend(b.weak);
            for (dir, n) in b.photos {
                *a.photos.entry(dir).or_default() += n;
            }
            Ok(a)
        })?;
    scan.decide_weak(ds, map, opts, &not_a_mask)?;
    bar.finish_and_clear();
    if opts.strict
        && let Some(s) = ds.skipped.first()
    {
        return Err(StrictStop {
            path: s.path.display().to_string(),
            source: decode::DecodeError::Unusable(s.reason.clone()),
        });
    }
    // Files the walk could not take are skipped files too (exit code 1).
    scan.counts.bad.extend(ds.skipped.iter().map(|s| BadFile {
        path: s.path.display().to_string(),
        reason: s.reason.clone(),
    }));
    scan.rows.sort_by(|a, b| a.mask.cmp(&b.mask));
    scan.mismatches.sort();
    scan.counts.bad.sort();
    Ok(scan)
}

impl Scan {
    /// Counts one mask, or lists it as a bad file (`--strict`: stops).
    fn take(
        &mut self,
        item: &Item,
        hist: Result<MaskHist, decode::DecodeError>,
        map: &LabelMap,
        opts: &ScanOptions,
        per_class: &mut Vec<u64>,
    ) -> Result<(), StrictStop> {
        let path = item.mask.display().to_string();
        let hist = hist.map_err(|e| (error_chain(&e), Some(e))).and_then(|h| {
            map.check_format(h.format)
                .map(|()| h)
                .map_err(|why| (why, None))
        });
        match hist {
            Ok(hist) => {
                let t = self.counts.add_mask(&hist, map, &path, per_class);
                if let Some(m) = check_image(item, &hist) {
                    self.mismatches.push(m);
                }
                if opts.per_image {
                    self.rows.push(ImageRow {
                        mask: path,
                        width: hist.width,
                        height: hist.height,
                        ignored: t.ignored,
                        undeclared: t.undeclared,
                        class_pixels: per_class.clone(),
                    });
                }
            }
            Err((reason, source)) if opts.strict => {
                return Err(StrictStop {
                    path,
                    source: source.unwrap_or(decode::DecodeError::Unusable(reason)),
                });
            }
            Err((reason, _)) => self.counts.bad.push(BadFile { path, reason }),
        }
        Ok(())
    }

    /// Decides the files with weak signs of a photograph: photographs where
    /// most files of their folder with a clear reading are, else masks.
    fn decide_weak(
        &mut self,
        ds: &Dataset,
        map: &LabelMap,
        opts: &ScanOptions,
        not_a_mask: &dyn Fn(String) -> decode::DecodeError,
    ) -> Result<(), StrictStop> {
        if self.weak.is_empty() {
            return Ok(());
        }
        let dir = |k: usize| ds.items[k].mask.parent().unwrap_or(Path::new(""));
        let mut files: BTreeMap<&Path, u64> = BTreeMap::new();
        for k in 0..ds.items.len() {
            *files.entry(dir(k)).or_default() += 1;
        }
        let mut weak = std::mem::take(&mut self.weak);
        weak.sort_by_key(|w| w.0);
        for (k, _, _) in &weak {
            if let Some(n) = files.get_mut(dir(*k)) {
                *n -= 1;
            }
        }
        let mut per_class = Vec::new();
        for (k, hist, evidence) in weak {
            let d = dir(k);
            let photos = self.photos.get(d).copied().unwrap_or(0);
            let clear = files.get(d).copied().unwrap_or(0);
            let hist = match weak_photo_reason(&evidence, &ds.items[k].mask, photos, clear) {
                Some(why) => Err(not_a_mask(why)),
                None => Ok(hist),
            };
            self.take(&ds.items[k], hist, map, opts, &mut per_class)?;
        }
        Ok(())
    }
}

/// A photo's skip reason, naming the folders that may hold the masks.
fn with_candidates(why: String, candidates: &[String]) -> String {
    if candidates.is_empty() {
        return why;
    }
    let list: Vec<String> = candidates.iter().map(|c| format!("`{c}`")).collect();
    format!("{why}; candidate mask folders: {}", list.join(", "))
}

/// Compares the mask's size with its image's (header only).
fn check_image(item: &Item, hist: &MaskHist) -> Option<SizeMismatch> {
    let image = item.image.as_ref()?;
    let size = crate::source::image_size(image);
    let mask_size = format!("{}x{}", hist.width, hist.height);
    let image_size = match size {
        Ok((w, h)) if (w, h) == (hist.width, hist.height) => return None,
        Ok((w, h)) => format!("{w}x{h}"),
        Err(e) => format!("unreadable: {e}"),
    };
    Some(SizeMismatch {
        mask: item.mask.display().to_string(),
        image: image.display().to_string(),
        mask_size,
        image_size,
    })
}

//! The parallel pass: every mask of a dataset decoded once, in parallel over
//! files (rayon `fold` + `reduce`), into [`Counts`], optional per-image rows
//! and the image/mask size check. Memory holds one frame per worker, not
//! the dataset (per-image rows only when asked).

use std::collections::BTreeMap;
use std::path::PathBuf;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{BadFile, Counts};
use crate::decode::{self, MaskHist, Scratch};
use crate::labels::LabelMap;
use crate::labels::evidence::photo_reason;
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
    let mut scan = ds
        .items
        .par_iter()
        .try_fold(
            || (init(), Scratch::default(), Vec::new()),
            |(mut acc, mut scratch, mut per_class), item| {
                let hist = match cache.get(&item.mask) {
                    Some(h) => Ok(h.clone()),
                    None => decode::read_hist(&item.mask, &mut scratch),
                }
                .and_then(|h| match photo_reason(&h) {
                    Some(why) => Err(decode::DecodeError::NotAMask(with_candidates(
                        why,
                        &ds.candidates,
                    ))),
                    None => Ok(h),
                });
                let path = item.mask.display().to_string();
                bar.inc(1);
                let hist = hist.map_err(|e| (error_chain(&e), Some(e))).and_then(|h| {
                    map.check_format(h.format)
                        .map(|()| h)
                        .map_err(|why| (why, None))
                });
                match hist {
                    Ok(hist) => {
                        let t = acc.counts.add_mask(&hist, map, &path, &mut per_class);
                        if let Some(m) = check_image(item, &hist) {
                            acc.mismatches.push(m);
                        }
                        if opts.per_image {
                            acc.rows.push(ImageRow {
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
                    Err((reason, _)) => acc.counts.bad.push(BadFile { path, reason }),
                }
                Ok((acc, scratch, per_class))
            },
        )
        .map(|r| r.map(|(acc, _, _)| acc))
        .try_reduce(init, |mut a, b| {
            a.counts += b.counts;
            a.rows.extend(b.rows);
            a.mismatches.extend(b.mismatches);
            Ok(a)
        })?;
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

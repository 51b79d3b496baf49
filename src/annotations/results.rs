//! COCO results files as predictions: a JSON array of detections
//! `{image_id, category_id, segmentation: RLE, score}` (what Detectron2,
//! mmdetection and the COCO evaluation write). Per image and class, a
//! pixel's score is the highest score of the detections covering it (0
//! where none does); `score` thresholds it as float predictions.
//!
//! A file is read once and registered; a prediction is the virtual path
//! `FILE#IMAGE_ID`, turned into `[C,H,W]` scores when it is scored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use serde::Deserialize;

use super::rle;

/// Why a results file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("cannot read `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "`{}` is not a COCO results file: {message}; expected a JSON array of \
         {{\"image_id\", \"category_id\", \"segmentation\": {{\"size\", \"counts\"}}, \"score\"}}",
        path.display()
    )]
    Format { path: PathBuf, message: String },
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Counts {
    Compressed(String),
    List(Vec<u32>),
}

#[derive(Debug, Deserialize)]
struct Segmentation {
    size: [u32; 2],
    counts: Counts,
}

#[derive(Debug, Deserialize)]
struct Detection {
    image_id: i64,
    category_id: i64,
    segmentation: Segmentation,
    score: f32,
}

/// One detection, kept compact: its mask as run counts.
#[derive(Debug)]
pub struct Det {
    pub category_id: i64,
    pub height: u32,
    pub width: u32,
    pub counts: Vec<u32>,
    pub score: f32,
}

/// A results file: detections by image id.
#[derive(Debug)]
pub struct Results {
    pub path: PathBuf,
    pub by_image: BTreeMap<i64, Vec<Det>>,
    /// Detections that could not be read (their image, why).
    pub problems: Vec<(i64, String)>,
}

/// Reads a results file (local; an object is copied first by the caller).
pub fn load(path: &Path, shown: &Path) -> Result<Results, ResultsError> {
    let bytes = std::fs::read(path).map_err(|source| ResultsError::Io {
        path: shown.to_path_buf(),
        source,
    })?;
    let dets: Vec<Detection> =
        serde_json::from_slice(&bytes).map_err(|e| ResultsError::Format {
            path: shown.to_path_buf(),
            message: e.to_string(),
        })?;
    drop(bytes);
    let mut by_image: BTreeMap<i64, Vec<Det>> = BTreeMap::new();
    let mut problems = Vec::new();
    for (i, d) in dets.into_iter().enumerate() {
        let [height, width] = d.segmentation.size;
        let counts = match d.segmentation.counts {
            Counts::List(c) => Ok(c),
            Counts::Compressed(s) => rle::decode_string(&s),
        };
        let checked = counts.and_then(|c| {
            let sum: u64 = c.iter().map(|&n| u64::from(n)).sum();
            if sum == u64::from(height) * u64::from(width) {
                Ok(c)
            } else {
                Err(format!(
                    "its runs cover {sum} pixels; expected {height}x{width} = {}",
                    u64::from(height) * u64::from(width)
                ))
            }
        });
        match checked {
            Ok(counts) if d.score.is_finite() => {
                by_image.entry(d.image_id).or_default().push(Det {
                    category_id: d.category_id,
                    height,
                    width,
                    counts,
                    score: d.score,
                })
            }
            Ok(_) => problems.push((
                d.image_id,
                format!("detection {i}: its score is not finite"),
            )),
            Err(why) => problems.push((d.image_id, format!("detection {i}: {why}"))),
        }
    }
    Ok(Results {
        path: shown.to_path_buf(),
        by_image,
        problems,
    })
}

type Registry = Mutex<BTreeMap<String, Arc<Results>>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

/// Makes a results file's images readable as virtual predictions.
pub fn register(results: Arc<Results>) {
    let key = results.path.display().to_string();
    registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, results);
}

/// The virtual prediction of image `id` in the results file `path`.
pub fn virtual_path(path: &Path, id: i64) -> PathBuf {
    PathBuf::from(format!("{}#{id}", path.display()))
}

/// The detections a virtual prediction names (empty when its image has
/// none); `None` when `path` is not a registered results file's image.
pub fn lookup(path: &Path) -> Option<(Arc<Results>, i64)> {
    let s = path.to_str()?;
    let (file, id) = s.rsplit_once('#')?;
    let id: i64 = id.parse().ok()?;
    let reg = registry().lock().unwrap_or_else(|e| e.into_inner());
    Some((reg.get(file)?.clone(), id))
}

/// Fills `scores` (`[C,H,W]`, row-major) with the highest detection score
/// per pixel and class; `class_of` says which class a category id is
/// (`None`: not a class, the detection is left out).
pub fn scores(
    dets: &[Det],
    classes: usize,
    (width, height): (u32, u32),
    class_of: impl Fn(i64) -> Option<usize>,
    scores: &mut Vec<f32>,
) -> Result<(), String> {
    let (w, h) = (width as usize, height as usize);
    let hw = w * h;
    scores.clear();
    scores.resize(classes * hw, 0.0);
    let mut on = Vec::new();
    for d in dets {
        if (d.width, d.height) != (width, height) {
            return Err(format!(
                "a detection of category {} is {}x{}; expected the image's {width}x{height}",
                d.category_id, d.width, d.height
            ));
        }
        let Some(c) = class_of(d.category_id) else {
            continue;
        };
        let plane = &mut scores[c * hw..(c + 1) * hw];
        on.clear();
        rle::counts_intervals(&d.counts, &mut on);
        // Runs go down each column (COCO RLE order).
        for &(start, end) in &on {
            for p in start as usize..end as usize {
                let (x, y) = (p / h, p % h);
                let v = &mut plane[y * w + x];
                *v = v.max(d.score);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highest_score_wins_per_pixel_and_class() {
        // 3x2 image (W x H); column-major runs.
        let det = |cat, counts: Vec<u32>, score| Det {
            category_id: cat,
            height: 2,
            width: 3,
            counts,
            score,
        };
        let dets = [
            det(1, vec![0, 2, 4], 0.3), // column 0
            det(1, vec![1, 3, 2], 0.8), // (x0,y1), column 1
            det(2, vec![4, 2], 0.6),    // column 2, class 1
            det(7, vec![0, 6], 0.9),    // not a class
        ];
        let mut s = Vec::new();
        let class_of = |id| match id {
            1 => Some(0),
            2 => Some(1),
            _ => None,
        };
        scores(&dets, 2, (3, 2), class_of, &mut s).unwrap();
        assert_eq!(
            s,
            [
                0.3, 0.8, 0.0, //
                0.8, 0.8, 0.0, //
                0.0, 0.0, 0.6, //
                0.0, 0.0, 0.6,
            ]
        );
        let bad = [det(1, vec![0, 4], 0.5)];
        let mut other = Vec::new();
        assert!(scores(&bad, 1, (2, 3), class_of, &mut other).is_err());
    }
}

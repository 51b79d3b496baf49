//! The per-image replay a score report needs: which files each image was
//! scored from and how its prediction was read, the per-image rows (from
//! the score pass, or by scoring the files a score document names again
//! with the CPU scorer), and the decoded planes of the images shown.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::Decision;
use super::cpu::{CpuScorer, decided_planes};
use super::doc::ScoreDoc;
use super::metrics::{Metrics, MetricsMean};
use super::pairs::{self, PredFile};
use super::scan::{self, ImageRow, ScanOptions};
use crate::decode;
use crate::labels::LabelMap;
use crate::output::Console;
use crate::source::{self, Dataset};
use crate::tensors;

/// Default number of worst images shown.
pub const WORST: usize = 8;
/// How the prediction files are read and decided (as the score pass did).
#[derive(Debug, Clone)]
pub struct PredReader {
    pub file: PredFile,
    pub decision: Decision,
    /// Tensor name in `.safetensors` files.
    pub tensor: String,
}

impl PredReader {
    /// The reader a score document describes.
    pub fn of(doc: &ScoreDoc) -> Self {
        let p = &doc.prediction;
        Self {
            file: p.files,
            decision: if p.argmax {
                Decision::Argmax
            } else {
                Decision::Above(p.threshold.unwrap_or(0.0))
            },
            tensor: p
                .tensor
                .clone()
                .unwrap_or_else(|| p.kind.name().to_string()),
        }
    }
}

/// One image's scores, with the files to draw it from.
#[derive(Debug, Clone)]
pub struct ImageScore {
    pub key: String,
    pub truth: PathBuf,
    pub pred: PathBuf,
    pub image: Option<PathBuf>,
    /// Per class; `None`: undefined (absent from truth and prediction).
    pub iou: Vec<Option<f64>>,
    /// Mean over classes with a value.
    pub miou: Option<f64>,
    /// The image's mean metrics, as the score pass reduced them.
    pub mean: Metrics,
}

/// The per-image scores of a run, and how to draw its images.
pub struct PerImage {
    pub map: LabelMap,
    pub reader: PredReader,
    pub images: Vec<ImageScore>,
    /// Pairs not scored, with the reason.
    pub skipped: Vec<String>,
}

impl PerImage {
    /// From the rows of a score pass over `dataset` (the truth).
    pub fn from_rows(
        rows: &[ImageRow],
        map: LabelMap,
        dataset: &Dataset,
        reader: PredReader,
    ) -> Self {
        let photos: BTreeMap<&str, &PathBuf> = dataset
            .items
            .iter()
            .filter_map(|i| i.image.as_ref().map(|p| (i.key.as_str(), p)))
            .collect();
        let images = rows
            .iter()
            .map(|r| ImageScore {
                key: r.key.clone(),
                truth: PathBuf::from(&r.truth),
                pred: PathBuf::from(&r.pred),
                image: photos.get(r.key.as_str()).map(|p| (*p).clone()),
                iou: r.metrics.classes.iter().map(|m| m.iou).collect(),
                miou: r.metrics.mean.iou,
                mean: r.metrics.mean,
            })
            .collect();
        Self {
            map,
            reader,
            images,
            skipped: Vec::new(),
        }
    }

    /// The per-image mean IoU of these rows, reduced exactly as the score
    /// pass reduces it ([`MetricsMean`]).
    pub fn mean(&self) -> Option<f64> {
        MetricsMean::of(self.images.iter().map(|i| &i.mean))
            .get()
            .iou
    }
}

/// `p` as given, else (when relative) beside the score file.
fn resolve(p: &str, base: Option<&Path>) -> Option<PathBuf> {
    let path = PathBuf::from(p);
    if crate::store::is_url(&path) || path.exists() {
        return Some(path);
    }
    let joined = base.filter(|_| path.is_relative())?.join(&path);
    joined.exists().then_some(joined)
}

/// Scores the files a document names again (CPU scorer, the document's
/// label map and decision) for their per-image rows; `Err` says why not.
/// Files left out of the pairing are said on `console`.
pub fn rescore(doc: &ScoreDoc, base: Option<&Path>, console: &Console) -> Result<PerImage, String> {
    let find = |what: &str, p: &str| {
        resolve(p, base).ok_or_else(|| {
            format!(
                "the {what} folder `{p}` named in the score file is not found (tried from the \
                 working folder and beside the file)"
            )
        })
    };
    let truth = find("truth", &doc.truth)?;
    let pred = find("prediction", &doc.pred)?;
    let map = LabelMap::compile(doc.labels.clone(), &doc.labels_origin)
        .map_err(|e| format!("the label map in the score file is invalid: {e}"))?;
    // An annotation export is read again under the document's map.
    let dataset = match crate::dataset::exports::reopen(&truth, &map, &Default::default()) {
        Ok(Some(ds)) => ds,
        Ok(None) => source::discover(&truth).map_err(|e| e.to_string())?,
        Err(e) => return Err(format!("{e:#}")),
    };
    let pairing = pairs::pair_on(&dataset, &pred, console).map_err(|e| e.to_string())?;
    let reader = PredReader::of(doc);
    let opts = ScanOptions {
        pred_file: pairing.pred_file,
        decision: reader.decision,
        tensor: reader.tensor.clone(),
        empty_as: doc.summary.empty_as,
        per_image: true,
        strict: false,
        progress: false,
        sweep: None,
    };
    let scan = scan::scan(&pairing.pairs, &map, &CpuScorer, &opts).map_err(|e| e.to_string())?;
    if scan.rows.is_empty() {
        return Err(format!(
            "no prediction in `{}` could be scored against `{}` again",
            pred.display(),
            truth.display()
        ));
    }
    let mut per_image = PerImage::from_rows(&scan.rows, map, &dataset, reader);
    per_image.skipped = scan.skipped.iter().map(|k| k.reason.clone()).collect();
    per_image
        .skipped
        .extend(scan.size_mismatches.iter().map(|z| z.sentence()));
    Ok(per_image)
}

/// Decoded masks of one pair: multi-hot planes (`C x H x W`) of truth and
/// prediction, and the truth's excluded pixels.
pub struct Decoded {
    pub width: u32,
    pub height: u32,
    pub truth: Vec<u8>,
    pub pred: Vec<u8>,
    pub excluded: Vec<u8>,
}

pub fn decode_pair(
    map: &LabelMap,
    reader: &PredReader,
    img: &ImageScore,
) -> Result<Decoded, String> {
    let read =
        |p: &Path| crate::store::read(p).map_err(|e| format!("cannot read `{}`: {e}", p.display()));
    let bytes = decode::read_file(&img.truth)
        .map_err(|e| format!("cannot read `{}`: {e}", img.truth.display()))?;
    let mut buf = Vec::new();
    let frame = decode::decode_frame(&bytes, &mut buf)
        .map_err(|e| format!("cannot decode `{}`: {e}", img.truth.display()))?;
    let (w, h) = (frame.width, frame.height);
    let (mut truth, mut excluded) = (Vec::new(), Vec::new());
    map.planes(&frame, &mut truth, &mut excluded);
    let c = map.num_classes();
    let hw = w as usize * h as usize;
    if reader.file == PredFile::CocoResults {
        let mut scores = Vec::new();
        pairs::coco_scores(&img.pred, map, (w, h), &mut scores)?;
        return Ok(Decoded {
            width: w,
            height: h,
            truth,
            pred: decided_planes(&scores, c, hw, reader.decision),
            excluded,
        });
    }
    let bytes = read(&img.pred)?;
    let pred = if reader.file == PredFile::Png {
        let mut buf = Vec::new();
        let frame = decode::decode_frame(&bytes, &mut buf)
            .map_err(|e| format!("cannot decode `{}`: {e}", img.pred.display()))?;
        if (frame.width, frame.height) != (w, h) {
            return Err(format!("`{}` is not {w}x{h}", img.pred.display()));
        }
        // Codes the map ignores predict no class, as in the counts.
        let (mut planes, mut unused) = (Vec::new(), Vec::new());
        map.planes(&frame, &mut planes, &mut unused);
        planes
    } else {
        let array = match reader.file {
            PredFile::Safetensors => tensors::read_safetensors(&bytes, &reader.tensor),
            _ => tensors::read_npy(&bytes),
        }
        .map_err(|e| format!("cannot read `{}`: {e}", img.pred.display()))?;
        let ok = matches!(array.shape.as_slice(), [1, k, y, x] | [k, y, x]
            if *k == c && (*y, *x) == (h as usize, w as usize));
        if !ok {
            return Err(format!(
                "`{}` has shape {:?}; expected [{c}, {h}, {w}]",
                img.pred.display(),
                array.shape
            ));
        }
        decided_planes(&array.values, c, hw, reader.decision)
    };
    Ok(Decoded {
        width: w,
        height: h,
        truth,
        pred,
        excluded,
    })
}

/// The photograph of an image, decoded (bounded like masks), if readable.
pub fn photo(path: &Path) -> Option<image::RgbImage> {
    let mut reader = crate::store::open(path)
        .map(image::ImageReader::new)
        .ok()?
        .with_guessed_format()
        .ok()?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(1 << 30);
    reader.limits(limits);
    Some(reader.decode().ok()?.to_rgb8())
}

/// The `n` images with the lowest mIoU (ties by key), worst first.
pub fn worst(pi: &PerImage, n: usize) -> Vec<&ImageScore> {
    let mut ranked: Vec<&ImageScore> = pi.images.iter().filter(|i| i.miou.is_some()).collect();
    ranked.sort_by(|a, b| {
        a.miou
            .partial_cmp(&b.miou)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.key.cmp(&b.key))
    });
    ranked.truncate(n);
    ranked
}

/// An image to draw: its scores, and its decoded planes and photograph (or
/// why they could not be read).
pub struct Shown<'a> {
    pub score: &'a ImageScore,
    pub planes: Result<(Decoded, Option<image::RgbImage>), String>,
}

/// Decodes the `n` worst images of `pi` for drawing.
pub fn shown(pi: &PerImage, n: usize) -> Vec<Shown<'_>> {
    worst(pi, n)
        .into_iter()
        .map(|img| Shown {
            score: img,
            planes: decode_pair(&pi.map, &pi.reader, img)
                .map(|d| (d, img.image.as_deref().and_then(photo))),
        })
        .collect()
}

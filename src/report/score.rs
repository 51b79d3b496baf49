//! The score report: a score document (`maskprep-score/1`, read as JSON
//! values) → per-class and per-reduction plots and tables; then, by
//! re-reading the truth and prediction masks it names, per-image IoU, its
//! histogram, and the worst images as thumbnails (image, truth, prediction,
//! errors). The per-image numbers are checked against the document's.

use std::path::{Path, PathBuf};

use plotters::style::RGBColor;
use rayon::prelude::*;
use serde_json::Value;

use super::html::{Cell, Page, Row, esc, inline, swatch_rgb};
use super::plots::{self, Grouped, Histogram};
use super::{Files, INDEX, ReportError};
use crate::decode;
use crate::labels::{LabelMap, LabelSpec};
use crate::source;

/// Identifies the score document format.
pub const FORMAT: &str = "maskprep-score/1";
/// Default number of worst images shown.
pub const WORST: usize = 8;
/// Longest side of a thumbnail, in pixels.
const THUMB: u32 = 192;
/// Bins of the per-image IoU histogram over [0, 1].
const IOU_BINS: usize = 20;

/// Error-overlay colours: missed (false negative), false alarm (false
/// positive), both on one pixel (multi-label), and pixels that count nowhere.
pub const FN_RGB: [u8; 3] = [230, 85, 13];
pub const FP_RGB: [u8; 3] = [49, 130, 220];
pub const BOTH_RGB: [u8; 3] = [255, 220, 0];
const EXCLUDED: [[u8; 3]; 2] = [[90, 90, 90], [150, 150, 150]];

/// Class colours where the label map has none (Tableau 20).
const PALETTE: [[u8; 3]; 20] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
    [174, 199, 232],
    [255, 187, 120],
    [152, 223, 138],
    [255, 152, 150],
    [197, 176, 213],
    [196, 156, 148],
    [247, 182, 210],
    [199, 199, 199],
    [219, 219, 141],
    [158, 218, 229],
];

/// The score document is not one this version reads.
#[derive(Debug, thiserror::Error)]
pub enum ScoreJsonError {
    #[error("the JSON has format `{0}`; expected `{FORMAT}` (written by `maskprep score --json`)")]
    Format(String),
    #[error("the score JSON has no valid `{0}`; expected `maskprep score --json` output")]
    Missing(String),
}

/// The five metrics; `None` is undefined (null).
#[derive(Debug, Clone, Copy, Default)]
pub struct Metrics {
    pub iou: Option<f64>,
    pub dice: Option<f64>,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub accuracy: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct ClassScore {
    pub name: String,
    pub tp: u64,
    pub fp: u64,
    pub fn_: u64,
    pub tn: u64,
    pub metrics: Metrics,
    pub per_image_iou: Option<f64>,
    pub empty: bool,
}

#[derive(Debug, Clone)]
pub struct Reduction {
    pub name: &'static str,
    pub convention: String,
    pub metrics: Metrics,
    pub averaged_over: Option<u64>,
}

/// What the report uses of a score document.
#[derive(Debug, Clone)]
pub struct View {
    pub version: String,
    pub truth: String,
    pub pred: String,
    pub labels: LabelSpec,
    pub labels_origin: String,
    pub pred_kind: String,
    pub pred_files: String,
    pub rule: String,
    pub backend: String,
    pub truth_masks: u64,
    pub images_scored: u64,
    /// total, valid, ignored, undeclared, predicted with no class code.
    pub pixels: [u64; 5],
    pub classes: Vec<ClassScore>,
    /// macro, micro, per image.
    pub reductions: Vec<Reduction>,
    pub miou: Option<f64>,
    pub per_image_miou: Option<f64>,
    pub micro_iou: Option<f64>,
    pub mean_accuracy: Option<f64>,
    pub pixel_accuracy: Option<f64>,
    pub pixel_accuracy_convention: String,
    pub accuracy_convention: String,
    pub empty_as: String,
    pub warnings: Vec<String>,
    pub file_problems: Vec<String>,
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

fn count(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn float(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

fn metrics(v: &Value) -> Metrics {
    Metrics {
        iou: float(v, "iou"),
        dice: float(v, "dice"),
        precision: float(v, "precision"),
        recall: float(v, "recall"),
        accuracy: float(v, "accuracy"),
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| match x.as_str() {
                    Some(s) => s.to_string(),
                    None => x.to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

impl View {
    /// Reads the fields the report uses; fails on another format or a
    /// document without its classes, reductions or label map.
    pub fn parse(v: &Value) -> Result<Self, ScoreJsonError> {
        let format = text(v, "format");
        if format != FORMAT {
            return Err(ScoreJsonError::Format(format));
        }
        let missing = |k: &str| ScoreJsonError::Missing(k.to_string());
        let labels: LabelSpec = v
            .get("labels")
            .cloned()
            .and_then(|l| serde_json::from_value(l).ok())
            .ok_or_else(|| missing("labels"))?;
        let classes: Vec<ClassScore> = v
            .get("classes")
            .and_then(Value::as_array)
            .ok_or_else(|| missing("classes"))?
            .iter()
            .map(|c| ClassScore {
                name: text(c, "name"),
                tp: count(c, "tp"),
                fp: count(c, "fp"),
                fn_: count(c, "fn"),
                tn: count(c, "tn"),
                metrics: metrics(c),
                per_image_iou: float(c, "per_image_iou"),
                empty: c.get("empty").and_then(Value::as_bool).unwrap_or(false),
            })
            .collect();
        if classes.len() != labels.classes.len() {
            return Err(missing("classes (one per class of `labels`)"));
        }
        let r = v.get("reductions").ok_or_else(|| missing("reductions"))?;
        let reductions = [
            ("macro", "macro"),
            ("micro", "micro"),
            ("per_image", "per image"),
        ]
        .iter()
        .map(|(key, name)| {
            let x = r
                .get(*key)
                .ok_or_else(|| missing(&format!("reductions.{key}")))?;
            Ok(Reduction {
                name,
                convention: text(x, "convention"),
                metrics: metrics(x),
                averaged_over: x.get("averaged_over").and_then(Value::as_u64),
            })
        })
        .collect::<Result<Vec<_>, ScoreJsonError>>()?;
        let null = Value::Null;
        let s = v.get("summary").unwrap_or(&null);
        let p = v.get("prediction").unwrap_or(&null);
        let f = v.get("files").unwrap_or(&null);
        let px = v.get("pixels").unwrap_or(&null);
        let mut file_problems = Vec::new();
        for m in strings(f.get("missing_predictions")) {
            file_problems.push(format!("truth without prediction: `{m}`"));
        }
        for e in strings(f.get("extra_predictions")) {
            file_problems.push(format!("prediction without truth: `{e}`"));
        }
        for z in f
            .get("size_mismatches")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            file_problems.push(format!(
                "size mismatch: truth `{}` is {}, prediction `{}` is {}",
                text(z, "truth"),
                text(z, "truth_size"),
                text(z, "pred"),
                text(z, "pred_size")
            ));
        }
        for k in f
            .get("skipped")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let reason = k
                .get("reason")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| k.to_string());
            file_problems.push(format!("skipped: {reason}"));
        }
        Ok(Self {
            version: text(v, "maskprep_version"),
            truth: text(v, "truth"),
            pred: text(v, "pred"),
            labels,
            labels_origin: text(v, "labels_origin"),
            pred_kind: text(p, "kind"),
            pred_files: text(p, "files"),
            rule: text(p, "rule"),
            backend: text(v, "backend"),
            truth_masks: count(f, "truth_masks"),
            images_scored: count(f, "images_scored"),
            pixels: ["total", "valid", "ignored", "undeclared", "pred_unlabelled"]
                .map(|k| count(px, k)),
            classes,
            reductions,
            miou: float(s, "miou"),
            per_image_miou: float(s, "per_image_miou"),
            micro_iou: float(s, "micro_iou"),
            mean_accuracy: float(s, "mean_accuracy"),
            pixel_accuracy: float(s, "pixel_accuracy"),
            pixel_accuracy_convention: text(s, "pixel_accuracy_convention"),
            accuracy_convention: text(s, "accuracy_convention"),
            empty_as: s
                .get("empty_as")
                .and_then(Value::as_str)
                .unwrap_or("skip")
                .to_string(),
            warnings: strings(v.get("warnings")),
            file_problems,
        })
    }
}

/// One image, re-scored from its masks.
#[derive(Debug, Clone)]
pub struct ImageScore {
    pub key: String,
    pub truth: PathBuf,
    pub pred: PathBuf,
    pub image: Option<PathBuf>,
    pub width: u32,
    pub height: u32,
    /// Per class; `None`: absent from truth and prediction (0/0).
    pub iou: Vec<Option<f64>>,
    /// Mean over classes with a value.
    pub miou: Option<f64>,
}

/// Every image re-scored, and what could not be.
pub struct PerImage {
    pub map: LabelMap,
    pub images: Vec<ImageScore>,
    pub skipped: Vec<String>,
    /// Mean of `miou` over images with a value (the per-image reduction).
    pub mean: Option<f64>,
}

/// `p` as given, else (when relative) beside the score file.
fn resolve(p: &str, base: Option<&Path>) -> Option<PathBuf> {
    let path = PathBuf::from(p);
    if path.exists() {
        return Some(path);
    }
    let joined = base.filter(|_| path.is_relative())?.join(&path);
    joined.exists().then_some(joined)
}

/// Decoded masks of one pair: multi-hot planes (`C x H x W`) and the
/// truth's excluded pixels.
struct Decoded {
    width: u32,
    height: u32,
    truth: Vec<u8>,
    pred: Vec<u8>,
    excluded: Vec<u8>,
}

fn decode_pair(map: &LabelMap, truth: &Path, pred: &Path) -> Result<Decoded, String> {
    let read = |p: &Path| -> Result<(Vec<u8>, Vec<u8>, u32, u32), String> {
        let bytes = std::fs::read(p).map_err(|e| format!("cannot read `{}`: {e}", p.display()))?;
        let mut buf = Vec::new();
        let frame = decode::decode_frame(&bytes, &mut buf)
            .map_err(|e| format!("cannot decode `{}`: {e}", p.display()))?;
        let (mut planes, mut excluded) = (Vec::new(), Vec::new());
        map.planes(&frame, &mut planes, &mut excluded);
        Ok((planes, excluded, frame.width, frame.height))
    };
    let (tp, te, w, h) = read(truth)?;
    let (pp, _, pw, ph) = read(pred)?;
    if (w, h) != (pw, ph) {
        return Err(format!(
            "truth `{}` is {w}x{h} but prediction `{}` is {pw}x{ph}",
            truth.display(),
            pred.display()
        ));
    }
    Ok(Decoded {
        width: w,
        height: h,
        truth: tp,
        pred: pp,
        excluded: te,
    })
}

/// Per-class IoU of one image; pixels the truth ignores count nowhere, and
/// predictions with no class code predict no class (as `maskprep score`).
fn image_iou(d: &Decoded, classes: usize, empty_as: &str) -> Vec<Option<f64>> {
    let hw = d.width as usize * d.height as usize;
    (0..classes)
        .map(|c| {
            let (t, p) = (
                &d.truth[c * hw..(c + 1) * hw],
                &d.pred[c * hw..(c + 1) * hw],
            );
            let (mut tp, mut union) = (0u64, 0u64);
            for ((&a, &b), &x) in t.iter().zip(p).zip(&d.excluded) {
                if x == 0 {
                    tp += u64::from(a & b);
                    union += u64::from(a | b);
                }
            }
            match (union, empty_as) {
                (0, "one") => Some(1.0),
                (0, "zero") => Some(0.0),
                (0, _) => None,
                _ => Some(tp as f64 / union as f64),
            }
        })
        .collect()
}

fn mean(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let (sum, n) = values
        .flatten()
        .fold((0.0, 0u64), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// Re-scores every pair of PNG masks named by the document; `Err` says
/// why there is no per-image section.
pub fn rescore(view: &View, base: Option<&Path>) -> Result<PerImage, String> {
    if view.pred_files != "png" {
        return Err(format!(
            "the predictions are `{}` files; per-image IoU and thumbnails are drawn from PNG \
             prediction masks (use `maskprep score --per-image FILE` for per-image numbers)",
            view.pred_files
        ));
    }
    let truth = resolve(&view.truth, base).ok_or_else(|| {
        format!(
            "the truth folder `{}` named in the score JSON is not found (tried from the working \
             folder and beside the JSON)",
            view.truth
        )
    })?;
    let pred = resolve(&view.pred, base).ok_or_else(|| {
        format!(
            "the prediction folder `{}` named in the score JSON is not found (tried from the \
             working folder and beside the JSON)",
            view.pred
        )
    })?;
    let map = LabelMap::compile(view.labels.clone(), &view.labels_origin)
        .map_err(|e| format!("the label map in the score JSON is invalid: {e}"))?;
    let ds = source::discover(&truth).map_err(|e| e.to_string())?;
    let preds = source::discover(&pred).map_err(|e| e.to_string())?;
    let pred_by_key: std::collections::BTreeMap<&str, &Path> = preds
        .items
        .iter()
        .map(|i| (i.key.as_str(), i.mask.as_path()))
        .collect();
    let c = map.num_classes();
    let results: Vec<Result<ImageScore, String>> = ds
        .items
        .par_iter()
        .filter_map(|item| {
            let pred = pred_by_key.get(item.key.as_str())?;
            Some(decode_pair(&map, &item.mask, pred).map(|d| {
                let iou = image_iou(&d, c, &view.empty_as);
                ImageScore {
                    key: item.key.clone(),
                    truth: item.mask.clone(),
                    pred: pred.to_path_buf(),
                    image: item.image.clone(),
                    width: d.width,
                    height: d.height,
                    miou: mean(iou.iter().copied()),
                    iou,
                }
            }))
        })
        .collect();
    let mut images = Vec::new();
    let mut skipped = Vec::new();
    for r in results {
        match r {
            Ok(i) => images.push(i),
            Err(e) => skipped.push(e),
        }
    }
    if images.is_empty() {
        return Err(format!(
            "no prediction in `{}` pairs with a truth mask in `{}`",
            pred.display(),
            truth.display()
        ));
    }
    let mean = mean(images.iter().map(|i| i.miou));
    Ok(PerImage {
        map,
        images,
        skipped,
        mean,
    })
}

/// A colour per class: the label map's where it has one, else a palette.
pub fn class_colours(map: &LabelMap) -> Vec<[u8; 3]> {
    map.class_colours()
        .into_iter()
        .enumerate()
        .map(|(i, c)| c.unwrap_or(PALETTE[i % PALETTE.len()]))
        .collect()
}

/// Thumbnail size: integer upscaling of small masks, else fit in [`THUMB`].
fn thumb_size(w: u32, h: u32) -> (u32, u32) {
    let long = w.max(h).max(1);
    if long <= THUMB {
        let k = THUMB / long;
        (w * k, h * k)
    } else {
        let s = f64::from(THUMB) / f64::from(long);
        (
            ((f64::from(w) * s).round() as u32).max(1),
            ((f64::from(h) * s).round() as u32).max(1),
        )
    }
}

/// Source pixel range of output pixel `o` of `out` along an axis of `len`.
fn span(o: u32, out: u32, len: u32) -> (usize, usize) {
    let a = (u64::from(o) * u64::from(len) / u64::from(out)) as usize;
    let b = ((u64::from(o + 1) * u64::from(len)).div_ceil(u64::from(out)) as usize).max(a + 1);
    (a, b.min(len as usize))
}

/// The four thumbnails of an image, as PNG: image, truth, prediction, errors.
pub struct Thumbs {
    pub width: u32,
    pub height: u32,
    pub image: Option<Vec<u8>>,
    pub truth: Vec<u8>,
    pub pred: Vec<u8>,
    pub errors: Vec<u8>,
}

fn photo(path: &Path, tw: u32, th: u32) -> Option<image::RgbImage> {
    let mut reader = image::ImageReader::open(path)
        .ok()?
        .with_guessed_format()
        .ok()?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(1 << 30);
    reader.limits(limits);
    let img = reader.decode().ok()?.to_rgb8();
    Some(image::imageops::resize(
        &img,
        tw,
        th,
        image::imageops::FilterType::Triangle,
    ))
}

/// Draws the thumbnails of one image (its masks are decoded again).
pub fn thumbs(map: &LabelMap, img: &ImageScore) -> Result<Thumbs, String> {
    let d = decode_pair(map, &img.truth, &img.pred)?;
    let (w, h) = (d.width, d.height);
    let hw = w as usize * h as usize;
    let c = map.num_classes();
    let colours = class_colours(map);
    let (tw, th) = thumb_size(w, h);
    let photo = img.image.as_deref().and_then(|p| photo(p, tw, th));
    let colour_of = |planes: &[u8], at: usize| -> [u8; 3] {
        let mut rgb = [0u8; 3];
        for (k, col) in colours.iter().enumerate().take(c) {
            if planes[k * hw + at] != 0 {
                for ch in 0..3 {
                    rgb[ch] = rgb[ch].max(col[ch]);
                }
            }
        }
        rgb
    };
    // 0 right, 1 false positive only, 2 false negative only, 3 both, 4 excluded.
    let kind = |at: usize| -> u8 {
        if d.excluded[at] != 0 {
            return 4;
        }
        let (mut fp, mut fn_) = (false, false);
        for k in 0..c {
            let (t, p) = (d.truth[k * hw + at], d.pred[k * hw + at]);
            fp |= p > t;
            fn_ |= t > p;
        }
        match (fp, fn_) {
            (false, false) => 0,
            (true, false) => 1,
            (false, true) => 2,
            (true, true) => 3,
        }
    };
    let rank = |k: u8| [0u8, 2, 3, 4, 1][k as usize];
    let n = tw as usize * th as usize * 3;
    let (mut truth_px, mut pred_px, mut err_px) = (vec![0u8; n], vec![0u8; n], vec![0u8; n]);
    for oy in 0..th {
        let (y0, y1) = span(oy, th, h);
        for ox in 0..tw {
            let (x0, x1) = span(ox, tw, w);
            let o = (oy as usize * tw as usize + ox as usize) * 3;
            let centre = ((y0 + y1) / 2) * w as usize + (x0 + x1) / 2;
            let checker = EXCLUDED[((ox / 4 + oy / 4) % 2) as usize];
            let excluded = d.excluded[centre] != 0;
            let t = if excluded {
                checker
            } else {
                colour_of(&d.truth, centre)
            };
            truth_px[o..o + 3].copy_from_slice(&t);
            pred_px[o..o + 3].copy_from_slice(&colour_of(&d.pred, centre));
            // The worst error in the block wins, so thin errors survive shrinking.
            let mut worst = 0u8;
            for y in y0..y1 {
                for x in x0..x1 {
                    let k = kind(y * w as usize + x);
                    if rank(k) > rank(worst) {
                        worst = k;
                    }
                }
            }
            let e = match worst {
                1 => FP_RGB,
                2 => FN_RGB,
                3 => BOTH_RGB,
                4 => checker,
                _ => {
                    // Right: the photo (or the truth) dimmed to grey.
                    let base = photo.as_ref().map(|p| p.get_pixel(ox, oy).0).unwrap_or(t);
                    let l = (u32::from(base[0]) * 299
                        + u32::from(base[1]) * 587
                        + u32::from(base[2]) * 114)
                        / 1000;
                    let g = (40 + l * 45 / 100) as u8;
                    [g, g, g]
                }
            };
            err_px[o..o + 3].copy_from_slice(&e);
        }
    }
    let enc = |px: &[u8]| {
        plots::encode_rgb(px, tw, th).map_err(|e| format!("cannot encode a thumbnail: {e}"))
    };
    Ok(Thumbs {
        width: tw,
        height: th,
        image: match &photo {
            Some(p) => Some(enc(p.as_raw())?),
            None => None,
        },
        truth: enc(&truth_px)?,
        pred: enc(&pred_px)?,
        errors: enc(&err_px)?,
    })
}

fn show(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.4}"))
        .unwrap_or_else(|| "undefined".to_string())
}

/// File names of the worst images' thumbnails: `worst-01-truth.png`.
fn thumb_file(rank: usize, what: &str) -> String {
    format!("worst-{:02}-{what}.png", rank + 1)
}

/// Builds every file of the score report; `per_image` from [`rescore`], or
/// `why_not` says why it is missing.
pub fn build(
    view: &View,
    per_image: Option<&PerImage>,
    why_not: Option<&String>,
    worst: usize,
) -> Result<Files, ReportError> {
    let mut files = Files::default();
    let mut page = Page::new(&format!("maskprep score report: {}", view.pred));
    page.h1(&format!(
        "Score report: <code>{}</code> against <code>{}</code>",
        esc(&view.pred),
        esc(&view.truth)
    ));
    page.raw(&format!(
        "<p class=\"meta\">maskprep {} · predictions: {} ({}); {} · backend {} · labels: <code>{}</code> \
         ({}, {} classes) · {} images scored of {} truth masks · {} pixels: {} valid, {} ignored, {} undeclared</p>",
        esc(&view.version),
        esc(&view.pred_kind),
        esc(&view.pred_files),
        inline(&view.rule),
        esc(&view.backend),
        esc(&view.labels_origin),
        super::kind_name(view.labels.kind),
        view.classes.len(),
        view.images_scored,
        view.truth_masks,
        view.pixels[0],
        view.pixels[1],
        view.pixels[2],
        view.pixels[3],
    ));
    page.raw(
        "<nav><a href=\"#summary\">summary</a><a href=\"#classes\">classes</a>\
         <a href=\"#reductions\">reductions</a><a href=\"#per-image\">per image</a>\
         <a href=\"#worst\">worst images</a></nav>",
    );

    page.h2("summary", "Summary");
    let summary = vec![
        Row::new(vec![
            Cell::text("mIoU (dataset-level, macro)"),
            Cell::num(show(view.miou)),
            Cell::text(&view.reductions[0].convention),
        ]),
        Row::new(vec![
            Cell::text("per-image mIoU"),
            Cell::num(show(view.per_image_miou)),
            Cell::text(&view.reductions[2].convention),
        ]),
        Row::new(vec![
            Cell::text("micro IoU"),
            Cell::num(show(view.micro_iou)),
            Cell::text(&view.reductions[1].convention),
        ]),
        Row::new(vec![
            Cell::text("mean accuracy"),
            Cell::num(show(view.mean_accuracy)),
            Cell::text(&view.accuracy_convention),
        ]),
        Row::new(vec![
            Cell::text("pixel accuracy"),
            Cell::num(show(view.pixel_accuracy)),
            Cell::text(&view.pixel_accuracy_convention),
        ]),
    ];
    page.table(&["metric", "value", "convention"], &summary);
    page.p(&format!(
        "Classes absent from truth and prediction (0/0): rule <code>{}</code>.",
        esc(&view.empty_as)
    ));
    page.warnings("Warnings", &view.warnings);
    page.warnings("File problems", &view.file_problems);

    // Per class.
    page.h2("classes", "Per class");
    let names: Vec<String> = view.classes.iter().map(|c| c.name.clone()).collect();
    let series = vec![
        (
            "IoU (dataset-level)".to_string(),
            plots::BLUE,
            view.classes.iter().map(|c| c.metrics.iou).collect(),
        ),
        (
            "IoU (mean over images)".to_string(),
            plots::GREEN,
            view.classes.iter().map(|c| c.per_image_iou).collect(),
        ),
        (
            "accuracy (with TN)".to_string(),
            plots::ORANGE,
            view.classes.iter().map(|c| c.metrics.accuracy).collect(),
        ),
    ];
    let plot = plots::grouped(&Grouped {
        file: "score_classes.png",
        title: "IoU and accuracy per class",
        subtitle: "dataset-level: counts summed over images, then divided; undefined: absent from truth and prediction",
        x_label: "score",
        labels: &names,
        series: &series,
    })?;
    page.figure(
        &plot.file,
        plot.width,
        plot.height,
        "per-class IoU and accuracy",
        "IoU per class from counts summed over all images, the mean of the class's per-image IoU, and accuracy (which counts true negatives, so it is high for small classes).",
    );
    files.add(plot.file, plot.png);
    let rows: Vec<Row> = view
        .classes
        .iter()
        .map(|c| {
            let m = &c.metrics;
            Row::new(vec![
                Cell::text(&c.name),
                Cell::num(c.tp),
                Cell::num(c.fp),
                Cell::num(c.fn_),
                Cell::num(c.tn),
                Cell::num(show(m.iou)),
                Cell::num(show(m.dice)),
                Cell::num(show(m.precision)),
                Cell::num(show(m.recall)),
                Cell::num(show(m.accuracy)),
                Cell::num(show(c.per_image_iou)),
                Cell::text(if c.empty { "absent" } else { "" }),
            ])
        })
        .collect();
    page.table(
        &[
            "class",
            "TP",
            "FP",
            "FN",
            "TN",
            "IoU",
            "Dice",
            "precision",
            "recall",
            "accuracy",
            "IoU / image",
            "",
        ],
        &rows,
    );

    // Reductions.
    page.h2("reductions", "Reductions");
    let metric_names: Vec<String> = ["IoU", "Dice", "precision", "recall", "accuracy"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let colours: [RGBColor; 3] = [plots::BLUE, plots::GREEN, plots::ORANGE];
    let series: Vec<(String, RGBColor, Vec<Option<f64>>)> = view
        .reductions
        .iter()
        .zip(colours)
        .map(|(r, col)| {
            let m = &r.metrics;
            (
                r.name.to_string(),
                col,
                vec![m.iou, m.dice, m.precision, m.recall, m.accuracy],
            )
        })
        .collect();
    let plot = plots::grouped_columns(&Grouped {
        file: "score_reductions.png",
        title: "Metrics under each reduction",
        subtitle: "macro: mean over classes of dataset-level values; micro: counts pooled; per image: mean over images",
        x_label: "metric",
        labels: &metric_names,
        series: &series,
    })?;
    page.figure(
        &plot.file,
        plot.width,
        plot.height,
        "metrics under each reduction",
        "The same predictions averaged three ways; tools disagree mostly because they pick different ones.",
    );
    files.add(plot.file, plot.png);
    let rows: Vec<Row> = view
        .reductions
        .iter()
        .map(|r| {
            let m = &r.metrics;
            Row::new(vec![
                Cell::text(r.name),
                Cell::num(show(m.iou)),
                Cell::num(show(m.dice)),
                Cell::num(show(m.precision)),
                Cell::num(show(m.recall)),
                Cell::num(show(m.accuracy)),
                Cell::num(
                    r.averaged_over
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| "–".into()),
                ),
                Cell::text(&r.convention),
            ])
        })
        .collect();
    page.table(
        &[
            "reduction",
            "IoU",
            "Dice",
            "precision",
            "recall",
            "accuracy",
            "IoU averaged over",
            "convention",
        ],
        &rows,
    );

    // Per image.
    page.h2("per-image", "Per-image IoU");
    match per_image {
        Some(pi) => per_image_section(&mut page, &mut files, view, pi, worst)?,
        None => page.note(&format!(
            "Skipped: {}.",
            why_not.map(String::as_str).unwrap_or("no per-image data")
        )),
    }
    files.add(INDEX, page.finish().into_bytes());
    Ok(files)
}

fn per_image_section(
    page: &mut Page,
    files: &mut Files,
    view: &View,
    pi: &PerImage,
    worst: usize,
) -> Result<(), ReportError> {
    let mut counts = vec![0u64; IOU_BINS];
    for v in pi.images.iter().filter_map(|i| i.miou) {
        let b = ((v * IOU_BINS as f64) as usize).min(IOU_BINS - 1);
        counts[b] += 1;
    }
    let undefined = pi.images.iter().filter(|i| i.miou.is_none()).count();
    let plot = plots::histogram(&Histogram {
        file: "score_image_iou.png",
        title: "Per-image mIoU",
        subtitle: &format!(
            "{} images; mIoU of an image: mean over classes present in its truth or prediction",
            pi.images.len()
        ),
        x_label: "mIoU of the image",
        y_label: "images",
        lo: 0.0,
        hi: 1.0,
        counts: &counts,
    })?;
    page.figure(
        &plot.file,
        plot.width,
        plot.height,
        "histogram of per-image mIoU",
        "Images by their mean IoU, recomputed from the truth and prediction masks named in the score file.",
    );
    files.add(plot.file, plot.png);
    let rows: Vec<Row> = counts
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let lo = i as f64 / IOU_BINS as f64;
            let hi = (i + 1) as f64 / IOU_BINS as f64;
            let close = if i + 1 == IOU_BINS { "]" } else { ")" };
            Row::new(vec![
                Cell::text(format!("[{lo:.2}, {hi:.2}{close}")),
                Cell::num(n),
            ])
        })
        .collect();
    page.raw("<details><summary>histogram counts</summary>");
    page.table(&["mIoU", "images"], &rows);
    page.raw("</details>");
    if undefined > 0 {
        page.note(&format!(
            "{undefined} image(s) have no class in truth or prediction: no mIoU, left out."
        ));
    }
    let json = view.reductions[2].metrics.iou;
    match (pi.mean, json) {
        (Some(a), Some(b)) if (a - b).abs() <= 5e-6 => page.p(&format!(
            "Recomputed per-image mIoU {a:.6} matches the score file ({b:.6})."
        )),
        (a, b) => page.warnings(
            "Per-image numbers differ",
            &[format!(
                "recomputed per-image mIoU {} but the score file says {}: the masks may have changed since scoring",
                show(a),
                show(b)
            )],
        ),
    }
    page.warnings("Not re-scored", &pi.skipped);

    page.h2("worst", "Worst images");
    let mut ranked: Vec<&ImageScore> = pi.images.iter().filter(|i| i.miou.is_some()).collect();
    ranked.sort_by(|a, b| {
        a.miou
            .partial_cmp(&b.miou)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.key.cmp(&b.key))
    });
    ranked.truncate(worst);
    let colours = class_colours(&pi.map);
    let legend: Vec<String> = view
        .classes
        .iter()
        .zip(&colours)
        .map(|(c, rgb)| format!("{}{}", swatch_rgb(*rgb), esc(&c.name)))
        .collect();
    page.p(&format!(
        "The {} lowest per-image mIoU. Class colours: {}. Errors: {}missed (false negative), \
         {}false alarm (false positive), {}both (different classes on one pixel); right pixels \
         are grey, pixels that count nowhere are checkered.",
        ranked.len(),
        legend.join(" "),
        swatch_rgb(FN_RGB),
        swatch_rgb(FP_RGB),
        swatch_rgb(BOTH_RGB)
    ));
    let mut rows = Vec::new();
    for (rank, img) in ranked.iter().enumerate() {
        let ious: Vec<String> = view
            .classes
            .iter()
            .zip(&img.iou)
            .map(|(c, v)| format!("{}: {}", esc(&c.name), show(*v)))
            .collect();
        let mut cells = vec![Cell::Html(format!(
            "<code>{}</code><br>mIoU {}<br><small>{}</small>",
            esc(&img.key),
            show(img.miou),
            ious.join("<br>")
        ))];
        match thumbs(&pi.map, img) {
            Ok(t) => {
                let tag = |file: &str, alt: &str| {
                    format!(
                        "<img src=\"{}\" width=\"{}\" height=\"{}\" alt=\"{}\">",
                        esc(file),
                        t.width,
                        t.height,
                        esc(alt)
                    )
                };
                match t.image {
                    Some(bytes) => {
                        let f = thumb_file(rank, "image");
                        cells.push(Cell::Html(tag(&f, "image")));
                        files.add(f, bytes);
                    }
                    None => cells.push(Cell::text("no image")),
                }
                for (what, bytes) in [("truth", t.truth), ("pred", t.pred), ("errors", t.errors)] {
                    let f = thumb_file(rank, what);
                    cells.push(Cell::Html(tag(&f, what)));
                    files.add(f, bytes);
                }
            }
            Err(e) => cells.push(Cell::text(e)),
        }
        rows.push(Row::new(cells));
    }
    page.table_class(
        "thumbs",
        &["image", "photo", "truth", "prediction", "errors"],
        &rows,
    );
    Ok(())
}

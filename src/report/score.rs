//! The score report: a score document (`maskprep-score/1`) → per-class and
//! per-reduction plots and tables; with its per-image rows (from the same
//! `score` pass, or by scoring the files it names again with the CPU
//! scorer), the per-image mIoU histogram and the worst images as
//! thumbnails: image, truth, prediction and errors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::style::RGBColor;

use super::html::{Cell, Page, Row, esc, inline, swatch_rgb};
use super::plots::{self, Grouped, Histogram};
use super::{Files, INDEX, ReportError};
use crate::decode;
use crate::labels::LabelMap;
use crate::score::cpu::{CpuScorer, decided_planes};
use crate::score::doc::{FORMAT, ScoreDoc};
use crate::score::metrics::show;
use crate::score::pairs::{self, PredFile};
use crate::score::scan::{self, ImageRow, ScanOptions};
use crate::score::{Decision, EmptyAs};
use crate::source::{self, Dataset};
use crate::tensors;

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
    #[error("the JSON is not a complete `{FORMAT}` document")]
    Incomplete(#[source] serde_json::Error),
}

/// Reads a score document, checking its format first.
pub fn parse(v: serde_json::Value) -> Result<ScoreDoc, ScoreJsonError> {
    let format = v.get("format").and_then(|f| f.as_str()).unwrap_or("");
    if format != FORMAT {
        return Err(ScoreJsonError::Format(format.to_string()));
    }
    serde_json::from_value(v).map_err(ScoreJsonError::Incomplete)
}

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
            })
            .collect();
        Self {
            map,
            reader,
            images,
            skipped: Vec::new(),
        }
    }

    /// Mean of `miou` over images with a value (the per-image reduction).
    pub fn mean(&self) -> Option<f64> {
        let v: Vec<f64> = self.images.iter().filter_map(|i| i.miou).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    }
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

/// Scores the files a document names again (CPU scorer, the document's
/// label map and decision) for their per-image rows; `Err` says why not.
pub fn rescore(doc: &ScoreDoc, base: Option<&Path>) -> Result<PerImage, String> {
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
    let dataset = source::discover(&truth).map_err(|e| e.to_string())?;
    let pairing = pairs::pair(&dataset, &pred).map_err(|e| e.to_string())?;
    let reader = PredReader::of(doc);
    let opts = ScanOptions {
        pred_file: pairing.pred_file,
        decision: reader.decision,
        tensor: reader.tensor.clone(),
        empty_as: doc.summary.empty_as,
        per_image: true,
        strict: false,
        progress: false,
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
        .extend(scan.size_mismatches.iter().map(|z| {
            format!(
                "prediction `{}` is {} but truth `{}` is {}",
                z.pred, z.pred_size, z.truth, z.truth_size
            )
        }));
    Ok(per_image)
}

/// Decoded masks of one pair: multi-hot planes (`C x H x W`) of truth and
/// prediction, and the truth's excluded pixels.
struct Decoded {
    width: u32,
    height: u32,
    truth: Vec<u8>,
    pred: Vec<u8>,
    excluded: Vec<u8>,
}

fn decode_pair(map: &LabelMap, reader: &PredReader, img: &ImageScore) -> Result<Decoded, String> {
    let read =
        |p: &Path| std::fs::read(p).map_err(|e| format!("cannot read `{}`: {e}", p.display()));
    let bytes = decode::read_file(&img.truth)
        .map_err(|e| format!("cannot read `{}`: {e}", img.truth.display()))?;
    let mut buf = Vec::new();
    let frame = decode::decode_frame(&bytes, &mut buf)
        .map_err(|e| format!("cannot decode `{}`: {e}", img.truth.display()))?;
    let (w, h) = (frame.width, frame.height);
    let (mut truth, mut excluded) = (Vec::new(), Vec::new());
    map.planes(&frame, &mut truth, &mut excluded);
    let bytes = read(&img.pred)?;
    let c = map.num_classes();
    let hw = w as usize * h as usize;
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
pub fn thumbs(map: &LabelMap, reader: &PredReader, img: &ImageScore) -> Result<Thumbs, String> {
    let d = decode_pair(map, reader, img)?;
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

/// File names of the worst images' thumbnails: `worst-01-truth.png`.
fn thumb_file(rank: usize, what: &str) -> String {
    format!("worst-{:02}-{what}.png", rank + 1)
}

/// The problems a score document lists under `files`.
fn file_problems(doc: &ScoreDoc) -> Vec<String> {
    let f = &doc.files;
    let mut out: Vec<String> = Vec::new();
    out.extend(
        f.missing_predictions
            .iter()
            .map(|m| format!("truth without prediction: `{m}`")),
    );
    out.extend(
        f.extra_predictions
            .iter()
            .map(|e| format!("prediction without truth: `{e}`")),
    );
    out.extend(f.size_mismatches.iter().map(|z| {
        format!(
            "size mismatch: truth `{}` is {}, prediction `{}` is {}",
            z.truth, z.truth_size, z.pred, z.pred_size
        )
    }));
    out.extend(f.skipped.iter().map(|k| format!("skipped: {}", k.reason)));
    out
}

fn empty_rule(e: EmptyAs) -> &'static str {
    match e {
        EmptyAs::Skip => "skip: undefined, left out of means",
        EmptyAs::One => "one: counted as 1",
        EmptyAs::Zero => "zero: counted as 0",
    }
}

/// Builds every file of the score report; `per_image` from the score pass
/// or [`rescore`], or why there is none.
pub fn build(
    doc: &ScoreDoc,
    per_image: Result<&PerImage, &str>,
    worst: usize,
) -> Result<Files, ReportError> {
    let mut files = Files::default();
    let mut page = Page::new(&format!("maskprep score report: {}", doc.pred));
    page.h1(&format!(
        "Score report: <code>{}</code> against <code>{}</code>",
        esc(&doc.pred),
        esc(&doc.truth)
    ));
    let p = &doc.prediction;
    let px = &doc.pixels;
    page.raw(&format!(
        "<p class=\"meta\">maskprep {} · predictions: {} ({}); {} · backend {} · labels: <code>{}</code> \
         ({}, {} classes) · {} images scored of {} truth masks · {} pixels: {} valid, {} ignored, {} undeclared</p>",
        esc(&doc.maskprep_version),
        esc(p.kind.name()),
        inline(&p.files.to_string()),
        inline(&p.rule),
        esc(&doc.backend),
        esc(&doc.labels_origin),
        super::kind_name(doc.labels.kind),
        doc.classes.len(),
        doc.files.images_scored,
        doc.files.truth_masks,
        px.total,
        px.valid,
        px.ignored,
        px.undeclared,
    ));
    page.raw(
        "<nav><a href=\"#summary\">summary</a><a href=\"#classes\">classes</a>\
         <a href=\"#reductions\">reductions</a><a href=\"#per-image\">per image</a>\
         <a href=\"#worst\">worst images</a></nav>",
    );

    let r = &doc.reductions;
    let sm = &doc.summary;
    page.h2("summary", "Summary");
    let summary = vec![
        Row::new(vec![
            Cell::text("mIoU (dataset-level, macro)"),
            Cell::num(show(sm.miou)),
            Cell::text(&r.macro_.convention),
        ]),
        Row::new(vec![
            Cell::text("per-image mIoU"),
            Cell::num(show(sm.per_image_miou)),
            Cell::text(&r.per_image.convention),
        ]),
        Row::new(vec![
            Cell::text("micro IoU"),
            Cell::num(show(sm.micro_iou)),
            Cell::text(&r.micro.convention),
        ]),
        Row::new(vec![
            Cell::text("mean accuracy"),
            Cell::num(show(sm.mean_accuracy)),
            Cell::text(&sm.accuracy_convention),
        ]),
        Row::new(vec![
            Cell::text("pixel accuracy"),
            Cell::num(show(sm.pixel_accuracy)),
            Cell::text(&sm.pixel_accuracy_convention),
        ]),
    ];
    page.table(&["metric", "value", "convention"], &summary);
    page.p(&format!(
        "Classes absent from truth and prediction (0/0): <code>{}</code>.",
        esc(empty_rule(sm.empty_as))
    ));
    page.warnings("Warnings", &doc.warnings);
    page.warnings("File problems", &file_problems(doc));

    // Per class.
    page.h2("classes", "Per class");
    let names: Vec<String> = doc.classes.iter().map(|c| c.name.clone()).collect();
    let series = vec![
        (
            "IoU (dataset-level)".to_string(),
            plots::BLUE,
            doc.classes.iter().map(|c| c.metrics.iou).collect(),
        ),
        (
            "IoU (mean over images)".to_string(),
            plots::GREEN,
            doc.classes.iter().map(|c| c.per_image_iou).collect(),
        ),
        (
            "accuracy (with TN)".to_string(),
            plots::ORANGE,
            doc.classes.iter().map(|c| c.metrics.accuracy).collect(),
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
    let rows: Vec<Row> = doc
        .classes
        .iter()
        .map(|c| {
            let m = &c.metrics;
            let k = &c.counts;
            Row::new(vec![
                Cell::text(&c.name),
                Cell::num(k.tp),
                Cell::num(k.fp),
                Cell::num(k.fn_),
                Cell::num(k.tn),
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
    let reductions = [
        ("macro", &r.macro_),
        ("micro", &r.micro),
        ("per image", &r.per_image),
    ];
    let metric_names: Vec<String> = ["IoU", "Dice", "precision", "recall", "accuracy"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let colours: [RGBColor; 3] = [plots::BLUE, plots::GREEN, plots::ORANGE];
    let series: Vec<(String, RGBColor, Vec<Option<f64>>)> = reductions
        .iter()
        .zip(colours)
        .map(|((name, red), col)| {
            let m = &red.metrics;
            (
                name.to_string(),
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
    let rows: Vec<Row> = reductions
        .iter()
        .map(|(name, red)| {
            let m = &red.metrics;
            Row::new(vec![
                Cell::text(*name),
                Cell::num(show(m.iou)),
                Cell::num(show(m.dice)),
                Cell::num(show(m.precision)),
                Cell::num(show(m.recall)),
                Cell::num(show(m.accuracy)),
                Cell::num(
                    red.averaged_over
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| "–".into()),
                ),
                Cell::text(&red.convention),
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
        Ok(pi) => per_image_section(&mut page, &mut files, doc, pi, worst)?,
        Err(why) => page.note(&format!("Skipped: {why}.")),
    }
    files.add(INDEX, page.finish().into_bytes());
    let mut json = serde_json::to_string_pretty(doc).unwrap_or_default();
    json.push('\n');
    files.add("score.json", json.into_bytes());
    Ok(files)
}

fn per_image_section(
    page: &mut Page,
    files: &mut Files,
    doc: &ScoreDoc,
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
        "Images by their mean IoU over the classes present in their truth or prediction.",
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
    let (mine, theirs) = (pi.mean(), doc.reductions.per_image.metrics.iou);
    match (mine, theirs) {
        (Some(a), Some(b)) if (a - b).abs() <= 5e-6 => page.p(&format!(
            "The per-image mIoU of these rows, {a:.6}, matches the score file ({b:.6})."
        )),
        (a, b) => page.warnings(
            "Per-image numbers differ",
            &[format!(
                "the per-image mIoU of these rows is {} but the score file says {}: the files may have changed since scoring",
                show(a),
                show(b)
            )],
        ),
    }
    page.warnings("Not scored again", &pi.skipped);

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
    let legend: Vec<String> = doc
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
        let ious: Vec<String> = doc
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
        match thumbs(&pi.map, &pi.reader, img) {
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

//! The score report: a score document (`maskprep-score/1`) → per-class and
//! per-reduction plots and tables; with its per-image rows (from the score
//! pass or its replay, [`crate::score::replay`]), the per-image mIoU
//! histogram and the worst images as thumbnails drawn from the planes it
//! is given: image, truth, prediction and errors. It decodes nothing.

use image::{RgbImage, imageops};
use plotters::style::RGBColor;

use super::html::{Cell, Page, Row, esc, inline, swatch_rgb};
use super::plots::{self, Grouped, Histogram};
use super::{Files, INDEX, ReportError};
use crate::labels::LabelMap;
use crate::score::EmptyAs;
use crate::score::doc::ScoreDoc;
use crate::score::metrics::show;
use crate::score::replay::{Decoded, PerImage, Shown};
use crate::score::sweep::{ClassSweep, Pick, SweepDoc};

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

/// Draws the thumbnails of one image from its decoded planes and photo.
pub fn thumbs(map: &LabelMap, d: &Decoded, photo: Option<&RgbImage>) -> Result<Thumbs, String> {
    let (w, h) = (d.width, d.height);
    let hw = w as usize * h as usize;
    let c = map.num_classes();
    let colours = class_colours(map);
    let (tw, th) = thumb_size(w, h);
    let photo = photo.map(|p| imageops::resize(p, tw, th, imageops::FilterType::Triangle));
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

fn empty_rule(e: EmptyAs) -> &'static str {
    match e {
        EmptyAs::Skip => "skip: undefined, left out of means",
        EmptyAs::One => "one: counted as 1",
        EmptyAs::Zero => "zero: counted as 0",
    }
}

/// Builds every file of the score report; `per_image` from the score pass
/// or its replay, with the worst images decoded (`shown`), or why there
/// is none.
pub fn build(
    doc: &ScoreDoc,
    per_image: Result<(&PerImage, &[Shown<'_>]), &str>,
) -> Result<Files, ReportError> {
    let mut files = Files::default();
    let mut page = Page::new(&format!("maskprep score report: {}", doc.pred));
    header(&mut page, doc);
    summary(&mut page, doc);
    classes(&mut page, &mut files, doc)?;
    reductions(&mut page, &mut files, doc)?;
    if let Some(sw) = &doc.sweep {
        sweep_section(&mut page, &mut files, sw)?;
    }

    // Per image.
    page.h2("per-image", "Per-image IoU");
    match per_image {
        Ok((pi, shown)) => per_image_section(&mut page, &mut files, doc, pi, shown)?,
        Err(why) => page.note(&format!("Skipped: {why}.")),
    }
    files.add(INDEX, page.finish().into_bytes());
    let mut json = serde_json::to_string_pretty(doc).unwrap_or_default();
    json.push('\n');
    files.add("score.json", json.into_bytes());
    Ok(files)
}

/// The title, what was scored against what, and the table of contents.
fn header(page: &mut Page, doc: &ScoreDoc) {
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
        doc.labels.kind.name(),
        doc.classes.len(),
        doc.files.images_scored,
        doc.files.truth_masks,
        px.total,
        px.valid,
        px.ignored,
        px.undeclared,
    ));
    let sweep_link = if doc.sweep.is_some() {
        "<a href=\"#sweep\">sweep</a>"
    } else {
        ""
    };
    page.raw(&format!(
        "<nav><a href=\"#summary\">summary</a><a href=\"#classes\">classes</a>\
         <a href=\"#reductions\">reductions</a>{sweep_link}<a href=\"#per-image\">per image</a>\
         <a href=\"#worst\">worst images</a></nav>"
    ));
}

/// Every mean under its convention, the empty-class rule, warnings and
/// file problems.
fn summary(page: &mut Page, doc: &ScoreDoc) {
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
            Cell::text("pooled per-image mIoU"),
            Cell::num(show(r.per_image_pooled.metrics.iou)),
            Cell::text(&r.per_image_pooled.convention),
        ]),
        Row::new(vec![
            Cell::text("micro IoU per image"),
            Cell::num(show(r.micro_imagewise.metrics.iou)),
            Cell::text(&r.micro_imagewise.convention),
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
    page.warnings("File problems", &doc.files.problem_lines());
}

/// Per-class metrics: a plot and the table of counts behind it.
fn classes(page: &mut Page, files: &mut Files, doc: &ScoreDoc) -> Result<(), ReportError> {
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
    Ok(())
}

/// The same metrics under each reduction: a plot and its table.
fn reductions(page: &mut Page, files: &mut Files, doc: &ScoreDoc) -> Result<(), ReportError> {
    let r = &doc.reductions;
    page.h2("reductions", "Reductions");
    let reductions = [
        ("macro", &r.macro_),
        ("micro", &r.micro),
        ("per image", &r.per_image),
        ("per image, pooled", &r.per_image_pooled),
        ("micro per image", &r.micro_imagewise),
    ];
    let metric_names: Vec<String> = ["IoU", "Dice", "precision", "recall", "accuracy"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let colours: [RGBColor; 5] = [
        plots::BLUE,
        plots::GREEN,
        plots::ORANGE,
        plots::PURPLE,
        plots::TEAL,
    ];
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
        subtitle: "macro: mean over classes of dataset-level values; micro: counts pooled; per image: mean over images; pooled: over (image, class) pairs",
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
    Ok(())
}

/// One curve per class of a sweep, from `f(class, threshold index)`.
fn curves(
    sw: &SweepDoc,
    f: impl Fn(&ClassSweep, usize) -> Option<(f64, f64)>,
) -> Vec<plots::Curve> {
    sw.classes
        .iter()
        .enumerate()
        .map(|(c, cls)| {
            let [r, g, b] = PALETTE[c % PALETTE.len()];
            let points = (0..sw.levels.len()).filter_map(|j| f(cls, j)).collect();
            (cls.name.clone(), RGBColor(r, g, b), points)
        })
        .collect()
}

/// The threshold sweep: per class IoU against the probability level, the
/// precision-recall curve, and the thresholds picked.
fn sweep_section(page: &mut Page, files: &mut Files, sw: &SweepDoc) -> Result<(), ReportError> {
    page.h2("sweep", "Threshold sweep");
    page.p(&format!("{}; {}.", esc(&sw.grid), esc(&sw.rule)));
    let ratio = |n: u64, d: u64| (d > 0).then(|| n as f64 / d as f64);
    let iou = curves(sw, |k, j| {
        let fn_ = k.positives - k.tp[j];
        ratio(k.tp[j], k.tp[j] + k.fp[j] + fn_).map(|v| (sw.levels[j], v))
    });
    let pr = curves(sw, |k, j| {
        let recall = ratio(k.tp[j], k.positives)?;
        ratio(k.tp[j], k.tp[j] + k.fp[j]).map(|p| (recall, p))
    });
    let more = if sw.classes.len() > plots::MAX_LEGEND {
        format!(" (legend: the first {} classes)", plots::MAX_LEGEND)
    } else {
        String::new()
    };
    for (file, title, x, y, series, caption) in [
        (
            "score_sweep_iou.png",
            "IoU against the threshold",
            "probability level (logits: compared at its logit)",
            "IoU",
            &iou,
            "Per class, dataset-level IoU at each threshold of the sweep.",
        ),
        (
            "score_sweep_pr.png",
            "Precision against recall",
            "recall",
            "precision",
            &pr,
            "Per class, precision and recall at each threshold of the sweep (a threshold with no predicted pixel has no precision and is left out).",
        ),
    ] {
        let plot = plots::lines(&plots::Lines {
            file,
            title,
            subtitle: &format!("{} classes{more}", sw.classes.len()),
            x_label: x,
            y_label: y,
            series,
        })?;
        page.figure(&plot.file, plot.width, plot.height, title, caption);
        files.add(plot.file, plot.png);
    }
    let pick = |p: &Option<Pick>, dice: bool| match p {
        Some(p) => {
            let v = if dice { p.metrics.dice } else { p.metrics.iou };
            format!("{} at {:.2} (threshold {})", show(v), p.level, p.threshold)
        }
        None => "undefined at every level".to_string(),
    };
    let rows: Vec<Row> = sw
        .classes
        .iter()
        .map(|k| {
            Row::new(vec![
                Cell::text(&k.name),
                Cell::text(pick(&k.best_iou, false)),
                Cell::text(pick(&k.best_dice, true)),
            ])
        })
        .collect();
    page.table(&["class", "best IoU", "best Dice"], &rows);
    Ok(())
}

fn per_image_section(
    page: &mut Page,
    files: &mut Files,
    doc: &ScoreDoc,
    pi: &PerImage,
    shown: &[Shown<'_>],
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
    worst_images(page, files, doc, pi, shown);
    Ok(())
}

/// The worst images: a legend, then per image its scores and the four
/// thumbnails (or why they could not be drawn).
fn worst_images(
    page: &mut Page,
    files: &mut Files,
    doc: &ScoreDoc,
    pi: &PerImage,
    shown: &[Shown<'_>],
) {
    page.h2("worst", "Worst images");
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
        shown.len(),
        legend.join(" "),
        swatch_rgb(FN_RGB),
        swatch_rgb(FP_RGB),
        swatch_rgb(BOTH_RGB)
    ));
    let rows: Vec<Row> = shown
        .iter()
        .enumerate()
        .map(|(rank, s)| worst_row(files, doc, pi, rank, s))
        .collect();
    page.table_class(
        "thumbs",
        &["image", "photo", "truth", "prediction", "errors"],
        &rows,
    );
}

/// One row of the worst images; its thumbnails are added to `files`.
fn worst_row(
    files: &mut Files,
    doc: &ScoreDoc,
    pi: &PerImage,
    rank: usize,
    shown: &Shown<'_>,
) -> Row {
    let Shown { score: img, planes } = shown;
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
    match planes
        .as_ref()
        .map_err(String::clone)
        .and_then(|(d, photo)| thumbs(&pi.map, d, photo.as_ref()))
    {
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
    Row::new(cells)
}

//! The score document: exact counts plus the metrics derived from them,
//! each reduction named with its convention; as JSON for machines (format
//! tag [`FORMAT`], fixed key order, floats rounded to 6 decimals) and as a
//! table for people.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::metrics::{self, Metrics, MetricsMean, show};
use super::pairs::PredFile;
use super::scan::{Scan, SizeMismatch, Skipped};
use super::{ClassCounts, EmptyAs, PredKind};
use crate::format::problem;
use crate::format::table::{Column, Table, Width};
use crate::labels::LabelSpec;
use crate::output::Console;

/// Identifies the document format.
pub const FORMAT: &str = "maskprep-score/1";

/// The conventions, word for word as written in the output.
pub const MACRO: &str = "dataset-level: counts summed over all images, then divided per class; \
                         mean over classes with a defined value (mmsegmentation mIoU; \
                         segmentation_models_pytorch 0.6 reduction \"macro\")";
pub const MICRO: &str = "counts summed over all images and all classes, then divided \
                         (segmentation_models_pytorch 0.6 reduction \"micro\")";
pub const PER_IMAGE: &str = "per image: mean over classes with a defined value; then mean over \
                             images with any defined value (MONAI 1.6 MeanIoU reduction \"mean\"; \
                             segmentation_models_pytorch 0.6 \"macro-imagewise\" when undefined \
                             pairs count as --empty-as gives them)";
pub const PER_IMAGE_POOLED: &str = "every (image, class) pair with a defined value, averaged at \
                                    once (torchmetrics 1.9 segmentation.MeanIoU)";
pub const MICRO_IMAGEWISE: &str = "per image: counts summed over classes, then divided; then mean \
                                   over images with a defined value (segmentation_models_pytorch \
                                   0.6 reduction \"micro-imagewise\"; its default zero_division \
                                   counts an undefined image as 0, as --empty-as zero does)";
pub const PIXEL_ACCURACY: &str = "sum over classes of TP / sum of (TP + FN) (mmsegmentation aAcc); for single-label truth, \
     the share of labelled pixels whose class is predicted";
pub const ACCURACY: &str = "(TP + TN) / (TP + FP + FN + TN): true negatives count, so a class \
                            absent from truth and prediction scores 1";

/// What the predictions are and how they were decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub kind: PredKind,
    pub files: PredFile,
    /// The rule in words: `label map code` or `score > T ...` or argmax.
    pub rule: String,
    /// The `>` threshold, for thresholded float predictions.
    pub threshold: Option<f32>,
    pub argmax: bool,
    /// The tensor named by `--tensor` for `.safetensors` files; null: the
    /// only tensor of each file, else the one named `logits` or `probs`.
    pub tensor: Option<String>,
}

/// Files found, scored and not scored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Files {
    pub truth_masks: u64,
    pub pairs: u64,
    pub images_scored: u64,
    /// Truth masks with no prediction.
    pub missing_predictions: Vec<String>,
    /// Predictions with no truth mask.
    pub extra_predictions: Vec<String>,
    pub size_mismatches: Vec<SizeMismatch>,
    /// Pairs not scored (unreadable file, wrong shape), with the reason.
    pub skipped: Vec<Skipped>,
}

/// "truth without prediction: `t.png`".
fn missing_prediction(truth: &str) -> String {
    problem::unpaired("truth", "prediction", truth)
}

/// "prediction without truth: `p.png`".
fn extra_prediction(pred: &str) -> String {
    problem::unpaired("prediction", "truth", pred)
}

impl Files {
    /// Every file problem, a line each, as the table and the report list
    /// them: unpaired files, size mismatches, pairs skipped.
    pub fn problem_lines(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        out.extend(
            self.missing_predictions
                .iter()
                .map(|m| missing_prediction(m)),
        );
        out.extend(self.extra_predictions.iter().map(|e| extra_prediction(e)));
        out.extend(self.size_mismatches.iter().map(SizeMismatch::line));
        out.extend(
            self.skipped
                .iter()
                .map(|k| problem::skipped_reason(&k.reason)),
        );
        out
    }

    /// Was every truth mask paired and scored, with no extra prediction?
    pub fn complete(&self) -> bool {
        self.missing_predictions.is_empty()
            && self.extra_predictions.is_empty()
            && self.size_mismatches.is_empty()
            && self.skipped.is_empty()
    }
}

/// Pixels of the images scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pixels {
    pub total: u64,
    /// Neither ignored nor undeclared in the truth: the pixels counted.
    pub valid: u64,
    pub ignored: u64,
    pub undeclared: u64,
    /// Valid pixels predicted with a code the label map ignores or does not
    /// declare (mask predictions): counted as predicting no class.
    pub pred_unlabelled: u64,
}

/// One class: exact counts, dataset-level metrics, per-image mean IoU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassRow {
    pub name: String,
    #[serde(flatten)]
    pub counts: ClassCounts,
    #[serde(flatten)]
    pub metrics: Metrics,
    /// Mean over images of the class's per-image IoU (images where defined).
    pub per_image_iou: Option<f64>,
    /// Absent from truth and prediction in every image scored.
    pub empty: bool,
}

/// A reduction of the five metrics, with its convention.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reduction {
    pub convention: String,
    #[serde(flatten)]
    pub metrics: Metrics,
    /// How many values the IoU mean is over: classes (macro) or images
    /// (per image); null for micro, which pools counts instead.
    pub averaged_over: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reductions {
    #[serde(rename = "macro")]
    pub macro_: Reduction,
    pub micro: Reduction,
    pub per_image: Reduction,
    /// Mean over all defined (image, class) pairs at once.
    #[serde(default)]
    pub per_image_pooled: Reduction,
    /// Mean over images of each image's micro metrics.
    #[serde(default)]
    pub micro_imagewise: Reduction,
}

/// The headline numbers, each named for its reduction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Mean over classes of dataset-level IoU (`reductions.macro.iou`).
    pub miou: Option<f64>,
    /// Mean over classes of dataset-level accuracy, with TN.
    pub mean_accuracy: Option<f64>,
    /// See [`PIXEL_ACCURACY`].
    pub pixel_accuracy: Option<f64>,
    pub pixel_accuracy_convention: String,
    pub accuracy_convention: String,
    /// `reductions.per_image.iou`.
    pub per_image_miou: Option<f64>,
    /// `reductions.micro.iou`.
    pub micro_iou: Option<f64>,
    /// Classes absent from truth and prediction over the whole run.
    pub empty_classes: Vec<String>,
    /// (image, class) pairs with the class absent from both.
    pub empty_image_classes: u64,
    /// What happened to 0/0 ratios.
    pub empty_as: EmptyAs,
}

/// The whole score output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreDoc {
    pub format: String,
    pub maskprep_version: String,
    pub truth: String,
    pub pred: String,
    pub labels: LabelSpec,
    pub labels_origin: String,
    pub prediction: Prediction,
    pub backend: String,
    pub files: Files,
    pub pixels: Pixels,
    pub classes: Vec<ClassRow>,
    pub reductions: Reductions,
    pub summary: Summary,
    pub warnings: Vec<String>,
    /// The threshold sweep (`--sweep`), when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<super::sweep::SweepDoc>,
    /// A partition's exact accumulators, so `maskprep merge` can sum parts
    /// into the whole run's document; absent from whole runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<Partial>,
}

/// What a partition's document carries beyond its numbers: the per-image
/// means as exact fixed-point sums and counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partial {
    pub partition: crate::source::Partition,
    pub per_image: super::metrics::PerImage,
}

/// Where the scores came from.
pub struct Meta {
    pub truth: String,
    pub pred: String,
    pub labels: LabelSpec,
    pub labels_origin: String,
    pub prediction: Prediction,
    pub backend: String,
    pub empty_as: EmptyAs,
}

impl ScoreDoc {
    /// Derives the document from a scan's exact counts.
    pub fn new(meta: Meta, scan: &Scan, mut files: Files) -> Self {
        let empty_as = meta.empty_as;
        let total = &scan.total;
        let classes: Vec<ClassRow> = meta
            .labels
            .classes
            .iter()
            .zip(&total.classes)
            .zip(&scan.per_image.classes)
            .map(|((name, counts), per)| ClassRow {
                name: name.clone(),
                counts: *counts,
                metrics: Metrics::of(counts, empty_as),
                per_image_iou: per.get().iou,
                empty: metrics::is_empty(counts),
            })
            .collect();
        let macro_mean = MetricsMean::of(classes.iter().map(|r| &r.metrics));
        let micro = Metrics::micro(&total.classes, empty_as);
        let macro_ = Reduction {
            convention: MACRO.to_string(),
            metrics: macro_mean.get(),
            averaged_over: Some(macro_mean.iou_count()),
        };
        let per_image = Reduction {
            convention: PER_IMAGE.to_string(),
            metrics: scan.per_image.means.get(),
            averaged_over: Some(scan.per_image.means.iou_count()),
        };
        let micro = Reduction {
            convention: MICRO.to_string(),
            metrics: micro,
            averaged_over: None,
        };
        let pooled = scan.per_image.pooled();
        let per_image_pooled = Reduction {
            convention: PER_IMAGE_POOLED.to_string(),
            metrics: pooled.get(),
            averaged_over: Some(pooled.iou_count()),
        };
        let micro_imagewise = Reduction {
            convention: MICRO_IMAGEWISE.to_string(),
            metrics: scan.per_image.micro.get(),
            averaged_over: Some(scan.per_image.micro.iou_count()),
        };
        let empty_classes: Vec<String> = classes
            .iter()
            .filter(|r| r.empty)
            .map(|r| r.name.clone())
            .collect();
        files.images_scored = scan.images();
        files.size_mismatches = scan.size_mismatches.clone();
        files.skipped = scan.skipped.clone();
        let pixels = Pixels {
            total: scan.pixels,
            valid: total.valid,
            ignored: scan.tally.ignored,
            undeclared: scan.tally.undeclared,
            pred_unlabelled: scan.tally.pred_unlabelled,
        };
        let warnings = warnings(&files, &pixels, &empty_classes, empty_as);
        let summary = Summary {
            miou: macro_.metrics.iou,
            mean_accuracy: macro_.metrics.accuracy,
            pixel_accuracy: metrics::pixel_accuracy(&total.classes),
            pixel_accuracy_convention: PIXEL_ACCURACY.to_string(),
            accuracy_convention: ACCURACY.to_string(),
            per_image_miou: per_image.metrics.iou,
            micro_iou: micro.metrics.iou,
            empty_classes,
            empty_image_classes: scan.per_image.empty,
            empty_as,
        };
        Self {
            format: FORMAT.to_string(),
            maskprep_version: env!("CARGO_PKG_VERSION").to_string(),
            truth: meta.truth,
            pred: meta.pred,
            labels: meta.labels,
            labels_origin: meta.labels_origin,
            prediction: meta.prediction,
            backend: meta.backend,
            files,
            pixels,
            classes,
            reductions: Reductions {
                macro_,
                micro,
                per_image,
                per_image_pooled,
                micro_imagewise,
            },
            summary,
            warnings,
            sweep: None,
            partial: None,
        }
    }

    /// Was every truth mask paired and scored?
    pub fn complete(&self) -> bool {
        self.files.complete()
    }

    /// Lists skipped pairs (always), pairing problems, and the warnings
    /// unless the table (which holds them) is shown.
    pub fn report_problems(&self, console: &Console, table_shown: bool) {
        let f = &self.files;
        for k in &f.skipped {
            console.skipped(&k.pred, &k.reason);
        }
        for z in &f.size_mismatches {
            console.skipped(&z.pred, &z.reason());
        }
        for m in &f.missing_predictions {
            console.problem(&missing_prediction(m));
        }
        for e in &f.extra_predictions {
            console.problem(&extra_prediction(e));
        }
        if !table_shown {
            for w in &self.warnings {
                console.warn(w);
            }
        }
    }
}

fn warnings(files: &Files, pixels: &Pixels, empty: &[String], empty_as: EmptyAs) -> Vec<String> {
    let mut w = Vec::new();
    if !empty.is_empty() {
        let names: Vec<String> = empty.iter().map(|n| format!("`{n}`")).collect();
        let rule = match empty_as {
            EmptyAs::Skip => "undefined, left out of means",
            EmptyAs::One => "set to 1 by `--empty-as one`",
            EmptyAs::Zero => "set to 0 by `--empty-as zero`",
        };
        w.push(format!(
            "{} absent from truth and prediction: IoU, Dice, precision and recall are 0/0 ({rule}); accuracy is 1",
            names.join(", ")
        ));
    }
    if pixels.pred_unlabelled > 0 {
        w.push(format!(
            "{} valid pixels were predicted with codes the label map ignores or does not declare; \
             they count as predicting no class",
            pixels.pred_unlabelled
        ));
    }
    let n = |v: usize, what: &str| (v > 0).then(|| format!("{v} {what}"));
    let problems: Vec<String> = [
        n(
            files.missing_predictions.len(),
            "truth mask(s) without prediction",
        ),
        n(
            files.extra_predictions.len(),
            "prediction(s) without truth mask",
        ),
        n(files.size_mismatches.len(), "size mismatch(es)"),
        n(files.skipped.len(), "pair(s) that could not be read"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !problems.is_empty() {
        w.push(format!(
            "not every image was scored: {} (listed under `files`)",
            problems.join(", ")
        ));
    }
    w
}

/// The human table.
pub fn render_table(doc: &ScoreDoc) -> String {
    let mut s = String::new();
    render_head(&mut s, doc);
    class_table(doc).write_to(&mut s);
    render_reductions(&mut s, doc);
    render_summary(&mut s, doc);
    for line in doc.files.problem_lines() {
        let _ = writeln!(s, "{line}");
    }
    if let Some(sw) = &doc.sweep {
        render_sweep(&mut s, doc, sw);
    }
    for wmsg in &doc.warnings {
        let _ = writeln!(s, "warning: {wmsg}");
    }
    s
}

/// What was scored against what, how, and the pixels counted.
fn render_head(s: &mut String, doc: &ScoreDoc) {
    let p = &doc.prediction;
    let _ = writeln!(
        s,
        "maskprep score: truth `{}`, predictions `{}`",
        doc.truth, doc.pred
    );
    let _ = writeln!(
        s,
        "predictions: {} ({}); {}",
        p.kind.name(),
        p.files,
        p.rule
    );
    let _ = writeln!(
        s,
        "labels: {} ({}); {} images scored of {} truth masks; backend {}",
        doc.labels_origin,
        doc.labels.kind.name(),
        doc.files.images_scored,
        doc.files.truth_masks,
        doc.backend
    );
    let px = &doc.pixels;
    let _ = writeln!(
        s,
        "pixels: {} total, {} valid, {} ignored, {} undeclared (ignored and undeclared count nowhere)\n",
        px.total, px.valid, px.ignored, px.undeclared
    );
}

/// A row per class: its counts and metrics.
fn class_table(doc: &ScoreDoc) -> Table {
    let name = Width::Fit {
        min: 5,
        max: crate::labels::MAX_NAME_CHARS,
    };
    // The four count columns share one width.
    let count = doc
        .classes
        .iter()
        .flat_map(|c| [c.counts.tp, c.counts.fp, c.counts.fn_, c.counts.tn])
        .map(|v| v.to_string().len())
        .max()
        .unwrap_or(1)
        .max(2);
    let count = Width::Fixed(count);
    let mut columns = vec![Column::left("class", name)];
    columns.extend(["TP", "FP", "FN", "TN"].map(|h| Column::right(h, count)));
    columns.extend(
        [
            "IoU",
            "Dice",
            "precision",
            "recall",
            "accuracy",
            "IoU/image",
        ]
        .map(|h| Column::right(h, Width::Fixed(9))),
    );
    let mut table = Table::new(columns);
    for c in &doc.classes {
        let m = &c.metrics;
        let k = &c.counts;
        table.row([
            c.name.clone(),
            k.tp.to_string(),
            k.fp.to_string(),
            k.fn_.to_string(),
            k.tn.to_string(),
            show(m.iou),
            show(m.dice),
            show(m.precision),
            show(m.recall),
            show(m.accuracy),
            show(c.per_image_iou),
        ]);
    }
    table
}

/// Each reduction's metrics, with its convention.
fn render_reductions(s: &mut String, doc: &ScoreDoc) {
    let r = &doc.reductions;
    let _ = writeln!(s, "\nreductions:");
    for (name, red) in [
        ("macro", &r.macro_),
        ("micro", &r.micro),
        ("per-image", &r.per_image),
        ("per-image-pooled", &r.per_image_pooled),
        ("micro-imagewise", &r.micro_imagewise),
    ] {
        let m = &red.metrics;
        let _ = writeln!(
            s,
            "  {name:<16}  IoU {}  Dice {}  precision {}  recall {}  accuracy {}\n                    ({})",
            show(m.iou),
            show(m.dice),
            show(m.precision),
            show(m.recall),
            show(m.accuracy),
            red.convention
        );
    }
}

/// The headline means and accuracies.
fn render_summary(s: &mut String, doc: &ScoreDoc) {
    let sm = &doc.summary;
    let _ = writeln!(
        s,
        "\nmIoU (dataset-level, macro) {}   per-image mIoU {}   micro IoU {}",
        show(sm.miou),
        show(sm.per_image_miou),
        show(sm.micro_iou)
    );
    let _ = writeln!(
        s,
        "mean accuracy {}   ({})",
        show(sm.mean_accuracy),
        sm.accuracy_convention
    );
    let _ = writeln!(
        s,
        "overall pixel accuracy {}   ({})",
        show(sm.pixel_accuracy),
        sm.pixel_accuracy_convention
    );
}

/// The sweep's table: per class the default threshold's IoU and the best
/// IoU and Dice thresholds.
fn render_sweep(s: &mut String, doc: &ScoreDoc, sw: &super::sweep::SweepDoc) {
    let _ = writeln!(s, "\nthreshold sweep: {}; {}", sw.grid, sw.rule);
    let pick = |p: &Option<super::sweep::Pick>, dice: bool| match p {
        Some(p) => {
            let v = if dice { p.metrics.dice } else { p.metrics.iou };
            format!("{} ({:.2}, {})", show(v), p.level, p.threshold)
        }
        None => "undefined".to_string(),
    };
    let name = Width::Fit {
        min: 5,
        max: usize::MAX,
    };
    let mut table = Table::new(vec![
        Column::left("class", name),
        Column::right("default IoU", Width::Fixed(11)),
        Column::right("best IoU (level, thr.)", Width::Fixed(24)),
        Column::right("best Dice (level, thr.)", Width::Fixed(24)),
    ]);
    for (c, row) in sw.classes.iter().zip(&doc.classes) {
        table.row([
            c.name.clone(),
            show(row.metrics.iou),
            pick(&c.best_iou, false),
            pick(&c.best_dice, true),
        ]);
    }
    table.write_to(s);
}

/// The score document is not one this version reads.
#[derive(Debug, thiserror::Error)]
pub enum ScoreJsonError {
    #[error("the JSON has format `{0}`; expected `{FORMAT}` (written by `maskprep score --json`)")]
    Format(String),
    #[error("the JSON is not a complete `{FORMAT}` document")]
    Incomplete(#[source] serde_json::Error),
}

/// Reads a score document, checking its format first.
pub fn parse_score(v: serde_json::Value) -> Result<ScoreDoc, ScoreJsonError> {
    let format = v.get("format").and_then(|f| f.as_str()).unwrap_or("");
    if format != FORMAT {
        return Err(ScoreJsonError::Format(format.to_string()));
    }
    serde_json::from_value(v).map_err(ScoreJsonError::Incomplete)
}

/// Reads a score document written by `maskprep score --json`.
pub fn read_score(path: &std::path::Path) -> anyhow::Result<ScoreDoc> {
    use anyhow::Context;
    let text = crate::store::read_to_string(path)
        .with_context(|| format!("cannot read scores `{}`", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text).with_context(|| {
        format!(
            "`{}` is not JSON; expected `maskprep score --json` output",
            path.display()
        )
    })?;
    parse_score(value).with_context(|| format!("cannot read scores `{}`", path.display()))
}

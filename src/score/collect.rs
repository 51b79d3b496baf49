//! Scoring a prediction set: resolve the truth's label map, pair the
//! predictions, decide how they are read, choose the backend, run the pass
//! → the score document, its per-image rows and what the report replays.
//! The one copy that `score`, pipelines and the Python API run; nothing is
//! written, and notes go to the console.

use std::path::Path;

use anyhow::{Context, bail};

use super::doc::{Files, Meta, Partial, Prediction, ScoreDoc};
use super::pairs::{self, PredFile};
use super::replay::PredReader;
use super::scan::{self, ImageRow, ScanOptions};
use super::sweep::{Grid, SweepDoc};
use super::{Backend, Decision, EmptyAs, GpuOptions, PredKind, ScoreError, select};
use crate::dataset::{ExportOptions, prepare};
use crate::labels::LabelMap;
use crate::output::Console;
use crate::source::{Dataset, Partition};

/// Which probability levels a sweep tries.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepLevels {
    /// `--thresholds`; `None`: `bins + 1` uniform levels.
    pub levels: Option<Vec<f64>>,
    pub bins: usize,
}

/// What to score.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub truth: &'a Path,
    pub pred: &'a Path,
    /// Label map file or preset; detected when `None`.
    pub labels: Option<&'a str>,
    pub exports: ExportOptions,
    /// `None`: from the files (PNG: mask; `.npy`/`.safetensors`: logits;
    /// COCO results: probs).
    pub pred_kind: Option<PredKind>,
    pub threshold: Option<f32>,
    pub argmax: bool,
    /// Tensor name in `.safetensors` files holding several.
    pub tensor: Option<&'a str>,
    pub empty_as: EmptyAs,
    pub backend: Backend,
    pub gpu: &'a GpuOptions,
    pub sweep: Option<&'a SweepLevels>,
    /// `None`: every pair.
    pub partition: Option<Partition>,
    /// Keep a row per image (per-image tables, the report).
    pub per_image: bool,
    /// Stop at the first pair that cannot be scored.
    pub strict: bool,
}

/// A scored prediction set.
pub struct Collected {
    pub doc: ScoreDoc,
    /// Empty unless asked for.
    pub rows: Vec<ImageRow>,
    pub map: LabelMap,
    pub dataset: Dataset,
    /// How the predictions were read (the report replays them).
    pub reader: PredReader,
}

/// Scores `req.pred` against `req.truth`. An error when no image at all
/// could be scored (a piece of a partition with no pair is not one), after
/// each pair's problem is listed on the console.
pub fn collect(req: &Request<'_>, console: &Console) -> anyhow::Result<Collected> {
    let what = || {
        format!(
            "cannot score `{}` against `{}`",
            req.pred.display(),
            req.truth.display()
        )
    };
    let prep = prepare(req.truth, req.labels, &req.exports, Partition::WHOLE).with_context(what)?;
    prep.announce(console);
    let mut pairing = pairs::pair_on(&prep.dataset, req.pred, console).with_context(what)?;
    let truth_masks = match req.partition {
        Some(part) => keep_piece(&mut pairing, part),
        None => prep.dataset.items.len() as u64,
    };
    let (kind, decision) = decide(req, pairing.pred_file).with_context(what)?;
    let float = pairing.pred_file != PredFile::Png;
    let grid = match req.sweep {
        Some(_) if !float => bail!(
            "`--sweep` needs float predictions (`.npy` or `.safetensors` scores); `{}` holds PNG \
             masks, which have no threshold",
            req.pred.display()
        ),
        Some(sw) => Some(sweep_grid(sw, kind).with_context(what)?),
        None => None,
    };
    let (scorer, backend) = scorer(req, float, console).with_context(what)?;
    let rule = if float {
        decision.describe()
    } else {
        "codes resolved through the label map".to_string()
    };
    console.note(&format!(
        "predictions: {} ({}); {rule}",
        kind.name(),
        pairing.pred_file
    ));
    let tensor = req.tensor.unwrap_or(kind.name()).to_string();
    let opts = ScanOptions {
        pred_file: pairing.pred_file,
        decision,
        tensor: tensor.clone(),
        empty_as: req.empty_as,
        per_image: req.per_image,
        strict: req.strict,
        progress: console.progress(),
        sweep: grid.as_ref().map(|(g, _)| g.clone()),
    };
    let scan = scan::scan(&pairing.pairs, &prep.map, scorer.as_ref(), &opts)
        .map_err(|e| scan_error(e, req.strict))
        .with_context(what)?;
    let show = |p: &Path| p.display().to_string();
    let files = Files {
        truth_masks,
        pairs: pairing.pairs.len() as u64,
        missing_predictions: pairing.missing.iter().map(|p| show(p)).collect(),
        extra_predictions: pairing.extra.iter().map(|p| show(p)).collect(),
        ..Files::default()
    };
    let meta = Meta {
        truth: show(req.truth),
        pred: show(req.pred),
        labels: prep.map.spec.clone(),
        labels_origin: prep.origin.clone(),
        prediction: prediction(req, kind, pairing.pred_file, rule, decision),
        backend,
        empty_as: req.empty_as,
    };
    let mut doc = ScoreDoc::new(meta, &scan, files);
    doc.partial = req.partition.map(|partition| Partial {
        partition,
        per_image: scan.per_image.clone(),
    });
    if let (Some((grid, described)), Some(counts)) = (&grid, &scan.sweep) {
        doc.sweep = Some(SweepDoc::new(
            grid,
            described.clone(),
            kind,
            counts,
            prep.map.classes(),
        ));
    }
    // A piece with no pair to score is an empty part, not a failure.
    let empty_piece = req.partition.is_some() && doc.files.pairs == 0;
    if doc.files.images_scored == 0 && !empty_piece {
        // Each pair's problem on stderr, then the first as the error.
        doc.report_problems(console, true);
        let first = nothing_scored(&doc, req.pred, &prep.dataset);
        return Err(anyhow::anyhow!(first))
            .context("no image could be scored")
            .with_context(what);
    }
    let reader = PredReader {
        file: pairing.pred_file,
        decision,
        tensor,
    };
    Ok(Collected {
        doc,
        rows: scan.rows,
        map: prep.map,
        dataset: prep.dataset,
        reader,
    })
}

/// Keeps the pairs and unpaired truth masks of one piece, by their place
/// in the sorted lists; predictions without truth belong to the first
/// piece. Returns the piece's truth masks.
fn keep_piece(pairing: &mut pairs::Pairing, part: Partition) -> u64 {
    pairing.pairs = piece(std::mem::take(&mut pairing.pairs), part);
    pairing.missing = piece(std::mem::take(&mut pairing.missing), part);
    if part.index != 1 {
        pairing.extra.clear();
    }
    (pairing.pairs.len() + pairing.missing.len()) as u64
}

/// The scorer `req.backend` asks for and the backend as the document names
/// it; the backend's notes go to the console when it does the scoring.
fn scorer(
    req: &Request<'_>,
    float: bool,
    console: &Console,
) -> Result<(Box<dyn super::Scorer>, String), ScoreError> {
    // Masks: the joint histogram works per run of equal pixels, so `auto`
    // keeps them on the CPU; `--backend gpu` sends their planes to the GPU.
    let choice = match req.backend {
        Backend::Auto if !float => Backend::Cpu,
        b => b,
    };
    let (scorer, backend_notes) = select(choice, req.gpu)?;
    let by_scorer = float || scorer.device_batch_bytes().is_some();
    let backend = if by_scorer {
        for n in &backend_notes {
            console.note(n);
        }
        if float {
            scorer.name().to_string()
        } else {
            format!("{} (label-map planes)", scorer.name())
        }
    } else {
        "cpu (joint histogram)".to_string()
    };
    Ok((scorer, backend))
}

/// A scan's error; under `--strict`, saying that it stopped the run.
fn scan_error(e: ScoreError, strict: bool) -> anyhow::Error {
    let stopped = strict && !matches!(e, ScoreError::Backend { .. });
    let e = anyhow::Error::new(e);
    if stopped {
        e.context("`--strict` stops at the first pair that cannot be scored")
    } else {
        e
    }
}

/// How the predictions were read, as the document states it.
fn prediction(
    req: &Request<'_>,
    kind: PredKind,
    files: PredFile,
    rule: String,
    decision: Decision,
) -> Prediction {
    let float = files != PredFile::Png;
    Prediction {
        kind,
        files,
        rule,
        threshold: match decision {
            Decision::Above(t) if float => Some(t),
            _ => None,
        },
        argmax: float && decision == Decision::Argmax,
        tensor: req
            .tensor
            .map(str::to_string)
            .filter(|_| files == PredFile::Safetensors),
    }
}

/// Why no image was scored: the first problem met.
fn nothing_scored(doc: &ScoreDoc, pred: &Path, dataset: &Dataset) -> String {
    if let Some(k) = doc.files.skipped.first() {
        return k.reason.clone();
    }
    if let Some(z) = doc.files.size_mismatches.first() {
        return z.sentence();
    }
    format!(
        "no prediction under `{}` has the relative path of a truth mask (e.g. `{}`)",
        pred.display(),
        dataset.items.first().map(|i| i.key.as_str()).unwrap_or("")
    )
}

/// How the predictions are read and decided.
fn decide(req: &Request<'_>, files: PredFile) -> anyhow::Result<(PredKind, Decision)> {
    let dir = req.pred.display();
    if files == PredFile::Png {
        if let Some(k) = req.pred_kind.filter(|k| *k != PredKind::Mask) {
            bail!(
                "`--pred-kind {}` expects `.npy` or `.safetensors` arrays, but `{dir}` holds PNG masks; \
                 expected `--pred-kind mask` (or none)",
                k.name()
            );
        }
        if req.threshold.is_some() || req.argmax {
            bail!(
                "`--threshold` and `--argmax` apply to float predictions, but `{dir}` holds PNG masks \
                 (read through the label map)"
            );
        }
        // Unused for masks: their codes are resolved by the label map.
        return Ok((PredKind::Mask, Decision::Above(0.0)));
    }
    let kind = match req.pred_kind {
        Some(PredKind::Mask) => bail!(
            "`--pred-kind mask` expects PNG masks, but `{dir}` holds {files}; expected \
             `--pred-kind logits` or `--pred-kind probs`"
        ),
        Some(k) => k,
        // Detection scores are probabilities.
        None if files == PredFile::CocoResults => PredKind::Probs,
        None => PredKind::Logits,
    };
    let decision = if req.argmax {
        Decision::Argmax
    } else {
        let default = if kind == PredKind::Probs { 0.5 } else { 0.0 };
        Decision::Above(req.threshold.unwrap_or(default))
    };
    Ok((kind, decision))
}

/// The sweep's grid for predictions of `kind`, and how it is described.
fn sweep_grid(sw: &SweepLevels, kind: PredKind) -> anyhow::Result<(Grid, String)> {
    let grid = match &sw.levels {
        Some(levels) => Grid::new(levels.clone(), kind)?,
        None => Grid::uniform(sw.bins, kind)?,
    };
    let n = grid.levels.len();
    let described = match &sw.levels {
        Some(_) => format!("{n} probability levels given with `--thresholds`"),
        None => format!("{n} probability levels 0..1 in steps of 1/{}", sw.bins),
    };
    let described = match kind {
        PredKind::Logits => format!("{described}, compared with logits as logit(level)"),
        _ => described,
    };
    Ok((grid, described))
}

/// The items of a sorted list that belong to partition `part`.
fn piece<T>(v: Vec<T>, part: Partition) -> Vec<T> {
    v.into_iter()
        .enumerate()
        .filter(|(i, _)| part.contains(*i))
        .map(|(_, x)| x)
        .collect()
}

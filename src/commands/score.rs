//! `maskprep score`: resolve the label map and the pairs, decide how
//! predictions are read, run the pass, write the outputs. Errors get
//! context here (anyhow); the stages below use `thiserror`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::report::score_report;
use crate::cli::{ScoreConfig, SweepConfig};
use crate::dataset::prepare;
use crate::output::{Console, emit, write_bytes};
use crate::score::doc::{self, Files, Meta, Partial, Prediction, ScoreDoc};
use crate::score::pairs::{self, PredFile};
use crate::score::replay::{PerImage, PredReader, WORST};
use crate::score::scan::{self, ScanOptions};
use crate::score::sweep::{self, Grid, SweepDoc};
use crate::score::{Backend, Decision, PredKind, ScoreError, per_image, select};
use crate::source::Partition;

/// How the predictions are read and decided.
fn decide(cfg: &ScoreConfig, files: PredFile) -> anyhow::Result<(PredKind, Decision)> {
    let dir = cfg.pred.display();
    if files == PredFile::Png {
        if let Some(k) = cfg.pred_kind.filter(|k| *k != PredKind::Mask) {
            bail!(
                "`--pred-kind {}` expects `.npy` or `.safetensors` arrays, but `{dir}` holds PNG masks; \
                 expected `--pred-kind mask` (or none)",
                k.name()
            );
        }
        if cfg.threshold.is_some() || cfg.argmax {
            bail!(
                "`--threshold` and `--argmax` apply to float predictions, but `{dir}` holds PNG masks \
                 (read through the label map)"
            );
        }
        // Unused for masks: their codes are resolved by the label map.
        return Ok((PredKind::Mask, Decision::Above(0.0)));
    }
    let kind = match cfg.pred_kind {
        Some(PredKind::Mask) => bail!(
            "`--pred-kind mask` expects PNG masks, but `{dir}` holds {files}; expected \
             `--pred-kind logits` or `--pred-kind probs`"
        ),
        Some(k) => k,
        // Detection scores are probabilities.
        None if files == PredFile::CocoResults => PredKind::Probs,
        None => PredKind::Logits,
    };
    let decision = if cfg.argmax {
        Decision::Argmax
    } else {
        let default = if kind == PredKind::Probs { 0.5 } else { 0.0 };
        Decision::Above(cfg.threshold.unwrap_or(default))
    };
    Ok((kind, decision))
}

/// Runs `maskprep score`; returns the exit code (1: some images were not
/// paired or not scored).
pub fn run(cfg: &ScoreConfig) -> anyhow::Result<u8> {
    let console = Console::new(cfg.quiet);
    let what = || {
        format!(
            "cannot score `{}` against `{}`",
            cfg.pred.display(),
            cfg.truth.display()
        )
    };
    if let Some(out) = &cfg.report {
        crate::report::check_output(out)?;
    }
    // Where the thresholds go, settled before the pass.
    let thresholds = cfg
        .sweep
        .as_ref()
        .map(|sw| thresholds_files(sw.out.as_deref(), cfg.output.path.as_deref()));
    let prep = prepare(
        &cfg.truth,
        cfg.labels.as_deref(),
        &cfg.exports,
        Partition::WHOLE,
    )
    .with_context(what)?;
    prep.announce(&console);
    let mut pairing = pairs::pair(&prep.dataset, &cfg.pred).with_context(what)?;
    let mut truth_masks = prep.dataset.items.len() as u64;
    if let Some(part) = cfg.partition {
        // Pairs and unpaired truth masks by their place in the sorted
        // lists; predictions without truth belong to the first piece.
        pairing.pairs = piece(std::mem::take(&mut pairing.pairs), part);
        pairing.missing = piece(std::mem::take(&mut pairing.missing), part);
        if part.index != 1 {
            pairing.extra.clear();
        }
        truth_masks = (pairing.pairs.len() + pairing.missing.len()) as u64;
    }
    let (kind, decision) = decide(cfg, pairing.pred_file).with_context(what)?;
    let float = pairing.pred_file != PredFile::Png;
    let grid = match &cfg.sweep {
        Some(_) if !float => bail!(
            "`--sweep` needs float predictions (`.npy` or `.safetensors` scores); `{}` holds PNG \
             masks, which have no threshold",
            cfg.pred.display()
        ),
        Some(sw) => Some(sweep_grid(sw, kind).with_context(what)?),
        None => None,
    };
    // Masks: the joint histogram works per run of equal pixels, so `auto`
    // keeps them on the CPU; `--backend gpu` sends their planes to the GPU.
    let choice = match cfg.backend {
        Backend::Auto if !float => Backend::Cpu,
        b => b,
    };
    let (scorer, backend_notes) = select(choice, &cfg.gpu).with_context(what)?;
    let by_scorer = float || scorer.device_batch_bytes().is_some();
    let rule = if float {
        decision.describe()
    } else {
        "codes resolved through the label map".to_string()
    };
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
    console.note(&format!(
        "predictions: {} ({}); {rule}",
        kind.name(),
        pairing.pred_file
    ));
    let tensor = cfg
        .tensor
        .clone()
        .unwrap_or_else(|| kind.name().to_string());
    let opts = ScanOptions {
        pred_file: pairing.pred_file,
        decision,
        tensor,
        empty_as: cfg.empty_as,
        per_image: cfg.per_image.is_some() || cfg.report.is_some(),
        strict: cfg.strict,
        progress: console.progress(),
        sweep: grid.as_ref().map(|(g, _)| g.clone()),
    };
    let scan = scan::scan(&pairing.pairs, &prep.map, scorer.as_ref(), &opts)
        .map_err(|e| {
            let stopped = cfg.strict && !matches!(e, ScoreError::Backend { .. });
            let e = anyhow::Error::new(e);
            if stopped {
                e.context("`--strict` stops at the first pair that cannot be scored")
            } else {
                e
            }
        })
        .with_context(what)?;
    let show = |p: &std::path::Path| p.display().to_string();
    let files = Files {
        truth_masks,
        pairs: pairing.pairs.len() as u64,
        missing_predictions: pairing.missing.iter().map(|p| show(p)).collect(),
        extra_predictions: pairing.extra.iter().map(|p| show(p)).collect(),
        ..Files::default()
    };
    let meta = Meta {
        truth: cfg.truth.display().to_string(),
        pred: cfg.pred.display().to_string(),
        labels: prep.map.spec.clone(),
        labels_origin: prep.origin.clone(),
        prediction: Prediction {
            kind,
            files: pairing.pred_file,
            rule,
            threshold: match decision {
                Decision::Above(t) if float => Some(t),
                _ => None,
            },
            argmax: float && decision == Decision::Argmax,
            tensor: cfg
                .tensor
                .clone()
                .filter(|_| pairing.pred_file == PredFile::Safetensors),
        },
        backend,
        empty_as: cfg.empty_as,
    };
    let mut doc = ScoreDoc::new(meta, &scan, files);
    doc.partial = cfg.partition.map(|partition| Partial {
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
    // Warnings are in the table; repeat them on stderr when it is not shown.
    let table_shown = !cfg.output.json && cfg.output.path.is_none();
    report_problems(&doc, &console, table_shown);
    // A piece with no pair to score is an empty part, not a failure.
    let empty_piece = cfg.partition.is_some() && doc.files.pairs == 0;
    if doc.files.images_scored == 0 && !empty_piece {
        let first = doc
            .files
            .skipped
            .first()
            .map(|k| k.reason.clone())
            .or_else(|| {
                doc.files.size_mismatches.first().map(|z| {
                    format!(
                        "prediction `{}` is {} but truth `{}` is {}",
                        z.pred, z.pred_size, z.truth, z.truth_size
                    )
                })
            })
            .unwrap_or_else(|| {
                format!(
                    "no prediction under `{}` has the relative path of a truth mask (e.g. `{}`)",
                    cfg.pred.display(),
                    prep.dataset
                        .items
                        .first()
                        .map(|i| i.key.as_str())
                        .unwrap_or("")
                )
            });
        return Err(anyhow::anyhow!(first))
            .context("no image could be scored")
            .with_context(what);
    }
    if let Some(path) = &cfg.per_image {
        per_image::write(path, &scan.rows, prep.map.classes())?;
    }
    emit(&doc, &cfg.output, doc::render_table)?;
    if let (Some(files), Some(sd), Decision::Above(default)) = (&thresholds, &doc.sweep, decision) {
        if cfg.partition.is_some() {
            console.note(
                "a piece's sweep picks no thresholds: `maskprep merge` of the pieces writes them",
            );
        } else {
            write_thresholds(sd, kind, default, files, &console)?;
        }
    }
    if let Some(out) = &cfg.report {
        let reader = PredReader {
            file: pairing.pred_file,
            decision,
            tensor: opts.tensor.clone(),
        };
        let per_image = PerImage::from_rows(&scan.rows, prep.map, &prep.dataset, reader);
        score_report(out, &doc, Ok(&per_image), WORST)?;
        console.note(&format!(
            "wrote the report `{}`",
            out.join(crate::report::INDEX).display()
        ));
    }
    Ok(if doc.complete() { 0 } else { 1 })
}

/// Lists skipped pairs (always), pairing problems, and the warnings
/// unless the table (which holds them) is shown.
fn report_problems(doc: &ScoreDoc, console: &Console, table_shown: bool) {
    let f = &doc.files;
    for k in &f.skipped {
        console.skipped(&k.pred, &k.reason);
    }
    for z in &f.size_mismatches {
        console.skipped(
            &z.pred,
            &format!(
                "prediction is {} but truth `{}` is {}",
                z.pred_size, z.truth, z.truth_size
            ),
        );
    }
    for m in &f.missing_predictions {
        console.problem(&format!("truth without prediction: `{m}`"));
    }
    for e in &f.extra_predictions {
        console.problem(&format!("prediction without truth: `{e}`"));
    }
    if !table_shown {
        for w in &doc.warnings {
            console.warn(w);
        }
    }
}

/// The sweep's grid for predictions of `kind`, and how it is described.
fn sweep_grid(sw: &SweepConfig, kind: PredKind) -> anyhow::Result<(Grid, String)> {
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

/// Where a sweep's thresholds go: `thresholds.json` and
/// `thresholds.safetensors` in `--sweep-out DIR`; else named after the
/// score output, beside it (`-o val/score.json`: `val/score.thresholds.json`
/// and `val/score.thresholds.safetensors`), so two sweeps written into one
/// folder keep their own; else (stdout, or an output that is a FIFO or a
/// device, where nothing can go beside) in the working folder.
pub fn thresholds_files(sweep_out: Option<&Path>, output: Option<&Path>) -> (PathBuf, PathBuf) {
    let in_dir = |dir: &Path| {
        (
            dir.join(sweep::JSON_FILE),
            dir.join(sweep::SAFETENSORS_FILE),
        )
    };
    if let Some(dir) = sweep_out {
        return in_dir(dir);
    }
    match output.filter(|o| !crate::output::is_stream(o)) {
        Some(out) => {
            let stem = out
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let name = |file: &str| out.with_file_name(format!("{stem}.{file}"));
            (name(sweep::JSON_FILE), name(sweep::SAFETENSORS_FILE))
        }
        None => in_dir(Path::new("")),
    }
}

/// Writes the thresholds files (JSON, safetensors) of a sweep.
pub fn write_thresholds(
    sd: &SweepDoc,
    kind: PredKind,
    default: f32,
    (json, st): &(PathBuf, PathBuf),
    console: &Console,
) -> anyhow::Result<()> {
    write_bytes(json, sd.thresholds_json(kind, default).as_bytes())?;
    write_bytes(st, &sd.thresholds_safetensors(kind, default))?;
    console.note(&format!(
        "wrote per-class thresholds `{}` and `{}`",
        json.display(),
        st.display()
    ));
    Ok(())
}

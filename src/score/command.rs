//! `maskprep score`, the command: resolve the label map and the pairs,
//! decide how predictions are read, run the pass, write the outputs.
//! Errors get context here (anyhow); the stages below use `thiserror`.

use std::io::{IsTerminal, Write};

use anyhow::{Context, bail};

use super::doc::{self, Files, Meta, Prediction, ScoreDoc};
use super::pairs::{self, PredFile};
use super::scan::{self, ScanOptions};
use super::{Backend, Decision, PredKind, ScoreConfig, ScoreError, per_image, select};
use crate::dataset::prepare;
use crate::output::Output;
use crate::output::write_bytes;
use crate::source::Partition;

/// Worst images shown with thumbnails by `--report`.
const REPORT_WORST: usize = crate::report::score::WORST;

fn note(quiet: bool, msg: &str) {
    if !quiet {
        eprintln!("maskprep: {msg}");
    }
}

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
    let prep = prepare(&cfg.truth, cfg.labels.as_deref(), Partition::WHOLE).with_context(what)?;
    prep.announce(cfg.quiet);
    let pairing = pairs::pair(&prep.dataset, &cfg.pred).with_context(what)?;
    let (kind, decision) = decide(cfg, pairing.pred_file).with_context(what)?;
    let float = pairing.pred_file != PredFile::Png;
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
            note(cfg.quiet, n);
        }
        if float {
            scorer.name().to_string()
        } else {
            format!("{} (label-map planes)", scorer.name())
        }
    } else {
        "cpu (joint histogram)".to_string()
    };
    note(
        cfg.quiet,
        &format!(
            "predictions: {} ({}); {rule}",
            kind.name(),
            pairing.pred_file
        ),
    );
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
        progress: !cfg.quiet && std::io::stderr().is_terminal(),
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
        truth_masks: prep.dataset.items.len() as u64,
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
    let doc = ScoreDoc::new(meta, &scan, files);
    // Warnings are in the table; repeat them on stderr when it is not shown.
    let table_shown = !cfg.output.json && cfg.output.path.is_none();
    report_problems(&doc, cfg.quiet || table_shown);
    if doc.files.images_scored == 0 {
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
    emit(&doc, &cfg.output)?;
    if let Some(out) = &cfg.report {
        let reader = crate::report::score::PredReader {
            file: pairing.pred_file,
            decision,
            tensor: opts.tensor.clone(),
        };
        let per_image =
            crate::report::score::PerImage::from_rows(&scan.rows, prep.map, &prep.dataset, reader);
        crate::report::run::score_report(out, &doc, Ok(&per_image), REPORT_WORST)?;
        note(
            cfg.quiet,
            &format!(
                "wrote the report `{}`",
                out.join(crate::report::INDEX).display()
            ),
        );
    }
    Ok(if doc.complete() { 0 } else { 1 })
}

/// Lists pairing problems and skipped pairs on stderr, and the warnings
/// unless `no_warnings`.
fn report_problems(doc: &ScoreDoc, no_warnings: bool) {
    let f = &doc.files;
    for k in &f.skipped {
        eprintln!("maskprep: skipped: {}", k.reason);
    }
    for z in &f.size_mismatches {
        eprintln!(
            "maskprep: skipped: prediction `{}` is {} but truth `{}` is {}",
            z.pred, z.pred_size, z.truth, z.truth_size
        );
    }
    for m in &f.missing_predictions {
        eprintln!("maskprep: truth without prediction: `{m}`");
    }
    for e in &f.extra_predictions {
        eprintln!("maskprep: prediction without truth: `{e}`");
    }
    if !no_warnings {
        for w in &doc.warnings {
            eprintln!("maskprep: warning: {w}");
        }
    }
}

fn emit(doc: &ScoreDoc, out: &Output) -> anyhow::Result<()> {
    let text = if out.json {
        let mut s = serde_json::to_string_pretty(doc).context("cannot serialise the scores")?;
        s.push('\n');
        s
    } else {
        doc::render_table(doc)
    };
    match &out.path {
        Some(p) => write_bytes(p, text.as_bytes()),
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            stdout.flush()?;
            Ok(())
        }
    }
}

//! `maskprep score`: score the set ([`crate::score::collect`]), then
//! write the outputs: the document, per-image table, thresholds, report.

use crate::cli::ScoreConfig;
use crate::output::{Console, emit};
use crate::score::collect::{Collected, Request, collect};
use crate::score::doc;
use crate::score::replay::{PerImage, WORST};
use crate::score::sweep;
use crate::score::{Decision, per_image};

/// Runs `maskprep score`; returns the exit code (1: some images were not
/// paired or not scored).
pub fn run(cfg: &ScoreConfig) -> anyhow::Result<u8> {
    let console = Console::new(cfg.quiet);
    if let Some(out) = &cfg.report {
        crate::report::check_output(out)?;
    }
    // Where the thresholds go, settled before the pass.
    let thresholds = cfg
        .sweep
        .as_ref()
        .map(|sw| sweep::thresholds_files(sw.out.as_deref(), cfg.output.path.as_deref()));
    let Collected {
        doc,
        rows,
        map,
        dataset,
        reader,
    } = collect(&request(cfg), &console)?;
    // Warnings are in the table; repeat them on stderr when it is not shown.
    let table_shown = !cfg.output.json && cfg.output.path.is_none();
    doc.report_problems(&console, table_shown);
    if let Some(path) = &cfg.per_image {
        per_image::write(path, &rows, map.classes())?;
    }
    emit(&doc, &cfg.output, doc::render_table)?;
    if let (Some(files), Some(sd), Decision::Above(default)) =
        (&thresholds, &doc.sweep, reader.decision)
    {
        if cfg.partition.is_some() {
            console.note(
                "a piece's sweep picks no thresholds: `maskprep merge` of the pieces writes them",
            );
        } else {
            sweep::write_thresholds(sd, doc.prediction.kind, default, files, &console)?;
        }
    }
    if let Some(out) = &cfg.report {
        let per_image = PerImage::from_rows(&rows, map, &dataset, reader);
        crate::report::write_score(out, &doc, Ok(&per_image), WORST)?;
        console.note(&format!(
            "wrote the report `{}`",
            out.join(crate::report::INDEX).display()
        ));
    }
    Ok(if doc.complete() { 0 } else { 1 })
}

/// The stage's request for a `score` command line (or pipeline stage).
pub fn request(cfg: &ScoreConfig) -> Request<'_> {
    Request {
        truth: &cfg.truth,
        pred: &cfg.pred,
        labels: cfg.labels.as_deref(),
        exports: cfg.exports,
        pred_kind: cfg.pred_kind,
        threshold: cfg.threshold,
        argmax: cfg.argmax,
        tensor: cfg.tensor.as_deref(),
        empty_as: cfg.empty_as,
        backend: cfg.backend,
        gpu: &cfg.gpu,
        sweep: cfg.sweep.as_ref().map(|s| &s.levels),
        partition: cfg.partition,
        per_image: cfg.per_image.is_some() || cfg.report.is_some(),
        strict: cfg.strict,
    }
}

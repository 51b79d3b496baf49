//! `maskprep check`: dataset health before training: objects per class,
//! leakage between splits, classes missing from a split, sampling weights.

use std::path::Path;

use crate::check::collect::{Collected, Request, collect};
use crate::check::doc::{self, CheckDoc};
use crate::check::{Connectivity, LISTED, Options};
use crate::cli::CheckConfig;
use crate::output::{Console, Output, emit};
use crate::pipeline::{CHECK_FILE, CHECK_REPORT_DIR, CheckStage, Pipeline};
use crate::source::Partition;

pub fn run(cfg: &CheckConfig) -> anyhow::Result<u8> {
    let console = Console::new(cfg.quiet);
    if let Some(out) = &cfg.report {
        crate::source::refuse_output_inside(&cfg.dir, out)?;
        for (_, dir) in &cfg.splits {
            crate::source::refuse_output_inside(dir, out)?;
        }
        crate::report::check_output(out)?;
    }
    let Collected { doc, sampling } = collect(
        &Request {
            dir: &cfg.dir,
            splits: &cfg.splits,
            labels: cfg.labels.as_deref(),
            exports: cfg.exports,
            options: cfg.options,
            sampling: cfg.sampling.is_some(),
        },
        &console,
    )?;
    report_problems(&doc, &console);
    if let (Some(path), Some(mut weights)) = (&cfg.sampling, sampling) {
        let json = weights.write(path)?;
        console.note(&format!(
            "wrote sampling weights for split `{}` ({} masks): `{}` and `{}`",
            weights.split,
            weights.weights.len(),
            path.display(),
            json.display()
        ));
    }
    emit(&doc, &cfg.output, doc::render_table)?;
    if let Some(out) = &cfg.report {
        crate::report::check::write(out, &doc)?;
        console.note(&format!(
            "wrote the report `{}`",
            out.join(crate::report::INDEX).display()
        ));
    }
    Ok(exit_code(&doc, cfg.strict))
}

/// 1 when files were skipped, or (`strict`) a leak or a missing class was
/// found; else 0.
pub fn exit_code(doc: &CheckDoc, strict: bool) -> u8 {
    let skipped = !doc.files.bad.is_empty() || !doc.files.bad_photos.is_empty();
    u8::from(skipped || strict && doc.problems.any())
}

/// Lists skipped files (always) and the warnings (unless quiet).
pub fn report_problems(doc: &CheckDoc, console: &Console) {
    for b in doc.files.bad.iter().chain(&doc.files.bad_photos) {
        console.skipped(&b.path, &b.reason);
    }
    for w in &doc.warnings {
        console.warn(w);
    }
}

/// A pipeline's `[check]` stage: `OUT/check.json` (and the sampling
/// weights, and `OUT/check-report/` with `[report]`). A partition's piece
/// skips it: duplicates need the whole dataset.
pub fn pipeline_stage(
    p: &Pipeline,
    ck: &CheckStage,
    out: &Path,
    part: Option<Partition>,
    console: &Console,
) -> anyhow::Result<u8> {
    if part.is_some() {
        console.note("[check] skipped in a partition: duplicates need the whole dataset");
        return Ok(0);
    }
    let options = Options {
        connectivity: if ck.connectivity == 4 {
            Connectivity::Four
        } else {
            Connectivity::Eight
        },
        min_object: ck.min_object,
        photos: ck.photos,
        listed: LISTED,
        keep_classes: ck.sampling_weights.is_some(),
        progress: console.progress(),
    };
    let sampling = ck.sampling_weights.as_ref().map(|f| out.join(f));
    let Collected {
        doc,
        sampling: weights,
    } = collect(
        &Request {
            dir: &p.source.dir,
            splits: &[],
            labels: p.source.labels.as_deref(),
            exports: p.source.exports(),
            options,
            sampling: sampling.is_some(),
        },
        console,
    )?;
    report_problems(&doc, console);
    if let (Some(path), Some(mut w)) = (&sampling, weights) {
        w.write(path)?;
    }
    let to = Output {
        json: true,
        path: Some(out.join(CHECK_FILE)),
    };
    emit(&doc, &to, doc::render_table)?;
    console.note(&format!("wrote `{}`", out.join(CHECK_FILE).display()));
    if p.report.is_some() {
        let dir = out.join(CHECK_REPORT_DIR);
        crate::report::check::write(&dir, &doc)?;
        console.note(&format!("wrote the report `{}`", dir.display()));
    }
    Ok(exit_code(&doc, ck.strict))
}

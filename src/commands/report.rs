//! `maskprep report`, and the report writers that `stats --report`,
//! `score --report` and pipelines call: numbers → report files → folder.

use std::path::Path;

use anyhow::Context;

use super::stats::exit_code;
use crate::cli::{ReportConfig, ReportInput};
use crate::output::Console;
use crate::report::stats::{Input, Origin};
use crate::report::{self, INDEX, check_output, write_folder};
use crate::score::doc::{ScoreDoc, read_score};
use crate::score::replay::{self, PerImage};
use crate::stats::collect::{Collected, Request, collect};
use crate::stats::doc::StatsDoc;
use crate::stats::merge::read_stats;
use crate::stats::scan::ImageRow;
use crate::weights::Options;
use crate::weights::doc::weights_doc;

/// Runs `maskprep report`; exit code 1 when masks were skipped.
pub fn run(cfg: &ReportConfig) -> anyhow::Result<u8> {
    let console = Console::new(cfg.quiet);
    check_output(&cfg.output)?;
    let code = match &cfg.input {
        ReportInput::Scan {
            dir,
            labels,
            exports,
            strict,
        } => {
            crate::source::refuse_output_inside(dir, &cfg.output)?;
            let request = Request {
                dir,
                labels: labels.as_deref(),
                exports: *exports,
                partition: None,
                rare_below: cfg.rare_below,
                strict: *strict,
                per_image: true,
            };
            let Collected { doc, rows, .. } = collect(&request, &console)?;
            for b in &doc.files.bad {
                console.skipped(&b.path, &b.reason);
            }
            stats_report(&cfg.output, &doc, Some(&rows), None)?;
            exit_code(&doc)
        }
        ReportInput::Stats(path) => {
            let doc = read_stats(path)
                .with_context(|| format!("cannot write a report from `{}`", path.display()))?;
            stats_report(&cfg.output, &doc, None, Some(path))?;
            0
        }
        ReportInput::Score(path) => {
            let context = || format!("cannot write a report from `{}`", path.display());
            let doc = read_score(path).with_context(context)?;
            let per_image = replay::rescore(&doc, path.parent());
            if let Err(why) = &per_image {
                console.note(&format!("note: no per-image section: {why}"));
            }
            score_report(
                &cfg.output,
                &doc,
                per_image.as_ref().map_err(String::as_str),
                cfg.worst,
            )
            .with_context(context)?;
            0
        }
    };
    console.note(&format!(
        "wrote the report `{}`",
        cfg.output.join(INDEX).display()
    ));
    Ok(code)
}

/// Writes the imbalance report of a stats document into `out`; `rows`
/// (from a scan) adds the per-image plot; `from` names a stats file read.
pub fn stats_report(
    out: &Path,
    doc: &StatsDoc,
    rows: Option<&[ImageRow]>,
    from: Option<&Path>,
) -> anyhow::Result<()> {
    let context = || format!("cannot write the report `{}`", out.display());
    let weights = weights_doc(
        doc,
        from.map(|p| p.display().to_string()),
        &Options::default(),
    )
    .with_context(context)?;
    let origin = match from {
        Some(p) => Origin::File(p.display().to_string()),
        None => Origin::Scan,
    };
    let files = report::stats::build(&Input {
        stats: doc,
        weights: &weights,
        rows,
        origin,
    })
    .with_context(context)?;
    write_folder(out, &files).with_context(context)?;
    Ok(())
}

/// Writes the score report of a score document into `out`, with its
/// per-image rows (or why there are none).
pub fn score_report(
    out: &Path,
    doc: &ScoreDoc,
    per_image: Result<&PerImage, &str>,
    worst: usize,
) -> anyhow::Result<()> {
    let context = || format!("cannot write the report `{}`", out.display());
    let shown = per_image.ok().map(|pi| replay::shown(pi, worst));
    let with_planes = per_image.map(|pi| (pi, shown.as_deref().unwrap_or_default()));
    let files = report::score::build(doc, with_planes).with_context(context)?;
    write_folder(out, &files).with_context(context)?;
    Ok(())
}

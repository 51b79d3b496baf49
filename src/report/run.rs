//! The `maskprep report` command, and the entry points that `stats --report`
//! (and `score --report`) call: input → report files → folder, with
//! context at each step (anyhow).

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::stats::{self as stats_report_mod, Input, Origin};
use super::{check_output, score, write_folder};
use crate::app::{StatsConfig, compute_stats};
use crate::output::Output;
use crate::score::doc::ScoreDoc;
use crate::stats::doc::StatsDoc;
use crate::stats::merge::read_stats;
use crate::stats::scan::ImageRow;
use crate::weights::Options;
use crate::weights::run::weights_doc;

/// What the report is made from.
#[derive(Debug, Clone)]
pub enum ReportInput {
    /// Scan a dataset (label map detected when `None`).
    Scan {
        dir: PathBuf,
        labels: Option<String>,
        strict: bool,
    },
    /// A stats JSON (`maskprep stats --json`, `maskprep merge`).
    Stats(PathBuf),
    /// A score JSON (`maskprep score --json`).
    Score(PathBuf),
}

#[derive(Debug, Clone)]
pub struct ReportConfig {
    pub input: ReportInput,
    /// The report folder.
    pub output: PathBuf,
    /// Rare-class threshold of a scan.
    pub rare_below: f64,
    /// Lowest-scoring images shown with thumbnails.
    pub worst: usize,
    pub quiet: bool,
}

/// Runs `maskprep report`; exit code 1 when masks were skipped.
pub fn run(cfg: &ReportConfig) -> anyhow::Result<u8> {
    check_output(&cfg.output)?;
    let code = match &cfg.input {
        ReportInput::Scan {
            dir,
            labels,
            strict,
        } => {
            crate::source::refuse_output_inside(dir, &cfg.output)?;
            let stats_cfg = StatsConfig {
                dir: dir.clone(),
                labels: labels.clone(),
                output: Output {
                    json: false,
                    path: None,
                },
                per_image: None,
                rare_below: cfg.rare_below,
                partition: None,
                strict: *strict,
                quiet: cfg.quiet,
                // Asks the scan for per-image rows; written below.
                report: Some(cfg.output.clone()),
            };
            let (doc, rows, _) = compute_stats(&stats_cfg)?;
            for b in &doc.files.bad {
                eprintln!("maskprep: skipped `{}`: {}", b.path, b.reason);
            }
            stats_report(&cfg.output, &doc, Some(&rows), None)?;
            if doc.complete() { 0 } else { 1 }
        }
        ReportInput::Stats(path) => {
            let doc = read_stats(path)
                .with_context(|| format!("cannot write a report from `{}`", path.display()))?;
            stats_report(&cfg.output, &doc, None, Some(path))?;
            0
        }
        ReportInput::Score(path) => {
            let context = || format!("cannot write a report from `{}`", path.display());
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read scores `{}`", path.display()))?;
            let value: serde_json::Value = serde_json::from_str(&text).with_context(|| {
                format!(
                    "`{}` is not JSON; expected `maskprep score --json` output",
                    path.display()
                )
            })?;
            let doc = score::parse(value).with_context(context)?;
            let per_image = score::rescore(&doc, path.parent());
            if let Err(why) = &per_image
                && !cfg.quiet
            {
                eprintln!("maskprep: note: no per-image section: {why}");
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
    if !cfg.quiet {
        eprintln!(
            "maskprep: wrote the report `{}`",
            cfg.output.join(super::INDEX).display()
        );
    }
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
    let files = stats_report_mod::build(&Input {
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
    per_image: Result<&score::PerImage, &str>,
    worst: usize,
) -> anyhow::Result<()> {
    let context = || format!("cannot write the report `{}`", out.display());
    let files = score::build(doc, per_image, worst).with_context(context)?;
    write_folder(out, &files).with_context(context)?;
    Ok(())
}

//! The `maskprep weights` command: counts (a scan of DIR, or a stats file)
//! → [`WeightsDoc`] → files written atomically, a table or JSON on stdout.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::doc::{self, Parts, Source, WeightsDoc};
use super::{Input, Options, compute};
use crate::dataset::prepare;
use crate::source::Partition;
use crate::stats::doc::{Files, Meta, StatsDoc};
use crate::stats::merge::read_stats;
use crate::stats::scan::{self, ScanOptions};

/// Rare-class threshold of the stats document built for a scan (it only
/// affects stats warnings, which weights does not repeat).
const RARE_BELOW: f64 = 0.01;

/// Where the counts come from.
#[derive(Debug, Clone)]
pub enum CountsFrom {
    /// Scan a dataset folder with a label map (detected when `None`).
    Scan {
        dir: PathBuf,
        labels: Option<String>,
        strict: bool,
    },
    /// A stats document written by `maskprep stats --json` or `merge`.
    From(PathBuf),
}

#[derive(Debug, Clone)]
pub struct WeightsConfig {
    pub counts: CountsFrom,
    pub options: Options,
    /// Output folder for `weights.json`, `weights.safetensors`, `README.md`.
    pub output: Option<PathBuf>,
    /// Also write `pos_weight.npy` and `weight.npy`.
    pub npy: bool,
    /// JSON on stdout instead of the table.
    pub json: bool,
    pub quiet: bool,
}

fn note(quiet: bool, msg: &str) {
    if !quiet {
        eprintln!("maskprep: {msg}");
    }
}

/// Runs the command; exit code 1 when masks were skipped.
pub fn run(cfg: &WeightsConfig) -> anyhow::Result<u8> {
    cfg.options.check()?;
    if let Some(out) = &cfg.output {
        check_output(out)?;
    }
    let (stats, from) = match &cfg.counts {
        CountsFrom::Scan {
            dir,
            labels,
            strict,
        } => {
            let doc = scan_doc(dir, labels.as_deref(), *strict, cfg.quiet)
                .with_context(|| format!("cannot compute weights for `{}`", dir.display()))?;
            (doc, None)
        }
        CountsFrom::From(path) => {
            let doc = read_stats(path)
                .with_context(|| format!("cannot compute weights from `{}`", path.display()))?;
            (doc, Some(path.display().to_string()))
        }
    };
    let context = match &from {
        Some(path) => format!("cannot compute weights from `{path}`"),
        None => format!("cannot compute weights for `{}`", stats.meta.dataset),
    };
    for b in &stats.files.bad {
        eprintln!("maskprep: skipped `{}`: {}", b.path, b.reason);
    }
    let doc = weights_doc(&stats, from, &cfg.options).context(context)?;
    for w in &doc.warnings {
        note(cfg.quiet, &format!("warning: {w}"));
    }
    if let Some(out) = &cfg.output {
        write_files(&doc, out, cfg.npy)?;
        note(
            cfg.quiet,
            &format!(
                "wrote `{}`, `{}` and `{}` in `{}`{}",
                doc::JSON_FILE,
                doc::SAFETENSORS_FILE,
                doc::README_FILE,
                out.display(),
                if cfg.npy { ", with `.npy` copies" } else { "" }
            ),
        );
    }
    let text = if cfg.json {
        note(cfg.quiet, &format!("verdict: {}", doc.verdict.reason));
        doc.to_json()
    } else {
        doc::render_table(&doc)
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(if doc.source.skipped.is_empty() { 0 } else { 1 })
}

/// Scans a dataset into a stats document (the same one `maskprep stats` makes).
fn scan_doc(
    dir: &Path,
    labels: Option<&str>,
    strict: bool,
    quiet: bool,
) -> anyhow::Result<StatsDoc> {
    let prep = prepare(dir, labels, Partition::WHOLE)?;
    if let Some(why) = &prep.why {
        note(quiet, &format!("labels: {why}"));
    }
    let opts = ScanOptions {
        strict,
        per_image: false,
        progress: !quiet && std::io::stderr().is_terminal(),
    };
    let scan = scan::scan(&prep.dataset, &prep.map, &prep.cache, &opts)?;
    let files = Files {
        masks_found: prep.dataset.items.len() as u64,
        ..Files::default()
    };
    let meta = Meta {
        dataset: dir.display().to_string(),
        partition: None,
        labels: prep.map.spec.clone(),
        labels_origin: prep.origin.clone(),
        rare_below: RARE_BELOW,
    };
    Ok(StatsDoc::new(meta, &scan.counts, files, &prep.map))
}

/// Refuses an output that is not a folder, or a folder whose `README.md`
/// maskprep did not write (it would be overwritten).
fn check_output(out: &Path) -> anyhow::Result<()> {
    let ext = out
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    if out.is_file() || matches!(ext.as_deref(), Some("json" | "safetensors" | "npy")) {
        bail!(
            "`-o {}` is a file name; expected a folder (it receives `{}`, `{}` and `{}`), e.g. `-o weights/`",
            out.display(),
            doc::JSON_FILE,
            doc::SAFETENSORS_FILE,
            doc::README_FILE
        );
    }
    let readme = out.join(doc::README_FILE);
    if readme.exists() {
        let text = std::fs::read_to_string(&readme).unwrap_or_default();
        if !text.starts_with(doc::README_MARKER) {
            bail!(
                "`{}` exists and was not written by `maskprep weights`; expected a new folder \
                 or one that `maskprep weights` wrote, so as not to overwrite it",
                readme.display()
            );
        }
    }
    Ok(())
}

/// Writes every file atomically, as one folder switch.
pub fn write_files(doc: &WeightsDoc, out: &Path, npy: bool) -> anyhow::Result<()> {
    doc.write_folder(out, npy)
}

/// The weights document of a stats document: the one way every stage
/// (`weights`, the shards manifest, pipelines) turns counts into weights.
pub fn weights_doc(
    stats: &StatsDoc,
    from: Option<String>,
    opts: &crate::weights::Options,
) -> anyhow::Result<WeightsDoc> {
    let input = Input::from_doc(stats)?;
    let weights = compute(&input, opts);
    let mut warnings = Vec::new();
    if stats.pixels.undeclared > 0 {
        warnings.push(format!(
            "{} undeclared pixels are left out of the counts; declare their codes in the label \
             map (see `maskprep stats`)",
            stats.pixels.undeclared
        ));
    }
    if !stats.files.bad.is_empty() {
        warnings.push(format!(
            "{} mask(s) could not be read and are left out of the counts",
            stats.files.bad.len()
        ));
    }
    Ok(WeightsDoc::new(Parts {
        source: Source {
            dataset: stats.meta.dataset.clone(),
            stats: from,
            labels: stats.meta.labels.clone(),
            labels_origin: stats.meta.labels_origin.clone(),
            masks_read: stats.files.masks_read,
            skipped: stats.files.bad.clone(),
        },
        input: &input,
        ignored: stats.pixels.ignored,
        undeclared: stats.pixels.undeclared,
        class_images: stats.classes.iter().map(|c| c.images).collect(),
        verdict: stats.verdict.clone(),
        weights: &weights,
        opts,
        warnings,
    }))
}

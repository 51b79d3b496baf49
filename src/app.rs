//! The command layer: each command's config, what it runs, and where its
//! output goes. Errors get context at each stage boundary (anyhow).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::dataset::prepare;
use crate::labels::LabelMap;
use crate::output::{Output, write_bytes};
use crate::source::Partition;
use crate::stats::doc::{self, Files, Meta, StatsDoc};
use crate::stats::merge::{merge_docs, read_stats};
use crate::stats::per_image;
use crate::stats::scan::{self, ScanOptions};

/// A command resolved from the command line.
#[derive(Debug)]
pub enum Command {
    Stats(StatsConfig),
    Labels(LabelsConfig),
    Merge(MergeConfig),
    Weights(crate::weights::run::WeightsConfig),
    Shards(crate::shards::Job),
    Report(crate::report::run::ReportConfig),
    Run {
        pipeline: PathBuf,
        partition: Option<String>,
        output: Option<PathBuf>,
        quiet: bool,
    },
    MergeRun {
        parts: PathBuf,
        output: PathBuf,
        pipeline: Option<PathBuf>,
        quiet: bool,
    },
    Score(crate::score::ScoreConfig),
    /// Arguments that parse but cannot be used.
    Invalid(String),
}

#[derive(Debug)]
pub struct StatsConfig {
    pub dir: PathBuf,
    pub labels: Option<String>,
    pub output: Output,
    pub per_image: Option<PathBuf>,
    pub rare_below: f64,
    pub partition: Option<Partition>,
    pub strict: bool,
    pub quiet: bool,
    /// Also write the HTML report into this folder.
    pub report: Option<PathBuf>,
}

#[derive(Debug)]
pub struct LabelsConfig {
    pub dir: PathBuf,
    pub labels: Option<String>,
    pub output: Option<PathBuf>,
    pub quiet: bool,
}

#[derive(Debug)]
pub struct MergeConfig {
    pub inputs: Vec<PathBuf>,
    pub output: Output,
}

/// Runs a command; returns the exit code.
pub fn execute(cmd: Command) -> anyhow::Result<u8> {
    match cmd {
        Command::Stats(c) => stats(&c),
        Command::Labels(c) => labels(&c),
        Command::Merge(c) => merge(&c),
        Command::Weights(c) => crate::weights::run::run(&c),
        Command::Shards(j) => crate::shards::execute(j),
        Command::Report(c) => crate::report::run::run(&c),
        Command::Run {
            pipeline,
            partition,
            output,
            quiet,
        } => {
            let part = partition
                .as_deref()
                .map(crate::pipeline::parse_partition)
                .transpose()?;
            crate::pipeline::run(&pipeline, part, output.as_deref(), quiet)
                .with_context(|| format!("cannot run pipeline `{}`", pipeline.display()))
        }
        Command::MergeRun {
            parts,
            output,
            pipeline,
            quiet,
        } => crate::pipeline::merge_run(&parts, &output, pipeline.as_deref(), quiet)
            .with_context(|| format!("cannot merge the runs in `{}`", parts.display())),
        Command::Score(c) => crate::score::command::run(&c),
        Command::Invalid(msg) => bail!(msg),
    }
}

/// Is this error a closed stdout (`maskprep stats | head`)? Not an error.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn note(quiet: bool, msg: &str) {
    if !quiet {
        eprintln!("maskprep: {msg}");
    }
}

fn stats(cfg: &StatsConfig) -> anyhow::Result<u8> {
    if let Some(out) = &cfg.report {
        crate::report::check_output(out)?;
        crate::source::refuse_output_inside(&cfg.dir, out)?;
    }
    let (doc, rows, map) = compute_stats(cfg)?;
    if let Some(path) = &cfg.per_image {
        per_image::write(path, &rows, map.classes())?;
    }
    report_problems(&doc, cfg.quiet);
    emit(&doc, &cfg.output)?;
    if let Some(out) = &cfg.report {
        crate::report::run::stats_report(out, &doc, Some(&rows), None)?;
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

/// Scans a dataset into its stats document, per-image rows (when
/// `per_image` or `report` is set) and label map; nothing is written.
pub fn compute_stats(
    cfg: &StatsConfig,
) -> anyhow::Result<(StatsDoc, Vec<scan::ImageRow>, LabelMap)> {
    let dir = cfg.dir.display();
    let part = cfg.partition.unwrap_or(Partition::WHOLE);
    let prep = prepare(&cfg.dir, cfg.labels.as_deref(), part)
        .with_context(|| format!("cannot compute stats for `{dir}`"))?;
    if let Some(why) = &prep.why {
        note(cfg.quiet, &format!("labels: {why}"));
    }
    let opts = ScanOptions {
        strict: cfg.strict,
        per_image: cfg.per_image.is_some() || cfg.report.is_some(),
        progress: !cfg.quiet && std::io::stderr().is_terminal(),
    };
    let scan = scan::scan(&prep.dataset, &prep.map, &prep.cache, &opts)
        .with_context(|| format!("cannot compute stats for `{dir}`"))?;
    let files = Files {
        masks_found: prep.dataset.items.len() as u64,
        masks_without_images: prep
            .dataset
            .masks_without_images()
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        images_without_masks: prep
            .dataset
            .images_without_masks
            .iter()
            .map(|(_, p)| p.display().to_string())
            .collect(),
        size_mismatches: scan.mismatches.clone(),
        ..Files::default()
    };
    let meta = Meta {
        dataset: cfg.dir.display().to_string(),
        partition: cfg.partition.filter(|p| p.count > 1),
        labels: prep.map.spec.clone(),
        labels_origin: prep.origin.clone(),
        rare_below: cfg.rare_below,
    };
    let doc = StatsDoc::new(meta, &scan.counts, files, &prep.map);
    Ok((doc, scan.rows, prep.map))
}

/// Lists skipped files and pairing problems on stderr.
pub fn report_problems(doc: &StatsDoc, quiet: bool) {
    for b in &doc.files.bad {
        eprintln!("maskprep: skipped `{}`: {}", b.path, b.reason);
    }
    if quiet {
        return;
    }
    let f = &doc.files;
    let pairing = f.masks_without_images.len() + f.images_without_masks.len();
    if pairing > 0 {
        eprintln!(
            "maskprep: warning: {} mask(s) without image, {} image(s) without mask (listed in the output)",
            f.masks_without_images.len(),
            f.images_without_masks.len()
        );
    }
    for z in &f.size_mismatches {
        eprintln!(
            "maskprep: warning: mask `{}` is {} but image `{}` is {}",
            z.mask, z.mask_size, z.image, z.image_size
        );
    }
}

/// Writes a stats document as JSON or a table, to stdout or a file.
pub fn emit(doc: &StatsDoc, out: &Output) -> anyhow::Result<()> {
    let text = if out.json {
        let mut s = serde_json::to_string_pretty(doc).context("cannot serialise stats")?;
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

fn labels(cfg: &LabelsConfig) -> anyhow::Result<u8> {
    let prep = prepare(&cfg.dir, cfg.labels.as_deref(), Partition::WHOLE)
        .with_context(|| format!("cannot detect the label map of `{}`", cfg.dir.display()))?;
    if let Some(why) = &prep.why {
        note(cfg.quiet, &format!("labels: {why}"));
    }
    let text = prep.map.to_toml();
    match &cfg.output {
        Some(p) => {
            write_bytes(p, text.as_bytes())?;
            note(cfg.quiet, &format!("wrote `{}`", p.display()));
        }
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    Ok(0)
}

fn merge(cfg: &MergeConfig) -> anyhow::Result<u8> {
    let docs = cfg
        .inputs
        .iter()
        .map(|p| read_stats(p).map(|d| (p.clone(), d)))
        .collect::<anyhow::Result<Vec<_>>>()
        .context("cannot merge stats")?;
    let doc = merge_docs(&docs).context("cannot merge stats")?;
    emit(&doc, &cfg.output)?;
    Ok(if doc.complete() { 0 } else { 1 })
}

//! The command layer: each command's config, what it runs, and where its
//! output goes. Errors get context at each stage boundary (anyhow).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};

use crate::decode::{self, MaskFormat, MaskHist, Scratch};
use crate::labels::detect::{self, Detected};
use crate::labels::{LabelMap, LabelSpec};
use crate::output::write_bytes;
use crate::source::{self, Dataset, Partition};
use crate::stats::doc::{self, Files, Meta, StatsDoc};
use crate::stats::scan::{self, ScanOptions};
use crate::stats::{Counts, per_image};

/// Masks decoded to detect a label map (their histograms are reused).
const DETECT_SAMPLE: usize = 16;

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

/// Where and how a document is written.
#[derive(Debug, Clone)]
pub struct Output {
    pub json: bool,
    /// `None`: stdout.
    pub path: Option<PathBuf>,
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

/// A dataset with its label map, ready to scan.
pub struct Prepared {
    pub dataset: Dataset,
    pub map: LabelMap,
    pub origin: String,
    /// Why the map was chosen, when it was detected.
    pub why: Option<String>,
    /// Histograms decoded for detection, reused by the scan.
    pub cache: BTreeMap<PathBuf, MaskHist>,
}

/// Finds the masks and resolves the label map (loaded, or detected from the
/// whole dataset so every partition detects the same map).
pub fn prepare(dir: &Path, labels: Option<&str>, part: Partition) -> anyhow::Result<Prepared> {
    let whole = source::discover(dir)?;
    let (map, origin, why, cache) = match labels {
        Some(arg) => {
            let map = LabelMap::load(arg)?;
            (map, arg.to_string(), None, BTreeMap::new())
        }
        None => {
            let (det, cache) = detect_map(&whole)?;
            let map = LabelMap::compile(det.spec, &det.origin)?;
            (map, det.origin, Some(det.why), cache)
        }
    };
    let dataset = whole.partition(part);
    let cache = cache
        .into_iter()
        .filter(|(p, _)| dataset.items.iter().any(|i| &i.mask == p))
        .collect();
    Ok(Prepared {
        dataset,
        map,
        origin,
        why,
        cache,
    })
}

fn detect_map(ds: &Dataset) -> anyhow::Result<(Detected, BTreeMap<PathBuf, MaskHist>)> {
    let n = ds.items.len();
    let take = n.min(DETECT_SAMPLE);
    let mut picks: Vec<usize> = (0..take).map(|k| k * n / take).collect();
    picks.dedup();
    let mut scratch = Scratch::default();
    let mut sample = Vec::new();
    let mut palettes = Vec::new();
    for i in picks {
        let path = &ds.items[i].mask;
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        let Ok(hist) = decode::decode_hist(&bytes, &mut scratch) else {
            continue;
        };
        if hist.format == MaskFormat::Indexed {
            palettes.push(decode::palette(&bytes));
        }
        sample.push((path.clone(), hist));
    }
    let masks: Vec<PathBuf> = ds.items.iter().map(|i| i.mask.clone()).collect();
    let det = detect::detect(&ds.root, &masks, &sample, &palettes)?;
    Ok((det, sample.into_iter().collect()))
}

fn note(quiet: bool, msg: &str) {
    if !quiet {
        eprintln!("maskprep: {msg}");
    }
}

fn stats(cfg: &StatsConfig) -> anyhow::Result<u8> {
    if let Some(out) = &cfg.report {
        crate::report::check_output(out)?;
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

/// Reads a stats document, checking that this version wrote its format.
pub fn read_stats(path: &Path) -> anyhow::Result<StatsDoc> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read stats `{}`", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text).with_context(|| {
        format!(
            "`{}` is not JSON; expected `maskprep stats --json` output",
            path.display()
        )
    })?;
    let format = value.get("format").and_then(|f| f.as_str()).unwrap_or("");
    if format != doc::FORMAT {
        bail!(
            "`{}` has format `{format}`; expected `{}` (written by `maskprep stats --json`, version {})",
            path.display(),
            doc::FORMAT,
            env!("CARGO_PKG_VERSION")
        );
    }
    let doc: StatsDoc = serde_json::from_value(value)
        .with_context(|| format!("`{}` is not a complete stats document", path.display()))?;
    let c = doc.classes.len();
    if doc.meta.labels.classes.len() != c
        || doc.cooccurrence.len() != c
        || doc.cooccurrence.iter().any(|r| r.len() != c)
    {
        bail!(
            "`{}` is inconsistent: {} classes in `labels`, {c} in `classes`; expected the same class list everywhere",
            path.display(),
            doc.meta.labels.classes.len()
        );
    }
    Ok(doc)
}

/// Sums stats documents; they must share the label map and settings.
pub fn merge_docs(docs: &[(PathBuf, StatsDoc)]) -> anyhow::Result<StatsDoc> {
    let (first_path, first) = docs.first().ok_or_else(|| anyhow!("nothing to merge"))?;
    let spec: &LabelSpec = &first.meta.labels;
    for (p, d) in &docs[1..] {
        if &d.meta.labels != spec {
            bail!(
                "`{}` and `{}` use different label maps (classes {:?} vs {:?}); expected the same map",
                first_path.display(),
                p.display(),
                spec.classes,
                d.meta.labels.classes
            );
        }
        if d.meta.rare_below != first.meta.rare_below {
            bail!(
                "`{}` and `{}` use different `--rare-below`; expected the same",
                first_path.display(),
                p.display()
            );
        }
    }
    let parts: Vec<Option<Partition>> = docs.iter().map(|(_, d)| d.meta.partition).collect();
    if parts.iter().any(Option::is_some) {
        let n = parts.iter().flatten().map(|p| p.count).max().unwrap_or(1);
        let mut seen = vec![false; n];
        for ((path, _), p) in docs.iter().zip(&parts) {
            let p = p.ok_or_else(|| {
                anyhow!(
                    "`{}` is a whole run, the others are partitions; expected only partitions",
                    path.display()
                )
            })?;
            if p.count != n {
                bail!(
                    "`{}` is partition {p}; expected a partition of {n}",
                    path.display()
                );
            }
            if std::mem::replace(&mut seen[p.index - 1], true) {
                bail!(
                    "partition {p} is given twice (again in `{}`)",
                    path.display()
                );
            }
        }
        let missing: Vec<String> = (0..n)
            .filter(|&i| !seen[i])
            .map(|i| format!("{}/{n}", i + 1))
            .collect();
        if !missing.is_empty() {
            bail!(
                "partitions {} are missing; expected all {n}",
                missing.join(", ")
            );
        }
    }
    let mut counts = Counts::new(spec.classes.len());
    let mut files = Files::default();
    let mut datasets: Vec<String> = Vec::new();
    for (_, d) in docs {
        counts += d.counts();
        files.masks_found += d.files.masks_found;
        files
            .masks_without_images
            .extend(d.files.masks_without_images.iter().cloned());
        files
            .images_without_masks
            .extend(d.files.images_without_masks.iter().cloned());
        files
            .size_mismatches
            .extend(d.files.size_mismatches.iter().cloned());
        if !datasets.contains(&d.meta.dataset) {
            datasets.push(d.meta.dataset.clone());
        }
    }
    files.masks_without_images.sort();
    files.images_without_masks.sort();
    files.size_mismatches.sort();
    let map = LabelMap::compile(spec.clone(), &first.meta.labels_origin)?;
    let meta = Meta {
        dataset: datasets.join(" + "),
        partition: None,
        labels: spec.clone(),
        labels_origin: first.meta.labels_origin.clone(),
        rare_below: first.meta.rare_below,
    };
    Ok(StatsDoc::new(meta, &counts, files, &map))
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

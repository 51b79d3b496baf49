//! Pipelines: `maskprep run pipelines/NAME.toml` runs the stages a TOML file
//! names (stats, weights, shards) in one pass over the masks, and
//! `--partition I/N` + `maskprep merge-run` spread it over a cluster.
//!
//! One pass: with a `[shards]` stage, the shard writer decodes each mask once
//! into its planes *and* its histogram, and the stats (hence the weights) are
//! the sum of its exact per-split counts; without it, one stats scan feeds
//! the weights. Partial runs write `OUT/parts/I-of-N/`; merging sums the
//! counts exactly, so stats and weights are byte-identical to a single run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, bail};
use serde::{Deserialize, Deserializer};

use crate::app::{StatsConfig, compute_stats, emit};
use crate::labels::LabelMap;
use crate::output::Output;
use crate::shards::{self, ByteSize, Dims, Format, Geometry, ShardsConfig, SplitArg};
use crate::source::Partition;
use crate::stats::Counts;
use crate::stats::doc::{Files, StatsDoc};
use crate::stats::merge::{merge_docs, read_stats};
use crate::stats::per_image;
use crate::weights::{self, Scheme};

/// File names inside the output folder.
pub const STATS_FILE: &str = "stats.json";
pub const WEIGHTS_DIR: &str = "weights";
pub const SHARDS_DIR: &str = "shards";
pub const PARTS_DIR: &str = "parts";
pub const SCORE_FILE: &str = "score.json";
pub const REPORT_DIR: &str = "report";
pub const SCORE_REPORT_DIR: &str = "score-report";
/// The pipeline file copied into each part folder.
pub const PIPELINE_FILE: &str = "pipeline.toml";

/// A pipeline file. Every table and key is checked: an unknown one is an
/// error naming its line.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    pub source: SourceStage,
    pub output: OutputStage,
    pub stats: Option<StatsStage>,
    pub weights: Option<WeightsStage>,
    pub shards: Option<ShardsStage>,
    pub score: Option<ScoreStage>,
    pub report: Option<ReportStage>,
}

/// `[report]`: HTML reports of the stages run: `report/` for the stats
/// and weights, `score-report/` for the score stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportStage {}

/// `[score]`: predictions against truth masks, in a pass of its own (truth
/// and prediction decoded together, once each).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreStage {
    /// Truth masks (default: the source's masks).
    pub truth: Option<PathBuf>,
    pub pred: PathBuf,
    pub pred_kind: Option<crate::score::PredKind>,
    pub threshold: Option<f32>,
    #[serde(default)]
    pub argmax: bool,
    pub tensor: Option<String>,
    #[serde(default)]
    pub empty_as: crate::score::EmptyAs,
    #[serde(default)]
    pub backend: BackendChoice,
    /// Per-image table (`.csv` or `.parquet`) in the output folder.
    pub per_image: Option<String>,
    #[serde(default)]
    pub strict: bool,
}

/// `backend = "cpu" | "gpu" | "auto"`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendChoice {
    #[default]
    Cpu,
    Gpu,
    Auto,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceStage {
    /// Dataset root (or folder of masks), relative to the working directory.
    pub dir: PathBuf,
    /// Label map file or preset; detected when omitted.
    pub labels: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputStage {
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsStage {
    #[serde(default = "default_rare")]
    pub rare_below: f64,
    /// Per-image table (`.csv` or `.parquet`) in the output folder.
    pub per_image: Option<String>,
    #[serde(default)]
    pub strict: bool,
}

fn default_rare() -> f64 {
    0.01
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightsStage {
    #[serde(default, deserialize_with = "opt_from_str")]
    pub scheme: Option<Scheme>,
    pub enet_c: Option<f64>,
    pub beta: Option<f64>,
    pub max_weight: Option<f64>,
    #[serde(default)]
    pub npy: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardsStage {
    #[serde(default, deserialize_with = "opt_from_str")]
    pub format: Option<Format>,
    #[serde(default, deserialize_with = "opt_from_str")]
    pub shard_size: Option<ByteSize>,
    pub samples_per_shard: Option<usize>,
    #[serde(default, deserialize_with = "opt_from_str")]
    pub size: Option<Dims>,
    #[serde(default, deserialize_with = "opt_from_str")]
    pub tile: Option<Dims>,
    /// Held-out splits: `{ val = 0.1 }`; `train` gets the rest.
    #[serde(default)]
    pub split: BTreeMap<String, f64>,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "yes")]
    pub stratify: bool,
    #[serde(default)]
    pub shuffle: bool,
    #[serde(default)]
    pub strict: bool,
}

fn yes() -> bool {
    true
}

/// Reads a string field through the type's `FromStr` (its message names
/// what was expected; toml adds the line).
fn opt_from_str<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: std::fmt::Display,
{
    let s = String::deserialize(d)?;
    T::from_str(&s).map(Some).map_err(serde::de::Error::custom)
}

/// Parses and checks a pipeline file; nothing is run or written.
pub fn load(path: &Path) -> anyhow::Result<Pipeline> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read pipeline `{}`", path.display()))?;
    let p: Pipeline = toml::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "invalid pipeline `{}`: {}",
            path.display(),
            e.to_string().trim_end()
        )
    })?;
    let bad = |msg: String| anyhow::anyhow!("invalid pipeline `{}`: {msg}", path.display());
    if p.stats.is_none() && p.weights.is_none() && p.shards.is_none() && p.score.is_none() {
        return Err(bad(
            "no stage; expected at least one of [stats], [weights], [shards], [score] \
             (and [report] to render them)"
                .into(),
        ));
    }
    if let Some(sc) = &p.score
        && sc.threshold.is_some_and(|t| !t.is_finite())
    {
        return Err(bad("[score] threshold: expected a finite number".into()));
    }
    if let Some(s) = &p.stats
        && !(0.0..=1.0).contains(&s.rare_below)
    {
        return Err(bad(format!(
            "[stats] rare_below = {}: expected a fraction in 0..=1",
            s.rare_below
        )));
    }
    if p.shards.is_some() && p.stats.as_ref().is_some_and(|s| s.per_image.is_some()) {
        return Err(bad(
            "[stats] per_image needs a stats scan, but with [shards] the counts come from the \
             shard writer; expected no per_image with [shards] (use `maskprep stats --per-image`)"
                .into(),
        ));
    }
    if let Some(sh) = &p.shards {
        for (name, f) in &sh.split {
            SplitArg::from_str(&format!("{name}={f}"))
                .map_err(|e| bad(format!("[shards] split: {e}")))?;
        }
        if sh.size.is_some() && sh.tile.is_some() {
            return Err(bad(
                "[shards] has both `size` and `tile`; expected one".into()
            ));
        }
    }
    if let Some(w) = &p.weights {
        weight_options(w)
            .check()
            .map_err(|e| bad(format!("[weights]: {e}")))?;
    }
    Ok(p)
}

fn weight_options(w: &WeightsStage) -> weights::Options {
    let d = weights::Options::default();
    weights::Options {
        scheme: w.scheme.unwrap_or(d.scheme),
        enet_c: w.enet_c.unwrap_or(d.enet_c),
        beta: w.beta.unwrap_or(d.beta),
        max_weight: w.max_weight.or(d.max_weight),
    }
}

fn rare_below(p: &Pipeline) -> f64 {
    p.stats.as_ref().map_or(default_rare(), |s| s.rare_below)
}

/// Runs a pipeline (or one partition of it); returns the exit code.
pub fn run(
    path: &Path,
    partition: Option<Partition>,
    output: Option<&Path>,
    quiet: bool,
) -> anyhow::Result<u8> {
    let mut p = load(path)?;
    if let Some(o) = output {
        p.output.dir = o.to_path_buf();
    }
    crate::source::refuse_output_inside(&p.source.dir, &p.output.dir)?;
    let part = partition.filter(|p| p.count > 1);
    if let Some(pt) = part {
        // The part carries its pipeline, so `merge-run` applies the same stages.
        let dir = p
            .output
            .dir
            .join(PARTS_DIR)
            .join(format!("{}-of-{}", pt.index, pt.count));
        let text = std::fs::read(path)
            .with_context(|| format!("cannot read pipeline `{}`", path.display()))?;
        crate::output::write_bytes(&dir.join(PIPELINE_FILE), &text)?;
    }
    let out = match part {
        Some(pt) => p
            .output
            .dir
            .join(PARTS_DIR)
            .join(format!("{}-of-{}", pt.index, pt.count)),
        None => p.output.dir.clone(),
    };
    let mut code = 0;
    if let Some(sc) = &p.score {
        if part.is_some() {
            bail!("[score] does not take `--partition`; run the score stage without it");
        }
        code = code.max(score(&p, sc, &out, quiet)?);
    }
    let counts_stages = p.stats.is_some() || p.weights.is_some() || p.shards.is_some();
    if !counts_stages {
        return Ok(code);
    }
    let mut rows = None;
    let stats = match &p.shards {
        Some(sh) => stats_from_shards(&p, sh, &out, part, quiet)?,
        None => {
            let cfg = StatsConfig {
                dir: p.source.dir.clone(),
                labels: p.source.labels.clone(),
                output: Output {
                    json: true,
                    path: None,
                },
                per_image: p
                    .stats
                    .as_ref()
                    .and_then(|s| s.per_image.as_ref())
                    .map(|f| out.join(f)),
                rare_below: rare_below(&p),
                partition: part,
                strict: p.stats.as_ref().is_some_and(|s| s.strict),
                quiet,
                report: p.report.as_ref().map(|_| out.join(REPORT_DIR)),
            };
            let (doc, scanned, map) = compute_stats(&cfg)?;
            if let Some(path) = &cfg.per_image {
                per_image::write(path, &scanned, map.classes())?;
            }
            rows = Some(scanned);
            doc
        }
    };
    crate::app::report_problems(&stats, quiet);
    finish(&p, &stats, rows.as_deref(), &out, part.is_none(), quiet)?;
    Ok(code.max(if stats.complete() { 0 } else { 1 }))
}

/// Runs the score stage into `OUT/score.json`.
fn score(p: &Pipeline, sc: &ScoreStage, out: &Path, quiet: bool) -> anyhow::Result<u8> {
    use crate::score::{Backend, ScoreConfig};
    let cfg = ScoreConfig {
        truth: sc.truth.clone().unwrap_or_else(|| p.source.dir.clone()),
        pred: sc.pred.clone(),
        labels: p.source.labels.clone(),
        pred_kind: sc.pred_kind,
        threshold: sc.threshold,
        argmax: sc.argmax,
        tensor: sc.tensor.clone(),
        empty_as: sc.empty_as,
        backend: match sc.backend {
            BackendChoice::Cpu => Backend::Cpu,
            BackendChoice::Gpu => Backend::Gpu,
            BackendChoice::Auto => Backend::Auto,
        },
        output: Output {
            json: true,
            path: Some(out.join(SCORE_FILE)),
        },
        per_image: sc.per_image.as_ref().map(|f| out.join(f)),
        strict: sc.strict,
        quiet,
        report: p.report.as_ref().map(|_| out.join(SCORE_REPORT_DIR)),
        gpu: Default::default(),
    };
    let code = crate::score::command::run(&cfg).context("cannot run the score stage")?;
    note(
        quiet,
        &format!("wrote `{}`", out.join(SCORE_FILE).display()),
    );
    Ok(code)
}

/// Writes stats (always: parts need them to merge) and, for a whole run,
/// the weights and the report.
fn finish(
    p: &Pipeline,
    stats: &StatsDoc,
    rows: Option<&[crate::stats::scan::ImageRow]>,
    out: &Path,
    whole: bool,
    quiet: bool,
) -> anyhow::Result<()> {
    let stats_path = out.join(STATS_FILE);
    emit(
        stats,
        &Output {
            json: true,
            path: Some(stats_path.clone()),
        },
    )?;
    note(quiet, &format!("wrote `{}`", stats_path.display()));
    if !whole {
        return Ok(());
    }
    if let Some(w) = &p.weights {
        let doc = weights::run::weights_doc(stats, None, &weight_options(w))
            .context("cannot compute the pipeline's weights")?;
        let dir = out.join(WEIGHTS_DIR);
        weights::run::write_files(&doc, &dir, w.npy)?;
        note(quiet, &format!("wrote weights in `{}`", dir.display()));
    }
    if p.report.is_some() {
        let dir = out.join(REPORT_DIR);
        crate::report::run::stats_report(&dir, stats, rows, None)?;
        note(quiet, &format!("wrote the report `{}`", dir.display()));
    }
    if !quiet {
        eprintln!("maskprep: verdict: {}", stats.verdict.reason);
    }
    Ok(())
}

fn note(quiet: bool, msg: &str) {
    if !quiet {
        eprintln!("maskprep: {msg}");
    }
}

/// Writes the shards and returns the stats of what they hold, from the
/// shard writer's own exact counts (each mask decoded once).
fn stats_from_shards(
    p: &Pipeline,
    sh: &ShardsStage,
    out: &Path,
    part: Option<Partition>,
    quiet: bool,
) -> anyhow::Result<StatsDoc> {
    let geometry = match (sh.size, sh.tile) {
        (Some(d), _) => Geometry::Resize(d),
        (None, Some(d)) => Geometry::Tile(d),
        (None, None) => Geometry::Native,
    };
    let cfg = ShardsConfig {
        dir: p.source.dir.clone(),
        labels: p.source.labels.clone(),
        out: out.join(SHARDS_DIR),
        format: sh.format.unwrap_or(Format::Webdataset),
        shard_bytes: sh.shard_size.map(|s| s.0),
        shard_samples: sh.samples_per_shard,
        geometry,
        splits: sh
            .split
            .iter()
            .map(|(name, &fraction)| SplitArg {
                name: name.clone(),
                fraction,
            })
            .collect(),
        seed: sh.seed,
        stratify: sh.stratify,
        shuffle: sh.shuffle,
        strict: sh.strict,
        quiet,
        command: std::env::args().collect(),
        partition: part.unwrap_or(Partition::WHOLE),
    };
    let written = shards::write::run(&cfg).with_context(|| {
        format!(
            "cannot write shards of `{}` to `{}`",
            cfg.dir.display(),
            cfg.out.display()
        )
    })?;
    let m = &written.manifest;
    note(
        quiet,
        &format!(
            "wrote {} shards in `{}`",
            m.splits.values().map(|s| s.shards.len()).sum::<usize>(),
            cfg.out.display()
        ),
    );
    let map = LabelMap::compile(m.labels.clone(), &m.labels_origin)?;
    let mut counts = Counts::new(map.num_classes());
    let mut found = 0;
    for s in m.splits.values() {
        counts += s.stats.counts();
        found += s.stats.files.masks_found;
    }
    counts.bad = m.skipped.clone();
    let meta = crate::stats::doc::Meta {
        dataset: p.source.dir.display().to_string(),
        partition: part,
        labels: m.labels.clone(),
        labels_origin: m.labels_origin.clone(),
        rare_below: rare_below(p),
    };
    let files = Files {
        masks_found: found,
        ..Files::default()
    };
    Ok(StatsDoc::new(meta, &counts, files, &map))
}

/// The partition `auto` means: from a Slurm job array or a Kubernetes
/// Indexed Job, read from the environment.
pub fn auto_partition(count: Option<usize>) -> anyhow::Result<Partition> {
    let var = |k: &str| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
    };
    if let Some(id) = var("SLURM_ARRAY_TASK_ID") {
        let min = var("SLURM_ARRAY_TASK_MIN").unwrap_or(0);
        let n = count.or_else(|| var("SLURM_ARRAY_TASK_COUNT")).context(
            "`--partition auto` in a Slurm array needs SLURM_ARRAY_TASK_COUNT (or `auto/N`)",
        )?;
        return format!("{}/{n}", id + 1 - min)
            .parse()
            .map_err(anyhow::Error::msg);
    }
    if let Some(i) = var("JOB_COMPLETION_INDEX") {
        let n = count.context(
            "`--partition auto` in a Kubernetes Indexed Job needs the count: `--partition auto/N` (N = completions)",
        )?;
        return format!("{}/{n}", i + 1).parse().map_err(anyhow::Error::msg);
    }
    bail!(
        "`--partition auto` found neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX; expected to run in a Slurm job array or a Kubernetes Indexed Job, or give I/N"
    )
}

/// Parses `--partition`: `I/N`, `auto` or `auto/N`.
pub fn parse_partition(arg: &str) -> anyhow::Result<Partition> {
    match arg.strip_prefix("auto") {
        Some("") => auto_partition(None),
        Some(rest) => {
            let n = rest
                .strip_prefix('/')
                .and_then(|n| n.parse::<usize>().ok())
                .with_context(|| {
                    format!("`{arg}` is not a partition; expected I/N, auto or auto/N")
                })?;
            auto_partition(Some(n))
        }
        None => arg.parse().map_err(anyhow::Error::msg),
    }
}

/// `maskprep merge-run PARTS -o OUT`: combines partition runs of a pipeline.
pub fn merge_run(
    parts_dir: &Path,
    out: &Path,
    pipeline: Option<&Path>,
    quiet: bool,
) -> anyhow::Result<u8> {
    let mut parts: Vec<(Partition, PathBuf)> = Vec::new();
    let entries = std::fs::read_dir(parts_dir)
        .with_context(|| format!("cannot list parts in `{}`", parts_dir.display()))?;
    for e in entries {
        let path = e?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(part) = name
            .split_once("-of-")
            .and_then(|(i, n)| format!("{i}/{n}").parse::<Partition>().ok())
        {
            parts.push((part, path));
        }
    }
    parts.sort_by_key(|(p, _)| p.index);
    if parts.is_empty() {
        bail!(
            "no parts (`I-of-N` folders) in `{}`; expected the `parts/` folder of `maskprep run --partition` runs",
            parts_dir.display()
        );
    }
    let docs = parts
        .iter()
        .map(|(_, d)| {
            let p = d.join(STATS_FILE);
            read_stats(&p).map(|doc| (p, doc))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let stats = merge_docs(&docs).context("cannot merge the parts' stats")?;
    let shard_parts: Vec<PathBuf> = parts
        .iter()
        .map(|(_, d)| d.join(SHARDS_DIR))
        .filter(|d| d.join(shards::INDEX).is_file())
        .collect();
    if !shard_parts.is_empty() {
        if shard_parts.len() != parts.len() {
            bail!("only some parts have shards; expected every part to have run the same stages");
        }
        let m = shards::merge::merge_parts(
            &shard_parts,
            &out.join(SHARDS_DIR),
            std::env::args().collect(),
        )?;
        note(
            quiet,
            &format!(
                "merged {} shards into `{}`",
                m.splits.values().map(|s| s.shards.len()).sum::<usize>(),
                out.join(SHARDS_DIR).display()
            ),
        );
    }
    let first_copy = parts[0].1.join(PIPELINE_FILE);
    let p = match pipeline {
        Some(path) => Some(load(path)?),
        None if first_copy.is_file() => Some(load(&first_copy)?),
        None => None,
    };
    let stats_path = out.join(STATS_FILE);
    emit(
        &stats,
        &Output {
            json: true,
            path: Some(stats_path.clone()),
        },
    )?;
    note(quiet, &format!("wrote `{}`", stats_path.display()));
    if p.as_ref().is_some_and(|p| p.report.is_some()) {
        let dir = out.join(REPORT_DIR);
        crate::report::run::stats_report(&dir, &stats, None, None)?;
        note(quiet, &format!("wrote the report `{}`", dir.display()));
    }
    if let Some(w) = p.as_ref().and_then(|p| p.weights.as_ref()) {
        let doc = weights::run::weights_doc(&stats, None, &weight_options(w))?;
        weights::run::write_files(&doc, &out.join(WEIGHTS_DIR), w.npy)?;
        note(
            quiet,
            &format!("wrote weights in `{}`", out.join(WEIGHTS_DIR).display()),
        );
    }
    Ok(if stats.complete() { 0 } else { 1 })
}

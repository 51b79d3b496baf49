//! What each command is asked to do, resolved from its flags: one config
//! per command ([`Command`]). No clap type reaches past `cli`.

use std::path::PathBuf;

use crate::dataset::ExportOptions;
use crate::output::Output;
use crate::score::collect::SweepLevels;
use crate::score::{Backend, EmptyAs, GpuOptions, PredKind};
use crate::shards::ShardsConfig;
use crate::source::Partition;
use crate::weights::Options as WeightOptions;

/// A command resolved from the command line.
#[derive(Debug)]
pub enum Command {
    Stats(StatsConfig),
    Labels(LabelsConfig),
    Merge(MergeConfig),
    Weights(WeightsConfig),
    Shards(ShardsJob),
    Report(ReportConfig),
    Run(RunConfig),
    MergeRun(MergeRunConfig),
    Score(ScoreConfig),
    Check(CheckConfig),
}

#[derive(Debug)]
pub struct StatsConfig {
    pub dir: PathBuf,
    pub labels: Option<String>,
    pub exports: ExportOptions,
    pub output: Output,
    pub per_image: Option<PathBuf>,
    pub rare_below: f64,
    pub partition: Option<Partition>,
    pub strict: bool,
    pub quiet: bool,
    /// Also write the HTML report into this folder.
    pub report: Option<PathBuf>,
}

/// `maskprep check`, resolved from the command line.
#[derive(Debug)]
pub struct CheckConfig {
    /// The dataset; with `splits`, the first split's folder.
    pub dir: PathBuf,
    /// `--split name=DIR`, in the order given.
    pub splits: Vec<(String, PathBuf)>,
    pub labels: Option<String>,
    pub exports: ExportOptions,
    pub options: crate::check::Options,
    /// Write per-image sampling weights here (and `FILE.json`).
    pub sampling: Option<PathBuf>,
    pub output: Output,
    /// Exit 1 on a leak or a missing class.
    pub strict: bool,
    pub quiet: bool,
    pub report: Option<PathBuf>,
}

#[derive(Debug)]
pub struct LabelsConfig {
    pub dir: PathBuf,
    pub labels: Option<String>,
    pub exports: ExportOptions,
    pub output: Option<PathBuf>,
    pub quiet: bool,
}

#[derive(Debug)]
pub struct MergeConfig {
    pub inputs: Vec<PathBuf>,
    pub output: Output,
}

/// Where the counts come from.
#[derive(Debug, Clone)]
pub enum CountsFrom {
    /// Scan a dataset folder with a label map (detected when `None`).
    Scan {
        dir: PathBuf,
        labels: Option<String>,
        exports: ExportOptions,
        strict: bool,
    },
    /// A stats document written by `maskprep stats --json` or `merge`.
    From(PathBuf),
}

#[derive(Debug, Clone)]
pub struct WeightsConfig {
    pub counts: CountsFrom,
    pub options: WeightOptions,
    /// Output folder for `weights.json`, `weights.safetensors`, `README.md`.
    pub output: Option<PathBuf>,
    /// Also write `pos_weight.npy` and `weight.npy`.
    pub npy: bool,
    /// JSON on stdout instead of the table.
    pub json: bool,
    pub quiet: bool,
}

/// What the report is made from.
#[derive(Debug, Clone)]
pub enum ReportInput {
    /// Scan a dataset (label map detected when `None`).
    Scan {
        dir: PathBuf,
        labels: Option<String>,
        exports: ExportOptions,
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

/// `maskprep score`, resolved from the command line.
#[derive(Debug)]
pub struct ScoreConfig {
    pub truth: PathBuf,
    pub pred: PathBuf,
    pub labels: Option<String>,
    pub exports: ExportOptions,
    /// `None`: from the files (PNG: mask; `.npy`/`.safetensors`: logits).
    pub pred_kind: Option<PredKind>,
    pub threshold: Option<f32>,
    pub argmax: bool,
    /// Tensor name in `.safetensors` files holding several.
    pub tensor: Option<String>,
    pub empty_as: EmptyAs,
    pub backend: Backend,
    pub gpu: GpuOptions,
    pub output: Output,
    pub per_image: Option<PathBuf>,
    pub strict: bool,
    pub quiet: bool,
    /// Also write the HTML report into this folder.
    pub report: Option<PathBuf>,
    /// Sweep thresholds (float predictions).
    pub sweep: Option<SweepConfig>,
    /// Score one piece of the pairs (`None`: all).
    pub partition: Option<Partition>,
}

/// `score --sweep`: which probability levels, and where the thresholds go.
#[derive(Debug, Clone)]
pub struct SweepConfig {
    /// `--thresholds`, or `--sweep-bins`.
    pub levels: SweepLevels,
    /// `--sweep-out DIR`: the folder for `thresholds.json` and
    /// `thresholds.safetensors`; `None`: named after `-o FILE` beside it
    /// (see `score::sweep::thresholds_files`).
    pub out: Option<PathBuf>,
}

/// `maskprep shards verify DIR`.
#[derive(Debug, Clone)]
pub struct VerifyConfig {
    pub dir: PathBuf,
    pub quiet: bool,
}

/// A shards command.
#[derive(Debug, Clone)]
pub enum ShardsJob {
    Write(ShardsConfig),
    Verify(VerifyConfig),
}

/// `maskprep run PIPELINE.toml`.
#[derive(Debug)]
pub struct RunConfig {
    pub pipeline: PathBuf,
    /// `None` or `1/1`: the whole run.
    pub partition: Option<Partition>,
    /// Replaces the pipeline's `[output] dir`.
    pub output: Option<PathBuf>,
    pub quiet: bool,
}

/// `maskprep merge-run PARTS -o OUT`.
#[derive(Debug)]
pub struct MergeRunConfig {
    pub parts: PathBuf,
    pub output: PathBuf,
    pub pipeline: Option<PathBuf>,
    pub quiet: bool,
}

//! From flags to a command: every rule a combination of flags must meet,
//! each refused with its own [`UsageError`] (exit code 2, the message
//! naming the flag and what was expected).

use std::path::PathBuf;

use super::config::{
    CheckConfig, Command, CountsFrom, LabelsConfig, MergeConfig, MergeRunConfig, ReportConfig,
    ReportInput, RunConfig, ScoreConfig, ShardsJob, StatsConfig, SweepConfig, VerifyConfig,
    WeightsConfig,
};
use super::flags::{
    CheckArgs, Cli, Cmd, ReportArgs, ScoreArgs, ShardsArgs, ShardsCmd, StatsArgs, WeightsArgs,
};
use super::partition::PartitionArg;
use crate::output::Output;
use crate::score::GpuOptions;
use crate::score::collect::SweepLevels;
use crate::shards::{self, ShardsConfig};
use crate::source::Partition;
use crate::stats::RARE_BELOW;
use crate::weights::Options as WeightOptions;

/// Flags that parse but cannot be used together or as given.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("`--rare-below {0}` is not a fraction; expected a number in 0..=1")]
    RareBelow(f64),
    #[error(
        "`--threshold {0}` is not a finite number; expected e.g. 0 for logits or 0.5 for probabilities"
    )]
    Threshold(f32),
    #[error("`--sweep` thresholds each class on its own; it does not combine with `--argmax`")]
    SweepWithArgmax,
    /// `--partition auto` outside a job array, or without its count (the
    /// reason, whole).
    #[error("{0}")]
    Partition(String),
    #[error("`--connectivity {0}`: expected 4 or 8")]
    Connectivity(u8),
    #[error("split `{0}` is given twice; expected each split once")]
    SplitTwice(String),
}

impl Cli {
    /// Resolves the arguments into the command to run.
    pub fn into_command(self) -> Result<Command, UsageError> {
        let quiet = self.quiet;
        Ok(match self.command {
            Cmd::Stats(a) => Command::Stats(stats_config(a, quiet)?),
            Cmd::Labels(a) => Command::Labels(LabelsConfig {
                exports: (&a.source.exports).into(),
                dir: a.source.dir,
                labels: a.source.labels,
                output: a.output,
                quiet,
            }),
            Cmd::Merge(a) => Command::Merge(MergeConfig {
                inputs: a.inputs,
                output: output(a.json, a.output),
            }),
            Cmd::Weights(a) => Command::Weights(weights_config(a, quiet)),
            Cmd::Shards(a) => Command::Shards(shards_job(a, quiet)),
            Cmd::Report(a) => Command::Report(report_config(a, quiet)?),
            Cmd::Run(a) => Command::Run(RunConfig {
                pipeline: a.pipeline,
                partition: partition(a.partition)?,
                output: a.output,
                quiet,
            }),
            Cmd::MergeRun(a) => Command::MergeRun(MergeRunConfig {
                parts: a.parts,
                output: a.output,
                pipeline: a.pipeline,
                quiet,
            }),
            Cmd::Score(a) => Command::Score(score_config(a, quiet)?),
            Cmd::Check(a) => Command::Check(check_config(a, quiet)?),
        })
    }
}

/// `-o FILE` and `--json`: JSON when asked, or when FILE ends in `.json`.
fn output(json: bool, path: Option<PathBuf>) -> Output {
    let json = json
        || path
            .as_ref()
            .and_then(|p| p.extension())
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    Output { json, path }
}

/// The partition asked for, `auto` read from the environment now.
fn partition(arg: Option<PartitionArg>) -> Result<Option<Partition>, UsageError> {
    arg.map(PartitionArg::resolve)
        .transpose()
        .map_err(|e| UsageError::Partition(format!("{e:#}")))
}

fn fraction(rare_below: f64) -> Result<f64, UsageError> {
    if (0.0..=1.0).contains(&rare_below) {
        Ok(rare_below)
    } else {
        Err(UsageError::RareBelow(rare_below))
    }
}

fn stats_config(a: StatsArgs, quiet: bool) -> Result<StatsConfig, UsageError> {
    let rare_below = fraction(a.rare_below)?;
    Ok(StatsConfig {
        exports: (&a.source.exports).into(),
        dir: a.source.dir,
        labels: a.source.labels,
        output: output(a.json, a.output),
        per_image: a.per_image,
        rare_below,
        partition: partition(a.partition)?,
        strict: a.strict,
        quiet,
        report: a.report,
    })
}

fn check_config(a: CheckArgs, quiet: bool) -> Result<CheckConfig, UsageError> {
    let connectivity = crate::check::Connectivity::from_number(a.connectivity)
        .ok_or(UsageError::Connectivity(a.connectivity))?;
    let mut names: Vec<&str> = a.split.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(UsageError::SplitTwice(w[0].to_string()));
    }
    Ok(CheckConfig {
        exports: (&a.exports).into(),
        dir: a
            .dir
            .or_else(|| a.split.first().map(|(_, d)| d.clone()))
            .unwrap_or_default(),
        splits: a.split,
        labels: a.labels,
        options: crate::check::Options {
            connectivity,
            min_object: a.min_object,
            photos: !a.no_photos,
            listed: a.list,
            keep_classes: a.sampling_weights.is_some(),
            progress: !quiet,
        },
        sampling: a.sampling_weights,
        output: output(a.json, a.output),
        strict: a.strict,
        quiet,
        report: a.report,
    })
}

fn weights_config(a: WeightsArgs, quiet: bool) -> WeightsConfig {
    WeightsConfig {
        counts: match (a.from, a.dir) {
            (Some(path), _) => CountsFrom::From(path),
            (None, dir) => CountsFrom::Scan {
                dir: dir.unwrap_or_default(),
                labels: a.labels,
                exports: (&a.exports).into(),
                strict: a.strict,
            },
        },
        options: WeightOptions {
            scheme: a.scheme,
            enet_c: a.enet_c,
            beta: a.beta,
            max_weight: a.max_weight,
        },
        output: a.output,
        npy: a.npy,
        json: a.json,
        quiet,
    }
}

fn score_config(a: ScoreArgs, quiet: bool) -> Result<ScoreConfig, UsageError> {
    if let Some(t) = a.threshold.filter(|t| !t.is_finite()) {
        return Err(UsageError::Threshold(t));
    }
    let sweeping = a.sweep || !a.thresholds.is_empty() || a.sweep_bins.is_some();
    if sweeping && a.argmax {
        return Err(UsageError::SweepWithArgmax);
    }
    let sweep = sweeping.then(|| SweepConfig {
        levels: SweepLevels {
            levels: (!a.thresholds.is_empty()).then(|| a.thresholds.clone()),
            bins: a
                .sweep_bins
                .map_or(crate::score::sweep::DEFAULT_BINS, |n| n as usize),
        },
        out: a.sweep_out.clone(),
    });
    Ok(ScoreConfig {
        exports: (&a.exports).into(),
        partition: partition(a.partition)?.filter(|p| p.count > 1),
        sweep,
        truth: a.truth,
        pred: a.pred,
        labels: a.labels,
        pred_kind: a.pred_kind,
        threshold: a.threshold,
        argmax: a.argmax,
        tensor: a.tensor,
        empty_as: a.empty_as,
        backend: a.backend,
        gpu: GpuOptions {
            batch: a.gpu_batch.map(|n| n as usize),
            verbose: a.verbose,
        },
        output: output(a.json, a.output),
        per_image: a.per_image,
        strict: a.strict,
        quiet,
        report: a.report,
    })
}

fn report_config(a: ReportArgs, quiet: bool) -> Result<ReportConfig, UsageError> {
    let rare_below = fraction(a.rare_below.unwrap_or(RARE_BELOW))?;
    let input = match (a.stats, a.score, a.dir) {
        (Some(p), _, _) => ReportInput::Stats(p),
        (None, Some(p), _) => ReportInput::Score(p),
        (None, None, dir) => ReportInput::Scan {
            dir: dir.unwrap_or_default(),
            labels: a.labels,
            exports: (&a.exports).into(),
            strict: a.strict,
        },
    };
    Ok(ReportConfig {
        input,
        output: a.output,
        rare_below,
        worst: a.worst,
        quiet,
    })
}

fn shards_job(a: ShardsArgs, quiet: bool) -> ShardsJob {
    if let Some(ShardsCmd::Verify { dir }) = a.verify {
        return ShardsJob::Verify(VerifyConfig { dir, quiet });
    }
    let geometry = match (a.size, a.tile) {
        (Some(d), _) => shards::Geometry::Resize(d),
        (None, Some(d)) => shards::Geometry::Tile(d),
        (None, None) => shards::Geometry::Native,
    };
    ShardsJob::Write(ShardsConfig {
        exports: (&a.exports).into(),
        dir: a.dir.unwrap_or_default(),
        labels: a.labels,
        out: a.output.unwrap_or_default(),
        format: a.format,
        shard_bytes: a.shard_size.map(|s| s.0),
        shard_samples: a.samples_per_shard,
        geometry,
        splits: a.split,
        seed: a.seed,
        stratify: !a.no_stratify,
        shuffle: a.shuffle,
        strict: a.strict,
        quiet,
        command: std::env::args().collect(),
        partition: Partition::WHOLE,
    })
}

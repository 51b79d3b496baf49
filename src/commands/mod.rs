//! The command layer: one file per command. Each runs its stages, prints
//! through the console, and picks the exit code (0 done, 1 some files
//! skipped; an `Err` is exit code 2). Nothing below this layer imports it.

mod check;
mod labels;
mod merge;
mod report;
mod run;
mod score;
mod shards;
mod stats;
mod weights;

use std::path::PathBuf;

use anyhow::Context;

use crate::cli::{Command, CountsFrom, ShardsJob};

/// Runs a command; returns the exit code. A command that reads from an
/// object store runs with `--fetch` workers (see [`crate::store`]).
pub fn execute(cmd: Command) -> anyhow::Result<u8> {
    let inputs = inputs(&cmd);
    let inputs: Vec<&std::path::Path> = inputs.iter().map(PathBuf::as_path).collect();
    crate::store::with_workers(&inputs, move || dispatch(cmd))
}

/// The folders a command reads masks or predictions from.
fn inputs(cmd: &Command) -> Vec<PathBuf> {
    match cmd {
        Command::Stats(c) => vec![c.dir.clone()],
        Command::Labels(c) => vec![c.dir.clone()],
        Command::Check(c) => match c.splits.is_empty() {
            true => vec![c.dir.clone()],
            false => c.splits.iter().map(|(_, d)| d.clone()).collect(),
        },
        Command::Weights(c) => match &c.counts {
            CountsFrom::Scan { dir, .. } => vec![dir.clone()],
            CountsFrom::From(_) => Vec::new(),
        },
        Command::Shards(ShardsJob::Write(c)) => vec![c.dir.clone()],
        Command::Shards(ShardsJob::Verify(c)) => vec![c.dir.clone()],
        Command::Score(c) => vec![c.truth.clone(), c.pred.clone()],
        Command::Run(c) => crate::pipeline::load(&c.pipeline)
            .map(|p| vec![p.source.dir])
            .unwrap_or_default(),
        Command::Merge(_) | Command::Report(_) | Command::MergeRun(_) => Vec::new(),
    }
}

fn dispatch(cmd: Command) -> anyhow::Result<u8> {
    match cmd {
        Command::Stats(c) => stats::run(&c),
        Command::Labels(c) => labels::run(&c),
        Command::Check(c) => check::run(&c),
        Command::Merge(c) => merge::run(&c),
        Command::Weights(c) => weights::run(&c),
        Command::Shards(j) => shards::run(j),
        Command::Report(c) => report::run(&c),
        Command::Run(c) => {
            run::run(&c).with_context(|| format!("cannot run pipeline `{}`", c.pipeline.display()))
        }
        Command::MergeRun(c) => run::merge_run(&c)
            .with_context(|| format!("cannot merge the runs in `{}`", c.parts.display())),
        Command::Score(c) => score::run(&c),
    }
}

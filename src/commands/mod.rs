//! The command layer: one file per command. Each runs its stages, prints
//! through the console, and picks the exit code (0 done, 1 some files
//! skipped; an `Err` is exit code 2). Nothing below this layer imports it.

mod labels;
mod merge;
mod report;
mod run;
mod score;
mod shards;
mod stats;
mod weights;

use anyhow::{Context, bail};

use crate::cli::Command;

/// Runs a command; returns the exit code.
pub fn execute(cmd: Command) -> anyhow::Result<u8> {
    match cmd {
        Command::Stats(c) => stats::run(&c),
        Command::Labels(c) => labels::run(&c),
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
        Command::Invalid(msg) => bail!(msg),
    }
}

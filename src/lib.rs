//! maskprep: honest statistics, loss weights and scores for segmentation masks.
//!
//! The data's path: `labels` (what codes mean) → `source` (which files) →
//! `decode` (PNG → code histogram) → `stats` (exact counters, verdict).
//! `app` runs the commands that `cli` resolves.

pub mod app;
pub mod cli;
pub mod dataset;
pub mod decode;
pub mod labels;
pub mod output;
pub mod pipeline;
pub mod report;
pub mod score;
pub mod shards;
pub mod source;
pub mod stats;
pub mod tensors;
pub mod weights;

/// Runs a parsed command line; returns the exit code (0 all read, 1 some
/// files skipped). An `Err` means the job could not be done (exit code 2).
pub fn run(cli: cli::Cli) -> anyhow::Result<u8> {
    if let Some(n) = cli.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| anyhow::anyhow!("cannot start {n} worker threads: {e}"))?;
    }
    app::execute(cli.into_command())
}

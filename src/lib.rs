//! maskprep: honest statistics, loss weights, shards and scores for
//! segmentation masks.
//!
//! Two floors. On top, `cli` (flags → one config per command) and
//! `commands` (one file per command: run the stages, print, pick the exit
//! code). Below, the stages, in the data's order: `labels` (what codes
//! mean) → `source` (which files) → `dataset` (layouts, pairing, label-map
//! detection) → `decode` (PNG → code histogram) → `stats` / `weights` /
//! `shards` / `score` (exact counters and what derives from them) →
//! `report` (drawing only). `output` (atomic writes, emitter, console),
//! `tensors` and `pipeline` (the TOML schema) serve every stage. No stage
//! imports `commands`; `tests/architecture.rs` keeps it so.

pub mod cli;
pub mod commands;
pub mod output;
pub mod pipeline;

pub mod dataset;
pub mod decode;
pub mod labels;
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
    commands::execute(cli.into_command())
}

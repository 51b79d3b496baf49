//! maskprep: honest statistics, loss weights, shards and scores for
//! segmentation masks.
//!
//! Two floors. On top, `cli` (flags → one config per command) and
//! `commands` (one file per command: run the stages, print, pick the exit
//! code). Below, the stages, in the data's order: `labels` (what codes
//! mean) → `source` (which files) → `dataset` (layouts, pairing, label-map
//! detection) → `decode` (PNG → code histogram) → `stats` / `weights` /
//! `shards` / `score` / `check` (exact counters and what derives from them) →
//! `report` (drawing only). `output` (atomic writes, emitter, console),
//! `format` (numbers in words), `tensors`, `weight_rules` (pos_weight and
//! the rules of every weight) and `pipeline` (the TOML schema) serve every
//! stage. No stage imports `commands`, and no command another command;
//! `labels` never imports `stats`, and `stats` never `weights` (the stats
//! document previews pos_weight through `weight_rules`);
//! `tests/architecture.rs` keeps it so.

pub mod cli;
pub mod commands;
pub mod output;
pub mod pipeline;

pub mod annotations;
pub mod check;
pub mod dataset;
pub mod decode;
pub mod format;
pub mod labels;
pub mod report;
pub mod score;
pub mod shards;
pub mod source;
pub mod stats;
pub mod store;
pub mod tensors;
pub mod weight_rules;
pub mod weights;

/// The whole command line, as the `maskprep` binary (and the Python
/// wheel's `maskprep` command) runs it: parse `args` (the program name
/// first), run, print the error chain; returns the exit code (2: the job
/// could not be done or the arguments are wrong; clap's own 0 for `--help`).
pub fn main_from<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::Parser;
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // What `Cli::parse` would print before exiting.
            let _ = e.print();
            return u8::try_from(e.exit_code()).unwrap_or(2);
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if output::is_broken_pipe(&e) {
                return 0;
            }
            eprintln!("maskprep: error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            2
        }
    }
}

/// Runs a parsed command line; returns the exit code (0 all read, 1 some
/// files skipped). An `Err` means the job could not be done (exit code 2).
pub fn run(cli: cli::Cli) -> anyhow::Result<u8> {
    let from_env = || {
        std::env::var("RAYON_NUM_THREADS")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&n| cap_threads(n) < n)
    };
    if let Some(asked) = cli.threads.or_else(from_env) {
        let n = cap_threads(asked);
        if n < asked {
            eprintln!(
                "maskprep: note: `--threads {asked}` capped at {n} ({THREADS_PER_CORE} per core); \
                 more threads than that only cost memory and start-up time"
            );
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| anyhow::anyhow!("cannot start {n} worker threads: {e}"))?;
    }
    if let Some(n) = cli.fetch {
        store::set_fetch(n as usize);
    }
    commands::execute(cli.into_command()?)
}

/// Most worker threads per core that `--threads` may ask for.
pub const THREADS_PER_CORE: usize = 4;

/// `asked` threads, capped at [`THREADS_PER_CORE`] per available core.
pub fn cap_threads(asked: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // 0 leaves the choice to rayon (one per core).
    asked.min(cores.saturating_mul(THREADS_PER_CORE))
}

//! `--partition I/N`, or `auto` / `auto/N`: the piece of a cluster job
//! this process runs, read from a Slurm job array or a Kubernetes Indexed
//! Job's environment when the command is resolved.

use std::str::FromStr;

use anyhow::{Context, bail};

use crate::source::Partition;

/// `--partition` as given: `I/N`, or `auto` / `auto/N` (read from the
/// scheduler's environment when the command is resolved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionArg {
    Fixed(Partition),
    Auto(Option<usize>),
}

impl FromStr for PartitionArg {
    type Err = String;

    fn from_str(arg: &str) -> Result<Self, String> {
        match arg.strip_prefix("auto") {
            Some("") => Ok(Self::Auto(None)),
            Some(rest) => rest
                .strip_prefix('/')
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|&n| n > 0)
                .map(|n| Self::Auto(Some(n)))
                .ok_or_else(|| format!("`{arg}` is not a partition; expected I/N, auto or auto/N")),
            None => arg.parse().map(Self::Fixed),
        }
    }
}

impl PartitionArg {
    /// The partition this process runs.
    pub fn resolve(self) -> anyhow::Result<Partition> {
        match self {
            Self::Fixed(p) => Ok(p),
            Self::Auto(count) => auto_partition(count),
        }
    }
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
        return format!("{}/{n}", (id + 1).saturating_sub(min))
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

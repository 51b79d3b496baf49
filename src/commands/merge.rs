//! `maskprep merge`: partial stats documents summed into one.

use anyhow::Context;

use super::stats::exit_code;
use crate::cli::MergeConfig;
use crate::output::emit;
use crate::stats::doc::render_table;
use crate::stats::merge::{merge_docs, read_stats};

pub fn run(cfg: &MergeConfig) -> anyhow::Result<u8> {
    let docs = cfg
        .inputs
        .iter()
        .map(|p| read_stats(p).map(|d| (p.clone(), d)))
        .collect::<anyhow::Result<Vec<_>>>()
        .context("cannot merge stats")?;
    let doc = merge_docs(&docs).context("cannot merge stats")?;
    emit(&doc, &cfg.output, render_table)?;
    Ok(exit_code(&doc))
}

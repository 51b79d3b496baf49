//! `maskprep merge`: partial documents summed into one: stats documents
//! (partitions or other splits), or the score documents of
//! `score --partition` runs. The first file's `format` says which.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cli::MergeConfig;
use crate::output::{Console, emit};
use crate::score::doc::{self as score_doc, read_score};
use crate::stats::doc::render_table;
use crate::stats::merge::{merge_docs, read_stats};

pub fn run(cfg: &MergeConfig) -> anyhow::Result<u8> {
    if cfg.inputs.first().is_some_and(|p| is_score(p)) {
        return merge_scores(cfg);
    }
    let docs = cfg
        .inputs
        .iter()
        .map(|p| read_stats(p).map(|d| (p.clone(), d)))
        .collect::<anyhow::Result<Vec<_>>>()
        .context("cannot merge stats")?;
    let doc = merge_docs(&docs).context("cannot merge stats")?;
    emit(&doc, &cfg.output, render_table)?;
    Ok(doc.exit_code())
}

/// Does the file hold a score document (by its `format`)?
fn is_score(path: &Path) -> bool {
    crate::store::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("format")?.as_str().map(|f| f == score_doc::FORMAT))
        .unwrap_or(false)
}

fn merge_scores(cfg: &MergeConfig) -> anyhow::Result<u8> {
    let docs = cfg
        .inputs
        .iter()
        .map(|p| read_score(p).map(|d| (p.clone(), d)))
        .collect::<anyhow::Result<Vec<(PathBuf, _)>>>()
        .context("cannot merge scores")?;
    let doc = crate::score::merge::merge(&docs).context("cannot merge scores")?;
    emit(&doc, &cfg.output, score_doc::render_table)?;
    // The merged sweep picks the thresholds, named after `-o FILE`.
    let p = &doc.prediction;
    if let (Some(sw), Some(out), false) = (&doc.sweep, &cfg.output.path, p.argmax) {
        let files = crate::score::sweep::thresholds_files(None, Some(out));
        let default = p.threshold.unwrap_or(0.0);
        crate::score::sweep::write_thresholds(sw, p.kind, default, &files, &Console::new(false))?;
    }
    Ok(if doc.complete() { 0 } else { 1 })
}

//! `maskprep weights`: counts (a scan of DIR, or a stats file) → the
//! weights document → files written atomically, a table or JSON on stdout.

use crate::store;
use std::path::Path;

use anyhow::{Context, bail};

use crate::cli::{CountsFrom, WeightsConfig};
use crate::output::{Console, to_stdout};
use crate::stats::RARE_BELOW;
use crate::stats::collect::{Request, collect};
use crate::stats::merge::read_stats;
use crate::weights::doc::{self, weights_doc, write_files};

/// Runs the command; exit code 1 when masks were skipped.
pub fn run(cfg: &WeightsConfig) -> anyhow::Result<u8> {
    let console = Console::new(cfg.quiet);
    cfg.options.check()?;
    if let Some(out) = &cfg.output {
        check_output(out)?;
        // As `report`, `shards` and `run`: never write into the data.
        if let CountsFrom::Scan { dir, .. } = &cfg.counts {
            crate::source::refuse_output_inside(dir, out)?;
        }
    }
    let (stats, from) = match &cfg.counts {
        CountsFrom::Scan {
            dir,
            labels,
            exports,
            strict,
        } => {
            let request = Request {
                dir,
                labels: labels.as_deref(),
                exports: *exports,
                partition: None,
                rare_below: RARE_BELOW,
                strict: *strict,
                per_image: false,
            };
            let collected = collect(&request, &console)
                .with_context(|| format!("cannot compute weights for `{}`", dir.display()))?;
            (collected.doc, None)
        }
        CountsFrom::From(path) => {
            let doc = read_stats(path)
                .with_context(|| format!("cannot compute weights from `{}`", path.display()))?;
            (doc, Some(path.display().to_string()))
        }
    };
    let context = match &from {
        Some(path) => format!("cannot compute weights from `{path}`"),
        None => format!("cannot compute weights for `{}`", stats.meta.dataset),
    };
    for b in &stats.files.bad {
        console.skipped(&b.path, &b.reason);
    }
    let doc = weights_doc(&stats, from, &cfg.options).context(context)?;
    for w in &doc.warnings {
        console.warn(w);
    }
    if let Some(out) = &cfg.output {
        write_files(&doc, out, cfg.npy)?;
        console.note(&format!(
            "wrote `{}`, `{}` and `{}` in `{}`{}",
            doc::JSON_FILE,
            doc::SAFETENSORS_FILE,
            doc::README_FILE,
            out.display(),
            if cfg.npy { ", with `.npy` copies" } else { "" }
        ));
    }
    let text = if cfg.json {
        console.note(&format!("verdict: {}", doc.verdict.reason));
        doc.to_json()
    } else {
        doc::render_table(&doc)
    };
    to_stdout(text.as_bytes())?;
    Ok(if doc.source.skipped.is_empty() { 0 } else { 1 })
}

/// Refuses an output that is not a folder, or a folder whose `README.md`
/// maskprep did not write (it would be overwritten).
fn check_output(out: &Path) -> anyhow::Result<()> {
    let ext = out
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    if store::is_file(out) || matches!(ext.as_deref(), Some("json" | "safetensors" | "npy")) {
        bail!(
            "`-o {}` is a file name; expected a folder (it receives `{}`, `{}` and `{}`), e.g. `-o weights/`",
            out.display(),
            doc::JSON_FILE,
            doc::SAFETENSORS_FILE,
            doc::README_FILE
        );
    }
    let readme = out.join(doc::README_FILE);
    if store::is_file(&readme) {
        let text = store::read_to_string(&readme).unwrap_or_default();
        if !text.starts_with(doc::README_MARKER) {
            bail!(
                "`{}` exists and was not written by `maskprep weights`; expected a new folder \
                 or one that `maskprep weights` wrote, so as not to overwrite it",
                readme.display()
            );
        }
    }
    Ok(())
}

//! `maskprep report`: a report from a dataset, a stats file or a score
//! file (the writers live in [`crate::report`]).

use anyhow::Context;

use crate::cli::{ReportConfig, ReportInput};
use crate::output::Console;
use crate::report::{INDEX, check_output, write_score, write_stats};
use crate::score::doc::read_score;
use crate::score::replay;
use crate::stats::collect::{Collected, Request, collect};
use crate::stats::merge::read_stats;

/// Runs `maskprep report`; exit code 1 when masks were skipped.
pub fn run(cfg: &ReportConfig) -> anyhow::Result<u8> {
    let console = Console::new(cfg.quiet);
    check_output(&cfg.output)?;
    let code = match &cfg.input {
        ReportInput::Scan {
            dir,
            labels,
            exports,
            strict,
        } => {
            crate::source::refuse_output_inside(dir, &cfg.output)?;
            let request = Request {
                dir,
                labels: labels.as_deref(),
                exports: *exports,
                partition: None,
                rare_below: cfg.rare_below,
                strict: *strict,
                per_image: true,
            };
            let Collected { doc, rows, .. } = collect(&request, &console)?;
            for b in &doc.files.bad {
                console.skipped(&b.path, &b.reason);
            }
            write_stats(&cfg.output, &doc, Some(&rows), None)?;
            doc.exit_code()
        }
        ReportInput::Stats(path) => {
            let doc = read_stats(path)
                .with_context(|| format!("cannot write a report from `{}`", path.display()))?;
            write_stats(&cfg.output, &doc, None, Some(path))?;
            0
        }
        ReportInput::Score(path) => {
            let context = || format!("cannot write a report from `{}`", path.display());
            let doc = read_score(path).with_context(context)?;
            let per_image = replay::rescore(&doc, path.parent(), &console);
            if let Err(why) = &per_image {
                console.note(&format!("note: no per-image section: {why}"));
            }
            write_score(
                &cfg.output,
                &doc,
                per_image.as_ref().map_err(String::as_str),
                cfg.worst,
            )
            .with_context(context)?;
            0
        }
    };
    console.note(&format!(
        "wrote the report `{}`",
        cfg.output.join(INDEX).display()
    ));
    Ok(code)
}

//! `maskprep stats`: collect the dataset's counts, write the document (and
//! the per-image table and the report when asked).

use crate::cli::StatsConfig;
use crate::output::{Console, emit};
use crate::stats::collect::{Collected, Request, collect};
use crate::stats::doc;
use crate::stats::per_image;

pub fn run(cfg: &StatsConfig) -> anyhow::Result<u8> {
    let console = Console::new(cfg.quiet);
    if let Some(out) = &cfg.report {
        crate::source::refuse_output_inside(&cfg.dir, out)?;
        crate::report::check_output(out)?;
    }
    let Collected { doc, rows, map } = collect(
        &Request {
            dir: &cfg.dir,
            labels: cfg.labels.as_deref(),
            exports: cfg.exports,
            partition: cfg.partition,
            rare_below: cfg.rare_below,
            strict: cfg.strict,
            per_image: cfg.per_image.is_some() || cfg.report.is_some(),
        },
        &console,
    )?;
    if let Some(path) = &cfg.per_image {
        per_image::write(path, &rows, map.classes())?;
    }
    doc.report_problems(&console);
    emit(&doc, &cfg.output, doc::render_table)?;
    if let Some(out) = &cfg.report {
        crate::report::write_stats(out, &doc, Some(&rows), None)?;
        console.note(&format!(
            "wrote the report `{}`",
            out.join(crate::report::INDEX).display()
        ));
    }
    Ok(doc.exit_code())
}

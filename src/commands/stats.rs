//! `maskprep stats`: collect the dataset's counts, write the document (and
//! the per-image table and the report when asked).

use super::report::stats_report;
use crate::cli::StatsConfig;
use crate::output::{Console, emit};
use crate::stats::collect::{Collected, Request, collect};
use crate::stats::doc::{self, StatsDoc};
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
    report_problems(&doc, &console);
    emit(&doc, &cfg.output, doc::render_table)?;
    if let Some(out) = &cfg.report {
        stats_report(out, &doc, Some(&rows), None)?;
        console.note(&format!(
            "wrote the report `{}`",
            out.join(crate::report::INDEX).display()
        ));
    }
    Ok(exit_code(&doc))
}

/// 0 when every mask was read, 1 when some were skipped.
pub fn exit_code(doc: &StatsDoc) -> u8 {
    if doc.complete() { 0 } else { 1 }
}

/// Lists skipped files (always) and pairing problems (unless quiet).
pub fn report_problems(doc: &StatsDoc, console: &Console) {
    for b in &doc.files.bad {
        console.skipped(&b.path, &b.reason);
    }
    let f = &doc.files;
    let pairing = f.masks_without_images.len() + f.images_without_masks.len();
    if pairing > 0 {
        console.warn(&format!(
            "{} mask(s) without image, {} image(s) without mask (listed in the output)",
            f.masks_without_images.len(),
            f.images_without_masks.len()
        ));
    }
    for z in &f.size_mismatches {
        console.warn(&format!(
            "mask `{}` is {} but image `{}` is {}",
            z.mask, z.mask_size, z.image, z.image_size
        ));
    }
}

//! `maskprep check`: dataset health before training: objects per class,
//! leakage between splits, classes missing from a split, sampling weights.

use crate::check::collect::{Collected, Request, collect};
use crate::check::doc;
use crate::cli::CheckConfig;
use crate::output::{Console, emit};

pub fn run(cfg: &CheckConfig) -> anyhow::Result<u8> {
    let console = Console::new(cfg.quiet);
    if let Some(out) = &cfg.report {
        crate::source::refuse_output_inside(&cfg.dir, out)?;
        for (_, dir) in &cfg.splits {
            crate::source::refuse_output_inside(dir, out)?;
        }
        crate::report::check_output(out)?;
    }
    let Collected { doc, sampling } = collect(
        &Request {
            dir: &cfg.dir,
            splits: &cfg.splits,
            labels: cfg.labels.as_deref(),
            exports: cfg.exports,
            options: cfg.options,
            sampling: cfg.sampling.is_some(),
        },
        &console,
    )?;
    doc.report_problems(&console);
    if let (Some(path), Some(mut weights)) = (&cfg.sampling, sampling) {
        let json = weights.write(path)?;
        console.note(&format!(
            "wrote sampling weights for split `{}` ({} masks): `{}` and `{}`",
            weights.split,
            weights.weights.len(),
            path.display(),
            json.display()
        ));
    }
    emit(&doc, &cfg.output, doc::render_table)?;
    if let Some(out) = &cfg.report {
        crate::report::check::write(out, &doc)?;
        console.note(&format!(
            "wrote the report `{}`",
            out.join(crate::report::INDEX).display()
        ));
    }
    Ok(doc.exit_code(cfg.strict))
}

//! `maskprep labels`: the label map maskprep would use, as `labels.toml`.

use anyhow::Context;

use crate::cli::LabelsConfig;
use crate::dataset::prepare;
use crate::output::{Console, to_stdout, write_bytes};
use crate::source::Partition;

pub fn run(cfg: &LabelsConfig) -> anyhow::Result<u8> {
    let console = Console::new(cfg.quiet);
    let prep = prepare(
        &cfg.dir,
        cfg.labels.as_deref(),
        &cfg.exports,
        Partition::WHOLE,
    )
    .with_context(|| format!("cannot detect the label map of `{}`", cfg.dir.display()))?;
    prep.announce(&console);
    let text = prep.map.to_toml();
    match &cfg.output {
        Some(p) => {
            write_bytes(p, text.as_bytes())?;
            console.note(&format!("wrote `{}`", p.display()));
        }
        None => to_stdout(text.as_bytes())?,
    }
    Ok(0)
}

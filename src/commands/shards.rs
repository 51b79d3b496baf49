//! `maskprep shards` and `maskprep shards verify`.

use anyhow::Context;

use crate::cli::ShardsJob;
use crate::output::Console;
use crate::shards::{INDEX, ShardsConfig, manifest, verify, write};

/// Runs a shards command; returns the exit code.
pub fn run(job: ShardsJob) -> anyhow::Result<u8> {
    match job {
        ShardsJob::Write(cfg) => {
            let done = write::run(&cfg).with_context(|| {
                format!(
                    "cannot write shards of `{}` to `{}`",
                    cfg.dir.display(),
                    cfg.out.display()
                )
            })?;
            report(&cfg, &done, &Console::new(cfg.quiet));
            Ok(if done.manifest.skipped.is_empty() {
                0
            } else {
                1
            })
        }
        ShardsJob::Verify(cfg) => {
            let console = Console::new(cfg.quiet);
            let rep = verify::verify(&cfg.dir)
                .with_context(|| format!("cannot verify shards in `{}`", cfg.dir.display()))?;
            for p in &rep.problems {
                console.problem(&format!("verify: {p}"));
            }
            if rep.problems.is_empty() {
                console.note(&format!(
                    "verified `{}`: {} shards, {} samples, every checksum and count matches",
                    cfg.dir.display(),
                    rep.shards,
                    rep.samples
                ));
                Ok(0)
            } else {
                console.problem(&format!(
                    "verify found {} difference(s) in `{}`",
                    rep.problems.len(),
                    cfg.dir.display()
                ));
                Ok(1)
            }
        }
    }
}

/// Skipped files (always), then the split report and a summary (unless quiet).
fn report(cfg: &ShardsConfig, done: &write::Written, console: &Console) {
    let m = &done.manifest;
    for b in &m.skipped {
        console.skipped(&b.path, &b.reason);
    }
    for w in &m.warnings {
        console.warn(w);
    }
    if console.quiet {
        return;
    }
    if m.splits.len() > 1 {
        eprint!("{}", manifest::render_split_report(m));
    }
    let shards: usize = m.splits.values().map(|s| s.shards.len()).sum();
    let samples: u64 = m.splits.values().map(|s| s.samples).sum();
    let reused = if done.reused > 0 {
        format!(" ({} kept from an earlier run)", done.reused)
    } else {
        String::new()
    };
    console.note(&format!(
        "wrote {samples} samples in {shards} shard(s){reused} and `{}`",
        cfg.out.join(INDEX).display()
    ));
}

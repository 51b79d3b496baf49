//! `maskprep run PIPELINE.toml` and `maskprep merge-run`: the declared
//! stages over one pass of the data, whole or as one partition, and the
//! merge of partition runs. The schema and its checks live in
//! [`crate::pipeline`]; this file runs it.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::check;
use crate::cli::{MergeRunConfig, RunConfig};
use crate::output::{Console, Output, emit, write_bytes};
use crate::pipeline::{
    CHECK_FILE, CHECK_REPORT_DIR, CheckStage, PARTS_DIR, PIPELINE_FILE, Pipeline, REPORT_DIR,
    SCORE_FILE, SCORE_REPORT_DIR, SHARDS_DIR, STATS_FILE, ScoreStage, ShardsStage, WEIGHTS_DIR,
    load,
};
use crate::score::{self, doc::read_score};
use crate::shards::{self, Format, Geometry, ShardsConfig, SplitArg};
use crate::source::Partition;
use crate::stats::collect::{Collected, Request, collect};
use crate::stats::doc::{Files, Meta, StatsDoc, render_table};
use crate::stats::merge::{merge_docs, read_stats};
use crate::stats::per_image;
use crate::store;
use crate::weights::doc::{weights_doc, write_files};

/// Runs a pipeline (or one partition of it); returns the exit code.
pub fn run(cfg: &RunConfig) -> anyhow::Result<u8> {
    let console = Console::new(cfg.quiet);
    let path = &cfg.pipeline;
    let mut p = load(path)?;
    if let Some(o) = &cfg.output {
        p.output.dir = o.clone();
    }
    crate::source::refuse_output_inside(&p.source.dir, &p.output.dir)?;
    let part = cfg.partition.filter(|p| p.count > 1);
    let out = match part {
        Some(pt) => p
            .output
            .dir
            .join(PARTS_DIR)
            .join(format!("{}-of-{}", pt.index, pt.count)),
        None => p.output.dir.clone(),
    };
    if part.is_some() {
        // The part carries its pipeline, so `merge-run` applies the same stages.
        let text = store::read(path)
            .with_context(|| format!("cannot read pipeline `{}`", path.display()))?;
        write_bytes(&out.join(PIPELINE_FILE), &text)?;
    }
    let mut code = 0;
    if let Some(sc) = &p.score {
        code = code.max(score(&p, sc, &out, cfg.quiet, part)?);
    }
    if let Some(ck) = &p.check {
        code = code.max(check(&p, ck, &out, part, &console)?);
    }
    let counts_stages = p.stats.is_some() || p.weights.is_some() || p.shards.is_some();
    if !counts_stages {
        return Ok(code);
    }
    let mut rows = None;
    let stats = match &p.shards {
        Some(sh) => stats_from_shards(&p, sh, &out, part, &console)?,
        None => {
            let per_image = p
                .stats
                .as_ref()
                .and_then(|s| s.per_image.as_ref())
                .map(|f| out.join(f));
            let request = Request {
                dir: &p.source.dir,
                labels: p.source.labels.as_deref(),
                exports: p.source.exports(),
                partition: part,
                rare_below: p.rare_below(),
                strict: p.stats.as_ref().is_some_and(|s| s.strict),
                per_image: per_image.is_some() || p.report.is_some(),
            };
            let Collected {
                doc,
                rows: scanned,
                map,
            } = collect(&request, &console)?;
            if let Some(path) = &per_image {
                per_image::write(path, &scanned, map.classes())?;
            }
            rows = Some(scanned);
            doc
        }
    };
    stats.report_problems(&console);
    write_stats(&stats, &out, &console)?;
    if part.is_none() {
        finish(Some(&p), &stats, rows.as_deref(), &out, &console)?;
        console.note(&format!("verdict: {}", stats.verdict.reason));
    }
    Ok(code.max(stats.exit_code()))
}

/// Runs the score stage into `OUT/score.json`.
/// A part scores its piece of the pairs; `merge-run` sums the pieces.
fn score(
    p: &Pipeline,
    sc: &ScoreStage,
    out: &Path,
    quiet: bool,
    part: Option<Partition>,
) -> anyhow::Result<u8> {
    let console = Console::new(quiet);
    let truth = sc.truth.clone().unwrap_or_else(|| p.source.dir.clone());
    let report = p
        .report
        .as_ref()
        .filter(|_| part.is_none())
        .map(|_| out.join(SCORE_REPORT_DIR));
    if let Some(dir) = &report {
        crate::report::check_output(dir)?;
    }
    let request = score::collect::Request {
        truth: &truth,
        pred: &sc.pred,
        labels: p.source.labels.as_deref(),
        exports: p.source.exports(),
        pred_kind: sc.pred_kind,
        threshold: sc.threshold,
        argmax: sc.argmax,
        tensor: sc.tensor.as_deref(),
        empty_as: sc.empty_as,
        backend: sc.backend,
        gpu: &Default::default(),
        sweep: None,
        partition: part,
        per_image: sc.per_image.is_some() || report.is_some(),
        strict: sc.strict,
    };
    let scored =
        score::collect::collect(&request, &console).context("cannot run the score stage")?;
    let doc = &scored.doc;
    doc.report_problems(&console, false);
    if let Some(file) = &sc.per_image {
        score::per_image::write(&out.join(file), &scored.rows, scored.map.classes())?;
    }
    let path = out.join(SCORE_FILE);
    let to = Output {
        json: true,
        path: Some(path.clone()),
    };
    emit(doc, &to, score::doc::render_table)?;
    console.note(&format!("wrote `{}`", path.display()));
    if let Some(dir) = &report {
        let per_image = score::replay::PerImage::from_rows(
            &scored.rows,
            scored.map,
            &scored.dataset,
            scored.reader,
        );
        crate::report::write_score(dir, &scored.doc, Ok(&per_image), score::replay::WORST)?;
        console.note(&format!(
            "wrote the report `{}`",
            dir.join(crate::report::INDEX).display()
        ));
    }
    Ok(if scored.doc.complete() { 0 } else { 1 })
}

/// A pipeline's `[check]` stage: `OUT/check.json` (and the sampling
/// weights, and `OUT/check-report/` with `[report]`). A partition's piece
/// skips it: duplicates need the whole dataset.
fn check(
    p: &Pipeline,
    ck: &CheckStage,
    out: &Path,
    part: Option<Partition>,
    console: &Console,
) -> anyhow::Result<u8> {
    if part.is_some() {
        console.note("[check] skipped in a partition: duplicates need the whole dataset");
        return Ok(0);
    }
    let options = check::Options {
        // Checked when the pipeline was loaded.
        connectivity: check::Connectivity::from_number(ck.connectivity).unwrap_or_default(),
        min_object: ck.min_object,
        photos: ck.photos,
        listed: check::LISTED,
        keep_classes: ck.sampling_weights.is_some(),
        progress: console.progress(),
    };
    let sampling = ck.sampling_weights.as_ref().map(|f| out.join(f));
    let check::collect::Collected {
        doc,
        sampling: weights,
    } = check::collect::collect(
        &check::collect::Request {
            dir: &p.source.dir,
            splits: &[],
            labels: p.source.labels.as_deref(),
            exports: p.source.exports(),
            options,
            sampling: sampling.is_some(),
        },
        console,
    )?;
    doc.report_problems(console);
    if let (Some(path), Some(mut w)) = (&sampling, weights) {
        w.write(path)?;
    }
    let to = Output {
        json: true,
        path: Some(out.join(CHECK_FILE)),
    };
    emit(&doc, &to, check::doc::render_table)?;
    console.note(&format!("wrote `{}`", out.join(CHECK_FILE).display()));
    if p.report.is_some() {
        let dir = out.join(CHECK_REPORT_DIR);
        crate::report::check::write(&dir, &doc)?;
        console.note(&format!("wrote the report `{}`", dir.display()));
    }
    Ok(doc.exit_code(ck.strict))
}

/// Writes `OUT/stats.json` (always: parts need it to merge).
fn write_stats(stats: &StatsDoc, out: &Path, console: &Console) -> anyhow::Result<()> {
    let path = out.join(STATS_FILE);
    let to = Output {
        json: true,
        path: Some(path.clone()),
    };
    emit(stats, &to, render_table)?;
    console.note(&format!("wrote `{}`", path.display()));
    Ok(())
}

/// The outputs of a whole run beside the stats: the report and the weights.
fn finish(
    p: Option<&Pipeline>,
    stats: &StatsDoc,
    rows: Option<&[crate::stats::scan::ImageRow]>,
    out: &Path,
    console: &Console,
) -> anyhow::Result<()> {
    if let Some(w) = p.and_then(|p| p.weights.as_ref()) {
        let doc = weights_doc(stats, None, &w.options())
            .context("cannot compute the pipeline's weights")?;
        let dir = out.join(WEIGHTS_DIR);
        write_files(&doc, &dir, w.npy)?;
        console.note(&format!("wrote weights in `{}`", dir.display()));
    }
    if p.is_some_and(|p| p.report.is_some()) {
        let dir = out.join(REPORT_DIR);
        crate::report::write_stats(&dir, stats, rows, None)?;
        console.note(&format!("wrote the report `{}`", dir.display()));
    }
    Ok(())
}

/// Writes the shards and returns the stats of what they hold, from the
/// shard writer's own exact counts (each mask decoded once).
fn stats_from_shards(
    p: &Pipeline,
    sh: &ShardsStage,
    out: &Path,
    part: Option<Partition>,
    console: &Console,
) -> anyhow::Result<StatsDoc> {
    let geometry = match (sh.size, sh.tile) {
        (Some(d), _) => Geometry::Resize(d),
        (None, Some(d)) => Geometry::Tile(d),
        (None, None) => Geometry::Native,
    };
    let cfg = ShardsConfig {
        dir: p.source.dir.clone(),
        labels: p.source.labels.clone(),
        exports: p.source.exports(),
        out: out.join(SHARDS_DIR),
        format: sh.format.unwrap_or(Format::Webdataset),
        shard_bytes: sh.shard_size.map(|s| s.0),
        shard_samples: sh.samples_per_shard,
        geometry,
        splits: sh
            .split
            .iter()
            .map(|(name, &fraction)| SplitArg {
                name: name.clone(),
                fraction,
            })
            .collect(),
        seed: sh.seed,
        stratify: sh.stratify,
        shuffle: sh.shuffle,
        strict: sh.strict,
        quiet: console.quiet,
        command: std::env::args().collect(),
        partition: part.unwrap_or(Partition::WHOLE),
    };
    let written = shards::write::run(&cfg).with_context(|| {
        format!(
            "cannot write shards of `{}` to `{}`",
            cfg.dir.display(),
            cfg.out.display()
        )
    })?;
    let m = &written.manifest;
    console.note(&format!(
        "wrote {} shards in `{}`",
        m.splits.values().map(|s| s.shards.len()).sum::<usize>(),
        cfg.out.display()
    ));
    let meta = Meta {
        dataset: p.source.dir.display().to_string(),
        partition: part,
        labels: m.labels.clone(),
        labels_origin: m.labels_origin.clone(),
        rare_below: p.rare_below(),
    };
    let files = Files {
        masks_found: written.masks_found,
        ..Files::default()
    };
    Ok(StatsDoc::new(meta, &written.counts, files, &written.map))
}

/// `maskprep merge-run PARTS -o OUT`: combines partition runs of a pipeline.
pub fn merge_run(cfg: &MergeRunConfig) -> anyhow::Result<u8> {
    let console = Console::new(cfg.quiet);
    let (parts_dir, out) = (&cfg.parts, &cfg.output);
    let mut parts: Vec<(Partition, PathBuf)> = Vec::new();
    let entries = store::read_dir(parts_dir)
        .with_context(|| format!("cannot list parts in `{}`", parts_dir.display()))?;
    for (name, path, _) in entries {
        if let Some(part) = name
            .split_once("-of-")
            .and_then(|(i, n)| format!("{i}/{n}").parse::<Partition>().ok())
        {
            parts.push((part, path));
        }
    }
    parts.sort_by_key(|(p, _)| p.index);
    if parts.is_empty() {
        bail!(
            "no parts (`I-of-N` folders) in `{}`; expected the `parts/` folder of `maskprep run --partition` runs",
            parts_dir.display()
        );
    }
    let first_copy = parts[0].1.join(PIPELINE_FILE);
    let p = match &cfg.pipeline {
        Some(path) => Some(load(path)?),
        None if store::is_file(&first_copy) => Some(load(&first_copy)?),
        None => None,
    };
    let mut code = 0;
    if parts
        .iter()
        .any(|(_, d)| store::is_file(&d.join(SCORE_FILE)))
    {
        code = merge_scores(&parts, out, p.as_ref(), &console)?;
    }
    if !parts
        .iter()
        .any(|(_, d)| store::is_file(&d.join(STATS_FILE)))
    {
        return Ok(code);
    }
    let docs = parts
        .iter()
        .map(|(_, d)| {
            let p = d.join(STATS_FILE);
            read_stats(&p).map(|doc| (p, doc))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let stats = merge_docs(&docs).context("cannot merge the parts' stats")?;
    let shard_parts: Vec<PathBuf> = parts
        .iter()
        .map(|(_, d)| d.join(SHARDS_DIR))
        .filter(|d| store::is_file(&d.join(shards::INDEX)))
        .collect();
    if !shard_parts.is_empty() {
        if shard_parts.len() != parts.len() {
            bail!("only some parts have shards; expected every part to have run the same stages");
        }
        let m = shards::merge::merge_parts(
            &shard_parts,
            &out.join(SHARDS_DIR),
            std::env::args().collect(),
        )?;
        console.note(&format!(
            "merged {} shards into `{}`",
            m.splits.values().map(|s| s.shards.len()).sum::<usize>(),
            out.join(SHARDS_DIR).display()
        ));
    }
    write_stats(&stats, out, &console)?;
    finish(p.as_ref(), &stats, None, out, &console)?;
    Ok(code.max(stats.exit_code()))
}

/// Sums the parts' `score.json` into `OUT/score.json` (and the score
/// report when the pipeline has `[report]`).
fn merge_scores(
    parts: &[(Partition, PathBuf)],
    out: &Path,
    p: Option<&Pipeline>,
    console: &Console,
) -> anyhow::Result<u8> {
    let docs = parts
        .iter()
        .map(|(_, d)| {
            let path = d.join(SCORE_FILE);
            read_score(&path).map(|doc| (path, doc))
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .context("cannot merge the parts' scores")?;
    let doc = score::merge::merge(&docs).context("cannot merge the parts' scores")?;
    let path = out.join(SCORE_FILE);
    let to = Output {
        json: true,
        path: Some(path.clone()),
    };
    emit(&doc, &to, score::doc::render_table)?;
    console.note(&format!("wrote `{}`", path.display()));
    if p.is_some_and(|p| p.report.is_some()) {
        let dir = out.join(SCORE_REPORT_DIR);
        // The per-image section scores the files again (as `report --score`).
        let per_image = score::replay::rescore(&doc, None, console);
        crate::report::write_score(
            &dir,
            &doc,
            per_image.as_ref().map_err(String::as_str),
            score::replay::WORST,
        )?;
        console.note(&format!("wrote the report `{}`", dir.display()));
    }
    Ok(if doc.complete() { 0 } else { 1 })
}

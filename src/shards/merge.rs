//! Merging the shard sets of partition runs (`maskprep run --partition I/N`
//! then `maskprep merge-run`): each part's shards are moved into one folder
//! in partition order and renumbered per split; counts are summed exactly and
//! the loss weights recomputed from the merged `train` counts.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::manifest::{self, Manifest, ShardEntry, SplitEntry};
use super::{FORMAT, INDEX};
use crate::labels::LabelMap;
use crate::output::write_bytes;
use crate::stats::{self, doc::StatsDoc};

/// Reads `dir/index.json`.
pub fn read_manifest(dir: &Path) -> anyhow::Result<Manifest> {
    let path = dir.join(INDEX);
    let text = crate::store::read_to_string(&path)
        .with_context(|| format!("cannot read shard manifest `{}`", path.display()))?;
    let m: Manifest = serde_json::from_str(&text).with_context(|| {
        format!(
            "`{}` is not a shard manifest; expected `{FORMAT}`",
            path.display()
        )
    })?;
    if m.format != FORMAT {
        bail!(
            "`{}` has format `{}`; expected `{FORMAT}`",
            path.display(),
            m.format
        );
    }
    Ok(m)
}

/// Moves the shards of `parts` (folders written by partition runs, in
/// partition order) into `out` and writes the merged manifest.
pub fn merge_parts(
    parts: &[PathBuf],
    out: &Path,
    command: Vec<String>,
) -> anyhow::Result<Manifest> {
    let manifests = parts
        .iter()
        .map(|p| read_manifest(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let Some(first) = manifests.first() else {
        bail!("no shard sets to merge");
    };
    for (p, m) in parts.iter().zip(&manifests) {
        if m.labels != first.labels
            || m.shard_format != first.shard_format
            || m.geometry != first.geometry
            || m.splits.keys().ne(first.splits.keys())
        {
            bail!(
                "`{}` was written with other settings (labels, format, geometry or splits) than `{}`; expected parts of one pipeline",
                p.display(),
                parts[0].display()
            );
        }
    }
    let mut seen = std::collections::BTreeMap::new();
    for (p, m) in parts.iter().zip(&manifests) {
        let part = m.splits.values().find_map(|e| e.stats.meta.partition);
        if let Some(part) = part
            && let Some(q) = seen.insert(part, p)
        {
            bail!(
                "`{}` and `{}` are both partition {part}; expected each partition once",
                q.display(),
                p.display()
            );
        }
    }
    let map = LabelMap::compile(first.labels.clone(), &first.labels_origin)?;
    let ext = first.shard_format.ext();
    let mut splits = std::collections::BTreeMap::new();
    let mut all_counts = Vec::new();
    for (name, entry0) in &first.splits {
        let mut shards = Vec::new();
        let (mut pairs, mut samples) = (0, 0);
        for (dir, m) in parts.iter().zip(&manifests) {
            let e = &m.splits[name];
            pairs += e.pairs;
            samples += e.samples;
            for s in &e.shards {
                let dst_name = format!("{name}/{name}-{:06}.{ext}", shards.len());
                move_shard(&dir.join(&s.name), &out.join(&dst_name), s)?;
                shards.push(ShardEntry {
                    name: dst_name,
                    ..s.clone()
                });
            }
        }
        let (counts, files) = stats::merge::sum(
            map.num_classes(),
            manifests.iter().map(|m| &m.splits[name].stats),
        )
        .with_context(|| format!("cannot add the `{name}` counts of the parts"))?;
        let mut meta = entry0.stats.meta.clone();
        meta.partition = None;
        all_counts.push(counts.clone());
        splits.insert(
            name.clone(),
            SplitEntry {
                fraction: entry0.fraction,
                pairs,
                samples,
                shards,
                stats: StatsDoc::new(meta, &counts, files, &map),
            },
        );
    }
    let names: Vec<String> = splits.keys().cloned().collect();
    let (split_report, mut warnings) = manifest::split_report(&names, &all_counts, map.classes());
    for m in &manifests {
        for w in &m.warnings {
            if !warnings.contains(w) {
                warnings.push(w.clone());
            }
        }
    }
    let mut skipped: Vec<_> = manifests.iter().flat_map(|m| m.skipped.clone()).collect();
    skipped.sort();
    let weights = splits
        .get("train")
        .and_then(|s: &SplitEntry| manifest::loss_weights(&s.stats));
    let merged = Manifest {
        command,
        splits,
        split_report,
        skipped,
        warnings,
        weights,
        ..first.clone()
    };
    let mut text = serde_json::to_string_pretty(&merged)?;
    text.push('\n');
    write_bytes(&out.join(INDEX), text.as_bytes())?;
    Ok(merged)
}

/// Renames a shard into place; a rerun finds it already there and checks
/// its size.
fn move_shard(src: &Path, dst: &Path, entry: &ShardEntry) -> anyhow::Result<()> {
    if let Some(parent) = dst.parent().filter(|_| !crate::store::is_url(dst)) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create `{}`", parent.display()))?;
    }
    if crate::store::is_file(src) {
        return crate::store::rename(src, dst)
            .with_context(|| format!("cannot move `{}` to `{}`", src.display(), dst.display()));
    }
    let size = crate::store::size(dst).ok();
    if size == Some(entry.bytes) {
        return Ok(());
    }
    bail!(
        "shard `{}` is missing (and `{}` is not it); expected the part's shards to be complete",
        src.display(),
        dst.display()
    )
}

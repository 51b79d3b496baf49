//! Reading stats documents back and merging them: partial results from
//! partitions (or separate runs) summed exactly into one document.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};

use crate::labels::{LabelMap, LabelSpec};
use crate::source::Partition;
use crate::stats::Counts;
use crate::stats::doc::{self, Files, Meta, StatsDoc};

/// Reads a stats document, checking that this version wrote its format.
pub fn read_stats(path: &Path) -> anyhow::Result<StatsDoc> {
    let text = crate::store::read_to_string(path)
        .with_context(|| format!("cannot read stats `{}`", path.display()))?;
    parse_stats(&text, path)
}

/// Parses and checks a stats document read from `path` (named in errors).
pub fn parse_stats(text: &str, path: &Path) -> anyhow::Result<StatsDoc> {
    let value: serde_json::Value = serde_json::from_str(text).with_context(|| {
        format!(
            "`{}` is not JSON; expected `maskprep stats --json` output",
            path.display()
        )
    })?;
    let format = value.get("format").and_then(|f| f.as_str()).unwrap_or("");
    if format != doc::FORMAT {
        bail!(
            "`{}` has format `{format}`; expected `{}` (written by `maskprep stats --json`, version {})",
            path.display(),
            doc::FORMAT,
            env!("CARGO_PKG_VERSION")
        );
    }
    let doc: StatsDoc = serde_json::from_value(value)
        .with_context(|| format!("`{}` is not a complete stats document", path.display()))?;
    let c = doc.classes.len();
    if doc.meta.labels.classes.len() != c
        || doc.cooccurrence.len() != c
        || doc.cooccurrence.iter().any(|r| r.len() != c)
    {
        bail!(
            "`{}` is inconsistent: {} classes in `labels`, {c} in `classes`; expected the same class list everywhere",
            path.display(),
            doc.meta.labels.classes.len()
        );
    }
    // The map must be one maskprep accepts (names capped, classes unique).
    LabelMap::compile(doc.meta.labels.clone(), &path.display().to_string())?;
    Ok(doc)
}

/// Refuses a part whose rows no scan writes: classes not in the label
/// map's order (missing, renamed, moved), or undeclared codes (listed and
/// summed) that do not add up to its undeclared pixels.
fn check_part(path: &Path, doc: &StatsDoc) -> anyhow::Result<()> {
    let rows: Vec<&str> = doc.classes.iter().map(|r| r.name.as_str()).collect();
    if rows != doc.meta.labels.classes {
        bail!(
            "`{}` is inconsistent: its classes are {rows:?}, its label map's {:?}; expected the \
             same classes in the same order",
            path.display(),
            doc.meta.labels.classes
        );
    }
    // Undeclared pixels: those of the listed codes plus the summed rest.
    let listed = doc
        .undeclared
        .iter()
        .try_fold(0u64, |a, u| a.checked_add(u.pixels));
    let rest = doc.undeclared_rest.map_or(0, |r| r.pixels);
    if listed.and_then(|l| l.checked_add(rest)) != Some(doc.pixels.undeclared) {
        bail!(
            "`{}` is inconsistent: its undeclared codes (listed and summed) do not add up to its \
             {} undeclared pixels; expected counts written by `maskprep stats`",
            path.display(),
            doc.pixels.undeclared
        );
    }
    Ok(())
}

/// Sums stats documents; they must share the label map and settings.
pub fn merge_docs(docs: &[(PathBuf, StatsDoc)]) -> anyhow::Result<StatsDoc> {
    let (first_path, first) = docs.first().ok_or_else(|| anyhow!("nothing to merge"))?;
    let spec: &LabelSpec = &first.meta.labels;
    for (p, d) in &docs[1..] {
        if &d.meta.labels != spec {
            bail!(
                "`{}` and `{}` use different label maps (classes {:?} vs {:?}); expected the same map",
                first_path.display(),
                p.display(),
                spec.classes,
                d.meta.labels.classes
            );
        }
        if d.meta.rare_below != first.meta.rare_below {
            bail!(
                "`{}` and `{}` use different `--rare-below`; expected the same",
                first_path.display(),
                p.display()
            );
        }
    }
    check_overlap(docs)?;
    for (p, d) in docs {
        check_part(p, d)?;
        // Counts that no scan can produce would underflow the derived numbers.
        d.counts().check().map_err(|why| {
            anyhow!(
                "`{}` is inconsistent: {why}; expected counts written by `maskprep stats`",
                p.display()
            )
        })?;
    }
    let mut counts = Counts::new(spec.classes.len());
    let mut files = Files::default();
    for (p, d) in docs {
        add_doc(&mut counts, &mut files, d)
            .map_err(|e| anyhow!("`{}`: {e} when added to the parts before it", p.display()))?;
    }
    sort_files(&mut files);
    let mut datasets: Vec<String> = Vec::new();
    for (_, d) in docs {
        if !datasets.contains(&d.meta.dataset) {
            datasets.push(d.meta.dataset.clone());
        }
    }
    let mut map = LabelMap::compile(spec.clone(), &first.meta.labels_origin)?;
    map.detection = first.labels_detection.clone();
    let meta = Meta {
        dataset: datasets.join(" + "),
        partition: None,
        labels: spec.clone(),
        labels_origin: first.meta.labels_origin.clone(),
        rare_below: first.meta.rare_below,
    };
    let mut doc = StatsDoc::new(meta, &counts, files, &map);
    let lossy: Vec<String> = docs
        .iter()
        .filter(|(_, d)| d.undeclared_rest.is_some())
        .map(|(p, _)| format!("`{}`", p.display()))
        .collect();
    if !lossy.is_empty() {
        doc.warnings.push(format!(
            "{} listed only their largest undeclared codes: the merged list ranks the codes \
             they listed, pixel totals stay exact",
            lossy.join(", ")
        ));
    }
    Ok(doc)
}

/// Sums the counts and file lists of documents with `classes` classes
/// (exact integer sums, checked: an overflow is an error, never a wrap;
/// lists sorted): the one way partial results add up.
pub fn sum<'a>(
    classes: usize,
    docs: impl IntoIterator<Item = &'a StatsDoc>,
) -> Result<(Counts, Files), super::Overflow> {
    let mut counts = Counts::new(classes);
    let mut files = Files::default();
    for d in docs {
        add_doc(&mut counts, &mut files, d)?;
    }
    sort_files(&mut files);
    Ok((counts, files))
}

/// Adds one document's counts and file lists (checked; on overflow
/// `counts` is unchanged).
fn add_doc(counts: &mut Counts, files: &mut Files, d: &StatsDoc) -> Result<(), super::Overflow> {
    counts.checked_add(&d.counts())?;
    files.masks_found = files
        .masks_found
        .checked_add(d.files.masks_found)
        .ok_or(super::Overflow)?;
    files
        .masks_without_images
        .extend(d.files.masks_without_images.iter().cloned());
    files
        .images_without_masks
        .extend(d.files.images_without_masks.iter().cloned());
    files
        .size_mismatches
        .extend(d.files.size_mismatches.iter().cloned());
    Ok(())
}

fn sort_files(files: &mut Files) {
    files.masks_without_images.sort();
    files.images_without_masks.sort();
    files.size_mismatches.sort();
}

/// Refuses inputs that overlap (the same partition twice, the same whole
/// run twice) or leave partitions out. Checked from the documents' numbers
/// before anything is allocated from them: `1/18446744073709551615` is a
/// valid partition, but no list of that length is ever made.
pub fn check_overlap(docs: &[(PathBuf, StatsDoc)]) -> anyhow::Result<()> {
    let parts: Vec<Option<Partition>> = docs.iter().map(|(_, d)| d.meta.partition).collect();
    if parts.iter().all(Option::is_none) {
        let mut runs: BTreeMap<&str, &Path> = BTreeMap::new();
        for (path, d) in docs {
            if let Some(first) = runs.insert(d.meta.dataset.as_str(), path) {
                bail!(
                    "`{}` and `{}` are both whole runs of `{}`; merging them would count every \
                     mask twice; expected partitions (`--partition I/N`) or other datasets",
                    first.display(),
                    path.display(),
                    d.meta.dataset
                );
            }
        }
        return Ok(());
    }
    let n = parts.iter().flatten().map(|p| p.count).max().unwrap_or(1);
    let mut seen = BTreeSet::new();
    for ((path, _), p) in docs.iter().zip(&parts) {
        let p = p.ok_or_else(|| {
            anyhow!(
                "`{}` is a whole run, the others are partitions; expected only partitions",
                path.display()
            )
        })?;
        if p.count != n {
            bail!(
                "`{}` is partition {p}; expected a partition of {n}",
                path.display()
            );
        }
        if !seen.insert(p.index) {
            bail!(
                "partition {p} is given twice (again in `{}`)",
                path.display()
            );
        }
    }
    if seen.len() < n {
        const SHOWN: usize = 8;
        let missing: Vec<String> = (1..=n)
            .filter(|i| !seen.contains(i))
            .take(SHOWN)
            .map(|i| format!("{i}/{n}"))
            .collect();
        let more = n - seen.len();
        let tail = if more > SHOWN {
            format!(" and {} more", more - SHOWN)
        } else {
            String::new()
        };
        bail!(
            "partitions {}{tail} are missing; expected all {n}",
            missing.join(", ")
        );
    }
    Ok(())
}

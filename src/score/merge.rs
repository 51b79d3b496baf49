//! Merging score documents of partitions (`score --partition I/N`) into the
//! document of the whole run: every count is an integer and every mean is
//! kept as an exact fixed-point sum (`partial`), so the merged document is
//! the whole run's, byte for byte.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail};

use super::doc::{Files, Meta, ScoreDoc};
use super::scan::Scan;
use super::sweep::{Grid, SweepCounts, SweepDoc};
use super::{ClassCounts, Confusion};

/// Sorts paths as the whole run lists them (by path components).
fn sort_paths(v: &mut [String]) {
    v.sort_by(|a, b| Path::new(a).cmp(Path::new(b)));
}

/// The sweep counts a sweep section holds (its curves, undone).
fn sweep_counts(sw: &SweepDoc) -> SweepCounts {
    let k = sw.levels.len();
    let mut out = SweepCounts::new(sw.classes.len(), k + 1);
    for (c, cls) in sw.classes.iter().enumerate() {
        let bins = k + 1;
        let (pos, neg) = (
            &mut out.pos[c * bins..(c + 1) * bins],
            &mut out.neg[c * bins..(c + 1) * bins],
        );
        for j in 0..=k {
            let above = |v: &[u64], total: u64, j: usize| match j {
                0 => total,
                j => v[j - 1],
            };
            let next = |v: &[u64], j: usize| if j < k { v[j] } else { 0 };
            pos[j] = above(&cls.tp, cls.positives, j) - next(&cls.tp, j);
            neg[j] = above(&cls.fp, cls.negatives, j) - next(&cls.fp, j);
        }
    }
    out
}

/// Sums partition documents (each partition of one run exactly once) into
/// the whole run's document.
pub fn merge(docs: &[(PathBuf, ScoreDoc)]) -> anyhow::Result<ScoreDoc> {
    let (first_path, first) = docs.first().ok_or_else(|| anyhow!("nothing to merge"))?;
    let mut seen = Vec::new();
    for (path, d) in docs {
        let part = d.partial.as_ref().ok_or_else(|| {
            anyhow!(
                "`{}` is a whole run; expected score documents of `--partition I/N` runs",
                path.display()
            )
        })?;
        let p = part.partition;
        let n = first.partial.as_ref().map_or(0, |f| f.partition.count);
        if p.count != n {
            bail!(
                "`{}` is partition {p}; expected a partition of {n}",
                path.display()
            );
        }
        if seen.contains(&p.index) {
            bail!(
                "partition {p} is given twice (again in `{}`)",
                path.display()
            );
        }
        seen.push(p.index);
        let same = d.truth == first.truth
            && d.pred == first.pred
            && d.labels == first.labels
            && d.prediction == first.prediction
            && d.backend == first.backend
            && d.summary.empty_as == first.summary.empty_as
            && d.sweep.as_ref().map(|s| (&s.levels, &s.grid))
                == first.sweep.as_ref().map(|s| (&s.levels, &s.grid));
        if !same {
            bail!(
                "`{}` and `{}` were scored differently (truth, predictions, label map, decision, \
                 backend, --empty-as or sweep); expected partitions of one run",
                first_path.display(),
                path.display()
            );
        }
    }
    let n = first.partial.as_ref().map_or(0, |f| f.partition.count);
    // Every index was checked distinct and in 1..=n: missing ones exist
    // exactly when fewer than n were given (n itself may be huge).
    if seen.len() < n {
        let missing: Vec<String> = (1..=n)
            .filter(|i| !seen.contains(i))
            .take(10)
            .map(|i| format!("{i}/{n}"))
            .collect();
        let more = if n - seen.len() > missing.len() {
            ", ..."
        } else {
            ""
        };
        bail!(
            "partitions {}{more} are missing; expected all {n}",
            missing.join(", ")
        );
    }
    let c = first.classes.len();
    let mut scan = Scan {
        total: Confusion {
            valid: 0,
            classes: vec![ClassCounts::default(); c],
        },
        ..Scan::default()
    };
    let mut files = Files::default();
    let mut sweep: Option<SweepCounts> = None;
    for (_, d) in docs {
        let add = |a: &mut u64, b: u64, what: &str| {
            a.checked_add(b)
                .map(|v| *a = v)
                .ok_or_else(|| anyhow!("the {what} overflow 64 bits when summed"))
        };
        add(&mut scan.total.valid, d.pixels.valid, "valid pixels")?;
        for (k, row) in scan.total.classes.iter_mut().zip(&d.classes) {
            let r = &row.counts;
            for (a, b) in [
                (&mut k.tp, r.tp),
                (&mut k.fp, r.fp),
                (&mut k.fn_, r.fn_),
                (&mut k.tn, r.tn),
            ] {
                add(a, b, "class counts")?;
            }
        }
        add(&mut scan.pixels, d.pixels.total, "pixels")?;
        add(&mut scan.tally.ignored, d.pixels.ignored, "ignored pixels")?;
        add(
            &mut scan.tally.undeclared,
            d.pixels.undeclared,
            "undeclared pixels",
        )?;
        add(
            &mut scan.tally.pred_unlabelled,
            d.pixels.pred_unlabelled,
            "unlabelled predictions",
        )?;
        if let Some(p) = &d.partial {
            scan.per_image += &p.per_image;
        }
        scan.size_mismatches
            .extend(d.files.size_mismatches.iter().cloned());
        scan.skipped.extend(d.files.skipped.iter().cloned());
        if let Some(sw) = &d.sweep {
            let k = sweep_counts(sw);
            match &mut sweep {
                Some(total) => *total += &k,
                None => sweep = Some(k),
            }
        }
        add(&mut files.truth_masks, d.files.truth_masks, "truth masks")?;
        add(&mut files.pairs, d.files.pairs, "pairs")?;
        files
            .missing_predictions
            .extend(d.files.missing_predictions.iter().cloned());
        files
            .extra_predictions
            .extend(d.files.extra_predictions.iter().cloned());
    }
    scan.size_mismatches.sort();
    scan.skipped.sort();
    sort_paths(&mut files.missing_predictions);
    sort_paths(&mut files.extra_predictions);
    let meta = Meta {
        truth: first.truth.clone(),
        pred: first.pred.clone(),
        labels: first.labels.clone(),
        labels_origin: first.labels_origin.clone(),
        prediction: first.prediction.clone(),
        backend: first.backend.clone(),
        empty_as: first.summary.empty_as,
    };
    let mut doc = ScoreDoc::new(meta, &scan, files);
    if let (Some(counts), Some(sw)) = (&sweep, &first.sweep) {
        let grid = Grid::new(sw.levels.clone(), first.prediction.kind)?;
        doc.sweep = Some(SweepDoc::new(
            &grid,
            sw.grid.clone(),
            first.prediction.kind,
            counts,
            &first.labels.classes,
        ));
    }
    Ok(doc)
}

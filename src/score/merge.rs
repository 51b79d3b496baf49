//! Merging score documents of partitions (`score --partition I/N`) into the
//! document of the whole run: every count is an integer and every mean is
//! kept as an exact fixed-point sum (`partial`), so the merged document is
//! the whole run's, byte for byte. Parts are read from files: each is
//! checked for the shape and sums a scan writes, and every addition is
//! checked; an error names the part.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};

use super::doc::{Files, Meta, ScoreDoc};
use super::metrics::PerImage;
use super::scan::Scan;
use super::sweep::{Grid, SweepCounts, SweepDoc};
use super::{ClassCounts, Confusion};

/// Sorts paths as the whole run lists them (by path components).
fn sort_paths(v: &mut [String]) {
    v.sort_by(|a, b| Path::new(a).cmp(Path::new(b)));
}

/// The sweep counts a sweep section holds (its curves, undone), checked
/// against its shape: `None` when the curves cannot be a scan's (a list of
/// another length, a count that grows with the threshold or passes the
/// class's pixels).
fn sweep_counts(sw: &SweepDoc) -> Option<SweepCounts> {
    let k = sw.levels.len();
    let bins = k + 1;
    let mut out = SweepCounts::new(sw.classes.len(), bins);
    for (c, cls) in sw.classes.iter().enumerate() {
        if cls.tp.len() != k || cls.fp.len() != k {
            return None;
        }
        let (pos, neg) = (
            &mut out.pos[c * bins..(c + 1) * bins],
            &mut out.neg[c * bins..(c + 1) * bins],
        );
        for j in 0..=k {
            let above = |v: &[u64], total: u64| if j == 0 { total } else { v[j - 1] };
            let next = |v: &[u64]| if j < k { v[j] } else { 0 };
            pos[j] = above(&cls.tp, cls.positives).checked_sub(next(&cls.tp))?;
            neg[j] = above(&cls.fp, cls.negatives).checked_sub(next(&cls.fp))?;
        }
    }
    Some(out)
}

/// Refuses a part whose numbers no scan of the run can have written (a
/// class missing, renamed or moved, lists of other lengths, counts that do
/// not add up): merged, they would give a wrong document or overflow.
fn check_part(path: &Path, d: &ScoreDoc, grid: Option<&Grid>) -> anyhow::Result<()> {
    let bad = |what: String| {
        anyhow!(
            "`{}` is inconsistent: {what}; expected a score document written by `maskprep score \
             --partition`",
            path.display()
        )
    };
    let names = &d.labels.classes;
    let rows: Vec<&str> = d.classes.iter().map(|r| r.name.as_str()).collect();
    if rows != *names {
        return Err(bad(format!(
            "its classes are {rows:?}, its label map's {names:?}"
        )));
    }
    let valid = d.pixels.valid;
    let excluded = d.pixels.ignored.checked_add(d.pixels.undeclared);
    if excluded.and_then(|e| e.checked_add(valid)) != Some(d.pixels.total) {
        return Err(bad(
            "valid, ignored and undeclared pixels do not add up to the total".into(),
        ));
    }
    for r in &d.classes {
        let k = &r.counts;
        let sum = [k.fp, k.fn_, k.tn]
            .iter()
            .try_fold(k.tp, |a, &b| a.checked_add(b));
        if sum != Some(valid) {
            return Err(bad(format!(
                "class `{}`'s TP + FP + FN + TN is not its {valid} valid pixels",
                r.name
            )));
        }
    }
    if let Some(p) = &d.partial {
        let pi = &p.per_image;
        if !pi.is_possible(names.len()) || pi.images != d.files.images_scored {
            return Err(bad(format!(
                "its per-image sums do not fit {} classes and {} images scored",
                names.len(),
                d.files.images_scored
            )));
        }
    }
    if let (Some(sw), Some(grid)) = (&d.sweep, grid) {
        let sweep_names: Vec<&str> = sw.classes.iter().map(|c| c.name.as_str()).collect();
        if sweep_names != *names {
            return Err(bad(format!(
                "its sweep's classes are {sweep_names:?}, its label map's {names:?}"
            )));
        }
        if sw.levels != grid.levels {
            return Err(bad(
                "its sweep levels are not sorted, distinct probabilities".into(),
            ));
        }
        for c in &sw.classes {
            if c.positives.checked_add(c.negatives) != Some(valid) {
                return Err(bad(format!(
                    "sweep class `{}`'s positives and negatives are not its {valid} valid pixels",
                    c.name
                )));
            }
        }
        if sweep_counts(sw).is_none() {
            return Err(bad(format!(
                "its sweep curves are not one count per level ({}), never rising with the \
                 level and within the class's pixels",
                grid.levels.len()
            )));
        }
    }
    Ok(())
}

/// Sums partition documents (each partition of one run exactly once) into
/// the whole run's document. Each part is checked first ([`check_part`]),
/// and every sum is checked: an error names the part, never a wrap.
pub fn merge(docs: &[(PathBuf, ScoreDoc)]) -> anyhow::Result<ScoreDoc> {
    let (first_path, first) = docs.first().ok_or_else(|| anyhow!("nothing to merge"))?;
    let grid = match &first.sweep {
        Some(sw) => Some(
            Grid::new(sw.levels.clone(), first.prediction.kind)
                .with_context(|| format!("`{}` has a sweep grid", first_path.display()))?,
        ),
        None => None,
    };
    let n = first.partial.as_ref().map_or(0, |f| f.partition.count);
    check_parts(docs, n, grid.as_ref())?;
    let c = first.classes.len();
    let mut scan = Scan {
        total: Confusion {
            valid: 0,
            classes: vec![ClassCounts::default(); c],
        },
        per_image: PerImage::new(c),
        ..Scan::default()
    };
    let mut files = Files::default();
    let mut sweep: Option<SweepCounts> = None;
    for (path, d) in docs {
        add_part(&mut scan, &mut files, &mut sweep, path, d)?;
    }
    check_room(&scan, c)?;
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
    if let (Some(counts), Some(sw), Some(grid)) = (&sweep, &first.sweep, &grid) {
        doc.sweep = Some(SweepDoc::new(
            grid,
            sw.grid.clone(),
            first.prediction.kind,
            counts,
            &first.labels.classes,
        ));
    }
    Ok(doc)
}

/// Checks that `docs` are the `n` partitions of one run, each once, each
/// scored as the first and each consistent ([`check_part`]).
fn check_parts(docs: &[(PathBuf, ScoreDoc)], n: usize, grid: Option<&Grid>) -> anyhow::Result<()> {
    let (first_path, first) = &docs[0];
    let mut seen = Vec::new();
    for (path, d) in docs {
        let part = d.partial.as_ref().ok_or_else(|| {
            anyhow!(
                "`{}` is a whole run; expected score documents of `--partition I/N` runs",
                path.display()
            )
        })?;
        let p = part.partition;
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
        check_part(path, d, grid)?;
    }
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
    Ok(())
}

/// Adds one part's counts, sums, problems and sweep to the totals; every
/// addition is checked.
fn add_part(
    scan: &mut Scan,
    files: &mut Files,
    sweep: &mut Option<SweepCounts>,
    path: &Path,
    d: &ScoreDoc,
) -> anyhow::Result<()> {
    let add = |a: &mut u64, b: u64, what: &str| {
        a.checked_add(b).map(|v| *a = v).ok_or_else(|| {
            anyhow!(
                "`{}`: the {what} overflow 64 bits when added to the parts before it; \
                 expected partitions of one run",
                path.display()
            )
        })
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
        scan.per_image = scan
            .per_image
            .checked_add(&p.per_image)
            .ok_or_else(|| overflow(path, "per-image sums"))?;
    }
    scan.size_mismatches
        .extend(d.files.size_mismatches.iter().cloned());
    scan.skipped.extend(d.files.skipped.iter().cloned());
    if let Some(sw) = &d.sweep {
        let k = sweep_counts(sw).ok_or_else(|| overflow(path, "sweep counts"))?;
        *sweep = Some(match &*sweep {
            Some(total) => total
                .checked_add(&k)
                .ok_or_else(|| overflow(path, "sweep counts"))?,
            None => k,
        });
    }
    add(&mut files.truth_masks, d.files.truth_masks, "truth masks")?;
    add(&mut files.pairs, d.files.pairs, "pairs")?;
    files
        .missing_predictions
        .extend(d.files.missing_predictions.iter().cloned());
    files
        .extra_predictions
        .extend(d.files.extra_predictions.iter().cloned());
    Ok(())
}

/// Refuses merged counts too large for the metrics derived from them.
fn check_room(scan: &Scan, c: usize) -> anyhow::Result<()> {
    // The metrics add counts over classes (micro) and double TP (Dice):
    // the merged counts must leave room for that.
    let room = (2 * c.max(1)) as u64;
    if scan.total.valid.checked_mul(room).is_none()
        || scan.per_image.images.checked_mul(room).is_none()
    {
        bail!(
            "the merged counts ({} valid pixels, {} images) are too large to derive metrics from; \
             expected partitions of one run",
            scan.total.valid,
            scan.per_image.images
        );
    }
    Ok(())
}

fn overflow(path: &Path, what: &str) -> anyhow::Error {
    anyhow!(
        "`{}`: the {what} overflow 64 bits when added to the parts before it; expected \
         partitions of one run",
        path.display()
    )
}

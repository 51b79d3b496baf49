//! The per-image score table: one row per image scored, sorted by key,
//! written as CSV or Parquet (by extension) with polars. Sort it by `miou`
//! or an `iou:<class>` column to find the worst images.
//!
//! Columns: `image, truth, pred, width, height, valid, miou`, then
//! `iou:<class>` for each class (empty/null when undefined), then exact
//! counts `tp:<class>`, `fp:<class>`, `fn:<class>`, `tn:<class>`.

use std::path::Path;

use polars::prelude::*;

use super::scan::ImageRow;

/// Metrics at full precision (float64, as computed).
fn floats(v: impl Iterator<Item = Option<f64>>) -> Vec<Option<f64>> {
    v.collect()
}

/// Builds the table.
pub fn table(rows: &[ImageRow], classes: &[String]) -> PolarsResult<DataFrame> {
    let strs = |f: fn(&ImageRow) -> &str| rows.iter().map(f).collect::<Vec<_>>();
    let mut cols = vec![
        Column::new("image".into(), strs(|r| r.key.as_str())),
        Column::new("truth".into(), strs(|r| r.truth.as_str())),
        Column::new("pred".into(), strs(|r| r.pred.as_str())),
        Column::new(
            "width".into(),
            rows.iter().map(|r| r.width).collect::<Vec<_>>(),
        ),
        Column::new(
            "height".into(),
            rows.iter().map(|r| r.height).collect::<Vec<_>>(),
        ),
        Column::new(
            "valid".into(),
            rows.iter().map(|r| r.counts.valid).collect::<Vec<_>>(),
        ),
        Column::new(
            "miou".into(),
            floats(rows.iter().map(|r| r.metrics.mean.iou)),
        ),
    ];
    for (i, name) in classes.iter().enumerate() {
        cols.push(Column::new(
            format!("iou:{name}").into(),
            floats(rows.iter().map(|r| r.metrics.classes[i].iou)),
        ));
    }
    type Get = fn(&super::ClassCounts) -> u64;
    let counts: [(&str, Get); 4] = [
        ("tp", |k| k.tp),
        ("fp", |k| k.fp),
        ("fn", |k| k.fn_),
        ("tn", |k| k.tn),
    ];
    for (what, get) in counts {
        for (i, name) in classes.iter().enumerate() {
            cols.push(Column::new(
                format!("{what}:{name}").into(),
                rows.iter()
                    .map(|r| get(&r.counts.classes[i]))
                    .collect::<Vec<_>>(),
            ));
        }
    }
    DataFrame::new(rows.len(), cols)
}

/// Writes the table to `path` (`.csv` or `.parquet`), atomically.
pub fn write(path: &Path, rows: &[ImageRow], classes: &[String]) -> anyhow::Result<()> {
    crate::output::write_table(path, "per-image score table", || table(rows, classes))
}

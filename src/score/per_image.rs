//! The per-image score table: one row per image scored, sorted by key,
//! written as CSV or Parquet (by extension) with polars. Sort it by `miou`
//! or an `iou:<class>` column to find the worst images.
//!
//! Columns: `image, truth, pred, width, height, valid, miou`, then
//! `iou:<class>` for each class (empty/null when undefined), then exact
//! counts `tp:<class>`, `fp:<class>`, `fn:<class>`, `tn:<class>`.

use std::path::Path;

use anyhow::bail;
use polars::prelude::*;

use super::metrics::round6;
use super::scan::ImageRow;
use crate::output::write_atomic;

fn floats(v: impl Iterator<Item = Option<f64>>) -> Vec<Option<f64>> {
    v.map(|x| x.map(round6)).collect()
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
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ext != "csv" && ext != "parquet" {
        bail!(
            "cannot write the per-image table to `{}`: expected a `.csv` or `.parquet` file name",
            path.display()
        );
    }
    let mut df = table(rows, classes)
        .map_err(|e| anyhow::anyhow!(e).context("cannot build the per-image score table"))?;
    write_atomic(path, |w| -> anyhow::Result<()> {
        if ext == "csv" {
            CsvWriter::new(w).finish(&mut df)?;
        } else {
            ParquetWriter::new(w)
                .with_compression(ParquetCompression::Uncompressed)
                .finish(&mut df)?;
        }
        Ok(())
    })
}

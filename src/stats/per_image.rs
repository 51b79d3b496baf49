//! The per-image table: one row per mask, a column per class count, written
//! as CSV or Parquet (by the file's extension) with polars.

use std::path::Path;

use polars::prelude::*;

use super::scan::ImageRow;
use crate::output::write_table;

/// Builds the table: `mask, width, height, ignored, undeclared, <class>...`.
pub fn table(rows: &[ImageRow], classes: &[String]) -> PolarsResult<DataFrame> {
    let mut cols = vec![
        Column::new(
            "mask".into(),
            rows.iter().map(|r| r.mask.as_str()).collect::<Vec<_>>(),
        ),
        Column::new(
            "width".into(),
            rows.iter().map(|r| r.width).collect::<Vec<_>>(),
        ),
        Column::new(
            "height".into(),
            rows.iter().map(|r| r.height).collect::<Vec<_>>(),
        ),
        Column::new(
            "ignored".into(),
            rows.iter().map(|r| r.ignored).collect::<Vec<_>>(),
        ),
        Column::new(
            "undeclared".into(),
            rows.iter().map(|r| r.undeclared).collect::<Vec<_>>(),
        ),
    ];
    for (i, name) in classes.iter().enumerate() {
        let col_name =
            if ["mask", "width", "height", "ignored", "undeclared"].contains(&name.as_str()) {
                format!("class:{name}")
            } else {
                name.clone()
            };
        cols.push(Column::new(
            col_name.into(),
            rows.iter().map(|r| r.class_pixels[i]).collect::<Vec<_>>(),
        ));
    }
    DataFrame::new(rows.len(), cols)
}

/// Writes the table to `path` (`.csv` or `.parquet`), atomically.
pub fn write(path: &Path, rows: &[ImageRow], classes: &[String]) -> anyhow::Result<()> {
    write_table(path, "per-image table", || table(rows, classes))
}

//! The per-image table: one row per mask, a column per class count, written
//! as CSV or Parquet (by the file's extension) with polars.

use std::path::Path;

use anyhow::bail;
use polars::prelude::*;

use super::scan::ImageRow;
use crate::output::write_atomic;

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
    write_frame(path, "per-image table", || table(rows, classes))
}

/// Writes a data frame to `path` as CSV or Parquet (by the extension),
/// atomically; `what` names it in messages. The frame is built only once
/// the file name has been checked.
pub fn write_frame(
    path: &Path,
    what: &str,
    build: impl FnOnce() -> PolarsResult<DataFrame>,
) -> anyhow::Result<()> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ext != "csv" && ext != "parquet" {
        bail!(
            "cannot write the {what} to `{}`: expected a `.csv` or `.parquet` file name",
            path.display()
        );
    }
    let mut df =
        build().map_err(|e| anyhow::anyhow!(e).context(format!("cannot build the {what}")))?;
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

//! The report of `maskprep check`: objects per class with a plot of their
//! sizes, splits and missing classes, per-split class shares, duplicate
//! pairs. Drawing only: every number comes from the check document.

use std::path::Path;

use super::html::{Cell, Page, Row};
use plotters::style::RGBColor;

use super::plots::{self, BLUE, GREEN, ORANGE, PURPLE, TEAL};
use super::{Files, ReportError, write_folder};
use crate::check::doc::{CheckDoc, DupDoc, SIZE_EDGES};

/// The object-size plot's file.
pub const SIZES_PNG: &str = "object_sizes.png";

/// Size ranges of the plot: (name, colour, bins of `size_bins` summed).
const RANGES: [(&str, RGBColor, std::ops::Range<usize>); 5] = [
    ("under 10 px", ORANGE, 0..3),
    ("10-99 px", PURPLE, 3..5),
    ("100-999 px", TEAL, 5..6),
    ("1000-9999 px", GREEN, 6..7),
    ("10000+ px", BLUE, 7..9),
];

/// Writes the check report folder `out` (atomically).
pub fn write(out: &Path, doc: &CheckDoc) -> Result<(), ReportError> {
    let mut page = Page::new("maskprep check");
    let mut files = Files::default();
    page.h1(&format!(
        "Dataset check: {}",
        super::html::esc(&doc.meta.dataset)
    ));
    section(&mut page, &mut files, doc)?;
    files.add(super::INDEX, page.finish().into_bytes());
    write_folder(out, &files)
}

/// The check section: tables and the object-size plot (added to `files`).
pub fn section(page: &mut Page, files: &mut Files, doc: &CheckDoc) -> Result<(), ReportError> {
    let m = &doc.meta;
    page.h2("check", "Dataset health");
    page.p(&format!(
        "{} masks read of {}; objects are {}-connected; small objects are under {} pixels.",
        doc.files.masks_read, doc.files.masks_found, m.connectivity, m.min_object
    ));
    page.warnings("Warnings", &doc.warnings);
    debug_assert_eq!(SIZE_EDGES.len() + 1, 9);
    let labels: Vec<String> = doc.classes.iter().map(|c| c.name.clone()).collect();
    let series: Vec<(String, RGBColor, Vec<Option<f64>>)> = RANGES
        .iter()
        .map(|(name, colour, bins)| {
            let shares = doc
                .classes
                .iter()
                .map(|c| {
                    let n: u64 = c.size_bins[bins.clone()].iter().sum();
                    (c.objects > 0).then(|| n as f64 / c.objects as f64)
                })
                .collect();
            (name.to_string(), *colour, shares)
        })
        .collect();
    let plot = plots::grouped(&plots::Grouped {
        file: SIZES_PNG,
        title: "Object sizes per class",
        subtitle: "share of each class's objects in each size range (pixels)",
        x_label: "share of objects",
        labels: &labels,
        series: &series,
    })?;
    page.figure(
        &plot.file,
        plot.width,
        plot.height,
        "object sizes per class",
        "Share of each class's objects by size; small objects are often noise or need a minimum object size in post-processing.",
    );
    files.add(plot.file, plot.png);
    objects_table(page, doc);
    splits_tables(page, doc);
    dup_table(page, "Duplicate masks", &doc.duplicates.masks);
    if let Some(p) = &doc.duplicates.photos {
        dup_table(page, "Duplicate photos", p);
    }
    Ok(())
}

fn objects_table(page: &mut Page, doc: &CheckDoc) {
    let rows: Vec<Row> = doc
        .classes
        .iter()
        .map(|c| {
            let z = |f: fn(&crate::check::doc::SizeDoc) -> u64| {
                c.sizes
                    .as_ref()
                    .map_or("-".to_string(), |s| f(s).to_string())
            };
            Row::flagged(
                vec![
                    Cell::text(c.name.clone()),
                    Cell::num(c.images),
                    Cell::num(c.objects),
                    Cell::num(format!("{:.2}", c.objects_per_image)),
                    Cell::num(c.max_objects_per_image),
                    Cell::num(z(|s| s.min)),
                    Cell::num(z(|s| s.p10)),
                    Cell::num(z(|s| s.p50)),
                    Cell::num(z(|s| s.p90)),
                    Cell::num(z(|s| s.max)),
                    Cell::num(c.objects_with_holes),
                    Cell::num(c.small_objects),
                    Cell::num(c.images_with_small_objects),
                ],
                c.small_objects > 0,
            )
        })
        .collect();
    page.h3("Objects per class");
    page.table(
        &[
            "class",
            "images",
            "objects",
            "per image",
            "max/image",
            "min px",
            "p10",
            "median",
            "p90",
            "max px",
            "with holes",
            "small",
            "images w/ small",
        ],
        &rows,
    );
}

fn splits_tables(page: &mut Page, doc: &CheckDoc) {
    page.h3(&format!("Splits ({})", doc.meta.splits_origin));
    let rows: Vec<Row> = doc
        .splits
        .iter()
        .map(|s| {
            Row::flagged(
                vec![
                    Cell::text(s.name.clone()),
                    Cell::num(s.images),
                    Cell::text(s.missing_classes.join(", ")),
                ],
                !s.missing_classes.is_empty(),
            )
        })
        .collect();
    page.table(&["split", "images", "classes missing"], &rows);
    if doc.splits.len() < 2 {
        return;
    }
    let mut head = vec!["class".to_string()];
    head.extend(doc.splits.iter().map(|s| format!("{} pixel share", s.name)));
    head.push("spread".into());
    let head: Vec<&str> = head.iter().map(String::as_str).collect();
    let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.3}%", v * 100.0));
    let rows: Vec<Row> = doc
        .shares
        .iter()
        .map(|r| {
            let mut cells = vec![Cell::text(r.class.clone())];
            cells.extend(r.pixel_share.iter().map(|v| Cell::num(pct(*v))));
            cells.push(Cell::num(pct(Some(r.pixel_share_spread))));
            Row::new(cells)
        })
        .collect();
    page.h3("Class shares per split, largest spread first");
    page.table(&head, &rows);
}

fn dup_table(page: &mut Page, title: &str, d: &DupDoc) {
    page.h3(title);
    page.p(&format!(
        "{} group(s), {} pair(s), {} across splits.",
        d.groups, d.pairs, d.cross_split_pairs
    ));
    if d.listed.is_empty() {
        return;
    }
    let rows: Vec<Row> = d
        .listed
        .iter()
        .take(100)
        .map(|p| {
            Row::flagged(
                vec![
                    Cell::text(p.a.clone()),
                    Cell::text(p.split_a.clone()),
                    Cell::text(p.b.clone()),
                    Cell::text(p.split_b.clone()),
                ],
                p.split_a != p.split_b,
            )
        })
        .collect();
    page.table(&["file", "split", "same as", "split"], &rows);
}

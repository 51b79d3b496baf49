//! The imbalance report: a stats document, its loss weights and (after a
//! scan) the per-image rows → plots, tables of every number plotted, the
//! verdict and loss advice, the weights with a PyTorch snippet, and the
//! warnings. `stats.json`, `weights.json` and `weights.safetensors` go
//! beside the page, so the snippet loads a file that is there.

use super::html::{Cell, Page, Row, esc, inline, swatch};
use super::plots::{self, HBars, Heatmap, VBars, thousands};
use super::{Files, INDEX, ReportError};
use crate::format::{percent, ratio};
use crate::stats::doc::{MATRIX_CLASSES, Pair, StatsDoc, TOP_PAIRS};
use crate::stats::scan::ImageRow;
use crate::weights::doc::{self as wdoc, SchemeOut, WeightsDoc};
use crate::weights::{BETA_GIVEN, Scheme};

/// Where the stats came from.
pub enum Origin {
    /// A scan of the dataset (per-image rows available).
    Scan,
    /// A stats file, e.g. `stats.json`.
    File(String),
}

/// What a stats report is made from.
pub struct Input<'a> {
    pub stats: &'a StatsDoc,
    pub weights: &'a WeightsDoc,
    /// One row per mask; `None` when only a stats file was read.
    pub rows: Option<&'a [ImageRow]>,
    pub origin: Origin,
}

/// Upper edges of the per-image class-fraction bins (after the `0` bin).
const FRACTION_EDGES: [f64; 7] = [0.01, 0.05, 0.10, 0.25, 0.50, 0.75, 1.0];
const FRACTION_LABELS: [&str; 8] = [
    "0", "<1%", "1–5%", "5–10%", "10–25%", "25–50%", "50–75%", "≥75%",
];
/// Most classes drawn by name in the co-occurrence heatmap (then by index).
const NAMED_HEATMAP: usize = 24;
/// Most distinct mask sizes drawn; the rest are summed into one bar.
const MAX_SIZES: usize = 24;

/// Images by fraction of their valid pixels in each class:
/// `[class][bin]`, bins as [`FRACTION_LABELS`]. Masks with no valid pixel
/// are left out; the second value counts them.
pub fn fraction_bins(rows: &[ImageRow], classes: usize) -> (Vec<Vec<u64>>, u64) {
    let mut bins = vec![vec![0u64; FRACTION_LABELS.len()]; classes];
    let mut no_valid = 0;
    for r in rows {
        let valid =
            (u64::from(r.width) * u64::from(r.height)).saturating_sub(r.ignored + r.undeclared);
        if valid == 0 {
            no_valid += 1;
            continue;
        }
        for (c, &n) in r.class_pixels.iter().enumerate().take(classes) {
            let b = if n == 0 {
                0
            } else {
                let f = n as f64 / valid as f64;
                1 + FRACTION_EDGES
                    .iter()
                    .position(|&e| f < e)
                    .unwrap_or(FRACTION_EDGES.len() - 1)
            };
            bins[c][b] += 1;
        }
    }
    (bins, no_valid)
}

/// Builds every file of the report: the page, section by section, and the
/// documents behind it.
pub fn build(input: &Input<'_>) -> Result<Files, ReportError> {
    let s = input.stats;
    let w = input.weights;
    let mut files = Files::default();
    let mut page = Page::new(&format!("maskprep report: {}", s.meta.dataset));
    header(&mut page, input)?;
    verdict(&mut page, input)?;
    warnings(&mut page, input)?;
    weights(&mut page, input)?;
    classes(&mut page, &mut files, input)?;
    degree(&mut page, &mut files, input)?;
    cooccurrence(&mut page, &mut files, input)?;
    per_image(&mut page, &mut files, input)?;
    sizes(&mut page, &mut files, input)?;
    files_section(&mut page, input)?;
    let stats_json = {
        let mut t = serde_json::to_string_pretty(s).unwrap_or_default();
        t.push('\n');
        t
    };
    files.add(INDEX, page.finish().into_bytes());
    files.add("stats.json", stats_json.into_bytes());
    files.add(wdoc::JSON_FILE, w.to_json().into_bytes());
    files.add(wdoc::SAFETENSORS_FILE, w.safetensors());
    Ok(files)
}

/// Title, provenance line and navigation.
fn header(page: &mut Page, input: &Input<'_>) -> Result<(), ReportError> {
    let s = input.stats;
    page.h1(&format!(
        "Label report: <code>{}</code>",
        esc(&s.meta.dataset)
    ));
    let from = match &input.origin {
        Origin::Scan => "a scan of the masks".to_string(),
        Origin::File(p) => format!("<code>{}</code>", esc(p)),
    };
    let part = s
        .meta
        .partition
        .map(|p| format!(", partition {p}"))
        .unwrap_or_default();
    page.raw(&format!(
        "<p class=\"meta\">maskprep {} · from {from}{part} · {} masks read of {} · labels: <code>{}</code> ({}, {} classes) · \
         {} pixels: {} valid, {} ignored, {} undeclared</p>",
        esc(&s.maskprep_version),
        (s.files.masks_read),
        (s.files.masks_found),
        esc(&s.meta.labels_origin),
        s.meta.labels.kind.name(),
        s.classes.len(),
        (s.pixels.total),
        (s.pixels.valid),
        (s.pixels.ignored),
        (s.pixels.undeclared),
    ));
    page.raw(
        "<nav><a href=\"#verdict\">verdict</a><a href=\"#weights\">weights</a>\
         <a href=\"#classes\">classes</a><a href=\"#degree\">labels per pixel</a>\
         <a href=\"#cooccurrence\">co-occurrence</a><a href=\"#per-image\">per image</a>\
         <a href=\"#sizes\">sizes</a><a href=\"#files\">files</a></nav>",
    );
    Ok(())
}

/// Verdict and advice.
fn verdict(page: &mut Page, input: &Input<'_>) -> Result<(), ReportError> {
    let s = input.stats;
    let w = input.weights;
    page.h2("verdict", "Verdict and loss");
    let bad = s.verdict.kind == "empty";
    page.raw(&format!(
        "<div class=\"verdict{}\"><p><strong>{}</strong> → <strong>{}</strong></p><p>{}</p><p>{}</p></div>",
        if bad { " bad" } else { "" },
        esc(&s.verdict.kind),
        esc(&s.verdict.loss),
        inline(&s.verdict.reason),
        inline(&w.advice.summary),
    ));
    let pick = if w.advice.cross_entropy.recommended {
        &w.advice.cross_entropy
    } else {
        &w.advice.bce
    };
    let mut advice = vec![
        Row::new(vec![
            Cell::text("loss"),
            Cell::Html(format!("<code>{}</code>", esc(&pick.call))),
        ]),
        Row::new(vec![Cell::text("logits"), Cell::text(&pick.logits)]),
        Row::new(vec![Cell::text("targets"), Cell::text(&pick.targets)]),
        Row::new(vec![
            Cell::text("predictions"),
            Cell::text(&pick.predictions),
        ]),
    ];
    if let Some(ign) = &pick.ignored {
        advice.push(Row::new(vec![
            Cell::text("ignored pixels"),
            Cell::text(ign),
        ]));
    }
    page.table(&["", "advice"], &advice);
    Ok(())
}

/// Warnings: rare classes, undeclared colours, skipped files.
fn warnings(page: &mut Page, input: &Input<'_>) -> Result<(), ReportError> {
    let s = input.stats;
    let w = input.weights;
    let mut warns: Vec<String> = s.warnings.clone();
    for wm in &w.warnings {
        if !warns.contains(wm) {
            warns.push(wm.clone());
        }
    }
    page.warnings("Warnings", &warns);
    if !s.undeclared.is_empty() {
        page.h3("Undeclared colours (codes no class declares; left out of every frequency)");
        let rows: Vec<Row> = s
            .undeclared
            .iter()
            .map(|u| {
                Row::new(vec![
                    Cell::Html(format!("{}<code>{}</code>", swatch(&u.code), esc(&u.code))),
                    Cell::num(u.pixels),
                    Cell::num(u.images),
                    Cell::Html(
                        u.nearest
                            .as_ref()
                            .map(|n| {
                                let code = n.split(' ').next().unwrap_or("");
                                format!("{}{}", swatch(code), esc(n))
                            })
                            .unwrap_or_default(),
                    ),
                    Cell::text(
                        u.examples
                            .iter()
                            .map(|e| format!("`{e}`"))
                            .collect::<Vec<_>>()
                            .join(", "),
                    ),
                ])
            })
            .collect();
        page.table(
            &["code", "pixels", "masks", "nearest declared", "e.g."],
            &rows,
        );
    }
    Ok(())
}

/// Weights: the tensor the verdict's loss takes comes first (the chosen
/// scheme's `weight` for single-label data, `pos_weight` for multi-label).
fn weights(page: &mut Page, input: &Input<'_>) -> Result<(), ReportError> {
    let s = input.stats;
    let w = input.weights;
    let lead_weight = wdoc::leads_with_weight(w);
    page.h2("weights", "Loss weights");
    let weight = format!(
        "<code>weight</code> ({}) shaped {} for <code>CrossEntropyLoss</code>",
        esc(&w.weight.scheme),
        esc(&format!("{:?}", w.weight.shape)),
    );
    let pos = format!(
        "<code>pos_weight</code> = (N − n<sub>c</sub>) / n<sub>c</sub>, shaped {} for \
         <code>BCEWithLogitsLoss</code>",
        esc(&format!("{:?}", w.pos_weight.shape)),
    );
    let (first, second) = if lead_weight {
        (weight, pos)
    } else {
        (pos, weight)
    };
    page.p(&format!(
        "{first}; {second}. Every scheme is listed; the chosen one is marked *. \
         The tensors are in <code>{}</code> beside this page, every number in <code>{}</code>.",
        wdoc::SAFETENSORS_FILE,
        wdoc::JSON_FILE,
    ));
    let schemes = wdoc::ordered_schemes(w);
    let head = weights_head(w, &schemes, lead_weight);
    let head_refs: Vec<&str> = head.iter().map(String::as_str).collect();
    let rows = weights_rows(s, w, &schemes, lead_weight);
    page.table(&head_refs, &rows);
    weights_notes(page, w, &schemes);
    page.h3("PyTorch");
    page.code(&wdoc::python_snippet(w, wdoc::SAFETENSORS_FILE));
    Ok(())
}

/// The weights table's head: the chosen scheme first and marked, with
/// `pos_weight` before the schemes or after them (when `weight` leads).
fn weights_head(w: &WeightsDoc, schemes: &[&SchemeOut], lead_weight: bool) -> Vec<String> {
    let mut head: Vec<String> = vec![
        "index".into(),
        "class".into(),
        "pixels".into(),
        "frequency".into(),
    ];
    if !lead_weight {
        head.push("pos_weight".into());
    }
    for sc in schemes {
        let mark = if sc.name == w.weight.scheme { "*" } else { "" };
        // The beta the column was computed with, in its head (the note
        // under the table says why).
        let param = if sc.name != Scheme::EffectiveNumber.name() {
            String::new()
        } else if w.options.beta_from == BETA_GIVEN {
            format!(" (β = {})", w.options.beta)
        } else {
            " (β = 1 − 1/N)".to_string()
        };
        head.push(format!("{mark}{}{param}", sc.name));
    }
    if lead_weight {
        head.push("pos_weight".into());
    }
    head
}

/// A row per class of the weights table, rare classes flagged.
fn weights_rows(
    s: &StatsDoc,
    w: &WeightsDoc,
    schemes: &[&SchemeOut],
    lead_weight: bool,
) -> Vec<Row> {
    w.weight
        .classes
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let pixels = w.weight.pixels.get(i).copied().unwrap_or(0);
            let rare = s.classes.get(i).is_some_and(|c| c.rare);
            let mut cells = vec![
                Cell::num(i),
                Cell::text(name),
                Cell::num(pixels),
                Cell::num(percent(ratio(pixels, w.counts.valid_pixels))),
            ];
            let pos = Cell::num(wdoc::pos_weight_cell(w, i));
            let mut values: Vec<Cell> = schemes
                .iter()
                .map(|sc| {
                    Cell::num(
                        sc.values
                            .get(i)
                            .map(|v| format!("{v:.4}"))
                            .unwrap_or_else(|| "–".into()),
                    )
                })
                .collect();
            if lead_weight {
                values.push(pos);
            } else {
                values.insert(0, pos);
            }
            cells.extend(values);
            Row::flagged(cells, rare)
        })
        .collect()
}

/// Under the weights table: each scheme's setting, the pos_weight footnote,
/// and the formulas and rules.
fn weights_notes(page: &mut Page, w: &WeightsDoc, schemes: &[&SchemeOut]) {
    // Each scheme's parameter (effective-number's beta) next to its column.
    for sc in schemes {
        if let Some(setting) = &sc.setting {
            page.note(&format!("`{}`: {setting}.", sc.name));
        }
    }
    if let Some(foot) = wdoc::pos_weight_footnote(w) {
        page.note(&foot);
    }
    let notes: Vec<String> = schemes
        .iter()
        .map(|sc| {
            let note = sc
                .note
                .as_ref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            format!("`{}`: {}; {}{note}", sc.name, sc.formula, sc.normalisation)
        })
        .collect();
    page.raw("<details><summary>formulas and rules</summary><ul>");
    for n in notes.iter().chain([
        &w.rules.no_pixels,
        &w.rules.every_pixel,
        &w.rules.ignored,
        &w.rules.background,
        &w.rules.max_weight,
    ]) {
        page.raw(&format!("<li>{}</li>", inline(n)));
    }
    page.raw("</ul></details>");
}

/// Class frequency.
fn classes(page: &mut Page, files: &mut Files, input: &Input<'_>) -> Result<(), ReportError> {
    let s = input.stats;
    let names: Vec<String> = s.classes.iter().map(|c| c.name.clone()).collect();
    page.h2("classes", "Class pixels");
    let values: Vec<f64> = s.classes.iter().map(|c| c.frequency * 100.0).collect();
    let flagged: Vec<bool> = s.classes.iter().map(|c| c.rare).collect();
    let notes: Vec<String> = s
        .classes
        .iter()
        .map(|c| {
            if c.pixels == 0 {
                "no pixels".to_string()
            } else {
                format!(
                    "{} px · {}{}",
                    thousands(c.pixels),
                    percent(c.frequency),
                    if c.rare { " · rare" } else { "" }
                )
            }
        })
        .collect();
    let rare_pct = s.meta.rare_below * 100.0;
    let subtitle = format!(
        "share of valid pixels ({} valid); orange: rare, below {}",
        thousands(s.pixels.valid),
        percent(s.meta.rare_below)
    );
    let plot = plots::hbars(&HBars {
        file: "class_pixels.png",
        title: "Class pixel frequency",
        subtitle: &subtitle,
        x_label: "% of valid pixels (log scale)",
        labels: &names,
        values: &values,
        flagged: &flagged,
        notes: &notes,
        log: true,
        marker: (rare_pct > 0.0).then(|| {
            (
                rare_pct,
                format!("rare below {}", percent(s.meta.rare_below)),
            )
        }),
        x_max: None,
    })?;
    page.figure(
        &plot.file,
        plot.width,
        plot.height,
        "class pixel frequency, log scale",
        "Pixels of each class as a share of valid pixels (ignored and undeclared pixels excluded), on a log scale; rare classes in orange.",
    );
    files.add(plot.file, plot.png);
    let rows: Vec<Row> = s
        .classes
        .iter()
        .enumerate()
        .map(|(i, c)| {
            Row::flagged(
                vec![
                    Cell::num(i),
                    Cell::text(&c.name),
                    Cell::num(c.pixels),
                    Cell::num(percent(c.frequency)),
                    Cell::num(c.images),
                    Cell::num(c.image_pixels),
                    Cell::num(wdoc::pos_weight_cell(input.weights, i)),
                    Cell::text(if c.rare { "rare" } else { "" }),
                ],
                c.rare,
            )
        })
        .collect();
    page.table(
        &[
            "index",
            "class",
            "pixels",
            "frequency",
            "masks holding it",
            "pixels of those masks",
            "pos_weight",
            "",
        ],
        &rows,
    );
    if let Some(foot) = wdoc::pos_weight_footnote(input.weights) {
        page.note(&foot);
    }
    class_images(page, files, s, &names, &flagged)
}

/// Masks holding each class: a plot (the numbers are in the class table).
fn class_images(
    page: &mut Page,
    files: &mut Files,
    s: &StatsDoc,
    names: &[String],
    flagged: &[bool],
) -> Result<(), ReportError> {
    let masks = s.files.masks_read;
    let values: Vec<f64> = s.classes.iter().map(|c| c.images as f64).collect();
    let notes: Vec<String> = s
        .classes
        .iter()
        .map(|c| {
            format!(
                "{} of {} ({})",
                c.images,
                masks,
                percent(ratio(c.images, masks))
            )
        })
        .collect();
    let plot = plots::hbars(&HBars {
        file: "class_images.png",
        title: "Masks containing each class",
        subtitle: &format!("{masks} masks read; orange: rare class"),
        x_label: "masks holding at least one pixel of the class",
        labels: names,
        values: &values,
        flagged,
        notes: &notes,
        log: false,
        marker: None,
        x_max: Some(masks as f64),
    })?;
    page.figure(
        &plot.file,
        plot.width,
        plot.height,
        "masks containing each class",
        "How many masks hold at least one pixel of each class (the numbers are in the table above).",
    );
    files.add(plot.file, plot.png);
    Ok(())
}

/// Labels per pixel.
fn degree(page: &mut Page, files: &mut Files, input: &Input<'_>) -> Result<(), ReportError> {
    let s = input.stats;
    page.h2("degree", "Labels per pixel");
    let d = &s.label_degree;
    let degree = [d.zero, d.one, d.two, d.three_plus];
    let labels: Vec<String> = ["0 classes", "1 class", "2 classes", "3+ classes"]
        .iter()
        .map(|l| l.to_string())
        .collect();
    let values: Vec<f64> = degree.iter().map(|&v| v as f64).collect();
    let notes: Vec<String> = degree
        .iter()
        .map(|&v| format!("{} ({})", thousands(v), percent(ratio(v, s.pixels.valid))))
        .collect();
    let plot = plots::vbars(&VBars {
        file: "label_degree.png",
        title: "Labels per valid pixel",
        subtitle: "2+ classes on one pixel means multi-label masks (BCEWithLogitsLoss)",
        x_label: "classes carried by the pixel",
        y_label: "valid pixels",
        labels: &labels,
        values: &values,
        notes: &notes,
    })?;
    page.figure(
        &plot.file,
        plot.width,
        plot.height,
        "labels per pixel",
        "Valid pixels by how many classes they carry.",
    );
    files.add(plot.file, plot.png);
    let rows: Vec<Row> = labels
        .iter()
        .zip(degree)
        .map(|(l, v)| {
            Row::new(vec![
                Cell::text(l),
                Cell::num(v),
                Cell::num(percent(ratio(v, s.pixels.valid))),
            ])
        })
        .collect();
    page.table(&["labels", "valid pixels", "share"], &rows);
    page.p(&format!(
        "Labelled pixels carrying 2+ classes: {}.",
        esc(&percent(s.verdict.multi_label_fraction))
    ));
    Ok(())
}

/// Co-occurrence: one sentence for single-label data (every overlap is 0);
/// for multi-label data the pairs that overlap most, a heatmap (classes by
/// index past [`NAMED_HEATMAP`]) and, for a few classes, the whole matrix.
fn cooccurrence(page: &mut Page, files: &mut Files, input: &Input<'_>) -> Result<(), ReportError> {
    let s = input.stats;
    page.h2("cooccurrence", "Class co-occurrence");
    if s.verdict.kind != "multi-label" {
        page.p(&format!(
            "No pixel carries two classes ({} data), so every pair of classes co-occurs on 0 \
             pixels; each class's own pixels are in the class table above.",
            esc(&s.verdict.kind)
        ));
        return Ok(());
    }
    let c = s.classes.len();
    let pairs = s.top_pairs();
    page.p(&format!(
        "{} of {} class pairs share pixels; the {} that share the most:",
        pairs.len(),
        c * c.saturating_sub(1) / 2,
        pairs.len().min(TOP_PAIRS)
    ));
    let name = |i: usize| s.classes.get(i).map(|x| x.name.as_str()).unwrap_or("");
    let share = |v: u64, i: usize| {
        let n = s.classes.get(i).map_or(0, |x| x.pixels);
        percent(ratio(v, n))
    };
    let rows: Vec<Row> = pairs
        .iter()
        .take(TOP_PAIRS)
        .map(|&Pair { a, b, pixels: v }| {
            Row::new(vec![
                Cell::text(format!("{a} `{}`", name(a))),
                Cell::text(format!("{b} `{}`", name(b))),
                Cell::num(v),
                Cell::num(share(v, a)),
                Cell::num(share(v, b)),
            ])
        })
        .collect();
    page.table(
        &[
            "class a",
            "class b",
            "pixels with both",
            "share of a's pixels",
            "share of b's pixels",
        ],
        &rows,
    );
    let named = c <= NAMED_HEATMAP;
    let labels: Vec<String> = if named {
        s.classes.iter().map(|x| x.name.clone()).collect()
    } else {
        (0..c).map(|i| i.to_string()).collect()
    };
    let subtitle = if named {
        "pixels carrying both classes; the diagonal is each class's pixels".to_string()
    } else {
        format!(
            "{c} classes by index (names in the class table); the diagonal is each class's pixels"
        )
    };
    let plot = plots::heatmap(&Heatmap {
        file: "cooccurrence.png",
        title: "Class co-occurrence",
        subtitle: &subtitle,
        rows: &labels,
        cols: &labels,
        values: &s.cooccurrence,
        row_label: "class",
        col_label: "class",
        numbers: named,
    })?;
    page.figure(
        &plot.file,
        plot.width,
        plot.height,
        "class co-occurrence heatmap",
        "Pixels carrying both classes (colour on a log scale); off-diagonal cells are overlaps.",
    );
    files.add(plot.file, plot.png);
    if c <= MATRIX_CLASSES {
        let names: Vec<String> = s.classes.iter().map(|x| x.name.clone()).collect();
        matrix_table(page, &names, &names, &s.cooccurrence);
    }
    Ok(())
}

/// Per image.
fn per_image(page: &mut Page, files: &mut Files, input: &Input<'_>) -> Result<(), ReportError> {
    let s = input.stats;
    let names: Vec<String> = s.classes.iter().map(|c| c.name.clone()).collect();
    page.h2("per-image", "Per-image class fraction");
    match input.rows {
        Some(rows) => {
            let (bins, no_valid) = fraction_bins(rows, names.len());
            let cols: Vec<String> = FRACTION_LABELS.iter().map(|l| l.to_string()).collect();
            let plot = plots::heatmap(&Heatmap {
                file: "class_fraction.png",
                title: "Masks by class fraction",
                subtitle: "masks per class and share of the mask's valid pixels in that class",
                rows: &names,
                cols: &cols,
                values: &bins,
                row_label: "class",
                col_label: "share of the mask's valid pixels",
                numbers: true,
            })?;
            page.figure(
                &plot.file,
                plot.width,
                plot.height,
                "masks by class fraction",
                "For each class, how many masks give it no pixel, under 1%, 1–5% … of their valid pixels. A class that is rare overall may still fill a few masks.",
            );
            files.add(plot.file, plot.png);
            matrix_table(page, &names, &cols, &bins);
            if no_valid > 0 {
                page.note(&format!(
                    "{no_valid} mask(s) have no valid pixel and are left out."
                ));
            }
        }
        None => {
            let from = match &input.origin {
                Origin::File(p) => format!("`{p}`"),
                Origin::Scan => "the input".to_string(),
            };
            page.note(&format!(
                "Skipped: the per-image class fraction needs one row per mask, which {from} does not \
                 hold. Run `maskprep report DIR` (or `maskprep stats DIR --report OUT`) on the dataset \
                 to draw it."
            ));
        }
    }
    Ok(())
}

/// Sizes.
fn sizes(page: &mut Page, files: &mut Files, input: &Input<'_>) -> Result<(), ReportError> {
    let s = input.stats;
    let masks = s.files.masks_read;
    page.h2("sizes", "Mask sizes");
    let mut sizes: Vec<(String, u64)> = s
        .image_sizes
        .iter()
        .map(|z| (format!("{}x{}", z.width, z.height), z.masks))
        .collect();
    sizes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut shown: Vec<(String, u64)> = sizes.iter().take(MAX_SIZES).cloned().collect();
    if sizes.len() > MAX_SIZES {
        let rest: u64 = sizes[MAX_SIZES..].iter().map(|z| z.1).sum();
        shown.push((format!("{} other sizes", sizes.len() - MAX_SIZES), rest));
    }
    let labels: Vec<String> = shown.iter().map(|z| z.0.clone()).collect();
    let values: Vec<f64> = shown.iter().map(|z| z.1 as f64).collect();
    let notes: Vec<String> = shown
        .iter()
        .map(|z| format!("{} ({})", z.1, percent(ratio(z.1, masks))))
        .collect();
    let plot = plots::hbars(&HBars {
        file: "image_sizes.png",
        title: "Mask sizes",
        subtitle: &format!(
            "{} distinct size{} (width x height), most common first",
            sizes.len(),
            if sizes.len() == 1 { "" } else { "s" }
        ),
        x_label: "masks",
        labels: &labels,
        values: &values,
        flagged: &[],
        notes: &notes,
        log: false,
        marker: None,
        x_max: None,
    })?;
    page.figure(
        &plot.file,
        plot.width,
        plot.height,
        "mask sizes",
        "Masks by size; networks that need one input size must resize or tile the others.",
    );
    files.add(plot.file, plot.png);
    let rows: Vec<Row> = sizes
        .iter()
        .map(|(z, n)| {
            Row::new(vec![
                Cell::text(z),
                Cell::num(n),
                Cell::num(percent(ratio(*n, masks))),
            ])
        })
        .collect();
    page.table(&["size", "masks", "share"], &rows);
    let formats: Vec<Row> = s
        .mask_formats
        .iter()
        .map(|(f, n)| Row::new(vec![Cell::text(format!("{f:?}")), Cell::num(n)]))
        .collect();
    page.table(&["mask format", "masks"], &formats);
    Ok(())
}

/// Files.
fn files_section(page: &mut Page, input: &Input<'_>) -> Result<(), ReportError> {
    let s = input.stats;
    page.h2("files", "Files");
    let f = &s.files;
    page.p(&format!(
        "{} masks found, {} read, {} skipped.",
        f.masks_found,
        f.masks_read,
        f.bad.len()
    ));
    let problems = f.problem_lines();
    if problems.is_empty() {
        page.p("Every mask was read; no pairing problem.");
    } else {
        page.warnings("File problems", &problems);
    }
    Ok(())
}

/// A count matrix as a table with row and column names.
fn matrix_table(page: &mut Page, rows: &[String], cols: &[String], values: &[Vec<u64>]) {
    let mut head: Vec<&str> = vec![""];
    head.extend(cols.iter().map(String::as_str));
    let body: Vec<Row> = rows
        .iter()
        .zip(values)
        .map(|(name, vals)| {
            let mut cells = vec![Cell::text(name)];
            cells.extend(vals.iter().map(|v| Cell::num(*v)));
            Row::new(cells)
        })
        .collect();
    page.table(&head, &body);
}

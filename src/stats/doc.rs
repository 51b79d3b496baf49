//! The stats document: [`Counts`] plus what is derived from them
//! (frequencies, pos_weight, rare flags, the verdict), as JSON for machines
//! and as a table for people. A document can be read back into `Counts`, so
//! partial documents merge exactly (`maskprep merge`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::scan::SizeMismatch;
use super::{BadFile, Counts, LISTED, LISTED_PARTITION, Undeclared, UndeclaredRest};
use crate::decode::MaskFormat;
use crate::format::table::{Column, Table, Width};
use crate::format::{percent, problem, ratio};
use crate::labels::evidence::{Confidence, Detection};
use crate::labels::{Kind, LabelMap, LabelSpec, parse_hex};
use crate::output::Console;
use crate::source::Partition;
use crate::weight_rules::rules::{self, no_pixels_warning};
use crate::weight_rules::{PosWeightRule, written_pos_weight};

/// Identifies the document format; another value is rejected on read.
pub const FORMAT: &str = "maskprep-stats/1";

/// Where the counts came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub dataset: String,
    pub partition: Option<Partition>,
    pub labels: LabelSpec,
    pub labels_origin: String,
    /// Classes below this fraction of valid pixels are flagged as rare.
    pub rare_below: f64,
}

/// Masks found, read and skipped, and pairing problems.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Files {
    pub masks_found: u64,
    pub masks_read: u64,
    pub bad: Vec<BadFile>,
    pub masks_without_images: Vec<String>,
    pub images_without_masks: Vec<String>,
    pub size_mismatches: Vec<SizeMismatch>,
}

impl Files {
    /// Every file problem, a line each, as the table and the report list
    /// them: masks skipped, unpaired files, size mismatches.
    pub fn problem_lines(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        out.extend(
            self.bad
                .iter()
                .map(|b| problem::skipped(&b.path, &b.reason)),
        );
        out.extend(
            self.masks_without_images
                .iter()
                .map(|m| problem::unpaired("mask", "image", m)),
        );
        out.extend(
            self.images_without_masks
                .iter()
                .map(|i| problem::unpaired("image", "mask", i)),
        );
        out.extend(self.size_mismatches.iter().map(SizeMismatch::line));
        out
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pixels {
    pub total: u64,
    /// Neither ignored nor undeclared: the N of every frequency.
    pub valid: u64,
    pub ignored: u64,
    pub undeclared: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassRow {
    pub name: String,
    pub pixels: u64,
    /// pixels / valid pixels.
    pub frequency: f64,
    /// Masks holding at least one pixel of the class.
    pub images: u64,
    /// Valid pixels of those masks (S_c of median-frequency weighting).
    pub image_pixels: u64,
    /// (valid - pixels) / pixels, the formula's value; null when the class
    /// has no pixels. `maskprep weights` and the tables show what is written
    /// (1 where a rule sets it, see `weights::rules`).
    pub pos_weight: Option<f64>,
    pub rare: bool,
}

/// Valid pixels by how many classes they carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Degree {
    #[serde(rename = "0")]
    pub zero: u64,
    #[serde(rename = "1")]
    pub one: u64,
    #[serde(rename = "2")]
    pub two: u64,
    #[serde(rename = "3+")]
    pub three_plus: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UndeclaredRow {
    /// `#rrggbb` for RGB masks, the value for index masks.
    pub code: String,
    pub pixels: u64,
    pub images: u64,
    /// The nearest declared colour and its meaning (palette maps).
    pub nearest: Option<String>,
    pub examples: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SizeRow {
    pub width: u32,
    pub height: u32,
    pub masks: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// `multi-label`, `single-label` or `empty`.
    pub kind: String,
    /// `BCEWithLogitsLoss` or `CrossEntropyLoss`.
    pub loss: String,
    /// Share of labelled pixels carrying 2+ classes.
    pub multi_label_fraction: f64,
    pub reason: String,
}

/// The whole stats output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsDoc {
    pub format: String,
    pub maskprep_version: String,
    #[serde(flatten)]
    pub meta: Meta,
    /// How sure the detected label map is, its evidence and the other
    /// reading (absent when the map was given with `--labels` or read from
    /// the dataset's own map file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels_detection: Option<Detection>,
    pub files: Files,
    pub pixels: Pixels,
    pub classes: Vec<ClassRow>,
    pub label_degree: Degree,
    /// Pixels carrying both classes, `[a][b]`; the diagonal is each class's pixels.
    pub cooccurrence: Vec<Vec<u64>>,
    /// The largest undeclared codes by pixels (at most [`LISTED`], or
    /// [`LISTED_PARTITION`] in a partition's document).
    pub undeclared: Vec<UndeclaredRow>,
    /// The undeclared codes not listed, summed (absent when all are listed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undeclared_rest: Option<UndeclaredRest>,
    pub image_sizes: Vec<SizeRow>,
    pub mask_formats: BTreeMap<MaskFormat, u64>,
    pub verdict: Verdict,
    pub warnings: Vec<String>,
}

/// One warning for the rare classes (with pixels, below `rare_below`),
/// however many there are.
fn rare_warning(classes: &[ClassRow], rare_below: f64) -> Option<String> {
    let rare: Vec<&ClassRow> = classes.iter().filter(|c| c.rare && c.pixels > 0).collect();
    match rare.as_slice() {
        [] => None,
        [c] => Some(format!(
            "class `{}` is rare: {} of valid pixels (below {})",
            c.name,
            percent(c.frequency),
            percent(rare_below)
        )),
        many => Some(format!(
            "{} classes are rare, below {} of valid pixels: {}",
            many.len(),
            percent(rare_below),
            many.iter()
                .map(|c| format!("`{}` {}", c.name, percent(c.frequency)))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The warning for pixels of codes no class declares; `at_most` when the
/// count adds codes that parts summed (a code in two parts counts twice).
pub fn undeclared_warning(pixels: u64, total: u64, codes: u64, at_most: bool) -> String {
    let up_to = if at_most { "up to " } else { "" };
    format!(
        "{pixels} pixels ({} of all) have {up_to}{codes} undeclared code(s); they are left out \
         of every count and frequency; declare them in the label map",
        percent(ratio(pixels, total))
    )
}

/// Is `w` the document's [`undeclared_warning`]?
pub fn is_undeclared_warning(w: &str) -> bool {
    w.contains(" undeclared code(s); they are left out")
}

/// The warning for masks that could not be read.
pub fn unreadable_warning(masks: usize) -> String {
    format!("{masks} mask(s) could not be read and are left out of every count")
}

/// Two classes (by index, `a < b`) and the pixels carrying both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    pub a: usize,
    pub b: usize,
    pub pixels: u64,
}

/// Most classes whose whole co-occurrence matrix is printed (wider ones
/// list their [`TOP_PAIRS`]).
pub const MATRIX_CLASSES: usize = 10;
/// Most class pairs listed by co-occurrence.
pub const TOP_PAIRS: usize = 20;

impl StatsDoc {
    /// Derives the document from exact counts.
    pub fn new(meta: Meta, counts: &Counts, mut files: Files, map: &LabelMap) -> Self {
        let valid = counts.valid();
        let names = &meta.labels.classes;
        let c = counts.classes();
        let classes: Vec<ClassRow> = (0..c)
            .map(|i| {
                let n = counts.class_pixels[i];
                let frequency = ratio(n, valid);
                let rare = frequency < meta.rare_below;
                let name = names[i].clone();
                ClassRow {
                    name,
                    pixels: n,
                    frequency,
                    images: counts.class_images[i],
                    image_pixels: counts.class_image_pixels[i],
                    pos_weight: (n > 0).then(|| (valid - n) as f64 / n as f64),
                    rare,
                }
            })
            .collect();
        let empty: Vec<&str> = classes
            .iter()
            .filter(|c| c.pixels == 0)
            .map(|c| c.name.as_str())
            .collect();
        let mut warnings: Vec<String> = no_pixels_warning(&empty).into_iter().collect();
        warnings.extend(rare_warning(&classes, meta.rare_below));
        let cap = if meta.partition.is_some() {
            LISTED_PARTITION
        } else {
            LISTED
        };
        let (listed, rest) = bound_undeclared(counts, cap);
        let undeclared: Vec<UndeclaredRow> = listed
            .into_iter()
            .map(|(code, u)| UndeclaredRow {
                code: code.clone(),
                pixels: u.pixels,
                images: u.images,
                nearest: parse_hex(code)
                    .and_then(|rgb| code.starts_with('#').then(|| map.nearest(rgb)).flatten()),
                examples: u.examples.clone(),
            })
            .collect();
        if counts.undeclared_pixels > 0 {
            let codes = (undeclared.len() as u64).saturating_add(rest.map_or(0, |r| r.codes));
            warnings.push(undeclared_warning(
                counts.undeclared_pixels,
                counts.pixels,
                codes,
                counts.undeclared_rest.codes > 0,
            ));
        }
        let detection = map.detection.clone();
        if let Some(w) = detection.as_ref().and_then(Detection::warning) {
            warnings.push(w);
        }
        if !counts.bad.is_empty() {
            warnings.push(unreadable_warning(counts.bad.len()));
        }
        files.masks_read = counts.masks;
        files.bad = counts.bad.clone();
        let d = counts.degree;
        let cooccurrence = (0..c)
            .map(|a| counts.cooc[a * c..(a + 1) * c].to_vec())
            .collect();
        let mut verdict = verdict(&counts.degree, valid, meta.labels.kind, counts.ignored > 0);
        if let Some(d) = detection
            .as_ref()
            .filter(|d| d.confidence == Confidence::Low)
        {
            verdict.reason.push_str(&format!(
                "; caution: this rests on a guessed label map (low confidence, read as {}); \
                 the other reading ({}) may change it: settle it with `--labels`",
                d.reading,
                d.alternative.as_deref().unwrap_or("another map")
            ));
        }
        Self {
            format: FORMAT.to_string(),
            maskprep_version: env!("CARGO_PKG_VERSION").to_string(),
            meta,
            labels_detection: detection,
            files,
            pixels: Pixels {
                total: counts.pixels,
                valid,
                ignored: counts.ignored,
                undeclared: counts.undeclared_pixels,
            },
            classes,
            label_degree: Degree {
                zero: d[0],
                one: d[1],
                two: d[2],
                three_plus: d[3],
            },
            cooccurrence,
            undeclared,
            undeclared_rest: rest,
            image_sizes: counts
                .sizes
                .iter()
                .map(|(&(width, height), &masks)| SizeRow {
                    width,
                    height,
                    masks,
                })
                .collect(),
            mask_formats: counts.formats.clone(),
            verdict,
            warnings,
        }
    }

    /// The exact counts behind the document (for merging).
    pub fn counts(&self) -> Counts {
        let c = self.classes.len();
        let d = &self.label_degree;
        Counts {
            masks: self.files.masks_read,
            pixels: self.pixels.total,
            ignored: self.pixels.ignored,
            undeclared_pixels: self.pixels.undeclared,
            class_pixels: self.classes.iter().map(|r| r.pixels).collect(),
            class_images: self.classes.iter().map(|r| r.images).collect(),
            class_image_pixels: self.classes.iter().map(|r| r.image_pixels).collect(),
            degree: [d.zero, d.one, d.two, d.three_plus],
            cooc: self
                .cooccurrence
                .iter()
                .flat_map(|r| r.iter().copied())
                .collect::<Vec<_>>()
                .into_iter()
                .take(c * c)
                .collect(),
            undeclared: self
                .undeclared
                .iter()
                .map(|u| {
                    (
                        u.code.clone(),
                        Undeclared {
                            pixels: u.pixels,
                            images: u.images,
                            examples: u.examples.clone(),
                        },
                    )
                })
                .collect(),
            undeclared_rest: self.undeclared_rest.unwrap_or_default(),
            sizes: self
                .image_sizes
                .iter()
                .map(|s| ((s.width, s.height), s.masks))
                .collect(),
            formats: self.mask_formats.clone(),
            bad: self.files.bad.clone(),
        }
    }

    /// The class pairs sharing pixels, most shared first (ties by index).
    pub fn top_pairs(&self) -> Vec<Pair> {
        let c = self.classes.len();
        let mut pairs: Vec<Pair> = (0..c)
            .flat_map(|a| (a + 1..c).map(move |b| (a, b)))
            .filter_map(|(a, b)| {
                let pixels = self.cooccurrence.get(a).and_then(|r| r.get(b)).copied()?;
                (pixels > 0).then_some(Pair { a, b, pixels })
            })
            .collect();
        pairs.sort_by(|x, y| y.pixels.cmp(&x.pixels).then((x.a, x.b).cmp(&(y.a, y.b))));
        pairs
    }

    /// Did every mask read?
    pub fn complete(&self) -> bool {
        self.files.bad.is_empty()
    }

    /// 0 when every mask was read, 1 when some were skipped.
    pub fn exit_code(&self) -> u8 {
        if self.complete() { 0 } else { 1 }
    }

    /// Lists skipped files (always) and pairing problems (unless quiet).
    pub fn report_problems(&self, console: &Console) {
        let f = &self.files;
        for b in &f.bad {
            console.skipped(&b.path, &b.reason);
        }
        let pairing = f.masks_without_images.len() + f.images_without_masks.len();
        if pairing > 0 {
            console.warn(&format!(
                "{} mask(s) without image, {} image(s) without mask (listed in the output)",
                f.masks_without_images.len(),
                f.images_without_masks.len()
            ));
        }
        for z in &f.size_mismatches {
            console.warn(&z.sentence());
        }
    }
}

/// The `cap` largest undeclared codes by pixels (ties by code), and the
/// rest summed with what earlier bounding already summed. Bounding happens
/// only here, when a document is made: counts stay exact, and a merge of
/// partition documents that each listed all their codes (at most
/// [`LISTED_PARTITION`]) equals the whole run.
fn bound_undeclared(
    counts: &Counts,
    cap: usize,
) -> (Vec<(&String, &Undeclared)>, Option<UndeclaredRest>) {
    let mut all: Vec<(&String, &Undeclared)> = counts.undeclared.iter().collect();
    all.sort_by(|a, b| b.1.pixels.cmp(&a.1.pixels).then_with(|| a.0.cmp(b.0)));
    let mut rest = counts.undeclared_rest;
    for (_, u) in all.iter().skip(cap) {
        rest.codes += 1;
        rest.pixels += u.pixels;
        rest.masks += u.images;
    }
    all.truncate(cap);
    (all, (rest != UndeclaredRest::default()).then_some(rest))
}

/// Single- or multi-label, and the loss it implies.
fn verdict(d: &[u64; 4], valid: u64, kind: Kind, has_ignore: bool) -> Verdict {
    let labelled = d[1] + d[2] + d[3];
    let multi = d[2] + d[3];
    let frac = ratio(multi, labelled);
    if labelled == 0 {
        return Verdict {
            kind: "empty".into(),
            loss: "none".into(),
            multi_label_fraction: 0.0,
            reason: format!(
                "no valid pixel carries a class ({valid} valid pixels): nothing to train on"
            ),
        };
    }
    if multi > 0 {
        return Verdict {
            kind: "multi-label".into(),
            loss: "BCEWithLogitsLoss".into(),
            multi_label_fraction: frac,
            reason: format!(
                "{} of labelled pixels carry 2+ classes: multi-label, use BCEWithLogitsLoss \
                 with pos_weight shaped [C,1,1] and float multi-hot targets [N,C,H,W]",
                percent(frac)
            ),
        };
    }
    let ignore = if has_ignore {
        ", ignore_index for ignored pixels"
    } else {
        ""
    };
    if kind == Kind::Binary {
        let fg = d[1];
        let pos_weight = if fg > 0 {
            format!("{:.4}", (valid - fg) as f64 / fg as f64)
        } else {
            "undefined".into()
        };
        return Verdict {
            kind: "single-label".into(),
            loss: "BCEWithLogitsLoss".into(),
            multi_label_fraction: 0.0,
            reason: format!(
                "binary: one foreground class on {} of valid pixels, the rest background (no \
                 class, not ignored); use BCEWithLogitsLoss with a 1-channel output, \
                 pos_weight={pos_weight} shaped [1,1,1] and float targets [N,1,H,W]; predict \
                 with logits > 0 (or CrossEntropyLoss with 2 outputs, background as class 0)",
                percent(ratio(fg, valid))
            ),
        };
    }
    let overlap_note = if kind == Kind::RgbBits {
        " (the label map allows overlaps, but none occur in these masks)"
    } else {
        ""
    };
    let reason = if d[0] > 0 {
        format!(
            "no labelled pixel carries 2+ classes: single-label{overlap_note}; {} of valid \
             pixels carry no class, so use CrossEntropyLoss with a background class added \
             (C+1 outputs, weight shaped [C+1]), targets as class indices [N,H,W]{ignore}",
            percent(ratio(d[0], valid))
        )
    } else {
        format!(
            "every valid pixel carries exactly one class: single-label{overlap_note}, use \
             CrossEntropyLoss with weight shaped [C], targets as class indices [N,H,W]{ignore}"
        )
    };
    Verdict {
        kind: "single-label".into(),
        loss: "CrossEntropyLoss".into(),
        multi_label_fraction: 0.0,
        reason,
    }
}

/// The human table.
pub fn render_table(doc: &StatsDoc) -> String {
    let mut s = String::new();
    render_head(&mut s, doc);
    let table = class_table(doc);
    table.write_to(&mut s);
    if doc
        .classes
        .iter()
        .any(|c| marked(c.pixels, doc.pixels.valid))
    {
        let _ = writeln!(s, "{}", rules::MARKED);
    }
    let p = &doc.pixels;
    let d = &doc.label_degree;
    let _ = writeln!(
        s,
        "\nlabels per valid pixel: 0: {} ({}), 1: {} ({}), 2: {} ({}), 3+: {} ({})",
        d.zero,
        percent(ratio(d.zero, p.valid)),
        d.one,
        percent(ratio(d.one, p.valid)),
        d.two,
        percent(ratio(d.two, p.valid)),
        d.three_plus,
        percent(ratio(d.three_plus, p.valid)),
    );
    render_cooccurrence(&mut s, doc);
    let sizes: Vec<String> = doc
        .image_sizes
        .iter()
        .map(|z| format!("{}x{}: {}", z.width, z.height, z.masks))
        .collect();
    let _ = writeln!(s, "\nmask sizes: {}", sizes.join(", "));
    render_undeclared(&mut s, doc);
    for line in doc.files.problem_lines() {
        let _ = writeln!(s, "{line}");
    }
    for wmsg in &doc.warnings {
        let _ = writeln!(s, "warning: {wmsg}");
    }
    let _ = writeln!(s, "\nverdict: {}", doc.verdict.reason);
    s
}

/// The dataset, the masks read and the pixels counted.
fn render_head(s: &mut String, doc: &StatsDoc) {
    let m = &doc.meta;
    let part = m
        .partition
        .map(|p| format!(", partition {p}"))
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "maskprep stats: `{}`{part}: {} masks read of {}; labels: {} ({})",
        m.dataset,
        doc.files.masks_read,
        doc.files.masks_found,
        m.labels_origin,
        m.labels.kind.name()
    );
    let p = &doc.pixels;
    let _ = writeln!(
        s,
        "pixels: {} total, {} valid, {} ignored, {} undeclared\n",
        p.total, p.valid, p.ignored, p.undeclared
    );
}

/// Width of the class column: the longest name, at least 5 characters.
fn name_width(doc: &StatsDoc) -> usize {
    doc.classes
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(5)
        .clamp(5, crate::labels::MAX_NAME_CHARS)
}

/// Whether a class's pos_weight is set by a rule (marked `†`), not the
/// formula.
fn marked(pixels: u64, valid: u64) -> bool {
    written_pos_weight(pixels, valid).1 != PosWeightRule::Formula
}

/// A row per class: pixels, frequency, images and pos_weight as `maskprep
/// weights` writes it (1, marked `†`, where a rule sets it).
fn class_table(doc: &StatsDoc) -> Table {
    let mut table = Table::new(vec![
        Column::left("class", Width::Fixed(name_width(doc))),
        Column::right("pixels", Width::Fixed(14)),
        Column::right("frequency", Width::Fixed(10)),
        Column::right("images", Width::Fixed(8)),
        Column::right("pos_weight", Width::Fixed(12)),
        Column::left("", Width::Fixed(0)),
    ]);
    for c in &doc.classes {
        let (v, _) = written_pos_weight(c.pixels, doc.pixels.valid);
        let mark = if marked(c.pixels, doc.pixels.valid) {
            "†"
        } else {
            ""
        };
        table.row([
            c.name.clone(),
            c.pixels.to_string(),
            percent(c.frequency),
            c.images.to_string(),
            format!("{:.4}{mark}", v as f32),
            if c.rare { "rare" } else { "" }.to_string(),
        ]);
    }
    table
}

/// Which classes share pixels: the matrix when it fits, else the top pairs.
fn render_cooccurrence(s: &mut String, doc: &StatsDoc) {
    if doc.verdict.kind != "multi-label" {
        let _ = writeln!(s, "\nco-occurrence: none (no pixel carries two classes)");
    } else if doc.classes.len() <= MATRIX_CLASSES {
        let _ = writeln!(s, "\nco-occurrence (pixels carrying both):");
        cooccurrence_matrix(doc).write_to(s);
    } else {
        let pairs = doc.top_pairs();
        let _ = writeln!(
            s,
            "\nco-occurrence: {} class pairs share pixels; the most:",
            pairs.len()
        );
        for p in pairs.iter().take(TOP_PAIRS) {
            let _ = writeln!(
                s,
                "  {} + {}: {} pixels",
                doc.classes[p.a].name, doc.classes[p.b].name, p.pixels
            );
        }
    }
}

/// The co-occurrence matrix, its column heads cut to the column width.
fn cooccurrence_matrix(doc: &StatsDoc) -> Table {
    let w = name_width(doc);
    let cw = doc
        .cooccurrence
        .iter()
        .flatten()
        .map(|v| v.to_string().len())
        .max()
        .unwrap_or(1)
        .max(w.min(12));
    let mut columns = vec![Column::left("", Width::Fixed(w))];
    columns.extend(doc.classes.iter().map(|c| {
        let name: String = c.name.chars().take(cw).collect();
        Column::right(name, Width::Fixed(cw))
    }));
    let mut table = Table::new(columns);
    for (c, row) in doc.classes.iter().zip(&doc.cooccurrence) {
        table.row(std::iter::once(c.name.clone()).chain(row.iter().map(u64::to_string)));
    }
    table
}

/// Codes the label map does not declare, the largest first.
fn render_undeclared(s: &mut String, doc: &StatsDoc) {
    if doc.undeclared.is_empty() {
        return;
    }
    let _ = writeln!(s, "\nundeclared codes:");
    for u in &doc.undeclared {
        let near = u
            .nearest
            .as_ref()
            .map(|n| format!(", nearest {n}"))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "  {}: {} pixels in {} masks{near}, e.g. `{}`",
            u.code,
            u.pixels,
            u.images,
            u.examples.first().map(String::as_str).unwrap_or("")
        );
    }
    if let Some(r) = &doc.undeclared_rest {
        let _ = writeln!(
            s,
            "  and {} more code(s): {} pixels, {} mask occurrences (summed per code)",
            r.codes, r.pixels, r.masks
        );
    }
}

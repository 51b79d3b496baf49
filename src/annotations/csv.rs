//! Kaggle run-length CSV reader → [`Export`].
//!
//! Layouts, told apart by the header: `ImageId,EncodedPixels` (one class,
//! several rows per image unioned), `ImageId_ClassId,EncodedPixels` or
//! `Image_Label,EncodedPixels` (`0002cc93b.jpg_1`, `img.jpg_Fish`: the class
//! after the last `_`), and three columns `ImageId,ClassId,EncodedPixels` or
//! `id,class,segmentation`. Runs are `start length` pairs, 1-based, in the
//! order the caller names (Kaggle's is column-major); an empty cell (or
//! `-1`) is no pixels, the image still listed. Runs must be increasing and
//! disjoint and end inside the image: a row that breaks this is a
//! [`Problem`], as is an image with no known size. Rows stream; the file is
//! never held whole.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::{Category, Export, Format, ImageAnn, Object, Order, Problem, Shape};

/// Why a CSV file could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("cannot read `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is empty; expected a header such as `ImageId,EncodedPixels`", path.display())]
    Empty { path: PathBuf },
    #[error("line {line} of `{}` is not UTF-8 text; expected a CSV file", path.display())]
    NotText { path: PathBuf, line: u64 },
    #[error(
        "`{}` has the columns `{header}`; expected `ImageId,EncodedPixels`, \
         `ImageId_ClassId,EncodedPixels`, `ImageId,ClassId,EncodedPixels` or \
         `id,class,segmentation` (the last column holding `start length` runs)",
        path.display()
    )]
    Layout { path: PathBuf, header: String },
}

/// A photo's size `(width, height)`, read from its header only (the format
/// told by its bytes, not its extension).
pub fn photo_size(path: &Path) -> Result<(u32, u32), image::ImageError> {
    // By content, not by name: a PNG saved as `.jpg` is common.
    image::ImageReader::open(path)?
        .with_guessed_format()?
        .into_dimensions()
}

/// How rows name images and classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// `ImageId,EncodedPixels`: one class.
    Plain,
    /// `ImageId_ClassId,EncodedPixels`.
    Joined,
    /// `ImageId,ClassId,EncodedPixels`.
    Columns,
}

/// Header words that name a runs column (`EncodedPixels`, `segmentation`,
/// Carvana's `rle_mask`, HuBMAP's `encoding`, ...).
const RUNS_WORDS: [&str; 6] = ["pixel", "segment", "rle", "mask", "encod", "annotation"];

fn layout(fields: &[String]) -> Option<Layout> {
    let lower: Vec<String> = fields.iter().map(|f| f.to_ascii_lowercase()).collect();
    let runs = lower.last()?;
    if !RUNS_WORDS.iter().any(|w| runs.contains(w)) {
        return None;
    }
    match lower.len() {
        2 if lower[0].contains("class") || lower[0].contains("label") => Some(Layout::Joined),
        2 => Some(Layout::Plain),
        3 => Some(Layout::Columns),
        _ => None,
    }
}

/// Rows of one image, waiting for its size.
struct PendingImage {
    name: String,
    rows: Vec<Row>,
}

struct Row {
    line: u64,
    class: u32,
    /// 1-based `(start, length)` pairs, or why the cell cannot be read.
    runs: Result<Vec<(u64, u64)>, String>,
}

/// Reads a run-length CSV. `size` gives an image's `(width, height)` from
/// its CSV id (a photo beside the CSV, or a size given by the user); runs
/// are read in `order`.
pub fn load(
    path: &Path,
    order: Order,
    size: impl Fn(&str) -> Option<(u32, u32)>,
) -> Result<Export, CsvError> {
    let io = |source| CsvError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let mut records = Records {
        reader: BufReader::with_capacity(1 << 16, file),
        line: 0,
        buf: Vec::new(),
    };
    let Some((_, header)) = records.next(path)? else {
        return Err(CsvError::Empty {
            path: path.to_path_buf(),
        });
    };
    let Some(layout) = layout(&header) else {
        return Err(CsvError::Layout {
            path: path.to_path_buf(),
            header: header.join(","),
        });
    };
    let Pending {
        images,
        classes,
        mut problems,
    } = read_rows(&mut records, path, layout, header.len())?;
    let (mut categories, remap) = categories(classes, layout);
    let mut out = Vec::with_capacity(images.len());
    for (i, img) in images.into_iter().enumerate() {
        let sized = sized_image(i, img, &size, order, &remap, &mut categories, &mut problems);
        out.extend(sized);
    }
    Ok(Export {
        format: Format::RleCsv,
        path: path.to_path_buf(),
        categories,
        images: out,
        problems,
    })
}

/// The rows of a CSV grouped by image, in first-seen order, before any
/// image's size is known.
struct Pending {
    images: Vec<PendingImage>,
    /// Class names in first-seen order (`foreground` for a plain layout).
    classes: Vec<String>,
    problems: Vec<Problem>,
}

/// Reads every row after the header; a row that cannot be read is a
/// [`Problem`], and an empty runs cell lists its image with no rows.
fn read_rows(
    records: &mut Records<impl BufRead>,
    path: &Path,
    layout: Layout,
    fields_expected: usize,
) -> Result<Pending, CsvError> {
    let mut pending = Pending {
        images: Vec::new(),
        classes: Vec::new(),
        problems: Vec::new(),
    };
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut class_index: HashMap<String, u32> = HashMap::new();
    if layout == Layout::Plain {
        pending.classes.push("foreground".into());
    }
    while let Some((line, fields)) = records.next(path)? {
        if fields.len() == 1 && fields[0].is_empty() {
            continue;
        }
        let (image, class) = match row_key(layout, &fields, line, fields_expected) {
            Ok(key) => key,
            Err(problem) => {
                pending.problems.push(problem);
                continue;
            }
        };
        let Pending {
            images, classes, ..
        } = &mut pending;
        let class = match class {
            None => 0,
            Some(c) => *class_index.entry(c.to_string()).or_insert_with(|| {
                classes.push(c.to_string());
                (classes.len() - 1) as u32
            }),
        };
        let at = *by_name.entry(image.to_string()).or_insert_with(|| {
            images.push(PendingImage {
                name: image.to_string(),
                rows: Vec::new(),
            });
            images.len() - 1
        });
        let cell = fields.last().map_or("", |s| s.as_str());
        if cell.is_empty() || cell == "-1" {
            continue;
        }
        images[at].rows.push(Row {
            line,
            class,
            runs: parse_runs(cell),
        });
    }
    Ok(pending)
}

/// The image id and class name of a row, as its layout says, or why the
/// row is skipped.
fn row_key(
    layout: Layout,
    fields: &[String],
    line: u64,
    fields_expected: usize,
) -> Result<(&str, Option<&str>), Problem> {
    if fields.len() != fields_expected {
        return Err(Problem {
            image: fields.first().cloned(),
            reason: format!(
                "row {line} skipped: it has {} fields; expected {} like the header",
                fields.len(),
                fields_expected
            ),
        });
    }
    let (image, class) = match layout {
        Layout::Plain => (fields[0].as_str(), None),
        Layout::Columns => (fields[0].as_str(), Some(fields[1].as_str())),
        Layout::Joined => match fields[0].rsplit_once('_') {
            Some((image, class)) if !image.is_empty() && !class.is_empty() => (image, Some(class)),
            _ => {
                return Err(Problem {
                    image: Some(fields[0].clone()),
                    reason: format!(
                        "row {line} skipped: `{}` is not `image_class`; expected the class \
                         after the last `_` (`0002cc93b.jpg_1`)",
                        fields[0]
                    ),
                });
            }
        },
    };
    if image.is_empty() {
        return Err(Problem {
            image: None,
            reason: format!("row {line} skipped: its image id is empty"),
        });
    }
    Ok((image, class))
}

/// The `i`th image with its size and its readable rows as objects, counted
/// in `categories`; `None` (a problem) when its size is unknown or too big.
fn sized_image(
    i: usize,
    img: PendingImage,
    size: &impl Fn(&str) -> Option<(u32, u32)>,
    order: Order,
    remap: &[u32],
    categories: &mut [Category],
    problems: &mut Vec<Problem>,
) -> Option<ImageAnn> {
    let Some((w, h)) = size(&img.name).filter(|&(w, h)| w > 0 && h > 0) else {
        problems.push(Problem {
            image: Some(img.name.clone()),
            reason: format!(
                "image skipped{}: its size is unknown (no photo of that name found, no size given)",
                rows_note(img.rows.len())
            ),
        });
        return None;
    };
    let total = u64::from(w) * u64::from(h);
    if total > u64::from(u32::MAX) {
        problems.push(Problem {
            image: Some(img.name.clone()),
            reason: format!(
                "image skipped{}: it is {w}x{h}, more than the {} pixels runs may count",
                rows_note(img.rows.len()),
                u32::MAX
            ),
        });
        return None;
    }
    let mut objects = Vec::with_capacity(img.rows.len());
    for row in img.rows {
        match row.runs.and_then(|r| check_runs(r, total)) {
            Ok(runs) => {
                let category = remap[row.class as usize];
                categories[category as usize].annotations += 1;
                objects.push(Object {
                    category,
                    crowd: false,
                    shape: Shape::Runs { order, runs },
                    ann_id: Some(row.line as i64),
                });
            }
            Err(why) => problems.push(Problem {
                image: Some(img.name.clone()),
                reason: format!("row {} skipped: {why}", row.line),
            }),
        }
    }
    Some(ImageAnn {
        id: i as i64 + 1,
        file_name: img.name,
        width: w,
        height: h,
        objects,
    })
}

fn rows_note(rows: usize) -> String {
    match rows {
        0 => String::new(),
        1 => " (and its 1 row with pixels)".into(),
        n => format!(" (and its {n} rows with pixels)"),
    }
}

/// Categories from class names in order of first sight: by number when
/// every name is a plain integer (`1`..`4`), else by name with ids 1..n.
/// Returns them sorted by id, and first-sight index → sorted index.
fn categories(classes: Vec<String>, layout: Layout) -> (Vec<Category>, Vec<u32>) {
    let numeric: Option<Vec<i64>> = classes
        .iter()
        .map(|c| c.parse::<i64>().ok().filter(|n| n.to_string() == *c))
        .collect();
    let mut ids: Vec<(i64, usize)> = match (&numeric, layout) {
        (_, Layout::Plain) => vec![(1, 0)],
        (Some(n), _) => n.iter().enumerate().map(|(i, &id)| (id, i)).collect(),
        (None, _) => {
            let mut by_name: Vec<usize> = (0..classes.len()).collect();
            by_name.sort_by(|&a, &b| classes[a].cmp(&classes[b]));
            by_name
                .into_iter()
                .enumerate()
                .map(|(rank, i)| (rank as i64 + 1, i))
                .collect()
        }
    };
    ids.sort();
    let mut remap = vec![0u32; classes.len()];
    let cats = ids
        .iter()
        .enumerate()
        .map(|(sorted, &(id, i))| {
            remap[i] = sorted as u32;
            Category {
                id,
                name: classes[i].clone(),
                annotations: 0,
                crowd: 0,
            }
        })
        .collect();
    (cats, remap)
}

/// `start length` pairs (1-based), or why not.
fn parse_runs(cell: &str) -> Result<Vec<(u64, u64)>, String> {
    let mut nums = Vec::new();
    for tok in cell.split_ascii_whitespace() {
        match tok.parse::<u64>() {
            Ok(v) => nums.push(v),
            Err(_) => {
                return Err(format!(
                    "its runs hold `{tok}`; expected `start length` pairs of non-negative integers"
                ));
            }
        }
    }
    if nums.len() % 2 == 1 {
        return Err(format!(
            "its runs hold {} numbers; expected `start length` pairs",
            nums.len()
        ));
    }
    Ok(nums.chunks_exact(2).map(|p| (p[0], p[1])).collect())
}

/// 1-based runs → 0-based, checked: starts at 1 or more, increasing,
/// disjoint, ending within `total` pixels.
fn check_runs(runs: Vec<(u64, u64)>, total: u64) -> Result<Vec<(u64, u64)>, String> {
    let mut out = Vec::with_capacity(runs.len());
    let mut prev_start = 0u64;
    let mut prev_end = 0u64;
    for (i, (start, len)) in runs.into_iter().enumerate() {
        let n = i + 1;
        if start == 0 {
            return Err(format!("run {n} starts at 0; expected 1-based starts"));
        }
        if i > 0 && start <= prev_start {
            return Err(format!(
                "run {n} starts at {start}, not after run {i}'s start {prev_start}; expected increasing starts"
            ));
        }
        let s = start - 1;
        if s < prev_end {
            return Err(format!(
                "run {n} starts at {start}, inside run {i} (which ends at pixel {prev_end}); \
                 expected disjoint runs"
            ));
        }
        let end = s.saturating_add(len);
        if end > total {
            return Err(format!(
                "run {n} ({start} {len}) ends past the image's {total} pixels"
            ));
        }
        out.push((s, len));
        prev_start = start;
        prev_end = end;
    }
    Ok(out)
}

/// CSV records: fields split on commas outside double quotes (`""` inside
/// quotes is a quote), a quoted field may span lines, unquoted fields are
/// trimmed. Yields the record's first line number and its fields.
struct Records<R> {
    reader: R,
    line: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> Records<R> {
    fn next(&mut self, path: &Path) -> Result<Option<(u64, Vec<String>)>, CsvError> {
        let mut record = String::new();
        let first = self.line + 1;
        loop {
            self.buf.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut self.buf)
                .map_err(|source| CsvError::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
            if n == 0 {
                if record.is_empty() {
                    return Ok(None);
                }
                break;
            }
            self.line += 1;
            let text = std::str::from_utf8(&self.buf).map_err(|_| CsvError::NotText {
                path: path.to_path_buf(),
                line: self.line,
            })?;
            let text = if self.line == 1 {
                text.strip_prefix('\u{feff}').unwrap_or(text)
            } else {
                text
            };
            record.push_str(text);
            // An odd number of quotes so far: a quoted field goes on.
            if record.bytes().filter(|&b| b == b'"').count() % 2 == 0 {
                break;
            }
        }
        while record.ends_with('\n') || record.ends_with('\r') {
            record.pop();
        }
        Ok(Some((first, split_fields(&record))))
    }
}

fn split_fields(record: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut was_quoted = false;
    let mut chars = record.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => quoted = false,
            ('"', false) => {
                quoted = true;
                was_quoted = true;
            }
            (',', false) => {
                fields.push(finish(&mut field, was_quoted));
                was_quoted = false;
            }
            _ => field.push(c),
        }
    }
    fields.push(finish(&mut field, was_quoted));
    fields
}

fn finish(field: &mut String, quoted: bool) -> String {
    let f = std::mem::take(field);
    if quoted { f } else { f.trim().to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str, order: Order, sizes: &[(&str, (u32, u32))]) -> Export {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("train.csv");
        std::fs::write(&p, text).unwrap();
        let sizes: HashMap<String, (u32, u32)> =
            sizes.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        load(&p, order, |name| sizes.get(name).copied()).unwrap()
    }

    fn runs(o: &Object) -> &[(u64, u64)] {
        match &o.shape {
            Shape::Runs { runs, .. } => runs,
            other => panic!("not runs: {other:?}"),
        }
    }

    #[test]
    fn plain_rows_union_and_empty_cells_list_the_image() {
        let e = load_str(
            "ImageId,EncodedPixels\r\na.jpg,1 3 10 2\r\nb.jpg,\r\na.jpg,5 1\r\nc.jpg,-1\r\n",
            Order::ColumnMajor,
            &[("a.jpg", (4, 4)), ("b.jpg", (2, 2)), ("c.jpg", (1, 1))],
        );
        assert!(e.problems.is_empty(), "{:?}", e.problems);
        assert_eq!(e.format, Format::RleCsv);
        assert_eq!(e.categories.len(), 1);
        assert_eq!(e.categories[0].annotations, 2);
        let names: Vec<&str> = e.images.iter().map(|i| i.file_name.as_str()).collect();
        assert_eq!(names, ["a.jpg", "b.jpg", "c.jpg"]);
        let a = &e.images[0];
        assert_eq!((a.width, a.height), (4, 4));
        assert_eq!(runs(&a.objects[0]), [(0, 3), (9, 2)]);
        assert_eq!(runs(&a.objects[1]), [(4, 1)]);
        assert_eq!(a.objects[1].ann_id, Some(4));
        assert!(e.images[1].objects.is_empty());
    }

    #[test]
    fn joined_and_column_layouts_name_classes() {
        let e = load_str(
            "ImageId_ClassId,EncodedPixels\n0002cc93b.jpg_1,1 2\n0002cc93b.jpg_3,\nx_y.jpg_3,2 2\n",
            Order::ColumnMajor,
            &[("0002cc93b.jpg", (2, 2)), ("x_y.jpg", (2, 2))],
        );
        assert!(e.problems.is_empty(), "{:?}", e.problems);
        let cats: Vec<(i64, &str)> = e
            .categories
            .iter()
            .map(|c| (c.id, c.name.as_str()))
            .collect();
        assert_eq!(cats, [(1, "1"), (3, "3")]);
        assert_eq!(e.images[1].file_name, "x_y.jpg");
        assert_eq!(e.images[1].objects[0].category, 1);

        let e = load_str(
            "Image_Label,EncodedPixels\n1.jpg_Sugar,1 1\n1.jpg_Fish,2 1\n",
            Order::RowMajor,
            &[("1.jpg", (2, 1))],
        );
        let cats: Vec<(i64, &str)> = e
            .categories
            .iter()
            .map(|c| (c.id, c.name.as_str()))
            .collect();
        assert_eq!(cats, [(1, "Fish"), (2, "Sugar")]);
        assert_eq!(e.images[0].objects[0].category, 1);
        assert_eq!(e.images[0].objects[1].category, 0);
        assert!(matches!(
            e.images[0].objects[0].shape,
            Shape::Runs {
                order: Order::RowMajor,
                ..
            }
        ));

        let e = load_str(
            "id,class,segmentation\ncase1_day2_slice_0001,stomach,\"3 2\"\ncase1_day2_slice_0001,large_bowel,\n",
            Order::ColumnMajor,
            &[("case1_day2_slice_0001", (3, 3))],
        );
        assert!(e.problems.is_empty(), "{:?}", e.problems);
        let cats: Vec<&str> = e.categories.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(cats, ["large_bowel", "stomach"]);
        assert_eq!(runs(&e.images[0].objects[0]), [(2, 2)]);
    }

    #[test]
    fn bad_rows_and_unknown_sizes_are_problems() {
        let e = load_str(
            "ImageId, EncodedPixels\na.jpg,3 2 1 1\na.jpg,1 3 2 1\na.jpg,1 2 3\na.jpg,15 3\na.jpg,0 1\n\
             a.jpg,x 1\nb.jpg,1 1\na.jpg,1 1,2\na.jpg,1 2 3 1\n",
            Order::ColumnMajor,
            &[("a.jpg", (4, 4))],
        );
        let reasons: Vec<String> = e.problems.iter().map(|p| p.reason.clone()).collect();
        let has = |what: &str| {
            assert!(
                reasons.iter().any(|r| r.contains(what)),
                "no `{what}` in {reasons:#?}"
            )
        };
        has("row 2 skipped: run 2 starts at 1, not after run 1's start 3");
        has("row 3 skipped: run 2 starts at 2, inside run 1");
        has("row 4 skipped: its runs hold 3 numbers");
        has("row 5 skipped: run 1 (15 3) ends past the image's 16 pixels");
        has("row 6 skipped: run 1 starts at 0");
        has("row 7 skipped: its runs hold `x`");
        has("image skipped (and its 1 row with pixels): its size is unknown");
        has("row 9 skipped: it has 3 fields");
        assert_eq!(e.images.len(), 1);
        // Touching runs are fine.
        assert_eq!(runs(&e.images[0].objects[0]), [(0, 2), (2, 1)]);
        assert_eq!(e.images[0].objects.len(), 1);
    }

    #[test]
    fn other_headers_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.csv");
        std::fs::write(&p, "name,value\na,1\n").unwrap();
        let e = load(&p, Order::ColumnMajor, |_| None).unwrap_err();
        assert!(e.to_string().contains("`name,value`"), "{e}");
        std::fs::write(&p, "").unwrap();
        assert!(matches!(
            load(&p, Order::ColumnMajor, |_| None),
            Err(CsvError::Empty { .. })
        ));
    }

    #[test]
    fn photo_size_reads_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.png");
        image::GrayImage::new(5, 3).save(&p).unwrap();
        assert_eq!(photo_size(&p).unwrap(), (5, 3));
        // A PNG named `.jpg` is still read.
        let q = dir.path().join("b.jpg");
        std::fs::copy(&p, &q).unwrap();
        assert_eq!(photo_size(&q).unwrap(), (5, 3));
        assert!(photo_size(&dir.path().join("none.png")).is_err());
    }
}

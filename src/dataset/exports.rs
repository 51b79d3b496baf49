//! Annotation exports as a dataset: find COCO JSON and run-length CSV files
//! where labelling tools and competitions put them, load them, pair their
//! images with photos, and give the items the stages read (virtual masks,
//! see [`crate::decode::raster`]).
//!
//! Recognised, with no flags: DIR itself a `.json`/`.csv` file; Roboflow
//! (`_annotations.coco.json` in DIR or in each split folder, photos beside
//! it); COCO, Detectron2 and mmdetection (`annotations/instances_SPLIT.json`
//! with photos in `SPLIT/` or `images/SPLIT/`); CVAT COCO 1.0
//! (`annotations/instances_default.json` + `images/`); Label Studio
//! (`result.json` + `images/`); any top-level JSON that reads as COCO; a
//! top-level CSV with an `EncodedPixels` or `segmentation` column (Kaggle),
//! photos in `train_images/`, `train/` or `images/` beside it.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::annotations::{self, CrowdMode, Export, Format, Order};
use crate::labels::{Kind, LabelMap, LabelSpec, Unlisted};
use crate::source::{Dataset, Item, Skipped};
use crate::store;

/// How annotation exports are read (flags `--crowd`, `--rle-order`, `--size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportOptions {
    pub crowd: CrowdMode,
    pub rle_order: Order,
    /// Image size for run-length CSV rows whose photo is not found.
    pub size: Option<(u32, u32)>,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            crowd: CrowdMode::AsCategory,
            rle_order: Order::ColumnMajor,
            size: None,
        }
    }
}

/// One export file of a dataset, with where its photos are.
#[derive(Debug, Clone)]
struct Spot {
    /// Key prefix (the split), empty for a lone export.
    prefix: String,
    path: PathBuf,
    photos: Vec<PathBuf>,
    format: Format,
}

/// The exports found under a folder, loaded.
pub struct Loaded {
    pub exports: Vec<(Arc<Export>, Vec<String>)>,
    pub dataset: Dataset,
    /// What was found, for stderr.
    pub found: Vec<String>,
    pub warnings: Vec<String>,
}

/// Splits whose export sits in `annotations/instances_SPLIT.json`.
const INSTANCES: &str = "instances_";

/// Finds the exports of `dir` (a folder, or an export file itself); `None`
/// when there is none, so the folder is read as PNG masks.
fn find(dir: &Path) -> Vec<Spot> {
    let spot = |prefix: &str, path: PathBuf, photos: Vec<PathBuf>, format| Spot {
        prefix: prefix.to_string(),
        path,
        photos,
        format,
    };
    if store::is_file(dir) && !store::is_dir(dir) {
        let parent = dir.parent().unwrap_or(Path::new(".")).to_path_buf();
        return match sniff(dir) {
            Some(Format::Coco) => vec![spot("", dir.to_path_buf(), file_photos(dir), Format::Coco)],
            Some(Format::RleCsv) => vec![spot(
                "",
                dir.to_path_buf(),
                csv_photos(&parent),
                Format::RleCsv,
            )],
            None => Vec::new(),
        };
    }
    let mut spots = Vec::new();
    // Roboflow: one export per split folder, or one in DIR.
    let roboflow = "_annotations.coco.json";
    if store::is_file(&dir.join(roboflow)) {
        spots.push(spot(
            "",
            dir.join(roboflow),
            vec![dir.to_path_buf()],
            Format::Coco,
        ));
    }
    for sub in subfolders(dir) {
        let f = sub.join(roboflow);
        if store::is_file(&f) {
            let name = file_name(&sub);
            spots.push(spot(&name, f, vec![sub.clone()], Format::Coco));
        }
    }
    // COCO / Detectron2 / mmdetection / CVAT: annotations/instances_*.json.
    let ann = dir.join("annotations");
    let mut instances: Vec<PathBuf> = files(&ann)
        .into_iter()
        .filter(|p| {
            let n = file_name(p);
            n.starts_with(INSTANCES) && n.ends_with(".json")
        })
        .collect();
    instances.sort();
    let lone = instances.len() == 1;
    for f in instances {
        let n = file_name(&f);
        let split = n[INSTANCES.len()..n.len() - ".json".len()].to_string();
        let photos = [
            dir.join(&split),
            dir.join("images").join(&split),
            dir.join("images"),
            dir.to_path_buf(),
        ]
        .into_iter()
        .find(|p| store::is_dir(p))
        .into_iter()
        .collect();
        let prefix = if lone { String::new() } else { split };
        spots.push(spot(&prefix, f, photos, Format::Coco));
    }
    if !spots.is_empty() {
        return spots;
    }
    // Label Studio's result.json, or any top-level COCO JSON / run-length CSV.
    let mut top: Vec<PathBuf> = files(dir);
    top.sort();
    let found: Vec<(PathBuf, Format)> = top
        .into_iter()
        .filter_map(|p| sniff(&p).map(|f| (p, f)))
        .collect();
    let lone = found.len() == 1;
    for (p, format) in found {
        let prefix = if lone {
            String::new()
        } else {
            stem(&p).to_string()
        };
        let photos = match format {
            Format::Coco => coco_photos(dir),
            Format::RleCsv => csv_photos(dir),
        };
        spots.push(spot(&prefix, p, photos, format));
    }
    spots
}

/// The photo folder of a COCO file named directly: as for its folder, or,
/// in an `annotations/` folder, where COCO and CVAT keep the photos
/// (`../SPLIT/`, `../images/SPLIT/`, `../images/`).
fn file_photos(file: &Path) -> Vec<PathBuf> {
    let parent = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let name = file_name(file);
    let split = name
        .strip_prefix(INSTANCES)
        .and_then(|n| n.strip_suffix(".json"));
    if file_name(&parent) == "annotations"
        && let Some(root) = parent.parent()
    {
        let mut cands = Vec::new();
        if let Some(split) = split {
            cands.push(root.join(split));
            cands.push(root.join("images").join(split));
        }
        cands.push(root.join("images"));
        if let Some(p) = cands.into_iter().find(|p| store::is_dir(p)) {
            return vec![p];
        }
    }
    coco_photos(&parent)
}

/// The photo folder of a COCO file: `images/` beside it, else its folder.
fn coco_photos(dir: &Path) -> Vec<PathBuf> {
    [dir.join("images"), dir.to_path_buf()]
        .into_iter()
        .find(|p| store::is_dir(p))
        .into_iter()
        .collect()
}

/// Photo folders beside a run-length CSV: `train_images/` (Severstal),
/// `train_v2/` (Airbus), `train/` (Carvana), `images/`, ...: folders named
/// for images or a split, not for masks.
fn csv_photos(dir: &Path) -> Vec<PathBuf> {
    subfolders(dir)
        .into_iter()
        .filter(|p| {
            let n = file_name(p).to_ascii_lowercase();
            ["train", "image", "test", "val", "img"]
                .iter()
                .any(|k| n.contains(k))
                && !["mask", "label", "annot"].iter().any(|k| n.contains(k))
        })
        .collect()
}

fn subfolders(dir: &Path) -> Vec<PathBuf> {
    store::subdirs(dir)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    store::read_dir(dir)
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, _, is_dir)| !is_dir)
        .map(|(_, p, _)| p)
        .collect()
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn stem(p: &Path) -> &str {
    p.file_stem().and_then(|s| s.to_str()).unwrap_or("export")
}

/// What kind of export a file is, from its name and first bytes (a 448 MB
/// COCO file is not read to find out).
fn sniff(path: &Path) -> Option<Format> {
    let name = file_name(path).to_ascii_lowercase();
    let format = if name.ends_with(".json") {
        Format::Coco
    } else if name.ends_with(".csv") {
        Format::RleCsv
    } else {
        return None;
    };
    // Of an object only the first 256 KiB are fetched.
    let head = store::header(
        path,
        |r| {
            let mut head = Vec::new();
            r.take(64 << 10).read_to_end(&mut head).map(|_| head)
        },
        |e| e,
    )
    .ok()?;
    let text = String::from_utf8_lossy(&head);
    let fits = match format {
        // COCO panoptic files (`segments_info` pointing at PNGs) are not
        // instance exports: their PNGs are the masks.
        Format::Coco => {
            text.contains("\"images\"")
                && (text.contains("\"annotations\"") || text.contains("\"file_name\""))
                && !text.contains("\"segments_info\"")
        }
        Format::RleCsv => {
            let first = text.lines().next().unwrap_or_default().to_ascii_lowercase();
            first.contains("encodedpixels")
                || (first.contains("segmentation") && first.contains("id"))
        }
    };
    fits.then_some(format)
}

/// Loads the exports of `dir`; `Ok(None)` when it holds none.
pub fn load(dir: &Path, opts: &ExportOptions) -> anyhow::Result<Option<Loaded>> {
    let spots = find(dir);
    if spots.is_empty() && store::is_file(dir) && !store::is_dir(dir) {
        anyhow::bail!(
            "`{}` is not an annotation export maskprep reads; expected a COCO instances JSON \
             (`images`, `annotations` with `segmentation` polygons or RLE, `categories`; a COCO \
             panoptic file's PNGs are the masks: point at their folder) or a run-length CSV \
             (a header with `EncodedPixels`), or a folder of PNG masks",
            dir.display()
        );
    }
    if spots.is_empty() {
        return Ok(None);
    }
    let mut exports = Vec::new();
    let mut found = Vec::new();
    let mut warnings = Vec::new();
    let mut keys = Keys::default();
    let mut orphans: Vec<PathBuf> = Vec::new();
    for (e, spot) in spots.iter().enumerate() {
        let photos = index_photos(&spot.photos);
        let export = read_export(spot, opts, &photos)?;
        let (image_keys, used, paired) = keys.add_images(e, spot, &export, &photos);
        keys.add_problems(spot, &export, &image_keys);
        found.push(describe(spot, &export, paired));
        let unlabelled: Vec<PathBuf> = photos
            .by_rel
            .values()
            .filter(|p| !used.contains(*p))
            .cloned()
            .collect();
        found.extend(notes(spot, &export, opts, unlabelled.len()));
        orphans.extend(unlabelled);
        if export.images.is_empty() {
            warnings.push(format!("`{}` lists no images", spot.path.display()));
        }
        exports.push((Arc::new(export), image_keys));
    }
    Ok(Some(Loaded {
        exports,
        dataset: keys.dataset(dir, &spots, orphans),
        found,
        warnings,
    }))
}

/// The images of every export by key, and the images and rows skipped.
#[derive(Default)]
struct Keys {
    /// Key → (export, image within it, its photo).
    keyed: BTreeMap<String, (usize, u32, Option<PathBuf>)>,
    /// (key, path, why): the key may be empty.
    skipped: Vec<(String, PathBuf, String)>,
}

impl Keys {
    /// Keys the images of export `e`; a second image of one key is skipped.
    /// Returns each image's key, the photos used, and how many images have one.
    fn add_images(
        &mut self,
        e: usize,
        spot: &Spot,
        export: &Export,
        photos: &Photos,
    ) -> (Vec<String>, std::collections::BTreeSet<PathBuf>, usize) {
        let Keys { keyed, skipped } = self;
        let mut used = std::collections::BTreeSet::new();
        let mut keys = Vec::with_capacity(export.images.len());
        let mut paired = 0usize;
        for (i, img) in export.images.iter().enumerate() {
            let rel = relative_name(&img.file_name);
            let key = join(&spot.prefix, without_ext(&rel));
            let photo = find_photo(photos, &rel);
            paired += usize::from(photo.is_some());
            if let Some(p) = &photo {
                used.insert(p.clone());
            }
            let vpath = crate::decode::raster::virtual_path(&spot.path, &key);
            if keyed.contains_key(&key) {
                skipped.push((
                    key.clone(),
                    vpath,
                    format!(
                        "a second image with the key `{key}` (file name `{}`); expected one \
                         image per file name",
                        img.file_name
                    ),
                ));
            } else {
                keyed.insert(key.clone(), (e, i as u32, photo));
            }
            keys.push(key);
        }
        (keys, used, paired)
    }

    /// The export's own problems, as skipped files named `EXPORT#KEY`.
    fn add_problems(&mut self, spot: &Spot, export: &Export, keys: &[String]) {
        let skipped = &mut self.skipped;
        let by_name: BTreeMap<&str, &str> = export
            .images
            .iter()
            .zip(keys)
            .map(|(img, k)| (img.file_name.as_str(), k.as_str()))
            .collect();
        for p in &export.problems {
            let key = p
                .image
                .as_deref()
                .and_then(|n| by_name.get(n).copied())
                .unwrap_or_default()
                .to_string();
            // Named `EXPORT#KEY`, or `EXPORT#NAME` for an image that was
            // left out of the export's images (no size, say).
            let path = match (key.is_empty(), p.image.as_deref()) {
                (false, _) => crate::decode::raster::virtual_path(&spot.path, &key),
                (true, Some(name)) => crate::decode::raster::virtual_path(&spot.path, name),
                (true, None) => spot.path.clone(),
            };
            skipped.push((key, path, p.reason.clone()));
        }
    }

    /// The dataset of every keyed image, in key order.
    fn dataset(&self, dir: &Path, spots: &[Spot], orphans: Vec<PathBuf>) -> Dataset {
        let Keys { keyed, skipped } = self;
        let positions: BTreeMap<&str, usize> = keyed
            .keys()
            .enumerate()
            .map(|(i, k)| (k.as_str(), i))
            .collect();
        let items = keyed
            .iter()
            .enumerate()
            .map(|(index, (key, (e, _, photo)))| Item {
                key: key.clone(),
                index,
                mask: crate::decode::raster::virtual_path(&spots[*e].path, key),
                image: photo.clone(),
            })
            .collect();
        let skipped = skipped
            .iter()
            .map(|(key, path, reason)| Skipped {
                index: positions.get(key.as_str()).copied().unwrap_or(0),
                path: path.clone(),
                reason: reason.clone(),
            })
            .collect();
        Dataset {
            root: dir.to_path_buf(),
            mask_dir: spots[0].path.clone(),
            image_dir: spots[0].photos.first().cloned(),
            items,
            images_without_masks: orphans.into_iter().map(|p| (0, p)).collect(),
            candidates: Vec::new(),
            skipped,
        }
    }
}

/// What the `found` list says of an export beyond its description:
/// photos with no annotation, categories with none, crowd regions.
fn notes(spot: &Spot, export: &Export, opts: &ExportOptions, unlabelled: usize) -> Vec<String> {
    let mut found = Vec::new();
    if unlabelled > 0 {
        found.push(format!(
            "{} photos beside `{}` have no annotation: listed as images without masks, \
             not counted (Severstal-style CSVs list only images with defects; give them \
             empty rows to count them)",
            unlabelled,
            spot.path.display()
        ));
    }
    let empty: Vec<String> = export
        .categories
        .iter()
        .filter(|c| c.annotations == 0)
        .map(|c| format!("`{}` (id {})", c.name, c.id))
        .collect();
    if !empty.is_empty() {
        found.push(format!(
            "categories with no annotations in `{}`: {}",
            spot.path.display(),
            empty.join(", ")
        ));
    }
    let crowd: u64 = export.categories.iter().map(|c| c.crowd).sum();
    if crowd > 0 {
        found.push(match opts.crowd {
            CrowdMode::AsCategory => format!(
                "{crowd} crowd regions (iscrowd) counted as their category, as pycocotools' \
                 annToMask does (`--crowd ignore` excludes their pixels)"
            ),
            CrowdMode::Ignore => {
                format!("{crowd} crowd regions (iscrowd): their pixels are ignored")
            }
        });
    }
    found
}

/// Loads the exports of `dir` again and registers them under `map` (a
/// score report re-reading the truth its score file names); `Ok(None)`
/// when `dir` holds no export.
pub fn reopen(dir: &Path, map: &LabelMap, opts: &ExportOptions) -> anyhow::Result<Option<Dataset>> {
    let Some(loaded) = load(dir, opts)? else {
        return Ok(None);
    };
    for (export, keys) in &loaded.exports {
        crate::decode::raster::register(export.clone(), keys, map, opts.crowd);
    }
    Ok(Some(loaded.dataset))
}

fn describe(spot: &Spot, export: &Export, paired: usize) -> String {
    let kind = match spot.format {
        Format::Coco => "COCO JSON",
        Format::RleCsv => "run-length CSV",
    };
    let objects: usize = export.images.iter().map(|i| i.objects.len()).sum();
    let photos = match spot.photos.first() {
        Some(p) => format!(
            "photos in `{}` ({paired} of {} found)",
            p.display(),
            export.images.len()
        ),
        None => "no photo folder".to_string(),
    };
    format!(
        "annotations: {kind} `{}`: {} images, {objects} objects, {} categories; {photos}",
        spot.path.display(),
        export.images.len(),
        export.categories.len()
    )
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}/{key}")
    }
}

/// An export's image name as a relative `/` path: Windows separators,
/// leading `./` or `/`, and URL or upload prefixes (Label Studio's
/// `/data/upload/1/x.jpg`) give way to the name in the photo folder.
fn relative_name(name: &str) -> String {
    let n = name.replace('\\', "/");
    let n = match n.rfind("://") {
        Some(_) => n.rsplit('/').next().unwrap_or_default().to_string(),
        None => n,
    };
    let n = n.trim_start_matches("./").trim_start_matches('/');
    let n = n.strip_prefix("data/upload/").map_or(n, |rest| {
        rest.split_once('/').map_or(rest, |(_, file)| file)
    });
    n.strip_prefix("images/").unwrap_or(n).to_string()
}

fn without_ext(rel: &str) -> &str {
    match rel.rfind('.') {
        Some(dot) if !rel[dot..].contains('/') => &rel[..dot],
        _ => rel,
    }
}

/// Every file under the photo folders (two levels), by relative path and by
/// file name, listed once so pairing is a lookup per image.
struct Photos {
    by_rel: BTreeMap<String, PathBuf>,
    by_name: BTreeMap<String, Option<PathBuf>>,
}

fn index_photos(dirs: &[PathBuf]) -> Photos {
    let mut by_rel = BTreeMap::new();
    let mut by_name: BTreeMap<String, Option<PathBuf>> = BTreeMap::new();
    for dir in dirs {
        for entry in store::walk(dir, 2) {
            if entry.is_dir {
                continue;
            }
            let path = entry.path;
            if !is_photo(&path) {
                continue;
            }
            let Ok(rel) = path.strip_prefix(dir) else {
                continue;
            };
            let rel = rel.to_string_lossy().replace('\\', "/");
            by_rel.entry(rel).or_insert_with(|| path.clone());
            let name = file_name(&path);
            by_name
                .entry(name)
                .and_modify(|p| {
                    // Two photos with one name: only a full path pairs.
                    if p.as_ref() != Some(&path) {
                        *p = None;
                    }
                })
                .or_insert(Some(path));
        }
    }
    Photos { by_rel, by_name }
}

fn is_photo(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .is_some_and(|e| ["png", "jpg", "jpeg", "bmp", "tif", "tiff", "webp"].contains(&e.as_str()))
}

fn find_photo(photos: &Photos, rel: &str) -> Option<PathBuf> {
    if let Some(p) = photos.by_rel.get(rel) {
        return Some(p.clone());
    }
    let name = rel.rsplit('/').next().unwrap_or(rel);
    if let Some(Some(p)) = photos.by_name.get(name) {
        return Some(p.clone());
    }
    // Kaggle ids often lack the extension (`ImageId` = `0002cc93b`).
    ["jpg", "png", "jpeg"].iter().find_map(|ext| {
        photos
            .by_name
            .get(&format!("{name}.{ext}"))
            .cloned()
            .flatten()
    })
}

/// Reads an export, local or in a store (an object is copied to a
/// temporary file first, so a large export is streamed, never held whole).
fn read_export(spot: &Spot, opts: &ExportOptions, photos: &Photos) -> anyhow::Result<Export> {
    let copy = store::local_copy(&spot.path)
        .map_err(|e| anyhow::anyhow!("cannot read `{}`: {e}", spot.path.display()))?;
    let local = &copy.path;
    let mut export = match spot.format {
        Format::Coco => annotations::coco::load(local)?,
        Format::RleCsv => annotations::csv::load(local, opts.rle_order, |name: &str| {
            find_photo(photos, &relative_name(name))
                .and_then(|p| crate::source::image_size(&p).ok())
                .or(opts.size)
        })?,
    };
    export.path = spot.path.clone();
    Ok(export)
}

/// The label map an export implies: one class per category, in id order,
/// repeated names told apart by id (`facade`, `facade (id 3)`).
pub fn default_map(exports: &[(Arc<Export>, Vec<String>)]) -> anyhow::Result<LabelMap> {
    let mut cats: BTreeMap<i64, String> = BTreeMap::new();
    for (e, _) in exports {
        for c in &e.categories {
            cats.entry(c.id).or_insert_with(|| c.name.clone());
        }
    }
    if cats.is_empty() {
        anyhow::bail!(
            "`{}` declares no categories; expected a `categories` list with ids and names",
            exports
                .first()
                .map(|(e, _)| e.path.display().to_string())
                .unwrap_or_default()
        );
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut classes = Vec::new();
    let mut values = BTreeMap::new();
    for (id, name) in &cats {
        let base = if name.trim().is_empty() {
            format!("category {id}")
        } else {
            name.clone()
        };
        let n = seen.entry(base.clone()).or_insert(0);
        *n += 1;
        let shown = if *n == 1 {
            base
        } else {
            format!("{base} (id {id})")
        };
        values.insert(id.to_string(), shown.clone());
        classes.push(shown);
    }
    let spec = LabelSpec {
        kind: Kind::Categories,
        classes,
        threshold: None,
        ignore: Vec::new(),
        colors: BTreeMap::new(),
        values,
        unlisted: Unlisted::Unknown,
    };
    Ok(LabelMap::compile(spec, "the export's categories")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_relative_keys() {
        assert_eq!(relative_name("000000397133.jpg"), "000000397133.jpg");
        assert_eq!(relative_name("images/a/b.png"), "a/b.png");
        assert_eq!(relative_name("/data/upload/1/3f2a-b.jpg"), "3f2a-b.jpg");
        assert_eq!(relative_name("http://host/x/y.jpg"), "y.jpg");
        assert_eq!(relative_name(".\\dir\\c.jpg"), "dir/c.jpg");
        assert_eq!(without_ext("a/b.c.jpg"), "a/b.c");
        assert_eq!(without_ext("a.d/b"), "a.d/b");
    }
}

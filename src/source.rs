//! Source stage: find the masks (and images) of a dataset, pair them by
//! relative stem, and take a deterministic partition `I/N` of them. The one
//! folder walk ([`list`]) also lists the predictions that scoring pairs.
//!
//! Everything here is sorted by key, so the same folder gives the same list
//! on every machine; a partition is every N-th key of that list. Nothing
//! found is dropped silently: what cannot be taken (a dangling symlink, a
//! loop, an unreadable folder, a second file with the same key) is listed
//! in [`Dataset::skipped`]; folders maskprep wrote are not data.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store;

/// Image extensions paired with masks.
const IMAGE_EXTS: &[&str] = &["png", "jpg", "jpeg", "bmp", "tif", "tiff", "webp"];

/// A piece `index/count` of a dataset (1-based), for cluster array jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Partition {
    pub index: usize,
    pub count: usize,
}

impl Partition {
    pub const WHOLE: Self = Self { index: 1, count: 1 };

    /// Does the `i`-th key (0-based, in sorted order) belong to this piece?
    pub fn contains(&self, i: usize) -> bool {
        i % self.count == self.index - 1
    }
}

impl std::str::FromStr for Partition {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not a partition; expected I/N with 1 <= I <= N, e.g. 3/16");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

impl TryFrom<String> for Partition {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Partition> for String {
    fn from(p: Partition) -> String {
        p.to_string()
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// One mask and its image, if any.
#[derive(Debug, Clone)]
pub struct Item {
    /// Relative path without extension, `/`-separated: the pairing key.
    pub key: String,
    /// Position of the key among all keys of the dataset (for partitions).
    pub index: usize,
    pub mask: PathBuf,
    pub image: Option<PathBuf>,
}

/// The masks of a dataset (one partition of them), with pairing problems.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub root: PathBuf,
    pub mask_dir: PathBuf,
    pub image_dir: Option<PathBuf>,
    pub items: Vec<Item>,
    /// Images with no mask, with their key positions.
    pub images_without_masks: Vec<(usize, PathBuf)>,
    /// Folders that may hold the masks, named when a file is not a mask.
    pub candidates: Vec<String>,
    /// Files that could not be taken (dangling symlinks, loops, unreadable
    /// folders, two files with one key), with their key positions: every
    /// stage lists them as skipped, so none is lost silently.
    pub skipped: Vec<Skipped>,
}

/// A file or folder of the dataset that was found but cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub index: usize,
    pub path: PathBuf,
    pub reason: String,
}

impl Dataset {
    /// Keeps this partition's share of masks and unpaired images.
    pub fn partition(mut self, part: Partition) -> Self {
        self.items.retain(|i| part.contains(i.index));
        self.images_without_masks.retain(|(i, _)| part.contains(*i));
        self.skipped.retain(|s| part.contains(s.index));
        self
    }

    /// Masks whose image is missing, when the dataset has an image folder.
    pub fn masks_without_images(&self) -> Vec<&Path> {
        if self.image_dir.is_none() {
            return Vec::new();
        }
        self.items
            .iter()
            .filter(|i| i.image.is_none())
            .map(|i| i.mask.as_path())
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(
        "`{0}` does not exist or is not a folder; expected a folder of PNG masks, or a dataset root with `masks/`"
    )]
    NotADir(PathBuf),
    #[error("no masks (`*.png`) found under `{0}`")]
    Empty(PathBuf),
    #[error(
        "output `{out}` is inside the data folder `{dir}`; expected an output folder outside \
         the masks and images (what is written there would be read as data by the next scan)"
    )]
    OutputInside { out: PathBuf, dir: PathBuf },
    #[error("cannot list `{path}`")]
    List {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot list `{path}`")]
    Walk {
        path: PathBuf,
        #[source]
        source: walkdir::Error,
    },
}

/// One mask folder of a dataset and its image folder. Keys of its files get
/// `prefix/` in front when several parts make one dataset (one VOC tree per
/// subfolder, say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub prefix: String,
    pub masks: PathBuf,
    pub images: Option<PathBuf>,
    /// The image folder holds more than the annotated images (VOC's
    /// `JPEGImages/`): images without masks are expected, not listed.
    pub images_superset: bool,
}

/// Which PNGs of a mask folder are masks, and how their names pair with
/// images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaskNames {
    /// Every PNG; a mask and an image pair by the same relative stem.
    #[default]
    Any,
    /// Only PNGs whose name ends with this (`_gtFine_labelIds.png`,
    /// `_seg.png`); the suffix, and the image suffixes in
    /// [`IMAGE_SUFFIXES`], are dropped from the keys.
    Suffix(&'static str),
}

/// Image-name suffixes dropped from keys under [`MaskNames::Suffix`].
pub const IMAGE_SUFFIXES: &[&str] = &["_leftImg8bit"];

/// Says why `root` cannot be a source: not a folder, or (for a store) the
/// store's own error (a missing bucket, refused credentials).
pub fn check_dir(root: &Path) -> Result<(), SourceError> {
    match store::dir_status(root) {
        Ok(true) => Ok(()),
        Ok(false) => Err(SourceError::NotADir(root.to_path_buf())),
        Err(source) => Err(SourceError::List {
            path: root.to_path_buf(),
            source,
        }),
    }
}

/// Finds the masks under `root`: `root/masks/` (with images in
/// `root/images/`) when it exists, else every PNG under `root`.
pub fn discover(root: &Path) -> Result<Dataset, SourceError> {
    check_dir(root)?;
    let part = if store::is_dir(&root.join("masks")) {
        let images = root.join("images");
        Part {
            prefix: String::new(),
            masks: root.join("masks"),
            images: store::is_dir(&images).then_some(images),
            images_superset: false,
        }
    } else {
        Part {
            prefix: String::new(),
            masks: root.to_path_buf(),
            images: None,
            images_superset: false,
        }
    };
    discover_parts(root, &[part], MaskNames::Any)
}

/// Walks the given mask (and image) folders and pairs masks with images.
pub fn discover_parts(
    root: &Path,
    parts: &[Part],
    names: MaskNames,
) -> Result<Dataset, SourceError> {
    check_dir(root)?;
    let first = parts.first().cloned().unwrap_or(Part {
        prefix: String::new(),
        masks: root.to_path_buf(),
        images: None,
        images_superset: false,
    });
    let mut masks = BTreeMap::new();
    let mut images = BTreeMap::new();
    let mut superset = BTreeMap::new();
    let mut problems: Vec<Problem> = Vec::new();
    for part in parts {
        let seen = problems.len();
        let join = |k: String| {
            if part.prefix.is_empty() {
                k
            } else {
                format!("{}/{k}", part.prefix)
            }
        };
        let mut found = walk(&part.masks, &["png"], &mut problems)?;
        if found.is_empty() && names == MaskNames::Any {
            // No PNG at all: the masks were saved as JPEGs (lossy).
            found = walk(&part.masks, &["jpg", "jpeg"], &mut problems)?;
        }
        for (k, p) in mask_keys(found, names) {
            masks.entry(join(k)).or_insert(p);
        }
        if let Some(dir) = &part.images {
            let found = walk_images(dir, names, &mut problems)?;
            for (k, p) in found {
                let key = join(k);
                if part.images_superset {
                    superset.insert(key.clone(), ());
                }
                images.entry(key).or_insert(p);
            }
        }
        for problem in &mut problems[seen..] {
            problem.0 = join(std::mem::take(&mut problem.0));
        }
    }
    if masks.is_empty() && problems.is_empty() {
        return Err(SourceError::Empty(first.masks));
    }
    if !images.is_empty() {
        pair_by_stem(&mut masks, &mut images, &mut superset);
    }
    // Images of a superset folder count only where a mask has their key.
    images.retain(|k, _| !superset.contains_key(k) || masks.contains_key(k));
    Ok(assemble(root, first, &masks, &images, &problems))
}

/// The masks found in a folder by key: every one, or (`Suffix`) only those
/// named `KEY{suffix}`, keyed without the suffix. In key order.
fn mask_keys(found: BTreeMap<String, PathBuf>, names: MaskNames) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for (k, p) in found {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        match names {
            MaskNames::Any => out.push((k, p)),
            MaskNames::Suffix(suffix) => {
                if let Some(stem) = name.strip_suffix(suffix) {
                    let dir = k.rsplit_once('/').map(|(d, _)| d);
                    let key = match dir {
                        Some(d) => format!("{d}/{stem}"),
                        None => stem.to_string(),
                    };
                    out.push((key, p));
                }
            }
        }
    }
    out
}

/// The images of a folder by key; beside `Suffix` masks, the masks and
/// other annotations left out and the images' own suffixes dropped.
fn walk_images(
    dir: &Path,
    names: MaskNames,
    problems: &mut Vec<Problem>,
) -> Result<BTreeMap<String, PathBuf>, SourceError> {
    let mut found = walk(dir, IMAGE_EXTS, problems)?;
    if let MaskNames::Suffix(suffix) = names {
        // Masks may sit beside their images (ADE20K's `*_seg.png`).
        // ADE20K's photos are JPEGs; its other PNGs are annotations.
        let jpeg_only = suffix == "_seg.png";
        found.retain(|_, p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let png = n.to_ascii_lowercase().ends_with(".png");
            let annotation = n.ends_with(suffix) || is_aux_png(n);
            !(annotation || jpeg_only && png)
        });
        found = found
            .into_iter()
            .map(|(k, p)| {
                let k = IMAGE_SUFFIXES
                    .iter()
                    .find_map(|s| k.strip_suffix(s))
                    .map(str::to_string)
                    .unwrap_or(k);
                (k, p)
            })
            .collect();
    }
    Ok(found)
}

/// The dataset: every key (mask, image or problem) numbered in sorted
/// order, masks paired with their images, problems as skipped files.
fn assemble(
    root: &Path,
    first: Part,
    masks: &BTreeMap<String, PathBuf>,
    images: &BTreeMap<String, PathBuf>,
    problems: &[Problem],
) -> Dataset {
    let mut keys: Vec<&String> = masks
        .keys()
        .chain(images.keys())
        .chain(problems.iter().map(|(k, _, _)| k))
        .collect();
    keys.sort();
    keys.dedup();
    let position: BTreeMap<&String, usize> =
        keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
    let mut items = Vec::new();
    let mut images_without_masks = Vec::new();
    for (index, key) in keys.iter().enumerate() {
        match masks.get(*key) {
            Some(mask) => items.push(Item {
                key: (*key).clone(),
                index,
                mask: mask.clone(),
                image: images.get(*key).cloned(),
            }),
            None => {
                if let Some(image) = images.get(*key) {
                    images_without_masks.push((index, image.clone()));
                }
            }
        }
    }
    let mut skipped: Vec<Skipped> = problems
        .iter()
        .map(|(k, path, reason)| Skipped {
            index: position[k],
            path: path.clone(),
            reason: reason.clone(),
        })
        .collect();
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Dataset {
        root: root.to_path_buf(),
        mask_dir: first.masks,
        image_dir: first.images,
        items,
        images_without_masks,
        candidates: Vec::new(),
        skipped,
    }
}

/// When masks and images name the same sample with different tags
/// (`00001_gt.png` beside `00001_img.jpg`, `a_mask.png` beside `a.jpg`),
/// drops each side's common `_tag` from the keys, if that pairs more.
fn pair_by_stem(
    masks: &mut BTreeMap<String, PathBuf>,
    images: &mut BTreeMap<String, PathBuf>,
    superset: &mut BTreeMap<String, ()>,
) {
    let matched = |m: &BTreeMap<String, PathBuf>, i: &BTreeMap<String, PathBuf>| {
        m.keys().filter(|k| i.contains_key(*k)).count()
    };
    let before = matched(masks, images);
    if before == masks.len() {
        return;
    }
    let strip = |map: &BTreeMap<String, PathBuf>| -> Option<BTreeMap<String, PathBuf>> {
        let tag = common_tag(map.keys())?;
        let out: BTreeMap<String, PathBuf> = map
            .iter()
            .map(|(k, p)| (k[..k.len() - tag.len()].to_string(), p.clone()))
            .collect();
        (out.len() == map.len()).then_some(out)
    };
    let m2 = strip(masks);
    let i2 = strip(images);
    let mut best = (before, None, None);
    for (m, i) in [
        (m2.as_ref(), None),
        (None, i2.as_ref()),
        (m2.as_ref(), i2.as_ref()),
    ] {
        if m.is_none() && i.is_none() {
            continue;
        }
        let n = matched(m.unwrap_or(masks), i.unwrap_or(images));
        if n > best.0 {
            best = (n, m.cloned(), i.cloned());
        }
    }
    let (_, m, i) = best;
    if let Some(m) = m {
        *masks = m;
    }
    if let Some(i) = i {
        if !superset.is_empty() {
            *superset = i.keys().map(|k| (k.clone(), ())).collect();
        }
        *images = i;
    }
}

/// The `_tag` (or `-tag`) every key's file name ends with, if they share one.
fn common_tag<'a>(mut keys: impl Iterator<Item = &'a String>) -> Option<String> {
    let first = keys.next()?;
    let name = first.rsplit('/').next().unwrap_or(first);
    let at = name.rfind(['_', '-'])?;
    let tag = &name[at..];
    if tag.len() < 2 || tag.len() == name.len() {
        return None;
    }
    keys.all(|k| k.ends_with(tag) && k.len() > tag.len())
        .then(|| tag.to_string())
}

/// PNGs beside masks that are not class masks: ADE20K part masks
/// (`*_parts_N.png`), Cityscapes colour and instance renderings.
pub fn is_aux_png(name: &str) -> bool {
    let stem = name.rsplit_once('.').map(|(s, _)| s).unwrap_or(name);
    stem.rsplit_once("_parts_")
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        || stem.ends_with("_color")
        || stem.ends_with("_instanceIds")
}

/// A problem met while walking: the key it would have had, the path, why.
type Problem = (String, PathBuf, String);

/// Files under `dir` with one of `exts` (case-insensitive), by key.
/// Folders that maskprep wrote (see [`crate::output::MARKS`]) are skipped.
/// Two masks with one key (`a.png`, `a.PNG`, or names that differ only in
/// bytes that are not UTF-8) keep the first by name and list the other in
/// `problems`, as do dangling symlinks, symlink loops and unreadable
/// folders; images of one key with different extensions (`a.png`,
/// `a.jpg`) keep the first by name.
fn walk(
    dir: &Path,
    exts: &[&str],
    problems: &mut Vec<Problem>,
) -> Result<BTreeMap<String, PathBuf>, SourceError> {
    let listing = list(dir)?;
    let mut out: BTreeMap<String, PathBuf> = BTreeMap::new();
    for path in listing.files {
        if has_ext(&path, exts) {
            take(&mut out, key_of(dir, &path), path, exts, problems);
        }
    }
    for (path, reason) in listing.unreadable {
        // A folder that cannot be read may have held files of any name.
        let folder = path.extension().is_none() && !store::is_url(dir);
        if folder || has_ext(&path, exts) {
            problems.push((key_of(dir, &path), path, reason));
        }
    }
    Ok(out)
}

/// What a folder holds: its files, and the entries that cannot be taken.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Every file below the folder, in name order.
    pub files: Vec<PathBuf>,
    /// Dangling symlinks, symlink loops, unreadable folders and object
    /// keys no path can name, with why, in name order.
    pub unreadable: Vec<(PathBuf, String)>,
}

/// Lists `dir`, a local folder (symlinks followed) or an object-store
/// prefix: every file below it in name order, and what cannot be taken.
/// Folders that maskprep wrote (see [`crate::output::MARKS`]) are not
/// data and are left out. An error when `dir` itself cannot be read.
pub fn list(dir: &Path) -> Result<Listing, SourceError> {
    if store::is_url(dir) {
        return list_store(dir);
    }
    let walker = walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .follow_links(true)
        .into_iter()
        .filter_entry(|e| {
            e.depth() == 0 || !e.file_type().is_dir() || !crate::output::is_marked(e.path())
        });
    let mut listing = Listing::default();
    for entry in walker {
        match entry {
            Ok(e) if e.file_type().is_file() => listing.files.push(e.into_path()),
            Ok(_) => {}
            Err(e) if e.depth() == 0 => {
                return Err(SourceError::Walk {
                    path: dir.to_path_buf(),
                    source: e,
                });
            }
            Err(e) => {
                if let Some(path) = e.path() {
                    listing
                        .unreadable
                        .push((path.to_path_buf(), walk_reason(&e)));
                }
            }
        }
    }
    Ok(listing)
}

/// Files `path` under `key`, found in name order: the first file of a key
/// keeps it; a second of the same extension (or of any, when one extension
/// is asked for) is listed in `problems`.
fn take(
    out: &mut BTreeMap<String, PathBuf>,
    key: String,
    path: PathBuf,
    exts: &[&str],
    problems: &mut Vec<Problem>,
) {
    match out.get(&key) {
        None => {
            out.insert(key, path);
        }
        Some(first) => {
            let same_ext = first.extension().map(|e| e.to_ascii_lowercase())
                == path.extension().map(|e| e.to_ascii_lowercase());
            if same_ext || exts.len() == 1 {
                let reason = format!(
                    "has the same name as `{}` (key `{key}`); expected one file per name, \
                     rename one of them",
                    first.display()
                );
                problems.push((key, path, reason));
            }
        }
    }
}

/// [`list`] over an object store: the keys under the prefix `dir`, sorted.
/// A store has no symlinks or unreadable folders; keys no path can name
/// are listed as unreadable.
fn list_store(dir: &Path) -> Result<Listing, SourceError> {
    let listing = store::list(dir).map_err(|source| SourceError::List {
        path: dir.to_path_buf(),
        source,
    })?;
    // Folders (below `dir`) holding one of maskprep's marks are not data.
    let mut marked: Vec<String> = Vec::new();
    for (rel, _) in &listing {
        let parts: Vec<&str> = rel.split('/').collect();
        let at = parts.iter().position(|p| *p == ".maskprep").or_else(|| {
            let last = parts.len() - 1;
            crate::output::MARKS
                .iter()
                .any(|(m, _)| *m == parts[last])
                .then_some(last)
        });
        if let Some(at) = at.filter(|&i| i > 0) {
            let folder = parts[..at].join("/");
            if !marked.contains(&folder) && crate::output::is_marked(&dir.join(&folder)) {
                marked.push(folder);
            }
        }
    }
    let in_marked = |rel: &str| {
        marked.iter().any(|m| {
            rel.strip_prefix(m.as_str())
                .is_some_and(|r| r.starts_with('/'))
        })
    };
    let mut out = Listing::default();
    for (rel, _) in listing {
        if !in_marked(&rel) {
            out.files.push(dir.join(&rel));
        }
    }
    // Keys no path can name (`..`, `//`, a control character): listed
    // where a file of theirs would be data, as an unreadable file is.
    for rel in store::odd_keys(dir).unwrap_or_default() {
        let shown: String = rel
            .chars()
            .map(|c| match c.is_control() {
                true => c.escape_unicode().to_string(),
                false => c.to_string(),
            })
            .collect();
        let path = PathBuf::from(format!("{}/{shown}", dir.display()));
        if in_marked(&rel) {
            continue;
        }
        let reason = "the object key is no usable path (an empty, `.` or `..` segment, or a \
                      control character); expected keys like `masks/0001.png`, rename the object"
            .to_string();
        out.unreadable.push((path, reason));
    }
    Ok(out)
}

fn has_ext(path: &Path, exts: &[&str]) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| exts.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// The pairing key: the relative path without extension, `/`-separated
/// (`dir/a/b.png` → `a/b`).
pub fn key_of(dir: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(dir).unwrap_or(path).with_extension("");
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Why walkdir could not take an entry, in words.
fn walk_reason(e: &walkdir::Error) -> String {
    if let Some(ancestor) = e.loop_ancestor() {
        return format!(
            "symlink loop (it leads back to `{}`); expected a file or a folder",
            ancestor.display()
        );
    }
    let dangling = e.path().is_some_and(|p| {
        std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()) && !p.exists()
    });
    if dangling {
        return "dangling symlink (its target does not exist); expected a file".to_string();
    }
    match e.io_error() {
        Some(io) => format!("cannot read: {io}"),
        None => format!("cannot read: {e}"),
    }
}

/// Refuses an output folder inside the mask or image folder of the dataset
/// at `root`: what it writes there would be scanned as data next time.
pub fn refuse_output_inside(root: &Path, out: &Path) -> Result<(), SourceError> {
    if store::is_url(root) || store::is_url(out) {
        return refuse_url_inside(root, out);
    }
    let (mask_dir, image_dir) = if root.join("masks").is_dir() {
        (root.join("masks"), Some(root.join("images")))
    } else {
        (root.to_path_buf(), None)
    };
    let out_abs = absolute(out);
    for dir in std::iter::once(mask_dir).chain(image_dir) {
        let Ok(dir_abs) = std::fs::canonicalize(&dir) else {
            continue;
        };
        if out_abs.starts_with(&dir_abs) {
            return Err(SourceError::OutputInside {
                out: out.to_path_buf(),
                dir,
            });
        }
    }
    Ok(())
}

/// [`refuse_output_inside`] where one side is a URL: by prefix (a URL and
/// a local path never overlap).
fn refuse_url_inside(root: &Path, out: &Path) -> Result<(), SourceError> {
    let (mask_dir, image_dir) = if store::is_dir(&root.join("masks")) {
        (root.join("masks"), Some(root.join("images")))
    } else {
        (root.to_path_buf(), None)
    };
    let text = |p: &Path| format!("{}/", p.to_string_lossy().trim_end_matches('/'));
    for dir in std::iter::once(mask_dir).chain(image_dir) {
        if text(out).starts_with(&text(&dir)) {
            return Err(SourceError::OutputInside {
                out: out.to_path_buf(),
                dir,
            });
        }
    }
    Ok(())
}

/// `path` made absolute with symlinks resolved as far as it exists.
fn absolute(path: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut p = path.to_path_buf();
    loop {
        if let Ok(c) = std::fs::canonicalize(&p) {
            let mut c = c;
            for r in rest.iter().rev() {
                c.push(r);
            }
            return c;
        }
        match (p.file_name().map(|n| n.to_os_string()), p.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                p = if parent.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    parent.to_path_buf()
                };
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// A photo's size from its header, by content (of an object, its first
/// bytes only).
pub fn image_size(path: &Path) -> Result<(u32, u32), String> {
    store::header(
        path,
        |r| {
            image::ImageReader::new(r)
                .with_guessed_format()
                .map_err(|e| e.to_string())?
                .into_dimensions()
                .map_err(|e| e.to_string())
        },
        |e| e.to_string(),
    )
}

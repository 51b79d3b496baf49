//! Source stage: find the masks (and images) of a dataset, pair them by
//! relative stem, and take a deterministic partition `I/N` of them.
//!
//! Everything here is sorted by key, so the same folder gives the same list
//! on every machine; a partition is every N-th key of that list.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Image extensions paired with masks.
const IMAGE_EXTS: &[&str] = &["png", "jpg", "jpeg", "bmp", "tif", "tiff", "webp"];

/// A piece `index/count` of a dataset (1-based), for cluster array jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
}

impl Dataset {
    /// Keeps this partition's share of masks and unpaired images.
    pub fn partition(mut self, part: Partition) -> Self {
        self.items.retain(|i| part.contains(i.index));
        self.images_without_masks.retain(|(i, _)| part.contains(*i));
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

/// Finds the masks under `root`: `root/masks/` (with images in
/// `root/images/`) when it exists, else every PNG under `root`.
pub fn discover(root: &Path) -> Result<Dataset, SourceError> {
    if !root.is_dir() {
        return Err(SourceError::NotADir(root.to_path_buf()));
    }
    let part = if root.join("masks").is_dir() {
        let images = root.join("images");
        Part {
            prefix: String::new(),
            masks: root.join("masks"),
            images: images.is_dir().then_some(images),
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
    if !root.is_dir() {
        return Err(SourceError::NotADir(root.to_path_buf()));
    }
    let first = parts.first().cloned().unwrap_or(Part {
        prefix: String::new(),
        masks: root.to_path_buf(),
        images: None,
        images_superset: false,
    });
    let mut masks = BTreeMap::new();
    let mut images = BTreeMap::new();
    let mut superset = BTreeMap::new();
    for part in parts {
        let join = |k: String| {
            if part.prefix.is_empty() {
                k
            } else {
                format!("{}/{k}", part.prefix)
            }
        };
        let mut found = walk(&part.masks, &["png"])?;
        if found.is_empty() && names == MaskNames::Any {
            // No PNG at all: the masks were saved as JPEGs (lossy).
            found = walk(&part.masks, &["jpg", "jpeg"])?;
        }
        for (k, p) in found {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            match names {
                MaskNames::Any => {
                    masks.entry(join(k)).or_insert(p);
                }
                MaskNames::Suffix(suffix) => {
                    if let Some(stem) = name.strip_suffix(suffix) {
                        let dir = k.rsplit_once('/').map(|(d, _)| d);
                        let key = match dir {
                            Some(d) => format!("{d}/{stem}"),
                            None => stem.to_string(),
                        };
                        masks.entry(join(key)).or_insert(p);
                    }
                }
            }
        }
        if let Some(dir) = &part.images {
            let mut found = walk(dir, IMAGE_EXTS)?;
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
            for (k, p) in found {
                let key = join(k);
                if part.images_superset {
                    superset.insert(key.clone(), ());
                }
                images.entry(key).or_insert(p);
            }
        }
    }
    if masks.is_empty() {
        return Err(SourceError::Empty(first.masks));
    }
    if !images.is_empty() {
        pair_by_stem(&mut masks, &mut images, &mut superset);
    }
    // Images of a superset folder count only where a mask has their key.
    images.retain(|k, _| !superset.contains_key(k) || masks.contains_key(k));
    let mut keys: Vec<&String> = masks.keys().chain(images.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut items = Vec::new();
    let mut images_without_masks = Vec::new();
    for (index, key) in keys.into_iter().enumerate() {
        match masks.get(key) {
            Some(mask) => items.push(Item {
                key: key.clone(),
                index,
                mask: mask.clone(),
                image: images.get(key).cloned(),
            }),
            None => images_without_masks.push((index, images[key].clone())),
        }
    }
    Ok(Dataset {
        root: root.to_path_buf(),
        mask_dir: first.masks,
        image_dir: first.images,
        items,
        images_without_masks,
        candidates: Vec::new(),
    })
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

/// Files under `dir` with one of `exts` (case-insensitive), by key.
/// When two files share a key (`a.png`, `a.jpg`) the first by name wins.
fn walk(dir: &Path, exts: &[&str]) -> Result<BTreeMap<String, PathBuf>, SourceError> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .follow_links(true)
    {
        let entry = entry.map_err(|source| SourceError::Walk {
            path: dir.to_path_buf(),
            source,
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let path = entry.path();
        let ext_ok = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| exts.iter().any(|x| e.eq_ignore_ascii_case(x)));
        if !ext_ok {
            continue;
        }
        let rel = path.strip_prefix(dir).unwrap_or(path).with_extension("");
        let key = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        out.entry(key).or_insert_with(|| path.to_path_buf());
    }
    Ok(out)
}

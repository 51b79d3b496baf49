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

/// Finds the masks under `root`: `root/masks/` (with images in
/// `root/images/`) when it exists, else every PNG under `root`.
pub fn discover(root: &Path) -> Result<Dataset, SourceError> {
    if !root.is_dir() {
        return Err(SourceError::NotADir(root.to_path_buf()));
    }
    let (mask_dir, image_dir) = if root.join("masks").is_dir() {
        let images = root.join("images");
        (root.join("masks"), images.is_dir().then_some(images))
    } else {
        (root.to_path_buf(), None)
    };
    let masks = walk(&mask_dir, &["png"])?;
    if masks.is_empty() {
        return Err(SourceError::Empty(mask_dir));
    }
    let images = match &image_dir {
        Some(d) => walk(d, IMAGE_EXTS)?,
        None => BTreeMap::new(),
    };
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
        mask_dir,
        image_dir,
        items,
        images_without_masks,
    })
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

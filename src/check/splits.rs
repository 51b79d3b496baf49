//! Check stage: which split each mask belongs to. Given splits
//! (`--split name=DIR`) name their masks' keys (`name/...`); otherwise the
//! layout says: a folder of the key named like a split (`train/`, `val/`,
//! `valid/`, `test/`, `train2017/`: the first such folder of the key, as
//! split folders, Cityscapes' `gtFine/<split>/` and COCO/Roboflow split
//! exports give them), or VOC's `ImageSets/Segmentation/<split>.txt` lists
//! (`trainval.txt` is left out when `train.txt` or `val.txt` exists: it is
//! their union). Masks in no split form the split `unsplit`; a dataset
//! with no split at all is the one split `all`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::source::Dataset;

/// The split of masks that no split names.
pub const UNSPLIT: &str = "unsplit";
/// The one split of a dataset without splits.
pub const ALL: &str = "all";

/// Split names (lowercase, trailing digits dropped: `train2017`).
const SPLIT_NAMES: &[&str] = &[
    "train",
    "training",
    "val",
    "valid",
    "validation",
    "test",
    "testing",
    "dev",
];

/// Each mask's split, by position in the dataset, and how they were found.
#[derive(Debug, Clone, Default)]
pub struct Splits {
    /// Split names, sorted.
    pub names: Vec<String>,
    /// `of[k]`: index into `names` of item k's split.
    pub of: Vec<usize>,
    /// How the splits were found (for stderr and the document).
    pub origin: String,
    /// Keys that a VOC list puts in several splits (in the first only).
    pub listed_twice: Vec<String>,
}

impl Splits {
    /// The splits as given: key prefixes `name/`.
    pub fn given(ds: &Dataset, names: &[String]) -> Self {
        let of_key = |key: &str| {
            let first = key.split('/').next().unwrap_or_default();
            names.iter().any(|n| n == first).then(|| first.to_string())
        };
        Self::build(ds, of_key, "given with `--split`".into())
    }

    /// The splits the layout implies (see the module notes).
    pub fn found(ds: &Dataset) -> Self {
        if let Some(lists) = voc_lists(&ds.mask_dir) {
            return Self::from_lists(ds, lists);
        }
        let by_folder = Self::build(ds, folder_split, "split folders".into());
        if by_folder.names.iter().all(|n| n == UNSPLIT) {
            return Self::build(
                ds,
                |_| Some(ALL.to_string()),
                "none found (one split)".into(),
            );
        }
        by_folder
    }

    fn build(ds: &Dataset, of_key: impl Fn(&str) -> Option<String>, origin: String) -> Self {
        let keys: Vec<String> = ds
            .items
            .iter()
            .map(|i| of_key(&i.key).unwrap_or_else(|| UNSPLIT.to_string()))
            .collect();
        let mut names: Vec<String> = keys.clone();
        names.sort();
        names.dedup();
        let of = keys
            .iter()
            .map(|k| names.binary_search(k).unwrap_or(0))
            .collect();
        Self {
            names,
            of,
            origin,
            listed_twice: Vec::new(),
        }
    }

    fn from_lists(ds: &Dataset, lists: Vec<(String, Vec<String>)>) -> Self {
        let mut split_of: BTreeMap<&str, &str> = BTreeMap::new();
        let mut twice = Vec::new();
        for (name, stems) in &lists {
            for s in stems {
                let first = *split_of.entry(s).or_insert(name);
                if first != name {
                    twice.push(s.clone());
                }
            }
        }
        let of_key = |key: &str| {
            let stem = key.rsplit('/').next().unwrap_or(key);
            split_of.get(stem).map(|s| s.to_string())
        };
        let files: Vec<&str> = lists.iter().map(|l| l.0.as_str()).collect();
        let origin = format!("`ImageSets/Segmentation/` lists ({})", files.join(", "));
        let mut s = Self::build(ds, of_key, origin);
        twice.sort();
        twice.dedup();
        s.listed_twice = twice;
        s
    }

    /// More than one split.
    pub fn several(&self) -> bool {
        self.names.len() > 1
    }
}

/// The first folder of `key` named like a split.
fn folder_split(key: &str) -> Option<String> {
    let mut parts: Vec<&str> = key.split('/').collect();
    parts.pop();
    parts
        .into_iter()
        .find(|p| {
            let lower = p.to_ascii_lowercase();
            let name = lower.trim_end_matches(|c: char| c.is_ascii_digit());
            SPLIT_NAMES.contains(&name)
        })
        .map(str::to_string)
}

/// VOC's split lists beside the mask folder: `(split, stems)`, by name.
fn voc_lists(mask_dir: &Path) -> Option<Vec<(String, Vec<String>)>> {
    let dir: PathBuf = mask_dir.parent()?.join("ImageSets").join("Segmentation");
    let mut lists = Vec::new();
    for e in std::fs::read_dir(&dir).ok()?.flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "txt") {
            continue;
        }
        let Some(name) = p.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        let stems = text
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect();
        lists.push((name, stems));
    }
    let has = |n: &str| lists.iter().any(|l: &(String, Vec<String>)| l.0 == n);
    if has("train") || has("val") {
        lists.retain(|l| l.0 != "trainval");
    }
    lists.sort();
    (!lists.is_empty()).then_some(lists)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_folder_named_like_a_split_is_its_split() {
        assert_eq!(folder_split("train/0001"), Some("train".into()));
        assert_eq!(folder_split("data/Valid/a/0001"), Some("Valid".into()));
        assert_eq!(
            folder_split("train2017/000000139"),
            Some("train2017".into())
        );
        assert_eq!(folder_split("trainer/0001"), None);
        assert_eq!(folder_split("train"), None);
    }
}

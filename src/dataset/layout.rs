//! Dataset stage: where a dataset keeps its masks. Recognises the layouts
//! people download (VOC, Cityscapes, ADE20K, mmsegmentation, U-Net style,
//! generic `masks/` beside `images/`) from folder and file names only, and
//! says what it chose; a folder matching none is read as the mask folder.

use std::path::{Path, PathBuf};

use crate::source::{MaskNames, Part};
use crate::store;

/// Where the masks and images of a dataset are.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `VOC layout`, ...; `None` when the folder itself holds the masks.
    pub name: Option<&'static str>,
    pub parts: Vec<Part>,
    pub names: MaskNames,
    /// Things deliberately not read (instance masks, colour renderings).
    pub notes: Vec<String>,
    /// A label-map preset the layout implies (`ade20k`, `ade20k-full`).
    pub preset: Option<&'static str>,
}

/// Folder names that hold masks (lowercase).
const MASK_DIRS: &[&str] = &[
    "masks",
    "mask",
    "labels",
    "label",
    "annotations",
    "annotation",
    "gt",
    "gts",
    "ground_truth",
    "groundtruth",
    "segmentations",
];

/// Folder names that hold the photos (lowercase).
const IMAGE_DIRS: &[&str] = &["images", "image", "imgs", "img", "jpegimages"];

/// Folder names of dataset splits (lowercase).
const SPLITS: &[&str] = &[
    "train",
    "training",
    "val",
    "valid",
    "validation",
    "test",
    "testing",
    "trainval",
    "dev",
];

/// Cityscapes and ADE20K mask names, most specific first.
const SUFFIXES: &[&str] = &[
    "_gtFine_labelTrainIds.png",
    "_gtCoarse_labelTrainIds.png",
    "_labelTrainIds.png",
    "_gtFine_labelIds.png",
    "_gtCoarse_labelIds.png",
    "_labelIds.png",
];

/// Finds the mask folder(s) of the dataset at `root`.
pub fn find(root: &Path) -> Layout {
    if let Some(l) = voc(root) {
        return l;
    }
    if let Some(l) = cityscapes(root) {
        return l;
    }
    if let Some(l) = paired(root, "") {
        return l;
    }
    if let Some(l) = ade_full(root) {
        return l;
    }
    // A split per subfolder: `train/{images,masks}`, `val/{images,masks}`
    // (only folders named like splits: other folders may be other datasets).
    let mut split: Option<Layout> = None;
    for child in subdirs(root) {
        let name = file_name(&child);
        if !SPLITS.contains(&name.to_ascii_lowercase().as_str()) {
            continue;
        }
        if let Some(l) = paired(&child, &name) {
            match &mut split {
                Some(s) if s.name == l.name => s.parts.extend(l.parts),
                Some(_) => {}
                None => split = Some(l),
            }
        }
    }
    if let Some(l) = split {
        return l;
    }
    Layout {
        name: None,
        parts: vec![part("", root.to_path_buf(), None, false)],
        names: suffix_in(root),
        notes: Vec::new(),
        preset: None,
    }
}

fn part(prefix: &str, masks: PathBuf, images: Option<PathBuf>, superset: bool) -> Part {
    Part {
        prefix: prefix.to_string(),
        masks,
        images,
        images_superset: superset,
    }
}

/// PASCAL VOC (and CVAT's VOC export): `SegmentationClass[Aug]/` beside
/// `JPEGImages/`, in `root`, or one tree per subfolder (two levels at most).
fn voc(root: &Path) -> Option<Layout> {
    let tree = |d: &Path| {
        ["SegmentationClassAug", "SegmentationClass"]
            .iter()
            .map(|n| d.join(n))
            .find(|p| store::is_dir(p) && has_png(p))
    };
    let mut levels = vec![vec![root.to_path_buf()]];
    let children = subdirs(root);
    let grandchildren: Vec<PathBuf> = children.iter().flat_map(|c| subdirs(c)).collect();
    levels.push(children);
    levels.push(grandchildren);
    for level in levels {
        let mut parts = Vec::new();
        let mut notes = Vec::new();
        for d in &level {
            let Some(masks) = tree(d) else { continue };
            let prefix = if d == root {
                String::new()
            } else {
                slash(&rel(root, d))
            };
            let images = d.join("JPEGImages");
            if store::is_dir(&d.join("SegmentationObject")) {
                notes.push(format!(
                    "`{}` holds instance ids, not classes: not read",
                    slash(&join_rel(&prefix, "SegmentationObject"))
                ));
            }
            parts.push(part(
                &prefix,
                masks,
                store::is_dir(&images).then_some(images),
                true,
            ));
        }
        if !parts.is_empty() {
            return Some(Layout {
                name: Some("VOC layout"),
                parts,
                names: MaskNames::Any,
                notes,
                preset: None,
            });
        }
    }
    None
}

/// Cityscapes: `gtFine/<split>/<city>/*_gtFine_labelIds.png` (or trainIds)
/// with photos in `leftImg8bit/`; also `DIR` being `gtFine/` itself.
fn cityscapes(root: &Path) -> Option<Layout> {
    let (masks, images) = if store::is_dir(&root.join("gtFine")) {
        (root.join("gtFine"), root.join("leftImg8bit"))
    } else if file_name(root) == "gtFine" {
        let up = root.parent()?.join("leftImg8bit");
        (root.to_path_buf(), up)
    } else {
        return None;
    };
    let mut names = suffix_in(&masks);
    let mut notes = vec![
        "`*_color.png` and `*_instanceIds.png` are renderings and instance ids, not class \
         masks: not read"
            .to_string(),
    ];
    if names == MaskNames::Any || names == MaskNames::Suffix("_seg.png") {
        // No class masks: say so rather than read photos or instance ids.
        names = MaskNames::Suffix("_gtFine_labelTrainIds.png");
        notes.push(
            "`gtFine/` holds no `*_labelIds.png` or `*_labelTrainIds.png`; expected Cityscapes \
             class masks (cityscapesScripts' `createTrainIdLabelImgs` makes the trainIds)"
                .into(),
        );
    }
    Some(Layout {
        name: Some("Cityscapes layout"),
        parts: vec![part(
            "",
            masks,
            store::is_dir(&images).then_some(images),
            false,
        )],
        names,
        notes,
        preset: None,
    })
}

/// The full ADE20K release: `*_seg.png` beside each `*.jpg` (class =
/// R/10*256 + G, B = instance), `*_parts_N.png` part masks beside them.
fn ade_full(root: &Path) -> Option<Layout> {
    let any_seg = store::walk(root, 6)
        .into_iter()
        .take(200_000)
        .find(|e| !e.is_dir && e.name().ends_with("_seg.png"));
    // ADE20K keeps each photo beside its `_seg.png` (`X_seg.png`, `X.jpg`)
    // with its annotations (`X_parts_1.png`, `X_atr.txt`, `X.json`).
    let seg = any_seg?;
    let name = seg.name();
    let stem = name.strip_suffix("_seg.png").unwrap_or(&name);
    let beside = |n: String| store::is_file(&seg.path.with_file_name(n));
    let annotated = stem.starts_with("ADE_")
        || beside(format!("{stem}_parts_1.png"))
        || beside(format!("{stem}_atr.txt"))
        || beside(format!("{stem}.json"));
    if !beside(format!("{stem}.jpg")) || !annotated {
        return None;
    }
    Some(Layout {
        name: Some("ADE20K full layout"),
        parts: vec![part(
            "",
            root.to_path_buf(),
            Some(root.to_path_buf()),
            false,
        )],
        names: MaskNames::Suffix("_seg.png"),
        notes: vec!["`*_parts_N.png` are part masks, not classes: not read".into()],
        preset: Some("ade20k-full"),
    })
}

/// A mask folder beside an image folder in `dir`: mmsegmentation's
/// `ann_dir/` + `img_dir/`, ADE20K SceneParsing's `annotations/` + `images/`,
/// U-Net's `label/` + `image/`, or any of [`MASK_DIRS`] beside [`IMAGE_DIRS`]
/// (`masks/` alone also counts).
fn paired(dir: &Path, prefix: &str) -> Option<Layout> {
    let children = subdirs(dir);
    let named = |names: &[&str]| {
        names.iter().find_map(|n| {
            children
                .iter()
                .find(|c| file_name(c).eq_ignore_ascii_case(n))
                .cloned()
        })
    };
    if let (Some(ann), Some(img)) = (named(&["ann_dir"]), named(&["img_dir"]))
        && has_png(&ann)
    {
        return Some(simple("mmsegmentation layout", prefix, ann, Some(img)));
    }
    let images = named(IMAGE_DIRS);
    for name in MASK_DIRS {
        let Some(masks) = named(&[name]) else {
            continue;
        };
        // `masks/` is taken as it is (its own error if empty); other names
        // need PNGs and photos beside them.
        if !name.starts_with("mask") && (images.is_none() || !has_png(&masks)) {
            continue;
        }
        let ade = file_name(&masks).eq_ignore_ascii_case("annotations")
            && first_png(&masks).is_some_and(|n| n.starts_with("ADE_"));
        let mut l = simple(
            if ade {
                "ADE20K SceneParsing layout"
            } else {
                "masks beside images"
            },
            prefix,
            masks,
            images.clone(),
        );
        if ade {
            l.preset = Some("ade20k");
        }
        return Some(l);
    }
    // One annotation folder per split: `train/` + `trainannot/` (SegNet's
    // CamVid), `train/` + `train_labels/` (Kaggle's CamVid).
    let mut parts = Vec::new();
    for c in &children {
        let name = file_name(c);
        let lower = name.to_ascii_lowercase();
        let Some(stem) = ["annot", "_labels", "_label", "_masks", "_mask", "_gt"]
            .iter()
            .find_map(|s| lower.strip_suffix(s))
        else {
            continue;
        };
        let split = &name[..stem.len()];
        let img = dir.join(split);
        if !split.is_empty() && store::is_dir(&img) && has_png(c) {
            parts.push(part(&join_rel(prefix, split), c.clone(), Some(img), false));
        }
    }
    (!parts.is_empty()).then(|| Layout {
        name: Some("split folders beside annotation folders"),
        parts,
        names: MaskNames::Any,
        notes: Vec::new(),
        preset: None,
    })
}

fn simple(name: &'static str, prefix: &str, masks: PathBuf, images: Option<PathBuf>) -> Layout {
    Layout {
        name: Some(name),
        parts: vec![part(prefix, masks, images, false)],
        names: MaskNames::Any,
        notes: Vec::new(),
        preset: None,
    }
}

/// Cityscapes mask names present under `dir` (trainIds preferred: they are
/// what training reads), else every PNG.
fn suffix_in(dir: &Path) -> MaskNames {
    let mut found = [false; SUFFIXES.len()];
    let mut seg = false;
    for e in store::walk(dir, usize::MAX).iter().filter(|e| !e.is_dir) {
        let n = e.name();
        if let Some(i) = SUFFIXES.iter().position(|s| n.ends_with(s)) {
            found[i] = true;
        }
        seg |= n.ends_with("_seg.png");
    }
    match found.iter().position(|&f| f) {
        Some(i) => MaskNames::Suffix(SUFFIXES[i]),
        None if seg => MaskNames::Suffix("_seg.png"),
        None => MaskNames::Any,
    }
}

/// Folders named like mask folders and holding PNGs, for messages: under
/// `root` (three levels at most), else beside it (under its parent); at
/// most eight, as paths with a trailing `/`.
pub fn candidates(root: &Path) -> Vec<String> {
    let mask_like = |n: &str| {
        let n = n.to_ascii_lowercase();
        MASK_DIRS.contains(&n.as_str())
            || [
                "segmentationclass",
                "segmentationclassaug",
                "gtfine",
                "ann_dir",
                "semseg",
            ]
            .contains(&n.as_str())
            || n.ends_with("annot")
            || n.ends_with("_labels")
            || n.ends_with("_masks")
    };
    let under = |dir: &Path, depth: usize| -> Vec<String> {
        store::walk(dir, depth)
            .into_iter()
            .filter(|e| e.is_dir && e.path != root)
            .filter(|e| mask_like(&e.name()) && has_png(&e.path))
            .map(|e| format!("{}/", slash(&e.path.display().to_string())))
            .take(8)
            .collect()
    };
    let found = under(root, 3);
    if !found.is_empty() {
        return found;
    }
    root.parent().map(|p| under(p, 2)).unwrap_or_default()
}

/// The line stated on stderr: `masks: `SegmentationClass/` (VOC layout), images: `JPEGImages/``.
pub fn describe(layout: &Layout, root: &Path) -> Option<String> {
    let Some(name) = layout.name else {
        // DIR itself, but only some of its PNGs: say which.
        return match layout.names {
            MaskNames::Suffix(s) => Some(format!("masks: `*{s}` under `{}`", root.display())),
            MaskNames::Any => None,
        };
    };
    let list = |dirs: Vec<String>| {
        dirs.iter()
            .map(|d| format!("`{d}/`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let masks = list(
        layout
            .parts
            .iter()
            .map(|p| slash(&rel(root, &p.masks)))
            .collect(),
    );
    let images: Vec<String> = layout
        .parts
        .iter()
        .filter_map(|p| p.images.as_ref().map(|i| slash(&rel(root, i))))
        .collect();
    let images = if images.is_empty() {
        "none found".to_string()
    } else {
        list(images)
    };
    let only = match layout.names {
        MaskNames::Suffix(s) => format!(", only `*{s}`"),
        MaskNames::Any => String::new(),
    };
    Some(format!("masks: {masks} ({name}{only}), images: {images}"))
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    store::subdirs(dir)
}

/// The first mask-like file (PNG, or JPEG) under `dir`, three levels down.
fn first_png(dir: &Path) -> Option<String> {
    store::walk(dir, 3)
        .into_iter()
        .filter(|e| !e.is_dir)
        .map(|e| e.name())
        .find(|n| {
            let n = n.to_ascii_lowercase();
            n.ends_with(".png") || n.ends_with(".jpg") || n.ends_with(".jpeg")
        })
}

fn has_png(dir: &Path) -> bool {
    first_png(dir).is_some()
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn rel(root: &Path, p: &Path) -> String {
    let r = p.strip_prefix(root).unwrap_or(p);
    if r.as_os_str().is_empty() {
        ".".to_string()
    } else {
        r.display().to_string()
    }
}

fn join_rel(prefix: &str, name: &str) -> String {
    if prefix.is_empty() || prefix == "." {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

fn slash(s: &str) -> String {
    s.replace('\\', "/")
}

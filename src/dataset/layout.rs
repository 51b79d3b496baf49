//! Dataset stage: where a dataset keeps its masks. One bounded walk of DIR,
//! breadth first (nearest folders first), summarises every folder; the
//! layouts people download (VOC, Cityscapes, ADE20K, mmsegmentation, U-Net
//! style, generic `masks/` beside `images/`) are recognised from those
//! summaries at any depth, and the nearest one wins. A folder matching none
//! is read as the mask folder. Everything named here lies inside DIR (but a
//! `gtFine/` DIR's `leftImg8bit/` photos beside it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::source::{MaskNames, Part};
use crate::store;

/// Files and folders the layout walk visits at most.
pub const WALK_LIMIT: usize = 500_000;

/// Mask folders named in messages, at most.
const MAX_CANDIDATES: usize = 8;

/// Where the masks and images of a dataset are.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `VOC layout`, ...; `None` when the folder itself holds the masks.
    pub name: Option<&'static str>,
    pub parts: Vec<Part>,
    pub names: MaskNames,
    /// Things deliberately not read (instance masks, colour renderings),
    /// and a walk that stopped at [`WALK_LIMIT`].
    pub notes: Vec<String>,
    /// A label-map preset the layout implies (`ade20k`, `ade20k-full`).
    pub preset: Option<&'static str>,
    /// Folders inside DIR named like mask folders and holding PNGs, nearest
    /// first, as paths with a trailing `/` (for messages).
    pub candidates: Vec<String>,
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

/// Cityscapes and ADE20K mask names, most specific first.
const SUFFIXES: &[&str] = &[
    "_gtFine_labelTrainIds.png",
    "_gtCoarse_labelTrainIds.png",
    "_labelTrainIds.png",
    "_gtFine_labelIds.png",
    "_gtCoarse_labelIds.png",
    "_labelIds.png",
    "_seg.png",
];

/// What the walk saw in one folder (file names are not kept).
#[derive(Debug, Default)]
struct Node {
    path: PathBuf,
    name: String,
    depth: usize,
    parent: Option<usize>,
    /// Subfolders, by name.
    children: Vec<usize>,
    /// The first PNG or JPEG directly inside, by name.
    first_image: Option<String>,
    /// Bit i: a file name ends with `SUFFIXES[i]`.
    suffixes: u8,
    /// An ADE20K `X_seg.png` with `X.jpg` and its annotations beside it.
    ade_seg: bool,
    /// A folder maskprep wrote (a report, weights): not data.
    marked: bool,
}

/// The folders under DIR, breadth first: `nodes[0]` is DIR.
struct Tree {
    nodes: Vec<Node>,
    /// The walk stopped at [`WALK_LIMIT`].
    truncated: bool,
}

impl Tree {
    /// Walks `root` (a folder or a store prefix) breadth first, at most
    /// `limit` entries.
    fn walk(root: &Path, limit: usize) -> Self {
        let mut tree = Tree {
            nodes: vec![Node {
                path: root.to_path_buf(),
                name: file_name(root),
                ..Node::default()
            }],
            truncated: false,
        };
        if store::is_url(root) {
            tree.fill_from_listing(root, limit);
        } else {
            tree.fill_local(limit);
        }
        tree
    }

    fn add_dir(&mut self, parent: usize, name: String, path: PathBuf) -> usize {
        let i = self.nodes.len();
        let depth = self.nodes[parent].depth + 1;
        self.nodes.push(Node {
            path,
            name,
            depth,
            parent: Some(parent),
            ..Node::default()
        });
        self.nodes[parent].children.push(i);
        i
    }

    /// A local folder, read one folder at a time in breadth-first order;
    /// symlinked folders are followed unless they lead back up.
    fn fill_local(&mut self, limit: usize) {
        let mut seen = 0usize;
        let mut i = 0;
        while i < self.nodes.len() && !self.truncated {
            let Ok(rd) = std::fs::read_dir(&self.nodes[i].path) else {
                i += 1;
                continue;
            };
            let mut files = Vec::new();
            let mut dirs = Vec::new();
            for e in rd.flatten() {
                if seen >= limit {
                    self.truncated = true;
                    break;
                }
                seen += 1;
                let name = e.file_name().to_string_lossy().into_owned();
                let Ok(ft) = e.file_type() else { continue };
                let path = e.path();
                if ft.is_dir() {
                    dirs.push((name, path));
                } else if ft.is_symlink() && path.is_dir() {
                    if !self.loops(i, &path) {
                        dirs.push((name, path));
                    }
                } else {
                    files.push(name);
                }
            }
            files.sort();
            dirs.sort();
            self.summarise(i, &files);
            if !self.nodes[i].marked {
                for (name, path) in dirs {
                    self.add_dir(i, name, path);
                }
            }
            i += 1;
        }
    }

    /// Does the symlinked folder `link` (inside node `i`) lead to `i` or
    /// to a folder above it?
    fn loops(&self, i: usize, link: &Path) -> bool {
        let (Ok(target), Ok(here)) = (
            std::fs::canonicalize(link),
            std::fs::canonicalize(&self.nodes[i].path),
        ) else {
            return true;
        };
        here.starts_with(&target)
    }

    /// A store prefix: its listing (kept for the run, so the scan lists
    /// nothing again), folders being the keys' prefixes.
    fn fill_from_listing(&mut self, root: &Path, limit: usize) {
        let entries = store::walk(root, usize::MAX);
        let mut files: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        // Depth-first order: an entry's folder is the last folder seen one
        // level up.
        let mut stack: Vec<usize> = vec![0];
        for (seen, e) in entries.into_iter().enumerate() {
            if seen >= limit {
                self.truncated = true;
                break;
            }
            stack.truncate(e.depth);
            let Some(&parent) = stack.last() else {
                continue;
            };
            if e.is_dir {
                let i = self.add_dir(parent, e.name(), e.path);
                stack.push(i);
            } else {
                files.entry(parent).or_default().push(e.name());
            }
        }
        for (i, mut names) in files {
            names.sort();
            self.summarise(i, &names);
        }
    }

    /// Records what the (sorted) file names of folder `i` say.
    fn summarise(&mut self, i: usize, files: &[String]) {
        let beside = |n: String| files.binary_search(&n).is_ok();
        let mut node_suffixes = 0u8;
        let mut first_image = None;
        let mut ade_seg = false;
        for n in files {
            let lower = n.to_ascii_lowercase();
            if first_image.is_none() && [".png", ".jpg", ".jpeg"].iter().any(|e| lower.ends_with(e))
            {
                first_image = Some(n.clone());
            }
            if let Some(s) = SUFFIXES.iter().position(|s| n.ends_with(s)) {
                node_suffixes |= 1 << s;
            }
            // ADE20K keeps each photo beside its `_seg.png` (`X_seg.png`,
            // `X.jpg`) with its annotations (`X_parts_1.png`, `X_atr.txt`,
            // `X.json`).
            if !ade_seg && let Some(stem) = n.strip_suffix("_seg.png") {
                let annotated = stem.starts_with("ADE_")
                    || beside(format!("{stem}_parts_1.png"))
                    || beside(format!("{stem}_atr.txt"))
                    || beside(format!("{stem}.json"));
                ade_seg = annotated && beside(format!("{stem}.jpg"));
            }
        }
        let marked = crate::output::MARKS
            .iter()
            .any(|(m, _)| beside((*m).to_string()))
            && crate::output::is_marked(&self.nodes[i].path);
        let node = &mut self.nodes[i];
        node.first_image = first_image;
        node.suffixes = node_suffixes;
        node.ade_seg = ade_seg;
        node.marked = marked;
    }

    /// The subfolder of `i` named `name` (ignoring case), not one maskprep wrote.
    fn child(&self, i: usize, name: &str) -> Option<usize> {
        self.nodes[i]
            .children
            .iter()
            .copied()
            .find(|&c| !self.nodes[c].marked && self.nodes[c].name.eq_ignore_ascii_case(name))
    }

    /// The subfolder of `i` named exactly `name`.
    fn child_exact(&self, i: usize, name: &str) -> Option<usize> {
        self.nodes[i]
            .children
            .iter()
            .copied()
            .find(|&c| !self.nodes[c].marked && self.nodes[c].name == name)
    }

    /// The first mask-like file (PNG, or JPEG) in `i` or below it, three
    /// levels down, depth first by name.
    fn first_png(&self, i: usize) -> Option<&str> {
        fn go(t: &Tree, i: usize, left: usize) -> Option<&str> {
            if let Some(n) = &t.nodes[i].first_image {
                return Some(n.as_str());
            }
            if left == 0 {
                return None;
            }
            t.nodes[i].children.iter().find_map(|&c| go(t, c, left - 1))
        }
        go(self, i, 3)
    }

    fn has_png(&self, i: usize) -> bool {
        self.first_png(i).is_some()
    }

    /// The [`SUFFIXES`] bits of every file in `i` and below.
    fn suffixes_under(&self, i: usize) -> u8 {
        let mut bits = 0;
        let mut stack = vec![i];
        while let Some(n) = stack.pop() {
            bits |= self.nodes[n].suffixes;
            stack.extend(&self.nodes[n].children);
        }
        bits
    }

    /// Is `i` inside (or equal to) one of `claimed`?
    fn inside(&self, i: usize, claimed: &[usize]) -> bool {
        let mut at = Some(i);
        while let Some(n) = at {
            if claimed.contains(&n) {
                return true;
            }
            at = self.nodes[n].parent;
        }
        false
    }

    /// Is `i` a folder maskprep wrote, or inside one?
    fn in_marked(&self, i: usize) -> bool {
        let mut at = Some(i);
        while let Some(n) = at {
            if self.nodes[n].marked {
                return true;
            }
            at = self.nodes[n].parent;
        }
        false
    }
}

/// One layout recognised at folder `at`.
struct Match {
    name: &'static str,
    at: usize,
    /// Mask folders with their image folders (keys get `sub` in front when
    /// the layout has several parts).
    parts: Vec<MatchPart>,
    names: MaskNames,
    notes: Vec<String>,
    preset: Option<&'static str>,
}

struct MatchPart {
    sub: String,
    masks: usize,
    images: Option<PathBuf>,
    /// The image folder, when it is inside DIR.
    images_node: Option<usize>,
    superset: bool,
}

/// Finds the mask folder(s) of the dataset at `root`.
pub fn find(root: &Path) -> Layout {
    find_within(root, WALK_LIMIT)
}

/// [`find`], walking at most `limit` files and folders.
fn find_within(root: &Path, limit: usize) -> Layout {
    let tree = Tree::walk(root, limit);
    let mut notes = Vec::new();
    if tree.truncated {
        notes.push(format!(
            "the layout search stopped after {limit} files and folders under `{}` \
             (nearest first); pass the mask folder itself if the masks are not found",
            root.display()
        ));
    }
    let candidates = candidates(&tree);
    let matches: Vec<Match> = (0..tree.nodes.len())
        .filter(|&i| !tree.in_marked(i))
        .filter_map(|i| recognise(&tree, root, i))
        .collect();
    // The nearest layout wins (ties: the first kind tried, then by name);
    // others of the same kind anywhere join it, unless inside its folders.
    let Some(first) = matches.iter().min_by_key(|m| tree.nodes[m.at].depth) else {
        return Layout {
            name: None,
            parts: vec![Part {
                prefix: String::new(),
                masks: root.to_path_buf(),
                images: None,
                images_superset: false,
            }],
            names: names_of(tree.suffixes_under(0)),
            notes,
            preset: None,
            candidates,
        };
    };
    let (name, names, preset) = (first.name, first.names, first.preset);
    let mut claimed: Vec<usize> = Vec::new();
    let mut chosen: Vec<&Match> = Vec::new();
    for m in matches
        .iter()
        .filter(|m| m.name == name && m.names == names)
    {
        if tree.inside(m.at, &claimed) {
            continue;
        }
        for p in &m.parts {
            claimed.push(p.masks);
            claimed.extend(p.images_node);
        }
        chosen.push(m);
    }
    if preset == Some("ade20k-full") {
        return ade_full(&tree, &chosen, notes, candidates);
    }
    let count: usize = chosen.iter().map(|m| m.parts.len()).sum();
    let mut parts = Vec::new();
    for m in &chosen {
        notes.extend(m.notes.iter().cloned());
        for p in &m.parts {
            let prefix = if count == 1 {
                String::new()
            } else {
                join_rel(&rel_prefix(root, &tree.nodes[m.at].path), &p.sub)
            };
            parts.push(Part {
                prefix,
                masks: tree.nodes[p.masks].path.clone(),
                images: p.images.clone(),
                images_superset: p.superset,
            });
        }
    }
    notes.dedup();
    Layout {
        name: Some(name),
        parts,
        names,
        notes,
        preset,
        candidates,
    }
}

/// The full ADE20K release: one part, the nearest folder holding every
/// scene folder recognised, reading only its `*_seg.png`.
fn ade_full(tree: &Tree, chosen: &[&Match], mut notes: Vec<String>, cands: Vec<String>) -> Layout {
    let mut common = tree.nodes[chosen[0].at].path.clone();
    for m in chosen {
        while !tree.nodes[m.at].path.starts_with(&common) {
            if !common.pop() {
                break;
            }
        }
    }
    notes.push("`*_parts_N.png` are part masks, not classes: not read".into());
    Layout {
        name: Some("ADE20K full layout"),
        parts: vec![Part {
            prefix: String::new(),
            masks: common.clone(),
            images: Some(common),
            images_superset: false,
        }],
        names: MaskNames::Suffix("_seg.png"),
        notes,
        preset: Some("ade20k-full"),
        candidates: cands,
    }
}

/// The layout at folder `i`, trying each kind in turn.
fn recognise(tree: &Tree, root: &Path, i: usize) -> Option<Match> {
    voc(tree, i)
        .or_else(|| cityscapes(tree, root, i))
        .or_else(|| paired(tree, i))
        .or_else(|| {
            tree.nodes[i].ade_seg.then(|| Match {
                name: "ADE20K full layout",
                at: i,
                parts: Vec::new(),
                names: MaskNames::Suffix("_seg.png"),
                notes: Vec::new(),
                preset: Some("ade20k-full"),
            })
        })
}

fn part(sub: &str, tree: &Tree, masks: usize, images: Option<usize>, superset: bool) -> MatchPart {
    MatchPart {
        sub: sub.to_string(),
        masks,
        images: images.map(|i| tree.nodes[i].path.clone()),
        images_node: images,
        superset,
    }
}

/// PASCAL VOC (and CVAT's VOC export): `SegmentationClass[Aug]/` beside
/// `JPEGImages/`.
fn voc(tree: &Tree, i: usize) -> Option<Match> {
    let masks = ["SegmentationClassAug", "SegmentationClass"]
        .iter()
        .filter_map(|n| tree.child_exact(i, n))
        .find(|&m| tree.has_png(m))?;
    let mut notes = Vec::new();
    if tree.child_exact(i, "SegmentationObject").is_some() {
        notes.push(format!(
            "`{}` holds instance ids, not classes: not read",
            slash(&join_rel(
                &rel_prefix(&tree.nodes[0].path, &tree.nodes[i].path),
                "SegmentationObject"
            ))
        ));
    }
    let images = tree.child_exact(i, "JPEGImages");
    Some(Match {
        name: "VOC layout",
        at: i,
        parts: vec![part("", tree, masks, images, true)],
        names: MaskNames::Any,
        notes,
        preset: None,
    })
}

/// Cityscapes: `gtFine/<split>/<city>/*_gtFine_labelIds.png` (or trainIds)
/// with photos in `leftImg8bit/`; also `DIR` being `gtFine/` itself.
fn cityscapes(tree: &Tree, root: &Path, i: usize) -> Option<Match> {
    let (masks, images, images_node) = if let Some(gt) = tree.child_exact(i, "gtFine") {
        let img = tree.child_exact(i, "leftImg8bit");
        (gt, img.map(|n| tree.nodes[n].path.clone()), img)
    } else if i == 0 && tree.nodes[0].name == "gtFine" {
        let up = root.parent()?.join("leftImg8bit");
        (0, store::is_dir(&up).then_some(up), None)
    } else {
        return None;
    };
    let mut names = names_of(tree.suffixes_under(masks));
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
    Some(Match {
        name: "Cityscapes layout",
        at: i,
        parts: vec![MatchPart {
            sub: String::new(),
            masks,
            images,
            images_node,
            superset: false,
        }],
        names,
        notes,
        preset: None,
    })
}

/// A mask folder beside an image folder in folder `i`: mmsegmentation's
/// `ann_dir/` + `img_dir/`, ADE20K SceneParsing's `annotations/` + `images/`,
/// U-Net's `label/` + `image/`, or any of [`MASK_DIRS`] beside [`IMAGE_DIRS`]
/// (`masks/` alone also counts); else one annotation folder per split.
fn paired(tree: &Tree, i: usize) -> Option<Match> {
    let named = |names: &[&str]| names.iter().find_map(|n| tree.child(i, n));
    let simple = |name, masks, images| Match {
        name,
        at: i,
        parts: vec![part("", tree, masks, images, false)],
        names: MaskNames::Any,
        notes: Vec::new(),
        preset: None,
    };
    if let (Some(ann), Some(img)) = (named(&["ann_dir"]), named(&["img_dir"]))
        && tree.has_png(ann)
    {
        return Some(simple("mmsegmentation layout", ann, Some(img)));
    }
    let images = named(IMAGE_DIRS);
    for &name in MASK_DIRS {
        let Some(masks) = named(&[name]) else {
            continue;
        };
        // `masks/` is taken as it is (its own error if empty); other names
        // need PNGs and photos beside them.
        if !name.starts_with("mask") && (images.is_none() || !tree.has_png(masks)) {
            continue;
        }
        let ade = tree.nodes[masks].name.eq_ignore_ascii_case("annotations")
            && tree.first_png(masks).is_some_and(|n| n.starts_with("ADE_"));
        if ade {
            let mut m = simple("ADE20K SceneParsing layout", masks, images);
            m.preset = Some("ade20k");
            return Some(m);
        }
        return Some(simple("masks beside images", masks, images));
    }
    split_annotations(tree, i)
}

/// One annotation folder per split: `train/` + `trainannot/` (SegNet's
/// CamVid), `train/` + `train_labels/` (Kaggle's CamVid).
fn split_annotations(tree: &Tree, i: usize) -> Option<Match> {
    let mut parts = Vec::new();
    for &c in &tree.nodes[i].children {
        let name = &tree.nodes[c].name;
        let lower = name.to_ascii_lowercase();
        let Some(stem) = ["annot", "_labels", "_label", "_masks", "_mask", "_gt"]
            .iter()
            .find_map(|s| lower.strip_suffix(s))
        else {
            continue;
        };
        let split = &name[..stem.len()];
        if split.is_empty() || tree.nodes[c].marked || !tree.has_png(c) {
            continue;
        }
        if let Some(img) = tree.child_exact(i, split) {
            parts.push(part(split, tree, c, Some(img), false));
        }
    }
    (!parts.is_empty()).then(|| Match {
        name: "split folders beside annotation folders",
        at: i,
        parts,
        names: MaskNames::Any,
        notes: Vec::new(),
        preset: None,
    })
}

/// Cityscapes mask names present (trainIds preferred: they are what
/// training reads), else ADE20K's `_seg.png`, else every PNG.
fn names_of(bits: u8) -> MaskNames {
    match (0..SUFFIXES.len()).find(|&s| bits & (1 << s) != 0) {
        Some(s) => MaskNames::Suffix(SUFFIXES[s]),
        None => MaskNames::Any,
    }
}

/// Folders inside DIR named like mask folders and holding PNGs, nearest
/// first; at most [`MAX_CANDIDATES`].
fn candidates(tree: &Tree) -> Vec<String> {
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
    // `nodes` is in breadth-first order: nearest first.
    (1..tree.nodes.len())
        .filter(|&i| !tree.in_marked(i))
        .filter(|&i| mask_like(&tree.nodes[i].name) && tree.has_png(i))
        .map(|i| format!("{}/", slash(&tree.nodes[i].path.display().to_string())))
        .take(MAX_CANDIDATES)
        .collect()
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

/// `p` relative to `root` as a key prefix: empty for `root` itself.
fn rel_prefix(root: &Path, p: &Path) -> String {
    match rel(root, p).as_str() {
        "." => String::new(),
        r => slash(r),
    }
}

fn join_rel(prefix: &str, name: &str) -> String {
    if prefix.is_empty() || prefix == "." {
        name.to_string()
    } else if name.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

fn slash(s: &str) -> String {
    s.replace('\\', "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"").unwrap();
    }

    /// Nearest first: a walk stopped by its bound has still seen the folders
    /// beside a huge one, and says that it stopped.
    #[test]
    fn a_bounded_walk_sees_near_folders_first_and_says_it_stopped() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for i in 0..50 {
            touch(&root.join(format!("images/{i:03}.jpg")));
        }
        touch(&root.join("masks/000.png"));
        touch(&root.join("deep/a/b/c/d/e/ann_dir/000.png"));
        touch(&root.join("deep/a/b/c/d/e/img_dir/000.jpg"));
        let l = find_within(root, 30);
        assert_eq!(l.name, Some("masks beside images"));
        assert_eq!(l.parts[0].masks, root.join("masks"));
        assert!(
            l.notes.iter().any(|n| n.contains("stopped after 30")),
            "{:?}",
            l.notes
        );
        let all = find_within(root, WALK_LIMIT);
        assert!(all.notes.is_empty(), "{:?}", all.notes);
        // The nearest layout wins over a deeper one of another kind.
        assert_eq!(all.parts.len(), 1);
        assert_eq!(all.parts[0].masks, root.join("masks"));
    }

    /// A symlink back up the tree is not followed round and round.
    #[cfg(unix)]
    #[test]
    fn a_symlink_loop_ends_the_walk_of_that_branch() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        touch(&root.join("data/train/label/0.png"));
        touch(&root.join("data/train/image/0.jpg"));
        std::os::unix::fs::symlink(root.join("data"), root.join("data/train/again")).unwrap();
        let l = find_within(root, WALK_LIMIT);
        assert!(l.notes.is_empty(), "{:?}", l.notes);
        assert_eq!(l.parts.len(), 1);
        assert_eq!(l.parts[0].masks, root.join("data/train/label"));
        assert_eq!(l.parts[0].prefix, "");
    }
}

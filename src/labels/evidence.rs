//! Evidence for label-map detection: facts measured on the histograms of a
//! sample of masks (which values occur, how many pixels sit at pure 0/255
//! channel values, which colours only ever appear combined), how sure the
//! chosen reading is, and whether a file is a photograph rather than a mask.
//! Everything here reads histograms, never pixels.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::decode::{MaskFormat, MaskHist};

/// How sure a detected reading is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Confidence {
    /// Two readings fit the masks about equally: a guess, said loudly.
    Low,
    /// The evidence favours this reading; names or details may be off.
    Medium,
    /// A map file, a known dataset, or values that admit one reading.
    High,
}

/// How a detected label map was chosen: stated on stderr and in the JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub confidence: Confidence,
    /// The reading chosen (`binary`, `rgb-bits`, `palette`, `index`, a preset
    /// or a map file).
    pub reading: String,
    /// The facts it rests on.
    pub evidence: Vec<String>,
    /// The runner-up reading and why it lost (none when nothing else fits).
    pub alternative: Option<String>,
    /// How to settle it when unsure.
    pub settle: Option<String>,
    /// Share of pixels whose channels are not all 0 or 255 (anti-aliased,
    /// resized or compressed edges), read through the threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blended_fraction: Option<f64>,
}

impl Detection {
    /// A sure reading with one fact behind it.
    pub fn sure(reading: &str, fact: impl Into<String>) -> Self {
        Self {
            confidence: Confidence::High,
            reading: reading.to_string(),
            evidence: vec![fact.into()],
            alternative: None,
            settle: None,
            blended_fraction: None,
        }
    }

    /// The loud warning for a guess, naming the fix; `None` when sure enough.
    pub fn warning(&self) -> Option<String> {
        if self.confidence != Confidence::Low {
            return None;
        }
        let alt = self
            .alternative
            .as_ref()
            .map(|a| format!("; the other reading: {a}"))
            .unwrap_or_default();
        let settle = self.settle.clone().unwrap_or_else(|| settle("DIR"));
        Some(format!(
            "the label map is a guess (low confidence): read as {}, because {}{alt}; {settle}",
            self.reading,
            self.evidence.join("; ")
        ))
    }
}

/// How to settle a doubtful reading of the dataset at `dir`.
pub fn settle(dir: &str) -> String {
    format!(
        "settle it with `maskprep labels {dir} -o labels.toml`, edit the file (kind `palette` \
         or `rgb-bits`), then pass `--labels labels.toml`"
    )
}

/// Pixel totals of a sample of RGB masks, by what their channels say.
#[derive(Debug, Default)]
pub struct RgbEvidence {
    pub pixels: u64,
    /// Pixels whose channels are all exactly 0 or 255.
    pub pure: u64,
    /// Pixels by thresholded colour (bit 0 = B, 1 = G, 2 = R at >= 128).
    pub by_bits: [u64; 8],
    /// Pixels whose channels are all near 0 or 255 (<= 32 or >= 223):
    /// pure, or compression noise on a pure colour.
    pub near: u64,
    /// Pixels of the commonest colour that is not near-pure.
    pub largest_mid: u64,
    /// Pixels of the commonest non-pure colour more than 8 away from 0/255
    /// in some channel (a flat colour of its own, not noise on a pure one).
    pub largest_off: u64,
    /// Distinct colours.
    pub colours: usize,
    /// Every colour is gray, its channels within 24 of each other (JPEG
    /// compression tints gray masks slightly).
    pub all_gray: bool,
}

impl RgbEvidence {
    pub fn measure(sample: &[(PathBuf, MaskHist)]) -> Self {
        let mut e = Self {
            all_gray: true,
            ..Self::default()
        };
        let mut blends: BTreeMap<u32, u64> = BTreeMap::new();
        let mut offs: BTreeMap<u32, u64> = BTreeMap::new();
        let mut colours = std::collections::BTreeSet::new();
        for (_, h) in sample {
            for &(code, n) in &h.codes {
                let rgb = code & 0x00FF_FFFF;
                colours.insert(rgb);
                let ch = [rgb >> 16 & 0xFF, rgb >> 8 & 0xFF, rgb & 0xFF];
                e.pixels += n;
                let spread = ch.iter().max().unwrap_or(&0) - ch.iter().min().unwrap_or(&0);
                e.all_gray &= spread <= 24;
                if ch.iter().all(|&c| c == 0 || c == 255) {
                    e.pure += n;
                }
                if ch.iter().all(|&c| c <= 32 || c >= 223) {
                    e.near += n;
                } else {
                    *blends.entry(rgb).or_default() += n;
                }
                if !ch.iter().all(|&c| c <= 8 || c >= 247) {
                    *offs.entry(rgb).or_default() += n;
                }
                let bits = ch
                    .iter()
                    .fold(0usize, |b, &c| b << 1 | usize::from(c >= 128));
                e.by_bits[bits] += n;
            }
        }
        e.largest_mid = blends.values().copied().max().unwrap_or(0);
        e.largest_off = offs.values().copied().max().unwrap_or(0);
        e.colours = colours.len();
        e
    }

    pub fn blended(&self) -> u64 {
        self.pixels - self.pure
    }

    /// Edges blended by anti-aliasing, resizing or compression: most pixels
    /// near-pure, the truly intermediate ones a small share spread over many
    /// colours none of which is common (a palette's non-pure colour is a
    /// flat region: one common colour).
    /// Dark or pale flat colours (index values stored in RGB, say) are not
    /// noise: no colour far from 0/255 may be common, and thresholding must
    /// leave some pixel with a channel on.
    pub fn blended_edges(&self) -> bool {
        let mid = self.pixels - self.near;
        let on: u64 = self.by_bits[1..].iter().sum();
        self.blended() > 0
            && mid * 4 <= self.pixels
            && self.largest_mid * 100 <= self.pixels
            && self.largest_off * 100 <= self.pixels
            && on * 100 >= self.pixels
    }
}

/// Palette or overlapping channels? Measured on thresholded colours.
#[derive(Debug)]
pub struct Overlap {
    /// Pixels with at least one channel on.
    pub labelled: u64,
    /// Of those, pixels with 2+ channels on.
    pub compound: u64,
    /// Compound colours one of whose components never appears alone, with
    /// that component (`#ffff00` needs `#00ff00`).
    pub orphans: Vec<(u32, u32)>,
    /// No pixel is black (with channels, every pixel would carry a class).
    pub no_black: bool,
}

impl Overlap {
    pub fn measure(e: &RgbEvidence) -> Self {
        let colour = |bits: usize| -> u32 {
            (if bits & 4 != 0 { 0xFF0000 } else { 0 })
                | (if bits & 2 != 0 { 0x00FF00 } else { 0 })
                | (if bits & 1 != 0 { 0x0000FF } else { 0 })
        };
        let mut labelled = 0;
        let mut compound = 0;
        let mut orphans = Vec::new();
        for bits in 1..8usize {
            let n = e.by_bits[bits];
            labelled += n;
            if bits.count_ones() < 2 || n == 0 {
                continue;
            }
            compound += n;
            for single in [4usize, 2, 1] {
                if bits & single != 0 && e.by_bits[single] == 0 {
                    orphans.push((colour(bits), colour(single)));
                }
            }
        }
        Self {
            labelled,
            compound,
            orphans,
            no_black: e.by_bits[0] == 0,
        }
    }

    pub fn share(&self) -> f64 {
        if self.labelled == 0 {
            0.0
        } else {
            self.compound as f64 / self.labelled as f64
        }
    }
}

/// Pixel totals by value of a sample of index (gray or palette) masks.
pub fn value_pixels(sample: &[(PathBuf, MaskHist)]) -> BTreeMap<u32, u64> {
    let mut m = BTreeMap::new();
    for (_, h) in sample {
        for &(v, n) in &h.codes {
            *m.entry(v).or_default() += n;
        }
    }
    m
}

/// Is 255 "ignore" beside a small range of classes (VOC style: 0..K plus
/// 255), rather than one more class of evenly spread values (0/85/170/255)?
pub fn ignore_255(values: &BTreeMap<u32, u64>) -> bool {
    if !values.contains_key(&255) {
        return false;
    }
    let others: Vec<u32> = values.keys().copied().filter(|&v| v != 255).collect();
    let Some(&max) = others.last() else {
        return false;
    };
    let max_gap = others.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    max <= 200 && 255 - max > 2 * max_gap
}

/// Folder names that hold photographs, not masks (lowercase): a file there
/// with only some signs of a photograph is taken for one.
pub const IMAGE_FOLDERS: &[&str] = &[
    "images",
    "image",
    "imgs",
    "img",
    "jpegimages",
    "img_dir",
    "leftimg8bit",
    "photos",
    "photo",
    "raw_images",
];

/// Is `dir` named like a folder of photographs?
pub fn image_folder_named(dir: &Path) -> bool {
    dir.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| IMAGE_FOLDERS.contains(&n.to_ascii_lowercase().as_str()))
}

/// What a decoded file's histogram says about it being a photograph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhotoEvidence {
    /// Flat codes: a mask.
    None,
    /// A grayscale file with a modest number of levels spread smoothly: a
    /// photo with few gray levels, or an index mask with many classes. Its
    /// folder decides (see [`weak_photo_reason`]); the text is the evidence.
    Weak(String),
    /// A photograph on its own evidence (see [`photo_reason`]).
    Strong(String),
}

/// [`photo_reason`], or else the weaker signs of a photograph with few gray
/// levels: at least 16 levels, three in four of them next to another, no
/// level holding half the pixels and no two holding four in five (a mask's
/// background and foreground do, anti-aliased edges or not).
pub fn photo_evidence(h: &MaskHist) -> PhotoEvidence {
    if let Some(why) = photo_reason(h) {
        return PhotoEvidence::Strong(why);
    }
    let total = h.pixels();
    let n = h.codes.len();
    if !matches!(h.format, MaskFormat::Gray8) || total == 0 || n < 16 {
        return PhotoEvidence::None;
    }
    let adjacent = h.codes.windows(2).filter(|w| w[1].0 == w[0].0 + 1).count();
    let mut counts: Vec<u64> = h.codes.iter().map(|c| c.1).collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let top1 = counts[0] as f64 / total as f64;
    let top2 = (counts[0] + counts[1]) as f64 / total as f64;
    if adjacent * 4 < (n - 1) * 3 || top1 >= 0.5 || top2 >= 0.8 {
        return PhotoEvidence::None;
    }
    PhotoEvidence::Weak(format!(
        "{n} gray levels, {adjacent} of them one above the one before, the commonest \
         holding {:.0}% of pixels (a photograph with few gray levels, or an index mask with \
         many classes)",
        top1 * 100.0
    ))
}

/// Decides a [`PhotoEvidence::Weak`] file at `path` by its folder: a
/// photograph when the folder is named like a folder of photographs, or
/// when most files of the folder whose reading is clear (`photos` of
/// `clear`) are photographs. The reason names the evidence.
pub fn weak_photo_reason(evidence: &str, path: &Path, photos: u64, clear: u64) -> Option<String> {
    let dir = path.parent()?;
    let shown = format!("{}/", dir.display());
    let because = if image_folder_named(dir) {
        format!("its folder `{shown}` is named like a folder of photographs")
    } else if photos > 0 && photos * 2 > clear {
        format!("{photos} of the {clear} other files read in its folder `{shown}` are photographs")
    } else {
        return None;
    };
    Some(format!(
        "looks like a photograph, not a mask: {evidence}, and {because}; expected a few flat \
         values"
    ))
}

/// Why a decoded file looks like a photograph rather than a mask, if it
/// does: thousands of colours none of which dominates, or gray levels with
/// a smooth, spread histogram. Masks are flat: a few codes hold most pixels.
pub fn photo_reason(h: &MaskHist) -> Option<String> {
    let total = h.pixels();
    if total == 0 {
        return None;
    }
    let share_of_top = |k: usize| -> f64 {
        let mut counts: Vec<u64> = h.codes.iter().map(|c| c.1).collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        counts.iter().take(k).sum::<u64>() as f64 / total as f64
    };
    match h.format {
        MaskFormat::Gray16 | MaskFormat::Sets => None,
        MaskFormat::Gray8 | MaskFormat::Indexed => {
            if h.codes.len() < 64 {
                return None;
            }
            let adjacent = h.codes.windows(2).filter(|w| w[1].0 == w[0].0 + 1).count();
            let top = share_of_top(16);
            (adjacent >= 48 && top < 0.5).then(|| {
                format!(
                    "looks like a photograph, not a mask: {} gray levels with a smooth \
                     histogram (the 16 commonest hold {:.0}% of pixels); expected a few flat \
                     values",
                    h.codes.len(),
                    top * 100.0
                )
            })
        }
        MaskFormat::Rgb | MaskFormat::Rgba => {
            if h.codes.len() < 1024 {
                return None;
            }
            let near = h
                .codes
                .iter()
                .filter(|(c, _)| {
                    [c >> 16 & 0xFF, c >> 8 & 0xFF, c & 0xFF]
                        .iter()
                        .all(|&v| v <= 32 || v >= 223)
                })
                .map(|c| c.1)
                .sum::<u64>();
            let top = share_of_top(64);
            (top < 0.5 && near * 2 < total).then(|| {
                format!(
                    "looks like a photograph, not a mask: {} colours, none dominant (the 64 \
                     commonest hold {:.0}% of pixels); expected a few flat colours",
                    h.codes.len(),
                    top * 100.0
                )
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(v: &[u32]) -> BTreeMap<u32, u64> {
        v.iter().map(|&v| (v, 10)).collect()
    }

    #[test]
    fn ignore_255_only_beside_a_small_range() {
        assert!(ignore_255(&values(&[0, 15, 255])));
        assert!(ignore_255(&values(&[0, 1, 2, 18, 255])));
        assert!(!ignore_255(&values(&[0, 85, 170, 255])));
        assert!(!ignore_255(&values(&[0, 128, 255])));
        assert!(!ignore_255(&values(&[0, 1, 2])));
        assert!(!ignore_255(&values(&[255])));
    }

    fn hist(format: MaskFormat, codes: Vec<(u32, u64)>) -> MaskHist {
        let total: u64 = codes.iter().map(|c| c.1).sum();
        MaskHist {
            width: total as u32,
            height: 1,
            format,
            codes,
        }
    }

    #[test]
    fn photographs_are_told_from_masks() {
        // Flat: a few codes hold nearly everything.
        let mask = hist(
            MaskFormat::Gray8,
            (0..100)
                .map(|v| (v, 1 + 1000 * u64::from(v == 0)))
                .collect(),
        );
        assert!(photo_reason(&mask).is_none());
        // Smooth and spread: every level a little.
        let photo = hist(MaskFormat::Gray8, (0..200).map(|v| (v, 10)).collect());
        assert!(photo_reason(&photo).unwrap().contains("smooth histogram"));
        let rgb = hist(
            MaskFormat::Rgb,
            (0..2000).map(|v| (v * 2000 + 0x404040, 3)).collect(),
        );
        assert!(photo_reason(&rgb).unwrap().contains("2000 colours"));
        // Sixteen-bit instance ids are never photographs.
        let ids = hist(MaskFormat::Gray16, (0..3000).map(|v| (v, 1)).collect());
        assert!(photo_reason(&ids).is_none());
    }

    #[test]
    fn few_gray_levels_are_a_photo_only_where_the_folder_says_so() {
        // 24 levels, evenly spread: not a photo on its own evidence.
        let low = hist(
            MaskFormat::Gray8,
            (40..64).map(|v| (v, 10 + v as u64)).collect(),
        );
        assert!(photo_reason(&low).is_none());
        let PhotoEvidence::Weak(why) = photo_evidence(&low) else {
            panic!("{:?}", photo_evidence(&low));
        };
        assert!(why.contains("24 gray levels"), "{why}");
        let named = weak_photo_reason(&why, Path::new("data/x/train/image/a.png"), 0, 0);
        assert!(
            named
                .unwrap()
                .contains("named like a folder of photographs")
        );
        let among = weak_photo_reason(&why, Path::new("scans/a.png"), 5, 6).unwrap();
        assert!(among.contains("5 of the 6 other files"), "{among}");
        assert!(weak_photo_reason(&why, Path::new("scans/a.png"), 3, 6).is_none());
        assert!(weak_photo_reason(&why, Path::new("scans/a.png"), 0, 0).is_none());
        // A binary mask with blended edges, and an index mask with a large
        // background, are masks wherever they are.
        let edges = hist(
            MaskFormat::Gray8,
            (0..=255)
                .map(|v| (v, if v == 0 || v == 255 { 5000 } else { 3 }))
                .collect(),
        );
        assert_eq!(photo_evidence(&edges), PhotoEvidence::None);
        let index = hist(
            MaskFormat::Gray8,
            (0..20)
                .map(|v| (v, if v == 0 { 900 } else { 20 }))
                .collect(),
        );
        assert_eq!(photo_evidence(&index), PhotoEvidence::None);
        // Palette indices are never read as a photo with few levels.
        let pal = hist(MaskFormat::Indexed, (40..64).map(|v| (v, 10)).collect());
        assert_eq!(photo_evidence(&pal), PhotoEvidence::None);
    }
}

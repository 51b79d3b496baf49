//! Stats stage: mask histograms → exact dataset counters.
//!
//! [`Counts`] is plain integer data with `AddAssign`: it is summed across
//! rayon workers, images and machines, and every statistic (frequencies,
//! pos_weight, verdict) is derived from it afterwards, so merging partial
//! results is exact. Work per mask is O(distinct codes x classes^2), never
//! per pixel.

pub mod collect;
pub mod doc;
pub mod merge;
pub mod per_image;
pub mod scan;

use std::collections::BTreeMap;
use std::ops::AddAssign;

use serde::{Deserialize, Serialize};

use crate::decode::{MaskFormat, MaskHist};
use crate::labels::{LabelMap, Resolved, code_name};

/// Classes below this fraction of valid pixels are flagged as rare, unless
/// `--rare-below` (or a pipeline's `rare_below`) says otherwise.
pub const RARE_BELOW: f64 = 0.01;

/// How many example files are kept per undeclared code.
pub const EXAMPLES: usize = 3;

/// A mask that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BadFile {
    pub path: String,
    pub reason: String,
}

/// An undeclared code: its pixels, the masks it occurs in, and the first
/// few of those masks (smallest paths, so the choice is order-independent).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undeclared {
    pub pixels: u64,
    pub images: u64,
    pub examples: Vec<String>,
}

impl AddAssign<&Undeclared> for Undeclared {
    fn add_assign(&mut self, o: &Undeclared) {
        self.pixels += o.pixels;
        self.images += o.images;
        self.examples.extend(o.examples.iter().cloned());
        self.examples.sort();
        self.examples.dedup();
        self.examples.truncate(EXAMPLES);
    }
}

/// Undeclared codes left out of a document's list (only the [`LISTED`]
/// largest are kept): how many codes, their pixels, and their masks summed
/// code by code (a mask holding two of them counts twice).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndeclaredRest {
    pub codes: u64,
    pub pixels: u64,
    pub masks: u64,
}

impl AddAssign<&UndeclaredRest> for UndeclaredRest {
    fn add_assign(&mut self, o: &UndeclaredRest) {
        self.codes += o.codes;
        self.pixels += o.pixels;
        self.masks += o.masks;
    }
}

/// How many undeclared codes a document lists (the largest by pixels).
pub const LISTED: usize = 50;

/// How many a partition's document lists: it is an input to `merge`, and a
/// merge is exact when no partition left a code out.
pub const LISTED_PARTITION: usize = 1000;

/// Exact counters over a set of masks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Masks read.
    pub masks: u64,
    pub pixels: u64,
    pub ignored: u64,
    /// Pixels whose code the label map does not declare.
    pub undeclared_pixels: u64,
    pub class_pixels: Vec<u64>,
    /// Masks holding at least one pixel of each class.
    pub class_images: Vec<u64>,
    /// Valid pixels of the masks holding each class (S_c of median frequency).
    pub class_image_pixels: Vec<u64>,
    /// Valid pixels carrying 0, 1, 2, 3+ classes.
    pub degree: [u64; 4],
    /// Pixels carrying both class a and b, row-major `C x C`; the diagonal
    /// is `class_pixels`.
    pub cooc: Vec<u64>,
    pub undeclared: BTreeMap<String, Undeclared>,
    /// Undeclared codes already summarised (read back from bounded
    /// documents); empty while counting masks.
    pub undeclared_rest: UndeclaredRest,
    pub sizes: BTreeMap<(u32, u32), u64>,
    pub formats: BTreeMap<MaskFormat, u64>,
    pub bad: Vec<BadFile>,
}

impl Counts {
    pub fn new(classes: usize) -> Self {
        Self {
            class_pixels: vec![0; classes],
            class_images: vec![0; classes],
            class_image_pixels: vec![0; classes],
            cooc: vec![0; classes * classes],
            ..Self::default()
        }
    }

    pub fn classes(&self) -> usize {
        self.class_pixels.len()
    }

    /// Pixels that are neither ignored nor undeclared: the N of every frequency.
    pub fn valid(&self) -> u64 {
        self.pixels - self.ignored - self.undeclared_pixels
    }

    /// Adds one mask; `per_class` receives its per-class pixel counts.
    pub fn add_mask(
        &mut self,
        hist: &MaskHist,
        map: &LabelMap,
        path: &str,
        per_class: &mut Vec<u64>,
    ) -> MaskTotals {
        let c = self.classes();
        per_class.clear();
        per_class.resize(c, 0);
        let mut totals = MaskTotals::default();
        for &(code, n) in &hist.codes {
            match map.resolve(code, hist.format) {
                Resolved::Ignore => totals.ignored += n,
                Resolved::Unknown => {
                    totals.undeclared += n;
                    let u = self
                        .undeclared
                        .entry(code_name(code, hist.format))
                        .or_default();
                    u.pixels += n;
                    u.images += 1;
                    if u.examples.len() < EXAMPLES
                        || u.examples.last().is_some_and(|l| l.as_str() > path)
                    {
                        u.examples.push(path.to_string());
                        u.examples.sort();
                        u.examples.dedup();
                        u.examples.truncate(EXAMPLES);
                    }
                }
                Resolved::Classes(set) => {
                    self.degree[set.len().min(3)] += n;
                    for &a in set {
                        per_class[usize::from(a)] += n;
                        for &b in set {
                            self.cooc[usize::from(a) * c + usize::from(b)] += n;
                        }
                    }
                }
            }
        }
        self.masks += 1;
        self.pixels += hist.pixels();
        self.ignored += totals.ignored;
        self.undeclared_pixels += totals.undeclared;
        let valid = hist.pixels() - totals.ignored - totals.undeclared;
        for (i, &n) in per_class.iter().enumerate() {
            self.class_pixels[i] += n;
            if n > 0 {
                self.class_images[i] += 1;
                self.class_image_pixels[i] += valid;
            }
        }
        *self.sizes.entry((hist.width, hist.height)).or_default() += 1;
        *self.formats.entry(hist.format).or_default() += 1;
        totals
    }
}

/// A sum past `u64::MAX`: the inputs cannot all be right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a count overflows 64 bits; expected partial results of one dataset")]
pub struct Overflow;

fn add_checked(a: &mut u64, b: u64) -> Result<(), Overflow> {
    *a = a.checked_add(b).ok_or(Overflow)?;
    Ok(())
}

fn add_vec_checked(a: &mut Vec<u64>, b: &[u64]) -> Result<(), Overflow> {
    if a.is_empty() {
        a.extend_from_slice(b);
        return Ok(());
    }
    for (x, y) in a.iter_mut().zip(b) {
        add_checked(x, *y)?;
    }
    Ok(())
}

impl Counts {
    /// `self += o` with every sum checked: on overflow `self` is unchanged.
    /// Merges of documents read from disk use this, never `+=`.
    pub fn checked_add(&mut self, o: &Counts) -> Result<(), Overflow> {
        let mut r = self.clone();
        add_checked(&mut r.masks, o.masks)?;
        add_checked(&mut r.pixels, o.pixels)?;
        add_checked(&mut r.ignored, o.ignored)?;
        add_checked(&mut r.undeclared_pixels, o.undeclared_pixels)?;
        add_vec_checked(&mut r.class_pixels, &o.class_pixels)?;
        add_vec_checked(&mut r.class_images, &o.class_images)?;
        add_vec_checked(&mut r.class_image_pixels, &o.class_image_pixels)?;
        add_vec_checked(&mut r.cooc, &o.cooc)?;
        for i in 0..4 {
            add_checked(&mut r.degree[i], o.degree[i])?;
        }
        for (k, u) in &o.undeclared {
            let e = r.undeclared.entry(k.clone()).or_default();
            add_checked(&mut e.pixels, u.pixels)?;
            add_checked(&mut e.images, u.images)?;
            let mut ex = std::mem::take(&mut e.examples);
            ex.extend(u.examples.iter().cloned());
            ex.sort();
            ex.dedup();
            ex.truncate(EXAMPLES);
            e.examples = ex;
        }
        // Codes that parts summed instead of listing (a bounded document) are kept, summed: their pixels are in `undeclared_pixels`.
        let rest = &mut r.undeclared_rest;
        add_checked(&mut rest.codes, o.undeclared_rest.codes)?;
        add_checked(&mut rest.pixels, o.undeclared_rest.pixels)?;
        add_checked(&mut rest.masks, o.undeclared_rest.masks)?;
        for (k, n) in &o.sizes {
            add_checked(r.sizes.entry(*k).or_default(), *n)?;
        }
        for (k, n) in &o.formats {
            add_checked(r.formats.entry(*k).or_default(), *n)?;
        }
        r.bad.extend(o.bad.iter().cloned());
        r.bad.sort();
        *self = r;
        Ok(())
    }

    /// Checks the invariants every scan keeps (for counts read from a
    /// file): excluded pixels within the total, each class within the valid
    /// pixels, label degrees summing to the valid pixels.
    pub fn check(&self) -> Result<(), String> {
        let c = self.classes();
        if self.class_images.len() != c
            || self.class_image_pixels.len() != c
            || self.cooc.len() != c * c
        {
            return Err("class lists of different lengths".into());
        }
        let excluded = self.ignored.checked_add(self.undeclared_pixels);
        let Some(valid) = excluded.and_then(|e| self.pixels.checked_sub(e)) else {
            return Err(format!(
                "{} ignored + {} undeclared pixels exceed the {} pixels in total",
                self.ignored, self.undeclared_pixels, self.pixels
            ));
        };
        if let Some(i) = (0..c).find(|&i| self.class_pixels[i] > valid) {
            return Err(format!(
                "class {i} has {} pixels, more than the {valid} valid pixels",
                self.class_pixels[i]
            ));
        }
        let degrees = self.degree.iter().try_fold(0u64, |a, &d| a.checked_add(d));
        if degrees != Some(valid) {
            return Err(format!(
                "pixels by label degree do not sum to the {valid} valid pixels"
            ));
        }
        Ok(())
    }
}

/// One mask's excluded pixels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MaskTotals {
    pub ignored: u64,
    pub undeclared: u64,
}

fn add_vec(a: &mut Vec<u64>, b: &[u64]) {
    if a.is_empty() {
        a.extend_from_slice(b);
        return;
    }
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

impl AddAssign<&Counts> for Counts {
    fn add_assign(&mut self, o: &Counts) {
        self.masks += o.masks;
        self.pixels += o.pixels;
        self.ignored += o.ignored;
        self.undeclared_pixels += o.undeclared_pixels;
        add_vec(&mut self.class_pixels, &o.class_pixels);
        add_vec(&mut self.class_images, &o.class_images);
        add_vec(&mut self.class_image_pixels, &o.class_image_pixels);
        add_vec(&mut self.cooc, &o.cooc);
        for i in 0..4 {
            self.degree[i] += o.degree[i];
        }
        for (k, u) in &o.undeclared {
            *self.undeclared.entry(k.clone()).or_default() += u;
        }
        self.undeclared_rest += &o.undeclared_rest;
        for (k, n) in &o.sizes {
            *self.sizes.entry(*k).or_default() += n;
        }
        for (k, n) in &o.formats {
            *self.formats.entry(*k).or_default() += n;
        }
        self.bad.extend(o.bad.iter().cloned());
        self.bad.sort();
    }
}

impl AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        *self += &o;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::{Kind, LabelSpec};

    fn map() -> LabelMap {
        let spec = LabelSpec {
            kind: Kind::RgbBits,
            classes: vec!["r".into(), "g".into(), "b".into()],
            threshold: Some(128),
            ignore: Vec::new(),
            colors: Default::default(),
            values: Default::default(),
            unlisted: Default::default(),
        };
        LabelMap::compile(spec, "test").unwrap()
    }

    fn hists() -> Vec<MaskHist> {
        let mut s = 7u64;
        (0..12)
            .map(|_| {
                let mut codes = std::collections::BTreeMap::new();
                for _ in 0..5 {
                    s = s
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let code = [0x000000, 0xFF0000, 0x00FF00, 0x0000FF, 0xFF00FF, 0xFFFFFF]
                        [(s >> 33) as usize % 6];
                    *codes.entry(code).or_insert(0u64) += (s >> 40) % 50 + 1;
                }
                let total: u64 = codes.values().sum();
                MaskHist {
                    width: total as u32,
                    height: 1,
                    format: MaskFormat::Rgb,
                    codes: codes.into_iter().collect(),
                }
            })
            .collect()
    }

    fn count(hs: &[MaskHist], map: &LabelMap) -> Counts {
        let mut c = Counts::new(map.num_classes());
        let mut per = Vec::new();
        for (i, h) in hs.iter().enumerate() {
            c.add_mask(h, map, &format!("{i:02}.png"), &mut per);
        }
        c
    }

    #[test]
    fn merging_any_split_equals_counting_all() {
        let map = map();
        let hs = hists();
        let whole = count(&hs, &map);
        for cut in [0, 1, 5, 11, 12] {
            let mut a = count(&hs[..cut], &map);
            let b = count(&hs[cut..], &map);
            a += &b;
            assert_eq!(a, whole, "cut {cut}");
            let mut b2 = count(&hs[cut..], &map);
            b2 += &count(&hs[..cut], &map);
            assert_eq!(b2, whole, "reversed cut {cut}");
        }
        // Class totals are consistent with pixel totals.
        let d = whole.degree;
        let labels: u64 = whole.class_pixels.iter().sum();
        assert_eq!(d.iter().sum::<u64>(), whole.valid());
        assert_eq!(labels, d[1] + 2 * d[2] + 3 * d[3]);
        for c in 0..3 {
            assert_eq!(whole.cooc[c * 3 + c], whole.class_pixels[c]);
        }
    }
}

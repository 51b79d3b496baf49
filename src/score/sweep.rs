//! Threshold sweeps: TP/FP/FN/TN of every class at every threshold of a
//! grid, in one pass over float predictions, exactly.
//!
//! Per class, each valid pixel adds one to a histogram bin: the number of
//! grid thresholds its score exceeds (`score > t`, compared in f32; a NaN
//! exceeds none), kept apart for truth-positive and truth-negative pixels.
//! A cumulative sum from the top then gives, at threshold j, TP = the
//! positives in bins above j and FP = the negatives in bins above j. The bin
//! of a score comes from a table over the top 16 bits of its float bits,
//! refined by one carry in the buckets that hold a threshold and a binary
//! search only in the few that hold several, so the per-pixel work is a
//! lookup, an add and an increment. Bins are worked out for a chunk of
//! pixels at a time (eight lanes at once where the CPU has AVX2) and then
//! counted. Counts are integers: merging images, threads and machines is
//! exact, and the SIMD and scalar paths give the same bins.

use std::collections::BTreeMap;
use std::ops::AddAssign;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use self::simd::Simd;
use super::metrics::Metrics;
use super::{ClassCounts, EmptyAs, PredKind, Sample};
use crate::output::{Console, write_bytes};
use crate::tensors::{TensorOut, safetensors_bytes};

/// Levels of the default grid: 0.00, 0.01, ..., 1.00.
pub const DEFAULT_BINS: usize = 100;

/// Most levels a grid may have (a bucket's count of thresholds below it
/// takes 15 bits).
pub const MAX_LEVELS: usize = 32_767;

/// Names `thresholds.json` and `thresholds.safetensors`.
pub const JSON_FILE: &str = "thresholds.json";
pub const SAFETENSORS_FILE: &str = "thresholds.safetensors";
/// Identifies `thresholds.json`.
pub const FORMAT: &str = "maskprep-thresholds/1";

/// A grid of thresholds, as probability levels and in the predictions'
/// own units (the logit of each level for logits).
#[derive(Debug, Clone)]
pub struct Grid {
    /// Probability levels in [0, 1], ascending, distinct.
    pub levels: Vec<f64>,
    /// The thresholds compared with scores, ascending.
    pub thresholds: Vec<f32>,
    /// Per bucket of the top 16 bits of a score (sign, exponent, 7
    /// mantissa bits): the thresholds below the bucket in bits 16..31, plus
    /// `0xFFFF - lo`, where `lo` is the low 16 key bits of the one threshold
    /// in the bucket (`0xFFFF`: none). Adding a score's low 16 key bits
    /// carries into bit 16 exactly when the score exceeds that threshold.
    /// [`SEARCH`] (the low half zero) where the bucket holds several
    /// thresholds, or `+inf` and NaNs. 256 KiB, of which a data set's
    /// scores touch a few KiB.
    lut: Box<[u32; 1 << 16]>,
}

/// A grid that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum GridError {
    #[error("threshold level {0} is not in 0..=1; expected probability levels such as 0.1,0.5")]
    Level(f64),
    #[error("no threshold levels given")]
    Empty,
    #[error("{0} threshold levels; expected at most 32767")]
    TooMany(usize),
}

/// The order-preserving key of an f32, branch-free: for non-NaN values,
/// `key(a) > key(b)` exactly when `a > b`, except that `-0.0` keys below
/// `+0.0` (thresholds are never `-0.0`: the grid adds `+0.0`, so no
/// comparison with a threshold differs). NaNs key above `+inf` (positive)
/// or below `-inf` (negative).
#[inline]
fn key(v: f32) -> u32 {
    let b = v.to_bits();
    b ^ ((((b as i32) >> 31) as u32) | 0x8000_0000)
}

/// The flag of a bucket holding several thresholds (a binary search).
const SEARCH: u32 = 1 << 31;

/// The bucket of `+inf` and of the positive NaNs above it (searched; the
/// buckets above it hold only NaNs, which exceed nothing).
const INF_BUCKET: u32 = 0x7F80;

/// Pixels whose bins are worked out together before they are counted.
const CHUNK: usize = 64;

impl Grid {
    /// `bins + 1` levels `i / bins`, i = 0..=bins.
    pub fn uniform(bins: usize, kind: PredKind) -> Result<Self, GridError> {
        let levels = (0..=bins).map(|i| i as f64 / bins.max(1) as f64).collect();
        Self::new(levels, kind)
    }

    /// A grid of probability levels for predictions of `kind` (logits:
    /// each level becomes its logit; probabilities: the level itself).
    pub fn new(mut levels: Vec<f64>, kind: PredKind) -> Result<Self, GridError> {
        if let Some(bad) = levels.iter().find(|l| !(0.0..=1.0).contains(*l)) {
            return Err(GridError::Level(*bad));
        }
        levels.sort_by(f64::total_cmp);
        levels.dedup();
        if levels.is_empty() {
            return Err(GridError::Empty);
        }
        if levels.len() > MAX_LEVELS {
            return Err(GridError::TooMany(levels.len()));
        }
        let thresholds: Vec<f32> = levels
            .iter()
            .map(|&p| match kind {
                PredKind::Logits => (p / (1.0 - p)).ln() as f32,
                _ => p as f32,
            } + 0.0)
            .collect();
        let keys: Vec<u32> = thresholds.iter().map(|&t| key(t)).collect();
        let mut lut = Box::new([0u32; 1 << 16]);
        for (bits, entry) in (0u32..).zip(lut.iter_mut()) {
            // The key bucket of these float bits: keys keep a positive
            // float's bits (sign set) and flip a negative one's.
            let b = if bits & 0x8000 == 0 {
                bits | 0x8000
            } else {
                !bits & 0xFFFF
            };
            let (lo, hi) = (b << 16, b << 16 | 0xFFFF);
            let below = keys.partition_point(|&k| k < lo);
            let inside = keys[below..].partition_point(|&k| k <= hi);
            // Positive NaNs above the `+inf` bucket exceed nothing. Other
            // buckets: the thresholds below, plus the carry of the one
            // inside; several inside (or `+inf` and NaNs): a search.
            *entry = match inside {
                0 if bits > INF_BUCKET && bits < 0x8000 => 0,
                0 if bits != INF_BUCKET => (below as u32) << 16,
                1 if bits != INF_BUCKET => (below as u32) << 16 | (0xFFFF - (keys[below] & 0xFFFF)),
                _ => SEARCH | (below as u32) << 16,
            };
        }
        Ok(Self {
            levels,
            thresholds,
            lut,
        })
    }

    /// Thresholds the score exceeds: `#{j : score > t_j}` (a NaN: none).
    /// One table load and one add, no branch on the data (buckets holding
    /// several thresholds search, on a cold path).
    #[inline]
    pub fn bin(&self, score: f32) -> usize {
        let r = self.entry(score);
        if r & SEARCH != 0 {
            return self.search(score, (r >> 16) as usize & 0x7FFF);
        }
        (r >> 16) as usize
    }

    /// The score's table entry plus its low 16 key bits: the bin in bits
    /// 16..31, or [`SEARCH`] set.
    #[inline]
    fn entry(&self, score: f32) -> u32 {
        self.lut[(score.to_bits() >> 16) as usize] + low_key(score)
    }

    /// The histogram slot of a pixel: its bin twice, plus one where truth
    /// has the class; `dump` where the pixel is excluded.
    #[inline]
    fn slot(&self, excluded: u8, truth: u8, score: f32, dump: u32) -> u32 {
        let slot = (self.bin(score) as u32) << 1 | u32::from(truth != 0);
        if excluded != 0 { dump } else { slot }
    }

    /// The slots of a chunk of pixels ([`Grid::slot`] of each).
    fn slots(&self, px: Pixels<'_>, dump: u32, simd: Option<Simd>, out: &mut [u32; CHUNK]) {
        let done = match simd {
            Some(simd) => simd.chunk_slots(self, px, dump, out),
            None => self.chunk_slots(px, dump, out),
        };
        if !done {
            let (x, y, s) = px;
            for (((o, &x), &y), &s) in out.iter_mut().zip(x).zip(y).zip(s) {
                *o = self.slot(x, y, s, dump);
            }
        }
    }

    /// The slots of a chunk of pixels, or false (`out` then holds nothing
    /// of use) where a score's bucket searches. The table loads come first,
    /// on their own; the rest is branch-free, and the compiler turns it
    /// into SIMD lanes.
    #[inline(always)]
    fn chunk_slots(&self, (x, y, s): Pixels<'_>, dump: u32, out: &mut [u32; CHUNK]) -> bool {
        for (o, &s) in out.iter_mut().zip(s) {
            *o = self.lut[(s.to_bits() >> 16) as usize];
        }
        let mut flags = 0;
        for (((o, &x), &y), &s) in out.iter_mut().zip(x).zip(y).zip(s) {
            let r = *o + low_key(s);
            flags |= r;
            let slot = (r >> 16) << 1 | u32::from(y != 0);
            *o = if x != 0 { dump } else { slot };
        }
        flags & SEARCH == 0
    }

    #[cold]
    fn search(&self, score: f32, below: usize) -> usize {
        if score.is_nan() {
            return 0;
        }
        below + self.thresholds[below..].partition_point(|&t| score > t)
    }

    /// Bins of the histograms: one more than the thresholds.
    pub fn bins(&self) -> usize {
        self.thresholds.len() + 1
    }
}

/// Per class, pixels by bin, truth-positive and truth-negative apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepCounts {
    pub bins: usize,
    /// `classes x bins`.
    pub pos: Vec<u64>,
    pub neg: Vec<u64>,
}

impl SweepCounts {
    pub fn new(classes: usize, bins: usize) -> Self {
        Self {
            bins,
            pos: vec![0; classes * bins],
            neg: vec![0; classes * bins],
        }
    }

    /// Adds one image of scores (mask samples are not swept). Per class
    /// plane, a chunk of pixels at a time: their slots (pos and neg side by
    /// side, excluded pixels to a slot that is thrown away), then the
    /// counts, into four interleaved local histograms so runs of equal
    /// scores do not wait on one counter. No branch on the data.
    pub fn add(&mut self, grid: &Grid, sample: &Sample<'_>, local: &mut Vec<u32>) {
        let super::Pred::Scores(scores) = sample.pred else {
            return;
        };
        let t = &sample.truth;
        let hw = t.height * t.width;
        let bins = self.bins;
        let stride = 2 * bins + 1;
        let dump = (2 * bins) as u32;
        let simd = Simd::detect();
        let mut slots = [0u32; CHUNK];
        local.resize(4 * stride, 0);
        let (excluded, excluded_tail) = t.excluded[..hw].as_chunks::<CHUNK>();
        for c in 0..t.classes {
            local.fill(0);
            let (truth, truth_tail) = t.planes[c * hw..(c + 1) * hw].as_chunks::<CHUNK>();
            let (score, score_tail) = scores[c * hw..(c + 1) * hw].as_chunks::<CHUNK>();
            for ((x, y), s) in excluded.iter().zip(truth).zip(score) {
                grid.slots((x, y, s), dump, simd, &mut slots);
                count(local, stride, &slots);
            }
            let tail = excluded_tail.iter().zip(truth_tail).zip(score_tail);
            for (o, ((&x, &y), &s)) in slots.iter_mut().zip(tail) {
                *o = grid.slot(x, y, s, dump);
            }
            count(local, stride, &slots[..excluded_tail.len()]);
            let pos = &mut self.pos[c * bins..(c + 1) * bins];
            let neg = &mut self.neg[c * bins..(c + 1) * bins];
            for k in 0..bins {
                for copy in local.chunks_exact(stride) {
                    neg[k] += u64::from(copy[2 * k]);
                    pos[k] += u64::from(copy[2 * k + 1]);
                }
            }
        }
    }

    pub fn classes(&self) -> usize {
        self.pos.len().checked_div(self.bins).unwrap_or(0)
    }

    /// The counts of class `c` at every threshold, in grid order.
    pub fn curve(&self, c: usize) -> Vec<ClassCounts> {
        let b = self.bins;
        let (pos, neg) = (&self.pos[c * b..(c + 1) * b], &self.neg[c * b..(c + 1) * b]);
        let (p, n): (u64, u64) = (pos.iter().sum(), neg.iter().sum());
        // At threshold j the predicted pixels are those in bins j+1 and up.
        let (mut tp, mut fp) = (0u64, 0u64);
        let mut out = vec![ClassCounts::default(); b - 1];
        for j in (0..b - 1).rev() {
            tp += pos[j + 1];
            fp += neg[j + 1];
            out[j] = ClassCounts {
                tp,
                fp,
                fn_: p - tp,
                tn: n - fp,
            };
        }
        out
    }
}

/// A chunk of pixels of one class plane: excluded flags, truth, scores.
type Pixels<'a> = (&'a [u8; CHUNK], &'a [u8; CHUNK], &'a [f32; CHUNK]);

/// The low 16 bits of a score's order-preserving key (a negative score's
/// bits flipped).
#[inline]
fn low_key(score: f32) -> u32 {
    let b = score.to_bits();
    (b ^ ((b as i32) >> 31) as u32) & 0xFFFF
}

/// Counts slots into the four histograms of `local` (each `stride` long),
/// one slot to each in turn.
#[inline]
fn count(local: &mut [u32], stride: usize, slots: &[u32]) {
    let (a, rest) = local.split_at_mut(stride);
    let (b, rest) = rest.split_at_mut(stride);
    let (c, d) = rest.split_at_mut(stride);
    let mut quads = slots.chunks_exact(4);
    for q in &mut quads {
        a[q[0] as usize] += 1;
        b[q[1] as usize] += 1;
        c[q[2] as usize] += 1;
        d[q[3] as usize] += 1;
    }
    for &s in quads.remainder() {
        a[s as usize] += 1;
    }
}

/// [`Grid::chunk_slots`] compiled for AVX2 (eight lanes), where the CPU has
/// it: the same code, so the same slots.
#[cfg(target_arch = "x86_64")]
mod simd {
    use super::{CHUNK, Grid, Pixels};

    /// Proof that this CPU has AVX2: made only by [`Simd::detect`].
    #[derive(Debug, Clone, Copy)]
    pub(super) struct Simd(());

    impl Simd {
        pub(super) fn detect() -> Option<Self> {
            std::is_x86_feature_detected!("avx2").then_some(Self(()))
        }

        pub(super) fn chunk_slots(
            self,
            grid: &Grid,
            px: Pixels<'_>,
            dump: u32,
            out: &mut [u32; CHUNK],
        ) -> bool {
            // SAFETY: a `Simd` exists only where AVX2 was detected.
            unsafe { chunk_slots_avx2(grid, px, dump, out) }
        }
    }

    #[target_feature(enable = "avx2")]
    fn chunk_slots_avx2(grid: &Grid, px: Pixels<'_>, dump: u32, out: &mut [u32; CHUNK]) -> bool {
        grid.chunk_slots(px, dump, out)
    }
}

/// No AVX2 on this architecture: a `Simd` cannot be made.
#[cfg(not(target_arch = "x86_64"))]
mod simd {
    use super::{CHUNK, Grid, Pixels};

    #[derive(Debug, Clone, Copy)]
    pub(super) enum Simd {}

    impl Simd {
        pub(super) fn detect() -> Option<Self> {
            None
        }

        pub(super) fn chunk_slots(
            self,
            _: &Grid,
            _: Pixels<'_>,
            _: u32,
            _: &mut [u32; CHUNK],
        ) -> bool {
            match self {}
        }
    }
}

impl SweepCounts {
    /// `self + o` with every sum checked (parts read from files); `None`
    /// on an overflow or different shapes.
    pub fn checked_add(&self, o: &SweepCounts) -> Option<SweepCounts> {
        if self.bins != o.bins || self.pos.len() != o.pos.len() || self.neg.len() != o.neg.len() {
            return None;
        }
        let add = |a: &[u64], b: &[u64]| -> Option<Vec<u64>> {
            a.iter().zip(b).map(|(x, y)| x.checked_add(*y)).collect()
        };
        Some(SweepCounts {
            bins: self.bins,
            pos: add(&self.pos, &o.pos)?,
            neg: add(&self.neg, &o.neg)?,
        })
    }
}

impl AddAssign<&SweepCounts> for SweepCounts {
    fn add_assign(&mut self, o: &SweepCounts) {
        if self.pos.is_empty() {
            *self = o.clone();
            return;
        }
        for (a, b) in self.pos.iter_mut().zip(&o.pos) {
            *a += b;
        }
        for (a, b) in self.neg.iter_mut().zip(&o.neg) {
            *a += b;
        }
    }
}

/// A threshold in JSON: a number, or `"-inf"` / `"inf"` for the ends of a
/// logit grid (levels 0 and 1).
fn threshold_json<S: Serializer>(t: &f32, s: S) -> Result<S::Ok, S::Error> {
    if t.is_finite() {
        s.serialize_f64(f64::from(*t))
    } else if *t > 0.0 {
        s.serialize_str("inf")
    } else {
        s.serialize_str("-inf")
    }
}

/// A threshold and the metrics it gives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pick {
    /// Probability level (for logits, the threshold is its logit).
    pub level: f64,
    #[serde(serialize_with = "threshold_json", deserialize_with = "threshold_from")]
    pub threshold: f32,
    pub metrics: Metrics,
}

/// One class of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassSweep {
    pub name: String,
    /// Valid truth pixels of the class, and the other valid pixels.
    pub positives: u64,
    pub negatives: u64,
    /// The threshold maximising IoU (ties: the lowest); `null` when IoU is
    /// undefined at every threshold (class absent from truth and never
    /// predicted).
    pub best_iou: Option<Pick>,
    /// The threshold maximising F1 (Dice); ties: the lowest.
    pub best_dice: Option<Pick>,
    /// TP and FP at each threshold of the grid (FN = positives - TP,
    /// TN = negatives - FP).
    pub tp: Vec<u64>,
    pub fp: Vec<u64>,
}

/// The sweep section of a score document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepDoc {
    /// How the grid was made, e.g. `101 probability levels 0.00..1.00`.
    pub grid: String,
    /// The comparison, e.g. `score > logit(level)`.
    pub rule: String,
    pub levels: Vec<f64>,
    #[serde(
        serialize_with = "thresholds_json",
        deserialize_with = "thresholds_from"
    )]
    pub thresholds: Vec<f32>,
    pub classes: Vec<ClassSweep>,
}

/// Reads what [`threshold_json`] writes.
fn threshold_from<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum T {
        Num(f64),
        Text(String),
    }
    match T::deserialize(d)? {
        T::Num(v) => Ok(v as f32),
        T::Text(t) if t == "inf" => Ok(f32::INFINITY),
        T::Text(t) if t == "-inf" => Ok(f32::NEG_INFINITY),
        T::Text(t) => Err(serde::de::Error::custom(format!(
            "`{t}` is not a threshold; expected a number, \"inf\" or \"-inf\""
        ))),
    }
}

fn thresholds_from<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
    #[derive(Deserialize)]
    struct T(#[serde(deserialize_with = "threshold_from")] f32);
    Ok(Vec::<T>::deserialize(d)?.into_iter().map(|t| t.0).collect())
}

fn thresholds_json<S: Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    struct T(f32);
    impl Serialize for T {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            threshold_json(&self.0, s)
        }
    }
    let mut seq = s.serialize_seq(Some(v.len()))?;
    for t in v {
        seq.serialize_element(&T(*t))?;
    }
    seq.end()
}

/// The index maximising `f` over the curve (first of ties), if any value
/// is defined.
fn best(curve: &[ClassCounts], f: impl Fn(&Metrics) -> Option<f64>) -> Option<usize> {
    let mut pick: Option<(usize, f64)> = None;
    for (j, k) in curve.iter().enumerate() {
        if let Some(v) = f(&Metrics::of(k, EmptyAs::Skip))
            && pick.is_none_or(|(_, b)| v > b)
        {
            pick = Some((j, v));
        }
    }
    pick.map(|(j, _)| j)
}

impl SweepDoc {
    pub fn new(
        grid: &Grid,
        described: String,
        kind: PredKind,
        counts: &SweepCounts,
        names: &[String],
    ) -> Self {
        let rule = match kind {
            PredKind::Logits => {
                "class c is predicted where score > logit(level), compared in float32; NaN is negative"
            }
            _ => "class c is predicted where score > level, compared in float32; NaN is negative",
        };
        let classes = names
            .iter()
            .enumerate()
            .map(|(c, name)| {
                let curve = counts.curve(c);
                let pick = |j: usize| Pick {
                    level: grid.levels[j],
                    threshold: grid.thresholds[j],
                    metrics: Metrics::of(&curve[j], EmptyAs::Skip),
                };
                let b = counts.bins;
                ClassSweep {
                    name: name.clone(),
                    positives: counts.pos[c * b..(c + 1) * b].iter().sum(),
                    negatives: counts.neg[c * b..(c + 1) * b].iter().sum(),
                    best_iou: best(&curve, |m| m.iou).map(pick),
                    best_dice: best(&curve, |m| m.dice).map(pick),
                    tp: curve.iter().map(|k| k.tp).collect(),
                    fp: curve.iter().map(|k| k.fp).collect(),
                }
            })
            .collect();
        Self {
            grid: described,
            rule: rule.to_string(),
            levels: grid.levels.clone(),
            thresholds: grid.thresholds.clone(),
            classes,
        }
    }

    /// Per class: the best-IoU (with `dice`, best-Dice) threshold, or
    /// `default` where undefined.
    pub fn chosen(&self, dice: bool, default: f32) -> Vec<f32> {
        self.classes
            .iter()
            .map(|c| {
                let p = if dice { &c.best_dice } else { &c.best_iou };
                p.as_ref().map_or(default, |p| p.threshold)
            })
            .collect()
    }

    /// `thresholds.json`: per class the thresholds to use at inference.
    pub fn thresholds_json(&self, kind: PredKind, default: f32) -> String {
        #[derive(Serialize)]
        struct File<'a> {
            format: &'a str,
            kind: &'a str,
            rule: &'a str,
            classes: Vec<&'a str>,
            /// Best-IoU threshold per class (the default where undefined).
            #[serde(serialize_with = "thresholds_json")]
            iou: Vec<f32>,
            #[serde(serialize_with = "thresholds_json")]
            dice: Vec<f32>,
            #[serde(serialize_with = "threshold_json")]
            default: f32,
        }
        let f = File {
            format: FORMAT,
            kind: kind.name(),
            rule: "predict class c where score > threshold[c]; classes whose IoU (Dice) is undefined at every level keep the default",
            classes: self.classes.iter().map(|c| c.name.as_str()).collect(),
            iou: self.chosen(false, default),
            dice: self.chosen(true, default),
            default,
        };
        let mut s = serde_json::to_string_pretty(&f).unwrap_or_default();
        s.push('\n');
        s
    }

    /// `thresholds.safetensors`: `threshold` (best IoU) and
    /// `threshold_dice`, float32, as `[C]` and as `[C,1,1]` (`_c11`) so
    /// `logits > t` broadcasts over `[N,C,H,W]`.
    pub fn thresholds_safetensors(&self, kind: PredKind, default: f32) -> Vec<u8> {
        let c = self.classes.len();
        let (iou, dice) = (self.chosen(false, default), self.chosen(true, default));
        let mut tensors = BTreeMap::new();
        tensors.insert("threshold".to_string(), TensorOut::f32(vec![c], &iou));
        tensors.insert(
            "threshold_c11".to_string(),
            TensorOut::f32(vec![c, 1, 1], &iou),
        );
        tensors.insert("threshold_dice".to_string(), TensorOut::f32(vec![c], &dice));
        tensors.insert(
            "threshold_dice_c11".to_string(),
            TensorOut::f32(vec![c, 1, 1], &dice),
        );
        let mut meta = BTreeMap::new();
        meta.insert("format".to_string(), FORMAT.to_string());
        meta.insert("kind".to_string(), kind.name().to_string());
        meta.insert(
            "classes".to_string(),
            serde_json::to_string(&self.classes.iter().map(|c| &c.name).collect::<Vec<_>>())
                .unwrap_or_default(),
        );
        meta.insert(
            "rule".to_string(),
            "predict class c where score > threshold[c]".to_string(),
        );
        safetensors_bytes(&tensors, &meta)
    }
}

/// Where a sweep's thresholds go: `thresholds.json` and
/// `thresholds.safetensors` in `--sweep-out DIR`; else named after the
/// score output, beside it (`-o val/score.json`: `val/score.thresholds.json`
/// and `val/score.thresholds.safetensors`), so two sweeps written into one
/// folder keep their own; else (stdout, or an output that is a FIFO or a
/// device, where nothing can go beside) in the working folder.
pub fn thresholds_files(sweep_out: Option<&Path>, output: Option<&Path>) -> (PathBuf, PathBuf) {
    let in_dir = |dir: &Path| (dir.join(JSON_FILE), dir.join(SAFETENSORS_FILE));
    if let Some(dir) = sweep_out {
        return in_dir(dir);
    }
    match output.filter(|o| !crate::output::is_stream(o)) {
        Some(out) => {
            let stem = out
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let name = |file: &str| out.with_file_name(format!("{stem}.{file}"));
            (name(JSON_FILE), name(SAFETENSORS_FILE))
        }
        None => in_dir(Path::new("")),
    }
}

/// Writes the thresholds files (JSON, safetensors) of a sweep.
pub fn write_thresholds(
    sd: &SweepDoc,
    kind: PredKind,
    default: f32,
    (json, st): &(PathBuf, PathBuf),
    console: &Console,
) -> anyhow::Result<()> {
    write_bytes(json, sd.thresholds_json(kind, default).as_bytes())?;
    write_bytes(st, &sd.thresholds_safetensors(kind, default))?;
    console.note(&format!(
        "wrote per-class thresholds `{}` and `{}`",
        json.display(),
        st.display()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_equal_a_linear_count_of_exceeded_thresholds() {
        for kind in [PredKind::Logits, PredKind::Probs] {
            let grid = Grid::uniform(100, kind).unwrap();
            let mut probes = vec![
                f32::NAN,
                -f32::NAN,
                f32::INFINITY,
                f32::NEG_INFINITY,
                0.0,
                -0.0,
                f32::MIN_POSITIVE,
                -f32::MIN_POSITIVE,
                f32::MAX,
                f32::MIN,
            ];
            for &t in &grid.thresholds {
                probes.extend([
                    t,
                    f32::from_bits(t.to_bits().wrapping_add(1)),
                    f32::from_bits(t.to_bits().wrapping_sub(1)),
                ]);
            }
            let mut x = 0x1234_5678u32;
            for _ in 0..20_000 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                probes.push(f32::from_bits(x));
                probes.push((x as f32 / u32::MAX as f32) * 20.0 - 10.0);
            }
            for s in probes {
                let linear = grid.thresholds.iter().filter(|&&t| s > t).count();
                assert_eq!(grid.bin(s), linear, "score {s} ({:#x})", s.to_bits());
            }
        }
    }

    /// Scores around every threshold, NaNs, infinities, zeros and random
    /// bits, as many as `n`.
    fn probes(grid: &Grid, n: usize) -> Vec<f32> {
        let mut v = vec![
            f32::NAN,
            -f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            0.0,
            -0.0,
        ];
        for &t in &grid.thresholds {
            v.extend([
                t,
                f32::from_bits(t.to_bits().wrapping_add(1)),
                f32::from_bits(t.to_bits().wrapping_sub(1)),
            ]);
        }
        let mut x = 0x9E37_79B9u32;
        while v.len() < n {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            v.push(f32::from_bits(x));
            v.push((x as f32 / u32::MAX as f32) * 20.0 - 10.0);
        }
        v.truncate(n);
        v
    }

    #[test]
    fn chunk_slots_equal_a_linear_count() {
        let simd = Simd::detect();
        // 5001 levels put several thresholds in some buckets (a search).
        for (levels, kind) in [
            (100, PredKind::Logits),
            (100, PredKind::Probs),
            (5000, PredKind::Probs),
        ] {
            let grid = Grid::uniform(levels, kind).unwrap();
            let dump = 2 * grid.bins() as u32;
            let mut scores = probes(&grid, 64 * 400);
            // Chunks without a searched bucket take the SIMD path whole.
            scores.extend((0..64 * 50).map(|i| (i as f32 - 1600.0) / 300.0));
            let excluded: Vec<u8> = (0..scores.len()).map(|i| u8::from(i % 7 == 3)).collect();
            let truth: Vec<u8> = (0..scores.len()).map(|i| (i % 3) as u8).collect();
            let mut out = [0u32; CHUNK];
            let chunks = excluded.as_chunks::<CHUNK>().0.iter();
            let chunks = chunks.zip(truth.as_chunks().0).zip(scores.as_chunks().0);
            for ((x, y), s) in chunks {
                for simd in [None, simd] {
                    grid.slots((x, y, s), dump, simd, &mut out);
                    for i in 0..CHUNK {
                        let linear = grid.thresholds.iter().filter(|&&t| s[i] > t).count() as u32;
                        let want = if x[i] != 0 {
                            dump
                        } else {
                            2 * linear + u32::from(y[i] != 0)
                        };
                        assert_eq!(out[i], want, "score {} ({:#x})", s[i], s[i].to_bits());
                    }
                }
            }
        }
    }

    #[test]
    fn add_counts_every_pixel_of_chunks_and_tail() {
        let grid = Grid::uniform(100, PredKind::Logits).unwrap();
        // 2 classes of 3 x 50 pixels: two chunks and a tail of 22.
        let (c, h, w) = (2, 3, 50);
        let scores = probes(&grid, c * h * w);
        let planes: Vec<u8> = (0..c * h * w).map(|i| u8::from(i % 5 < 2)).collect();
        let excluded: Vec<u8> = (0..h * w).map(|i| u8::from(i % 11 == 0)).collect();
        let sample = Sample {
            truth: super::super::Truth {
                classes: c,
                height: h,
                width: w,
                planes: &planes,
                excluded: &excluded,
            },
            pred: super::super::Pred::Scores(&scores),
        };
        let mut k = SweepCounts::new(c, grid.bins());
        k.add(&grid, &sample, &mut Vec::new());
        let mut want = SweepCounts::new(c, grid.bins());
        for (i, &s) in scores.iter().enumerate() {
            if excluded[i % (h * w)] != 0 {
                continue;
            }
            let bin =
                (i / (h * w)) * grid.bins() + grid.thresholds.iter().filter(|&&t| s > t).count();
            if planes[i] != 0 {
                want.pos[bin] += 1;
            } else {
                want.neg[bin] += 1;
            }
        }
        assert_eq!(k, want);
    }

    #[test]
    fn curve_is_the_count_above_each_threshold() {
        let grid = Grid::new(vec![0.25, 0.5, 0.75], PredKind::Probs).unwrap();
        // One class, 6 pixels: truth 1,1,0,0,1,0; scores below.
        let planes = [1u8, 1, 0, 0, 1, 0];
        let excluded = [0u8; 6];
        let scores = [0.9f32, 0.3, 0.6, 0.1, 0.5, f32::NAN];
        let sample = Sample {
            truth: super::super::Truth {
                classes: 1,
                height: 1,
                width: 6,
                planes: &planes,
                excluded: &excluded,
            },
            pred: super::super::Pred::Scores(&scores),
        };
        let mut k = SweepCounts::new(1, grid.bins());
        k.add(&grid, &sample, &mut Vec::new());
        let c = k.curve(0);
        // > 0.25: 0.9 0.3 0.6 0.5 -> tp 3 fp 1; > 0.5: 0.9 0.6 -> tp 1 fp 1;
        // > 0.75: 0.9 -> tp 1 fp 0.
        let got: Vec<(u64, u64, u64, u64)> = c.iter().map(|k| (k.tp, k.fp, k.fn_, k.tn)).collect();
        assert_eq!(got, vec![(3, 1, 0, 2), (1, 1, 2, 2), (1, 0, 2, 3)]);
    }
}

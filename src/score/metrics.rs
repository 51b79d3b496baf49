//! Metrics: confusion counts → IoU, Dice, precision, recall and accuracy,
//! and their reductions (macro, micro, per-image mean).
//!
//! One implementation of each formula. A ratio 0/0 is `None` (undefined,
//! null in JSON), never NaN; `--empty-as` may replace it. Means are summed
//! in fixed point (units of 1e-12), so they do not depend on the order in
//! which rayon adds images: same input, same bytes, at any thread count.

use std::ops::AddAssign;

use serde::{Deserialize, Serialize};

use super::{ClassCounts, Confusion, EmptyAs};

/// `num / den`, or `None` when `den` is 0.
pub fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// Formats an optional float for people: 4 decimals, or `undefined`.
pub fn show(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.4}"))
        .unwrap_or_else(|| "undefined".to_string())
}

/// The five metrics of one class (or of a reduction); `None` is undefined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// TP / (TP + FP + FN) (Jaccard).
    pub iou: Option<f64>,
    /// 2 TP / (2 TP + FP + FN) (F1).
    pub dice: Option<f64>,
    /// TP / (TP + FP).
    pub precision: Option<f64>,
    /// TP / (TP + FN).
    pub recall: Option<f64>,
    /// (TP + TN) / (TP + FP + FN + TN): true negatives count, so a class
    /// absent from truth and prediction scores 1.
    pub accuracy: Option<f64>,
}

impl Metrics {
    /// The metrics of some counts; 0/0 ratios follow `empty`.
    pub fn of(c: &ClassCounts, empty: EmptyAs) -> Self {
        let e = |v| empty.apply(v);
        Self {
            iou: e(ratio(c.tp, c.tp + c.fp + c.fn_)),
            dice: e(ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn_)),
            precision: e(ratio(c.tp, c.tp + c.fp)),
            recall: e(ratio(c.tp, c.tp + c.fn_)),
            accuracy: e(ratio(c.tp + c.tn, c.tp + c.fp + c.fn_ + c.tn)),
        }
    }

    /// Micro: counts pooled over classes, then divided.
    pub fn micro(classes: &[ClassCounts], empty: EmptyAs) -> Self {
        let mut pooled = ClassCounts::default();
        for c in classes {
            pooled += c;
        }
        Self::of(&pooled, empty)
    }

    fn values(&self) -> [Option<f64>; 5] {
        [
            self.iou,
            self.dice,
            self.precision,
            self.recall,
            self.accuracy,
        ]
    }
}

/// A class absent from truth and prediction (its IoU is 0/0).
pub fn is_empty(c: &ClassCounts) -> bool {
    c.tp + c.fp + c.fn_ == 0
}

/// Overall pixel accuracy (mmsegmentation's aAcc): sum TP / sum (TP + FN)
/// over classes; for single-label truth, the share of labelled pixels whose
/// class is predicted.
pub fn pixel_accuracy(classes: &[ClassCounts]) -> Option<f64> {
    let tp: u64 = classes.iter().map(|c| c.tp).sum();
    let pos: u64 = classes.iter().map(|c| c.tp + c.fn_).sum();
    ratio(tp, pos)
}

/// Fixed-point units of a mean: 1e-12.
const UNIT: f64 = 1e12;

/// A mean of values in [0, 1], summed exactly in fixed point.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mean {
    sum: u128,
    n: u64,
}

impl Mean {
    /// Adds a defined value; an undefined one is left out.
    pub fn add(&mut self, v: Option<f64>) {
        if let Some(v) = v {
            self.sum += (v.clamp(0.0, 1.0) * UNIT).round() as u128;
            self.n += 1;
        }
    }

    /// How many values were added.
    pub fn count(&self) -> u64 {
        self.n
    }

    pub fn get(&self) -> Option<f64> {
        if self.n == 0 {
            return None;
        }
        let n = u128::from(self.n);
        let (q, r) = (self.sum / n, self.sum % n);
        Some((q as f64 + r as f64 / n as f64) / UNIT)
    }
}

impl Mean {
    /// `self + o`, or `None` when a sum overflows (inputs read from files).
    pub fn checked_add(&self, o: &Mean) -> Option<Mean> {
        Some(Mean {
            sum: self.sum.checked_add(o.sum)?,
            n: self.n.checked_add(o.n)?,
        })
    }

    /// Could this mean have been made by [`Mean::add`]: at most `images`
    /// values, each in [0, 1]?
    pub fn is_possible(&self, images: u64) -> bool {
        self.n <= images && self.sum <= u128::from(self.n) * UNIT as u128
    }
}

impl AddAssign<&Mean> for Mean {
    fn add_assign(&mut self, o: &Mean) {
        self.sum += o.sum;
        self.n += o.n;
    }
}

/// Means of each of the five metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsMean([Mean; 5]);

impl MetricsMean {
    pub fn add(&mut self, m: &Metrics) {
        for (acc, v) in self.0.iter_mut().zip(m.values()) {
            acc.add(v);
        }
    }

    /// Values that went into the IoU mean.
    pub fn iou_count(&self) -> u64 {
        self.0[0].count()
    }

    pub fn get(&self) -> Metrics {
        let [iou, dice, precision, recall, accuracy] = self.0.map(|m| m.get());
        Metrics {
            iou,
            dice,
            precision,
            recall,
            accuracy,
        }
    }

    /// Macro: the mean over classes of per-class metrics.
    pub fn of<'a>(rows: impl IntoIterator<Item = &'a Metrics>) -> Self {
        let mut acc = Self::default();
        for m in rows {
            acc.add(m);
        }
        acc
    }
}

impl MetricsMean {
    /// `self + o`, or `None` when a sum overflows.
    pub fn checked_add(&self, o: &MetricsMean) -> Option<MetricsMean> {
        let mut out = *self;
        for (a, b) in out.0.iter_mut().zip(&o.0) {
            *a = a.checked_add(b)?;
        }
        Some(out)
    }

    /// See [`Mean::is_possible`].
    pub fn is_possible(&self, images: u64) -> bool {
        self.0.iter().all(|m| m.is_possible(images))
    }
}

impl AddAssign<&MetricsMean> for MetricsMean {
    fn add_assign(&mut self, o: &MetricsMean) {
        for (a, b) in self.0.iter_mut().zip(&o.0) {
            *a += b;
        }
    }
}

/// One image's metrics: per class, and their mean over classes.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageMetrics {
    pub classes: Vec<Metrics>,
    pub mean: Metrics,
}

impl ImageMetrics {
    pub fn of(c: &Confusion, empty: EmptyAs) -> Self {
        let classes: Vec<Metrics> = c.classes.iter().map(|k| Metrics::of(k, empty)).collect();
        let mean = MetricsMean::of(&classes).get();
        Self { classes, mean }
    }
}

/// The per-image reduction, accumulated image by image (order-free).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerImage {
    pub images: u64,
    /// Per class: the mean over images of its per-image metrics.
    pub classes: Vec<MetricsMean>,
    /// The mean over images of each image's mean over classes.
    pub means: MetricsMean,
    /// The mean over images of each image's micro metrics (its counts
    /// summed over classes, then divided).
    pub micro: MetricsMean,
    /// (image, class) pairs with the class absent from truth and prediction.
    pub empty: u64,
}

impl PerImage {
    pub fn new(classes: usize) -> Self {
        Self {
            classes: vec![MetricsMean::default(); classes],
            ..Self::default()
        }
    }

    /// Adds one image's counts; returns its metrics (for the per-image table).
    pub fn add(&mut self, c: &Confusion, empty: EmptyAs) -> ImageMetrics {
        let m = ImageMetrics::of(c, empty);
        self.images += 1;
        self.empty += c.classes.iter().filter(|k| is_empty(k)).count() as u64;
        for (acc, k) in self.classes.iter_mut().zip(&m.classes) {
            acc.add(k);
        }
        self.means.add(&m.mean);
        self.micro.add(&Metrics::micro(&c.classes, empty));
        m
    }

    /// The mean over every (image, class) pair with a defined value, pooled
    /// at once: the per-class sums and counts added together.
    pub fn pooled(&self) -> MetricsMean {
        let mut all = MetricsMean::default();
        for c in &self.classes {
            all += c;
        }
        all
    }
}

impl PerImage {
    /// Could a scan of some images have made this (for a part read from a
    /// file): `classes` classes, no mean over more images than it holds,
    /// no more empty pairs than (image, class) pairs?
    pub fn is_possible(&self, classes: usize) -> bool {
        let n = self.images;
        self.classes.len() == classes
            && self.classes.iter().all(|m| m.is_possible(n))
            && self.means.is_possible(n)
            && self.micro.is_possible(n)
            && n.checked_mul(classes as u64)
                .is_some_and(|pairs| self.empty <= pairs)
    }

    /// `self + o` with every sum checked, or `None` on an overflow. Both
    /// must hold the same number of classes.
    pub fn checked_add(&self, o: &PerImage) -> Option<PerImage> {
        if self.classes.len() != o.classes.len() {
            return None;
        }
        Some(PerImage {
            images: self.images.checked_add(o.images)?,
            classes: self
                .classes
                .iter()
                .zip(&o.classes)
                .map(|(a, b)| a.checked_add(b))
                .collect::<Option<_>>()?,
            means: self.means.checked_add(&o.means)?,
            micro: self.micro.checked_add(&o.micro)?,
            empty: self.empty.checked_add(o.empty)?,
        })
    }
}

impl AddAssign<&PerImage> for PerImage {
    fn add_assign(&mut self, o: &PerImage) {
        self.images += o.images;
        self.empty += o.empty;
        if self.classes.is_empty() {
            self.classes = o.classes.clone();
        } else {
            for (a, b) in self.classes.iter_mut().zip(&o.classes) {
                *a += b;
            }
        }
        self.means += &o.means;
        self.micro += &o.micro;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 2-image, 3-channel multi-label example (numbers agreed by
    /// torchmetrics 1.9, smp 0.6, MONAI 1.6 and mmsegmentation).
    pub(crate) fn example() -> [Confusion; 2] {
        let k = |tp, fp, fn_| ClassCounts::from_valid(tp, fp, fn_, 4);
        [
            Confusion {
                valid: 4,
                classes: vec![k(1, 0, 1), k(1, 0, 1), k(0, 0, 0)],
            },
            Confusion {
                valid: 4,
                classes: vec![k(3, 0, 1), k(0, 1, 0), k(0, 0, 0)],
            },
        ]
    }

    fn r4(v: Option<f64>) -> Option<f64> {
        v.map(|v| (v * 1e4).round() / 1e4)
    }

    #[test]
    fn example_dataset_micro_and_per_image() {
        let [a, b] = example();
        let mut total = Confusion::default();
        total += &a;
        total += &b;
        let rows: Vec<Metrics> = total
            .classes
            .iter()
            .map(|c| Metrics::of(c, EmptyAs::Skip))
            .collect();
        let ious: Vec<Option<f64>> = rows.iter().map(|m| r4(m.iou)).collect();
        assert_eq!(ious, vec![Some(0.6667), Some(0.3333), None]);
        assert_eq!(r4(MetricsMean::of(&rows).get().iou), Some(0.5));
        assert_eq!(
            r4(Metrics::micro(&total.classes, EmptyAs::Skip).iou),
            Some(0.5556)
        );
        let mut per = PerImage::new(3);
        let ma = per.add(&a, EmptyAs::Skip);
        let mb = per.add(&b, EmptyAs::Skip);
        let row = |m: &ImageMetrics| m.classes.iter().map(|k| k.iou).collect::<Vec<_>>();
        assert_eq!(row(&ma), vec![Some(0.5), Some(0.5), None]);
        assert_eq!(row(&mb), vec![Some(0.75), Some(0.0), None]);
        assert_eq!(r4(per.means.get().iou), Some(0.4375));
        assert_eq!(r4(per.classes[0].get().iou), Some(0.625));
        assert_eq!(per.classes[2].get().iou, None);
        assert_eq!(per.empty, 2);
        // Pooled over the 4 defined (image, class) pairs: (0.5 + 0.5 +
        // 0.75 + 0) / 4; micro per image: 2/4 and 3/5, then their mean.
        assert_eq!(r4(per.pooled().get().iou), Some(0.4375));
        assert_eq!(per.pooled().iou_count(), 4);
        assert_eq!(r4(per.micro.get().iou), Some(0.55));
        // Accuracy counts true negatives: the absent class scores 1.
        assert_eq!(rows[2].accuracy, Some(1.0));
        assert_eq!(r4(rows[0].accuracy), Some(0.75));
    }

    #[test]
    fn empty_as_one_and_zero_enter_the_means() {
        let [a, b] = example();
        let mut total = a.clone();
        total += &b;
        let mean = |e| {
            let rows: Vec<Metrics> = total.classes.iter().map(|c| Metrics::of(c, e)).collect();
            r4(MetricsMean::of(&rows).get().iou)
        };
        assert_eq!(mean(EmptyAs::Skip), Some(0.5));
        assert_eq!(mean(EmptyAs::Zero), Some(0.3333));
        assert_eq!(mean(EmptyAs::One), Some(0.6667));
    }

    #[test]
    fn means_are_order_free_and_exact() {
        let vals = [0.1, 0.2, 0.7, 1.0 / 3.0, 0.0, 1.0];
        let mut fwd = Mean::default();
        let mut rev = Mean::default();
        for v in vals {
            fwd.add(Some(v));
        }
        for v in vals.iter().rev() {
            rev.add(Some(*v));
        }
        rev.add(None);
        assert_eq!(fwd, rev);
        let want = vals.iter().sum::<f64>() / vals.len() as f64;
        assert!((fwd.get().unwrap() - want).abs() < 1e-12);
        assert_eq!(Mean::default().get(), None);
    }

    #[test]
    fn zero_denominators_are_undefined_not_nan() {
        let c = ClassCounts::from_valid(0, 0, 3, 10);
        let m = Metrics::of(&c, EmptyAs::Skip);
        assert_eq!(m.iou, Some(0.0));
        assert_eq!(m.precision, None);
        assert_eq!(m.recall, Some(0.0));
        assert_eq!(Metrics::of(&c, EmptyAs::Zero).precision, Some(0.0));
        assert_eq!(pixel_accuracy(&[]), None);
    }
}

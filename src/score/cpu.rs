//! The CPU scorer: the reference every other backend must match exactly.
//!
//! - Mask predictions: a joint histogram `(truth code, pred code) -> pixels`
//!   built from runs of equal pixel pairs (masks are flat), then each
//!   distinct pair is resolved once through the label map.
//! - Float predictions ([`CpuScorer`]): a branch-free pass per class over
//!   the truth planes, the excluded pixels and the decided prediction.
//!
//! Neither allocates, hashes or locks per pixel.

use super::{ClassCounts, Confusion, Decision, Pred, Sample, ScoreError, Scorer, Truth};
use crate::decode::Frame;
use crate::labels::{LabelMap, Resolved};

/// Truth pixels that count nowhere, and valid pixels whose predicted code
/// means no class (ignored or undeclared in the label map).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tally {
    pub ignored: u64,
    pub undeclared: u64,
    /// Valid truth pixels predicted with an ignore or undeclared code: they
    /// count as predicting no class.
    pub pred_unlabelled: u64,
}

impl std::ops::AddAssign<&Tally> for Tally {
    fn add_assign(&mut self, o: &Tally) {
        self.ignored += o.ignored;
        self.undeclared += o.undeclared;
        self.pred_unlabelled += o.pred_unlabelled;
    }
}

/// Per-worker buffers for [`count_joint`], reused from image to image.
#[derive(Default)]
pub struct JointScratch {
    runs: Vec<(u32, u64)>,
    table: JointTable,
}

/// Counts one mask prediction against its truth (same size: the caller
/// checks). Work is per run of equal pixel pairs plus per distinct pair.
pub fn count_joint(
    truth: &Frame<'_>,
    pred: &Frame<'_>,
    map: &LabelMap,
    scratch: &mut JointScratch,
) -> (Confusion, Tally) {
    let JointScratch { runs, table } = scratch;
    runs.clear();
    pred.runs(|code, run| runs.push((code, run)));
    table.clear();
    let mut j = 0usize;
    let mut left = runs.first().map_or(0, |r| r.1);
    truth.runs(|t, mut run| {
        while run > 0 && j < runs.len() {
            let take = run.min(left);
            table.add(u64::from(t) << 32 | u64::from(runs[j].0), take);
            run -= take;
            left -= take;
            if left == 0 {
                j += 1;
                left = runs.get(j).map_or(0, |r| r.1);
            }
        }
    });
    let c = map.num_classes();
    let mut conf = Confusion::new(c);
    let mut tally = Tally::default();
    table.for_each(|key, n| {
        let (t, p) = ((key >> 32) as u32, key as u32);
        let ts = match map.resolve(t, truth.format) {
            Resolved::Classes(ts) => ts,
            Resolved::Ignore => return tally.ignored += n,
            Resolved::Unknown => return tally.undeclared += n,
        };
        conf.valid += n;
        let ps = match map.resolve(p, pred.format) {
            Resolved::Classes(ps) => ps,
            Resolved::Ignore | Resolved::Unknown => {
                tally.pred_unlabelled += n;
                &[]
            }
        };
        for &k in ts {
            let k_counts = &mut conf.classes[usize::from(k)];
            if ps.contains(&k) {
                k_counts.tp += n;
            } else {
                k_counts.fn_ += n;
            }
        }
        for &k in ps {
            if !ts.contains(&k) {
                conf.classes[usize::from(k)].fp += n;
            }
        }
    });
    let valid = conf.valid;
    for k in &mut conf.classes {
        *k = ClassCounts::from_valid(k.tp, k.fp, k.fn_, valid);
    }
    (conf, tally)
}

/// `(truth code, pred code) -> pixels`, one key per pair of codes.
type JointTable = crate::decode::CountTable<u64>;

/// The reference scorer for truth planes and predictions.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuScorer;

impl Scorer for CpuScorer {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn count(
        &self,
        batch: &[Sample<'_>],
        decision: Decision,
    ) -> Result<Vec<Confusion>, ScoreError> {
        batch.iter().map(|s| count_sample(s, decision)).collect()
    }
}

/// Counts one sample; lengths are checked so a caller's mistake is an
/// error, not a panic.
pub fn count_sample(s: &Sample<'_>, decision: Decision) -> Result<Confusion, ScoreError> {
    let Truth {
        classes: c,
        height,
        width,
        planes,
        excluded,
    } = s.truth;
    let hw = height * width;
    let pred_len = match s.pred {
        Pred::Planes(p) => p.len(),
        Pred::Scores(v) => v.len(),
    };
    if planes.len() != c * hw || excluded.len() != hw || pred_len != c * hw {
        return Err(ScoreError::Backend {
            backend: "cpu",
            message: format!(
                "sample buffers hold {} truth, {} excluded and {pred_len} prediction values; \
                 expected C x H x W = {c} x {height} x {width}",
                planes.len(),
                excluded.len()
            ),
        });
    }
    let valid = excluded.iter().map(|&e| u64::from(e == 0)).sum::<u64>();
    let mut out = Confusion {
        valid,
        classes: Vec::with_capacity(c),
    };
    fn plane(buf: &[u8], k: usize, hw: usize) -> &[u8] {
        &buf[k * hw..(k + 1) * hw]
    }
    match (s.pred, decision) {
        (Pred::Planes(p), _) => {
            for k in 0..c {
                let pred = plane(p, k, hw).iter().map(|&v| v != 0);
                out.classes
                    .push(tally(plane(planes, k, hw), excluded, pred, valid));
            }
        }
        (Pred::Scores(v), Decision::Above(t)) => {
            for k in 0..c {
                let pred = v[k * hw..(k + 1) * hw].iter().map(|&x| x > t);
                out.classes
                    .push(tally(plane(planes, k, hw), excluded, pred, valid));
            }
        }
        (Pred::Scores(v), Decision::Argmax) => {
            let best = argmax(v, c, hw);
            for k in 0..c {
                let pred = best.iter().map(|&b| usize::from(b) == k);
                out.classes
                    .push(tally(plane(planes, k, hw), excluded, pred, valid));
            }
        }
    }
    Ok(out)
}

/// TP, FP, FN (and TN from `valid`) of one class plane.
#[inline]
fn tally(
    truth: &[u8],
    excluded: &[u8],
    pred: impl Iterator<Item = bool>,
    valid: u64,
) -> ClassCounts {
    let (mut tp, mut fp, mut fn_) = (0u64, 0u64, 0u64);
    for ((&t, &e), p) in truth.iter().zip(excluded).zip(pred) {
        let live = e == 0;
        let t = t != 0;
        tp += u64::from(live & t & p);
        fp += u64::from(live & !t & p);
        fn_ += u64::from(live & t & !p);
    }
    ClassCounts::from_valid(tp, fp, fn_, valid)
}

/// Scores `[C, H, W]` decided into multi-hot planes (1 where the class is
/// predicted), by exactly the rule the counts use; for pictures of the
/// predictions (the report's thumbnails).
pub fn decided_planes(v: &[f32], c: usize, hw: usize, decision: Decision) -> Vec<u8> {
    match decision {
        Decision::Above(t) => v[..c * hw].iter().map(|&x| u8::from(x > t)).collect(),
        Decision::Argmax => {
            let best = argmax(v, c, hw);
            let mut planes = vec![0u8; c * hw];
            for (i, &b) in best.iter().enumerate() {
                planes[usize::from(b) * hw + i] = 1;
            }
            planes
        }
    }
}

/// The class of the largest score per pixel: ties to the lowest class, the
/// first NaN wins (as `numpy.argmax`). Plane by plane, so reads are linear.
fn argmax(v: &[f32], c: usize, hw: usize) -> Vec<u16> {
    let mut best_v: Vec<f32> = v[..hw].to_vec();
    let mut best = vec![0u16; hw];
    for k in 1..c {
        for ((bv, b), &x) in best_v
            .iter_mut()
            .zip(&mut best)
            .zip(&v[k * hw..(k + 1) * hw])
        {
            if x > *bv || (x.is_nan() && !bv.is_nan()) {
                *bv = x;
                *b = k as u16;
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::{Kind, LabelSpec};

    fn rgb_map() -> LabelMap {
        let spec = LabelSpec {
            kind: Kind::RgbBits,
            classes: vec!["r".into(), "g".into(), "b".into()],
            threshold: Some(128),
            ignore: vec![],
            colors: Default::default(),
            values: Default::default(),
            unlisted: Default::default(),
        };
        LabelMap::compile(spec, "test").unwrap()
    }

    /// Channel bits per pixel → RGB bytes.
    fn rgb(px: &[[u8; 3]]) -> Vec<u8> {
        px.iter().flat_map(|p| p.map(|b| b * 255)).collect()
    }

    fn png(w: u32, h: u32, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header().unwrap().write_image_data(data).unwrap();
        out
    }

    type Px = [[u8; 3]; 4];

    /// The example's images: (truth, pred) channel bits per pixel.
    fn example() -> [(Px, Px); 2] {
        [
            (
                [[1, 1, 0], [1, 1, 0], [0, 0, 0], [0, 0, 0]],
                [[1, 1, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]],
            ),
            (
                [[1, 0, 0], [1, 0, 0], [1, 0, 0], [1, 0, 0]],
                [[1, 0, 0], [1, 0, 0], [1, 0, 0], [0, 1, 0]],
            ),
        ]
    }

    fn want(i: usize) -> Confusion {
        let k = |tp, fp, fn_| ClassCounts::from_valid(tp, fp, fn_, 4);
        match i {
            0 => Confusion {
                valid: 4,
                classes: vec![k(1, 0, 1), k(1, 0, 1), k(0, 0, 0)],
            },
            _ => Confusion {
                valid: 4,
                classes: vec![k(3, 0, 1), k(0, 1, 0), k(0, 0, 0)],
            },
        }
    }

    #[test]
    fn example_counts_by_joint_histogram_and_by_planes() {
        let map = rgb_map();
        let mut scratch = JointScratch::default();
        for (i, (t, p)) in example().iter().enumerate() {
            let (tb, pb) = (png(2, 2, &rgb(t)), png(2, 2, &rgb(p)));
            let (mut b1, mut b2) = (Vec::new(), Vec::new());
            let tf = crate::decode::decode_frame(&tb, &mut b1).unwrap();
            let pf = crate::decode::decode_frame(&pb, &mut b2).unwrap();
            let (conf, tally) = count_joint(&tf, &pf, &map, &mut scratch);
            assert_eq!(conf, want(i), "joint, image {i}");
            assert_eq!(tally, Tally::default());

            let (mut tp, mut te, mut pp, mut pe) = (vec![], vec![], vec![], vec![]);
            map.planes(&tf, &mut tp, &mut te);
            map.planes(&pf, &mut pp, &mut pe);
            let truth = Truth {
                classes: 3,
                height: 2,
                width: 2,
                planes: &tp,
                excluded: &te,
            };
            let s = Sample {
                truth,
                pred: Pred::Planes(&pp),
            };
            let got = CpuScorer.count(&[s], Decision::Above(0.0)).unwrap();
            assert_eq!(got, vec![want(i)], "planes, image {i}");
            // The same prediction as logits: +3 / -3.
            let logits: Vec<f32> = pp
                .iter()
                .map(|&b| if b == 1 { 3.0 } else { -3.0 })
                .collect();
            let s = Sample {
                truth,
                pred: Pred::Scores(&logits),
            };
            assert_eq!(count_sample(&s, Decision::Above(0.0)).unwrap(), want(i));
        }
    }

    #[test]
    fn zero_and_nan_are_negative_and_excluded_pixels_count_nowhere() {
        let planes = [1u8, 1, 0, 1];
        let excluded = [0u8, 0, 0, 1];
        let truth = Truth {
            classes: 1,
            height: 1,
            width: 4,
            planes: &planes,
            excluded: &excluded,
        };
        let scores = [0.0f32, f32::NAN, f32::INFINITY, 9.0];
        let s = Sample {
            truth,
            pred: Pred::Scores(&scores),
        };
        let got = count_sample(&s, Decision::Above(0.0)).unwrap();
        assert_eq!(got.valid, 3);
        assert_eq!(got.classes, vec![ClassCounts::from_valid(0, 1, 2, 3)]);
    }

    #[test]
    fn argmax_ties_go_low_and_nan_wins_like_numpy() {
        // 2 classes x 4 pixels: tie, class 1 larger, NaN in class 1, NaN in both.
        let v = [1.0f32, 0.0, 5.0, f32::NAN, 1.0, 2.0, f32::NAN, f32::NAN];
        assert_eq!(argmax(&v, 2, 4), vec![0, 1, 1, 0]);
    }

    #[test]
    fn wrong_buffer_lengths_are_errors_not_panics() {
        let truth = Truth {
            classes: 2,
            height: 1,
            width: 2,
            planes: &[0, 1, 1, 0],
            excluded: &[0, 0],
        };
        let s = Sample {
            truth,
            pred: Pred::Scores(&[0.0; 3]),
        };
        assert!(CpuScorer.count(&[s], Decision::Argmax).is_err());
    }

    #[test]
    fn joint_table_grows_and_keeps_the_white_key() {
        let mut t = JointTable::default();
        for k in 0..1000u64 {
            t.add(k * 7919, 1);
            t.add(k * 7919, 2);
        }
        t.add(u64::MAX, 5);
        let (mut n, mut sum) = (0, 0);
        t.for_each(|_, c| {
            n += 1;
            sum += c;
        });
        assert_eq!((n, sum), (1001, 3005));
    }
}

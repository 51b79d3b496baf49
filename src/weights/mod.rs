//! Weights stage: exact class counts → loss weights for PyTorch.
//!
//! `pos_weight` for `BCEWithLogitsLoss` and class weights for
//! `CrossEntropyLoss` under every scheme of DESIGN.md, one function per
//! formula. Invariant: every value written is finite and positive; the
//! hard cases (a class with no pixels, a class on every pixel, a cap) follow
//! the rules in [`rules`], and each one is reported as a warning.

pub mod doc;

use std::fmt;
use std::str::FromStr;

use crate::stats::doc::StatsDoc;
pub use crate::weight_rules::{NEUTRAL, PosWeightRule, pos_weight, rules, written_pos_weight};

/// Default `c` of ENet weighting (Paszke et al. 2016).
pub const ENET_C: f64 = 1.02;
/// `options.beta_from` when `--beta` set beta.
pub const BETA_GIVEN: &str = "--beta";
/// `options.beta_from` otherwise: how `beta` of effective-number weighting
/// is chosen unless `--beta` sets it: Cui et al.'s beta = (N - 1) / N, with
/// N the valid pixels (pixels are the samples). A fixed beta such as the paper's 0.9999 saturates at pixel
/// counts: every class above ~70k pixels would weigh the same.
pub const BETA_RULE: &str = "beta = 1 - 1/N, N the valid pixels (Cui et al.'s (N - 1) / N, \
    pixels as samples), unless `--beta` sets it";
/// Below this, `beta^n` counts as saturated: the class weighs as if infinite.
const SATURATED: f64 = 1e-3;

/// A class-weight scheme for `CrossEntropyLoss`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Scheme {
    #[default]
    Balanced,
    InverseFrequency,
    InverseSqrt,
    MedianFrequency,
    Enet,
    EffectiveNumber,
}

impl Scheme {
    /// Every scheme, in the order of the outputs.
    pub const ALL: [Scheme; 6] = [
        Self::Balanced,
        Self::InverseFrequency,
        Self::InverseSqrt,
        Self::MedianFrequency,
        Self::Enet,
        Self::EffectiveNumber,
    ];

    /// The name on the command line and in `weights.json`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Balanced => "balanced",
            Self::InverseFrequency => "inverse-frequency",
            Self::InverseSqrt => "inverse-sqrt",
            Self::MedianFrequency => "median-frequency",
            Self::Enet => "enet",
            Self::EffectiveNumber => "effective-number",
        }
    }

    /// A table column header.
    pub fn short(self) -> &'static str {
        match self {
            Self::Balanced => "balanced",
            Self::InverseFrequency => "inv-freq",
            Self::InverseSqrt => "inv-sqrt",
            Self::MedianFrequency => "median-freq",
            Self::Enet => "enet",
            Self::EffectiveNumber => "eff-num",
        }
    }

    /// The formula, with n_c the pixels of class c, N the valid pixels,
    /// f_c = n_c / N, S_c the valid pixels of the masks holding c, K classes.
    pub fn formula(self) -> &'static str {
        match self {
            Self::Balanced => {
                "T / (K n_c), T = sum of n_c (scikit-learn compute_class_weight('balanced'); T = N for single-label data)"
            }
            Self::InverseFrequency => "1 / f_c = N / n_c",
            Self::InverseSqrt => "1 / sqrt(f_c) = sqrt(N / n_c)",
            Self::MedianFrequency => "median_c(n_c / S_c) / (n_c / S_c) (Eigen & Fergus 2015)",
            Self::Enet => "1 / ln(c + f_c) (Paszke et al. 2016)",
            Self::EffectiveNumber => {
                "(1 - beta) / (1 - beta^n_c), beta = 1 - 1/N unless --beta (Cui et al. 2019)"
            }
        }
    }

    /// How the values are scaled.
    pub fn normalisation(self) -> &'static str {
        match self {
            Self::Balanced => {
                "none beyond scikit-learn's: sum of n_c w_c = T (pixel-weighted mean 1)"
            }
            Self::InverseFrequency | Self::InverseSqrt => "none (raw values)",
            Self::MedianFrequency => {
                "none: the class at the median frequency gets 1 (median of classes with pixels; \
                 mean of the two middle values for an even count, as numpy.median)"
            }
            Self::Enet => "none: values lie in [1/ln(c+1), 1/ln(c)), 1.42..50.5 at c = 1.02",
            Self::EffectiveNumber => {
                "scaled to sum to the number of classes with pixels (K when all have pixels)"
            }
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scheme {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "`{s}` is not a weight scheme; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// Why weights cannot be computed.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("the label map declares no classes; expected at least one")]
    NoClasses,
    #[error(
        "no valid pixels ({total} in all, {ignored} ignored, {undeclared} undeclared); \
         expected pixels that are neither ignored nor undeclared"
    )]
    NoValidPixels {
        total: u64,
        ignored: u64,
        undeclared: u64,
    },
    #[error("the counts are inconsistent: {0}; expected counts written by `maskprep stats`")]
    Inconsistent(String),
    #[error(
        "`--enet-c {0}` is out of range; expected a number above 1 (1 / ln(c + f) must stay finite)"
    )]
    EnetC(f64),
    #[error("`--beta {0}` is out of range; expected 0 <= beta < 1")]
    Beta(f64),
    #[error("`--max-weight {0}` is out of range; expected a finite number above 0")]
    MaxWeight(f64),
}

/// Settings of the schemes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// The scheme written as `weight`.
    pub scheme: Scheme,
    pub enet_c: f64,
    /// `None`: derived from N, as [`BETA_RULE`] says.
    pub beta: Option<f64>,
    pub max_weight: Option<f64>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            scheme: Scheme::Balanced,
            enet_c: ENET_C,
            beta: None,
            max_weight: None,
        }
    }
}

impl Options {
    /// Rejects settings under which a formula is not finite.
    /// The beta of effective-number weighting over `valid` pixels.
    pub fn beta(&self, valid: u64) -> f64 {
        self.beta.unwrap_or_else(|| 1.0 - 1.0 / valid.max(1) as f64)
    }

    /// ln(beta), exact for a derived beta near 1 (ln(1 - 1/N) as ln_1p).
    fn ln_beta(&self, valid: u64) -> f64 {
        match self.beta {
            Some(b) => b.ln(),
            None => (-1.0 / valid.max(1) as f64).ln_1p(),
        }
    }

    /// How a scheme's parameter was set, for the outputs (`None`: it has none).
    pub fn setting(&self, scheme: Scheme, valid: u64) -> Option<String> {
        match scheme {
            Scheme::Enet => Some(format!("c = {} (`--enet-c`)", self.enet_c)),
            Scheme::EffectiveNumber => Some(match self.beta {
                Some(b) => format!(
                    "beta = {b}, set by `--beta`: classes above about {} pixels get about \
                     the same weight",
                    saturation_pixels(b.ln())
                ),
                None => format!(
                    "beta = 1 - 1/N = {} (N = {valid} valid pixels; Cui et al.'s (N - 1) / N \
                     with pixels as samples): 1 - beta^n_c is about 1 - exp(-f_c), so a rare \
                     class weighs about 1/f_c relative to the others and common classes are \
                     compressed; `--beta` sets beta instead",
                    self.beta(valid)
                ),
            }),
            _ => None,
        }
    }

    pub fn check(&self) -> Result<(), WeightsError> {
        if !(self.enet_c.is_finite() && self.enet_c > 1.0) {
            return Err(WeightsError::EnetC(self.enet_c));
        }
        if let Some(b) = self.beta
            && !(0.0..1.0).contains(&b)
        {
            return Err(WeightsError::Beta(b));
        }
        if let Some(m) = self.max_weight
            && !(m.is_finite() && m > 0.0)
        {
            return Err(WeightsError::MaxWeight(m));
        }
        Ok(())
    }
}

/// What the masks hold, as far as the loss is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelKind {
    /// Some pixel carries 2+ classes: BCEWithLogitsLoss.
    MultiLabel,
    /// Every labelled pixel carries one class: CrossEntropyLoss.
    SingleLabel,
    /// No valid pixel carries a class.
    Empty,
}

impl LabelKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::MultiLabel => "multi-label",
            Self::SingleLabel => "single-label",
            Self::Empty => "empty",
        }
    }
}

/// The counts the weights derive from (checked consistent).
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub classes: Vec<String>,
    /// n_c: pixels of each class.
    pub pixels: Vec<u64>,
    /// S_c: valid pixels of the masks holding each class.
    pub image_pixels: Vec<u64>,
    /// N: valid pixels.
    pub valid: u64,
    /// Valid pixels carrying no class.
    pub unlabelled: u64,
    pub kind: LabelKind,
}

impl Input {
    /// Takes the counts of a stats document, checking that they add up (a
    /// document from disk may have been edited).
    pub fn from_doc(doc: &StatsDoc) -> Result<Self, WeightsError> {
        let bad = |m: String| Err(WeightsError::Inconsistent(m));
        let p = &doc.pixels;
        let names = &doc.meta.labels.classes;
        if names.len() != doc.classes.len()
            || names.iter().zip(&doc.classes).any(|(a, b)| a != &b.name)
        {
            return bad(format!(
                "the label map names classes {names:?}, the class rows {:?}",
                doc.classes.iter().map(|c| &c.name).collect::<Vec<_>>()
            ));
        }
        let excluded = p.ignored.checked_add(p.undeclared);
        if excluded.and_then(|x| p.total.checked_sub(x)) != Some(p.valid) {
            return bad(format!(
                "{} valid pixels, but {} in all less {} ignored and {} undeclared",
                p.valid, p.total, p.ignored, p.undeclared
            ));
        }
        let d = &doc.label_degree;
        let degrees = [d.zero, d.one, d.two, d.three_plus]
            .iter()
            .try_fold(0u64, |a, &b| a.checked_add(b));
        if degrees != Some(p.valid) {
            return bad(format!(
                "pixels by label count do not sum to the {} valid pixels",
                p.valid
            ));
        }
        for c in &doc.classes {
            if c.pixels > c.image_pixels || c.image_pixels > p.valid {
                return bad(format!(
                    "class `{}` has {} pixels in masks of {} valid pixels, of {} in all",
                    c.name, c.pixels, c.image_pixels, p.valid
                ));
            }
        }
        let input = Self {
            classes: names.clone(),
            pixels: doc.classes.iter().map(|c| c.pixels).collect(),
            image_pixels: doc.classes.iter().map(|c| c.image_pixels).collect(),
            valid: p.valid,
            unlabelled: d.zero,
            kind: if d.two > 0 || d.three_plus > 0 {
                LabelKind::MultiLabel
            } else if d.one > 0 {
                LabelKind::SingleLabel
            } else {
                LabelKind::Empty
            },
        };
        if doc.verdict.kind != input.kind.name() {
            return bad(format!(
                "the verdict says `{}`, the pixels by label count say `{}`",
                doc.verdict.kind,
                input.kind.name()
            ));
        }
        if input.classes.is_empty() {
            return Err(WeightsError::NoClasses);
        }
        if input.valid == 0 {
            return Err(WeightsError::NoValidPixels {
                total: p.total,
                ignored: p.ignored,
                undeclared: p.undeclared,
            });
        }
        Ok(input)
    }

    /// Does `CrossEntropyLoss` need an output for pixels with no class?
    pub fn needs_background(&self) -> bool {
        self.kind == LabelKind::SingleLabel && self.unlabelled > 0
    }
}

/// One scheme's weights.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemeWeights {
    pub scheme: Scheme,
    pub values: Vec<f64>,
    /// Something a user of this scheme should know about these counts.
    pub note: Option<String>,
}

/// Every weight, with the rules applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    /// `[C]`, one per declared class (written shaped `[C,1,1]`).
    pub pos_weight: Vec<f64>,
    /// The K classes the class weights cover: the declared classes, plus one
    /// for pixels with no class when [`Input::needs_background`].
    pub weight_classes: Vec<String>,
    /// Pixels of each of the K classes.
    pub weight_pixels: Vec<u64>,
    /// Every scheme, in [`Scheme::ALL`] order.
    pub schemes: Vec<SchemeWeights>,
    pub warnings: Vec<String>,
}

impl Weights {
    /// The values of `scheme`.
    pub fn scheme(&self, scheme: Scheme) -> &[f64] {
        self.schemes
            .iter()
            .find(|s| s.scheme == scheme)
            .map(|s| s.values.as_slice())
            .unwrap_or(&[])
    }
}

/// The median of the values (mean of the two middle ones for an even count).
fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    match v.len() {
        0 => None,
        len if len % 2 == 1 => Some(v[m]),
        _ => Some((v[m - 1] + v[m]) / 2.0),
    }
}

/// One scheme's raw values over classes with `n` pixels (`s`: S_c), before
/// the rules; `None` where the class has no pixels.
pub fn scheme_values(
    scheme: Scheme,
    n: &[u64],
    s: &[u64],
    valid: u64,
    opts: &Options,
) -> Vec<Option<f64>> {
    let k = n.len() as f64;
    let big_n = valid as f64;
    let each = |f: &dyn Fn(f64, usize) -> f64| -> Vec<Option<f64>> {
        n.iter()
            .enumerate()
            .map(|(i, &x)| (x > 0).then(|| f(x as f64, i)))
            .collect()
    };
    match scheme {
        Scheme::Balanced => {
            let t = n.iter().map(|&x| u128::from(x)).sum::<u128>() as f64;
            each(&|x, _| t / (k * x))
        }
        Scheme::InverseFrequency => each(&|x, _| big_n / x),
        Scheme::InverseSqrt => each(&|x, _| (big_n / x).sqrt()),
        Scheme::MedianFrequency => {
            let freq = each(&|x, i| x / s[i].max(1) as f64);
            let present: Vec<f64> = freq.iter().flatten().copied().collect();
            let med = median(&present).unwrap_or(1.0);
            freq.iter().map(|f| f.map(|f| med / f)).collect()
        }
        Scheme::Enet => each(&|x, _| 1.0 / (opts.enet_c + x / big_n).ln()),
        Scheme::EffectiveNumber => {
            // 1 - beta^n as -expm1(n ln beta): exact for beta near 1; beta = 0 gives 1.
            // 1 - beta as -expm1(ln beta) too: 1 - (1 - 1/N) is 0 in f64 for huge N.
            let ln_b = opts.ln_beta(valid);
            let one_minus_b = -ln_b.exp_m1();
            let raw = each(&|x, _| one_minus_b / -(x * ln_b).exp_m1());
            let present = raw.iter().flatten().count() as f64;
            let sum: f64 = raw.iter().flatten().sum();
            raw.iter().map(|r| r.map(|r| r * present / sum)).collect()
        }
    }
}

/// Computes pos_weight and every scheme, applying the rules.
pub fn compute(input: &Input, opts: &Options) -> Weights {
    let valid = input.valid;
    let empty: Vec<&str> = input
        .classes
        .iter()
        .zip(&input.pixels)
        .filter(|(_, n)| **n == 0)
        .map(|(name, _)| name.as_str())
        .collect();
    let mut warnings: Vec<String> = rules::no_pixels_warning(&empty).into_iter().collect();
    for (name, &n) in input.classes.iter().zip(&input.pixels) {
        if n > 0 && n == valid {
            warnings.push(rules::every_pixel_warning(name));
        }
    }
    if input.kind == LabelKind::Empty {
        warnings.push("no valid pixel carries a class: every weight is 1".into());
    }
    let pos_weight = input
        .pixels
        .iter()
        .map(|&n| written_pos_weight(n, valid).0)
        .collect();

    let mut weight_classes = input.classes.clone();
    let mut n = input.pixels.clone();
    let mut s = input.image_pixels.clone();
    if input.needs_background() {
        weight_classes.push(background_name(&input.classes));
        n.push(input.unlabelled);
        s.push(valid);
    }
    let schemes = Scheme::ALL
        .iter()
        .map(|&scheme| {
            let values = scheme_values(scheme, &n, &s, valid, opts)
                .into_iter()
                .map(|v| v.unwrap_or(NEUTRAL))
                .collect();
            SchemeWeights {
                scheme,
                values,
                note: note(scheme, &n, valid, opts),
            }
        })
        .collect();
    let mut w = Weights {
        pos_weight,
        weight_classes,
        weight_pixels: n,
        schemes,
        warnings,
    };
    if let Some(chosen) = w.schemes.iter().find(|s| s.scheme == opts.scheme)
        && let Some(note) = &chosen.note
    {
        w.warnings.push(format!("{}: {note}", opts.scheme));
    }
    if let Some(max) = opts.max_weight {
        cap(&mut w, max);
    }
    w
}

/// A scheme's caveat for these counts, if any.
fn note(scheme: Scheme, n: &[u64], valid: u64, opts: &Options) -> Option<String> {
    if scheme != Scheme::EffectiveNumber {
        return None;
    }
    let ln_b = opts.ln_beta(valid);
    let saturated = n
        .iter()
        .filter(|&&x| x > 0 && (x as f64 * ln_b).exp() < SATURATED)
        .count();
    (saturated >= 2).then(|| {
        format!(
            "at beta {} the {saturated} classes above {} pixels get about the same \
             weight; raise `--beta` toward 1 (or leave it out: 1 - 1/N) to tell them apart",
            opts.beta(valid),
            saturation_pixels(ln_b)
        )
    })
}

/// The pixel count above which `beta^n` is below [`SATURATED`].
fn saturation_pixels(ln_b: f64) -> u64 {
    // beta = 0: ln_b = -inf, every class is saturated from 1 pixel on.
    (SATURATED.ln() / ln_b).ceil() as u64
}

/// Caps every value at `max`, with one warning saying how many were capped.
fn cap(w: &mut Weights, max: f64) {
    let mut capped = Vec::new();
    let mut apply = |what: &str, values: &mut [f64], names: &[String]| {
        for (v, name) in values.iter_mut().zip(names) {
            if *v > max {
                capped.push(format!("{what} `{name}` {}", short(*v)));
                *v = max;
            }
        }
    };
    apply("pos_weight", &mut w.pos_weight, &w.weight_classes);
    for s in &mut w.schemes {
        apply(s.scheme.name(), &mut s.values, &w.weight_classes);
    }
    if !capped.is_empty() {
        w.warnings.push(format!(
            "`--max-weight {max}` capped {} value(s): {}",
            capped.len(),
            capped.join(", ")
        ));
    }
}

/// A weight for messages: 4 decimals.
pub fn short(v: f64) -> String {
    format!("{v:.4}")
}

/// A name for the pixels with no class that no declared class uses.
fn background_name(classes: &[String]) -> String {
    ["background", "unlabelled", "no_class"]
        .iter()
        .map(|s| s.to_string())
        .find(|s| !classes.contains(s))
        .unwrap_or_else(|| format!("no_class_{}", classes.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DESIGN.md's golden counts: n = [240, 50, 10], N = 300, S = [300, 200, 100].
    fn golden() -> Input {
        Input {
            classes: vec!["a".into(), "b".into(), "c".into()],
            pixels: vec![240, 50, 10],
            image_pixels: vec![300, 200, 100],
            valid: 300,
            unlabelled: 0,
            kind: LabelKind::SingleLabel,
        }
    }

    fn at_b99() -> Options {
        Options {
            beta: Some(0.99),
            ..Options::default()
        }
    }

    /// Asserts `got` matches `want` to `tol` (half a unit of the last
    /// decimal the golden value is written with).
    fn close(got: &[f64], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() <= tol, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn golden_pos_weight() {
        let w = compute(&golden(), &at_b99());
        close(&w.pos_weight, &[0.25, 5.0, 29.0], 5e-5);
    }

    #[test]
    fn golden_balanced() {
        let w = compute(&golden(), &at_b99());
        close(w.scheme(Scheme::Balanced), &[0.4167, 2.0, 10.0], 5e-5);
    }

    #[test]
    fn golden_median_frequency() {
        let w = compute(&golden(), &at_b99());
        close(w.scheme(Scheme::MedianFrequency), &[0.3125, 1.0, 2.5], 5e-5);
    }

    #[test]
    fn golden_enet() {
        let w = compute(&golden(), &at_b99());
        let v = w.scheme(Scheme::Enet);
        close(v, &[1.670, 5.843, 19.246], 5e-4);
        close(v, &[1.6699, 5.8429, 19.2457], 5e-5);
    }

    #[test]
    fn golden_effective_number_at_beta_099() {
        let w = compute(&golden(), &at_b99());
        let v = w.scheme(Scheme::EffectiveNumber);
        close(v, &[0.234, 0.539, 2.227], 5e-4);
        close(v, &[0.2339, 0.5391, 2.2270], 5e-5);
        assert!((v.iter().sum::<f64>() - 3.0).abs() < 1e-12);
    }

    #[test]
    fn effective_number_derives_beta_from_n_by_default() {
        // beta = 1 - 1/300; values computed independently in Python:
        // r = [(1-b)/(1-b**n) for n in (240, 50, 10)], scaled to sum 3.
        let opts = Options::default();
        assert!((opts.beta(300) - 299.0 / 300.0).abs() < 1e-15);
        let w = compute(&golden(), &opts);
        let v = w.scheme(Scheme::EffectiveNumber);
        close(v, &[0.140363, 0.503260, 2.356377], 5e-6);
        assert!(w.warnings.is_empty(), "{:?}", w.warnings);
        let setting = opts.setting(Scheme::EffectiveNumber, 300).unwrap();
        assert!(setting.contains("beta = 1 - 1/N"), "{setting}");
    }

    #[test]
    fn golden_inverse_sqrt() {
        let w = compute(&golden(), &at_b99());
        let v = w.scheme(Scheme::InverseSqrt);
        close(v, &[1.118, 2.449, 5.477], 5e-4);
        close(v, &[1.1180, 2.4495, 5.4772], 5e-5);
    }

    #[test]
    fn golden_inverse_frequency() {
        let w = compute(&golden(), &at_b99());
        close(w.scheme(Scheme::InverseFrequency), &[1.25, 6.0, 30.0], 5e-5);
    }

    #[test]
    fn golden_has_no_warnings_or_background() {
        let w = compute(&golden(), &at_b99());
        assert!(w.warnings.is_empty(), "{:?}", w.warnings);
        assert_eq!(w.weight_classes, ["a", "b", "c"]);
    }

    #[test]
    fn class_without_pixels_is_neutral_and_finite_with_a_warning() {
        let input = Input {
            classes: vec!["a".into(), "gone".into(), "c".into(), "d".into()],
            pixels: vec![240, 0, 50, 10],
            image_pixels: vec![300, 0, 200, 100],
            ..golden()
        };
        let w = compute(&input, &at_b99());
        assert_eq!(w.pos_weight[1], 1.0);
        for s in &w.schemes {
            assert!(s.values.iter().all(|v| v.is_finite() && *v > 0.0), "{s:?}");
            assert_eq!(s.values[1], 1.0, "{s:?}");
        }
        // Left out of the median and of the normalisation.
        close(
            w.scheme(Scheme::MedianFrequency),
            &[0.3125, 1.0, 1.0, 2.5],
            5e-5,
        );
        close(
            w.scheme(Scheme::EffectiveNumber),
            &[0.2339, 1.0, 0.5391, 2.2270],
            5e-5,
        );
        // Balanced uses K = 4 classes.
        close(w.scheme(Scheme::Balanced), &[0.3125, 1.0, 1.5, 7.5], 5e-5);
        assert!(
            w.warnings
                .iter()
                .any(|m| m.contains("`gone` has no pixels"))
        );
    }

    #[test]
    fn class_on_every_pixel_gets_pos_weight_one() {
        let input = Input {
            classes: vec!["all".into(), "some".into()],
            pixels: vec![300, 30],
            image_pixels: vec![300, 300],
            valid: 300,
            unlabelled: 0,
            kind: LabelKind::MultiLabel,
        };
        let w = compute(&input, &Options::default());
        close(&w.pos_weight, &[1.0, 9.0], 1e-12);
        assert!(w.warnings.iter().any(|m| m.contains("`all` covers every")));
    }

    #[test]
    fn empty_masks_give_ones_everywhere() {
        let input = Input {
            classes: vec!["a".into(), "b".into()],
            pixels: vec![0, 0],
            image_pixels: vec![0, 0],
            valid: 100,
            unlabelled: 100,
            kind: LabelKind::Empty,
        };
        let w = compute(&input, &Options::default());
        assert_eq!(w.pos_weight, [1.0, 1.0]);
        assert!(w.schemes.iter().all(|s| s.values == [1.0, 1.0]));
        assert!(w.warnings.iter().any(|m| m.contains("no valid pixel")));
    }

    #[test]
    fn max_weight_caps_every_value_and_says_so() {
        let opts = Options {
            max_weight: Some(5.0),
            ..at_b99()
        };
        let w = compute(&golden(), &opts);
        close(&w.pos_weight, &[0.25, 5.0, 5.0], 1e-12);
        close(w.scheme(Scheme::Balanced), &[0.4167, 2.0, 5.0], 5e-5);
        close(w.scheme(Scheme::Enet), &[1.6699, 5.0, 5.0], 5e-5);
        assert!(w.schemes.iter().all(|s| s.values.iter().all(|&v| v <= 5.0)));
        let msg = w
            .warnings
            .iter()
            .find(|m| m.contains("--max-weight"))
            .unwrap();
        assert!(msg.contains("pos_weight `c` 29.0000"), "{msg}");
    }

    #[test]
    fn single_label_with_unlabelled_pixels_adds_a_background_class() {
        // 60 of 300 valid pixels carry no class.
        let input = Input {
            classes: vec!["a".into(), "b".into()],
            pixels: vec![200, 40],
            image_pixels: vec![300, 100],
            valid: 300,
            unlabelled: 60,
            kind: LabelKind::SingleLabel,
        };
        let w = compute(&input, &Options::default());
        assert_eq!(w.weight_classes, ["a", "b", "background"]);
        assert_eq!(w.weight_pixels, [200, 40, 60]);
        assert_eq!(w.pos_weight.len(), 2);
        // Balanced over the K = 3 targets: N / (3 n_c), as scikit-learn.
        close(
            w.scheme(Scheme::Balanced),
            &[0.5, 2.5, 300.0 / 180.0],
            1e-12,
        );
        for s in &w.schemes {
            assert_eq!(s.values.len(), 3);
        }
    }

    #[test]
    fn multi_label_balanced_matches_scikit_learn_on_label_occurrences() {
        // scikit-learn on np.repeat(arange(K), n): sum(n) / (K n_c).
        let input = Input {
            classes: vec!["a".into(), "b".into()],
            pixels: vec![80, 40],
            image_pixels: vec![100, 100],
            valid: 100,
            unlabelled: 0,
            kind: LabelKind::MultiLabel,
        };
        let w = compute(&input, &Options::default());
        close(w.scheme(Scheme::Balanced), &[0.75, 1.5], 1e-12);
        assert_eq!(w.weight_classes.len(), 2);
    }

    #[test]
    fn beta_zero_gives_uniform_and_saturation_is_noted() {
        let v = scheme_values(
            Scheme::EffectiveNumber,
            &[5, 7_000_000],
            &[10, 10_000_000],
            10_000_000,
            &Options {
                beta: Some(0.0),
                ..Options::default()
            },
        );
        assert_eq!(v, [Some(1.0), Some(1.0)]);
        let input = Input {
            classes: vec!["a".into(), "b".into(), "c".into()],
            pixels: vec![1_000_000, 2_000_000, 7_000_000],
            image_pixels: vec![10_000_000; 3],
            valid: 10_000_000,
            unlabelled: 0,
            kind: LabelKind::SingleLabel,
        };
        let opts = Options {
            scheme: Scheme::EffectiveNumber,
            beta: Some(0.9999),
            ..Options::default()
        };
        let w = compute(&input, &opts);
        assert!(w.warnings.iter().any(|m| m.contains("raise `--beta`")));
        // The default, beta = 1 - 1/N, tells them apart: no note.
        let w = compute(&input, &Options { beta: None, ..opts });
        assert!(
            !w.warnings.iter().any(|m| m.contains("--beta")),
            "{:?}",
            w.warnings
        );
        close(
            w.scheme(Scheme::EffectiveNumber),
            &[1.750278, 0.918860, 0.330862],
            5e-6,
        );
    }

    #[test]
    fn huge_counts_stay_finite() {
        let input = Input {
            classes: vec!["a".into(), "b".into()],
            pixels: vec![1, u64::MAX - 1],
            image_pixels: vec![u64::MAX, u64::MAX],
            valid: u64::MAX,
            unlabelled: 0,
            kind: LabelKind::SingleLabel,
        };
        let w = compute(&input, &Options::default());
        assert!(w.pos_weight.iter().all(|v| v.is_finite()));
        for s in &w.schemes {
            assert!(
                s.values
                    .iter()
                    .all(|v| v.is_finite() && (*v as f32).is_finite()),
                "{s:?}"
            );
        }
    }

    #[test]
    fn options_out_of_range_are_rejected() {
        let bad = |o: Options| o.check().unwrap_err().to_string();
        let d = Options::default();
        assert!(d.check().is_ok());
        assert!(bad(Options { enet_c: 1.0, ..d }).contains("above 1"));
        assert!(
            bad(Options {
                beta: Some(1.0),
                ..d
            })
            .contains("0 <= beta < 1")
        );
        assert!(
            bad(Options {
                beta: Some(f64::NAN),
                ..d
            })
            .contains("--beta")
        );
        assert!(
            bad(Options {
                max_weight: Some(0.0),
                ..d
            })
            .contains("above 0")
        );
    }

    #[test]
    fn scheme_names_round_trip() {
        for s in Scheme::ALL {
            assert_eq!(s.name().parse::<Scheme>(), Ok(s));
        }
        assert!(
            "bogus"
                .parse::<Scheme>()
                .unwrap_err()
                .contains("expected one of")
        );
    }
}

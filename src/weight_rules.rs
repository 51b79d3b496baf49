//! The rules every loss weight follows, and `pos_weight` itself
//! (`(N - n_c) / n_c`, with the hard cases settled by [`rules`]). They sit
//! below `stats`, whose document previews pos_weight, and `weights`, which
//! writes it: one formula, one wording of each rule.

/// The value a weight takes when its formula has no finite answer.
pub const NEUTRAL: f64 = 1.0;

/// The documented rules for the hard cases, as written in `weights.json`.
pub mod rules {
    pub const NO_PIXELS: &str = "a class with no pixels gets 1 (neutral: its loss is \
        unweighted) in pos_weight and in every scheme instead of infinity, is left out of \
        medians and normalisations, and is reported as a warning";
    pub const EVERY_PIXEL: &str = "a class on every valid pixel gets pos_weight 1 instead of \
        0 (0 would silence the class's loss: there are no negatives to balance); reported as \
        a warning";
    pub const IGNORED: &str = "ignored and undeclared pixels count nowhere: N is the valid \
        pixels, S_c the valid pixels of the masks holding c";
    pub const BACKGROUND: &str = "single-label data with pixels that carry no class: \
        CrossEntropyLoss needs one more output, so `weight` has C+1 entries, the last for \
        those pixels (target index C); its S is taken as N (the counts do not record which \
        masks hold such pixels)";
    pub const MAX_WEIGHT: &str = "`--max-weight` caps pos_weight and every scheme last, \
        after normalisation (capped schemes no longer meet their normalisation)";

    /// The warning for the classes without pixels, one for them all (the
    /// stats and weights documents say it in the same words).
    pub fn no_pixels_warning(names: &[&str]) -> Option<String> {
        let list = names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        match names.len() {
            0 => None,
            1 => Some(format!(
                "class {list} has no pixels: its pos_weight and class weights are set to 1 \
                 (neutral) instead of infinity; check the label map, or drop the class"
            )),
            n => Some(format!(
                "{n} classes have no pixels ({list}): their pos_weight and class weights are \
                 set to 1 (neutral) instead of infinity; check the label map, or drop them"
            )),
        }
    }

    /// The footnote of a pos_weight marked `†` in a table.
    pub const MARKED: &str = "† pos_weight set to 1 by a rule: the class has no pixels (1 \
        instead of infinity) or covers every valid pixel (1 instead of 0, which would silence \
        its loss)";

    /// The warning for a class on every valid pixel.
    pub fn every_pixel_warning(name: &str) -> String {
        format!(
            "class `{name}` covers every valid pixel: its pos_weight is set to 1 instead of 0, \
             which would silence its loss"
        )
    }
}

/// Why a written pos_weight is not the formula's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PosWeightRule {
    /// (N - n_c) / n_c, as written.
    Formula,
    /// No pixels: 1 instead of infinity.
    NoPixels,
    /// Every valid pixel: 1 instead of 0.
    EveryPixel,
}

/// The pos_weight written for a class with `n` of `valid` pixels, and the
/// rule that gave it: every table shows this value, the one in the tensor.
pub fn written_pos_weight(n: u64, valid: u64) -> (f64, PosWeightRule) {
    match pos_weight(n, valid) {
        None => (NEUTRAL, PosWeightRule::NoPixels),
        Some(w) if w > 0.0 => (w, PosWeightRule::Formula),
        Some(_) => (NEUTRAL, PosWeightRule::EveryPixel),
    }
}

/// pos_weight_c = (N - n_c) / n_c; `None` when n_c = 0.
pub fn pos_weight(n: u64, valid: u64) -> Option<f64> {
    (n > 0).then(|| valid.saturating_sub(n) as f64 / n as f64)
}

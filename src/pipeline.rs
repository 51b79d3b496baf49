//! The pipeline schema: what `maskprep run pipelines/NAME.toml` reads, and
//! its validation (unknown tables and keys are errors naming their line).
//! `commands/run.rs` runs it: the stages a file names (stats, weights,
//! shards, score, report) in one pass over the masks, and `--partition I/N`
//! + `maskprep merge-run` spread it over a cluster.
//!
//! One pass: with a `[shards]` stage, the shard writer decodes each mask once
//! into its planes *and* its histogram, and the stats (hence the weights) are
//! the sum of its exact per-split counts; without it, one stats scan feeds
//! the weights. Partial runs write `OUT/parts/I-of-N/`; merging sums the
//! counts exactly, so stats and weights are byte-identical to a single run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::Context;
use serde::{Deserialize, Deserializer};

use crate::shards::{ByteSize, Dims, Format, SplitArg};
use crate::weights::{self, Scheme};

/// File names inside the output folder.
pub const STATS_FILE: &str = "stats.json";
pub const WEIGHTS_DIR: &str = "weights";
pub const SHARDS_DIR: &str = "shards";
pub const PARTS_DIR: &str = "parts";
pub const SCORE_FILE: &str = "score.json";
pub const REPORT_DIR: &str = "report";
pub const SCORE_REPORT_DIR: &str = "score-report";
pub const CHECK_FILE: &str = "check.json";
pub const CHECK_REPORT_DIR: &str = "check-report";
/// The pipeline file copied into each part folder.
pub const PIPELINE_FILE: &str = "pipeline.toml";

/// A pipeline file. Every table and key is checked: an unknown one is an
/// error naming its line.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    pub source: SourceStage,
    pub output: OutputStage,
    pub stats: Option<StatsStage>,
    pub weights: Option<WeightsStage>,
    pub shards: Option<ShardsStage>,
    pub score: Option<ScoreStage>,
    pub check: Option<CheckStage>,
    pub report: Option<ReportStage>,
}

/// `[check]`: dataset health (objects, leakage, missing classes), in a
/// pass of its own (objects need the pixels) into `OUT/check.json`; with
/// `[report]`, `OUT/check-report/`. Not run by `--partition` pieces:
/// duplicates need the whole dataset.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckStage {
    /// 8 (default) or 4.
    #[serde(default = "eight")]
    pub connectivity: u8,
    #[serde(default = "min_object")]
    pub min_object: u64,
    /// Hash the photos for duplicates (default true).
    #[serde(default = "yes")]
    pub photos: bool,
    /// Sampling weights file in the output folder (and `FILE.json`).
    pub sampling_weights: Option<String>,
    /// A leak or a missing class makes the run exit 1.
    #[serde(default)]
    pub strict: bool,
}

fn eight() -> u8 {
    8
}

fn min_object() -> u64 {
    crate::check::MIN_OBJECT
}

/// `[report]`: HTML reports of the stages run: `report/` for the stats
/// and weights, `score-report/` for the score stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportStage {}

/// `[score]`: predictions against truth masks, in a pass of its own (truth
/// and prediction decoded together, once each).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreStage {
    /// Truth masks (default: the source's masks).
    pub truth: Option<PathBuf>,
    pub pred: PathBuf,
    pub pred_kind: Option<crate::score::PredKind>,
    pub threshold: Option<f32>,
    #[serde(default)]
    pub argmax: bool,
    pub tensor: Option<String>,
    #[serde(default)]
    pub empty_as: crate::score::EmptyAs,
    /// `"cpu" | "gpu" | "auto"`; the CPU when omitted.
    #[serde(default = "cpu")]
    pub backend: crate::score::Backend,
    /// Per-image table (`.csv` or `.parquet`) in the output folder.
    pub per_image: Option<String>,
    #[serde(default)]
    pub strict: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceStage {
    /// Dataset root (or folder of masks), relative to the working directory.
    pub dir: PathBuf,
    /// Label map file or preset; detected when omitted.
    pub labels: Option<String>,
    /// Annotation exports: `"count"` (default) or `"ignore"` COCO crowd regions.
    #[serde(default)]
    pub crowd: Option<String>,
    /// Run-length CSV order: `"column"` (default) or `"row"`.
    #[serde(default)]
    pub rle_order: Option<String>,
    /// Run-length CSV image size when no photo gives it, `"WxH"`.
    #[serde(default)]
    pub image_size: Option<String>,
}

impl SourceStage {
    /// How annotation exports are read ([`Self::check_exports`] has
    /// refused bad values when the pipeline was loaded).
    pub fn exports(&self) -> crate::dataset::ExportOptions {
        self.check_exports().unwrap_or_default()
    }

    /// The export options, or what is wrong with them.
    pub fn check_exports(&self) -> Result<crate::dataset::ExportOptions, String> {
        use crate::annotations::{CrowdMode, Order};
        let mut o = crate::dataset::ExportOptions::default();
        match self.crowd.as_deref() {
            None | Some("count") => {}
            Some("ignore") => o.crowd = CrowdMode::Ignore,
            Some(v) => {
                return Err(format!(
                    "`source.crowd = \"{v}\"`: expected \"count\" or \"ignore\""
                ));
            }
        }
        match self.rle_order.as_deref() {
            None | Some("column") => {}
            Some("row") => o.rle_order = Order::RowMajor,
            Some(v) => {
                return Err(format!(
                    "`source.rle_order = \"{v}\"`: expected \"column\" or \"row\""
                ));
            }
        }
        if let Some(v) = &self.image_size {
            let bad =
                || format!("`source.image_size = \"{v}\"`: expected \"WxH\", e.g. \"768x768\"");
            let (w, h) = v.split_once('x').ok_or_else(bad)?;
            let (w, h) = (
                w.trim().parse::<u32>().map_err(|_| bad())?,
                h.trim().parse::<u32>().map_err(|_| bad())?,
            );
            if w == 0 || h == 0 {
                return Err(bad());
            }
            o.size = Some((w, h));
        }
        Ok(o)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputStage {
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsStage {
    #[serde(default = "default_rare")]
    pub rare_below: f64,
    /// Per-image table (`.csv` or `.parquet`) in the output folder.
    pub per_image: Option<String>,
    #[serde(default)]
    pub strict: bool,
}

fn default_rare() -> f64 {
    crate::stats::RARE_BELOW
}

fn cpu() -> crate::score::Backend {
    crate::score::Backend::Cpu
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightsStage {
    #[serde(default, deserialize_with = "opt_from_str")]
    pub scheme: Option<Scheme>,
    pub enet_c: Option<f64>,
    pub beta: Option<f64>,
    pub max_weight: Option<f64>,
    #[serde(default)]
    pub npy: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardsStage {
    #[serde(default, deserialize_with = "opt_from_str")]
    pub format: Option<Format>,
    #[serde(default, deserialize_with = "opt_from_str")]
    pub shard_size: Option<ByteSize>,
    pub samples_per_shard: Option<usize>,
    #[serde(default, deserialize_with = "opt_from_str")]
    pub size: Option<Dims>,
    #[serde(default, deserialize_with = "opt_from_str")]
    pub tile: Option<Dims>,
    /// Held-out splits: `{ val = 0.1 }`; `train` gets the rest.
    #[serde(default)]
    pub split: BTreeMap<String, f64>,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "yes")]
    pub stratify: bool,
    #[serde(default)]
    pub shuffle: bool,
    #[serde(default)]
    pub strict: bool,
}

fn yes() -> bool {
    true
}

/// Reads a string field through the type's `FromStr` (its message names
/// what was expected; toml adds the line).
fn opt_from_str<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: std::fmt::Display,
{
    let s = String::deserialize(d)?;
    T::from_str(&s).map(Some).map_err(serde::de::Error::custom)
}

/// Parses and checks a pipeline file; nothing is run or written.
pub fn load(path: &Path) -> anyhow::Result<Pipeline> {
    let text = crate::store::read_to_string(path)
        .with_context(|| format!("cannot read pipeline `{}`", path.display()))?;
    let p: Pipeline = toml::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "invalid pipeline `{}`: {}",
            path.display(),
            e.to_string().trim_end()
        )
    })?;
    let bad = |msg: String| anyhow::anyhow!("invalid pipeline `{}`: {msg}", path.display());
    if p.stats.is_none()
        && p.weights.is_none()
        && p.shards.is_none()
        && p.score.is_none()
        && p.check.is_none()
    {
        return Err(bad(
            "no stage; expected at least one of [stats], [weights], [shards], [score], \
             [check] (and [report] to render them)"
                .into(),
        ));
    }
    if let Some(c) = &p.check
        && crate::check::Connectivity::from_number(c.connectivity).is_none()
    {
        return Err(bad(format!(
            "[check] connectivity = {}: expected 4 or 8",
            c.connectivity
        )));
    }
    p.source.check_exports().map_err(&bad)?;
    if let Some(sc) = &p.score
        && sc.threshold.is_some_and(|t| !t.is_finite())
    {
        return Err(bad("[score] threshold: expected a finite number".into()));
    }
    if let Some(s) = &p.stats
        && !(0.0..=1.0).contains(&s.rare_below)
    {
        return Err(bad(format!(
            "[stats] rare_below = {}: expected a fraction in 0..=1",
            s.rare_below
        )));
    }
    if p.shards.is_some() && p.stats.as_ref().is_some_and(|s| s.per_image.is_some()) {
        return Err(bad(
            "[stats] per_image needs a stats scan, but with [shards] the counts come from the \
             shard writer; expected no per_image with [shards] (use `maskprep stats --per-image`)"
                .into(),
        ));
    }
    if let Some(sh) = &p.shards {
        for (name, f) in &sh.split {
            SplitArg::from_str(&format!("{name}={f}"))
                .map_err(|e| bad(format!("[shards] split: {e}")))?;
        }
        if sh.size.is_some() && sh.tile.is_some() {
            return Err(bad(
                "[shards] has both `size` and `tile`; expected one".into()
            ));
        }
    }
    if let Some(w) = &p.weights {
        w.options()
            .check()
            .map_err(|e| bad(format!("[weights]: {e}")))?;
    }
    Ok(p)
}

impl WeightsStage {
    /// The weight options this stage asks for (defaults where unset).
    pub fn options(&self) -> weights::Options {
        let d = weights::Options::default();
        weights::Options {
            scheme: self.scheme.unwrap_or(d.scheme),
            enet_c: self.enet_c.unwrap_or(d.enet_c),
            beta: self.beta.or(d.beta),
            max_weight: self.max_weight.or(d.max_weight),
        }
    }
}

impl Pipeline {
    /// The rare-class threshold: `[stats] rare_below`, else the default.
    pub fn rare_below(&self) -> f64 {
        self.stats.as_ref().map_or(default_rare(), |s| s.rare_below)
    }
}

//! The flags: clap's definitions of every command and its arguments, and
//! the stage enums as flag values (one enum each, shared with the
//! pipeline schema and the Python API; their help text lives here).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use super::partition::PartitionArg;
use crate::annotations::{CrowdMode, Order};
use crate::dataset::ExportOptions;
use crate::score::{Backend, EmptyAs, PredKind};
use crate::stats::RARE_BELOW;
use crate::weights::Scheme;

/// Honest statistics for segmentation masks: what the labels really are,
/// which loss fits, and how rare each class is.
#[derive(Debug, Parser)]
#[command(name = "maskprep", version, about, long_about = None)]
#[command(after_help = "\
Examples:
  maskprep stats fixtures/plates                 table on stdout
  maskprep stats data/train --json -o stats.json machine output, written atomically
  maskprep stats data/train --per-image rows.parquet
  maskprep labels data/train -o labels.toml      detect the label map, to edit
  maskprep stats data/train --partition 3/16 --json -o part3.json
  maskprep merge part*.json -o stats.json        exact sum of the pieces

Exit codes: 0 every mask was read; 1 done, but some files were skipped
(listed in the output and on stderr); 2 the job could not be done.")]
pub struct Cli {
    /// Worker threads (default: one per core; RAYON_NUM_THREADS also works).
    #[arg(short = 'j', long, global = true, value_name = "N")]
    pub threads: Option<usize>,
    /// Objects fetched at once from an object store (`s3://`, `gs://`,
    /// `az://` sources): a store-backed command runs this many workers
    /// [default: 16].
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub fetch: Option<u64>,
    /// No progress bar or explanations on stderr (errors still shown).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Count what is in the masks: per-class pixels, frequency, images,
    /// pos_weight, labels per pixel, co-occurrence, undeclared colours, and
    /// a verdict (single- or multi-label, and the loss that fits).
    Stats(StatsArgs),
    /// Detect the label map of a dataset and write it as TOML, to edit and
    /// pass back with `--labels`.
    Labels(LabelsArgs),
    /// Sum partial stats (from `--partition` runs, or other splits) exactly.
    Merge(MergeArgs),
    /// Loss weights to load in PyTorch: pos_weight for BCEWithLogitsLoss
    /// (shaped [C,1,1]) and class weights for CrossEntropyLoss under every
    /// scheme, with advice on which loss fits.
    #[command(after_long_help = WEIGHTS_HELP)]
    Weights(WeightsArgs),
    /// Write images and multi-hot masks as training shards (WebDataset tar
    /// or safetensors) with a manifest; `shards verify DIR` re-reads them.
    Shards(ShardsArgs),
    /// A self-contained HTML report with PNG plots: class imbalance, labels
    /// per pixel, co-occurrence, loss weights (from a dataset or a stats
    /// file), or per-class and per-image scores (from a score file).
    Report(ReportArgs),
    /// Score predictions against truth masks: per-class TP/FP/FN/TN, IoU,
    /// Dice, precision, recall and accuracy, under named reductions.
    ///
    /// Predictions pair with truth masks by relative path without extension.
    /// Ignored and undeclared truth pixels count nowhere. A metric whose
    /// ratio is 0/0 (IoU of a class absent from truth and prediction) is
    /// undefined: shown as such, null in JSON, left out of means, and
    /// counted (`--empty-as` changes this).
    ///
    /// Accuracy counts true negatives: (TP+TN)/(TP+FP+FN+TN), so an absent,
    /// unpredicted class scores 1.0 accuracy and undefined IoU.
    #[command(after_help = "\
Examples:
  maskprep score --truth data/val/masks --pred runs/42/pred_png
  maskprep score --truth data/val/masks --pred runs/42/logits        .npy/.safetensors [C,H,W]
  maskprep score --truth data/val --pred runs/42/probs --pred-kind probs
  maskprep score ... --json -o score.json --per-image score_per_image.csv

Reductions: macro (dataset-level: counts summed over images, then divided;
mean over classes: mmsegmentation), micro (pooled over classes), per-image
mean (mean over classes per image, then over images: MONAI). Overall pixel
accuracy is sum TP / sum (TP+FN) (mmsegmentation aAcc).

Exit codes: 0 every truth mask was paired and scored; 1 done, but some
predictions were missing, extra, of another size or unreadable (listed);
2 the job could not be done.")]
    Score(ScoreArgs),
    /// Dataset health before training: objects per class (connected
    /// components, sizes, holes, small objects), duplicate masks and photos
    /// within and across splits (leakage), classes missing from a split,
    /// per-split class shares, and per-image sampling weights.
    #[command(after_long_help = CHECK_HELP)]
    Check(CheckArgs),
    /// Run a declared pipeline (`pipelines/NAME.toml`): stats, weights and
    /// shards in one pass over the masks; `--partition I/N` runs one piece.
    Run(RunArgs),
    /// Combine the pieces of `run --partition` into the outputs of one run.
    MergeRun(MergeRunArgs),
}

#[derive(Debug, Args)]
#[command(after_help = "\
Pipeline file (TOML; unknown keys are errors naming their line):
  [source]   dir = \"fixtures/plates\"   labels = \"...\" (optional)
  [output]   dir = \"out/plates\"
  [stats]    rare_below, per_image = \"per_image.csv\", strict
  [weights]  scheme, enet_c, beta, max_weight, npy
  [shards]   format, shard_size, samples_per_shard, size, tile,
             split = { val = 0.1 }, seed, stratify, shuffle, strict
  [score]    truth, pred, pred_kind, threshold, argmax, tensor, empty_as,
             backend, per_image, strict
  [check]    connectivity, min_object, photos, sampling_weights, strict
  [report]   (no keys) HTML reports in OUT/report/, OUT/score-report/
             and OUT/check-report/
Paths are relative to the working directory.

Cluster runs: `--partition I/N` writes OUT/parts/I-of-N/; in a Slurm job
array or a Kubernetes Indexed Job `--partition auto` (or `auto/N`) reads
SLURM_ARRAY_TASK_ID / JOB_COMPLETION_INDEX. Then `maskprep merge-run
OUT/parts -o OUT`.")]
pub struct RunArgs {
    /// The pipeline file.
    #[arg(value_name = "PIPELINE.toml")]
    pub pipeline: PathBuf,
    /// Run piece I of N (1-based), or `auto` / `auto/N` from the scheduler's
    /// environment.
    #[arg(long, value_name = "I/N")]
    pub partition: Option<PartitionArg>,
    /// Output folder, instead of the pipeline's `[output] dir`.
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MergeRunArgs {
    /// The `parts/` folder that `run --partition` wrote.
    #[arg(value_name = "PARTS")]
    pub parts: PathBuf,
    /// Output folder (usually the pipeline's output folder).
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
    /// The pipeline (default: the copy each part keeps).
    #[arg(long, value_name = "PIPELINE.toml")]
    pub pipeline: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct Source {
    /// A folder of PNG masks, or a dataset root holding `masks/` (and `images/`).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Label map: a maskprep `.toml`, a dataset's `labelmap.txt`,
    /// `label_colors.txt` or `dataset_meta.json`, or a preset: `cityscapes`
    /// (labelIds), `cityscapes-trainids`, `voc`. Detected when omitted.
    #[arg(short, long, value_name = "MAP")]
    pub labels: Option<String>,
    #[command(flatten)]
    pub exports: ExportArgs,
}

/// How annotation exports (COCO JSON, run-length CSV) are read; PNG masks
/// ignore these.
#[derive(Debug, Args)]
#[command(next_help_heading = "Annotation exports (COCO JSON, run-length CSV)")]
pub struct ExportArgs {
    /// COCO crowd regions (`iscrowd: 1`): `count` as their category, as
    /// pycocotools' annToMask does, or `ignore` their pixels (out of N), as
    /// detectors train.
    #[arg(long, value_enum, value_name = "HOW", default_value = "count")]
    pub crowd: CrowdMode,
    /// Run-length CSV pixel order: `column` (Kaggle's convention: down each
    /// column, 1-based) or `row` (across each row).
    #[arg(long, value_enum, value_name = "ORDER", default_value = "column")]
    pub rle_order: Order,
    /// Image size for run-length CSV rows whose photo is not found beside
    /// the CSV (`train_images/`, `train/`, `images/`), e.g. `768x768`.
    #[arg(long, value_name = "WxH", value_parser = parse_image_size)]
    pub image_size: Option<(u32, u32)>,
}

impl From<&ExportArgs> for ExportOptions {
    fn from(a: &ExportArgs) -> Self {
        Self {
            crowd: a.crowd,
            rle_order: a.rle_order,
            size: a.image_size,
        }
    }
}

fn parse_image_size(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("`{s}` is not an image size; expected WxH, e.g. 768x768");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let w: u32 = w.trim().parse().map_err(|_| bad())?;
    let h: u32 = h.trim().parse().map_err(|_| bad())?;
    if w == 0 || h == 0 || u64::from(w) * u64::from(h) > crate::decode::MAX_PIXELS {
        return Err(bad());
    }
    Ok((w, h))
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub source: Source,
    /// Print JSON instead of the table (also chosen by `-o *.json`).
    #[arg(long)]
    pub json: bool,
    /// Write to this file (atomically) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also write one row per mask, a column per class count (`.csv` or `.parquet`).
    #[arg(long, value_name = "FILE")]
    pub per_image: Option<PathBuf>,
    /// Flag classes below this fraction of valid pixels as rare.
    #[arg(long, value_name = "FRACTION", default_value_t = RARE_BELOW)]
    pub rare_below: f64,
    /// Process only piece I of N (1-based; every N-th file in sorted order),
    /// for cluster array jobs; combine the pieces with `maskprep merge`.
    #[arg(long, value_name = "I/N")]
    pub partition: Option<PartitionArg>,
    /// Stop at the first unreadable mask (exit code 2) instead of skipping it.
    #[arg(long)]
    pub strict: bool,
    /// Also write the HTML report (plots, tables, weights) into this folder,
    /// from the same scan.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  maskprep check data/                           splits from train/ val/ test/ folders
  maskprep check VOC2012/ --json -o check.json   splits from ImageSets/Segmentation/*.txt
  maskprep check --split train=data/train --split val=data/val
  maskprep check data/ --min-object 25 --connectivity 4
  maskprep check data/ --sampling-weights sampling.safetensors

Exit codes: 0 done (leaks and missing classes are warnings); 1 some files
were skipped, or `--strict` found a leak or a missing class; 2 the job
could not be done.")]
pub struct CheckArgs {
    /// The dataset root (its splits are found from the layout); omit it
    /// with `--split`.
    #[arg(
        value_name = "DIR",
        required_unless_present = "split",
        conflicts_with = "split"
    )]
    pub dir: Option<PathBuf>,
    /// A split and its folder, `NAME=DIR` (repeat for each split).
    #[arg(long, value_name = "NAME=DIR", value_parser = parse_split)]
    pub split: Vec<(String, PathBuf)>,
    /// Label map (file or preset, as for `stats`); detected when omitted.
    #[arg(short, long, value_name = "MAP")]
    pub labels: Option<String>,
    #[command(flatten)]
    pub exports: ExportArgs,
    /// Pixels of an object that touch: 8 (edges and corners) or 4 (edges).
    #[arg(long, value_name = "4|8", default_value_t = 8, value_parser = clap::value_parser!(u8).range(4..=8))]
    pub connectivity: u8,
    /// Objects under this many pixels are small: counted, and their images listed.
    #[arg(long, value_name = "N", default_value_t = crate::check::MIN_OBJECT)]
    pub min_object: u64,
    /// Images listed per class for small objects, worst first.
    #[arg(long, value_name = "N", default_value_t = crate::check::LISTED)]
    pub list: usize,
    /// Do not decode the photos (no duplicate-photo check; faster).
    #[arg(long)]
    pub no_photos: bool,
    /// Write per-image weights for `WeightedRandomSampler` here
    /// (safetensors, float32 [N]) and beside it `FILE.json` (file list,
    /// weights, formula).
    #[arg(long, value_name = "FILE")]
    pub sampling_weights: Option<PathBuf>,
    /// Print JSON instead of the table (also chosen by `-o *.json`).
    #[arg(long)]
    pub json: bool,
    /// Write to this file (atomically) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Exit 1 when a leak (a duplicate across splits) or a class missing
    /// from a split is found.
    #[arg(long)]
    pub strict: bool,
    /// Also write the HTML report (object sizes, splits, duplicates) into
    /// this folder.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
}

/// What `check` computes (`check --help`).
const CHECK_HELP: &str = "\
Objects: connected components of each class's plane, 8-connected unless
`--connectivity 4`. Holes: components of the pixels not carrying the class
under the other connectivity (4 for 8, 8 for 4) that touch no border;
`holed` counts objects around at least one. Sizes: exact min and max;
quantiles are the object at rank ceil(q*n) (numpy `inverted_cdf`), exact
below 4096 pixels, within 1/128 below above.

Duplicates: masks with equal size and equal classes on every pixel
(xxh3-128 of the decoded planes; masks with one label set on every pixel,
empty or all background, are not compared); photos with equal size and
equal decoded 8-bit RGB pixels. A lossless re-encoding is a duplicate; a
JPEG (even quality 100) of a PNG is not. A duplicate across splits is a
leak.

Sampling weights (training split `train*`, else all masks): with M masks
and n_c of them holding class c, w_i = M / min over classes c of mask i of
n_c (the rarest class it holds); 1 for a mask with no class pixel.";

fn parse_split(s: &str) -> Result<(String, PathBuf), String> {
    let (name, dir) = s
        .split_once('=')
        .filter(|(n, d)| !n.is_empty() && !d.is_empty())
        .ok_or_else(|| format!("`{s}` is not a split; expected NAME=DIR, e.g. val=data/val"))?;
    if name.contains(['/', '\\']) {
        return Err(format!(
            "split name `{name}` holds a slash; expected a plain name"
        ));
    }
    Ok((name.to_string(), PathBuf::from(dir)))
}

#[derive(Debug, Args)]
pub struct LabelsArgs {
    #[command(flatten)]
    pub source: Source,
    /// Write the TOML here (atomically) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Stats JSON files written by `maskprep stats --json`.
    #[arg(required = true, value_name = "STATS.json")]
    pub inputs: Vec<PathBuf>,
    /// Print JSON instead of the table (also chosen by `-o *.json`).
    #[arg(long)]
    pub json: bool,
    /// Write to this file (atomically) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Formulas, normalisations and the rules for hard cases (`weights --help`).
const WEIGHTS_HELP: &str = "\
With n_c the pixels of class c, N the valid pixels (ignored and undeclared
pixels count nowhere), f_c = n_c / N, S_c the valid pixels of the masks
holding c, K the classes the weights cover:
  pos_weight         (N - n_c) / n_c, float32 [C,1,1]
  balanced           T / (K n_c), T = sum of n_c: scikit-learn's
                     compute_class_weight('balanced'); T = N for single-label
                     data. No other normalisation (sum n_c w_c = T)
  inverse-frequency  1 / f_c, raw
  inverse-sqrt       1 / sqrt(f_c), raw
  median-frequency   median(n_c/S_c) / (n_c/S_c): the median class gets 1
  enet               1 / ln(c + f_c), raw (c = --enet-c)
  effective-number   (1 - beta) / (1 - beta^n_c), scaled to sum to the number
                     of classes with pixels. beta = 1 - 1/N unless --beta sets
                     it: Cui et al.'s (N - 1) / N, counting pixels as samples,
                     so 1 - beta^n_c ~ 1 - exp(-f_c) (rare classes ~ 1/f_c,
                     common ones compressed); a fixed beta such as 0.9999
                     gives every class above ~70k pixels the same weight

Hard cases:
  a class with no pixels gets 1 (neutral) everywhere, never inf or NaN,
    is left out of medians and normalisations, and is warned about
  a class on every valid pixel gets pos_weight 1 (0 would silence it)
  single-label masks with pixels that carry no class: `weight` gets one
    more entry, last, for those pixels (target index C)
  --max-weight caps every value last, after normalisation

Writes with -o DIR: weights.json, weights.safetensors (pos_weight [C,1,1],
weight [K], class names in the metadata), README.md (a PyTorch snippet),
and with --npy pos_weight.npy and weight.npy.

Examples:
  maskprep weights data/train -o weights/
  maskprep weights data/train --scheme median-frequency --json
  maskprep weights --from stats.json -o weights/";

#[derive(Debug, Args)]
pub struct WeightsArgs {
    /// A folder of PNG masks, or a dataset root holding `masks/`.
    #[arg(value_name = "DIR", required_unless_present = "from")]
    pub dir: Option<PathBuf>,
    /// Take the counts from a stats JSON (`maskprep stats --json` or
    /// `maskprep merge`) instead of scanning DIR.
    #[arg(long, value_name = "STATS.json", conflicts_with_all = ["dir", "labels", "strict"])]
    pub from: Option<PathBuf>,
    /// Label map, as for `maskprep stats`. Detected when omitted.
    #[arg(short, long, value_name = "MAP")]
    pub labels: Option<String>,
    #[command(flatten)]
    pub exports: ExportArgs,
    /// Write weights.json, weights.safetensors and README.md in this folder
    /// (atomically).
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Print weights.json on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// The scheme written as `weight` (every scheme is in weights.json).
    #[arg(long, value_enum, default_value = "balanced")]
    pub scheme: Scheme,
    /// c of ENet weighting, 1 / ln(c + f_c); above 1.
    #[arg(long, value_name = "C", default_value_t = crate::weights::ENET_C)]
    pub enet_c: f64,
    /// beta of effective-number weighting, 0 <= beta < 1. Default: 1 - 1/N,
    /// N the valid pixels (Cui et al.'s (N - 1) / N with pixels as samples).
    /// A fixed beta saturates: classes above about 7/(1-beta) pixels get
    /// about the same weight.
    #[arg(long, value_name = "BETA")]
    pub beta: Option<f64>,
    /// Cap every weight (pos_weight and every scheme) at this value.
    #[arg(long, value_name = "W")]
    pub max_weight: Option<f64>,
    /// Also write pos_weight.npy and weight.npy (needs -o).
    #[arg(long, requires = "output")]
    pub npy: bool,
    /// Stop at the first unreadable mask (exit code 2) instead of skipping it.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
#[command(after_help = "\
Examples:
  maskprep shards data/train -o shards/ --format webdataset --shard-size 256MB
  maskprep shards data/train -o shards/ --format safetensors --size 512x512 --samples-per-shard 256
  maskprep shards data/ -o shards/ --split val=0.1 --seed 7     train/ and val/ shard sets
  maskprep shards verify shards/                                 re-read and check everything

Rerunning the same command after an interruption keeps the finished shards
and rewrites the rest.")]
pub struct ShardsArgs {
    #[command(subcommand)]
    pub verify: Option<ShardsCmd>,
    /// A dataset root holding `masks/` and `images/` (paired by name).
    #[arg(value_name = "DIR", required = true)]
    pub dir: Option<PathBuf>,
    /// Label map (as for `stats`); detected when omitted.
    #[arg(short, long, value_name = "MAP")]
    pub labels: Option<String>,
    #[command(flatten)]
    pub exports: ExportArgs,
    /// Output folder: one subfolder of shards per split, and `index.json`.
    #[arg(short, long, value_name = "OUT", required = true)]
    pub output: Option<PathBuf>,
    /// `webdataset` (tar: image bytes as they are, mask `.npy`, `.json`) or
    /// `safetensors` (`images` [N,3,H,W], `masks` [N,C,H,W], uint8).
    #[arg(long, value_name = "FORMAT", default_value = "webdataset")]
    pub format: crate::shards::Format,
    /// Close a shard before it passes this size (e.g. 256MB, 1GiB);
    /// 256MB when neither limit is given.
    #[arg(long, value_name = "SIZE")]
    pub shard_size: Option<crate::shards::ByteSize>,
    /// Close a shard at this many samples.
    #[arg(long, value_name = "N")]
    pub samples_per_shard: Option<usize>,
    /// safetensors: resize to WxH (images bilinear, masks nearest).
    #[arg(long, value_name = "WxH", conflicts_with = "tile")]
    pub size: Option<crate::shards::Dims>,
    /// safetensors: cut into WxH tiles (the last row and column are shifted
    /// to end at the edge).
    #[arg(long, value_name = "WxH")]
    pub tile: Option<crate::shards::Dims>,
    /// Hold out a split, e.g. `val=0.1` (repeat or comma-separate for more);
    /// `train` gets the rest.
    #[arg(long, value_name = "NAME=FRACTION", value_delimiter = ',')]
    pub split: Vec<crate::shards::SplitArg>,
    /// Seed of the split (and of `--shuffle`).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
    /// Keep every class in every split by iterative stratification on
    /// per-image class presence (the default).
    #[arg(long, overrides_with = "no_stratify")]
    pub stratify: bool,
    /// Draw the split at random instead (each mask is then decoded once).
    #[arg(long, overrides_with = "stratify")]
    pub no_stratify: bool,
    /// Write each split's samples in seeded random order (default: by name).
    #[arg(long)]
    pub shuffle: bool,
    /// Stop at the first unusable pair (exit code 2) instead of skipping it.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Subcommand)]
pub enum ShardsCmd {
    /// Re-read every shard and check sizes, checksums, sample counts and
    /// contents against `index.json`; exit 1 on any difference.
    Verify {
        /// A folder written by `maskprep shards`.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

impl clap::ValueEnum for PredKind {
    fn value_variants<'a>() -> &'a [Self] {
        &[Self::Mask, Self::Logits, Self::Probs]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        let (name, help) = match self {
            Self::Mask => ("mask", "PNG masks in the truth's label map"),
            Self::Logits => (
                "logits",
                "Float scores; a class is positive where score > 0",
            ),
            Self::Probs => (
                "probs",
                "Float probabilities; a class is positive where score > 0.5",
            ),
        };
        Some(clap::builder::PossibleValue::new(name).help(help))
    }
}

impl clap::ValueEnum for EmptyAs {
    fn value_variants<'a>() -> &'a [Self] {
        &[Self::Skip, Self::One, Self::Zero]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        let (name, help) = match self {
            Self::Skip => ("skip", "Undefined (null), left out of means, and counted"),
            Self::One => ("one", "Counted as 1 (a perfect score) in means"),
            Self::Zero => ("zero", "Counted as 0 in means"),
        };
        Some(clap::builder::PossibleValue::new(name).help(help))
    }
}

impl clap::ValueEnum for Backend {
    fn value_variants<'a>() -> &'a [Self] {
        &[Self::Cpu, Self::Gpu, Self::Auto]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        let (name, help) = match self {
            Self::Cpu => ("cpu", "The CPU reference"),
            Self::Gpu => (
                "gpu",
                "The GPU, through burn's wgpu backend (builds with `--features gpu`)",
            ),
            Self::Auto => (
                "auto",
                "Float predictions: the GPU when this build has it and an adapter is found, \
                 else the CPU (said on stderr). Mask predictions: the CPU",
            ),
        };
        Some(clap::builder::PossibleValue::new(name).help(help))
    }
}

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Truth masks: a folder of PNG masks, or a dataset root holding `masks/`.
    #[arg(long, value_name = "DIR")]
    pub truth: PathBuf,
    /// Predictions: PNG masks in the truth's label map, or float arrays
    /// [C,H,W] per image (`.npy` or `.safetensors`, float32 or float16).
    #[arg(long, value_name = "DIR")]
    pub pred: PathBuf,
    /// Label map, as for `stats` (a `.toml`, a dataset's map file or a
    /// preset). Detected from the truth when omitted.
    #[arg(short, long, value_name = "MAP")]
    pub labels: Option<String>,
    #[command(flatten)]
    pub exports: ExportArgs,
    /// What the predictions hold [default: mask for PNG, logits for arrays].
    #[arg(long, value_enum, value_name = "KIND")]
    pub pred_kind: Option<PredKind>,
    /// Float predictions: a class is positive where score > T (compared in
    /// float32; NaN is negative) [default: 0 for logits, 0.5 for probs].
    #[arg(long, value_name = "T", conflicts_with = "argmax")]
    pub threshold: Option<f32>,
    /// Single-label data: each pixel predicts the one class with the largest
    /// score (ties to the lowest class; NaN counts as largest, as numpy).
    #[arg(long)]
    pub argmax: bool,
    /// The tensor to score in `.safetensors` files holding several
    /// [default: the only one, else `logits` or `probs` by kind].
    #[arg(long, value_name = "NAME")]
    pub tensor: Option<String>,
    /// What a 0/0 metric becomes.
    #[arg(long, value_enum, value_name = "RULE", default_value = "skip")]
    pub empty_as: EmptyAs,
    /// Which implementation counts: float predictions go to the GPU with
    /// `gpu`, or with `auto` when a hardware GPU adapter is found (a
    /// software one such as Mesa's llvmpipe is slower than the CPU, so
    /// `auto` skips it and says so); mask predictions go
    /// to the GPU (as planes) only with `gpu`, else to the CPU's joint
    /// histograms. Both count exactly the same.
    #[arg(long, value_enum, value_name = "BACKEND", default_value = "auto")]
    pub backend: Backend,
    /// GPU: images per device batch [default: as many of one size as fit a
    /// 512 MiB budget]. Images over the budget go in bands of rows; batches
    /// shrink if the device runs out of memory.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub gpu_batch: Option<u32>,
    /// GPU: list every adapter found, not only the one used.
    #[arg(long)]
    pub verbose: bool,
    /// Print JSON instead of the table (also chosen by `-o *.json`).
    #[arg(long)]
    pub json: bool,
    /// Write to this file (atomically) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also write one row per image: mIoU, IoU per class and exact counts
    /// (`.csv` or `.parquet`; sort it to find the worst images).
    #[arg(long, value_name = "FILE")]
    pub per_image: Option<PathBuf>,
    /// Stop at the first pair that cannot be scored (exit code 2) instead
    /// of skipping it.
    #[arg(long)]
    pub strict: bool,
    /// Score one piece of the pairs (I/N, or `auto` in a Slurm array or a
    /// Kubernetes Indexed Job); `maskprep merge` sums the pieces' JSON into
    /// the whole run's, exactly.
    #[arg(long, value_name = "I/N")]
    pub partition: Option<PartitionArg>,
    /// Sweep thresholds (float predictions): count TP/FP/FN/TN of every
    /// class at 101 probability levels 0.00..1.00 (their logits for logits)
    /// in the same pass, and pick per class the threshold maximising IoU
    /// and the one maximising F1/Dice. Writes `NAME.thresholds.json` and
    /// `NAME.thresholds.safetensors` (float32 `[C]` and `[C,1,1]`) beside
    /// `-o NAME.json`, to load at inference.
    #[arg(long)]
    pub sweep: bool,
    /// The sweep's probability levels, comma-separated (implies `--sweep`).
    #[arg(
        long,
        value_name = "P,P,...",
        value_delimiter = ',',
        conflicts_with = "sweep_bins"
    )]
    pub thresholds: Vec<f64>,
    /// Sweep N+1 uniform levels 0..1 instead of 101 (implies `--sweep`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=32766))]
    pub sweep_bins: Option<u32>,
    /// Folder for `thresholds.json` and `thresholds.safetensors` (default:
    /// `NAME.thresholds.*` beside `-o NAME.json`; the working folder when
    /// the output is stdout, a FIFO or a device).
    #[arg(long, value_name = "DIR")]
    pub sweep_out: Option<PathBuf>,
    /// Also write the HTML report (per-class and per-image plots, the worst
    /// images side by side) into this folder, from the same pass.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["dir", "stats", "score"])))]
#[command(after_help = "\
Examples:
  maskprep report data/train -o reports/train/           imbalance report (scans the masks)
  maskprep report --stats stats.json -o reports/train/   from saved stats, no re-scan
  maskprep report --score score.json -o reports/run42/   per-class and per-image scores
  maskprep stats data/train --json -o stats.json --report reports/train/
  maskprep score --truth data/val --pred runs/42/pred --json -o score.json --report reports/run42/

The folder holds index.html, its PNG plots and the JSON behind them; it works
offline. It is replaced whole on every run (written beside it, then renamed).")]
pub struct ReportArgs {
    /// A dataset to scan (a folder of PNG masks, or a root holding `masks/`).
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Read the counts from a stats JSON (`maskprep stats --json`) instead of
    /// scanning; the per-image plot needs a scan and is left out.
    #[arg(long, value_name = "STATS.json", conflicts_with_all = ["dir", "score", "labels", "strict"])]
    pub stats: Option<PathBuf>,
    /// Report a score JSON (`maskprep score --json`); the per-image plot and
    /// the worst images come from scoring the files it names again (CPU).
    #[arg(long, value_name = "SCORE.json", conflicts_with_all = ["dir", "labels", "strict"])]
    pub score: Option<PathBuf>,
    /// Label map for DIR, as for `maskprep stats`. Detected when omitted.
    #[arg(short, long, value_name = "MAP")]
    pub labels: Option<String>,
    #[command(flatten)]
    pub exports: ExportArgs,
    /// The report folder (index.html and PNG files).
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
    /// Flag classes below this fraction of valid pixels as rare (DIR;
    /// default 0.01, as for `stats`; a stats file keeps its own).
    #[arg(long, value_name = "FRACTION", conflicts_with_all = ["stats", "score"])]
    pub rare_below: Option<f64>,
    /// How many of the lowest-scoring images to show with thumbnails.
    #[arg(long, value_name = "N", default_value_t = crate::score::replay::WORST)]
    pub worst: usize,
    /// Stop at the first unreadable mask (exit code 2) instead of skipping it.
    #[arg(long)]
    pub strict: bool,
}

impl clap::ValueEnum for Scheme {
    fn value_variants<'a>() -> &'a [Self] {
        &Self::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        let help = match self {
            Self::Balanced => "scikit-learn's: T / (K n_c), sum of n_c w_c = T",
            Self::InverseFrequency => "1 / f_c, raw",
            Self::InverseSqrt => "1 / sqrt(f_c), raw",
            Self::MedianFrequency => "median(n_c/S_c) / (n_c/S_c): the median class gets 1",
            Self::Enet => "1 / ln(c + f_c), raw",
            Self::EffectiveNumber => {
                "(1 - beta) / (1 - beta^n_c), scaled to sum to the classes with pixels"
            }
        };
        Some(clap::builder::PossibleValue::new(self.name()).help(help))
    }
}

impl clap::ValueEnum for CrowdMode {
    fn value_variants<'a>() -> &'a [Self] {
        &[Self::AsCategory, Self::Ignore]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(match self {
            Self::AsCategory => "count",
            Self::Ignore => "ignore",
        }))
    }
}

impl clap::ValueEnum for Order {
    fn value_variants<'a>() -> &'a [Self] {
        &[Self::ColumnMajor, Self::RowMajor]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(match self {
            Self::ColumnMajor => "column",
            Self::RowMajor => "row",
        }))
    }
}

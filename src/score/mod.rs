//! Score stage: truth masks + predictions → per-class TP/FP/FN/TN counts
//! → IoU, Dice, precision, recall and accuracy under named reductions.
//!
//! Counts are exact integers (`Default + AddAssign`), so images, workers
//! and backends sum them in any order; every float is derived afterwards.
//! Mask predictions are counted from a joint histogram `(truth code, pred
//! code) -> pixels` ([`cpu::count_joint`]); float predictions go through
//! the [`Scorer`] seam, whose CPU implementation ([`cpu::CpuScorer`]) is the
//! reference that any other backend must match count for count. A device
//! scorer (`gpu.rs`, cargo feature `gpu`) also takes mask predictions,
//! expanded to planes, when `--backend gpu` asks for it by name.

pub mod collect;
pub mod cpu;
pub mod doc;
#[cfg(feature = "gpu")]
mod gpu;
pub mod merge;
pub mod metrics;
pub mod pairs;
pub mod per_image;
pub mod replay;
pub mod scan;
pub mod sweep;

use std::ops::AddAssign;

use serde::{Deserialize, Serialize};

use crate::decode::DecodeError;
use crate::tensors::TensorError;

/// Confusion counts of one class over some pixels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassCounts {
    pub tp: u64,
    pub fp: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
    pub tn: u64,
}

impl ClassCounts {
    /// Counts from TP, FP, FN and the valid pixels they were taken over.
    pub fn from_valid(tp: u64, fp: u64, fn_: u64, valid: u64) -> Self {
        Self {
            tp,
            fp,
            fn_,
            tn: valid - tp - fp - fn_,
        }
    }
}

impl AddAssign<&ClassCounts> for ClassCounts {
    fn add_assign(&mut self, o: &ClassCounts) {
        self.tp += o.tp;
        self.fp += o.fp;
        self.fn_ += o.fn_;
        self.tn += o.tn;
    }
}

/// Confusion counts of every class over the valid pixels of one image (or
/// of many, summed). For every class, `tp + fp + fn + tn == valid`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    /// Truth pixels that are neither ignored nor undeclared.
    pub valid: u64,
    pub classes: Vec<ClassCounts>,
}

impl Confusion {
    pub fn new(classes: usize) -> Self {
        Self {
            valid: 0,
            classes: vec![ClassCounts::default(); classes],
        }
    }
}

impl AddAssign<&Confusion> for Confusion {
    fn add_assign(&mut self, o: &Confusion) {
        self.valid += o.valid;
        if self.classes.is_empty() {
            self.classes = o.classes.clone();
            return;
        }
        for (a, b) in self.classes.iter_mut().zip(&o.classes) {
            *a += b;
        }
    }
}

/// One image's truth as a scorer sees it: multi-hot planes from
/// [`crate::labels::LabelMap::planes`].
#[derive(Debug, Clone, Copy)]
pub struct Truth<'a> {
    pub classes: usize,
    pub height: usize,
    pub width: usize,
    /// `C x H x W` bytes, 1 where the pixel carries the class.
    pub planes: &'a [u8],
    /// `H x W` bytes, 1 where the pixel is ignored or undeclared: such a
    /// pixel counts nowhere, whatever the prediction says.
    pub excluded: &'a [u8],
}

/// One image's prediction, `C x H x W` row-major like the truth planes.
#[derive(Debug, Clone, Copy)]
pub enum Pred<'a> {
    /// Already decided: 1 where the class is predicted (e.g. a predicted
    /// mask expanded with `LabelMap::planes`). `Decision` does not apply.
    Planes(&'a [u8]),
    /// Scores (logits or probabilities), decided by a [`Decision`].
    Scores(&'a [f32]),
}

/// A truth and its prediction, shapes already checked to agree.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    pub truth: Truth<'a>,
    pub pred: Pred<'a>,
}

/// How scores become predicted classes. Every backend applies exactly this.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Class c is predicted where `score > threshold`, compared in f32.
    /// A NaN is not greater than anything, so a NaN score is negative.
    Above(f32),
    /// Each pixel predicts the one class with the largest score; ties go to
    /// the lowest class, and a NaN counts as the largest (the first NaN
    /// wins), as `numpy.argmax` and `torch.argmax` do.
    Argmax,
}

impl Decision {
    /// The rule in words, e.g. `score > 0`.
    pub fn describe(&self) -> String {
        match self {
            Self::Above(t) => format!("score > {t} (compared in float32; NaN is negative)"),
            Self::Argmax => {
                "argmax over C (ties to the lowest class; NaN counts as the largest, as numpy/torch)"
                    .to_string()
            }
        }
    }
}

/// A way to count TP/FP/FN/TN for a batch of images. The CPU scorer is the
/// reference; another backend (e.g. a GPU one) must return identical counts
/// for the same inputs, and takes exactly these inputs: truth planes and
/// excluded pixels, and predictions decided by the same [`Decision`].
pub trait Scorer: Send + Sync {
    /// `cpu`, `gpu`, ...: named in the output.
    fn name(&self) -> &'static str;
    /// One [`Confusion`] per sample, in order, each with `truth.classes`
    /// classes.
    fn count(&self, batch: &[Sample<'_>], decision: Decision)
    -> Result<Vec<Confusion>, ScoreError>;
    /// Images per `count` call the driver should gather. The CPU scorer
    /// takes one (rayon parallelises over images); a GPU one may want more.
    fn batch_size(&self) -> usize {
        1
    }
    /// `Some(bytes)` for a device scorer: the driver gathers batches of up
    /// to [`Scorer::batch_size`] images and about `bytes` of decoded planes
    /// and scores, decodes the next batch while this one is counted, and
    /// calls `count` from one thread. `None` (the CPU): rayon over images.
    fn device_batch_bytes(&self) -> Option<u64> {
        None
    }
}

/// Which scorer `--backend` (or a pipeline's `backend`) asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    Cpu,
    Gpu,
    /// A hardware GPU when this build and the machine have one (a software
    /// adapter such as Mesa's llvmpipe is skipped), else the CPU.
    Auto,
}

/// Settings of a device scorer; the same in every build.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GpuOptions {
    /// Images per device batch (`--gpu-batch`); `None`: from a memory budget.
    pub batch: Option<usize>,
    /// List every adapter found, not only the one used (`--verbose`).
    pub verbose: bool,
}

/// The scorer for a backend choice, and notes for stderr: which adapter is
/// used, or why `auto` chose the CPU.
pub fn select(
    backend: Backend,
    gpu: &GpuOptions,
) -> Result<(Box<dyn Scorer>, Vec<String>), ScoreError> {
    let cpu = || Box::new(cpu::CpuScorer) as Box<dyn Scorer>;
    #[cfg(feature = "gpu")]
    {
        match backend {
            Backend::Cpu => Ok((cpu(), Vec::new())),
            Backend::Gpu => {
                let (scorer, notes) = gpu::GpuScorer::open(gpu, true)?;
                Ok((Box::new(scorer), notes))
            }
            // Hardware adapters only: on a software one the CPU is faster.
            Backend::Auto => match gpu::GpuScorer::open(gpu, false) {
                Ok((scorer, mut notes)) => {
                    notes.insert(0, "backend: auto chose gpu".to_string());
                    Ok((Box::new(scorer), notes))
                }
                Err(e) => Ok((
                    cpu(),
                    vec![format!(
                        "backend: auto chose cpu ({})",
                        crate::output::error_chain(&e)
                    )],
                )),
            },
        }
    }
    #[cfg(not(feature = "gpu"))]
    {
        let _ = gpu;
        match backend {
            Backend::Cpu => Ok((cpu(), Vec::new())),
            Backend::Gpu => Err(ScoreError::NoGpu),
            Backend::Auto => Ok((
                cpu(),
                vec!["backend: auto chose cpu (GPU scoring is not in this build)".to_string()],
            )),
        }
    }
}

/// What the prediction files hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PredKind {
    /// PNG masks in the truth's label map.
    Mask,
    /// Float scores, positive when > 0.
    Logits,
    /// Float probabilities, positive when > 0.5.
    Probs,
}

impl PredKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Mask => "mask",
            Self::Logits => "logits",
            Self::Probs => "probs",
        }
    }
}

/// How a metric whose ratio is 0/0 (e.g. IoU of a class absent from truth
/// and prediction) is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EmptyAs {
    /// Undefined (null), left out of means.
    #[default]
    Skip,
    One,
    Zero,
}

impl EmptyAs {
    /// Applies the rule to a ratio that may be undefined.
    pub fn apply(self, v: Option<f64>) -> Option<f64> {
        match (v, self) {
            (Some(v), _) => Some(v),
            (None, Self::Skip) => None,
            (None, Self::One) => Some(1.0),
            (None, Self::Zero) => Some(0.0),
        }
    }
}

/// Why an image could not be scored, or the scorer failed.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error("failed to decode truth mask `{path}`")]
    Truth {
        path: String,
        #[source]
        source: DecodeError,
    },
    #[error("failed to decode predicted mask `{path}`")]
    PredMask {
        path: String,
        #[source]
        source: DecodeError,
    },
    #[error("cannot read prediction `{path}`")]
    PredIo {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read prediction `{path}`")]
    PredTensor {
        path: String,
        #[source]
        source: TensorError,
    },
    #[error(
        "prediction `{path}` has shape {shape:?}; expected [C, H, W] = [{classes}, {height}, {width}] \
         (C: the classes of the label map, H x W: the truth mask `{truth}`)"
    )]
    Shape {
        path: String,
        truth: String,
        shape: Vec<usize>,
        classes: usize,
        height: usize,
        width: usize,
    },
    #[error(
        "prediction `{pred}` is {pred_size} but truth `{truth}` is {truth_size}; expected the same size"
    )]
    Size {
        truth: String,
        pred: String,
        /// `WxH`.
        truth_size: String,
        pred_size: String,
    },
    #[error("GPU scoring is not in this build; rebuild with `--features gpu`")]
    NoGpu,
    #[error(
        "no usable GPU adapter: {message}; expected a GPU driver for wgpu (Vulkan, Metal, DX12 or \
         GL; on Linux e.g. `apt-get install mesa-vulkan-drivers libvulkan1`), or use `--backend cpu`"
    )]
    NoAdapter { message: String },
    #[error("skipped adapter `{adapter}`: {why}; `--backend gpu` uses it anyway")]
    NotAGpu { adapter: String, why: &'static str },
    #[error("the {backend} scorer failed: {message}")]
    Backend {
        backend: &'static str,
        message: String,
    },
}

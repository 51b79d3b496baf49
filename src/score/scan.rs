//! The scoring pass: every pair decoded once, in parallel over images
//! (rayon `fold` + `reduce`), into summed [`Confusion`] counts, the
//! per-image reduction, and optional per-image rows. Memory holds a few
//! frames per worker, not the dataset (rows only when asked). A device
//! scorer gets batches from a decoding thread instead ([`scan_device`]),
//! so the next batch is decoded while the device counts this one.

use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::cpu::{self, JointScratch, Tally};
use super::metrics::{ImageMetrics, PerImage};
use super::pairs::{self, Pair, PredFile};
use super::sweep::{Grid, SweepCounts};
use super::{Confusion, Decision, EmptyAs, Pred, Sample, ScoreError, Scorer, Truth};
use crate::decode::{self, Frame, MaskFormat};
use crate::format::problem;
use crate::labels::{LabelMap, Resolved};
use crate::output::{error_chain, progress};
use crate::tensors::{self, Array};

/// A pair whose sizes differ.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SizeMismatch {
    pub truth: String,
    pub pred: String,
    /// `WxH`.
    pub truth_size: String,
    pub pred_size: String,
}

impl SizeMismatch {
    fn sides(&self) -> (problem::Sized<'_>, problem::Sized<'_>) {
        (
            problem::Sized {
                role: "truth",
                path: &self.truth,
                size: &self.truth_size,
            },
            problem::Sized {
                role: "prediction",
                path: &self.pred,
                size: &self.pred_size,
            },
        )
    }

    /// In a list: "size mismatch: truth `t` is 4x4, prediction `p` is 8x8".
    pub fn line(&self) -> String {
        let (truth, pred) = self.sides();
        problem::size_mismatch_line(truth, pred)
    }

    /// As a sentence: "prediction `p` is 8x8 but truth `t` is 4x4".
    pub fn sentence(&self) -> String {
        let (truth, pred) = self.sides();
        problem::size_mismatch(pred, truth)
    }

    /// Why the prediction was skipped: "prediction is 8x8 but truth `t`
    /// is 4x4".
    pub fn reason(&self) -> String {
        let (truth, pred) = self.sides();
        problem::size_mismatch_reason(pred, truth)
    }
}

/// A pair that could not be scored, and why (the message names the file).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Skipped {
    pub truth: String,
    pub pred: String,
    pub reason: String,
}

/// One image's row of the per-image table.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRow {
    pub key: String,
    pub truth: String,
    pub pred: String,
    pub width: u32,
    pub height: u32,
    pub counts: Confusion,
    pub metrics: ImageMetrics,
}

/// What one pass produces.
#[derive(Debug, Default)]
pub struct Scan {
    /// Counts summed over every image scored.
    pub total: Confusion,
    pub pixels: u64,
    pub tally: Tally,
    pub per_image: PerImage,
    pub rows: Vec<ImageRow>,
    pub size_mismatches: Vec<SizeMismatch>,
    pub skipped: Vec<Skipped>,
    /// Counts at every threshold of the sweep grid (`opts.sweep`).
    pub sweep: Option<SweepCounts>,
    /// The sweep's per-image histograms, reused from image to image.
    pub(super) sweep_scratch: Vec<u32>,
}

impl Scan {
    fn new(classes: usize, opts: &ScanOptions) -> Self {
        Self {
            total: Confusion::new(classes),
            per_image: PerImage::new(classes),
            sweep: opts
                .sweep
                .as_ref()
                .map(|g| SweepCounts::new(classes, g.bins())),
            ..Self::default()
        }
    }

    /// Adds an image to the sweep, when there is one.
    fn sweep(&mut self, sample: &Sample<'_>, opts: &ScanOptions) {
        if let (Some(k), Some(grid)) = (&mut self.sweep, &opts.sweep) {
            k.add(grid, sample, &mut self.sweep_scratch);
        }
    }

    fn merge(mut self, o: Scan) -> Self {
        self.total += &o.total;
        self.pixels += o.pixels;
        self.tally += &o.tally;
        self.per_image += &o.per_image;
        self.rows.extend(o.rows);
        self.size_mismatches.extend(o.size_mismatches);
        self.skipped.extend(o.skipped);
        if let (Some(a), Some(b)) = (&mut self.sweep, &o.sweep) {
            *a += b;
        }
        self
    }

    /// Adds one scored image.
    fn add(
        &mut self,
        pair: &Pair,
        (width, height): (u32, u32),
        counts: Confusion,
        tally: Tally,
        opts: &ScanOptions,
    ) {
        self.pixels += u64::from(width) * u64::from(height);
        self.tally += &tally;
        self.total += &counts;
        let metrics = self.per_image.add(&counts, opts.empty_as);
        if opts.per_image {
            self.rows.push(ImageRow {
                key: pair.key.clone(),
                truth: pair.truth.display().to_string(),
                pred: pair.pred.display().to_string(),
                width,
                height,
                counts,
                metrics,
            });
        }
    }

    /// Records an image that could not be scored.
    fn problem(&mut self, pair: &Pair, e: ScoreError) {
        match e {
            ScoreError::Size {
                truth,
                pred,
                truth_size,
                pred_size,
            } => self.size_mismatches.push(SizeMismatch {
                truth,
                pred,
                truth_size,
                pred_size,
            }),
            e => self.skipped.push(Skipped {
                truth: pair.truth.display().to_string(),
                pred: pair.pred.display().to_string(),
                reason: error_chain(&e),
            }),
        }
    }

    /// Images scored.
    pub fn images(&self) -> u64 {
        self.per_image.images
    }
}

/// How the pass reads and decides predictions.
pub struct ScanOptions {
    pub pred_file: PredFile,
    /// How scores become classes; unused for mask predictions.
    pub decision: Decision,
    /// Tensor name for `.safetensors` holding several.
    pub tensor: String,
    pub empty_as: EmptyAs,
    pub per_image: bool,
    /// Stop at the first pair that cannot be scored.
    pub strict: bool,
    pub progress: bool,
    /// Also count every threshold of this grid (float predictions).
    pub sweep: Option<Grid>,
}

/// Scores every pair: mask predictions by joint histogram, float
/// predictions through `scorer`, in batches of
/// [`Scorer::batch_size`] images. With `strict`, the first problem is returned as the error.
pub fn scan(
    pairs: &[Pair],
    map: &LabelMap,
    scorer: &dyn Scorer,
    opts: &ScanOptions,
) -> Result<Scan, ScoreError> {
    let bar = progress(pairs.len() as u64, opts.progress);
    let c = map.num_classes();
    let mut scan = if let Some(bytes) = scorer.device_batch_bytes() {
        scan_device(pairs, map, scorer, opts, bytes, &bar)?
    } else if opts.pred_file == PredFile::Png {
        pairs
            .par_iter()
            .try_fold(
                || (Scan::new(c, opts), MaskBuffers::default()),
                |(mut acc, mut buf), pair| {
                    match score_mask(pair, map, &mut buf) {
                        Ok((size, counts, tally)) => acc.add(pair, size, counts, tally, opts),
                        Err(e) if opts.strict => return Err(e),
                        Err(e) => acc.problem(pair, e),
                    }
                    bar.inc(1);
                    Ok((acc, buf))
                },
            )
            .map(|r| r.map(|(acc, _)| acc))
            .try_reduce(|| Scan::new(c, opts), |a, b| Ok(a.merge(b)))?
    } else {
        pairs
            .par_chunks(scorer.batch_size().max(1))
            .try_fold(
                || (Scan::new(c, opts), Vec::<FloatImage>::new()),
                |(mut acc, mut bufs), chunk| {
                    bufs.resize_with(chunk.len(), FloatImage::default);
                    let mut ready = Vec::with_capacity(chunk.len());
                    for (pair, buf) in chunk.iter().zip(bufs.iter_mut()) {
                        match buf.load(pair, map, opts) {
                            Ok(()) => ready.push((pair, &*buf)),
                            Err(e) if opts.strict => return Err(e),
                            Err(e) => acc.problem(pair, e),
                        }
                    }
                    let samples: Vec<Sample<'_>> = ready.iter().map(|(_, b)| b.sample(c)).collect();
                    for sample in &samples {
                        acc.sweep(sample, opts);
                    }
                    let counts = if samples.is_empty() {
                        Vec::new()
                    } else {
                        scorer.count(&samples, opts.decision)?
                    };
                    if counts.len() != samples.len() {
                        return Err(ScoreError::Backend {
                            backend: scorer.name(),
                            message: format!(
                                "returned {} results for {} images",
                                counts.len(),
                                samples.len()
                            ),
                        });
                    }
                    for ((pair, buf), conf) in ready.iter().zip(counts) {
                        acc.add(pair, (buf.width, buf.height), conf, buf.tally, opts);
                    }
                    bar.inc(chunk.len() as u64);
                    Ok((acc, bufs))
                },
            )
            .map(|r| r.map(|(acc, _)| acc))
            .try_reduce(|| Scan::new(c, opts), |a, b| Ok(a.merge(b)))?
    };
    bar.finish_and_clear();
    scan.rows.sort_by(|a, b| a.key.cmp(&b.key));
    scan.size_mismatches.sort();
    scan.skipped.sort();
    Ok(scan)
}

/// A decoded pair (or why it could not be), by index into the pairs.
type Loaded = (usize, Result<FloatImage, ScoreError>);

/// The pass for a device scorer: a producer thread decodes pairs (rayon
/// over a window of pairs) into batches of at most `batch_size()` images
/// and about `bytes` of data; a channel holding one batch lets it decode
/// the next batch while this thread has the device count the current one.
/// Buffers come back through a second channel to be reused.
fn scan_device(
    pairs: &[Pair],
    map: &LabelMap,
    scorer: &dyn Scorer,
    opts: &ScanOptions,
    bytes: u64,
    bar: &indicatif::ProgressBar,
) -> Result<Scan, ScoreError> {
    let c = map.num_classes();
    let max_images = scorer.batch_size().max(1);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Loaded>>(1);
    let (recycle, reuse) = std::sync::mpsc::channel::<FloatImage>();
    std::thread::scope(|s| {
        let producer = move || {
            let window = rayon::current_num_threads().max(1) * 2;
            let (mut batch, mut images, mut held) = (Vec::new(), 0usize, 0u64);
            for (w, chunk) in pairs.chunks(window).enumerate() {
                let mut bufs: Vec<FloatImage> = (0..chunk.len())
                    .map(|_| reuse.try_recv().unwrap_or_default())
                    .collect();
                let loaded: Vec<Result<(), ScoreError>> = chunk
                    .par_iter()
                    .zip(bufs.par_iter_mut())
                    .map(|(pair, buf)| buf.load_any(pair, map, opts))
                    .collect();
                for (k, (r, buf)) in loaded.into_iter().zip(bufs).enumerate() {
                    if r.is_ok() {
                        images += 1;
                        held += buf.bytes();
                    }
                    batch.push((w * window + k, r.map(|()| buf)));
                    if images >= max_images || held >= bytes {
                        if tx.send(std::mem::take(&mut batch)).is_err() {
                            return;
                        }
                        (images, held) = (0, 0);
                    }
                }
            }
            if !batch.is_empty() {
                let _ = tx.send(batch);
            }
        };
        std::thread::Builder::new()
            .name(DECODE_THREAD.to_string())
            .spawn_scoped(s, producer)
            .map_err(|e| ScoreError::Backend {
                backend: scorer.name(),
                message: format!("cannot start the decoding thread: {e}"),
            })?;
        let mut scan = Scan::new(c, opts);
        for batch in rx {
            let mut ready = Vec::with_capacity(batch.len());
            for (i, r) in batch {
                match r {
                    Ok(img) => ready.push((i, img)),
                    Err(e) if opts.strict => return Err(e),
                    Err(e) => scan.problem(&pairs[i], e),
                }
                bar.inc(1);
            }
            if ready.is_empty() {
                continue;
            }
            let samples: Vec<Sample<'_>> = ready.iter().map(|(_, b)| b.sample(c)).collect();
            // The sweep is counted on the CPU while the device counts the
            // decided batch: one histogram pass per image, exact.
            for sample in &samples {
                scan.sweep(sample, opts);
            }
            let counts = scorer.count(&samples, opts.decision)?;
            if counts.len() != samples.len() {
                return Err(ScoreError::Backend {
                    backend: scorer.name(),
                    message: format!(
                        "returned {} results for {} images",
                        counts.len(),
                        samples.len()
                    ),
                });
            }
            drop(samples);
            for ((i, img), conf) in ready.into_iter().zip(counts) {
                scan.add(&pairs[i], (img.width, img.height), conf, img.tally, opts);
                let _ = recycle.send(img);
            }
        }
        Ok(scan)
    })
}

/// The name of [`scan_device`]'s decoding thread.
pub const DECODE_THREAD: &str = "maskprep-decode";

#[derive(Default)]
struct MaskBuffers {
    truth: Vec<u8>,
    pred: Vec<u8>,
    joint: JointScratch,
}

/// Reads a truth mask, refusing a format the label map cannot read.
fn read_truth<'a>(
    path: &Path,
    buf: &'a mut Vec<u8>,
    map: &LabelMap,
) -> Result<Frame<'a>, ScoreError> {
    let err = |source| ScoreError::Truth {
        path: path.display().to_string(),
        source,
    };
    let bytes = decode::read_file(path).map_err(err)?;
    let frame = decode::decode_frame(&bytes, buf).map_err(err)?;
    map.check_format(frame.format)
        .map_err(|why| err(decode::DecodeError::Unusable(why)))?;
    Ok(frame)
}

fn size_error(pair: &Pair, truth: (u32, u32), pred: (usize, usize)) -> ScoreError {
    ScoreError::Size {
        truth: pair.truth.display().to_string(),
        pred: pair.pred.display().to_string(),
        truth_size: format!("{}x{}", truth.0, truth.1),
        pred_size: format!("{}x{}", pred.0, pred.1),
    }
}

type Scored = ((u32, u32), Confusion, Tally);

/// A mask prediction: both decoded, counted by joint histogram.
fn score_mask(pair: &Pair, map: &LabelMap, buf: &mut MaskBuffers) -> Result<Scored, ScoreError> {
    let MaskBuffers { truth, pred, joint } = buf;
    let tf = read_truth(&pair.truth, truth, map)?;
    let perr = |source| ScoreError::PredMask {
        path: pair.pred.display().to_string(),
        source,
    };
    let bytes = decode::read_file(&pair.pred).map_err(perr)?;
    let pf = decode::decode_frame(&bytes, pred).map_err(perr)?;
    if (tf.width, tf.height) != (pf.width, pf.height) {
        return Err(size_error(
            pair,
            (tf.width, tf.height),
            (pf.width as usize, pf.height as usize),
        ));
    }
    let (counts, tally) = cpu::count_joint(&tf, &pf, map, joint);
    Ok(((tf.width, tf.height), counts, tally))
}

/// One image of a batch: truth planes, and scores or (for a device
/// scorer) predicted planes; owned by a worker and reused.
#[derive(Default)]
struct FloatImage {
    png: Vec<u8>,
    planes: Vec<u8>,
    excluded: Vec<u8>,
    scores: Vec<f32>,
    /// A mask prediction: the planes of its codes (ignored and undeclared
    /// codes predict no class) and the pixels holding such codes.
    pred_png: Vec<u8>,
    pred_planes: Vec<u8>,
    pred_excluded: Vec<u8>,
    mask: bool,
    width: u32,
    height: u32,
    tally: Tally,
}

impl FloatImage {
    /// Reads the pair as `opts.pred_file` says.
    fn load_any(
        &mut self,
        pair: &Pair,
        map: &LabelMap,
        opts: &ScanOptions,
    ) -> Result<(), ScoreError> {
        if opts.pred_file == PredFile::Png {
            self.load_mask(pair, map)
        } else {
            self.load(pair, map, opts)
        }
    }

    /// Reads a mask prediction as planes; the tally is what
    /// [`cpu::count_joint`] reports for the same pair.
    fn load_mask(&mut self, pair: &Pair, map: &LabelMap) -> Result<(), ScoreError> {
        let tf = read_truth(&pair.truth, &mut self.png, map)?;
        let perr = |source| ScoreError::PredMask {
            path: pair.pred.display().to_string(),
            source,
        };
        let bytes = decode::read_file(&pair.pred).map_err(perr)?;
        let pf = decode::decode_frame(&bytes, &mut self.pred_png).map_err(perr)?;
        if (tf.width, tf.height) != (pf.width, pf.height) {
            return Err(size_error(
                pair,
                (tf.width, tf.height),
                (pf.width as usize, pf.height as usize),
            ));
        }
        self.tally = exclusions(&tf, map);
        map.planes(&tf, &mut self.planes, &mut self.excluded);
        map.planes(&pf, &mut self.pred_planes, &mut self.pred_excluded);
        self.tally.pred_unlabelled = self
            .excluded
            .iter()
            .zip(&self.pred_excluded)
            .map(|(&t, &p)| u64::from(t == 0 && p != 0))
            .sum();
        self.mask = true;
        self.width = tf.width;
        self.height = tf.height;
        Ok(())
    }

    /// Bytes of decoded data held for the scorer.
    fn bytes(&self) -> u64 {
        let planes = self.planes.len() + self.excluded.len();
        let pred = if self.mask {
            self.pred_planes.len()
        } else {
            self.scores.len() * 4
        };
        (planes + pred) as u64
    }

    /// Reads the pair: truth planes, and scores checked to be `[C, H, W]`
    /// (a leading batch axis of 1 is accepted).
    fn load(&mut self, pair: &Pair, map: &LabelMap, opts: &ScanOptions) -> Result<(), ScoreError> {
        let tf = read_truth(&pair.truth, &mut self.png, map)?;
        let (w, h) = (tf.width as usize, tf.height as usize);
        let c = map.num_classes();
        let path = || pair.pred.display().to_string();
        if opts.pred_file == PredFile::CocoResults {
            pairs::coco_scores(&pair.pred, map, (tf.width, tf.height), &mut self.scores).map_err(
                |why| ScoreError::PredIo {
                    path: path(),
                    source: std::io::Error::other(why),
                },
            )?;
            self.tally = exclusions(&tf, map);
            map.planes(&tf, &mut self.planes, &mut self.excluded);
            self.mask = false;
            self.width = tf.width;
            self.height = tf.height;
            return Ok(());
        }
        let bytes = crate::store::read(&pair.pred).map_err(|source| ScoreError::PredIo {
            path: path(),
            source,
        })?;
        let array = match opts.pred_file {
            PredFile::Safetensors => tensors::read_safetensors(&bytes, &opts.tensor),
            _ => tensors::read_npy(&bytes),
        }
        .map_err(|source| ScoreError::PredTensor {
            path: path(),
            source,
        })?;
        let Array { shape, values } = array;
        let dims = match shape.as_slice() {
            [1, c, h, w] | [c, h, w] => Some((*c, *h, *w)),
            _ => None,
        };
        match dims {
            Some((pc, ph, pw)) if pc == c && (ph, pw) == (h, w) => {}
            Some((pc, ph, pw)) if pc == c => {
                return Err(size_error(pair, (tf.width, tf.height), (pw, ph)));
            }
            _ => {
                return Err(ScoreError::Shape {
                    path: path(),
                    truth: pair.truth.display().to_string(),
                    shape,
                    classes: c,
                    height: h,
                    width: w,
                });
            }
        }
        self.tally = exclusions(&tf, map);
        map.planes(&tf, &mut self.planes, &mut self.excluded);
        self.scores = values;
        self.mask = false;
        self.width = tf.width;
        self.height = tf.height;
        Ok(())
    }

    fn sample(&self, classes: usize) -> Sample<'_> {
        Sample {
            truth: Truth {
                classes,
                height: self.height as usize,
                width: self.width as usize,
                planes: &self.planes,
                excluded: &self.excluded,
            },
            pred: if self.mask {
                Pred::Planes(&self.pred_planes)
            } else {
                Pred::Scores(&self.scores)
            },
        }
    }
}

/// Ignored and undeclared truth pixels, per run of equal pixels.
fn exclusions(f: &Frame<'_>, map: &LabelMap) -> Tally {
    let mut t = Tally::default();
    let format: MaskFormat = f.format;
    f.runs(|code, run| match map.resolve(code, format) {
        Resolved::Ignore => t.ignored += run,
        Resolved::Unknown => t.undeclared += run,
        Resolved::Classes(_) => {}
    });
    t
}

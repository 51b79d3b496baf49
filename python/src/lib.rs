//! `maskprep._maskprep`: the Python face of maskprep (`pip install
//! maskprep`). No logic of its own: each call runs the stage that the
//! matching command runs and hands back its document (as Python objects,
//! through the JSON the command prints) or its planes (numpy arrays).
//! Errors carry the command's messages; heavy work runs without the GIL.

use std::path::{Path, PathBuf};

use anyhow::Context;
use pyo3::create_exception;
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyTuple, PyType};

use maskprep::dataset::{ExportOptions, prepare};
use maskprep::decode::{self, Frame};
use maskprep::labels::{LabelMap, presets};
use maskprep::output::Console;
use maskprep::score::collect::{Request as ScoreRequest, SweepLevels, collect as score_collect};
use maskprep::score::{Decision, GpuOptions};
use maskprep::source::Partition;
use maskprep::stats::collect::{Request, collect};
use maskprep::weights::Options;
use maskprep::weights::doc::weights_doc;

create_exception!(
    maskprep,
    MaskprepError,
    PyValueError,
    "maskprep could not do the job (the message is the command's)."
);

/// `MaskprepIOError(MaskprepError, OSError)`: a file that could not be
/// read or written (as `io.UnsupportedOperation` is both an `OSError` and a
/// `ValueError`). Made once, when the module loads.
static IO_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn io_error_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    IO_ERROR
        .get_or_try_init(py, || {
            let bases = PyTuple::new(
                py,
                [py.get_type::<MaskprepError>(), py.get_type::<PyOSError>()],
            )?;
            let body = PyDict::new(py);
            body.set_item("__module__", "maskprep")?;
            body.set_item(
                "__doc__",
                "maskprep could not read or write a file (an OSError and a MaskprepError).",
            )?;
            let ty =
                py.import("builtins")?
                    .getattr("type")?
                    .call1(("MaskprepIOError", bases, body))?;
            Ok(ty.cast_into::<PyType>()?.unbind())
        })
        .map(|t| t.bind(py))
}

/// Did the job stop on the file system (a missing file, no permission),
/// not on what a file holds?
fn is_io(e: &anyhow::Error) -> bool {
    use std::io::ErrorKind::{InvalidData, InvalidInput, UnexpectedEof};
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| !matches!(io.kind(), InvalidData | InvalidInput | UnexpectedEof))
    })
}

/// The error chain in one line, as `{:#}` writes it: a `MaskprepIOError`
/// when a file could not be read or written, else a `MaskprepError`.
fn fail(e: anyhow::Error) -> PyErr {
    let message = format!("{e:#}");
    if is_io(&e) {
        Python::attach(|py| match io_error_type(py) {
            Ok(ty) => PyErr::from_type(ty.clone(), message),
            Err(made) => made,
        })
    } else {
        MaskprepError::new_err(message)
    }
}

/// A serialisable value as Python objects (through `json.loads`, so dicts
/// keep the document's key order).
fn to_py<'py>(py: Python<'py>, json: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.call_method1("loads", (json,))
}

fn pretty(value: &impl serde::Serialize) -> PyResult<String> {
    serde_json::to_string_pretty(value)
        .map_err(|e| MaskprepError::new_err(format!("cannot serialise the document: {e}")))
}

/// Runs the command line `argv` (program name first) as the `maskprep`
/// binary does; returns its exit code.
#[pyfunction]
fn main(py: Python<'_>, argv: Vec<String>) -> u8 {
    py.detach(|| maskprep::main_from(argv))
}

/// A compiled label map: what each code of a mask means.
#[pyclass(module = "maskprep", name = "LabelMap", frozen)]
struct PyLabelMap {
    map: LabelMap,
}

#[pymethods]
impl PyLabelMap {
    /// Reads a label map file (`labels.toml`, `labelmap.txt`,
    /// `label_colors.txt`, `class_dict.csv`, `dataset_meta.json`) or a
    /// preset name (`voc`, `cityscapes`, ...).
    #[staticmethod]
    fn from_file(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let arg = path.display().to_string();
        let map = py
            .detach(|| LabelMap::load(&arg))
            .map_err(|e| fail(e.into()))?;
        Ok(Self { map })
    }

    /// Parses maskprep's TOML label map (what `to_toml` writes).
    #[staticmethod]
    fn from_toml(text: &str) -> PyResult<Self> {
        let spec = presets::parse_toml(text, "<toml>").map_err(|e| fail(e.into()))?;
        let map = LabelMap::compile(spec, "<toml>").map_err(|e| fail(e.into()))?;
        Ok(Self { map })
    }

    /// `rgb-bits`, `palette`, `index`, `binary`, `ade20k-seg` or `categories`.
    #[getter]
    fn kind(&self) -> &'static str {
        self.map.kind().name()
    }

    /// The class names, in channel / index order.
    #[getter]
    fn classes(&self) -> Vec<String> {
        self.map.classes().to_vec()
    }

    /// Ignored codes: index values (ints) or `#rrggbb` colours (strs).
    #[getter]
    fn ignore<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &pretty(&self.map.spec.ignore)?)
    }

    /// How sure the detection was (`high`, ...); `None` for a map that
    /// was given, not detected.
    #[getter]
    fn confidence<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.map
            .detection
            .as_ref()
            .map(|d| to_py(py, &pretty(&d.confidence)?))
            .transpose()
    }

    /// The facts the detection rests on (strs), or `None`.
    #[getter]
    fn evidence<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.map
            .detection
            .as_ref()
            .map(|d| to_py(py, &pretty(&d.evidence)?))
            .transpose()
    }

    /// The whole detection (as in `stats --json`: confidence, reading,
    /// evidence, runner-up, how to settle it), or `None`.
    #[getter]
    fn detection<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.map
            .detection
            .as_ref()
            .map(|d| to_py(py, &pretty(d)?))
            .transpose()
    }

    /// The map as commented TOML (what `maskprep labels` prints).
    fn to_toml(&self) -> String {
        self.map.to_toml()
    }

    /// Multi-hot planes, numpy uint8 `[C,H,W]` (1 where the pixel carries
    /// the class), of a mask given as a path, PNG bytes or a numpy uint8
    /// array `H x W`, `H x W x 3` or `H x W x 4`. With `ignored=True`,
    /// returns `(planes, ignored)`, `ignored` uint8 `[H,W]`: 1 where the
    /// pixel is ignored or undeclared (its planes are all 0).
    #[pyo3(signature = (mask, ignored = false))]
    fn decode<'py>(
        &self,
        py: Python<'py>,
        mask: &Bound<'py, PyAny>,
        ignored: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let input = MaskInput::extract(mask)?;
        let (planes, excluded, (w, h)) = py
            .detach(|| {
                input.with_frame(&self.map, |frame| {
                    let (mut planes, mut excluded) = (Vec::new(), Vec::new());
                    self.map.planes(frame, &mut planes, &mut excluded);
                    Ok((planes, excluded, (frame.width, frame.height)))
                })
            })
            .map_err(fail)?;
        let c = self.map.num_classes();
        let planes = array(py, &planes, "uint8", &[c, h as usize, w as usize])?;
        if !ignored {
            return Ok(planes);
        }
        let excluded = array(py, &excluded, "uint8", &[h as usize, w as usize])?;
        Ok(PyTuple::new(py, [planes, excluded])?.into_any())
    }

    /// Class indices, numpy int64 `[H,W]`, for a single-label loss
    /// (`CrossEntropyLoss(ignore_index=...)`): ignored and undeclared
    /// pixels get `ignore_index`; pixels with no class (background of a
    /// binary or RGB mask) get `C`, the extra output whose weight is the
    /// last of `weights()["weight"]` (`[C+1]`). Raises `MaskprepError` on a
    /// pixel with several classes.
    #[pyo3(signature = (mask, ignore_index = 255))]
    fn decode_index<'py>(
        &self,
        py: Python<'py>,
        mask: &Bound<'py, PyAny>,
        ignore_index: i64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let input = MaskInput::extract(mask)?;
        let (target, (w, h)) = py
            .detach(|| {
                input.with_frame(&self.map, |frame| {
                    let mut target = Vec::new();
                    self.map
                        .index_target(frame, ignore_index, &mut target)
                        .map_err(anyhow::Error::msg)?;
                    Ok((target, (frame.width, frame.height)))
                })
            })
            .map_err(fail)?;
        let bytes: Vec<u8> = target.iter().flat_map(|v| v.to_le_bytes()).collect();
        array(py, &bytes, "<i8", &[h as usize, w as usize])
    }

    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let from_toml = py.get_type::<Self>().getattr("from_toml")?;
        PyTuple::new(
            py,
            [
                from_toml,
                PyTuple::new(py, [self.map.to_toml()])?.into_any(),
            ],
        )
    }

    fn __repr__(&self) -> String {
        format!(
            "LabelMap(kind={:?}, classes={:?})",
            self.map.kind().name(),
            self.map.classes()
        )
    }
}

/// A writable numpy array over a copy of `bytes`.
fn array<'py>(
    py: Python<'py>,
    bytes: &[u8],
    dtype: &str,
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    let buf = PyByteArray::new(py, bytes);
    py.import("numpy")?
        .call_method1("frombuffer", (buf, dtype))?
        .call_method1("reshape", (PyTuple::new(py, shape)?,))
}

/// A mask as the Python caller gave it.
enum MaskInput {
    Path(PathBuf),
    Png(Vec<u8>),
    Samples {
        width: u32,
        height: u32,
        channels: usize,
        data: Vec<u8>,
    },
}

impl MaskInput {
    fn extract(mask: &Bound<'_, PyAny>) -> PyResult<Self> {
        if let Ok(bytes) = mask.cast::<PyBytes>() {
            return Ok(Self::Png(bytes.as_bytes().to_vec()));
        }
        if let Ok(path) = mask.extract::<PathBuf>() {
            return Ok(Self::Path(path));
        }
        let py = mask.py();
        let np = py.import("numpy")?;
        if !mask.is_instance(&np.getattr("ndarray")?)? {
            return Err(MaskprepError::new_err(format!(
                "mask is a `{}`; expected a path, PNG bytes or a numpy uint8 array",
                mask.get_type().name()?
            )));
        }
        let dtype: String = mask.getattr("dtype")?.getattr("name")?.extract()?;
        let shape: Vec<usize> = mask.getattr("shape")?.extract()?;
        let (height, width, channels) = match shape[..] {
            [h, w] => (h, w, 1),
            [h, w, c] => (h, w, c),
            _ => (0, 0, 0),
        };
        if dtype != "uint8" || channels == 0 {
            return Err(MaskprepError::new_err(format!(
                "mask array is {dtype} {shape:?}; expected uint8 H x W, H x W x 3 or H x W x 4"
            )));
        }
        let too_large = || MaskprepError::new_err(format!("mask array {shape:?} is too large"));
        let data: Vec<u8> = np
            .call_method1("ascontiguousarray", (mask,))?
            .call_method0("tobytes")?
            .extract()?;
        Ok(Self::Samples {
            width: u32::try_from(width).map_err(|_| too_large())?,
            height: u32::try_from(height).map_err(|_| too_large())?,
            channels,
            data,
        })
    }

    /// Decodes the mask, checks it suits `map`, and hands its frame to `f`.
    fn with_frame<T>(
        &self,
        map: &LabelMap,
        f: impl FnOnce(&Frame<'_>) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let mut buf = Vec::new();
        let (frame, what) = match self {
            Self::Path(path) => {
                let what = format!("mask `{}`", path.display());
                let bytes =
                    decode::read_file(path).with_context(|| format!("failed to read {what}"))?;
                let frame = decode::decode_frame(&bytes, &mut buf)
                    .with_context(|| format!("failed to decode {what}"))?;
                // `frame` borrows `buf`, not `bytes`.
                (frame, what)
            }
            Self::Png(bytes) => (
                decode::decode_frame(bytes, &mut buf).context("failed to decode the PNG bytes")?,
                "the PNG bytes".to_string(),
            ),
            Self::Samples {
                width,
                height,
                channels,
                data,
            } => (
                Frame::from_samples(*width, *height, *channels, data)
                    .context("cannot read the mask array")?,
                "the mask array".to_string(),
            ),
        };
        map.check_format(frame.format)
            .map_err(|why| anyhow::anyhow!("{what}: {why}"))?;
        f(&frame)
    }
}

/// The label map maskprep would use for the dataset at `path` (detected,
/// or read from `labels`: a file or a preset name), as `maskprep labels`.
#[pyfunction]
#[pyo3(signature = (path, labels = None, crowd = "count"))]
fn labels(
    py: Python<'_>,
    path: PathBuf,
    labels: Option<String>,
    crowd: &str,
) -> PyResult<PyLabelMap> {
    let exports = export_options(crowd)?;
    let prep = py
        .detach(|| {
            prepare(&path, labels.as_deref(), &exports, Partition::WHOLE)
                .with_context(|| format!("cannot detect the label map of `{}`", path.display()))
        })
        .map_err(fail)?;
    Ok(PyLabelMap { map: prep.map })
}

/// How annotation exports are read: COCO crowd regions counted as their
/// category (`"count"`, as pycocotools) or ignored (`"ignore"`).
fn export_options(crowd: &str) -> PyResult<ExportOptions> {
    let crowd = match crowd {
        "count" => maskprep::annotations::CrowdMode::AsCategory,
        "ignore" => maskprep::annotations::CrowdMode::Ignore,
        other => {
            return Err(MaskprepError::new_err(format!(
                "`crowd={other:?}`: expected \"count\" or \"ignore\""
            )));
        }
    };
    Ok(ExportOptions {
        crowd,
        ..ExportOptions::default()
    })
}

/// The statistics of the dataset at `path` (PNG masks, or an annotation
/// export: COCO JSON, run-length CSV): the document `stats --json` prints,
/// as Python objects.
#[pyfunction]
#[pyo3(signature = (path, labels = None, rare_below = maskprep::stats::RARE_BELOW, strict = false, crowd = "count"))]
fn stats<'py>(
    py: Python<'py>,
    path: PathBuf,
    labels: Option<String>,
    rare_below: f64,
    strict: bool,
    crowd: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let exports = export_options(crowd)?;
    let json = py
        .detach(|| -> anyhow::Result<String> {
            let doc = scan(&path, labels.as_deref(), &exports, rare_below, strict)?;
            Ok(serde_json::to_string_pretty(&doc)?)
        })
        .map_err(fail)?;
    to_py(py, &json)
}

fn scan(
    dir: &Path,
    labels: Option<&str>,
    exports: &ExportOptions,
    rare_below: f64,
    strict: bool,
) -> anyhow::Result<maskprep::stats::doc::StatsDoc> {
    if !(0.0..=1.0).contains(&rare_below) {
        anyhow::bail!("`rare_below={rare_below}` is not a fraction; expected a number in 0..=1");
    }
    let request = Request {
        dir,
        labels,
        exports: *exports,
        partition: None,
        rare_below,
        strict,
        per_image: false,
    };
    let inputs = [dir];
    maskprep::store::with_workers(&inputs, || {
        collect(&request, &Console::new(true)).map(|c| c.doc)
    })
}

/// Loss weights: from a dataset folder (scanned), a stats JSON file, or a
/// stats document (the dict `stats()` returns). Returns `{"document": ...
/// (what `weights --json` prints), "pos_weight": float32 [C,1,1],
/// "weight": float32 [C] or [C+1]}`.
#[pyfunction]
#[pyo3(signature = (source, scheme = "balanced", labels = None, enet_c = None, beta = None, max_weight = None))]
fn weights<'py>(
    py: Python<'py>,
    source: &Bound<'py, PyAny>,
    scheme: &str,
    labels: Option<String>,
    enet_c: Option<f64>,
    beta: Option<f64>,
    max_weight: Option<f64>,
) -> PyResult<Bound<'py, PyDict>> {
    let defaults = Options::default();
    let opts = Options {
        scheme: scheme.parse().map_err(MaskprepError::new_err)?,
        enet_c: enet_c.unwrap_or(defaults.enet_c),
        beta,
        max_weight,
    };
    opts.check().map_err(|e| fail(e.into()))?;
    enum From {
        Doc(String),
        Path(PathBuf),
    }
    let from = if source.is_instance_of::<PyDict>() {
        let text: String = py
            .import("json")?
            .call_method1("dumps", (source,))?
            .extract()?;
        From::Doc(text)
    } else {
        From::Path(source.extract()?)
    };
    let doc = py
        .detach(|| -> anyhow::Result<_> {
            let (stats, from) = match &from {
                From::Doc(text) => (
                    maskprep::stats::merge::parse_stats(text, Path::new("<stats dict>"))
                        .context("cannot compute weights from the stats document")?,
                    None,
                ),
                From::Path(p) if maskprep::store::is_file(p) => (
                    maskprep::stats::merge::read_stats(p).with_context(|| {
                        format!("cannot compute weights from `{}`", p.display())
                    })?,
                    Some(p.display().to_string()),
                ),
                From::Path(dir) => (
                    scan(
                        dir,
                        labels.as_deref(),
                        &ExportOptions::default(),
                        maskprep::stats::RARE_BELOW,
                        false,
                    )
                    .with_context(|| format!("cannot compute weights for `{}`", dir.display()))?,
                    None,
                ),
            };
            let context = match &from {
                Some(path) => format!("cannot compute weights from `{path}`"),
                None => format!("cannot compute weights for `{}`", stats.meta.dataset),
            };
            weights_doc(&stats, from, &opts).context(context)
        })
        .map_err(fail)?;
    let out = PyDict::new(py);
    out.set_item("document", to_py(py, &doc.to_json())?)?;
    let (pos, weight) = doc.npy();
    let load = |npy: Vec<u8>| -> PyResult<Bound<'py, PyAny>> {
        let file = py
            .import("io")?
            .call_method1("BytesIO", (PyBytes::new(py, &npy),))?;
        py.import("numpy")?.call_method1("load", (file,))
    };
    out.set_item("pos_weight", load(pos)?)?;
    out.set_item("weight", load(weight)?)?;
    Ok(out)
}

/// A flag value of a stage enum, as the command line spells it.
fn choice<T: clap::ValueEnum>(arg: &str, value: &str) -> PyResult<T> {
    T::from_str(value, false).map_err(|_| {
        let names: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value())
            .map(|v| format!("{:?}", v.get_name()))
            .collect();
        MaskprepError::new_err(format!(
            "`{arg}={value:?}`: expected one of {}",
            names.join(", ")
        ))
    })
}

/// Scores predictions against truth: the document `score --json` prints
/// (per-class IoU, Dice, precision, recall, accuracy), as Python objects.
/// The options are `score`'s flags (`pred_kind="logits"`, `threshold=0.5`,
/// `argmax=True`, `empty_as="one"`, `backend="cpu"`, `tensor="logits"`).
/// `sweep=True` (or `thresholds=[...]`, `sweep_bins=N`) also sweeps the
/// thresholds of float predictions: the document gains its `sweep`
/// section, and the dict a `thresholds` entry with what
/// `thresholds.json` holds, the per-class choices as numpy float32 `[C]`
/// (`"iou"`, `"dice"`) beside `"default"`.
#[pyfunction]
#[pyo3(signature = (truth, pred, labels = None, pred_kind = None, threshold = None, argmax = false, empty_as = "skip", backend = "auto", tensor = None, sweep = false, thresholds = None, sweep_bins = None, crowd = "count"))]
#[allow(clippy::too_many_arguments)]
fn score<'py>(
    py: Python<'py>,
    truth: PathBuf,
    pred: PathBuf,
    labels: Option<String>,
    pred_kind: Option<&str>,
    threshold: Option<f32>,
    argmax: bool,
    empty_as: &str,
    backend: &str,
    tensor: Option<String>,
    sweep: bool,
    thresholds: Option<Vec<f64>>,
    sweep_bins: Option<usize>,
    crowd: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let pred_kind = pred_kind.map(|k| choice("pred_kind", k)).transpose()?;
    let sweeping = sweep || thresholds.is_some() || sweep_bins.is_some();
    if sweeping && argmax {
        return Err(MaskprepError::new_err(
            "`sweep` thresholds each class on its own; it does not combine with `argmax`",
        ));
    }
    if threshold.is_some_and(|t| !t.is_finite()) {
        return Err(MaskprepError::new_err(
            "`threshold` is not a finite number; expected e.g. 0 for logits or 0.5 for probabilities",
        ));
    }
    let levels = sweeping.then(|| SweepLevels {
        levels: thresholds,
        bins: sweep_bins.unwrap_or(maskprep::score::sweep::DEFAULT_BINS),
    });
    let gpu = GpuOptions::default();
    let request = ScoreRequest {
        truth: &truth,
        pred: &pred,
        labels: labels.as_deref(),
        exports: export_options(crowd)?,
        pred_kind,
        threshold,
        argmax,
        tensor: tensor.as_deref(),
        empty_as: choice("empty_as", empty_as)?,
        backend: choice("backend", backend)?,
        gpu: &gpu,
        sweep: levels.as_ref(),
        partition: None,
        per_image: false,
        strict: false,
    };
    let inputs = [truth.as_path(), pred.as_path()];
    let (doc, decision) = py
        .detach(|| {
            maskprep::store::with_workers(&inputs, || {
                score_collect(&request, &Console::new(true)).map(|c| (c.doc, c.reader.decision))
            })
        })
        .map_err(fail)?;
    let out: Bound<'py, PyDict> = to_py(py, &pretty(&doc)?)?.cast_into()?;
    if let (Some(sd), Decision::Above(default)) = (&doc.sweep, decision) {
        let np = py.import("numpy")?;
        let chosen = PyDict::new(py);
        for (key, dice) in [("iou", false), ("dice", true)] {
            let values = sd.chosen(dice, default);
            chosen.set_item(key, np.call_method1("array", (values, "float32"))?)?;
        }
        chosen.set_item("default", default)?;
        out.set_item("thresholds", chosen)?;
    }
    Ok(out)
}

/// Dataset health: the document `check --json` prints (objects per class
/// with sizes and holes, duplicate masks and photos within and across
/// splits, classes missing from a split, per-split shares). `splits`:
/// `{"train": "data/train", "val": "data/val"}` instead of finding them in
/// `path`'s layout. With `sampling_weights=True` the dict also holds
/// `"sampling"`: what `--sampling-weights` writes, its `weights` as numpy
/// float32 `[N]` in the order of its `masks` (for
/// `torch.utils.data.WeightedRandomSampler`).
#[pyfunction]
#[pyo3(signature = (path = None, splits = None, labels = None, connectivity = 8, min_object = maskprep::check::MIN_OBJECT, photos = true, sampling_weights = false, crowd = "count"))]
#[allow(clippy::too_many_arguments)]
fn check<'py>(
    py: Python<'py>,
    path: Option<PathBuf>,
    splits: Option<&Bound<'py, PyDict>>,
    labels: Option<String>,
    connectivity: u8,
    min_object: u64,
    photos: bool,
    sampling_weights: bool,
    crowd: &str,
) -> PyResult<Bound<'py, PyDict>> {
    use maskprep::check::{Connectivity, LISTED, Options};
    let connectivity = Connectivity::from_number(connectivity).ok_or_else(|| {
        MaskprepError::new_err(format!("`connectivity={connectivity}`: expected 4 or 8"))
    })?;
    let splits: Vec<(String, PathBuf)> = match splits {
        Some(d) => d
            .iter()
            .map(|(k, v)| Ok((k.extract()?, v.extract()?)))
            .collect::<PyResult<_>>()?,
        None => Vec::new(),
    };
    let dir = match (path, splits.first()) {
        (Some(p), _) => p,
        (None, Some((_, d))) => d.clone(),
        (None, None) => {
            return Err(MaskprepError::new_err(
                "expected a dataset `path`, or `splits={name: folder}`",
            ));
        }
    };
    let request = maskprep::check::collect::Request {
        dir: &dir,
        splits: &splits,
        labels: labels.as_deref(),
        exports: export_options(crowd)?,
        options: Options {
            connectivity,
            min_object,
            photos,
            listed: LISTED,
            keep_classes: sampling_weights,
            progress: false,
        },
        sampling: sampling_weights,
    };
    let mut inputs: Vec<&Path> = vec![dir.as_path()];
    inputs.extend(splits.iter().map(|(_, d)| d.as_path()));
    let checked = py
        .detach(|| {
            maskprep::store::with_workers(&inputs, || {
                maskprep::check::collect::collect(&request, &Console::new(true))
            })
        })
        .map_err(fail)?;
    let out: Bound<'py, PyDict> = to_py(py, &pretty(&checked.doc)?)?.cast_into()?;
    if let Some(sampling) = &checked.sampling {
        let doc: Bound<'py, PyDict> = to_py(py, &pretty(sampling)?)?.cast_into()?;
        let np = py.import("numpy")?;
        doc.set_item(
            "weights",
            np.call_method1("array", (sampling.weights.clone(), "float32"))?,
        )?;
        out.set_item("sampling", doc)?;
    }
    Ok(out)
}

#[pymodule]
fn _maskprep(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("MaskprepError", m.py().get_type::<MaskprepError>())?;
    m.add("MaskprepIOError", io_error_type(m.py())?)?;
    m.add_class::<PyLabelMap>()?;
    m.add_function(wrap_pyfunction!(main, m)?)?;
    m.add_function(wrap_pyfunction!(labels, m)?)?;
    m.add_function(wrap_pyfunction!(stats, m)?)?;
    m.add_function(wrap_pyfunction!(check, m)?)?;
    m.add_function(wrap_pyfunction!(weights, m)?)?;
    m.add_function(wrap_pyfunction!(score, m)?)?;
    Ok(())
}

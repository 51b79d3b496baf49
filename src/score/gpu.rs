//! The GPU scorer (cargo feature `gpu`): burn's wgpu backend counts the
//! same TP/FP/FN/TN as [`super::cpu::CpuScorer`], image for image.
//!
//! Truth planes, excluded pixels and predictions are uploaded as `i32`
//! tensors `[B, C, h, W]`, decided (`>` or argmax) and summed on the device
//! as integers. Scores travel as order-preserving integer keys, so the
//! device never compares a float: a driver that flushes subnormals or
//! assumes no NaN (WGSL and Vulkan allow both) cannot change a decision.
//! burn types never leave this file.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, Once, OnceLock};

use burn::tensor::wgpu::{WgpuBackend, wgpu};
use burn::tensor::{Bool, Device, DeviceKind, Int, Tensor, TensorData};
use rayon::prelude::*;

use super::{ClassCounts, Confusion, Decision, GpuOptions, Pred, Sample, ScoreError, Scorer};

/// Device memory one batch may use unless `--gpu-batch` says otherwise.
pub const BUDGET_BYTES: u64 = 512 << 20;
/// Device bytes per element of `[B, C, h, W]` at the peak of a batch: two
/// `i32` inputs and a few `i32`/bool intermediates, rounded up.
const DEVICE_BYTES_PER_ELEMENT: u64 = 32;
/// Host bytes per element the driver gathers: an `f32` score and a truth
/// byte (predicted planes take less).
const HOST_BYTES_PER_ELEMENT: u64 = 5;
/// Images gathered per call unless `--gpu-batch` says otherwise.
const MAX_IMAGES: usize = 256;

/// The adapter, opened once per process (wgpu registers one runtime per
/// adapter) and shared by every scorer.
struct Gpu {
    device: Device,
    /// The adapter used, in words.
    adapter: String,
    /// Elements one `i32` buffer may hold (the adapter's binding limit).
    max_elements: u64,
}

/// The adapter chosen to open, and every adapter found.
struct Choice {
    info: wgpu::AdapterInfo,
    /// How burn selects it: its type and position among the adapters of
    /// that type on its graphics API.
    kind: DeviceKind,
    api: WgpuBackend,
    /// Every adapter found, in words.
    adapters: Vec<String>,
}

static CHOICE: OnceLock<Result<Choice, String>> = OnceLock::new();
static GPU: OnceLock<Result<Gpu, String>> = OnceLock::new();

/// The adapter to score on. A software adapter (device type `Cpu`, Mesa's
/// llvmpipe) or one of unknown type is refused unless `software` allows it
/// (`--backend gpu`): `auto` then counts on the CPU, which is faster.
fn gpu(software: bool) -> Result<(&'static Gpu, &'static Choice), ScoreError> {
    let no_adapter = |message: &String| ScoreError::NoAdapter {
        message: message.clone(),
    };
    let choice = CHOICE
        .get_or_init(|| guarded(|| quiet_stderr(choose)))
        .as_ref()
        .map_err(no_adapter)?;
    if !software && let Some(why) = not_hardware(choice.info.device_type) {
        return Err(ScoreError::NotAGpu {
            adapter: describe(&choice.info),
            why,
        });
    }
    let gpu = GPU
        .get_or_init(|| guarded(|| quiet_stderr(|| open(choice))))
        .as_ref()
        .map_err(no_adapter)?;
    Ok((gpu, choice))
}

/// Why an adapter of this type is not used by `--backend auto`, if it is not.
fn not_hardware(t: wgpu::DeviceType) -> Option<&'static str> {
    match t {
        wgpu::DeviceType::DiscreteGpu
        | wgpu::DeviceType::IntegratedGpu
        | wgpu::DeviceType::VirtualGpu => None,
        wgpu::DeviceType::Cpu => Some(
            "a software adapter (device type Cpu) runs on the processor and is slower than \
             the CPU scorer",
        ),
        wgpu::DeviceType::Other => Some("its device type is unknown, not a GPU's"),
    }
}

/// Preference among adapters: discrete, integrated, virtual GPUs, then
/// the rest.
fn rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

/// The adapters `backends` list, asked without any window system.
fn adapters(backends: wgpu::Backends) -> Vec<wgpu::AdapterInfo> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    block_on(instance.enumerate_adapters(backends))
        .iter()
        .map(wgpu::Adapter::get_info)
        .collect()
}

/// Finds the best adapter: through Vulkan, Metal or DX12, and through GL
/// only when none of them has a GPU.
fn choose() -> Result<Choice, String> {
    let native = wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12;
    let mut found = adapters(native);
    if found.iter().all(|a| not_hardware(a.device_type).is_some()) {
        found.extend(adapters(wgpu::Backends::GL));
    }
    let best = (0..found.len())
        .min_by_key(|&i| rank(found[i].device_type))
        .ok_or("no adapter found through Vulkan, Metal, DX12 or GL")?;
    let info = found[best].clone();
    let api = match info.backend {
        wgpu::Backend::Vulkan => WgpuBackend::Vulkan,
        wgpu::Backend::Metal => WgpuBackend::Metal,
        wgpu::Backend::Dx12 => WgpuBackend::Dx12,
        wgpu::Backend::Gl => WgpuBackend::Gl,
        other => return Err(format!("adapter on an unexpected graphics API {other:?}")),
    };
    // burn numbers adapters per type on one graphics API.
    let index = found[..best]
        .iter()
        .filter(|a| a.backend == info.backend && a.device_type == info.device_type)
        .count();
    let kind = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => DeviceKind::DiscreteGpu(index),
        wgpu::DeviceType::IntegratedGpu => DeviceKind::IntegratedGpu(index),
        wgpu::DeviceType::VirtualGpu => DeviceKind::VirtualGpu(index),
        wgpu::DeviceType::Cpu => DeviceKind::Cpu,
        wgpu::DeviceType::Other => DeviceKind::DefaultDevice,
    };
    Ok(Choice {
        adapters: found.iter().map(describe).collect(),
        info,
        kind,
        api,
    })
}

/// Opens the chosen adapter and checks it with one round trip.
fn open(choice: &Choice) -> Result<Gpu, String> {
    let (device, setup) = Device::wgpu_options()
        .graphics_api(choice.api)
        .device_kind(choice.kind.clone())
        .init_with_setup()
        .map_err(|e| one_line(&e.to_string()))?;
    let adapter = describe(&setup.adapter.get_info());
    let limits = setup.device.limits();
    let binding = limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size);
    let probe = Tensor::<1, Int>::from_data(TensorData::new(vec![1i32, 2, 3], [3]), &device);
    let sum = probe.sum().try_into_vec_as::<i64>().map_err(|e| {
        format!(
            "adapter `{adapter}` failed its first use: {}",
            one_line(&e.to_string())
        )
    })?;
    if sum != [6] {
        return Err(format!(
            "adapter `{adapter}` failed its first use: 1 + 2 + 3 gave {sum:?}"
        ));
    }
    Ok(Gpu {
        device,
        adapter,
        max_elements: binding / 4,
    })
}

/// Runs `f` with the process's stderr sent to `/dev/null`: the window
/// system libraries that adapter probing loads (Mesa's device-select layer,
/// EGL) print to it, e.g. `XDG_RUNTIME_DIR is invalid or not set`, and
/// none of that is the user's business. Errors come back as values.
#[cfg(target_os = "linux")]
fn quiet_stderr<T>(f: impl FnOnce() -> T) -> T {
    use std::os::fd::AsRawFd;
    struct Restore(libc::c_int);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: `self.0` is a descriptor this process duplicated from
            // stderr and still owns; it is put back and closed once.
            unsafe {
                libc::dup2(self.0, 2);
                libc::close(self.0);
            }
        }
    }
    let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") else {
        return f();
    };
    // SAFETY: duplicating and replacing descriptor 2 touches no Rust-owned
    // descriptor; the original comes back when `_restore` drops (panics too).
    let saved = unsafe { libc::dup(2) };
    if saved < 0 {
        return f();
    }
    let _restore = Restore(saved);
    // SAFETY: both descriptors are open for as long as this call.
    unsafe { libc::dup2(null.as_raw_fd(), 2) };
    f()
}

#[cfg(not(target_os = "linux"))]
fn quiet_stderr<T>(f: impl FnOnce() -> T) -> T {
    f()
}

fn describe(info: &wgpu::AdapterInfo) -> String {
    format!(
        "{} ({:?}, {:?}, driver {} {})",
        info.name, info.device_type, info.backend, info.driver, info.driver_info
    )
    .replace(" )", ")")
}

/// Runs a future that native wgpu resolves at once (adapter enumeration).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

/// The first lines of a device error, without its backtrace.
fn one_line(s: &str) -> String {
    let head = s.split("Backtrace").next().unwrap_or(s);
    let lines: Vec<&str> = head
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut out = lines.join("; ");
    if out.len() > 400 {
        let cut = (0..=400)
            .rev()
            .find(|&i| out.is_char_boundary(i))
            .unwrap_or(0);
        out.truncate(cut);
        out.push_str("...");
    }
    out
}

/// Guarded sections in progress: panics on other than maskprep's decoding
/// and rayon threads (wgpu's and burn's device threads) are caught quietly.
static GUARDED: AtomicUsize = AtomicUsize::new(0);
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Runs device work; a panic (wgpu panics on some driver errors) becomes an
/// error message instead of a crash with a trace.
fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let ours = rayon::current_thread_index().is_some()
                || std::thread::current().name() == Some(super::scan::DECODE_THREAD);
            if GUARDED.load(Ordering::SeqCst) > 0 && !ours {
                if let Ok(mut last) = LAST_PANIC.lock() {
                    *last = Some(info.to_string());
                }
            } else {
                previous(info);
            }
        }));
    });
    GUARDED.fetch_add(1, Ordering::SeqCst);
    let r = catch_unwind(AssertUnwindSafe(f));
    GUARDED.fetch_sub(1, Ordering::SeqCst);
    r.unwrap_or_else(|payload| {
        let caught = LAST_PANIC.lock().ok().and_then(|mut l| l.take());
        let text = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .or(caught)
            .unwrap_or_else(|| "unknown panic".to_string());
        Err(format!("the device panicked: {}", one_line(&text)))
    })
}

/// Counts on the GPU; see the module docs.
pub struct GpuScorer {
    gpu: &'static Gpu,
    /// `--gpu-batch`.
    batch: Option<usize>,
    /// Elements per device batch; halved when the device runs out of memory.
    elements: AtomicU64,
}

impl GpuScorer {
    /// Opens the adapter; the notes say which one (all with `verbose`).
    /// `software`: a software (CPU) adapter may be used (`--backend gpu`).
    pub fn open(opts: &GpuOptions, software: bool) -> Result<(Self, Vec<String>), ScoreError> {
        Self::with_budget(opts, BUDGET_BYTES, software)
    }

    fn with_budget(
        opts: &GpuOptions,
        budget: u64,
        software: bool,
    ) -> Result<(Self, Vec<String>), ScoreError> {
        let (gpu, choice) = gpu(software)?;
        let mut notes = vec![format!("gpu: adapter `{}`", gpu.adapter)];
        if opts.verbose {
            notes.extend(
                choice
                    .adapters
                    .iter()
                    .enumerate()
                    .map(|(i, a)| format!("gpu: adapter {i} found: `{a}`")),
            );
        }
        let elements = (budget / DEVICE_BYTES_PER_ELEMENT).clamp(1, gpu.max_elements.max(1));
        let scorer = Self {
            gpu,
            batch: opts.batch.filter(|&n| n > 0),
            elements: AtomicU64::new(elements),
        };
        Ok((scorer, notes))
    }

    fn error(message: String) -> ScoreError {
        ScoreError::Backend {
            backend: "gpu",
            message,
        }
    }
}

impl Scorer for GpuScorer {
    fn name(&self) -> &'static str {
        "gpu"
    }

    fn batch_size(&self) -> usize {
        self.batch.unwrap_or(MAX_IMAGES)
    }

    fn device_batch_bytes(&self) -> Option<u64> {
        Some(match self.batch {
            Some(_) => u64::MAX,
            None => self.elements.load(Ordering::Relaxed) * HOST_BYTES_PER_ELEMENT,
        })
    }

    fn count(
        &self,
        batch: &[Sample<'_>],
        decision: Decision,
    ) -> Result<Vec<Confusion>, ScoreError> {
        for s in batch {
            check(s)?;
        }
        let mut totals: Vec<Totals> = batch.iter().map(|s| Totals::new(s.truth.classes)).collect();
        // Bands of rows: a band fits the budget and one buffer, and its
        // counts fit an i32. Most images are one band.
        let hard = self.gpu.max_elements.min(i32::MAX as u64);
        let limit = self.elements.load(Ordering::Relaxed).min(hard);
        let mut groups: BTreeMap<Shape, Vec<Tile>> = BTreeMap::new();
        for (i, s) in batch.iter().enumerate() {
            let t = &s.truth;
            let row = (t.classes * t.width) as u64;
            if row > hard {
                return Err(Self::error(format!(
                    "a row of {} classes x {} pixels exceeds the device's largest buffer \
                     ({hard} values)",
                    t.classes, t.width
                )));
            }
            let rows = (limit / row).clamp(1, t.height.max(1) as u64) as usize;
            for row0 in (0..t.height).step_by(rows.max(1)) {
                let rows = rows.min(t.height - row0);
                let shape = Shape {
                    classes: t.classes,
                    rows,
                    width: t.width,
                };
                groups.entry(shape).or_default().push(Tile {
                    sample: i,
                    row0,
                    rows,
                });
            }
        }
        let mode = Mode::of(decision);
        for (shape, tiles) in groups {
            let per_tile = shape.elements();
            let mut at = 0;
            while at < tiles.len() {
                let fit = match self.batch {
                    Some(n) => n.min((hard / per_tile).max(1) as usize),
                    None => (self.elements.load(Ordering::Relaxed) / per_tile).max(1) as usize,
                };
                let chunk = &tiles[at..(at + fit).min(tiles.len())];
                let row = (shape.classes * shape.width) as u64;
                let mut exec =
                    |t: &[Tile]| guarded(|| device_counts(&self.gpu.device, batch, t, mode));
                let counts = run_in_halves(chunk, row, &self.elements, &mut exec).map_err(|m| {
                    Self::error(format!(
                        "a device batch failed, and again at one row of one image: {m}; \
                         `--backend cpu` counts without the device"
                    ))
                })?;
                for (tile, c) in chunk.iter().zip(counts) {
                    totals[tile.sample].add(&c);
                }
                at += chunk.len();
            }
        }
        Ok(totals.into_iter().map(Totals::finish).collect())
    }
}

/// Counts tiles of one shape with `exec`; when it fails (the device ran
/// out of memory, or panicked) retries in halves (of the tiles, then of a
/// tile's rows) down to one row of one image, and lowers `budget` (elements
/// per batch) below the failed batch for later ones. A failure at one row
/// is the error: no count is ever taken from a failed batch.
fn run_in_halves(
    tiles: &[Tile],
    row_elements: u64,
    budget: &AtomicU64,
    exec: &mut impl FnMut(&[Tile]) -> Result<Vec<Totals>, String>,
) -> Result<Vec<Totals>, String> {
    let message = match exec(tiles) {
        Ok(counts) => return Ok(counts),
        Err(message) => message,
    };
    let failed = tiles.iter().map(|t| t.rows as u64).sum::<u64>() * row_elements;
    let _ = budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
        Some(v.min(failed / 2).max(1))
    });
    match tiles {
        [] | [Tile { rows: 0 | 1, .. }] => Err(message),
        [one] => {
            let top = one.rows / 2;
            let upper = Tile { rows: top, ..*one };
            let lower = Tile {
                row0: one.row0 + top,
                rows: one.rows - top,
                ..*one
            };
            let mut total = Totals::default();
            for half in [upper, lower] {
                for t in run_in_halves(&[half], row_elements, budget, exec)? {
                    total.add(&t);
                }
            }
            Ok(vec![total])
        }
        many => {
            let (a, b) = many.split_at(many.len() / 2);
            let mut out = run_in_halves(a, row_elements, budget, exec)?;
            out.extend(run_in_halves(b, row_elements, budget, exec)?);
            Ok(out)
        }
    }
}

/// The same checks as the CPU scorer: a caller's mistake is an error.
fn check(s: &Sample<'_>) -> Result<(), ScoreError> {
    let t = &s.truth;
    let hw = t.height * t.width;
    let pred = match s.pred {
        Pred::Planes(p) => p.len(),
        Pred::Scores(v) => v.len(),
    };
    if t.planes.len() != t.classes * hw || t.excluded.len() != hw || pred != t.classes * hw {
        return Err(GpuScorer::error(format!(
            "sample buffers hold {} truth, {} excluded and {pred} prediction values; \
             expected C x H x W = {} x {} x {}",
            t.planes.len(),
            t.excluded.len(),
            t.classes,
            t.height,
            t.width
        )));
    }
    Ok(())
}

/// Tiles of one shape stack into one `[B, C, rows, W]` tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Shape {
    classes: usize,
    rows: usize,
    width: usize,
}

impl Shape {
    fn elements(&self) -> u64 {
        (self.classes * self.rows * self.width).max(1) as u64
    }
}

/// Rows `row0..row0 + rows` of one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tile {
    sample: usize,
    row0: usize,
    rows: usize,
}

/// Counts of one image (or band) per class, and its valid pixels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Totals {
    valid: u64,
    /// `[tp, fp, fn]` per class.
    classes: Vec<[u64; 3]>,
}

impl Totals {
    fn new(classes: usize) -> Self {
        Self {
            valid: 0,
            classes: vec![[0; 3]; classes],
        }
    }

    fn add(&mut self, o: &Totals) {
        self.valid += o.valid;
        if self.classes.len() < o.classes.len() {
            self.classes.resize(o.classes.len(), [0; 3]);
        }
        for (a, b) in self.classes.iter_mut().zip(&o.classes) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
    }

    fn finish(self) -> Confusion {
        let valid = self.valid;
        Confusion {
            valid,
            classes: self
                .classes
                .into_iter()
                .map(|[tp, fp, fn_]| ClassCounts::from_valid(tp, fp, fn_, valid))
                .collect(),
        }
    }
}

/// How predictions become classes on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `key > threshold key`; for planes the key is 0 or 1 and the
    /// threshold key 0.
    Above(i32),
    Argmax,
}

impl Mode {
    fn of(decision: Decision) -> Self {
        match decision {
            // A NaN threshold: nothing is greater, as on the CPU.
            Decision::Above(t) if t.is_nan() => Self::Above(i32::MAX),
            Decision::Above(t) => Self::Above(key(t)),
            Decision::Argmax => Self::Argmax,
        }
    }
}

/// An `i32` whose order is the order of `f32` values: `a > b` exactly when
/// `key(a) > key(b)`, for any non-NaN floats (-0 and +0 are equal, as in
/// f32). The bits of a negative float count down, so they are flipped.
pub(crate) fn key(x: f32) -> i32 {
    let bits = (x + 0.0).to_bits() as i32; // -0.0 + 0.0 is +0.0
    bits ^ ((bits >> 31) & i32::MAX)
}

/// The key a score travels as. `Above`: NaN is below every key, so it is
/// never positive (a NaN is not greater than anything). `Argmax`: NaN is
/// above every key (+inf included), and the first one wins, as numpy's.
fn score_key(x: f32, mode: Mode) -> i32 {
    match (x.is_nan(), mode) {
        (false, _) => key(x),
        (true, Mode::Above(_)) => i32::MIN,
        (true, Mode::Argmax) => i32::MAX,
    }
}

/// Truth cell values: 0 negative, 1 positive, 2 excluded (counts nowhere).
const EXCLUDED: i32 = 2;

/// Uploads the tiles, decides and counts on the device, reads back
/// `[tp, fp, fn, valid]` per tile and class.
fn device_counts(
    device: &Device,
    batch: &[Sample<'_>],
    tiles: &[Tile],
    mode: Mode,
) -> Result<Vec<Totals>, String> {
    let s0 = &batch[tiles[0].sample].truth;
    let (b, c, h, w) = (tiles.len(), s0.classes, tiles[0].rows, s0.width);
    let n = b * c * h * w;
    // Host side, in parallel: one `h x W` plane per (tile, class).
    let (mut cells, mut preds) = (vec![0i32; n], vec![0i32; n]);
    let plane = h * w;
    cells
        .par_chunks_mut(plane.max(1))
        .zip(preds.par_chunks_mut(plane.max(1)))
        .enumerate()
        .for_each(|(j, (cell, pred))| {
            let (tile, k) = (&tiles[j / c], j % c);
            let s = &batch[tile.sample];
            let band = tile.row0 * w..(tile.row0 + h) * w;
            let class = k * s.truth.height * w;
            let excluded = &s.truth.excluded[band.clone()];
            let truth = &s.truth.planes[class..][band.clone()];
            for ((o, &t), &e) in cell.iter_mut().zip(truth).zip(excluded) {
                *o = if e != 0 { EXCLUDED } else { i32::from(t != 0) };
            }
            match s.pred {
                Pred::Planes(p) => {
                    for (o, &v) in pred.iter_mut().zip(&p[class..][band]) {
                        *o = i32::from(v != 0);
                    }
                }
                Pred::Scores(v) => {
                    for (o, &x) in pred.iter_mut().zip(&v[class..][band]) {
                        *o = score_key(x, mode);
                    }
                }
            }
        });
    let planes = matches!(batch[tiles[0].sample].pred, Pred::Planes(_));
    let cells = Tensor::<4, Int>::from_data(TensorData::new(cells, [b, c, h, w]), device);
    let preds = Tensor::<4, Int>::from_data(TensorData::new(preds, [b, c, h, w]), device);
    let positive: Tensor<4, Bool> = match (planes, mode) {
        (true, _) => preds.greater_elem(0),
        (false, Mode::Above(t)) => preds.greater_elem(t),
        (false, Mode::Argmax) => {
            let best = argmax(preds, device);
            let classes = Tensor::<1, Int>::arange(0..c as i64, device).reshape([1, c, 1, 1]);
            best.expand([b, c, h, w])
                .equal(classes.expand([b, c, h, w]))
        }
    };
    let truth = cells.clone().equal_elem(1);
    let negative = cells.clone().equal_elem(0);
    let valid = cells.lower_elem(EXCLUDED);
    let sum = |m: Tensor<4, Bool>| m.int().sum_dims(&[2, 3]).reshape([b, c]);
    let tp = sum(truth.clone().bool_and(positive.clone()));
    let fp = sum(negative.bool_and(positive.clone()));
    let fn_ = sum(truth.bool_and(positive.bool_not()));
    let valid = sum(valid);
    let out = Tensor::stack::<3>(vec![tp, fp, fn_, valid], 0)
        .try_into_vec_as::<i64>()
        .map_err(|e| one_line(&e.to_string()))?;
    if out.len() != 4 * b * c {
        return Err(format!(
            "read back {} counts; expected {}",
            out.len(),
            4 * b * c
        ));
    }
    let at = |what: usize, i: usize, k: usize| -> Result<u64, String> {
        u64::try_from(out[(what * b + i) * c + k])
            .map_err(|_| format!("read back a negative count {}", out[(what * b + i) * c + k]))
    };
    (0..b)
        .map(|i| {
            let mut t = Totals::new(c);
            for k in 0..c {
                t.classes[k] = [at(0, i, k)?, at(1, i, k)?, at(2, i, k)?];
            }
            // Every class plane sees the same valid pixels.
            t.valid = at(3, i, 0)?;
            Ok(t)
        })
        .collect()
}

/// Per pixel, the class of the largest key `[B, 1, h, W]`: a later class
/// wins only when strictly larger, so ties go to the lowest class and the
/// first NaN key (`i32::MAX`) wins, as in [`super::cpu`].
fn argmax(keys: Tensor<4, Int>, device: &Device) -> Tensor<4, Int> {
    let [b, c, h, w] = keys.dims();
    let mut best_key = keys.clone().slice([0..b, 0..1, 0..h, 0..w]);
    let mut best = Tensor::<4, Int>::zeros([b, 1, h, w], device);
    for k in 1..c {
        let x = keys.clone().slice([0..b, k..k + 1, 0..h, 0..w]);
        let wins = x.clone().greater(best_key.clone());
        best_key = best_key.mask_where(wins.clone(), x);
        best = best.mask_fill(wins, k as i32);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::Truth;
    use crate::score::cpu::CpuScorer;

    const SPECIAL: [f32; 16] = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MAX,
        f32::MIN,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        1e-45,
        -1e-45,
        1e-40,
        3.4e38,
        -2.5,
    ];

    #[test]
    fn keys_order_like_f32_including_zeros_subnormals_and_infinities() {
        let mut all: Vec<f32> = SPECIAL.to_vec();
        all.extend(SPECIAL.iter().map(|x| x.next_up()));
        all.extend(SPECIAL.iter().map(|x| x.next_down()));
        for &a in &all {
            for &b in &all {
                assert_eq!(key(a) > key(b), a > b, "{a:e} vs {b:e}");
                assert_eq!(key(a) == key(b), a == b, "{a:e} vs {b:e}");
            }
        }
    }

    #[test]
    fn nan_is_below_every_key_for_thresholds_and_above_for_argmax() {
        let t = Mode::of(Decision::Above(f32::NEG_INFINITY));
        let Mode::Above(tk) = t else { unreachable!() };
        assert!(score_key(f32::NAN, t) <= tk);
        assert!(score_key(-f32::NAN, t) <= tk);
        assert!(score_key(f32::INFINITY, Mode::Argmax) < score_key(f32::NAN, Mode::Argmax));
        // A NaN threshold: no key is greater.
        let Mode::Above(nan) = Mode::of(Decision::Above(f32::NAN)) else {
            unreachable!()
        };
        assert!(SPECIAL.iter().all(|&x| key(x) <= nan));
    }

    fn tile(sample: usize, rows: usize) -> Tile {
        Tile {
            sample,
            row0: 0,
            rows,
        }
    }

    /// A fake device that fails above `max` rows per batch and otherwise
    /// counts one valid pixel per row.
    fn fake(
        max: usize,
        calls: &mut Vec<usize>,
    ) -> impl FnMut(&[Tile]) -> Result<Vec<Totals>, String> + '_ {
        move |tiles: &[Tile]| {
            let rows: usize = tiles.iter().map(|t| t.rows).sum();
            calls.push(rows);
            if rows > max {
                return Err("out of memory".to_string());
            }
            Ok(tiles
                .iter()
                .map(|t| Totals {
                    valid: t.rows as u64,
                    classes: vec![[t.rows as u64, 0, 0]],
                })
                .collect())
        }
    }

    #[test]
    fn out_of_memory_retries_in_halves_and_lowers_the_budget() {
        let tiles = [tile(0, 8), tile(1, 8), tile(2, 3)];
        let budget = AtomicU64::new(1000);
        let mut calls = Vec::new();
        let got = run_in_halves(&tiles, 10, &budget, &mut fake(5, &mut calls)).unwrap();
        let rows: Vec<u64> = got.iter().map(|t| t.valid).collect();
        assert_eq!(rows, [8, 8, 3], "one result per tile, halves summed");
        assert_eq!(got[0].classes, vec![[8, 0, 0]]);
        assert!(budget.load(Ordering::Relaxed) <= 40, "{budget:?}");
        assert_eq!(calls[0], 19);
    }

    #[test]
    fn a_device_that_always_fails_is_an_error_not_a_count() {
        let budget = AtomicU64::new(1000);
        let mut calls = Vec::new();
        let e = run_in_halves(
            &[tile(0, 4), tile(1, 4)],
            1,
            &budget,
            &mut fake(0, &mut calls),
        );
        assert_eq!(e.unwrap_err(), "out of memory");
        // 8 rows, then 4, then 2, then 1: it gives up at one row.
        assert_eq!(calls, [8, 4, 2, 1]);
    }

    #[test]
    fn a_panic_becomes_an_error() {
        let r: Result<(), String> = guarded(|| panic!("wgpu said no"));
        assert_eq!(r.unwrap_err(), "the device panicked: wgpu said no");
    }

    /// Images of several sizes; a tiny budget splits them into bands of a
    /// few rows and batches of one or two bands.
    #[test]
    fn tiny_budgets_split_images_into_bands_with_the_same_counts() {
        let sizes = [(7usize, 5usize), (1, 9), (13, 4), (7, 5)];
        let c = 3;
        let mut state = 11u32;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        type Generated = (usize, usize, Vec<u8>, Vec<u8>, Vec<f32>);
        let data: Vec<Generated> = sizes
            .iter()
            .map(|&(h, w)| {
                let planes = (0..c * h * w).map(|_| (next() % 2) as u8).collect();
                let excluded = (0..h * w)
                    .map(|_| u8::from(next().is_multiple_of(5)))
                    .collect();
                let scores = (0..c * h * w)
                    .map(|_| SPECIAL[next() as usize % SPECIAL.len()])
                    .collect();
                (h, w, planes, excluded, scores)
            })
            .collect();
        let samples: Vec<Sample<'_>> = data
            .iter()
            .map(|(h, w, p, e, s)| Sample {
                truth: Truth {
                    classes: c,
                    height: *h,
                    width: *w,
                    planes: p,
                    excluded: e,
                },
                pred: Pred::Scores(s),
            })
            .collect();
        for budget in [1, 40 * DEVICE_BYTES_PER_ELEMENT, 1 << 20] {
            let (gpu, notes) = GpuScorer::with_budget(&GpuOptions::default(), budget, true)
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(notes[0].starts_with("gpu: adapter `"), "{notes:?}");
            for d in [
                Decision::Above(0.0),
                Decision::Above(-0.0),
                Decision::Argmax,
            ] {
                assert_eq!(
                    gpu.count(&samples, d).unwrap(),
                    CpuScorer.count(&samples, d).unwrap(),
                    "budget {budget}, {d:?}"
                );
            }
        }
    }
}

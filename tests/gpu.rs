//! The GPU scorer (cargo feature `gpu`) against the CPU reference: equal
//! counts, image for image, on generated data full of edge cases (scores
//! exactly at the threshold, NaN, infinities, signed zeros, subnormals,
//! argmax ties, ignored pixels, images of different sizes, tiny batches)
//! and on the fixtures through the built binary.
//!
//! These run the real device path: on a machine without a GPU, Mesa's
//! lavapipe (`apt-get install -y mesa-vulkan-drivers libvulkan1`). Without
//! any adapter they fail, with that hint; they never pass by skipping.
#![cfg(feature = "gpu")]

use std::path::{Path, PathBuf};
use std::process::Output;

use maskprep::score::cpu::CpuScorer;
use maskprep::score::{Backend, Decision, GpuOptions, Pred, Sample, Scorer, Truth, select};
use maskprep::tensors::{TensorOut, npy_bytes};
use serde_json::Value;

mod common;
use common::{code, fixture, maskprep_env, stderr, stdout};

const HINT: &str = "the GPU tests need a wgpu adapter; on a machine without a GPU install \
                    Mesa's CPU Vulkan driver: `apt-get install -y mesa-vulkan-drivers libvulkan1`";

fn gpu(batch: Option<usize>) -> Box<dyn Scorer> {
    match select(
        Backend::Gpu,
        &GpuOptions {
            batch,
            verbose: false,
        },
    ) {
        Ok((scorer, _)) => scorer,
        Err(e) => panic!("{e}\n{HINT}"),
    }
}

/// splitmix64: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len() as u64) as usize]
    }
}

/// Scores that catch every way a device comparison could differ.
fn edge_scores(t: f32) -> Vec<f32> {
    vec![
        t,
        t.next_up(),
        t.next_down(),
        0.0,
        -0.0,
        f32::NAN,
        -f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MAX,
        f32::MIN,
        f32::MIN_POSITIVE,
        f32::from_bits(1),
        -f32::from_bits(1),
        f32::from_bits(0x007F_FFFF),
        0.5,
        1.0,
        -1.0,
    ]
}

/// One generated image: truth planes, excluded pixels, and a prediction.
struct Image {
    c: usize,
    h: usize,
    w: usize,
    planes: Vec<u8>,
    excluded: Vec<u8>,
    scores: Vec<f32>,
    pred_planes: Vec<u8>,
}

impl Image {
    fn new(rng: &mut Rng, c: usize, h: usize, w: usize, special: &[f32]) -> Self {
        let hw = h * w;
        // Truth planes are sometimes 1 on excluded pixels: they must still
        // count nowhere.
        let planes = (0..c * hw).map(|_| u8::from(rng.below(3) == 0)).collect();
        let excluded = (0..hw).map(|_| u8::from(rng.below(8) == 0)).collect();
        let scores = (0..c * hw)
            .map(|_| match rng.below(3) {
                0 => rng.pick(special),
                _ => (rng.below(2001) as f32 - 1000.0) / 250.0,
            })
            .collect();
        let pred_planes = (0..c * hw)
            .map(|_| rng.pick(&[0u8, 0, 1, 2, 255]))
            .collect();
        Self {
            c,
            h,
            w,
            planes,
            excluded,
            scores,
            pred_planes,
        }
    }

    fn sample(&self, planes: bool) -> Sample<'_> {
        Sample {
            truth: Truth {
                classes: self.c,
                height: self.h,
                width: self.w,
                planes: &self.planes,
                excluded: &self.excluded,
            },
            pred: if planes {
                Pred::Planes(&self.pred_planes)
            } else {
                Pred::Scores(&self.scores)
            },
        }
    }
}

/// Sizes that differ in height, width and both, some repeated (so they
/// batch together), with one- and zero-class-free edge shapes.
const SIZES: [(usize, usize); 9] = [
    (1, 1),
    (3, 5),
    (17, 9),
    (64, 48),
    (5, 3),
    (17, 9),
    (1, 130),
    (130, 1),
    (17, 9),
];

fn images(seed: u64, c: usize, special: &[f32]) -> Vec<Image> {
    let mut rng = Rng(seed);
    SIZES
        .iter()
        .map(|&(h, w)| Image::new(&mut rng, c, h, w, special))
        .collect()
}

fn assert_same(images: &[Image], planes: bool, decision: Decision, scorer: &dyn Scorer) {
    let samples: Vec<Sample<'_>> = images.iter().map(|i| i.sample(planes)).collect();
    let want = CpuScorer.count(&samples, decision).unwrap();
    let got = scorer.count(&samples, decision).unwrap();
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let (h, wd) = (images[i].h, images[i].w);
        assert_eq!(g, w, "image {i} ({h}x{wd}), {decision:?}, planes: {planes}");
    }
}

#[test]
fn gpu_counts_equal_cpu_above_threshold_with_ties_nan_inf_and_ignored_pixels() {
    let scorer = gpu(None);
    for (seed, t) in [0.0f32, 0.5, -0.0, -3.25, 1e-40, f32::MAX, f32::MIN]
        .into_iter()
        .enumerate()
    {
        for c in [1, 3, 5] {
            let imgs = images(seed as u64 * 10 + c as u64, c, &edge_scores(t));
            assert_same(&imgs, false, Decision::Above(t), scorer.as_ref());
        }
    }
    // A NaN threshold: nothing is greater, on either backend.
    let imgs = images(99, 2, &edge_scores(0.0));
    assert_same(&imgs, false, Decision::Above(f32::NAN), scorer.as_ref());
}

#[test]
fn gpu_counts_equal_cpu_argmax_with_ties_and_nan() {
    let scorer = gpu(None);
    // Few distinct values, so most pixels hold ties; NaN and +inf compete.
    let special = [
        0.0,
        -0.0,
        1.0,
        1.0,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::from_bits(1),
    ];
    for c in [1, 2, 3, 6] {
        let mut imgs = images(1000 + c as u64, c, &special);
        let mut rng = Rng(c as u64);
        for img in &mut imgs {
            for v in &mut img.scores {
                if rng.below(2) == 0 {
                    *v = rng.pick(&special);
                }
            }
        }
        assert_same(&imgs, false, Decision::Argmax, scorer.as_ref());
    }
}

#[test]
fn gpu_counts_equal_cpu_on_predicted_planes() {
    let scorer = gpu(None);
    for c in [1, 4] {
        let imgs = images(7 + c as u64, c, &[0.0]);
        // `Decision` does not apply to planes: both must ignore it.
        assert_same(&imgs, true, Decision::Above(0.0), scorer.as_ref());
        assert_same(&imgs, true, Decision::Argmax, scorer.as_ref());
    }
}

#[test]
fn gpu_batches_of_any_size_give_the_same_counts() {
    let imgs = images(42, 3, &edge_scores(0.0));
    for batch in [1, 2, 3, 100] {
        let scorer = gpu(Some(batch));
        assert_same(&imgs, false, Decision::Above(0.0), scorer.as_ref());
        assert_same(&imgs, false, Decision::Argmax, scorer.as_ref());
    }
}

#[test]
fn gpu_scorer_rejects_wrong_buffer_lengths_like_the_cpu() {
    let scorer = gpu(None);
    let s = Sample {
        truth: Truth {
            classes: 2,
            height: 1,
            width: 2,
            planes: &[0, 1, 1, 0],
            excluded: &[0, 0],
        },
        pred: Pred::Scores(&[0.0; 3]),
    };
    let e = scorer.count(&[s], Decision::Argmax).unwrap_err();
    assert!(e.to_string().contains("expected C x H x W"), "{e}");
}

// ---- the binary -------------------------------------------------------

/// Runs maskprep with a private `XDG_RUNTIME_DIR` (Mesa warns without one).
fn run(args: &[&str]) -> Output {
    let xdg = tempfile::tempdir().unwrap();
    maskprep_env(args, &[("XDG_RUNTIME_DIR", xdg.path().to_str().unwrap())])
}

/// `score --json` with `extra`; the document without its `backend`, the
/// per-image CSV and stderr.
fn score(
    truth: &Path,
    pred: &Path,
    labels: Option<&Path>,
    extra: &[&str],
) -> (Value, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let rows = dir.path().join("rows.csv");
    let mut args = vec![
        "score",
        "--truth",
        truth.to_str().unwrap(),
        "--pred",
        pred.to_str().unwrap(),
        "--json",
        "--per-image",
        rows.to_str().unwrap(),
    ];
    if let Some(l) = labels {
        args.extend(["--labels", l.to_str().unwrap()]);
    }
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(
        code(&o) <= 1,
        "{args:?}: exit {}\n{}\n{HINT}",
        code(&o),
        stderr(&o)
    );
    let mut v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", stdout(&o), stderr(&o)));
    let backend = v.as_object_mut().unwrap().remove("backend").unwrap();
    let csv = std::fs::read_to_string(&rows).unwrap();
    (v, csv, format!("backend {backend}\n{}", stderr(&o)))
}

/// The same document and per-image rows from `--backend cpu` and
/// `--backend gpu` (plus `extra`), and the GPU run said which adapter.
fn assert_backends_agree(truth: &Path, pred: &Path, labels: Option<&Path>, extra: &[&str]) {
    let cpu = score(
        truth,
        pred,
        labels,
        &[&["--backend", "cpu"], extra].concat(),
    );
    let gpu = score(
        truth,
        pred,
        labels,
        &[&["--backend", "gpu"], extra].concat(),
    );
    assert_eq!(
        gpu.0,
        cpu.0,
        "JSON differs for {} {extra:?}\n{}",
        pred.display(),
        gpu.2
    );
    assert_eq!(
        gpu.1,
        cpu.1,
        "per-image rows differ for {} {extra:?}",
        pred.display()
    );
    assert!(gpu.2.contains("backend \"gpu"), "{}", gpu.2);
    assert!(gpu.2.contains("gpu: adapter `"), "{}", gpu.2);
}

/// A raw PNG (8-bit RGB, gray or palette indices): its pixels, bytes per
/// pixel, size, colour type and palette.
struct Raw {
    data: Vec<u8>,
    bpp: usize,
    w: u32,
    h: u32,
    color: png::ColorType,
    palette: Option<Vec<u8>>,
}

fn read_png(path: &Path) -> Raw {
    let mut dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    dec.set_transformations(png::Transformations::IDENTITY);
    let mut r = dec.read_info().unwrap();
    let mut data = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut data).unwrap();
    data.truncate(info.buffer_size());
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let palette = r.info().palette.as_ref().map(|p| p.to_vec());
    Raw {
        bpp: info.color_type.samples(),
        data,
        w: info.width,
        h: info.height,
        color: info.color_type,
        palette,
    }
}

fn write_png(path: &Path, raw: &Raw) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, raw.w, raw.h);
    enc.set_color(raw.color);
    enc.set_depth(png::BitDepth::Eight);
    if let Some(p) = &raw.palette {
        enc.set_palette(p.clone());
    }
    enc.write_header()
        .unwrap()
        .write_image_data(&raw.data)
        .unwrap();
    std::fs::write(path, out).unwrap();
}

fn pngs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    v.sort();
    v
}

/// A copy of `masks` where about one pixel in five takes the code of
/// another pixel (ignore and undeclared codes included).
fn perturbed(masks: &Path, out: &Path, seed: u64) {
    let mut rng = Rng(seed);
    for p in pngs(masks) {
        let mut raw = read_png(&p);
        let n = raw.data.len() / raw.bpp;
        for i in 0..n {
            if rng.below(5) == 0 {
                let j = rng.below(n as u64) as usize;
                let px: Vec<u8> = raw.data[j * raw.bpp..(j + 1) * raw.bpp].to_vec();
                raw.data[i * raw.bpp..(i + 1) * raw.bpp].copy_from_slice(&px);
            }
        }
        write_png(&out.join(p.file_name().unwrap()), &raw);
    }
}

#[test]
fn score_binary_gpu_equals_cpu_on_fixture_masks_and_perturbed_copies() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, masks, labels) in [
        (
            "plates",
            fixture("plates/masks"),
            Some(fixture("plates/labels.toml")),
        ),
        (
            "palette",
            fixture("palette"),
            Some(fixture("palette/labels.toml")),
        ),
        ("index", fixture("index/p"), None),
    ] {
        let labels = labels.as_deref();
        assert_backends_agree(&masks, &masks, labels, &[]);
        let copy = tmp.path().join(name);
        perturbed(&masks, &copy, name.len() as u64);
        assert_backends_agree(&masks, &copy, labels, &[]);
        assert_backends_agree(&masks, &copy, labels, &["--gpu-batch", "1"]);
    }
}

/// Index masks of different sizes (ignore 255, undeclared 7) and logits
/// `.npy [3,H,W]` full of edge values.
fn logits_dataset(dir: &Path) {
    std::fs::create_dir_all(dir.join("truth")).unwrap();
    std::fs::create_dir_all(dir.join("logits")).unwrap();
    std::fs::write(
        dir.join("labels.toml"),
        "kind = \"index\"\nclasses = [\"a\", \"b\", \"c\"]\nignore = [255]\n",
    )
    .unwrap();
    let mut rng = Rng(5);
    let special = edge_scores(0.0);
    for (i, (h, w)) in [(48, 64), (9, 17), (48, 64), (1, 3), (31, 7), (9, 17)]
        .into_iter()
        .enumerate()
    {
        let data: Vec<u8> = (0..h * w)
            .map(|_| rng.pick(&[0, 1, 2, 2, 255, 7]))
            .collect();
        let raw = Raw {
            data,
            bpp: 1,
            w: w as u32,
            h: h as u32,
            color: png::ColorType::Grayscale,
            palette: None,
        };
        write_png(&dir.join(format!("truth/{i:03}.png")), &raw);
        let v: Vec<f32> = (0..3 * h * w)
            .map(|_| match rng.below(3) {
                0 => rng.pick(&special),
                _ => (rng.below(801) as f32 - 400.0) / 100.0,
            })
            .collect();
        std::fs::write(
            dir.join(format!("logits/{i:03}.npy")),
            npy_bytes(&TensorOut::f32(vec![3, h, w], &v)),
        )
        .unwrap();
    }
}

#[test]
fn score_binary_gpu_equals_cpu_on_logits_of_different_sizes() {
    let tmp = tempfile::tempdir().unwrap();
    logits_dataset(tmp.path());
    let (truth, logits, labels) = (
        tmp.path().join("truth"),
        tmp.path().join("logits"),
        tmp.path().join("labels.toml"),
    );
    for extra in [
        &[][..],
        &["--threshold", "0.25"],
        &["--argmax"],
        &["--gpu-batch", "1"],
        &["--gpu-batch", "2", "--argmax"],
        &["--pred-kind", "probs"],
    ] {
        assert_backends_agree(&truth, &logits, Some(&labels), extra);
    }
}

/// Runs maskprep with Mesa's lavapipe as the only Vulkan driver and no GL
/// vendor (the machine CI has: a CPU adapter, no GPU), and without
/// `XDG_RUNTIME_DIR` (what window-system libraries complain about).
#[cfg(target_os = "linux")]
fn run_lavapipe_only(args: &[&str]) -> Output {
    let icd = std::fs::read_dir("/usr/share/vulkan/icd.d")
        .ok()
        .and_then(|d| {
            d.flatten().map(|e| e.path()).find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("lvp_icd"))
            })
        })
        .unwrap_or_else(|| panic!("no lavapipe driver in /usr/share/vulkan/icd.d\n{HINT}"));
    std::process::Command::new(env!("CARGO_BIN_EXE_maskprep"))
        .args(args)
        .env("VK_ICD_FILENAMES", &icd)
        .env("VK_DRIVER_FILES", &icd)
        .env("__EGL_VENDOR_LIBRARY_FILENAMES", "/nonexistent")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("DISPLAY")
        .output()
        .expect("run maskprep")
}

/// With only a CPU adapter (lavapipe), `auto` counts on the CPU and names
/// the adapter it skipped and why; `--backend gpu` still runs on it, and
/// `--verbose` lists it. Nothing the window-system libraries print while
/// the adapters are probed reaches stderr.
#[cfg(target_os = "linux")]
#[test]
fn auto_skips_a_cpu_adapter_and_gpu_still_uses_it() {
    let tmp = tempfile::tempdir().unwrap();
    logits_dataset(tmp.path());
    let d = |p: &str| tmp.path().join(p).to_str().unwrap().to_string();
    let (truth, logits, labels) = (d("truth"), d("logits"), d("labels.toml"));
    let base = [
        "score", "--truth", &truth, "--pred", &logits, "--labels", &labels, "--json",
    ];
    let o = run_lavapipe_only(&base);
    let e = stderr(&o);
    assert_eq!(code(&o), 0, "{e}\n{HINT}");
    assert!(
        e.contains("backend: auto chose cpu (skipped adapter `"),
        "{e}"
    );
    assert!(e.contains("(Cpu, Vulkan"), "{e}");
    assert!(e.contains("device type Cpu"), "{e}");
    assert!(e.contains("`--backend gpu` uses it anyway"), "{e}");
    assert!(!e.contains("XDG_RUNTIME_DIR"), "{e}");
    assert!(!e.contains("panicked"), "{e}");
    let auto: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(auto["backend"], "cpu");

    let o = run_lavapipe_only(&[&base[..], &["--backend", "gpu", "--verbose"]].concat());
    let e = stderr(&o);
    assert_eq!(code(&o), 0, "{e}\n{HINT}");
    assert!(e.contains("gpu: adapter `"), "{e}");
    assert!(e.contains("(Cpu, Vulkan"), "{e}");
    assert!(e.contains("gpu: adapter 0 found: `"), "{e}");
    assert!(!e.contains("XDG_RUNTIME_DIR"), "{e}");
    let mut gpu: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(gpu["backend"], "gpu");
    // The same numbers either way.
    let mut auto = auto;
    auto.as_object_mut().unwrap().remove("backend");
    gpu.as_object_mut().unwrap().remove("backend");
    assert_eq!(auto, gpu);

    // Masks stay on the CPU's joint histogram with `auto`.
    let masks = fixture("plates/masks");
    let m = masks.to_str().unwrap();
    let o = run(&["score", "--truth", m, "--pred", m, "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["backend"], "cpu (joint histogram)");
}

/// Mesa's drivers hidden: `gpu` is a clear error, `auto` falls back to the
/// CPU and says why; neither shows a panic.
#[cfg(target_os = "linux")]
#[test]
fn without_an_adapter_gpu_is_a_clear_error_and_auto_falls_back_to_cpu() {
    let tmp = tempfile::tempdir().unwrap();
    logits_dataset(tmp.path());
    let d = |p: &str| tmp.path().join(p).to_str().unwrap().to_string();
    let (truth, logits, labels) = (d("truth"), d("logits"), d("labels.toml"));
    let hidden = [
        ("XDG_RUNTIME_DIR", tmp.path().to_str().unwrap()),
        ("VK_ICD_FILENAMES", "/nonexistent"),
        ("VK_DRIVER_FILES", "/nonexistent"),
        ("__EGL_VENDOR_LIBRARY_FILENAMES", "/nonexistent"),
    ];
    let base = [
        "score", "--truth", &truth, "--pred", &logits, "--labels", &labels,
    ];
    let o = maskprep_env(&[&base[..], &["--backend", "gpu"]].concat(), &hidden);
    let e = stderr(&o);
    assert_eq!(code(&o), 2, "{e}");
    assert!(e.contains("no usable GPU adapter"), "{e}");
    assert!(e.contains("--backend cpu"), "{e}");
    assert!(!e.contains("panicked"), "{e}");
    let o = maskprep_env(&[&base[..], &["--json"]].concat(), &hidden);
    let e = stderr(&o);
    assert_eq!(code(&o), 0, "{e}");
    assert!(
        e.contains("backend: auto chose cpu (no usable GPU adapter"),
        "{e}"
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["backend"], "cpu");
}

/// `--sweep` on the GPU backend: the whole document, sweep curves and
/// picked thresholds included, equals the CPU's.
#[test]
fn sweep_on_the_gpu_backend_equals_the_cpu() {
    let tmp = tempfile::tempdir().unwrap();
    logits_dataset(tmp.path());
    let (truth, logits, labels) = (
        tmp.path().join("truth"),
        tmp.path().join("logits"),
        tmp.path().join("labels.toml"),
    );
    let out = tmp.path().join("thresholds");
    let out = out.to_str().unwrap();
    for extra in [
        &["--sweep", "--sweep-out", out][..],
        &["--sweep-bins", "7", "--gpu-batch", "2", "--sweep-out", out],
    ] {
        assert_backends_agree(&truth, &logits, Some(&labels), extra);
    }
}

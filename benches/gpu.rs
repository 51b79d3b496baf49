//! `cargo bench --features gpu --bench gpu`: GPU vs CPU scoring of the same
//! logits, counts checked equal.
//!
//! Generates (once, under `target/bench-data/`) index truth masks and
//! logits `.npy [C,H,W]`, then times, page cache warm:
//! - count only: `Scorer::count` on samples already in memory (the device
//!   work, uploads and read-backs included, against the CPU's pass);
//! - scan: the whole pass over the files (decode truth and `.npy`, count),
//!   where the GPU path decodes the next batch while the device counts.
//!
//! Prints the median of the runs. `MASKPREP_BENCH_N` (default 64 images),
//! `MASKPREP_BENCH_SIDE` (256), `MASKPREP_BENCH_C` (8) and
//! `MASKPREP_BENCH_RUNS` (5) change the size. On a machine without a GPU
//! wgpu runs on Mesa's lavapipe (the CPU): expect it to be slower; the
//! point there is that the counts agree.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use maskprep::dataset::prepare;
use maskprep::score::cpu::CpuScorer;
use maskprep::score::pairs::{self, PredFile};
use maskprep::score::scan::{ScanOptions, scan};
use maskprep::score::{
    Backend, Confusion, Decision, EmptyAs, GpuOptions, Pred, Sample, Scorer, Truth, select,
};
use maskprep::source::Partition;
use maskprep::tensors::{TensorOut, npy_bytes};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// splitmix64.
fn rng(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Truth: index masks of `c` classes in horizontal stripes with an ignored
/// border; logits: +2 on the truth class, noise elsewhere.
fn generate(root: &Path, n: usize, side: usize, c: usize) {
    let done = root.join("done");
    if done.exists() {
        return;
    }
    std::fs::create_dir_all(root.join("truth")).expect("mkdir");
    std::fs::create_dir_all(root.join("logits")).expect("mkdir");
    let labels: Vec<String> = (0..c).map(|k| format!("\"c{k}\"")).collect();
    std::fs::write(
        root.join("labels.toml"),
        format!(
            "kind = \"index\"\nclasses = [{}]\nignore = [255]\n",
            labels.join(", ")
        ),
    )
    .expect("labels");
    let mut s = 1u64;
    for i in 0..n {
        let mut mask = vec![0u8; side * side];
        for (p, m) in mask.iter_mut().enumerate() {
            let (y, x) = (p / side, p % side);
            *m = if y < 2 || x < 2 {
                255
            } else {
                ((y * c / side + i) % c) as u8
            };
        }
        let mut png = Vec::new();
        let mut enc = png::Encoder::new(&mut png, side as u32, side as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header()
            .and_then(|mut w| w.write_image_data(&mask))
            .expect("png");
        std::fs::write(root.join(format!("truth/{i:05}.png")), png).expect("write");
        let mut v = vec![0f32; c * side * side];
        for k in 0..c {
            for (p, &m) in mask.iter().enumerate() {
                let noise = (rng(&mut s) % 1000) as f32 / 250.0 - 2.5;
                v[k * side * side + p] = if usize::from(m) == k { 2.0 } else { 0.0 } + noise;
            }
        }
        std::fs::write(
            root.join(format!("logits/{i:05}.npy")),
            npy_bytes(&TensorOut::f32(vec![c, side, side], &v)),
        )
        .expect("write");
    }
    std::fs::write(done, "").expect("write");
}

fn main() {
    let n = env("MASKPREP_BENCH_N", 64);
    let side = env("MASKPREP_BENCH_SIDE", 256);
    let c = env("MASKPREP_BENCH_C", 8);
    let runs = env("MASKPREP_BENCH_RUNS", 5);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("bench-data")
        .join(format!("gpu-{n}x{c}x{side}"));
    generate(&root, n, side, c);
    let (gpu, notes) = select(Backend::Gpu, &GpuOptions::default())
        .unwrap_or_else(|e| panic!("no GPU adapter: {e}"));
    for note in notes {
        println!("{note}");
    }
    let cpu: Box<dyn Scorer> = Box::new(CpuScorer);
    let truth = root.join("truth");
    let prep = prepare(
        &truth,
        Some(root.join("labels.toml").to_str().expect("utf-8")),
        &Default::default(),
        Partition::WHOLE,
    )
    .expect("prepare");
    let pairing = pairs::pair(&prep.dataset, &root.join("logits")).expect("pairs");
    assert_eq!(pairing.pairs.len(), n);
    let values = (n * c * side * side) as f64;
    println!(
        "{n} images of {c} x {side} x {side} logits ({:.0} MB of f32), {runs} runs, medians",
        values * 4.0 / 1e6
    );

    // Count only: the same samples in memory for both.
    let hw = side * side;
    let mut s = 7u64;
    let planes: Vec<u8> = (0..c * hw)
        .map(|_| u8::from(rng(&mut s).is_multiple_of(4)))
        .collect();
    let excluded: Vec<u8> = (0..hw)
        .map(|_| u8::from(rng(&mut s).is_multiple_of(16)))
        .collect();
    let scores: Vec<Vec<f32>> = (0..16)
        .map(|_| {
            (0..c * hw)
                .map(|_| (rng(&mut s) % 2001) as f32 / 500.0 - 2.0)
                .collect()
        })
        .collect();
    let samples: Vec<Sample<'_>> = scores
        .iter()
        .map(|v| Sample {
            truth: Truth {
                classes: c,
                height: side,
                width: side,
                planes: &planes,
                excluded: &excluded,
            },
            pred: Pred::Scores(v),
        })
        .collect();
    for decision in [Decision::Above(0.0), Decision::Argmax] {
        let mut t = [Vec::new(), Vec::new()];
        let mut out: [Vec<Confusion>; 2] = Default::default();
        for _ in 0..runs {
            for (k, scorer) in [&cpu, &gpu].into_iter().enumerate() {
                let start = Instant::now();
                out[k] = if k == 0 {
                    // The CPU scorer takes one image per call, as the
                    // driver gives it (rayon over images).
                    use rayon::prelude::*;
                    samples
                        .par_iter()
                        .map(|x| {
                            scorer
                                .count(std::slice::from_ref(x), decision)
                                .expect("count")
                                .remove(0)
                        })
                        .collect()
                } else {
                    scorer.count(&samples, decision).expect("count")
                };
                t[k].push(start.elapsed());
            }
        }
        assert_eq!(out[0], out[1], "GPU and CPU counts differ");
        let (tc, tg) = (median(t[0].clone()), median(t[1].clone()));
        let mvals = (samples.len() * c * hw) as f64 / 1e6;
        println!(
            "count only, {decision:?}, {} images: cpu {:.3} s ({:.0} Mvalues/s), gpu {:.3} s ({:.0} Mvalues/s), gpu/cpu {:.2}",
            samples.len(),
            tc.as_secs_f64(),
            mvals / tc.as_secs_f64(),
            tg.as_secs_f64(),
            mvals / tg.as_secs_f64(),
            tg.as_secs_f64() / tc.as_secs_f64()
        );
    }

    // The whole pass over the files.
    let opts = |decision| ScanOptions {
        pred_file: PredFile::Npy,
        decision,
        tensor: String::new(),
        empty_as: EmptyAs::Skip,
        per_image: false,
        strict: true,
        progress: false,
        sweep: None,
    };
    for decision in [Decision::Above(0.0), Decision::Argmax] {
        let mut t = [Vec::new(), Vec::new()];
        let mut totals: [Confusion; 2] = Default::default();
        for _ in 0..runs {
            for (k, scorer) in [&cpu, &gpu].into_iter().enumerate() {
                let start = Instant::now();
                let r = scan(&pairing.pairs, &prep.map, scorer.as_ref(), &opts(decision))
                    .expect("scan");
                t[k].push(start.elapsed());
                totals[k] = r.total;
            }
        }
        assert_eq!(totals[0], totals[1], "GPU and CPU counts differ");
        let (tc, tg) = (median(t[0].clone()), median(t[1].clone()));
        println!(
            "scan (decode + count), {decision:?}: cpu {:.3} s ({:.1} images/s), gpu {:.3} s ({:.1} images/s), gpu/cpu {:.2}",
            tc.as_secs_f64(),
            n as f64 / tc.as_secs_f64(),
            tg.as_secs_f64(),
            n as f64 / tg.as_secs_f64(),
            tg.as_secs_f64() / tc.as_secs_f64()
        );
    }
}

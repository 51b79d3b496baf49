//! `cargo bench --bench sweep`: `score --sweep` against a plain `score` of
//! the same float predictions.
//!
//! Generates (once, under `target/bench-data/`) 8-class index truth masks
//! and float32 `.npy` logits `[8, 256, 256]` that mostly agree with them,
//! then times over the same files, page cache warm:
//! - score: the plain pass (read + decide at 0 + count);
//! - sweep: the same pass also counting 101 probability levels per class.
//!
//! Prints the median of the runs and the ratio (target <= 1.5).
//! `MASKPREP_BENCH_N` (default 1000) and `MASKPREP_BENCH_RUNS` (default 5)
//! change the size.

use std::path::{Path, PathBuf};
use std::time::Instant;

use maskprep::labels::LabelMap;
use maskprep::score::cpu::CpuScorer;
use maskprep::score::pairs::{self, PredFile};
use maskprep::score::scan::{ScanOptions, scan};
use maskprep::score::sweep::Grid;
use maskprep::score::{Decision, EmptyAs, PredKind};
use maskprep::source;
use maskprep::tensors::{TensorOut, npy_bytes};
use rayon::prelude::*;

const CLASSES: usize = 8;
const SIDE: usize = 256;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let n = env("MASKPREP_BENCH_N", 1000);
    let runs = env("MASKPREP_BENCH_RUNS", 5);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("bench-data")
        .join(format!("sweep-{n}x{SIDE}"));
    let (truth, pred) = (root.join("truth"), root.join("pred"));
    generate(&truth, &pred, n);
    let spec = format!(
        "kind = \"index\"\nclasses = [{}]\n",
        (0..CLASSES)
            .map(|c| format!("\"c{c}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let labels = root.join("labels.toml");
    std::fs::write(&labels, spec).expect("labels");
    let map = LabelMap::load(labels.to_str().expect("utf-8")).expect("map");
    let dataset = source::discover(&truth).expect("discover");
    let pairing = pairs::pair(&dataset, &pred).expect("pairs");
    assert_eq!(pairing.pairs.len(), n);
    let opts = |sweep: Option<Grid>| ScanOptions {
        pred_file: PredFile::Npy,
        decision: Decision::Above(0.0),
        tensor: String::new(),
        empty_as: EmptyAs::Skip,
        per_image: false,
        strict: true,
        progress: false,
        sweep,
    };
    let grid = Grid::uniform(100, PredKind::Logits).expect("grid");
    let (plain, swept) = (opts(None), opts(Some(grid)));
    let (mut score_t, mut sweep_t) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        let s = scan(&pairing.pairs, &map, &CpuScorer, &plain).expect("scan");
        score_t.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let w = scan(&pairing.pairs, &map, &CpuScorer, &swept).expect("scan");
        sweep_t.push(t.elapsed().as_secs_f64());
        assert_eq!(s.total, w.total);
        // The sweep at level 0.5 (logit 0) is the plain pass's decision.
        let k = w.sweep.as_ref().expect("sweep");
        for c in 0..CLASSES {
            assert_eq!(k.curve(c)[50], s.total.classes[c]);
        }
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (s, w) = (med(&mut score_t), med(&mut sweep_t));
    let threads = rayon::current_num_threads();
    let mb = (n * CLASSES * SIDE * SIDE * 4) as f64 / 1e6;
    println!(
        "sweep bench: {n} float32 predictions [{CLASSES},{SIDE},{SIDE}] ({mb:.0} MB), {threads} threads, median of {runs}"
    );
    println!(
        "  score          : {s:.3} s  ({:.0} images/s)",
        n as f64 / s
    );
    println!(
        "  score --sweep  : {w:.3} s  ({:.0} images/s), 101 levels",
        n as f64 / w
    );
    println!("  ratio sweep/score: {:.3} (target <= 1.5)", w / s);
}

/// Writes `n` index truth masks (bands of the 8 classes) and logits that
/// agree with them except near band edges and in a noisy corner.
fn generate(truth: &Path, pred: &Path, n: usize) {
    let count = |d: &Path| std::fs::read_dir(d).map(|d| d.count()).unwrap_or(0);
    if count(truth) == n && count(pred) == n {
        return;
    }
    std::fs::create_dir_all(truth).expect("mkdir");
    std::fs::create_dir_all(pred).expect("mkdir");
    (0..n).into_par_iter().for_each(|k| {
        let mut seed = (k as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let band = 16 + (rnd() % 48) as usize;
        let mask: Vec<u8> = (0..SIDE * SIDE)
            .map(|i| (((i / SIDE + i % SIDE / 3) / band) % CLASSES) as u8)
            .collect();
        let mut logits = vec![0f32; CLASSES * SIDE * SIDE];
        for c in 0..CLASSES {
            for i in 0..SIDE * SIDE {
                let noise = (rnd() % 2000) as f32 / 250.0 - 4.0;
                let sign = if mask[i] as usize == c { 2.5 } else { -2.5 };
                logits[c * SIDE * SIDE + i] = sign + noise;
            }
        }
        let mut png_bytes = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut png_bytes, SIDE as u32, SIDE as u32);
            enc.set_color(png::ColorType::Grayscale);
            enc.set_depth(png::BitDepth::Eight);
            let mut w = enc.write_header().expect("header");
            w.write_image_data(&mask).expect("data");
        }
        std::fs::write(truth.join(format!("{k:06}.png")), png_bytes).expect("write");
        let npy = npy_bytes(&TensorOut::f32(vec![CLASSES, SIDE, SIDE], &logits));
        std::fs::write(pred.join(format!("{k:06}.npy")), npy).expect("write");
    });
}

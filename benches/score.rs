//! `cargo bench --bench score`: scoring PNG predictions against a
//! decode-only floor.
//!
//! Generates (once, under `target/bench-data/`) truth RGB-bit masks and
//! predicted masks (the truth's shapes, shifted and with missed and false
//! chips), 512x512 by default, then times over the same files, page cache
//! warm:
//! - decode only: read + inflate every truth and every prediction PNG (the
//!   floor; nothing counted);
//! - score: the real pass (decode both + joint histogram + counts).
//!
//! Prints the median of the runs and the ratio (target <= 1.5).
//! `MASKPREP_BENCH_N` (default 1000) and `MASKPREP_BENCH_RUNS` (default 5)
//! change the size.

use std::path::{Path, PathBuf};
use std::time::Instant;

use maskprep::dataset::prepare;
use maskprep::decode;
use maskprep::score::cpu::CpuScorer;
use maskprep::score::pairs::{self, PredFile};
use maskprep::score::scan::{ScanOptions, scan};
use maskprep::score::{Decision, EmptyAs};
use maskprep::source::Partition;
use rayon::prelude::*;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let n = env("MASKPREP_BENCH_N", 1000);
    let runs = env("MASKPREP_BENCH_RUNS", 5);
    let side = 512u32;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("bench-data")
        .join(format!("score-{n}x{side}"));
    let (truth, pred) = (root.join("truth"), root.join("pred"));
    generate(&truth, &pred, n, side);
    let files: Vec<PathBuf> = [&truth, &pred]
        .iter()
        .flat_map(|d| {
            let mut v: Vec<PathBuf> = std::fs::read_dir(d)
                .expect("bench dir")
                .map(|e| e.expect("entry").path())
                .collect();
            v.sort();
            v
        })
        .collect();
    let raw_mb = 2.0 * (n as f64) * f64::from(side * side * 3) / 1e6;
    let prep = prepare(&truth, None, &Default::default(), Partition::WHOLE).expect("prepare");
    let pairing = pairs::pair(&prep.dataset, &pred).expect("pairs");
    assert_eq!(pairing.pairs.len(), n);
    let opts = ScanOptions {
        pred_file: PredFile::Png,
        decision: Decision::Above(0.0),
        tensor: String::new(),
        empty_as: EmptyAs::Skip,
        per_image: false,
        strict: true,
        progress: false,
        sweep: None,
    };
    let mut decode_t = Vec::new();
    let mut score_t = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let px: u64 = files
            .par_iter()
            .map_init(Vec::new, |buf, p| {
                let bytes = std::fs::read(p).expect("read");
                let f = decode::decode_frame(&bytes, buf).expect("decode");
                u64::from(f.width) * u64::from(f.height)
            })
            .sum();
        decode_t.push(t.elapsed().as_secs_f64());
        assert_eq!(px, 2 * n as u64 * u64::from(side * side));

        let t = Instant::now();
        let s = scan(&pairing.pairs, &prep.map, &CpuScorer, &opts).expect("scan");
        score_t.push(t.elapsed().as_secs_f64());
        assert_eq!(2 * s.pixels, px);
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (d, s) = (med(&mut decode_t), med(&mut score_t));
    let threads = rayon::current_num_threads();
    println!(
        "score bench: {n} pairs of RGB masks {side}x{side} ({raw_mb:.0} MB raw), {threads} threads, median of {runs}"
    );
    println!(
        "  decode both : {d:.3} s  ({:.0} pairs/s, {:.0} MB/s raw)",
        n as f64 / d,
        raw_mb / d
    );
    println!(
        "  score       : {s:.3} s  ({:.0} pairs/s, {:.0} MB/s raw)",
        n as f64 / s,
        raw_mb / s
    );
    println!("  ratio score/decode: {:.3} (target <= 1.5)", s / d);
}

/// Writes `n` truth masks of flat shapes (plate, code, chips) and their
/// predictions (shifted shapes, some chips missed, one false chip).
fn generate(truth: &Path, pred: &Path, n: usize, side: u32) {
    let count = |d: &Path| std::fs::read_dir(d).map(|d| d.count()).unwrap_or(0);
    if count(truth) == n && count(pred) == n {
        return;
    }
    std::fs::create_dir_all(truth).expect("mkdir");
    std::fs::create_dir_all(pred).expect("mkdir");
    (0..n).into_par_iter().for_each(|k| {
        let mut seed = (k as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut rnd = |m: u32| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % u64::from(m)) as u32
        };
        let s = side;
        let (px0, py0) = (rnd(s / 4), rnd(s / 4));
        let (px1, py1) = (s - rnd(s / 4), s - rnd(s / 4));
        let (qx, qy, qs) = (px0 + rnd(s / 3), py0 + rnd(s / 3), 20 + rnd(s / 6));
        let chips: Vec<(u32, u32, u32)> =
            (0..rnd(6)).map(|_| (rnd(s), rnd(s), 2 + rnd(10))).collect();
        let (dx, dy) = (rnd(9), rnd(9));
        let kept = chips.len() / 2;
        let false_chip = (rnd(s), rnd(s), 3 + rnd(8));
        let draw = |shift: (u32, u32), chips: &[(u32, u32, u32)]| {
            let mut data = vec![0u8; (s * s * 3) as usize];
            for y in 0..s {
                for x in 0..s {
                    let (sx, sy) = (x + shift.0, y + shift.1);
                    let i = ((y * s + x) * 3) as usize;
                    if sx >= px0 && sx < px1 && sy >= py0 && sy < py1 {
                        data[i + 2] = 255;
                    }
                    if sx >= qx && sx < qx + qs && sy >= qy && sy < qy + qs {
                        data[i] = 255;
                    }
                    if chips
                        .iter()
                        .any(|&(cx, cy, r)| x.abs_diff(cx) < r && y.abs_diff(cy) < r)
                    {
                        data[i + 1] = 255;
                    }
                }
            }
            data
        };
        let t = draw((0, 0), &chips);
        let mut pchips = chips[..kept].to_vec();
        pchips.push(false_chip);
        let p = draw((dx, dy), &pchips);
        for (dir, data) in [(truth, t), (pred, p)] {
            let mut out = Vec::new();
            {
                let mut enc = png::Encoder::new(&mut out, s, s);
                enc.set_color(png::ColorType::Rgb);
                enc.set_depth(png::BitDepth::Eight);
                let mut w = enc.write_header().expect("header");
                w.write_image_data(&data).expect("data");
            }
            std::fs::write(dir.join(format!("{k:06}.png")), out).expect("write");
        }
    });
}

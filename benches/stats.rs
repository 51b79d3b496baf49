//! `cargo bench --bench stats`: stats throughput against a decode-only floor.
//!
//! Generates (once, under `target/bench-data/`) a dataset of RGB-bit masks,
//! 512x512 by default, then times over the same files, page cache warm:
//! - decode only: read + inflate every PNG (the floor; no counting);
//! - stats: the real scan (decode + histogram + counters).
//!
//! Prints the median of the runs, the ratio of the medians and the median
//! of the paired (same-run) ratios. `MASKPREP_BENCH_N` (default 1000) and
//! `MASKPREP_BENCH_RUNS` (default 5) change the size. The masks are boxes
//! (a plate, a code, chips); `MASKPREP_BENCH_SHAPES=round` draws them as an
//! ellipse and discs instead, so that nearly every row differs from the one
//! before (no repeated rows for the decoder to skip).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use maskprep::dataset::prepare;
use maskprep::decode::{self, Scratch};
use maskprep::source::Partition;
use maskprep::stats::scan::{ScanOptions, scan};
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
    let round = std::env::var("MASKPREP_BENCH_SHAPES").is_ok_and(|v| v == "round");
    let name = if round { "rgb-round" } else { "rgb-v2" };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("bench-data")
        .join(format!("{name}-{n}x{side}"));
    generate(&dir, n, side, round);
    let files: Vec<PathBuf> = {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("bench dir")
            .map(|e| e.expect("entry").path())
            .collect();
        v.sort();
        v
    };
    let raw_mb = (n as f64) * f64::from(side * side * 3) / 1e6;
    let prep = prepare(&dir, None, &Default::default(), Partition::WHOLE).expect("prepare");
    let opts = ScanOptions {
        strict: false,
        per_image: false,
        progress: false,
    };
    let empty = BTreeMap::new();
    let mut rows_t = Vec::new();
    let mut decode_t = Vec::new();
    let mut stats_t = Vec::new();
    let mut hist_t = Vec::new();
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
        assert_eq!(px, n as u64 * u64::from(side * side));

        let t = Instant::now();
        let rows: u64 = files
            .par_iter()
            .map(|p| {
                let bytes = std::fs::read(p).expect("read");
                let mut d = png::Decoder::new(std::io::Cursor::new(&bytes[..]));
                d.set_transformations(png::Transformations::IDENTITY);
                let mut r = d.read_info().expect("info");
                let mut n = 0u64;
                while let Some(row) = r.next_row().expect("row") {
                    n += u64::from(row.data()[0] & 1) + 1;
                }
                n
            })
            .sum();
        rows_t.push(t.elapsed().as_secs_f64());
        assert!(rows >= n as u64 * u64::from(side));

        let t = Instant::now();
        let codes: usize = files
            .par_iter()
            .map_init(Scratch::default, |scratch, p| {
                let bytes = std::fs::read(p).expect("read");
                decode::decode_hist(&bytes, scratch)
                    .expect("decode")
                    .codes
                    .len()
            })
            .sum();
        hist_t.push(t.elapsed().as_secs_f64());
        assert!(codes >= n);

        let t = Instant::now();
        let s = scan(&prep.dataset, &prep.map, &empty, &opts).expect("scan");
        stats_t.push(t.elapsed().as_secs_f64());
        assert_eq!(s.counts.pixels, px);
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    // Each run's stats time over the same run's decode time: paired, so a
    // machine busy for one run moves both.
    let mut paired: Vec<f64> = stats_t.iter().zip(&decode_t).map(|(s, d)| s / d).collect();
    let p = med(&mut paired);
    let (d, s, r) = (med(&mut decode_t), med(&mut stats_t), med(&mut rows_t));
    let h = med(&mut hist_t);
    let threads = rayon::current_num_threads();
    println!(
        "stats bench: {n} RGB masks {side}x{side} ({raw_mb:.0} MB raw, {}), {threads} threads, median of {runs}",
        if round { "ellipses and discs" } else { "boxes" }
    );
    println!(
        "  decode only : {d:.3} s  ({:.0} masks/s, {:.0} MB/s raw)",
        n as f64 / d,
        raw_mb / d
    );
    println!(
        "  stats       : {s:.3} s  ({:.0} masks/s, {:.0} MB/s raw)",
        n as f64 / s,
        raw_mb / s
    );
    println!(
        "  histograms  : {h:.3} s  ({:.0} masks/s; read + decode + count, no scan)",
        n as f64 / h
    );
    println!(
        "  decode rows : {r:.3} s  ({:.0} masks/s; rows only, no frame: the true floor)",
        n as f64 / r
    );
    println!(
        "  ratio stats/decode-frame: {:.3}, stats/decode-rows: {:.3} (target <= 1.25)",
        s / d,
        s / r
    );
    println!("  paired ratio stats/decode-frame, median of {runs} runs: {p:.3} (target <= 1.25)");
}

/// Writes `n` masks of flat shapes (plate, code, chips), deterministic:
/// boxes, or with `round` the ellipse and discs inside those boxes.
fn generate(dir: &Path, n: usize, side: u32, round: bool) {
    if dir.is_dir() && std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0) == n {
        return;
    }
    std::fs::create_dir_all(dir).expect("mkdir");
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
        // Inside the box [x0, x1) x [y0, y1): the box, or its inscribed ellipse.
        let inside = |x: u32, y: u32, x0: u32, y0: u32, x1: u32, y1: u32| {
            if x < x0 || x >= x1 || y < y0 || y >= y1 {
                return false;
            }
            if !round {
                return true;
            }
            let (rx, ry) = (f64::from(x1 - x0) / 2.0, f64::from(y1 - y0) / 2.0);
            let dx = (f64::from(x) + 0.5 - f64::from(x0)) / rx - 1.0;
            let dy = (f64::from(y) + 0.5 - f64::from(y0)) / ry - 1.0;
            dx * dx + dy * dy <= 1.0
        };
        let mut data = vec![0u8; (s * s * 3) as usize];
        for y in 0..s {
            for x in 0..s {
                let i = ((y * s + x) * 3) as usize;
                if inside(x, y, px0, py0, px1, py1) {
                    data[i + 2] = 255;
                }
                if inside(x, y, qx, qy, qx + qs, qy + qs) {
                    data[i] = 255;
                }
                if chips.iter().any(|&(cx, cy, r)| {
                    inside(
                        x,
                        y,
                        cx.saturating_sub(r - 1),
                        cy.saturating_sub(r - 1),
                        cx + r,
                        cy + r,
                    )
                }) {
                    data[i + 1] = 255;
                }
            }
        }
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, s, s);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut w = enc.write_header().expect("header");
            w.write_image_data(&data).expect("data");
        }
        std::fs::write(dir.join(format!("{k:06}.png")), out).expect("write");
    });
}

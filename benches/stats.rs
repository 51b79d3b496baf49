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

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use maskprep::dataset::prepare;
use maskprep::decode::{self, Scratch};
use maskprep::source::Partition;
use maskprep::stats::scan::{ScanOptions, scan};
use rayon::prelude::*;

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let n = common::env("MASKPREP_BENCH_N", 1000);
    let runs = common::env("MASKPREP_BENCH_RUNS", 5);
    let side = 512u32;
    let round = std::env::var("MASKPREP_BENCH_SHAPES").is_ok_and(|v| v == "round");
    let name = if round { "rgb-round" } else { "rgb-v2" };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("bench-data")
        .join(format!("{name}-{n}x{side}"));
    common::generate(&dir, n, side, round);
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

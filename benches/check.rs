//! `cargo bench --bench check`: `check` against `stats` on the same masks.
//!
//! Generates (once, under `target/bench-data/`, the same generator and
//! folder as `benches/stats.rs`) a dataset of RGB-bit masks, 2,000 of
//! 512x512 by default, then times over the same files, page cache warm:
//! - stats: the stats scan (decode + histogram + counters);
//! - check: the check pass (decode + objects of every class + holes +
//!   hashes; no photos here).
//!
//! Prints the medians, and the median of the paired (same-run) ratios
//! check/stats: the target is <= 2. Peak resident memory is printed
//! before and after the timed runs (it must stay flat: the pass keeps
//! summaries, not planes). `MASKPREP_BENCH_N` (default 2000) and
//! `MASKPREP_BENCH_RUNS` (default 5) change the size.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use maskprep::check::splits::Splits;
use maskprep::check::{self, Connectivity, Options};
use maskprep::dataset::prepare;
use maskprep::source::Partition;
use maskprep::stats::scan::{ScanOptions, scan};

/// Peak resident memory of this process in MiB (Linux), else 0.
fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let n = common::env("MASKPREP_BENCH_N", 2000);
    let runs = common::env("MASKPREP_BENCH_RUNS", 5);
    let side = 512u32;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("bench-data")
        .join(format!("rgb-v2-{n}x{side}"));
    common::generate(&dir, n, side, false);
    let prep = prepare(&dir, None, &Default::default(), Partition::WHOLE).expect("prepare");
    let splits = Splits::found(&prep.dataset);
    let scan_opts = ScanOptions {
        strict: false,
        per_image: false,
        progress: false,
    };
    let opts = Options {
        connectivity: Connectivity::Eight,
        min_object: check::MIN_OBJECT,
        photos: false,
        listed: check::LISTED,
        keep_classes: false,
        progress: false,
    };
    let empty = BTreeMap::new();
    let mut stats_t = Vec::new();
    let mut check_t = Vec::new();
    let mut peaks = Vec::new();
    for run in 0..runs {
        let t = Instant::now();
        let s = scan(&prep.dataset, &prep.map, &empty, &scan_opts).expect("scan");
        stats_t.push(t.elapsed().as_secs_f64());
        assert!(s.counts.bad.is_empty());

        let t = Instant::now();
        let c = check::check(&prep.dataset, &prep.map, &splits, &opts);
        check_t.push(t.elapsed().as_secs_f64());
        assert!(c.bad.is_empty());
        assert_eq!(c.facts.len(), n);
        if run == 0 {
            let objects: u64 = c.classes.iter().map(|a| a.sizes.objects).sum();
            println!("check bench: {objects} objects in {n} masks");
        }
        peaks.push(peak_mib());
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    // Each run's check time over the same run's stats time: paired, so a
    // machine busy for one run moves both.
    let mut paired: Vec<f64> = check_t.iter().zip(&stats_t).map(|(c, s)| c / s).collect();
    let p = med(&mut paired);
    let (s, c) = (med(&mut stats_t), med(&mut check_t));
    let threads = rayon::current_num_threads();
    println!("check bench: {n} RGB masks {side}x{side}, {threads} threads, median of {runs}");
    println!("  stats : {s:.3} s  ({:.0} masks/s)", n as f64 / s);
    println!("  check : {c:.3} s  ({:.0} masks/s)", n as f64 / c);
    println!("  paired ratio check/stats, median of {runs} runs: {p:.3} (target <= 2)");
    println!(
        "  peak resident memory after each run (MiB, flat when it does not grow): {:?}",
        peaks.iter().map(|m| m.round()).collect::<Vec<_>>()
    );
}

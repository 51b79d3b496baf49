//! `cargo bench --bench pipeline`: `run` with stats + weights + shards
//! against shards alone, on the same generated dataset (target: <= 1.1x).
//!
//! The dataset (`MASKPREP_BENCH_N` pairs, default 300, of 512x512 RGB-bit
//! masks and PNG images) is generated once under `target/bench-data/`.
//! Each timed run writes into a fresh folder; median of
//! `MASKPREP_BENCH_RUNS` (default 5).

use std::path::{Path, PathBuf};
use std::time::Instant;

use maskprep::shards::{Format, Geometry, ShardsConfig, SplitArg};
use maskprep::source::Partition;
use rayon::prelude::*;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let n = env("MASKPREP_BENCH_N", 300);
    let runs = env("MASKPREP_BENCH_RUNS", 5);
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    let data = target.join("bench-data").join(format!("pairs-{n}"));
    generate(&data, n, 512);
    let scratch = target.join("bench-out").join("pipeline");
    let pipeline = scratch.join("bench.toml");
    std::fs::create_dir_all(&scratch).expect("mkdir");
    std::fs::write(
        &pipeline,
        format!(
            "[source]\ndir = {:?}\n[output]\ndir = {:?}\n[stats]\n[weights]\n\
             [shards]\nsamples_per_shard = 64\nsplit = {{ val = 0.1 }}\nseed = 3\n",
            data.display().to_string(),
            scratch.join("run").display().to_string()
        ),
    )
    .expect("write pipeline");
    let shards_cfg = ShardsConfig {
        exports: Default::default(),
        dir: data.clone(),
        labels: None,
        out: scratch.join("shards-only"),
        format: Format::Webdataset,
        shard_bytes: None,
        shard_samples: Some(64),
        geometry: Geometry::Native,
        splits: vec![SplitArg {
            name: "val".into(),
            fraction: 0.1,
        }],
        seed: 3,
        stratify: true,
        shuffle: false,
        strict: false,
        quiet: true,
        command: vec!["bench".into()],
        partition: Partition::WHOLE,
    };
    let (mut shards_t, mut run_t) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let _ = std::fs::remove_dir_all(scratch.join("shards-only"));
        let t = Instant::now();
        maskprep::shards::write::run(&shards_cfg).expect("shards");
        shards_t.push(t.elapsed().as_secs_f64());

        let _ = std::fs::remove_dir_all(scratch.join("run"));
        let t = Instant::now();
        let run = maskprep::cli::Command::Run(maskprep::cli::RunConfig {
            pipeline: pipeline.clone(),
            partition: None,
            output: None,
            quiet: true,
        });
        let code = maskprep::commands::execute(run).expect("run");
        run_t.push(t.elapsed().as_secs_f64());
        assert_eq!(code, 0);
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (s, r) = (med(&mut shards_t), med(&mut run_t));
    println!(
        "pipeline bench: {n} pairs 512x512, {} threads, median of {runs}",
        rayon::current_num_threads()
    );
    println!("  shards alone                 : {s:.3} s");
    println!("  run (stats + weights + shards): {r:.3} s");
    println!("  ratio run/shards: {:.3} (target <= 1.1)", r / s);
}

/// `n` mask/image pairs: RGB-bit masks of flat shapes and matching photos.
fn generate(dir: &Path, n: usize, side: u32) {
    let masks = dir.join("masks");
    if masks.is_dir() && std::fs::read_dir(&masks).map(|d| d.count()).unwrap_or(0) == n {
        return;
    }
    std::fs::create_dir_all(&masks).expect("mkdir");
    std::fs::create_dir_all(dir.join("images")).expect("mkdir");
    (0..n).into_par_iter().for_each(|k| {
        let mut seed = (k as u64 + 7).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut rnd = |m: u32| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % u64::from(m)) as u32
        };
        let s = side;
        let disks: Vec<(i64, i64, i64, usize)> = (0..3 + rnd(4))
            .map(|_| {
                let r = 10 + rnd(s / 5);
                (
                    i64::from(rnd(s)),
                    i64::from(rnd(s)),
                    i64::from(r * r),
                    rnd(3) as usize,
                )
            })
            .collect();
        let mut mask = vec![0u8; (s * s * 3) as usize];
        let mut img = vec![0u8; (s * s * 3) as usize];
        for y in 0..s {
            for x in 0..s {
                let i = ((y * s + x) * 3) as usize;
                for &(cx, cy, r2, ch) in &disks {
                    let (dx, dy) = (i64::from(x) - cx, i64::from(y) - cy);
                    if dx * dx + dy * dy < r2 {
                        mask[i + ch] = 255;
                    }
                }
                for c in 0..3 {
                    img[i + c] = mask[i + c] / 2 + ((x * 7 + y * 13 + c as u32 * 31) % 64) as u8;
                }
            }
        }
        for (bytes, sub) in [(&mask, "masks"), (&img, "images")] {
            let mut out = Vec::new();
            {
                let mut enc = png::Encoder::new(&mut out, s, s);
                enc.set_color(png::ColorType::Rgb);
                enc.set_depth(png::BitDepth::Eight);
                let mut w = enc.write_header().expect("header");
                w.write_image_data(bytes).expect("data");
            }
            std::fs::write(dir.join(sub).join(format!("{k:06}.png")), out).expect("write");
        }
    });
}

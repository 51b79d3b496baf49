//! `cargo bench --bench shards`: shard writing throughput against a plain
//! copy of the same files.
//!
//! Generates (once, under `target/bench-data/`) a dataset of noisy RGB
//! images (PNG, about photo-sized) and RGB-bit masks, 512x512 by default, then times over the same
//! files, page cache warm:
//! - copy: `fs::copy` of every image and mask into a fresh folder (the floor
//!   for moving the bytes);
//! - webdataset: `maskprep shards` (decode each mask once, write image bytes,
//!   `.npy` planes and `.json` into tar shards, sha256, fsync);
//! - safetensors: the same into stacked `[N,3,H,W]` / `[N,C,H,W]` shards
//!   (images decoded too);
//! - resume: the webdataset command again, every shard kept (pass 1 only).
//!
//! Prints medians, MB/s of input (source files) and of output (shard bytes).
//! `MASKPREP_BENCH_N` (default 200) and `MASKPREP_BENCH_RUNS` (default 3)
//! change the size.

use std::path::{Path, PathBuf};
use std::time::Instant;

use maskprep::shards::{Format, Geometry, ShardsConfig, write};
use rayon::prelude::*;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let n = env("MASKPREP_BENCH_N", 200);
    let runs = env("MASKPREP_BENCH_RUNS", 3);
    let side = 512u32;
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    let data = target
        .join("bench-data")
        .join(format!("shards-v2-{n}x{side}"));
    generate(&data, n, side);
    let files: Vec<PathBuf> = ["images", "masks"]
        .iter()
        .flat_map(|d| {
            let mut v: Vec<PathBuf> = std::fs::read_dir(data.join(d))
                .expect("bench dir")
                .map(|e| e.expect("entry").path())
                .collect();
            v.sort();
            v
        })
        .collect();
    let input: u64 = files
        .iter()
        .map(|p| std::fs::metadata(p).expect("meta").len())
        .sum();
    let scratch = target.join("bench-out").join("shards");
    let cfg = |format: Format, out: &Path| ShardsConfig {
        exports: Default::default(),
        dir: data.clone(),
        labels: None,
        out: out.to_path_buf(),
        format,
        shard_bytes: None,
        shard_samples: Some(64),
        geometry: Geometry::Native,
        splits: Vec::new(),
        seed: 0,
        stratify: true,
        shuffle: false,
        strict: true,
        quiet: true,
        command: vec!["bench".into()],
        partition: maskprep::source::Partition::WHOLE,
    };
    let (mut copy_t, mut wds_t, mut st_t, mut resume_t) = (vec![], vec![], vec![], vec![]);
    let (mut wds_bytes, mut st_bytes) = (0u64, 0u64);
    for _ in 0..runs {
        let _ = std::fs::remove_dir_all(&scratch);
        let copy_dir = scratch.join("copy");
        std::fs::create_dir_all(&copy_dir).expect("mkdir");
        let t = Instant::now();
        files.par_iter().enumerate().for_each(|(i, p)| {
            std::fs::copy(p, copy_dir.join(format!("{i:06}.png"))).expect("copy");
        });
        copy_t.push(t.elapsed().as_secs_f64());

        let out = scratch.join("wds");
        let t = Instant::now();
        let w = write::run(&cfg(Format::Webdataset, &out)).expect("webdataset");
        wds_t.push(t.elapsed().as_secs_f64());
        wds_bytes = total(&w.manifest);

        let t = Instant::now();
        let again = write::run(&cfg(Format::Webdataset, &out)).expect("resume");
        resume_t.push(t.elapsed().as_secs_f64());
        assert_eq!(again.reused, again.manifest.splits["train"].shards.len());

        let out = scratch.join("st");
        let t = Instant::now();
        let s = write::run(&cfg(Format::Safetensors, &out)).expect("safetensors");
        st_t.push(t.elapsed().as_secs_f64());
        st_bytes = total(&s.manifest);
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mb = |b: u64| b as f64 / 1e6;
    let threads = rayon::current_num_threads();
    println!(
        "shards bench: {n} pairs {side}x{side} ({:.1} MB of PNG in), {threads} threads, median of {runs}",
        mb(input)
    );
    let row = |name: &str, t: f64, out: u64| {
        println!(
            "  {name:<12}: {t:.3} s  ({:.0} pairs/s, {:.1} MB/s in, {:.1} MB/s out)",
            n as f64 / t,
            mb(input) / t,
            mb(out) / t
        );
    };
    row("copy", med(&mut copy_t), input);
    row("webdataset", med(&mut wds_t), wds_bytes);
    row("safetensors", med(&mut st_t), st_bytes);
    row("resume (noop)", med(&mut resume_t), 0);
}

fn total(m: &maskprep::shards::Manifest) -> u64 {
    m.splits
        .values()
        .flat_map(|s| s.shards.iter())
        .map(|e| e.bytes)
        .sum()
}

/// Writes `n` pairs: a smooth RGB image with a little texture, and an
/// RGB-bit mask of flat shapes (plate, code, scratches). Deterministic.
fn generate(dir: &Path, n: usize, side: u32) {
    let done = |d: &str| {
        std::fs::read_dir(dir.join(d))
            .map(|r| r.count())
            .unwrap_or(0)
            == n
    };
    if done("images") && done("masks") {
        return;
    }
    for d in ["images", "masks"] {
        std::fs::create_dir_all(dir.join(d)).expect("mkdir");
    }
    std::fs::write(
        dir.join("labels.toml"),
        "kind = \"rgb-bits\"\nclasses = [\"qr_code\", \"scratch\", \"plate\"]\n",
    )
    .expect("labels");
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
        let mut mask = vec![0u8; (s * s * 3) as usize];
        let mut img = vec![0u8; mask.len()];
        for y in 0..s {
            for x in 0..s {
                let i = ((y * s + x) * 3) as usize;
                let plate = x >= px0 && x < px1 && y >= py0 && y < py1;
                let code = x >= qx && x < qx + qs && y >= qy && y < qy + qs;
                let chip = chips
                    .iter()
                    .any(|&(cx, cy, r)| x.abs_diff(cx) < r && y.abs_diff(cy) < r);
                mask[i] = if code { 255 } else { 0 };
                mask[i + 1] = if chip { 255 } else { 0 };
                mask[i + 2] = if plate { 255 } else { 0 };
                // Sensor-like noise, so the PNGs compress like photos do (poorly).
                let h = (x.wrapping_mul(0x9E37_79B1) ^ y.wrapping_mul(0x85EB_CA77))
                    .wrapping_add(k as u32)
                    .wrapping_mul(0xC2B2_AE3D);
                let tex = (h >> 27) as u8;
                img[i] = (x / 2) as u8 ^ tex;
                img[i + 1] = (y / 2) as u8 + if plate { 40 } else { 0 };
                img[i + 2] = if code { 20 } else { 200 } + tex;
            }
        }
        std::fs::write(dir.join(format!("masks/{k:06}.png")), png(&mask, s)).expect("mask");
        std::fs::write(dir.join(format!("images/{k:06}.png")), png(&img, s)).expect("image");
    });
}

fn png(data: &[u8], side: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, side, side);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()
        .expect("header")
        .write_image_data(data)
        .expect("data");
    out
}

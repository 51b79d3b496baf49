//! Auto-detection on first contact (issue 11): each case is a tiny dataset
//! generated here into a temp dir, read with NO `--labels`. Expected counts
//! are recounted in the test, pixel by pixel, from the bytes it wrote.

mod common;

use std::path::{Path, PathBuf};

use common::{code, json, maskprep, path_str, stderr};
use serde_json::Value;

// ---- drawing -------------------------------------------------------------

fn mkdir(p: &Path) {
    std::fs::create_dir_all(p).unwrap();
}

fn gray_png(path: &Path, w: u32, h: u32, data: Vec<u8>) {
    mkdir(path.parent().unwrap());
    image::GrayImage::from_raw(w, h, data)
        .unwrap()
        .save(path)
        .unwrap();
}

fn rgb_png(path: &Path, w: u32, h: u32, data: Vec<u8>) {
    mkdir(path.parent().unwrap());
    image::RgbImage::from_raw(w, h, data)
        .unwrap()
        .save(path)
        .unwrap();
}

/// An 8-bit palette PNG (`plte` is r,g,b triples).
fn palette_png(path: &Path, w: u32, h: u32, data: &[u8], plte: &[u8]) {
    mkdir(path.parent().unwrap());
    let file = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(png::ColorType::Indexed);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_palette(plte.to_vec());
    enc.write_header().unwrap().write_image_data(data).unwrap();
}

/// A deterministic noisy RGB "photograph": thousands of colours.
fn photo_rgb(w: u32, h: u32, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
    let mut out = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            for c in 0..3u32 {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let base = (x * 3 + y * 2 + c * 50) % 200;
                out.push((base + (s >> 58) as u32) as u8);
            }
        }
    }
    out
}

/// A gray "photograph": a smooth gradient with a little noise.
fn photo_gray(w: u32, h: u32) -> Vec<u8> {
    let mut s = 99u64;
    let mut out = Vec::new();
    for y in 0..h {
        for x in 0..w {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            out.push(((x * 255 / w + y) % 240 + (s >> 60) as u32) as u8);
        }
    }
    out
}

fn jpeg(path: &Path, w: u32, h: u32, seed: u64) {
    mkdir(path.parent().unwrap());
    image::RgbImage::from_raw(w, h, photo_rgb(w, h, seed))
        .unwrap()
        .save(path)
        .unwrap();
}

/// Channel masks: R = disk A, B = disk B, drawn 4x larger and averaged down
/// (anti-aliased edges), black elsewhere.
fn aa_channels(w: u32, h: u32, k: u32) -> Vec<u8> {
    let s = 4u32;
    let mut out = Vec::new();
    let (ax, ay, ar) = (18.0 + k as f64, 20.0, 11.3);
    let (bx, by, br) = (44.0, 40.0 - k as f64, 13.7);
    for y in 0..h {
        for x in 0..w {
            let (mut r, mut b) = (0u32, 0u32);
            for sy in 0..s {
                for sx in 0..s {
                    let px = x as f64 + (sx as f64 + 0.5) / s as f64;
                    let py = y as f64 + (sy as f64 + 0.5) / s as f64;
                    if (px - ax).powi(2) + (py - ay).powi(2) < ar * ar {
                        r += 255;
                    }
                    if (px - bx).powi(2) + (py - by).powi(2) < br * br {
                        b += 255;
                    }
                }
            }
            out.extend([(r / 16) as u8, 0, (b / 16) as u8]);
        }
    }
    out
}

/// Pixels per thresholded channel (>= 128), counted from raw RGB bytes.
fn channel_counts(all: &[Vec<u8>]) -> ([u64; 3], u64) {
    let mut n = [0u64; 3];
    let mut blended = 0;
    for data in all {
        for p in data.chunks_exact(3) {
            for c in 0..3 {
                n[c] += u64::from(p[c] >= 128);
            }
            blended += u64::from(p.iter().any(|&v| v != 0 && v != 255));
        }
    }
    (n, blended)
}

fn stats(dir: &Path) -> (std::process::Output, Value) {
    let o = maskprep(&["stats", path_str(dir), "--json"]);
    let v = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    (o, v)
}

fn class_pixels(d: &Value) -> Vec<u64> {
    d["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["pixels"].as_u64().unwrap())
        .collect()
}

fn class_names(d: &Value) -> Vec<String> {
    d["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

/// A mask of `w x h` with a `side x side` square of `fg` at (x0, y0).
fn square(w: u32, h: u32, x0: u32, y0: u32, side: u32, fg: u8) -> Vec<u8> {
    let mut m = vec![0u8; (w * h) as usize];
    for y in y0..(y0 + side).min(h) {
        for x in x0..(x0 + side).min(w) {
            m[(y * w + x) as usize] = fg;
        }
    }
    m
}

// ---- 1. binary masks -----------------------------------------------------

fn binary_dataset(root: &Path, masks: &str, images: &str, fg: u8) -> u64 {
    let mut total = 0;
    for i in 0..3u32 {
        let side = 4 + 2 * i;
        gray_png(
            &root.join(masks).join(format!("{i:03}.png")),
            16,
            12,
            square(16, 12, i, 2, side, fg),
        );
        jpeg(&root.join(images).join(format!("{i:03}.jpg")), 16, 12, 7);
        total += u64::from(side * side.min(10));
    }
    total
}

#[test]
fn binary_0_255_masks_are_one_foreground_class() {
    let dir = tempfile::tempdir().unwrap();
    let fg = binary_dataset(dir.path(), "masks", "images", 255);
    let (o, d) = stats(dir.path());
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    assert!(err.contains("masks: `masks/`"), "{err}");
    assert!(err.contains("binary"), "{err}");
    assert_eq!(d["labels"]["kind"], "binary");
    assert_eq!(class_names(&d), ["foreground"]);
    assert_eq!(class_pixels(&d), [fg]);
    let n = 3 * 16 * 12;
    assert_eq!(d["pixels"]["valid"], n);
    assert_eq!(d["pixels"]["ignored"], 0);
    let pw = d["classes"][0]["pos_weight"].as_f64().unwrap();
    assert!((pw - (n - fg) as f64 / fg as f64).abs() < 1e-9);
    assert_eq!(d["verdict"]["loss"], "BCEWithLogitsLoss");
    assert!(
        d["verdict"]["reason"]
            .as_str()
            .unwrap()
            .contains("1-channel")
    );
    assert_eq!(d["labels_detection"]["confidence"], "high");
}

#[test]
fn binary_0_1_masks_in_a_unet_layout() {
    let dir = tempfile::tempdir().unwrap();
    let fg = binary_dataset(dir.path(), "label", "image", 1);
    let (o, d) = stats(dir.path());
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    assert!(err.contains("masks: `label/`"), "{err}");
    assert!(err.contains("images: `image/`"), "{err}");
    assert_eq!(d["labels"]["kind"], "binary");
    assert_eq!(d["labels"]["threshold"], 1);
    assert_eq!(class_pixels(&d), [fg]);
    assert_eq!(d["pixels"]["ignored"], 0);
    assert_eq!(
        d["files"]["masks_without_images"].as_array().unwrap().len(),
        0
    );
}

#[test]
fn binary_label_map_round_trips_through_labels_toml() {
    let dir = tempfile::tempdir().unwrap();
    binary_dataset(dir.path(), "masks", "images", 255);
    let toml = dir.path().join("out.toml");
    let o = maskprep(&["labels", path_str(dir.path()), "-o", path_str(&toml)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("runner-up"), "{err}");
    let (_, auto) = stats(dir.path());
    let o = maskprep(&[
        "stats",
        path_str(dir.path()),
        "--labels",
        path_str(&toml),
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let given = json(&o);
    for key in ["classes", "pixels", "label_degree", "verdict"] {
        assert_eq!(auto[key], given[key], "{key}");
    }
}

// ---- 2. anti-aliased and JPEG-compressed channel masks --------------------

#[test]
fn anti_aliased_channel_masks_are_rgb_bits_with_a_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    for k in 0..3 {
        let m = aa_channels(64, 64, k);
        rgb_png(
            &dir.path().join(format!("masks/{k}.png")),
            64,
            64,
            m.clone(),
        );
        jpeg(
            &dir.path().join(format!("images/{k}.jpg")),
            64,
            64,
            k.into(),
        );
        all.push(m);
    }
    let (want, blended) = channel_counts(&all);
    let (o, d) = stats(dir.path());
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    assert_eq!(d["labels"]["kind"], "rgb-bits", "{err}");
    assert_eq!(d["labels"]["threshold"], 128);
    assert_eq!(class_pixels(&d), want);
    assert_eq!(d["pixels"]["undeclared"], 0);
    let share = blended as f64 / (3.0 * 64.0 * 64.0);
    let got = d["labels_detection"]["blended_fraction"].as_f64().unwrap();
    assert!((got - share).abs() < 1e-12, "{got} vs {share}");
    assert!(
        err.contains("of pixels are blended edges: thresholded at 128"),
        "{err}"
    );
}

#[test]
fn jpeg_compressed_channel_masks_are_rgb_bits_with_a_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    for k in 0..3u32 {
        // Drawn, saved as JPEG (quality 90), read back and kept as PNG.
        let m = aa_channels(64, 64, k);
        let mut jpg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpg, 90)
            .encode(&m, 64, 64, image::ExtendedColorType::Rgb8)
            .unwrap();
        let back = image::load_from_memory(&jpg).unwrap().to_rgb8().into_raw();
        rgb_png(&dir.path().join(format!("{k}.png")), 64, 64, back.clone());
        all.push(back);
    }
    let (want, _) = channel_counts(&all);
    let (o, d) = stats(dir.path());
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    assert_eq!(d["labels"]["kind"], "rgb-bits", "{err}");
    assert_eq!(class_pixels(&d), want);
    assert!(d["labels_detection"]["blended_fraction"].as_f64().unwrap() > 0.0);
}

// ---- 3. pure-colour palettes ----------------------------------------------

/// Pure-colour masks: rows of the given colours, `rows[i]` rows of `colours[i]`.
fn stripes(path: &Path, w: u32, colours: &[[u8; 3]], rows: &[u32]) {
    let mut data = Vec::new();
    for (c, &n) in colours.iter().zip(rows) {
        for _ in 0..n * w {
            data.extend(c);
        }
    }
    let h = rows.iter().sum();
    rgb_png(path, w, h, data);
}

const RED: [u8; 3] = [255, 0, 0];
const YELLOW: [u8; 3] = [255, 255, 0];
const BLACK: [u8; 3] = [0, 0, 0];

#[test]
fn red_and_yellow_is_a_palette_not_overlapping_channels() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..3 {
        stripes(
            &dir.path().join(format!("masks/{i}.png")),
            10,
            &[BLACK, RED, YELLOW],
            &[4, 2 + i, 5],
        );
    }
    let (o, d) = stats(dir.path());
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    assert_eq!(d["labels"]["kind"], "palette", "{err}");
    assert_eq!(class_names(&d), ["#ff0000", "#ffff00"]);
    assert_eq!(class_pixels(&d), [10 * (2 + 3 + 4), 10 * 15]);
    assert_eq!(d["verdict"]["kind"], "single-label");
    assert!(err.contains("never appears alone"), "{err}");
    let det = &d["labels_detection"];
    assert_eq!(det["reading"], "palette");
    assert!(det["alternative"].as_str().unwrap().contains("rgb-bits"));
}

#[test]
fn six_colour_aerial_palette_is_a_palette() {
    let dir = tempfile::tempdir().unwrap();
    let colours = [
        [255, 255, 255],
        [0, 0, 255],
        [0, 255, 255],
        [0, 255, 0],
        [255, 255, 0],
        [255, 0, 0],
    ];
    for i in 0..2 {
        stripes(
            &dir.path().join(format!("gt/{i}.png")),
            8,
            &colours,
            &[6, 4, 4, 3, 1 + i, 2],
        );
        jpeg(&dir.path().join(format!("img/{i}.jpg")), 8, 20 + i, 3);
    }
    let (o, d) = stats(dir.path());
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    assert!(err.contains("masks: `gt/`"), "{err}");
    assert_eq!(d["labels"]["kind"], "palette", "{err}");
    assert_eq!(d["classes"].as_array().unwrap().len(), 6);
    assert_eq!(d["verdict"]["kind"], "single-label");
    assert_eq!(d["label_degree"]["2"], 0);
    assert_eq!(d["pixels"]["valid"], 8 * (20 + 21));
}

#[test]
fn a_colour_file_two_levels_above_the_masks_settles_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("class_dict.csv"),
        "name,r,g,b\nbackground,0,0,0\nroad,255,0,0\nlane,255,255,0\n",
    )
    .unwrap();
    let masks = dir.path().join("train/masks");
    for i in 0..2 {
        stripes(
            &masks.join(format!("{i}.png")),
            10,
            &[BLACK, RED, YELLOW],
            &[4, 3, 5],
        );
    }
    let (o, d) = stats(&masks);
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    assert!(err.contains("class_dict.csv"), "{err}");
    assert_eq!(d["labels"]["kind"], "palette");
    assert_eq!(class_names(&d), ["road", "lane"]);
    assert_eq!(class_pixels(&d), [60, 100]);
    assert!(
        d["labels_origin"]
            .as_str()
            .unwrap()
            .ends_with("class_dict.csv")
    );
    // The dataset's own file decides, as `--labels` would: nothing guessed.
    assert!(d.get("labels_detection").is_none());
}

#[test]
fn an_ambiguous_dataset_gets_a_loud_warning_naming_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    // Red, green, and their overlap yellow on a fifth of the coloured pixels:
    // overlapping channels or a three-colour palette, either fits.
    for i in 0..2 {
        stripes(
            &dir.path().join(format!("{i}.png")),
            10,
            &[BLACK, RED, [0, 255, 0], YELLOW],
            &[6, 4, 4, 2],
        );
    }
    let (o, d) = stats(dir.path());
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    assert!(
        err.contains("maskprep: warning: the label map is a guess"),
        "{err}"
    );
    assert!(err.contains("--labels labels.toml"), "{err}");
    let det = &d["labels_detection"];
    assert_eq!(det["confidence"], "low");
    assert!(det["alternative"].is_string());
    assert!(
        d["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("is a guess"))
    );
    assert!(d["verdict"]["reason"].as_str().unwrap().contains("caution"));
    // Quiet still says it.
    let o = maskprep(&["-q", "stats", path_str(dir.path())]);
    assert!(stderr(&o).contains("is a guess"), "{}", stderr(&o));
}

// ---- 4. dataset roots ----------------------------------------------------

fn voc_palette() -> Vec<u8> {
    let mut p = Vec::new();
    for i in 0..=255u32 {
        let (mut r, mut g, mut b) = (0u8, 0u8, 0u8);
        let mut c = i;
        for j in 0..8 {
            r |= ((c & 1) as u8) << (7 - j);
            g |= (((c >> 1) & 1) as u8) << (7 - j);
            b |= (((c >> 2) & 1) as u8) << (7 - j);
            c >>= 3;
        }
        p.extend([r, g, b]);
    }
    p
}

/// A VOC tree: person (15) squares with a 255 ring, photos for every mask
/// and two more, instance masks in `SegmentationObject/`.
fn voc_tree(root: &Path, names: &[&str]) -> (u64, u64) {
    let (mut person, mut ignored) = (0, 0);
    for (i, name) in names.iter().enumerate() {
        let side = 4 + i as u32;
        let mut m = square(20, 16, 2, 2, side + 2, 255);
        for y in 3..3 + side {
            for x in 3..3 + side {
                m[(y * 20 + x) as usize] = 15;
            }
        }
        person += u64::from(side * side);
        ignored += u64::from((side + 2) * (side + 2) - side * side);
        palette_png(
            &root.join(format!("SegmentationClass/{name}.png")),
            20,
            16,
            &m,
            &voc_palette(),
        );
        palette_png(
            &root.join(format!("SegmentationObject/{name}.png")),
            20,
            16,
            &m,
            &voc_palette(),
        );
        jpeg(&root.join(format!("JPEGImages/{name}.jpg")), 20, 16, 1);
    }
    jpeg(&root.join("JPEGImages/detection_only_1.jpg"), 20, 16, 2);
    jpeg(&root.join("JPEGImages/detection_only_2.jpg"), 20, 16, 3);
    (person, ignored)
}

#[test]
fn voc_root_finds_segmentation_class() {
    let dir = tempfile::tempdir().unwrap();
    let (person, ignored) = voc_tree(dir.path(), &["2007_000032", "2007_000039"]);
    let (o, d) = stats(dir.path());
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    assert!(
        err.contains("masks: `SegmentationClass/` (VOC layout), images: `JPEGImages/`"),
        "{err}"
    );
    assert!(
        err.contains("`SegmentationObject` holds instance ids"),
        "{err}"
    );
    assert_eq!(d["labels_origin"], "preset voc");
    assert_eq!(d["files"]["masks_found"], 2);
    assert_eq!(d["classes"][15]["pixels"], person);
    assert_eq!(d["pixels"]["ignored"], ignored);
    assert_eq!(
        d["files"]["images_without_masks"].as_array().unwrap().len(),
        0
    );
    assert_eq!(
        d["files"]["masks_without_images"].as_array().unwrap().len(),
        0
    );
}

#[test]
fn cvat_voc_export_with_one_tree_per_subfolder() {
    let dir = tempfile::tempdir().unwrap();
    let (p1, _) = voc_tree(&dir.path().join("task_a"), &["frame_000"]);
    let (p2, _) = voc_tree(&dir.path().join("task_b"), &["frame_000", "frame_001"]);
    let (o, d) = stats(dir.path());
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    assert!(err.contains("`task_a/SegmentationClass/`"), "{err}");
    assert!(err.contains("`task_b/SegmentationClass/`"), "{err}");
    assert_eq!(d["files"]["masks_found"], 3);
    assert_eq!(d["classes"][15]["pixels"], p1 + p2);
}

#[test]
fn cityscapes_root_reads_train_ids_only() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut road = 0u64;
    for (split, city, n) in [("train", "aachen", 2u32), ("val", "lindau", 1)] {
        for i in 0..n {
            let stem = format!("{city}_{i:06}_000019");
            let gt = root.join(format!("gtFine/{split}/{city}"));
            // trainIds: road 0 on the top half, sky 10 below, a 255 row.
            let mut t = vec![0u8; 32 * 16];
            t[8 * 32..].fill(10);
            t[..32].fill(255);
            road += 7 * 32;
            gray_png(
                &gt.join(format!("{stem}_gtFine_labelTrainIds.png")),
                32,
                16,
                t,
            );
            gray_png(
                &gt.join(format!("{stem}_gtFine_labelIds.png")),
                32,
                16,
                vec![7; 32 * 16],
            );
            gray_png(
                &gt.join(format!("{stem}_gtFine_instanceIds.png")),
                32,
                16,
                vec![26; 32 * 16],
            );
            rgb_png(
                &gt.join(format!("{stem}_gtFine_color.png")),
                32,
                16,
                vec![128; 32 * 16 * 3],
            );
            rgb_png(
                &root.join(format!("leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png")),
                32,
                16,
                photo_rgb(32, 16, 5),
            );
        }
    }
    let (o, d) = stats(root);
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    assert!(err.contains("(Cityscapes layout"), "{err}");
    assert!(err.contains("images: `leftImg8bit/`"), "{err}");
    assert_eq!(d["labels_origin"], "preset cityscapes-trainids");
    assert_eq!(d["files"]["masks_found"], 3);
    assert_eq!(d["classes"][0]["pixels"], road);
    assert_eq!(d["pixels"]["ignored"], 3 * 32);
    assert_eq!(
        d["files"]["masks_without_images"].as_array().unwrap().len(),
        0
    );
    assert_eq!(
        d["files"]["images_without_masks"].as_array().unwrap().len(),
        0
    );
}

#[test]
fn ade20k_scene_parsing_root_uses_the_preset() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ADEChallengeData2016");
    let mut want = vec![0u64; 151];
    for i in 0..3u32 {
        let name = format!("ADE_train_{:08}", i + 1);
        let m: Vec<u8> = (0..24 * 16u32)
            .map(|p| [0u8, 1, 3, 150][((p / 24 + i) % 4) as usize])
            .collect();
        for &v in &m {
            want[v as usize] += 1;
        }
        gray_png(
            &root.join(format!("annotations/training/{name}.png")),
            24,
            16,
            m,
        );
        jpeg(&root.join(format!("images/training/{name}.jpg")), 24, 16, 4);
    }
    let (o, d) = stats(&root);
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    assert!(err.contains("ADE20K SceneParsing layout"), "{err}");
    assert_eq!(d["labels_origin"], "preset ade20k");
    assert_eq!(d["classes"].as_array().unwrap().len(), 150);
    assert_eq!(d["classes"][0]["name"], "wall");
    assert_eq!(d["classes"][0]["pixels"], want[1]);
    assert_eq!(d["classes"][2]["pixels"], want[3]);
    assert_eq!(d["classes"][149]["name"], "flag");
    assert_eq!(d["classes"][149]["pixels"], want[150]);
    assert_eq!(d["pixels"]["ignored"], want[0]);
}

#[test]
fn full_ade20k_seg_masks_decode_class_from_red_and_green() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ADE20K_2021_17_01");
    let scene = root.join("images/ADE/training/urban/street");
    // Class 2978 = R/10*256 + G with R = 110, G = 162; class 1 = (0, 1);
    // B is the instance. Unlabelled (0, 0).
    let mut counts = (0u64, 0u64, 0u64);
    for i in 0..2u32 {
        let mut m = Vec::new();
        for p in 0..16 * 8u32 {
            let px: [u8; 3] = match (p + i) % 3 {
                0 => [110, 162, (p % 5) as u8 + 1],
                1 => [0, 1, 7],
                _ => [0, 0, 0],
            };
            match (p + i) % 3 {
                0 => counts.0 += 1,
                1 => counts.1 += 1,
                _ => counts.2 += 1,
            }
            m.extend(px);
        }
        let stem = format!("ADE_train_{:08}", i + 1);
        rgb_png(&scene.join(format!("{stem}_seg.png")), 16, 8, m);
        rgb_png(
            &scene.join(format!("{stem}_parts_1.png")),
            16,
            8,
            vec![9; 16 * 8 * 3],
        );
        jpeg(&scene.join(format!("{stem}.jpg")), 16, 8, 6);
    }
    let (o, d) = stats(&root);
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    assert!(err.contains("ADE20K full layout"), "{err}");
    assert_eq!(d["labels_origin"], "preset ade20k-full");
    assert_eq!(class_names(&d), ["class_1", "class_2978"]);
    assert_eq!(class_pixels(&d), [counts.1, counts.0]);
    assert_eq!(d["pixels"]["ignored"], counts.2);
    assert_eq!(d["files"]["masks_found"], 2);
    assert_eq!(
        d["files"]["masks_without_images"].as_array().unwrap().len(),
        0
    );
    assert_eq!(
        d["files"]["images_without_masks"].as_array().unwrap().len(),
        0
    );
}

#[test]
fn mmsegmentation_root_finds_ann_dir() {
    let dir = tempfile::tempdir().unwrap();
    let mut want = [0u64; 4];
    for i in 0..3u32 {
        let m: Vec<u8> = (0..12 * 10u32).map(|p| ((p + i) % 4) as u8).collect();
        for &v in &m {
            want[v as usize] += 1;
        }
        gray_png(
            &dir.path().join(format!("ann_dir/train/{i}.png")),
            12,
            10,
            m,
        );
        jpeg(
            &dir.path().join(format!("img_dir/train/{i}.jpg")),
            12,
            10,
            8,
        );
    }
    let (o, d) = stats(dir.path());
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    assert!(
        err.contains("masks: `ann_dir/` (mmsegmentation layout), images: `img_dir/`"),
        "{err}"
    );
    assert_eq!(d["labels"]["kind"], "index");
    assert_eq!(class_pixels(&d), want);
}

#[test]
fn generic_annotations_beside_images_and_photos_are_not_masks() {
    let dir = tempfile::tempdir().unwrap();
    binary_dataset(dir.path(), "annotations", "imgs", 255);
    // A photograph saved among the masks: skipped with the reason.
    rgb_png(
        &dir.path().join("annotations/zzz_photo.png"),
        40,
        40,
        photo_rgb(40, 40, 9),
    );
    let (o, d) = stats(dir.path());
    let err = stderr(&o);
    assert_eq!(code(&o), 1, "{err}");
    assert!(err.contains("masks: `annotations/`"), "{err}");
    assert!(err.contains("looks like a photograph"), "{err}");
    assert!(err.contains("candidate mask folders"), "{err}");
    assert_eq!(d["labels"]["kind"], "binary");
    assert_eq!(d["files"]["bad"].as_array().unwrap().len(), 1);
}

#[test]
fn gray_photographs_are_not_index_masks() {
    let dir = tempfile::tempdir().unwrap();
    binary_dataset(dir.path(), "masks", "images", 255);
    gray_png(
        &dir.path().join("masks/zzz_gray_photo.png"),
        64,
        48,
        photo_gray(64, 48),
    );
    let (o, d) = stats(dir.path());
    let err = stderr(&o);
    assert_eq!(code(&o), 1, "{err}");
    assert!(err.contains("smooth histogram"), "{err}");
    assert_eq!(d["labels"]["kind"], "binary");
}

/// DIR's parent holds another dataset: no folder named in a message lies
/// outside DIR (issue 25).
#[test]
fn a_folder_of_photos_only_exits_2_naming_no_folder_outside_it() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("images");
    for i in 0..3 {
        rgb_png(
            &photos.join(format!("{i}.png")),
            48,
            48,
            photo_rgb(48, 48, i),
        );
    }
    binary_dataset(dir.path(), "masks", "images_unused", 255);
    let beside = path_str(&dir.path().join("masks")).to_string();
    let o = maskprep(&["stats", path_str(&photos)]);
    let err = stderr(&o);
    assert_eq!(code(&o), 2, "{err}");
    assert!(err.contains("holds photographs, not masks"), "{err}");
    assert!(
        err.contains(&format!("none found inside `{}`", photos.display())),
        "{err}"
    );
    assert!(!err.contains(&beside), "{err}");
    // JPEG photos only: read as (JPEG) masks, found to be photographs.
    let jpgs = dir.path().join("jpgs");
    jpeg(&jpgs.join("a.jpg"), 64, 64, 1);
    jpeg(&jpgs.join("b.jpg"), 64, 64, 2);
    let o = maskprep(&["stats", path_str(&jpgs)]);
    let err = stderr(&o);
    assert_eq!(code(&o), 2, "{err}");
    assert!(err.contains("holds photographs, not masks"), "{err}");
    assert!(
        err.contains("candidate mask folders: none found inside"),
        "{err}"
    );
    assert!(!err.contains(&beside), "{err}");
}

/// A photo among masks names the mask folders inside DIR, nearest first,
/// and none of the dataset beside it.
#[test]
fn skipped_photos_name_only_mask_folders_inside_dir() {
    let dir = tempfile::tempdir().unwrap();
    binary_dataset(&dir.path().join("other"), "masks", "images", 255);
    let mine = dir.path().join("mine");
    let fg = binary_dataset(&mine, "seg_masks", "unused", 255);
    binary_dataset(&mine.join("deeper/more"), "old_masks", "unused", 255);
    std::fs::remove_dir_all(mine.join("unused")).unwrap();
    std::fs::remove_dir_all(mine.join("deeper/more/unused")).unwrap();
    rgb_png(&mine.join("zzz_photo.png"), 40, 40, photo_rgb(40, 40, 3));
    let (o, d) = stats(&mine);
    let err = stderr(&o);
    assert_eq!(code(&o), 1, "{err}");
    let near = format!("`{}/`", mine.join("seg_masks").display());
    let far = format!("`{}/`", mine.join("deeper/more/old_masks").display());
    let at = |s: &str| err.find(s).unwrap_or_else(|| panic!("{s} not in {err}"));
    assert!(at(&near) < at(&far), "{err}");
    assert!(!err.contains(path_str(&dir.path().join("other"))), "{err}");
    assert_eq!(d["files"]["bad"].as_array().unwrap().len(), 1);
    assert_eq!(class_pixels(&d), [2 * fg]);
}

// ---- 5. undeclared codes are bounded --------------------------------------

#[test]
fn undeclared_codes_are_bounded_and_sorted_by_pixels() {
    let dir = tempfile::tempdir().unwrap();
    // 300 colours in 3 masks, colour k holding k+1 pixels (plus one black).
    let mut want_total = 0u64;
    for m in 0..3u32 {
        let mut data = Vec::new();
        for k in (m * 100)..(m * 100 + 100) {
            for _ in 0..=k {
                data.extend([1u8, (k >> 8) as u8 + 10, k as u8]);
            }
            want_total += u64::from(k) + 1;
        }
        let w = data.len() as u32 / 3;
        rgb_png(&dir.path().join(format!("{m}.png")), w, 1, data);
    }
    let labels = dir.path().join("labels.toml");
    std::fs::write(
        &labels,
        "kind = \"palette\"\nclasses = [\"x\"]\n[colors]\n\"#000000\" = [\"x\"]\n",
    )
    .unwrap();
    let out = dir.path().join("s.json");
    let o = maskprep(&[
        "-q",
        "stats",
        path_str(dir.path()),
        "--labels",
        path_str(&labels),
        "-o",
        path_str(&out),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.len() < 100_000, "{} bytes", text.len());
    let d: Value = serde_json::from_str(&text).unwrap();
    let list = d["undeclared"].as_array().unwrap();
    assert_eq!(list.len(), 50);
    let px: Vec<u64> = list.iter().map(|u| u["pixels"].as_u64().unwrap()).collect();
    assert_eq!(px[0], 300);
    assert!(px.windows(2).all(|w| w[0] > w[1]));
    let listed: u64 = px.iter().sum();
    let rest = &d["undeclared_rest"];
    assert_eq!(rest["codes"], 250);
    assert_eq!(rest["pixels"].as_u64().unwrap() + listed, want_total);
    assert_eq!(rest["masks"], 250);
    assert_eq!(d["pixels"]["undeclared"], want_total);
    let o = maskprep(&["stats", path_str(dir.path()), "--labels", path_str(&labels)]);
    let table = common::stdout(&o);
    assert!(table.contains("and 250 more code(s)"), "{table}");
    assert!(table.lines().count() < 120);
}

#[test]
fn merged_partitions_equal_the_whole_run_with_undeclared_codes() {
    let dir = tempfile::tempdir().unwrap();
    // 400 codes in all, 200 per partition: more than a whole run lists,
    // fewer than a partition document keeps, so the merge stays exact.
    for m in 0..4u32 {
        let mut data = Vec::new();
        for k in 0..100u32 {
            for _ in 0..=(k + 3 * m) % 17 {
                data.extend([2u8, m as u8 + 1, k as u8]);
            }
        }
        let w = data.len() as u32 / 3;
        rgb_png(&dir.path().join(format!("{m}.png")), w, 1, data);
    }
    let labels = dir.path().join("labels.toml");
    std::fs::write(
        &labels,
        "kind = \"palette\"\nclasses = [\"x\"]\n[colors]\n\"#000000\" = [\"x\"]\n",
    )
    .unwrap();
    let run = |extra: &[&str], out: &PathBuf| {
        let mut args = vec![
            "-q",
            "stats",
            path_str(dir.path()),
            "--labels",
            path_str(&labels),
            "-o",
            path_str(out),
            "--json",
        ];
        args.extend_from_slice(extra);
        let o = maskprep(&args);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    };
    let whole = dir.path().join("whole.json");
    run(&[], &whole);
    let p1 = dir.path().join("p1.json");
    let p2 = dir.path().join("p2.json");
    run(&["--partition", "1/2"], &p1);
    run(&["--partition", "2/2"], &p2);
    let o = maskprep(&["merge", path_str(&p1), path_str(&p2), "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let merged = json(&o);
    let whole: Value = serde_json::from_str(&std::fs::read_to_string(&whole).unwrap()).unwrap();
    assert_eq!(whole["undeclared"].as_array().unwrap().len(), 50);
    assert_eq!(whole["undeclared_rest"]["codes"], 350);
    assert_eq!(merged["undeclared"], whole["undeclared"]);
    assert_eq!(merged["undeclared_rest"], whole["undeclared_rest"]);
    assert_eq!(merged["pixels"], whole["pixels"]);
    assert_eq!(merged["warnings"], whole["warnings"]);
}

// ---- real layouts from fixtures-external ---------------------------------

#[test]
fn external_voc_tree_with_rgb_masks_uses_the_voc_colours() {
    let Some(ext) = common::external() else {
        return;
    };
    let root = ext.path("datumaro/tests/assets/voc_dataset/voc_dataset1");
    let (o, d) = stats(&root);
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    assert!(err.contains("(VOC layout)"), "{err}");
    assert_eq!(d["labels_origin"], "preset voc-colours");
    assert_eq!(d["classes"].as_array().unwrap().len(), 21);
    assert_eq!(d["pixels"]["undeclared"], 0);
}

#[test]
fn external_mmseg_pseudo_dataset_pairs_gt_and_img_names() {
    let Some(ext) = common::external() else {
        return;
    };
    let root = ext.path("mmsegmentation/tests/data/pseudo_dataset");
    let (o, d) = stats(&root);
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    assert_eq!(d["files"]["masks_found"], 5);
    assert_eq!(
        d["files"]["masks_without_images"].as_array().unwrap().len(),
        0
    );
    assert_eq!(
        d["files"]["images_without_masks"].as_array().unwrap().len(),
        0
    );
}

#[test]
fn external_cityscapes_with_instance_ids_only_says_so() {
    let Some(ext) = common::external() else {
        return;
    };
    let root = ext.path("datumaro/tests/assets/cityscapes_dataset/dataset");
    let o = maskprep(&["stats", path_str(&root)]);
    let err = stderr(&o);
    assert_eq!(code(&o), 2, "{err}");
    assert!(err.contains("holds no `*_labelIds.png`"), "{err}");
    let root = ext.path("datumaro/tests/assets/cityscapes_dataset/train_dataset");
    let (o, d) = stats(&root);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(d["labels_origin"], "preset cityscapes-trainids");
    assert_eq!(d["files"]["masks_found"], 4);
    assert_eq!(
        d["files"]["masks_without_images"].as_array().unwrap().len(),
        0
    );
}

#[test]
fn binary_masks_get_bce_weights_for_one_output_channel() {
    let dir = tempfile::tempdir().unwrap();
    let fg = binary_dataset(dir.path(), "masks", "images", 255);
    let out = dir.path().join("w");
    let o = maskprep(&["weights", path_str(dir.path()), "-o", path_str(&out)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = std::fs::read_to_string(out.join("weights.json")).unwrap();
    let w: Value = serde_json::from_str(&text).unwrap();
    let n = 3 * 16 * 12;
    let pw = (n - fg) as f64 / fg as f64;
    assert_eq!(w["advice"]["loss"], "BCEWithLogitsLoss");
    assert_eq!(w["advice"]["bce"]["recommended"], true);
    assert_eq!(w["pos_weight"]["shape"], serde_json::json!([1, 1, 1]));
    let got = w["pos_weight"]["values"][0].as_f64().unwrap();
    assert!((got - pw).abs() < 1e-4, "{got} vs {pw}");
}

#[test]
fn binary_0_1_with_a_255_border_ignores_the_border() {
    let dir = tempfile::tempdir().unwrap();
    let mut fg = 0;
    for i in 0..2u32 {
        let mut m = square(12, 12, 2, 2, 8, 255);
        for y in 3..9 {
            for x in 3..9 {
                m[y * 12 + x] = 1;
            }
        }
        fg += 36;
        gray_png(&dir.path().join(format!("{i}.png")), 12, 12, m);
    }
    let (o, d) = stats(dir.path());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(d["labels"]["kind"], "binary");
    assert_eq!(class_pixels(&d), [fg]);
    assert_eq!(d["pixels"]["ignored"], 2 * (64 - 36));
    assert_eq!(d["pixels"]["valid"], 2 * (144 - 28));
}

#[test]
fn external_ade20k_full_layout_uses_red_and_green() {
    let Some(ext) = common::external() else {
        return;
    };
    let root = ext.path("datumaro/tests/assets/ade20k2020_dataset/dataset");
    let (o, d) = stats(&root);
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    assert!(err.contains("ADE20K full layout"), "{err}");
    assert_eq!(d["labels_origin"], "preset ade20k-full");
    assert_eq!(d["files"]["masks_found"], 2);
    assert_eq!(
        d["files"]["images_without_masks"].as_array().unwrap().len(),
        0
    );
    assert_eq!(
        d["files"]["masks_without_images"].as_array().unwrap().len(),
        0
    );
    assert_eq!(d["pixels"]["undeclared"], 0);
}

#[test]
fn index_values_stored_in_rgb_are_not_thresholded_channels() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..2 {
        stripes(
            &dir.path().join(format!("{i}.png")),
            10,
            &[BLACK, [1, 1, 1], [2, 2, 2], [3, 0, 0]],
            &[5, 3, 2, 2],
        );
    }
    let (o, d) = stats(dir.path());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_ne!(d["labels"]["kind"], "rgb-bits", "{}", stderr(&o));
    assert_eq!(d["pixels"]["undeclared"], 0);
    assert_eq!(d["classes"].as_array().unwrap().len(), 3);
}

// ---- independent recount (numpy) -------------------------------------------

#[test]
fn numpy_recounts_the_detected_readings() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    binary_dataset(&base.join("bin255"), "masks", "images", 255);
    binary_dataset(&base.join("bin01"), "masks", "images", 1);
    for k in 0..3 {
        rgb_png(
            &base.join(format!("aa/masks/{k}.png")),
            64,
            64,
            aa_channels(64, 64, k),
        );
    }
    for i in 0..3 {
        stripes(
            &base.join(format!("ry/masks/{i}.png")),
            10,
            &[BLACK, RED, YELLOW],
            &[4, 2 + i, 5],
        );
    }
    for case in ["bin255", "bin01", "aa", "ry"] {
        let out = base.join(format!("{case}.json"));
        let o = maskprep(&[
            "-q",
            "stats",
            path_str(&base.join(case)),
            "-o",
            path_str(&out),
        ]);
        assert_eq!(code(&o), 0, "{case}: {}", stderr(&o));
        common::run_python(
            "check_stats.py",
            &[path_str(&out), path_str(&base.join(case))],
        );
    }
}

#[test]
fn evenly_spread_gray_levels_are_four_classes_and_255_is_one_of_them() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..2u32 {
        let m: Vec<u8> = (0..16 * 4u32)
            .map(|p| [0u8, 85, 170, 255][((p / 16 + i) % 4) as usize])
            .collect();
        gray_png(&dir.path().join(format!("{i}.png")), 16, 4, m);
    }
    let (o, d) = stats(dir.path());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(d["labels"]["kind"], "index");
    assert_eq!(
        class_names(&d),
        ["class_0", "class_85", "class_170", "class_255"]
    );
    assert_eq!(class_pixels(&d), [32, 32, 32, 32]);
    assert_eq!(d["pixels"]["ignored"], 0);
}

#[test]
fn voc_segmentation_class_aug_gray_masks_use_the_voc_preset() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("VOCdevkit/VOC2012");
    voc_tree(&root, &["2007_000032"]);
    let mut person = 0;
    for name in ["2007_000032", "2008_000001"] {
        let mut m = square(20, 16, 1, 1, 6, 255);
        for y in 2..6 {
            for x in 2..6 {
                m[y * 20 + x] = 15;
            }
        }
        person += 16;
        gray_png(
            &root.join(format!("SegmentationClassAug/{name}.png")),
            20,
            16,
            m,
        );
    }
    let (o, d) = stats(&dir.path().join("VOCdevkit"));
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    assert!(err.contains("`VOC2012/SegmentationClassAug/`"), "{err}");
    assert_eq!(d["labels_origin"], "preset voc");
    assert_eq!(d["files"]["masks_found"], 2);
    assert_eq!(d["classes"][15]["pixels"], person);
    assert_eq!(d["pixels"]["ignored"], 2 * (36 - 16));
}

#[test]
fn labels_states_evidence_and_runner_up() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..2 {
        stripes(
            &dir.path().join(format!("masks/{i}.png")),
            10,
            &[BLACK, RED, YELLOW],
            &[4, 2, 5],
        );
    }
    let o = maskprep(&["labels", path_str(dir.path())]);
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    assert!(err.contains("evidence:"), "{err}");
    assert!(err.contains("never appears alone"), "{err}");
    assert!(err.contains("runner-up: rgb-bits"), "{err}");
    assert!(common::stdout(&o).contains("kind = \"palette\""));
}

// ---- JPEG masks (Kvasir-SEG style) -----------------------------------------

/// Encodes RGB bytes as a JPEG file; returns what a decoder reads back.
fn jpeg_mask(path: &Path, w: u32, h: u32, rgb: &[u8]) -> Vec<u8> {
    mkdir(path.parent().unwrap());
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 85)
        .encode(rgb, w, h, image::ExtendedColorType::Rgb8)
        .unwrap();
    std::fs::write(path, &bytes).unwrap();
    image::load_from_memory(&bytes)
        .unwrap()
        .to_rgb8()
        .into_raw()
}

#[test]
fn jpeg_binary_masks_are_binary_with_a_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let mut fg = 0u64;
    for k in 0..3u32 {
        // A white anti-aliased disk on black, saved as an RGB JPEG.
        let rgb: Vec<u8> = aa_channels(64, 64, k)
            .chunks_exact(3)
            .flat_map(|p| [p[0]; 3])
            .collect();
        let back = jpeg_mask(&dir.path().join(format!("masks/{k}.jpg")), 64, 64, &rgb);
        fg += back
            .chunks_exact(3)
            .filter(|p| *p.iter().max().unwrap() >= 128)
            .count() as u64;
        jpeg(&dir.path().join(format!("images/{k}.jpg")), 64, 64, 5);
    }
    let (o, d) = stats(dir.path());
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    assert_eq!(d["labels"]["kind"], "binary", "{err}");
    assert_eq!(d["labels"]["threshold"], 128);
    assert_eq!(class_pixels(&d), [fg]);
    assert_eq!(d["pixels"]["valid"], 3 * 64 * 64);
    assert!(d["labels_detection"]["blended_fraction"].as_f64().unwrap() > 0.0);
    assert!(err.contains("compression noise"), "{err}");
}

#[test]
fn jpeg_channel_masks_are_rgb_bits_with_a_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    for k in 0..3u32 {
        let back = jpeg_mask(
            &dir.path().join(format!("gt/{k}.jpg")),
            64,
            64,
            &aa_channels(64, 64, k),
        );
        jpeg(&dir.path().join(format!("img/{k}.jpg")), 64, 64, 6);
        all.push(back);
    }
    let (want, _) = channel_counts(&all);
    let (o, d) = stats(dir.path());
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    assert!(err.contains("masks: `gt/`"), "{err}");
    assert_eq!(d["labels"]["kind"], "rgb-bits", "{err}");
    assert_eq!(class_pixels(&d), want);
    assert_eq!(d["pixels"]["undeclared"], 0);
}

#[test]
fn one_pair_of_folders_per_split() {
    let dir = tempfile::tempdir().unwrap();
    let a = binary_dataset(&dir.path().join("train"), "masks", "images", 255);
    let b = binary_dataset(&dir.path().join("val"), "masks", "images", 255);
    let (o, d) = stats(dir.path());
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    assert!(err.contains("`train/masks/`, `val/masks/`"), "{err}");
    assert_eq!(d["files"]["masks_found"], 6);
    assert_eq!(class_pixels(&d), [a + b]);
    assert_eq!(
        d["files"]["masks_without_images"].as_array().unwrap().len(),
        0
    );
}

#[test]
fn external_segnet_camvid_root_finds_the_annot_folders() {
    let Some(ext) = common::external() else {
        return;
    };
    let root = ext.path("segnet-camvid/CamVid");
    let (o, d) = stats(&root);
    let err = stderr(&o);
    assert!(code(&o) <= 1, "{err}");
    assert!(err.contains("masks: `valannot/`"), "{err}");
    assert!(err.contains("images: `val/`"), "{err}");
    assert_eq!(d["files"]["masks_found"], 101);
    assert_eq!(d["labels"]["kind"], "index");
}

// ---- issue 25: release trees of any depth, photos among masks ------------

/// A gray "micrograph" with few gray levels: 41 levels (110..=150), evenly
/// spread, none dominant. Not a photograph on its histogram alone.
fn few_levels_gray(w: u32, h: u32) -> Vec<u8> {
    (0..w * h)
        .map(|p| 110 + ((p % w + p / w) * 41 / (w + h)) as u8)
        .collect()
}

/// The ADE20K 2021 release, seven levels below the folder downloaded:
/// `ADE20K_2021_17_01/images/ADE/{training,validation}/<group>/<scene>/`,
/// each `*_seg.png` beside its photo, part masks and annotation file.
#[test]
fn ade20k_2021_release_seven_levels_deep_reads_red_and_green() {
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("ADE20K_2021_17_01");
    std::fs::create_dir_all(&release).unwrap();
    std::fs::write(release.join("objects.txt"), "wall\n").unwrap();
    let mut want: std::collections::BTreeMap<u32, u64> = Default::default();
    let mut unlabelled = 0u64;
    let mut n = 0;
    for (split, group, scene, prefix) in [
        ("training", "cultural", "apse_indoor", "ADE_train"),
        ("training", "urban", "street", "ADE_train"),
        ("validation", "urban", "street", "ADE_val"),
    ] {
        let folder = release.join(format!("images/ADE/{split}/{group}/{scene}"));
        for i in 0..2u32 {
            n += 1;
            // Classes 2978 (R 110, G 162), 1 (0, 1) and 12 + n (R 0, G
            // 12 + n): many instance colours (B), few classes.
            let mut m = Vec::new();
            for p in 0..16 * 8u32 {
                let px: [u8; 3] = match (p + i) % 4 {
                    0 => [110, 162, (p % 7) as u8 + 1],
                    1 => [0, 1, (p % 3) as u8 + 9],
                    2 => [0, 12 + n as u8, 200],
                    _ => [0, 0, 0],
                };
                let class = u32::from(px[0]) / 10 * 256 + u32::from(px[1]);
                if class == 0 {
                    unlabelled += 1;
                } else {
                    *want.entry(class).or_default() += 1;
                }
                m.extend(px);
            }
            let stem = format!("{prefix}_{n:08}");
            rgb_png(&folder.join(format!("{stem}_seg.png")), 16, 8, m);
            rgb_png(
                &folder.join(format!("{stem}_parts_1.png")),
                16,
                8,
                vec![9; 16 * 8 * 3],
            );
            std::fs::write(folder.join(format!("{stem}.json")), "{}").unwrap();
            rgb_png(
                &folder.join(format!("{stem}/instance_000_{stem}.png")),
                16,
                8,
                vec![255; 16 * 8 * 3],
            );
            jpeg(&folder.join(format!("{stem}.jpg")), 16, 8, u64::from(i));
        }
    }
    let (o, d) = stats(dir.path());
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    assert!(
        err.contains("ADE20K full layout, only `*_seg.png`"),
        "{err}"
    );
    assert_eq!(d["labels_origin"], "preset ade20k-full");
    assert_eq!(d["labels"]["kind"], "ade20k-seg");
    let names: Vec<String> = want.keys().map(|c| format!("class_{c}")).collect();
    assert_eq!(class_names(&d), names);
    assert_eq!(class_pixels(&d), want.values().copied().collect::<Vec<_>>());
    assert_eq!(d["pixels"]["ignored"], unlabelled);
    assert_eq!(d["files"]["masks_found"], 6);
    for k in ["masks_without_images", "images_without_masks", "bad"] {
        assert_eq!(d["files"][k].as_array().unwrap().len(), 0, "{k}: {err}");
    }
}

/// A U-Net repository: `data/<name>/train/{image,label}`, three levels
/// down, with a gray micrograph of few gray levels among the photos.
fn unet_repo(root: &Path) -> u64 {
    let train = root.join("data/membrane/train");
    let mut fg = 0;
    for i in 0..4u32 {
        let side = 4 + i;
        gray_png(
            &train.join(format!("label/{i}.png")),
            64,
            48,
            square(64, 48, i, 2, side, 255),
        );
        fg += u64::from(side * side);
        gray_png(
            &train.join(format!("image/{i}.png")),
            64,
            48,
            if i == 2 {
                few_levels_gray(64, 48)
            } else {
                photo_gray(64, 48)
            },
        );
    }
    // Test photos and a model's predictions, no labels: not a dataset.
    gray_png(
        &root.join("data/membrane/test/0.png"),
        64,
        48,
        photo_gray(64, 48),
    );
    gray_png(
        &root.join("data/membrane/test/0_predict.png"),
        64,
        48,
        few_levels_gray(64, 48),
    );
    fg
}

#[test]
fn unet_pair_three_levels_deep_is_found_and_its_photos_are_not_masks() {
    let dir = tempfile::tempdir().unwrap();
    let fg = unet_repo(dir.path());
    let (o, d) = stats(dir.path());
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    assert!(
        err.contains(
            "masks: `data/membrane/train/label/` (masks beside images), images: \
             `data/membrane/train/image/`"
        ),
        "{err}"
    );
    assert_eq!(d["labels"]["kind"], "binary");
    assert_eq!(class_pixels(&d), [fg]);
    assert_eq!(d["files"]["masks_found"], 4);
    assert_eq!(d["files"]["bad"].as_array().unwrap().len(), 0);

    // Pointed at the image folder: every file is a photograph, the one with
    // few gray levels too (its folder is named for photographs).
    let image = dir.path().join("data/membrane/train/image");
    let o = maskprep(&["stats", path_str(&image)]);
    let err = stderr(&o);
    assert_eq!(code(&o), 2, "{err}");
    assert!(
        err.contains("holds photographs, not masks (4 of the sampled files"),
        "{err}"
    );
}

/// Photos and masks in folders named like neither: DIR is read as the mask
/// folder; the photo with few gray levels is skipped with the others of
/// its folder, saying why, and adds no pixel.
#[test]
fn a_photo_with_few_gray_levels_among_photos_is_skipped_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let mut fg = 0;
    for i in 0..5u32 {
        gray_png(
            &dir.path().join(format!("seg/{i}.png")),
            64,
            48,
            square(64, 48, i, 1, 5, 255),
        );
        fg += 25;
        gray_png(
            &dir.path().join(format!("scans/{i}.png")),
            64,
            48,
            if i == 3 {
                few_levels_gray(64, 48)
            } else {
                photo_gray(64, 48)
            },
        );
    }
    let (o, d) = stats(dir.path());
    let err = stderr(&o);
    assert_eq!(code(&o), 1, "{err}");
    assert_eq!(class_pixels(&d), [fg]);
    let bad = d["files"]["bad"].as_array().unwrap();
    assert_eq!(bad.len(), 5, "{bad:?}");
    let few = bad
        .iter()
        .find(|b| b["path"].as_str().unwrap().ends_with("scans/3.png"))
        .unwrap_or_else(|| panic!("{bad:?}"));
    let why = few["reason"].as_str().unwrap();
    assert!(why.contains("41 gray levels"), "{why}");
    assert!(why.contains("4 of the 4 other files"), "{why}");
    assert!(why.contains("are photographs"), "{why}");
}

/// Split folders at different depths make one dataset, each keyed by
/// where it is.
#[test]
fn split_folders_at_different_depths_are_one_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let a = binary_dataset(&dir.path().join("train"), "masks", "images", 255);
    let b = binary_dataset(&dir.path().join("extra/val"), "masks", "images", 255);
    let (o, d) = stats(dir.path());
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    assert!(
        err.contains("masks: `train/masks/`, `extra/val/masks/` (masks beside images)"),
        "{err}"
    );
    assert_eq!(d["files"]["masks_found"], 6);
    assert_eq!(class_pixels(&d), [a + b]);
    for k in ["masks_without_images", "images_without_masks", "bad"] {
        assert_eq!(d["files"][k].as_array().unwrap().len(), 0, "{k}: {err}");
    }
}

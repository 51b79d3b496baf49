//! `maskprep check` run as a user runs it, on masks generated in temp
//! folders: objects against scipy.ndimage (`tests/python/check_components.py`),
//! duplicates across splits (lossless and lossy re-encodings of a photo),
//! missing classes and `--strict`, splits from folders, VOC lists and
//! `--split`, sampling weights read back with safetensors and numpy
//! (`tests/python/check_sampling.py`), and byte-identical output with any
//! thread count.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

const LABELS: &str =
    "kind = \"index\"\nclasses = [\"background\", \"a\", \"b\", \"c\"]\nignore = [255]\n";

/// An 8-bit gray PNG, `rows` of digits (`.` = 0).
fn write_mask(path: &Path, rows: &[&str]) {
    let w = rows[0].len() as u32;
    let data: Vec<u8> = rows
        .iter()
        .flat_map(|r| r.bytes().map(|b| if b == b'.' { 0 } else { b - b'0' }))
        .collect();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::GrayImage::from_raw(w, rows.len() as u32, data)
        .unwrap()
        .save(path)
        .unwrap();
}

/// A noisy 8-bit RGB photo (seeded), as pixels.
fn photo(seed: u32, w: u32, h: u32) -> image::RgbImage {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    image::RgbImage::from_fn(w, h, |i, j| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let v = (x % 64) as u8;
        image::Rgb([v + (i * 4) as u8, v + (j * 4) as u8, v * 2])
    })
}

/// PNG with a chosen compression (another encoding of the same pixels).
fn save_png(img: &image::RgbImage, path: &Path, fast: bool) {
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let f = std::fs::File::create(path).unwrap();
    let (c, flt) = if fast {
        (CompressionType::Fast, FilterType::NoFilter)
    } else {
        (CompressionType::Best, FilterType::Paeth)
    };
    img.write_with_encoder(PngEncoder::new_with_quality(f, c, flt))
        .unwrap();
}

fn save_jpeg(img: &image::RgbImage, path: &Path, quality: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let f = std::fs::File::create(path).unwrap();
    img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
        f, quality,
    ))
    .unwrap();
}

fn check_json(args: &[&str]) -> (i32, Value, String) {
    let mut all = vec!["check", "--json"];
    all.extend_from_slice(args);
    let o = maskprep(&all);
    let err = stderr(&o);
    assert!(code(&o) == 0 || code(&o) == 1, "exit {}: {err}", code(&o));
    (code(&o), json(&o), err)
}

fn components_match_scipy(conn: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let masks = tmp.path().join("masks");
    let labels = tmp.path().join("labels.toml");
    run_python(
        "check_components.py",
        &["gen", path_str(&masks), "11", "60"],
    );
    let out = tmp.path().join("check.json");
    let o = maskprep(&[
        "check",
        path_str(&masks),
        "--labels",
        path_str(&labels),
        "--connectivity",
        conn,
        "--min-object",
        "9",
        "--list",
        "1000",
        "-o",
        path_str(&out),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let said = run_python(
        "check_components.py",
        &["verify", path_str(&masks), path_str(&out), conn, "9"],
    );
    assert!(said.contains("match scipy"), "{said}");
}

#[test]
fn objects_match_scipy_with_8_connectivity() {
    components_match_scipy("8");
}

#[test]
fn objects_match_scipy_with_4_connectivity() {
    components_match_scipy("4");
}

/// Hand counts: a diagonal chain (one object at 8, three at 4), a ring
/// with a hole, a one-pixel island inside it.
#[test]
fn hand_counted_objects_holes_and_small_objects() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("labels.toml"), LABELS).unwrap();
    let m = tmp.path().join("masks");
    write_mask(
        &m.join("0.png"),
        &[
            "1.......", ".1.22222", "..12...2", "...2.2.2", "...2...2", "...22222",
        ],
    );
    let labels = tmp.path().join("labels.toml");
    let (c, d, _) = check_json(&[
        path_str(&m),
        "--labels",
        path_str(&labels),
        "--min-object",
        "3",
    ]);
    assert_eq!(c, 0);
    let a = &d["classes"][1];
    assert_eq!(
        (a["objects"].as_u64(), a["sizes"]["max"].as_u64()),
        (Some(1), Some(3))
    );
    let b = &d["classes"][2];
    assert_eq!(b["objects"], 2);
    assert_eq!(b["objects_with_holes"], 1);
    assert_eq!(
        (b["sizes"]["min"].as_u64(), b["sizes"]["max"].as_u64()),
        (Some(1), Some(16))
    );
    assert_eq!(b["small_objects"], 1);
    assert_eq!(b["worst_images"][0]["smallest"], 1);
    let (_, d4, _) = check_json(&[
        path_str(&m),
        "--labels",
        path_str(&labels),
        "--connectivity",
        "4",
        "--min-object",
        "3",
    ]);
    assert_eq!(d4["classes"][1]["objects"], 3);
    assert_eq!(d4["classes"][1]["small_objects"], 3);
    assert_eq!(d4["meta"]["connectivity"], 4);
}

/// train/ val/ test/ folders, each `masks/` beside `images/`.
fn split_dataset(root: &Path) {
    std::fs::write(root.join("labels.toml"), LABELS).unwrap();
    let mask_a = ["11..", "11..", "..22", "..23"];
    let mask_b = ["1...", "....", "..22", "..22"];
    let mask_c = ["....", ".33.", ".33.", "...."];
    write_mask(&root.join("train/masks/a.png"), &mask_a);
    write_mask(&root.join("train/masks/b.png"), &mask_b);
    write_mask(&root.join("train/masks/c.png"), &mask_c);
    // The same mask as train's `a`, in val: a leak.
    write_mask(&root.join("val/masks/a2.png"), &mask_a);
    write_mask(
        &root.join("val/masks/d.png"),
        &["1...", "....", "....", "...."],
    );
    write_mask(&root.join("test/masks/e.png"), &mask_b);
    let p = photo(1, 4, 4);
    save_png(&p, &root.join("train/images/a.png"), false);
    save_png(&photo(2, 4, 4), &root.join("train/images/b.png"), false);
    save_png(&photo(3, 4, 4), &root.join("train/images/c.png"), false);
    // Train's photo `a`: losslessly re-encoded in val, JPEG quality 100 in test.
    save_png(&p, &root.join("val/images/a2.png"), true);
    save_png(&photo(4, 4, 4), &root.join("val/images/d.png"), true);
    save_jpeg(&p, &root.join("test/images/e.jpg"), 100);
}

#[test]
fn leaks_across_splits_missing_classes_and_strict() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    split_dataset(root);
    let labels = root.join("labels.toml");
    let (c, d, err) = check_json(&[path_str(root), "--labels", path_str(&labels)]);
    assert_eq!(c, 0, "{err}");
    let names: Vec<&str> = d["splits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["test", "train", "val"]);
    // Masks: train `a` = val `a2` (across), train `b` = test `e` (across).
    let m = &d["duplicates"]["masks"];
    assert_eq!(
        (m["pairs"].as_u64(), m["cross_split_pairs"].as_u64()),
        (Some(2), Some(2))
    );
    let pairs: Vec<(String, String)> = m["listed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["split_a"].as_str().unwrap().into(),
                p["split_b"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(pairs.contains(&("train".into(), "val".into())), "{pairs:?}");
    // Photos: the lossless copy matches; the JPEG at quality 100 does not.
    let p = &d["duplicates"]["photos"];
    assert_eq!(p["pairs"], 1, "{p}");
    let pair = &p["listed"][0];
    assert!(
        pair["a"].as_str().unwrap().ends_with("train/images/a.png"),
        "{pair}"
    );
    assert!(
        pair["b"].as_str().unwrap().ends_with("val/images/a2.png"),
        "{pair}"
    );
    // Missing: test has only background, a and b.
    let missing = |i: usize| d["splits"][i]["missing_classes"].clone();
    assert_eq!(missing(0), serde_json::json!(["c"]));
    assert_eq!(missing(1), serde_json::json!([]));
    assert_eq!(missing(2), serde_json::json!([]));
    assert_eq!(d["problems"]["missing_classes"], 1);
    assert!(err.contains("across splits (leakage)"), "{err}");
    let o = maskprep(&[
        "check",
        path_str(root),
        "--labels",
        path_str(&labels),
        "--strict",
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stdout(&o).contains("duplicate masks: 2 group(s), 2 pair(s), 2 across splits"));
}

/// A JPEG's decoded pixels saved as PNG are the same photo.
#[test]
fn a_jpeg_and_the_png_of_its_decoded_pixels_are_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::write(root.join("labels.toml"), LABELS).unwrap();
    write_mask(&root.join("train/masks/a.png"), &["1.", ".."]);
    write_mask(&root.join("val/masks/b.png"), &["2.", ".."]);
    let jpg = root.join("train/images/a.jpg");
    save_jpeg(&photo(9, 16, 16), &jpg, 90);
    let decoded = image::open(&jpg).unwrap().into_rgb8();
    save_png(&decoded, &root.join("val/images/b.png"), true);
    let (_, d, _) = check_json(&[
        path_str(root),
        "--labels",
        path_str(&root.join("labels.toml")),
    ]);
    assert_eq!(d["duplicates"]["photos"]["cross_split_pairs"], 1);
    assert_eq!(d["duplicates"]["masks"]["pairs"], 0);
    let (_, d, _) = check_json(&[
        path_str(root),
        "--labels",
        path_str(&root.join("labels.toml")),
        "--no-photos",
    ]);
    assert_eq!(d["duplicates"]["photos"], Value::Null);
}

#[test]
fn given_splits_and_voc_lists() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    split_dataset(root);
    let labels = root.join("labels.toml");
    let train = format!("train={}", root.join("train").display());
    let val = format!("val={}", root.join("val").display());
    let (_, d, _) = check_json(&[
        "--split",
        &train,
        "--split",
        &val,
        "--labels",
        path_str(&labels),
    ]);
    assert_eq!(d["splits"][0]["name"], "train");
    assert_eq!(d["splits"][0]["images"], 3);
    assert_eq!(d["splits"][1]["images"], 2);
    assert_eq!(d["duplicates"]["masks"]["cross_split_pairs"], 1);

    let voc = root.join("voc");
    write_mask(&voc.join("SegmentationClass/x1.png"), &["11", ".."]);
    write_mask(&voc.join("SegmentationClass/x2.png"), &["22", ".."]);
    write_mask(&voc.join("SegmentationClass/x3.png"), &["11", ".."]);
    let sets = voc.join("ImageSets/Segmentation");
    std::fs::create_dir_all(&sets).unwrap();
    std::fs::write(sets.join("train.txt"), "x1\nx2\n").unwrap();
    std::fs::write(sets.join("val.txt"), "x3\n").unwrap();
    std::fs::write(sets.join("trainval.txt"), "x1\nx2\nx3\n").unwrap();
    let (_, d, _) = check_json(&[path_str(&voc), "--labels", path_str(&labels)]);
    assert!(
        d["meta"]["splits_origin"]
            .as_str()
            .unwrap()
            .contains("train, val"),
        "{}",
        d["meta"]
    );
    assert_eq!(d["splits"][0]["images"], 2);
    assert_eq!(d["splits"][1]["images"], 1);
    assert_eq!(d["duplicates"]["masks"]["cross_split_pairs"], 1);

    // A mask in two lists: counted in the first (by name), and a warning.
    std::fs::write(sets.join("val.txt"), "x3\nx2\n").unwrap();
    let (_, d, err) = check_json(&[path_str(&voc), "--labels", path_str(&labels)]);
    assert_eq!(
        d["files"]["listed_in_several_splits"],
        serde_json::json!(["x2"])
    );
    assert_eq!(d["splits"][0]["images"], 2);
    assert!(err.contains("listed in several splits"), "{err}");
}

#[test]
fn a_bad_mask_is_skipped_with_exit_1_and_output_is_thread_independent() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    split_dataset(root);
    std::fs::write(root.join("train/masks/zz.png"), b"\x89PNG\r\n\x1a\nbroken").unwrap();
    let labels = root.join("labels.toml");
    let run = |j: &str| {
        let o = maskprep(&[
            "-j",
            j,
            "check",
            path_str(root),
            "--labels",
            path_str(&labels),
            "--json",
        ]);
        assert_eq!(code(&o), 1, "{}", stderr(&o));
        assert!(stderr(&o).contains("zz.png"), "{}", stderr(&o));
        o.stdout
    };
    assert_eq!(run("1"), run("4"));
}

#[test]
fn sampling_weights_load_and_raise_the_rare_class_share() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::write(root.join("labels.toml"), LABELS).unwrap();
    // Train: 20 masks with `a`, 6 with `b`, 2 with `c` (the rarest).
    for i in 0..20 {
        let rows: &[&str] = match i {
            0 | 1 => &["13..", "...."],
            2..=7 => &["12..", "...."],
            _ => &["1...", "...."],
        };
        write_mask(&root.join(format!("train/masks/{i:02}.png")), rows);
    }
    write_mask(&root.join("val/masks/v.png"), &["123.", "...."]);
    let file = root.join("sampling.safetensors");
    let o = maskprep(&[
        "check",
        path_str(root),
        "--labels",
        path_str(&root.join("labels.toml")),
        "--sampling-weights",
        path_str(&file),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let said = run_python("check_sampling.py", &[path_str(&file), "c"]);
    assert!(said.contains("share of `c`"), "{said}");
}

/// A pipeline's `[check]` stage writes `check.json`, the sampling weights
/// and, with `[report]`, the check report.
#[test]
fn the_pipeline_check_stage_writes_its_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    std::fs::create_dir_all(&root).unwrap();
    split_dataset(&root);
    let out = tmp.path().join("out");
    let toml = format!(
        "[source]\ndir = \"{}\"\nlabels = \"{}\"\n[output]\ndir = \"{}\"\n\
         [check]\nconnectivity = 4\nsampling_weights = \"sampling.safetensors\"\nstrict = true\n[report]\n",
        root.display(),
        root.join("labels.toml").display(),
        out.display()
    );
    let pipeline = tmp.path().join("p.toml");
    std::fs::write(&pipeline, toml).unwrap();
    let o = maskprep(&["run", path_str(&pipeline)]);
    // `strict`: the leaks make the run exit 1.
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let doc: Value =
        serde_json::from_slice(&std::fs::read(out.join("check.json")).unwrap()).unwrap();
    assert_eq!(doc["meta"]["connectivity"], 4);
    assert_eq!(doc["duplicates"]["masks"]["cross_split_pairs"], 2);
    assert!(out.join("sampling.safetensors").is_file());
    assert!(out.join("sampling.safetensors.json").is_file());
    assert!(out.join("check-report/index.html").is_file());
    assert!(out.join("check-report/object_sizes.png").is_file());
    let bad = tmp.path().join("bad.toml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&pipeline)
            .unwrap()
            .replace("connectivity = 4", "connectivity = 6"),
    )
    .unwrap();
    let o = maskprep(&["run", path_str(&bad)]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("expected 4 or 8"), "{}", stderr(&o));
}

/// A Roboflow COCO export: the splits are its folders, the photos are
/// hashed like any other.
#[test]
fn coco_export_splits_are_found() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let p = photo(5, 8, 8);
    for (split, file, poly) in [
        ("train", "a.png", "[1,1,6,1,6,6,1,6]"),
        ("valid", "b.png", "[0,0,3,0,3,3,0,3]"),
    ] {
        save_png(&p, &root.join(split).join(file), split == "valid");
        let json = format!(
            "{{\"images\":[{{\"id\":1,\"file_name\":\"{file}\",\"width\":8,\"height\":8}}],\
             \"annotations\":[{{\"id\":1,\"image_id\":1,\"category_id\":1,\"segmentation\":[{poly}],\
             \"area\":25,\"bbox\":[1,1,5,5],\"iscrowd\":0}}],\
             \"categories\":[{{\"id\":0,\"name\":\"proj\"}},{{\"id\":1,\"name\":\"cat\"}}]}}"
        );
        std::fs::write(root.join(split).join("_annotations.coco.json"), json).unwrap();
    }
    let (_, d, err) = check_json(&[path_str(root)]);
    let names: Vec<&str> = d["splits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["train", "valid"], "{err}");
    assert_eq!(d["duplicates"]["photos"]["cross_split_pairs"], 1, "{err}");
    assert_eq!(d["duplicates"]["masks"]["pairs"], 0);
    let cat = d["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "cat")
        .unwrap();
    assert_eq!(cat["objects"], 2);
}

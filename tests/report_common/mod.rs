//! Shared by the report tests: reading a report folder back, and a score
//! fixture (predictions for `fixtures/plates` and their `maskprep-score/1`
//! JSON, computed here pixel by pixel, independently of maskprep).
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::common::root;

/// The files an HTML page references with `src="..."`.
pub fn image_refs(html: &str) -> BTreeSet<String> {
    html.split("src=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_string)
        .collect()
}

/// HTML-escapes text the way the report does.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Every referenced image exists, decodes as PNG and has the size the
/// `<img>` tag says; returns the references.
pub fn check_images(dir: &Path) -> BTreeSet<String> {
    let html = std::fs::read_to_string(dir.join("index.html")).expect("index.html");
    let refs = image_refs(&html);
    assert!(!refs.is_empty(), "index.html references no image");
    for r in &refs {
        assert!(!r.contains("://"), "`{r}` is not a file beside the page");
        let path = dir.join(r);
        let bytes =
            std::fs::read(&path).unwrap_or_else(|e| panic!("`{r}` is referenced but missing: {e}"));
        assert_eq!(
            image::guess_format(&bytes).ok(),
            Some(image::ImageFormat::Png),
            "`{r}` is not a PNG"
        );
        let img = image::load_from_memory(&bytes)
            .unwrap_or_else(|e| panic!("`{r}` does not decode: {e}"));
        let tag = format!(
            "src=\"{r}\" width=\"{}\" height=\"{}\"",
            img.width(),
            img.height()
        );
        assert!(
            html.contains(&tag),
            "the <img> of `{r}` does not give its size {}x{}",
            img.width(),
            img.height()
        );
    }
    refs
}

/// The three rgb-bits classes of `fixtures/plates` (threshold 128).
pub const CLASSES: [&str; 3] = ["qr_code", "scratch", "plate"];

fn bits(p: &image::Rgb<u8>) -> [bool; 3] {
    [p[0] >= 128, p[1] >= 128, p[2] >= 128]
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

fn round6(v: Option<f64>) -> Value {
    match v {
        Some(v) => json!((v * 1e6).round() / 1e6),
        None => Value::Null,
    }
}

fn mean(v: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let got: Vec<f64> = v.flatten().collect();
    (!got.is_empty()).then(|| got.iter().sum::<f64>() / got.len() as f64)
}

#[derive(Clone, Copy, Default)]
struct Counts {
    tp: u64,
    fp: u64,
    fn_: u64,
    tn: u64,
}

impl Counts {
    fn iou(&self) -> Option<f64> {
        ratio(self.tp, self.tp + self.fp + self.fn_)
    }
    fn metrics(&self) -> [Option<f64>; 5] {
        [
            self.iou(),
            ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_),
            ratio(self.tp, self.tp + self.fp),
            ratio(self.tp, self.tp + self.fn_),
            ratio(self.tp + self.tn, self.tp + self.fp + self.fn_ + self.tn),
        ]
    }
}

/// Per-image expectations of the score fixture.
pub struct Expected {
    pub json: PathBuf,
    /// `(key, per-image mIoU)`, sorted by key.
    pub images: Vec<(String, f64)>,
    pub doc: Value,
}

/// Writes predictions for `fixtures/plates` under `dir/pred` and their
/// score JSON as `dir/score.json`. Image `i` gets its QR code shifted `i`
/// pixels right; the rare scratch is found only in the first image; the
/// last image also predicts plate over its lowest 12 rows.
pub fn score_fixture(dir: &Path) -> Expected {
    let truth_dir = root().join("fixtures/plates");
    let pred_dir = dir.join("pred");
    std::fs::create_dir_all(&pred_dir).unwrap();
    let mut masks: Vec<PathBuf> = std::fs::read_dir(truth_dir.join("masks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    masks.sort();
    let mut total = [Counts::default(); 3];
    let mut per_image: Vec<(String, [Counts; 3])> = Vec::new();
    let last = masks.len() - 1;
    for (i, path) in masks.iter().enumerate() {
        let truth = image::open(path).unwrap().to_rgb8();
        let (w, h) = truth.dimensions();
        let pred = image::RgbImage::from_fn(w, h, |x, y| {
            let t = bits(truth.get_pixel(x, y));
            let qr = x >= i as u32 && bits(truth.get_pixel(x - i as u32, y))[0];
            let scratch = i == 0 && t[1];
            let plate = t[2] || (i == last && y >= h - 12);
            image::Rgb([255 * qr as u8, 255 * scratch as u8, 255 * plate as u8])
        });
        let key = path.file_stem().unwrap().to_string_lossy().into_owned();
        pred.save(pred_dir.join(format!("{key}.png"))).unwrap();
        let mut c = [Counts::default(); 3];
        for (t, p) in truth.pixels().zip(pred.pixels()) {
            let (t, p) = (bits(t), bits(p));
            for k in 0..3 {
                match (t[k], p[k]) {
                    (true, true) => c[k].tp += 1,
                    (false, true) => c[k].fp += 1,
                    (true, false) => c[k].fn_ += 1,
                    (false, false) => c[k].tn += 1,
                }
            }
        }
        for k in 0..3 {
            total[k].tp += c[k].tp;
            total[k].fp += c[k].fp;
            total[k].fn_ += c[k].fn_;
            total[k].tn += c[k].tn;
        }
        per_image.push((key, c));
    }
    let image_miou: Vec<Option<f64>> = per_image
        .iter()
        .map(|(_, c)| mean(c.iter().map(Counts::iou)))
        .collect();
    let names = ["iou", "dice", "precision", "recall", "accuracy"];
    let classes: Vec<Value> = (0..3)
        .map(|k| {
            let m = total[k].metrics();
            let mut row = json!({
                "name": CLASSES[k],
                "tp": total[k].tp, "fp": total[k].fp, "fn": total[k].fn_, "tn": total[k].tn,
            });
            for (n, v) in names.iter().zip(m) {
                row[*n] = round6(v);
            }
            row["per_image_iou"] = round6(mean(per_image.iter().map(|(_, c)| c[k].iou())));
            row["empty"] = json!(total[k].iou().is_none());
            row
        })
        .collect();
    let reduction = |convention: &str, m: [Option<f64>; 5], over: Value| {
        let mut r = json!({ "convention": convention });
        for (n, v) in names.iter().zip(m) {
            r[*n] = round6(v);
        }
        r["averaged_over"] = over;
        r
    };
    let macro_m: [Option<f64>; 5] =
        std::array::from_fn(|j| mean(total.iter().map(|c| c.metrics()[j])));
    let pooled = total.iter().fold(Counts::default(), |a, c| Counts {
        tp: a.tp + c.tp,
        fp: a.fp + c.fp,
        fn_: a.fn_ + c.fn_,
        tn: a.tn + c.tn,
    });
    let per_image_m: [Option<f64>; 5] = std::array::from_fn(|j| {
        mean(
            per_image
                .iter()
                .map(|(_, c)| mean(c.iter().map(|x| x.metrics()[j]))),
        )
    });
    let pixel_accuracy = ratio(
        total.iter().map(|c| c.tp).sum(),
        total.iter().map(|c| c.tp + c.fn_).sum(),
    );
    let pixels: u64 = 8 * 64 * 48;
    let doc = json!({
        "format": "maskprep-score/1",
        "maskprep_version": "0.1.0",
        "truth": truth_dir.display().to_string(),
        "pred": pred_dir.display().to_string(),
        "labels": { "kind": "rgb-bits", "classes": CLASSES, "threshold": 128 },
        "labels_origin": "fixtures/plates/labels.toml",
        "prediction": { "kind": "mask", "files": "png", "rule": "label map code", "threshold": null, "argmax": false, "tensor": null },
        "backend": "cpu",
        "files": { "truth_masks": 8, "pairs": 8, "images_scored": 8, "missing_predictions": [], "extra_predictions": [], "size_mismatches": [], "skipped": [] },
        "pixels": { "total": pixels, "valid": pixels, "ignored": 0, "undeclared": 0, "pred_unlabelled": 0 },
        "classes": classes,
        "reductions": {
            "macro": reduction("dataset-level: counts summed over all images, then divided per class", macro_m, json!(3)),
            "micro": reduction("counts summed over all images and all classes, then divided", pooled.metrics(), Value::Null),
            "per_image": reduction("per image: mean over classes with a defined value; then mean over images", per_image_m, json!(8)),
        },
        "summary": {
            "miou": round6(macro_m[0]),
            "mean_accuracy": round6(macro_m[4]),
            "pixel_accuracy": round6(pixel_accuracy),
            "pixel_accuracy_convention": "sum over classes of TP / sum of (TP + FN)",
            "accuracy_convention": "(TP + TN) / (TP + FP + FN + TN)",
            "per_image_miou": round6(per_image_m[0]),
            "micro_iou": round6(pooled.iou()),
            "empty_classes": [],
            "empty_image_classes": 0,
            "empty_as": "skip",
        },
        "warnings": [],
    });
    let json_path = dir.join("score.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    Expected {
        json: json_path,
        images: per_image
            .iter()
            .zip(image_miou)
            .map(|((k, _), m)| (k.clone(), m.expect("every image has a class")))
            .collect(),
        doc,
    }
}

//! Shared by the report tests: reading a report folder back, and a score
//! fixture (predictions for `fixtures/plates`, scored by `maskprep score`,
//! and counted here pixel by pixel, independently of maskprep).
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

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

/// The score fixture: predictions, their real score JSON, and what was
/// counted here independently.
pub struct Expected {
    /// `maskprep score --json` of the PNG predictions.
    pub json: PathBuf,
    pub doc: Value,
    pub pred: PathBuf,
    /// The same predictions as logits `.npy` arrays [3, H, W] (+4 / -4).
    pub logits: PathBuf,
    /// `(key, per-image mIoU)`, sorted by key.
    pub images: Vec<(String, f64)>,
    /// Per class: TP, FP, FN, TN summed over images.
    pub counts: Vec<[u64; 4]>,
}

/// Writes predictions for `fixtures/plates` under `dir/pred` (PNG) and
/// `dir/logits` (`.npy`), and scores the PNGs with `maskprep score` into
/// `dir/score.json`. Image `i` gets its QR code shifted `i` pixels right;
/// the rare scratch is found only in the first image; the last image also
/// predicts plate over its lowest 12 rows.
pub fn score_fixture(dir: &Path) -> Expected {
    let truth_dir = root().join("fixtures/plates");
    let pred_dir = dir.join("pred");
    let logits_dir = dir.join("logits");
    std::fs::create_dir_all(&pred_dir).unwrap();
    std::fs::create_dir_all(&logits_dir).unwrap();
    let mut masks: Vec<PathBuf> = std::fs::read_dir(truth_dir.join("masks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    masks.sort();
    let mut total = [[0u64; 4]; 3];
    let mut images = Vec::new();
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
        let hw = (w * h) as usize;
        let mut logits = vec![-4.0f32; 3 * hw];
        for (n, p) in pred.pixels().enumerate() {
            for (k, on) in bits(p).into_iter().enumerate() {
                if on {
                    logits[k * hw + n] = 4.0;
                }
            }
        }
        let npy = maskprep::tensors::npy_bytes(&maskprep::tensors::TensorOut::f32(
            vec![3, h as usize, w as usize],
            &logits,
        ));
        std::fs::write(logits_dir.join(format!("{key}.npy")), npy).unwrap();
        let mut c = [[0u64; 4]; 3];
        for (t, p) in truth.pixels().zip(pred.pixels()) {
            let (t, p) = (bits(t), bits(p));
            for k in 0..3 {
                let at = match (t[k], p[k]) {
                    (true, true) => 0,
                    (false, true) => 1,
                    (true, false) => 2,
                    (false, false) => 3,
                };
                c[k][at] += 1;
                total[k][at] += 1;
            }
        }
        let iou = |k: usize| {
            let [tp, fp, fn_, _] = c[k];
            (tp + fp + fn_ > 0).then(|| tp as f64 / (tp + fp + fn_) as f64)
        };
        let defined: Vec<f64> = (0..3).filter_map(iou).collect();
        let miou = defined.iter().sum::<f64>() / defined.len() as f64;
        images.push((key, miou));
    }
    let json = dir.join("score.json");
    let o = crate::common::maskprep(&[
        "score",
        "--truth",
        truth_dir.to_str().unwrap(),
        "--pred",
        pred_dir.to_str().unwrap(),
        "--json",
        "-o",
        json.to_str().unwrap(),
    ]);
    assert_eq!(crate::common::code(&o), 0, "{}", crate::common::stderr(&o));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    Expected {
        json,
        doc,
        pred: pred_dir,
        logits: logits_dir,
        images,
        counts: total.to_vec(),
    }
}

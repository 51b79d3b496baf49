//! `maskprep score` end to end: the built binary on tiny masks and arrays
//! written into a temp dir, and an independent recount with numpy
//! (`tests/python/check_score.py`).

use std::path::Path;
use std::process::{Command, Output};

use maskprep::tensors::{DType, TensorOut, npy_bytes, safetensors_bytes};
use serde_json::Value;

mod common;
use common::{python, stderr, stdout};

/// The binary cargo built for this test.
fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_maskprep"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run maskprep")
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// An RGB PNG whose pixels carry the given channel bits (R, G, B).
fn rgb_png(path: &Path, w: u32, h: u32, bits: &[[u8; 3]]) {
    let data: Vec<u8> = bits.iter().flat_map(|p| p.map(|b| b * 255)).collect();
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().unwrap().write_image_data(&data).unwrap();
    write(path, &out);
}

/// Channel bits per pixel → logits `[3, h, w]`: +2 where set, -2 elsewhere.
fn logits(bits: &[[u8; 3]]) -> Vec<f32> {
    (0..3)
        .flat_map(|c| bits.iter().map(move |p| if p[c] == 1 { 2.0 } else { -2.0 }))
        .collect()
}

const LABELS: &str = "kind = \"rgb-bits\"\nclasses = [\"ch0\", \"ch1\", \"ch2\"]\n";

type Px = [[u8; 3]; 4];

/// The 2-image, 3-channel multi-label example: (truth, pred) per image, 2x2.
const EXAMPLE: [(Px, Px); 2] = [
    (
        [[1, 1, 0], [1, 1, 0], [0, 0, 0], [0, 0, 0]],
        [[1, 1, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]],
    ),
    (
        [[1, 0, 0], [1, 0, 0], [1, 0, 0], [1, 0, 0]],
        [[1, 0, 0], [1, 0, 0], [1, 0, 0], [0, 1, 0]],
    ),
];

/// Writes the example: `truth/`, `pred_png/`, `logits/` (.npy),
/// `logits_st/` (.safetensors, float16) and `labels.toml`.
fn example(dir: &Path) {
    write(&dir.join("labels.toml"), LABELS.as_bytes());
    for (i, (t, p)) in EXAMPLE.iter().enumerate() {
        let name = format!("img{i}");
        rgb_png(&dir.join(format!("truth/{name}.png")), 2, 2, t);
        rgb_png(&dir.join(format!("pred_png/{name}.png")), 2, 2, p);
        let l = logits(p);
        write(
            &dir.join(format!("logits/{name}.npy")),
            &npy_bytes(&TensorOut::f32(vec![3, 2, 2], &l)),
        );
        let half: Vec<u8> = l
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect();
        let mut ts = std::collections::BTreeMap::new();
        ts.insert(
            "logits".to_string(),
            TensorOut {
                dtype: DType::F16,
                shape: vec![3, 2, 2],
                bytes: half.into(),
            },
        );
        write(
            &dir.join(format!("logits_st/{name}.safetensors")),
            &safetensors_bytes(&ts, &Default::default()),
        );
    }
}

fn score_json(dir: &Path, pred: &str, extra: &[&str]) -> (Value, Output) {
    let (truth, pred, labels) = (dir.join("truth"), dir.join(pred), dir.join("labels.toml"));
    let mut args = vec![
        "score",
        "--truth",
        truth.to_str().unwrap(),
        "--pred",
        pred.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    let o = run(&args);
    let v = if o.stdout.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", stdout(&o), stderr(&o)))
    };
    (v, o)
}

fn ious(v: &Value) -> Vec<Value> {
    v["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["iou"].clone())
        .collect()
}

#[test]
fn example_from_png_masks_matches_the_reference_tools() {
    let tmp = tempfile::tempdir().unwrap();
    example(tmp.path());
    let rows = tmp.path().join("rows.csv");
    let (v, o) = score_json(
        tmp.path(),
        "pred_png",
        &["--per-image", rows.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(v["format"], "maskprep-score/1");
    // Full precision in the JSON (a 0/0 IoU is null).
    assert_eq!(
        ious(&v),
        vec![
            serde_json::json!(2.0 / 3.0),
            serde_json::json!(1.0 / 3.0),
            Value::Null
        ]
    );
    let counts: Vec<[u64; 4]> = v["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| ["tp", "fp", "fn", "tn"].map(|k| c[k].as_u64().unwrap()))
        .collect();
    assert_eq!(counts, vec![[4, 0, 2, 2], [1, 1, 1, 5], [0, 0, 0, 8]]);
    let s = &v["summary"];
    assert_eq!(s["miou"], 0.5);
    assert_eq!(s["micro_iou"], 5.0 / 9.0);
    assert_eq!(s["per_image_miou"], 0.4375);
    assert_eq!(s["empty_classes"], serde_json::json!(["ch2"]));
    assert_eq!(s["empty_image_classes"], 2);
    // The absent class scores accuracy 1 (true negatives count).
    assert_eq!(v["classes"][2]["accuracy"], 1.0);
    assert_eq!(v["reductions"]["macro"]["averaged_over"], 2);
    assert!(
        v["reductions"]["per_image"]["convention"]
            .as_str()
            .unwrap()
            .contains("per image")
    );
    let csv = std::fs::read_to_string(&rows).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0]
            .starts_with("image,truth,pred,width,height,valid,miou,iou:ch0,iou:ch1,iou:ch2,tp:ch0")
    );
    let iou_cols = |l: &str| l.split(',').skip(6).take(4).collect::<Vec<_>>().join(",");
    assert_eq!(iou_cols(lines[1]), "0.5,0.5,0.5,");
    assert_eq!(iou_cols(lines[2]), "0.375,0.75,0.0,");
}

#[test]
fn example_from_logits_npy_and_float16_safetensors_gives_the_same_scores() {
    let tmp = tempfile::tempdir().unwrap();
    example(tmp.path());
    let (png, _) = score_json(tmp.path(), "pred_png", &[]);
    for pred in ["logits", "logits_st"] {
        let (v, o) = score_json(tmp.path(), pred, &[]);
        assert_eq!(o.status.code(), Some(0), "{pred}: {}", stderr(&o));
        assert_eq!(v["classes"], png["classes"], "{pred}");
        assert_eq!(v["reductions"], png["reductions"], "{pred}");
        assert_eq!(v["prediction"]["kind"], "logits");
        assert_eq!(v["prediction"]["threshold"], 0.0);
        let err = stderr(&o);
        assert!(err.contains("score > 0"), "{err}");
        // With `--features gpu`, `auto` takes a hardware GPU if there is
        // one; on a machine with only lavapipe (CI) it skips it, saying so
        // (see tests/gpu.rs).
        if cfg!(feature = "gpu") {
            assert!(
                err.contains("auto chose gpu") || err.contains("auto chose cpu (skipped adapter"),
                "{err}"
            );
        } else {
            assert!(err.contains("auto chose cpu"), "{err}");
        }
    }
}

#[test]
fn table_names_the_rule_the_conventions_and_undefined() {
    let tmp = tempfile::tempdir().unwrap();
    example(tmp.path());
    let (t, p, l) = (
        tmp.path().join("truth"),
        tmp.path().join("logits"),
        tmp.path().join("labels.toml"),
    );
    let o = run(&[
        "score",
        "--truth",
        t.to_str().unwrap(),
        "--pred",
        p.to_str().unwrap(),
        "-l",
        l.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    for want in [
        "score > 0",
        "undefined",
        "0.6667",
        "0.3333",
        "mmsegmentation",
        "MONAI",
        "micro",
        "mIoU (dataset-level, macro) 0.5000",
    ] {
        assert!(out.contains(want), "missing `{want}` in\n{out}");
    }
}

#[test]
fn empty_as_one_and_zero_change_the_means() {
    let tmp = tempfile::tempdir().unwrap();
    example(tmp.path());
    let (one, _) = score_json(tmp.path(), "pred_png", &["--empty-as", "one"]);
    let (zero, _) = score_json(tmp.path(), "pred_png", &["--empty-as", "zero"]);
    // Means are summed in fixed point (1e-12 units): exact to 12 decimals.
    let close = |v: &Value, want: f64| (v.as_f64().unwrap() - want).abs() < 1e-12;
    assert!(
        close(&one["summary"]["miou"], 2.0 / 3.0),
        "{}",
        one["summary"]
    );
    assert!(
        close(&zero["summary"]["miou"], 1.0 / 3.0),
        "{}",
        zero["summary"]
    );
    assert_eq!(one["classes"][2]["iou"], 1.0);
    assert_eq!(zero["summary"]["empty_classes"], serde_json::json!(["ch2"]));
}

#[test]
fn probs_threshold_and_argmax_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    example(tmp.path());
    let (v, o) = score_json(tmp.path(), "logits", &["--pred-kind", "probs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(v["prediction"]["threshold"], 0.5);
    // Logits of +2 are > 0.5 too; -2 are not: same scores.
    assert_eq!(v["summary"]["miou"], 0.5);
    let (v, _) = score_json(tmp.path(), "logits", &["--threshold", "3"]);
    assert_eq!(v["classes"][0]["tp"], 0);
    let (v, _) = score_json(tmp.path(), "logits", &["--argmax"]);
    assert_eq!(v["prediction"]["argmax"], true);
    assert!(
        v["prediction"]["rule"]
            .as_str()
            .unwrap()
            .starts_with("argmax")
    );
}

#[test]
fn missing_extra_and_mismatched_predictions_are_listed_with_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    example(d);
    // img1's prediction goes missing, an extra one appears, and a third
    // truth mask gets a prediction of another size.
    std::fs::remove_file(d.join("logits/img1.npy")).unwrap();
    write(
        &d.join("logits/stray.npy"),
        &npy_bytes(&TensorOut::f32(vec![3, 2, 2], &[0.0; 12])),
    );
    rgb_png(&d.join("truth/img2.png"), 2, 2, &EXAMPLE[0].0);
    write(
        &d.join("logits/img2.npy"),
        &npy_bytes(&TensorOut::f32(vec![3, 3, 2], &[0.0; 18])),
    );
    let (v, o) = score_json(d, "logits", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let f = &v["files"];
    assert_eq!(f["images_scored"], 1);
    assert!(
        f["missing_predictions"][0]
            .as_str()
            .unwrap()
            .ends_with("img1.png")
    );
    assert!(
        f["extra_predictions"][0]
            .as_str()
            .unwrap()
            .ends_with("stray.npy")
    );
    assert_eq!(f["size_mismatches"][0]["pred_size"], "2x3");
    assert_eq!(f["size_mismatches"][0]["truth_size"], "2x2");
    let err = stderr(&o);
    assert!(err.contains("truth without prediction"), "{err}");
    assert!(err.contains("prediction without truth"), "{err}");
    assert!(
        err.contains("expected the same size") || err.contains("is 2x3"),
        "{err}"
    );
    // `--strict` turns the first problem into a failure.
    let (t, p) = (d.join("truth"), d.join("logits"));
    let o = run(&[
        "score",
        "--truth",
        t.to_str().unwrap(),
        "--pred",
        p.to_str().unwrap(),
        "-l",
        d.join("labels.toml").to_str().unwrap(),
        "--strict",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--strict"), "{}", stderr(&o));
}

#[test]
fn wrong_channels_and_bad_files_are_reported_never_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    example(d);
    // img0: 2 channels for a 3-class map; img1: not an array at all.
    write(
        &d.join("logits/img0.npy"),
        &npy_bytes(&TensorOut::f32(vec![2, 2, 2], &[0.0; 8])),
    );
    write(&d.join("logits/img1.npy"), b"not numpy");
    let (t, p, l) = (d.join("truth"), d.join("logits"), d.join("labels.toml"));
    let o = run(&[
        "score",
        "--truth",
        t.to_str().unwrap(),
        "--pred",
        p.to_str().unwrap(),
        "-l",
        l.to_str().unwrap(),
    ]);
    // Nothing could be scored: the job failed, with the first reason.
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("img0.npy")
            && err.contains("has shape [2, 2, 2]; expected [C, H, W] = [3, 2, 2]"),
        "{err}"
    );
    assert!(
        err.contains("img1.npy") && err.contains("not a `.npy` file"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    // One good pair: done, exit 1, the bad one listed with its reason.
    write(
        &d.join("logits/img1.npy"),
        &npy_bytes(&TensorOut::f32(vec![1, 3, 2, 2], &logits(&EXAMPLE[1].1))),
    );
    let (v, o) = score_json(d, "logits", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(v["files"]["images_scored"], 1);
    let reason = v["files"]["skipped"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("img0.npy") && reason.contains("expected [C, H, W]"),
        "{reason}"
    );
}

#[test]
fn mixed_prediction_types_and_wrong_kind_flags_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    example(d);
    let (v, o) = score_json(d, "pred_png", &["--threshold", "0.5"]);
    assert_eq!(v, Value::Null);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("apply to float predictions"),
        "{}",
        stderr(&o)
    );
    std::fs::copy(d.join("logits/img0.npy"), d.join("pred_png/img9.npy")).unwrap();
    let o = run(&[
        "score",
        "--truth",
        d.join("truth").to_str().unwrap(),
        "--pred",
        d.join("pred_png").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("mixes prediction types"),
        "{}",
        stderr(&o)
    );
}

#[cfg(not(feature = "gpu"))]
#[test]
fn gpu_backend_fails_clearly_in_this_build() {
    let tmp = tempfile::tempdir().unwrap();
    example(tmp.path());
    let (_, o) = score_json(tmp.path(), "logits", &["--backend", "gpu"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("GPU scoring is not in this build; rebuild with `--features gpu`"),
        "{}",
        stderr(&o)
    );
    let (v, o) = score_json(tmp.path(), "logits", &["--backend", "cpu"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(v["backend"], "cpu");
    assert!(!stderr(&o).contains("auto chose"));
}

#[test]
fn help_says_accuracy_counts_true_negatives() {
    let o = run(&["score", "--help"]);
    // Wrapping depends on the terminal: compare with whitespace collapsed.
    let out = stdout(&o).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(out.contains("Accuracy counts true negatives"), "{out}");
    assert!(
        out.contains("scores 1.0 accuracy and undefined IoU"),
        "{out}"
    );
    for flag in [
        "--pred-kind",
        "--threshold",
        "--argmax",
        "--empty-as",
        "--backend",
        "--per-image",
    ] {
        assert!(out.contains(flag), "missing {flag}");
    }
}

#[test]
fn json_and_output_file_are_the_same_bytes_at_any_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let made = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/check_score.py"))
        .arg("gen")
        .arg(d)
        .output()
        .expect("run python");
    assert!(made.status.success(), "{}", stderr(&made));
    let mut outs = Vec::new();
    for j in ["1", "4"] {
        let out = d.join(format!("score-{j}.json"));
        let o = run(&[
            "-j",
            j,
            "score",
            "--truth",
            d.join("rgb/truth").to_str().unwrap(),
            "--pred",
            d.join("rgb/logits").to_str().unwrap(),
            "-l",
            d.join("rgb/labels.toml").to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        outs.push(std::fs::read(&out).unwrap());
    }
    assert_eq!(outs[0], outs[1]);
    assert!(String::from_utf8_lossy(&outs[0]).starts_with("{\n  \"format\": \"maskprep-score/1\""));
}

/// Generated masks and arrays (exact zeros, exact 0.5s and NaNs, float16
/// and float32, ignore and undeclared pixels): every count must equal
/// numpy's, under each decision rule.
#[test]
fn numpy_agrees_on_every_count() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/check_score.py");
    let py = python();
    let made = Command::new(&py)
        .arg(&script)
        .arg("gen")
        .arg(d)
        .output()
        .expect("run python");
    assert!(made.status.success(), "{}", stderr(&made));
    let cases: &[(&str, &str, &[&str])] = &[
        ("rgb", "logits", &[]),
        ("rgb", "logits", &["--threshold", "0.75"]),
        ("rgb", "logits", &["--argmax"]),
        ("rgb", "pred_png", &[]),
        ("index", "probs", &["--pred-kind", "probs"]),
        ("index", "probs", &["--argmax"]),
        ("index", "pred_png", &[]),
    ];
    for (i, (scene, pred, extra)) in cases.iter().enumerate() {
        let json = d.join(format!("score-{i}.json"));
        let rows = d.join(format!("rows-{i}.csv"));
        let mut args = vec![
            "score".to_string(),
            "--truth".into(),
            d.join(scene).join("truth").display().to_string(),
            "--pred".into(),
            d.join(scene).join(pred).display().to_string(),
            "-l".into(),
            d.join(scene).join("labels.toml").display().to_string(),
            "-o".into(),
            json.display().to_string(),
            "--per-image".into(),
            rows.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let o = bin().args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        let check = Command::new(&py)
            .arg(&script)
            .arg("check")
            .arg(&json)
            .arg(&rows)
            .output()
            .expect("run python");
        assert!(
            check.status.success(),
            "numpy disagrees for {args:?}:\n{}{}",
            stdout(&check),
            stderr(&check)
        );
        assert!(
            stdout(&check).starts_with("ok: 5 images"),
            "{}",
            stdout(&check)
        );
    }
}

/// `--sweep`: the counts at every grid threshold equal a numpy recount at
/// that threshold, the best thresholds equal a brute-force search, the
/// threshold files hold them, and the bytes do not depend on the threads.
#[test]
fn sweep_counts_every_threshold_as_numpy_does() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/check_score.py");
    let py = python();
    let made = Command::new(&py)
        .arg(&script)
        .arg("gen")
        .arg(d)
        .output()
        .expect("run python");
    assert!(made.status.success(), "{}", stderr(&made));
    let cases: &[(&str, &str, &[&str])] = &[
        ("rgb", "logits", &["--sweep"]),
        (
            "rgb",
            "logits",
            &["--thresholds", "0.2,0.5,0.9", "--threshold", "0.5"],
        ),
        (
            "index",
            "probs",
            &["--pred-kind", "probs", "--sweep-bins", "7"],
        ),
    ];
    for (i, (scene, pred, extra)) in cases.iter().enumerate() {
        let mut bytes = Vec::new();
        for j in ["1", "2"] {
            let out = d.join(format!("sweep-{i}-{j}"));
            let json = out.join("score.json");
            let rows = out.join("rows.csv");
            let mut args = vec![
                "-j".to_string(),
                j.to_string(),
                "score".to_string(),
                "--truth".into(),
                d.join(scene).join("truth").display().to_string(),
                "--pred".into(),
                d.join(scene).join(pred).display().to_string(),
                "-l".into(),
                d.join(scene).join("labels.toml").display().to_string(),
                "-o".into(),
                json.display().to_string(),
                "--per-image".into(),
                rows.display().to_string(),
                // The thresholds where check_score.py reads them.
                "--sweep-out".into(),
                out.display().to_string(),
            ];
            args.extend(extra.iter().map(|s| s.to_string()));
            let o = bin().args(&args).output().unwrap();
            assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
            assert!(
                stderr(&o).contains("thresholds.safetensors"),
                "{}",
                stderr(&o)
            );
            let check = Command::new(&py)
                .arg(&script)
                .arg("sweep")
                .arg(&json)
                .arg(&rows)
                .arg(&out)
                .output()
                .expect("run python");
            assert!(
                check.status.success(),
                "numpy disagrees for {args:?}:\n{}{}",
                stdout(&check),
                stderr(&check)
            );
            bytes.push([
                std::fs::read(&json).unwrap(),
                std::fs::read(out.join("thresholds.json")).unwrap(),
                std::fs::read(out.join("thresholds.safetensors")).unwrap(),
            ]);
        }
        assert!(
            bytes[0] == bytes[1],
            "case {i}: outputs differ between 1 and 2 threads"
        );
    }
    // Mask predictions have no threshold to sweep; argmax thresholds none.
    let o = bin()
        .args(["score", "--truth"])
        .arg(d.join("rgb/truth"))
        .arg("--pred")
        .arg(d.join("rgb/pred_png"))
        .arg("-l")
        .arg(d.join("rgb/labels.toml"))
        .arg("--sweep")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("`--sweep` needs float predictions"),
        "{}",
        stderr(&o)
    );
    let o = run(&[
        "score", "--truth", "t", "--pred", "p", "--sweep", "--argmax",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--argmax"), "{}", stderr(&o));
}

/// `score --partition I/N` pieces merged with `maskprep merge` give the
/// whole run's document byte for byte (sweep included), with a missing and
/// an extra prediction, and with more pieces than pairs.
#[test]
fn partitioned_scores_merge_into_the_whole_run() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let made = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/check_score.py"))
        .arg("gen")
        .arg(d)
        .output()
        .expect("run python");
    assert!(made.status.success(), "{}", stderr(&made));
    std::fs::remove_file(d.join("rgb/logits/a/0003.npy")).unwrap();
    std::fs::copy(
        d.join("rgb/logits/a/0000.npy"),
        d.join("rgb/logits/a/stray.npy"),
    )
    .unwrap();
    let score = |out: &Path, extra: &[&str], code: &[i32]| {
        let mut args = vec![
            "score".to_string(),
            "--truth".into(),
            d.join("rgb/truth").display().to_string(),
            "--pred".into(),
            d.join("rgb/logits").display().to_string(),
            "-l".into(),
            d.join("rgb/labels.toml").display().to_string(),
            "--sweep-bins".into(),
            "20".into(),
            "--sweep-out".into(),
            d.join("thresholds").display().to_string(),
            "-o".into(),
            out.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let o = bin().args(&args).output().unwrap();
        assert!(
            code.contains(&o.status.code().unwrap()),
            "{args:?}: {}",
            stderr(&o)
        );
    };
    let whole = d.join("whole.json");
    score(&whole, &[], &[1]);
    let whole_thresholds = std::fs::read(d.join("thresholds/thresholds.safetensors")).unwrap();
    for n in [2usize, 3, 7] {
        let mut parts = Vec::new();
        for i in 1..=n {
            let p = d.join(format!("part-{i}-of-{n}.json"));
            // A piece with nothing unpaired in it is complete (exit 0).
            score(&p, &["--partition", &format!("{i}/{n}")], &[0, 1]);
            parts.push(p.display().to_string());
        }
        let merged = d.join(format!("merged-{n}.json"));
        let mut args = vec![
            "merge".to_string(),
            "-o".into(),
            merged.display().to_string(),
        ];
        args.extend(parts.iter().cloned());
        let o = bin().args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(
            std::fs::read(&merged).unwrap() == std::fs::read(&whole).unwrap(),
            "{n} partitions merged differ from the whole run"
        );
        // The merge picks the thresholds the whole run picked, named
        // after its output.
        assert_eq!(
            std::fs::read(d.join(format!("merged-{n}.thresholds.safetensors"))).unwrap(),
            whole_thresholds
        );
        // A piece given twice, or one missing, is refused.
        let o = run(&["merge", &parts[0], &parts[0]]);
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains("given twice"), "{}", stderr(&o));
        let o = run(&["merge", &parts[1]]);
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains("missing"), "{}", stderr(&o));
    }
    // A piece claiming a huge partition count is refused at once (nothing
    // is allocated or enumerated from the count).
    let text = std::fs::read_to_string(d.join("part-1-of-2.json")).unwrap();
    assert!(text.contains("\"partition\": \"1/2\""), "{text}");
    let huge = d.join("huge.json");
    std::fs::write(
        &huge,
        text.replace(
            "\"partition\": \"1/2\"",
            "\"partition\": \"1/18446744073709551615\"",
        ),
    )
    .unwrap();
    let o = run(&["merge", huge.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("are missing"), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&std::fs::read(&whole).unwrap()).unwrap();
    assert_eq!(
        v["files"]["missing_predictions"].as_array().unwrap().len(),
        1
    );
    assert_eq!(v["files"]["extra_predictions"].as_array().unwrap().len(), 1);
    assert!(v.get("partial").is_none());
}

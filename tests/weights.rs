//! `maskprep weights` end to end: the built binary on `fixtures/`, writing
//! into temp dirs; the files are read back by Python's safetensors, numpy
//! and scikit-learn (`tests/python/check_weights.py`).

mod common;

use std::path::Path;
use std::process::Output;

use common::{code, json, maskprep, path_str, root, run_python, stderr};
use serde_json::Value;

fn ok(o: &Output) {
    assert_eq!(code(o), 0, "stderr: {}", stderr(o));
}

/// Reads the output folder back with safetensors, numpy and scikit-learn.
fn check_in_python(out: &Path) {
    run_python("check_weights.py", &[path_str(out)]);
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_f64().expect("a number, never null (NaN/inf)"))
        .collect()
}

/// Writes a dataset of 4x4 RGB masks (16 pixels each, row-major) under
/// `dir/masks`, with `labels` as its `labels.toml`.
fn rgb_dataset(dir: &Path, labels: &str, masks: &[Vec<[u8; 3]>]) {
    let dir_masks = dir.join("masks");
    std::fs::create_dir_all(&dir_masks).unwrap();
    std::fs::write(dir.join("labels.toml"), labels).unwrap();
    for (i, px) in masks.iter().enumerate() {
        assert_eq!(px.len(), 16);
        let img = image::RgbImage::from_fn(4, 4, |x, y| image::Rgb(px[(y * 4 + x) as usize]));
        img.save(dir_masks.join(format!("{i:04}.png"))).unwrap();
    }
}

const RED: [u8; 3] = [255, 0, 0];
const GREEN: [u8; 3] = [0, 255, 0];
const BLACK: [u8; 3] = [0, 0, 0];
const WHITE: [u8; 3] = [255, 255, 255];
const ABC: &str = "kind = \"rgb-bits\"\nclasses = [\"a\", \"b\", \"c\"]\nthreshold = 128\n";

/// Classes a (red), b (green), c (blue, never used); single-label, with
/// black pixels that carry no class.
fn single_label_with_background(dir: &Path) {
    let mask = |split: usize| -> Vec<[u8; 3]> {
        (0..16)
            .map(|k| match k {
                k if k < split => RED,
                k if k < 12 => GREEN,
                _ => BLACK,
            })
            .collect()
    };
    rgb_dataset(dir, ABC, &[mask(6), mask(2)]);
}

#[test]
fn plates_weights_load_in_python_as_pytorch_expects() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("weights");
    let o = maskprep(&["weights", "fixtures/plates", "-o", path_str(&out), "--npy"]);
    ok(&o);
    for f in [
        "weights.json",
        "weights.safetensors",
        "README.md",
        "pos_weight.npy",
        "weight.npy",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("BCEWithLogitsLoss"), "{table}");
    assert!(table.contains("logits > 0"), "{table}");
    check_in_python(&out);
}

#[test]
fn plates_pos_weight_matches_the_counts() {
    let o = maskprep(&["weights", "fixtures/plates", "--json", "-q"]);
    ok(&o);
    let doc = json(&o);
    assert_eq!(doc["format"], "maskprep-weights/1");
    assert_eq!(
        doc["classes"],
        serde_json::json!(["qr_code", "scratch", "plate"])
    );
    assert_eq!(doc["pos_weight"]["shape"], serde_json::json!([3, 1, 1]));
    // 24576 valid pixels; qr_code 1152, scratch 28, plate 15390.
    let want = [23424.0 / 1152.0, 24548.0 / 28.0, 9186.0 / 15390.0];
    for (g, w) in floats(&doc["pos_weight"]["values"]).iter().zip(want) {
        assert!((g - w).abs() / w < 1e-6, "{g} vs {w}");
    }
    assert_eq!(doc["advice"]["loss"], "BCEWithLogitsLoss");
    assert_eq!(doc["advice"]["bce"]["shape"], serde_json::json!([3, 1, 1]));
    assert_eq!(doc["verdict"]["kind"], "multi-label");
}

#[test]
fn json_on_stdout_uses_the_chosen_scheme_and_lists_all() {
    let o = maskprep(&[
        "weights",
        "fixtures/plates",
        "--scheme",
        "median-frequency",
        "--json",
    ]);
    ok(&o);
    let doc = json(&o);
    assert_eq!(doc["weight"]["scheme"], "median-frequency");
    assert_eq!(doc["weight"]["shape"], serde_json::json!([3]));
    let schemes = doc["schemes"].as_array().unwrap();
    let names: Vec<&str> = schemes
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "balanced",
            "inverse-frequency",
            "inverse-sqrt",
            "median-frequency",
            "enet",
            "effective-number"
        ]
    );
    for s in schemes {
        assert!(!s["normalisation"].as_str().unwrap().is_empty());
        assert_eq!(floats(&s["values"]).len(), 3);
    }
    assert_eq!(doc["weight"]["values"], schemes[3]["values"]);
    // plates: n/S = [1152/24576, 28/12288, 15390/24576]; qr_code is the median.
    assert_eq!(floats(&doc["weight"]["values"])[0], 1.0);
}

#[test]
fn outputs_are_identical_bytes_with_1_or_4_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    ok(&maskprep(&[
        "-j1",
        "weights",
        "fixtures/plates",
        "-o",
        path_str(&a),
        "--npy",
        "-q",
    ]));
    ok(&maskprep(&[
        "-j4",
        "weights",
        "fixtures/plates",
        "-o",
        path_str(&b),
        "--npy",
        "-q",
    ]));
    for f in [
        "weights.json",
        "weights.safetensors",
        "pos_weight.npy",
        "weight.npy",
    ] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f} differs"
        );
    }
    // Rerunning into the same folder replaces its files (README included).
    ok(&maskprep(&[
        "weights",
        "fixtures/plates",
        "-o",
        path_str(&a),
        "-q",
    ]));
}

#[test]
fn from_stats_gives_the_weights_of_a_scan() {
    let tmp = tempfile::tempdir().unwrap();
    let stats = tmp.path().join("stats.json");
    ok(&maskprep(&[
        "stats",
        "fixtures/plates",
        "--json",
        "-o",
        path_str(&stats),
        "-q",
    ]));
    let from = maskprep(&["weights", "--from", path_str(&stats), "--json", "-q"]);
    ok(&from);
    let scan = maskprep(&["weights", "fixtures/plates", "--json", "-q"]);
    ok(&scan);
    let (from, scan) = (json(&from), json(&scan));
    for key in [
        "classes",
        "counts",
        "verdict",
        "pos_weight",
        "weight",
        "schemes",
        "advice",
    ] {
        assert_eq!(from[key], scan[key], "{key} differs");
    }
    assert_eq!(from["source"]["stats"], path_str(&stats));
    assert_eq!(from["source"]["dataset"], "fixtures/plates");
}

/// Writes the plates stats, edited by `edit`, and runs `weights --from` on it.
fn from_edited(edit: impl FnOnce(&mut Value)) -> Output {
    let tmp = tempfile::tempdir().unwrap();
    let stats = tmp.path().join("stats.json");
    ok(&maskprep(&[
        "stats",
        "fixtures/plates",
        "--json",
        "-o",
        path_str(&stats),
        "-q",
    ]));
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    edit(&mut doc);
    std::fs::write(&stats, serde_json::to_vec(&doc).unwrap()).unwrap();
    let out = tmp.path().join("w");
    let o = maskprep(&["weights", "--from", path_str(&stats), "-o", path_str(&out)]);
    assert!(!out.exists(), "nothing is written on error");
    o
}

#[test]
fn from_rejects_stats_of_another_format() {
    let o = from_edited(|d| d["format"] = "maskprep-stats/0".into());
    assert_eq!(code(&o), 2);
    let e = stderr(&o);
    assert!(e.contains("cannot compute weights from"), "{e}");
    assert!(
        e.contains("has format `maskprep-stats/0`; expected `maskprep-stats/1`"),
        "{e}"
    );
}

#[test]
fn from_rejects_mismatched_class_lists() {
    let o = from_edited(|d| {
        d["labels"]["classes"].as_array_mut().unwrap().pop();
    });
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("expected the same class list everywhere"),
        "{}",
        stderr(&o)
    );

    let o = from_edited(|d| d["classes"][1]["name"] = "dent".into());
    assert_eq!(code(&o), 2);
    let e = stderr(&o);
    assert!(e.contains("the counts are inconsistent"), "{e}");
    assert!(e.contains("\"dent\""), "{e}");
}

#[test]
fn from_rejects_counts_that_do_not_add_up() {
    let o = from_edited(|d| d["classes"][0]["pixels"] = 999_999.into());
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("class `qr_code` has 999999 pixels"),
        "{}",
        stderr(&o)
    );

    let o = from_edited(|d| d["pixels"]["ignored"] = 99_999.into());
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("the counts are inconsistent"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn from_rejects_what_is_not_stats() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("notes.json");
    std::fs::write(&bad, "not json").unwrap();
    let o = maskprep(&["weights", "--from", path_str(&bad)]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("is not JSON"), "{}", stderr(&o));

    let o = maskprep(&[
        "weights",
        "--from",
        path_str(&tmp.path().join("missing.json")),
    ]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("cannot read stats"), "{}", stderr(&o));

    let o = maskprep(&["weights", "fixtures/plates", "--from", path_str(&bad)]);
    assert_eq!(code(&o), 2, "DIR and --from together are a usage error");
}

#[test]
fn single_label_prints_the_verdict_and_still_writes_pos_weight() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("w");
    let o = maskprep(&["weights", "fixtures/index/p", "-o", path_str(&out)]);
    ok(&o);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("verdict: every valid pixel carries exactly one class"),
        "{table}"
    );
    // Index masks with 255 ignored: the masks are the targets as they are.
    assert!(
        table.contains("CrossEntropyLoss(weight=w[\"weight\"], ignore_index=255)"),
        "{table}"
    );
    assert!(!table.contains("-100"), "{table}");
    let readme = std::fs::read_to_string(out.join("README.md")).unwrap();
    assert!(readme.contains("ignore_index=255)"), "{readme}");
    assert!(
        readme.contains("# in the masks: value i (255: ignored)"),
        "{readme}"
    );
    let bytes = std::fs::read(out.join("weights.safetensors")).unwrap();
    let pw = maskprep::tensors::read_safetensors(&bytes, "pos_weight").unwrap();
    assert_eq!(pw.shape, [3, 1, 1]);
    let w = maskprep::tensors::read_safetensors(&bytes, "weight").unwrap();
    assert_eq!(w.shape, [3]);
    check_in_python(&out);
}

#[test]
fn background_class_and_class_without_pixels() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    single_label_with_background(&data);
    let out = tmp.path().join("w");
    let o = maskprep(&["weights", path_str(&data), "-o", path_str(&out), "--json"]);
    ok(&o);
    let e = stderr(&o);
    assert!(e.contains("warning: class `c` has no pixels"), "{e}");
    let doc = json(&o);
    assert_eq!(doc["verdict"]["kind"], "single-label");
    // 32 valid pixels: a 6 + 2, b 6 + 10, none 8; c absent.
    assert_eq!(doc["counts"]["class_pixels"], serde_json::json!([8, 16, 0]));
    assert_eq!(
        doc["weight"]["classes"],
        serde_json::json!(["a", "b", "c", "background"])
    );
    assert_eq!(doc["weight"]["shape"], serde_json::json!([4]));
    assert_eq!(
        doc["advice"]["cross_entropy"]["shape"],
        serde_json::json!([4])
    );
    // c: 1 (neutral) in pos_weight and every scheme; nothing is NaN or inf.
    assert_eq!(floats(&doc["pos_weight"]["values"])[2], 1.0);
    for s in doc["schemes"].as_array().unwrap() {
        let v = floats(&s["values"]);
        assert_eq!(v[2], 1.0, "{}", s["name"]);
        assert!(v.iter().all(|x| x.is_finite() && *x > 0.0));
    }
    // balanced = N / (K n_c) with K = 4: [1, 0.5, -, 1].
    assert_eq!(floats(&doc["weight"]["values"]), [1.0, 0.5, 1.0, 1.0]);
    assert!(doc["warnings"].as_array().unwrap().len() == 1);
    let readme = std::fs::read_to_string(out.join("README.md")).unwrap();
    assert!(
        readme.contains("CLASSES = [\"a\", \"b\", \"c\"]"),
        "{readme}"
    );
    assert!(
        readme.contains("torch.where(m.any(1), m.float().argmax(1), 3)"),
        "{readme}"
    );
}

#[test]
fn max_weight_caps_what_is_written() {
    let o = maskprep(&["weights", "fixtures/plates", "--max-weight", "10", "--json"]);
    ok(&o);
    let doc = json(&o);
    assert!(
        floats(&doc["pos_weight"]["values"])
            .iter()
            .all(|&v| v <= 10.0)
    );
    for s in doc["schemes"].as_array().unwrap() {
        assert!(
            floats(&s["values"]).iter().all(|&v| v <= 10.0),
            "{}",
            s["name"]
        );
    }
    assert!(
        stderr(&o).contains("`--max-weight 10` capped"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn skipped_masks_give_exit_code_1_and_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let plates = root().join("fixtures/plates");
    std::fs::copy(plates.join("labels.toml"), data.join("labels.toml")).unwrap();
    std::fs::copy(plates.join("masks/0001.png"), data.join("0001.png")).unwrap();
    std::fs::copy(
        root().join("fixtures/bad/truncated.png"),
        data.join("0002.png"),
    )
    .unwrap();
    let out = tmp.path().join("w");
    let o = maskprep(&["weights", path_str(&data), "-o", path_str(&out), "--json"]);
    assert_eq!(code(&o), 1, "stderr: {}", stderr(&o));
    assert!(stderr(&o).contains("skipped `"), "{}", stderr(&o));
    let doc = json(&o);
    assert_eq!(doc["source"]["skipped"].as_array().unwrap().len(), 1);
    assert!(out.join("weights.safetensors").is_file());

    let o = maskprep(&["weights", path_str(&data), "--strict"]);
    assert_eq!(code(&o), 2);
}

#[test]
fn bad_options_and_outputs_are_errors() {
    for (args, msg) in [
        (&["--enet-c", "1"][..], "expected a number above 1"),
        (&["--beta", "1"][..], "expected 0 <= beta < 1"),
        (
            &["--max-weight", "0"][..],
            "expected a finite number above 0",
        ),
        (&["-o", "weights.json"][..], "expected a folder"),
    ] {
        let mut all = vec!["weights", "fixtures/plates"];
        all.extend_from_slice(args);
        let o = maskprep(&all);
        assert_eq!(code(&o), 2, "{args:?}");
        assert!(stderr(&o).contains(msg), "{args:?}: {}", stderr(&o));
    }
    let o = maskprep(&["weights", "fixtures/plates", "--scheme", "bogus"]);
    assert_eq!(code(&o), 2);
    let o = maskprep(&["weights", "fixtures/plates", "--npy"]);
    assert_eq!(code(&o), 2, "--npy needs -o");
}

#[test]
fn a_readme_not_written_by_maskprep_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("README.md"), "# my project\n").unwrap();
    let o = maskprep(&["weights", "fixtures/plates", "-o", path_str(tmp.path())]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("was not written by `maskprep weights`"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("README.md")).unwrap(),
        "# my project\n"
    );
    assert!(!tmp.path().join("weights.json").exists());
}

#[test]
fn class_on_every_pixel_gets_pos_weight_one() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let labels = "kind = \"rgb-bits\"\nclasses = [\"a\", \"b\"]\nthreshold = 128\n";
    rgb_dataset(&data, labels, &[vec![RED; 16], vec![RED; 16]]);
    let o = maskprep(&["weights", path_str(&data), "--json"]);
    ok(&o);
    let e = stderr(&o);
    assert!(
        e.contains("warning: class `a` covers every valid pixel"),
        "{e}"
    );
    assert!(e.contains("warning: class `b` has no pixels"), "{e}");
    let doc = json(&o);
    assert_eq!(floats(&doc["pos_weight"]["values"]), [1.0, 1.0]);
    assert_eq!(doc["verdict"]["kind"], "single-label");
    assert_eq!(doc["weight"]["shape"], serde_json::json!([2]));
    // The stats table shows what `weights` writes: 1, marked, not 0 or undefined.
    let o = maskprep(&["stats", path_str(&data)]);
    ok(&o);
    let table = String::from_utf8_lossy(&o.stdout);
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row `{name}`:\n{table}"))
            .to_string()
    };
    assert!(row("a").contains("1.0000†"), "{table}");
    assert!(row("b").contains("1.0000†"), "{table}");
    assert!(table.contains("† pos_weight set to 1 by a rule"), "{table}");
    assert!(
        !table.contains("0.0000") && !table.contains("undefined"),
        "{table}"
    );
}

/// The README's PyTorch block, run as pasted (loading part) by
/// `tests/python/check_snippet.py`.
fn check_readme_snippet(out: &Path) {
    let readme = std::fs::read_to_string(out.join("README.md")).unwrap();
    let code = readme
        .split_once("```python\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(code, _)| code.to_string())
        .expect("a python block");
    assert!(code.contains("device = "), "{code}");
    let file = out.join("snippet.py");
    std::fs::write(&file, &code).unwrap();
    let text = run_python("check_snippet.py", &[path_str(out), path_str(&file)]);
    assert!(text.contains("snippet ok"), "{text}");
}

#[test]
fn readme_snippet_runs_as_pasted() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, dir) in [("plates", "fixtures/plates"), ("index", "fixtures/index/p")] {
        let out = tmp.path().join(name);
        ok(&maskprep(&["weights", dir, "-o", path_str(&out)]));
        check_readme_snippet(&out);
    }
}

#[test]
fn masks_without_valid_pixels_are_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let labels = "kind = \"palette\"\nclasses = [\"road\"]\nignore = [\"#ffffff\"]\n\n\
                  [colors]\n\"#ff0000\" = [\"road\"]\n";
    rgb_dataset(&data, labels, &[vec![WHITE; 16]]);
    let o = maskprep(&["weights", path_str(&data)]);
    assert_eq!(code(&o), 2);
    let e = stderr(&o);
    assert!(e.contains("cannot compute weights for `"), "{e}");
    assert!(
        e.contains("no valid pixels (16 in all, 16 ignored, 0 undeclared)"),
        "{e}"
    );
}

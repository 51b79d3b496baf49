//! `maskprep stats`, `labels` and `merge` run as a user runs them, on the
//! project's fixtures. Expected numbers are the hand/numpy counts written in
//! `fixtures/README.md` (and rechecked by numpy in `numpy_agrees_*`).

mod common;

use common::*;
use serde_json::Value;

fn class_col(doc: &Value, field: &str) -> Vec<u64> {
    doc["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c[field].as_u64().unwrap())
        .collect()
}

#[test]
fn plates_counts_match_hand_counts() {
    let o = maskprep(&["stats", "fixtures/plates", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let d = json(&o);
    let names: Vec<&str> = d["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["qr_code", "scratch", "plate"]);
    // 8 masks of 64x48; QR 12x12 per mask; scratch chips 6+4+12+6.
    assert_eq!(d["pixels"]["total"], 24576);
    assert_eq!(class_col(&d, "pixels"), [1152, 28, 15390]);
    assert_eq!(class_col(&d, "images"), [8, 4, 8]);
    assert_eq!(
        d["cooccurrence"],
        serde_json::json!([[1152, 4, 1152], [4, 28, 7], [1152, 7, 15390]])
    );
    assert_eq!(
        d["label_degree"],
        serde_json::json!({"0": 9165, "1": 14256, "2": 1151, "3+": 4})
    );
    // pos_weight = (N - n) / n.
    let pw = d["classes"][0]["pos_weight"].as_f64().unwrap();
    assert!((pw - (24576.0 - 1152.0) / 1152.0).abs() < 1e-12);
    assert_eq!(d["classes"][1]["rare"], true);
    assert_eq!(d["classes"][2]["rare"], false);
    assert_eq!(d["verdict"]["kind"], "multi-label");
    assert_eq!(d["verdict"]["loss"], "BCEWithLogitsLoss");
    let reason = d["verdict"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("7.49% of labelled pixels carry 2+ classes"),
        "{reason}"
    );
    assert!(reason.contains("[C,1,1]"), "{reason}");
}

#[test]
fn table_names_rare_class_and_verdict() {
    let o = maskprep(&["stats", "fixtures/plates"]);
    assert_eq!(code(&o), 0);
    let t = stdout(&o);
    assert!(t.contains("scratch"), "{t}");
    assert!(t.contains("rare"), "{t}");
    assert!(
        t.contains("verdict: 7.49% of labelled pixels carry 2+ classes: multi-label"),
        "{t}"
    );
    assert!(stderr(&o).contains("found `fixtures/plates/labels.toml`"));
}

#[test]
fn palette_map_with_two_class_colour_ignore_and_undeclared() {
    let o = maskprep(&["stats", "fixtures/palette", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let d = json(&o);
    assert_eq!(class_col(&d, "pixels"), [2397, 400]);
    assert_eq!(d["pixels"]["ignored"], 160);
    assert_eq!(d["pixels"]["undeclared"], 3);
    assert_eq!(d["pixels"]["valid"], 4637);
    let u = &d["undeclared"][0];
    assert_eq!(u["code"], "#82427e");
    assert_eq!(u["pixels"], 3);
    assert_eq!(u["nearest"], "#804080 (road)");
    assert_eq!(u["examples"][0], "fixtures/palette/frame_2.png");
    assert_eq!(d["cooccurrence"][0][1], 200);
}

#[test]
fn palette_png_is_read_as_raw_indices() {
    let o = maskprep(&["stats", "fixtures/index/p", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let d = json(&o);
    assert_eq!(class_col(&d, "pixels"), [1272, 864, 96]);
    assert_eq!(d["pixels"]["ignored"], 72);
    assert_eq!(d["verdict"]["kind"], "single-label");
    assert_eq!(d["verdict"]["loss"], "CrossEntropyLoss");
}

#[test]
fn sixteen_bit_gray_values_are_classes() {
    let o = maskprep(&["stats", "fixtures/index/gray16", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let d = json(&o);
    assert_eq!(class_col(&d, "pixels"), [192, 384, 192]);
    assert_eq!(d["classes"][2]["name"], "class_40000");
}

#[test]
fn numpy_agrees_on_every_fixture() {
    let dir = tempfile::tempdir().unwrap();
    for fx in ["plates", "palette", "index/p", "index/gray16", "voc"] {
        let out = dir.path().join(format!("{}.json", fx.replace('/', "_")));
        let o = maskprep(&[
            "-q",
            "stats",
            &format!("fixtures/{fx}"),
            "-o",
            path_str(&out),
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        run_python("check_stats.py", &[path_str(&out), path_str(&fixture(fx))]);
    }
}

#[test]
fn output_is_identical_with_one_or_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let mut outs = Vec::new();
    for n in ["1", "2"] {
        let json = dir.path().join(format!("s{n}.json"));
        let csv = dir.path().join(format!("p{n}.csv"));
        let o = maskprep_env(
            &[
                "stats",
                "fixtures/plates",
                "-o",
                path_str(&json),
                "--per-image",
                path_str(&csv),
            ],
            &[("RAYON_NUM_THREADS", n)],
        );
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        outs.push((std::fs::read(&json).unwrap(), std::fs::read(&csv).unwrap()));
    }
    assert_eq!(outs[0], outs[1]);
}

#[test]
fn partitions_merge_to_the_whole_run_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    for fx in ["plates", "palette"] {
        let whole = maskprep(&["stats", &format!("fixtures/{fx}"), "--json"]);
        assert_eq!(code(&whole), 0);
        let mut parts = Vec::new();
        for i in 1..=3 {
            let p = dir.path().join(format!("{fx}-{i}.json"));
            let o = maskprep(&[
                "-q",
                "stats",
                &format!("fixtures/{fx}"),
                "--partition",
                &format!("{i}/3"),
                "-o",
                path_str(&p),
            ]);
            assert_eq!(code(&o), 0, "{}", stderr(&o));
            parts.push(p);
        }
        let mut args = vec!["merge", "--json"];
        // Merge order must not matter.
        args.extend(parts.iter().rev().map(|p| path_str(p)));
        let merged = maskprep(&args);
        assert_eq!(code(&merged), 0, "{}", stderr(&merged));
        assert_eq!(stdout(&merged), stdout(&whole), "{fx}");
    }
}

#[test]
fn merge_rejects_missing_or_repeated_partitions_and_other_formats() {
    let dir = tempfile::tempdir().unwrap();
    let p1 = dir.path().join("1.json");
    let o = maskprep(&[
        "-q",
        "stats",
        "fixtures/plates",
        "--partition",
        "1/2",
        "-o",
        path_str(&p1),
    ]);
    assert_eq!(code(&o), 0);
    let o = maskprep(&["merge", path_str(&p1)]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("partitions 2/2 are missing"),
        "{}",
        stderr(&o)
    );
    let o = maskprep(&["merge", path_str(&p1), path_str(&p1)]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("given twice"), "{}", stderr(&o));
    let other = dir.path().join("other.json");
    std::fs::write(&other, r#"{"format": "maskprep-stats/0", "classes": []}"#).unwrap();
    let o = maskprep(&["merge", path_str(&other)]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("expected `maskprep-stats/1`"),
        "{}",
        stderr(&o)
    );
    let p2 = dir.path().join("pal.json");
    let o = maskprep(&["-q", "stats", "fixtures/palette", "-o", path_str(&p2)]);
    assert_eq!(code(&o), 0);
    let o = maskprep(&["merge", path_str(&p1), path_str(&p2)]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("different label maps"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bad_files_are_listed_and_the_run_continues() {
    let map = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(
        map.path(),
        "kind = \"rgb-bits\"\nclasses = [\"r\", \"g\", \"b\"]\n",
    )
    .unwrap();
    let o = maskprep(&[
        "stats",
        "fixtures/bad",
        "--labels",
        path_str(map.path()),
        "--json",
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let d = json(&o);
    let bad: Vec<(String, String)> = d["files"]["bad"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["path"].as_str().unwrap().into(),
                b["reason"].as_str().unwrap().into(),
            )
        })
        .collect();
    let reason = |name: &str| {
        bad.iter()
            .find(|(p, _)| p.ends_with(name))
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| panic!("{name} not listed in {bad:?}"))
    };
    assert!(reason("truncated.png").contains("not a readable PNG"));
    assert!(reason("not-a-png.png").contains("not a readable PNG"));
    assert!(reason("rgb16.png").contains("16-bit RGB; expected 8-bit"));
    assert!(reason("huge.png").contains("100000x100000, more than"));
    assert!(reason("zero-size.png").contains("Invalid image dimensions"));
    // A gray mask under an rgb-bits map would be every class at once
    // (issue 15): it is listed as a format mismatch instead.
    assert!(reason("gray-alpha.png").contains("format mismatch"));
    assert_eq!(bad.len(), 6);
    // good.png (64 blue) and rgba.png (alpha ignored: 16 magenta, 48 blue)
    // are read.
    assert_eq!(d["files"]["masks_read"], 2);
    assert_eq!(class_col(&d, "pixels"), [16, 0, 128]);
    let err = stderr(&o);
    assert!(
        err.contains("skipped `fixtures/bad/truncated.png`"),
        "{err}"
    );
}

#[test]
fn strict_stops_at_the_first_bad_file() {
    let map = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(
        map.path(),
        "kind = \"rgb-bits\"\nclasses = [\"r\", \"g\", \"b\"]\n",
    )
    .unwrap();
    let o = maskprep(&[
        "stats",
        "fixtures/bad",
        "--labels",
        path_str(map.path()),
        "--strict",
    ]);
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    assert!(
        err.contains("failed to decode mask `fixtures/bad/"),
        "{err}"
    );
    assert!(err.contains("--strict"), "{err}");
}

#[test]
fn empty_and_missing_folders_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let o = maskprep(&["stats", path_str(dir.path())]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("no masks (`*.png`) found under"),
        "{}",
        stderr(&o)
    );
    let o = maskprep(&["stats", "no/such/dir"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("`no/such/dir` does not exist"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn malformed_label_maps_name_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "kind = \"palette\"\nclasses = [\"road\"]\n[colors]\n\"#000000\" = []\n\"#ff0000\" = [\"rood\"]\n",
            "line 5: field `colors.\"#ff0000\"`: `rood` is not in `classes`",
        ),
        (
            "kind = \"index\"\nclasses = [\"a\"]\nignore = \"255\"\n",
            "line 3",
        ),
        (
            "kind = \"rgb\"\nclasses = [\"a\"]\n",
            "unknown variant `rgb`",
        ),
        (
            "kind = \"rgb-bits\"\nclasses = [\"a\", \"b\", \"c\", \"d\", \"e\"]\n",
            "rgb-bits has one class per channel",
        ),
        (
            "kind = \"index\"\nclases = [\"a\"]\n",
            "unknown field `clases`",
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let p = dir.path().join(format!("m{i}.toml"));
        std::fs::write(&p, text).unwrap();
        let o = maskprep(&["stats", "fixtures/plates", "--labels", path_str(&p)]);
        assert_eq!(code(&o), 2, "case {i}");
        let err = stderr(&o);
        assert!(err.contains(want), "case {i}: want `{want}` in\n{err}");
        assert!(
            err.contains(&format!("m{i}.toml")),
            "case {i}: file not named:\n{err}"
        );
    }
}

#[test]
fn pairing_problems_and_size_mismatch_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("masks")).unwrap();
    std::fs::create_dir_all(root.join("images")).unwrap();
    let m = std::fs::read(fixture("plates/masks/0001.png")).unwrap();
    for k in ["a", "b", "c"] {
        std::fs::write(root.join("masks").join(format!("{k}.png")), &m).unwrap();
    }
    std::fs::copy(fixture("plates/images/0001.png"), root.join("images/a.png")).unwrap();
    // b's image is 8x8 (size mismatch); c has no image; d has no mask.
    std::fs::copy(fixture("bad/good.png"), root.join("images/b.png")).unwrap();
    std::fs::copy(fixture("bad/good.png"), root.join("images/d.png")).unwrap();
    let o = maskprep(&["stats", path_str(root), "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let d = json(&o);
    let f = &d["files"];
    assert_eq!(f["masks_read"], 3);
    assert_eq!(f["masks_without_images"].as_array().unwrap().len(), 1);
    assert!(
        f["masks_without_images"][0]
            .as_str()
            .unwrap()
            .ends_with("masks/c.png")
    );
    assert!(
        f["images_without_masks"][0]
            .as_str()
            .unwrap()
            .ends_with("images/d.png")
    );
    let z = &f["size_mismatches"][0];
    assert_eq!(z["mask_size"], "64x48");
    assert_eq!(z["image_size"], "8x8");
    assert!(stderr(&o).contains("is 64x48 but image"), "{}", stderr(&o));
}

#[test]
fn labels_command_writes_a_map_that_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    // A copy of the plates masks without its labels.toml: detection from pixels.
    let masks = dir.path().join("m");
    std::fs::create_dir_all(&masks).unwrap();
    for e in std::fs::read_dir(fixture("plates/masks")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), masks.join(e.file_name())).unwrap();
    }
    let map = dir.path().join("labels.toml");
    let o = maskprep(&["labels", path_str(&masks), "-o", path_str(&map)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("RGB masks whose channels are 0/255 only"),
        "{}",
        stderr(&o)
    );
    let text = std::fs::read_to_string(&map).unwrap();
    assert!(text.contains("kind = \"rgb-bits\""), "{text}");
    let o = maskprep(&[
        "stats",
        path_str(&masks),
        "--labels",
        path_str(&map),
        "--json",
    ]);
    assert_eq!(code(&o), 0);
    assert_eq!(class_col(&json(&o), "pixels"), [1152, 28, 15390]);
}

#[test]
fn per_image_parquet_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("rows.csv");
    let pq = dir.path().join("rows.parquet");
    for p in [&csv, &pq] {
        let o = maskprep(&["-q", "stats", "fixtures/plates", "--per-image", path_str(p)]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "mask,width,height,ignored,undeclared,qr_code,scratch,plate"
    );
    assert_eq!(lines.count(), 8);
    let bytes = std::fs::read(&pq).unwrap();
    assert_eq!(&bytes[..4], b"PAR1");
    let o = maskprep(&["stats", "fixtures/plates", "--per-image", "x.txt"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("expected a `.csv` or `.parquet`"));
}

#[test]
fn bad_partition_argument_is_explained() {
    let o = maskprep(&["stats", "fixtures/plates", "--partition", "4/3"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("expected I/N with 1 <= I <= N"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn masks_of_different_sizes_are_fine() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("plates/masks/0001.png"), dir.path().join("a.png")).unwrap();
    std::fs::copy(fixture("bad/good.png"), dir.path().join("b.png")).unwrap();
    let o = maskprep(&["stats", path_str(dir.path()), "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let d = json(&o);
    assert_eq!(
        d["image_sizes"],
        serde_json::json!([{"width": 8, "height": 8, "masks": 1}, {"width": 64, "height": 48, "masks": 1}])
    );
    assert_eq!(d["pixels"]["total"], 64 + 64 * 48);
}

#[test]
fn table_says_each_fact_once_and_shows_pos_weight_as_written() {
    let o = maskprep(&["stats", "fixtures/voc"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let table = stdout(&o);
    // Single-label: one line instead of a 21x21 matrix of zeros.
    assert!(
        table.contains("co-occurrence: none (no pixel carries two classes)"),
        "{table}"
    );
    assert!(!table.contains("pixels carrying both"), "{table}");
    // The 18 classes without pixels: one warning, pos_weight 1 marked.
    let warnings: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("18 classes have no pixels"), "{table}");
    let row = table.lines().find(|l| l.starts_with("aeroplane ")).unwrap();
    assert!(row.contains("1.0000†"), "{row}");
    assert!(!table.contains("undefined"), "{table}");
}

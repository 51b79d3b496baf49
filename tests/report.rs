//! `maskprep report` end to end on `fixtures/`: every PNG the page
//! references exists and decodes, the page holds the numbers of the JSON it
//! came from, the bytes are the same run to run, and the folder is replaced
//! whole (or left alone when a run fails).

mod common;
mod report_common;

use std::path::Path;
use std::process::Output;

use common::{code, maskprep, path_str, stderr};
use report_common::{check_images, esc, score_fixture};
use serde_json::Value;

fn ok(o: &Output) {
    assert_eq!(code(o), 0, "stderr: {}", stderr(o));
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("cannot read `{}`: {e}", p.display()))
}

fn json_file(p: &Path) -> Value {
    serde_json::from_str(&read(p)).expect("JSON")
}

/// Every file of a folder, by name, with its bytes.
fn folder(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

const STATS_PLOTS: [&str; 6] = [
    "class_pixels.png",
    "class_images.png",
    "label_degree.png",
    "cooccurrence.png",
    "class_fraction.png",
    "image_sizes.png",
];

/// The page holds the stats document's numbers and its weights.
fn check_stats_numbers(html: &str, stats: &Value, weights: &Value) {
    for c in stats["classes"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let pixels = c["pixels"].as_u64().unwrap();
        let row = format!("<td>{name}</td><td class=\"n\">{pixels}</td>");
        assert!(html.contains(&row), "no row `{row}` for class `{name}`");
        let pw = format!("{:.4}", c["pos_weight"].as_f64().unwrap());
        assert!(
            html.contains(&format!(">{pw}<")),
            "pos_weight {pw} of `{name}` is missing"
        );
        assert!(
            html.contains(&format!(">{}<", c["images"])),
            "images of `{name}`"
        );
    }
    for v in weights["pos_weight"]["values"].as_array().unwrap() {
        let s = format!(">{:.4}<", v.as_f64().unwrap());
        assert!(html.contains(&s), "weights.json pos_weight {s} is missing");
    }
    for v in weights["weight"]["values"].as_array().unwrap() {
        let s = format!(">{:.4}<", v.as_f64().unwrap());
        assert!(html.contains(&s), "weights.json weight {s} is missing");
    }
    let reason = stats["verdict"]["reason"].as_str().unwrap();
    assert!(
        html.contains(&esc(reason)),
        "the verdict text is missing: {reason}"
    );
    assert!(html.contains(&esc(stats["verdict"]["loss"].as_str().unwrap())));
    for w in stats["warnings"].as_array().unwrap() {
        let w = w.as_str().unwrap();
        let plain: String = w.split('`').collect();
        let text: String = esc(&plain);
        let shown = html.replace("<code>", "").replace("</code>", "");
        assert!(shown.contains(&text), "warning missing: {w}");
    }
    let d = &stats["label_degree"];
    for k in ["0", "1", "2", "3+"] {
        assert!(
            html.contains(&format!("<td class=\"n\">{}</td>", d[k])),
            "label degree {k}"
        );
    }
    for row in stats["cooccurrence"].as_array().unwrap() {
        let cells: String = row
            .as_array()
            .unwrap()
            .iter()
            .map(|v| format!("<td class=\"n\">{v}</td>"))
            .collect();
        assert!(html.contains(&cells), "co-occurrence row {row} is missing");
    }
    assert!(
        html.contains(&esc(
            "torch.nn.BCEWithLogitsLoss(pos_weight=w[\"pos_weight\"])"
        )),
        "the PyTorch snippet is missing"
    );
    assert!(
        html.contains("load_file(&quot;weights.safetensors&quot;"),
        "the snippet loads the file beside the page"
    );
}

#[test]
fn report_from_a_scan_has_every_plot_and_the_numbers_of_its_json() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("reports/train");
    let o = maskprep(&["report", "fixtures/plates", "-o", path_str(&out)]);
    ok(&o);
    assert!(stderr(&o).contains("wrote the report"), "{}", stderr(&o));
    let refs = check_images(&out);
    for p in STATS_PLOTS {
        assert!(refs.contains(p), "`{p}` is not on the page");
    }
    let html = read(&out.join("index.html"));
    let stats = json_file(&out.join("stats.json"));
    let weights = json_file(&out.join("weights.json"));
    check_stats_numbers(&html, &stats, &weights);
    // The same numbers as a separate `maskprep stats --json` run.
    let separate = maskprep(&["stats", "fixtures/plates", "--json"]);
    ok(&separate);
    let separate: Value = serde_json::from_slice(&separate.stdout).unwrap();
    assert_eq!(separate["classes"], stats["classes"]);
    // Hand-counted numbers of fixtures/README.md.
    for n in [
        "1152", "28", "15390", "20.3333", "876.7143", "0.5969", "9165", "14256", "1151",
    ] {
        assert!(html.contains(&format!(">{n}<")), "`{n}` is missing");
    }
    assert!(
        html.contains("class <code>scratch</code> is rare"),
        "rare warning"
    );
    assert!(
        html.contains("<tr class=\"flag\"><td class=\"n\">1</td><td>scratch</td>"),
        "rare row flagged"
    );
    // Self-contained: no scripts, nothing from the network.
    assert!(!html.contains("<script"), "no JavaScript");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no network reference"
    );
    assert!(!html.contains("<link"), "CSS inline");
    // No temporary folder is left beside the report.
    let beside: Vec<String> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(beside, vec!["train".to_string()]);
}

#[test]
fn report_from_a_stats_file_skips_the_per_image_plot_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let stats = tmp.path().join("stats.json");
    ok(&maskprep(&[
        "stats",
        "fixtures/plates",
        "--json",
        "-o",
        path_str(&stats),
    ]));
    let out = tmp.path().join("report");
    ok(&maskprep(&[
        "report",
        "--stats",
        path_str(&stats),
        "-o",
        path_str(&out),
    ]));
    let refs = check_images(&out);
    assert!(!refs.contains("class_fraction.png"));
    assert!(!out.join("class_fraction.png").exists());
    for p in STATS_PLOTS.iter().filter(|p| **p != "class_fraction.png") {
        assert!(refs.contains(*p), "`{p}` is not on the page");
    }
    let html = read(&out.join("index.html"));
    assert!(
        html.contains("Skipped: the per-image class fraction needs one row per mask"),
        "the page must say why the per-image plot is missing"
    );
    let doc = json_file(&stats);
    check_stats_numbers(&html, &doc, &json_file(&out.join("weights.json")));
    assert!(
        html.contains(&format!("<code>{}</code>", esc(path_str(&stats)))),
        "names the stats file"
    );
}

#[test]
fn stats_with_report_writes_the_json_and_the_report_in_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (json, out) = (tmp.path().join("stats.json"), tmp.path().join("report"));
    let o = maskprep(&[
        "stats",
        "fixtures/plates",
        "--json",
        "-o",
        path_str(&json),
        "--report",
        path_str(&out),
    ]);
    ok(&o);
    assert_eq!(
        std::fs::read(&json).unwrap(),
        std::fs::read(out.join("stats.json")).unwrap()
    );
    let refs = check_images(&out);
    assert!(
        refs.contains("class_fraction.png"),
        "a scan has per-image rows"
    );
    // A report folder that is not a report is refused before the scan.
    let foreign = tmp.path().join("mine");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "keep me").unwrap();
    let o = maskprep(&["stats", "fixtures/plates", "--report", path_str(&foreign)]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("holds no maskprep report"),
        "{}",
        stderr(&o)
    );
    assert!(
        o.stdout.is_empty(),
        "nothing printed when the report cannot be written"
    );
}

#[test]
fn same_input_gives_the_same_bytes_at_any_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    ok(&maskprep(&[
        "-j",
        "1",
        "report",
        "fixtures/plates",
        "-o",
        path_str(&a),
    ]));
    ok(&maskprep(&[
        "-j",
        "4",
        "report",
        "fixtures/plates",
        "-o",
        path_str(&b),
    ]));
    let (fa, fb) = (folder(&a), folder(&b));
    assert_eq!(fa.len(), fb.len());
    for ((na, ba), (nb, bb)) in fa.iter().zip(&fb) {
        assert_eq!(na, nb);
        assert!(ba == bb, "`{na}` differs between runs");
    }
    let fixture = score_fixture(tmp.path());
    let (sa, sb) = (tmp.path().join("sa"), tmp.path().join("sb"));
    ok(&maskprep(&[
        "-j",
        "1",
        "report",
        "--score",
        path_str(&fixture.json),
        "-o",
        path_str(&sa),
    ]));
    ok(&maskprep(&[
        "-j",
        "3",
        "report",
        "--score",
        path_str(&fixture.json),
        "-o",
        path_str(&sb),
    ]));
    assert!(
        folder(&sa) == folder(&sb),
        "score reports differ between runs"
    );
}

#[test]
fn rerun_replaces_the_folder_and_a_failed_run_leaves_the_old_report() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("report");
    ok(&maskprep(&[
        "report",
        "fixtures/plates",
        "-o",
        path_str(&out),
    ]));
    std::fs::write(out.join("stale.png"), b"old").unwrap();
    ok(&maskprep(&[
        "report",
        "fixtures/plates",
        "-o",
        path_str(&out),
    ]));
    assert!(
        !out.join("stale.png").exists(),
        "the folder is replaced whole"
    );
    let before = folder(&out);
    // A run that fails (not a stats file) leaves the old report as it was.
    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, "{\"format\": \"something-else\"}").unwrap();
    let o = maskprep(&["report", "--stats", path_str(&bad), "-o", path_str(&out)]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("expected `maskprep-stats/1`"),
        "{}",
        stderr(&o)
    );
    assert!(
        folder(&out) == before,
        "the old report must be left as it was"
    );
    // Not a folder; a folder with other files.
    let file = tmp.path().join("file.html");
    std::fs::write(&file, "x").unwrap();
    let o = maskprep(&["report", "fixtures/plates", "-o", path_str(&file)]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("is a file; expected a folder"),
        "{}",
        stderr(&o)
    );
    let mine = tmp.path().join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("thesis.tex"), "keep").unwrap();
    let o = maskprep(&["report", "fixtures/plates", "-o", path_str(&mine)]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("holds no maskprep report"),
        "{}",
        stderr(&o)
    );
    assert_eq!(read(&mine.join("thesis.tex")), "keep");
}

#[test]
fn arguments_name_one_input() {
    let o = maskprep(&["report", "-o", "x"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("required"), "{}", stderr(&o));
    let o = maskprep(&["report", "fixtures/plates", "--stats", "s.json", "-o", "x"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("cannot be used with"), "{}", stderr(&o));
    let o = maskprep(&[
        "report",
        "--stats",
        "s.json",
        "--rare-below",
        "0.1",
        "-o",
        "x",
    ]);
    assert_eq!(code(&o), 2);
}

#[test]
fn score_report_has_classes_reductions_and_the_worst_images_side_by_side() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = score_fixture(tmp.path());
    let out = tmp.path().join("run42");
    let o = maskprep(&[
        "report",
        "--score",
        path_str(&fixture.json),
        "-o",
        path_str(&out),
        "--worst",
        "3",
    ]);
    ok(&o);
    let refs = check_images(&out);
    for p in [
        "score_classes.png",
        "score_reductions.png",
        "score_image_iou.png",
    ] {
        assert!(refs.contains(p), "`{p}` is not on the page");
    }
    for rank in 1..=3 {
        for what in ["image", "truth", "pred", "errors"] {
            let f = format!("worst-{rank:02}-{what}.png");
            assert!(refs.contains(&f), "`{f}` is not on the page");
        }
    }
    assert!(
        !out.join("worst-04-truth.png").exists(),
        "--worst 3 shows 3 images"
    );
    let html = read(&out.join("index.html"));
    let doc = &fixture.doc;
    for (k, c) in doc["classes"].as_array().unwrap().iter().enumerate() {
        // The score JSON agrees with the counts made here, and the page shows them.
        let counted = fixture.counts[k];
        for (j, key) in ["tp", "fp", "fn", "tn"].iter().enumerate() {
            assert_eq!(c[key].as_u64(), Some(counted[j]), "{key} of {}", c["name"]);
            let cell = format!("<td class=\"n\">{}</td>", counted[j]);
            assert!(html.contains(&cell), "{key} of {}", c["name"]);
        }
        for key in ["iou", "accuracy", "dice"] {
            let v = format!(">{:.4}<", c[key].as_f64().unwrap());
            assert!(html.contains(&v), "{key} {v} of {}", c["name"]);
        }
    }
    for r in ["macro", "micro", "per_image"] {
        let v = format!(">{:.4}<", doc["reductions"][r]["iou"].as_f64().unwrap());
        assert!(html.contains(&v), "IoU of reduction {r}");
    }
    assert!(
        html.contains("matches the score file"),
        "the per-image numbers are checked"
    );
    // The worst images come first, with the mIoU counted here.
    let mut ranked = fixture.images.clone();
    ranked.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap().then_with(|| a.0.cmp(&b.0)));
    let mut at = 0;
    for (key, miou) in ranked.iter().take(3) {
        let cell = format!("<code>{key}</code><br>mIoU {miou:.4}");
        let found = html[at..]
            .find(&cell)
            .unwrap_or_else(|| panic!("`{cell}` missing or out of order"));
        at += found;
    }
    // The worst image's error overlay shows misses and false alarms in their colours.
    let errors = image::open(out.join("worst-01-errors.png"))
        .unwrap()
        .to_rgb8();
    let has = |rgb: [u8; 3]| errors.pixels().any(|p| p.0 == rgb);
    assert!(has([230, 85, 13]), "no false negative drawn");
    assert!(has([49, 130, 220]), "no false positive drawn");
    let photo = image::open(out.join("worst-01-image.png"))
        .unwrap()
        .to_rgb8();
    let truth = image::open(out.join("worst-01-truth.png"))
        .unwrap()
        .to_rgb8();
    assert_eq!(photo.dimensions(), truth.dimensions());
    assert_eq!(
        truth.dimensions(),
        (192, 144),
        "64x48 masks drawn 3x, pixels kept sharp"
    );
}

#[test]
fn score_with_report_writes_the_json_and_the_same_report_in_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (json, out) = (tmp.path().join("score.json"), tmp.path().join("run"));
    let o = maskprep(&[
        "score",
        "--truth",
        "fixtures/plates",
        "--pred",
        "fixtures/plates-pred",
        "--json",
        "-o",
        path_str(&json),
        "--report",
        path_str(&out),
    ]);
    ok(&o);
    let refs = check_images(&out);
    assert!(refs.contains("worst-01-errors.png"));
    let html = read(&out.join("index.html"));
    let doc = json_file(&json);
    assert_eq!(
        read(&json),
        read(&out.join("score.json")),
        "the JSON beside the page"
    );
    let miou = format!(">{:.4}<", doc["summary"]["miou"].as_f64().unwrap());
    assert!(html.contains(&miou), "mIoU {miou}");
    // `report --score` of the same JSON gives the same folder.
    let again = tmp.path().join("again");
    ok(&maskprep(&[
        "report",
        "--score",
        path_str(&json),
        "-o",
        path_str(&again),
    ]));
    assert!(
        folder(&out) == folder(&again),
        "score --report and report --score differ"
    );
    // A foreign folder is refused before scoring.
    let mine = tmp.path().join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "keep").unwrap();
    let o = maskprep(&[
        "score",
        "--truth",
        "fixtures/plates",
        "--pred",
        "fixtures/plates-pred",
        "--report",
        path_str(&mine),
    ]);
    assert_eq!(code(&o), 2);
    assert!(o.stdout.is_empty(), "nothing scored");
    assert!(
        stderr(&o).contains("holds no maskprep report"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn logits_predictions_get_the_same_per_image_scores_and_thumbnails() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = score_fixture(tmp.path());
    let (png, npy) = (tmp.path().join("png"), tmp.path().join("npy"));
    ok(&maskprep(&[
        "report",
        "--score",
        path_str(&fixture.json),
        "-o",
        path_str(&png),
    ]));
    let json = tmp.path().join("logits.json");
    ok(&maskprep(&[
        "score",
        "--truth",
        "fixtures/plates",
        "--pred",
        path_str(&fixture.logits),
        "--json",
        "-o",
        path_str(&json),
    ]));
    ok(&maskprep(&[
        "report",
        "--score",
        path_str(&json),
        "-o",
        path_str(&npy),
    ]));
    check_images(&npy);
    for f in [
        "worst-01-pred.png",
        "worst-01-errors.png",
        "score_image_iou.png",
    ] {
        assert!(
            std::fs::read(png.join(f)).unwrap() == std::fs::read(npy.join(f)).unwrap(),
            "`{f}` differs between PNG masks and logits of the same predictions"
        );
    }
    let html = read(&npy.join("index.html"));
    assert!(html.contains("score &gt; 0"), "names the decision rule");
    // Paths relative to the score file are found beside it.
    let mut doc = fixture.doc.clone();
    doc["pred"] = "pred".into();
    std::fs::write(&fixture.json, serde_json::to_string(&doc).unwrap()).unwrap();
    let out = tmp.path().join("relative");
    ok(&maskprep(&[
        "report",
        "--score",
        path_str(&fixture.json),
        "-o",
        path_str(&out),
    ]));
    assert!(read(&out.join("index.html")).contains("worst-01-errors.png"));
    // Files that are gone: the report still has the class section and says why.
    doc["pred"] = "nowhere".into();
    std::fs::write(&fixture.json, serde_json::to_string(&doc).unwrap()).unwrap();
    let out = tmp.path().join("gone");
    ok(&maskprep(&[
        "report",
        "--score",
        path_str(&fixture.json),
        "-o",
        path_str(&out),
    ]));
    let refs = check_images(&out);
    assert!(refs.contains("score_classes.png"));
    assert!(!refs.iter().any(|r| r.starts_with("worst-")));
    let html = read(&out.join("index.html"));
    assert!(
        html.contains(
            "the prediction folder <code>nowhere</code> named in the score file is not found"
        ),
        "says why there are no per-image plots"
    );
}

#[test]
fn a_stats_file_is_not_a_score_file() {
    let tmp = tempfile::tempdir().unwrap();
    let stats = tmp.path().join("stats.json");
    ok(&maskprep(&[
        "stats",
        "fixtures/plates",
        "--json",
        "-o",
        path_str(&stats),
    ]));
    let o = maskprep(&[
        "report",
        "--score",
        path_str(&stats),
        "-o",
        path_str(&tmp.path().join("r")),
    ]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("has format `maskprep-stats/1`; expected `maskprep-score/1`"),
        "{}",
        stderr(&o)
    );
}

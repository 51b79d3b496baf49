//! `maskprep run` and `merge-run`: every shipped pipeline runs on the
//! fixtures; partition runs merge into the outputs of one run; malformed
//! pipelines are refused with file, line and expectation, writing nothing.

mod common;

use std::path::Path;

use common::*;

fn pipelines() -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(root().join("pipelines"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    assert!(v.len() >= 2, "{v:?}");
    v
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn every_shipped_pipeline_runs_on_the_fixtures() {
    for p in pipelines() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let o = maskprep(&["run", path_str(&p), "-o", path_str(&out)]);
        assert_eq!(code(&o), 0, "{}: {}", p.display(), stderr(&o));
        let text = std::fs::read_to_string(&p).unwrap();
        if ["[stats]", "[weights]", "[shards]"]
            .iter()
            .any(|t| text.contains(t))
        {
            let stats: serde_json::Value =
                serde_json::from_slice(&read(&out.join("stats.json"))).unwrap();
            assert_eq!(stats["format"], "maskprep-stats/1");
        }
        if text.contains("[report]") {
            let dir = if text.contains("[score]") {
                "score-report"
            } else {
                "report"
            };
            assert!(
                out.join(dir).join("index.html").is_file(),
                "{}",
                p.display()
            );
        }
        if text.contains("[score]") {
            let score: serde_json::Value =
                serde_json::from_slice(&read(&out.join("score.json"))).unwrap();
            assert_eq!(score["format"], "maskprep-score/1", "{}", p.display());
        }
        if text.contains("[weights]") {
            assert!(
                out.join("weights/weights.safetensors").is_file(),
                "{}",
                p.display()
            );
        }
        if text.contains("[shards]") {
            let v = maskprep(&["shards", "verify", path_str(&out.join("shards"))]);
            assert_eq!(code(&v), 0, "{}: {}", p.display(), stderr(&v));
        }
    }
}

#[test]
fn pipeline_stats_equal_the_stats_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = maskprep(&["-q", "run", "pipelines/plates.toml", "-o", path_str(&out)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let run: serde_json::Value = serde_json::from_slice(&read(&out.join("stats.json"))).unwrap();
    let o = maskprep(&["stats", "fixtures/plates", "--json"]);
    let direct = json(&o);
    // The same exact counts whether they come from the shard writer's pass
    // or from a stats scan.
    for key in [
        "classes",
        "cooccurrence",
        "label_degree",
        "pixels",
        "verdict",
    ] {
        assert_eq!(run[key], direct[key], "{key}");
    }
}

#[test]
fn partition_runs_merge_into_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    let split = dir.path().join("split");
    let o = maskprep(&["-q", "run", "pipelines/plates.toml", "-o", path_str(&whole)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for i in 1..=3 {
        let o = maskprep(&[
            "-q",
            "run",
            "pipelines/plates.toml",
            "-o",
            path_str(&split),
            "--partition",
            &format!("{i}/3"),
        ]);
        assert_eq!(code(&o), 0, "part {i}: {}", stderr(&o));
        assert!(split.join(format!("parts/{i}-of-3/stats.json")).is_file());
    }
    let o = maskprep(&[
        "merge-run",
        path_str(&split.join("parts")),
        "-o",
        path_str(&split),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        read(&whole.join("stats.json")),
        read(&split.join("stats.json"))
    );
    for f in ["weights.json", "weights.safetensors"] {
        assert_eq!(
            read(&whole.join("weights").join(f)),
            read(&split.join("weights").join(f)),
            "{f}"
        );
    }
    let v = maskprep(&["shards", "verify", path_str(&split.join("shards"))]);
    assert_eq!(code(&v), 0, "{}", stderr(&v));
    let m: serde_json::Value =
        serde_json::from_slice(&read(&split.join("shards/index.json"))).unwrap();
    let samples: u64 = m["splits"]
        .as_object()
        .unwrap()
        .values()
        .map(|s| s["samples"].as_u64().unwrap())
        .sum();
    assert_eq!(samples, 8, "every mask in exactly one shard");
    // The merged manifest's weights are those of the merged train counts.
    assert_eq!(m["weights"]["format"], "maskprep-weights/1");
}

#[test]
fn partition_auto_reads_the_scheduler_environment() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let o = maskprep_env(
        &[
            "-q",
            "run",
            "pipelines/voc.toml",
            "-o",
            path_str(&out),
            "--partition",
            "auto",
        ],
        &[
            ("SLURM_ARRAY_TASK_ID", "0"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(out.join("parts/1-of-2/stats.json").is_file());
    let o = maskprep_env(
        &[
            "-q",
            "run",
            "pipelines/voc.toml",
            "-o",
            path_str(&out),
            "--partition",
            "auto/2",
        ],
        &[("JOB_COMPLETION_INDEX", "1")],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(out.join("parts/2-of-2/stats.json").is_file());
    let o = maskprep(&[
        "merge-run",
        path_str(&out.join("parts")),
        "-o",
        path_str(&out),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = maskprep(&["run", "pipelines/voc.toml", "--partition", "auto"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("found neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX"));
}

#[test]
fn malformed_pipelines_name_file_line_and_expectation_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never");
    let src = "[source]\ndir = \"fixtures/plates\"\n[output]\ndir = \"x\"\n";
    let cases = [
        (
            format!("{src}[stat]\nrare_below = 0.1\n"),
            vec!["line 5", "unknown field `stat`", "expected one of"],
        ),
        (
            "[output]\ndir = \"x\"\n[stats]\n".to_string(),
            vec!["missing field `source`"],
        ),
        (
            format!("{src}[stats]\nrare_below = \"lots\"\n"),
            vec!["line 6", "invalid type", "expected f64"],
        ),
        (
            format!("{src}[shards]\nformat = \"zip\"\n"),
            vec!["line 6", "expected `webdataset` or `safetensors`"],
        ),
        (
            format!("{src}[weights]\nschem = \"balanced\"\n"),
            vec!["line 6", "unknown field `schem`"],
        ),
        (src.to_string(), vec!["no stage"]),
    ];
    for (i, (text, wants)) in cases.iter().enumerate() {
        let p = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&p, text).unwrap();
        let o = maskprep(&["run", path_str(&p), "-o", path_str(&out)]);
        assert_eq!(code(&o), 2, "case {i}");
        let err = stderr(&o);
        assert!(
            err.contains(&format!("bad{i}.toml")),
            "case {i}: no file in\n{err}"
        );
        for w in wants {
            assert!(err.contains(w), "case {i}: want `{w}` in\n{err}");
        }
        assert!(!out.exists(), "case {i} wrote output");
    }
}

#[test]
fn score_pipeline_equals_the_score_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = maskprep(&["-q", "run", "pipelines/score.toml", "-o", path_str(&out)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let direct = dir.path().join("direct.json");
    let o = maskprep(&[
        "-q",
        "score",
        "--truth",
        "fixtures/plates/masks",
        "--pred",
        "fixtures/plates-pred",
        "--labels",
        "fixtures/plates/labels.toml",
        "-o",
        path_str(&direct),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let a: serde_json::Value = serde_json::from_slice(&read(&out.join("score.json"))).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&read(&direct)).unwrap();
    assert_eq!(a["classes"], b["classes"]);
    assert_eq!(a["summary"], b["summary"]);
    // The plate is predicted one pixel too wide: FP only, no FN.
    let plate = &a["classes"][2];
    assert_eq!(plate["fn"], 0);
    assert!(plate["fp"].as_u64().unwrap() > 0);
    assert!(out.join("score_per_image.csv").is_file());
}

/// `[score]` in partition runs: each part scores its piece of the pairs,
/// and `merge-run` sums them into the whole run's `score.json`, byte for
/// byte, with the score report.
#[test]
fn partitioned_score_stage_merges_into_the_whole_run() {
    let p = root().join("pipelines/score.toml");
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    let o = maskprep(&["run", path_str(&p), "-o", path_str(&whole)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let parts = dir.path().join("parts-run");
    for i in 1..=3 {
        let o = maskprep(&[
            "run",
            path_str(&p),
            "-o",
            path_str(&parts),
            "--partition",
            &format!("{i}/3"),
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert!(parts.join(format!("parts/{i}-of-3/score.json")).is_file());
    }
    let merged = dir.path().join("merged");
    let o = maskprep(&[
        "merge-run",
        path_str(&parts.join("parts")),
        "-o",
        path_str(&merged),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        read(&merged.join("score.json")) == read(&whole.join("score.json")),
        "merged score.json differs from the whole run's"
    );
    assert!(merged.join("score-report/index.html").is_file());
}

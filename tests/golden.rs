//! Golden outputs: every command on every shipped fixture and pipeline,
//! pinned byte for byte (SHA-256 of stdout and of each file written), so a
//! refactoring that changes any output fails here. After an intended change
//! of output, rewrite the list with `MASKPREP_BLESS=1 cargo test --test golden`
//! and review the diff of `tests/golden/outputs.txt`.
//!
//! Commands run from the project root with relative paths (outputs embed the
//! paths they were given), writing under `target/golden-run/`. The shard
//! writer's resume records (`.maskprep/`) are left out: they identify
//! sources by this machine's file times, so they differ on every checkout.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

const LIST: &str = "tests/golden/outputs.txt";
const OUT: &str = "target/golden-run";

/// (case name, arguments); `{out}` is replaced by the case's output folder.
const CASES: &[(&str, &[&str])] = &[
    ("stats-plates-json", &["stats", "fixtures/plates", "--json"]),
    ("stats-plates-table", &["stats", "fixtures/plates"]),
    (
        "stats-plates-per-image",
        &[
            "stats",
            "fixtures/plates",
            "--json",
            "--per-image",
            "{out}/per_image.csv",
            "-o",
            "{out}/stats.json",
        ],
    ),
    ("stats-voc-json", &["stats", "fixtures/voc", "--json"]),
    ("stats-voc-table", &["stats", "fixtures/voc"]),
    (
        "stats-palette-json",
        &["stats", "fixtures/palette", "--json"],
    ),
    ("stats-index-p", &["stats", "fixtures/index/p", "--json"]),
    (
        "stats-index-gray16",
        &["stats", "fixtures/index/gray16", "--json"],
    ),
    ("stats-bad", &["stats", "fixtures/bad", "--json"]),
    (
        "stats-bad-rgb",
        &[
            "stats",
            "fixtures/bad",
            "--json",
            "--labels",
            "fixtures/plates/labels.toml",
        ],
    ),
    (
        "stats-plates-part1",
        &[
            "stats",
            "fixtures/plates",
            "--json",
            "--partition",
            "1/2",
            "-o",
            "{out}/p1.json",
        ],
    ),
    (
        "stats-plates-part2",
        &[
            "stats",
            "fixtures/plates",
            "--json",
            "--partition",
            "2/2",
            "-o",
            "{out}/p2.json",
        ],
    ),
    (
        "merge-plates",
        &[
            "merge",
            "--json",
            "target/golden-run/stats-plates-part1/p1.json",
            "target/golden-run/stats-plates-part2/p2.json",
        ],
    ),
    ("labels-plates", &["labels", "fixtures/plates"]),
    ("labels-voc", &["labels", "fixtures/voc"]),
    ("labels-palette", &["labels", "fixtures/palette"]),
    (
        "weights-plates",
        &["weights", "fixtures/plates", "-o", "{out}/w"],
    ),
    (
        "weights-plates-json",
        &["weights", "fixtures/plates", "--json", "--scheme", "enet"],
    ),
    (
        "weights-voc-npy",
        &[
            "weights",
            "fixtures/voc",
            "-o",
            "{out}/w",
            "--npy",
            "--scheme",
            "median-frequency",
        ],
    ),
    (
        "weights-from-stats",
        &[
            "weights",
            "--from",
            "target/golden-run/stats-plates-per-image/stats.json",
            "--json",
        ],
    ),
    (
        "shards-plates",
        &[
            "shards",
            "fixtures/plates",
            "-o",
            "{out}/sh",
            "--samples-per-shard",
            "3",
            "--split",
            "val=0.25",
        ],
    ),
    (
        "shards-voc-safetensors",
        &[
            "shards",
            "fixtures/voc",
            "-o",
            "{out}/sh",
            "--format",
            "safetensors",
            "--size",
            "32x24",
        ],
    ),
    (
        "shards-verify",
        &["shards", "verify", "target/golden-run/shards-plates/sh"],
    ),
    (
        "score-plates-json",
        &[
            "score",
            "--truth",
            "fixtures/plates/masks",
            "--pred",
            "fixtures/plates-pred",
            "--json",
            "--backend",
            "cpu",
            "-o",
            "{out}/score.json",
            "--per-image",
            "{out}/per_image.csv",
        ],
    ),
    (
        "score-plates-table",
        &[
            "score",
            "--truth",
            "fixtures/plates/masks",
            "--pred",
            "fixtures/plates-pred",
            "--backend",
            "cpu",
        ],
    ),
    (
        "score-plates-report",
        &[
            "score",
            "--truth",
            "fixtures/plates/masks",
            "--pred",
            "fixtures/plates-pred",
            "--backend",
            "cpu",
            "--report",
            "{out}/rep",
        ],
    ),
    (
        "stats-report",
        &["stats", "fixtures/plates", "--report", "{out}/rep"],
    ),
    (
        "report-scan-voc",
        &["report", "fixtures/voc", "-o", "{out}/rep"],
    ),
    (
        "report-from-stats",
        &[
            "report",
            "--stats",
            "target/golden-run/stats-plates-per-image/stats.json",
            "-o",
            "{out}/rep",
        ],
    ),
    (
        "report-from-score",
        &[
            "report",
            "--score",
            "target/golden-run/score-plates-json/score.json",
            "-o",
            "{out}/rep",
        ],
    ),
    (
        "run-plates",
        &["run", "pipelines/plates.toml", "-o", "{out}/run"],
    ),
    ("run-voc", &["run", "pipelines/voc.toml", "-o", "{out}/run"]),
    (
        "run-score",
        &["run", "pipelines/score.toml", "-o", "{out}/run"],
    ),
    (
        "run-plates-part1",
        &[
            "run",
            "pipelines/plates.toml",
            "-o",
            "target/golden-run/parts-plates",
            "--partition",
            "1/2",
        ],
    ),
    (
        "run-plates-part2",
        &[
            "run",
            "pipelines/plates.toml",
            "-o",
            "target/golden-run/parts-plates",
            "--partition",
            "2/2",
        ],
    ),
    (
        "merge-run-plates",
        &[
            "merge-run",
            "target/golden-run/parts-plates/parts",
            "-o",
            "{out}/merged",
        ],
    ),
];

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Runs every case; returns `case/what -> "sha256 bytes"` lines.
fn outputs() -> BTreeMap<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let _ = std::fs::remove_dir_all(root.join(OUT));
    let mut got = BTreeMap::new();
    for (name, args) in CASES {
        let out = format!("{OUT}/{name}");
        std::fs::create_dir_all(root.join(&out)).unwrap();
        let args: Vec<String> = args.iter().map(|a| a.replace("{out}", &out)).collect();
        // argv[0] as typed, not this checkout's path (shard manifests
        // record the command line).
        let o = Command::new(env!("CARGO_BIN_EXE_maskprep"))
            .arg0("maskprep")
            .args(&args)
            .current_dir(root)
            .env("RAYON_NUM_THREADS", "2")
            .env_remove("MASKPREP_SHARDS_ABORT_AFTER")
            .output()
            .unwrap();
        let code = o.status.code().unwrap_or(-1);
        got.insert(
            format!("{name} exit"),
            format!(
                "{code} {}",
                String::from_utf8_lossy(&o.stderr).lines().count()
            ),
        );
        got.insert(
            format!("{name} stdout"),
            format!("{} {}", sha(&o.stdout), o.stdout.len()),
        );
        let mut files = Vec::new();
        files_under(&root.join(&out), &mut files);
        for f in files {
            let rel = f.strip_prefix(root.join(&out)).unwrap();
            if rel.components().any(|c| c.as_os_str() == ".maskprep") {
                continue;
            }
            let bytes = std::fs::read(&f).unwrap();
            got.insert(
                format!("{name} {}", rel.display()),
                format!("{} {}", sha(&bytes), bytes.len()),
            );
        }
    }
    got
}

#[test]
fn every_command_output_is_unchanged() {
    let got = outputs();
    let text: String = got.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(LIST);
    if std::env::var_os("MASKPREP_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).expect("tests/golden/outputs.txt");
    let want: BTreeMap<String, String> = want
        .lines()
        .filter_map(|l| {
            let t: Vec<&str> = l.split(' ').collect();
            (t.len() == 4).then(|| (t[..2].join(" "), t[2..].join(" ")))
        })
        .collect();
    let mut diffs = Vec::new();
    for (k, v) in &got {
        match want.get(k.as_str()) {
            Some(w) if w == v => {}
            Some(w) => diffs.push(format!("changed: {k}: {w} -> {v}")),
            None => diffs.push(format!("new: {k} {v}")),
        }
    }
    for k in want.keys() {
        if !got.contains_key(k) {
            diffs.push(format!("gone: {k}"));
        }
    }
    assert!(diffs.is_empty(), "outputs differ:\n{}", diffs.join("\n"));
}

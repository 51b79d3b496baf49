//! Opens the reports in headless Chromium and checks the screenshots are
//! not blank. CI installs `chromium` (Debian); without it this test fails
//! with a hint rather than skipping. The screenshots stay as
//! `target/report-screenshot.png` and `target/report-score-screenshot.png`,
//! the reports under `target/report-artefacts/`, for CI to keep.

mod common;
mod report_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{code, maskprep, path_str, stderr};
use report_common::{check_images, score_fixture};

/// `CHROMIUM`, else Debian's `/usr/bin/chromium`, else `chromium` on PATH.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(p);
    }
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("chromium"))
            .find(|p| p.exists())
    });
    found.unwrap_or_else(|| {
        panic!(
            "headless Chromium is needed to check the HTML report: install it \
             (`apt-get install -y chromium` on Debian) or set CHROMIUM=/path/to/chromium"
        )
    })
}

/// `target/report-artefacts/` (kept by CI).
fn artefacts() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.parent().unwrap_or(&tmp).join("report-artefacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Screenshots `page` at 1200x2000 into `png`.
fn screenshot(page: &Path, png: &Path) {
    let profile = tempfile::tempdir().unwrap();
    let _ = std::fs::remove_file(png);
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            &format!("--user-data-dir={}", profile.path().display()),
            &format!("--screenshot={}", png.display()),
            "--window-size=1200,2000",
            &url,
        ])
        .env("HOME", profile.path())
        .output()
        .expect("run chromium");
    assert!(
        png.exists(),
        "chromium wrote no screenshot (exit {:?}):\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The screenshot shows a page: many colours, a fair share of non-white
/// pixels, and the plots' blue somewhere.
fn assert_not_blank(png: &Path) {
    let img = image::open(png).expect("the screenshot decodes").to_rgb8();
    assert_eq!(img.dimensions(), (1200, 2000), "screenshot size");
    let mut colours = std::collections::BTreeSet::new();
    let mut ink = 0u64;
    let mut plot_blue = 0u64;
    for p in img.pixels() {
        colours.insert(p.0);
        if p.0.iter().any(|&c| c < 235) {
            ink += 1;
        }
        if p.0 == [49, 110, 170] {
            plot_blue += 1;
        }
    }
    let share = ink as f64 / (1200.0 * 2000.0);
    assert!(
        colours.len() > 200,
        "{}: only {} colours",
        png.display(),
        colours.len()
    );
    assert!(
        share > 0.03,
        "{}: only {:.1}% of pixels are not white",
        png.display(),
        share * 100.0
    );
    assert!(
        plot_blue > 500,
        "{}: no plot is visible ({plot_blue} bar pixels)",
        png.display()
    );
}

#[test]
fn reports_render_in_headless_chromium() {
    let dir = artefacts();
    let train = dir.join("train");
    let o = maskprep(&["report", "fixtures/plates", "-o", path_str(&train)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    check_images(&train);
    let shot = dir.parent().unwrap().join("report-screenshot.png");
    screenshot(&train.join("index.html"), &shot);
    assert_not_blank(&shot);

    let work = tempfile::tempdir().unwrap();
    let fixture = score_fixture(work.path());
    let score = dir.join("score");
    let o = maskprep(&[
        "report",
        "--score",
        path_str(&fixture.json),
        "-o",
        path_str(&score),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let shot = dir.parent().unwrap().join("report-score-screenshot.png");
    screenshot(&score.join("index.html"), &shot);
    assert_not_blank(&shot);
}

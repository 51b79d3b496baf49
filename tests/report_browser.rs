//! Opens the reports in headless Chromium and checks the screenshots are
//! not blank, and reads two generated datasets' reports as a user would: a
//! 21-class single-label index set and a 60-class multi-label palette set
//! (what the verdict recommends leads; the PyTorch snippet runs; nothing is
//! wider than the page at 1280 px; each warning is said once). CI installs
//! `chromium` (Debian); without it this test fails with a hint rather than
//! skipping. The screenshots stay as `target/report-screenshot*.png`, the
//! reports under `target/report-artefacts/`, for CI to keep.

mod common;
mod report_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{code, maskprep, path_str, python, stderr};
use report_common::{check_images, score_fixture};
use serde_json::Value;

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
    screenshot_at(page, png, (1200, 2000));
}

/// Screenshots `page` at `size` into `png`.
fn screenshot_at(page: &Path, png: &Path, size: (u32, u32)) {
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
            &format!("--window-size={},{}", size.0, size.1),
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
    assert_not_blank_at(png, (1200, 2000));
}

fn assert_not_blank_at(png: &Path, size: (u32, u32)) {
    let img = image::open(png).expect("the screenshot decodes").to_rgb8();
    assert_eq!(img.dimensions(), size, "screenshot size");
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
    let share = ink as f64 / (f64::from(size.0) * f64::from(size.1));
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

/// The 21 VOC class names: the classes of the single-label set.
const VOC: [&str; 21] = [
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
];

/// A class for pixel `i` of mask `m`, skewed toward low classes (so some
/// are rare), over `classes` classes.
fn skewed(i: u32, m: u32, classes: u32) -> u32 {
    let t = f64::from((i * 37 + m * 977) % 997) / 997.0;
    ((t * t * t * f64::from(classes)) as u32).min(classes - 1)
}

/// 21-class single-label index masks (8-bit gray, value i = class i, 255
/// ignored on each mask's border), 12 masks of 64x48; `tvmonitor` (20) has
/// no pixels.
fn single_label_21(dir: &Path) {
    let masks = dir.join("masks");
    std::fs::create_dir_all(&masks).unwrap();
    let names: Vec<String> = VOC.iter().map(|n| format!("\"{n}\"")).collect();
    let labels = format!(
        "kind = \"index\"\nclasses = [{}]\nignore = [255]\n",
        names.join(", ")
    );
    std::fs::write(dir.join("labels.toml"), labels).unwrap();
    for m in 0..12u32 {
        let img = image::GrayImage::from_fn(64, 48, |x, y| {
            if x == 0 || y == 0 || x == 63 || y == 47 {
                image::Luma([255])
            } else {
                image::Luma([skewed(y * 64 + x, m, 20) as u8])
            }
        });
        img.save(masks.join(format!("{m:04}.png"))).unwrap();
    }
}

/// 60-class multi-label palette masks, 12 masks of 96x64: a colour per
/// class, a colour per even pair (2k, 2k+1) meaning both, black = no class,
/// white row 0 ignored, one undeclared colour in mask 3; class 59 has no
/// pixels.
fn multi_label_60(dir: &Path) {
    let masks = dir.join("masks");
    std::fs::create_dir_all(&masks).unwrap();
    let words = [
        "road",
        "sidewalk",
        "building",
        "wall",
        "fence",
        "pole",
        "traffic_light",
        "traffic_sign",
        "vegetation",
        "terrain",
        "sky",
        "person",
        "rider",
        "car",
        "truck",
        "bus",
        "train",
        "motorcycle",
        "bicycle",
        "animal",
    ];
    let names: Vec<String> = (0..60)
        .map(|i| format!("{}_{}", words[i % 20], ["near", "middle", "far"][i / 20]))
        .collect();
    let single = |i: u32| [10 + 4 * i as u8, 60, 90];
    let pair = |k: u32| [10 + 8 * k as u8, 180, 30];
    let hex = |c: [u8; 3]| format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2]);
    let mut toml = format!(
        "kind = \"palette\"\nclasses = [{}]\nignore = [\"#ffffff\"]\n\n[colors]\n\"#000000\" = []\n",
        names
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for i in 0..60u32 {
        toml.push_str(&format!(
            "\"{}\" = [\"{}\"]\n",
            hex(single(i)),
            names[i as usize]
        ));
    }
    for k in 0..30u32 {
        toml.push_str(&format!(
            "\"{}\" = [\"{}\", \"{}\"]\n",
            hex(pair(k)),
            names[2 * k as usize],
            names[2 * k as usize + 1]
        ));
    }
    std::fs::write(dir.join("labels.toml"), toml).unwrap();
    for m in 0..12u32 {
        let img = image::RgbImage::from_fn(96, 64, |x, y| {
            let c = skewed(y * 96 + x, m, 59);
            let rgb = if y == 0 {
                [255, 255, 255]
            } else if m == 3 && y == 1 && x < 5 {
                [1, 2, 3]
            } else if x % 13 == 0 {
                [0, 0, 0]
            } else if (x + y) % 5 == 0 && c < 58 {
                pair(c / 2)
            } else {
                single(c)
            };
            image::Rgb(rgb)
        });
        img.save(masks.join(format!("{m:04}.png"))).unwrap();
    }
}

/// Undoes the report's HTML escaping.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The text between `start` (after it) and the next `end`, from `at` on.
fn between<'a>(html: &'a str, at: &str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(at)
        .unwrap_or_else(|| panic!("no `{at}` in the page"));
    let rest = &html[from..];
    let a = rest
        .find(start)
        .unwrap_or_else(|| panic!("no `{start}` after `{at}`"))
        + start.len();
    let b = rest[a..]
        .find(end)
        .unwrap_or_else(|| panic!("no `{end}` after `{start}`"));
    &rest[a..a + b]
}

/// The column heads of the loss-weights table.
fn weights_head(html: &str) -> Vec<String> {
    let head = between(html, "<h2 id=\"weights\"", "<table>\n<tr>", "</tr>");
    head.split("<th>")
        .skip(1)
        .map(|h| unescape(h.trim_end_matches("</th>")))
        .collect()
}

/// The PyTorch snippet as a reader copies it from the page.
fn snippet(html: &str) -> String {
    unescape(between(
        html,
        "<h3>PyTorch</h3>",
        "<pre><code>",
        "</code></pre>",
    ))
}

/// The items of the page's warnings box, as markup.
fn warnings(html: &str) -> Vec<String> {
    if !html.contains("<strong>Warnings</strong>") {
        return Vec::new();
    }
    between(html, "<strong>Warnings</strong>", "<ul>", "</ul>")
        .split("<li>")
        .skip(1)
        .map(|li| li.trim().trim_end_matches("</li>").to_string())
        .collect()
}

/// Widths of the page as laid out in Chromium at `width` px: the document,
/// the viewport, the tables reaching past the page's column, and the code
/// blocks whose text is clipped (wider than their box).
fn measure(dir: &Path, width: u32) -> Value {
    const SCRIPT: &str = "<script>(function(){\
        var main=document.querySelector('main').getBoundingClientRect();\
        var wide=[].slice.call(document.querySelectorAll('table'))\
          .filter(function(t){return t.getBoundingClientRect().right>main.right+0.5;})\
          .map(function(t){return t.rows[0].innerText.slice(0,80);});\
        var clipped=[].slice.call(document.querySelectorAll('pre'))\
          .filter(function(p){return p.scrollWidth>p.clientWidth;}).length;\
        document.body.setAttribute('data-measure',JSON.stringify({\
          document:document.documentElement.scrollWidth,viewport:window.innerWidth,\
          wide:wide,clipped:clipped}));})();</script>";
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    let page = dir.join("measure.html");
    std::fs::write(&page, html.replace("</body>", &format!("{SCRIPT}</body>"))).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            &format!("--user-data-dir={}", profile.path().display()),
            &format!("--window-size={width},1000"),
            "--dump-dom",
            &url,
        ])
        .env("HOME", profile.path())
        .output()
        .expect("run chromium");
    let _ = std::fs::remove_file(&page);
    let dom = String::from_utf8_lossy(&out.stdout);
    let attr = between(&dom, "data-measure=", "\"", "\"");
    serde_json::from_str(&unescape(attr)).unwrap_or_else(|e| panic!("{e}: {attr}"))
}

/// What every generated report must show, whatever its verdict.
fn check_reader_report(dir: &Path, html: &str, classes: usize) {
    // 2: the snippet parses, and its loading part runs as pasted.
    let code = snippet(html);
    assert!(!code.contains("channel order of the masks"), "{code}");
    let file = dir.parent().unwrap().join(format!(
        "{}-snippet.py",
        dir.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&file, &code).unwrap();
    let out = Command::new(python())
        .arg(common::root().join("tests/python/check_snippet.py"))
        .args([path_str(dir), path_str(&file)])
        .output()
        .expect("run python");
    let said = format!("{}{}", stdout_of(&out), stderr_of(&out));
    assert!(
        out.status.success(),
        "the snippet does not run:\n{said}\n{code}"
    );
    assert!(said.contains("snippet ok"), "{said}");
    // 5: nothing is wider than the page at 1280 px; code wraps.
    let m = measure(dir, 1280);
    assert!(
        m["document"].as_u64().unwrap() <= m["viewport"].as_u64().unwrap(),
        "the page is wider than the window: {m}"
    );
    assert_eq!(
        m["wide"],
        serde_json::json!([]),
        "tables wider than the page: {m}"
    );
    assert_eq!(m["clipped"], 0, "code blocks clipped: {m}");
    // 6: each warning once.
    let warns = warnings(html);
    assert!(!warns.is_empty(), "these sets have warnings");
    for w in &warns {
        assert_eq!(
            html.matches(w.as_str()).count(),
            1,
            "said more than once: {w}"
        );
    }
    // 4: effective-number's beta is stated beside the table and spreads the classes.
    let note = between(html, "<h2 id=\"weights\"", "</table>", "<details>");
    assert!(note.contains("beta = 1 - 1/N"), "{note}");
    let head = weights_head(html);
    assert!(
        head.iter().any(|h| h == "effective-number (β = 1 − 1/N)"),
        "{head:?}"
    );
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("weights.json")).unwrap()).unwrap();
    let eff = doc["schemes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "effective-number")
        .unwrap();
    let v: Vec<f64> = eff["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .filter(|&x| x != 1.0)
        .collect();
    let (lo, hi) = v
        .iter()
        .fold((f64::MAX, 0f64), |(a, b), &x| (a.min(x), b.max(x)));
    assert!(hi / lo > 10.0, "effective-number barely spreads: {v:?}");
    assert_eq!(doc["classes"].as_array().unwrap().len(), classes);
}

fn stdout_of(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr_of(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_21_class_single_label_report_reads_well_at_1280px() {
    let dir = artefacts();
    let work = tempfile::tempdir().unwrap();
    single_label_21(work.path());
    let report = dir.join("single-label-21");
    let o = maskprep(&["report", path_str(work.path()), "-o", path_str(&report)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    check_images(&report);
    let html = std::fs::read_to_string(report.join("index.html")).unwrap();
    // 1: CrossEntropyLoss's weight (the chosen scheme) leads, pos_weight last.
    let head = weights_head(&html);
    assert_eq!(head[4], "*balanced", "{head:?}");
    assert_eq!(head.last().unwrap(), "pos_weight", "{head:?}");
    // 3: index masks with 255 ignored go to CrossEntropyLoss as they are.
    let code = snippet(&html);
    assert!(
        code.contains("CrossEntropyLoss(weight=w[\"weight\"], ignore_index=255)"),
        "{code}"
    );
    assert!(!html.contains("-100"), "no rewrite to -100 for index masks");
    // 5: no co-occurrence heatmap or table of zeros for single-label data.
    assert!(!html.contains("cooccurrence.png"));
    assert!(
        between(&html, "<h2 id=\"cooccurrence\"", "<p>", "</p>")
            .contains("No pixel carries two classes")
    );
    // 6: the class with no pixels shows the pos_weight written (1, marked), once warned.
    assert!(
        html.contains("1.0000†"),
        "the rule-set pos_weight is marked"
    );
    assert!(!html.contains("0.0000<"), "no pos_weight of 0");
    let warns = warnings(&html);
    assert_eq!(
        warns.iter().filter(|w| w.contains("has no pixels")).count(),
        1,
        "{warns:?}"
    );
    check_reader_report(&report, &html, 21);
    let shot = dir
        .parent()
        .unwrap()
        .join("report-screenshot-single-label-21.png");
    screenshot_at(&report.join("index.html"), &shot, (1280, 2400));
    assert_not_blank_at(&shot, (1280, 2400));
}

#[test]
fn a_60_class_multi_label_report_reads_well_at_1280px() {
    let dir = artefacts();
    let work = tempfile::tempdir().unwrap();
    multi_label_60(work.path());
    let report = dir.join("multi-label-60");
    let o = maskprep(&["report", path_str(work.path()), "-o", path_str(&report)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    check_images(&report);
    let html = std::fs::read_to_string(report.join("index.html")).unwrap();
    // 1: pos_weight (BCEWithLogitsLoss) leads.
    let head = weights_head(&html);
    assert_eq!(head[4], "pos_weight", "{head:?}");
    assert_eq!(head[5], "*balanced", "{head:?}");
    // 3: ignored pixels are masked out of BCE with a valid mask.
    let code = snippet(&html);
    assert!(code.contains("reduction=\"none\""), "{code}");
    assert!(code.contains("* valid"), "{code}");
    // 5: top pairs as a table, a heatmap by index drawn at its own size
    // (legible, not shrunk), no 60x60 table.
    let section = between(&html, "<h2 id=\"cooccurrence\"", "</h2>", "<h2");
    assert!(section.contains("<th>pixels with both</th>"), "{section}");
    let img = between(section, "src=\"cooccurrence.png\"", "width=\"", "\"");
    assert!(img.parse::<u32>().unwrap() <= 1124, "heatmap {img} px wide");
    assert_eq!(
        section.matches("<table>").count(),
        1,
        "only the pairs table"
    );
    check_reader_report(&report, &html, 60);
    let shot = dir
        .parent()
        .unwrap()
        .join("report-screenshot-multi-label-60.png");
    screenshot_at(&report.join("index.html"), &shot, (1280, 2400));
    assert_not_blank_at(&shot, (1280, 2400));
}

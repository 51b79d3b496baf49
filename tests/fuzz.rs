//! Mutation fuzzing of what maskprep reads from disk: PNG masks, label
//! maps (TOML, `dataset_meta.json`, `labelmap.txt`, `label_colors.txt`),
//! stats JSON, and score documents of partitions merged (with sweeps:
//! parts with random shapes, names and huge counts). Seeds are the fixtures; each case mutates one (bit
//! flips, boundary bytes, splices, truncation, numbers and names swapped for
//! hostile ones; PNG chunk CRCs repaired so mutations reach the decoder).
//! The readers must return `Ok` or `Err`, never panic. Deterministic (seeded
//! xorshift); `MASKPREP_FUZZ_CASES` sets the cases per target (default
//! 3000), `MASKPREP_FUZZ_SEED` the seed.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use maskprep::decode::{self, Scratch};
use maskprep::labels::{LabelMap, presets};
use maskprep::stats::merge::{merge_docs, parse_stats};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn cases() -> usize {
    std::env::var("MASKPREP_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

fn seed() -> u64 {
    std::env::var("MASKPREP_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x9E37_79B9_7F4A_7C15)
}

const HOSTILE_TEXT: &[&str] = &[
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999",
    "-1",
    "0",
    "1e309",
    "NaN",
    "\"\"",
    "[]",
    "{}",
    "null",
    "\"1/18446744073709551615\"",
    "\"#zzzzzz\"",
    "\u{0}",
    "\u{202e}",
];

/// One random edit of `data`.
fn mutate(rng: &mut Rng, data: &mut Vec<u8>, text: bool) {
    let n = data.len();
    match rng.below(if text { 9 } else { 7 }) {
        0 if n > 0 => {
            let i = rng.below(n);
            data[i] ^= 1 << rng.below(8);
        }
        1 if n > 0 => {
            let i = rng.below(n);
            data[i] = [0, 1, 0x7f, 0x80, 0xff][rng.below(5)];
        }
        2 => {
            let i = rng.below(n + 1);
            let k = 1 + rng.below(16);
            let bytes: Vec<u8> = (0..k).map(|_| rng.next() as u8).collect();
            data.splice(i..i, bytes);
        }
        3 if n > 0 => {
            let i = rng.below(n);
            let k = 1 + rng.below((n - i).min(64));
            data.drain(i..i + k);
        }
        4 if n > 0 => {
            let i = rng.below(n);
            let k = 1 + rng.below((n - i).min(64));
            let copy = data[i..i + k].to_vec();
            let j = rng.below(n + 1);
            data.splice(j..j, copy);
        }
        5 => data.truncate(rng.below(n + 1)),
        6 if n >= 4 => {
            // A 32-bit big-endian field set to a boundary value.
            let i = rng.below(n - 3);
            let v: u32 = [0, 1, 0x7fff_ffff, 0xffff_ffff, 16385, 65536][rng.below(6)];
            data[i..i + 4].copy_from_slice(&v.to_be_bytes());
        }
        7 => {
            // A number or token replaced by a hostile one.
            let s = String::from_utf8_lossy(data).into_owned();
            let starts: Vec<usize> = s
                .char_indices()
                .filter(|(_, c)| c.is_ascii_digit() || *c == '"')
                .map(|(i, _)| i)
                .collect();
            if let Some(&i) = starts.get(rng.below(starts.len())) {
                let end = s[i + 1..]
                    .find(|c: char| !c.is_ascii_alphanumeric() && c != '/' && c != '#')
                    .map_or(s.len(), |e| i + 1 + e);
                let end = if s[i..].starts_with('"') {
                    s[i + 1..].find('"').map_or(end, |e| i + 2 + e)
                } else {
                    end
                };
                let rep = HOSTILE_TEXT[rng.below(HOSTILE_TEXT.len())];
                *data = format!("{}{rep}{}", &s[..i], &s[end.min(s.len())..]).into_bytes();
            }
        }
        8 => {
            // A string grown past every name limit.
            let s = String::from_utf8_lossy(data).into_owned();
            // Quotes that open a value (after `:`, `=`, `[` or `,`), so the
            // result still parses and reaches the code behind the parser.
            let quotes: Vec<usize> = s
                .match_indices('"')
                .map(|(i, _)| i)
                .filter(|&i| s[..i].trim_end().ends_with([':', '=', '[', ',']))
                .collect();
            if let Some(&i) = quotes.get(rng.below(quotes.len())) {
                let long = "w".repeat(1 + rng.below(70_000));
                *data = format!("{}\"{long}{}", &s[..i], &s[i + 1..]).into_bytes();
            }
        }
        _ => {}
    }
}

/// Recomputes every chunk CRC, so mutations get past the CRC check.
fn fix_crcs(png: &mut [u8]) {
    let mut i = 8;
    while i + 12 <= png.len() {
        let len = u32::from_be_bytes([png[i], png[i + 1], png[i + 2], png[i + 3]]) as usize;
        let Some(end) = (i + 8).checked_add(len) else {
            return;
        };
        if end + 4 > png.len() {
            return;
        }
        let crc = crc32(&png[i + 4..end]);
        png[end..end + 4].copy_from_slice(&crc.to_be_bytes());
        i = end + 4;
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 == 1 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn pngs(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            pngs(&p, out);
        } else if p.extension().is_some_and(|x| x == "png") {
            out.push(p);
        }
    }
}

/// Runs `check` on `cases()` mutations of the seeds; a panic names the
/// case and leaves its input in the temp dir.
fn fuzz(name: &str, seeds: &[Vec<u8>], text: bool, png: bool, check: impl Fn(&[u8])) {
    let mut rng = Rng(seed() ^ name.len() as u64);
    let keep = tempfile::Builder::new()
        .prefix("maskprep-fuzz-")
        .tempdir()
        .unwrap()
        .keep();
    let n = cases();
    let start = std::time::Instant::now();
    for case in 0..n {
        let mut data = seeds[rng.below(seeds.len())].clone();
        for _ in 0..1 + rng.below(4) {
            mutate(&mut rng, &mut data, text);
        }
        if png && rng.below(5) != 0 {
            fix_crcs(&mut data);
        }
        if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
            let path = keep.join(format!("{name}-{case}"));
            std::fs::write(&path, &data).unwrap();
            panic!(
                "{name}: case {case} panicked; input in `{}`",
                path.display()
            );
        }
    }
    let _ = std::fs::remove_dir_all(&keep);
    eprintln!("{name}: {n} cases in {:?}", start.elapsed());
}

#[test]
fn png_decoding_never_panics() {
    let mut files = Vec::new();
    pngs(&common::root().join("fixtures"), &mut files);
    files.sort();
    let seeds: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    fuzz("png", &seeds, false, true, |bytes| {
        let mut scratch = Scratch::default();
        let _ = decode::decode_hist(bytes, &mut scratch);
        let mut buf = Vec::new();
        if let Ok(f) = decode::decode_frame(bytes, &mut buf) {
            let mut codes = Vec::new();
            f.codes_into(&mut codes);
            let mut n = 0u64;
            f.runs(|_, run| n += run);
            assert_eq!(n, u64::from(f.width) * u64::from(f.height));
        }
    });
}

#[test]
fn label_map_reading_never_panics() {
    let root = common::root();
    let toml: Vec<Vec<u8>> = ["fixtures/plates/labels.toml", "fixtures/palette/labels.toml"]
        .iter()
        .map(|p| std::fs::read(root.join(p)).unwrap())
        .chain([
            b"kind = \"index\"\nclasses = [\"a\", \"b\"]\nignore = [255]\n[values]\n\"0\" = \"a\"\n\"7\" = \"b\"\n".to_vec(),
        ])
        .collect();
    let meta = br#"{"label_map": {"0": "background", "1": "cat", "2": "dog"}, "segmentation_colors": [[0,0,0],[128,0,0],[0,128,0]], "ignore_index": 255}"#.to_vec();
    let voc = b"# name:color_rgb:parts:actions\nbackground:0,0,0::\ncat:64,0,0::\ndog:64,0,128::\n"
        .to_vec();
    let colors = b"0 0 0 background\n128 64 128 road\n0 0 142 car\n".to_vec();
    let mut seeds = toml.clone();
    seeds.extend([meta.clone(), voc.clone(), colors.clone()]);
    fuzz("labels", &seeds, true, false, |bytes| {
        let text = String::from_utf8_lossy(bytes);
        let specs = [
            presets::parse_toml(&text, "fuzz.toml"),
            presets::dataset_meta(&text, "dataset_meta.json"),
            presets::voc_labelmap(&text, "labelmap.txt"),
            presets::label_colors(&text, "label_colors.txt"),
        ];
        for spec in specs.into_iter().flatten() {
            if let Ok(map) = LabelMap::compile(spec, "fuzz") {
                let _ = map.to_toml();
                for format in [
                    decode::MaskFormat::Gray8,
                    decode::MaskFormat::Gray16,
                    decode::MaskFormat::Rgb,
                    decode::MaskFormat::Rgba,
                ] {
                    for code in [0, 1, 255, 65535, 0x00ff_00ff, u32::MAX] {
                        let _ = map.resolve(code, format);
                    }
                }
            }
        }
    });
}

#[test]
fn stats_json_reading_never_panics() {
    let tmp = tempfile::tempdir().unwrap();
    let mut seeds = Vec::new();
    for (fx, part) in [
        ("plates", "1/2"),
        ("palette", "1/1"),
        ("voc", "2/3"),
        ("index/p", "1/1"),
    ] {
        let p = tmp.path().join(format!("{}.json", seeds.len()));
        let o = common::maskprep(&[
            "-q",
            "stats",
            &format!("fixtures/{fx}"),
            "--partition",
            part,
            "--json",
            "-o",
            common::path_str(&p),
        ]);
        assert!(o.status.success(), "{}", common::stderr(&o));
        seeds.push(std::fs::read(&p).unwrap());
    }
    let path = Path::new("fuzz.json");
    fuzz("stats-json", &seeds, true, false, |bytes| {
        let text = String::from_utf8_lossy(bytes);
        if let Ok(doc) = parse_stats(&text, path) {
            let _ = maskprep::stats::doc::render_table(&doc);
            let docs = vec![(path.to_path_buf(), doc.clone()), (path.to_path_buf(), doc)];
            if let Ok(m) = merge_docs(&docs[..1]) {
                let _ = maskprep::stats::doc::render_table(&m);
            }
            let _ = merge_docs(&docs);
        }
    });
}

/// Logits `[3,48,64]` for one plates mask: noise from `rng`, so sweeps fill
/// their bins.
fn noise_npy(rng: &mut Rng) -> Vec<u8> {
    let (c, h, w) = (3usize, 48usize, 64usize);
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({c}, {h}, {w}), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for _ in 0..c * h * w {
        let v = (rng.below(2001) as f32 - 1000.0) / 250.0;
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Numbers that break sums and shapes: boundaries of 64 bits, zero.
const HOSTILE_COUNTS: &[u64] = &[
    0,
    1,
    u64::MAX,
    u64::MAX - 1,
    1 << 63,
    (1 << 63) + 1,
    (1 << 63) + 5,
    1 << 32,
    1 << 62,
];

/// One random structural edit of a JSON document: a number made hostile, an
/// array shortened, grown, reordered or emptied, a name changed, a key
/// dropped.
fn mutate_value(rng: &mut Rng, v: &mut serde_json::Value) {
    use serde_json::Value;
    fn count(v: &Value) -> usize {
        1 + match v {
            Value::Array(a) => a.iter().map(count).sum(),
            Value::Object(o) => o.values().map(count).sum(),
            _ => 0,
        }
    }
    /// Edits the `n`-th node (depth first); true once done.
    fn edit_nth(v: &mut Value, n: &mut usize, rng: &mut Rng) -> bool {
        if *n > 0 {
            *n -= 1;
            return match v {
                Value::Array(a) => a.iter_mut().any(|x| edit_nth(x, n, rng)),
                Value::Object(o) => o.values_mut().any(|x| edit_nth(x, n, rng)),
                _ => false,
            };
        }
        match v {
            Value::Number(_) => {
                *v = match rng.below(4) {
                    0 => HOSTILE_COUNTS[rng.below(HOSTILE_COUNTS.len())].into(),
                    1 => (rng.next() >> rng.below(64)).into(),
                    2 => serde_json::json!(-1),
                    _ => serde_json::json!(1e300),
                }
            }
            Value::String(s) => {
                *s = ["x", "qr_code", "plate", "scratch", "", "1/3", "3/3", "inf"][rng.below(8)]
                    .to_string();
            }
            Value::Array(a) if !a.is_empty() => match rng.below(5) {
                0 => {
                    a.pop();
                }
                1 => {
                    let i = rng.below(a.len());
                    let x = a[i].clone();
                    a.insert(rng.below(a.len() + 1), x);
                }
                2 => {
                    let (i, j) = (rng.below(a.len()), rng.below(a.len()));
                    a.swap(i, j);
                }
                3 => a.clear(),
                _ => a.truncate(rng.below(a.len())),
            },
            Value::Object(o) if !o.is_empty() => {
                let key = o
                    .keys()
                    .nth(rng.below(o.len()))
                    .cloned()
                    .unwrap_or_default();
                o.remove(&key);
            }
            _ => {}
        }
        true
    }
    let mut n = rng.below(count(v));
    edit_nth(v, &mut n, rng);
}

/// `score --sweep --partition I/3` parts of the plates fixture against
/// noise logits, and `--partition I/2` parts of its PNG predictions.
fn score_parts(dir: &Path) -> Vec<Vec<serde_json::Value>> {
    let mut rng = Rng(seed());
    let pred = dir.join("logits");
    std::fs::create_dir_all(&pred).unwrap();
    for k in 1..=8 {
        std::fs::write(pred.join(format!("{k:04}.npy")), noise_npy(&mut rng)).unwrap();
    }
    let mut runs = Vec::new();
    for (p, n, extra) in [
        (common::path_str(&pred), 3, &["--sweep-bins", "4"][..]),
        ("fixtures/plates-pred", 2, &[][..]),
    ] {
        let mut parts = Vec::new();
        for i in 1..=n {
            let out = dir.join(format!("part-{n}-{i}.json"));
            let part = format!("{i}/{n}");
            let mut args = vec![
                "-q",
                "score",
                "--truth",
                "fixtures/plates",
                "--pred",
                p,
                "--partition",
                &part,
                "--json",
                "-o",
                common::path_str(&out),
            ];
            args.extend_from_slice(extra);
            let o = common::maskprep(&args);
            assert!(o.status.code().unwrap_or(2) <= 1, "{}", common::stderr(&o));
            parts.push(serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap());
        }
        runs.push(parts);
    }
    runs
}

/// Score documents of partitions (with and without a sweep) with hostile
/// shapes, names and counts: reading and merging them (and rendering what
/// merges) returns `Ok` or `Err`, never panics. Each case edits one part of
/// a run (structurally, sometimes also as text) and merges it with the
/// others in a random order; a panic leaves the parts in the temp dir.
#[test]
fn score_and_sweep_merging_never_panics() {
    use maskprep::score::doc::{ScoreDoc, parse_score, render_table};
    use maskprep::score::merge::merge;
    let tmp = tempfile::tempdir().unwrap();
    let runs = score_parts(tmp.path());
    let named = |docs: Vec<ScoreDoc>| -> Vec<(PathBuf, ScoreDoc)> {
        docs.into_iter()
            .enumerate()
            .map(|(i, d)| (PathBuf::from(format!("part{i}.json")), d))
            .collect()
    };
    // The untouched parts merge: the fuzzing starts from working inputs.
    let parsed: Vec<Vec<ScoreDoc>> = runs
        .iter()
        .map(|r| r.iter().map(|v| parse_score(v.clone()).unwrap()).collect())
        .collect();
    for docs in &parsed {
        merge(&named(docs.clone())).expect("untouched parts merge");
    }
    let keep = tempfile::Builder::new()
        .prefix("maskprep-fuzz-")
        .tempdir()
        .unwrap()
        .keep();
    let mut rng = Rng(seed() ^ 0x5c0e);
    let n = cases();
    let (read, merged) = (std::cell::Cell::new(0u64), std::cell::Cell::new(0u64));
    let start = std::time::Instant::now();
    for case in 0..n {
        let r = rng.below(runs.len());
        let k = rng.below(runs[r].len());
        let mut v = runs[r][k].clone();
        for _ in 0..1 + rng.below(4) {
            mutate_value(&mut rng, &mut v);
        }
        let mut text = serde_json::to_vec(&v).unwrap();
        if rng.below(8) == 0 {
            mutate(&mut rng, &mut text, true);
        }
        let mut order: Vec<usize> = (0..runs[r].len()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        if rng.below(4) == 0 {
            order.truncate(1 + rng.below(order.len()));
        }
        let run = || {
            let Some(edited) = serde_json::from_slice(&text)
                .ok()
                .and_then(|v| parse_score(v).ok())
            else {
                return;
            };
            read.set(read.get() + 1);
            let mut docs = parsed[r].clone();
            docs[k] = edited;
            let docs: Vec<ScoreDoc> = order.iter().map(|&i| docs[i].clone()).collect();
            if let Ok(m) = merge(&named(docs)) {
                merged.set(merged.get() + 1);
                let _ = render_table(&m);
                let _ = serde_json::to_string(&m);
                if let Some(sw) = &m.sweep {
                    let _ = sw.thresholds_json(m.prediction.kind, 0.0);
                    let _ = sw.thresholds_safetensors(m.prediction.kind, 0.0);
                }
            }
        };
        if catch_unwind(AssertUnwindSafe(run)).is_err() {
            let path = keep.join(format!("score-merge-{case}-part{k}.json"));
            std::fs::write(&path, &text).unwrap();
            panic!(
                "score-merge: case {case} panicked (run {r}, order {order:?}); the edited part \
                 is `{}`",
                path.display()
            );
        }
    }
    let _ = std::fs::remove_dir_all(&keep);
    eprintln!(
        "score-merge: {n} cases in {:?}: {} edited parts read back, {} merges done",
        start.elapsed(),
        read.get(),
        merged.get()
    );
}

//! Mutation fuzzing of what maskprep reads from disk: PNG masks, label
//! maps (TOML, `dataset_meta.json`, `labelmap.txt`, `label_colors.txt`)
//! and stats JSON. Seeds are the fixtures; each case mutates one (bit
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

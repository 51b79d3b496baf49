//! `cargo bench --bench coco`: `stats` on a COCO JSON export against
//! pycocotools' `annToMask` over the same file.
//!
//! Generates (once, under `target/bench-data/`) a COCO file of
//! `MASKPREP_BENCH_N` images (default 2000) of 1024x1024, each with 30
//! polygons of 16 to 48 points in 5 categories. Times, median of
//! `MASKPREP_BENCH_RUNS` (default 3):
//! - maskprep: `maskprep stats FILE --json` (the release binary, a fresh
//!   process each run: JSON parsing included), with its peak memory;
//! - pycocotools: `tests/python/coco_bench.py FILE 2`: per image, the union
//!   per category of `annToMask` over its annotations, in 2 worker
//!   processes (skipped, with a note, without the test venv).
//!
//! `MASKPREP_BENCH_COCO_MB=300` instead writes a file of about that many
//! megabytes (more images, same shapes) and reports maskprep's peak memory
//! against the file's size (the goal: at most 2x the file plus 100 MiB).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const SIDE: u32 = 1024;
const OBJECTS: usize = 30;
const CATEGORIES: usize = 5;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A small deterministic generator (xorshift), so the file is the same on
/// every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Writes the COCO file image by image (never whole in memory).
fn generate(path: &Path, images: usize) {
    if path.exists() {
        return;
    }
    std::fs::create_dir_all(path.parent().expect("parent")).expect("bench dir");
    let tmp = path.with_extension("tmp");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp).expect("create"));
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    write!(f, "{{\"info\":{{}},\"images\":[").expect("write");
    for i in 0..images {
        let sep = if i == 0 { "" } else { "," };
        write!(
            f,
            "{sep}{{\"id\":{},\"file_name\":\"{:06}.jpg\",\"width\":{SIDE},\"height\":{SIDE}}}",
            i + 1,
            i + 1
        )
        .expect("write");
    }
    write!(f, "],\"annotations\":[").expect("write");
    let mut id = 0u64;
    for i in 0..images {
        for _ in 0..OBJECTS {
            id += 1;
            let sep = if id == 1 { "" } else { "," };
            let cat = 1 + rng.next() % CATEGORIES as u64;
            let (cx, cy) = (rng.unit() * f64::from(SIDE), rng.unit() * f64::from(SIDE));
            let r = 10.0 + rng.unit() * 150.0;
            let n = 16 + (rng.next() % 33) as usize;
            let mut pts = String::new();
            for k in 0..n {
                let a = k as f64 / n as f64 * std::f64::consts::TAU;
                let rr = r * (0.6 + 0.4 * rng.unit());
                let x = (cx + rr * a.cos()).clamp(0.0, f64::from(SIDE));
                let y = (cy + rr * a.sin()).clamp(0.0, f64::from(SIDE));
                if k > 0 {
                    pts.push(',');
                }
                pts.push_str(&format!("{x:.2},{y:.2}"));
            }
            write!(
                f,
                "{sep}{{\"id\":{id},\"image_id\":{},\"category_id\":{cat},\"iscrowd\":0,\
                 \"area\":0,\"bbox\":[0,0,1,1],\"segmentation\":[[{pts}]]}}",
                i + 1
            )
            .expect("write");
        }
    }
    write!(f, "],\"categories\":[").expect("write");
    for c in 1..=CATEGORIES {
        let sep = if c == 1 { "" } else { "," };
        write!(f, "{sep}{{\"id\":{c},\"name\":\"class{c}\"}}").expect("write");
    }
    write!(f, "]}}").expect("write");
    f.into_inner().expect("flush").sync_all().expect("sync");
    std::fs::rename(&tmp, path).expect("rename");
}

/// Runs a command; returns (wall seconds, peak resident KiB of that process).
#[expect(
    clippy::zombie_processes,
    reason = "the child is reaped by `wait4`, which also gives its peak memory"
)]
fn measure(cmd: &mut Command) -> (f64, i64) {
    let t = Instant::now();
    let child = cmd.spawn().expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet waited for; both pointers are valid.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(rc, pid, "wait4");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{cmd:?} failed"
    );
    (secs, usage.ru_maxrss)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn stats(file: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_maskprep"));
    cmd.args(["stats", file.to_str().expect("utf-8"), "--json", "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

fn python() -> Option<PathBuf> {
    std::env::var_os("MASKPREP_PYTHON")
        .map(PathBuf::from)
        .or_else(|| Some(root().join("target/venv/bin/python")).filter(|p| p.exists()))
}

fn main() {
    let runs = env("MASKPREP_BENCH_RUNS", 3);
    let data = root().join("target/bench-data");
    if let Some(mb) = std::env::var("MASKPREP_BENCH_COCO_MB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        // About 24 KB of JSON per image with these shapes.
        let images = mb * 1_000_000 / 24_000;
        let file = data.join(format!("coco-mem-{images}/instances_bench.json"));
        generate(&file, images);
        let bytes = std::fs::metadata(&file).expect("size").len();
        let (secs, kib) = measure(&mut stats(&file));
        let goal = 2.0 * bytes as f64 / 1048576.0 + 100.0;
        println!(
            "coco memory: {images} images, JSON {:.0} MB: maskprep stats {secs:.1} s, peak \
             {:.0} MiB (goal <= {goal:.0} MiB: 2x the file + 100 MiB)",
            bytes as f64 / 1e6,
            kib as f64 / 1024.0
        );
        return;
    }
    let n = env("MASKPREP_BENCH_N", 2000);
    let file = data.join(format!("coco-{n}x{SIDE}/instances_bench.json"));
    generate(&file, n);
    let bytes = std::fs::metadata(&file).expect("size").len();
    let mut ours = Vec::new();
    let mut peak = 0;
    for _ in 0..runs {
        let (s, kib) = measure(&mut stats(&file));
        ours.push(s);
        peak = peak.max(kib);
    }
    let ours = median(ours);
    println!(
        "coco: {n} images {SIDE}x{SIDE}, {OBJECTS} polygons each, JSON {:.0} MB",
        bytes as f64 / 1e6
    );
    println!(
        "maskprep stats: {ours:.2} s (median of {runs}), peak {:.0} MiB",
        peak as f64 / 1024.0
    );
    let Some(py) = python() else {
        println!("pycocotools: skipped (no target/venv; run `bash .ci/run` once)");
        return;
    };
    let mut theirs = Vec::new();
    for _ in 0..runs.min(2) {
        let mut cmd = Command::new(&py);
        cmd.arg(root().join("tests/python/coco_bench.py"))
            .arg(&file)
            .arg("2")
            .stdout(Stdio::null());
        theirs.push(measure(&mut cmd).0);
    }
    let theirs = median(theirs);
    println!(
        "pycocotools annToMask, 2 processes: {theirs:.2} s; maskprep is {:.1}x faster",
        theirs / ours
    );
}

//! `cargo bench --features store --bench store`: `stats` over masks in an
//! S3 bucket against the same masks in a local folder, and peak memory as
//! the bucket grows.
//!
//! Starts a loopback S3 server (`moto_server` from the test venv,
//! `target/venv`, made by `.ci/run`), generates (once, under
//! `target/bench-data/`) `MASKPREP_BENCH_N` (default 2000) 256x256 index
//! masks, uploads them, then times the release binary, page cache warm:
//! - folder: `maskprep stats DIR --json`;
//! - bucket: `maskprep stats s3://bench/masks --json` (default `--fetch`).
//!
//! Prints the median of `MASKPREP_BENCH_RUNS` (default 3) runs and the
//! ratio, then fills a second prefix with `MASKPREP_BENCH_BIG` (default
//! 20000; 0 skips it) objects and prints the peak resident memory of one
//! `stats` over each prefix. Loopback has no network latency: the ratio is
//! the cost of the HTTP client and the server, not of a real network.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const SIDE: u32 = 256;

struct Server {
    child: Child,
    endpoint: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> PathBuf {
    std::env::var_os("MASKPREP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/venv/bin/python"))
}

fn start() -> Server {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let bin = python().parent().expect("venv").join("moto_server");
    let child = Command::new(&bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start `{}` ({e}); run `bash .ci/run` first",
                bin.display()
            )
        });
    let server = Server {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(60), "moto did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

fn aws(cmd: &mut Command, endpoint: &str) {
    cmd.env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ALLOW_HTTP", "true");
}

fn s3(server: &Server, args: &[&str]) {
    let mut cmd = Command::new(python());
    cmd.arg(root().join("tests/python/s3.py"))
        .arg(&server.endpoint)
        .args(args);
    aws(&mut cmd, &server.endpoint);
    assert!(cmd.status().expect("s3.py").success(), "s3.py {args:?}");
}

/// Runs maskprep; returns (wall seconds, peak resident KiB of that process).
#[expect(
    clippy::zombie_processes,
    reason = "the child is reaped by `wait4`, which also gives its peak memory"
)]
fn measure(server: &Server, args: &[&str]) -> (f64, i64) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_maskprep"));
    cmd.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    aws(&mut cmd, &server.endpoint);
    let t = Instant::now();
    let child = cmd.spawn().expect("maskprep");
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
        "maskprep {args:?} failed"
    );
    (secs, usage.ru_maxrss)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `n` 8-bit index masks, each a different pattern of a few classes.
fn generate(dir: &Path, n: usize) {
    if dir.join(format!("{:06}.png", n - 1)).exists() {
        return;
    }
    std::fs::create_dir_all(dir).expect("bench dir");
    for i in 0..n {
        let mut px = vec![0u8; (SIDE * SIDE) as usize];
        let (a, b) = ((i * 37) % 200 + 10, (i * 91) % 180 + 20);
        for y in 0..SIDE as usize {
            for x in 0..SIDE as usize {
                px[y * SIDE as usize + x] = if x < a && y < b {
                    1 + (i % 5) as u8
                } else if (x + y + i) % 97 < 3 {
                    7
                } else {
                    0
                };
            }
        }
        let f = std::fs::File::create(dir.join(format!("{i:06}.png"))).expect("png");
        let mut enc = png::Encoder::new(std::io::BufWriter::new(f), SIDE, SIDE);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header()
            .and_then(|mut w| w.write_image_data(&px))
            .expect("encode");
    }
}

fn main() {
    let n = env("MASKPREP_BENCH_N", 2000);
    let runs = env("MASKPREP_BENCH_RUNS", 3);
    let big = env("MASKPREP_BENCH_BIG", 20_000);
    let dir = root()
        .join("target")
        .join("bench-data")
        .join(format!("store-{n}x{SIDE}"));
    generate(&dir, n);
    let server = start();
    let t = Instant::now();
    s3(
        &server,
        &["upload", "bench", dir.to_str().expect("utf-8"), "masks"],
    );
    println!("uploaded {n} masks in {:.1} s", t.elapsed().as_secs_f64());
    let local = ["stats", dir.to_str().expect("utf-8"), "-q", "--json"];
    let bucket = ["stats", "s3://bench/masks", "-q", "--json"];
    // Warm both (page cache; the server's first requests).
    measure(&server, &local);
    measure(&server, &bucket);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let (mut rss_local, mut rss_small) = (0, 0);
    for _ in 0..runs {
        let (s, r) = measure(&server, &local);
        a.push(s);
        rss_local = rss_local.max(r);
        let (s, r) = measure(&server, &bucket);
        b.push(s);
        rss_small = rss_small.max(r);
    }
    let (a, b) = (median(a), median(b));
    println!("stats over {n} masks, median of {runs}:");
    println!("  folder  {a:.3} s  peak {} MiB", rss_local / 1024);
    println!("  bucket  {b:.3} s  peak {} MiB", rss_small / 1024);
    println!("  ratio bucket / folder: {:.2}x", b / a);
    if big == 0 {
        return;
    }
    let t = Instant::now();
    s3(
        &server,
        &[
            "fill",
            "bench",
            "big",
            dir.to_str().expect("utf-8"),
            &big.to_string(),
        ],
    );
    println!("put {big} objects in {:.1} s", t.elapsed().as_secs_f64());
    let (s, rss_big) = measure(&server, &["stats", "s3://bench/big", "-q", "--json"]);
    println!(
        "peak memory: {n} objects {} MiB, {big} objects {} MiB ({s:.1} s for {big})",
        rss_small / 1024,
        rss_big / 1024
    );
}

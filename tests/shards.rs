//! `maskprep shards` end to end: the built binary writes shards of
//! `fixtures/plates` into a temp dir, `shards verify` re-reads them, and
//! `tests/python/check_shards.py` reads them with the real consumers
//! (webdataset, safetensors, numpy) and compares every mask with planes
//! computed from the source PNG by Pillow.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const ABORT_ENV: &str = "MASKPREP_SHARDS_ABORT_AFTER";

fn plates() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/plates")
}

fn maskprep(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_maskprep"));
    cmd.args(args).env_remove(ABORT_ENV);
    cmd
}

fn run(args: &[&str]) -> Output {
    maskprep(args).output().expect("run maskprep")
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn shards(dataset: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "shards",
        dataset.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn verify(out: &Path) -> Output {
    run(&["shards", "verify", out.to_str().unwrap()])
}

/// The interpreter with numpy, pillow, safetensors and webdataset.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("MASKPREP_PYTHON") {
        return p.into();
    }
    let mut candidates = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venv/bin/python")];
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(Path::new(&t).join("venv/bin/python"));
    }
    candidates
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "no Python for the interop checks: set MASKPREP_PYTHON, or run `bash .ci/run` \
             (it creates target/venv with numpy, pillow, safetensors and webdataset)"
            )
        })
}

/// Runs the Python reader on a shard set; fails the test with its output.
fn python_check(out: &Path, dataset: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/check_shards.py");
    let o = Command::new(python())
        .arg(script)
        .arg(out)
        .arg(dataset)
        .output()
        .expect("run python");
    assert!(
        o.status.success(),
        "check_shards.py failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
}

fn assert_ok(o: &Output, what: &str) {
    assert_eq!(code(o), 0, "{what} failed: {}", stderr(o));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Every shard file under `out` (relative path, bytes), sorted.
fn shard_files(out: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    for d in std::fs::read_dir(out).unwrap() {
        let d = d.unwrap().path();
        if !d.is_dir() || d.file_name().unwrap() == ".maskprep" {
            continue;
        }
        for f in std::fs::read_dir(&d).unwrap() {
            let f = f.unwrap().path();
            let rel = f.strip_prefix(out).unwrap().display().to_string();
            v.push((rel, std::fs::read(&f).unwrap()));
        }
    }
    v.sort();
    v
}

fn manifest(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap()
}

#[test]
fn webdataset_shards_hold_the_source_masks_and_images() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("shards");
    let o = shards(
        &plates(),
        &out,
        &[
            "--split",
            "val=0.25",
            "--seed",
            "7",
            "--samples-per-shard",
            "3",
        ],
    );
    assert_ok(&o, "shards");
    assert!(stderr(&o).contains("split report"), "{}", stderr(&o));
    assert!(out.join("train/train-000000.tar").is_file());
    assert!(out.join("val/val-000000.tar").is_file());
    let m = manifest(&out);
    assert_eq!(m["format"], "maskprep-shards/1");
    // The loss weights are those of the train split's exact counts.
    let train = &m["splits"]["train"]["stats"];
    let valid = train["pixels"]["valid"].as_f64().unwrap();
    let w = &m["weights"];
    assert_eq!(w["format"], "maskprep-weights/1");
    assert_eq!(w["pos_weight"]["shape"], serde_json::json!([3, 1, 1]));
    for c in 0..3 {
        let n = train["classes"][c]["pixels"].as_f64().unwrap();
        let got = w["pos_weight"]["values"][c].as_f64().unwrap();
        if n > 0.0 {
            assert!(
                (got - (valid - n) / n).abs() < 1e-4 * got.max(1.0),
                "class {c}"
            );
        }
    }
    assert_eq!(m["classes"][2]["colour"], "#0000ff");
    assert_eq!(m["splits"]["train"]["samples"], 6);
    assert_eq!(m["splits"]["val"]["samples"], 2);
    // Stratified: the rare class (scratch) is in both splits.
    let scratch = &m["split_report"][1];
    assert_eq!(scratch["class"], "scratch");
    assert!(scratch["images"]["val"].as_u64().unwrap() >= 1);
    assert!(scratch["images"]["train"].as_u64().unwrap() >= 1);
    assert_ok(&verify(&out), "verify");
    python_check(&out, &plates());
}

#[test]
fn safetensors_shards_native_resized_and_tiled_read_back_in_python() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, extra) in [
        ("native", vec!["--format", "safetensors"]),
        (
            "resized",
            vec![
                "--format",
                "safetensors",
                "--size",
                "32x24",
                "--split",
                "val=0.25",
            ],
        ),
        (
            "tiled",
            vec![
                "--format",
                "safetensors",
                "--tile",
                "32x32",
                "--samples-per-shard",
                "10",
            ],
        ),
    ] {
        let out = tmp.path().join(name);
        assert_ok(&shards(&plates(), &out, &extra), name);
        assert_ok(&verify(&out), name);
        python_check(&out, &plates());
    }
    let m = manifest(&tmp.path().join("tiled"));
    // 8 pairs of 64x48 → 2x2 tiles of 32x32 each; a pair's tiles stay in one shard.
    assert_eq!(m["splits"]["train"]["samples"], 32);
    assert_eq!(m["splits"]["train"]["shards"].as_array().unwrap().len(), 4);
}

#[test]
fn output_bytes_do_not_depend_on_the_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    for format in ["webdataset", "safetensors"] {
        let a = tmp.path().join(format!("{format}-1"));
        let b = tmp.path().join(format!("{format}-3"));
        let extra = [
            "--format",
            format,
            "--split",
            "val=0.25",
            "--samples-per-shard",
            "2",
        ];
        let mut one = vec!["-j", "1"];
        one.extend_from_slice(&extra);
        let mut three = vec!["-j", "3"];
        three.extend_from_slice(&extra);
        assert_ok(&shards(&plates(), &a, &one), "-j1");
        assert_ok(&shards(&plates(), &b, &three), "-j3");
        assert_eq!(shard_files(&a), shard_files(&b), "{format}");
        assert_eq!(manifest(&a)["splits"], manifest(&b)["splits"]);
    }
}

#[test]
fn interrupted_run_resumes_to_a_verified_complete_set() {
    let tmp = tempfile::tempdir().unwrap();
    let clean = tmp.path().join("clean");
    let out = tmp.path().join("out");
    let extra = ["--samples-per-shard", "3"];
    assert_ok(&shards(&plates(), &clean, &extra), "clean run");

    // Dies (exit 137, nothing flushed) after 4 samples: shard 0 is complete,
    // shard 1 is half written under its temporary name.
    let src = plates();
    let mut args = vec!["shards", src.to_str().unwrap(), "-o", out.to_str().unwrap()];
    args.extend_from_slice(&extra);
    let o = maskprep(&args).env(ABORT_ENV, "4").output().unwrap();
    assert_eq!(code(&o), 137, "{}", stderr(&o));
    assert!(out.join("train/train-000000.tar").is_file());
    assert!(!out.join("train/train-000001.tar").exists());
    let temps: Vec<_> = std::fs::read_dir(out.join("train"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert_eq!(temps.len(), 1, "{temps:?}");
    assert!(!out.join("index.json").exists());
    assert_eq!(code(&verify(&out)), 2, "no manifest: verify cannot pass");

    let o = shards(&plates(), &out, &extra);
    assert_ok(&o, "rerun");
    assert!(
        stderr(&o).contains("(1 kept from an earlier run)"),
        "{}",
        stderr(&o)
    );
    assert_ok(&verify(&out), "verify after rerun");
    assert_eq!(shard_files(&out), shard_files(&clean));
    assert_eq!(manifest(&out)["splits"], manifest(&clean)["splits"]);
    python_check(&out, &plates());
}

#[test]
fn leftovers_are_replaced_and_stale_shards_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    assert_ok(
        &shards(&plates(), &out, &["--samples-per-shard", "3"]),
        "first",
    );
    let good = shard_files(&out);
    // A truncated shard at its final name, a stale extra shard, a temp file.
    let victim = out.join("train/train-000001.tar");
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(out.join("train/train-000099.tar"), b"stale").unwrap();
    std::fs::write(out.join("train/.train-000002.tar.tmp-99999"), b"partial").unwrap();
    let v = verify(&out);
    assert_eq!(code(&v), 1);
    let msg = stderr(&v);
    assert!(
        msg.contains("sha256") && msg.contains("not in the manifest") && msg.contains("temporary"),
        "{msg}"
    );

    assert_ok(
        &shards(&plates(), &out, &["--samples-per-shard", "3"]),
        "rerun",
    );
    assert_ok(&verify(&out), "verify");
    assert_eq!(shard_files(&out), good);

    // Other settings: nothing is reused wrongly, surplus shards go.
    assert_ok(
        &shards(&plates(), &out, &["--samples-per-shard", "5"]),
        "resized shards",
    );
    assert_ok(&verify(&out), "verify");
    assert_eq!(shard_files(&out).len(), 2);
    python_check(&out, &plates());
}

#[test]
fn verify_reports_tampering_and_a_missing_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    assert_ok(
        &shards(&plates(), &out, &["--format", "safetensors"]),
        "shards",
    );
    let path = out.join("train/train-000000.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let v = verify(&out);
    assert_eq!(code(&v), 1);
    assert!(stderr(&v).contains("sha256"), "{}", stderr(&v));
    std::fs::remove_file(out.join("index.json")).unwrap();
    let v = verify(&out);
    assert_eq!(code(&v), 2);
    assert!(stderr(&v).contains("no manifest"), "{}", stderr(&v));
}

#[test]
fn bad_pairs_are_skipped_with_exit_1_or_stop_the_run_with_strict() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    copy_dir(&plates(), &data);
    // A truncated mask (its header still reads: found in pass 2), a mask
    // without its image, and an image of another size.
    let m3 = data.join("masks/0003.png");
    let bytes = std::fs::read(&m3).unwrap();
    std::fs::write(&m3, &bytes[..bytes.len() - 40]).unwrap();
    std::fs::remove_file(data.join("images/0005.png")).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bad/good.png"),
        data.join("images/0006.png"),
    )
    .unwrap();
    for format in ["webdataset", "safetensors"] {
        let out = tmp.path().join(format);
        let o = shards(&data, &out, &["--format", format]);
        assert_eq!(code(&o), 1, "{}", stderr(&o));
        let msg = stderr(&o);
        assert!(
            msg.contains("0003.png") && msg.contains("0005.png") && msg.contains("0006.png"),
            "{msg}"
        );
        let m = manifest(&out);
        assert_eq!(m["skipped"].as_array().unwrap().len(), 3);
        assert_eq!(m["splits"]["train"]["samples"], 5);
        assert_ok(&verify(&out), "verify");
        python_check(&out, &data);
    }
    let o = shards(&data, &tmp.path().join("strict"), &["--strict"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--strict"), "{}", stderr(&o));
}

#[test]
fn bad_arguments_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    for extra in [
        vec!["--size", "32x32"],
        vec!["--split", "val=0.6,test=0.5"],
        vec!["--split", "train=0.5"],
    ] {
        let o = shards(&plates(), &out, &extra);
        assert_eq!(code(&o), 2, "{extra:?}: {}", stderr(&o));
    }
    let o = shards(&plates(), &out, &["--split", "val=2"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let masks_only = shards(&plates().join("masks"), &out, &[]);
    assert_eq!(code(&masks_only), 2);
    assert!(
        stderr(&masks_only).contains("images/"),
        "{}",
        stderr(&masks_only)
    );
}

/// Writes `n` pairs of 96x96 RGB-bit masks and noisy RGB images.
fn generate(dir: &Path, n: usize) {
    let side = 96u32;
    for sub in ["images", "masks"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    std::fs::write(
        dir.join("labels.toml"),
        "kind = \"rgb-bits\"\nclasses = [\"a\", \"b\", \"c\"]\n",
    )
    .unwrap();
    let png = |data: &[u8]| {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, side, side);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header().unwrap().write_image_data(data).unwrap();
        out
    };
    for k in 0..n {
        let mut mask = vec![0u8; (side * side * 3) as usize];
        let mut img = vec![0u8; mask.len()];
        for y in 0..side {
            for x in 0..side {
                let i = ((y * side + x) * 3) as usize;
                mask[i] = if (x + k as u32) % 40 < 20 { 255 } else { 0 };
                mask[i + 1] = if k % 7 == 0 && x < 10 { 255 } else { 0 };
                mask[i + 2] = if y > 30 { 255 } else { 0 };
                img[i] = (x * 2 + k as u32) as u8;
                img[i + 1] = (y * 3) as u8;
                img[i + 2] = ((x ^ y) + k as u32) as u8;
            }
        }
        std::fs::write(dir.join(format!("masks/{k:04}.png")), png(&mask)).unwrap();
        std::fs::write(dir.join(format!("images/{k:04}.png")), png(&img)).unwrap();
    }
}

#[test]
fn killed_mid_run_then_rerun_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    generate(&data, 160);
    let clean = tmp.path().join("clean");
    let out = tmp.path().join("out");
    let extra = ["--samples-per-shard", "4", "--split", "val=0.2", "-j", "1"];
    assert_ok(&shards(&data, &clean, &extra), "clean");
    let mut args = vec![
        "shards",
        data.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(&extra);
    let mut child = maskprep(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once the first shard is finished (or give up waiting: then it
    // simply finished first, and the rerun must keep everything).
    let records = out.join(".maskprep/train");
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        let done = std::fs::read_dir(&records).map(|d| d.count()).unwrap_or(0);
        if done >= 1 || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let was_running = child.try_wait().unwrap().is_none();
    eprintln!("killed while still running: {was_running}");
    let _ = child.kill();
    let _ = child.wait();
    assert_ok(&shards(&data, &out, &extra), "rerun");
    assert_ok(&verify(&out), "verify");
    assert_eq!(shard_files(&out), shard_files(&clean));
    python_check(&out, &data);
}

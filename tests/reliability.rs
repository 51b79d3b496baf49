//! Hostile and unlucky input (issue 15): no panic, no silent loss, no
//! clobbered files. Each test builds its input in a temp dir, runs the
//! built binary, and checks the exit code (0 done, 1 files skipped, 2 not
//! done) and what is left on disk. Locks and atomic folders are checked by
//! racing and killing real processes.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use common::{code, maskprep, path_str, stderr};

/// A `w x h` 8-bit RGB PNG whose pixel `(x, y)` is `f(x, y)`.
fn rgb_png(w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
    let mut data = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            data.extend_from_slice(&f(x, y));
        }
    }
    encode(w, h, png::ColorType::Rgb, &data)
}

/// A one-colour RGB PNG without compression.
fn stored_rgb_png(w: u32, h: u32, rgb: [u8; 3]) -> Vec<u8> {
    let data: Vec<u8> = (0..w * h).flat_map(|_| rgb).collect();
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::NoCompression);
    enc.write_header().unwrap().write_image_data(&data).unwrap();
    out
}

fn gray_png(w: u32, h: u32, v: u8) -> Vec<u8> {
    encode(w, h, png::ColorType::Grayscale, &vec![v; (w * h) as usize])
}

fn encode(w: u32, h: u32, color: png::ColorType, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().unwrap().write_image_data(data).unwrap();
    out
}

/// A dataset `D`: `masks/`, `images/` and an rgb-bits `labels.toml`;
/// mask `k` has a red square of side `k + 2` on a blue background.
fn dataset(dir: &Path, n: u32) -> PathBuf {
    let d = dir.join("D");
    for sub in ["masks", "images"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    std::fs::write(
        d.join("labels.toml"),
        "kind = \"rgb-bits\"\nclasses = [\"r\", \"g\", \"b\"]\n",
    )
    .unwrap();
    for k in 0..n {
        let mask = rgb_png(16, 12, |x, y| {
            if x < k + 2 && y < k + 2 {
                [255, 0, 0]
            } else {
                [0, 0, 255]
            }
        });
        let image = rgb_png(16, 12, |x, y| [(x * 9) as u8, (y * 13) as u8, k as u8]);
        std::fs::write(d.join(format!("masks/{k:04}.png")), mask).unwrap();
        std::fs::write(d.join(format!("images/{k:04}.png")), image).unwrap();
    }
    d
}

fn labels(d: &Path) -> String {
    path_str(&d.join("labels.toml")).to_string()
}

fn stats_json(d: &Path, extra: &[&str]) -> std::process::Output {
    let l = labels(d);
    let mut args = vec!["stats", path_str(d), "--labels", &l, "--json"];
    args.extend_from_slice(extra);
    maskprep(&args)
}

fn json(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stderr(o)))
}

/// `(path, reason)` of every skipped file of a stats document.
fn bad(d: &serde_json::Value) -> Vec<(String, String)> {
    d["files"]["bad"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["path"].as_str().unwrap().to_string(),
                b["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn class_pixels(d: &serde_json::Value) -> Vec<u64> {
    d["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["pixels"].as_u64().unwrap())
        .collect()
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_maskprep"))
}

// ---------------------------------------------------------------- item 1a

#[test]
fn a_class_name_of_70000_characters_is_refused_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let d = dataset(tmp.path(), 2);
    let long = "n".repeat(70_000);
    std::fs::write(
        d.join("labels.toml"),
        format!("kind = \"rgb-bits\"\nclasses = [\"{long}\", \"g\", \"b\"]\n"),
    )
    .unwrap();
    let l = labels(&d);
    for args in [
        vec!["stats", path_str(&d), "--labels", &l],
        vec!["weights", path_str(&d), "--labels", &l],
        vec![
            "score",
            "--truth",
            path_str(&d),
            "--pred",
            path_str(&d.join("masks")),
            "--labels",
            &l,
        ],
    ] {
        let o = maskprep(&args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("expected at most 256"),
            "{}",
            stderr(&o)
        );
    }
    // The dataset's own `dataset_meta.json`, found by detection.
    std::fs::remove_file(d.join("labels.toml")).unwrap();
    std::fs::write(
        d.join("dataset_meta.json"),
        format!("{{\"label_map\": {{\"0\": \"{long}\", \"1\": \"x\"}}}}"),
    )
    .unwrap();
    let o = maskprep(&["stats", path_str(&d)]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("expected at most 256"));
}

// ---------------------------------------------------------------- item 1b

#[test]
fn merge_checks_partition_numbers_before_allocating() {
    let tmp = tempfile::tempdir().unwrap();
    let part = tmp.path().join("1.json");
    let o = maskprep(&[
        "-q",
        "stats",
        "fixtures/plates",
        "--partition",
        "1/2",
        "-o",
        path_str(&part),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = std::fs::read_to_string(&part).unwrap();
    for n in ["99999999999999", "18446744073709551615"] {
        let p = tmp.path().join(format!("{n}.json"));
        std::fs::write(&p, text.replace("\"1/2\"", &format!("\"1/{n}\""))).unwrap();
        let o = maskprep(&["merge", path_str(&p)]);
        assert_eq!(code(&o), 2, "1/{n}: {}", stderr(&o));
        assert!(stderr(&o).contains("are missing"), "{}", stderr(&o));
    }
}

// ---------------------------------------------------------------- item 2

#[test]
fn outputs_write_through_symlinks_and_stream_to_fifos_and_devices() {
    use std::os::unix::fs::FileTypeExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // A symlink: its target receives the document, the link stays.
    let target = dir.join("target.json");
    std::fs::write(&target, "old").unwrap();
    let link = dir.join("link.json");
    std::os::unix::fs::symlink("target.json", &link).unwrap();
    let o = maskprep(&[
        "-q",
        "stats",
        "fixtures/plates",
        "--json",
        "-o",
        path_str(&link),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        std::fs::read_to_string(&target)
            .unwrap()
            .contains("maskprep-stats/1")
    );
    // A FIFO: streamed to, never replaced.
    let fifo = dir.join("fifo");
    let ok = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(ok.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let o = maskprep(&[
        "-q",
        "stats",
        "fixtures/plates",
        "--json",
        "-o",
        path_str(&fifo),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        std::fs::metadata(&fifo).unwrap().file_type().is_fifo(),
        "the FIFO was replaced"
    );
    assert!(reader.join().unwrap().contains("maskprep-stats/1"));
    // `/dev/stdout` redirected to a file: written through the descriptor.
    let redirected = dir.join("stdout.json");
    let file = std::fs::File::create(&redirected).unwrap();
    let o = bin()
        .args([
            "-q",
            "stats",
            "fixtures/plates",
            "--json",
            "-o",
            "/dev/stdout",
        ])
        .current_dir(common::root())
        .stdout(file)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        std::fs::read_to_string(&redirected)
            .unwrap()
            .contains("maskprep-stats/1")
    );
    // A character device (a private copy of /dev/null, made when root).
    let null = dir.join("null");
    let made = Command::new("mknod")
        .arg(&null)
        .args(["c", "1", "3"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if made {
        let o = maskprep(&["-q", "stats", "fixtures/plates", "-o", path_str(&null)]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let meta = std::fs::metadata(&null).unwrap();
        assert!(meta.file_type().is_char_device(), "the device was replaced");
    } else {
        eprintln!("not root: the character-device case is not run");
    }
}

// ---------------------------------------------------------------- item 3

#[test]
fn outputs_inside_the_data_are_refused_and_marked_folders_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let d = dataset(tmp.path(), 3);
    let l = labels(&d);
    let inside = d.join("masks/rep");
    let o = maskprep(&[
        "report",
        path_str(&d),
        "--labels",
        &l,
        "-o",
        path_str(&inside),
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("inside the data folder"),
        "{}",
        stderr(&o)
    );
    assert!(!inside.exists());
    let o = maskprep(&[
        "shards",
        path_str(&d),
        "--labels",
        &l,
        "-o",
        path_str(&d.join("images/sh")),
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("inside the data folder"),
        "{}",
        stderr(&o)
    );
    // A report folder that got into the masks anyway is not scanned.
    let outside = tmp.path().join("rep");
    let o = maskprep(&[
        "-q",
        "report",
        path_str(&d),
        "--labels",
        &l,
        "-o",
        path_str(&outside),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let moved = d.join("masks/old-report");
    std::fs::rename(&outside, &moved).unwrap();
    let pngs = std::fs::read_dir(&moved)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "png")
        })
        .count();
    assert!(pngs > 0, "the report has PNG plots");
    let o = stats_json(&d, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json(&o)["files"]["masks_found"], 3);
}

// ---------------------------------------------------------------- item 4

#[test]
fn two_files_with_one_key_are_listed_not_dropped() {
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap();
    let d = dataset(tmp.path(), 2);
    let red = rgb_png(16, 12, |_, _| [255, 0, 0]);
    std::fs::write(d.join("masks/0000.PNG"), &red).unwrap();
    let o = stats_json(&d, &[]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let b = bad(&json(&o));
    assert_eq!(b.len(), 1, "{b:?}");
    assert!(b[0].0.ends_with("0000.png") || b[0].0.ends_with("0000.PNG"));
    assert!(b[0].1.contains("same name"), "{b:?}");
    assert!(stderr(&o).contains("maskprep: skipped `"), "{}", stderr(&o));
    // Two names that are not UTF-8 and print the same.
    std::fs::remove_file(d.join("masks/0000.PNG")).unwrap();
    let names: [&[u8]; 2] = [b"x\xff.png", b"x\xfe.png"];
    for n in names {
        let p = d.join("masks").join(std::ffi::OsStr::from_bytes(n));
        std::fs::write(p, &red).unwrap();
    }
    let o = stats_json(&d, &[]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let doc = json(&o);
    assert_eq!(bad(&doc).len(), 1, "{:?}", bad(&doc));
    assert_eq!(doc["files"]["masks_read"], 3);
}

#[test]
fn dangling_symlinks_and_loops_are_skipped_and_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let d = dataset(tmp.path(), 2);
    std::os::unix::fs::symlink("nowhere.png", d.join("masks/0005.png")).unwrap();
    std::fs::create_dir(d.join("masks/sub")).unwrap();
    std::os::unix::fs::symlink("..", d.join("masks/sub/loop")).unwrap();
    std::os::unix::fs::symlink("gone.png", d.join("images/0007.png")).unwrap();
    let o = stats_json(&d, &[]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let doc = json(&o);
    let b = bad(&doc);
    let reason = |name: &str| {
        b.iter()
            .find(|(p, _)| p.ends_with(name))
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| panic!("{name} not listed in {b:?}"))
    };
    assert!(reason("masks/0005.png").contains("dangling symlink"));
    assert!(reason("images/0007.png").contains("dangling symlink"));
    assert!(reason("sub/loop").contains("symlink loop"));
    assert_eq!(doc["files"]["masks_read"], 2);
    // Shards list them too.
    let l = labels(&d);
    let out = tmp.path().join("sh");
    let o = maskprep(&[
        "-q",
        "shards",
        path_str(&d),
        "--labels",
        &l,
        "-o",
        path_str(&out),
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("dangling symlink"), "{}", stderr(&o));
}

#[test]
fn an_unreadable_subfolder_is_skipped_and_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let d = dataset(tmp.path(), 2);
    let sub = d.join("masks/locked");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("0009.png"), rgb_png(16, 12, |_, _| [0, 0, 255])).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o000)).unwrap();
    let readable = std::fs::read_dir(&sub).is_ok();
    let mut cmd = bin();
    let l = labels(&d);
    cmd.args(["stats", path_str(&d), "--labels", &l, "--json"]);
    if readable {
        // Root reads anything: run as `nobody` where `setpriv` can.
        let ok = Command::new("setpriv").arg("--version").output().is_ok();
        if !ok {
            eprintln!("root without setpriv: the unreadable-folder case is not run");
            return;
        }
        for p in [tmp.path(), &d, &d.join("masks"), &d.join("images")] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        for e in std::fs::read_dir(d.join("masks"))
            .unwrap()
            .chain(std::fs::read_dir(d.join("images")).unwrap())
        {
            let p = e.unwrap().path();
            if p.is_file() {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
            }
        }
        std::fs::set_permissions(
            d.join("labels.toml"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_maskprep"))
            .args(["stats", path_str(&d), "--labels", &l, "--json"]);
    }
    let o = cmd.output().unwrap();
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755)).unwrap();
    if stderr(&o).contains("Permission denied")
        && code(&o) == 2
        && stderr(&o).contains("`--labels`")
    {
        eprintln!("nobody cannot reach the test folder: not run");
        return;
    }
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let b = bad(&json(&o));
    assert!(
        b.iter()
            .any(|(p, r)| p.ends_with("locked") && r.contains("cannot read")),
        "{b:?}"
    );
}

#[test]
fn a_gray_mask_among_rgb_ones_is_a_format_mismatch() {
    let tmp = tempfile::tempdir().unwrap();
    let d = dataset(tmp.path(), 2);
    let before = class_pixels(&json(&stats_json(&d, &[])));
    std::fs::write(d.join("masks/0002.png"), gray_png(16, 12, 255)).unwrap();
    let o = stats_json(&d, &[]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let doc = json(&o);
    let b = bad(&doc);
    assert_eq!(b.len(), 1, "{b:?}");
    assert!(b[0].1.contains("format mismatch"), "{b:?}");
    assert_eq!(class_pixels(&doc), before, "the gray mask was counted");
    let l = labels(&d);
    let masks = d.join("masks");
    let o = maskprep(&[
        "score",
        "--truth",
        path_str(&d),
        "--pred",
        path_str(&masks),
        "--labels",
        &l,
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("format mismatch"), "{}", stderr(&o));
}

// ---------------------------------------------------------------- item 5

#[test]
fn merge_refuses_overlap_and_overflow() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("a.json");
    let o = maskprep(&["-q", "stats", "fixtures/plates", "-o", path_str(&whole)]);
    assert_eq!(code(&o), 0);
    let o = maskprep(&["merge", path_str(&whole), path_str(&whole)]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("both whole runs"), "{}", stderr(&o));
    // Two partitions whose pixel totals overflow 64 bits together.
    let mut parts = Vec::new();
    for i in 1..=2 {
        let p = tmp.path().join(format!("{i}.json"));
        let o = maskprep(&[
            "-q",
            "stats",
            "fixtures/plates",
            "--partition",
            &format!("{i}/2"),
            "-o",
            path_str(&p),
        ]);
        assert_eq!(code(&o), 0);
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        let big = 1u64 << 63;
        for (a, b) in [("pixels", "total"), ("label_degree", "0")] {
            let n = v[a][b].as_u64().unwrap();
            v[a][b] = (n + big).into();
        }
        std::fs::write(&p, serde_json::to_string(&v).unwrap()).unwrap();
        parts.push(p);
    }
    let o = maskprep(&["merge", path_str(&parts[0]), path_str(&parts[1])]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("overflows 64 bits"), "{}", stderr(&o));
}

// ---------------------------------------------------------------- item 6

#[test]
fn a_second_shards_run_on_a_locked_folder_exits_2_naming_the_holder() {
    let tmp = tempfile::tempdir().unwrap();
    let d = dataset(tmp.path(), 4);
    let l = labels(&d);
    let out = tmp.path().join("sh");
    std::fs::create_dir_all(out.join(".maskprep")).unwrap();
    // This test process holds the lock, as a running `shards` would.
    let lock = out.join(".maskprep/lock");
    let held = std::fs::File::create(&lock).unwrap();
    held.lock().unwrap();
    std::fs::write(&lock, std::process::id().to_string()).unwrap();
    let o = maskprep(&["shards", path_str(&d), "--labels", &l, "-o", path_str(&out)]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let want = format!("being written by process {}", std::process::id());
    assert!(stderr(&o).contains(&want), "{}", stderr(&o));
    drop(held);
    let o = maskprep(&[
        "-q",
        "shards",
        path_str(&d),
        "--labels",
        &l,
        "-o",
        path_str(&out),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn two_shards_runs_at_once_never_leave_a_broken_set() {
    let tmp = tempfile::tempdir().unwrap();
    let d = dataset(tmp.path(), 60);
    let l = labels(&d);
    let out = tmp.path().join("sh");
    let args = [
        "-q",
        "shards",
        path_str(&d),
        "--labels",
        &l,
        "-o",
        path_str(&out),
        "--samples-per-shard",
        "2",
        "-j",
        "1",
    ];
    let mut refused = 0;
    for round in 0..6 {
        let _ = std::fs::remove_dir_all(&out);
        let a = bin()
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let b = bin()
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        for o in [&a, &b] {
            match code(o) {
                0 => {}
                2 => {
                    assert!(stderr(o).contains("is being written by"), "{}", stderr(o));
                    refused += 1;
                }
                c => panic!("round {round}: exit {c}: {}", stderr(o)),
            }
        }
        assert!(
            code(&a) == 0 || code(&b) == 0,
            "round {round}: neither finished"
        );
        let v = maskprep(&["shards", "verify", path_str(&out)]);
        assert_eq!(code(&v), 0, "round {round}: {}", stderr(&v));
    }
    eprintln!("refused by the lock in {refused} of 6 rounds");
}

#[test]
fn a_source_rewritten_with_the_same_length_and_mtime_is_reencoded() {
    let tmp = tempfile::tempdir().unwrap();
    let d = dataset(tmp.path(), 4);
    let l = labels(&d);
    let out = tmp.path().join("sh");
    let run = |out: &Path| {
        let o = maskprep(&[
            "-q",
            "shards",
            path_str(&d),
            "--labels",
            &l,
            "-o",
            path_str(out),
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        std::fs::read_to_string(out.join("index.json")).unwrap()
    };
    // Stored (uncompressed) PNGs: the length does not depend on the pixels.
    std::fs::write(
        d.join("masks/0001.png"),
        stored_rgb_png(16, 12, [0, 0, 255]),
    )
    .unwrap();
    run(&out);
    // Same size, same mtime, other pixels: green instead of blue.
    let mask = d.join("masks/0001.png");
    let mtime = std::fs::metadata(&mask).unwrap().modified().unwrap();
    let old = std::fs::read(&mask).unwrap();
    let new = stored_rgb_png(16, 12, [0, 255, 0]);
    assert_eq!(old.len(), new.len(), "the rewrite must keep the length");
    std::fs::write(&mask, &new).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&mask)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let rerun = run(&out);
    let fresh = run(&tmp.path().join("fresh"));
    let counts = |m: &str| {
        let v: serde_json::Value = serde_json::from_str(m).unwrap();
        v["splits"]["train"]["stats"]["classes"].clone()
    };
    assert_eq!(counts(&rerun), counts(&fresh), "a stale shard was kept");
    let v = maskprep(&["shards", "verify", path_str(&out)]);
    assert_eq!(code(&v), 0, "{}", stderr(&v));
}

// ---------------------------------------------------------------- item 7

/// The files of a folder, by name.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Names in `dir` starting with `.NAME.`: leftovers of folder switches.
fn leftovers(dir: &Path, name: &str) -> Vec<String> {
    let prefix = format!(".{name}.");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

/// Runs `args` (writing folder `out`) again and again, killed after
/// delays spread over a whole run; after each kill `out` holds exactly
/// `a` or `b` (both when the run got past its switch).
fn kill_mid_way(
    args: &[&str],
    reset: &[&str],
    out: &Path,
    a: &[(String, Vec<u8>)],
    b: &[(String, Vec<u8>)],
) {
    let start = Instant::now();
    let o = bin().args(args).output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let whole = start.elapsed();
    let o = bin().args(reset).output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let (mut old, mut new) = (0, 0);
    const RUNS: u32 = 40;
    for k in 0..RUNS {
        let mut child = bin()
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(whole * k / (RUNS - 8));
        let _ = child.kill();
        let _ = child.wait();
        let now = files(out);
        assert!(
            now == a || now == b,
            "killed after {:?} of {whole:?}: a mix of old and new",
            whole * k / (RUNS - 8)
        );
        if now == a {
            old += 1
        } else {
            new += 1
        }
        // Back to `a`, so the next kill can catch the switch again.
        let o = bin().args(reset).output().unwrap();
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    eprintln!("after {RUNS} kills over {whole:?}: {old} old, {new} new");
}

#[test]
fn a_killed_report_leaves_the_old_report_or_the_new_one() {
    let tmp = tempfile::tempdir().unwrap();
    let rep = tmp.path().join("rep");
    let report = |data: &str| {
        let o = maskprep(&["-q", "report", data, "-o", path_str(&rep)]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        files(&rep)
    };
    let voc = report("fixtures/voc");
    let plates = report("fixtures/plates");
    assert_ne!(voc, plates);
    kill_mid_way(
        &["-q", "report", "fixtures/voc", "-o", path_str(&rep)],
        &["-q", "report", "fixtures/plates", "-o", path_str(&rep)],
        &rep,
        &plates,
        &voc,
    );
    // Leftovers of crashed runs (also the two-rename layout of older
    // versions) are cleaned up by the next run, and a report moved aside
    // by a crashed run is put back first.
    std::fs::rename(&rep, tmp.path().join(".rep.report-old-999999999")).unwrap();
    std::fs::create_dir(tmp.path().join(".rep.report-tmp-999999998")).unwrap();
    assert_eq!(report("fixtures/plates"), plates);
    assert_eq!(leftovers(tmp.path(), "rep"), Vec::<String>::new());
}

#[test]
fn a_killed_weights_run_never_mixes_old_and_new_files() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path().join("w");
    let weights = |data: &str| {
        let o = maskprep(&["-q", "weights", data, "-o", path_str(&w), "--npy"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        files(&w)
    };
    let voc = weights("fixtures/voc");
    let plates = weights("fixtures/plates");
    kill_mid_way(
        &["-q", "weights", "fixtures/voc", "-o", path_str(&w), "--npy"],
        &[
            "-q",
            "weights",
            "fixtures/plates",
            "-o",
            path_str(&w),
            "--npy",
        ],
        &w,
        &plates,
        &voc,
    );
    assert_eq!(weights("fixtures/plates"), plates);
    assert_eq!(leftovers(tmp.path(), "w"), Vec::<String>::new());
}

// ---------------------------------------------------------------- item 8

#[test]
fn a_file_far_larger_than_its_header_is_refused_unread() {
    let tmp = tempfile::tempdir().unwrap();
    let d = dataset(tmp.path(), 2);
    // A valid 16x12 PNG, then a sparse GiB: its header allows a few KiB.
    let path = d.join("masks/0001.png");
    let f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.set_len(1 << 30).unwrap();
    drop(f);
    let start = Instant::now();
    let o = stats_json(&d, &[]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let b = bad(&json(&o));
    assert_eq!(b.len(), 1, "{b:?}");
    assert!(b[0].1.contains("far more than a 16x12 PNG"), "{b:?}");
    eprintln!("refused in {:?}", start.elapsed());
}

#[test]
fn threads_are_capped_with_a_note() {
    let o = maskprep(&["-j", "20000", "stats", "fixtures/plates", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains("capped at"), "{}", stderr(&o));
    let o = maskprep(&["-j", "2", "stats", "fixtures/plates", "--json"]);
    assert!(!stderr(&o).contains("capped at"), "{}", stderr(&o));
}

/// Built without `--features store`, an object-store URL is refused (exit
/// 2) with a message saying how to build with it.
#[cfg(not(feature = "store"))]
#[test]
fn a_url_without_the_store_feature_is_refused_saying_how_to_build() {
    let o = maskprep(&["stats", "s3://bucket/data/train"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("built without object-store support")
            && stderr(&o).contains("--features store"),
        "{}",
        stderr(&o)
    );
}

// ====================================================== issue 24 (round two)

/// A `.npy` of float32 `shape`, C order.
fn npy_f32(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({},), }}",
        dims.join(", ")
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Logits `[3,12,16]` for [`dataset`]'s mask `k`: each class right where
/// the mask has it, with margins that vary by pixel (so a sweep's bins
/// fill), plus a few wrong pixels.
fn logits(k: u32) -> Vec<u8> {
    let (w, h) = (16u32, 12u32);
    let mut data = Vec::new();
    for c in 0..3 {
        for y in 0..h {
            for x in 0..w {
                let red = x < k + 2 && y < k + 2;
                let truth = match c {
                    0 => red,
                    1 => false,
                    _ => !red,
                };
                let margin = 0.2 + ((x * 7 + y * 3 + c * 5) % 11) as f32 * 0.4;
                let wrong = (x + 2 * y + c) % 13 == 0;
                data.push(if truth != wrong { margin } else { -margin });
            }
        }
    }
    npy_f32(&[3, h as usize, w as usize], &data)
}

/// [`dataset`] `D` with `n` masks, and logits for each in `P`.
fn scored_dataset(dir: &Path, n: u32) -> (PathBuf, PathBuf) {
    let d = dataset(dir, n);
    let p = dir.join("P");
    std::fs::create_dir_all(&p).unwrap();
    for k in 0..n {
        std::fs::write(p.join(format!("{k:04}.npy")), logits(k)).unwrap();
    }
    (d, p)
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn write_json(path: &Path, v: &serde_json::Value) {
    std::fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

// ------------------------------------------------------- issue 24, item 2

#[test]
fn a_symlink_planted_as_the_shards_lock_is_never_written_through() {
    let tmp = tempfile::tempdir().unwrap();
    let d = dataset(tmp.path(), 3);
    let l = labels(&d);
    let out = tmp.path().join("sh");
    std::fs::create_dir_all(out.join(".maskprep")).unwrap();
    let victim = tmp.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, out.join(".maskprep/lock")).unwrap();
    let o = maskprep(&["shards", path_str(&d), "--labels", &l, "-o", path_str(&out)]);
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "precious",
        "the lock was written through a planted symlink: {}",
        stderr(&o)
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("symlink"), "{}", stderr(&o));
}

#[test]
fn a_symlink_planted_as_a_temporary_file_is_never_written_through() {
    let tmp = tempfile::tempdir().unwrap();
    let victim = tmp.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    let out = tmp.path().join("out.json");
    // The shell plants the link for its own pid, then becomes maskprep.
    let script = format!(
        "ln -s '{}' '{}/.out.json.tmp-'$$ && exec '{}' -q stats fixtures/plates --json -o '{}'",
        victim.display(),
        tmp.path().display(),
        env!("CARGO_BIN_EXE_maskprep"),
        out.display()
    );
    let o = Command::new("sh")
        .args(["-c", &script])
        .current_dir(common::root())
        .output()
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "precious",
        "the output went through a planted symlink: {}",
        stderr(&o)
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let meta = std::fs::symlink_metadata(&out).unwrap();
    assert!(meta.file_type().is_file(), "`out.json` is not a plain file");
    assert!(
        std::fs::read_to_string(&out)
            .unwrap()
            .contains("maskprep-stats/1")
    );
}

// ------------------------------------------------------- issue 24, item 4

/// Scores `D` against `P` as partitions `i/2` with a sweep; the two parts.
fn sweep_parts(dir: &Path) -> (PathBuf, PathBuf, [PathBuf; 2]) {
    let (d, p) = scored_dataset(dir, 4);
    let l = labels(&d);
    let parts = [1, 2].map(|i| {
        let out = dir.join(format!("part{i}.json"));
        let o = maskprep(&[
            "-q",
            "score",
            "--truth",
            path_str(&d),
            "--pred",
            path_str(&p),
            "--labels",
            &l,
            "--sweep-bins",
            "4",
            "--partition",
            &format!("{i}/2"),
            "--json",
            "-o",
            path_str(&out),
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        out
    });
    (d, p, parts)
}

#[test]
fn sweep_merges_check_sums_and_shapes_naming_the_part() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (_, _, [p1, p2]) = sweep_parts(dir);
    let merged = dir.join("merged.json");
    let o = maskprep(&[
        "-q",
        "merge",
        path_str(&p1),
        path_str(&p2),
        "-o",
        path_str(&merged),
    ]);
    assert_eq!(code(&o), 0, "untouched parts must merge: {}", stderr(&o));
    let base = [read_json(&p1), read_json(&p2)];
    let big = 1u64 << 63;
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    // (what, edit of part 1, edit of part 2, the part the error names)
    // Every count of a part grown by 2^63 as one scan would: the part is
    // consistent alone, two of them overflow.
    let grow = move |v: &mut serde_json::Value| {
        for k in ["total", "valid"] {
            v["pixels"][k] = (v["pixels"][k].as_u64().unwrap() + big).into();
        }
        for c in v["classes"].as_array_mut().unwrap() {
            c["tn"] = (c["tn"].as_u64().unwrap() + big).into();
        }
        for c in v["sweep"]["classes"].as_array_mut().unwrap() {
            c["negatives"] = (c["negatives"].as_u64().unwrap() + big).into();
        }
    };
    let cases: Vec<(&str, Edit, Edit, usize)> = vec![
        (
            "counts summing past 2^64",
            Box::new(grow),
            Box::new(grow),
            2,
        ),
        (
            "sweep counts past the class's pixels",
            Box::new(move |v| {
                let c = &mut v["sweep"]["classes"][0];
                let pos = c["positives"].as_u64().unwrap();
                let tp0 = c["tp"][0].as_u64().unwrap();
                c["positives"] = (pos + big + 1).into();
                c["tp"][0] = (tp0 + big + 1).into();
            }),
            Box::new(|_| {}),
            1,
        ),
        (
            "a shortened tp list",
            Box::new(|_| {}),
            Box::new(|v| {
                v["sweep"]["classes"][1]["tp"].as_array_mut().unwrap().pop();
            }),
            2,
        ),
        (
            "per-image image counts past the images scored",
            Box::new(|v| v["partial"]["per_image"]["images"] = u64::MAX.into()),
            Box::new(|_| {}),
            1,
        ),
        (
            "a renamed class",
            Box::new(|_| {}),
            Box::new(|v| v["classes"][1]["name"] = "x".into()),
            2,
        ),
        (
            "reordered classes",
            Box::new(|_| {}),
            Box::new(|v| v["classes"].as_array_mut().unwrap().swap(0, 2)),
            2,
        ),
        (
            "a missing class",
            Box::new(|_| {}),
            Box::new(|v| {
                v["classes"].as_array_mut().unwrap().pop();
            }),
            2,
        ),
        (
            "a renamed sweep class",
            Box::new(|v| v["sweep"]["classes"][2]["name"] = "zz".into()),
            Box::new(|_| {}),
            1,
        ),
    ];
    let mut failed = Vec::new();
    for (what, e1, e2, named) in cases {
        let (a, b) = (dir.join("edited1.json"), dir.join("edited2.json"));
        let (mut v1, mut v2) = (base[0].clone(), base[1].clone());
        e1(&mut v1);
        e2(&mut v2);
        write_json(&a, &v1);
        write_json(&b, &v2);
        let o = maskprep(&["merge", path_str(&a), path_str(&b), "-o", path_str(&merged)]);
        let name = if named == 1 { &a } else { &b };
        if code(&o) != 2 || !stderr(&o).contains(path_str(name)) {
            failed.push(format!(
                "{what}: exit {}, expected 2 naming `{}`:\n{}",
                code(&o),
                name.display(),
                stderr(&o)
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

// ------------------------------------------------------- issue 24, item 5

#[test]
fn a_sweep_to_a_stream_or_beside_another_writes_its_own_thresholds() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (d, p) = scored_dataset(dir, 3);
    let l = labels(&d);
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let score = |out: &Path, levels: &str| {
        bin()
            .args([
                "-q",
                "score",
                "--truth",
                path_str(&d),
                "--pred",
                path_str(&p),
            ])
            .args(["--labels", &l, "--thresholds", levels, "--json", "-o"])
            .arg(out)
            .current_dir(&work)
            .output()
            .unwrap()
    };
    // A FIFO: nothing is written beside it (in its folder); the thresholds
    // go where they go for stdout, the working folder.
    let streams = dir.join("streams");
    std::fs::create_dir_all(&streams).unwrap();
    let fifo = streams.join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let o = score(&fifo, "0.3,0.5,0.7");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(reader.join().unwrap().contains("maskprep-score/1"));
    let beside: Vec<String> = std::fs::read_dir(&streams)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(beside, ["fifo"], "files were written beside the FIFO");
    assert!(work.join("thresholds.json").is_file());
    // Two sweeps into one folder: each keeps its own thresholds.
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let o = score(&out.join("a.json"), "0.3,0.5");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = score(&out.join("b.json"), "0.6,0.9");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mut written = Vec::new();
    for name in ["a", "b"] {
        for ext in ["json", "safetensors"] {
            let t = out.join(format!("{name}.thresholds.{ext}"));
            assert!(t.is_file(), "`{}` is missing", t.display());
            written.push(std::fs::read(&t).unwrap());
        }
    }
    assert_ne!(
        written[0], written[2],
        "the two sweeps' thresholds are one file"
    );
}

// ------------------------------------------------------- issue 24, item 6

/// A 16-bit gray PNG.
fn gray16_png(w: u32, h: u32, f: impl Fn(u32, u32) -> u16) -> Vec<u8> {
    let mut data = Vec::new();
    for y in 0..h {
        for x in 0..w {
            data.extend_from_slice(&f(x, y).to_be_bytes());
        }
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Sixteen);
    enc.write_header().unwrap().write_image_data(&data).unwrap();
    out
}

#[test]
fn merged_stats_keep_the_undeclared_codes_that_parts_summed() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("D");
    std::fs::create_dir_all(d.join("masks")).unwrap();
    let l = d.join("labels.toml");
    std::fs::write(&l, "kind = \"index\"\nclasses = [\"a\", \"b\"]\n").unwrap();
    // Two masks of 2048 distinct undeclared codes each (none shared).
    for k in 0..2u32 {
        let png = gray16_png(64, 32, |x, y| (10 + k * 5000 + y * 64 + x) as u16);
        std::fs::write(d.join(format!("masks/{k}.png")), png).unwrap();
    }
    let mut parts = Vec::new();
    for i in 1..=2 {
        let p = tmp.path().join(format!("{i}.json"));
        let o = maskprep(&[
            "-q",
            "stats",
            path_str(&d),
            "--labels",
            path_str(&l),
            "--partition",
            &format!("{i}/2"),
            "--json",
            "-o",
            path_str(&p),
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        parts.push(p);
    }
    let o = maskprep(&["merge", path_str(&parts[0]), path_str(&parts[1]), "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    let listed: Vec<&serde_json::Value> = v["undeclared"].as_array().unwrap().iter().collect();
    let listed_pixels: u64 = listed.iter().map(|u| u["pixels"].as_u64().unwrap()).sum();
    let rest = &v["undeclared_rest"];
    assert_eq!(
        listed_pixels + rest["pixels"].as_u64().unwrap_or(0),
        v["pixels"]["undeclared"].as_u64().unwrap(),
        "listed and summed undeclared pixels must add up: {rest}"
    );
    assert_eq!(
        listed.len() as u64 + rest["codes"].as_u64().unwrap_or(0),
        4096,
        "{rest}"
    );
    let warnings = v["warnings"].to_string();
    assert!(warnings.contains("4096 undeclared code"), "{warnings}");
}

// ------------------------------------------------------- issue 24, item 7

#[test]
fn a_huge_colour_file_is_refused_by_its_size_before_it_is_read() {
    for (name, head) in [
        ("class_dict.csv", "name,r,g,b\nroad,128,64,128\n"),
        ("labelmap.txt", "background:0,0,0::\nroad:128,64,128::\n"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let d = dataset(tmp.path(), 2);
        std::fs::remove_file(d.join("labels.toml")).unwrap();
        let path = d.join(name);
        std::fs::write(&path, head).unwrap();
        // 256 MiB of one line (sparse: nothing is written to disk).
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .set_len(256 << 20)
            .unwrap();
        let mut cmd = bin();
        cmd.args(["stats", path_str(&d)]);
        let (rc, _, err, kib) = common::run_measured(&mut cmd);
        assert_eq!(rc, 2, "{name}: {}", &err[..err.len().min(2000)]);
        assert!(
            err.contains(name) && err.contains("expected a label map of at most"),
            "{name}: {}",
            &err[..err.len().min(2000)]
        );
        assert!(kib < 100 * 1024, "{name}: peak memory {kib} KiB");
    }
}

// ------------------------------------------------------- issue 24, item 8

#[test]
fn weights_inside_the_data_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = dataset(tmp.path(), 2);
    let l = labels(&d);
    for sub in ["masks/w", "images/w"] {
        let inside = d.join(sub);
        let o = maskprep(&[
            "weights",
            path_str(&d),
            "--labels",
            &l,
            "-o",
            path_str(&inside),
        ]);
        assert_eq!(code(&o), 2, "{sub}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("inside the data folder"),
            "{}",
            stderr(&o)
        );
        assert!(!inside.exists(), "`{sub}` was written");
    }
}

// ------------------------------------------------------- issue 24, item 9

#[test]
fn a_class_dict_with_a_repeated_colour_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = dataset(tmp.path(), 2);
    std::fs::remove_file(d.join("labels.toml")).unwrap();
    let csv = d.join("class_dict.csv");
    std::fs::write(&csv, "name,r,g,b\nroad,255,0,0\ncar,255,0,0\nsky,0,0,255\n").unwrap();
    for args in [
        vec!["stats", path_str(&d)],
        vec!["stats", path_str(&d), "--labels", path_str(&csv)],
    ] {
        let o = maskprep(&args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("`#ff0000` is used twice"),
            "{}",
            stderr(&o)
        );
    }
}

// ------------------------------------------------------ issue 24, item 10

#[test]
fn an_unreadable_map_file_of_the_dataset_is_an_error_not_a_guess() {
    type Plant = fn(&Path);
    let plants: [(&str, Plant); 3] = [
        ("labelmap.txt", |p| {
            std::os::unix::fs::symlink("gone.txt", p).unwrap()
        }),
        ("class_dict.csv", |p| std::fs::create_dir(p).unwrap()),
        ("label_colors.txt", |p| {
            std::os::unix::fs::symlink("/dev/zero", p).unwrap()
        }),
    ];
    for (name, plant) in plants {
        let tmp = tempfile::tempdir().unwrap();
        let d = dataset(tmp.path(), 2);
        std::fs::remove_file(d.join("labels.toml")).unwrap();
        // Read from the masks alone, the dataset is fine.
        let o = maskprep(&["-q", "stats", path_str(&d)]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        plant(&d.join(name));
        let o = maskprep(&["stats", path_str(&d)]);
        assert_eq!(code(&o), 2, "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains(name), "{name}: {}", stderr(&o));
    }
}

// ------------------------------------------------------ issue 24, item 11

#[test]
fn per_image_score_tables_hold_iou_at_full_precision() {
    use polars::prelude::{DataType, ParquetReader, SerReader};
    let tmp = tempfile::tempdir().unwrap();
    let (csv, parquet) = (tmp.path().join("rows.csv"), tmp.path().join("rows.parquet"));
    for table in [&csv, &parquet] {
        let o = maskprep(&[
            "-q",
            "score",
            "--truth",
            "fixtures/plates",
            "--pred",
            "fixtures/plates-pred",
            "--json",
            "--per-image",
            path_str(table),
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    let classes = ["qr_code", "scratch", "plate"];
    let exact = |tp: u64, fp: u64, fn_: u64| {
        (tp + fp + fn_ > 0).then(|| tp as f64 / (tp + fp + fn_) as f64)
    };
    // CSV: the text of each IoU reads back as the exact ratio.
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| head.iter().position(|h| *h == name).unwrap();
    let mut compared = 0;
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        for c in classes {
            let n = |what: &str| f[col(&format!("{what}:{c}"))].parse::<u64>().unwrap();
            let want = exact(n("tp"), n("fp"), n("fn"));
            let got = f[col(&format!("iou:{c}"))];
            match want {
                Some(w) => {
                    assert_eq!(got.parse::<f64>().unwrap(), w, "csv iou:{c} `{got}`");
                    compared += 1;
                }
                None => assert!(got.is_empty(), "csv iou:{c} `{got}`"),
            }
        }
    }
    assert!(compared > 10);
    // Parquet: float64 columns equal the exact ratios.
    let df = ParquetReader::new(std::fs::File::open(&parquet).unwrap())
        .finish()
        .unwrap();
    for c in classes {
        let get = |what: &str| {
            df.column(&format!("{what}:{c}"))
                .unwrap()
                .cast(&DataType::UInt64)
                .unwrap()
                .u64()
                .unwrap()
                .to_vec()
                .into_iter()
                .map(|v| v.unwrap())
                .collect::<Vec<u64>>()
        };
        let (tp, fp, fn_) = (get("tp"), get("fp"), get("fn"));
        let iou: Vec<Option<f64>> = df
            .column(&format!("iou:{c}"))
            .unwrap()
            .f64()
            .unwrap()
            .to_vec();
        for i in 0..iou.len() {
            assert_eq!(
                iou[i],
                exact(tp[i], fp[i], fn_[i]),
                "parquet iou:{c} row {i}"
            );
        }
    }
}

// ------------------------------------------------------ issue 24, item 13

#[test]
fn a_rerun_rehashes_kept_shards_and_rewrites_a_corrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let d = dataset(tmp.path(), 4);
    let l = labels(&d);
    let out = tmp.path().join("sh");
    let run = || {
        let o = maskprep(&["shards", path_str(&d), "--labels", &l, "-o", path_str(&out)]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        o
    };
    run();
    let shard = out.join("train/train-000000.tar");
    let mut bytes = std::fs::read(&shard).unwrap();
    let len = bytes.len();
    bytes[len / 3] ^= 0x5a;
    std::fs::write(&shard, &bytes).unwrap();
    let o = run();
    assert!(
        !stderr(&o).contains("kept from an earlier run"),
        "a corrupted shard was kept: {}",
        stderr(&o)
    );
    let v = maskprep(&["shards", "verify", path_str(&out)]);
    assert_eq!(code(&v), 0, "{}", stderr(&v));
}

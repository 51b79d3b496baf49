//! Object storage against a real S3 API: a `moto` server on 127.0.0.1
//! (from the test venv, started and stopped by each test), filled with
//! boto3. Every stage run on the bucket must write what the same stage
//! writes from the local folder, byte for byte once the two locations'
//! names are put aside; store errors must give the documented exit codes.
//!
//! Built only with the `store` feature (`cargo test --features store
//! --test store`, as `.ci/run` does).
#![cfg(feature = "store")]

mod common;

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{code, path_str, python, root, stderr};

/// A moto S3 server on a free loopback port, killed when dropped.
struct Server {
    child: Child,
    endpoint: String,
}

impl Server {
    /// `auth`: check credentials (moto's IAM), so unknown keys are refused.
    fn start(auth: bool) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let bin = python().parent().expect("venv bin").join("moto_server");
        let mut cmd = Command::new(&bin);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if auth {
            cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", "0");
        }
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot start `{}` ({e}); run `bash .ci/run`", bin.display())
        });
        let server = Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "moto_server did not listen on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }

    /// Runs `tests/python/s3.py` against this server.
    fn s3(&self, args: &[&str]) {
        let script = root().join("tests/python/s3.py");
        let o = Command::new(python())
            .arg(script)
            .arg(&self.endpoint)
            .args(args)
            .envs(self.env())
            .output()
            .expect("run s3.py");
        assert!(
            o.status.success(),
            "s3.py {args:?} failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    fn maskprep(&self, args: &[&str]) -> Output {
        self.maskprep_env(args, &[])
    }

    fn maskprep_env(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_maskprep"))
            .args(args)
            .current_dir(root())
            .envs(self.env())
            .envs(extra.iter().copied())
            .output()
            .expect("run maskprep")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ok(o: &Output, what: &str) {
    assert_eq!(code(o), 0, "{what} failed:\n{}", stderr(o));
}

/// Every file under `dir` by relative path (but shard resume state), text
/// files with `names` replaced (each location's own spelling by one token).
fn tree(dir: &Path, names: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.expect("walk");
        if !e.file_type().is_file() {
            continue;
        }
        let rel = e
            .path()
            .strip_prefix(dir)
            .expect("under dir")
            .to_string_lossy()
            .into_owned();
        // Resume records hold file times; the lock is a local folder's.
        if rel.contains(".maskprep/") {
            continue;
        }
        let mut bytes = std::fs::read(e.path()).expect("read");
        if let Ok(mut text) = String::from_utf8(bytes.clone()) {
            for (from, to) in names {
                text = text.replace(from, to);
            }
            bytes = text.into_bytes();
        }
        out.insert(rel, bytes);
    }
    out
}

/// A weights README with the file it loads put aside: a folder's loads the
/// file where it is, a bucket's its downloaded copy (and says so).
fn readme_without_location(text: &[u8]) -> Vec<u8> {
    let mut t = String::from_utf8_lossy(text).into_owned();
    if let Some(at) = t.find("Download `weights.safetensors`")
        && let Some(len) = t[at..].find("\n\n")
    {
        t.replace_range(at..at + len + 2, "");
    }
    if let Some(at) = t.find("load_file(\"")
        && let Some(len) = t[at + 11..].find('"')
    {
        t.replace_range(at + 11..at + 11 + len, "WEIGHTS");
    }
    t.into_bytes()
}

fn assert_same(local: &Path, remote: &Path, local_names: &[(&str, &str)], names: &[(&str, &str)]) {
    let mut a = tree(local, local_names);
    let mut b = tree(remote, names);
    for t in [&mut a, &mut b] {
        for (k, v) in t.iter_mut() {
            if k.ends_with("weights/README.md") {
                *v = readme_without_location(v);
            }
        }
    }
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "the bucket's output files differ from the folder's"
    );
    for (k, v) in &a {
        assert!(
            *v == b[k],
            "`{k}` differs between the folder run and the bucket run:\n--- folder\n{}\n--- bucket\n{}",
            String::from_utf8_lossy(v),
            String::from_utf8_lossy(&b[k])
        );
    }
}

#[test]
fn every_stage_on_a_bucket_writes_what_it_writes_from_the_folder() {
    let server = Server::start(false);
    for f in ["plates", "plates-pred", "voc", "index"] {
        let local = root().join("fixtures").join(f);
        server.s3(&["upload", "data", path_str(&local), &format!("fixtures/{f}")]);
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let out_s = path_str(&out).to_string();
    let down = tmp.path().join("down");
    // Location names: the folder's, the bucket's, each by one token.
    let folder_pipeline = path_str(&tmp.path().join("pipeline-folder.toml")).to_string();
    let bucket_pipeline = path_str(&tmp.path().join("pipeline-bucket.toml")).to_string();
    let local_names = [
        (folder_pipeline.as_str(), "PIPELINE"),
        (out_s.as_str(), "OUT"),
        ("fixtures/", "DATA/"),
    ];
    let names = [
        (bucket_pipeline.as_str(), "PIPELINE"),
        ("s3://data/out", "OUT"),
        ("s3://data/fixtures/", "DATA/"),
    ];

    // stats (JSON, per-image table) and weights, on three layouts.
    for f in ["plates", "voc", "index"] {
        let (l, r) = (format!("fixtures/{f}"), format!("s3://data/fixtures/{f}"));
        for (src, o) in [
            (&l, format!("{out_s}/{f}")),
            (&r, format!("s3://data/out/{f}")),
        ] {
            let run = |args: &[&str]| {
                let o = server.maskprep(args);
                assert!(code(&o) <= 1, "{args:?} failed:\n{}", stderr(&o));
            };
            run(&[
                "stats",
                src,
                "-q",
                "--json",
                "-o",
                &format!("{o}/stats.json"),
            ]);
            run(&["stats", src, "-q", "-o", &format!("{o}/table.txt")]);
            run(&["stats", src, "-q", "--per-image", &format!("{o}/rows.csv")]);
            run(&["weights", src, "-q", "-o", &format!("{o}/weights")]);
            run(&["report", src, "-q", "-o", &format!("{o}/report")]);
        }
    }
    // shards, then `shards verify` on the bucket.
    ok(
        &server.maskprep(&[
            "shards",
            "fixtures/plates",
            "-q",
            "-o",
            &format!("{out_s}/shards"),
        ]),
        "shards (folder)",
    );
    let s = server.maskprep(&[
        "shards",
        "s3://data/fixtures/plates",
        "-q",
        "-o",
        "s3://data/out/shards",
    ]);
    ok(&s, "shards (bucket)");
    ok(
        &server.maskprep(&["shards", "verify", "s3://data/out/shards"]),
        "shards verify (bucket)",
    );
    // A rerun resumes from the shard already in the bucket.
    let again = server.maskprep(&[
        "shards",
        "s3://data/fixtures/plates",
        "-o",
        "s3://data/out/shards",
    ]);
    ok(&again, "shards rerun (bucket)");
    let local_again = server.maskprep(&[
        "shards",
        "fixtures/plates",
        "-o",
        &format!("{out_s}/shards"),
    ]);
    ok(&local_again, "shards rerun (folder)");
    assert!(
        stderr(&again).contains("1 kept from an earlier run"),
        "the rerun did not resume: {}",
        stderr(&again)
    );
    // score, PNG predictions.
    for (t, p, o) in [
        (
            "fixtures/plates",
            "fixtures/plates-pred",
            format!("{out_s}/score.json"),
        ),
        (
            "s3://data/fixtures/plates",
            "s3://data/fixtures/plates-pred",
            "s3://data/out/score.json".to_string(),
        ),
    ] {
        let r = server.maskprep(&["score", "--truth", t, "--pred", p, "-q", "--json", "-o", &o]);
        ok(&r, "score");
    }
    // A partitioned pipeline run, merged: parts and result in the bucket.
    let pipeline = |src: &str, out: &str| {
        let text = std::fs::read_to_string(root().join("pipelines/plates.toml"))
            .expect("pipeline")
            .replace("dir = \"fixtures/plates\"", &format!("dir = \"{src}\""))
            .replace(
                "labels = \"fixtures/plates/labels.toml\"",
                &format!("labels = \"{src}/labels.toml\""),
            )
            .replace("dir = \"out/plates\"", &format!("dir = \"{out}\""))
            .replace("[report]", "");
        let name = if out.starts_with("s3://") {
            "bucket"
        } else {
            "folder"
        };
        let path = tmp.path().join(format!("pipeline-{name}.toml"));
        std::fs::write(&path, text).expect("pipeline");
        path
    };
    for (src, run_out, merged) in [
        (
            "fixtures/plates",
            format!("{out_s}/run"),
            format!("{out_s}/merged"),
        ),
        (
            "s3://data/fixtures/plates",
            "s3://data/out/run".to_string(),
            "s3://data/out/merged".to_string(),
        ),
    ] {
        let p = pipeline(src, &run_out);
        for part in ["1/2", "2/2"] {
            ok(
                &server.maskprep(&["run", path_str(&p), "--partition", part, "-q"]),
                "run --partition",
            );
        }
        ok(
            &server.maskprep(&[
                "merge-run",
                &format!("{run_out}/parts"),
                "-o",
                &merged,
                "-q",
            ]),
            "merge-run",
        );
    }
    server.s3(&["download", "data", "out", path_str(&down)]);
    // The copied pipelines name their own locations; compare the rest.
    for dir in [&out, &down] {
        for part in ["1-of-2", "2-of-2"] {
            let f = dir.join("run/parts").join(part).join("pipeline.toml");
            assert!(f.is_file(), "`{}` is missing", f.display());
            std::fs::remove_file(f).expect("rm");
        }
    }
    assert_same(&out, &down, &local_names, &names);
}

#[test]
fn store_errors_give_the_documented_exit_codes() {
    let server = Server::start(false);
    server.s3(&[
        "upload",
        "data",
        path_str(&root().join("fixtures/index")),
        "index",
    ]);

    // A missing bucket: exit 2 with the store's own message.
    let o = server.maskprep(&["stats", "s3://no-such-bucket/masks", "-q"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("NoSuchBucket"), "{}", stderr(&o));
    // A prefix with nothing under it: exit 2, said plainly.
    let o = server.maskprep(&["stats", "s3://data/nothing-here", "-q"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("`s3://data/nothing-here` does not exist"),
        "{}",
        stderr(&o)
    );
    // A corrupt object is a skipped file: exit 1, named.
    let tmp = tempfile::tempdir().expect("tmp");
    let junk = tmp.path().join("junk.png");
    std::fs::write(&junk, b"\x89PNG\r\n\x1a\nnot really").expect("junk");
    server.s3(&["put", "data", "index/zz-corrupt.png", path_str(&junk)]);
    let o = server.maskprep(&["stats", "s3://data/index", "-q", "--json"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("s3://data/index/zz-corrupt.png"),
        "{}",
        stderr(&o)
    );
    server.s3(&["delete", "data", "index/zz-corrupt.png"]);

    // An object deleted between the listing and its fetch: skipped, exit 1.
    let flag = tmp.path().join("listed");
    let child = Command::new(env!("CARGO_BIN_EXE_maskprep"))
        .args(["stats", "s3://data/index", "-q", "--json"])
        .current_dir(root())
        .envs(server.env())
        .env("MASKPREP_TEST_STORE_LISTED", &flag)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    while !flag.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "maskprep never listed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server.s3(&["delete", "data", "index/p/001.png"]);
    std::fs::remove_file(&flag).expect("release maskprep");
    let o = child.wait_with_output().expect("wait");
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("s3://data/index/p/001.png"),
        "{}",
        stderr(&o)
    );
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(doc["files"]["masks_read"], 3, "{doc}");
    assert_eq!(doc["files"]["masks_found"], 4, "{doc}");

    // Refused credentials (a server that checks them): exit 2, the store's message.
    let strict = Server::start(true);
    let o = strict.maskprep(&["stats", "s3://data/index", "-q"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("InvalidAccessKeyId") || stderr(&o).contains("403"),
        "{}",
        stderr(&o)
    );
}

/// The listing is sorted and partitions take every N-th key of it, as for
/// a folder: the pieces of a bucket are the pieces of the folder.
#[test]
fn partitions_of_a_bucket_are_the_partitions_of_the_folder() {
    let server = Server::start(false);
    let local = root().join("fixtures/voc");
    server.s3(&["upload", "data", path_str(&local), "voc"]);
    for part in ["1/3", "2/3", "3/3"] {
        let a = server.maskprep(&["stats", "fixtures/voc", "-q", "--json", "--partition", part]);
        let b = server.maskprep(&[
            "stats",
            "s3://data/voc",
            "-q",
            "--json",
            "--partition",
            part,
        ]);
        ok(&a, "stats folder");
        ok(&b, "stats bucket");
        let (a, b) = (common::stdout(&a), common::stdout(&b));
        assert_eq!(
            a.replace("\"fixtures/voc", "\"DATA"),
            b.replace("\"s3://data/voc", "\"DATA"),
            "partition {part}"
        );
    }
}

/// Layout discovery and label-map detection on real datasets' layouts (VOC,
/// Cityscapes, ADE20K, CamVid's U-Net-style folders) read a bucket as they
/// read the folder: the same masks, the same map, the same numbers, and the
/// same account on stderr.
#[test]
fn real_layouts_are_found_in_a_bucket_as_in_a_folder() {
    let Some(ext) = common::external() else {
        return;
    };
    let server = Server::start(false);
    let sets = [
        ("voc", "datumaro/tests/assets/voc_dataset/voc_dataset1"),
        (
            "cityscapes",
            "datumaro/tests/assets/cityscapes_dataset/dataset",
        ),
        ("ade20k", "datumaro/tests/assets/ade20k2020_dataset/dataset"),
        ("mmseg", "mmsegmentation/tests/data/pseudo_dataset"),
        ("camvid", "segnet-camvid/CamVid"),
    ];
    for (name, rel) in sets {
        let local = ext.path(rel);
        server.s3(&["upload", "data", path_str(&local), name]);
        let url = format!("s3://data/{name}");
        let a = server.maskprep(&["stats", path_str(&local), "--json"]);
        let b = server.maskprep(&["stats", &url, "--json"]);
        assert_eq!(code(&a), code(&b), "{name}: {}\n{}", stderr(&a), stderr(&b));
        let same = |o: &Output, from: &str| {
            let text = format!("{}\n{}", common::stdout(o), stderr(o));
            text.replace(from, "DATA")
        };
        assert_eq!(
            same(&a, path_str(&local)),
            same(&b, &url),
            "{name}: the bucket is read differently from the folder"
        );
    }
}

#[test]
fn annotation_exports_in_a_bucket_read_as_in_a_folder() {
    let server = Server::start(false);
    let tmp = tempfile::tempdir().expect("tempdir");
    for (name, script, layout) in [
        ("roboflow", "coco_e2e.py", "roboflow"),
        ("detectron2", "coco_e2e.py", "detectron2"),
        ("airbus", "rle_e2e.py", "airbus"),
    ] {
        let local = tmp.path().join(name);
        common::run_python(script, &["gen", layout, path_str(&local), "5"]);
        server.s3(&["upload", "data", path_str(&local), name]);
        let url = format!("s3://data/{name}");
        let a = server.maskprep(&["stats", path_str(&local), "--json"]);
        let b = server.maskprep(&["stats", &url, "--json"]);
        ok(&a, name);
        assert_eq!(code(&a), code(&b), "{name}: {}\n{}", stderr(&a), stderr(&b));
        let same = |o: &Output, from: &str| {
            let text = format!("{}\n{}", common::stdout(o), stderr(o));
            text.replace(from, "DATA")
        };
        assert_eq!(
            same(&a, path_str(&local)),
            same(&b, &url),
            "{name}: the bucket is read differently from the folder"
        );
    }
}

// ====================================================== issue 24 (round two)

/// Item 1: a mask object padded far past what its header allows is refused
/// from its first bytes, never fetched whole.
#[test]
fn a_padded_mask_object_is_refused_without_being_fetched_whole() {
    let server = Server::start(false);
    server.s3(&[
        "upload",
        "data",
        path_str(&root().join("fixtures/index/p")),
        "bigobj/masks",
    ]);
    let tmp = tempfile::tempdir().expect("tmp");
    // A valid 256x192 gray PNG header and image, then zeros to 128 MiB.
    let padded = tmp.path().join("zz.png");
    let mut png = Vec::new();
    let mut enc = png::Encoder::new(&mut png, 256, 192);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()
        .and_then(|mut w| w.write_image_data(&vec![1u8; 256 * 192]))
        .expect("png");
    std::fs::write(&padded, &png).expect("write");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&padded)
        .and_then(|f| f.set_len(128 << 20))
        .expect("pad");
    server.s3(&["put", "data", "bigobj/masks/zz.png", path_str(&padded)]);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_maskprep"));
    cmd.args(["stats", "s3://data/bigobj", "--json"])
        .current_dir(root())
        .envs(server.env());
    let (rc, out, err, kib) = common::run_measured(&mut cmd);
    assert_eq!(rc, 1, "{err}");
    assert!(
        err.contains("bigobj/masks/zz.png") && err.contains("far more than a 256x192 PNG"),
        "{err}"
    );
    let doc: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(doc["files"]["masks_read"], 3, "{doc}");
    assert!(
        kib < 100 * 1024,
        "peak memory {kib} KiB for a 128 MiB object"
    );
}

/// Item 2: the local temporary file of an upload is created new, never
/// through a link planted for the process's id.
#[test]
fn an_upload_never_writes_through_a_planted_temporary_link() {
    let server = Server::start(false);
    server.s3(&[
        "upload",
        "data",
        path_str(&root().join("fixtures/index/p")),
        "p",
    ]);
    let tmp = tempfile::tempdir().expect("tmp");
    let victim = tmp.path().join("victim.txt");
    std::fs::write(&victim, "precious").expect("victim");
    let script = format!(
        "ln -s '{}' \"$TMPDIR/maskprep-upload-$$-0\" && exec '{}' -q stats fixtures/plates --json -o s3://data/out/x.json",
        victim.display(),
        env!("CARGO_BIN_EXE_maskprep")
    );
    let o = Command::new("sh")
        .args(["-c", &script])
        .current_dir(root())
        .envs(server.env())
        .env("TMPDIR", tmp.path())
        .output()
        .expect("sh");
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "precious",
        "the upload went through a planted link: {}",
        stderr(&o)
    );
    ok(&o, "stats -o s3://");
}

/// Item 3: keys that are no usable path (`..`, `.`, `//`, a control
/// character) are skipped and listed where they would be data, ignored
/// elsewhere; they never stop a job.
#[test]
fn odd_object_keys_are_skipped_and_listed_not_fatal() {
    let server = Server::start(false);
    server.s3(&[
        "upload",
        "data",
        path_str(&root().join("fixtures/plates")),
        "odd",
    ]);
    let tmp = tempfile::tempdir().expect("tmp");
    let one = tmp.path().join("one");
    std::fs::write(&one, "x").expect("one");
    let in_masks = [
        "odd/masks/../evil.png",
        "odd/masks//double.png",
        "odd/masks/ctl\u{1}.png",
    ];
    for key in in_masks
        .iter()
        .chain(&["odd/notes/./x.txt", "odd-out/../y.json"])
    {
        server.s3(&["put", "data", key, path_str(&one)]);
    }
    let o = server.maskprep(&["stats", "s3://data/odd", "--json"]);
    assert_eq!(code(&o), 1, "stats: {}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(doc["files"]["masks_read"], 8, "{doc}");
    let bad = doc["files"]["bad"].to_string();
    for name in ["evil.png", "double.png", "ctl"] {
        assert!(bad.contains(name), "`{name}` is not listed: {bad}");
    }
    assert!(!bad.contains("x.txt"), "{bad}");
    let o = server.maskprep(&[
        "score",
        "--truth",
        "s3://data/odd",
        "--pred",
        "s3://data/odd/masks",
        "-q",
    ]);
    assert_eq!(code(&o), 1, "score: {}", stderr(&o));
    let o = server.maskprep(&["shards", "s3://data/odd", "-q", "-o", "s3://data/odd-out"]);
    assert_eq!(code(&o), 1, "shards: {}", stderr(&o));
    ok(
        &server.maskprep(&["shards", "verify", "s3://data/odd-out"]),
        "shards verify",
    );
}

/// Items 8 and 12: outputs inside the data and outputs named like a folder
/// are refused; a weights README in a bucket says how to load the file.
#[test]
fn bucket_outputs_are_checked_and_their_readme_loads_a_local_copy() {
    let server = Server::start(false);
    server.s3(&[
        "upload",
        "data",
        path_str(&root().join("fixtures/plates")),
        "plates",
    ]);
    let o = server.maskprep(&[
        "weights",
        "s3://data/plates",
        "-o",
        "s3://data/plates/masks/w",
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("inside the data folder"),
        "{}",
        stderr(&o)
    );
    let o = server.maskprep(&[
        "stats",
        "s3://data/plates",
        "--json",
        "-o",
        "s3://data/out/dir/",
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("expected a file name"),
        "{}",
        stderr(&o)
    );
    ok(
        &server.maskprep(&["weights", "s3://data/plates", "-q", "-o", "s3://data/out/w"]),
        "weights",
    );
    let tmp = tempfile::tempdir().expect("tmp");
    server.s3(&["download", "data", "out", path_str(tmp.path())]);
    assert!(
        !tmp.path().join("dir").exists(),
        "an object `out/dir` was written"
    );
    let readme = std::fs::read_to_string(tmp.path().join("w/README.md")).expect("readme");
    assert!(!readme.contains("load_file(\"s3://"), "{readme}");
    assert!(
        readme.contains("load_file(\"weights.safetensors\""),
        "{readme}"
    );
}

/// Item 13: a rerun re-hashes the shards it keeps; a second writer on one
/// prefix is detected before it writes over the first's set.
#[test]
fn bucket_shards_rehash_on_resume_and_detect_a_second_writer() {
    let server = Server::start(false);
    server.s3(&[
        "upload",
        "data",
        path_str(&root().join("fixtures/plates")),
        "plates",
    ]);
    let shards = |out: &str, extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec![
            "shards",
            "s3://data/plates",
            "-o",
            out,
            "--samples-per-shard",
            "3",
        ];
        args.extend_from_slice(extra);
        server.maskprep_env(&args, env)
    };
    ok(&shards("s3://data/sh", &[], &[]), "shards");
    let tmp = tempfile::tempdir().expect("tmp");
    let down = tmp.path().join("down");
    server.s3(&["download", "data", "sh", path_str(&down)]);
    let shard = down.join("train/train-000000.tar");
    let mut bytes = std::fs::read(&shard).expect("shard");
    let n = bytes.len();
    bytes[n / 3] ^= 0x5a;
    std::fs::write(&shard, &bytes).expect("write");
    server.s3(&["put", "data", "sh/train/train-000000.tar", path_str(&shard)]);
    let again = shards("s3://data/sh", &[], &[]);
    ok(&again, "shards rerun");
    ok(
        &server.maskprep(&["shards", "verify", "s3://data/sh"]),
        "verify after the rerun",
    );

    // Writer A pauses once it holds the prefix; B runs whole meanwhile.
    let flag = tmp.path().join("locked");
    let a = Command::new(env!("CARGO_BIN_EXE_maskprep"))
        .args([
            "shards",
            "s3://data/plates",
            "-o",
            "s3://data/two",
            "--samples-per-shard",
            "2",
        ])
        .current_dir(root())
        .envs(server.env())
        .env("MASKPREP_TEST_SHARDS_LOCKED", &flag)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    let mut a = Some(a);
    while !flag.exists() && start.elapsed() < Duration::from_secs(60) {
        if let Some(Ok(Some(_))) = a.as_mut().map(|c| c.try_wait()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let b = shards("s3://data/two", &[], &[]);
    let _ = std::fs::remove_file(&flag);
    let a = a.take().expect("a").wait_with_output().expect("wait");
    ok(&b, "writer B");
    assert_eq!(code(&a), 2, "writer A was not stopped: {}", stderr(&a));
    assert!(stderr(&a).contains("another run"), "{}", stderr(&a));
    ok(
        &server.maskprep(&["shards", "verify", "s3://data/two"]),
        "verify of B's set",
    );
}

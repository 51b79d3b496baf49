//! Helpers shared by the integration tests: run the built binary, find the
//! Python test interpreter, make temp dirs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(rel: &str) -> PathBuf {
    root().join("fixtures").join(rel)
}

/// `../shared/fixtures-external/<rel>` (present in CI and on dev machines).
pub fn external(rel: &str) -> PathBuf {
    let p = root().join("../shared/fixtures-external").join(rel);
    assert!(
        p.exists(),
        "`{}` is missing; the tests expect `../shared` beside the project",
        p.display()
    );
    p
}

/// Runs maskprep with `args`; returns its output.
pub fn maskprep(args: &[&str]) -> Output {
    maskprep_env(args, &[])
}

pub fn maskprep_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_maskprep"));
    cmd.args(args).current_dir(root());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run maskprep")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The Python interpreter with the test tools (numpy, Pillow, ...):
/// `MASKPREP_PYTHON`, else `target/venv/bin/python` (made by `.ci/run`).
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("MASKPREP_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = root().join("target/venv/bin/python");
    assert!(
        venv.exists(),
        "no Python test interpreter: run `bash .ci/run` once (it makes target/venv), or set MASKPREP_PYTHON"
    );
    venv
}

/// Runs `tests/python/<script>` with `args`; panics with its output on failure.
pub fn run_python(script: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg(root().join("tests/python").join(script))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run python");
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(out.status.success(), "{script} failed:\n{text}");
    text
}

pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\n{}", stdout(o), stderr(o)))
}

/// Runs `cmd` to its end with stdout and stderr kept; returns its exit code
/// (-1 when killed), stdout, stderr and peak resident memory in KiB
/// (`wait4`'s `ru_maxrss` of that process alone).
#[expect(
    clippy::zombie_processes,
    reason = "the child is reaped by `wait4`, which also gives its peak memory"
)]
pub fn run_measured(cmd: &mut Command) -> (i32, String, String, i64) {
    use std::process::Stdio;
    let out = tempfile::tempfile().expect("temp file");
    let err = tempfile::tempfile().expect("temp file");
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone().expect("dup"))
        .stderr(err.try_clone().expect("dup"));
    let child = cmd.spawn().expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet waited for; both pointers are valid.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(rc, pid, "wait4");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let read = |mut f: std::fs::File| {
        use std::io::{Read, Seek};
        let mut s = Vec::new();
        f.seek(std::io::SeekFrom::Start(0)).expect("seek");
        f.read_to_end(&mut s).expect("read");
        String::from_utf8_lossy(&s).into_owned()
    };
    (code, read(out), read(err), usage.ru_maxrss)
}

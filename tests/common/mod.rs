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

/// Names the folder of other projects' fixtures (default:
/// `../shared/fixtures-external` beside the project).
pub const EXTERNAL_ENV: &str = "MASKPREP_EXTERNAL_FIXTURES";
/// Set (to anything but `0` or empty): absent external fixtures fail the
/// tests instead of skipping them (`.ci/run` sets it when they exist).
pub const REQUIRE_EXTERNAL_ENV: &str = "MASKPREP_REQUIRE_EXTERNAL";

/// Other projects' fixtures (`../shared/fixtures-external`): files that
/// do not ship with this repository.
pub struct External {
    root: PathBuf,
}

impl External {
    /// `<root>/<rel>`; it must exist.
    pub fn path(&self, rel: &str) -> PathBuf {
        let p = self.root.join(rel);
        assert!(
            p.exists(),
            "`{}` is missing from the external fixtures at `{}`",
            p.display(),
            self.root.display()
        );
        p
    }
}

/// Where the external fixtures are looked for.
pub fn external_root() -> PathBuf {
    match std::env::var_os(EXTERNAL_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => root().join("../shared/fixtures-external"),
    }
}

/// The external fixtures, or `None` when they are absent: the calling test
/// returns at once (skipped). Each test binary says once, at exit, how many
/// tests were skipped and why. With [`REQUIRE_EXTERNAL_ENV`] set, absence
/// fails the test. Call it once per test.
pub fn external() -> Option<External> {
    let root = external_root();
    if root.is_dir() {
        return Some(External { root });
    }
    let required = std::env::var(REQUIRE_EXTERNAL_ENV).is_ok_and(|v| !v.is_empty() && v != "0");
    assert!(
        !required,
        "`{}` is missing, and {REQUIRE_EXTERNAL_ENV} says the external fixtures must be there",
        root.display()
    );
    skipped::count();
    None
}

/// The count of tests skipped for want of external fixtures, said once at
/// exit (libtest captures what tests print; this is not captured).
mod skipped {
    use std::io::Write;
    use std::sync::Once;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static SKIPPED: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "C" {
        fn atexit(f: extern "C" fn()) -> std::ffi::c_int;
    }

    extern "C" fn say() {
        let n = SKIPPED.load(Ordering::SeqCst);
        let _ = writeln!(
            std::io::stderr(),
            "note: {n} external-fixture test{} skipped: `{}` does not exist (other projects' \
             files; point {} at them, or set {}=1 to fail instead)",
            if n == 1 { "" } else { "s" },
            super::external_root().display(),
            super::EXTERNAL_ENV,
            super::REQUIRE_EXTERNAL_ENV,
        );
    }

    pub fn count() {
        static AT_EXIT: Once = Once::new();
        SKIPPED.fetch_add(1, Ordering::SeqCst);
        AT_EXIT.call_once(|| {
            // SAFETY: `say` is a plain function that neither panics nor
            // unwinds; the C runtime calls it once, at exit.
            unsafe {
                atexit(say);
            }
        });
    }
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

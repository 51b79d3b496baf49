//! The code's seams, read from its own sources (like ripgrep's crates, where
//! the core cannot see the command line):
//! - only `main.rs`, `lib.rs` and `commands/mod.rs` name `crate::commands`:
//!   a command never calls another (`super::` or `crate::commands::` in a
//!   command's file); what two commands share lives in a stage;
//! - `labels` names no stage above it (`stats`, `weights`, `score`,
//!   `shards`, `check`, `report`), and `stats` never names `weights`: the
//!   stats document previews pos_weight through `weight_rules`, below both;
//! - `score`, `stats`, `weights`, `shards`, `check` never name `crate::report`;
//! - `report` names no decoder and no file source (`crate::decode`,
//!   `crate::source`, `crate::dataset`): it draws what it is given;
//! - `burn` appears only in `score/gpu.rs`;
//! - `object_store` and `tokio` appear only in `store.rs`: every other
//!   module reads and writes through its functions, local or remote alike;
//! - no function is longer than [`MAX_FN_LINES`] lines, from its `fn` line
//!   to its closing brace (STYLE.md: a function longer than a screen or
//!   two is several functions).
//!
//! The checker runs on the real tree and, to show it can fail, on a small
//! fake tree with one violation of each rule.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, as (path relative to `src/`, text).
fn sources(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((rel, std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The top-level module a source file belongs to (`score/cpu.rs` -> `score`).
fn module_of(rel: &str) -> &str {
    let first = rel.split('/').next().unwrap_or(rel);
    first.strip_suffix(".rs").unwrap_or(first)
}

/// The crate modules a file names: `use crate::x`, `crate::x::...`, and
/// `use crate::{x, y}` groups. Comments are skipped.
fn named_modules(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        out.push((n + 1, name));
                    }
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.push((n + 1, name));
            }
        }
    }
    out
}

/// Longest a function may be, counted from its `fn` line to the closing
/// brace at the `fn` line's indent, both included.
const MAX_FN_LINES: usize = 120;

/// The name of the function a line starts (`pub(crate) async fn name(`),
/// and the line's indent; `None` for any other line.
fn fn_start(line: &str) -> Option<(usize, &str)> {
    let rest = line.trim_start();
    let indent = line.len() - rest.len();
    let mut rest = rest;
    if let Some(r) = rest.strip_prefix("pub") {
        let r = match r.strip_prefix('(') {
            Some(inner) => &inner[inner.find(')')? + 1..],
            None => r,
        };
        rest = r.strip_prefix(' ')?;
    }
    for word in ["const ", "async ", "unsafe "] {
        rest = rest.strip_prefix(word).unwrap_or(rest);
    }
    let name = rest.strip_prefix("fn ")?;
    let end = name
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(name.len());
    (end > 0).then(|| (indent, &name[..end]))
}

/// Every function of `text` longer than [`MAX_FN_LINES`], as (line of its
/// `fn`, name, lines). A function ends at the first `}` line at its indent
/// after the line that opens its body; a declaration (`fn f();`) has none.
fn long_functions(text: &str) -> Vec<(usize, String, usize)> {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some((indent, name)) = fn_start(line) else {
            continue;
        };
        let Some(open) = (i..lines.len()).find(|&j| {
            let l = lines[j].trim_end();
            l.ends_with('{') || l.ends_with(';')
        }) else {
            continue;
        };
        if lines[open].trim_end().ends_with(';') {
            continue;
        }
        let close = (open + 1..lines.len())
            .find(|&k| {
                let l = lines[k];
                l.len() - l.trim_start().len() == indent && l[indent..].starts_with('}')
            })
            .unwrap_or(lines.len());
        let length = close - i + 1;
        if length > MAX_FN_LINES {
            out.push((i + 1, name.to_string(), length));
        }
    }
    out
}

/// Every broken rule in the tree at `src`, as `file:line: why`.
fn violations(src: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for (rel, text) in sources(src) {
        let module = module_of(&rel);
        for (line, named) in named_modules(&text) {
            let why = match (module, named.as_str()) {
                ("commands", "commands") if !rel.ends_with("commands/mod.rs") => {
                    Some("a command names another command")
                }
                ("main" | "lib" | "commands", _) => None,
                (_, "commands") => Some("a stage names `commands`"),
                ("labels", "stats" | "weights" | "score" | "shards" | "check" | "report") => {
                    Some("`labels` names a stage above it")
                }
                ("stats", "weights") => {
                    Some("`stats` names `weights` (pos_weight lives in `weight_rules`)")
                }
                ("score" | "stats" | "weights" | "shards" | "check", "report") => {
                    Some("a counting stage names `report`")
                }
                ("report", "decode" | "source" | "dataset") => {
                    Some("the report reads masks or files")
                }
                _ => None,
            };
            if let Some(why) = why {
                out.push(format!("{rel}:{line}: {why} (`crate::{named}`)"));
            }
        }
        if module == "commands" && !rel.ends_with("commands/mod.rs") {
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                if code.contains("super::") {
                    out.push(format!(
                        "{rel}:{}: a command names another command (`super::`)",
                        n + 1
                    ));
                }
            }
        }
        if rel != "score/gpu.rs" {
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                if code.contains("burn::") || code.contains("use burn") {
                    out.push(format!("{rel}:{}: burn outside `score/gpu.rs`", n + 1));
                }
            }
        }
        if rel != "store.rs" {
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                if ["object_store", "tokio"]
                    .iter()
                    .any(|c| code.contains(&format!("{c}::")))
                {
                    out.push(format!(
                        "{rel}:{}: an object-store client outside `store.rs`",
                        n + 1
                    ));
                }
            }
        }
        for (line, name, length) in long_functions(&text) {
            out.push(format!(
                "{rel}:{line}: function `{name}` is {length} lines; expected at most \
                 {MAX_FN_LINES} (split it into functions that read top-down)"
            ));
        }
    }
    out
}

/// A function of `n` lines from its `fn` line to its closing brace, with
/// a nested block and a nested function inside.
fn function_of(name: &str, n: usize) -> String {
    let mut s = format!("pub(crate) fn {name}(\n    x: u8,\n) -> u8 {{\n");
    s.push_str("    fn inner() {}\n    if x > 0 {\n        return x;\n    }\n");
    for _ in 0..n - 9 {
        s.push_str("    let _ = x;\n");
    }
    s.push_str("    x\n}\n");
    s
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn the_source_tree_keeps_its_seams() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(found.is_empty(), "seams broken:\n{}", found.join("\n"));
    // The layout the rules speak of exists.
    for must in ["commands", "dataset.rs", "output.rs", "cli", "pipeline.rs"] {
        assert!(src.join(must).exists(), "`src/{must}` is missing");
    }
}

#[test]
fn the_checker_finds_each_kind_of_violation() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "lib.rs",
        "pub mod commands;\nuse crate::commands::run;\n",
    );
    write(
        root,
        "commands/stats.rs",
        "use crate::report::html;\nuse crate::decode;\n",
    );
    write(root, "stats/scan.rs", "use crate::{decode, commands};\n");
    write(root, "commands/run.rs", "use super::score::run;\n");
    write(
        root,
        "commands/merge.rs",
        "fn f() { crate::commands::stats::exit_code(); }\n",
    );
    write(
        root,
        "commands/mod.rs",
        "mod run;\nuse crate::commands::run;\n",
    );
    write(
        root,
        "labels/detect.rs",
        "use crate::stats::doc::percent;\n",
    );
    write(root, "stats/doc.rs", "use crate::weights::PosWeightRule;\n");
    write(root, "stats/mod.rs", "use crate::weight_rules::rules;\n");
    write(
        root,
        "score/doc.rs",
        "fn f() { crate::report::score::WORST; }\n",
    );
    write(
        root,
        "report/score.rs",
        "use crate::decode::decode_frame;\n// use crate::source;\n",
    );
    write(
        root,
        "report/stats.rs",
        "use crate::stats::doc::StatsDoc;\n",
    );
    write(root, "score/cpu.rs", "use burn::tensor::Tensor;\n");
    write(root, "score/gpu.rs", "use burn::tensor::Tensor;\n");
    write(root, "shards/write.rs", "use object_store::ObjectStore;\n");
    write(root, "store.rs", "use object_store::ObjectStore;\n");
    // One line too many is too long; the longest allowed passes, as does a
    // declaration.
    let mut sizes = function_of("too_long", MAX_FN_LINES + 1);
    sizes.push_str(&function_of("just_fits", MAX_FN_LINES));
    sizes.push_str("trait T {\n    fn declared(&self);\n}\n");
    write(root, "stats/sizes.rs", &sizes);
    let found = violations(root);
    let expect = [
        "stats/scan.rs:1: a stage names `commands`",
        "commands/run.rs:1: a command names another command",
        "commands/merge.rs:1: a command names another command",
        "labels/detect.rs:1: `labels` names a stage above it",
        "stats/doc.rs:1: `stats` names `weights`",
        "score/doc.rs:1: a counting stage names `report`",
        "report/score.rs:1: the report reads masks or files",
        "score/cpu.rs:1: burn outside",
        "shards/write.rs:1: an object-store client outside",
        "stats/sizes.rs:1: function `too_long` is 121 lines; expected at most 120",
    ];
    for e in expect {
        assert!(
            found.iter().any(|f| f.starts_with(e)),
            "expected `{e}` in {found:#?}"
        );
    }
    // Commands may use anything, comments do not count, data types are fine.
    assert_eq!(found.len(), expect.len(), "{found:#?}");
}

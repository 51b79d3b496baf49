//! The committed `fixtures/` are exactly what `examples/fixtures.rs` writes:
//! regenerate into a temp dir and compare every file byte for byte.

mod common;

#[path = "../examples/fixtures.rs"]
#[allow(dead_code)]
mod generator;

use std::collections::BTreeMap;
use std::path::Path;

fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .filter(|e| e.file_name() != "README.md")
        .map(|e| {
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            (rel, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

#[test]
fn committed_fixtures_are_regenerated_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    generator::generate(dir.path());
    let fresh = files(dir.path());
    let committed = files(&common::root().join("fixtures"));
    assert_eq!(
        fresh.keys().collect::<Vec<_>>(),
        committed.keys().collect::<Vec<_>>(),
        "run `cargo run --example fixtures -- fixtures`"
    );
    for (name, bytes) in &fresh {
        assert!(
            &committed[name] == bytes,
            "`fixtures/{name}` differs from the generator's"
        );
    }
}

//! The annotation readers against the references people use: every pixel
//! of every category plane of generated COCO files equals the union of
//! pycocotools' `annToMask` (and its `mask.encode` string), and every pixel
//! of generated Kaggle CSV files equals the numpy `rle_decode` union. The
//! files are made by `tests/python/check_coco.py` / `check_csv.py` (the
//! venv's pycocotools), which also do the comparing.

mod common;

use std::collections::{BTreeMap, HashMap};

use maskprep::annotations::{
    CrowdMode, Export, Order, Raster, RasterScratch, coco, csv, rasterise, rle,
};
use serde_json::{Value, json};

use common::{path_str, run_python};

/// Checks what every raster promises: runs non-empty, maximal, summing to
/// H*W; sets sorted, distinct and all used.
fn check_raster(r: &Raster, what: &str) {
    let total: u64 = r.runs.iter().map(|&(_, n)| n).sum();
    assert_eq!(
        total,
        u64::from(r.width) * u64::from(r.height),
        "{what}: runs cover {total} pixels"
    );
    assert!(r.runs.iter().all(|&(_, n)| n > 0), "{what}: empty run");
    assert!(
        r.runs.windows(2).all(|w| w[0].0 != w[1].0),
        "{what}: runs not maximal"
    );
    let mut used = vec![false; r.sets.len()];
    for &(k, _) in &r.runs {
        used[k as usize] = true;
    }
    assert!(used.iter().all(|&u| u), "{what}: a set no run uses");
    assert_eq!(r.sets.len(), r.ignored.len());
    let mut keys: Vec<(&Vec<u32>, bool)> = r.sets.iter().zip(r.ignored.iter().copied()).collect();
    assert!(
        r.sets.iter().all(|s| s.windows(2).all(|w| w[0] < w[1])),
        "{what}: a set is not sorted"
    );
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), r.sets.len(), "{what}: a set appears twice");
}

fn intervals_json(iv: &[(u64, u64)]) -> Value {
    Value::Array(iv.iter().map(|&(s, e)| json!([s, e])).collect())
}

/// Row-major on-intervals of category `c`, through [`Raster::pixels`].
fn row_major(r: &Raster, c: u32) -> Vec<(u64, u64)> {
    let mut px = Vec::new();
    r.pixels(&mut px);
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (i, &k) in px.iter().enumerate() {
        if r.sets[k as usize].contains(&c) {
            let i = i as u64;
            match out.last_mut() {
                Some(last) if last.1 == i => last.1 += 1,
                _ => out.push((i, i + 1)),
            }
        }
    }
    out
}

/// Rasterises every image both ways; the JSON `check_coco.py compare` reads.
fn coco_results(export: &Export) -> Value {
    let (mut scratch, mut a, mut b) = (
        RasterScratch::default(),
        Raster::default(),
        Raster::default(),
    );
    let mut images = Vec::new();
    for img in &export.images {
        let what = format!("image {} ({})", img.id, img.file_name);
        rasterise(img, CrowdMode::AsCategory, &mut scratch, &mut a).expect(&what);
        rasterise(img, CrowdMode::Ignore, &mut scratch, &mut b).expect(&what);
        check_raster(&a, &what);
        check_raster(&b, &what);
        assert_eq!(a.order, Order::ColumnMajor);
        assert!(
            a.ignored.iter().all(|&i| !i),
            "{what}: ignored without Ignore"
        );
        let total = u64::from(img.width) * u64::from(img.height);
        let mut as_category = serde_json::Map::new();
        let mut ignore = serde_json::Map::new();
        for (c, cat) in export.categories.iter().enumerate() {
            let iv = a.category_intervals(c as u32);
            // The row-major plane holds the same pixels, transposed.
            let rm = row_major(&a, c as u32);
            let (h, w) = (u64::from(img.height), u64::from(img.width));
            let mut back: Vec<u64> = rm
                .iter()
                .flat_map(|&(s, e)| s..e)
                .map(|p| (p % w) * h + p / w)
                .collect();
            back.sort_unstable();
            let direct: Vec<u64> = iv.iter().flat_map(|&(s, e)| s..e).collect();
            assert_eq!(back, direct, "{what}: pixels() transposes category {c}");
            let counts = rle::intervals_counts(&iv, total);
            as_category.insert(
                cat.id.to_string(),
                json!({"runs": intervals_json(&iv), "string": rle::encode_string(&counts)}),
            );
            ignore.insert(
                cat.id.to_string(),
                intervals_json(&b.category_intervals(c as u32)),
            );
        }
        images.push(json!({
            "id": img.id,
            "objects": img.objects.len(),
            "as_category": as_category,
            "ignore": ignore,
            "ignored": intervals_json(&b.ignored_intervals()),
        }));
    }
    json!({ "images": images })
}

fn coco_round(seed: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("instances.json");
    run_python("check_coco.py", &["generate", path_str(&file), seed]);
    let export = coco::load(&file).unwrap();
    // The generator writes only objects pycocotools rasterises; the only
    // problems are short extra polygons left out (which add no pixels).
    for p in &export.problems {
        assert!(
            p.reason.contains("left out: it has"),
            "unexpected problem: {p:?}"
        );
    }
    assert_eq!(export.images.len(), 70);
    let ids: Vec<i64> = export.categories.iter().map(|c| c.id).collect();
    assert_eq!(ids, [1, 3, 7, 90, 91]);
    assert_eq!(export.categories[4].annotations, 0);
    let results = dir.path().join("results.json");
    std::fs::write(&results, coco_results(&export).to_string()).unwrap();
    let out = run_python(
        "check_coco.py",
        &["compare", path_str(&file), path_str(&results)],
    );
    assert!(out.contains("check_coco: OK"), "{out}");
}

#[test]
fn coco_planes_equal_pycocotools_ann_to_mask_seed_7() {
    coco_round("7");
}

#[test]
fn coco_planes_equal_pycocotools_ann_to_mask_seed_2024() {
    coco_round("2024");
}

#[test]
fn csv_planes_equal_numpy_rle_decode_in_every_layout() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_python("check_csv.py", &["generate", path_str(d), "11"]);
    let sizes: HashMap<String, (u32, u32)> = {
        let v: HashMap<String, [u32; 2]> =
            serde_json::from_str(&std::fs::read_to_string(d.join("sizes.json")).unwrap()).unwrap();
        v.into_iter().map(|(k, [w, h])| (k, (w, h))).collect()
    };
    let mut results = serde_json::Map::new();
    let files = [
        ("plain.csv", Order::ColumnMajor),
        ("joined.csv", Order::ColumnMajor),
        ("labels.csv", Order::ColumnMajor),
        ("columns.csv", Order::ColumnMajor),
        ("uw.csv", Order::ColumnMajor),
        ("rowmajor.csv", Order::RowMajor),
    ];
    for (name, order) in files {
        let path = d.join(name);
        let export = if name == "plain.csv" {
            // Sizes from the photos beside the CSV.
            let photos = d.join("train_images");
            csv::load(&path, order, |id| csv::photo_size(&photos.join(id)).ok())
        } else {
            csv::load(&path, order, |id| sizes.get(id).copied())
        }
        .unwrap();
        assert!(export.problems.is_empty(), "{name}: {:?}", export.problems);
        results.insert(name.to_string(), csv_results(&export, order, name));
    }
    let file = d.join("results.json");
    std::fs::write(&file, Value::Object(results).to_string()).unwrap();
    let out = run_python("check_csv.py", &["compare", path_str(d), path_str(&file)]);
    assert!(out.contains("check_csv: OK"), "{out}");
}

/// Per image, per class name: row-major on-intervals.
fn csv_results(export: &Export, order: Order, name: &str) -> Value {
    let (mut scratch, mut r) = (RasterScratch::default(), Raster::default());
    let mut images = BTreeMap::new();
    for img in &export.images {
        let what = format!("{name} {}", img.file_name);
        rasterise(img, CrowdMode::AsCategory, &mut scratch, &mut r).expect(&what);
        check_raster(&r, &what);
        if !img.objects.is_empty() {
            assert_eq!(r.order, order, "{what}");
        }
        let mut planes = serde_json::Map::new();
        for (c, cat) in export.categories.iter().enumerate() {
            planes.insert(cat.name.clone(), intervals_json(&row_major(&r, c as u32)));
        }
        images.insert(img.file_name.clone(), Value::Object(planes));
    }
    serde_json::to_value(images).unwrap()
}

/// A compressed RLE written by maskprep's encoder is read back by
/// pycocotools as the same mask, and pycocotools' own strings decode to
/// the same counts here (both directions through the real library).
#[test]
fn compressed_strings_round_trip_through_pycocotools() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = 0x1234_5678_9abc_def1u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut cases = Vec::new();
    for i in 0..200 {
        let (h, w) = (1 + next() % 300, 1 + next() % 300);
        let total = h * w;
        let mut counts = Vec::new();
        let mut left = total;
        while left > 0 {
            let c = match next() % 3 {
                0 => next() % 4,
                1 => next() % 50,
                _ => next() % (total / 2 + 1),
            }
            .min(left);
            counts.push(c as u32);
            left -= c;
        }
        if i % 7 == 0 {
            counts.insert(0, 0);
        }
        cases.push(json!({
            "size": [h, w],
            "counts": counts,
            "string": rle::encode_string(&counts),
        }));
    }
    let file = dir.path().join("strings.json");
    std::fs::write(&file, Value::Array(cases.clone()).to_string()).unwrap();
    let out = run_python("check_coco.py", &["strings", path_str(&file)]);
    // pycocotools' own encoding of each mask, decoded here.
    let line = out
        .lines()
        .find(|l| l.starts_with('['))
        .expect("a JSON list");
    let theirs: Vec<Value> = serde_json::from_str(line).unwrap();
    assert_eq!(theirs.len(), cases.len());
    for (case, s) in cases.iter().zip(&theirs) {
        let s = s.as_str().unwrap();
        let counts = rle::decode_string(s).unwrap();
        let mut iv = Vec::new();
        let sum = rle::counts_intervals(&counts, &mut iv);
        let size = case["size"].as_array().unwrap();
        let total = size[0].as_u64().unwrap() * size[1].as_u64().unwrap();
        assert_eq!(sum, total);
        let mine: Vec<u32> = serde_json::from_value(case["counts"].clone()).unwrap();
        let mut iv_mine = Vec::new();
        rle::counts_intervals(&mine, &mut iv_mine);
        let merged = rle::intervals_counts(&iv_mine, total);
        assert_eq!(counts, merged, "pycocotools string {s}");
        assert_eq!(rle::encode_string(&merged), s);
    }
}

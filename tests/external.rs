//! Real masks from other projects (`../shared/fixtures-external/`, see
//! `common::external`: skipped, and counted, where absent), checked against
//! `EXPECTED_COUNTS.json` (per-file histograms made with Pillow and numpy)
//! and the CamVid totals of `SOURCES.md`.

mod common;

use std::collections::BTreeMap;

use common::*;
use maskprep::decode::{MaskFormat, Scratch, read_hist};
use serde_json::Value;

fn expected(ext: &External) -> Value {
    let text = std::fs::read_to_string(ext.path("EXPECTED_COUNTS.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Our histogram keyed as EXPECTED_COUNTS keys it.
fn keyed(codes: &[(u32, u64)], format: MaskFormat) -> BTreeMap<String, u64> {
    codes
        .iter()
        .map(|&(c, n)| {
            let key = match format {
                MaskFormat::Rgb => format!("{},{},{}", c >> 16 & 255, c >> 8 & 255, c & 255),
                MaskFormat::Rgba => {
                    format!("{},{},{},{}", c >> 16 & 255, c >> 8 & 255, c & 255, c >> 24)
                }
                _ => c.to_string(),
            };
            (key, n)
        })
        .collect()
}

#[test]
fn every_external_png_decodes_to_the_expected_histogram() {
    let Some(ext) = external() else { return };
    let exp = expected(&ext);
    let files = exp["files"].as_object().unwrap();
    assert!(files.len() > 200, "{} files", files.len());
    let mut scratch = Scratch::default();
    for (rel, e) in files {
        let h =
            read_hist(&ext.path(rel), &mut scratch).unwrap_or_else(|err| panic!("{rel}: {err}"));
        let want_format = match e["mode"].as_str().unwrap() {
            "L" => MaskFormat::Gray8,
            "P" => MaskFormat::Indexed,
            "I;16" => MaskFormat::Gray16,
            "RGB" => MaskFormat::Rgb,
            "RGBA" => MaskFormat::Rgba,
            m => panic!("{rel}: mode {m} not covered"),
        };
        assert_eq!(h.format, want_format, "{rel}");
        assert_eq!(
            [u64::from(h.width), u64::from(h.height)],
            [
                e["size"][0].as_u64().unwrap(),
                e["size"][1].as_u64().unwrap()
            ],
            "{rel}"
        );
        assert_eq!(
            h.codes.len() as u64,
            e["distinct_values"].as_u64().unwrap(),
            "{rel}"
        );
        if let Some(hist) = e["histogram"].as_object() {
            let want: BTreeMap<String, u64> = hist
                .iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
                .collect();
            assert_eq!(keyed(&h.codes, h.format), want, "{rel}");
        }
        if let Some(ge) = e["channels_ge_128"].as_array() {
            for (i, shift) in [16u32, 8, 0, 24].iter().enumerate().take(ge.len()) {
                let n: u64 = h
                    .codes
                    .iter()
                    .filter(|(c, _)| (c >> shift & 255) >= 128)
                    .map(|(_, n)| n)
                    .sum();
                assert_eq!(n, ge[i].as_u64().unwrap(), "{rel} channel {i}");
            }
        }
    }
}

#[test]
fn camvid_101_masks_total_histogram() {
    let Some(ext) = external() else { return };
    // SOURCES.md: the total over all 101 SegNet CamVid validation masks.
    let totals: [u64; 12] = [
        1601620, 4531180, 98499, 5053176, 1521751, 2851125, 155724, 537197, 304716, 113531, 387010,
        297271,
    ];
    let dir = tempfile::tempdir().unwrap();
    let map = dir.path().join("camvid.toml");
    std::fs::write(
        &map,
        "kind = \"index\"\nclasses = [\"Sky\", \"Building\", \"Pole\", \"Road\", \"Pavement\", \
         \"Tree\", \"SignSymbol\", \"Fence\", \"Car\", \"Pedestrian\", \"Bicyclist\"]\n\
         ignore = [11]\n",
    )
    .unwrap();
    let root = ext.path("segnet-camvid/CamVid/valannot");
    let o = maskprep(&[
        "stats",
        path_str(&root),
        "--labels",
        path_str(&map),
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let d = json(&o);
    assert_eq!(d["files"]["masks_read"], 101);
    let got: Vec<u64> = d["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["pixels"].as_u64().unwrap())
        .collect();
    assert_eq!(got, totals[..11]);
    assert_eq!(d["pixels"]["ignored"], totals[11]);
    assert_eq!(d["pixels"]["total"], 101 * 480 * 360);
    assert_eq!(d["verdict"]["kind"], "single-label");
}

#[test]
fn labelme_voc_palette_is_detected_and_read_as_indices() {
    let Some(ext) = external() else { return };
    let root =
        ext.path("labelme/examples/semantic_segmentation/data_dataset_voc/SegmentationClass");
    let o = maskprep(&["stats", path_str(&root), "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("standard VOC palette"),
        "{}",
        stderr(&o)
    );
    let d = json(&o);
    let exp = expected(&ext);
    let mut want = [0u64; 256];
    for (rel, e) in exp["files"].as_object().unwrap() {
        if rel.contains("semantic_segmentation/data_dataset_voc/SegmentationClass/") {
            for (k, v) in e["histogram"].as_object().unwrap() {
                want[k.parse::<usize>().unwrap()] += v.as_u64().unwrap();
            }
        }
    }
    assert_eq!(d["pixels"]["ignored"], want[255]);
    assert_eq!(d["pixels"]["ignored"], 9460 + 909);
    for (i, c) in d["classes"].as_array().unwrap().iter().enumerate() {
        assert_eq!(c["pixels"].as_u64().unwrap(), want[i], "class {i}");
    }
    assert_eq!(d["classes"][15]["name"], "person");
}

#[test]
fn cityscapes_train_ids_and_label_ids_presets() {
    let Some(ext) = external() else { return };
    let dir = tempfile::tempdir().unwrap();
    let gt = ext.path("mmsegmentation/tests/data/pseudo_cityscapes_dataset/gtFine");
    for kind in ["labelTrainIds", "labelIds"] {
        let sub = dir.path().join(kind);
        std::fs::create_dir_all(&sub).unwrap();
        let name = format!("frankfurt_000000_000294_gtFine_{kind}.png");
        std::fs::copy(gt.join(&name), sub.join(&name)).unwrap();
    }
    // Detected from the file name.
    let o = maskprep(&[
        "stats",
        path_str(&dir.path().join("labelTrainIds")),
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains("_labelTrainIds.png"), "{}", stderr(&o));
    let d = json(&o);
    assert_eq!(d["pixels"]["ignored"], 3869);
    assert_eq!(d["classes"].as_array().unwrap().len(), 19);

    // labelIds through the preset: road (id 7) is class 0; void ids ignored.
    let exp = expected(&ext);
    let rel = "mmsegmentation/tests/data/pseudo_cityscapes_dataset/gtFine/frankfurt_000000_000294_gtFine_labelIds.png";
    let hist = exp["files"][rel]["histogram"].as_object().unwrap();
    let count = |id: &str| hist.get(id).and_then(Value::as_u64).unwrap_or(0);
    let o = maskprep(&[
        "stats",
        path_str(&dir.path().join("labelIds")),
        "--labels",
        "cityscapes",
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let d = json(&o);
    assert_eq!(d["classes"][0]["name"], "road");
    assert_eq!(d["classes"][0]["pixels"].as_u64().unwrap(), count("7"));
    assert_eq!(d["classes"][13]["pixels"].as_u64().unwrap(), count("26"));
    let eval_ids = [
        7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33,
    ];
    let valid: u64 = eval_ids.iter().map(|i| count(&i.to_string())).sum();
    assert_eq!(d["pixels"]["valid"].as_u64().unwrap(), valid);
    assert_eq!(d["pixels"]["ignored"].as_u64().unwrap(), 256 * 128 - valid);
}

#[test]
fn voc_labelmap_txt_reads_rgb_voc_masks() {
    let Some(ext) = external() else { return };
    let map = ext.path("datumaro/tests/assets/voc_dataset/voc_dataset2/labelmap.txt");
    let root = ext.path("datumaro/tests/assets/voc_dataset/voc_dataset1/SegmentationClass");
    let o = maskprep(&[
        "stats",
        path_str(&root),
        "--labels",
        path_str(&map),
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let d = json(&o);
    // Every pixel of the 20x10 mask is (0,128,0): VOC "bicycle".
    let bike = d["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "bicycle")
        .unwrap();
    assert_eq!(bike["pixels"], 200);
    assert_eq!(d["pixels"]["valid"], 200);
    // `ignored:224,224,192` became the ignore colour, not a class.
    assert!(d["labels"]["ignore"][0] == "#e0e0c0");
}

#[test]
fn dataset_meta_json_is_found_beside_the_masks() {
    let Some(ext) = external() else { return };
    let root = ext.path("datumaro/tests/assets/common_semantic_segmentation_dataset/dataset");
    let o = maskprep(&["stats", path_str(&root), "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains("dataset_meta.json"), "{}", stderr(&o));
    let d = json(&o);
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("dataset_meta.json")).unwrap())
            .unwrap();
    let colours: Vec<String> = meta["segmentation_colors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{},{},{}", c[0], c[1], c[2]))
        .collect();
    let exp = expected(&ext);
    let mut want = vec![0u64; colours.len()];
    for m in ["0001", "0002"] {
        let rel = format!(
            "datumaro/tests/assets/common_semantic_segmentation_dataset/dataset/masks/{m}.png"
        );
        for (k, v) in exp["files"][&rel]["histogram"].as_object().unwrap() {
            let i = colours.iter().position(|c| c == k).unwrap();
            want[i] += v.as_u64().unwrap();
        }
    }
    let got: Vec<u64> = d["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["pixels"].as_u64().unwrap())
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        d["files"]["masks_without_images"].as_array().unwrap().len(),
        0
    );
}

#[test]
fn camvid_label_colors_txt_reads_synthia_masks() {
    let Some(ext) = external() else { return };
    let root = ext.path("datumaro/tests/assets/synthia_dataset/rand_custom_labelmap");
    let map = root.join("label_colors.txt");
    let o = maskprep(&[
        "stats",
        path_str(&root.join("GT")),
        "--labels",
        path_str(&map),
        "--json",
    ]);
    assert!(code(&o) <= 1, "{}", stderr(&o));
    let d = json(&o);
    let names: Vec<&str> = d["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["background", "sky", "building", "person", "road"]);
    let declared: u64 = d["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["pixels"].as_u64().unwrap())
        .sum();
    assert_eq!(
        declared + d["pixels"]["undeclared"].as_u64().unwrap(),
        d["pixels"]["total"].as_u64().unwrap()
    );
}

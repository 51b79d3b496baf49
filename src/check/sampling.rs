//! Check stage: per-image sampling weights for PyTorch's
//! `WeightedRandomSampler`, so images holding rare classes are drawn more
//! often. Over the masks of the training split (the split named `train*`,
//! else every mask), with M those masks and n_c how many of them hold class
//! c (at least one pixel): w_i = M / min over the classes c in mask i of
//! n_c (each image weighted by the inverse image frequency of the rarest
//! class it holds); a mask with no class pixel gets 1, as would a class
//! held by every mask. Written as safetensors (`weights`, float32 `[M]`,
//! with the file lists in its metadata) and as JSON, in the same order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Facts;
use super::splits::Splits;
use crate::source::Dataset;
use crate::tensors::{TensorOut, safetensors_bytes};

pub const FORMULA: &str = "w_i = M / min_{c in classes(i)} n_c, with M the masks of the split \
                           and n_c the masks of the split holding class c; 1 for a mask with \
                           no class pixel";

/// The loading snippet (`PATH` replaced by the file written).
pub const SNIPPET: &str = "\
import json, torch
from safetensors.torch import load_file

w = load_file(\"PATH\")[\"weights\"]                       # float32 [N]
files = json.loads(open(\"PATH.json\").read())[\"masks\"]  # the same order: index i is files[i]
sampler = torch.utils.data.WeightedRandomSampler(w.double(), num_samples=len(w), replacement=True)
loader = torch.utils.data.DataLoader(dataset, batch_size=8, sampler=sampler)  # dataset in `files` order
";

/// The weights of one split.
#[derive(Debug, Clone, Serialize)]
pub struct SamplingDoc {
    pub format: &'static str,
    pub split: String,
    pub formula: &'static str,
    pub classes: Vec<String>,
    /// Masks of the split holding each class (n_c).
    pub class_images: Vec<u64>,
    pub masks: Vec<String>,
    /// Photos paired with the masks (`null` where none).
    pub images: Vec<Option<String>>,
    /// The rarest class each mask holds (`null`: none).
    pub rarest: Vec<Option<String>>,
    pub weights: Vec<f32>,
    pub snippet: String,
}

/// The split the weights are for: `train*`, else every mask (`None`).
fn training_split(splits: &Splits) -> Option<usize> {
    splits
        .names
        .iter()
        .position(|n| n.to_ascii_lowercase().starts_with("train"))
        .filter(|_| splits.several())
}

/// The weights of the training split's masks (those read), in dataset order.
pub fn weights(ds: &Dataset, splits: &Splits, facts: &[Facts], classes: &[String]) -> SamplingDoc {
    let split = training_split(splits);
    let mine: Vec<&Facts> = facts
        .iter()
        .filter(|f| split.is_none_or(|s| splits.of[f.index] == s))
        .collect();
    let mut n = vec![0u64; classes.len()];
    for f in &mine {
        for &c in &f.classes {
            n[usize::from(c)] += 1;
        }
    }
    let m = mine.len() as f64;
    let mut doc = SamplingDoc {
        format: "maskprep-sampling/1",
        split: split.map_or_else(|| "all".to_string(), |s| splits.names[s].clone()),
        formula: FORMULA,
        classes: classes.to_vec(),
        class_images: n.clone(),
        masks: Vec::with_capacity(mine.len()),
        images: Vec::with_capacity(mine.len()),
        rarest: Vec::with_capacity(mine.len()),
        weights: Vec::with_capacity(mine.len()),
        snippet: String::new(),
    };
    for f in mine {
        let item = &ds.items[f.index];
        // Ties go to the lower class index.
        let rarest = f
            .classes
            .iter()
            .copied()
            .min_by_key(|&c| (n[usize::from(c)], c));
        doc.masks.push(item.mask.display().to_string());
        doc.images
            .push(item.image.as_ref().map(|p| p.display().to_string()));
        doc.rarest
            .push(rarest.map(|c| classes[usize::from(c)].clone()));
        doc.weights.push(match rarest {
            Some(c) => (m / n[usize::from(c)] as f64) as f32,
            None => 1.0,
        });
    }
    doc
}

impl SamplingDoc {
    /// `weights` float32 `[M]`; the formula, split and file lists (JSON
    /// strings) in the metadata.
    pub fn safetensors(&self) -> Vec<u8> {
        let tensors = BTreeMap::from([(
            "weights".to_string(),
            TensorOut::f32(vec![self.weights.len()], &self.weights),
        )]);
        let metadata = BTreeMap::from([
            ("format".to_string(), self.format.to_string()),
            ("formula".to_string(), self.formula.to_string()),
            ("split".to_string(), self.split.clone()),
            ("masks".to_string(), json(&self.masks)),
            ("images".to_string(), json(&self.images)),
            ("classes".to_string(), json(&self.classes)),
        ]);
        safetensors_bytes(&tensors, &metadata)
    }

    /// Writes `path` (safetensors) and `path.json`, each atomically.
    pub fn write(&mut self, path: &Path) -> anyhow::Result<PathBuf> {
        let json_path = json_path(path);
        self.snippet = SNIPPET.replace("PATH", &path.display().to_string());
        crate::output::write_bytes(path, &self.safetensors())?;
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        crate::output::write_bytes(&json_path, text.as_bytes())?;
        Ok(json_path)
    }
}

/// `FILE.json` beside `FILE`.
pub fn json_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".json");
    PathBuf::from(s)
}

/// A value as a JSON string (safetensors metadata holds strings only).
fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

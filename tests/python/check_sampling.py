"""Sampling weights of `maskprep check --sampling-weights`, read back as
users read them, and checked against the formula recomputed from the masks.

    check_sampling.py FILE.safetensors RARE_CLASS

torch is not installed here: `WeightedRandomSampler(weights, n,
replacement=True)` draws with `torch.multinomial(weights, n, True)`, i.e.
n independent draws with probability w_i / sum(w); numpy's
`default_rng(seed).choice(N, n, p=w / w.sum())` draws the same way and is
used in its place (fixed seed).
"""

import json
import sys

import numpy as np
from PIL import Image
from safetensors import safe_open
from safetensors.numpy import load_file

path, rare = sys.argv[1], sys.argv[2]
w = load_file(path)["weights"]
assert w.dtype == np.float32 and w.ndim == 1, (w.dtype, w.shape)
with safe_open(path, "np") as f:
    meta = f.metadata()
with open(path + ".json") as f:
    doc = json.load(f)
masks = doc["masks"]
assert json.loads(meta["masks"]) == masks
assert len(masks) == len(w) == len(doc["weights"])
assert np.array_equal(np.array(doc["weights"], np.float32), w)
classes = doc["classes"]

# The formula, from the masks: w_i = M / min_{c in mask i} n_c.
present = []
for m in masks:
    values = np.unique(np.asarray(Image.open(m)))
    present.append({classes[v] for v in values if v < len(classes)})
n = {c: sum(c in p for p in present) for c in classes}
M = len(masks)
want = np.array([M / min(n[c] for c in p) if p else 1.0 for p in present], np.float32)
assert np.allclose(w, want, rtol=1e-6), (w, want)
assert doc["split"].startswith("train"), doc["split"]

rare_images = np.array([rare in p for p in present])
uniform = rare_images.mean()
rng = np.random.default_rng(0)
draws = rng.choice(len(w), size=20000, replace=True, p=w / w.sum())
weighted = rare_images[draws].mean()
expected = w[rare_images].sum() / w.sum()
assert abs(weighted - expected) < 0.02, (weighted, expected)
assert weighted > 2 * uniform, (weighted, uniform)
print(f"share of `{rare}` images drawn: {weighted:.3f} (uniform {uniform:.3f})")

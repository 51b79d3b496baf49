"""Reads maskprep shards with the packages people train with and checks them
against the source dataset, computed independently with numpy and Pillow.

usage: check_shards.py OUT DATASET_ROOT

- webdataset tar shards are read with `webdataset.WebDataset`; every
  `.mask.npy` must equal the multi-hot planes of its source mask, every image
  entry the source image's bytes.
- safetensors shards are read with `safetensors.numpy` (and `safe_open` for
  the metadata); masks must equal the source planes (cropped for tiles,
  nearest-resized for `--size`), images the source pixels (for `--size`: the
  shape, and closeness to Pillow's bilinear resize).
- every source pair appears exactly once; per-split class pixel counts in
  the manifest equal numpy's sums over that split's source masks.
"""

import io
import json
import os
import sys

import numpy as np
from PIL import Image


def fail(msg):
    print(f"check_shards: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def source_planes(root, rel, labels):
    """Multi-hot [C,H,W] from an rgb-bits mask: channel >= threshold."""
    if labels["kind"] != "rgb-bits":
        fail(f"this check computes rgb-bits masks only, got {labels['kind']}")
    arr = np.array(Image.open(os.path.join(root, rel)).convert("RGBA"))
    thr = labels.get("threshold", 128)
    chans = [0, 1, 2, 3][: len(labels["classes"])]
    return np.stack([(arr[:, :, ch] >= thr).astype(np.uint8) for ch in chans])


def nearest(planes, w, h):
    """Nearest neighbour at pixel centres: src = (2i+1)*H // (2h)."""
    _, sh, sw = planes.shape
    rows = ((2 * np.arange(h) + 1) * sh) // (2 * h)
    cols = ((2 * np.arange(w) + 1) * sw) // (2 * w)
    return planes[:, rows][:, :, cols]


def check_present(info, planes):
    want = [int(p.any()) for p in planes]
    if info["present"] != want:
        fail(f"{info['key']}: present {info['present']} but planes hold {want}")


def main():
    out, root = sys.argv[1], sys.argv[2]
    m = json.load(open(os.path.join(out, "index.json")))
    labels = m["labels"]
    c = len(m["classes"])
    seen_keys, seen_masks = set(), {}
    samples_total = 0
    for split, entry in m["splits"].items():
        split_masks = set()
        for sh in entry["shards"]:
            path = os.path.join(out, sh["name"])
            if m["shard_format"] == "webdataset":
                n = check_tar(path, root, labels, c, split, seen_keys, split_masks)
            else:
                n = check_st(path, root, labels, c, m, split, seen_keys, split_masks)
            if n != sh["samples"]:
                fail(f"{path}: read {n} samples, manifest says {sh['samples']}")
            samples_total += n
        # Exact per-split counts: numpy sums over the split's source masks.
        want = np.zeros(c, dtype=np.int64)
        for rel in split_masks:
            want += source_planes(root, rel, labels).reshape(c, -1).sum(axis=1, dtype=np.int64)
        got = [row["pixels"] for row in entry["stats"]["classes"]]
        if list(want) != got:
            fail(f"split {split}: manifest class pixels {got}, numpy {list(want)}")
        for rel in split_masks:
            if rel in seen_masks:
                fail(f"{rel} is in split {seen_masks[rel]} and {split}")
            seen_masks[rel] = split
    # A skipped pair is named by its mask or its image: compare pairing keys.
    def key(rel):
        return os.path.splitext(rel.split("/", 1)[1])[0]

    skipped = {key(os.path.relpath(s["path"], root)) for s in m["skipped"]}
    masks = {f[:-4] for f in os.listdir(os.path.join(root, "masks")) if f.endswith(".png")}
    missing = masks - {key(rel) for rel in seen_masks} - skipped
    if missing:
        fail(f"source masks missing from the shards: {sorted(missing)}")
    print(
        f"check_shards: ok: {samples_total} samples, {len(seen_masks)} source pairs, "
        f"{len(m['splits'])} split(s), format {m['shard_format']}"
    )


def check_tar(path, root, labels, c, split, seen_keys, split_masks):
    import webdataset as wds

    n = 0
    for sample in wds.WebDataset([path], shardshuffle=False):
        key = sample["__key__"]
        if key in seen_keys:
            fail(f"duplicate key {key}")
        seen_keys.add(key)
        info = json.loads(sample["json"])
        if info["key"] != key or info["split"] != split:
            fail(f"{key}: json says {info['key']} / {info['split']}")
        mask = np.load(io.BytesIO(sample["mask.npy"]))
        if mask.dtype != np.uint8 or mask.ndim != 3 or mask.shape[0] != c:
            fail(f"{key}: mask {mask.dtype} {mask.shape}, expected uint8 [{c},H,W]")
        want = source_planes(root, info["mask"], labels)
        if not np.array_equal(mask, want):
            fail(f"{key}: mask differs from the planes of {info['mask']}")
        ext = os.path.splitext(info["image"])[1][1:].lower()
        if sample[ext] != open(os.path.join(root, info["image"]), "rb").read():
            fail(f"{key}: image bytes differ from {info['image']}")
        check_present(info, mask)
        split_masks.add(info["mask"])
        n += 1
    return n


def check_st(path, root, labels, c, m, split, seen_keys, split_masks):
    from safetensors import safe_open
    from safetensors.numpy import load_file

    t = load_file(path)
    with safe_open(path, framework="np") as f:
        meta = f.metadata()
    infos = json.loads(meta["samples"])
    if json.loads(meta["classes"]) != [k["name"] for k in m["classes"]]:
        fail(f"{path}: metadata classes differ from the manifest")
    images, masks = t["images"], t["masks"]
    n = len(infos)
    size = m["sample_size"]
    h, w = size["height"], size["width"]
    if images.dtype != np.uint8 or images.shape != (n, 3, h, w):
        fail(f"{path}: images {images.dtype} {images.shape}, expected uint8 {(n, 3, h, w)}")
    if masks.dtype != np.uint8 or masks.shape != (n, c, h, w):
        fail(f"{path}: masks {masks.dtype} {masks.shape}, expected uint8 {(n, c, h, w)}")
    mode = m["geometry"]["mode"]
    for i, info in enumerate(infos):
        key = info["key"]
        if key in seen_keys:
            fail(f"duplicate key {key}")
        seen_keys.add(key)
        planes = source_planes(root, info["mask"], labels)
        rgb = np.array(Image.open(os.path.join(root, info["image"])).convert("RGB"))
        chw = rgb.transpose(2, 0, 1)
        if mode == "tile":
            x, y, tw, th = info["tile"]
            want_mask = planes[:, y : y + th, x : x + tw]
            want_img = chw[:, y : y + th, x : x + tw]
        elif mode == "resize" and planes.shape[1:] != (h, w):
            want_mask = nearest(planes, w, h)
            pil = np.array(Image.fromarray(rgb).resize((w, h), Image.BILINEAR))
            diff = np.abs(pil.transpose(2, 0, 1).astype(int) - images[i].astype(int)).mean()
            if diff > 2:
                fail(f"{key}: bilinear image differs from Pillow's by {diff:.2f} on average")
            want_img = None
        else:
            want_mask, want_img = planes, chw
        if not np.array_equal(masks[i], want_mask):
            fail(f"{key}: mask differs from the source planes of {info['mask']}")
        if want_img is not None and not np.array_equal(images[i], want_img):
            fail(f"{key}: image differs from the pixels of {info['image']}")
        check_present(info, masks[i])
        split_masks.add(info["mask"])
    return n


if __name__ == "__main__":
    main()

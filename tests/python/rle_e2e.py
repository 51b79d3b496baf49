"""Kaggle run-length CSV end to end: generate competition-style folders and
check maskprep's shards of them pixel by pixel against the standard numpy
`rle_decode` (1-based `start length` pairs, column-major: the Kaggle
kernels' `img.reshape(shape).T` idiom for width-major arrays).

usage:
  rle_e2e.py gen LAYOUT ROOT SEED
      airbus:    train_ship_segmentations_v2.csv (ImageId,EncodedPixels;
                 several rows per image = one class; empty = no ship) +
                 train_v2/*.jpg
      severstal: train.csv (ImageId,ClassId,EncodedPixels) + train_images/
      clouds:    train.csv (Image_Label,EncodedPixels: `x.jpg_Fish`) +
                 train_images/
  rle_e2e.py check SHARDS ROOT   every `.mask.npy` equals the union per
      class of rle_decode over that image's rows; prints per-class totals
"""

import csv
import io
import json
import os
import random
import sys
import tarfile

import numpy as np
from PIL import Image


def fail(msg):
    print(f"rle_e2e: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def rle_decode(s, shape):
    """The Kaggle kernels' decoder: (height, width) -> uint8 mask."""
    h, w = shape
    img = np.zeros(h * w, dtype=np.uint8)
    if not s or s == "-1":
        return img.reshape((w, h)).T
    nums = [int(x) for x in s.split()]
    for start, length in zip(nums[0::2], nums[1::2]):
        img[start - 1 : start - 1 + length] = 1
    return img.reshape((w, h)).T


def rle_encode(mask):
    """Column-major 1-based runs of a (height, width) 0/1 mask."""
    flat = np.concatenate([[0], mask.T.flatten(), [0]])
    runs = np.where(flat[1:] != flat[:-1])[0] + 1
    runs[1::2] -= runs[0::2]
    return " ".join(str(x) for x in runs)


def blob(rng, h, w):
    yy, xx = np.mgrid[0:h, 0:w]
    cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(2, max(h, w) / 3)
    return (np.hypot(xx - cx, yy - cy) < r).astype(np.uint8)


LAYOUTS = {
    "airbus": ("train_ship_segmentations_v2.csv", "train_v2", ["ImageId", "EncodedPixels"]),
    "severstal": ("train.csv", "train_images", ["ImageId", "ClassId", "EncodedPixels"]),
    "clouds": ("train.csv", "train_images", ["Image_Label", "EncodedPixels"]),
}
CLOUDS = ["Fish", "Flower", "Gravel", "Sugar"]


def gen(layout, root, seed):
    rng = random.Random(seed)
    name, photos, header = LAYOUTS[layout]
    os.makedirs(os.path.join(root, photos), exist_ok=True)
    w, h = 40, 24
    rows = []
    for k in range(8):
        image = f"{k:04x}abc.jpg"
        Image.new("RGB", (w, h), (k * 20, 0, 0)).save(os.path.join(root, photos, image))
        if layout == "airbus":
            n = rng.randint(0, 3)
            if n == 0:
                rows.append([image, ""])
            for _ in range(n):
                # Separate ships, as Airbus lists them: one row each.
                rows.append([image, rle_encode(blob(rng, h, w))])
        elif layout == "severstal":
            for cls in rng.sample([1, 2, 3, 4], rng.randint(0, 3)):
                rows.append([image, str(cls), rle_encode(blob(rng, h, w))])
        else:
            for label in CLOUDS:
                runs = rle_encode(blob(rng, h, w)) if rng.random() < 0.6 else ""
                rows.append([f"{image}_{label}", runs])
    with open(os.path.join(root, name), "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(header)
        wr.writerows(rows)


def expected(root):
    """image -> {class name -> union plane}, and the image sizes."""
    for layout, (name, photos, header) in LAYOUTS.items():
        path = os.path.join(root, name)
        if os.path.exists(path) and os.path.isdir(os.path.join(root, photos)):
            with open(path) as f:
                rd = csv.reader(f)
                got = next(rd)
                if got != header:
                    continue
                rows = list(rd)
            break
    else:
        fail(f"no generated CSV under {root}")
    planes = {}
    for row in rows:
        if layout == "airbus":
            image, cls, runs = row[0], None, row[1]
        elif layout == "severstal":
            image, cls, runs = row
        else:
            image, cls = row[0].rsplit("_", 1)
            runs = row[1]
        w, h = Image.open(os.path.join(root, photos, image)).size
        m = rle_decode(runs, (h, w))
        per = planes.setdefault(os.path.splitext(image)[0], {})
        if cls is None:
            per.setdefault(None, np.zeros((h, w), dtype=np.uint8))
            per[None] |= m
        else:
            per.setdefault(cls, np.zeros((h, w), dtype=np.uint8))
            per[cls] |= m
    return planes


def check(shards, root):
    planes = expected(root)
    m = json.load(open(os.path.join(shards, "index.json")))
    classes = [c["name"] for c in m["classes"]]
    totals = np.zeros(len(classes), dtype=np.int64)
    seen = 0
    for dirpath, _, files in os.walk(shards):
        for f in sorted(files):
            if not f.endswith(".tar"):
                continue
            with tarfile.open(os.path.join(dirpath, f)) as tar:
                members = {mm.name: mm for mm in tar.getmembers()}
                for name, mm in members.items():
                    if not name.endswith(".json"):
                        continue
                    info = json.loads(tar.extractfile(mm).read())
                    key = name[: -len(".json")]
                    arr = np.load(io.BytesIO(tar.extractfile(members[key + ".mask.npy"]).read()))
                    stem = info["mask"].split("#")[-1].split("/")[-1]
                    per = planes.get(stem)
                    if per is None:
                        fail(f"sample {info['key']} names no image of the CSV")
                    want = np.zeros_like(arr)
                    for cls, plane in per.items():
                        c = 0 if cls is None else classes.index(cls)
                        want[c] = plane
                    diff = np.argwhere(arr != want)
                    if len(diff):
                        c, y, x = diff[0]
                        fail(f"{info['key']}: {len(diff)} pixels differ from rle_decode, first "
                             f"class {classes[c]} at x={x} y={y}")
                    totals += want.reshape(len(classes), -1).sum(axis=1, dtype=np.int64)
                    seen += 1
    if seen != len(planes):
        fail(f"{seen} samples in the shards, {len(planes)} images in the CSV")
    print(json.dumps({"classes": classes, "pixels": [int(t) for t in totals]}))


def main():
    if sys.argv[1] == "gen":
        gen(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3])
    else:
        fail(f"unknown command {sys.argv[1]}")


if __name__ == "__main__":
    main()

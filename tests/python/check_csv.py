"""Generates Kaggle run-length CSV files in every layout maskprep reads, and
checks maskprep's rasters of them against the standard numpy `rle_decode`.

usage:
  check_csv.py generate DIR SEED
  check_csv.py compare DIR RESULTS.json

`generate` writes into DIR:
- `plain.csv` (`ImageId,EncodedPixels`, several rows per image, rows that
  overlap one another, empty cells, images with only empty cells) and the
  photos it names under `train_images/` (PNG, so maskprep reads their size);
- `joined.csv` (`ImageId_ClassId,EncodedPixels`, numeric classes, ids with
  underscores), `labels.csv` (`Image_Label,EncodedPixels`, named classes),
  `columns.csv` (`ImageId,ClassId,EncodedPixels`), `uw.csv`
  (`id,class,segmentation`, quoted cells), all column-major;
- `rowmajor.csv` (`ImageId,ClassId,EncodedPixels`, runs in row-major order);
- `sizes.json`: every image id -> [width, height].

`compare` reads RESULTS.json (from tests/annotations.rs): per file, per image
id, per class name, the on-intervals of maskprep's plane in row-major pixel
order (`y * width + x`), and checks every pixel against the union of
`rle_decode` over that image's rows of that class (reshaped column-major,
`order='F'`, as Kaggle's kernels do, or row-major for `rowmajor.csv`).
"""

import csv
import json
import os
import sys

import numpy as np
from PIL import Image

FILES = {
    "plain.csv": ("F", ["ImageId", "EncodedPixels"]),
    "joined.csv": ("F", ["ImageId_ClassId", "EncodedPixels"]),
    "labels.csv": ("F", ["Image_Label", "EncodedPixels"]),
    "columns.csv": ("F", ["ImageId", "ClassId", "EncodedPixels"]),
    "uw.csv": ("F", ["id", "class", "segmentation"]),
    "rowmajor.csv": ("C", ["ImageId", "ClassId", "EncodedPixels"]),
}


def fail(msg):
    print(f"check_csv: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def rle_decode(mask_rle, shape, order):
    """The Kaggle kernels' decoder: 1-based `start length` pairs."""
    s = mask_rle.split()
    starts, lengths = [np.asarray(x, dtype=int) for x in (s[0:][::2], s[1:][::2])]
    starts -= 1
    ends = starts + lengths
    img = np.zeros(shape[0] * shape[1], dtype=np.uint8)
    for lo, hi in zip(starts, ends):
        img[lo:hi] = 1
    return img.reshape(shape, order=order)


def rle_encode(mask, order):
    """1-based runs of a 2-D mask flattened in `order`."""
    pixels = np.concatenate([[0], mask.flatten(order=order), [0]])
    runs = np.where(pixels[1:] != pixels[:-1])[0] + 1
    runs[1::2] -= runs[::2]
    return " ".join(str(x) for x in runs)


def random_mask(rng, h, w):
    m = np.zeros((h, w), dtype=np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
        y1, x1 = int(rng.integers(y0, h + 1)), int(rng.integers(x0, w + 1))
        m[y0:y1, x0:x1] = 1
        if rng.random() < 0.3:
            m[y0 + 1 : y1 - 1, x0 + 1 : x1 - 1] = 0
    if rng.random() < 0.3:
        m |= (rng.random((h, w)) < 0.05).astype(np.uint8)
    return m


def rows_for(rng, h, w, order):
    """Cells for one (image, class): none, one empty, or 1-3 masks."""
    r = rng.random()
    if r < 0.15:
        return [""]
    return [rle_encode(random_mask(rng, h, w), order) for _ in range(int(rng.integers(1, 4)))]


def generate(out, seed):
    rng = np.random.default_rng(seed)
    sizes = {}
    os.makedirs(os.path.join(out, "train_images"), exist_ok=True)

    def size(name):
        if name not in sizes:
            sizes[name] = [int(rng.integers(1, 61)), int(rng.integers(1, 81))]
        return sizes[name]

    for fname, (order, header) in FILES.items():
        rows = []
        stem = fname.split(".")[0]
        for i in range(25):
            if fname == "uw.csv":
                image = f"case{i}_day{i % 3}_slice_{i:04d}"
            elif fname == "joined.csv" and i % 4 == 0:
                image = f"{stem}_{i}_x.jpg"
            else:
                image = f"{stem}{i:03d}.jpg"
            w, h = size(image)
            if fname == "plain.csv":
                Image.new("RGB", (w, h)).save(os.path.join(out, "train_images", image), format="PNG")
                for cell in rows_for(rng, h, w, order):
                    rows.append([image, cell])
                continue
            classes = {
                "joined.csv": ["1", "2", "3", "4"],
                "labels.csv": ["Fish", "Flower", "Gravel", "Sugar"],
                "columns.csv": ["1", "2", "3", "4"],
                "uw.csv": ["large_bowel", "small_bowel", "stomach"],
                "rowmajor.csv": ["1", "2", "3"],
            }[fname]
            for c in classes:
                if rng.random() < 0.3:
                    continue
                for cell in rows_for(rng, h, w, order):
                    if len(header) == 2:
                        rows.append([f"{image}_{c}", cell])
                    else:
                        rows.append([image, c, cell])
        rng.shuffle(rows)
        quoting = csv.QUOTE_NONNUMERIC if fname == "uw.csv" else csv.QUOTE_MINIMAL
        with open(os.path.join(out, fname), "w", newline="") as f:
            wr = csv.writer(f, quoting=quoting)
            wr.writerow(header)
            wr.writerows(rows)
    with open(os.path.join(out, "sizes.json"), "w") as f:
        json.dump(sizes, f)


def compare(out, results_path):
    sizes = json.load(open(os.path.join(out, "sizes.json")))
    res = json.load(open(results_path))
    checked = 0
    for fname, (order, header) in FILES.items():
        truth = {}
        classes = set()
        with open(os.path.join(out, fname), newline="") as f:
            rd = csv.reader(f)
            next(rd)
            for row in rd:
                if len(header) == 2:
                    if fname == "plain.csv":
                        image, cls = row[0], "foreground"
                    else:
                        image, cls = row[0].rsplit("_", 1)
                else:
                    image, cls = row[0], row[1]
                classes.add(cls)
                w, h = sizes[image]
                planes = truth.setdefault(image, {})
                m = planes.setdefault(cls, np.zeros((h, w), dtype=np.uint8))
                m |= rle_decode(row[-1], (h, w), order)
        got_file = res.get(fname)
        if got_file is None:
            fail(f"{fname}: no results")
        if sorted(got_file) != sorted(truth):
            fail(f"{fname}: images {sorted(got_file)} but the CSV lists {sorted(truth)}")
        for image, planes in truth.items():
            w, h = sizes[image]
            got = got_file[image]
            if sorted(got) != sorted(classes):
                fail(f"{fname} {image}: classes {sorted(got)}, expected {sorted(classes)}")
            for cls in classes:
                want = planes.get(cls, np.zeros((h, w), dtype=np.uint8))
                flat = np.zeros(h * w, dtype=np.uint8)
                for s, e in got[cls]:
                    flat[s:e] = 1
                mine = flat.reshape((h, w))  # row-major, as maskprep wrote it
                if not np.array_equal(mine, want):
                    n = int((mine != want).sum())
                    fail(f"{fname} {image} ({w}x{h}) class {cls}: {n} pixels differ")
                checked += 1
    print(f"check_csv: OK: {checked} (image, class) planes equal rle_decode")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "generate":
        generate(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        fail(__doc__)


if __name__ == "__main__":
    main()

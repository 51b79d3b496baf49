"""Objects of `maskprep check`, against scipy.ndimage (an independent
implementation).

    check_components.py gen DIR SEED N     write N index masks (and labels.toml)
    check_components.py verify DIR CHECK.json CONNECTIVITY MIN_OBJECT

The masks hold touching objects of different classes, diagonal chains,
rings (holes, some with an island inside), single pixels, objects on the
border and ignored pixels (255). `verify` labels every class plane with
`scipy.ndimage.label` (structure: full 3x3 for 8-connectivity, the cross
for 4), finds each object's holes with `binary_fill_holes` on that object
alone (background propagated with the dual structure: the cross for
8-connected objects, full 3x3 for 4), and compares every number of the
document: objects, images, most objects per image, sizes (min, quantiles
by numpy's `inverted_cdf`, max), objects with holes, small objects and
the listed images, worst first.
"""

import json
import os
import sys

import numpy as np
from PIL import Image
from scipy import ndimage

CLASSES = ["background", "a", "b", "c"]
LABELS = 'kind = "index"\nclasses = ["background", "a", "b", "c"]\nignore = [255]\n'


def shapes(rng, h, w):
    m = np.zeros((h, w), np.uint8)
    for _ in range(rng.integers(3, 9)):
        c = int(rng.integers(1, 4))
        kind = rng.integers(0, 6)
        y, x = int(rng.integers(-4, h)), int(rng.integers(-4, w))
        if kind == 0:  # rectangle (possibly cut by the border)
            m[max(y, 0) : y + rng.integers(1, 20), max(x, 0) : x + rng.integers(1, 20)] = c
        elif kind == 1:  # ring, sometimes with an island
            r = int(rng.integers(3, 10))
            yy, xx = np.ogrid[:h, :w]
            d = (yy - y) ** 2 + (xx - x) ** 2
            m[(d <= r * r) & (d >= (r - 2) ** 2)] = c
            if rng.random() < 0.5:
                m[(d <= 1)] = c
        elif kind == 2:  # diagonal chain
            for k in range(int(rng.integers(2, 12))):
                if 0 <= y + k < h and 0 <= x + k < w:
                    m[y + k, x + k] = c
        elif kind == 3:  # single pixels
            for _ in range(int(rng.integers(1, 6))):
                m[rng.integers(0, h), rng.integers(0, w)] = c
        elif kind == 4:  # diamond of diagonal pixels around a centre
            for dy, dx in ((-1, 0), (0, -1), (0, 1), (1, 0)):
                if 0 <= y + dy < h and 0 <= x + dx < w:
                    m[y + dy, x + dx] = c
        else:  # ignored blob
            m[max(y, 0) : y + 3, max(x, 0) : x + 3] = 255
    return m


def gen(out, seed, n):
    rng = np.random.default_rng(seed)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(os.path.dirname(out.rstrip("/")), "labels.toml"), "w") as f:
        f.write(LABELS)
    for i in range(n):
        h, w = (int(rng.integers(20, 60)), int(rng.integers(20, 70)))
        Image.fromarray(shapes(rng, h, w), mode="L").save(os.path.join(out, f"{i:04d}.png"))


def quantile(sizes, q):
    return int(np.quantile(np.array(sizes), q, method="inverted_cdf"))


def expected(folder, conn, min_object):
    full = np.ones((3, 3), bool)
    cross = ndimage.generate_binary_structure(2, 1)
    obj_s, hole_s = (full, cross) if conn == 8 else (cross, full)
    per = {c: {"images": 0, "sizes": [], "max": 0, "holed": 0, "small": 0, "worst": []} for c in range(4)}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        m = np.asarray(Image.open(path))
        for c in range(4):
            lab, n = ndimage.label(m == c, structure=obj_s)
            if n == 0:
                continue
            e = per[c]
            e["images"] += 1
            e["max"] = max(e["max"], n)
            sizes = np.bincount(lab.ravel())[1:]
            e["sizes"].extend(int(s) for s in sizes)
            for k in range(1, n + 1):
                obj = lab == k
                if ndimage.binary_fill_holes(obj, structure=hole_s).sum() > obj.sum():
                    e["holed"] += 1
            small = int((sizes < min_object).sum())
            if small:
                e["small"] += small
                e["worst"].append((-small, int(sizes.min()), path))
    return per


def verify(folder, doc_path, conn, min_object):
    with open(doc_path) as f:
        doc = json.load(f)
    assert doc["meta"]["connectivity"] == conn, doc["meta"]
    per = expected(folder, conn, min_object)
    checked = 0
    for c, got in enumerate(doc["classes"]):
        assert got["name"] == CLASSES[c]
        e = per[c]
        sizes = e["sizes"]
        assert got["images"] == e["images"], (c, got["images"], e["images"])
        assert got["objects"] == len(sizes), (c, got["objects"], len(sizes))
        assert got["max_objects_per_image"] == e["max"], (c, got, e["max"])
        assert got["objects_with_holes"] == e["holed"], (c, got["objects_with_holes"], e["holed"])
        assert got["small_objects"] == e["small"], (c, got["small_objects"], e["small"])
        assert got["images_with_small_objects"] == len(e["worst"])
        if sizes:
            want = {"min": min(sizes), "max": max(sizes)}
            for key, q in (("p10", 0.1), ("p25", 0.25), ("p50", 0.5), ("p75", 0.75), ("p90", 0.9)):
                want[key] = quantile(sizes, q)
            assert got["sizes"] == want, (c, got["sizes"], want)
        worst = sorted(e["worst"])[: len(got["worst_images"])]
        listed = [(-w["small_objects"], w["smallest"], w["mask"]) for w in got["worst_images"]]
        assert [(a, b, os.path.basename(p)) for a, b, p in listed] == [
            (a, b, os.path.basename(p)) for a, b, p in worst
        ], (c, listed[:3], worst[:3])
        checked += len(sizes)
    holed = sum(per[c]["holed"] for c in range(4))
    assert holed > 0, "the generated masks should hold objects with holes"
    print(f"{checked} objects ({conn}-connected, {holed} with holes) match scipy.ndimage")


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        verify(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))

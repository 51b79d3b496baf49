"""Generates COCO annotation files that stress pycocotools' rasteriser, and
checks maskprep's rasters of them against pycocotools itself.

usage:
  check_coco.py generate OUT.json SEED
  check_coco.py compare COCO.json RESULTS.json
  check_coco.py strings CASES.json

`generate` writes images of assorted sizes (1x1 to a few hundred pixels)
with objects of every kind `annToMask` reads: several polygons per object,
self-intersecting, collinear and repeated-vertex polygons, points outside the
image (just outside, and tens of thousands of pixels away), odd coordinate
counts, short extra polygons, uncompressed RLE (with holes, zero-length
runs, a first run of zero), compressed RLE from `pycocotools.mask.encode`,
crowd regions, same- and cross-category overlaps, an unused category and a
repeated category name.

`compare` reads RESULTS.json (written by tests/annotations.rs from
maskprep's rasters) and checks, for every image and every category of the
COCO file, every pixel:
- `as_category[cat]`: the union of `annToMask` over the image's annotations
  of that category (crowd included), given as column-major on-intervals;
  `string` must equal `pycocotools.mask.encode` of that union byte for byte;
- `ignore[cat]`: the same union over non-crowd annotations only, and
  `ignored`: the union of the crowd annotations (any category);
- `objects`: the number of annotations maskprep kept for the image equals
  the file's (nothing dropped).

`strings` reads cases `{size, counts, string}` (counts and maskprep's
compressed string for them): pycocotools must decode the string to the mask
the counts describe (as must `frPyObjects` of the uncompressed form); prints
pycocotools' own `encode` string of each mask, as JSON, on its last line.
"""

import json
import sys

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO


def fail(msg):
    print(f"check_coco: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


# ---------------------------------------------------------------- generate


def counts_of(mask):
    """Column-major counts of a 2-D 0/1 mask, background first."""
    flat = np.asarray(mask, dtype=np.uint8).flatten(order="F")
    counts, prev, run = [], 0, 0
    for v in flat:
        if v != prev:
            counts.append(run)
            run, prev = 0, v
        run += 1
    counts.append(run)
    return counts


def shape_mask(rng, h, w):
    """A random mask: rectangles, rings (holes), ellipses, noise."""
    m = np.zeros((h, w), dtype=np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        kind = rng.integers(0, 4)
        y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
        y1, x1 = int(rng.integers(y0, h + 1)), int(rng.integers(x0, w + 1))
        if kind == 0:
            m[y0:y1, x0:x1] = 1
        elif kind == 1:  # a ring: the RLE carries a hole
            m[y0:y1, x0:x1] = 1
            if y1 - y0 > 2 and x1 - x0 > 2:
                m[y0 + 1 : y1 - 1, x0 + 1 : x1 - 1] = 0
        elif kind == 2:
            yy, xx = np.mgrid[0:h, 0:w]
            cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
            ry, rx = max((y1 - y0) / 2, 0.5), max((x1 - x0) / 2, 0.5)
            m[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = 1
        else:
            m |= (rng.random((h, w)) < 0.1).astype(np.uint8)
    return m


def coord(rng, size, style):
    if style == "near":
        v = rng.uniform(-0.3 * size - 3, 1.3 * size + 3)
        digits = int(rng.integers(0, 4))
        return round(float(v), digits) if digits < 3 else float(v)
    if style == "grid":  # pixel centres, corners, rounding edges, -0.1..-0.5
        return float(rng.integers(-4 * 3, 4 * size + 12)) / 4.0 + float(
            rng.choice([0.0, 0.1, -0.1, 0.3, -0.3, 0.45, 0.55])
        )
    if style == "int":
        return int(rng.integers(-3, size + 4))
    raise ValueError(style)


def polygon(rng, h, w):
    kind = rng.choice(
        ["random", "random", "star", "collinear", "repeat", "far", "tall", "wide", "grid", "odd"]
    )
    k = int(rng.integers(3, 13))
    style = "grid" if kind == "grid" else ("int" if rng.random() < 0.2 else "near")
    pts = [[coord(rng, w, style), coord(rng, h, style)] for _ in range(k)]
    if kind == "star":  # self-intersecting: points around a centre, shuffled
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(1, max(h, w))
        ang = rng.permutation(np.linspace(0, 2 * np.pi, k, endpoint=False))
        pts = [[cx + r * np.cos(a), cy + r * np.sin(a)] for a in ang]
        pts = [[float(x), float(y)] for x, y in pts]
    elif kind == "collinear":
        x0, y0 = coord(rng, w, "near"), coord(rng, h, "near")
        dx, dy = rng.uniform(-3, 3), rng.uniform(-3, 3)
        pts = [[float(x0 + t * dx), float(y0 + t * dy)] for t in range(k)]
    elif kind == "repeat":
        i = int(rng.integers(0, k))
        pts.insert(i, list(pts[i]))
    elif kind == "far":
        i = int(rng.integers(0, k))
        pts[i] = [float(rng.choice([-1, 1]) * rng.uniform(1e3, 5e4)), pts[i][1]]
        j = int(rng.integers(0, k))
        pts[j] = [pts[j][0], float(rng.choice([-1, 1]) * rng.uniform(1e3, 5e4))]
    elif kind == "tall":  # long, slightly slanted edges (walked along y)
        x = rng.uniform(0, w)
        pts = [[x, -2e4], [x + rng.uniform(-5, 5), 2e4], [x + rng.uniform(-3, 8), rng.uniform(0, h)]]
        pts = [[float(a), float(b)] for a, b in pts]
    elif kind == "wide":
        y = rng.uniform(0, h)
        pts = [[-3e4, y], [3e4, y + rng.uniform(-5, 5)], [rng.uniform(0, w), y + rng.uniform(-8, 8)]]
        pts = [[float(a), float(b)] for a, b in pts]
    flat = [v for p in pts for v in p]
    if kind == "odd":
        flat.append(coord(rng, w, "near"))
    return flat


def segmentation(rng, h, w):
    r = rng.random()
    if r < 0.6:
        polys = [polygon(rng, h, w) for _ in range(int(rng.integers(1, 5)))]
        if len(polys) > 1 and rng.random() < 0.15:
            # A short extra polygon: pycocotools adds no pixels for it.
            polys.insert(int(rng.integers(1, len(polys) + 1)), [1.0, 2.0, 3.0, 4.0][: 2 * int(rng.integers(0, 3))])
        return polys
    m = shape_mask(rng, h, w)
    if r < 0.8:
        counts = counts_of(m)
        if rng.random() < 0.3 and len(counts) > 2:
            # Split a run with an empty run between: same pixels.
            i = int(rng.integers(0, len(counts)))
            a = int(rng.integers(0, counts[i] + 1))
            counts[i : i + 1] = [a, 0, counts[i] - a]
        return {"size": [h, w], "counts": counts}
    rle = mask_utils.encode(np.asfortranarray(m))
    return {"size": [h, w], "counts": rle["counts"].decode("ascii")}


def generate(out, seed):
    rng = np.random.default_rng(seed)
    cats = [
        {"id": 7, "name": "facade", "supercategory": "building"},
        {"id": 1, "name": "window"},
        {"id": 3, "name": "facade"},
        {"id": 90, "name": "door"},
        {"id": 91, "name": "unused"},
    ]
    used = [1, 3, 7, 90]
    sizes = [(1, 1), (1, 9), (9, 1), (2, 3), (97, 133), (256, 192), (400, 300)]
    images, anns = [], []
    names = ["img_{}.jpg", "images/{}.jpg", "/data/upload/1/{}.jpg"]
    aid = 1
    for i in range(70):
        if i < len(sizes):
            h, w = sizes[i]
        else:
            h, w = int(rng.integers(1, 121)), int(rng.integers(1, 121))
        iid = 1000 + 3 * i
        images.append({"id": iid, "file_name": names[i % 3].format(i), "height": h, "width": w, "license": 1})
        for _ in range(int(rng.integers(0, 13))):
            crowd = int(rng.random() < 0.15)
            anns.append(
                {
                    "id": aid,
                    "image_id": iid,
                    "category_id": int(rng.choice(used)),
                    "iscrowd": crowd,
                    "segmentation": segmentation(rng, h, w),
                    "area": 0.0,
                    "bbox": [0, 0, 1, 1],
                }
            )
            aid += 1
    rng.shuffle(anns)
    doc = {"info": {"description": "check_coco"}, "licenses": [], "categories": cats, "images": images, "annotations": anns}
    with open(out, "w") as f:
        json.dump(doc, f)


# ---------------------------------------------------------------- compare


def from_intervals(intervals, h, w):
    flat = np.zeros(h * w, dtype=np.uint8)
    for s, e in intervals:
        if not (0 <= s < e <= h * w):
            fail(f"interval [{s}, {e}) outside {h}x{w}")
        flat[s:e] = 1
    return flat.reshape((h, w), order="F")


def show_diff(a, b):
    ys, xs = np.nonzero(a != b)
    pts = list(zip(ys.tolist(), xs.tolist()))[:8]
    return f"{int((a != b).sum())} pixels differ, first (y, x): {pts}"


def compare(coco_path, results_path):
    coco = COCO(coco_path)
    res = json.load(open(results_path))
    cat_ids = sorted(coco.getCatIds())
    seen = 0
    pixels = 0
    for r in res["images"]:
        iid = r["id"]
        img = coco.imgs[iid]
        h, w = img["height"], img["width"]
        anns = coco.imgToAnns[iid]
        if r["objects"] != len(anns):
            fail(f"image {iid}: maskprep kept {r['objects']} objects, the file has {len(anns)}")
        masks = [(a, coco.annToMask(a)) for a in anns]
        crowd = np.zeros((h, w), dtype=np.uint8)
        for a, m in masks:
            if a["iscrowd"]:
                crowd |= m
        got = from_intervals(r["ignored"], h, w)
        if not np.array_equal(got, crowd):
            fail(f"image {iid} ({h}x{w}) crowd pixels: {show_diff(got, crowd)}")
        for cid in cat_ids:
            union = np.zeros((h, w), dtype=np.uint8)
            solid = np.zeros((h, w), dtype=np.uint8)
            for a, m in masks:
                if a["category_id"] == cid:
                    union |= m
                    if not a["iscrowd"]:
                        solid |= m
            entry = r["as_category"][str(cid)]
            got = from_intervals(entry["runs"], h, w)
            if not np.array_equal(got, union):
                ids = [a["id"] for a, _ in masks if a["category_id"] == cid]
                fail(f"image {iid} ({h}x{w}) category {cid} (annotations {ids}): {show_diff(got, union)}")
            want = mask_utils.encode(np.asfortranarray(union))["counts"].decode("ascii")
            if entry["string"] != want:
                fail(f"image {iid} category {cid}: string {entry['string']!r}, pycocotools {want!r}")
            got = from_intervals(r["ignore"][str(cid)], h, w)
            if not np.array_equal(got, solid):
                fail(f"image {iid} category {cid} without crowd: {show_diff(got, solid)}")
            pixels += int(union.sum())
        seen += 1
    if seen != len(coco.imgs):
        fail(f"maskprep gave {seen} images, the file has {len(coco.imgs)}")
    print(f"check_coco: OK: {seen} images, {len(coco.anns)} annotations, {pixels} category pixels equal")


def strings(path):
    cases = json.load(open(path))
    theirs = []
    for i, c in enumerate(cases):
        h, w = c["size"]
        want = np.zeros(h * w, dtype=np.uint8)
        pos, v = 0, 0
        for n in c["counts"]:
            want[pos : pos + n] = v
            pos, v = pos + n, 1 - v
        want = want.reshape((h, w), order="F")
        got = mask_utils.decode({"size": [h, w], "counts": c["string"].encode("ascii")})
        if not np.array_equal(got, want):
            fail(f"case {i}: pycocotools decodes maskprep's string {c['string']!r} to another mask")
        unc = mask_utils.frPyObjects({"size": [h, w], "counts": c["counts"]}, h, w)
        if not np.array_equal(mask_utils.decode(unc), want):
            fail(f"case {i}: frPyObjects of the counts differs")
        theirs.append(mask_utils.encode(np.asfortranarray(want))["counts"].decode("ascii"))
    print(f"check_coco: OK: {len(cases)} strings decode as pycocotools does")
    print(json.dumps(theirs))


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "generate":
        generate(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "strings":
        strings(sys.argv[2])
    else:
        fail(__doc__)


if __name__ == "__main__":
    main()

"""COCO exports end to end: generate export trees as labelling tools write
them, and check maskprep's shards of them pixel by pixel against
pycocotools' `annToMask` (the reference every COCO user trains with).

usage:
  coco_e2e.py gen LAYOUT ROOT SEED   write a generated export tree
      LAYOUT: roboflow (train/ valid/ with _annotations.coco.json beside the
      photos), cvat (annotations/instances_default.json + images/),
      detectron2 (annotations/instances_{train,val}2017.json + {split}/)
  coco_e2e.py logits PRED JSON...   write float32 logits [C,H,W] per image
      into PRED (named by photo stem) and print the expected per-class
      [tp, fp, fn] against annToMask unions (logit > 0 is positive)
  coco_e2e.py results OUT JSON...   write a COCO results file of RLE
      detections with scores and print the expected per-class [tp, fp, fn]
      at threshold 0.5
  coco_e2e.py check SHARDS JSON...   every `.mask.npy` of the webdataset
      shards under SHARDS equals, per category (classes in category id
      order), the union of that image's annToMask over its annotations;
      prints the per-category pixel totals as JSON

Generated objects cover: several polygons per object, self-intersecting
polygons, points outside the image (negative and past the edge), collinear
(zero-area) polygons, uncompressed RLE (`counts` list), compressed RLE
(`counts` string) with holes, crowd regions, same-category overlaps and
different categories on one pixel.
"""

import io
import json
import os
import random
import sys
import tarfile

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO


def fail(msg):
    print(f"coco_e2e: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def polygon(rng, w, h, kind):
    n = rng.randint(3, 9)
    if kind == "outside":
        return [round(rng.uniform(-0.3 * w, 1.3 * w), 2) if i % 2 == 0
                else round(rng.uniform(-0.3 * h, 1.3 * h), 2) for i in range(2 * n)]
    if kind == "collinear":
        x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
        dx, dy = rng.uniform(-5, 5), rng.uniform(-5, 5)
        return [v for k in range(n) for v in (round(x0 + k * dx, 2), round(y0 + k * dy, 2))]
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    r = rng.uniform(2, max(w, h) / 2)
    return [round(v, 3) for k in range(n) for v in (
        cx + r * rng.uniform(-1, 1), cy + r * rng.uniform(-1, 1))]


def ring_mask(rng, w, h):
    """A filled disc with a hole: only RLE can carry it."""
    yy, xx = np.mgrid[0:h, 0:w]
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    r = rng.uniform(3, max(w, h) / 2)
    d = np.hypot(xx - cx, yy - cy)
    return ((d < r) & (d > r / 2)).astype(np.uint8)


def annotations_for(rng, img, cats, next_id):
    w, h = img["width"], img["height"]
    out = []
    for _ in range(rng.randint(0, 7)):
        cat = rng.choice(cats)["id"]
        kind = rng.choice(["poly", "poly", "multi", "outside", "collinear", "rle", "crle", "crowd"])
        ann = {"id": next_id + len(out), "image_id": img["id"], "category_id": cat,
               "iscrowd": 0, "area": 0, "bbox": [0, 0, 1, 1]}
        if kind in ("poly", "outside", "collinear"):
            ann["segmentation"] = [polygon(rng, w, h, kind)]
        elif kind == "multi":
            ann["segmentation"] = [polygon(rng, w, h, "poly") for _ in range(rng.randint(2, 4))]
        else:
            m = np.asfortranarray(ring_mask(rng, w, h))
            rle = mask_utils.encode(m)
            if kind == "rle" or kind == "crowd":
                # Uncompressed: the run lengths themselves.
                flat = m.flatten(order="F")
                counts, cur, run = [], 0, 0
                for v in flat:
                    if v == cur:
                        run += 1
                    else:
                        counts.append(run)
                        cur, run = v, 1
                counts.append(run)
                ann["segmentation"] = {"size": [h, w], "counts": counts}
                ann["iscrowd"] = int(kind == "crowd")
            else:
                ann["segmentation"] = {"size": [h, w], "counts": rle["counts"].decode()}
        out.append(ann)
    return out


def export(rng, names, first_id, with_placeholder):
    cats = [{"id": i + 1, "name": n, "supercategory": "things"} for i, n in enumerate(["wall", "window", "door"])]
    if with_placeholder:
        # Roboflow: category 0 is the project, named like a real category.
        cats.insert(0, {"id": 0, "name": "wall", "supercategory": "none"})
    images, anns = [], []
    for k, name in enumerate(names):
        img = {"id": first_id + k, "file_name": name,
               "width": rng.randint(17, 61), "height": rng.randint(13, 47)}
        images.append(img)
        anns += annotations_for(rng, img, [c for c in cats if c["id"] != 0], 1 + len(anns) + 1000 * first_id)
    return {"info": {}, "licenses": [], "images": images, "annotations": anns, "categories": cats}


def photo(path, w, h, seed):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)


def gen(layout, root, seed):
    rng = random.Random(seed)
    if layout == "roboflow":
        splits = [("train", "train"), ("valid", "valid")]
    elif layout == "cvat":
        splits = [("default", "images")]
    elif layout == "detectron2":
        splits = [("train2017", "train2017"), ("val2017", "val2017")]
    else:
        fail(f"unknown layout {layout}")
    for s, (name, photo_dir) in enumerate(splits):
        ext = ".jpg" if layout == "detectron2" else ".png"
        names = [f"{name}_{k:03d}{ext}" for k in range(6)]
        doc = export(rng, names, 1 + 100 * s, layout == "roboflow")
        if layout == "roboflow":
            path = os.path.join(root, name, "_annotations.coco.json")
        else:
            path = os.path.join(root, "annotations", f"instances_{name}.json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(doc, f)
        for img in doc["images"]:
            photo(os.path.join(root, photo_dir, img["file_name"]).replace(".jpg", ".jpg"),
                  img["width"], img["height"], img["id"])


def reference(coco, img_id, cat_ids):
    """Per category (in id order) the union of annToMask over its annotations."""
    info = coco.imgs[img_id]
    planes = np.zeros((len(cat_ids), info["height"], info["width"]), dtype=np.uint8)
    for ann in coco.imgToAnns[img_id]:
        planes[cat_ids.index(ann["category_id"])] |= coco.annToMask(ann)
    return planes


def check(shards, jsons):
    refs = {}
    cat_ids = None
    for path in jsons:
        coco = COCO(path)
        ids = sorted(coco.cats)
        if cat_ids is None:
            cat_ids = ids
        elif ids != cat_ids:
            fail("exports disagree on categories")
        for img_id, info in coco.imgs.items():
            stem = os.path.splitext(os.path.basename(info["file_name"]))[0]
            refs[stem] = (coco, img_id)
    totals = np.zeros(len(cat_ids), dtype=np.int64)
    seen = 0
    for dirpath, _, files in os.walk(shards):
        for f in sorted(files):
            if not f.endswith(".tar"):
                continue
            with tarfile.open(os.path.join(dirpath, f)) as tar:
                members = {m.name: m for m in tar.getmembers()}
                for name, m in members.items():
                    if not name.endswith(".json"):
                        continue
                    info = json.loads(tar.extractfile(m).read())
                    key = name[: -len(".json")]
                    arr = np.load(io.BytesIO(tar.extractfile(members[key + ".mask.npy"]).read()))
                    # The mask is the virtual path `EXPORT#KEY`.
                    stem = info["mask"].split("#")[-1].split("/")[-1]
                    if stem not in refs:
                        fail(f"sample {info['key']} names no image of the exports")
                    coco, img_id = refs[stem]
                    want = reference(coco, img_id, cat_ids)
                    if arr.shape != want.shape:
                        fail(f"{info['key']}: planes {arr.shape}, pycocotools {want.shape}")
                    diff = np.argwhere(arr != want)
                    if len(diff):
                        c, y, x = diff[0]
                        fail(f"{info['key']}: {len(diff)} pixels differ from annToMask, first "
                             f"category {cat_ids[c]} at x={x} y={y}: maskprep {arr[c, y, x]}, "
                             f"pycocotools {want[c, y, x]}")
                    totals += want.reshape(len(cat_ids), -1).sum(axis=1, dtype=np.int64)
                    seen += 1
    if seen != len(refs):
        fail(f"{seen} samples in the shards, {len(refs)} images in the exports")
    print(json.dumps({"images": seen, "pixels": [int(t) for t in totals]}))


def logits(pred_dir, jsons):
    """Writes float32 logits [C,H,W] per image and prints the expected
    per-class tp, fp, fn (positive where logit > 0) against annToMask."""
    os.makedirs(pred_dir, exist_ok=True)
    counts = None
    for path in jsons:
        coco = COCO(path)
        cat_ids = sorted(coco.cats)
        if counts is None:
            counts = np.zeros((len(cat_ids), 3), dtype=np.int64)
        for img_id, info in coco.imgs.items():
            truth = reference(coco, img_id, cat_ids).astype(bool)
            rng = np.random.default_rng(img_id)
            x = (rng.normal(size=truth.shape) + truth * 1.5).astype(np.float32)
            stem = os.path.splitext(os.path.basename(info["file_name"]))[0]
            np.save(os.path.join(pred_dir, stem + ".npy"), x)
            p = x > 0
            for c in range(len(cat_ids)):
                counts[c] += [(p[c] & truth[c]).sum(), (p[c] & ~truth[c]).sum(),
                              (~p[c] & truth[c]).sum()]
    print(json.dumps(counts.tolist()))


def results(out, jsons):
    """Writes a COCO results file (RLE detections with scores, some below
    0.5, some overlapping) and prints the expected per-class [tp, fp, fn]
    at threshold 0.5: a pixel is predicted when a detection of its class
    with score > 0.5 covers it."""
    dets = []
    counts = None
    for path in jsons:
        coco = COCO(path)
        cat_ids = sorted(coco.cats)
        if counts is None:
            counts = np.zeros((len(cat_ids), 3), dtype=np.int64)
        for img_id, info in coco.imgs.items():
            h, w = info["height"], info["width"]
            truth = reference(coco, img_id, cat_ids).astype(bool)
            rng = random.Random(img_id)
            pred = np.zeros_like(truth)
            for _ in range(rng.randint(0, 6)):
                c = rng.randrange(len(cat_ids))
                m = ring_mask(rng, w, h) if rng.random() < 0.5 else truth[c].astype(np.uint8)
                score = round(rng.uniform(0.05, 0.99), 3)
                rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
                dets.append({"image_id": img_id, "category_id": cat_ids[c], "score": score,
                             "segmentation": {"size": [h, w], "counts": rle["counts"].decode()}})
                if score > 0.5:
                    pred[c] |= m.astype(bool)
            for c in range(len(cat_ids)):
                counts[c] += [(pred[c] & truth[c]).sum(), (pred[c] & ~truth[c]).sum(),
                              (~pred[c] & truth[c]).sum()]
    with open(out, "w") as f:
        json.dump(dets, f)
    print(json.dumps(counts.tolist()))


def main():
    if sys.argv[1] == "results":
        results(sys.argv[2], sys.argv[3:])
    elif sys.argv[1] == "logits":
        logits(sys.argv[2], sys.argv[3:])
    elif sys.argv[1] == "gen":
        gen(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3:])
    else:
        fail(f"unknown command {sys.argv[1]}")


if __name__ == "__main__":
    main()

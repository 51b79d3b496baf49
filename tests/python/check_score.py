"""Independent check of `maskprep score` with numpy.

    python check_score.py gen OUT            write truth masks and predictions
    python check_score.py check SCORE.json ROWS.csv
    python check_score.py sweep SCORE.json ROWS.csv THRESHOLDS_DIR

`gen` writes two scenarios under OUT (fixed seed):
  rgb/   RGB-bit truth (channel >= 128; values 0, 127, 128, 255), float32
         and float16 `.npy` logits [C,H,W] (one with a batch axis) holding
         exact zeros and NaNs, and RGB PNG predictions; blue is absent from
         truth and prediction in the last image (an empty pair);
  index/ 8-bit index truth (3 classes, 255 ignored, 7 undeclared),
         float16 `.safetensors` probabilities (tensor `probs`) holding exact
         0.5s and NaNs, and index PNG predictions (with 255 and 9).
Masks sit in a nested folder so pairing by relative path is exercised.

`check` reads what maskprep wrote (its JSON names the truth, the
predictions, the label map and the decision rule), recomputes every count
from the files with numpy, and exits 1 unless each per-image TP/FP/FN/TN
(from the CSV) and each total (from the JSON) agrees exactly, and the
metrics agree to the 6 decimals written.

`sweep` recounts TP/FP/FN/TN of every class at every threshold of the
JSON's `sweep` grid (`score > t` in float32), finds the best-IoU and
best-Dice thresholds by brute force (first of ties), and checks
`thresholds.json` and `thresholds.safetensors` in THRESHOLDS_DIR.
"""

import csv
import json
import math
import os
import sys

import numpy as np
from PIL import Image
from safetensors.numpy import load_file, save_file

SIZES = [(23, 17), (40, 31), (8, 8), (64, 5), (33, 33)]


def blobs(rng, h, w, k):
    """k random rectangles as a bool [h, w] array."""
    m = np.zeros((h, w), bool)
    for _ in range(k):
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        y1, x1 = y0 + rng.integers(1, h + 1), x0 + rng.integers(1, w + 1)
        m[y0:y1, x0:x1] = True
    return m


def logits_for(rng, truth_planes):
    """Logits that mostly agree with the truth, with exact 0s and NaNs."""
    c, h, w = truth_planes.shape
    v = np.where(truth_planes, 1.0, -1.0) * rng.uniform(0.1, 3.0, (c, h, w))
    flip = rng.random((c, h, w)) < 0.2
    v[flip] = -v[flip]
    v[rng.random((c, h, w)) < 0.05] = 0.0
    v[rng.random((c, h, w)) < 0.03] = np.nan
    return v


def gen(out):
    rng = np.random.default_rng(20240611)
    # rgb-bits scenario
    root = os.path.join(out, "rgb")
    for sub in ["truth/a", "logits/a", "pred_png/a"]:
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    with open(os.path.join(root, "labels.toml"), "w") as f:
        f.write('kind = "rgb-bits"\nclasses = ["red", "green", "blue"]\nthreshold = 128\n')
    for i, (w, h) in enumerate(SIZES):
        levels = np.array([0, 127, 128, 255], np.uint8)
        rgb = np.zeros((h, w, 3), np.uint8)
        for c in range(3):
            rgb[..., c] = np.where(blobs(rng, h, w, 2), levels[rng.integers(2, 4)], levels[rng.integers(0, 2)])
            noise = rng.random((h, w)) < 0.05
            rgb[..., c][noise] = levels[rng.integers(0, 4, noise.sum())]
        name = f"{i:04d}"
        if i == 4:
            # Blue absent from truth and prediction: an empty (image, class)
            # pair, where the per-image conventions of the tools differ.
            rgb[..., 2] = 0
        Image.fromarray(rgb, "RGB").save(os.path.join(root, "truth/a", name + ".png"))
        planes = np.moveaxis(rgb >= 128, 2, 0)
        lg = logits_for(rng, planes)
        if i == 4:
            lg[2] = -3.0
        if i == 1:
            np.save(os.path.join(root, "logits/a", name + ".npy"), lg.astype(np.float16))
        elif i == 2:
            np.save(os.path.join(root, "logits/a", name + ".npy"), lg.astype(np.float32)[None])
        else:
            np.save(os.path.join(root, "logits/a", name + ".npy"), lg.astype(np.float32))
        pred = np.where(np.nan_to_num(lg, nan=-1.0) > 0, 255, 0).astype(np.uint8)
        Image.fromarray(np.moveaxis(pred, 0, 2), "RGB").save(os.path.join(root, "pred_png/a", name + ".png"))
    # index scenario
    root = os.path.join(out, "index")
    for sub in ["truth/b", "probs/b", "pred_png/b"]:
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    with open(os.path.join(root, "labels.toml"), "w") as f:
        f.write('kind = "index"\nclasses = ["road", "car", "sky"]\nignore = [255]\n')
    for i, (w, h) in enumerate(SIZES):
        v = rng.integers(0, 3, (h, w)).astype(np.uint8)
        v[blobs(rng, h, w, 1)] = rng.integers(0, 3)
        v[rng.random((h, w)) < 0.08] = 255
        v[rng.random((h, w)) < 0.03] = 7
        name = f"{i:04d}"
        Image.fromarray(v, "L").save(os.path.join(root, "truth/b", name + ".png"))
        onehot = np.stack([v == c for c in range(3)])
        p = 1.0 / (1.0 + np.exp(-logits_for(rng, onehot)))
        p[rng.random(p.shape) < 0.05] = 0.5
        save_file({"probs": p.astype(np.float16)}, os.path.join(root, "probs/b", name + ".safetensors"))
        pv = np.argmax(np.nan_to_num(p, nan=0.0), axis=0).astype(np.uint8)
        pv[rng.random((h, w)) < 0.04] = 255
        pv[rng.random((h, w)) < 0.02] = 9
        Image.fromarray(pv, "L").save(os.path.join(root, "pred_png/b", name + ".png"))


def truth_planes(path, labels):
    """(planes [C,H,W] bool, valid [H,W] bool, ignored, undeclared) of a truth mask."""
    a = np.array(Image.open(path))
    c = len(labels["classes"])
    if labels["kind"] == "rgb-bits":
        t = labels.get("threshold", 128)
        planes = np.stack([a[..., k] >= t for k in range(c)])
        return planes, np.ones(a.shape[:2], bool), 0, 0
    assert labels["kind"] == "index" and not labels.get("values"), labels
    ignore = np.isin(a, [int(x) for x in labels.get("ignore", [])])
    undeclared = (a >= c) & ~ignore
    valid = ~ignore & ~undeclared
    planes = np.stack([a == k for k in range(c)])
    return planes, valid, int(ignore.sum()), int(undeclared.sum())


def pred_planes(path, doc):
    """Predicted planes [C,H,W] bool, by the rule the JSON names."""
    labels, p = doc["labels"], doc["prediction"]
    c = len(labels["classes"])
    if p["files"] == "png":
        a = np.array(Image.open(path))
        if labels["kind"] == "rgb-bits":
            return np.stack([a[..., k] >= labels.get("threshold", 128) for k in range(c)])
        return np.stack([a == k for k in range(c)])
    if p["files"] == "npy":
        arr = np.load(path)
    else:
        tensors = load_file(path)
        if p["tensor"]:
            arr = tensors[p["tensor"]]
        elif len(tensors) == 1:
            arr = next(iter(tensors.values()))
        else:
            arr = tensors[p["kind"]]
    if arr.ndim == 4:
        arr = arr[0]
    arr = arr.astype(np.float32)
    if p["argmax"]:
        k = np.argmax(arr, axis=0)
        return np.stack([k == j for j in range(c)])
    return arr > np.float32(p["threshold"])


def check(json_path, csv_path):
    doc = json.load(open(json_path))
    assert doc["format"] == "maskprep-score/1", doc["format"]
    labels = doc["labels"]
    names = labels["classes"]
    rows = list(csv.DictReader(open(csv_path)))
    assert len(rows) == doc["files"]["images_scored"] > 0, (len(rows), doc["files"])
    total = np.zeros((len(names), 4), np.int64)
    # Per (image, class) counts for the per-image conventions of other tools.
    image_counts = []
    ignored = undeclared = valid_total = 0
    checked = 0
    problems = []
    for row in rows:
        t, valid, ig, ud = truth_planes(row["truth"], labels)
        p = pred_planes(row["pred"], doc)
        assert p.shape == t.shape, (row, p.shape, t.shape)
        ignored += ig
        undeclared += ud
        valid_total += int(valid.sum())
        if int(row["valid"]) != int(valid.sum()):
            problems.append(f"{row['image']}: valid {row['valid']} != numpy {valid.sum()}")
        for k, name in enumerate(names):
            tk, pk = t[k] & valid, p[k] & valid
            want = [
                int((tk & pk).sum()),
                int((~t[k] & pk).sum()),
                int((tk & ~p[k]).sum()),
                int((valid & ~t[k] & ~p[k]).sum()),
            ]
            image_counts.append((row["image"], k, want))
            got = [int(row[f"{w}:{name}"]) for w in ["tp", "fp", "fn", "tn"]]
            checked += 4
            if got != want:
                problems.append(f"{row['image']} class {name}: maskprep {got} != numpy {want}")
            total[k] += want
            den = want[0] + want[1] + want[2]
            iou = row[f"iou:{name}"]
            if den == 0:
                if doc["summary"]["empty_as"] == "skip" and iou != "":
                    problems.append(f"{row['image']} class {name}: IoU {iou}, expected undefined")
            elif abs(float(iou) - want[0] / den) > 1e-6:
                problems.append(f"{row['image']} class {name}: IoU {iou} != {want[0] / den}")
    for k, cls in enumerate(doc["classes"]):
        got = [cls["tp"], cls["fp"], cls["fn"], cls["tn"]]
        checked += 4
        if got != total[k].tolist():
            problems.append(f"total class {cls['name']}: maskprep {got} != numpy {total[k].tolist()}")
        tp, fp, fn, tn = total[k].tolist()
        want_iou = tp / (tp + fp + fn) if tp + fp + fn else None
        if (cls["iou"] is None) != (want_iou is None) or (
            want_iou is not None and abs(cls["iou"] - want_iou) > 1e-6
        ):
            problems.append(f"class {cls['name']}: IoU {cls['iou']} != {want_iou}")
        if abs(cls["accuracy"] - (tp + tn) / (tp + fp + fn + tn)) > 1e-6:
            problems.append(f"class {cls['name']}: accuracy {cls['accuracy']}")
    px = doc["pixels"]
    for key, want in [("valid", valid_total), ("ignored", ignored), ("undeclared", undeclared)]:
        if px[key] != want:
            problems.append(f"pixels.{key}: maskprep {px[key]} != numpy {want}")
    ious = [tp / (tp + fp + fn) for tp, fp, fn, _ in total.tolist() if tp + fp + fn]
    miou = sum(ious) / len(ious) if ious else None
    if miou is not None and abs(doc["summary"]["miou"] - miou) > 1e-6:
        problems.append(f"miou {doc['summary']['miou']} != {miou}")
    s = total.sum(axis=0)
    micro = s[0] / (s[0] + s[1] + s[2])
    if abs(doc["summary"]["micro_iou"] - micro) > 1e-6:
        problems.append(f"micro IoU {doc['summary']['micro_iou']} != {micro}")
    if doc["summary"]["empty_as"] == "skip":
        problems.extend(other_tools(doc, image_counts))
    if problems:
        print("\n".join(problems[:30]), file=sys.stderr)
        sys.exit(1)
    print(f"ok: {len(rows)} images, {checked} counts agree with numpy ({doc['prediction']['rule']})")


def other_tools(doc, image_counts):
    """The per-image conventions of torchmetrics 1.9 and smp 0.6, from their
    published definitions, against maskprep's reductions (0/0 left out)."""
    problems = []
    pairs = [tp / (tp + fp + fn) for _, _, (tp, fp, fn, _) in image_counts if tp + fp + fn]
    # torchmetrics.segmentation.MeanIoU: IoU of every (image, class) pair
    # with a non-empty union, averaged over all those pairs at once.
    pooled = sum(pairs) / len(pairs) if pairs else None
    per_image = {}
    for image, _, (tp, fp, fn, _) in image_counts:
        a = per_image.setdefault(image, [0, 0, 0])
        a[0] += tp
        a[1] += fp
        a[2] += fn
    # smp micro-imagewise: per image, counts summed over classes, then IoU;
    # averaged over images.
    scores = [tp / (tp + fp + fn) for tp, fp, fn in per_image.values() if tp + fp + fn]
    micro_imagewise = sum(scores) / len(scores) if scores else None
    r = doc["reductions"]
    for key, want in [("per_image_pooled", pooled), ("micro_imagewise", micro_imagewise)]:
        got = r[key]["iou"]
        if (got is None) != (want is None) or (want is not None and abs(got - want) > 1e-9):
            problems.append(f"reductions.{key}.iou {got} != numpy {want}")
    empty = sum(1 for _, _, (tp, fp, fn, _) in image_counts if tp + fp + fn == 0)
    if empty != doc["summary"]["empty_image_classes"]:
        problems.append(f"empty (image, class) pairs {doc['summary']['empty_image_classes']} != {empty}")
    return problems


def as_threshold(t):
    return {"inf": np.inf, "-inf": -np.inf}.get(t, t) if isinstance(t, str) else t


def sweep(json_path, csv_path, out_dir):
    doc = json.load(open(json_path))
    sw = doc["sweep"]
    names = doc["labels"]["classes"]
    thresholds = np.array([as_threshold(t) for t in sw["thresholds"]], np.float32)
    rows = list(csv.DictReader(open(csv_path)))
    k = len(thresholds)
    tp = np.zeros((len(names), k), np.int64)
    fp = np.zeros_like(tp)
    pos = np.zeros(len(names), np.int64)
    neg = np.zeros(len(names), np.int64)
    problems = []
    for row in rows:
        t, valid, _, _ = truth_planes(row["truth"], doc["labels"])
        scores = pred_planes_scores(row["pred"], doc)
        for c in range(len(names)):
            tc, s = t[c][valid], scores[c][valid]
            pos[c] += int(tc.sum())
            neg[c] += int((~tc).sum())
            above = s[None, :] > thresholds[:, None]
            tp[c] += (above & tc[None, :]).sum(axis=1)
            fp[c] += (above & ~tc[None, :]).sum(axis=1)
    chosen = {"iou": [], "dice": []}
    default = as_threshold(json.load(open(os.path.join(out_dir, "thresholds.json")))["default"])
    for c, cls in enumerate(sw["classes"]):
        if cls["tp"] != tp[c].tolist() or cls["fp"] != fp[c].tolist():
            problems.append(f"class {names[c]}: sweep counts differ from numpy")
        if cls["positives"] != pos[c] or cls["negatives"] != neg[c]:
            problems.append(f"class {names[c]}: positives/negatives differ")
        fn = pos[c] - tp[c]
        for metric, num, den in [
            ("iou", tp[c], tp[c] + fp[c] + fn),
            ("dice", 2 * tp[c], 2 * tp[c] + fp[c] + fn),
        ]:
            best, best_v = None, None
            for j in range(k):
                if den[j] == 0:
                    continue
                v = int(num[j]) / int(den[j])
                if best_v is None or v > best_v:
                    best, best_v = j, v
            pick = cls[f"best_{metric}"]
            if best is None:
                if pick is not None:
                    problems.append(f"class {names[c]}: best {metric} should be undefined")
                chosen[metric].append(default)
                continue
            if pick is None or as_threshold(pick["threshold"]) != thresholds[best] or abs(
                pick["metrics"][metric] - best_v
            ) > 1e-12:
                problems.append(f"class {names[c]}: best {metric} {pick} != numpy level {sw['levels'][best]} {best_v}")
            chosen[metric].append(thresholds[best])
    tj = json.load(open(os.path.join(out_dir, "thresholds.json")))
    st = load_file(os.path.join(out_dir, "thresholds.safetensors"))
    for metric, key in [("iou", "threshold"), ("dice", "threshold_dice")]:
        want = np.array(chosen[metric], np.float32)
        got_json = np.array([as_threshold(t) for t in tj[metric]], np.float32)
        if not np.array_equal(got_json, want):
            problems.append(f"thresholds.json {metric} {got_json} != {want}")
        if st[key].dtype != np.float32 or not np.array_equal(st[key], want):
            problems.append(f"safetensors {key} {st[key]} != {want}")
        if st[key + "_c11"].shape != (len(names), 1, 1) or not np.array_equal(st[key + "_c11"][:, 0, 0], want):
            problems.append(f"safetensors {key}_c11 has shape {st[key + '_c11'].shape}")
    if problems:
        print("\n".join(problems[:30]), file=sys.stderr)
        sys.exit(1)
    print(f"ok: sweep of {k} thresholds x {len(names)} classes agrees with numpy over {len(rows)} images")


def pred_planes_scores(path, doc):
    """The float scores [C,H,W] of a prediction file, as float32."""
    p = doc["prediction"]
    if p["files"] == "npy":
        arr = np.load(path)
    else:
        tensors = load_file(path)
        arr = tensors[p["tensor"]] if p["tensor"] else (
            next(iter(tensors.values())) if len(tensors) == 1 else tensors[p["kind"]]
        )
    if arr.ndim == 4:
        arr = arr[0]
    return arr.astype(np.float32)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "sweep":
        sweep(sys.argv[2], sys.argv[3], sys.argv[4])
        sys.exit(0)
    if len(sys.argv) == 3 and sys.argv[1] == "gen":
        gen(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)

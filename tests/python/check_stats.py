"""Independent check of `maskprep stats --json` with Pillow + numpy.

usage: check_stats.py STATS.json MASK_DIR [--print]

Recomputes, from the PNG files alone and the label map recorded in the JSON,
every count maskprep reports: per-class pixels, images holding each class,
valid pixels of those images, ignored and undeclared pixels, labels-per-pixel
degree, the co-occurrence matrix and the image sizes. Exits 1 on any
difference. Written without maskprep's code: numpy's per-pixel arrays, not
histograms.
"""

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def codes(path):
    """Raw codes per pixel: indices for L/P/I;16, packed RGB for RGB(A)."""
    im = Image.open(path)
    if im.mode in ("L", "P", "I;16", "I;16B", "I", "1"):
        return np.asarray(im).astype(np.int64), "index"
    if im.mode == "LA":
        return np.asarray(im)[..., 0].astype(np.int64), "index"
    a = np.asarray(im.convert("RGBA") if im.mode == "RGBA" else im.convert("RGB")).astype(np.int64)
    rgb = (a[..., 0] << 16) | (a[..., 1] << 8) | a[..., 2]
    return rgb, ("rgba" if im.mode == "RGBA" else "rgb")


def planes(code, kind, spec):
    """Multi-hot [C,H,W] bool, plus ignored and undeclared [H,W] bool."""
    c = len(spec["classes"])
    h, w = code.shape
    hot = np.zeros((c, h, w), dtype=bool)
    ignored = np.zeros((h, w), dtype=bool)
    known = np.zeros((h, w), dtype=bool)
    k = spec["kind"]
    if k == "ade20k-seg":
        # Full ADE20K: class id = R/10*256 + G, then read as an index map.
        if kind != "index":
            code = ((code >> 16) & 255) // 10 * 256 + ((code >> 8) & 255)
        k = "index"
    if k == "binary":
        t = max(spec.get("threshold", 128), 1)
        if kind == "index":
            v = code
        else:
            v = np.maximum(np.maximum((code >> 16) & 255, (code >> 8) & 255), code & 255)
        hot[0] = v >= t
        known[:] = True
        if kind == "index":
            for x in spec.get("ignore", []):
                ignored |= code == int(x)
    elif k == "rgb-bits":
        t = spec.get("threshold", 128)
        if kind == "index":
            chans = [np.minimum(code, 255)] * 3
        else:
            chans = [(code >> 16) & 255, (code >> 8) & 255, code & 255]
        for i in range(c):
            hot[i] = chans[i] >= t
        known[:] = True
    elif k == "palette":
        names = spec["classes"]
        for hexcol, members in spec.get("colors", {}).items():
            m = code == int(hexcol.lstrip("#"), 16)
            known |= m
            for n in members:
                hot[names.index(n)] |= m
        for hexcol in spec.get("ignore", []):
            m = code == int(hexcol.lstrip("#"), 16)
            ignored |= m
            known |= m
    elif k == "index":
        names = spec["classes"]
        values = spec.get("values") or {str(i): n for i, n in enumerate(names)}
        for v, n in values.items():
            m = code == int(v)
            hot[names.index(n)] |= m
            known |= m
        for v in spec.get("ignore", []):
            m = code == int(v)
            hot[:, m] = False
            ignored |= m
            known |= m
        if spec.get("unlisted") == "ignore":
            ignored |= ~known
            known[:] = True
    undeclared = ~known
    hot[:, ignored | undeclared] = False
    return hot, ignored, undeclared


def main():
    stats = json.loads(Path(sys.argv[1]).read_text())
    root = Path(sys.argv[2])
    spec = stats["labels"]
    c = len(spec["classes"])
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() == ".png")
    if (root / "masks").is_dir():
        files = sorted((root / "masks").rglob("*.png"))
    cls = np.zeros(c, dtype=np.int64)
    imgs = np.zeros(c, dtype=np.int64)
    img_px = np.zeros(c, dtype=np.int64)
    cooc = np.zeros((c, c), dtype=np.int64)
    degree = np.zeros(4, dtype=np.int64)
    total = ignored_n = undeclared_n = 0
    sizes = {}
    for f in files:
        code, kind = codes(f)
        hot, ign, und = planes(code, kind, spec)
        valid = ~(ign | und)
        total += code.size
        ignored_n += int(ign.sum())
        undeclared_n += int(und.sum())
        per = hot.reshape(c, -1).sum(axis=1)
        cls += per
        imgs += per > 0
        img_px += np.where(per > 0, int(valid.sum()), 0)
        flat = hot.reshape(c, -1).astype(np.int64)
        cooc += flat @ flat.T
        d = hot.sum(axis=0)[valid]
        for i in range(4):
            degree[i] += int((np.minimum(d, 3) == i).sum())
        key = (code.shape[1], code.shape[0])
        sizes[key] = sizes.get(key, 0) + 1

    got = {
        "class_pixels": [r["pixels"] for r in stats["classes"]],
        "class_images": [r["images"] for r in stats["classes"]],
        "class_image_pixels": [r["image_pixels"] for r in stats["classes"]],
        "cooccurrence": stats["cooccurrence"],
        "degree": [stats["label_degree"][k] for k in ("0", "1", "2", "3+")],
        "total": stats["pixels"]["total"],
        "ignored": stats["pixels"]["ignored"],
        "undeclared": stats["pixels"]["undeclared"],
        "sizes": sorted((s["width"], s["height"], s["masks"]) for s in stats["image_sizes"]),
    }
    want = {
        "class_pixels": cls.tolist(),
        "class_images": imgs.tolist(),
        "class_image_pixels": img_px.tolist(),
        "cooccurrence": cooc.tolist(),
        "degree": degree.tolist(),
        "total": total,
        "ignored": ignored_n,
        "undeclared": undeclared_n,
        "sizes": sorted((w, h, n) for (w, h), n in sizes.items()),
    }
    if "--print" in sys.argv:
        print(json.dumps(want))
    bad = [k for k in want if want[k] != got[k]]
    for k in bad:
        print(f"MISMATCH {k}: numpy {want[k]} maskprep {got[k]}")
    valid_n = total - ignored_n - undeclared_n
    for i, r in enumerate(stats["classes"]):
        if cls[i] > 0:
            pw = (valid_n - cls[i]) / cls[i]
            if abs(r["pos_weight"] - pw) > 1e-9 * max(1.0, pw):
                print(f"MISMATCH pos_weight[{i}]: numpy {pw} maskprep {r['pos_weight']}")
                bad.append("pos_weight")
    if bad:
        sys.exit(1)
    print(f"ok: {len(files)} masks, {c} classes agree with numpy")


if __name__ == "__main__":
    main()

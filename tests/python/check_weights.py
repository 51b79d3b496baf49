"""Reads `maskprep weights -o DIR` output the way a PyTorch user does and
checks it against independent computations (numpy, scikit-learn).

Usage: check_weights.py DIR   (exit 0 when every check passes)
"""

import json
import math
import sys
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file
from sklearn.utils.class_weight import compute_class_weight


def close(got, want, what, rtol=1e-6):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert np.allclose(got, want, rtol=rtol, atol=0), f"{what}: {got} != {want}"


def main(out: Path) -> None:
    doc = json.loads((out / "weights.json").read_text())
    assert doc["format"] == "maskprep-weights/1", doc["format"]
    classes = doc["classes"]
    c = len(classes)
    counts = doc["counts"]
    n = np.array(counts["class_pixels"], dtype=np.float64)
    valid = float(counts["valid_pixels"])

    # The tensors, as `safetensors.torch.load_file` would give them.
    st = load_file(str(out / "weights.safetensors"))
    assert sorted(st) == ["pos_weight", "weight"], sorted(st)
    pw, w = st["pos_weight"], st["weight"]
    assert pw.dtype == np.float32, pw.dtype
    assert pw.shape == (c, 1, 1), pw.shape
    assert w.dtype == np.float32, w.dtype
    k = len(doc["weight"]["classes"])
    assert w.shape == (k,), w.shape
    assert np.isfinite(pw).all() and (pw > 0).all(), pw
    assert np.isfinite(w).all() and (w > 0).all(), w

    # pos_weight broadcasts over logits [N, C, H, W] per channel.
    logits = np.ones((2, c, 5, 7), dtype=np.float32)
    weighted = logits * pw
    assert weighted.shape == (2, c, 5, 7), weighted.shape
    for i in range(c):
        assert (weighted[:, i] == pw[i, 0, 0]).all(), i

    # Class names in the metadata, as JSON strings.
    with safe_open(str(out / "weights.safetensors"), framework="np") as f:
        meta = f.metadata()
    assert json.loads(meta["classes"]) == classes, meta
    assert json.loads(meta["weight_classes"]) == doc["weight"]["classes"], meta
    assert meta["scheme"] == doc["weight"]["scheme"], meta

    # The JSON lists exactly what the tensors hold.
    assert doc["pos_weight"]["shape"] == [c, 1, 1]
    assert np.array_equal(np.float32(doc["pos_weight"]["values"]), pw.reshape(-1))
    assert np.array_equal(np.float32(doc["weight"]["values"]), w)

    # pos_weight = (N - n_c) / n_c where the class has pixels, 1 otherwise.
    present = n > 0
    want_pw = np.where(present, (valid - n) / np.where(present, n, 1), 1.0)
    want_pw = np.where(want_pw == 0, 1.0, want_pw)
    cap = doc["options"]["max_weight"]
    if cap is not None:
        want_pw = np.minimum(want_pw, cap)
    close(pw.reshape(-1), want_pw, "pos_weight")

    # balanced == scikit-learn on a label array built from the same counts.
    wn = np.array(doc["weight"]["pixels"], dtype=np.int64)
    schemes = {s["name"]: np.array(s["values"], dtype=np.float64) for s in doc["schemes"]}
    assert list(schemes) == [
        "balanced",
        "inverse-frequency",
        "inverse-sqrt",
        "median-frequency",
        "enet",
        "effective-number",
    ], list(schemes)
    if (wn > 0).all() and cap is None:
        y = np.repeat(np.arange(k), wn)
        sk = compute_class_weight("balanced", classes=np.arange(k), y=y)
        close(schemes["balanced"], sk, "balanced vs scikit-learn")

        # The other schemes, recomputed independently.
        f = wn / valid
        close(schemes["inverse-frequency"], 1 / f, "inverse-frequency")
        close(schemes["inverse-sqrt"], 1 / np.sqrt(f), "inverse-sqrt")
        enet_c = doc["options"]["enet_c"]
        close(schemes["enet"], 1 / np.log(enet_c + f), "enet")
        beta = doc["options"]["beta"]
        raw = (1 - beta) / -np.expm1(wn * math.log(beta))
        close(schemes["effective-number"], raw * k / raw.sum(), "effective-number", 1e-5)
        if k == c:
            s = np.array(counts["class_image_pixels"], dtype=np.float64)
            freq = wn / s
            close(schemes["median-frequency"], np.median(freq) / freq, "median-frequency")

    chosen = doc["weight"]["scheme"]
    assert np.array_equal(w, np.float32(schemes[chosen])), f"weight is not scheme `{chosen}`"

    # Optional .npy copies hold the same tensors.
    if (out / "pos_weight.npy").exists():
        a = np.load(out / "pos_weight.npy")
        b = np.load(out / "weight.npy")
        assert a.dtype == np.float32 and a.shape == (c, 1, 1), (a.dtype, a.shape)
        assert np.array_equal(a, pw) and np.array_equal(b, w)

    readme = (out / "README.md").read_text()
    assert "load_file(" in readme and all(name in readme for name in classes), readme
    print(f"ok: {c} classes, pos_weight {pw.reshape(-1)}, weight ({chosen}) {w}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))

"""`LabelMap.decode` against the usual numpy recipes, on 512x512 masks.

- rgb-bits (each channel a class, overlaps combine): numpy thresholds the
  PIL-decoded RGB array, `(rgb >= 128).transpose(2, 0, 1)`;
- a 21-colour palette saved as RGB (VOC's colours): numpy compares each
  colour, `np.all(rgb == colour, -1)` per class, as most repositories do.

Each is timed two ways: from the PNG file (maskprep decodes it; numpy gets
PIL's `Image.open(...).convert("RGB")`) and from an RGB array already in
memory (after augmentations). The outputs are checked equal first. Median
of `--repeat` passes over `--masks` files, one thread (a DataLoader worker).

usage: decode_bench.py [--masks 64] [--repeat 7]  (needs the maskprep wheel)
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import maskprep

VOC = [
    (0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128), (128, 0, 128),
    (0, 128, 128), (128, 128, 128), (64, 0, 0), (192, 0, 0), (64, 128, 0), (192, 128, 0),
    (64, 0, 128), (192, 0, 128), (64, 128, 128), (192, 128, 128), (0, 64, 0), (128, 64, 0),
    (0, 192, 0), (128, 192, 0), (0, 64, 128),
]
SIZE = 512


def shapes(rng, n, size):
    """`n` random discs and boxes: a label image of indices 0..n."""
    yy, xx = np.mgrid[:size, :size]
    out = np.zeros((size, size), np.uint8)
    for k in range(1, n + 1):
        cy, cx = rng.integers(0, size, 2)
        r = rng.integers(size // 20, size // 5)
        if k % 2:
            out[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = k
        else:
            out[max(cy - r, 0) : cy + r, max(cx - r, 0) : cx + r] = k
    return out


def make(root, count):
    rng = np.random.default_rng(0)
    bits, pal = root / "rgb" / "masks", root / "palette" / "masks"
    bits.mkdir(parents=True)
    pal.mkdir(parents=True)
    for i in range(count):
        planes = [shapes(rng, 4, SIZE) > 0 for _ in range(3)]
        rgb = (np.stack(planes, -1) * 255).astype(np.uint8)
        Image.fromarray(rgb).save(bits / f"{i:04}.png")
        idx = shapes(rng, 20, SIZE)
        Image.fromarray(np.asarray(VOC, np.uint8)[idx]).save(pal / f"{i:04}.png")
    (root / "rgb" / "labels.toml").write_text(
        'kind = "rgb-bits"\nclasses = ["a", "b", "c"]\nthreshold = 128\n'
    )
    colors = "\n".join(f'"#{r:02x}{g:02x}{b:02x}" = ["c{k}"]' for k, (r, g, b) in enumerate(VOC))
    names = ", ".join(f'"c{k}"' for k in range(len(VOC)))
    (root / "palette" / "labels.toml").write_text(
        f'kind = "palette"\nclasses = [{names}]\n[colors]\n{colors}\n'
    )
    return sorted(bits.glob("*.png")), sorted(pal.glob("*.png"))


def numpy_bits(rgb):
    return (rgb >= 128).transpose(2, 0, 1).astype(np.uint8)


def numpy_palette(rgb, colours):
    return np.stack([np.all(rgb == c, -1) for c in colours]).astype(np.uint8)


def timed(fn, items, repeat):
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        for item in items:
            fn(item)
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--masks", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bits, pal = make(Path(tmp), args.masks)
        colours = np.asarray(VOC, np.uint8)
        cases = [
            ("rgb-bits", bits, maskprep.LabelMap.from_file(Path(tmp) / "rgb" / "labels.toml"),
             numpy_bits),
            ("palette-21", pal, maskprep.LabelMap.from_file(Path(tmp) / "palette" / "labels.toml"),
             lambda rgb: numpy_palette(rgb, colours)),
        ]
        print(f"{args.masks} masks {SIZE}x{SIZE}, median of {args.repeat} passes, one thread")
        for name, paths, lm, recipe in cases:
            arrays = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
            for p, a in zip(paths, arrays):
                assert np.array_equal(lm.decode(p), recipe(a)), p
                assert np.array_equal(lm.decode(a), recipe(a)), p
            ours_file = timed(lm.decode, paths, args.repeat)
            theirs_file = timed(lambda p: recipe(np.asarray(Image.open(p).convert("RGB"))),
                                paths, args.repeat)
            ours_arr = timed(lm.decode, arrays, args.repeat)
            theirs_arr = timed(recipe, arrays, args.repeat)
            per = 1000 / len(paths)
            print(
                f"{name:11} from file: maskprep {ours_file * per:6.2f} ms, PIL+numpy "
                f"{theirs_file * per:6.2f} ms, speed-up {theirs_file / ours_file:5.2f}x | "
                f"from array: maskprep {ours_arr * per:6.2f} ms, numpy {theirs_arr * per:6.2f} ms, "
                f"speed-up {theirs_arr / ours_arr:5.2f}x"
            )


if __name__ == "__main__":
    main()

"""The pycocotools side of `cargo bench --bench coco`: for every image of a
COCO file, the union per category of `annToMask` over its annotations, and
the per-category pixel totals, in N worker processes.

usage: coco_bench.py FILE N
"""

import json
import sys
from multiprocessing import Pool

import numpy as np
from pycocotools.coco import COCO

coco = None


def load(path):
    global coco
    coco = COCO(path)


def count(img_ids):
    cats = sorted(coco.cats)
    totals = np.zeros(len(cats), dtype=np.int64)
    for img_id in img_ids:
        info = coco.imgs[img_id]
        planes = np.zeros((len(cats), info["height"], info["width"]), dtype=np.uint8)
        for ann in coco.imgToAnns[img_id]:
            planes[cats.index(ann["category_id"])] |= coco.annToMask(ann)
        totals += planes.reshape(len(cats), -1).sum(axis=1, dtype=np.int64)
    return totals


def main():
    path, n = sys.argv[1], int(sys.argv[2])
    load(path)
    ids = sorted(coco.imgs)
    chunks = [ids[i::n] for i in range(n)]
    # Workers fork after the file is loaded: the parse is paid once.
    with Pool(n) as pool:
        totals = sum(pool.map(count, chunks))
    print(json.dumps([int(t) for t in totals]))


if __name__ == "__main__":
    main()

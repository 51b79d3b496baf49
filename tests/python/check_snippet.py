"""Checks the PyTorch snippet of a report page as a reader would paste it.

Usage: check_snippet.py REPORT_DIR SNIPPET.py

- the whole snippet parses (`ast`);
- its loading part (every line before the first `loss_fn`) runs as it is,
  in REPORT_DIR, with `safetensors.torch.load_file` backed by the
  safetensors numpy API and a CPU-only `torch` stand-in (torch is not a test
  dependency): so `device` must be defined before it is used;
- `w["pos_weight"]` is float32 [C, 1, 1], `w["weight"]` float32 [K], equal
  to `weights.json`, and `CLASSES` is the class list of `weights.json`.

Prints `snippet ok` and the loss line on success.
"""

import ast
import json
import os
import sys
import types

import numpy as np
from safetensors.numpy import load_file as np_load_file


def stand_ins():
    """A `torch` whose only use here is `torch.cuda.is_available()`, and a
    `safetensors.torch.load_file(path, device=...)` that returns numpy arrays."""
    torch = types.ModuleType("torch")
    torch.cuda = types.SimpleNamespace(is_available=lambda: False)
    st_torch = types.ModuleType("safetensors.torch")

    def load_file(path, device="cpu"):
        assert device in ("cpu", "cuda"), f"device is {device!r}"
        return np_load_file(path)

    st_torch.load_file = load_file
    sys.modules["torch"] = torch
    sys.modules["safetensors.torch"] = st_torch


def main():
    report, snippet_path = sys.argv[1], sys.argv[2]
    with open(snippet_path, encoding="utf-8") as f:
        code = f.read()
    ast.parse(code)
    lines = code.splitlines()
    cut = next(i for i, line in enumerate(lines) if line.startswith("loss_fn"))
    loading = "\n".join(lines[:cut]) + "\n"
    stand_ins()
    os.chdir(report)
    scope = {}
    exec(compile(loading, "snippet-loading", "exec"), scope)
    with open("weights.json", encoding="utf-8") as f:
        doc = json.load(f)
    w = scope["w"]
    c = len(doc["classes"])
    k = len(doc["weight"]["classes"])
    assert scope["CLASSES"] == doc["classes"], (scope["CLASSES"], doc["classes"])
    pos = w["pos_weight"]
    weight = w["weight"]
    assert pos.dtype == np.float32 and pos.shape == (c, 1, 1), (pos.dtype, pos.shape)
    assert weight.dtype == np.float32 and weight.shape == (k,), (weight.dtype, weight.shape)
    # JSON holds the float32 values in their shortest form: exact as float32.
    assert (pos.reshape(-1) == np.array(doc["pos_weight"]["values"], np.float32)).all()
    assert (weight == np.array(doc["weight"]["values"], np.float32)).all()
    print("snippet ok")
    print(lines[cut])


if __name__ == "__main__":
    main()

"""The Python wheel (`pip install maskprep`) against the cargo binary and
numpy. Installs nothing: `.ci/run` builds the wheel and installs it into
the venv that runs this file (`python -m pytest tests/python/test_api.py`).
The binary compared with is `target/debug/maskprep` (or `MASKPREP_BIN`).
"""

import json
import multiprocessing
import os
import pickle
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import maskprep

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("MASKPREP_BIN", ROOT / "target" / "debug" / "maskprep"))
# The console script pip put beside this Python.
SCRIPT = Path(sys.executable).parent / "maskprep"
PLATES = ROOT / "fixtures" / "plates"
PALETTE = ROOT / "fixtures" / "palette"
INDEX = ROOT / "fixtures" / "index" / "p"


def run(cmd, *args):
    return subprocess.run([*cmd, *map(str, args)], cwd=ROOT, capture_output=True)


def cli_json(*args):
    out = run([BIN], *args, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def canonical(doc):
    return json.dumps(doc, sort_keys=True)


@pytest.mark.parametrize(
    "args",
    [
        ["stats", "fixtures/plates"],
        ["stats", "fixtures/plates", "--json"],
        ["weights", "fixtures/palette", "--json"],
        ["labels", "fixtures/voc"],
        ["stats", "fixtures/no-such-dir"],
        ["stats", "--no-such-flag"],
    ],
)
def test_console_script_is_the_binary(args):
    want = run([BIN], *args)
    for cmd in ([SCRIPT], [sys.executable, "-m", "maskprep"]):
        got = run(cmd, *args)
        assert got.stdout == want.stdout, cmd
        assert got.stderr == want.stderr, cmd
        assert got.returncode == want.returncode, cmd


def rgb_bits_reference(path, threshold=128):
    rgb = np.asarray(Image.open(path).convert("RGB"))
    return (rgb >= threshold).transpose(2, 0, 1).astype(np.uint8)


def test_decode_rgb_bits_equals_numpy():
    lm = maskprep.LabelMap.from_file(PLATES / "labels.toml")
    assert lm.kind == "rgb-bits"
    assert lm.classes == ["qr_code", "scratch", "plate"]
    magenta = 0
    for path in sorted((PLATES / "masks").glob("*.png")):
        want = rgb_bits_reference(path)
        rgb = np.asarray(Image.open(path).convert("RGB"))
        rgba = np.asarray(Image.open(path).convert("RGBA"))
        for mask in (path, str(path), path.read_bytes(), rgb, rgba, rgb[:, ::-1][:, ::-1]):
            got = lm.decode(mask)
            assert got.dtype == np.uint8 and got.shape == want.shape
            np.testing.assert_array_equal(got, want)
        # Magenta (red + blue) is two classes at once.
        magenta += int(((want[0] == 1) & (want[2] == 1) & (want[1] == 0)).sum())
        got[0, 0, 0] = 1  # writable, so torch.from_numpy takes it as is
    assert magenta == 1152 - 4


def test_decode_palette_equals_numpy_and_marks_ignored():
    lm = maskprep.labels(PALETTE)
    spec = tomllib.loads((PALETTE / "labels.toml").read_text())
    assert lm.kind == "palette" and lm.classes == spec["classes"]
    assert lm.ignore == ["#ffffff"]
    for path in sorted(PALETTE.glob("*.png")):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        want = np.zeros((len(spec["classes"]), *rgb.shape[:2]), np.uint8)
        known = np.zeros(rgb.shape[:2], bool)
        for colour, names in spec["colors"].items():
            hit = np.all(rgb == np.frombuffer(bytes.fromhex(colour[1:]), np.uint8), -1)
            known |= hit
            for name in names:
                want[spec["classes"].index(name)][hit] = 1
        planes, ignored = lm.decode(path, ignored=True)
        np.testing.assert_array_equal(planes, want)
        np.testing.assert_array_equal(ignored, (~known).astype(np.uint8))


def test_decode_index_keeps_values_and_ignore_index():
    lm = maskprep.labels(INDEX)
    assert lm.kind == "index"
    for path in sorted(INDEX.glob("*.png")):
        raw = np.asarray(Image.open(path))  # palette PNG: the indices
        assert raw.ndim == 2
        got = lm.decode_index(path)
        assert got.dtype == np.int64 and got.shape == raw.shape
        np.testing.assert_array_equal(got, raw.astype(np.int64))
        planes, ignored = lm.decode(raw, ignored=True)
        classes = np.arange(len(lm.classes))[:, None, None]
        np.testing.assert_array_equal(planes, (raw[None] == classes).astype(np.uint8))
        np.testing.assert_array_equal(ignored, (raw == 255).astype(np.uint8))
        got = lm.decode_index(raw, ignore_index=-100)
        np.testing.assert_array_equal(got, np.where(raw == 255, -100, raw.astype(np.int64)))


def test_detected_map_says_why(monkeypatch):
    monkeypatch.chdir(ROOT)
    lm = maskprep.labels("fixtures/voc")
    assert (lm.kind, lm.ignore) == ("index", [255])
    doc = cli_json("stats", "fixtures/voc")
    assert lm.to_toml() == run([BIN], "labels", "fixtures/voc").stdout.decode()
    assert lm.confidence == lm.detection["confidence"]
    assert lm.evidence == lm.detection["evidence"] and lm.evidence
    assert maskprep.LabelMap.from_file("voc").confidence is None
    assert doc["labels"]["classes"] == lm.classes
    assert doc["labels_detection"] == lm.detection


def test_decode_index_refuses_multi_label():
    lm = maskprep.LabelMap.from_file(PLATES / "labels.toml")
    # Background carries no class: index C (the `[C+1]` weight's last
    # entry); a magenta pixel carries two.
    black = np.zeros((2, 3, 3), np.uint8)
    black[0, 0, 1] = 255
    want = np.array([[1, 3, 3], [3, 3, 3]])
    np.testing.assert_array_equal(lm.decode_index(black), want)
    with pytest.raises(maskprep.MaskprepError, match="carries [23] classes"):
        lm.decode_index(PLATES / "masks" / "0001.png")
    magenta = np.zeros((2, 2, 3), np.uint8)
    magenta[..., 0] = magenta[..., 2] = 255
    with pytest.raises(maskprep.MaskprepError, match="carries 2 classes"):
        lm.decode_index(magenta)


@pytest.mark.parametrize("dataset", ["fixtures/plates", "fixtures/palette", "fixtures/voc"])
def test_stats_is_the_cli_document(dataset, monkeypatch):
    monkeypatch.chdir(ROOT)  # paths in the document are as given
    assert canonical(maskprep.stats(dataset)) == canonical(cli_json("stats", dataset))


def test_stats_class_pixels():
    doc = maskprep.stats(PLATES)
    assert [c["pixels"] for c in doc["classes"]] == [1152, 28, 15390]


def test_weights_arrays_and_document_equal_the_cli(monkeypatch):
    monkeypatch.chdir(ROOT)
    got = maskprep.weights("fixtures/plates")
    want = cli_json("weights", "fixtures/plates")
    assert canonical(got["document"]) == canonical(want)
    pos = got["pos_weight"]
    assert pos.dtype == np.float32 and pos.shape == (3, 1, 1)
    np.testing.assert_array_equal(
        pos.ravel(), np.asarray(want["pos_weight"]["values"], np.float32)
    )
    assert got["weight"].dtype == np.float32
    # From the stats document, the same numbers.
    from_doc = maskprep.weights(maskprep.stats("fixtures/plates"), scheme="enet")
    np.testing.assert_array_equal(from_doc["pos_weight"], pos)
    assert from_doc["document"]["weight"]["scheme"] == "enet"


def test_score_is_the_cli_document(monkeypatch):
    monkeypatch.chdir(ROOT)
    got = maskprep.score("fixtures/plates", "fixtures/plates-pred")
    want = cli_json("score", "--truth", "fixtures/plates", "--pred", "fixtures/plates-pred")
    assert canonical(got) == canonical(want)
    with pytest.raises(maskprep.MaskprepError, match="fixtures/no-such-dir"):
        maskprep.score("fixtures/no-such-dir", "fixtures/plates-pred")


def decode_pickled(args):
    blob, path = args
    return pickle.loads(blob).decode(path).sum()


def test_label_map_pickles_into_workers():
    lm = maskprep.labels(PALETTE)
    back = pickle.loads(pickle.dumps(lm))
    assert back.to_toml() == lm.to_toml() and back.classes == lm.classes
    paths = [str(p) for p in sorted(PALETTE.glob("*.png"))]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        sums = pool.map(decode_pickled, [(pickle.dumps(lm), p) for p in paths])
    assert sums == [lm.decode(p).sum() for p in paths]


def test_errors_raise_maskprep_error_naming_the_file():
    assert issubclass(maskprep.MaskprepError, ValueError)
    with pytest.raises(maskprep.MaskprepError, match="fixtures/no-such-dir"):
        maskprep.stats("fixtures/no-such-dir")
    lm = maskprep.LabelMap.from_file(PLATES / "labels.toml")
    bad = ROOT / "fixtures" / "bad" / "truncated.png"
    with pytest.raises(maskprep.MaskprepError, match="truncated.png"):
        lm.decode(bad)
    with pytest.raises(maskprep.MaskprepError, match="expected uint8"):
        lm.decode(np.zeros((4, 4), np.float32))
    with pytest.raises(maskprep.MaskprepError, match="not a weight scheme"):
        maskprep.weights(PLATES, scheme="nope")


def test_stats_of_a_coco_export_equal_the_cli(tmp_path, monkeypatch):
    """An annotation export through the API: the CLI's document, with and
    without crowd regions ignored."""

    root = tmp_path / "coco"
    subprocess.run(
        [sys.executable, str(ROOT / "tests/python/coco_e2e.py"), "gen", "cvat", str(root), "3"],
        check=True,
        capture_output=True,
    )
    monkeypatch.chdir(ROOT)
    for crowd in ["count", "ignore"]:
        got = maskprep.stats(str(root), crowd=crowd)
        assert canonical(got) == canonical(cli_json("stats", str(root), "--crowd", crowd))
    assert maskprep.labels(str(root)).kind == "categories"
    with pytest.raises(maskprep.MaskprepError, match="crowd"):
        maskprep.stats(str(root), crowd="maybe")


def blobs(size, seed):
    """A mask's planes: a few overlapping discs and boxes per class."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    planes = []
    for _ in range(3):
        plane = np.zeros((size, size), bool)
        for _ in range(3):
            cy, cx, r = rng.integers(0, size, 2).tolist() + [int(rng.integers(4, size // 3))]
            plane |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        planes.append(plane)
    return np.stack(planes)


def test_decode_anti_aliased_rgb_masks_equals_thresholded_numpy(tmp_path):
    """Colour masks saved with blurred edges: detected as rgb-bits, and each
    channel decoded as numpy's `>= threshold`, overlaps (magenta) included."""
    from PIL import ImageFilter

    masks = tmp_path / "masks"
    masks.mkdir()
    blended = 0
    for i in range(4):
        rgb = (blobs(96, i).transpose(1, 2, 0) * 255).astype(np.uint8)
        soft = Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(1.2))
        soft.save(masks / f"{i:03}.png")
        arr = np.asarray(soft)
        blended += int(((arr > 0) & (arr < 255)).any(-1).sum())
    assert blended > 500  # the edges really are blended
    lm = maskprep.labels(tmp_path)
    assert lm.kind == "rgb-bits", lm.evidence
    threshold = tomllib.loads(lm.to_toml()).get("threshold", 128)
    for path in sorted(masks.glob("*.png")):
        want = rgb_bits_reference(path, threshold)[: len(lm.classes)]
        np.testing.assert_array_equal(lm.decode(path), want)
        np.testing.assert_array_equal(lm.decode(np.asarray(Image.open(path))), want)


@pytest.mark.parametrize("blur", [0, 1.5])
def test_decode_binary_masks_equals_numpy(tmp_path, blur):
    """0/255 masks (and the same with anti-aliased edges): one class, the
    pixels at or above the threshold."""
    from PIL import ImageFilter

    masks = tmp_path / "masks"
    masks.mkdir()
    for i in range(4):
        gray = Image.fromarray((blobs(80, 10 + i)[0] * 255).astype(np.uint8))
        if blur:
            gray = gray.filter(ImageFilter.GaussianBlur(blur))
        gray.save(masks / f"{i:03}.png")
    lm = maskprep.labels(tmp_path)
    assert lm.kind == "binary", lm.evidence
    threshold = tomllib.loads(lm.to_toml()).get("threshold", 128)
    for path in sorted(masks.glob("*.png")):
        gray = np.asarray(Image.open(path))
        want = (gray >= threshold).astype(np.uint8)[None]
        np.testing.assert_array_equal(lm.decode(path), want)
        np.testing.assert_array_equal(lm.decode(gray), want)
        # Background: index 1 (C), the `[C+1]` weight's last entry.
        index = lm.decode_index(path, ignore_index=-100)
        np.testing.assert_array_equal(index, np.where(gray >= threshold, 0, 1))


def test_io_errors_are_os_errors(tmp_path):
    lm = maskprep.LabelMap.from_file(PLATES / "labels.toml")
    missing = tmp_path / "missing.png"
    with pytest.raises(OSError, match="missing.png") as caught:
        lm.decode(missing)
    assert isinstance(caught.value, maskprep.MaskprepError)
    assert isinstance(caught.value, maskprep.MaskprepIOError)
    # What a file holds is a value error, not an OSError.
    with pytest.raises(maskprep.MaskprepError) as caught:
        lm.decode(ROOT / "fixtures" / "bad" / "truncated.png")
    assert not isinstance(caught.value, OSError)


def test_score_sweep_thresholds_are_numpy_and_equal_the_cli(tmp_path, monkeypatch):
    """Logits of the plates: the document with its sweep equals the CLI's,
    and the chosen thresholds are the CLI's `thresholds.json` as float32."""
    monkeypatch.chdir(ROOT)
    pred = tmp_path / "logits"
    pred.mkdir()
    rng = np.random.default_rng(7)
    for path in sorted((PLATES / "masks").glob("*.png")):
        truth = rgb_bits_reference(path).astype(np.float32)
        logits = (truth * 4 - 2 + rng.normal(0, 1.5, truth.shape)).astype(np.float32)
        np.save(pred / f"{path.stem}.npy", logits)
    got = maskprep.score("fixtures/plates", str(pred), sweep=True, sweep_bins=20)
    chosen = got.pop("thresholds")
    out = tmp_path / "cli"
    want = cli_json(
        "score", "--truth", "fixtures/plates", "--pred", pred,
        "--sweep", "--sweep-bins", "20", "--sweep-out", out,
    )
    assert canonical(got) == canonical(want)
    file = json.loads((out / "thresholds.json").read_text())
    for key in ["iou", "dice"]:
        assert chosen[key].dtype == np.float32 and chosen[key].shape == (3,)
        np.testing.assert_array_equal(chosen[key], np.asarray(file[key], np.float32))
    assert chosen["default"] == file["default"] == 0.0
    with pytest.raises(maskprep.MaskprepError, match="argmax"):
        maskprep.score("fixtures/plates", str(pred), sweep=True, argmax=True)
    with pytest.raises(maskprep.MaskprepError, match="backend"):
        maskprep.score("fixtures/plates", str(pred), backend="tpu")


def test_check_is_the_cli_document_and_weights_are_numpy(tmp_path, monkeypatch):
    """`check` through the API: the CLI's document, and the sampling
    weights as float32 in the order of their masks."""
    for split, seeds in [("train", range(6)), ("val", range(6, 9))]:
        masks = tmp_path / split / "masks"
        masks.mkdir(parents=True)
        for i in seeds:
            rgb = (blobs(48, i).transpose(1, 2, 0) * 255).astype(np.uint8)
            Image.fromarray(rgb).save(masks / f"{i:03}.png")
    # The same mask in both splits: a leak.
    (tmp_path / "val" / "masks" / "000.png").write_bytes(
        (tmp_path / "train" / "masks" / "000.png").read_bytes()
    )
    labels = tmp_path / "labels.toml"
    labels.write_text('kind = "rgb-bits"\nclasses = ["a", "b", "c"]\n')
    got = maskprep.check(tmp_path, labels=str(labels), sampling_weights=True)
    sampling = got.pop("sampling")
    out = tmp_path / "w.safetensors"
    want = cli_json("check", tmp_path, "-l", labels, "--sampling-weights", out)
    assert canonical(got) == canonical(want)
    file = json.loads(out.with_name("w.safetensors.json").read_text())
    assert sampling["masks"] == file["masks"]
    assert sampling["weights"].dtype == np.float32
    np.testing.assert_array_equal(sampling["weights"], np.asarray(file["weights"], np.float32))
    by_split = maskprep.check(
        splits={"train": tmp_path / "train", "val": tmp_path / "val"}, labels=str(labels)
    )
    assert canonical(by_split["classes"]) == canonical(got["classes"])
    with pytest.raises(maskprep.MaskprepError, match="connectivity"):
        maskprep.check(tmp_path, connectivity=6)

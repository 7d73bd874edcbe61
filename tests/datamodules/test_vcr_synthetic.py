"""Synthetic VCR: official layout and schema, deterministic, answers and rationales true to the image."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from vltasks.datamodules.synthetic import COLORS, WRITERS
from vltasks.datamodules.synthetic.vcr import write_vcr

FIELDS = {
    "movie",
    "objects",
    "img_fn",
    "metadata_fn",
    "question",
    "answer_choices",
    "rationale_choices",
    "answer_label",
    "rationale_label",
    "annot_id",
    "img_id",
    "question_number",
}


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("vcr_syn")
    write_vcr(out, {"train": 30, "val": 6}, seed=4, test_splits={"test": 5})
    return out


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_layout_schema_and_determinism(root, tmp_path):
    assert WRITERS.get("vcr") is write_vcr
    assert {p.name for p in root.iterdir()} == {
        "train.jsonl",
        "val.jsonl",
        "test.jsonl",
        "vcr1images",
        "synthetic_meta.json",
    }
    train = _lines(root / "train.jsonl")
    assert train and all(FIELDS <= set(x) for x in train)
    assert [x["annot_id"] for x in train] == [f"train-{i}" for i in range(len(train))]
    assert all(x["img_fn"].startswith(f"lsmdc_{x['movie']}/") for x in train)
    meta = json.loads((root / "vcr1images" / train[0]["metadata_fn"]).read_text())
    assert {"boxes", "segms", "names", "width", "height"} <= set(meta)
    assert meta["names"] == train[0]["objects"] and all(len(b) == 5 for b in meta["boxes"])
    test = _lines(root / "test.jsonl")
    hidden = {"answer_label", "rationale_label", "answer_sources", "rationale_sources", "answer_orig"}
    assert test and not any(hidden & set(x) for x in test)
    write_vcr(tmp_path / "again", {"train": 30, "val": 6}, seed=4, test_splits={"test": 5})
    assert (tmp_path / "again" / "train.jsonl").read_bytes() == (root / "train.jsonl").read_bytes()
    write_vcr(tmp_path / "other", {"train": 30}, seed=5)
    assert (tmp_path / "other" / "train.jsonl").read_bytes() != (root / "train.jsonl").read_bytes()


def _color_at(image: np.ndarray, box: list[float]) -> str:
    cx, cy = int((box[0] + box[2]) / 2), int((box[1] + box[3]) / 2)
    rgb = image[cy - 1 : cy + 2, cx - 1 : cx + 2].mean((0, 1))
    return min(COLORS, key=lambda c: float(np.abs(np.array(COLORS[c]) - rgb).sum()))


def test_answers_and_rationales_are_true_and_the_others_false(root):
    for x in _lines(root / "train.jsonl") + _lines(root / "val.jsonl"):
        meta = json.loads((root / "vcr1images" / x["metadata_fn"]).read_text())
        image = np.asarray(Image.open(root / "vcr1images" / x["img_fn"]).convert("RGB"), dtype=float)
        (i,) = next(t for t in x["question"] if isinstance(t, list))
        assert x["objects"].count(x["objects"][i]) == 1  # the tag alone designates the object
        color = _color_at(image, meta["boxes"][i])
        answers = [a[2] for a in x["answer_choices"]]
        assert answers[x["answer_label"]] == color and len(set(answers)) == 4
        rationales = x["rationale_choices"]
        assert all(r[0] == [i] and r[2] == color for r in rationales)  # all agree with the answer
        (j,) = rationales[0][4]
        claims = [r[6] for r in rationales]
        assert claims[x["rationale_label"]] == _color_at(image, meta["boxes"][j]) and len(set(claims)) == 4

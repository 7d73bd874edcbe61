"""Synthetic Karpathy splits: Karpathy's exact JSON schema, COCO file names, deterministic, learnable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from vltasks.datamodules.synthetic import WRITERS
from vltasks.datamodules.synthetic.karpathy import annotation_path, write_karpathy

SPLITS = {"train": 8, "restval": 3, "val": 6}
IMAGE_KEYS = ["filepath", "sentids", "filename", "imgid", "split", "sentences", "cocoid"]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("karpathy")
    write_karpathy(out, SPLITS, seed=4, test_splits={"test": 5})
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_and_schema_are_karpathys(root):
    data = json.loads(annotation_path(root).read_text())
    assert list(data) == ["images", "dataset"] and data["dataset"] == "coco"
    images = data["images"]
    assert [im["imgid"] for im in images] == list(range(len(images)))
    assert {s: sum(im["split"] == s for im in images) for s in ("train", "restval", "val", "test")} == {
        **SPLITS,
        "test": 5,
    }
    sentids = [s["sentid"] for im in images for s in im["sentences"]]
    assert len(set(sentids)) == len(sentids) == 5 * len(images)
    for im in images:
        assert list(im) == IMAGE_KEYS
        folder = "train2014" if im["split"] == "train" else "val2014"
        assert im["filepath"] == folder and im["filename"] == f"COCO_{folder}_{im['cocoid']:012d}.jpg"
        assert Image.open(root / folder / im["filename"]).size == (64, 64)
        assert im["sentids"] == [s["sentid"] for s in im["sentences"]]
        for s in im["sentences"]:
            assert list(s) == ["tokens", "raw", "imgid", "sentid"] and s["imgid"] == im["imgid"]
            assert s["raw"][0].isupper() and all(t.islower() for t in s["tokens"])
        assert len({s["raw"].rstrip(".") for s in im["sentences"]}) >= 4  # varied phrasings
    assert WRITERS.get("karpathy") is write_karpathy


def test_deterministic_and_seeded(root, tmp_path):
    write_karpathy(tmp_path / "a", SPLITS, seed=4, test_splits={"test": 5})
    assert _files(tmp_path / "a") == _files(root)
    write_karpathy(tmp_path / "b", SPLITS, seed=5, test_splits={"test": 5})
    assert _files(tmp_path / "b")["dataset_coco.json"] != _files(root)["dataset_coco.json"]


def test_evaluation_scenes_are_distinct_and_captions_name_every_object(tmp_path):
    summary = write_karpathy(tmp_path, {"train": 2, "val": 60}, seed=1)
    assert summary["splits"]["val"]["distinct_scenes"] == 60
    assert summary["splits"]["val"]["chance_r1"] == pytest.approx(1 / 60)
    data = json.loads(annotation_path(tmp_path).read_text())
    for im in data["images"]:
        counts = {
            len([t for t in s["tokens"] if t in ("circle", "square", "triangle")]) for s in im["sentences"]
        }
        assert len(counts) == 1 and counts.pop() in (2, 3)  # every caption names all 2-3 shapes


def test_flickr30k_layout_and_bad_split_names(tmp_path):
    write_karpathy(tmp_path, {"train": 2, "test": 2}, dataset="flickr30k")
    data = json.loads((tmp_path / "dataset_flickr30k.json").read_text())
    assert data["dataset"] == "flickr30k"
    for im in data["images"]:
        assert "filepath" not in im and "cocoid" not in im
        assert (tmp_path / "flickr30k-images" / im["filename"]).is_file()
    with pytest.raises(ValueError, match="Karpathy splits"):
        write_karpathy(tmp_path / "x", {"train2014": 2})

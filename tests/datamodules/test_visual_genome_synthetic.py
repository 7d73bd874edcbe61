"""The synthetic Visual Genome writer: VG v1.2 files and DenseCap's split file, one region per shape
with a phrase that an independent reading of the scene confirms, deterministic, with baselines."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from PIL import Image
from vltasks.datamodules.synthetic import COLORS, SHAPES, WRITERS, image_rng, sample_scene
from vltasks.datamodules.synthetic.visual_genome import write_visual_genome
from vltasks.datamodules.visual_genome import densecap_words

from vltasks.metrics.functional.densecap import meteor_problem


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != "synthetic_meta.json":
            h.update(p.relative_to(root).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("vg")
    return root, write_visual_genome(root, {"train": 10, "val": 5}, seed=4, test_splits={"test": 3})


def test_registered_with_the_reader_format():
    assert WRITERS.get("visual_genome") is write_visual_genome


def test_vg_v12_files_and_densecap_splits(written):
    root, summary = written
    regions = json.loads((root / "region_descriptions.json").read_text())
    images = json.loads((root / "image_data.json").read_text())
    splits = json.loads((root / "densecap_splits.json").read_text())
    assert list(splits) == ["train", "val", "test"] and [len(v) for v in splits.values()] == [10, 5, 3]
    assert (
        {e["id"] for e in regions}
        == {i["image_id"] for i in images}
        == {i for v in splits.values() for i in v}
    )
    region_ids = [r["region_id"] for e in regions for r in e["regions"]]
    assert len(set(region_ids)) == len(region_ids)
    for entry in regions:
        assert set(entry) == {"id", "regions"} and entry["regions"]
        for r in entry["regions"]:
            assert set(r) == {"region_id", "image_id", "phrase", "x", "y", "width", "height"}
            assert r["image_id"] == entry["id"] and r["width"] > 0 and r["height"] > 0
            assert 0 <= r["x"] and r["x"] + r["width"] <= 64 and 0 <= r["y"] and r["y"] + r["height"] <= 64
    for image in images:
        assert Image.open(root / "VG_100K" / f"{image['image_id']}.jpg").size == (
            image["width"],
            image["height"],
        )
        assert image["url"].endswith(f"VG_100K/{image['image_id']}.jpg")
    assert summary["splits"]["val"] == {
        "images": 5,
        "regions": sum(len(e["regions"]) for e in regions if e["id"] in splits["val"]),
    }


def test_every_phrase_names_its_shape_colour_and_side(written):
    root, _ = written
    regions = json.loads((root / "region_descriptions.json").read_text())
    styles = set()
    for entry in regions:
        scene = sample_scene(image_rng(4, entry["id"], 0), entry["id"], 64, 1, 3)
        assert len(scene.objects) == len(entry["regions"])
        for obj, r in zip(scene.objects, entry["regions"]):
            assert (r["x"], r["y"], r["width"], r["height"]) == tuple(int(v) for v in obj.bbox_xywh)
            words = densecap_words(r["phrase"])
            assert [w for w in words if w in COLORS] == [obj.color] and [w for w in words if w in SHAPES] == [
                obj.shape
            ]
            centre = r["x"] + r["width"] / 2
            side = "left" if centre < 64 / 3 else "right" if centre > 128 / 3 else None
            if side:
                assert words[-3:] == ["on", "the", side] and words[0] != "a"
            else:
                assert words[0] == "a" and "on" not in words
            styles.add((r["phrase"][0].isupper(), r["phrase"].endswith(".")))
    assert len(styles) >= 2  # annotators' capitals and full stops, for the reader to remove


def test_same_seed_same_files_and_baselines_recorded(written, tmp_path):
    root, summary = written
    again = write_visual_genome(tmp_path, {"train": 10, "val": 5}, seed=4, test_splits={"test": 3})
    assert _digest(tmp_path) == _digest(root) and again["baselines"] == summary["baselines"]
    assert write_visual_genome(tmp_path / "other", {"train": 10, "val": 5}, seed=5)["most_frequent_phrase"]
    assert set(summary["baselines"]) == {"val", "test"}  # every split but the training one
    keys = set(summary["baselines"]["val"])
    assert {k.split(",")[0] for k in keys} == (
        {"det_map", "map"} if meteor_problem() is None else {"det_map"}
    )
    assert all(0.0 <= v < 0.2 for v in summary["baselines"]["val"].values())
    assert summary["most_frequent_phrase"] in {
        " ".join(densecap_words(r["phrase"]))
        for e in json.loads((root / "region_descriptions.json").read_text())
        for r in e["regions"]
    }


def test_without_meteor_the_summary_says_why(monkeypatch, tmp_path):
    from vltasks.datamodules.synthetic import visual_genome

    monkeypatch.setattr(visual_genome, "meteor_problem", lambda: "Java was not found")
    summary = write_visual_genome(tmp_path, {"train": 4, "val": 2}, seed=1)
    assert summary["meteor"] == "unavailable, map not computed: Java was not found"
    assert all(k.startswith("det_map") for k in summary["baselines"]["val"])

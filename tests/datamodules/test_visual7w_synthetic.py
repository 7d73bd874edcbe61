"""Synthetic Visual7W telling: official schema, deterministic, one true candidate per question."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vltasks.datamodules.synthetic import WRITERS, Scene, image_rng, sample_scene
from vltasks.datamodules.synthetic.visual7w import NUMBERS, write_visual7w


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("v7w_syn")
    write_visual7w(out, {"train": 25, "val": 5}, seed=6, test_splits={"test": 4})
    return out


def test_layout_schema_and_determinism(root, tmp_path):
    assert WRITERS.get("visual7w") is write_visual7w
    data = json.loads((root / "dataset_v7w_telling.json").read_text())
    assert {i["split"] for i in data["images"]} == {"train", "val", "test"}
    for img in data["images"]:
        assert (
            img["filename"] == f"v7w_{img['image_id']}.jpg" and (root / "images" / img["filename"]).is_file()
        )
        for qa in img["qa_pairs"]:
            assert set(qa) == {"qa_id", "image_id", "question", "answer", "multiple_choices", "type"}
            assert qa["question"].lower().startswith(qa["type"]) and qa["answer"].endswith(".")
            assert len(set([qa["answer"], *qa["multiple_choices"]])) == 4
    ids = [qa["qa_id"] for i in data["images"] for qa in i["qa_pairs"]]
    assert len(ids) == len(set(ids))
    write_visual7w(tmp_path / "a", {"train": 25, "val": 5}, seed=6, test_splits={"test": 4})
    assert (tmp_path / "a" / "dataset_v7w_telling.json").read_bytes() == (
        root / "dataset_v7w_telling.json"
    ).read_bytes()


def test_answers_are_true_to_the_scene(root):
    data = json.loads((root / "dataset_v7w_telling.json").read_text())
    for img in data["images"]:
        scene: Scene = sample_scene(image_rng(6, img["image_id"], 0), img["image_id"], 64, 1, 3)
        for qa in img["qa_pairs"]:
            words = qa["question"].rstrip("?").split()
            if qa["type"] == "what":
                (obj,) = [o for o in scene.objects if o.shape == words[-1]]
                assert qa["answer"] == f"{obj.color.capitalize()}."
            elif qa["type"] == "where":
                (obj,) = [o for o in scene.objects if o.shape == words[-1]]
                said = [a.rstrip(".").split()[-2:] for a in [qa["answer"], *qa["multiple_choices"]]]
                near = [o for o in scene.objects if [o.color, o.shape] == said[0]]
                assert len(near) == 1 and near[0] is not obj  # the answer names one other object
                assert all(scene.count(c, s) == 0 for c, s in said[1:])  # the wrong ones none
            else:
                n = scene.count(color=words[2]) if len(words) == 6 else len(scene.objects)
                assert qa["answer"] == NUMBERS[n]

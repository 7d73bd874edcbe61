"""Synthetic VQAv2: official layout and schema, deterministic, answers true to the scene."""

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image
from vltasks.datamodules.synthetic import (
    WRITERS,
    image_rng,
    normalize_answer,
    sample_scene,
    vqa_accuracy,
    write_vqav2,
)
from vltasks.datamodules.synthetic.__main__ import main

SPLITS = {"train2014": 200, "val2014": 150}
TESTS = {"test2015": 20, "test-dev2015": 8}
SEED = 5


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("vqav2")
    write_vqav2(out, SPLITS, seed=SEED, test_splits=TESTS)
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_deterministic(root, tmp_path):
    write_vqav2(tmp_path / "a", SPLITS, seed=SEED, test_splits=TESTS)
    assert _files(tmp_path / "a") == _files(root)
    write_vqav2(tmp_path / "b", {"train2014": 10}, seed=SEED + 1)
    assert (
        _files(tmp_path / "b")["v2_mscoco_train2014_annotations.json"]
        != _files(root)["v2_mscoco_train2014_annotations.json"]
    )


def test_layout_and_schema(root):
    names = {p.name for p in root.iterdir()}
    assert names == {
        "train2014",
        "val2014",
        "test2015",
        "synthetic_meta.json",
        *(f"v2_OpenEnded_mscoco_{s}_questions.json" for s in [*SPLITS, *TESTS]),
        *(f"v2_mscoco_{s}_annotations.json" for s in SPLITS),
    }
    seen_images: dict[str, set[int]] = {}
    for split in [*SPLITS, *TESTS]:
        q = _load(root / f"v2_OpenEnded_mscoco_{split}_questions.json")
        assert set(q) == {"info", "task_type", "data_type", "license", "data_subtype", "questions"}
        assert (q["task_type"], q["data_type"], q["data_subtype"]) == ("Open-Ended", "mscoco", split)
        image_dir = "test2015" if split == "test-dev2015" else split
        counts = Counter(r["image_id"] for r in q["questions"])
        assert all(2 <= c <= 4 for c in counts.values())
        for r in q["questions"]:
            assert set(r) == {"image_id", "question", "question_id"}
            assert (
                type(r["image_id"]) is int and type(r["question_id"]) is int and r["question"].endswith("?")
            )
            assert r["question_id"] // 1000 == r["image_id"] and r["question_id"] % 1000 < 4
        seen_images[split] = set(counts)
        for image_id in counts:
            with Image.open(root / image_dir / f"COCO_{image_dir}_{image_id:012d}.jpg") as img:
                assert img.format == "JPEG" and img.size == (64, 64) and img.mode == "RGB"
        if split not in SPLITS:
            continue
        a = _load(root / f"v2_mscoco_{split}_annotations.json")
        assert set(a) == {"info", "license", "data_subtype", "annotations"} and a["data_subtype"] == split
        assert [x["question_id"] for x in a["annotations"]] == [x["question_id"] for x in q["questions"]]
        for x in a["annotations"]:
            assert set(x) == {
                "question_type",
                "multiple_choice_answer",
                "answers",
                "image_id",
                "answer_type",
                "question_id",
            }
            assert x["answer_type"] in ("yes/no", "number", "other")
            assert x["question_type"] in (
                "what color is the",
                "what shape is the",
                "how many",
                "is there a",
                "is the",
            )
            assert [y["answer_id"] for y in x["answers"]] == list(range(1, 11))
            for y in x["answers"]:
                assert set(y) == {"answer", "answer_confidence", "answer_id"}
                assert isinstance(y["answer"], str) and y["answer_confidence"] in ("yes", "maybe", "no")
    assert len(seen_images["train2014"]) == SPLITS["train2014"]
    assert not seen_images["train2014"] & seen_images["val2014"]
    assert not (seen_images["train2014"] | seen_images["val2014"]) & seen_images["test2015"]
    assert seen_images["test-dev2015"] < seen_images["test2015"]


def _true_answer(question: str, image_id: int) -> str:
    scene = sample_scene(image_rng(SEED, image_id, 0), image_id)
    objs = scene.objects
    find = {f"{o.color} {o.shape}": o for o in objs}
    if m := re.fullmatch(r"what color is the (\w+)\?", question):
        (o,) = [o for o in objs if o.shape == m[1]]
        return o.color
    if m := re.fullmatch(r"what shape is the (\w+) object\?", question):
        (o,) = [o for o in objs if o.color == m[1]]
        return o.shape
    if question == "how many shapes are there?":
        return str(len(objs))
    if m := re.fullmatch(r"how many (\w+) objects are there\?", question):
        return str(sum(o.color == m[1] for o in objs))
    if m := re.fullmatch(r"how many (\w+)s are there\?", question):
        return str(sum(o.shape == m[1] for o in objs))
    if m := re.fullmatch(r"is there a (\w+ \w+)\?", question):
        return "yes" if m[1] in find else "no"
    m = re.fullmatch(
        r"is the (\w+ \w+) (to the left of|to the right of|above|below) the (\w+ \w+)\?", question
    )
    assert m, question
    (ax, ay), (bx, by) = find[m[1]].center, find[m[3]].center
    assert max(abs(ax - bx), abs(ay - by)) >= 8  # a clear margin on some axis
    holds = {"to the left of": ax < bx, "to the right of": ax > bx, "above": ay < by, "below": ay > by}[m[2]]
    return "yes" if holds else "no"


def test_answers_true_to_scene_with_disagreement(root):
    meta = _load(root / "synthetic_meta.json")
    q = _load(root / "v2_OpenEnded_mscoco_val2014_questions.json")["questions"]
    a = _load(root / "v2_mscoco_val2014_annotations.json")["annotations"]
    assert set(Counter(meta["question_kind"][str(r["question_id"])] for r in q)) == {
        "color",
        "shape",
        "count",
        "exist",
        "position",
    }
    disagree = variants = 0
    for r, x in zip(q, a):
        truth = _true_answer(r["question"], r["image_id"])
        assert x["multiple_choice_answer"] == truth, r
        norm = [normalize_answer(y["answer"]) for y in x["answers"]]
        assert norm.count(truth) >= 6 and Counter(norm).most_common(1)[0][0] == truth
        disagree += len(set(norm)) > 1
        variants += sum(y["answer"] != n for y, n in zip(x["answers"], norm))
    assert disagree > 0.3 * len(a) and variants > 0
    yes_no = [x["multiple_choice_answer"] for x in a if x["answer_type"] == "yes/no"]
    assert 0.35 < yes_no.count("yes") / len(yes_no) < 0.65
    for r in _load(root / "v2_OpenEnded_mscoco_test2015_questions.json")["questions"]:
        assert meta["test_answers"][str(r["question_id"])] == _true_answer(r["question"], r["image_id"])


def test_majority_baseline_is_low(root):
    train = _load(root / "v2_mscoco_train2014_annotations.json")["annotations"]
    val = _load(root / "v2_mscoco_val2014_annotations.json")["annotations"]
    majority = Counter(x["multiple_choice_answer"] for x in train).most_common(1)[0][0]
    acc = sum(vqa_accuracy(majority, [y["answer"] for y in x["answers"]]) for x in val) / len(val)
    assert 0.1 < acc < 0.35, acc


def test_cli(tmp_path, capsys):
    assert main(["vqav2", "--root", str(tmp_path), "--train", "4", "--val", "2", "--seed", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["splits"]["val2014"]["images"] == 2
    assert len(list((tmp_path / "train2014").glob("COCO_train2014_*.jpg"))) == 4


@pytest.mark.parametrize("fmt", WRITERS.names())
def test_cli_writes_every_registered_format(fmt, tmp_path, capsys):
    """Registry-driven: each writer is reachable from the command line with its own split names."""
    defaults = WRITERS.get(fmt).default_splits
    args = [f"--split={name}=3" for name in defaults]
    assert main([fmt, "--root", str(tmp_path), *args, "--seed", "2"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (tmp_path / "synthetic_meta.json").is_file()
    assert set(defaults) <= set(summary["splits"])
    if fmt != "vqav2":  # VQA's majority baseline depends on the answer vocabulary: the demo reports it
        # baselines are figures on evaluated splits; the first split is the training one
        assert set(list(defaults)[1:]) <= set(summary["baselines"])
        assert all(0.0 <= v for split in summary["baselines"].values() for v in split.values())


def test_cli_rejects_malformed_split(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["refcoco", "--root", str(tmp_path), "--split", "train:3"])
    assert "NAME=COUNT" in capsys.readouterr().err

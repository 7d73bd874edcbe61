"""The VQAv2 reader on files laid out as visualqa.org publishes them; every bad record kind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from vltasks.datamodules import BadSampleError, UnrepeatedDistributedSampler
from vltasks.datamodules.vqav2 import (
    VQACollator,
    VQAv2Data,
    annotations_file,
    image_file,
    questions_file,
    vqa_score,
)

from vltasks.metrics.functional.vqa import vqa_scores

SPLITS = {"train": "train2014", "val": "val2014", "test": "val2014", "predict": "test-dev2015"}


def _data(root: Path, **kw) -> VQAv2Data:
    return VQAv2Data(str(root), SPLITS, kw.pop("on_bad_sample", "error"), min_answer_count=1, **kw)


@pytest.fixture()
def copy_root(vqa_root: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "vqa"
    shutil.copytree(vqa_root, dst)
    return dst


def test_reads_official_layout(vqa_root):
    data = _data(vqa_root)
    train, val = data.samples("train"), data.samples("val")
    qjson = json.loads(questions_file(vqa_root, "train2014").read_text())
    assert len(train) == len(qjson["questions"]) and len(val) > 0
    s = train[0]
    assert s["sample_id"] == str(s["question_id"]) and len(s["answers"]) == 10
    assert s["answer_type"] in ("yes/no", "number", "other")
    assert Path(s["image_path"]).name == f"COCO_train2014_{s['image_id']:012d}.jpg"
    # test-dev: questions only, images under test2015/
    dev = data.samples("predict")
    assert dev and all(d["answers"] is None for d in dev)
    assert all("/test2015/COCO_test2015_" in d["image_path"] for d in dev)


def test_answer_vocabulary_and_soft_targets_follow_the_official_score(vqa_root):
    data = _data(vqa_root)
    answers = data.data_args()["answers"]
    assert "yes" in answers and "2" in answers and "two" not in answers  # normalized: "two" -> "2"
    assert len(answers) == len(set(answers))
    assert [round(vqa_score(m), 10) for m in range(5)] == [0.0, 0.3, 0.6, 0.9, 1.0]
    collate = VQACollator(lambda images, texts: {}, {"answers": answers})
    for s in data.samples("train")[:30]:
        for j, score in collate.targets(s["answers"]).items():
            expected = vqa_scores([answers[j]], [s["answers"]], protocol="evalai")[0].item()
            assert score == pytest.approx(expected, abs=1e-9)


def _edit(path: Path, fn) -> None:
    obj = json.loads(path.read_text())
    fn(obj)
    path.write_text(json.dumps(obj))


def test_missing_image_names_path_and_question(copy_root):
    q = json.loads(questions_file(copy_root, "val2014").read_text())["questions"][4]
    img = image_file(copy_root, "val2014", q["image_id"])
    img.unlink()
    with pytest.raises(BadSampleError) as e:
        _data(copy_root).samples("val")
    assert str(img) in str(e.value) and f"question_id={q['question_id']}" in str(e.value)
    data = _data(copy_root, on_bad_sample="skip")
    n_missing = sum(
        1
        for x in json.loads(questions_file(copy_root, "val2014").read_text())["questions"]
        if x["image_id"] == q["image_id"]
    )
    assert (
        len(data.samples("val"))
        == len(json.loads(questions_file(copy_root, "val2014").read_text())["questions"]) - n_missing
    )
    assert data.skipped == {"val2014": n_missing}


def test_malformed_json_names_file_and_position(copy_root):
    path = annotations_file(copy_root, "val2014")
    path.write_text(path.read_text()[:-10])
    with pytest.raises(BadSampleError, match=rf"{path}: malformed JSON at line 1 column \d+"):
        _data(copy_root).samples("val")


def test_question_without_annotation_and_empty_answers(copy_root):
    path = annotations_file(copy_root, "val2014")
    anns = json.loads(path.read_text())["annotations"]
    gone, empty = anns[0]["question_id"], anns[1]["question_id"]

    def edit(obj):
        obj["annotations"] = obj["annotations"][1:]
        obj["annotations"][0]["answers"] = []

    _edit(path, edit)
    with pytest.raises(
        BadSampleError, match=rf"annotation #0 \(question_id={empty}\): empty or missing 'answers'"
    ):
        _data(copy_root).samples("val")
    data = _data(copy_root, on_bad_sample="skip")
    ids = {s["question_id"] for s in data.samples("val")}
    assert gone not in ids and empty not in ids
    assert data.skipped["val2014"] == 2  # the empty-answers annotation + its question without annotation


def test_missing_questions_file_and_bad_option(tmp_path):
    with pytest.raises(FileNotFoundError, match="v2_OpenEnded_mscoco_train2014_questions.json"):
        _data(tmp_path).samples("train")
    with pytest.raises(KeyError, match="min_answers.*valid: check_images, min_answer_count"):
        VQAv2Data(str(tmp_path), SPLITS, "error", min_answers=3)


def test_unrepeated_sampler_covers_each_sample_once():
    n, world = 11, 4
    shards = [list(UnrepeatedDistributedSampler(n, world, r)) for r in range(world)]
    assert sorted(i for s in shards for i in s) == list(range(n))
    assert [len(UnrepeatedDistributedSampler(n, world, r)) for r in range(world)] == [len(s) for s in shards]


def test_collate_builds_batch(vqa_root, tokenizer):
    from vltasks.backbones import ViltBackbone

    backbone = ViltBackbone.from_config(
        {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "patch_size": 16}, tokenizer
    )
    data = _data(vqa_root)
    args = data.data_args()
    ds = data.dataset(data.samples("val"))
    batch = data.collate(backbone.processor, args)([ds[i] for i in range(3)])
    assert batch["pixel_values"].shape == (3, 3, 64, 64)
    assert batch["targets"].shape == (3, len(args["answers"])) and batch["targets"].max() <= 1
    assert batch["question_id"].dtype == torch.long and len(batch["answers"]) == 3
    dev = data.dataset(data.samples("predict"))
    dev_batch = data.collate(backbone.processor, args)([dev[0]])
    assert "targets" not in dev_batch and "answers" not in dev_batch

"""The Visual7W telling reader on the published layout (dataset_v7w_telling.json + images/)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from transformers import ViltImageProcessor
from vltasks.datamodules import BadSampleError
from vltasks.datamodules.synthetic.visual7w import write_visual7w
from vltasks.datamodules.visual7w import Visual7WData, candidate_order

from vltasks.backbones.base import VLProcessor

SPLITS = {"train": "train", "val": "val", "test": "test", "predict": "test"}
FILE = "dataset_v7w_telling.json"


@pytest.fixture(scope="module")
def v7w_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("v7w")
    write_visual7w(root, {"train": 8, "val": 4}, seed=1, test_splits={"test": 3})
    return root


@pytest.fixture()
def copy_root(v7w_root: Path, tmp_path: Path) -> Path:
    shutil.copytree(v7w_root, tmp_path / "v7w")
    return tmp_path / "v7w"


def _edit(root: Path, fn) -> dict:
    data = json.loads((root / FILE).read_text())
    fn(data["images"])
    (root / FILE).write_text(json.dumps(data))
    return data


def test_reads_official_layout_with_deterministic_candidates(v7w_root):
    data = Visual7WData(str(v7w_root), SPLITS)
    images = json.loads((v7w_root / FILE).read_text())["images"]
    train = data.samples("train")
    assert len(train) == sum(len(i["qa_pairs"]) for i in images if i["split"] == "train")
    assert data.samples("test") and data.samples("val")
    first = next(i for i in images if i["split"] == "train")
    qa, s = first["qa_pairs"][0], train[0]
    assert s["sample_id"] == str(qa["qa_id"]) and s["question_type"] == qa["type"]
    assert s["image_path"] == str(v7w_root / "images" / f"v7w_{first['image_id']}.jpg")
    assert sorted(s["candidates"]) == sorted([qa["answer"], *qa["multiple_choices"]])
    assert s["candidates"][s["label"]] == qa["answer"]
    assert candidate_order(0, qa["qa_id"]) == candidate_order(0, qa["qa_id"])
    labels = {t["label"] for t in train}
    assert len(labels) > 1  # the answer's position carries no signal
    assert Visual7WData(str(v7w_root), SPLITS, shuffle_seed=1).samples("train") != train
    args = data.data_args()
    assert args["protocol"] == "visual7w" and set(args["question_types"]) <= {"what", "how", "where"}


def test_toolkit_name_dataset_json_is_read_too(copy_root):
    (copy_root / FILE).rename(copy_root / "dataset.json")
    assert Visual7WData(str(copy_root), SPLITS).samples("val")
    (copy_root / "dataset.json").unlink()
    with pytest.raises(FileNotFoundError, match="dataset_v7w_telling.json, dataset.json"):
        Visual7WData(str(copy_root), SPLITS).samples("val")


def _qa(images):
    return next(i for i in images if i["split"] == "train")["qa_pairs"][0]


BAD = {
    "no qa_id": (lambda ims: _qa(ims).pop("qa_id"), "qa_id=None .image_id=\\d+.: needs an integer 'qa_id'"),
    "two wrong choices": (
        lambda ims: _qa(ims)["multiple_choices"].pop(),
        "qa_id=\\d+ .*'multiple_choices' must hold 3",
    ),
    "empty answer": (lambda ims: _qa(ims).update(answer=" "), "qa_id=\\d+ .*empty or missing"),
    "duplicate": (
        lambda ims: _qa(ims).update(
            qa_id=[i for i in ims if i["split"] == "train"][1]["qa_pairs"][0]["qa_id"]
        ),
        "duplicate qa_id",
    ),
    "missing image": (
        lambda ims: next(i for i in ims if i["split"] == "train").update(filename="v7w_0.jpg"),
        "v7w_0.jpg: qa_id=\\d+ .*image file not found",
    ),
    "unknown split": (
        lambda ims: next(i for i in ims if i["split"] == "train").update(split="trian"),
        "image #\\d+ .*needs a 'split' in .*got 'trian'",
    ),
    "qa under another image": (
        lambda ims: _qa(ims).update(image_id=-5),
        "qa_id=\\d+ .*names image_id=-5 but is listed under",
    ),
    "no type": (lambda ims: _qa(ims).pop("type"), "qa_id=\\d+ .*needs a 'type'"),
    "bad image record": (
        lambda ims: ims.insert(0, {"split": "train"}),
        "image #0 .*needs an integer 'image_id'",
    ),
}


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_records_name_file_and_qa_id(copy_root, kind):
    edit, pattern = BAD[kind]
    _edit(copy_root, edit)
    with pytest.raises(BadSampleError, match=pattern):
        Visual7WData(str(copy_root), SPLITS).samples("train")
    skipping = Visual7WData(str(copy_root), SPLITS, on_bad_sample="skip")
    assert skipping.samples("train") and skipping.skipped["train"] >= 1


def test_malformed_json_names_the_file(copy_root):
    (copy_root / FILE).write_text('{"images": [')
    with pytest.raises(BadSampleError, match=f"{FILE}: malformed JSON at line 1"):
        Visual7WData(str(copy_root), SPLITS).samples("train")


def test_collate_flattens_question_candidate_pairs(v7w_root, tokenizer):
    processor = VLProcessor(tokenizer, ViltImageProcessor(size={"shortest_edge": 64}, size_divisor=16), 32)
    data = Visual7WData(str(v7w_root), SPLITS)
    ds = data.dataset(data.samples("val"))
    batch = data.collate(processor, data.data_args())([ds[0], ds[1]])
    assert batch["pixel_values"].shape[0] == 2
    ids = batch["answer_inputs"]["input_ids"]
    assert ids.shape[:2] == (2, 4) and batch["targets"].tolist() == [[ds[0]["label"]], [ds[1]["label"]]]
    second = tokenizer.decode(ids[1, 2], skip_special_tokens=True)
    assert second.endswith(
        tokenizer.decode(tokenizer(ds[1]["candidates"][2])["input_ids"], skip_special_tokens=True)
    )
    assert batch["candidates"][1] == ds[1]["candidates"] and batch["qa_id"].tolist()[0] == ds[0]["qa_id"]
    assert (batch["answer_inputs"]["token_type_ids"][0, 0] == 1).any()  # the candidate is the 2nd segment

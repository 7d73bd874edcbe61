"""The VCR reader on files laid out as visualcommonsense.com publishes them; every bad record kind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from transformers import ViltImageProcessor
from vltasks.datamodules import BadSampleError
from vltasks.datamodules.synthetic.vcr import write_vcr
from vltasks.datamodules.vcr import VCRData, leaderboard_rows, object_tags, render

from vltasks.backbones.base import VLProcessor

SPLITS = {"train": "train", "val": "val", "test": "val", "predict": "test"}


@pytest.fixture(scope="module")
def vcr_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vcr")
    write_vcr(root, {"train": 10, "val": 5}, seed=2, test_splits={"test": 3})
    return root


@pytest.fixture()
def copy_root(vcr_root: Path, tmp_path: Path) -> Path:
    shutil.copytree(vcr_root, tmp_path / "vcr")
    return tmp_path / "vcr"


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write(path: Path, lines: list) -> None:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))


def test_object_tags_and_rendering():
    tags = object_tags(["person", "person", "car", "person"])
    assert tags == ["person1", "person2", "car1", "person3"]
    tokens = ["Why", "does", "n't", [1], "look", "at", [0, 2], "?"]
    assert render(tokens, tags) == "Why doesn't person2 look at person1 and car1?"
    assert render([[3], "'s", "hat", ",", "then", "."], tags) == "person3's hat, then."


def test_reads_official_layout(vcr_root, caplog):
    data = VCRData(str(vcr_root), SPLITS)
    train = data.samples("train")
    assert "predict-only" not in caplog.text
    test = data.samples("predict")
    assert "test.jsonl: no line has labels: split 'test' is read as predict-only" in caplog.text
    assert len(train) == len(_lines(vcr_root / "train.jsonl")) and test
    s, line = train[0], _lines(vcr_root / "train.jsonl")[0]
    assert s["sample_id"] == s["annot_id"] == line["annot_id"] == "train-0"
    assert s["image_path"] == str(vcr_root / "vcr1images" / line["img_fn"])
    assert s["metadata_path"].endswith(".json") and Path(s["metadata_path"]).is_file()
    tag = object_tags(line["objects"])[line["question"][-2][0]]
    assert tag in s["question"] and s["question"].endswith("?") and len(s["answers"]) == 4
    assert s["answer_label"] == line["answer_label"] and s["rationale_label"] == line["rationale_label"]
    assert all(t["answer_label"] is None and t["rationale_label"] is None for t in test)
    assert data.data_args() == {"protocol": "vcr"}
    assert any(tag in t for t in data.texts())


BAD = {
    "malformed JSON": (lambda ls: ['{"annot_id": "train-0", oops', *ls[1:]], "line 1: malformed JSON"),
    "label out of range": (
        lambda ls: [{**ls[0], "answer_label": 4}, *ls[1:]],
        "'answer_label' 4 out of range",
    ),
    "rationale label": (
        lambda ls: [{**ls[0], "rationale_label": -1}, *ls[1:]],
        "'rationale_label' -1 out of",
    ),
    "missing label": (
        lambda ls: [{k: v for k, v in ls[0].items() if k != "answer_label"}, *ls[1:]],
        "missing 'answer_label'",
    ),
    "object index": (
        lambda ls: [{**ls[0], "question": ["Is", [7], "red", "?"]}, *ls[1:]],
        r"'question': object index \[7\] out of range",
    ),
    "index in a rationale": (
        lambda ls: [{**ls[0], "rationale_choices": [*ls[0]["rationale_choices"][:3], [[0, 9]]]}, *ls[1:]],
        r"'rationale_choices\[3\]': object index \[9\]",
    ),
    "three answers": (
        lambda ls: [{**ls[0], "answer_choices": ls[0]["answer_choices"][:3]}, *ls[1:]],
        "'answer_choices' must hold 4",
    ),
    "duplicate": (lambda ls: [ls[0], ls[0], *ls[1:]], "line 2 .annot_id=train-0.: duplicate annot_id"),
    "missing image": (
        lambda ls: [{**ls[0], "img_fn": "nope/x.jpg"}, *ls[1:]],
        "x.jpg: train.jsonl line 1 .*image file not",
    ),
    "missing metadata": (
        lambda ls: [{**ls[0], "metadata_fn": "nope/x.json"}, *ls[1:]],
        "x.json: train.jsonl line 1 .*metadata file not found",
    ),
}


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_records_name_file_line_and_annot_id(copy_root, kind):
    edit, pattern = BAD[kind]
    path = copy_root / "train.jsonl"
    lines = _lines(path)
    _write(path, edit(lines))
    with pytest.raises(BadSampleError, match=pattern) as err:
        VCRData(str(copy_root), SPLITS).samples("train")
    assert "line " in str(err.value)
    if kind != "malformed JSON":
        assert "annot_id=train-0" in str(err.value)
    skipping = VCRData(str(copy_root), SPLITS, on_bad_sample="skip")
    kept = skipping.samples("train")
    assert skipping.skipped["train"] == 1 and len(kept) == len(lines) - (kind != "duplicate")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="train.jsonl"):
        VCRData(str(tmp_path), SPLITS).samples("train")


def test_collate_pairs_rationales_with_gt_answer_or_every_answer(vcr_root, tokenizer):
    processor = VLProcessor(tokenizer, ViltImageProcessor(size={"shortest_edge": 64}, size_divisor=16), 40)
    data = VCRData(str(vcr_root), SPLITS)
    collate = data.collate(processor, data.data_args())
    ds = data.dataset(data.samples("train"))
    batch = collate([ds[0], ds[1], ds[2]])
    assert batch["pixel_values"].shape[0] == 3
    assert batch["answer_inputs"]["input_ids"].shape[:2] == (3, 4)  # 4 candidates per question
    assert batch["rationale_inputs"]["input_ids"].shape[:2] == (3, 4)
    assert batch["targets"].tolist() == [[ds[i]["answer_label"], ds[i]["rationale_label"]] for i in range(3)]
    gt = ds[1]["answers"][ds[1]["answer_label"]]
    first = tokenizer.decode(batch["rationale_inputs"]["input_ids"][1, 0], skip_special_tokens=True)
    assert tokenizer.decode(tokenizer(gt)["input_ids"], skip_special_tokens=True) in first
    answer = tokenizer.decode(batch["answer_inputs"]["input_ids"][1, 2], skip_special_tokens=True)
    assert answer.endswith(
        tokenizer.decode(tokenizer(ds[1]["answers"][2])["input_ids"], skip_special_tokens=True)
    )
    test = data.dataset(data.samples("predict"))
    tbatch = collate([test[0], test[1]])
    # no labels: rationales given each of the 4 answers, [B, answer, rationale, L]
    assert tbatch["rationale_inputs"]["input_ids"].shape[:3] == (2, 4, 4) and "targets" not in tbatch
    given = tokenizer.decode(tbatch["rationale_inputs"]["input_ids"][1, 3, 0], skip_special_tokens=True)
    assert tokenizer.decode(tokenizer(test[1]["answers"][3])["input_ids"], skip_special_tokens=True) in given


def test_leaderboard_rows_follow_r2c_columns():
    pred = {"annot_id": "test-3", "answer_probs": [0.1, 0.2, 0.3, 0.4]}
    rows = leaderboard_rows([{**pred, "rationale_probs_given_answers": [[0.25] * 4] * 4}])
    assert list(rows[0])[:5] == ["annot_id", "answer_0", "answer_1", "answer_2", "answer_3"]
    assert len(rows[0]) == 21 and rows[0]["rationale_conditioned_on_a3_2"] == 0.25
    with pytest.raises(ValueError, match="test-3"):
        leaderboard_rows([{**pred, "rationale_probs": [0.25] * 4}])
    assert rows[0]["answer_3"] == 0.4


BAD_METADATA = {
    "malformed": (lambda m: "{not json", "malformed metadata JSON"),
    "names differ": (lambda m: {**m, "names": ["dog", *m["names"][1:]]}, "'names' .* differ from"),
    "box count": (lambda m: {**m, "boxes": m["boxes"][:-1]}, "boxes' for"),
    "box shape": (lambda m: {**m, "boxes": [[1, 2, 3], *m["boxes"][1:]]}, r"box #0 must be \[x1"),
    "box outside": (
        lambda m: {**m, "boxes": [[m["width"] + 5, 0, m["width"] + 9, 4, 1.0], *m["boxes"][1:]]},
        "box #0 .* outside the",
    ),
    "no size": (lambda m: {k: v for k, v in m.items() if k != "width"}, "integer 'width' and 'height'"),
    "not an object": (lambda m: '"abc"', "metadata is not a JSON object but str"),
}


@pytest.mark.parametrize("kind", list(BAD_METADATA))
def test_bad_metadata_names_file_and_annot_id(copy_root, kind):
    edit, pattern = BAD_METADATA[kind]
    lines = _lines(copy_root / "train.jsonl")
    meta = copy_root / "vcr1images" / lines[0]["metadata_fn"]
    users = sum(line["metadata_fn"] == lines[0]["metadata_fn"] for line in lines)
    new = edit(json.loads(meta.read_text()))
    meta.write_text(new if isinstance(new, str) else json.dumps(new))
    with pytest.raises(BadSampleError, match=pattern) as err:
        VCRData(str(copy_root), SPLITS).samples("train")
    assert f"{meta}: train.jsonl line 1 (annot_id=train-0)" in str(err.value)
    skipping = VCRData(str(copy_root), SPLITS, on_bad_sample="skip")
    assert len(skipping.samples("train")) == len(lines) - users and skipping.skipped["train"] == users
    unchecked = VCRData(str(copy_root), SPLITS, check_metadata=False).samples("train")
    assert len(unchecked) == len(lines) and unchecked[0]["boxes"] is None


def test_samples_carry_metadata_boxes(vcr_root):
    s = VCRData(str(vcr_root), SPLITS).samples("train")[0]
    meta = json.loads(Path(s["metadata_path"]).read_text())
    assert s["boxes"] == [b[:4] for b in meta["boxes"]] and len(s["boxes"]) == len(meta["names"])


def test_a_line_that_is_not_utf8_is_named(copy_root):
    path = copy_root / "train.jsonl"
    raw = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join([raw[0], b'{"annot_id": "caf\xe9"}', *raw[1:]]))
    with pytest.raises(BadSampleError, match=r"train.jsonl: line 2: not UTF-8"):
        VCRData(str(copy_root), SPLITS).samples("train")

"""The SNLI-VE reader on files laid out as necla-ml/SNLI-VE publishes them; every bad record kind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from vltasks.datamodules import BadSampleError
from vltasks.datamodules.snli_ve import SNLIVEData, image_file, jsonl_file
from vltasks.datamodules.synthetic.snli_ve import write_snli_ve

from vltasks.metrics.functional.choice import ENTAILMENT_CLASSES

SPLITS = {"train": "train", "val": "dev", "test": "test", "predict": "test"}
# A line of the 2020 release (fields and key order as the official generator writes them).
REAL = {
    "Flickr30K_ID": "3416050480",
    "annotator_labels": ["neutral", "neutral", "neutral", "entailment", "neutral"],
    "captionID": "3416050480.jpg#4",
    "gold_label": "neutral",
    "pairID": "3416050480.jpg#4r1n",
    "sentence1": "A person on a horse jumps over a broken down airplane.",
    "sentence1_binary_parse": "( ( ( A person ) ( on ( a horse ) ) ) ( jumps ... ) . ) )",
    "sentence1_parse": "(ROOT (S (NP (NP (DT A) (NN person)) ...) (. .)))",
    "sentence2": "A person is training his horse for a competition.",
    "sentence2_binary_parse": "( ( A person ) ( ( is ( ( training ... ) ) ) . ) )",
    "sentence2_parse": "(ROOT (S (NP (DT A) (NN person)) ...) (. .)))",
}

GOOD = {**REAL, "pairID": "3416050480.jpg#4r1e", "gold_label": "entailment"}


def _data(root: Path, **kw) -> SNLIVEData:
    return SNLIVEData(str(root), SPLITS, kw.pop("on_bad_sample", "error"), **kw)


@pytest.fixture(scope="module")
def snli_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("snli_ve")
    write_snli_ve(root, {"train": 10, "dev": 4}, seed=2, test_splits={"test": 3})
    return root


def _write(root: Path, split: str, lines: list[str]) -> Path:
    path = jsonl_file(root, split)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _real_root(tmp_path: Path) -> Path:
    (tmp_path / "flickr30k_images").mkdir()
    Image.new("RGB", (8, 8)).save(image_file(tmp_path, "3416050480"))
    return tmp_path


def test_reads_official_layout(snli_root):
    data = _data(snli_root)
    train, dev = data.samples("train"), data.samples("val")
    lines = jsonl_file(snli_root, "train").read_text().splitlines()
    assert len(train) == len(lines) == 30 and len(dev) == 12 and len(data.samples("test")) == 9
    for s, line in zip(train, lines):
        rec = json.loads(line)
        assert s["sample_id"] == s["pairID"] == rec["pairID"] and s["hypothesis"] == rec["sentence2"]
        assert s["gold_label"] == rec["gold_label"] and s["premise"] == rec["sentence1"]
        assert Path(s["image_path"]) == snli_root / "flickr30k_images" / f"{rec['Flickr30K_ID']}.jpg"
    assert sorted(data.texts())[:3] == sorted(s["hypothesis"] for s in train)[:3]
    assert data.data_args() == {}


def test_both_release_spellings_of_the_image_id(tmp_path):
    root = _real_root(tmp_path)
    old = {k: v for k, v in REAL.items() if k != "Flickr30K_ID"} | {"Flikr30kID": "3416050480.jpg"}
    _write(root, "train", [json.dumps(REAL), "", json.dumps(old | {"pairID": "3416050480.jpg#4r1e"})])
    a, b = _data(root).samples("train")
    assert a["image_path"] == b["image_path"] == str(root / "flickr30k_images" / "3416050480.jpg")
    assert (a["sample_id"], a["gold_label"]) == ("3416050480.jpg#4r1n", "neutral")


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ('{"pairID": "x", "gold_label": ', r"snli_ve_train\.jsonl: line 2: malformed JSON at column"),
        ("[1, 2]", r"line 2: expected a JSON object, got list"),
        (json.dumps({**REAL, "pairID": ""}), r"line 2: missing or empty 'pairID'"),
        (json.dumps({**REAL, "gold_label": "-"}), r"line 2 \(pairID=3416050480.jpg#4r1n\): gold_label '-'"),
        (json.dumps({**REAL, "gold_label": "yes"}), r"line 2 \(pairID=.*\): unknown gold_label 'yes'"),
        (json.dumps({k: v for k, v in REAL.items() if k != "gold_label"}), r"missing 'gold_label'"),
        (json.dumps({**REAL, "sentence2": " "}), r"line 2 \(pairID=.*\): empty or missing 'sentence2'"),
        (json.dumps({k: v for k, v in REAL.items() if k != "Flickr30K_ID"}), r"no image id: needs"),
        (
            json.dumps({**REAL, "Flickr30K_ID": "404"}),
            r"line 2 \(pairID=.*\): image file not found: .*404\.jpg",
        ),
        (json.dumps(GOOD), r"line 2 \(pairID=3416050480.jpg#4r1e\): duplicate pairID \(first on line 1\)"),
    ],
)
def test_each_bad_record_names_file_line_and_pair(tmp_path, line, match):
    root = _real_root(tmp_path)
    _write(root, "train", [json.dumps(GOOD), line])
    with pytest.raises(BadSampleError, match=match) as err:
        _data(root).samples("train")
    assert str(jsonl_file(root, "train")) in str(err.value) and "on_bad_sample=skip" in str(err.value)
    skip = _data(root, on_bad_sample="skip")
    assert [s["pairID"] for s in skip.samples("train")] == [GOOD["pairID"]]
    assert skip.skipped == {"train": 1}


def test_a_line_that_is_not_utf8_is_named_and_skippable(tmp_path):
    root = _real_root(tmp_path)
    path = _write(root, "train", [json.dumps(GOOD)])
    path.write_bytes(path.read_bytes() + b'{"pairID": "caf\xe9"}\n')
    with pytest.raises(BadSampleError, match=r"snli_ve_train\.jsonl: line 2: not UTF-8"):
        _data(root).samples("train")
    skip = _data(root, on_bad_sample="skip")
    assert len(skip.samples("train")) == 1 and skip.skipped == {"train": 1}


def test_options_folders_and_missing_file(tmp_path):
    root = tmp_path
    (root / "annotations").mkdir()
    (root / "images").mkdir()
    Image.new("RGB", (8, 8)).save(root / "images" / "3416050480.jpg")
    (root / "annotations" / "snli_ve_dev.jsonl").write_text(json.dumps(REAL) + "\n")
    data = _data(root, image_dir="images", annotation_dir="annotations")
    assert data.samples("val")[0]["image_path"] == str(root / "images" / "3416050480.jpg")
    assert _data(root, check_images=False, annotation_dir="annotations").samples("val")
    with pytest.raises(FileNotFoundError, match=r"snli_ve_train\.jsonl: SNLI-VE file not found"):
        _data(root).samples("train")
    with pytest.raises(KeyError, match="not known to format 'snli_ve'; valid: annotation_dir"):
        _data(root, min_answer_count=1)


def test_collate_builds_batch_in_the_metric_label_order(snli_root, tokenizer):
    from vltasks.backbones import ViltBackbone

    backbone = ViltBackbone.from_config(
        {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "patch_size": 16}, tokenizer
    )
    data = _data(snli_root)
    ds = data.dataset(data.samples("val"))
    batch = data.collate(backbone.processor, {})([ds[i] for i in range(4)])
    assert batch["pixel_values"].shape == (4, 3, 64, 64) and batch["input_ids"].shape[0] == 4
    assert batch["targets"].dtype == torch.long
    assert [ENTAILMENT_CLASSES[t] for t in batch["targets"].tolist()] == batch["gold_label"]
    assert batch["sample_id"] == batch["pairID"] and len(batch["image_path"]) == 4

"""Captioning data: the karpathy_caption reader over synthetic Karpathy files, batches for the head."""

from __future__ import annotations

import json

import pytest
import torch
from vltasks.datamodules import READERS, BadSampleError
from vltasks.datamodules.synthetic import WRITERS

from vltasks.backbones import BlipBackbone


@pytest.fixture(scope="module")
def karpathy_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("karpathy")
    WRITERS.get("karpathy_caption")(root, {"train": 4, "val": 3}, seed=1, test_splits={"test": 2})
    return root


def _data(root, **kw):
    splits = {"train": "train", "val": "val", "test": "test", "predict": "test"}
    return READERS.get("karpathy_caption")(str(root), splits, **kw)


def test_training_samples_are_captions_and_eval_samples_are_images(karpathy_root):
    data = _data(karpathy_root)
    train, val, pred = data.samples("train"), data.samples("val"), data.samples("predict")
    assert len(train) == 4 * 5 and all("caption" in s for s in train)
    assert len(val) == 3 and all(len(s["captions"]) == 5 and "gallery" not in s for s in val)
    assert len(pred) == 2 and len({s["sample_id"] for s in train}) == len(train)
    assert len(_data(karpathy_root, train_unit="image").samples("train")) == 4


def test_collate_gives_teacher_forcing_inputs_references_and_coco_ids(karpathy_root, tokenizer):
    data = _data(karpathy_root)
    backbone = BlipBackbone.from_config({"hidden_size": 32, "num_layers": 1, "num_heads": 2}, tokenizer)
    collate = data.collate(backbone.processor, data.data_args())
    for stage in ("train", "val"):
        samples = data.samples(stage)[:3]
        batch = collate([data.dataset(samples)[i] for i in range(len(samples))])
        assert batch["pixel_values"].shape == (3, 3, 64, 64) and batch["input_ids"].shape[0] == 3
        pad = batch["attention_mask"] == 0
        assert (batch["targets"][pad] == -100).all()
        assert torch.equal(batch["targets"][~pad], batch["input_ids"][~pad])
        assert batch["image_id"].dtype == torch.long and len(batch["sample_id"]) == 3
        assert ("captions" in batch) == (stage == "val")
    records = json.loads((karpathy_root / "dataset_coco.json").read_text())["images"]
    cocoids = {r["cocoid"] for r in records}
    assert set(batch["image_id"].tolist()) <= cocoids  # COCO results name images by cocoid


def test_bad_records_name_file_and_record(karpathy_root, tmp_path):
    ann = json.loads((karpathy_root / "dataset_coco.json").read_text())
    ann["images"][0]["sentences"][0]["raw"] = "  "
    for d in ("train2014", "val2014"):
        (tmp_path / d).symlink_to(karpathy_root / d)
    (tmp_path / "dataset_coco.json").write_text(json.dumps(ann))
    imgid = ann["images"][0]["imgid"]
    with pytest.raises(BadSampleError, match=rf"dataset_coco.json: imgid={imgid} sentid=\d+: empty"):
        _data(tmp_path).samples("train")
    assert len(_data(tmp_path, on_bad_sample="skip").samples("train")) == 4 * 5 - 1

"""The Karpathy-split reader on files laid out as caption_datasets.zip + COCO/Flickr publish them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from vltasks.datamodules import READERS, BadSampleError
from vltasks.datamodules.caption_corpus import CorpusCollator
from vltasks.datamodules.karpathy import KarpathyData
from vltasks.datamodules.synthetic.karpathy import annotation_path, write_karpathy

STAGES = {"train": "train", "val": "val", "test": "test", "predict": "test"}


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("karpathy_coco")
    write_karpathy(root, {"train": 6, "restval": 2, "val": 4}, seed=2, test_splits={"test": 3})
    return root


@pytest.fixture()
def copy_root(coco_root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(coco_root, tmp_path / "coco"))


def _data(root: Path, **kw) -> KarpathyData:
    return KarpathyData(str(root), STAGES, kw.pop("on_bad_sample", "error"), **kw)


def test_reads_coco_layout_both_views(coco_root):
    data = READERS.get("karpathy")(str(coco_root), STAGES)
    raw = json.loads(annotation_path(coco_root).read_text())["images"]
    train = data.samples("train")  # one per caption, restval included
    assert len(train) == 5 * 8 and {s["sample_id"] for s in train} == {str(s["sentid"]) for s in train}
    val = data.samples("val")  # one per image with all captions
    assert len(val) == 4 and all(len(s["captions"]) == len(s["sentids"]) == 5 for s in val)
    first = next(r for r in raw if r["split"] == "val")
    s = val[0]
    assert s["imgid"] == first["imgid"] and s["image_id"] == first["cocoid"]
    assert s["image_path"] == str(coco_root / "val2014" / first["filename"])
    assert s["captions"][0] == first["sentences"][0]["raw"].strip()
    assert len(_data(coco_root, restval_as_train=False).samples("train")) == 5 * 6
    assert len(_data(coco_root, train_unit="image").samples("train")) == 8
    gallery = data.samples("predict")[0]["gallery"]
    assert len(gallery.texts) == 15 and gallery.text_ids == [c["sentid"] for c in data.captions("predict")]
    assert sorted(data.texts()) == sorted(c for s in data.items("train") for c in s["captions"])


def test_reads_flickr30k_layout(tmp_path):
    write_karpathy(tmp_path, {"train": 3, "test": 2}, dataset="flickr30k")
    data = _data(tmp_path, dataset="flickr30k")
    test = data.samples("test")
    assert len(test) == 2 and all("/flickr30k-images/" in s["image_path"] for s in test)
    assert all(s["image_id"] == int(Path(s["image_path"]).stem) for s in test)  # Flickr's photo id
    (tmp_path / "flickr30k-images").rename(tmp_path / "imgs")
    assert len(_data(tmp_path, dataset="flickr30k", image_root="imgs").samples("test")) == 2


def test_flickr_photo_ids_must_not_repeat(tmp_path):
    write_karpathy(tmp_path, {"train": 3, "test": 2}, dataset="flickr30k")
    path = tmp_path / "dataset_flickr30k.json"
    obj = json.loads(path.read_text())
    test = [im for im in obj["images"] if im["split"] == "test"]
    test[1]["filename"] = test[0]["filename"]  # two records, one photo: one would vanish from metrics
    path.write_text(json.dumps(obj))
    with pytest.raises(BadSampleError, match=f"imgid={test[1]['imgid']}: its image id .* repeats"):
        _data(tmp_path, dataset="flickr30k").samples("test")


def _edit(root: Path, fn) -> None:
    path = annotation_path(root)
    obj = json.loads(path.read_text())
    fn(next(im for im in obj["images"] if im["split"] == "val"), obj)
    path.write_text(json.dumps(obj))


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda im, o: im.update(sentences=[]), "has no sentences"),
        (lambda im, o: im.update(split="dev"), "'split' must be one of"),
        (lambda im, o: im.pop("filename"), "missing 'filename'"),
        (lambda im, o: im.update(imgid="7"), "needs an integer 'imgid'"),
        (lambda im, o: im["sentences"][1].update(raw="  "), "empty or missing 'raw' caption"),
        (lambda im, o: im["sentences"][1].update(imgid=-5), "names another imgid"),
        (lambda im, o: im["sentences"][2].update(sentid=im["sentences"][0]["sentid"]), "duplicate sentid"),
        (lambda im, o: im["sentences"][2].pop("sentid"), "needs an integer 'sentid'"),
        (lambda im, o: im["sentences"][2].update(tokens="a dog"), "'tokens' must be a list of strings"),
        (lambda im, o: im.pop("cocoid"), "needs an integer 'cocoid'"),
    ],
)
def test_bad_records_name_file_and_record(copy_root, edit, needle):
    _edit(copy_root, edit)
    with pytest.raises(BadSampleError) as e:
        _data(copy_root).samples("val")
    msg = str(e.value)
    assert needle in msg and str(annotation_path(copy_root)) in msg
    assert "imgid=" in msg or "image #" in msg
    skipping = _data(copy_root, on_bad_sample="skip")
    assert len(skipping.samples("val")) >= 3 and skipping.skipped["val"] == 1


def test_missing_image_names_its_path_and_imgid(copy_root):
    victim = _data(copy_root).samples("val")[1]
    Path(victim["image_path"]).unlink()
    with pytest.raises(BadSampleError) as e:
        _data(copy_root).samples("val")
    assert victim["image_path"] in str(e.value) and f"imgid={victim['imgid']}" in str(e.value)
    assert len(_data(copy_root, on_bad_sample="skip").samples("val")) == 3


def test_malformed_file_and_unknown_split_or_option(copy_root):
    annotation_path(copy_root).write_text('{"images": [')
    with pytest.raises(BadSampleError, match="malformed JSON"):
        _data(copy_root).samples("val")
    with pytest.raises(ValueError, match="unknown Karpathy split"):
        KarpathyData(str(copy_root), {"val": "val2014"}).samples("val")
    with pytest.raises(KeyError, match="restval_as_train"):
        KarpathyData(str(copy_root), STAGES, restval=True)


class _Processor:
    def text(self, texts):
        return {
            "input_ids": torch.ones(len(texts), 4, dtype=torch.long),
            "attention_mask": torch.ones(len(texts), 4),
        }

    def images(self, images):
        return {"pixel_values": torch.zeros(len(images), 3, 8, 8)}


def test_collate_caption_and_image_batches(coco_root):
    data = _data(coco_root)
    collate = data.collate(_Processor(), {})
    assert isinstance(collate, CorpusCollator)
    ds = data.dataset(data.samples("train"))
    pairs = collate([ds[0], ds[1], ds[7]])
    assert pairs["input_ids"].shape[0] == 3 and pairs["sentid"].tolist() == [
        int(ds[i]["sample_id"]) for i in (0, 1, 7)
    ]
    assert pairs["imgid"][0] == pairs["imgid"][1]
    ev = data.dataset(data.samples("predict"))
    batch = collate([ev[0], ev[2]])
    assert batch["pixel_values"].shape[0] == 2 and batch["text_input_ids"].shape[0] == 10
    assert batch["text_image_ids"].tolist() == [ev[0]["imgid"]] * 5 + [ev[2]["imgid"]] * 5
    assert batch["captions"][1] == ev[2]["captions"] and batch["targets"] is batch["text_image_ids"]
    gallery = ev[0]["gallery"]  # the split's captions, tokenized once by the collate
    assert batch["gallery"].text_ids == gallery.text_ids and batch["gallery"].key == gallery.key
    assert batch["gallery"].input_ids.shape[0] == len(gallery.texts)
    assert collate([ev[1]])["gallery"] is batch["gallery"]

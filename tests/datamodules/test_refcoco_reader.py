"""The RefCOCO reader on files laid out as the refer toolkit publishes them; every bad record kind."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
from pathlib import Path

import pytest
import torch
from vltasks.datamodules import BadSampleError
from vltasks.datamodules.refcoco import GroundingCollator, RefCOCOData, instances_file, refs_file
from vltasks.datamodules.synthetic.refcoco import write_refcoco

from vltasks.batch import FAILED

SPLITS = {"train": "train", "val": "val", "test": "testA", "predict": "testB"}


@pytest.fixture(scope="module")
def ref_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic_refcoco")
    write_refcoco(root, {"train": 12, "val": 6}, seed=5, test_splits={"testA": 4, "testB": 4})
    return root


@pytest.fixture()
def copy_root(ref_root: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "refer"
    shutil.copytree(ref_root, dst)
    return dst


def _data(root: Path, splits: dict | None = None, **kw) -> RefCOCOData:
    return RefCOCOData(str(root), splits or SPLITS, kw.pop("on_bad_sample", "error"), **kw)


def _refs(root: Path) -> list[dict]:
    with refs_file(root, "refcoco", "unc").open("rb") as f:
        return pickle.load(f)


def test_reads_the_refer_layout(ref_root):
    refs, inst = _refs(ref_root), json.loads(instances_file(ref_root, "refcoco").read_text())
    data = _data(ref_root)
    train = data.samples("train")
    assert len(train) == sum(len(r["sentences"]) for r in refs if r["split"] == "train")
    s = train[0]
    ref = next(r for r in refs if r["ref_id"] == s["ref_id"])
    ann = next(a for a in inst["annotations"] if a["id"] == ref["ann_id"])
    assert s["sample_id"] == str(s["sent_id"]) and s["sent_id"] in ref["sent_ids"]
    assert s["bbox"] == ann["bbox"] and s["expression"] == ref["sentences"][0]["sent"]
    # the image comes from instances.json (the ref's own file_name carries the ann_id: no such file)
    image_dir = ref_root / "images/mscoco/images/train2014"  # refer's layout, the default
    assert Path(s["image_path"]) == image_dir / f"COCO_train2014_{s['image_id']:012d}.jpg"
    assert ref["file_name"].endswith(f"_{ref['ann_id']}.jpg")
    ids = [x["sample_id"] for split in ("train", "val", "test", "predict") for x in data.samples(split)]
    assert len(ids) == len(set(ids))
    both_data = _data(ref_root, {**SPLITS, "test": "test"})
    both = both_data.samples("test")  # refer: "test" = every test*, each sample keeps its own name
    assert len(both) == len(data.samples("test")) + len(data.samples("predict"))
    assert {s["split"] for s in both} == {"testA", "testB"}
    assert data.data_args() == {"eval_splits": {"val": ["val"], "test": ["testA"]}}
    assert both_data.data_args() == {"eval_splits": {"val": ["val"], "test": ["testA", "testB"]}}
    raw = _data(ref_root, text_field="raw").samples("val")[0]["expression"]
    assert raw[0].isupper() and raw.lower() == data.samples("val")[0]["expression"]


def test_unknown_split_options_and_missing_files_are_named(ref_root, tmp_path):
    with pytest.raises(BadSampleError, match=r"refs\(unc\)\.p: no refs of split 'testC'.*'testA'"):
        _data(ref_root, {**SPLITS, "test": "testC"}).samples("test")
    with pytest.raises(ValueError, match="data.options.dataset"):
        _data(ref_root, dataset="refclef")
    with pytest.raises(FileNotFoundError, match=r"refs\(umd\)\.p: refs file not found.*split_by='umd'"):
        _data(ref_root, split_by="umd").samples("train")
    (tmp_path / "refcoco").mkdir()
    shutil.copy(refs_file(ref_root, "refcoco", "unc"), tmp_path / "refcoco")
    with pytest.raises(FileNotFoundError, match="instances.json: file not found"):
        _data(tmp_path).samples("train")


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("payload", ["os_system", "object"])
def test_pickles_that_build_objects_are_refused(copy_root, tmp_path, payload):
    marker = tmp_path / "pwned"
    refs = _refs(copy_root)
    refs[0]["extra"] = _Evil(marker) if payload == "os_system" else torch.Size([1])
    with refs_file(copy_root, "refcoco", "unc").open("wb") as f:
        pickle.dump(refs, f)
    with pytest.raises(BadSampleError, match=r"refs\(unc\)\.p: not a plain-data pickle.*refusing to load"):
        _data(copy_root).samples("train")
    assert not marker.exists()


def _edit(root: Path, refs=None, inst=None) -> None:
    """Rewrite the refs pickle / instances.json after `refs(list)` / `inst(dict)` changed them."""
    if refs is not None:
        data = _refs(root)
        refs(data)
        with refs_file(root, "refcoco", "unc").open("wb") as f:
            pickle.dump(data, f, protocol=2)
    if inst is not None:
        path = instances_file(root, "refcoco")
        data = json.loads(path.read_text())
        inst(data)
        path.write_text(json.dumps(data))


def _first_train(root: Path) -> dict:
    return next(r for r in _refs(root) if r["split"] == "train")


def _ann_of(d: dict, ann_id: int) -> dict:
    return next(a for a in d["annotations"] if a["id"] == ann_id)


def _set_bbox(bbox):
    return lambda root, ref: _edit(root, inst=lambda d: _ann_of(d, ref["ann_id"]).__setitem__("bbox", bbox))


def _drop_ann(root, ref):
    _edit(
        root,
        inst=lambda d: d.__setitem__(
            "annotations", [a for a in d["annotations"] if a["id"] != ref["ann_id"]]
        ),
    )


def _ref_field(key, value):
    def edit(refs):
        next(r for r in refs if r["split"] == "train")[key] = value

    return lambda root, ref: _edit(root, refs=edit)


def _sentence_field(key, value):
    def edit(refs):
        next(r for r in refs if r["split"] == "train")["sentences"][0][key] = value

    return lambda root, ref: _edit(root, refs=edit)


def _remove_image(root, ref):
    (root / "images/mscoco/images/train2014" / f"COCO_train2014_{ref['image_id']:012d}.jpg").unlink()


def _other_image_ann(root, ref):
    _edit(root, inst=lambda d: _ann_of(d, ref["ann_id"]).__setitem__("image_id", ref["image_id"] + 1))


def _duplicate_sent_id(root, ref):
    def edit(refs):
        train = [r for r in refs if r["split"] == "train"]
        train[1]["sentences"][0]["sent_id"] = train[0]["sentences"][0]["sent_id"]

    _edit(root, refs=edit)


def _duplicate_ref_id(root, ref):
    def edit(refs):
        train = [r for r in refs if r["split"] == "train"]
        train[1]["ref_id"] = train[0]["ref_id"]

    _edit(root, refs=edit)


BAD = {
    "ann missing from instances": (_drop_ann, "instances.json", "is not among the annotations"),
    "zero-width bbox": (_set_bbox([3, 4, 0, 5]), "instances.json", "non-positive width or height"),
    "negative-height bbox": (_set_bbox([3, 4, 5, -2]), "instances.json", "non-positive width or height"),
    "bbox not 4 numbers": (_set_bbox([3, 4, 5]), "instances.json", "bbox must be 4 numbers"),
    "bbox outside image": (_set_bbox([500, 4, 5, 5]), "instances.json", "lies outside"),
    "ann of another image": (_other_image_ann, "instances.json", "belongs to image_id"),
    "empty sentences": (_ref_field("sentences", []), r"refs\(unc\)\.p", "empty or missing 'sentences'"),
    "non-integer ann_id": (_ref_field("ann_id", "7"), r"refs\(unc\)\.p", "needs integer 'ref_id', 'ann_id'"),
    "empty sentence text": (_sentence_field("sent", "  "), r"refs\(unc\)\.p", "empty or missing 'sent' text"),
    "missing sent_id": (_sentence_field("sent_id", None), r"refs\(unc\)\.p", "needs an integer 'sent_id'"),
    "duplicate sent_id": (_duplicate_sent_id, r"refs\(unc\)\.p", "duplicate sent_id"),
    "missing image": (_remove_image, "COCO_train2014_", "image file not found"),
    "unknown split": (_ref_field("split", "trian"), r"refs\(unc\)\.p", "unknown split 'trian'"),
    "duplicate ref_id": (_duplicate_ref_id, r"refs\(unc\)\.p", "duplicate ref_id"),
}


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_records_name_file_and_record_or_are_skipped_and_counted(copy_root, kind):
    corrupt, file_pattern, problem = BAD[kind]
    ref = _first_train(copy_root)
    n = len(_data(copy_root).samples("train"))
    corrupt(copy_root, ref)
    with pytest.raises(BadSampleError, match=rf"{file_pattern}.*ref_id=\d+.*{problem}"):
        _data(copy_root).samples("train")
    data = _data(copy_root, on_bad_sample="skip")
    kept = data.samples("train")
    assert data.skipped["train"] >= 1 and 0 < len(kept) < n


def test_collate_gives_normalized_cxcywh_targets_and_checks_the_image_size(copy_root):
    data = _data(copy_root)
    samples = data.samples("val")[:3]
    ds = data.dataset(samples)
    calls = []
    batch = GroundingCollator(lambda images, texts: calls.append((images, texts)) or {})(
        [ds[i] for i in range(3)]
    )
    assert calls[0][1] == [s["expression"] for s in samples]
    x, y, w, h = samples[0]["bbox"]
    W, H = samples[0]["width"], samples[0]["height"]
    torch.testing.assert_close(
        batch["targets"][0], torch.tensor([(x + w / 2) / W, (y + h / 2) / H, w / W, h / H])
    )
    assert batch["split"] == ["val"] * 3 and batch["sent_id"].tolist() == [s["sent_id"] for s in samples]
    _edit(
        copy_root,
        inst=lambda d: next(i for i in d["images"] if i["id"] == samples[0]["image_id"]).update(width=99),
    )
    fresh = _data(copy_root).samples("val")
    failed = _data(copy_root).dataset(fresh)[0]  # the loader's error, as a marker for the collate
    assert failed["sample_id"] == fresh[0]["sample_id"]
    assert re.search(
        r"COCO_train2014_.*sent_id=\d+: image is 64x64 but instances.json says 99x64", failed[FAILED]
    )


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda d: d["images"].append(dict(d["images"][0])), r"images\[\d+\]: duplicate id"),
        (lambda d: d["annotations"].insert(0, [1, 2]), r"annotations\[0\]: needs an integer 'id'"),
    ],
)
def test_instances_with_ambiguous_ids_are_refused(copy_root, edit, problem):
    _edit(copy_root, inst=edit)
    with pytest.raises(BadSampleError, match=rf"instances.json: {problem}"):
        _data(copy_root).samples("train")


@pytest.mark.parametrize("raw", [b"]}b.", b"(lp0\nI1\nab.", b"\x80\x02]q\x00(K\x01", b"not a pickle"])
def test_corrupt_pickles_are_named(copy_root, raw):
    refs_file(copy_root, "refcoco", "unc").write_bytes(raw)
    with pytest.raises(BadSampleError, match=r"refs\(unc\)\.p: not a plain-data pickle"):
        _data(copy_root).samples("train")


def _py2_pickle(x) -> str:
    """What Python 2's pickle.dump (protocol 0) writes: str as S'...' byte strings, which Python 3
    must decode (refer's published refs files come from Python 2)."""
    if isinstance(x, dict):
        return "(d" + "".join(_py2_pickle(k) + _py2_pickle(v) + "s" for k, v in x.items())
    if isinstance(x, list):
        return "(l" + "".join(_py2_pickle(v) + "a" for v in x)
    if isinstance(x, str):
        return "S" + repr(x.encode("utf-8"))[1:] + "\n"
    if isinstance(x, bool) or x is None:
        return {True: "I01\n", False: "I00\n", None: "N"}[x]
    return f"I{x}\n" if isinstance(x, int) else f"F{x!r}\n"


def test_a_python2_refs_pickle_reads_like_the_original(copy_root):
    expected = _data(copy_root).samples("train")
    refs = _refs(copy_root)
    refs[0]["sentences"][0]["raw"] = "the man in a café"  # non-ASCII: UTF-8 bytes in a Python 2 str
    refs_file(copy_root, "refcoco", "unc").write_bytes((_py2_pickle(refs) + ".").encode("latin-1"))
    got = _data(copy_root).samples("train")
    assert got == expected
    raw = _data(copy_root, {**SPLITS, "test": refs[0]["split"]}, text_field="raw").samples("test")
    assert "the man in a café" in [s["expression"] for s in raw]

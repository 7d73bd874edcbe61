"""The Visual Genome reader: both region-file layouts, DenseCap's preprocessing, every bad input named
(file, image id, region id) or counted, and the collate's one `Instances` per image."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image
from torchvision.ops import box_convert
from vltasks.datamodules import READERS, BadSampleError
from vltasks.datamodules.synthetic import WRITERS
from vltasks.datamodules.visual_genome import DenseCapCollator, densecap_words

from vltasks.batch import Instances

SPLITS = {"train": "train", "val": "val", "test": None, "predict": None}
REGIONS, IMAGE_DATA, DENSECAP_SPLITS = "region_descriptions.json", "image_data.json", "densecap_splits.json"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vg")
    WRITERS.get("visual_genome")(root, {"train": 6, "val": 3}, seed=3)
    return root


@pytest.fixture()
def root(world, tmp_path) -> Path:
    """A copy of the world to damage."""
    shutil.copytree(world, tmp_path / "vg")
    return tmp_path / "vg"


def _read(root: Path, policy: str = "error", split: str = "train", **options: Any):
    reader = READERS.get("visual_genome")(str(root), SPLITS, policy, **options)
    return reader, reader.samples(split)


def _edit(path: Path, edit: Callable[[Any], Any]) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(edit(data) or data), encoding="utf-8")


def _first_train(root: Path) -> tuple[int, dict]:
    """(image id, its first region) of the first training image."""
    iid = json.loads((root / DENSECAP_SPLITS).read_text())["train"][0]
    entry = next(e for e in json.loads((root / REGIONS).read_text()) if e["id"] == iid)
    return iid, entry["regions"][0]


def _region(root: Path, update: dict, index: int = 0) -> tuple[int, int]:
    """Change the first training image's region `index`; return (image id, region id)."""
    iid = json.loads((root / DENSECAP_SPLITS).read_text())["train"][0]

    def edit(entries):
        region = next(e for e in entries if e["id"] == iid)["regions"][index]
        region.update(update)
        return entries

    _edit(root / REGIONS, edit)
    region = next(e for e in json.loads((root / REGIONS).read_text()) if e["id"] == iid)["regions"][index]
    return iid, region.get("region_id", region.get("id"))


def _to_v10(root: Path) -> None:
    """Rewrite the files in the v1.0 layout DenseCap read: regions {id, image}, image_data {id}."""

    def regions(entries):
        for e in entries:
            e["regions"] = [
                {("id" if k == "region_id" else "image" if k == "image_id" else k): v for k, v in r.items()}
                for r in e["regions"]
            ]

    def images(rows):
        for r in rows:
            r["id"] = r.pop("image_id")

    _edit(root / REGIONS, regions)
    _edit(root / IMAGE_DATA, images)


def test_densecap_words_lowercase_drop_punctuation_and_replace():
    assert densecap_words("A Red-Circle, on the LEFT.") == ["a", "redcircle", "on", "the", "left"]
    assert densecap_words("café ½ full… 90°") == ["cafe", "half", "full", "90", "degree"]
    assert densecap_words("  ...  ") == []


def test_v12_layout_reads_every_image_with_its_regions(world):
    reader, train = _read(world)
    assert reader.version == "1.2" and len(train) == 6 and reader.skipped == {"train": 0}
    files = json.loads((world / REGIONS).read_text())
    by_id = {e["id"]: e["regions"] for e in files}
    for s in train:
        regions = by_id[s["image_id"]]
        assert s["sample_id"] == str(s["image_id"]) and Path(s["image_path"]).is_file()
        assert s["region_ids"] == [r["region_id"] for r in regions]
        assert s["phrases"] == [" ".join(densecap_words(r["phrase"])) for r in regions]
        expected = [[r["x"], r["y"], r["x"] + r["width"], r["y"] + r["height"]] for r in regions]
        assert s["boxes"].tolist() == expected
        assert all(p == p.lower() and "." not in p for p in s["phrases"])
    assert reader.preprocessing["train"]["regions"] == sum(len(s["phrases"]) for s in train)


def test_v10_layout_gives_the_same_samples(world, root):
    _to_v10(root)
    old, new = _read(world)[1], _read(root)
    assert new[0].version == "1.0"
    for a, b in zip(old, new[1]):
        assert a["region_ids"] == b["region_ids"] and a["phrases"] == b["phrases"]
        assert a["boxes"].tolist() == b["boxes"].tolist()
    assert len(_read(root, version="1.0")[1]) == len(old)


@pytest.mark.parametrize("version", ["1.0", "1.2"])
def test_a_region_file_of_the_other_version_is_refused_by_name(world, root, version):
    if version == "1.2":
        _to_v10(root)
    iid, region = _first_train(root)
    with pytest.raises(
        BadSampleError, match=rf"{REGIONS}: image_id={iid} region #0: a v.* region .*version is '{version}'"
    ):
        _read(root, version=version)


def test_images_in_the_second_image_folder_are_found(root):
    reader, train = _read(root)
    moved = Path(train[0]["image_path"])
    (root / "VG_100K_2").mkdir()
    moved.rename(root / "VG_100K_2" / moved.name)
    assert _read(root)[1][0]["image_path"] == str(root / "VG_100K_2" / moved.name)


# (what, edit of the copied world -> record the message names, file, problem)
def _missing_image(root: Path) -> str:
    iid = _first_train(root)[0]
    (root / "VG_100K" / f"{iid}.jpg").unlink()
    return f"image_id={iid}"


def _unknown_image(root: Path) -> str:
    _edit(root / DENSECAP_SPLITS, lambda d: d["train"].append(123))
    return "image_id=123"


def _no_size(root: Path) -> str:
    iid = _first_train(root)[0]
    _edit(root / IMAGE_DATA, lambda rows: [r for r in rows if r["image_id"] != iid])
    return f"image_id={iid}"


def _region_case(update: dict) -> Callable[[Path], str]:
    def edit(root: Path) -> str:
        iid, rid = _region(root, update)
        return f"image_id={iid} region_id={rid}"

    return edit


def _v10_region_in_v12(root: Path) -> str:
    iid, region = _first_train(root)

    def edit(entries):
        r = next(e for e in entries if e["id"] == iid)["regions"][1]
        r["id"], r["image"] = r.pop("region_id"), r.pop("image_id")

    _edit(root / REGIONS, edit)
    return f"image_id={iid} region_id="


def _duplicate_region(root: Path) -> str:
    iid, region = _first_train(root)
    _region(root, {"region_id": region["region_id"]}, index=1)
    return f"image_id={iid} region_id={region['region_id']}"


CASES = [
    ("a non-positive width", _region_case({"width": 0}), REGIONS, "non-positive width or height"),
    ("a negative height", _region_case({"height": -4}), REGIONS, "non-positive width or height"),
    ("a box outside the image", _region_case({"x": 80}), REGIONS, "has no pixel inside the 64x64 image"),
    ("an empty phrase", _region_case({"phrase": " ... "}), REGIONS, "empty phrase"),
    ("a phrase that is not text", _region_case({"phrase": None}), REGIONS, "needs a 'phrase' text"),
    ("a NaN coordinate", _region_case({"y": float("nan")}), REGIONS, "NaN or infinite"),
    ("a region of another image", _region_case({"image_id": 7}), REGIONS, "listed under image"),
    (
        "a v1.0 region in a v1.2 file",
        _v10_region_in_v12,
        REGIONS,
        "has the v1.0 fields 'id', 'image' in a v1.2 file",
    ),
    ("a repeated region id", _duplicate_region, REGIONS, "listed twice"),
    ("an image id with no image file", _missing_image, "", "not found in VG_100K/ or VG_100K_2/"),
    ("an image id not in the region file", _unknown_image, DENSECAP_SPLITS, f"not in {REGIONS}"),
    ("an image without its size", _no_size, IMAGE_DATA, "size is unknown"),
]


@pytest.mark.parametrize(("what", "edit", "file", "says"), CASES, ids=[c[0] for c in CASES])
def test_each_bad_input_is_named_or_counted(what, edit, file, says, world, root):
    record = edit(root)
    with pytest.raises(BadSampleError) as err:
        _read(root)
    message = str(err.value)
    assert file in message and record in message and says in message, message
    reader, kept = _read(root, "skip")
    clean = _read(world)[1]
    assert reader.skipped["train"] == 1
    assert sum(len(s["phrases"]) for s in kept) <= sum(len(s["phrases"]) for s in clean)  # nothing else lost


def test_densecap_rules_clip_drop_long_phrases_and_empty_images_with_counts(root):
    iid, rid = _region(root, {"x": -5, "width": 30, "phrase": "The Red Circle!"})  # sticks out on the left
    long_phrase = " ".join(["word"] * 16)

    def long_everywhere(entries):
        image = next(e for e in entries if e["id"] != iid and len(e["regions"]))
        for r in image["regions"]:
            r["phrase"] = long_phrase
        return entries

    _edit(root / REGIONS, long_everywhere)
    reader, train = _read(root)
    first = next(s for s in train if s["image_id"] == iid)
    assert first["boxes"][0].tolist()[:3] == [0.0, first["boxes"][0, 1].item(), 25.0]
    assert first["phrases"][0] == "the red circle"
    stats = reader.preprocessing["train"]
    assert stats["clipped"] == 1 and stats["images_without_regions"] == 1 and stats["too_long"] >= 1
    assert len(train) == 5 and reader.skipped == {"train": 0}  # DenseCap's rules are not bad records
    kept_all = _read(root, max_words=0)[1]
    assert len(kept_all) == 6 and long_phrase in {p for s in kept_all for p in s["phrases"]}
    assert len(_read(root, max_words=16)[1]) == 6


def test_a_missing_split_and_bad_options_say_what_exists(world):
    reader = READERS.get("visual_genome")(str(world), {**SPLITS, "train": "nope"}, "error")
    with pytest.raises(
        BadSampleError,
        match=r"densecap_splits\.json: no split 'nope'; the file has splits \['train', 'val'\]",
    ):
        reader.samples("train")
    with pytest.raises(ValueError, match="data.options.version must be one of"):
        _read(world, version="2.0")


def test_collate_gives_one_instances_per_image_in_the_batch_contract(world, tokenizer):
    from vltasks.backbones import BlipBackbone

    backbone = BlipBackbone.from_config({"hidden_size": 32, "num_layers": 1, "num_heads": 2}, tokenizer)
    reader, train = _read(world)
    samples = [{**s, "image": Image.open(s["image_path"]).convert("RGB")} for s in train[:3]]
    batch = DenseCapCollator(backbone.processor)(samples)
    assert batch["pixel_values"].shape[0] == 3 and batch["image_size"].tolist() == [[64.0, 64.0]] * 3
    assert batch["image_id"].tolist() == [s["image_id"] for s in train[:3]]
    for s, t in zip(train, batch["targets"]):
        assert isinstance(t, Instances) and len(t) == len(s["phrases"]) and t.phrases == s["phrases"]
        xyxy = torch.from_numpy(s["boxes"])
        torch.testing.assert_close(t.pixel_boxes, xyxy)
        torch.testing.assert_close(t.boxes, box_convert(xyxy / 64.0, "xyxy", "cxcywh"))
        assert (t.labels == t.input_ids.masked_fill(t.attention_mask == 0, -100)).all()
        assert (
            t.input_ids.shape == t.attention_mask.shape
            and t.input_ids.shape[1] == batch["targets"][0].input_ids.shape[1]
        )

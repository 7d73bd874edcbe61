"""MSR-VTT: both releases' JSON, the 1k-A csv splits, the three clip sources, and bad records named."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch
from vltasks.datamodules import READERS, BadSampleError
from vltasks.datamodules.synthetic import WRITERS
from vltasks.datamodules.synthetic.motion import write_mp4

from tests.datamodules.test_video_media import _frames

STAGES = {"train": "train.9k", "val": "validate", "test": "test.1k", "predict": "test.1k"}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("msrvtt")
    WRITERS.get("msrvtt")(
        root,
        {"train.9k": 6, "validate": 3},
        seed=1,
        test_splits={"test.1k": 4},
        sources=("video", "frames", "features"),
    )
    return root


def _data(root, policy="error", **options):
    return READERS.get("msrvtt")(str(root), STAGES, policy, **options)


@pytest.mark.parametrize("source", ["video", "frames", "features"])
def test_splits_of_the_synthetic_layout_from_every_clip_source(world, source):
    data = _data(world, video_source=source)
    train, val, test = (data.samples(s) for s in ("train", "val", "test"))
    assert len(train) == 6 * 5 and len(val) == 3 and len(test) == 4  # captions; videos; 1k-A pairs
    assert all(len(s["captions"]) == 5 for s in val) and all(len(s["captions"]) == 1 for s in test)
    meta = json.loads((world / "MSRVTT_data.json").read_text())
    first = {}
    for s in meta["sentences"]:
        first.setdefault(s["video_id"], s["caption"])
    assert [s["captions"][0] for s in test] == [first[s["video_id"]] for s in test]  # JSFusion's pairs
    assert data.data_args() == {"items": "videos"} and "video" in data.needs
    clip = data.dataset(val)[0]
    assert ("features" if source == "features" else "frames") in clip
    assert data.skipped == {"train.9k": 0, "validate": 0, "test.1k": 0}


def test_the_10k_release_reads_to_the_same_samples(world, tmp_path):
    root = tmp_path / "tenk"
    WRITERS.get("msrvtt")(root, {"train": 4, "validate": 2}, seed=1, test_splits={"test": 2}, release="10k")
    assert not (root / "MSRVTT_data.json").exists() and (root / "test_videodatainfo.json").exists()
    data = READERS.get("msrvtt")(str(root), {"train": "train", "val": "val", "test": "test"})
    assert (
        len(data.samples("val")) == 2 and len(data.samples("test")) == 2 and len(data.samples("train")) == 20
    )


def _official(root: Path) -> None:
    """A few records in the published field names, written by hand, with two real clips."""
    videos = [
        {
            "category": 9,
            "url": "https://www.youtube.com/watch?v=9lZi22qLlEo",
            "video_id": "video0",
            "start time": 137.72,
            "end time": 149.44,
            "split": "train",
            "id": 0,
        },
        {
            "category": 16,
            "url": "https://www.youtube.com/watch?v=w4JM08PDEng",
            "video_id": "video7010",
            "start time": 184.33,
            "end time": 206.89,
            "split": "test",
            "id": 7010,
        },
    ]
    sentences = [
        {"caption": "a car is shown", "video_id": "video0", "sen_id": 0},
        {"caption": "a man drives   a car", "video_id": "video0", "sen_id": 1},
        {"caption": "a woman is singing", "video_id": "video7010", "sen_id": 140200},
    ]
    (root / "MSRVTT_data.json").write_text(json.dumps({"info": {}, "videos": videos, "sentences": sentences}))
    with (root / "MSRVTT_train.9k.csv").open("w", newline="") as f:
        csv.writer(f).writerows([["video_id"], ["video0"]])
    with (root / "MSRVTT_JSFUSION_test.csv").open("w", newline="") as f:
        csv.writer(f).writerows(
            [["key", "vid_key", "video_id", "sentence"], ["ret0", "msr7010", "video7010", "a woman sings"]]
        )
    for vid in ("video0", "video7010"):
        write_mp4(root / "MSRVTT_Videos" / f"{vid}.mp4", _frames(8))


def test_records_in_the_published_fields(tmp_path):
    _official(tmp_path)
    data = _data(tmp_path)
    train = data.samples("train")
    assert [s["caption"] for s in train] == ["a car is shown", "a man drives a car"]  # spaces collapsed
    assert [s["sentid"] for s in train] == [0, 1] and train[0]["video_id"] == "video0"
    (test,) = data.samples("test")
    assert test["video_id"] == "video7010" and test["imgid"] == 7010 and test["captions"] == ["a woman sings"]
    assert test["video_path"].endswith("MSRVTT_Videos/video7010.mp4")
    batch = data.collate(_processor(), {})([data.dataset([test])[0]])
    assert batch["video"].shape[:2] == (1, 8) and batch["video_id"] == ["video7010"]
    assert batch["targets"].tolist() == [7010] and batch["text_ids"].tolist() == [0]


def _processor():
    from types import SimpleNamespace

    return SimpleNamespace(
        images=lambda images: {"pixel_values": torch.zeros(len(images), 3, 8, 8)},
        text=lambda texts: {
            "input_ids": torch.ones(len(texts), 3, dtype=torch.long),
            "attention_mask": torch.ones(len(texts), 3, dtype=torch.long),
        },
    )


def _rename(data: dict, old: str, new: str) -> None:
    for record in (*data["videos"], *data["sentences"]):
        if record["video_id"] == old:
            record["video_id"] = new


def _edit_json(root: Path, fn) -> None:
    path = root / "MSRVTT_data.json"
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("edit", "where", "says"),
    [
        (
            lambda d: d["sentences"].append({"caption": "x", "video_id": "video99", "sen_id": 5}),
            "MSRVTT_data.json",
            "names video_id 'video99', which no video has",
        ),
        (lambda d: d["sentences"].append(dict(d["sentences"][0])), "MSRVTT_data.json", "duplicate sen_id"),
        (lambda d: d["sentences"][1].update(caption="  "), "MSRVTT_data.json", "empty or missing 'caption'"),
        (
            lambda d: d["sentences"][1].update(caption="a \ud800 car"),
            "MSRVTT_data.json",
            "UTF-8 cannot encode",
        ),
        (lambda d: _rename(d, "video0", "../../etc/passwd"), "MSRVTT_Videos", "leaves"),
    ],
    ids=["unknown video", "duplicate sen_id", "empty caption", "surrogate", "path escape"],
)
def test_bad_records_are_named_or_counted(tmp_path, edit, where, says):
    _official(tmp_path)
    _edit_json(tmp_path, edit)
    with pytest.raises(BadSampleError) as e:
        READERS.get("msrvtt")(str(tmp_path), {"train": "train"}).samples("train")
    assert where in str(e.value) and says in str(e.value), str(e.value)
    skipping = READERS.get("msrvtt")(str(tmp_path), {"train": "train"}, "skip")
    skipping.samples("train")
    assert skipping.skipped["train"] >= 1


def test_a_missing_video_names_the_file_and_the_video(tmp_path):
    _official(tmp_path)
    (tmp_path / "MSRVTT_Videos" / "video0.mp4").unlink()
    with pytest.raises(
        BadSampleError, match=r"MSRVTT_Videos/video0\.mp4: video_id=video0: video file not found"
    ):
        _data(tmp_path).samples("train")
    shutil.rmtree(tmp_path / "MSRVTT_Videos")
    with pytest.raises(FileNotFoundError, match="MSRVTT_JSFUSION"):
        READERS.get("msrvtt")(str(tmp_path / "nowhere"), {"test": "test.1k"}).samples("test")


def test_an_unknown_split_lists_the_known_ones(world):
    with pytest.raises(BadSampleError, match=r"unknown MSR-VTT split 'dev'.*test\.1k"):
        READERS.get("msrvtt")(str(world), {"val": "dev"}).samples("val")

"""MSVD (lists + a captions pickle, .avi clips) and DiDeMo paragraphs, from hand-written records in
the published fields, and their bad records named or counted."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from vltasks.datamodules import READERS, BadSampleError
from vltasks.datamodules.synthetic.motion import write_mp4

from tests.datamodules.test_video_media import _frames

MSVD_STAGES = {"train": "train", "val": "val", "test": "test"}


def _msvd(root: Path, captions: dict, lists: dict) -> None:
    (root / "raw-captions.pkl").write_bytes(pickle.dumps(captions, protocol=2))
    for split, ids in lists.items():
        (root / f"{split}_list.txt").write_text("".join(f"{i}\n" for i in ids))
    for vid in {v for ids in lists.values() for v in ids}:
        write_mp4(root / "YouTubeClips" / f"{vid}.avi", _frames(8))


def test_msvd_reads_lists_pickle_and_avi_clips(tmp_path):
    caps = {
        "-4wsuPCjDBc_5_15": [["a", "squirrel", "is", "eating"], ["a", "chipmunk", "eats"]],
        "-7KMZQEsJW4_205_208": [["a", "man", "is", "cutting", "bread"]],
    }
    _msvd(tmp_path, caps, {"train": ["-4wsuPCjDBc_5_15"], "val": ["-7KMZQEsJW4_205_208"], "test": []})
    data = READERS.get("msvd")(str(tmp_path), MSVD_STAGES)
    train, (val,) = data.samples("train"), data.samples("val")
    assert [s["caption"] for s in train] == ["a squirrel is eating", "a chipmunk eats"]
    assert [s["sentid"] for s in train] == [0, 1] and val["sentids"] == [2] and val["imgid"] == 1
    assert val["video_path"].endswith("YouTubeClips/-7KMZQEsJW4_205_208.avi")
    assert len(data.dataset([val])[0]["frames"]) == 8  # MPEG-4 Part 2 in AVI decodes through PyAV


@pytest.mark.parametrize(
    ("captions", "lists", "where", "says"),
    [
        ({"a": [["ok"]]}, {"train": ["a", "b"]}, "train_list.txt", "line 2 (video_id=b): has no captions"),
        ({"a": [["ok"], []]}, {"train": ["a"]}, "raw-captions.pkl", "caption #1: must be a non-empty list"),
        ({"a": [["ok"], ["x", "\ud800"]]}, {"train": ["a"]}, "raw-captions.pkl", "UTF-8 cannot encode"),
    ],
    ids=["unlisted captions", "empty caption", "surrogate"],
)
def test_msvd_bad_records_are_named_or_counted(tmp_path, captions, lists, where, says):
    _msvd(tmp_path, captions, lists)
    with pytest.raises(BadSampleError) as e:
        READERS.get("msvd")(str(tmp_path), MSVD_STAGES).samples("train")
    assert where in str(e.value) and says in str(e.value)
    skipping = READERS.get("msvd")(str(tmp_path), MSVD_STAGES, "skip")
    assert [s["caption"] for s in skipping.samples("train")] == ["ok"] and skipping.skipped["train"] == 1


def test_msvd_refuses_a_pickle_that_would_build_objects(tmp_path):
    (tmp_path / "raw-captions.pkl").write_bytes(pickle.dumps({"a": [["x"]], "b": Path("/etc")}))
    (tmp_path / "train_list.txt").write_text("a\n")
    with pytest.raises(BadSampleError, match="not a plain-data pickle"):
        READERS.get("msvd")(str(tmp_path), MSVD_STAGES).samples("train")


def _didemo(root: Path, records: list[dict]) -> None:
    (root / "val_data.json").write_text(json.dumps(records))
    for video in {r["video"] for r in records if isinstance(r.get("video"), str)}:
        write_mp4(root / "videos" / f"{video}.mp4", _frames(8))  # the AWS copies: .mp4 appended


RECORDS = [
    {
        "num_segments": 6,
        "description": "the man in the hat bends over",
        "dl_link": "https://x",
        "times": [[1, 1], [1, 1], [1, 1], [0, 0]],
        "video": "35034348999@N01_6060447507_dc1a90b8ef.mov",
        "annotation_id": 49152,
    },
    {
        "num_segments": 6,
        "description": "bird flys by",
        "dl_link": "https://y",
        "times": [[4, 4]] * 4,
        "video": "39727414@N00_3622114091_452b89919c.3gp",
        "annotation_id": 40961,
    },
    {
        "num_segments": 6,
        "description": "then  he stands up",
        "dl_link": "https://x",
        "times": [[2, 3]] * 4,
        "video": "35034348999@N01_6060447507_dc1a90b8ef.mov",
        "annotation_id": 49153,
    },
]


def test_didemo_paragraphs_join_each_videos_descriptions_in_file_order(tmp_path):
    _didemo(tmp_path, RECORDS)
    data = READERS.get("didemo_paragraphs")(str(tmp_path), {"val": "val"})
    first, second = data.samples("val")
    assert first["captions"] == ["the man in the hat bends over then he stands up"]
    assert first["video_path"].endswith("dc1a90b8ef.mov.mp4") and second["imgid"] == 1
    (tmp_path / "val_list.txt").write_text(f"{RECORDS[1]['video']}\n")  # CLIP4Clip's list restricts
    (only,) = READERS.get("didemo_paragraphs")(str(tmp_path), {"val": "val"}).samples("val")
    assert only["captions"] == ["bird flys by"]


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda r: r[1].update(annotation_id=49152), "duplicate annotation_id"),
        (lambda r: r[1].update(description=" "), "empty or missing 'description'"),
        (lambda r: r[1].pop("video"), "needs a 'video' name"),
    ],
)
def test_didemo_bad_records_are_named_or_counted(tmp_path, edit, says):
    records = json.loads(json.dumps(RECORDS))
    edit(records)
    _didemo(tmp_path, records)
    with pytest.raises(BadSampleError, match=rf"val_data\.json: record #1 .*{says}"):
        READERS.get("didemo_paragraphs")(str(tmp_path), {"val": "val"}).samples("val")
    skipping = READERS.get("didemo_paragraphs")(str(tmp_path), {"val": "val"}, "skip")
    assert len(skipping.samples("val")) == 1 and skipping.skipped["val"] == 1

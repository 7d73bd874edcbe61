"""Charades-STA, QVHighlights and DiDeMo moments from records in their published fields, the span
batches, and every bad window named with file, line and id (or counted)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from vltasks.datamodules import READERS, BadSampleError

CHARADES = "3MSZA 24.3 30.4##person turn a light on.\n3MSZA 0.0 6.9##a person is standing holding a phone.\n"
QVH = {
    "qid": 8737,
    "query": "A family is playing basketball together on a green court outside.",
    "duration": 126,
    "vid": "bP5KfdFJzC4_660.0_810.0",
    "relevant_windows": [[0, 16], [120, 126]],
    "relevant_clip_ids": [0, 1, 2, 3, 4, 5, 6, 7, 60, 61, 62],
    "saliency_scores": [
        [4, 1, 1],
        [4, 1, 1],
        [4, 2, 1],
        [4, 3, 2],
        [4, 3, 2],
        [4, 3, 3],
        [4, 3, 3],
        [4, 3, 2],
        [2, 2, 2],
        [3, 2, 1],
        [1, 1, 1],
    ],
}


def _processor():
    from types import SimpleNamespace

    return SimpleNamespace(
        text=lambda texts: {
            "input_ids": torch.ones(len(texts), 4, dtype=torch.long),
            "attention_mask": torch.ones(len(texts), 4, dtype=torch.long),
        },
    )


def _charades(root: Path, lines: str = CHARADES, length: str = "30.96") -> None:
    (root / "charades_sta_test.txt").write_text(lines)
    header = "id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length\n"
    (root / "Charades_v1_test.csv").write_text(
        header + f"3MSZA,HR43,Kitchen,6,7,Yes,x,light,y,c059 0.00 9.20,{length}\n"
    )
    (root / "features").mkdir(exist_ok=True)
    np.save(root / "features" / "3MSZA.npy", np.random.default_rng(0).random((31, 8)).astype(np.float32))


def test_charades_sta_lines_lengths_and_features(tmp_path):
    _charades(tmp_path)
    data = READERS.get("charades_sta")(str(tmp_path), {"test": "test"})
    first, second = data.samples("test")
    assert first["windows"] == [[24.3, 30.4]] and first["duration"] == 30.96 and first["vid"] == "3MSZA"
    assert first["query"] == "person turn a light on." and data.data_args() == {"protocol": "charades_sta"}
    batch = data.collate(_processor(), {})([data.dataset([first, second])[i] for i in range(2)])
    assert batch["video_features"].shape == (2, 31, 8) and batch["duration"].tolist() == [30.96, 30.96]
    assert batch["targets"][1].windows.tolist() == [[0.0, 6.9]]
    centers = (torch.arange(31) + 0.5) * 30.96 / 31
    assert torch.equal(batch["saliency"][0] > 0, (centers >= 24.3) & (centers < 30.4))


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("3MSZA 12.0 8.0##ends first.\n", "ends before it starts"),
        ("3MSZA 24.3 33.5##too long.\n", "leaves the 30.96 s video by more than 1.0 s"),
        ("3MSZA 1.0 nan##not finite.\n", "two finite numbers"),
        ("XXXXX 1.0 2.0##no length.\n", "video 'XXXXX' has no length"),
        ("3MSZA 1.0 2.0 no sentence\n", "expected 'VID start end##sentence'"),
    ],
)
def test_charades_sta_bad_windows_are_named(tmp_path, line, says):
    _charades(tmp_path, CHARADES + line)
    with pytest.raises(BadSampleError, match=r"charades_sta_test\.txt: line 3"):
        READERS.get("charades_sta")(str(tmp_path), {"test": "test"}).samples("test")
    skipping = READERS.get("charades_sta")(str(tmp_path), {"test": "test"}, "skip")
    assert len(skipping.samples("test")) == 2 and skipping.skipped["test"] == 1
    with pytest.raises(BadSampleError) as e:
        READERS.get("charades_sta")(str(tmp_path), {"test": "test"}).samples("test")
    assert says in str(e.value)


def test_an_end_within_the_tolerance_is_clamped(tmp_path):
    _charades(tmp_path, "3MSZA 24.3 31.5##a little over.\n")
    (sample,) = READERS.get("charades_sta")(str(tmp_path), {"test": "test"}).samples("test")
    assert sample["windows"] == [[24.3, 30.96]]


def _qvh(root: Path, records: list[dict], split: str = "val") -> None:
    (root / f"highlight_{split}_release.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (root / "features").mkdir(exist_ok=True)
    for r in records:
        np.savez(root / "features" / f"{r['vid']}.npz", features=np.zeros((63, 8), np.float32))


def test_qvhighlights_records_saliency_and_the_unlabelled_test_split(tmp_path):
    _qvh(tmp_path, [QVH])
    _qvh(tmp_path, [{k: QVH[k] for k in ("qid", "query", "duration", "vid")}], "test")
    data = READERS.get("qvhighlights")(str(tmp_path), {"val": "val", "predict": "test"})
    (val,), (test,) = data.samples("val"), data.samples("predict")
    assert val["windows"] == [[0.0, 16.0], [120.0, 126.0]] and val["gt_saliency"].shape == (63, 3)
    assert val["clip_scores"][3] == pytest.approx(3.0) and "windows" not in test
    batch = data.collate(_processor(), {})([data.dataset([val])[0]])
    assert batch["qid"] == [8737] and batch["saliency"][0, 3] == pytest.approx(3.0)  # step 3 = clip 3
    assert float(batch["saliency"][0, 10]) == 0.0
    unlabelled = data.collate(_processor(), {})([data.dataset([test])[0]])
    assert "targets" not in unlabelled  # predict only


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda r: r.update(relevant_windows=[]), "a query without a window"),
        (lambda r: r.update(relevant_windows=[[20, 10]]), "ends before it starts"),
        (
            lambda r: r.update(saliency_scores=r["saliency_scores"][:-1]),
            "one row of 0-4 scores per relevant clip",
        ),
        (lambda r: r.update(relevant_clip_ids=[0, 99]), "clip indices below 63"),
        (lambda r: r.update(vid="nowhere_0.0_150.0"), "feature file not found"),
    ],
    ids=["no window", "reversed", "scores", "clip ids", "no features"],
)
def test_qvhighlights_bad_records_are_named(tmp_path, edit, says):
    _qvh(tmp_path, [QVH])
    bad = json.loads(json.dumps(QVH))
    edit(bad)
    bad["qid"] = 1
    path = tmp_path / "highlight_val_release.jsonl"
    path.write_text(path.read_text() + json.dumps(bad) + "\n")
    with pytest.raises(BadSampleError) as e:
        READERS.get("qvhighlights")(str(tmp_path), {"val": "val"}).samples("val")
    assert "line 2 (qid=1)" in str(e.value) and says in str(e.value)
    skipping = READERS.get("qvhighlights")(str(tmp_path), {"val": "val"}, "skip")
    assert [s["qid"] for s in skipping.samples("val")] == [8737]


def test_didemo_moments_use_every_annotator(tmp_path):
    records = [
        {
            "num_segments": 6,
            "description": "bird flys by",
            "dl_link": "",
            "times": [[4, 4], [2, 2], [4, 4], [4, 5]],
            "video": "35034360491@N01_3441841334_fdeafddfe9.m4v",
            "annotation_id": 32773,
        }
    ]
    (tmp_path / "val_data.json").write_text(json.dumps(records))
    import h5py

    with h5py.File(tmp_path / "average_fc7.h5", "w") as f:
        f.create_dataset(records[0]["video"], data=np.zeros((6, 8), np.float32))
    data = READERS.get("didemo_moments")(str(tmp_path), {"val": "val"}, feature_file="average_fc7.h5")
    (sample,) = data.samples("val")
    assert sample["windows"] == [[10.0, 15.0], [20.0, 25.0], [20.0, 30.0]] and sample["gt_moments"][3] == [
        4,
        5,
    ]
    records[0]["times"] = [[4, 6]]
    (tmp_path / "val_data.json").write_text(json.dumps(records))
    with pytest.raises(BadSampleError, match=r"record #0 \(annotation_id=32773\): 'times'"):
        READERS.get("didemo_moments")(str(tmp_path), {"val": "val"}, feature_file="average_fc7.h5").samples(
            "val"
        )

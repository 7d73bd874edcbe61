"""The video QA readers (MSRVTT-QA, MSVD-QA, ActivityNet-QA, TGIF-QA's four tasks, NExT-QA): their
synthetic layouts, records written by hand in the published field names, the batches each kind
gives its head, and every bad input named with its file and record (or counted under skip)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
import torch
from vltasks.datamodules import READERS, BadSampleError
from vltasks.datamodules.synthetic import WRITERS, motion_qa, read_meta
from vltasks.datamodules.synthetic.motion import FRAMES, questions, write_mp4
from vltasks.datamodules.synthetic.motion_qa import write_gif
from vltasks.datamodules.synthetic.writers import WorldSpec
from vltasks.datamodules.video import segment_indices

from tests.datamodules.test_video_media import _frames
from vltasks.batch import FAILED

SPLITS = {"train": "train", "val": "val", "test": "val", "predict": "val"}
TGIF_SPLITS = {"train": "train", "val": "test", "test": "test", "predict": "test"}
# (format, data options, the split names, the writer's split whose counts the meta keeps)
CASES = [
    ("msrvtt_qa", {}, SPLITS),
    ("msvd_qa", {}, SPLITS),
    ("activitynet_qa", {}, SPLITS),
    ("nextqa", {}, SPLITS),
    *[("tgif_qa", {"task": t}, TGIF_SPLITS) for t in ("frameqa", "action", "transition", "count")],
]
IDS = [
    "msrvtt_qa",
    "msvd_qa",
    "activitynet_qa",
    "nextqa",
    "tgif_frameqa",
    "tgif_action",
    "tgif_transition",
    "tgif_count",
]


def processor() -> SimpleNamespace:
    """The three calls a collate makes, shaped like the real processor's outputs."""

    def text(texts: list[str]) -> dict:
        return {
            "input_ids": torch.ones(len(texts), 4, dtype=torch.long),
            "attention_mask": torch.ones(len(texts), 4),
        }

    return SimpleNamespace(
        images=lambda images: {"pixel_values": torch.zeros(len(images), 3, 8, 8)},
        text=text,
        pairs=lambda contexts, candidates: text(contexts),
    )


@pytest.fixture(scope="module")
def worlds(tmp_path_factory) -> dict[str, Path]:
    out = {}
    for fmt in dict.fromkeys(c[0] for c in CASES):
        root = tmp_path_factory.mktemp(fmt)
        splits = {"train": 6, "test": 6} if fmt == "tgif_qa" else {"train": 6, "val": 3}  # 2 blinking
        WRITERS.get(fmt)(root, splits, seed=2, sources=("video", "features"))
        out[fmt] = root
    return out


def _reader(fmt: str, root: Path, splits: dict, policy: str = "error", **options):
    return READERS.get(fmt)(str(root), splits, policy, **options)


@pytest.mark.parametrize(("fmt", "options", "splits"), CASES, ids=IDS)
def test_each_reader_reads_its_synthetic_layout_and_batches_for_its_head(worlds, fmt, options, splits):
    data = _reader(fmt, worlds[fmt], splits, **options)
    train, val = data.samples("train"), data.samples("val")
    assert train and val and data.skipped == {splits["train"]: 0, splits["val"]: 0}
    meta = read_meta(worlds[fmt])
    task = options.get("task")
    want = meta["splits"][splits["val"]][task] if task else meta["splits"][splits["val"]]["questions"]
    assert len(val) == want and len({s["sample_id"] for s in val}) == len(val)
    assert "video" in data.needs and all(Path(s["video_path"]).is_file() for s in val)
    args = data.data_args()
    batch = data.collate(processor(), args)([data.dataset(val)[i] for i in range(2)])
    assert batch["video"].shape == (2, 8, 3, 8, 8)  # 8 frames decoded from each clip
    kind = data.task_kind()
    if kind == "open":
        assert args["protocol"] == "exact" and args["answers"] and args["answer_types"]
        hit = [s["answers"][0] in args["answers"] for s in val[:2]]
        assert batch["targets"].sum(1).tolist() == [float(h) for h in hit]  # exact: 1 on the answer
        assert set(batch["answer_type"]) <= set(args["answer_types"])
    elif kind == "choice":
        assert args == {"protocol": "nextqa" if fmt == "nextqa" else "tgif"}
        assert batch["answer_inputs"]["input_ids"].shape[:2] == (2, 5)
        assert batch["targets"].tolist() == [[s["label"]] for s in val[:2]]
        assert all(s["candidates"][s["label"]] == s["answer"] for s in val)
    else:
        assert args["mean_count"] == pytest.approx(np.mean([s["count"] for s in train]))
        assert (
            batch["targets"].tolist() == [float(s["count"]) for s in val[:2]] and min(batch["targets"]) >= 1
        )
    features = _reader(fmt, worlds[fmt], splits, video_source="features", **options)
    clip = features.dataset(features.samples("val"))[0]
    assert clip["features"].shape == (8, 192)  # 8 of the 16 pooled-frame steps


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _write_table(path: Path, rows: list[list], delimiter: str = ",") -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f, delimiter=delimiter, lineterminator="\r\n" if delimiter == "\t" else "\n").writerows(
            rows
        )


def _official(fmt: str, root: Path, task: str = "") -> None:
    """A few records in the published field names (examples from the releases), with real clips."""
    if fmt in ("msrvtt_qa", "msvd_qa"):
        rows = [{"answer": "chair", "id": 0, "question": "what is a man sitting on?", "video_id": 7},
                {"answer": "man", "id": 1, "question": "who is talking?", "video_id": 7}]  # fmt: skip
        _write_json(root / "train_qa.json", rows)
        if fmt == "msvd_qa":
            (root / "youtube_mapping.txt").write_text("-4wsuPCjDBc_5_15 vid1\r\nmJ8bRVBjRC0_2_12 vid7\r\n")
        write_mp4(
            root
            / ("MSRVTT_Videos/video7.mp4" if fmt == "msrvtt_qa" else "YouTubeClips/mJ8bRVBjRC0_2_12.avi"),
            _frames(8),
        )
    elif fmt == "activitynet_qa":
        question = {
            "video_name": "JspVuT6rsLA",
            "question": "what is he doing",
            "question_id": "v_JspVuT6rsLA_1",
        }
        _write_json(root / "train_q.json", [question])
        _write_json(
            root / "train_a.json", [{"answer": "dancing", "type": 0, "question_id": "v_JspVuT6rsLA_1"}]
        )
        write_mp4(root / "videos" / "v_JspVuT6rsLA.mp4", _frames(8))
    elif fmt == "nextqa":
        header = ["video", "frame_count", "width", "height", "question", "answer", "qid", "type"]
        row = ["4010069381", 369, 640, 480, "how do the two man play the instrument", 2, 6, "CH"]
        _write_table(root / "train.csv", [[*header, "a0", "a1", "a2", "a3", "a4"],
                                          [*row, "roll the handle", "tap their feet", "strum the string",
                                           "hit with sticks", "pat with hand"]])  # fmt: skip
        _write_json(root / "map_vid_vidorID.json", {"4010069381": "1006/4010069381"})
        write_mp4(root / "NExTVideo" / "1006" / "4010069381.mp4", _frames(8))
    else:
        gif = "tumblr_nqc2mbmU2J1uxhtnwo1_400"
        rows = {
            "frameqa": [["gif_name", "question", "answer", "type", "vid_id", "key", "description"],
                        [gif, "how many dogs is playing tug of war ?", "two", 1, "FRAMEQA3", 25889, "x"]],
            "action": [["gif_name", "question", "a1", "a2", "a3", "a4", "a5", "answer", "vid_id", "key"],
                       [gif, "What does the woman do 4 times ?", "flick", "do gymnastic", "chew food",
                        "shake hips", 'respond "no"', 2, "ACTION1", 5]],
            "count": [["gif_name", "question", "answer", "vid_id", "key"],
                      [gif, "How many times does the man wave his head ?", 0, "COUNT2", 16]],
        }  # fmt: skip
        rows["transition"] = rows["action"]
        _write_table(root / f"Train_{task}_question.csv", rows[task], delimiter="\t")
        write_gif(root / "gifs" / f"{gif}.gif", _frames(8))


HAND = [("msrvtt_qa", ""), ("msvd_qa", ""), ("activitynet_qa", ""), ("nextqa", "")]
HAND += [("tgif_qa", t) for t in ("frameqa", "action", "count")]


@pytest.mark.parametrize(("fmt", "task"), HAND, ids=[f"{f}{'_' + t if t else ''}" for f, t in HAND])
def test_records_in_the_published_fields(tmp_path, fmt, task):
    _official(fmt, tmp_path, task)
    options = {"task": task} if task else {}
    data = _reader(fmt, tmp_path, {"train": "train"}, **options)
    first = data.samples("train")[0]
    want = {
        "msrvtt_qa": {"question_id": 0, "answers": ["chair"], "answer_type": "what", "video_id": "video7"},
        "msvd_qa": {"question_id": 0, "answers": ["chair"], "video_id": "mJ8bRVBjRC0_2_12"},
        "activitynet_qa": {"question_id": "v_JspVuT6rsLA_1", "answers": ["dancing"], "answer_type": "motion"},
        "nextqa": {
            "sample_id": "4010069381_6",
            "label": 2,
            "answer": "strum the string",
            "question_type": "CH",
        },
        "frameqa": {"question_id": "FRAMEQA3", "answers": ["two"], "answer_type": "number"},
        "action": {"question_id": "ACTION1", "label": 2, "answer": "chew food"},
        "count": {"question_id": "COUNT2", "count": 1},  # the release writes 1 as 0
    }[task or fmt]
    assert {k: first[k] for k in want} == want
    if task == "action":
        assert first["candidates"][4] == 'respond "no"'  # the release's CSV quoting
    loaded = data.dataset([first])[0]
    assert FAILED not in loaded and len(loaded["frames"]) == 8
    if fmt == "nextqa":
        assert first["video_id"] == "4010069381" and first["video_path"].endswith(
            "NExTVideo/1006/4010069381.mp4"
        )


def _copy(worlds: dict[str, Path], fmt: str, tmp_path: Path) -> Path:
    root = tmp_path / fmt
    shutil.copytree(worlds[fmt], root)
    return root


def _edit_json(path: Path, fn) -> None:
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def _edit_table(path: Path, fn, delimiter: str = ",") -> None:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter=delimiter))
    fn(rows)
    _write_table(path, rows, delimiter)


def _msvd_bad_line(root: Path) -> None:
    path = root / "youtube_mapping.txt"
    path.write_text(path.read_text() + "just-a-name\n")  # after the 9 clips' lines


def _climb_out(root: Path) -> None:
    _edit_json(root / "train_q.json", lambda d: d[0].update(video_name="/../../x"))  # v_/../../x


def _msvd_drop_vid(root: Path) -> None:
    lines = (root / "youtube_mapping.txt").read_text().splitlines()
    (root / "youtube_mapping.txt").write_text("\n".join(lines[1:]) + "\n")


# (format, options, edit of the copied world, the file named, what the message says)
BAD = [
    ("msrvtt_qa", {}, lambda r: (r / "MSRVTT_Videos" / "video0.mp4").unlink(), "MSRVTT_Videos/video0.mp4",
     "id=0 (video_id=0): video file not found"),
    ("msrvtt_qa", {}, lambda r: _edit_json(r / "train_qa.json", lambda d: d[0].update(video_id="7")),
     "train_qa.json", "non-negative integer 'video_id'"),
    ("msrvtt_qa", {}, lambda r: _edit_json(r / "train_qa.json", lambda d: d.append(dict(d[0]))),
     "train_qa.json", "duplicate id"),
    ("msrvtt_qa", {}, lambda r: _edit_json(r / "train_qa.json", lambda d: d[1].update(answer=" ")),
     "train_qa.json", "empty or missing 'question' or 'answer'"),
    ("msrvtt_qa", {}, lambda r: (r / "train_qa.json").write_text("[{"), "train_qa.json", "malformed JSON"),
    ("msrvtt_qa", {}, lambda r: _edit_json(r / "train_qa.json", lambda d: d[0].update(question="a \ud800?")),
     "train_qa.json", "UTF-8 cannot encode"),
    ("msvd_qa", {}, _msvd_drop_vid, "youtube_mapping.txt", "(vid1) is not in youtube_mapping.txt"),
    ("msvd_qa", {}, _msvd_bad_line, "youtube_mapping.txt", "line 10: expected '<clip name> vid<N>'"),
    ("activitynet_qa", {}, lambda r: _edit_json(r / "train_a.json", lambda d: d.pop(0)),
     "train_a.json", "question has no usable answer"),
    ("activitynet_qa", {}, lambda r: _edit_json(r / "train_a.json", lambda d: d[0].update(type=9)),
     "train_a.json", "'type' must be an integer 0..8"),
    ("activitynet_qa", {}, _climb_out, "videos", "leaves"),
    ("nextqa", {}, lambda r: _edit_json(r / "map_vid_vidorID.json", lambda d: d.pop("4000000000")),
     "map_vid_vidorID.json", "video 4000000000 is not in map_vid_vidorID.json"),
    ("nextqa", {}, lambda r: _edit_table(r / "train.csv", lambda rows: rows[1].__setitem__(5, "5")),
     "train.csv", "candidate position 0..4"),
    ("nextqa", {}, lambda r: _edit_table(r / "train.csv", lambda rows: rows[1].__setitem__(7, "XY")),
     "train.csv", "'type' must be one of"),
    ("nextqa", {}, lambda r: _edit_table(r / "train.csv", lambda rows: rows.append(rows[1])),
     "train.csv", "a second question 0 for video 4000000000"),
    ("tgif_qa", {"task": "count"}, lambda r: _edit_table(r / "Train_count_question.csv",
                                                         lambda rows: rows[1].__setitem__(2, "11"), "\t"),
     "Train_count_question.csv", "count 0..10"),
    ("tgif_qa", {"task": "action"}, lambda r: _edit_table(r / "Train_action_question.csv",
                                                          lambda rows: rows[1].pop(3), "\t"),
     "Train_action_question.csv", "line 2: 9 fields, the header has 10"),
    ("tgif_qa", {"task": "frameqa"}, lambda r: _edit_table(r / "Train_frameqa_question.csv",
                                                           lambda rows: rows[1].__setitem__(3, "7"), "\t"),
     "Train_frameqa_question.csv", "'type' must be 0..3"),
]  # fmt: skip


@pytest.mark.parametrize(("fmt", "options", "edit", "where", "says"), BAD)
def test_bad_records_are_named_with_file_and_record_or_counted(
    worlds, tmp_path, fmt, options, edit, where, says
):
    root = _copy(worlds, fmt, tmp_path)
    edit(root)
    splits = {"train": "train"}
    with pytest.raises(BadSampleError) as e:
        _reader(fmt, root, splits, **options).samples("train")
    assert where in str(e.value) and says in str(e.value), str(e.value)
    if "malformed JSON" in says:
        return  # a file that does not parse has no records to skip
    skipping = _reader(fmt, root, splits, "skip", **options)
    kept = skipping.samples("train")
    assert skipping.skipped["train"] >= 1 and kept


def test_a_missing_video_names_the_record_that_uses_it(worlds, tmp_path):
    root = _copy(worlds, "nextqa", tmp_path)
    (root / "NExTVideo" / "0000" / "4000000001.mp4").unlink()
    with pytest.raises(
        BadSampleError,
        match=r"NExTVideo/0000/4000000001\.mp4: 4000000001_0 \(line \d+\): video file not found",
    ):
        _reader("nextqa", root, {"train": "train"}).samples("train")


def _mp4(tmp_path: Path) -> bytes:
    path = tmp_path / "whole.mp4"
    write_mp4(path, _frames(16))
    return path.read_bytes()


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda p, t: p.write_bytes(b""), "unreadable video"),
        (lambda p, t: p.write_bytes(b"\x00\x01not a video" * 40), "unreadable video"),
        (lambda p, t: p.write_bytes(_mp4(t)[: len(_mp4(t)) // 2]), "video"),
    ],
    ids=["empty", "corrupt", "truncated"],
)
def test_a_broken_clip_fails_at_load_naming_file_and_record_never_black_frames(
    worlds, tmp_path, damage, says
):
    root = _copy(worlds, "msrvtt_qa", tmp_path)
    data = _reader("msrvtt_qa", root, {"train": "train"})
    samples = data.samples("train")  # the file exists: read time passes
    damage(Path(samples[0]["video_path"]), tmp_path)
    item = data.dataset(samples)[0]
    assert "frames" not in item and samples[0]["video_path"] in item[FAILED]
    assert samples[0]["record"] in item[FAILED] and says in item[FAILED], item[FAILED]
    assert FAILED not in data.dataset(samples)[len(samples) - 1]  # the others still load


@pytest.mark.parametrize(
    ("array", "says"),
    [
        (np.zeros((16, 5), np.float32), "features of shape (16, 5), expected dim 192"),
        (np.zeros((16, 192), np.int64), "found int64 of shape (16, 192)"),
        (np.zeros((16, 4, 48), np.float32), "of shape (16, 4, 48)"),
    ],
    ids=["width", "dtype", "rank"],
)
def test_a_feature_file_of_the_wrong_shape_or_dtype_is_named_with_the_shape(worlds, tmp_path, array, says):
    root = _copy(worlds, "tgif_qa", tmp_path)
    data = _reader(
        "tgif_qa", root, {"train": "train"}, task="count", video_source="features", feature_dim=192
    )
    sample = data.samples("train")[0]
    with h5py.File(root / "features" / "features.h5", "a") as f:
        del f[sample["video_id"]]
        f.create_dataset(sample["video_id"], data=array)
    message = data.dataset([sample])[0][FAILED]
    assert (
        f"features.h5['{sample['video_id']}']" in message and sample["record"] in message and says in message
    )


def test_a_missing_feature_key_is_a_bad_record_at_read_time(worlds, tmp_path):
    root = _copy(worlds, "activitynet_qa", tmp_path)
    with h5py.File(root / "features" / "features.h5", "a") as f:
        del f["v_synth000000"]
    data = _reader("activitynet_qa", root, {"train": "train"}, "skip", video_source="features")
    data.samples("train")
    assert data.skipped["train"] == sum(
        1 for q in json.loads((root / "train_q.json").read_text()) if q["video_name"] == "synth000000"
    )


def test_an_unknown_task_or_split_lists_the_valid_ones(worlds):
    with pytest.raises(
        ValueError, match=r"task must be one of \('frameqa', 'action', 'transition', 'count'\)"
    ):
        _reader("tgif_qa", worlds["tgif_qa"], {"train": "train"}, task="repetition").samples("train")
    with pytest.raises(BadSampleError, match="TGIF-QA splits are 'train' and 'test'"):
        _reader("tgif_qa", worlds["tgif_qa"], {"val": "val"}).samples("val")
    with pytest.raises(FileNotFoundError, match="test_qa.json: file not found"):
        _reader("msrvtt_qa", worlds["msrvtt_qa"], {"test": "test"}).samples("test")


@pytest.mark.parametrize(
    ("fmt", "edit", "error", "says"),
    [
        ("nextqa", lambda r: (r / "map_vid_vidorID.json").write_text('{"4000000000": '), BadSampleError,
         "map_vid_vidorID.json: malformed JSON"),
        ("nextqa", lambda r: (r / "map_vid_vidorID.json").write_text("[]"), BadSampleError,
         "map_vid_vidorID.json: expected an object"),
        ("nextqa", lambda r: (r / "map_vid_vidorID.json").unlink(), FileNotFoundError,
         "map_vid_vidorID.json: file not found"),
        ("msvd_qa", lambda r: (r / "youtube_mapping.txt").unlink(), FileNotFoundError,
         "youtube_mapping.txt: file not found"),
        ("msvd_qa", lambda r: (r / "youtube_mapping.txt").write_bytes(b"clip\xff vid1\n"), BadSampleError,
         "youtube_mapping.txt: not UTF-8"),
    ],
    ids=["map-truncated", "map-not-an-object", "map-missing", "mapping-missing", "mapping-not-utf8"],
)  # fmt: skip
def test_a_missing_or_corrupt_video_names_file_is_named(worlds, tmp_path, fmt, edit, error, says):
    """The file that names each record's video is read whole: without it no record has a clip."""
    root = _copy(worlds, fmt, tmp_path)
    edit(root)
    with pytest.raises(error, match=says):
        _reader(fmt, root, {"train": "train"}, "skip").samples("train")


def _answer_from(clip, frames: list[int]) -> str:
    """What the frames ``frames`` of a clip show of its event: the direction the named shape went,
    which shape was seen first, or how many times the named shape went out of view."""
    actor = clip.actors[0]
    if clip.kind == "move":
        (x0, y0), (x1, y1) = actor.at(frames[0]).center, actor.at(frames[-1]).center
        dx, dy = x1 - x0, y1 - y0
        return ("right" if dx > 0 else "left") if abs(dx) > abs(dy) else ("down" if dy > 0 else "up")
    if clip.kind == "order":
        first = [min(k for k, f in enumerate(frames) if a.visible[f]) for a in clip.actors]
        assert first[0] != first[1]  # the frames tell the two apart
        return clip.actors[int(first[1] < first[0])].obj.shape
    seen = [actor.visible[f] for f in frames]
    return str(sum(a and not b for a, b in zip(seen, seen[1:])))


def test_questions_need_more_than_the_middle_frame_and_the_sampled_frames_suffice():
    """Every question's answer can be read from the 8 frames the model is given (evaluation's
    middles and training's random picks alike), and one frame cannot tell: halfway through both
    shapes of an order clip are in view, and a blinker is in view or not whatever its count."""
    world = WorldSpec(Path("unused"), {"train": 240, "val": 120}, {}, seed=3, image_size=64)
    clips = [c for split in motion_qa.split_clips(world).values() for c in split]
    torch.manual_seed(0)
    for clip in clips:
        truth = {q: a for q, a, _ in questions(clip)}
        for frames in (segment_indices(FRAMES, 8, False), segment_indices(FRAMES, 8, True)):
            got = _answer_from(clip, frames)
            if clip.kind == "order":
                assert truth["what shape appears first?"] == got
                assert all(a.visible[FRAMES // 2] for a in clip.actors)
            else:
                assert list(truth.values()) == [got], (clip.kind, clip.facts)
    blinkers = [c for c in clips if c.kind == "blink"]
    by_view = {(c.actors[0].visible[FRAMES // 2], c.facts["blinks"]) for c in blinkers}
    assert {(v, n) for v in (True, False) for n in (2, 3)} <= by_view  # seen or not, any count


def test_the_meta_records_chance_and_the_one_frame_baseline_far_below_what_motion_gives(worlds):
    """synthetic_meta.json keeps, per evaluated split, chance and the answer from one frame (what
    the demo must beat); on a world large enough to measure them, the one-frame answerer reaches
    exactly 1/2 on order questions (one of the two shapes in view) and stays far from 1 elsewhere."""
    for fmt, root in worlds.items():
        baselines = read_meta(root)["baselines"]
        (split,) = baselines  # the one evaluated split (not the training one)
        keys = list(baselines[split])
        assert any("chance" in k for k in keys) and any("one frame" in k for k in keys), (fmt, keys)
        assert all(v >= 0 for v in baselines[split].values())
    world = WorldSpec(Path("unused"), {"train": 600, "val": 300}, {}, seed=0, image_size=64)
    clips = motion_qa.split_clips(world)
    opened = motion_qa.open_baselines(clips["train"], clips["val"])
    chance = next(v for k, v in opened.items() if "chance" in k)
    frame = {k.split(", ")[-1]: v for k, v in opened.items() if "one frame" in k}
    assert frame["order questions"] == 0.5
    assert chance < 0.1 < frame["the answer from one frame (no motion)"] < 0.6
    assert 0.25 <= frame["direction questions"] < 0.6 and frame["count questions"] < 0.6
    train, val = ([q for c in clips[s] for q in motion_qa.choice_questions(c, 0)] for s in ("train", "val"))
    chosen = motion_qa.choice_baselines(train, val)
    assert chosen["accuracy, the answer from one frame (no motion), transition questions"] == 0.5
    assert 0.2 < chosen["accuracy, the answer from one frame (no motion)"] < 0.6
    counts = motion_qa.count_baselines(
        motion_qa.count_questions(clips["train"]), motion_qa.count_questions(clips["val"])
    )
    assert all(0.3 < v < 1.5 for v in counts.values())  # counts 1..3: a constant 2 errs by 1 on 2 of 3

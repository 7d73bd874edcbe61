"""Write the synthetic world in motion as TGIF-QA (the release's tab-separated files and GIFs).

    <root>/{Train,Test}_frameqa_question.csv      gif_name question answer type vid_id key description
    <root>/{Train,Test}_action_question.csv       gif_name question a1..a5 answer vid_id key
    <root>/{Train,Test}_transition_question.csv   (the same columns)
    <root>/{Train,Test}_count_question.csv        gif_name question answer vid_id key
    <root>/gifs/<gif_name>.gif

FrameQA asks motion.py's open questions (``type``: 3 location for a direction, 0 object / 2 color
for what appeared first / last, 1 number for a count); Action what a shape does (moves 4 ways,
blinks 1-3 times); Transition which shape appeared first or second; Count how many times a shape
blinks, written as the release writes counts (1 as 0). Every clip is written once and used by
every task that has a question on it. Splits are ``train`` and ``test``, as the release's.
"""

from __future__ import annotations

import csv
from typing import Any

from .motion import captions, write_clips
from .motion_qa import (
    VideoQuestion,
    choice_baselines,
    choice_questions_of,
    count_baselines,
    count_questions,
    evaluated,
    open_baselines,
    open_questions,
    split_clips,
    summary,
    train_split,
    write_gif,
)
from .world import image_rng
from .writers import WorldSpec, synthetic_writer

DEFAULT_SPLITS = {"train": 60, "test": 20}
FRAMEQA_TYPE = {"direction": 3, "count": 1}  # order questions: 0 (a shape) or 2 (a colour)
PREFIX = {"frameqa": "FRAMEQA", "action": "ACTION", "transition": "TRANS", "count": "COUNT"}
HEADERS = {
    "frameqa": ["gif_name", "question", "answer", "type", "vid_id", "key", "description"],
    "action": ["gif_name", "question", "a1", "a2", "a3", "a4", "a5", "answer", "vid_id", "key"],
    "count": ["gif_name", "question", "answer", "vid_id", "key"],
}
HEADERS["transition"] = HEADERS["action"]


def gif_name(video_id: int) -> str:
    return f"tumblr_synth{video_id:06d}o1_250"


@synthetic_writer("tgif_qa", DEFAULT_SPLITS)
def write_tgif_qa(world: WorldSpec, sources: tuple[str, ...] = ("video",)) -> dict[str, Any]:
    """Write the four tasks' files of each split and the clips as GIFs; counts and baselines."""
    bad = sorted(s for s in world.all_splits if s.lower() not in ("train", "test"))
    if bad:
        raise ValueError(f"TGIF-QA splits are 'train' and 'test'; cannot write {bad}")
    clips = split_clips(world)
    counts, kinds = {}, {}
    for split, split_clips_ in clips.items():
        names = [gif_name(c.video_id) for c in split_clips_]
        if "video" in sources:
            for clip, name in zip(split_clips_, names):
                write_gif(world.root / "gifs" / f"{name}.gif", clip.frames())
        write_clips(world.root, split_clips_, names, "gifs", [s for s in sources if s != "video"])
        counts[split] = {"gifs": len(split_clips_)}
        for task, rows in _rows(world, split_clips_).items():
            name = f"{split[:1].upper()}{split[1:].lower()}_{task}_question.csv"
            with (world.root / name).open("w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f, delimiter="\t", lineterminator="\r\n")  # the release's CRLF
                writer.writerows([HEADERS[task], *rows])
            counts[split][task] = len(rows)
            kinds.update({row[HEADERS[task].index("vid_id")]: task for row in rows})
    return summary(world, counts, _baselines(world, clips), question_kind=kinds)


def _rows(world: WorldSpec, clips: list[Any]) -> dict[str, list[list[Any]]]:
    """Each task's rows for these clips; vid_id counts per task across splits, by video id."""
    out: dict[str, list[list[Any]]] = {task: [] for task in HEADERS}
    for q in open_questions(clips):
        code = FRAMEQA_TYPE.get(q.family, 2 if q.question.startswith("what color") else 0)
        description = captions(q.clip, image_rng(world.seed, q.clip.video_id, 12), 1)[0]
        row = [_ask(q), q.answer, code, _vid("frameqa", q, out), q.clip.video_id, description]
        out["frameqa"].append([gif_name(q.clip.video_id), *row])
    for task in ("action", "transition"):
        for q in choice_questions_of(clips, world.seed, [task]):
            row = [gif_name(q.clip.video_id), _ask(q), *q.candidates, q.label]
            out[task].append([*row, _vid(task, q, out), q.clip.video_id])
    for q in count_questions(clips):
        answer = int(q.answer) if int(q.answer) > 1 else 0  # the release writes 1 as 0
        row = [gif_name(q.clip.video_id), _ask(q), answer, _vid("count", q, out), q.clip.video_id]
        out["count"].append(row)
    return out


def _ask(q: VideoQuestion) -> str:
    """The release writes its questions with a space before the question mark."""
    return q.question.rstrip("?").rstrip() + " ?"


def _vid(task: str, q: VideoQuestion, rows: dict[str, list]) -> str:
    """The release's per-task question id (``ACTION12``): unique per video and question."""
    before = sum(r[0] == gif_name(q.clip.video_id) for r in rows[task])  # this task's rows of the clip
    return f"{PREFIX[task]}{q.clip.video_id * 4 + before}"


def _baselines(world: WorldSpec, clips: dict[str, list[Any]]) -> dict[str, dict[str, float]]:
    """Per evaluated split, each task's baselines (named with the task)."""
    train = clips[train_split(world)]
    out = {}
    for split, evaluated_clips in evaluated(world, clips):
        row = open_baselines(train, evaluated_clips, "frameqa")
        for task in ("action", "transition"):
            row.update(
                choice_baselines(
                    choice_questions_of(train, world.seed, [task]),
                    choice_questions_of(evaluated_clips, world.seed, [task]),
                    task,
                )
            )
        row.update(count_baselines(count_questions(train), count_questions(evaluated_clips)))
        out[split] = row
    return out

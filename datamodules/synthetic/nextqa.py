"""Write the synthetic world in motion as NExT-QA (multiple choice, the release's layout).

    <root>/<split>.csv               video,frame_count,width,height,question,answer,qid,type,a0..a4
    <root>/map_vid_vidorID.json      {"<video>": "<folder>/<video>"}
    <root>/NExTVideo/<folder>/<video>.mp4

Question types: what a shape does is CH (how), which shape appeared first TP (previous) and which
second TN (next), how many times a shape blinks DC (count); NExT-QA's other four types (CW, TC,
DL, DO) are not asked. ``qid`` numbers a video's questions from 0.
"""

from __future__ import annotations

import csv
import json
from typing import Any

from .motion import FRAMES, write_clips
from .motion_qa import (
    VideoQuestion,
    choice_baselines,
    choice_questions,
    evaluated,
    split_clips,
    summary,
    train_split,
)
from .writers import WorldSpec, synthetic_writer

DEFAULT_SPLITS = {"train": 60, "val": 20}
HEADER = ["video", "frame_count", "width", "height", "question", "answer", "qid", "type"]
HEADER += [f"a{k}" for k in range(5)]


def nextqa_type(q: VideoQuestion) -> str:
    if q.family == "transition":
        return "TP" if q.question.endswith("first") else "TN"
    return {"action": "CH", "count": "DC"}[q.family]


def video_name(video_id: int) -> str:
    return str(4_000_000_000 + video_id)  # NExT-QA's ids are VidOR's 10-digit numbers


@synthetic_writer("nextqa", DEFAULT_SPLITS)
def write_nextqa(world: WorldSpec, sources: tuple[str, ...] = ("video",)) -> dict[str, Any]:
    """Write each split's csv, the id map and the clips; counts, baselines and question types."""
    clips = split_clips(world)
    paths, counts, kinds, asked = {}, {}, {}, {}
    for split, split_clips_ in clips.items():
        rows, asked[split] = [], []
        for clip in split_clips_:
            video = video_name(clip.video_id)
            paths[video] = f"{clip.video_id // 100:04d}/{video}"
            for qid, q in enumerate(choice_questions(clip, world.seed)):
                size = world.image_size
                rows.append(
                    [video, FRAMES, size, size, q.question, q.label, qid, nextqa_type(q), *q.candidates]
                )
                kinds[f"{video}_{qid}"] = nextqa_type(q)
                asked[split].append(q)
        with (world.root / f"{split}.csv").open("w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([HEADER, *rows])
        files = [paths[video_name(c.video_id)] for c in split_clips_]
        write_clips(world.root, split_clips_, files, "NExTVideo", [s for s in sources if s == "video"])
        if set(sources) - {"video"}:  # frames and features are keyed by the csv's video id
            names = [video_name(c.video_id) for c in split_clips_]
            write_clips(world.root, split_clips_, names, "NExTVideo", [s for s in sources if s != "video"])
        counts[split] = {"videos": len(split_clips_), "questions": len(rows)}
    (world.root / "map_vid_vidorID.json").write_text(json.dumps(paths), encoding="utf-8")
    train = asked[train_split(world)]
    baselines = {}
    for split, _ in evaluated(world, clips):
        row = choice_baselines(train, asked[split], by_family=False)
        for t in ("CH", "TP", "TN", "DC"):
            part = [q for q in asked[split] if nextqa_type(q) == t]
            row.update({k: v for k, v in choice_baselines(train, part, t).items() if "one frame" in k})
        baselines[split] = row
    return summary(world, counts, baselines, question_kind=kinds)

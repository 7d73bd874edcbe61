"""Write the synthetic world in motion as MSRVTT-QA or MSVD-QA (the release by Xu et al. 2017).

    <root>/<split>_qa.json         [{"answer", "id", "question", "video_id"}]  (splits: train, val, test)
    MSRVTT-QA: <root>/MSRVTT_Videos/video<video_id>.mp4
    MSVD-QA:   <root>/youtube_mapping.txt ("<clip name> vid<video_id>"), <root>/YouTubeClips/<clip name>.avi

Questions are motion.py's (direction, order, count): each needs more than one frame. ``id`` runs
across the splits, as in the release. ``sources`` may add frames/ and features/features.h5.
"""

from __future__ import annotations

import json
from typing import Any

from .motion import write_clips
from .motion_qa import evaluated, open_baselines, open_questions, split_clips, summary, train_split
from .writers import WorldSpec, synthetic_writer

DEFAULT_SPLITS = {"train": 60, "val": 20}
SPLITS = ("train", "val", "test")


def write_xu_qa(world: WorldSpec, dataset: str, sources: tuple[str, ...] = ("video",)) -> dict[str, Any]:
    """Write the QA files and clips of MSRVTT-QA (``dataset="msrvtt"``) or MSVD-QA (``"msvd"``)."""
    bad = sorted(set(world.all_splits) - set(SPLITS))
    if bad:
        raise ValueError(f"{dataset.upper()}-QA splits are {SPLITS}; cannot write {bad}")
    clips = split_clips(world)
    mapping, kinds, counts, qid = [], {}, {}, 0
    for split, split_clips_ in clips.items():
        records = []
        for q in open_questions(split_clips_):
            vid = q.clip.video_id + (dataset == "msvd")  # MSVD's vid numbers start at 1
            records.append({"answer": q.answer, "id": qid, "question": q.question, "video_id": vid})
            kinds[str(qid)] = q.family
            qid += 1
        (world.root / f"{split}_qa.json").write_text(json.dumps(records), encoding="utf-8")
        names = [_clip_name(dataset, c.video_id) for c in split_clips_]
        folder, suffix = ("MSRVTT_Videos", ".mp4") if dataset == "msrvtt" else ("YouTubeClips", ".avi")
        write_clips(world.root, split_clips_, names, folder, sources, suffix=suffix)
        mapping += [f"{name} vid{c.video_id + 1}" for name, c in zip(names, split_clips_)]
        counts[split] = {"videos": len(split_clips_), "questions": len(records)}
    if dataset == "msvd":
        (world.root / "youtube_mapping.txt").write_text("\n".join(mapping) + "\n", encoding="utf-8")
    train = clips[train_split(world)]
    baselines = {s: open_baselines(train, c) for s, c in evaluated(world, clips)}
    return summary(world, counts, baselines, question_kind=kinds)


def _clip_name(dataset: str, video_id: int) -> str:
    """MSR-VTT's ``video<N>``; an MSVD-like ``<youtube id>_<start>_<end>`` clip name."""
    return (
        f"video{video_id}"
        if dataset == "msrvtt"
        else f"synth{video_id:06d}_{video_id % 7}_{video_id % 7 + 2}"
    )


@synthetic_writer("msrvtt_qa", DEFAULT_SPLITS, layout=2)  # 2: MSRVTT_Videos/, was video/
def write_msrvtt_qa(world: WorldSpec, sources: tuple[str, ...] = ("video",)) -> dict[str, Any]:
    """MSRVTT-QA's files and clips; counts, baselines and each question's kind."""
    return write_xu_qa(world, "msrvtt", sources)


@synthetic_writer("msvd_qa", DEFAULT_SPLITS, layout=2)  # 2: YouTubeClips/*.avi, was video/*.mp4
def write_msvd_qa(world: WorldSpec, sources: tuple[str, ...] = ("video",)) -> dict[str, Any]:
    """MSVD-QA's files, youtube_mapping.txt and clips; counts, baselines and each question's kind."""
    return write_xu_qa(world, "msvd", sources)

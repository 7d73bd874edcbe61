"""Write the synthetic world in motion as ActivityNet-QA (the MILVLG release's layout).

    <root>/<split>_q.json    [{"video_name", "question", "question_id"}]
    <root>/<split>_a.json    [{"answer", "type", "question_id"}]
    <root>/videos/v_<video_name>.mp4

``type`` follows the release's codes: a direction question is 0 (motion), an order question 2
(temporal relation), a count 7 (number). Question ids are ``v_<video_name>_<n>``.
"""

from __future__ import annotations

import json
from typing import Any

from .motion import write_clips
from .motion_qa import evaluated, open_baselines, open_questions, split_clips, summary, train_split
from .writers import WorldSpec, synthetic_writer

DEFAULT_SPLITS = {"train": 60, "val": 20}
TYPE_CODE = {"direction": 0, "order": 2, "count": 7}


@synthetic_writer("activitynet_qa", DEFAULT_SPLITS)
def write_activitynet_qa(world: WorldSpec, sources: tuple[str, ...] = ("video",)) -> dict[str, Any]:
    """Write each split's question and answer files and its clips; counts, baselines, kinds."""
    clips = split_clips(world)
    kinds, counts = {}, {}
    for split, split_clips_ in clips.items():
        qs, ans, per_video = [], [], {}
        for q in open_questions(split_clips_):
            name = f"synth{q.clip.video_id:06d}"
            n = per_video[name] = per_video.get(name, 0) + 1
            qid = f"v_{name}_{n}"
            qs.append({"video_name": name, "question": q.question, "question_id": qid})
            ans.append({"answer": q.answer, "type": TYPE_CODE[q.family], "question_id": qid})
            kinds[qid] = q.family
        for suffix, records in (("q", qs), ("a", ans)):
            (world.root / f"{split}_{suffix}.json").write_text(json.dumps(records), encoding="utf-8")
        names = [f"v_synth{c.video_id:06d}" for c in split_clips_]
        write_clips(world.root, split_clips_, names, "videos", sources)
        counts[split] = {"videos": len(split_clips_), "questions": len(qs)}
    train = clips[train_split(world)]
    baselines = {s: open_baselines(train, c) for s, c in evaluated(world, clips)}
    return summary(world, counts, baselines, question_kind=kinds)
